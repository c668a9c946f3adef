/* bench_spatial_ast — speed of the spatial_ast encoder plugin, driven through
 * the public API as the pipeline and the trainer drive it (registry → cpu
 * backend → bp_registry_create of the `spatial_ast` encoder → prepare →
 * process; the training step through the batpipe.trainable/1 extension and
 * bp_op_adamw, as core/src/train_loop.c does). The front end is not part of
 * this benchmark: the input features are random (fixed seed), already on the
 * backend.
 *
 *   bench_spatial_ast [-t 1,2] [-m fwd1,fwd8,train] [-w WARMUP] [-n ITERS]
 *                     [--weights FULL.safetensors] [--weights-mini MINI.safetensors]
 *                     [--check OUT.safetensors] [--profile]
 *
 * Measurements (-m):
 *   fwd1, fwd8  full size (dim 768, depth 12, heads 12, mlp 3072, melipd input
 *               [B, 4, 1024, 128], 355 classes), evaluation forward (`process`,
 *               every output: tokens [B, 515, 768] and the four logits),
 *               batch 1 / 8.
 *   train       the mini config (configs/mini/spatial_ast.cfg: dim 192, depth 4,
 *               heads 3, 52 classes), batch 8: zero_grad → training forward
 *               (token masking 0.25/0.25, SpecAugment 48/192, drop path 0.1,
 *               the trainer's augment block; a new seed every step) → loss
 *               and its gradient on the logits (host: 1250·BCE + CE_distance
 *               + 2·(CE_azimuth + CE_elevation), mean reductions, as the
 *               mini recipe's stage 2) → backward → bp_op_adamw on every
 *               trainable parameter (lr 3.125e-4, β 0.9/0.95, eps 1e-8,
 *               weight decay 5e-4 where the parameter's decay flag is set;
 *               one lr for all: layer-wise lr decay only changes the value).
 * Defaults: warm-up / timed iterations fwd1 2/5, fwd8 1/3, train 3/10
 * (-w / -n override them for every measurement). Random init unless
 * --weights / --weights-mini give safetensors state dicts (official names;
 * bench/spatial_ast_torch.py export writes them, so that both sides compute
 * the same function).
 *
 * One line per (thread count, measurement):
 *   sast impl=c threads=N what=fwd1 batch=1 iters=K median_ms=M best_ms=B gflop=G gflops=R
 * gflops = gflop / median time. FLOP counting (matmuls and convolutions only,
 * 2 FLOP per multiply-add; softmax, norms, GELU, AdamW not counted), per
 * sample with N tokens through the blocks (515 in evaluation; 3 + 48·6 =
 * 291 with the training masking), D = dim, Hm = MLP width, C = input maps:
 *   conv_downsample.0   2·C·9·1024·128
 *   patch_embed.proj    2·512·256·D
 *   each block          2·N·D·3D (qkv) + 2·2·N²·D (q·kᵀ, p·v) + 2·N·D² (proj) + 2·2·N·D·Hm (fc1, fc2)
 *   heads               2·D·(n_classes + 21 + 360 + 180)
 * training step = 3 × forward (backward: input and weight gradients) minus one
 * conv_downsample.0 forward (its input gradient is not computed).
 * Full size: 97.47 GFLOP per clip forward; mini training step at batch 8: 32.32 GFLOP.
 *
 * --check OUT: instead of timing, write what bench/spatial_ast_torch.py check
 * compares: a full-size evaluation forward at batch 2 (input, tokens, logits)
 * and one mini training step at batch 8 without augmentation (input, targets,
 * logits, loss, every gradient, every state tensor after AdamW step 1).
 *
 * --profile: time every backend call (a pass-through wrapper around the cpu
 * backend's op table; the plugin is unchanged) and print, per measurement,
 * a table of ops (matmuls by shape) per iteration: calls, ms, share, GFLOP/s. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/backend.h"
#include "batpipe/ops.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "batpipe/spec.h"
#include "batpipe/stage.h"
#include "batpipe/trainable.h"

#define FRAMES 1024
#define MELS 128
#define IN_CH 4
#define N_HEADS_OUT 4 /* logits ports: class, distance, azimuth, elevation */

static const char *const head_ports[N_HEADS_OUT] = {"logits_class", "logits_distance", "logits_azimuth",
                                                    "logits_elevation"};

/* The two model configurations of the benchmark. */
typedef struct model_cfg {
    int64_t dim, depth, heads, hidden, n_classes;
} model_cfg;

static const model_cfg cfg_full = {768, 12, 12, 3072, 355};
static const model_cfg cfg_mini = {192, 4, 3, 768, 52};

/* Training recipe of the benchmark step (configs/mini/common.inc). */
#define TR_BATCH 8
#define TR_LR 3.125e-4f /* blr 5e-3 · 16 / 256 */
#define TR_BETA1 0.9f
#define TR_BETA2 0.95f
#define TR_EPS 1e-8f
#define TR_WD 5e-4f
#define W_CLASS 1250.0
#define W_DIST 1.0
#define W_DIR 2.0

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) with 24 random bits */
static float rand_pm1(uint64_t *s) { return (float)((double)(splitmix64(s) >> 40) / 8388608.0 - 1.0); }

/* ------------------------------------------------------------ FLOP count -- */

static double flop_forward(const model_cfg *c, int64_t batch, int64_t n_tok) {
    const double D = (double)c->dim, N = (double)n_tok, Hm = (double)c->hidden;
    double conv0 = 2.0 * IN_CH * 9 * FRAMES * MELS;
    double patch = 2.0 * 512 * 256 * D;
    double block = 2.0 * N * D * 3 * D + 4.0 * N * N * D + 2.0 * N * D * D + 4.0 * N * D * Hm;
    double heads = 2.0 * D * (double)(c->n_classes + 21 + 360 + 180);
    return (double)batch * (conv0 + patch + (double)c->depth * block + heads);
}

static double flop_train(const model_cfg *c, int64_t batch, int64_t n_tok) {
    return 3.0 * flop_forward(c, batch, n_tok) - (double)batch * 2.0 * IN_CH * 9 * FRAMES * MELS;
}

