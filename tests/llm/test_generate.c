/* Generation (core/src/generate.c) on a fake bp_llm whose next token is a
 * known function of everything in its KV cache, so that greedy output,
 * cache reuse, batching, stop conditions, streaming and sampling can be
 * checked exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/generate.h"
#include "bp_test.h"

enum { V = 300, EOS = 256, END_TURN = 257, CTX = 64 };

typedef struct fake {
    bp_llm llm;
    int32_t hist[CTX]; /* token ids in the cache; -1 for prefix rows */
    int32_t n_past;
    const int32_t *script; /* when set: next token = script[n_past - script_base] */
    int32_t script_base, script_len;
    const float *fixed;    /* when set: these logits, always */
    int32_t n_evals, n_eval_tokens, n_logit_calls, max_batch, n_ctx;
} fake;

/* Next token of the "model": a hash of the whole cache. */
static int32_t next_of(const int32_t *h, int32_t n) {
    uint32_t x = 2166136261u;
    for (int32_t i = 0; i < n; i++) x = (x ^ (uint32_t)(h[i] + 7)) * 16777619u;
    return (int32_t)(32 + x % 90); /* printable ASCII bytes */
}

static bp_status f_info(bp_llm *l, bp_llm_info *o, bp_error *err) {
    (void)err;
    fake *f = l->self;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    strcpy(o->arch, "fake");
    o->vocab_size = V;
    o->n_embd = 4;
    o->n_layer = 1;
    o->n_ctx = f->n_ctx;
    o->bos_id = -1;
    o->eos_id = EOS;
    return BP_OK;
}

static bp_status f_piece(bp_llm *l, int32_t id, char *buf, int32_t cap, int32_t *n, bp_error *err) {
    (void)l;
    if (id < 0 || id >= V) return bp_error_set(err, BP_ERR_INVALID, "fake: id %d", id);
    if (id < 256) {
        if (cap >= 1) buf[0] = (char)id;
        *n = 1;
        return BP_OK;
    }
    const char *s = id == EOS ? "</s>" : id == END_TURN ? "<|end|>" : "<x>";
    *n = (int32_t)strlen(s);
    if (cap >= *n) memcpy(buf, s, (size_t)*n);
    return BP_OK;
}

static bp_status f_eval(bp_llm *l, const bp_llm_batch *b, bp_error *err) {
    fake *f = l->self;
    int32_t n_prefix = b->prefix_embeds ? (int32_t)b->prefix_embeds->shape[0] : 0;
    if (b->pos < 0 || b->pos > f->n_past)
        return bp_error_set(err, BP_ERR_INVALID, "fake: pos %d but %d cached", b->pos, f->n_past);
    if (b->pos + n_prefix + b->n_tokens > f->n_ctx)
        return bp_error_set(err, BP_ERR_INVALID, "fake: context overflow");
    f->n_past = b->pos;
    for (int32_t i = 0; i < n_prefix; i++) f->hist[f->n_past++] = -1;
    for (int32_t i = 0; i < b->n_tokens; i++) f->hist[f->n_past++] = b->tokens[i];
    f->n_evals++;
    f->n_eval_tokens += b->n_tokens;
    if (b->n_tokens + n_prefix > f->max_batch) f->max_batch = b->n_tokens + n_prefix;
    if (b->n_logits > 0) {
        f->n_logit_calls++;
        if (f->fixed) {
            memcpy(b->logits, f->fixed, V * sizeof(float));
        } else {
            int32_t want;
            if (f->script) {
                int32_t k = f->n_past - f->script_base;
                want = k >= 0 && k < f->script_len ? f->script[k] : EOS;
            } else {
                want = next_of(f->hist, f->n_past);
            }
            for (int32_t i = 0; i < V; i++) b->logits[i] = -fabsf((float)(i - want)) * 0.5f;
        }
    }
    return BP_OK;
}

static bp_status f_trunc(bp_llm *l, int32_t n_keep, bp_error *err) {
    fake *f = l->self;
    if (n_keep < 0 || n_keep > f->n_past) return bp_error_set(err, BP_ERR_INVALID, "fake: truncate %d", n_keep);
    f->n_past = n_keep;
    return BP_OK;
}

static void fake_init(fake *f) {
    memset(f, 0, sizeof *f);
    f->llm.struct_size = sizeof f->llm;
    f->llm.self = f;
    f->llm.info = f_info;
    f->llm.token_piece = f_piece;
    f->llm.eval = f_eval;
    f->llm.kv_truncate = f_trunc;
    f->n_ctx = CTX;
}

