/* audiomae — the AudioMAE (ViT-B/16, fine-tuning head) encoder plugin
 * (bp-audiomae.so): the stage (fbank → tokens + class logits) and its
 * trainable extension. The model is in amae_model.c / amae_forward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amae_model.h"
#include "batpipe/encoder.h"
#include "batpipe/plugin.h"

#define NAME "audiomae"

static const bp_param_spec amae_params[] = {
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "safetensors state dict with AudioMAE's fine-tuning names (scripts/convert_checkpoint.py finetuned.pth); "
     "\"\" = random init"},
    {sizeof(bp_param_spec), "dim", BP_PARAM_INT, "768", 4, 65536, NULL, "embedding width D (ViT-B: 768)"},
    {sizeof(bp_param_spec), "depth", BP_PARAM_INT, "12", 1, 1024, NULL, "number of transformer blocks"},
    {sizeof(bp_param_spec), "heads", BP_PARAM_INT, "12", 1, 4096, NULL, "attention heads (must divide dim)"},
    {sizeof(bp_param_spec), "mlp_ratio", BP_PARAM_FLOAT, "4.0", 0.01, 64.0, NULL,
     "MLP hidden width = int(dim * mlp_ratio)"},
    {sizeof(bp_param_spec), "n_classes", BP_PARAM_INT, "527", 1, 1000000, NULL,
     "classes of the head (AudioMAE's AudioSet checkpoints: 527)"},
    {sizeof(bp_param_spec), "init_seed", BP_PARAM_INT, "0", 0, 9007199254740991.0, NULL,
     "seed of the random initialisation (used when no weights are given)"},
    BP_NN_PARAM_HEAD_INIT_STD,
    {sizeof(bp_param_spec), "drop_path", BP_PARAM_FLOAT, "0.1", 0.0, 0.99, NULL,
     "stochastic depth rate of the last block in training (linear from 0), unless the trainer sets one"},
    BP_NN_PARAM_PRECISION,
};

static const bp_descriptor amae_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "AudioMAE ViT-B/16 with the fine-tuning head (mean-pooled patch tokens, fc_norm, head): tokens [B, 513, D] and "
    "class logits; classification only (no direction or distance heads)",
    "facebookresearch/AudioMAE models_vit.py (global_pool) + main_finetune_as.py; checked against a PyTorch "
    "reference (tests/make_audiomae_ref.py)",
    amae_params, sizeof amae_params / sizeof amae_params[0]};

typedef struct amae_stage {
    bp_stage stage; /* handed to the host; self points back here */
    const bp_host *host;
    amae_model model;
} amae_stage;

/* ------------------------------------------------------------------ stage -- */

static bp_status amae_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)st;
    (void)err;
    const int64_t shape[4] = {BP_DIM_ANY, 1, AMAE_FRAMES, AMAE_MELS};
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

static bp_status amae_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs,
                              bp_error *err) {
    amae_stage *s = st->self;
    const amae_cfg *c = &s->model.cfg;
    if (*n_outputs < AMAE_OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            AMAE_OUT_COUNT);
    if (in->dtype >= 0 && in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input is %s, needs F32 features", bp_dtype_name(in->dtype));
    if (in->ndim >= 0 && in->ndim != 4)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %d dimensions, needs [batch, 1, 1024, 128]",
                            (int)in->ndim);
    const int64_t batch = in->ndim == 4 ? in->shape[0] : BP_DIM_ANY;
    if (in->ndim == 4) {
        const int64_t ch = in->shape[1], t = in->shape[2], f = in->shape[3];
        if (ch != BP_DIM_ANY && ch != 1)
            return bp_error_set(err, BP_ERR_SPEC,
                                NAME ": input has %lld maps, AudioMAE needs 1 (the mono fbank front end, 'fbank')",
                                (long long)ch);
        if ((t != BP_DIM_ANY && t != AMAE_FRAMES) || (f != BP_DIM_ANY && f != AMAE_MELS))
            return bp_error_set(err, BP_ERR_SPEC,
                                NAME ": input maps are %lldx%lld, AudioMAE needs %dx%d (frames x mel bins; fbank "
                                "target_frames = 1024)",
                                (long long)t, (long long)f, AMAE_FRAMES, AMAE_MELS);
    }
    const int64_t st_[3] = {batch, 1 + AMAE_PATCHES, c->dim}, sc[2] = {batch, c->n_classes};
    port(&outputs[AMAE_OUT_TOKENS], "tokens", 3, st_, "batch,token,dim", 0,
         "all 513 tokens of the last block (CLS, then 64x8 patches time-major), no norm");
    port(&outputs[AMAE_OUT_CLASS], "logits_class", 2, sc, "batch,class", 1,
         "sound-event logits (multi-label): head(fc_norm(mean of the patch tokens))");
    *n_outputs = AMAE_OUT_COUNT;
    return BP_OK;
}

static bp_status amae_process(bp_stage *st, const bp_tensor *input, bp_tensor *const *outputs, uint32_t n_outputs,
                              bp_error *err) {
    amae_stage *s = st->self;
    if (!input) return bp_error_set(err, BP_ERR_INVALID, NAME ": no input");
    if (n_outputs < 1 || !outputs || !outputs[AMAE_OUT_TOKENS])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'tokens' output tensor");
    bp_tensor *outs[AMAE_OUT_COUNT] = {NULL};
    uint32_t n = n_outputs < AMAE_OUT_COUNT ? n_outputs : AMAE_OUT_COUNT;
    for (uint32_t i = 0; i < n; i++) outs[i] = outputs[i];
    bp_status rc = amae_model_forward(&s->model, input, NULL, 0, outs, AMAE_OUT_COUNT, err);
    if (rc == BP_OK && s->host && s->host->cancelled && s->host->cancelled(s->host))
        return bp_error_set(err, BP_ERR_CANCELLED, NAME ": cancelled");
    return rc;
}

