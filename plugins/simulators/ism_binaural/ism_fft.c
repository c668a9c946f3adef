/* ism_binaural — FFTW3f plans (see ism_fft.h). */
#include "ism_fft.h"

#include <string.h>

void *ism_fft_alloc(size_t bytes) {
    void *p = fftwf_malloc(bytes ? bytes : 1);
    if (p) memset(p, 0, bytes);
    return p;
}

void ism_fft_dealloc(void *p) {
    if (p) fftwf_free(p);
}

int32_t ism_fft_size_at_least(int64_t n) {
    int64_t s = 1;
    while (s < n) s <<= 1;
    return (int32_t)s;
}

bp_status ism_fft_init(ism_fft *f, int32_t n, ism_fft_kind kind, bp_error *err) {
    memset(f, 0, sizeof *f);
    if (n < 2 || n > (1 << 26))
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: FFT size %d out of range", (int)n);
    size_t nc = kind == ISM_FFT_R2C || kind == ISM_FFT_C2R ? (size_t)(n / 2 + 1) : (size_t)n;
    float *re = ism_fft_alloc((size_t)n * sizeof(float));
    fftwf_complex *cx = ism_fft_alloc(nc * sizeof(fftwf_complex));
    fftwf_complex *cy = ism_fft_alloc(nc * sizeof(fftwf_complex));
    if (!re || !cx || !cy) {
        ism_fft_dealloc(re);
        ism_fft_dealloc(cx);
        ism_fft_dealloc(cy);
        return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for a size-%d FFT", (int)n);
    }
    fftwf_make_planner_thread_safe();
    switch (kind) {
    case ISM_FFT_R2C: f->plan = fftwf_plan_dft_r2c_1d(n, re, cx, FFTW_ESTIMATE); break;
    case ISM_FFT_C2R: f->plan = fftwf_plan_dft_c2r_1d(n, cx, re, FFTW_ESTIMATE); break;
    case ISM_FFT_C2C_FWD: f->plan = fftwf_plan_dft_1d(n, cx, cy, FFTW_FORWARD, FFTW_ESTIMATE); break;
    case ISM_FFT_C2C_INV: f->plan = fftwf_plan_dft_1d(n, cx, cy, FFTW_BACKWARD, FFTW_ESTIMATE); break;
    }
    ism_fft_dealloc(re);
    ism_fft_dealloc(cx);
    ism_fft_dealloc(cy);
    if (!f->plan) return bp_error_set(err, BP_ERR_INTERNAL, "ism_binaural: FFTW could not plan a size-%d FFT", (int)n);
    f->n = n;
    f->kind = (int32_t)kind;
    return BP_OK;
}

void ism_fft_free(ism_fft *f) {
    if (!f) return;
    if (f->plan) {
        fftwf_make_planner_thread_safe();
        fftwf_destroy_plan(f->plan);
    }
    memset(f, 0, sizeof *f);
}

void ism_fft_exec(const ism_fft *f, void *in, void *out) {
    switch (f->kind) {
    case ISM_FFT_R2C: fftwf_execute_dft_r2c(f->plan, in, out); break;
    case ISM_FFT_C2R: fftwf_execute_dft_c2r(f->plan, in, out); break;
    default: fftwf_execute_dft(f->plan, in, out); break;
    }
}
