/* Cross-backend op test (in the spirit of ggml's test-backend-ops).
 *
 * Loads every backend component the registry offers (score > 0), runs many
 * cases of every op of ops.h through the core API on seeded random inputs,
 * and compares each result with a plain float64 reference computed here.
 * Errors are measured relative to max(|ref|, scale), where `scale` is the
 * size of the terms that made the element (Σ|a·b| for a matmul, …), so that
 * cancellation does not turn rounding into a false failure.
 * Prints, per backend and op, the cases run and the largest error; an op a
 * backend does not implement (BP_ERR_UNSUPPORTED) is reported as skipped,
 * except for the cpu backend, which must implement all of them. Also checks
 * that the core rejects malformed calls with a message, and says which
 * backends were skipped and why.
 *
 * The training ops (ABI 1.1) are tested in backend_ops_train.c, which also
 * runs every training op twice on cpu instances with 1, 2 and 3 threads and
 * checks the bytes (determinism).
 *
 *   test_backend_ops [groups]   groups: comma-separated subset of matmul,
 *                               conv2d, unary, binary, affine, softmax, norms,
 *                               reduce, convert, permute, get_rows, fill,
 *                               rejects, unary_backward, softmax_backward,
 *                               layernorm_backward, conv2d_backward, sum_to,
 *                               batchnorm, maxpool2d, add_rows, adamw,
 *                               train_rejects, determinism (default: all) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/ops.h"
#include "batpipe/registry.h"
#include "backend_ops_train.h"
#include "bp_test.h"
#include "ops_test_util.h"

static float bf16_round(float x) { return bp_bf16_to_f32(bp_f32_to_bf16(x)); }

/* ------------------------------------------------------------------ matmul -- */

typedef struct mm_case {
    int64_t m, k, n;
    int nbatch;         /* leading dims of a and c: 0, 1 or 2 */
    int64_t bdims[2];
    int b_shared;       /* b is 2-D while a is batched */
    int trans_a, trans_b, bias;
    float alpha, beta;
    int32_t dtype;
} mm_case;

static void run_matmul(suite *s, const mm_case *mc) {
    int64_t batch = 1;
    for (int i = 0; i < mc->nbatch; i++) batch *= mc->bdims[i];
    int64_t M = mc->m, K = mc->k, N = mc->n, bb = mc->b_shared ? 1 : batch;
    int32_t nd = 2 + mc->nbatch, bnd = mc->b_shared ? 2 : nd;
    int64_t as[4], bs[4], cs[4];
    for (int i = 0; i < mc->nbatch; i++) as[i] = bs[i] = cs[i] = mc->bdims[i];
    as[nd - 2] = mc->trans_a ? K : M, as[nd - 1] = mc->trans_a ? M : K;
    bs[bnd - 2] = mc->trans_b ? N : K, bs[bnd - 1] = mc->trans_b ? K : N;
    if (mc->b_shared) bs[0] = mc->trans_b ? N : K, bs[1] = mc->trans_b ? K : N;
    cs[nd - 2] = M, cs[nd - 1] = N;
    size_t na = (size_t)(batch * M * K), nb = (size_t)(bb * K * N), nc = (size_t)(batch * M * N);
    float *a = xalloc(na * 4), *b = xalloc(nb * 4), *c0 = xalloc(nc * 4), *c = xalloc(nc * 4), *bias = xalloc(N * 4);
    uint16_t *a16 = xalloc(na * 2), *b16 = xalloc(nb * 2);
    double *ref = xalloc(nc * 8), *scale = xalloc(nc * 8);
    int bf = mc->dtype == BP_DTYPE_BF16;
    fill_uniform(&s->r, a, (int64_t)na, -1, 1);
    fill_uniform(&s->r, b, (int64_t)nb, -1, 1);
    fill_uniform(&s->r, bias, N, -1, 1);
    for (size_t i = 0; i < na; i++) a16[i] = bp_f32_to_bf16(a[i]), a[i] = bf ? bf16_round(a[i]) : a[i];
    for (size_t i = 0; i < nb; i++) b16[i] = bp_f32_to_bf16(b[i]), b[i] = bf ? bf16_round(b[i]) : b[i];
    if (mc->beta != 0.0f)
        fill_uniform(&s->r, c0, (int64_t)nc, -1, 1);
    else
        for (size_t i = 0; i < nc; i++) c0[i] = NAN; /* beta = 0 must not read c */

    for (int64_t p = 0; p < batch; p++) {
        const float *ap = a + p * M * K, *bp = b + (mc->b_shared ? 0 : p) * K * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0, mag = 0.0;
                for (int64_t q = 0; q < K; q++) {
                    double av = mc->trans_a ? ap[q * M + i] : ap[i * K + q];
                    double bv = mc->trans_b ? bp[j * K + q] : bp[q * N + j];
                    acc += av * bv;
                    mag += fabs(av * bv);
                }
                size_t o = (size_t)(p * M * N + i * N + j);
                double r = (double)mc->alpha * acc, sc = fabs((double)mc->alpha) * mag;
                if (mc->beta != 0.0f) r += (double)mc->beta * c0[o], sc += fabs((double)mc->beta * c0[o]);
                if (mc->bias) r += bias[j], sc += fabs(bias[j]);
                ref[o] = r;
                scale[o] = sc;
            }
    }
    int64_t biasshape[1] = {N};
    bp_tensor *ta = dev_tensor(s, mc->dtype, nd, as, bf ? (void *)a16 : (void *)a);
    bp_tensor *tb = dev_tensor(s, mc->dtype, bnd, bs, bf ? (void *)b16 : (void *)b);
    bp_tensor *tc = dev_tensor(s, BP_DTYPE_F32, nd, cs, c0);
    bp_tensor *tbias = mc->bias ? dev_tensor(s, BP_DTYPE_F32, 1, biasshape, bias) : NULL;
    char what[160];
    snprintf(what, sizeof what, "%s M%lld K%lld N%lld batch%lld%s%s%s%s alpha %g beta %g", bp_dtype_name(mc->dtype),
             (long long)M, (long long)K, (long long)N, (long long)batch, mc->b_shared ? " shared-b" : "",
             mc->trans_a ? " aT" : "", mc->trans_b ? " bT" : "", mc->bias ? " +bias" : "", (double)mc->alpha,
             (double)mc->beta);
    if (ta && tb && tc && (tbias || !mc->bias)) {
        bp_error err = BP_ERROR_INIT;
        bp_status st = bp_op_matmul(s->be, ta, tb, tc, tbias, mc->trans_a, mc->trans_b, mc->alpha, mc->beta, &err);
        double e = 0.0;
        if (st == BP_OK) {
            dev_read(s, tc, c);
            e = max_err(c, ref, scale, (int64_t)nc);
        }
        /* accumulation in F32 over K terms: a few ulp of Σ|a·b| */
        record(s, bf ? "matmul_bf16" : "matmul_f32", 2e-5, st, &err, e, what);
    }
    bp_tensor_free(ta);
    bp_tensor_free(tb);
    bp_tensor_free(tc);
    bp_tensor_free(tbias);
    free(a), free(b), free(c0), free(c), free(bias), free(a16), free(b16), free(ref), free(scale);
}

