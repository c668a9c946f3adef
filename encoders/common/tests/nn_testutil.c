/* Test helpers for the bp_nn layer tests (see nn_testutil.h). */
#include "nn_testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int nt_env_init(nt_env *e) {
    memset(e, 0, sizeof *e);
    bp_error err = BP_ERROR_INIT;
    if (bp_registry_new(NULL, &e->reg, &err) != BP_OK || bp_registry_scan_default(e->reg, NULL, &err) != BP_OK) {
        fprintf(stderr, "registry: %s\n", err.msg);
        return 1;
    }
    if (!bp_registry_find(e->reg, BP_KIND_BACKEND, "cpu")) {
        fprintf(stderr, "SKIP: no cpu backend in BATPIPE_PLUGIN_PATH\n");
        return 77;
    }
    const char *kv[] = {"threads=1"};
    bp_paramset *ps = NULL;
    const bp_component_info *c = bp_registry_find(e->reg, BP_KIND_BACKEND, "cpu");
    if (bp_paramset_from_strings(c->desc, kv, 1, &ps, &err) != BP_OK ||
        bp_registry_create_backend(e->reg, "cpu", bp_paramset_params(ps), &e->be, &err) != BP_OK ||
        bp_nn_arena_new(e->be, &e->arena, &err) != BP_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        bp_paramset_free(ps);
        return 1;
    }
    bp_paramset_free(ps);
    e->ctx.be = e->be;
    e->ctx.arena = e->arena;
    e->ctx.training = 1;
    e->ctx.keep = 0;
    return 0;
}

void nt_env_free(nt_env *e) {
    bp_nn_arena_free(e->arena);
    bp_backend_free(e->be);
    bp_registry_free(e->reg);
}

bp_tensor *nt_new(nt_env *e, int32_t ndim, const int64_t *shape) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor *t = NULL;
    if (bp_tensor_new(e->be, BP_DTYPE_F32, ndim, shape, &t, &err) != BP_OK) {
        fprintf(stderr, "nt_new: %s\n", err.msg);
        exit(1);
    }
    return t;
}

void nt_fill(bp_tensor *t, uint64_t seed, double scale) {
    int64_t n = bp_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(scale * (2.0 * bp_nn_rng_uniform(seed, 77, (uint64_t)i) - 1.0));
    nt_write(t, v);
    free(v);
}

float *nt_read(const bp_tensor *t) {
    int64_t n = bp_tensor_numel(t);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_read(t, v, (size_t)n * sizeof *v, &err) != BP_OK) {
        fprintf(stderr, "nt_read: %s\n", err.msg);
        exit(1);
    }
    return v;
}

void nt_write(bp_tensor *t, const float *v) {
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_write(t, v, bp_tensor_nbytes(t), &err) != BP_OK) {
        fprintf(stderr, "nt_write: %s\n", err.msg);
        exit(1);
    }
}

int nt_unsupported(const bp_error *err) { return err->code == BP_ERR_UNSUPPORTED; }

static double project(nt_fd *fd, bp_error *err, bp_status *st) {
    bp_nn_arena_reset(fd->e->arena);
    fd->e->ctx.keep = 0;
    *st = fd->forward(fd->user, err);
    if (*st != BP_OK) return NAN;
    float *y = nt_read(fd->y), *r = nt_read(fd->r);
    double s = 0.0;
    for (int64_t i = 0; i < bp_tensor_numel(fd->y); i++) s += (double)y[i] * (double)r[i];
    free(y);
    free(r);
    return s;
}

bp_status nt_fd_prepare(nt_fd *fd, bp_nn_params *params, uint64_t seed, bp_error *err) {
    if (!fd->r) fd->r = nt_new(fd->e, fd->y->ndim, fd->y->shape);
    nt_fill(fd->r, seed, 1.0);
    if (params) {
        bp_status st = bp_nn_params_zero_grad(params, err);
        if (st != BP_OK) return st;
    }
    bp_nn_arena_reset(fd->e->arena);
    fd->e->ctx.keep = 1;
    bp_status st = fd->forward(fd->user, err);
    if (st == BP_OK) st = fd->backward(fd->user, fd->r, err);
    fd->e->ctx.keep = 0;
    return st;
}

double nt_fd_check(nt_fd *fd, bp_tensor *wrt, const bp_tensor *analytic, int64_t n_max, double h, const char *label) {
    const int64_t n = bp_tensor_numel(wrt);
    float *v = nt_read(wrt), *an = nt_read(analytic);
    double amax = 0.0, emax = 0.0;
    for (int64_t i = 0; i < n; i++) amax = fmax(amax, fabs((double)an[i]));
    int64_t count = (n_max <= 0 || n_max >= n) ? n : n_max;
    bp_error err = BP_ERROR_INIT;
    bp_status st = BP_OK;
    for (int64_t s = 0; s < count && st == BP_OK; s++) {
        int64_t i = count == n ? s : (int64_t)(bp_nn_rng_u64(1234, (uint64_t)n, (uint64_t)s) % (uint64_t)n);
        float keep = v[i];
        v[i] = keep + (float)h;
        double hp = (double)v[i] - (double)keep;
        nt_write(wrt, v);
        double lp = project(fd, &err, &st);
        v[i] = keep - (float)h;
        double hm = (double)keep - (double)v[i];
        nt_write(wrt, v);
        double lm = project(fd, &err, &st);
        v[i] = keep;
        nt_write(wrt, v);
        double fdv = (lp - lm) / (hp + hm);
        emax = fmax(emax, fabs(fdv - (double)an[i]));
    }
    free(v);
    free(an);
    if (st != BP_OK) {
        fprintf(stderr, "%s: forward failed: %s\n", label, err.msg);
        return INFINITY;
    }
    double rel = amax > 0 ? emax / amax : emax;
    printf("  %-36s %5lld/%-6lld entries  max|grad| %.3e  fd err %.3e\n", label, (long long)count, (long long)n,
           amax, rel);
    if (!(amax > 0)) {
        printf("  %s: analytic gradient is all zero (not a useful check)\n", label);
        return INFINITY;
    }
    return rel;
}

double nt_fd_check_params(nt_fd *fd, bp_nn_params *ps, int64_t n_max, double h, double tol) {
    double worst = 0.0;
    for (uint32_t i = 0; i < ps->count; i++) {
        bp_nn_param *p = &ps->items[i];
        if (!p->grad) continue;
        /* Copy the analytic grad: the checker's forwards do not touch grads,
         * but keep it independent anyway. */
        float *g = nt_read(p->grad);
        bp_tensor *an = nt_new(fd->e, p->grad->ndim, p->grad->shape);
        nt_write(an, g);
        free(g);
        double e = nt_fd_check(fd, p->value, an, n_max, h, p->name);
        if (!(e <= tol)) printf("  %s: finite-difference error %.3e > %.1e\n", p->name, e, tol);
        worst = fmax(worst, e);
        bp_tensor_free(an);
    }
    return worst;
}

double nt_rel_err(const float *a, const double *b, int64_t n) {
    double m = 0.0, d = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return m > 0 ? d / m : d;
}
