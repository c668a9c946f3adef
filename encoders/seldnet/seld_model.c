/* seldnet: configuration checks, parameter registration (state-dict names
 * and order, README.md), random initialisation, weight loading. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seld_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

#define W_FLAGS (BP_NN_TRAINABLE | BP_NN_DECAY)

/* Map sizes through the conv stack; an error names the block that runs out. */
static bp_status plan_maps(seld_model *m, bp_error *err) {
    const seld_cfg *c = &m->cfg;
    if (c->n_conv < 1 || c->n_conv > SELD_MAX_CONV)
        return bp_error_set(err, BP_ERR_INVALID, "seldnet: %d conv blocks (1 to %d allowed)", (int)c->n_conv,
                            SELD_MAX_CONV);
    int64_t h = SELD_FRAMES, w = SELD_MELS;
    for (int32_t i = 0; i < c->n_conv; i++) {
        seld_conv_block *b = &m->conv[i];
        if (c->pool_t[i] < 1 || c->pool_f[i] < 1)
            return bp_error_set(err, BP_ERR_INVALID,
                                "seldnet: conv block %d pools %dx%d (time x frequency), sizes must be >= 1", (int)i,
                                (int)c->pool_t[i], (int)c->pool_f[i]);
        b->h = h;
        b->w = w;
        b->oh = bp_nn_maxpool2d_out_size(h, c->pool_t[i]);
        b->ow = bp_nn_maxpool2d_out_size(w, c->pool_f[i]);
        if (b->oh < 1 || b->ow < 1)
            return bp_error_set(
                err, BP_ERR_INVALID,
                "seldnet: conv block %d pools a %lldx%lld map by %dx%d (time x frequency): nothing is left", (int)i,
                (long long)h, (long long)w, (int)c->pool_t[i], (int)c->pool_f[i]);
        h = b->oh;
        w = b->ow;
    }
    m->n_frames = h;
    m->n_bins = w;
    return BP_OK;
}

static bp_status register_all(seld_model *m, bp_error *err) {
    const seld_cfg *c = &m->cfg;
    bp_nn_params *ps = &m->params;
    const int32_t top = (int32_t)c->depth + 1; /* heads, norms, CLS tokens */
    const int64_t s_pos[3] = {1, m->n_frames, c->dim}, s_cls[3] = {1, SELD_CLS, c->dim};
    /* the fixed frame positions (frozen) and the CLS tokens first, then the
     * modules in the order of the forward */
    TRY(bp_nn_params_add(ps, "pos_embed", BP_DTYPE_F32, 3, s_pos, 0, 0, &m->pos_embed, err));
    TRY(bp_nn_params_add(ps, "cls_tokens", BP_DTYPE_F32, 3, s_cls, BP_NN_TRAINABLE, top, &m->cls_tokens, err));
    m->d_cls = bp_nn_params_grad_of(ps, m->cls_tokens);
    int64_t in = c->in_ch;
    for (int32_t i = 0; i < c->n_conv; i++) {
        seld_conv_block *b = &m->conv[i];
        char name[64];
        snprintf(name, sizeof name, "conv_blocks.%d.conv", (int)i);
        TRY(bp_nn_conv2d_init(&b->conv, ps, name, in, c->filters, 3, 3, 1, 1, 1, W_FLAGS, 0, err));
        snprintf(name, sizeof name, "conv_blocks.%d.bn", (int)i);
        TRY(bp_nn_batchnorm2d_init(&b->bn, ps, name, c->filters, 1e-5f, 0.1f, BP_NN_TRAINABLE, 0, err));
        b->relu.op = BP_UNARY_RELU;
        b->relu.x = NULL;
        bp_nn_maxpool2d_init(&b->pool, c->pool_t[i], c->pool_f[i]);
        in = c->filters;
    }
    TRY(bp_nn_linear_init(&m->bridge, ps, "bridge", c->filters * m->n_bins, c->dim, 1, W_FLAGS, 0, err));
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    if (!m->blocks) return bp_error_set(err, BP_ERR_NOMEM, "seldnet: out of memory");
    for (int64_t i = 0; i < c->depth; i++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%lld", (long long)i);
        TRY(bp_nn_block_init(&m->blocks[i], ps, name, c->dim, c->heads, c->mlp_hidden, 1e-6f, W_FLAGS, (int32_t)i + 1,
                             err));
    }
    TRY(bp_nn_layernorm_init(&m->dis_norm, ps, "dis_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_layernorm_init(&m->doa_norm, ps, "doa_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_layernorm_init(&m->fc_norm, ps, "fc_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_linear_init(&m->head, ps, "head", c->dim, c->n_classes, 1, W_FLAGS, top, err));
    TRY(bp_nn_linear_init(&m->distance_head, ps, "distance_head", c->dim, SELD_N_DIST, 1, W_FLAGS, top, err));
    TRY(bp_nn_linear_init(&m->azimuth_head, ps, "azimuth_head", c->dim, SELD_N_AZI, 1, W_FLAGS, top, err));
    TRY(bp_nn_linear_init(&m->elevation_head, ps, "elevation_head", c->dim, SELD_N_ELE, 1, W_FLAGS, top, err));
    return BP_OK;
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int has_suffix(const char *s, const char *x) {
    size_t n = strlen(s), k = strlen(x);
    return n >= k && strcmp(s + n - k, x) == 0;
}

/* Random initialisation (README.md): the conv blocks keep PyTorch's Conv2d
 * default (kaiming_uniform a=√5: weight and bias U(±1/√fan_in)); the bridge
 * and every block Linear are timm ViT's trunc_normal(0.02) with zero bias;
 * cls_tokens N(0, 0.02); the four heads as Spatial-AST's: weights
 * trunc_normal(2e-5), head.bias 0, the other heads' biases U(±1/√D); norms
 * and BatchNorm 1/0 (set by the layers); pos_embed the 1-D sin-cos table. */
static bp_status init_random(seld_model *m, bp_error *err) {
    const uint64_t seed = m->cfg.init_seed;
    const int64_t D = m->cfg.dim;
    for (uint32_t i = 0; i < m->params.count; i++) {
        const bp_nn_param *p = &m->params.items[i];
        const char *n = p->name;
        const uint64_t pur = bp_nn_rng_purpose(n);
        const int is_head = has_prefix(n, "head.") || has_prefix(n, "distance_head.") ||
                            has_prefix(n, "azimuth_head.") || has_prefix(n, "elevation_head.");
        if (strcmp(n, "cls_tokens") == 0) {
            TRY(bp_nn_init_normal(p->value, seed, pur, 0.02, err));
        } else if (has_prefix(n, "conv_blocks.") && has_suffix(n, ".conv.weight")) {
            const double fan_in = (double)p->value->shape[1] * 9.0;
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / sqrt(fan_in), err));
            /* the bias follows its weight in the registry */
            const bp_nn_param *bias = &m->params.items[i + 1];
            TRY(bp_nn_init_uniform(bias->value, seed, bp_nn_rng_purpose(bias->name), 1.0 / sqrt(fan_in), err));
        } else if (is_head && has_suffix(n, ".weight")) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, m->cfg.head_init_std, -2.0, 2.0, err));
        } else if (is_head && has_suffix(n, ".bias") && !has_prefix(n, "head.")) {
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / sqrt((double)D), err));
        } else if ((has_prefix(n, "blocks.") || has_prefix(n, "bridge.")) && p->value->ndim == 2) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, 0.02, -2.0, 2.0, err));
        }
        /* everything else keeps what registration set (zeros, norm weights 1, running_var 1) */
    }
    /* pos_embed row t = [sin(t·ω_k) …, cos(t·ω_k) …], ω_k = 10000^(−k/(D/2)) */
    const int64_t T = m->n_frames;
    float *tab = malloc((size_t)(T * D) * sizeof *tab);
    if (!tab) return bp_error_set(err, BP_ERR_NOMEM, "seldnet: out of memory");
    for (int64_t t = 0; t < T; t++) bp_nn_sincos_1d(D, (double)t, tab + t * D);
    bp_status st = bp_tensor_write(m->pos_embed, tab, (size_t)(T * D) * sizeof *tab, err);
    free(tab);
    return st;
}

