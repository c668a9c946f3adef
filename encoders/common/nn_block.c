/* bp_nn: the pre-LN transformer block (timm Block) with stochastic depth. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

bp_status bp_nn_block_init(bp_nn_block *b, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t heads,
                           int64_t mlp_hidden, float eps, int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    memset(b, 0, sizeof *b);
    b->dim = dim;
    snprintf(name, sizeof name, "%s.norm1", prefix);
    NN_TRY(bp_nn_layernorm_init(&b->norm1, ps, name, dim, eps, flags, layer_id, err));
    snprintf(name, sizeof name, "%s.attn", prefix);
    NN_TRY(bp_nn_attention_init(&b->attn, ps, name, dim, heads, 1, flags, layer_id, err));
    snprintf(name, sizeof name, "%s.norm2", prefix);
    NN_TRY(bp_nn_layernorm_init(&b->norm2, ps, name, dim, eps, flags, layer_id, err));
    snprintf(name, sizeof name, "%s.mlp", prefix);
    return bp_nn_mlp_init(&b->mlp, ps, name, dim, mlp_hidden, flags, layer_id, err);
}

void bp_nn_block_free(bp_nn_block *b) {
    if (!b) return;
    free(b->dp);
    b->dp = NULL;
    b->dp_cap = 0;
}

void bp_nn_drop_path_scales(uint64_t seed, uint64_t purpose, float rate, int64_t n, float *scale) {
    const double keep = 1.0 - (double)rate;
    for (int64_t i = 0; i < n; i++) {
        if (rate <= 0.0f) {
            scale[i] = 1.0f;
            continue;
        }
        double u = bp_nn_rng_uniform(seed, purpose, (uint64_t)i);
        scale[i] = floor(keep + u) >= 1.0 ? (float)(1.0 / keep) : 0.0f;
    }
}

/* t[b] *= scale[b] for each sample of t [B, N, D] (1 = untouched). */
static bp_status scale_samples(const bp_nn_ctx *c, bp_tensor *t, const float *scale, bp_error *err) {
    const int64_t B = t->shape[0], per = bp_tensor_numel(t) / (B > 0 ? B : 1);
    for (int64_t i = 0; i < B; i++) {
        if (scale[i] == 1.0f) continue;
        bp_tensor v = bp_nn_view(t, i * per, 1, &per);
        bp_status st = scale[i] == 0.0f ? bp_op_fill(c->be, &v, 0.0f, err)
                                        : bp_op_affine(c->be, &v, scale[i], 0.0f, &v, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

bp_status bp_nn_block_forward(bp_nn_block *b, const bp_nn_ctx *c, const bp_tensor *x, const float *drop_path,
                              bp_tensor *y, bp_error *err) {
    const char *who = nn_name(b->norm1.w);
    if (!x || x->ndim != 3 || x->shape[2] != b->dim || !y || !bp_tensor_same_shape(x, y)) {
        char bx[96], by[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: input %s / output %s must both be [batch, tokens, %lld]", who,
                            x ? bp_tensor_describe(x, bx, sizeof bx) : "NULL",
                            y ? bp_tensor_describe(y, by, sizeof by) : "NULL", (long long)b->dim);
    }
    const int64_t B = x->shape[0];
    b->has_dp = 0;
    if (drop_path) {
        if (c->keep && b->dp_cap < 2 * B) {
            float *p = realloc(b->dp, (size_t)(2 * B) * sizeof *p);
            if (!p) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", who);
            b->dp = p;
            b->dp_cap = 2 * B;
        }
        if (c->keep) memcpy(b->dp, drop_path, (size_t)(2 * B) * sizeof *b->dp);
        b->has_dp = 1;
    }
    const size_t start = bp_nn_arena_mark(c->arena);
    bp_tensor *a_in, *x1, *m_in;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &a_in, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &x1, err));
    /* x1 = x + dp_a ⊙ attn(norm1(x)) */
    NN_TRY(bp_nn_layernorm_forward(&b->norm1, c, x, a_in, err));
    NN_TRY(bp_nn_attention_forward(&b->attn, c, a_in, x1, err));
    if (drop_path) NN_OP(scale_samples(c, x1, drop_path, err));
    NN_OP(bp_nn_add_into(c->be, x, x1, err));
    /* y = x1 + dp_m ⊙ mlp(norm2(x1)) */
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &m_in, err));
    NN_TRY(bp_nn_layernorm_forward(&b->norm2, c, x1, m_in, err));
    NN_TRY(bp_nn_mlp_forward(&b->mlp, c, m_in, y, err));
    if (drop_path) NN_OP(scale_samples(c, y, drop_path + B, err));
    NN_OP(bp_nn_add_into(c->be, x1, y, err));
    if (c->keep) {
        b->x = x;
        b->x1 = x1;
    } else {
        b->x = NULL;
        b->x1 = NULL;
        bp_nn_arena_rewind(c->arena, start);
    }
    return BP_OK;
}

static bp_status block_backward(bp_nn_block *b, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                bp_error *err) {
    const char *who = nn_name(b->norm1.w);
    const bp_tensor *x = b->x;
    const int64_t B = x->shape[0];
    bp_tensor *g_branch, *g_mid, *dx1;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &g_branch, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &g_mid, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, x->shape, &dx1, err));
    /* MLP branch: d mlp_out = dp_m ⊙ dy. */
    const bp_tensor *d_mo = dy;
    if (b->has_dp) {
        NN_OP(bp_nn_copy(c->be, dy, g_branch, err));
        NN_OP(scale_samples(c, g_branch, b->dp + B, err));
        d_mo = g_branch;
    }
    NN_TRY(bp_nn_mlp_backward(&b->mlp, c, d_mo, g_mid, err));
    NN_TRY(bp_nn_layernorm_backward(&b->norm2, c, g_mid, dx1, err));
    NN_OP(bp_nn_add_into(c->be, dy, dx1, err)); /* residual */
    /* Attention branch: d attn_out = dp_a ⊙ dx1. */
    const bp_tensor *d_ao = dx1;
    if (b->has_dp) {
        NN_OP(bp_nn_copy(c->be, dx1, g_branch, err));
        NN_OP(scale_samples(c, g_branch, b->dp, err));
        d_ao = g_branch;
    }
    NN_TRY(bp_nn_attention_backward(&b->attn, c, d_ao, g_mid, err));
    if (!dx) return bp_nn_layernorm_backward(&b->norm1, c, g_mid, NULL, err);
    NN_TRY(bp_nn_layernorm_backward(&b->norm1, c, g_mid, dx, err));
    NN_OP(bp_nn_add_into(c->be, dx1, dx, err)); /* residual */
    return BP_OK;
}

bp_status bp_nn_block_backward(bp_nn_block *b, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                               bp_error *err) {
    if (!b->x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", nn_name(b->norm1.w));
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_status st = block_backward(b, c, dy, dx, err);
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}
