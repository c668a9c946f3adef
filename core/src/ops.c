/* The core op interface: shape/dtype/placement checks, then dispatch to the
 * backend's table. Errors name the op, the backend and the shapes. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"
#include "batpipe/ops.h"
#include "batpipe/registry.h"
#include "ops_check.h"

#define IMPL_HAS BP_IMPL_HAS

bp_status bp_backend_wrap(bp_backend_impl *impl, bp_backend **out, bp_error *err) {
    *out = NULL;
    if (!impl) return bp_error_set(err, BP_ERR_INVALID, "backend: no implementation");
    static const size_t required[] = {offsetof(bp_backend_impl, alloc), offsetof(bp_backend_impl, free),
                                      offsetof(bp_backend_impl, write), offsetof(bp_backend_impl, read)};
    if (impl->struct_size < offsetof(bp_backend_impl, destroy) + sizeof impl->destroy) {
        bp_error_set(err, BP_ERR_ABI, "backend '%s': struct_size %u is smaller than the ABI 1.0 table (%zu)",
                     impl->name ? impl->name : "?", impl->struct_size,
                     offsetof(bp_backend_impl, destroy) + sizeof impl->destroy);
        if (impl->destroy) impl->destroy(impl);
        return BP_ERR_ABI;
    }
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        void *fn;
        memcpy(&fn, (const char *)impl + required[i], sizeof fn);
        if (!fn) {
            bp_error_set(err, BP_ERR_ABI, "backend '%s': a required memory function is NULL",
                         impl->name ? impl->name : "?");
            if (impl->destroy) impl->destroy(impl);
            return BP_ERR_ABI;
        }
    }
    bp_backend *be = calloc(1, sizeof *be);
    if (!be) {
        if (impl->destroy) impl->destroy(impl);
        return bp_error_set(err, BP_ERR_NOMEM, "backend: out of memory");
    }
    be->impl = impl;
    *out = be;
    return BP_OK;
}

void bp_backend_free(bp_backend *be) {
    if (!be) return;
    if (be->impl && be->impl->destroy) be->impl->destroy(be->impl);
    bp_paramset_free(be->owned_params);
    free(be);
}

const char *bp_backend_name(const bp_backend *be) { return be->impl->name ? be->impl->name : "?"; }
const char *bp_backend_device(const bp_backend *be) { return be->impl->device; }
int bp_backend_is_host(const bp_backend *be) { return be->impl->host_memory != 0; }
int bp_backend_has_bf16(const bp_backend *be) { return be->impl->has_bf16 != 0; }
int32_t bp_backend_threads(const bp_backend *be) { return be->impl->n_threads; }
bp_backend_impl *bp_backend_impl_of(bp_backend *be) { return be->impl; }

bp_status bp_backend_sync(bp_backend *be, bp_error *err) {
    if (!IMPL_HAS(be->impl, synchronize)) return BP_OK;
    return be->impl->synchronize(be->impl, err);
}

/* ------------------------------------------------------------ transfers -- */

bp_status bp_tensor_write(bp_tensor *dst, const void *src_host, size_t bytes, bp_error *err) {
    size_t n = bp_tensor_nbytes(dst);
    if (bytes != n) return bp_error_set(err, BP_ERR_INVALID, "tensor write: %zu bytes for a tensor of %zu", bytes, n);
    if (!dst->backend) {
        memcpy(dst->data, src_host, bytes);
        return BP_OK;
    }
    return dst->backend->impl->write(dst->backend->impl, dst->data, src_host, bytes, err);
}

bp_status bp_tensor_read(const bp_tensor *src, void *dst_host, size_t bytes, bp_error *err) {
    size_t n = bp_tensor_nbytes(src);
    if (bytes != n) return bp_error_set(err, BP_ERR_INVALID, "tensor read: %zu bytes for a tensor of %zu", bytes, n);
    if (!src->backend) {
        memcpy(dst_host, src->data, bytes);
        return BP_OK;
    }
    return src->backend->impl->read(src->backend->impl, dst_host, src->data, bytes, err);
}

bp_status bp_tensor_upload(bp_backend *be, const bp_tensor *host, bp_tensor **out, bp_error *err) {
    *out = NULL;
    if (host->backend && !bp_backend_is_host(host->backend))
        return bp_error_set(err, BP_ERR_INVALID, "upload: source tensor is not in host memory");
    bp_tensor *t;
    bp_status st = bp_tensor_new(be, host->dtype, host->ndim, host->shape, &t, err);
    if (st != BP_OK) return st;
    st = bp_tensor_write(t, host->data, bp_tensor_nbytes(host), err);
    if (st != BP_OK) {
        bp_tensor_free(t);
        return st;
    }
    *out = t;
    return BP_OK;
}

