/* The cuda backend on a real GPU: every op of the table through the core API
 * (bp_op_*), compared with plain float64 (or bit-exact) host computations in
 * this file. Small and independent of tests/backend_ops.
 *
 * Without a usable GPU the plugin must still load, score 0, refuse to create
 * with BP_ERR_DEVICE, and this test exits 77 (skipped) printing
 * "no CUDA device: <reason>". */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "batpipe/ops.h"
#include "batpipe/plugin.h"
#include "batpipe/registry.h"
#include "bp_test.h"

/* ------------------------------------------------------------- helpers -- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() & 0xffffff) / 16777216.0f; }

static void fill_rand(float *p, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) p[i] = frand(lo, hi);
}

static int64_t numel_of(int32_t ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Per-op statistics, printed at the end. */
typedef struct op_stat {
    const char *name;
    int cases;
    double max_err;
} op_stat;

static op_stat stats[64];
static int n_stats = 0;

static void stat_add(const char *name, double err) {
    int i = 0;
    while (i < n_stats && strcmp(stats[i].name, name) != 0) i++;
    if (i == n_stats) {
        if (n_stats == (int)(sizeof stats / sizeof stats[0])) return;
        stats[n_stats].name = name;
        stats[n_stats].cases = 0;
        stats[n_stats].max_err = 0.0;
        n_stats++;
    }
    stats[i].cases++;
    if (err > stats[i].max_err) stats[i].max_err = err;
}

/* A device tensor holding `host` (NULL: left as allocated). NULL on failure. */
static bp_tensor *dev(bp_backend *be, int32_t dtype, int32_t ndim, const int64_t *shape, const void *host) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor *t = NULL;
    bp_status st = bp_tensor_new(be, dtype, ndim, shape, &t, &err);
    CHECK_OK(st, &err);
    if (st != BP_OK) return NULL;
    if (host) {
        st = bp_tensor_write(t, host, bp_tensor_nbytes(t), &err);
        CHECK_OK(st, &err);
        if (st != BP_OK) {
            bp_tensor_free(t);
            return NULL;
        }
    }
    return t;
}

static int fetch(const bp_tensor *t, void *host) {
    bp_error err = BP_ERROR_INIT;
    bp_status st = bp_tensor_read(t, host, bp_tensor_nbytes(t), &err);
    CHECK_OK(st, &err);
    return st == BP_OK;
}

/* max |got − ref| with the check |got − ref| ≤ atol + rtol·|ref| (NaN fails). */
static double compare(const char *what, const float *got, const double *ref, int64_t n, double atol, double rtol) {
    double max_err = 0.0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= atol + rtol * fabs(ref[i]))) {
            if (bad < 0) bad = i;
            if (isnan(e)) e = INFINITY;
        }
        if (e > max_err) max_err = e;
    }
    CHECKF(bad < 0, "%s: element %lld is %.9g, expected %.9g (max error %.3g)", what, (long long)bad,
           bad >= 0 ? (double)got[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0, max_err);
    return max_err;
}

/* --------------------------------------------------------------- memory -- */

static void test_memory(bp_backend *be) {
    bp_error err = BP_ERROR_INIT;
    int64_t shape[1] = {1001};
    float src[1001], back[1001], zeros[1001];
    fill_rand(src, 1001, -10.0f, 10.0f);
    bp_tensor *a = dev(be, BP_DTYPE_F32, 1, shape, NULL);
    bp_tensor *b = dev(be, BP_DTYPE_F32, 1, shape, NULL);
    if (!a || !b) goto done;
    /* fresh allocations are zero-filled */
    if (fetch(a, zeros)) {
        int nz = 0;
        for (int i = 0; i < 1001; i++) nz += zeros[i] != 0.0f;
        CHECKF(nz == 0, "a new tensor has %d non-zero elements", nz);
    }
    CHECK_OK(bp_tensor_write(a, src, sizeof src, &err), &err);
    bp_backend_impl *impl = bp_backend_impl_of(be);
    CHECK_OK(impl->copy(impl, b->data, a->data, sizeof src, &err), &err);
    CHECK_OK(bp_backend_sync(be, &err), &err);
    if (fetch(b, back)) CHECKF(memcmp(src, back, sizeof src) == 0, "write → copy → read changed the data");
    stat_add("memory", 0.0);
done:
    bp_tensor_free(a);
    bp_tensor_free(b);
}

/* ------------------------------------------------------ elementwise ops -- */

static double unary_ref(int op, double x) {
    switch (op) {
    case BP_UNARY_NEG: return -x;
    case BP_UNARY_ABS: return fabs(x);
    case BP_UNARY_SQR: return x * x;
    case BP_UNARY_SQRT: return sqrt(x);
    case BP_UNARY_EXP: return exp(x);
    case BP_UNARY_LOG: return log(x);
    case BP_UNARY_SIN: return sin(x);
    case BP_UNARY_COS: return cos(x);
    case BP_UNARY_TANH: return tanh(x);
    case BP_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case BP_UNARY_RELU: return x > 0 ? x : 0.0;
    case BP_UNARY_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case BP_UNARY_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case BP_UNARY_SILU: return x / (1.0 + exp(-x));
    }
    return NAN;
}

static void test_unary(bp_backend *be) {
    enum { N = 4099 };
    static float x[N], y[N];
    static double ref[N];
    int64_t shape[2] = {1, N};
    for (int op = 0; op < BP_UNARY_COUNT; op++) {
        int positive = op == BP_UNARY_LOG || op == BP_UNARY_SQRT;
        fill_rand(x, N, positive ? 0.001f : -6.0f, positive ? 50.0f : 6.0f);
        x[0] = positive ? 1.0f : 0.0f;
        for (int i = 0; i < N; i++) ref[i] = unary_ref(op, x[i]);
        bp_tensor *tx = dev(be, BP_DTYPE_F32, 2, shape, x), *ty = dev(be, BP_DTYPE_F32, 2, shape, NULL);
        bp_error err = BP_ERROR_INIT;
        if (tx && ty) {
            CHECK_OK(bp_op_unary(be, (bp_unary_op)op, tx, ty, &err), &err);
            if (fetch(ty, y)) stat_add(bp_unary_op_name(op), compare(bp_unary_op_name(op), y, ref, N, 1e-6, 2e-6));
            /* in place */
            CHECK_OK(bp_op_unary(be, (bp_unary_op)op, tx, tx, &err), &err);
            if (fetch(tx, y)) compare(bp_unary_op_name(op), y, ref, N, 1e-6, 2e-6);
        }
        bp_tensor_free(tx);
        bp_tensor_free(ty);
    }
}

