/* cpu backend — derivatives of the unary ops (f'(x)), branch-free and built
 * from the functions of cpu_math.h so that gcc vectorises the loops that
 * call them. Each is written to avoid cancellation where f' is small:
 *   sigmoid'(x) = e/(1+e)²,  e = e^(−|x|)       (not s·(1−s))
 *   tanh'(x)    = 4e/(1+e)², e = e^(−2|x|)      (not 1−tanh²)
 *   silu'(x)    = σ(x)·(1 + x·σ(−x))
 *   gelu'(x)    = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)   (exact erf form)
 *   gelu_tanh'  = s + x·s'(2u)·(2u)',  s = σ(2u), 2u = √(8/π)(x + 0.044715x³)
 * Conventions at kinks follow PyTorch: relu'(0) = 0, |x|'(0) = 0. */
#ifndef BP_CPU_TRAIN_MATH_H
#define BP_CPU_TRAIN_MATH_H

#include "cpu_math.h"

/* σ'(x), symmetric in x. */
CM_INLINE float cm_sigmoid_grad(float x) {
    float e = cm_exp(-cm_abs(x));
    float d = 1.0f + e;
    return e / (d * d);
}

CM_INLINE float cm_tanh_grad(float x) {
    float e = cm_exp(-2.0f * cm_abs(x));
    float d = 1.0f + e;
    return 4.0f * e / (d * d);
}

CM_INLINE float cm_silu_grad(float x) {
    float xc = x < -104.0f ? -104.0f : (x > 104.0f ? 104.0f : x);
    float s = cm_sigmoid(xc), sn = cm_sigmoid(-xc);
    return s * (1.0f + xc * sn);
}

CM_INLINE float cm_gelu_grad(float x) {
    float xc = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);
    double xd = xc;
    float pdf = cm_exp_neg2(0.5 * xd * xd) * 0.398942280401432678f; /* 1/√(2π) */
    return cm_norm_cdf(x) + xc * pdf;
}

CM_INLINE float cm_gelu_tanh_grad(float x) {
    float xc = x < -20.0f ? -20.0f : (x > 20.0f ? 20.0f : x);
    double xd = xc, x2 = xd * xd;
    double two_u = xd * (1.5957691216057308 + 0.07135481627260025 * x2);
    float du = (float)(1.5957691216057308 + 0.21406444881780075 * x2); /* (2u)' */
    float e = cm_exp_neg2(two_u < 0 ? -two_u : two_u);               /* e^(−|2u|) */
    float d = 1.0f + e;
    float s = two_u >= 0 ? 1.0f / d : e / d;
    float ds = e / (d * d);
    return s + xc * ds * du;
}

#endif /* BP_CPU_TRAIN_MATH_H */
