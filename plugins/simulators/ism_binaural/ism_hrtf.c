/* ism_binaural — the measured HRIR set (see ism_hrtf.h). */
#include "ism_hrtf.h"

#include <errno.h>
#include <math.h>
#include <mysofa.h>
#include <samplerate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SINC_HALF 24  /* fractional-delay kernel: 2·SINC_HALF taps */
#define SINC_BETA 8.0 /* Kaiser window parameter */
#define SRC_CHUNK 64  /* channels per libsamplerate call */
#define GRID_STEP 2.0 /* degrees per lookup cell */
#define GRID_NAZ 180
#define GRID_NEL 90
#define ONSET_FRACTION 0.1 /* −20 dB */
#define TRIM_FLOOR 1.0e-6  /* leading/trailing samples below this fraction of the peak are dropped */

/* ------------------------------------------------------------------ file -- */

static bp_status open_sofa(const char *path, struct MYSOFA_HRTF **out, bp_error *err) {
    *out = NULL;
    if (!path || !path[0]) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: hrtf: no SOFA file given");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return bp_error_set(err, e == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO,
                            "ism_binaural: hrtf %s: cannot open the SOFA file (%s)", path, strerror(e));
    }
    fclose(f);
    int e = 0;
    struct MYSOFA_HRTF *s = mysofa_load(path, &e);
    if (!s || e != MYSOFA_OK) {
        if (s) mysofa_free(s);
        return bp_error_set(err, BP_ERR_FORMAT, "ism_binaural: hrtf %s: not a readable SOFA file (libmysofa error %d)",
                            path, e);
    }
    e = mysofa_check(s);
    if (e != MYSOFA_OK) {
        mysofa_free(s);
        return bp_error_set(
            err, BP_ERR_FORMAT,
            "ism_binaural: hrtf %s: not a valid SimpleFreeFieldHRIR SOFA file (libmysofa check error %d)", path, e);
    }
    if (s->R != 2 || s->M < 1 || s->M > 1000000 || s->N < 4 || s->N > 1000000 ||
        s->DataIR.elements != s->M * s->R * s->N || s->SourcePosition.elements != s->M * 3 ||
        s->DataSamplingRate.elements < 1 || !(s->DataSamplingRate.values[0] > 0.0f)) {
        unsigned r = s->R, m = s->M, n = s->N;
        mysofa_free(s);
        return bp_error_set(err, BP_ERR_FORMAT,
                            "ism_binaural: hrtf %s: expected 2 receivers (ears) with M >= 1 measurements of N >= 4 "
                            "taps and a sampling rate, found R = %u, M = %u, N = %u",
                            path, r, m, n);
    }
    mysofa_tocartesian(s);
    if (s->ListenerView.elements >= 3) {
        const float *v = s->ListenerView.values;
        double nv = sqrt((double)v[0] * v[0] + (double)v[1] * v[1] + (double)v[2] * v[2]);
        if (!(nv > 0.0) || v[0] / nv < 0.999) {
            mysofa_free(s);
            return bp_error_set(err, BP_ERR_UNSUPPORTED,
                                "ism_binaural: hrtf %s: ListenerView (%g, %g, %g) is not the SOFA default (1, 0, 0)",
                                path, v[0], v[1], v[2]);
        }
    }
    *out = s;
    return BP_OK;
}

/* Receiver with the larger y (SOFA: +y = left) is the left ear; 0 if unknown. */
static int32_t left_receiver(const struct MYSOFA_HRTF *s) {
    if (s->ReceiverPosition.elements < 6) return 0;
    const float *p = s->ReceiverPosition.values;
    return p[4] > p[1] ? 1 : 0;
}

/* Data.Delay in samples of the file, per receiver or per measurement and receiver. */
static double sofa_delay(const struct MYSOFA_HRTF *s, uint32_t m, uint32_t r) {
    const struct MYSOFA_ARRAY *d = &s->DataDelay;
    if (d->elements == s->R) return d->values[r];
    if (d->elements == s->M * s->R) return d->values[m * s->R + r];
    return 0.0;
}

/* ------------------------------------------------------------ resampling -- */

