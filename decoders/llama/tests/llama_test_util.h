/* Helpers for the llama plugin tests: a small GGUF writer, tiny model
 * files (GGUF and Hugging Face layout), the plugin through the registry,
 * and the golden comparison rule. */
#ifndef LLAMA_TEST_UTIL_H
#define LLAMA_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/llm.h"
#include "batpipe/registry.h"

/* --- GGUF writer (version 3, alignment 32) ---------------------------------- */

typedef struct lt_gguf lt_gguf;

lt_gguf *lt_gguf_new(void);
void lt_gguf_free(lt_gguf *g);
void lt_gguf_str(lt_gguf *g, const char *key, const char *value);
void lt_gguf_u32(lt_gguf *g, const char *key, uint32_t value);
void lt_gguf_f32(lt_gguf *g, const char *key, float value);
void lt_gguf_bool(lt_gguf *g, const char *key, int value);
void lt_gguf_str_array(lt_gguf *g, const char *key, const char *const *values, uint64_t n);
void lt_gguf_f32_array(lt_gguf *g, const char *key, const float *values, uint64_t n);
void lt_gguf_i32_array(lt_gguf *g, const char *key, const int32_t *values, uint64_t n);
/* A tensor in ggml order (ne[0] fastest); data is copied. */
void lt_gguf_tensor(lt_gguf *g, const char *name, uint32_t ggml_type, uint32_t n_dims, const uint64_t *ne,
                    const void *data, size_t nbytes);
/* 0 on success. */
int lt_gguf_write(const lt_gguf *g, const char *path);

/* A byte-level (gpt2) vocabulary of n >= 256 tokens (bytes first, then
 * "<extra_i>"), no merges: enough for the plugin's tokenizer to load. */
void lt_gguf_gpt2_vocab(lt_gguf *g, int32_t n);

/* --- a tiny LLaMA in memory ----------------------------------------------------- */

typedef struct lt_model {
    int32_t vocab, embd, layers, heads, kv_heads, head_dim, ff, ctx;
    float eps, theta;
    int tied;
    /* F32 weights, HF row order ([out, in], row-major) */
    float *embed, *norm, *lm_head; /* lm_head NULL when tied */
    struct lt_layer {
        float *wq, *wk, *wv, *wo, *wgate, *wup, *wdown, *attn_norm, *ffn_norm;
    } *layer;
} lt_model;

/* Random model (seeded): weights ~ N(0, 1/sqrt(in)), norms ~ 1 ± 0.1. */
void lt_model_random(lt_model *m, uint64_t seed);
void lt_model_free(lt_model *m);
/* Write as GGUF with 2-D weights stored as `dtype` (a bp_dtype: F32, F16,
 * BF16, Q8_0, Q4_0, Q4_1; norms stay F32), q/k rows permuted to Meta's
 * interleaved order as llama.cpp's converter does. `arch` is written as
 * general.architecture. 0 on success. */
int lt_model_write_gguf(const lt_model *m, const char *path, int32_t dtype, const char *arch);
/* The same with defects for error tests. */
typedef struct lt_gguf_opts {
    const char *arch;        /* NULL: "llama" */
    const char *drop_tensor; /* leave this tensor out */
    const char *odd_tensor;  /* write this tensor with ggml type odd_type (6 = Q5_0 or 28 = F64) */
    uint32_t odd_type;
    int no_tokenizer;        /* no tokenizer.ggml.* metadata */
} lt_gguf_opts;
int lt_model_write_gguf_opts(const lt_model *m, const char *path, int32_t dtype, const lt_gguf_opts *o);
/* Write config.json + model.safetensors (every tensor as dtype: F32, F16
 * or BF16) into dir. 0 on success. */
int lt_model_write_hf(const lt_model *m, const char *dir, int32_t dtype);
/* Only config.json (to make it disagree with the tensors). */
int lt_model_write_hf_config(const lt_model *m, const char *dir);
/* Round each 2-D weight (and the norms when `norms`) through `dtype`
 * (what the file holds), in place. */
void lt_model_round_to(lt_model *m, int32_t dtype, int norms);
/* Reference forward in double on the model's F32 weights (HF rotate-half):
 * items = [prefix rows; embeddings of tokens], logits [n, vocab]. */
void lt_model_reference(const lt_model *m, const float *prefix, int32_t n_prefix, const int32_t *tokens,
                        int32_t n_tokens, double *logits);

/* --- the plugin -------------------------------------------------------------------- */

typedef struct lt_env {
    bp_host host;
    bp_registry *reg;
    const bp_component_info *comp;
} lt_env;

/* 0 on success (prints the problem otherwise). */
int lt_env_open(lt_env *e, int32_t n_threads);
void lt_env_close(lt_env *e);
/* Create an llm from "key=value" strings; NULL on failure (err filled). */
bp_llm *lt_llm_create(lt_env *e, const char *const *kv, uint32_t n, bp_error *err);
void lt_llm_destroy(bp_llm *llm);

/* Run one eval: returns the status; logits [n_logits, vocab]. */
bp_status lt_eval(bp_llm *llm, const float *prefix, int32_t n_prefix, int32_t embd, const int32_t *tokens,
                  int32_t n_tokens, int32_t pos, int32_t n_logits, float *logits, float *hidden, bp_error *err);

/* --- files and comparison ------------------------------------------------------------ */

/* A fresh directory under $TMPDIR (or /tmp); 0 on success. */
int lt_tmpdir(char *buf, size_t cap);
/* Remove a directory made by lt_tmpdir and the files in it. */
void lt_rmdir(const char *dir);
/* max|c − g| / max|g| */
double lt_rel_err(const float *c, const float *g, size_t n);
double lt_rel_err_d(const float *c, const double *g, size_t n);

#endif /* LLAMA_TEST_UTIL_H */
