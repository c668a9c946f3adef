/* cpu backend — max pooling over NCHW (maxpool2d) and its backward.
 *
 * Forward: padding is −∞; ties pick the first element of the window in
 * row-major order (a later element must be strictly greater); a NaN wins
 * over numbers and the first NaN of a window is kept (as PyTorch propagates
 * NaN). argmax records h·W + w within the input plane. The core guarantees
 * pad < kernel, so every window of a non-empty plane holds at least one
 * input element (an empty plane, H or W = 0, is refused). For each
 * output row the window offsets (u, v) are visited in row-major order and
 * the output columns form the inner (vectorised) loop.
 * Backward: dx = 0, then dx[argmax] += dy per plane in output order — planes
 * are split across threads, so overlapping windows (stride < kernel) add up
 * in the same order for any thread count. Every argmax is checked to lie in
 * its plane before anything is written. */
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct pool_geom {
    int64_t h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_geom;

static pool_geom pool_geom_of(const bp_pool2d_desc *d) {
    pool_geom g = {d->x->shape[2], d->x->shape[3], d->y->shape[2], d->y->shape[3], d->kernel_h,
                   d->kernel_w,    d->stride_h,    d->stride_w,    d->pad_h,       d->pad_w};
    return g;
}

/* Output columns [*j0, *j1) whose window column j·sw − pw + v lies in [0, w). */
static void valid_cols(const pool_geom *g, int64_t v, int64_t *j0, int64_t *j1) {
    int64_t off = v - g->pw; /* input column of output 0 */
    int64_t lo = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    int64_t hi = (g->w - 1 - off) >= 0 ? (g->w - 1 - off) / g->sw + 1 : 0;
    if (hi > g->ow) hi = g->ow;
    if (lo > hi) lo = hi;
    *j0 = lo;
    *j1 = hi;
}

/* One output row i of one plane. best/arg are the row's running maxima. */
BP_CPU_CLONES static void pool_row(const float *x, const pool_geom *g, int64_t i, float *best, int32_t *arg) {
    int64_t h0 = i * g->sh - g->ph;
    int first = 1;
    for (int64_t u = 0; u < g->kh; u++) {
        int64_t hi = h0 + u;
        if (hi < 0 || hi >= g->h) continue;
        const float *row = x + hi * g->w;
        for (int64_t v = 0; v < g->kw; v++) {
            int64_t j0, j1;
            valid_cols(g, v, &j0, &j1);
            int64_t off = v - g->pw;
            if (first) {
                /* the window's first element: the top-left valid one, (hi, max(off_j, 0)) */
                for (int64_t j = 0; j < g->ow; j++) {
                    int64_t c = j * g->sw + off;
                    c = c < 0 ? 0 : c; /* only j < j0 land here: column 0 is then the window's first */
                    best[j] = row[c];
                    arg[j] = (int32_t)(hi * g->w + c);
                }
                first = 0;
            }
#pragma omp simd
            for (int64_t j = j0; j < j1; j++) {
                int64_t c = j * g->sw + off;
                float cand = row[c];
                float b = best[j];
                int take = (cand > b || cand != cand) && b == b;
                best[j] = take ? cand : b;
                arg[j] = take ? (int32_t)(hi * g->w + c) : arg[j];
            }
        }
    }
}

bp_status bp_cpu_maxpool2d(bp_backend_impl *be, const bp_pool2d_desc *d, bp_error *err) {
    pool_geom g = pool_geom_of(d);
    int64_t planes = d->x->shape[0] * d->x->shape[1];
    const float *xs = d->x->data;
    float *ys = d->y->data;
    int32_t *as = d->argmax ? d->argmax->data : NULL;
    int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
    if (planes == 0 || out_plane == 0) return BP_OK;
    if (in_plane == 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu maxpool2d: an empty %lldx%lld input plane has no maximum",
                            (long long)g.h, (long long)g.w);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), planes * (in_plane > out_plane ? in_plane : out_plane));
    if (nt > planes) nt = (int)planes;
    if (nt < 1) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(planes, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        /* without an argmax output the indices go to a per-thread scratch
         * row on the stack; wider rows are pooled in column chunks of 4096 */
        int32_t tmp[4096];
        for (int64_t p = lo; p < hi; p++)
            for (int64_t i = 0; i < g.oh; i++) {
                float *yrow = ys + p * out_plane + i * g.ow;
                if (as) {
                    pool_row(xs + p * in_plane, &g, i, yrow, as + p * out_plane + i * g.ow);
                } else if (g.ow <= 4096) {
                    pool_row(xs + p * in_plane, &g, i, yrow, tmp);
                } else {
                    for (int64_t j0 = 0; j0 < g.ow; j0 += 4096) {
                        pool_geom gc = g;
                        int64_t n = g.ow - j0 < 4096 ? g.ow - j0 : 4096;
                        /* output columns j0.. are outputs 0.. of a pooling whose left pad is pw − j0·sw */
                        gc.ow = n;
                        gc.pw = g.pw - j0 * g.sw;
                        pool_row(xs + p * in_plane, &gc, i, yrow + j0, tmp);
                    }
                }
            }
    }
    return BP_OK;
}

bp_status bp_cpu_maxpool2d_backward(bp_backend_impl *be, const bp_pool2d_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_error *err) {
    pool_geom g = pool_geom_of(d);
    int64_t planes = d->x->shape[0] * d->x->shape[1];
    int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
    const int32_t *as = d->argmax->data;
    const float *gs = dy->data;
    float *ds = dx->data;
    int64_t n_out = planes * out_plane;
    if (planes == 0 || in_plane == 0) return BP_OK;
    for (int64_t o = 0; o < n_out; o++)
        if (as[o] < 0 || as[o] >= in_plane)
            return bp_error_set(err, BP_ERR_INVALID,
                                "cpu maxpool2d_backward: argmax[%lld] = %d is outside the %lldx%lld input plane",
                                (long long)o, (int)as[o], (long long)g.h, (long long)g.w);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), planes * (in_plane > out_plane ? in_plane : out_plane));
    if (nt > planes) nt = (int)planes;
    if (nt < 1) nt = 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        float *dxp = ds + p * in_plane;
        const float *dyp = gs + p * out_plane;
        const int32_t *ap = as + p * out_plane;
        memset(dxp, 0, (size_t)in_plane * sizeof *dxp);
        for (int64_t o = 0; o < out_plane; o++) dxp[ap[o]] += dyp[o];
    }
    return BP_OK;
}
