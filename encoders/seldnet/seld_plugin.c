/* seldnet — the SELDnet-style baseline encoder plugin (bp-seldnet.so): the
 * stage (features → tokens + the four heads' logits) and its trainable
 * extension. The model is in seld_model.c / seld_forward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/encoder.h"
#include "batpipe/plugin.h"
#include "seld_model.h"

#define NAME "seldnet"

static const bp_param_spec seld_params[] = {
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "safetensors state dict with this plugin's names (README.md; e.g. a batpipe train checkpoint); \"\" = random "
     "init"},
    {sizeof(bp_param_spec), "dim", BP_PARAM_INT, "768", 2, 65536, NULL, "transformer width D (paper-sized: 768)"},
    {sizeof(bp_param_spec), "depth", BP_PARAM_INT, "12", 1, 1024, NULL, "number of transformer blocks"},
    {sizeof(bp_param_spec), "heads", BP_PARAM_INT, "12", 1, 4096, NULL, "attention heads (must divide dim)"},
    {sizeof(bp_param_spec), "mlp_ratio", BP_PARAM_FLOAT, "4.0", 0.01, 64.0, NULL,
     "MLP hidden width = int(dim * mlp_ratio)"},
    {sizeof(bp_param_spec), "n_classes", BP_PARAM_INT, "355", 1, 1000000, NULL,
     "classes of the sound-event head (SpatialSoundQA: 355 AudioSet classes)"},
    {sizeof(bp_param_spec), "input", BP_PARAM_STRING, "\"melipd\"", BP_NO_RANGE, "melipd|mel_binaural|mel_mono",
     "input maps: melipd = 4 (binaural log-mel + IPD cos/sin), mel_binaural = 2, mel_mono = 1"},
    {sizeof(bp_param_spec), "filters", BP_PARAM_INT, "64", 1, 4096, NULL, "filters of every conv block (SELDnet: 64)"},
    {sizeof(bp_param_spec), "freq_pool", BP_PARAM_FLOAT_LIST, "[4, 4, 2]", 1, 128, NULL,
     "max-pool size over frequency of each conv block; its length is the number of conv blocks (1 to 8)"},
    {sizeof(bp_param_spec), "time_pool", BP_PARAM_FLOAT_LIST, "[2, 1, 1]", 1, 1024, NULL,
     "max-pool size over time of each conv block (same length as freq_pool); [2, 1, 1] gives 512 frame tokens"},
    {sizeof(bp_param_spec), "init_seed", BP_PARAM_INT, "0", 0, 9007199254740991.0, NULL,
     "seed of the random initialisation (used when no weights are given)"},
    BP_NN_PARAM_HEAD_INIT_STD,
    {sizeof(bp_param_spec), "drop_path", BP_PARAM_FLOAT, "0.1", 0.0, 0.99, NULL,
     "stochastic depth rate of the last block in training (linear from 0), unless the trainer sets one"},
    BP_NN_PARAM_PRECISION,
};

static const bp_descriptor seld_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "SELDnet-style baseline (BAT Table 3): SELDnet conv feature network + ViT trunk with 3 CLS tokens; "
    "tokens and class/distance/DoA logits",
    "BAT paper §5.1 baseline (SELDnet, Adavanne et al. 2018, + 12 transformer blocks, ~90 M parameters); "
    "design in docs/research baselines-metrics.md §1.3",
    seld_params, sizeof seld_params / sizeof seld_params[0]};

typedef struct seld_stage {
    bp_stage stage; /* handed to the host; self points back here */
    const bp_host *host;
    seld_model model;
} seld_stage;

static const char *input_name(int64_t ch) { return ch == 4 ? "melipd" : ch == 2 ? "mel_binaural" : "mel_mono"; }

/* ------------------------------------------------------------------ stage -- */

static bp_status seld_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    seld_stage *s = st->self;
    const int64_t shape[4] = {BP_DIM_ANY, s->model.cfg.in_ch, SELD_FRAMES, SELD_MELS};
    *want = bp_spec_f32(4, shape, 0.0, "batch,map,time,mel");
    return BP_OK;
}

