/* Helpers for the llama plugin tests (see llama_test_util.h). */
#include "llama_test_util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/quant.h"
#include "batpipe/safetensors.h"

/* ------------------------------------------------------------ GGUF writer -- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) abort(); /* test helper: out of memory ends the test */
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

typedef struct lt_tensor {
    char name[96];
    uint32_t type, n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} lt_tensor;

struct lt_gguf {
    buf kv;
    uint64_t n_kv;
    lt_tensor *t;
    uint64_t n_t;
};

lt_gguf *lt_gguf_new(void) { return calloc(1, sizeof(lt_gguf)); }

void lt_gguf_free(lt_gguf *g) {
    if (!g) return;
    free(g->kv.p);
    for (uint64_t i = 0; i < g->n_t; i++) free(g->t[i].data);
    free(g->t);
    free(g);
}

static void kv_head(lt_gguf *g, const char *key, uint32_t type) {
    put_str(&g->kv, key);
    put_u32(&g->kv, type);
    g->n_kv++;
}

void lt_gguf_str(lt_gguf *g, const char *key, const char *value) {
    kv_head(g, key, 8);
    put_str(&g->kv, value);
}
void lt_gguf_u32(lt_gguf *g, const char *key, uint32_t value) {
    kv_head(g, key, 4);
    put_u32(&g->kv, value);
}
void lt_gguf_f32(lt_gguf *g, const char *key, float value) {
    kv_head(g, key, 6);
    put(&g->kv, &value, 4);
}
void lt_gguf_bool(lt_gguf *g, const char *key, int value) {
    uint8_t v = value ? 1 : 0;
    kv_head(g, key, 7);
    put(&g->kv, &v, 1);
}
void lt_gguf_str_array(lt_gguf *g, const char *key, const char *const *values, uint64_t n) {
    kv_head(g, key, 9);
    put_u32(&g->kv, 8);
    put_u64(&g->kv, n);
    for (uint64_t i = 0; i < n; i++) put_str(&g->kv, values[i]);
}
void lt_gguf_f32_array(lt_gguf *g, const char *key, const float *values, uint64_t n) {
    kv_head(g, key, 9);
    put_u32(&g->kv, 6);
    put_u64(&g->kv, n);
    put(&g->kv, values, n * 4);
}
void lt_gguf_i32_array(lt_gguf *g, const char *key, const int32_t *values, uint64_t n) {
    kv_head(g, key, 9);
    put_u32(&g->kv, 5);
    put_u64(&g->kv, n);
    put(&g->kv, values, n * 4);
}

void lt_gguf_tensor(lt_gguf *g, const char *name, uint32_t ggml_type, uint32_t n_dims, const uint64_t *ne,
                    const void *data, size_t nbytes) {
    lt_tensor *grown = realloc(g->t, (size_t)(g->n_t + 1) * sizeof *grown);
    if (!grown) abort();
    g->t = grown;
    lt_tensor *t = &g->t[g->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = ggml_type;
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < n_dims; i++) t->ne[i] = ne[i];
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->data) abort();
    memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
}

int lt_gguf_write(const lt_gguf *g, const char *path) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, g->n_t);
    put_u64(&b, g->n_kv);
    put(&b, g->kv.p, g->kv.n);
    uint64_t off = 0;
    for (uint64_t i = 0; i < g->n_t; i++) {
        put_str(&b, g->t[i].name);
        put_u32(&b, g->t[i].n_dims);
        for (uint32_t d = 0; d < g->t[i].n_dims; d++) put_u64(&b, g->t[i].ne[d]);
        put_u32(&b, g->t[i].type);
        put_u64(&b, off);
        off += (g->t[i].nbytes + 31) / 32 * 32;
    }
    static const uint8_t zeros[32] = {0};
    put(&b, zeros, (32 - b.n % 32) % 32);
    for (uint64_t i = 0; i < g->n_t; i++) {
        put(&b, g->t[i].data, g->t[i].nbytes);
        put(&b, zeros, (32 - g->t[i].nbytes % 32) % 32);
    }
    FILE *f = fopen(path, "wb");
    int rc = !f || fwrite(b.p, 1, b.n, f) != b.n;
    if (f && fclose(f) != 0) rc = 1;
    free(b.p);
    return rc;
}

