/* bp_nn: BatchNorm2d with PyTorch's train/eval semantics and running-stat updates. */
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_batchnorm2d_init(bp_nn_batchnorm2d *l, bp_nn_params *ps, const char *prefix, int64_t ch, float eps,
                                 float momentum, int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    const int64_t s[1] = {ch};
    l->ch = ch;
    l->eps = eps;
    l->momentum = momentum;
    l->x = NULL;
    l->mean = l->var = NULL;
    l->kept_training = 0;
    flags &= ~BP_NN_DECAY;
    snprintf(name, sizeof name, "%s.weight", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, flags, layer_id, &l->w, err));
    snprintf(name, sizeof name, "%s.bias", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, flags, layer_id, &l->b, err));
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, 0, layer_id, &l->running_mean, err));
    snprintf(name, sizeof name, "%s.running_var", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, s, 0, layer_id, &l->running_var, err));
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_I64, 0, NULL, BP_NN_OPTIONAL, layer_id, &l->num_batches_tracked, err));
    l->dw = bp_nn_params_grad_of(ps, l->w);
    l->db = bp_nn_params_grad_of(ps, l->b);
    NN_TRY(bp_nn_init_const(ps->be, l->w, 1.0, err));
    return bp_nn_init_const(ps->be, l->running_var, 1.0, err);
}

/* r = (1 − m)·r + m·f·s (f = 1 for the mean, n/(n−1) for the variance). */
static bp_status running_update(const bp_nn_ctx *c, bp_tensor *r, const bp_tensor *s, float m, double f,
                                bp_error *err) {
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *tmp;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, r->shape, &tmp, err));
    bp_status st = bp_op_affine(c->be, s, (float)(m * f), 0.0f, tmp, err);
    if (st == BP_OK) st = bp_op_affine(c->be, r, 1.0f - m, 0.0f, r, err);
    if (st == BP_OK) st = bp_nn_add_into(c->be, tmp, r, err);
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}

bp_status bp_nn_batchnorm2d_forward(bp_nn_batchnorm2d *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                    bp_error *err) {
    const char *who = nn_name(l->w);
    if (!x || x->ndim != 4 || x->shape[1] != l->ch) {
        char buf[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: input %s must be [N, %lld, H, W]", who,
                            x ? bp_tensor_describe(x, buf, sizeof buf) : "NULL", (long long)l->ch);
    }
    l->x = NULL;
    l->kept_training = 0;
    if (!c->training) {
        bp_batchnorm_desc d = {sizeof d, x, y, l->running_mean, l->running_var, l->w, l->b, l->eps, 0};
        NN_OP(bp_op_batchnorm(c->be, &d, err));
        if (c->keep) l->x = x;
        return BP_OK;
    }
    if (x == y) return bp_error_set(err, BP_ERR_INTERNAL, "%s: training mode needs y distinct from x", who);
    const size_t start = bp_nn_arena_mark(c->arena);
    bp_tensor *mean, *var;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->ch, &mean, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->ch, &var, err));
    bp_batchnorm_desc d = {sizeof d, x, y, mean, var, l->w, l->b, l->eps, 1};
    NN_OP(bp_op_batchnorm(c->be, &d, err));
    const double n = (double)(x->shape[0] * x->shape[2] * x->shape[3]);
    NN_OP(running_update(c, l->running_mean, mean, l->momentum, 1.0, err));
    NN_OP(running_update(c, l->running_var, var, l->momentum, n > 1 ? n / (n - 1.0) : 1.0, err));
    int64_t nbt = 0;
    NN_OP(bp_tensor_read(l->num_batches_tracked, &nbt, sizeof nbt, err));
    nbt++;
    NN_OP(bp_tensor_write(l->num_batches_tracked, &nbt, sizeof nbt, err));
    if (c->keep) {
        l->x = x;
        l->mean = mean;
        l->var = var;
        l->kept_training = 1;
    } else {
        bp_nn_arena_rewind(c->arena, start);
    }
    return BP_OK;
}

bp_status bp_nn_batchnorm2d_backward(bp_nn_batchnorm2d *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                     bp_error *err) {
    const char *who = nn_name(l->w);
    if (!l->x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    if (!l->kept_training)
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: backward after an evaluation-mode forward is not implemented (train mode only)", who);
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *gw = NULL, *gb = NULL;
    bp_status st = BP_OK;
    if (l->dw) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->ch, &gw, err);
    if (st == BP_OK && l->db) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->ch, &gb, err);
    if (st == BP_OK) {
        /* y is not an input of the backward (ops.h); dy stands in for it. */
        bp_batchnorm_desc d = {sizeof d, l->x, (bp_tensor *)dy, l->mean, l->var, l->w, l->b, l->eps, 1};
        st = bp_op_batchnorm_backward(c->be, &d, dy, dx, gw, gb, err);
    }
    if (st == BP_OK) st = nn_accumulate(c->be, gw, l->dw, err);
    if (st == BP_OK) st = nn_accumulate(c->be, gb, l->db, err);
    bp_nn_arena_rewind(c->arena, mark);
    NN_OP(st);
    return BP_OK;
}
