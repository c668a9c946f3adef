/* batpipe — tensors: element types, shapes, and the tensor record.
 *
 * A bp_tensor is a dense, row-major (C order, last dimension fastest) block
 * of elements. `data` points to host memory when `backend` is NULL, otherwise
 * to memory owned by that compute backend (which may be device memory that
 * the host cannot dereference). The struct itself is plain data: whoever
 * fills it decides who owns `data` (see `owns_data`).
 *
 * Quantized types (Q8_0, Q4_0, Q4_1) are stored in blocks of 32 elements
 * along the last dimension, as in GGUF/ggml. */
#ifndef BATPIPE_TENSOR_H
#define BATPIPE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

BP_EXTERN_C_BEGIN

typedef enum bp_dtype {
    BP_DTYPE_F32 = 0,
    BP_DTYPE_F16 = 1,
    BP_DTYPE_BF16 = 2,
    BP_DTYPE_F64 = 3,
    BP_DTYPE_I8 = 4,
    BP_DTYPE_U8 = 5,
    BP_DTYPE_I16 = 6,
    BP_DTYPE_I32 = 7,
    BP_DTYPE_I64 = 8,
    BP_DTYPE_BOOL = 9,
    BP_DTYPE_Q8_0 = 10, /* blocks of 32: f16 scale + 32 x int8            (34 bytes) */
    BP_DTYPE_Q4_0 = 11, /* blocks of 32: f16 scale + 16 bytes of nibbles   (18 bytes) */
    BP_DTYPE_Q4_1 = 12, /* blocks of 32: f16 scale, f16 min + 16 bytes     (20 bytes) */
    BP_DTYPE_COUNT
} bp_dtype;

#define BP_MAX_DIMS 8
#define BP_QK 32 /* elements per quantized block */

struct bp_backend;

typedef struct bp_tensor {
    uint32_t struct_size;        /* sizeof(bp_tensor) */
    int32_t dtype;               /* bp_dtype */
    int32_t ndim;                /* 0 (scalar) .. BP_MAX_DIMS */
    int32_t owns_data;           /* non-zero: bp_tensor_free releases `data` */
    int64_t shape[BP_MAX_DIMS];  /* shape[0] is the slowest dimension */
    void *data;                  /* host pointer, or backend memory when backend != NULL */
    struct bp_backend *backend;  /* NULL: host memory */
    const char *name;            /* optional, borrowed */
} bp_tensor;

/* Element-type traits (static inline: usable by plugins without linking). */
static inline const char *bp_dtype_name(int32_t t) {
    static const char *const names[BP_DTYPE_COUNT] = {"F32", "F16", "BF16", "F64", "I8", "U8", "I16",
                                                      "I32", "I64", "BOOL", "Q8_0", "Q4_0", "Q4_1"};
    return (t >= 0 && t < BP_DTYPE_COUNT) ? names[t] : "?";
}

/* Bytes per block and elements per block (1 for non-quantized types). */
static inline size_t bp_dtype_block_bytes(int32_t t) {
    switch (t) {
    case BP_DTYPE_F32: return 4;
    case BP_DTYPE_F16: return 2;
    case BP_DTYPE_BF16: return 2;
    case BP_DTYPE_F64: return 8;
    case BP_DTYPE_I8: return 1;
    case BP_DTYPE_U8: return 1;
    case BP_DTYPE_I16: return 2;
    case BP_DTYPE_I32: return 4;
    case BP_DTYPE_I64: return 8;
    case BP_DTYPE_BOOL: return 1;
    case BP_DTYPE_Q8_0: return 34;
    case BP_DTYPE_Q4_0: return 18;
    case BP_DTYPE_Q4_1: return 20;
    default: return 0;
    }
}

static inline int64_t bp_dtype_block_elems(int32_t t) {
    return (t == BP_DTYPE_Q8_0 || t == BP_DTYPE_Q4_0 || t == BP_DTYPE_Q4_1) ? BP_QK : 1;
}

static inline int64_t bp_tensor_numel(const bp_tensor *t) {
    int64_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Bytes of the tensor's data (0 for an unknown dtype or a quantized tensor
 * whose last dimension is not a multiple of the block size). */
static inline size_t bp_tensor_nbytes(const bp_tensor *t) {
    int64_t be = bp_dtype_block_elems(t->dtype);
    int64_t n = bp_tensor_numel(t);
    if (be > 1 && (t->ndim == 0 || t->shape[t->ndim - 1] % be != 0)) return 0;
    return (size_t)(n / be) * bp_dtype_block_bytes(t->dtype);
}

/* Describe a host tensor over borrowed memory (owns_data = 0). */
static inline bp_tensor bp_tensor_view(int32_t dtype, int32_t ndim, const int64_t *shape, void *data) {
    bp_tensor t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.dtype = dtype;
    t.ndim = ndim;
    for (int32_t i = 0; i < ndim && i < BP_MAX_DIMS; i++) t.shape[i] = shape[i];
    t.data = data;
    return t;
}

/* --- library functions (libbatpipe) --------------------------------------- */

/* Allocate a tensor on `backend` (NULL: host, 64-byte aligned, zero-filled).
 * The returned tensor owns its data; release with bp_tensor_free. */
BP_API bp_status bp_tensor_new(struct bp_backend *backend, int32_t dtype, int32_t ndim, const int64_t *shape,
                               bp_tensor **out, bp_error *err);
/* Release a tensor made by bp_tensor_new (and its data when it owns it). NULL is allowed. */
BP_API void bp_tensor_free(bp_tensor *t);
/* Same dtype and shape? */
BP_API int bp_tensor_same_shape(const bp_tensor *a, const bp_tensor *b);
/* "F32[2,1001,128]" into buf; returns buf. */
BP_API const char *bp_tensor_describe(const bp_tensor *t, char *buf, size_t cap);
/* Scan a host F32/F64 tensor for NaN/Inf; BP_ERR_NUMERIC with the flat index if one is found. */
BP_API bp_status bp_tensor_check_finite(const bp_tensor *t, const char *what, bp_error *err);

/* Scalar conversions used by F16/BF16 storage. */
BP_API float bp_f16_to_f32(uint16_t h);
BP_API uint16_t bp_f32_to_f16(float f);
BP_API float bp_bf16_to_f32(uint16_t h);
BP_API uint16_t bp_f32_to_bf16(float f); /* round to nearest even, NaN kept */

BP_EXTERN_C_END

#endif /* BATPIPE_TENSOR_H */
