/* cpu backend — matmul and conv2d through oneDNN.
 *
 * matmul: c = alpha·op(a)·op(b) + beta·c + bias, as one oneDNN matmul over
 * 3-D descriptors [batch, rows, cols]; transposes are strides, a shared 2-D b
 * is a batch-1 (broadcast) weight. alpha is oneDNN's output scale, beta its
 * sum post-op (absent when beta = 0, so c is then never read). oneDNN scales
 * (src·wei + bias), so with alpha ≠ 1 the bias is added as a binary post-op
 * after the scale instead.
 * BF16 runs natively where oneDNN has BF16 kernels; otherwise (no native
 * BF16 on the CPU, no kernel for the case, or the `bf16_upconvert`
 * parameter) a and b are widened to F32 first (exactly).
 *
 * conv2d: NCHW F32, plain layouts, groups as the goihw weight layout. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Create the primitive descriptor for `op_desc` with the instance's thread
 * count active (some implementations size their blocking by it). */
static dnnl_status_t pd_create(bp_cpu *cpu, dnnl_primitive_desc_t *pd, const void *op_desc,
                               const_dnnl_primitive_attr_t attr) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(cpu->n_threads);
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, cpu->engine, NULL);
    omp_set_num_threads(saved);
    return s;
}

/* ------------------------------------------------------------------ matmul -- */

typedef struct mm_shape {
    int64_t batch, m, k, n;
    int b_batched;
} mm_shape;

static mm_shape mm_shape_of(const bp_matmul_desc *d) {
    mm_shape s;
    const bp_tensor *a = d->a, *b = d->b;
    s.batch = 1;
    for (int32_t i = 0; i < a->ndim - 2; i++) s.batch *= a->shape[i];
    s.m = d->trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    s.k = d->trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    s.n = d->trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    s.b_batched = b->ndim == a->ndim && a->ndim > 2;
    return s;
}

/* K = 0: the product is zero; c = beta·c + bias without oneDNN. */
static void mm_empty_k(const bp_matmul_desc *d, const mm_shape *s) {
    float *c = d->c->data;
    const float *bias = d->bias ? d->bias->data : NULL;
    int64_t rows = s->batch * s->m;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < s->n; j++) {
            float v = d->beta != 0.0f ? d->beta * c[r * s->n + j] : 0.0f;
            c[r * s->n + j] = v + (bias ? bias[j] : 0.0f);
        }
}

static bp_status mm_build(bp_cpu *cpu, const bp_cpu_prim_key *key, const mm_shape *s, dnnl_data_type_t dt,
                          const bp_matmul_desc *d, int bias_post_op, bp_cpu_prim *tmp, bp_cpu_prim **out,
                          bp_error *err) {
    const int64_t B = s->batch, M = s->m, K = s->k, N = s->n, Bb = s->b_batched ? B : 1;
    dnnl_dims_t ad = {B, M, K}, bd = {Bb, K, N}, cd = {B, M, N}, biasd = {1, 1, N};
    dnnl_dims_t as = {M * K, K, 1}, bs = {K * N, N, 1}, cs = {M * N, N, 1}, biass = {N, N, 1};
    if (d->trans_a) as[1] = 1, as[2] = M;
    if (d->trans_b) bs[1] = 1, bs[2] = K;
    dnnl_memory_desc_t amd, bmd, cmd, biasmd;
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(&amd, 3, ad, dt, as);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&bmd, 3, bd, dt, bs);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&cmd, 3, cd, dnnl_f32, cs);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&biasmd, 3, biasd, dnnl_f32, biass);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "matmul", "memory_desc_init", err);
    int native_bias = d->bias && !bias_post_op;
    dnnl_matmul_desc_t md;
    st = dnnl_matmul_desc_init(&md, &amd, &bmd, native_bias ? &biasmd : NULL, &cmd);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "matmul", "matmul_desc_init", err);

    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && d->alpha != 1.0f) st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &d->alpha);
    if (st == dnnl_success && (d->beta != 0.0f || bias_post_op)) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success && d->beta != 0.0f) st = dnnl_post_ops_append_sum(po, d->beta);
        if (st == dnnl_success && bias_post_op) st = dnnl_post_ops_append_binary(po, dnnl_binary_add, &biasmd);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = pd_create(cpu, &pd, &md, attr);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "matmul", "primitive_desc_create", err);

    int32_t ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, 0};
    int32_t n = 3;
    if (native_bias) ids[n++] = DNNL_ARG_BIAS;
    if (bias_post_op) ids[n++] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(d->beta != 0.0f ? 1 : 0) | DNNL_ARG_SRC_1;
    return bp_cpu_prim_create(cpu, key, pd, ids, n, tmp, out, "matmul", err);
}

