/* cpu backend — the instance state and the functions the op files share.
 * Everything declared here is internal to bp-cpu.so (hidden visibility). */
#ifndef BP_CPU_INTERNAL_H
#define BP_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "batpipe/backend.h"
#include "batpipe/host.h"

/* Hot loops are compiled three times (AVX-512, AVX2+FMA, baseline x86-64)
 * and the best one is picked when the plugin is loaded; the rest of the
 * build stays baseline so that the .so runs on any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BP_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BP_CPU_CLONES
#endif

/* Work below this many elements runs on the calling thread only. */
#define BP_CPU_PARALLEL_MIN 32768

/* ------------------------------------------------ oneDNN primitive cache -- */

#define BP_CPU_PRIM_MAX_ARGS 8

/* Everything that determines a primitive: zero-filled, then set, so that
 * whole keys compare with memcmp. */
typedef struct bp_cpu_prim_key {
    int32_t kind;  /* BP_CPU_PRIM_MATMUL or BP_CPU_PRIM_CONV */
    int32_t dtype; /* bp_dtype of the inputs */
    int64_t dims[16];
    int32_t flags[4];
    uint32_t scalars[2]; /* float bit patterns (alpha, beta) */
} bp_cpu_prim_key;

enum {
    BP_CPU_PRIM_MATMUL = 1,
    BP_CPU_PRIM_CONV = 2,
    BP_CPU_PRIM_CONV_BWD_DATA = 3,   /* conv2d_backward: dx */
    BP_CPU_PRIM_CONV_BWD_WEIGHTS = 4 /* conv2d_backward: dw */
};

/* One created primitive with its memory objects (data handles are set
 * before every execution). */
typedef struct bp_cpu_prim {
    bp_cpu_prim_key key;
    uint64_t last_use;  /* 0: empty slot */
    dnnl_primitive_t prim;
    int32_t n_args;
    int32_t arg_ids[BP_CPU_PRIM_MAX_ARGS];
    dnnl_memory_t args[BP_CPU_PRIM_MAX_ARGS];
    dnnl_memory_t scratch; /* NULL when the primitive needs no scratchpad */
    size_t scratch_bytes;
} bp_cpu_prim;

/* A small least-recently-used cache of primitives, per backend instance. */
typedef struct bp_cpu_prim_cache {
    bp_cpu_prim *slots; /* [capacity] */
    uint32_t capacity;  /* 0: nothing is cached */
    uint64_t tick;
    uint64_t hits, misses, evictions;
} bp_cpu_prim_cache;

/* --------------------------------------------------------- the instance -- */

typedef struct bp_cpu {
    bp_backend_impl impl;   /* what `create` hands out; impl.self points back here */
    const bp_host *host;    /* borrowed */
    int32_t n_threads;      /* >= 1 */
    int32_t bf16_native;    /* oneDNN runs BF16 matmul with native instructions */
    int32_t bf16_upconvert; /* BF16 matmul inputs are widened to F32 first */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bp_cpu_prim_cache cache;
    void *scratch;          /* oneDNN user scratchpad, shared by all primitives */
    size_t scratch_cap;
    float *widen;           /* F32 copies of BF16 matmul inputs */
    size_t widen_cap;       /* floats */
    double *partials;       /* partial sums of the training ops' reductions (bp_cpu_partials) */
    size_t partials_cap;    /* doubles */
} bp_cpu;

static inline bp_cpu *bp_cpu_of(bp_backend_impl *impl) { return (bp_cpu *)impl->self; }

/* Threads for `work` elements of simple streaming work. */
static inline int bp_cpu_threads_for(const bp_cpu *cpu, int64_t work) {
    return work >= BP_CPU_PARALLEL_MIN ? cpu->n_threads : 1;
}

/* Reductions of the training ops (sum_to, layernorm/batchnorm statistics and
 * their backward sums, bias gradients) accumulate in double over a split of
 * the reduced dimension that depends on the shape only — at most this many
 * fixed chunks, combined in chunk order — never on the thread count, so their
 * results are the same bytes for any `threads` setting. */
#define BP_CPU_REDUCE_CHUNKS 64

/* Split [0, n) into `parts` near-equal ranges; range `i` is [*lo, *hi). */
static inline void bp_cpu_split(int64_t n, int parts, int i, int64_t *lo, int64_t *hi) {
    int64_t q = n / parts, r = n % parts;
    *lo = (int64_t)i * q + (i < r ? i : r);
    *hi = *lo + q + (i < r ? 1 : 0);
}

/* cpu_conv_direct.c: few-channel convolutions without oneDNN */
#define BP_CPU_CONV_DIRECT_MAX_CH 16 /* Cin·Cout at most */
int bp_cpu_conv_direct_ok(const bp_conv2d_desc *d, const bp_tensor *y); /* y: output or its gradient */
bp_status bp_cpu_conv2d_direct(bp_cpu *cpu, const bp_conv2d_desc *d, bp_error *err);
bp_status bp_cpu_conv2d_direct_dw(bp_cpu *cpu, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dw,
                                  bp_error *err);

