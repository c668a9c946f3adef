/* spatial_ast: parameter registration (official state-dict names and order),
 * the official random initialisation, weight loading. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sast_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

#define W_FLAGS (BP_NN_TRAINABLE | BP_NN_DECAY)

static bp_status register_all(sast_model *m, bp_error *err) {
    const sast_cfg *c = &m->cfg;
    bp_nn_params *ps = &m->params;
    const int32_t top = (int32_t)c->depth + 1; /* heads, norms, conv block, CLS tokens */
    const int64_t s_pos[3] = {1, 1 + SAST_PATCHES, c->dim}, s_cls[3] = {1, SAST_CLS, c->dim};
    /* Top-level parameters first (PyTorch lists a module's own parameters
     * before its submodules'): pos_embed is frozen (requires_grad=False). */
    TRY(bp_nn_params_add(ps, "pos_embed", BP_DTYPE_F32, 3, s_pos, 0, 0, &m->pos_embed, err));
    /* decayed, as the official param_groups_lrd does (its no-decay list says "cls_token") */
    TRY(bp_nn_params_add(ps, "cls_tokens", BP_DTYPE_F32, 3, s_cls, BP_NN_TRAINABLE | BP_NN_DECAY, top, &m->cls_tokens,
                         err));
    m->d_cls = bp_nn_params_grad_of(ps, m->cls_tokens);
    TRY(bp_nn_patch_embed_init(&m->patch, ps, "patch_embed", 1, c->dim, SAST_PATCH, SAST_PATCH, W_FLAGS, 0, err));
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    if (!m->blocks) return bp_error_set(err, BP_ERR_NOMEM, "spatial_ast: out of memory");
    for (int64_t i = 0; i < c->depth; i++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%lld", (long long)i);
        TRY(bp_nn_block_init(&m->blocks[i], ps, name, c->dim, c->heads, c->mlp_hidden, 1e-6f, W_FLAGS, (int32_t)i + 1,
                             err));
    }
    TRY(bp_nn_linear_init(&m->head, ps, "head", c->dim, c->n_classes, 1, W_FLAGS, top, err));
    TRY(bp_nn_conv2d_init(&m->conv0, ps, "conv_downsample.0", c->in_ch, 1, 3, 3, 1, 1, 0, W_FLAGS, top, err));
    TRY(bp_nn_batchnorm2d_init(&m->bn0, ps, "conv_downsample.1", 1, 1e-5f, 0.1f, BP_NN_TRAINABLE, top, err));
    m->gelu0.op = BP_UNARY_GELU;
    TRY(bp_nn_layernorm_init(&m->dis_norm, ps, "dis_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_layernorm_init(&m->doa_norm, ps, "doa_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_layernorm_init(&m->fc_norm, ps, "fc_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    TRY(bp_nn_linear_init(&m->distance_head, ps, "distance_head", c->dim, SAST_N_DIST, 1, W_FLAGS, top, err));
    TRY(bp_nn_linear_init(&m->azimuth_head, ps, "azimuth_head", c->dim, SAST_N_AZI, 1, W_FLAGS, top, err));
    TRY(bp_nn_linear_init(&m->elevation_head, ps, "elevation_head", c->dim, SAST_N_ELE, 1, W_FLAGS, top, err));
    return BP_OK;
}

/* The official initialisation (spatial_ast.py + its VisionTransformer base):
 * base-class Linear layers (blocks, head) trunc_normal(0.02) with zero bias;
 * head and the three new heads' weights re-drawn trunc_normal(2e-5); the new
 * heads keep PyTorch's default bias U(±1/√D); cls_tokens N(0, 0.02);
 * patch_embed.proj weight xavier_uniform, bias U(±1/√256); the conv block's
 * conv kaiming_uniform(a=√5) = U(±1/√(9C)); norms 1/0 (set by the layers);
 * pos_embed = AudioMAE's 2-D sin-cos table. timm's trunc_normal_ bounds are
 * absolute: [−2, 2]. */
static bp_status init_random(sast_model *m, bp_error *err) {
    const uint64_t seed = m->cfg.init_seed;
    const int64_t D = m->cfg.dim;
    for (uint32_t i = 0; i < m->params.count; i++) {
        const bp_nn_param *p = &m->params.items[i];
        const char *n = p->name;
        const uint64_t pur = bp_nn_rng_purpose(n);
        size_t len = strlen(n);
        int is_weight = len > 7 && strcmp(n + len - 7, ".weight") == 0;
        int is_bias = len > 5 && strcmp(n + len - 5, ".bias") == 0;
        int is_head = strncmp(n, "head.", 5) == 0 || strncmp(n, "distance_head.", 14) == 0 ||
                      strncmp(n, "azimuth_head.", 13) == 0 || strncmp(n, "elevation_head.", 15) == 0;
        if (strcmp(n, "cls_tokens") == 0) {
            TRY(bp_nn_init_normal(p->value, seed, pur, 0.02, err));
        } else if (strcmp(n, "patch_embed.proj.weight") == 0) {
            double fan_in = SAST_PATCH * SAST_PATCH, fan_out = (double)D;
            TRY(bp_nn_init_uniform(p->value, seed, pur, sqrt(6.0 / (fan_in + fan_out)), err));
        } else if (strcmp(n, "patch_embed.proj.bias") == 0) {
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / SAST_PATCH, err));
        } else if (strcmp(n, "conv_downsample.0.weight") == 0) {
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / sqrt(9.0 * (double)m->cfg.in_ch), err));
        } else if (is_head && is_weight) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, m->cfg.head_init_std, -2.0, 2.0, err));
        } else if (is_head && is_bias && strncmp(n, "head.", 5) != 0) {
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / sqrt((double)D), err));
        } else if (strncmp(n, "blocks.", 7) == 0 && p->value->ndim == 2) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, 0.02, -2.0, 2.0, err));
        }
        /* everything else keeps what registration set (zeros, norm weights 1, running_var 1) */
    }
    /* pos_embed: the fixed table (host-made, one write) */
    const int64_t n = (1 + SAST_PATCHES) * D;
    float *tab = malloc((size_t)n * sizeof *tab);
    if (!tab) return bp_error_set(err, BP_ERR_NOMEM, "spatial_ast: out of memory");
    bp_nn_sincos_2d(D, SAST_GRID_F, SAST_GRID_T, tab); /* AudioMAE grid (8, 64) */
    bp_status st = bp_tensor_write(m->pos_embed, tab, (size_t)n * sizeof *tab, err);
    free(tab);
    return st;
}

