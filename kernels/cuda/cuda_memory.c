/* Device memory of the cuda backend: allocation (zero-filled, like host
 * tensors), host↔device transfers, device copies, synchronisation, and the
 * instance's growable scratch buffer.
 *
 * Ordering: everything runs on the instance's stream. `write` returns once
 * the host buffer has been consumed (it waits for the copy), `read` waits for
 * every pending op and the copy, `copy` is asynchronous. */
#include "cuda_internal.h"

bp_status cuda_mem_alloc(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    *ptr = NULL;
    bp_status st = cuda_enter(cb, "alloc", err);
    if (st != BP_OK) return st;
    if (bytes == 0) bytes = 1;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* not sticky: clear it */
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        return bp_error_set(err, BP_ERR_NOMEM, "cuda: alloc: cannot allocate %zu bytes on %s (%zu of %zu MiB free)",
                            bytes, be->device, free_b >> 20, total_b >> 20);
    }
    if (e != cudaSuccess) return cuda_fail(e, "alloc", err);
    e = cudaMemsetAsync(p, 0, bytes, cb->stream);
    if (e != cudaSuccess) {
        cudaFree(p);
        return cuda_fail(e, "alloc", err);
    }
    *ptr = p;
    return BP_OK;
}

void cuda_mem_free(bp_backend_impl *be, void *ptr) {
    if (!ptr) return;
    cuda_backend *cb = cuda_of(be);
    if (cudaSetDevice(cb->device) != cudaSuccess) return;
    /* cudaFree waits for the device; pending ops on the buffer finish first. */
    (void)cudaStreamSynchronize(cb->stream);
    (void)cudaFree(ptr);
}

bp_status cuda_mem_write(bp_backend_impl *be, void *dst, const void *src_host, size_t bytes, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "write", err);
    if (st != BP_OK || bytes == 0) return st;
    st = cuda_check(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cb->stream), "write", err);
    if (st != BP_OK) return st;
    /* The caller may reuse src_host as soon as we return (also pinned memory). */
    return cuda_check(cudaStreamSynchronize(cb->stream), "write", err);
}

bp_status cuda_mem_read(bp_backend_impl *be, void *dst_host, const void *src, size_t bytes, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "read", err);
    if (st != BP_OK) return st;
    if (bytes > 0) {
        st = cuda_check(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, cb->stream), "read", err);
        if (st != BP_OK) return st;
    }
    return cuda_check(cudaStreamSynchronize(cb->stream), "read (or an earlier op)", err);
}

bp_status cuda_mem_copy(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "copy", err);
    if (st != BP_OK || bytes == 0 || dst == src) return st;
    return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cb->stream), "copy", err);
}

bp_status cuda_mem_synchronize(bp_backend_impl *be, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "synchronize", err);
    if (st != BP_OK) return st;
    return cuda_check(cudaStreamSynchronize(cb->stream), "synchronize (an earlier op failed)", err);
}

bp_status cuda_scratch_reserve(cuda_backend *cb, size_t bytes, const char *op, bp_error *err) {
    if (bytes <= cb->scratch_bytes) return BP_OK;
    if (cb->scratch) {
        /* Ops queued earlier may still read the old buffer. */
        bp_status st = cuda_check(cudaStreamSynchronize(cb->stream), op, err);
        if (st != BP_OK) return st;
        cudaFree(cb->scratch);
        cb->scratch = NULL;
        cb->scratch_bytes = 0;
    }
    cudaError_t e = cudaMalloc(&cb->scratch, bytes);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        cb->scratch = NULL;
        return bp_error_set(err, BP_ERR_NOMEM, "cuda: %s: cannot allocate %zu bytes of scratch memory", op, bytes);
    }
    if (e != cudaSuccess) {
        cb->scratch = NULL;
        return cuda_fail(e, op, err);
    }
    cb->scratch_bytes = bytes;
    return BP_OK;
}
