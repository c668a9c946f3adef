/* ism_binaural — the octave-band crossover.
 *
 * n bands with centres hz[0] < … < hz[n−1]. Band shapes are raised cosines
 * in log-frequency: band b rises from hz[b−1] to hz[b] and falls from hz[b]
 * to hz[b+1]; the lowest band extends to DC and the highest to Nyquist, so
 * the magnitudes add up to exactly 1 at every frequency. Each band is a
 * zero-phase FIR of 2·half + 1 taps (the ideal response, Hann-truncated to
 * ±16 ms: the 125 and 250 Hz bands then peak at 0.94 and 0.96 instead of 1);
 * the highest band is δ minus the others, so the taps of all bands
 * sum to a unit impulse: a response whose bands all have the same gain passes
 * unchanged. */
#ifndef ISM_BANDS_H
#define ISM_BANDS_H

#include <stdint.h>

#include "batpipe/error.h"
#include "ism_acoustics.h"

#define ISM_BAND_HALF_S 0.016 /* half length of the band filters, s */

typedef struct ism_bands {
    int32_t n;                /* number of bands */
    double hz[ISM_MAX_BANDS]; /* centre frequencies */
    int32_t half;             /* taps run from −half to +half */
    float *taps;              /* owned: [n][2·half + 1], tap 0 at index half */
} ism_bands;

/* fs: sample rate; hz must be ascending, positive and below fs/2. */
bp_status ism_bands_init(ism_bands *bands, const double *hz, int32_t n, double fs, bp_error *err);
void ism_bands_free(ism_bands *bands);

/* The real (zero-phase) responses of every band at the bins 0..nfft/2 of an
 * nfft-point DFT: out[n][nfft/2 + 1]; nfft >= 2·half + 1. */
bp_status ism_bands_response(const ism_bands *bands, int32_t nfft, float *out, bp_error *err);

#endif /* ISM_BANDS_H */
