/* Test helpers for the bp_nn layer tests: a cpu backend from the registry,
 * random tensors, and a central finite-difference gradient checker.
 *
 * Finite differences: the scalar L = Σ r ⊙ y (r a fixed random projection of
 * the layer output y, accumulated in double) is evaluated at v ± h for
 * single entries v of an input or parameter; (L₊ − L₋)/2h is compared with
 * the analytic dL/dv from backward with dy = r. The error of an entry set is
 * max|fd − an| / max|an| (over the whole tensor). */
#ifndef NN_TESTUTIL_H
#define NN_TESTUTIL_H

#include <stdint.h>

#include "batpipe/registry.h"
#include "bp_nn.h"

/* Tolerance of the finite-difference checks, relative to max|analytic grad|.
 * With h = 1e-2 on O(1) values, float32 outputs and L accumulated in double:
 * truncation error h²/6·|L'''| ~ 2e-5, rounding ε·Σ|r·y|/2h ~ 6e-8·50/2e-2
 * ~ 2e-4 for the sizes used here (measured: at most 2e-4, in the block
 * test). 1e-3 leaves a 5x margin while any wrong term (a missing path, a
 * transposed index, a wrong scale) shows up as an error of order 1e-1. */
#define NT_FD_TOL 1e-3
#define NT_FD_H 1e-2

typedef struct nt_env {
    bp_registry *reg;
    bp_backend *be;
    bp_nn_arena *arena;
    bp_nn_ctx ctx;
} nt_env;

/* 0 = ready; otherwise the exit code (77 = skip: no cpu backend). */
int nt_env_init(nt_env *e);
void nt_env_free(nt_env *e);

/* A new F32 tensor on the backend (freed by the caller with bp_tensor_free). */
bp_tensor *nt_new(nt_env *e, int32_t ndim, const int64_t *shape);
/* Uniform in [−scale, scale], seeded. */
void nt_fill(bp_tensor *t, uint64_t seed, double scale);
/* Host copies (malloc'd, caller frees). */
float *nt_read(const bp_tensor *t);
void nt_write(bp_tensor *t, const float *v);
/* Is an op of the training ABI missing? (BP_ERR_UNSUPPORTED from the backend) */
int nt_unsupported(const bp_error *err);

/* What a finite-difference test runs. */
typedef struct nt_fd {
    nt_env *e;
    void *user;
    /* Forward with e->ctx.keep as set by the checker; writes `y`. */
    bp_status (*forward)(void *user, bp_error *err);
    /* Backward from dy; writes/accumulates the analytic gradients. */
    bp_status (*backward)(void *user, const bp_tensor *dy, bp_error *err);
    bp_tensor *y;
    bp_tensor *r; /* projection, shaped like y (made by nt_fd_prepare) */
} nt_fd;

/* Makes r, zeroes `params` grads, runs forward (keep) + backward(r). Returns
 * BP_OK or the failing status (err filled). */
bp_status nt_fd_prepare(nt_fd *fd, bp_nn_params *params, uint64_t seed, bp_error *err);
/* Checks up to `n_max` entries (all when n_max ≤ 0 or ≥ numel; else a seeded
 * spread) of `wrt` against `analytic` (same shape, host copy made here) with
 * step h; prints one line "label: err … (tol …)" and returns the error. */
double nt_fd_check(nt_fd *fd, bp_tensor *wrt, const bp_tensor *analytic, int64_t n_max, double h, const char *label);
/* nt_fd_check for every trainable parameter of a registry (lines over `tol`
 * are flagged). Returns the max error: the caller CHECKs it. */
double nt_fd_check_params(nt_fd *fd, bp_nn_params *ps, int64_t n_max, double h, double tol);

/* Relative error max|a − b| / max|b| of host arrays. */
double nt_rel_err(const float *a, const double *b, int64_t n);

#endif
