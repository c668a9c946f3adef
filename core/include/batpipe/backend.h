/* batpipe — the compute backend ABI (kind "batpipe.backend/1").
 *
 * A backend plugin's factory creates a bp_backend_impl: a table of memory and
 * op functions over tensors whose data it allocated. Models never call this
 * table directly; they use the core's op interface (ops.h), which checks
 * shapes and dtypes, then dispatches here.
 *
 * Conventions for every op:
 *  - tensors are dense row-major; `x`, `a`, `b` are inputs, `y`/`c` outputs;
 *  - all tensors of one call live on this backend (tensor->backend is the
 *    core handle wrapping this impl), except where stated;
 *  - shapes and dtypes were already checked by the core (ops.h documents the
 *    rules), so an op only returns BP_ERR_UNSUPPORTED for a dtype or
 *    parameter it does not implement, or BP_ERR_DEVICE when the device fails;
 *  - ops may run asynchronously: `read` and `synchronize` wait for them;
 *  - an op pointer may be NULL: the core reports "not supported by backend X".
 *  - thread rules: one instance is used from one thread at a time.
 * New ops are appended at the end in later ABI minors; the core never reads
 * a field beyond `struct_size`. */
#ifndef BATPIPE_BACKEND_H
#define BATPIPE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef enum bp_device_type { BP_DEVICE_CPU = 0, BP_DEVICE_GPU = 1 } bp_device_type;

typedef enum bp_unary_op {
    BP_UNARY_NEG = 0,
    BP_UNARY_ABS,
    BP_UNARY_SQR,
    BP_UNARY_SQRT,
    BP_UNARY_EXP,
    BP_UNARY_LOG,
    BP_UNARY_SIN,
    BP_UNARY_COS,
    BP_UNARY_TANH,
    BP_UNARY_SIGMOID,
    BP_UNARY_RELU,
    BP_UNARY_GELU,      /* exact: 0.5·x·(1 + erf(x/√2)) */
    BP_UNARY_GELU_TANH, /* 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) */
    BP_UNARY_SILU,      /* x·sigmoid(x) */
    BP_UNARY_COUNT
} bp_unary_op;

typedef enum bp_binary_op {
    BP_BINARY_ADD = 0,
    BP_BINARY_SUB,
    BP_BINARY_MUL,
    BP_BINARY_DIV,
    BP_BINARY_MAX,
    BP_BINARY_MIN,
    BP_BINARY_COUNT
} bp_binary_op;

typedef enum bp_reduce_op { BP_REDUCE_SUM = 0, BP_REDUCE_MEAN, BP_REDUCE_MAX, BP_REDUCE_COUNT } bp_reduce_op;

/* c = alpha · op(a) · op(b) + beta · c, then + bias per column.
 * a: [..., M, K] (trans_a: [..., K, M]); b: [..., K, N] or [K, N] shared by
 * every batch (trans_b: [..., N, K] / [N, K]); c: [..., M, N] F32.
 * a and b are both F32 or both BF16 (accumulation in F32). Leading dims of a
 * and c are equal and flattened into one batch count. */
typedef struct bp_matmul_desc {
    uint32_t struct_size; /* sizeof(bp_matmul_desc) */
    const bp_tensor *a;
    const bp_tensor *b;
    bp_tensor *c;
    const bp_tensor *bias; /* optional F32 [N] */
    int32_t trans_a;
    int32_t trans_b;
    float alpha;
    float beta;
} bp_matmul_desc;

/* 2-D convolution (cross-correlation), NCHW.
 * x: [N, C, H, W] F32; w: [O, C/groups, KH, KW] F32; bias optional [O];
 * y: [N, O, OH, OW] with OH = (H + 2·pad_h − dil_h·(KH−1) − 1)/stride_h + 1. */
typedef struct bp_conv2d_desc {
    uint32_t struct_size; /* sizeof(bp_conv2d_desc) */
    const bp_tensor *x;
    const bp_tensor *w;
    const bp_tensor *bias;
    bp_tensor *y;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t dilation_h, dilation_w; /* 1 = none */
    int32_t groups;                 /* 1 = dense */
} bp_conv2d_desc;

/* y = softmax(scale · x) over the last dimension. With `causal`, element
 * (..., i, j) (i along dim ndim−2) is excluded when j > i + causal_offset;
 * a row whose every element is excluded is all zeros. */
typedef struct bp_softmax_desc {
    uint32_t struct_size; /* sizeof(bp_softmax_desc) */
    const bp_tensor *x;
    bp_tensor *y;
    float scale;
    int32_t causal;
    int64_t causal_offset;
} bp_softmax_desc;

/* --- ABI 1.1: descriptors of the training ops --- */

/* Batch normalisation over NCHW per channel C:
 * y = (x − mean[c]) / √(var[c] + eps) · w[c] + b[c] (w, b optional).
 * training = 0: mean/var are inputs (running statistics).
 * training = 1: the batch mean and biased variance over (N, H, W) are
 * computed and written to mean/var (outputs). */
