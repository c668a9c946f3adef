/* frontends/common — turning the input tensor into the signal a frontend
 * analyses: channel selection / downmix, zero-padding or truncation to a
 * fixed clip length, a finiteness check with a precise message, and numpy
 * "reflect" centre padding. */
#ifndef BP_FE_SIGNAL_H
#define BP_FE_SIGNAL_H

#include <stdint.h>

#include "batpipe/error.h"

/* Where one analysed channel comes from. */
typedef enum bp_fe_source {
    BP_FE_SRC_CH0 = 0,   /* input channel 0 (left) */
    BP_FE_SRC_CH1 = 1,   /* input channel 1 (right) */
    BP_FE_SRC_MEAN = 2   /* (ch0 + ch1) / 2 for stereo input, ch0 for mono input */
} bp_fe_source;

/* BP_OK if every element of in[n_channels, n] is finite, else BP_ERR_NUMERIC
 * naming `what`, the channel, the sample and the value kind. */
bp_status bp_fe_signal_check_finite(const float *in, int32_t n_channels, int64_t n, const char *what, bp_error *err);

/* dst[0 .. len) = the chosen source of in[n_channels, n_in], zero-filled past
 * n_in and truncated at len. For a mono input every source is channel 0. */
void bp_fe_signal_take(const float *in, int32_t n_channels, int64_t n_in, bp_fe_source src, float *dst, int64_t len);

/* buf holds pad + len + pad floats with the signal in the middle; fill both
 * ends by reflection without repeating the edge sample (numpy.pad
 * mode="reflect"). Needs len > pad. */
void bp_fe_signal_reflect(float *buf, int64_t len, int64_t pad);

#endif /* BP_FE_SIGNAL_H */
