/* Finite-difference test of the backward ops (cpu backend).
 *
 * For every forward op that has a backward — the unary ops (exact GELU
 * included), softmax with scale and causal mask, layernorm, conv2d,
 * batchnorm in train mode, maxpool2d, get_rows (backward: add_rows), matmul
 * (backward: matmuls through its transposes, bias through sum_to), binary
 * ops with broadcasting (backward of the broadcast operand through sum_to) —
 * a scalar loss L = Σ r ⊙ op(x) with random r is formed, and the gradients
 * that the backward ops compute (dy = r) are compared, for every input and
 * parameter, with two finite-difference estimates:
 *
 *  1. central differences in double on a float64 re-implementation of the
 *     forward (written here), element by element, h = 1e-5·max(1, |x|):
 *     truncation (h²·f'''/6 ~ 1e-11) and rounding (1e-16·|L|/h ~ 1e-11) are
 *     negligible, so the difference measures the analytic gradient, which
 *     the backend computes in float: relative errors of a few 1e-7 of the
 *     terms that make each element, up to ~1e-5 of the tensor's largest
 *     gradient where long sums cancel (conv2d dw, batchnorm). Error =
 *     max_j |g_j − fd_j| / max_j |fd_j|, tolerance 1e-4 — a wrong term,
 *     a wrong sign or a missed border shows up as O(0.01..1).
 *  2. a directional difference through the backend's own float forward op,
 *     dL = L(x + h*d) - L(x - h*d) against sum g*D (D = the float
 *     perturbations actually applied), d = random sign times [0.5, 1],
 *     h = 3e-3*max(|x|, 0.1) per element (small against the curvature scale
 *     |x| of log and sqrt). This ties the backward to the forward kernel's
 *     conventions (mask offsets, padding, tie rules, broadcasting).
 *     Truncation is ~h^2/6 relative (about 2e-6 for unit curvature); the
 *     float outputs carry a few ulp of rounding each, so dL cannot resolve
 *     better than noise = 1e-6*sum|r|(|y+| + |y-|) (~8 ulp of every output
 *     term). Error = |dL - sum g*D| / (sum|g*D| + noise), tolerance 1e-3;
 *     since sum|g*D| ~ 3e-3*sum|g*x|, a wrong gradient scores O(0.1..1).
 * Non-smooth ops get inputs away from their kinks by more than the steps:
 * relu/abs inputs have |x| ≥ 0.1; maxpool inputs are distinct multiples of
 * 0.05 (every window's top two differ by ≥ 0.05 > 2·h·|d|).
 * Prints one line per case; exits non-zero when a tolerance is exceeded. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/ops.h"
#include "batpipe/registry.h"
#include "bp_test.h"
#include "ops_test_util.h"

#define FD_TOL 1e-4
#define DIR_TOL 1e-3
#define MAX_VARS 3

/* ----------------------------------------------------------- the problem -- */

typedef struct fd_var {
    const char *name;
    int32_t nd;
    int64_t shape[4];
    float *x;    /* value */
    float *grad; /* from the backward ops */
} fd_var;

typedef struct fd_problem fd_problem;

struct fd_problem {
    char name[96];
    int n_var;
    fd_var v[MAX_VARS];
    int32_t r_nd;
    int64_t r_shape[4];
    float *r; /* weights of the loss = dy */
    /* parameters of the op */
    int32_t op;
    float scale, eps;
    int causal, affine, trans_a, trans_b, b_shared, has_bias;
    int64_t offset;
    int32_t stride[2], pad[2], dil[2], groups, kernel[2];
    int32_t *ids;
    int64_t n_ids;
    /* L in double on double copies of the variables */
    double (*loss_f64)(const fd_problem *p, double *const *x);
    /* op(x) through the backend, into y (r's size) */
    bp_status (*forward)(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err);
    /* the backward ops: v[i].grad */
    bp_status (*backward)(suite *s, fd_problem *p, bp_error *err);
};

static size_t var_numel(const fd_var *v) { return shape_numel(v->nd, v->shape); }
static size_t r_numel(const fd_problem *p) { return shape_numel(p->r_nd, p->r_shape); }

static fd_var *add_var(fd_problem *p, const char *name, int32_t nd, const int64_t *shape) {
    fd_var *v = &p->v[p->n_var++];
    v->name = name;
    v->nd = nd;
    for (int32_t i = 0; i < nd; i++) v->shape[i] = shape[i];
    v->x = xalloc(var_numel(v) * 4);
    v->grad = xalloc(var_numel(v) * 4);
    return v;
}

static void set_r(fd_problem *p, rng *r, int32_t nd, const int64_t *shape) {
    p->r_nd = nd;
    for (int32_t i = 0; i < nd; i++) p->r_shape[i] = shape[i];
    p->r = xalloc(r_numel(p) * 4);
    fill_uniform(r, p->r, (int64_t)r_numel(p), -1, 1);
}

static void problem_free(fd_problem *p) {
    for (int i = 0; i < p->n_var; i++) free(p->v[i].x), free(p->v[i].grad);
    free(p->r);
    free(p->ids);
}

/* Backend tensors of one call, freed together. */
typedef struct tlist {
    bp_tensor *t[16];
    int n, bad;
} tlist;

static bp_tensor *tl_add(tlist *l, suite *s, int32_t dtype, int32_t nd, const int64_t *shape, const void *host) {
    bp_tensor *t = l->n < 16 ? dev_tensor(s, dtype, nd, shape, host) : NULL;
    if (!t) {
        l->bad = 1;
        return NULL;
    }
    l->t[l->n++] = t;
    return t;
}

static bp_tensor *tl_var(tlist *l, suite *s, const fd_var *v, const float *x) {
    return tl_add(l, s, BP_DTYPE_F32, v->nd, v->shape, x);
}

static void tl_free(tlist *l) {
    for (int i = 0; i < l->n; i++) bp_tensor_free(l->t[i]);
    l->n = 0;
}

static bp_status tl_status(const tlist *l, bp_error *err) {
    return l->bad ? bp_error_set(err, BP_ERR_INTERNAL, "test: cannot make a backend tensor") : BP_OK;
}

