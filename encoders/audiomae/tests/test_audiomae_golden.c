/* audiomae against a PyTorch reference (tests/data/golden/
 * audiomae_tiny.safetensors, written by make_audiomae_ref.py: D = 32, 2
 * blocks, 4 heads, 7 classes, batch 2, float64): the state dict is loaded
 * through the plugin's `weights` parameter (AudioMAE's names, strict), then
 *   - evaluation (`process`): logits and all 513 tokens;
 *   - a training step without augmentation (trainable forward, backward of
 *     L = Σ r ⊙ logits): the logits again, every parameter gradient and the
 *     input gradient of time rows 0..31
 * are compared with the reference. Errors are max|ours − ref| / max|ref| per
 * tensor; tolerances (float32 against float64; measured <= 8e-7): 1e-5 forward, 2e-5
 * gradients. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"

#define D 32
#define NCLS 7
#define NB 2
#define TOL_FWD 1e-5
#define TOL_GRAD 2e-5

/* The reference's input formula (make_audiomae_ref.py), in double, rounded to float. */
static void make_input(float *x) {
    for (int b = 0; b < NB; b++)
        for (int t = 0; t < 1024; t++)
            for (int f = 0; f < 128; f++)
                x[((size_t)b * 1024 + t) * 128 + f] =
                    (float)(1.5 * sin(0.37 * t * (b + 1) + 0.11 * f) + 0.1 * cos(0.013 * t * f));
}

/* A reference tensor as double (F32 or F64 in the file). */
static double *ref_get(const bp_st_file *f, const char *name, int64_t *n) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor t;
    if (bp_st_get(f, name, &t, &err) != BP_OK) {
        fprintf(stderr, "reference: %s\n", err.msg);
        return NULL;
    }
    *n = bp_tensor_numel(&t);
    double *v = malloc((size_t)*n * sizeof *v);
    for (int64_t i = 0; i < *n; i++)
        v[i] = t.dtype == BP_DTYPE_F64 ? ((const double *)t.data)[i] : (double)((const float *)t.data)[i];
    return v;
}

static double rel_err(const float *a, const double *ref, int64_t n) {
    double m = 0, d = 0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(ref[i]));
        d = fmax(d, fabs((double)a[i] - ref[i]));
    }
    return m > 0 ? d / m : d;
}

static double compare(const bp_st_file *f, const char *ref_name, const bp_tensor *ours, double tol, const char *what) {
    int64_t n = 0;
    double *ref = ref_get(f, ref_name, &n);
    CHECKF(ref && n == bp_tensor_numel(ours), "%s: reference %s missing or of another size", what, ref_name);
    if (!ref || n != bp_tensor_numel(ours)) {
        free(ref);
        return INFINITY;
    }
    float *v = malloc((size_t)n * sizeof *v);
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_tensor_read(ours, v, (size_t)n * sizeof *v, &err), &err);
    double e = rel_err(v, ref, n);
    printf("  %-34s %8lld values  rel err %.2e\n", what, (long long)n, e);
    CHECKF(e <= tol, "%s: rel err %g > %g", what, e, tol);
    free(v);
    free(ref);
    return e;
}

