/* Greedy 32-token continuations through the llama plugin and the host's
 * generator, against llama.cpp on the same file (tests/llm/continuation_refs.h,
 * made by make_continuation_refs.py). Needs models/SmolLM2-135M-Instruct.Q4_1.gguf
 * (scripts/fetch-model.sh); skips without it. */
#include <stdlib.h>
#include <string.h>

#include "batpipe/generate.h"
#include "batpipe/registry.h"
#include "bp_test.h"
#include "continuation_refs.h"

int main(void) {
    const char *src = getenv("BP_SOURCE_DIR");
    char model[1024];
    snprintf(model, sizeof model, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", src ? src : ".");
    FILE *f = fopen(model, "rb");
    if (!f) TEST_SKIP("%s is absent (scripts/fetch-model.sh downloads it)", model);
    fclose(f);
    if (getenv("BP_UNDER_VALGRIND")) TEST_SKIP("the 135M model is too slow under valgrind");

    bp_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.n_threads = 2;
    bp_registry *reg = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(&host, &reg, &err), &err);
    if (!reg) return TEST_RESULT();
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    bp_registry_set_threads(reg, 2);
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_LLM, "llama");
    CHECKF(c != NULL, "the llama plugin is not in BATPIPE_PLUGIN_PATH");
    char kv_model[1100];
    snprintf(kv_model, sizeof kv_model, "model=\"%s\"", model);
    const char *kv[] = {kv_model, "n_ctx=512"};
    bp_paramset *ps = NULL;
    bp_llm *llm = NULL;
    bp_generator *g = NULL;
    if (c) CHECK_OK(bp_paramset_from_strings(c->desc, kv, 2, &ps, &err), &err);
    void *inst = NULL;
    if (ps) CHECK_OK(bp_registry_create(reg, c, bp_paramset_params(ps), NULL, &inst, &err), &err);
    llm = inst;
    if (llm) CHECK_OK(bp_generator_new(llm, &g, &err), &err);
    for (size_t k = 0; g && k < sizeof cont_refs / sizeof cont_refs[0]; k++) {
        const cont_ref *r = &cont_refs[k];
        int32_t ids[512], n = 0;
        CHECK_OK(llm->tokenize(llm, r->prompt, 0, ids, 512, &n, &err), &err);
        CHECKF(n == r->n_prompt && memcmp(ids, r->prompt_ids, (size_t)n * sizeof *ids) == 0,
               "prompt %zu: our tokens differ from llama.cpp's", k);
        bp_generate_params p;
        bp_generate_params_init(&p);
        p.max_tokens = 32;
        bp_generate_result res;
        CHECK_OK(bp_generator_run(g, r->prompt_ids, r->n_prompt, &p, &res, &err), &err);
        int32_t same = 0;
        while (same < res.n_tokens && same < r->n_ids && res.tokens[same] == r->ids[same]) same++;
        CHECKF(same == r->n_ids && res.n_tokens == r->n_ids,
               "prompt %zu: %d of %d tokens match llama.cpp (first difference at step %d, where llama.cpp's top-2 "
               "margin was %.4f)", k, same, r->n_ids, same, same < r->n_ids ? (double)r->margins[same] : 0.0);
        CHECKF((res.text && strcmp(res.text, r->text) == 0) || same != r->n_ids, "prompt %zu: text \"%s\" vs \"%s\"", k,
               res.text ? res.text : "", r->text);
        fprintf(stderr, "prompt %zu: %d/%d tokens match (prefill %.3f s, decode %.3f s): %s\n", k, same, r->n_ids,
                res.prefill_seconds, res.decode_seconds, res.text ? res.text : "");
        bp_generate_result_free(&res);
    }
    bp_generator_free(g);
    if (llm) llm->destroy(llm);
    bp_paramset_free(ps);
    bp_registry_free(reg);
    return TEST_RESULT();
}
