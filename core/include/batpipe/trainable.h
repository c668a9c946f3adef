/* batpipe — the trainable stage extension (id "batpipe.trainable/1", ABI 1.1).
 *
 * An encoder (or projector) that can be trained returns this table from its
 * stage's get_extension(BP_EXT_TRAINABLE_ID). The trainer (batpipe train)
 * owns the loop: it feeds batches, computes the losses from the logits,
 * hands the gradients of the outputs to `backward`, and updates parameters
 * with the backend's AdamW op. The stage owns its parameters, gradients and
 * the activations it keeps between `forward` and `backward`.
 *
 * Life: set_training(1) → [zero_grad → forward → backward] … → set_training(0)
 * for evaluation through the ordinary stage `process`. One thread at a time. */
#ifndef BATPIPE_TRAINABLE_H
#define BATPIPE_TRAINABLE_H

#include <stdint.h>

#include "error.h"
#include "stage.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

#define BP_EXT_TRAINABLE_ID "batpipe.trainable/1"

/* One tensor of the stage's state, in a stable order. */
typedef struct bp_train_param {
    uint32_t struct_size; /* sizeof(bp_train_param) */
    const char *name;     /* the official state-dict name ("blocks.3.attn.qkv.weight"); owned by the stage */
    bp_tensor *value;     /* on the stage's backend; owned by the stage */
    bp_tensor *grad;      /* same shape, accumulated by backward; NULL for buffers and frozen tensors */
    int32_t trainable;    /* 0: a buffer (BatchNorm running stats, num_batches_tracked) or frozen (pos_embed) */
    int32_t decay;        /* 1: weight decay applies (as the model's official recipe;
                             usually not biases, norms, 1-D tensors, pos_embed) */
    int32_t layer_id;     /* for layer-wise lr decay: 0 = input embedding, 1..n_layers-2 = blocks,
                             n_layers-1 = everything after the blocks (heads, norms, cls tokens, conv block) */
} bp_train_param;

/* Per-step randomness and augmentation, chosen by the trainer. */
typedef struct bp_train_step {
    uint32_t struct_size;  /* sizeof(bp_train_step) */
    uint64_t seed;         /* every random choice of this step derives from it */
    float mask_t_prob;     /* token masking: drop this fraction of time rows (AudioMAE 2-D masking); 0 = none */
    float mask_f_prob;     /* ... and of frequency columns */
    int32_t specaug_freq;  /* SpecAugment: max width of one frequency mask on the conv output (0 = none) */
    int32_t specaug_time;  /* ... and of one time mask */
    float drop_path;       /* stochastic depth rate of the last block (linear from 0); 0 = none */
} bp_train_step;

typedef struct bp_trainable {
    uint32_t struct_size; /* sizeof(bp_trainable) */

    /* Number of layer ids (see bp_train_param.layer_id). */
    int32_t (*n_layers)(bp_stage *st);
    uint32_t (*param_count)(bp_stage *st);
    bp_status (*param_at)(bp_stage *st, uint32_t index, bp_train_param *out, bp_error *err);

    /* 1: training mode (BatchNorm uses and updates batch statistics, masking
     * and augmentation apply in forward); 0: evaluation (process). */
    bp_status (*set_training)(bp_stage *st, int32_t training, bp_error *err);
    /* Training forward on a batch (the stage's input spec with a concrete
     * batch size): fills outputs like process (outputs[i] NULL = not needed)
     * and keeps what backward needs. */
    bp_status (*forward)(bp_stage *st, const bp_tensor *input, const bp_train_step *step, bp_tensor *const *outputs,
                         uint32_t n_outputs, bp_error *err);
    /* Gradients of the loss with respect to the outputs of the last forward
     * (d_outputs[i] NULL = zero) → accumulated into every param's grad.
     * d_input, if not NULL, receives the gradient with respect to the input. */
    bp_status (*backward)(bp_stage *st, const bp_tensor *const *d_outputs, uint32_t n_outputs, bp_tensor *d_input,
                          bp_error *err);
    bp_status (*zero_grad)(bp_stage *st, bp_error *err);
} bp_trainable;

BP_EXTERN_C_END

#endif /* BATPIPE_TRAINABLE_H */
