/* batpipe — LLM configs (`batpipe ask`): schema, validation, creation. */
#include "batpipe/llm_config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/gguf.h"
#include "pipeline_internal.h"

static const bp_param_spec gen_params[] = {
    {sizeof(bp_param_spec), "template", BP_PARAM_STRING, "\"chat\"", BP_NO_RANGE, "chat|bat|none",
     "prompt format: the model's chat template, the BAT paper's instruction prompt, or the raw text"},
    {sizeof(bp_param_spec), "system", BP_PARAM_STRING, "\"\"", BP_NO_RANGE, NULL,
     "system message for the chat template (\"\" = the template's default)"},
    {sizeof(bp_param_spec), "max_tokens", BP_PARAM_INT, "256", 0, 1e9, NULL,
     "new tokens at most (0 = until the context is full)"},
    {sizeof(bp_param_spec), "temperature", BP_PARAM_FLOAT, "0.0", 0, 100, NULL, "0 = greedy; > 0 samples"},
    {sizeof(bp_param_spec), "top_k", BP_PARAM_INT, "40", 0, 1e9, NULL, "sample from the k most likely (0 = all)"},
    {sizeof(bp_param_spec), "top_p", BP_PARAM_FLOAT, "0.95", 0, 1, NULL,
     "sample from the smallest set with this probability (1 = all)"},
    {sizeof(bp_param_spec), "seed", BP_PARAM_INT, "0", 0, 9007199254740992.0, NULL, "sampling seed"},
    {sizeof(bp_param_spec), "stop", BP_PARAM_STRING_LIST, "[]", BP_NO_RANGE, NULL,
     "stop strings (not part of the answer)"},
    {sizeof(bp_param_spec), "n_batch", BP_PARAM_INT, "512", 1, 1e6, NULL, "prompt tokens per prefill batch"},
    {sizeof(bp_param_spec), "add_bos", BP_PARAM_STRING, "\"auto\"", BP_NO_RANGE, "auto|true|false",
     "prepend BOS to the prompt (auto: the model's own setting)"},
};

static const bp_descriptor gen_desc = {sizeof(bp_descriptor), "generate", "1.0.0",
                                       "text generation settings of an LLM config", NULL, gen_params,
                                       sizeof gen_params / sizeof gen_params[0]};

const bp_descriptor *bp_llm_config_generate_descriptor(void) { return &gen_desc; }

struct bp_llm_config {
    bp_registry *reg;
    bp_config *cfg;
    const bp_component_info *comp;
    bp_paramset *llm_params;
    bp_paramset *gen;
    char label[128];
    int32_t add_bos; /* resolved */
};

static const char *const top_keys[] = {"name", "description", "threads", "llm", "generate", NULL};

/* add_bos = "auto": the model file's own setting. */
static int32_t model_add_bos(const bp_params *lp) {
    const char *model = bp_params_string(lp, "model");
    size_t n = model ? strlen(model) : 0;
    if (n > 5 && strcmp(model + n - 5, ".gguf") == 0) {
        bp_gguf *g = NULL;
        bp_error e = BP_ERROR_INIT;
        if (bp_gguf_open(model, &g, &e) != BP_OK) return 0; /* the plugin reports the file's problem */
        int32_t v = 0;
        const char *kind = NULL;
        if (bp_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v, &e) != BP_OK)
            v = bp_gguf_get_string(g, "tokenizer.ggml.model", &kind, NULL, &e) == BP_OK && strcmp(kind, "llama") == 0;
        bp_gguf_close(g);
        return v;
    }
    if (!model || !*model) return 0;
    char *path = bp_strdupf("%s/tokenizer_config.json", model);
    json_t *j = path ? json_load_file(path, 0, NULL) : NULL;
    int32_t v = j && json_is_true(json_object_get(j, "add_bos_token"));
    json_decref(j);
    free(path);
    return v;
}

