/* batpipe — frontends (kind "batpipe.frontend/1"): audio → features.
 *
 * A frontend is a bp_stage (stage.h) whose input is audio:
 *   dtype F32, ndim 2, shape [channels, samples], rate = sample rate in Hz,
 *   samples in [-1, 1], channel 0 = left, channel 1 = right.
 * Its input_spec states the rate it needs (the host resamples files to it
 * with a band-limited resampler) and the channel count (a file with another
 * count is an error). Samples may be BP_DIM_ANY (variable length).
 * Its main output is the feature tensor, conventionally named "features",
 * [feature channels, frames, bins]; intermediates (e.g. "logmel_raw") are
 * optional outputs. Inputs and outputs are host memory. */
#ifndef BATPIPE_FRONTEND_H
#define BATPIPE_FRONTEND_H

#include "stage.h"

typedef bp_stage bp_frontend;

#endif /* BATPIPE_FRONTEND_H */