static void port(bp_port *p, const char *name, int32_t ndim, const int64_t *shape, const char *dims, int optional,
                 const char *help) {
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->spec = bp_spec_f32(ndim, shape, 0.0, dims);
    p->optional = optional;
    snprintf(p->help, sizeof p->help, "%s", help);
}

static bp_status seld_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs,
                              bp_error *err) {
    seld_stage *s = st->self;
    const seld_cfg *c = &s->model.cfg;
    if (*n_outputs < SELD_OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            SELD_OUT_COUNT);
    if (in->dtype >= 0 && in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input is %s, needs F32 features", bp_dtype_name(in->dtype));
    if (in->ndim >= 0 && in->ndim != 4)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %d dimensions, needs [batch, maps, 1024, 128]",
                            (int)in->ndim);
    const int64_t batch = in->ndim == 4 ? in->shape[0] : BP_DIM_ANY;
    if (in->ndim == 4) {
        const int64_t ch = in->shape[1], t = in->shape[2], f = in->shape[3];
        if (ch != BP_DIM_ANY && ch != c->in_ch)
            return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld map%s, this model (input = %s) needs %lld",
                                (long long)ch, ch == 1 ? "" : "s", input_name(c->in_ch), (long long)c->in_ch);
        if ((t != BP_DIM_ANY && t != SELD_FRAMES) || (f != BP_DIM_ANY && f != SELD_MELS))
            return bp_error_set(err, BP_ERR_SPEC,
                                NAME ": input maps are %lldx%lld, seldnet needs %dx%d (frames x mels)", (long long)t,
                                (long long)f, SELD_FRAMES, SELD_MELS);
    }
    const int64_t n_tok = SELD_CLS + s->model.n_frames;
    const int64_t st_[3] = {batch, n_tok, c->dim}, sc[2] = {batch, c->n_classes}, sd[2] = {batch, SELD_N_DIST},
                  sa[2] = {batch, SELD_N_AZI}, se[2] = {batch, SELD_N_ELE};
    char help[160];
    snprintf(help, sizeof help,
             "all %lld tokens of the last block (3 CLS: distance, DoA, class; then %lld frame tokens), no norm",
             (long long)n_tok, (long long)s->model.n_frames);
    port(&outputs[SELD_OUT_TOKENS], "tokens", 3, st_, "batch,token,dim", 0, help);
    port(&outputs[SELD_OUT_CLASS], "logits_class", 2, sc, "batch,class", 1, "sound-event logits (multi-label)");
    port(&outputs[SELD_OUT_DISTANCE], "logits_distance", 2, sd, "batch,bin", 1,
         "distance logits, 0.5 m bins 0..10 m");
    port(&outputs[SELD_OUT_AZIMUTH], "logits_azimuth", 2, sa, "batch,degree", 1, "azimuth logits, 1 degree bins");
    port(&outputs[SELD_OUT_ELEVATION], "logits_elevation", 2, se, "batch,degree", 1,
         "elevation logits, bin = elevation + 90");
    *n_outputs = SELD_OUT_COUNT;
    return BP_OK;
}

static bp_status seld_process(bp_stage *st, const bp_tensor *input, bp_tensor *const *outputs, uint32_t n_outputs,
                              bp_error *err) {
    seld_stage *s = st->self;
    if (!input) return bp_error_set(err, BP_ERR_INVALID, NAME ": no input");
    if (n_outputs < 1 || !outputs || !outputs[SELD_OUT_TOKENS])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'tokens' output tensor");
    bp_tensor *outs[SELD_OUT_COUNT] = {NULL};
    uint32_t n = n_outputs < SELD_OUT_COUNT ? n_outputs : SELD_OUT_COUNT;
    for (uint32_t i = 0; i < n; i++) outs[i] = outputs[i];
    bp_status rc = seld_model_forward(&s->model, input, NULL, 0, outs, SELD_OUT_COUNT, err);
    if (rc == BP_OK && s->host && s->host->cancelled && s->host->cancelled(s->host))
        return bp_error_set(err, BP_ERR_CANCELLED, NAME ": cancelled");
    return rc;
}

