/* llama plugin — a tokenizer from a Hugging Face tokenizer.json (+ its
 * tokenizer_config.json).
 *
 * Recognised: model "BPE" with
 *   - a ByteLevel pre-tokenizer (alone or in a Sequence after
 *     Digits(individual_digits = true)), add_prefix_space false, use_regex
 *     true → TOKENIZER_GPT2 (GPT-2, SmolLM2, StarCoder);
 *   - a Metaspace pre-tokenizer (split false) or a normalizer that replaces
 *     " " with "▁" (optionally after Prepend("▁")), usually with
 *     byte_fallback → TOKENIZER_LLAMA (LLaMA-2 style). Its merges become
 *     scores (the merge rank, negated; a token no merge produces never
 *     forms by merging), which gives the same result as HF's rank order for
 *     vocabularies converted from SentencePiece, where every split of a
 *     piece into two pieces is a merge ranked by the piece's score.
 * Anything else is BP_ERR_UNSUPPORTED naming the file and the component. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

typedef struct hf_shape {
    tokenizer_kind kind;
    int32_t isolate_digits;
    int32_t add_space_prefix;
} hf_shape;

static const char *jtype(const json_t *j, const char *key) {
    const json_t *v = json_is_object(j) ? json_object_get(j, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jtrue(const json_t *j, const char *key) { return json_is_true(json_object_get(j, key)); }

static bp_status shape_bytelevel(const char *path, const json_t *pre, hf_shape *sh, bp_error *err) {
    if (jtrue(pre, "add_prefix_space"))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: ByteLevel pre-tokenizer with add_prefix_space = true is not "
                                                     "supported", path);
    const json_t *re = json_object_get(pre, "use_regex");
    if (re && !json_is_true(re))
        return bp_error_set(err, BP_ERR_UNSUPPORTED,
                            "%s: ByteLevel pre-tokenizer with use_regex = false is not supported", path);
    sh->kind = TOKENIZER_GPT2;
    return BP_OK;
}

static bp_status shape_metaspace(const char *path, const json_t *pre, hf_shape *sh, bp_error *err) {
    if (jtrue(pre, "split"))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: Metaspace pre-tokenizer with split = true is not supported",
                            path);
    const char *scheme = jtype(pre, "prepend_scheme");
    sh->kind = TOKENIZER_LLAMA;
    sh->add_space_prefix = scheme ? strcmp(scheme, "never") != 0 : jtrue(pre, "add_prefix_space");
    return BP_OK;
}

static bp_status shape_pre(const char *path, const json_t *pre, hf_shape *sh, bp_error *err) {
    const char *type = jtype(pre, "type");
    if (!type) return bp_error_set(err, BP_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", path);
    if (strcmp(type, "ByteLevel") == 0) return shape_bytelevel(path, pre, sh, err);
    if (strcmp(type, "Metaspace") == 0) return shape_metaspace(path, pre, sh, err);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(pre, "pretokenizers");
        size_t n = json_array_size(list);
        for (size_t i = 0; i < n; i++) {
            const json_t *p = json_array_get(list, i);
            const char *pt = jtype(p, "type");
            if (pt && strcmp(pt, "Digits") == 0 && jtrue(p, "individual_digits") && i + 1 < n) {
                sh->isolate_digits = 1;
                continue;
            }
            if (pt && strcmp(pt, "ByteLevel") == 0 && i + 1 == n) return shape_bytelevel(path, p, sh, err);
            if (pt && strcmp(pt, "Metaspace") == 0 && n == 1) return shape_metaspace(path, p, sh, err);
            return bp_error_set(err, BP_ERR_UNSUPPORTED,
                                "%s: pre_tokenizer Sequence element %zu (%s) is not supported (supported: "
                                "[Digits(individual_digits)], ByteLevel)", path, i, pt ? pt : "?");
        }
    }
    return bp_error_set(err, BP_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer \"%s\" is not supported (supported: ByteLevel, Sequence[Digits, "
                        "ByteLevel], Metaspace)", path, type);
}

/* LLaMA-2 style: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] and no pre-tokenizer. */
static bp_status shape_normalizer(const char *path, const json_t *norm, hf_shape *sh, bp_error *err) {
    const json_t *list = json_object_get(norm, "normalizers");
    const char *type = jtype(norm, "type");
    size_t n = type && strcmp(type, "Sequence") == 0 ? json_array_size(list) : 1;
    int replace = 0, prepend = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = list && n > 0 && type && strcmp(type, "Sequence") == 0 ? json_array_get(list, i) : norm;
        const char *xt = jtype(x, "type");
        const json_t *pattern = json_object_get(x, "pattern");
        if (xt && strcmp(xt, "Prepend") == 0 && jtype(x, "prepend") &&
            strcmp(jtype(x, "prepend"), "\xE2\x96\x81") == 0) {
            prepend = 1;
        } else if (xt && strcmp(xt, "Replace") == 0 && jtype(pattern, "String") &&
                   strcmp(jtype(pattern, "String"), " ") == 0 && jtype(x, "content") &&
                   strcmp(jtype(x, "content"), "\xE2\x96\x81") == 0) {
            replace = 1;
        } else {
            return bp_error_set(err, BP_ERR_UNSUPPORTED,
                                "%s: normalizer \"%s\" is not supported (supported: Prepend(\"\xE2\x96\x81\"), "
                                "Replace(\" \", \"\xE2\x96\x81\"))", path, xt ? xt : "?");
        }
    }
    if (!replace)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: a normalizer without Replace(\" \", \"\xE2\x96\x81\") and "
                                                     "no pre_tokenizer is not supported", path);
    sh->kind = TOKENIZER_LLAMA;
    sh->add_space_prefix = prepend;
    return BP_OK;
}

