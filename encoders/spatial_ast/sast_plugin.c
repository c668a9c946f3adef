/* spatial_ast — the Spatial-AST encoder plugin (bp-spatial_ast.so): the
 * stage (features → tokens + the four heads' logits) and its trainable
 * extension. The model itself is in sast_model.c / sast_forward.c. */
#include <stdlib.h>
#include <string.h>

#include "batpipe/encoder.h"
#include "batpipe/plugin.h"
#include "sast_model.h"

#define NAME "spatial_ast"

static const bp_param_spec sast_params[] = {
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "safetensors state dict with the official names (scripts/convert_checkpoint.py); \"\" = random init"},
    {sizeof(bp_param_spec), "dim", BP_PARAM_INT, "768", 4, 65536, NULL, "embedding width D (ViT-B: 768)"},
    {sizeof(bp_param_spec), "depth", BP_PARAM_INT, "12", 1, 1024, NULL, "number of transformer blocks"},
    {sizeof(bp_param_spec), "heads", BP_PARAM_INT, "12", 1, 4096, NULL, "attention heads (must divide dim)"},
    {sizeof(bp_param_spec), "mlp_ratio", BP_PARAM_FLOAT, "4.0", 0.01, 64.0, NULL,
     "MLP hidden width = int(dim * mlp_ratio)"},
    {sizeof(bp_param_spec), "n_classes", BP_PARAM_INT, "355", 1, 1000000, NULL,
     "classes of the sound-event head (official: 355 AudioSet classes)"},
    {sizeof(bp_param_spec), "input", BP_PARAM_STRING, "\"melipd\"", BP_NO_RANGE, "melipd|mel_binaural|mel_mono",
     "input maps: melipd = 4 (binaural log-mel + IPD cos/sin), mel_binaural = 2, mel_mono = 1"},
    {sizeof(bp_param_spec), "init_seed", BP_PARAM_INT, "0", 0, 9007199254740991.0, NULL,
     "seed of the official random initialisation (used when no weights are given)"},
    BP_NN_PARAM_HEAD_INIT_STD,
    {sizeof(bp_param_spec), "drop_path", BP_PARAM_FLOAT, "0.1", 0.0, 0.99, NULL,
     "stochastic depth rate of the last block in training (linear from 0), unless the trainer sets one"},
    BP_NN_PARAM_PRECISION,
};

static const bp_descriptor sast_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "Spatial-AST (BAT): conv block + ViT with 3 CLS tokens; tokens [B, 515, D] and class/distance/DoA logits",
    "zszheng147/Spatial-AST spatial_ast.py (a563803); checked against golden/spatial_ast_tiny(_grad).safetensors",
    sast_params, sizeof sast_params / sizeof sast_params[0]};

typedef struct sast_stage {
    bp_stage stage; /* handed to the host; self points back here */
    const bp_host *host;
    sast_model model;
} sast_stage;

/* ------------------------------------------------------------------ stage -- */

static bp_status sast_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    sast_stage *s = st->self;
    const int64_t shape[4] = {BP_DIM_ANY, s->model.cfg.in_ch, SAST_FRAMES, SAST_MELS};
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

