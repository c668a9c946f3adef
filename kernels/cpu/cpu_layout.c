/* cpu backend — data movement: convert (F32/F16/BF16, round to nearest
 * even), permute (rank ≤ 4, any non-quantized dtype), fill. */
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_math.h"

/* ------------------------------------------------------- row conversions -- */

BP_CPU_CLONES void bp_cpu_f16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_f16_to_f32(x[i]);
}

BP_CPU_CLONES void bp_cpu_bf16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_bf16_to_f32(x[i]);
}

BP_CPU_CLONES static void f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_f32_to_f16(x[i]);
}

BP_CPU_CLONES static void f32_to_bf16_row(const float *x, uint16_t *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_f32_to_bf16(x[i]);
}

BP_CPU_CLONES static void f16_to_bf16_row(const uint16_t *x, uint16_t *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_f32_to_bf16(cm_f16_to_f32(x[i]));
}

BP_CPU_CLONES static void bf16_to_f16_row(const uint16_t *x, uint16_t *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = cm_f32_to_f16(cm_bf16_to_f32(x[i]));
}

/* --------------------------------------------------------------- convert -- */

static void convert_range(int32_t from, int32_t to, const void *x, void *y, int64_t lo, int64_t n) {
    const float *xf = (const float *)x + lo;
    const uint16_t *xh = (const uint16_t *)x + lo;
    float *yf = (float *)y + lo;
    uint16_t *yh = (uint16_t *)y + lo;
    if (from == to) {
        size_t es = bp_dtype_block_bytes(from);
        memmove((char *)y + (size_t)lo * es, (const char *)x + (size_t)lo * es, (size_t)n * es);
    } else if (from == BP_DTYPE_F32 && to == BP_DTYPE_F16) {
        f32_to_f16_row(xf, yh, n);
    } else if (from == BP_DTYPE_F32 && to == BP_DTYPE_BF16) {
        f32_to_bf16_row(xf, yh, n);
    } else if (from == BP_DTYPE_F16 && to == BP_DTYPE_F32) {
        bp_cpu_f16_to_f32_row(xh, yf, n);
    } else if (from == BP_DTYPE_BF16 && to == BP_DTYPE_F32) {
        bp_cpu_bf16_to_f32_row(xh, yf, n);
    } else if (from == BP_DTYPE_F16 && to == BP_DTYPE_BF16) {
        f16_to_bf16_row(xh, yh, n);
    } else {
        bf16_to_f16_row(xh, yh, n);
    }
}

static int float_dtype(int32_t t) { return t == BP_DTYPE_F32 || t == BP_DTYPE_F16 || t == BP_DTYPE_BF16; }

bp_status bp_cpu_convert(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    int32_t from = x->dtype, to = y->dtype;
    if (!float_dtype(from) || !float_dtype(to))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu convert: %s → %s is not supported", bp_dtype_name(from),
                            bp_dtype_name(to));
    int64_t n = bp_tensor_numel(x);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
    const void *xs = x->data;
    void *ys = y->data;
    if (xs == ys && from == to) return BP_OK;
    if (xs == ys && bp_tensor_numel(x) > 0)
        return bp_error_set(err, BP_ERR_INVALID, "cpu convert: %s → %s cannot be done in place", bp_dtype_name(from),
                            bp_dtype_name(to));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        convert_range(from, to, xs, ys, lo, hi - lo);
    }
    return BP_OK;
}

/* --------------------------------------------------------------- permute -- */

#define TILE 32

/* One [d2, d3] plane of the output: y[i][j] = x[i·s2 + j·s3] (element
 * strides), in TILE×TILE blocks so that a transposing read stays in cache. */
#define PERMUTE_PLANE(T)                                                                            \
    static void permute_plane_##T(const T *x, T *y, int64_t d2, int64_t d3, int64_t s2, int64_t s3) { \
        if (s3 == 1) {                                                                              \
            for (int64_t i = 0; i < d2; i++) memcpy(y + i * d3, x + i * s2, (size_t)d3 * sizeof(T));  \
            return;                                                                                 \
        }                                                                                           \
        for (int64_t ib = 0; ib < d2; ib += TILE)                                                   \
            for (int64_t jb = 0; jb < d3; jb += TILE) {                                             \
                int64_t ie = ib + TILE < d2 ? ib + TILE : d2, je = jb + TILE < d3 ? jb + TILE : d3;  \
                for (int64_t i = ib; i < ie; i++)                                                   \
                    for (int64_t j = jb; j < je; j++) y[i * d3 + j] = x[i * s2 + j * s3];           \
            }                                                                                       \
    }