/* GPT-2's byte → printable code point map, as UTF-8. */
static void byte_token(int byte, char *out) {
    int cp = byte;
    if (!((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255))) {
        int n = 0;
        for (int b = 0; b < byte; b++)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

void lt_gguf_gpt2_vocab(lt_gguf *g, int32_t n) {
    char **tok = calloc((size_t)n, sizeof *tok);
    if (!tok) abort();
    for (int32_t i = 0; i < n; i++) {
        tok[i] = malloc(32);
        if (!tok[i]) abort();
        if (i < 256) byte_token(i, tok[i]);
        else snprintf(tok[i], 32, "<extra_%d>", i);
    }
    lt_gguf_str(g, "tokenizer.ggml.model", "gpt2");
    lt_gguf_str_array(g, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n);
    lt_gguf_str_array(g, "tokenizer.ggml.merges", NULL, 0);
    lt_gguf_u32(g, "tokenizer.ggml.bos_token_id", 1);
    lt_gguf_u32(g, "tokenizer.ggml.eos_token_id", 2);
    for (int32_t i = 0; i < n; i++) free(tok[i]);
    free(tok);
}

/* --------------------------------------------------------------- models -- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double rng_normal(rng *r) {
    return sqrt(-2.0 * log(rng_uniform(r))) * cos(6.283185307179586 * rng_uniform(r));
}

static float *rand_mat(rng *r, int64_t rows, int64_t cols) {
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    if (!w) abort();
    const double s = 1.0 / sqrt((double)cols);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)(rng_normal(r) * s);
    return w;
}

static float *rand_norm(rng *r, int64_t n) {
    float *w = malloc((size_t)n * sizeof *w);
    if (!w) abort();
    for (int64_t i = 0; i < n; i++) w[i] = (float)(1.0 + 0.1 * (2.0 * rng_uniform(r) - 1.0));
    return w;
}

void lt_model_random(lt_model *m, uint64_t seed) {
    rng r = {seed};
    const int64_t E = m->embd, Q = (int64_t)m->heads * m->head_dim, KV = (int64_t)m->kv_heads * m->head_dim;
    m->embed = rand_mat(&r, m->vocab, E);
    for (int64_t i = 0; i < (int64_t)m->vocab * E; i++) m->embed[i] *= (float)sqrt((double)E); /* rows ~ N(0, 1) */
    m->norm = rand_norm(&r, E);
    m->lm_head = m->tied ? NULL : rand_mat(&r, m->vocab, E);
    m->layer = calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer) abort();
    for (int32_t l = 0; l < m->layers; l++) {
        struct lt_layer *L = &m->layer[l];
        L->wq = rand_mat(&r, Q, E);
        L->wk = rand_mat(&r, KV, E);
        L->wv = rand_mat(&r, KV, E);
        L->wo = rand_mat(&r, E, Q);
        L->wgate = rand_mat(&r, m->ff, E);
        L->wup = rand_mat(&r, m->ff, E);
        L->wdown = rand_mat(&r, E, m->ff);
        L->attn_norm = rand_norm(&r, E);
        L->ffn_norm = rand_norm(&r, E);
    }
}

void lt_model_free(lt_model *m) {
    free(m->embed);
    free(m->norm);
    free(m->lm_head);
    for (int32_t l = 0; m->layer && l < m->layers; l++) {
        struct lt_layer *L = &m->layer[l];
        free(L->wq), free(L->wk), free(L->wv), free(L->wo), free(L->wgate), free(L->wup), free(L->wdown);
        free(L->attn_norm), free(L->ffn_norm);
    }
    free(m->layer);
    m->layer = NULL;
}

static uint32_t ggml_type_of(int32_t dtype) {
    switch (dtype) {
    case BP_DTYPE_F16: return 1;
    case BP_DTYPE_BF16: return 30;
    case BP_DTYPE_Q8_0: return 8;
    case BP_DTYPE_Q4_0: return 2;
    case BP_DTYPE_Q4_1: return 3;
    default: return 0;
    }
}

