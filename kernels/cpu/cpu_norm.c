/* cpu backend — row-wise ops over the last dimension: softmax (with the
 * causal mask of bp_softmax_desc), layernorm, rmsnorm, reduce.
 * Sums are accumulated in double (vectorised simd reductions), so results
 * are float-rounding accurate regardless of the row length. Rows are split
 * across threads. y may alias x. */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"
#include "cpu_math.h"

/* Run `body(lo, hi)` over rows [0, rows) split across the threads that
 * rows·d elements of work deserve. */
#define FOR_ROW_RANGES(cpu, rows, d, lo, hi, body)                                  \
    do {                                                                            \
        int nt_ = bp_cpu_threads_for((cpu), (rows) * (d));                          \
        if (nt_ > (rows)) nt_ = (int)(rows);                                        \
        if (nt_ < 1) nt_ = 1;                                                       \
        _Pragma("omp parallel num_threads(nt_) if (nt_ > 1)") {                     \
            int64_t lo, hi;                                                         \
            bp_cpu_split((rows), omp_get_num_threads(), omp_get_thread_num(), &lo, &hi); \
            body;                                                                   \
        }                                                                           \
    } while (0)

/* max_j scale·x[j] (NaNs are skipped); -inf for n = 0. gcc vectorises the
 * simd max-reduction of a select; clang 14 refuses it without
 * -ffinite-math-only, so there it keeps 16 running maxima instead. */
static inline __attribute__((always_inline)) float max_scaled(const float *x, int64_t n, float scale) {
#if defined(__clang__)
    float part[16];
    for (int l = 0; l < 16; l++) part[l] = -INFINITY;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) {
            float v = scale * x[j + l];
            part[l] = v > part[l] ? v : part[l];
        }
    for (; j < n; j++) {
        float v = scale * x[j];
        part[0] = v > part[0] ? v : part[0];
    }
    float m = part[0];
    for (int l = 1; l < 16; l++) m = part[l] > m ? part[l] : m;
    return m;
#else
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++) {
        float v = scale * x[j];
        m = v > m ? v : m;
    }
    return m;
#endif
}

/* --------------------------------------------------------------- softmax -- */

/* y[0..limit) = softmax(scale·x[0..limit)), y[limit..n) = 0. limit ≤ 0: all 0. */
BP_CPU_CLONES static void softmax_row(const float *x, float *y, int64_t n, int64_t limit, float scale) {
    if (limit > n) limit = n;
    if (limit <= 0) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = 0.0f;
        return;
    }
    float m = max_scaled(x, limit, scale);
    /* float sums over blocks of 256 (vectorised), added in double */
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < limit; j0 += 256) {
        int64_t j1 = j0 + 256 < limit ? j0 + 256 : limit;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = j0; j < j1; j++) {
            float e = cm_exp(scale * x[j] - m);
            y[j] = e;
            s += e;
        }
        sum += (double)s;
    }
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int64_t j = 0; j < limit; j++) y[j] *= inv;
#pragma omp simd
    for (int64_t j = limit; j < n; j++) y[j] = 0.0f;
}

bp_status bp_cpu_softmax(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err) {
    (void)err;
    const bp_tensor *x = d->x;
    const float *xs = x->data;
    float *ys = d->y->data;
    int64_t n = x->shape[x->ndim - 1];
    if (n == 0) return BP_OK;
    int64_t rows = bp_tensor_numel(x) / n;
    int64_t r_dim = (d->causal && x->ndim >= 2) ? x->shape[x->ndim - 2] : 1;
    int causal = d->causal && r_dim > 0;
    int64_t offset = d->causal_offset;
    float scale = d->scale;
    FOR_ROW_RANGES(bp_cpu_of(be), rows, n, lo, hi, {
        for (int64_t r = lo; r < hi; r++) {
            /* element (…, i, j) is kept when j ≤ i + offset */
            int64_t limit = (!causal || offset >= n) ? n : (r % r_dim) + offset + 1;
            softmax_row(xs + r * n, ys + r * n, n, limit, scale);
        }
    });
    return BP_OK;
}

/* ------------------------------------------------------------- layernorm -- */

BP_CPU_CLONES static void layernorm_row(const float *x, const float *w, const float *b, float eps, float *y,
                                        int64_t n) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) sum += (double)x[j];
    double mean = sum / (double)n;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < n; j++) {
        double c = (double)x[j] - mean;
        ss += c * c;
    }
    float rstd = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    /* x − mean as (x − mf) − dm: mf is the mean rounded to float, dm the
     * rest, so a large mean costs no accuracy */
    float mf = (float)mean, dm = (float)(mean - (double)mf);
    if (w && b) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = ((x[j] - mf) - dm) * rstd * w[j] + b[j];
    } else if (w) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = ((x[j] - mf) - dm) * rstd * w[j];
    } else if (b) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = ((x[j] - mf) - dm) * rstd + b[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = ((x[j] - mf) - dm) * rstd;
    }
}

bp_status bp_cpu_layernorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                           float eps, bp_tensor *y, bp_error *err) {
    (void)err;
    const float *xs = x->data, *ws = w ? w->data : NULL, *bs = b ? b->data : NULL;
    float *ys = y->data;
    int64_t n = x->shape[x->ndim - 1];
    if (n == 0) return BP_OK;
    int64_t rows = bp_tensor_numel(x) / n;
    FOR_ROW_RANGES(bp_cpu_of(be), rows, n, lo, hi, {
        for (int64_t r = lo; r < hi; r++) layernorm_row(xs + r * n, ws, bs, eps, ys + r * n, n);
    });
    return BP_OK;
}

/* --------------------------------------------------------------- rmsnorm -- */

BP_CPU_CLONES static void rmsnorm_row(const float *x, const float *w, float eps, float *y, int64_t n) {
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < n; j++) ss += (double)x[j] * (double)x[j];
    float r = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    if (w) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = x[j] * r * w[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) y[j] = x[j] * r;
    }
}

bp_status bp_cpu_rmsnorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                         bp_error *err) {
    (void)err;
    const float *xs = x->data, *ws = w ? w->data : NULL;
    float *ys = y->data;
    int64_t n = x->shape[x->ndim - 1];
    if (n == 0) return BP_OK;
    int64_t rows = bp_tensor_numel(x) / n;
    FOR_ROW_RANGES(bp_cpu_of(be), rows, n, lo, hi, {
        for (int64_t r = lo; r < hi; r++) rmsnorm_row(xs + r * n, ws, eps, ys + r * n, n);
    });
    return BP_OK;
}

/* ---------------------------------------------------------------- reduce -- */

BP_CPU_CLONES static void reduce_rows(int32_t op, const float *x, float *y, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        if (op == BP_REDUCE_MAX) {
            y[r] = max_scaled(row, n, 1.0f);
        } else {
            double s = 0.0;
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < n; j++) s += (double)row[j];
            y[r] = (float)(op == BP_REDUCE_MEAN ? s / (double)n : s);
        }
    }
}

bp_status bp_cpu_reduce(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    if (op != BP_REDUCE_SUM && op != BP_REDUCE_MEAN && op != BP_REDUCE_MAX)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu reduce: unknown op %d", (int)op);
    const float *xs = x->data;
    float *ys = y->data;
    int64_t n = x->shape[x->ndim - 1];
    int64_t rows = bp_tensor_numel(y);
    FOR_ROW_RANGES(bp_cpu_of(be), rows, n, lo, hi, { reduce_rows(op, xs + lo * n, ys + lo, hi - lo, n); });
    return BP_OK;
}
