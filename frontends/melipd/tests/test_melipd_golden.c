/* Golden test of the melipd frontend: the plugin is loaded through the
 * registry (as a pipeline would), run on the golden `wave` with the golden
 * BatchNorm statistics, and every intermediate is compared with
 * tests/data/golden/melipd_10s.safetensors using the golden README's rule
 * err = max|c - g| / max|g| and its recommended float32 tolerances. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "batpipe/spec.h"
#include "bp_test.h"
#include "fe_mel.h"

typedef struct errs {
    double rel;      /* max|c - g| / max|g| */
    double rel_mean; /* mean|c - g| / max|g| */
    double abs_max;  /* max|c - g| */
    double abs_mean; /* mean|c - g| */
} errs;

static errs compare(const float *c, const float *g, size_t n) {
    double maxg = 0.0, maxd = 0.0, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - (double)g[i]);
        if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        sum += d;
        maxg = fmax(maxg, fabs((double)g[i]));
    }
    errs e = {maxd / maxg, sum / (double)n / maxg, maxd, sum / (double)n};
    return e;
}

static void report(const char *name, errs e, double tol, double tol_mean) {
    fprintf(stderr, "  %-16s err %.3e (tol %.0e)  mean %.3e (tol %.0e)  max abs %.3e\n", name, e.rel, tol, e.rel_mean,
            tol_mean, e.abs_max);
    CHECKF(e.rel <= tol, "%s: err %g > %g", name, e.rel, tol);
    CHECKF(e.rel_mean <= tol_mean, "%s: mean err %g > %g", name, e.rel_mean, tol_mean);
}

