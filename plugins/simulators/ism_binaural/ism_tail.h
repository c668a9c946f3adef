/* ism_binaural — the diffuse late tail.
 *
 * From the early end T on, a Poisson sequence of Diracs with rate
 * min(4π·c³·t²/V, density_max) and random signs, amplitude 1/√rate (unit
 * energy per second), each through the HRIR of a random direction drawn
 * uniformly over the sphere (ISM_TAIL_DIRS quasi-uniform directions, nearest
 * measurement), forms a binaural noise with the interaural coherence of a
 * diffuse field. It is then shaped per band by a short-time Fourier transform
 * (Hann analysis and synthesis, frames of ~32 ms, hop 1/4): each frame is
 * multiplied by Σ_b H_b(f)·a_b(t), where H_b are the responses of the early
 * part's band filters and a_b(t) = √(rate_b)·e^(−k_b·(t − T)/2) follows the
 * band's Eyring decay from the level that the early part reaches at T. The
 * tail stops once every band is `floor_db` below its starting level. All
 * randomness comes from the request's seed. */
#ifndef ISM_TAIL_H
#define ISM_TAIL_H

#include <stdint.h>

#include "batpipe/error.h"
#include "ism_bands.h"
#include "ism_fft.h"
#include "ism_hrtf.h"
#include "ism_scene.h"

typedef struct ism_tail {
    int32_t frame, hop; /* analysis frame and hop, samples */
    int32_t half;       /* band filter half length */
    int32_t nfft;       /* >= frame + 2·half: linear convolution per frame */
    int32_t n_bands;
    float *win;          /* owned: [frame] periodic Hann */
    float *resp;         /* owned: [n_bands][nfft/2 + 1] band responses */
    float *gain;         /* owned: [nfft/2 + 1] */
    fftwf_complex *buf;  /* owned (FFTW): [nfft] */
    fftwf_complex *spec; /* owned (FFTW): [nfft] */
    ism_fft fwd, inv;
    float *noise; /* owned: [2][cap] Dirac sequence through the HRIRs */
    int64_t cap;
} ism_tail;

typedef struct ism_tail_args {
    double t_start;             /* s: the early end T */
    double rate[ISM_MAX_BANDS]; /* energy per second at T, per band (see ism_early_tail_rate) */
    double density_max;         /* Diracs per second at most */
    double floor_db;            /* stop when every band is this far below its start */
    uint64_t seed;
} ism_tail_args;

typedef struct ism_tail_result {
    double t_end; /* s: last Dirac time bound (0 when there is no tail) */
    int64_t n_diracs;
} ism_tail_result;

bp_status ism_tail_init(ism_tail *t, const ism_bands *bands, double fs, bp_error *err);
void ism_tail_free(ism_tail *t);

/* Add the tail to out[2][n]. */
bp_status ism_tail_render(ism_tail *t, const ism_hrtf *h, const ism_scene *sc, const ism_tail_args *args, float *out,
                          int64_t n, ism_tail_result *res, bp_error *err);

#endif /* ISM_TAIL_H */