/* -------------------------------------------------------------- trainable -- */

static seld_model *model_of(bp_stage *st) { return &((seld_stage *)st->self)->model; }

static int32_t tr_n_layers(bp_stage *st) { return (int32_t)model_of(st)->cfg.depth + 2; }

static uint32_t tr_param_count(bp_stage *st) { return model_of(st)->params.count; }

static bp_status tr_param_at(bp_stage *st, uint32_t index, bp_train_param *out, bp_error *err) {
    return bp_nn_params_describe(&model_of(st)->params, index, NAME, out, err);
}

static bp_status tr_set_training(bp_stage *st, int32_t training, bp_error *err) {
    (void)err;
    seld_model *m = model_of(st);
    bp_nn_params_drop_bf16(&m->params);
    m->training = training != 0;
    m->kept = 0;
    return BP_OK;
}

static bp_status tr_forward(bp_stage *st, const bp_tensor *input, const bp_train_step *step, bp_tensor *const *outputs,
                            uint32_t n_outputs, bp_error *err) {
    seld_model *m = model_of(st);
    seld_step s = {0, 0.0, 0, 0, -1.0f};
    if (step) {
        bp_status rc = bp_nn_train_step_check(step, NAME, err);
        if (rc != BP_OK) return rc;
        /* frame tokens have no frequency axis: mask_f_prob does not apply (README.md) */
        s.seed = step->seed;
        s.mask_t = step->mask_t_prob;
        s.specaug_t = step->specaug_time;
        s.specaug_f = step->specaug_freq;
        s.drop_path = step->drop_path;
    }
    bp_tensor *outs[SELD_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_outputs && i < SELD_OUT_COUNT; i++) outs[i] = outputs ? outputs[i] : NULL;
    return seld_model_forward(m, input, &s, 1, outs, SELD_OUT_COUNT, err);
}

static bp_status tr_backward(bp_stage *st, const bp_tensor *const *d_outputs, uint32_t n_outputs, bp_tensor *d_input,
                             bp_error *err) {
    return seld_model_backward(model_of(st), d_outputs, n_outputs, d_input, err);
}

static bp_status tr_zero_grad(bp_stage *st, bp_error *err) {
    return bp_nn_params_zero_grad(&model_of(st)->params, err);
}

static const bp_trainable seld_trainable = {sizeof(bp_trainable), tr_n_layers,    tr_param_count, tr_param_at,
                                            tr_set_training,      tr_forward,     tr_backward,    tr_zero_grad};

static const void *seld_get_extension(bp_stage *st, const char *id) {
    (void)st;
    return id && strcmp(id, BP_EXT_TRAINABLE_ID) == 0 ? &seld_trainable : NULL;
}

static void seld_destroy(bp_stage *st) {
    if (!st) return;
    seld_stage *s = st->self;
    seld_model_free(&s->model);
    free(s);
}

/* ---------------------------------------------------------------- factory -- */

/* The pool lists: integers >= 1, the same length (1 to SELD_MAX_CONV). */
static bp_status read_pools(const bp_params *params, seld_cfg *cfg, bp_error *err) {
    const bp_param_value *fp = bp_params_find(params, "freq_pool"), *tp = bp_params_find(params, "time_pool");
    if (!fp || !tp)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": parameters 'freq_pool' and 'time_pool' are missing");
    if (fp->count < 1 || fp->count > SELD_MAX_CONV || tp->count != fp->count)
        return bp_error_set(err, BP_ERR_INVALID,
                            NAME ": 'freq_pool' has %u and 'time_pool' %u sizes: they need the same length, 1 to %d "
                                 "(one per conv block)",
                            (unsigned)fp->count, (unsigned)tp->count, SELD_MAX_CONV);
    for (uint32_t i = 0; i < fp->count; i++) {
        const double f = fp->list[i], t = tp->list[i];
        if (f != floor(f) || t != floor(t) || f < 1 || t < 1)
            return bp_error_set(err, BP_ERR_INVALID, NAME ": pool sizes must be whole numbers >= 1 (block %u: time %g, "
                                                          "frequency %g)",
                                (unsigned)i, t, f);
        cfg->pool_f[i] = (int32_t)f;
        cfg->pool_t[i] = (int32_t)t;
    }
    cfg->n_conv = (int32_t)fp->count;
    return BP_OK;
}