static const float *golden(const bp_st_file *f, const char *name, int32_t ndim, const int64_t *shape) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor t;
    bp_status st = bp_st_get_checked(f, name, BP_DTYPE_F32, ndim, shape, &t, &err);
    if (st != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return t.data;
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/melipd_10s.safetensors", data);
    bp_st_file *gf = NULL;
    bp_status st = bp_st_open(path, &gf, &err);
    if (st != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int64_t T = 1001, M = 128, F = 1024;
    const int64_t sw[2] = {2, 320000}, smel[2] = {513, 128}, s2[3] = {2, T, M}, s1[2] = {T, M}, s4[3] = {4, T, M},
                  sf[3] = {4, F, M};
    const float *g_wave = golden(gf, "wave", 2, sw), *g_mel = golden(gf, "mel_fb", 2, smel);
    const float *g_raw = golden(gf, "logmel_raw", 3, s2), *g_bn = golden(gf, "logmel_bn", 3, s2);
    const float *g_cos = golden(gf, "ipd_cos", 2, s1), *g_sin = golden(gf, "ipd_sin", 2, s1);
    const float *g_stacked = golden(gf, "stacked", 3, s4), *g_feat = golden(gf, "features", 3, sf);
    if (!g_wave || !g_mel || !g_raw || !g_bn || !g_cos || !g_sin || !g_stacked || !g_feat) return 1;

    /* mel_fb: a direct call into frontends/common. */
    bp_fe_mel mel;
    CHECK_OK(bp_fe_mel_init(&mel, 32000.0, 1024, 128, 50.0, 14000.0, &err), &err);
    fprintf(stderr, "melipd vs %s:\n", path);
    report("mel_fb", compare(mel.dense, g_mel, 513 * 128), 1e-6, 1e-6);
    bp_fe_mel_free(&mel);

    /* The plugin, through the registry. */
    bp_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.n_threads = 2;
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(&host, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    if (!comp) {
        fprintf(stderr, "melipd not found in BATPIPE_PLUGIN_PATH=%s\n", getenv("BATPIPE_PLUGIN_PATH"));
        bp_registry_free(reg);
        bp_st_close(gf);
        return 1;
    }
    const char *kv[] = {"bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
    bp_paramset *ps = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, kv, 2, &ps, &err), &err);
    void *inst = NULL;
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err), &err);
    bp_stage *stage = inst;
    if (!stage) return TEST_RESULT();

    bp_spec want = bp_spec_any();
    CHECK_OK(stage->input_spec(stage, &want, &err), &err);
    bp_tensor wave = bp_tensor_view(BP_DTYPE_F32, 2, sw, (void *)g_wave);
    bp_spec have = bp_spec_of(&wave, 32000.0);
    char why[256];
    CHECKF(bp_spec_satisfies(&have, &want, why, sizeof why), "%s", why);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports = BP_MAX_OUTPUTS;
    CHECK_OK(stage->prepare(stage, &have, ports, &n_ports, &err), &err);
    CHECK(n_ports == 6);
    bp_tensor *outs[BP_MAX_OUTPUTS] = {NULL};
    for (uint32_t i = 0; i < n_ports; i++)
        CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, ports[i].spec.ndim, ports[i].spec.shape, &outs[i], &err), &err);
    CHECK_OK(stage->process(stage, &wave, outs, n_ports, &err), &err);

    const char *names[6] = {"features", "logmel_raw", "logmel_bn", "ipd_cos", "ipd_sin", "stacked"};
    for (int i = 0; i < 6; i++) CHECKF(strcmp(ports[i].name, names[i]) == 0, "port %d is %s", i, ports[i].name);
    const float *c_feat = outs[0]->data, *c_raw = outs[1]->data, *c_bn = outs[2]->data, *c_cos = outs[3]->data,
                *c_sin = outs[4]->data, *c_stacked = outs[5]->data;
    size_t n2 = (size_t)(2 * T * M), n1 = (size_t)(T * M), nf2 = (size_t)(2 * F * M);

    errs e = compare(c_raw, g_raw, n2);
    fprintf(stderr, "  %-16s max abs %.3e dB (tol 2e-02)  mean abs %.3e dB (tol 2e-04)  err %.3e\n", "logmel_raw",
            e.abs_max, e.abs_mean, e.rel);
    CHECKF(e.abs_max <= 0.02 && e.abs_mean <= 2e-4, "logmel_raw: %g / %g dB", e.abs_max, e.abs_mean);
    report("logmel_bn", compare(c_bn, g_bn, n2), 2e-4, 2e-6);
    report("ipd_cos", compare(c_cos, g_cos, n1), 5e-3, 2e-5);
    report("ipd_sin", compare(c_sin, g_sin, n1), 5e-3, 2e-5);
    report("stacked[0:2]", compare(c_stacked, g_stacked, n2), 2e-4, 2e-6);
    report("stacked[2:4]", compare(c_stacked + n2, g_stacked + n2, n2), 5e-3, 2e-5);
    report("features[0:2]", compare(c_feat, g_feat, nf2), 2e-4, 2e-6);
    report("features[2:4]", compare(c_feat + nf2, g_feat + nf2, nf2), 5e-3, 2e-5);

    /* The silent tail (frames 962-1000 see only zeros): -100 dB, IPD 0. */
    double tail_db = 0.0, tail_sin = 0.0;
    for (int64_t t = 962; t < T; t++)
        for (int64_t m = 0; m < M; m++) {
            tail_db = fmax(tail_db, fabs(c_raw[t * M + m] + 100.0));
            tail_db = fmax(tail_db, fabs(c_raw[(T + t) * M + m] + 100.0));
            tail_sin = fmax(tail_sin, fabs(c_sin[t * M + m]));
        }
    CHECKF(tail_db < 1e-4 && tail_sin == 0.0, "silent tail: %g dB off, sin %g", tail_db, tail_sin);

    for (uint32_t i = 0; i < n_ports; i++) bp_tensor_free(outs[i]);
    stage->destroy(stage);
    bp_paramset_free(ps);
    bp_registry_free(reg);
    bp_st_close(gf);
    return TEST_RESULT();
}
