/* frontends/common — small helpers the frontend stages share: describing
 * ports, checking the input and output tensors the host hands over, and the
 * threaded time resize of a stack of maps. */
#ifndef BP_FE_STAGE_H
#define BP_FE_STAGE_H

#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/spec.h"
#include "batpipe/tensor.h"

/* Fill an F32 port. */
void bp_fe_port(bp_port *p, const char *name, int32_t ndim, const int64_t *shape, double rate, const char *dims,
                int32_t optional, const char *help);

/* The audio input of a frontend: host F32 [channels, samples] with samples >= 1.
 * BP_ERR_SPEC / BP_ERR_INVALID naming `what` otherwise. */
bp_status bp_fe_check_audio(const bp_tensor *in, const char *what, bp_error *err);

/* Output `t` (may be NULL when optional) must be a host F32 tensor of the
 * given shape; BP_ERR_INVALID naming the output and both shapes otherwise. */
bp_status bp_fe_check_output(const bp_tensor *t, const char *what, const char *name, int32_t ndim,
                             const int64_t *shape, bp_error *err);

/* out[c] = bicubic time resize of in[c] (fe_resize.h) for c < n_maps:
 * [n_maps, t_in, width] -> [n_maps, t_out, width] on n_threads threads
 * (a plain copy when t_in == t_out). */
void bp_fe_resize_maps(const float *in, int64_t n_maps, int64_t t_in, float *out, int64_t t_out, int64_t width,
                       int32_t n_threads);

#endif /* BP_FE_STAGE_H */
