/* llama plugin — portable C kernels: the reference semantics of
 * llama_kernels.h, used where no SIMD implementation applies. */
#include <math.h>
#include <string.h>

#include "batpipe/tensor.h"
#include "llama_kernels.h"

static float f16_round(float v) { return lm_f16_to_f32(bp_f32_to_f16(v)); }

static void quantize(const float *x, int64_t ldx, int64_t t0, int64_t t1, const lm_qact *qa) {
    const int64_t k = qa->k, nb = k / 32;
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * ldx;
        int8_t *q = qa->q + t * qa->row_q;
        float *s = qa->s + t * qa->row_s;
        memset(q + k, 0, (size_t)(qa->row_q - k));
        memset(s, 0, (size_t)qa->row_s * sizeof *s);
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = xr + b * 32;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                long v = lrintf(xb[j] * id);
                v = v < -127 ? -127 : v > 127 ? 127 : v;
                q[b * 32 + j] = (int8_t)v;
                sum += (int)v;
            }
            const float d16 = f16_round(d);
            float *sp = s + (b / 2) * 8 + (b % 2) * 2;
            sp[0] = d16;
            sp[1] = f16_round(d * (float)sum);
            sp[4] = d16;
            sp[5] = d16 * (float)sum;
        }
    }
}

/* Scales of activation block b: d, s16, s32. */
static inline float act_d(const float *s, int64_t b) { return s[(b / 2) * 8 + (b % 2) * 2]; }
static inline float act_s16(const float *s, int64_t b) { return s[(b / 2) * 8 + (b % 2) * 2 + 1]; }
static inline float act_s32(const float *s, int64_t b) { return s[(b / 2) * 8 + 4 + (b % 2) * 2 + 1]; }

static void mm_q8_0(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < n; t++) {
            const int8_t *q = qa->q + t * qa->row_q;
            const float *s = qa->s + t * qa->row_s;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 34;
                const int8_t *wq = (const int8_t *)(blk + 2);
                int32_t isum = 0;
                for (int j = 0; j < 32; j++) isum += (int32_t)wq[j] * q[b * 32 + j];
                acc += lm_f16_to_f32(lm_load_u16(blk)) * act_d(s, b) * (float)isum;
            }
            y[t * ldy + r] = acc;
        }
    }
}

static void mm_q4_0(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < n; t++) {
            const int8_t *q = qa->q + t * qa->row_q;
            const float *s = qa->s + t * qa->row_s;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 18;
                const uint8_t *qs = blk + 2;
                int32_t isum = 0;
                for (int j = 0; j < 16; j++)
                    isum += (int32_t)(qs[j] & 15) * q[b * 32 + j] + (int32_t)(qs[j] >> 4) * q[b * 32 + 16 + j];
                const float dw = lm_f16_to_f32(lm_load_u16(blk));
                acc += dw * act_d(s, b) * (float)isum - 8.0f * dw * act_s32(s, b);
            }
            y[t * ldy + r] = acc;
        }
    }
}

static void mm_q4_1(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < n; t++) {
            const int8_t *q = qa->q + t * qa->row_q;
            const float *s = qa->s + t * qa->row_s;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wr + b * 20;
                const uint8_t *qs = blk + 4;
                int32_t isum = 0;
                for (int j = 0; j < 16; j++)
                    isum += (int32_t)(qs[j] & 15) * q[b * 32 + j] + (int32_t)(qs[j] >> 4) * q[b * 32 + 16 + j];
                const float dw = lm_f16_to_f32(lm_load_u16(blk)), mw = lm_f16_to_f32(lm_load_u16(blk + 2));
                acc += dw * act_d(s, b) * (float)isum + mw * act_s16(s, b);
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* precision = "exact": block b of a quantized row as 32 floats, with
 * bp_dequantize_row's (and gguf-py's) arithmetic. d·q is exact in float
 * (an f16 d has 11 significant bits, q at most 8), so the values do not
 * depend on FMA contraction: Q4_1's + m is the only rounding. */
static void dequant_block(int32_t dtype, const uint8_t *row, int64_t b, float *w) {
    if (dtype == BP_DTYPE_Q8_0) {
        const uint8_t *blk = row + b * 34;
        const float d = lm_f16_to_f32(lm_load_u16(blk));
        for (int j = 0; j < 32; j++) w[j] = (float)(int8_t)blk[2 + j] * d;
    } else if (dtype == BP_DTYPE_Q4_0) {
        const uint8_t *blk = row + b * 18, *qs = blk + 2;
        const float d = lm_f16_to_f32(lm_load_u16(blk));
        for (int j = 0; j < 16; j++) {
            w[j] = d * (float)((qs[j] & 15) - 8);
            w[j + 16] = d * (float)((qs[j] >> 4) - 8);
        }
    } else {
        const uint8_t *blk = row + b * 20, *qs = blk + 4;
        const float d = lm_f16_to_f32(lm_load_u16(blk)), m = lm_f16_to_f32(lm_load_u16(blk + 2));
        for (int j = 0; j < 16; j++) {
            w[j] = d * (float)(qs[j] & 15) + m;
            w[j + 16] = d * (float)(qs[j] >> 4) + m;
        }
    }
}

