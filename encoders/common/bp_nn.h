/* bp_nn — the layer library shared by the encoder plugins (spatial_ast,
 * seldnet, audiomae): forward (eval and train) and hand-written backward of
 * every layer they need, over the core op interface (batpipe/ops.h).
 *
 * A static PIC library (`bp_nn`, hidden symbols) linked into each plugin.
 * Everything here follows the batpipe rules: no printing, no exit, no global
 * mutable state; every call returns a bp_status and fills the caller's
 * bp_error with a message naming the layer (its state-dict prefix) and the
 * problem.
 *
 * ------------------------------------------------------------------ tensors
 * All tensors live on one backend (`bp_nn_ctx.be`, the pipeline's
 * host->backend) and are dense row-major F32 unless stated. Layers compute
 * only through bp_op_* (ops.h). Two kinds of host access exist, each named
 * where it happens:
 *   - parameter initialisation, masks and id lists are made on the host and
 *     copied with bp_tensor_write (no pointer into backend memory is
 *     dereferenced);
 *   - views (bp_nn_view): a contiguous sub-block of a backend allocation is
 *     described by an interior pointer `(char *)data + offset·4`. This is
 *     pointer arithmetic on an opaque backend address, never a dereference.
 *     It assumes that a backend allocation is one flat address range and that
 *     ops accept interior pointers — true of the cpu backend (host memory) and
 *     of the cuda backend (cudaMalloc'd device memory). A backend for which
 *     this does not hold cannot run these layers.
 *
 * --------------------------------------------------------- memory: arenas
 * A bp_nn_arena hands out backend tensors in call order and keeps them from
 * one use to the next: after bp_nn_arena_reset the same sequence of requests
 * gets the same memory back (reallocated only when a request is larger than
 * what its slot held), so a training step allocates nothing after the first.
 * Forward in training mode keeps in the arena what backward needs; the
 * layers remember pointers to those tensors (valid until the next reset).
 * Temporaries are released with mark/rewind: eval forward rewinds after each
 * layer, so evaluation needs one layer's worth of scratch; backward rewinds
 * after each layer to a mark taken after the forward, so the activations the
 * forward kept are never overwritten.
 *
 * ----------------------------------------------------- parameters: registry
 * A bp_nn_params owns every parameter and buffer of a model under its
 * official state-dict name ("blocks.3.attn.qkv.weight"), with its gradient
 * (trainable ones), weight-decay flag and layer id (trainable.h). Layers
 * register their tensors in `init` and keep borrowed pointers to them (the
 * tensors never move). bp_nn_params_load reads a safetensors file strictly
 * (every name present with the right shape; unexpected names reported).
 *
 * ---------------------------------------------------------- layer contract
 * Every layer L has
 *   bp_nn_L_init(layer, params, "prefix", sizes..., layer_id, err)
 *       registers "prefix.weight" etc. in `params`; no memory of its own.
 *   bp_nn_L_forward(layer, ctx, x, y, err)
 *       y = L(x); y is supplied by the caller (any backend tensor of the
 *       documented shape, e.g. from the arena or a view) and must not alias x
 *       unless stated. With ctx->keep, the layer records what backward needs;
 *       x must then stay valid and unchanged until backward.
 *   bp_nn_L_backward(layer, ctx, dy, dx, err)
 *       given dL/dy of the last kept forward: adds dL/dparam into every
 *       parameter's grad (accumulates, like PyTorch's .grad; zero them with
 *       bp_nn_params_zero_grad), and writes dL/dx into dx (overwrites; dx may
 *       be NULL when not needed). dy is not modified.
 * Batch dimensions: a layer that works per row (linear, layernorm, mlp)
 * accepts any leading dims; attention and blocks take [B, N, D]; conv and
 * batchnorm take NCHW.
 *
 * ------------------------------------------------------------- randomness
 * Every random choice (initialisation, drop path, token masking, SpecAugment)
 * comes from a counter-based generator: bp_nn_rng_u64(seed, purpose, index)
 * is splitmix64 applied to (seed, purpose, index), so a value depends only on
 * those three numbers — not on call order, thread count or batch split.
 * `purpose` separates streams (bp_nn_rng_purpose("drop_path.3")).
 *
 * Conventions pinned to the official PyTorch code (golden/README.md §2–§3):
 * linear y = x·Wᵀ + b, W [out, in]; LayerNorm biased variance (eps per layer,
 * 1e-6 in the ViTs); exact erf GELU; attention qkv fused as [q | k | v] with
 * head j in columns j·dh … j·dh+dh−1 of each, scale 1/√dh, softmax over all
 * keys; BatchNorm running stats: r ← (1−m)·r + m·batch with the unbiased
 * batch variance (m = momentum 0.1), normalisation with the biased one. */
