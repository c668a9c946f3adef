/* The llama plugin's kernels, compiled into this test from their sources:
 * every implementation this CPU runs (AVX2, AVX-512) against the portable
 * C one on shared inputs.
 *   - activation quantization: identical int8 values and scales (all
 *     implementations round to nearest even and round d to f16 the same
 *     way), for rows with outliers, zeros and odd block counts;
 *   - matrix products for every weight type (F32, F16, BF16, Q8_0, Q4_0,
 *     Q4_1), with weight rows of 1–3 and 5 blocks (odd counts exercise the
 *     single-block tail), 1–9 and 37 rows, 1–6, 9 and 130 activation rows
 *     (every tile remainder; 130 crosses an activation block): the integer
 *     sums are exact, so results agree to float reassociation, 1e-5 of the
 *     row's Σ|w·x| (the offset forms — Q4_0's −8·d·Σq, Q8_0's +128 in
 *     VPDPBUSD, Q4_1's m·s — cancel terms up to ~100× the result, so the
 *     bound is above float epsilon);
 *   - the semantics of the quantized products: the generic result equals a
 *     double-precision dot product of the dequantized weights with the
 *     dequantized activations, plus for Q4_1 the f16 rounding of the block
 *     sum s = d·Σq that llama.cpp's Q8_1 blocks carry (1e-5 of Σ|w·x|);
 *   - precision = "exact" (check_mmx): the on-the-fly dequantization bit
 *     for bit against bp_dequantize_row, float accumulation against double,
 *     and decode = batched rows bit for bit;
 *   - attention scores/accumulation over F32 and F16 caches, f16
 *     conversions, for head dims 8–128 (masked tails). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/quant.h"
#include "bp_test.h"
#include "llama_kernels.h"

static uint64_t rng_state = 12345;
static double uni(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static void make_x(float *x, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n * k; i++) {
        double v = 2.0 * uni() - 1.0;
        if (i % 53 == 7) v *= 40.0; /* outliers, as LLM residual streams have */
        if (i % 97 == 3) v = 0.0;
        x[i] = (float)v;
    }
    if (n * k >= 32)
        for (int64_t i = 0; i < 32; i++) x[i] = 0.0f; /* an all-zero block: d = 0 */
}

static lm_qact qact_new(int64_t n, int64_t k) {
    lm_qact q = {k, lm_qact_row_q(k), lm_qact_row_s(k), NULL, NULL};
    /* C11 aligned_alloc: the size must be a multiple of the alignment */
    q.q = aligned_alloc(64, ((size_t)(n * q.row_q) + 127) / 64 * 64);
    q.s = aligned_alloc(64, ((size_t)(n * q.row_s) * sizeof(float) + 127) / 64 * 64);
    memset(q.q, 0x5a, (size_t)(n * q.row_q)); /* garbage the quantizer must overwrite */
    for (int64_t i = 0; i < n * q.row_s; i++) q.s[i] = 1e30f;
    return q;
}

static void check_quantize(const lm_kernels *ref, const lm_kernels *kr) {
    static const int64_t ks[] = {32, 64, 96, 160, 576};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        const int64_t k = ks[i], n = 3;
        float *x = malloc((size_t)(n * k) * sizeof *x);
        make_x(x, n, k);
        lm_qact a = qact_new(n, k), b = qact_new(n, k);
        ref->quantize(x, k, 0, n, &a);
        kr->quantize(x, k, 0, n, &b);
        CHECKF(memcmp(a.q, b.q, (size_t)(n * a.row_q)) == 0, "%s quantize k=%lld: int8 values differ",
               lm_isa_name(kr->isa), (long long)k);
        CHECKF(memcmp(a.s, b.s, (size_t)(n * a.row_s) * sizeof(float)) == 0, "%s quantize k=%lld: scales differ",
               lm_isa_name(kr->isa), (long long)k);
        free(x), free(a.q), free(a.s), free(b.q), free(b.s);
    }
}

/* Dequantized activation value t, i from the lm_qact layout. */
static double act_value(const lm_qact *qa, int64_t t, int64_t i) {
    const int64_t b = i / 32;
    const float d = qa->s[t * qa->row_s + (b / 2) * 8 + (b % 2) * 2];
    return (double)d * qa->q[t * qa->row_q + i];
}

/* Q4_1 × Q8_1-style activations: Σ_b m_b · (s16_b − d16_b·Σq_b), what the
 * f16-rounded block sums add to the exact dot product. */