bp_status seld_model_init(seld_model *m, const seld_cfg *cfg, bp_backend *be, bp_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->be = be;
    bp_nn_params_init(&m->params, be);
    if (cfg->dim < 2 || cfg->dim % 2 != 0 || cfg->heads < 1 || cfg->dim % cfg->heads != 0)
        return bp_error_set(err, BP_ERR_INVALID, "seldnet: dim %lld must be even and a multiple of heads %lld",
                            (long long)cfg->dim, (long long)cfg->heads);
    if (cfg->filters < 1 || cfg->depth < 1 || cfg->mlp_hidden < 1 || cfg->n_classes < 1 || cfg->in_ch < 1)
        return bp_error_set(err, BP_ERR_INVALID,
                            "seldnet: filters %lld, depth %lld, MLP width %lld, classes %lld, maps %lld must be >= 1",
                            (long long)cfg->filters, (long long)cfg->depth, (long long)cfg->mlp_hidden,
                            (long long)cfg->n_classes, (long long)cfg->in_ch);
    bp_status st = plan_maps(m, err);
    if (st == BP_OK) st = bp_nn_arena_new(be, &m->arena, err);
    if (st == BP_OK) st = register_all(m, err);
    if (st == BP_OK) st = init_random(m, err);
    if (st == BP_OK) {
        m->xs = calloc((size_t)cfg->depth + 1, sizeof *m->xs);
        if (!m->xs) st = bp_error_set(err, BP_ERR_NOMEM, "seldnet: out of memory");
    }
    return st;
}

void seld_model_free(seld_model *m) {
    if (!m) return;
    if (m->blocks)
        for (int64_t i = 0; i < m->cfg.depth; i++) bp_nn_block_free(&m->blocks[i]);
    free(m->blocks);
    free(m->xs);
    free(m->ids);
    free(m->dp);
    bp_nn_arena_free(m->arena);
    bp_nn_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

bp_status seld_model_load(seld_model *m, const char *path, bp_error *err) {
    /* The front end's log-mel normalisation under Spatial-AST's names (what
     * `batpipe train` writes next to the encoder's tensors when it estimated
     * it, and what melipd/mel's `weights` parameter reads): accepted, not
     * used here. One statistic per log-mel map: 2 (melipd, mel_binaural) or 1. */
    const int64_t n_mel = m->cfg.in_ch == 4 ? 2 : m->cfg.in_ch;
    const bp_nn_extra_name extra[] = {
        {"bn.running_mean", 1, {n_mel}},
        {"bn.running_var", 1, {n_mel}},
        {"bn.num_batches_tracked", 0, {0}},
    };
    bp_status st = bp_nn_params_load(&m->params, path, extra, sizeof extra / sizeof extra[0], "seldnet", err);
    if (st != BP_OK) return st;
    m->kept = 0;
    return BP_OK;
}
