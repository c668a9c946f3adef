/* batpipe — encoders (kind "batpipe.encoder/1"): features → predictions and tokens.
 *
 * An encoder is a bp_stage (stage.h). Input: a batch of features
 * [batch, channels, frames, bins] F32 (the frontend's output with a leading
 * batch dim). Main output: "tokens" [batch, n_tokens, dim] (what a projector
 * consumes); optional outputs are the heads' logits, named
 * "logits_class" [batch, n_classes], "logits_distance" [batch, 21],
 * "logits_azimuth" [batch, 360], "logits_elevation" [batch, 180].
 * Encoders compute through the host's backend (host->backend, ops.h); their
 * tensors live on that backend.
 *
 * Training is an extension of the stage (get_extension) with the id
 * BP_EXT_TRAINABLE_ID: see trainable.h (ABI 1.1). Weights are loaded from
 * safetensors by the official state-dict names (a `weights` parameter). */
#ifndef BATPIPE_ENCODER_H
#define BATPIPE_ENCODER_H

#include "stage.h"
#include "trainable.h"

typedef bp_stage bp_encoder;

#endif /* BATPIPE_ENCODER_H */
