/* The training ops of the core op interface (ABI 1.1): checks, then dispatch. */
#include <stddef.h>
#include <string.h>

#include "backend_internal.h"
#include "batpipe/ops.h"
#include "ops_check.h"

#define TRY(x)                        \
    do {                              \
        bp_status st_ = (x);          \
        if (st_ != BP_OK) return st_; \
    } while (0)

bp_status bp_op_unary_backward(bp_backend *be, bp_unary_op opc, const bp_tensor *x, const bp_tensor *dy, bp_tensor *dx,
                               bp_error *err) {
    const char *op = "unary_backward";
    if ((int)opc < 0 || opc >= BP_UNARY_COUNT) return bp_error_set(err, BP_ERR_INVALID, "%s: unknown op %d", op, (int)opc);
    TRY(bp_ops_check_f32(be, op, "x", x, err));
    TRY(bp_ops_check_f32(be, op, "dy", dy, err));
    TRY(bp_ops_check_f32(be, op, "dx", dx, err));
    TRY(bp_ops_check_same(op, x, dy, err));
    TRY(bp_ops_check_same(op, x, dx, err));
    if (!BP_IMPL_HAS(be->impl, unary_backward)) return bp_ops_missing(be, op, err);
    return be->impl->unary_backward(be->impl, (int32_t)opc, x, dy, dx, err);
}

bp_status bp_op_softmax_backward(bp_backend *be, const bp_tensor *y, const bp_tensor *dy, float scale, bp_tensor *dx,
                                 bp_error *err) {
    const char *op = "softmax_backward";
    TRY(bp_ops_check_f32(be, op, "y", y, err));
    TRY(bp_ops_check_f32(be, op, "dy", dy, err));
    TRY(bp_ops_check_f32(be, op, "dx", dx, err));
    TRY(bp_ops_check_same(op, y, dy, err));
    TRY(bp_ops_check_same(op, y, dx, err));
    if (y->ndim < 1) return bp_error_set(err, BP_ERR_INVALID, "%s: needs rank >= 1", op);
    if (!BP_IMPL_HAS(be->impl, softmax_backward)) return bp_ops_missing(be, op, err);
    return be->impl->softmax_backward(be->impl, y, dy, scale, dx, err);
}

bp_status bp_op_layernorm_backward(bp_backend *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *dy, float eps,
                                   bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err) {
    const char *op = "layernorm_backward";
    TRY(bp_ops_check_f32(be, op, "x", x, err));
    TRY(bp_ops_check_f32(be, op, "dy", dy, err));
    TRY(bp_ops_check_f32(be, op, "dx", dx, err));
    TRY(bp_ops_check_same(op, x, dy, err));
    TRY(bp_ops_check_same(op, x, dx, err));
    if (x->ndim < 1) return bp_error_set(err, BP_ERR_INVALID, "%s: needs rank >= 1", op);
    TRY(bp_ops_check_vec(be, op, "weight", w, x->shape[x->ndim - 1], err));
    TRY(bp_ops_check_vec(be, op, "dw", dw, x->shape[x->ndim - 1], err));
    TRY(bp_ops_check_vec(be, op, "db", db, x->shape[x->ndim - 1], err));
    if (!BP_IMPL_HAS(be->impl, layernorm_backward)) return bp_ops_missing(be, op, err);
    return be->impl->layernorm_backward(be->impl, x, w, dy, eps, dx, dw, db, err);
}

bp_status bp_op_conv2d_backward(bp_backend *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                bp_tensor *dw, bp_tensor *db, bp_error *err) {
    const char *op = "conv2d_backward";
    /* The forward's shape rules, with dy in the place of y. */
    bp_conv2d_desc fwd = *d;
    fwd.y = (bp_tensor *)dy;
    TRY(bp_ops_check_conv2d(be, op, &fwd, err));
    if (dx) {
        TRY(bp_ops_check_f32(be, op, "dx", dx, err));
        TRY(bp_ops_check_same(op, d->x, dx, err));
    }
    if (dw) {
        TRY(bp_ops_check_f32(be, op, "dw", dw, err));
        TRY(bp_ops_check_same(op, d->w, dw, err));
    }
    TRY(bp_ops_check_vec(be, op, "db", db, d->w->shape[0], err));
    if (!BP_IMPL_HAS(be->impl, conv2d_backward)) return bp_ops_missing(be, op, err);
    bp_conv2d_desc dd = fwd;
    dd.struct_size = sizeof dd;
    dd.y = NULL;
    if (dd.groups < 1) dd.groups = 1;
    if (dd.dilation_h < 1) dd.dilation_h = 1;
    if (dd.dilation_w < 1) dd.dilation_w = 1;
    return be->impl->conv2d_backward(be->impl, &dd, dy, dx, dw, db, err);
}

