/* The cross-backend op tests' shared harness: a seeded generator, per-op
 * bookkeeping (cases, skips, failures, largest error against a float64
 * reference), and tensors on the backend under test. Everything is static
 * inline: each test file that includes it counts its own failures in
 * bp_test.h's bp_test_failures. */
#ifndef BP_OPS_TEST_UTIL_H
#define BP_OPS_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/ops.h"
#include "bp_test.h"

/* ------------------------------------------------------------------ rng -- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
static inline float rng_float(rng *r, double lo, double hi) { return (float)(lo + (hi - lo) * rng_unit(r)); }
static inline int64_t rng_int(rng *r, int64_t n) { return (int64_t)(rng_next(r) % (uint64_t)n); }

static inline void fill_uniform(rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = rng_float(r, lo, hi);
}

/* ------------------------------------------------------------ bookkeeping -- */

#define MAX_STATS 128

typedef struct op_stat {
    char name[32];
    int cases, skipped, failed;
    double max_err, tol;
} op_stat;

typedef struct suite {
    bp_backend *be;
    const char *label;
    int must_implement_all;
    rng r;
    op_stat stats[MAX_STATS];
    int n_stats;
} suite;

static inline op_stat *stat_of(suite *s, const char *name, double tol) {
    for (int i = 0; i < s->n_stats; i++)
        if (strcmp(s->stats[i].name, name) == 0) return &s->stats[i];
    if (s->n_stats == MAX_STATS) return &s->stats[MAX_STATS - 1];
    op_stat *st = &s->stats[s->n_stats++];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", name);
    st->tol = tol;
    return st;
}

/* Record one case: its status and, when it ran, its error. */
static inline void record(suite *s, const char *op, double tol, bp_status status, const bp_error *err, double e,
                          const char *what) {
    op_stat *st = stat_of(s, op, tol);
    if (status == BP_ERR_UNSUPPORTED && !s->must_implement_all) {
        st->skipped++;
        return;
    }
    if (status != BP_OK) {
        st->failed++;
        bp_test_failures++;
        fprintf(stderr, "FAIL %s %s (%s): %s (%s)\n", s->label, op, what, err->msg, bp_status_name(status));
        return;
    }
    st->cases++;
    if (!(e <= st->max_err)) st->max_err = e;
    if (!(e <= tol)) {
        st->failed++;
        bp_test_failures++;
        fprintf(stderr, "FAIL %s %s (%s): error %.3g > tolerance %.3g\n", s->label, op, what, e, tol);
    }
}

/* max_i |y_i − ref_i| / max(|ref_i|, scale_i, tiny); NaN/inf must match. */
static inline double max_err(const float *y, const double *ref, const double *scale, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(ref[i])) {
            if (!isnan(y[i])) return INFINITY;
            continue;
        }
        if (isinf(ref[i])) {
            if ((double)y[i] != ref[i]) return INFINITY;
            continue;
        }
        double den = fabs(ref[i]);
        if (scale && scale[i] > den) den = scale[i];
        if (den < 1e-30) den = 1e-30;
        double e = fabs((double)y[i] - ref[i]) / den;
        if (!(e <= m)) m = isnan(e) ? INFINITY : e;
    }
    return m;
}

/* ---------------------------------------------------------- tensor help -- */

static inline size_t shape_numel(int32_t nd, const int64_t *shape) {
    size_t n = 1;
    for (int32_t i = 0; i < nd; i++) n *= (size_t)shape[i];
    return n;
}

/* A tensor on the backend holding a copy of `host` (NULL: left as allocated). */
static inline bp_tensor *dev_tensor(suite *s, int32_t dtype, int32_t nd, const int64_t *shape,
                                    const void *host) {
    bp_tensor *t = NULL;
    bp_error err = BP_ERROR_INIT;
    bp_status st = bp_tensor_new(s->be, dtype, nd, shape, &t, &err);
    if (st != BP_OK) {
        fprintf(stderr, "FAIL %s: bp_tensor_new: %s\n", s->label, err.msg);
        bp_test_failures++;
        return NULL;
    }
    if (host) {
        st = bp_tensor_write(t, host, bp_tensor_nbytes(t), &err);
        if (st != BP_OK) {
            fprintf(stderr, "FAIL %s: bp_tensor_write: %s\n", s->label, err.msg);
            bp_test_failures++;
        }
    }
    return t;
}

static inline void dev_read(suite *s, const bp_tensor *t, void *host) {
    bp_error err = BP_ERROR_INIT;
    bp_status st = bp_tensor_read(t, host, bp_tensor_nbytes(t), &err);
    if (st != BP_OK) {
        fprintf(stderr, "FAIL %s: bp_tensor_read: %s\n", s->label, err.msg);
        bp_test_failures++;
    }
}

static inline void *xalloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) {
        fprintf(stderr, "test: out of memory\n");
        exit(1);
    }
    return p;
}

/* f(x) of a unary op in double. */
static inline double ref_unary(int op, double x) {
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
    case BP_UNARY_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    case BP_UNARY_GELU_TANH: {
        double u = sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x);
        return x / (1.0 + exp(-2.0 * u)); /* = 0.5·x·(1 + tanh(u)), without cancellation */
    }
    case BP_UNARY_SILU: return x / (1.0 + exp(-x));
    }
    return NAN;
}

/* Input range of each op: positive for sqrt/log, wide enough to reach the tails. */
static inline void unary_range(int op, double *lo, double *hi) {
    *lo = -4, *hi = 4;
    switch (op) {
    case BP_UNARY_SQRT: *lo = 1e-3, *hi = 100; break;
    case BP_UNARY_LOG: *lo = 1e-3, *hi = 1e3; break;
    case BP_UNARY_EXP: *lo = -30, *hi = 30; break;
    case BP_UNARY_SIN:
    case BP_UNARY_COS: *lo = -20, *hi = 20; break;
    case BP_UNARY_TANH: *lo = -6, *hi = 6; break;
    case BP_UNARY_SIGMOID:
    case BP_UNARY_SILU: *lo = -20, *hi = 20; break;
    case BP_UNARY_GELU:
    case BP_UNARY_GELU_TANH: *lo = -9, *hi = 9; break;
    default: break;
    }
}

#endif /* BP_OPS_TEST_UTIL_H */
