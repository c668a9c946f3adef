/* llama plugin — AVX2 kernels (+ FMA, F16C), for CPUs without AVX-512 VNNI.
 *
 * Quantized weights, one 32-block at a time, tiles of up to 4 weight rows ×
 * 2 activation rows: nibbles (Q4) or |w| with the activation's sign moved
 * over (Q8_0, as llama.cpp does, so that VPMADDUBSW cannot saturate) go
 * through VPMADDUBSW + VPMADDWD into 8 int32 sums, scaled by d_w·d_a into
 * a float accumulator; the min/offset terms (Q4_1: m·s, Q4_0: −8·d·s) are
 * summed in scalars. Float weights: tiles of 4 × 2 over 8 columns. */
#include "llama_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* F16C (CPUID.1:ECX bit 29); not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}

#define LM_T __attribute__((target("avx2,fma,f16c")))
#define LM_INLINE static inline __attribute__((always_inline)) LM_T

enum { WT_Q8_0, WT_Q4_0, WT_Q4_1 };

#define LM_TBLOCK 128 /* activation rows per block of the matrix products */

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

LM_INLINE float half(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

LM_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LM_INLINE int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* --------------------------------------------------- activation quantizer -- */

LM_T static void quantize(const float *x, int64_t ldx, int64_t t0, int64_t t1, const lm_qact *qa) {
    const int64_t k = qa->k, nb = k / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * ldx;
        int8_t *q = qa->q + t * qa->row_q;
        float *s = qa->s + t * qa->row_s;
        if (nb & 1) {
            memset(q + k, 0, (size_t)(qa->row_q - k));
            memset(s + (nb / 2) * 8, 0, 8 * sizeof *s);
        }
        for (int64_t b = 0; b < nb; b++) {
            __m256 v[4];
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(xr + b * 32 + i * 8);
                a = _mm256_max_ps(a, _mm256_andnot_ps(sign, v[i]));
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            const __m256 vid = _mm256_set1_ps(id);
            __m256i iv[4];
            for (int i = 0; i < 4; i++) iv[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid)); /* nearest even */
            const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3])));
            /* pack 32 int32 → 32 int8 in order */
            __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]), p23 = _mm256_packs_epi32(iv[2], iv[3]);
            __m256i p = _mm256_packs_epi16(p01, p23);
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(q + b * 32), p);
            const __m128 r16 =
                _mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ps(0.0f, 0.0f, d * (float)sum, d), _MM_FROUND_TO_NEAREST_INT));
            const float d16 = _mm_cvtss_f32(r16);
            float *sp = s + (b / 2) * 8 + (b % 2) * 2;
            sp[0] = d16;
            sp[1] = _mm_cvtss_f32(_mm_shuffle_ps(r16, r16, 1));
            sp[4] = d16;
            sp[5] = d16 * (float)sum;
        }
    }
}

/* ------------------------------------------------------- quantized tiles -- */

/* One block: 32 unsigned bytes (Q4 nibbles, or |w| for Q8_0), the raw
 * signed weights (Q8_0, for the sign), the scale d and the offset term c. */
LM_INLINE void unpack(int wt, const uint8_t *row, int64_t b, __m256i *wq, __m256i *wsgn, float *d, float *c) {
    if (wt == WT_Q8_0) {
        const uint8_t *p = row + b * 34;
        const __m256i w = _mm256_loadu_si256((const __m256i *)(p + 2));
        *wsgn = w;
        *wq = _mm256_sign_epi8(w, w);
        *d = half(load_u16(p));
        *c = 0.0f;
    } else {
        const int bs = wt == WT_Q4_1 ? 20 : 18, off = wt == WT_Q4_1 ? 4 : 2;
        const uint8_t *p = row + b * bs;
        const __m128i q = _mm_loadu_si128((const __m128i *)(p + off));
        *wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
        *wsgn = *wq;
        *d = half(load_u16(p));
        *c = wt == WT_Q4_1 ? half(load_u16(p + 2)) : -8.0f * *d;
    }
}

