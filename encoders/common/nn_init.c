/* bp_nn: parameter initialisation (host-generated values written to the backend). */
#include <math.h>
#include <stdlib.h>

#include "bp_nn.h"

typedef double (*draw_fn)(uint64_t seed, uint64_t purpose, uint64_t index, const double *arg);

static double draw_trunc_normal(uint64_t seed, uint64_t purpose, uint64_t index, const double *arg) {
    /* Redraw from further indices of the same stream until inside [lo, hi]
     * (index·64 + k, k < 64; beyond that the value is clamped, which with
     * timm's bounds and std ≤ 1 happens with probability < 1e-70). */
    for (uint64_t k = 0; k < 64; k++) {
        double v = arg[0] * bp_nn_rng_normal(seed, purpose, index * 64 + k);
        if (v >= arg[1] && v <= arg[2]) return v;
    }
    return fmin(fmax(0.0, arg[1]), arg[2]);
}

static double draw_normal(uint64_t seed, uint64_t purpose, uint64_t index, const double *arg) {
    return arg[0] * bp_nn_rng_normal(seed, purpose, index);
}

static double draw_uniform(uint64_t seed, uint64_t purpose, uint64_t index, const double *arg) {
    return arg[0] * (2.0 * bp_nn_rng_uniform(seed, purpose, index) - 1.0);
}

static bp_status fill_host(bp_tensor *t, uint64_t seed, uint64_t purpose, draw_fn fn, const double *arg,
                           bp_error *err) {
    if (t->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn init: tensor '%s' is %s, not F32",
                            t->name ? t->name : "?", bp_dtype_name(t->dtype));
    int64_t n = bp_tensor_numel(t);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (!buf) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn init: out of memory for %lld values", (long long)n);
    for (int64_t i = 0; i < n; i++) buf[i] = (float)fn(seed, purpose, (uint64_t)i, arg);
    bp_status st = bp_tensor_write(t, buf, (size_t)n * sizeof *buf, err);
    free(buf);
    return st;
}

bp_status bp_nn_init_trunc_normal(bp_tensor *t, uint64_t seed, uint64_t purpose, double std, double lo, double hi,
                                  bp_error *err) {
    const double arg[3] = {std, lo, hi};
    return fill_host(t, seed, purpose, draw_trunc_normal, arg, err);
}

bp_status bp_nn_init_normal(bp_tensor *t, uint64_t seed, uint64_t purpose, double std, bp_error *err) {
    const double arg[1] = {std};
    return fill_host(t, seed, purpose, draw_normal, arg, err);
}

bp_status bp_nn_init_uniform(bp_tensor *t, uint64_t seed, uint64_t purpose, double bound, bp_error *err) {
    const double arg[1] = {bound};
    return fill_host(t, seed, purpose, draw_uniform, arg, err);
}

bp_status bp_nn_init_const(bp_backend *be, bp_tensor *t, double v, bp_error *err) {
    if (t->dtype == BP_DTYPE_F32) return bp_op_fill(be, t, (float)v, err);
    if (t->dtype == BP_DTYPE_I64 && bp_tensor_numel(t) == 1) {
        int64_t x = (int64_t)v;
        return bp_tensor_write(t, &x, sizeof x, err);
    }
    return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn init: cannot set %s tensor '%s' to a constant",
                        bp_dtype_name(t->dtype), t->name ? t->name : "?");
}
