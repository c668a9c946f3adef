/* batpipe — text generation over a bp_llm: KV cache reuse, batched
 * prefill, sampling, stop conditions, UTF-8-safe streaming. */
#include "batpipe/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- generator ------------------------------------------------------------ */

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct bp_generator {
    bp_llm *llm;
    int32_t n_vocab, n_ctx, eos_id;
    float *logits;   /* [n_vocab] */
    cand *cands;     /* [n_vocab] sampling scratch */
    int32_t *cache;  /* ids in the KV cache, -1 for prefix embeddings; [n_ctx] */
    int32_t n_cache;
    uint64_t rng[4];
    char *piece;     /* token piece scratch */
    int32_t piece_cap;
};

void bp_generate_params_init(bp_generate_params *p) {
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->max_tokens = 256;
    p->temperature = 0.0f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->stop_at_eos = 1;
    p->n_batch = 512;
}

bp_status bp_generator_new(bp_llm *llm, bp_generator **out, bp_error *err) {
    *out = NULL;
    if (!llm || !llm->info || !llm->eval || !llm->token_piece)
        return bp_error_set(err, BP_ERR_INVALID, "generate: the llm lacks info, eval or token_piece");
    bp_llm_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    bp_status st = llm->info(llm, &info, err);
    if (st != BP_OK) return st;
    if (info.vocab_size <= 0 || info.n_ctx <= 0)
        return bp_error_set(err, BP_ERR_INVALID, "generate: the llm reports vocab_size %d and n_ctx %d",
                            info.vocab_size, info.n_ctx);
    bp_generator *g = calloc(1, sizeof *g);
    if (!g) return bp_error_set(err, BP_ERR_NOMEM, "generate: out of memory");
    g->llm = llm;
    g->n_vocab = info.vocab_size;
    g->n_ctx = info.n_ctx;
    g->eos_id = info.eos_id;
    g->logits = malloc((size_t)g->n_vocab * sizeof *g->logits);
    g->cands = malloc((size_t)g->n_vocab * sizeof *g->cands);
    g->cache = malloc((size_t)g->n_ctx * sizeof *g->cache);
    g->piece_cap = 64;
    g->piece = malloc((size_t)g->piece_cap);
    if (!g->logits || !g->cands || !g->cache || !g->piece) {
        bp_generator_free(g);
        return bp_error_set(err, BP_ERR_NOMEM, "generate: out of memory for a vocabulary of %d and a context of %d",
                            info.vocab_size, info.n_ctx);
    }
    *out = g;
    return BP_OK;
}

void bp_generator_free(bp_generator *g) {
    if (!g) return;
    free(g->logits);
    free(g->cands);
    free(g->cache);
    free(g->piece);
    free(g);
}

void bp_generator_reset(bp_generator *g) {
    if (g) g->n_cache = 0;
}

void bp_generate_result_free(bp_generate_result *res) {
    if (!res) return;
    free(res->tokens);
    free(res->text);
    res->tokens = NULL;
    res->text = NULL;
    res->n_tokens = 0;
    res->text_len = 0;
}

const char *bp_stop_reason_name(int32_t reason) {
    switch (reason) {
    case BP_STOP_EOS: return "eos";
    case BP_STOP_TOKEN: return "stop token";
    case BP_STOP_STRING: return "stop string";
    case BP_STOP_LENGTH: return "max tokens";
    case BP_STOP_CONTEXT: return "context full";
    case BP_STOP_CALLBACK: return "stopped by caller";
    default: return "none";
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- PRNG: xoshiro256**, seeded through splitmix64 -------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* --- sampling ---------------------------------------------------------------- */

/* "a before b": larger logit, then smaller id (a total order: deterministic). */
static int cand_before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void sift_down(cand *c, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && cand_before(&c[l], &c[best])) best = l;
        if (r < n && cand_before(&c[r], &c[best])) best = r;
        if (best == i) return;
        cand tmp = c[i];
        c[i] = c[best];
        c[best] = tmp;
        i = best;
    }
}

/* Heap-sort step: move the best of c[0..n) to c[n-1]; returns n - 1. */
static int32_t heap_extract(cand *c, int32_t n) {
    cand tmp = c[0];
    c[0] = c[n - 1];
    c[n - 1] = tmp;
    sift_down(c, n - 1, 0);
    return n - 1;
}