/* --------------------------------------------------------------- checks -- */

static const char *shape_str(const bp_tensor *t, char *buf, size_t cap) {
    return t ? bp_tensor_describe(t, buf, cap) : "(none)";
}

bp_status bp_ops_check_on(bp_backend *be, const char *op, const char *role, const bp_tensor *t, bp_error *err) {
    if (!t) return bp_error_set(err, BP_ERR_INVALID, "%s: %s tensor is NULL", op, role);
    if (t->backend != be && !(t->backend == NULL && bp_backend_is_host(be)))
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s tensor lives on %s, not on backend '%s'", op, role,
                            t->backend ? bp_backend_name(t->backend) : "the host", bp_backend_name(be));
    if (!t->data && bp_tensor_numel(t) > 0)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s tensor has no data", op, role);
    return BP_OK;
}

static bp_status check_dtype(const char *op, const char *role, const bp_tensor *t, int32_t dtype, bp_error *err) {
    if (t->dtype != dtype)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s tensor is %s, expected %s", op, role,
                            bp_dtype_name(t->dtype), bp_dtype_name(dtype));
    return BP_OK;
}

bp_status bp_ops_check_f32(bp_backend *be, const char *op, const char *role, const bp_tensor *t, bp_error *err) {
    bp_status st = bp_ops_check_on(be, op, role, t, err);
    return st != BP_OK ? st : check_dtype(op, role, t, BP_DTYPE_F32, err);
}

bp_status bp_ops_check_vec(bp_backend *be, const char *op, const char *role, const bp_tensor *t, int64_t n,
                           bp_error *err) {
    if (!t) return BP_OK;
    bp_status st = bp_ops_check_f32(be, op, role, t, err);
    if (st != BP_OK) return st;
    if (t->ndim != 1 || t->shape[0] != n)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be [%lld]", op, role, (long long)n);
    return BP_OK;
}

bp_status bp_ops_check_same(const char *op, const bp_tensor *x, const bp_tensor *y, bp_error *err) {
    if (bp_tensor_numel(x) != bp_tensor_numel(y) || x->ndim != y->ndim) goto bad;
    for (int32_t i = 0; i < x->ndim; i++)
        if (x->shape[i] != y->shape[i]) goto bad;
    return BP_OK;
bad:;
    char a[96], b[96];
    return bp_error_set(err, BP_ERR_INVALID, "%s: output %s does not match input %s", op, shape_str(y, b, sizeof b),
                        shape_str(x, a, sizeof a));
}

bp_status bp_ops_missing(bp_backend *be, const char *op, bp_error *err) {
    return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: not supported by backend '%s'", op, bp_backend_name(be));
}

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

/* ------------------------------------------------------------------ ops -- */

bp_status bp_op_matmul(bp_backend *be, const bp_tensor *a, const bp_tensor *b, bp_tensor *c, const bp_tensor *bias,
                       int trans_a, int trans_b, float alpha, float beta, bp_error *err) {
    const char *op = "matmul";
    TRY(bp_ops_check_on(be, op, "a", a, err));
    TRY(bp_ops_check_on(be, op, "b", b, err));
    TRY(bp_ops_check_on(be, op, "c", c, err));
    if (bias) {
        TRY(bp_ops_check_on(be, op, "bias", bias, err));
        TRY(check_dtype(op, "bias", bias, BP_DTYPE_F32, err));
    }
    TRY(check_dtype(op, "c", c, BP_DTYPE_F32, err));
    if (!((a->dtype == BP_DTYPE_F32 && b->dtype == BP_DTYPE_F32) ||
          (a->dtype == BP_DTYPE_BF16 && b->dtype == BP_DTYPE_BF16)))
        return bp_error_set(err, BP_ERR_INVALID, "matmul: a is %s and b is %s; both must be F32 or both BF16",
                            bp_dtype_name(a->dtype), bp_dtype_name(b->dtype));
    char sa[96], sb[96], sc[96];
    if (a->ndim < 2 || b->ndim < 2 || c->ndim != a->ndim || (b->ndim != 2 && b->ndim != a->ndim))
        goto bad;
    int64_t M = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t K = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t Kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t N = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (K != Kb || c->shape[c->ndim - 2] != M || c->shape[c->ndim - 1] != N) goto bad;
    for (int32_t i = 0; i < a->ndim - 2; i++) {
        if (c->shape[i] != a->shape[i]) goto bad;
        if (b->ndim == a->ndim && b->shape[i] != a->shape[i]) goto bad;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != N)) goto bad;
    if (!IMPL_HAS(be->impl, matmul)) return bp_ops_missing(be, op, err);
    bp_matmul_desc d = {sizeof d, a, b, c, bias, trans_a, trans_b, alpha, beta};
    return be->impl->matmul(be->impl, &d, err);
