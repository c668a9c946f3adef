/* llama plugin — AVX-512 kernels (F, BW, VL, DQ, VNNI + FMA, F16C).
 *
 * Quantized weights: register tiles of up to 4 weight rows × 4 activation
 * rows. Per pair of 32-blocks, each weight row is unpacked once into 64
 * unsigned bytes (Q4: nibbles 0..15; Q8_0: w + 128) and its scales into
 * [d0, c0, d1, c1] (Q4_1: c = m; Q4_0: c = −8·d; Q8_0: c = −128·d), each
 * activation row is loaded once (64 int8 + [d0, s0, d1, s1]); then per
 * (row, activation): VPDPBUSD gives 16 int32 partial sums (8 per block),
 * p = [d0·da0, c0·s0, d1·da1, c1·s1], acc += float(sums) · (p0 ×8 | p2 ×8)
 * and lanes 1 and 3 of acc += p1, p3 (the offset/min terms). The final
 * value is the sum of the 16 lanes.
 *
 * Float weights: tiles of 4 rows × 4 activations over 16 columns at a time
 * (F16/BF16 widened in registers), masked loads for the tail.
 *
 * Prefill blocks the activations by LM_TBLOCK rows (they stay in L2 while
 * the weight rows pass through L1). Decode (one activation row) reads four
 * weight rows from four places of the thread's range at once (qrow4,
 * frow4): each is a long sequential stream the hardware prefetcher follows,
 * while neighbouring short rows side by side defeat it (measured: F16
 * 20 → 30 GB/s, Q8_0 9 → 28 GB/s on the 49152 × 576 output head). Q4 rows
 * in decode are unpacked with word permutations (fewer instructions). */
#include "llama_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

/* F16C (CPUID.1:ECX bit 29); not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}

#define LM_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,avx2")))
#define LM_INLINE static inline __attribute__((always_inline)) LM_T

enum { WT_Q8_0, WT_Q4_0, WT_Q4_1 };

/* Activation rows per block of the matrix products (their quantized or
 * float values stay in L2 while every weight row passes). */
#define LM_TBLOCK 128





/* --------------------------------------------------- activation quantizer -- */

LM_T static void quantize(const float *x, int64_t ldx, int64_t t0, int64_t t1, const lm_qact *qa) {
    const int64_t k = qa->k, nb = k / 32;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * ldx;
        int8_t *q = qa->q + t * qa->row_q;
        float *s = qa->s + t * qa->row_s;
        if (nb & 1) {
            memset(q + k, 0, (size_t)(qa->row_q - k));
            memset(s + (nb / 2) * 8, 0, 8 * sizeof *s);
        }
        for (int64_t b = 0; b < nb; b++) {
            const __m512 v0 = _mm512_loadu_ps(xr + b * 32), v1 = _mm512_loadu_ps(xr + b * 32 + 16);
            const __m512 a = _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1));
            const float amax = _mm512_reduce_max_ps(a);
            const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            const __m512 vid = _mm512_set1_ps(id);
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)); /* nearest even */
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
            _mm_storeu_si128((__m128i *)(q + b * 32), _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + b * 32 + 16), _mm512_cvtsepi32_epi8(i1));
            const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            /* f16 rounding as ggml's FP32_TO_FP16 (F16C, nearest even) */
            const __m128 dd = _mm_set_ps(0.0f, 0.0f, d * (float)sum, d);
            const __m128 r16 = _mm_cvtph_ps(_mm_cvtps_ph(dd, _MM_FROUND_TO_NEAREST_INT));
            const float d16 = _mm_cvtss_f32(r16);
            float *sp = s + (b / 2) * 8 + (b % 2) * 2;
            sp[0] = d16;
            sp[1] = _mm_cvtss_f32(_mm_shuffle_ps(r16, r16, 1));
            sp[4] = d16;
            sp[5] = d16 * (float)sum;
        }
    }
}

/* ------------------------------------------------------- weight unpacking -- */

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Blocks b and b+1 (one = 1: block b only, the upper half zero). `end` is
 * the end of the matrix: loads never reach past it. Two ways for Q4: by
 * word permutation (fewer instructions, better for decode where each
 * unpacked pair is used once) or by shifts and a lane shuffle (shorter
 * latency, slightly better in the prefill tiles). */
