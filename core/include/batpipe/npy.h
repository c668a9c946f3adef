/* batpipe — NumPy .npy writer (format version 1.0, little-endian, C order). */
#ifndef BATPIPE_NPY_H
#define BATPIPE_NPY_H

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

/* Write a host tensor (F32, F64, F16, I8, U8, I16, I32, I64, BOOL) atomically. */
BP_API bp_status bp_npy_write(const char *path, const bp_tensor *t, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_NPY_H */