/* Read a backend tensor into host floats when st is BP_OK. */
static bp_status read_if(bp_status st, const bp_tensor *t, float *host, bp_error *err) {
    return st == BP_OK ? bp_tensor_read(t, host, bp_tensor_nbytes(t), err) : st;
}

/* ------------------------------------------------------------------- unary -- */

static double unary_loss(const fd_problem *p, double *const *x) {
    double l = 0.0;
    for (size_t i = 0; i < var_numel(&p->v[0]); i++) l += (double)p->r[i] * ref_unary(p->op, x[0][i]);
    return l;
}

static bp_status unary_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x[0]), *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_unary(s->be, (bp_unary_op)p->op, tx, ty, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

static bp_status unary_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], p->v[0].x), *tr = tl_var(&l, s, &p->v[0], p->r);
    bp_tensor *tdx = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_unary_backward(s->be, (bp_unary_op)p->op, tx, tr, tdx, err);
    st = read_if(st, tdx, p->v[0].grad, err);
    tl_free(&l);
    return st;
}

static void make_unary(fd_problem *p, rng *r, int op) {
    int64_t shape[2] = {3, 17};
    snprintf(p->name, sizeof p->name, "unary %s", bp_unary_op_name(op));
    p->op = op;
    fd_var *v = add_var(p, "x", 2, shape);
    double lo, hi;
    unary_range(op, &lo, &hi);
    if (op == BP_UNARY_EXP) lo = -5, hi = 5; /* keeps exp's terms comparable */
    if (op == BP_UNARY_LOG || op == BP_UNARY_SQRT) lo = 0.1, hi = 10;
    for (size_t i = 0; i < var_numel(v); i++) {
        double a = lo + (hi - lo) * rng_unit(r);
        if (op == BP_UNARY_RELU || op == BP_UNARY_ABS) /* |x| ≥ 0.1: away from the kink */
            a = (rng_next(r) & 1 ? 1 : -1) * (0.1 + 3.9 * rng_unit(r));
        v->x[i] = (float)a;
    }
    set_r(p, r, 2, shape);
    p->loss_f64 = unary_loss, p->forward = unary_fwd, p->backward = unary_bwd;
}

/* ----------------------------------------------------------------- softmax -- */

static double softmax_loss(const fd_problem *p, double *const *x) {
    const fd_var *v = &p->v[0];
    int64_t d = v->shape[v->nd - 1], rows = (int64_t)var_numel(v) / d, rdim = v->shape[v->nd - 2];
    double l = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r % rdim;
        const double *xr = x[0] + r * d;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < d; j++)
            if ((!p->causal || j <= i + p->offset) && p->scale * xr[j] > mx) mx = p->scale * xr[j];
        for (int64_t j = 0; j < d; j++)
            if (!p->causal || j <= i + p->offset) sum += exp(p->scale * xr[j] - mx);
        for (int64_t j = 0; j < d; j++)
            if (!p->causal || j <= i + p->offset) l += p->r[r * d + j] * exp(p->scale * xr[j] - mx) / sum;
    }
    return l;
}

static bp_status softmax_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x[0]), *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_softmax(s->be, tx, ty, p->scale, p->causal, p->offset, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

static bp_status softmax_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], p->v[0].x), *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_tensor *tr = tl_var(&l, s, &p->v[0], p->r), *tdx = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_softmax(s->be, tx, ty, p->scale, p->causal, p->offset, err);
    if (st == BP_OK) st = bp_op_softmax_backward(s->be, ty, tr, p->scale, tdx, err);
    st = read_if(st, tdx, p->v[0].grad, err);
    tl_free(&l);
    return st;
}

static void make_softmax(fd_problem *p, rng *r, float scale, int causal, int64_t offset) {
    int64_t shape[3] = {2, 5, 7};
    snprintf(p->name, sizeof p->name, "softmax scale %g%s", (double)scale,
             causal ? (offset < 0 ? ", causal offset -1 (a fully masked row)" : ", causal offset 1") : "");
    p->scale = scale, p->causal = causal, p->offset = offset;
    fd_var *v = add_var(p, "x", 3, shape);
    fill_uniform(r, v->x, (int64_t)var_numel(v), -2, 2);
    set_r(p, r, 3, shape);
    p->loss_f64 = softmax_loss, p->forward = softmax_fwd, p->backward = softmax_bwd;
}

/* --------------------------------------------------------------- layernorm -- */

static double layernorm_loss(const fd_problem *p, double *const *x) {
    const fd_var *v = &p->v[0];
    int64_t d = v->shape[v->nd - 1], rows = (int64_t)var_numel(v) / d;
    double l = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x[0] + r * d;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < d; j++) mean += xr[j];
        mean /= (double)d;
        for (int64_t j = 0; j < d; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= (double)d;
        for (int64_t j = 0; j < d; j++) {
            double y = (xr[j] - mean) / sqrt(var + p->eps);
            if (p->affine) y = y * x[1][j] + x[2][j];
            l += p->r[r * d + j] * y;
        }
    }
    return l;
}

static bp_status layernorm_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x[0]), *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_tensor *tw = p->affine ? tl_var(&l, s, &p->v[1], x[1]) : NULL;
    bp_tensor *tb = p->affine ? tl_var(&l, s, &p->v[2], x[2]) : NULL;
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_layernorm(s->be, tx, tw, tb, p->eps, ty, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

static bp_status layernorm_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], p->v[0].x), *tr = tl_var(&l, s, &p->v[0], p->r);
    bp_tensor *tdx = tl_var(&l, s, &p->v[0], NULL);
    bp_tensor *tw = p->affine ? tl_var(&l, s, &p->v[1], p->v[1].x) : NULL;
    bp_tensor *tdw = p->affine ? tl_var(&l, s, &p->v[1], NULL) : NULL;
    bp_tensor *tdb = p->affine ? tl_var(&l, s, &p->v[2], NULL) : NULL;
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_layernorm_backward(s->be, tx, tw, tr, p->eps, tdx, tdw, tdb, err);
    st = read_if(st, tdx, p->v[0].grad, err);
    if (p->affine) {
        st = read_if(st, tdw, p->v[1].grad, err);
        st = read_if(st, tdb, p->v[2].grad, err);
    }
    tl_free(&l);
    return st;
}

