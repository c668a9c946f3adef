/* llama plugin — SentencePiece BPE with scores ("llama"): spaces become
 * U+2581 "▁" (one is prepended when asked), the text is split into UTF-8
 * characters, adjacent symbols merge while their concatenation is a normal
 * token, highest score first, and symbols that are not tokens fall back to
 * their bytes' <0xXX> tokens (or to the unknown token). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define SPM_SPACE "\xE2\x96\x81" /* U+2581 */

static int mergeable(const tokenizer *t, int32_t id) { return id >= 0 && t->types[id] == TOKEN_TYPE_NORMAL; }

static int spm_pair(const tokenizer *t, const char *word, const tok_symbol *a, const tok_symbol *b, double *prio,
                    int32_t *merged_id) {
    int32_t id = tok_lookup(t, word + a->start, (size_t)(a->len + b->len));
    if (!mergeable(t, id)) return 0;
    *prio = t->scores ? t->scores[id] : 0.0;
    if (isinf(*prio) && *prio < 0) return 0; /* from a tokenizer.json: no merge produces it */
    *merged_id = id;
    return 1;
}

static bp_status emit_symbol(const tokenizer *t, const char *word, const tok_symbol *s, tok_ids *out, bp_error *err) {
    if (s->id >= 0) return tok_ids_push(out, s->id, err);
    for (int32_t i = 0; i < s->len; i++) {
        int32_t id = t->byte_ids[(uint8_t)word[s->start + i]];
        if (id < 0) {
            /* no byte fallback: one unknown token for the whole character */
            return t->unk_id >= 0 ? tok_ids_push(out, t->unk_id, err) : BP_OK;
        }
        bp_status st = tok_ids_push(out, id, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

bp_status tok_spm_encode(const tokenizer *t, const char *s, size_t n, int prefix, tok_ids *out, bp_error *err) {
    if (n == 0 && !prefix) return BP_OK;
    if (n > (INT32_MAX - 3) / 3)
        return bp_error_set(err, BP_ERR_INVALID, "tokenizer: text of %zu bytes is too long", n);
    char *word = malloc(3 + n * 3);
    tok_symbol *sym = malloc((n + 1) * sizeof *sym);
    if (!word || !sym) {
        free(word);
        free(sym);
        return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte text", n);
    }
    size_t len = 0;
    if (prefix) {
        memcpy(word, SPM_SPACE, 3);
        len = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(word + len, SPM_SPACE, 3);
            len += 3;
        } else {
            word[len++] = s[i];
        }
    }
    int32_t n_sym = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t l = tok_utf8_decode(word + i, len - i, &cp);
        int32_t id = tok_lookup(t, word + i, l);
        tok_symbol *y = &sym[n_sym];
        y->start = (int32_t)i;
        y->len = (int32_t)l;
        y->id = (id >= 0 && (t->types[id] == TOKEN_TYPE_NORMAL || t->types[id] == TOKEN_TYPE_USER_DEFINED)) ? id : -1;
        y->prev = n_sym - 1;
        y->next = n_sym + 1;
        n_sym++;
        i += l;
    }
    if (n_sym > 0) sym[n_sym - 1].next = -1;
    bp_status st = tok_merge(t, word, sym, n_sym, spm_pair, err);
    for (int32_t i = 0; st == BP_OK && n_sym > 0 && i >= 0; i = sym[i].next)
        st = emit_symbol(t, word, &sym[i], out, err);
    free(word);
    free(sym);
    return st;
}
