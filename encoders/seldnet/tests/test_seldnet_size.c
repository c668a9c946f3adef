/* seldnet at the paper's size (defaults: D 768, 12 blocks, 12 heads, MLP
 * 3072, 64 filters, pools (2,4) (1,4) (1,2), 355 classes, melipd input):
 * the trainable parameter count against the closed form of the design
 * (README.md), the token count (3 CLS + 512 frames) and one evaluation
 * forward of a 10 s clip (shapes, finite). Not under valgrind (~86 M
 * parameters). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "bp_test.h"

int main(void) {
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    bp_backend *be = NULL;
    bp_paramset *bps = NULL, *ps = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    const bp_component_info *cpu = bp_registry_find(reg, BP_KIND_BACKEND, "cpu");
    if (!cpu) TEST_SKIP("no cpu backend");
    const char *bkv[] = {"threads=2"};
    CHECK_OK(bp_paramset_from_strings(cpu->desc, bkv, 1, &bps, &err), &err);
    CHECK_OK(bp_registry_create_backend(reg, "cpu", bp_paramset_params(bps), &be, &err), &err);
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_ENCODER, "seldnet");
    CHECKF(comp != NULL, "seldnet not found");
    if (!be || !comp) return TEST_RESULT();
    CHECK_OK(bp_paramset_from_strings(comp->desc, NULL, 0, &ps, &err), &err);
    void *inst = NULL;
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), be, &inst, &err), &err);
    bp_stage *st = inst;
    if (!st) return TEST_RESULT();
    const bp_trainable *tr = st->get_extension(st, BP_EXT_TRAINABLE_ID);
    int64_t n_train = 0, n_all = 0;
    for (uint32_t i = 0; i < tr->param_count(st); i++) {
        bp_train_param p;
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        n_all += bp_tensor_numel(p.value);
        if (p.trainable) n_train += bp_tensor_numel(p.value);
    }
    /* closed form: D = 768, hidden 3072, 12 blocks, 64 filters, 4 maps in, 4 bins out, 355 classes */
    const int64_t D = 768, H = 3072, L = 12, F = 64, C = 4, K = 355;
    const int64_t block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (H * D + H) + (D * H + D);
    const int64_t conv = (F * C * 9 + F) + 2 * (F * F * 9 + F) + 3 * 2 * F;
    const int64_t bridge = (F * 4) * D + D;
    const int64_t top = 3 * D + 3 * 2 * D + (K * D + K) + (21 * D + 21) + (360 * D + 360) + (180 * D + 180);
    const int64_t want = L * block + conv + bridge + top;
    printf("seldnet (paper size): %lld trainable parameters (%.2f M; blocks %.2f M, conv stack %lld, bridge %lld, "
           "CLS+norms+heads %lld); %lld values with pos_embed and BatchNorm buffers\n",
           (long long)n_train, (double)n_train / 1e6, (double)(L * block) / 1e6, (long long)conv, (long long)bridge,
           (long long)top, (long long)n_all);
    CHECK(n_train == want);
    CHECK(n_train > 85000000 && n_train < 90000000);
    /* one forward of a 10 s clip */
    const int64_t sx[4] = {1, 4, 1024, 128};
    bp_tensor probe = bp_tensor_view(BP_DTYPE_F32, 4, sx, NULL);
    bp_spec have = bp_spec_of(&probe, 0.0);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n = BP_MAX_OUTPUTS;
    CHECK_OK(st->prepare(st, &have, ports, &n, &err), &err);
    CHECK(n == 5 && ports[0].spec.shape[1] == 515 && ports[0].spec.shape[2] == 768 && ports[1].spec.shape[1] == 355);
    bp_tensor *x = NULL, *outs[5] = {NULL};
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 4, sx, &x, &err), &err);
    float *v = malloc(4 * 1024 * 128 * sizeof *v);
    for (int64_t i = 0; i < 4 * 1024 * 128; i++) v[i] = (float)sin(0.001 * (double)i) * 3.0f;
    CHECK_OK(bp_tensor_write(x, v, 4 * 1024 * 128 * sizeof *v, &err), &err);
    free(v);
    for (uint32_t i = 0; i < n && i < 5; i++)
        CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, ports[i].spec.ndim, ports[i].spec.shape, &outs[i], &err), &err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(st->process(st, x, outs, 5, &err), &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("one evaluation forward (batch 1, 2 threads): %.2f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    for (int i = 0; i < 5; i++) CHECK_OK(bp_tensor_check_finite(outs[i], "output", &err), &err);
    for (int i = 0; i < 5; i++) bp_tensor_free(outs[i]);
    bp_tensor_free(x);
    st->destroy(st);
    bp_paramset_free(ps);
    bp_backend_free(be);
    bp_paramset_free(bps);
    bp_registry_free(reg);
    return TEST_RESULT();
}
