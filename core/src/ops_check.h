/* Internal: the argument checks shared by the core's op wrappers. */
#ifndef BP_OPS_CHECK_H
#define BP_OPS_CHECK_H

#include <stddef.h>

#include "batpipe/ops.h"

/* Is field `f` inside the struct_size the plugin compiled with, and set? */
#define BP_IMPL_HAS(impl, f) \
    ((impl)->struct_size >= offsetof(bp_backend_impl, f) + sizeof((impl)->f) && (impl)->f != NULL)

/* t is non-NULL, lives on `be` (or on the host for a host-memory backend) and has data. */
bp_status bp_ops_check_on(bp_backend *be, const char *op, const char *role, const bp_tensor *t, bp_error *err);
/* bp_ops_check_on and dtype F32. */
bp_status bp_ops_check_f32(bp_backend *be, const char *op, const char *role, const bp_tensor *t, bp_error *err);
/* Same rank and dims. */
bp_status bp_ops_check_same(const char *op, const bp_tensor *x, const bp_tensor *y, bp_error *err);
/* NULL, or an F32 [n] on be. */
bp_status bp_ops_check_vec(bp_backend *be, const char *op, const char *role, const bp_tensor *t, int64_t n,
                           bp_error *err);
/* The conv2d rules of backend.h for d (x, w, y, bias). */
bp_status bp_ops_check_conv2d(bp_backend *be, const char *op, const bp_conv2d_desc *d, bp_error *err);
/* "OP: not supported by backend 'X'". */
bp_status bp_ops_missing(bp_backend *be, const char *op, bp_error *err);

#endif
