/* batpipe — text generation on top of any bp_llm (see llm.h).
 *
 * A bp_generator drives one bp_llm: it remembers which tokens are in the
 * llm's KV cache, so a prompt that extends an earlier prompt + answer
 * (multi-turn chat, several questions about the same audio) only evaluates
 * the new tokens: the cache is cut back to the longest common prefix
 * (kv_truncate) and the rest is prefilled in batches of n_batch tokens.
 * Then it samples one token at a time (greedy, or temperature → top-k →
 * top-p, the order of Hugging Face transformers) with its own seeded PRNG
 * (xoshiro256**: the same seed, model and prompt give the same tokens on
 * every machine), stops at a stop token, a stop string, max_tokens or the
 * end of the context, and streams the text through a callback in pieces
 * that end on UTF-8 character boundaries (text that may be the start of a
 * stop string is held back until it is known not to be one).
 *
 * Ownership: the generator borrows the bp_llm (which must outlive it) and
 * owns its buffers. Thread rules: one thread at a time per generator (and
 * per llm). Library code: never prints. */
#ifndef BATPIPE_GENERATE_H
#define BATPIPE_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "llm.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

/* Streaming callback: `text` is `len` bytes of generated UTF-8 (not
 * NUL-terminated, valid during the call). Return non-zero to stop
 * generating (stop reason BP_STOP_CALLBACK). */
typedef int32_t (*bp_generate_text_fn)(void *user, const char *text, size_t len);

typedef enum bp_stop_reason {
    BP_STOP_NONE = 0,
    BP_STOP_EOS = 1,      /* the model's EOS token (llm info eos_id) */
    BP_STOP_TOKEN = 2,    /* one of stop_tokens */
    BP_STOP_STRING = 3,   /* one of stop_strings appeared in the text */
    BP_STOP_LENGTH = 4,   /* max_tokens generated */
    BP_STOP_CONTEXT = 5,  /* the context (n_ctx) is full */
    BP_STOP_CALLBACK = 6  /* the streaming callback asked to stop */
} bp_stop_reason;

typedef struct bp_generate_params {
    uint32_t struct_size;          /* sizeof(bp_generate_params) */
    int32_t max_tokens;            /* new tokens at most; <= 0: until the context is full */
    float temperature;             /* <= 0: greedy (argmax, lowest id on ties) */
    int32_t top_k;                 /* keep the k most likely tokens; <= 0: all */
    float top_p;                   /* keep the smallest set with probability >= top_p; >= 1: all */
    uint64_t seed;                 /* PRNG seed (sampling only) */
    int32_t stop_at_eos;           /* 1: stop at the llm's eos_id */
    const int32_t *stop_tokens;    /* more stop ids (e.g. an end-of-turn token); borrowed */
    int32_t n_stop_tokens;
    const char *const *stop_strings; /* stop when the text contains one; it is not part of the output */
    int32_t n_stop_strings;
    int32_t n_batch;               /* prefill batch size; <= 0: the whole prompt in one batch */
    const bp_tensor *prefix_embeds; /* optional host F32 [n_prefix, n_embd] before the prompt (no cache reuse) */
    bp_generate_text_fn on_text;   /* optional streaming callback */
    void *user;                    /* passed to on_text */
} bp_generate_params;

typedef struct bp_generate_result {
    uint32_t struct_size;  /* sizeof(bp_generate_result) */
    int32_t *tokens;       /* generated ids, the stop token included (owned; bp_generate_result_free) */
    int32_t n_tokens;
    char *text;            /* the generated text, NUL-terminated, without stop token/string (owned) */
    size_t text_len;
    int32_t stop_reason;   /* bp_stop_reason */
    int32_t n_prompt;      /* prompt tokens (prefix embeddings not counted) */
    int32_t n_reused;      /* of those, found in the KV cache and not evaluated again */
    double prefill_seconds;
    double decode_seconds; /* sampling and evaluating the generated tokens */
} bp_generate_result;

typedef struct bp_generator bp_generator;

/* Defaults: max_tokens 256, greedy (temperature 0, top_k 40, top_p 0.95
 * used once temperature > 0), seed 0, stop_at_eos 1, n_batch 512. */
BP_API void bp_generate_params_init(bp_generate_params *p);

/* `llm` is borrowed. Reads its info (vocabulary size, context). */
BP_API bp_status bp_generator_new(bp_llm *llm, bp_generator **out, bp_error *err);
/* NULL is allowed. Does not destroy the llm. */
BP_API void bp_generator_free(bp_generator *g);

/* Generate a continuation of `prompt` (ids, BOS included if wanted). The
 * result must be released with bp_generate_result_free, also on failure.
 * Errors: a prompt (plus prefix) longer than the context is BP_ERR_INVALID
 * "prompt of N tokens exceeds the model's context of M"; ids outside the
 * vocabulary are BP_ERR_INVALID; the llm's own errors pass through. The
 * sampled tokens so far stay in *res when the llm fails midway. */
BP_API bp_status bp_generator_run(bp_generator *g, const int32_t *prompt, int32_t n_prompt,
                                  const bp_generate_params *p, bp_generate_result *res, bp_error *err);

/* Forget the cache contents (the next run evaluates its whole prompt). */
BP_API void bp_generator_reset(bp_generator *g);

BP_API void bp_generate_result_free(bp_generate_result *res);

/* "eos", "stop token", ...: for messages. */
BP_API const char *bp_stop_reason_name(int32_t reason);

BP_EXTERN_C_END

#endif /* BATPIPE_GENERATE_H */