static double binary_ref(int op, double a, double b) {
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

static void test_binary(bp_backend *be) {
    const int64_t ashape[3] = {3, 5, 37};
    const int64_t n = 3 * 5 * 37;
    /* b: same shape, trailing [5,37], trailing [37], one element [1] */
    const int32_t bnd[4] = {3, 2, 1, 1};
    const int64_t bshapes[4][3] = {{3, 5, 37}, {5, 37, 0}, {37, 0, 0}, {1, 0, 0}};
    static float a[3 * 5 * 37], b[3 * 5 * 37], y[3 * 5 * 37];
    static double ref[3 * 5 * 37];
    for (int op = 0; op < BP_BINARY_COUNT; op++) {
        for (int f = 0; f < 4; f++) {
            int64_t nb = numel_of(bnd[f], bshapes[f]);
            fill_rand(a, n, -3.0f, 3.0f);
            fill_rand(b, nb, 0.5f, 2.0f);
            for (int64_t i = 0; i < nb; i++)
                if (rng_u32() & 1) b[i] = -b[i];
            for (int64_t i = 0; i < n; i++) ref[i] = binary_ref(op, a[i], b[i % nb]);
            bp_tensor *ta = dev(be, BP_DTYPE_F32, 3, ashape, a), *tb = dev(be, BP_DTYPE_F32, bnd[f], bshapes[f], b);
            bp_tensor *ty = dev(be, BP_DTYPE_F32, 3, ashape, NULL);
            bp_error err = BP_ERROR_INIT;
            if (ta && tb && ty) {
                CHECK_OK(bp_op_binary(be, (bp_binary_op)op, ta, tb, ty, &err), &err);
                if (fetch(ty, y))
                    stat_add(bp_binary_op_name(op), compare(bp_binary_op_name(op), y, ref, n, 0.0, 1.2e-7));
                CHECK_OK(bp_op_binary(be, (bp_binary_op)op, ta, tb, ta, &err), &err); /* y aliases a */
                if (fetch(ta, y)) compare(bp_binary_op_name(op), y, ref, n, 0.0, 1.2e-7);
            }
            bp_tensor_free(ta);
            bp_tensor_free(tb);
            bp_tensor_free(ty);
        }
    }
}

static void test_affine_fill(bp_backend *be) {
    enum { N = 777 };
    float x[N], y[N];
    double ref[N];
    int64_t shape[1] = {N};
    fill_rand(x, N, -100.0f, 100.0f);
    for (int i = 0; i < N; i++) ref[i] = (double)0.37f * x[i] - 1.25;
    bp_tensor *tx = dev(be, BP_DTYPE_F32, 1, shape, x), *ty = dev(be, BP_DTYPE_F32, 1, shape, NULL);
    bp_error err = BP_ERROR_INIT;
    if (tx && ty) {
        CHECK_OK(bp_op_affine(be, tx, 0.37f, -1.25f, ty, &err), &err);
        if (fetch(ty, y)) stat_add("affine", compare("affine", y, ref, N, 0.0, 1.2e-7));
        CHECK_OK(bp_op_fill(be, ty, -2.5f, &err), &err);
        for (int i = 0; i < N; i++) ref[i] = -2.5;
        if (fetch(ty, y)) stat_add("fill", compare("fill", y, ref, N, 0.0, 0.0));
    }
    bp_tensor_free(tx);
    bp_tensor_free(ty);
}

/* ---------------------------------------------------------- row-wise ops -- */

static void softmax_case(bp_backend *be, int32_t ndim, const int64_t *shape, float scale, int causal, int64_t off) {
    int64_t n = numel_of(ndim, shape), D = shape[ndim - 1], S = ndim >= 2 ? shape[ndim - 2] : 1;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double *ref = malloc((size_t)n * sizeof *ref);
    if (!x || !y || !ref) goto done;
    fill_rand(x, n, -8.0f, 8.0f);
    for (int64_t r = 0; r < n / D; r++) {
        int64_t valid = D;
        if (causal) {
            int64_t lim = r % S + off + 1;
            valid = lim < 0 ? 0 : (lim < D ? lim : D);
        }
        double m = -INFINITY, s = 0.0;
        for (int64_t j = 0; j < valid; j++) m = fmax(m, (double)scale * x[r * D + j]);
        for (int64_t j = 0; j < valid; j++) s += exp((double)scale * x[r * D + j] - m);
        for (int64_t j = 0; j < D; j++) ref[r * D + j] = j < valid ? exp((double)scale * x[r * D + j] - m) / s : 0.0;
    }
    bp_tensor *tx = dev(be, BP_DTYPE_F32, ndim, shape, x), *ty = dev(be, BP_DTYPE_F32, ndim, shape, NULL);
    bp_error err = BP_ERROR_INIT;
    if (tx && ty) {
        CHECK_OK(bp_op_softmax(be, tx, ty, scale, causal, off, &err), &err);
        if (fetch(ty, y)) stat_add("softmax", compare("softmax", y, ref, n, 1e-7, 1e-5));
    }
    bp_tensor_free(tx);
    bp_tensor_free(ty);
done:
    free(x);
    free(y);
    free(ref);
}

static void norm_case(bp_backend *be, int rms, int64_t rows, int64_t D, int with_w, int with_b) {
    int64_t shape[2] = {rows, D}, pshape[1] = {D};
    int64_t n = rows * D;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    float *w = malloc((size_t)D * sizeof *w), *b = malloc((size_t)D * sizeof *b);
    double *ref = malloc((size_t)n * sizeof *ref);
    const float eps = 1e-5f;
    if (!x || !y || !w || !b || !ref) goto done;
    fill_rand(x, n, -2.0f, 3.0f);
    fill_rand(w, D, 0.5f, 1.5f);
    fill_rand(b, D, -1.0f, 1.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        double mean = 0.0, var = 0.0, ms = 0.0;
        for (int64_t j = 0; j < D; j++) mean += xr[j], ms += (double)xr[j] * xr[j];
        mean /= (double)D;
        ms /= (double)D;
        for (int64_t j = 0; j < D; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= (double)D;
        for (int64_t j = 0; j < D; j++) {
            double v = rms ? xr[j] / sqrt(ms + eps) : (xr[j] - mean) / sqrt(var + eps);
            if (with_w) v *= w[j];
            if (!rms && with_b) v += b[j];
            ref[r * D + j] = v;
        }
    }
    bp_tensor *tx = dev(be, BP_DTYPE_F32, 2, shape, x), *ty = dev(be, BP_DTYPE_F32, 2, shape, NULL);
    bp_tensor *tw = dev(be, BP_DTYPE_F32, 1, pshape, w), *tb = dev(be, BP_DTYPE_F32, 1, pshape, b);
    bp_error err = BP_ERROR_INIT;
    if (tx && ty && tw && tb) {
        const char *name = rms ? "rmsnorm" : "layernorm";
        if (rms)
            CHECK_OK(bp_op_rmsnorm(be, tx, with_w ? tw : NULL, eps, ty, &err), &err);
        else
            CHECK_OK(bp_op_layernorm(be, tx, with_w ? tw : NULL, with_b ? tb : NULL, eps, ty, &err), &err);
        if (fetch(ty, y)) stat_add(name, compare(name, y, ref, n, 1e-5, 1e-5));
    }
    bp_tensor_free(tx);
    bp_tensor_free(ty);
    bp_tensor_free(tw);
    bp_tensor_free(tb);
done:
    free(x);
    free(y);
    free(w);
    free(b);
    free(ref);
}

static void reduce_case(bp_backend *be, int op, int64_t rows, int64_t D, int keepdim) {
    int64_t xshape[2] = {rows, D}, yshape[2] = {rows, 1};
    float *x = malloc((size_t)(rows * D) * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    double *ref = malloc((size_t)rows * sizeof *ref);
    if (!x || !y || !ref) goto done;
    fill_rand(x, rows * D, -5.0f, 5.0f);
    for (int64_t r = 0; r < rows; r++) {
        double acc = op == BP_REDUCE_MAX ? -INFINITY : 0.0;
        for (int64_t j = 0; j < D; j++) acc = op == BP_REDUCE_MAX ? fmax(acc, x[r * D + j]) : acc + x[r * D + j];
        ref[r] = op == BP_REDUCE_MEAN ? acc / (double)D : acc;
    }
    bp_tensor *tx = dev(be, BP_DTYPE_F32, 2, xshape, x);
    bp_tensor *ty = dev(be, BP_DTYPE_F32, keepdim ? 2 : 1, yshape, NULL);
    bp_error err = BP_ERROR_INIT;
    if (tx && ty) {
        static const char *const names[BP_REDUCE_COUNT] = {"reduce_sum", "reduce_mean", "reduce_max"};
        const char *name = names[op];
        CHECK_OK(bp_op_reduce(be, (bp_reduce_op)op, tx, ty, &err), &err);
        /* sums of D values in [-5, 5]: absolute error grows with D */
        if (fetch(ty, y)) stat_add(name, compare(name, y, ref, rows, 1e-6 * (double)D, 1e-5));
    }
    bp_tensor_free(tx);
    bp_tensor_free(ty);
done:
    free(x);
    free(y);
    free(ref);
}

static void test_rows(bp_backend *be) {
    const int64_t s1[4] = {2, 3, 5, 9}, s2[3] = {2, 6, 6}, s3[3] = {2, 4, 7}, s4[2] = {3, 1000}, s5[1] = {33};
    softmax_case(be, 4, s1, 0.5f, 0, 0);
    softmax_case(be, 3, s2, 1.0f, 1, 0);
    softmax_case(be, 3, s3, 0.125f, 1, 2);
    softmax_case(be, 3, s3, 1.0f, 1, -2); /* first two rows of each matrix fully masked: zeros */
    softmax_case(be, 2, s4, 1.0f, 0, 0);
    softmax_case(be, 1, s5, 2.0f, 0, 0);
    const int64_t rows[4] = {4, 3, 1, 17}, dims[4] = {37, 1024, 1, 4099};
    for (int i = 0; i < 4; i++) {
        norm_case(be, 0, rows[i], dims[i], 1, 1);
        norm_case(be, 0, rows[i], dims[i], 0, 0);
        norm_case(be, 0, rows[i], dims[i], 1, 0);
        norm_case(be, 1, rows[i], dims[i], 1, 0);
        norm_case(be, 1, rows[i], dims[i], 0, 0);
    }
    for (int op = 0; op < BP_REDUCE_COUNT; op++) {
        reduce_case(be, op, 5, 33, 0);
        reduce_case(be, op, 7, 1, 1);
        reduce_case(be, op, 2, 3000, 0);
        reduce_case(be, op, 300, 64, 1);
    }
}

/* ------------------------------------------------------------- convert -- */

/* One conversion x (dtype tx) → y (dtype ty) of n elements, checked bit for
 * bit against the host conversions of tensor.h. */
static void convert_case(bp_backend *be, int32_t tx, int32_t ty, const void *x, int64_t n) {
    size_t ex = bp_dtype_block_bytes(tx), ey = bp_dtype_block_bytes(ty);
    uint8_t *want = malloc((size_t)n * ey), *got = malloc((size_t)n * ey);
    if (!want || !got) goto done;
    for (int64_t i = 0; i < n; i++) {
        float f;
        uint16_t h;
        if (tx == BP_DTYPE_F32) {
            memcpy(&f, (const uint8_t *)x + i * ex, 4);
        } else {
            memcpy(&h, (const uint8_t *)x + i * ex, 2);
            f = tx == BP_DTYPE_F16 ? bp_f16_to_f32(h) : bp_bf16_to_f32(h);
        }
        if (ty == BP_DTYPE_F32 && tx == BP_DTYPE_F32) {
            memcpy(want + i * ey, (const uint8_t *)x + i * ex, 4);
        } else if (ty == BP_DTYPE_F32) {
            memcpy(want + i * ey, &f, 4);
        } else if (tx == ty) {
            memcpy(want + i * ey, (const uint8_t *)x + i * ex, 2);
        } else {
            h = ty == BP_DTYPE_F16 ? bp_f32_to_f16(f) : bp_f32_to_bf16(f);
            memcpy(want + i * ey, &h, 2);
        }
    }
    int64_t shape[1] = {n};
    bp_tensor *a = dev(be, tx, 1, shape, x), *b = dev(be, ty, 1, shape, NULL);
    bp_error err = BP_ERROR_INIT;
    if (a && b) {
        CHECK_OK(bp_op_convert(be, a, b, &err), &err);
        if (fetch(b, got)) {
            int64_t bad = -1, nbad = 0;
            for (int64_t i = 0; i < n; i++)
                if (memcmp(got + i * ey, want + i * ey, ey) != 0) {
                    if (bad < 0) bad = i;
                    nbad++;
                }
            CHECKF(nbad == 0, "convert %s → %s: %lld of %lld elements differ from the host conversion (first #%lld)",
                   bp_dtype_name(tx), bp_dtype_name(ty), (long long)nbad, (long long)n, (long long)bad);
            stat_add("convert", nbad ? 1.0 : 0.0);
        }
    }
    bp_tensor_free(a);
    bp_tensor_free(b);
done:
    free(want);
    free(got);
}

static void test_convert(bp_backend *be) {
    /* every 16-bit pattern as F16 and as BF16 */
    enum { N16 = 65536, N32 = 200000 };
    uint16_t *all16 = malloc(N16 * sizeof *all16);
    uint32_t *bits32 = malloc(N32 * sizeof *bits32);
    if (!all16 || !bits32) goto done;
    for (int i = 0; i < N16; i++) all16[i] = (uint16_t)i;
    /* F32 inputs: special values, half/bf16 rounding ties, then random bit patterns */
    const float specials[] = {0.0f,        -0.0f,      1.0f,         -1.0f,        0.1f,          65504.0f,
                              65519.99f,   65520.0f,   -65536.0f,    1e-8f,        5.9604645e-8f, 2.9802322e-8f,
                              2.9802326e-8f, 6.1035156e-5f, 6.0975552e-5f, 1.00048828125f, 1.00146484375f, 3.4e38f,
                              INFINITY,    -INFINITY,  NAN,          1.00390625f,  1.01171875f,   -1e-40f};
    size_t ns = sizeof specials / sizeof specials[0];
    memcpy(bits32, specials, sizeof specials);
    bits32[ns] = 0x7fc12345u; /* NaN payloads */
    bits32[ns + 1] = 0xff800001u;
    for (int i = (int)ns + 2; i < N32; i++) bits32[i] = rng_u32() ^ (rng_u32() << 16);
    const int32_t types[3] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_BF16};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            if (types[i] == BP_DTYPE_F32)
                convert_case(be, types[i], types[j], bits32, N32);
            else
                convert_case(be, types[i], types[j], all16, N16);
        }
done:
    free(all16);
    free(bits32);
}

/* ------------------------------------------------------------- permute -- */

static void permute_case(bp_backend *be, int32_t dtype, int32_t ndim, const int64_t *xshape, const int32_t *perm) {
    size_t es = bp_dtype_block_bytes(dtype);
    int64_t n = numel_of(ndim, xshape), yshape[4], xstride[4];
    uint8_t *x = malloc((size_t)n * es), *want = malloc((size_t)n * es), *got = malloc((size_t)n * es);
    if (!x || !want || !got) goto done;
    for (int64_t i = 0; i < n * (int64_t)es; i++) x[i] = (uint8_t)rng_u32();
    for (int32_t i = 0; i < ndim; i++) yshape[i] = xshape[perm[i]];
    xstride[ndim - 1] = 1;
    for (int32_t i = ndim - 2; i >= 0; i--) xstride[i] = xstride[i + 1] * xshape[i + 1];
    for (int64_t o = 0; o < n; o++) { /* decompose the output index, gather from x */
        int64_t t = o, src = 0;
        for (int32_t i = ndim - 1; i >= 0; i--) {
            src += (t % yshape[i]) * xstride[perm[i]];
            t /= yshape[i];
        }
        memcpy(want + o * (int64_t)es, x + src * (int64_t)es, es);
    }
    bp_tensor *tx = dev(be, dtype, ndim, xshape, x), *ty = dev(be, dtype, ndim, yshape, NULL);
    bp_error err = BP_ERROR_INIT;
    if (tx && ty) {
        CHECK_OK(bp_op_permute(be, tx, perm, ty, &err), &err);
        if (fetch(ty, got)) {
            int same = memcmp(got, want, (size_t)n * es) == 0;
            CHECKF(same, "permute %s rank %d perm [%d %d %d %d] differs", bp_dtype_name(dtype), ndim, perm[0],
                   ndim > 1 ? perm[1] : -1, ndim > 2 ? perm[2] : -1, ndim > 3 ? perm[3] : -1);
            stat_add("permute", same ? 0.0 : 1.0);
        }
    }
    bp_tensor_free(tx);
    bp_tensor_free(ty);
done:
    free(x);
    free(want);
    free(got);
}

static void test_permute(bp_backend *be) {
    const int32_t dtypes[4] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_I8, BP_DTYPE_F64};
    const int64_t s1[1] = {13}, s2[2] = {7, 11}, s3[3] = {3, 5, 7}, s4[4] = {2, 3, 5, 7};
    const int32_t p1[1] = {0}, p2[2] = {1, 0}, p3a[3] = {2, 0, 1}, p3b[3] = {0, 2, 1}, p4a[4] = {0, 2, 1, 3},
                  p4b[4] = {3, 1, 0, 2}, p4c[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        permute_case(be, dtypes[i], 1, s1, p1);
        permute_case(be, dtypes[i], 2, s2, p2);
        permute_case(be, dtypes[i], 3, s3, p3a);
        permute_case(be, dtypes[i], 3, s3, p3b);
        permute_case(be, dtypes[i], 4, s4, p4a);
        permute_case(be, dtypes[i], 4, s4, p4b);
        permute_case(be, dtypes[i], 4, s4, p4c);
    }
}