/* HF rows → Meta interleaved rows: meta (h, 2i + r) = hf (h, r·half + i). */
static float *to_meta(const float *w, int32_t heads, int32_t head_dim, int64_t cols) {
    float *o = malloc((size_t)heads * (size_t)head_dim * (size_t)cols * sizeof *o);
    if (!o) abort();
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < heads; h++)
        for (int32_t i = 0; i < half; i++)
            for (int32_t r = 0; r < 2; r++)
                memcpy(o + ((int64_t)h * head_dim + 2 * i + r) * cols,
                       w + ((int64_t)h * head_dim + r * half + i) * cols, (size_t)cols * sizeof *o);
    return o;
}

static void add_weight(lt_gguf *g, const char *name, const float *w, int64_t rows, int64_t cols, int32_t dtype) {
    bp_tensor probe = bp_tensor_view(dtype, 2, (int64_t[2]){rows, cols}, NULL);
    size_t nbytes = bp_tensor_nbytes(&probe), row = nbytes / (size_t)rows;
    uint8_t *data = malloc(nbytes);
    if (!data) abort();
    for (int64_t r = 0; r < rows; r++)
        if (bp_quantize_row(dtype, w + r * cols, data + (size_t)r * row, cols, NULL) != BP_OK) abort();
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    lt_gguf_tensor(g, name, ggml_type_of(dtype), 2, ne, data, nbytes);
    free(data);
}

static void add_norm(lt_gguf *g, const char *name, const float *w, int64_t n) {
    uint64_t ne[1] = {(uint64_t)n};
    lt_gguf_tensor(g, name, 0, 1, ne, w, (size_t)n * sizeof(float));
}

int lt_model_write_gguf(const lt_model *m, const char *path, int32_t dtype, const char *arch) {
    lt_gguf_opts o;
    memset(&o, 0, sizeof o);
    o.arch = arch;
    return lt_model_write_gguf_opts(m, path, dtype, &o);
}

/* The tensor `name` as written, or replaced / dropped as the options say. */
static void add_weight_opt(lt_gguf *g, const lt_gguf_opts *o, const char *name, const float *w, int64_t rows,
                           int64_t cols, int32_t dtype) {
    if (o->drop_tensor && strcmp(name, o->drop_tensor) == 0) return;
    if (o->odd_tensor && strcmp(name, o->odd_tensor) == 0) {
        /* the same shape in another ggml type: Q5_0 (6: 22 bytes per 32) or F64 (28) */
        const size_t n = (size_t)(rows * cols), nbytes = o->odd_type == 6 ? n / 32 * 22 : n * 8;
        uint8_t *zeros = calloc(nbytes, 1);
        if (!zeros) abort();
        uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
        lt_gguf_tensor(g, name, o->odd_type, 2, ne, zeros, nbytes);
        free(zeros);
        return;
    }
    add_weight(g, name, w, rows, cols, dtype);
}

