/* bp_nn MLP: forward against float64 (exact erf GELU), backward against
 * finite differences (dx and every fc1/fc2 tensor). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct mlp_case {
    nt_env *e;
    bp_nn_mlp m;
    bp_tensor *x, *y, *dx;
} mlp_case;

static bp_status fwd(void *u, bp_error *err) {
    mlp_case *c = u;
    return bp_nn_mlp_forward(&c->m, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    mlp_case *c = u;
    return bp_nn_mlp_backward(&c->m, &c->e->ctx, dy, c->dx, err);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    mlp_case c = {.e = &e};
    const int64_t D = 6, HID = 10, sx[3] = {2, 3, D};
    CHECK_OK(bp_nn_mlp_init(&c.m, &ps, "mlp", D, HID, BP_NN_TRAINABLE | BP_NN_DECAY, 1, &err), &err);
    CHECK(ps.count == 4 && bp_nn_params_find(&ps, "mlp.fc1.weight") && bp_nn_params_find(&ps, "mlp.fc2.bias"));
    c.x = nt_new(&e, 3, sx);
    c.y = nt_new(&e, 3, sx);
    c.dx = nt_new(&e, 3, sx);
    nt_fill(c.x, 1, 1.5);
    for (uint32_t i = 0; i < ps.count; i++) nt_fill(ps.items[i].value, 10 + i, 0.6);
    CHECK_OK(fwd(&c, &err), &err);
    float *x = nt_read(c.x), *w1 = nt_read(c.m.fc1.w), *b1 = nt_read(c.m.fc1.b), *w2 = nt_read(c.m.fc2.w),
          *b2 = nt_read(c.m.fc2.b), *y = nt_read(c.y);
    double ref[36];
    for (int r = 0; r < 6; r++)
        for (int o = 0; o < D; o++) {
            double s = b2[o];
            for (int h = 0; h < HID; h++) {
                double a = b1[h];
                for (int i = 0; i < D; i++) a += (double)x[r * D + i] * w1[h * D + i];
                s += 0.5 * a * (1.0 + erf(a / sqrt(2.0))) * w2[o * HID + h];
            }
            ref[r * D + o] = s;
        }
    double fe = nt_rel_err(y, ref, 36);
    printf("mlp: forward err %.3e\n", fe);
    CHECKF(fe < 2e-6, "forward err %g", fe);
    free(x);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(y);
    /* eval forward leaves nothing in the arena */
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