bp_status bp_op_sum_to(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *op = "sum_to";
    TRY(bp_ops_check_f32(be, op, "x", x, err));
    TRY(bp_ops_check_f32(be, op, "y", y, err));
    int ok = bp_tensor_numel(y) == 1;
    if (!ok && y->ndim <= x->ndim) {
        ok = 1;
        for (int32_t i = 0; i < y->ndim; i++)
            if (y->shape[y->ndim - 1 - i] != x->shape[x->ndim - 1 - i]) ok = 0;
    }
    if (!ok) {
        char sx[96], sy[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: y %s is not x %s with leading dims summed away", op,
                            bp_tensor_describe(y, sy, sizeof sy), bp_tensor_describe(x, sx, sizeof sx));
    }
    if (!BP_IMPL_HAS(be->impl, sum_to)) return bp_ops_missing(be, op, err);
    return be->impl->sum_to(be->impl, x, y, err);
}

static bp_status check_bn(bp_backend *be, const char *op, const bp_batchnorm_desc *d, bp_error *err) {
    TRY(bp_ops_check_f32(be, op, "x", d->x, err));
    TRY(bp_ops_check_f32(be, op, "y", d->y, err));
    TRY(bp_ops_check_same(op, d->x, d->y, err));
    if (d->x->ndim != 4) return bp_error_set(err, BP_ERR_INVALID, "%s: x must be NCHW (rank 4), got rank %d", op, d->x->ndim);
    int64_t c = d->x->shape[1];
    if (!d->mean || !d->var) return bp_error_set(err, BP_ERR_INVALID, "%s: mean and var are required", op);
    TRY(bp_ops_check_vec(be, op, "mean", d->mean, c, err));
    TRY(bp_ops_check_vec(be, op, "var", d->var, c, err));
    TRY(bp_ops_check_vec(be, op, "weight", d->w, c, err));
    TRY(bp_ops_check_vec(be, op, "bias", d->b, c, err));
    if (!(d->eps >= 0)) return bp_error_set(err, BP_ERR_INVALID, "%s: eps must be >= 0", op);
    return BP_OK;
}

bp_status bp_op_batchnorm(bp_backend *be, const bp_batchnorm_desc *d, bp_error *err) {
    TRY(check_bn(be, "batchnorm", d, err));
    if (!BP_IMPL_HAS(be->impl, batchnorm)) return bp_ops_missing(be, "batchnorm", err);
    bp_batchnorm_desc dd = *d;
    dd.struct_size = sizeof dd;
    return be->impl->batchnorm(be->impl, &dd, err);
}

bp_status bp_op_batchnorm_backward(bp_backend *be, const bp_batchnorm_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                   bp_tensor *dw, bp_tensor *db, bp_error *err) {
    const char *op = "batchnorm_backward";
    TRY(check_bn(be, op, d, err));
    TRY(bp_ops_check_f32(be, op, "dy", dy, err));
    TRY(bp_ops_check_same(op, d->x, dy, err));
    if (dx) {
        TRY(bp_ops_check_f32(be, op, "dx", dx, err));
        TRY(bp_ops_check_same(op, d->x, dx, err));
    }
    TRY(bp_ops_check_vec(be, op, "dw", dw, d->x->shape[1], err));
    TRY(bp_ops_check_vec(be, op, "db", db, d->x->shape[1], err));
    if (!BP_IMPL_HAS(be->impl, batchnorm_backward)) return bp_ops_missing(be, op, err);
    bp_batchnorm_desc dd = *d;
    dd.struct_size = sizeof dd;
    return be->impl->batchnorm_backward(be->impl, &dd, dy, dx, dw, db, err);
}

static bp_status check_pool(bp_backend *be, const char *op, const bp_pool2d_desc *d, int need_argmax, bp_error *err) {
    TRY(bp_ops_check_f32(be, op, "x", d->x, err));
    TRY(bp_ops_check_f32(be, op, "y", d->y, err));
    const bp_tensor *x = d->x, *y = d->y;
    char sx[96], sy[96];
    if (x->ndim != 4 || y->ndim != 4 || x->shape[2] < 1 || x->shape[3] < 1 || d->kernel_h < 1 || d->kernel_w < 1 || d->stride_h < 1 || d->stride_w < 1 ||
        d->pad_h < 0 || d->pad_w < 0 || d->pad_h >= d->kernel_h || d->pad_w >= d->kernel_w)
        goto bad;
    int64_t oh = (x->shape[2] + 2 * d->pad_h - d->kernel_h) / d->stride_h + 1;
    int64_t ow = (x->shape[3] + 2 * d->pad_w - d->kernel_w) / d->stride_w + 1;
    if (oh < 1 || ow < 1 || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] || y->shape[2] != oh ||
        y->shape[3] != ow)
        goto bad;
    if (need_argmax && !d->argmax) return bp_error_set(err, BP_ERR_INVALID, "%s: argmax is required", op);
    if (d->argmax) {
        TRY(bp_ops_check_on(be, op, "argmax", d->argmax, err));
        if (d->argmax->dtype != BP_DTYPE_I32 || d->argmax->ndim != 4 ||
            bp_tensor_numel(d->argmax) != bp_tensor_numel(y))
            return bp_error_set(err, BP_ERR_INVALID, "%s: argmax must be I32 shaped like y", op);
    }
    return BP_OK;
