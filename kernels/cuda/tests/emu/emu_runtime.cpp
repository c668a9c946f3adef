/* CPU emulation of the CUDA runtime and cuBLAS subset used by the cuda
 * backend (see README.md here).
 *
 *  - "Device memory" is host memory from malloc, registered in a table so
 *    that copies, memsets and GEMM operands are checked to lie inside one
 *    live device allocation (host/device pointer mix-ups fail as on a GPU);
 *    kernels' out-of-bounds accesses are left to AddressSanitizer/valgrind.
 *  - A kernel launch checks its configuration like the driver (grid ≥ 1,
 *    1 ≤ block ≤ 1024, 1-D), then runs the blocks one after the other; the
 *    threads of a block are ucontext coroutines, so __syncthreads is a real
 *    barrier. A warp shuffle is emulated with two block-wide barriers, which
 *    is only valid when every thread of the block reaches it (true for the
 *    backend's block reductions); a barrier reached by some threads after
 *    others exited is reported as a launch failure.
 *  - The GEMM is a column-major loop with F32 accumulation that validates its
 *    arguments as the cuBLAS documentation states.
 * Single-threaded, like the test that drives it. State is file-local: this
 * file exists only for the emulation test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <map>
#include <memory>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace emu {
uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;
} // namespace emu

namespace {

/* ------------------------------------------------------------ memory -- */

std::map<uintptr_t, size_t> allocations; /* start → size */
cudaError_t last_error = cudaSuccess;

cudaError_t record(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

/* Does [p, p + n) lie inside one live allocation? */
bool is_device(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second;
}

/* ---------------------------------------------------------- launches -- */

enum { FIBER_READY, FIBER_BARRIER, FIBER_DONE };

struct fiber {
    ucontext_t ctx;
    int state;
};

constexpr size_t kStackBytes = 256 * 1024;
ucontext_t scheduler;
std::vector<fiber> fibers;
std::vector<std::unique_ptr<char[]>> stacks; /* freed when the plugin is unloaded */
unsigned current = 0;
void (*body_fn)(void *) = nullptr;
void *body_arg = nullptr;
double shuffle_slots[1024];

void fiber_main() {
    body_fn(body_arg);
    fibers[current].state = FIBER_DONE;
    /* returning resumes uc_link: the scheduler */
}

void set_thread(unsigned t) {
    current = t;
    emu::thread_idx.x = t;
    emu::thread_idx.y = 0;
    emu::thread_idx.z = 0;
}

/* getcontext/swapcontext return twice: kept in functions of their own, so
 * that the scheduler's locals are not live across them. */
__attribute__((noinline)) void fiber_init(unsigned t) {
    fiber &f = fibers[t];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stacks[t].get();
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &scheduler;
    makecontext(&f.ctx, fiber_main, 0);
    f.state = FIBER_READY;
}

__attribute__((noinline)) void fiber_resume(unsigned t) {
    set_thread(t);
    swapcontext(&scheduler, &fibers[t].ctx);
}

/* Run one block of `threads` coroutines to completion; false on a divergent barrier. */
bool run_block(unsigned threads) {
    for (unsigned t = 0; t < threads; t++) fiber_init(t);
    for (;;) {
        for (unsigned t = 0; t < threads; t++)
            if (fibers[t].state == FIBER_READY) fiber_resume(t);
        unsigned at_barrier = 0, done = 0;
        for (unsigned t = 0; t < threads; t++) {
            at_barrier += fibers[t].state == FIBER_BARRIER;
            done += fibers[t].state == FIBER_DONE;
        }
        if (at_barrier == 0) return true;
        if (done > 0) return false; /* some threads wait at a barrier others never reach */
        for (unsigned t = 0; t < threads; t++) fibers[t].state = FIBER_READY;
    }
}

} // namespace

namespace emu {

void syncthreads() {
    fibers[current].state = FIBER_BARRIER;
    swapcontext(&fibers[current].ctx, &scheduler);
}

double shfl_xor(double v, int lane_mask) {
    const unsigned t = thread_idx.x, partner = t ^ (unsigned)lane_mask;
    if (block_dim.x % 32 != 0 || partner >= block_dim.x || (t >> 5) != (partner >> 5)) {
        record(cudaErrorLaunchFailure); /* a shuffle outside a whole warp */
        return v;
    }
    shuffle_slots[t] = v;
    syncthreads();
    double r = shuffle_slots[partner];
    syncthreads();
    return r;
}

void run_launch(dim3 grid, dim3 block, void (*body)(void *), void *arg) {
    if (grid.x < 1 || grid.x > 0x7fffffffu || grid.y != 1 || grid.z != 1 || block.x < 1 || block.x > 1024 ||
        block.y != 1 || block.z != 1) {
        record(cudaErrorInvalidConfiguration);
        return;
    }
    while (stacks.size() < block.x) stacks.emplace_back(new char[kStackBytes]);
    fibers.resize(block.x);
    body_fn = body;
    body_arg = arg;
    block_dim = block;
    grid_dim = grid;
    for (unsigned b = 0; b < grid.x; b++) {
        block_idx.x = b;
        block_idx.y = 0;
        block_idx.z = 0;
        if (!run_block(block.x)) {
            record(cudaErrorLaunchFailure);
            return;
        }
    }
}

} // namespace emu

