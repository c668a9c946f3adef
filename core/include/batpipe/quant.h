/* batpipe — row conversions between F32 and the stored element types.
 *
 * Used by GGUF/safetensors consumers and by backends that keep weights in a
 * compact type. A "row" is `n` consecutive elements; quantized types store
 * them in blocks of BP_QK (32) elements with the ggml block layouts:
 *
 *   Q8_0  34 bytes: f16 d | 32 x int8 q          value = d * q
 *   Q4_0  18 bytes: f16 d | 16 bytes of nibbles   value = d * (nibble - 8)
 *   Q4_1  20 bytes: f16 d | f16 m | 16 bytes      value = d * nibble + m
 *
 * In Q4_0/Q4_1, byte j of the nibble array holds element j in its low nibble
 * and element j + 16 in its high nibble. f16 fields are little-endian IEEE
 * half precision. Source and destination buffers of the stored type may have
 * any alignment (they are accessed with memcpy); float buffers must be
 * aligned for float. All functions are thread-safe and never allocate. */
#ifndef BATPIPE_QUANT_H
#define BATPIPE_QUANT_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

/* Convert `n` elements of type `dtype` at `src` (bp_tensor_nbytes of a row
 * of n elements) to F32 at `dst`. Supported: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1. For quantized types n must be a multiple of BP_QK (BP_ERR_INVALID
 * otherwise); another dtype gives BP_ERR_UNSUPPORTED. */
BP_API bp_status bp_dequantize_row(int32_t dtype, const void *src, float *dst, int64_t n, bp_error *err);

/* Convert `n` F32 values to `dtype` at `dst` with the reference
 * (round-to-nearest) rules of ggml's quantize_row_*_ref:
 *   Q8_0  d = max|x| / 127,            q = round(x / d)
 *   Q4_0  d = x_amax / -8 (x_amax: the element of largest magnitude, sign
 *         kept), q = min(15, trunc(x / d + 8.5))
 *   Q4_1  d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5))
 * (d is stored as f16; the division uses the f32 value, as ggml does).
 * F32, F16 and BF16 (round to nearest even) are accepted too. A NaN input
 * is stored as q = 0 (Q8_0, Q4_1) or nibble 8 (Q4_0) instead of invoking
 * undefined behaviour; NaN is ignored when the block scale is chosen. Same
 * n rules as above. */
BP_API bp_status bp_quantize_row(int32_t dtype, const float *src, void *dst, int64_t n, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_QUANT_H */
