/* spatial_ast — the Spatial-AST encoder model (BAT paper; official
 * zszheng147/Spatial-AST spatial_ast.py), built from bp_nn layers.
 *
 * features [B, C, 1024, 128] → Conv3x3(C→1, no bias) → BatchNorm2d(1) → GELU
 * → (train: SpecAugment) → patch embed 16x16/16 → [B, 512, D] (+ pos_embed
 * rows 1..512) → (train: 2-D token masking) → prepend 3 CLS tokens
 * (distance, DoA, class) → depth pre-LN blocks → tokens [B, 3 + n, D]
 * → dis_norm(token 0) → distance_head (21); doa_norm(token 1) →
 * azimuth_head (360), elevation_head (180); fc_norm(token 2) → head
 * (n_classes). No final norm. See README.md. */
#ifndef SAST_MODEL_H
#define SAST_MODEL_H

#include <stdint.h>

#include "batpipe/trainable.h"
#include "bp_nn.h"

#define SAST_FRAMES 1024
#define SAST_MELS 128
#define SAST_PATCH 16
#define SAST_GRID_T (SAST_FRAMES / SAST_PATCH) /* 64 time patches */
#define SAST_GRID_F (SAST_MELS / SAST_PATCH)   /* 8 frequency patches */
#define SAST_PATCHES (SAST_GRID_T * SAST_GRID_F)
#define SAST_CLS 3
#define SAST_N_DIST 21
#define SAST_N_AZI 360
#define SAST_N_ELE 180

/* Output order of the stage (and of the trainable forward/backward). */
enum { SAST_OUT_TOKENS, SAST_OUT_CLASS, SAST_OUT_DISTANCE, SAST_OUT_AZIMUTH, SAST_OUT_ELEVATION, SAST_OUT_COUNT };

typedef struct sast_cfg {
    int64_t dim, depth, heads, mlp_hidden, n_classes, in_ch;
    float drop_path;    /* default stochastic-depth rate of the last block (training) */
    uint64_t init_seed; /* random initialisation when no weights are given */
    double head_init_std;           /* std of the heads' random weights (official 2e-5) */
} sast_cfg;

typedef struct sast_model {
    sast_cfg cfg;
    bp_backend *be;
    bp_nn_params params;
    bp_nn_arena *arena;
    int32_t training;
    int32_t bf16;      /* 1: inference forwards multiply in BF16 (parameter 'precision') */

    bp_tensor *pos_embed, *cls_tokens, *d_cls;
    bp_nn_conv2d conv0;     /* conv_downsample.0 */
    bp_nn_batchnorm2d bn0;  /* conv_downsample.1 */
    bp_nn_act gelu0;        /* conv_downsample.2 */
    bp_nn_specaug specaug;
    bp_nn_patch_embed patch;
    bp_nn_block *blocks;    /* [depth] */
    bp_nn_layernorm dis_norm, doa_norm, fc_norm;
    bp_nn_linear head, distance_head, azimuth_head, elevation_head;

    /* host scratch (grow-only) */
    int32_t *ids;      /* token gather ids */
    int64_t ids_cap;
    float *dp;         /* drop-path scales [depth][2·B] */
    int64_t dp_cap;

    /* the last kept forward (private to sast_forward.c) */
    int32_t kept;
    int32_t used_specaug;
    int64_t batch, n_tok;
    bp_tensor *ids_tok, *ids_sel; /* I32: table rows of x0; rows of the CLS tokens in x_L (k-major) */
    bp_tensor **xs;               /* [depth + 1]: block inputs/outputs */
    bp_tensor *sel;               /* [3·B, D] the selected CLS tokens */
    bp_tensor sel_v[SAST_CLS];    /* views of sel kept by the three norms */
    bp_tensor *pe_in;             /* [B, 1, 1024, 128] patch-embed input */
} sast_model;

/* Register every parameter (official names); with random_init, initialise
 * them as the official constructor does (skip it when weights follow). */
bp_status sast_model_init(sast_model *m, const sast_cfg *cfg, bp_backend *be, int random_init, bp_error *err);
void sast_model_free(sast_model *m);
/* Load a safetensors state dict (strict; front-end tensors accepted). */
bp_status sast_model_load(sast_model *m, const char *path, bp_error *err);

/* Step options (NULL = evaluation: no augmentation). */
typedef struct sast_step {
    uint64_t seed;
    double mask_t, mask_f;
    int64_t specaug_t, specaug_f;
    float drop_path;
} sast_step;

/* Forward on x [B, C, 1024, 128]: outputs[SAST_OUT_*] may each be NULL
 * (tokens: [B, 3 + kept, D]; logits: [B, n]). keep = 1 keeps the
 * activations for sast_model_backward. */
bp_status sast_model_forward(sast_model *m, const bp_tensor *x, const sast_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err);
/* Gradients from d_outputs (NULL = zero) of the last kept forward into the
 * parameter grads; d_input (may be NULL) receives d loss / d x. */
bp_status sast_model_backward(sast_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err);

#endif
