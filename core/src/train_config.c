/* train: the configuration schema (docs/train.md). Scalar sections are
 * declared like plugin parameters and validated by the same code (unknown
 * keys with a suggestion, types, ranges, choices, file:line); components are
 * found in the registry by `type`. Also the fingerprint: the settings that
 * decide the trained weights, hashed, so that a resumed run can refuse a
 * checkpoint made by another configuration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"
#include "train_internal.h"

/* clang-format off */
#define P(...) {sizeof(bp_param_spec), __VA_ARGS__}
#define DESC(var, name, help, params) \
    static const bp_descriptor var = {sizeof(bp_descriptor), name, "1", help, NULL, params, \
                                      sizeof params / sizeof params[0]}
/* clang-format on */

static const bp_param_spec top_params[] = {
    P("name", BP_PARAM_STRING, "\"\"", BP_NO_RANGE, NULL, "free text"),
    P("description", BP_PARAM_STRING, "\"\"", BP_NO_RANGE, NULL, "free text"),
    P("seed", BP_PARAM_INT, "0", 0, 9007199254740992.0, NULL,
      "every random choice (data order, augmentation, mixup) derives from it and the step"),
    P("threads", BP_PARAM_INT, "0", 0, 4096, NULL,
      "threads of the backend (0 = every core); exact resumption needs the same count"),
    P("batch_size", BP_PARAM_INT, "8", 1, 1 << 20, NULL, "examples per forward/backward"),
    P("accum_steps", BP_PARAM_INT, "1", 1, 1 << 20, NULL,
      "forward/backward passes whose gradients are summed before one optimizer step"),
};
DESC(top_desc, "train", "top-level settings of a training config", top_params);

static const bp_param_spec init_params[] = {
    P("weights", BP_PARAM_PATH, NULL, BP_NO_RANGE, NULL,
      "safetensors file whose tensors (official names) replace the encoder's initial values"),
    P("strict", BP_PARAM_BOOL, "false", BP_NO_RANGE, NULL,
      "true: every trainable parameter must be in the file; false: load what matches by name"),
};
DESC(init_desc, "init", "initial weights", init_params);

static const bp_param_spec norm_params[] = {
    P("items", BP_PARAM_INT, "0", 0, 1e12, NULL,
      "estimate the frontend's log-mel bn_mean/bn_var from this many training clips (0 = keep the frontend's)"),
};
DESC(norm_desc, "normalize", "frontend normalisation from the data", norm_params);

static const bp_param_spec loss_params[] = {
    P("class", BP_PARAM_FLOAT, "1250.0", 0, 1e12, NULL, "λ1: weight of the BCE-with-logits classification loss"),
    P("distance", BP_PARAM_FLOAT, "1.0", 0, 1e12, NULL, "λ2: weight of the distance cross-entropy"),
    P("direction", BP_PARAM_FLOAT, "2.0", 0, 1e12, NULL,
      "λ3: weight of the azimuth and of the elevation cross-entropy"),
};
DESC(loss_desc, "losses", "loss weights", loss_params);

static const bp_param_spec optim_params[] = {
    P("lr", BP_PARAM_FLOAT, "0.0", 0, 10, NULL, "peak learning rate; 0 = blr · batch_size · accum_steps / 256"),
    P("blr", BP_PARAM_FLOAT, "1e-3", 0, 10, NULL, "base learning rate (used when lr = 0)"),
    P("beta1", BP_PARAM_FLOAT, "0.9", 0, 0.999999, NULL, "AdamW β1"),
    P("beta2", BP_PARAM_FLOAT, "0.95", 0, 0.999999999, NULL, "AdamW β2 (issue 4: 0.95; the official code: 0.999)"),
    P("eps", BP_PARAM_FLOAT, "1e-8", 1e-30, 1, NULL, "AdamW ε"),
    P("weight_decay", BP_PARAM_FLOAT, "5e-4", 0, 10, NULL,
      "decoupled weight decay of the parameters that allow it (not biases, norms, 1-D, pos_embed, cls tokens)"),
    P("layer_decay", BP_PARAM_FLOAT, "0.75", 1e-6, 1, NULL,
      "layer-wise lr decay: layer id k gets lr · layer_decay^(n_layers − 1 − k)"),
    P("min_lr", BP_PARAM_FLOAT, "1e-6", 0, 10, NULL, "the cosine ends at this learning rate"),
    P("warmup_steps", BP_PARAM_INT, "0", 0, 1e15, NULL, "linear warm-up length in optimizer steps"),
    P("warmup_epochs", BP_PARAM_FLOAT, "0.0", 0, 1e9, NULL, "... or in epochs of the training set (not both)"),
};
DESC(optim_desc, "optimizer", "AdamW and its schedule", optim_params);

