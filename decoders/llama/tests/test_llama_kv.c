/* KV cache consistency of the llama plugin: the logits of a sequence do not
 * depend on how it is cut into evals. On a random small model (F32 and
 * Q4_1 GGUF; F32 and F16 KV cache), the logits of one eval of [3 prefix
 * embeddings; 8 tokens] are
 * compared with:
 *   - prefill of the prefix and 3 tokens, then one token per eval (decode);
 *   - the prefix alone, then all tokens;
 *   - chunked prefill (n_batch = 4);
 *   - 2 threads;
 *   - rewinding: eval again from pos 8 (pos < cached length replaces the
 *     tail), and kv_truncate(6) followed by the rest;
 *   - a changed token at position 8, against a fresh eval of that sequence.
 * Each position is computed by the same kernels on the same cached values,
 * so the results agree to float rounding of the reduction order (tol 1e-6
 * relative; in practice they are identical). With precision = "exact" on
 * the Q4_1 model they must be identical: its kernels accumulate every
 * (weight row, position) pair in the same order in decode and in batches,
 * whatever the thread split. Also: hidden states without logits, a pos
 * beyond the cache is BP_ERR_INVALID, info fields. */
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
#define TOL 1e-6

static int32_t V, E;
static float prefix[NP * 64];
static int32_t tokens[NT] = {5, 250, 17, 42, 42, 100, 3, 200};

static const char *kv_cache = "kv_type=\"f32\""; /* or precision = "exact" */
static double tol = TOL;

static bp_llm *create(lt_env *env, const char *path, const char *extra) {
    bp_error err = BP_ERROR_INIT;
    char kv_model[4400];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", path);
    const char *kv[] = {kv_model, extra ? extra : "n_ctx=32", kv_cache};
    bp_llm *llm = lt_llm_create(env, kv, 3, &err);
    if (!llm) {
        fprintf(stderr, "create %s: %s\n", path, err.msg);
        bp_test_failures++;
    }
    return llm;
}

static void compare_rows(const char *what, const float *got, const float *all, int32_t first, int32_t n) {
    const double e = lt_rel_err(got, all + (size_t)first * V, (size_t)n * V);
    fprintf(stderr, "    %-44s err %.2e\n", what, e);
    CHECKF(e <= tol, "%s: %g", what, e);
}

