/* bp_nn infrastructure: arena reuse (same requests → same memory, no growth),
 * mark/rewind, views; the counter-based RNG (determinism, independence of
 * streams, moments); init helpers; the parameter registry and its strict
 * safetensors loader (missing, mis-shaped and unexpected tensors are each
 * reported by name; nothing is loaded then; extra names; F16 conversion). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/safetensors.h"
#include "bp_test.h"
#include "nn_testutil.h"

static void test_arena(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_arena *a = e->arena;
    bp_nn_arena_reset(a);
    const int64_t s1[2] = {4, 8}, s2[1] = {100}, s3[3] = {2, 2, 2};
    bp_tensor *t1, *t2, *t3;
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_F32, 2, s1, &t1, &err), &err);
    CHECK_OK(bp_nn_arena_zeros(a, 1, s2, &t2, &err), &err);
    void *d1 = t1->data, *d2 = t2->data;
    size_t bytes = bp_nn_arena_bytes(a);
    size_t mark = bp_nn_arena_mark(a);
    CHECK(mark == 2);
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_I32, 3, s3, &t3, &err), &err);
    CHECK(t3->dtype == BP_DTYPE_I32 && t3->ndim == 3);
    bp_nn_arena_rewind(a, mark);
    CHECK(bp_nn_arena_mark(a) == 2);
    float *z = nt_read(t2);
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= z[i] == 0.0f;
    CHECK(zero);
    free(z);
    /* a second pass with the same requests reuses the memory */
    bp_nn_arena_reset(a);
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_F32, 2, s1, &t1, &err), &err);
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_F32, 1, s2, &t2, &err), &err);
    CHECK(t1->data == d1 && t2->data == d2);
    CHECK(bp_nn_arena_bytes(a) == bytes + bp_nn_arena_bytes(a) - bytes);
    /* smaller requests fit, bigger ones reallocate */
    bp_nn_arena_reset(a);
    const int64_t small[1] = {3}, big[1] = {100000};
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_F32, 1, small, &t1, &err), &err);
    CHECK(t1->data == d1);
    CHECK_OK(bp_nn_arena_get(a, BP_DTYPE_F32, 1, big, &t2, &err), &err);
    CHECK(bp_nn_arena_bytes(a) >= 400000);
    /* views */
    bp_tensor v = bp_nn_view(t2, 10, 2, s1);
    CHECK(v.data == (char *)t2->data + 40 && v.backend == t2->backend && v.owns_data == 0 && v.shape[1] == 8);
    const int64_t bad[1] = {-1};
    CHECK(bp_nn_arena_get(a, BP_DTYPE_F32, 1, bad, &t3, &err) != BP_OK);
    bp_nn_arena_reset(a);
}

static void test_rng(void) {
    CHECK(bp_nn_rng_u64(1, 2, 3) == bp_nn_rng_u64(1, 2, 3));
    CHECK(bp_nn_rng_u64(1, 2, 3) != bp_nn_rng_u64(1, 2, 4));
    CHECK(bp_nn_rng_u64(1, 2, 3) != bp_nn_rng_u64(1, 3, 3));
    CHECK(bp_nn_rng_u64(1, 2, 3) != bp_nn_rng_u64(2, 2, 3));
    CHECK(bp_nn_rng_purpose("a") != bp_nn_rng_purpose("b"));
    double m = 0, v = 0, um = 0, umin = 1, umax = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = bp_nn_rng_normal(7, 8, (uint64_t)i);
        m += x;
        v += x * x;
        double u = bp_nn_rng_uniform(7, 9, (uint64_t)i);
        um += u;
        umin = fmin(umin, u);
        umax = fmax(umax, u);
    }
    m /= n;
    v = v / n - m * m;
    um /= n;
    printf("rng: normal mean %.4f var %.4f, uniform mean %.4f [%.2e, %.6f]\n", m, v, um, umin, umax);
    CHECK(fabs(m) < 0.01 && fabs(v - 1) < 0.01 && fabs(um - 0.5) < 0.005 && umin >= 0 && umax < 1);
}

