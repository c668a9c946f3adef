/* bp_nn token masking, row gather/scatter and SpecAugment: AudioMAE keep
 * counts (48 of 64 rows, 6 of 8 columns at p = 0.25), ids unique, in range,
 * sorted per sample, seed-determined and different per sample; gather's
 * backward (scatter-add) against finite differences; SpecAugment masks
 * exactly the sampled rows/columns with widths below the maxima, and its
 * backward masks the gradient the same way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "nn_testutil.h"

typedef struct g_case {
    nt_env *e;
    bp_tensor *table, *ids, *y, *dtable;
} g_case;

static bp_status fwd(void *u, bp_error *err) {
    g_case *c = u;
    return bp_nn_gather_rows(&c->e->ctx, c->table, c->ids, c->y, err);
}

static bp_status bwd(void *u, const bp_tensor *dy, bp_error *err) {
    g_case *c = u;
    bp_status st = bp_op_fill(c->e->be, c->dtable, 0.0f, err);
    return st != BP_OK ? st : bp_nn_scatter_add_rows(&c->e->ctx, dy, c->ids, c->dtable, err);
}

static void test_ids(void) {
    CHECK(bp_nn_mask2d_keep(64, 0.25) == 48 && bp_nn_mask2d_keep(8, 0.25) == 6);
    CHECK(bp_nn_mask2d_keep(64, 0.3) == 44 && bp_nn_mask2d_keep(8, 0.0) == 8 && bp_nn_mask2d_keep(8, 1.0) == 0);
    enum { B = 3, T = 64, F = 8, KEEP = 48 * 6 };
    int32_t *ids = malloc(B * KEEP * sizeof *ids), *ids2 = malloc(B * KEEP * sizeof *ids2);
    CHECK(bp_nn_mask2d_ids(42, 100, B, T, F, 0.25, 0.25, ids, NULL) == BP_OK);
    int ok = 1;
    for (int b = 0; b < B; b++) {
        int rows[T] = {0}, cols[F] = {0};
        for (int i = 0; i < KEEP; i++) {
            int32_t v = ids[b * KEEP + i] - b * T * F;
            ok &= v >= 0 && v < T * F;
            if (i > 0) ok &= ids[b * KEEP + i] > ids[b * KEEP + i - 1]; /* sorted, unique */
            if (v >= 0 && v < T * F) rows[v / F] = 1, cols[v % F] = 1;
        }
        int nr = 0, nc = 0;
        for (int t = 0; t < T; t++) nr += rows[t];
        for (int f = 0; f < F; f++) nc += cols[f];
        ok &= nr == 48 && nc == 6;
    }
    CHECK(ok);
    /* samples differ, the same seed repeats, another seed differs */
    int differ = 0;
    for (int i = 0; i < KEEP; i++) differ |= (ids[i] != ids[KEEP + i] - T * F);
    CHECK(differ);
    CHECK(bp_nn_mask2d_ids(42, 100, B, T, F, 0.25, 0.25, ids2, NULL) == BP_OK);
    CHECK(memcmp(ids, ids2, B * KEEP * sizeof *ids) == 0);
    CHECK(bp_nn_mask2d_ids(43, 100, B, T, F, 0.25, 0.25, ids2, NULL) == BP_OK);
    CHECK(memcmp(ids, ids2, B * KEEP * sizeof *ids) != 0);
    /* no masking keeps everything in order */
    CHECK(bp_nn_mask2d_ids(42, 100, 1, T, F, 0.0, 0.0, ids2, NULL) == BP_OK);
    ok = 1;
    for (int i = 0; i < T * F; i++) ok &= ids2[i] == i;
    CHECK(ok);
    free(ids);
    free(ids2);
}

