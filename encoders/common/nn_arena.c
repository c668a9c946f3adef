/* bp_nn: the activation arena, tensor views and the two copy/add helpers. */
#include <stdlib.h>
#include <string.h>

#include "bp_nn.h"

/* One slot: a backend allocation of `cap` bytes and the tensor handed out
 * over it (a view whose shape changes per use). Slots are allocated one by
 * one so the bp_tensor pointers given to callers never move. */
typedef struct arena_slot {
    bp_tensor *store; /* owning tensor (U8 [cap]) */
    bp_tensor view;   /* what callers see */
    size_t cap;
} arena_slot;

struct bp_nn_arena {
    bp_backend *be;
    arena_slot **slots;
    size_t n_slots, cap_slots, cursor;
    size_t bytes;
};

bp_tensor bp_nn_view(const bp_tensor *t, int64_t offset, int32_t ndim, const int64_t *shape) {
    /* Interior pointer into the allocation (see bp_nn.h "tensors"). */
    void *data = (char *)t->data + (size_t)offset * bp_dtype_block_bytes(t->dtype);
    bp_tensor v = bp_tensor_view(t->dtype, ndim, shape, data);
    v.backend = t->backend;
    v.name = t->name;
    return v;
}

bp_tensor bp_nn_reshape(const bp_tensor *t, int32_t ndim, const int64_t *shape) {
    return bp_nn_view(t, 0, ndim, shape);
}

bp_status bp_nn_copy(bp_backend *be, const bp_tensor *x, bp_tensor *y, bp_error *err) {
    if (bp_tensor_numel(x) != bp_tensor_numel(y))
        return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn copy: %lld elements into %lld",
                            (long long)bp_tensor_numel(x), (long long)bp_tensor_numel(y));
    bp_tensor xv = bp_nn_reshape(x, y->ndim, y->shape);
    return bp_op_affine(be, &xv, 1.0f, 0.0f, y, err);
}

bp_status bp_nn_add_into(bp_backend *be, const bp_tensor *x, bp_tensor *acc, bp_error *err) {
    return bp_op_binary(be, BP_BINARY_ADD, acc, x, acc, err);
}

bp_status bp_nn_arena_new(bp_backend *be, bp_nn_arena **out, bp_error *err) {
    *out = NULL;
    bp_nn_arena *a = calloc(1, sizeof *a);
    if (!a) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn arena: out of memory");
    a->be = be;
    *out = a;
    return BP_OK;
}

void bp_nn_arena_free(bp_nn_arena *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_slots; i++) {
        bp_tensor_free(a->slots[i]->store);
        free(a->slots[i]);
    }
    free(a->slots);
    free(a);
}

static bp_status slot_reserve(bp_nn_arena *a, arena_slot *s, size_t bytes, bp_error *err) {
    if (s->store && s->cap >= bytes) return BP_OK;
    /* Grow by at least 1/8 so that slowly growing requests do not realloc each time. */
    size_t want = bytes + bytes / 8;
    if (want < 256) want = 256;
    bp_tensor_free(s->store);
    s->store = NULL;
    a->bytes -= s->cap;
    s->cap = 0;
    const int64_t shape[1] = {(int64_t)want};
    bp_status st = bp_tensor_new(a->be, BP_DTYPE_U8, 1, shape, &s->store, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "bp_nn arena (%zu bytes): ", want);
        return st;
    }
    s->cap = want;
    a->bytes += want;
    return BP_OK;
}

bp_status bp_nn_arena_get(bp_nn_arena *a, int32_t dtype, int32_t ndim, const int64_t *shape, bp_tensor **out,
                          bp_error *err) {
    *out = NULL;
    if (ndim < 0 || ndim > BP_MAX_DIMS || bp_dtype_block_elems(dtype) != 1 || bp_dtype_block_bytes(dtype) == 0)
        return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn arena: bad request (dtype %s, rank %d)",
                            bp_dtype_name(dtype), (int)ndim);
    bp_tensor probe = bp_tensor_view(dtype, ndim, shape, NULL);
    for (int32_t i = 0; i < ndim; i++)
        if (shape[i] < 0) return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn arena: negative dimension");
    size_t bytes = bp_tensor_nbytes(&probe);
    if (a->cursor == a->n_slots) {
        if (a->n_slots == a->cap_slots) {
            size_t nc = a->cap_slots ? 2 * a->cap_slots : 64;
            arena_slot **p = realloc(a->slots, nc * sizeof *p);
            if (!p) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn arena: out of memory");
            a->slots = p;
            a->cap_slots = nc;
        }
        arena_slot *s = calloc(1, sizeof *s);
        if (!s) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn arena: out of memory");
        a->slots[a->n_slots++] = s;
    }
    arena_slot *s = a->slots[a->cursor];
    bp_status st = slot_reserve(a, s, bytes, err);
    if (st != BP_OK) return st;
    s->view = bp_tensor_view(dtype, ndim, shape, s->store->data);
    s->view.backend = s->store->backend;
    a->cursor++;
    *out = &s->view;
    return BP_OK;
}

bp_status bp_nn_arena_zeros(bp_nn_arena *a, int32_t ndim, const int64_t *shape, bp_tensor **out, bp_error *err) {
    bp_status st = bp_nn_arena_get(a, BP_DTYPE_F32, ndim, shape, out, err);
    if (st != BP_OK) return st;
    return bp_op_fill(a->be, *out, 0.0f, err);
}

size_t bp_nn_arena_mark(const bp_nn_arena *a) { return a->cursor; }

void bp_nn_arena_rewind(bp_nn_arena *a, size_t mark) {
    if (mark < a->cursor) a->cursor = mark;
}

void bp_nn_arena_reset(bp_nn_arena *a) { a->cursor = 0; }

size_t bp_nn_arena_bytes(const bp_nn_arena *a) { return a->bytes; }
