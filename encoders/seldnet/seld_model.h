/* seldnet — the SELDnet-style baseline of the BAT paper (Table 3), built
 * from bp_nn layers: SELDnet's convolutional feature network over the same
 * input maps as Spatial-AST, a linear bridge to the transformer width, and
 * Spatial-AST's transformer trunk, CLS tokens, norms and heads.
 *
 * features [B, C, 1024, 128] → (train: SpecAugment on the maps)
 * → n_conv × [Conv3x3 (filters, pad 1) → BatchNorm2d → ReLU → MaxPool
 *   (time_pool[i], freq_pool[i])] → [B, filters, T', F']
 * → per frame: flatten (filter, bin) → bridge Linear(filters·F' → D)
 * → + pos_embed (fixed 1-D sin-cos over the T' frames)
 * → (train: drop a fraction of the frame tokens) → prepend 3 CLS tokens
 *   (distance, DoA, class) → depth pre-LN blocks → tokens [B, 3 + T', D]
 * → dis_norm(token 0) → distance_head (21); doa_norm(token 1) →
 *   azimuth_head (360), elevation_head (180); fc_norm(token 2) → head
 *   (n_classes). No final norm. See README.md. */
#ifndef SELD_MODEL_H
#define SELD_MODEL_H

#include <stdint.h>

#include "batpipe/trainable.h"
#include "bp_nn.h"

#define SELD_FRAMES 1024
#define SELD_MELS 128
#define SELD_MAX_CONV 8
#define SELD_CLS 3
#define SELD_N_DIST 21
#define SELD_N_AZI 360
#define SELD_N_ELE 180

/* Output order of the stage (and of the trainable forward/backward). */
enum { SELD_OUT_TOKENS, SELD_OUT_CLASS, SELD_OUT_DISTANCE, SELD_OUT_AZIMUTH, SELD_OUT_ELEVATION, SELD_OUT_COUNT };

typedef struct seld_cfg {
    int64_t dim, depth, heads, mlp_hidden, n_classes, in_ch;
    int64_t filters;                 /* conv filters of every block (SELDnet: 64) */
    int32_t n_conv;                  /* conv blocks (SELDnet: 3) */
    int32_t pool_t[SELD_MAX_CONV];   /* max-pool size over time of block i */
    int32_t pool_f[SELD_MAX_CONV];   /* ... and over frequency */
    float drop_path;                 /* default stochastic-depth rate of the last block (training) */
    uint64_t init_seed;              /* random initialisation when no weights are given */
    double head_init_std;           /* std of the heads' random weights (official 2e-5) */
} seld_cfg;

/* One SELDnet conv block: "conv_blocks.i.conv", "conv_blocks.i.bn". */
typedef struct seld_conv_block {
    bp_nn_conv2d conv;
    bp_nn_batchnorm2d bn;
    bp_nn_act relu;
    bp_nn_maxpool2d pool;
    int64_t h, w;   /* input map size of the block */
    int64_t oh, ow; /* output map size (after pooling) */
} seld_conv_block;

typedef struct seld_model {
    seld_cfg cfg;
    int64_t n_frames, n_bins; /* T', F' after the conv stack */
    bp_backend *be;
    bp_nn_params params;
    bp_nn_arena *arena;
    int32_t training;
    int32_t bf16;      /* 1: inference forwards multiply in BF16 (parameter 'precision') */

    bp_tensor *pos_embed, *cls_tokens, *d_cls;
    seld_conv_block conv[SELD_MAX_CONV];
    bp_nn_linear bridge;
    bp_nn_specaug specaug;
    bp_nn_block *blocks; /* [depth] */
    bp_nn_layernorm dis_norm, doa_norm, fc_norm;
    bp_nn_linear head, distance_head, azimuth_head, elevation_head;

    /* host scratch (grow-only) */
    int32_t *ids;
    int64_t ids_cap;
    float *dp; /* drop-path scales [depth][2·B] */
    int64_t dp_cap;

    /* the last kept forward (private to seld_forward.c) */
    int32_t kept;
    int32_t used_specaug;
    int64_t batch, n_tok;
    bp_tensor *ids_tok, *ids_sel; /* I32: table rows of x0; rows of the CLS tokens in x_L (k-major) */
    bp_tensor **xs;               /* [depth + 1]: block inputs/outputs */
    bp_tensor *sel;               /* [3·B, D] the selected CLS tokens */
    bp_tensor sel_v[SELD_CLS];    /* views of sel kept by the three norms */
} seld_model;

/* Validate cfg, register every parameter and initialise them randomly. */
bp_status seld_model_init(seld_model *m, const seld_cfg *cfg, bp_backend *be, bp_error *err);
void seld_model_free(seld_model *m);
/* Load a safetensors state dict (strict: every name and shape). */
bp_status seld_model_load(seld_model *m, const char *path, bp_error *err);

/* Step options (NULL = evaluation: no augmentation). */
typedef struct seld_step {
    uint64_t seed;
    double mask_t;             /* fraction of frame tokens dropped */
    int64_t specaug_t, specaug_f;
    float drop_path;           /* < 0: the model's default */
} seld_step;

/* Forward on x [B, C, 1024, 128]: outputs[SELD_OUT_*] may each be NULL
 * (tokens: [B, 3 + kept frames, D]; logits: [B, n]). keep = 1 keeps the
 * activations for seld_model_backward. */
bp_status seld_model_forward(seld_model *m, const bp_tensor *x, const seld_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err);
/* Gradients from d_outputs (NULL = zero) of the last kept forward into the
 * parameter grads; d_input (may be NULL) receives d loss / d x. */
bp_status seld_model_backward(seld_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err);

#endif
