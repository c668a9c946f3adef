/* ism_binaural — the early part (see ism_early.h). */
#include "ism_early.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ism_simd.h"

/* ---------------------------------------------------------------- set-up -- */

/* Band energy of every HRIR (phase 0, ears averaged) relative to its mean
 * over the tail's quasi-uniform directions. */
static bp_status hrir_band_energy(ism_early *e, const ism_hrtf *h, const ism_bands *bands, bp_error *err) {
    const int32_t nb = bands->n, nh = ism_fft_size_at_least((int64_t)h->len + 2 * bands->half + 1);
    const int32_t nbin = nh / 2 + 1;
    float *resp = malloc((size_t)nb * (size_t)nbin * sizeof(float));
    float *buf = ism_fft_alloc((size_t)nh * sizeof(float));
    fftwf_complex *spec = ism_fft_alloc((size_t)nbin * sizeof(fftwf_complex));
    e->band_energy = malloc((size_t)h->m * (size_t)nb * sizeof(float));
    if (!resp || !buf || !spec || !e->band_energy) {
        free(resp);
        ism_fft_dealloc(buf);
        ism_fft_dealloc(spec);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the HRIR band energies");
    }
    ism_fft fwd;
    bp_status st = ism_bands_response(bands, nh, resp, err);
    if (st == BP_OK) st = ism_fft_init(&fwd, nh, ISM_FFT_R2C, err);
    if (st == BP_OK) {
        for (int32_t m = 0; m < h->m; m++) {
            double eb[ISM_MAX_BANDS] = {0};
            for (int32_t ear = 0; ear < 2; ear++) {
                memset(buf, 0, (size_t)nh * sizeof(float));
                memcpy(buf, ism_hrtf_ir(h, m, 0, ear), (size_t)h->len * sizeof(float));
                ism_fft_exec(&fwd, buf, spec);
                for (int32_t k = 0; k < nbin; k++) {
                    double p = (double)spec[k][0] * spec[k][0] + (double)spec[k][1] * spec[k][1];
                    double w = (k == 0 || k == nh / 2) ? 1.0 : 2.0;
                    for (int32_t b = 0; b < nb; b++) {
                        double r = resp[(size_t)b * (size_t)nbin + (size_t)k];
                        eb[b] += w * r * r * p;
                    }
                }
            }
            for (int32_t b = 0; b < nb; b++)
                e->band_energy[(size_t)m * (size_t)nb + (size_t)b] = (float)(eb[b] / (2.0 * nh));
        }
        for (int32_t b = 0; b < nb; b++) {
            double mean = 0.0;
            for (int32_t i = 0; i < ISM_TAIL_DIRS; i++)
                mean += e->band_energy[(size_t)h->tail_dirs[i] * (size_t)nb + (size_t)b];
            mean /= ISM_TAIL_DIRS;
            e->mean_band_energy[b] = mean;
            for (int32_t m = 0; m < h->m; m++) {
                float *v = &e->band_energy[(size_t)m * (size_t)nb + (size_t)b];
                *v = mean > 0.0 ? (float)(*v / mean) : 1.0f;
            }
        }
        ism_fft_free(&fwd);
    }
    free(resp);
    ism_fft_dealloc(buf);
    ism_fft_dealloc(spec);
    return st;
}

