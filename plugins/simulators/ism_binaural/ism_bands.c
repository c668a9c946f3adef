/* ism_binaural — the octave-band crossover (see ism_bands.h). */
#include "ism_bands.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ism_fft.h"

/* Raised-cosine low-pass in log-frequency: 1 at or below f_lo, 0 at or above f_hi. */
static double lowpass_shape(double f, double f_lo, double f_hi) {
    if (f <= f_lo) return 1.0;
    if (f >= f_hi) return 0.0;
    double x = log(f / f_lo) / log(f_hi / f_lo);
    return 0.5 * (1.0 + cos(M_PI * x));
}

/* Magnitude of band b at frequency f: L_b(f) − L_{b−1}(f). */
static double band_shape(const ism_bands *bands, int32_t b, double f) {
    double upper = b < bands->n - 1 ? lowpass_shape(f, bands->hz[b], bands->hz[b + 1]) : 1.0;
    double lower = b > 0 ? lowpass_shape(f, bands->hz[b - 1], bands->hz[b]) : 0.0;
    return upper - lower;
}

bp_status ism_bands_init(ism_bands *bands, const double *hz, int32_t n, double fs, bp_error *err) {
    memset(bands, 0, sizeof *bands);
    if (n < 1 || n > ISM_MAX_BANDS)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: bands: %d bands given, 1 to %d allowed", (int)n,
                            ISM_MAX_BANDS);
    for (int32_t b = 0; b < n; b++) {
        if (!(hz[b] > 0.0) || !(hz[b] < 0.5 * fs))
            return bp_error_set(err, BP_ERR_INVALID,
                                "ism_binaural: bands: %g Hz is not between 0 and the Nyquist frequency %g Hz", hz[b],
                                0.5 * fs);
        if (b > 0 && !(hz[b] > hz[b - 1]))
            return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: bands: must be ascending (%g Hz after %g Hz)",
                                hz[b], hz[b - 1]);
        bands->hz[b] = hz[b];
    }
    bands->n = n;
    bands->half = (int32_t)lround(ISM_BAND_HALF_S * fs);
    const int32_t half = bands->half, len = 2 * half + 1;
    /* dense grid: the ideal zero-phase response, transformed back */
    const int32_t ng = ism_fft_size_at_least(8 * (int64_t)len); /* bins of fs/ng ≈ fs/(16·half) Hz */
    bands->taps = calloc((size_t)n * (size_t)len, sizeof(float));
    fftwf_complex *spec = ism_fft_alloc((size_t)(ng / 2 + 1) * sizeof(fftwf_complex));
    float *imp = ism_fft_alloc((size_t)ng * sizeof(float));
    if (!bands->taps || !spec || !imp) {
        ism_fft_dealloc(spec);
        ism_fft_dealloc(imp);
        ism_bands_free(bands);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the band filters");
    }
    ism_fft inv;
    bp_status st = ism_fft_init(&inv, ng, ISM_FFT_C2R, err);
    for (int32_t b = 0; st == BP_OK && b < n - 1; b++) {
        for (int32_t k = 0; k <= ng / 2; k++) {
            spec[k][0] = (float)band_shape(bands, b, (double)k * fs / (double)ng);
            spec[k][1] = 0.0f;
        }
        ism_fft_exec(&inv, spec, imp);
        float *t = bands->taps + (size_t)b * (size_t)len;
        for (int32_t i = -half; i <= half; i++) {
            double w = 0.5 * (1.0 + cos(M_PI * (double)i / (double)(half + 1)));
            t[half + i] = (float)(w * imp[(i + ng) % ng] / (double)ng);
        }
    }
    ism_fft_free(&inv);
    ism_fft_dealloc(spec);
    ism_fft_dealloc(imp);
    if (st != BP_OK) {
        ism_bands_free(bands);
        return st;
    }
    /* the highest band completes the unit impulse */
    float *top = bands->taps + (size_t)(n - 1) * (size_t)len;
    for (int32_t i = 0; i < len; i++) {
        double s = i == half ? 1.0 : 0.0;
        for (int32_t b = 0; b < n - 1; b++) s -= bands->taps[(size_t)b * (size_t)len + (size_t)i];
        top[i] = (float)s;
    }
    return BP_OK;
}

void ism_bands_free(ism_bands *bands) {
    if (!bands) return;
    free(bands->taps);
    memset(bands, 0, sizeof *bands);
}

bp_status ism_bands_response(const ism_bands *bands, int32_t nfft, float *out, bp_error *err) {
    const int32_t half = bands->half, len = 2 * half + 1, nb = nfft / 2 + 1;
    if (nfft < len)
        return bp_error_set(err, BP_ERR_INTERNAL,
                            "ism_binaural: FFT size %d is shorter than the band filters (%d taps)", (int)nfft,
                            (int)len);
    float *buf = ism_fft_alloc((size_t)nfft * sizeof(float));
    fftwf_complex *spec = ism_fft_alloc((size_t)nb * sizeof(fftwf_complex));
    if (!buf || !spec) {
        ism_fft_dealloc(buf);
        ism_fft_dealloc(spec);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the band responses");
    }
    ism_fft fwd;
    bp_status st = ism_fft_init(&fwd, nfft, ISM_FFT_R2C, err);
    for (int32_t b = 0; st == BP_OK && b < bands->n; b++) {
        const float *t = bands->taps + (size_t)b * (size_t)len + half;
        memset(buf, 0, (size_t)nfft * sizeof(float));
        for (int32_t i = -half; i <= half; i++) buf[(i + nfft) % nfft] = t[i];
        ism_fft_exec(&fwd, buf, spec);
        for (int32_t k = 0; k < nb; k++) out[(size_t)b * (size_t)nb + (size_t)k] = spec[k][0];
    }
    ism_fft_free(&fwd);
    ism_fft_dealloc(buf);
    ism_fft_dealloc(spec);
    return st;
}