int lt_model_write_gguf_opts(const lt_model *m, const char *path, int32_t dtype, const lt_gguf_opts *o) {
    const char *arch = o->arch ? o->arch : "llama";
    lt_gguf *g = lt_gguf_new();
    const int64_t E = m->embd, Q = (int64_t)m->heads * m->head_dim, KV = (int64_t)m->kv_heads * m->head_dim;
    char key[128];
    lt_gguf_str(g, "general.architecture", arch);
    lt_gguf_str(g, "general.name", "tiny test model");
#define ARCH_KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
    lt_gguf_u32(g, ARCH_KEY("context_length"), (uint32_t)m->ctx);
    lt_gguf_u32(g, ARCH_KEY("embedding_length"), (uint32_t)m->embd);
    lt_gguf_u32(g, ARCH_KEY("block_count"), (uint32_t)m->layers);
    lt_gguf_u32(g, ARCH_KEY("feed_forward_length"), (uint32_t)m->ff);
    lt_gguf_u32(g, ARCH_KEY("attention.head_count"), (uint32_t)m->heads);
    lt_gguf_u32(g, ARCH_KEY("attention.head_count_kv"), (uint32_t)m->kv_heads);
    lt_gguf_f32(g, ARCH_KEY("rope.freq_base"), m->theta);
    lt_gguf_f32(g, ARCH_KEY("attention.layer_norm_rms_epsilon"), m->eps);
    lt_gguf_u32(g, ARCH_KEY("rope.dimension_count"), (uint32_t)m->head_dim);
#undef ARCH_KEY
    if (!o->no_tokenizer) lt_gguf_gpt2_vocab(g, m->vocab);
    add_weight_opt(g, o, "token_embd.weight", m->embed, m->vocab, E, dtype);
    add_norm(g, "output_norm.weight", m->norm, E);
    if (!m->tied) add_weight_opt(g, o, "output.weight", m->lm_head, m->vocab, E, dtype);
    char name[96];
    for (int32_t l = 0; l < m->layers; l++) {
        const struct lt_layer *L = &m->layer[l];
        float *wq = to_meta(L->wq, m->heads, m->head_dim, E), *wk = to_meta(L->wk, m->kv_heads, m->head_dim, E);
#define W(suffix, w, rows, cols) \
    (snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix), add_weight_opt(g, o, name, w, rows, cols, dtype))
        W("attn_q", wq, Q, E);
        W("attn_k", wk, KV, E);
        W("attn_v", L->wv, KV, E);
        W("attn_output", L->wo, E, Q);
        W("ffn_gate", L->wgate, m->ff, E);
        W("ffn_up", L->wup, m->ff, E);
        W("ffn_down", L->wdown, E, m->ff);
#undef W
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        add_norm(g, name, L->attn_norm, E);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        add_norm(g, name, L->ffn_norm, E);
        free(wq);
        free(wk);
    }
    int rc = lt_gguf_write(g, path);
    lt_gguf_free(g);
    return rc;
}

/* Add a tensor to a safetensors writer, converted from F32 to dtype (F32, F16, BF16). */
static int add_converted(bp_st_writer *w, const char *name, bp_tensor *t, int32_t dtype, void **keep, int *n_keep,
                         bp_error *err) {
    if (dtype == BP_DTYPE_F32) return bp_st_writer_add(w, name, t, err) != BP_OK;
    const int64_t n = bp_tensor_numel(t);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    if (!h) abort();
    bp_quantize_row(dtype, t->data, h, n, NULL);
    bp_tensor c = *t;
    c.dtype = dtype;
    c.data = h;
    int rc = bp_st_writer_add(w, name, &c, err) != BP_OK;
    keep[(*n_keep)++] = h; /* the writer borrows data until write */
    return rc;
}

int lt_model_write_hf_config(const lt_model *m, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
            "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
            "\"intermediate_size\": %d, \"vocab_size\": %d, \"rms_norm_eps\": %.9g, \"rope_theta\": %.9g, "
            "\"max_position_embeddings\": %d, \"tie_word_embeddings\": %s, \"hidden_act\": \"silu\", "
            "\"rope_scaling\": null, \"bos_token_id\": 1, \"eos_token_id\": 2}\n",
            m->embd, m->layers, m->heads, m->kv_heads, m->ff, m->vocab, (double)m->eps, (double)m->theta, m->ctx,
            m->tied ? "true" : "false");
    return fclose(f) != 0;
}

