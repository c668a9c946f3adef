/* seldnet: forward (evaluation and training) and backward of the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seld_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

/* Random streams of a training step (bp_nn_rng purposes). */
#define P_SPECAUG 0x53454c4453504300ULL /* +0 frequency, +1 time */
#define P_MASK 0x53454c444d41534bULL    /* frame tokens */
#define P_DROP 0x53454c4444524f50ULL    /* + block index */

static const char *const out_names[SELD_OUT_COUNT] = {"tokens", "logits_class", "logits_distance",
                                                      "logits_azimuth", "logits_elevation"};

static int64_t out_width(const seld_model *m, int i) {
    switch (i) {
    case SELD_OUT_CLASS: return m->cfg.n_classes;
    case SELD_OUT_DISTANCE: return SELD_N_DIST;
    case SELD_OUT_AZIMUTH: return SELD_N_AZI;
    default: return SELD_N_ELE;
    }
}

static bp_status check_shape(const bp_tensor *t, int32_t ndim, const int64_t *shape, const char *what,
                             bp_error *err) {
    int ok = t->dtype == BP_DTYPE_F32 && t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return BP_OK;
    char have[96], w[96];
    bp_tensor want = bp_tensor_view(BP_DTYPE_F32, ndim, shape, NULL);
    return bp_error_set(err, BP_ERR_INVALID, "seldnet: %s is %s, expected %s", what,
                        bp_tensor_describe(t, have, sizeof have), bp_tensor_describe(&want, w, sizeof w));
}

static bp_status reserve_host(seld_model *m, int64_t n_ids, int64_t n_dp, bp_error *err) {
    if (n_ids > m->ids_cap) {
        int32_t *p = realloc(m->ids, (size_t)n_ids * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "seldnet: out of memory");
        m->ids = p;
        m->ids_cap = n_ids;
    }
    if (n_dp > m->dp_cap) {
        float *p = realloc(m->dp, (size_t)n_dp * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "seldnet: out of memory");
        m->dp = p;
        m->dp_cap = n_dp;
    }
    return BP_OK;
}

/* The input on the backend: a copy when it is kept (and possibly masked by
 * SpecAugment) or must be uploaded from the host. */
static bp_status stage_input(seld_model *m, const bp_nn_ctx *c, const bp_tensor *x, const bp_tensor **out,
                             bp_tensor **copy, bp_error *err) {
    int host_only = !x->backend && !bp_backend_is_host(m->be);
    *copy = NULL;
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
    *copy = t;
    return BP_OK;
}

/* One conv block. Training keeps conv, BN and ReLU outputs (the layers
 * remember them); evaluation works in two temporaries released afterwards. */
static bp_status conv_block_forward(seld_model *m, const bp_nn_ctx *c, seld_conv_block *b, const bp_tensor *x,
                                    bp_tensor *y, bp_error *err) {
    const int64_t B = x->shape[0], s_map[4] = {B, m->cfg.filters, b->h, b->w};
    const size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *t0, *t1, *t2;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &t0, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &t1, err));
    t2 = t0;
    if (c->keep) TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &t2, err));
    TRY(bp_nn_conv2d_forward(&b->conv, c, x, t0, err));
    TRY(bp_nn_batchnorm2d_forward(&b->bn, c, t0, t1, err));
    TRY(bp_nn_act_forward(&b->relu, c, t1, t2, err));
    TRY(bp_nn_maxpool2d_forward(&b->pool, c, t2, y, err));
    if (!c->keep) bp_nn_arena_rewind(c->arena, mark);
    return BP_OK;
}

