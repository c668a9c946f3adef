/* batpipe — LLM configs: what `batpipe ask` reads (docs/config.md, "LLM
 * configs").
 *
 *   name = "smollm2";                  # optional
 *   description = "...";               # optional
 *   threads = 2;                       # optional, 0 = all cores
 *   llm = { type = "llama"; model = "../../models/SmolLM2-135M-Instruct.Q4_1.gguf"; ... };
 *   generate = { template = "chat"; max_tokens = 256; temperature = 0.0; ... };
 *
 * `llm` is validated against the llm plugin's declared parameters and
 * `generate` against the generation parameters below, with the strictness
 * of pipelines: unknown keys (with a did-you-mean), wrong types, values out
 * of range and missing required keys are errors naming file:line.
 * Overrides ("generate.temperature=0.7", "llm.n_ctx=1024") apply first. */
#ifndef BATPIPE_LLM_CONFIG_H
#define BATPIPE_LLM_CONFIG_H

#include <stdint.h>

#include "error.h"
#include "generate.h"
#include "llm.h"
#include "plugin.h"
#include "registry.h"

BP_EXTERN_C_BEGIN

typedef struct bp_llm_config bp_llm_config;

/* The `generate` section's parameters (for `batpipe plugins`-style help). */
BP_API const bp_descriptor *bp_llm_config_generate_descriptor(void);

/* Read, override and validate; finds the llm plugin in `reg` (borrowed,
 * must outlive the config). Creates nothing. */
BP_API bp_status bp_llm_config_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                                    bp_llm_config **out, bp_error *err);
BP_API void bp_llm_config_free(bp_llm_config *c);

/* Create the llm (loads the weights). The caller owns it: llm->destroy. */
BP_API bp_status bp_llm_config_create(bp_llm_config *c, bp_llm **out, bp_error *err);

/* Generation parameters from the config (stop strings borrowed from it). */
BP_API void bp_llm_config_generate_params(const bp_llm_config *c, bp_generate_params *out);
/* generate.template: "chat", "bat" or "none". */
BP_API const char *bp_llm_config_template(const bp_llm_config *c);
/* generate.system: the system message for the chat template, NULL = the template's default. */
BP_API const char *bp_llm_config_system(const bp_llm_config *c);
/* Whether to prepend BOS: generate.add_bos, or with "auto" the model's own
 * setting (GGUF tokenizer.ggml.add_bos_token, else 1 for SentencePiece
 * "llama" vocabularies and 0 for "gpt2"; HF tokenizer_config.json
 * add_bos_token, else 0). */
BP_API int32_t bp_llm_config_add_bos(const bp_llm_config *c);
/* The llm plugin's name and the config's file (for messages). */
BP_API const char *bp_llm_config_plugin(const bp_llm_config *c);
BP_API const char *bp_llm_config_path(const bp_llm_config *c);

BP_EXTERN_C_END

#endif /* BATPIPE_LLM_CONFIG_H */
