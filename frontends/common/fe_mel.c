/* frontends/common — Slaney mel filterbank (see fe_mel.h). */
#include "fe_mel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fe_simd.h"

/* librosa's Slaney constants: linear below 1 kHz (200/3 Hz per mel), then
 * logarithmic with 27 mels per factor 6.4. */
#define SLANEY_F_SP (200.0 / 3.0)
#define SLANEY_MIN_LOG_HZ 1000.0

static double slaney_logstep(void) { return log(6.4) / 27.0; }

double bp_fe_hz_to_mel_slaney(double hz) {
    double min_log_mel = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;
    if (hz >= SLANEY_MIN_LOG_HZ) return min_log_mel + log(hz / SLANEY_MIN_LOG_HZ) / slaney_logstep();
    return hz / SLANEY_F_SP;
}

double bp_fe_mel_to_hz_slaney(double mel) {
    double min_log_mel = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;
    if (mel >= min_log_mel) return SLANEY_MIN_LOG_HZ * exp(slaney_logstep() * (mel - min_log_mel));
    return SLANEY_F_SP * mel;
}

void bp_fe_mel_free(bp_fe_mel *mel) {
    if (!mel) return;
    free(mel->first);
    free(mel->count);
    free(mel->offset);
    free(mel->weights);
    free(mel->dense);
    memset(mel, 0, sizeof *mel);
}

bp_status bp_fe_mel_init(bp_fe_mel *mel, double sample_rate, int32_t n_fft, int32_t n_mels, double f_min,
                         double f_max, bp_error *err) {
    memset(mel, 0, sizeof *mel);
    if (!(sample_rate > 0) || n_fft < 2 || n_mels < 1 || !(f_min >= 0) || !(f_max > f_min) ||
        f_max > sample_rate / 2)
        return bp_error_set(err, BP_ERR_INVALID,
                            "mel filterbank: invalid settings (rate %g, n_fft %d, %d mels, %g-%g Hz)", sample_rate,
                            (int)n_fft, (int)n_mels, f_min, f_max);
    int32_t n_bins = n_fft / 2 + 1;
    size_t nd = (size_t)n_bins * (size_t)n_mels;
    double *hz = malloc((size_t)(n_mels + 2) * sizeof *hz);
    double *fk = malloc((size_t)n_bins * sizeof *fk);
    mel->first = calloc((size_t)n_mels, sizeof *mel->first);
    mel->count = calloc((size_t)n_mels, sizeof *mel->count);
    mel->offset = calloc((size_t)n_mels, sizeof *mel->offset);
    mel->dense = calloc(nd, sizeof *mel->dense);
    if (!hz || !fk || !mel->first || !mel->count || !mel->offset || !mel->dense) {
        free(hz);
        free(fk);
        bp_fe_mel_free(mel);
        return bp_error_set(err, BP_ERR_NOMEM, "mel filterbank: out of memory");
    }
    mel->n_bins = n_bins;
    mel->n_mels = n_mels;

    /* Band edges: numpy.linspace over the mel range (i * step + start, the
     * last point set to the stop value), mapped back to Hz. */
    double m_lo = bp_fe_hz_to_mel_slaney(f_min), m_hi = bp_fe_hz_to_mel_slaney(f_max);
    double step = (m_hi - m_lo) / (double)(n_mels + 1);
    for (int32_t i = 0; i < n_mels + 2; i++) {
        double m = (i == n_mels + 1) ? m_hi : (double)i * step + m_lo;
        hz[i] = bp_fe_mel_to_hz_slaney(m);
    }
    /* Bin centre frequencies: numpy.fft.rfftfreq(n_fft, 1/sr). */
    double val = 1.0 / ((double)n_fft * (1.0 / sample_rate));
    for (int32_t k = 0; k < n_bins; k++) fk[k] = (double)k * val;

    size_t total = 0;
    for (int32_t m = 0; m < n_mels; m++) {
        double lo_w = hz[m + 1] - hz[m], hi_w = hz[m + 2] - hz[m + 1];
        double enorm = 2.0 / (hz[m + 2] - hz[m]);
        int32_t first = -1, last = -1;
        for (int32_t k = 0; k < n_bins; k++) {
            double lower = -(hz[m] - fk[k]) / lo_w;
            double upper = (hz[m + 2] - fk[k]) / hi_w;
            double t = fmax(0.0, fmin(lower, upper));
            float w = (float)t;
            w = (float)((double)w * enorm);
            mel->dense[(size_t)k * (size_t)n_mels + (size_t)m] = w;
            if (w != 0.0f) {
                if (first < 0) first = k;
                last = k;
            }
        }
        mel->first[m] = first < 0 ? 0 : first;
        mel->count[m] = first < 0 ? 0 : last - first + 1;
        mel->offset[m] = (int32_t)total;
        total += (size_t)mel->count[m];
    }
    free(hz);
    free(fk);
    mel->weights = malloc((total ? total : 1) * sizeof *mel->weights);
    if (!mel->weights) {
        bp_fe_mel_free(mel);
        return bp_error_set(err, BP_ERR_NOMEM, "mel filterbank: out of memory");
    }
    int32_t lo = n_bins, hi = 0;
    for (int32_t m = 0; m < n_mels; m++) {
        for (int32_t j = 0; j < mel->count[m]; j++) {
            int32_t k = mel->first[m] + j;
            mel->weights[mel->offset[m] + j] = mel->dense[(size_t)k * (size_t)n_mels + (size_t)m];
        }
        if (mel->count[m]) {
            if (mel->first[m] < lo) lo = mel->first[m];
            if (mel->first[m] + mel->count[m] > hi) hi = mel->first[m] + mel->count[m];
        }
    }
    mel->bin_lo = lo < hi ? lo : 0;
    mel->bin_hi = lo < hi ? hi : 0;
    return BP_OK;
}

