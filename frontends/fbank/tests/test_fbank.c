/* The fbank frontend through the registry against torchaudio's Kaldi
 * filterbank as AudioMAE calls it (tests/data/frontends/fbank_ref.safetensors,
 * made by make_reference.py in float64).
 *
 * Tolerances (natural-log units of the filterbank): a float32 run of the
 * same torchaudio code differs from the float64 reference by at most
 * 1.9e-3 (mean 1.8e-6; stored in the file's metadata): the worst bins are
 * low-energy bands of frames next to loud ones, where float32 FFT round-off
 * is a noticeable fraction of the band energy. A float32 C implementation
 * has the same kind of error, so we allow 5x the float32 spread at the
 * maximum (1e-2, i.e. a 1 % energy error in the worst band) and 10x at the
 * mean (2e-5). The normalised features divide that by 2 * 4.5689974. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "batpipe/spec.h"
#include "bp_test.h"

#define M 128
#define N 48000
#define FRAMES 298
#define TOL_MAX 1e-2
#define TOL_MEAN 2e-5

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

static run_result run(bp_registry *reg, int32_t threads, const char *const *kv, uint32_t n_kv, const bp_tensor *wave) {
    run_result r;
    memset(&r, 0, sizeof r);
    r.err = (bp_error)BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "fbank");
    bp_registry_set_threads(reg, threads);
    bp_paramset *ps = NULL;
    void *inst = NULL;
    r.status = bp_paramset_from_strings(comp->desc, kv, n_kv, &ps, &r.err);
    if (r.status == BP_OK) r.status = bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &r.err);
    bp_stage *st = inst;
    if (r.status == BP_OK) {
        bp_spec have = bp_spec_of(wave, 16000.0);
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

static void diff(const float *c, const float *g, size_t n, double *max_abs, double *mean_abs) {
    double mx = 0.0, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - (double)g[i]);
        if (!(d <= mx)) mx = isnan(d) ? INFINITY : d;
        sum += d;
    }
    *max_abs = mx;
    *mean_abs = sum / (double)n;
}

static int same(const bp_tensor *a, const bp_tensor *b) {
    return bp_tensor_same_shape(a, b) && memcmp(a->data, b->data, bp_tensor_nbytes(a)) == 0;
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/frontends/fbank_ref.safetensors", data);
    bp_st_file *rf = NULL;
    if (bp_st_open(path, &rf, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    bp_tensor wave, g_fb, g_feat;
    const int64_t sw[2] = {1, N}, sfb[2] = {FRAMES, M}, sft[3] = {1, 1024, M};
    CHECK_OK(bp_st_get_checked(rf, "wave", BP_DTYPE_F32, 2, sw, &wave, &err), &err);
    CHECK_OK(bp_st_get_checked(rf, "fbank", BP_DTYPE_F32, 2, sfb, &g_fb, &err), &err);
    CHECK_OK(bp_st_get_checked(rf, "features", BP_DTYPE_F32, 3, sft, &g_feat, &err), &err);
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    if (bp_test_failures || !bp_registry_find(reg, BP_KIND_FRONTEND, "fbank")) {
        fprintf(stderr, "missing data or the fbank plugin (BATPIPE_PLUGIN_PATH=%s)\n", getenv("BATPIPE_PLUGIN_PATH"));
        bp_registry_free(reg);
        bp_st_close(rf);
        return 1;
    }

    /* --- AudioMAE defaults vs torchaudio --------------------------------------- */
    run_result a = run(reg, 2, NULL, 0, &wave);
    CHECK_OK(a.status, &a.err);
    if (a.status == BP_OK) {
        CHECK(a.n == 2 && a.outs[0]->shape[1] == 1024 && a.outs[1]->shape[0] == FRAMES);
        CHECK(a.ports[0].spec.rate == 100.0);
        double mx, mean;
        diff(a.outs[1]->data, g_fb.data, FRAMES * M, &mx, &mean);
        fprintf(stderr, "fbank_raw: max abs %.3e (tol %.0e), mean abs %.3e (tol %.0e)\n", mx, TOL_MAX, mean, TOL_MEAN);
        CHECK(mx <= TOL_MAX && mean <= TOL_MEAN);
        diff(a.outs[0]->data, g_feat.data, 1024 * M, &mx, &mean);
        double s = 2.0 * 4.5689974;
        fprintf(stderr, "features:  max abs %.3e (tol %.1e), mean abs %.3e\n", mx, TOL_MAX / s, mean);
        CHECK(mx <= TOL_MAX / s && mean <= TOL_MEAN / s);
        /* Padding rows are zeros before normalisation: (0 + 4.2677393) / 9.1379948. */
        const float *f = a.outs[0]->data;
        CHECK_NEAR(f[1023 * M + 5], 4.2677393 / 9.1379948, 1e-6);
        CHECK(f[FRAMES * M + 77] == f[1023 * M + 5]);
        /* The digital silence (2.5-2.75 s) floors at ln(FLT_EPSILON). */
        const float *raw = a.outs[1]->data;
        CHECK_NEAR(raw[260 * M + 64], log(1.1920928955078125e-07), 1e-4);
    }

    /* --- same bits: stereo downmixes of the same channel, any thread count ---- */
    float *st2 = malloc(2 * N * sizeof *st2);
    memcpy(st2, wave.data, N * sizeof *st2);
    memcpy(st2 + N, wave.data, N * sizeof *st2);
    const int64_t s2[2] = {2, N};
    bp_tensor stereo = bp_tensor_view(BP_DTYPE_F32, 2, s2, st2);
    run_result b = run(reg, 1, NULL, 0, &stereo); /* mean of two equal channels */
    for (int i = 0; i < N; i++) st2[N + i] = 0.25f;
    const char *left[] = {"downmix=\"left\""}, *right[] = {"downmix=\"right\""};
    run_result c = run(reg, 3, left, 1, &stereo), d = run(reg, 1, right, 1, &stereo);
    CHECK_OK(b.status, &b.err);
    CHECK_OK(c.status, &c.err);
    CHECK_OK(d.status, &d.err);
    if (a.status == BP_OK && b.status == BP_OK && c.status == BP_OK && d.status == BP_OK) {
        CHECK(same(a.outs[0], b.outs[0]) && same(a.outs[1], b.outs[1]));
        CHECK(same(a.outs[0], c.outs[0]) && same(a.outs[1], c.outs[1]));
        /* A constant channel has no energy after mean and DC removal. */
        const float *raw = d.outs[1]->data;
        double worst = 0.0;
        for (int i = 0; i < FRAMES * M; i++) worst = fmax(worst, fabs(raw[i] - log(1.1920928955078125e-07)));
        CHECKF(worst < 1e-4, "constant channel: %g above the floor", worst);
    }
    result_free(&b);
    result_free(&c);
    result_free(&d);

    /* --- target_frames ---------------------------------------------------------- */
    const char *keep[] = {"target_frames=0"}, *cut[] = {"target_frames=200"};
    run_result e = run(reg, 2, keep, 1, &wave), g = run(reg, 2, cut, 1, &wave);
    CHECK_OK(e.status, &e.err);
    CHECK_OK(g.status, &g.err);
    if (a.status == BP_OK && e.status == BP_OK && g.status == BP_OK) {
        CHECK(e.outs[0]->shape[1] == FRAMES && g.outs[0]->shape[1] == 200);
        CHECK(memcmp(e.outs[0]->data, a.outs[0]->data, FRAMES * M * sizeof(float)) == 0);
        CHECK(memcmp(g.outs[0]->data, a.outs[0]->data, 200 * M * sizeof(float)) == 0);
    }
    result_free(&e);
    result_free(&g);
    result_free(&a);

    /* --- errors -------------------------------------------------------------------- */
    float *buf = calloc(3 * N, sizeof *buf);
    const int64_t s3[2] = {3, 1000}, sshort[2] = {1, 399};
    bp_tensor three = bp_tensor_view(BP_DTYPE_F32, 2, s3, buf), shrt = bp_tensor_view(BP_DTYPE_F32, 2, sshort, buf);
    run_result x1 = run(reg, 1, NULL, 0, &three);
    CHECK(x1.status == BP_ERR_SPEC);
    CHECKF(strstr(x1.err.msg, "3 channels"), "%s", x1.err.msg);
    result_free(&x1);
    run_result x2 = run(reg, 1, NULL, 0, &shrt);
    CHECK(x2.status == BP_ERR_INVALID);
    CHECKF(strstr(x2.err.msg, "399 samples"), "%s", x2.err.msg);
    result_free(&x2);
    memcpy(st2, wave.data, N * sizeof *st2);
    st2[N + 100] = INFINITY;
    run_result x3 = run(reg, 1, right, 1, &stereo);
    CHECK(x3.status == BP_ERR_NUMERIC);
    CHECKF(strstr(x3.err.msg, "sample 100 of channel 1 is infinite"), "%s", x3.err.msg);
    result_free(&x3);
    const char *bad_std[] = {"norm_std=0.0"};
    bp_paramset *ps = NULL;
    CHECK(bp_paramset_from_strings(bp_registry_find(reg, BP_KIND_FRONTEND, "fbank")->desc, bad_std, 1, &ps, &err) !=
          BP_OK);
    CHECKF(strstr(err.msg, "norm_std"), "%s", err.msg);
    bp_paramset_free(ps);
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "fbank");
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, NULL, 0, &ps, &err), &err);
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err), &err);
    if (inst) {
        bp_stage *stg = inst;
        bp_spec sp = bp_spec_f32(2, (const int64_t[2]){1, N}, 32000.0, "channel,time");
        bp_port ports[BP_MAX_OUTPUTS];
        uint32_t n = BP_MAX_OUTPUTS;
        CHECK(stg->prepare(stg, &sp, ports, &n, &err) == BP_ERR_SPEC);
        CHECKF(strstr(err.msg, "32000") && strstr(err.msg, "16000"), "%s", err.msg);
        stg->destroy(stg);
    }
    bp_paramset_free(ps);
    free(buf);
    free(st2);
    bp_registry_free(reg);
    bp_st_close(rf);
    return TEST_RESULT();
}