/* Dequantized weights × F32 activations: 8 partial sums per dot product. */
static void mmx(int32_t dtype, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n,
                float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    float wb[32];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < n; t++) {
            const float *xr = x + t * ldx;
            float acc[8] = {0};
            for (int64_t b = 0; b < nb; b++) {
                dequant_block(dtype, wr, b, wb);
                for (int j = 0; j < 32; j++) acc[j % 8] += wb[j] * xr[b * 32 + j];
            }
            y[t * ldy + r] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        }
    }
}

static void mmx_q8_0(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy) {
    mmx(BP_DTYPE_Q8_0, w, r0, r1, x, ldx, n, y, ldy);
}

static void mmx_q4_0(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy) {
    mmx(BP_DTYPE_Q4_0, w, r0, r1, x, ldx, n, y, ldy);
}

static void mmx_q4_1(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y,
                     int64_t ldy) {
    mmx(BP_DTYPE_Q4_1, w, r0, r1, x, ldx, n, y, ldy);
}

/* Float weights: 8 partial sums per dot product. */
#define DEFINE_MM_FLOAT(NAME, TYPE, LOAD)                                                                       \
    static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n, float *y, \
                     int64_t ldy) {                                                                             \
        const int64_t k = w->cols;                                                                              \
        for (int64_t r = r0; r < r1; r++) {                                                                     \
            const TYPE *wr = (const TYPE *)(const void *)(w->data + (size_t)r * w->row_bytes);                   \
            for (int64_t t = 0; t < n; t++) {                                                                   \
                const float *xr = x + t * ldx;                                                                  \
                float acc[8] = {0};                                                                             \
                int64_t i = 0;                                                                                  \
                for (; i + 8 <= k; i += 8)                                                                      \
                    for (int j = 0; j < 8; j++) acc[j] += LOAD(wr[i + j]) * xr[i + j];                          \
                for (; i < k; i++) acc[0] += LOAD(wr[i]) * xr[i];                                               \
                y[t * ldy + r] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])); \
            }                                                                                                   \
        }                                                                                                       \
    }

#define LOAD_F32(v) (v)
DEFINE_MM_FLOAT(mm_f32, float, LOAD_F32)
DEFINE_MM_FLOAT(mm_f16, uint16_t, lm_f16_to_f32)
DEFINE_MM_FLOAT(mm_bf16, uint16_t, lm_bf16_to_f32)

static void attn_scores(const float *q, const float *k, int64_t n, int32_t hd, int64_t stride, float scale,
                        float *s) {
    for (int64_t j = 0; j < n; j++) {
        const float *kj = k + j * stride;
        float acc[8] = {0};
        int32_t i = 0;
        for (; i + 8 <= hd; i += 8)
            for (int u = 0; u < 8; u++) acc[u] += q[i + u] * kj[i + u];
        for (; i < hd; i++) acc[0] += q[i] * kj[i];
        s[j] = (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) * scale;
    }
}

static void attn_accum(const float *p, const float *v, int64_t n, int32_t hd, int64_t stride, float *out) {
    for (int64_t j = 0; j < n; j++) {
        const float *vj = v + j * stride;
        for (int32_t i = 0; i < hd; i++) out[i] += p[j] * vj[i];
    }
}

static void attn_scores_f16(const float *q, const uint16_t *k, int64_t n, int32_t hd, int64_t stride, float scale,
                            float *s) {
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *kj = k + j * stride;
        float acc[8] = {0};
        int32_t i = 0;
        for (; i + 8 <= hd; i += 8)
            for (int u = 0; u < 8; u++) acc[u] += q[i + u] * lm_f16_to_f32(kj[i + u]);
        for (; i < hd; i++) acc[0] += q[i] * lm_f16_to_f32(kj[i]);
        s[j] = (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) * scale;
    }
}

static void attn_accum_f16(const float *p, const uint16_t *v, int64_t n, int32_t hd, int64_t stride, float *out) {
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *vj = v + j * stride;
        for (int32_t i = 0; i < hd; i++) out[i] += p[j] * lm_f16_to_f32(vj[i]);
    }
}

static void to_f16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bp_f32_to_f16(x[i]);
}

static void round_f16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = lm_f16_to_f32(bp_f32_to_f16(x[i]));
}

int lm_kernels_generic(lm_kernels *k) {
    k->isa = LM_ISA_GENERIC;
    k->quantize = quantize;
    k->mm_q8_0 = mm_q8_0;
    k->mm_q4_0 = mm_q4_0;
    k->mm_q4_1 = mm_q4_1;
    k->mmx_q8_0 = mmx_q8_0;
    k->mmx_q4_0 = mmx_q4_0;
    k->mmx_q4_1 = mmx_q4_1;
    k->mm_f32 = mm_f32;
    k->mm_f16 = mm_f16;
    k->mm_bf16 = mm_bf16;
    k->attn_scores = attn_scores;
    k->attn_accum = attn_accum;
    k->attn_scores_f16 = attn_scores_f16;
    k->attn_accum_f16 = attn_accum_f16;
    k->to_f16 = to_f16;
    k->round_f16 = round_f16;
    return 1;
}
