/* bp_nn attention: forward against an explicit float64 per-head loop (qkv
 * columns [q | k | v], head j = columns j·dh…, scale 1/√dh, softmax over all
 * keys), backward (dx and qkv/proj weights and biases) against finite
 * differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct att_case {
    nt_env *e;
    bp_nn_attention a;
    bp_tensor *x, *y, *dx;
} att_case;

static bp_status fwd(void *u, bp_error *err) {
    att_case *c = u;
    return bp_nn_attention_forward(&c->a, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    att_case *c = u;
    return bp_nn_attention_backward(&c->a, &c->e->ctx, dy, c->dx, err);
}

enum { B = 2, N = 5, D = 8, H = 2, DH = D / H };

static void reference(const float *x, const float *wq, const float *bq, const float *wp, const float *bp,
                      double *y) {
    static double qkv[B][N][3 * D], ctx[B][N][D];
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < 3 * D; o++) {
                double s = bq[o];
                for (int i = 0; i < D; i++) s += (double)x[(b * N + n) * D + i] * wq[o * D + i];
                qkv[b][n][o] = s;
            }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++) {
                double sc[N], m = -1e300, z = 0;
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int d = 0; d < DH; d++) s += qkv[b][i][h * DH + d] * qkv[b][j][D + h * DH + d];
                    sc[j] = s / sqrt((double)DH);
                    m = fmax(m, sc[j]);
                }
                for (int j = 0; j < N; j++) z += (sc[j] = exp(sc[j] - m));
                for (int d = 0; d < DH; d++) {
                    double s = 0;
                    for (int j = 0; j < N; j++) s += sc[j] / z * qkv[b][j][2 * D + h * DH + d];
                    ctx[b][i][h * DH + d] = s;
                }
            }
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < D; o++) {
                double s = bp[o];
                for (int i = 0; i < D; i++) s += ctx[b][n][i] * wp[o * D + i];
                y[(b * N + n) * D + o] = s;
            }
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    att_case c = {.e = &e};
    const int64_t sx[3] = {B, N, D};
    CHECK_OK(bp_nn_attention_init(&c.a, &ps, "attn", D, H, 1, BP_NN_TRAINABLE | BP_NN_DECAY, 2, &err), &err);
    CHECK(ps.count == 4 && bp_nn_params_find(&ps, "attn.qkv.weight")->value->shape[0] == 3 * D);
    CHECK(bp_nn_attention_init(&c.a, &ps, "bad", 9, 2, 1, 0, 0, &err) == BP_ERR_INVALID);
    c.x = nt_new(&e, 3, sx);
    c.y = nt_new(&e, 3, sx);
    c.dx = nt_new(&e, 3, sx);
    nt_fill(c.x, 1, 1.0);
    nt_fill(c.a.qkv.w, 2, 0.9); /* large enough for peaked attention */
    nt_fill(c.a.qkv.b, 3, 0.3);
    nt_fill(c.a.proj.w, 4, 0.5);
    nt_fill(c.a.proj.b, 5, 0.2);
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *wq = nt_read(c.a.qkv.w), *bq = nt_read(c.a.qkv.b), *wp = nt_read(c.a.proj.w),
          *bp = nt_read(c.a.proj.b), *y = nt_read(c.y);
    double ref[B * N * D];
    reference(x, wq, bq, wp, bp, ref);
    double fe = nt_rel_err(y, ref, B * N * D);
    printf("attention: forward err %.3e\n", fe);
    CHECKF(fe < 5e-6, "forward err %g", fe);
    free(x);
    free(wq);
    free(bq);
    free(wp);
    free(bp);
    free(y);
    CHECK(bp_nn_arena_mark(e.arena) == 0);

    nt_fd fd = {&e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, &ps, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, "dx");
        CHECKF(ex <= NT_FD_TOL, "dx fd err %g", ex);
        double ep = nt_fd_check_params(&fd, &ps, 0, NT_FD_H, NT_FD_TOL);
        CHECKF(ep <= NT_FD_TOL, "param fd err %g", ep);
    }
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
    nt_env_free(&e);
    return TEST_RESULT();
}