/* ------------------------------------------------------- runtime API -- */

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return record(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (device != 0) return record(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    strcpy(prop->name, "CPU emulation of a CUDA device");
    prop->totalGlobalMem = (size_t)8 << 30;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    if (!func) return record(cudaErrorInvalidValue);
    attr->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    (void)flags;
    *stream = static_cast<cudaStream_t>(malloc(1));
    return *stream ? cudaSuccess : record(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    free(stream);
    return cudaSuccess;
}

/* Work runs at launch time, so a sync only reports a pending launch failure. */
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    (void)stream;
    return last_error == cudaErrorLaunchFailure ? cudaErrorLaunchFailure : cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t size) {
    *ptr = nullptr;
    if (size == 0) return cudaSuccess;
    void *p = malloc(size);
    if (!p) return record(cudaErrorMemoryAllocation);
    memset(p, 0xa5, size); /* like a GPU, memory is not zeroed */
    allocations[(uintptr_t)p] = size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end()) return record(cudaErrorInvalidValue);
    allocations.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = (size_t)4 << 30;
    *total_bytes = (size_t)8 << 30;
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream) {
    if (!stream || !is_device(ptr, count)) return record(cudaErrorInvalidValue);
    memset(ptr, value, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream) {
    if (!stream) return record(cudaErrorInvalidValue);
    bool ok = false;
    switch (kind) {
    case cudaMemcpyHostToDevice: ok = is_device(dst, count) && !is_device(src, 1); break;
    case cudaMemcpyDeviceToHost: ok = is_device(src, count) && !is_device(dst, 1); break;
    case cudaMemcpyDeviceToDevice: ok = is_device(src, count) && is_device(dst, count); break;
    default: ok = false;
    }
    if (!ok) return record(cudaErrorInvalidValue);
    memmove(dst, src, count);
    return cudaSuccess;
}

/* ------------------------------------------------------------ cuBLAS -- */

struct bp_emu_blas {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    *handle = static_cast<cublasHandle_t>(calloc(1, sizeof(bp_emu_blas)));
    return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

static float load_elem(const void *p, cudaDataType_t t, long long i) {
    if (t == CUDA_R_32F) return static_cast<const float *>(p)[i];
    uint32_t bits = (uint32_t) static_cast<const uint16_t *>(p)[i] << 16; /* BF16 */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Does an operand of `rows` × `cols` (column-major, leading dim ld) per batch lie in device memory? */
static bool operand_ok(const void *p, size_t elem, long long rows, long long cols, long long ld, long long stride,
                       int batch) {
    if (rows == 0 || cols == 0 || batch == 0) return true;
    long long last = (cols - 1) * ld + (rows - 1) + (long long)(batch - 1) * stride;
    if (stride < 0 || last < 0) return false;
    return is_device(p, (size_t)(last + 1) * elem);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void *alpha, const void *A, cudaDataType_t Atype,
                                          int lda, long long strideA, const void *B, cudaDataType_t Btype, int ldb,
                                          long long strideB, const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
    (void)algo;
    if (!handle || !handle->stream) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool na = transa == CUBLAS_OP_N, nb = transb == CUBLAS_OP_N;
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m < 0 || n < 0 || k < 0 || batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
    /* leading dimensions as documented: A is m×k (op N) or k×m (op T), etc. */
    if (lda < (na ? (m > 1 ? m : 1) : (k > 1 ? k : 1))) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldb < (nb ? (k > 1 ? k : 1) : (n > 1 ? n : 1))) return CUBLAS_STATUS_INVALID_VALUE;
    if (ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    if (Atype != Btype || (Atype != CUDA_R_32F && Atype != CUDA_R_16BF) || Ctype != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (computeType != CUBLAS_COMPUTE_32F && !(computeType == CUBLAS_COMPUTE_32F_FAST_TF32 && Atype == CUDA_R_32F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
    const size_t es = Atype == CUDA_R_32F ? 4 : 2;
    if (!operand_ok(A, es, na ? m : k, na ? k : m, lda, strideA, batchCount) ||
        !operand_ok(B, es, nb ? k : n, nb ? n : k, ldb, strideB, batchCount) ||
        !operand_ok(C, 4, m, n, ldc, strideC, batchCount))
        return CUBLAS_STATUS_INVALID_VALUE; /* a real GPU would fault */
    const float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    float *c = static_cast<float *>(C);
    for (int p = 0; p < batchCount; p++) {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float s = 0.0f;
                for (int l = 0; l < k; l++) {
                    long long ia = na ? (long long)l * lda + i : (long long)i * lda + l;
                    long long ib = nb ? (long long)j * ldb + l : (long long)l * ldb + j;
                    float av = load_elem(A, Atype, p * strideA + ia), bv = load_elem(B, Btype, p * strideB + ib);
                    s += av * bv;
                }
                float &out = c[p * strideC + (long long)j * ldc + i];
                out = be == 0.0f ? al * s : al * s + be * out; /* beta = 0: C is not read */
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown error";
}

const char *cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

} // extern "C"