typedef struct sink {
    char text[512];
    size_t len;
    int pieces, bad_utf8, stop_after;
} sink;

static int utf8_complete(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (l == 0 || i + l > n) return 0;
        i += l;
    }
    return 1;
}

static int32_t on_text(void *user, const char *t, size_t n) {
    sink *s = user;
    if (!utf8_complete(t, n)) s->bad_utf8++;
    memcpy(s->text + s->len, t, n);
    s->len += n;
    s->text[s->len] = '\0';
    s->pieces++;
    return s->stop_after && s->pieces >= s->stop_after;
}

static void test_greedy_and_cache(void) {
    fake f;
    fake_init(&f);
    bp_generator *g = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_generator_new(&f.llm, &g, &err), &err);
    if (!g) return;
    int32_t prompt[10] = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108};
    bp_generate_params p;
    bp_generate_params_init(&p);
    p.max_tokens = 12;
    p.n_batch = 4;
    sink s = {0};
    p.on_text = on_text;
    p.user = &s;
    bp_generate_result r;
    CHECK_OK(bp_generator_run(g, prompt, 10, &p, &r, &err), &err);
    /* expected: the hash chain */
    int32_t h[CTX];
    memcpy(h, prompt, sizeof prompt);
    int32_t n = 10;
    for (int i = 0; i < 12; i++, n++) h[n] = next_of(h, n);
    CHECK(r.n_tokens == 12 && r.stop_reason == BP_STOP_LENGTH);
    CHECK(r.n_tokens == 12 && memcmp(r.tokens, h + 10, 12 * sizeof(int32_t)) == 0);
    CHECK(r.text_len == 12 && s.len == 12 && memcmp(s.text, r.text, 12) == 0);
    for (int i = 0; i < 12 && r.text_len == 12; i++) CHECK(r.text[i] == (char)h[10 + i]);
    /* batched prefill: 4 + 4 + 2 tokens, logits only for the last batch; then 11 decode steps */
    CHECK(f.max_batch == 4);
    CHECK(f.n_evals == 3 + 11 && f.n_eval_tokens == 10 + 11 && f.n_logit_calls == 1 + 11);
    CHECK(r.n_prompt == 10 && r.n_reused == 0);
    CHECK(f.n_past == 21); /* the last sampled token is never evaluated */

    /* continue the conversation: the prompt repeats prompt + answer; only the new part is evaluated */
    int32_t prompt2[26];
    memcpy(prompt2, h, 22 * sizeof(int32_t));
    prompt2[22] = 10, prompt2[23] = 65, prompt2[24] = 66, prompt2[25] = 67;
    int32_t before = f.n_eval_tokens;
    bp_generate_result r2;
    p.max_tokens = 5;
    p.on_text = NULL;
    CHECK_OK(bp_generator_run(g, prompt2, 26, &p, &r2, &err), &err);
    CHECK(r2.n_reused == 21);
    CHECK(f.n_eval_tokens - before == 5 + 4); /* 5 prompt tokens + 4 decode steps */
    memcpy(h, prompt2, sizeof prompt2);
    n = 26;
    for (int i = 0; i < 5; i++, n++) h[n] = next_of(h, n);
    CHECK(r2.n_tokens == 5 && memcmp(r2.tokens, h + 26, 5 * sizeof(int32_t)) == 0);

    /* a different prompt sharing 3 tokens: the cache is cut back to 3 */
    int32_t prompt3[5] = {72, 101, 108, 1, 2};
    bp_generate_result r3;
    CHECK_OK(bp_generator_run(g, prompt3, 5, &p, &r3, &err), &err);
    CHECK(r3.n_reused == 3);
    memcpy(h, prompt3, sizeof prompt3);
    n = 5;
    for (int i = 0; i < 5; i++, n++) h[n] = next_of(h, n);
    CHECK(r3.n_tokens == 5 && memcmp(r3.tokens, h + 5, 5 * sizeof(int32_t)) == 0);

    /* the same prompt again: everything but the last token is reused */
    bp_generate_result r4;
    CHECK_OK(bp_generator_run(g, prompt3, 5, &p, &r4, &err), &err);
    CHECK(r4.n_reused == 4 && r4.n_tokens == 5 && memcmp(r4.tokens, r3.tokens, 5 * sizeof(int32_t)) == 0);
    bp_generate_result_free(&r);
    bp_generate_result_free(&r2);
    bp_generate_result_free(&r3);
    bp_generate_result_free(&r4);
    bp_generator_free(g);
}

