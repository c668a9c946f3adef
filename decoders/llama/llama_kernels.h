/* llama plugin — matrix kernels on stored weights (internal).
 *
 * y[t, r] = Σ_k W[r, k] · x[t, k] for a range of weight rows r and all
 * activation rows t, computed on the weights as stored:
 *   - F32, F16, BF16 weights: with F32 activations (F16/BF16 widened in
 *     registers);
 *   - Q8_0, Q4_0, Q4_1 weights: with the activations quantized to 8 bits
 *     per block of 32 (an lm_qact), integer dot products per block, then
 *     scaled, as llama.cpp does (its Q8_0 / Q8_1 activation blocks: d =
 *     max|x| / 127 rounded to f16, q = round-to-nearest-even(x · 127 /
 *     max|x|), and for Q4_1 the block sum d·Σq rounded to f16), or, for
 *     precision = "exact", with F32 activations against the weights
 *     dequantized block by block on the fly (mmx_*).
 * Three implementations share these semantics: portable C, AVX2 (+FMA,
 * F16C) and AVX-512 (F, BW, VL, VNNI), chosen once per instance. They
 * differ only in the order of float additions.
 *
 * Thread safety: all functions are pure on their arguments; the forward
 * pass calls them from several threads on disjoint row ranges. */
#ifndef BP_LLAMA_KERNELS_H
#define BP_LLAMA_KERNELS_H

#include <stdint.h>

#include "llama_model.h"

typedef enum lm_isa {
    LM_ISA_GENERIC = 0,
    LM_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    LM_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/VNNI + F16C */
    LM_ISA_COUNT
} lm_isa;

/* Activations quantized per block of 32. Row t holds `k` int8 values at
 * q + t·row_q (row_q: k rounded up to 64, the padding is zero) and, for
 * each pair of blocks j, 8 floats at s + t·row_s + 8j:
 *   [d(2j), s16(2j), d(2j+1), s16(2j+1), d(2j), s32(2j), d(2j+1), s32(2j+1)]
 * d: the block scale (f16-rounded), s16 = f16-rounded d·Σq (llama.cpp's
 * Q8_1 sum, used with Q4_1), s32 = d·Σq in f32 (Q4_0, Q8_0). A missing odd
 * last block has zeros. */
typedef struct lm_qact {
    int64_t k;
    int64_t row_q;
    int64_t row_s;
    int8_t *q;
    float *s;
} lm_qact;

/* Layout sizes for rows of k values (k a multiple of 32). */
static inline int64_t lm_qact_row_q(int64_t k) { return (k + 63) / 64 * 64; }
static inline int64_t lm_qact_row_s(int64_t k) { return (k + 63) / 64 * 8; }

typedef struct lm_kernels {
    lm_isa isa;
    /* Quantize rows [t0, t1) of x (row stride ldx, qa->k values each) into qa. */
    void (*quantize)(const float *x, int64_t ldx, int64_t t0, int64_t t1, const lm_qact *qa);
    /* y[t·ldy + r] for r in [r0, r1), t in [0, n): quantized weights × qa. */
    void (*mm_q8_0)(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy);
    void (*mm_q4_0)(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy);
    void (*mm_q4_1)(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy);
    /* precision = "exact": the same quantized weights × F32 activations x
     * (row stride ldx). Each 32-block of a weight row is dequantized to
     * float on the fly exactly as bp_dequantize_row and gguf-py do (Q8_0:
     * q·d; Q4_0: d·(q − 8); Q4_1: d·q + m; d·q is exact in float, so only
     * Q4_1's sum rounds), then multiplied with x and accumulated in float.
     * Within one implementation every (weight row, activation row) pair is
     * accumulated in the same order whichever tile or decode path computes
     * it, so the results do not depend on how a sequence is batched. */
    void (*mmx_q8_0)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy);
    void (*mmx_q4_0)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy);
    void (*mmx_q4_1)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy);
    /* Same with float weights × F32 activations x (row stride ldx). */
    void (*mm_f32)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                   int64_t ldy);
    void (*mm_f16)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                   int64_t ldy);
    void (*mm_bf16)(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                    int64_t ldy);
    /* Attention over one head: s[j] = scale · q·k_j for j < n, the rows k_j
     * of hd floats `stride` floats apart; and out[0..hd) += Σ_j p[j]·v_j. */
    void (*attn_scores)(const float *q, const float *k, int64_t n, int32_t hd, int64_t stride, float scale,
                        float *s);
    void (*attn_accum)(const float *p, const float *v, int64_t n, int32_t hd, int64_t stride, float *out);
    /* The same over an F16 KV cache (llama.cpp's default): q and p are F32
     * values already rounded to f16, k/v rows are f16. */
    void (*attn_scores_f16)(const float *q, const uint16_t *k, int64_t n, int32_t hd, int64_t stride, float scale,
                            float *s);
    void (*attn_accum_f16)(const float *p, const uint16_t *v, int64_t n, int32_t hd, int64_t stride, float *out);
    /* y[i] = f16(x[i]) (round to nearest even); x[i] = f32(f16(x[i])) in place. */
    void (*to_f16)(const float *x, uint16_t *y, int64_t n);
    void (*round_f16)(float *x, int64_t n);
} lm_kernels;

/* The best implementation this CPU runs (`want` = LM_ISA_COUNT), or the one
 * asked for; BP_ERR_UNSUPPORTED when this CPU cannot run it. */
bp_status lm_kernels_select(lm_isa want, lm_kernels *out, bp_error *err);
const char *lm_isa_name(lm_isa isa);

/* Does this weight type compute on quantized activations? */
static inline int lm_mat_quantized(const lm_mat *w) {
    return w->dtype == BP_DTYPE_Q8_0 || w->dtype == BP_DTYPE_Q4_0 || w->dtype == BP_DTYPE_Q4_1;
}

/* Dispatch on w->dtype: float weights read x, quantized weights read qa. */
void lm_matmul(const lm_kernels *kr, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
               const lm_qact *qa, int64_t n, float *y, int64_t ldy);

/* The same with F32 activations x for every weight type (precision =
 * "exact"): quantized weights through mmx_*, float weights as above. */
void lm_matmul_f32act(const lm_kernels *kr, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                      int64_t n, float *y, int64_t ldy);

/* One row of a weight matrix (e.g. a token embedding) to F32. */
void lm_mat_row_f32(const lm_mat *w, int64_t r, float *dst);

/* The per-ISA tables (llama_kernels_*.c); each returns 0 when the CPU or
 * the build lacks it. */
int lm_kernels_generic(lm_kernels *k);
int lm_kernels_avx2(lm_kernels *k);
int lm_kernels_avx512(lm_kernels *k);

/* Scalar helpers shared by the implementations. */
static inline float lm_f16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } o, magic = {.u = 113u << 23};
    const uint32_t shifted_exp = 0x7c00u << 13;
    o.u = (uint32_t)(h & 0x7fff) << 13;
    const uint32_t exp = shifted_exp & o.u;
    o.u += (127u - 15u) << 23;
    if (exp == shifted_exp) {
        o.u += (128u - 16u) << 23; /* inf / nan */
    } else if (exp == 0) {
        o.u += 1u << 23; /* zero / subnormal: renormalise */
        o.f -= magic.f;
    }
    o.u |= (uint32_t)(h & 0x8000) << 16;
    return o.f;
}

static inline float lm_bf16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } o = {.u = (uint32_t)h << 16};
    return o.f;
}

static inline uint16_t lm_load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

#endif /* BP_LLAMA_KERNELS_H */
