/* Bad input to the llama plugin: every case fails with the right status and
 * a message naming the file (or the value) and the problem, never a crash.
 *   - parameters: precision = "exact" with an explicit f16 KV cache, an
 *     unknown precision;
 *   - GGUF: another architecture, a tensor of a type the plugin cannot
 *     compute on (Q5_0, F64), a missing tensor, no tokenizer metadata;
 *   - Hugging Face: tensors whose shapes disagree with config.json (every
 *     mismatch named), a missing lm_head, layers beyond the config, another
 *     model_type, no weights, a missing path;
 *   - eval: a prompt longer than the context, a token outside the vocabulary,
 *     prefix embeddings of the wrong width or not finite, too many logits;
 *   - adapters: a LoRA file given as llama_adapter_v2, wrong shapes, a
 *     missing file, a file without adapter_type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/safetensors.h"
#include "batpipe/tensor.h"
#include "bp_test.h"
#include "llama_test_util.h"

static lt_env env;

/* Create must fail with `code` and a message containing every needle. */
static void expect_fail(const char *what, const char *const *kv, uint32_t n, bp_status code, const char *n1,
                        const char *n2, const char *n3) {
    bp_error err = BP_ERROR_INIT;
    bp_llm *llm = lt_llm_create(&env, kv, n, &err);
    fprintf(stderr, "  %-34s -> %s: %s\n", what, llm ? "created" : bp_status_name((bp_status)err.code), err.msg);
    CHECKF(!llm, "%s: created", what);
    lt_llm_destroy(llm);
    CHECKF(err.code == code, "%s: status %s, expected %s", what, bp_status_name((bp_status)err.code),
           bp_status_name(code));
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++) CHECKF(!needles[i] || strstr(err.msg, needles[i]), "%s: no '%s'", what, needles[i]);
}

static void model_kv(char *buf, size_t cap, const char *path) { snprintf(buf, cap, "model=\"%s\"", path); }

static void gguf_case(const lt_model *m, const char *dir, const char *name, const lt_gguf_opts *o, bp_status code,
                      const char *n1, const char *n2) {
    char path[4400], kv[4500];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    CHECK(lt_model_write_gguf_opts(m, path, BP_DTYPE_F32, o) == 0);
    model_kv(kv, sizeof kv, path);
    const char *kvs[] = {kv};
    expect_fail(name, kvs, 1, code, path, n1, n2);
}

static void hf_case(const lt_model *files, const lt_model *config, const char *dir, const char *name, bp_status code,
                    const char *n1, const char *n2, const char *n3) {
    char sub[4400], kv[4500];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    mkdir(sub, 0755);
    CHECK(lt_model_write_hf(files, sub, BP_DTYPE_F32) == 0);
    CHECK(lt_model_write_hf_config(config, sub) == 0);
    model_kv(kv, sizeof kv, sub);
    const char *kvs[] = {kv};
    expect_fail(name, kvs, 1, code, n1, n2, n3);
    lt_rmdir(sub);
}

static void eval_cases(const char *gguf) {
    bp_error err = BP_ERROR_INIT;
    char kv[4500];
    model_kv(kv, sizeof kv, gguf);
    const char *kvs[] = {kv, "n_ctx=16"};
    bp_llm *llm = lt_llm_create(&env, kvs, 2, &err);
    CHECK(llm != NULL);
    if (!llm) return;
    int32_t tokens[20];
    for (int i = 0; i < 20; i++) tokens[i] = i * 11;
    float logits[2 * 256], prefix[2 * 32];
    bp_status st = lt_eval(llm, NULL, 0, 32, tokens, 20, 0, 1, logits, NULL, &err);
    fprintf(stderr, "  %-34s -> %s\n", "prompt > context", err.msg);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "prompt of 20 tokens exceeds the model's context of 16") &&
          strstr(err.msg, gguf));
    CHECK_OK(lt_eval(llm, NULL, 0, 32, tokens, 10, 0, 1, logits, NULL, &err), &err);
    st = lt_eval(llm, NULL, 0, 32, tokens, 7, 10, 1, logits, NULL, &err);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "prompt of 17 tokens exceeds the model's context of 16"));
    tokens[3] = 256;
    st = lt_eval(llm, NULL, 0, 32, tokens, 5, 0, 1, logits, NULL, &err);
    fprintf(stderr, "  %-34s -> %s\n", "token out of range", err.msg);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "token 3 is 256"));
    tokens[3] = -1;
    CHECK(lt_eval(llm, NULL, 0, 32, tokens, 5, 0, 1, logits, NULL, &err) == BP_ERR_INVALID);
    tokens[3] = 3;
    for (int i = 0; i < 64; i++) prefix[i] = 0.1f;
    st = lt_eval(llm, prefix, 2, 31, tokens, 5, 0, 1, logits, NULL, &err); /* width 31, the model has 32 */
    fprintf(stderr, "  %-34s -> %s\n", "prefix of the wrong width", err.msg);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "[n_prefix, 32]") && strstr(err.msg, "[2,31]"));
    prefix[33] = 1.0f / 0.0f;
    st = lt_eval(llm, prefix, 2, 32, tokens, 5, 0, 1, logits, NULL, &err);
    CHECK(st == BP_ERR_NUMERIC && strstr(err.msg, "prefix embedding 1, element 1"));
    st = lt_eval(llm, NULL, 0, 32, tokens, 5, 0, 6, logits, NULL, &err);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "n_logits = 6"));
    st = lt_eval(llm, NULL, 0, 32, tokens, 5, 0, 1, NULL, NULL, &err);
    CHECK(st == BP_ERR_INVALID);
    bp_llm_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = 4;
    CHECK(llm->eval(llm, &b, &err) == BP_ERR_INVALID);
    lt_llm_destroy(llm);
}