static bp_generate_result run_script(const int32_t *script, int32_t len, bp_generate_params *p, sink *s,
                                     bp_status *st_out) {
    fake f;
    fake_init(&f);
    int32_t prompt[3] = {1, 2, 3};
    f.script = script;
    f.script_len = len;
    f.script_base = 3;
    bp_generator *g = NULL;
    bp_error err = BP_ERROR_INIT;
    bp_generate_result r;
    memset(&r, 0, sizeof r);
    CHECK_OK(bp_generator_new(&f.llm, &g, &err), &err);
    p->on_text = s ? on_text : NULL;
    p->user = s;
    *st_out = g ? bp_generator_run(g, prompt, 3, p, &r, &err) : BP_ERR_INTERNAL;
    bp_generator_free(g);
    return r;
}

static void test_stops_and_streaming(void) {
    bp_status st;
    bp_generate_params p;
    /* EOS */
    const int32_t s1[] = {'a', 'b', EOS, 'c'};
    bp_generate_params_init(&p);
    bp_generate_result r = run_script(s1, 4, &p, NULL, &st);
    CHECK(st == BP_OK && r.stop_reason == BP_STOP_EOS && r.n_tokens == 3 && strcmp(r.text, "ab") == 0);
    bp_generate_result_free(&r);
    /* EOS ignored when stop_at_eos = 0; stop token instead */
    const int32_t s2[] = {'a', EOS, 'b', END_TURN, 'c'};
    int32_t stops[1] = {END_TURN};
    bp_generate_params_init(&p);
    p.stop_at_eos = 0;
    p.stop_tokens = stops;
    p.n_stop_tokens = 1;
    r = run_script(s2, 5, &p, NULL, &st);
    CHECK(st == BP_OK && r.stop_reason == BP_STOP_TOKEN && r.n_tokens == 4 && strcmp(r.text, "a</s>b") == 0);
    bp_generate_result_free(&r);
    /* stop string across tokens: never streamed, not in the text */
    const int32_t s3[] = {'H', 'i', ' ', 'S', 'T', 'x', ' ', 'S', 'T', 'O', 'P', '!', 'z'};
    const char *stop_strs[2] = {"STOP", "never"};
    bp_generate_params_init(&p);
    p.stop_strings = stop_strs;
    p.n_stop_strings = 2;
    sink s = {0};
    r = run_script(s3, 13, &p, &s, &st);
    CHECK(st == BP_OK && r.stop_reason == BP_STOP_STRING);
    CHECK(strcmp(r.text, "Hi STx ") == 0 && strcmp(s.text, "Hi STx ") == 0);
    bp_generate_result_free(&r);
    /* UTF-8 split over byte tokens: every streamed piece is complete */
    const int32_t s4[] = {0xC3, 0xA9, 'a', 0xF0, 0x9F, 0x98, 0x80, 0xE4, 0xB8, 0xAD, 'b', EOS};
    bp_generate_params_init(&p);
    memset(&s, 0, sizeof s);
    r = run_script(s4, 12, &p, &s, &st);
    CHECK(st == BP_OK && s.bad_utf8 == 0 && strcmp(s.text, "\xC3\xA9" "a\xF0\x9F\x98\x80\xE4\xB8\xAD" "b") == 0);
    CHECK(s.pieces == 5); /* é, a, 😀, 中, b */
    CHECK(strcmp(r.text, s.text) == 0);
    bp_generate_result_free(&r);
    /* the callback stops generation */
    bp_generate_params_init(&p);
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    r = run_script(s1, 4, &p, &s, &st);
    CHECK(st == BP_OK && r.stop_reason == BP_STOP_CALLBACK && r.n_tokens == 2 && strcmp(s.text, "ab") == 0);
    bp_generate_result_free(&r);
}