/* -------------------------------------------------- profiling backend -- */

#define PROF_MAX 256

typedef struct prof_entry {
    char key[112];
    int64_t calls;
    double seconds, flop;
} prof_entry;

typedef struct prof {
    bp_backend_impl impl; /* the table handed to bp_backend_wrap; impl.self = this */
    bp_backend_impl *inner;
    prof_entry e[PROF_MAX];
    int n;
    int64_t dropped;
} prof;

static prof *prof_of(bp_backend_impl *be) { return (prof *)be->self; }

static void prof_add(prof *p, const char *key, double seconds, double flop) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->e[i].key, key) == 0) {
            p->e[i].calls++;
            p->e[i].seconds += seconds;
            p->e[i].flop += flop;
            return;
        }
    if (p->n == PROF_MAX) {
        p->dropped++;
        return;
    }
    prof_entry *e = &p->e[p->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->calls = 1;
    e->seconds = seconds;
    e->flop = flop;
}

static void prof_reset(prof *p) {
    p->n = 0;
    p->dropped = 0;
}

static void shape_str(const bp_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int32_t i = 0; t && i < t->ndim && o + 24 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? "x" : "", (long long)t->shape[i]);
}

#define PROF_TIMED(p, key, flop, call)               \
    do {                                             \
        double t0_ = now_s();                        \
        bp_status st_ = (call);                      \
        prof_add((p), (key), now_s() - t0_, (flop)); \
        return st_;                                  \
    } while (0)

static bp_status pw_copy(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "copy", 0.0, p->inner->copy(p->inner, dst, src, bytes, err));
}

static bp_status pw_write(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "write (host→backend)", 0.0, p->inner->write(p->inner, dst, src, bytes, err));
}

static bp_status pw_read(bp_backend_impl *be, void *dst, const void *src, size_t bytes, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "read (backend→host)", 0.0, p->inner->read(p->inner, dst, src, bytes, err));
}

static bp_status pw_alloc(bp_backend_impl *be, size_t bytes, void **ptr, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "alloc", 0.0, p->inner->alloc(p->inner, bytes, ptr, err));
}

static void pw_free(bp_backend_impl *be, void *ptr) {
    prof *p = prof_of(be);
    p->inner->free(p->inner, ptr);
}

static bp_status pw_sync(bp_backend_impl *be, bp_error *err) {
    prof *p = prof_of(be);
    return p->inner->synchronize ? p->inner->synchronize(p->inner, err) : BP_OK;
}

/* M, K, N and the batch count of a matmul descriptor (backend.h rules). */
static void matmul_dims(const bp_matmul_desc *d, int64_t *batch, int64_t *m, int64_t *k, int64_t *n) {
    const bp_tensor *a = d->a, *c = d->c;
    *m = c->shape[c->ndim - 2];
    *n = c->shape[c->ndim - 1];
    *k = d->trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    *batch = bp_tensor_numel(c) / (*m * *n > 0 ? *m * *n : 1);
}

static bp_status pw_matmul(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    int64_t b, m, k, n;
    matmul_dims(d, &b, &m, &k, &n);
    char key[112], bs[32] = "";
    if (b > 1) snprintf(bs, sizeof bs, " [batch %lld]", (long long)b);
    snprintf(key, sizeof key, "matmul MxKxN %lldx%lldx%lld%s%s%s%s%s", (long long)m, (long long)k, (long long)n,
             d->trans_a ? " tA" : "", d->trans_b ? " tB" : "", d->bias ? " +bias" : "", d->beta != 0.0f ? " +=C" : "",
             bs);
    PROF_TIMED(p, key, 2.0 * (double)b * (double)m * (double)k * (double)n, p->inner->matmul(p->inner, d, err));
}

/* 2 · output elements · (C/groups)·KH·KW; `y` = the forward output or, in backward, dy */
static double conv_flop(const bp_conv2d_desc *d, const bp_tensor *y) {
    const bp_tensor *w = d->w;
    if (!w || !y) return 0.0;
    return 2.0 * (double)bp_tensor_numel(y) * (double)(w->shape[1] * w->shape[2] * w->shape[3]);
}

static bp_status pw_conv2d(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    char key[112], ws[48];
    shape_str(d->w, ws, sizeof ws);
    snprintf(key, sizeof key, "conv2d w %s stride %d", ws, (int)d->stride_h);
    PROF_TIMED(p, key, conv_flop(d, d->y), p->inner->conv2d(p->inner, d, err));
}

static bp_status pw_conv2d_backward(bp_backend_impl *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                    bp_tensor *dw, bp_tensor *db, bp_error *err) {
    prof *p = prof_of(be);
    char key[112], ws[48];
    shape_str(d->w, ws, sizeof ws);
    snprintf(key, sizeof key, "conv2d_backward w %s%s%s%s", ws, dx ? " dx" : "", dw ? " dw" : "", db ? " db" : "");
    double f = conv_flop(d, dy) * ((dx ? 1.0 : 0.0) + (dw ? 1.0 : 0.0));
    PROF_TIMED(p, key, f, p->inner->conv2d_backward(p->inner, d, dy, dx, dw, db, err));
}

static bp_status pw_unary(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    prof *p = prof_of(be);
    char key[112];
    snprintf(key, sizeof key, "unary %s", bp_unary_op_name(op));
    PROF_TIMED(p, key, 0.0, p->inner->unary(p->inner, op, x, y, err));
}

static bp_status pw_unary_backward(bp_backend_impl *be, int32_t op, const bp_tensor *x, const bp_tensor *dy,
                                   bp_tensor *dx, bp_error *err) {
    prof *p = prof_of(be);
    char key[112];
    snprintf(key, sizeof key, "unary_backward %s", bp_unary_op_name(op));
    PROF_TIMED(p, key, 0.0, p->inner->unary_backward(p->inner, op, x, dy, dx, err));
}

