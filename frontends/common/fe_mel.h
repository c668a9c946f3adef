/* frontends/common — the Slaney mel filterbank (librosa 0.10 semantics) and
 * its sparse application.
 *
 * bp_fe_mel_init builds librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax,
 * htk=False, norm="slaney", dtype=float32) value for value: triangles in Hz
 * on a Slaney mel grid, computed in double and stored to float32, then
 * multiplied in double by the Slaney area factor 2 / (hz[m+2] - hz[m]) and
 * stored to float32 again (librosa's in-place float32 multiply).
 *
 * Every filter is a contiguous run of bins, so the matrix is kept as
 * (first bin, count, weights) per filter; `dense` is the same matrix laid
 * out as [n_bins, n_mels] (= Spatial-AST's logmel_extractor.melW). */
#ifndef BP_FE_MEL_H
#define BP_FE_MEL_H

#include <stdint.h>

#include "batpipe/error.h"

typedef struct bp_fe_mel {
    int32_t n_bins;   /* n_fft / 2 + 1 */
    int32_t n_mels;
    int32_t bin_lo;   /* first bin with a non-zero weight in any filter */
    int32_t bin_hi;   /* one past the last such bin (bin_lo = bin_hi = 0 if all zero) */
    int32_t *first;   /* [n_mels] first bin of filter m */
    int32_t *count;   /* [n_mels] number of bins of filter m (may be 0) */
    int32_t *offset;  /* [n_mels] index of filter m's first weight in `weights` */
    float *weights;   /* [sum of counts] */
    float *dense;     /* [n_bins * n_mels], row k = bin k */
} bp_fe_mel;

bp_status bp_fe_mel_init(bp_fe_mel *mel, double sample_rate, int32_t n_fft, int32_t n_mels, double f_min,
                         double f_max, bp_error *err);
void bp_fe_mel_free(bp_fe_mel *mel);

/* Slaney mel scale (librosa hz_to_mel / mel_to_hz with htk=False). */
double bp_fe_hz_to_mel_slaney(double hz);
double bp_fe_mel_to_hz_slaney(double mel);

/* out[j * n_mels + m] = sum_k in[k * n_maps + j] * W[k][m] for j < n_maps
 * (1 <= n_maps <= 4): `n_maps` spectra interleaved per bin, indexed by the
 * absolute bin k (only bins bin_lo..bin_hi-1 are read). Float accumulation in
 * a fixed order. */
void bp_fe_mel_apply(const bp_fe_mel *mel, const float *in, int32_t n_maps, float *out);

#endif /* BP_FE_MEL_H */
