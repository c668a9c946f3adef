/* llama plugin — loading a Hugging Face LlamaForCausalLM checkpoint:
 * config.json + model.safetensors, or shards listed in
 * model.safetensors.index.json. Names: model.embed_tokens,
 * model.layers.N.self_attn.{q,k,v,o}_proj, model.layers.N.mlp.{gate,up,
 * down}_proj, model.layers.N.{input,post_attention}_layernorm, model.norm,
 * lm_head (absent when tie_word_embeddings). HF checkpoints keep q/k rows
 * in the rotate-half order, so they use the rotate-half RoPE. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llama_model.h"

typedef struct hf_paths {
    char dir[4096];
    char config[4200];
    char single[4200]; /* a .safetensors file named directly, or "" */
} hf_paths;

static bp_status resolve_paths(const char *path, hf_paths *hp, bp_error *err) {
    struct stat sb;
    memset(hp, 0, sizeof *hp);
    if (stat(path, &sb) != 0)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: cannot open model: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(hp->dir, sizeof hp->dir, "%s", path);
    } else {
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(hp->dir, sizeof hp->dir, "%.*s", (int)(slash - path), path);
        else snprintf(hp->dir, sizeof hp->dir, ".");
        size_t n = strlen(path);
        if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) snprintf(hp->single, sizeof hp->single, "%s", path);
        else if (!(n > 5 && strcmp(path + n - 5, ".json") == 0))
            return bp_error_set(err, BP_ERR_FORMAT,
                                "%s: not a model: expected a .gguf file, a Hugging Face model directory, its "
                                "config.json or a .safetensors file next to a config.json",
                                path);
    }
    if (!hp->dir[0]) snprintf(hp->dir, sizeof hp->dir, "/");
    if (!S_ISDIR(sb.st_mode) && !hp->single[0]) snprintf(hp->config, sizeof hp->config, "%s", path);
    else snprintf(hp->config, sizeof hp->config, "%s/config.json", hp->dir);
    return BP_OK;
}

/* --- config.json ----------------------------------------------------------- */

static int json_int(json_t *root, const char *key, int32_t *dst) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) return -1;
    *dst = (int32_t)json_integer_value(v);
    return 1;
}

static int json_num(json_t *root, const char *key, double *dst) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return -1;
    *dst = json_number_value(v);
    return 1;
}

/* bos/eos ids may be an integer or a list (the first one is used). */
static int32_t json_token_id(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

static bp_status read_config(lm_model *m, const char *config_path, bp_error *err) {
    json_error_t je;
    json_t *root = json_load_file(config_path, 0, &je);
    if (!root) {
        FILE *f = fopen(config_path, "rb");
        if (!f) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: cannot open: %s", config_path, strerror(errno));
        fclose(f);
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%d: %s", config_path, je.line, je.text);
    }
    bp_status st = BP_OK;
    lm_hparams *h = &m->hp;
    if (!json_is_object(root)) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: not a JSON object", config_path);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (json_is_string(mt) && strcmp(json_string_value(mt), "llama") != 0) {
        st = bp_error_set(err, BP_ERR_UNSUPPORTED,
                          "%s: model_type '%s' is not supported by the llama plugin (expected \"llama\")",
                          config_path, json_string_value(mt));
        goto done;
    }
    struct {
        const char *key;
        int32_t *dst;
        int required;
    } ints[] = {
        {"hidden_size", &h->n_embd, 1},
        {"num_hidden_layers", &h->n_layer, 1},
        {"num_attention_heads", &h->n_head, 1},
        {"num_key_value_heads", &h->n_head_kv, 0},
        {"intermediate_size", &h->n_ff, 1},
        {"vocab_size", &h->n_vocab, 1},
        {"max_position_embeddings", &h->n_ctx_train, 0},
        {"head_dim", &h->head_dim, 0},
    };
    h->n_ctx_train = 2048;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int r = json_int(root, ints[i].key, ints[i].dst);
        if (r < 0 || (r == 0 && ints[i].required)) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: '%s' is %s", config_path, ints[i].key,
                              r < 0 ? "not a non-negative integer" : "missing");
            goto done;
        }
    }
    if (h->n_head_kv == 0) h->n_head_kv = h->n_head;
    if (h->head_dim == 0 && h->n_head > 0) h->head_dim = h->n_embd / h->n_head;
    double eps = 1e-6, theta = 10000.0; /* LlamaConfig defaults */
    if (json_num(root, "rms_norm_eps", &eps) < 0 || json_num(root, "rope_theta", &theta) < 0) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: rms_norm_eps and rope_theta must be numbers", config_path);
        goto done;
    }
    h->rms_eps = (float)eps;
    h->rope_theta = theta;
    json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: rope_scaling is not supported (only null)", config_path);
        goto done;
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0) {
        st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (only silu)", config_path,
                          json_string_value(act));
        goto done;
    }
    json_t *bias = json_object_get(root, "attention_bias");
    json_t *mbias = json_object_get(root, "mlp_bias");
    if (json_is_true(bias) || json_is_true(mbias)) {
        st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: attention_bias/mlp_bias = true is not supported", config_path);
        goto done;
    }
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    h->tied_output = json_is_true(tie) ? 1 : 0;
    h->bos_id = json_token_id(root, "bos_token_id");
    h->eos_id = json_token_id(root, "eos_token_id");
    if (h->bos_id >= h->n_vocab) h->bos_id = -1;
    if (h->eos_id >= h->n_vocab) h->eos_id = -1;
    h->rope_layout = LM_ROPE_HALF;
    st = lm_hparams_check(m, err);