LM_INLINE void qtile(int wt, int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t, float *y,
                     int64_t ldy) {
    const int64_t nb = w->cols / 32;
    const int soff = wt == WT_Q4_1 ? 1 : 5; /* s16 or s32 next to d */
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4][2];
    float macc[4][2];
    const uint8_t *wr[4];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)(r + i) * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm256_setzero_ps(), macc[i][c] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i wq[4], wsgn[4];
        float dw[4], cw[4];
        for (int i = 0; i < R; i++) unpack(wt, wr[i], b, &wq[i], &wsgn[i], &dw[i], &cw[i]);
        const int64_t so = (b / 2) * 8 + (b % 2) * 2;
        for (int c = 0; c < C; c++) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(qa->q + (t + c) * qa->row_q + b * 32));
            const float *sa = qa->s + (t + c) * qa->row_s + so;
            for (int i = 0; i < R; i++) {
                const __m256i as = wt == WT_Q8_0 ? _mm256_sign_epi8(a, wsgn[i]) : a;
                const __m256i isum = _mm256_madd_epi16(_mm256_maddubs_epi16(wq[i], as), ones);
                acc[i][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(dw[i] * sa[0]), acc[i][c]);
                if (wt != WT_Q8_0) macc[i][c] += cw[i] * sa[soff];
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) y[(t + c) * ldy + r + i] = hsum(acc[i][c]) + macc[i][c];
}

typedef void (*qtile_fn)(int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t, float *y,
                         int64_t ldy);

/* Blocks of LM_TBLOCK activation rows × weight rows in steps of 4 × tiles
 * of 2 activation rows. */
LM_T static void drive_q(qtile_fn tile, const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n,
                         float *y, int64_t ldy) {
    for (int64_t tb = 0; tb < n; tb += LM_TBLOCK) {
        const int64_t te = n - tb < LM_TBLOCK ? n : tb + LM_TBLOCK;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r >= 4 ? 4 : (int)(r1 - r);
            for (int64_t t = tb; t < te; t += 2) {
                const int C = te - t >= 2 ? 2 : 1;
                if (R == 4) tile(4, C, w, r, qa, t, y, ldy);
                else
                    for (int i = 0; i < R; i++) tile(1, C, w, r + i, qa, t, y, ldy);
            }
        }
    }
}

#define DEFINE_QMM(NAME, WT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t,       \
                                 float *y, int64_t ldy) {                                                      \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 2: qtile(WT, 4, 2, w, r, qa, t, y, ldy); break;                                            \
        case 4 * 4 + 1: qtile(WT, 4, 1, w, r, qa, t, y, ldy); break;                                            \
        case 1 * 4 + 2: qtile(WT, 1, 2, w, r, qa, t, y, ldy); break;                                            \
        default: qtile(WT, 1, 1, w, r, qa, t, y, ldy); break;                                                   \
        }                                                                                                      \
    }                                                                                                          \
    LM_T static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y,     \
                          int64_t ldy) {                                                                       \
        drive_q(NAME##_tile, w, r0, r1, qa, n, y, ldy);                                                        \
    }

DEFINE_QMM(mm_q8_0, WT_Q8_0)
DEFINE_QMM(mm_q4_0, WT_Q4_0)
DEFINE_QMM(mm_q4_1, WT_Q4_1)

/* ----------------------------------------- exact: F32 activations (mmx) -- */

/* The scale (d) and offset (Q4_1: m) of block b, broadcast. */
LM_INLINE void xscales(int wt, const uint8_t *row, int64_t b, __m256 *d, __m256 *m) {
    const uint8_t *p = row + b * (wt == WT_Q8_0 ? 34 : wt == WT_Q4_1 ? 20 : 18);
    *d = _mm256_set1_ps(half(load_u16(p)));
    *m = wt == WT_Q4_1 ? _mm256_set1_ps(half(load_u16(p + 2))) : _mm256_setzero_ps();
}

/* Elements 8g .. 8g+7 of block b, with bp_dequantize_row's arithmetic:
 * Q8_0 q·d, Q4_0 (q − 8)·d, Q4_1 d·q + m (d·q is exact, so only the sum
 * rounds). Q4 element j < 16 is the low nibble of byte j, element 16 + j
 * its high nibble. */
LM_INLINE __m256 xgroup(int wt, const uint8_t *row, int64_t b, int g, __m256 d, __m256 m) {
    if (wt == WT_Q8_0) {
        const __m128i q = _mm_loadl_epi64((const __m128i *)(row + b * 34 + 2 + 8 * g));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
    }
    const int bs = wt == WT_Q4_1 ? 20 : 18, off = wt == WT_Q4_1 ? 4 : 2;
    __m128i q = _mm_loadl_epi64((const __m128i *)(row + b * bs + off + 8 * (g & 1)));
    if (g >= 2) q = _mm_srli_epi16(q, 4);
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_and_si128(q, _mm_set1_epi8(0x0f))));
    if (wt == WT_Q4_1) return _mm256_add_ps(_mm256_mul_ps(d, f), m);
    return _mm256_mul_ps(d, _mm256_sub_ps(f, _mm256_set1_ps(8.0f)));
}