/* Vocabulary size: one more than the largest id in model.vocab and added_tokens. */
static bp_status vocab_extent(const char *path, const json_t *vocab, const json_t *added, int64_t *n, size_t *bytes,
                              bp_error *err) {
    const char *key;
    const json_t *v;
    int64_t max_id = -1;
    *bytes = 0;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            return bp_error_set(err, BP_ERR_FORMAT, "%s: model.vocab[\"%s\"] is not a token id", path, key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
        *bytes += strlen(key);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        const json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX ||
            !jtype(v, "content"))
            return bp_error_set(err, BP_ERR_FORMAT, "%s: added_tokens[%zu] lacks an \"id\" or \"content\"", path, i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
        *bytes += strlen(jtype(v, "content"));
    }
    if (max_id < 0) return bp_error_set(err, BP_ERR_FORMAT, "%s: model.vocab is empty", path);
    *n = max_id + 1;
    return BP_OK;
}

static bp_status fill_vocab(const char *path, const json_t *vocab, const json_t *added, tokenizer *t, bp_error *err) {
    const char **texts = calloc((size_t)t->n_vocab, sizeof *texts);
    if (!texts) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) texts[json_integer_value(v)] = key;
    size_t i;
    json_array_foreach(added, i, v) {
        int64_t id = json_integer_value(json_object_get(v, "id"));
        texts[id] = jtype(v, "content");
        t->types[id] = jtrue(v, "special") ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_USER_DEFINED;
    }
    size_t used = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = texts[id] ? texts[id] : "";
        if (!texts[id]) t->types[id] = TOKEN_TYPE_UNUSED; /* a hole in the ids */
        tok_set_text(t, id, s, strlen(s), &used);
        if (t->kind == TOKENIZER_LLAMA && t->types[id] == TOKEN_TYPE_NORMAL && strlen(s) == 6 &&
            strncmp(s, "<0x", 3) == 0 && s[5] == '>')
            t->types[id] = TOKEN_TYPE_BYTE;
    }
    free(texts);
    return BP_OK;
}

