/* bp_nn: the transformer MLP fc2(GELU(fc1(x))) with exact erf GELU. */
#include <stdio.h>

#include "nn_internal.h"

bp_status bp_nn_mlp_init(bp_nn_mlp *m, bp_nn_params *ps, const char *prefix, int64_t dim, int64_t hidden,
                         int32_t flags, int32_t layer_id, bp_error *err) {
    char name[256];
    m->dim = dim;
    m->hidden = hidden;
    m->h = m->g = NULL;
    snprintf(name, sizeof name, "%s.fc1", prefix);
    NN_TRY(bp_nn_linear_init(&m->fc1, ps, name, dim, hidden, 1, flags, layer_id, err));
    snprintf(name, sizeof name, "%s.fc2", prefix);
    return bp_nn_linear_init(&m->fc2, ps, name, hidden, dim, 1, flags, layer_id, err);
}

/* The shape of x with its last dim replaced by n. */
static void hidden_shape(const bp_tensor *x, int64_t n, int64_t *shape) {
    for (int32_t i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = n;
}

bp_status bp_nn_mlp_forward(bp_nn_mlp *m, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    const char *who = nn_name(m->fc1.w);
    NN_TRY(nn_check_last(x, m->dim, who, "input", err));
    int64_t hs[BP_MAX_DIMS];
    hidden_shape(x, m->hidden, hs);
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *h, *g;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, x->ndim, hs, &h, err));
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, x->ndim, hs, &g, err));
    NN_TRY(bp_nn_linear_forward(&m->fc1, c, x, h, err));
    NN_OP(bp_op_unary(c->be, BP_UNARY_GELU, h, g, err));
    NN_TRY(bp_nn_linear_forward(&m->fc2, c, g, y, err));
    if (c->keep) {
        m->h = h;
        m->g = g;
    } else {
        m->h = m->g = NULL;
        bp_nn_arena_rewind(c->arena, mark);
    }
    return BP_OK;
}

bp_status bp_nn_mlp_backward(bp_nn_mlp *m, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx, bp_error *err) {
    const char *who = nn_name(m->fc1.w);
    if (!m->h) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    size_t mark = bp_nn_arena_mark(c->arena);
    bp_tensor *dg, *dh;
    bp_status st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, m->h->ndim, m->h->shape, &dg, err);
    if (st == BP_OK) st = bp_nn_arena_get(c->arena, BP_DTYPE_F32, m->h->ndim, m->h->shape, &dh, err);
    if (st == BP_OK) st = bp_nn_linear_backward(&m->fc2, c, dy, dg, err);
    if (st == BP_OK) {
        st = bp_op_unary_backward(c->be, BP_UNARY_GELU, m->h, dg, dh, err);
        if (st != BP_OK) bp_error_prefix(err, "%s: ", who);
    }
    if (st == BP_OK) st = bp_nn_linear_backward(&m->fc1, c, dh, dx, err);
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}
