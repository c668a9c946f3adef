/* audiomae: configuration checks, parameter registration (AudioMAE's
 * fine-tuning state-dict names and order), random initialisation, weight
 * loading. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amae_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

#define W_FLAGS (BP_NN_TRAINABLE | BP_NN_DECAY)

/* timm VisionTransformer order: own parameters (cls_token, pos_embed), then
 * patch_embed, blocks, head; fc_norm is added by AudioMAE's subclass after
 * the base constructor, so it comes last. Layer ids follow MAE's
 * lr_decay.get_layer_id_for_vit: cls_token, pos_embed, patch_embed → 0;
 * blocks.i → i + 1; the rest → depth + 1. No decay on cls_token (MAE's
 * no_weight_decay list) nor on 1-D tensors; pos_embed is frozen
 * (requires_grad=False in main_finetune_as.py). */
static bp_status register_all(amae_model *m, bp_error *err) {
    const amae_cfg *c = &m->cfg;
    bp_nn_params *ps = &m->params;
    const int32_t top = (int32_t)c->depth + 1;
    const int64_t s_cls[3] = {1, 1, c->dim}, s_pos[3] = {1, 1 + AMAE_PATCHES, c->dim};
    TRY(bp_nn_params_add(ps, "cls_token", BP_DTYPE_F32, 3, s_cls, BP_NN_TRAINABLE, 0, &m->cls_token, err));
    m->d_cls = bp_nn_params_grad_of(ps, m->cls_token);
    TRY(bp_nn_params_add(ps, "pos_embed", BP_DTYPE_F32, 3, s_pos, 0, 0, &m->pos_embed, err));
    TRY(bp_nn_patch_embed_init(&m->patch, ps, "patch_embed", 1, c->dim, AMAE_PATCH, AMAE_PATCH, W_FLAGS, 0, err));
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    if (!m->blocks) return bp_error_set(err, BP_ERR_NOMEM, "audiomae: out of memory");
    for (int64_t i = 0; i < c->depth; i++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%lld", (long long)i);
        TRY(bp_nn_block_init(&m->blocks[i], ps, name, c->dim, c->heads, c->mlp_hidden, 1e-6f, W_FLAGS, (int32_t)i + 1,
                             err));
    }
    TRY(bp_nn_linear_init(&m->head, ps, "head", c->dim, c->n_classes, 1, W_FLAGS, top, err));
    TRY(bp_nn_layernorm_init(&m->fc_norm, ps, "fc_norm", c->dim, 1e-6f, BP_NN_TRAINABLE, top, err));
    bp_nn_token_mean_init(&m->pool, 1);
    return BP_OK;
}

/* Random initialisation (README.md): timm's ViT init for the blocks (Linear
 * trunc_normal(0.02), zero bias; LayerNorm 1/0) and cls_token
 * (trunc_normal(0.02)); PatchEmbed_new's Conv2d keeps PyTorch's default
 * (weight and bias U(±1/√256)); the head as main_finetune_as.py sets it
 * (weight trunc_normal(2e-5), zero bias); pos_embed the fixed 2-D sin-cos
 * table of AudioMAE's pre-training code (grid (8, 64), golden README §2). */
static bp_status init_random(amae_model *m, bp_error *err) {
    const uint64_t seed = m->cfg.init_seed;
    const int64_t D = m->cfg.dim;
    for (uint32_t i = 0; i < m->params.count; i++) {
        const bp_nn_param *p = &m->params.items[i];
        const char *n = p->name;
        const uint64_t pur = bp_nn_rng_purpose(n);
        if (strcmp(n, "cls_token") == 0) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, 0.02, -2.0, 2.0, err));
        } else if (strcmp(n, "patch_embed.proj.weight") == 0 || strcmp(n, "patch_embed.proj.bias") == 0) {
            TRY(bp_nn_init_uniform(p->value, seed, pur, 1.0 / AMAE_PATCH, err));
        } else if (strcmp(n, "head.weight") == 0) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, m->cfg.head_init_std, -2.0, 2.0, err));
        } else if (strncmp(n, "blocks.", 7) == 0 && p->value->ndim == 2) {
            TRY(bp_nn_init_trunc_normal(p->value, seed, pur, 0.02, -2.0, 2.0, err));
        }
        /* everything else keeps what registration set (zeros, norm weights 1) */
    }
    const int64_t n = (1 + AMAE_PATCHES) * D;
    float *tab = malloc((size_t)n * sizeof *tab);
    if (!tab) return bp_error_set(err, BP_ERR_NOMEM, "audiomae: out of memory");
    bp_nn_sincos_2d(D, AMAE_GRID_F, AMAE_GRID_T, tab);
    bp_status st = bp_tensor_write(m->pos_embed, tab, (size_t)n * sizeof *tab, err);
    free(tab);
    return st;
}

bp_status amae_model_init(amae_model *m, const amae_cfg *cfg, bp_backend *be, bp_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->be = be;
    bp_nn_params_init(&m->params, be);
    if (cfg->dim < 4 || cfg->dim % 4 != 0 || cfg->heads < 1 || cfg->dim % cfg->heads != 0)
        return bp_error_set(err, BP_ERR_INVALID, "audiomae: dim %lld must be a multiple of 4 and of heads %lld",
                            (long long)cfg->dim, (long long)cfg->heads);
    if (cfg->depth < 1 || cfg->mlp_hidden < 1 || cfg->n_classes < 1)
        return bp_error_set(err, BP_ERR_INVALID, "audiomae: depth %lld, MLP width %lld, classes %lld must be >= 1",
                            (long long)cfg->depth, (long long)cfg->mlp_hidden, (long long)cfg->n_classes);
    bp_status st = bp_nn_arena_new(be, &m->arena, err);
    if (st == BP_OK) st = register_all(m, err);
    if (st == BP_OK) st = init_random(m, err);
    if (st == BP_OK) {
        m->xs = calloc((size_t)cfg->depth + 1, sizeof *m->xs);
        if (!m->xs) st = bp_error_set(err, BP_ERR_NOMEM, "audiomae: out of memory");
    }
    return st;
}

void amae_model_free(amae_model *m) {
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

bp_status amae_model_load(amae_model *m, const char *path, bp_error *err) {
    bp_status st = bp_nn_params_load(&m->params, path, NULL, 0, "audiomae", err);
    if (st != BP_OK) return st;
    m->kept = 0;
    return BP_OK;
}
