/* The mel frontend through the registry:
 *  - channels = 2 with the golden BatchNorm statistics reproduces the melipd
 *    golden logmel_raw / logmel_bn / features[0:2] (and melipd's own
 *    log-mel maps bit for bit: same engine);
 *  - channels = 1: left / right equal the two golden channels; "mean" is
 *    compared with a float64 NumPy reference (make_reference.py);
 *  - wrong channel counts, BatchNorm list sizes, NaN input, thread counts. */
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
#define T 1001

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

static run_result run(bp_registry *reg, const char *name, int32_t threads, const char *const *kv, uint32_t n_kv,
                      const bp_tensor *wave) {
    run_result r;
    memset(&r, 0, sizeof r);
    r.err = (bp_error)BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, name);
    if (!comp) {
        r.status = bp_error_set(&r.err, BP_ERR_NOT_FOUND, "%s plugin not found", name);
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

/* max|c - g| / max|g| over n values, c read with stride cs and g with stride gs (in rows of M). */
static double rel_err(const float *c, const float *g, size_t rows, size_t cs, size_t gs, double *mean_abs) {
    double maxg = 0.0, maxd = 0.0, sum = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t m = 0; m < M; m++) {
            double a = c[r * cs * M + m], b = g[r * gs * M + m], d = fabs(a - b);
            if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
            maxg = fmax(maxg, fabs(b));
            sum += d;
        }
    if (mean_abs) *mean_abs = sum / (double)(rows * M);
    return maxd / maxg;
}