#ifndef BP_NN_H
#define BP_NN_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/ops.h"
#include "batpipe/params.h"
#include "batpipe/tensor.h"
#include "batpipe/trainable.h"

/* ================================================================ views == */

/* A view of `ndim`/`shape` starting `offset` elements into t's data (t's
 * dtype, contiguous). The caller guarantees offset + numel(shape) <= numel(t).
 * The view does not own its data (owns_data = 0); keep it on the stack. */
bp_tensor bp_nn_view(const bp_tensor *t, int64_t offset, int32_t ndim, const int64_t *shape);
/* The same data under another shape of the same element count. */
bp_tensor bp_nn_reshape(const bp_tensor *t, int32_t ndim, const int64_t *shape);

/* y = x (same element count; an exact copy through bp_op_affine(1, 0)). */
bp_status bp_nn_copy(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err);
/* acc += x (x has acc's shape, or broadcasts to it by the binary rule). */
bp_status bp_nn_add_into(bp_backend *be, const bp_tensor *x, bp_tensor *acc, bp_error *err);

/* =============================================================== arena == */

typedef struct bp_nn_arena bp_nn_arena;

/* An empty arena on `be` (allocates nothing yet). */
bp_status bp_nn_arena_new(bp_backend *be, bp_nn_arena **out, bp_error *err);
/* Frees every tensor it handed out. NULL is allowed. */
void bp_nn_arena_free(bp_nn_arena *a);
/* The next tensor of the request sequence, shaped `shape` (dtype F32, I32 or
 * any fixed-size type). Contents are undefined (whatever the slot held). The
 * returned pointer stays valid until the arena is freed; its shape and data
 * belong to this use until a rewind/reset below it. */
bp_status bp_nn_arena_get(bp_nn_arena *a, int32_t dtype, int32_t ndim, const int64_t *shape, bp_tensor **out,
                          bp_error *err);
/* Same, F32 and zero-filled (bp_op_fill). */
bp_status bp_nn_arena_zeros(bp_nn_arena *a, int32_t ndim, const int64_t *shape, bp_tensor **out, bp_error *err);
/* The current position / go back to it (tensors handed out after `mark` are
 * reused by the next requests). */
size_t bp_nn_arena_mark(const bp_nn_arena *a);
void bp_nn_arena_rewind(bp_nn_arena *a, size_t mark);
/* Rewind to the start (begin of a forward). */
void bp_nn_arena_reset(bp_nn_arena *a);
/* Bytes held (for logs and tests). */
size_t bp_nn_arena_bytes(const bp_nn_arena *a);

/* ============================================================== context == */

typedef struct bp_nn_ctx {
    bp_backend *be;     /* every tensor lives here */
    bp_nn_arena *arena; /* activations (kept) and temporaries */
    int32_t training;   /* 1: BatchNorm uses/updates batch statistics (PyTorch .train()) */
    int32_t keep;       /* 1: layers record what backward needs (activations stay in the arena) */
    /* non-NULL (and keep 0): linear layers multiply in BF16 — input rounded to
     * BF16, the weight's cached BF16 copy from this registry, F32 accumulation,
     * bias and output (bp_nn_params_bf16_of). NULL: F32 throughout. */
    struct bp_nn_params *bf16;
} bp_nn_ctx;

/* ================================================================= rng == */

