/* Tokenizer parity: our tokenizers against the references recorded by
 * tests/llm/make_tok_refs.py (sentencepiece for the SentencePiece BPE
 * model, Hugging Face tokenizers for the byte-level BPE models, including
 * SmolLM2-135M-Instruct's own GGUF vocabulary when models/ has it). */
#include "batpipe/gguf.h"
#include "tok_refs.h"
#include "tok_test_util.h"

static tokenizer *open_gguf_tok(const char *path) {
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    tokenizer *t = NULL;
    CHECK_OK(bp_gguf_open(path, &g, &err), &err);
    if (!g) return NULL;
    CHECK_OK(tokenizer_from_gguf(g, &t, &err), &err);
    bp_gguf_close(g); /* the tokenizer keeps its own copies */
    return t;
}

/* Every case: ids equal; decoding gives the text back (SentencePiece: with
 * the dummy-prefix space in front of a non-empty text). */
static int run_cases(const tokenizer *t, const char *label, const tok_ref_case *cases, size_t n, int json_only_same,
                     int spm_prefix) {
    int passed = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_ref_case *c = &cases[i];
        if (json_only_same && !c->hf_json_same) continue;
        if (!tt_check_encode(t, label, c->text, c->len, c->parse_special, c->ids, c->n_ids)) continue;
        passed++;
        size_t len = 0;
        char *dec = tt_decode(t, c->ids, c->n_ids, &len);
        CHECK(dec != NULL);
        if (!dec) continue;
        int pre = spm_prefix && c->len > 0;
        CHECKF(len == c->len + (size_t)pre && memcmp(dec + pre, c->text, c->len) == 0 && (!pre || dec[0] == ' '),
               "%s: decode(\"%.*s\") gave \"%s\"", label, (int)c->len, c->text, dec);
        free(dec);
    }
    fprintf(stderr, "%s: %d cases match\n", label, passed);
    return passed;
}

static void test_spm(void) {
    char path[1024];
    tokenizer *t = open_gguf_tok(tt_data_path(path, sizeof path, "llm/tiny_spm.gguf"));
    if (!t) return;
    CHECK(tokenizer_get_kind(t) == TOKENIZER_LLAMA);
    CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && tokenizer_add_bos_default(t) == 1);
    size_t n = sizeof tok_refs_spm / sizeof tok_refs_spm[0];
    CHECK(run_cases(t, "tiny_spm.gguf", tok_refs_spm, n, 0, 1) == (int)n);
    /* add_bos puts BOS first */
    int32_t ids[16], m = 0;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(tokenizer_encode(t, "Hello world", 11, 1, 1, ids, 16, &m, &err), &err);
    CHECK(m == tok_refs_spm[1].n_ids + 1 && ids[0] == 1 && ids[1] == tok_refs_spm[1].ids[0]);
    /* a control token in the text (parse_special): no "▁" before it, one after (llama.cpp) */
    CHECK_OK(tokenizer_encode(t, "<s>Hello world", 14, 0, 1, ids, 16, &m, &err), &err);
    CHECK(m == tok_refs_spm[1].n_ids + 1 && ids[0] == 1 && ids[1] == tok_refs_spm[1].ids[0]);
    tokenizer_free(t);

    t = NULL;
    CHECK_OK(tokenizer_from_hf_json(tt_data_path(path, sizeof path, "llm/tiny_spm_tokenizer.json"), NULL, &t, &err),
             &err);
    if (!t) return;
    CHECK(tokenizer_get_kind(t) == TOKENIZER_LLAMA);
    CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += (size_t)tok_refs_spm[i].hf_json_same;
    CHECK(run_cases(t, "tiny_spm_tokenizer.json", tok_refs_spm, n, 1, 1) == (int)same);
    tokenizer_free(t);
}

static void test_bpe(void) {
    char path[1024], cfg[1024];
    size_t n = sizeof tok_refs_bpe / sizeof tok_refs_bpe[0];
    tokenizer *t = open_gguf_tok(tt_data_path(path, sizeof path, "llm/tiny_bpe.gguf"));
    if (t) {
        CHECK(tokenizer_get_kind(t) == TOKENIZER_GPT2);
        CHECK(tokenizer_chat_template(t) && strstr(tokenizer_chat_template(t), "<|im_start|>"));
        CHECK(run_cases(t, "tiny_bpe.gguf", tok_refs_bpe, n, 0, 0) == (int)n);
        tokenizer_free(t);
    }
    t = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(tokenizer_from_hf_json(tt_data_path(path, sizeof path, "llm/tiny_bpe_tokenizer.json"),
                                    tt_data_path(cfg, sizeof cfg, "llm/tiny_bpe_tokenizer_config.json"), &t, &err),
             &err);
    if (!t) return;
    CHECK(tokenizer_get_kind(t) == TOKENIZER_GPT2);
    CHECK(tokenizer_bos(t) == tokenizer_find(t, "<|im_start|>") && tokenizer_eos(t) == tokenizer_find(t, "<|im_end|>"));
    CHECK(tokenizer_add_bos_default(t) == 0);
    CHECK(tokenizer_is_eog(t, tokenizer_find(t, "<|im_end|>")) &&
          tokenizer_is_eog(t, tokenizer_find(t, "<|endoftext|>")));
    CHECK(!tokenizer_is_eog(t, tokenizer_find(t, "<|im_start|>")));
    CHECK(tokenizer_chat_template(t) && strstr(tokenizer_chat_template(t), "add_generation_prompt"));
    CHECK(run_cases(t, "tiny_bpe_tokenizer.json", tok_refs_bpe, n, 0, 0) == (int)n);
    tokenizer_free(t);
}

static int test_smollm(void) {
    char path[1024];
    tt_model_path(path, sizeof path, "SmolLM2-135M-Instruct.Q4_1.gguf");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "SKIP (SmolLM2 part): %s is absent; scripts/fetch-model.sh downloads it\n", path);
        return 0;
    }
    fclose(f);
    tokenizer *t = open_gguf_tok(path);
    if (!t) return 1;
    CHECK(tokenizer_get_kind(t) == TOKENIZER_GPT2);
    CHECK(tokenizer_n_vocab(t) == 49152);
    CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && tokenizer_add_bos_default(t) == 0);
    CHECK(tokenizer_find(t, "<|im_start|>") == 1 && tokenizer_find(t, "<|im_end|>") == 2);
    CHECK(tokenizer_is_eog(t, 2) && tokenizer_is_eog(t, 0) && !tokenizer_is_eog(t, 1));
    CHECK(tokenizer_chat_template(t) && strstr(tokenizer_chat_template(t), "<|im_start|>"));
    size_t n = sizeof tok_refs_smollm / sizeof tok_refs_smollm[0];
    CHECK(n > 0 && run_cases(t, "SmolLM2 gguf", tok_refs_smollm, n, 0, 0) == (int)n);
    tokenizer_free(t);
    return 1;
}

int main(void) {
    test_spm();
    test_bpe();
    int had_model = test_smollm();
    int r = TEST_RESULT();
    if (r == 0 && !had_model) fprintf(stderr, "tiny models passed; SmolLM2 parity skipped (no model file)\n");
    return r;
}
