/* Test-only plugins for the evaluation tests (built into test-plugins/eval,
 * never seen by a regular plugin scan):
 *  - frontend "tframe": the binaural clip [2, samples] reshaped to features
 *    [2, samples / bins, bins] (values unchanged);
 *  - encoder "toracle": reads a table (safetensors) of the logits to emit,
 *    one row per item in dataset order, and a checksum of each item's
 *    features. Each batch row is checked against the next row's checksum
 *    (so items reaching it out of order or mixed up fail), then the table's
 *    logits are emitted: metrics over them are exactly predictable. Main
 *    output "tokens" [batch, 1, 2] = (feature checksum, batch size seen). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/encoder.h"
#include "batpipe/frontend.h"
#include "batpipe/ops.h"
#include "batpipe/plugin.h"
#include "batpipe/safetensors.h"

/* --------------------------------------------------------------- tframe -- */

typedef struct tframe {
    bp_stage st;
    int64_t bins;
} tframe;

static const bp_param_spec tframe_params[] = {
    {sizeof(bp_param_spec), "bins", BP_PARAM_INT, "64", 1, 4096, NULL, "samples per feature row"},
};

static bp_status tframe_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)st, (void)err;
    int64_t shape[2] = {2, BP_DIM_ANY};
    *want = bp_spec_f32(2, shape, 0, "channel,time");
    return BP_OK;
}

static bp_status tframe_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    tframe *t = st->self;
    if (*n < 1) return bp_error_set(err, BP_ERR_INVALID, "tframe: no room for outputs");
    int64_t rows = in->shape[1] == BP_DIM_ANY ? BP_DIM_ANY : in->shape[1] / t->bins;
    int64_t shape[3] = {2, rows, t->bins};
    memset(out, 0, sizeof *out);
    out[0].struct_size = sizeof *out;
    snprintf(out[0].name, sizeof out[0].name, "features");
    out[0].spec = bp_spec_f32(3, shape, in->rate > 0 ? in->rate / (double)t->bins : 0, "channel,row,bin");
    *n = 1;
    return BP_OK;
}

static bp_status tframe_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n, bp_error *err) {
    tframe *t = st->self;
    (void)n, (void)err;
    int64_t S = in->shape[1], rows = S / t->bins, per = rows * t->bins;
    for (int c = 0; c < 2; c++)
        memcpy((float *)outs[0]->data + c * per, (const float *)in->data + c * S, (size_t)per * sizeof(float));
    return BP_OK;
}

static void tframe_destroy(bp_stage *st) { free(st->self); }

static bp_status tframe_create(const bp_params *p, void **instance, bp_error *err) {
    tframe *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "tframe: out of memory");
    t->bins = bp_params_int(p, "bins");
    t->st.struct_size = sizeof t->st;
    t->st.self = t;
    t->st.input_spec = tframe_input_spec;
    t->st.prepare = tframe_prepare;
    t->st.process = tframe_process;
    t->st.destroy = tframe_destroy;
    *instance = &t->st;
    return BP_OK;
}

/* -------------------------------------------------------------- toracle -- */

static const char *const head_names[4] = {"logits_class", "logits_azimuth", "logits_elevation", "logits_distance"};

typedef struct toracle {
    bp_stage st;
    const bp_host *host;
    int64_t n_items, width[4], next, nan_item;
    float *heads[4];
    double *checksum;
} toracle;

static const bp_param_spec toracle_params[] = {
    {sizeof(bp_param_spec), "table", BP_PARAM_PATH, NULL, BP_NO_RANGE, NULL,
     "safetensors with logits_class/azimuth/elevation/distance [items, n] and checksum [items] (F64)"},
    {sizeof(bp_param_spec), "nan_item", BP_PARAM_INT, "-1", -1, 1e9, NULL,
     "put a NaN into this item's azimuth logits (-1 = never)"},
};

static bp_status toracle_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)st, (void)err;
    int64_t shape[4] = {BP_DIM_ANY, 2, BP_DIM_ANY, BP_DIM_ANY};
    *want = bp_spec_f32(4, shape, 0, "batch,channel,row,bin");
    return BP_OK;
}

static bp_status toracle_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    toracle *t = st->self;
    if (*n < 5) return bp_error_set(err, BP_ERR_INVALID, "toracle: room for 5 outputs needed");
    memset(out, 0, 5 * sizeof *out);
    int64_t b = in->shape[0];
    int64_t tok[3] = {b, 1, 2};
    out[0].struct_size = sizeof *out;
    snprintf(out[0].name, sizeof out[0].name, "tokens");
    out[0].spec = bp_spec_f32(3, tok, 0, "batch,token,dim");
    for (int h = 0; h < 4; h++) {
        int64_t s[2] = {b, t->width[h]};
        out[h + 1].struct_size = sizeof *out;
        snprintf(out[h + 1].name, sizeof out[h + 1].name, "%s", head_names[h]);
        out[h + 1].spec = bp_spec_f32(2, s, 0, "batch,class");
        out[h + 1].optional = 1;
    }
    *n = 5;
    return BP_OK;
}

