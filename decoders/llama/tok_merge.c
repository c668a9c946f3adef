/* llama plugin — the BPE merge loop shared by both tokenizers: a max-heap
 * of candidate pairs (priority, then leftmost first), merged one at a time;
 * entries made stale by an earlier merge are skipped when popped. This is
 * the order of Hugging Face's BPE (lowest rank, then position) and of
 * SentencePiece's BPE (highest score, then position). */
#include <stdlib.h>

#include "tok_internal.h"

typedef struct cand {
    double prio;
    int32_t left, right;
    int32_t llen, rlen; /* symbol lengths when pushed (symbols only grow) */
    int32_t merged;
} cand;

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

static int cand_before(const cand *a, const cand *b) {
    if (a->prio != b->prio) return a->prio > b->prio;
    return a->left < b->left;
}

static void heap_push(heap *h, cand c) {
    size_t i = h->n++;
    h->v[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&h->v[i], &h->v[p])) break;
        cand tmp = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = tmp;
        i = p;
    }
}

static cand heap_pop(heap *h) {
    cand top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->n && cand_before(&h->v[l], &h->v[best])) best = l;
        if (r < h->n && cand_before(&h->v[r], &h->v[best])) best = r;
        if (best == i) break;
        cand tmp = h->v[i];
        h->v[i] = h->v[best];
        h->v[best] = tmp;
        i = best;
    }
    return top;
}

static void try_pair(const tokenizer *t, const char *word, const tok_symbol *sym, int32_t l, int32_t r,
                     tok_pair_fn pair, heap *h) {
    if (l < 0 || r < 0) return;
    cand c;
    if (!pair(t, word, &sym[l], &sym[r], &c.prio, &c.merged)) return;
    c.left = l;
    c.right = r;
    c.llen = sym[l].len;
    c.rlen = sym[r].len;
    if (h->n < h->cap) heap_push(h, c);
}

bp_status tok_merge(const tokenizer *t, const char *word, tok_symbol *sym, int32_t n_sym, tok_pair_fn pair,
                    bp_error *err) {
    if (n_sym < 2) return BP_OK;
    heap h = {NULL, 0, (size_t)n_sym * 3 + 1};
    h.v = malloc(h.cap * sizeof *h.v);
    if (!h.v) return bp_error_set(err, BP_ERR_NOMEM, "tokenizer: out of memory merging %d symbols", n_sym);
    for (int32_t i = 0; i + 1 < n_sym; i++) try_pair(t, word, sym, i, i + 1, pair, &h);
    while (h.n > 0) {
        cand c = heap_pop(&h);
        tok_symbol *a = &sym[c.left], *b = &sym[c.right];
        if (a->len != c.llen || b->len != c.rlen || a->next != c.right || a->len == 0 || b->len == 0) continue;
        a->len += b->len;
        a->id = c.merged;
        a->next = b->next;
        if (b->next >= 0) sym[b->next].prev = c.left;
        b->len = 0;
        try_pair(t, word, sym, a->prev, c.left, pair, &h);
        try_pair(t, word, sym, c.left, a->next, pair, &h);
    }
    free(h.v);
    return BP_OK;
}
