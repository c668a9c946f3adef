/* bp_nn layernorm: forward against float64 (eps 1e-6, biased variance),
 * backward (dx, dw, db) against finite differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct ln_case {
    nt_env *e;
    bp_nn_layernorm l;
    bp_tensor *x, *y, *dx;
} ln_case;

static bp_status fwd(void *u, bp_error *err) {
    ln_case *c = u;
    return bp_nn_layernorm_forward(&c->l, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    ln_case *c = u;
    return bp_nn_layernorm_backward(&c->l, &c->e->ctx, dy, c->dx, err);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    ln_case c = {.e = &e};
    const int64_t D = 7, sx[3] = {2, 3, D};
    CHECK_OK(bp_nn_layernorm_init(&c.l, &ps, "norm", D, 1e-6f, BP_NN_TRAINABLE, 3, &err), &err);
    CHECK(ps.count == 2 && !(ps.items[0].flags & BP_NN_DECAY) && ps.items[0].layer_id == 3);
    float *w0 = nt_read(c.l.w);
    CHECK(w0[0] == 1.0f && w0[D - 1] == 1.0f);
    free(w0);
    c.x = nt_new(&e, 3, sx);
    c.y = nt_new(&e, 3, sx);
    c.dx = nt_new(&e, 3, sx);
    nt_fill(c.x, 1, 2.0);
    nt_fill(c.l.w, 2, 1.5);
    nt_fill(c.l.b, 3, 0.5);
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *w = nt_read(c.l.w), *b = nt_read(c.l.b), *y = nt_read(c.y);
    double ref[42];
    for (int r = 0; r < 6; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < D; i++) m += x[r * D + i];
        m /= D;
        for (int i = 0; i < D; i++) v += (x[r * D + i] - m) * (x[r * D + i] - m);
        v /= D;
        for (int i = 0; i < D; i++) ref[r * D + i] = (x[r * D + i] - m) / sqrt(v + 1e-6) * w[i] + b[i];
    }
    double fe = nt_rel_err(y, ref, 42);
    printf("layernorm: forward err %.3e\n", fe);
    CHECKF(fe < 2e-6, "forward err %g", fe);
    free(x);
    free(w);
    free(b);
    free(y);

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