LM_INLINE void unpack(int wt, int perm, const uint8_t *row, int64_t b, int one, const uint8_t *end, __m512i *wq,
                      __m128 *ws) {
    if (wt == WT_Q8_0) {
        const uint8_t *p = row + b * 34;
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(p + 2));
        const __m256i hi = one ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)(p + 36));
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        *wq = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
        const uint32_t h = (uint32_t)load_u16(p) * 0x10001u, h1 = one ? 0 : (uint32_t)load_u16(p + 34) * 0x10001u;
        const __m128 d = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)h1, (int)h));
        *ws = _mm_mul_ps(d, _mm_set_ps(-128.0f, 1.0f, -128.0f, 1.0f));
        if (one) *wq = _mm512_maskz_mov_epi8(0xffffffffull, *wq);
    } else if (perm) {
        /* Q4_0 (18-byte blocks: d, 16 bytes) and Q4_1 (20 bytes: d, m, 16
         * bytes) keep every field 16-bit aligned: one 64-byte load covers
         * both blocks and two word permutations pick out the nibble bytes
         * (each 16-byte half twice) and the f16 scales. */
        const int bs = wt == WT_Q4_1 ? 20 : 18, w16 = bs / 2;
        const uint8_t *p = row + b * bs;
        const __m512i raw = ((p + 64 <= end) && !one) ? _mm512_loadu_si512((const void *)p)
                                                      : _mm512_maskz_loadu_epi8(one ? (1ull << bs) - 1
                                                                                    : (1ull << (2 * bs)) - 1, p);
        const int q0 = w16 - 8, q1 = 2 * w16 - 8; /* word offsets of the two nibble arrays */
        const __m512i pick = _mm512_set_epi16(q1 + 7, q1 + 6, q1 + 5, q1 + 4, q1 + 3, q1 + 2, q1 + 1, q1,
                                              q1 + 7, q1 + 6, q1 + 5, q1 + 4, q1 + 3, q1 + 2, q1 + 1, q1,
                                              q0 + 7, q0 + 6, q0 + 5, q0 + 4, q0 + 3, q0 + 2, q0 + 1, q0,
                                              q0 + 7, q0 + 6, q0 + 5, q0 + 4, q0 + 3, q0 + 2, q0 + 1, q0);
        const __m512i twice = _mm512_permutexvar_epi16(pick, raw);
        /* 128-bit lanes (q0, q0, q1, q1) → (q0 lo, q0 hi, q1 lo, q1 hi) */
        const __m512i shifted = _mm512_srlv_epi64(twice, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
        *wq = _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
        if (one) *wq = _mm512_maskz_mov_epi8(0xffffffffull, *wq);
        if (wt == WT_Q4_1) {
            const __m512i sidx = _mm512_castsi128_si512(_mm_set_epi16(0, 0, 0, 0, 11, 10, 1, 0));
            __m128 sc = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(sidx, raw)));
            *ws = one ? _mm_blend_ps(sc, _mm_setzero_ps(), 0xc) : sc;
        } else {
            const __m512i sidx = _mm512_castsi128_si512(_mm_set_epi16(0, 0, 0, 0, 9, 9, 0, 0));
            const __m128 d = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(sidx, raw)));
            const __m128 sc = _mm_mul_ps(d, _mm_set_ps(-8.0f, 1.0f, -8.0f, 1.0f));
            *ws = one ? _mm_blend_ps(sc, _mm_setzero_ps(), 0xc) : sc;
        }
    } else {
        /* two 16-byte loads, both nibble halves by a shift, lanes reordered */
        const int bs = wt == WT_Q4_1 ? 20 : 18, off = wt == WT_Q4_1 ? 4 : 2;
        const uint8_t *p = row + b * bs;
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(p + off));
        const __m128i q1 = one ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(p + bs + off));
        const __m256i a = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(a), _mm256_srli_epi16(a, 4), 1);
        /* lanes (q0, q1, q0>>4, q1>>4) → (q0 lo, q0 hi, q1 lo, q1 hi) */
        *wq = _mm512_and_si512(_mm512_shuffle_i64x2(w, w, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0f));
        if (wt == WT_Q4_1) {
            const uint32_t h0 = load_u32(p), h1 = one ? 0 : load_u32(p + bs);
            *ws = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)h1, (int)h0));
        } else {
            const uint32_t h0 = (uint32_t)load_u16(p) * 0x10001u, h1 = one ? 0 : (uint32_t)load_u16(p + bs) * 0x10001u;
            const __m128 d = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)h1, (int)h0));
            *ws = _mm_mul_ps(d, _mm_set_ps(-8.0f, 1.0f, -8.0f, 1.0f));
        }
    }
}