/* ------------------------------------------------------------ get_rows -- */

/* Host dequantisation of one row, written from the block layouts (independent of the plugin). */
static void host_row(int32_t dtype, const uint8_t *row, int64_t D, float *out) {
    for (int64_t j = 0; j < D; j++) {
        const uint8_t *blk;
        uint16_t h, hm;
        switch (dtype) {
        case BP_DTYPE_F32: memcpy(&out[j], row + 4 * j, 4); break;
        case BP_DTYPE_F16: memcpy(&h, row + 2 * j, 2), out[j] = bp_f16_to_f32(h); break;
        case BP_DTYPE_BF16: memcpy(&h, row + 2 * j, 2), out[j] = bp_bf16_to_f32(h); break;
        case BP_DTYPE_Q8_0:
            blk = row + (j / 32) * 34;
            memcpy(&h, blk, 2);
            out[j] = bp_f16_to_f32(h) * (float)(int8_t)blk[2 + j % 32];
            break;
        case BP_DTYPE_Q4_0: {
            blk = row + (j / 32) * 18;
            memcpy(&h, blk, 2);
            int q = (int)(j % 32);
            int nib = q < 16 ? (blk[2 + q] & 15) : (blk[2 + q - 16] >> 4);
            out[j] = bp_f16_to_f32(h) * (float)(nib - 8);
            break;
        }
        case BP_DTYPE_Q4_1: {
            blk = row + (j / 32) * 20;
            memcpy(&h, blk, 2);
            memcpy(&hm, blk + 2, 2);
            int q = (int)(j % 32);
            int nib = q < 16 ? (blk[4 + q] & 15) : (blk[4 + q - 16] >> 4);
            out[j] = bp_f16_to_f32(h) * (float)nib + bp_f16_to_f32(hm);
            break;
        }
        default: out[j] = NAN;
        }
    }
}

