/* melipd frontend through the registry: clips of other lengths, clip and
 * resize parameters, thread-count invariance, wrong inputs and parameters,
 * and the `weights` checkpoint parameter. Input: the golden 10 s wave. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/frontend.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "batpipe/spec.h"
#include "bp_test.h"

#define M 128

typedef struct run_result {
    bp_status status;
    bp_error err;
    uint32_t n;
    bp_port ports[BP_MAX_OUTPUTS];
    bp_tensor *outs[BP_MAX_OUTPUTS];
} run_result;

static void result_free(run_result *r) {
    for (uint32_t i = 0; i < BP_MAX_OUTPUTS; i++) bp_tensor_free(r->outs[i]);
    memset(r->outs, 0, sizeof r->outs);
}

/* Create melipd with `kv` on `threads` threads and run it on `wave`,
 * requesting every output. */
static run_result run(bp_registry *reg, int32_t threads, const char *const *kv, uint32_t n_kv, const bp_tensor *wave) {
    run_result r;
    memset(&r, 0, sizeof r);
    r.err = (bp_error)BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    if (!comp) {
        r.status = bp_error_set(&r.err, BP_ERR_NOT_FOUND, "melipd plugin not found");
        return r;
    }
    bp_registry_set_threads(reg, threads);
    bp_paramset *ps = NULL;
    void *inst = NULL;
    r.status = bp_paramset_from_strings(comp->desc, kv, n_kv, &ps, &r.err);
    if (r.status == BP_OK) r.status = bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &r.err);
    bp_stage *st = inst;
    if (r.status == BP_OK) {
        bp_spec have = bp_spec_of(wave, 32000.0);
        r.n = BP_MAX_OUTPUTS;
        r.status = st->prepare(st, &have, r.ports, &r.n, &r.err);
        for (uint32_t i = 0; r.status == BP_OK && i < r.n; i++)
            r.status = bp_tensor_new(NULL, BP_DTYPE_F32, r.ports[i].spec.ndim, r.ports[i].spec.shape, &r.outs[i],
                                     &r.err);
        if (r.status == BP_OK) r.status = st->process(st, wave, r.outs, r.n, &r.err);
    }
    if (st) st->destroy(st);
    bp_paramset_free(ps);
    return r;
}

static int same_floats(const bp_tensor *a, const bp_tensor *b) {
    return bp_tensor_same_shape(a, b) && memcmp(a->data, b->data, bp_tensor_nbytes(a)) == 0;
}