/* ------------------------------------------------------- quantized tiles -- */

LM_INLINE void qtile(int wt, int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t, float *y,
                     int64_t ldy) {
    const uint8_t *end = w->data + (size_t)w->rows * w->row_bytes;
    const int64_t nb = w->cols / 32, np = nb / 2;
    const int soff = wt == WT_Q4_1 ? 0 : 4;
    const __m512i idx = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[4][4];
    const uint8_t *wr[4];
    const int8_t *aq[4];
    const float *as[4];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)(r + i) * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm512_setzero_ps();
    }
    for (int c = 0; c < C; c++) {
        aq[c] = qa->q + (t + c) * qa->row_q;
        as[c] = qa->s + (t + c) * qa->row_s + soff;
    }
    for (int64_t j = 0; j <= np; j++) {
        const int one = j == np;
        if (one && !(nb & 1)) break;
        __m512i wq[4];
        __m128 ws[4];
        for (int i = 0; i < R; i++) unpack(wt, 0, wr[i], 2 * j, one, end, &wq[i], &ws[i]);
        for (int c = 0; c < C; c++) {
            const __m512i a = _mm512_loadu_si512((const void *)(aq[c] + j * 64));
            const __m128 sa = _mm_loadu_ps(as[c] + j * 8);
            for (int i = 0; i < R; i++) {
                const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i], a);
                const __m512 p = _mm512_castps128_ps512(_mm_mul_ps(ws[i], sa));
                acc[i][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(idx, p), acc[i][c]);
                acc[i][c] = _mm512_mask_add_ps(acc[i][c], 0x000a, acc[i][c], p);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) y[(t + c) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][c]);
}

/* One weight row × one activation row (decode): rows are streamed one after
 * the other (several rows side by side defeat the hardware prefetcher on
 * rows this short), two accumulators to hide the FMA latency. */
LM_INLINE float qrow(int wt, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t) {
    const uint8_t *end = w->data + (size_t)w->rows * w->row_bytes;
    const int64_t nb = w->cols / 32, np = nb / 2;
    const int soff = wt == WT_Q4_1 ? 0 : 4;
    const __m512i idx = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
    const int8_t *aq = qa->q + t * qa->row_q;
    const float *as = qa->s + t * qa->row_s + soff;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t j = 0;
    for (; j + 2 <= np; j += 2)
        for (int u = 0; u < 2; u++) {
            __m512i wq;
            __m128 ws;
            unpack(wt, 1, wr, 2 * (j + u), 0, end, &wq, &ws);
            const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq,
                                                     _mm512_loadu_si512((const void *)(aq + (j + u) * 64)));
            const __m512 p = _mm512_castps128_ps512(_mm_mul_ps(ws, _mm_loadu_ps(as + (j + u) * 8)));
            acc[u] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(idx, p), acc[u]);
            acc[u] = _mm512_mask_add_ps(acc[u], 0x000a, acc[u], p);
        }
    for (; j <= np; j++) {
        const int one = j == np;
        if (one && !(nb & 1)) break;
        __m512i wq;
        __m128 ws;
        unpack(wt, 1, wr, 2 * j, one, end, &wq, &ws);
        const __m512i isum =
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, _mm512_loadu_si512((const void *)(aq + j * 64)));
        const __m512 p = _mm512_castps128_ps512(_mm_mul_ps(ws, _mm_loadu_ps(as + j * 8)));
        acc[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(idx, p), acc[0]);
        acc[0] = _mm512_mask_add_ps(acc[0], 0x000a, acc[0], p);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

/* Four rows far apart × one activation row (decode): four memory streams in
 * flight, four independent accumulators. */
