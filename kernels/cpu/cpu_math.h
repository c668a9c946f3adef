/* cpu backend — scalar float math written so that gcc vectorises the loops
 * that call it: branch-free (selects instead of branches), no libm calls,
 * integer bit tricks instead of float<->int conversions of unbounded values.
 *
 * Accuracy (measured by tests/backend_ops against float64 references):
 *   cm_exp, cm_log, cm_tanh, cm_sigmoid: ≤ 3 ulp;
 *   cm_sin, cm_cos: range reduction and polynomial in double, ≤ 1 ulp for
 *     |x| < 1.6e6, degrading slowly beyond;
 *   cm_gelu (erf form): ≤ 4 ulp everywhere, including the far negative tail,
 *     via erfc(a) = exp(−a²)·w·R(w), w = 1/(1 + a/2), with a² carried as a
 *     double-float pair so that exp does not amplify its rounding.
 * Polynomial coefficients were fitted for this file (minimax by Lawson
 * iterations on relative error, float64/mpmath); see kernels/cpu/README.md. */
#ifndef BP_CPU_MATH_H
#define BP_CPU_MATH_H

#include <stdint.h>
#include <string.h>

#define CM_INLINE static inline __attribute__((always_inline))

CM_INLINE float cm_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

CM_INLINE uint32_t cm_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

CM_INLINE float cm_abs(float x) { return cm_from_bits(cm_bits(x) & 0x7fffffffu); }

/* |mag| with the sign of `sgn`. */
CM_INLINE float cm_copysign(float mag, float sgn) {
    return cm_from_bits((cm_bits(mag) & 0x7fffffffu) | (cm_bits(sgn) & 0x80000000u));
}

/* e^x. Overflows to +inf above ~88.72, underflows through subnormals to 0
 * below ~-103.3, NaN stays NaN. */
CM_INLINE float cm_exp(float x) {
    const float magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer in the low bits */
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(cm_bits(t) - cm_bits(magic)); /* n as an integer, |n| <= 151 */
    float r = x - n * 0.693145751953125f;                /* ln2, high 15 bits: n·hi is exact */
    r = r - n * 1.42860682030941723212e-6f;              /* ln2, the rest */
    float q = 1.3814601844565504e-3f;
    q = q * r + 8.368715218960918e-3f;
    q = q * r + 4.1668387888300476e-2f;
    q = q * r + 1.6666520645345367e-1f;
    q = q * r + 4.99999934486988e-1f;
    float p = 1.0f + (r + (r * r) * q);
    /* 2^n as two factors so that subnormal results are reached too */
    int32_t n1 = ni >> 1, n2 = ni - n1;
    float s1 = cm_from_bits(((uint32_t)n1 + 127u) << 23);
    float s2 = cm_from_bits(((uint32_t)n2 + 127u) << 23);
    return (p * s1) * s2;
}

