/* Tokenizer units: the byte-level alphabet, round trips of arbitrary bytes,
 * buffer sizes, and bad metadata (each error names the file and the key). */
#include <stdint.h>

#include "batpipe/gguf.h"
#include "tok_internal.h"
#include "tok_test_util.h"

/* --- a minimal in-memory GGUF v3 writer --------------------------------------- */

typedef struct gbuf {
    unsigned char *v;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void put(gbuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->v = realloc(b->v, b->cap);
    }
    memcpy(b->v + b->n, s, n);
    b->n += n;
}
static void u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void str(gbuf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_str(gbuf *b, const char *k, const char *v) {
    str(b, k), u32(b, BP_GGUF_TYPE_STRING), str(b, v);
    b->n_kv++;
}
static void kv_u32(gbuf *b, const char *k, uint32_t v) {
    str(b, k), u32(b, BP_GGUF_TYPE_UINT32), u32(b, v);
    b->n_kv++;
}
static void kv_strs(gbuf *b, const char *k, const char *const *v, uint64_t n) {
    str(b, k), u32(b, BP_GGUF_TYPE_ARRAY), u32(b, BP_GGUF_TYPE_STRING), u64(b, n);
    for (uint64_t i = 0; i < n; i++) str(b, v[i]);
    b->n_kv++;
}
static void kv_i32s(gbuf *b, const char *k, const int32_t *v, uint64_t n) {
    str(b, k), u32(b, BP_GGUF_TYPE_ARRAY), u32(b, BP_GGUF_TYPE_INT32), u64(b, n);
    put(b, v, n * 4);
    b->n_kv++;
}
static void kv_f32s(gbuf *b, const char *k, const float *v, uint64_t n) {
    str(b, k), u32(b, BP_GGUF_TYPE_ARRAY), u32(b, BP_GGUF_TYPE_FLOAT32), u64(b, n);
    put(b, v, n * 4);
    b->n_kv++;
}

/* Header + KVs, no tensors. */
static unsigned char *finish(gbuf *kvs, size_t *size) {
    gbuf out = {0};
    put(&out, "GGUF", 4);
    u32(&out, 3);
    u64(&out, 0);
    u64(&out, kvs->n_kv);
    put(&out, kvs->v, kvs->n);
    while (out.n % 32) put(&out, "", 1);
    free(kvs->v);
    *size = out.n;
    return out.v;
}

static const char *const vocab[] = {"a", "b", "ab", "<s>", "</s>", "<unk>"};

/* Expect tokenizer_from_gguf to fail with `code` and a message containing `needle`. */
static void expect_fail(void (*build)(gbuf *), bp_status code, const char *needle) {
    gbuf kv = {0};
    build(&kv);
    size_t size;
    unsigned char *data = finish(&kv, &size);
    bp_gguf *g = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_gguf_open_memory(data, size, "bad.gguf", &g, &err), &err);
    tokenizer *t = NULL;
    bp_status st = g ? tokenizer_from_gguf(g, &t, &err) : BP_ERR_INTERNAL;
    CHECKF(st == code && t == NULL, "got %s, want %s (%s)", bp_status_name(st), bp_status_name(code), err.msg);
    CHECKF(strstr(err.msg, needle) && strstr(err.msg, "bad.gguf"), "message \"%s\" lacks \"%s\" or the file", err.msg,
           needle);
    tokenizer_free(t);
    bp_gguf_close(g);
    free(data);
}

static void b_no_model(gbuf *b) { kv_strs(b, "tokenizer.ggml.tokens", vocab, 6); }
static void b_bert(gbuf *b) {
    kv_str(b, "tokenizer.ggml.model", "bert");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
}
static void b_no_tokens(gbuf *b) { kv_str(b, "tokenizer.ggml.model", "llama"); }
static void b_no_merges(gbuf *b) {
    kv_str(b, "tokenizer.ggml.model", "gpt2");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
}
static void b_no_scores(gbuf *b) {
    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
}
static void b_short_types(gbuf *b) {
    static const int32_t types[3] = {1, 1, 1};
    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
    kv_i32s(b, "tokenizer.ggml.token_type", types, 3);
}
static void b_bad_bos(gbuf *b) {
    static const float scores[6] = {0};
    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
    kv_f32s(b, "tokenizer.ggml.scores", scores, 6);
    kv_u32(b, "tokenizer.ggml.bos_token_id", 99);
}
static void b_bad_pre(gbuf *b) {
    static const char *const merges[1] = {"a b"};
    kv_str(b, "tokenizer.ggml.model", "gpt2");
    kv_str(b, "tokenizer.ggml.pre", "qwen2");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
    kv_strs(b, "tokenizer.ggml.merges", merges, 1);
}
static void b_bad_merge(gbuf *b) {
    static const char *const merges[1] = {"ab"};
    kv_str(b, "tokenizer.ggml.model", "gpt2");
    kv_strs(b, "tokenizer.ggml.tokens", vocab, 6);
    kv_strs(b, "tokenizer.ggml.merges", merges, 1);
}

