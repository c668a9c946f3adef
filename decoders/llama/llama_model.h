/* llama plugin — the model: hyper-parameters, weight views and loaders
 * (internal; not part of the batpipe ABI).
 *
 * Weights stay where the file reader mapped them (GGUF or safetensors,
 * read-only mmap): an lm_mat is a borrowed view of a [rows, cols] matrix in
 * one of the compute types (F32, F16, BF16, Q8_0, Q4_0, Q4_1), rows of
 * `cols` elements, `row_bytes` apart. Only the small norm vectors are copied
 * (to F32). The model owns the file handles, the copies and the tokenizer. */
#ifndef BP_LLAMA_MODEL_H
#define BP_LLAMA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/gguf.h"
#include "batpipe/safetensors.h"
#include "tokenizer.h"

/* How q/k rows are laid out inside each head, which decides the rotation. */
typedef enum lm_rope_layout {
    LM_ROPE_INTERLEAVED = 1, /* Meta / GGUF: rotate pairs (2i, 2i+1) */
    LM_ROPE_HALF = 2         /* Hugging Face: rotate pairs (i, i + head_dim/2) */
} lm_rope_layout;

typedef struct lm_hparams {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    int32_t n_ctx_train;
    float rms_eps;
    double rope_theta;
    int32_t rope_layout; /* lm_rope_layout of the weight source */
    int32_t tied_output; /* 1: the output head is the token embedding */
    int32_t bos_id, eos_id;
} lm_hparams;

/* A weight matrix y = x·Wᵀ: W is [rows = out, cols = in]. */
typedef struct lm_mat {
    int32_t dtype; /* BP_DTYPE_F32/F16/BF16/Q8_0/Q4_0/Q4_1 */
    int64_t rows, cols;
    size_t row_bytes;
    const uint8_t *data; /* borrowed from the mapping */
} lm_mat;

typedef struct lm_layer {
    const float *attn_norm, *ffn_norm; /* [n_embd], F32 copies owned by the model */
    lm_mat wq, wk, wv, wo;             /* [H·hd, E], [Hkv·hd, E] ×2, [E, H·hd] */
    lm_mat wgate, wup, wdown;          /* [F, E] ×2, [E, F] */
} lm_layer;

typedef struct lm_model {
    lm_hparams hp;
    lm_mat tok_embd;          /* [n_vocab, n_embd] */
    lm_mat output;            /* [n_vocab, n_embd]; a copy of tok_embd's view when tied */
    const float *output_norm; /* [n_embd] */
    lm_layer *layers;         /* [n_layer] */
    float *norms;             /* owned: every norm vector, (2·n_layer + 1)·n_embd floats */
    bp_gguf *gguf;            /* owned, or NULL */
    bp_st_file **st;          /* owned safetensors shards, or NULL */
    int32_t n_st;
    tokenizer *tok;           /* owned, or NULL (no tokenizer found: HF model without tokenizer.json) */
    char *path;               /* owned: what was loaded, for messages */
    const char *label;        /* names the model in messages (= path) */
    const char *format;       /* "gguf" or "safetensors" */
    size_t weight_bytes;      /* bytes of the mapped weights the model uses */
} lm_model;

/* Load a GGUF file (general.architecture must be "llama"). */
bp_status lm_model_load_gguf(const char *path, lm_model **out, bp_error *err);
/* Load a Hugging Face model: a directory, its config.json, or a
 * .safetensors file next to a config.json. */
bp_status lm_model_load_hf(const char *path, lm_model **out, bp_error *err);
/* Either of the above, chosen by the path ("*.gguf" or GGUF magic → GGUF). */
bp_status lm_model_load(const char *path, lm_model **out, bp_error *err);
/* NULL is allowed. */
void lm_model_free(lm_model *m);

/* --- shared by the loaders (llama_model.c) --------------------------------- */

/* Allocate an empty model for `path` (copies the path, sets the label). */
bp_status lm_model_new(const char *path, const char *format, lm_model **out, bp_error *err);
/* Check hyper-parameters for consistency (positive sizes, heads divide, ...). */
bp_status lm_hparams_check(const lm_model *m, bp_error *err);
/* Allocate the layer array and the norm block for m->hp. */
bp_status lm_model_alloc_layers(lm_model *m, bp_error *err);

/* Collects several problems (missing tensors, wrong shapes) into one message. */
typedef struct lm_problems {
    char text[768];
    int32_t count;
    int32_t code; /* the most specific status seen */
} lm_problems;

void lm_problem_add(lm_problems *p, bp_status code, const char *fmt, ...) BP_PRINTF(3, 4);
/* BP_OK when empty, else sets err ("<label>: N problems: a; b; c") and returns the code. */
bp_status lm_problems_report(const lm_problems *p, const char *label, bp_error *err);

/* Bind a weight view: checks the dtype is computable and the shape is
 * [rows, cols] (vectors: cols = 0 means a 1-D [rows] tensor). Problems are
 * recorded; returns 1 on success. */
int lm_bind_mat(lm_mat *dst, const bp_tensor *t, const char *name, int64_t rows, int64_t cols, lm_problems *p);
/* Copy a 1-D norm weight of any float type into dst[n] as F32; returns 1 on success. */
int lm_bind_norm(float *dst, const bp_tensor *t, const char *name, int64_t n, lm_problems *p);

/* Shape of a tensor as "[3,4]" into buf. */
const char *lm_shape_str(const bp_tensor *t, char *buf, size_t cap);

#endif /* BP_LLAMA_MODEL_H */
