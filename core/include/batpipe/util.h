/* batpipe — small file-system helpers used by the CLI and by plugins. */
#ifndef BATPIPE_UTIL_H
#define BATPIPE_UTIL_H

#include <stddef.h>

#include "error.h"

BP_EXTERN_C_BEGIN

/* Create a directory and its parents (like mkdir -p). */
BP_API bp_status bp_mkdir_p(const char *path, bp_error *err);
/* Write a buffer to `path` atomically: a temporary file in the same
 * directory, fsync, rename. On failure nothing is left behind and an older
 * file at `path` is kept. */
BP_API bp_status bp_write_file_atomic(const char *path, const void *data, size_t size, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_UTIL_H */