bad:
    return bp_error_set(err, BP_ERR_INVALID, "matmul: incompatible shapes a %s%s, b %s%s, c %s%s",
                        shape_str(a, sa, sizeof sa), trans_a ? "ᵀ" : "", shape_str(b, sb, sizeof sb),
                        trans_b ? "ᵀ" : "", shape_str(c, sc, sizeof sc), bias ? " (+bias)" : "");
}

bp_status bp_ops_check_conv2d(bp_backend *be, const char *op, const bp_conv2d_desc *d, bp_error *err) {
    TRY(bp_ops_check_f32(be, op, "x", d->x, err));
    TRY(bp_ops_check_f32(be, op, "w", d->w, err));
    TRY(bp_ops_check_f32(be, op, d->y && strcmp(op, "conv2d") ? "dy" : "y", d->y, err));
    if (d->bias) TRY(bp_ops_check_f32(be, op, "bias", d->bias, err));
    char sx[96], sw[96], sy[96];
    const bp_tensor *x = d->x, *w = d->w, *y = d->y;
    int32_t g = d->groups > 0 ? d->groups : 1;
    int32_t dh = d->dilation_h > 0 ? d->dilation_h : 1, dw = d->dilation_w > 0 ? d->dilation_w : 1;
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || d->stride_h < 1 || d->stride_w < 1 || d->pad_h < 0 ||
        d->pad_w < 0)
        goto bad;
    if (x->shape[1] % g || w->shape[0] % g || w->shape[1] != x->shape[1] / g) goto bad;
    int64_t oh = (x->shape[2] + 2 * d->pad_h - (int64_t)dh * (w->shape[2] - 1) - 1) / d->stride_h + 1;
    int64_t ow = (x->shape[3] + 2 * d->pad_w - (int64_t)dw * (w->shape[3] - 1) - 1) / d->stride_w + 1;
    if (oh < 1 || ow < 1 || y->shape[0] != x->shape[0] || y->shape[1] != w->shape[0] || y->shape[2] != oh ||
        y->shape[3] != ow)
        goto bad;
    if (d->bias && (d->bias->ndim != 1 || d->bias->shape[0] != w->shape[0])) goto bad;
    return BP_OK;
bad:
    return bp_error_set(err, BP_ERR_INVALID,
                        "%s: incompatible shapes x %s, w %s, y %s (stride %d,%d pad %d,%d dilation %d,%d groups %d)",
                        op, shape_str(x, sx, sizeof sx), shape_str(w, sw, sizeof sw), shape_str(y, sy, sizeof sy),
                        d->stride_h, d->stride_w, d->pad_h, d->pad_w, d->dilation_h, d->dilation_w, d->groups);
}

bp_status bp_op_conv2d(bp_backend *be, const bp_conv2d_desc *d, bp_error *err) {
    TRY(bp_ops_check_conv2d(be, "conv2d", d, err));
    if (!IMPL_HAS(be->impl, conv2d)) return bp_ops_missing(be, "conv2d", err);
    bp_conv2d_desc dd = *d;
    dd.struct_size = sizeof dd;
    if (dd.groups < 1) dd.groups = 1;
    if (dd.dilation_h < 1) dd.dilation_h = 1;
    if (dd.dilation_w < 1) dd.dilation_w = 1;
    return be->impl->conv2d(be->impl, &dd, err);
}

bp_status bp_op_unary(bp_backend *be, bp_unary_op opc, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *op = bp_unary_op_name(opc);
    if ((int)opc < 0 || opc >= BP_UNARY_COUNT) return bp_error_set(err, BP_ERR_INVALID, "unary: unknown op %d", (int)opc);
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, x, y, err));
    if (!IMPL_HAS(be->impl, unary)) return bp_ops_missing(be, op, err);
    return be->impl->unary(be->impl, (int32_t)opc, x, y, err);
}

