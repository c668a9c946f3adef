/* frontends/common — bicubic resize along time (PyTorch F.interpolate,
 * mode="bicubic", align_corners=True, on a [.., T, width] map whose width is
 * unchanged, which makes the width axis an exact identity).
 *
 * Output row i samples the source at s = i * (t_in - 1) / (t_out - 1)
 * (computed in double; s = 0 when t_out == 1), i0 = floor(s), t = s - i0,
 * taps i0-1 .. i0+2 clamped to [0, t_in - 1], Keys cubic weights with
 * A = -0.75 (in double), accumulated in double and rounded once. */
#ifndef BP_FE_RESIZE_H
#define BP_FE_RESIZE_H

#include <stdint.h>

#define BP_FE_CUBIC_A (-0.75)

/* The four tap weights for fraction t in [0, 1]. */
void bp_fe_cubic_weights(double t, double w[4]);

/* Rows [row_begin, row_end) of one map: in [t_in, width] -> out [t_out, width]. */
void bp_fe_resize_rows(const float *in, int64_t t_in, float *out, int64_t t_out, int64_t width, int64_t row_begin,
                       int64_t row_end);

#endif /* BP_FE_RESIZE_H */