static void test_get_rows(bp_backend *be) {
    enum { V = 9, D = 96, NIDS = 7 };
    const int32_t dtypes[6] = {BP_DTYPE_F32, BP_DTYPE_F16, BP_DTYPE_BF16, BP_DTYPE_Q8_0, BP_DTYPE_Q4_0, BP_DTYPE_Q4_1};
    int32_t ids[NIDS] = {3, 0, 8, 3, 5, 1, 8};
    int64_t tshape[2] = {V, D}, ishape[1] = {NIDS}, yshape[2] = {NIDS, D};
    for (int k = 0; k < 6; k++) {
        int32_t t = dtypes[k];
        size_t row_bytes = (size_t)(D / bp_dtype_block_elems(t)) * bp_dtype_block_bytes(t);
        uint8_t *table = malloc(row_bytes * V);
        float *want = malloc(sizeof(float) * NIDS * D), *got = malloc(sizeof(float) * NIDS * D);
        double *ref = malloc(sizeof(double) * NIDS * D);
        if (!table || !want || !got || !ref) goto next;
        for (int64_t r = 0; r < V; r++) {
            uint8_t *row = table + r * row_bytes;
            for (int64_t j = 0; j < D; j++) {
                float v = frand(-3.0f, 3.0f);
                uint16_t h;
                if (t == BP_DTYPE_F32) memcpy(row + 4 * j, &v, 4);
                if (t == BP_DTYPE_F16) h = bp_f32_to_f16(v), memcpy(row + 2 * j, &h, 2);
                if (t == BP_DTYPE_BF16) h = bp_f32_to_bf16(v), memcpy(row + 2 * j, &h, 2);
            }
            if (bp_dtype_block_elems(t) > 1) { /* random quants, sensible f16 scales (and mins) */
                size_t bb = bp_dtype_block_bytes(t);
                for (size_t i = 0; i < row_bytes; i++) row[i] = (uint8_t)rng_u32();
                for (size_t blk = 0; blk < row_bytes / bb; blk++) {
                    uint16_t d = bp_f32_to_f16(frand(0.001f, 0.2f)), m = bp_f32_to_f16(frand(-1.0f, 1.0f));
                    memcpy(row + blk * bb, &d, 2);
                    if (t == BP_DTYPE_Q4_1) memcpy(row + blk * bb + 2, &m, 2);
                }
            }
        }
        for (int i = 0; i < NIDS; i++) host_row(t, table + (size_t)ids[i] * row_bytes, D, want + i * D);
        for (int i = 0; i < NIDS * D; i++) ref[i] = want[i];
        bp_tensor *tt = dev(be, t, 2, tshape, table), *ti = dev(be, BP_DTYPE_I32, 1, ishape, ids);
        bp_tensor *ty = dev(be, BP_DTYPE_F32, 2, yshape, NULL);
        bp_error err = BP_ERROR_INIT;
        if (tt && ti && ty) {
            CHECK_OK(bp_op_get_rows(be, tt, ti, ty, &err), &err);
            if (fetch(ty, got)) stat_add("get_rows", compare(bp_dtype_name(t), got, ref, NIDS * D, 0.0, 0.0));
            /* an id outside [0, V) is an error naming it */
            int32_t bad_ids[NIDS] = {1, 2, 3, V, 0, -1, 4};
            CHECK_OK(bp_tensor_write(ti, bad_ids, sizeof bad_ids, &err), &err);
            bp_status st = bp_op_get_rows(be, tt, ti, ty, &err);
            CHECKF(st == BP_ERR_INVALID && strstr(err.msg, "id 9 at position 3"), "bad id: status %d, '%s'", (int)st,
                   err.msg);
        }
        bp_tensor_free(tt);
        bp_tensor_free(ti);
        bp_tensor_free(ty);
    next:
        free(table);
        free(want);
        free(got);
        free(ref);
    }
}

