/* cpu backend — conv2d_backward: dx through a oneDNN convolution
 * backward-data primitive, dw through a backward-weights primitive (both
 * plain NCHW / OIHW, goihw for groups, like the forward in cpu_dnnl_ops.c),
 * db as per-(n, o) plane sums of dy in double added in n order (long sums:
 * N·OH·OW terms; deterministic, see cpu_train_reduce.c).
 *
 * Both primitives are created from a forward-training hint and kept in the
 * instance's primitive cache (kinds BP_CPU_PRIM_CONV_BWD_DATA / _WEIGHTS,
 * keyed by every dim, stride, padding, dilation and groups), so a training
 * loop creates each once. Only what is asked for is computed: each of dx,
 * dw, db may be NULL. oneDNN writes dx and dw whole (input pixels that no
 * window reaches get 0). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct conv_mds {
    dnnl_memory_desc_t x, w, y;
    dnnl_dims_t strides, dil, pad;
} conv_mds;

static dnnl_status_t conv_mds_init(const bp_conv2d_desc *d, const bp_tensor *dy, conv_mds *m) {
    const bp_tensor *x = d->x, *w = d->w;
    int64_t g = d->groups;
    dnnl_dims_t xd = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
    dnnl_dims_t yd = {dy->shape[0], dy->shape[1], dy->shape[2], dy->shape[3]};
    dnnl_dims_t wd = {g, w->shape[0] / g, w->shape[1], w->shape[2], w->shape[3]};
    dnnl_dims_t wd_dense = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
    m->strides[0] = d->stride_h, m->strides[1] = d->stride_w;
    m->dil[0] = d->dilation_h - 1, m->dil[1] = d->dilation_w - 1;
    m->pad[0] = d->pad_h, m->pad[1] = d->pad_w;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&m->x, 4, xd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&m->y, 4, yd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success)
        st = g > 1 ? dnnl_memory_desc_init_by_tag(&m->w, 5, wd, dnnl_f32, dnnl_goihw)
                   : dnnl_memory_desc_init_by_tag(&m->w, 4, wd_dense, dnnl_f32, dnnl_oihw);
    return st;
}

/* Primitive descriptor creation with the instance's thread count active. */
static dnnl_status_t pd_create(bp_cpu *cpu, dnnl_primitive_desc_t *pd, const void *op_desc,
                               const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(cpu->n_threads);
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, cpu->engine, hint);
    omp_set_num_threads(saved);
    return s;
}

/* Build the backward-data (kind BP_CPU_PRIM_CONV_BWD_DATA) or backward-weights
 * primitive for d/dy. */
