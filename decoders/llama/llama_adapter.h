/* llama plugin — LLaMA-Adapter v2 and LoRA parameters (internal).
 *
 * An adapter is a set of named F32 tensors owned by the adapter, plus
 * per-layer pointers into them that the forward pass reads:
 *   - LLaMA-Adapter v2: adaption prompts `adapter.N.prompt` [K, E] and
 *     per-head gates `adapter.N.gate` [H] (used as tanh(gate)) in the
 *     adapted layers; biases `model.layers.N.self_attn.{q,o}_proj.bias`,
 *     `model.layers.N.mlp.{gate,up,down}_proj.bias` and optional scales
 *     `....scale` (y = s ⊙ (W·x + b)); trainable norms
 *     `model.layers.N.{input,post_attention}_layernorm.weight`,
 *     `model.norm.weight`.
 *   - LoRA: `model.layers.N.<proj>.lora_A.weight` [r, in] and
 *     `lora_B.weight` [out, r], y = W·x + (α/r)·B·(A·x).
 * Files always hold the Hugging Face (rotate-half) row order; on a GGUF
 * model (interleaved RoPE) the rows of q/k-output tensors (q bias and scale,
 * LoRA B of q_proj and k_proj) are permuted on load and back on save.
 * Fresh adapters leave the model's output unchanged: zero gates, zero
 * biases, unit scales, base norms, zero LoRA B. */
#ifndef BP_LLAMA_ADAPTER_H
#define BP_LLAMA_ADAPTER_H

#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/tensor.h"
#include "llama_model.h"

typedef enum lm_adapter_type { LM_ADAPTER_NONE = 0, LM_ADAPTER_V2 = 1, LM_ADAPTER_LORA = 2 } lm_adapter_type;

typedef enum lm_proj {
    LM_PROJ_Q = 0,
    LM_PROJ_K,
    LM_PROJ_V,
    LM_PROJ_O,
    LM_PROJ_GATE,
    LM_PROJ_UP,
    LM_PROJ_DOWN,
    LM_PROJ_COUNT
} lm_proj;

typedef struct lm_lora {
    int32_t r;   /* 0: this projection is not adapted */
    float scale; /* α / r */
    float *a;    /* [r, in] */
    float *b;    /* [out, r] */
} lm_lora;

typedef struct lm_adapter_layer {
    float *prompt;                 /* [n_prompt, E] or NULL: no adaption prompt in this layer */
    float *gate;                   /* [H] with the prompt */
    float *bias[LM_PROJ_COUNT];    /* [out] or NULL */
    float *scale[LM_PROJ_COUNT];   /* [out] or NULL */
    float *attn_norm, *ffn_norm;   /* [E] or NULL: the base norm */
    lm_lora lora[LM_PROJ_COUNT];
} lm_adapter_layer;

typedef struct lm_adapter_tensor {
    char *name;       /* owned; the file name (HF layout) */
    int32_t ndim;
    int64_t shape[2];
    float *data;      /* owned, internal row order */
    int32_t qk_heads; /* > 0: rows are q/k outputs of this many heads (permuted on GGUF models) */
} lm_adapter_tensor;

typedef struct lm_adapter {
    lm_adapter_type type;
    int32_t n_prompt;       /* adaption prompt length K (v2) */
    int32_t lora_rank;      /* largest r (LoRA) */
    float lora_alpha;       /* α (LoRA) */
    float *output_norm;     /* [E] or NULL */
    lm_adapter_layer *layers; /* [n_layer] */
    lm_adapter_tensor *tensors;
    int32_t n_tensors, cap_tensors;
} lm_adapter;

/* What a fresh adapter looks like (from the plugin parameters). */
typedef struct lm_adapter_config {
    lm_adapter_type type;
    int32_t v2_layers;      /* adapt the top L layers (v2) */
    int32_t v2_len;         /* prompt length K (v2) */
    int32_t v2_scales;      /* 1: also add unit scales (v2) */
    int32_t lora_rank;
    double lora_alpha;
    int32_t lora_alpha_set; /* 1: lora_alpha overrides a file's value */
    uint32_t lora_targets;  /* bit mask of lm_proj */
    uint64_t seed;          /* initialisation of prompts and LoRA A */
} lm_adapter_config;

const char *lm_adapter_type_name(lm_adapter_type t);
const char *lm_proj_name(lm_proj p);          /* "q_proj" ... "down_proj" */
const char *lm_proj_module(lm_proj p);        /* "self_attn" or "mlp" */

/* A fresh adapter for model m (see above). */
bp_status lm_adapter_create(const lm_model *m, const lm_adapter_config *cfg, lm_adapter **out, bp_error *err);
/* Load from a safetensors file. Every tensor must belong to the adapter type
 * (names with the PEFT prefix "base_model.model." are accepted); shapes are
 * checked against the model. */
bp_status lm_adapter_load(const lm_model *m, const lm_adapter_config *cfg, const char *path, lm_adapter **out,
                          bp_error *err);
/* Save to safetensors (HF row order, metadata: adapter_type, lora_alpha, ...). */
bp_status lm_adapter_save(const lm_model *m, const lm_adapter *a, const char *path, bp_error *err);
void lm_adapter_free(lm_adapter *a);

/* Input and output width of a projection. */
void lm_proj_dims(const lm_hparams *h, lm_proj p, int64_t *in, int64_t *out);

#endif /* BP_LLAMA_ADAPTER_H */