static double q4_1_sum_rounding(const uint8_t *wrow, const lm_qact *qa, int64_t t, int64_t k) {
    double c = 0.0;
    for (int64_t b = 0; b < k / 32; b++) {
        const float m = lm_f16_to_f32(lm_load_u16(wrow + b * 20 + 2));
        const float *sp = qa->s + t * qa->row_s + (b / 2) * 8 + (b % 2) * 2;
        int64_t sum = 0;
        for (int i = 0; i < 32; i++) sum += qa->q[t * qa->row_q + b * 32 + i];
        c += (double)m * ((double)sp[1] - (double)sp[0] * (double)sum);
    }
    return c;
}

static void check_mm(const lm_kernels *ref, const lm_kernels *const *krs, int n_kr, int32_t dtype, int64_t k) {
    static const int64_t row_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 37};
    static const int64_t n_counts[] = {1, 2, 3, 4, 5, 6, 9, 130};
    const int64_t max_rows = 37, max_n = 130;
    float *wf = malloc((size_t)(max_rows * k) * sizeof *wf), *wd = malloc((size_t)(max_rows * k) * sizeof *wd);
    for (int64_t i = 0; i < max_rows * k; i++) wf[i] = (float)(2.0 * uni() - 1.0) * (i % 41 == 0 ? 5.0f : 1.0f);
    bp_tensor probe = bp_tensor_view(dtype, 2, (int64_t[2]){max_rows, k}, NULL);
    const size_t nbytes = bp_tensor_nbytes(&probe), row_bytes = nbytes / (size_t)max_rows;
    uint8_t *wq = malloc(nbytes);
    for (int64_t r = 0; r < max_rows; r++) {
        bp_quantize_row(dtype, wf + r * k, wq + (size_t)r * row_bytes, k, NULL);
        bp_dequantize_row(dtype, wq + (size_t)r * row_bytes, wd + r * k, k, NULL);
    }
    float *x = malloc((size_t)(max_n * k) * sizeof *x);
    make_x(x, max_n, k);
    lm_qact qa = qact_new(max_n, k);
    ref->quantize(x, k, 0, max_n, &qa);
    const int quant = dtype == BP_DTYPE_Q8_0 || dtype == BP_DTYPE_Q4_0 || dtype == BP_DTYPE_Q4_1;
    float *y0 = malloc((size_t)(max_n * max_rows) * sizeof *y0), *y1 = malloc((size_t)(max_n * max_rows) * sizeof *y1);
    double worst = 0.0, worst_sem = 0.0;
    for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++)
        for (size_t ni = 0; ni < sizeof n_counts / sizeof n_counts[0]; ni++) {
            const int64_t rows = row_counts[ri], n = n_counts[ni];
            /* a sub-range of rows starting at 1, to check r0 handling too */
            const int64_t r0 = rows < max_rows ? 1 : 0, r1 = r0 + rows > max_rows ? max_rows : r0 + rows;
            lm_mat w = {dtype, max_rows, k, row_bytes, wq};
            for (int64_t i = 0; i < n * max_rows; i++) y0[i] = -7.0f;
            lm_matmul(ref, &w, r0, r1, x, k, &qa, n, y0, max_rows);
            for (int64_t t = 0; t < n; t++)
                for (int64_t r = 0; r < max_rows; r++) {
                    const int inside = r >= r0 && r < r1;
                    if (!inside) {
                        CHECKF(y0[t * max_rows + r] == -7.0f, "generic wrote outside rows [%lld, %lld)",
                               (long long)r0, (long long)r1);
                        continue;
                    }
                    double exact = 0.0, mag = 0.0;
                    for (int64_t i = 0; i < k; i++) {
                        const double a = quant ? act_value(&qa, t, i) : (double)x[t * k + i];
                        exact += (double)wd[r * k + i] * a;
                        mag += fabs((double)wd[r * k + i] * a);
                    }
                    if (dtype == BP_DTYPE_Q4_1) exact += q4_1_sum_rounding(wq + (size_t)r * row_bytes, &qa, t, k);
                    if (mag > 0) worst_sem = fmax(worst_sem, fabs(y0[t * max_rows + r] - exact) / mag);
                }
            for (int ki = 0; ki < n_kr; ki++) {
                for (int64_t i = 0; i < n * max_rows; i++) y1[i] = -7.0f;
                lm_matmul(krs[ki], &w, r0, r1, x, k, &qa, n, y1, max_rows);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = 0; r < max_rows; r++) {
                        const float a = y0[t * max_rows + r], b = y1[t * max_rows + r];
                        if (r < r0 || r >= r1) {
                            CHECKF(b == -7.0f, "%s wrote outside its rows", lm_isa_name(krs[ki]->isa));
                            continue;
                        }
                        double mag = 0.0;
                        for (int64_t i = 0; i < k; i++)
                            mag += fabs((double)wd[r * k + i] * (quant ? act_value(&qa, t, i) : (double)x[t * k + i]));
                        if (mag > 0) worst = fmax(worst, fabs((double)a - b) / mag);
                    }
            }
        }
    fprintf(stderr, "  %-5s k=%-4lld generic vs dequantized double %.1e, SIMD vs generic %.1e\n", bp_dtype_name(dtype),
            (long long)k, worst_sem, worst);
    CHECKF(worst_sem <= 1e-5, "%s k=%lld: generic semantics %g", bp_dtype_name(dtype), (long long)k, worst_sem);
    CHECKF(worst <= 1e-5, "%s k=%lld: SIMD vs generic %g", bp_dtype_name(dtype), (long long)k, worst);
    free(wf), free(wd), free(wq), free(x), free(qa.q), free(qa.s), free(y0), free(y1);
}