static const bp_param_spec aug_params[] = {
    P("mask_t_prob", BP_PARAM_FLOAT, "0.25", 0, 0.99, NULL, "token masking: fraction of time rows dropped"),
    P("mask_f_prob", BP_PARAM_FLOAT, "0.25", 0, 0.99, NULL, "token masking: fraction of frequency columns dropped"),
    P("specaug_freq", BP_PARAM_INT, "48", 0, 1 << 20, NULL, "SpecAugment: max width of the frequency mask (0 = none)"),
    P("specaug_time", BP_PARAM_INT, "192", 0, 1 << 20, NULL, "SpecAugment: max width of the time mask (0 = none)"),
    P("drop_path", BP_PARAM_FLOAT, "0.1", 0, 1, NULL, "stochastic depth of the last block (linear from 0)"),
    P("mixup_prob", BP_PARAM_FLOAT, "0.5", 0, 1, NULL, "probability that an example is mixed with a random other one"),
    P("mixup_alpha", BP_PARAM_FLOAT, "10.0", 1e-3, 1e6, NULL, "λ ~ Beta(α, α)"),
    P("mixup_spatial", BP_PARAM_STRING, "\"none\"", BP_NO_RANGE, "none|dominant",
      "spatial targets of a mixed example: none (no distance/direction loss) or the larger-λ clip's"),
};
DESC(aug_desc, "augment", "augmentation", aug_params);

static const bp_param_spec stage_params[] = {
    P("name", BP_PARAM_STRING, "\"\"", BP_NO_RANGE, NULL, "shown in the log (default stageN)"),
    P("steps", BP_PARAM_INT, "0", 0, 1e15, NULL, "length in optimizer steps"),
    P("epochs", BP_PARAM_FLOAT, "0.0", 0, 1e9, NULL, "... or in epochs of the training set (not both)"),
    P("losses", BP_PARAM_STRING_LIST, "[\"class\", \"distance\", \"direction\"]", BP_NO_RANGE, NULL,
      "the losses on in this stage: class, distance, direction"),
};
DESC(stage_desc, "stage", "a curriculum stage", stage_params);

static const bp_param_spec ckpt_params[] = {
    P("every", BP_PARAM_INT, "500", 0, 1e15, NULL, "write a checkpoint every N steps (0 = only at the end)"),
    P("keep", BP_PARAM_INT, "3", 1, 1e6, NULL, "keep the newest K checkpoints"),
};
DESC(ckpt_desc, "checkpoint", "checkpoints", ckpt_params);

static const bp_param_spec eval_params[] = {
    P("every", BP_PARAM_INT, "0", 0, 1e15, NULL, "evaluate every N steps (0 = only at the end)"),
    P("batch_size", BP_PARAM_INT, "8", 1, 1 << 20, NULL, "examples per evaluation batch"),
    P("max_items", BP_PARAM_INT, "0", 0, 1e15, NULL, "evaluate on the first N items (0 = all)"),
};
DESC(eval_desc, "eval", "evaluation", eval_params);

static const bp_param_spec log_params[] = {
    P("every", BP_PARAM_INT, "1", 1, 1e15, NULL, "write a JSONL line every N steps"),
};
DESC(log_desc, "log", "the JSONL log", log_params);

static const bp_param_spec out_params[] = {
    P("dir", BP_PARAM_PATH, NULL, BP_NO_RANGE, NULL,
      "run directory: checkpoints/, train.jsonl, weights.safetensors, config.cfg"),
};
DESC(out_desc, "output", "outputs", out_params);

static const char *const top_keys[] = {"name",    "description", "seed",     "threads", "batch_size", "accum_steps",
                                       "backend", "data",        "frontend", "encoder", "init",       "normalize",
                                       "losses",  "optimizer",   "augment",  "stages",  "checkpoint", "eval",
                                       "log",     "output",      NULL};
