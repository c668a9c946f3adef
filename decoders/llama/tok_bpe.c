/* llama plugin — byte-level BPE ("gpt2"): pre-tokenize, map each piece's
 * bytes to the byte-level alphabet and merge by merge rank. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static int gpt2_pair(const tokenizer *t, const char *word, const tok_symbol *a, const tok_symbol *b, double *prio,
                     int32_t *merged_id) {
    (void)word;
    int32_t rank;
    if (a->id < 0 || b->id < 0) return 0;
    if (!tok_pairmap_get(&t->merges, a->id, b->id, &rank, merged_id)) return 0;
    *prio = -(double)rank;
    return 1;
}

/* ignore_merges: the whole piece, in the byte-level alphabet, as one token. */
static int32_t whole_word_id(const tokenizer *t, const char *s, size_t n) {
    char small[256];
    char *buf = n * 2 < sizeof small ? small : malloc(n * 2 + 1);
    if (!buf) return -1;
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += tok_utf8_encode(tok_byte_to_cp((uint8_t)s[i]), buf + len);
    int32_t id = tok_lookup(t, buf, len);
    if (buf != small) free(buf);
    return id;
}

static bp_status encode_word(const tokenizer *t, const char *s, size_t n, tok_ids *out, bp_error *err) {
    if (t->ignore_merges) {
        int32_t id = whole_word_id(t, s, n);
        if (id >= 0) return tok_ids_push(out, id, err);
    }
    tok_symbol small[64];
    tok_symbol *sym = n <= 64 ? small : malloc(n * sizeof *sym);
    if (!sym) return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", n);
    for (size_t i = 0; i < n; i++) {
        sym[i].start = (int32_t)i;
        sym[i].len = 1;
        sym[i].id = t->byte_ids[(uint8_t)s[i]];
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    bp_status st = tok_merge(t, s, sym, (int32_t)n, gpt2_pair, err);
    for (int32_t i = 0; st == BP_OK && i >= 0; i = sym[i].next) {
        int32_t id = sym[i].id >= 0 ? sym[i].id : t->unk_id;
        if (id >= 0) st = tok_ids_push(out, id, err);
    }
    if (sym != small) free(sym);
    return st;
}

bp_status tok_bpe_encode(const tokenizer *t, const char *s, size_t n, tok_ids *out, bp_error *err) {
    size_t pos = 0;
    while (pos < n) {
        size_t chunk = t->isolate_digits ? tok_pretok_digit_chunk(s + pos, n - pos) : n - pos;
        size_t end = pos + chunk;
        while (pos < end) {
            size_t len = tok_pretok_gpt2(s + pos, end - pos);
            bp_status st = encode_word(t, s + pos, len, out, err);
            if (st != BP_OK) return st;
            pos += len;
        }
    }
    return BP_OK;
}