/* x: [m][2][*lx] at fs, ear 0 = left, file delays applied (rounded to samples of the file). */
static bp_status resample_all(const struct MYSOFA_HRTF *s, const char *path, double fs, ism_resample_quality q,
                              float **x_out, int32_t *lx_out, bp_error *err) {
    const uint32_t m = s->M, n = s->N;
    const int32_t left = left_receiver(s);
    const double fs_file = s->DataSamplingRate.values[0];
    int64_t dmax = 0;
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t r = 0; r < 2; r++) {
            double d = sofa_delay(s, i, r);
            if (!isfinite(d) || d < 0.0 || d > 1.0e5)
                return bp_error_set(err, BP_ERR_FORMAT, "ism_binaural: hrtf %s: Data.Delay %g is not a usable delay",
                                    path, d);
            if ((int64_t)lround(d) > dmax) dmax = (int64_t)lround(d);
        }
    const int64_t frames_in = (int64_t)n + dmax + 16;
    const double ratio = fs / fs_file;
    const int same_rate = fabs(ratio - 1.0) < 1e-12;
    const int64_t lx = same_rate ? frames_in : (int64_t)floor((double)frames_in * ratio);
    float *x = calloc((size_t)m * 2 * (size_t)lx, sizeof(float));
    float *in = calloc((size_t)frames_in * SRC_CHUNK, sizeof(float));
    float *out = calloc((size_t)(lx + 16) * SRC_CHUNK, sizeof(float));
    if (!x || !in || !out) {
        free(x);
        free(in);
        free(out);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: hrtf %s: out of memory while resampling", path);
    }
    const uint32_t total = m * 2;
    for (uint32_t c0 = 0; c0 < total; c0 += SRC_CHUNK) {
        uint32_t nc = total - c0 < SRC_CHUNK ? total - c0 : SRC_CHUNK;
        memset(in, 0, (size_t)frames_in * nc * sizeof(float));
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t mi = (c0 + c) / 2, ear = (c0 + c) % 2;
            uint32_t r = ear == 0 ? (uint32_t)left : (uint32_t)(1 - left);
            const float *src = s->DataIR.values + ((size_t)mi * 2 + r) * n;
            int64_t d = (int64_t)lround(sofa_delay(s, mi, r));
            for (uint32_t k = 0; k < n; k++) in[(size_t)(k + (uint64_t)d) * nc + c] = src[k];
        }
        int64_t got = 0;
        if (same_rate) {
            memcpy(out, in, (size_t)frames_in * nc * sizeof(float));
            got = frames_in;
        } else {
            SRC_DATA d;
            memset(&d, 0, sizeof d);
            d.data_in = in;
            d.input_frames = (long)frames_in;
            d.data_out = out;
            d.output_frames = (long)(lx + 16);
            d.src_ratio = ratio;
            d.end_of_input = 1;
            int e = src_simple(&d, (int)q, (int)nc);
            if (e) {
                free(x);
                free(in);
                free(out);
                return bp_error_set(err, BP_ERR_INTERNAL, "ism_binaural: hrtf %s: resampling %g → %g Hz failed: %s",
                                    path, fs_file, fs, src_strerror(e));
            }
            got = d.output_frames_gen;
        }
        for (uint32_t c = 0; c < nc; c++) {
            float *dst = x + (size_t)(c0 + c) * (size_t)lx;
            for (int64_t k = 0; k < lx && k < got; k++) dst[k] = out[(size_t)k * nc + c];
        }
    }
    free(in);
    free(out);
    *x_out = x;
    *lx_out = (int32_t)lx;
    return BP_OK;
}

/* ------------------------------------------------------------------ phases -- */