LM_INLINE void qrow4(int wt, const lm_mat *w, const int64_t *rs, const lm_qact *qa, float *ys) {
    const uint8_t *end = w->data + (size_t)w->rows * w->row_bytes;
    const int64_t nb = w->cols / 32, np = nb / 2;
    const int soff = wt == WT_Q4_1 ? 0 : 4;
    const __m512i idx = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const uint8_t *wr[4];
    __m512 acc[4];
    for (int i = 0; i < 4; i++) wr[i] = w->data + (size_t)rs[i] * w->row_bytes, acc[i] = _mm512_setzero_ps();
    for (int64_t j = 0; j <= np; j++) {
        const int one = j == np;
        if (one && !(nb & 1)) break;
        const __m512i a = _mm512_loadu_si512((const void *)(qa->q + j * 64));
        const __m128 sa = _mm_loadu_ps(qa->s + soff + j * 8);
        for (int i = 0; i < 4; i++) {
            __m512i wq;
            __m128 ws;
            unpack(wt, 1, wr[i], 2 * j, one, end, &wq, &ws);
            const __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, a);
            const __m512 p = _mm512_castps128_ps512(_mm_mul_ps(ws, sa));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_permutexvar_ps(idx, p), acc[i]);
            acc[i] = _mm512_mask_add_ps(acc[i], 0x000a, acc[i], p);
        }
    }
    for (int i = 0; i < 4; i++) ys[i] = _mm512_reduce_add_ps(acc[i]);
}

/* Rows [r0, r1) × activations [0, n) in tiles of 4 × 4 and the remainders;
 * decode (n = 1) as four streams of rows (qrow4). */
typedef void (*qtile_fn)(int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t, float *y,
                         int64_t ldy);

/* Blocks of LM_TBLOCK activation rows (kept in L2) × all weight rows in
 * steps of 4 (kept in L1) × tiles of 4 activation rows. */
LM_T static void drive_q(qtile_fn tile, const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n,
                         float *y, int64_t ldy) {
    for (int64_t tb = 0; tb < n; tb += LM_TBLOCK) {
        const int64_t te = n - tb < LM_TBLOCK ? n : tb + LM_TBLOCK;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r >= 4 ? 4 : (int)(r1 - r);
            for (int64_t t = tb; t < te; t += 4) {
                const int C = te - t >= 4 ? 4 : (int)(te - t);
                if (R == 4 || C == 4) {
                    tile(R, C, w, r, qa, t, y, ldy);
                } else {
                    for (int i = 0; i < R; i++)
                        for (int c = 0; c < C; c++) tile(1, 1, w, r + i, qa, t + c, y, ldy);
                }
            }
        }
    }
}

#define DEFINE_QMM(NAME, WT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, int64_t r, const lm_qact *qa, int64_t t,       \
                                 float *y, int64_t ldy) {                                                      \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 4: qtile(WT, 4, 4, w, r, qa, t, y, ldy); break;                                            \
        case 4 * 4 + 3: qtile(WT, 4, 3, w, r, qa, t, y, ldy); break;                                            \
        case 4 * 4 + 2: qtile(WT, 4, 2, w, r, qa, t, y, ldy); break;                                            \
        case 4 * 4 + 1: qtile(WT, 4, 1, w, r, qa, t, y, ldy); break;                                            \
        case 3 * 4 + 4: qtile(WT, 3, 4, w, r, qa, t, y, ldy); break;                                            \
        case 2 * 4 + 4: qtile(WT, 2, 4, w, r, qa, t, y, ldy); break;                                            \
        case 1 * 4 + 4: qtile(WT, 1, 4, w, r, qa, t, y, ldy); break;                                            \
        default: qtile(WT, 1, 1, w, r, qa, t, y, ldy); break;                                                   \
        }                                                                                                      \
    }                                                                                                          \
    LM_T static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const lm_qact *qa, int64_t n, float *y,     \
                          int64_t ldy) {                                                                       \
        if (n == 1) {                                                                                          \
            const int64_t h = (r1 - r0) / 4;                                                                   \
            for (int64_t r = r0; r < r0 + h; r++) {                                                            \
                const int64_t rs[4] = {r, r + h, r + 2 * h, r + 3 * h};                                        \
                float ys[4];                                                                                   \
                qrow4(WT, w, rs, qa, ys);                                                                      \
                for (int i = 0; i < 4; i++) y[rs[i]] = ys[i];                                                  \
            }                                                                                                  \
            for (int64_t r = r0 + 4 * h; r < r1; r++) y[r] = qrow(WT, w, r, qa, 0);                            \
            return;                                                                                            \
        }                                                                                                      \
        drive_q(NAME##_tile, w, r0, r1, qa, n, y, ldy);                                                        \
    }

DEFINE_QMM(mm_q8_0, WT_Q8_0)
DEFINE_QMM(mm_q4_0, WT_Q4_0)
DEFINE_QMM(mm_q4_1, WT_Q4_1)

/* ----------------------------------------- exact: F32 activations (mmx) -- */

LM_INLINE __m512 splat_f16(uint16_t h) { return _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)))); }

