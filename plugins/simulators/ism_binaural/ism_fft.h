/* ism_binaural — FFTW3f plans.
 *
 * Plans are made once per instance (FFTW_ESTIMATE: the same algorithm on
 * every run, so results do not depend on timing) on FFTW-aligned buffers and
 * executed with FFTW's new-array functions on other FFTW-aligned buffers.
 *
 * Thread safety: FFTW's planner is not thread safe. Every plan creation and
 * destruction here first calls fftwf_make_planner_thread_safe() (from
 * libfftw3f_threads), which installs FFTW's own lock for the whole process,
 * so instances may be created and destroyed on any thread. Executing a plan
 * is always thread safe. */
#ifndef ISM_FFT_H
#define ISM_FFT_H

#include <fftw3.h>
#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"

typedef enum ism_fft_kind {
    ISM_FFT_R2C = 0, /* n reals → n/2 + 1 complex */
    ISM_FFT_C2R = 1, /* n/2 + 1 complex → n reals (input destroyed), unnormalised */
    ISM_FFT_C2C_FWD = 2,
    ISM_FFT_C2C_INV = 3 /* unnormalised */
} ism_fft_kind;

typedef struct ism_fft {
    int32_t n;
    int32_t kind; /* ism_fft_kind */
    fftwf_plan plan;
} ism_fft;

bp_status ism_fft_init(ism_fft *f, int32_t n, ism_fft_kind kind, bp_error *err);
void ism_fft_free(ism_fft *f);
/* in/out: FFTW-aligned buffers of the plan's kind (see ism_fft_kind). */
void ism_fft_exec(const ism_fft *f, void *in, void *out);

/* FFTW-aligned, zero-filled memory (NULL on failure); release with ism_fft_dealloc. */
void *ism_fft_alloc(size_t bytes);
void ism_fft_dealloc(void *p);

/* The smallest power of two >= n (n >= 1). */
int32_t ism_fft_size_at_least(int64_t n);

#endif /* ISM_FFT_H */
