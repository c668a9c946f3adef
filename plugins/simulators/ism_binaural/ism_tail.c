/* ism_binaural — the diffuse late tail (see ism_tail.h). */
#include "ism_tail.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ism_rng.h"
#include "ism_simd.h"

bp_status ism_tail_init(ism_tail *t, const ism_bands *bands, double fs, bp_error *err) {
    memset(t, 0, sizeof *t);
    t->frame = ism_fft_size_at_least((int64_t)ceil(0.016 * fs));
    t->hop = t->frame / 2;
    t->half = bands->half;
    t->nfft = ism_fft_size_at_least((int64_t)t->frame + 2 * (int64_t)bands->half);
    t->n_bands = bands->n;
    const int32_t nbin = t->nfft / 2 + 1;
    t->win = malloc((size_t)t->frame * sizeof(float));
    t->resp = malloc((size_t)bands->n * (size_t)nbin * sizeof(float));
    t->gain = malloc((size_t)nbin * sizeof(float));
    t->buf = ism_fft_alloc((size_t)t->nfft * sizeof(fftwf_complex));
    t->spec = ism_fft_alloc((size_t)t->nfft * sizeof(fftwf_complex));
    if (!t->win || !t->resp || !t->gain || !t->buf || !t->spec) {
        ism_tail_free(t);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for the tail");
    }
    for (int32_t i = 0; i < t->frame; i++) t->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / t->frame));
    bp_status st = ism_bands_response(bands, t->nfft, t->resp, err);
    if (st == BP_OK) st = ism_fft_init(&t->fwd, t->nfft, ISM_FFT_C2C_FWD, err);
    if (st == BP_OK) st = ism_fft_init(&t->inv, t->nfft, ISM_FFT_C2C_INV, err);
    if (st != BP_OK) ism_tail_free(t);
    return st;
}

void ism_tail_free(ism_tail *t) {
    if (!t) return;
    ism_fft_free(&t->fwd);
    ism_fft_free(&t->inv);
    free(t->win);
    free(t->resp);
    free(t->gain);
    ism_fft_dealloc(t->buf);
    ism_fft_dealloc(t->spec);
    free(t->noise);
    memset(t, 0, sizeof *t);
}

/* y[i] += a·x[i] */
ISM_MULTIARCH static void axpy(float *restrict y, float a, const float *restrict x, int32_t n) {
    for (int32_t i = 0; i < n; i++) y[i] += a * x[i];
}

bp_status ism_tail_render(ism_tail *t, const ism_hrtf *h, const ism_scene *sc, const ism_tail_args *args, float *out,
                          int64_t n, ism_tail_result *res, bp_error *err) {
    const int32_t nb = t->n_bands, frame = t->frame, hop = t->hop, half = t->half, nfft = t->nfft;
    const int32_t nbin = nfft / 2 + 1, len = h->len;
    const double fs = sc->fs, T = args->t_start;
    memset(res, 0, sizeof *res);

    /* how long: until every band is floor_db below its start (or the output ends) */
    double dur = 0.0;
    for (int32_t b = 0; b < nb; b++) {
        double k = sc->acoustics.decay[b];
        if (!(args->rate[b] > 0.0) || !isfinite(k)) continue;
        dur = fmax(dur, k > 0.0 ? args->floor_db * log(10.0) / 10.0 / k : INFINITY);
    }
    double t_end = fmin(T + dur, (double)n / fs);
    if (!(t_end > T)) return BP_OK;
    res->t_end = t_end;

    /* Dirac noise over absolute samples [base, base + span) */
    const int64_t base = (int64_t)floor(T * fs - h->onset) - frame;
    const int64_t stop = (int64_t)ceil(t_end * fs) + len + 1; /* exclusive: last sample the Diracs reach */
    const int64_t span = stop - base + 2 * (int64_t)frame;
    if (span > t->cap) {
        float *grown = realloc(t->noise, 2 * (size_t)span * sizeof(float));
        if (!grown) return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for a %.3g s tail", t_end - T);
        t->noise = grown;
        t->cap = span;
    }
    float *nl = t->noise, *nr = t->noise + span;
    memset(nl, 0, (size_t)span * sizeof(float));
    memset(nr, 0, (size_t)span * sizeof(float));
    ism_rng rng;
    ism_rng_seed(&rng, args->seed);
    const double c3v = 4.0 * M_PI * sc->c * sc->c * sc->c / sc->acoustics.volume;
    double time = T;
    int64_t first = -1; /* noise index of the first Dirac: nothing can come out before first − half */
    for (;;) {
        double rho = fmin(c3v * time * time, args->density_max);
        time += -log(ism_rng_open01(&rng)) / rho;
        if (time >= t_end) break;
        uint64_t r = ism_rng_next(&rng);
        float a = (float)((r & 1u ? 1.0 : -1.0) / sqrt(rho));
        int32_t m = h->tail_dirs[(r >> 1) % ISM_TAIL_DIRS];
        int64_t pos = (int64_t)floor(time * fs - h->onset) - base;
        if (first < 0) first = pos;
        axpy(nl + pos, a, ism_hrtf_ir(h, m, 0, 0), len);
        axpy(nr + pos, a, ism_hrtf_ir(h, m, 0, 1), len);
        res->n_diracs++;
    }

    if (first < 0) return BP_OK;

    /* shape frame by frame: Hann frames (sum 1 at hop frame/2), linear convolution by zero padding */
    const float norm = 1.0f / (float)nfft; /* FFTW is unnormalised */
    float *ol = out, *orr = out + n;
    for (int64_t f0 = base; f0 < stop; f0 += hop) {
        int64_t off = f0 - base;
        memset(t->buf, 0, (size_t)nfft * sizeof(fftwf_complex));
        for (int32_t i = 0; i < frame; i++) {
            t->buf[half + i][0] = nl[off + i] * t->win[i];
            t->buf[half + i][1] = nr[off + i] * t->win[i];
        }
        double tc = (double)(f0 + frame / 2) / fs;
        double amp[ISM_MAX_BANDS];
        for (int32_t b = 0; b < nb; b++) {
            double k = sc->acoustics.decay[b];
            amp[b] = args->rate[b] > 0.0 && isfinite(k) ? sqrt(args->rate[b]) * exp(-0.5 * k * fmax(0.0, tc - T)) : 0.0;
        }
        for (int32_t k = 0; k < nbin; k++) {
            double g = 0.0;
            for (int32_t b = 0; b < nb; b++) g += t->resp[(size_t)b * (size_t)nbin + (size_t)k] * amp[b];
            t->gain[k] = (float)g * norm;
        }
        ism_fft_exec(&t->fwd, t->buf, t->spec);
        for (int32_t k = 0; k < nfft; k++) {
            float g = t->gain[k <= nfft / 2 ? k : nfft - k];
            t->spec[k][0] *= g;
            t->spec[k][1] *= g;
        }
        ism_fft_exec(&t->inv, t->spec, t->buf);
        /* buf[i] is the output at f0 − half + i */
        int64_t s0 = f0 - half;
        /* (only rounding noise lies outside the convolution's support: leave it out) */
        int64_t lo = base + first - half, i0 = s0 < lo ? lo - s0 : 0, i1 = s0 + nfft > n ? n - s0 : nfft;
        if (i0 < -s0) i0 = -s0;
        for (int64_t i = i0; i < i1; i++) {
            ol[s0 + i] += t->buf[i][0];
            orr[s0 + i] += t->buf[i][1];
        }
    }
    return BP_OK;
}
