/* llama plugin — text → ids: split the text at special tokens, encode each
 * raw fragment with the model's algorithm, add BOS.
 *
 * Special tokens (CONTROL and USER_DEFINED) are matched left to right,
 * longest first at each position, when parse_special is set.
 *
 * SentencePiece's dummy prefix ("▁" before the text, add_space_prefix) is a
 * pending prefix: it goes to the next raw fragment, or is emitted as its
 * own "▁" before a user-defined token (as sentencepiece does, since it
 * matches user-defined symbols after adding the prefix); a control token
 * in the text makes it pending again (llama.cpp's and Hugging Face's legacy
 * behaviour: "<s>Hi" → <s> ▁Hi). An empty text gets no prefix. */
#include <string.h>

#include "tok_internal.h"

static int32_t match_special(const tokenizer *t, const char *s, size_t n) {
    for (int32_t i = 0; i < t->n_specials; i++) {
        int32_t id = t->specials[i];
        size_t len = t->text_len[id];
        if (len <= n && memcmp(s, t->text_arena + t->text_off[id], len) == 0) return id;
    }
    return -1;
}

static bp_status encode_fragment(const tokenizer *t, const char *s, size_t n, int *pending_prefix, tok_ids *out,
                                 bp_error *err) {
    if (n == 0) return BP_OK;
    if (t->kind == TOKENIZER_GPT2) return tok_bpe_encode(t, s, n, out, err);
    int prefix = *pending_prefix;
    *pending_prefix = 0;
    return tok_spm_encode(t, s, n, prefix, out, err);
}

static bp_status encode_all(const tokenizer *t, const char *text, size_t len, int32_t add_bos, int32_t parse_special,
                            tok_ids *out, bp_error *err) {
    bp_status st = BP_OK;
    if (add_bos && t->bos_id >= 0) st = tok_ids_push(out, t->bos_id, err);
    int pending_prefix = t->kind == TOKENIZER_LLAMA && t->add_space_prefix;
    size_t start = 0, pos = 0;
    while (st == BP_OK && pos < len) {
        int32_t id = (parse_special && t->n_specials > 0) ? match_special(t, text + pos, len - pos) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        st = encode_fragment(t, text + start, pos - start, &pending_prefix, out, err);
        if (st == BP_OK && pending_prefix && t->types[id] == TOKEN_TYPE_USER_DEFINED) {
            pending_prefix = 0;
            st = tok_spm_encode(t, "", 0, 1, out, err);
        }
        if (st == BP_OK) st = tok_ids_push(out, id, err);
        if (t->types[id] == TOKEN_TYPE_CONTROL) pending_prefix = t->kind == TOKENIZER_LLAMA && t->add_space_prefix;
        pos += t->text_len[id];
        start = pos;
    }
    if (st == BP_OK) st = encode_fragment(t, text + start, len - start, &pending_prefix, out, err);
    return st;
}

bp_status tokenizer_encode(const tokenizer *t, const char *text, size_t len, int32_t add_bos, int32_t parse_special,
                           int32_t *ids, int32_t cap, int32_t *n, bp_error *err) {
    *n = 0;
    if (!text && len > 0) return bp_error_set(err, BP_ERR_INVALID, "tokenizer: NULL text of %zu bytes", len);
    if (cap > 0 && !ids) return bp_error_set(err, BP_ERR_INVALID, "tokenizer: NULL id buffer with capacity %d", cap);
    tok_ids out = {NULL, 0, 0};
    bp_status st = encode_all(t, text ? text : "", len, add_bos, parse_special, &out, err);
    if (st == BP_OK) {
        if (out.n > (size_t)INT32_MAX) {
            st = bp_error_set(err, BP_ERR_INVALID, "tokenizer: text gives %zu tokens, more than an int32 holds", out.n);
        } else {
            size_t k = out.n < (size_t)(cap > 0 ? cap : 0) ? out.n : (size_t)(cap > 0 ? cap : 0);
            if (k > 0) memcpy(ids, out.v, k * sizeof *ids);
            *n = (int32_t)out.n;
        }
    }
    tok_ids_free(&out);
    return st;
}
