/* batpipe — LLM backends (kind "batpipe.llm/1"): tokenizer + decoder.
 *
 * A bp_llm owns its weights, its tokenizer and one sequence's KV cache.
 * Generation (sampling, stop tokens, streaming) is done by the host on top of
 * `eval`; the plugin computes logits. Thread rules: one thread at a time. */
#ifndef BATPIPE_LLM_H
#define BATPIPE_LLM_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef struct bp_llm_info {
    uint32_t struct_size;      /* sizeof(bp_llm_info) */
    char arch[32];             /* "llama" */
    int32_t vocab_size;
    int32_t n_embd;            /* width of token and prefix embeddings */
    int32_t n_layer;
    int32_t n_ctx;             /* maximum sequence length (prefix + tokens) */
    int32_t bos_id;            /* -1 if none */
    int32_t eos_id;            /* -1 if none */
    const char *chat_template; /* the model's template (Jinja text) or NULL; owned by the llm */
} bp_llm_info;

/* One evaluation: optional prefix embeddings, then tokens, appended to the
 * KV cache at position `pos` (0 = start a new sequence). */
typedef struct bp_llm_batch {
    uint32_t struct_size;           /* sizeof(bp_llm_batch) */
    const bp_tensor *prefix_embeds; /* optional host F32 [n_prefix, n_embd], placed before the tokens */
    const int32_t *tokens;          /* [n_tokens] */
    int32_t n_tokens;
    int32_t pos;                    /* position of the first element of this batch */
    int32_t n_logits;               /* logits wanted for the last n positions (1 for generation) */
    float *logits;                  /* host [n_logits, vocab_size], caller-owned */
    float *hidden;                  /* optional host [n_logits, n_embd] final hidden states (after the norm) */
} bp_llm_batch;

typedef struct bp_llm bp_llm;

struct bp_llm {
    uint32_t struct_size; /* sizeof(bp_llm) as compiled by the plugin */
    void *self;

    bp_status (*info)(bp_llm *llm, bp_llm_info *out, bp_error *err);
    /* Text → ids. `add_bos`: prepend BOS. Writes up to `cap` ids and sets *n
     * to the full count (so a too-small buffer can be detected). */
    bp_status (*tokenize)(bp_llm *llm, const char *text, int32_t add_bos, int32_t *ids, int32_t cap, int32_t *n,
                          bp_error *err);
    /* The bytes of one token (not NUL-terminated); *n is the full length. */
    bp_status (*token_piece)(bp_llm *llm, int32_t id, char *buf, int32_t cap, int32_t *n, bp_error *err);
    /* Run the decoder; a sequence longer than n_ctx is BP_ERR_INVALID. */
    bp_status (*eval)(bp_llm *llm, const bp_llm_batch *batch, bp_error *err);
    /* Keep the first n_keep positions of the KV cache, drop the rest. */
    bp_status (*kv_truncate)(bp_llm *llm, int32_t n_keep, bp_error *err);
    /* Optional extensions (adapters, training) by versioned id, or NULL. */
    const void *(*get_extension)(bp_llm *llm, const char *id);
    void (*destroy)(bp_llm *llm);
};

BP_EXTERN_C_END

#endif /* BATPIPE_LLM_H */