static double bessel_i0(double x) {
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    for (int k = 1; k < 60; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

/* Taps t = −SINC_HALF+1 .. SINC_HALF of a delay by frac ∈ [0, 1): y[n] = Σ k[t]·x[n − t]. */
static void frac_kernel(double frac, double *k) {
    double sum = 0.0, i0b = bessel_i0(SINC_BETA);
    for (int t = -SINC_HALF + 1; t <= SINC_HALF; t++) {
        double u = (double)t - frac;
        double s = fabs(u) < 1e-12 ? 1.0 : sin(M_PI * u) / (M_PI * u);
        double r = u / (double)SINC_HALF;
        double w = fabs(r) < 1.0 ? bessel_i0(SINC_BETA * sqrt(1.0 - r * r)) / i0b : 0.0;
        k[t + SINC_HALF - 1] = s * w;
        sum += s * w;
    }
    for (int t = 0; t < 2 * SINC_HALF; t++) k[t] /= sum;
}

/* From x [m][2][lx] build h->ir [m][phases][2][len], trimmed to the support of all IRs. */
static bp_status make_phases(ism_hrtf *h, const float *x, int32_t lx, const char *path, bp_error *err) {
    const int32_t m = h->m, p = h->phases;
    float peak = 0.0f;
    for (size_t i = 0; i < (size_t)m * 2 * (size_t)lx; i++) peak = fmaxf(peak, fabsf(x[i]));
    if (!(peak > 0.0f)) return bp_error_set(err, BP_ERR_FORMAT, "ism_binaural: hrtf %s: every IR is silent", path);
    int32_t first = lx, last = -1;
    for (size_t c = 0; c < (size_t)m * 2; c++) {
        const float *v = x + c * (size_t)lx;
        for (int32_t k = 0; k < lx; k++)
            if (fabsf(v[k]) > TRIM_FLOOR * peak) {
                if (k < first) first = k;
                break;
            }
        for (int32_t k = lx - 1; k >= 0; k--)
            if (fabsf(v[k]) > TRIM_FLOOR * peak) {
                if (k > last) last = k;
                break;
            }
    }
    /* phase q holds y_q[n] = x(n − q/p), n from first − SINC_HALF + 1 (the pre-ringing of the kernel) */
    const int32_t n0 = p > 1 ? first - SINC_HALF + 1 : first;
    const int32_t n1 = p > 1 ? last + SINC_HALF : last; /* inclusive */
    h->len = ((n1 - n0 + 1) + 7) / 8 * 8;
    h->ir = calloc((size_t)m * (size_t)p * 2 * (size_t)h->len, sizeof(float));
    if (!h->ir) return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: hrtf %s: out of memory for the IRs", path);
    double kern[2 * SINC_HALF];
    for (int32_t q = 0; q < p; q++) {
        if (q > 0) frac_kernel((double)q / (double)p, kern);
        for (int32_t mi = 0; mi < m; mi++)
            for (int32_t ear = 0; ear < 2; ear++) {
                const float *v = x + ((size_t)mi * 2 + (size_t)ear) * (size_t)lx;
                float *dst = h->ir + (((size_t)mi * (size_t)p + (size_t)q) * 2 + (size_t)ear) * (size_t)h->len;
                for (int32_t j = 0; j < h->len; j++) {
                    int32_t n = n0 + j;
                    if (q == 0) {
                        dst[j] = n >= 0 && n < lx ? v[n] : 0.0f;
                        continue;
                    }
                    double s = 0.0;
                    for (int32_t t = -SINC_HALF + 1; t <= SINC_HALF; t++) {
                        int32_t i = n - t;
                        if (i >= 0 && i < lx) s += kern[t + SINC_HALF - 1] * (double)v[i];
                    }
                    dst[j] = (float)s;
                }
            }
    }
    return BP_OK;
}

/* Onset of the frontal IR: the first crossing of −20 dB of its peak magnitude
 * (ISO 3382-1's onset rule) on the 1/phases-sample grid that the phases form,
 * linearly interpolated, averaged over both ears; in samples from tap 0 of
 * phase 0. */
static double frontal_onset(const ism_hrtf *h) {
    const int32_t p = h->phases, len = h->len;
    double sum = 0.0;
    for (int32_t ear = 0; ear < 2; ear++) {
        /* tap j of phase q holds the IR at time j − q/p (samples from tap 0 of phase 0) */
        double peak = 0.0;
        for (int32_t q = 0; q < p; q++) {
            const float *v = ism_hrtf_ir(h, h->front, q, ear);
            for (int32_t j = 0; j < len; j++) peak = fmax(peak, fabs((double)v[j]));
        }
        double prev = 0.0, onset = 0.0;
        /* fine-grid index kk = j·p − q: time kk / p */
        for (int64_t kk = -(int64_t)(p - 1); kk <= (int64_t)(len - 1) * p; kk++) {
            int64_t j = kk > 0 ? (kk + p - 1) / p : 0, q = j * p - kk;
            double v = fabs((double)ism_hrtf_ir(h, h->front, (int32_t)q, ear)[j]);
            if (v >= ONSET_FRACTION * peak) {
                double frac = v > prev ? (ONSET_FRACTION * peak - prev) / (v - prev) : 0.0;
                onset = ((double)kk - 1.0 + frac) / (double)p;
                break;
            }
            prev = v;
        }
        sum += onset;
    }
    return 0.5 * sum;
}

/* ------------------------------------------------------------------ lookup -- */

static void dir_of(double az_deg, double el_deg, double v[3]) {
    double az = az_deg * M_PI / 180.0, el = el_deg * M_PI / 180.0;
    v[0] = cos(el) * cos(az);
    v[1] = cos(el) * sin(az);
    v[2] = sin(el);
}

static int32_t nearest_brute(const ism_hrtf *h, const double v[3], double *best_dot) {
    int32_t best = 0;
    double bd = -2.0;
    for (int32_t i = 0; i < h->m; i++) {
        const float *d = h->dir + 3 * (size_t)i;
        double dot = v[0] * d[0] + v[1] * d[1] + v[2] * d[2];
        if (dot > bd) {
            bd = dot;
            best = i;
        }
    }
    if (best_dot) *best_dot = bd;
    return best;
}

static bp_status build_grid(ism_hrtf *h, const char *path, bp_error *err) {
    const int32_t cells = GRID_NAZ * GRID_NEL;
    size_t cap = (size_t)cells * 4, used = 0;
    h->cell_start = malloc(((size_t)cells + 1) * sizeof(int32_t));
    h->cell_cand = malloc(cap * sizeof(int32_t));
    if (!h->cell_start || !h->cell_cand)
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: hrtf %s: out of memory for the lookup grid", path);
    for (int32_t ie = 0; ie < GRID_NEL; ie++) {
        double e0 = -90.0 + GRID_STEP * ie, e1 = e0 + GRID_STEP;
        for (int32_t ia = 0; ia < GRID_NAZ; ia++) {
            double a0 = GRID_STEP * ia, a1 = a0 + GRID_STEP;
            double c[3], pt[3];
            dir_of(0.5 * (a0 + a1), 0.5 * (e0 + e1), c);
            /* cell radius: the farthest of corners and edge midpoints, plus a margin */
            double rad = 0.0;
            const double az_pts[3] = {a0, 0.5 * (a0 + a1), a1}, el_pts[3] = {e0, 0.5 * (e0 + e1), e1};
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    dir_of(az_pts[i], el_pts[j], pt);
                    double dot = c[0] * pt[0] + c[1] * pt[1] + c[2] * pt[2];
                    rad = fmax(rad, acos(fmin(1.0, fmax(-1.0, dot))));
                }
            rad += 1e-4;
            double best;
            nearest_brute(h, c, &best);
            double reach = acos(fmin(1.0, fmax(-1.0, best))) + 2.0 * rad;
            double thr = reach >= M_PI ? -2.0 : cos(reach) - 1e-9;
            h->cell_start[ie * GRID_NAZ + ia] = (int32_t)used;
            for (int32_t i = 0; i < h->m; i++) {
                const float *d = h->dir + 3 * (size_t)i;
                if (c[0] * d[0] + c[1] * d[1] + c[2] * d[2] < thr) continue;
                if (used == cap) {
                    int32_t *grown = realloc(h->cell_cand, 2 * cap * sizeof(int32_t));
                    if (!grown)
                        return bp_error_set(err, BP_ERR_NOMEM,
                                            "ism_binaural: hrtf %s: out of memory for the lookup grid", path);
                    h->cell_cand = grown;
                    cap *= 2;
                }
                h->cell_cand[used++] = i;
            }
        }
    }
    h->cell_start[cells] = (int32_t)used;
    return BP_OK;
}

int32_t ism_hrtf_nearest(const ism_hrtf *h, double x, double y, double z) {
    double az = atan2(y, x) * (180.0 / M_PI);
    if (az < 0.0) az += 360.0;
    double el = atan2(z, hypot(x, y)) * (180.0 / M_PI);
    int32_t ia = (int32_t)(az / GRID_STEP), ie = (int32_t)((el + 90.0) / GRID_STEP);
    if (ia < 0) ia = 0;
    if (ia >= GRID_NAZ) ia = GRID_NAZ - 1;
    if (ie < 0) ie = 0;
    if (ie >= GRID_NEL) ie = GRID_NEL - 1;
    int32_t cell = ie * GRID_NAZ + ia;
    int32_t best = -1;
    double bd = -INFINITY;
    for (int32_t k = h->cell_start[cell]; k < h->cell_start[cell + 1]; k++) {
        int32_t i = h->cell_cand[k];
        const float *d = h->dir + 3 * (size_t)i;
        double dot = x * d[0] + y * d[1] + z * d[2];
        if (dot > bd) {
            bd = dot;
            best = i;
        }
    }
    return best >= 0 ? best : 0;
}

/* ----------------------------------------------------------------- set-up -- */

static void build_tail_dirs(ism_hrtf *h) {
    const double golden = M_PI * (3.0 - sqrt(5.0));
    for (int32_t i = 0; i < ISM_TAIL_DIRS; i++) {
        double z = 1.0 - (2.0 * i + 1.0) / ISM_TAIL_DIRS;
        double r = sqrt(fmax(0.0, 1.0 - z * z)), phi = golden * i;
        h->tail_dirs[i] = ism_hrtf_nearest(h, r * cos(phi), r * sin(phi), z);
    }
}

/* Scale every IR so that the mean energy over both ears and the tail's
 * quasi-uniform directions is 1 (phase 0). */
static void normalise(ism_hrtf *h) {
    double sum = 0.0;
    for (int32_t i = 0; i < ISM_TAIL_DIRS; i++)
        for (int32_t ear = 0; ear < 2; ear++) {
            const float *v = ism_hrtf_ir(h, h->tail_dirs[i], 0, ear);
            for (int32_t j = 0; j < h->len; j++) sum += (double)v[j] * v[j];
        }
    double mean = sum / (2.0 * ISM_TAIL_DIRS);
    float scale = (float)(1.0 / sqrt(mean));
    for (size_t i = 0; i < (size_t)h->m * (size_t)h->phases * 2 * (size_t)h->len; i++) h->ir[i] *= scale;
}

bp_status ism_hrtf_load(ism_hrtf *h, const char *path, double fs, int32_t phases, ism_resample_quality quality,
                        bp_error *err) {
    memset(h, 0, sizeof *h);
    if (phases < 1 || phases > 1024)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: delay_steps %d out of range", (int)phases);
    struct MYSOFA_HRTF *s = NULL;
    bp_status st = open_sofa(path, &s, err);
    if (st != BP_OK) return st;
    h->m = (int32_t)s->M;
    h->phases = phases;
    h->fs = fs;
    h->fs_file = s->DataSamplingRate.values[0];
    h->dir = malloc((size_t)h->m * 3 * sizeof(float));
    h->az = malloc((size_t)h->m * sizeof(float));
    h->el = malloc((size_t)h->m * sizeof(float));
    if (!h->dir || !h->az || !h->el) {
        mysofa_free(s);
        ism_hrtf_free(h);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: hrtf %s: out of memory", path);
    }
    h->min_elevation = 90.0;
    for (int32_t i = 0; i < h->m; i++) {
        const float *p = s->SourcePosition.values + 3 * (size_t)i;
        double x = p[0], y = p[1], z = p[2], r = sqrt(x * x + y * y + z * z);
        if (!(r > 0.0) || !isfinite(r)) {
            mysofa_free(s);
            ism_hrtf_free(h);
            return bp_error_set(err, BP_ERR_FORMAT, "ism_binaural: hrtf %s: measurement %d has no direction", path,
                                (int)i);
        }
        h->dir[3 * i + 0] = (float)(x / r);
        h->dir[3 * i + 1] = (float)(y / r);
        h->dir[3 * i + 2] = (float)(z / r);
        double az = atan2(y, x) * (180.0 / M_PI);
        h->az[i] = (float)(az < 0.0 ? az + 360.0 : az);
        h->el[i] = (float)(atan2(z, hypot(x, y)) * (180.0 / M_PI));
        h->min_elevation = fmin(h->min_elevation, h->el[i]);
    }
    float *x = NULL;
    int32_t lx = 0;
    st = resample_all(s, path, fs, quality, &x, &lx, err);
    mysofa_free(s);
    if (st == BP_OK) st = make_phases(h, x, lx, path, err);
    free(x);
    if (st == BP_OK) st = build_grid(h, path, err);
    if (st != BP_OK) {
        ism_hrtf_free(h);
        return st;
    }
    h->front = ism_hrtf_nearest(h, 1.0, 0.0, 0.0);
    build_tail_dirs(h);
    normalise(h);
    h->onset = frontal_onset(h);
    return BP_OK;
}

void ism_hrtf_free(ism_hrtf *h) {
    if (!h) return;
    free(h->ir);
    free(h->dir);
    free(h->az);
    free(h->el);
    free(h->cell_start);
    free(h->cell_cand);
    memset(h, 0, sizeof *h);
}