int lt_model_write_hf(const lt_model *m, const char *dir, int32_t dtype) {
    char path[4200];
    if (lt_model_write_hf_config(m, dir) != 0) return 1;
    bp_st_writer *w = NULL;
    bp_error err = BP_ERROR_INIT;
    if (bp_st_writer_new(&w, &err) != BP_OK) return 1;
    const int64_t E = m->embd, Q = (int64_t)m->heads * m->head_dim, KV = (int64_t)m->kv_heads * m->head_dim;
    char name[128];
    int rc = 0, n_keep = 0;
    void **keep = calloc((size_t)(9 * m->layers + 3), sizeof *keep);
    if (!keep) abort();
#define ADD(nm, data, nd, ...)                                                             \
    do {                                                                                   \
        bp_tensor t = bp_tensor_view(BP_DTYPE_F32, nd, (int64_t[]){__VA_ARGS__}, (void *)(data)); \
        rc |= add_converted(w, nm, &t, dtype, keep, &n_keep, &err);                        \
    } while (0)
    ADD("model.embed_tokens.weight", m->embed, 2, m->vocab, E);
    ADD("model.norm.weight", m->norm, 1, E);
    if (!m->tied) ADD("lm_head.weight", m->lm_head, 2, m->vocab, E);
    for (int32_t l = 0; l < m->layers; l++) {
        const struct lt_layer *L = &m->layer[l];
#define P(suffix, data, nd, ...)                                        \
    do {                                                               \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        ADD(name, data, nd, __VA_ARGS__);                              \
    } while (0)
        P("self_attn.q_proj.weight", L->wq, 2, Q, E);
        P("self_attn.k_proj.weight", L->wk, 2, KV, E);
        P("self_attn.v_proj.weight", L->wv, 2, KV, E);
        P("self_attn.o_proj.weight", L->wo, 2, E, Q);
        P("mlp.gate_proj.weight", L->wgate, 2, m->ff, E);
        P("mlp.up_proj.weight", L->wup, 2, m->ff, E);
        P("mlp.down_proj.weight", L->wdown, 2, E, m->ff);
        P("input_layernorm.weight", L->attn_norm, 1, E);
        P("post_attention_layernorm.weight", L->ffn_norm, 1, E);
#undef P
    }
#undef ADD
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc && bp_st_writer_write(w, path, &err) != BP_OK) rc = 1;
    if (rc) fprintf(stderr, "lt_model_write_hf: %s\n", err.msg);
    bp_st_writer_free(w);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
    return rc;
}

static void round_mat(float *w, int64_t rows, int64_t cols, int32_t dtype) {
    bp_tensor probe = bp_tensor_view(dtype, 2, (int64_t[2]){1, cols}, NULL);
    uint8_t *tmp = malloc(bp_tensor_nbytes(&probe));
    if (!tmp) abort();
    for (int64_t r = 0; r < rows; r++) {
        bp_quantize_row(dtype, w + r * cols, tmp, cols, NULL);
        bp_dequantize_row(dtype, tmp, w + r * cols, cols, NULL);
    }
    free(tmp);
}

void lt_model_round_to(lt_model *m, int32_t dtype, int norms) {
    const int64_t E = m->embd, Q = (int64_t)m->heads * m->head_dim, KV = (int64_t)m->kv_heads * m->head_dim;
    round_mat(m->embed, m->vocab, E, dtype);
    if (norms) round_mat(m->norm, 1, E, dtype);
    if (m->lm_head) round_mat(m->lm_head, m->vocab, E, dtype);
    for (int32_t l = 0; l < m->layers; l++) {
        struct lt_layer *L = &m->layer[l];
        round_mat(L->wq, Q, E, dtype);
        round_mat(L->wk, KV, E, dtype);
        round_mat(L->wv, KV, E, dtype);
        round_mat(L->wo, E, Q, dtype);
        round_mat(L->wgate, m->ff, E, dtype);
        round_mat(L->wup, m->ff, E, dtype);
        round_mat(L->wdown, E, m->ff, dtype);
        if (norms) round_mat(L->attn_norm, 1, E, dtype), round_mat(L->ffn_norm, 1, E, dtype);
    }
}

/* y[t, o] = Σ_i x[t, i] · W[o, i] in double */
static void linear(const double *x, const float *w, int64_t n, int64_t in, int64_t out, double *y) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < out; o++) {
            double acc = 0.0;
            for (int64_t i = 0; i < in; i++) acc += x[t * in + i] * (double)w[o * in + i];
            y[t * out + o] = acc;
        }
}

static void rmsnorm(const double *x, const float *w, double eps, int64_t n, int64_t d, double *y) {
    for (int64_t t = 0; t < n; t++) {
        double ss = 0.0;
        for (int64_t i = 0; i < d; i++) ss += x[t * d + i] * x[t * d + i];
        const double r = 1.0 / sqrt(ss / (double)d + eps);
        for (int64_t i = 0; i < d; i++) y[t * d + i] = (double)w[i] * x[t * d + i] * r;
    }
}

