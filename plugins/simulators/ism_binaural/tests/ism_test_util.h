/* ism_binaural tests — shared helpers: a simulator from the registry,
 * rooms and requests, stats, and the signal measurements the tests use. */
#ifndef ISM_TEST_UTIL_H
#define ISM_TEST_UTIL_H

#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/registry.h"
#include "batpipe/simulator.h"
#include "bp_test.h"

#define KEMAR "/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa"
#define FS 32000.0

static inline int kemar_present(void) {
    FILE *f = fopen(KEMAR, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* A simulator instance with its parameter set. */
typedef struct test_sim {
    bp_paramset *ps;
    bp_simulator *sim;
} test_sim;

static inline bp_status test_sim_open(bp_registry *reg, const char *const *kv, uint32_t n, test_sim *t, bp_error *err) {
    memset(t, 0, sizeof *t);
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural");
    if (!c) return bp_error_set(err, BP_ERR_NOT_FOUND, "simulator ism_binaural not found");
    bp_status st = bp_paramset_from_strings(c->desc, kv, n, &t->ps, err);
    void *inst = NULL;
    if (st == BP_OK) st = bp_registry_create(reg, c, bp_paramset_params(t->ps), NULL, &inst, err);
    t->sim = inst;
    return st;
}

static inline void test_sim_close(test_sim *t) {
    if (t->sim) t->sim->destroy(t->sim);
    bp_paramset_free(t->ps);
    memset(t, 0, sizeof *t);
}

static inline bp_registry *test_registry(void) {
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    if (bp_registry_new(NULL, &reg, &err) != BP_OK) return NULL;
    bp_registry_scan_default(reg, NULL, &err);
    return reg;
}

/* A room of size lx × ly × lz with the same absorption on every wall and the
 * 7 octave bands 125 Hz … 8 kHz; 20 °C, 50 % RH. */
static inline bp_sim_room test_room(double lx, double ly, double lz, double alpha) {
    bp_sim_room r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.size[0] = lx;
    r.size[1] = ly;
    r.size[2] = lz;
    r.n_bands = 7;
    for (int b = 0; b < 7; b++) {
        r.band_hz[b] = 125.0 * (double)(1 << b);
        for (int w = 0; w < 6; w++) r.absorption[w][b] = alpha;
        r.scattering[b] = 0.1;
    }
    r.temperature_c = 20.0;
    r.humidity = 50.0;
    return r;
}

static inline bp_sim_request test_request(const bp_sim_room *room, const double src[3], const double lis[3],
                                          double seconds, uint64_t seed) {
    bp_sim_request q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.room = room;
    for (int a = 0; a < 3; a++) {
        q.source[a] = src[a];
        q.listener[a] = lis[a];
    }
    q.sample_rate = FS;
    q.max_seconds = seconds;
    q.seed = seed;
    return q;
}

/* The value of a stat of the last render (NAN when absent). */
static inline double test_stat(bp_simulator *sim, const char *name) {
    const char *names[128];
    double values[128];
    uint32_t n = 0;
    bp_error err = BP_ERROR_INIT;
    if (!sim->last_stats || sim->last_stats(sim, names, values, 128, &n, &err) != BP_OK) return NAN;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return values[i];
    return NAN;
}

/* Render and copy the response into a malloc'd [2][n] buffer (NULL on error). */
static inline float *test_render(bp_simulator *sim, const bp_sim_request *q, int64_t *n, bp_error *err) {
    const bp_tensor *rir = NULL;
    if (sim->render(sim, q, &rir, err) != BP_OK) return NULL;
    if (!rir || rir->dtype != BP_DTYPE_F32 || rir->ndim != 2 || rir->shape[0] != 2) {
        bp_error_set(err, BP_ERR_INTERNAL, "render returned a malformed tensor");
        return NULL;
    }
    *n = rir->shape[1];
    float *out = malloc(2 * (size_t)*n * sizeof(float));
    if (out) memcpy(out, rir->data, 2 * (size_t)*n * sizeof(float));
    return out;
}

static inline double test_energy(const float *x, int64_t i0, int64_t i1) {
    double s = 0.0;
    for (int64_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
    return s;
}

/* Onset (ISO 3382-1 style): the first crossing of −20 dB of the peak
 * magnitude, linearly interpolated, in samples. */
static inline double test_onset(const float *x, int64_t n) {
    double peak = 0.0;
    for (int64_t i = 0; i < n; i++) peak = fmax(peak, fabs((double)x[i]));
    double prev = 0.0, thr = 0.1 * peak;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs((double)x[i]);
        if (v >= thr) return (double)i - 1.0 + (v > prev ? (thr - prev) / (v - prev) : 0.0);
        prev = v;
    }
    return NAN;
}

/* Interaural time difference in ms, positive when the right ear leads: the
 * lag (±max_lag samples, parabolic peak) of the cross-correlation of the two
 * ears over [i0, i1). */
static inline double test_itd_ms(const float *left, const float *right, int64_t i0, int64_t i1, int32_t max_lag) {
    double best = -INFINITY, cm = 0, cp = 0;
    int32_t lag_best = 0;
    for (int32_t lag = -max_lag - 1; lag <= max_lag + 1; lag++) {
        double s = 0.0;
        for (int64_t i = i0; i < i1; i++) {
            int64_t j = i + lag;
            if (j >= i0 && j < i1) s += (double)right[i] * left[j];
        }
        if (lag >= -max_lag && lag <= max_lag && s > best) {
            best = s;
            lag_best = lag;
        }
    }
    /* neighbours of the peak for the parabola */
    for (int32_t d = -1; d <= 1; d += 2) {
        double s = 0.0;
        for (int64_t i = i0; i < i1; i++) {
            int64_t j = i + lag_best + d;
            if (j >= i0 && j < i1) s += (double)right[i] * left[j];
        }
        if (d < 0)
            cm = s;
        else
            cp = s;
    }
    double den = cm - 2.0 * best + cp, frac = den != 0.0 ? 0.5 * (cm - cp) / den : 0.0;
    return ((double)lag_best + frac) / FS * 1e3;
}

/* x filtered to the octave band around fc by FFT masking: 1 on [fc/√2, fc·√2),
 * half-octave raised-cosine skirts outside (a brick wall would ring for the
 * whole record and put a floor under the decay); fc = 0: unfiltered copy. */
static inline void test_octave(const float *x, int64_t n, double fc, double *y) {
    int64_t nfft = 1;
    while (nfft < 2 * n) nfft <<= 1;
    double *buf = fftw_malloc((size_t)nfft * sizeof(double));
    fftw_complex *spec = fftw_malloc((size_t)(nfft / 2 + 1) * sizeof(fftw_complex));
    fftw_plan fwd = fftw_plan_dft_r2c_1d((int)nfft, buf, spec, FFTW_ESTIMATE);
    fftw_plan inv = fftw_plan_dft_c2r_1d((int)nfft, spec, buf, FFTW_ESTIMATE);
    for (int64_t i = 0; i < nfft; i++) buf[i] = i < n ? x[i] : 0.0;
    fftw_execute(fwd);
    for (int64_t k = 0; fc > 0.0 && k <= nfft / 2; k++) {
        double f = (double)k * FS / (double)nfft, o = k > 0 ? log2(f / fc) : -INFINITY, g = 1.0;
        if (o < -0.5) g = o > -1.0 ? 0.5 * (1.0 + cos(M_PI * (-0.5 - o) / 0.5)) : 0.0;
        if (o >= 0.5) g = o < 1.0 ? 0.5 * (1.0 + cos(M_PI * (o - 0.5) / 0.5)) : 0.0;
        spec[k][0] *= g;
        spec[k][1] *= g;
    }
    fftw_execute(inv);
    for (int64_t i = 0; i < n; i++) y[i] = buf[i] / (double)nfft;
    fftw_destroy_plan(fwd);
    fftw_destroy_plan(inv);
    fftw_free(buf);
    fftw_free(spec);
}

/* Decay time (s to fall 60 dB) from Schroeder's backward integral of
 * e[0..n): least-squares line through the EDC between hi_db and lo_db
 * (e.g. −5 and −35 for T30). */
static inline double test_schroeder(const double *e, int64_t n, double hi_db, double lo_db) {
    double *edc = malloc((size_t)n * sizeof(double));
    double acc = 0.0;
    for (int64_t i = n - 1; i >= 0; i--) {
        acc += e[i];
        edc[i] = acc;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double db = 10.0 * log10(edc[i] / edc[0]);
        if (db > hi_db || db < lo_db) continue;
        double t = (double)i / FS;
        sx += t;
        sy += db;
        sxx += t * t;
        sxy += t * db;
        m++;
    }
    free(edc);
    if (m < 2) return NAN;
    double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    return -60.0 / slope;
}

#endif /* ISM_TEST_UTIL_H */
