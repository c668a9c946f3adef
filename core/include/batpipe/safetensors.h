/* batpipe — safetensors reader (memory-mapped) and writer.
 *
 * Format: u64 little-endian header length N | N bytes of UTF-8 JSON |
 * data. JSON maps tensor names to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data start) plus an optional
 * "__metadata__" object of string → string. The reader checks every offset,
 * size and shape against the file (overflow-safe) and rejects truncated,
 * overlapping or malformed files with a message naming the file and the
 * problem. */
#ifndef BATPIPE_SAFETENSORS_H
#define BATPIPE_SAFETENSORS_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef struct bp_st_file bp_st_file;

/* Open and validate; the file stays mapped until bp_st_close. */
BP_API bp_status bp_st_open(const char *path, bp_st_file **out, bp_error *err);
/* Validate a header + data held in memory (used by fuzzing and tests); the
 * buffer is borrowed and must outlive the handle. `label` names it in errors. */
BP_API bp_status bp_st_open_memory(const void *data, size_t size, const char *label, bp_st_file **out,
                                   bp_error *err);
BP_API void bp_st_close(bp_st_file *f);
BP_API const char *bp_st_path(const bp_st_file *f);

BP_API uint32_t bp_st_count(const bp_st_file *f);
/* Name of tensor i in file order (order of data offsets). */
BP_API const char *bp_st_name(const bp_st_file *f, uint32_t i);
/* A host view of a tensor's data inside the mapping (owns_data = 0, valid
 * until bp_st_close). Tensor data whose offset is not aligned to its element
 * size is copied into an aligned buffer owned by the handle.
 * BP_ERR_NOT_FOUND names the file and the tensor. */
BP_API bp_status bp_st_get(const bp_st_file *f, const char *name, bp_tensor *out, bp_error *err);
BP_API bp_status bp_st_get_index(const bp_st_file *f, uint32_t i, bp_tensor *out, bp_error *err);
/* Like bp_st_get, but also checks the dtype and shape (ndim entries) and
 * reports a mismatch by name: "model.safetensors: tensor 'x' has shape
 * [3,4], expected [4,4]". */
BP_API bp_status bp_st_get_checked(const bp_st_file *f, const char *name, int32_t dtype, int32_t ndim,
                                   const int64_t *shape, bp_tensor *out, bp_error *err);

/* __metadata__ entries; NULL when absent. */
BP_API const char *bp_st_metadata(const bp_st_file *f, const char *key);
BP_API uint32_t bp_st_metadata_count(const bp_st_file *f);
BP_API void bp_st_metadata_at(const bp_st_file *f, uint32_t i, const char **key, const char **value);

/* --- writer --------------------------------------------------------------- */

typedef struct bp_st_writer bp_st_writer;

BP_API bp_status bp_st_writer_new(bp_st_writer **out, bp_error *err);
BP_API void bp_st_writer_free(bp_st_writer *w);
/* Add a host tensor. The name is copied; the data is borrowed until
 * bp_st_writer_write returns. Duplicate names and quantized dtypes are
 * errors. */
BP_API bp_status bp_st_writer_add(bp_st_writer *w, const char *name, const bp_tensor *t, bp_error *err);
BP_API bp_status bp_st_writer_set_metadata(bp_st_writer *w, const char *key, const char *value, bp_error *err);
/* Write atomically: a temporary file in the same directory, fsync, rename.
 * On failure nothing is left at `path` (an older file there is kept). */
BP_API bp_status bp_st_writer_write(bp_st_writer *w, const char *path, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_SAFETENSORS_H */