static bp_status pw_binary(bp_backend_impl *be, int32_t op, const bp_tensor *a, const bp_tensor *b, bp_tensor *y,
                           bp_error *err) {
    prof *p = prof_of(be);
    char key[112];
    snprintf(key, sizeof key, "binary %s", bp_binary_op_name(op));
    PROF_TIMED(p, key, 0.0, p->inner->binary(p->inner, op, a, b, y, err));
}

static bp_status pw_affine(bp_backend_impl *be, const bp_tensor *x, float alpha, float beta, bp_tensor *y,
                           bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "affine", 0.0, p->inner->affine(p->inner, x, alpha, beta, y, err));
}

static bp_status pw_softmax(bp_backend_impl *be, const bp_softmax_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "softmax", 0.0, p->inner->softmax(p->inner, d, err));
}

static bp_status pw_softmax_backward(bp_backend_impl *be, const bp_tensor *y, const bp_tensor *dy, float scale,
                                     bp_tensor *dx, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "softmax_backward", 0.0, p->inner->softmax_backward(p->inner, y, dy, scale, dx, err));
}

static bp_status pw_layernorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, const bp_tensor *b,
                              float eps, bp_tensor *y, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "layernorm", 0.0, p->inner->layernorm(p->inner, x, w, b, eps, y, err));
}

static bp_status pw_layernorm_backward(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w,
                                       const bp_tensor *dy, float eps, bp_tensor *dx, bp_tensor *dw, bp_tensor *db,
                                       bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "layernorm_backward", 0.0, p->inner->layernorm_backward(p->inner, x, w, dy, eps, dx, dw, db, err));
}

static bp_status pw_rmsnorm(bp_backend_impl *be, const bp_tensor *x, const bp_tensor *w, float eps, bp_tensor *y,
                             bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "rmsnorm", 0.0, p->inner->rmsnorm(p->inner, x, w, eps, y, err));
}

static bp_status pw_reduce(bp_backend_impl *be, int32_t op, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "reduce", 0.0, p->inner->reduce(p->inner, op, x, y, err));
}

static bp_status pw_convert(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "convert", 0.0, p->inner->convert(p->inner, x, y, err));
}

static bp_status pw_permute(bp_backend_impl *be, const bp_tensor *x, const int32_t *perm, bp_tensor *y,
                            bp_error *err) {
    prof *p = prof_of(be);
    char key[112], xs[48];
    shape_str(x, xs, sizeof xs);
    snprintf(key, sizeof key, "permute %s (%d,%d,%d,%d)", xs, perm[0], x->ndim > 1 ? perm[1] : 0,
             x->ndim > 2 ? perm[2] : 0, x->ndim > 3 ? perm[3] : 0);
    PROF_TIMED(p, key, 0.0, p->inner->permute(p->inner, x, perm, y, err));
}

static bp_status pw_get_rows(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                             bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "get_rows", 0.0, p->inner->get_rows(p->inner, table, ids, y, err));
}

static bp_status pw_fill(bp_backend_impl *be, bp_tensor *y, float value, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "fill", 0.0, p->inner->fill(p->inner, y, value, err));
}

static bp_status pw_sum_to(bp_backend_impl *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    prof *p = prof_of(be);
    char key[112], xs[48], ys[48];
    shape_str(x, xs, sizeof xs);
    shape_str(y, ys, sizeof ys);
    snprintf(key, sizeof key, "sum_to %s -> %s", xs, ys);
    PROF_TIMED(p, key, 0.0, p->inner->sum_to(p->inner, x, y, err));
}

static bp_status pw_batchnorm(bp_backend_impl *be, const bp_batchnorm_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "batchnorm", 0.0, p->inner->batchnorm(p->inner, d, err));
}

static bp_status pw_batchnorm_backward(bp_backend_impl *be, const bp_batchnorm_desc *d, const bp_tensor *dy,
                                       bp_tensor *dx, bp_tensor *dw, bp_tensor *db, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "batchnorm_backward", 0.0, p->inner->batchnorm_backward(p->inner, d, dy, dx, dw, db, err));
}

static bp_status pw_maxpool2d(bp_backend_impl *be, const bp_pool2d_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "maxpool2d", 0.0, p->inner->maxpool2d(p->inner, d, err));
}

static bp_status pw_maxpool2d_backward(bp_backend_impl *be, const bp_pool2d_desc *d, const bp_tensor *dy,
                                       bp_tensor *dx, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "maxpool2d_backward", 0.0, p->inner->maxpool2d_backward(p->inner, d, dy, dx, err));
}

static bp_status pw_add_rows(bp_backend_impl *be, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                             bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "add_rows", 0.0, p->inner->add_rows(p->inner, src, ids, table, err));
}

static bp_status pw_adamw(bp_backend_impl *be, const bp_adamw_desc *d, bp_error *err) {
    prof *p = prof_of(be);
    PROF_TIMED(p, "adamw", 0.0, p->inner->adamw(p->inner, d, err));
}

static void pw_destroy(bp_backend_impl *be) { (void)be; /* the inner backend's handle owns it */ }

/* A pass-through table over `inner` (owned by its own handle, which must
 * outlive the wrapper's handle): every function pointer of the table is
 * replaced (each wrapper calls inner's with inner as `be`), so none of
 * inner's functions ever sees the wrapper's table. */
