/* The training ops (ABI 1.1) in the cross-backend op test: cases against
 * float64 references, the core's argument checks, and determinism across
 * repeated calls and thread counts. Used by test_backend_ops.c. */
#ifndef BP_BACKEND_OPS_TRAIN_H
#define BP_BACKEND_OPS_TRAIN_H

#include "ops_test_util.h"

/* Run the training-op groups that `wanted` selects (unary_backward,
 * softmax_backward, layernorm_backward, conv2d_backward, sum_to, batchnorm,
 * maxpool2d, add_rows, adamw, train_rejects) on s->be; `big` is an element
 * count above the cpu backend's threading threshold. */
void train_ops_run(suite *s, int (*wanted)(const char *group), int64_t big);

/* Every training op (and, for information, the forward ops that training
 * uses) on the same inputs on each of `n` instances of one backend that
 * differ only in their thread count: each call twice on one instance must
 * give identical bytes; across instances the vectorised-C ops must too,
 * the oneDNN-based ones are reported (identical or the largest difference). */
void train_ops_determinism(bp_backend *const *bes, const char *const *labels, int n);

/* Failed checks counted in backend_ops_train.c (its own bp_test_failures). */
int train_ops_failures(void);

#endif /* BP_BACKEND_OPS_TRAIN_H */
