/* CPU emulation of the CUDA C++ language pieces the backend's kernels use:
 * __global__/__device__/__shared__, threadIdx & co, __syncthreads, warp
 * shuffles, bit casts, atomicMin, and BP_CUDA_LAUNCH. A launch runs every
 * block in turn; the threads of a block are coroutines (ucontext) so that
 * __syncthreads and shuffles are real barriers. C++ only. */
#ifndef BP_EMU_CUDA_RUNTIME_H
#define BP_EMU_CUDA_RUNTIME_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static /* blocks run one at a time: a static is per block */

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct uint3 {
    unsigned x, y, z;
};

namespace emu {
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;
void syncthreads();
double shfl_xor(double v, int lane_mask);
void run_launch(dim3 grid, dim3 block, void (*body)(void *), void *arg);

template <typename... P> struct launcher {
    dim3 grid, block;
    void (*kernel)(P...);
    template <typename... A> void operator()(A... args) const {
        auto call = [&]() { kernel(args...); };
        using call_t = decltype(call);
        run_launch(grid, block, [](void *p) { (*static_cast<call_t *>(p))(); }, &call);
    }
};

template <typename... P> launcher<P...> make_launcher(dim3 grid, dim3 block, void (*kernel)(P...)) {
    return launcher<P...>{grid, block, kernel};
}
} // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

#define BP_CUDA_LAUNCH(grid, block, stream, ...) ((void)(stream), ::emu::make_launcher((grid), (block), __VA_ARGS__))

inline void __syncthreads() { ::emu::syncthreads(); }
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    (void)mask;
    return (float)::emu::shfl_xor(v, lane_mask);
}
inline double __shfl_xor_sync(unsigned mask, double v, int lane_mask) {
    (void)mask;
    return ::emu::shfl_xor(v, lane_mask);
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}

#endif
