/* Row-wise ops over the last dimension: softmax (with causal mask),
 * layernorm, rmsnorm, reduce. One thread block per row (grid-stride over
 * rows), double accumulation with a warp-shuffle tree per block. */
#include "batpipe/ops.h"
#include "cuda_device.cuh"
#include "cuda_internal.h"

namespace {

using bpcuda::block_max;
using bpcuda::block_sum;

/* Rows of D elements; row r sits at position r % S along dim ndim−2, and with
 * `causal` only columns j ≤ (r % S) + offset take part. A row with no
 * column left (possible only with offset < 0) is written as zeros.
 * The sum of exponentials is accumulated in double. */
__global__ void softmax_kernel(const float *x, float *y, int64_t rows, int64_t D, int64_t S, float scale,
                               int causal, int64_t offset) {
    __shared__ float redf[32];
    __shared__ double redd[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        int64_t valid = D;
        if (causal) {
            int64_t lim = r % S + offset + 1;
            valid = lim < 0 ? 0 : (lim < D ? lim : D);
        }
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) m = fmaxf(m, scale * xr[j]);
        m = block_max(m, redf);
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) s += (double)expf(scale * xr[j] - m);
        const double inv = 1.0 / block_sum(s, redd);
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
            yr[j] = j < valid ? (float)((double)expf(scale * xr[j] - m) * inv) : 0.0f;
    }
}

/* w, b may be NULL (1 and 0). Biased variance, two passes; the statistics
 * and the normalisation are computed in double (rows with a large mean
 * would otherwise lose digits in x − mean). */
__global__ void layernorm_kernel(const float *x, const float *w, const float *b, float *y, int64_t rows, int64_t D,
                                 float eps) {
    __shared__ double red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
        const double mean = block_sum(s, red) / (double)D;
        double v = 0.0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
            double d = xr[j] - mean;
            v += d * d;
        }
        const double rstd = 1.0 / sqrt(block_sum(v, red) / (double)D + (double)eps);
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
            double t = (xr[j] - mean) * rstd;
            if (w) t *= w[j];
            if (b) t += b[j];
            yr[j] = (float)t;
        }
    }
}

/* y = x / √(mean(x²) + eps) · w, statistics in double; w may be NULL. */
__global__ void rmsnorm_kernel(const float *x, const float *w, float *y, int64_t rows, int64_t D, float eps) {
    __shared__ double red[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += (double)xr[j] * xr[j];
        const double rstd = 1.0 / sqrt(block_sum(s, red) / (double)D + (double)eps);
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
            double t = xr[j] * rstd;
            yr[j] = (float)(w ? t * w[j] : t);
        }
    }
}

/* Sum and mean accumulate in double; max is exact in float. */
__global__ void reduce_kernel(const float *x, float *y, int64_t rows, int64_t D, int op) {
    __shared__ float redf[32];
    __shared__ double redd[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * D;
        float out;
        if (op == BP_REDUCE_MAX) {
            float m = -INFINITY;
            for (int64_t j = threadIdx.x; j < D; j += blockDim.x) m = fmaxf(m, xr[j]);
            out = block_max(m, redf);
        } else {
            double s = 0.0;
            for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
            s = block_sum(s, redd);
            out = (float)(op == BP_REDUCE_MEAN ? s / (double)D : s);
        }
        if (threadIdx.x == 0) y[r] = out;
    }
}

} // namespace

extern "C" {

bp_status cuda_op_softmax(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "softmax", err);
    if (st != BP_OK) return st;
    const bp_tensor *x = d->x;
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    int64_t D = x->shape[x->ndim - 1];
    int64_t S = x->ndim >= 2 ? x->shape[x->ndim - 2] : 1;
    int64_t rows = n / D;
    BP_CUDA_LAUNCH(bpcuda::grid_rows(rows), bpcuda::threads_for_row(D), cb->stream, softmax_kernel)(
        (const float *)x->data, (float *)d->y->data, rows, D, S, d->scale, d->causal ? 1 : 0, d->causal_offset);
    return cuda_check(cudaGetLastError(), "softmax", err);
}

bp_status cuda_op_layernorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                            float eps, bp_tensor *y, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "layernorm", err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    int64_t D = x->shape[x->ndim - 1];
    int64_t rows = n / D;
    BP_CUDA_LAUNCH(bpcuda::grid_rows(rows), bpcuda::threads_for_row(D), cb->stream, layernorm_kernel)(
        (const float *)x->data, w ? (const float *)w->data : nullptr, b ? (const float *)b->data : nullptr,
        (float *)y->data, rows, D, eps);
    return cuda_check(cudaGetLastError(), "layernorm", err);
}

bp_status cuda_op_rmsnorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                          bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "rmsnorm", err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    int64_t D = x->shape[x->ndim - 1];
    int64_t rows = n / D;
    BP_CUDA_LAUNCH(bpcuda::grid_rows(rows), bpcuda::threads_for_row(D), cb->stream, rmsnorm_kernel)(
        (const float *)x->data, w ? (const float *)w->data : nullptr, (float *)y->data, rows, D, eps);
    return cuda_check(cudaGetLastError(), "rmsnorm", err);
}

bp_status cuda_op_reduce(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    const char *name = bp_reduce_op_name(op);
    bp_status st = cuda_enter(cb, name, err);
    if (st != BP_OK) return st;
    if (op != BP_REDUCE_SUM && op != BP_REDUCE_MEAN && op != BP_REDUCE_MAX)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: reduce op %d is not implemented", (int)op);
    int64_t rows = bp_tensor_numel(y);
    if (rows == 0) return BP_OK;
    int64_t D = x->shape[x->ndim - 1];
    BP_CUDA_LAUNCH(bpcuda::grid_rows(rows), bpcuda::threads_for_row(D), cb->stream, reduce_kernel)(
        (const float *)x->data, (float *)y->data, rows, D, (int)op);
    return cuda_check(cudaGetLastError(), name, err);
}

} // extern "C"
