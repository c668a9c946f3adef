/* bp_nn: LayerNorm over the last dimension. */
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_layernorm_init(bp_nn_layernorm *l, bp_nn_params *ps, const char *prefix, int64_t dim, float eps,
                               int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    const int64_t s[1] = {dim};
    l->dim = dim;
    l->eps = eps;
    l->x = NULL;
    flags &= ~BP_NN_DECAY;
    snprintf(name, sizeof name, "%s.weight", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, flags, layer_id, &l->w, err));
    snprintf(name, sizeof name, "%s.bias", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, flags, layer_id, &l->b, err));
    l->dw = bp_nn_params_grad_of(ps, l->w);
    l->db = bp_nn_params_grad_of(ps, l->b);
    return bp_nn_init_const(ps->be, l->w, 1.0, err);
}

bp_status bp_nn_layernorm_forward(bp_nn_layernorm *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err) {
    const char *who = nn_name(l->w);
    NN_TRY(nn_check_last(x, l->dim, who, "input", err));
    NN_OP(bp_op_layernorm(c->be, x, l->w, l->b, l->eps, y, err));
    l->x = c->keep ? x : NULL;
    return BP_OK;
}

bp_status bp_nn_layernorm_backward(bp_nn_layernorm *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err) {
    const char *who = nn_name(l->w);
    if (!l->x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *gw = NULL, *gb = NULL, *gx = dx;
    bp_status st = BP_OK;
    if (l->dw) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->dim, &gw, err);
    if (st == BP_OK && l->db) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->dim, &gb, err);
    if (st == BP_OK && !gx) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, l->x->ndim, l->x->shape, &gx, err);
    if (st == BP_OK) st = bp_op_layernorm_backward(c->be, l->x, l->w, dy, l->eps, gx, gw, gb, err);
    if (st == BP_OK) st = nn_accumulate(c->be, gw, l->dw, err);
    if (st == BP_OK) st = nn_accumulate(c->be, gb, l->db, err);
    bp_nn_arena_rewind(c->arena, mark);
    NN_OP(st);
    return BP_OK;
}