/* -------------------------------------------------------------- matmul -- */

typedef struct mm_case {
    int64_t batch[2]; /* leading dims of a and c (0 = absent) */
    int64_t M, K, N;
    int trans_a, trans_b, b_shared, bias, bf16;
    float alpha, beta;
} mm_case;

static void matmul_case(bp_backend *be, const mm_case *mc) {
    int32_t nlead = (mc->batch[0] ? 1 : 0) + (mc->batch[1] ? 1 : 0);
    int64_t B = (mc->batch[0] ? mc->batch[0] : 1) * (mc->batch[1] ? mc->batch[1] : 1);
    int64_t M = mc->M, K = mc->K, N = mc->N;
    int64_t as[4], bs[4], cs[4];
    int32_t r = nlead + 2;
    for (int32_t i = 0; i < nlead; i++) as[i] = bs[i] = cs[i] = mc->batch[i];
    as[r - 2] = mc->trans_a ? K : M, as[r - 1] = mc->trans_a ? M : K;
    int32_t rb = mc->b_shared ? 2 : r;
    bs[rb - 2] = mc->trans_b ? N : K, bs[rb - 1] = mc->trans_b ? K : N;
    cs[r - 2] = M, cs[r - 1] = N;
    int64_t na = B * M * K, nb = (mc->b_shared ? 1 : B) * K * N, nc = B * M * N;
    float *a = malloc(sizeof(float) * (size_t)(na + 1)), *b = malloc(sizeof(float) * (size_t)(nb + 1));
    float *c0 = malloc(sizeof(float) * (size_t)nc), *c = malloc(sizeof(float) * (size_t)nc);
    float *bias = malloc(sizeof(float) * (size_t)N);
    uint16_t *a16 = malloc(2 * (size_t)(na + 1)), *b16 = malloc(2 * (size_t)(nb + 1));
    double *ref = malloc(sizeof(double) * (size_t)nc), *tol = malloc(sizeof(double) * (size_t)nc);
    if (!a || !b || !c0 || !c || !bias || !a16 || !b16 || !ref || !tol) goto done;
    fill_rand(a, na, -1.0f, 1.0f);
    fill_rand(b, nb, -1.0f, 1.0f);
    fill_rand(bias, N, -1.0f, 1.0f);
    for (int64_t i = 0; i < nc; i++) c0[i] = mc->beta == 0.0f ? NAN : frand(-1.0f, 1.0f); /* beta = 0 must not read c */
    if (mc->bf16) { /* the reference uses the rounded inputs */
        for (int64_t i = 0; i < na; i++) a16[i] = bp_f32_to_bf16(a[i]), a[i] = bp_bf16_to_f32(a16[i]);
        for (int64_t i = 0; i < nb; i++) b16[i] = bp_f32_to_bf16(b[i]), b[i] = bp_bf16_to_f32(b16[i]);
    }
    for (int64_t bt = 0; bt < B; bt++) {
        const float *ab = a + bt * M * K, *bb = b + (mc->b_shared ? 0 : bt * K * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0.0, sa = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    double av = mc->trans_a ? ab[k * M + i] : ab[i * K + k];
                    double bv = mc->trans_b ? bb[j * K + k] : bb[k * N + j];
                    s += av * bv;
                    sa += fabs(av * bv);
                }
                int64_t o = bt * M * N + i * N + j;
                double v = (double)mc->alpha * s;
                if (mc->beta != 0.0f) v += (double)mc->beta * c0[o];
                if (mc->bias) v += bias[j];
                ref[o] = v;
                /* F32 accumulation: error ~ K·eps·Σ|a·b| */
                tol[o] = 1e-6 + 1.2e-7 * (double)(K + 4) * (fabs(mc->alpha) * sa + 2.0);
            }
    }
    int32_t dt = mc->bf16 ? BP_DTYPE_BF16 : BP_DTYPE_F32;
    bp_tensor *ta = dev(be, dt, r, as, mc->bf16 ? (void *)a16 : (void *)a);
    bp_tensor *tb = dev(be, dt, rb, bs, mc->bf16 ? (void *)b16 : (void *)b);
    bp_tensor *tc = dev(be, BP_DTYPE_F32, r, cs, c0);
    int64_t bshape[1] = {N};
    bp_tensor *tbias = mc->bias ? dev(be, BP_DTYPE_F32, 1, bshape, bias) : NULL;
    bp_error err = BP_ERROR_INIT;
    if (ta && tb && tc && (tbias || !mc->bias)) {
        CHECK_OK(bp_op_matmul(be, ta, tb, tc, tbias, mc->trans_a, mc->trans_b, mc->alpha, mc->beta, &err), &err);
        if (fetch(tc, c)) {
            double max_err = 0.0;
            int64_t bad = -1;
            for (int64_t i = 0; i < nc; i++) {
                double e = fabs((double)c[i] - ref[i]);
                if (!(e <= tol[i]) && bad < 0) bad = i;
                if (e > max_err || isnan(e)) max_err = isnan(e) ? INFINITY : e;
            }
            CHECKF(bad < 0,
                   "matmul %s B=%lld M=%lld K=%lld N=%lld ta=%d tb=%d shared=%d bias=%d alpha=%g beta=%g: "
                   "element %lld is %.9g, expected %.9g (max error %.3g)",
                   mc->bf16 ? "BF16" : "F32", (long long)B, (long long)M, (long long)K, (long long)N, mc->trans_a,
                   mc->trans_b, mc->b_shared, mc->bias, (double)mc->alpha, (double)mc->beta, (long long)bad,
                   bad >= 0 ? (double)c[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0, max_err);
            stat_add(mc->bf16 ? "matmul_bf16" : "matmul_f32", max_err);
        }
    }
    bp_tensor_free(ta);
    bp_tensor_free(tb);
    bp_tensor_free(tc);
    bp_tensor_free(tbias);
done:
    free(a);
    free(b);
    free(c0);
    free(c);
    free(bias);
    free(a16);
    free(b16);
    free(ref);
    free(tol);
}