static int32_t sample_greedy(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* temperature → top-k → top-p → draw. */
static int32_t sample_dist(bp_generator *g, const bp_generate_params *p) {
    const int32_t n = g->n_vocab;
    cand *c = g->cands;
    const float inv_t = 1.0f / p->temperature;
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        c[i].id = i;
        c[i].logit = g->logits[i] * inv_t;
        if (c[i].logit > mx) mx = c[i].logit;
    }
    int32_t k = (p->top_k > 0 && p->top_k < n) ? p->top_k : n;
    int use_p = p->top_p > 0.0f && p->top_p < 1.0f;
    if (k == n && !use_p) { /* plain softmax draw, in id order */
        double z = 0.0;
        for (int32_t i = 0; i < n; i++) z += exp((double)(c[i].logit - mx));
        double u = rng_uniform(g->rng) * z, acc = 0.0;
        for (int32_t i = 0; i < n; i++) {
            acc += exp((double)(c[i].logit - mx));
            if (u < acc) return i;
        }
        return n - 1;
    }
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i);
    /* the best candidates collect at the end, best last: c[n-1], c[n-2], ... */
    int32_t heap_n = n;
    double z = 0.0;
    if (k < n) {
        for (int32_t j = 0; j < k; j++) heap_n = heap_extract(c, heap_n);
        for (int32_t j = 0; j < k; j++) z += exp((double)(c[n - 1 - j].logit - mx));
    } else {
        for (int32_t i = 0; i < n; i++) z += exp((double)(c[i].logit - mx));
    }
    int32_t kept = 0;
    double mass = 0.0;
    while (kept < k) {
        if (kept >= n - heap_n) heap_n = heap_extract(c, heap_n);
        mass += exp((double)(c[n - 1 - kept].logit - mx)) / z;
        kept++;
        if (use_p && mass >= (double)p->top_p) break;
    }
    double u = rng_uniform(g->rng) * mass, acc = 0.0;
    for (int32_t j = 0; j < kept; j++) {
        acc += exp((double)(c[n - 1 - j].logit - mx)) / z;
        if (u < acc) return c[n - 1 - j].id;
    }
    return c[n - kept].id;
}

/* --- output text --------------------------------------------------------------- */

typedef struct out_text {
    char *v;
    size_t n, cap;
    size_t emitted; /* bytes already given to the callback */
} out_text;

static bp_status text_append(out_text *t, const char *s, size_t n, bp_error *err) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (t->n + n + 1 > cap) cap *= 2;
        char *v = realloc(t->v, cap);
        if (!v) return bp_error_set(err, BP_ERR_NOMEM, "generate: out of memory for %zu bytes of text", cap);
        t->v = v;
        t->cap = cap;
    }
    memcpy(t->v + t->n, s, n);
    t->n += n;
    t->v[t->n] = '\0';
    return BP_OK;
}

static size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0; /* continuation or invalid byte */
}

/* The largest end <= limit such that s[from..end) does not cut a UTF-8
 * sequence that the text [0..total) may still complete. Invalid bytes pass. */
static size_t utf8_safe_end(const char *s, size_t from, size_t limit, size_t total) {
    size_t i = from;
    while (i < limit) {
        size_t l = utf8_seq_len((unsigned char)s[i]);
        if (l <= 1) {
            i++;
            continue;
        }
        size_t have = 1;
        while (have < l && i + have < total && ((unsigned char)s[i + have] & 0xC0) == 0x80) have++;
        if (have < l && i + have < total) { /* broken sequence: pass its bytes */
            i += have;
            continue;
        }
        if (i + l > limit) break; /* incomplete, or cut by the limit */
        i += l;
    }
    return i < limit ? i : limit;
}

/* Bytes at the end of s[from..n) that could start a stop string. */
static size_t stop_holdback(const char *s, size_t from, size_t n, const bp_generate_params *p) {
    size_t hold = 0;
    for (int32_t k = 0; k < p->n_stop_strings; k++) {
        const char *stop = p->stop_strings[k];
        size_t sl = stop ? strlen(stop) : 0;
        for (size_t l = sl > 0 ? sl - 1 : 0; l > hold; l--)
            if (l <= n - from && memcmp(s + n - l, stop, l) == 0) {
                hold = l;
                break;
            }
    }
    return hold;
}

/* Position of the first stop string in s[from..n), or SIZE_MAX. */
static size_t stop_find(const char *s, size_t from, size_t n, const bp_generate_params *p) {
    size_t best = SIZE_MAX;
    for (int32_t k = 0; k < p->n_stop_strings; k++) {
        const char *stop = p->stop_strings[k];
        size_t sl = stop ? strlen(stop) : 0;
        if (sl == 0 || sl > n - from) continue;
        for (size_t i = from; i + sl <= n && i < best; i++)
            if (memcmp(s + i, stop, sl) == 0) {
                best = i;
                break;
            }
    }
    return best;
}

static int emit(out_text *t, size_t end, const bp_generate_params *p) {
    int stop = 0;
    if (end > t->emitted && p->on_text) stop = p->on_text(p->user, t->v + t->emitted, end - t->emitted) != 0;
    if (end > t->emitted) t->emitted = end;
    return stop;
}

