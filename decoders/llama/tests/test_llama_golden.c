/* Golden test of the llama plugin against tests/data/golden/llama_tiny.safetensors
 * (golden README §4: float64 reference of a tiny LLaMA with GQA, its
 * LLaMA-Adapter v2 variant and its LoRA variant).
 *
 * The plugin is created through the registry, as a pipeline would:
 *   1. as a Hugging Face model (config.json from the README's config +
 *      model.safetensors, a copy of the base tensors): rotate-half RoPE;
 *   2. as a GGUF file with q/k rows permuted into Meta's interleaved order,
 *      as llama.cpp's converter writes them: interleaved RoPE;
 * each with the base model, the adapter file (adapter.1.* + biases, as the
 * README's variant) and the PEFT LoRA file (base_model.model. names,
 * α = 8), with every kernel set this CPU runs and 1 and 2 threads.
 * Rule: err = max|c − g| / max|g| ≤ 1e-4 for logits, logits_adapter,
 * logits_lora and the final hidden states (the plugin returns them after
 * the final norm, so the golden hidden_final goes through RMSNorm in double
 * first), with the exact F32 KV cache (kv_type = f32). The default F16
 * cache (llama.cpp's attention numerics) is checked too, at 2e-3, and
 * precision = "exact" (row steps in double; the same float products on
 * these F32 weights) at 1e-4 with all three models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/safetensors.h"
#include "bp_test.h"
#include "llama_test_util.h"

#define TOL 1e-4
/* f16 keeps 11 significant bits: q, k, v and the attention weights each
 * carry a relative rounding error up to 2^-11 ≈ 4.9e-4 (r.m.s. ~1.4e-4);
 * through 2 layers the logits move by a few 1e-4 of max|logit| here
 * (measured 2.5e-4). */
#define TOL_F16 2e-3
#define S 20 /* positions: 8 prefix + 12 tokens */
#define NP 8
#define NT 12
#define V 256
#define E 64

typedef struct golden {
    bp_st_file *f;
    lt_model m;
    int32_t tokens[NT];
    const float *prefix, *hidden_final, *logits, *logits_adapter, *logits_lora;
} golden;

