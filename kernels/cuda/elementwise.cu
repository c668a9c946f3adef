/* Elementwise ops: unary (every bp_unary_op), binary with the row/scalar
 * broadcast of ops.h, affine, fill. Grid-stride loops over F32 elements; one
 * template instance per op so that the inner loop has no switch. */
#include "batpipe/ops.h"
#include "cuda_device.cuh"
#include "cuda_internal.h"

namespace {

using bpcuda::global_index;
using bpcuda::global_stride;

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

template <int OP> __device__ __forceinline__ float unary_apply(float x) {
    switch (OP) {
    case BP_UNARY_NEG: return -x;
    case BP_UNARY_ABS: return fabsf(x);
    case BP_UNARY_SQR: return x * x;
    case BP_UNARY_SQRT: return sqrtf(x);
    case BP_UNARY_EXP: return expf(x);
    case BP_UNARY_LOG: return logf(x);
    case BP_UNARY_SIN: return sinf(x);
    case BP_UNARY_COS: return cosf(x);
    case BP_UNARY_TANH: return tanhf(x);
    case BP_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case BP_UNARY_RELU: return x > 0.0f ? x : 0.0f;
    /* The two GELUs are evaluated in double: in float, the rounding of the
     * argument alone costs ~1e-5 relative error in the far negative tail.
     * 0.5·x·(1 + erf(x/√2)) is written 0.5·x·erfc(−x/√2) (no cancellation
     * of 1 + erf for negative x), and 0.5·(1 + tanh(u)) = 1/(1 + e^(−2u)). */
    case BP_UNARY_GELU: return (float)(0.5 * x * erfc(-(double)x * kInvSqrt2));
    case BP_UNARY_GELU_TANH: {
        double xd = x, u = kSqrt2OverPi * (xd + 0.044715 * xd * xd * xd);
        return (float)(xd / (1.0 + exp(-2.0 * u)));
    }
    case BP_UNARY_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

template <int OP> __global__ void unary_kernel(const float *x, float *y, int64_t n) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = unary_apply<OP>(x[i]);
}

template <int OP> __device__ __forceinline__ float binary_apply(float a, float b) {
    switch (OP) {
    case BP_BINARY_ADD: return a + b;
    case BP_BINARY_SUB: return a - b;
    case BP_BINARY_MUL: return a * b;
    case BP_BINARY_DIV: return a / b;
    case BP_BINARY_MAX: return fmaxf(a, b);
    case BP_BINARY_MIN: return fminf(a, b);
    default: return a;
    }
}

/* y may alias a (each element is read before it is written, by one thread). */
template <int OP> __global__ void binary_same_kernel(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = binary_apply<OP>(a[i], b[i]);
}

/* b has nb elements: a's trailing dims (row broadcast) or one element. */
template <int OP>
__global__ void binary_bcast_kernel(const float *a, const float *b, float *y, int64_t n, int64_t nb) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = binary_apply<OP>(a[i], b[i % nb]);
}

__global__ void affine_kernel(const float *x, float *y, int64_t n, float alpha, float beta) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = fmaf(alpha, x[i], beta);
}

__global__ void fill_kernel(float *y, int64_t n, float value) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = value;
}

template <int OP> void unary_launch(cudaStream_t s, const float *x, float *y, int64_t n) {
    BP_CUDA_LAUNCH(bpcuda::grid_for(n, bpcuda::kThreads), bpcuda::kThreads, s, unary_kernel<OP>)(x, y, n);
}

template <int OP> void binary_launch(cudaStream_t s, const float *a, const float *b, float *y, int64_t n, int64_t nb) {
    unsigned g = bpcuda::grid_for(n, bpcuda::kThreads);
    if (nb == n)
        BP_CUDA_LAUNCH(g, bpcuda::kThreads, s, binary_same_kernel<OP>)(a, b, y, n);
    else
        BP_CUDA_LAUNCH(g, bpcuda::kThreads, s, binary_bcast_kernel<OP>)(a, b, y, n, nb);
}

} // namespace

