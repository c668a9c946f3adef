/* bp_nn linear: forward against a float64 reference, backward (dx, dW, db)
 * against central finite differences; frozen weights get no grad. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct lin_case {
    nt_env *e;
    bp_nn_linear l;
    bp_tensor *x, *y, *dx;
} lin_case;

static bp_status fwd(void *u, bp_error *err) {
    lin_case *c = u;
    return bp_nn_linear_forward(&c->l, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    lin_case *c = u;
    return bp_nn_linear_backward(&c->l, &c->e->ctx, dy, c->dx, err);
}

static void run(nt_env *e, int bias) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e->be);
    lin_case c = {.e = e};
    const int64_t IN = 5, OUT = 6, sx[3] = {3, 4, IN}, sy[3] = {3, 4, OUT};
    CHECK_OK(bp_nn_linear_init(&c.l, &ps, "fc", IN, OUT, bias, BP_NN_TRAINABLE | BP_NN_DECAY, 1, &err), &err);
    CHECK(ps.count == (uint32_t)(bias ? 2 : 1));
    CHECK(bp_nn_params_find(&ps, "fc.weight") != NULL);
    CHECK((bp_nn_params_find(&ps, "fc.bias") != NULL) == bias);
    if (bias) CHECK(!(bp_nn_params_find(&ps, "fc.bias")->flags & BP_NN_DECAY));
    c.x = nt_new(e, 3, sx);
    c.y = nt_new(e, 3, sy);
    c.dx = nt_new(e, 3, sx);
    nt_fill(c.x, 1, 1.0);
    nt_fill(c.l.w, 2, 0.7);
    if (bias) nt_fill(c.l.b, 3, 0.5);

    /* forward vs float64 */
    e->ctx.keep = 0;
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *w = nt_read(c.l.w), *b = bias ? nt_read(c.l.b) : NULL, *y = nt_read(c.y);
    double ref[72];
    for (int m = 0; m < 12; m++)
        for (int o = 0; o < OUT; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IN; i++) s += (double)x[m * IN + i] * w[o * IN + i];
            ref[m * OUT + o] = s;
        }
    double fe = nt_rel_err(y, ref, 12 * OUT);
    printf("linear (bias %d): forward err %.3e\n", bias, fe);
    CHECKF(fe < 1e-6, "forward err %g", fe);
    free(x);
    free(w);
    free(b);
    free(y);

    /* backward vs finite differences */
    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    bp_status st = nt_fd_prepare(&fd, &ps, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c.x, c.dx, 0, NT_FD_H, "dx");
        CHECKF(ex <= NT_FD_TOL, "dx fd err %g", ex);
        double ep = nt_fd_check_params(&fd, &ps, 0, NT_FD_H, NT_FD_TOL);
        CHECKF(ep <= NT_FD_TOL, "param fd err %g", ep);
        /* grads accumulate: a second backward doubles them */
        float *g1 = nt_read(c.l.dw);
        bp_nn_arena_reset(e->arena);
        e->ctx.keep = 1;
        CHECK_OK(fwd(&c, &err), &err);
        CHECK_OK(bwd(&c, fd.r, &err), &err);
        e->ctx.keep = 0;
        float *g2 = nt_read(c.l.dw);
        double d = 0;
        for (int i = 0; i < OUT * IN; i++) d = fmax(d, fabs(g2[i] - 2.0 * g1[i]));
        CHECKF(d < 1e-5, "grad accumulation off by %g", d);
        free(g1);
        free(g2);
    }
    /* backward without a kept forward is an error naming the layer */
    bp_nn_linear fresh = c.l;
    fresh.x = NULL;
    st = bp_nn_linear_backward(&fresh, &e->ctx, fd.r ? fd.r : c.y, NULL, &err);
    CHECK(st != BP_OK && strstr(err.msg, "fc.weight") != NULL);
    /* wrong input width */
    const int64_t sbad[2] = {3, IN + 1};
    bp_tensor *bad = nt_new(e, 2, sbad);
    st = bp_nn_linear_forward(&c.l, &e->ctx, bad, c.y, &err);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "fc.weight") != NULL);
    bp_tensor_free(bad);
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
}

static void run_frozen(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e->be);
    bp_nn_linear l;
    CHECK_OK(bp_nn_linear_init(&l, &ps, "frozen", 4, 3, 1, 0, 0, &err), &err);
    CHECK(l.dw == NULL && l.db == NULL && ps.items[0].grad == NULL);
    bp_nn_params_free(&ps);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    run(&e, 1);
    run(&e, 0);
    run_frozen(&e);
    nt_env_free(&e);
    return TEST_RESULT();
}
