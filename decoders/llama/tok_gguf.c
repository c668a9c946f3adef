/* llama plugin — a tokenizer from GGUF metadata (tokenizer.ggml.*). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* Keys whose absence falls back to a default; BP_ERR_NOT_FOUND is not an
 * error for them. */
static bp_status opt_int(const bp_gguf *g, const char *key, int32_t *out, bp_error *err) {
    int64_t v;
    bp_status st = bp_gguf_get_int(g, key, &v, err);
    if (st == BP_ERR_NOT_FOUND) return BP_OK;
    if (st != BP_OK) return st;
    if (v < -1 || v > INT32_MAX)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: %s = %lld is out of range", bp_gguf_path(g), key, (long long)v);
    *out = (int32_t)v;
    return BP_OK;
}

static bp_status opt_bool(const bp_gguf *g, const char *key, int32_t *out, bp_error *err) {
    bp_status st = bp_gguf_get_bool(g, key, out, err);
    return st == BP_ERR_NOT_FOUND ? BP_OK : st;
}

/* A required array of `count` elements (count 0: any length, set *count). */
static bp_status get_array(const bp_gguf *g, const char *key, int want_string, int64_t *index, uint64_t *count,
                           const char *why, bp_error *err) {
    const char *path = bp_gguf_path(g);
    int32_t type;
    uint64_t n;
    *index = bp_gguf_find_key(g, key);
    if (*index < 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: missing tokenizer metadata '%s' (%s)", path, key, why);
    bp_status st = bp_gguf_get_array_info(g, key, &type, &n, err);
    if (st != BP_OK) return bp_error_set(err, BP_ERR_FORMAT, "%s: tokenizer metadata '%s' is not an array", path, key);
    if (want_string && type != BP_GGUF_TYPE_STRING)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: '%s' is an array of %s, expected strings", path, key,
                            bp_gguf_type_name(type));
    if (*count && n != *count)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: '%s' has %llu entries, the vocabulary has %llu", path, key,
                            (unsigned long long)n, (unsigned long long)*count);
    *count = n;
    return BP_OK;
}

static bp_status load_vocab(const bp_gguf *g, tokenizer **out, tokenizer_kind kind, bp_error *err) {
    const char *path = bp_gguf_path(g);
    int64_t ti;
    uint64_t n = 0;
    bp_status st = get_array(g, "tokenizer.ggml.tokens", 1, &ti, &n, "the vocabulary", err);
    if (st != BP_OK) return st;
    if (n == 0 || n > INT32_MAX)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: 'tokenizer.ggml.tokens' has %llu entries", path,
                            (unsigned long long)n);
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++) bytes += strlen(bp_gguf_array_string(g, ti, i));
    st = tok_alloc(out, kind, (int32_t)n, bytes, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "%s: ", path);
        return st;
    }
    tokenizer *t = *out;
    size_t used = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = bp_gguf_array_string(g, ti, i);
        tok_set_text(t, (int32_t)i, s, strlen(s), &used);
    }
    int64_t yi = bp_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (yi >= 0) {
        uint64_t cnt = n;
        st = get_array(g, "tokenizer.ggml.token_type", 0, &yi, &cnt, "token types", err);
        for (uint64_t i = 0; st == BP_OK && i < n; i++) {
            int64_t v;
            st = bp_gguf_array_int(g, yi, i, &v, err);
            if (st == BP_OK && (v < TOKEN_TYPE_NORMAL || v > TOKEN_TYPE_BYTE))
                st = bp_error_set(err, BP_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] = %lld is not a token type",
                                  path, (unsigned long long)i, (long long)v);
            if (st == BP_OK) t->types[i] = (int32_t)v;
        }
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

static bp_status load_merges(const bp_gguf *g, tokenizer *t, bp_error *err) {
    const char *path = bp_gguf_path(g);
    int64_t mi;
    uint64_t n = 0;
    bp_status st = get_array(g, "tokenizer.ggml.merges", 1, &mi, &n, "BPE merges of a gpt2 tokenizer", err);
    if (st == BP_OK) st = tok_pairmap_init(&t->merges, (size_t)n, err);
    for (uint64_t i = 0; st == BP_OK && i < n; i++) {
        const char *m = bp_gguf_array_string(g, mi, i);
        /* "left right": split at the first space after the first character
         * (the byte-level alphabet has no spaces, so there is exactly one) */
        const char *sp = m[0] ? strchr(m + 1, ' ') : NULL;
        if (!sp)
            return bp_error_set(err, BP_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] \"%s\" is not \"left right\"",
                                path, (unsigned long long)i, m);
        size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
        int32_t l = tok_lookup(t, m, ll), r = tok_lookup(t, sp + 1, rl);
        char small[256];
        char *cat = ll + rl <= sizeof small ? small : malloc(ll + rl);
        if (!cat) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory reading merges", path);
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        int32_t merged = tok_lookup(t, cat, ll + rl);
        if (cat != small) free(cat);
        /* merges whose parts or result are not tokens can never apply */
        if (l >= 0 && r >= 0 && merged >= 0) tok_pairmap_put(&t->merges, l, r, (int32_t)i, merged);
    }
    return st;
}

