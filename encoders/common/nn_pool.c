/* bp_nn: pooling layers added for seldnet/audiomae — max pooling over NCHW
 * maps (SELDnet's frequency/time pooling) and the mean over a token range
 * (AudioMAE's global_pool). */
#include <stdio.h>

#include "nn_internal.h"

/* ============================================================ max pool == */

void bp_nn_maxpool2d_init(bp_nn_maxpool2d *p, int32_t kh, int32_t kw) {
    p->kh = kh;
    p->kw = kw;
    p->argmax = NULL;
}

int64_t bp_nn_maxpool2d_out_size(int64_t in, int32_t k) { return k > 0 ? in / k : 0; }

static bp_status pool_check(const bp_nn_maxpool2d *p, const bp_tensor *x, const bp_tensor *y, bp_error *err) {
    if (p->kh < 1 || p->kw < 1)
        return bp_error_set(err, BP_ERR_INVALID, "bp_nn maxpool2d: kernel %dx%d must be at least 1x1", (int)p->kh,
                            (int)p->kw);
    int ok = x && y && x->ndim == 4 && y->ndim == 4;
    if (ok) {
        const int64_t oh = bp_nn_maxpool2d_out_size(x->shape[2], p->kh),
                      ow = bp_nn_maxpool2d_out_size(x->shape[3], p->kw);
        ok = oh >= 1 && ow >= 1 && y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1] && y->shape[2] == oh &&
             y->shape[3] == ow;
    }
    if (ok) return BP_OK;
    char bx[96], by[96];
    return bp_error_set(err, BP_ERR_INVALID,
                        "bp_nn maxpool2d %dx%d: input %s and output %s do not match (output = floor(input / kernel))",
                        (int)p->kh, (int)p->kw, x ? bp_tensor_describe(x, bx, sizeof bx) : "NULL",
                        y ? bp_tensor_describe(y, by, sizeof by) : "NULL");
}

bp_status bp_nn_maxpool2d_forward(bp_nn_maxpool2d *p, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                  bp_error *err) {
    p->argmax = NULL;
    NN_TRY(pool_check(p, x, y, err));
    bp_tensor *arg = NULL;
    if (c->keep) NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_I32, 4, y->shape, &arg, err));
    bp_pool2d_desc d = {sizeof d, x, y, arg, p->kh, p->kw, p->kh, p->kw, 0, 0};
    bp_status st = bp_op_maxpool2d(c->be, &d, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "bp_nn maxpool2d: ");
        return st;
    }
    if (c->keep) {
        p->x = *x; /* by value: backward reads only the shapes */
        p->y = *y;
        p->argmax = arg;
    }
    return BP_OK;
}

bp_status bp_nn_maxpool2d_backward(bp_nn_maxpool2d *p, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                   bp_error *err) {
    if (!p->argmax) return bp_error_set(err, BP_ERR_INVALID, "bp_nn maxpool2d: backward without a kept forward");
    if (!dx) return BP_OK;
    bp_pool2d_desc d = {sizeof d, &p->x, &p->y, p->argmax, p->kh, p->kw, p->kh, p->kw, 0, 0};
    bp_status st = bp_op_maxpool2d_backward(c->be, &d, dy, dx, err);
    if (st != BP_OK) bp_error_prefix(err, "bp_nn maxpool2d: ");
    return st;
}

/* ========================================================== token mean == */

static bp_status mean_check(const bp_nn_token_mean *m, const bp_tensor *x, const bp_tensor *y, bp_error *err) {
    int ok = x && y && x->ndim == 3 && y->ndim == 2 && m->skip >= 0 && x->shape[1] > m->skip &&
             y->shape[0] == x->shape[0] && y->shape[1] == x->shape[2];
    if (ok) return BP_OK;
    char bx[96], by[96];
    return bp_error_set(err, BP_ERR_INVALID,
                        "bp_nn token mean (skip %lld): input %s must be [B, N > %lld, D] and output %s [B, D]",
                        (long long)m->skip, x ? bp_tensor_describe(x, bx, sizeof bx) : "NULL", (long long)m->skip,
                        y ? bp_tensor_describe(y, by, sizeof by) : "NULL");
}