/* Block b of a quantized row as two vectors of 16 floats (elements 0–15,
 * 16–31), with bp_dequantize_row's arithmetic: Q8_0 q·d, Q4_0 (q − 8)·d,
 * Q4_1 d·q + m (d·q is exact, so only the sum rounds). */
LM_INLINE void xunpack(int wt, const uint8_t *row, int64_t b, __m512 *lo, __m512 *hi) {
    if (wt == WT_Q8_0) {
        const uint8_t *p = row + b * 34;
        const __m512 d = splat_f16(load_u16(p));
        *lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)))), d);
        *hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18)))), d);
        return;
    }
    const int bs = wt == WT_Q4_1 ? 20 : 18, off = wt == WT_Q4_1 ? 4 : 2;
    const uint8_t *p = row + b * bs;
    const __m128i q = _mm_loadu_si128((const __m128i *)(p + off)), mask = _mm_set1_epi8(0x0f);
    const __m512 fl = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask)));
    const __m512 fh = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask)));
    const __m512 d = splat_f16(load_u16(p));
    if (wt == WT_Q4_1) {
        const __m512 m = splat_f16(load_u16(p + 2));
        *lo = _mm512_add_ps(_mm512_mul_ps(d, fl), m);
        *hi = _mm512_add_ps(_mm512_mul_ps(d, fh), m);
    } else {
        const __m512 eight = _mm512_set1_ps(8.0f);
        *lo = _mm512_mul_ps(d, _mm512_sub_ps(fl, eight));
        *hi = _mm512_mul_ps(d, _mm512_sub_ps(fh, eight));
    }
}

/* R weight rows (any rows: consecutive in prefill, far apart in decode) ×
 * C activation rows: one 16-lane accumulator per pair, FMAs in ascending
 * column order, one final reduction: the same sequence of operations for a
 * pair whatever R and C are, so prefill and decode give identical values. */
LM_INLINE void xtile(int wt, int R, int C, const lm_mat *w, const int64_t *rows, const float *x, int64_t ldx,
                     int64_t t, float *y, int64_t ldy) {
    const int64_t nb = w->cols / 32;
    __m512 acc[4][4];
    const uint8_t *wr[4];
    const float *xr[4];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)rows[i] * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm512_setzero_ps();
    }
    for (int c = 0; c < C; c++) xr[c] = x + (t + c) * ldx;
    for (int64_t b = 0; b < nb; b++) {
        __m512 lo[4], hi[4];
        for (int i = 0; i < R; i++) xunpack(wt, wr[i], b, &lo[i], &hi[i]);
        for (int c = 0; c < C; c++) {
            const __m512 xl = _mm512_loadu_ps(xr[c] + b * 32), xh = _mm512_loadu_ps(xr[c] + b * 32 + 16);
            for (int i = 0; i < R; i++) {
                acc[i][c] = _mm512_fmadd_ps(lo[i], xl, acc[i][c]);
                acc[i][c] = _mm512_fmadd_ps(hi[i], xh, acc[i][c]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) y[(t + c) * ldy + rows[i]] = _mm512_reduce_add_ps(acc[i][c]);
}

typedef void (*xtile_fn)(int R, int C, const lm_mat *w, const int64_t *rows, const float *x, int64_t ldx, int64_t t,
                         float *y, int64_t ldy);

/* Prefill: blocks of LM_TBLOCK activation rows × weight rows in steps of 4
 * × tiles of 4 activation rows. Decode (n = 1): four rows far apart at once
 * (four sequential memory streams, as mm_* do). */
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
            for (int64_t t = tb; t < te; t += 4) {
                const int C = te - t >= 4 ? 4 : (int)(te - t);
                if (R == 4 || C == 4) {
                    tile(R, C, w, rs, x, ldx, t, y, ldy);
                } else {
                    for (int i = 0; i < R; i++)
                        for (int c = 0; c < C; c++) tile(1, 1, w, rs + i, x, ldx, t + c, y, ldy);
                }
            }
        }
    }
}