/* splitmix64 of (seed, purpose, index): a 64-bit value. */
uint64_t bp_nn_rng_u64(uint64_t seed, uint64_t purpose, uint64_t index);
/* Uniform in [0, 1) with 53 random bits. */
double bp_nn_rng_uniform(uint64_t seed, uint64_t purpose, uint64_t index);
/* Standard normal (Box–Muller on two uniforms of indices 2i, 2i+1). */
double bp_nn_rng_normal(uint64_t seed, uint64_t purpose, uint64_t index);
/* A stream id from a string (64-bit FNV-1a), e.g. the parameter name. */
uint64_t bp_nn_rng_purpose(const char *name);

/* ===================================================== parameter registry == */
/* Registered tensors start at zero (layer inits then set PyTorch's constant
 * defaults: LayerNorm/BatchNorm weight 1, running_var 1); random weights are
 * the model's business (bp_nn_init_*). */

enum {
    BP_NN_TRAINABLE = 1, /* has a grad tensor; updated by the optimiser */
    BP_NN_DECAY = 2,     /* weight decay applies */
    BP_NN_OPTIONAL = 4   /* loading: may be absent from the file (keeps its initial value) */
};

typedef struct bp_nn_param {
    char *name;        /* official state-dict name (owned) */
    bp_tensor *value;  /* owned; on the registry's backend */
    bp_tensor *grad;   /* owned; NULL unless BP_NN_TRAINABLE */
    int32_t flags;     /* BP_NN_* */
    int32_t layer_id;  /* trainable.h: 0 = input embedding, 1..depth = blocks, depth+1 = the rest */
    bp_tensor *bf16;   /* owned; BF16 copy of value for BF16 inference, NULL until asked for */
} bp_nn_param;

typedef struct bp_nn_params {
    bp_backend *be;
    bp_nn_param *items; /* [count], registration order (= the state-dict order) */
    uint32_t count, cap;
} bp_nn_params;

void bp_nn_params_init(bp_nn_params *ps, bp_backend *be);
void bp_nn_params_free(bp_nn_params *ps);
/* Register a zero-filled tensor; *value (may be NULL) gets its pointer. A
 * duplicate name is BP_ERR_INTERNAL. */
bp_status bp_nn_params_add(bp_nn_params *ps, const char *name, int32_t dtype, int32_t ndim, const int64_t *shape,
                           int32_t flags, int32_t layer_id, bp_tensor **value, bp_error *err);
/* By name; NULL when absent. */
bp_nn_param *bp_nn_params_find(const bp_nn_params *ps, const char *name);
/* The BF16 copy of a registered F32 value, made on first use and kept until
 * bp_nn_params_drop_bf16 (call it whenever values may have changed: load,
 * training mode, optimizer access). BP_ERR_INTERNAL for an unknown value. */
bp_status bp_nn_params_bf16_of(bp_nn_params *ps, const bp_tensor *value, const bp_tensor **bf16, bp_error *err);
void bp_nn_params_drop_bf16(bp_nn_params *ps);
/* The grad tensor of a registered value (NULL when frozen or unknown). */
bp_tensor *bp_nn_params_grad_of(const bp_nn_params *ps, const bp_tensor *value);
/* grad = 0 for every trainable parameter. */
bp_status bp_nn_params_zero_grad(bp_nn_params *ps, bp_error *err);
/* Total elements of the trainable parameters (for logs). */
int64_t bp_nn_params_trainable_numel(const bp_nn_params *ps);
/* Parameter rows every bp_nn encoder declares (in its bp_param_spec table):
 * the heads' random-init std and the inference precision. */
#define BP_NN_PARAM_HEAD_INIT_STD                                                            \
    {sizeof(bp_param_spec), "head_init_std", BP_PARAM_FLOAT, "2e-5", 0.0, 1.0, NULL,            \
     "std of the heads' random initial weights (official: 2e-5; from scratch, 0.02 learns faster)"}
#define BP_NN_PARAM_PRECISION                                                                      \
    {sizeof(bp_param_spec), "precision", BP_PARAM_STRING, "\"f32\"", BP_NO_RANGE, "f32|bf16",            \
     "inference matmuls of the linear layers: f32, or bf16 (inputs and weights rounded to BF16, F32 "  \
     "accumulation; training stays F32)"}
