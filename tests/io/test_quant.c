/* Row conversions: exact agreement with an independent reference of the ggml
 * rules, round-trip error bounds, edge cases and argument errors. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/quant.h"
#include "bp_test.h"

#define NB 64 /* blocks per test row */
#define N (NB * BP_QK)

static uint32_t rng_state = 12345u;
static float rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

/* --- reference: straight from the block-layout description ------------- */

static float ref_h(const uint8_t *p) { return bp_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static float ref_dequant(int32_t dtype, const uint8_t *blocks, int64_t i) {
    int64_t b = i / BP_QK, j = i % BP_QK;
    if (dtype == BP_DTYPE_Q8_0) {
        const uint8_t *blk = blocks + b * 34;
        return ref_h(blk) * (float)(int8_t)blk[2 + j];
    }
    if (dtype == BP_DTYPE_Q4_0) {
        const uint8_t *blk = blocks + b * 18;
        int q = j < 16 ? (blk[2 + j] & 15) : (blk[2 + j - 16] >> 4);
        return ref_h(blk) * (float)(q - 8);
    }
    const uint8_t *blk = blocks + b * 20; /* Q4_1 */
    int q = j < 16 ? (blk[4 + j] & 15) : (blk[4 + j - 16] >> 4);
    return ref_h(blk) * (float)q + ref_h(blk + 2);
}

/* ggml quantize_row_*_ref rules, written independently of quant.c */
static void ref_quant_block(int32_t dtype, const float *x, uint8_t *out) {
    if (dtype == BP_DTYPE_Q8_0) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = bp_f32_to_f16(d);
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        for (int j = 0; j < 32; j++) out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    } else if (dtype == BP_DTYPE_Q4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = bp_f32_to_f16(d);
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8);
        for (int j = 0; j < 16; j++) {
            int a = (int8_t)(x[j] * id + 8.5f), b = (int8_t)(x[j + 16] * id + 8.5f);
            a = a < 15 ? a : 15, b = b < 15 ? b : 15;
            out[2 + j] = (uint8_t)(a | (b << 4));
        }
    } else {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) min = fminf(min, x[j]), max = fmaxf(max, x[j]);
        float d = (max - min) / 15.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = bp_f32_to_f16(d), m = bp_f32_to_f16(min);
        out[0] = (uint8_t)h, out[1] = (uint8_t)(h >> 8), out[2] = (uint8_t)m, out[3] = (uint8_t)(m >> 8);
        for (int j = 0; j < 16; j++) {
            int a = (int8_t)((x[j] - min) * id + 0.5f), b = (int8_t)((x[j + 16] - min) * id + 0.5f);
            a = a < 15 ? a : 15, b = b < 15 ? b : 15;
            out[4 + j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void test_quant_type(int32_t dtype) {
    bp_error err = BP_ERROR_INIT;
    const size_t bb = bp_dtype_block_bytes(dtype);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(NB * bb + 1), *r = malloc(NB * bb);
    /* blocks of different scales, one all-zero block, one constant block, one with a single spike */
    for (int b = 0; b < NB; b++) {
        float scale = powf(2.0f, (float)(b % 9) - 4.0f);
        for (int j = 0; j < BP_QK; j++) x[b * BP_QK + j] = scale * rnd();
    }
    for (int j = 0; j < BP_QK; j++) x[1 * BP_QK + j] = 0.0f;
    for (int j = 0; j < BP_QK; j++) x[2 * BP_QK + j] = -0.75f;
    for (int j = 0; j < BP_QK; j++) x[3 * BP_QK + j] = j == 5 ? 3.0f : 0.001f;

    /* quantize from an odd destination address: the stored types have no alignment */
    uint8_t *qo = q + 1;
    CHECK_OK(bp_quantize_row(dtype, x, qo, N, &err), &err);
    for (int b = 0; b < NB; b++) ref_quant_block(dtype, x + b * BP_QK, r + b * bb);
    CHECKF(memcmp(qo, r, NB * bb) == 0, "%s: quantized bytes differ from the reference rules",
           bp_dtype_name(dtype));

    CHECK_OK(bp_dequantize_row(dtype, qo, y, N, &err), &err);
    int exact = 1;
    for (int i = 0; i < N; i++) exact &= y[i] == ref_dequant(dtype, qo, i);
    CHECKF(exact, "%s: dequantized values differ from the block-layout reference", bp_dtype_name(dtype));

    /* error bounds per block */
    for (int b = 0; b < NB; b++) {
        const float *xb = x + b * BP_QK, *yb = y + b * BP_QK;
        float amax = 0, mn = FLT_MAX, mx = -FLT_MAX;
        for (int j = 0; j < BP_QK; j++) amax = fmaxf(amax, fabsf(xb[j])), mn = fminf(mn, xb[j]), mx = fmaxf(mx, xb[j]);
        float bound;
        if (dtype == BP_DTYPE_Q8_0)
            bound = 0.5f * amax / 127.0f + amax * 1e-3f; /* half a step + f16 rounding of d */
        else if (dtype == BP_DTYPE_Q4_0)
            bound = amax / 8.0f + amax * 1e-3f; /* the top level is clipped: up to one step */
        else
            bound = 0.5f * (mx - mn) / 15.0f + (fabsf(mn) + fabsf(mx)) * 2e-3f;
        float worst = 0;
        for (int j = 0; j < BP_QK; j++) worst = fmaxf(worst, fabsf(yb[j] - xb[j]));
        CHECKF(worst <= bound, "%s block %d: error %g > bound %g", bp_dtype_name(dtype), b, worst, bound);
    }
    /* the all-zero block is exact; so is the constant block for Q4_1 (up to f16 rounding of -0.75: exact) */
    for (int j = 0; j < BP_QK; j++) CHECK(y[BP_QK + j] == 0.0f);
    if (dtype == BP_DTYPE_Q4_1)
        for (int j = 0; j < BP_QK; j++) CHECK(y[2 * BP_QK + j] == -0.75f);
    /* the spike survives */
    CHECK(fabsf(y[3 * BP_QK + 5] - 3.0f) <= 3.0f / 8.0f);
    free(x);
    free(y);
    free(q);
    free(r);
}

static void test_known_values(void) {
    bp_error err = BP_ERROR_INIT;
    /* Q8_0 over -16..15: d = 16/127, q = round(x·127/16) */
    float x[32], y[32];
    uint8_t blk[34];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    CHECK_OK(bp_quantize_row(BP_DTYPE_Q8_0, x, blk, 32, &err), &err);
    CHECK(blk[0] == (bp_f32_to_f16(16.0f / 127.0f) & 0xff));
    CHECK((int8_t)blk[2] == -127 && (int8_t)blk[2 + 16] == 0);
    CHECK((int8_t)blk[2 + 31] == (int8_t)lroundf(15 * 127 / 16.0f));
    /* Q4_0 by hand: d = 2, nibbles 0..15 → values -16..14 */
    uint8_t b4[18];
    uint16_t h = bp_f32_to_f16(2.0f);
    b4[0] = (uint8_t)h, b4[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 16; j++) b4[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK_OK(bp_dequantize_row(BP_DTYPE_Q4_0, b4, y, 32, &err), &err);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == 2.0f * (float)(j - 8));
        CHECK(y[16 + j] == 2.0f * (float)(15 - j - 8));
    }
    /* Q4_1 by hand: d = 0.5, m = -1 */
    uint8_t b41[20];
    h = bp_f32_to_f16(0.5f);
    uint16_t m = bp_f32_to_f16(-1.0f);
    b41[0] = (uint8_t)h, b41[1] = (uint8_t)(h >> 8), b41[2] = (uint8_t)m, b41[3] = (uint8_t)(m >> 8);
    for (int j = 0; j < 16; j++) b41[4 + j] = (uint8_t)(j | (3 << 4));
    CHECK_OK(bp_dequantize_row(BP_DTYPE_Q4_1, b41, y, 32, &err), &err);
    for (int j = 0; j < 16; j++) CHECK(y[j] == 0.5f * (float)j - 1.0f && y[16 + j] == 0.5f);
}

static void test_float_types(void) {
    bp_error err = BP_ERROR_INIT;
    float x[7] = {0.0f, -1.5f, 65504.0f, 1e-7f, 3.14159265f, -0.0f, 1e30f}, y[7];
    uint8_t buf[7 * 4 + 1];
    CHECK_OK(bp_quantize_row(BP_DTYPE_F16, x, buf + 1, 7, &err), &err);
    CHECK_OK(bp_dequantize_row(BP_DTYPE_F16, buf + 1, y, 7, &err), &err);
    CHECK(y[0] == 0.0f && y[1] == -1.5f && y[2] == 65504.0f && isinf(y[6]));
    CHECK_NEAR(y[3], 1e-7, 6e-8); /* subnormal half */
    CHECK_NEAR(y[4], 3.14159265, 2e-3);
    CHECK(y[5] == 0.0f && signbit(y[5]));
    CHECK_OK(bp_quantize_row(BP_DTYPE_BF16, x, buf + 1, 7, &err), &err);
    CHECK_OK(bp_dequantize_row(BP_DTYPE_BF16, buf + 1, y, 7, &err), &err);
    CHECK(y[1] == -1.5f && !isinf(y[6]));
    CHECK_NEAR(y[4], 3.14159265, 2e-2);
    CHECK_NEAR(y[6], 1e30, 1e28);
    CHECK_OK(bp_quantize_row(BP_DTYPE_F32, x, buf + 1, 7, &err), &err);
    CHECK_OK(bp_dequantize_row(BP_DTYPE_F32, buf + 1, y, 7, &err), &err);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

static void test_nan_and_errors(void) {
    bp_error err = BP_ERROR_INIT;
    float x[64], y[64];
    uint8_t q[2 * 34];
    for (int j = 0; j < 64; j++) x[j] = (float)j * 0.1f;
    x[3] = NAN, x[40] = INFINITY;
    CHECK_OK(bp_quantize_row(BP_DTYPE_Q8_0, x, q, 64, &err), &err); /* must not be UB (checked under UBSan) */
    CHECK(q[2 + 3] == 0);
    CHECK_OK(bp_quantize_row(BP_DTYPE_Q4_0, x, q, 64, &err), &err);
    CHECK((q[2 + 3] & 15) == 8);
    CHECK_OK(bp_quantize_row(BP_DTYPE_Q4_1, x, q, 64, &err), &err);
    CHECK_OK(bp_dequantize_row(BP_DTYPE_Q8_0, q, y, 64, &err), &err);

    CHECK(bp_quantize_row(BP_DTYPE_Q8_0, x, q, 33, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "33 elements, not a multiple of 32") != NULL, "%s", err.msg);
    CHECK(bp_dequantize_row(BP_DTYPE_Q4_1, q, y, 31, &err) == BP_ERR_INVALID && strstr(err.msg, "Q4_1"));
    CHECK(bp_dequantize_row(BP_DTYPE_Q4_0, q, y, -32, &err) == BP_ERR_INVALID && strstr(err.msg, "negative"));
    CHECK(bp_dequantize_row(BP_DTYPE_I32, q, y, 4, &err) == BP_ERR_UNSUPPORTED && strstr(err.msg, "I32"));
    CHECK(bp_quantize_row(BP_DTYPE_U8, x, q, 4, &err) == BP_ERR_UNSUPPORTED && strstr(err.msg, "U8"));
    CHECK(bp_quantize_row(99, x, q, 4, &err) == BP_ERR_UNSUPPORTED);
    CHECK_OK(bp_dequantize_row(BP_DTYPE_Q8_0, NULL, NULL, 0, &err), &err); /* empty row */
    CHECK(bp_dequantize_row(BP_DTYPE_F16, NULL, y, 4, &err) == BP_ERR_INVALID);
}

int main(void) {
    test_quant_type(BP_DTYPE_Q8_0);
    test_quant_type(BP_DTYPE_Q4_0);
    test_quant_type(BP_DTYPE_Q4_1);
    test_known_values();
    test_float_types();
    test_nan_and_errors();
    return TEST_RESULT();
}
