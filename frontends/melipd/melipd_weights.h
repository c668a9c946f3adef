/* melipd — reading the front-end state of a Spatial-AST checkpoint. */
#ifndef BP_MELIPD_WEIGHTS_H
#define BP_MELIPD_WEIGHTS_H

#include "batpipe/error.h"
#include "fe_mel.h"
#include "fe_melspec.h"

/* From the safetensors file `path`: bn.running_mean and bn.running_var
 * (F32 [2], required) into *bn; logmel_extractor.melW (F32 [n_bins, n_mels]),
 * if present, must equal mel->dense within max|a - b| / max|b| <= 1e-6.
 * Errors name the file and the tensor. */
bp_status bp_melipd_load_weights(const char *path, const bp_fe_mel *mel, bp_fe_bn *bn, bp_error *err);

#endif /* BP_MELIPD_WEIGHTS_H */