/* -------------------------------------------------------------- trainable -- */

static amae_model *model_of(bp_stage *st) { return &((amae_stage *)st->self)->model; }

static int32_t tr_n_layers(bp_stage *st) { return (int32_t)model_of(st)->cfg.depth + 2; }

static uint32_t tr_param_count(bp_stage *st) { return model_of(st)->params.count; }

static bp_status tr_param_at(bp_stage *st, uint32_t index, bp_train_param *out, bp_error *err) {
    return bp_nn_params_describe(&model_of(st)->params, index, NAME, out, err);
}

static bp_status tr_set_training(bp_stage *st, int32_t training, bp_error *err) {
    (void)err;
    amae_model *m = model_of(st);
    bp_nn_params_drop_bf16(&m->params);
    m->training = training != 0;
    m->kept = 0;
    return BP_OK;
}

static bp_status tr_forward(bp_stage *st, const bp_tensor *input, const bp_train_step *step, bp_tensor *const *outputs,
                            uint32_t n_outputs, bp_error *err) {
    amae_model *m = model_of(st);
    amae_step s = {0, 0.0, 0.0, 0, 0, -1.0f};
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
    bp_tensor *outs[AMAE_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_outputs && i < AMAE_OUT_COUNT; i++) outs[i] = outputs ? outputs[i] : NULL;
    return amae_model_forward(m, input, &s, 1, outs, AMAE_OUT_COUNT, err);
}

static bp_status tr_backward(bp_stage *st, const bp_tensor *const *d_outputs, uint32_t n_outputs, bp_tensor *d_input,
                             bp_error *err) {
    return amae_model_backward(model_of(st), d_outputs, n_outputs, d_input, err);
}

static bp_status tr_zero_grad(bp_stage *st, bp_error *err) {
    return bp_nn_params_zero_grad(&model_of(st)->params, err);
}

static const bp_trainable amae_trainable = {sizeof(bp_trainable), tr_n_layers,    tr_param_count, tr_param_at,
                                            tr_set_training,      tr_forward,     tr_backward,    tr_zero_grad};

static const void *amae_get_extension(bp_stage *st, const char *id) {
    (void)st;
    return id && strcmp(id, BP_EXT_TRAINABLE_ID) == 0 ? &amae_trainable : NULL;
}

static void amae_destroy(bp_stage *st) {
    if (!st) return;
    amae_stage *s = st->self;
    amae_model_free(&s->model);
    free(s);
}

/* ---------------------------------------------------------------- factory -- */

static bp_status amae_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    if (!host || !host->backend)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": needs a compute backend (the pipeline's backend = { ... })");
    amae_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dim = bp_params_int(params, "dim");
    cfg.depth = bp_params_int(params, "depth");
    cfg.heads = bp_params_int(params, "heads");
    cfg.mlp_hidden = (int64_t)((double)cfg.dim * bp_params_float(params, "mlp_ratio"));
    cfg.n_classes = bp_params_int(params, "n_classes");
    cfg.init_seed = (uint64_t)bp_params_int(params, "init_seed");
    cfg.drop_path = (float)bp_params_float(params, "drop_path");
    cfg.head_init_std = bp_params_float(params, "head_init_std");
    if (cfg.dim % cfg.heads != 0 || cfg.dim % 4 != 0)
        return bp_error_set(err, BP_ERR_INVALID,
                            NAME ": parameter 'dim' = %lld must be a multiple of 4 and of 'heads' = %lld",
                            (long long)cfg.dim, (long long)cfg.heads);
    if (cfg.mlp_hidden < 1) return bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'mlp_ratio' gives an empty MLP");
    amae_stage *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    s->host = host;
    bp_status st = amae_model_init(&s->model, &cfg, host->backend, err);
    if (st == BP_OK) s->model.bf16 = bp_nn_precision_bf16(params);
    const char *weights = bp_params_string(params, "weights");
    if (st == BP_OK && weights && weights[0]) {
        st = amae_model_load(&s->model, weights, err);
        if (st != BP_OK) bp_error_prefix(err, NAME ": parameter 'weights': ");
    }
    if (st != BP_OK) {
        amae_model_free(&s->model);
        free(s);
        return st;
    }
    bp_logf(host, BP_LOG_INFO, NAME, "D=%lld depth=%lld heads=%lld classes=%lld: %.2f M trainable parameters, %s",
            (long long)cfg.dim, (long long)cfg.depth, (long long)cfg.heads, (long long)cfg.n_classes,
            (double)bp_nn_params_trainable_numel(&s->model.params) / 1e6,
            weights && weights[0] ? weights : "random init");
    s->stage.struct_size = sizeof s->stage;
    s->stage.self = s;
    s->stage.input_spec = amae_input_spec;
    s->stage.prepare = amae_prepare;
    s->stage.process = amae_process;
    s->stage.get_extension = amae_get_extension;
    s->stage.destroy = amae_destroy;
    *instance = &s->stage;
    return BP_OK;
}

static const bp_descriptor *const amae_descs[] = {&amae_desc};
static const bp_factory amae_factory = {sizeof(bp_factory), 1, amae_descs, amae_create};

static const bp_factory *amae_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_ENCODER_ID) == 0 ? &amae_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, amae_get_factory};
