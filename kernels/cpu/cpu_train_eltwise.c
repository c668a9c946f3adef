/* cpu backend — elementwise training ops: unary_backward (dx = dy·f'(x) for
 * every bp_unary_op, derivatives in cpu_train_math.h) and the AdamW step.
 * Vectorised C (simd loops in target_clones functions), flat ranges split
 * across threads. Every element is computed on its own, so results do not
 * depend on the thread count. dx may alias dy or x. */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"
#include "cpu_train_math.h"

/* ------------------------------------------------------- unary_backward -- */

#define UNARY_GRAD_KERNEL(name, expr)                                                                     \
    BP_CPU_CLONES static void unary_grad_##name(const float *x, const float *dy, float *dx, int64_t n) { \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                          \
            float v = x[i], g = dy[i];                                                                  \
            (void)v;                                                                                    \
            dx[i] = (expr);                                                                             \
        }                                                                                               \
    }

UNARY_GRAD_KERNEL(neg, -g)
UNARY_GRAD_KERNEL(abs, v > 0.0f ? g : (v < 0.0f ? -g : 0.0f))
UNARY_GRAD_KERNEL(sqr, 2.0f * v * g)
UNARY_GRAD_KERNEL(sqrt, g * (0.5f / sqrtf(v)))
UNARY_GRAD_KERNEL(exp, g * cm_exp(v))
UNARY_GRAD_KERNEL(log, g / v)
UNARY_GRAD_KERNEL(sin, g * cm_sincos(v, 1))
UNARY_GRAD_KERNEL(cos, -g * cm_sincos(v, 0))
UNARY_GRAD_KERNEL(tanh, g * cm_tanh_grad(v))
UNARY_GRAD_KERNEL(sigmoid, g * cm_sigmoid_grad(v))
UNARY_GRAD_KERNEL(relu, v > 0.0f ? g : 0.0f)
UNARY_GRAD_KERNEL(gelu, g * cm_gelu_grad(v))
UNARY_GRAD_KERNEL(gelu_tanh, g * cm_gelu_tanh_grad(v))
UNARY_GRAD_KERNEL(silu, g * cm_silu_grad(v))

typedef void (*unary_grad_fn)(const float *x, const float *dy, float *dx, int64_t n);

static unary_grad_fn unary_grad_kernel(int32_t op) {
    switch (op) {
    case BP_UNARY_NEG: return unary_grad_neg;
    case BP_UNARY_ABS: return unary_grad_abs;
    case BP_UNARY_SQR: return unary_grad_sqr;
    case BP_UNARY_SQRT: return unary_grad_sqrt;
    case BP_UNARY_EXP: return unary_grad_exp;
    case BP_UNARY_LOG: return unary_grad_log;
    case BP_UNARY_SIN: return unary_grad_sin;
    case BP_UNARY_COS: return unary_grad_cos;
    case BP_UNARY_TANH: return unary_grad_tanh;
    case BP_UNARY_SIGMOID: return unary_grad_sigmoid;
    case BP_UNARY_RELU: return unary_grad_relu;
    case BP_UNARY_GELU: return unary_grad_gelu;
    case BP_UNARY_GELU_TANH: return unary_grad_gelu_tanh;
    case BP_UNARY_SILU: return unary_grad_silu;
    default: return NULL;
    }
}

bp_status bp_cpu_unary_backward(bp_backend_impl *be, int32_t op, const bp_tensor *x, const bp_tensor *dy,
                                bp_tensor *dx, bp_error *err) {
    unary_grad_fn k = unary_grad_kernel(op);
    if (!k) return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu unary_backward: unknown op %d", (int)op);
    const float *xs = x->data, *gs = dy->data;
    float *ds = dx->data;
    int64_t n = bp_tensor_numel(x);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        k(xs + lo, gs + lo, ds + lo, hi - lo);
    }
    return BP_OK;
}

/* ---------------------------------------------------------------- adamw -- */

typedef struct adamw_consts {
    float beta1, one_m_beta1, beta2, one_m_beta2; /* 1 − β is exact in float for β in [0.5, 1) */
    float inv_bc1, inv_bc2;                       /* 1/(1 − β^t), from double */
    float lr, eps, weight_decay, grad_scale;
} adamw_consts;

/* m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 * p = p − lr·( (m/bc1) / (√(v/bc2) + eps) + wd·p ),  g = grad_scale·grad. */
BP_CPU_CLONES static void adamw_kernel(float *p, const float *grad, float *m, float *v, int64_t n,
                                       const adamw_consts *c) {
    const float b1 = c->beta1, b1c = c->one_m_beta1, b2 = c->beta2, b2c = c->one_m_beta2;
    const float ib1 = c->inv_bc1, ib2 = c->inv_bc2, lr = c->lr, eps = c->eps, wd = c->weight_decay;
    const float gs = c->grad_scale;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = gs * grad[i];
        float mi = b1 * m[i] + b1c * g;
        float vi = b2 * v[i] + b2c * (g * g);
        float pi = p[i];
        float u = (mi * ib1) / (sqrtf(vi * ib2) + eps) + wd * pi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr * u;
    }
}

bp_status bp_cpu_adamw(bp_backend_impl *be, const bp_adamw_desc *d, bp_error *err) {
    (void)err;
    adamw_consts c;
    c.beta1 = d->beta1;
    c.one_m_beta1 = 1.0f - d->beta1;
    c.beta2 = d->beta2;
    c.one_m_beta2 = 1.0f - d->beta2;
    double t = (double)d->step;
    c.inv_bc1 = (float)(1.0 / (1.0 - pow((double)d->beta1, t)));
    c.inv_bc2 = (float)(1.0 / (1.0 - pow((double)d->beta2, t)));
    c.lr = d->lr;
    c.eps = d->eps;
    c.weight_decay = d->weight_decay;
    c.grad_scale = d->grad_scale;
    float *p = d->param->data, *m = d->m->data, *v = d->v->data;
    const float *g = d->grad->data;
    int64_t n = bp_tensor_numel(d->param);
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        bp_cpu_split(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        adamw_kernel(p + lo, g + lo, m + lo, v + lo, hi - lo, &c);
    }
    return BP_OK;
}