static void adapter_cases(const lt_model *m, const char *dir, const char *gguf) {
    char kv[4500], kv_adapter[4500], path[4400];
    model_kv(kv, sizeof kv, gguf);
    bp_error err = BP_ERROR_INIT;
    /* a LoRA file given as an adapter v2 */
    snprintf(path, sizeof path, "%s/lora.safetensors", dir);
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    float a[4 * 32] = {0}, bq[32] = {0}, gate[4] = {0};
    bp_tensor ta = bp_tensor_view(BP_DTYPE_F32, 2, (int64_t[2]){4, 32}, a);
    CHECK_OK(bp_st_writer_add(w, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", &ta, &err), &err);
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s\"", path);
    const char *k1[] = {kv, kv_adapter, "adapter_type=\"llama_adapter_v2\""};
    expect_fail("LoRA file as llama_adapter_v2", k1, 3, BP_ERR_FORMAT, path,
                "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' is not a llama_adapter_v2", NULL);
    const char *k2[] = {kv, kv_adapter, "adapter_type=\"lora\""};
    expect_fail("LoRA A without B", k2, 3, BP_ERR_FORMAT, "q_proj has lora_A without lora_B", NULL, NULL);
    const char *k2b[] = {kv, kv_adapter};
    expect_fail("adapter file, type unknown", k2b, 2, BP_ERR_INVALID, "adapter_type is none", NULL, NULL);
    /* wrong shapes: gate of 3 heads (the model has 4), q bias of 32 on q_proj (ok) */
    snprintf(path, sizeof path, "%s/v2.safetensors", dir);
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    bp_tensor tg = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[1]){3}, gate);
    bp_tensor tb = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[1]){32}, bq);
    bp_tensor tg4 = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[1]){4}, gate);
    CHECK_OK(bp_st_writer_add(w, "adapter.1.gate", &tg, &err), &err);
    CHECK_OK(bp_st_writer_add(w, "adapter.0.gate", &tg4, &err), &err);
    CHECK_OK(bp_st_writer_add(w, "model.layers.0.self_attn.q_proj.bias", &tb, &err), &err);
    CHECK_OK(bp_st_writer_add(w, "model.layers.0.self_attn.k_proj.bias", &tb, &err), &err);
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s\"", path);
    const char *k3[] = {kv, kv_adapter, "adapter_type=\"llama_adapter_v2\""};
    expect_fail("adapter v2 with bad shapes", k3, 3, BP_ERR_FORMAT, "'adapter.1.gate' has shape [3], expected [4]",
                "'model.layers.0.self_attn.k_proj.bias' is not a llama_adapter_v2",
                "layer 0 has adapter.0.gate without adapter.0.prompt");
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s/none.safetensors\"", dir);
    const char *k4[] = {kv, kv_adapter, "adapter_type=\"lora\""};
    expect_fail("missing adapter file", k4, 3, BP_ERR_NOT_FOUND, "none.safetensors", NULL, NULL);
    const char *k5[] = {kv, "adapter_type=\"lora\"", "lora_targets=[\"q_proj\", \"wq\"]"};
    expect_fail("unknown LoRA target", k5, 3, BP_ERR_INVALID, "'wq'", NULL, NULL);
    (void)m;
}