/* precision = "exact" (mmx_*: quantized weights × F32 activations):
 *   - dequantization: with one-hot activations (x = the identity) every
 *     product is w·1 or w·0, so y must equal bp_dequantize_row's values bit
 *     for bit, in every implementation and tile shape;
 *   - the generic result vs a double dot product of the dequantized weights
 *     with x: float accumulation in 8 lanes of k/8 terms each, bounded by
 *     (k/8 + 8)·2⁻²⁴ of Σ|w·x|; SIMD vs generic: twice that;
 *   - batching: a row computed alone (decode, n = 1) equals the same row in
 *     a batch of 130 bit for bit, within each implementation. */
static void check_mmx(const lm_kernels *ref, const lm_kernels *const *krs, int n_kr, int32_t dtype, int64_t k) {
    static const int64_t row_counts[] = {1, 3, 4, 5, 8, 9, 37};
    static const int64_t n_counts[] = {1, 2, 3, 4, 5, 9, 130};
    const int64_t max_rows = 37, max_n = k > 130 ? k : 130;
    float *wf = malloc((size_t)(max_rows * k) * sizeof *wf), *wd = malloc((size_t)(max_rows * k) * sizeof *wd);
    for (int64_t i = 0; i < max_rows * k; i++) wf[i] = (float)(2.0 * uni() - 1.0) * (i % 41 == 0 ? 5.0f : 1.0f);
    bp_tensor probe = bp_tensor_view(dtype, 2, (int64_t[2]){max_rows, k}, NULL);
    const size_t nbytes = bp_tensor_nbytes(&probe), row_bytes = nbytes / (size_t)max_rows;
    uint8_t *wq = malloc(nbytes);
    for (int64_t r = 0; r < max_rows; r++) {
        bp_quantize_row(dtype, wf + r * k, wq + (size_t)r * row_bytes, k, NULL);
        bp_dequantize_row(dtype, wq + (size_t)r * row_bytes, wd + r * k, k, NULL);
    }
    const lm_mat w = {dtype, max_rows, k, row_bytes, wq};
    float *x = malloc((size_t)(max_n * k) * sizeof *x), *eye = calloc((size_t)(k * k), sizeof *eye);
    make_x(x, max_n, k);
    for (int64_t i = 0; i < k; i++) eye[i * k + i] = 1.0f;
    float *y0 = malloc((size_t)(max_n * max_rows) * sizeof *y0), *y1 = malloc((size_t)(max_n * max_rows) * sizeof *y1);
    const lm_kernels *all[3] = {ref, n_kr > 0 ? krs[0] : NULL, n_kr > 1 ? krs[1] : NULL};
    const double bound = ((double)k / 8.0 + 8.0) * 0x1p-24;
    double worst_sem = 0.0, worst = 0.0;
    int deq_ok = 1, batch_ok = 1;
    for (int ki = 0; ki < 1 + n_kr; ki++) {
        const lm_kernels *kr = all[ki];
        /* dequantization, bit for bit */
        lm_matmul_f32act(kr, &w, 0, max_rows, eye, k, k, y1, max_rows);
        for (int64_t t = 0; t < k; t++)
            for (int64_t r = 0; r < max_rows; r++) deq_ok &= y1[t * max_rows + r] == wd[r * k + t];
        CHECKF(deq_ok, "%s %s k=%lld: dequantized weights differ from bp_dequantize_row", lm_isa_name(kr->isa),
               bp_dtype_name(dtype), (long long)k);
        /* batching: rows alone vs in a batch of 130 */
        lm_matmul_f32act(kr, &w, 0, max_rows, x, k, 130, y0, max_rows);
        for (int64_t t = 0; t < 130; t += 7) {
            lm_matmul_f32act(kr, &w, 0, max_rows, x + t * k, k, 1, y1, max_rows);
            batch_ok &= memcmp(y1, y0 + t * max_rows, (size_t)max_rows * sizeof *y1) == 0;
        }
        CHECKF(batch_ok, "%s %s k=%lld: decode differs from the batched product", lm_isa_name(kr->isa),
               bp_dtype_name(dtype), (long long)k);
    }
    for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++)
        for (size_t ni = 0; ni < sizeof n_counts / sizeof n_counts[0]; ni++) {
            const int64_t rows = row_counts[ri], n = n_counts[ni];
            const int64_t r0 = rows < max_rows ? 1 : 0, r1 = r0 + rows > max_rows ? max_rows : r0 + rows;
            for (int ki = 0; ki < 1 + n_kr; ki++) {
                const lm_kernels *kr = all[ki];
                float *y = ki == 0 ? y0 : y1; /* y0: the generic result of this case */
                for (int64_t i = 0; i < n * max_rows; i++) y[i] = -7.0f;
                lm_matmul_f32act(kr, &w, r0, r1, x, k, n, y, max_rows);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = 0; r < max_rows; r++) {
                        const float got = y[t * max_rows + r];
                        if (r < r0 || r >= r1) {
                            CHECKF(got == -7.0f, "%s mmx wrote outside rows [%lld, %lld)", lm_isa_name(kr->isa),
                                   (long long)r0, (long long)r1);
                            continue;
                        }
                        double exact = 0.0, mag = 0.0;
                        for (int64_t i = 0; i < k; i++) {
                            exact += (double)wd[r * k + i] * x[t * k + i];
                            mag += fabs((double)wd[r * k + i] * x[t * k + i]);
                        }
                        if (mag == 0.0) continue;
                        if (ki == 0) worst_sem = fmax(worst_sem, fabs((double)got - exact) / mag);
                        else worst = fmax(worst, fabs((double)got - y0[t * max_rows + r]) / mag);
                    }
            }
        }
    fprintf(stderr, "  exact %-5s k=%-4lld generic vs double %.1e, SIMD vs generic %.1e (bound %.1e)\n",
            bp_dtype_name(dtype), (long long)k, worst_sem, worst, bound);
    CHECKF(worst_sem <= bound, "exact %s k=%lld: generic vs double %g", bp_dtype_name(dtype), (long long)k, worst_sem);
    CHECKF(worst <= 2.0 * bound, "exact %s k=%lld: SIMD vs generic %g", bp_dtype_name(dtype), (long long)k, worst);
    free(wf), free(wd), free(wq), free(x), free(eye), free(y0), free(y1);
}