static bp_status load(bp_llm_config *c, const char *const *overrides, uint32_t n, bp_error *err) {
    bp_status st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = bp_config_apply_override(c->cfg, overrides[i], err)) != BP_OK) return st;
    config_setting_t *root = bp_config_root(c->cfg);
    if ((st = bp_sec_check_keys(c->cfg, root, "llm config", top_keys, err)) != BP_OK) return st;
    const char *dummy;
    if ((st = bp_sec_string(c->cfg, root, "llm config", "name", "", NULL, &dummy, err)) != BP_OK) return st;
    if ((st = bp_sec_string(c->cfg, root, "llm config", "description", "", NULL, &dummy, err)) != BP_OK) return st;
    char where[600];
    int32_t threads = 0;
    const config_setting_t *th = config_setting_get_member(root, "threads");
    if (th) {
        int t = config_setting_type(th);
        if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || config_setting_get_int64(th) < 0 ||
            config_setting_get_int64(th) > 4096)
            return bp_error_set(err, BP_ERR_INVALID, "%s: threads must be an integer in [0, 4096] (0 = all cores)",
                                bp_config_where(c->cfg, th, where, sizeof where));
        threads = (int32_t)config_setting_get_int64(th);
    }
    bp_registry_set_threads(c->reg, threads);
    config_setting_t *llm = config_setting_get_member(root, "llm");
    if (!llm || !config_setting_is_group(llm))
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: missing 'llm' group, e.g. llm = { type = \"llama\"; model = \"model.gguf\"; };",
                            llm ? bp_config_where(c->cfg, llm, where, sizeof where) : bp_config_label(c->cfg));
    const char *type;
    if ((st = bp_sec_string(c->cfg, llm, "llm", "type", NULL, NULL, &type, err)) != BP_OK) return st;
    c->comp = bp_registry_find(c->reg, BP_KIND_LLM, type);
    if (!c->comp) {
        char choices[512];
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: llm: unknown llm plugin '%s'; installed: %s",
                            bp_config_where(c->cfg, config_setting_get_member(llm, "type"), where, sizeof where), type,
                            bp_registry_choices(c->reg, BP_KIND_LLM, choices, sizeof choices));
    }
    snprintf(c->label, sizeof c->label, "llm (%s)", c->comp->desc->name);
    static const char *const reserved[] = {"type", NULL};
    if ((st = bp_paramset_build(c->comp->desc, c->label, c->cfg, llm, reserved, &c->llm_params, err)) != BP_OK)
        return st;
    config_setting_t *gen = config_setting_get_member(root, "generate");
    if (gen && !config_setting_is_group(gen))
        return bp_error_set(err, BP_ERR_INVALID, "%s: generate must be a group: generate = { max_tokens = 256; };",
                            bp_config_where(c->cfg, gen, where, sizeof where));
    if ((st = bp_paramset_build(&gen_desc, "generate", c->cfg, gen, NULL, &c->gen, err)) != BP_OK) return st;
    const char *ab = bp_params_string(bp_paramset_params(c->gen), "add_bos");
    c->add_bos = strcmp(ab, "true") == 0    ? 1
                 : strcmp(ab, "false") == 0 ? 0
                                            : model_add_bos(bp_paramset_params(c->llm_params));
    return BP_OK;
}

bp_status bp_llm_config_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                             bp_llm_config **out, bp_error *err) {
    *out = NULL;
    if (!reg || !path) return bp_error_set(err, BP_ERR_INVALID, "llm config: NULL registry or path");
    bp_llm_config *c = calloc(1, sizeof *c);
    if (!c) return bp_error_set(err, BP_ERR_NOMEM, "llm config: out of memory");
    c->reg = reg;
    bp_status st = bp_config_load_file(path, &c->cfg, err);
    if (st == BP_OK) st = load(c, overrides, n, err);
    if (st != BP_OK) {
        bp_llm_config_free(c);
        return st;
    }
    *out = c;
    return BP_OK;
}

void bp_llm_config_free(bp_llm_config *c) {
    if (!c) return;
    bp_paramset_free(c->llm_params);
    bp_paramset_free(c->gen);
    bp_config_free(c->cfg);
    free(c);
}

bp_status bp_llm_config_create(bp_llm_config *c, bp_llm **out, bp_error *err) {
    *out = NULL;
    void *inst = NULL;
    bp_status st = bp_registry_create(c->reg, c->comp, bp_paramset_params(c->llm_params), NULL, &inst, err);
    if (st != BP_OK) return st;
    bp_llm *llm = inst;
    if (!llm || llm->struct_size < offsetof(bp_llm, destroy) + sizeof(void *) || !llm->info || !llm->tokenize ||
        !llm->token_piece || !llm->eval || !llm->destroy) {
        if (llm && llm->struct_size >= offsetof(bp_llm, destroy) + sizeof(void *) && llm->destroy) llm->destroy(llm);
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", c->label, c->comp->plugin->path);
    }
    *out = llm;
    return BP_OK;
}

void bp_llm_config_generate_params(const bp_llm_config *c, bp_generate_params *out) {
    const bp_params *g = bp_paramset_params(c->gen);
    bp_generate_params_init(out);
    out->max_tokens = (int32_t)bp_params_int(g, "max_tokens");
    out->temperature = (float)bp_params_float(g, "temperature");
    out->top_k = (int32_t)bp_params_int(g, "top_k");
    out->top_p = (float)bp_params_float(g, "top_p");
    out->seed = (uint64_t)bp_params_int(g, "seed");
    out->n_batch = (int32_t)bp_params_int(g, "n_batch");
    const bp_param_value *stop = bp_params_find(g, "stop");
    out->stop_strings = stop ? stop->strs : NULL;
    out->n_stop_strings = stop ? (int32_t)stop->count : 0;
}

const char *bp_llm_config_template(const bp_llm_config *c) {
    return bp_params_string(bp_paramset_params(c->gen), "template");
}

const char *bp_llm_config_system(const bp_llm_config *c) {
    const char *s = bp_params_string(bp_paramset_params(c->gen), "system");
    return s && *s ? s : NULL;
}

int32_t bp_llm_config_add_bos(const bp_llm_config *c) { return c->add_bos; }
const char *bp_llm_config_plugin(const bp_llm_config *c) { return c->comp->desc->name; }
const char *bp_llm_config_path(const bp_llm_config *c) { return bp_config_label(c->cfg); }
