/* frontends/common — short-time Fourier transform of a centred signal.
 *
 * Frames of n_fft samples every `hop` samples over a signal that was
 * reflect-padded by n_fft / 2 at both ends (librosa/torch center=True), each
 * multiplied by a periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / n_fft)
 * and transformed with FFTW's r2c (numpy rfft sign: X[k] = sum x[n] w[n]
 * e^{-2 pi i n k / n_fft}). A signal of len samples has 1 + len / hop frames. */
#ifndef BP_FE_STFT_H
#define BP_FE_STFT_H

#include <stdint.h>

#include "fe_fft.h"

typedef struct bp_fe_stft {
    int32_t n_fft;
    int32_t hop;
    int32_t n_bins;  /* n_fft / 2 + 1 */
    float *window;   /* [n_fft], FFTW-aligned, owned */
    bp_fe_fft fft;
} bp_fe_stft;

bp_status bp_fe_stft_init(bp_fe_stft *s, int32_t n_fft, int32_t hop, const char *what, bp_error *err);
void bp_fe_stft_free(bp_fe_stft *s);

static inline int64_t bp_fe_stft_frames(const bp_fe_stft *s, int64_t len) { return 1 + len / s->hop; }

/* Frame t of the padded signal (pad = n_fft / 2 samples on each side):
 * buf (n_fft floats, FFTW-aligned scratch) <- window * padded[t*hop ...],
 * out (n_bins, FFTW-aligned) <- its spectrum. */
static inline void bp_fe_stft_frame(const bp_fe_stft *s, const float *padded, int64_t t, float *buf,
                                    fftwf_complex *out) {
    const float *x = padded + t * (int64_t)s->hop;
    const float *w = s->window;
    for (int32_t n = 0; n < s->n_fft; n++) buf[n] = x[n] * w[n];
    bp_fe_fft_exec(&s->fft, buf, out);
}

#endif /* BP_FE_STFT_H */
