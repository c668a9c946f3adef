/* Layout and type ops: convert (F32/F16/BF16, round to nearest even),
 * permute (rank ≤ 4, any non-quantized dtype), get_rows (F32, F16, BF16,
 * Q8_0, Q4_0, Q4_1 tables → F32 rows; ids checked on the device). */
#include <stdint.h>

#include "batpipe/ops.h"
#include "cuda_device.cuh"
#include "cuda_internal.h"

namespace {

using bpcuda::global_index;
using bpcuda::global_stride;

/* --- convert --------------------------------------------------------------- */

template <int T> __device__ __forceinline__ float load_as_f32(const void *p, int64_t i) {
    if (T == BP_DTYPE_F32) return ((const float *)p)[i];
    if (T == BP_DTYPE_F16) return bpcuda::f16_to_f32(((const uint16_t *)p)[i]);
    return bpcuda::bf16_to_f32(((const uint16_t *)p)[i]);
}

template <int T> __device__ __forceinline__ void store_from_f32(void *p, int64_t i, float v) {
    if (T == BP_DTYPE_F32)
        ((float *)p)[i] = v;
    else if (T == BP_DTYPE_F16)
        ((uint16_t *)p)[i] = bpcuda::f32_to_f16(v);
    else
        ((uint16_t *)p)[i] = bpcuda::f32_to_bf16(v);
}

template <int TI, int TO> __global__ void convert_kernel(const void *x, void *y, int64_t n) {
    for (int64_t i = global_index(); i < n; i += global_stride()) store_from_f32<TO>(y, i, load_as_f32<TI>(x, i));
}

template <int TI> void convert_launch_to(cudaStream_t s, int32_t to, const void *x, void *y, int64_t n) {
    unsigned g = bpcuda::grid_for(n, bpcuda::kThreads);
    if (to == BP_DTYPE_F32)
        BP_CUDA_LAUNCH(g, bpcuda::kThreads, s, convert_kernel<TI, BP_DTYPE_F32>)(x, y, n);
    else if (to == BP_DTYPE_F16)
        BP_CUDA_LAUNCH(g, bpcuda::kThreads, s, convert_kernel<TI, BP_DTYPE_F16>)(x, y, n);
    else
        BP_CUDA_LAUNCH(g, bpcuda::kThreads, s, convert_kernel<TI, BP_DTYPE_BF16>)(x, y, n);
}

bool is_float_type(int32_t t) { return t == BP_DTYPE_F32 || t == BP_DTYPE_F16 || t == BP_DTYPE_BF16; }

/* --- permute --------------------------------------------------------------- */

/* Output dims d0..d3 (rank padded to 4 with leading 1s) and, for each output
 * dim, the stride (in elements) of the input dim it comes from. */
struct permute_geom {
    int64_t d1, d2, d3;
    int64_t s0, s1, s2, s3;
};

template <typename E> __global__ void permute_kernel(const E *x, E *y, int64_t n, permute_geom g) {
    for (int64_t i = global_index(); i < n; i += global_stride()) {
        int64_t t = i;
        int64_t i3 = t % g.d3;
        t /= g.d3;
        int64_t i2 = t % g.d2;
        t /= g.d2;
        int64_t i1 = t % g.d1;
        int64_t i0 = t / g.d1;
        y[i] = x[i0 * g.s0 + i1 * g.s1 + i2 * g.s2 + i3 * g.s3];
    }
}

template <typename E> void permute_launch(cudaStream_t s, const void *x, void *y, int64_t n, permute_geom g) {
    BP_CUDA_LAUNCH(bpcuda::grid_for(n, bpcuda::kThreads), bpcuda::kThreads, s, permute_kernel<E>)(
        (const E *)x, (E *)y, n, g);
}

/* --- get_rows -------------------------------------------------------------- */

/* y[r, j] = table[ids[r], j] dequantized. An id outside [0, V) leaves its row
 * as zeros and records min(r) in *bad (initialised to ~0 by the caller). */
__global__ void get_rows_kernel(const uint8_t *table, int32_t dtype, int64_t V, int64_t D, int64_t row_bytes,
                                const int32_t *ids, float *y, int64_t n, unsigned long long *bad) {
    const int64_t total = n * D;
    for (int64_t i = global_index(); i < total; i += global_stride()) {
        const int64_t r = i / D, j = i % D;
        const int32_t id = ids[r];
        if (id < 0 || (int64_t)id >= V) {
            y[i] = 0.0f;
            if (j == 0) atomicMin(bad, (unsigned long long)r);
            continue;
        }
        const uint8_t *row = table + (int64_t)id * row_bytes;
        float v;
        switch (dtype) {
        case BP_DTYPE_F32: v = ((const float *)row)[j]; break;
        case BP_DTYPE_F16: v = bpcuda::f16_to_f32(((const uint16_t *)row)[j]); break;
        case BP_DTYPE_BF16: v = bpcuda::bf16_to_f32(((const uint16_t *)row)[j]); break;
        case BP_DTYPE_Q8_0: { /* f16 d, 32 × int8 */
            const uint8_t *blk = row + (j / BP_QK) * 34;
            const float d = bpcuda::f16_to_f32(bpcuda::load_u16le(blk));
            v = d * (float)(int8_t)blk[2 + j % BP_QK];
            break;
        }
        case BP_DTYPE_Q4_0: { /* f16 d, 16 bytes: low nibbles elements 0..15, high nibbles 16..31 */
            const uint8_t *blk = row + (j / BP_QK) * 18;
            const float d = bpcuda::f16_to_f32(bpcuda::load_u16le(blk));
            const int q = j % BP_QK;
            const int nib = q < 16 ? (blk[2 + q] & 0x0f) : (blk[2 + q - 16] >> 4);
            v = d * (float)(nib - 8);
            break;
        }
        case BP_DTYPE_Q4_1: { /* f16 d, f16 m, 16 bytes of nibbles */
            const uint8_t *blk = row + (j / BP_QK) * 20;
            const float d = bpcuda::f16_to_f32(bpcuda::load_u16le(blk));
            const float m = bpcuda::f16_to_f32(bpcuda::load_u16le(blk + 2));
            const int q = j % BP_QK;
            const int nib = q < 16 ? (blk[4 + q] & 0x0f) : (blk[4 + q - 16] >> 4);
            v = d * (float)nib + m;
            break;
        }
        default: v = 0.0f; break;
        }
        y[i] = v;
    }
}

} // namespace

