/* Row conversions between F32 and F16/BF16/Q8_0/Q4_0/Q4_1 (ggml block layouts). */
#include "batpipe/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ helpers -- */

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void store_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Check n against the dtype's block size; fills err and returns non-OK on a bad length. */
static bp_status row_check(const char *what, int32_t dtype, int64_t n, bp_error *err) {
    if (n < 0) return bp_error_set(err, BP_ERR_INVALID, "quant: %s row of %s has negative length %lld", what,
                                   bp_dtype_name(dtype), (long long)n);
    int64_t be = bp_dtype_block_elems(dtype);
    if (n % be != 0)
        return bp_error_set(err, BP_ERR_INVALID, "quant: %s row of %s has %lld elements, not a multiple of %lld",
                            what, bp_dtype_name(dtype), (long long)n, (long long)be);
    return BP_OK;
}

/* Round-half-away-from-zero to int in [lo, hi]; NaN gives 0. */
static int round_clamp(float v, int lo, int hi) {
    if (v != v) return 0;
    v = roundf(v);
    if (v < (float)lo) return lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

/* Truncate a value expected in [0, 16.5) to a nibble, as ggml's MIN(15, (int8_t)v); NaN gives `nan_q`. */
static uint8_t trunc_nibble(float v, uint8_t nan_q) {
    if (v != v) return nan_q;
    if (v < 0.0f) return 0; /* only reachable through rounding of d; (int8_t) would truncate toward 0 */
    if (v >= 15.0f) return 15;
    return (uint8_t)(int)v;
}

/* ------------------------------------------------------- dequantize -- */

static void dequant_q8_0(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 34, dst += BP_QK) {
        const float d = bp_f16_to_f32(load_u16(src));
        for (int j = 0; j < BP_QK; j++) dst[j] = d * (float)(int8_t)src[2 + j];
    }
}

static void dequant_q4_0(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 18, dst += BP_QK) {
        const float d = bp_f16_to_f32(load_u16(src));
        const uint8_t *qs = src + 2;
        for (int j = 0; j < BP_QK / 2; j++) {
            dst[j] = d * (float)((int)(qs[j] & 0x0f) - 8);
            dst[j + BP_QK / 2] = d * (float)((int)(qs[j] >> 4) - 8);
        }
    }
}

static void dequant_q4_1(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 20, dst += BP_QK) {
        const float d = bp_f16_to_f32(load_u16(src));
        const float m = bp_f16_to_f32(load_u16(src + 2));
        const uint8_t *qs = src + 4;
        for (int j = 0; j < BP_QK / 2; j++) {
            dst[j] = d * (float)(qs[j] & 0x0f) + m;
            dst[j + BP_QK / 2] = d * (float)(qs[j] >> 4) + m;
        }
    }
}

bp_status bp_dequantize_row(int32_t dtype, const void *src, float *dst, int64_t n, bp_error *err) {
    bp_status st = row_check("dequantize", dtype, n, err);
    if (st != BP_OK) return st;
    if (n == 0) return BP_OK;
    if (!src || !dst) return bp_error_set(err, BP_ERR_INVALID, "quant: dequantize called with a NULL buffer");
    const uint8_t *s = src;
    switch (dtype) {
    case BP_DTYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); return BP_OK;
    case BP_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = bp_f16_to_f32(load_u16(s + 2 * i));
        return BP_OK;
    case BP_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = bp_bf16_to_f32(load_u16(s + 2 * i));
        return BP_OK;
    case BP_DTYPE_Q8_0: dequant_q8_0(s, dst, n / BP_QK); return BP_OK;
    case BP_DTYPE_Q4_0: dequant_q4_0(s, dst, n / BP_QK); return BP_OK;
    case BP_DTYPE_Q4_1: dequant_q4_1(s, dst, n / BP_QK); return BP_OK;
    default:
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "quant: cannot dequantize %s (%d) rows; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                            bp_dtype_name(dtype), dtype);
    }
}

/* --------------------------------------------------------- quantize -- */

static void quant_q8_0(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += BP_QK, dst += 34) {
        float amax = 0.0f;
        for (int j = 0; j < BP_QK; j++)
            if (fabsf(src[j]) > amax) amax = fabsf(src[j]);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(dst, bp_f32_to_f16(d));
        for (int j = 0; j < BP_QK; j++) dst[2 + j] = (uint8_t)(int8_t)round_clamp(src[j] * id, -128, 127);
    }
}

static void quant_q4_0(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += BP_QK, dst += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < BP_QK; j++) {
            if (amax < fabsf(src[j])) {
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(dst, bp_f32_to_f16(d));
        uint8_t *qs = dst + 2;
        for (int j = 0; j < BP_QK / 2; j++) {
            uint8_t lo = trunc_nibble(src[j] * id + 8.5f, 8);
            uint8_t hi = trunc_nibble(src[j + BP_QK / 2] * id + 8.5f, 8);
            qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

static void quant_q4_1(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += BP_QK, dst += 20) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < BP_QK; j++) {
            if (src[j] < min) min = src[j];
            if (src[j] > max) max = src[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(dst, bp_f32_to_f16(d));
        store_u16(dst + 2, bp_f32_to_f16(min));
        uint8_t *qs = dst + 4;
        for (int j = 0; j < BP_QK / 2; j++) {
            uint8_t lo = trunc_nibble((src[j] - min) * id + 0.5f, 0);
            uint8_t hi = trunc_nibble((src[j + BP_QK / 2] - min) * id + 0.5f, 0);
            qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

bp_status bp_quantize_row(int32_t dtype, const float *src, void *dst, int64_t n, bp_error *err) {
    bp_status st = row_check("quantize", dtype, n, err);
    if (st != BP_OK) return st;
    if (n == 0) return BP_OK;
    if (!src || !dst) return bp_error_set(err, BP_ERR_INVALID, "quant: quantize called with a NULL buffer");
    uint8_t *d = dst;
    switch (dtype) {
    case BP_DTYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); return BP_OK;
    case BP_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) store_u16(d + 2 * i, bp_f32_to_f16(src[i]));
        return BP_OK;
    case BP_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) store_u16(d + 2 * i, bp_f32_to_bf16(src[i]));
        return BP_OK;
    case BP_DTYPE_Q8_0: quant_q8_0(src, d, n / BP_QK); return BP_OK;
    case BP_DTYPE_Q4_0: quant_q4_0(src, d, n / BP_QK); return BP_OK;
    case BP_DTYPE_Q4_1: quant_q4_1(src, d, n / BP_QK); return BP_OK;
    default:
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "quant: cannot quantize to %s (%d); supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                            bp_dtype_name(dtype), dtype);
    }
}
