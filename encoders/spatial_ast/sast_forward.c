/* spatial_ast: forward (evaluation and training) and backward of the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sast_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

/* Random streams of a training step (bp_nn_rng purposes). */
#define P_SPECAUG 0x5350454341554700ULL /* +0 frequency, +1 time */
#define P_MASK 0x4d41534b32440000ULL    /* +0 time rows, +1 frequency columns */
#define P_DROP 0x44524f5050415448ULL    /* + block index */

static int64_t out_width(const sast_model *m, int i) {
    switch (i) {
    case SAST_OUT_CLASS: return m->cfg.n_classes;
    case SAST_OUT_DISTANCE: return SAST_N_DIST;
    case SAST_OUT_AZIMUTH: return SAST_N_AZI;
    default: return SAST_N_ELE;
    }
}

static const char *const out_names[SAST_OUT_COUNT] = {"tokens", "logits_class", "logits_distance",
                                                      "logits_azimuth", "logits_elevation"};

static bp_status check_shape(const bp_tensor *t, int32_t ndim, const int64_t *shape, const char *what,
                             bp_error *err) {
    int ok = t->dtype == BP_DTYPE_F32 && t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return BP_OK;
    char have[96];
    bp_tensor want = bp_tensor_view(BP_DTYPE_F32, ndim, shape, NULL);
    char w[96];
    return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: %s is %s, expected %s", what,
                        bp_tensor_describe(t, have, sizeof have), bp_tensor_describe(&want, w, sizeof w));
}

static bp_status reserve_host(sast_model *m, int64_t n_ids, int64_t n_dp, bp_error *err) {
    if (n_ids > m->ids_cap) {
        int32_t *p = realloc(m->ids, (size_t)n_ids * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "spatial_ast: out of memory");
        m->ids = p;
        m->ids_cap = n_ids;
    }
    if (n_dp > m->dp_cap) {
        float *p = realloc(m->dp, (size_t)n_dp * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "spatial_ast: out of memory");
        m->dp = p;
        m->dp_cap = n_dp;
    }
    return BP_OK;
}

/* The input on the backend (a copy when it must be kept or uploaded). */
static bp_status stage_input(sast_model *m, const bp_nn_ctx *c, const bp_tensor *x, const bp_tensor **out,
                             bp_error *err) {
    int host_only = !x->backend && !bp_backend_is_host(m->be);
    if (!c->keep && !host_only) {
        *out = x;
        return BP_OK;
    }
    bp_tensor *t;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, x->shape, &t, err));
    if (host_only)
        TRY(bp_tensor_write(t, x->data, bp_tensor_nbytes(x), err));
    else
        TRY(bp_nn_copy(m->be, x, t, err));
    *out = t;
    return BP_OK;
}

