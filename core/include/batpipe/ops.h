/* batpipe — the core's tensor/op interface that models are written against.
 *
 * A bp_backend is the core's handle on one compute backend instance (made by
 * the registry from a backend plugin, see registry.h). Every bp_op_* checks
 * that its tensors live on `be` and that shapes and dtypes follow the rules
 * below, then dispatches to the backend. Errors name the op and the shapes.
 *
 * Shape rules:
 *  matmul    a [..., M, K] (trans_a: [..., K, M]); b [..., K, N] or [K, N]
 *            (trans_b: [..., N, K] / [N, K]); c [..., M, N] F32; a, b both
 *            F32 or both BF16; bias F32 [N] optional.
 *            c = alpha·op(a)·op(b) + beta·c + bias.
 *  conv2d    see bp_conv2d_desc (backend.h).
 *  unary     y has x's shape; F32.
 *  binary    y has a's shape; b has a's shape, or the shape of a's trailing
 *            dims (row broadcast, e.g. a [B,T,D], b [D] or [T,D]), or one
 *            element; F32. y may alias a.
 *  affine    y = alpha·x + beta; F32.
 *  softmax   over the last dim; optional causal mask (bp_softmax_desc); a
 *            row with every element masked (only possible with a negative
 *            causal_offset) is all zeros.
 *  layernorm over the last dim D: y = (x − mean)/√(var + eps)·w + b,
 *            biased variance; w, b F32 [D] or NULL.
 *  rmsnorm   y = x/√(mean(x²) + eps)·w; w F32 [D] or NULL.
 *  reduce    x [..., D] → y [...] (or [..., 1]): sum, mean or max.
 *  convert   same number of elements; F32 ↔ F16 ↔ BF16; y must not alias x
 *            when the dtypes differ.
 *  permute   ndim ≤ 4; y.shape[i] = x.shape[perm[i]]; y must not alias x.
 *  get_rows  table [V, D] (F32, F16, BF16, Q8_0, Q4_0, Q4_1); ids [n] I32;
 *            y [n, D] F32; an id outside [0, V) is an error.
 *  fill      every element of y (F32) = value.
 *
 * Training ops (ABI 1.1); all F32 unless stated:
 *  unary_backward      dx = dy · f'(x) for a unary op f; x, dy, dx same shape.
 *  softmax_backward    from y = softmax(scale·x): dx = scale · y ⊙ (dy − Σ_last(dy ⊙ y)).
 *  layernorm_backward  gradients of layernorm(x, w, b, eps) given dy: dx, and
 *                      dw = Σ dy ⊙ x̂, db = Σ dy over all leading dims (written,
 *                      not accumulated; each of dw, db may be NULL; w may be NULL).
 *  conv2d_backward     given dy [N, O, OH, OW]: dx [N, C, H, W], dw [O, C/g, KH, KW],
 *                      db [O] (written; each may be NULL); d->y is ignored.
 *  sum_to              y = x summed over the broadcast dims: y's shape is the
 *                      trailing dims of x's shape (the inverse of the binary
 *                      broadcast rule); y = [1] sums everything.
 *  batchnorm           see bp_batchnorm_desc (backend.h).
 *  batchnorm_backward  given the forward's x, w, mean, var and dy: dx, dw, db (each may
 *                      be NULL); with training = 1 the gradient flows through the batch
 *                      statistics, with training = 0 mean/var are constants.
 *  For every backward op, dx may alias dy.
 *  maxpool2d           see bp_pool2d_desc; maxpool2d_backward scatters dy to the
 *                      recorded argmax positions (dx is overwritten).
 *  add_rows            table[ids[i]] += src[i] for every i (ids I32 [n], src [n, D],
 *                      table [V, D]); repeated ids accumulate (the backward of get_rows).
 *  adamw               see bp_adamw_desc; param, grad, m, v same shape. */
#ifndef BATPIPE_OPS_H
#define BATPIPE_OPS_H

#include "backend.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef struct bp_backend bp_backend;

/* Wrap a backend instance; the handle takes ownership of `impl` (destroyed by
 * bp_backend_free, also when wrapping fails). */
