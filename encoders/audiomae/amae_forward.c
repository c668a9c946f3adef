/* audiomae: forward (evaluation and training) and backward of the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amae_model.h"

#define TRY(x)                          \
    do {                                \
        bp_status st_ = (x);            \
        if (st_ != BP_OK) return st_;   \
    } while (0)

/* Random streams of a training step (bp_nn_rng purposes). */
#define P_SPECAUG 0x414d414553504300ULL /* +0 frequency, +1 time */
#define P_MASK 0x414d41454d41534bULL    /* +0 time rows, +1 frequency columns */
#define P_DROP 0x414d414544524f50ULL    /* + block index */

static bp_status check_shape(const bp_tensor *t, int32_t ndim, const int64_t *shape, const char *what,
                             bp_error *err) {
    int ok = t->dtype == BP_DTYPE_F32 && t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return BP_OK;
    char have[96], w[96];
    bp_tensor want = bp_tensor_view(BP_DTYPE_F32, ndim, shape, NULL);
    return bp_error_set(err, BP_ERR_INVALID, "audiomae: %s is %s, expected %s", what,
                        bp_tensor_describe(t, have, sizeof have), bp_tensor_describe(&want, w, sizeof w));
}

static bp_status reserve_host(amae_model *m, int64_t n_ids, int64_t n_dp, bp_error *err) {
    if (n_ids > m->ids_cap) {
        int32_t *p = realloc(m->ids, (size_t)n_ids * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "audiomae: out of memory");
        m->ids = p;
        m->ids_cap = n_ids;
    }
    if (n_dp > m->dp_cap) {
        float *p = realloc(m->dp, (size_t)n_dp * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "audiomae: out of memory");
        m->dp = p;
        m->dp_cap = n_dp;
    }
    return BP_OK;
}

/* The input on the backend: a copy when it is kept (and possibly masked by
 * SpecAugment) or must be uploaded from the host. */
