/* bp_nn: multi-head self-attention (timm Attention: fused qkv, no mask). */
#include <math.h>
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_attention_init(bp_nn_attention *a, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t heads,
                               int qkv_bias, int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    if (heads < 1 || dim % heads != 0)
        return bp_error_set(err, BP_ERR_INVALID, "%s: dim %lld is not a multiple of heads %lld", prefix,
                            (long long)dim, (long long)heads);
    a->dim = dim;
    a->heads = heads;
    a->qkvh = a->probs = a->ctxv = NULL;
    snprintf(name, sizeof name, "%s.qkv", prefix);
    NN_TRY(bp_nn_linear_init(&a->qkv, ps, name, dim, 3 * dim, qkv_bias, flags, layer_id, err));
    snprintf(name, sizeof name, "%s.proj", prefix);
    return bp_nn_linear_init(&a->proj, ps, name, dim, dim, 1, flags, layer_id, err);
}

/* Views of q, k, v ([heads·B, N, dh] each) inside qkvh [3·heads, B, N, dh]. */
static void qkv_views(const bp_tensor *qkvh, int64_t hb, int64_t n, int64_t dh, bp_tensor *q, bp_tensor *k,
                      bp_tensor *v) {
    const int64_t s[3] = {hb, n, dh};
    int64_t step = hb * n * dh;
    *q = bp_nn_view(qkvh, 0, 3, s);
    *k = bp_nn_view(qkvh, step, 3, s);
    *v = bp_nn_view(qkvh, 2 * step, 3, s);
}

bp_status bp_nn_attention_forward(bp_nn_attention *a, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err) {
    const char *who = nn_name(a->qkv.w);
    if (!x || x->ndim != 3 || x->shape[2] != a->dim) {
        char buf[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: input %s must be [batch, tokens, %lld]", who,
                            x ? bp_tensor_describe(x, buf, sizeof buf) : "NULL", (long long)a->dim);
    }
    const int64_t B = x->shape[0], N = x->shape[1], D = a->dim, H = a->heads, dh = D / H, HB = H * B;
    const float scale = (float)(1.0 / sqrt((double)dh));
    const size_t start = bp_nn_arena_mark(c->arena);
    /* What backward needs first, temporaries above it (rewound after use). */
    const int64_t s_qkvh[4] = {3 * H, B, N, dh}, s_probs[3] = {HB, N, N}, s_bnd[3] = {B, N, D};
    bp_tensor *qkvh, *probs, *ctxv, *tmp;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_qkvh, &qkvh, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_probs, &probs, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_bnd, &ctxv, err));
    const size_t mark = bp_nn_arena_mark(c->arena);

    /* qkv = x·Wᵀ + b as [B, N, 3H, dh] → [3H, B, N, dh]. */
    const int64_t s_qkv[3] = {B, N, 3 * D}, s_qkv4[4] = {B, N, 3 * H, dh};
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_qkv, &tmp, err));
    NN_TRY(bp_nn_linear_forward(&a->qkv, c, x, tmp, err));
    {
        bp_tensor t4 = bp_nn_reshape(tmp, 4, s_qkv4);
        const int32_t perm[4] = {2, 0, 1, 3};
        NN_OP(bp_op_permute(c->be, &t4, perm, qkvh, err));
    }
    bp_nn_arena_rewind(c->arena, mark);

    /* probs = softmax(q·kᵀ·scale) per (head, sample). */
    bp_tensor q, k, v;
    qkv_views(qkvh, HB, N, dh, &q, &k, &v);
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_probs, &tmp, err));
    NN_OP(bp_op_matmul(c->be, &q, &k, tmp, NULL, 0, 1, 1.0f, 0.0f, err));
    NN_OP(bp_op_softmax(c->be, tmp, probs, scale, 0, 0, err));
    bp_nn_arena_rewind(c->arena, mark);

    /* o = probs·v [H, B, N, dh] → ctx [B, N, H, dh] = [B, N, D]. */
    const int64_t s_o[3] = {HB, N, dh}, s_o4[4] = {H, B, N, dh}, s_c4[4] = {B, N, H, dh};
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_o, &tmp, err));
    NN_OP(bp_op_matmul(c->be, probs, &v, tmp, NULL, 0, 0, 1.0f, 0.0f, err));
    {
        bp_tensor o4 = bp_nn_reshape(tmp, 4, s_o4), c4 = bp_nn_reshape(ctxv, 4, s_c4);
        const int32_t perm[4] = {1, 2, 0, 3};
        NN_OP(bp_op_permute(c->be, &o4, perm, &c4, err));
    }
    bp_nn_arena_rewind(c->arena, mark);

    NN_TRY(bp_nn_linear_forward(&a->proj, c, ctxv, y, err));
    if (c->keep) {
        a->qkvh = qkvh;
        a->probs = probs;
        a->ctxv = ctxv;
    } else {
        a->qkvh = a->probs = a->ctxv = NULL;
        bp_nn_arena_rewind(c->arena, start);
    }
    return BP_OK;
}