bp_status ism_early_init(ism_early *e, const ism_hrtf *h, const ism_bands *bands, double max_time, bp_error *err) {
    memset(e, 0, sizeof *e);
    e->n_bands = bands->n;
    e->half = bands->half;
    e->max_time = max_time;
    e->margin = (int32_t)ceil(h->onset) + 2;
    e->acc_len = e->margin + (int32_t)ceil(max_time * h->fs) + h->len + 2;
    e->nfft = ism_fft_size_at_least((int64_t)e->acc_len + 2 * (int64_t)e->half + 1);
    const int32_t nbin = e->nfft / 2 + 1, nb = e->n_bands;
    e->hist_dt = 1e-3;
    e->hist_bins = (int32_t)ceil(max_time / e->hist_dt) + 1;
    e->acc = ism_fft_alloc((size_t)nb * 2 * (size_t)e->nfft * sizeof(float));
    e->resp = malloc((size_t)nb * (size_t)nbin * sizeof(float));
    e->spec = ism_fft_alloc((size_t)nbin * sizeof(fftwf_complex));
    e->sum = ism_fft_alloc(2 * (size_t)nbin * sizeof(fftwf_complex));
    e->time = ism_fft_alloc((size_t)e->nfft * sizeof(float));
    e->prod = ism_fft_alloc((size_t)nbin * sizeof(fftwf_complex));
    e->direct = ism_fft_alloc(2 * (size_t)e->nfft * sizeof(float));
    e->direct_resp = malloc((size_t)nbin * sizeof(float));
    e->band_time = ism_fft_alloc((size_t)e->nfft * sizeof(float));
    e->hist = calloc((size_t)nb * (size_t)e->hist_bins, sizeof(double));
    e->hist_count = calloc((size_t)e->hist_bins, sizeof(int32_t));
    if (!e->acc || !e->resp || !e->spec || !e->sum || !e->time || !e->prod || !e->direct || !e->direct_resp ||
        !e->band_time || !e->hist || !e->hist_count) {
        ism_early_free(e);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the early part (max_time_s = %g s)",
                            max_time);
    }
    bp_status st = ism_bands_response(bands, e->nfft, e->resp, err);
    if (st == BP_OK) st = ism_fft_init(&e->fwd, e->nfft, ISM_FFT_R2C, err);
    if (st == BP_OK) st = ism_fft_init(&e->inv, e->nfft, ISM_FFT_C2R, err);
    if (st == BP_OK) st = hrir_band_energy(e, h, bands, err);
    if (st != BP_OK) ism_early_free(e);
    return st;
}

void ism_early_free(ism_early *e) {
    if (!e) return;
    ism_fft_free(&e->fwd);
    ism_fft_free(&e->inv);
    ism_fft_dealloc(e->acc);
    free(e->resp);
    ism_fft_dealloc(e->spec);
    ism_fft_dealloc(e->sum);
    ism_fft_dealloc(e->time);
    ism_fft_dealloc(e->prod);
    ism_fft_dealloc(e->direct);
    free(e->direct_resp);
    ism_fft_dealloc(e->band_time);
    free(e->band_energy);
    free(e->hist);
    free(e->hist_count);
    memset(e, 0, sizeof *e);
}

/* ------------------------------------------------------- image lattice -- */

/* One image position along one axis: offset from the listener, wall hits,
 * and the product of the two walls' reflection factors per band. */
typedef struct axis_img {
    double off;
    int32_t order;
    double amp[ISM_MAX_BANDS];
} axis_img;

static int cmp_abs_off(const void *a, const void *b) {
    double x = fabs(((const axis_img *)a)->off), y = fabs(((const axis_img *)b)->off);
    return (x > y) - (x < y);
}

/* Images along axis `ax` within |offset| <= reach and with at most max_hits
 * wall hits (< 0: any), sorted by |offset|. */