static bp_status stage_input(amae_model *m, const bp_nn_ctx *c, const bp_tensor *x, const bp_tensor **out,
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

static bp_status forward(amae_model *m, const bp_nn_ctx *c, const bp_tensor *x, const amae_step *step,
                         bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    const int64_t B = x->shape[0], D = m->cfg.dim, L = m->cfg.depth;
    const int train = step && c->training;

    /* 1. input (SpecAugment on the fbank in training, as AudioMAE's dataset does) */
    const bp_tensor *xin;
    bp_tensor *own;
    TRY(stage_input(m, c, x, &xin, &own, err));
    m->used_specaug = train && (step->specaug_t > 0 || step->specaug_f > 0);
    if (m->used_specaug) {
        if (!own) return bp_error_set(err, BP_ERR_INTERNAL, "audiomae: SpecAugment without a kept input copy");
        bp_nn_specaug_sample(&m->specaug, step->seed, P_SPECAUG, AMAE_FRAMES, AMAE_MELS, step->specaug_t,
                             step->specaug_f);
        TRY(bp_nn_specaug_forward(&m->specaug, c, own, own, err));
    }

    /* 2. patch tokens + pos_embed[1:] and the CLS token + pos_embed[0], in one table [B·512 + 1, D] */
    const int64_t s_table[2] = {B * AMAE_PATCHES + 1, D}, s_tok[3] = {B, AMAE_PATCHES, D},
                  s_pos[2] = {AMAE_PATCHES, D}, s_row[2] = {1, D};
    bp_tensor *table;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_table, &table, err));
    bp_tensor tok = bp_nn_view(table, 0, 3, s_tok), pos = bp_nn_view(m->pos_embed, D, 2, s_pos),
              cls_row = bp_nn_view(table, B * AMAE_PATCHES * D, 2, s_row), pos0 = bp_nn_view(m->pos_embed, 0, 2, s_row);
    TRY(bp_nn_patch_embed_forward(&m->patch, c, xin, &tok, err));
    TRY(bp_nn_add_into(m->be, &pos, &tok, err));
    TRY(bp_nn_copy(m->be, m->cls_token, &cls_row, err));
    TRY(bp_nn_add_into(m->be, &pos0, &cls_row, err));

    /* 3. x0 = [CLS, kept patch tokens] per sample, by one row gather */
    const int masking = train && (step->mask_t > 0 || step->mask_f > 0);
    const int64_t kt = masking ? bp_nn_mask2d_keep(AMAE_GRID_T, step->mask_t) : AMAE_GRID_T;
    const int64_t kf = masking ? bp_nn_mask2d_keep(AMAE_GRID_F, step->mask_f) : AMAE_GRID_F;
    const int64_t nk = kt * kf, n_tok = 1 + nk;
    if (nk < 1)
        return bp_error_set(err, BP_ERR_INVALID, "audiomae: patch masking (time %g, frequency %g) keeps no patch",
                            step->mask_t, step->mask_f);
    TRY(reserve_host(m, B * n_tok + B * nk, 2 * B * L, err));
    int32_t *ids = m->ids, *kept = m->ids + B * n_tok;
    TRY(bp_nn_mask2d_ids(step ? step->seed : 0, P_MASK, B, AMAE_GRID_T, AMAE_GRID_F, masking ? step->mask_t : 0.0,
                         masking ? step->mask_f : 0.0, kept, err));
    for (int64_t b = 0; b < B; b++) {
        ids[b * n_tok] = (int32_t)(B * AMAE_PATCHES);
        for (int64_t i = 0; i < nk; i++) ids[b * n_tok + 1 + i] = kept[b * nk + i];
    }
    bp_tensor *ids_tok, *x0;
    const int64_t s_x[3] = {B, n_tok, D};
    TRY(bp_nn_ids_upload(c, ids, B * n_tok, &ids_tok, err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &x0, err));
    TRY(bp_nn_gather_rows(c, table, ids_tok, x0, err));

    /* 4. blocks (per-sample drop path in training) */
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
    if (n_outputs > AMAE_OUT_TOKENS && outputs[AMAE_OUT_TOKENS]) {
        TRY(check_shape(outputs[AMAE_OUT_TOKENS], 3, s_x, "output 'tokens'", err));
        TRY(bp_nn_copy(m->be, cur, outputs[AMAE_OUT_TOKENS], err));
    }

    /* 5. global pool over the patch tokens → fc_norm → head */
    bp_tensor *o = n_outputs > AMAE_OUT_CLASS ? outputs[AMAE_OUT_CLASS] : NULL;
    const int64_t s_o[2] = {B, m->cfg.n_classes}, s_bd[2] = {B, D};
    if (o) TRY(check_shape(o, 2, s_o, "output 'logits_class'", err));
    if (o || c->keep) {
        bp_tensor *pooled, *ln;
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &pooled, err));
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &ln, err));
        if (!o) TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_o, &o, err));
        TRY(bp_nn_token_mean_forward(&m->pool, c, cur, pooled, err));
        TRY(bp_nn_layernorm_forward(&m->fc_norm, c, pooled, ln, err));
        TRY(bp_nn_linear_forward(&m->head, c, ln, o, err));
    }
    m->batch = B;
    m->n_tok = n_tok;
    m->ids_tok = ids_tok;
    return BP_OK;
}

bp_status amae_model_forward(amae_model *m, const bp_tensor *x, const amae_step *step, int32_t keep,
                             bp_tensor *const *outputs, uint32_t n_outputs, bp_error *err) {
    if (!x) return bp_error_set(err, BP_ERR_INVALID, "audiomae: no input");
    const int64_t s_in[4] = {x->ndim == 4 ? x->shape[0] : 1, 1, AMAE_FRAMES, AMAE_MELS};
    TRY(check_shape(x, 4, s_in, "input", err));
    if (x->shape[0] < 1) return bp_error_set(err, BP_ERR_INVALID, "audiomae: empty batch");
    if (keep) bp_nn_params_drop_bf16(&m->params); /* training: the weights will change */
    bp_nn_ctx c = {m->be, m->arena, keep ? m->training : 0, keep, m->bf16 && !keep ? &m->params : NULL};
    m->kept = 0;
    bp_nn_arena_reset(m->arena);
    bp_status st = forward(m, &c, x, keep ? step : NULL, outputs, n_outputs, err);
    if (st == BP_OK) m->kept = keep;
    return st;
}