/* Rows [0, rows) of map c of a [maps, T, M] tensor equal between a and b (bitwise). */
static int same_rows(const bp_tensor *a, const bp_tensor *b, int64_t maps, int64_t rows) {
    for (int64_t c = 0; c < maps; c++) {
        const float *pa = (const float *)a->data + c * a->shape[1] * M;
        const float *pb = (const float *)b->data + c * b->shape[1] * M;
        if (memcmp(pa, pb, (size_t)(rows * M) * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static int shape_is(const bp_tensor *t, int64_t a, int64_t b, int64_t c) {
    return t && t->ndim == 3 && t->shape[0] == a && t->shape[1] == b && t->shape[2] == c;
}

/* A stereo clip of n samples: the golden wave, continued by noise past 10 s. */
static bp_tensor *make_clip(const float *wave10, int64_t n) {
    bp_error err = BP_ERROR_INIT;
    const int64_t shape[2] = {2, n};
    bp_tensor *t = NULL;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) return NULL;
    float *x = t->data;
    uint32_t s = 12345u;
    for (int64_t c = 0; c < 2; c++)
        for (int64_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            x[c * n + i] = i < 320000 ? wave10[c * 320000 + i] : 0.1f * ((float)(s >> 8) / 16777216.0f - 0.5f);
        }
    return t;
}

static void test_lengths(bp_registry *reg, const float *wave10) {
    bp_tensor *c5 = make_clip(wave10, 160000), *c10 = make_clip(wave10, 320000), *c12 = make_clip(wave10, 384000);
    const char *own_len[] = {"clip_samples=0", "target_frames=0"};
    run_result r5 = run(reg, 2, own_len, 2, c5), r10 = run(reg, 2, own_len, 2, c10), r12 = run(reg, 2, own_len, 2, c12);
    CHECK_OK(r5.status, &r5.err);
    CHECK_OK(r10.status, &r10.err);
    CHECK_OK(r12.status, &r12.err);
    if (r5.status == BP_OK && r10.status == BP_OK && r12.status == BP_OK) {
        /* No resize: 1 + samples / 320 frames. */
        CHECK(shape_is(r5.outs[0], 4, 501, M) && shape_is(r10.outs[0], 4, 1001, M) &&
              shape_is(r12.outs[0], 4, 1201, M));
        CHECK(shape_is(r5.outs[1], 2, 501, M) && shape_is(r12.outs[5], 4, 1201, M));
        CHECK(r12.outs[3]->ndim == 2 && r12.outs[3]->shape[0] == 1201);
        CHECK(same_floats(r10.outs[0], r10.outs[5])); /* features = stacked when nothing is resized */
        /* Frames whose window stays inside the common part are identical:
         * frame t reads samples [320 t - 512, 320 t + 512). */
        CHECK(same_rows(r5.outs[5], r10.outs[5], 4, (160000 - 512) / 320 + 1));
        CHECK(!same_rows(r5.outs[5], r10.outs[5], 4, 501));
        CHECK(same_rows(r12.outs[5], r10.outs[5], 4, (320000 - 512) / 320 + 1));
        CHECK(same_rows(r12.outs[1], r10.outs[1], 2, 999));
        CHECK(r5.ports[0].spec.rate == 100.0);
    }
    result_free(&r5);
    result_free(&r10);
    result_free(&r12);

    /* Own length, resized to 1024 frames: 501 frames stretched, 1201 compressed. */
    const char *resized[] = {"clip_samples=0", "target_frames=1024"};
    r5 = run(reg, 2, resized, 2, c5);
    r12 = run(reg, 2, resized, 2, c12);
    CHECK_OK(r5.status, &r5.err);
    CHECK_OK(r12.status, &r12.err);
    if (r5.status == BP_OK && r12.status == BP_OK) {
        CHECK(shape_is(r5.outs[0], 4, 1024, M) && shape_is(r12.outs[0], 4, 1024, M));
        CHECK(shape_is(r5.outs[5], 4, 501, M) && shape_is(r12.outs[5], 4, 1201, M));
        /* align_corners: the first and last rows are the source's. */
        const bp_tensor *rs[2] = {r5.outs[0], r12.outs[0]}, *ss[2] = {r5.outs[5], r12.outs[5]};
        for (int k = 0; k < 2; k++) {
            const float *f = rs[k]->data, *s = ss[k]->data;
            int64_t T = ss[k]->shape[1];
            double d0 = 0.0, d1 = 0.0;
            for (int64_t c = 0; c < 4; c++)
                for (int64_t m = 0; m < M; m++) {
                    d0 = fmax(d0, fabs(f[(c * 1024) * M + m] - s[(c * T) * M + m]));
                    d1 = fmax(d1, fabs(f[(c * 1024 + 1023) * M + m] - s[(c * T + T - 1) * M + m]));
                }
            CHECKF(d0 == 0.0 && d1 < 1e-5, "resize end rows: %g %g", d0, d1);
        }
        CHECK(fabs(r5.ports[0].spec.rate - 1024.0 / 5.0) < 1e-9);
    }
    result_free(&r5);
    result_free(&r12);

    /* Defaults (clip 10 s): 12 s is truncated and 10 s taken as is, so both
     * give the same bits; 5 s is zero-padded and also gives 1024 frames. */
    r10 = run(reg, 2, NULL, 0, c10);
    r12 = run(reg, 2, NULL, 0, c12);
    r5 = run(reg, 2, NULL, 0, c5);
    CHECK_OK(r10.status, &r10.err);
    CHECK_OK(r12.status, &r12.err);
    CHECK_OK(r5.status, &r5.err);
    if (r10.status == BP_OK && r12.status == BP_OK && r5.status == BP_OK) {
        for (uint32_t i = 0; i < r10.n; i++) CHECKF(same_floats(r10.outs[i], r12.outs[i]), "output %u", i);
        CHECK(shape_is(r5.outs[0], 4, 1024, M) && shape_is(r5.outs[5], 4, 1001, M));
        CHECK(same_rows(r5.outs[5], r10.outs[5], 4, (160000 - 512) / 320 + 1));
        /* Past the 5 s of signal the padded clip is silent: -100 dB raw. */
        CHECK_NEAR(((const float *)r5.outs[1]->data)[900 * M + 40], -100.0, 1e-4);
    }
    result_free(&r5);
    result_free(&r10);
    result_free(&r12);
    bp_tensor_free(c5);
    bp_tensor_free(c10);
    bp_tensor_free(c12);
}

static void test_threads(bp_registry *reg, const bp_tensor *wave) {
    const char *kv[] = {"bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
    run_result r1 = run(reg, 1, kv, 2, wave), r2 = run(reg, 2, kv, 2, wave), r3 = run(reg, 3, kv, 2, wave);
    CHECK_OK(r1.status, &r1.err);
    CHECK_OK(r2.status, &r2.err);
    CHECK_OK(r3.status, &r3.err);
    if (r1.status == BP_OK && r2.status == BP_OK && r3.status == BP_OK)
        for (uint32_t i = 0; i < r1.n; i++) {
            CHECKF(same_floats(r1.outs[i], r2.outs[i]), "output %s differs between 1 and 2 threads", r1.ports[i].name);
            CHECKF(same_floats(r1.outs[i], r3.outs[i]), "output %s differs between 1 and 3 threads", r1.ports[i].name);
        }
    result_free(&r1);
    result_free(&r2);
    result_free(&r3);
}

static void test_bad_input(bp_registry *reg, const float *wave10) {
    bp_error err = BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    bp_paramset *ps = NULL;
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, NULL, 0, &ps, &err), &err);
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err), &err);
    bp_stage *st = inst;
    if (!st) return;
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n = BP_MAX_OUTPUTS;

    /* Mono and 3-channel inputs: spec errors naming both counts. */
    const int64_t mono[2] = {1, 32000}, three[2] = {3, 32000};
    bp_spec s = bp_spec_f32(2, mono, 32000.0, "channel,time");
    CHECK(st->prepare(st, &s, ports, &n, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "1 channel") && strstr(err.msg, "needs 2"), "%s", err.msg);
    bp_spec want = bp_spec_any();
    CHECK_OK(st->input_spec(st, &want, &err), &err);
    char why[256];
    CHECK(!bp_spec_satisfies(&s, &want, why, sizeof why));
    s = bp_spec_f32(2, three, 32000.0, "channel,time");
    n = BP_MAX_OUTPUTS;
    CHECK(st->prepare(st, &s, ports, &n, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "3 channels"), "%s", err.msg);
    s = bp_spec_f32(2, (const int64_t[2]){2, 32000}, 16000.0, "channel,time");
    n = BP_MAX_OUTPUTS;
    CHECK(st->prepare(st, &s, ports, &n, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "16000"), "%s", err.msg);

    /* process() checks too, before touching the outputs. */
    float *buf = calloc(3 * 32000, sizeof *buf);
    bp_tensor in1 = bp_tensor_view(BP_DTYPE_F32, 2, mono, buf);
    bp_tensor *outs[BP_MAX_OUTPUTS] = {NULL};
    const int64_t fs[3] = {4, 1024, M};
    CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 3, fs, &outs[0], &err), &err);
    CHECK(st->process(st, &in1, outs, 1, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "1 channel") && strstr(err.msg, "needs 2"), "%s", err.msg);

    /* NaN / Inf anywhere in the input. */
    const int64_t st2[2] = {2, 32000};
    bp_tensor in2 = bp_tensor_view(BP_DTYPE_F32, 2, st2, buf);
    memcpy(buf, wave10, 32000 * sizeof *buf);
    buf[32000 + 777] = NAN;
    CHECK(st->process(st, &in2, outs, 1, &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "sample 777 of channel 1 is NaN"), "%s", err.msg);
    buf[32000 + 777] = 0.0f;
    buf[5] = -INFINITY;
    CHECK(st->process(st, &in2, outs, 1, &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "infinite"), "%s", err.msg);
    buf[5] = 0.0f;
    /* A features tensor of the wrong shape. */
    bp_tensor *wrong = NULL;
    const int64_t ws[3] = {4, 1000, M};
    CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 3, ws, &wrong, &err), &err);
    CHECK(st->process(st, &in2, &wrong, 1, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "features") && strstr(err.msg, "[4,1000,128]"), "%s", err.msg);
    CHECK_OK(st->process(st, &in2, outs, 1, &err), &err);
    bp_tensor_free(wrong);
    bp_tensor_free(outs[0]);
    free(buf);
    st->destroy(st);
    bp_paramset_free(ps);

    /* Too short for the reflect padding with clip_samples = 0. */
    const char *own[] = {"clip_samples=0"};
    float tiny[2 * 400] = {0};
    bp_tensor t400 = bp_tensor_view(BP_DTYPE_F32, 2, (const int64_t[2]){2, 400}, tiny);
    run_result r = run(reg, 1, own, 1, &t400);
    CHECK(r.status == BP_ERR_INVALID);
    CHECKF(strstr(r.err.msg, "too few"), "%s", r.err.msg);
    result_free(&r);
}