static bp_status axis_images(const ism_scene *sc, int32_t ax, double reach, int64_t max_hits, axis_img **out,
                             int32_t *n_out, bp_error *err) {
    const double len = sc->size[ax], s = sc->source[ax], l = sc->listener[ax];
    const int32_t nb = sc->n_bands;
    const int64_t nmax = (int64_t)ceil((reach + len) / (2.0 * len)) + 1;
    axis_img *v = malloc((size_t)(4 * nmax + 2) * sizeof *v);
    if (!v) return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the image lattice");
    int32_t n = 0;
    for (int64_t k = -nmax; k <= nmax; k++)
        for (int32_t p = 0; p < 2; p++) {
            /* x = (1 − 2p)·s + 2kL: |k − p| hits on the low wall, |k| on the high wall */
            double off = (p ? -s : s) + 2.0 * (double)k * len - l;
            if (fabs(off) > reach) continue;
            int64_t lo = llabs(k - p), hi = llabs(k);
            if (max_hits >= 0 && lo + hi > max_hits) continue;
            axis_img *e = &v[n++];
            e->off = off;
            e->order = (int32_t)(lo + hi);
            for (int32_t b = 0; b < nb; b++)
                e->amp[b] = pow(sc->beta[2 * ax][b], (double)lo) * pow(sc->beta[2 * ax + 1][b], (double)hi);
        }
    qsort(v, (size_t)n, sizeof *v, cmp_abs_off);
    *out = v;
    *n_out = n;
    return BP_OK;
}

