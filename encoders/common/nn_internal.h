/* bp_nn internals shared by the layer files (not installed, not for plugins). */
#ifndef BP_NN_INTERNAL_H
#define BP_NN_INTERNAL_H

#include <stdio.h>

#include "bp_nn.h"

#define NN_TRY(x)                         \
    do {                                  \
        bp_status nn_st_ = (x);           \
        if (nn_st_ != BP_OK) return nn_st_; \
    } while (0)

/* Like NN_TRY, prefixing the message with the layer name `who` (in scope). */
#define NN_OP(x)                                  \
    do {                                          \
        bp_status nn_st_ = (x);                   \
        if (nn_st_ != BP_OK) {                    \
            bp_error_prefix(err, "%s: ", who);    \
            return nn_st_;                        \
        }                                         \
    } while (0)

/* The name of the layer owning parameter tensor `t` ("blocks.0.attn.qkv.weight"). */
static inline const char *nn_name(const bp_tensor *t) { return t && t->name ? t->name : "bp_nn layer"; }

/* Product of all but the last dim. */
static inline int64_t nn_rows(const bp_tensor *t) {
    int64_t n = 1;
    for (int32_t i = 0; i + 1 < t->ndim; i++) n *= t->shape[i];
    return n;
}

static inline int64_t nn_last(const bp_tensor *t) { return t->ndim > 0 ? t->shape[t->ndim - 1] : 1; }

/* "x F32[2,3] must be [..., 4]" style check of the last dim. */
static inline bp_status nn_check_last(const bp_tensor *t, int64_t want, const char *who, const char *role,
                                      bp_error *err) {
    if (!t) return bp_error_set(err, BP_ERR_INTERNAL, "%s: %s is NULL", who, role);
    if (t->ndim < 1 || nn_last(t) != want) {
        char buf[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s %s must have last dimension %lld", who, role,
                            bp_tensor_describe(t, buf, sizeof buf), (long long)want);
    }
    return BP_OK;
}

/* A [rows, cols] view of a tensor whose last dim is cols. */
static inline bp_tensor nn_as2d(const bp_tensor *t, int64_t cols) {
    const int64_t s[2] = {bp_tensor_numel(t) / (cols > 0 ? cols : 1), cols};
    return bp_nn_reshape(t, 2, s);
}

/* Accumulate a freshly computed gradient into a parameter grad (NULL-safe). */
static inline bp_status nn_accumulate(bp_backend *be, const bp_tensor *g, bp_tensor *grad, bp_error *err) {
    if (!grad) return BP_OK;
    return bp_nn_add_into(be, g, grad, err);
}

#endif