static void test_matmul(suite *s) {
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {16, 16, 16}, {33, 17, 65}, {64, 96, 48}, {5, 300, 3}};
    static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 0.0f}, {1.0f, 1.0f}, {-2.0f, 0.25f}};
    /* batch forms: none; [2] batched b; [3] shared b; [2,2] batched b; [2,3] shared b */
    static const struct { int nb; int64_t d0, d1; int shared; } forms[] = {
        {0, 1, 1, 0}, {1, 2, 1, 0}, {1, 3, 1, 1}, {2, 2, 2, 0}, {2, 2, 3, 1}};
    int counter = 0;
    for (int dt = 0; dt < 2; dt++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (size_t fi = 0; fi < sizeof forms / sizeof forms[0]; fi++)
                for (int rep = 0; rep < 4; rep++, counter++) {
                    mm_case mc;
                    memset(&mc, 0, sizeof mc);
                    mc.m = shapes[si][0], mc.k = shapes[si][1], mc.n = shapes[si][2];
                    mc.nbatch = forms[fi].nb;
                    mc.bdims[0] = forms[fi].d0, mc.bdims[1] = forms[fi].d1;
                    mc.b_shared = forms[fi].shared;
                    /* each shape/form meets every transpose pair; the 32 combinations of transposes,
                     * bias and alpha/beta come round every 32 cases, ~4 times per dtype */
                    mc.trans_a = counter & 1;
                    mc.trans_b = (counter >> 1) & 1;
                    mc.bias = (counter >> 2) & 1;
                    mc.alpha = ab[(counter >> 3) & 3][0];
                    mc.beta = ab[(counter >> 3) & 3][1];
                    mc.dtype = dt ? BP_DTYPE_BF16 : BP_DTYPE_F32;
                    run_matmul(s, &mc);
                }
    /* the same call twice (primitive cache hit) must give the same answer */
    mm_case mc = {24, 40, 8, 0, {1, 1}, 0, 0, 1, 1, 0.75f, 0.0f, BP_DTYPE_F32};
    run_matmul(s, &mc);
    run_matmul(s, &mc);
}

/* ------------------------------------------------------------------ conv2d -- */

typedef struct conv_case {
    int64_t n, c, h, w, o, kh, kw;
    int32_t sh, sw, ph, pw, dh, dw, groups;
    int bias;
} conv_case;

static void run_conv(suite *s, const conv_case *cc) {
    int64_t g = cc->groups, cg = cc->c / g, og = cc->o / g;
    int64_t oh = (cc->h + 2 * cc->ph - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
    int64_t ow = (cc->w + 2 * cc->pw - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
    int64_t xs[4] = {cc->n, cc->c, cc->h, cc->w}, ws[4] = {cc->o, cg, cc->kh, cc->kw}, ys[4] = {cc->n, cc->o, oh, ow};
    int64_t bshape[1] = {cc->o};
    size_t nx = shape_numel(4, xs), nw = shape_numel(4, ws), ny = shape_numel(4, ys);
    float *x = xalloc(nx * 4), *w = xalloc(nw * 4), *b = xalloc((size_t)cc->o * 4), *y = xalloc(ny * 4);
    double *ref = xalloc(ny * 8), *scale = xalloc(ny * 8);
    fill_uniform(&s->r, x, (int64_t)nx, -1, 1);
    fill_uniform(&s->r, w, (int64_t)nw, -1, 1);
    fill_uniform(&s->r, b, cc->o, -1, 1);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = cc->bias ? b[o] : 0.0, mag = cc->bias ? fabs(b[o]) : 0.0;
                    int64_t grp = o / og;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t u = 0; u < cc->kh; u++)
                            for (int64_t v = 0; v < cc->kw; v++) {
                                int64_t hi = i * cc->sh - cc->ph + u * cc->dh, wi = j * cc->sw - cc->pw + v * cc->dw;
                                if (hi < 0 || hi >= cc->h || wi < 0 || wi >= cc->w) continue;
                                double xv = x[((n * cc->c + grp * cg + ci) * cc->h + hi) * cc->w + wi];
                                double wv = w[((o * cg + ci) * cc->kh + u) * cc->kw + v];
                                acc += xv * wv;
                                mag += fabs(xv * wv);
                            }
                    size_t oi = (size_t)(((n * cc->o + o) * oh + i) * ow + j);
                    ref[oi] = acc;
                    scale[oi] = mag;
                }
    bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, 4, xs, x), *tw = dev_tensor(s, BP_DTYPE_F32, 4, ws, w);
    bp_tensor *tb = cc->bias ? dev_tensor(s, BP_DTYPE_F32, 1, bshape, b) : NULL;
    bp_tensor *ty = dev_tensor(s, BP_DTYPE_F32, 4, ys, NULL);
    char what[160];
    snprintf(what, sizeof what, "x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] stride %d,%d pad %d,%d dil %d,%d g%d%s",
             (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3], (long long)ws[0],
             (long long)ws[1], (long long)ws[2], (long long)ws[3], cc->sh, cc->sw, cc->ph, cc->pw, cc->dh, cc->dw,
             cc->groups, cc->bias ? " +bias" : "");
    if (tx && tw && ty && (tb || !cc->bias)) {
        bp_conv2d_desc d = {sizeof d, tx, tw, tb, ty, cc->sh, cc->sw, cc->ph, cc->pw, cc->dh, cc->dw, cc->groups};
        bp_error err = BP_ERROR_INIT;
        bp_status st = bp_op_conv2d(s->be, &d, &err);
        double e = 0.0;
        if (st == BP_OK) {
            dev_read(s, ty, y);
            e = max_err(y, ref, scale, (int64_t)ny);
        }
        record(s, "conv2d", 2e-5, st, &err, e, what);
    }
    bp_tensor_free(tx), bp_tensor_free(tw), bp_tensor_free(tb), bp_tensor_free(ty);
    free(x), free(w), free(b), free(y), free(ref), free(scale);
}

