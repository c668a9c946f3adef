/* Test-only trainable encoder "train_tiny": the smallest model with every
 * part of the trainable extension, written with the core ops only (so the
 * trainer is testable before the real encoders exist):
 *
 *   features [B, C, T, F]
 *   → conv 3×3, stride `stride`, pad 1 (conv.weight, conv.bias)
 *   → BatchNorm2d (bn.weight, bn.bias; running stats with momentum 0.1 and
 *     the unbiased batch variance, num_batches_tracked, as PyTorch)
 *   → exact GELU → "token" masking (training: zero int(H·mask_t_prob) random
 *     time rows and int(W·mask_f_prob) bin columns of the activation map,
 *     chosen from the step seed) → mean over time → pooled [B, K·W]
 *     = "tokens" [B, 1, K·W]
 *   → linear heads: head (n_classes), distance_head (21), azimuth_head (360),
 *     elevation_head (180).
 *
 * Layer ids: conv 0, bn 1, heads 2. Weight decay on the conv and head
 * weights. `weights` loads every tensor by these names (strict). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/encoder.h"
#include "batpipe/ops.h"
#include "batpipe/plugin.h"
#include "batpipe/safetensors.h"

#define NAME "train_tiny"
#define N_HEADS 4
#define N_PARAMS 15

enum { P_CONV_W, P_CONV_B, P_BN_W, P_BN_B, P_BN_RM, P_BN_RV, P_BN_NBT, P_HEAD0_W };

static const char *const head_port_names[N_HEADS] = {"logits_class", "logits_distance", "logits_azimuth",
                                                     "logits_elevation"};
static const char *const param_names[N_PARAMS] = {"conv.weight",
                                                  "conv.bias",
                                                  "bn.weight",
                                                  "bn.bias",
                                                  "bn.running_mean",
                                                  "bn.running_var",
                                                  "bn.num_batches_tracked",
                                                  "head.weight",
                                                  "head.bias",
                                                  "distance_head.weight",
                                                  "distance_head.bias",
                                                  "azimuth_head.weight",
                                                  "azimuth_head.bias",
                                                  "elevation_head.weight",
                                                  "elevation_head.bias"};

static const bp_param_spec tiny_params[] = {
    {sizeof(bp_param_spec), "in_channels", BP_PARAM_INT, "4", 1, 64, NULL, "feature channels C of the input"},
    {sizeof(bp_param_spec), "in_bins", BP_PARAM_INT, "128", 3, 4096, NULL, "feature bins F of the input"},
    {sizeof(bp_param_spec), "width", BP_PARAM_INT, "8", 1, 1024, NULL, "conv output channels K"},
    {sizeof(bp_param_spec), "stride", BP_PARAM_INT, "2", 1, 16, NULL, "conv stride (both axes)"},
    {sizeof(bp_param_spec), "n_classes", BP_PARAM_INT, "4", 1, 100000, NULL, "classes of the class head"},
    {sizeof(bp_param_spec), "init_seed", BP_PARAM_INT, "0", 0, 1e15, NULL, "seed of the random initial weights"},
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "safetensors with every tensor by name (\"\" = random init)"},
};

static const bp_descriptor tiny_desc = {sizeof(bp_descriptor),
                                        NAME,
                                        "1.0.0",
                                        "test-only trainable encoder: conv → BN → GELU → time mean → linear heads",
                                        NULL,
                                        tiny_params,
                                        sizeof tiny_params / sizeof tiny_params[0]};

typedef struct tiny {
    bp_stage st;
    bp_trainable tr;
    const bp_host *host;
    bp_backend *be;
    int64_t C, F, K, stride, n_classes, Wd, D; /* Wd: conv output bins; D = K·Wd pooled features */
    int64_t head_w[N_HEADS];
    bp_tensor *val[N_PARAMS], *grad[N_PARAMS];
    int32_t training;
    /* activations and scratch for the prepared shape */
    int64_t B, T, H, W; /* F: the in_bins parameter */
    bp_tensor *mask, *xin, *y1, *y2, *y3, *bmean, *bvar, *pooled, *ones_row, *ones_col, *dpooled, *dy3, *dy2, *dy1;
    bp_tensor *tmp_w, *tmp_k1, *tmp_k2, *tmp_o;
    int32_t have_forward;
} tiny;

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        bp_status st_ = (x);                                                                                           \
        if (st_ != BP_OK) return st_;                                                                                  \
    } while (0)