static bp_status forward(seld_model *m, const bp_nn_ctx *c, const bp_tensor *x, const seld_step *step,
                         bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    const int64_t B = x->shape[0], D = m->cfg.dim, L = m->cfg.depth, T = m->n_frames, F = m->cfg.filters,
                  FB = m->n_bins;
    const int train = step && c->training;

    /* 1. input (SpecAugment on the maps in training) */
    const bp_tensor *xin;
    bp_tensor *own;
    TRY(stage_input(m, c, x, &xin, &own, err));
    m->used_specaug = train && (step->specaug_t > 0 || step->specaug_f > 0);
    if (m->used_specaug) {
        if (!own) return bp_error_set(err, BP_ERR_INTERNAL, "seldnet: SpecAugment without a kept input copy");
        bp_nn_specaug_sample(&m->specaug, step->seed, P_SPECAUG, SELD_FRAMES, SELD_MELS, step->specaug_t,
                             step->specaug_f);
        TRY(bp_nn_specaug_forward(&m->specaug, c, own, own, err));
    }

    /* 2. conv stack; each block's pooled output is the next block's input */
    const bp_tensor *cur_map = xin;
    for (int32_t i = 0; i < m->cfg.n_conv; i++) {
        seld_conv_block *b = &m->conv[i];
        const int64_t s_out[4] = {B, F, b->oh, b->ow};
        bp_tensor *y;
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_out, &y, err));
        TRY(conv_block_forward(m, c, b, cur_map, y, err));
        cur_map = y;
    }

    /* 3. [B, F, T, FB] → [B, T, F·FB] → bridge → frame tokens (+ pos_embed),
     *    with the CLS tokens in one table [B·T + 3, D] */
    const int64_t s_perm[4] = {B, T, F, FB}, s_feat[3] = {B, T, F * FB};
    const int32_t perm[4] = {0, 2, 1, 3};
    bp_tensor *feat; /* kept by the bridge */
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_feat, &feat, err));
    bp_tensor feat4 = bp_nn_reshape(feat, 4, s_perm);
    TRY(bp_op_permute(m->be, cur_map, perm, &feat4, err));
    const int64_t s_table[2] = {B * T + SELD_CLS, D}, s_tok[3] = {B, T, D}, s_pos[2] = {T, D},
                  s_cls[2] = {SELD_CLS, D};
    bp_tensor *table;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_table, &table, err));
    bp_tensor tok = bp_nn_view(table, 0, 3, s_tok), pos = bp_nn_reshape(m->pos_embed, 2, s_pos),
              cls_rows = bp_nn_view(table, B * T * D, 2, s_cls);
    TRY(bp_nn_linear_forward(&m->bridge, c, feat, &tok, err));
    TRY(bp_nn_add_into(m->be, &pos, &tok, err));
    TRY(bp_nn_copy(m->be, m->cls_tokens, &cls_rows, err));

    /* 4. x0 = [CLS ×3, kept frame tokens] per sample, by one row gather */
    const int masking = train && step->mask_t > 0;
    const int64_t nk = masking ? bp_nn_mask2d_keep(T, step->mask_t) : T, n_tok = SELD_CLS + nk;
    if (nk < 1)
        return bp_error_set(err, BP_ERR_INVALID, "seldnet: token masking (time %g) keeps none of the %lld frames",
                            step->mask_t, (long long)T);
    TRY(reserve_host(m, B * n_tok + B * nk, 2 * B * L, err));
    int32_t *ids = m->ids, *kept = m->ids + B * n_tok;
    TRY(bp_nn_mask2d_ids(step ? step->seed : 0, P_MASK, B, T, 1, masking ? step->mask_t : 0.0, 0.0, kept, err));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t k = 0; k < SELD_CLS; k++) ids[b * n_tok + k] = (int32_t)(B * T + k);
        for (int64_t i = 0; i < nk; i++) ids[b * n_tok + SELD_CLS + i] = kept[b * nk + i];
    }
    bp_tensor *ids_tok, *x0;
    const int64_t s_x[3] = {B, n_tok, D};
    TRY(bp_nn_ids_upload(c, ids, B * n_tok, &ids_tok, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &x0, err));
    TRY(bp_nn_gather_rows(c, table, ids_tok, x0, err));

    /* 5. blocks (per-sample drop path in training) */
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
    if (n_outputs > SELD_OUT_TOKENS && outputs[SELD_OUT_TOKENS]) {
        TRY(check_shape(outputs[SELD_OUT_TOKENS], 3, s_x, "output 'tokens'", err));
        TRY(bp_nn_copy(m->be, cur, outputs[SELD_OUT_TOKENS], err));
    }

    /* 6. heads on the three CLS tokens (gathered k-major: [3, B, D]) */
    for (int64_t k = 0; k < SELD_CLS; k++)
        for (int64_t b = 0; b < B; b++) ids[k * B + b] = (int32_t)(b * n_tok + k);
    bp_tensor *ids_sel, *sel;
    const int64_t s_sel[2] = {SELD_CLS * B, D}, s_bd[2] = {B, D};
    TRY(bp_nn_ids_upload(c, ids, SELD_CLS * B, &ids_sel, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_sel, &sel, err));
    TRY(bp_nn_gather_rows(c, cur, ids_sel, sel, err));
    bp_tensor *ln[SELD_CLS];
    bp_nn_layernorm *norms[SELD_CLS] = {&m->dis_norm, &m->doa_norm, &m->fc_norm};
    for (int k = 0; k < SELD_CLS; k++) {
        m->sel_v[k] = bp_nn_view(sel, k * B * D, 2, s_bd); /* kept by the norm: must outlive this call */
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &ln[k], err));
        TRY(bp_nn_layernorm_forward(norms[k], c, &m->sel_v[k], ln[k], err));
    }
    bp_nn_linear *heads[SELD_OUT_COUNT] = {NULL, &m->head, &m->distance_head, &m->azimuth_head, &m->elevation_head};
    const int src[SELD_OUT_COUNT] = {0, 2, 0, 1, 1};
    for (int i = SELD_OUT_CLASS; i < SELD_OUT_COUNT; i++) {
        const int64_t s_o[2] = {B, out_width(m, i)};
        bp_tensor *o = (uint32_t)i < n_outputs ? outputs[i] : NULL;
        if (o) {
            char what[64];
            snprintf(what, sizeof what, "output '%s'", out_names[i]);
            TRY(check_shape(o, 2, s_o, what, err));
        } else if (c->keep) {
            /* backward needs every head's kept input, so run it anyway */
            TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_o, &o, err));
        } else {
            continue;
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

bp_status seld_model_forward(seld_model *m, const bp_tensor *x, const seld_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    if (!x) return bp_error_set(err, BP_ERR_INVALID, "seldnet: no input");
    const int64_t s_in[4] = {x->ndim == 4 ? x->shape[0] : 1, m->cfg.in_ch, SELD_FRAMES, SELD_MELS};
    TRY(check_shape(x, 4, s_in, "input", err));
    if (x->shape[0] < 1) return bp_error_set(err, BP_ERR_INVALID, "seldnet: empty batch");
    if (keep) bp_nn_params_drop_bf16(&m->params); /* training: the weights will change */
    bp_nn_ctx c = {m->be, m->arena, keep ? m->training : 0, keep, m->bf16 && !keep ? &m->params : NULL};
    m->kept = 0;
    bp_nn_arena_reset(m->arena);
    bp_status st = forward(m, &c, x, keep ? step : NULL, outputs, n_outputs, err);
    if (st == BP_OK) m->kept = keep;
    return st;
}

/* d of the three CLS tokens from the heads' gradients → d x_L. */
static bp_status heads_backward(seld_model *m, const bp_nn_ctx *c, const bp_tensor *const *d_out, bp_tensor *dxl,
                                bp_error *err) {
    const int64_t B = m->batch, D = m->cfg.dim, s_sel[2] = {SELD_CLS * B, D}, s_bd[2] = {B, D};
    bp_tensor *dsel, *dln, *tmp;
    TRY(bp_nn_arena_zeros(c->arena, 2, s_sel, &dsel, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &dln, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &tmp, err));
    bp_tensor dsel_v[SELD_CLS];
    for (int k = 0; k < SELD_CLS; k++) dsel_v[k] = bp_nn_view(dsel, k * B * D, 2, s_bd);
    if (d_out[SELD_OUT_DISTANCE]) {
        TRY(bp_nn_linear_backward(&m->distance_head, c, d_out[SELD_OUT_DISTANCE], dln, err));
        TRY(bp_nn_layernorm_backward(&m->dis_norm, c, dln, &dsel_v[0], err));
    }
    if (d_out[SELD_OUT_AZIMUTH] || d_out[SELD_OUT_ELEVATION]) {
        if (d_out[SELD_OUT_AZIMUTH])
            TRY(bp_nn_linear_backward(&m->azimuth_head, c, d_out[SELD_OUT_AZIMUTH], dln, err));
        else
            TRY(bp_op_fill(m->be, dln, 0.0f, err));
        if (d_out[SELD_OUT_ELEVATION]) {
            TRY(bp_nn_linear_backward(&m->elevation_head, c, d_out[SELD_OUT_ELEVATION], tmp, err));
            TRY(bp_nn_add_into(m->be, tmp, dln, err));
        }
        TRY(bp_nn_layernorm_backward(&m->doa_norm, c, dln, &dsel_v[1], err));
    }
    if (d_out[SELD_OUT_CLASS]) {
        TRY(bp_nn_linear_backward(&m->head, c, d_out[SELD_OUT_CLASS], dln, err));
        TRY(bp_nn_layernorm_backward(&m->fc_norm, c, dln, &dsel_v[2], err));
    }
    return bp_nn_scatter_add_rows(c, dsel, m->ids_sel, dxl, err);
}

static bp_status backward(seld_model *m, const bp_nn_ctx *c, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                          bp_tensor *d_input, bp_error *err) {
    const int64_t B = m->batch, D = m->cfg.dim, L = m->cfg.depth, n_tok = m->n_tok, T = m->n_frames,
                  F = m->cfg.filters, FB = m->n_bins;
    const bp_tensor *d_out[SELD_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_outputs && i < SELD_OUT_COUNT; i++) d_out[i] = d_outputs ? d_outputs[i] : NULL;
    const int64_t s_x[3] = {B, n_tok, D};
    if (d_input) {
        const int64_t s_in[4] = {B, m->cfg.in_ch, SELD_FRAMES, SELD_MELS};
        TRY(check_shape(d_input, 4, s_in, "input gradient", err));
    }
    for (int i = SELD_OUT_CLASS; i < SELD_OUT_COUNT; i++)
        if (d_out[i]) {
            const int64_t s_o[2] = {B, out_width(m, i)};
            char what[64];
            snprintf(what, sizeof what, "gradient of '%s'", out_names[i]);
            TRY(check_shape(d_out[i], 2, s_o, what, err));
        }

    /* tokens + heads → d x_L */
    bp_tensor *dxl;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &dxl, err));
    if (d_out[SELD_OUT_TOKENS]) {
        TRY(check_shape(d_out[SELD_OUT_TOKENS], 3, s_x, "gradient of 'tokens'", err));
        TRY(bp_nn_copy(m->be, d_out[SELD_OUT_TOKENS], dxl, err));
    } else {
        TRY(bp_op_fill(m->be, dxl, 0.0f, err));
    }
    TRY(heads_backward(m, c, d_out, dxl, err));

    /* blocks, last to first (two alternating gradient buffers) */
    bp_tensor *g[2], *cur = dxl;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[0], err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[1], err));
    for (int64_t i = L - 1, j = 0; i >= 0; i--, j++) {
        TRY(bp_nn_block_backward(&m->blocks[i], c, cur, g[j % 2], err));
        cur = g[j % 2];
    }

    /* x0 → the table: CLS rows → cls_tokens grad; frame rows → bridge */
    const int64_t s_table[2] = {B * T + SELD_CLS, D}, s_tok[3] = {B, T, D}, s_cls[2] = {SELD_CLS, D};
    bp_tensor *dtable;
    TRY(bp_nn_arena_zeros(c->arena, 2, s_table, &dtable, err));
    TRY(bp_nn_scatter_add_rows(c, cur, m->ids_tok, dtable, err));
    if (m->d_cls) {
        bp_tensor dcls_rows = bp_nn_view(dtable, B * T * D, 2, s_cls), dcls = bp_nn_reshape(m->d_cls, 2, s_cls);
        TRY(bp_nn_add_into(m->be, &dcls_rows, &dcls, err));
    }
    bp_tensor dtok = bp_nn_view(dtable, 0, 3, s_tok);
    const int64_t s_feat[3] = {B, T, F * FB}, s_perm[4] = {B, T, F, FB};
    bp_tensor *dfeat;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_feat, &dfeat, err));
    TRY(bp_nn_linear_backward(&m->bridge, c, &dtok, dfeat, err));

    /* [B, T, F, FB] → [B, F, T, FB] (the permutation is its own inverse) */
    const seld_conv_block *last = &m->conv[m->cfg.n_conv - 1];
    const int64_t s_last[4] = {B, F, last->oh, last->ow};
    const int32_t perm[4] = {0, 2, 1, 3};
    bp_tensor *dmap;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_last, &dmap, err));
    bp_tensor dperm = bp_nn_reshape(dfeat, 4, s_perm);
    TRY(bp_op_permute(m->be, &dperm, perm, dmap, err));

    /* conv blocks, last to first: pool → ReLU → BN → conv */
    for (int32_t i = m->cfg.n_conv - 1; i >= 0; i--) {
        seld_conv_block *b = &m->conv[i];
        const int64_t s_map[4] = {B, F, b->h, b->w};
        bp_tensor *d2, *d1, *dprev = d_input;
        if (i > 0) {
            const seld_conv_block *prev = &m->conv[i - 1];
            const int64_t s_prev[4] = {B, F, prev->oh, prev->ow};
            TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_prev, &dprev, err));
        }
        const size_t mark = bp_nn_arena_mark(c->arena); /* the two map-sized temporaries of this block */
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &d2, err));
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, s_map, &d1, err));
        TRY(bp_nn_maxpool2d_backward(&b->pool, c, dmap, d2, err));
        TRY(bp_nn_act_backward(&b->relu, c, d2, d1, err));
        TRY(bp_nn_batchnorm2d_backward(&b->bn, c, d1, d2, err));
        TRY(bp_nn_conv2d_backward(&b->conv, c, d2, dprev, err));
        bp_nn_arena_rewind(c->arena, mark);
        dmap = dprev;
    }
    if (d_input && m->used_specaug) TRY(bp_nn_specaug_backward(&m->specaug, c, d_input, d_input, err));
    return BP_OK;
}

bp_status seld_model_backward(seld_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err) {
    if (!m->kept) return bp_error_set(err, BP_ERR_INVALID, "seldnet: backward needs a training forward first");
    bp_nn_ctx c = {m->be, m->arena, m->training, 0, NULL};
    size_t mark = bp_nn_arena_mark(m->arena);
    bp_status st = backward(m, &c, d_outputs, n_outputs, d_input, err);
    bp_nn_arena_rewind(m->arena, mark);
    return st;
}