static void test_conv2d(suite *s) {
    static const conv_case cases[] = {
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1, 0},      /* plain 3×3 */
        {2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* pad 1, bias */
        {1, 4, 11, 10, 6, 3, 2, 2, 3, 1, 0, 1, 1, 1, 1},    /* strides 2,3, non-square kernel */
        {1, 2, 12, 12, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},    /* dilation 2 */
        {2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1},      /* groups 2 */
        {1, 6, 9, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6, 1},      /* depthwise */
        {1, 8, 6, 5, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},     /* 1×1 */
        {1, 2, 32, 48, 8, 16, 16, 16, 16, 0, 0, 1, 1, 1, 1}, /* patch embedding (Spatial-AST style) */
        {1, 3, 5, 5, 2, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0},      /* odd size, stride 2: last column dropped */
        {1, 2, 7, 9, 4, 3, 5, 2, 1, 2, 1, 2, 1, 2, 1},      /* everything at once */
        /* few channels, stride 1, rows >= 16 wide: the cpu backend's direct kernel */
        {2, 4, 9, 40, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},     /* Spatial-AST's 4 -> 1 conv block */
        {1, 2, 6, 33, 3, 2, 5, 1, 1, 0, 2, 1, 1, 1, 1},     /* 2 -> 3, 2x5, pad 0,2, bias */
        {1, 1, 5, 20, 2, 1, 7, 1, 1, 0, 0, 1, 1, 1, 1},     /* no padding: narrower output */
        {2, 4, 64, 128, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* large enough for every thread */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_conv(s, &cases[i]);
}

/* ------------------------------------------------------------------- unary -- */

static void test_unary(suite *s, int64_t big) {
    const int64_t sizes[][3] = {{1, 1, 1}, {1, 3, 37}, {2, 5, 100}, {1, 1, big}};
    for (int op = 0; op < BP_UNARY_COUNT; op++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int inplace = 0; inplace < 2; inplace++) {
                if (inplace && si != 2) continue;
                size_t n = shape_numel(3, sizes[si]);
                float *x = xalloc(n * 4), *y = xalloc(n * 4);
                double *ref = xalloc(n * 8), lo, hi;
                unary_range(op, &lo, &hi);
                if (op == BP_UNARY_LOG || op == BP_UNARY_SQRT) /* log-uniform over the range */
                    for (size_t i = 0; i < n; i++) x[i] = (float)exp(log(lo) + (log(hi) - log(lo)) * rng_unit(&s->r));
                else
                    fill_uniform(&s->r, x, (int64_t)n, lo, hi);
                for (size_t i = 0; i < n; i++) ref[i] = ref_unary(op, x[i]);
                bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, 3, sizes[si], x);
                bp_tensor *ty = inplace ? tx : dev_tensor(s, BP_DTYPE_F32, 3, sizes[si], NULL);
                if (tx && ty) {
                    bp_error err = BP_ERROR_INIT;
                    bp_status st = bp_op_unary(s->be, (bp_unary_op)op, tx, ty, &err);
                    double e = 0.0;
                    if (st == BP_OK) {
                        dev_read(s, ty, y);
                        e = max_err(y, ref, NULL, (int64_t)n);
                    }
                    char what[64];
                    snprintf(what, sizeof what, "%zu elements%s", n, inplace ? " in place" : "");
                    record(s, bp_unary_op_name(op), 2e-6, st, &err, e, what);
                }
                if (!inplace) bp_tensor_free(ty);
                bp_tensor_free(tx);
                free(x), free(y), free(ref);
            }
}

/* ------------------------------------------------------------------ binary -- */

static double ref_binary(int op, double a, double b) {
    switch (op) {
    case BP_BINARY_ADD: return a + b;
    case BP_BINARY_SUB: return a - b;
    case BP_BINARY_MUL: return a * b;
    case BP_BINARY_DIV: return a / b;
    case BP_BINARY_MAX: return a > b ? a : b;
    case BP_BINARY_MIN: return a < b ? a : b;
    }
    return NAN;
}

static void test_binary(suite *s, int64_t big) {
    /* a's shape, then b's: full, trailing dims, last dim, one element (rank 1 and rank 0) */
    struct { int32_t an; int64_t as[3]; int32_t bn; int64_t bs[3]; } forms[] = {
        {3, {2, 3, 7}, 3, {2, 3, 7}}, {3, {2, 3, 7}, 2, {3, 7}}, {3, {2, 3, 7}, 1, {7}},
        {3, {2, 3, 7}, 1, {1}},       {2, {4, 5}, 0, {0}},       {1, {1}, 1, {1}},
        {2, {big / 256, 256}, 1, {256}}, {2, {1, big}, 2, {1, big}}, {2, {big / 8, 8}, 1, {8}},
    };
    for (int op = 0; op < BP_BINARY_COUNT; op++)
        for (size_t fi = 0; fi < sizeof forms / sizeof forms[0]; fi++)
            for (int inplace = 0; inplace < 2; inplace++) {
                if (inplace && fi != 1 && fi != 6) continue;
                size_t na = shape_numel(forms[fi].an, forms[fi].as), nb = shape_numel(forms[fi].bn, forms[fi].bs);
                float *a = xalloc(na * 4), *b = xalloc(nb * 4), *y = xalloc(na * 4);
                double *ref = xalloc(na * 8);
                fill_uniform(&s->r, a, (int64_t)na, -4, 4);
                fill_uniform(&s->r, b, (int64_t)nb, 0.5, 4);
                for (size_t i = 0; i < nb; i++)
                    if (rng_next(&s->r) & 1) b[i] = -b[i]; /* |b| ≥ 0.5: no division blow-up */
                for (size_t i = 0; i < na; i++) ref[i] = ref_binary(op, a[i], b[i % nb]);
                bp_tensor *ta = dev_tensor(s, BP_DTYPE_F32, forms[fi].an, forms[fi].as, a);
                bp_tensor *tb = dev_tensor(s, BP_DTYPE_F32, forms[fi].bn, forms[fi].bs, b);
                bp_tensor *ty = inplace ? ta : dev_tensor(s, BP_DTYPE_F32, forms[fi].an, forms[fi].as, NULL);
                if (ta && tb && ty) {
                    bp_error err = BP_ERROR_INIT;
                    bp_status st = bp_op_binary(s->be, (bp_binary_op)op, ta, tb, ty, &err);
                    double e = 0.0;
                    if (st == BP_OK) {
                        dev_read(s, ty, y);
                        e = max_err(y, ref, NULL, (int64_t)na);
                    }
                    char what[96];
                    snprintf(what, sizeof what, "a %zu elements, b %zu%s", na, nb, inplace ? ", in place" : "");
                    record(s, bp_binary_op_name(op), 2e-6, st, &err, e, what);
                }
                if (!inplace) bp_tensor_free(ty);
                bp_tensor_free(ta), bp_tensor_free(tb);
                free(a), free(b), free(y), free(ref);
            }
}

/* ------------------------------------------------------------------ affine -- */

static void test_affine(suite *s, int64_t big) {
    const float params[][2] = {{1.0f, 0.0f}, {-2.5f, 0.75f}, {0.0f, 3.0f}, {1e-3f, -1e3f}};
    const int64_t sizes[] = {1, 33, big};
    for (size_t pi = 0; pi < 4; pi++)
        for (size_t si = 0; si < 3; si++) {
            int64_t n = sizes[si];
            float *x = xalloc((size_t)n * 4), *y = xalloc((size_t)n * 4);
            double *ref = xalloc((size_t)n * 8), *scale = xalloc((size_t)n * 8);
            fill_uniform(&s->r, x, n, -10, 10);
            for (int64_t i = 0; i < n; i++) {
                ref[i] = (double)params[pi][0] * x[i] + params[pi][1];
                scale[i] = fabs((double)params[pi][0] * x[i]) + fabs(params[pi][1]);
            }
            bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, 1, &n, x), *ty = dev_tensor(s, BP_DTYPE_F32, 1, &n, NULL);
            if (tx && ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_affine(s->be, tx, params[pi][0], params[pi][1], ty, &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    e = max_err(y, ref, scale, n);
                }
                char what[64];
                snprintf(what, sizeof what, "alpha %g beta %g, %lld elements", (double)params[pi][0],
                         (double)params[pi][1], (long long)n);
                record(s, "affine", 2e-6, st, &err, e, what);
            }
            bp_tensor_free(tx), bp_tensor_free(ty);
            free(x), free(y), free(ref), free(scale);
        }
}

/* ----------------------------------------------------------------- softmax -- */

