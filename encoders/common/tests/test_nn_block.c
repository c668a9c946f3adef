/* bp_nn transformer block: forward equals the composition of its tested
 * sublayers (pre-LN, two residuals), drop path (per-sample branch scales)
 * equals the same composition with the branches scaled, backward against
 * finite differences with and without drop path; DropPath sampling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "nn_testutil.h"

enum { B = 2, N = 4, D = 8, H = 2, HID = 12 };

typedef struct blk_case {
    nt_env *e;
    bp_nn_block b;
    bp_tensor *x, *y, *dx;
    const float *dp;
} blk_case;

static bp_status fwd(void *u, bp_error *err) {
    blk_case *c = u;
    return bp_nn_block_forward(&c->b, &c->e->ctx, c->x, c->dp, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    blk_case *c = u;
    return bp_nn_block_backward(&c->b, &c->e->ctx, dy, c->dx, err);
}

/* y = x + sa·attn(norm1(x)); y += sm·mlp(norm2(y)) through the sublayers. */
static void composed(nt_env *e, bp_nn_block *b, bp_tensor *x, const float *dp, double *out) {
    bp_error err = BP_ERROR_INIT;
    const int64_t s[3] = {B, N, D};
    bp_tensor *t1 = nt_new(e, 3, s), *t2 = nt_new(e, 3, s);
    e->ctx.keep = 0;
    bp_nn_arena_reset(e->arena);
    CHECK_OK(bp_nn_layernorm_forward(&b->norm1, &e->ctx, x, t1, &err), &err);
    CHECK_OK(bp_nn_attention_forward(&b->attn, &e->ctx, t1, t2, &err), &err);
    float *xv = nt_read(x), *a = nt_read(t2);
    float x1[B * N * D];
    for (int i = 0; i < B * N * D; i++) x1[i] = (float)((double)xv[i] + (dp ? dp[i / (N * D)] : 1.0) * a[i]);
    nt_write(t2, x1);
    CHECK_OK(bp_nn_layernorm_forward(&b->norm2, &e->ctx, t2, t1, &err), &err);
    bp_tensor *t3 = nt_new(e, 3, s);
    CHECK_OK(bp_nn_mlp_forward(&b->mlp, &e->ctx, t1, t3, &err), &err);
    float *m = nt_read(t3);
    for (int i = 0; i < B * N * D; i++) out[i] = (double)x1[i] + (dp ? dp[B + i / (N * D)] : 1.0) * m[i];
    free(xv);
    free(a);
    free(m);
    bp_tensor_free(t1);
    bp_tensor_free(t2);
    bp_tensor_free(t3);
}

static void check_block(nt_env *e, blk_case *c, bp_nn_params *ps, const float *dp, const char *label) {
    bp_error err = BP_ERROR_INIT;
    c->dp = dp;
    e->ctx.keep = 0;
    bp_nn_arena_reset(e->arena);
    CHECK_OK(fwd(c, &err), &err);
    CHECK(bp_nn_arena_mark(e->arena) == 0);
    float *y = nt_read(c->y);
    double ref[B * N * D];
    composed(e, &c->b, c->x, dp, ref);
    double fe = nt_rel_err(y, ref, B * N * D);
    printf("block (%s): forward vs composition err %.3e\n", label, fe);
    CHECKF(fe < 1e-6, "%s: forward err %g", label, fe);
    free(y);
    nt_fd fd = {e, c, fwd, bwd, c->y, NULL};
    bp_status st = nt_fd_prepare(&fd, ps, 9, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        double ex = nt_fd_check(&fd, c->x, c->dx, 0, NT_FD_H, "dx");
        CHECKF(ex <= NT_FD_TOL, "%s: dx fd err %g", label, ex);
        double ep = nt_fd_check_params(&fd, ps, 24, NT_FD_H, NT_FD_TOL);
        CHECKF(ep <= NT_FD_TOL, "%s: param fd err %g", label, ep);
    }
    bp_tensor_free(fd.r);
}

int main(void) {
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    bp_error err = BP_ERROR_INIT;
    bp_nn_params ps;
    bp_nn_params_init(&ps, e.be);
    blk_case c = {.e = &e};
    const int64_t sx[3] = {B, N, D};
    CHECK_OK(bp_nn_block_init(&c.b, &ps, "blocks.0", D, H, HID, 1e-6f, BP_NN_TRAINABLE | BP_NN_DECAY, 1, &err),
             &err);
    const char *names[] = {"blocks.0.norm1.weight", "blocks.0.norm1.bias",     "blocks.0.attn.qkv.weight",
                           "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
                           "blocks.0.norm2.weight", "blocks.0.norm2.bias",     "blocks.0.mlp.fc1.weight",
                           "blocks.0.mlp.fc1.bias",  "blocks.0.mlp.fc2.weight",  "blocks.0.mlp.fc2.bias"};
    CHECK(ps.count == 12);
    for (uint32_t i = 0; i < ps.count && i < 12; i++) {
        CHECKF(strcmp(ps.items[i].name, names[i]) == 0, "param %u is %s", i, ps.items[i].name);
        CHECK(((ps.items[i].flags & BP_NN_DECAY) != 0) == (ps.items[i].value->ndim == 2));
    }
    c.x = nt_new(&e, 3, sx);
    c.y = nt_new(&e, 3, sx);
    c.dx = nt_new(&e, 3, sx);
    nt_fill(c.x, 1, 1.0);
    for (uint32_t i = 0; i < ps.count; i++) nt_fill(ps.items[i].value, 20 + i, i % 2 ? 0.3 : 0.8);

    check_block(&e, &c, &ps, NULL, "no drop path");
    const float dp[2 * B] = {0.0f, 1.25f, 1.25f, 0.0f}; /* sample 0 attn dropped, sample 1 mlp dropped */
    check_block(&e, &c, &ps, dp, "drop path");

    /* DropPath sampling */
    float s[4000];
    bp_nn_drop_path_scales(5, 6, 0.0f, 10, s);
    int ones = 1;
    for (int i = 0; i < 10; i++) ones &= s[i] == 1.0f;
    CHECK(ones);
    bp_nn_drop_path_scales(5, 6, 0.25f, 4000, s);
    int dropped = 0, bad = 0;
    for (int i = 0; i < 4000; i++) {
        if (s[i] == 0.0f) dropped++;
        else if (fabsf(s[i] - 1.0f / 0.75f) > 1e-6f) bad++;
    }
    printf("drop path 0.25: %d of 4000 dropped\n", dropped);
    CHECK(bad == 0 && dropped > 900 && dropped < 1100);
    float s2[4000];
    bp_nn_drop_path_scales(5, 6, 0.25f, 4000, s2);
    CHECK(memcmp(s, s2, sizeof s) == 0);
    bp_nn_drop_path_scales(5, 7, 0.25f, 4000, s2);
    CHECK(memcmp(s, s2, sizeof s) != 0);

    bp_nn_block_free(&c.b);
    bp_tensor_free(c.x);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dx);
    bp_nn_params_free(&ps);
    nt_env_free(&e);
    return TEST_RESULT();
}
