/* bp_nn pooling layers added for seldnet/audiomae: max pooling (forward
 * against a direct max with first-in-row-major ties, floor sizes; backward
 * against finite differences on well-separated values; dx NULL; shape
 * errors) and the token mean (forward against float64 sums for skip 0 and
 * 1; backward against finite differences; skipped tokens get zero
 * gradient; a sample's result does not depend on the batch; errors). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct pool_case {
    nt_env *e;
    bp_nn_maxpool2d pool;
    bp_nn_token_mean mean;
    int use_mean;
    bp_tensor *x, *y, *dx;
} pool_case;

static bp_status fwd(void *u, bp_error *err) {
    pool_case *c = u;
    if (c->use_mean) return bp_nn_token_mean_forward(&c->mean, &c->e->ctx, c->x, c->y, err);
    return bp_nn_maxpool2d_forward(&c->pool, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    pool_case *c = u;
    if (c->use_mean) return bp_nn_token_mean_backward(&c->mean, &c->e->ctx, dy, c->dx, err);
    return bp_nn_maxpool2d_backward(&c->pool, &c->e->ctx, dy, c->dx, err);
}

/* Distinct values 0.1 apart in a scrambled order: a ±1e-2 step never changes
 * which element is the maximum, so finite differences are exact. */
static void fill_separated(bp_tensor *t, uint64_t seed) {
    int64_t n = bp_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(0.1 * (double)i - 0.05 * (double)n);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher–Yates with the bp_nn counter RNG */
        int64_t j = (int64_t)(bp_nn_rng_u64(seed, 7, (uint64_t)i) % (uint64_t)(i + 1));
        float t2 = v[i];
        v[i] = v[j];
        v[j] = t2;
    }
    nt_write(t, v);
    free(v);
}

static void run_maxpool(nt_env *e, int32_t kh, int32_t kw) {
    bp_error err = BP_ERROR_INIT;
    pool_case c = {.e = e};
    enum { NB = 2, C = 3, H = 7, W = 9 };
    const int64_t OH = H / kh, OW = W / kw;
    const int64_t sx[4] = {NB, C, H, W}, sy[4] = {NB, C, OH, OW};
    bp_nn_maxpool2d_init(&c.pool, kh, kw);
    CHECK(bp_nn_maxpool2d_out_size(H, kh) == OH && bp_nn_maxpool2d_out_size(W, kw) == OW);
    c.x = nt_new(e, 4, sx);
    c.y = nt_new(e, 4, sy);
    c.dx = nt_new(e, 4, sx);
    fill_separated(c.x, (uint64_t)(kh * 10 + kw));
    /* one exact tie: the first (row-major) copy takes the gradient */
    float *x = nt_read(c.x);
    x[1] = 100.0f; /* above every other value */
    x[W] = 100.0f;
    nt_write(c.x, x);
    bp_nn_arena_reset(e->arena);
    CHECK_OK(fwd(&c, &err), &err);
    float *y = nt_read(c.y);
    double worst = 0;
    for (int64_t p = 0; p < NB * C; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double m = -INFINITY;
                for (int64_t a = 0; a < kh; a++)
                    for (int64_t b = 0; b < kw; b++) m = fmax(m, x[(p * H + i * kh + a) * W + j * kw + b]);
                worst = fmax(worst, fabs(m - y[(p * OH + i) * OW + j]));
            }
    printf("maxpool %dx%d on %dx%d: forward max err %.3e\n", (int)kh, (int)kw, H, W, worst);
    CHECK(worst == 0.0);
    free(y);

    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, NULL, 5, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        /* dx NULL is accepted after a kept forward (nothing to compute) */
        CHECK_OK(bp_nn_maxpool2d_backward(&c.pool, &e->ctx, fd.r, NULL, &err), &err);
        float *dx = nt_read(c.dx), *r = nt_read(fd.r);
        /* the tie (if inside one window) goes to element 1, not W */
        if (kh >= 2 && kw >= 2) CHECK(dx[W] == 0.0f && dx[1] == r[0]);
        /* elements outside the pooled area (floor) get no gradient */
        int zero_tail = 1;
        for (int64_t p = 0; p < NB * C; p++)
            for (int64_t i = 0; i < H; i++)
                for (int64_t j = 0; j < W; j++)
                    if ((i >= OH * kh || j >= OW * kw) && dx[(p * H + i) * W + j] != 0.0f) zero_tail = 0;
        CHECK(zero_tail);
        free(dx);
        free(r);
        /* the tie is not differentiable: check on the separated values only */
        fill_separated(c.x, (uint64_t)(kh * 10 + kw));
        CHECK_OK(nt_fd_prepare(&fd, NULL, 5, &err), &err);
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, "maxpool dx");
        CHECKF(ex <= NT_FD_TOL, "maxpool dx fd err %g", ex);
    }
    /* a wrong output shape is refused, naming both shapes */
    const int64_t sbad[4] = {NB, C, OH + 1, OW};
    bp_tensor *bad = nt_new(e, 4, sbad);
    CHECK(bp_nn_maxpool2d_forward(&c.pool, &e->ctx, c.x, bad, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "maxpool2d") && strstr(err.msg, "do not match"), "%s", err.msg);
    /* and a backward without a kept forward */
    bp_nn_maxpool2d fresh;
    bp_nn_maxpool2d_init(&fresh, kh, kw);
    CHECK(bp_nn_maxpool2d_backward(&fresh, &e->ctx, c.y, c.dx, &err) == BP_ERR_INVALID);
    bp_tensor_free(bad);
    free(x);
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
}

