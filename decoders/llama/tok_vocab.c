/* llama plugin — the tokenizer object: vocabulary storage, the text → id
 * map, byte tables, special tokens, accessors and token pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* --- construction ------------------------------------------------------- */

bp_status tok_alloc(tokenizer **out, tokenizer_kind kind, int32_t n_vocab, size_t text_bytes, bp_error *err) {
    *out = NULL;
    if (n_vocab <= 0) return bp_error_set(err, BP_ERR_FORMAT, "tokenizer: empty vocabulary");
    if (text_bytes + (size_t)n_vocab >= UINT32_MAX)
        return bp_error_set(err, BP_ERR_FORMAT, "tokenizer: vocabulary texts too large (%zu bytes)", text_bytes);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->text_arena = malloc(text_bytes + (size_t)n_vocab);
    t->text_off = calloc((size_t)n_vocab, sizeof *t->text_off);
    t->text_len = calloc((size_t)n_vocab, sizeof *t->text_len);
    t->types = malloc((size_t)n_vocab * sizeof *t->types);
    if (!t->text_arena || !t->text_off || !t->text_len || !t->types) {
        tokenizer_free(t);
        return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
    for (int32_t i = 0; i < n_vocab; i++) t->types[i] = TOKEN_TYPE_NORMAL;
    for (int i = 0; i < 256; i++) t->byte_ids[i] = -1;
    t->bos_id = t->eos_id = t->unk_id = t->pad_id = -1;
    *out = t;
    return BP_OK;
}

void tok_set_text(tokenizer *t, int32_t id, const char *text, size_t len, size_t *arena_used) {
    t->text_off[id] = (uint32_t)*arena_used;
    t->text_len[id] = (uint32_t)len;
    memcpy(t->text_arena + *arena_used, text, len);
    t->text_arena[*arena_used + len] = '\0';
    *arena_used += len + 1;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

int32_t tok_lookup(const tokenizer *t, const char *s, size_t len) {
    if (!t->vocab.slots) return -1;
    size_t i = (size_t)hash_bytes(s, len) & t->vocab.mask;
    for (;;) {
        int32_t id = t->vocab.slots[i];
        if (id < 0) return -1;
        if (t->text_len[id] == len && memcmp(t->text_arena + t->text_off[id], s, len) == 0) return id;
        i = (i + 1) & t->vocab.mask;
    }
}

static bp_status build_vocab_map(tokenizer *t, bp_error *err) {
    size_t size = 16;
    while (size < (size_t)t->n_vocab * 2 + 1) size *= 2;
    t->vocab.slots = malloc(size * sizeof *t->vocab.slots);
    if (!t->vocab.slots) return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for the vocabulary map");
    memset(t->vocab.slots, 0xFF, size * sizeof *t->vocab.slots);
    t->vocab.mask = size - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text_arena + t->text_off[id];
        size_t len = t->text_len[id];
        size_t i = (size_t)hash_bytes(s, len) & t->vocab.mask;
        for (;;) {
            int32_t other = t->vocab.slots[i];
            if (other < 0) {
                t->vocab.slots[i] = id;
                break;
            }
            if (t->text_len[other] == len && memcmp(t->text_arena + t->text_off[other], s, len) == 0) {
                t->vocab.slots[i] = id; /* a duplicate text: the later id wins, as in llama.cpp */
                break;
            }
            i = (i + 1) & t->vocab.mask;
        }
    }
    return BP_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text_len[x] != t->text_len[y]) return t->text_len[x] > t->text_len[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* Insertion sort (few specials; qsort_r is not C11). */
static void sort_specials(tokenizer *t) {
    for (int32_t i = 1; i < t->n_specials; i++) {
        int32_t v = t->specials[i];
        int32_t j = i - 1;
        while (j >= 0 && cmp_special(&t->specials[j], &v, t) > 0) {
            t->specials[j + 1] = t->specials[j];
            j--;
        }
        t->specials[j + 1] = v;
    }
}

bp_status tok_finish(tokenizer *t, const char *what, bp_error *err) {
    bp_status st = build_vocab_map(t, err);
    if (st != BP_OK) return st;
    for (int b = 0; b < 256; b++) {
        char buf[16];
        size_t len;
        if (t->kind == TOKENIZER_GPT2) {
            len = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), buf);
        } else {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            len = strlen(buf);
        }
        t->byte_ids[b] = tok_lookup(t, buf, len);
    }
    int32_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if ((t->types[id] == TOKEN_TYPE_CONTROL || t->types[id] == TOKEN_TYPE_USER_DEFINED) && t->text_len[id] > 0)
            n++;
    if (n > 0) {
        t->specials = malloc((size_t)n * sizeof *t->specials);
        if (!t->specials) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for special tokens", what);
        for (int32_t id = 0; id < t->n_vocab; id++)
            if ((t->types[id] == TOKEN_TYPE_CONTROL || t->types[id] == TOKEN_TYPE_USER_DEFINED) &&
                t->text_len[id] > 0)
                t->specials[t->n_specials++] = id;
        sort_specials(t);
    }
    int32_t ids[4] = {t->bos_id, t->eos_id, t->unk_id, t->pad_id};
    static const char *const names[4] = {"bos", "eos", "unknown", "padding"};
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || ids[i] >= t->n_vocab)
            return bp_error_set(err, BP_ERR_FORMAT, "%s: %s token id %d is outside the vocabulary of %d tokens", what,
                                names[i], ids[i], t->n_vocab);
    return BP_OK;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    free(t->text_arena);
    free(t->text_off);
    free(t->text_len);
    free(t->types);
    free(t->scores);
    free(t->vocab.slots);
    tok_pairmap_free(&t->merges);
    free(t->specials);
    free(t->chat_template);
    free(t);
}