static void run_model(lt_env *env1, lt_env *env2, const char *path) {
    bp_error err = BP_ERROR_INIT;
    float *all = malloc(sizeof(float) * N * V), *got = malloc(sizeof(float) * N * V);
    float *hid = malloc(sizeof(float) * N * E), *hid2 = malloc(sizeof(float) * N * E);
    bp_llm *llm = create(env1, path, NULL);
    if (!llm) return;
    bp_llm_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_OK(llm->info(llm, &info, &err), &err);
    CHECK(info.n_ctx == 32 && info.vocab_size == V && info.n_embd == E && strcmp(info.arch, "llama") == 0);
    CHECK(info.bos_id == 1 && info.eos_id == 2);
    CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, N, all, hid, &err), &err);

    /* prefill + decode one by one */
    CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, 3, 0, NP + 3, got, NULL, &err), &err);
    for (int i = 3; i < NT; i++)
        CHECK_OK(lt_eval(llm, NULL, 0, E, tokens + i, 1, NP + i, 1, got + (size_t)(NP + i) * V, NULL, &err), &err);
    compare_rows("prefill 6 + decode 5", got, all, 0, N);

    /* prefix alone, then the tokens */
    CHECK_OK(lt_eval(llm, prefix, NP, E, NULL, 0, 0, 0, NULL, NULL, &err), &err);
    CHECK_OK(lt_eval(llm, NULL, 0, E, tokens, NT, NP, NT, got, NULL, &err), &err);
    compare_rows("prefix, then tokens", got, all + (size_t)NP * V, 0, NT);

    /* rewind: pos 8 < 11 cached replaces the tail */
    CHECK_OK(lt_eval(llm, NULL, 0, E, tokens + 5, 3, NP + 5, 3, got, NULL, &err), &err);
    compare_rows("re-eval from pos 8", got, all, NP + 5, 3);
    /* kv_truncate, then the rest */
    CHECK_OK(llm->kv_truncate(llm, 6, &err), &err);
    CHECK_OK(lt_eval(llm, NULL, 0, E, tokens + 3, NT - 3, 6, NT - 3, got, NULL, &err), &err);
    compare_rows("kv_truncate(6) + rest", got, all, 6, NT - 3);
    /* a gap is an error */
    CHECK_OK(llm->kv_truncate(llm, 4, &err), &err);
    bp_status st = lt_eval(llm, NULL, 0, E, tokens, 1, 9, 1, got, NULL, &err);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "pos = 9") != NULL);
    CHECK(llm->kv_truncate(llm, -1, &err) == BP_ERR_INVALID);

    /* a different token at position 8 vs a fresh eval of that sequence */
    int32_t alt[NT];
    memcpy(alt, tokens, sizeof alt);
    alt[5] = 77;
    CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, N, got, NULL, &err), &err);
    CHECK_OK(lt_eval(llm, NULL, 0, E, alt + 5, 3, NP + 5, 3, got, NULL, &err), &err);
    float *fresh = malloc(sizeof(float) * N * V);
    CHECK_OK(lt_eval(llm, prefix, NP, E, alt, NT, 0, N, fresh, NULL, &err), &err);
    compare_rows("changed token at 8 vs fresh eval", got, fresh, NP + 5, 3);
    CHECK(lt_rel_err(fresh + (size_t)(NP + 5) * V, all + (size_t)(NP + 5) * V, V) > 1e-3); /* it did change */
    free(fresh);

    /* hidden states only */
    CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, 4, NULL, hid2, &err), &err);
    CHECK(lt_rel_err(hid2, hid + (size_t)(N - 4) * E, 4 * (size_t)E) <= tol);
    lt_llm_destroy(llm);

    /* chunked prefill */
    llm = create(env1, path, "n_batch=4");
    if (llm) {
        CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, N, got, NULL, &err), &err);
        compare_rows("n_batch = 4", got, all, 0, N);
        lt_llm_destroy(llm);
    }
    /* two threads */
    llm = create(env2, path, NULL);
    if (llm) {
        CHECK_OK(lt_eval(llm, prefix, NP, E, tokens, NT, 0, N, got, NULL, &err), &err);
        compare_rows("2 threads", got, all, 0, N);
        lt_llm_destroy(llm);
    }
    free(all);
    free(got);
    free(hid);
    free(hid2);
}

int main(void) {
    lt_model m;
    memset(&m, 0, sizeof m);
    m.vocab = 256, m.embd = 64, m.layers = 2, m.heads = 4, m.kv_heads = 2, m.head_dim = 16, m.ff = 128;
    m.ctx = 64, m.eps = 1e-5f, m.theta = 10000.0f, m.tied = 1;
    lt_model_random(&m, 7);
    V = m.vocab;
    E = m.embd;
    for (int i = 0; i < NP * E; i++) prefix[i] = (float)cos(0.11 * i) * 0.8f;
    char dir[4096], path[4400];
    if (lt_tmpdir(dir, sizeof dir) != 0) return 1;
    lt_env env1, env2;
    if (lt_env_open(&env1, 1) != 0 || lt_env_open(&env2, 2) != 0) return 1;
    static const struct {
        int32_t dtype;
        const char *name;
    } types[] = {{BP_DTYPE_F32, "F32"}, {BP_DTYPE_Q4_1, "Q4_1"}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/kv_%s.gguf", dir, types[i].name);
        CHECK(lt_model_write_gguf(&m, path, types[i].dtype, "llama") == 0);
        static const char *const modes[3] = {"kv_type=\"f32\"", "kv_type=\"f16\"", "precision=\"exact\""};
        for (int mode = 0; mode < 3; mode++) {
            kv_cache = modes[mode];
            tol = mode == 2 && types[i].dtype == BP_DTYPE_Q4_1 ? 0.0 : TOL;
            fprintf(stderr, "  %s (tied output head), %s\n", types[i].name, kv_cache);
            run_model(&env1, &env2, path);
        }
    }
    lt_env_close(&env1);
    lt_env_close(&env2);
    lt_rmdir(dir);
    lt_model_free(&m);
    return TEST_RESULT();
}
