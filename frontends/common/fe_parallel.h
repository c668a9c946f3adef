/* frontends/common — a static parallel-for on plain pthreads.
 *
 * The items [0, n) are cut into n_threads contiguous ranges; range i is
 * computed with scratch slot i, range 0 on the calling thread and the others
 * on threads started for this call and joined before it returns (no thread
 * pool outlives the call, so a plugin can be unloaded at any time between
 * calls). If a thread cannot be started its range runs on the calling thread
 * afterwards, with its own slot. Which thread computes an item never changes
 * the result: callers keep items independent. */
#ifndef BP_FE_PARALLEL_H
#define BP_FE_PARALLEL_H

#include <stdint.h>

/* Compute items [begin, end) with per-thread scratch slot `slot` (< n_threads). */
typedef void (*bp_fe_range_fn)(void *ctx, int32_t slot, int64_t begin, int64_t end);

void bp_fe_parallel_for(int32_t n_threads, int64_t n, bp_fe_range_fn fn, void *ctx);

#endif /* BP_FE_PARALLEL_H */