static void test_init(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    const int64_t s[1] = {20000};
    bp_tensor *t = nt_new(e, 1, s);
    CHECK_OK(bp_nn_init_trunc_normal(t, 1, 2, 0.5, -0.6, 0.6, &err), &err);
    float *v = nt_read(t);
    double lo = 1, hi = -1, sd = 0;
    for (int i = 0; i < 20000; i++) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]), sd += (double)v[i] * v[i];
    CHECK(lo >= -0.6 && hi <= 0.6 && lo < -0.55 && hi > 0.55);
    free(v);
    CHECK_OK(bp_nn_init_uniform(t, 1, 3, 0.25, &err), &err);
    v = nt_read(t);
    lo = 1, hi = -1;
    for (int i = 0; i < 20000; i++) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    CHECK(lo >= -0.25 && hi <= 0.25 && lo < -0.24 && hi > 0.24);
    free(v);
    CHECK_OK(bp_nn_init_normal(t, 1, 4, 2.0, &err), &err);
    v = nt_read(t);
    sd = 0;
    for (int i = 0; i < 20000; i++) sd += (double)v[i] * v[i];
    CHECK(fabs(sqrt(sd / 20000) - 2.0) < 0.05);
    free(v);
    CHECK_OK(bp_nn_init_const(e->be, t, 0.5, &err), &err);
    v = nt_read(t);
    CHECK(v[0] == 0.5f && v[19999] == 0.5f);
    free(v);
    bp_tensor_free(t);
}

/* Write a safetensors file of host tensors. */
static void write_file(const char *path, const char *const *names, const bp_tensor *ts, int n) {
    bp_error err = BP_ERROR_INIT;
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    for (int i = 0; i < n; i++) CHECK_OK(bp_st_writer_add(w, names[i], &ts[i], &err), &err);
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
}