/* ------------------------------------------------------------ helpers -- */

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static double unif(uint64_t *s) {
    *s = mix64(*s);
    return (double)(*s >> 11) * 0x1.0p-53;
}

/* a reshaped view of a backend tensor (same data) */
static bp_tensor view2(const bp_tensor *t, int64_t a, int64_t b) {
    bp_tensor v = *t;
    v.owns_data = 0;
    v.ndim = 2;
    v.shape[0] = a;
    v.shape[1] = b;
    return v;
}

static bp_status new_t(tiny *t, bp_tensor **out, int32_t dtype, int32_t ndim, int64_t a, int64_t b, int64_t c,
                       int64_t d, bp_error *err) {
    int64_t shape[4] = {a, b, c, d};
    bp_tensor_free(*out);
    *out = NULL;
    return bp_tensor_new(t->be, dtype, ndim, shape, out, err);
}

static void free_scratch(tiny *t) {
    bp_tensor **all[] = {&t->mask, &t->xin,    &t->y1,       &t->y2,       &t->y3,      &t->bmean,
                         &t->bvar, &t->pooled, &t->ones_row, &t->ones_col, &t->dpooled, &t->dy3,
                         &t->dy2,  &t->dy1,    &t->tmp_w,    &t->tmp_k1,   &t->tmp_k2,  &t->tmp_o};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        bp_tensor_free(*all[i]);
        *all[i] = NULL;
    }
    t->B = 0;
    t->have_forward = 0;
}

static bp_status write_host(bp_tensor *dst, const float *src, bp_error *err) {
    return bp_tensor_write(dst, src, bp_tensor_nbytes(dst), err);
}

/* ------------------------------------------------------------- params -- */

