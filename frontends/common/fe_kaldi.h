/* frontends/common — Kaldi-compatible log mel filterbank, as computed by
 * torchaudio.compliance.kaldi.fbank (the AudioMAE front end) with
 * dither = 0, snip_edges = true, use_energy = false, use_power = true,
 * use_log_fbank = true, remove_dc_offset = true, no VTLN:
 *
 *   frame t = x[t*shift .. t*shift + len) (len = rate * 25 ms, shift = rate * 10 ms;
 *             1 + (n - len) / shift frames, none if n < len)
 *   -> minus its mean -> pre-emphasis y[i] = x[i] - 0.97 x[i-1], y[0] = x[0] - 0.97 x[0]
 *   -> times the window ("hanning": symmetric Hann 0.5 - 0.5 cos(2 pi i / (len - 1)))
 *   -> zero-padded to the next power of two (512) -> |rfft|^2
 *   -> @ Kaldi mel banks -> ln(max(., FLT_EPSILON)).
 *
 * Kaldi mel banks: mel(f) = 1127 ln(1 + f / 700); n_mels + 2 points equally
 * spaced in mel between low_freq (20 Hz) and high_freq (<= 0: Nyquist +
 * high_freq); bin k (frequency k * rate / n_fft, k < n_fft / 2; the Nyquist
 * bin has weight 0) gets max(0, min(up, down)) with the slopes measured in
 * mel. Frame preparation runs in double, the FFT in float32. */
#ifndef BP_FE_KALDI_H
#define BP_FE_KALDI_H

#include <stdint.h>

#include "batpipe/error.h"
#include "fe_fft.h"
#include "fe_mel.h"

typedef struct bp_fe_kaldi {
    double sample_rate;
    int32_t frame_len;    /* 400 at 16 kHz */
    int32_t frame_shift;  /* 160 at 16 kHz */
    int32_t n_fft;        /* 512 */
    int32_t n_mels;       /* 128 */
    double preemph;       /* 0.97 */
    double *window;       /* [frame_len], owned */
    bp_fe_mel banks;      /* Kaldi triangles (not Slaney) in the sparse layout */
    bp_fe_fft fft;
} bp_fe_kaldi;

/* Kaldi mel scale. */
double bp_fe_mel_kaldi(double hz);

/* Kaldi mel banks for n_fft bins of a signal at sample_rate into `mel`
 * (layout of fe_mel.h; bins n_fft/2 (Nyquist) gets weight 0). */
bp_status bp_fe_mel_init_kaldi(bp_fe_mel *mel, double sample_rate, int32_t n_fft, int32_t n_mels, double low_freq,
                               double high_freq, bp_error *err);

bp_status bp_fe_kaldi_init(bp_fe_kaldi *k, double sample_rate, int32_t n_mels, const char *what, bp_error *err);
void bp_fe_kaldi_free(bp_fe_kaldi *k);

/* Frames for n samples (snip_edges). */
static inline int64_t bp_fe_kaldi_frames(const bp_fe_kaldi *k, int64_t n) {
    return n < k->frame_len ? 0 : 1 + (n - k->frame_len) / k->frame_shift;
}

/* Floats of FFTW-aligned scratch one bp_fe_kaldi_frame call needs. */
size_t bp_fe_kaldi_scratch_floats(const bp_fe_kaldi *k);
/* Log filterbank of frame t of x[n] into out[n_mels]. */
void bp_fe_kaldi_frame(const bp_fe_kaldi *k, const float *x, int64_t t, float *scratch, float *out);

#endif /* BP_FE_KALDI_H */