static void test_matmul(bp_backend *be) {
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++) {
                mm_case c1 = {{2, 3}, 5, 7, 3, ta, tb, 0, 0, bf16, 1.0f, 0.0f};
                matmul_case(be, &c1);
                mm_case c2 = {{4, 0}, 17, 33, 9, ta, tb, 1, 1, bf16, 0.5f, 0.25f};
                matmul_case(be, &c2);
                mm_case c3 = {{0, 0}, 65, 130, 47, ta, tb, 0, 1, bf16, -1.5f, 1.0f};
                matmul_case(be, &c3);
            }
        mm_case big = {{3, 0}, 256, 384, 320, 0, 1, 1, 1, bf16, 1.0f, 0.0f};
        matmul_case(be, &big);
        mm_case k0 = {{2, 0}, 4, 0, 6, 0, 0, 0, 1, bf16, 1.0f, 0.5f}; /* empty sum: c = beta·c + bias */
        matmul_case(be, &k0);
        mm_case one = {{0, 0}, 1, 1, 1, 0, 0, 0, 0, bf16, 2.0f, 0.0f};
        matmul_case(be, &one);
    }
}

/* -------------------------------------------------------------- conv2d -- */

typedef struct conv_case {
    int64_t n, c, h, w, o, kh, kw;
    int32_t sh, sw, ph, pw, dh, dw, groups;
    int bias;
} conv_case;

