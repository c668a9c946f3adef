/* batpipe — GGUF reader (memory-mapped), versions 2 and 3, little-endian.
 *
 * Layout: "GGUF" | u32 version | u64 tensor count | u64 KV count | KV
 * entries (u64-length key, u32 value type, value) | tensor infos (u64-length
 * name, u32 n_dims, n_dims x u64 ne (ggml order: ne[0] is the fastest
 * dimension), u32 ggml type, u64 offset relative to the data section) |
 * padding to the alignment | data section. Strings are a u64 length and
 * that many bytes (no NUL). Arrays are a u32 element type, a u64 count and
 * the elements.
 *
 * The reader checks everything before it is used, overflow-safe, and
 * rejects a malformed file with BP_ERR_FORMAT and a message naming the file,
 * the problem and, where useful, the byte offset: bad magic, truncation,
 * counts larger than the bytes left, empty keys or keys over 65535 bytes,
 * NUL bytes in keys or tensor names, tensor names over 64 bytes, unknown
 * value or ggml type ids, n_dims > 4, zero dimensions, element counts or
 * byte sizes that overflow, rows (ne[0]) that are not a whole number of
 * blocks, `general.alignment` that is not a u32 non-zero multiple of 8,
 * offsets that are not multiples of the alignment, tensor data outside the
 * file, overlapping tensors, duplicate keys and duplicate tensor names.
 * Versions other than 2 and 3, big-endian files and nested arrays (arrays
 * of arrays) give BP_ERR_UNSUPPORTED. A file holding tensors of a ggml type
 * batpipe cannot compute with (e.g. Q5_K) still opens: only bp_gguf_tensor
 * on such a tensor fails.
 *
 * Thread safety: a handle is immutable after opening; all getters may be
 * called concurrently. Every returned pointer is borrowed and stays valid
 * until bp_gguf_close. */
#ifndef BATPIPE_GGUF_H
#define BATPIPE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

/* KV value types (the on-disk ids). */
typedef enum bp_gguf_type {
    BP_GGUF_TYPE_UINT8 = 0,
    BP_GGUF_TYPE_INT8 = 1,
    BP_GGUF_TYPE_UINT16 = 2,
    BP_GGUF_TYPE_INT16 = 3,
    BP_GGUF_TYPE_UINT32 = 4,
    BP_GGUF_TYPE_INT32 = 5,
    BP_GGUF_TYPE_FLOAT32 = 6,
    BP_GGUF_TYPE_BOOL = 7,
    BP_GGUF_TYPE_STRING = 8,
    BP_GGUF_TYPE_ARRAY = 9,
    BP_GGUF_TYPE_UINT64 = 10,
    BP_GGUF_TYPE_INT64 = 11,
    BP_GGUF_TYPE_FLOAT64 = 12,
    BP_GGUF_TYPE_COUNT
} bp_gguf_type;

/* ggml tensor type ids that bp_gguf_tensor maps to a bp_dtype. Every other
 * id known to ggml (Q5_0, Q4_K, IQ2_XS, ...) is accepted when opening and
 * reported as unsupported by bp_gguf_tensor. */
#define BP_GGML_TYPE_F32 0
#define BP_GGML_TYPE_F16 1
#define BP_GGML_TYPE_Q4_0 2
#define BP_GGML_TYPE_Q4_1 3
#define BP_GGML_TYPE_Q8_0 8
#define BP_GGML_TYPE_I8 24
#define BP_GGML_TYPE_I16 25
#define BP_GGML_TYPE_I32 26
#define BP_GGML_TYPE_I64 27
#define BP_GGML_TYPE_F64 28
#define BP_GGML_TYPE_BF16 30

#define BP_GGUF_DEFAULT_ALIGNMENT 32
#define BP_GGUF_MAX_DIMS 4

typedef struct bp_gguf bp_gguf;

/* One tensor's description, in ggml terms. */
typedef struct bp_gguf_tensor_info {
    uint32_t struct_size; /* sizeof(bp_gguf_tensor_info) */
    int32_t ggml_type;    /* ggml type id (BP_GGML_TYPE_* or another known id) */
    int32_t n_dims;       /* 0..4 */
    int32_t reserved;
    int64_t ne[BP_GGUF_MAX_DIMS]; /* ggml order: ne[0] fastest; 1 beyond n_dims */
    uint64_t offset;              /* byte offset relative to the data section */
    uint64_t nbytes;              /* size of the tensor's data in bytes */
    const char *name;             /* NUL-terminated, borrowed */
} bp_gguf_tensor_info;

/* Open and validate; the file stays mapped (read-only) until bp_gguf_close. */
BP_API bp_status bp_gguf_open(const char *path, bp_gguf **out, bp_error *err);
/* The same over a borrowed buffer, which must outlive the handle. `label`
 * names it in errors (NULL: "<memory>"). Tensor data pointers are aligned
 * only as far as `data` itself is aligned (the file aligns them relative to
 * its start): pass a buffer aligned to at least 8 bytes. */
BP_API bp_status bp_gguf_open_memory(const void *data, size_t size, const char *label, bp_gguf **out,
                                     bp_error *err);