static bp_status forward(sast_model *m, const bp_nn_ctx *c, const bp_tensor *x, const sast_step *step,
                         bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    const int64_t B = x->shape[0], D = m->cfg.dim, L = m->cfg.depth;
    const int train = step && c->training;

    /* 1. conv block: Conv3x3 → BatchNorm → GELU (→ SpecAugment) */
    const bp_tensor *xin;
    TRY(stage_input(m, c, x, &xin, err));
    const int64_t s_map[4] = {B, 1, SAST_FRAMES, SAST_MELS};
    bp_tensor *c0, *b0, *g0;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &c0, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &b0, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &g0, err));
    TRY(bp_nn_conv2d_forward(&m->conv0, c, xin, c0, err));
    TRY(bp_nn_batchnorm2d_forward(&m->bn0, c, c0, b0, err));
    TRY(bp_nn_act_forward(&m->gelu0, c, b0, g0, err));
    m->used_specaug = train && (step->specaug_t > 0 || step->specaug_f > 0);
    if (m->used_specaug) {
        bp_nn_specaug_sample(&m->specaug, step->seed, P_SPECAUG, SAST_FRAMES, SAST_MELS, step->specaug_t,
                             step->specaug_f);
        TRY(bp_nn_specaug_forward(&m->specaug, c, g0, g0, err));
    }
    m->pe_in = g0;

    /* 2. patch tokens + pos_embed[1:], and the CLS tokens, in one table [B·512 + 3, D] */
    const int64_t s_table[2] = {B * SAST_PATCHES + SAST_CLS, D}, s_tok[3] = {B, SAST_PATCHES, D},
                  s_pos[2] = {SAST_PATCHES, D}, s_cls[2] = {SAST_CLS, D};
    bp_tensor *table;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_table, &table, err));
    bp_tensor tok = bp_nn_view(table, 0, 3, s_tok), pos = bp_nn_view(m->pos_embed, D, 2, s_pos),
              cls_rows = bp_nn_view(table, B * SAST_PATCHES * D, 2, s_cls);
    TRY(bp_nn_patch_embed_forward(&m->patch, c, g0, &tok, err));
    TRY(bp_nn_add_into(m->be, &pos, &tok, err));
    TRY(bp_nn_copy(m->be, m->cls_tokens, &cls_rows, err));

    /* 3. x0 = [CLS ×3, kept patch tokens] per sample, by one row gather */
    const int masking = train && (step->mask_t > 0 || step->mask_f > 0);
    const int64_t kt = masking ? bp_nn_mask2d_keep(SAST_GRID_T, step->mask_t) : SAST_GRID_T;
    const int64_t kf = masking ? bp_nn_mask2d_keep(SAST_GRID_F, step->mask_f) : SAST_GRID_F;
    const int64_t nk = kt * kf, n_tok = SAST_CLS + nk;
    if (nk < 1)
        return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: token masking (time %g, frequency %g) keeps no token",
                            step->mask_t, step->mask_f);
    TRY(reserve_host(m, B * n_tok + B * nk, 2 * B * L, err));
    int32_t *ids = m->ids, *kept = m->ids + B * n_tok;
    TRY(bp_nn_mask2d_ids(step ? step->seed : 0, P_MASK, B, SAST_GRID_T, SAST_GRID_F, masking ? step->mask_t : 0.0,
                         masking ? step->mask_f : 0.0, kept, err));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t k = 0; k < SAST_CLS; k++) ids[b * n_tok + k] = (int32_t)(B * SAST_PATCHES + k);
        for (int64_t i = 0; i < nk; i++) ids[b * n_tok + SAST_CLS + i] = kept[b * nk + i];
    }
    bp_tensor *ids_tok, *x0;
    const int64_t s_x[3] = {B, n_tok, D};
    TRY(bp_nn_ids_upload(c, ids, B * n_tok, &ids_tok, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &x0, err));
    TRY(bp_nn_gather_rows(c, table, ids_tok, x0, err));

    /* 4. blocks (with per-sample drop path in training) */
    float rate = 0.0f;
    if (train) rate = step->drop_path < 0 ? m->cfg.drop_path : step->drop_path;
    bp_tensor *cur = x0, *pp[2] = {NULL, NULL};
    if (!c->keep) {
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &pp[0], err));
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &pp[1], err));
    }
    m->xs[0] = x0;
    for (int64_t i = 0; i < L; i++) {
        bp_tensor *out = pp[i % 2];
        if (c->keep) TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &out, err));
        const float *dp = NULL;
        if (rate > 0.0f) {
            float r = L > 1 ? rate * (float)i / (float)(L - 1) : 0.0f;
            float *s = m->dp + i * 2 * B;
            bp_nn_drop_path_scales(step->seed, P_DROP + (uint64_t)i, r, 2 * B, s);
            dp = s;
        }
        TRY(bp_nn_block_forward(&m->blocks[i], c, cur, dp, out, err));
        m->xs[i + 1] = out;
        cur = out;
    }
    if (outputs[SAST_OUT_TOKENS] && n_outputs > SAST_OUT_TOKENS) {
        TRY(check_shape(outputs[SAST_OUT_TOKENS], 3, s_x, "output 'tokens'", err));
        TRY(bp_nn_copy(m->be, cur, outputs[SAST_OUT_TOKENS], err));
    }

    /* 5. heads on the three CLS tokens (gathered k-major: [3, B, D]) */
    for (int64_t k = 0; k < SAST_CLS; k++)
        for (int64_t b = 0; b < B; b++) ids[k * B + b] = (int32_t)(b * n_tok + k);
    bp_tensor *ids_sel, *sel;
    const int64_t s_sel[2] = {SAST_CLS * B, D}, s_bd[2] = {B, D};
    TRY(bp_nn_ids_upload(c, ids, SAST_CLS * B, &ids_sel, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_sel, &sel, err));
    TRY(bp_nn_gather_rows(c, cur, ids_sel, sel, err));
    bp_tensor *ln[SAST_CLS];
    bp_nn_layernorm *norms[SAST_CLS] = {&m->dis_norm, &m->doa_norm, &m->fc_norm};
    for (int k = 0; k < SAST_CLS; k++) {
        m->sel_v[k] = bp_nn_view(sel, k * B * D, 2, s_bd); /* kept by the norm: must outlive this call */
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &ln[k], err));
        TRY(bp_nn_layernorm_forward(norms[k], c, &m->sel_v[k], ln[k], err));
    }
    bp_nn_linear *heads[SAST_OUT_COUNT] = {NULL, &m->head, &m->distance_head, &m->azimuth_head, &m->elevation_head};
    const int src[SAST_OUT_COUNT] = {0, 2, 0, 1, 1};
    for (int i = SAST_OUT_CLASS; i < SAST_OUT_COUNT; i++) {
        const int64_t s_o[2] = {B, out_width(m, i)};
        bp_tensor *o = (uint32_t)i < n_outputs ? outputs[i] : NULL;
        if (o) {
            char what[64];
            snprintf(what, sizeof what, "output '%s'", out_names[i]);
            TRY(check_shape(o, 2, s_o, what, err));
        } else {
            TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_o, &o, err));
        }
        TRY(bp_nn_linear_forward(heads[i], c, ln[src[i]], o, err));
    }
    m->batch = B;
    m->n_tok = n_tok;
    m->ids_tok = ids_tok;
    m->ids_sel = ids_sel;
    m->sel = sel;
    return BP_OK;
}