/* --- run ------------------------------------------------------------------------ */

static bp_status eval_batch(bp_generator *g, const bp_tensor *prefix, const int32_t *tokens, int32_t n_tokens,
                            int32_t pos, int32_t want_logits, bp_error *err) {
    bp_llm_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.prefix_embeds = prefix;
    b.tokens = tokens;
    b.n_tokens = n_tokens;
    b.pos = pos;
    b.n_logits = want_logits ? 1 : 0;
    b.logits = want_logits ? g->logits : NULL;
    return g->llm->eval(g->llm, &b, err);
}

static bp_status check_prompt(const bp_generator *g, const int32_t *prompt, int32_t n_prompt, int32_t n_prefix,
                              bp_error *err) {
    if (n_prompt < 0 || (n_prompt > 0 && !prompt))
        return bp_error_set(err, BP_ERR_INVALID, "generate: invalid prompt (%d tokens)", n_prompt);
    if (n_prompt + n_prefix == 0) return bp_error_set(err, BP_ERR_INVALID, "generate: empty prompt");
    if ((int64_t)n_prompt + n_prefix > g->n_ctx)
        return bp_error_set(err, BP_ERR_INVALID, "generate: prompt of %d tokens exceeds the model's context of %d",
                            n_prompt + n_prefix, g->n_ctx);
    for (int32_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g->n_vocab)
            return bp_error_set(err, BP_ERR_INVALID, "generate: prompt token %d is %d, outside the vocabulary [0, %d)",
                                i, prompt[i], g->n_vocab);
    return BP_OK;
}

/* Evaluate what the cache lacks of prefix + prompt; logits of the last position in g->logits. */
static bp_status prefill(bp_generator *g, const int32_t *prompt, int32_t n_prompt, const bp_tensor *prefix,
                         int32_t n_prefix, int32_t n_batch, int32_t *n_reused, bp_error *err) {
    int32_t common = 0;
    if (n_prefix == 0) {
        while (common < g->n_cache && common < n_prompt && g->cache[common] == prompt[common]) common++;
        if (common == n_prompt) common--; /* the last token is evaluated again for its logits */
    }
    *n_reused = common;
    if (g->n_cache > common && g->llm->kv_truncate) {
        bp_status st = g->llm->kv_truncate(g->llm, common, err);
        if (st != BP_OK) return st;
    }
    g->n_cache = common;
    if (n_batch <= 0) n_batch = n_prompt + n_prefix;
    int32_t i = common;
    int first = 1;
    while (i < n_prompt || first) {
        int32_t room = first ? n_batch - n_prefix : n_batch;
        if (room < 1) room = 1;
        int32_t m = n_prompt - i < room ? n_prompt - i : room;
        int last = i + m == n_prompt;
        bp_status st = eval_batch(g, first ? prefix : NULL, prompt + i, m, g->n_cache, last, err);
        if (st != BP_OK) return st;
        if (first)
            for (int32_t j = 0; j < n_prefix; j++) g->cache[g->n_cache++] = -1;
        memcpy(g->cache + g->n_cache, prompt + i, (size_t)m * sizeof *prompt);
        g->n_cache += m;
        i += m;
        first = 0;
    }
    return BP_OK;
}

static bp_status token_text(bp_generator *g, int32_t id, out_text *t, bp_error *err) {
    int32_t n = 0;
    bp_status st = g->llm->token_piece(g->llm, id, g->piece, g->piece_cap, &n, err);
    if (st == BP_OK && n > g->piece_cap) {
        char *p = realloc(g->piece, (size_t)n);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "generate: out of memory for a %d-byte piece", n);
        g->piece = p;
        g->piece_cap = n;
        st = g->llm->token_piece(g->llm, id, g->piece, g->piece_cap, &n, err);
    }
    if (st != BP_OK) return st;
    return text_append(t, g->piece, (size_t)n, err);
}

static int is_stop_token(const bp_generator *g, const bp_generate_params *p, int32_t id, int32_t *reason) {
    if (p->stop_at_eos && id == g->eos_id) {
        *reason = BP_STOP_EOS;
        return 1;
    }
    for (int32_t i = 0; i < p->n_stop_tokens; i++)
        if (p->stop_tokens[i] == id) {
            *reason = BP_STOP_TOKEN;
            return 1;
        }
    return 0;
}

static bp_status push_token(bp_generate_result *res, int32_t id, int32_t cap, bp_error *err) {
    if (!res->tokens) {
        res->tokens = malloc((size_t)cap * sizeof *res->tokens);
        if (!res->tokens) return bp_error_set(err, BP_ERR_NOMEM, "generate: out of memory for %d tokens", cap);
    }
    res->tokens[res->n_tokens++] = id;
    return BP_OK;
}

