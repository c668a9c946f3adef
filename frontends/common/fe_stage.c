/* frontends/common — stage helpers (see fe_stage.h). */
#include "fe_stage.h"

#include <stdio.h>
#include <string.h>

#include "fe_parallel.h"
#include "fe_resize.h"

void bp_fe_port(bp_port *p, const char *name, int32_t ndim, const int64_t *shape, double rate, const char *dims,
                int32_t optional, const char *help) {
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->spec = bp_spec_f32(ndim, shape, rate, dims);
    p->optional = optional;
    snprintf(p->help, sizeof p->help, "%s", help);
}

bp_status bp_fe_check_audio(const bp_tensor *in, const char *what, bp_error *err) {
    if (!in || !in->data)
        return bp_error_set(err, BP_ERR_INVALID, "%s: no input tensor", what);
    if (in->backend)
        return bp_error_set(err, BP_ERR_INVALID, "%s: the input must be in host memory", what);
    if (in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, "%s: input is %s, needs F32 audio", what, bp_dtype_name(in->dtype));
    if (in->ndim != 2)
        return bp_error_set(err, BP_ERR_SPEC, "%s: input has %d dimensions, needs 2 [channels, samples]", what,
                            (int)in->ndim);
    if (in->shape[0] < 1 || in->shape[1] < 1)
        return bp_error_set(err, BP_ERR_INVALID, "%s: input is empty ([%lld, %lld])", what, (long long)in->shape[0],
                            (long long)in->shape[1]);
    return BP_OK;
}

static const char *shape_str(int32_t ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t off = 0;
    buf[0] = '\0';
    off += (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
    return buf;
}

bp_status bp_fe_check_output(const bp_tensor *t, const char *what, const char *name, int32_t ndim,
                             const int64_t *shape, bp_error *err) {
    if (!t) return BP_OK;
    char have[96], want[96];
    if (!t->data || t->backend || t->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_INVALID, "%s: output '%s' must be an F32 tensor in host memory", what, name);
    int ok = t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok)
        return bp_error_set(err, BP_ERR_INVALID, "%s: output '%s' has shape %s, expected %s", what, name,
                            shape_str(t->ndim, t->shape, have, sizeof have), shape_str(ndim, shape, want, sizeof want));
    return BP_OK;
}

typedef struct resize_ctx {
    const float *in;
    int64_t t_in;
    float *out;
    int64_t t_out, width;
} resize_ctx;

/* Items are (map, output row) pairs, map-major. */
static void resize_run(void *arg, int32_t slot, int64_t begin, int64_t end) {
    const resize_ctx *rc = arg;
    (void)slot;
    while (begin < end) {
        int64_t c = begin / rc->t_out, r0 = begin % rc->t_out;
        int64_t r1 = end - c * rc->t_out < rc->t_out ? end - c * rc->t_out : rc->t_out;
        bp_fe_resize_rows(rc->in + c * rc->t_in * rc->width, rc->t_in, rc->out + c * rc->t_out * rc->width, rc->t_out,
                          rc->width, r0, r1);
        begin = c * rc->t_out + r1;
    }
}

void bp_fe_resize_maps(const float *in, int64_t n_maps, int64_t t_in, float *out, int64_t t_out, int64_t width,
                       int32_t n_threads) {
    if (t_in == t_out) {
        if (in != out) memcpy(out, in, (size_t)(n_maps * t_in * width) * sizeof *out);
        return;
    }
    resize_ctx rc = {in, t_in, out, t_out, width};
    bp_fe_parallel_for(n_threads, n_maps * t_out, resize_run, &rc);
}
