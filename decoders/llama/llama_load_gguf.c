/* llama plugin — loading a GGUF file written by llama.cpp's converter.
 *
 * Metadata: general.architecture = "llama" and the llama.* keys; tensors:
 * token_embd, output_norm, output (absent = tied to token_embd) and
 * blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_up, ffn_down}.weight. The converter permutes q/k rows into
 * Meta's interleaved-pairs order, so GGUF models use the interleaved RoPE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama_model.h"

static bp_status get_i32(const bp_gguf *g, const lm_model *m, const char *key, int32_t *dst, int required,
                         bp_error *err) {
    int64_t v = 0;
    bp_error e = BP_ERROR_INIT;
    bp_status st = bp_gguf_get_int(g, key, &v, &e);
    if (st == BP_ERR_NOT_FOUND && !required) return BP_OK;
    if (st == BP_ERR_NOT_FOUND)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: missing metadata key '%s'", m->label, key);
    if (st != BP_OK) return bp_error_set(err, BP_ERR_FORMAT, "%s", e.msg);
    if (v < 0 || v > INT32_MAX)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range", m->label, key,
                            (long long)v);
    *dst = (int32_t)v;
    return BP_OK;
}

static bp_status get_f64(const bp_gguf *g, const lm_model *m, const char *key, double *dst, int required,
                         bp_error *err) {
    double v = 0;
    bp_error e = BP_ERROR_INIT;
    bp_status st = bp_gguf_get_float(g, key, &v, &e);
    if (st == BP_ERR_NOT_FOUND && !required) return BP_OK;
    if (st == BP_ERR_NOT_FOUND)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: missing metadata key '%s'", m->label, key);
    if (st != BP_OK) return bp_error_set(err, BP_ERR_FORMAT, "%s", e.msg);
    *dst = v;
    return BP_OK;
}

static bp_status read_hparams(lm_model *m, bp_error *err) {
    const bp_gguf *g = m->gguf;
    lm_hparams *h = &m->hp;
    const char *arch = NULL;
    bp_error e = BP_ERROR_INIT;
    bp_status st = bp_gguf_get_string(g, "general.architecture", &arch, NULL, &e);
    if (st == BP_ERR_NOT_FOUND)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: missing metadata key 'general.architecture'", m->label);
    if (st != BP_OK) return bp_error_set(err, BP_ERR_FORMAT, "%s", e.msg);
    if (strcmp(arch, "llama") != 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: architecture '%s' is not supported by the llama plugin (general.architecture "
                            "must be \"llama\")",
                            m->label, arch);

    h->head_dim = 0;
    h->n_head_kv = 0;
    double eps = 0.0, theta = 10000.0;
    if ((st = get_i32(g, m, "llama.context_length", &h->n_ctx_train, 1, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.embedding_length", &h->n_embd, 1, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.block_count", &h->n_layer, 1, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.feed_forward_length", &h->n_ff, 1, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.attention.head_count", &h->n_head, 1, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.attention.head_count_kv", &h->n_head_kv, 0, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.attention.key_length", &h->head_dim, 0, err)) != BP_OK ||
        (st = get_f64(g, m, "llama.attention.layer_norm_rms_epsilon", &eps, 1, err)) != BP_OK ||
        (st = get_f64(g, m, "llama.rope.freq_base", &theta, 0, err)) != BP_OK)
        return st;
    if (h->n_head_kv == 0) h->n_head_kv = h->n_head;
    if (h->head_dim == 0 && h->n_head > 0) h->head_dim = h->n_embd / h->n_head;
    int32_t vlen = h->head_dim, rope_dims = h->head_dim;
    if ((st = get_i32(g, m, "llama.attention.value_length", &vlen, 0, err)) != BP_OK ||
        (st = get_i32(g, m, "llama.rope.dimension_count", &rope_dims, 0, err)) != BP_OK)
        return st;
    if (vlen != h->head_dim)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: key length %d differs from value length %d", m->label,
                            h->head_dim, vlen);
    if (rope_dims != h->head_dim)
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: partial rotary embeddings (llama.rope.dimension_count %d of head dimension %d) "
                            "are not supported",
                            m->label, rope_dims, h->head_dim);
    const char *scaling = NULL;
    if (bp_gguf_get_string(g, "llama.rope.scaling.type", &scaling, NULL, &e) == BP_OK && strcmp(scaling, "none") != 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: RoPE scaling '%s' is not supported", m->label, scaling);
    if (bp_gguf_find_tensor(g, "rope_freqs.weight") >= 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: tensor 'rope_freqs.weight' (LLaMA-3.1 RoPE frequency scaling) is not supported",
                            m->label);
    h->rms_eps = (float)eps;
    h->rope_theta = theta;
    h->rope_layout = LM_ROPE_INTERLEAVED;

    /* vocabulary size: the tokenizer's list, else llama.vocab_size, else the embedding rows */
    uint64_t count = 0;
    int32_t type = 0;
    if (bp_gguf_get_array_info(g, "tokenizer.ggml.tokens", &type, &count, &e) == BP_OK) {
        if (count > INT32_MAX) return bp_error_set(err, BP_ERR_FORMAT, "%s: too many tokens", m->label);
        h->n_vocab = (int32_t)count;
    } else if ((st = get_i32(g, m, "llama.vocab_size", &h->n_vocab, 0, err)) != BP_OK) {
        return st;
    }
    if (h->n_vocab == 0) {
        int64_t ti = bp_gguf_find_tensor(g, "token_embd.weight");
        const bp_gguf_tensor_info *info = ti >= 0 ? bp_gguf_tensor_info_at(g, ti) : NULL;
        if (info && info->n_dims == 2 && info->ne[1] <= INT32_MAX) h->n_vocab = (int32_t)info->ne[1];
    }
    int64_t id = -1;
    if (bp_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &id, &e) == BP_OK && id >= 0 && id < h->n_vocab)
        h->bos_id = (int32_t)id;
    if (bp_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id, &e) == BP_OK && id >= 0 && id < h->n_vocab)
        h->eos_id = (int32_t)id;
    return lm_hparams_check(m, err);
}