static void check_attention(const lm_kernels *ref, const lm_kernels *kr) {
    static const int32_t hds[] = {8, 16, 24, 40, 64, 80, 128};
    for (size_t i = 0; i < sizeof hds / sizeof hds[0]; i++) {
        const int32_t hd = hds[i];
        const int64_t n = 13, stride = hd + 5;
        float *q = malloc(sizeof(float) * (size_t)hd), *kv = malloc(sizeof(float) * (size_t)(n * stride));
        float s0[13], s1[13], *o0 = calloc((size_t)hd, sizeof(float)), *o1 = calloc((size_t)hd, sizeof(float));
        for (int32_t j = 0; j < hd; j++) q[j] = (float)(uni() - 0.5);
        for (int64_t j = 0; j < n * stride; j++) kv[j] = (float)(uni() - 0.5);
        ref->attn_scores(q, kv, n, hd, stride, 0.125f, s0);
        kr->attn_scores(q, kv, n, hd, stride, 0.125f, s1);
        double e = 0.0;
        for (int64_t j = 0; j < n; j++) e = fmax(e, fabs((double)s0[j] - s1[j]));
        for (int32_t j = 0; j < hd; j++) o0[j] = o1[j] = (float)j; /* accumulate onto existing values */
        ref->attn_accum(s0, kv, n, hd, stride, o0);
        kr->attn_accum(s0, kv, n, hd, stride, o1);
        for (int32_t j = 0; j < hd; j++) e = fmax(e, fabs((double)o0[j] - o1[j]));
        CHECKF(e <= 1e-5, "%s attention hd=%d: %g", lm_isa_name(kr->isa), hd, e);
        /* the F16 cache: conversions are exact (same rounding), products agree to reassociation */
        const size_t n16 = (size_t)(n * stride);
        uint16_t *k16a = malloc(sizeof(uint16_t) * n16), *k16b = malloc(sizeof(uint16_t) * n16);
        ref->to_f16(kv, k16a, n * stride);
        kr->to_f16(kv, k16b, n * stride);
        CHECKF(memcmp(k16a, k16b, sizeof(uint16_t) * n16) == 0, "%s to_f16 differs", lm_isa_name(kr->isa));
        float *qa = malloc(sizeof(float) * (size_t)hd), *qb = malloc(sizeof(float) * (size_t)hd);
        memcpy(qa, q, sizeof(float) * (size_t)hd), memcpy(qb, q, sizeof(float) * (size_t)hd);
        ref->round_f16(qa, hd);
        kr->round_f16(qb, hd);
        CHECKF(memcmp(qa, qb, sizeof(float) * (size_t)hd) == 0, "%s round_f16 differs", lm_isa_name(kr->isa));
        for (int32_t j = 0; j < hd; j++) CHECK(qa[j] == lm_f16_to_f32(bp_f32_to_f16(q[j])));
        ref->attn_scores_f16(qa, k16a, n, hd, stride, 0.125f, s0);
        kr->attn_scores_f16(qa, k16a, n, hd, stride, 0.125f, s1);
        e = 0.0;
        for (int64_t j = 0; j < n; j++) e = fmax(e, fabs((double)s0[j] - s1[j]));
        for (int32_t j = 0; j < hd; j++) o0[j] = o1[j] = (float)j;
        ref->attn_accum_f16(s0, k16a, n, hd, stride, o0);
        kr->attn_accum_f16(s0, k16a, n, hd, stride, o1);
        for (int32_t j = 0; j < hd; j++) e = fmax(e, fabs((double)o0[j] - o1[j]));
        CHECKF(e <= 1e-5, "%s f16 attention hd=%d: %g", lm_isa_name(kr->isa), hd, e);
        free(k16a), free(k16b), free(qa), free(qb);
        free(q), free(kv), free(o0), free(o1);
    }
}