static bp_status sast_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs,
                              bp_error *err) {
    sast_stage *s = st->self;
    const sast_cfg *c = &s->model.cfg;
    if (*n_outputs < SAST_OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            SAST_OUT_COUNT);
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
                                (long long)ch, ch == 1 ? "" : "s",
                                c->in_ch == 4 ? "melipd" : c->in_ch == 2 ? "mel_binaural" : "mel_mono",
                                (long long)c->in_ch);
        if ((t != BP_DIM_ANY && t != SAST_FRAMES) || (f != BP_DIM_ANY && f != SAST_MELS))
            return bp_error_set(err, BP_ERR_SPEC,
                                NAME ": input maps are %lldx%lld, Spatial-AST needs %dx%d (frames x mels)",
                                (long long)t, (long long)f, SAST_FRAMES, SAST_MELS);
    }
    const int64_t st_[3] = {batch, SAST_CLS + SAST_PATCHES, c->dim}, sc[2] = {batch, c->n_classes},
                  sd[2] = {batch, SAST_N_DIST}, sa[2] = {batch, SAST_N_AZI}, se[2] = {batch, SAST_N_ELE};
    port(&outputs[SAST_OUT_TOKENS], "tokens", 3, st_, "batch,token,dim", 0,
         "all 515 tokens of the last block (3 CLS: distance, DoA, class; then 64x8 patches time-major), no norm");
    port(&outputs[SAST_OUT_CLASS], "logits_class", 2, sc, "batch,class", 1, "sound-event logits (multi-label)");
    port(&outputs[SAST_OUT_DISTANCE], "logits_distance", 2, sd, "batch,bin", 1,
         "distance logits, 0.5 m bins 0..10 m");
    port(&outputs[SAST_OUT_AZIMUTH], "logits_azimuth", 2, sa, "batch,degree", 1, "azimuth logits, 1 degree bins");
    port(&outputs[SAST_OUT_ELEVATION], "logits_elevation", 2, se, "batch,degree", 1,
         "elevation logits, bin = elevation + 90");
    *n_outputs = SAST_OUT_COUNT;
    return BP_OK;
}

static bp_status sast_process(bp_stage *st, const bp_tensor *input, bp_tensor *const *outputs, uint32_t n_outputs,
                              bp_error *err) {
    sast_stage *s = st->self;
    if (!input) return bp_error_set(err, BP_ERR_INVALID, NAME ": no input");
    if (n_outputs < 1 || !outputs || !outputs[SAST_OUT_TOKENS])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'tokens' output tensor");
    bp_tensor *outs[SAST_OUT_COUNT] = {NULL};
    uint32_t n = n_outputs < SAST_OUT_COUNT ? n_outputs : SAST_OUT_COUNT;
    for (uint32_t i = 0; i < n; i++) outs[i] = outputs[i];
    bp_status rc = sast_model_forward(&s->model, input, NULL, 0, outs, n, err);
    if (rc == BP_OK && s->host && s->host->cancelled && s->host->cancelled(s->host))
        return bp_error_set(err, BP_ERR_CANCELLED, NAME ": cancelled");
    return rc;
}

/* -------------------------------------------------------------- trainable -- */

static sast_model *model_of(bp_stage *st) { return &((sast_stage *)st->self)->model; }

static int32_t tr_n_layers(bp_stage *st) { return (int32_t)model_of(st)->cfg.depth + 2; }

static uint32_t tr_param_count(bp_stage *st) { return model_of(st)->params.count; }

static bp_status tr_param_at(bp_stage *st, uint32_t index, bp_train_param *out, bp_error *err) {
    return bp_nn_params_describe(&model_of(st)->params, index, NAME, out, err);
}

static bp_status tr_set_training(bp_stage *st, int32_t training, bp_error *err) {
    (void)err;
    sast_model *m = model_of(st);
    bp_nn_params_drop_bf16(&m->params);
    m->training = training != 0;
    m->kept = 0;
    return BP_OK;
}

static bp_status tr_forward(bp_stage *st, const bp_tensor *input, const bp_train_step *step, bp_tensor *const *outputs,
                            uint32_t n_outputs, bp_error *err) {
    sast_model *m = model_of(st);
    if (input && input->ndim != 4)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": training input must be [batch, maps, 1024, 128]");
    sast_step s = {0, 0.0, 0.0, 0, 0, -1.0f};
    if (step) {
        bp_status rc = bp_nn_train_step_check(step, NAME, err);
        if (rc != BP_OK) return rc;
        s.seed = step->seed;
        s.mask_t = step->mask_t_prob;
        s.mask_f = step->mask_f_prob;
        s.specaug_t = step->specaug_time;
        s.specaug_f = step->specaug_freq;
        s.drop_path = step->drop_path;
    }
    bp_tensor *outs[SAST_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_outputs && i < SAST_OUT_COUNT; i++) outs[i] = outputs ? outputs[i] : NULL;
    return sast_model_forward(m, input, &s, 1, outs, SAST_OUT_COUNT, err);
}