#define DEFINE_XMM(NAME, WT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, const int64_t *rows, const float *x,           \
                                 int64_t ldx, int64_t t, float *y, int64_t ldy) {                              \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 4: xtile(WT, 4, 4, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 4 * 4 + 3: xtile(WT, 4, 3, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 4 * 4 + 2: xtile(WT, 4, 2, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 4 * 4 + 1: xtile(WT, 4, 1, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 3 * 4 + 4: xtile(WT, 3, 4, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 2 * 4 + 4: xtile(WT, 2, 4, w, rows, x, ldx, t, y, ldy); break;                                    \
        case 1 * 4 + 4: xtile(WT, 1, 4, w, rows, x, ldx, t, y, ldy); break;                                    \
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

LM_INLINE __m512 load_w(int ft, const uint8_t *row, int64_t k, __mmask16 m) {
    if (m == (__mmask16)0xffff) { /* plain loads in the main loop: masked ones are slower */
        if (ft == FT_F32) return _mm512_loadu_ps((const float *)(const void *)row + k);
        const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)(const void *)row + k));
        if (ft == FT_F16) return _mm512_cvtph_ps(h);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (ft == FT_F32) return _mm512_maskz_loadu_ps(m, (const float *)(const void *)row + k);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)(const void *)row + k);
    if (ft == FT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

LM_INLINE void ftile(int ft, int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx, int64_t t,
                     float *y, int64_t ldy) {
    const int64_t K = w->cols, K16 = K / 16 * 16;
    __m512 acc[4][4];
    const uint8_t *wr[4];
    const float *xr[4];
    for (int i = 0; i < R; i++) {
        wr[i] = w->data + (size_t)(r + i) * w->row_bytes;
        for (int c = 0; c < C; c++) acc[i][c] = _mm512_setzero_ps();
    }
    for (int c = 0; c < C; c++) xr[c] = x + (t + c) * ldx;
    for (int64_t k = 0; k < K16; k += 16) {
        __m512 wv[4];
        for (int i = 0; i < R; i++) wv[i] = load_w(ft, wr[i], k, (__mmask16)0xffff);
        for (int c = 0; c < C; c++) {
            const __m512 xv = _mm512_loadu_ps(xr[c] + k);
            for (int i = 0; i < R; i++) acc[i][c] = _mm512_fmadd_ps(wv[i], xv, acc[i][c]);
        }
    }
    if (K16 < K) {
        const __mmask16 m = (__mmask16)((1u << (K - K16)) - 1u);
        __m512 wv[4];
        for (int i = 0; i < R; i++) wv[i] = load_w(ft, wr[i], K16, m);
        for (int c = 0; c < C; c++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xr[c] + K16);
            for (int i = 0; i < R; i++) acc[i][c] = _mm512_fmadd_ps(wv[i], xv, acc[i][c]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++) y[(t + c) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][c]);
}

/* One weight row × one activation row (decode), streamed row after row,
 * four accumulators. */
LM_INLINE float frow(int ft, const lm_mat *w, int64_t r, const float *x) {
    const int64_t K = w->cols, K16 = K / 16 * 16;
    const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t k = 0;
    for (; k + 64 <= K; k += 64)
        for (int u = 0; u < 4; u++)
            acc[u] = _mm512_fmadd_ps(load_w(ft, wr, k + 16 * u, (__mmask16)0xffff), _mm512_loadu_ps(x + k + 16 * u),
                                     acc[u]);
    for (; k < K16; k += 16)
        acc[0] = _mm512_fmadd_ps(load_w(ft, wr, k, (__mmask16)0xffff), _mm512_loadu_ps(x + k), acc[0]);
    if (K16 < K) {
        const __mmask16 m = (__mmask16)((1u << (K - K16)) - 1u);
        acc[1] = _mm512_fmadd_ps(load_w(ft, wr, K16, m), _mm512_maskz_loadu_ps(m, x + K16), acc[1]);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

typedef void (*ftile_fn)(int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx, int64_t t,
                         float *y, int64_t ldy);

LM_T static void drive_f(ftile_fn tile, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                         int64_t n, float *y, int64_t ldy) {
    for (int64_t tb = 0; tb < n; tb += LM_TBLOCK) {
        const int64_t te = n - tb < LM_TBLOCK ? n : tb + LM_TBLOCK;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r >= 4 ? 4 : (int)(r1 - r);
            for (int64_t t = tb; t < te; t += 4) {
                const int C = te - t >= 4 ? 4 : (int)(te - t);
                if (R == 4 || C == 4) {
                    tile(R, C, w, r, x, ldx, t, y, ldy);
                } else {
                    for (int i = 0; i < R; i++)
                        for (int c = 0; c < C; c++) tile(1, 1, w, r + i, x, ldx, t + c, y, ldy);
                }
            }
        }
    }
}

/* Decode: four rows far apart at once (four sequential memory streams in
 * flight, one accumulator each); K a multiple of 16. */
LM_INLINE void frow4(int ft, const lm_mat *w, const int64_t *rs, const float *x, float *ys) {
    const int64_t K = w->cols;
    const uint8_t *wr[4];
    __m512 acc[4];
    for (int i = 0; i < 4; i++) wr[i] = w->data + (size_t)rs[i] * w->row_bytes, acc[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
        const __m512 xv = _mm512_loadu_ps(x + k);
        for (int i = 0; i < 4; i++) acc[i] = _mm512_fmadd_ps(load_w(ft, wr[i], k, (__mmask16)0xffff), xv, acc[i]);
    }
    for (int i = 0; i < 4; i++) ys[i] = _mm512_reduce_add_ps(acc[i]);
}

#define DEFINE_FMM(NAME, FT)                                                                                   \
    LM_T static void NAME##_tile(int R, int C, const lm_mat *w, int64_t r, const float *x, int64_t ldx,        \
                                 int64_t t, float *y, int64_t ldy) {                                           \
        switch (R * 4 + C) {                                                                                   \
        case 4 * 4 + 4: ftile(FT, 4, 4, w, r, x, ldx, t, y, ldy); break;                                       \
        case 4 * 4 + 3: ftile(FT, 4, 3, w, r, x, ldx, t, y, ldy); break;                                       \
        case 4 * 4 + 2: ftile(FT, 4, 2, w, r, x, ldx, t, y, ldy); break;                                       \
        case 4 * 4 + 1: ftile(FT, 4, 1, w, r, x, ldx, t, y, ldy); break;                                       \
        case 3 * 4 + 4: ftile(FT, 3, 4, w, r, x, ldx, t, y, ldy); break;                                       \
        case 2 * 4 + 4: ftile(FT, 2, 4, w, r, x, ldx, t, y, ldy); break;                                       \
        case 1 * 4 + 4: ftile(FT, 1, 4, w, r, x, ldx, t, y, ldy); break;                                       \
        default: ftile(FT, 1, 1, w, r, x, ldx, t, y, ldy); break;                                              \
        }                                                                                                      \
    }                                                                                                          \
    LM_T static void NAME(const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx, int64_t n,     \
                          float *y, int64_t ldy) {                                                             \
        if (n == 1) {                                                                                          \
            const int64_t h = w->cols % 16 == 0 ? (r1 - r0) / 4 : 0;                                           \
            for (int64_t r = r0; r < r0 + h; r++) {                                                            \
                const int64_t rs[4] = {r, r + h, r + 2 * h, r + 3 * h};                                        \
                float ys[4];                                                                                   \
                frow4(FT, w, rs, x, ys);                                                                       \
                for (int i = 0; i < 4; i++) y[rs[i]] = ys[i];                                                  \
            }                                                                                                  \
            for (int64_t r = r0 + 4 * h; r < r1; r++) y[r] = frow(FT, w, r, x);                                \
            return;                                                                                            \
        }                                                                                                      \
        drive_f(NAME##_tile, w, r0, r1, x, ldx, n, y, ldy);                                                    \
    }

DEFINE_FMM(mm_f32, FT_F32)
DEFINE_FMM(mm_f16, FT_F16)
DEFINE_FMM(mm_bf16, FT_BF16)

/* ---------------------------------------------------------------- attention -- */

/* Four 16-lane sums → one 4-lane vector [Σa, Σb, Σc, Σd]. */
LM_INLINE __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); /* a0b0a1b1 per lane */
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                      _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2))); /* a b c d per lane */
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

LM_INLINE __m512 dot_part(const float *q, const float *kj, int32_t hd) {
    __m512 acc = _mm512_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= hd; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(kj + i), acc);
    if (i < hd) {
        const __mmask16 m = (__mmask16)((1u << (hd - i)) - 1u);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, kj + i), acc);
    }
    return acc;
}