/* One merge entry: "left right" or ["left", "right"]. */
static int merge_parts(const json_t *m, const char **l, size_t *ll, const char **r, size_t *rl) {
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *l = json_string_value(json_array_get(m, 0));
        *r = json_string_value(json_array_get(m, 1));
        *ll = strlen(*l);
        *rl = strlen(*r);
        return 1;
    }
    if (!json_is_string(m)) return 0;
    const char *s = json_string_value(m);
    const char *sp = s[0] ? strchr(s + 1, ' ') : NULL;
    if (!sp) return 0;
    *l = s;
    *ll = (size_t)(sp - s);
    *r = sp + 1;
    *rl = strlen(sp + 1);
    return 1;
}

static bp_status load_merges(const char *path, const json_t *merges, tokenizer *t, bp_error *err) {
    size_t n = json_array_size(merges);
    bp_status st = BP_OK;
    if (t->kind == TOKENIZER_GPT2) {
        st = tok_pairmap_init(&t->merges, n, err);
    } else {
        t->scores = malloc((size_t)t->n_vocab * sizeof *t->scores);
        if (!t->scores) st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for merges", path);
        for (int32_t i = 0; st == BP_OK && i < t->n_vocab; i++) t->scores[i] = -INFINITY;
    }
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t i = 0; st == BP_OK && i < n; i++) {
        const char *l, *r;
        size_t ll, rl;
        if (!merge_parts(json_array_get(merges, i), &l, &ll, &r, &rl)) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: model.merges[%zu] is not \"left right\" or [left, right]", path,
                              i);
            break;
        }
        if (ll + rl > cat_cap) {
            char *c = realloc(cat, ll + rl);
            if (!c) {
                st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory reading merges", path);
                break;
            }
            cat = c;
            cat_cap = ll + rl;
        }
        memcpy(cat, l, ll);
        memcpy(cat + ll, r, rl);
        int32_t li = tok_lookup(t, l, ll), ri = tok_lookup(t, r, rl), mi = tok_lookup(t, cat, ll + rl);
        if (li < 0 || ri < 0 || mi < 0) continue; /* can never apply */
        if (t->kind == TOKENIZER_GPT2)
            tok_pairmap_put(&t->merges, li, ri, (int32_t)i, mi);
        else if (isinf(t->scores[mi]))
            t->scores[mi] = -(float)i;
    }
    free(cat);
    return st;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const char *config_token(const json_t *cfg, const char *key) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    return jtype(v, "content");
}

