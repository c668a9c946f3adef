/* ism_binaural — the measured HRIR set: loading, resampling, fractional-delay
 * phases and nearest-direction lookup.
 *
 * Loading (libmysofa: mysofa_load, mysofa_check, mysofa_tocartesian) keeps
 * every measurement of a SimpleFreeFieldHRIR file. The IRs are resampled
 * once from the file's rate to the render rate with libsamplerate, then
 * `phases` fractionally delayed copies (delays q/phases of a sample, q = 0 ..
 * phases−1) are made with a Kaiser-windowed sinc (48 taps, β = 8) so that an
 * image source lands at its exact arrival time to within 1/(2·phases) sample
 * without any per-image interpolation. All IRs are then scaled by one factor
 * so that their energy, averaged over both ears and over uniformly
 * distributed directions, is 1 (diffuse-field normalisation).
 *
 * Frames: directions passed here are in the SOFA frame (x front, y left,
 * z up; azimuth counter-clockwise, +90° = left). Ear 0 is the receiver with
 * the larger y (left), ear 1 the other (right).
 *
 * Lookup is exact nearest neighbour by angle over all measurements (ties go
 * to the lower index), through a 2°×2° grid of candidate lists; below the
 * lowest measured elevation this picks the lowest ring at the nearest
 * azimuth, i.e. the elevation is clamped. */
#ifndef ISM_HRTF_H
#define ISM_HRTF_H

#include <stdint.h>

#include "batpipe/error.h"

#define ISM_TAIL_DIRS 4096 /* quasi-uniform directions (Fibonacci sphere) for the diffuse tail */

typedef enum ism_resample_quality {
    ISM_RESAMPLE_BEST = 0,   /* SRC_SINC_BEST_QUALITY */
    ISM_RESAMPLE_MEDIUM = 1, /* SRC_SINC_MEDIUM_QUALITY */
    ISM_RESAMPLE_FASTEST = 2 /* SRC_SINC_FASTEST */
} ism_resample_quality;

typedef struct ism_hrtf {
    int32_t m;                        /* measurements */
    int32_t phases;                   /* fractional-delay steps per sample */
    int32_t len;                      /* taps of one IR (multiple of 8) */
    float *ir;                        /* owned: [m][phases][2][len]; ear 0 = left */
    double onset;                     /* samples from tap 0 of phase 0 to the onset of the frontal IR (its first
                                         crossing of −20 dB of the peak): a path of length d is placed so that
                                         this point lands at d/c */
    double fs;                        /* render rate */
    double fs_file;                   /* the file's rate */
    double min_elevation;             /* lowest measured elevation, degrees */
    float *dir;                       /* owned: [m][3] unit vectors, SOFA frame */
    float *az, *el;                   /* owned: [m] measured azimuth / elevation, degrees (SOFA convention) */
    int32_t front;                    /* measurement nearest to straight ahead */
    int32_t *cell_start;              /* owned: [cells + 1] offsets into cell_cand */
    int32_t *cell_cand;               /* owned: candidate measurements per cell */
    int32_t tail_dirs[ISM_TAIL_DIRS]; /* measurement nearest to each quasi-uniform direction */
} ism_hrtf;

/* Load `path` for rendering at `fs` Hz. Errors name the file. */
bp_status ism_hrtf_load(ism_hrtf *h, const char *path, double fs, int32_t phases, ism_resample_quality quality,
                        bp_error *err);
void ism_hrtf_free(ism_hrtf *h);

/* The nearest measurement to the direction (x, y, z) in the SOFA frame (any
 * non-zero length). */
int32_t ism_hrtf_nearest(const ism_hrtf *h, double x, double y, double z);

static inline const float *ism_hrtf_ir(const ism_hrtf *h, int32_t m, int32_t phase, int32_t ear) {
    return h->ir + (((size_t)m * (size_t)h->phases + (size_t)phase) * 2 + (size_t)ear) * (size_t)h->len;
}

#endif /* ISM_HRTF_H */
