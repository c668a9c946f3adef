/* llama plugin — row-level operations of the decoder layer. */
#include "llama_ops.h"

#include <math.h>

float lm_dot_f32(const float *a, const float *b, int64_t n) {
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; i++, j++) acc[j] += a[i] * b[i];
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}

void lm_axpy_f32(float a, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void lm_rmsnorm(const float *x, const float *w, float eps, int64_t n, float *y) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float mean = (float)(ss / (double)n);
    const float r = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) y[i] = w[i] * (x[i] * r);
}

void lm_rmsnorm_exact(const float *x, const float *w, float eps, int64_t n, float *y) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const double r = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (int64_t i = 0; i < n; i++) y[i] = (float)((double)w[i] * ((double)x[i] * r));
}

void lm_rope_table_exact(double base, int32_t head_dim, int64_t pos, float *cos_out, float *sin_out) {
    for (int32_t i = 0; i < head_dim / 2; i++) {
        const double th = (double)pos * pow(base, -2.0 * (double)i / (double)head_dim);
        cos_out[i] = (float)cos(th);
        sin_out[i] = (float)sin(th);
    }
}

void lm_rope_table(float base, int32_t head_dim, int64_t pos, float *cos_out, float *sin_out) {
    const float step = powf(base, -2.0f / (float)head_dim);
    float th = (float)pos;
    for (int32_t i = 0; i < head_dim / 2; i++) {
        cos_out[i] = cosf(th);
        sin_out[i] = sinf(th);
        th *= step;
    }
}

void lm_rope_apply(float *x, int32_t n_heads, int32_t head_dim, int32_t layout, const float *cs, const float *sn) {
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *u = x + (int64_t)h * head_dim;
        if (layout == LM_ROPE_HALF) {
            for (int32_t i = 0; i < half; i++) {
                const float a = u[i], b = u[i + half];
                u[i] = a * cs[i] - b * sn[i];
                u[i + half] = b * cs[i] + a * sn[i];
            }
        } else {
            for (int32_t i = 0; i < half; i++) {
                const float a = u[2 * i], b = u[2 * i + 1];
                u[2 * i] = a * cs[i] - b * sn[i];
                u[2 * i + 1] = a * sn[i] + b * cs[i];
            }
        }
    }
}

/* softmax(scores[0..n)) in place; returns nothing, scores sum to 1. */
static void softmax(float *s, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

/* The same with exp and the normalisation in double. */
static void softmax_exact(float *s, int64_t n) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) sum += exp((double)s[j] - (double)mx);
    for (int64_t j = 0; j < n; j++) s[j] = (float)(exp((double)s[j] - (double)mx) / sum);
}

void lm_attend(const lm_kernels *kr, const float *q, const void *k, const void *v, int kv_f16, int exact,
               int64_t n_keys, int32_t head_dim, float scale, const float *pk, const float *pv, int64_t stride,
               int32_t n_prompt, float gate, float *scores, float *out) {
    void (*soft)(float *, int64_t) = exact ? softmax_exact : softmax;
    if (kv_f16) kr->attn_scores_f16(q, k, n_keys, head_dim, head_dim, scale, scores);
    else kr->attn_scores(q, k, n_keys, head_dim, head_dim, scale, scores);
    soft(scores, n_keys);
    for (int32_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    if (kv_f16) {
        kr->round_f16(scores, n_keys);
        kr->attn_accum_f16(scores, v, n_keys, head_dim, head_dim, out);
    } else {
        kr->attn_accum(scores, v, n_keys, head_dim, head_dim, out);
    }
    if (n_prompt > 0) {
        kr->attn_scores(q, pk, n_prompt, head_dim, stride, scale, scores);
        soft(scores, n_prompt);
        for (int32_t j = 0; j < n_prompt; j++) scores[j] *= gate;
        kr->attn_accum(scores, pv, n_prompt, head_dim, stride, out);
    }
}

void lm_swiglu(const float *g, const float *u, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void lm_swiglu_exact(const float *g, const float *u, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const double gi = (double)g[i];
        out[i] = (float)(gi / (1.0 + exp(-gi)) * (double)u[i]);
    }
}

lm_epilogue lm_epilogue_of(const lm_adapter *a, int32_t l, lm_proj p) {
    lm_epilogue e = {NULL, NULL, NULL, 0, 0.0f};
    if (!a) return e;
    const lm_adapter_layer *L = &a->layers[l];
    e.bias = L->bias[p];
    e.scale = L->scale[p];
    if (L->lora[p].r > 0) {
        e.lora_b = L->lora[p].b;
        e.lora_r = L->lora[p].r;
        e.lora_scale = L->lora[p].scale;
    }
    return e;
}

void lm_epilogue_apply(const lm_epilogue *e, const float *t1, float *y, int64_t n_out) {
    if (e->lora_b) {
        for (int64_t o = 0; o < n_out; o++) {
            const float *b = e->lora_b + o * e->lora_r;
            float acc = 0.0f;
            for (int32_t j = 0; j < e->lora_r; j++) acc += t1[j] * b[j];
            y[o] += e->lora_scale * acc;
        }
    }
    if (e->bias)
        for (int64_t o = 0; o < n_out; o++) y[o] += e->bias[o];
    if (e->scale)
        for (int64_t o = 0; o < n_out; o++) y[o] *= e->scale[o];
}