static const char *const top_groups[] = {"backend",    "data",   "frontend",  "encoder", "init",
                                         "normalize",  "losses", "optimizer", "augment", "stages",
                                         "checkpoint", "eval",   "log",       "output",  NULL};

/* ------------------------------------------------------------- helpers -- */

static bp_status group_of(bp_config *cfg, config_setting_t *parent, const char *key, const char *example, int required,
                          config_setting_t **out, bp_error *err) {
    char where[600];
    *out = parent ? config_setting_get_member(parent, key) : NULL;
    if (!*out) {
        if (required)
            return bp_error_set(err, BP_ERR_INVALID, "%s: missing '%s' group, e.g. %s", bp_config_label(cfg), key,
                                example);
        return BP_OK;
    }
    if (!config_setting_is_group(*out))
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be a group, e.g. %s",
                            bp_config_where(cfg, *out, where, sizeof where), key, example);
    return BP_OK;
}

/* A component section: `type` names a plugin of `kind`, the rest are its parameters. */
static bp_status parse_comp(bp_registry *reg, bp_config *cfg, config_setting_t *sec, const char *slot, int32_t kind,
                            train_comp *out, bp_error *err) {
    char where[600];
    bp_config_where(cfg, sec, out->where, sizeof out->where);
    if (!config_setting_is_group(sec))
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be a group: %s = { type = \"...\"; ... };", out->where,
                            slot, slot);
    const char *type;
    bp_status st = bp_sec_string(cfg, sec, slot, "type", NULL, NULL, &type, err);
    if (st != BP_OK) return st;
    out->comp = bp_registry_find(reg, kind, type);
    if (!out->comp) {
        char choices[512];
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: %s: unknown %s plugin '%s'; installed: %s",
                            bp_config_where(cfg, config_setting_get_member(sec, "type"), where, sizeof where), slot,
                            bp_kind_name(kind), type, bp_registry_choices(reg, kind, choices, sizeof choices));
    }
    snprintf(out->label, sizeof out->label, "%s (%s)", slot, out->comp->desc->name);
    static const char *const reserved[] = {"type", NULL};
    return bp_paramset_build(out->comp->desc, out->label, cfg, sec, reserved, &out->params, err);
}

static void comp_free(train_comp *c) {
    bp_paramset_free(c->params);
    c->params = NULL;
}

static bp_status parse_stage(bp_config *cfg, config_setting_t *s, uint32_t i, train_stage_cfg *st_out, bp_error *err) {
    char label[64], where[600];
    snprintf(label, sizeof label, "stages[%u]", i);
    bp_config_where(cfg, s, st_out->where, sizeof st_out->where);
    if (!config_setting_is_group(s))
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: %s must be a group, e.g. { name = \"stage1\"; epochs = 5.0; losses = [\"class\"]; }",
                            st_out->where, label);
    bp_paramset *ps;
    bp_status st = bp_paramset_build(&stage_desc, label, cfg, s, NULL, &ps, err);
    if (st != BP_OK) return st;
    const bp_params *p = bp_paramset_params(ps);
    const char *name = bp_params_string(p, "name");
    if (name && *name)
        snprintf(st_out->name, sizeof st_out->name, "%s", name);
    else
        snprintf(st_out->name, sizeof st_out->name, "stage%u", i + 1);
    st_out->steps = bp_params_int(p, "steps");
    st_out->epochs = bp_params_float(p, "epochs");
    if ((st_out->steps > 0) == (st_out->epochs > 0))
        st = bp_error_set(err, BP_ERR_INVALID, "%s: %s: give its length as steps or as epochs (one of them, > 0)",
                          st_out->where, label);
    const bp_param_value *lv = bp_params_find(p, "losses");
    for (uint32_t k = 0; st == BP_OK && lv && k < lv->count; k++) {
        const char *l = lv->strs[k];
        int idx = strcmp(l, "class") == 0       ? TRAIN_LOSS_CLASS
                  : strcmp(l, "distance") == 0  ? TRAIN_LOSS_DISTANCE
                  : strcmp(l, "direction") == 0 ? TRAIN_LOSS_DIRECTION
                                                : -1;
        if (idx < 0)
            st = bp_error_set(
                err, BP_ERR_INVALID, "%s: %s.losses: unknown loss '%s'; valid: class, distance, direction",
                bp_config_where(cfg, config_setting_get_member(s, "losses"), where, sizeof where), label, l);
        else
            st_out->loss_on[idx] = 1;
    }
    if (st == BP_OK && lv && lv->count == 0)
        st = bp_error_set(err, BP_ERR_INVALID, "%s: %s.losses is empty: nothing to train", st_out->where, label);
    bp_paramset_free(ps);
    return st;
}

