/* cpu backend — backward passes of the row-wise ops over the last dimension:
 * softmax_backward and layernorm_backward.
 *
 * Row sums are accumulated in double (vectorised simd reductions), each row
 * by one thread. layernorm's dw/db (sums over all rows) go through at most
 * BP_CPU_REDUCE_CHUNKS fixed row chunks: each chunk accumulates its own
 * double partial sums, and the partials are added in chunk order — the
 * chunks depend on the shape only, so the bytes do not depend on the thread
 * count. dx may alias dy (and x for layernorm). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu_internal.h"

/* ------------------------------------------------------ softmax_backward -- */

/* dx = scale · y ⊙ (dy − Σ dy ⊙ y) */
BP_CPU_CLONES static void softmax_grad_row(const float *y, const float *dy, float scale, float *dx, int64_t n) {
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += (double)dy[j] * (double)y[j];
    float s = (float)dot;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dx[j] = scale * (y[j] * (dy[j] - s));
}

bp_status bp_cpu_softmax_backward(bp_backend_impl *be, const bp_tensor *y, const bp_tensor *dy, float scale,
                                  bp_tensor *dx, bp_error *err) {
    (void)err;
    const float *ys = y->data, *gs = dy->data;
    float *ds = dx->data;
    int64_t n = y->shape[y->ndim - 1];
    if (n == 0) return BP_OK;
    int64_t rows = bp_tensor_numel(y) / n;
    int nt = bp_cpu_threads_for(bp_cpu_of(be), rows * n);
    if (nt > rows) nt = (int)rows;
    if (nt < 1) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(rows, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        for (int64_t r = lo; r < hi; r++) softmax_grad_row(ys + r * n, gs + r * n, scale, ds + r * n, n);
    }
    return BP_OK;
}

/* ---------------------------------------------------- layernorm_backward -- */

/* One row: x̂ = (x − mean)·rstd (statistics as in the forward, cpu_norm.c),
 * g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); pw += dy·x̂, pb += dy
 * (each when non-NULL). dx is written last, so it may alias dy or x. */
BP_CPU_CLONES static void layernorm_grad_row(const float *x, const float *w, const float *dy, float eps, float *dx,
                                             double *pw, double *pb, int64_t n) {
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
    float mf = (float)mean, dm = (float)(mean - (double)mf);
    double sg = 0.0, sgx = 0.0;
    if (w) {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            float g = dy[j] * w[j];
            sg += (double)g;
            sgx += (double)g * (double)xh;
        }
    } else {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            sg += (double)dy[j];
            sgx += (double)dy[j] * (double)xh;
        }
    }
    float mg = (float)(sg / (double)n), mgx = (float)(sgx / (double)n);
    if (pw && pb) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            pw[j] += (double)dy[j] * (double)xh;
            pb[j] += (double)dy[j];
        }
    } else if (pw) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            pw[j] += (double)dy[j] * (double)xh;
        }
    } else if (pb) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) pb[j] += (double)dy[j];
    }
    if (w) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            dx[j] = rstd * ((dy[j] * w[j] - mg) - xh * mgx);
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float xh = ((x[j] - mf) - dm) * rstd;
            dx[j] = rstd * ((dy[j] - mg) - xh * mgx);
        }
    }
}

BP_CPU_CLONES static void add_partials(const double *part, int64_t chunks, int64_t stride, int64_t lo, int64_t hi,
                                       float *out) {
    for (int64_t j = lo; j < hi; j++) {
        double s = 0.0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * stride + j];
        out[j] = (float)s;
    }
}

bp_status bp_cpu_layernorm_backward(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w,
                                    const bp_tensor *dy, float eps, bp_tensor *dx, bp_tensor *dw, bp_tensor *db,
                                    bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    const float *xs = x->data, *ws = w ? w->data : NULL, *gs = dy->data;
    float *ds = dx->data;
    int64_t n = x->shape[x->ndim - 1];
    int64_t rows = n > 0 ? bp_tensor_numel(x) / n : 0;
    if (n == 0) return BP_OK;
    int64_t chunks = rows < BP_CPU_REDUCE_CHUNKS ? rows : BP_CPU_REDUCE_CHUNKS;
    int want_w = dw != NULL, want_b = db != NULL;
    int64_t stride = (want_w + want_b) * n; /* doubles per chunk */
    double *part = NULL;
    if (stride > 0 && chunks > 0) {
        part = bp_cpu_partials(cpu, (size_t)(chunks * stride), "layernorm_backward", err);
        if (!part) return BP_ERR_NOMEM;
    }
    int nt = bp_cpu_threads_for(cpu, rows * n);
    if (nt > chunks) nt = (int)chunks;
    if (nt < 1) nt = 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo, hi;
        bp_cpu_split(rows, (int)chunks, (int)c, &lo, &hi);
        double *pw = want_w ? part + c * stride : NULL;
        double *pb = want_b ? part + c * stride + (want_w ? n : 0) : NULL;
        for (int64_t r = lo; r < hi; r++)
            layernorm_grad_row(xs + r * n, ws, gs + r * n, eps, ds + r * n, pw, pb, n);
    }
    float *dws = want_w ? dw->data : NULL, *dbs = want_b ? db->data : NULL;
    if (part) {
        if (dws) add_partials(part, chunks, stride, 0, n, dws);
        if (dbs) add_partials(part + (want_w ? n : 0), chunks, stride, 0, n, dbs);
    } else { /* no rows: the sums are empty */
        for (int64_t j = 0; j < n; j++) {
            if (dws) dws[j] = 0.0f;
            if (dbs) dbs[j] = 0.0f;
        }
    }
    return BP_OK;
}