static const float *get(const bp_st_file *f, const char *name) {
    bp_tensor t;
    bp_error err = BP_ERROR_INIT;
    if (bp_st_get(f, name, &t, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return t.data;
}

static int golden_open(golden *g, const char *path) {
    bp_error err = BP_ERROR_INIT;
    memset(g, 0, sizeof *g);
    if (bp_st_open(path, &g->f, &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    lt_model *m = &g->m;
    m->vocab = V, m->embd = E, m->layers = 2, m->heads = 4, m->kv_heads = 2, m->head_dim = 16, m->ff = 172;
    m->ctx = 64, m->eps = 1e-5f, m->theta = 10000.0f, m->tied = 0;
    CHECK(strcmp(bp_st_metadata(g->f, "hidden_size"), "64") == 0);
    CHECK(strcmp(bp_st_metadata(g->f, "rope_convention"), "hf_rotate_half") == 0);
    m->embed = (float *)get(g->f, "model.embed_tokens.weight");
    m->norm = (float *)get(g->f, "model.norm.weight");
    m->lm_head = (float *)get(g->f, "lm_head.weight");
    static struct lt_layer layers[2];
    m->layer = layers;
    char name[128];
    for (int l = 0; l < 2; l++) {
#define L(field, suffix) \
    (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), layers[l].field = (float *)get(g->f, name))
        L(wq, "self_attn.q_proj.weight");
        L(wk, "self_attn.k_proj.weight");
        L(wv, "self_attn.v_proj.weight");
        L(wo, "self_attn.o_proj.weight");
        L(wgate, "mlp.gate_proj.weight");
        L(wup, "mlp.up_proj.weight");
        L(wdown, "mlp.down_proj.weight");
        L(attn_norm, "input_layernorm.weight");
        L(ffn_norm, "post_attention_layernorm.weight");
#undef L
    }
    bp_tensor t;
    if (bp_st_get(g->f, "tokens", &t, &err) != BP_OK || t.dtype != BP_DTYPE_I64 || bp_tensor_numel(&t) != NT) return 1;
    for (int i = 0; i < NT; i++) g->tokens[i] = (int32_t)((const int64_t *)t.data)[i];
    g->prefix = get(g->f, "prefix_embeds");
    g->hidden_final = get(g->f, "hidden_final");
    g->logits = get(g->f, "logits");
    g->logits_adapter = get(g->f, "logits_adapter");
    g->logits_lora = get(g->f, "logits_lora");
    return !(g->prefix && g->hidden_final && g->logits && g->logits_adapter && g->logits_lora && m->embed);
}

/* Copy golden tensors whose names pass `keep` into a new file (optionally renamed with a prefix). */
static int write_subset(const golden *g, const char *path, int (*keep)(const char *), const char *prefix) {
    bp_st_writer *w = NULL;
    bp_error err = BP_ERROR_INIT;
    if (bp_st_writer_new(&w, &err) != BP_OK) return 1;
    int rc = 0;
    for (uint32_t i = 0; i < bp_st_count(g->f); i++) {
        const char *name = bp_st_name(g->f, i);
        if (!keep(name)) continue;
        bp_tensor t;
        char full[256];
        snprintf(full, sizeof full, "%s%s", prefix, name);
        rc |= bp_st_get_index(g->f, i, &t, &err) != BP_OK || bp_st_writer_add(w, full, &t, &err) != BP_OK;
    }
    if (!rc) rc = bp_st_writer_write(w, path, &err) != BP_OK;
    if (rc) fprintf(stderr, "write_subset %s: %s\n", path, err.msg);
    bp_st_writer_free(w);
    return rc;
}

static int is_adapter_v2(const char *n) { return strncmp(n, "adapter.", 8) == 0 || strstr(n, ".bias") != NULL; }
static int is_lora(const char *n) { return strstr(n, ".lora_") != NULL; }

/* RMSNorm(hidden_final) · model.norm.weight in double: what the plugin's hidden output holds. */
static void normed_hidden(const golden *g, double *out) {
    for (int t = 0; t < S; t++) {
        double ss = 0.0;
        for (int i = 0; i < E; i++) ss += (double)g->hidden_final[t * E + i] * g->hidden_final[t * E + i];
        const double r = 1.0 / sqrt(ss / E + 1e-5);
        for (int i = 0; i < E; i++) out[t * E + i] = (double)g->m.norm[i] * g->hidden_final[t * E + i] * r;
    }
}

static void run_case(lt_env *env, const golden *g, const char *model, const char *kernels, const char *adapter,
                     const char *type, const float *want, const char *label, const char *cache, double tol) {
    bp_error err = BP_ERROR_INIT;
    char kv_model[4400], kv_kernels[64], kv_adapter[4400], kv_type[64], kv_cache[64];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", model);
    snprintf(kv_kernels, sizeof kv_kernels, "kernels=\"%s\"", kernels);
    snprintf(kv_adapter, sizeof kv_adapter, "adapter=\"%s\"", adapter ? adapter : "");
    snprintf(kv_type, sizeof kv_type, "adapter_type=\"%s\"", type);
    /* cache: "f32" or "f16" (kv_type), or "exact" (precision = "exact", which keeps an F32 cache) */
    if (strcmp(cache, "exact") == 0) snprintf(kv_cache, sizeof kv_cache, "precision=\"exact\"");
    else snprintf(kv_cache, sizeof kv_cache, "kv_type=\"%s\"", cache);
    const char *kv[] = {kv_model, kv_kernels, kv_adapter, kv_type, "lora_alpha=8.0", kv_cache};
    bp_llm *llm = lt_llm_create(env, kv, 6, &err);
    if (!llm) {
        fprintf(stderr, "%s: create failed: %s\n", label, err.msg);
        bp_test_failures++;
        return;
    }
    bp_llm_info info = {sizeof info, {0}, 0, 0, 0, 0, 0, 0, NULL};
    CHECK_OK(llm->info(llm, &info, &err), &err);
    CHECK(info.vocab_size == V && info.n_embd == E && info.n_layer == 2);
    float *logits = malloc(sizeof(float) * S * V), *hidden = malloc(sizeof(float) * S * E);
    double *want_h = malloc(sizeof(double) * S * E);
    CHECK_OK(lt_eval(llm, g->prefix, NP, E, g->tokens, NT, 0, S, logits, hidden, &err), &err);
    double e_l = lt_rel_err(logits, want, S * V);
    CHECKF(e_l <= tol, "%s: logits err %g", label, e_l);
    if (want == g->logits) { /* the golden hidden states are the base model's */
        normed_hidden(g, want_h);
        double e_h = lt_rel_err_d(hidden, want_h, S * E);
        fprintf(stderr, "  %-40s logits err %.2e  hidden err %.2e\n", label, e_l, e_h);
        CHECKF(e_h <= tol, "%s: hidden err %g", label, e_h);
    } else {
        fprintf(stderr, "  %-40s logits err %.2e\n", label, e_l);
    }
    free(logits);
    free(hidden);
    free(want_h);
    lt_llm_destroy(llm);
}

int main(void) {
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char path[4096], dir[4096], gguf[4400], adapter[4400], lora[4400];
    snprintf(path, sizeof path, "%s/golden/llama_tiny.safetensors", data);
    golden g;
    if (golden_open(&g, path) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    if (lt_tmpdir(dir, sizeof dir) != 0) return 1;
    snprintf(gguf, sizeof gguf, "%s/llama_tiny.gguf", dir);
    snprintf(adapter, sizeof adapter, "%s/adapter_v2.safetensors", dir);
    snprintf(lora, sizeof lora, "%s/adapter_lora.safetensors", dir);
    CHECK(lt_model_write_hf(&g.m, dir, BP_DTYPE_F32) == 0);
    CHECK(lt_model_write_gguf(&g.m, gguf, BP_DTYPE_F32, "llama") == 0);
    CHECK(write_subset(&g, adapter, is_adapter_v2, "") == 0);
    CHECK(write_subset(&g, lora, is_lora, "base_model.model.") == 0);

    const int under_valgrind = getenv("BP_UNDER_VALGRIND") != NULL;
    static const char *const kernel_sets[] = {"generic", "avx2", "avx512"};
    for (int threads = 1; threads <= 2; threads++) {
        lt_env env;
        if (lt_env_open(&env, threads) != 0) return 1;
        for (int k = 0; k < 3; k++) {
            /* kernels this CPU lacks: skip (the plugin reports BP_ERR_UNSUPPORTED) */
            bp_error err = BP_ERROR_INIT;
            char kv_model[4400], kv_k[64];
            snprintf(kv_model, sizeof kv_model, "model=\"%s\"", dir);
            snprintf(kv_k, sizeof kv_k, "kernels=\"%s\"", kernel_sets[k]);
            const char *kv[] = {kv_model, kv_k};
            bp_llm *probe = lt_llm_create(&env, kv, 2, &err);
            if (!probe) {
                fprintf(stderr, "  kernels %s: not on this CPU (%s)\n", kernel_sets[k], err.msg);
                continue;
            }
            lt_llm_destroy(probe);
            if (under_valgrind && k == 0 && threads == 2) continue;
            char label[128];
            static const char *const srcs[2] = {"hf", "gguf"};
            for (int src = 0; src < 2; src++) {
                const char *model = src ? gguf : dir;
                snprintf(label, sizeof label, "%s %s %dt base", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], NULL, "none", g.logits, label, "f32", TOL);
                snprintf(label, sizeof label, "%s %s %dt llama_adapter_v2", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], adapter, "llama_adapter_v2", g.logits_adapter, label, "f32",
                         TOL);
                snprintf(label, sizeof label, "%s %s %dt lora", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], lora, "lora", g.logits_lora, label, "f32", TOL);
                /* the F16 cache (the default): q, k, v and the attention weights in f16 */
                snprintf(label, sizeof label, "%s %s %dt base, f16 KV cache", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], NULL, "none", g.logits, label, "f16", TOL_F16);
                /* precision = "exact" */
                snprintf(label, sizeof label, "%s %s %dt base, exact", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], NULL, "none", g.logits, label, "exact", TOL);
                snprintf(label, sizeof label, "%s %s %dt llama_adapter_v2, exact", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], adapter, "llama_adapter_v2", g.logits_adapter, label,
                         "exact", TOL);
                snprintf(label, sizeof label, "%s %s %dt lora, exact", srcs[src], kernel_sets[k], threads);
                run_case(&env, &g, model, kernel_sets[k], lora, "lora", g.logits_lora, label, "exact", TOL);
            }
        }
        lt_env_close(&env);
    }
    lt_rmdir(dir);
    bp_st_close(g.f);
    return TEST_RESULT();
}
