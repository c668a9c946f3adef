/* Device-side helpers shared by the .cu files: launch geometry, grid-stride
 * loops, block reductions and bit-exact F16/BF16 conversions (the same
 * rounding as bp_f32_to_f16 / bp_f32_to_bf16 in core/src/tensor.c, so GPU and
 * host conversions agree bit for bit, NaN payloads included). */
#ifndef BP_CUDA_DEVICE_CUH
#define BP_CUDA_DEVICE_CUH

#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

/* Every kernel launch is written BP_CUDA_LAUNCH(grid, block, stream, kernel)(args...),
 * which is kernel<<<grid, block, 0, stream>>>(args...). The indirection lets
 * tests/emu build the same kernels as plain C++ and run them on the CPU (it
 * defines its own BP_CUDA_LAUNCH in its stand-in cuda_runtime.h). */
#ifndef BP_CUDA_LAUNCH
#define BP_CUDA_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<(grid), (block), 0, (stream)>>>
#endif

namespace bpcuda {

constexpr int kThreads = 256;              /* elementwise block size */
constexpr int64_t kMaxBlocks = 65535 * 16; /* grid-stride loops cover the rest */

/* Blocks for n elements at `threads` per block (n > 0). */
static inline unsigned grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

/* Blocks for a one-block-per-row kernel (rows > 0). */
static inline unsigned grid_rows(int64_t rows) { return (unsigned)(rows < kMaxBlocks ? rows : kMaxBlocks); }

/* Threads for a one-block-per-row kernel over rows of d elements: a multiple
 * of 32 (the block reductions need whole warps), at most 256. */
static inline int threads_for_row(int64_t d) {
    if (d >= 256) return 256;
    int64_t t = (d + 31) / 32 * 32;
    return t < 32 ? 32 : (int)t;
}

__device__ __forceinline__ int64_t global_index() {
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_stride() { return (int64_t)gridDim.x * blockDim.x; }

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (float or double) / max of v over the block; every thread gets the
 * result. Every thread of the block must call it; blockDim.x is a multiple
 * of 32 (≤ 1024); `red` is __shared__ T[32]. The leading barrier lets calls
 * follow each other. */
template <typename T> __device__ __forceinline__ T block_sum(T v, T *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    return warp_sum(lane < nwarps ? red[lane] : T(0));
}

__device__ __forceinline__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    return warp_max(lane < nwarps ? red[lane] : -INFINITY);
}

/* --- F16 / BF16 <-> F32, bit-exact with core/src/tensor.c ---------------- */

__device__ __forceinline__ float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return __uint_as_float(bits);
}

__device__ __forceinline__ uint16_t f32_to_f16(float f) {
    uint32_t x = __float_as_uint(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0u));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                   /* subnormal half or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;          /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = (absx - 0x38000000u) >> 13;
    uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
    uint32_t x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Little-endian 16-bit load from a byte pointer (quantized blocks). */
__device__ __forceinline__ uint16_t load_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

} // namespace bpcuda

#endif /* BP_CUDA_DEVICE_CUH */