static void test_bad_params(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    const char *three[] = {"bn_mean=[-20.0, -21.0, -22.0]"};
    bp_paramset *ps = NULL;
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, three, 1, &ps, &err), &err);
    CHECK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "'bn_mean'") && strstr(err.msg, "3 elements") && strstr(err.msg, "expected 2"), "%s",
           err.msg);
    CHECK(inst == NULL);
    bp_paramset_free(ps);

    const char *one[] = {"bn_var=[1.0]"};
    ps = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, one, 1, &ps, &err), &err);
    CHECK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "'bn_var'"), "%s", err.msg);
    bp_paramset_free(ps);

    const char *small[] = {"clip_samples=100"};
    ps = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, small, 1, &ps, &err), &err);
    CHECK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "clip_samples"), "%s", err.msg);
    bp_paramset_free(ps);

    /* Declared ranges and names are enforced by the host. */
    const char *neg[] = {"bn_var=[-1.0, 1.0]"}, *unknown[] = {"n_fft=2048"}, *type[] = {"target_frames=\"many\""};
    ps = NULL;
    CHECK(bp_paramset_from_strings(comp->desc, neg, 1, &ps, &err) != BP_OK);
    CHECKF(strstr(err.msg, "bn_var"), "%s", err.msg);
    CHECK(bp_paramset_from_strings(comp->desc, unknown, 1, &ps, &err) != BP_OK);
    CHECKF(strstr(err.msg, "n_fft"), "%s", err.msg);
    CHECK(bp_paramset_from_strings(comp->desc, type, 1, &ps, &err) != BP_OK);
    CHECKF(strstr(err.msg, "target_frames"), "%s", err.msg);
    bp_paramset_free(ps);
}

