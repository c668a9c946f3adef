/* The cuda backend's private state, error helpers and the functions that fill
 * its bp_backend_impl table. Included by the C files (host side: memory,
 * cuBLAS) and by the .cu files (kernels and their launchers), so it is valid
 * C11 and C++. Nothing here is exported: the plugin exports only bp_entry. */
#ifndef BP_CUDA_INTERNAL_H
#define BP_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "batpipe/backend.h"
#include "batpipe/host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One backend instance. `impl` comes first; impl.self points back here. */
typedef struct cuda_backend {
    bp_backend_impl impl;
    int32_t device;          /* CUDA device index */
    int32_t tf32;            /* non-zero: F32 GEMMs may use TF32 tensor cores */
    size_t scratch_limit;    /* bytes: upper bound for the conv2d im2col buffer */
    cudaStream_t stream;     /* every op of this instance runs on it, in order */
    cublasHandle_t blas;     /* bound to `stream` */
    void *scratch;           /* device memory owned here (im2col), grown on demand */
    size_t scratch_bytes;
    unsigned long long *status; /* 8 bytes of device memory: kernels report bad input here */
    const bp_host *host;     /* borrowed (outlives the instance) */
} cuda_backend;

static inline cuda_backend *cuda_of(bp_backend_impl *be) { return (cuda_backend *)be->self; }

/* A failed CUDA runtime call as BP_ERR_DEVICE naming the op. */
static inline bp_status cuda_fail(cudaError_t e, const char *op, bp_error *err) {
    return bp_error_set(err, BP_ERR_DEVICE, "cuda: %s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
}

static inline bp_status cuda_check(cudaError_t e, const char *op, bp_error *err) {
    return e == cudaSuccess ? BP_OK : cuda_fail(e, op, err);
}

static inline bp_status cublas_check(cublasStatus_t s, const char *op, bp_error *err) {
    if (s == CUBLAS_STATUS_SUCCESS) return BP_OK;
    return bp_error_set(err, BP_ERR_DEVICE, "cuda: %s: cuBLAS %s (%s)", op, cublasGetStatusString(s),
                        cublasGetStatusName(s));
}

/* Make the instance's device current for this thread (first thing every
 * entry point does: an instance may be used from different threads). */
static inline bp_status cuda_enter(cuda_backend *cb, const char *op, bp_error *err) {
    return cuda_check(cudaSetDevice(cb->device), op, err);
}

/* Ensure `bytes` of scratch device memory (cuda_memory.c). */
bp_status cuda_scratch_reserve(cuda_backend *cb, size_t bytes, const char *op, bp_error *err);

/* Row-major strided-batched GEMM through cuBLAS (cuda_matmul.c): for each i < batch,
 *   C_i[M,N] = alpha · op(A_i) · op(B_i) + beta · C_i,
 * X_i = X + i·stride_x elements; lda/ldb/ldc are the row strides of the
 * stored matrices; A and B have type `in_type` (CUDA_R_32F or CUDA_R_16BF),
 * C is F32. beta = 0 does not read C. M, N, K, batch > 0. */
bp_status cuda_gemm_rm(cuda_backend *cb, const char *op, cudaDataType_t in_type, int trans_a, int trans_b,
                       int64_t M, int64_t N, int64_t K, float alpha, const void *A, int64_t lda, int64_t stride_a,
                       const void *B, int64_t ldb, int64_t stride_b, float beta, float *C, int64_t ldc,
                       int64_t stride_c, int64_t batch, bp_error *err);

/* --- kernel launchers (blas_kernels.cu); return the launch error ---------- */

/* y[i] += bias[(i / inner) % nbias] for i < n. */
cudaError_t cuda_launch_add_bias(cudaStream_t s, float *y, const float *bias, int64_t n, int64_t inner,
                                 int64_t nbias);
/* y[i] = beta · y[i] (beta = 0: y[i] = 0 without reading y). */
cudaError_t cuda_launch_scale(cudaStream_t s, float *y, int64_t n, float beta);
/* col[img][c·KH·KW + kh·KW + kw][oh·OW + ow] = x[img][c][oh·sh − ph + kh·dh][ow·sw − pw + kw·dw]
 * (0 outside the image). */
cudaError_t cuda_launch_im2col(cudaStream_t s, const float *x, float *col, int64_t images, int64_t C, int64_t H,
                               int64_t W, int64_t KH, int64_t KW, int64_t OH, int64_t OW, int32_t sh, int32_t sw,
                               int32_t ph, int32_t pw, int32_t dh, int32_t dw);
/* Probe that this library holds kernels the current device can run. */
cudaError_t cuda_kernels_probe(void);

/* --- the table's functions ------------------------------------------------ */

/* cuda_memory.c */
bp_status cuda_mem_alloc(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err);
void cuda_mem_free(bp_backend_impl *be, void *ptr);
bp_status cuda_mem_write(bp_backend_impl *be, void *dst, const void *src_host, size_t bytes, bp_error *err);
bp_status cuda_mem_read(bp_backend_impl *be, void *dst_host, const void *src, size_t bytes, bp_error *err);
bp_status cuda_mem_copy(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err);
bp_status cuda_mem_synchronize(bp_backend_impl *be, bp_error *err);

/* cuda_matmul.c, cuda_conv2d.c */
bp_status cuda_op_matmul(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err);
bp_status cuda_op_conv2d(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err);

/* elementwise.cu */
bp_status cuda_op_unary(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status cuda_op_binary(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                         bp_error *err);
bp_status cuda_op_affine(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                         bp_error *err);
bp_status cuda_op_fill(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err);

/* rows.cu */
bp_status cuda_op_softmax(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err);
bp_status cuda_op_layernorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                            float eps, bp_tensor *y, bp_error *err);
bp_status cuda_op_rmsnorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                          bp_error *err);
bp_status cuda_op_reduce(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);

/* layout.cu */
bp_status cuda_op_convert(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status cuda_op_permute(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                          bp_error *err);
bp_status cuda_op_get_rows(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                           bp_error *err);

#ifdef __cplusplus
}
#endif

#endif /* BP_CUDA_INTERNAL_H */