bad:
    return bp_error_set(err, BP_ERR_INVALID, "%s: incompatible x %s, y %s (kernel %dx%d stride %d,%d pad %d,%d)", op,
                        bp_tensor_describe(x, sx, sizeof sx), bp_tensor_describe(y, sy, sizeof sy), d->kernel_h,
                        d->kernel_w, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
}

bp_status bp_op_maxpool2d(bp_backend *be, const bp_pool2d_desc *d, bp_error *err) {
    TRY(check_pool(be, "maxpool2d", d, 0, err));
    if (!BP_IMPL_HAS(be->impl, maxpool2d)) return bp_ops_missing(be, "maxpool2d", err);
    bp_pool2d_desc dd = *d;
    dd.struct_size = sizeof dd;
    return be->impl->maxpool2d(be->impl, &dd, err);
}

bp_status bp_op_maxpool2d_backward(bp_backend *be, const bp_pool2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err) {
    const char *op = "maxpool2d_backward";
    TRY(check_pool(be, op, d, 1, err));
    TRY(bp_ops_check_f32(be, op, "dy", dy, err));
    TRY(bp_ops_check_same(op, d->y, dy, err));
    TRY(bp_ops_check_f32(be, op, "dx", dx, err));
    TRY(bp_ops_check_same(op, d->x, dx, err));
    if (!BP_IMPL_HAS(be->impl, maxpool2d_backward)) return bp_ops_missing(be, op, err);
    bp_pool2d_desc dd = *d;
    dd.struct_size = sizeof dd;
    return be->impl->maxpool2d_backward(be->impl, &dd, dy, dx, err);
}

bp_status bp_op_add_rows(bp_backend *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table, bp_error *err) {
    const char *op = "add_rows";
    TRY(bp_ops_check_f32(be, op, "src", src, err));
    TRY(bp_ops_check_f32(be, op, "table", table, err));
    TRY(bp_ops_check_on(be, op, "ids", ids, err));
    if (ids->dtype != BP_DTYPE_I32 || ids->ndim != 1 || src->ndim != 2 || table->ndim != 2 ||
        src->shape[0] != ids->shape[0] || src->shape[1] != table->shape[1]) {
        char a[96], b[96], c[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: incompatible src %s, ids %s, table %s", op,
                            bp_tensor_describe(src, a, sizeof a), bp_tensor_describe(ids, b, sizeof b),
                            bp_tensor_describe(table, c, sizeof c));
    }
    if (!BP_IMPL_HAS(be->impl, add_rows)) return bp_ops_missing(be, op, err);
    return be->impl->add_rows(be->impl, src, ids, table, err);
}

bp_status bp_op_adamw(bp_backend *be, const bp_adamw_desc *d, bp_error *err) {
    const char *op = "adamw";
    TRY(bp_ops_check_f32(be, op, "param", d->param, err));
    TRY(bp_ops_check_f32(be, op, "grad", d->grad, err));
    TRY(bp_ops_check_f32(be, op, "m", d->m, err));
    TRY(bp_ops_check_f32(be, op, "v", d->v, err));
    TRY(bp_ops_check_same(op, d->param, d->grad, err));
    TRY(bp_ops_check_same(op, d->param, d->m, err));
    TRY(bp_ops_check_same(op, d->param, d->v, err));
    if (d->step < 1 || !(d->beta1 >= 0 && d->beta1 < 1) || !(d->beta2 >= 0 && d->beta2 < 1) || !(d->eps > 0) ||
        !(d->lr >= 0))
        return bp_error_set(err, BP_ERR_INVALID, "%s: needs step >= 1, 0 <= beta < 1, eps > 0, lr >= 0", op);
    if (!BP_IMPL_HAS(be->impl, adamw)) return bp_ops_missing(be, op, err);
    bp_adamw_desc dd = *d;
    dd.struct_size = sizeof dd;
    return be->impl->adamw(be->impl, &dd, err);
}