static void rope_half(double *x, int64_t n, int32_t heads, int32_t hd, double theta) {
    const int32_t half = hd / 2;
    for (int64_t t = 0; t < n; t++)
        for (int32_t h = 0; h < heads; h++) {
            double *u = x + (t * heads + h) * hd;
            for (int32_t i = 0; i < half; i++) {
                const double a = (double)t * pow(theta, -2.0 * i / hd), c = cos(a), s = sin(a);
                const double u0 = u[i], u1 = u[i + half];
                u[i] = u0 * c - u1 * s;
                u[i + half] = u1 * c + u0 * s;
            }
        }
}

void lt_model_reference(const lt_model *m, const float *prefix, int32_t n_prefix, const int32_t *tokens,
                        int32_t n_tokens, double *logits) {
    const int64_t n = n_prefix + n_tokens, E = m->embd, Q = (int64_t)m->heads * m->head_dim,
                  KV = (int64_t)m->kv_heads * m->head_dim, F = m->ff, hd = m->head_dim;
    double *h = calloc((size_t)(n * E), sizeof *h), *a = calloc((size_t)(n * E), sizeof *a);
    double *q = calloc((size_t)(n * Q), sizeof *q), *k = calloc((size_t)(n * KV), sizeof *k);
    double *v = calloc((size_t)(n * KV), sizeof *v), *o = calloc((size_t)(n * Q), sizeof *o);
    double *d = calloc((size_t)(n * (E > F ? E : F)), sizeof *d), *g = calloc((size_t)(n * F), sizeof *g);
    double *u = calloc((size_t)(n * F), sizeof *u), *s = calloc((size_t)n, sizeof *s);
    if (!h || !a || !q || !k || !v || !o || !d || !g || !u || !s) abort();
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < E; i++)
            h[t * E + i] = t < n_prefix ? prefix[t * E + i] : m->embed[(int64_t)tokens[t - n_prefix] * E + i];
    for (int32_t l = 0; l < m->layers; l++) {
        const struct lt_layer *L = &m->layer[l];
        rmsnorm(h, L->attn_norm, m->eps, n, E, a);
        linear(a, L->wq, n, E, Q, q);
        linear(a, L->wk, n, E, KV, k);
        linear(a, L->wv, n, E, KV, v);
        rope_half(q, n, m->heads, m->head_dim, m->theta);
        rope_half(k, n, m->kv_heads, m->head_dim, m->theta);
        const int32_t group = m->heads / m->kv_heads;
        for (int64_t t = 0; t < n; t++)
            for (int32_t hh = 0; hh < m->heads; hh++) {
                const int32_t kv = hh / group;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= t; j++) {
                    double acc = 0.0;
                    for (int64_t i = 0; i < hd; i++) acc += q[t * Q + hh * hd + i] * k[j * KV + kv * hd + i];
                    s[j] = acc / sqrt((double)hd);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j <= t; j++) acc += s[j] / sum * v[j * KV + kv * hd + i];
                    o[t * Q + hh * hd + i] = acc;
                }
            }
        linear(o, L->wo, n, Q, E, d);
        for (int64_t i = 0; i < n * E; i++) h[i] += d[i];
        rmsnorm(h, L->ffn_norm, m->eps, n, E, a);
        linear(a, L->wgate, n, E, F, g);
        linear(a, L->wup, n, E, F, u);
        for (int64_t i = 0; i < n * F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
        linear(g, L->wdown, n, F, E, d);
        for (int64_t i = 0; i < n * E; i++) h[i] += d[i];
    }
    rmsnorm(h, m->norm, m->eps, n, E, a);
    linear(a, m->tied ? m->embed : m->lm_head, n, E, m->vocab, logits);
    free(h), free(a), free(q), free(k), free(v), free(o), free(d), free(g), free(u), free(s);
}

/* ------------------------------------------------------------- plugin -- */

