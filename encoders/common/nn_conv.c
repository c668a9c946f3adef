/* bp_nn: 2-D convolution (cross-correlation, NCHW) and elementwise activations. */
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_conv2d_init(bp_nn_conv2d *l, bp_nn_params *ps, const char *prefix, int64_t in, int64_t out,
                            int64_t kh, int64_t kw, int32_t stride, int32_t pad, int bias, int32_t flags,
                            int32_t layer_id, bp_error *err) {
    char name[256];
    l->in = in;
    l->out = out;
    l->kh = kh;
    l->kw = kw;
    l->stride_h = l->stride_w = stride;
    l->pad_h = l->pad_w = pad;
    l->x = NULL;
    l->b = l->db = NULL;
    const int64_t sw[4] = {out, in, kh, kw}, sb[1] = {out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 4, sw, flags, layer_id, &l->w, err));
    l->dw = bp_nn_params_grad_of(ps, l->w);
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        NN_TRY(bp_nn_params_add(ps, name, BP_DTYPE_F32, 1, sb, flags & ~BP_NN_DECAY, layer_id, &l->b, err));
        l->db = bp_nn_params_grad_of(ps, l->b);
    }
    return BP_OK;
}

int64_t bp_nn_conv2d_out_size(int64_t in, int64_t k, int32_t stride, int32_t pad) {
    return (in + 2 * (int64_t)pad - k) / stride + 1;
}

static bp_conv2d_desc conv_desc(const bp_nn_conv2d *l, const bp_tensor *x, bp_tensor *y) {
    bp_conv2d_desc d = {sizeof d, x, l->w, l->b, y, l->stride_h, l->stride_w, l->pad_h, l->pad_w, 1, 1, 1};
    return d;
}

bp_status bp_nn_conv2d_forward(bp_nn_conv2d *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *who = nn_name(l->w);
    bp_conv2d_desc d = conv_desc(l, x, y);
    NN_OP(bp_op_conv2d(c->be, &d, err));
    l->x = c->keep ? x : NULL;
    return BP_OK;
}

bp_status bp_nn_conv2d_backward(bp_nn_conv2d *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                bp_error *err) {
    const char *who = nn_name(l->w);
    if (!l->x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *gw = NULL, *gb = NULL;
    bp_status st = BP_OK;
    if (l->dw) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, l->w->shape, &gw, err);
    if (st == BP_OK && l->db) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &l->out, &gb, err);
    if (st == BP_OK && (gw || gb || dx)) {
        bp_conv2d_desc d = conv_desc(l, l->x, NULL);
        st = bp_op_conv2d_backward(c->be, &d, dy, dx, gw, gb, err);
    }
    if (st == BP_OK) st = nn_accumulate(c->be, gw, l->dw, err);
    if (st == BP_OK) st = nn_accumulate(c->be, gb, l->db, err);
    bp_nn_arena_rewind(c->arena, mark);
    NN_OP(st);
    return BP_OK;
}

bp_status bp_nn_act_forward(bp_nn_act *a, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    bp_status st = bp_op_unary(c->be, (bp_unary_op)a->op, x, y, err);
    a->x = (st == BP_OK && c->keep) ? x : NULL;
    return st;
}

bp_status bp_nn_act_backward(bp_nn_act *a, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx, bp_error *err) {
    if (!a->x)
        return bp_error_set(err, BP_ERR_INVALID, "%s activation: backward without a kept forward",
                            bp_unary_op_name(a->op));
    return bp_op_unary_backward(c->be, (bp_unary_op)a->op, a->x, dy, dx, err);
}