LM_T static void attn_scores(const float *q, const float *k, int64_t n, int32_t hd, int64_t stride, float scale,
                             float *s) {
    const __m128 vs = _mm_set1_ps(scale);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *kj = k + j * stride;
        const __m128 r = reduce4(dot_part(q, kj, hd), dot_part(q, kj + stride, hd), dot_part(q, kj + 2 * stride, hd),
                                 dot_part(q, kj + 3 * stride, hd));
        _mm_storeu_ps(s + j, _mm_mul_ps(r, vs));
    }
    for (; j < n; j++) s[j] = _mm512_reduce_add_ps(dot_part(q, k + j * stride, hd)) * scale;
}

LM_T static void attn_accum(const float *p, const float *v, int64_t n, int32_t hd, int64_t stride, float *out) {
    for (int32_t i0 = 0; i0 < hd; i0 += 64) { /* 64 output values in registers at a time */
        const int32_t w = hd - i0 < 64 ? hd - i0 : 64;
        __mmask16 m[4];
        __m512 acc[4];
        for (int u = 0; u < 4; u++) {
            const int32_t left = w - 16 * u;
            m[u] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1u) : (__mmask16)0;
            acc[u] = _mm512_maskz_loadu_ps(m[u], out + i0 + 16 * u);
        }
        if (w == 64) {
            for (int64_t j = 0; j < n; j++) {
                const __m512 pj = _mm512_set1_ps(p[j]);
                const float *vj = v + j * stride + i0;
                for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 16 * u), acc[u]);
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                const __m512 pj = _mm512_set1_ps(p[j]);
                const float *vj = v + j * stride + i0;
                for (int u = 0; u < 4; u++)
                    acc[u] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m[u], vj + 16 * u), acc[u]);
            }
        }
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(out + i0 + 16 * u, m[u], acc[u]);
    }
}