static void test_softmax(suite *s) {
    struct { int32_t nd; int64_t shape[4]; float scale; int causal; int64_t offset; } cases[] = {
        {1, {7}, 1.0f, 0, 0},           {2, {4, 33}, 0.125f, 0, 0},       {2, {3, 1000}, 2.0f, 0, 0},
        {2, {5, 1}, 1.0f, 0, 0},        {2, {9, 9}, 1.0f, 1, 0},          {4, {2, 3, 17, 17}, 0.5f, 1, 0},
        {3, {2, 6, 10}, 1.0f, 1, 4},    {3, {2, 6, 10}, -1.5f, 1, -2},    {2, {8, 8}, 1.0f, 1, 100},
        {3, {3, 64, 64}, 0.125f, 1, 0}, {2, {257, 129}, 1.0f, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int inplace = 0; inplace < 2; inplace++) {
            if (inplace && ci != 5) continue;
            int32_t nd = cases[ci].nd;
            const int64_t *shape = cases[ci].shape;
            size_t n = shape_numel(nd, shape);
            int64_t d = shape[nd - 1], rows = (int64_t)n / d, rdim = nd >= 2 ? shape[nd - 2] : 1;
            float *x = xalloc(n * 4), *y = xalloc(n * 4);
            double *ref = xalloc(n * 8);
            fill_uniform(&s->r, x, (int64_t)n, -5, 5);
            for (int64_t r = 0; r < rows; r++) {
                int64_t i = r % rdim;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < d; j++) {
                    int keep = !cases[ci].causal || j <= i + cases[ci].offset;
                    double v = (double)cases[ci].scale * x[r * d + j];
                    if (keep && v > mx) mx = v;
                }
                for (int64_t j = 0; j < d; j++) {
                    int keep = !cases[ci].causal || j <= i + cases[ci].offset;
                    ref[r * d + j] = keep ? exp((double)cases[ci].scale * x[r * d + j] - mx) : 0.0;
                    sum += ref[r * d + j];
                }
                for (int64_t j = 0; j < d; j++) /* a fully masked row is all 0 */
                    ref[r * d + j] = sum > 0 ? ref[r * d + j] / sum : 0.0;
            }
            bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, nd, shape, x);
            bp_tensor *ty = inplace ? tx : dev_tensor(s, BP_DTYPE_F32, nd, shape, NULL);
            if (tx && ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_softmax(s->be, tx, ty, cases[ci].scale, cases[ci].causal, cases[ci].offset, &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    e = max_err(y, ref, NULL, (int64_t)n);
                }
                char what[96];
                snprintf(what, sizeof what, "%zu elements, row %lld, scale %g%s offset %lld%s", n, (long long)d,
                         (double)cases[ci].scale, cases[ci].causal ? ", causal" : "", (long long)cases[ci].offset,
                         inplace ? ", in place" : "");
                record(s, "softmax", 1e-5, st, &err, e, what);
            }
            if (!inplace) bp_tensor_free(ty);
            bp_tensor_free(tx);
            free(x), free(y), free(ref);
        }
}

/* ------------------------------------------------------------------- norms -- */

static void test_norms(suite *s) {
    struct { int32_t nd; int64_t shape[3]; double offset; } cases[] = {
        {1, {5}, 0.0},         {2, {3, 77}, 0.0},      {3, {2, 4, 256}, 0.0},
        {2, {6, 768}, 100.0},  {2, {300, 128}, -3.0},  {2, {2, 1}, 0.0},
    };
    const float epss[] = {1e-5f, 1e-6f};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int variant = 0; variant < 4; variant++) {
            int32_t nd = cases[ci].nd;
            const int64_t *shape = cases[ci].shape;
            size_t n = shape_numel(nd, shape);
            int64_t d = shape[nd - 1], rows = (int64_t)n / d;
            int has_w = variant == 0 || variant == 1, has_b = variant == 0 || variant == 2;
            float eps = epss[ci % 2];
            float *x = xalloc(n * 4), *y = xalloc(n * 4), *w = xalloc((size_t)d * 4), *b = xalloc((size_t)d * 4);
            double *ref = xalloc(n * 8), *scale = xalloc(n * 8);
            fill_uniform(&s->r, x, (int64_t)n, cases[ci].offset - 3, cases[ci].offset + 3);
            fill_uniform(&s->r, w, d, -2, 2);
            fill_uniform(&s->r, b, d, -1, 1);
            int64_t ws[1] = {d};
            bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, nd, shape, x);
            bp_tensor *ty = dev_tensor(s, BP_DTYPE_F32, nd, shape, NULL);
            bp_tensor *tw = has_w ? dev_tensor(s, BP_DTYPE_F32, 1, ws, w) : NULL;
            bp_tensor *tb = has_b ? dev_tensor(s, BP_DTYPE_F32, 1, ws, b) : NULL;
            char what[96];
            snprintf(what, sizeof what, "%zu elements, row %lld, mean ~%g%s%s", n, (long long)d, cases[ci].offset,
                     has_w ? ", w" : "", has_b ? ", b" : "");
            /* layernorm */
            for (int64_t r = 0; r < rows; r++) {
                double mean = 0, var = 0;
                for (int64_t j = 0; j < d; j++) mean += x[r * d + j];
                mean /= (double)d;
                for (int64_t j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
                var /= (double)d;
                double rstd = 1.0 / sqrt(var + eps);
                for (int64_t j = 0; j < d; j++) {
                    double wv = has_w ? w[j] : 1.0, bv = has_b ? b[j] : 0.0;
                    double t = (x[r * d + j] - mean) * rstd * wv;
                    ref[r * d + j] = t + bv;
                    /* the terms of the sum, plus the rounding of the mean to float (ulp(mean)/2, of which
                     * 1e-5 of this scale leaves ~100×) */
                    scale[r * d + j] = fabs(t) + fabs(bv) + 0.01 * fabs(mean) * rstd * fabs(wv);
                }
            }
            if (tx && ty && (tw || !has_w) && (tb || !has_b)) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_layernorm(s->be, tx, tw, tb, eps, ty, &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    e = max_err(y, ref, scale, (int64_t)n);
                }
                record(s, "layernorm", 1e-5, st, &err, e, what);
            }
            /* rmsnorm (bias variants only change the weight) */
            if (variant < 2) {
                for (int64_t r = 0; r < rows; r++) {
                    double ms = 0;
                    for (int64_t j = 0; j < d; j++) ms += (double)x[r * d + j] * x[r * d + j];
                    double rr = 1.0 / sqrt(ms / (double)d + eps);
                    for (int64_t j = 0; j < d; j++) ref[r * d + j] = x[r * d + j] * rr * (has_w ? w[j] : 1.0);
                }
                if (tx && ty && (tw || !has_w)) {
                    bp_error err = BP_ERROR_INIT;
                    bp_status st = bp_op_rmsnorm(s->be, tx, tw, eps, ty, &err);
                    double e = 0.0;
                    if (st == BP_OK) {
                        dev_read(s, ty, y);
                        e = max_err(y, ref, NULL, (int64_t)n);
                    }
                    record(s, "rmsnorm", 1e-5, st, &err, e, what);
                }
            }
            bp_tensor_free(tx), bp_tensor_free(ty), bp_tensor_free(tw), bp_tensor_free(tb);
            free(x), free(y), free(w), free(b), free(ref), free(scale);
        }
}

/* ------------------------------------------------------------------ reduce -- */