/* The reference's state-dict tensors (not r, logits, tokens, pooled, grad.*) into a weights file. */
static int write_weights(const bp_st_file *f, const char *path) {
    bp_error err = BP_ERROR_INIT;
    bp_st_writer *w = NULL;
    int n = 0;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    for (uint32_t i = 0; w && i < bp_st_count(f); i++) {
        const char *name = bp_st_name(f, i);
        if (!strcmp(name, "r") || !strcmp(name, "logits") || !strcmp(name, "tokens") || !strcmp(name, "pooled") ||
            !strncmp(name, "grad.", 5))
            continue;
        bp_tensor t;
        CHECK_OK(bp_st_get_index(f, i, &t, &err), &err);
        CHECK_OK(bp_st_writer_add(w, name, &t, &err), &err);
        n++;
    }
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    return n;
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    char ref_path[512], dir[] = "/tmp/bp_audiomae_golden_XXXXXX", wpath[300], wkv[320];
    snprintf(ref_path, sizeof ref_path, "%s/golden/audiomae_tiny.safetensors", data ? data : "tests/data");
    bp_st_file *f = NULL;
    if (bp_st_open(ref_path, &f, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
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

    CHECK(mkdtemp(dir) != NULL);
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    snprintf(wkv, sizeof wkv, "weights=\"%s\"", wpath);
    int n_weights = write_weights(f, wpath);
    CHECK(n_weights == 4 + 2 * 12 + 4);
    const char *kv[] = {"dim=32", "depth=2", "heads=4", "n_classes=7", wkv};
    CHECK_OK(bp_paramset_from_strings(comp->desc, kv, 5, &ps, &err), &err);
    void *inst = NULL;
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), be, &inst, &err), &err);
    bp_stage *st = inst;
    if (!st) return TEST_RESULT();

    const int64_t sx[4] = {NB, 1, 1024, 128}, st_[3] = {NB, 513, D}, sl[2] = {NB, NCLS}, sh[4] = {NB, 1, 32, 128};
    bp_tensor *x = NULL, *dx = NULL, *tok = NULL, *logits = NULL, *dl = NULL;
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 4, sx, &x, &err), &err);
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 4, sx, &dx, &err), &err);
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 3, st_, &tok, &err), &err);
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 2, sl, &logits, &err), &err);
    CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 2, sl, &dl, &err), &err);
    float *xv = malloc((size_t)NB * 1024 * 128 * sizeof *xv);
    make_input(xv);
    CHECK_OK(bp_tensor_write(x, xv, bp_tensor_nbytes(x), &err), &err);
    free(xv);

    /* 1. evaluation */
    printf("evaluation (process):\n");
    bp_tensor *outs[2] = {tok, logits};
    CHECK_OK(st->process(st, x, outs, 2, &err), &err);
    compare(f, "logits", logits, TOL_FWD, "logits");
    compare(f, "tokens", tok, TOL_FWD, "tokens");

    /* 2. a training step without augmentation */
    printf("training step (no masking, SpecAugment or drop path), L = sum(r * logits):\n");
    const bp_trainable *tr = st->get_extension(st, BP_EXT_TRAINABLE_ID);
    int64_t nr = 0;
    double *r = ref_get(f, "r", &nr);
    float rf[NB * NCLS];
    for (int i = 0; i < NB * NCLS && r; i++) rf[i] = (float)r[i];
    free(r);
    CHECK_OK(bp_tensor_write(dl, rf, sizeof rf, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 1;
    CHECK_OK(tr->set_training(st, 1, &err), &err);
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, outs, 2, &err), &err);
    compare(f, "logits", logits, TOL_FWD, "logits (training forward)");
    const bp_tensor *douts[2] = {NULL, dl};
    CHECK_OK(tr->backward(st, douts, 2, dx, &err), &err);
    double worst = 0;
    int n_grads = 0;
    for (uint32_t i = 0; i < tr->param_count(st); i++) {
        bp_train_param p;
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        char rn[160];
        snprintf(rn, sizeof rn, "grad.%s", p.name);
        bp_tensor probe;
        bp_error e2 = BP_ERROR_INIT;
        int in_ref = bp_st_get(f, rn, &probe, &e2) == BP_OK;
        CHECKF(in_ref == (p.grad != NULL), "%s: trainable %d but reference gradient %s", p.name, p.grad != NULL,
               in_ref ? "present" : "absent");
        if (!p.grad || !in_ref) continue;
        worst = fmax(worst, compare(f, rn, p.grad, TOL_GRAD, rn));
        n_grads++;
    }
    CHECK(n_grads == 31);
    /* the input gradient of time rows 0..31 (a view of dx) */
    bp_tensor *dxh = NULL;
    CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 4, sh, &dxh, &err), &err);
    float *dxv = malloc(bp_tensor_nbytes(dx));
    CHECK_OK(bp_tensor_read(dx, dxv, bp_tensor_nbytes(dx), &err), &err);
    for (int b = 0; b < NB; b++)
        memcpy((float *)dxh->data + (size_t)b * 32 * 128, dxv + (size_t)b * 1024 * 128, 32 * 128 * sizeof(float));
    free(dxv);
    worst = fmax(worst, compare(f, "grad.input_head", dxh, TOL_GRAD, "grad.input (rows 0..31)"));
    printf("worst gradient error %.2e (tolerance %.0e)\n", worst, TOL_GRAD);

    bp_tensor_free(dxh);
    bp_tensor_free(x);
    bp_tensor_free(dx);
    bp_tensor_free(tok);
    bp_tensor_free(logits);
    bp_tensor_free(dl);
    st->destroy(st);
    bp_paramset_free(ps);
    bp_backend_free(be);
    bp_paramset_free(bps);
    bp_registry_free(reg);
    bp_st_close(f);
    unlink(wpath);
    rmdir(dir);
    return TEST_RESULT();
}