bp_status sast_model_init(sast_model *m, const sast_cfg *cfg, bp_backend *be, int random_init, bp_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->be = be;
    bp_nn_params_init(&m->params, be);
    if (cfg->dim % 4 != 0 || cfg->heads < 1 || cfg->dim % cfg->heads != 0)
        return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: dim %lld must be a multiple of 4 and of heads %lld",
                            (long long)cfg->dim, (long long)cfg->heads);
    bp_status st = bp_nn_arena_new(be, &m->arena, err);
    if (st == BP_OK) st = register_all(m, err);
    if (st == BP_OK && random_init) st = init_random(m, err);
    if (st == BP_OK) {
        m->xs = calloc((size_t)cfg->depth + 1, sizeof *m->xs);
        if (!m->xs) st = bp_error_set(err, BP_ERR_NOMEM, "spatial_ast: out of memory");
    }
    return st;
}

void sast_model_free(sast_model *m) {
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

bp_status sast_model_load(sast_model *m, const char *path, bp_error *err) {
    /* Tensors of the official state dict that belong to the front end
     * (melipd reads bn.* itself) or to unused modules: accepted, not used.
     * blocks2.*: four extra blocks an older official vision_transformer.py
     * created and never ran. The log-mel BatchNorm has one channel per ear
     * (2), or 1 for the monaural variant. */
    const int64_t bn_ch = m->cfg.in_ch == 1 ? 1 : 2;
    const bp_nn_extra_name extra[] = {
        {"spectrogram_extractor.conv_real.weight", 3, {513, 1, 1024}},
        {"spectrogram_extractor.conv_imag.weight", 3, {513, 1, 1024}},
        {"logmel_extractor.melW", 2, {513, 128}},
        {"bn.running_mean", 1, {bn_ch}},
        {"bn.running_var", 1, {bn_ch}},
        {"bn.num_batches_tracked", 0, {0}},
        {"blocks2.*", -1, {0}},
    };
    bp_status st = bp_nn_params_load(&m->params, path, extra, sizeof extra / sizeof extra[0], "spatial_ast", err);
    if (st != BP_OK) return st;
    m->kept = 0;
    return BP_OK;
}