static void make_layernorm(fd_problem *p, rng *r, int affine) {
    int64_t shape[2] = {4, 13}, ws[1] = {13};
    snprintf(p->name, sizeof p->name, "layernorm%s", affine ? " (w, b)" : "");
    p->eps = 1e-5f, p->affine = affine;
    fd_var *v = add_var(p, "x", 2, shape);
    fill_uniform(r, v->x, (int64_t)var_numel(v), -2, 3);
    if (affine) {
        fill_uniform(r, add_var(p, "w", 1, ws)->x, 13, -2, 2);
        fill_uniform(r, add_var(p, "b", 1, ws)->x, 13, -1, 1);
    }
    set_r(p, r, 2, shape);
    p->loss_f64 = layernorm_loss, p->forward = layernorm_fwd, p->backward = layernorm_bwd;
}

/* ------------------------------------------------------------------ conv2d -- */

static int64_t conv_out(int64_t in, int32_t k, int32_t stride, int32_t pad, int32_t dil) {
    return (in + 2 * pad - (int64_t)dil * (k - 1) - 1) / stride + 1;
}

static double conv_loss(const fd_problem *p, double *const *x) {
    const int64_t *xs = p->v[0].shape, *ws = p->v[1].shape, *ys = p->r_shape;
    int64_t g = p->groups, cg = xs[1] / g, og = ws[0] / g;
    double l = 0.0;
    for (int64_t n = 0; n < ys[0]; n++)
        for (int64_t o = 0; o < ys[1]; o++)
            for (int64_t i = 0; i < ys[2]; i++)
                for (int64_t j = 0; j < ys[3]; j++) {
                    double acc = x[2][o];
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t u = 0; u < ws[2]; u++)
                            for (int64_t v = 0; v < ws[3]; v++) {
                                int64_t hi = i * p->stride[0] - p->pad[0] + u * p->dil[0];
                                int64_t wi = j * p->stride[1] - p->pad[1] + v * p->dil[1];
                                if (hi < 0 || hi >= xs[2] || wi < 0 || wi >= xs[3]) continue;
                                acc += x[0][((n * xs[1] + (o / og) * cg + c) * xs[2] + hi) * xs[3] + wi] *
                                       x[1][((o * cg + c) * ws[2] + u) * ws[3] + v];
                            }
                    l += p->r[((n * ys[1] + o) * ys[2] + i) * ys[3] + j] * acc;
                }
    return l;
}

static bp_conv2d_desc conv_desc(const fd_problem *p, bp_tensor *x, bp_tensor *w, bp_tensor *b, bp_tensor *y) {
    bp_conv2d_desc d = {sizeof d, x, w, b, y, p->stride[0], p->stride[1], p->pad[0], p->pad[1],
                        p->dil[0], p->dil[1], p->groups};
    return d;
}

static bp_status conv_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x[0]), *tw = tl_var(&l, s, &p->v[1], x[1]);
    bp_tensor *tb = tl_var(&l, s, &p->v[2], x[2]), *ty = tl_add(&l, s, BP_DTYPE_F32, 4, p->r_shape, NULL);
    bp_status st = tl_status(&l, err);
    bp_conv2d_desc d = conv_desc(p, tx, tw, tb, ty);
    if (st == BP_OK) st = bp_op_conv2d(s->be, &d, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

static bp_status conv_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], p->v[0].x), *tw = tl_var(&l, s, &p->v[1], p->v[1].x);
    bp_tensor *tr = tl_add(&l, s, BP_DTYPE_F32, 4, p->r_shape, p->r);
    bp_tensor *tdx = tl_var(&l, s, &p->v[0], NULL), *tdw = tl_var(&l, s, &p->v[1], NULL);
    bp_tensor *tdb = tl_var(&l, s, &p->v[2], NULL);
    bp_status st = tl_status(&l, err);
    bp_conv2d_desc d = conv_desc(p, tx, tw, NULL, NULL);
    if (st == BP_OK) st = bp_op_conv2d_backward(s->be, &d, tr, tdx, tdw, tdb, err);
    st = read_if(st, tdx, p->v[0].grad, err);
    st = read_if(st, tdw, p->v[1].grad, err);
    st = read_if(st, tdb, p->v[2].grad, err);
    tl_free(&l);
    return st;
}

static void make_conv(fd_problem *p, rng *r, const int64_t xs[4], const int64_t ws[4], int32_t sh, int32_t sw,
                      int32_t ph, int32_t pw, int32_t dh, int32_t dw, int32_t groups) {
    snprintf(p->name, sizeof p->name, "conv2d x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] s%d,%d p%d,%d d%d,%d g%d",
             (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3], (long long)ws[0],
             (long long)ws[1], (long long)ws[2], (long long)ws[3], sh, sw, ph, pw, dh, dw, groups);
    p->stride[0] = sh, p->stride[1] = sw, p->pad[0] = ph, p->pad[1] = pw, p->dil[0] = dh, p->dil[1] = dw;
    p->groups = groups;
    int64_t bs[1] = {ws[0]};
    int64_t ys[4] = {xs[0], ws[0], conv_out(xs[2], (int32_t)ws[2], sh, ph, dh),
                     conv_out(xs[3], (int32_t)ws[3], sw, pw, dw)};
    fill_uniform(r, add_var(p, "x", 4, xs)->x, (int64_t)shape_numel(4, xs), -1, 1);
    fill_uniform(r, add_var(p, "w", 4, ws)->x, (int64_t)shape_numel(4, ws), -1, 1);
    fill_uniform(r, add_var(p, "bias", 1, bs)->x, ws[0], -1, 1);
    set_r(p, r, 4, ys);
    p->loss_f64 = conv_loss, p->forward = conv_fwd, p->backward = conv_bwd;
}

/* --------------------------------------------------------------- batchnorm -- */