/* A checkpoint with the front-end tensors of a Spatial-AST state dict. */
static int write_ckpt(const char *path, const float *melw, int with_bn) {
    bp_error err = BP_ERROR_INIT;
    bp_st_writer *w = NULL;
    float mean[2] = {-20.0f, -21.0f}, var[2] = {200.0f, 210.0f};
    const int64_t s2[1] = {2}, sm[2] = {513, 128};
    bp_tensor tm = bp_tensor_view(BP_DTYPE_F32, 1, s2, mean), tv = bp_tensor_view(BP_DTYPE_F32, 1, s2, var);
    bp_tensor tw = bp_tensor_view(BP_DTYPE_F32, 2, sm, (void *)melw);
    bp_status st = bp_st_writer_new(&w, &err);
    if (st == BP_OK && with_bn) st = bp_st_writer_add(w, "bn.running_mean", &tm, &err);
    if (st == BP_OK && with_bn) st = bp_st_writer_add(w, "bn.running_var", &tv, &err);
    if (st == BP_OK && melw) st = bp_st_writer_add(w, "logmel_extractor.melW", &tw, &err);
    if (st == BP_OK) st = bp_st_writer_write(w, path, &err);
    bp_st_writer_free(w);
    if (st != BP_OK) fprintf(stderr, "%s\n", err.msg);
    return st == BP_OK;
}