bp_status sast_model_forward(sast_model *m, const bp_tensor *x, const sast_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    const int64_t s_in[4] = {x && x->ndim == 4 ? x->shape[0] : 1, m->cfg.in_ch, SAST_FRAMES, SAST_MELS};
    if (!x) return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: no input");
    TRY(check_shape(x, 4, s_in, "input", err));
    if (x->shape[0] < 1) return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: empty batch");
    if (keep) bp_nn_params_drop_bf16(&m->params); /* training: the weights will change */
    bp_nn_ctx c = {m->be, m->arena, keep ? m->training : 0, keep, m->bf16 && !keep ? &m->params : NULL};
    m->kept = 0;
    bp_nn_arena_reset(m->arena);
    bp_status st = forward(m, &c, x, keep ? step : NULL, outputs, n_outputs, err);
    if (st == BP_OK) m->kept = keep;
    return st;
}

static bp_status backward(sast_model *m, const bp_nn_ctx *c, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                          bp_tensor *d_input, bp_error *err) {
    const int64_t B = m->batch, D = m->cfg.dim, L = m->cfg.depth, n_tok = m->n_tok;
    const bp_tensor *d_out[SAST_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_outputs && i < SAST_OUT_COUNT; i++) d_out[i] = d_outputs ? d_outputs[i] : NULL;
    const int64_t s_x[3] = {B, n_tok, D}, s_sel[2] = {SAST_CLS * B, D}, s_bd[2] = {B, D};
    if (d_input) {
        const int64_t s_in[4] = {B, m->cfg.in_ch, SAST_FRAMES, SAST_MELS};
        TRY(check_shape(d_input, 4, s_in, "input gradient", err));
    }
    for (int i = SAST_OUT_CLASS; i < SAST_OUT_COUNT; i++)
        if (d_out[i]) {
            const int64_t s_o[2] = {B, out_width(m, i)};
            char what[64];
            snprintf(what, sizeof what, "gradient of '%s'", out_names[i]);
            TRY(check_shape(d_out[i], 2, s_o, what, err));
        }

    /* heads → d sel [3, B, D] → d x_L */
    bp_tensor *dxl, *dsel, *dln, *tmp;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &dxl, err));
    if (d_out[SAST_OUT_TOKENS]) {
        TRY(check_shape(d_out[SAST_OUT_TOKENS], 3, s_x, "gradient of 'tokens'", err));
        TRY(bp_nn_copy(m->be, d_out[SAST_OUT_TOKENS], dxl, err));
    } else {
        TRY(bp_op_fill(m->be, dxl, 0.0f, err));
    }
    TRY(bp_nn_arena_zeros(c->arena, 2, s_sel, &dsel, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &dln, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &tmp, err));
    bp_tensor dsel_v[SAST_CLS];
    for (int k = 0; k < SAST_CLS; k++) dsel_v[k] = bp_nn_view(dsel, k * B * D, 2, s_bd);
    if (d_out[SAST_OUT_DISTANCE]) {
        TRY(bp_nn_linear_backward(&m->distance_head, c, d_out[SAST_OUT_DISTANCE], dln, err));
        TRY(bp_nn_layernorm_backward(&m->dis_norm, c, dln, &dsel_v[0], err));
    }
    if (d_out[SAST_OUT_AZIMUTH] || d_out[SAST_OUT_ELEVATION]) {
        if (d_out[SAST_OUT_AZIMUTH])
            TRY(bp_nn_linear_backward(&m->azimuth_head, c, d_out[SAST_OUT_AZIMUTH], dln, err));
        else
            TRY(bp_op_fill(m->be, dln, 0.0f, err));
        if (d_out[SAST_OUT_ELEVATION]) {
            TRY(bp_nn_linear_backward(&m->elevation_head, c, d_out[SAST_OUT_ELEVATION], tmp, err));
            TRY(bp_nn_add_into(m->be, tmp, dln, err));
        }
        TRY(bp_nn_layernorm_backward(&m->doa_norm, c, dln, &dsel_v[1], err));
    }
    if (d_out[SAST_OUT_CLASS]) {
        TRY(bp_nn_linear_backward(&m->head, c, d_out[SAST_OUT_CLASS], dln, err));
        TRY(bp_nn_layernorm_backward(&m->fc_norm, c, dln, &dsel_v[2], err));
    }
    TRY(bp_nn_scatter_add_rows(c, dsel, m->ids_sel, dxl, err));

    /* blocks, last to first (two alternating gradient buffers) */
    bp_tensor *g[2], *cur = dxl;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[0], err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[1], err));
    for (int64_t i = L - 1, j = 0; i >= 0; i--, j++) {
        TRY(bp_nn_block_backward(&m->blocks[i], c, cur, g[j % 2], err));
        cur = g[j % 2];
    }

    /* x0 → the table: CLS rows → cls_tokens grad, patch rows → patch embed */
    const int64_t s_table[2] = {B * SAST_PATCHES + SAST_CLS, D}, s_tok[3] = {B, SAST_PATCHES, D},
                  s_cls[2] = {SAST_CLS, D};
    bp_tensor *dtable;
    TRY(bp_nn_arena_zeros(c->arena, 2, s_table, &dtable, err));
    TRY(bp_nn_scatter_add_rows(c, cur, m->ids_tok, dtable, err));
    bp_tensor dcls_rows = bp_nn_view(dtable, B * SAST_PATCHES * D, 2, s_cls);
    if (m->d_cls) {
        bp_tensor dcls = bp_nn_reshape(m->d_cls, 2, s_cls);
        TRY(bp_nn_add_into(m->be, &dcls_rows, &dcls, err));
    }
    bp_tensor dtok = bp_nn_view(dtable, 0, 3, s_tok);
    const int64_t s_map[4] = {B, 1, SAST_FRAMES, SAST_MELS};
    bp_tensor *dpe, *db0, *dc0;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &dpe, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &db0, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &dc0, err));
    TRY(bp_nn_patch_embed_backward(&m->patch, c, &dtok, dpe, err));
    if (m->used_specaug) TRY(bp_nn_specaug_backward(&m->specaug, c, dpe, dpe, err));
    TRY(bp_nn_act_backward(&m->gelu0, c, dpe, db0, err));
    TRY(bp_nn_batchnorm2d_backward(&m->bn0, c, db0, dc0, err));
    return bp_nn_conv2d_backward(&m->conv0, c, dc0, d_input, err);
}

bp_status sast_model_backward(sast_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err) {
    if (!m->kept)
        return bp_error_set(err, BP_ERR_INVALID, "spatial_ast: backward needs a training forward first");
    bp_nn_ctx c = {m->be, m->arena, m->training, 0, NULL};
    size_t mark = bp_nn_arena_mark(m->arena);
    bp_status st = backward(m, &c, d_outputs, n_outputs, d_input, err);
    bp_nn_arena_rewind(m->arena, mark);
    return st;
}