/* Fetch a tensor view; a missing or unreadable tensor is recorded. */
static int fetch(const lm_model *m, const char *name, bp_tensor *t, lm_problems *p) {
    bp_error e = BP_ERROR_INIT;
    bp_status st = bp_gguf_tensor(m->gguf, name, t, &e);
    if (st == BP_OK) return 1;
    if (st == BP_ERR_NOT_FOUND) {
        lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' is missing", name);
    } else if (st == BP_ERR_UNSUPPORTED) {
        const bp_gguf_tensor_info *info = bp_gguf_tensor_info_at(m->gguf, bp_gguf_find_tensor(m->gguf, name));
        const int32_t type = info ? info->ggml_type : -1;
        lm_problem_add(p, st, "tensor '%s' has type %s (%d), supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1", name,
                       bp_gguf_ggml_type_name(type), type);
    } else {
        /* the reader's message starts with the file name; keep what follows it */
        const char *msg = e.msg;
        if (strncmp(msg, m->path, strlen(m->path)) == 0) msg += strlen(m->path);
        if (msg[0] == ':' && msg[1] == ' ') msg += 2;
        lm_problem_add(p, st, "%s", msg);
    }
    return 0;
}

static void bind_mat(lm_model *m, lm_mat *dst, const char *name, int64_t rows, int64_t cols, lm_problems *p) {
    bp_tensor t;
    if (fetch(m, name, &t, p) && lm_bind_mat(dst, &t, name, rows, cols, p))
        m->weight_bytes += dst->row_bytes * (size_t)rows;
}

static void bind_norm(lm_model *m, const float *dst, const char *name, lm_problems *p) {
    bp_tensor t;
    if (fetch(m, name, &t, p)) lm_bind_norm((float *)dst, &t, name, m->hp.n_embd, p);
}

static bp_status bind_weights(lm_model *m, bp_error *err) {
    const lm_hparams *h = &m->hp;
    const int64_t E = h->n_embd, Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim;
    lm_problems p = {{0}, 0, 0};
    char name[96];
    bind_mat(m, &m->tok_embd, "token_embd.weight", h->n_vocab, E, &p);
    bind_norm(m, m->output_norm, "output_norm.weight", &p);
    if (bp_gguf_find_tensor(m->gguf, "output.weight") >= 0) {
        bind_mat(m, &m->output, "output.weight", h->n_vocab, E, &p);
    } else {
        m->hp.tied_output = 1;
        m->output = m->tok_embd;
    }
    for (int32_t l = 0; l < h->n_layer && p.count < 12; l++) {
        lm_layer *L = &m->layers[l];
        struct {
            const char *suffix;
            lm_mat *mat;
            int64_t rows, cols;
        } mats[] = {
            {"attn_q", &L->wq, Q, E},        {"attn_k", &L->wk, KV, E},     {"attn_v", &L->wv, KV, E},
            {"attn_output", &L->wo, E, Q},   {"ffn_gate", &L->wgate, h->n_ff, E},
            {"ffn_up", &L->wup, h->n_ff, E}, {"ffn_down", &L->wdown, E, h->n_ff},
        };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[i].suffix);
            bind_mat(m, mats[i].mat, name, mats[i].rows, mats[i].cols, &p);
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        bind_norm(m, L->attn_norm, name, &p);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        bind_norm(m, L->ffn_norm, name, &p);
    }
    /* a block beyond block_count means the metadata and the tensors disagree */
    snprintf(name, sizeof name, "blk.%d.attn_q.weight", h->n_layer);
    if (bp_gguf_find_tensor(m->gguf, name) >= 0)
        lm_problem_add(&p, BP_ERR_FORMAT, "tensor '%s' is beyond llama.block_count = %d", name, h->n_layer);
    return lm_problems_report(&p, m->label, err);
}

bp_status lm_model_load_gguf(const char *path, lm_model **out, bp_error *err) {
    *out = NULL;
    lm_model *m = NULL;
    bp_status st = lm_model_new(path, "gguf", &m, err);
    if (st != BP_OK) return st;
    if ((st = bp_gguf_open(path, &m->gguf, err)) != BP_OK) goto fail;
    if ((st = read_hparams(m, err)) != BP_OK) goto fail;
    if ((st = lm_model_alloc_layers(m, err)) != BP_OK) goto fail;
    if ((st = bind_weights(m, err)) != BP_OK) goto fail;
    if ((st = tokenizer_from_gguf(m->gguf, &m->tok, err)) != BP_OK) goto fail;
    if (tokenizer_n_vocab(m->tok) != m->hp.n_vocab) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: the tokenizer has %d tokens but token_embd has %d rows", m->label,
                          tokenizer_n_vocab(m->tok), m->hp.n_vocab);
        goto fail;
    }
    m->hp.bos_id = tokenizer_bos(m->tok);
    m->hp.eos_id = tokenizer_eos(m->tok);
    *out = m;
    return BP_OK;
fail:
    lm_model_free(m);
    return st;
}