PERMUTE_PLANE(uint8_t)
PERMUTE_PLANE(uint16_t)
PERMUTE_PLANE(uint32_t)
PERMUTE_PLANE(uint64_t)

static void permute_plane(size_t es, const void *x, void *y, int64_t d2, int64_t d3, int64_t s2, int64_t s3) {
    switch (es) {
    case 1: permute_plane_uint8_t(x, y, d2, d3, s2, s3); break;
    case 2: permute_plane_uint16_t(x, y, d2, d3, s2, s3); break;
    case 4: permute_plane_uint32_t(x, y, d2, d3, s2, s3); break;
    default: permute_plane_uint64_t(x, y, d2, d3, s2, s3); break;
    }
}

bp_status bp_cpu_permute(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                         bp_error *err) {
    size_t es = bp_dtype_block_bytes(x->dtype);
    if (bp_dtype_block_elems(x->dtype) != 1 || (es != 1 && es != 2 && es != 4 && es != 8))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu permute: dtype %s is not supported",
                            bp_dtype_name(x->dtype));
    int32_t nd = x->ndim;
    if (x->data == y->data && bp_tensor_numel(x) > 1)
        return bp_error_set(err, BP_ERR_INVALID, "cpu permute: x and y must not share memory");
    /* pad to rank 4 with leading 1s; strides of x in elements */
    int64_t xs[4] = {1, 1, 1, 1}, xst[4], ys[4], sst[4];
    for (int32_t i = 0; i < nd; i++) xs[4 - nd + i] = x->shape[i];
    xst[3] = 1;
    for (int i = 2; i >= 0; i--) xst[i] = xst[i + 1] * xs[i + 1];
    for (int i = 0; i < 4; i++) {
        int src = i < 4 - nd ? i : 4 - nd + perm[i - (4 - nd)];
        ys[i] = xs[src];
        sst[i] = xst[src];
    }
    int64_t planes = ys[0] * ys[1], plane = ys[2] * ys[3];
    if (planes * plane == 0) return BP_OK;
    int nt = bp_cpu_threads_for(bp_cpu_of(be), planes * plane);
    const char *xb = x->data;
    char *yb = y->data;
    if (planes >= nt) {
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t p = 0; p < planes; p++) {
            int64_t i0 = p / ys[1], i1 = p % ys[1];
            const char *src = xb + (size_t)(i0 * sst[0] + i1 * sst[1]) * es;
            permute_plane(es, src, yb + (size_t)(p * plane) * es, ys[2], ys[3], sst[2], sst[3]);
        }
    } else {
        /* few planes: split each plane's rows across threads */
        for (int64_t p = 0; p < planes; p++) {
            int64_t i0 = p / ys[1], i1 = p % ys[1];
            const char *src = xb + (size_t)(i0 * sst[0] + i1 * sst[1]) * es;
            char *dst = yb + (size_t)(p * plane) * es;
#pragma omp parallel num_threads(nt) if (nt > 1)
            {
                int64_t lo, hi;
                bp_cpu_split(ys[2], omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
                permute_plane(es, src + (size_t)(lo * sst[2]) * es, dst + (size_t)(lo * ys[3]) * es, hi - lo, ys[3],
                              sst[2], sst[3]);
            }
        }
    }
    return BP_OK;
}

/* ------------------------------------------------------------------ fill -- */

BP_CPU_CLONES static void fill_kernel(float *y, float v, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = v;
}

bp_status bp_cpu_fill(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err) {
    (void)err;
    float *ys = y->data;
    int64_t n = bp_tensor_numel(y);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        fill_kernel(ys + lo, value, hi - lo);
    }
    return BP_OK;
}