static bp_status prof_wrap(prof *p, bp_backend_impl *inner, bp_backend **out, bp_error *err) {
    memset(p, 0, sizeof *p);
    size_t n = inner->struct_size < sizeof p->impl ? inner->struct_size : sizeof p->impl;
    memcpy(&p->impl, inner, n);
    p->impl.struct_size = (uint32_t)n;
    p->impl.self = p;
    p->inner = inner;
    bp_backend_impl *w = &p->impl;
#define SET(f, fn) \
    if (offsetof(bp_backend_impl, f) + sizeof w->f <= n && w->f) w->f = fn
    SET(alloc, pw_alloc);
    SET(free, pw_free);
    SET(write, pw_write);
    SET(read, pw_read);
    SET(copy, pw_copy);
    SET(synchronize, pw_sync);
    SET(matmul, pw_matmul);
    SET(conv2d, pw_conv2d);
    SET(unary, pw_unary);
    SET(binary, pw_binary);
    SET(affine, pw_affine);
    SET(softmax, pw_softmax);
    SET(layernorm, pw_layernorm);
    SET(rmsnorm, pw_rmsnorm);
    SET(reduce, pw_reduce);
    SET(convert, pw_convert);
    SET(permute, pw_permute);
    SET(get_rows, pw_get_rows);
    SET(fill, pw_fill);
    SET(unary_backward, pw_unary_backward);
    SET(softmax_backward, pw_softmax_backward);
    SET(layernorm_backward, pw_layernorm_backward);
    SET(conv2d_backward, pw_conv2d_backward);
    SET(sum_to, pw_sum_to);
    SET(batchnorm, pw_batchnorm);
    SET(batchnorm_backward, pw_batchnorm_backward);
    SET(maxpool2d, pw_maxpool2d);
    SET(maxpool2d_backward, pw_maxpool2d_backward);
    SET(add_rows, pw_add_rows);
    SET(adamw, pw_adamw);
#undef SET
    w->destroy = pw_destroy;
    return bp_backend_wrap(w, out, err);
}

static int cmp_entry(const void *a, const void *b) {
    const prof_entry *x = a, *y = b;
    return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

static void prof_print(prof *p, const char *what, int threads, int iters, double wall_ms) {
    qsort(p->e, (size_t)p->n, sizeof p->e[0], cmp_entry);
    double total = 0.0, flop = 0.0;
    for (int i = 0; i < p->n; i++) {
        total += p->e[i].seconds;
        flop += p->e[i].flop;
    }
    printf("profile %s threads=%d: per iteration (%d timed), %.1f ms wall, %.1f ms in backend calls "
           "(%.1f GFLOP/s over the backend time)\n",
           what, threads, iters, wall_ms, 1e3 * total / iters, total > 0 ? 1e-9 * flop / total : 0.0);
    printf("  %-58s %7s %9s %6s %9s\n", "op", "calls", "ms", "share", "GFLOP/s");
    double other = 0.0;
    int64_t other_calls = 0;
    for (int i = 0; i < p->n; i++) {
        const prof_entry *e = &p->e[i];
        if (e->seconds / total < 0.002) {
            other += e->seconds;
            other_calls += e->calls;
            continue;
        }
        char gf[16] = "";
        if (e->flop > 0) snprintf(gf, sizeof gf, "%.1f", 1e-9 * e->flop / e->seconds);
        printf("  %-58s %7.1f %9.2f %5.1f%% %9s\n", e->key, (double)e->calls / iters, 1e3 * e->seconds / iters,
               100.0 * e->seconds / total, gf);
    }
    if (other > 0)
        printf("  %-58s %7.1f %9.2f %5.1f%%\n", "(other ops, each < 0.2%)", (double)other_calls / iters,
               1e3 * other / iters, 100.0 * other / total);
    if (p->dropped) printf("  (%lld calls not recorded: too many distinct keys)\n", (long long)p->dropped);
}

/* ------------------------------------------------------------ the model -- */

typedef struct model {
    model_cfg cfg;
    bp_paramset *ps;
    bp_stage *st;
    const bp_trainable *tr;
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports;
    int head_port[N_HEADS_OUT];
    bp_tensor *input, *outs[BP_MAX_OUTPUTS];
    int64_t batch;
} model;

static void model_free_batch(model *m) {
    bp_tensor_free(m->input);
    m->input = NULL;
    for (int i = 0; i < BP_MAX_OUTPUTS; i++) {
        bp_tensor_free(m->outs[i]);
        m->outs[i] = NULL;
    }
}

static void model_free(model *m) {
    model_free_batch(m);
    if (m->st) m->st->destroy(m->st);
    bp_paramset_free(m->ps);
    memset(m, 0, sizeof *m);
}

/* --precision: the encoder's inference precision (f32 | bf16; training is F32 either way) */
static const char *g_precision = "f32";

static bp_status model_create(model *m, bp_registry *reg, bp_backend *be, const model_cfg *c, const char *weights,
                              bp_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_ENCODER, "spatial_ast");
    if (!comp)
        return bp_error_set(err, BP_ERR_NOT_FOUND,
                            "the spatial_ast encoder plugin was not found (build bp_plugin_spatial_ast; "
                            "BATPIPE_PLUGIN_PATH)");
    char kv[8][1200];
    snprintf(kv[0], sizeof kv[0], "dim=%lld", (long long)c->dim);
    snprintf(kv[1], sizeof kv[1], "depth=%lld", (long long)c->depth);
    snprintf(kv[2], sizeof kv[2], "heads=%lld", (long long)c->heads);
    snprintf(kv[3], sizeof kv[3], "n_classes=%lld", (long long)c->n_classes);
    snprintf(kv[4], sizeof kv[4], "input=\"melipd\"");
    snprintf(kv[5], sizeof kv[5], "init_seed=1");
    snprintf(kv[6], sizeof kv[6], "weights=\"%s\"", weights ? weights : "");
    snprintf(kv[7], sizeof kv[7], "precision=\"%s\"", g_precision);
    const char *kvs[8] = {kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7]};
    bp_status st = bp_paramset_from_strings(comp->desc, kvs, 8, &m->ps, err);
    void *inst = NULL;
    if (st == BP_OK) st = bp_registry_create(reg, comp, bp_paramset_params(m->ps), be, &inst, err);
    if (st != BP_OK) return st;
    m->st = inst;
    m->tr = m->st->get_extension ? m->st->get_extension(m->st, BP_EXT_TRAINABLE_ID) : NULL;
    return BP_OK;
}

