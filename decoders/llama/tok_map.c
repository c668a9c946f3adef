/* llama plugin — the tokenizer's containers: a growable id buffer and the
 * pair → merge hash map (open addressing, power-of-two tables). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

bp_status tok_ids_push(tok_ids *b, int32_t id, bp_error *err) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for %zu token ids", cap);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = id;
    return BP_OK;
}

void tok_ids_free(tok_ids *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

bp_status tok_pairmap_init(tok_pairmap *m, size_t expected, bp_error *err) {
    size_t size = 16;
    while (size < expected * 2 + 1) size *= 2;
    memset(m, 0, sizeof *m);
    m->keys = malloc(size * sizeof *m->keys);
    m->rank = malloc(size * sizeof *m->rank);
    m->merged = malloc(size * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) {
        tok_pairmap_free(m);
        return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory for %zu merges", expected);
    }
    memset(m->keys, 0xFF, size * sizeof *m->keys);
    m->mask = size - 1;
    return BP_OK;
}

void tok_pairmap_put(tok_pairmap *m, int32_t l, int32_t r, int32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    size_t i = (size_t)mix64(key) & m->mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) return; /* first rank wins */
        i = (i + 1) & m->mask;
    }
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
    m->count++;
}

int tok_pairmap_get(const tok_pairmap *m, int32_t l, int32_t r, int32_t *rank, int32_t *merged) {
    if (!m->keys) return 0;
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    size_t i = (size_t)mix64(key) & m->mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
        i = (i + 1) & m->mask;
    }
    return 0;
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}