static bp_status conv_bwd_build(bp_cpu *cpu, const bp_cpu_prim_key *key, const bp_conv2d_desc *d,
                                const bp_tensor *dy, bp_cpu_prim *tmp, bp_cpu_prim **out, bp_error *err) {
    const char *what = "conv2d_backward";
    int data = key->kind == BP_CPU_PRIM_CONV_BWD_DATA;
    conv_mds m;
    dnnl_status_t st = conv_mds_init(d, dy, &m);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, what, "memory_desc_init", err);
    dnnl_convolution_desc_t fd, bd;
    st = dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &m.x, &m.w,
                                                    NULL, &m.y, m.strides, m.dil, m.pad, m.pad);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, what, "convolution_forward_desc_init", err);
    if (data)
        st = dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &m.x, &m.w, &m.y,
                                                              m.strides, m.dil, m.pad, m.pad);
    else
        st = dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &m.x, &m.w, NULL,
                                                                 &m.y, m.strides, m.dil, m.pad, m.pad);
    if (st != dnnl_success)
        return bp_cpu_dnnl_error(
            st, what, data ? "convolution_backward_data_desc_init" : "convolution_backward_weights_desc_init", err);
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    const char *call = "primitive_desc_create (forward hint)";
    st = pd_create(cpu, &hint, &fd, NULL, NULL);
    if (st == dnnl_success) {
        call = "primitive_attr_create";
        st = dnnl_primitive_attr_create(&attr);
    }
    if (st == dnnl_success) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success) {
        call = data ? "primitive_desc_create (backward data)" : "primitive_desc_create (backward weights)";
        st = pd_create(cpu, &pd, &bd, attr, hint);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (st != dnnl_success) return bp_cpu_dnnl_error(st, what, call, err);
    static const int32_t data_ids[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    static const int32_t weight_ids[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
    return bp_cpu_prim_create(cpu, key, pd, data ? data_ids : weight_ids, 3, tmp, out, what, err);
}

static bp_cpu_prim_key conv_bwd_key(const bp_conv2d_desc *d, int32_t kind) {
    bp_cpu_prim_key key;
    memset(&key, 0, sizeof key);
    key.kind = kind;
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
    return key;
}

/* Run one backward primitive (found in the cache or built). */
static bp_status conv_bwd_run(bp_cpu *cpu, const bp_conv2d_desc *d, const bp_tensor *dy, int32_t kind,
                              void *const *ptrs, bp_error *err) {
    bp_cpu_prim_key key = conv_bwd_key(d, kind);
    bp_cpu_prim tmp, *p = bp_cpu_cache_find(&cpu->cache, &key);
    if (!p) {
        bp_status st = conv_bwd_build(cpu, &key, d, dy, &tmp, &p, err);
        if (st != BP_OK) return st;
    }
    return bp_cpu_prim_execute(cpu, p, ptrs, "conv2d_backward", err);
}

/* db[o] = Σ_n Σ_(i,j) dy[n, o, i, j], in double. */
static bp_status conv_bias_grad(bp_cpu *cpu, const bp_tensor *dy, bp_tensor *db, bp_error *err) {
    int64_t n = dy->shape[0], o = dy->shape[1], plane = dy->shape[2] * dy->shape[3];
    double *sums = malloc((size_t)(n * o > 0 ? n * o : 1) * sizeof *sums);
    if (!sums)
        return bp_error_set(err, BP_ERR_NOMEM, "cpu conv2d_backward: cannot allocate %lld bias partial sums",
                            (long long)(n * o));
    bp_cpu_plane_sums(cpu, dy->data, n * o, plane, sums);
    float *dbs = db->data;
    for (int64_t c = 0; c < o; c++) {
        double t = 0.0;
        for (int64_t i = 0; i < n; i++) t += sums[i * o + c];
        dbs[c] = (float)t;
    }
    free(sums);
    return BP_OK;
}

bp_status bp_cpu_conv2d_backward(bp_backend_impl *be, const bp_conv2d_desc *d, const bp_tensor *dy, bp_tensor *dx,
                                 bp_tensor *dw, bp_tensor *db, bp_error *err) {
    bp_cpu *cpu = bp_cpu_of(be);
    bp_status st = BP_OK;
    if (bp_tensor_numel(dy) == 0 || bp_tensor_numel(d->x) == 0 || bp_tensor_numel(d->w) == 0) {
        /* an empty product: nothing flows back to x or w */
        if (dx && bp_tensor_nbytes(dx) > 0) memset(dx->data, 0, bp_tensor_nbytes(dx));
        if (dw && bp_tensor_nbytes(dw) > 0) memset(dw->data, 0, bp_tensor_nbytes(dw));
    } else {
        if (dx) {
            void *ptrs[3] = {dy->data, d->w->data, dx->data};
            st = conv_bwd_run(cpu, d, dy, BP_CPU_PRIM_CONV_BWD_DATA, ptrs, err);
        }
        if (st == BP_OK && dw && bp_cpu_conv_direct_ok(d, dy)) {
            st = bp_cpu_conv2d_direct_dw(cpu, d, dy, dw, err);
        } else if (st == BP_OK && dw) {
            void *ptrs[3] = {d->x->data, dy->data, dw->data};
            st = conv_bwd_run(cpu, d, dy, BP_CPU_PRIM_CONV_BWD_WEIGHTS, ptrs, err);
        }
    }
    if (st == BP_OK && db) st = conv_bias_grad(cpu, dy, db, err);
    return st;
}
