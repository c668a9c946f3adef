/* bp_nn patch embedding and sin-cos table: tokens are time-major
 * (n = t·gw + f) and equal a direct float64 patch projection; backward (dx,
 * dW, db) against finite differences; the 2-D table matches the formula and
 * AudioMAE's (8, 64) layout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_test.h"
#include "nn_testutil.h"

enum { NB = 2, HH = 8, WW = 12, K = 4, D = 5 };

typedef struct pe_case {
    nt_env *e;
    bp_nn_patch_embed p;
    bp_tensor *x, *y, *dx;
} pe_case;

static bp_status fwd(void *u, bp_error *err) {
    pe_case *c = u;
    return bp_nn_patch_embed_forward(&c->p, &c->e->ctx, c->x, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    pe_case *c = u;
    return bp_nn_patch_embed_backward(&c->p, &c->e->ctx, dy, c->dx, err);
}

static void test_sincos(void) {
    /* 1-D: [sin(p·ω_k), cos(p·ω_k)], ω_k = 10000^(−k/h) */
    float row[8];
    bp_nn_sincos_1d(8, 3.0, row);
    double e1 = 0;
    for (int k = 0; k < 4; k++) {
        double om = pow(10000.0, -k / 4.0);
        e1 = fmax(e1, fabs(row[k] - sin(3.0 * om)));
        e1 = fmax(e1, fabs(row[4 + k] - cos(3.0 * om)));
    }
    CHECKF(e1 < 1e-7, "sincos_1d err %g", e1);
    /* 2-D, AudioMAE grid (8, 64), dim 16 */
    const int64_t dim = 16, gh = 8, gw = 64;
    float *t = malloc((size_t)((1 + gh * gw) * dim) * sizeof *t);
    bp_nn_sincos_2d(dim, gh, gw, t);
    int zero0 = 1;
    for (int i = 0; i < dim; i++) zero0 &= t[i] == 0.0f;
    CHECK(zero0);
    /* row 1 + 8 (patch n = 8): first half sincos(8), second half sincos(0) = [0…0, 1…1] */
    float a[8], b[8];
    bp_nn_sincos_1d(8, 8.0, a);
    bp_nn_sincos_1d(8, 0.0, b);
    const float *r9 = t + 9 * dim;
    int ok = 1;
    for (int i = 0; i < 8; i++) ok &= r9[i] == a[i] && r9[8 + i] == b[i];
    CHECK(ok && b[0] == 0.0f && b[4] == 1.0f);
    /* row 1 + 130 (n = 130): [sincos(130 mod 64 = 2), sincos(130 div 64 = 2)] and row 1 + 65: [sincos(1), sincos(1)] */
    bp_nn_sincos_1d(8, 2.0, a);
    ok = 1;
    for (int i = 0; i < 8; i++) ok &= t[131 * dim + i] == a[i] && t[131 * dim + 8 + i] == a[i];
    CHECK(ok);
    free(t);
}

int main(void) {
    test_sincos();
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    pe_case c = {.e = &e};
    const int64_t gh = HH / K, gw = WW / K, sx[4] = {NB, 1, HH, WW}, sy[3] = {NB, gh * gw, D};
    CHECK_OK(bp_nn_patch_embed_init(&c.p, &ps, "patch_embed", 1, D, K, K, BP_NN_TRAINABLE | BP_NN_DECAY, 0, &err),
             &err);
    CHECK(ps.count == 2 && bp_nn_params_find(&ps, "patch_embed.proj.weight") &&
          bp_nn_params_find(&ps, "patch_embed.proj.bias"));
    c.x = nt_new(&e, 4, sx);
    c.y = nt_new(&e, 3, sy);
    c.dx = nt_new(&e, 4, sx);
    nt_fill(c.x, 1, 1.0);
    nt_fill(c.p.proj.w, 2, 0.3);
    nt_fill(c.p.proj.b, 3, 0.5);
    CHECK_OK(fwd(&c, &err), &err);
    CHECK(c.p.gh == gh && c.p.gw == gw);
    float *x = nt_read(c.x), *w = nt_read(c.p.proj.w), *b = nt_read(c.p.proj.b), *y = nt_read(c.y);
    double ref[NB * (HH / K) * (WW / K) * D];
    for (int n = 0; n < NB; n++)
        for (int t = 0; t < gh; t++)
            for (int f = 0; f < gw; f++)
                for (int d = 0; d < D; d++) {
                    double s = b[d];
                    for (int i = 0; i < K; i++)
                        for (int j = 0; j < K; j++)
                            s += (double)x[(n * HH + t * K + i) * WW + f * K + j] * w[(d * K + i) * K + j];
                    ref[((n * gh + t) * gw + f) * D + d] = s; /* token t·gw + f */
                }
    double fe = nt_rel_err(y, ref, NB * gh * gw * D);
    printf("patch embed: forward err %.3e (tokens time-major)\n", fe);
    CHECKF(fe < 1e-6, "forward err %g", fe);
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
    /* a wrong output shape is refused */
    const int64_t sbad[3] = {NB, gh * gw + 1, D};
    bp_tensor *bad = nt_new(&e, 3, sbad);
    CHECK(bp_nn_patch_embed_forward(&c.p, &e.ctx, c.x, bad, &err) == BP_ERR_INVALID);
    bp_tensor_free(bad);
    bp_tensor_free(fd.r);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
    nt_env_free(&e);
    return TEST_RESULT();
}