static void test_gather(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    const int64_t st_[2] = {10, 4}, sy[2] = {6, 4};
    g_case c = {e, nt_new(e, 2, st_), NULL, nt_new(e, 2, sy), nt_new(e, 2, st_)};
    nt_fill(c.table, 1, 1.0);
    const int32_t ids[6] = {3, 0, 9, 3, 5, 3}; /* repeated rows accumulate */
    bp_nn_arena_reset(e->arena);
    CHECK_OK(bp_nn_ids_upload(&e->ctx, ids, 6, &c.ids, &err), &err);
    size_t base = bp_nn_arena_mark(e->arena);
    CHECK_OK(fwd(&c, &err), &err);
    float *t = nt_read(c.table), *y = nt_read(c.y);
    int ok = 1;
    for (int i = 0; i < 6; i++)
        for (int d = 0; d < 4; d++) ok &= y[i * 4 + d] == t[ids[i] * 4 + d];
    CHECK(ok);
    free(t);
    free(y);
    /* finite differences (the projection helper resets the arena: keep ids below) */
    nt_fd fd = {e, &c, fwd, bwd, c.y, NULL};
    fd.r = nt_new(e, 2, sy);
    nt_fill(fd.r, 9, 1.0);
    bp_status s = bwd(&c, fd.r, &err);
    CHECK_OK(s, &err);
    if (s == BP_OK) {
        float *g = nt_read(c.dtable), *r = nt_read(fd.r);
        double emax = 0;
        for (int row = 0; row < 10; row++)
            for (int d = 0; d < 4; d++) {
                double want = 0;
                for (int i = 0; i < 6; i++)
                    if (ids[i] == row) want += r[i * 4 + d];
                emax = fmax(emax, fabs(g[row * 4 + d] - want));
            }
        printf("scatter-add (backward of gather) err %.3e\n", emax);
        CHECK(emax < 1e-6);
        free(g);
        free(r);
    }
    (void)base;
    bp_tensor_free(fd.r);
    bp_tensor_free(c.table);
    bp_tensor_free(c.y);
    bp_tensor_free(c.dtable);
}

static void test_specaug(nt_env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_nn_specaug s;
    memset(&s, 0, sizeof s);
    int max_tw = 0, max_fw = 0, ok = 1;
    for (uint64_t seed = 0; seed < 200; seed++) {
        bp_nn_specaug_sample(&s, seed, 5, 1024, 128, 192, 48);
        ok &= s.t0 >= 0 && s.t1 <= 1024 && s.t1 - s.t0 < 192 && s.f0 >= 0 && s.f1 <= 128 && s.f1 - s.f0 < 48;
        if (s.t1 - s.t0 > max_tw) max_tw = (int)(s.t1 - s.t0);
        if (s.f1 - s.f0 > max_fw) max_fw = (int)(s.f1 - s.f0);
    }
    printf("specaugment: widest time mask %d (< 192), widest freq mask %d (< 48) over 200 seeds\n", max_tw, max_fw);
    CHECK(ok && max_tw > 150 && max_fw > 35);
    bp_nn_specaug_sample(&s, 7, 5, 1024, 128, 0, 0);
    CHECK(s.t0 == s.t1 && s.f0 == s.f1);

    const int64_t sx[4] = {2, 1, 20, 12};
    bp_tensor *x = nt_new(e, 4, sx), *y = nt_new(e, 4, sx), *dx = nt_new(e, 4, sx);
    nt_fill(x, 3, 1.0);
    bp_nn_specaug_sample(&s, 11, 5, 20, 12, 8, 6);
    s.t0 = 4, s.t1 = 9, s.f0 = 2, s.f1 = 5; /* fixed masks for the check */
    bp_nn_arena_reset(e->arena);
    CHECK_OK(bp_nn_specaug_forward(&s, &e->ctx, x, y, &err), &err);
    CHECK_OK(bp_nn_specaug_backward(&s, &e->ctx, x, dx, &err), &err);
    float *xv = nt_read(x), *yv = nt_read(y), *dv = nt_read(dx);
    ok = 1;
    for (int i = 0; i < 2 * 20 * 12; i++) {
        int t = (i / 12) % 20, f = i % 12;
        int masked = (t >= 4 && t < 9) || (f >= 2 && f < 5);
        ok &= yv[i] == (masked ? 0.0f : xv[i]) && dv[i] == yv[i];
    }
    CHECK(ok);
    free(xv);
    free(yv);
    free(dv);
    bp_tensor_free(x);
    bp_tensor_free(y);
    bp_tensor_free(dx);
}

int main(void) {
    test_ids();
    nt_env e;
    int rc = nt_env_init(&e);
    if (rc) return rc;
    test_gather(&e);
    test_specaug(&e);
    nt_env_free(&e);
    return TEST_RESULT();
}