static void test_reduce(suite *s) {
    struct { int32_t nd; int64_t shape[3]; int keep; } cases[] = {
        {1, {1}, 0}, {1, {9}, 1}, {2, {4, 1000}, 0}, {3, {2, 3, 129}, 1}, {2, {5000, 16}, 0}, {2, {3, 100000}, 0},
    };
    for (int op = 0; op < BP_REDUCE_COUNT; op++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            int32_t nd = cases[ci].nd;
            const int64_t *shape = cases[ci].shape;
            size_t n = shape_numel(nd, shape);
            int64_t d = shape[nd - 1], rows = (int64_t)n / d;
            int64_t yshape[3];
            for (int32_t i = 0; i < nd - 1; i++) yshape[i] = shape[i];
            int32_t ynd = cases[ci].keep ? nd : nd - 1;
            if (cases[ci].keep) yshape[nd - 1] = 1;
            float *x = xalloc(n * 4), *y = xalloc((size_t)rows * 4);
            double *ref = xalloc((size_t)rows * 8), *scale = xalloc((size_t)rows * 8);
            fill_uniform(&s->r, x, (int64_t)n, -3, 5);
            for (int64_t r = 0; r < rows; r++) {
                double sum = 0, mag = 0, mx = -INFINITY;
                for (int64_t j = 0; j < d; j++) {
                    sum += x[r * d + j];
                    mag += fabs(x[r * d + j]);
                    if (x[r * d + j] > mx) mx = x[r * d + j];
                }
                ref[r] = op == BP_REDUCE_SUM ? sum : op == BP_REDUCE_MEAN ? sum / (double)d : mx;
                scale[r] = op == BP_REDUCE_SUM ? mag : op == BP_REDUCE_MEAN ? mag / (double)d : 0.0;
            }
            bp_tensor *tx = dev_tensor(s, BP_DTYPE_F32, nd, shape, x);
            bp_tensor *ty = dev_tensor(s, BP_DTYPE_F32, ynd, yshape, NULL);
            if (tx && ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_reduce(s->be, (bp_reduce_op)op, tx, ty, &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    e = max_err(y, ref, scale, rows);
                }
                char what[64];
                snprintf(what, sizeof what, "%lld rows of %lld", (long long)rows, (long long)d);
                char name[32];
                snprintf(name, sizeof name, "reduce_%s", bp_reduce_op_name(op));
                record(s, name, 1e-5, st, &err, e, what);
            }
            bp_tensor_free(tx), bp_tensor_free(ty);
            free(x), free(y), free(ref), free(scale);
        }
}

/* ----------------------------------------------------------------- convert -- */

/* Exact value of F16 / BF16 bits, by the definition of the formats. */
static double f16_value(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

static double bf16_value(uint16_t h) {
    int sign = h >> 15, e = (h >> 7) & 0xff, m = h & 0x7f;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
    return sign ? -v : v;
}

/* x rounded to a float format with `mbits` mantissa bits, minimum normal
 * exponent `emin` and largest finite value `maxv`: nearest, ties to even. */
static double round_to_format(double x, int mbits, int emin, double maxv) {
    if (isnan(x) || isinf(x) || x == 0) return x;
    int e;
    frexp(fabs(x), &e); /* |x| in [2^(e−1), 2^e) */
    e -= 1;
    if (e < emin) e = emin;
    double ulp = ldexp(1.0, e - mbits);
    double q = nearbyint(x / ulp) * ulp; /* default rounding mode: ties to even */
    double halfway_max = maxv + ldexp(1.0, (int)floor(log2(maxv)) - mbits - 1);
    if (fabs(x) >= halfway_max) return x > 0 ? INFINITY : -INFINITY;
    return q;
}

static double dtype_value(int32_t dt, const void *p, size_t i) {
    if (dt == BP_DTYPE_F32) return ((const float *)p)[i];
    if (dt == BP_DTYPE_F16) return f16_value(((const uint16_t *)p)[i]);
    return bf16_value(((const uint16_t *)p)[i]);
}

static double dtype_round(int32_t dt, double x) {
    if (dt == BP_DTYPE_F32) return (double)(float)x;
    if (dt == BP_DTYPE_F16) return round_to_format(x, 10, -14, 65504.0);
    return round_to_format(x, 7, -126, ldexp(255, 120));
}

static void test_convert(suite *s) {
    const int32_t types[] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_BF16};
    const int64_t n = 4099;
    float *src = xalloc((size_t)n * 4);
    /* special values and exact ties first, then wide-range random values */
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f,
                             1e6f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 1e-10f, 1.0f + 0x1p-11f,
                             1.0f + 0x1p-10f + 0x1p-11f, 1.0f + 0x1p-8f, 1.0f + 0x1p-7f + 0x1p-8f, 3.4e38f,
                             -1.17549435e-38f, 1e-45f, 0x1p-140f};
    size_t ns = sizeof special / sizeof special[0];
    for (int64_t i = 0; i < n; i++) {
        if ((size_t)i < ns) {
            src[i] = special[i];
        } else {
            double mag = ldexp(1.0 + rng_unit(&s->r), (int)rng_int(&s->r, 60) - 30);
            src[i] = (float)((rng_next(&s->r) & 1) ? -mag : mag);
        }
    }
    for (int fi = 0; fi < 3; fi++)
        for (int ti = 0; ti < 3; ti++) {
            int32_t from = types[fi], to = types[ti];
            size_t fb = bp_dtype_block_bytes(from), tb = bp_dtype_block_bytes(to);
            void *x = xalloc((size_t)n * fb), *y = xalloc((size_t)n * tb);
            for (int64_t i = 0; i < n; i++) { /* x holds src rounded to `from` */
                if (from == BP_DTYPE_F32) ((float *)x)[i] = src[i];
                else if (from == BP_DTYPE_F16) ((uint16_t *)x)[i] = bp_f32_to_f16(src[i]);
                else ((uint16_t *)x)[i] = bp_f32_to_bf16(src[i]);
            }
            int64_t xs[2] = {1, n}, ys[1] = {n}; /* shapes may differ: only the count must match */
            bp_tensor *tx = dev_tensor(s, from, 2, xs, x), *ty = dev_tensor(s, to, 1, ys, NULL);
            if (tx && ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_convert(s->be, tx, ty, &err);
                double e = 0.0;
                int64_t bad = -1;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    for (int64_t i = 0; i < n && bad < 0; i++) {
                        double want = dtype_round(to, dtype_value(from, x, (size_t)i));
                        double got = dtype_value(to, y, (size_t)i);
                        int same = (isnan(want) && isnan(got)) || (want == got && signbit(want) == signbit(got));
                        if (!same) bad = i;
                    }
                    e = bad < 0 ? 0.0 : INFINITY;
                }
                char what[96];
                if (bad >= 0)
                    snprintf(what, sizeof what, "%s → %s, element %lld (%.9g)", bp_dtype_name(from),
                             bp_dtype_name(to), (long long)bad, dtype_value(from, x, (size_t)bad));
                else
                    snprintf(what, sizeof what, "%s → %s", bp_dtype_name(from), bp_dtype_name(to));
                record(s, "convert", 0.0, st, &err, e, what);
            }
            bp_tensor_free(tx), bp_tensor_free(ty);
            free(x), free(y);
        }
    free(src);
}

/* ----------------------------------------------------------------- permute -- */

