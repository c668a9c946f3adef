/* `batpipe sources`: curation rules that need the decoded audio (duplicates,
 * the minimum number of distinct recordings per class) and the train/eval
 * split by recording.
 *
 * The split is deterministic and independent of row order: recordings are
 * ordered by a salted FNV-1a hash of their id; classes are visited from the
 * smallest to the largest (ties by name), and each class sends its first
 * unassigned recordings (in hash order) to eval until round(fraction · n)
 * of its recordings are in eval (at least one once it has two). A recording
 * already placed by an earlier class keeps its split, so no recording is in
 * both splits even when it carries several labels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

uint64_t sources_split_key(const char *salt, const char *recording) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = salt ? salt : ""; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h = (h ^ 0x1f) * 0x100000001b3ull; /* separator */
    for (const char *p = recording; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    /* final avalanche (splitmix64) so that neighbouring ids spread out */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int cmp_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

/* rows sorted by (class name, recording, file); the rows travel as qsort_r's context */

static int cmp_row(const void *pa, const void *pb, void *ctx) {
    const sources_row *rows = ctx;
    const sources_row *a = &rows[*(const size_t *)pa], *b = &rows[*(const size_t *)pb];
    int c = cmp_str(a->cls->name, b->cls->name);
    if (c) return c;
    c = strcmp(a->recording, b->recording);
    if (c) return c;
    return cmp_str(a->file, b->file);
}

typedef struct rec_state {
    const char *id;
    int split; /* -1 unassigned */
} rec_state;

static int cmp_rec(const void *a, const void *b) {
    return strcmp(((const rec_state *)a)->id, ((const rec_state *)b)->id);
}

static rec_state *rec_find(rec_state *recs, size_t n, const char *id) {
    rec_state key = {id, 0};
    return bsearch(&key, recs, n, sizeof *recs, cmp_rec);
}

typedef struct class_span {
    size_t first, count; /* into the sorted index, kept rows of one class */
    size_t recordings;
    const char *name;
} class_span;

static int cmp_span(const void *pa, const void *pb) {
    const class_span *a = pa, *b = pb;
    if (a->recordings != b->recordings) return a->recordings < b->recordings ? -1 : 1;
    return strcmp(a->name, b->name);
}

typedef struct keyed {
    uint64_t key;
    const char *id;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return strcmp(a->id, b->id);
}

bp_status sources_split(sources_row *rows, size_t n, const sources_split_opts *opt, bp_error *err) {
    if (n == 0) return BP_OK;
    size_t *idx = malloc(n * sizeof *idx);
    rec_state *recs = malloc(n * sizeof *recs);
    class_span *spans = malloc(n * sizeof *spans);
    keyed *ks = malloc(n * sizeof *ks);
    if (!idx || !recs || !spans || !ks) {
        free(idx);
        free(recs);
        free(spans);
        free(ks);
        return bp_error_set(err, BP_ERR_NOMEM, "split: out of memory for %zu rows", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        rows[i].split = 0;
        if (rows[i].keep) idx[m++] = i;
    }
    qsort_r(idx, m, sizeof *idx, cmp_row, rows);

    /* 1. the same recording twice under one label: keep the first file */
    for (size_t k = 1; k < m; k++) {
        sources_row *a = &rows[idx[k - 1]], *b = &rows[idx[k]];
        if (a->cls == b->cls && strcmp(a->recording, b->recording) == 0) {
            b->keep = 0;
            b->why = "identical content is already in the corpus under this label";
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < m; k++)
        if (rows[idx[k]].keep) idx[w++] = idx[k];
    m = w;

    /* 2. classes with too few distinct recordings (after step 1 each row of a class is a distinct recording) */
    size_t ns = 0;
    for (size_t k = 0; k < m;) {
        size_t e = k;
        while (e < m && rows[idx[e]].cls == rows[idx[k]].cls) e++;
        size_t cnt = e - k;
        if ((int)cnt < opt->min_recordings) {
            for (size_t j = k; j < e; j++) {
                rows[idx[j]].keep = 0;
                rows[idx[j]].why = "the class has too few distinct recordings";
            }
        } else {
            spans[ns].first = k;
            spans[ns].count = cnt;
            spans[ns].recordings = cnt;
            spans[ns].name = rows[idx[k]].cls->name;
            ns++;
        }
        k = e;
    }

    /* 3. the split */
    size_t nr = 0;
    for (size_t s = 0; s < ns; s++)
        for (size_t j = spans[s].first; j < spans[s].first + spans[s].count; j++) {
            recs[nr].id = rows[idx[j]].recording;
            recs[nr].split = -1;
            nr++;
        }
    qsort(recs, nr, sizeof *recs, cmp_rec);
    w = 0;
    for (size_t k = 0; k < nr; k++)
        if (w == 0 || strcmp(recs[w - 1].id, recs[k].id) != 0) recs[w++] = recs[k];
    nr = w;
    qsort(spans, ns, sizeof *spans, cmp_span);
    for (size_t s = 0; s < ns; s++) {
        size_t cnt = spans[s].count;
        size_t target = cnt >= 2 ? (size_t)llround(opt->eval_fraction * (double)cnt) : 0;
        if (cnt >= 2 && target < 1 && opt->eval_fraction > 0) target = 1;
        if (target >= cnt && cnt >= 2) target = cnt - 1;
        size_t in_eval = 0;
        for (size_t j = 0; j < cnt; j++) {
            const char *id = rows[idx[spans[s].first + j]].recording;
            ks[j].id = id;
            ks[j].key = sources_split_key(opt->salt, id);
            rec_state *r = rec_find(recs, nr, id);
            if (r && r->split == 1) in_eval++;
        }
        qsort(ks, cnt, sizeof *ks, cmp_keyed);
        for (size_t j = 0; j < cnt; j++) {
            rec_state *r = rec_find(recs, nr, ks[j].id);
            if (!r || r->split >= 0) continue;
            if (in_eval < target) {
                r->split = 1;
                in_eval++;
            } else {
                r->split = 0;
            }
        }
    }
    for (size_t k = 0; k < m; k++) {
        sources_row *r = &rows[idx[k]];
        if (!r->keep) continue;
        rec_state *st = rec_find(recs, nr, r->recording);
        r->split = st && st->split == 1 ? 1 : 0;
    }
    free(idx);
    free(recs);
    free(spans);
    free(ks);
    return BP_OK;
}