bp_status bp_generator_run(bp_generator *g, const int32_t *prompt, int32_t n_prompt, const bp_generate_params *p,
                           bp_generate_result *res, bp_error *err) {
    memset(res, 0, sizeof *res);
    res->struct_size = sizeof *res;
    if (!p || p->struct_size < sizeof *p)
        return bp_error_set(err, BP_ERR_INVALID, "generate: params missing or from an older header (struct_size)");
    if (p->n_stop_tokens > 0 && !p->stop_tokens) return bp_error_set(err, BP_ERR_INVALID, "generate: NULL stop_tokens");
    if (p->n_stop_strings > 0 && !p->stop_strings)
        return bp_error_set(err, BP_ERR_INVALID, "generate: NULL stop_strings");
    if (!isfinite(p->temperature) || isnan(p->top_p))
        return bp_error_set(err, BP_ERR_INVALID, "generate: temperature %g / top_p %g is not a number",
                            (double)p->temperature, (double)p->top_p);
    int32_t n_prefix = 0;
    if (p->prefix_embeds) {
        const bp_tensor *pe = p->prefix_embeds;
        if (pe->dtype != BP_DTYPE_F32 || pe->ndim != 2 || pe->backend || !pe->data || pe->shape[0] > INT32_MAX)
            return bp_error_set(err, BP_ERR_INVALID, "generate: prefix_embeds must be a host F32 [n_prefix, n_embd]");
        n_prefix = (int32_t)pe->shape[0];
    }
    res->n_prompt = n_prompt;
    bp_status st = check_prompt(g, prompt, n_prompt, n_prefix, err);
    if (st != BP_OK) return st;
    rng_seed(g->rng, p->seed);

    double t0 = now_seconds();
    g->n_cache = n_prefix > 0 ? 0 : g->n_cache;
    st = prefill(g, prompt, n_prompt, p->prefix_embeds, n_prefix, p->n_batch, &res->n_reused, err);
    double t1 = now_seconds();
    res->prefill_seconds = t1 - t0;
    if (st != BP_OK) {
        g->n_cache = 0; /* unknown state: evaluate everything next time */
        return st;
    }
    int32_t room = g->n_ctx - g->n_cache; /* positions left; each sampled token but the last needs one */
    int32_t max_new = p->max_tokens > 0 ? p->max_tokens : INT32_MAX;
    int32_t cap = (max_new < room + 1 ? max_new : room + 1);
    out_text text = {NULL, 0, 0, 0};
    st = text_append(&text, "", 0, err);
    int32_t reason = BP_STOP_NONE;
    while (st == BP_OK && reason == BP_STOP_NONE) {
        for (int32_t i = 0; i < g->n_vocab; i++)
            if (!isfinite(g->logits[i])) {
                st = bp_error_set(err, BP_ERR_NUMERIC, "generate: logit %d of position %d is not finite", i,
                                  g->n_cache - 1);
                break;
            }
        if (st != BP_OK) break;
        int32_t id = p->temperature > 0.0f ? sample_dist(g, p) : sample_greedy(g->logits, g->n_vocab);
        st = push_token(res, id, cap, err);
        if (st != BP_OK) break;
        if (is_stop_token(g, p, id, &reason)) break;
        st = token_text(g, id, &text, err);
        if (st != BP_OK) break;
        /* held-back text guarantees that a stop string starts at or after `emitted` */
        size_t at = stop_find(text.v, text.emitted, text.n, p);
        if (at != SIZE_MAX) {
            text.n = at;
            text.v[at] = '\0';
            emit(&text, at, p);
            reason = BP_STOP_STRING;
            break;
        }
        size_t limit = text.n - stop_holdback(text.v, text.emitted, text.n, p);
        if (emit(&text, utf8_safe_end(text.v, text.emitted, limit, text.n), p)) {
            reason = BP_STOP_CALLBACK;
            break;
        }
        if (res->n_tokens >= max_new) {
            reason = BP_STOP_LENGTH;
            break;
        }
        if (g->n_cache >= g->n_ctx) {
            reason = BP_STOP_CONTEXT;
            break;
        }
        st = eval_batch(g, NULL, &id, 1, g->n_cache, 1, err);
        if (st != BP_OK) {
            g->n_cache = 0;
            break;
        }
        g->cache[g->n_cache++] = id;
    }
    if (st == BP_OK && reason != BP_STOP_STRING && reason != BP_STOP_CALLBACK) emit(&text, text.n, p);
    res->decode_seconds = now_seconds() - t1;
    res->stop_reason = reason;
    res->text = text.v;
    res->text_len = text.n;
    return st;
}