static bp_status backward(amae_model *m, const bp_nn_ctx *c, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                          bp_tensor *d_input, bp_error *err) {
    const int64_t B = m->batch, D = m->cfg.dim, L = m->cfg.depth, n_tok = m->n_tok;
    const bp_tensor *d_tok = n_outputs > AMAE_OUT_TOKENS && d_outputs ? d_outputs[AMAE_OUT_TOKENS] : NULL;
    const bp_tensor *d_cls = n_outputs > AMAE_OUT_CLASS && d_outputs ? d_outputs[AMAE_OUT_CLASS] : NULL;
    const int64_t s_x[3] = {B, n_tok, D}, s_o[2] = {B, m->cfg.n_classes}, s_bd[2] = {B, D};
    if (d_input) {
        const int64_t s_in[4] = {B, 1, AMAE_FRAMES, AMAE_MELS};
        TRY(check_shape(d_input, 4, s_in, "input gradient", err));
    }
    if (d_tok) TRY(check_shape(d_tok, 3, s_x, "gradient of 'tokens'", err));
    if (d_cls) TRY(check_shape(d_cls, 2, s_o, "gradient of 'logits_class'", err));

    /* head → fc_norm → mean pool → d x_L (+ the tokens' own gradient) */
    bp_tensor *dxl;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &dxl, err));
    if (d_cls) {
        bp_tensor *dln, *dpool;
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &dln, err));
        TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_bd, &dpool, err));
        TRY(bp_nn_linear_backward(&m->head, c, d_cls, dln, err));
        TRY(bp_nn_layernorm_backward(&m->fc_norm, c, dln, dpool, err));
        TRY(bp_nn_token_mean_backward(&m->pool, c, dpool, dxl, err));
        if (d_tok) TRY(bp_nn_add_into(m->be, d_tok, dxl, err));
    } else if (d_tok) {
        TRY(bp_nn_copy(m->be, d_tok, dxl, err));
    } else {
        TRY(bp_op_fill(m->be, dxl, 0.0f, err));
    }

    /* blocks, last to first (two alternating gradient buffers) */
    bp_tensor *g[2], *cur = dxl;
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[0], err));
    TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 3, s_x, &g[1], err));
    for (int64_t i = L - 1, j = 0; i >= 0; i--, j++) {
        TRY(bp_nn_block_backward(&m->blocks[i], c, cur, g[j % 2], err));
        cur = g[j % 2];
    }

    /* x0 → the table: the CLS row → cls_token grad (pos_embed is frozen), patch rows → patch embed */
    const int64_t s_table[2] = {B * AMAE_PATCHES + 1, D}, s_tok[3] = {B, AMAE_PATCHES, D}, s_row[2] = {1, D};
    bp_tensor *dtable;
    TRY(bp_nn_arena_zeros(c->arena, 2, s_table, &dtable, err));
    TRY(bp_nn_scatter_add_rows(c, cur, m->ids_tok, dtable, err));
    if (m->d_cls) {
        bp_tensor drow = bp_nn_view(dtable, B * AMAE_PATCHES * D, 2, s_row), dcls = bp_nn_reshape(m->d_cls, 2, s_row);
        TRY(bp_nn_add_into(m->be, &drow, &dcls, err));
    }
    bp_tensor dtok = bp_nn_view(dtable, 0, 3, s_tok);
    TRY(bp_nn_patch_embed_backward(&m->patch, c, &dtok, d_input, err));
    if (d_input && m->used_specaug) TRY(bp_nn_specaug_backward(&m->specaug, c, d_input, d_input, err));
    return BP_OK;
}

bp_status amae_model_backward(amae_model *m, const bp_tensor *const *d_outputs, uint32_t n_outputs,
                              bp_tensor *d_input, bp_error *err) {
    if (!m->kept) return bp_error_set(err, BP_ERR_INVALID, "audiomae: backward needs a training forward first");
    bp_nn_ctx c = {m->be, m->arena, m->training, 0, NULL};
    size_t mark = bp_nn_arena_mark(m->arena);
    bp_status st = backward(m, &c, d_outputs, n_outputs, d_input, err);
    bp_nn_arena_rewind(m->arena, mark);
    return st;
}
