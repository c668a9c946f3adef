/* bp_nn: linear layer y = x·Wᵀ + b (PyTorch layout W [out, in]). */
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_linear_init(bp_nn_linear *l, bp_nn_params *ps, const char *prefix, int64_t in, int64_t out,
                            int bias, int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    l->in = in;
    l->out = out;
    l->x = NULL;
    l->b = l->db = NULL;
    const int64_t sw[2] = {out, in}, sb[1] = {out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 2, sw, flags, layer_id, &l->w, err));
    l->dw = bp_nn_params_grad_of(ps, l->w);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, sb, flags & ~BP_NN_DECAY, layer_id, &l->b, err));
        l->db = bp_nn_params_grad_of(ps, l->b);
    }
    return BP_OK;
}

bp_status bp_nn_linear_forward(bp_nn_linear *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                               bp_error *err) {
    const char *who = nn_name(l->w);
    NN_TRY(nn_check_last(x, l->in, who, "input", err));
    NN_TRY(nn_check_last(y, l->out, who, "output", err));
    if (nn_rows(x) != nn_rows(y)) {
        char a[96], b[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: input %s and output %s have different row counts", who,
                            bp_tensor_describe(x, a, sizeof a), bp_tensor_describe(y, b, sizeof b));
    }
    bp_tensor x2 = nn_as2d(x, l->in), y2 = nn_as2d(y, l->out);
    if (c->bf16 && !c->keep && x->dtype == BP_DTYPE_F32) {
        const bp_tensor *w16;
        NN_OP(bp_nn_params_bf16_of(c->bf16, l->w, &w16, err));
        size_t mark = bp_nn_arena_mark(c->arena);
        bp_tensor *x16;
        NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_BF16, 2, x2.shape, &x16, err));
        bp_status st = bp_op_convert(c->be, &x2, x16, err);
        if (st == BP_OK) st = bp_op_matmul(c->be, x16, w16, &y2, l->b, 0, 1, 1.0f, 0.0f, err);
        bp_nn_arena_rewind(c->arena, mark);
        NN_OP(st);
        l->x = NULL;
        return BP_OK;
    }
    NN_OP(bp_op_matmul(c->be, &x2, l->w, &y2, l->b, 0, 1, 1.0f, 0.0f, err));
    l->x = c->keep ? x : NULL;
    return BP_OK;
}

bp_status bp_nn_linear_backward(bp_nn_linear *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                bp_error *err) {
    const char *who = nn_name(l->w);
    if (!l->x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    NN_TRY(nn_check_last(dy, l->out, who, "output gradient", err));
    if (nn_rows(dy) != nn_rows(l->x))
        return bp_error_set(err, BP_ERR_INVALID, "%s: output gradient rows %lld, forward had %lld", who,
                            (long long)nn_rows(dy), (long long)nn_rows(l->x));
    bp_tensor dy2 = nn_as2d(dy, l->out), x2 = nn_as2d(l->x, l->in);
    if (l->dw) NN_OP(bp_op_matmul(c->be, &dy2, &x2, l->dw, NULL, 1, 0, 1.0f, 1.0f, err));
    if (l->db) {
        size_t mark = bp_nn_arena_mark(c->arena);
        bp_tensor *tmp;
        NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->out, &tmp, err));
        bp_status st = bp_op_sum_to(c->be, &dy2, tmp, err);
        if (st == BP_OK) st = bp_nn_add_into(c->be, tmp, l->db, err);
        bp_nn_arena_rewind(c->arena, mark);
        NN_OP(st);
    }
    if (dx) {
        NN_TRY(nn_check_last(dx, l->in, who, "input gradient", err));
        bp_tensor dx2 = nn_as2d(dx, l->in);
        NN_OP(bp_op_matmul(c->be, &dy2, l->w, &dx2, NULL, 0, 0, 1.0f, 0.0f, err));
    }
    return BP_OK;
}
