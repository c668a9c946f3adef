/* cpu backend — batch normalisation over NCHW per channel: the forward in
 * eval mode (running statistics given) and train mode (batch mean and biased
 * variance computed and written), and the backward.
 *
 * Statistics are two-pass (mean, then Σ(x − mean)²), each in double: every
 * (n, c) plane is summed by one thread into its own double, and a channel's
 * planes are then added in n order, so the bytes never depend on the thread
 * count. The normalisation runs plane by plane across threads. y may alias x
 * (each element is read before it is written, at the same index); dx may
 * alias dy. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu_internal.h"

typedef struct bn_shape {
    int64_t n, c, hw;
} bn_shape;

static bn_shape bn_shape_of(const bp_tensor *x) {
    bn_shape s = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
    return s;
}

/* Per channel: Σ over n of sums[n·C + c]. */
static void channel_totals(const double *sums, const bn_shape *s, double *tot) {
    for (int64_t c = 0; c < s->c; c++) {
        double t = 0.0;
        for (int64_t n = 0; n < s->n; n++) t += sums[n * s->c + c];
        tot[c] = t;
    }
}

/* Σ (x − mean)² over one plane. */
BP_CPU_CLONES static double plane_sq_dev(const float *x, int64_t n, double mean) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) {
        double d = (double)x[j] - mean;
        s += d * d;
    }
    return s;
}

/* y = ((x − mf) − dm)·k + b: mean = mf + dm split into float parts so that a
 * large mean costs no accuracy; k = w/√(var + eps). */
BP_CPU_CLONES static void bn_apply_plane(const float *x, float *y, int64_t n, float mf, float dm, float k, float b) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) y[j] = ((x[j] - mf) - dm) * k + b;
}

static int bn_threads(const bp_cpu *cpu, int64_t planes, int64_t work) {
    int nt = bp_cpu_threads_for(cpu, work);
    if (nt > planes) nt = (int)planes;
    return nt < 1 ? 1 : nt;
}

bp_status bp_cpu_batchnorm(bp_backend_impl *be, const bp_batchnorm_desc *d, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    bn_shape s = bn_shape_of(d->x);
    int64_t planes = s.n * s.c, total = planes * s.hw;
    const float *xs = d->x->data, *ws = d->w ? d->w->data : NULL, *bs = d->b ? d->b->data : NULL;
    float *ys = d->y->data, *means = d->mean->data, *vars = d->var->data;
    if (s.c == 0) return BP_OK;
    /* per channel: the mean in double and rstd·w (eval: from the given statistics) */
    double *mean = malloc((size_t)s.c * 2 * sizeof *mean);
    double *scratch = d->training ? malloc((size_t)(planes > 0 ? planes : 1) * sizeof *scratch) : NULL;
    if (!mean || (d->training && !scratch)) {
        free(mean);
        free(scratch);
        return bp_error_set(err, BP_ERR_NOMEM, "cpu batchnorm: cannot allocate statistics for %lld channels",
                            (long long)s.c);
    }
    double *var = mean + s.c;
    int nt = bn_threads(cpu, planes, total);
    if (d->training) {
        double m_count = (double)(s.n * s.hw);
        bp_cpu_plane_sums(cpu, xs, planes, s.hw, scratch);
        channel_totals(scratch, &s, mean);
        for (int64_t c = 0; c < s.c; c++) mean[c] = m_count > 0 ? mean[c] / m_count : 0.0;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t p = 0; p < planes; p++) scratch[p] = plane_sq_dev(xs + p * s.hw, s.hw, mean[p % s.c]);
        channel_totals(scratch, &s, var);
        for (int64_t c = 0; c < s.c; c++) {
            var[c] = m_count > 0 ? var[c] / m_count : 0.0;
            means[c] = (float)mean[c];
            vars[c] = (float)var[c];
        }
    } else {
        for (int64_t c = 0; c < s.c; c++) {
            mean[c] = means[c];
            var[c] = vars[c];
        }
    }
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        int64_t c = p % s.c;
        float mf = (float)mean[c], dm = (float)(mean[c] - (double)mf);
        double k = (ws ? (double)ws[c] : 1.0) / sqrt(var[c] + (double)d->eps);
        bn_apply_plane(xs + p * s.hw, ys + p * s.hw, s.hw, mf, dm, (float)k, bs ? bs[c] : 0.0f);
    }
    free(mean);
    free(scratch);
    return BP_OK;
}