/* --- accessors ------------------------------------------------------------ */

tokenizer_kind tokenizer_get_kind(const tokenizer *t) { return t->kind; }
int32_t tokenizer_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos_id; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos_id; }
int32_t tokenizer_add_bos_default(const tokenizer *t) { return t->add_bos; }
const char *tokenizer_chat_template(const tokenizer *t) { return t->chat_template; }

int32_t tokenizer_token_type(const tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->types[id] : 0;
}

const char *tokenizer_token_text(const tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->text_arena + t->text_off[id] : NULL;
}

int32_t tokenizer_find(const tokenizer *t, const char *text) { return tok_lookup(t, text, strlen(text)); }

int32_t tokenizer_is_eog(const tokenizer *t, int32_t id) {
    static const char *const eog[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>",
                                      "</s>"};
    if (id < 0 || id >= t->n_vocab) return 0;
    if (id == t->eos_id) return 1;
    if (t->types[id] != TOKEN_TYPE_CONTROL) return 0;
    const char *s = t->text_arena + t->text_off[id];
    for (size_t i = 0; i < sizeof eog / sizeof eog[0]; i++)
        if (strcmp(s, eog[i]) == 0) return 1;
    return 0;
}

/* --- pieces ---------------------------------------------------------------- */

static void put_bytes(char *buf, int32_t cap, int32_t *n, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (*n < cap) buf[*n] = s[i];
        (*n)++;
    }
}

static int parse_byte_token(const char *s, size_t len, uint8_t *b) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    unsigned v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else
            return 0;
    }
    *b = (uint8_t)v;
    return 1;
}

bp_status tokenizer_piece(const tokenizer *t, int32_t id, char *buf, int32_t cap, int32_t *n, bp_error *err) {
    *n = 0;
    if (id < 0 || id >= t->n_vocab)
        return bp_error_set(err, BP_ERR_INVALID, "tokenizer: token id %d is outside the vocabulary of %d tokens", id,
                            t->n_vocab);
    if (cap < 0) cap = 0;
    const char *s = t->text_arena + t->text_off[id];
    size_t len = t->text_len[id];
    int32_t type = t->types[id];
    if (type == TOKEN_TYPE_CONTROL || type == TOKEN_TYPE_USER_DEFINED || type == TOKEN_TYPE_UNKNOWN) {
        put_bytes(buf, cap, n, s, len);
        return BP_OK;
    }
    if (t->kind == TOKENIZER_GPT2) {
        size_t i = 0;
        while (i < len) {
            int32_t cp;
            size_t l = tok_utf8_decode(s + i, len - i, &cp);
            int32_t b = cp >= 0 ? tok_cp_to_byte((uint32_t)cp) : -1;
            if (b >= 0) {
                char c = (char)b;
                put_bytes(buf, cap, n, &c, 1);
            } else {
                put_bytes(buf, cap, n, s + i, l); /* not in the byte alphabet: keep as is */
            }
            i += l;
        }
        return BP_OK;
    }
    uint8_t byte;
    if (type == TOKEN_TYPE_BYTE && parse_byte_token(s, len, &byte)) {
        put_bytes(buf, cap, n, (const char *)&byte, 1);
        return BP_OK;
    }
    size_t i = 0;
    while (i < len) {
        if (len - i >= 3 && memcmp(s + i, "\xE2\x96\x81", 3) == 0) { /* U+2581 ▁ */
            put_bytes(buf, cap, n, " ", 1);
            i += 3;
        } else {
            put_bytes(buf, cap, n, s + i, 1);
            i++;
        }
    }
    return BP_OK;
}
