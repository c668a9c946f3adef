/* frontends/common — reading the frontends' shared parameters: the
 * "downmix" choice and per-channel number lists (BatchNorm statistics). */
#ifndef BP_FE_PARAMS_H
#define BP_FE_PARAMS_H

#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/params.h"
#include "fe_signal.h"

/* Parse the "downmix" choice "mean" | "left" | "right" (NULL = "mean"). */
bp_status bp_fe_downmix_parse(const char *s, const char *what, bp_fe_source *out, bp_error *err);

/* A FLOAT_LIST parameter with exactly `want` elements (or, when `allow_one`,
 * one element used for every channel) copied into out[want]; otherwise
 * BP_ERR_INVALID naming the component, the parameter and both counts. */
bp_status bp_fe_param_list(const bp_params *params, const char *name, uint32_t want, int allow_one,
                           const char *what, double *out, bp_error *err);

#endif /* BP_FE_PARAMS_H */