/* prepare for [batch, 4, 1024, 128] and allocate input and every output on the backend */
static bp_status model_set_batch(model *m, bp_backend *be, int64_t batch, uint64_t seed, bp_error *err) {
    model_free_batch(m);
    const int64_t s_in[4] = {batch, IN_CH, FRAMES, MELS};
    bp_spec have = bp_spec_f32(4, s_in, 0.0, "batch,map,time,mel");
    m->n_ports = BP_MAX_OUTPUTS;
    bp_status st = m->st->prepare(m->st, &have, m->ports, &m->n_ports, err);
    if (st != BP_OK) return st;
    for (int h = 0; h < N_HEADS_OUT; h++) {
        m->head_port[h] = -1;
        for (uint32_t i = 0; i < m->n_ports; i++)
            if (strcmp(m->ports[i].name, head_ports[h]) == 0) m->head_port[h] = (int)i;
        if (m->head_port[h] < 0) return bp_error_set(err, BP_ERR_SPEC, "spatial_ast has no output %s", head_ports[h]);
    }
    for (uint32_t i = 0; i < m->n_ports && st == BP_OK; i++)
        st = bp_tensor_new(be, BP_DTYPE_F32, m->ports[i].spec.ndim, m->ports[i].spec.shape, &m->outs[i], err);
    if (st == BP_OK) st = bp_tensor_new(be, BP_DTYPE_F32, 4, s_in, &m->input, err);
    if (st != BP_OK) return st;
    int64_t n = bp_tensor_numel(m->input);
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) return bp_error_set(err, BP_ERR_NOMEM, "bench_spatial_ast: out of memory");
    for (int64_t i = 0; i < n; i++) h[i] = rand_pm1(&seed);
    st = bp_tensor_write(m->input, h, (size_t)n * sizeof *h, err);
    free(h);
    m->batch = batch;
    return st;
}

/* ---------------------------------------------------------- training -- */

typedef struct trainer {
    model *m;
    uint32_t n_params;
    bp_train_param *params;
    bp_tensor **adam_m, **adam_v, *d_outs[BP_MAX_OUTPUTS];
    float *logits[N_HEADS_OUT], *grads[N_HEADS_OUT];
    int64_t width[N_HEADS_OUT];
    float *y_class;
    int32_t *y_idx[3]; /* distance, azimuth, elevation targets */
    int64_t adam_step;
} trainer;

static void trainer_free(trainer *t) {
    for (uint32_t i = 0; i < t->n_params; i++) {
        if (t->adam_m) bp_tensor_free(t->adam_m[i]);
        if (t->adam_v) bp_tensor_free(t->adam_v[i]);
    }
    free(t->adam_m);
    free(t->adam_v);
    free(t->params);
    for (int i = 0; i < BP_MAX_OUTPUTS; i++) bp_tensor_free(t->d_outs[i]);
    for (int h = 0; h < N_HEADS_OUT; h++) {
        free(t->logits[h]);
        free(t->grads[h]);
    }
    free(t->y_class);
    for (int k = 0; k < 3; k++) free(t->y_idx[k]);
    memset(t, 0, sizeof *t);
}

static bp_status trainer_init(trainer *t, model *m, bp_backend *be, bp_error *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    if (!m->tr) return bp_error_set(err, BP_ERR_UNSUPPORTED, "spatial_ast offers no %s extension", BP_EXT_TRAINABLE_ID);
    const int64_t B = m->batch;
    t->n_params = m->tr->param_count(m->st);
    t->params = calloc(t->n_params, sizeof *t->params);
    t->adam_m = calloc(t->n_params, sizeof *t->adam_m);
    t->adam_v = calloc(t->n_params, sizeof *t->adam_v);
    if (!t->params || !t->adam_m || !t->adam_v) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = BP_OK;
    for (uint32_t i = 0; i < t->n_params && st == BP_OK; i++) {
        bp_train_param *p = &t->params[i];
        p->struct_size = sizeof *p;
        if ((st = m->tr->param_at(m->st, i, p, err)) != BP_OK) break;
        if (!p->trainable) continue;
        st = bp_tensor_new(be, BP_DTYPE_F32, p->value->ndim, p->value->shape, &t->adam_m[i], err);
        if (st == BP_OK) st = bp_tensor_new(be, BP_DTYPE_F32, p->value->ndim, p->value->shape, &t->adam_v[i], err);
        if (st == BP_OK) st = bp_op_fill(be, t->adam_m[i], 0.0f, err);
        if (st == BP_OK) st = bp_op_fill(be, t->adam_v[i], 0.0f, err);
    }
    uint64_t seed = 0x7a72676574ULL; /* targets */
    for (int h = 0; h < N_HEADS_OUT && st == BP_OK; h++) {
        const bp_port *pt = &m->ports[m->head_port[h]];
        t->width[h] = pt->spec.shape[1];
        st = bp_tensor_new(be, BP_DTYPE_F32, pt->spec.ndim, pt->spec.shape, &t->d_outs[m->head_port[h]], err);
        t->logits[h] = malloc((size_t)(B * t->width[h]) * sizeof(float));
        t->grads[h] = malloc((size_t)(B * t->width[h]) * sizeof(float));
        if (!t->logits[h] || !t->grads[h]) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    if (st != BP_OK) return st;
    t->y_class = calloc((size_t)(B * t->width[0]), sizeof *t->y_class);
    for (int k = 0; k < 3; k++) t->y_idx[k] = malloc((size_t)B * sizeof(int32_t));
    if (!t->y_class || !t->y_idx[0] || !t->y_idx[1] || !t->y_idx[2])
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < B; b++) {
        t->y_class[b * t->width[0] + (int64_t)(splitmix64(&seed) % (uint64_t)t->width[0])] = 1.0f;
        if (b % 2) t->y_class[b * t->width[0] + (int64_t)(splitmix64(&seed) % (uint64_t)t->width[0])] = 1.0f;
        for (int k = 0; k < 3; k++) t->y_idx[k][b] = (int32_t)(splitmix64(&seed) % (uint64_t)t->width[k + 1]);
    }
    return BP_OK;
}

