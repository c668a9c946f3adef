/* cpu backend — elementwise ops: unary (every bp_unary_op), binary with the
 * ops.h broadcast rule, affine. Vectorised C: each kernel is a simd loop in
 * a target_clones function; OpenMP splits large tensors across threads.
 * y may alias x (or a): every element is read before it is written, at the
 * same index. */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"
#include "cpu_math.h"

/* ----------------------------------------------------------------- unary -- */

#define UNARY_KERNEL(name, expr)                                            \
    BP_CPU_CLONES static void unary_##name(const float *x, float *y, int64_t n) { \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {              \
            float v = x[i];                                                 \
            y[i] = (expr);                                                  \
        }                                                                   \
    }

UNARY_KERNEL(neg, -v)
UNARY_KERNEL(abs, cm_abs(v))
UNARY_KERNEL(sqr, v *v)
UNARY_KERNEL(sqrt, sqrtf(v))
UNARY_KERNEL(exp, cm_exp(v))
UNARY_KERNEL(log, cm_log(v))
UNARY_KERNEL(sin, cm_sincos(v, 0))
UNARY_KERNEL(cos, cm_sincos(v, 1))
UNARY_KERNEL(tanh, cm_tanh(v))
UNARY_KERNEL(sigmoid, cm_sigmoid(v))
UNARY_KERNEL(relu, v > 0.0f ? v : 0.0f)
UNARY_KERNEL(gelu, cm_gelu(v))
UNARY_KERNEL(gelu_tanh, cm_gelu_tanh(v))
UNARY_KERNEL(silu, cm_silu(v))

typedef void (*unary_fn)(const float *x, float *y, int64_t n);

static unary_fn unary_kernel(int32_t op) {
    switch (op) {
    case BP_UNARY_NEG: return unary_neg;
    case BP_UNARY_ABS: return unary_abs;
    case BP_UNARY_SQR: return unary_sqr;
    case BP_UNARY_SQRT: return unary_sqrt;
    case BP_UNARY_EXP: return unary_exp;
    case BP_UNARY_LOG: return unary_log;
    case BP_UNARY_SIN: return unary_sin;
    case BP_UNARY_COS: return unary_cos;
    case BP_UNARY_TANH: return unary_tanh;
    case BP_UNARY_SIGMOID: return unary_sigmoid;
    case BP_UNARY_RELU: return unary_relu;
    case BP_UNARY_GELU: return unary_gelu;
    case BP_UNARY_GELU_TANH: return unary_gelu_tanh;
    case BP_UNARY_SILU: return unary_silu;
    default: return NULL;
    }
}

bp_status bp_cpu_unary(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    unary_fn k = unary_kernel(op);
    if (!k) return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu unary: unknown op %d", (int)op);
    const float *xs = x->data;
    float *ys = y->data;
    int64_t n = bp_tensor_numel(x);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        k(xs + lo, ys + lo, hi - lo);
    }
    return BP_OK;
}

/* ---------------------------------------------------------------- binary -- */

#define BINARY_KERNELS(name, expr)                                                              \
    BP_CPU_CLONES static void binary_##name(const float *a, const float *b, float *y, int64_t n) { \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                  \
            float p = a[i], q = b[i];                                                           \
            y[i] = (expr);                                                                      \
        }                                                                                       \
    }                                                                                           \
    BP_CPU_CLONES static void binary_##name##_s(const float *a, float q, float *y, int64_t n) {  \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                  \
            float p = a[i];                                                                     \
            y[i] = (expr);                                                                      \
        }                                                                                       \
    }

/* max/min: `p > q ? p : q` (a NaN in a yields b, a NaN in b yields NaN). */
BINARY_KERNELS(add, p + q)
BINARY_KERNELS(sub, p - q)
BINARY_KERNELS(mul, p *q)
BINARY_KERNELS(div, p / q)
BINARY_KERNELS(max, p > q ? p : q)
BINARY_KERNELS(min, p < q ? p : q)

typedef void (*binary_fn)(const float *a, const float *b, float *y, int64_t n);
typedef void (*binary_s_fn)(const float *a, float b, float *y, int64_t n);

static int binary_kernels(int32_t op, binary_fn *vv, binary_s_fn *vs) {
    switch (op) {
    case BP_BINARY_ADD: *vv = binary_add, *vs = binary_add_s; return 1;
    case BP_BINARY_SUB: *vv = binary_sub, *vs = binary_sub_s; return 1;
    case BP_BINARY_MUL: *vv = binary_mul, *vs = binary_mul_s; return 1;
    case BP_BINARY_DIV: *vv = binary_div, *vs = binary_div_s; return 1;
    case BP_BINARY_MAX: *vv = binary_max, *vs = binary_max_s; return 1;
    case BP_BINARY_MIN: *vv = binary_min, *vs = binary_min_s; return 1;
    default: return 0;
    }
}

bp_status bp_cpu_binary(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                        bp_error *err) {
    binary_fn vv;
    binary_s_fn vs;
    if (!binary_kernels(op, &vv, &vs))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu binary: unknown op %d", (int)op);
    const float *as = a->data, *bs = b->data;
    float *ys = y->data;
    int64_t n = bp_tensor_numel(a), nb = bp_tensor_numel(b);
    if (n == 0) return BP_OK;
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
    if (nb == 1 || nb == n) {
        float q = bs[0];
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int64_t lo, hi;
            bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            if (nb == 1)
                vs(as + lo, q, ys + lo, hi - lo);
            else
                vv(as + lo, bs + lo, ys + lo, hi - lo);
        }
        return BP_OK;
    }
    /* b repeats along a's leading dims: rows of nb elements */
    int64_t rows = n / nb;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(rows, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        for (int64_t r = lo; r < hi; r++) vv(as + r * nb, bs, ys + r * nb, nb);
    }
    return BP_OK;
}

/* ---------------------------------------------------------------- affine -- */

BP_CPU_CLONES static void affine_kernel(const float *x, float alpha, float beta, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta;
}

bp_status bp_cpu_affine(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                        bp_error *err) {
    (void)err;
    const float *xs = x->data;
    float *ys = y->data;
    int64_t n = bp_tensor_numel(x);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        affine_kernel(xs + lo, alpha, beta, ys + lo, hi - lo);
    }
    return BP_OK;
}
