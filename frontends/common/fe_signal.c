/* frontends/common — input signal preparation (see fe_signal.h). */
#include "fe_signal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fe_simd.h"

BP_FE_MULTIARCH bp_status bp_fe_signal_check_finite(const float *in, int32_t n_channels, int64_t n, const char *what,
                                                    bp_error *err) {
    /* A float is NaN or infinite iff its exponent bits are all ones; the OR
     * over the whole input is a vectorisable integer reduction. */
    int64_t total = (int64_t)n_channels * n;
    uint32_t bad = 0;
    for (int64_t i = 0; i < total; i++) {
        uint32_t u;
        memcpy(&u, &in[i], sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    if (!bad) return BP_OK;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(in[i]))
            return bp_error_set(err, BP_ERR_NUMERIC, "%s: input sample %lld of channel %lld is %s", what,
                                (long long)(i % n), (long long)(i / n), isnan(in[i]) ? "NaN" : "infinite");
    return BP_OK;
}

void bp_fe_signal_take(const float *in, int32_t n_channels, int64_t n_in, bp_fe_source src, float *dst, int64_t len) {
    int64_t n = n_in < len ? n_in : len;
    if (n_channels < 2 || src == BP_FE_SRC_CH0) {
        memcpy(dst, in, (size_t)n * sizeof *dst);
    } else if (src == BP_FE_SRC_CH1) {
        memcpy(dst, in + n_in, (size_t)n * sizeof *dst);
    } else {
        const float *l = in, *r = in + n_in;
        for (int64_t i = 0; i < n; i++) dst[i] = (l[i] + r[i]) * 0.5f;
    }
    if (n < len) memset(dst + n, 0, (size_t)(len - n) * sizeof *dst);
}

void bp_fe_signal_reflect(float *buf, int64_t len, int64_t pad) {
    float *x = buf + pad;
    for (int64_t i = 1; i <= pad; i++) {
        x[-i] = x[i];
        x[len - 1 + i] = x[len - 1 - i];
    }
}