/* 1 when the stage's `precision` parameter (BP_NN_PARAM_PRECISION) is "bf16". */
int bp_nn_precision_bf16(const bp_params *params);
/* The trainable extension's param_at for a model built on bp_nn: parameter
 * `index` in registration order with its flags and layer id; `who` names
 * the plugin in the error for an index out of range (nn_trainable.c). */
bp_status bp_nn_params_describe(bp_nn_params *ps, uint32_t index, const char *who, bp_train_param *out,
                                bp_error *err);
/* Checks a training forward's step: its struct size, 0 <= mask
 * probabilities < 1, SpecAugment widths >= 0, drop_path < 1. */
bp_status bp_nn_train_step_check(const bp_train_step *step, const char *who, bp_error *err);

/* Names the loader accepts in a file without a registered tensor: `name`
 * with exactly `shape` (ndim < 0: any shape, ignored unchecked); a name
 * ending in '*' accepts every tensor name starting with what precedes the
 * '*' (any shape). E.g. the frozen front-end tensors of the official
 * Spatial-AST state dict. */
typedef struct bp_nn_extra_name {
    const char *name;
    int32_t ndim;
    int64_t shape[4];
} bp_nn_extra_name;

/* Load every registered tensor from a safetensors file by name, strictly:
 * each must be present (unless BP_NN_OPTIONAL) with the registered shape and
 * dtype F32 (F16/BF16/F64 are converted; I64 tensors must be I64). Names in
 * the file that are neither registered nor listed in `extra` are errors too.
 * All problems are collected into one message naming each tensor
 * ("missing: a, b; wrong shape: c F32[3] (expected F32[4]); unexpected: d"),
 * prefixed by `who` and the path. Nothing is changed when any problem is
 * found. */
bp_status bp_nn_params_load(bp_nn_params *ps, const char *path, const bp_nn_extra_name *extra, uint32_t n_extra,
                            const char *who, bp_error *err);

/* ================================================================ init == */

/* Host-generated random values written with bp_tensor_write. Index i of the
 * stream (seed, purpose) gives element i, so a tensor's values depend only on
 * the seed and its purpose (use bp_nn_rng_purpose(name)). */
/* N(0, std²) truncated to [lo, hi] (absolute bounds, like timm's
 * trunc_normal_(std, a=-2, b=2)) by redrawing. */
bp_status bp_nn_init_trunc_normal(bp_tensor *t, uint64_t seed, uint64_t purpose, double std, double lo, double hi,
                                  bp_error *err);
bp_status bp_nn_init_normal(bp_tensor *t, uint64_t seed, uint64_t purpose, double std, bp_error *err);
/* U(−bound, bound). xavier_uniform of W [out, in·k…]: bound = √(6/(fan_in + fan_out));
 * PyTorch's default Conv/Linear init (kaiming_uniform a=√5): bound = 1/√fan_in. */
bp_status bp_nn_init_uniform(bp_tensor *t, uint64_t seed, uint64_t purpose, double bound, bp_error *err);
/* Every element = v (F32 via bp_op_fill; I64 scalars via a host write). */
bp_status bp_nn_init_const(bp_backend *be, bp_tensor *t, double v, bp_error *err);

/* ============================================================== linear == */

/* y = x·Wᵀ + b; W [out, in] ("prefix.weight"), b [out] ("prefix.bias").
 * x [..., in] → y [..., out]. */
typedef struct bp_nn_linear {
    bp_tensor *w, *b;   /* borrowed from the registry; b NULL without bias */
    bp_tensor *dw, *db; /* grads (NULL when frozen) */
    int64_t in, out;
    const bp_tensor *x; /* kept input (private) */
} bp_nn_linear;

/* flags: BP_NN_TRAINABLE | BP_NN_DECAY apply to the weight; the bias is
 * registered trainable (when the weight is) without decay. */
bp_status bp_nn_linear_init(bp_nn_linear *l, bp_nn_params *ps, const char *prefix, int64_t in, int64_t out,
                            int bias, int32_t flags, int32_t layer_id, bp_error *err);