void bp_nn_token_mean_init(bp_nn_token_mean *m, int64_t skip) {
    m->skip = skip;
    m->batch = m->n_tok = m->dim = 0;
    m->kept = 0;
}

bp_status bp_nn_token_mean_forward(bp_nn_token_mean *m, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                   bp_error *err) {
    m->kept = 0;
    NN_TRY(mean_check(m, x, y, err));
    const int64_t B = x->shape[0], N = x->shape[1], D = x->shape[2], n = N - m->skip;
    const size_t mark = bp_nn_arena_mark(c->arena);
    const int64_t s_ones[2] = {n, 1}, s_rows[2] = {n, D}, s_col[2] = {D, 1};
    bp_tensor *ones;
    bp_status st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_ones, &ones, err);
    if (st == BP_OK) st = bp_op_fill(c->be, ones, 1.0f, err);
    /* per sample: y_b [D, 1] = (1/n) · x_bᵀ [D, n] · 1 [n, 1] (the same sum whatever the batch) */
    for (int64_t b = 0; st == BP_OK && b < B; b++) {
        bp_tensor xb = bp_nn_view(x, (b * N + m->skip) * D, 2, s_rows), yb = bp_nn_view(y, b * D, 2, s_col);
        st = bp_op_matmul(c->be, &xb, ones, &yb, NULL, 1, 0, (float)(1.0 / (double)n), 0.0f, err);
    }
    bp_nn_arena_rewind(c->arena, mark);
    if (st != BP_OK) {
        bp_error_prefix(err, "bp_nn token mean: ");
        return st;
    }
    if (c->keep) {
        m->batch = B;
        m->n_tok = N;
        m->dim = D;
        m->kept = 1;
    }
    return BP_OK;
}

bp_status bp_nn_token_mean_backward(bp_nn_token_mean *m, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                    bp_error *err) {
    if (!m->kept) return bp_error_set(err, BP_ERR_INVALID, "bp_nn token mean: backward without a kept forward");
    if (!dx) return BP_OK;
    const int64_t B = m->batch, N = m->n_tok, D = m->dim, n = N - m->skip;
    if (dy->ndim != 2 || dy->shape[0] != B || dy->shape[1] != D || dx->ndim != 3 || dx->shape[0] != B ||
        dx->shape[1] != N || dx->shape[2] != D) {
        char a[96], b[96];
        return bp_error_set(err, BP_ERR_INVALID, "bp_nn token mean: gradients %s / %s, forward was [%lld, %lld, %lld]",
                            bp_tensor_describe(dy, a, sizeof a), bp_tensor_describe(dx, b, sizeof b), (long long)B,
                            (long long)N, (long long)D);
    }
    const size_t mark = bp_nn_arena_mark(c->arena);
    const int64_t s_ones[2] = {n, 1}, s_rows[2] = {n, D}, s_row[2] = {1, D}, s_skip[2] = {m->skip, D};
    bp_tensor *ones;
    bp_status st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, s_ones, &ones, err);
    if (st == BP_OK) st = bp_op_fill(c->be, ones, 1.0f, err);
    /* per sample: dx_b[skip:] [n, D] = (1/n) · 1 [n, 1] · dy_b [1, D]; dx_b[:skip] = 0 */
    for (int64_t b = 0; st == BP_OK && b < B; b++) {
        bp_tensor dxb = bp_nn_view(dx, (b * N + m->skip) * D, 2, s_rows), dyb = bp_nn_view(dy, b * D, 2, s_row);
        st = bp_op_matmul(c->be, ones, &dyb, &dxb, NULL, 0, 0, (float)(1.0 / (double)n), 0.0f, err);
        if (st == BP_OK && m->skip > 0) {
            bp_tensor head = bp_nn_view(dx, b * N * D, 2, s_skip);
            st = bp_op_fill(c->be, &head, 0.0f, err);
        }
    }
    bp_nn_arena_rewind(c->arena, mark);
    if (st != BP_OK) bp_error_prefix(err, "bp_nn token mean: ");
    return st;
}