static const float *get(const bp_st_file *f, const char *name, int32_t ndim, const int64_t *shape) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor t;
    if (bp_st_get_checked(f, name, BP_DTYPE_F32, ndim, shape, &t, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return t.data;
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char gpath[4096], rpath[4096];
    snprintf(gpath, sizeof gpath, "%s/golden/melipd_10s.safetensors", data);
    snprintf(rpath, sizeof rpath, "%s/frontends/mel_mono_ref.safetensors", data);
    bp_st_file *gf = NULL, *rf = NULL;
    if (bp_st_open(gpath, &gf, &err) != BP_OK || bp_st_open(rpath, &rf, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        bp_st_close(gf);
        return 1;
    }
    const int64_t sw[2] = {2, 320000}, s2[3] = {2, T, M}, sf[3] = {4, 1024, M}, sr[2] = {251, M}, srf[3] = {1, 256, M};
    const float *g_wave = get(gf, "wave", 2, sw), *g_raw = get(gf, "logmel_raw", 3, s2),
                *g_bn = get(gf, "logmel_bn", 3, s2), *g_feat = get(gf, "features", 3, sf),
                *r_raw = get(rf, "logmel_raw_every4", 2, sr), *r_feat = get(rf, "features_every4", 3, srf);
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    if (!g_wave || !g_raw || !g_bn || !g_feat || !r_raw || !r_feat || !bp_registry_find(reg, BP_KIND_FRONTEND, "mel")) {
        fprintf(stderr, "missing data or plugin (BATPIPE_PLUGIN_PATH=%s)\n", getenv("BATPIPE_PLUGIN_PATH"));
        bp_registry_free(reg);
        bp_st_close(gf);
        bp_st_close(rf);
        return 1;
    }
    bp_tensor wave = bp_tensor_view(BP_DTYPE_F32, 2, sw, (void *)g_wave);
    double mean_abs;

    /* --- binaural: the melipd golden's log-mel maps ------------------------- */
    const char *kv2[] = {"channels=2", "bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
    run_result b = run(reg, "mel", 2, kv2, 3, &wave);
    CHECK_OK(b.status, &b.err);
    if (b.status == BP_OK) {
        CHECK(b.n == 3 && b.outs[0]->shape[0] == 2 && b.outs[0]->shape[1] == 1024);
        double e = rel_err(b.outs[1]->data, g_raw, 2 * T, 1, 1, &mean_abs);
        fprintf(stderr, "mel channels=2: logmel_raw err %.3e, mean abs %.3e dB\n", e, mean_abs);
        CHECKF(e * 100.0 <= 0.02 && mean_abs <= 2e-4, "logmel_raw %g / %g", e, mean_abs);
        e = rel_err(b.outs[2]->data, g_bn, 2 * T, 1, 1, NULL);
        fprintf(stderr, "mel channels=2: logmel_bn err %.3e\n", e);
        CHECK(e <= 2e-4);
        e = rel_err(b.outs[0]->data, g_feat, 2 * 1024, 1, 1, NULL);
        fprintf(stderr, "mel channels=2: features vs golden features[0:2] err %.3e\n", e);
        CHECK(e <= 2e-4);
        /* Same engine as melipd: identical bits. */
        const char *kvm[] = {"bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
        run_result mi = run(reg, "melipd", 2, kvm, 2, &wave);
        if (mi.status == BP_OK) {
            CHECK(memcmp(mi.outs[1]->data, b.outs[1]->data, bp_tensor_nbytes(b.outs[1])) == 0);
            CHECK(memcmp(mi.outs[2]->data, b.outs[2]->data, bp_tensor_nbytes(b.outs[2])) == 0);
            CHECK(memcmp(mi.outs[0]->data, b.outs[0]->data, bp_tensor_nbytes(b.outs[0])) == 0);
        } else {
            fprintf(stderr, "note: melipd plugin not available for the cross-check: %s\n", mi.err.msg);
        }
        result_free(&mi);
    }

    /* --- mono: left / right = the golden channels, and bit-equal to channels=2 */
    const char *left[] = {"downmix=\"left\""}, *right[] = {"downmix=\"right\"", "target_frames=0"};
    run_result l = run(reg, "mel", 1, left, 1, &wave), r = run(reg, "mel", 3, right, 2, &wave);
    CHECK_OK(l.status, &l.err);
    CHECK_OK(r.status, &r.err);
    if (l.status == BP_OK && r.status == BP_OK && b.status == BP_OK) {
        CHECK(l.outs[0]->shape[0] == 1 && l.outs[0]->shape[1] == 1024 && r.outs[0]->shape[1] == T);
        size_t plane = (size_t)T * M * sizeof(float);
        CHECK(memcmp(l.outs[1]->data, b.outs[1]->data, plane) == 0);
        CHECK(memcmp(r.outs[1]->data, (const float *)b.outs[1]->data + T * M, plane) == 0);
        CHECK(memcmp(r.outs[0]->data, r.outs[1]->data, plane) == 0); /* no BN, no resize: features = raw */
        CHECK(memcmp(l.outs[2]->data, l.outs[1]->data, plane) == 0); /* no BN: logmel_bn = raw */
        CHECK(rel_err(l.outs[1]->data, g_raw, T, 1, 1, NULL) * 100.0 <= 0.02);
    }
    result_free(&l);
    result_free(&r);
    result_free(&b);

    /* --- mono mean against the float64 NumPy reference ------------------------ */
    const char *mean_kv[] = {"bn_mean=[-20.0]", "bn_var=[200.0]"};
    run_result mm1 = run(reg, "mel", 1, mean_kv, 2, &wave), mm2 = run(reg, "mel", 2, mean_kv, 2, &wave);
    CHECK_OK(mm1.status, &mm1.err);
    CHECK_OK(mm2.status, &mm2.err);
    if (mm1.status == BP_OK && mm2.status == BP_OK) {
        double e = rel_err(mm1.outs[1]->data, r_raw, 251, 4, 1, &mean_abs);
        fprintf(stderr, "mel mono mean: logmel_raw err %.3e, mean abs %.3e dB (NumPy float64)\n", e, mean_abs);
        CHECKF(e * 100.0 <= 0.02 && mean_abs <= 2e-4, "%g / %g", e, mean_abs);
        e = rel_err(mm1.outs[0]->data, r_feat, 256, 4, 1, NULL);
        fprintf(stderr, "mel mono mean: features err %.3e (NumPy float64)\n", e);
        CHECK(e <= 2e-4);
        for (uint32_t i = 0; i < mm1.n; i++)
            CHECKF(memcmp(mm1.outs[i]->data, mm2.outs[i]->data, bp_tensor_nbytes(mm1.outs[i])) == 0,
                   "output %u differs between 1 and 2 threads", i);
    }
    result_free(&mm1);
    result_free(&mm2);

    /* --- errors ------------------------------------------------------------------ */
    float *buf = calloc(3 * 32000, sizeof *buf);
    const int64_t mono_shape[2] = {1, 32000}, three_shape[2] = {3, 32000}, st_shape[2] = {2, 32000};
    bp_tensor mono = bp_tensor_view(BP_DTYPE_F32, 2, mono_shape, buf),
              three = bp_tensor_view(BP_DTYPE_F32, 2, three_shape, buf);
    bp_tensor stereo = bp_tensor_view(BP_DTYPE_F32, 2, st_shape, buf);
    const char *two[] = {"channels=2"};
    run_result e1 = run(reg, "mel", 1, two, 1, &mono);
    CHECK(e1.status == BP_ERR_SPEC);
    CHECKF(strstr(e1.err.msg, "1 channel") && strstr(e1.err.msg, "needs 2"), "%s", e1.err.msg);
    result_free(&e1);
    /* The declared input specs: channels=2 wants 2, channels=1 takes any count. */
    const bp_component_info *mc = bp_registry_find(reg, BP_KIND_FRONTEND, "mel");
    const char *one[] = {"channels=1"};
    for (int k = 0; k < 2; k++) {
        bp_paramset *sp = NULL;
        void *inst = NULL;
        CHECK_OK(bp_paramset_from_strings(mc->desc, k ? two : one, 1, &sp, &err), &err);
        CHECK_OK(bp_registry_create(reg, mc, bp_paramset_params(sp), NULL, &inst, &err), &err);
        if (inst) {
            bp_stage *st = inst;
            bp_spec want = bp_spec_any(), have = bp_spec_of(&mono, 32000.0);
            char why[256];
            CHECK_OK(st->input_spec(st, &want, &err), &err);
            CHECK(want.shape[0] == (k ? 2 : BP_DIM_ANY) && want.rate == 32000.0);
            CHECK(bp_spec_satisfies(&have, &want, why, sizeof why) == !k);
            st->destroy(st);
        }
        bp_paramset_free(sp);
    }
    run_result e2 = run(reg, "mel", 1, NULL, 0, &three);
    CHECK(e2.status == BP_ERR_SPEC);
    CHECKF(strstr(e2.err.msg, "3 channels") != NULL, "%s", e2.err.msg);
    result_free(&e2);
    run_result ok1 = run(reg, "mel", 1, NULL, 0, &mono); /* mono input, mono output */
    CHECK_OK(ok1.status, &ok1.err);
    result_free(&ok1);
    const char *bad_bn[] = {"bn_mean=[1.0, 2.0]", "bn_var=[1.0, 1.0]"};
    const char *half_bn[] = {"channels=2", "bn_mean=[1.0, 2.0]"};
    run_result e3 = run(reg, "mel", 1, bad_bn, 2, &stereo);
    CHECK(e3.status == BP_ERR_INVALID);
    CHECKF(strstr(e3.err.msg, "'bn_mean'") && strstr(e3.err.msg, "expected 1"), "%s", e3.err.msg);
    result_free(&e3);
    run_result e4 = run(reg, "mel", 1, half_bn, 2, &stereo);
    CHECK(e4.status == BP_ERR_INVALID);
    CHECKF(strstr(e4.err.msg, "bn_var"), "%s", e4.err.msg);
    result_free(&e4);
    const char *bad_mix[] = {"downmix=\"middle\""};
    bp_paramset *ps = NULL;
    CHECK(bp_paramset_from_strings(bp_registry_find(reg, BP_KIND_FRONTEND, "mel")->desc, bad_mix, 1, &ps, &err) !=
          BP_OK);
    CHECKF(strstr(err.msg, "downmix"), "%s", err.msg);
    bp_paramset_free(ps);
    buf[32000 + 12] = NAN;
    run_result e5 = run(reg, "mel", 1, NULL, 0, &stereo);
    CHECK(e5.status == BP_ERR_NUMERIC);
    CHECKF(strstr(e5.err.msg, "sample 12 of channel 1 is NaN"), "%s", e5.err.msg);
    result_free(&e5);
    free(buf);

    bp_registry_free(reg);
    bp_st_close(gf);
    bp_st_close(rf);
    return TEST_RESULT();
}