/* NULL is allowed. */
BP_API void bp_gguf_close(bp_gguf *g);

BP_API const char *bp_gguf_path(const bp_gguf *g);
BP_API uint32_t bp_gguf_version(const bp_gguf *g);
BP_API uint32_t bp_gguf_alignment(const bp_gguf *g);
/* File offset of the data section. */
BP_API uint64_t bp_gguf_data_offset(const bp_gguf *g);

/* Names of value types ("u32", "str", "arr", ...) and ggml types ("Q4_K");
 * "?" for an unknown id. */
BP_API const char *bp_gguf_type_name(int32_t type);
BP_API const char *bp_gguf_ggml_type_name(int32_t ggml_type);

/* --- key/value metadata -------------------------------------------------- */

BP_API int64_t bp_gguf_kv_count(const bp_gguf *g);
/* Key of entry i (file order); NULL when out of range. */
BP_API const char *bp_gguf_key(const bp_gguf *g, int64_t i);
/* Value type of entry i (BP_GGUF_TYPE_ARRAY for arrays); -1 when out of range. */
BP_API int32_t bp_gguf_kv_type(const bp_gguf *g, int64_t i);
/* Index of `key`, or -1. */
BP_API int64_t bp_gguf_find_key(const bp_gguf *g, const char *key);

/* Typed getters. BP_ERR_NOT_FOUND when the key is absent, BP_ERR_INVALID
 * when its type does not fit (both messages name the file and the key).
 * _get_int accepts every integer type (a u64 above INT64_MAX is
 * BP_ERR_INVALID); _get_float accepts f32 and f64; _get_bool gives 0 or 1;
 * _get_string gives a NUL-terminated copy and, when `len` is not NULL, its
 * length in bytes (the value may contain NUL bytes). */
BP_API bp_status bp_gguf_get_int(const bp_gguf *g, const char *key, int64_t *out, bp_error *err);
BP_API bp_status bp_gguf_get_float(const bp_gguf *g, const char *key, double *out, bp_error *err);
BP_API bp_status bp_gguf_get_bool(const bp_gguf *g, const char *key, int32_t *out, bp_error *err);
BP_API bp_status bp_gguf_get_string(const bp_gguf *g, const char *key, const char **out, uint64_t *len,
                                    bp_error *err);

/* Arrays: element type and count (NOT_FOUND / INVALID as above). */
BP_API bp_status bp_gguf_get_array_info(const bp_gguf *g, const char *key, int32_t *elem_type, uint64_t *count,
                                        bp_error *err);
/* Element i of a string array at entry `key_index`, NUL-terminated; NULL
 * when the entry is not a string array or i is out of range. */
BP_API const char *bp_gguf_array_string(const bp_gguf *g, int64_t key_index, uint64_t i);
/* Element i of an integer (or bool) array / of an f32 or f64 array. Safe for
 * unaligned data. BP_ERR_INVALID on a wrong type or index. */
BP_API bp_status bp_gguf_array_int(const bp_gguf *g, int64_t key_index, uint64_t i, int64_t *out, bp_error *err);
BP_API bp_status bp_gguf_array_float(const bp_gguf *g, int64_t key_index, uint64_t i, double *out, bp_error *err);
/* Bulk forms: elements [first, first + n) into dst. */
BP_API bp_status bp_gguf_array_ints(const bp_gguf *g, int64_t key_index, uint64_t first, uint64_t n, int64_t *dst,
                                    bp_error *err);
BP_API bp_status bp_gguf_array_floats(const bp_gguf *g, int64_t key_index, uint64_t first, uint64_t n, float *dst,
                                      bp_error *err);

/* --- tensors ---------------------------------------------------------------- */

BP_API int64_t bp_gguf_tensor_count(const bp_gguf *g);
/* Info of tensor i (file order); NULL when out of range. */
BP_API const bp_gguf_tensor_info *bp_gguf_tensor_info_at(const bp_gguf *g, int64_t i);
/* Index of the tensor named `name`, or -1. */
BP_API int64_t bp_gguf_find_tensor(const bp_gguf *g, const char *name);
/* Raw bytes of tensor i (info->nbytes of them) inside the mapping; NULL when out of range. */
BP_API const void *bp_gguf_tensor_data(const bp_gguf *g, int64_t i);
/* A read-only host view of a tensor (owns_data = 0, valid until close) with
 * the ggml type mapped to a bp_dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, F64,
 * I8, I16, I32, I64) and the shape reversed into batpipe order: shape[0] is
 * the slowest dimension (ggml ne[n_dims-1]) and shape[ndim-1] = ne[0].
 * BP_ERR_NOT_FOUND names the file and tensor; another ggml type gives
 * BP_ERR_UNSUPPORTED ("model.gguf: tensor 'blk.0.attn_q.weight' has type
 * Q5_K (13), supported: ..."). */
BP_API bp_status bp_gguf_tensor(const bp_gguf *g, const char *name, bp_tensor *view, bp_error *err);
BP_API bp_status bp_gguf_tensor_index(const bp_gguf *g, int64_t i, bp_tensor *view, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_GGUF_H */