static void conv2d_case(bp_backend *be, const conv_case *cc) {
    int64_t cg = cc->c / cc->groups, og = cc->o / cc->groups;
    int64_t oh = (cc->h + 2 * cc->ph - cc->dh * (cc->kh - 1) - 1) / cc->sh + 1;
    int64_t ow = (cc->w + 2 * cc->pw - cc->dw * (cc->kw - 1) - 1) / cc->sw + 1;
    int64_t xs[4] = {cc->n, cc->c, cc->h, cc->w}, ws[4] = {cc->o, cg, cc->kh, cc->kw}, ys[4] = {cc->n, cc->o, oh, ow};
    int64_t bs[1] = {cc->o};
    int64_t nx = numel_of(4, xs), nw = numel_of(4, ws), ny = numel_of(4, ys);
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
    float *bias = malloc(sizeof(float) * (size_t)cc->o), *y = malloc(sizeof(float) * (size_t)ny);
    double *ref = malloc(sizeof(double) * (size_t)ny);
    if (!x || !w || !bias || !y || !ref) goto done;
    fill_rand(x, nx, -1.0f, 1.0f);
    fill_rand(w, nw, -1.0f, 1.0f);
    fill_rand(bias, cc->o, -1.0f, 1.0f);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++) {
            int64_t g = o / og;
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = cc->bias ? bias[o] : 0.0;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ki = 0; ki < cc->kh; ki++)
                            for (int64_t kj = 0; kj < cc->kw; kj++) {
                                int64_t ih = i * cc->sh - cc->ph + ki * cc->dh, iw = j * cc->sw - cc->pw + kj * cc->dw;
                                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w) continue;
                                s += (double)x[((n * cc->c + g * cg + ci) * cc->h + ih) * cc->w + iw] *
                                     w[((o * cg + ci) * cc->kh + ki) * cc->kw + kj];
                            }
                    ref[((n * cc->o + o) * oh + i) * ow + j] = s;
                }
        }
    bp_tensor *tx = dev(be, BP_DTYPE_F32, 4, xs, x), *tw = dev(be, BP_DTYPE_F32, 4, ws, w);
    bp_tensor *ty = dev(be, BP_DTYPE_F32, 4, ys, NULL), *tb = dev(be, BP_DTYPE_F32, 1, bs, bias);
    bp_error err = BP_ERROR_INIT;
    if (tx && tw && ty && tb) {
        bp_conv2d_desc d = {sizeof d, tx, tw, cc->bias ? tb : NULL, ty, cc->sh, cc->sw, cc->ph, cc->pw,
                            cc->dh, cc->dw, cc->groups};
        CHECK_OK(bp_op_conv2d(be, &d, &err), &err);
        /* F32 accumulation over K products of values in [-1, 1] (mean |x·w| = 1/4) */
        double K = (double)(cg * cc->kh * cc->kw);
        if (fetch(ty, y)) stat_add("conv2d", compare("conv2d", y, ref, ny, 1e-5 + 1.2e-7 * (K + 4) * K / 4, 1e-6));
    }
    bp_tensor_free(tx);
    bp_tensor_free(tw);
    bp_tensor_free(ty);
    bp_tensor_free(tb);
done:
    free(x);
    free(w);
    free(bias);
    free(y);
    free(ref);
}