/* The loss on the host logits and its gradient (the trainer's formulas). */
static double loss_and_grads(trainer *t) {
    const int64_t B = t->m->batch, C = t->width[0];
    double bce = 0.0;
    for (int64_t i = 0; i < B * C; i++) {
        double z = t->logits[0][i], y = t->y_class[i];
        bce += fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
        t->grads[0][i] = (float)(W_CLASS * (1.0 / (1.0 + exp(-z)) - y) / (double)(B * C));
    }
    double total = W_CLASS * bce / (double)(B * C);
    for (int k = 0; k < 3; k++) {
        const int h = k + 1;
        const int64_t W = t->width[h];
        const double w = k == 0 ? W_DIST : W_DIR;
        double ce = 0.0;
        for (int64_t b = 0; b < B; b++) {
            const float *z = t->logits[h] + b * W;
            float *g = t->grads[h] + b * W;
            double mx = z[0], s = 0.0;
            for (int64_t j = 1; j < W; j++) mx = fmax(mx, z[j]);
            for (int64_t j = 0; j < W; j++) s += exp(z[j] - mx);
            ce += mx + log(s) - z[t->y_idx[k][b]];
            for (int64_t j = 0; j < W; j++)
                g[j] = (float)(w * (exp(z[j] - mx) / s - (j == t->y_idx[k][b] ? 1.0 : 0.0)) / (double)B);
        }
        total += w * ce / (double)B;
    }
    return total;
}

/* One optimizer step of the benchmark: zero_grad, training forward, loss,
 * backward, AdamW on every trainable parameter. */
static bp_status train_step(trainer *t, bp_backend *be, const bp_train_step *ts, double *loss, bp_error *err) {
    model *m = t->m;
    bp_status st = m->tr->zero_grad(m->st, err);
    bp_tensor *outs[BP_MAX_OUTPUTS] = {NULL};
    for (int h = 0; h < N_HEADS_OUT; h++) outs[m->head_port[h]] = m->outs[m->head_port[h]];
    if (st == BP_OK) st = m->tr->forward(m->st, m->input, ts, outs, m->n_ports, err);
    for (int h = 0; h < N_HEADS_OUT && st == BP_OK; h++)
        st = bp_tensor_read(outs[m->head_port[h]], t->logits[h], (size_t)(m->batch * t->width[h]) * sizeof(float),
                            err);
    if (st != BP_OK) return st;
    double l = loss_and_grads(t);
    if (loss) *loss = l;
    const bp_tensor *d_outs[BP_MAX_OUTPUTS] = {NULL};
    for (int h = 0; h < N_HEADS_OUT && st == BP_OK; h++) {
        bp_tensor *d = t->d_outs[m->head_port[h]];
        st = bp_tensor_write(d, t->grads[h], (size_t)(m->batch * t->width[h]) * sizeof(float), err);
        d_outs[m->head_port[h]] = d;
    }
    if (st == BP_OK) st = m->tr->backward(m->st, d_outs, m->n_ports, NULL, err);
    t->adam_step++;
    for (uint32_t i = 0; i < t->n_params && st == BP_OK; i++) {
        const bp_train_param *p = &t->params[i];
        if (!p->trainable) continue;
        bp_adamw_desc d;
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        d.param = p->value;
        d.grad = p->grad;
        d.m = t->adam_m[i];
        d.v = t->adam_v[i];
        d.lr = TR_LR;
        d.beta1 = TR_BETA1;
        d.beta2 = TR_BETA2;
        d.eps = TR_EPS;
        d.weight_decay = p->decay ? TR_WD : 0.0f;
        d.grad_scale = 1.0f;
        d.step = t->adam_step;
        st = bp_op_adamw(be, &d, err);
    }
    if (st == BP_OK) st = bp_backend_sync(be, err);
    return st;
}

static bp_train_step bench_step(int64_t i, int augment) {
    bp_train_step ts;
    memset(&ts, 0, sizeof ts);
    ts.struct_size = sizeof ts;
    uint64_t s = 0x5eedULL + (uint64_t)i;
    ts.seed = splitmix64(&s);
    if (augment) {
        ts.mask_t_prob = 0.25f;
        ts.mask_f_prob = 0.25f;
        ts.specaug_freq = 48;
        ts.specaug_time = 192;
        ts.drop_path = 0.1f;
    }
    return ts;
}

/* ------------------------------------------------------------- timing -- */

typedef struct run_ctx {
    bp_registry *reg;
    bp_backend *be;
    int profile; /* --profile */
    prof *pf;    /* the profiler of the current backend, with --profile */
    int threads;
    int warmup, iters; /* < 0: the measurement's default */
    const char *weights, *weights_mini;
} run_ctx;

static void report(const run_ctx *rc, const char *what, int64_t batch, double *times, int n, double gflop) {
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    double med = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    printf("sast impl=%s threads=%d what=%s batch=%lld iters=%d median_ms=%.2f best_ms=%.2f gflop=%.3f gflops=%.2f\n",
           strcmp(g_precision, "bf16") == 0 && strncmp(what, "fwd", 3) == 0 ? "c_bf16" : "c", rc->threads, what,
           (long long)batch, n, 1e3 * med, 1e3 * times[0], gflop, gflop / med);
    fflush(stdout);
}

static bp_status time_forward(const run_ctx *rc, model *m, const char *what, int64_t batch, int warmup, int iters,
                              bp_error *err) {
    bp_status st = model_set_batch(m, rc->be, batch, 42, err);
    double *times = malloc((size_t)iters * sizeof *times);
    if (st == BP_OK && !times) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < warmup && st == BP_OK; i++) st = m->st->process(m->st, m->input, m->outs, m->n_ports, err);
    if (rc->pf) prof_reset(rc->pf);
    double w0 = now_s();
    for (int i = 0; i < iters && st == BP_OK; i++) {
        double t0 = now_s();
        st = m->st->process(m->st, m->input, m->outs, m->n_ports, err);
        if (st == BP_OK) st = bp_backend_sync(rc->be, err);
        times[i] = now_s() - t0;
    }
    double wall = now_s() - w0;
    if (st == BP_OK) {
        report(rc, what, batch, times, iters, 1e-9 * flop_forward(&m->cfg, batch, 515));
        if (rc->pf) prof_print(rc->pf, what, rc->threads, iters, 1e3 * wall / iters);
    }
    free(times);
    return st;
}