static bp_status attention_backward(bp_nn_attention *a, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                    bp_error *err) {
    const char *who = nn_name(a->qkv.w);
    const int64_t H = a->heads, B = a->qkvh->shape[1], N = a->qkvh->shape[2], D = a->dim, dh = D / H, HB = H * B;
    const float scale = (float)(1.0 / sqrt((double)dh));
    const int64_t s_bnd[3] = {B, N, D}, s_qkvh[4] = {3 * H, B, N, dh}, s_probs[3] = {HB, N, N};
    bp_tensor *dctx, *dqkvh, *tmp, *dprobs, *dscores;
    /* dctx = d proj input; do = dctx permuted to [H·B, N, dh]. */
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_bnd, &dctx, err));
    NN_TRY(bp_nn_linear_backward(&a->proj, c, dy, dctx, err));
    const int64_t s_o[3] = {HB, N, dh}, s_o4[4] = {H, B, N, dh}, s_c4[4] = {B, N, H, dh};
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_o, &tmp, err));
    {
        bp_tensor c4 = bp_nn_reshape(dctx, 4, s_c4), o4 = bp_nn_reshape(tmp, 4, s_o4);
        const int32_t perm[4] = {2, 0, 1, 3};
        NN_OP(bp_op_permute(c->be, &c4, perm, &o4, err));
    }
    bp_tensor q, k, v, dq, dk, dv;
    qkv_views(a->qkvh, HB, N, dh, &q, &k, &v);
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_qkvh, &dqkvh, err));
    qkv_views(dqkvh, HB, N, dh, &dq, &dk, &dv);
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_probs, &dprobs, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_probs, &dscores, err));
    /* dprobs = do·vᵀ; dv = probsᵀ·do; dscores = softmax'(dprobs)·scale. */
    NN_OP(bp_op_matmul(c->be, tmp, &v, dprobs, NULL, 0, 1, 1.0f, 0.0f, err));
    NN_OP(bp_op_matmul(c->be, a->probs, tmp, &dv, NULL, 1, 0, 1.0f, 0.0f, err));
    NN_OP(bp_op_softmax_backward(c->be, a->probs, dprobs, scale, dscores, err));
    /* dq = dscores·k; dk = dscoresᵀ·q. */
    NN_OP(bp_op_matmul(c->be, dscores, &k, &dq, NULL, 0, 0, 1.0f, 0.0f, err));
    NN_OP(bp_op_matmul(c->be, dscores, &q, &dk, NULL, 1, 0, 1.0f, 0.0f, err));
    /* [3H, B, N, dh] → [B, N, 3H, dh] = d qkv output. */
    const int64_t s_qkv4[4] = {B, N, 3 * H, dh}, s_qkv[3] = {B, N, 3 * D};
    bp_tensor *dqkv;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_qkv4, &dqkv, err));
    {
        const int32_t perm[4] = {1, 2, 0, 3};
        NN_OP(bp_op_permute(c->be, dqkvh, perm, dqkv, err));
    }
    bp_tensor dqkv3 = bp_nn_reshape(dqkv, 3, s_qkv);
    return bp_nn_linear_backward(&a->qkv, c, &dqkv3, dx, err);
}

bp_status bp_nn_attention_backward(bp_nn_attention *a, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err) {
    if (!a->qkvh)
        return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", nn_name(a->qkv.w));
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_status st = attention_backward(a, c, dy, dx, err);
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}