static void run_permute(suite *s, int32_t dtype, int32_t nd, const int64_t *shape, const int32_t *perm) {
    size_t es = bp_dtype_block_bytes(dtype), n = shape_numel(nd, shape);
    uint8_t *x = xalloc(n * es), *y = xalloc(n * es), *ref = xalloc(n * es);
    for (size_t i = 0; i < n * es; i++) x[i] = (uint8_t)rng_next(&s->r);
    int64_t ys[4], xst[4];
    for (int32_t i = 0; i < nd; i++) ys[i] = shape[perm[i]];
    xst[nd - 1] = 1;
    for (int32_t i = nd - 2; i >= 0; i--) xst[i] = xst[i + 1] * shape[i + 1];
    for (size_t o = 0; o < n; o++) { /* y index → x index */
        size_t rem = o, src = 0;
        for (int32_t i = nd - 1; i >= 0; i--) {
            size_t idx = rem % (size_t)ys[i];
            rem /= (size_t)ys[i];
            src += idx * (size_t)xst[perm[i]];
        }
        memcpy(ref + o * es, x + src * es, es);
    }
    bp_tensor *tx = dev_tensor(s, dtype, nd, shape, x), *ty = dev_tensor(s, dtype, nd, ys, NULL);
    if (tx && ty) {
        bp_error err = BP_ERROR_INIT;
        bp_status st = bp_op_permute(s->be, tx, perm, ty, &err);
        double e = 0.0;
        if (st == BP_OK) {
            dev_read(s, ty, y);
            e = memcmp(y, ref, n * es) == 0 ? 0.0 : INFINITY;
        }
        char what[96];
        snprintf(what, sizeof what, "%s rank %d perm %d%d%d%d", bp_dtype_name(dtype), nd, perm[0], nd > 1 ? perm[1] : 0,
                 nd > 2 ? perm[2] : 0, nd > 3 ? perm[3] : 0);
        record(s, "permute", 0.0, st, &err, e, what);
    }
    bp_tensor_free(tx), bp_tensor_free(ty);
    free(x), free(y), free(ref);
}

static void test_permute(suite *s) {
    const int32_t dtypes[] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_I8, BP_DTYPE_I64};
    for (size_t di = 0; di < 4; di++) {
        int64_t s1[1] = {13};
        int32_t p1[1] = {0};
        run_permute(s, dtypes[di], 1, s1, p1);
        int64_t s2[2] = {7, 5};
        int32_t p2[2] = {1, 0};
        run_permute(s, dtypes[di], 2, s2, p2);
        int64_t s3[3] = {3, 4, 5};
        const int32_t p3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        for (int i = 0; i < 6; i++) run_permute(s, dtypes[di], 3, s3, p3[i]);
        int64_t s4[4] = {2, 3, 4, 5};
        int32_t p4[4] = {0, 1, 2, 3};
        do { /* all 24 permutations of rank 4, in lexicographic order */
            run_permute(s, dtypes[di], 4, s4, p4);
            int i = 2;
            while (i >= 0 && p4[i] > p4[i + 1]) i--;
            if (i < 0) break;
            int j = 3;
            while (p4[j] < p4[i]) j--;
            int32_t t = p4[i];
            p4[i] = p4[j], p4[j] = t;
            for (int a = i + 1, b = 3; a < b; a++, b--) t = p4[a], p4[a] = p4[b], p4[b] = t;
        } while (1);
    }
    /* large transposes: tiled and threaded paths */
    int64_t big2[2] = {300, 257};
    int32_t t2[2] = {1, 0};
    run_permute(s, BP_DTYPE_F32, 2, big2, t2);
    int64_t big4[4] = {2, 64, 12, 64}; /* attention heads [B,T,H,D] → [B,H,T,D] */
    int32_t t4[4] = {0, 2, 1, 3};
    run_permute(s, BP_DTYPE_F32, 4, big4, t4);
    int64_t one[3] = {1, 300, 200};
    int32_t t3[3] = {0, 2, 1};
    run_permute(s, BP_DTYPE_F32, 3, one, t3);
}

/* ---------------------------------------------------------------- get_rows -- */

/* A random finite f16 of magnitude about 2^lo .. 2^hi. */
static uint16_t rand_f16(rng *r, int lo, int hi) {
    double v = ldexp(1.0 + rng_unit(r), lo + (int)rng_int(r, hi - lo + 1));
    return bp_f32_to_f16((float)((rng_next(r) & 1) ? -v : v));
}

static void test_get_rows(suite *s) {
    const int32_t types[] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_BF16, BP_DTYPE_Q8_0, BP_DTYPE_Q4_0, BP_DTYPE_Q4_1};
    const int64_t dims[][2] = {{10, 64}, {37, 96}, {1, 32}, {2000, 160}};
    for (size_t ti = 0; ti < 6; ti++)
        for (size_t di = 0; di < 4; di++) {
            int32_t t = types[ti];
            int64_t V = dims[di][0], D = dims[di][1], nids = di == 3 ? 700 : 9;
            int64_t tshape[2] = {V, D}, ishape[1] = {nids}, yshape[2] = {nids, D};
            bp_tensor probe = bp_tensor_view(t, 2, tshape, NULL);
            size_t tbytes = bp_tensor_nbytes(&probe), row_bytes = tbytes / (size_t)V;
            uint8_t *tab = xalloc(tbytes);
            double *vals = xalloc((size_t)(V * D) * 8); /* the table's exact values */
            for (int64_t r = 0; r < V; r++) {
                uint8_t *row = tab + (size_t)r * row_bytes;
                for (int64_t blk = 0; blk < D / (t >= BP_DTYPE_Q8_0 ? 32 : D); blk++) {
                    if (t == BP_DTYPE_F32 || t == BP_DTYPE_F16 || t == BP_DTYPE_BF16) {
                        for (int64_t j = 0; j < D; j++) {
                            float v = rng_float(&s->r, -3, 3);
                            if (t == BP_DTYPE_F32) memcpy(row + 4 * j, &v, 4), vals[r * D + j] = v;
                            else {
                                uint16_t h = t == BP_DTYPE_F16 ? bp_f32_to_f16(v) : bp_f32_to_bf16(v);
                                memcpy(row + 2 * j, &h, 2);
                                vals[r * D + j] = t == BP_DTYPE_F16 ? f16_value(h) : bf16_value(h);
                            }
                        }
                        continue;
                    }
                    size_t bb = bp_dtype_block_bytes(t);
                    uint8_t *b = row + (size_t)blk * bb;
                    for (size_t i = 0; i < bb; i++) b[i] = (uint8_t)rng_next(&s->r);
                    uint16_t d16 = rand_f16(&s->r, -12, 2), m16 = rand_f16(&s->r, -6, 1);
                    memcpy(b, &d16, 2);
                    double d = f16_value(d16);
                    double *out = vals + r * D + blk * 32;
                    if (t == BP_DTYPE_Q8_0) {
                        for (int j = 0; j < 32; j++) out[j] = d * (double)(int8_t)b[2 + j];
                    } else if (t == BP_DTYPE_Q4_0) {
                        for (int j = 0; j < 16; j++) {
                            out[j] = d * ((b[2 + j] & 0x0f) - 8);
                            out[j + 16] = d * ((b[2 + j] >> 4) - 8);
                        }
                    } else {
                        memcpy(b + 2, &m16, 2);
                        double m = f16_value(m16);
                        for (int j = 0; j < 16; j++) {
                            out[j] = d * (b[4 + j] & 0x0f) + m;
                            out[j + 16] = d * (b[4 + j] >> 4) + m;
                        }
                    }
                }
            }
            int32_t *ids = xalloc((size_t)nids * 4);
            for (int64_t i = 0; i < nids; i++) ids[i] = (int32_t)rng_int(&s->r, V);
            ids[0] = 0;
            ids[nids - 1] = (int32_t)(V - 1);
            float *y = xalloc((size_t)(nids * D) * 4);
            double *ref = xalloc((size_t)(nids * D) * 8);
            /* F32 output: the exact value rounded once (as a float computation d·q + m would) */
            for (int64_t i = 0; i < nids; i++)
                for (int64_t j = 0; j < D; j++) ref[i * D + j] = (double)(float)vals[(int64_t)ids[i] * D + j];
            bp_tensor *tt = dev_tensor(s, t, 2, tshape, tab), *tid = dev_tensor(s, BP_DTYPE_I32, 1, ishape, ids);
            bp_tensor *ty = dev_tensor(s, BP_DTYPE_F32, 2, yshape, NULL);
            char what[96];
            snprintf(what, sizeof what, "%s table [%lld,%lld], %lld ids", bp_dtype_name(t), (long long)V, (long long)D,
                     (long long)nids);
            if (tt && tid && ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_get_rows(s->be, tt, tid, ty, &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    e = max_err(y, ref, NULL, nids * D);
                }
                record(s, "get_rows", 0.0, st, &err, e, what);
                /* an id outside the table is an error with a message, not a crash */
                int32_t badid = (int32_t)V;
                ids[nids / 2] = (rng_next(&s->r) & 1) ? badid : -1;
                bp_error err2 = BP_ERROR_INIT;
                bp_status st2 = bp_tensor_write(tid, ids, (size_t)nids * 4, &err2);
                if (st2 == BP_OK) st2 = bp_op_get_rows(s->be, tt, tid, ty, &err2);
                if (st2 != BP_ERR_UNSUPPORTED)
                    CHECKF(st2 == BP_ERR_INVALID && strstr(err2.msg, "get_rows") != NULL,
                           "%s get_rows with id %d: status %d, message '%s'", s->label, ids[nids / 2], (int)st2,
                           err2.msg);
            }
            bp_tensor_free(tt), bp_tensor_free(tid), bp_tensor_free(ty);
            free(tab), free(vals), free(ids), free(y), free(ref);
        }
}