static bp_status apply_config(const char *path, const json_t *cfg, tokenizer *t, bp_error *err) {
    const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    if (bos) t->bos_id = tokenizer_find(t, bos);
    if (eos) t->eos_id = tokenizer_find(t, eos);
    if (bos && t->bos_id < 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: bos_token \"%s\" is not in the vocabulary", path, bos);
    if (eos && t->eos_id < 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: eos_token \"%s\" is not in the vocabulary", path, eos);
    const json_t *ab = json_object_get(cfg, "add_bos_token");
    if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
    const json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_is_string(ct) ? json_string_value(ct) : NULL;
    size_t i;
    const json_t *v;
    if (json_is_array(ct)) /* [{"name": "default", "template": "..."}, ...] */
        json_array_foreach(ct, i, v) if (jtype(v, "name") && strcmp(jtype(v, "name"), "default") == 0) tmpl =
            jtype(v, "template");
    if (tmpl) {
        t->chat_template = strdup(tmpl);
        if (!t->chat_template) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    return BP_OK;
}

static bp_status load_json(const char *path, json_t **out, bp_error *err) {
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (!*out) {
        FILE *f = fopen(path, "rb");
        if (!f) return bp_error_set(err, BP_ERR_IO, "%s: cannot open", path);
        fclose(f);
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return bp_error_set(err, BP_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return BP_OK;
}

static bp_status build(const char *path, const json_t *root, tokenizer **out, bp_error *err) {
    const json_t *model = json_object_get(root, "model");
    const char *mtype = jtype(model, "type");
    if (!model) return bp_error_set(err, BP_ERR_FORMAT, "%s: missing \"model\"", path);
    if (!mtype || strcmp(mtype, "BPE") != 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (supported: BPE)", path,
                            mtype ? mtype : "?");
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab)) return bp_error_set(err, BP_ERR_FORMAT, "%s: missing \"model.vocab\"", path);
    if (!json_is_array(merges)) return bp_error_set(err, BP_ERR_FORMAT, "%s: missing \"model.merges\"", path);
    if (jtype(model, "continuing_subword_prefix") || jtype(model, "end_of_word_suffix"))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: BPE with a subword prefix or suffix is not supported", path);
    hf_shape sh = {0, 0, 0};
    const json_t *pre = json_object_get(root, "pre_tokenizer"), *norm = json_object_get(root, "normalizer");
    bp_status st;
    if (json_is_object(pre))
        st = shape_pre(path, pre, &sh, err);
    else if (json_is_object(norm))
        st = shape_normalizer(path, norm, &sh, err);
    else
        st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: no pre_tokenizer or normalizer: cannot tell the BPE flavour",
                          path);
    if (st == BP_OK && sh.kind == TOKENIZER_GPT2 && json_is_object(norm))
        st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: a normalizer with a ByteLevel BPE is not supported", path);
    if (st != BP_OK) return st;
    const json_t *added = json_object_get(root, "added_tokens");
    int64_t n = 0;
    size_t bytes = 0;
    st = vocab_extent(path, vocab, added, &n, &bytes, err);
    tokenizer *t = NULL;
    if (st == BP_OK) st = tok_alloc(&t, sh.kind, (int32_t)n, bytes, err);
    if (st != BP_OK) return st;
    t->isolate_digits = sh.isolate_digits;
    t->add_space_prefix = sh.add_space_prefix;
    t->ignore_merges = jtrue(model, "ignore_merges");
    st = fill_vocab(path, vocab, added, t, err);
    if (st == BP_OK) st = tok_finish(t, path, err);
    const char *unk = jtype(model, "unk_token");
    if (st == BP_OK && unk) t->unk_id = tokenizer_find(t, unk);
    if (st == BP_OK && t->unk_id >= 0 && t->types[t->unk_id] != TOKEN_TYPE_NORMAL)
        t->types[t->unk_id] = TOKEN_TYPE_UNKNOWN;
    if (st == BP_OK) st = load_merges(path, merges, t, err);
    if (st == BP_OK) {
        if (sh.kind == TOKENIZER_GPT2) {
            t->bos_id = t->eos_id = tokenizer_find(t, "<|endoftext|>");
        } else {
            t->bos_id = tokenizer_find(t, "<s>");
            t->eos_id = tokenizer_find(t, "</s>");
            t->add_bos = 1;
        }
    }
    if (st != BP_OK) {
        tokenizer_free(t);
        return st;
    }
    *out = t;
    return BP_OK;
}

bp_status tokenizer_from_hf_json(const char *tokenizer_json, const char *tokenizer_config_json, tokenizer **out,
                                 bp_error *err) {
    *out = NULL;
    json_t *root = NULL, *cfg = NULL;
    bp_status st = load_json(tokenizer_json, &root, err);
    if (st == BP_OK) st = build(tokenizer_json, root, out, err);
    if (st == BP_OK && tokenizer_config_json) {
        st = load_json(tokenizer_config_json, &cfg, err);
        if (st == BP_OK) st = apply_config(tokenizer_config_json, cfg, *out, err);
        if (st != BP_OK) {
            tokenizer_free(*out);
            *out = NULL;
        }
    }
    json_decref(root);
    json_decref(cfg);
    return st;
}