static double bn_loss(const fd_problem *p, double *const *x) {
    const int64_t *xs = p->v[0].shape;
    int64_t hw = xs[2] * xs[3];
    double m = (double)(xs[0] * hw), l = 0.0;
    for (int64_t c = 0; c < xs[1]; c++) {
        double mean = 0, var = 0;
        for (int64_t n = 0; n < xs[0]; n++)
            for (int64_t j = 0; j < hw; j++) mean += x[0][(n * xs[1] + c) * hw + j];
        mean /= m;
        for (int64_t n = 0; n < xs[0]; n++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[0][(n * xs[1] + c) * hw + j] - mean;
                var += d * d;
            }
        var /= m;
        for (int64_t n = 0; n < xs[0]; n++)
            for (int64_t j = 0; j < hw; j++) {
                size_t i = (size_t)((n * xs[1] + c) * hw + j);
                double y = (x[0][i] - mean) / sqrt(var + p->eps);
                if (p->affine) y = y * x[1][c] + x[2][c];
                l += p->r[i] * y;
            }
    }
    return l;
}

static bp_status bn_run(suite *s, const fd_problem *p, const float *const *x, float *y, int backward,
                        float *const *grads, bp_error *err) {
    tlist l = {{0}, 0, 0};
    int64_t cs[1] = {p->v[0].shape[1]};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x[0]), *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_tensor *tm = tl_add(&l, s, BP_DTYPE_F32, 1, cs, NULL), *tv = tl_add(&l, s, BP_DTYPE_F32, 1, cs, NULL);
    bp_tensor *tw = p->affine ? tl_var(&l, s, &p->v[1], x[1]) : NULL;
    bp_tensor *tb = p->affine ? tl_var(&l, s, &p->v[2], x[2]) : NULL;
    bp_tensor *tr = backward ? tl_var(&l, s, &p->v[0], p->r) : NULL;
    bp_tensor *tdx = backward ? tl_var(&l, s, &p->v[0], NULL) : NULL;
    bp_tensor *tdw = backward && p->affine ? tl_add(&l, s, BP_DTYPE_F32, 1, cs, NULL) : NULL;
    bp_tensor *tdb = backward && p->affine ? tl_add(&l, s, BP_DTYPE_F32, 1, cs, NULL) : NULL;
    bp_status st = tl_status(&l, err);
    bp_batchnorm_desc d = {sizeof d, tx, ty, tm, tv, tw, tb, p->eps, 1};
    if (st == BP_OK) st = bp_op_batchnorm(s->be, &d, err);
    if (!backward) {
        st = read_if(st, ty, y, err);
    } else {
        if (st == BP_OK) st = bp_op_batchnorm_backward(s->be, &d, tr, tdx, tdw, tdb, err);
        st = read_if(st, tdx, grads[0], err);
        if (p->affine) st = read_if(st, tdw, grads[1], err), st = read_if(st, tdb, grads[2], err);
    }
    tl_free(&l);
    return st;
}

static bp_status bn_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    return bn_run(s, p, (const float *const *)x, y, 0, NULL, err);
}

static bp_status bn_bwd(suite *s, fd_problem *p, bp_error *err) {
    const float *x[3] = {p->v[0].x, p->affine ? p->v[1].x : NULL, p->affine ? p->v[2].x : NULL};
    float *g[3] = {p->v[0].grad, p->affine ? p->v[1].grad : NULL, p->affine ? p->v[2].grad : NULL};
    return bn_run(s, p, x, NULL, 1, g, err);
}

static void make_batchnorm(fd_problem *p, rng *r, int affine) {
    int64_t xs[4] = {3, 2, 4, 5}, cs[1] = {2};
    snprintf(p->name, sizeof p->name, "batchnorm train x[3,2,4,5]%s", affine ? " (w, b)" : "");
    p->eps = 1e-5f, p->affine = affine;
    fill_uniform(r, add_var(p, "x", 4, xs)->x, 120, -1, 2);
    if (affine) {
        fill_uniform(r, add_var(p, "w", 1, cs)->x, 2, -2, 2);
        fill_uniform(r, add_var(p, "b", 1, cs)->x, 2, -1, 1);
    }
    set_r(p, r, 4, xs);
    p->loss_f64 = bn_loss, p->forward = bn_fwd, p->backward = bn_bwd;
}

/* ----------------------------------------------------------------- maxpool -- */

static double pool_loss(const fd_problem *p, double *const *x) {
    const int64_t *xs = p->v[0].shape, *ys = p->r_shape;
    double l = 0.0;
    for (int64_t pl = 0; pl < xs[0] * xs[1]; pl++)
        for (int64_t i = 0; i < ys[2]; i++)
            for (int64_t j = 0; j < ys[3]; j++) {
                double best = -INFINITY;
                for (int64_t u = 0; u < p->kernel[0]; u++)
                    for (int64_t v = 0; v < p->kernel[1]; v++) {
                        int64_t hi = i * p->stride[0] - p->pad[0] + u, wi = j * p->stride[1] - p->pad[1] + v;
                        if (hi < 0 || hi >= xs[2] || wi < 0 || wi >= xs[3]) continue;
                        double c = x[0][pl * xs[2] * xs[3] + hi * xs[3] + wi];
                        if (c > best) best = c;
                    }
                l += p->r[(pl * ys[2] + i) * ys[3] + j] * best;
            }
    return l;
}

static bp_status pool_run(suite *s, const fd_problem *p, const float *x, float *y, float *grad, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *tx = tl_var(&l, s, &p->v[0], x), *ty = tl_add(&l, s, BP_DTYPE_F32, 4, p->r_shape, NULL);
    bp_tensor *ta = grad ? tl_add(&l, s, BP_DTYPE_I32, 4, p->r_shape, NULL) : NULL;
    bp_tensor *tr = grad ? tl_add(&l, s, BP_DTYPE_F32, 4, p->r_shape, p->r) : NULL;
    bp_tensor *tdx = grad ? tl_var(&l, s, &p->v[0], NULL) : NULL;
    bp_status st = tl_status(&l, err);
    bp_pool2d_desc d = {sizeof d, tx, ty, ta, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                        p->pad[0], p->pad[1]};
    if (st == BP_OK) st = bp_op_maxpool2d(s->be, &d, err);
    if (grad) {
        if (st == BP_OK) st = bp_op_maxpool2d_backward(s->be, &d, tr, tdx, err);
        st = read_if(st, tdx, grad, err);
    } else {
        st = read_if(st, ty, y, err);
    }
    tl_free(&l);
    return st;
}

static bp_status pool_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    return pool_run(s, p, x[0], y, NULL, err);
}