/* -------------------------------------------------------------------- fill -- */

static void test_fill(suite *s, int64_t big) {
    const float values[] = {0.0f, -0.0f, 3.5f, -1e30f};
    const int64_t sizes[] = {1, 17, big};
    for (size_t vi = 0; vi < 4; vi++)
        for (size_t si = 0; si < 3; si++) {
            int64_t n = sizes[si];
            float *y = xalloc((size_t)n * 4);
            bp_tensor *ty = dev_tensor(s, BP_DTYPE_F32, 1, &n, NULL);
            if (ty) {
                bp_error err = BP_ERROR_INIT;
                bp_status st = bp_op_fill(s->be, ty, values[vi], &err);
                double e = 0.0;
                if (st == BP_OK) {
                    dev_read(s, ty, y);
                    for (int64_t i = 0; i < n; i++)
                        if (memcmp(&y[i], &values[vi], 4) != 0) e = INFINITY;
                }
                char what[64];
                snprintf(what, sizeof what, "%g × %lld", (double)values[vi], (long long)n);
                record(s, "fill", 0.0, st, &err, e, what);
            }
            bp_tensor_free(ty);
            free(y);
        }
}

/* ------------------------------------------------------- rejected calls -- */

/* The core must refuse malformed calls with a message naming the op, before
 * the backend sees them; nothing may crash. */
static void test_rejects(suite *s) {
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s44[2] = {4, 4}, s24[2] = {2, 4}, s5[1] = {5}, s2[1] = {2};
    bp_tensor *a = dev_tensor(s, BP_DTYPE_F32, 2, s23, NULL), *b = dev_tensor(s, BP_DTYPE_F32, 2, s44, NULL);
    bp_tensor *c = dev_tensor(s, BP_DTYPE_F32, 2, s24, NULL), *b34 = dev_tensor(s, BP_DTYPE_F32, 2, s34, NULL);
    bp_tensor *h = dev_tensor(s, BP_DTYPE_F16, 2, s23, NULL), *v5 = dev_tensor(s, BP_DTYPE_F32, 1, s5, NULL);
    bp_tensor *i2 = dev_tensor(s, BP_DTYPE_I32, 1, s2, NULL);
    if (!a || !b || !c || !b34 || !h || !v5 || !i2) goto done;
    struct { const char *what, *needle; bp_status st; } r[12];
    int n = 0;
    bp_error e[12];
    for (int i = 0; i < 12; i++) bp_error_clear(&e[i]);
#define REJECT(call, needle_)                   \
    do {                                        \
        r[n].what = #call;                      \
        r[n].needle = (needle_);                \
        r[n].st = (call);                       \
        n++;                                    \
    } while (0)
    REJECT(bp_op_matmul(s->be, a, b, c, NULL, 0, 0, 1.0f, 0.0f, &e[n]), "matmul");   /* K 3 vs 4 */
    REJECT(bp_op_matmul(s->be, a, b34, c, v5, 0, 0, 1.0f, 0.0f, &e[n]), "matmul");   /* bias [5] for N 4 */
    REJECT(bp_op_matmul(s->be, h, b34, c, NULL, 0, 0, 1.0f, 0.0f, &e[n]), "matmul"); /* F16 × F32 */
    REJECT(bp_op_binary(s->be, BP_BINARY_ADD, a, v5, a, &e[n]), "broadcast");
    REJECT(bp_op_unary(s->be, BP_UNARY_EXP, h, h, &e[n]), "exp");
    REJECT(bp_op_unary(s->be, BP_UNARY_EXP, a, c, &e[n]), "exp");
    REJECT(bp_op_unary(s->be, BP_UNARY_EXP, NULL, c, &e[n]), "NULL");
    REJECT(bp_op_reduce(s->be, BP_REDUCE_SUM, a, v5, &e[n]), "sum");
    int32_t badperm[2] = {0, 0};
    REJECT(bp_op_permute(s->be, a, badperm, a, &e[n]), "permut");
    REJECT(bp_op_get_rows(s->be, a, v5, c, &e[n]), "get_rows"); /* ids not I32 */
    bp_conv2d_desc cd = {sizeof cd, a, b, NULL, c, 1, 1, 0, 0, 1, 1, 1};
    REJECT(bp_op_conv2d(s->be, &cd, &e[n]), "conv2d"); /* rank 2 */
    REJECT(bp_op_layernorm(s->be, a, v5, NULL, 1e-5f, a, &e[n]), "layernorm");
#undef REJECT
    for (int i = 0; i < n; i++)
        CHECKF(r[i].st == BP_ERR_INVALID && e[i].msg[0] && strstr(e[i].msg, r[i].needle),
               "%s: %s gave status %d, message '%s' (wanted one mentioning '%s')", s->label, r[i].what, (int)r[i].st,
               e[i].msg, r[i].needle);
    stat_of(s, "rejected calls", 0.0)->cases += n;
    (void)i2;
done:
    bp_tensor_free(a), bp_tensor_free(b), bp_tensor_free(c), bp_tensor_free(b34), bp_tensor_free(h), bp_tensor_free(v5);
    bp_tensor_free(i2);
}

/* -------------------------------------------------------------------- main -- */

/* Op groups to run: all, or those named in argv[1] ("matmul,softmax"). */
static const char *g_only = NULL;

