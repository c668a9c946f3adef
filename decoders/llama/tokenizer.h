/* llama plugin — tokenizers (internal API; not part of the batpipe ABI).
 *
 * Two algorithms, chosen by the model's metadata:
 *   - TOKENIZER_GPT2:  byte-level BPE (GGUF tokenizer.ggml.model = "gpt2";
 *     Hugging Face "BPE" with a ByteLevel pre-tokenizer), as SmolLM2 uses.
 *     Text is split by the GPT-2 pre-tokenizer pattern (hand-written, see
 *     tok_pretok.c), each piece's bytes are mapped to the byte-level
 *     alphabet and merged by merge rank.
 *   - TOKENIZER_LLAMA: SentencePiece BPE with scores (GGUF model = "llama"),
 *     as LLaMA-2 uses: spaces become U+2581 "▁", a "▁" is prepended when
 *     add_space_prefix is set, symbols merge by highest score, and bytes
 *     with no token fall back to <0xXX> tokens.
 * Special tokens (control and user-defined tokens, e.g. "<|im_start|>") are
 * matched in the text before either algorithm runs, when `parse_special`
 * is set.
 *
 * Ownership: a tokenizer owns copies of everything it needs; the bp_gguf
 * (or JSON file) it was created from may be closed right after creation.
 * Thread safety: immutable after creation; every function may be called
 * concurrently on one tokenizer. Functions never print. */
#ifndef BP_LLAMA_TOKENIZER_H
#define BP_LLAMA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/gguf.h"

typedef enum tokenizer_kind {
    TOKENIZER_GPT2 = 1,  /* byte-level BPE */
    TOKENIZER_LLAMA = 2  /* SentencePiece BPE with scores and byte fallback */
} tokenizer_kind;

/* Token types, the GGUF tokenizer.ggml.token_type values. */
typedef enum token_type {
    TOKEN_TYPE_NORMAL = 1,
    TOKEN_TYPE_UNKNOWN = 2,
    TOKEN_TYPE_CONTROL = 3,      /* <s>, </s>, <|im_start|>: special */
    TOKEN_TYPE_USER_DEFINED = 4, /* added tokens: matched in the text like specials */
    TOKEN_TYPE_UNUSED = 5,
    TOKEN_TYPE_BYTE = 6          /* <0xXX> (SentencePiece byte fallback) */
} token_type;

typedef struct tokenizer tokenizer;

/* From GGUF metadata: tokenizer.ggml.model ("gpt2" | "llama"),
 * tokenizer.ggml.tokens, tokenizer.ggml.merges (gpt2), tokenizer.ggml.scores
 * (llama), and optionally tokenizer.ggml.token_type, .bos_token_id,
 * .eos_token_id, .unknown_token_id, .padding_token_id, .add_bos_token,
 * .add_eos_token, .add_space_prefix, .pre and tokenizer.chat_template.
 * A missing required key is BP_ERR_FORMAT naming the file and the key;
 * another model type is BP_ERR_UNSUPPORTED. */
bp_status tokenizer_from_gguf(const bp_gguf *g, tokenizer **out, bp_error *err);

/* From a Hugging Face tokenizer.json (model type "BPE": byte-level when the
 * pre-tokenizer/decoder is ByteLevel, SentencePiece-style when byte_fallback
 * is set or the normalizer replaces " " with "▁"), plus optionally
 * tokenizer_config.json (may be NULL) for bos_token, eos_token,
 * add_bos_token and chat_template. Errors name the file and the key. */
bp_status tokenizer_from_hf_json(const char *tokenizer_json, const char *tokenizer_config_json, tokenizer **out,
                                 bp_error *err);

/* NULL is allowed. */
void tokenizer_free(tokenizer *t);

/* Text (UTF-8, `len` bytes; it may contain invalid UTF-8, which is
 * tokenized byte-wise) → ids. add_bos: prepend BOS (when the model has
 * one). parse_special: match control/user-defined token texts in the text
 * (otherwise "<|im_start|>" is tokenized as plain text). Writes up to `cap`
 * ids (ids may be NULL when cap is 0) and sets *n to the full count, so a
 * too-small buffer is detected by *n > cap (still BP_OK). */
bp_status tokenizer_encode(const tokenizer *t, const char *text, size_t len, int32_t add_bos, int32_t parse_special,
                           int32_t *ids, int32_t cap, int32_t *n, bp_error *err);

/* The bytes of one token as they appear in decoded text (byte-level
 * mapping undone, "▁" → " ", <0xXX> → that byte; control tokens give their
 * text, e.g. "<|im_end|>"). Not NUL-terminated; writes up to `cap` bytes
 * and sets *n to the full length. BP_ERR_INVALID for an id out of range. */
bp_status tokenizer_piece(const tokenizer *t, int32_t id, char *buf, int32_t cap, int32_t *n, bp_error *err);

tokenizer_kind tokenizer_get_kind(const tokenizer *t);
int32_t tokenizer_n_vocab(const tokenizer *t);
/* -1 when the model has none. */
int32_t tokenizer_bos(const tokenizer *t);
int32_t tokenizer_eos(const tokenizer *t);
/* The model's default for add_bos (tokenizer.ggml.add_bos_token; when the
 * key is absent: 1 for llama, 0 for gpt2, as llama.cpp does). */
int32_t tokenizer_add_bos_default(const tokenizer *t);
/* TOKEN_TYPE_* of `id`, 0 when out of range. */
int32_t tokenizer_token_type(const tokenizer *t, int32_t id);
/* 1 when `id` ends generation: EOS, and control tokens named like an end of
 * turn ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"). */
int32_t tokenizer_is_eog(const tokenizer *t, int32_t id);
/* The id of the token whose text is exactly `text`, or -1. */
int32_t tokenizer_find(const tokenizer *t, const char *text);
/* The raw text of token `id` as stored in the vocabulary (e.g. "Ġthe",
 * "▁the", "<0x0A>"), NUL-terminated, or NULL when out of range. Borrowed. */
const char *tokenizer_token_text(const tokenizer *t, int32_t id);
/* The chat template (Jinja text) or NULL. Borrowed, valid until free. */
const char *tokenizer_chat_template(const tokenizer *t);

#endif /* BP_LLAMA_TOKENIZER_H */
