/* Shared helpers of the tokenizer tests: paths and id comparison. */
#ifndef BP_TOK_TEST_UTIL_H
#define BP_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "tokenizer.h"

static inline const char *tt_data_path(char *buf, size_t cap, const char *rel) {
    const char *dir = getenv("BP_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir ? dir : "tests/data", rel);
    return buf;
}

/* models/<file> under the source tree (BP_SOURCE_DIR, set by bp_add_test). */
static inline const char *tt_model_path(char *buf, size_t cap, const char *file) {
    const char *dir = getenv("BP_SOURCE_DIR");
    snprintf(buf, cap, "%s/models/%s", dir ? dir : ".", file);
    return buf;
}

static inline void tt_print_ids(const char *what, const int32_t *ids, int32_t n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int32_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Encode and compare with the expected ids; returns 1 when equal. */
static inline int tt_check_encode(const tokenizer *t, const char *label, const char *text, size_t len,
                                  int32_t parse_special, const int32_t *want, int32_t n_want) {
    int32_t got[1024];
    int32_t n = -1;
    bp_error err = BP_ERROR_INIT;
    bp_status st = tokenizer_encode(t, text, len, 0, parse_special, got, 1024, &n, &err);
    if (st != BP_OK) {
        fprintf(stderr, "%s: encode failed: %s\n", label, err.msg);
        bp_test_failures++;
        return 0;
    }
    int ok = n == n_want && n <= 1024 && (n == 0 || memcmp(got, want, (size_t)n * sizeof *got) == 0);
    if (!ok) {
        fprintf(stderr, "%s: ids differ for \"%.*s\"\n", label, (int)len, text);
        tt_print_ids("want", want, n_want);
        tt_print_ids("got ", got, n < 1024 ? n : 1024);
        bp_test_failures++;
    }
    return ok;
}

/* Concatenated pieces of ids (malloc'd, NUL-terminated). */
static inline char *tt_decode(const tokenizer *t, const int32_t *ids, int32_t n, size_t *len) {
    size_t cap = 64, used = 0;
    char *out = malloc(cap);
    for (int32_t i = 0; out && i < n; i++) {
        bp_error err = BP_ERROR_INIT;
        int32_t m = 0;
        char piece[256];
        if (tokenizer_piece(t, ids[i], piece, sizeof piece, &m, &err) != BP_OK || m > (int32_t)sizeof piece) {
            free(out);
            return NULL;
        }
        if (used + (size_t)m + 1 > cap) {
            while (used + (size_t)m + 1 > cap) cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(out);
                return NULL;
            }
            out = o;
        }
        memcpy(out + used, piece, (size_t)m);
        used += (size_t)m;
    }
    if (out) out[used] = '\0';
    *len = used;
    return out;
}

#endif
