/* bp_nn: AudioMAE 2-D token masking, row gather/scatter, SpecAugment. */
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

int64_t bp_nn_mask2d_keep(int64_t n, double p) { return (int64_t)((double)n * (1.0 - p)); }

/* The k smallest of u(seed, purpose, base + i), i < n (ties by index), sorted
 * ascending by i, into keep[k]. `order` is scratch [n]. */
static void smallest_k(uint64_t seed, uint64_t purpose, uint64_t base, int64_t n, int64_t k, int64_t *order,
                       double *noise, int32_t *keep) {
    for (int64_t i = 0; i < n; i++) {
        noise[i] = bp_nn_rng_uniform(seed, purpose, base + (uint64_t)i);
        order[i] = i;
    }
    /* Selection by insertion sort on (noise, index): n ≤ a few hundred. */
    for (int64_t i = 1; i < n; i++) {
        int64_t v = order[i], j = i;
        while (j > 0 && (noise[order[j - 1]] > noise[v] || (noise[order[j - 1]] == noise[v] && order[j - 1] > v))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    /* The first k, ascending by index. */
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int chosen = 0;
        for (int64_t r = 0; r < k; r++)
            if (order[r] == i) chosen = 1;
        if (chosen) keep[m++] = (int32_t)i;
    }
}

bp_status bp_nn_mask2d_ids(uint64_t seed, uint64_t purpose, int64_t batch, int64_t T, int64_t F, double p_t,
                           double p_f, int32_t *ids, bp_error *err) {
    const int64_t kt = bp_nn_mask2d_keep(T, p_t), kf = bp_nn_mask2d_keep(F, p_f);
    const int64_t nmax = T > F ? T : F;
    int64_t *order = malloc((size_t)(nmax > 0 ? nmax : 1) * sizeof *order);
    double *noise = malloc((size_t)(nmax > 0 ? nmax : 1) * sizeof *noise);
    int32_t *rows = malloc((size_t)(T > 0 ? T : 1) * sizeof *rows);
    int32_t *cols = malloc((size_t)(F > 0 ? F : 1) * sizeof *cols);
    bp_status st = BP_OK;
    if (!order || !noise || !rows || !cols) {
        st = bp_error_set(err, BP_ERR_NOMEM, "token masking: out of memory for a %lldx%lld grid", (long long)T,
                          (long long)F);
    } else {
        for (int64_t b = 0, o = 0; b < batch; b++) {
            smallest_k(seed, purpose, (uint64_t)(b * T), T, kt, order, noise, rows);
            smallest_k(seed, purpose + 1, (uint64_t)(b * F), F, kf, order, noise, cols);
            for (int64_t t = 0; t < kt; t++)
                for (int64_t f = 0; f < kf; f++) ids[o++] = (int32_t)(b * T * F + rows[t] * F + cols[f]);
        }
    }
    free(order);
    free(noise);
    free(rows);
    free(cols);
    return st;
}

bp_status bp_nn_ids_upload(const bp_nn_ctx *c, const int32_t *ids, int64_t n, bp_tensor **out, bp_error *err) {
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_I32, 1, &n, out, err));
    return bp_tensor_write(*out, ids, (size_t)n * sizeof *ids, err);
}

bp_status bp_nn_gather_rows(const bp_nn_ctx *c, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                            bp_error *err) {
    bp_tensor t2 = nn_as2d(table, nn_last(table)), y2 = nn_as2d(y, nn_last(y));
    return bp_op_get_rows(c->be, &t2, ids, &y2, err);
}

bp_status bp_nn_scatter_add_rows(const bp_nn_ctx *c, const bp_tensor *src, const bp_tensor *ids, bp_tensor *table,
                                 bp_error *err) {
    bp_tensor t2 = nn_as2d(table, nn_last(table)), s2 = nn_as2d(src, nn_last(src));
    return bp_op_add_rows(c->be, &s2, ids, &t2, err);
}

/* torchaudio mask_along_axis: [start, end) of one mask over `size`. */
static void mask_range(uint64_t seed, uint64_t purpose, int64_t size, int64_t max_w, int64_t *start, int64_t *end) {
    *start = *end = 0;
    if (max_w <= 0 || size <= 0) return;
    double value = bp_nn_rng_uniform(seed, purpose, 0) * (double)max_w;
    double min_value = bp_nn_rng_uniform(seed, purpose, 1) * ((double)size - value);
    *start = (int64_t)min_value;
    *end = *start + (int64_t)value;
    if (*end > size) *end = size;
}

void bp_nn_specaug_sample(bp_nn_specaug *s, uint64_t seed, uint64_t purpose, int64_t T, int64_t F, int64_t max_t,
                          int64_t max_f) {
    mask_range(seed, purpose, F, max_f, &s->f0, &s->f1);
    mask_range(seed, purpose + 1, T, max_t, &s->t0, &s->t1);
}

bp_status bp_nn_specaug_forward(bp_nn_specaug *s, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                bp_error *err) {
    if (!x || x->ndim < 2)
        return bp_error_set(err, BP_ERR_INVALID, "SpecAugment: input must be [..., time, frequency]");
    const int64_t T = x->shape[x->ndim - 2], F = x->shape[x->ndim - 1];
    if (s->t0 < 0 || s->t1 > T || s->t0 > s->t1 || s->f0 < 0 || s->f1 > F || s->f0 > s->f1)
        return bp_error_set(err, BP_ERR_INVALID,
                            "SpecAugment: masks [%lld, %lld) x [%lld, %lld) outside a %lldx%lld map",
                            (long long)s->t0, (long long)s->t1, (long long)s->f0, (long long)s->f1, (long long)T,
                            (long long)F);
    /* mask [T, F] = rows ⊗ columns, made with fills on contiguous views. */
    const int64_t sm[2] = {T, F};
    bp_tensor *mask, *cols;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 2, sm, &mask, err));
    const size_t mark = bp_nn_arena_mark(c->arena);
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 1, &F, &cols, err));
    NN_TRY(bp_op_fill(c->be, mask, 1.0f, err));
    NN_TRY(bp_op_fill(c->be, cols, 1.0f, err));
    if (s->t1 > s->t0) {
        const int64_t sr[2] = {s->t1 - s->t0, F};
        bp_tensor rows = bp_nn_view(mask, s->t0 * F, 2, sr);
        NN_TRY(bp_op_fill(c->be, &rows, 0.0f, err));
    }
    if (s->f1 > s->f0) {
        const int64_t n = s->f1 - s->f0;
        bp_tensor part = bp_nn_view(cols, s->f0, 1, &n);
        NN_TRY(bp_op_fill(c->be, &part, 0.0f, err));
    }
    NN_TRY(bp_op_binary(c->be, BP_BINARY_MUL, mask, cols, mask, err));
    bp_nn_arena_rewind(c->arena, mark);
    s->mask = mask;
    return bp_op_binary(c->be, BP_BINARY_MUL, x, mask, y, err);
}

bp_status bp_nn_specaug_backward(bp_nn_specaug *s, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                 bp_error *err) {
    if (!s->mask) return bp_error_set(err, BP_ERR_INVALID, "SpecAugment: backward without a forward");
    return bp_op_binary(c->be, BP_BINARY_MUL, dy, s->mask, dx, err);
}
