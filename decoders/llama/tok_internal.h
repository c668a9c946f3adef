/* llama plugin — tokenizer internals shared by tok_*.c (not for the rest
 * of the plugin: use tokenizer.h). */
#ifndef BP_LLAMA_TOK_INTERNAL_H
#define BP_LLAMA_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* --- Unicode (tok_unicode.c, tok_unicode_data.c) ------------------------- */

typedef struct tok_range {
    uint32_t lo, hi; /* inclusive */
} tok_range;

extern const tok_range tok_unicode_letters[];
extern const size_t tok_unicode_letters_count;
extern const tok_range tok_unicode_numbers[];
extern const size_t tok_unicode_numbers_count;

/* Character classes of the GPT-2 pre-tokenizer pattern. */
typedef enum tok_class {
    TOK_CLASS_LETTER = 1, /* \p{L} */
    TOK_CLASS_NUMBER = 2, /* \p{N} */
    TOK_CLASS_SPACE = 3,  /* \s: the Unicode White_Space property */
    TOK_CLASS_OTHER = 4   /* everything else, including invalid UTF-8 bytes */
} tok_class;

/* Decode one UTF-8 sequence at s[0..n) (n >= 1). Returns its length in
 * bytes (1..4) and the code point in *cp; an invalid or truncated sequence
 * is one byte with *cp = -1. */
size_t tok_utf8_decode(const char *s, size_t n, int32_t *cp);
/* Bytes of a valid UTF-8 sequence starting with lead byte `c`: 1..4, or 0
 * for a continuation or invalid lead byte. */
size_t tok_utf8_len(unsigned char c);
/* Encode a code point (0..0x10FFFF) into out[0..4); returns its length. */
size_t tok_utf8_encode(uint32_t cp, char *out);
tok_class tok_unicode_class(int32_t cp);

/* --- containers (tok_map.c) ---------------------------------------------- */

/* Growable id buffer. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;

bp_status tok_ids_push(tok_ids *b, int32_t id, bp_error *err);
void tok_ids_free(tok_ids *b);

/* Token text → id: open addressing over the tokenizer's own texts. */
typedef struct tok_strmap {
    int32_t *slots; /* -1 = empty */
    size_t mask;
} tok_strmap;

/* Token pair (left id, right id) → merge rank and merged id. */
typedef struct tok_pairmap {
    uint64_t *keys; /* UINT64_MAX = empty */
    int32_t *rank;
    int32_t *merged;
    size_t mask;
    size_t count;
} tok_pairmap;

/* --- the tokenizer -------------------------------------------------------- */

struct tokenizer {
    tokenizer_kind kind;
    int32_t n_vocab;

    char *text_arena;     /* every token text, NUL-terminated, back to back */
    uint32_t *text_off;   /* [n_vocab] */
    uint32_t *text_len;   /* [n_vocab] */
    int32_t *types;       /* [n_vocab] TOKEN_TYPE_* */
    float *scores;        /* [n_vocab] (llama) or NULL */
    tok_strmap vocab;

    /* gpt2 */
    tok_pairmap merges;
    int32_t byte_ids[256];    /* gpt2: id of each byte's byte-level char; llama: <0xXX> id; -1 = none */
    int32_t isolate_digits;   /* pre-tokenizer: every \p{N} character is its own piece first */
    int32_t ignore_merges;    /* a pre-token that is a whole vocabulary entry is emitted as is */

    /* llama */
    int32_t add_space_prefix;

    /* special tokens matched in the text (CONTROL, USER_DEFINED), longest first */
    int32_t *specials;
    int32_t n_specials;

    int32_t bos_id, eos_id, unk_id, pad_id;
    int32_t add_bos;
    char *chat_template;
};

/* Allocate a tokenizer with room for n_vocab tokens whose texts take
 * `text_bytes` bytes in total (without NULs); ids default to -1, types to
 * NORMAL. */
bp_status tok_alloc(tokenizer **out, tokenizer_kind kind, int32_t n_vocab, size_t text_bytes, bp_error *err);
/* Append the text of token `id` (ids must be set in order 0, 1, ...). */
void tok_set_text(tokenizer *t, int32_t id, const char *text, size_t len, size_t *arena_used);
/* After texts, types and (gpt2) byte mapping are set: build the text map,
 * the byte tables and the special-token list. `what` names the source. */
bp_status tok_finish(tokenizer *t, const char *what, bp_error *err);
/* The id whose text is s[0..len), or -1. */
int32_t tok_lookup(const tokenizer *t, const char *s, size_t len);

bp_status tok_pairmap_init(tok_pairmap *m, size_t expected, bp_error *err);
/* Insert (l, r) → (rank, merged); an existing pair keeps its first rank. */
void tok_pairmap_put(tok_pairmap *m, int32_t l, int32_t r, int32_t rank, int32_t merged);
/* 1 and rank/merged when present, else 0. */
int tok_pairmap_get(const tok_pairmap *m, int32_t l, int32_t r, int32_t *rank, int32_t *merged);
void tok_pairmap_free(tok_pairmap *m);

/* --- byte-level alphabet (tok_bytes.c) ------------------------------------ */

/* GPT-2's byte → code point table: printable bytes map to themselves, the
 * others to 256, 257, ... in byte order. */
uint32_t tok_byte_to_cp(uint8_t b);
/* Inverse; -1 when cp is not in the alphabet. */
int32_t tok_cp_to_byte(uint32_t cp);

/* --- algorithms ------------------------------------------------------------ */

/* GPT-2 pre-tokenizer (tok_pretok.c): length in bytes of the first piece of
 * s[0..n) (n >= 1) under the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
size_t tok_pretok_gpt2(const char *s, size_t n);
/* With isolate_digits: length of the first chunk of s[0..n) when every
 * \p{N} character is split off on its own (HF's Digits(individual_digits)). */
size_t tok_pretok_digit_chunk(const char *s, size_t n);

/* Merge engine (tok_merge.c): symbols over a byte string, merged pairwise by
 * priority (higher first; ties: leftmost first) until no pair qualifies. */
typedef struct tok_symbol {
    int32_t start, len; /* bytes in the word */
    int32_t id;         /* token id or -1 (llama: a character with no token) */
    int32_t prev, next; /* -1 at the ends; len 0 = merged away */
} tok_symbol;

/* Priority of merging a and b (adjacent), or 0 when they do not merge; on
 * success *prio and *merged_id are set. */
typedef int (*tok_pair_fn)(const tokenizer *t, const char *word, const tok_symbol *a, const tok_symbol *b,
                           double *prio, int32_t *merged_id);
bp_status tok_merge(const tokenizer *t, const char *word, tok_symbol *sym, int32_t n_sym, tok_pair_fn pair,
                    bp_error *err);

/* Encode one raw-text fragment (no special tokens in it) and append ids. */
bp_status tok_bpe_encode(const tokenizer *t, const char *s, size_t n, tok_ids *out, bp_error *err);
/* llama: `prefix` = prepend "▁" (add_space_prefix at the start of the text). */
bp_status tok_spm_encode(const tokenizer *t, const char *s, size_t n, int prefix, tok_ids *out, bp_error *err);

#endif /* BP_LLAMA_TOK_INTERNAL_H */
