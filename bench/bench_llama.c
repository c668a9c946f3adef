/* bench_llama — prefill and decode speed of the llama plugin, through the
 * registry as the host drives it.
 *
 *   bench_llama MODEL [-t 1,2] [-p 128] [-n 64] [-r 3] [-k auto] [--check]
 *
 * For each thread count: create the llm (timed: "load"), then R rounds of
 *   prefill: one eval of P prompt tokens at pos 0 (logits of the last one),
 *   decode:  N evals of one token each (greedy: the argmax of the previous
 *            logits), continuing the KV cache;
 * and prints one line per thread count with the best round:
 *   llama threads=T load_s=L prefill_tok_s=A decode_tok_s=B rss_load_mb=X rss_gen_mb=Y file_mb=F
 * The prompt is token ids (i·7919 + 13) mod 20000 + 100, i < P, the same
 * ids llama_cpp_bench.py feeds llama.cpp. rss_* is VmRSS of this process
 * after loading and after the rounds (the mmap'd file counts once it is
 * touched). --check prints the top tokens after "The capital of France is"
 * (a sanity check of the logits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "batpipe/llm.h"
#include "batpipe/registry.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1.0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtod(line + 6, NULL);
    if (f) fclose(f);
    return kb / 1024.0;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static bp_llm *create(bp_registry *reg, const char *model, int32_t threads, int32_t n_ctx, const char *kernels,
                      const char *precision, bp_paramset **ps, bp_error *err) {
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_LLM, "llama");
    if (!comp) {
        snprintf(err->msg, sizeof err->msg, "the llama plugin was not found (set BATPIPE_PLUGIN_PATH)");
        return NULL;
    }
    char kv_model[4200], kv_threads[64], kv_ctx[64], kv_kernels[64], kv_precision[64];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", model);
    snprintf(kv_threads, sizeof kv_threads, "threads=%d", threads);
    snprintf(kv_ctx, sizeof kv_ctx, "n_ctx=%d", n_ctx);
    snprintf(kv_kernels, sizeof kv_kernels, "kernels=\"%s\"", kernels);
    snprintf(kv_precision, sizeof kv_precision, "precision=\"%s\"", precision);
    const char *kv[] = {kv_model, kv_threads, kv_ctx, kv_kernels, kv_precision};
    if (bp_paramset_from_strings(comp->desc, kv, 5, ps, err) != BP_OK) return NULL;
    void *inst = NULL;
    if (bp_registry_create(reg, comp, bp_paramset_params(*ps), NULL, &inst, err) != BP_OK) {
        bp_paramset_free(*ps);
        *ps = NULL;
        return NULL;
    }
    return inst;
}

static bp_status eval(bp_llm *llm, const int32_t *tokens, int32_t n, int32_t pos, float *logits, bp_error *err) {
    bp_llm_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.tokens = tokens;
    b.n_tokens = n;
    b.pos = pos;
    b.n_logits = 1;
    b.logits = logits;
    return llm->eval(llm, &b, err);
}

static void check(bp_llm *llm, int32_t vocab) {
    bp_error err = BP_ERROR_INIT;
    int32_t ids[64], n = 0;
    if (llm->tokenize(llm, "The capital of France is", 0, ids, 64, &n, &err) != BP_OK || n > 64) {
        printf("check: tokenize: %s\n", err.msg);
        return;
    }
    float *logits = malloc((size_t)vocab * sizeof *logits);
    if (!logits || eval(llm, ids, n, 0, logits, &err) != BP_OK) {
        printf("check: eval: %s\n", err.msg);
        free(logits);
        return;
    }
    double mean = 0.0, sd = 0.0;
    for (int32_t i = 0; i < vocab; i++) mean += logits[i];
    mean /= vocab;
    for (int32_t i = 0; i < vocab; i++) sd += (logits[i] - mean) * (logits[i] - mean);
    sd = sqrt(sd / vocab);
    printf("check: \"The capital of France is\" (%d tokens): logits mean %.3f sd %.3f; top 5:", n, mean, sd);
    for (int k = 0; k < 5; k++) {
        int32_t best = argmax(logits, vocab);
        char piece[64];
        int32_t len = 0;
        llm->token_piece(llm, best, piece, (int32_t)sizeof piece - 1, &len, &err);
        piece[len < 63 ? len : 63] = 0;
        printf(" %d '%s' (%.2f)", best, piece, logits[best]);
        logits[best] = -INFINITY;
    }
    printf("\n");
    free(logits);
}

int main(int argc, char **argv) {
    const char *model = NULL, *threads_arg = "1,2", *kernels = "auto", *precision = "fast";
    int32_t n_prompt = 128, n_gen = 64, rounds = 3, do_check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) threads_arg = argv[++i];
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) kernels = argv[++i];
        else if (strcmp(argv[i], "-P") == 0 && i + 1 < argc) precision = argv[++i];
        else if (strcmp(argv[i], "--check") == 0) do_check = 1;
        else if (argv[i][0] != '-' && !model) model = argv[i];
        else {
            fprintf(stderr, "usage: bench_llama MODEL [-t 1,2] [-p 128] [-n 64] [-r 3] [-k auto|avx512|avx2|generic] "
                            "[-P fast|exact] [--check]\n");
            return 2;
        }
    }
    if (!model || n_prompt < 1 || n_gen < 1 || rounds < 1) {
        fprintf(stderr, "bench_llama: need a model file and positive -p, -n, -r\n");
        return 2;
    }
    struct stat sb;
    double file_mb = stat(model, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0.0;
    bp_error err = BP_ERROR_INIT;
    bp_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.n_threads = 1;
    bp_registry *reg = NULL;
    if (bp_registry_new(&host, &reg, &err) != BP_OK || bp_registry_scan_default(reg, argv[0], &err) != BP_OK) {
        fprintf(stderr, "bench_llama: %s\n", err.msg);
        return 1;
    }
    int32_t *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    int32_t *gen = malloc((size_t)n_gen * sizeof *gen);
    if (!prompt || !gen) return 1;
    for (int32_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)(((int64_t)i * 7919 + 13) % 20000 + 100);
    int rc = 0;
    for (const char *p = threads_arg; *p;) {
        int32_t threads = (int32_t)strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
        if (threads < 1) break;
        bp_paramset *ps = NULL;
        double t0 = now_s();
        bp_llm *llm = create(reg, model, threads, n_prompt + n_gen + 8, kernels, precision, &ps, &err);
        double load_s = now_s() - t0;
        if (!llm) {
            fprintf(stderr, "bench_llama: %s\n", err.msg);
            rc = 1;
            break;
        }
        double rss_load = rss_mb();
        bp_llm_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        llm->info(llm, &info, &err);
        float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
        if (!logits) return 1;
        if (do_check) check(llm, info.vocab_size);
        double best_pf = 1e30, best_dec = 1e30;
        for (int32_t r = 0; r < rounds && rc == 0; r++) {
            double a = now_s();
            if (eval(llm, prompt, n_prompt, 0, logits, &err) != BP_OK) rc = 1;
            double pf = now_s() - a;
            int32_t tok = argmax(logits, info.vocab_size);
            a = now_s();
            for (int32_t i = 0; i < n_gen && rc == 0; i++) {
                gen[i] = tok;
                if (eval(llm, &tok, 1, n_prompt + i, logits, &err) != BP_OK) rc = 1;
                tok = argmax(logits, info.vocab_size);
            }
            double dec = now_s() - a;
            if (pf < best_pf) best_pf = pf;
            if (dec < best_dec) best_dec = dec;
        }
        if (rc) fprintf(stderr, "bench_llama: %s\n", err.msg);
        else
            printf("llama threads=%d load_s=%.3f prefill_tok_s=%.1f decode_tok_s=%.1f rss_load_mb=%.1f "
                   "rss_gen_mb=%.1f file_mb=%.1f prompt=%d gen=%d\n",
                   threads, load_s, n_prompt / best_pf, n_gen / best_dec, rss_load, rss_mb(), file_mb, n_prompt,
                   n_gen);
        fflush(stdout);
        free(logits);
        llm->destroy(llm);
        bp_paramset_free(ps);
    }
    free(prompt);
    free(gen);
    bp_registry_free(reg);
    return rc;
}