/* One specialisation per map count so that the inner loop is fully unrolled.
 * Every filter is summed in the same order for every map count: even and odd
 * bins of the filter in two partial sums (two independent addition chains),
 * added at the end. So melipd (4 maps) and mel (1 or 2 maps) give the same
 * log-mel bits. */
#define MEL_APPLY_N(NM)                                                                              \
    BP_FE_MULTIARCH static void mel_apply_##NM(const bp_fe_mel *mel, const float *in, float *out) {  \
        const int32_t nm = mel->n_mels;                                                              \
        for (int32_t m = 0; m < nm; m++) {                                                           \
            float a0[NM] = {0}, a1[NM] = {0};                                                        \
            const float *w = mel->weights + mel->offset[m];                                          \
            const float *x = in + (size_t)mel->first[m] * NM;                                        \
            int32_t j = 0, n = mel->count[m];                                                        \
            for (; j + 1 < n; j += 2)                                                                \
                for (int32_t c = 0; c < NM; c++) {                                                   \
                    a0[c] += w[j] * x[(size_t)j * NM + (size_t)c];                                   \
                    a1[c] += w[j + 1] * x[(size_t)(j + 1) * NM + (size_t)c];                         \
                }                                                                                    \
            if (j < n)                                                                               \
                for (int32_t c = 0; c < NM; c++) a0[c] += w[j] * x[(size_t)j * NM + (size_t)c];      \
            for (int32_t c = 0; c < NM; c++) out[(size_t)c * (size_t)nm + (size_t)m] = a0[c] + a1[c]; \
        }                                                                                            \
    }
MEL_APPLY_N(1)
MEL_APPLY_N(2)
MEL_APPLY_N(3)

/* Four interleaved maps (the melipd case): one 4-wide vector per bin, the
 * same operations in the same order as the scalar form. */
typedef float bp_fe_v4f __attribute__((vector_size(16)));

BP_FE_MULTIARCH static void mel_apply_4(const bp_fe_mel *mel, const float *in, float *out) {
    const int32_t nm = mel->n_mels;
    for (int32_t m = 0; m < nm; m++) {
        bp_fe_v4f a0 = {0.0f, 0.0f, 0.0f, 0.0f}, a1 = a0;
        const float *w = mel->weights + mel->offset[m];
        const float *x = in + (size_t)mel->first[m] * 4;
        int32_t j = 0, n = mel->count[m];
        for (; j + 1 < n; j += 2) {
            bp_fe_v4f v0, v1;
            memcpy(&v0, x + (size_t)j * 4, sizeof v0);
            memcpy(&v1, x + (size_t)(j + 1) * 4, sizeof v1);
            a0 += w[j] * v0;
            a1 += w[j + 1] * v1;
        }
        if (j < n) {
            bp_fe_v4f v0;
            memcpy(&v0, x + (size_t)j * 4, sizeof v0);
            a0 += w[j] * v0;
        }
        a0 += a1;
        for (int32_t c = 0; c < 4; c++) out[(size_t)c * (size_t)nm + (size_t)m] = a0[c];
    }
}

BP_FE_MULTIARCH void bp_fe_mel_apply(const bp_fe_mel *mel, const float *in, int32_t n_maps, float *out) {
    switch (n_maps) {
    case 1: mel_apply_1(mel, in, out); break;
    case 2: mel_apply_2(mel, in, out); break;
    case 3: mel_apply_3(mel, in, out); break;
    default: mel_apply_4(mel, in, out); break;
    }
}