BP_API bp_status bp_backend_wrap(bp_backend_impl *impl, bp_backend **out, bp_error *err);
BP_API void bp_backend_free(bp_backend *be);
BP_API const char *bp_backend_name(const bp_backend *be);
BP_API const char *bp_backend_device(const bp_backend *be);
BP_API int bp_backend_is_host(const bp_backend *be);
BP_API int bp_backend_has_bf16(const bp_backend *be);
BP_API int32_t bp_backend_threads(const bp_backend *be);
BP_API bp_backend_impl *bp_backend_impl_of(bp_backend *be);
BP_API bp_status bp_backend_sync(bp_backend *be, bp_error *err);

/* Copy host bytes into a backend tensor / a backend tensor into host memory
 * (bytes must equal bp_tensor_nbytes). Reading waits for pending ops. */
BP_API bp_status bp_tensor_write(bp_tensor *dst, const void *src_host, size_t bytes, bp_error *err);
BP_API bp_status bp_tensor_read(const bp_tensor *src, void *dst_host, size_t bytes, bp_error *err);
/* New tensor on `be` holding a copy of a host tensor. */
BP_API bp_status bp_tensor_upload(bp_backend *be, const bp_tensor *host, bp_tensor **out, bp_error *err);

BP_API bp_status bp_op_matmul(bp_backend *be, const bp_tensor *a, const bp_tensor *b, bp_tensor *c,
                              const bp_tensor *bias, int trans_a, int trans_b, float alpha, float beta,
                              bp_error *err);
BP_API bp_status bp_op_conv2d(bp_backend *be, const bp_conv2d_desc *d, bp_error *err);
BP_API bp_status bp_op_unary(bp_backend *be, bp_unary_op op, const bp_tensor *x, bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_binary(bp_backend *be, bp_binary_op op, const bp_tensor *a, const bp_tensor *b,
                              bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_affine(bp_backend *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                              bp_error *err);
BP_API bp_status bp_op_softmax(bp_backend *be, const bp_tensor *x, bp_tensor *y, float scale, int causal,
                               int64_t causal_offset, bp_error *err);
BP_API bp_status bp_op_layernorm(bp_backend *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                                 float eps, bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_rmsnorm(bp_backend *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                               bp_error *err);
BP_API bp_status bp_op_reduce(bp_backend *be, bp_reduce_op op, const bp_tensor *x, bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_convert(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_permute(bp_backend *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                               bp_error *err);
BP_API bp_status bp_op_get_rows(bp_backend *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                                bp_error *err);
BP_API bp_status bp_op_fill(bp_backend *be, bp_tensor *y, float value, bp_error *err);

/* --- training ops (ABI 1.1) --- */
BP_API bp_status bp_op_unary_backward(bp_backend *be, bp_unary_op op, const bp_tensor *x, const bp_tensor *dy,
                                      bp_tensor *dx, bp_error *err);
BP_API bp_status bp_op_softmax_backward(bp_backend *be, const bp_tensor *y, const bp_tensor *dy, float scale,
                                        bp_tensor *dx, bp_error *err);
BP_API bp_status bp_op_layernorm_backward(bp_backend *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *dy,
                                          float eps, bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err);
BP_API bp_status bp_op_conv2d_backward(bp_backend *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                       bp_tensor *dw, bp_tensor *db, bp_error *err);
BP_API bp_status bp_op_sum_to(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
BP_API bp_status bp_op_batchnorm(bp_backend *be, const bp_batchnorm_desc *d, bp_error *err);
BP_API bp_status bp_op_batchnorm_backward(bp_backend *be, const bp_batchnorm_desc *d, const bp_tensor *dy,
                                          bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err);
BP_API bp_status bp_op_maxpool2d(bp_backend *be, const bp_pool2d_desc *d, bp_error *err);
BP_API bp_status bp_op_maxpool2d_backward(bp_backend *be, const bp_pool2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                          bp_error *err);
BP_API bp_status bp_op_add_rows(bp_backend *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                                bp_error *err);
BP_API bp_status bp_op_adamw(bp_backend *be, const bp_adamw_desc *d, bp_error *err);

BP_API const char *bp_unary_op_name(int32_t op);
BP_API const char *bp_binary_op_name(int32_t op);
BP_API const char *bp_reduce_op_name(int32_t op);

BP_EXTERN_C_END

#endif /* BATPIPE_OPS_H */