/* BF16 → F32 copies of a and b in the instance's widening buffer. */
static bp_status mm_widen(bp_cpu *cpu, const bp_matmul_desc *d, float **wa, float **wb, bp_error *err) {
    int64_t na = bp_tensor_numel(d->a), nb = bp_tensor_numel(d->b);
    size_t need = (size_t)(na + nb);
    if (need > cpu->widen_cap) {
        float *p = aligned_alloc(64, ((need * sizeof(float)) + 63) & ~(size_t)63);
        if (!p)
            return bp_error_set(err, BP_ERR_NOMEM, "cpu matmul: cannot allocate %zu floats to widen BF16 inputs",
                                need);
        free(cpu->widen);
        cpu->widen = p;
        cpu->widen_cap = need;
    }
    *wa = cpu->widen;
    *wb = cpu->widen + na;
    bp_cpu_bf16_to_f32_row(d->a->data, *wa, na);
    bp_cpu_bf16_to_f32_row(d->b->data, *wb, nb);
    return BP_OK;
}

static bp_cpu_prim_key mm_key(const bp_matmul_desc *d, const mm_shape *s, int32_t dtype, int bias_post_op) {
    bp_cpu_prim_key key;
    memset(&key, 0, sizeof key);
    key.kind = BP_CPU_PRIM_MATMUL;
    key.dtype = dtype;
    key.dims[0] = s->batch;
    key.dims[1] = s->m;
    key.dims[2] = s->k;
    key.dims[3] = s->n;
    key.flags[0] = d->trans_a != 0;
    key.flags[1] = d->trans_b != 0;
    key.flags[2] = s->b_batched;
    key.flags[3] = (d->bias ? 1 : 0) | (bias_post_op ? 2 : 0);
    key.scalars[0] = float_bits(d->alpha);
    key.scalars[1] = float_bits(d->beta);
    return key;
}

/* Append " (F32 batch 1, M 512, K 768, N 768)" to the error message. */
static void mm_error_shape(bp_error *err, int32_t dtype, const mm_shape *s) {
    if (!err) return;
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, " (%s batch %lld, M %lld, K %lld, N %lld)", bp_dtype_name(dtype),
             (long long)s->batch, (long long)s->m, (long long)s->k, (long long)s->n);
}

bp_status bp_cpu_matmul(bp_backend_impl *be, const bp_matmul_desc *d, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    mm_shape s = mm_shape_of(d);
    if (s.batch == 0 || s.m == 0 || s.n == 0) return BP_OK;
    if (s.k == 0) {
        mm_empty_k(d, &s);
        return BP_OK;
    }
    int bf16 = d->a->dtype == BP_DTYPE_BF16;
    int widen = bf16 && (!cpu->bf16_native || cpu->bf16_upconvert);
    int bias_post_op = d->bias && d->alpha != 1.0f;
    for (;;) {
        void *pa = d->a->data, *pb = d->b->data;
        if (widen) {
            float *wa = NULL, *wb = NULL;
            bp_status st = mm_widen(cpu, d, &wa, &wb, err);
            if (st != BP_OK) return st;
            pa = wa;
            pb = wb;
        }
        int32_t dtype = (bf16 && !widen) ? BP_DTYPE_BF16 : BP_DTYPE_F32;
        bp_cpu_prim_key key = mm_key(d, &s, dtype, bias_post_op);
        bp_cpu_prim tmp, *p = bp_cpu_cache_find(&cpu->cache, &key);
        if (!p) {
            bp_status st = mm_build(cpu, &key, &s, dtype == BP_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32, d, bias_post_op,
                                    &tmp, &p, err);
            if (st == BP_ERR_UNSUPPORTED && dtype == BP_DTYPE_BF16) {
                widen = 1; /* no native BF16 kernel for this case: widen to F32 */
                continue;
            }
            if (st != BP_OK) {
                mm_error_shape(err, dtype, &s);
                return st;
            }
        }
        void *ptrs[4] = {pa, pb, d->c->data, d->bias ? d->bias->data : NULL};
        bp_status st = bp_cpu_prim_execute(cpu, p, ptrs, "matmul", err);
        if (st != BP_OK) mm_error_shape(err, dtype, &s);
        return st;
    }
}