static bp_status time_train(const run_ctx *rc, int warmup, int iters, bp_error *err) {
    model m;
    trainer t;
    memset(&t, 0, sizeof t);
    double *times = malloc((size_t)iters * sizeof *times);
    bp_status st = model_create(&m, rc->reg, rc->be, &cfg_mini, rc->weights_mini, err);
    if (st == BP_OK) st = model_set_batch(&m, rc->be, TR_BATCH, 43, err);
    if (st == BP_OK) st = trainer_init(&t, &m, rc->be, err);
    if (st == BP_OK) st = m.tr->set_training(m.st, 1, err);
    if (st == BP_OK && !times) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    int64_t k = 0;
    for (int i = 0; i < warmup && st == BP_OK; i++, k++) {
        bp_train_step ts = bench_step(k, 1);
        st = train_step(&t, rc->be, &ts, NULL, err);
    }
    if (rc->pf) prof_reset(rc->pf);
    double w0 = now_s();
    for (int i = 0; i < iters && st == BP_OK; i++, k++) {
        bp_train_step ts = bench_step(k, 1);
        double t0 = now_s();
        st = train_step(&t, rc->be, &ts, NULL, err);
        times[i] = now_s() - t0;
    }
    double wall = now_s() - w0;
    if (st == BP_OK) {
        report(rc, "train", TR_BATCH, times, iters, 1e-9 * flop_train(&cfg_mini, TR_BATCH, 3 + 48 * 6));
        if (rc->pf) prof_print(rc->pf, "train", rc->threads, iters, 1e3 * wall / iters);
    }
    free(times);
    trainer_free(&t);
    model_free(&m);
    return st;
}

/* -------------------------------------------------------------- check -- */

/* Copy a backend tensor to a host tensor and add it to the writer (the
 * host copies stay alive in `keep` until the file is written). */
typedef struct keep_list {
    bp_tensor **t;
    int n, cap;
} keep_list;

static bp_status add_copy(bp_st_writer *w, keep_list *kl, const char *name, const bp_tensor *src, bp_error *err) {
    if (kl->n == kl->cap) {
        int cap = kl->cap ? 2 * kl->cap : 64;
        bp_tensor **p = realloc(kl->t, (size_t)cap * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        kl->t = p;
        kl->cap = cap;
    }
    bp_tensor *h = NULL;
    bp_status st = bp_tensor_new(NULL, src->dtype, src->ndim, src->shape, &h, err);
    if (st != BP_OK) return st;
    kl->t[kl->n++] = h;
    st = bp_tensor_read(src, h->data, bp_tensor_nbytes(h), err);
    if (st == BP_OK) st = bp_st_writer_add(w, name, h, err);
    return st;
}

static bp_status add_host(bp_st_writer *w, keep_list *kl, const char *name, int32_t dtype, int32_t ndim,
                          const int64_t *shape, const void *data, bp_error *err) {
    bp_tensor v = bp_tensor_view(dtype, ndim, shape, (void *)data);
    return add_copy(w, kl, name, &v, err);
}

static bp_status run_check(const run_ctx *rc, const char *out_path, bp_error *err) {
    bp_st_writer *w = NULL;
    keep_list kl = {NULL, 0, 0};
    model full, mini;
    trainer t;
    memset(&full, 0, sizeof full);
    memset(&mini, 0, sizeof mini);
    memset(&t, 0, sizeof t);
    bp_status st = bp_st_writer_new(&w, err);
    /* full size, evaluation forward, batch 2 */
    if (st == BP_OK) st = model_create(&full, rc->reg, rc->be, &cfg_full, rc->weights, err);
    if (st == BP_OK) st = model_set_batch(&full, rc->be, 2, 42, err);
    if (st == BP_OK) st = full.st->process(full.st, full.input, full.outs, full.n_ports, err);
    if (st == BP_OK) st = add_copy(w, &kl, "fwd.input", full.input, err);
    for (uint32_t i = 0; i < full.n_ports && st == BP_OK; i++) {
        char name[96];
        snprintf(name, sizeof name, "fwd.%s", full.ports[i].name);
        st = add_copy(w, &kl, name, full.outs[i], err);
    }
    model_free(&full);
    /* mini, one training step without augmentation, batch 8 */
    double loss = 0.0;
    if (st == BP_OK) st = model_create(&mini, rc->reg, rc->be, &cfg_mini, rc->weights_mini, err);
    if (st == BP_OK) st = model_set_batch(&mini, rc->be, TR_BATCH, 43, err);
    if (st == BP_OK) st = trainer_init(&t, &mini, rc->be, err);
    if (st == BP_OK) st = mini.tr->set_training(mini.st, 1, err);
    if (st == BP_OK) {
        bp_train_step ts = bench_step(0, 0);
        st = train_step(&t, rc->be, &ts, &loss, err); /* AdamW step 1 included */
    }
    if (st == BP_OK) st = add_copy(w, &kl, "train.input", mini.input, err);
    const int64_t s_b[1] = {TR_BATCH}, s_one[1] = {1}, s_cls[2] = {TR_BATCH, cfg_mini.n_classes};
    static const char *const idx_names[3] = {"train.target_distance", "train.target_azimuth",
                                             "train.target_elevation"};
    if (st == BP_OK) st = add_host(w, &kl, "train.target_class", BP_DTYPE_F32, 2, s_cls, t.y_class, err);
    for (int k = 0; k < 3 && st == BP_OK; k++)
        st = add_host(w, &kl, idx_names[k], BP_DTYPE_I32, 1, s_b, t.y_idx[k], err);
    float lf = (float)loss;
    if (st == BP_OK) st = add_host(w, &kl, "train.loss", BP_DTYPE_F32, 1, s_one, &lf, err);
    for (int h = 0; h < N_HEADS_OUT && st == BP_OK; h++) {
        char name[96];
        const int64_t s_l[2] = {TR_BATCH, t.width[h]};
        snprintf(name, sizeof name, "train.%s", head_ports[h]);
        st = add_host(w, &kl, name, BP_DTYPE_F32, 2, s_l, t.logits[h], err);
    }
    for (uint32_t i = 0; i < t.n_params && st == BP_OK; i++) {
        const bp_train_param *p = &t.params[i];
        char name[300];
        if (p->grad) {
            snprintf(name, sizeof name, "grad.%s", p->name);
            st = add_copy(w, &kl, name, p->grad, err);
        }
        snprintf(name, sizeof name, "after.%s", p->name);
        if (st == BP_OK) st = add_copy(w, &kl, name, p->value, err);
    }
    char meta[256];
    snprintf(meta, sizeof meta, "%.9g %.9g %.9g %.9g %.9g", (double)TR_LR, (double)TR_BETA1, (double)TR_BETA2,
             (double)TR_EPS, (double)TR_WD);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "adamw lr beta1 beta2 eps weight_decay", meta, err);
    if (st == BP_OK) st = bp_st_writer_write(w, out_path, err);
    if (st == BP_OK)
        printf("bench_spatial_ast: wrote %s (full forward batch 2; mini training step batch 8, loss %.6f)\n",
               out_path, loss);
    trainer_free(&t);
    model_free(&mini);
    bp_st_writer_free(w);
    for (int i = 0; i < kl.n; i++) bp_tensor_free(kl.t[i]);
    free(kl.t);
    return st;
}

