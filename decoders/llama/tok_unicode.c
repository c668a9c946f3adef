/* llama plugin — UTF-8 decoding and the character classes of the GPT-2
 * pre-tokenizer pattern. */
#include "tok_internal.h"

size_t tok_utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t tok_utf8_decode(const char *s, size_t n, int32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = tok_utf8_len(u[0]);
    if (len == 1) {
        *cp = u[0];
        return 1;
    }
    if (len == 0 || len > n) {
        *cp = -1;
        return 1;
    }
    uint32_t v = u[0] & (0xFFu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3Fu);
    }
    /* overlong 3/4-byte forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = (int32_t)v;
    return len;
}

size_t tok_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int range_contains(const tok_range *r, size_t count, uint32_t cp) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* The White_Space property (what \s matches in the reference regex engines). */
static int is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

tok_class tok_unicode_class(int32_t cp) {
    if (cp < 0) return TOK_CLASS_OTHER;
    uint32_t c = (uint32_t)cp;
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return TOK_CLASS_LETTER;
        if (c >= '0' && c <= '9') return TOK_CLASS_NUMBER;
        if (is_white_space(c)) return TOK_CLASS_SPACE;
        return TOK_CLASS_OTHER;
    }
    if (is_white_space(c)) return TOK_CLASS_SPACE;
    if (range_contains(tok_unicode_letters, tok_unicode_letters_count, c)) return TOK_CLASS_LETTER;
    if (range_contains(tok_unicode_numbers, tok_unicode_numbers_count, c)) return TOK_CLASS_NUMBER;
    return TOK_CLASS_OTHER;
}
