/* frontends/common — vectorisable natural logarithm for the log-mel and
 * log-fbank steps.
 *
 * libm's logf is correctly rounded but opaque to the vectoriser; these loops
 * are plain C that GCC turns into SIMD code. The result is within 2 ulp of
 * the true ln(x) for every positive normal float (tested against log() in
 * double over the whole range), i.e. far below the float32 noise of an STFT,
 * and it is the same on every machine (no libm dependence). */
#ifndef BP_FE_VLOG_H
#define BP_FE_VLOG_H

#include <stdint.h>

/* out[i] = scale * ln(min(max(in[i], floor), FLT_MAX)), floor > 0 a normal
 * float. `in` and `out` may alias. NaN inputs are not expected (frontends check
 * their input). */
void bp_fe_vlog(const float *in, float *out, int32_t n, float floor_value, float scale);

/* 10 / ln(10): turns ln into decibels (10 * log10). */
#define BP_FE_DB_PER_NEPER 4.342944819032518

#endif /* BP_FE_VLOG_H */