static void test_context(void) {
    fake f;
    fake_init(&f);
    f.n_ctx = 16;
    bp_generator *g = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_generator_new(&f.llm, &g, &err), &err);
    if (!g) return;
    int32_t prompt[17];
    for (int i = 0; i < 17; i++) prompt[i] = 'a' + i;
    bp_generate_params p;
    bp_generate_params_init(&p);
    bp_generate_result r;
    CHECK(bp_generator_run(g, prompt, 17, &p, &r, &err) == BP_ERR_INVALID);
    CHECK(strstr(err.msg, "prompt of 17 tokens exceeds the model's context of 16") != NULL);
    bp_generate_result_free(&r);
    /* fills the context: 10 prompt + 6 evaluated + 1 final sampled token */
    p.max_tokens = 0;
    CHECK_OK(bp_generator_run(g, prompt, 10, &p, &r, &err), &err);
    CHECK(r.stop_reason == BP_STOP_CONTEXT && r.n_tokens == 7 && f.n_past == 16);
    bp_generate_result_free(&r);
    /* bad ids */
    prompt[2] = V;
    CHECK(bp_generator_run(g, prompt, 5, &p, &r, &err) == BP_ERR_INVALID && strstr(err.msg, "outside the vocabulary"));
    bp_generate_result_free(&r);
    /* prefix embeddings take positions and disable reuse */
    float pe_data[3 * 4] = {0};
    bp_tensor pe;
    memset(&pe, 0, sizeof pe);
    pe.struct_size = sizeof pe;
    pe.dtype = BP_DTYPE_F32;
    pe.ndim = 2;
    pe.shape[0] = 3;
    pe.shape[1] = 4;
    pe.data = pe_data;
    prompt[2] = 'c';
    p.prefix_embeds = &pe;
    p.max_tokens = 2;
    CHECK_OK(bp_generator_run(g, prompt, 5, &p, &r, &err), &err);
    CHECK(r.n_reused == 0 && f.hist[0] == -1 && f.hist[2] == -1 && f.hist[3] == 'a' && f.n_past == 9);
    int32_t h[16] = {-1, -1, -1, 'a', 'b', 'c', 'd', 'e'};
    CHECK(r.n_tokens == 2 && r.tokens[0] == next_of(h, 8));
    bp_generate_result_free(&r);
    bp_generator_free(g);
}

static void test_sampling(void) {
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = -1e9f;
    logits[10] = logf(0.5f), logits[20] = logf(0.3f), logits[30] = logf(0.2f);
    fake f;
    fake_init(&f);
    f.fixed = logits;
    bp_generator *g = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_generator_new(&f.llm, &g, &err), &err);
    if (!g) return;
    int32_t prompt[1] = {1};
    struct {
        int32_t k;
        float p;
        double want[3];
    } cases[] = {{0, 1.0f, {0.5, 0.3, 0.2}}, {2, 1.0f, {0.625, 0.375, 0}}, {0, 0.6f, {0.625, 0.375, 0}},
                 {0, 0.5f, {1, 0, 0}},       {1, 1.0f, {1, 0, 0}},         {40, 0.95f, {0.5, 0.3, 0.2}}};
    const int N = 3000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int counts[3] = {0, 0, 0}, other = 0;
        for (int i = 0; i < N; i++) {
            bp_generate_params p;
            bp_generate_params_init(&p);
            p.temperature = 1.0f;
            p.top_k = cases[c].k;
            p.top_p = cases[c].p;
            p.seed = (uint64_t)i * 7919u + 1;
            p.max_tokens = 1;
            bp_generate_result r;
            CHECK_OK(bp_generator_run(g, prompt, 1, &p, &r, &err), &err);
            int32_t t = r.n_tokens ? r.tokens[0] : -1;
            if (t == 10) counts[0]++;
            else if (t == 20) counts[1]++;
            else if (t == 30) counts[2]++;
            else other++;
            bp_generate_result_free(&r);
        }
        CHECK(other == 0);
        for (int j = 0; j < 3; j++)
            CHECKF(fabs(counts[j] / (double)N - cases[c].want[j]) < 0.035, "case %zu token %d: %d/%d, want %.3f", c,
                   j, counts[j], N, cases[c].want[j]);
    }
    /* same seed → same draws; temperature sharpens */
    int32_t a[20], b[20];
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < 20; i++) {
            bp_generate_params p;
            bp_generate_params_init(&p);
            p.temperature = 1.0f;
            p.top_k = 0;
            p.top_p = 1.0f;
            p.seed = 42 + (uint64_t)i;
            p.max_tokens = 1;
            bp_generate_result r;
            CHECK_OK(bp_generator_run(g, prompt, 1, &p, &r, &err), &err);
            (rep ? b : a)[i] = r.n_tokens ? r.tokens[0] : -1;
            bp_generate_result_free(&r);
        }
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    int top = 0;
    for (int i = 0; i < 500; i++) {
        bp_generate_params p;
        bp_generate_params_init(&p);
        p.temperature = 0.1f;
        p.seed = (uint64_t)i;
        p.max_tokens = 1;
        bp_generate_result r;
        CHECK_OK(bp_generator_run(g, prompt, 1, &p, &r, &err), &err);
        top += r.n_tokens && r.tokens[0] == 10;
        bp_generate_result_free(&r);
    }
    CHECK(top >= 495); /* (0.5/0.3)^10 ≈ 165: almost always the top token */
    bp_generator_free(g);
}

int main(void) {
    test_greedy_and_cache();
    test_stops_and_streaming();
    test_context();
    test_sampling();
    return TEST_RESULT();
}
