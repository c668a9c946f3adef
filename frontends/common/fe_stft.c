/* frontends/common — STFT set-up (see fe_stft.h). */
#include "fe_stft.h"

#include <math.h>
#include <string.h>

bp_status bp_fe_stft_init(bp_fe_stft *s, int32_t n_fft, int32_t hop, const char *what, bp_error *err) {
    memset(s, 0, sizeof *s);
    if (n_fft < 2 || hop < 1)
        return bp_error_set(err, BP_ERR_INVALID, "%s: invalid STFT size %d / hop %d", what, (int)n_fft, (int)hop);
    s->window = bp_fe_fft_alloc((size_t)n_fft * sizeof(float));
    if (!s->window) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for the STFT window", what);
    /* Periodic Hann (librosa get_window("hann", n, fftbins=True)), in double. */
    for (int32_t n = 0; n < n_fft; n++)
        s->window[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * (double)n / (double)n_fft));
    bp_status st = bp_fe_fft_init(&s->fft, n_fft, what, err);
    if (st != BP_OK) {
        bp_fe_stft_free(s);
        return st;
    }
    s->n_fft = n_fft;
    s->hop = hop;
    s->n_bins = n_fft / 2 + 1;
    return BP_OK;
}

void bp_fe_stft_free(bp_fe_stft *s) {
    if (!s) return;
    bp_fe_fft_dealloc(s->window);
    bp_fe_fft_free(&s->fft);
    memset(s, 0, sizeof *s);
}