bp_status bp_op_binary(bp_backend *be, bp_binary_op opc, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                       bp_error *err) {
    const char *op = bp_binary_op_name(opc);
    if ((int)opc < 0 || opc >= BP_BINARY_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, "binary: unknown op %d", (int)opc);
    TRY(bp_ops_check_on(be, op, "a", a, err));
    TRY(bp_ops_check_on(be, op, "b", b, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "a", a, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "b", b, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, a, y, err));
    int ok = bp_tensor_numel(b) == 1;
    if (!ok && b->ndim <= a->ndim) {
        ok = 1;
        for (int32_t i = 0; i < b->ndim; i++)
            if (b->shape[b->ndim - 1 - i] != a->shape[a->ndim - 1 - i]) ok = 0;
    }
    if (!ok) {
        char sa[96], sb[96];
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: b %s does not broadcast to a %s (b must match a's trailing dims or be one element)",
                            op, shape_str(b, sb, sizeof sb), shape_str(a, sa, sizeof sa));
    }
    if (!IMPL_HAS(be->impl, binary)) return bp_ops_missing(be, op, err);
    return be->impl->binary(be->impl, (int32_t)opc, a, b, y, err);
}

bp_status bp_op_affine(bp_backend *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y, bp_error *err) {
    const char *op = "affine";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, x, y, err));
    if (!IMPL_HAS(be->impl, affine)) return bp_ops_missing(be, op, err);
    return be->impl->affine(be->impl, x, alpha, beta, y, err);
}

bp_status bp_op_softmax(bp_backend *be, const bp_tensor *x, bp_tensor *y, float scale, int causal,
                        int64_t causal_offset, bp_error *err) {
    const char *op = "softmax";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, x, y, err));
    if (x->ndim < 1 || (causal && x->ndim < 2))
        return bp_error_set(err, BP_ERR_INVALID, "softmax: needs rank >= %d, got %d", causal ? 2 : 1, x->ndim);
    if (!IMPL_HAS(be->impl, softmax)) return bp_ops_missing(be, op, err);
    bp_softmax_desc d = {sizeof d, x, y, scale, causal, causal_offset};
    return be->impl->softmax(be->impl, &d, err);
}

static bp_status check_norm_param(bp_backend *be, const char *op, const char *role, const bp_tensor *p,
                                  const bp_tensor *x, bp_error *err) {
    if (!p) return BP_OK;
    TRY(bp_ops_check_on(be, op, role, p, err));
    TRY(check_dtype(op, role, p, BP_DTYPE_F32, err));
    if (p->ndim != 1 || p->shape[0] != x->shape[x->ndim - 1])
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be [%lld]", op, role, (long long)x->shape[x->ndim - 1]);
    return BP_OK;
}

bp_status bp_op_layernorm(bp_backend *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b, float eps,
                          bp_tensor *y, bp_error *err) {
    const char *op = "layernorm";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, x, y, err));
    if (x->ndim < 1) return bp_error_set(err, BP_ERR_INVALID, "layernorm: needs rank >= 1");
    TRY(check_norm_param(be, op, "weight", w, x, err));
    TRY(check_norm_param(be, op, "bias", b, x, err));
    if (!IMPL_HAS(be->impl, layernorm)) return bp_ops_missing(be, op, err);
    return be->impl->layernorm(be->impl, x, w, b, eps, y, err);
}

bp_status bp_op_rmsnorm(bp_backend *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                        bp_error *err) {
    const char *op = "rmsnorm";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    TRY(bp_ops_check_same(op, x, y, err));
    if (x->ndim < 1) return bp_error_set(err, BP_ERR_INVALID, "rmsnorm: needs rank >= 1");
    TRY(check_norm_param(be, op, "weight", w, x, err));
    if (!IMPL_HAS(be->impl, rmsnorm)) return bp_ops_missing(be, op, err);
    return be->impl->rmsnorm(be->impl, x, w, eps, y, err);
}

bp_status bp_op_reduce(bp_backend *be, bp_reduce_op opc, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *op = bp_reduce_op_name(opc);
    if ((int)opc < 0 || opc >= BP_REDUCE_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, "reduce: unknown op %d", (int)opc);
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "x", x, BP_DTYPE_F32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    if (x->ndim < 1 || x->shape[x->ndim - 1] < 1 ||
        bp_tensor_numel(y) * x->shape[x->ndim - 1] != bp_tensor_numel(x)) {
        char sx[96], sy[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: output %s does not match input %s reduced over its last dim",
                            op, shape_str(y, sy, sizeof sy), shape_str(x, sx, sizeof sx));
    }
    if (!IMPL_HAS(be->impl, reduce)) return bp_ops_missing(be, op, err);
    return be->impl->reduce(be->impl, (int32_t)opc, x, y, err);
}

static int float_type(int32_t t) { return t == BP_DTYPE_F32 || t == BP_DTYPE_F16 || t == BP_DTYPE_BF16; }