static void test_bad_metadata(void) {
    expect_fail(b_no_model, BP_ERR_FORMAT, "missing tokenizer metadata 'tokenizer.ggml.model'");
    expect_fail(b_bert, BP_ERR_UNSUPPORTED, "tokenizer.ggml.model = \"bert\" is not supported");
    expect_fail(b_no_tokens, BP_ERR_FORMAT, "missing tokenizer metadata 'tokenizer.ggml.tokens'");
    expect_fail(b_no_merges, BP_ERR_FORMAT, "missing tokenizer metadata 'tokenizer.ggml.merges'");
    expect_fail(b_no_scores, BP_ERR_FORMAT, "missing tokenizer metadata 'tokenizer.ggml.scores'");
    expect_fail(b_short_types, BP_ERR_FORMAT, "'tokenizer.ggml.token_type' has 3 entries, the vocabulary has 6");
    expect_fail(b_bad_bos, BP_ERR_FORMAT, "bos_token_id = 99 is outside the vocabulary");
    expect_fail(b_bad_pre, BP_ERR_UNSUPPORTED, "tokenizer.ggml.pre = \"qwen2\" is not supported");
    expect_fail(b_bad_merge, BP_ERR_FORMAT, "tokenizer.ggml.merges[0] \"ab\" is not \"left right\"");
}

static void test_bad_json(void) {
    char path[1024];
    tokenizer *t = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK(tokenizer_from_hf_json("/nonexistent/tokenizer.json", NULL, &t, &err) == BP_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/tokenizer.json") != NULL);
    /* a GGUF is not JSON */
    CHECK(tokenizer_from_hf_json(tt_data_path(path, sizeof path, "llm/tiny_spm.gguf"), NULL, &t, &err) ==
          BP_ERR_FORMAT);
    CHECK(strstr(err.msg, "tiny_spm.gguf") != NULL && t == NULL);
}

static void test_bytes(void) {
    int seen[324] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        CHECK(cp < 324 && !seen[cp]);
        if (cp < 324) seen[cp] = 1;
        CHECK(tok_cp_to_byte(cp) == b);
    }
    CHECK(tok_byte_to_cp(' ') == 0x120 && tok_byte_to_cp('\n') == 0x10A && tok_byte_to_cp('A') == 'A');
    CHECK(tok_cp_to_byte(0x2581) == -1);
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_rand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Byte-level BPE loses nothing: decode(encode(x)) == x for any bytes. */
static void test_roundtrip(void) {
    char path[1024];
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    tokenizer *t = NULL;
    CHECK_OK(bp_gguf_open(tt_data_path(path, sizeof path, "llm/tiny_bpe.gguf"), &g, &err), &err);
    if (g) CHECK_OK(tokenizer_from_gguf(g, &t, &err), &err);
    bp_gguf_close(g);
    if (!t) return;
    static const char *const alphabet[] = {"a", "b", " ", "  ", "\n", "\t", "1", "23", "é", "日", "🦀", "'s", "'",
                                           "<|im_end|>", "\xFF", "\xC3", "\x80", "\xE2\x96", "!", "Z"};
    for (int iter = 0; iter < 300; iter++) {
        char text[400];
        size_t len = 0;
        int parts = 1 + (int)(next_rand() % 20);
        for (int k = 0; k < parts; k++) {
            const char *s = alphabet[next_rand() % (sizeof alphabet / sizeof alphabet[0])];
            memcpy(text + len, s, strlen(s));
            len += strlen(s);
        }
        int32_t ids[512], n = 0;
        CHECK_OK(tokenizer_encode(t, text, len, 0, iter % 2, ids, 512, &n, &err), &err);
        size_t dl = 0;
        char *dec = tt_decode(t, ids, n, &dl);
        CHECKF(dec && dl == len && memcmp(dec, text, len) == 0, "round trip of \"%.*s\"", (int)len, text);
        free(dec);
    }
    /* too small a buffer: the full count, nothing past cap written */
    int32_t ids[4] = {-7, -7, -7, -7}, n = 0;
    CHECK_OK(tokenizer_encode(t, "hello world, hello world", 24, 0, 1, ids, 2, &n, &err), &err);
    CHECK(n > 2 && ids[2] == -7 && ids[3] == -7);
    CHECK_OK(tokenizer_encode(t, "x", 1, 0, 1, NULL, 0, &n, &err), &err);
    CHECK(n == 1);
    char buf[8];
    CHECK(tokenizer_piece(t, tokenizer_n_vocab(t), buf, 8, &n, &err) == BP_ERR_INVALID);
    CHECK(tokenizer_piece(t, -1, buf, 8, &n, &err) == BP_ERR_INVALID);
    /* add_bos on a model whose BOS is <|im_start|> */
    CHECK_OK(tokenizer_encode(t, "a", 1, 1, 1, ids, 4, &n, &err), &err);
    CHECK(n == 2 && ids[0] == tokenizer_bos(t));
    tokenizer_free(t);
}

int main(void) {
    test_bytes();
    test_bad_metadata();
    test_bad_json();
    test_roundtrip();
    return TEST_RESULT();
}