static int wanted(const char *group) {
    if (!g_only) return 1;
    size_t n = strlen(group);
    for (const char *p = strstr(g_only, group); p; p = strstr(p + 1, group)) /* "conv2d" also in "conv2d_backward" */
        if ((p == g_only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

static void run_suite(suite *s) {
    int64_t big = getenv("BP_UNDER_VALGRIND") ? 40960 : 70000; /* above the cpu backend's threading threshold */
    if (wanted("matmul")) test_matmul(s);
    if (wanted("conv2d")) test_conv2d(s);
    if (wanted("unary")) test_unary(s, big);
    if (wanted("binary")) test_binary(s, big);
    if (wanted("affine")) test_affine(s, big);
    if (wanted("softmax")) test_softmax(s);
    if (wanted("norms")) test_norms(s);
    if (wanted("reduce")) test_reduce(s);
    if (wanted("convert")) test_convert(s);
    if (wanted("permute")) test_permute(s);
    if (wanted("get_rows")) test_get_rows(s);
    if (wanted("fill")) test_fill(s, big);
    if (wanted("rejects")) test_rejects(s);
    train_ops_run(s, wanted, big);
    printf("backend %s — %s; %s memory, %d thread(s), BF16 matmul %s\n", s->label, bp_backend_device(s->be),
           bp_backend_is_host(s->be) ? "host" : "device", (int)bp_backend_threads(s->be),
           bp_backend_has_bf16(s->be) ? "native" : "not native");
    printf("  %-16s %6s %8s %11s %9s\n", "op", "cases", "skipped", "max error", "tolerance");
    for (int i = 0; i < s->n_stats; i++) {
        const op_stat *st = &s->stats[i];
        printf("  %-16s %6d %8d %11.3g %9.3g  %s\n", st->name, st->cases, st->skipped, st->max_err, st->tol,
               st->failed ? "FAILED" : st->cases ? "ok" : "skipped");
    }
    fflush(stdout);
}

static void run_backend(bp_registry *reg, const char *name, const char *label, const char *const *kv, uint32_t nkv,
                        uint64_t seed, int *n_run) {
    bp_error err = BP_ERROR_INIT;
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_BACKEND, name);
    bp_paramset *ps = NULL;
    if (nkv && c) {
        CHECK_OK(bp_paramset_from_strings(c->desc, kv, nkv, &ps, &err), &err);
        if (!ps) return;
    }
    bp_backend *be = NULL;
    bp_status st = bp_registry_create_backend(reg, name, ps ? bp_paramset_params(ps) : NULL, &be, &err);
    if (st != BP_OK) {
        if (strcmp(name, "cpu") == 0 || st != BP_ERR_DEVICE) {
            fprintf(stderr, "FAIL: backend %s: %s\n", label, err.msg);
            bp_test_failures++;
        } else {
            printf("backend %s skipped: %s\n", label, err.msg);
        }
        bp_paramset_free(ps);
        return;
    }
    suite *s = xalloc(sizeof *s);
    s->be = be;
    s->label = label;
    s->must_implement_all = strcmp(name, "cpu") == 0;
    s->r.s = seed;
    run_suite(s);
    free(s);
    bp_backend_free(be);
    bp_paramset_free(ps);
    (*n_run)++;
}

/* cpu instances that differ only in their thread count (the last one also
 * without a primitive cache), for train_ops_determinism. */
static void run_determinism(bp_registry *reg) {
    static const char *const kvs[][2] = {{"threads=1", NULL}, {"threads=2", NULL},
                                         {"threads=3", "primitive_cache=0"}};
    static const char *const labels[] = {"threads=1", "threads=2", "threads=3,primitive_cache=0"};
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_BACKEND, "cpu");
    bp_backend *bes[3] = {NULL, NULL, NULL};
    bp_paramset *ps[3] = {NULL, NULL, NULL};
    int ok = c != NULL;
    for (int k = 0; k < 3 && ok; k++) {
        bp_error err = BP_ERROR_INIT;
        bp_status st = bp_paramset_from_strings(c->desc, kvs[k], kvs[k][1] ? 2 : 1, &ps[k], &err);
        if (st == BP_OK) st = bp_registry_create_backend(reg, "cpu", bp_paramset_params(ps[k]), &bes[k], &err);
        if (st != BP_OK) {
            fprintf(stderr, "FAIL: cpu backend %s: %s\n", labels[k], err.msg);
            bp_test_failures++;
            ok = 0;
        }
    }
    if (ok) train_ops_determinism(bes, labels, 3);
    for (int k = 0; k < 3; k++) {
        bp_backend_free(bes[k]);
        bp_paramset_free(ps[k]);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) g_only = argv[1];
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    if (!reg) return TEST_RESULT();
    CHECK_OK(bp_registry_scan_default(reg, argv[0], &err), &err);

    /* which backends exist, and which cannot run here */
    int n_run = 0, have_cpu = 0, gpu_usable = 0;
    char skipped[1024] = "";
    for (uint32_t i = 0; i < bp_registry_count(reg); i++) {
        const bp_component_info *c = bp_registry_at(reg, i);
        if (c->kind != BP_KIND_BACKEND) continue;
        if (c->shadowed) continue;
        if (c->plugin->score <= 0) {
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%s (%s: plugin score 0, cannot run on this machine)",
                     len ? "; " : "", c->desc->name, c->plugin->path);
            continue;
        }
        if (strcmp(c->desc->name, "cpu") == 0) have_cpu = 1;
        else gpu_usable = 1;
    }
    for (uint32_t i = 0; i < bp_registry_problem_count(reg); i++) {
        bp_plugin_problem p = bp_registry_problem_at(reg, i);
        if (strstr(p.path, "bp-cpu") || strstr(p.path, "bp-cuda"))
            printf("note: plugin %s could not be used: %s\n", p.path, p.message);
    }
    CHECKF(have_cpu, "the cpu backend plugin was not found (BATPIPE_PLUGIN_PATH=%s)",
           getenv("BATPIPE_PLUGIN_PATH") ? getenv("BATPIPE_PLUGIN_PATH") : "(unset)");

    for (uint32_t i = 0; i < bp_registry_count(reg); i++) {
        const bp_component_info *c = bp_registry_at(reg, i);
        if (c->kind != BP_KIND_BACKEND || c->shadowed || c->plugin->score <= 0) continue;
        run_backend(reg, c->desc->name, c->desc->name, NULL, 0, 0x9E3779B97F4A7C15ULL, &n_run);
        if (strcmp(c->desc->name, "cpu") == 0) {
            /* a second configuration: one thread, BF16 matmuls widened to F32 */
            const char *kv[] = {"threads=1", "bf16_upconvert=true", "primitive_cache=2"};
            run_backend(reg, "cpu", "cpu[threads=1,bf16_upconvert,primitive_cache=2]", kv, 3, 0x243F6A8885A308D3ULL,
                        &n_run);
        }
    }
    if (!gpu_usable)
        printf("no GPU backend was tested: %s\n",
               skipped[0] ? skipped : "no GPU backend plugin was found (the CUDA backend is built only with nvcc)");
    else if (skipped[0])
        printf("backends skipped: %s\n", skipped);
    printf("%d backend configuration(s) tested\n", n_run);
    if (have_cpu && wanted("determinism")) run_determinism(reg);
    bp_registry_free(reg);
    bp_test_failures += train_ops_failures();
    return TEST_RESULT();
}
