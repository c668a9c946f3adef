/* ism_binaural — the early part: shoebox image sources through the nearest
 * measured HRIR, per octave band.
 *
 * Every image source (Allen & Berkley lattice) that arrives before the early
 * end T contributes, per band b, g_b = Π_walls β_wall,b^hits · e^(−m_b·d/2) / d
 * times the HRIR of its direction, fractionally delayed to d/c. Because the
 * band filters are linear and time-invariant, the images are accumulated per
 * band and ear into plain buffers (a few scaled additions per image), and the
 * band filters are applied once per render by FFT: Σ_b h_b ⊛ acc_b equals
 * the sum over images of the HRIR through the band-gain filter Σ_b g_b·h_b.
 *
 * T is max_time_s. With a tail, T moves earlier when max_order leaves out an
 * image that would arrive before it, so that the early part is complete up
 * to T and the tail takes over from there; without a tail every image of
 * order <= max_order arriving before max_time_s is kept.
 *
 * The direct path is accumulated apart (its band gains applied as one
 * filter), so that the level of the tail can be read on the reflections
 * alone: per band, the energy of the reflections' band-b signal
 * (h_b ⊛ acc_b, ears averaged) in the early part's last complete window —
 * [T − half − W, T − half), where `half` is the band filters' half length,
 * the last stretch that no image after T would have reached — decayed to T
 * at the band's Eyring rate and divided by the HRIRs' diffuse-field band
 * energy. This is the measured level of the rendered early part, coherent
 * sums of reflections included. W is tail_window_s, widened until the window
 * holds ISM_TAIL_MIN_IMAGES reflections. When T is too short for such a
 * window the level is estimated from the arrival energy of the reflections
 * before T instead. */
#ifndef ISM_EARLY_H
#define ISM_EARLY_H

#include <stdint.h>

#include "batpipe/error.h"
#include "ism_bands.h"
#include "ism_fft.h"
#include "ism_hrtf.h"
#include "ism_scene.h"

#define ISM_MAX_IMAGES 2.0e7   /* a render that would need more image sources is refused */
#define ISM_TAIL_MIN_IMAGES 16 /* the tail-level window widens until it holds this many images */

typedef struct ism_early {
    int32_t n_bands;
    int32_t margin;  /* accumulator index of time 0 */
    int32_t acc_len; /* accumulator samples that renders may touch */
    int32_t nfft;
    int32_t half;        /* band filter half length */
    double max_time;     /* s */
    float *acc;          /* owned (FFTW): [n_bands][2][nfft] */
    float *resp;         /* owned: [n_bands][nfft/2 + 1] band responses */
    fftwf_complex *spec; /* owned (FFTW): [nfft/2 + 1] */
    fftwf_complex *sum;  /* owned (FFTW): [2][nfft/2 + 1] */
    float *time;         /* owned (FFTW): [nfft] */
    ism_fft fwd, inv;
    float *band_energy; /* owned: [m][n_bands] HRIR band energy (ears averaged) / its diffuse-field mean */
    double mean_band_energy[ISM_MAX_BANDS]; /* diffuse-field mean band energy of the HRIRs (ears averaged) */
    fftwf_complex *prod;                    /* owned (FFTW): [nfft/2 + 1] */
    float *band_time;                       /* owned (FFTW): [nfft] one band's early signal */
    float *direct;                          /* owned (FFTW): [2][nfft] the direct path's HRIRs (kept out of acc) */
    float direct_gain[ISM_MAX_BANDS];
    float *direct_resp; /* owned: [nfft/2 + 1] Σ_b direct_gain[b]·band response */
    double hist_dt;     /* s per histogram bin */
    int32_t hist_bins;
    double *hist;        /* owned: [n_bands][hist_bins] arrival energy of the reflections */
    int32_t *hist_count; /* owned: [hist_bins] */
} ism_early;

typedef struct ism_early_result {
    double t_end;                    /* s: the early part holds every image arriving before it */
    double tail_rate[ISM_MAX_BANDS]; /* energy per second at t_end per band, in units of the diffuse-field
                                        HRIR band energy (the tail's a_b²); 0 without a tail window */
    double tail_window;              /* s: length of the window that set tail_rate */
    double tail_window_end;          /* s: where it ends */
    int32_t tail_window_images;      /* reflections in it */
    int32_t tail_measured;           /* 1: measured on the rendered early part, 0: estimated from arrivals */
    int64_t n_images;                /* image sources rendered, the direct path included */
    int64_t n_below;                 /* of which below the lowest measured HRIR elevation */
    int32_t max_order;               /* highest reflection order rendered */
    double direct_distance;          /* m */
    double direct_delay;             /* s */
    int32_t direct_hrir;             /* measurement used for the direct path */
} ism_early_result;

bp_status ism_early_init(ism_early *e, const ism_hrtf *h, const ism_bands *bands, double max_time, bp_error *err);
void ism_early_free(ism_early *e);

/* Render the early part and add it to out[2][n] (left, right). With
 * tail_window > 0, also set the tail level (res->tail_rate, see above). */
bp_status ism_early_render(ism_early *e, const ism_hrtf *h, const ism_scene *sc, int32_t max_order, double tail_window,
                           float *out, int64_t n, ism_early_result *res, bp_error *err);

#endif /* ISM_EARLY_H */
