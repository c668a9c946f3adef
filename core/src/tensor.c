/* Tensors: allocation on the host or a backend, description, finiteness. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"
#include "batpipe/tensor.h"

bp_status bp_tensor_new(struct bp_backend *backend, int32_t dtype, int32_t ndim, const int64_t *shape,
                        bp_tensor **out, bp_error *err) {
    *out = NULL;
    if (dtype < 0 || dtype >= BP_DTYPE_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, "tensor: unknown dtype %d", dtype);
    if (ndim < 0 || ndim > BP_MAX_DIMS)
        return bp_error_set(err, BP_ERR_INVALID, "tensor: rank %d outside 0..%d", ndim, BP_MAX_DIMS);
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0) return bp_error_set(err, BP_ERR_INVALID, "tensor: negative dimension %lld", (long long)shape[i]);
        if (shape[i] > 0 && n > INT64_MAX / shape[i])
            return bp_error_set(err, BP_ERR_INVALID, "tensor: element count overflows");
        n *= shape[i];
    }
    bp_tensor *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "tensor: out of memory");
    t->struct_size = sizeof *t;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int32_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    size_t bytes = bp_tensor_nbytes(t);
    if (bytes == 0 && n > 0) {
        free(t);
        return bp_error_set(err, BP_ERR_INVALID, "tensor: %s needs the last dimension to be a multiple of %lld",
                            bp_dtype_name(dtype), (long long)bp_dtype_block_elems(dtype));
    }
    if ((double)bytes > (double)SIZE_MAX / 2) {
        free(t);
        return bp_error_set(err, BP_ERR_NOMEM, "tensor: %lld elements is too large", (long long)n);
    }
    size_t alloc_bytes = bytes ? bytes : 1;
    if (backend) {
        bp_status st = backend->impl->alloc(backend->impl, alloc_bytes, &t->data, err);
        if (st != BP_OK) {
            free(t);
            return st;
        }
        t->backend = backend;
    } else {
        size_t rounded = (alloc_bytes + 63) & ~(size_t)63;
        t->data = aligned_alloc(64, rounded);
        if (!t->data) {
            free(t);
            return bp_error_set(err, BP_ERR_NOMEM, "tensor: cannot allocate %zu bytes", rounded);
        }
        memset(t->data, 0, rounded);
    }
    t->owns_data = 1;
    *out = t;
    return BP_OK;
}

void bp_tensor_free(bp_tensor *t) {
    if (!t) return;
    if (t->owns_data && t->data) {
        if (t->backend)
            t->backend->impl->free(t->backend->impl, t->data);
        else
            free(t->data);
    }
    free(t);
}

int bp_tensor_same_shape(const bp_tensor *a, const bp_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *bp_tensor_describe(const bp_tensor *t, char *buf, size_t cap) {
    size_t off = 0;
    int w = snprintf(buf, cap, "%s[", bp_dtype_name(t->dtype));
    if (w < 0) return buf;
    off = (size_t)w;
    for (int32_t i = 0; i < t->ndim && off < cap; i++) {
        w = snprintf(buf + off, cap - off, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        if (w < 0) return buf;
        off += (size_t)w;
    }
    if (off < cap) snprintf(buf + off, cap - off, "]");
    return buf;
}

bp_status bp_tensor_check_finite(const bp_tensor *t, const char *what, bp_error *err) {
    if (t->backend && !bp_backend_is_host(t->backend))
        return bp_error_set(err, BP_ERR_INVALID, "%s: finiteness check needs host memory", what);
    int64_t n = bp_tensor_numel(t);
    if (t->dtype == BP_DTYPE_F32) {
        const float *p = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(p[i]))
                return bp_error_set(err, BP_ERR_NUMERIC, "%s: element %lld is %s", what, (long long)i,
                                    isnan(p[i]) ? "NaN" : "infinite");
    } else if (t->dtype == BP_DTYPE_F64) {
        const double *p = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(p[i]))
                return bp_error_set(err, BP_ERR_NUMERIC, "%s: element %lld is %s", what, (long long)i,
                                    isnan(p[i]) ? "NaN" : "infinite");
    }
    return BP_OK;
}

/* IEEE half <-> single, bit-exact (round to nearest even). */
float bp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t bp_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* value = m·2^(e−150) = half·2^−24 */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx - 0x38000000u) >> 13);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float bp_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t bp_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fff + lsb;
    return (uint16_t)(x >> 16);
}
