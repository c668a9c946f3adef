/* frontends/common — bicubic time resize (see fe_resize.h). */
#include "fe_resize.h"

#include <math.h>

#include "fe_simd.h"

void bp_fe_cubic_weights(double t, double w[4]) {
    const double a = BP_FE_CUBIC_A;
    double x0 = t + 1.0, x3 = 2.0 - t, u = 1.0 - t;
    w[0] = ((a * x0 - 5.0 * a) * x0 + 8.0 * a) * x0 - 4.0 * a;
    w[1] = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    w[2] = ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0;
    w[3] = ((a * x3 - 5.0 * a) * x3 + 8.0 * a) * x3 - 4.0 * a;
}

static inline int64_t clamp_row(int64_t r, int64_t n) { return r < 0 ? 0 : (r >= n ? n - 1 : r); }

BP_FE_MULTIARCH void bp_fe_resize_rows(const float *in, int64_t t_in, float *out, int64_t t_out, int64_t width,
                                       int64_t row_begin, int64_t row_end) {
    double scale = t_out > 1 ? (double)(t_in - 1) / (double)(t_out - 1) : 0.0;
    for (int64_t i = row_begin; i < row_end; i++) {
        double s = scale * (double)i;
        double f = floor(s);
        int64_t i0 = (int64_t)f;
        double w[4];
        bp_fe_cubic_weights(s - f, w);
        const float *r0 = in + clamp_row(i0 - 1, t_in) * width;
        const float *r1 = in + clamp_row(i0, t_in) * width;
        const float *r2 = in + clamp_row(i0 + 1, t_in) * width;
        const float *r3 = in + clamp_row(i0 + 2, t_in) * width;
        float *o = out + i * width;
        for (int64_t j = 0; j < width; j++)
            o[j] = (float)(w[0] * r0[j] + w[1] * r1[j] + w[2] * r2[j] + w[3] * r3[j]);
    }
}
