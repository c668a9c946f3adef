/* cpu backend — direct convolution for few channels: the forward and the
 * weight gradient of a dense (groups 1), stride-1, undilated conv2d whose
 * Cin·Cout is at most BP_CPU_CONV_DIRECT_MAX_CH (e.g. Spatial-AST's 4 → 1
 * channel 3×3 conv over [B, 4, 1024, 128]). oneDNN's kernels block over
 * channels and run such shapes at 2–3 GFLOP/s; here one output row is a sum
 * of shifted input rows times scalar weights, vectorised along the width.
 *
 * Forward: y[n,o,h,:] = bias[o] + Σ_c Σ_kh Σ_kw w[o,c,kh,kw] · x[n,c,h+kh−ph, :+kw−pw]
 * (terms in c, kh, kw order; out-of-image taps contribute nothing); threads own
 * disjoint output rows.
 * Weight gradient: dw[o,c,kh,kw] = Σ_n Σ_h Σ_w dy[n,o,h,w] · x[n,c,h+kh−ph,w+kw−pw];
 * each row's dot product in float, rows accumulated in double over at most
 * BP_CPU_REDUCE_CHUNKS fixed chunks of (n, h) rows, chunks added in order —
 * the same bytes for any thread count (cpu_train_reduce.c). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

int bp_cpu_conv_direct_ok(const bp_conv2d_desc *d, const bp_tensor *y) {
    if (d->x->dtype != BP_DTYPE_F32 || d->w->dtype != BP_DTYPE_F32) return 0;
    if (d->groups != 1 || d->stride_h != 1 || d->stride_w != 1 || d->dilation_h != 1 || d->dilation_w != 1)
        return 0;
    const int64_t cin = d->x->shape[1], cout = d->w->shape[0], kh = d->w->shape[2], kw = d->w->shape[3];
    if (cin * cout > BP_CPU_CONV_DIRECT_MAX_CH || kh * kw > 49) return 0;
    /* wide rows only: the vector loops run along the output width */
    return y->shape[3] >= 16;
}

typedef struct conv_geo {
    int64_t n, cin, h, w, cout, kh, kw, oh, ow, ph, pw;
} conv_geo;

/* y: the output (forward) or its gradient (backward) */
static conv_geo geo_of(const bp_conv2d_desc *d, const bp_tensor *y) {
    conv_geo g = {d->x->shape[0], d->x->shape[1], d->x->shape[2], d->x->shape[3], d->w->shape[0], d->w->shape[2],
                  d->w->shape[3], y->shape[2],     y->shape[3],     d->pad_h,        d->pad_w};
    return g;
}

/* output columns whose tap kw lands inside the input row: [*lo, *hi) */
static void tap_range(const conv_geo *g, int64_t k, int64_t *lo, int64_t *hi) {
    const int64_t off = k - g->pw;
    *lo = off < 0 ? -off : 0;
    *hi = g->w - off < g->ow ? g->w - off : g->ow;
    if (*hi < *lo) *hi = *lo;
}

/* y[i] += a · x[i + off] for i in [lo, hi), fused (one rounding, as oneDNN's kernels) */
BP_CPU_CLONES static void axpy_row(float *y, const float *x, int64_t off, float a, int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) y[i] = fmaf(a, x[i + off], y[i]);
}

/* Σ a[i] · b[i + off] for i in [lo, hi) */
BP_CPU_CLONES static float dot_row(const float *a, const float *b, int64_t off, int64_t lo, int64_t hi) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; i++) s = fmaf(a[i], b[i + off], s);
    return s;
}

static void fwd_row(const conv_geo *g, const float *x, const float *w, const float *bias, int64_t r, float *y) {
    const int64_t oh = r % g->oh, o = (r / g->oh) % g->cout, n = r / (g->oh * g->cout);
    float *yr = y + r * g->ow;
    const float b = bias ? bias[o] : 0.0f;
    for (int64_t i = 0; i < g->ow; i++) yr[i] = b;
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t a = 0; a < g->kh; a++) {
            const int64_t ih = oh + a - g->ph;
            if (ih < 0 || ih >= g->h) continue;
            const float *xr = x + ((n * g->cin + c) * g->h + ih) * g->w;
            const float *wk = w + ((o * g->cin + c) * g->kh + a) * g->kw;
            for (int64_t k = 0; k < g->kw; k++) {
                int64_t lo, hi;
                tap_range(g, k, &lo, &hi);
                axpy_row(yr, xr, k - g->pw, wk[k], lo, hi);
            }
        }
}

bp_status bp_cpu_conv2d_direct(bp_cpu *cpu, const bp_conv2d_desc *d, bp_error *err) {
    (void)err;
    const conv_geo g = geo_of(d, d->y);
    const float *x = d->x->data, *w = d->w->data, *bias = d->bias ? d->bias->data : NULL;
    float *y = d->y->data;
    const int64_t rows = g.n * g.cout * g.oh;
    const int nt = bp_cpu_threads_for(cpu, rows * g.ow * g.cin * g.kh * g.kw);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) fwd_row(&g, x, w, bias, r, y);
    return BP_OK;
}

/* acc[o,c,a,k] += Σ over output row (n, oh) */
static void dw_row(const conv_geo *g, const float *x, const float *dy, int64_t n, int64_t oh, double *acc) {
    for (int64_t o = 0; o < g->cout; o++) {
        const float *dr = dy + ((n * g->cout + o) * g->oh + oh) * g->ow;
        for (int64_t c = 0; c < g->cin; c++)
            for (int64_t a = 0; a < g->kh; a++) {
                const int64_t ih = oh + a - g->ph;
                if (ih < 0 || ih >= g->h) continue;
                const float *xr = x + ((n * g->cin + c) * g->h + ih) * g->w;
                double *ak = acc + ((o * g->cin + c) * g->kh + a) * g->kw;
                for (int64_t k = 0; k < g->kw; k++) {
                    int64_t lo, hi;
                    tap_range(g, k, &lo, &hi);
                    ak[k] += (double)dot_row(dr, xr, k - g->pw, lo, hi);
                }
            }
    }
}

bp_status bp_cpu_conv2d_direct_dw(bp_cpu *cpu, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dw,
                                  bp_error *err) {
    const conv_geo g = geo_of(d, dy);
    const int64_t nw = g.cout * g.cin * g.kh * g.kw, rows = g.n * g.oh;
    const int64_t chunks = rows < BP_CPU_REDUCE_CHUNKS ? rows : BP_CPU_REDUCE_CHUNKS;
    float *out = dw->data;
    if (chunks == 0) {
        memset(out, 0, (size_t)nw * sizeof *out);
        return BP_OK;
    }
    double *part = bp_cpu_partials(cpu, (size_t)(chunks * nw), "conv2d_backward", err);
    if (!part) return BP_ERR_NOMEM;
    memset(part, 0, (size_t)(chunks * nw) * sizeof *part);
    const float *x = d->x->data, *dys = dy->data;
    int nt = bp_cpu_threads_for(cpu, rows * g.ow * nw);
    if (nt > chunks) nt = (int)chunks;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t lo, hi;
        bp_cpu_split(rows, (int)chunks, (int)ch, &lo, &hi);
        for (int64_t r = lo; r < hi; r++) dw_row(&g, x, dys, r / g.oh, r % g.oh, part + ch * nw);
    }
    for (int64_t i = 0; i < nw; i++) {
        double s = 0.0;
        for (int64_t ch = 0; ch < chunks; ch++) s += part[ch * nw + i];
        out[i] = (float)s;
    }
    return BP_OK;
}
