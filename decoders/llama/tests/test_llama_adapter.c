/* Adapters of the llama plugin on the golden tiny LLaMA
 * (tests/data/golden/llama_tiny.safetensors):
 *   1. fresh adapters leave the output unchanged: LLaMA-Adapter v2 (zero
 *      gates, zero biases, unit scales, copies of the norms, random
 *      prompts) and LoRA (random A, zero B, all seven projections) give
 *      logits bit-identical to the base model;
 *   2. the "batpipe.llm.adapter/1" extension: tensor names and counts;
 *      writing the golden adapter values through the views gives
 *      logits_adapter / logits_lora (1e-4, the golden rule);
 *   3. save → load round trips (new instance from the file; ext->load into
 *      a live instance), the file's lora_alpha metadata, a type conflict
 *      leaving the old adapter in place;
 *   4. a GGUF-layout model (interleaved q/k rows): a saved HF-order
 *      adapter loads with its q rows permuted (logits_adapter), and saving
 *      from it gives the HF order back (bit-identical q bias). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/safetensors.h"
#include "bp_test.h"
#include "llama_adapter_ext.h"
#include "llama_test_util.h"

#define S 20
#define NP 8
#define NT 12
#define V 256
#define E 64

static lt_env env;
static bp_st_file *gf;
static lt_model gm;
static int32_t tokens[NT];
static const float *prefix;

static const float *golden(const char *name, int64_t *n) {
    bp_tensor t;
    bp_error err = BP_ERROR_INIT;
    if (bp_st_get(gf, name, &t, &err) != BP_OK) return NULL;
    if (n) *n = bp_tensor_numel(&t);
    return t.data;
}

static bp_llm *create(const char *model, const char *const *extra, uint32_t n_extra) {
    bp_error err = BP_ERROR_INIT;
    char kv_model[4400];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", model);
    const char *kv[8] = {kv_model, "kv_type=\"f32\""};
    for (uint32_t i = 0; i < n_extra; i++) kv[2 + i] = extra[i];
    bp_llm *llm = lt_llm_create(&env, kv, 2 + n_extra, &err);
    if (!llm) {
        fprintf(stderr, "create: %s\n", err.msg);
        bp_test_failures++;
    }
    return llm;
}

static void logits_of(bp_llm *llm, float *out) {
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, S, out, NULL, &err), &err);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Copy golden values into every adapter tensor that has a golden namesake. */
static int fill_from_golden(bp_llm *llm, const bp_llm_adapter_ext *ext) {
    bp_error err = BP_ERROR_INIT;
    int filled = 0;
    for (int32_t i = 0; i < ext->tensor_count(llm); i++) {
        bp_tensor t;
        CHECK_OK(ext->tensor_at(llm, i, &t, &err), &err);
        int64_t n = 0;
        const float *g = golden(t.name, &n);
        if (!g) continue;
        CHECKF(n == bp_tensor_numel(&t), "%s: %lld vs %lld values", t.name, (long long)n,
               (long long)bp_tensor_numel(&t));
        if (n == bp_tensor_numel(&t)) memcpy(t.data, g, (size_t)n * sizeof(float)), filled++;
    }
    return filled;
}

static void check_rel(const char *what, const float *got, const float *want) {
    double e = lt_rel_err(got, want, (size_t)S * V);
    fprintf(stderr, "  %-52s err %.2e\n", what, e);
    CHECKF(e <= 1e-4, "%s: %g", what, e);
}

static void fresh_adapters(const char *model, const float *base) {
    float *got = malloc(sizeof(float) * S * V);
    const char *v2[] = {"adapter_type=\"llama_adapter_v2\"", "adapter_layers=1", "adapter_scales=true"};
    bp_llm *llm = create(model, v2, 3);
    if (llm) {
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        CHECK(ext && ext->struct_size == sizeof *ext && strcmp(ext->type(llm), "llama_adapter_v2") == 0);
        /* 1 prompt + 1 gate + 2 × 5 biases + 2 × 5 scales + 2 × 2 + 1 norms */
        CHECKF(ext && ext->tensor_count(llm) == 27, "%d tensors", ext ? ext->tensor_count(llm) : -1);
        CHECK(llm->get_extension(llm, "batpipe.llm.adapter/2") == NULL);
        logits_of(llm, got);
        double d = max_abs_diff(got, base, (size_t)S * V);
        fprintf(stderr, "  %-52s max |diff| %.1e\n", "fresh llama_adapter_v2 vs base", d);
        CHECK(d == 0.0);
        lt_llm_destroy(llm);
    }
    const char *lora[] = {"adapter_type=\"lora\"", "lora_rank=4",
                          "lora_targets=[\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", "
                          "\"down_proj\"]"};
    llm = create(model, lora, 3);
    if (llm) {
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        CHECK(ext && strcmp(ext->type(llm), "lora") == 0 && ext->tensor_count(llm) == 2 * 7 * 2);
        logits_of(llm, got);
        double d = max_abs_diff(got, base, (size_t)S * V);
        fprintf(stderr, "  %-52s max |diff| %.1e\n", "fresh LoRA (7 targets) vs base", d);
        CHECK(d == 0.0);
        lt_llm_destroy(llm);
    }
    llm = create(model, NULL, 0);
    if (llm) {
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        CHECK(ext && strcmp(ext->type(llm), "none") == 0 && ext->tensor_count(llm) == 0);
        bp_error err = BP_ERROR_INIT;
        bp_tensor t;
        CHECK(ext && ext->tensor_at(llm, 0, &t, &err) == BP_ERR_NOT_FOUND);
        CHECK(ext && ext->save(llm, "/tmp/never.safetensors", &err) == BP_ERR_INVALID);
        lt_llm_destroy(llm);
    }
    free(got);
}