/* R weight rows (consecutive in prefill, far apart in decode) × C
 * activation rows: one 8-lane accumulator per pair, FMAs in ascending
 * column order, one final reduction, whatever R and C are. */
LM_INLINE void xtile(int wt, int R, int C, const lm_mat *w, const int64_t *rows, const float *x, int64_t ldx,
                     int64_t t, float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    __m256 acc[4][2];
    const uint8_t *wr[4];
    const float *xr[2];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)rows[i] * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm256_setzero_ps();
    }
    for (int c = 0; c < C; c++) xr[c] = x + (t + c) * ldx;
    for (int64_t b = 0; b < nb; b++) {
        __m256 d[4], m[4];
        for (int i = 0; i < R; i++) xscales(wt, wr[i], b, &d[i], &m[i]);
        for (int g = 0; g < 4; g++) {
            __m256 wv[4];
            for (int i = 0; i < R; i++) wv[i] = xgroup(wt, wr[i], b, g, d[i], m[i]);
            for (int c = 0; c < C; c++) {
                const __m256 xv = _mm256_loadu_ps(xr[c] + b * 32 + 8 * g);
                for (int i = 0; i < R; i++) acc[i][c] = _mm256_fmadd_ps(wv[i], xv, acc[i][c]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) y[(t + c) * ldy + rows[i]] = hsum(acc[i][c]);
}

typedef void (*xtile_fn)(int R, int C, const lm_mat *w, const int64_t *rows, const float *x, int64_t ldx, int64_t t,
                         float *y, int64_t ldy);

/* Prefill: blocks of LM_TBLOCK activation rows × weight rows in steps of 4
 * × tiles of 2 activation rows; decode (n = 1): four rows far apart. */
LM_T static void drive_x(xtile_fn tile, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                         int64_t n, float *y, int64_t ldy) {
    if (n == 1) {
        const int64_t h = (r1 - r0) / 4;
        for (int64_t r = r0; r < r0 + h; r++) {
            const int64_t rs[4] = {r, r + h, r + 2 * h, r + 3 * h};
            tile(4, 1, w, rs, x, ldx, 0, y, ldy);
        }
        for (int64_t r = r0 + 4 * h; r < r1; r++) tile(1, 1, w, &r, x, ldx, 0, y, ldy);
        return;
    }
    for (int64_t tb = 0; tb < n; tb += LM_TBLOCK) {
        const int64_t te = n - tb < LM_TBLOCK ? n : tb + LM_TBLOCK;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r >= 4 ? 4 : (int)(r1 - r);
            const int64_t rs[4] = {r, r + 1, r + 2, r + 3};
            for (int64_t t = tb; t < te; t += 2) {
                const int C = te - t >= 2 ? 2 : 1;
                if (R == 4) tile(4, C, w, rs, x, ldx, t, y, ldy);
                else
                    for (int i = 0; i < R; i++) tile(1, C, w, rs + i, x, ldx, t, y, ldy);
            }
        }
    }
}

#define DEFINE_XMM(NAME, WT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, const int64_t *rows, const float *x,           \
                                 int64_t ldx, int64_t t, float *y, int64_t ldy) {                              \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 2: xtile(WT, 4, 2, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 4 * 4 + 1: xtile(WT, 4, 1, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 1 * 4 + 2: xtile(WT, 1, 2, w, rows, x, ldx, t, y, ldy); break;                                    \
        default: xtile(WT, 1, 1, w, rows, x, ldx, t, y, ldy); break;                                           \
        }                                                                                                      \
    }                                                                                                          \
    LM_T static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n,     \
                          float *y, int64_t ldy) {                                                             \
        drive_x(NAME##_tile, w, r0, r1, x, ldx, n, y, ldy);                                                    \
    }

DEFINE_XMM(mmx_q8_0, WT_Q8_0)
DEFINE_XMM(mmx_q4_0, WT_Q4_0)
DEFINE_XMM(mmx_q4_1, WT_Q4_1)

/* ------------------------------------------------------------ float tiles -- */

enum { FT_F32, FT_F16, FT_BF16 };

LM_INLINE __m256 load_w(int ft, const uint8_t *row, int64_t k) {
    if (ft == FT_F32) return _mm256_loadu_ps((const float *)(const void *)row + k);
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(const void *)row + k));
    if (ft == FT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

LM_INLINE float load_w1(int ft, const uint8_t *row, int64_t k) {
    if (ft == FT_F32) return ((const float *)(const void *)row)[k];
    uint16_t h;
    memcpy(&h, row + 2 * k, 2);
    return ft == FT_F16 ? half(h) : lm_bf16_to_f32(h);
}

LM_INLINE void ftile(int ft, int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx, int64_t t,
                     float *y, int64_t ldy) {
    const int64_t K = w->cols, K8 = K / 8 * 8;
    __m256 acc[4][2];
    const uint8_t *wr[4];
    const float *xr[2];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)(r + i) * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm256_setzero_ps();
    }
    for (int c = 0; c < C; c++) xr[c] = x + (t + c) * ldx;
    for (int64_t k = 0; k < K8; k += 8) {
        __m256 wv[4];
        for (int i = 0; i < R; i++) wv[i] = load_w(ft, wr[i], k);
        for (int c = 0; c < C; c++) {
            const __m256 xv = _mm256_loadu_ps(xr[c] + k);
            for (int i = 0; i < R; i++) acc[i][c] = _mm256_fmadd_ps(wv[i], xv, acc[i][c]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) {
            float s = hsum(acc[i][c]);
            for (int64_t k = K8; k < K; k++) s += load_w1(ft, wr[i], k) * xr[c][k];
            y[(t + c) * ldy + r + i] = s;
        }
}

typedef void (*ftile_fn)(int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx, int64_t t,
                         float *y, int64_t ldy);

LM_T static void drive_f(ftile_fn tile, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                         int64_t n, float *y, int64_t ldy) {
    for (int64_t tb = 0; tb < n; tb += LM_TBLOCK) {
        const int64_t te = n - tb < LM_TBLOCK ? n : tb + LM_TBLOCK;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r >= 4 ? 4 : (int)(r1 - r);
            for (int64_t t = tb; t < te; t += 2) {
                const int C = te - t >= 2 ? 2 : 1;
                if (R == 4) tile(4, C, w, r, x, ldx, t, y, ldy);
                else
                    for (int i = 0; i < R; i++) tile(1, C, w, r + i, x, ldx, t, y, ldy);
            }
        }
    }
}