LM_INLINE __m512 load_h(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

LM_INLINE __m512 dot_part_f16(const float *q, const uint16_t *kj, int32_t hd) {
    __m512 acc = _mm512_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= hd; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kj + i))),
                              acc);
    if (i < hd) {
        const __mmask16 m = (__mmask16)((1u << (hd - i)) - 1u);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_h(kj + i, m), acc);
    }
    return acc;
}

LM_T static void attn_scores_f16(const float *q, const uint16_t *k, int64_t n, int32_t hd, int64_t stride,
                                 float scale, float *s) {
    const __m128 vs = _mm_set1_ps(scale);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *kj = k + j * stride;
        const __m128 r = reduce4(dot_part_f16(q, kj, hd), dot_part_f16(q, kj + stride, hd),
                                 dot_part_f16(q, kj + 2 * stride, hd), dot_part_f16(q, kj + 3 * stride, hd));
        _mm_storeu_ps(s + j, _mm_mul_ps(r, vs));
    }
    for (; j < n; j++) s[j] = _mm512_reduce_add_ps(dot_part_f16(q, k + j * stride, hd)) * scale;
}

LM_T static void attn_accum_f16(const float *p, const uint16_t *v, int64_t n, int32_t hd, int64_t stride,
                                float *out) {
    for (int32_t i0 = 0; i0 < hd; i0 += 64) {
        const int32_t w = hd - i0 < 64 ? hd - i0 : 64;
        __mmask16 m[4];
        __m512 acc[4];
        for (int u = 0; u < 4; u++) {
            const int32_t left = w - 16 * u;
            m[u] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1u) : (__mmask16)0;
            acc[u] = _mm512_maskz_loadu_ps(m[u], out + i0 + 16 * u);
        }
        if (w == 64) {
            for (int64_t j = 0; j < n; j++) {
                const __m512 pj = _mm512_set1_ps(p[j]);
                const uint16_t *vj = v + j * stride + i0;
                for (int u = 0; u < 4; u++)
                    acc[u] = _mm512_fmadd_ps(pj, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vj + 16 * u))),
                                             acc[u]);
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                const __m512 pj = _mm512_set1_ps(p[j]);
                const uint16_t *vj = v + j * stride + i0;
                for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(pj, load_h(vj + 16 * u, m[u]), acc[u]);
            }
        }
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(out + i0 + 16 * u, m[u], acc[u]);
    }
}

LM_T static void to_f16(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT));
    }
}

LM_T static void round_f16(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm512_mask_storeu_ps(x + i, m, _mm512_cvtph_ps(h));
    }
}

int lm_kernels_avx512(lm_kernels *k) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("fma") || !has_f16c() ||
        !__builtin_cpu_supports("avx2"))
        return 0;
    k->isa = LM_ISA_AVX512;
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

int lm_kernels_avx512(lm_kernels *k) {
    (void)k;
    return 0;
}

#endif