int main(void) {
    lm_kernels ref, k2, k5;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(lm_kernels_select(LM_ISA_GENERIC, &ref, &err), &err);
    const lm_kernels *krs[2];
    int n_kr = 0;
    if (lm_kernels_select(LM_ISA_AVX2, &k2, &err) == BP_OK) krs[n_kr++] = &k2;
    else fprintf(stderr, "  AVX2 kernels: not on this CPU\n");
    if (lm_kernels_select(LM_ISA_AVX512, &k5, &err) == BP_OK) krs[n_kr++] = &k5;
    else fprintf(stderr, "  AVX-512 kernels: not on this CPU\n");
    for (int i = 0; i < n_kr; i++) {
        check_quantize(&ref, krs[i]);
        check_attention(&ref, krs[i]);
    }
    static const int32_t dtypes[] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_BF16, BP_DTYPE_Q8_0, BP_DTYPE_Q4_0,
                                     BP_DTYPE_Q4_1};
    static const int64_t ks[] = {32, 64, 96, 160};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) check_mm(&ref, krs, n_kr, dtypes[d], ks[i]);
    check_mm(&ref, krs, n_kr, BP_DTYPE_F32, 37); /* float rows of any length: masked tails */
    check_mm(&ref, krs, n_kr, BP_DTYPE_F16, 172);
    static const int32_t qtypes[] = {BP_DTYPE_Q8_0, BP_DTYPE_Q4_0, BP_DTYPE_Q4_1};
    static const int64_t xks[] = {32, 96, 160, 576};
    for (size_t d = 0; d < sizeof qtypes / sizeof qtypes[0]; d++)
        for (size_t i = 0; i < sizeof xks / sizeof xks[0]; i++) check_mmx(&ref, krs, n_kr, qtypes[d], xks[i]);
    return TEST_RESULT();
}