static void test_weights(bp_registry *reg, const bp_tensor *wave, const float *mel_fb) {
    char dir[] = "/tmp/bp_melipd_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char good[256], bad[256], nobn[256], kv_good[300], kv_bad[300], kv_nobn[300];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    snprintf(nobn, sizeof nobn, "%s/nobn.safetensors", dir);
    float *melw = malloc(513 * 128 * sizeof *melw);
    memcpy(melw, mel_fb, 513 * 128 * sizeof *melw);
    CHECK(write_ckpt(good, melw, 1));
    melw[300 * 128 + 90] += 1e-4f;
    CHECK(write_ckpt(bad, melw, 1));
    CHECK(write_ckpt(nobn, NULL, 0));
    free(melw);
    snprintf(kv_good, sizeof kv_good, "weights=\"%s\"", good);
    snprintf(kv_bad, sizeof kv_bad, "weights=\"%s\"", bad);
    snprintf(kv_nobn, sizeof kv_nobn, "weights=\"%s\"", nobn);

    /* The checkpoint's BatchNorm statistics override the defaults. */
    const char *stats[] = {"bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
    const char *kv1[] = {kv_good}, *kv2[] = {kv_bad}, *kv3[] = {kv_nobn};
    run_result a = run(reg, 2, stats, 2, wave), b = run(reg, 2, kv1, 1, wave);
    CHECK_OK(a.status, &a.err);
    CHECK_OK(b.status, &b.err);
    if (a.status == BP_OK && b.status == BP_OK)
        for (uint32_t i = 0; i < a.n; i++) CHECKF(same_floats(a.outs[i], b.outs[i]), "output %u", i);
    result_free(&a);
    result_free(&b);
    run_result c = run(reg, 1, kv2, 1, wave);
    CHECK(c.status == BP_ERR_INVALID);
    CHECKF(strstr(c.err.msg, bad) && strstr(c.err.msg, "logmel_extractor.melW") && strstr(c.err.msg, "[300, 90]"),
           "%s", c.err.msg);
    result_free(&c);
    run_result d = run(reg, 1, kv3, 1, wave);
    CHECK(d.status == BP_ERR_NOT_FOUND);
    CHECKF(strstr(d.err.msg, nobn) && strstr(d.err.msg, "bn.running_mean"), "%s", d.err.msg);
    result_free(&d);
    const char *missing[] = {"weights=\"/nonexistent/ckpt.safetensors\""};
    run_result e = run(reg, 1, missing, 1, wave);
    CHECK(e.status == BP_ERR_IO || e.status == BP_ERR_NOT_FOUND);
    CHECKF(strstr(e.err.msg, "/nonexistent/ckpt.safetensors"), "%s", e.err.msg);
    result_free(&e);
    unlink(good);
    unlink(bad);
    unlink(nobn);
    rmdir(dir);
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/melipd_10s.safetensors", data);
    bp_st_file *gf = NULL;
    if (bp_st_open(path, &gf, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    bp_tensor wave, mel_fb;
    const int64_t sw[2] = {2, 320000}, sm[2] = {513, 128};
    CHECK_OK(bp_st_get_checked(gf, "wave", BP_DTYPE_F32, 2, sw, &wave, &err), &err);
    CHECK_OK(bp_st_get_checked(gf, "mel_fb", BP_DTYPE_F32, 2, sm, &mel_fb, &err), &err);
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    if (!bp_registry_find(reg, BP_KIND_FRONTEND, "melipd")) {
        fprintf(stderr, "melipd not found (BATPIPE_PLUGIN_PATH=%s)\n", getenv("BATPIPE_PLUGIN_PATH"));
        bp_registry_free(reg);
        bp_st_close(gf);
        return 1;
    }
    if (bp_test_failures == 0) {
        test_lengths(reg, wave.data);
        test_threads(reg, &wave);
        test_bad_input(reg, wave.data);
        test_bad_params(reg);
        test_weights(reg, &wave, mel_fb.data);
    }
    bp_registry_free(reg);
    bp_st_close(gf);
    return TEST_RESULT();
}