bp_status bp_nn_linear_forward(bp_nn_linear *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                               bp_error *err);
bp_status bp_nn_linear_backward(bp_nn_linear *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                bp_error *err);

/* =========================================================== layernorm == */

/* Over the last dim D: y = (x − mean)/√(var + eps)·w + b, biased variance.
 * "prefix.weight", "prefix.bias" [D], no decay; init sets w = 1, b = 0. */
typedef struct bp_nn_layernorm {
    bp_tensor *w, *b, *dw, *db;
    int64_t dim;
    float eps;
    const bp_tensor *x; /* kept input (private) */
} bp_nn_layernorm;

bp_status bp_nn_layernorm_init(bp_nn_layernorm *l, bp_nn_params *ps, const char *prefix, int64_t dim, float eps,
                               int32_t flags, int32_t layer_id, bp_error *err);
bp_status bp_nn_layernorm_forward(bp_nn_layernorm *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err);
bp_status bp_nn_layernorm_backward(bp_nn_layernorm *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err);

/* ================================================================= mlp == */

/* y = fc2(GELU_erf(fc1(x))): "prefix.fc1.*" [hidden, dim], "prefix.fc2.*"
 * [dim, hidden]. x [..., dim] → y [..., dim]. */
typedef struct bp_nn_mlp {
    bp_nn_linear fc1, fc2;
    int64_t dim, hidden;
    bp_tensor *h, *g; /* kept pre-/post-GELU activations (private) */
} bp_nn_mlp;

bp_status bp_nn_mlp_init(bp_nn_mlp *m, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t hidden,
                         int32_t flags, int32_t layer_id, bp_error *err);