int main(void) {
    if (lt_env_open(&env, 1) != 0) return 1;
    lt_model m;
    memset(&m, 0, sizeof m);
    m.vocab = 256, m.embd = 32, m.layers = 2, m.heads = 4, m.kv_heads = 2, m.head_dim = 8, m.ff = 64;
    m.ctx = 64, m.eps = 1e-5f, m.theta = 10000.0f, m.tied = 0;
    lt_model_random(&m, 3);
    char dir[4096], good[4400], kv[4500];
    if (lt_tmpdir(dir, sizeof dir) != 0) return 1;
    snprintf(good, sizeof good, "%s/good.gguf", dir);
    CHECK(lt_model_write_gguf(&m, good, BP_DTYPE_Q8_0, "llama") == 0);

    /* GGUF */
    lt_gguf_opts o;
    memset(&o, 0, sizeof o);
    o.arch = "gpt2";
    gguf_case(&m, dir, "arch_gpt2", &o, BP_ERR_UNSUPPORTED, "architecture 'gpt2'", "\"llama\"");
    memset(&o, 0, sizeof o);
    o.odd_tensor = "blk.1.attn_q.weight", o.odd_type = 6;
    gguf_case(&m, dir, "type_q5_0", &o, BP_ERR_UNSUPPORTED, "'blk.1.attn_q.weight' has type Q5_0 (6)",
              "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1");
    o.odd_tensor = "blk.0.ffn_down.weight", o.odd_type = 28;
    gguf_case(&m, dir, "type_f64", &o, BP_ERR_UNSUPPORTED, "'blk.0.ffn_down.weight' has type F64",
              "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1");
    memset(&o, 0, sizeof o);
    o.drop_tensor = "blk.1.ffn_up.weight";
    gguf_case(&m, dir, "missing_tensor", &o, BP_ERR_FORMAT, "tensor 'blk.1.ffn_up.weight' is missing", NULL);
    memset(&o, 0, sizeof o);
    o.no_tokenizer = 1;
    gguf_case(&m, dir, "no_tokenizer", &o, BP_ERR_FORMAT, "tokenizer.ggml", NULL);
    model_kv(kv, sizeof kv, "/nonexistent/model.gguf");
    const char *k0[] = {kv};
    expect_fail("missing GGUF", k0, 1, BP_ERR_NOT_FOUND, "/nonexistent/model.gguf", NULL, NULL);
    /* precision = "exact" keeps an F32 cache: an explicit f16 cache contradicts it */
    model_kv(kv, sizeof kv, good);
    const char *kp[] = {kv, "precision=\"exact\"", "kv_type=\"f16\""};
    expect_fail("precision exact with kv_type f16", kp, 3, BP_ERR_INVALID, "precision = \"exact\"",
                "kv_type = \"f16\"", NULL);
    const char *kq[] = {kv, "precision=\"exactly\""};
    expect_fail("precision exactly", kq, 2, BP_ERR_INVALID, "exactly", "fast|exact", NULL);

    /* Hugging Face */
    lt_model cfg = m;
    cfg.ff = 80;
    hf_case(&m, &cfg, dir, "hf_ff", BP_ERR_FORMAT, "6 problems",
            "'model.layers.0.mlp.gate_proj.weight' has shape [64,32], expected [80,32]",
            "'model.layers.1.mlp.down_proj.weight' has shape [32,64], expected [32,80]");
    cfg = m;
    cfg.kv_heads = 4;
    hf_case(&m, &cfg, dir, "hf_kv_heads", BP_ERR_FORMAT, "'model.layers.0.self_attn.k_proj.weight' has shape [16,32]",
            "'model.layers.1.self_attn.v_proj.weight'", NULL);
    lt_model tied = m;
    tied.tied = 1;
    hf_case(&tied, &m, dir, "hf_no_lm_head", BP_ERR_FORMAT, "tensor 'lm_head.weight' is missing", NULL, NULL);
    cfg = m;
    cfg.layers = 1;
    hf_case(&m, &cfg, dir, "hf_layers", BP_ERR_FORMAT, "'model.layers.1.input_layernorm.weight' is beyond", NULL,
            NULL);
    char sub[4400], cpath[4500];
    snprintf(sub, sizeof sub, "%s/hf_mistral", dir);
    mkdir(sub, 0755);
    snprintf(cpath, sizeof cpath, "%s/config.json", sub);
    FILE *f = fopen(cpath, "w");
    if (f) fputs("{\"model_type\": \"mistral\", \"hidden_size\": 32}", f), fclose(f);
    model_kv(kv, sizeof kv, sub);
    expect_fail("HF model_type mistral", k0, 1, BP_ERR_UNSUPPORTED, "model_type 'mistral'", cpath, NULL);
    f = fopen(cpath, "w");
    if (f) fclose(f);
    CHECK(lt_model_write_hf_config(&m, sub) == 0);
    expect_fail("HF without weights", k0, 1, BP_ERR_NOT_FOUND, "no model.safetensors", NULL, NULL);
    lt_rmdir(sub);
    model_kv(kv, sizeof kv, "/nonexistent/dir");
    expect_fail("missing HF directory", k0, 1, BP_ERR_NOT_FOUND, "/nonexistent/dir", NULL, NULL);

    eval_cases(good);
    adapter_cases(&m, dir, good);
    lt_rmdir(dir);
    lt_model_free(&m);
    lt_env_close(&env);
    return TEST_RESULT();
}
