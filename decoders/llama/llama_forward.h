/* llama plugin — the forward pass, its KV cache and scratch (internal).
 *
 * A batch (optional prefix embeddings, then token ids) is processed in
 * chunks of at most n_batch positions, each as matrices [T, ·] (batched
 * prefill), inside one OpenMP parallel region per chunk: weight rows are
 * split over the threads for the matrix products, positions (or
 * position × head pairs) for the row-level steps, with a barrier
 * (llama_barrier.h: brief spin, then yield) between steps.
 *
 * Intermediates are kept per layer in an lm_acts record (normed inputs,
 * q/k/v after RoPE, attention output, gate/up/SwiGLU values, the residual
 * stream before and after attention). For inference every layer shares one
 * record and the residual stream is updated in place; a backward pass
 * (next issue) gives each layer its own record (lm_ctx.n_act_sets =
 * n_layer) and reads them back without changing this code. */
#ifndef BP_LLAMA_FORWARD_H
#define BP_LLAMA_FORWARD_H

#include <stdint.h>

#include "llama_adapter.h"
#include "llama_barrier.h"
#include "llama_kernels.h"
#include "llama_model.h"

typedef struct lm_acts {
    float *x_in;   /* [T, E] residual stream entering the layer */
    float *xn;     /* [T, E] RMSNorm(x_in) · attn_norm: input of q/k/v */
    float *q;      /* [T, H·hd] after epilogue and RoPE */
    float *k, *v;  /* [T, Hkv·hd] k after RoPE (copied into the cache) */
    float *att;    /* [T, H·hd] attention output: input of o_proj */
    float *x_mid;  /* [T, E] residual stream after attention */
    float *mn;     /* [T, E] RMSNorm(x_mid) · ffn_norm: input of gate/up */
    float *gate;   /* [T, F] gate projection after epilogue (before SiLU) */
    float *up;     /* [T, F] up projection after epilogue */
    float *act;    /* [T, F] silu(gate) · up: input of down_proj */
} lm_acts;

typedef struct lm_ctx_params {
    int32_t n_ctx;     /* positions in the KV cache */
    int32_t n_batch;   /* positions per chunk */
    int32_t n_threads;
    int32_t kv_f16;    /* 1: F16 KV cache (llama.cpp's default), 0: F32 */
    int32_t exact;     /* precision = "exact": F32 activations in every product (no 8-bit activation
                          quantization), weights dequantized block by block on the fly, the row steps in
                          double; needs kv_f16 = 0 */
    lm_isa isa;        /* LM_ISA_COUNT = best available */
} lm_ctx_params;

typedef struct lm_ctx {
    const lm_model *model;     /* borrowed */
    const lm_adapter *adapter; /* borrowed, may be NULL */
    lm_kernels kr;
    lm_barrier barrier;        /* between the steps of a chunk */
    int32_t n_ctx, n_batch, n_threads;
    int32_t n_past;            /* valid positions in the cache */
    int32_t prompts_valid;     /* pk/pv hold the current adapter's prompt keys/values */
    int32_t kv_f16;            /* cache elements are f16 (else F32) */
    int32_t exact;             /* precision = "exact" (see lm_ctx_params) */
    void *kv;                  /* owned: [n_layer][2][Hkv][n_ctx][hd] */
    /* scratch for one chunk, owned */
    int32_t n_act_sets;
    lm_acts *acts;             /* [n_act_sets] */
    float *x_out;              /* [T, E] residual stream after the last layer */
    float *tmp;                /* [T, max(E, F)] projection outputs before the residual add */
    float *lora_t;             /* [LM_PROJ_COUNT][T, lora_rmax] LoRA A·x */
    int32_t lora_rmax;         /* largest LoRA rank of the adapter (0: none) */
    float *rope_cs, *rope_sn;  /* [T, hd/2] */
    float *scores;             /* [n_threads][n_ctx + n_prompt] */
    float *out_h;              /* [T, E] final normed hidden states of the output rows */
    float *pk, *pv;            /* [n_layer][n_prompt, Hkv·hd] adapter prompt keys/values */
    lm_qact qa;                /* [T or n_prompt rows, max(E, H·hd, F)]; not allocated when exact */
    void **blocks;             /* every allocation above, for free */
    int32_t n_blocks, cap_blocks;
} lm_ctx;

/* One evaluation request (already validated by the caller for types). */
typedef struct lm_batch {
    const float *prefix; /* [n_prefix, E] or NULL */
    int64_t n_prefix;
    const int32_t *tokens;
    int64_t n_tokens;
    int32_t pos;
    int32_t n_out;       /* outputs for the last n_out positions */
    float *logits;       /* [n_out, n_vocab] or NULL */
    float *hidden;       /* [n_out, E] or NULL */
} lm_batch;

bp_status lm_ctx_init(lm_ctx *c, const lm_model *m, const lm_adapter *a, const lm_ctx_params *p, bp_error *err);
void lm_ctx_free(lm_ctx *c);
/* Attach another adapter (or NULL); its shapes must fit the scratch made at
 * init (call lm_ctx_init again otherwise). Clears the KV cache. */
bp_status lm_ctx_set_adapter(lm_ctx *c, const lm_adapter *a, bp_error *err);

/* Run the decoder: checks token ids, positions and the context length. */
bp_status lm_ctx_eval(lm_ctx *c, const lm_batch *b, bp_error *err);
/* Keep the first n_keep cached positions. */
bp_status lm_ctx_truncate(lm_ctx *c, int32_t n_keep, bp_error *err);

#endif /* BP_LLAMA_FORWARD_H */
