/* cpu backend — deterministic reductions and scatters of the training ops:
 * sum_to (x summed over its leading dims down to y's trailing shape),
 * add_rows (table[ids[i]] += src[i], the backward of get_rows) and the
 * per-plane sums that batchnorm and the conv2d bias gradient share.
 *
 * Determinism: every sum is accumulated in double in an order fixed by the
 * shape alone, never by the thread count —
 *  - sum_to with y of ≥ SUM_TO_COLUMNS elements: each column is summed over
 *    the rows in order, threads own disjoint column ranges;
 *  - sum_to with fewer columns: the rows form at most BP_CPU_REDUCE_CHUNKS
 *    fixed chunks, each summed in order into its own partial row, and the
 *    partials are added in chunk order;
 *  - add_rows: threads own disjoint column ranges and walk the ids in order,
 *    so repeated ids accumulate in the order of i, exactly as the serial loop
 *    (no atomics, no races);
 *  - plane sums: one plane per work item, summed in order. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* y's element count from which sum_to splits columns rather than rows. */
#define SUM_TO_COLUMNS 256

/* acc[k] += Σ_r x[r·stride + k] for k < cols, r < rows. */
BP_CPU_CLONES static void colsum(const float *x, int64_t stride, int64_t rows, int64_t cols, double *acc) {
    if (cols == 1 && stride == 1) {
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t r = 0; r < rows; r++) s += (double)x[r];
        acc[0] += s;
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * stride;
#pragma omp simd
        for (int64_t k = 0; k < cols; k++) acc[k] += (double)row[k];
    }
}

/* y[k] = Σ of the partial rows part[c·k_n + k] over c, in order. */
BP_CPU_CLONES static void partials_to_float(const double *part, int64_t chunks, int64_t k_n, float *y) {
    for (int64_t k = 0; k < k_n; k++) {
        double s = 0.0;
        for (int64_t c = 0; c < chunks; c++) s += part[c * k_n + k];
        y[k] = (float)s;
    }
}

bp_status bp_cpu_sum_to(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    const float *xs = x->data;
    float *ys = y->data;
    int64_t k_n = bp_tensor_numel(y), total = bp_tensor_numel(x);
    if (k_n == 0) return BP_OK;
    int64_t rows = total / k_n;
    int nt = bp_cpu_threads_for(cpu, total);
    if (k_n >= SUM_TO_COLUMNS) {
        /* column blocks of ≥ 64 per thread; per column the rows in order */
        int64_t max_parts = k_n / 64;
        if (nt > max_parts) nt = (int)max_parts;
        if (nt < 1) nt = 1;
        double *acc = bp_cpu_partials(cpu, (size_t)k_n, "sum_to", err);
        if (!acc) return BP_ERR_NOMEM;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int64_t lo, hi;
            bp_cpu_split(k_n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            colsum(xs + lo, k_n, rows, hi - lo, acc + lo);
            for (int64_t k = lo; k < hi; k++) ys[k] = (float)acc[k];
        }
        return BP_OK;
    }
    int64_t chunks = rows < BP_CPU_REDUCE_CHUNKS ? rows : BP_CPU_REDUCE_CHUNKS;
    if (chunks == 0) {
        memset(ys, 0, (size_t)k_n * sizeof *ys);
        return BP_OK;
    }
    double *part = bp_cpu_partials(cpu, (size_t)(chunks * k_n), "sum_to", err);
    if (!part) return BP_ERR_NOMEM;
    if (nt > chunks) nt = (int)chunks;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo, hi;
        bp_cpu_split(rows, (int)chunks, (int)c, &lo, &hi);
        colsum(xs + lo * k_n, k_n, hi - lo, k_n, part + c * k_n);
    }
    partials_to_float(part, chunks, k_n, ys);
    return BP_OK;
}

/* ------------------------------------------------------------- add_rows -- */

BP_CPU_CLONES static void add_rows_cols(const float *src, const int32_t *ids, int64_t n, int64_t d, int64_t lo,
                                        int64_t hi, float *table) {
    for (int64_t i = 0; i < n; i++) {
        const float *s = src + i * d;
        float *t = table + (int64_t)ids[i] * d;
#pragma omp simd
        for (int64_t k = lo; k < hi; k++) t[k] += s[k];
    }
}

bp_status bp_cpu_add_rows(bp_backend_impl *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                          bp_error *err) {
    int64_t v = table->shape[0], d = table->shape[1], n = ids->shape[0];
    const int32_t *id = ids->data;
    for (int64_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= v)
            return bp_error_set(err, BP_ERR_INVALID, "cpu add_rows: ids[%lld] = %d is outside the table's %lld rows",
                                (long long)i, (int)id[i], (long long)v);
    if (n == 0 || d == 0) return BP_OK;
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n * d);
    int64_t max_parts = d / 64; /* ≥ 64 columns per thread */
    if (nt > max_parts) nt = (int)max_parts;
    if (nt < 1) nt = 1;
    const float *ss = src->data;
    float *ts = table->data;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(d, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        add_rows_cols(ss, id, n, d, lo, hi, ts);
    }
    return BP_OK;
}

/* ------------------------------------------------------------- partials -- */

double *bp_cpu_partials(bp_cpu *cpu, size_t n, const char *what, bp_error *err) {
    if (n > cpu->partials_cap) {
        size_t cap = n < 4096 ? 4096 : n;
        double *p = malloc(cap * sizeof *p);
        if (!p) {
            bp_error_set(err, BP_ERR_NOMEM, "cpu %s: cannot allocate %zu partial sums", what, n);
            return NULL;
        }
        free(cpu->partials);
        cpu->partials = p;
        cpu->partials_cap = cap;
    }
    memset(cpu->partials, 0, n * sizeof *cpu->partials);
    return cpu->partials;
}

/* ----------------------------------------------------------- plane sums -- */

BP_CPU_CLONES static double plane_sum(const float *x, int64_t n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += (double)x[j];
    return s;
}

void bp_cpu_plane_sums(const bp_cpu *cpu, const float *x, int64_t planes, int64_t plane, double *sums) {
    int nt = bp_cpu_threads_for(cpu, planes * plane);
    if (nt > planes) nt = (int)planes;
    if (nt < 1) nt = 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t p = 0; p < planes; p++) sums[p] = plane_sum(x + p * plane, plane);
}