done:
    json_decref(root);
    return st;
}

/* --- shards ---------------------------------------------------------------- */

static bp_status add_shard(lm_model *m, const char *path, bp_error *err) {
    for (int32_t i = 0; i < m->n_st; i++)
        if (strcmp(bp_st_path(m->st[i]), path) == 0) return BP_OK;
    bp_st_file **grown = realloc(m->st, (size_t)(m->n_st + 1) * sizeof *grown);
    if (!grown) return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    m->st = grown;
    bp_status st = bp_st_open(path, &m->st[m->n_st], err);
    if (st != BP_OK) return st;
    m->n_st++;
    return BP_OK;
}

static bp_status open_shards(lm_model *m, const hf_paths *hp, bp_error *err) {
    if (hp->single[0]) return add_shard(m, hp->single, err);
    char path[4400];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", hp->dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(path, sizeof path, "%s/model.safetensors", hp->dir);
        if (stat(path, &sb) != 0)
            return bp_error_set(err, BP_ERR_NOT_FOUND,
                                "%s: no model.safetensors or model.safetensors.index.json next to config.json",
                                hp->dir);
        return add_shard(m, path, err);
    }
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return bp_error_set(err, BP_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    bp_status st = BP_OK;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: missing object 'weight_map'", path);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(map, key, v) {
            const char *file = json_string_value(v);
            if (!file || strchr(file, '/') || !file[0]) {
                st = bp_error_set(err, BP_ERR_FORMAT, "%s: weight_map['%s'] is not a file name", path, key);
                break;
            }
            char shard[4400];
            snprintf(shard, sizeof shard, "%s/%s", hp->dir, file);
            if ((st = add_shard(m, shard, err)) != BP_OK) break;
        }
        if (st == BP_OK && m->n_st == 0) st = bp_error_set(err, BP_ERR_FORMAT, "%s: empty weight_map", path);
    }
    json_decref(root);
    return st;
}

/* Find a tensor in any shard. */
static int find(const lm_model *m, const char *name, bp_tensor *t, lm_problems *p) {
    for (int32_t i = 0; i < m->n_st; i++) {
        bp_error e = BP_ERROR_INIT;
        bp_status st = bp_st_get(m->st[i], name, t, &e);
        if (st == BP_OK) return 1;
        if (st != BP_ERR_NOT_FOUND) {
            lm_problem_add(p, st, "%s", e.msg);
            return 0;
        }
    }
    lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' is missing", name);
    return 0;
}

static void bind_mat(lm_model *m, lm_mat *dst, const char *name, int64_t rows, int64_t cols, lm_problems *p) {
    bp_tensor t;
    if (find(m, name, &t, p) && lm_bind_mat(dst, &t, name, rows, cols, p))
        m->weight_bytes += dst->row_bytes * (size_t)rows;
}

static void bind_norm(lm_model *m, const float *dst, const char *name, lm_problems *p) {
    bp_tensor t;
    if (find(m, name, &t, p)) lm_bind_norm((float *)dst, &t, name, m->hp.n_embd, p);
}

