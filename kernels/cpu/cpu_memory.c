/* cpu backend — memory: host allocations (64-byte aligned, zero-filled so
 * that fresh tensors have defined contents) and plain copies. Ops run
 * synchronously, so synchronize has nothing to wait for. */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

bp_status bp_cpu_alloc(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err) {
    (void)be;
    *ptr = NULL;
    if (bytes > SIZE_MAX - 64) return bp_error_set(err, BP_ERR_NOMEM, "cpu alloc: %zu bytes is too large", bytes);
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "cpu alloc: cannot allocate %zu bytes", rounded);
    memset(p, 0, rounded);
    *ptr = p;
    return BP_OK;
}

void bp_cpu_free(bp_backend_impl *be, void *ptr) {
    (void)be;
    free(ptr);
}

bp_status bp_cpu_write(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    (void)be;
    (void)err;
    if (bytes) memmove(dst, src, bytes);
    return BP_OK;
}

bp_status bp_cpu_read(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    (void)be;
    (void)err;
    if (bytes) memmove(dst, src, bytes);
    return BP_OK;
}

bp_status bp_cpu_copy(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    (void)be;
    (void)err;
    if (bytes) memmove(dst, src, bytes);
    return BP_OK;
}

bp_status bp_cpu_synchronize(bp_backend_impl *be, bp_error *err) {
    (void)be;
    (void)err;
    return BP_OK;
}