static bp_status seld_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    if (!host || !host->backend)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": needs a compute backend (the pipeline's backend = { ... })");
    seld_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = bp_params_int(params, "dim");
    cfg.depth = bp_params_int(params, "depth");
    cfg.heads = bp_params_int(params, "heads");
    cfg.mlp_hidden = (int64_t)((double)cfg.dim * bp_params_float(params, "mlp_ratio"));
    cfg.n_classes = bp_params_int(params, "n_classes");
    cfg.filters = bp_params_int(params, "filters");
    const char *input = bp_params_string(params, "input");
    cfg.in_ch = input && strcmp(input, "mel_binaural") == 0 ? 2 : input && strcmp(input, "mel_mono") == 0 ? 1 : 4;
    cfg.init_seed = (uint64_t)bp_params_int(params, "init_seed");
    cfg.drop_path = (float)bp_params_float(params, "drop_path");
    cfg.head_init_std = bp_params_float(params, "head_init_std");
    if (cfg.dim % cfg.heads != 0 || cfg.dim % 2 != 0)
        return bp_error_set(err, BP_ERR_INVALID,
                            NAME ": parameter 'dim' = %lld must be even and a multiple of 'heads' = %lld",
                            (long long)cfg.dim, (long long)cfg.heads);
    if (cfg.mlp_hidden < 1) return bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'mlp_ratio' gives an empty MLP");
    bp_status st = read_pools(params, &cfg, err);
    if (st != BP_OK) return st;
    seld_stage *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    s->host = host;
    st = seld_model_init(&s->model, &cfg, host->backend, err);
    if (st == BP_OK) s->model.bf16 = bp_nn_precision_bf16(params);
    const char *weights = bp_params_string(params, "weights");
    if (st == BP_OK && weights && weights[0]) {
        st = seld_model_load(&s->model, weights, err);
        if (st != BP_OK) bp_error_prefix(err, NAME ": parameter 'weights': ");
    }
    if (st != BP_OK) {
        seld_model_free(&s->model);
        free(s);
        return st;
    }
    bp_logf(host, BP_LOG_INFO, NAME,
            "D=%lld depth=%lld heads=%lld filters=%lld conv blocks=%d input=%s: %lld frame tokens, %.2f M trainable "
            "parameters, %s",
            (long long)cfg.dim, (long long)cfg.depth, (long long)cfg.heads, (long long)cfg.filters, (int)cfg.n_conv,
            input_name(cfg.in_ch), (long long)s->model.n_frames,
            (double)bp_nn_params_trainable_numel(&s->model.params) / 1e6,
            weights && weights[0] ? weights : "random init");
    s->stage.struct_size = sizeof s->stage;
    s->stage.self = s;
    s->stage.input_spec = seld_input_spec;
    s->stage.prepare = seld_prepare;
    s->stage.process = seld_process;
    s->stage.get_extension = seld_get_extension;
    s->stage.destroy = seld_destroy;
    *instance = &s->stage;
    return BP_OK;
}

static const bp_descriptor *const seld_descs[] = {&seld_desc};
static const bp_factory seld_factory = {sizeof(bp_factory), 1, seld_descs, seld_create};

static const bp_factory *seld_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_ENCODER_ID) == 0 ? &seld_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, seld_get_factory};
