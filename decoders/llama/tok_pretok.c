/* llama plugin — the GPT-2 pre-tokenizer pattern, by hand:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * (the pattern of Hugging Face's ByteLevel pre-tokenizer with use_regex and
 * of llama.cpp's gpt2 splitter), and the Digits(individual_digits) split
 * that SmolLM2 and StarCoder apply before it. */
#include "tok_internal.h"

static tok_class class_at(const char *s, size_t n, size_t *len) {
    int32_t cp;
    *len = tok_utf8_decode(s, n, &cp);
    return tok_unicode_class(cp);
}

size_t tok_pretok_gpt2(const char *s, size_t n) {
    /* contractions, lower case only as in the original pattern */
    if (s[0] == '\'' && n >= 2) {
        char c = s[1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
        if (n >= 3 && ((c == 'r' && s[2] == 'e') || (c == 'v' && s[2] == 'e') || (c == 'l' && s[2] == 'l')))
            return 3;
    }
    size_t l0;
    tok_class c0 = class_at(s, n, &l0);
    size_t start = 0;
    tok_class want = c0;
    if (s[0] == ' ' && n > 1) {
        size_t l1;
        tok_class c1 = class_at(s + 1, n - 1, &l1);
        if (c1 != TOK_CLASS_SPACE) { /* " ?X+" with the optional space taken */
            start = 1;
            want = c1;
        }
    }
    if (want != TOK_CLASS_SPACE) {
        /* ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+: one run of the same class */
        size_t i = start;
        while (i < n) {
            size_t l;
            if (class_at(s + i, n - i, &l) != want) break;
            i += l;
        }
        return i;
    }
    /* \s+(?!\S) | \s+ : a whitespace run; when a non-space follows, leave
     * its last character to start the next piece (" ?X+" picks up a space) */
    size_t i = 0, last = 0;
    while (i < n) {
        size_t l;
        if (class_at(s + i, n - i, &l) != TOK_CLASS_SPACE) break;
        last = i;
        i += l;
    }
    if (i == n) return n;
    return last > 0 ? last : i;
}

size_t tok_pretok_digit_chunk(const char *s, size_t n) {
    size_t l;
    if (class_at(s, n, &l) == TOK_CLASS_NUMBER) return l;
    size_t i = l;
    while (i < n) {
        size_t m;
        if (class_at(s + i, n - i, &m) == TOK_CLASS_NUMBER) break;
        i += m;
    }
    return i;
}