static void run_mean(nt_env *e, int64_t skip) {
    bp_error err = BP_ERROR_INIT;
    pool_case c = {.e = e, .use_mean = 1};
    enum { NB = 3, N = 6, D = 5 };
    const int64_t sx[3] = {NB, N, D}, sy[2] = {NB, D};
    bp_nn_token_mean_init(&c.mean, skip);
    c.x = nt_new(e, 3, sx);
    c.y = nt_new(e, 2, sy);
    c.dx = nt_new(e, 3, sx);
    nt_fill(c.x, 3 + (uint64_t)skip, 2.0);
    bp_nn_arena_reset(e->arena);
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *y = nt_read(c.y);
    double ref[NB * D];
    for (int64_t b = 0; b < NB; b++)
        for (int64_t d = 0; d < D; d++) {
            double s = 0;
            for (int64_t n = skip; n < N; n++) s += x[(b * N + n) * D + d];
            ref[b * D + d] = s / (double)(N - skip);
        }
    double fe = nt_rel_err(y, ref, NB * D);
    printf("token mean skip %lld: forward err %.3e\n", (long long)skip, fe);
    CHECKF(fe < 1e-6, "forward err %g", fe);
    /* sample 2 alone gives bit-identical values */
    const int64_t s1[3] = {1, N, D}, sy1[2] = {1, D};
    bp_tensor x1 = bp_nn_view(c.x, 2 * N * D, 3, s1);
    bp_tensor *y1 = nt_new(e, 2, sy1);
    CHECK_OK(bp_nn_token_mean_forward(&c.mean, &e->ctx, &x1, y1, &err), &err);
    float *v1 = nt_read(y1);
    CHECK(memcmp(v1, y + 2 * D, D * sizeof *v1) == 0);
    free(v1);
    bp_tensor_free(y1);

    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, NULL, 8, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        float *dx = nt_read(c.dx);
        int zero = 1;
        for (int64_t b = 0; b < NB; b++)
            for (int64_t n = 0; n < skip; n++)
                for (int64_t d = 0; d < D; d++) zero &= dx[(b * N + n) * D + d] == 0.0f;
        CHECK(zero);
        free(dx);
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, skip ? "token mean dx (skip 1)" : "token mean dx");
        CHECKF(ex <= NT_FD_TOL, "token mean dx fd err %g", ex);
    }
    /* shape errors */
    const int64_t sbad[2] = {NB, D + 1};
    bp_tensor *bad = nt_new(e, 2, sbad);
    CHECK(bp_nn_token_mean_forward(&c.mean, &e->ctx, c.x, bad, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "token mean"), "%s", err.msg);
    bp_nn_token_mean all;
    bp_nn_token_mean_init(&all, N);
    CHECK(bp_nn_token_mean_forward(&all, &e->ctx, c.x, c.y, &err) == BP_ERR_INVALID);
    CHECK(bp_nn_token_mean_backward(&all, &e->ctx, c.y, c.dx, &err) == BP_ERR_INVALID);
    bp_tensor_free(bad);
    free(x);
    free(y);
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    run_maxpool(&e, 2, 4); /* SELDnet-like: time 2, frequency 4 (floor on both axes) */
    run_maxpool(&e, 1, 2);
    run_maxpool(&e, 3, 3);
    run_mean(&e, 0);
    run_mean(&e, 1);
    nt_env_free(&e);
    return TEST_RESULT();
}