static bp_status pool_bwd(suite *s, fd_problem *p, bp_error *err) {
    return pool_run(s, p, p->v[0].x, NULL, p->v[0].grad, err);
}

static void make_maxpool(fd_problem *p, rng *r) {
    int64_t xs[4] = {2, 2, 7, 6};
    snprintf(p->name, sizeof p->name, "maxpool2d x[2,2,7,6] kernel 3x2 stride 2,2 pad 1,1");
    p->kernel[0] = 3, p->kernel[1] = 2, p->stride[0] = 2, p->stride[1] = 2, p->pad[0] = 1, p->pad[1] = 1;
    fd_var *v = add_var(p, "x", 4, xs);
    size_t n = var_numel(v);
    for (size_t i = 0; i < n; i++) v->x[i] = (float)(0.05 * ((double)i - (double)n / 2)); /* distinct, 0.05 apart */
    for (size_t i = n - 1; i > 0; i--) { /* shuffled */
        size_t j = (size_t)rng_int(r, (int64_t)i + 1);
        float t = v->x[i];
        v->x[i] = v->x[j], v->x[j] = t;
    }
    int64_t ys[4] = {2, 2, (7 + 2 - 3) / 2 + 1, (6 + 2 - 2) / 2 + 1};
    set_r(p, r, 4, ys);
    p->loss_f64 = pool_loss, p->forward = pool_fwd, p->backward = pool_bwd;
}

/* ---------------------------------------------------------------- get_rows -- */

static double rows_loss(const fd_problem *p, double *const *x) {
    int64_t d = p->v[0].shape[1];
    double l = 0.0;
    for (int64_t i = 0; i < p->n_ids; i++)
        for (int64_t j = 0; j < d; j++) l += p->r[i * d + j] * x[0][p->ids[i] * d + j];
    return l;
}

static bp_status rows_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    int64_t is[1] = {p->n_ids};
    bp_tensor *tt = tl_var(&l, s, &p->v[0], x[0]), *ti = tl_add(&l, s, BP_DTYPE_I32, 1, is, p->ids);
    bp_tensor *ty = tl_add(&l, s, BP_DTYPE_F32, 2, p->r_shape, NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_get_rows(s->be, tt, ti, ty, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

static bp_status rows_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    int64_t is[1] = {p->n_ids};
    bp_tensor *ti = tl_add(&l, s, BP_DTYPE_I32, 1, is, p->ids), *tr = tl_add(&l, s, BP_DTYPE_F32, 2, p->r_shape, p->r);
    bp_tensor *tdt = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_fill(s->be, tdt, 0.0f, err);
    if (st == BP_OK) st = bp_op_add_rows(s->be, tr, ti, tdt, err);
    st = read_if(st, tdt, p->v[0].grad, err);
    tl_free(&l);
    return st;
}

static void make_rows(fd_problem *p, rng *r) {
    int64_t ts[2] = {7, 5}, ys[2] = {9, 5};
    snprintf(p->name, sizeof p->name, "get_rows table[7,5], 9 ids with repeats (backward: add_rows)");
    fill_uniform(r, add_var(p, "table", 2, ts)->x, 35, -1, 1);
    p->n_ids = 9;
    p->ids = xalloc(9 * 4);
    for (int i = 0; i < 9; i++) p->ids[i] = (int32_t)rng_int(r, 7);
    p->ids[4] = p->ids[0], p->ids[8] = p->ids[0];
    set_r(p, r, 2, ys);
    p->loss_f64 = rows_loss, p->forward = rows_fwd, p->backward = rows_bwd;
}

/* ------------------------------------------------------------------ matmul -- */

typedef struct mm_dims {
    int64_t batch, m, k, n;
} mm_dims;

static mm_dims mm_dims_of(const fd_problem *p) {
    const fd_var *a = &p->v[0], *b = &p->v[1];
    mm_dims d;
    d.batch = 1;
    for (int32_t i = 0; i < a->nd - 2; i++) d.batch *= a->shape[i];
    d.m = p->trans_a ? a->shape[a->nd - 1] : a->shape[a->nd - 2];
    d.k = p->trans_a ? a->shape[a->nd - 2] : a->shape[a->nd - 1];
    d.n = p->trans_b ? b->shape[b->nd - 2] : b->shape[b->nd - 1];
    return d;
}

static double mm_loss(const fd_problem *p, double *const *x) {
    mm_dims d = mm_dims_of(p);
    double l = 0.0;
    for (int64_t q = 0; q < d.batch; q++) {
        const double *a = x[0] + q * d.m * d.k, *b = x[1] + (p->b_shared ? 0 : q) * d.k * d.n;
        for (int64_t i = 0; i < d.m; i++)
            for (int64_t j = 0; j < d.n; j++) {
                double acc = p->has_bias ? x[2][j] : 0.0;
                for (int64_t t = 0; t < d.k; t++)
                    acc += (p->trans_a ? a[t * d.m + i] : a[i * d.k + t]) *
                           (p->trans_b ? b[j * d.k + t] : b[t * d.n + j]);
                l += p->r[(q * d.m + i) * d.n + j] * acc;
            }
    }
    return l;
}

static bp_status mm_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *ta = tl_var(&l, s, &p->v[0], x[0]), *tb = tl_var(&l, s, &p->v[1], x[1]);
    bp_tensor *tbias = p->has_bias ? tl_var(&l, s, &p->v[2], x[2]) : NULL;
    bp_tensor *tc = tl_add(&l, s, BP_DTYPE_F32, p->r_nd, p->r_shape, NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_matmul(s->be, ta, tb, tc, tbias, p->trans_a, p->trans_b, 1.0f, 0.0f, err);
    st = read_if(st, tc, y, err);
    tl_free(&l);
    return st;
}

/* A 2-D view [rows, cols] of a dense backend tensor (borrowed data). */
static bp_tensor view2(const bp_tensor *t, int64_t rows, int64_t cols) {
    bp_tensor v = *t;
    v.ndim = 2;
    v.shape[0] = rows, v.shape[1] = cols;
    v.owns_data = 0;
    return v;
}

/* c = op(a)·op(b) (+ bias), dc = r:
 *   da = dc·op(b)ᵀ, as stored: trans_a ? op(b)·dcᵀ : dc·op(b)ᵀ;
 *   db = op(a)ᵀ·dc, as stored: trans_b ? dcᵀ·op(a) : op(a)ᵀ·dc (a shared b sums
 *        over the batch: the batch and M dims of a and dc flattened into rows);
 *   dbias = sum_to(dc, [N]). */
static bp_status mm_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    mm_dims d = mm_dims_of(p);
    bp_tensor *ta = tl_var(&l, s, &p->v[0], p->v[0].x), *tb = tl_var(&l, s, &p->v[1], p->v[1].x);
    bp_tensor *tdc = tl_add(&l, s, BP_DTYPE_F32, p->r_nd, p->r_shape, p->r);
    bp_tensor *tda = tl_var(&l, s, &p->v[0], NULL), *tdb = tl_var(&l, s, &p->v[1], NULL);
    bp_tensor *tdbias = p->has_bias ? tl_var(&l, s, &p->v[2], NULL) : NULL;
    bp_status st = tl_status(&l, err);
    int ta_ = p->trans_a, tb_ = p->trans_b;
    if (st == BP_OK) {
        if (!ta_) st = bp_op_matmul(s->be, tdc, tb, tda, NULL, 0, !tb_, 1.0f, 0.0f, err);
        else st = bp_op_matmul(s->be, tb, tdc, tda, NULL, tb_, 1, 1.0f, 0.0f, err);
    }
    if (st == BP_OK) {
        if (p->b_shared) { /* trans_a = 0 here: a as [batch·M, K], dc as [batch·M, N] */
            bp_tensor a2 = view2(ta, d.batch * d.m, d.k), c2 = view2(tdc, d.batch * d.m, d.n);
            if (!tb_) st = bp_op_matmul(s->be, &a2, &c2, tdb, NULL, 1, 0, 1.0f, 0.0f, err);
            else st = bp_op_matmul(s->be, &c2, &a2, tdb, NULL, 1, 0, 1.0f, 0.0f, err);
        } else if (!tb_) {
            st = bp_op_matmul(s->be, ta, tdc, tdb, NULL, !ta_, 0, 1.0f, 0.0f, err);
        } else {
            st = bp_op_matmul(s->be, tdc, ta, tdb, NULL, 1, ta_, 1.0f, 0.0f, err);
        }
    }
    if (st == BP_OK && tdbias) st = bp_op_sum_to(s->be, tdc, tdbias, err);
    st = read_if(st, tda, p->v[0].grad, err);
    st = read_if(st, tdb, p->v[1].grad, err);
    if (tdbias) st = read_if(st, tdbias, p->v[2].grad, err);
    tl_free(&l);
    return st;
}

