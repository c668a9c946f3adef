/* matmul through cuBLAS: batched, transposes, shared or batched b, F32 or BF16
 * inputs with F32 output and F32 accumulation, alpha/beta, bias.
 *
 * cuBLAS is column-major; a row-major matrix X[R, C] with row stride ld is the
 * column-major matrix Xᵀ[C, R] with leading dimension ld. So the row-major
 * product C = op(A)·op(B) is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ:
 * cuBLAS gets B first and A second, m = N, n = M, and each operand keeps its
 * own transpose flag. */
#include <limits.h>

#include "cuda_internal.h"

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

bp_status cuda_gemm_rm(cuda_backend *cb, const char *op, cudaDataType_t in_type, int trans_a, int trans_b,
                       int64_t M, int64_t N, int64_t K, float alpha, const void *A, int64_t lda, int64_t stride_a,
                       const void *B, int64_t ldb, int64_t stride_b, float beta, float *C, int64_t ldc,
                       int64_t stride_c, int64_t batch, bp_error *err) {
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc) ||
        !fits_int(batch))
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "cuda: %s: M=%lld N=%lld K=%lld batch=%lld exceed cuBLAS's 32-bit sizes", op,
                            (long long)M, (long long)N, (long long)K, (long long)batch);
    cublasComputeType_t compute =
        (in_type == CUDA_R_32F && cb->tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasStatus_t s = cublasGemmStridedBatchedEx(
        cb->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K,
        &alpha, B, in_type, (int)(ldb > 0 ? ldb : 1), (long long)stride_b, A, in_type, (int)(lda > 0 ? lda : 1),
        (long long)stride_a, &beta, C, CUDA_R_32F, (int)(ldc > 0 ? ldc : 1), (long long)stride_c, (int)batch,
        compute, CUBLAS_GEMM_DEFAULT);
    return cublas_check(s, op, err);
}

bp_status cuda_op_matmul(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "matmul", err);
    if (st != BP_OK) return st;
    const bp_tensor *a = d->a, *b = d->b;
    bp_tensor *c = d->c;
    cudaDataType_t in_type;
    if (a->dtype == BP_DTYPE_F32 && b->dtype == BP_DTYPE_F32)
        in_type = CUDA_R_32F;
    else if (a->dtype == BP_DTYPE_BF16 && b->dtype == BP_DTYPE_BF16)
        in_type = CUDA_R_16BF;
    else
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: matmul of %s × %s is not implemented",
                            bp_dtype_name(a->dtype), bp_dtype_name(b->dtype));

    const int32_t r = a->ndim;
    const int64_t M = d->trans_a ? a->shape[r - 1] : a->shape[r - 2];
    const int64_t K = d->trans_a ? a->shape[r - 2] : a->shape[r - 1];
    const int64_t N = d->trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    int64_t batch = 1;
    for (int32_t i = 0; i < r - 2; i++) batch *= a->shape[i];
    const int b_batched = b->ndim == r && r > 2;
    const int64_t total = batch * M * N;
    if (total == 0) return BP_OK;

    if (K == 0) { /* empty sum: c = beta·c */
        st = cuda_check(cuda_launch_scale(cb->stream, (float *)c->data, total, d->beta), "matmul", err);
    } else {
        st = cuda_gemm_rm(cb, "matmul", in_type, d->trans_a, d->trans_b, M, N, K, d->alpha, a->data,
                          d->trans_a ? M : K, M * K, b->data, d->trans_b ? K : N, b_batched ? K * N : 0, d->beta,
                          (float *)c->data, N, M * N, batch, err);
    }
    if (st != BP_OK || !d->bias) return st;
    return cuda_check(cuda_launch_add_bias(cb->stream, (float *)c->data, (const float *)d->bias->data, total, 1, N),
                      "matmul bias", err);
}