static bp_status load_scores(const bp_gguf *g, tokenizer *t, bp_error *err) {
    int64_t si;
    uint64_t n = (uint64_t)t->n_vocab;
    bp_status st = get_array(g, "tokenizer.ggml.scores", 0, &si, &n, "merge scores of a llama tokenizer", err);
    if (st != BP_OK) return st;
    t->scores = malloc((size_t)n * sizeof *t->scores);
    if (!t->scores) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for scores", bp_gguf_path(g));
    return bp_gguf_array_floats(g, si, 0, n, t->scores, err);
}

/* Pre-tokenizers (tokenizer.ggml.pre) whose pattern is GPT-2's with every
 * digit split off first. */
static const char *const digit_pre[] = {"smollm", "starcoder", "refact", "codeshell", "exaone", "minerva", "command-r"};

static bp_status set_pre(const bp_gguf *g, tokenizer *t, bp_error *err) {
    const char *pre = NULL;
    bp_status st = bp_gguf_get_string(g, "tokenizer.ggml.pre", &pre, NULL, err);
    if (st == BP_ERR_NOT_FOUND) return BP_OK; /* absent: the plain GPT-2 pattern */
    if (st != BP_OK) return st;
    if (strcmp(pre, "gpt-2") == 0 || strcmp(pre, "gpt2") == 0) return BP_OK;
    for (size_t i = 0; i < sizeof digit_pre / sizeof digit_pre[0]; i++)
        if (strcmp(pre, digit_pre[i]) == 0) {
            t->isolate_digits = 1;
            return BP_OK;
        }
    return bp_error_set(err, BP_ERR_UNSUPPORTED,
                        "%s: pre-tokenizer tokenizer.ggml.pre = \"%s\" is not supported (supported: gpt-2, smollm, "
                        "starcoder, refact, codeshell, exaone, minerva, command-r)",
                        bp_gguf_path(g), pre);
}

bp_status tokenizer_from_gguf(const bp_gguf *g, tokenizer **out, bp_error *err) {
    *out = NULL;
    const char *path = bp_gguf_path(g);
    const char *model = NULL;
    bp_status st = bp_gguf_get_string(g, "tokenizer.ggml.model", &model, NULL, err);
    if (st == BP_ERR_NOT_FOUND)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: missing tokenizer metadata 'tokenizer.ggml.model'", path);
    if (st != BP_OK) return st;
    tokenizer_kind kind;
    if (strcmp(model, "gpt2") == 0)
        kind = TOKENIZER_GPT2;
    else if (strcmp(model, "llama") == 0)
        kind = TOKENIZER_LLAMA;
    else
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: tokenizer.ggml.model = \"%s\" is not supported (supported: gpt2, llama)", path, model);
    tokenizer *t = NULL;
    st = load_vocab(g, &t, kind, err);
    if (st == BP_OK) st = tok_finish(t, path, err); /* the text map, needed by the merges */
    if (st == BP_OK) st = kind == TOKENIZER_GPT2 ? load_merges(g, t, err) : load_scores(g, t, err);
    if (st == BP_OK && kind == TOKENIZER_GPT2) st = set_pre(g, t, err);
    if (st == BP_OK) {
        /* llama.cpp's defaults when a key is absent */
        if (kind == TOKENIZER_LLAMA) {
            t->bos_id = 1;
            t->eos_id = 2;
            t->unk_id = 0;
            t->add_bos = 1;
            t->add_space_prefix = 1;
        } else {
            t->bos_id = t->eos_id = tokenizer_find(t, "<|endoftext|>");
        }
        if (t->bos_id >= t->n_vocab) t->bos_id = -1;
        if (t->eos_id >= t->n_vocab) t->eos_id = -1;
        if (t->unk_id >= t->n_vocab) t->unk_id = -1;
        st = opt_int(g, "tokenizer.ggml.bos_token_id", &t->bos_id, err);
    }
    if (st == BP_OK) st = opt_int(g, "tokenizer.ggml.eos_token_id", &t->eos_id, err);
    if (st == BP_OK) st = opt_int(g, "tokenizer.ggml.unknown_token_id", &t->unk_id, err);
    if (st == BP_OK) st = opt_int(g, "tokenizer.ggml.padding_token_id", &t->pad_id, err);
    if (st == BP_OK) st = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
    if (st == BP_OK && kind == TOKENIZER_LLAMA)
        st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    if (st == BP_OK) {
        const char *tmpl = NULL;
        uint64_t len = 0;
        st = bp_gguf_get_string(g, "tokenizer.chat_template", &tmpl, &len, err);
        if (st == BP_ERR_NOT_FOUND) {
            st = BP_OK;
        } else if (st == BP_OK) {
            t->chat_template = malloc((size_t)len + 1);
            if (!t->chat_template)
                st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for the chat template", path);
            else
                memcpy(t->chat_template, tmpl, (size_t)len + 1);
        }
    }
    if (st == BP_OK) {
        /* ids were checked against the vocabulary before the keys were read */
        int32_t ids[4] = {t->bos_id, t->eos_id, t->unk_id, t->pad_id};
        static const char *const keys[4] = {"bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"};
        for (int i = 0; i < 4 && st == BP_OK; i++)
            if (ids[i] < -1 || ids[i] >= t->n_vocab)
                st = bp_error_set(err, BP_ERR_FORMAT,
                                  "%s: tokenizer.ggml.%s = %d is outside the vocabulary of %d tokens", path, keys[i],
                                  ids[i], t->n_vocab);
    }
    if (st != BP_OK) {
        tokenizer_free(t);
        return st;
    }
    *out = t;
    return BP_OK;
}