extern "C" {

bp_status cuda_op_convert(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "convert", err);
    if (st != BP_OK) return st;
    if (!is_float_type(x->dtype) || !is_float_type(y->dtype))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: convert %s → %s is not implemented",
                            bp_dtype_name(x->dtype), bp_dtype_name(y->dtype));
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    if (x->dtype == y->dtype) {
        if (x->data == y->data) return BP_OK;
        return cuda_check(cudaMemcpyAsync(y->data, x->data, bp_tensor_nbytes(x), cudaMemcpyDeviceToDevice, cb->stream),
                          "convert", err);
    }
    if (x->dtype == BP_DTYPE_F32)
        convert_launch_to<BP_DTYPE_F32>(cb->stream, y->dtype, x->data, y->data, n);
    else if (x->dtype == BP_DTYPE_F16)
        convert_launch_to<BP_DTYPE_F16>(cb->stream, y->dtype, x->data, y->data, n);
    else
        convert_launch_to<BP_DTYPE_BF16>(cb->stream, y->dtype, x->data, y->data, n);
    return cuda_check(cudaGetLastError(), "convert", err);
}

bp_status cuda_op_permute(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                          bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "permute", err);
    if (st != BP_OK) return st;
    const int32_t r = x->ndim;
    if (r < 1 || r > 4)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: permute of rank %d is not implemented (1..4)", (int)r);
    int64_t n = bp_tensor_numel(x);
    if (n == 0) return BP_OK;
    int64_t xstride[4];
    xstride[r - 1] = 1;
    for (int32_t i = r - 2; i >= 0; i--) xstride[i] = xstride[i + 1] * x->shape[i + 1];
    int64_t dims[4] = {1, 1, 1, 1}, strides[4] = {0, 0, 0, 0};
    for (int32_t i = 0; i < r; i++) {
        dims[4 - r + i] = y->shape[i];
        strides[4 - r + i] = xstride[perm[i]];
    }
    permute_geom g = {dims[1], dims[2], dims[3], strides[0], strides[1], strides[2], strides[3]};
    switch (bp_dtype_block_bytes(x->dtype)) {
    case 1: permute_launch<uint8_t>(cb->stream, x->data, y->data, n, g); break;
    case 2: permute_launch<uint16_t>(cb->stream, x->data, y->data, n, g); break;
    case 4: permute_launch<uint32_t>(cb->stream, x->data, y->data, n, g); break;
    case 8: permute_launch<uint64_t>(cb->stream, x->data, y->data, n, g); break;
    default:
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: permute of %s is not implemented",
                            bp_dtype_name(x->dtype));
    }
    return cuda_check(cudaGetLastError(), "permute", err);
}