static bp_status toracle_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n,
                                 bp_error *err) {
    toracle *t = st->self;
    (void)n;
    if (!t->host->backend || !bp_backend_is_host(t->host->backend))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "toracle computes in host memory only");
    int64_t B = in->shape[0], per = bp_tensor_numel(in) / (B ? B : 1);
    for (int64_t b = 0; b < B; b++) {
        int64_t idx = t->next++;
        if (idx >= t->n_items)
            return bp_error_set(err, BP_ERR_INVALID, "toracle: item %lld, but the table has %lld rows",
                                (long long)idx, (long long)t->n_items);
        const float *x = (const float *)in->data + b * per;
        double sum = 0;
        for (int64_t k = 0; k < per; k++) sum += x[k];
        if (fabs(sum - t->checksum[idx]) > 1e-9 * fmax(1.0, fabs(sum)))
            return bp_error_set(err, BP_ERR_INVALID,
                                "toracle: batch row %lld has features summing to %.12g, table row %lld %.12g "
                                "(items out of order?)",
                                (long long)b, sum, (long long)idx, t->checksum[idx]);
        float *tok = outs[0]->data;
        tok[b * 2] = (float)sum;
        tok[b * 2 + 1] = (float)B;
        for (int h = 0; h < 4; h++) {
            if (!outs[h + 1]) continue;
            float *dst = (float *)outs[h + 1]->data + b * t->width[h];
            memcpy(dst, t->heads[h] + idx * t->width[h], (size_t)t->width[h] * sizeof(float));
            if (h == 1 && idx == t->nan_item) dst[7] = NAN;
        }
    }
    return BP_OK;
}

static void toracle_destroy(bp_stage *st) {
    toracle *t = st->self;
    for (int h = 0; h < 4; h++) free(t->heads[h]);
    free(t->checksum);
    free(t);
}

static bp_status toracle_load(toracle *t, const char *path, bp_error *err) {
    bp_st_file *f;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) return st;
    bp_tensor c;
    if ((st = bp_st_get(f, "checksum", &c, err)) == BP_OK && (c.dtype != BP_DTYPE_F64 || c.ndim != 1))
        st = bp_error_set(err, BP_ERR_FORMAT, "toracle: checksum must be F64 [items]");
    if (st == BP_OK) {
        t->n_items = c.shape[0];
        if (!(t->checksum = malloc((size_t)t->n_items * sizeof(double))))
            st = bp_error_set(err, BP_ERR_NOMEM, "toracle: out of memory");
        else
            memcpy(t->checksum, c.data, (size_t)t->n_items * sizeof(double));
    }
    for (int h = 0; h < 4 && st == BP_OK; h++) {
        bp_tensor x;
        if ((st = bp_st_get(f, head_names[h], &x, err)) != BP_OK) break;
        if (x.dtype != BP_DTYPE_F32 || x.ndim != 2 || x.shape[0] != t->n_items) {
            st = bp_error_set(err, BP_ERR_FORMAT, "toracle: %s must be F32 [items, n]", head_names[h]);
            break;
        }
        t->width[h] = x.shape[1];
        if (!(t->heads[h] = malloc(bp_tensor_nbytes(&x)))) {
            st = bp_error_set(err, BP_ERR_NOMEM, "toracle: out of memory");
            break;
        }
        memcpy(t->heads[h], x.data, bp_tensor_nbytes(&x));
    }
    bp_st_close(f);
    return st;
}

static bp_status toracle_create(const bp_host *host, const bp_params *p, void **instance, bp_error *err) {
    toracle *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "toracle: out of memory");
    t->host = host;
    t->nan_item = bp_params_int(p, "nan_item");
    t->st.struct_size = sizeof t->st;
    t->st.self = t;
    t->st.input_spec = toracle_input_spec;
    t->st.prepare = toracle_prepare;
    t->st.process = toracle_process;
    t->st.destroy = toracle_destroy;
    bp_status st = toracle_load(t, bp_params_string(p, "table"), err);
    if (st != BP_OK) {
        toracle_destroy(&t->st);
        return st;
    }
    *instance = &t->st;
    return BP_OK;
}

/* -------------------------------------------------------------- entries -- */

static const bp_descriptor tframe_desc = {sizeof(bp_descriptor), "tframe", "0.1.0",
                                          "test frontend: the clip reshaped to rows of samples", NULL, tframe_params,
                                          sizeof tframe_params / sizeof tframe_params[0]};
static const bp_descriptor toracle_desc = {sizeof(bp_descriptor), "toracle", "0.1.0",
                                           "test encoder: logits from a table, checked item by item", NULL,
                                           toracle_params, sizeof toracle_params / sizeof toracle_params[0]};
static const bp_descriptor *const fe_descs[] = {&tframe_desc};
static const bp_descriptor *const enc_descs[] = {&toracle_desc};

static bp_status fe_create(const bp_host *h, uint32_t i, const bp_params *p, void **inst, bp_error *err) {
    (void)i, (void)h;
    return tframe_create(p, inst, err);
}
static bp_status enc_create(const bp_host *h, uint32_t i, const bp_params *p, void **inst, bp_error *err) {
    (void)i;
    return toracle_create(h, p, inst, err);
}

static const bp_factory fe_factory = {sizeof(bp_factory), 1, fe_descs, fe_create};
static const bp_factory enc_factory = {sizeof(bp_factory), 1, enc_descs, enc_create};

static const bp_factory *get_factory(const char *id) {
    if (strcmp(id, BP_KIND_FRONTEND_ID) == 0) return &fe_factory;
    if (strcmp(id, BP_KIND_ENCODER_ID) == 0) return &enc_factory;
    return NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "test-eval", "0.1.0", "MIT", NULL, NULL, NULL, get_factory,
};
