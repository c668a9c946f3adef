/* Test-only plugins: a tiny frontend ("tfeat") and encoder ("tpool") with
 * exactly known outputs, used by the registry and pipeline tests. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/encoder.h"
#include "batpipe/frontend.h"
#include "batpipe/ops.h"
#include "batpipe/plugin.h"

/* ---------------------------------------------------------------- tfeat -- */

typedef struct tfeat {
    bp_stage st;
    int64_t rate, channels_out, frame, bins, nan_at_call;
    int64_t calls;
} tfeat;

static const bp_param_spec tfeat_params[] = {
    {sizeof(bp_param_spec), "rate", BP_PARAM_INT, "16000", 1, 192000, NULL, "input sample rate in Hz"},
    {sizeof(bp_param_spec), "channels_out", BP_PARAM_INT, "4", 1, 8, NULL, "feature channels produced"},
    {sizeof(bp_param_spec), "frame", BP_PARAM_INT, "160", 8, 4096, NULL, "samples per frame"},
    {sizeof(bp_param_spec), "bins", BP_PARAM_INT, "8", 1, 64, NULL, "bins per frame (frame must be a multiple)"},
    {sizeof(bp_param_spec), "nan_at_call", BP_PARAM_INT, "-1", -1, 1000000, NULL,
     "produce a NaN on this process call (0-based; -1 = never), to test error handling"},
    {sizeof(bp_param_spec), "mode", BP_PARAM_STRING, "\"energy\"", BP_NO_RANGE, "energy|mean", "what each bin holds"},
    {sizeof(bp_param_spec), "gains", BP_PARAM_FLOAT_LIST, "[1.0, 1.0]", 0.0, 100.0, NULL, "per-input-channel gain"},
};

static bp_status tfeat_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    tfeat *t = st->self;
    int64_t shape[2] = {2, BP_DIM_ANY};
    *want = bp_spec_f32(2, shape, (double)t->rate, "channels,samples");
    return BP_OK;
}

static bp_status tfeat_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    tfeat *t = st->self;
    if (*n < 2) return bp_error_set(err, BP_ERR_INVALID, "tfeat needs room for 2 outputs");
    int64_t frames = in->shape[1] == BP_DIM_ANY ? BP_DIM_ANY : in->shape[1] / t->frame;
    int64_t s0[3] = {t->channels_out, frames, t->bins};
    memset(out, 0, 2 * sizeof *out);
    out[0].struct_size = sizeof *out;
    snprintf(out[0].name, sizeof out[0].name, "features");
    out[0].spec = bp_spec_f32(3, s0, (double)t->rate / (double)t->frame, "channels,frames,bins");
    snprintf(out[0].help, sizeof out[0].help, "per-bin energy of each frame");
    int64_t s1[2] = {2, frames};
    out[1].struct_size = sizeof *out;
    snprintf(out[1].name, sizeof out[1].name, "energy");
    out[1].spec = bp_spec_f32(2, s1, (double)t->rate / (double)t->frame, "channels,frames");
    out[1].optional = 1;
    snprintf(out[1].help, sizeof out[1].help, "per-frame energy per input channel");
    *n = 2;
    return BP_OK;
}

static bp_status tfeat_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n, bp_error *err) {
    tfeat *t = st->self;
    (void)n;
    int64_t S = in->shape[1], frames = S / t->frame, per = t->frame / t->bins;
    const float *x = in->data;
    float *f = outs[0]->data;
    for (int64_t c = 0; c < t->channels_out; c++)
        for (int64_t fr = 0; fr < frames; fr++)
            for (int64_t b = 0; b < t->bins; b++) {
                double s = 0;
                for (int64_t k = 0; k < per; k++) {
                    double v = x[(c % 2) * S + fr * t->frame + b * per + k];
                    s += v * v;
                }
                f[(c * frames + fr) * t->bins + b] = (float)(s / (double)per);
            }
    if (outs[1]) {
        float *e = outs[1]->data;
        for (int64_t c = 0; c < 2; c++)
            for (int64_t fr = 0; fr < frames; fr++) {
                double s = 0;
                for (int64_t k = 0; k < t->frame; k++) s += (double)x[c * S + fr * t->frame + k] * x[c * S + fr * t->frame + k];
                e[c * frames + fr] = (float)s;
            }
    }
    if (t->calls++ == t->nan_at_call && bp_tensor_numel(outs[0]) > 0) ((float *)outs[0]->data)[0] = NAN;
    (void)err;
    return BP_OK;
}

static void tfeat_destroy(bp_stage *st) { free(st->self); }

