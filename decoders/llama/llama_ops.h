/* llama plugin — row-level operations of the decoder layer (internal):
 * RMSNorm, rotary embeddings in both layouts, one query's attention over
 * the KV cache (plus the LLaMA-Adapter v2 prompt branch), SwiGLU and the
 * per-projection epilogue (bias, scale, LoRA). All are pure functions on
 * one row; the forward pass spreads rows over threads. */
#ifndef BP_LLAMA_OPS_H
#define BP_LLAMA_OPS_H

#include <stdint.h>

#include "llama_adapter.h"
#include "llama_kernels.h"

/* y = w ⊙ (x · 1/sqrt(mean(x²) + eps)) over n values, as ggml's rms_norm
 * then mul (squares in float, summed in double, the scale in float). */
void lm_rmsnorm(const float *x, const float *w, float eps, int64_t n, float *y);
/* precision = "exact": the same in double throughout (one rounding, at the end). */
void lm_rmsnorm_exact(const float *x, const float *w, float eps, int64_t n, float *y);

/* cos/sin of θ_i = pos·base^(−2i/d), i < d/2, computed as llama.cpp does
 * (float: θ_0 = pos, θ_{i+1} = θ_i·powf(base, −2/d), cosf/sinf), so that
 * results follow it closely. */
void lm_rope_table(float base, int32_t head_dim, int64_t pos, float *cos_out, float *sin_out);
/* precision = "exact": θ_i = pos·base^(−2i/d), cos and sin in double, rounded once. */
void lm_rope_table_exact(double base, int32_t head_dim, int64_t pos, float *cos_out, float *sin_out);
/* Rotate n_heads head vectors of `head_dim` in place. */
void lm_rope_apply(float *x, int32_t n_heads, int32_t head_dim, int32_t layout, const float *cs, const float *sn);

/* One query head: softmax(q·Kᵀ·scale) over keys [0, n_keys) of the cache
 * (rows of head_dim at k + j·head_dim, F32, or f16 when kv_f16: then q is
 * expected f16-rounded and the probabilities are rounded to f16 before they
 * weight the values, as llama.cpp computes with its F16 cache), weighted
 * sum of the values, into out[head_dim]. With a prompt (F32 pk/pv rows of
 * head_dim, `stride` apart), adds gate · softmax(q·PKᵀ·scale)·PV (separate
 * softmax, no mask). `scores` has room for max(n_keys, n_prompt) floats.
 * `exact` (precision = "exact", F32 cache only): the softmax in double
 * (libm exp, double sum, one rounding per weight); otherwise expf in float,
 * summed in double. */
void lm_attend(const lm_kernels *kr, const float *q, const void *k, const void *v, int kv_f16, int exact,
               int64_t n_keys, int32_t head_dim, float scale, const float *pk, const float *pv, int64_t stride,
               int32_t n_prompt, float gate, float *scores, float *out);

/* out[i] = silu(g[i]) · u[i]. */
void lm_swiglu(const float *g, const float *u, int64_t n, float *out);
/* precision = "exact": g / (1 + exp(−g)) · u in double (libm exp), rounded once. */
void lm_swiglu_exact(const float *g, const float *u, int64_t n, float *out);

/* Everything an adapter adds to one projection's output. */
typedef struct lm_epilogue {
    const float *bias;  /* [out] or NULL */
    const float *scale; /* [out] or NULL */
    const float *lora_b; /* [out, r] or NULL */
    int32_t lora_r;
    float lora_scale;
} lm_epilogue;

/* The epilogue of projection p in layer l of adapter a (all NULL when none). */
lm_epilogue lm_epilogue_of(const lm_adapter *a, int32_t l, lm_proj p);
static inline int lm_epilogue_active(const lm_epilogue *e) { return e->bias || e->scale || e->lora_b; }
/* y[o] = scale[o] · (y[o] + lora_scale · Σ_j t1[j]·B[o, j] + bias[o]) for o < n_out. */
void lm_epilogue_apply(const lm_epilogue *e, const float *t1, float *y, int64_t n_out);

/* Vector helpers. */
float lm_dot_f32(const float *a, const float *b, int64_t n);
/* y += a · x */
void lm_axpy_f32(float a, const float *x, float *y, int64_t n);

#endif /* BP_LLAMA_OPS_H */