#define DEFINE_FMM(NAME, FT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx,        \
                                 int64_t t, float *y, int64_t ldy) {                                           \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 2: ftile(FT, 4, 2, w, r, x, ldx, t, y, ldy); break;                                       \
        case 4 * 4 + 1: ftile(FT, 4, 1, w, r, x, ldx, t, y, ldy); break;                                       \
        case 1 * 4 + 2: ftile(FT, 1, 2, w, r, x, ldx, t, y, ldy); break;                                       \
        default: ftile(FT, 1, 1, w, r, x, ldx, t, y, ldy); break;                                              \
        }                                                                                                      \
    }                                                                                                          \
    LM_T static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n,     \
                          float *y, int64_t ldy) {                                                             \
        drive_f(NAME##_tile, w, r0, r1, x, ldx, n, y, ldy);                                                    \
    }

DEFINE_FMM(mm_f32, FT_F32)
DEFINE_FMM(mm_f16, FT_F16)
DEFINE_FMM(mm_bf16, FT_BF16)

/* ---------------------------------------------------------------- attention -- */

LM_T static void attn_scores(const float *q, const float *k, int64_t n, int32_t hd, int64_t stride, float scale,
                             float *s) {
    const int32_t h8 = hd / 8 * 8;
    for (int64_t j = 0; j < n; j++) {
        const float *kj = k + j * stride;
        __m256 acc = _mm256_setzero_ps();
        for (int32_t i = 0; i < h8; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), acc);
        float r = hsum(acc);
        for (int32_t i = h8; i < hd; i++) r += q[i] * kj[i];
        s[j] = r * scale;
    }
}