static void test_conv2d(bp_backend *be, bp_backend *be_small_scratch) {
    const conv_case cases[] = {
        {2, 4, 7, 9, 6, 3, 3, 2, 1, 1, 2, 1, 2, 2, 1},    /* stride, pad, dilation, groups 2, bias */
        {3, 3, 8, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* dense 3×3 'same' */
        {2, 6, 5, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},    /* 1×1: the direct path */
        {2, 6, 5, 4, 6, 1, 1, 1, 1, 0, 0, 1, 1, 3, 1},    /* 1×1 grouped */
        {1, 4, 16, 12, 8, 4, 4, 4, 4, 0, 0, 1, 1, 1, 1}, /* patch embedding */
        {2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 1},    /* depthwise */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv2d_case(be, &cases[i]);
    /* 8 images of 294 KB of columns each with a 1 MiB scratch: chunks of 3, 3, 2 */
    const conv_case chunked = {8, 8, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    if (be_small_scratch) conv2d_case(be_small_scratch, &chunked);
    const conv_case chunked_groups = {5, 8, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1};
    if (be_small_scratch) conv2d_case(be_small_scratch, &chunked_groups);
}

/* ---------------------------------------------------------------- main -- */

/* With no GPU: the plugin loaded and scored 0; its own create must refuse cleanly. */
static void check_create_refuses(const char *path) {
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECKF(dl != NULL, "dlopen %s: %s", path, dlerror());
    if (!dl) return;
    const bp_plugin_entry *entry = (const bp_plugin_entry *)dlsym(dl, BP_ENTRY_SYMBOL);
    const bp_factory *f = entry ? entry->get_factory(BP_KIND_BACKEND_ID) : NULL;
    CHECK(f != NULL && f->count == 1);
    if (f && f->count == 1) {
        bp_error err = BP_ERROR_INIT;
        bp_paramset *ps = NULL;
        CHECK_OK(bp_paramset_from_strings(f->descriptors[0], NULL, 0, &ps, &err), &err);
        if (ps) {
            void *inst = (void *)1;
            bp_status st = f->create(NULL, 0, bp_paramset_params(ps), &inst, &err);
            CHECKF(st == BP_ERR_DEVICE && inst == NULL && strstr(err.msg, "no CUDA device: ") != NULL,
                   "create without a GPU: status %d, message '%s'", (int)st, err.msg);
            bp_paramset_free(ps);
        }
    }
    dlclose(dl);
}

int main(void) {
    const char *dir = getenv("BATPIPE_PLUGIN_PATH");
    if (!dir || !*dir) {
        fprintf(stderr, "BATPIPE_PLUGIN_PATH is not set (run through ctest)\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/bp-cuda.so", dir);

    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    if (!reg) return TEST_RESULT();
    bp_status st = bp_registry_load_file(reg, path, &err);
    CHECK_OK(st, &err);
    const bp_component_info *comp = NULL;
    for (uint32_t i = 0; i < bp_registry_count(reg); i++) {
        const bp_component_info *c = bp_registry_at(reg, i);
        if (c->kind == BP_KIND_BACKEND && strcmp(c->desc->name, "cuda") == 0) comp = c;
    }
    CHECKF(comp != NULL, "%s offers no backend named 'cuda'", path);
    if (!comp) {
        bp_registry_free(reg);
        return TEST_RESULT();
    }
    fprintf(stderr, "%s: plugin %s %s, score %d\n", path, comp->plugin->plugin_name, comp->plugin->plugin_version,
            comp->plugin->score);

    int devices = 0;
    cudaError_t ce = cudaGetDeviceCount(&devices);
    if (comp->plugin->score <= 0) {
        /* Consistent with the runtime? A GPU the plugin does not see is a failure, not a skip. */
        CHECKF(ce != cudaSuccess || devices == 0, "the plugin scored 0 but cudaGetDeviceCount reports %d device(s)",
               devices);
        bp_backend *none = NULL;
        st = bp_registry_create_backend(reg, "cuda", NULL, &none, &err);
        CHECKF(st == BP_ERR_DEVICE && none == NULL, "creating 'cuda' with score 0: status %d '%s'", (int)st, err.msg);
        bp_registry_free(reg);
        check_create_refuses(path);
        if (bp_test_failures) return TEST_RESULT();
        if (ce != cudaSuccess)
            TEST_SKIP("no CUDA device: %s (%s)", cudaGetErrorString(ce), cudaGetErrorName(ce));
        TEST_SKIP("no CUDA device: the driver reports 0 devices");
    }

    bp_backend *be = NULL, *be_small = NULL;
    bp_paramset *ps_small = NULL;
    st = bp_registry_create_backend(reg, "cuda", NULL, &be, &err);
    CHECK_OK(st, &err);
    if (st == BP_OK) {
        fprintf(stderr, "backend %s on %s (bf16 %d)\n", bp_backend_name(be), bp_backend_device(be),
                bp_backend_has_bf16(be));
        CHECK(strcmp(bp_backend_name(be), "cuda") == 0);
        CHECK(!bp_backend_is_host(be));
        CHECK(strstr(bp_backend_device(be), "sm_") != NULL);
        const char *kv[1] = {"scratch_mb=1"};
        CHECK_OK(bp_paramset_from_strings(comp->desc, kv, 1, &ps_small, &err), &err);
        if (ps_small) CHECK_OK(bp_registry_create_backend(reg, "cuda", bp_paramset_params(ps_small), &be_small, &err),
                               &err);
        /* a device index beyond the machine's is refused */
        const char *kv_dev[1] = {"device=1023"};
        bp_paramset *ps_dev = NULL;
        bp_backend *be_dev = NULL;
        CHECK_OK(bp_paramset_from_strings(comp->desc, kv_dev, 1, &ps_dev, &err), &err);
        if (ps_dev) {
            st = bp_registry_create_backend(reg, "cuda", bp_paramset_params(ps_dev), &be_dev, &err);
            CHECKF(st == BP_ERR_DEVICE && strstr(err.msg, "device 1023"), "device=1023: status %d '%s'", (int)st,
                   err.msg);
            bp_backend_free(be_dev);
            bp_paramset_free(ps_dev);
        }

        test_memory(be);
        test_unary(be);
        test_binary(be);
        test_affine_fill(be);
        test_rows(be);
        test_convert(be);
        test_permute(be);
        test_get_rows(be);
        test_matmul(be);
        test_conv2d(be, be_small);
        CHECK_OK(bp_backend_sync(be, &err), &err);

        fprintf(stderr, "%-12s %6s %12s\n", "op", "cases", "max error");
        for (int i = 0; i < n_stats; i++)
            fprintf(stderr, "%-12s %6d %12.3g\n", stats[i].name, stats[i].cases, stats[i].max_err);
    }
    bp_backend_free(be_small);
    bp_paramset_free(ps_small);
    bp_backend_free(be);
    bp_registry_free(reg);
    return TEST_RESULT();
}