/* ------------------------------------------------------------- backward -- */

/* Σ dy·x̂ over one plane, x̂ = (x − mean)·rstd. */
BP_CPU_CLONES static double plane_dot_xhat(const float *x, const float *dy, int64_t n, float mean, float rstd) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += (double)dy[j] * (double)((x[j] - mean) * rstd);
    return s;
}

/* dx = k·(dy − a − x̂·b), x̂ = (x − mean)·rstd; eval mode has a = b = 0. */
BP_CPU_CLONES static void bn_grad_plane(const float *x, const float *dy, float *dx, int64_t n, float mean, float rstd,
                                        float k, float a, float b) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float xh = (x[j] - mean) * rstd;
        dx[j] = k * ((dy[j] - a) - xh * b);
    }
}

/* Train mode (d->training ≠ 0): gradients through the batch statistics,
 *   dx = w·rstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M),  M = N·H·W;
 * eval mode: mean and var are constants, dx = w·rstd·dy. In both,
 *   dw = Σ dy·x̂, db = Σ dy over (N, H, W). */
bp_status bp_cpu_batchnorm_backward(bp_backend_impl *be, const bp_batchnorm_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    bn_shape s = bn_shape_of(d->x);
    int64_t planes = s.n * s.c, total = planes * s.hw;
    const float *xs = d->x->data, *gs = dy->data, *ws = d->w ? d->w->data : NULL;
    const float *means = d->mean->data, *vars = d->var->data;
    if (s.c == 0) return BP_OK;
    int need_sums = dw || db || (dx && d->training);
    double *sum_dy = malloc((size_t)s.c * 2 * sizeof *sum_dy);
    double *scratch = malloc((size_t)(planes > 0 ? planes : 1) * sizeof *scratch);
    float *rstd = malloc((size_t)s.c * sizeof *rstd);
    if (!sum_dy || !scratch || !rstd) {
        free(sum_dy), free(scratch), free(rstd);
        return bp_error_set(err, BP_ERR_NOMEM, "cpu batchnorm_backward: cannot allocate sums for %lld channels",
                            (long long)s.c);
    }
    double *sum_dyx = sum_dy + s.c;
    for (int64_t c = 0; c < s.c; c++) rstd[c] = (float)(1.0 / sqrt((double)vars[c] + (double)d->eps));
    int nt = bn_threads(cpu, planes, total);
    if (need_sums) {
        bp_cpu_plane_sums(cpu, gs, planes, s.hw, scratch);
        channel_totals(scratch, &s, sum_dy);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t p = 0; p < planes; p++)
            scratch[p] = plane_dot_xhat(xs + p * s.hw, gs + p * s.hw, s.hw, means[p % s.c], rstd[p % s.c]);
        channel_totals(scratch, &s, sum_dyx);
        for (int64_t c = 0; c < s.c; c++) {
            if (dw) ((float *)dw->data)[c] = (float)sum_dyx[c];
            if (db) ((float *)db->data)[c] = (float)sum_dy[c];
        }
    }
    if (dx) {
        float *ds = dx->data;
        double m_count = (double)(s.n * s.hw);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t p = 0; p < planes; p++) {
            int64_t c = p % s.c;
            float k = (ws ? ws[c] : 1.0f) * rstd[c];
            float a = d->training ? (float)(sum_dy[c] / m_count) : 0.0f;
            float b = d->training ? (float)(sum_dyx[c] / m_count) : 0.0f;
            bn_grad_plane(xs + p * s.hw, gs + p * s.hw, ds + p * s.hw, s.hw, means[c], rstd[c], k, a, b);
        }
    }
    free(sum_dy), free(scratch), free(rstd);
    return BP_OK;
}
