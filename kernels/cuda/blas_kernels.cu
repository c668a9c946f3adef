/* Kernels around the cuBLAS GEMMs of matmul and conv2d: bias addition,
 * scaling of C (the K = 0 case), im2col; and the probe that checks this
 * library holds code the current GPU can run. */
#include "cuda_device.cuh"
#include "cuda_internal.h"

namespace {

using bpcuda::global_index;
using bpcuda::global_stride;

__global__ void add_bias_kernel(float *y, const float *bias, int64_t n, int64_t inner, int64_t nbias) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] += bias[(i / inner) % nbias];
}

__global__ void scale_kernel(float *y, int64_t n, float beta) {
    for (int64_t i = global_index(); i < n; i += global_stride()) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
}

/* One thread per element of col [images][C·KH·KW][OH·OW]. */
__global__ void im2col_kernel(const float *x, float *col, int64_t total, int64_t C, int64_t H, int64_t W,
                              int64_t KH, int64_t KW, int64_t OH, int64_t OW, int32_t sh, int32_t sw, int32_t ph,
                              int32_t pw, int32_t dh, int32_t dw) {
    for (int64_t i = global_index(); i < total; i += global_stride()) {
        int64_t t = i;
        const int64_t ow = t % OW;
        t /= OW;
        const int64_t oh = t % OH;
        t /= OH;
        const int64_t kw = t % KW;
        t /= KW;
        const int64_t kh = t % KH;
        t /= KH;
        const int64_t c = t % C;
        const int64_t img = t / C;
        const int64_t ih = oh * sh - ph + kh * dh;
        const int64_t iw = ow * sw - pw + kw * dw;
        col[i] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[((img * C + c) * H + ih) * W + iw] : 0.0f;
    }
}

} // namespace

extern "C" {

cudaError_t cuda_launch_add_bias(cudaStream_t s, float *y, const float *bias, int64_t n, int64_t inner,
                                 int64_t nbias) {
    if (n <= 0) return cudaSuccess;
    const unsigned grid = bpcuda::grid_for(n, bpcuda::kThreads);
    BP_CUDA_LAUNCH(grid, bpcuda::kThreads, s, add_bias_kernel)(y, bias, n, inner, nbias);
    return cudaGetLastError();
}

cudaError_t cuda_launch_scale(cudaStream_t s, float *y, int64_t n, float beta) {
    if (n <= 0) return cudaSuccess;
    BP_CUDA_LAUNCH(bpcuda::grid_for(n, bpcuda::kThreads), bpcuda::kThreads, s, scale_kernel)(y, n, beta);
    return cudaGetLastError();
}

cudaError_t cuda_launch_im2col(cudaStream_t s, const float *x, float *col, int64_t images, int64_t C, int64_t H,
                               int64_t W, int64_t KH, int64_t KW, int64_t OH, int64_t OW, int32_t sh, int32_t sw,
                               int32_t ph, int32_t pw, int32_t dh, int32_t dw) {
    const int64_t total = images * C * KH * KW * OH * OW;
    if (total <= 0) return cudaSuccess;
    BP_CUDA_LAUNCH(bpcuda::grid_for(total, bpcuda::kThreads), bpcuda::kThreads, s, im2col_kernel)(
        x, col, total, C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw);
    return cudaGetLastError();
}

cudaError_t cuda_kernels_probe(void) {
    cudaFuncAttributes attr;
    return cudaFuncGetAttributes(&attr, (const void *)scale_kernel);
}

} // extern "C"