/* ------------------------------------------------------------------ conv2d -- */

static bp_status conv_build(bp_cpu *cpu, const bp_cpu_prim_key *key, const bp_conv2d_desc *d, bp_cpu_prim *tmp,
                            bp_cpu_prim **out, bp_error *err) {
    const bp_tensor *x = d->x, *w = d->w, *y = d->y;
    int64_t g = d->groups;
    dnnl_dims_t xd = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
    dnnl_dims_t yd = {y->shape[0], y->shape[1], y->shape[2], y->shape[3]};
    dnnl_dims_t wd = {g, w->shape[0] / g, w->shape[1], w->shape[2], w->shape[3]};
    dnnl_dims_t wd_dense = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
    dnnl_dims_t bd = {w->shape[0]};
    dnnl_dims_t strides = {d->stride_h, d->stride_w};
    dnnl_dims_t dil = {d->dilation_h - 1, d->dilation_w - 1};
    dnnl_dims_t pad = {d->pad_h, d->pad_w};
    dnnl_memory_desc_t xmd, wmd, ymd, bmd;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&xmd, 4, xd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&ymd, 4, yd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success)
        st = g > 1 ? dnnl_memory_desc_init_by_tag(&wmd, 5, wd, dnnl_f32, dnnl_goihw)
                   : dnnl_memory_desc_init_by_tag(&wmd, 4, wd_dense, dnnl_f32, dnnl_oihw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "conv2d", "memory_desc_init", err);
    dnnl_convolution_desc_t cd;
    st = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &xmd, &wmd,
                                                    d->bias ? &bmd : NULL, &ymd, strides, dil, pad, pad);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "conv2d", "convolution_forward_desc_init", err);
    dnnl_primitive_attr_t attr = NULL;
    st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = pd_create(cpu, &pd, &cd, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, "conv2d", "primitive_desc_create", err);
    int32_t ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    return bp_cpu_prim_create(cpu, key, pd, ids, d->bias ? 4 : 3, tmp, out, "conv2d", err);
}

bp_status bp_cpu_conv2d(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    if (bp_tensor_numel(d->y) == 0) return BP_OK;
    if (bp_cpu_conv_direct_ok(d, d->y)) return bp_cpu_conv2d_direct(cpu, d, err);
    bp_cpu_prim_key key;
    memset(&key, 0, sizeof key);
    key.kind = BP_CPU_PRIM_CONV;
    key.dtype = BP_DTYPE_F32;
    for (int i = 0; i < 4; i++) {
        key.dims[i] = d->x->shape[i];
        key.dims[4 + i] = d->w->shape[i];
    }
    key.dims[8] = d->stride_h;
    key.dims[9] = d->stride_w;
    key.dims[10] = d->pad_h;
    key.dims[11] = d->pad_w;
    key.dims[12] = d->dilation_h;
    key.dims[13] = d->dilation_w;
    key.dims[14] = d->groups;
    key.flags[0] = d->bias != NULL;
    bp_cpu_prim tmp, *p = bp_cpu_cache_find(&cpu->cache, &key);
    if (!p) {
        bp_status st = conv_build(cpu, &key, d, &tmp, &p, err);
        if (st != BP_OK) return st;
    }
    void *ptrs[4] = {d->x->data, d->w->data, d->y->data, d->bias ? d->bias->data : NULL};
    return bp_cpu_prim_execute(cpu, p, ptrs, "conv2d", err);
}