static bp_status tr_backward(bp_stage *st, const bp_tensor *const *d_outputs, uint32_t n_outputs, bp_tensor *d_input,
                             bp_error *err) {
    return sast_model_backward(model_of(st), d_outputs, n_outputs, d_input, err);
}

static bp_status tr_zero_grad(bp_stage *st, bp_error *err) {
    return bp_nn_params_zero_grad(&model_of(st)->params, err);
}

static const bp_trainable sast_trainable = {sizeof(bp_trainable), tr_n_layers,    tr_param_count, tr_param_at,
                                            tr_set_training,      tr_forward,     tr_backward,    tr_zero_grad};

static const void *sast_get_extension(bp_stage *st, const char *id) {
    (void)st;
    return id && strcmp(id, BP_EXT_TRAINABLE_ID) == 0 ? &sast_trainable : NULL;
}

static void sast_destroy(bp_stage *st) {
    if (!st) return;
    sast_stage *s = st->self;
    sast_model_free(&s->model);
    free(s);
}

/* ---------------------------------------------------------------- factory -- */

static bp_status sast_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    if (!host || !host->backend)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": needs a compute backend (the pipeline's backend = { ... })");
    sast_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = bp_params_int(params, "dim");
    cfg.depth = bp_params_int(params, "depth");
    cfg.heads = bp_params_int(params, "heads");
    cfg.mlp_hidden = (int64_t)((double)cfg.dim * bp_params_float(params, "mlp_ratio"));
    cfg.n_classes = bp_params_int(params, "n_classes");
    const char *input = bp_params_string(params, "input");
    cfg.in_ch = input && strcmp(input, "mel_binaural") == 0 ? 2 : input && strcmp(input, "mel_mono") == 0 ? 1 : 4;
    cfg.init_seed = (uint64_t)bp_params_int(params, "init_seed");
    cfg.drop_path = (float)bp_params_float(params, "drop_path");
    cfg.head_init_std = bp_params_float(params, "head_init_std");
    if (cfg.dim % cfg.heads != 0 || cfg.dim % 4 != 0)
        return bp_error_set(err, BP_ERR_INVALID,
                            NAME ": parameter 'dim' = %lld must be a multiple of 4 and of 'heads' = %lld",
                            (long long)cfg.dim, (long long)cfg.heads);
    if (cfg.mlp_hidden < 1)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'mlp_ratio' gives an empty MLP");
    sast_stage *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    s->host = host;
    const char *weights = bp_params_string(params, "weights");
    const int have_weights = weights && weights[0];
    bp_status st = sast_model_init(&s->model, &cfg, host->backend, !have_weights, err);
    if (st == BP_OK) s->model.bf16 = bp_nn_precision_bf16(params);
    if (st == BP_OK && have_weights) {
        st = sast_model_load(&s->model, weights, err);
        if (st != BP_OK) bp_error_prefix(err, NAME ": parameter 'weights': ");
    }
    if (st != BP_OK) {
        sast_model_free(&s->model);
        free(s);
        return st;
    }
    bp_logf(host, BP_LOG_INFO, NAME, "D=%lld depth=%lld heads=%lld input=%s: %.2f M trainable parameters, %s",
            (long long)cfg.dim, (long long)cfg.depth, (long long)cfg.heads, input ? input : "melipd",
            (double)bp_nn_params_trainable_numel(&s->model.params) / 1e6,
            weights && weights[0] ? weights : "random init");
    s->stage.struct_size = sizeof s->stage;
    s->stage.self = s;
    s->stage.input_spec = sast_input_spec;
    s->stage.prepare = sast_prepare;
    s->stage.process = sast_process;
    s->stage.get_extension = sast_get_extension;
    s->stage.destroy = sast_destroy;
    *instance = &s->stage;
    return BP_OK;
}

static const bp_descriptor *const sast_descs[] = {&sast_desc};
static const bp_factory sast_factory = {sizeof(bp_factory), 1, sast_descs, sast_create};

static const bp_factory *sast_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_ENCODER_ID) == 0 ? &sast_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, sast_get_factory};
