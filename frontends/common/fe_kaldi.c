/* frontends/common — Kaldi-compatible filterbank (see fe_kaldi.h). */
#include "fe_kaldi.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fe_simd.h"
#include "fe_vlog.h"

double bp_fe_mel_kaldi(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }

bp_status bp_fe_mel_init_kaldi(bp_fe_mel *mel, double sample_rate, int32_t n_fft, int32_t n_mels, double low_freq,
                               double high_freq, bp_error *err) {
    memset(mel, 0, sizeof *mel);
    double nyquist = 0.5 * sample_rate;
    if (high_freq <= 0.0) high_freq += nyquist;
    if (!(sample_rate > 0) || n_fft < 2 || n_mels < 1 || !(low_freq >= 0) || !(high_freq > low_freq) ||
        high_freq > nyquist)
        return bp_error_set(err, BP_ERR_INVALID,
                            "kaldi mel banks: invalid settings (rate %g, n_fft %d, %d mels, %g-%g Hz)", sample_rate,
                            (int)n_fft, (int)n_mels, low_freq, high_freq);
    int32_t n_bins = n_fft / 2 + 1;
    mel->first = calloc((size_t)n_mels, sizeof *mel->first);
    mel->count = calloc((size_t)n_mels, sizeof *mel->count);
    mel->offset = calloc((size_t)n_mels, sizeof *mel->offset);
    mel->dense = calloc((size_t)n_bins * (size_t)n_mels, sizeof *mel->dense);
    mel->weights = calloc((size_t)n_bins * (size_t)n_mels, sizeof *mel->weights);
    if (!mel->first || !mel->count || !mel->offset || !mel->dense || !mel->weights) {
        bp_fe_mel_free(mel);
        return bp_error_set(err, BP_ERR_NOMEM, "kaldi mel banks: out of memory");
    }
    mel->n_bins = n_bins;
    mel->n_mels = n_mels;
    double mel_lo = bp_fe_mel_kaldi(low_freq), mel_hi = bp_fe_mel_kaldi(high_freq);
    double delta = (mel_hi - mel_lo) / (double)(n_mels + 1);
    double bin_width = sample_rate / (double)n_fft;
    int32_t total = 0, lo = n_bins, hi = 0;
    for (int32_t m = 0; m < n_mels; m++) {
        double left = mel_lo + (double)m * delta, center = mel_lo + (double)(m + 1) * delta;
        double right = mel_lo + (double)(m + 2) * delta;
        int32_t first = -1, last = -1;
        for (int32_t k = 0; k < n_fft / 2; k++) {
            double mk = bp_fe_mel_kaldi(bin_width * (double)k);
            double up = (mk - left) / (center - left), down = (right - mk) / (right - center);
            float w = (float)fmax(0.0, fmin(up, down));
            mel->dense[(size_t)k * (size_t)n_mels + (size_t)m] = w;
            if (w != 0.0f) {
                if (first < 0) first = k;
                last = k;
            }
        }
        mel->first[m] = first < 0 ? 0 : first;
        mel->count[m] = first < 0 ? 0 : last - first + 1;
        mel->offset[m] = total;
        for (int32_t j = 0; j < mel->count[m]; j++)
            mel->weights[total + j] = mel->dense[(size_t)(mel->first[m] + j) * (size_t)n_mels + (size_t)m];
        total += mel->count[m];
        if (mel->count[m]) {
            if (mel->first[m] < lo) lo = mel->first[m];
            if (mel->first[m] + mel->count[m] > hi) hi = mel->first[m] + mel->count[m];
        }
    }
    mel->bin_lo = lo < hi ? lo : 0;
    mel->bin_hi = lo < hi ? hi : 0;
    return BP_OK;
}

void bp_fe_kaldi_free(bp_fe_kaldi *k) {
    if (!k) return;
    free(k->window);
    bp_fe_mel_free(&k->banks);
    bp_fe_fft_free(&k->fft);
    memset(k, 0, sizeof *k);
}

bp_status bp_fe_kaldi_init(bp_fe_kaldi *k, double sample_rate, int32_t n_mels, const char *what, bp_error *err) {
    memset(k, 0, sizeof *k);
    /* torchaudio: window_size = int(rate * 25 ms), window_shift = int(rate * 10 ms). */
    int32_t len = (int32_t)(sample_rate * 0.025), shift = (int32_t)(sample_rate * 0.010);
    if (len < 2 || shift < 1)
        return bp_error_set(err, BP_ERR_INVALID, "%s: sample rate %g Hz is too low for 25 ms frames", what,
                            sample_rate);
    int32_t n_fft = 1;
    while (n_fft < len) n_fft *= 2;
    k->sample_rate = sample_rate;
    k->frame_len = len;
    k->frame_shift = shift;
    k->n_fft = n_fft;
    k->n_mels = n_mels;
    k->preemph = 0.97;
    k->window = malloc((size_t)len * sizeof *k->window);
    if (!k->window) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", what);
    for (int32_t i = 0; i < len; i++) k->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)(len - 1));
    bp_status st = bp_fe_mel_init_kaldi(&k->banks, sample_rate, n_fft, n_mels, 20.0, 0.0, err);
    if (st == BP_OK) st = bp_fe_fft_init(&k->fft, n_fft, what, err);
    if (st != BP_OK) bp_fe_kaldi_free(k);
    return st;
}

size_t bp_fe_kaldi_scratch_floats(const bp_fe_kaldi *k) {
    /* frame (n_fft) + spectrum (2 * n_bins) + power (n_bins), each 16-float aligned. */
    size_t nb = (size_t)(k->n_fft / 2 + 1);
    return (((size_t)k->n_fft + 15u) & ~(size_t)15u) + ((2 * nb + 15u) & ~(size_t)15u) + ((nb + 15u) & ~(size_t)15u);
}

BP_FE_MULTIARCH void bp_fe_kaldi_frame(const bp_fe_kaldi *k, const float *x, int64_t t, float *scratch, float *out) {
    const int32_t len = k->frame_len, nb = k->n_fft / 2 + 1;
    const float *src = x + t * (int64_t)k->frame_shift;
    float *frame = scratch;
    fftwf_complex *spec = (fftwf_complex *)(scratch + (((size_t)k->n_fft + 15u) & ~(size_t)15u));
    float *power = (float *)spec + ((2 * (size_t)nb + 15u) & ~(size_t)15u);

    double mean = 0.0;
    for (int32_t i = 0; i < len; i++) mean += src[i];
    mean /= (double)len;
    double prev = (double)src[0] - mean; /* replicate padding: y[0] = x[0] - 0.97 x[0] */
    for (int32_t i = 0; i < len; i++) {
        double cur = (double)src[i] - mean;
        frame[i] = (float)((cur - k->preemph * prev) * k->window[i]);
        prev = cur;
    }
    memset(frame + len, 0, (size_t)(k->n_fft - len) * sizeof *frame);
    bp_fe_fft_exec(&k->fft, frame, spec);
    for (int32_t b = k->banks.bin_lo; b < k->banks.bin_hi; b++)
        power[b] = spec[b][0] * spec[b][0] + spec[b][1] * spec[b][1];
    bp_fe_mel_apply(&k->banks, power, 1, out);
    bp_fe_vlog(out, out, k->n_mels, FLT_EPSILON, 1.0f);
}