/* y[i] += a·x[i] */
ISM_MULTIARCH static void axpy(float *restrict y, float a, const float *restrict x, int32_t n) {
    for (int32_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* ---------------------------------------------------------------- render -- */

/* The early end: max_time, or the nearest image that max_order leaves out. */
static double early_end(const ism_early *e, const ism_scene *sc, int32_t max_order, axis_img *const ax[3],
                        const int32_t nax[3]) {
    double reach = sc->c * e->max_time, r2 = reach * reach;
    if (max_order < 0) return e->max_time;
    for (int32_t ix = 0; ix < nax[0]; ix++) {
        double dx2 = ax[0][ix].off * ax[0][ix].off;
        if (dx2 >= r2) break;
        for (int32_t iy = 0; iy < nax[1]; iy++) {
            double dxy2 = dx2 + ax[1][iy].off * ax[1][iy].off;
            if (dxy2 >= r2) break;
            for (int32_t iz = 0; iz < nax[2]; iz++) {
                double d2 = dxy2 + ax[2][iz].off * ax[2][iz].off;
                if (d2 >= r2) break;
                if (ax[0][ix].order + ax[1][iy].order + ax[2][iz].order > max_order) r2 = d2;
            }
        }
    }
    return fmin(e->max_time, sqrt(r2) / sc->c);
}

/* Every image arriving before t_end, into the band accumulators and the arrival histogram. */
static void accumulate(ism_early *e, const ism_hrtf *h, const ism_scene *sc, int32_t max_order, double t_end,
                       axis_img *const ax[3], const int32_t nax[3], ism_early_result *res) {
    const int32_t nb = e->n_bands, len = h->len, P = h->phases;
    const double fs = sc->fs, c = sc->c, reach = c * t_end, r2 = reach * reach;
    const double sin_min_el = sin(h->min_elevation * M_PI / 180.0);
    memset(e->hist, 0, (size_t)nb * (size_t)e->hist_bins * sizeof(double));
    memset(e->hist_count, 0, (size_t)e->hist_bins * sizeof(int32_t));
    for (int32_t i = 0; i < nb * 2; i++)
        memset(e->acc + (size_t)i * (size_t)e->nfft, 0, (size_t)e->acc_len * sizeof(float));
    for (int32_t i = 0; i < 2; i++)
        memset(e->direct + (size_t)i * (size_t)e->nfft, 0, (size_t)e->acc_len * sizeof(float));
    for (int32_t b = 0; b < nb; b++) e->direct_gain[b] = 0.0f;
    for (int32_t ix = 0; ix < nax[0]; ix++) {
        const axis_img *X = &ax[0][ix];
        double dx2 = X->off * X->off;
        if (dx2 >= r2) break;
        if (max_order >= 0 && X->order > max_order) continue;
        for (int32_t iy = 0; iy < nax[1]; iy++) {
            const axis_img *Y = &ax[1][iy];
            double dxy2 = dx2 + Y->off * Y->off;
            if (dxy2 >= r2) break;
            if (max_order >= 0 && X->order + Y->order > max_order) continue;
            double axy[ISM_MAX_BANDS];
            for (int32_t b = 0; b < nb; b++) axy[b] = X->amp[b] * Y->amp[b];
            for (int32_t iz = 0; iz < nax[2]; iz++) {
                const axis_img *Z = &ax[2][iz];
                double d2 = dxy2 + Z->off * Z->off;
                if (d2 >= r2) break;
                int32_t order = X->order + Y->order + Z->order;
                if (max_order >= 0 && order > max_order) continue;
                double d = sqrt(d2), inv_d = 1.0 / d;
                float g[ISM_MAX_BANDS];
                double gmax = 0.0;
                for (int32_t b = 0; b < nb; b++) {
                    double air = sc->air_m[b] > 0.0 ? exp(-0.5 * sc->air_m[b] * d) : 1.0;
                    double gb = axy[b] * Z->amp[b] * air * inv_d;
                    g[b] = (float)gb;
                    gmax = fmax(gmax, gb);
                }
                if (!(gmax > 0.0)) continue;
                /* Habitat (x right, y up, −z front) → SOFA (x front, y left, z up) */
                int32_t m = ism_hrtf_nearest(h, -Z->off, -X->off, Y->off);
                double tau = d / c;
                double s = tau * fs - h->onset + (double)e->margin;
                double kf = floor(s);
                int32_t q = (int32_t)lrint((s - kf) * (double)P);
                int64_t k = (int64_t)kf;
                if (q >= P) {
                    q = 0;
                    k++;
                }
                for (int32_t ear = 0; ear < 2; ear++) {
                    const float *hr = ism_hrtf_ir(h, m, q, ear);
                    if (order == 0) { /* kept apart: the tail level is read on the reflections alone */
                        memcpy(e->direct + (size_t)ear * (size_t)e->nfft + (size_t)k, hr, (size_t)len * sizeof(float));
                        continue;
                    }
                    for (int32_t b = 0; b < nb; b++)
                        axpy(e->acc + ((size_t)b * 2 + (size_t)ear) * (size_t)e->nfft + (size_t)k, g[b], hr, len);
                }
                res->n_images++;
                if (Y->off < sin_min_el * d) res->n_below++;
                if (order > res->max_order) res->max_order = order;
                if (order == 0) {
                    for (int32_t b = 0; b < nb; b++) e->direct_gain[b] = g[b];
                    res->direct_distance = d;
                    res->direct_delay = tau;
                    res->direct_hrir = m;
                } else {
                    int32_t bin = (int32_t)(tau / e->hist_dt);
                    if (bin >= e->hist_bins) bin = e->hist_bins - 1;
                    const float *be = e->band_energy + (size_t)m * (size_t)nb;
                    for (int32_t b = 0; b < nb; b++)
                        e->hist[(size_t)b * (size_t)e->hist_bins + (size_t)bin] += (double)g[b] * g[b] * be[b];
                    e->hist_count[bin]++;
                }
            }
        }
    }
}

/* The tail-level window [*w0, w1) ending at w1, at least `window` long and
 * widened (in histogram bins) until it holds ISM_TAIL_MIN_IMAGES reflections
 * or reaches `floor`. Returns the number of reflections in it. */
static int32_t pick_window(const ism_early *e, double w1, double window, double floor, double *w0) {
    int32_t last = (int32_t)ceil(w1 / e->hist_dt) - 1, count = 0;
    if (last >= e->hist_bins) last = e->hist_bins - 1;
    double start = w1;
    for (int32_t i = last; i >= 0; i--) {
        double t0 = fmax(i * e->hist_dt, floor);
        if (t0 >= w1) continue;
        start = t0;
        count += e->hist_count[i];
        if ((w1 - start >= window - 1e-12 && count >= ISM_TAIL_MIN_IMAGES) || t0 <= floor) break;
    }
    *w0 = start;
    return count;
}

/* Fallback level: arrival energy of the reflections in [w0, t_end), each bin decayed to t_end. */
static void estimated_rate(const ism_early *e, const ism_scene *sc, double w0, double t_end, double *rate) {
    for (int32_t b = 0; b < e->n_bands; b++) rate[b] = 0.0;
    if (!(t_end > w0)) return;
    int32_t first = (int32_t)floor(w0 / e->hist_dt), last = (int32_t)ceil(t_end / e->hist_dt) - 1;
    if (last >= e->hist_bins) last = e->hist_bins - 1;
    for (int32_t i = first < 0 ? 0 : first; i <= last; i++) {
        double t0 = fmax(i * e->hist_dt, w0), t1 = fmin((i + 1) * e->hist_dt, t_end);
        double centre = 0.5 * (t0 + t1);
        for (int32_t b = 0; b < e->n_bands; b++) {
            double k = sc->acoustics.decay[b];
            double w = isfinite(k) ? exp(-k * (t_end - centre)) : 0.0;
            rate[b] += e->hist[(size_t)b * (size_t)e->hist_bins + (size_t)i] * w;
        }
    }
    for (int32_t b = 0; b < e->n_bands; b++) rate[b] /= (t_end - w0);
}

/* Σ_t y(t)²·e^(−k·(t_end − t)) over the samples of [w0, w1) of one band signal (time 0 at index margin). */
static double decayed_energy(const ism_early *e, const float *y, double fs, double w0, double w1, double t_end,
                             double k) {
    if (!isfinite(k)) return 0.0;
    int64_t i0 = (int64_t)ceil(w0 * fs), i1 = (int64_t)ceil(w1 * fs);
    double w = exp(-k * (t_end - (double)i0 / fs)), step = exp(k / fs), sum = 0.0;
    for (int64_t i = i0; i < i1; i++) {
        double v = y[e->margin + i];
        sum += v * v * w;
        w *= step;
    }
    return sum;
}

bp_status ism_early_render(ism_early *e, const ism_hrtf *h, const ism_scene *sc, int32_t max_order, double tail_window,
                           float *out, int64_t n, ism_early_result *res, bp_error *err) {
    const int32_t nb = e->n_bands, nbin = e->nfft / 2 + 1;
    const double fs = sc->fs;
    memset(res, 0, sizeof *res);
    res->direct_hrir = -1;
    axis_img *ax[3] = {NULL, NULL, NULL};
    int32_t nax[3] = {0, 0, 0};
    bp_status st = BP_OK;

    /* how many images: those within c·max_time, and at most the lattice points of order <= max_order */
    double reach = sc->c * e->max_time;
    double est = 4.0 * M_PI * reach * reach * reach / (3.0 * sc->acoustics.volume);
    if (max_order >= 0) {
        double n_ord = (double)max_order;
        est = fmin(est, (2.0 * n_ord + 1.0) * (2.0 * n_ord * n_ord + 2.0 * n_ord + 3.0) / 3.0);
    }
    if (est > ISM_MAX_IMAGES)
        return bp_error_set(err, BP_ERR_INVALID,
                            "ism_binaural: max_time_s = %g s and max_order %d need about %.3g image sources in this "
                            "%gx%gx%g m room (limit %.3g): lower max_time_s or max_order",
                            e->max_time, (int)max_order, est, sc->size[0], sc->size[1], sc->size[2], ISM_MAX_IMAGES);
    /* with a tail, the early part ends where it stops being complete (the first image of order
       max_order + 1, which needs per-axis orders up to max_order + 1); without one, every image of order
       <= max_order before max_time stays */
    const int complete = tail_window > 0.0;
    const int64_t max_hits = max_order < 0 ? -1 : (int64_t)max_order + (complete ? 1 : 0);
    for (int32_t a = 0; a < 3 && st == BP_OK; a++) st = axis_images(sc, a, reach, max_hits, &ax[a], &nax[a], err);
    if (st != BP_OK) goto done;
    const double t_end = complete ? early_end(e, sc, max_order, ax, nax) : e->max_time;
    res->t_end = t_end;
    accumulate(e, h, sc, max_order, t_end, ax, nax, res);

    /* where the tail level is read: the last complete window of the reflections */
    int measure = 0;
    double w0 = 0.0, w1 = t_end - (double)e->half / fs;
    if (tail_window > 0.0) {
        if (w1 - tail_window >= 0.0) {
            res->tail_window_images = pick_window(e, w1, tail_window, 0.0, &w0);
            measure = 1;
        } else {
            res->tail_window_images = pick_window(e, t_end, tail_window, 0.0, &w0);
            estimated_rate(e, sc, w0, t_end, res->tail_rate);
            res->tail_window = t_end - w0;
            res->tail_window_end = t_end;
        }
    }

    /* band filters: Σ_b h_b ⊛ acc_b per ear, by FFT (and each band alone in the tail window) */
    const int64_t avail = (int64_t)e->acc_len + e->half - e->margin;
    const int64_t n_out = n < avail ? n : avail;
    const float scale = 1.0f / (float)e->nfft;
    double band_sum[ISM_MAX_BANDS] = {0};
    /* the direct path's band gains as one filter: Σ_b g_b·H_b */
    for (int32_t k = 0; k < nbin; k++) {
        float gk = 0.0f;
        for (int32_t b = 0; b < nb; b++) gk += e->direct_gain[b] * e->resp[(size_t)b * (size_t)nbin + (size_t)k];
        e->direct_resp[k] = gk;
    }
    for (int32_t ear = 0; ear < 2; ear++) {
        fftwf_complex *sum = e->sum + (size_t)ear * (size_t)nbin;
        ism_fft_exec(&e->fwd, e->direct + (size_t)ear * (size_t)e->nfft, e->spec);
        for (int32_t k = 0; k < nbin; k++) {
            sum[k][0] = e->direct_resp[k] * e->spec[k][0];
            sum[k][1] = e->direct_resp[k] * e->spec[k][1];
        }
        for (int32_t b = 0; b < nb; b++) {
            ism_fft_exec(&e->fwd, e->acc + ((size_t)b * 2 + (size_t)ear) * (size_t)e->nfft, e->spec);
            const float *r = e->resp + (size_t)b * (size_t)nbin;
            for (int32_t k = 0; k < nbin; k++) {
                sum[k][0] += r[k] * e->spec[k][0];
                sum[k][1] += r[k] * e->spec[k][1];
            }
            if (measure) {
                for (int32_t k = 0; k < nbin; k++) {
                    e->prod[k][0] = r[k] * e->spec[k][0] * scale;
                    e->prod[k][1] = r[k] * e->spec[k][1] * scale;
                }
                ism_fft_exec(&e->inv, e->prod, e->band_time);
                band_sum[b] += decayed_energy(e, e->band_time, fs, w0, w1, t_end, sc->acoustics.decay[b]);
            }
        }
        ism_fft_exec(&e->inv, sum, e->time);
        float *o = out + (size_t)ear * (size_t)n;
        for (int64_t t = 0; t < n_out; t++) o[t] += e->time[e->margin + t] * scale;
    }
    if (measure) {
        /* per second and ear, in units of the HRIRs' diffuse-field band energy */
        for (int32_t b = 0; b < nb; b++)
            res->tail_rate[b] =
                e->mean_band_energy[b] > 0.0 ? band_sum[b] / (2.0 * (w1 - w0) * e->mean_band_energy[b]) : 0.0;
        res->tail_window = w1 - w0;
        res->tail_window_end = w1;
        res->tail_measured = 1;
    }

done:
    for (int32_t a = 0; a < 3; a++) free(ax[a]);
    return st;
}