/* --------------------------------------------------------------- main -- */

static bp_status run_threads(run_ctx *rc, const char *what_list, const char *check_out, bp_error *err) {
    char kv[32];
    snprintf(kv, sizeof kv, "threads=%d", rc->threads);
    const char *kvs[1] = {kv};
    const bp_component_info *c = bp_registry_find(rc->reg, BP_KIND_BACKEND, "cpu");
    if (!c) return bp_error_set(err, BP_ERR_NOT_FOUND, "no usable backend 'cpu' (build bp_plugin_cpu)");
    bp_registry_set_threads(rc->reg, rc->threads);
    bp_paramset *ps = NULL;
    bp_backend *inner = NULL, *wrapped = NULL;
    prof *pf = NULL;
    bp_status st = bp_paramset_from_strings(c->desc, kvs, 1, &ps, err);
    if (st == BP_OK) st = bp_registry_create_backend(rc->reg, "cpu", bp_paramset_params(ps), &inner, err);
    rc->be = inner;
    if (st == BP_OK && rc->profile) {
        pf = calloc(1, sizeof *pf);
        if (!pf) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (st == BP_OK) st = prof_wrap(pf, bp_backend_impl_of(inner), &wrapped, err);
        rc->be = wrapped;
    }
    rc->pf = pf;
    if (st == BP_OK) {
        fprintf(stderr, "bench_spatial_ast: backend %s — %s\n", bp_backend_name(rc->be), bp_backend_device(rc->be));
        if (check_out) {
            st = run_check(rc, check_out, err);
        } else {
            int want1 = strstr(what_list, "fwd1") != NULL, want8 = strstr(what_list, "fwd8") != NULL;
            if (want1 || want8) {
                model m;
                st = model_create(&m, rc->reg, rc->be, &cfg_full, rc->weights, err);
                if (st == BP_OK && want1)
                    st = time_forward(rc, &m, "fwd1", 1, rc->warmup >= 0 ? rc->warmup : 2,
                                      rc->iters > 0 ? rc->iters : 5, err);
                if (st == BP_OK && want8)
                    st = time_forward(rc, &m, "fwd8", 8, rc->warmup >= 0 ? rc->warmup : 1,
                                      rc->iters > 0 ? rc->iters : 3, err);
                model_free(&m);
            }
            if (st == BP_OK && strstr(what_list, "train"))
                st = time_train(rc, rc->warmup >= 0 ? rc->warmup : 3, rc->iters > 0 ? rc->iters : 10, err);
        }
    }
    rc->pf = NULL;
    bp_backend_free(wrapped);
    bp_backend_free(inner);
    free(pf);
    bp_paramset_free(ps);
    return st;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [-t 1,2] [-m fwd1,fwd8,train] [-w WARMUP] [-n ITERS] [--weights FULL.safetensors]\n"
            "       [--weights-mini MINI.safetensors] [--check OUT.safetensors] [--profile] [--precision f32|bf16]\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *threads_arg = "1,2", *what = "fwd1,fwd8,train", *check_out = NULL;
    run_ctx rc;
    memset(&rc, 0, sizeof rc);
    rc.warmup = -1;
    rc.iters = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) threads_arg = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) what = argv[++i];
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) rc.warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) rc.iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc) rc.weights = argv[++i];
        else if (strcmp(argv[i], "--weights-mini") == 0 && i + 1 < argc) rc.weights_mini = argv[++i];
        else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) check_out = argv[++i];
        else if (strcmp(argv[i], "--profile") == 0) rc.profile = 1;
        else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) g_precision = argv[++i];
        else {
            usage(argv[0]);
            return 2;
        }
    }
    bp_error err = BP_ERROR_INIT;
    if (bp_registry_new(NULL, &rc.reg, &err) != BP_OK || bp_registry_scan_default(rc.reg, argv[0], &err) != BP_OK) {
        fprintf(stderr, "bench_spatial_ast: %s\n", err.msg);
        bp_registry_free(rc.reg);
        return 1;
    }
    int ret = 0;
    char *list = strdup(threads_arg), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && ret == 0; tok = strtok_r(NULL, ",", &save)) {
        rc.threads = atoi(tok);
        if (rc.threads < 1) {
            usage(argv[0]);
            ret = 2;
            break;
        }
        if (run_threads(&rc, what, check_out, &err) != BP_OK) {
            fprintf(stderr, "bench_spatial_ast: %s\n", err.msg);
            ret = 1;
        }
        if (check_out) break; /* the check runs once, on the first thread count */
    }
    free(list);
    bp_registry_free(rc.reg);
    return ret;
}