bp_status bp_op_convert(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *op = "convert";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    if (!float_type(x->dtype) || !float_type(y->dtype))
        return bp_error_set(err, BP_ERR_INVALID, "convert: %s → %s; only F32, F16 and BF16 are converted",
                            bp_dtype_name(x->dtype), bp_dtype_name(y->dtype));
    if (bp_tensor_numel(x) != bp_tensor_numel(y))
        return bp_error_set(err, BP_ERR_INVALID, "convert: %lld elements into %lld", (long long)bp_tensor_numel(x),
                            (long long)bp_tensor_numel(y));
    if (!IMPL_HAS(be->impl, convert)) return bp_ops_missing(be, op, err);
    return be->impl->convert(be->impl, x, y, err);
}

bp_status bp_op_permute(bp_backend *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y, bp_error *err) {
    const char *op = "permute";
    TRY(bp_ops_check_on(be, op, "x", x, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    if (x->dtype != y->dtype || bp_dtype_block_elems(x->dtype) != 1)
        return bp_error_set(err, BP_ERR_INVALID, "permute: %s → %s; dtypes must match and not be quantized",
                            bp_dtype_name(x->dtype), bp_dtype_name(y->dtype));
    if (x->ndim < 1 || x->ndim > 4 || y->ndim != x->ndim)
        return bp_error_set(err, BP_ERR_INVALID, "permute: rank %d (1..4 supported)", x->ndim);
    int seen[4] = {0, 0, 0, 0};
    for (int32_t i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++)
            return bp_error_set(err, BP_ERR_INVALID, "permute: perm is not a permutation of 0..%d", x->ndim - 1);
        if (y->shape[i] != x->shape[perm[i]]) {
            char sx[96], sy[96];
            return bp_error_set(err, BP_ERR_INVALID, "permute: output %s does not match input %s permuted",
                                shape_str(y, sy, sizeof sy), shape_str(x, sx, sizeof sx));
        }
    }
    if (!IMPL_HAS(be->impl, permute)) return bp_ops_missing(be, op, err);
    return be->impl->permute(be->impl, x, perm, y, err);
}

bp_status bp_op_get_rows(bp_backend *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y, bp_error *err) {
    const char *op = "get_rows";
    TRY(bp_ops_check_on(be, op, "table", table, err));
    TRY(bp_ops_check_on(be, op, "ids", ids, err));
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "ids", ids, BP_DTYPE_I32, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    int32_t t = table->dtype;
    if (!(float_type(t) || t == BP_DTYPE_Q8_0 || t == BP_DTYPE_Q4_0 || t == BP_DTYPE_Q4_1))
        return bp_error_set(err, BP_ERR_INVALID, "get_rows: table dtype %s is not supported", bp_dtype_name(t));
    if (table->ndim != 2 || ids->ndim != 1 || y->ndim != 2 || y->shape[0] != ids->shape[0] ||
        y->shape[1] != table->shape[1]) {
        char st[96], si[96], sy[96];
        return bp_error_set(err, BP_ERR_INVALID, "get_rows: incompatible shapes table %s, ids %s, y %s",
                            shape_str(table, st, sizeof st), shape_str(ids, si, sizeof si), shape_str(y, sy, sizeof sy));
    }
    if (!IMPL_HAS(be->impl, get_rows)) return bp_ops_missing(be, op, err);
    return be->impl->get_rows(be->impl, table, ids, y, err);
}

bp_status bp_op_fill(bp_backend *be, bp_tensor *y, float value, bp_error *err) {
    const char *op = "fill";
    TRY(bp_ops_check_on(be, op, "y", y, err));
    TRY(check_dtype(op, "y", y, BP_DTYPE_F32, err));
    if (!IMPL_HAS(be->impl, fill)) return bp_ops_missing(be, op, err);
    return be->impl->fill(be->impl, y, value, err);
}

const char *bp_unary_op_name(int32_t op) {
    static const char *const n[BP_UNARY_COUNT] = {"neg", "abs", "sqr", "sqrt", "exp", "log", "sin",
                                                  "cos", "tanh", "sigmoid", "relu", "gelu", "gelu_tanh", "silu"};
    return (op >= 0 && op < BP_UNARY_COUNT) ? n[op] : "unary?";
}

const char *bp_binary_op_name(int32_t op) {
    static const char *const n[BP_BINARY_COUNT] = {"add", "sub", "mul", "div", "max", "min"};
    return (op >= 0 && op < BP_BINARY_COUNT) ? n[op] : "binary?";
}

const char *bp_reduce_op_name(int32_t op) {
    static const char *const n[BP_REDUCE_COUNT] = {"sum", "mean", "max"};
    return (op >= 0 && op < BP_REDUCE_COUNT) ? n[op] : "reduce?";
}