/* batch: 0 (2-D), or 2 with b batched or shared */
static void make_matmul(fd_problem *p, rng *r, int trans_a, int trans_b, int batch, int b_shared) {
    const int64_t M = 5, K = 4, N = 3;
    p->trans_a = trans_a, p->trans_b = trans_b, p->b_shared = b_shared, p->has_bias = 1;
    snprintf(p->name, sizeof p->name, "matmul%s%s%s + bias (M5 K4 N3)",
             batch ? (b_shared ? " batch 2, shared b" : " batch 2") : "", trans_a ? " aT" : "", trans_b ? " bT" : "");
    int32_t nd = batch ? 3 : 2, bnd = b_shared ? 2 : nd;
    int64_t as[3], bs[3], cs[3], ns[1] = {N};
    as[0] = bs[0] = cs[0] = 2;
    as[nd - 2] = trans_a ? K : M, as[nd - 1] = trans_a ? M : K;
    bs[bnd - 2] = trans_b ? N : K, bs[bnd - 1] = trans_b ? K : N;
    cs[nd - 2] = M, cs[nd - 1] = N;
    fill_uniform(r, add_var(p, "a", nd, as)->x, (int64_t)shape_numel(nd, as), -1, 1);
    fill_uniform(r, add_var(p, "b", bnd, bs)->x, (int64_t)shape_numel(bnd, bs), -1, 1);
    fill_uniform(r, add_var(p, "bias", 1, ns)->x, N, -1, 1);
    set_r(p, r, nd, cs);
    p->loss_f64 = mm_loss, p->forward = mm_fwd, p->backward = mm_bwd;
}

/* ------------------------------------------------------------------ binary -- */

