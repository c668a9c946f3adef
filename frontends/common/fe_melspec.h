/* frontends/common — the Spatial-AST log-mel (+ IPD) engine shared by the
 * "melipd" and "mel" frontends.
 *
 * For C = 1 or 2 analysed channels of a signal of `len` samples (already
 * chosen, downmixed and padded/truncated by the caller):
 *   STFT (fe_stft.h) -> |X| -> |X| @ mel (fe_mel.h) -> 10 log10(max(., 1e-10))
 *   -> optional BatchNorm (x - mean[c]) / sqrt(var[c] + 1e-5), computed in double;
 * and with `ipd` (C = 2): IPD = angle(X1) - angle(X0) with |X| = 0 taken as
 * phase 0, cos(IPD) @ mel and sin(IPD) @ mel. cos/sin of the phase difference
 * are computed without trigonometry, in double, from the unit phasors:
 *   cos(a1 - a0) = c1 c0 + s1 s0, sin(a1 - a0) = s1 c0 - c1 s0,
 *   (c, s) = (re, im) / |X|, or (1, 0) when re = im = 0,
 * which is the same quantity as cos/sin of the atan2 difference, to double
 * rounding instead of float32 atan2 + cos rounding.
 *
 * Frames are independent; they are spread over n_threads threads (fe_parallel.h) with
 * per-thread scratch, and every output value is computed by the same code in
 * the same order whatever the thread count (bitwise identical results). */
#ifndef BP_FE_MELSPEC_H
#define BP_FE_MELSPEC_H

#include <stdint.h>

#include "batpipe/error.h"
#include "fe_mel.h"
#include "fe_stft.h"

#define BP_FE_BN_EPS 1e-5
#define BP_FE_AMIN 1e-10f

typedef struct bp_fe_melspec_cfg {
    double sample_rate;  /* 32000 */
    int32_t n_fft;       /* 1024 */
    int32_t hop;         /* 320 */
    int32_t n_mels;      /* 128 */
    double f_min, f_max; /* 50, 14000 */
    int32_t n_channels;  /* 1 or 2 */
    int32_t ipd;         /* 1: also the IPD maps (needs n_channels = 2) */
    int32_t n_threads;   /* >= 1 */
    const char *what;    /* component name for messages */
} bp_fe_melspec_cfg;

typedef struct bp_fe_melspec {
    bp_fe_melspec_cfg cfg;
    bp_fe_stft stft;
    bp_fe_mel mel;
    int32_t n_maps;        /* n_channels + 2 * ipd */
    size_t scratch_floats; /* per thread */
    float *scratch;        /* [n_threads * scratch_floats], FFTW-aligned */
    float *padded;         /* [n_channels][padded_len] signal with reflect padding */
    int64_t padded_cap;    /* floats per channel allocated */
} bp_fe_melspec;

/* Where the results go; all [.., T, n_mels] row-major. NULL = not wanted,
 * except `stacked`. */
typedef struct bp_fe_melspec_out {
    float *stacked;    /* [n_maps, T, M]: log-mel of each channel (BatchNorm'd when bn is given), then cos, sin */
    float *logmel_raw; /* [C, T, M] */
    float *logmel_bn;  /* [C, T, M] (only with bn) */
    float *ipd_cos;    /* [T, M] */
    float *ipd_sin;    /* [T, M] */
} bp_fe_melspec_out;

/* BatchNorm running statistics per channel; NULL pointer = no BatchNorm. */
typedef struct bp_fe_bn {
    double mean[2];
    double var[2];
} bp_fe_bn;

bp_status bp_fe_melspec_init(bp_fe_melspec *ms, const bp_fe_melspec_cfg *cfg, bp_error *err);
void bp_fe_melspec_free(bp_fe_melspec *ms);

static inline int64_t bp_fe_melspec_frames(const bp_fe_melspec *ms, int64_t len) {
    return bp_fe_stft_frames(&ms->stft, len);
}
/* Shortest accepted signal: reflect padding needs len > n_fft / 2. */
static inline int64_t bp_fe_melspec_min_len(const bp_fe_melspec *ms) { return ms->cfg.n_fft / 2 + 1; }

/* Make room for signals of `len` samples (also done by load on demand). */
bp_status bp_fe_melspec_reserve(bp_fe_melspec *ms, int64_t len, bp_error *err);
/* Channel c's signal buffer of `len` samples to fill before bp_fe_melspec_run
 * (after a successful reserve of at least len). */
float *bp_fe_melspec_signal(bp_fe_melspec *ms, int32_t c, int64_t len);

/* Analyse the `len` samples per channel written through bp_fe_melspec_signal. */
bp_status bp_fe_melspec_run(bp_fe_melspec *ms, int64_t len, const bp_fe_bn *bn, const bp_fe_melspec_out *out,
                            bp_error *err);

#endif /* BP_FE_MELSPEC_H */