int lt_env_open(lt_env *e, int32_t n_threads) {
    bp_error err = BP_ERROR_INIT;
    memset(e, 0, sizeof *e);
    e->host.struct_size = sizeof e->host;
    e->host.n_threads = n_threads;
    if (bp_registry_new(&e->host, &e->reg, &err) != BP_OK || bp_registry_scan_default(e->reg, NULL, &err) != BP_OK) {
        fprintf(stderr, "registry: %s\n", err.msg);
        return 1;
    }
    bp_registry_set_threads(e->reg, n_threads);
    e->comp = bp_registry_find(e->reg, BP_KIND_LLM, "llama");
    if (!e->comp) {
        fprintf(stderr, "llama plugin not found in BATPIPE_PLUGIN_PATH=%s\n", getenv("BATPIPE_PLUGIN_PATH"));
        for (uint32_t i = 0; i < bp_registry_problem_count(e->reg); i++) {
            bp_plugin_problem p = bp_registry_problem_at(e->reg, i);
            fprintf(stderr, "  %s: %s\n", p.path, p.message);
        }
        return 1;
    }
    return 0;
}

void lt_env_close(lt_env *e) { bp_registry_free(e->reg); }

typedef struct lt_llm_box {
    bp_llm *llm;
    bp_paramset *ps;
} lt_llm_box;

/* The paramset must outlive the instance: keep it in a side table keyed by the llm. */
#define LT_MAX_LIVE 64
static lt_llm_box live[LT_MAX_LIVE];

bp_llm *lt_llm_create(lt_env *e, const char *const *kv, uint32_t n, bp_error *err) {
    bp_paramset *ps = NULL;
    if (bp_paramset_from_strings(e->comp->desc, kv, n, &ps, err) != BP_OK) return NULL;
    void *inst = NULL;
    if (bp_registry_create(e->reg, e->comp, bp_paramset_params(ps), NULL, &inst, err) != BP_OK) {
        bp_paramset_free(ps);
        return NULL;
    }
    for (int i = 0; i < LT_MAX_LIVE; i++)
        if (!live[i].llm) {
            live[i].llm = inst;
            live[i].ps = ps;
            return inst;
        }
    abort();
}

void lt_llm_destroy(bp_llm *llm) {
    if (!llm) return;
    for (int i = 0; i < LT_MAX_LIVE; i++)
        if (live[i].llm == llm) {
            llm->destroy(llm);
            bp_paramset_free(live[i].ps);
            live[i].llm = NULL;
            live[i].ps = NULL;
            return;
        }
}

bp_status lt_eval(bp_llm *llm, const float *prefix, int32_t n_prefix, int32_t embd, const int32_t *tokens,
                  int32_t n_tokens, int32_t pos, int32_t n_logits, float *logits, float *hidden, bp_error *err) {
    bp_llm_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    bp_tensor pt;
    if (prefix && n_prefix > 0) {
        pt = bp_tensor_view(BP_DTYPE_F32, 2, (int64_t[2]){n_prefix, embd}, (void *)prefix);
        b.prefix_embeds = &pt;
    }
    b.tokens = tokens;
    b.n_tokens = n_tokens;
    b.pos = pos;
    b.n_logits = n_logits;
    b.logits = logits;
    b.hidden = hidden;
    return llm->eval(llm, &b, err);
}

/* -------------------------------------------------------------- files -- */

int lt_tmpdir(char *buf, size_t cap) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, cap, "%s/bp_llama_XXXXXX", base && base[0] ? base : "/tmp");
    return mkdtemp(buf) ? 0 : 1;
}

void lt_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4400];
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

double lt_rel_err(const float *c, const float *g, size_t n) {
    double maxd = 0.0, maxg = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - (double)g[i]);
        if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        maxg = fmax(maxg, fabs((double)g[i]));
    }
    return maxd / maxg;
}

double lt_rel_err_d(const float *c, const double *g, size_t n) {
    double maxd = 0.0, maxg = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - g[i]);
        if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        maxg = fmax(maxg, fabs(g[i]));
    }
    return maxd / maxg;
}
