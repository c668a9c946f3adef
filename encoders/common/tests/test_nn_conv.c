/* bp_nn conv2d and activations: forward against a direct float64
 * cross-correlation (zero padding, stride), backward (dx, dW, db) against
 * finite differences for 3x3/pad 1/stride 1 and 3x3/pad 1/stride 2; GELU and
 * ReLU activations' backward against finite differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct conv_case {
    nt_env *e;
    bp_nn_conv2d l;
    bp_nn_act act;
    int use_act;
    bp_tensor *x, *y, *dx;
} conv_case;

static bp_status fwd(void *u, bp_error *err) {
    conv_case *c = u;
    if (c->use_act) return bp_nn_act_forward(&c->act, &c->e->ctx, c->x, c->y, err);
    return bp_nn_conv2d_forward(&c->l, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    conv_case *c = u;
    if (c->use_act) return bp_nn_act_backward(&c->act, &c->e->ctx, dy, c->dx, err);
    return bp_nn_conv2d_backward(&c->l, &c->e->ctx, dy, c->dx, err);
}

static void run_conv(nt_env *e, int32_t stride, int bias) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e->be);
    conv_case c = {.e = e};
    enum { NB = 2, C = 3, O = 4, HH = 6, WW = 5, K = 3 };
    const int64_t OH = bp_nn_conv2d_out_size(HH, K, stride, 1), OW = bp_nn_conv2d_out_size(WW, K, stride, 1);
    const int64_t sx[4] = {NB, C, HH, WW}, sy[4] = {NB, O, OH, OW};
    CHECK_OK(bp_nn_conv2d_init(&c.l, &ps, "conv", C, O, K, K, stride, 1, bias, BP_NN_TRAINABLE | BP_NN_DECAY, 0,
                               &err),
             &err);
    c.x = nt_new(e, 4, sx);
    c.y = nt_new(e, 4, sy);
    c.dx = nt_new(e, 4, sx);
    nt_fill(c.x, 1, 1.0);
    nt_fill(c.l.w, 2, 0.5);
    if (bias) nt_fill(c.l.b, 3, 0.5);
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *w = nt_read(c.l.w), *b = bias ? nt_read(c.l.b) : NULL, *y = nt_read(c.y);
    int64_t ny = bp_tensor_numel(c.y);
    double *ref = malloc((size_t)ny * sizeof *ref);
    for (int n = 0; n < NB; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double s = b ? b[o] : 0.0;
                    for (int ci = 0; ci < C; ci++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int hi = i * stride - 1 + ki, wj = j * stride - 1 + kj;
                                if (hi < 0 || hi >= HH || wj < 0 || wj >= WW) continue;
                                s += (double)x[((n * C + ci) * HH + hi) * WW + wj] *
                                     w[((o * C + ci) * K + ki) * K + kj];
                            }
                    ref[((n * O + o) * OH + i) * OW + j] = s;
                }
    double fe = nt_rel_err(y, ref, ny);
    printf("conv2d stride %d bias %d: forward err %.3e\n", stride, bias, fe);
    CHECKF(fe < 1e-6, "forward err %g", fe);
    free(ref);
    free(x);
    free(w);
    free(b);
    free(y);

    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, &ps, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, "dx");
        CHECKF(ex <= NT_FD_TOL, "dx fd err %g", ex);
        double ep = nt_fd_check_params(&fd, &ps, 0, NT_FD_H, NT_FD_TOL);
        CHECKF(ep <= NT_FD_TOL, "param fd err %g", ep);
        /* weights only (dx NULL) gives the same weight grad */
        float *g1 = nt_read(c.l.dw);
        CHECK_OK(bp_nn_params_zero_grad(&ps, &err), &err);
        bp_nn_arena_reset(e->arena);
        e->ctx.keep = 1;
        CHECK_OK(fwd(&c, &err), &err);
        CHECK_OK(bp_nn_conv2d_backward(&c.l, &e->ctx, fd.r, NULL, &err), &err);
        e->ctx.keep = 0;
        float *g2 = nt_read(c.l.dw);
        double d = 0;
        for (int64_t i = 0; i < bp_tensor_numel(c.l.w); i++) d = fmax(d, fabs(g1[i] - g2[i]));
        CHECK(d == 0.0);
        free(g1);
        free(g2);
    }
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
}

static void run_act(nt_env *e, int32_t op) {
    bp_error err = BP_ERROR_INIT;
    conv_case c = {.e = e, .act = {op, NULL}, .use_act = 1};
    const int64_t s[2] = {3, 7};
    c.x = nt_new(e, 2, s);
    c.y = nt_new(e, 2, s);
    c.dx = nt_new(e, 2, s);
    nt_fill(c.x, 4, 3.0);
    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, NULL, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, 1e-3, bp_unary_op_name(op));
        CHECKF(ex <= NT_FD_TOL, "%s dx fd err %g", bp_unary_op_name(op), ex);
    }
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    run_conv(&e, 1, 0);
    run_conv(&e, 2, 1);
    run_act(&e, BP_UNARY_GELU);
    run_act(&e, BP_UNARY_RELU);
    nt_env_free(&e);
    return TEST_RESULT();
}