/* Natural logarithm: log(0) = -inf, log(x<0) = NaN, log(inf) = inf. */
CM_INLINE float cm_log(float x) {
    int sub = x < 1.17549435e-38f; /* subnormal (or zero/negative): scale up first */
    float xs = sub ? x * 8388608.0f : x;
    uint32_t u = cm_bits(xs);
    int32_t e = (int32_t)((u >> 23) & 0xffu) - 127 - (sub ? 23 : 0);
    float m = cm_from_bits((u & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m; /* [√½, √2) */
    e = big ? e + 1 : e;
    /* log(m) = 2·atanh(s), s = (m−1)/(m+1), |s| < 0.1716 */
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float p = 0.22222222f;
    p = p * s2 + 0.28571429f;
    p = p * s2 + 0.4f;
    p = p * s2 + 0.66666667f;
    float ef = (float)e;
    float r = ef * 0.693145751953125f + (ef * 1.42860682030941723212e-6f + (2.0f * s + s * s2 * p));
    r = x == 0.0f ? -__builtin_inff() : r;
    r = x < 0.0f ? __builtin_nanf("") : r;
    r = x == __builtin_inff() ? x : r;
    r = x != x ? x : r;
    return r;
}

/* sin(x) (cos_shift = 0) or cos(x) (cos_shift = 1): reduction by π/2 and
 * polynomials in double, one rounding to float at the end. */
CM_INLINE float cm_sincos(float x, uint32_t cos_shift) {
    const double magic = 6755399441055744.0; /* 1.5·2^52 */
    double xd = x;
    double t = xd * 0.6366197723675814 + magic;
    double j = t - magic;
    uint64_t tb;
    memcpy(&tb, &t, sizeof tb);
    uint32_t q = ((uint32_t)tb + cos_shift) & 3u;
    double r = (xd - j * 1.5707963267341256) - j * 6.077100506506192e-11; /* π/2 = hi (33 bits) + lo */
    double r2 = r * r;
    double s = -2.5052108385441720e-08;
    s = s * r2 + 2.7557319223985893e-06;
    s = s * r2 - 1.9841269841269841e-04;
    s = s * r2 + 8.3333333333333333e-03;
    s = s * r2 - 1.6666666666666667e-01;
    s = r + r * r2 * s;
    double c = 2.0876756987868099e-09;
    c = c * r2 - 2.7557319223985891e-07;
    c = c * r2 + 2.4801587301587302e-05;
    c = c * r2 - 1.3888888888888889e-03;
    c = c * r2 + 4.1666666666666667e-02;
    c = 1.0 - 0.5 * r2 + r2 * r2 * c;
    double v = (q & 1u) ? c : s;
    v = (q & 2u) ? -v : v;
    return (float)v;
}

CM_INLINE float cm_tanh(float x) {
    float a = cm_abs(x);
    float z = x * x;
    float p = -5.704987416370369e-3f;
    p = p * z + 2.0639087646075895e-2f;
    p = p * z - 5.373971521865631e-2f;
    p = p * z + 1.3331442199948218e-1f;
    p = p * z - 3.333328194208892e-1f;
    float small = x + x * z * p;
    float e = cm_exp(2.0f * a);
    float big = cm_copysign(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : big;
}

CM_INLINE float cm_sigmoid(float x) { return 1.0f / (1.0f + cm_exp(-x)); }

/* x·sigmoid(x); below -104 the result is -0 (also for -inf, where x/(1+e^-x)
 * would be -inf/inf). Written without a select after the division, which gcc
 * would turn into a branch and then not vectorise. */
CM_INLINE float cm_silu(float x) {
    float xm = x < -104.0f ? -104.0f : x;
    return xm / (1.0f + cm_exp(-xm));
}

/* e^(−(hi + lo)) for a double-float pair with |lo| ≤ ulp(hi). */
CM_INLINE float cm_exp_neg2(double v) {
    float hi = (float)v;
    float lo = (float)(v - (double)hi);
    return cm_exp(-hi) * (1.0f - lo);
}

/* Φ(x), the standard normal CDF, = ½·(1 + erf(x/√2)).
 * With a = |x|/√2: Φ(x) = 1 − ½·erfc(a) for x ≥ 0 and ½·erfc(a) for x < 0,
 * so no cancellation anywhere; erfc(a) = e^(−a²)·w·R(w), w = 1/(1 + a/2).
 * Φ(±inf) = 1 / 0 (|x| is clamped to 20, where Φ is 1 or below the float range). */
CM_INLINE float cm_norm_cdf(float x) {
    float xc = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);
    float a = cm_abs(xc) * 0.70710678118654752f;
    float w = 1.0f / (1.0f + 0.5f * a);
    float r = 1.228366029e-02f;
    r = r * w - 1.232535621e-01f;
    r = r * w + 4.289258670e-01f;
    r = r * w - 6.700192465e-01f;
    r = r * w + 4.212717270e-01f;
    r = r * w - 9.831634643e-02f;
    r = r * w + 2.255414368e-01f;
    r = r * w + 2.386449181e-01f;
    r = r * w + 2.828570268e-01f;
    r = r * w + 2.820644995e-01f;
    double xd = xc;
    float erfc_a = cm_exp_neg2(0.5 * xd * xd) * (w * r);
    return x >= 0.0f ? 1.0f - 0.5f * erfc_a : 0.5f * erfc_a;
}

/* GELU, exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)). */
CM_INLINE float cm_gelu(float x) {
    float phi = cm_norm_cdf(x);
    float xm = x < -20.0f ? -20.0f : x; /* phi is 0 there: -0 also for -inf */
    return xm * phi;
}

/* GELU, tanh form: 0.5·x·(1 + tanh(u)) = x·sigmoid(2u),
 * u = √(2/π)·(x + 0.044715·x³); 2u is formed in double. */
CM_INLINE float cm_gelu_tanh(float x) {
    float xc = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);
    double xd = xc;
    double two_u = xd * (1.5957691216057308 + 0.07135481627260025 * (xd * xd));
    float xm = x < -20.0f ? -20.0f : x; /* the result is -0 there: also for -inf */
    return xm / (1.0f + cm_exp_neg2(two_u));
}

/* ------------------------------------------------- F16 / BF16 conversion -- */

/* F32 → F16, round to nearest even; same bits as bp_f32_to_f16 (NaN payload kept). */
CM_INLINE uint16_t cm_f32_to_f16(float f) {
    uint32_t x = cm_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t a = x & 0x7fffffffu;
    uint32_t odd = (a >> 13) & 1u;
    uint32_t norm = (a - 0x38000000u + 0xfffu + odd) >> 13;
    /* below the smallest normal half: adding 0.5 (whose ulp is 2^-24, the
     * half subnormal step) lets the FPU round to nearest even */
    uint32_t sub = cm_bits(cm_from_bits(a) + 0.5f) - 0x3f000000u;
    uint32_t h = a < 0x38800000u ? sub : norm;
    h = a >= 0x477ff000u ? 0x7c00u : h;
    h = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x3ffu)) : h;
    return (uint16_t)(h | sign);
}

CM_INLINE float cm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t a = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t e = a & 0x0f800000u;
    uint32_t norm = a + 0x38000000u;
    uint32_t infnan = a + 0x70000000u;
    uint32_t sub = cm_bits(cm_from_bits(a + 0x38800000u) - 6.103515625e-05f);
    uint32_t r = e == 0x0f800000u ? infnan : (e == 0 ? sub : norm);
    return cm_from_bits(r | sign);
}

/* F32 → BF16, round to nearest even; same bits as bp_f32_to_bf16. */
CM_INLINE uint16_t cm_f32_to_bf16(float f) {
    uint32_t x = cm_bits(f);
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t nan = (x >> 16) | 0x40u;
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

CM_INLINE float cm_bf16_to_f32(uint16_t h) { return cm_from_bits((uint32_t)h << 16); }

#endif /* BP_CPU_MATH_H */
