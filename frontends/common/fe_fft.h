/* frontends/common — FFTW3f real-to-complex transforms for the frontends.
 *
 * A bp_fe_fft holds one r2c plan of size n, made once (FFTW_ESTIMATE: the
 * same algorithm on every run, so results do not depend on timing) on
 * FFTW-aligned buffers, and executed with fftwf_execute_dft_r2c on other
 * FFTW-aligned buffers (bp_fe_fft_alloc) from any number of threads at once.
 *
 * Thread safety: FFTW's planner (plan creation and destruction) is not
 * thread safe. bp_fe_fft_init and bp_fe_fft_free call
 * fftwf_make_planner_thread_safe() first, which installs FFTW's own planner
 * lock for the whole process (libfftw3f_threads); planning is then serialised
 * whatever thread calls it. Executing a plan is always thread safe. */
#ifndef BP_FE_FFT_H
#define BP_FE_FFT_H

#include <fftw3.h>
#include <stdint.h>

#include "batpipe/error.h"

typedef struct bp_fe_fft {
    int32_t n;        /* transform size (real samples) */
    int32_t n_bins;   /* n / 2 + 1 complex outputs */
    fftwf_plan plan;  /* owned */
} bp_fe_fft;

/* Make the plan. `what` names the caller in errors ("melipd"). */
bp_status bp_fe_fft_init(bp_fe_fft *f, int32_t n, const char *what, bp_error *err);
/* Destroy the plan (a zeroed struct is fine). */
void bp_fe_fft_free(bp_fe_fft *f);
/* in: n floats, out: n_bins complex; both from bp_fe_fft_alloc (or fftwf_malloc). */
static inline void bp_fe_fft_exec(const bp_fe_fft *f, float *in, fftwf_complex *out) {
    fftwf_execute_dft_r2c(f->plan, in, out);
}
/* FFTW-aligned zeroed memory of `bytes` (NULL on failure); free with bp_fe_fft_dealloc. */
void *bp_fe_fft_alloc(size_t bytes);
void bp_fe_fft_dealloc(void *p);

#endif /* BP_FE_FFT_H */