static double bin_f64(int op, double a, double b) {
    switch (op) {
    case BP_BINARY_ADD: return a + b;
    case BP_BINARY_SUB: return a - b;
    case BP_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

static double bin_loss(const fd_problem *p, double *const *x) {
    size_t n = var_numel(&p->v[0]), nb = var_numel(&p->v[1]);
    double l = 0.0;
    for (size_t i = 0; i < n; i++) l += p->r[i] * bin_f64(p->op, x[0][i], x[1][i % nb]);
    return l;
}

static bp_status bin_fwd(suite *s, const fd_problem *p, float *const *x, float *y, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *ta = tl_var(&l, s, &p->v[0], x[0]), *tb = tl_var(&l, s, &p->v[1], x[1]);
    bp_tensor *ty = tl_var(&l, s, &p->v[0], NULL);
    bp_status st = tl_status(&l, err);
    if (st == BP_OK) st = bp_op_binary(s->be, (bp_binary_op)p->op, ta, tb, ty, err);
    st = read_if(st, ty, y, err);
    tl_free(&l);
    return st;
}

/* y = a op b with b broadcast: da has a's shape, db = sum_to(∂y/∂b ⊙ r):
 *   add: da = r, db = sum_to(r);   sub: da = r, db = sum_to(−r);
 *   mul: da = r·b, db = sum_to(r·a);   div: da = r/b, db = sum_to(−(r·a)/b/b). */
static bp_status bin_bwd(suite *s, fd_problem *p, bp_error *err) {
    tlist l = {{0}, 0, 0};
    bp_tensor *ta = tl_var(&l, s, &p->v[0], p->v[0].x), *tb = tl_var(&l, s, &p->v[1], p->v[1].x);
    bp_tensor *tr = tl_var(&l, s, &p->v[0], p->r), *tda = tl_var(&l, s, &p->v[0], NULL);
    bp_tensor *tt = tl_var(&l, s, &p->v[0], NULL), *tdb = tl_var(&l, s, &p->v[1], NULL);
    bp_status st = tl_status(&l, err);
    if (st != BP_OK) goto done;
    switch (p->op) {
    case BP_BINARY_ADD:
    case BP_BINARY_SUB:
        st = bp_op_affine(s->be, tr, 1.0f, 0.0f, tda, err);
        if (st == BP_OK) st = bp_op_affine(s->be, tr, p->op == BP_BINARY_ADD ? 1.0f : -1.0f, 0.0f, tt, err);
        break;
    case BP_BINARY_MUL:
        st = bp_op_binary(s->be, BP_BINARY_MUL, tr, tb, tda, err);
        if (st == BP_OK) st = bp_op_binary(s->be, BP_BINARY_MUL, tr, ta, tt, err);
        break;
    default:
        st = bp_op_binary(s->be, BP_BINARY_DIV, tr, tb, tda, err);
        if (st == BP_OK) st = bp_op_binary(s->be, BP_BINARY_MUL, tr, ta, tt, err);
        if (st == BP_OK) st = bp_op_binary(s->be, BP_BINARY_DIV, tt, tb, tt, err);
        if (st == BP_OK) st = bp_op_binary(s->be, BP_BINARY_DIV, tt, tb, tt, err);
        if (st == BP_OK) st = bp_op_affine(s->be, tt, -1.0f, 0.0f, tt, err);
        break;
    }
    if (st == BP_OK) st = bp_op_sum_to(s->be, tt, tdb, err);
    st = read_if(st, tda, p->v[0].grad, err);
    st = read_if(st, tdb, p->v[1].grad, err);
done:
    tl_free(&l);
    return st;
}

static void make_binary(fd_problem *p, rng *r, int op, int32_t bnd, const int64_t *bshape) {
    int64_t as[3] = {2, 3, 4};
    char bs[32] = "";
    for (int32_t i = 0; i < bnd; i++)
        snprintf(bs + strlen(bs), sizeof bs - strlen(bs), "%s%lld", i ? "," : "", (long long)bshape[i]);
    snprintf(p->name, sizeof p->name, "binary %s a[2,3,4] b[%s] (backward of b: sum_to)", bp_binary_op_name(op), bs);
    p->op = op;
    /* a and r positive: db sums up to 24 terms of one sign, so the float
     * sums are not at the mercy of cancellation (the errors are relative to
     * the largest gradient, and b may have a single element) */
    fill_uniform(r, add_var(p, "a", 3, as)->x, 24, 0.5, 2);
    fd_var *b = add_var(p, "b", bnd, bshape);
    for (size_t i = 0; i < var_numel(b); i++) /* |b| in [0.5, 2]: no division blow-up */
        b->x[i] = (float)((rng_next(r) & 1 ? 1 : -1) * (0.5 + 1.5 * rng_unit(r)));
    set_r(p, r, 3, as);
    fill_uniform(r, p->r, 24, 0.2, 1);
    p->loss_f64 = bin_loss, p->forward = bin_fwd, p->backward = bin_bwd;
}

/* ---------------------------------------------------------------- checking -- */

typedef struct fd_totals {
    double fd_max, dir_max;
    int cases, failed;
} fd_totals;

/* Both finite-difference checks of every input of one problem; one line of
 * output per problem. */
static void fd_check(suite *s, fd_problem *p, fd_totals *tot) {
    bp_error err = BP_ERROR_INIT;
    bp_status st = p->backward(s, p, &err);
    if (st != BP_OK) {
        fprintf(stderr, "FAIL %s: backward: %s (%s)\n", p->name, err.msg, bp_status_name(st));
        bp_test_failures++;
        tot->failed++;
        return;
    }
    double *xd[MAX_VARS] = {NULL};
    float *xf[MAX_VARS] = {NULL};
    for (int i = 0; i < p->n_var; i++) {
        size_t n = var_numel(&p->v[i]);
        xd[i] = xalloc(n * 8);
        xf[i] = xalloc(n * 4);
        for (size_t j = 0; j < n; j++) xd[i][j] = p->v[i].x[j], xf[i][j] = p->v[i].x[j];
    }
    size_t ny = r_numel(p);
    float *yp = xalloc(ny * 4), *ym = xalloc(ny * 4);
    char line[512];
    int len = snprintf(line, sizeof line, "  %-66s", p->name);
    int bad = 0;
    for (int i = 0; i < p->n_var; i++) {
        fd_var *v = &p->v[i];
        size_t n = var_numel(v);
        /* 1: central differences in double */
        double gmax = 0.0, emax = 0.0;
        double *fd = xalloc(n * 8);
        for (size_t j = 0; j < n; j++) {
            double x0 = xd[i][j], h = 1e-5 * fmax(1.0, fabs(x0));
            xd[i][j] = x0 + h;
            double lp = p->loss_f64(p, xd);
            xd[i][j] = x0 - h;
            double lm = p->loss_f64(p, xd);
            xd[i][j] = x0;
            fd[j] = (lp - lm) / (2.0 * h);
            gmax = fmax(gmax, fabs(fd[j]));
        }
        for (size_t j = 0; j < n; j++) emax = fmax(emax, fabs((double)v->grad[j] - fd[j]) / fmax(gmax, 1e-30));
        if (gmax == 0.0) /* every gradient zero: the analytic ones must be too */
            for (size_t j = 0; j < n; j++) emax = fmax(emax, v->grad[j] != 0.0f ? INFINITY : 0.0);
        free(fd);
        /* 2: directional difference through the backend's float forward */
        double pred = 0.0, pred_abs = 0.0, lp = 0.0, lm = 0.0, noise = 0.0;
        float *minus = xalloc(n * 4);
        for (size_t j = 0; j < n; j++) {
            double d = (rng_next(&s->r) & 1 ? 1.0 : -1.0) * (0.5 + 0.5 * rng_unit(&s->r));
            double h = 3e-3 * fmax(fabs(v->x[j]), 0.1);
            float up = (float)(v->x[j] + h * d), dn = (float)(v->x[j] - h * d);
            pred += (double)v->grad[j] * ((double)up - dn);
            pred_abs += fabs((double)v->grad[j] * ((double)up - dn));
            xf[i][j] = up;
            minus[j] = dn;
        }
        st = p->forward(s, p, xf, yp, &err);
        memcpy(xf[i], minus, n * 4);
        if (st == BP_OK) st = p->forward(s, p, xf, ym, &err);
        memcpy(xf[i], v->x, n * 4);
        free(minus);
        double edir = INFINITY;
        if (st == BP_OK) {
            for (size_t k = 0; k < ny; k++) {
                lp += (double)p->r[k] * yp[k], lm += (double)p->r[k] * ym[k];
                noise += 1e-6 * fabs((double)p->r[k]) * (fabs((double)yp[k]) + fabs((double)ym[k]));
            }
            edir = pred_abs + noise > 0 ? fabs((lp - lm) - pred) / (pred_abs + noise) : 0.0;
        } else {
            fprintf(stderr, "FAIL %s: forward: %s (%s)\n", p->name, err.msg, bp_status_name(st));
        }
        int ok = emax <= FD_TOL && edir <= DIR_TOL;
        if (!ok) bad = 1;
        tot->fd_max = fmax(tot->fd_max, emax);
        tot->dir_max = fmax(tot->dir_max, edir);
        if (len < (int)sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len, "  d%s: fd %.1e dir %.1e%s", v->name, emax, edir,
                            ok ? "" : " FAILED");
    }
    printf("%s\n", line);
    tot->cases++;
    if (bad) {
        tot->failed++;
        bp_test_failures++;
    }
    for (int i = 0; i < p->n_var; i++) free(xd[i]), free(xf[i]);
    free(yp), free(ym);
}

typedef void (*fd_family_fn)(suite *s, fd_totals *tot);

static void run_problem(suite *s, fd_problem *p, fd_totals *tot) {
    fd_check(s, p, tot);
    problem_free(p);
    memset(p, 0, sizeof *p);
}

static void family_unary(suite *s, fd_totals *tot) {
    for (int op = 0; op < BP_UNARY_COUNT; op++) {
        fd_problem p = {0};
        make_unary(&p, &s->r, op);
        run_problem(s, &p, tot);
    }
}

static void family_softmax(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    make_softmax(&p, &s->r, -1.3f, 0, 0);
    run_problem(s, &p, tot);
    make_softmax(&p, &s->r, 0.7f, 1, 1);
    run_problem(s, &p, tot);
    make_softmax(&p, &s->r, 2.0f, 1, -1);
    run_problem(s, &p, tot);
}

static void family_layernorm(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    for (int affine = 1; affine >= 0; affine--) {
        make_layernorm(&p, &s->r, affine);
        run_problem(s, &p, tot);
    }
}

static void family_conv(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    const int64_t x1[4] = {2, 3, 9, 7}, w1[4] = {4, 3, 3, 3};
    make_conv(&p, &s->r, x1, w1, 2, 1, 1, 2, 1, 2, 1);
    run_problem(s, &p, tot);
    const int64_t x2[4] = {1, 4, 8, 6}, w2[4] = {6, 2, 3, 2};
    make_conv(&p, &s->r, x2, w2, 1, 1, 1, 1, 2, 1, 2);
    run_problem(s, &p, tot);
    const int64_t x3[4] = {2, 3, 5, 5}, w3[4] = {3, 1, 2, 2}; /* depthwise, stride 2 drops the last row/col */
    make_conv(&p, &s->r, x3, w3, 2, 2, 0, 0, 1, 1, 3);
    run_problem(s, &p, tot);
}

static void family_batchnorm(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    for (int affine = 1; affine >= 0; affine--) {
        make_batchnorm(&p, &s->r, affine);
        run_problem(s, &p, tot);
    }
}

static void family_pool_rows(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    make_maxpool(&p, &s->r);
    run_problem(s, &p, tot);
    make_rows(&p, &s->r);
    run_problem(s, &p, tot);
}

static void family_matmul(suite *s, fd_totals *tot) {
    fd_problem p = {0};
    for (int batch = 0; batch < 2; batch++)
        for (int t = 0; t < 4; t++) {
            make_matmul(&p, &s->r, t & 1, t >> 1, batch, 0);
            run_problem(s, &p, tot);
        }
    for (int tb = 0; tb < 2; tb++) { /* shared b: a batched, b 2-D */
        make_matmul(&p, &s->r, 0, tb, 1, 1);
        run_problem(s, &p, tot);
    }
}

static void family_binary(suite *s, fd_totals *tot) {
    const struct { int32_t nd; int64_t shape[3]; } forms[] = {{3, {2, 3, 4}}, {2, {3, 4}}, {1, {4}}, {1, {1}}};
    const int ops[] = {BP_BINARY_ADD, BP_BINARY_SUB, BP_BINARY_MUL, BP_BINARY_DIV};
    for (size_t oi = 0; oi < 4; oi++)
        for (size_t fi = 0; fi < 4; fi++) {
            fd_problem p = {0};
            make_binary(&p, &s->r, ops[oi], forms[fi].nd, forms[fi].shape);
            run_problem(s, &p, tot);
        }
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    if (!reg) return TEST_RESULT();
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    suite *s = xalloc(sizeof *s);
    bp_status st = bp_registry_create_backend(reg, "cpu", NULL, &s->be, &err);
    if (st != BP_OK) {
        fprintf(stderr, "FAIL: cpu backend: %s\n", err.msg);
        free(s);
        bp_registry_free(reg);
        return 1;
    }
    s->label = "cpu";
    s->must_implement_all = 1;
    s->r.s = 0xB7E151628AED2A6BULL;
    printf("finite differences on %s: per input, fd = max|g − fd|/max|fd| (double forward, tol %g), "
           "dir = directional through the backend's forward (tol %g)\n",
           bp_backend_device(s->be), FD_TOL, DIR_TOL);
    fd_totals tot = {0, 0, 0, 0};
    const fd_family_fn families[] = {family_unary,     family_softmax,   family_layernorm, family_conv,
                                     family_batchnorm, family_pool_rows, family_matmul,    family_binary};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) families[i](s, &tot);
    printf("%d cases, %d failed; largest fd error %.2e, largest directional error %.2e\n", tot.cases, tot.failed,
           tot.fd_max, tot.dir_max);
    bp_backend_free(s->be);
    free(s);
    bp_registry_free(reg);
    return TEST_RESULT();
}