/* Tensors of layers the config does not have mean config and weights disagree. */
static void check_extra_layers(const lm_model *m, lm_problems *p) {
    for (int32_t i = 0; i < m->n_st; i++) {
        uint32_t n = bp_st_count(m->st[i]);
        for (uint32_t j = 0; j < n; j++) {
            const char *name = bp_st_name(m->st[i], j);
            int layer = -1;
            if (sscanf(name, "model.layers.%d.", &layer) == 1 && layer >= m->hp.n_layer)
                lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' is beyond num_hidden_layers = %d", name,
                               m->hp.n_layer);
        }
    }
}

static bp_status bind_weights(lm_model *m, bp_error *err) {
    const lm_hparams *h = &m->hp;
    const int64_t E = h->n_embd, Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim;
    lm_problems p = {{0}, 0, 0};
    char name[128];
    bind_mat(m, &m->tok_embd, "model.embed_tokens.weight", h->n_vocab, E, &p);
    bind_norm(m, m->output_norm, "model.norm.weight", &p);
    if (h->tied_output) m->output = m->tok_embd;
    else bind_mat(m, &m->output, "lm_head.weight", h->n_vocab, E, &p);
    for (int32_t l = 0; l < h->n_layer; l++) {
        lm_layer *L = &m->layers[l];
        struct {
            const char *suffix;
            lm_mat *mat;
            int64_t rows, cols;
        } mats[] = {
            {"self_attn.q_proj", &L->wq, Q, E},        {"self_attn.k_proj", &L->wk, KV, E},
            {"self_attn.v_proj", &L->wv, KV, E},       {"self_attn.o_proj", &L->wo, E, Q},
            {"mlp.gate_proj", &L->wgate, h->n_ff, E},  {"mlp.up_proj", &L->wup, h->n_ff, E},
            {"mlp.down_proj", &L->wdown, E, h->n_ff},
        };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, mats[i].suffix);
            bind_mat(m, mats[i].mat, name, mats[i].rows, mats[i].cols, &p);
        }
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        bind_norm(m, L->attn_norm, name, &p);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        bind_norm(m, L->ffn_norm, name, &p);
    }
    check_extra_layers(m, &p);
    if (m->n_st == 1) return lm_problems_report(&p, bp_st_path(m->st[0]), err);
    return lm_problems_report(&p, m->label, err);
}

/* --- tokenizer ------------------------------------------------------------- */

static bp_status load_tokenizer(lm_model *m, const hf_paths *hp, bp_error *err) {
    char tj[4400], tc[4400];
    struct stat sb;
    snprintf(tj, sizeof tj, "%s/tokenizer.json", hp->dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", hp->dir);
    if (stat(tj, &sb) != 0) return BP_OK; /* no tokenizer: token ids and embeddings only */
    bp_status st = tokenizer_from_hf_json(tj, stat(tc, &sb) == 0 ? tc : NULL, &m->tok, err);
    if (st != BP_OK) return st;
    if (tokenizer_n_vocab(m->tok) > m->hp.n_vocab)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: the tokenizer has %d tokens but vocab_size is %d", tj,
                            tokenizer_n_vocab(m->tok), m->hp.n_vocab);
    if (tokenizer_bos(m->tok) >= 0) m->hp.bos_id = tokenizer_bos(m->tok);
    if (tokenizer_eos(m->tok) >= 0) m->hp.eos_id = tokenizer_eos(m->tok);
    return BP_OK;
}

bp_status lm_model_load_hf(const char *path, lm_model **out, bp_error *err) {
    *out = NULL;
    hf_paths hp;
    bp_status st = resolve_paths(path, &hp, err);
    if (st != BP_OK) return st;
    lm_model *m = NULL;
    if ((st = lm_model_new(path, "safetensors", &m, err)) != BP_OK) return st;
    if ((st = read_config(m, hp.config, err)) != BP_OK) goto fail;
    if ((st = open_shards(m, &hp, err)) != BP_OK) goto fail;
    if ((st = lm_model_alloc_layers(m, err)) != BP_OK) goto fail;
    if ((st = bind_weights(m, err)) != BP_OK) goto fail;
    if ((st = load_tokenizer(m, &hp, err)) != BP_OK) goto fail;
    *out = m;
    return BP_OK;
fail:
    lm_model_free(m);
    return st;
}
