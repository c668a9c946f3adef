/* The llama plugin on every weight type it computes on: a random small
 * model (seeded; sizes chosen so that rows hold an odd number of 32-blocks
 * and tile remainders occur) is written as GGUF with its 2-D weights in
 * F32, F16, BF16, Q8_0, Q4_0 and Q4_1 (quantized with bp_quantize_row,
 * q/k rows in Meta's order as llama.cpp writes them), and as Hugging Face
 * safetensors in F16 and BF16. For each file:
 *
 *  1. logits vs a float64 reference forward on the weights the file holds
 *     (dequantized with bp_dequantize_row): this isolates the kernels.
 *     Float types: 1e-4 (float32 accumulation only). Quantized types: the
 *     plugin also quantizes the activations to 8 bits per block of 32 (as
 *     llama.cpp does), a rounding error of at most d/2 = max|x|/254 per
 *     element, ~0.4 % of a block's largest value in r.m.s. for x of
 *     Gaussian shape; through 14 projections and the output head of this
 *     2-layer model the worst logit moves by ~1 % of max|logit| (measured
 *     1.1–1.3 %), so the bound is 3e-2.
 *  2. every kernel set this CPU runs (generic C, AVX2, AVX-512) against
 *     the generic one: float types 2e-5 (only the order of float additions
 *     differs). Quantized types: the same, except that a last-bit
 *     difference can move an activation across a rounding boundary of its
 *     8-bit quantization (one step, max|x|/127, for one value), which moves
 *     the logits by up to ~1e-2 here; bound 3e-2. The kernels themselves are
 *     compared exactly on shared inputs in test_llama_kernels.
 *  3. the quantized model vs the F32 model, the cost of the weight type:
 *     Q8_0 (step max|w|/127 per block, ~0.6 % r.m.s. per weight): 5e-2;
 *     Q4_0/Q4_1 (step ~max|w|/7.5, ~9 % r.m.s.): 0.35. Printed, and
 *     checked with these bounds as a gross-error guard.
 *  4. precision = "exact" (F32 activations against the weights dequantized
 *     on the fly, F32 KV cache, row steps in double): every type against
 *     the same float64 reference within 1e-5 (float accumulation only, no
 *     activation rounding: measured 1.5–3e-7, like the float types, where
 *     fast Q8_0/Q4_0/Q4_1 are at 1.2–1.4e-2), every kernel set against the
 *     generic exact run within 2e-5.
 * Prefill of 11 positions (3 prefix + 8 tokens) with 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/tensor.h"
#include "bp_test.h"
#include "llama_test_util.h"

#define NP 3
#define NT 8
#define N (NP + NT)

static void make_model(lt_model *m) {
    memset(m, 0, sizeof *m);
    m->vocab = 256, m->embd = 96, m->layers = 2, m->heads = 4, m->kv_heads = 2, m->head_dim = 24, m->ff = 160;
    m->ctx = 64, m->eps = 1e-5f, m->theta = 10000.0f, m->tied = 0;
    lt_model_random(m, 20240611);
}

static float *run(lt_env *env, const char *path, const char *kernels, const char *precision, const float *prefix,
                  const int32_t *tokens, int32_t vocab, int32_t embd) {
    bp_error err = BP_ERROR_INIT;
    char kv_model[4400], kv_k[64], kv_p[64];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", path);
    snprintf(kv_k, sizeof kv_k, "kernels=\"%s\"", kernels);
    snprintf(kv_p, sizeof kv_p, "precision=\"%s\"", precision);
    const char *kv[] = {kv_model, kv_k, "n_batch=7", "kv_type=\"f32\"", kv_p};
    bp_llm *llm = lt_llm_create(env, kv, 5, &err);
    if (!llm) {
        if (err.code != BP_ERR_UNSUPPORTED) {
            fprintf(stderr, "%s (%s): %s\n", path, kernels, err.msg);
            bp_test_failures++;
        }
        return NULL;
    }
    float *logits = malloc(sizeof(float) * N * (size_t)vocab);
    CHECK_OK(lt_eval(llm, prefix, NP, embd, tokens, NT, 0, N, logits, NULL, &err), &err);
    lt_llm_destroy(llm);
    return logits;
}

int main(void) {
    lt_model base;
    make_model(&base);
    const int32_t V = base.vocab, E = base.embd;
    float prefix[NP * 96];
    int32_t tokens[NT] = {0, 255, 17, 42, 42, 100, 3, 200};
    for (int i = 0; i < NP * E; i++) prefix[i] = (float)sin(0.37 * i + 0.1) * (i % 7 == 0 ? 2.0f : 0.7f);
    double *ref = malloc(sizeof(double) * N * (size_t)V), *ref32 = malloc(sizeof(double) * N * (size_t)V);
    lt_model_reference(&base, prefix, NP, tokens, NT, ref32);
    char dir[4096];
    if (lt_tmpdir(dir, sizeof dir) != 0) return 1;

    static const struct {
        int32_t dtype;
        const char *name;
        double tol_kernel, tol_vs_f32;
        int hf;
    } types[] = {
        {BP_DTYPE_F32, "F32", 1e-4, 1e-4, 0},      {BP_DTYPE_F16, "F16", 1e-4, 5e-3, 0},
        {BP_DTYPE_BF16, "BF16", 1e-4, 3e-2, 0},    {BP_DTYPE_Q8_0, "Q8_0", 3e-2, 5e-2, 0},
        {BP_DTYPE_Q4_0, "Q4_0", 3e-2, 0.35, 0},    {BP_DTYPE_Q4_1, "Q4_1", 3e-2, 0.35, 0},
        {BP_DTYPE_F16, "F16 (HF)", 1e-4, 5e-3, 1}, {BP_DTYPE_BF16, "BF16 (HF)", 1e-4, 3e-2, 1},
    };
    static const char *const kernel_sets[] = {"generic", "avx2", "avx512"};
    for (int threads = 1; threads <= 2; threads++) {
        lt_env env;
        if (lt_env_open(&env, threads) != 0) return 1;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            char path[4400];
            if (types[ti].hf) {
                snprintf(path, sizeof path, "%s", dir);
                CHECK(lt_model_write_hf(&base, dir, types[ti].dtype) == 0);
            } else {
                snprintf(path, sizeof path, "%s/tiny_%s.gguf", dir, types[ti].name);
                CHECK(lt_model_write_gguf(&base, path, types[ti].dtype, "llama") == 0);
            }
            lt_model rounded;
            make_model(&rounded);
            lt_model_round_to(&rounded, types[ti].dtype, types[ti].hf);
            lt_model_reference(&rounded, prefix, NP, tokens, NT, ref);
            lt_model_free(&rounded);
            for (int exact = 0; exact <= 1; exact++) {
                const char *prec = exact ? "exact" : "fast";
                const double tol_kernel = exact ? 1e-5 : types[ti].tol_kernel;
                float *generic = NULL;
                for (int k = 0; k < 3; k++) {
                    float *logits = run(&env, path, kernel_sets[k], prec, prefix, tokens, V, E);
                    if (!logits) continue;
                    const double e_ref = lt_rel_err_d(logits, ref, (size_t)N * V);
                    const double e_f32 = lt_rel_err_d(logits, ref32, (size_t)N * V);
                    double e_gen = 0.0;
                    if (!generic) generic = logits;
                    else e_gen = lt_rel_err(logits, generic, (size_t)N * V);
                    fprintf(stderr,
                            "  %dt %-9s %-5s %-7s vs reference %.2e (tol %.0e)  vs generic %.2e  vs F32 model %.2e\n",
                            threads, types[ti].name, prec, kernel_sets[k], e_ref, tol_kernel, e_gen, e_f32);
                    CHECKF(e_ref <= tol_kernel, "%s %s %s: %g", types[ti].name, prec, kernel_sets[k], e_ref);
                    const double tol_gen = tol_kernel > 1e-3 ? tol_kernel : 2e-5;
                    CHECKF(e_gen <= tol_gen, "%s %s %s vs generic: %g", types[ti].name, prec, kernel_sets[k], e_gen);
                    CHECKF(e_f32 <= types[ti].tol_vs_f32, "%s %s %s vs F32: %g", types[ti].name, prec,
                           kernel_sets[k], e_f32);
                    if (logits != generic) free(logits);
                }
                free(generic);
            }
        }
        lt_env_close(&env);
    }
    lt_rmdir(dir);
    free(ref);
    free(ref32);
    lt_model_free(&base);
    return TEST_RESULT();
}