/* cpu_prim_cache.c */
void bp_cpu_cache_init(bp_cpu_prim_cache *c, uint32_t capacity);
void bp_cpu_cache_free(bp_cpu_prim_cache *c);
bp_cpu_prim *bp_cpu_cache_find(bp_cpu_prim_cache *c, const bp_cpu_prim_key *key);
/* Build a primitive from `pd` (consumed: destroyed in every case) into a
 * cache slot (evicting the least recently used one), or into `tmp` when the
 * cache is disabled. Memory objects are made for the `n` argument ids. */
bp_status bp_cpu_prim_create(bp_cpu *cpu, const bp_cpu_prim_key *key, dnnl_primitive_desc_t pd,
                             const int32_t *arg_ids, int32_t n, bp_cpu_prim *tmp, bp_cpu_prim **out,
                             const char *what, bp_error *err);
/* Run `p` with `ptrs[i]` as the data of argument i; `tmp` entries are released. */
bp_status bp_cpu_prim_execute(bp_cpu *cpu, bp_cpu_prim *p, void *const *ptrs, const char *what, bp_error *err);
void bp_cpu_prim_release(bp_cpu_prim *p);
bp_status bp_cpu_dnnl_error(dnnl_status_t s, const char *what, const char *call, bp_error *err);

/* cpu_memory.c */
bp_status bp_cpu_alloc(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err);
void bp_cpu_free(bp_backend_impl *be, void *ptr);
bp_status bp_cpu_write(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err);
bp_status bp_cpu_read(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err);
bp_status bp_cpu_copy(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err);
bp_status bp_cpu_synchronize(bp_backend_impl *be, bp_error *err);

/* cpu_dnnl_ops.c */
bp_status bp_cpu_matmul(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err);
bp_status bp_cpu_conv2d(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err);

/* cpu_eltwise.c */
bp_status bp_cpu_unary(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_cpu_binary(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                        bp_error *err);
bp_status bp_cpu_affine(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                        bp_error *err);

/* cpu_norm.c */
bp_status bp_cpu_softmax(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err);
bp_status bp_cpu_layernorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                           float eps, bp_tensor *y, bp_error *err);
bp_status bp_cpu_rmsnorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                         bp_error *err);
bp_status bp_cpu_reduce(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err);

/* cpu_layout.c */
bp_status bp_cpu_convert(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_cpu_permute(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                         bp_error *err);
bp_status bp_cpu_fill(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err);

/* cpu_get_rows.c */
bp_status bp_cpu_get_rows(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                          bp_error *err);

/* --- training ops (ABI 1.1) --- */

/* cpu_train_eltwise.c */
bp_status bp_cpu_unary_backward(bp_backend_impl *be, int32_t op, const bp_tensor *x, const bp_tensor *dy,
                                bp_tensor *dx, bp_error *err);
bp_status bp_cpu_adamw(bp_backend_impl *be, const bp_adamw_desc *d, bp_error *err);

/* cpu_train_rows.c */
bp_status bp_cpu_softmax_backward(bp_backend_impl *be, const bp_tensor *y, const bp_tensor *dy, float scale,
                                  bp_tensor *dx, bp_error *err);
bp_status bp_cpu_layernorm_backward(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w,
                                    const bp_tensor *dy, float eps, bp_tensor *dx, bp_tensor *dw, bp_tensor *db,
                                    bp_error *err);

/* cpu_train_reduce.c */
bp_status bp_cpu_sum_to(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_cpu_add_rows(bp_backend_impl *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                          bp_error *err);
/* `n` zeroed doubles owned by the instance (grown on demand, kept between
 * calls: no page faults per call), valid until the next call; NULL (and
 * `err` set, naming `what`) when memory runs out. */
double *bp_cpu_partials(bp_cpu *cpu, size_t n, const char *what, bp_error *err);
/* Per-plane sums of `planes` contiguous planes of `plane` elements each, in
 * double: sums[i] = Σ x[i·plane .. (i+1)·plane). Deterministic (each plane
 * is summed by one thread in a fixed order). Shared by batchnorm and the
 * conv2d bias gradient. */
void bp_cpu_plane_sums(const bp_cpu *cpu, const float *x, int64_t planes, int64_t plane, double *sums);

/* cpu_batchnorm.c */
bp_status bp_cpu_batchnorm(bp_backend_impl *be, const bp_batchnorm_desc *d, bp_error *err);
bp_status bp_cpu_batchnorm_backward(bp_backend_impl *be, const bp_batchnorm_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err);

/* cpu_pool.c */
bp_status bp_cpu_maxpool2d(bp_backend_impl *be, const bp_pool2d_desc *d, bp_error *err);
bp_status bp_cpu_maxpool2d_backward(bp_backend_impl *be, const bp_pool2d_desc *d, const bp_tensor *dy,
                                    bp_tensor *dx, bp_error *err);

/* cpu_train_dnnl.c */
bp_status bp_cpu_conv2d_backward(bp_backend_impl *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                 bp_tensor *dw, bp_tensor *db, bp_error *err);

/* cpu_layout.c: F16/BF16 rows <-> F32 (also used by get_rows and BF16 matmul widening). */
void bp_cpu_f16_to_f32_row(const uint16_t *x, float *y, int64_t n);
void bp_cpu_bf16_to_f32_row(const uint16_t *x, float *y, int64_t n);

#endif /* BP_CPU_INTERNAL_H */