bp_status cuda_op_get_rows(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                           bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "get_rows", err);
    if (st != BP_OK) return st;
    const int32_t t = table->dtype;
    if (!(is_float_type(t) || t == BP_DTYPE_Q8_0 || t == BP_DTYPE_Q4_0 || t == BP_DTYPE_Q4_1))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cuda: get_rows from a %s table is not implemented",
                            bp_dtype_name(t));
    const int64_t V = table->shape[0], D = table->shape[1], n = ids->shape[0];
    const int64_t be_elems = bp_dtype_block_elems(t);
    if (D % be_elems != 0)
        return bp_error_set(err, BP_ERR_INVALID, "cuda: get_rows: %s table rows of %lld elements are not whole "
                            "blocks of %lld", bp_dtype_name(t), (long long)D, (long long)be_elems);
    if (n == 0 || D == 0) return BP_OK;
    const int64_t row_bytes = D / be_elems * (int64_t)bp_dtype_block_bytes(t);
    const unsigned long long none = ~0ull; /* the status word after a memset to 0xff */
    st = cuda_check(cudaMemsetAsync(cb->status, 0xff, sizeof *cb->status, cb->stream), "get_rows", err);
    if (st != BP_OK) return st;
    BP_CUDA_LAUNCH(bpcuda::grid_for(n * D, bpcuda::kThreads), bpcuda::kThreads, cb->stream, get_rows_kernel)(
        (const uint8_t *)table->data, t, V, D, row_bytes, (const int32_t *)ids->data, (float *)y->data, n,
        cb->status);
    st = cuda_check(cudaGetLastError(), "get_rows", err);
    if (st != BP_OK) return st;
    /* The id check needs the result now: read the status word back. */
    unsigned long long bad = none;
    st = cuda_check(cudaMemcpyAsync(&bad, cb->status, sizeof bad, cudaMemcpyDeviceToHost, cb->stream), "get_rows",
                    err);
    if (st == BP_OK) st = cuda_check(cudaStreamSynchronize(cb->stream), "get_rows", err);
    if (st != BP_OK) return st;
    if (bad == none) return BP_OK;
    int32_t id = 0;
    st = cuda_check(cudaMemcpyAsync(&id, (const int32_t *)ids->data + bad, sizeof id, cudaMemcpyDeviceToHost,
                                    cb->stream),
                    "get_rows", err);
    if (st == BP_OK) st = cuda_check(cudaStreamSynchronize(cb->stream), "get_rows", err);
    if (st != BP_OK) return st;
    return bp_error_set(err, BP_ERR_INVALID, "cuda: get_rows: id %d at position %llu is outside [0, %lld)", (int)id,
                        bad, (long long)V);
}

} // extern "C"