static void test_params(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e->be);
    bp_tensor *wv, *bv, *nb;
    const int64_t sw[2] = {2, 3}, sb[1] = {2};
    CHECK_OK(bp_nn_params_add(&ps, "l.weight", BP_DTYPE_F32, 2, sw, BP_NN_TRAINABLE | BP_NN_DECAY, 1, &wv, &err),
             &err);
    CHECK_OK(bp_nn_params_add(&ps, "l.bias", BP_DTYPE_F32, 1, sb, BP_NN_TRAINABLE, 1, &bv, &err), &err);
    CHECK_OK(bp_nn_params_add(&ps, "n", BP_DTYPE_I64, 0, NULL, BP_NN_OPTIONAL, 2, &nb, &err), &err);
    CHECK(bp_nn_params_add(&ps, "l.bias", BP_DTYPE_F32, 1, sb, 0, 0, NULL, &err) == BP_ERR_INTERNAL);
    CHECK(ps.count == 3 && bp_nn_params_find(&ps, "l.bias")->value == bv && !bp_nn_params_find(&ps, "x"));
    CHECK(bp_nn_params_grad_of(&ps, wv) != NULL && bp_nn_params_grad_of(&ps, nb) == NULL);
    CHECK(bp_nn_params_trainable_numel(&ps) == 8);
    CHECK(strcmp(wv->name, "l.weight") == 0);

    char dir[] = "/tmp/bp_nn_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char good[256], bad[256], half[256];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    snprintf(half, sizeof half, "%s/half.safetensors", dir);
    float w6[6] = {1, 2, 3, 4, 5, 6}, b2[2] = {7, 8}, b3[3] = {0}, ex[2] = {0};
    int64_t n1 = 41;
    const int64_t s3[1] = {3};
    bp_tensor tw = bp_tensor_view(BP_DTYPE_F32, 2, sw, w6), tb = bp_tensor_view(BP_DTYPE_F32, 1, sb, b2),
              tn = bp_tensor_view(BP_DTYPE_I64, 0, NULL, &n1), tb3 = bp_tensor_view(BP_DTYPE_F32, 1, s3, b3),
              tex = bp_tensor_view(BP_DTYPE_F32, 1, sb, ex);
    /* good: every tensor + an accepted extra */
    const char *gn[] = {"l.weight", "l.bias", "n", "frontend.x"};
    bp_tensor gt[] = {tw, tb, tn, tex};
    write_file(good, gn, gt, 4);
    bp_nn_extra_name extra[1] = {{"frontend.x", 1, {2}}};
    CHECK_OK(bp_nn_params_load(&ps, good, extra, 1, "model", &err), &err);
    float *wr = nt_read(wv);
    CHECK(wr[5] == 6.0f);
    free(wr);
    int64_t nr = 0;
    CHECK_OK(bp_tensor_read(nb, &nr, sizeof nr, &err), &err);
    CHECK(nr == 41);
    /* a prefix pattern accepts any shape */
    bp_nn_extra_name pre[1] = {{"frontend.*", -1, {0}}};
    CHECK_OK(bp_nn_params_load(&ps, good, pre, 1, "model", &err), &err);
    /* without the extra declared, it is unexpected */
    CHECK(bp_nn_params_load(&ps, good, NULL, 0, "model", &err) == BP_ERR_FORMAT);
    CHECK(strstr(err.msg, "unexpected: frontend.x") != NULL);
    /* bad: weight missing, bias mis-shaped, an unknown tensor, extra mis-shaped; optional n absent is fine */
    w6[0] = 99;
    const char *bn[] = {"l.bias", "blocks.99.foo", "frontend.x"};
    bp_tensor bt[] = {tb3, tb, tb3};
    write_file(bad, bn, bt, 3);
    CHECK(bp_nn_params_load(&ps, bad, extra, 1, "model", &err) == BP_ERR_FORMAT);
    printf("loader message: %s\n", err.msg);
    CHECK(strstr(err.msg, "model: ") == err.msg);
    CHECK(strstr(err.msg, "missing: l.weight") != NULL);
    CHECK(strstr(err.msg, "l.bias F32[3] (expected F32[2])") != NULL);
    CHECK(strstr(err.msg, "frontend.x F32[3] (expected F32[2])") != NULL);
    CHECK(strstr(err.msg, "unexpected: blocks.99.foo") != NULL);
    CHECK(strstr(err.msg, "4 tensors") != NULL);
    wr = nt_read(wv);
    CHECK(wr[0] == 1.0f); /* nothing loaded */
    free(wr);
    /* F16 values are converted */
    uint16_t h6[6], h2[2];
    for (int i = 0; i < 6; i++) h6[i] = bp_f32_to_f16(0.5f * (float)i);
    for (int i = 0; i < 2; i++) h2[i] = bp_f32_to_f16(-1.0f);
    bp_tensor hw = bp_tensor_view(BP_DTYPE_F16, 2, sw, h6), hb = bp_tensor_view(BP_DTYPE_F16, 1, sb, h2);
    const char *hn[] = {"l.weight", "l.bias"};
    bp_tensor ht[] = {hw, hb};
    write_file(half, hn, ht, 2);
    CHECK_OK(bp_nn_params_load(&ps, half, NULL, 0, "model", &err), &err);
    wr = nt_read(wv);
    CHECK(wr[3] == 1.5f);
    free(wr);
    /* a missing file */
    CHECK(bp_nn_params_load(&ps, "/nonexistent/x.safetensors", NULL, 0, "model", &err) != BP_OK);
    CHECK(strstr(err.msg, "model: ") == err.msg);
    /* zero_grad */
    CHECK_OK(bp_op_fill(e->be, bp_nn_params_grad_of(&ps, wv), 3.0f, &err), &err);
    CHECK_OK(bp_nn_params_zero_grad(&ps, &err), &err);
    float *g = nt_read(bp_nn_params_grad_of(&ps, wv));
    CHECK(g[0] == 0.0f && g[5] == 0.0f);
    free(g);
    unlink(good);
    unlink(bad);
    unlink(half);
    rmdir(dir);
    bp_nn_params_free(&ps);
}

int main(void) {
    test_rng();
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    test_arena(&e);
    test_init(&e);
    test_params(&e);
    nt_env_free(&e);
    return TEST_RESULT();
}