static bp_status alloc_params(tiny *t, bp_error *err) {
    int64_t K = t->K;
    TRY(new_t(t, &t->val[P_CONV_W], BP_DTYPE_F32, 4, K, t->C, 3, 3, err));
    TRY(new_t(t, &t->val[P_CONV_B], BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    for (int i = P_BN_W; i <= P_BN_RV; i++) TRY(new_t(t, &t->val[i], BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    TRY(new_t(t, &t->val[P_BN_NBT], BP_DTYPE_I64, 0, 0, 0, 0, 0, err));
    for (int h = 0; h < N_HEADS; h++) {
        TRY(new_t(t, &t->val[P_HEAD0_W + 2 * h], BP_DTYPE_F32, 2, t->head_w[h], t->D, 0, 0, err));
        TRY(new_t(t, &t->val[P_HEAD0_W + 2 * h + 1], BP_DTYPE_F32, 1, t->head_w[h], 0, 0, 0, err));
    }
    for (int i = 0; i < N_PARAMS; i++) {
        if (i == P_BN_RM || i == P_BN_RV || i == P_BN_NBT) continue;
        const bp_tensor *v = t->val[i];
        TRY(bp_tensor_new(t->be, BP_DTYPE_F32, v->ndim, v->shape, &t->grad[i], err));
        TRY(bp_op_fill(t->be, t->grad[i], 0.0f, err));
    }
    return BP_OK;
}

static bp_status init_random(tiny *t, uint64_t seed, bp_error *err) {
    uint64_t s = mix64(seed ^ 0x7137ull);
    size_t cap = 0;
    for (int i = 0; i < N_PARAMS; i++)
        if (t->val[i]->dtype == BP_DTYPE_F32 && (size_t)bp_tensor_numel(t->val[i]) > cap)
            cap = (size_t)bp_tensor_numel(t->val[i]);
    float *buf = malloc(cap * sizeof *buf);
    if (!buf) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    bp_status st = BP_OK;
    for (int i = 0; i < N_PARAMS && st == BP_OK; i++) {
        bp_tensor *v = t->val[i];
        if (v->dtype != BP_DTYPE_F32) continue;
        int64_t n = bp_tensor_numel(v);
        double scale = i == P_CONV_W ? 1.0 / sqrt((double)(t->C * 9)) : i >= P_HEAD0_W ? 0.2 / sqrt((double)t->D) : 0;
        for (int64_t k = 0; k < n; k++) {
            double x = (2.0 * unif(&s) - 1.0) * scale;
            if (i == P_BN_W || i == P_BN_RV) x = 1.0;
            if (i == P_BN_B || i == P_BN_RM || (i >= P_HEAD0_W && (i - P_HEAD0_W) % 2 == 1) || i == P_CONV_B) x = 0.0;
            buf[k] = (float)x;
        }
        st = write_host(v, buf, err);
    }
    free(buf);
    int64_t zero = 0;
    if (st == BP_OK) st = bp_tensor_write(t->val[P_BN_NBT], &zero, sizeof zero, err);
    return st;
}

static bp_status load_weights(tiny *t, const char *path, bp_error *err) {
    bp_st_file *f;
    TRY(bp_st_open(path, &f, err));
    bp_status st = BP_OK;
    for (int i = 0; i < N_PARAMS && st == BP_OK; i++) {
        bp_tensor *v = t->val[i], src;
        st = bp_st_get_checked(f, param_names[i], v->dtype, v->ndim, v->shape, &src, err);
        if (st == BP_OK) st = bp_tensor_write(v, src.data, bp_tensor_nbytes(v), err);
    }
    bp_st_close(f);
    return st;
}

/* ------------------------------------------------------------- stage -- */

static bp_status tiny_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    tiny *t = st->self;
    int64_t shape[4] = {BP_DIM_ANY, t->C, BP_DIM_ANY, t->F};
    *want = bp_spec_f32(4, shape, 0, "batch,channels,frames,bins");
    return BP_OK;
}

static bp_status alloc_scratch(tiny *t, int64_t B, int64_t T, int64_t F, bp_error *err) {
    free_scratch(t);
    int64_t K = t->K, H = (T + 2 - 3) / t->stride + 1, W = (F + 2 - 3) / t->stride + 1, omax = 0;
    for (int h = 0; h < N_HEADS; h++) omax = t->head_w[h] > omax ? t->head_w[h] : omax;
    TRY(new_t(t, &t->mask, BP_DTYPE_F32, 2, H, W, 0, 0, err));
    TRY(new_t(t, &t->xin, BP_DTYPE_F32, 4, B, t->C, T, F, err));
    TRY(new_t(t, &t->y1, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->y2, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->y3, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->bmean, BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    TRY(new_t(t, &t->bvar, BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    TRY(new_t(t, &t->pooled, BP_DTYPE_F32, 2, B, K * W, 0, 0, err));
    TRY(new_t(t, &t->ones_row, BP_DTYPE_F32, 3, B * K, 1, H, 0, err));
    TRY(new_t(t, &t->ones_col, BP_DTYPE_F32, 3, B * K, H, 1, 0, err));
    TRY(new_t(t, &t->dpooled, BP_DTYPE_F32, 2, B, K * W, 0, 0, err));
    TRY(new_t(t, &t->dy3, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->dy2, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->dy1, BP_DTYPE_F32, 4, B, K, H, W, err));
    TRY(new_t(t, &t->tmp_w, BP_DTYPE_F32, 4, K, t->C, 3, 3, err));
    TRY(new_t(t, &t->tmp_k1, BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    TRY(new_t(t, &t->tmp_k2, BP_DTYPE_F32, 1, K, 0, 0, 0, err));
    TRY(new_t(t, &t->tmp_o, BP_DTYPE_F32, 1, omax, 0, 0, 0, err));
    TRY(bp_op_fill(t->be, t->ones_row, 1.0f, err));
    TRY(bp_op_fill(t->be, t->ones_col, 1.0f, err));
    t->B = B, t->T = T, t->F = F, t->H = H, t->W = W;
    return BP_OK;
}

static bp_status tiny_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    tiny *t = st->self;
    if (in->ndim != 4 || in->shape[1] != t->C || in->shape[2] < 3 || in->shape[3] != t->F)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input must be [batch, %lld, frames >= 3, %lld]", (long long)t->C,
                            (long long)t->F);
    if (*n < 1 + N_HEADS) return bp_error_set(err, BP_ERR_INVALID, NAME ": needs room for %d outputs", 1 + N_HEADS);
    int64_t B = in->shape[0];
    memset(out, 0, (1 + N_HEADS) * sizeof *out);
    int64_t ts[3] = {B, 1, t->D};
    out[0].struct_size = sizeof *out;
    snprintf(out[0].name, sizeof out[0].name, "tokens");
    out[0].spec = bp_spec_f32(3, ts, 0, "batch,tokens,dim");
    snprintf(out[0].help, sizeof out[0].help, "the pooled features");
    for (int h = 0; h < N_HEADS; h++) {
        int64_t s[2] = {B, t->head_w[h]};
        bp_port *p = &out[1 + h];
        p->struct_size = sizeof *p;
        snprintf(p->name, sizeof p->name, "%s", head_port_names[h]);
        p->spec = bp_spec_f32(2, s, 0, "batch,classes");
        p->optional = 1;
        snprintf(p->help, sizeof p->help, "logits");
    }
    *n = 1 + N_HEADS;
    if (B > 0) TRY(alloc_scratch(t, B, in->shape[2], in->shape[3], err));
    return BP_OK;
}

static bp_status check_input(tiny *t, const bp_tensor *in, bp_error *err) {
    if (!t->B || in->ndim != 4 || in->shape[0] != t->B || in->shape[1] != t->C || in->shape[2] != t->T ||
        in->shape[3] != t->F)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input does not match the last prepare");
    return BP_OK;
}

/* conv → BN → GELU → pool → heads → outputs (training: on xin, batch statistics) */
static bp_status run_forward(tiny *t, const bp_tensor *x, int32_t training, bp_tensor *const *outs, uint32_t n,
                             bp_error *err) {
    bp_conv2d_desc cd;
    memset(&cd, 0, sizeof cd);
    cd.struct_size = sizeof cd;
    cd.x = x;
    cd.w = t->val[P_CONV_W];
    cd.bias = t->val[P_CONV_B];
    cd.y = t->y1;
    cd.stride_h = cd.stride_w = (int32_t)t->stride;
    cd.pad_h = cd.pad_w = 1;
    cd.dilation_h = cd.dilation_w = 1;
    cd.groups = 1;
    TRY(bp_op_conv2d(t->be, &cd, err));
    bp_batchnorm_desc bn;
    memset(&bn, 0, sizeof bn);
    bn.struct_size = sizeof bn;
    bn.x = t->y1;
    bn.y = t->y2;
    bn.w = t->val[P_BN_W];
    bn.b = t->val[P_BN_B];
    bn.eps = 1e-5f;
    bn.training = training;
    bn.mean = training ? t->bmean : t->val[P_BN_RM];
    bn.var = training ? t->bvar : t->val[P_BN_RV];
    TRY(bp_op_batchnorm(t->be, &bn, err));
    if (training) { /* running = 0.9 · running + 0.1 · batch (unbiased variance) */
        double cnt = (double)(t->B * t->H * t->W);
        double unb = cnt > 1 ? cnt / (cnt - 1) : 1.0;
        TRY(bp_op_affine(t->be, t->val[P_BN_RM], 0.9f, 0.0f, t->val[P_BN_RM], err));
        TRY(bp_op_affine(t->be, t->bmean, 0.1f, 0.0f, t->tmp_k1, err));
        TRY(bp_op_binary(t->be, BP_BINARY_ADD, t->val[P_BN_RM], t->tmp_k1, t->val[P_BN_RM], err));
        TRY(bp_op_affine(t->be, t->val[P_BN_RV], 0.9f, 0.0f, t->val[P_BN_RV], err));
        TRY(bp_op_affine(t->be, t->bvar, (float)(0.1 * unb), 0.0f, t->tmp_k1, err));
        TRY(bp_op_binary(t->be, BP_BINARY_ADD, t->val[P_BN_RV], t->tmp_k1, t->val[P_BN_RV], err));
        /* the count lives in the tensor (a trainer restoring a checkpoint writes it there) */
        int64_t nbt;
        TRY(bp_tensor_read(t->val[P_BN_NBT], &nbt, sizeof nbt, err));
        nbt++;
        TRY(bp_tensor_write(t->val[P_BN_NBT], &nbt, sizeof nbt, err));
    }
    TRY(bp_op_unary(t->be, BP_UNARY_GELU, t->y2, t->y3, err));
    if (training) TRY(bp_op_binary(t->be, BP_BINARY_MUL, t->y3, t->mask, t->y3, err));
    /* mean over time: [BK, 1, H] ones @ [BK, H, W] → [BK, 1, W] */
    bp_tensor y3v = *t->y3, pv = *t->pooled;
    y3v.owns_data = pv.owns_data = 0;
    y3v.ndim = pv.ndim = 3;
    y3v.shape[0] = pv.shape[0] = t->B * t->K;
    y3v.shape[1] = t->H, y3v.shape[2] = t->W;
    pv.shape[1] = 1, pv.shape[2] = t->W;
    TRY(bp_op_matmul(t->be, t->ones_row, &y3v, &pv, NULL, 0, 0, (float)(1.0 / (double)t->H), 0.0f, err));
    if (outs[0]) {
        bp_tensor tv = view2(outs[0], t->B, t->D);
        TRY(bp_op_affine(t->be, t->pooled, 1.0f, 0.0f, &tv, err));
    }
    for (int h = 0; h < N_HEADS && (uint32_t)(1 + h) < n; h++)
        if (outs[1 + h])
            TRY(bp_op_matmul(t->be, t->pooled, t->val[P_HEAD0_W + 2 * h], outs[1 + h], t->val[P_HEAD0_W + 2 * h + 1], 0,
                             1, 1.0f, 0.0f, err));
    return BP_OK;
}

static bp_status tiny_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n, bp_error *err) {
    tiny *t = st->self;
    TRY(check_input(t, in, err));
    return run_forward(t, in, 0, outs, n, err);
}

/* --------------------------------------------------------- trainable -- */

static int32_t tiny_n_layers(bp_stage *st) {
    (void)st;
    return 3;
}

static uint32_t tiny_param_count(bp_stage *st) {
    (void)st;
    return N_PARAMS;
}

static bp_status tiny_param_at(bp_stage *st, uint32_t i, bp_train_param *out, bp_error *err) {
    tiny *t = st->self;
    if (i >= N_PARAMS) return bp_error_set(err, BP_ERR_INVALID, NAME ": no parameter %u", i);
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->name = param_names[i];
    out->value = t->val[i];
    out->grad = t->grad[i];
    out->trainable = t->grad[i] != NULL;
    out->decay = i == P_CONV_W || (i >= P_HEAD0_W && (i - P_HEAD0_W) % 2 == 0);
    out->layer_id = i <= P_CONV_B ? 0 : i <= P_BN_NBT ? 1 : 2;
    return BP_OK;
}

static bp_status tiny_set_training(bp_stage *st, int32_t training, bp_error *err) {
    (void)err;
    tiny *t = st->self;
    t->training = training;
    t->have_forward = 0;
    return BP_OK;
}

/* int(n·p) distinct random indices set to 0 in keep[] (partial Fisher–Yates) */
static void drop_random(uint64_t *s, int64_t n, double p, float *keep) {
    int64_t drop = (int64_t)((double)n * p), *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) keep[i] = 1.0f;
    if (!idx) return;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 0; i < drop; i++) {
        int64_t j = i + (int64_t)(unif(s) * (double)(n - i));
        if (j >= n) j = n - 1;
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        keep[idx[i]] = 0.0f;
    }
    free(idx);
}

static bp_status tiny_forward(bp_stage *st, const bp_tensor *in, const bp_train_step *step, bp_tensor *const *outs,
                              uint32_t n, bp_error *err) {
    tiny *t = st->self;
    TRY(check_input(t, in, err));
    if (!t->training) return bp_error_set(err, BP_ERR_INVALID, NAME ": forward needs set_training(1)");
    uint64_t s = mix64(step ? step->seed : 0);
    float *m = malloc((size_t)(t->H * t->W + t->H + t->W) * sizeof *m);
    if (!m) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    float *rows = m + t->H * t->W, *cols = rows + t->H;
    drop_random(&s, t->H, step ? step->mask_t_prob : 0.0, rows);
    drop_random(&s, t->W, step ? step->mask_f_prob : 0.0, cols);
    for (int64_t i = 0; i < t->H; i++)
        for (int64_t j = 0; j < t->W; j++) m[i * t->W + j] = rows[i] * cols[j];
    bp_status stt = write_host(t->mask, m, err);
    free(m);
    TRY(stt);
    TRY(bp_op_affine(t->be, in, 1.0f, 0.0f, t->xin, err)); /* kept for the conv's backward */
    TRY(run_forward(t, t->xin, 1, outs, n, err));
    t->have_forward = 1;
    return BP_OK;
}

/* grad += tmp (tmp shaped like grad) */
static bp_status acc(tiny *t, bp_tensor *grad, const bp_tensor *tmp, bp_error *err) {
    return bp_op_binary(t->be, BP_BINARY_ADD, grad, tmp, grad, err);
}

static bp_status tiny_backward(bp_stage *st, const bp_tensor *const *d_outs, uint32_t n, bp_tensor *d_input,
                               bp_error *err) {
    tiny *t = st->self;
    if (!t->have_forward) return bp_error_set(err, BP_ERR_INVALID, NAME ": backward without a training forward");
    if (d_input) return bp_error_set(err, BP_ERR_UNSUPPORTED, NAME ": no input gradient");
    TRY(bp_op_fill(t->be, t->dpooled, 0.0f, err));
    if (n > 0 && d_outs[0]) {
        bp_tensor dv = view2(d_outs[0], t->B, t->D);
        TRY(acc(t, t->dpooled, &dv, err));
    }
    for (int h = 0; h < N_HEADS && (uint32_t)(1 + h) < n; h++) {
        const bp_tensor *dl = d_outs[1 + h];
        if (!dl) continue;
        int pw = P_HEAD0_W + 2 * h;
        TRY(bp_op_matmul(t->be, dl, t->pooled, t->grad[pw], NULL, 1, 0, 1.0f, 1.0f, err));
        bp_tensor ob = *t->tmp_o;
        ob.owns_data = 0;
        ob.shape[0] = t->head_w[h];
        TRY(bp_op_sum_to(t->be, dl, &ob, err));
        TRY(acc(t, t->grad[pw + 1], &ob, err));
        TRY(bp_op_matmul(t->be, dl, t->val[pw], t->dpooled, NULL, 0, 0, 1.0f, 1.0f, err));
    }
    /* [BK, H, 1] ones @ [BK, 1, W] → [BK, H, W], / H */
    bp_tensor dpv = *t->dpooled, dy3v = *t->dy3;
    dpv.owns_data = dy3v.owns_data = 0;
    dpv.ndim = dy3v.ndim = 3;
    dpv.shape[0] = dy3v.shape[0] = t->B * t->K;
    dpv.shape[1] = 1, dpv.shape[2] = t->W;
    dy3v.shape[1] = t->H, dy3v.shape[2] = t->W;
    TRY(bp_op_matmul(t->be, t->ones_col, &dpv, &dy3v, NULL, 0, 0, (float)(1.0 / (double)t->H), 0.0f, err));
    TRY(bp_op_binary(t->be, BP_BINARY_MUL, t->dy3, t->mask, t->dy3, err));
    TRY(bp_op_unary_backward(t->be, BP_UNARY_GELU, t->y2, t->dy3, t->dy2, err));
    bp_batchnorm_desc bn;
    memset(&bn, 0, sizeof bn);
    bn.struct_size = sizeof bn;
    bn.x = t->y1;
    bn.y = t->y2;
    bn.w = t->val[P_BN_W];
    bn.b = t->val[P_BN_B];
    bn.mean = t->bmean;
    bn.var = t->bvar;
    bn.eps = 1e-5f;
    bn.training = 1;
    TRY(bp_op_batchnorm_backward(t->be, &bn, t->dy2, t->dy1, t->tmp_k1, t->tmp_k2, err));
    TRY(acc(t, t->grad[P_BN_W], t->tmp_k1, err));
    TRY(acc(t, t->grad[P_BN_B], t->tmp_k2, err));
    bp_conv2d_desc cd;
    memset(&cd, 0, sizeof cd);
    cd.struct_size = sizeof cd;
    cd.x = t->xin;
    cd.w = t->val[P_CONV_W];
    cd.bias = t->val[P_CONV_B];
    cd.stride_h = cd.stride_w = (int32_t)t->stride;
    cd.pad_h = cd.pad_w = 1;
    cd.dilation_h = cd.dilation_w = 1;
    cd.groups = 1;
    TRY(bp_op_conv2d_backward(t->be, &cd, t->dy1, NULL, t->tmp_w, t->tmp_k1, err));
    TRY(acc(t, t->grad[P_CONV_W], t->tmp_w, err));
    TRY(acc(t, t->grad[P_CONV_B], t->tmp_k1, err));
    return BP_OK;
}

static bp_status tiny_zero_grad(bp_stage *st, bp_error *err) {
    tiny *t = st->self;
    for (int i = 0; i < N_PARAMS; i++)
        if (t->grad[i]) TRY(bp_op_fill(t->be, t->grad[i], 0.0f, err));
    return BP_OK;
}

static const void *tiny_get_extension(bp_stage *st, const char *id) {
    tiny *t = st->self;
    return strcmp(id, BP_EXT_TRAINABLE_ID) == 0 ? &t->tr : NULL;
}

static void tiny_destroy(bp_stage *st) {
    tiny *t = st->self;
    free_scratch(t);
    for (int i = 0; i < N_PARAMS; i++) {
        bp_tensor_free(t->val[i]);
        bp_tensor_free(t->grad[i]);
    }
    free(t);
}

static bp_status tiny_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    (void)index;
    if (!host->backend) return bp_error_set(err, BP_ERR_INVALID, NAME ": needs a compute backend");
    tiny *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    t->host = host;
    t->be = host->backend;
    t->C = bp_params_int(params, "in_channels");
    t->F = bp_params_int(params, "in_bins");
    t->K = bp_params_int(params, "width");
    t->stride = bp_params_int(params, "stride");
    t->n_classes = bp_params_int(params, "n_classes");
    t->Wd = (t->F + 2 - 3) / t->stride + 1;
    t->D = t->K * t->Wd;
    t->head_w[0] = t->n_classes;
    t->head_w[1] = 21;
    t->head_w[2] = 360;
    t->head_w[3] = 180;
    t->st.struct_size = sizeof t->st;
    t->st.self = t;
    t->st.input_spec = tiny_input_spec;
    t->st.prepare = tiny_prepare;
    t->st.process = tiny_process;
    t->st.get_extension = tiny_get_extension;
    t->st.destroy = tiny_destroy;
    t->tr.struct_size = sizeof t->tr;
    t->tr.n_layers = tiny_n_layers;
    t->tr.param_count = tiny_param_count;
    t->tr.param_at = tiny_param_at;
    t->tr.set_training = tiny_set_training;
    t->tr.forward = tiny_forward;
    t->tr.backward = tiny_backward;
    t->tr.zero_grad = tiny_zero_grad;
    const char *w = bp_params_string(params, "weights");
    bp_status st = alloc_params(t, err);
    if (st == BP_OK)
        st = w && *w ? load_weights(t, w, err) : init_random(t, (uint64_t)bp_params_int(params, "init_seed"), err);
    if (st != BP_OK) {
        tiny_destroy(&t->st);
        return st;
    }
    *instance = &t->st;
    return BP_OK;
}

static const bp_descriptor *const descs[] = {&tiny_desc};
static const bp_factory factory = {sizeof(bp_factory), 1, descs, tiny_create};

static const bp_factory *get_factory(const char *kind) {
    return strcmp(kind, BP_KIND_ENCODER_ID) == 0 ? &factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL,
                                                   get_factory};
