/* audiomae at ViT-B size with AudioMAE's 527-class AudioSet head (the
 * defaults): the trainable parameter count against the closed form
 * (85.66 M, README.md), the token count (CLS + 512 patches) and one
 * evaluation forward of a 10 s fbank (shapes, finite). Not under valgrind. */
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
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_ENCODER, "audiomae");
    CHECKF(comp != NULL, "audiomae not found");
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
    const int64_t D = 768, H = 3072, L = 12, K = 527;
    const int64_t block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (H * D + H) + (D * H + D);
    const int64_t want = D /* cls_token */ + (D * 256 + D) /* patch_embed */ + L * block + (K * D + K) + 2 * D;
    printf("audiomae (ViT-B/16, 527 classes): %lld trainable parameters (%.2f M); %lld with the frozen pos_embed "
           "(%.2f M)\n",
           (long long)n_train, (double)n_train / 1e6, (long long)n_all, (double)n_all / 1e6);
    CHECK(n_train == want);
    CHECK(n_all == want + 513 * D);
    CHECK(fabs((double)n_train / 1e6 - 85.66) < 0.01);
    const int64_t sx[4] = {1, 1, 1024, 128};
    bp_tensor probe = bp_tensor_view(BP_DTYPE_F32, 4, sx, NULL);
    bp_spec have = bp_spec_of(&probe, 0.0);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n = BP_MAX_OUTPUTS;
    CHECK_OK(st->prepare(st, &have, ports, &n, &err), &err);
    CHECK(n == 2 && ports[0].spec.shape[1] == 513 && ports[0].spec.shape[2] == 768 && ports[1].spec.shape[1] == 527);
    bp_tensor *x = NULL, *outs[2] = {NULL, NULL};
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 4, sx, &x, &err), &err);
    float *v = malloc(1024 * 128 * sizeof *v);
    for (int64_t i = 0; i < 1024 * 128; i++) v[i] = (float)sin(0.001 * (double)i);
    CHECK_OK(bp_tensor_write(x, v, 1024 * 128 * sizeof *v, &err), &err);
    free(v);
    for (uint32_t i = 0; i < n && i < 2; i++)
        CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, ports[i].spec.ndim, ports[i].spec.shape, &outs[i], &err), &err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(st->process(st, x, outs, 2, &err), &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("one evaluation forward (batch 1, 2 threads): %.2f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    for (int i = 0; i < 2; i++) CHECK_OK(bp_tensor_check_finite(outs[i], "output", &err), &err);
    for (int i = 0; i < 2; i++) bp_tensor_free(outs[i]);
    bp_tensor_free(x);
    st->destroy(st);
    bp_paramset_free(ps);
    bp_backend_free(be);
    bp_paramset_free(bps);
    bp_registry_free(reg);
    return TEST_RESULT();
}
