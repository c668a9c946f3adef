/* bp_nn batchnorm2d: eval forward (running stats) and train forward (batch
 * mean, biased variance) against float64; running-stat update (momentum 0.1,
 * unbiased variance) and num_batches_tracked; train-mode backward through
 * the batch statistics against finite differences; eval-mode backward is
 * refused with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "nn_testutil.h"

enum { NB = 2, C = 3, HH = 4, WW = 5 };

typedef struct bn_case {
    nt_env *e;
    bp_nn_batchnorm2d l;
    bp_tensor *x, *y, *dx;
} bn_case;

static bp_status fwd(void *u, bp_error *err) {
    bn_case *c = u;
    return bp_nn_batchnorm2d_forward(&c->l, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    bn_case *c = u;
    return bp_nn_batchnorm2d_backward(&c->l, &c->e->ctx, dy, c->dx, err);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    bn_case c = {.e = &e};
    const int64_t sx[4] = {NB, C, HH, WW};
    const int64_t n = NB * HH * WW;
    CHECK_OK(bp_nn_batchnorm2d_init(&c.l, &ps, "bn", C, 1e-5f, 0.1f, BP_NN_TRAINABLE, 7, &err), &err);
    const char *names[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"};
    CHECK(ps.count == 5);
    for (uint32_t i = 0; i < ps.count && i < 5; i++) CHECK(strcmp(ps.items[i].name, names[i]) == 0);
    CHECK(ps.items[0].grad && ps.items[1].grad && !ps.items[2].grad && !ps.items[3].grad && !ps.items[4].grad);
    CHECK(ps.items[4].value->dtype == BP_DTYPE_I64 && ps.items[4].value->ndim == 0);
    c.x = nt_new(&e, 4, sx);
    c.y = nt_new(&e, 4, sx);
    c.dx = nt_new(&e, 4, sx);
    nt_fill(c.x, 1, 2.0);
    nt_fill(c.l.w, 2, 1.5);
    nt_fill(c.l.b, 3, 0.5);
    const float rm0[C] = {0.3f, -0.2f, 0.1f}, rv0[C] = {1.5f, 0.7f, 2.0f};
    nt_write(c.l.running_mean, rm0);
    nt_write(c.l.running_var, rv0);
    float *x = nt_read(c.x), *w = nt_read(c.l.w), *b = nt_read(c.l.b);
    double ref[NB * C * HH * WW], bm[C], bv[C];
    for (int ch = 0; ch < C; ch++) {
        double m = 0, v = 0;
        for (int i = 0; i < NB; i++)
            for (int p = 0; p < HH * WW; p++) m += x[(i * C + ch) * HH * WW + p];
        m /= n;
        for (int i = 0; i < NB; i++)
            for (int p = 0; p < HH * WW; p++) v += pow(x[(i * C + ch) * HH * WW + p] - m, 2);
        v /= n;
        bm[ch] = m;
        bv[ch] = v;
    }

    /* eval */
    e.ctx.training = 0;
    CHECK_OK(fwd(&c, &err), &err);
    float *y = nt_read(c.y);
    for (int i = 0; i < NB * C * HH * WW; i++) {
        int ch = (i / (HH * WW)) % C;
        ref[i] = (x[i] - rm0[ch]) / sqrt(rv0[ch] + 1e-5) * w[ch] + b[ch];
    }
    double fe = nt_rel_err(y, ref, NB * C * HH * WW);
    printf("batchnorm eval: forward err %.3e\n", fe);
    CHECKF(fe < 1e-6, "eval forward err %g", fe);
    free(y);

    /* train */
    e.ctx.training = 1;
    CHECK_OK(fwd(&c, &err), &err);
    y = nt_read(c.y);
    for (int i = 0; i < NB * C * HH * WW; i++) {
        int ch = (i / (HH * WW)) % C;
        ref[i] = (x[i] - bm[ch]) / sqrt(bv[ch] + 1e-5) * w[ch] + b[ch];
    }
    fe = nt_rel_err(y, ref, NB * C * HH * WW);
    printf("batchnorm train: forward err %.3e\n", fe);
    CHECKF(fe < 2e-6, "train forward err %g", fe);
    free(y);
    float *rm = nt_read(c.l.running_mean), *rv = nt_read(c.l.running_var);
    double erm = 0, erv = 0;
    for (int ch = 0; ch < C; ch++) {
        erm = fmax(erm, fabs(rm[ch] - (0.9 * rm0[ch] + 0.1 * bm[ch])));
        erv = fmax(erv, fabs(rv[ch] - (0.9 * rv0[ch] + 0.1 * bv[ch] * n / (n - 1.0))));
    }
    printf("batchnorm running stats: mean err %.3e var err %.3e\n", erm, erv);
    CHECK(erm < 1e-6 && erv < 1e-6);
    int64_t nbt = -1;
    CHECK_OK(bp_tensor_read(c.l.num_batches_tracked, &nbt, sizeof nbt, &err), &err);
    CHECK(nbt == 1);
    free(rm);
    free(rv);
    free(x);
    free(w);
    free(b);

    /* train-mode backward */
    nt_fd fd = {&e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, &ps, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, "dx");
        CHECKF(ex <= NT_FD_TOL, "dx fd err %g", ex);
        double ep = nt_fd_check_params(&fd, &ps, 0, NT_FD_H, NT_FD_TOL);
        CHECKF(ep <= NT_FD_TOL, "param fd err %g", ep);
    }
    /* eval-mode backward: refused, naming the layer */
    e.ctx.training = 0;
    e.ctx.keep = 1;
    CHECK_OK(fwd(&c, &err), &err);
    st = bp_nn_batchnorm2d_backward(&c.l, &e.ctx, c.y, c.dx, &err);
    CHECK(st == BP_ERR_UNSUPPORTED && strstr(err.msg, "bn.weight"));
    e.ctx.keep = 0;
    e.ctx.training = 1;

    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
    nt_env_free(&e);
    return TEST_RESULT();
}
