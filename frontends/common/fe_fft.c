/* frontends/common — FFTW3f plans (see fe_fft.h). */
#include "fe_fft.h"

#include <string.h>

void *bp_fe_fft_alloc(size_t bytes) {
    void *p = fftwf_malloc(bytes ? bytes : 1);
    if (p) memset(p, 0, bytes);
    return p;
}

void bp_fe_fft_dealloc(void *p) {
    if (p) fftwf_free(p);
}

bp_status bp_fe_fft_init(bp_fe_fft *f, int32_t n, const char *what, bp_error *err) {
    memset(f, 0, sizeof *f);
    if (n < 2 || n > (1 << 24))
        return bp_error_set(err, BP_ERR_INVALID, "%s: FFT size %d out of range", what, (int)n);
    float *in = bp_fe_fft_alloc((size_t)n * sizeof(float));
    fftwf_complex *out = bp_fe_fft_alloc((size_t)(n / 2 + 1) * sizeof(fftwf_complex));
    if (!in || !out) {
        bp_fe_fft_dealloc(in);
        bp_fe_fft_dealloc(out);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for the FFT buffers", what);
    }
    /* Idempotent; makes this and every later plan creation/destruction in the
     * process take FFTW's planner lock. */
    fftwf_make_planner_thread_safe();
    f->plan = fftwf_plan_dft_r2c_1d(n, in, out, FFTW_ESTIMATE);
    bp_fe_fft_dealloc(in);
    bp_fe_fft_dealloc(out);
    if (!f->plan)
        return bp_error_set(err, BP_ERR_INTERNAL, "%s: FFTW could not plan a size-%d transform", what, (int)n);
    f->n = n;
    f->n_bins = n / 2 + 1;
    return BP_OK;
}

void bp_fe_fft_free(bp_fe_fft *f) {
    if (!f) return;
    if (f->plan) {
        fftwf_make_planner_thread_safe();
        fftwf_destroy_plan(f->plan);
    }
    memset(f, 0, sizeof *f);
}