/* FNV-1a, 64 bits. */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The settings that decide the trained weights, as config text: everything
 * but name/description, data.eval, checkpoint, eval, log and output, plus the
 * plugins' names and versions. */
static bp_status make_fingerprint(train_cfg *c, bp_error *err) {
    config_t fp;
    config_init(&fp);
    config_setting_t *src = bp_config_root(c->cfg), *dst = config_root_setting(&fp);
    static const char *const keep[] = {"seed",      "threads", "batch_size", "accum_steps", "backend",
                                       "frontend",  "encoder", "init",       "normalize",   "losses",
                                       "optimizer", "augment", "stages",     NULL};
    int ok = 1;
    for (const char *const *k = keep; *k && ok; k++) {
        const config_setting_t *s = config_setting_get_member(src, *k);
        if (s) ok = bp_config_copy_setting(s, dst, *k) != NULL;
    }
    config_setting_t *data = config_setting_get_member(src, "data");
    const config_setting_t *train = data ? config_setting_get_member(data, "train") : NULL;
    if (ok && train) {
        config_setting_t *d = config_setting_add(dst, "data", CONFIG_TYPE_GROUP);
        ok = d && bp_config_copy_setting(train, d, "train") != NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mf = ok ? open_memstream(&text, &len) : NULL;
    if (mf) {
        config_write(&fp, mf);
        const train_comp *comps[] = {&c->backend, &c->data_train, &c->frontend, &c->encoder};
        for (size_t i = 0; i < sizeof comps / sizeof comps[0]; i++)
            if (comps[i]->comp)
                fprintf(mf, "# %s %s %s\n", comps[i]->label, comps[i]->comp->desc->version,
                        comps[i]->comp->plugin->plugin_version);
        fclose(mf);
    }
    config_destroy(&fp);
    if (!text) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    c->fingerprint_text = text;
    snprintf(c->fingerprint, sizeof c->fingerprint, "%016llx", (unsigned long long)fnv1a(text));
    return BP_OK;
}

/* --------------------------------------------------------------- load -- */

static bp_status load(bp_registry *reg, train_cfg *c, const char *const *overrides, uint32_t n, bp_error *err) {
    bp_status st;
    char where[600];
    for (uint32_t i = 0; i < n; i++)
        if ((st = bp_config_apply_override(c->cfg, overrides[i], err)) != BP_OK) return st;
    config_setting_t *root = bp_config_root(c->cfg);
    if ((st = bp_sec_check_keys(c->cfg, root, "train config", top_keys, err)) != BP_OK) return st;
    bp_paramset *ps = NULL;
    if ((st = bp_paramset_build(&top_desc, "train config", c->cfg, root, top_groups, &ps, err)) != BP_OK) return st;
    const bp_params *p = bp_paramset_params(ps);
    c->seed = (uint64_t)bp_params_int(p, "seed");
    c->threads = (int32_t)bp_params_int(p, "threads");
    c->batch_size = bp_params_int(p, "batch_size");
    c->accum_steps = bp_params_int(p, "accum_steps");
    bp_paramset_free(ps);
    bp_registry_set_threads(reg, c->threads);

    /* components */
    config_setting_t *g;
    if ((st = group_of(c->cfg, root, "backend", "backend = { type = \"cpu\"; };", 0, &g, err)) != BP_OK) return st;
    if (!g) { /* the default: the cpu backend, written into the tree so that the fingerprint shows it */
        g = config_setting_add(root, "backend", CONFIG_TYPE_GROUP);
        config_setting_t *t = g ? config_setting_add(g, "type", CONFIG_TYPE_STRING) : NULL;
        if (!t || config_setting_set_string(t, "cpu") != CONFIG_TRUE)
            return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    /* The config's thread count is the backend's unless the backend section sets its own. */
    const config_setting_t *bt = config_setting_get_member(g, "type");
    const bp_component_info *bc = bt && config_setting_type(bt) == CONFIG_TYPE_STRING
                                      ? bp_registry_find(reg, BP_KIND_BACKEND, config_setting_get_string(bt))
                                      : NULL;
    if (bc && c->threads > 0 && !config_setting_get_member(g, "threads"))
        for (uint32_t i = 0; i < bc->desc->n_params; i++)
            if (strcmp(bp_desc_param(bc->desc, i)->name, "threads") == 0) {
                config_setting_t *t = config_setting_add(g, "threads", CONFIG_TYPE_INT);
                if (!t || config_setting_set_int(t, c->threads) != CONFIG_TRUE)
                    return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
            }
    if ((st = parse_comp(reg, c->cfg, g, "backend", BP_KIND_BACKEND, &c->backend, err)) != BP_OK) return st;
    config_setting_t *data;
    if ((st = group_of(c->cfg, root, "data",
                       "data = { train = { type = \"spatialsoundqa\"; json = \"train.json\"; }; };", 1, &data, err)) !=
        BP_OK)
        return st;
    static const char *const data_keys[] = {"train", "eval", NULL};
    if ((st = bp_sec_check_keys(c->cfg, data, "data", data_keys, err)) != BP_OK) return st;
    config_setting_t *dt = config_setting_get_member(data, "train");
    if (!dt)
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: data: missing 'train', e.g. train = { type = \"spatialsoundqa\"; "
                            "json = \"train.json\"; question_types = [\"A\"]; };",
                            bp_config_where(c->cfg, data, where, sizeof where));
    if ((st = parse_comp(reg, c->cfg, dt, "data.train", BP_KIND_DATASET, &c->data_train, err)) != BP_OK) return st;
    config_setting_t *de = config_setting_get_member(data, "eval");
    if (de) {
        if ((st = parse_comp(reg, c->cfg, de, "data.eval", BP_KIND_DATASET, &c->data_eval, err)) != BP_OK) return st;
        c->has_eval_data = 1;
    }
    if ((st = group_of(c->cfg, root, "frontend", "frontend = { type = \"melipd\"; };", 1, &g, err)) != BP_OK) return st;
    if ((st = parse_comp(reg, c->cfg, g, "frontend", BP_KIND_FRONTEND, &c->frontend, err)) != BP_OK) return st;
    if ((st = group_of(c->cfg, root, "encoder", "encoder = { type = \"spatial_ast\"; };", 1, &g, err)) != BP_OK)
        return st;
    if ((st = parse_comp(reg, c->cfg, g, "encoder", BP_KIND_ENCODER, &c->encoder, err)) != BP_OK) return st;

    /* init */
    if ((st = group_of(c->cfg, root, "init", "init = { weights = \"pretrained.safetensors\"; };", 0, &g, err)) != BP_OK)
        return st;
    if (g) {
        if ((st = bp_paramset_build(&init_desc, "init", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
        c->init_weights = bp_strdup(bp_params_string(bp_paramset_params(ps), "weights"));
        c->init_strict = (int32_t)bp_params_bool(bp_paramset_params(ps), "strict");
        bp_paramset_free(ps);
        if (!c->init_weights) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
        if (!c->init_weights[0]) { /* weights = "": no initial weights (random init) */
            free(c->init_weights);
            c->init_weights = NULL;
        }
    }

    /* frontend normalisation */
    if ((st = group_of(c->cfg, root, "normalize", "normalize = { items = 256; };", 0, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&norm_desc, "normalize", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    c->norm_items = bp_params_int(bp_paramset_params(ps), "items");
    bp_paramset_free(ps);
    if (c->norm_items > 0) {
        const bp_params *fp = bp_paramset_params(c->frontend.params);
        const bp_param_value *m = bp_params_find(fp, "bn_mean"), *v = bp_params_find(fp, "bn_var");
        const bp_param_value *w = bp_params_find(fp, "weights");
        if (!m || !v || m->type != BP_PARAM_FLOAT_LIST || v->type != BP_PARAM_FLOAT_LIST)
            return bp_error_set(err, BP_ERR_INVALID, "%s: normalize: %s has no bn_mean/bn_var parameters to set",
                                bp_config_where(c->cfg, g, where, sizeof where), c->frontend.label);
        if (m->from_config || v->from_config || (w && w->from_config && w->s && *w->s))
            return bp_error_set(err, BP_ERR_INVALID,
                                "%s: normalize.items estimates %s's bn_mean/bn_var from the data, but the config "
                                "sets them (or its weights): use one or the other",
                                bp_config_where(c->cfg, g, where, sizeof where), c->frontend.label);
    }

    /* losses, optimizer, augmentation */
    if ((st = group_of(c->cfg, root, "losses", "losses = { class = 1250.0; };", 0, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&loss_desc, "losses", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    p = bp_paramset_params(ps);
    c->w_class = bp_params_float(p, "class");
    c->w_distance = bp_params_float(p, "distance");
    c->w_direction = bp_params_float(p, "direction");
    bp_paramset_free(ps);

    if ((st = group_of(c->cfg, root, "optimizer", "optimizer = { blr = 1e-3; };", 0, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&optim_desc, "optimizer", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    p = bp_paramset_params(ps);
    c->lr = bp_params_float(p, "lr");
    c->blr = bp_params_float(p, "blr");
    c->beta1 = bp_params_float(p, "beta1");
    c->beta2 = bp_params_float(p, "beta2");
    c->eps = bp_params_float(p, "eps");
    c->weight_decay = bp_params_float(p, "weight_decay");
    c->layer_decay = bp_params_float(p, "layer_decay");
    c->min_lr = bp_params_float(p, "min_lr");
    c->warmup_steps = bp_params_int(p, "warmup_steps");
    c->warmup_epochs = bp_params_float(p, "warmup_epochs");
    bp_paramset_free(ps);
    if (c->warmup_steps > 0 && c->warmup_epochs > 0)
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: optimizer: give the warm-up as warmup_steps or warmup_epochs, "
                            "not both",
                            bp_config_where(c->cfg, g, where, sizeof where));
    if (train_cfg_peak_lr(c) < c->min_lr)
        return bp_error_set(err, BP_ERR_INVALID, "%s: optimizer: the peak learning rate %g is below min_lr %g",
                            g ? bp_config_where(c->cfg, g, where, sizeof where) : bp_config_label(c->cfg),
                            train_cfg_peak_lr(c), c->min_lr);

    if ((st = group_of(c->cfg, root, "augment", "augment = { mixup_prob = 0.5; };", 0, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&aug_desc, "augment", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    p = bp_paramset_params(ps);
    c->mask_t_prob = bp_params_float(p, "mask_t_prob");
    c->mask_f_prob = bp_params_float(p, "mask_f_prob");
    c->specaug_freq = (int32_t)bp_params_int(p, "specaug_freq");
    c->specaug_time = (int32_t)bp_params_int(p, "specaug_time");
    c->drop_path = bp_params_float(p, "drop_path");
    c->mixup_prob = bp_params_float(p, "mixup_prob");
    c->mixup_alpha = bp_params_float(p, "mixup_alpha");
    c->mixup_spatial = strcmp(bp_params_string(p, "mixup_spatial"), "dominant") == 0 ? TRAIN_MIXUP_SPATIAL_DOMINANT
                                                                                     : TRAIN_MIXUP_SPATIAL_NONE;
    bp_paramset_free(ps);

    /* curriculum */
    config_setting_t *stages = config_setting_get_member(root, "stages");
    if (!stages)
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: missing 'stages', e.g. stages = ( { name = \"stage1\"; epochs = 5.0; losses = "
                            "[\"class\"]; }, { name = \"stage2\"; epochs = 5.0; } );",
                            bp_config_label(c->cfg));
    if (config_setting_type(stages) != CONFIG_TYPE_LIST || config_setting_length(stages) < 1)
        return bp_error_set(err, BP_ERR_INVALID, "%s: stages must be a non-empty list of groups: stages = ( { ... } );",
                            bp_config_where(c->cfg, stages, where, sizeof where));
    if (config_setting_length(stages) > TRAIN_MAX_STAGES)
        return bp_error_set(err, BP_ERR_INVALID, "%s: at most %d stages",
                            bp_config_where(c->cfg, stages, where, sizeof where), TRAIN_MAX_STAGES);
    for (int i = 0; i < config_setting_length(stages); i++) {
        st = parse_stage(c->cfg, config_setting_get_elem(stages, (unsigned)i), (uint32_t)i, &c->stages[i], err);
        if (st != BP_OK) return st;
        c->n_stages = (uint32_t)i + 1;
    }

    /* outputs */
    if ((st = group_of(c->cfg, root, "checkpoint", "checkpoint = { every = 500; keep = 3; };", 0, &g, err)) != BP_OK)
        return st;
    if ((st = bp_paramset_build(&ckpt_desc, "checkpoint", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    c->ckpt_every = bp_params_int(bp_paramset_params(ps), "every");
    c->ckpt_keep = bp_params_int(bp_paramset_params(ps), "keep");
    bp_paramset_free(ps);

    if ((st = group_of(c->cfg, root, "eval", "eval = { every = 500; metrics = ( { type = \"map\"; } ); };", 0, &g,
                       err)) != BP_OK)
        return st;
    static const char *const eval_reserved[] = {"metrics", NULL};
    if ((st = bp_paramset_build(&eval_desc, "eval", c->cfg, g, eval_reserved, &ps, err)) != BP_OK) return st;
    c->eval_every = bp_params_int(bp_paramset_params(ps), "every");
    c->eval_batch = bp_params_int(bp_paramset_params(ps), "batch_size");
    c->eval_max_items = bp_params_int(bp_paramset_params(ps), "max_items");
    bp_paramset_free(ps);
    config_setting_t *metrics = g ? config_setting_get_member(g, "metrics") : NULL;
    if (metrics) {
        int t = config_setting_type(metrics);
        if (t != CONFIG_TYPE_LIST)
            return bp_error_set(err, BP_ERR_INVALID,
                                "%s: eval.metrics must be a list of groups: metrics = ( { type = \"map\"; } );",
                                bp_config_where(c->cfg, metrics, where, sizeof where));
        if (config_setting_length(metrics) > TRAIN_MAX_METRICS)
            return bp_error_set(err, BP_ERR_INVALID, "%s: at most %d metrics",
                                bp_config_where(c->cfg, metrics, where, sizeof where), TRAIN_MAX_METRICS);
        for (int i = 0; i < config_setting_length(metrics); i++) {
            char slot[48];
            snprintf(slot, sizeof slot, "eval.metrics[%d]", i);
            st = parse_comp(reg, c->cfg, config_setting_get_elem(metrics, (unsigned)i), slot, BP_KIND_METRIC,
                            &c->metrics[i], err);
            if (st != BP_OK) return st;
            c->n_metrics = (uint32_t)i + 1;
        }
        if (c->n_metrics && !c->has_eval_data)
            return bp_error_set(err, BP_ERR_INVALID, "%s: eval.metrics need an evaluation set: data.eval = { ... };",
                                bp_config_where(c->cfg, metrics, where, sizeof where));
    }

    if ((st = group_of(c->cfg, root, "log", "log = { every = 1; };", 0, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&log_desc, "log", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    c->log_every = bp_params_int(bp_paramset_params(ps), "every");
    bp_paramset_free(ps);

    if ((st = group_of(c->cfg, root, "output", "output = { dir = \"runs/mini\"; };", 1, &g, err)) != BP_OK) return st;
    if ((st = bp_paramset_build(&out_desc, "output", c->cfg, g, NULL, &ps, err)) != BP_OK) return st;
    c->out_dir = bp_strdup(bp_params_string(bp_paramset_params(ps), "dir"));
    bp_paramset_free(ps);
    if (!c->out_dir) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    return make_fingerprint(c, err);
}

bp_status train_cfg_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n, train_cfg *c,
                         bp_error *err) {
    memset(c, 0, sizeof *c);
    bp_status st = bp_config_load_file(path, &c->cfg, err);
    if (st == BP_OK) st = load(reg, c, overrides, n, err);
    if (st != BP_OK) train_cfg_free(c);
    return st;
}

void train_cfg_free(train_cfg *c) {
    if (!c) return;
    comp_free(&c->backend);
    comp_free(&c->data_train);
    comp_free(&c->data_eval);
    comp_free(&c->frontend);
    comp_free(&c->encoder);
    for (uint32_t i = 0; i < c->n_metrics; i++) comp_free(&c->metrics[i]);
    free(c->init_weights);
    free(c->out_dir);
    free(c->fingerprint_text);
    bp_config_free(c->cfg);
    memset(c, 0, sizeof *c);
}

double train_cfg_peak_lr(const train_cfg *c) {
    return c->lr > 0 ? c->lr : c->blr * (double)(c->batch_size * c->accum_steps) / 256.0;
}

static int64_t epochs_to_steps(double epochs, int64_t n_items, int64_t per_step) {
    double s = epochs * (double)n_items / (double)per_step;
    int64_t r = (int64_t)llround(s);
    return r < 1 ? 1 : r;
}

bp_status train_cfg_resolve_steps(train_cfg *c, int64_t n_train_items, bp_error *err) {
    int64_t per_step = c->batch_size * c->accum_steps;
    for (uint32_t i = 0; i < c->n_stages; i++)
        if (c->stages[i].epochs > 0) c->stages[i].steps = epochs_to_steps(c->stages[i].epochs, n_train_items, per_step);
    if (c->warmup_epochs > 0) c->warmup_steps = epochs_to_steps(c->warmup_epochs, n_train_items, per_step);
    int64_t total = train_cfg_total_steps(c);
    if (c->warmup_steps >= total)
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: optimizer: the warm-up (%lld steps) must be shorter than the run (%lld steps)",
                            bp_config_label(c->cfg), (long long)c->warmup_steps, (long long)total);
    return BP_OK;
}

int64_t train_cfg_total_steps(const train_cfg *c) {
    int64_t t = 0;
    for (uint32_t i = 0; i < c->n_stages; i++) t += c->stages[i].steps;
    return t;
}

uint32_t train_cfg_stage_of(const train_cfg *c, int64_t step) {
    int64_t end = 0;
    for (uint32_t i = 0; i < c->n_stages; i++) {
        end += c->stages[i].steps;
        if (step < end) return i;
    }
    return c->n_stages ? c->n_stages - 1 : 0;
}

bp_status train_cfg_set_frontend_norm(train_cfg *c, const double *mean, const double *var, uint32_t n, bp_error *err) {
    char kv[2][1024];
    for (int k = 0; k < 2; k++) {
        const double *v = k ? var : mean;
        size_t len = (size_t)snprintf(kv[k], sizeof kv[k], "frontend.%s=[", k ? "bn_var" : "bn_mean");
        for (uint32_t i = 0; i < n && len < sizeof kv[k]; i++)
            len += (size_t)snprintf(kv[k] + len, sizeof kv[k] - len, "%s%.9e", i ? ", " : "", v[i]);
        if (len < sizeof kv[k]) snprintf(kv[k] + len, sizeof kv[k] - len, "]");
        bp_status st = bp_config_apply_override(c->cfg, kv[k], err);
        if (st != BP_OK) return st;
    }
    config_setting_t *g = config_setting_get_member(bp_config_root(c->cfg), "frontend");
    static const char *const reserved[] = {"type", NULL};
    bp_paramset *ps = NULL;
    bp_status st = bp_paramset_build(c->frontend.comp->desc, c->frontend.label, c->cfg, g, reserved, &ps, err);
    if (st != BP_OK) return st;
    bp_paramset_free(c->frontend.params);
    c->frontend.params = ps;
    c->norm_ch = n;
    memcpy(c->norm_mean, mean, n * sizeof *mean);
    memcpy(c->norm_var, var, n * sizeof *var);
    return BP_OK;
}

bp_status train_cfg_fingerprint_add(train_cfg *c, const char *line, bp_error *err) {
    char *text = bp_strdupf("%s%s\n", c->fingerprint_text ? c->fingerprint_text : "", line);
    if (!text) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    free(c->fingerprint_text);
    c->fingerprint_text = text;
    snprintf(c->fingerprint, sizeof c->fingerprint, "%016llx", (unsigned long long)fnv1a(text));
    return BP_OK;
}