typedef struct bp_batchnorm_desc {
    uint32_t struct_size; /* sizeof(bp_batchnorm_desc) */
    const bp_tensor *x;   /* [N, C, H, W] F32 */
    bp_tensor *y;         /* like x; may alias x in eval mode */
    bp_tensor *mean;      /* [C] */
    bp_tensor *var;       /* [C] */
    const bp_tensor *w;   /* [C] or NULL (1) */
    const bp_tensor *b;   /* [C] or NULL (0) */
    float eps;
    int32_t training;
} bp_batchnorm_desc;

/* Max pooling over NCHW; `argmax` (I32, like y) records the flat index
 * within each input plane (h·W + w) of the chosen element, for backward.
 * Ties pick the first element in row-major order. Padding is −∞. */
typedef struct bp_pool2d_desc {
    uint32_t struct_size; /* sizeof(bp_pool2d_desc) */
    const bp_tensor *x;   /* [N, C, H, W] F32 */
    bp_tensor *y;         /* [N, C, OH, OW], OH = (H + 2·pad_h − kh)/stride_h + 1 */
    bp_tensor *argmax;    /* [N, C, OH, OW] I32; may be NULL in forward when no backward follows */
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
} bp_pool2d_desc;

/* One AdamW step on a parameter tensor (decoupled weight decay):
 * m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 * p = p − lr·( m/(1−β1^t) / (√(v/(1−β2^t)) + eps) + weight_decay·p ).
 * `grad_scale` multiplies g first (e.g. 1/accumulation steps). */
typedef struct bp_adamw_desc {
    uint32_t struct_size; /* sizeof(bp_adamw_desc) */
    bp_tensor *param;     /* F32 */
    const bp_tensor *grad;
    bp_tensor *m;         /* first moment, same shape */
    bp_tensor *v;         /* second moment, same shape */
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int64_t step;         /* t ≥ 1, for the bias corrections */
} bp_adamw_desc;

struct bp_backend_impl;
typedef struct bp_backend_impl bp_backend_impl;

struct bp_backend_impl {
    uint32_t struct_size; /* sizeof(bp_backend_impl) as compiled by the plugin */
    void *self;           /* the plugin's private state */
    const char *name;     /* "cpu", "cuda" */
    char device[128];     /* human-readable device name, e.g. "AMD EPYC (2 threads, avx512)" */
    int32_t device_type;  /* bp_device_type */
    int32_t host_memory;  /* non-zero: allocations are host memory the host may read/write directly */
    int32_t has_bf16;     /* non-zero: BF16 matmul runs natively */
    int32_t n_threads;    /* threads used for ops (CPU backends) */

    /* --- memory [one thread at a time] --- */
    bp_status (*alloc)(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err);
    void (*free)(bp_backend_impl *be, void *ptr); /* NULL allowed */
    bp_status (*write)(bp_backend_impl *be, void *dst, const void *src_host, size_t bytes, bp_error *err);
    bp_status (*read)(bp_backend_impl *be, void *dst_host, const void *src, size_t bytes, bp_error *err);
    bp_status (*copy)(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err);
    bp_status (*synchronize)(bp_backend_impl *be, bp_error *err);

    /* --- ops (see ops.h for the shape rules) --- */
    bp_status (*matmul)(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err);
    bp_status (*conv2d)(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err);
    bp_status (*unary)(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);
    bp_status (*binary)(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                        bp_error *err);
    bp_status (*affine)(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                        bp_error *err);
    bp_status (*softmax)(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err);
    bp_status (*layernorm)(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                           float eps, bp_tensor *y, bp_error *err);
    bp_status (*rmsnorm)(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                         bp_error *err);
    bp_status (*reduce)(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);
    bp_status (*convert)(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
    bp_status (*permute)(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                         bp_error *err);
    bp_status (*get_rows)(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                          bp_error *err);
    bp_status (*fill)(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err);

    /* [main-thread] Release the backend; every allocation must have been freed. */
    void (*destroy)(bp_backend_impl *be);

    /* --- ABI 1.1: ops for training (see ops.h). Any may be NULL. --- */
    bp_status (*unary_backward)(bp_backend_impl *be, int32_t op, const bp_tensor *x, const bp_tensor *dy,
                                bp_tensor *dx, bp_error *err);
    bp_status (*softmax_backward)(bp_backend_impl *be, const bp_tensor *y, const bp_tensor *dy, float scale,
                                  bp_tensor *dx, bp_error *err);
    bp_status (*layernorm_backward)(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w,
                                    const bp_tensor *dy, float eps, bp_tensor *dx, bp_tensor *dw, bp_tensor *db,
                                    bp_error *err);
    bp_status (*conv2d_backward)(bp_backend_impl *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                 bp_tensor *dw, bp_tensor *db, bp_error *err);
    bp_status (*sum_to)(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
    bp_status (*batchnorm)(bp_backend_impl *be, const bp_batchnorm_desc *d, bp_error *err);
    bp_status (*batchnorm_backward)(bp_backend_impl *be, const bp_batchnorm_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err);
    bp_status (*maxpool2d)(bp_backend_impl *be, const bp_pool2d_desc *d, bp_error *err);
    bp_status (*maxpool2d_backward)(bp_backend_impl *be, const bp_pool2d_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_error *err);
    bp_status (*add_rows)(bp_backend_impl *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                          bp_error *err);
    bp_status (*adamw)(bp_backend_impl *be, const bp_adamw_desc *d, bp_error *err);
};

BP_EXTERN_C_END

#endif /* BATPIPE_BACKEND_H */