extern "C" {

bp_status cuda_op_unary(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    const char *name = bp_unary_op_name(op);
    bp_status st = cuda_enter(cb, name, err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    const float *xp = (const float *)x->data;
    float *yp = (float *)y->data;
    switch (op) {
#define BP_CUDA_UNARY_CASE(OPC) \
    case OPC: unary_launch<OPC>(cb->stream, xp, yp, n); break;
        BP_CUDA_UNARY_CASE(BP_UNARY_NEG)
        BP_CUDA_UNARY_CASE(BP_UNARY_ABS)
        BP_CUDA_UNARY_CASE(BP_UNARY_SQR)
        BP_CUDA_UNARY_CASE(BP_UNARY_SQRT)
        BP_CUDA_UNARY_CASE(BP_UNARY_EXP)
        BP_CUDA_UNARY_CASE(BP_UNARY_LOG)
        BP_CUDA_UNARY_CASE(BP_UNARY_SIN)
        BP_CUDA_UNARY_CASE(BP_UNARY_COS)
        BP_CUDA_UNARY_CASE(BP_UNARY_TANH)
        BP_CUDA_UNARY_CASE(BP_UNARY_SIGMOID)
        BP_CUDA_UNARY_CASE(BP_UNARY_RELU)
        BP_CUDA_UNARY_CASE(BP_UNARY_GELU)
        BP_CUDA_UNARY_CASE(BP_UNARY_GELU_TANH)
        BP_CUDA_UNARY_CASE(BP_UNARY_SILU)
#undef BP_CUDA_UNARY_CASE
    default: return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: unary op %d is not implemented", (int)op);
    }
    return cuda_check(cudaGetLastError(), name, err);
}

bp_status cuda_op_binary(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                         bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    const char *name = bp_binary_op_name(op);
    bp_status st = cuda_enter(cb, name, err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(a);
    int64_t nb = bp_tensor_numel(b);
    if (n == 0) return BP_OK;
    if (nb < 1 || n % nb != 0)
        return bp_error_set(err, BP_ERR_INVALID, "cuda: %s: b has %lld elements, a %lld", name, (long long)nb,
                            (long long)n);
    const float *ap = (const float *)a->data, *bp = (const float *)b->data;
    float *yp = (float *)y->data;
    switch (op) {
#define BP_CUDA_BINARY_CASE(OPC) \
    case OPC: binary_launch<OPC>(cb->stream, ap, bp, yp, n, nb); break;
        BP_CUDA_BINARY_CASE(BP_BINARY_ADD)
        BP_CUDA_BINARY_CASE(BP_BINARY_SUB)
        BP_CUDA_BINARY_CASE(BP_BINARY_MUL)
        BP_CUDA_BINARY_CASE(BP_BINARY_DIV)
        BP_CUDA_BINARY_CASE(BP_BINARY_MAX)
        BP_CUDA_BINARY_CASE(BP_BINARY_MIN)
#undef BP_CUDA_BINARY_CASE
    default: return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: binary op %d is not implemented", (int)op);
    }
    return cuda_check(cudaGetLastError(), name, err);
}

bp_status cuda_op_affine(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                         bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "affine", err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    BP_CUDA_LAUNCH(bpcuda::grid_for(n, bpcuda::kThreads), bpcuda::kThreads, cb->stream, affine_kernel)(
        (const float *)x->data, (float *)y->data, n, alpha, beta);
    return cuda_check(cudaGetLastError(), "affine", err);
}

bp_status cuda_op_fill(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "fill", err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(y);
    if (n == 0) return BP_OK;
    BP_CUDA_LAUNCH(bpcuda::grid_for(n, bpcuda::kThreads), bpcuda::kThreads, cb->stream, fill_kernel)(
        (float *)y->data, n, value);
    return cuda_check(cudaGetLastError(), "fill", err);
}

} // extern "C"