int main(void) {
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char path[4096], dir[4096], gguf[4400], f_v2[4400], f_lora[4400], f_v2_gguf[4400];
    snprintf(path, sizeof path, "%s/golden/llama_tiny.safetensors", data);
    bp_error err = BP_ERROR_INIT;
    if (bp_st_open(path, &gf, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (lt_env_open(&env, 2) != 0) return 1;
    /* the golden model as an lt_model (borrowed data) */
    memset(&gm, 0, sizeof gm);
    gm.vocab = V, gm.embd = E, gm.layers = 2, gm.heads = 4, gm.kv_heads = 2, gm.head_dim = 16, gm.ff = 172;
    gm.ctx = 64, gm.eps = 1e-5f, gm.theta = 10000.0f, gm.tied = 0;
    gm.embed = (float *)golden("model.embed_tokens.weight", NULL);
    gm.norm = (float *)golden("model.norm.weight", NULL);
    gm.lm_head = (float *)golden("lm_head.weight", NULL);
    struct lt_layer layers[2];
    gm.layer = layers;
    char name[128];
    for (int l = 0; l < 2; l++) {
#define L(field, suffix) \
    (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), layers[l].field = (float *)golden(name, NULL))
        L(wq, "self_attn.q_proj.weight"), L(wk, "self_attn.k_proj.weight"), L(wv, "self_attn.v_proj.weight");
        L(wo, "self_attn.o_proj.weight"), L(wgate, "mlp.gate_proj.weight"), L(wup, "mlp.up_proj.weight");
        L(wdown, "mlp.down_proj.weight"), L(attn_norm, "input_layernorm.weight");
        L(ffn_norm, "post_attention_layernorm.weight");
#undef L
    }
    bp_tensor tt;
    CHECK_OK(bp_st_get(gf, "tokens", &tt, &err), &err);
    for (int i = 0; i < NT; i++) tokens[i] = (int32_t)((const int64_t *)tt.data)[i];
    prefix = golden("prefix_embeds", NULL);
    const float *g_logits = golden("logits", NULL), *g_adapter = golden("logits_adapter", NULL),
                *g_lora = golden("logits_lora", NULL);

    if (lt_tmpdir(dir, sizeof dir) != 0) return 1;
    snprintf(gguf, sizeof gguf, "%s/tiny.gguf", dir);
    snprintf(f_v2, sizeof f_v2, "%s/v2.safetensors", dir);
    snprintf(f_lora, sizeof f_lora, "%s/lora.safetensors", dir);
    snprintf(f_v2_gguf, sizeof f_v2_gguf, "%s/v2_from_gguf.safetensors", dir);
    CHECK(lt_model_write_hf(&gm, dir, BP_DTYPE_F32) == 0);
    CHECK(lt_model_write_gguf(&gm, gguf, BP_DTYPE_F32, "llama") == 0);

    float *base = malloc(sizeof(float) * S * V), *got = malloc(sizeof(float) * S * V),
          *got2 = malloc(sizeof(float) * S * V);
    bp_llm *llm = create(dir, NULL, 0);
    if (llm) logits_of(llm, base), lt_llm_destroy(llm);
    check_rel("base (HF)", base, g_logits);

    /* 1. fresh adapters change nothing */
    fresh_adapters(dir, base);

    /* 2./3. adapter v2 through the views, save, reload */
    const char *v2[] = {"adapter_type=\"llama_adapter_v2\"", "adapter_layers=1", "adapter_len=10"};
    llm = create(dir, v2, 3);
    if (llm) {
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        int filled = fill_from_golden(llm, ext);
        CHECKF(filled == 2 + 10 + 5, "%d tensors filled", filled); /* prompt, gate, biases, norms (same as base) */
        logits_of(llm, got);
        check_rel("v2 values written through the views", got, g_adapter);
        CHECK_OK(ext->save(llm, f_v2, &err), &err);
        /* ext->load of a LoRA file into a v2 instance: refused, the adapter stays */
        const char *lora_fresh[] = {"adapter_type=\"lora\"", "lora_rank=4"};
        bp_llm *tmp = create(dir, lora_fresh, 2);
        if (tmp) {
            const bp_llm_adapter_ext *e2 = tmp->get_extension(tmp, BP_LLM_ADAPTER_EXT_ID);
            CHECK_OK(e2->save(tmp, f_lora, &err), &err);
            lt_llm_destroy(tmp);
        }
        bp_status st = ext->load(llm, f_lora, &err);
        fprintf(stderr, "  %-52s %s\n", "ext->load of a LoRA file into a v2 instance", err.msg);
        CHECK(st == BP_ERR_INVALID && strstr(err.msg, "holds a lora adapter"));
        logits_of(llm, got2);
        CHECK(max_abs_diff(got, got2, (size_t)S * V) == 0.0);
        /* ext->load of the saved v2 file */
        CHECK_OK(ext->load(llm, f_v2, &err), &err);
        logits_of(llm, got2);
        CHECK(max_abs_diff(got, got2, (size_t)S * V) == 0.0);
        lt_llm_destroy(llm);
    }
    /* a new instance from the file: adapter_type from its metadata */
    char kv_adapter[4500];
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s\"", f_v2);
    const char *from_file[] = {kv_adapter};
    llm = create(dir, from_file, 1);
    if (llm) {
        logits_of(llm, got2);
        double d = max_abs_diff(got, got2, (size_t)S * V);
        fprintf(stderr, "  %-52s max |diff| %.1e\n", "v2 saved -> new instance", d);
        CHECK(d == 0.0);
        lt_llm_destroy(llm);
    }

    /* 4. the GGUF-layout model: load the HF-order file, save it back */
    llm = create(gguf, from_file, 1);
    if (llm) {
        logits_of(llm, got2);
        check_rel("v2 file on the GGUF (interleaved) model", got2, g_adapter);
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        CHECK_OK(ext->save(llm, f_v2_gguf, &err), &err);
        bp_st_file *f = NULL;
        CHECK_OK(bp_st_open(f_v2_gguf, &f, &err), &err);
        if (f) {
            CHECK(strcmp(bp_st_metadata(f, "row_order"), "hf_rotate_half") == 0);
            bp_tensor t;
            int64_t n = 0;
            const float *g = golden("model.layers.1.self_attn.q_proj.bias", &n);
            CHECK(bp_st_get(f, "model.layers.1.self_attn.q_proj.bias", &t, &err) == BP_OK && n == 64 &&
                  memcmp(t.data, g, 64 * sizeof(float)) == 0);
            bp_st_close(f);
        }
        lt_llm_destroy(llm);
    }

    /* LoRA: views, save with lora_alpha, reload (alpha from the file) */
    const char *lora[] = {"adapter_type=\"lora\"", "lora_rank=4", "lora_alpha=8"};
    llm = create(dir, lora, 3);
    if (llm) {
        const bp_llm_adapter_ext *ext = llm->get_extension(llm, BP_LLM_ADAPTER_EXT_ID);
        CHECK(fill_from_golden(llm, ext) == 8);
        logits_of(llm, got);
        check_rel("LoRA values written through the views", got, g_lora);
        CHECK_OK(ext->save(llm, f_lora, &err), &err);
        lt_llm_destroy(llm);
    }
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s\"", f_lora);
    const char *lora_file[] = {kv_adapter};
    llm = create(gguf, lora_file, 1); /* lora_alpha not set: 8 from the file, not the default 16 */
    if (llm) {
        logits_of(llm, got2);
        check_rel("LoRA file (alpha from metadata) on the GGUF model", got2, g_lora);
        lt_llm_destroy(llm);
    }
    const char *lora_file16[] = {kv_adapter, "lora_alpha=16"};
    llm = create(dir, lora_file16, 2);
    if (llm) {
        logits_of(llm, got2);
        CHECK(lt_rel_err(got2, g_lora, (size_t)S * V) > 1e-3); /* alpha set in the config wins */
        lt_llm_destroy(llm);
    }

    free(base);
    free(got);
    free(got2);
    lt_rmdir(dir);
    lt_env_close(&env);
    bp_st_close(gf);
    return TEST_RESULT();
}