bp_status bp_nn_mlp_forward(bp_nn_mlp *m, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_nn_mlp_backward(bp_nn_mlp *m, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx, bp_error *err);

/* =========================================================== attention == */

/* Multi-head self-attention, timm layout: "prefix.qkv.*" [3·dim, dim] (with
 * bias), "prefix.proj.*" [dim, dim]. x [B, N, dim] → y [B, N, dim].
 * qkv columns are [q | k | v]; head j uses columns j·dh … j·dh+dh−1 of each
 * (dh = dim/heads); y = proj(concat_j softmax(q_j·k_jᵀ/√dh)·v_j), no mask. */
typedef struct bp_nn_attention {
    bp_nn_linear qkv, proj;
    int64_t dim, heads;
    /* kept (private): */
    bp_tensor *qkvh;  /* [3·heads, B, N, dh]: q, k, v per head */
    bp_tensor *probs; /* [heads·B, N, N] softmax output */
    bp_tensor *ctxv;  /* [B, N, dim] proj input */
} bp_nn_attention;

bp_status bp_nn_attention_init(bp_nn_attention *a, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t heads,
                               int qkv_bias, int32_t flags, int32_t layer_id, bp_error *err);
bp_status bp_nn_attention_forward(bp_nn_attention *a, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err);
bp_status bp_nn_attention_backward(bp_nn_attention *a, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err);

/* =============================================================== block == */

/* Pre-LN transformer block (timm Block):
 *   x1 = x  + dp_a ⊙ attn(norm1(x))
 *   y  = x1 + dp_m ⊙ mlp(norm2(x1))
 * "prefix.norm1.*", "prefix.attn.*", "prefix.norm2.*", "prefix.mlp.*".
 * dp_a, dp_m are per-sample drop-path scales (0 = branch dropped, 1/(1−p)
 * kept; timm DropPath); without drop path both are 1. x [B, N, dim] → y; y
 * must not alias x. */
typedef struct bp_nn_block {
    bp_nn_layernorm norm1, norm2;
    bp_nn_attention attn;
    bp_nn_mlp mlp;
    int64_t dim;
    /* kept (private): */
    const bp_tensor *x;
    bp_tensor *x1;
    float *dp;         /* host [2·B]: attention scales, then MLP scales; grow-only */
    int64_t dp_cap;
    int32_t has_dp;
} bp_nn_block;

/* qkv with bias (timm qkv_bias=True); flags apply to every tensor (decay to
 * matrices only). */
bp_status bp_nn_block_init(bp_nn_block *b, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t heads,
                           int64_t mlp_hidden, float eps, int32_t flags, int32_t layer_id, bp_error *err);
void bp_nn_block_free(bp_nn_block *b); /* the host drop-path buffer */
/* drop_path: NULL = none; else host [2·B] scales as above (copied). */
bp_status bp_nn_block_forward(bp_nn_block *b, const bp_nn_ctx *c, const bp_tensor *x, const float *drop_path,
                              bp_tensor *y, bp_error *err);
bp_status bp_nn_block_backward(bp_nn_block *b, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                               bp_error *err);
/* timm DropPath scales for a batch: scale[i] = floor(1 − rate + u_i)/(1 − rate)
 * with u_i = bp_nn_rng_uniform(seed, purpose, i), i < n. rate 0 → all 1. */
void bp_nn_drop_path_scales(uint64_t seed, uint64_t purpose, float rate, int64_t n, float *scale);

/* ============================================================== conv2d == */

/* Cross-correlation, NCHW: "prefix.weight" [out, in, kh, kw] (decay),
 * "prefix.bias" [out] (optional, no decay). */
typedef struct bp_nn_conv2d {
    bp_tensor *w, *b, *dw, *db;
    int64_t in, out, kh, kw;
    int32_t stride_h, stride_w, pad_h, pad_w;
    const bp_tensor *x; /* kept input (private) */
} bp_nn_conv2d;

bp_status bp_nn_conv2d_init(bp_nn_conv2d *l, bp_nn_params *ps, const char *prefix, int64_t in, int64_t out,
                            int64_t kh, int64_t kw, int32_t stride, int32_t pad, int bias, int32_t flags,
                            int32_t layer_id, bp_error *err);
/* Output size along one axis. */
int64_t bp_nn_conv2d_out_size(int64_t in, int64_t k, int32_t stride, int32_t pad);
bp_status bp_nn_conv2d_forward(bp_nn_conv2d *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_nn_conv2d_backward(bp_nn_conv2d *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                bp_error *err);

/* ========================================================= batchnorm2d == */

/* BatchNorm2d(C) over NCHW: "prefix.weight", "prefix.bias" [C] (trainable,
 * no decay), buffers "prefix.running_mean", "prefix.running_var" [C] and
 * "prefix.num_batches_tracked" (I64 scalar).
 * Eval (ctx->training = 0): y = (x − running_mean)/√(running_var + eps)·w + b.
 * Train: normalises with the batch mean and biased variance over (N, H, W),
 * then running ← (1 − momentum)·running + momentum·batch (unbiased variance
 * n/(n−1)·var, n = N·H·W), num_batches_tracked += 1 (optional when loading).
 * Init: w = 1, b = 0, running_mean = 0, running_var = 1. Backward is defined for
 * a training-mode forward only (through the batch statistics, PyTorch's
 * autograd); after an eval-mode forward it returns BP_ERR_UNSUPPORTED. */
typedef struct bp_nn_batchnorm2d {
    bp_tensor *w, *b, *dw, *db;
    bp_tensor *running_mean, *running_var, *num_batches_tracked;
    int64_t ch;
    float eps, momentum;
    /* kept (private): */
    const bp_tensor *x;
    bp_tensor *mean, *var; /* batch statistics */
    int32_t kept_training;
} bp_nn_batchnorm2d;

bp_status bp_nn_batchnorm2d_init(bp_nn_batchnorm2d *l, bp_nn_params *ps, const char *prefix, int64_t ch, float eps,
                                 float momentum, int32_t flags, int32_t layer_id, bp_error *err);
/* y may alias x in eval mode only. */
bp_status bp_nn_batchnorm2d_forward(bp_nn_batchnorm2d *l, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                    bp_error *err);
bp_status bp_nn_batchnorm2d_backward(bp_nn_batchnorm2d *l, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                     bp_error *err);

/* ============================================================ unary act == */

/* y = f(x) for an elementwise bp_unary_op (GELU, ReLU, …); backward
 * dx = dy·f'(x) needs the kept x. */
typedef struct bp_nn_act {
    int32_t op;         /* bp_unary_op */
    const bp_tensor *x; /* kept input (private) */
} bp_nn_act;

bp_status bp_nn_act_forward(bp_nn_act *a, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err);
bp_status bp_nn_act_backward(bp_nn_act *a, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx, bp_error *err);

/* ========================================================= patch embed == */

/* ViT patch embedding: Conv2d(in → dim, kernel k×k, stride s) on
 * x [B, in, H, W] → [B, dim, gh, gw] → tokens y [B, gh·gw, dim] with token
 * n = t·gw + f (t = row of the output grid, i.e. time for a [time, mel]
 * map: time-major). "prefix.proj.weight" [dim, in, k, k] (decay),
 * "prefix.proj.bias" [dim]. */
typedef struct bp_nn_patch_embed {
    bp_nn_conv2d proj;
    int64_t dim, gh, gw; /* gh, gw set by forward from the input size */
} bp_nn_patch_embed;

bp_status bp_nn_patch_embed_init(bp_nn_patch_embed *p, bp_nn_params *ps, const char *prefix, int64_t in,
                                 int64_t dim, int64_t kernel, int32_t stride, int32_t flags, int32_t layer_id,
                                 bp_error *err);
bp_status bp_nn_patch_embed_forward(bp_nn_patch_embed *p, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                    bp_error *err);
/* dx may be NULL (weights' grads only). */
bp_status bp_nn_patch_embed_backward(bp_nn_patch_embed *p, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                     bp_error *err);

/* ======================================================= sin-cos table == */

/* 1-D: row(p) = [sin(p·ω_0) … sin(p·ω_{h−1}), cos(p·ω_0) … cos(p·ω_{h−1})],
 * h = width/2, ω_k = 10000^(−k/h) (MAE get_1d_sincos_pos_embed_from_grid),
 * computed in double, written as float into out[width]. width even. */
void bp_nn_sincos_1d(int64_t width, double p, float *out);
/* The 2-D table of MAE/AudioMAE get_2d_sincos_pos_embed(_flexible) with a
 * CLS slot: out [(1 + gh·gw)·dim] host floats; row 0 = zeros; row
 * 1 + (i·gw + j), i < gh, j < gw, = [sincos_{dim/2}(j), sincos_{dim/2}(i)].
 * AudioMAE's table (the one Spatial-AST loads) is gh = 8, gw = 64, i.e.
 * row 1 + n = [sincos(n mod 64), sincos(n div 64)] for patch n (golden
 * README §2; note this is *not* the (t, f) of the time-major patch order).
 * dim must be a multiple of 4. */
void bp_nn_sincos_2d(int64_t dim, int64_t gh, int64_t gw, float *out);

/* ======================================================= token masking == */

/* AudioMAE 2-D masking of a [B, T·F, D] token grid (token n = t·F + f): each
 * sample keeps kt = int(T·(1 − p_t)) random time rows and kf = int(F·(1 − p_f))
 * random frequency columns (computed in double like Python's int(), i.e.
 * truncation), every other token is dropped. The random rows of sample b are
 * the kt smallest of u(seed, purpose, b·T + t) (ties by index), the columns
 * the kf smallest of u(seed, purpose + 1, b·F + f) — the official argsort of
 * torch.rand noise — then sorted ascending, so kept tokens stay in (t, f)
 * order (the official keeps them in random order; the blocks are
 * permutation-equivariant and only CLS outputs are read, so this changes no
 * result). */
int64_t bp_nn_mask2d_keep(int64_t n, double p);
/* ids [B·kt·kf] (host): the flat row b·T·F + t·F + f of each kept token, in
 * output order (sample-major). BP_ERR_NOMEM if its scratch cannot be had. */
bp_status bp_nn_mask2d_ids(uint64_t seed, uint64_t purpose, int64_t batch, int64_t T, int64_t F, double p_t,
                           double p_f, int32_t *ids, bp_error *err);

/* Row gather / scatter on [rows, D] tables (ids uploaded into an arena I32
 * tensor, kept by the caller for the backward):
 *   gather:  y[i] = table[ids[i]]                      (bp_op_get_rows)
 *   scatter: table[ids[i]] += src[i], repeated ids add (bp_op_add_rows) */
bp_status bp_nn_ids_upload(const bp_nn_ctx *c, const int32_t *ids, int64_t n, bp_tensor **out, bp_error *err);
bp_status bp_nn_gather_rows(const bp_nn_ctx *c, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                            bp_error *err);
bp_status bp_nn_scatter_add_rows(const bp_nn_ctx *c, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                                 bp_error *err);

/* ========================================================= SpecAugment == */

/* torchaudio FrequencyMasking(max_f) then TimeMasking(max_t) with
 * iid_masks = False on a [B, C, T, F] map (time rows, frequency columns):
 * one mask of each kind shared by the whole batch, fill 0. Each mask:
 * width = u1·max, start = (int64)(u2·(size − width)), masked [start,
 * start + (int64)width) — torchaudio's mask_along_axis. u1, u2 are indices
 * 0, 1 of purpose (frequency) and purpose + 1 (time). max 0 = no mask. */
typedef struct bp_nn_specaug {
    int64_t t0, t1, f0, f1; /* the masked rows [t0, t1) and columns [f0, f1) of the last forward */
    bp_tensor *mask;        /* kept [T, F] 1/0 (private) */
} bp_nn_specaug;

void bp_nn_specaug_sample(bp_nn_specaug *s, uint64_t seed, uint64_t purpose, int64_t T, int64_t F, int64_t max_t,
                          int64_t max_f);
/* y = x with the sampled rows/columns zeroed (y may alias x). */
bp_status bp_nn_specaug_forward(bp_nn_specaug *s, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                bp_error *err);
/* dx = dy with the same rows/columns zeroed (dx may alias dy). */
bp_status bp_nn_specaug_backward(bp_nn_specaug *s, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                 bp_error *err);

/* --- added for seldnet/audiomae --- */
/* Declared here, defined in nn_pool.c. */

/* ============================================================ max pool == */

/* nn.MaxPool2d((kh, kw)) over NCHW: kernel = stride, no padding, output
 * floor(H/kh) x floor(W/kw); ties pick the first element in row-major
 * order. With ctx->keep the argmax (I32, from the arena) and the shapes of
 * x and y are kept; backward routes dy to the argmax positions (dx
 * overwritten, zeros elsewhere; dx NULL: nothing to do). No parameters. */
typedef struct bp_nn_maxpool2d {
    int32_t kh, kw;
    /* kept (private): */
    bp_tensor x, y;    /* by value: only the shapes are read in backward */
    bp_tensor *argmax; /* [N, C, OH, OW] I32 */
} bp_nn_maxpool2d;

void bp_nn_maxpool2d_init(bp_nn_maxpool2d *p, int32_t kh, int32_t kw);
/* floor(in / k) (0 when k < 1). */
int64_t bp_nn_maxpool2d_out_size(int64_t in, int32_t k);
bp_status bp_nn_maxpool2d_forward(bp_nn_maxpool2d *p, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err);
bp_status bp_nn_maxpool2d_backward(bp_nn_maxpool2d *p, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err);

/* ========================================================== token mean == */

/* y[b] = mean of x[b, n] over the tokens skip <= n < N (AudioMAE's
 * global_pool: x[:, 1:, :].mean(dim=1) with skip = 1). x [B, N, D] → y
 * [B, D]; each sample is reduced on its own (a matmul with a ones vector),
 * so a sample's result does not depend on the batch. Backward: dx[b, n] =
 * dy[b]/(N − skip) for n >= skip, 0 for the skipped tokens (overwritten). */
typedef struct bp_nn_token_mean {
    int64_t skip;
    /* kept (private): */
    int64_t batch, n_tok, dim;
    int32_t kept;
} bp_nn_token_mean;

void bp_nn_token_mean_init(bp_nn_token_mean *m, int64_t skip);
bp_status bp_nn_token_mean_forward(bp_nn_token_mean *m, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                   bp_error *err);
bp_status bp_nn_token_mean_backward(bp_nn_token_mean *m, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                    bp_error *err);
/* --- end of the seldnet/audiomae block --- */

#endif /* BP_NN_H */
