/* audiomae — AudioMAE's fine-tuning model (Huang et al. 2022,
 * facebookresearch/AudioMAE models_vit.py with global_pool), the BAT paper's
 * classification baseline (Table 3), built from bp_nn layers.
 *
 * fbank [B, 1, 1024, 128] → (train: SpecAugment on the fbank) → patch embed
 * 16x16/16 → [B, 512, D] (time-major) + pos_embed rows 1..512 → (train: 2-D
 * patch masking) → prepend cls_token + pos_embed row 0 → depth pre-LN
 * blocks → tokens [B, 1 + n, D] → mean over the patch tokens (CLS
 * excluded) → fc_norm → head (n_classes). No final norm (global_pool
 * deletes it). See README.md. */
#ifndef AMAE_MODEL_H
#define AMAE_MODEL_H

#include <stdint.h>

#include "batpipe/trainable.h"
#include "bp_nn.h"

#define AMAE_FRAMES 1024
#define AMAE_MELS 128
#define AMAE_PATCH 16
#define AMAE_GRID_T (AMAE_FRAMES / AMAE_PATCH) /* 64 time patches */
#define AMAE_GRID_F (AMAE_MELS / AMAE_PATCH)   /* 8 frequency patches */
#define AMAE_PATCHES (AMAE_GRID_T * AMAE_GRID_F)

/* Output order of the stage (and of the trainable forward/backward). */
enum { AMAE_OUT_TOKENS, AMAE_OUT_CLASS, AMAE_OUT_COUNT };

typedef struct amae_cfg {
    int64_t dim, depth, heads, mlp_hidden, n_classes;
    float drop_path;    /* default stochastic-depth rate of the last block (training) */
    uint64_t init_seed; /* random initialisation when no weights are given */
    double head_init_std;           /* std of the heads' random weights (official 2e-5) */
} amae_cfg;

typedef struct amae_model {
    amae_cfg cfg;
    bp_backend *be;
    bp_nn_params params;
    bp_nn_arena *arena;
    int32_t training;
    int32_t bf16;      /* 1: inference forwards multiply in BF16 (parameter 'precision') */

    bp_tensor *cls_token, *pos_embed, *d_cls;
    bp_nn_specaug specaug;
    bp_nn_patch_embed patch;
    bp_nn_block *blocks; /* [depth] */
    bp_nn_token_mean pool;
    bp_nn_layernorm fc_norm;
    bp_nn_linear head;

    /* host scratch (grow-only) */
    int32_t *ids;
    int64_t ids_cap;
    float *dp; /* drop-path scales [depth][2·B] */
    int64_t dp_cap;

    /* the last kept forward (private to amae_forward.c) */
    int32_t kept;
    int32_t used_specaug;
    int64_t batch, n_tok;
    bp_tensor *ids_tok; /* I32: table rows of x0 */
    bp_tensor **xs;     /* [depth + 1]: block inputs/outputs */
} amae_model;

/* Validate cfg, register every parameter and initialise them randomly. */
bp_status amae_model_init(amae_model *m, const amae_cfg *cfg, bp_backend *be, bp_error *err);
void amae_model_free(amae_model *m);
/* Load a safetensors state dict with AudioMAE's fine-tuning names (strict). */
bp_status amae_model_load(amae_model *m, const char *path, bp_error *err);

/* Step options (NULL = evaluation: no augmentation). */
typedef struct amae_step {
    uint64_t seed;
    double mask_t, mask_f;
    int64_t specaug_t, specaug_f;
    float drop_path; /* < 0: the model's default */
} amae_step;

/* Forward on x [B, 1, 1024, 128]: outputs[AMAE_OUT_*] may each be NULL
 * (tokens: [B, 1 + kept patches, D]; logits: [B, n_classes]). keep = 1
 * keeps the activations for amae_model_backward. */
bp_status amae_model_forward(amae_model *m, const bp_tensor *x, const amae_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err);
/* Gradients from d_outputs (NULL = zero) of the last kept forward into the
 * parameter grads; d_input (may be NULL) receives d loss / d x. */
bp_status amae_model_backward(amae_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err);

#endif
