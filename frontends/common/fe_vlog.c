/* frontends/common — vectorisable ln (see fe_vlog.h).
 *
 * x = 2^k * m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z) with
 * z = (m - 1) / (m + 1), |z| <= 0.1716, summed as an odd series up to z^9
 * (truncation below 2e-9 relative); ln x = k ln2 + ln m with ln2 split in a
 * high part (exact in float for |k| < 256) and a low part. */
#include "fe_vlog.h"

#include <float.h>
#include <string.h>

#include "fe_simd.h"

static inline uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

BP_FE_MULTIARCH void bp_fe_vlog(const float *in, float *out, int32_t n, float floor_value, float scale) {
    const float ln2_hi = 0.693145751953125f;      /* 11 significant bits: k * ln2_hi is exact */
    const float ln2_lo = 1.42860682030941723212e-6f;
    for (int32_t i = 0; i < n; i++) {
        float x = in[i];
        x = x > floor_value ? x : floor_value;
        x = x < FLT_MAX ? x : FLT_MAX;
        /* Shift so that the mantissa lands in [sqrt(1/2), sqrt(2)). */
        uint32_t ix = f32_bits(x) + (0x3f800000u - 0x3f3504f3u);
        int32_t k = (int32_t)(ix >> 23) - 0x7f;
        float m = bits_f32((ix & 0x007fffffu) + 0x3f3504f3u);
        float z = (m - 1.0f) / (m + 1.0f);
        float z2 = z * z;
        float p = 1.0f / 9.0f;
        p = p * z2 + 1.0f / 7.0f;
        p = p * z2 + 1.0f / 5.0f;
        p = p * z2 + 1.0f / 3.0f;
        float lnm = 2.0f * z + 2.0f * z * z2 * p;
        float fk = (float)k;
        out[i] = scale * (fk * ln2_hi + (lnm + fk * ln2_lo));
    }
}