LM_T static void attn_accum(const float *p, const float *v, int64_t n, int32_t hd, int64_t stride, float *out) {
    const int32_t h8 = hd / 8 * 8;
    for (int32_t i0 = 0; i0 < h8; i0 += 32) { /* 32 output values in registers at a time */
        const int32_t w = h8 - i0 < 32 ? (h8 - i0) / 8 : 4;
        __m256 acc[4];
        for (int u = 0; u < w; u++) acc[u] = _mm256_loadu_ps(out + i0 + 8 * u);
        for (int64_t j = 0; j < n; j++) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const float *vj = v + j * stride + i0;
            for (int u = 0; u < w; u++) acc[u] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * u), acc[u]);
        }
        for (int u = 0; u < w; u++) _mm256_storeu_ps(out + i0 + 8 * u, acc[u]);
    }
    for (int64_t j = 0; j < n && h8 < hd; j++)
        for (int32_t i = h8; i < hd; i++) out[i] += p[j] * v[j * stride + i];
}

LM_T static void attn_scores_f16(const float *q, const uint16_t *k, int64_t n, int32_t hd, int64_t stride,
                                 float scale, float *s) {
    const int32_t h8 = hd / 8 * 8;
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *kj = k + j * stride;
        __m256 acc = _mm256_setzero_ps();
        for (int32_t i = 0; i < h8; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kj + i))),
                                  acc);
        float r = hsum(acc);
        for (int32_t i = h8; i < hd; i++) r += q[i] * half(kj[i]);
        s[j] = r * scale;
    }
}

LM_T static void attn_accum_f16(const float *p, const uint16_t *v, int64_t n, int32_t hd, int64_t stride,
                                float *out) {
    const int32_t h8 = hd / 8 * 8;
    for (int32_t i0 = 0; i0 < h8; i0 += 32) {
        const int32_t w = h8 - i0 < 32 ? (h8 - i0) / 8 : 4;
        __m256 acc[4];
        for (int u = 0; u < w; u++) acc[u] = _mm256_loadu_ps(out + i0 + 8 * u);
        for (int64_t j = 0; j < n; j++) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const uint16_t *vj = v + j * stride + i0;
            for (int u = 0; u < w; u++)
                acc[u] = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vj + 8 * u))), acc[u]);
        }
        for (int u = 0; u < w; u++) _mm256_storeu_ps(out + i0 + 8 * u, acc[u]);
    }
    for (int64_t j = 0; j < n && h8 < hd; j++)
        for (int32_t i = h8; i < hd; i++) out[i] += p[j] * half(v[j * stride + i]);
}

LM_T static void to_f16(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT), 0);
}

LM_T static void round_f16(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) x[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT)));
}

int lm_kernels_avx2(lm_kernels *k) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !has_f16c()) return 0;
    k->isa = LM_ISA_AVX2;
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

#else

int lm_kernels_avx2(lm_kernels *k) {
    (void)k;
    return 0;
}

#endif