static bp_status tfeat_create(const bp_host *host, const bp_params *p, void **instance, bp_error *err) {
    (void)host;
    tfeat *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    t->rate = bp_params_int(p, "rate");
    t->channels_out = bp_params_int(p, "channels_out");
    t->frame = bp_params_int(p, "frame");
    t->bins = bp_params_int(p, "bins");
    t->nan_at_call = bp_params_int(p, "nan_at_call");
    if (t->frame % t->bins) {
        free(t);
        return bp_error_set(err, BP_ERR_INVALID, "frame (%lld) must be a multiple of bins (%lld)",
                            (long long)bp_params_int(p, "frame"), (long long)bp_params_int(p, "bins"));
    }
    t->st.struct_size = sizeof t->st;
    t->st.self = t;
    t->st.input_spec = tfeat_input_spec;
    t->st.prepare = tfeat_prepare;
    t->st.process = tfeat_process;
    t->st.destroy = tfeat_destroy;
    *instance = &t->st;
    return BP_OK;
}

/* ---------------------------------------------------------------- tpool -- */

typedef struct tpool {
    bp_stage st;
    const bp_host *host;
} tpool;

static bp_status tpool_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)st, (void)err;
    int64_t shape[4] = {BP_DIM_ANY, 4, BP_DIM_ANY, BP_DIM_ANY};
    *want = bp_spec_f32(4, shape, 0, "batch,channels,frames,bins");
    return BP_OK;
}

static bp_status tpool_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    (void)st, (void)err;
    int64_t s[2] = {in->shape[0], 4};
    memset(out, 0, sizeof *out);
    out[0].struct_size = sizeof *out;
    snprintf(out[0].name, sizeof out[0].name, "tokens");
    out[0].spec = bp_spec_f32(2, s, 0, "batch,dim");
    *n = 1;
    return BP_OK;
}

static bp_status tpool_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n, bp_error *err) {
    tpool *t = st->self;
    (void)n;
    if (!t->host->backend || !bp_backend_is_host(t->host->backend))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "tpool computes in host memory only");
    int64_t B = in->shape[0], per = in->shape[2] * in->shape[3];
    const float *x = in->data;
    float *y = outs[0]->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < 4; c++) {
            double s = 0;
            for (int64_t k = 0; k < per; k++) s += x[(b * 4 + c) * per + k];
            y[b * 4 + c] = (float)(per ? s / (double)per : 0);
        }
    return BP_OK;
}

static void tpool_destroy(bp_stage *st) { free(st->self); }

static bp_status tpool_create(const bp_host *host, const bp_params *p, void **instance, bp_error *err) {
    (void)p;
    tpool *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    t->host = host;
    t->st.struct_size = sizeof t->st;
    t->st.self = t;
    t->st.input_spec = tpool_input_spec;
    t->st.prepare = tpool_prepare;
    t->st.process = tpool_process;
    t->st.destroy = tpool_destroy;
    *instance = &t->st;
    return BP_OK;
}

/* -------------------------------------------------------------- entries -- */

static const bp_descriptor tfeat_desc = {sizeof(bp_descriptor), "tfeat", "0.1.0", "test frontend: frame energies",
                                         NULL, tfeat_params, sizeof tfeat_params / sizeof tfeat_params[0]};
static const bp_descriptor tpool_desc = {sizeof(bp_descriptor), "tpool", "0.1.0", "test encoder: channel means",
                                         NULL, NULL, 0};
static const bp_descriptor *const fe_descs[] = {&tfeat_desc};
static const bp_descriptor *const enc_descs[] = {&tpool_desc};

static bp_status fe_create(const bp_host *h, uint32_t i, const bp_params *p, void **inst, bp_error *err) {
    (void)i;
    return tfeat_create(h, p, inst, err);
}
static bp_status enc_create(const bp_host *h, uint32_t i, const bp_params *p, void **inst, bp_error *err) {
    (void)i;
    return tpool_create(h, p, inst, err);
}

static const bp_factory fe_factory = {sizeof(bp_factory), 1, fe_descs, fe_create};
static const bp_factory enc_factory = {sizeof(bp_factory), 1, enc_descs, enc_create};

static const bp_factory *get_factory(const char *id) {
    if (strcmp(id, BP_KIND_FRONTEND_ID) == 0) return &fe_factory;
    if (strcmp(id, BP_KIND_ENCODER_ID) == 0) return &enc_factory;
    return NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "test-good", "0.1.0", "MIT", NULL, NULL, NULL, get_factory,
};
