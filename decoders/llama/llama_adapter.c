/* llama plugin — LLaMA-Adapter v2 and LoRA: fresh initialisation,
 * safetensors load and save. See llama_adapter.h for names and layouts. */
#include "llama_adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/quant.h"
#include "batpipe/safetensors.h"

#define PEFT_PREFIX "base_model.model."

static const char *const proj_names[LM_PROJ_COUNT] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"};

const char *lm_adapter_type_name(lm_adapter_type t) {
    switch (t) {
    case LM_ADAPTER_NONE: return "none";
    case LM_ADAPTER_V2: return "llama_adapter_v2";
    case LM_ADAPTER_LORA: return "lora";
    }
    return "?";
}

const char *lm_proj_name(lm_proj p) { return (p >= 0 && p < LM_PROJ_COUNT) ? proj_names[p] : "?"; }
const char *lm_proj_module(lm_proj p) { return p <= LM_PROJ_O ? "self_attn" : "mlp"; }

void lm_proj_dims(const lm_hparams *h, lm_proj p, int64_t *in, int64_t *out) {
    const int64_t E = h->n_embd, Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim;
    switch (p) {
    case LM_PROJ_Q: *in = E, *out = Q; break;
    case LM_PROJ_K:
    case LM_PROJ_V: *in = E, *out = KV; break;
    case LM_PROJ_O: *in = Q, *out = E; break;
    case LM_PROJ_GATE:
    case LM_PROJ_UP: *in = E, *out = h->n_ff; break;
    default: *in = h->n_ff, *out = E; break;
    }
}

/* Heads whose rotary rows a tensor on projection p's output carries (0: none). */
static int32_t qk_heads(const lm_hparams *h, lm_proj p) {
    return p == LM_PROJ_Q ? h->n_head : p == LM_PROJ_K ? h->n_head_kv : 0;
}

void lm_adapter_free(lm_adapter *a) {
    if (!a) return;
    for (int32_t i = 0; i < a->n_tensors; i++) {
        free(a->tensors[i].name);
        free(a->tensors[i].data);
    }
    free(a->tensors);
    free(a->layers);
    free(a);
}

static bp_status adapter_new(const lm_model *m, lm_adapter_type type, lm_adapter **out, bp_error *err) {
    lm_adapter *a = calloc(1, sizeof *a);
    if (a) a->layers = calloc((size_t)m->hp.n_layer, sizeof *a->layers);
    if (!a || !a->layers) {
        lm_adapter_free(a);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    }
    a->type = type;
    *out = a;
    return BP_OK;
}

/* A new zero-filled tensor owned by the adapter. */
static float *add_tensor(lm_adapter *a, const char *name, int32_t ndim, int64_t d0, int64_t d1, int32_t heads) {
    if (a->n_tensors == a->cap_tensors) {
        int32_t cap = a->cap_tensors ? 2 * a->cap_tensors : 64;
        lm_adapter_tensor *grown = realloc(a->tensors, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        a->tensors = grown;
        a->cap_tensors = cap;
    }
    lm_adapter_tensor *t = &a->tensors[a->n_tensors];
    memset(t, 0, sizeof *t);
    const int64_t n = ndim == 1 ? d0 : d0 * d1;
    t->name = strdup(name);
    t->data = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return NULL;
    }
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    t->qk_heads = heads;
    a->n_tensors++;
    return t->data;
}

/* --- names ----------------------------------------------------------------- */

static void proj_tensor_name(char *buf, size_t cap, int32_t l, lm_proj p, const char *what) {
    snprintf(buf, cap, "model.layers.%d.%s.%s.%s", l, lm_proj_module(p), lm_proj_name(p), what);
}

static void norm_name(char *buf, size_t cap, int32_t l, int ffn) {
    if (l < 0) snprintf(buf, cap, "model.norm.weight");
    else snprintf(buf, cap, "model.layers.%d.%s.weight", l, ffn ? "post_attention_layernorm" : "input_layernorm");
}

/* --- fresh adapters ---------------------------------------------------------- */

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
    const double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int add_norm_copies(const lm_model *m, lm_adapter *a) {
    const int64_t E = m->hp.n_embd;
    char name[128];
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        norm_name(name, sizeof name, l, 0);
        if (!(a->layers[l].attn_norm = add_tensor(a, name, 1, E, 0, 0))) return 0;
        memcpy(a->layers[l].attn_norm, m->layers[l].attn_norm, (size_t)E * sizeof(float));
        norm_name(name, sizeof name, l, 1);
        if (!(a->layers[l].ffn_norm = add_tensor(a, name, 1, E, 0, 0))) return 0;
        memcpy(a->layers[l].ffn_norm, m->layers[l].ffn_norm, (size_t)E * sizeof(float));
    }
    norm_name(name, sizeof name, -1, 0);
    if (!(a->output_norm = add_tensor(a, name, 1, E, 0, 0))) return 0;
    memcpy(a->output_norm, m->output_norm, (size_t)E * sizeof(float));
    return 1;
}

static const lm_proj v2_bias_projs[5] = {LM_PROJ_Q, LM_PROJ_O, LM_PROJ_GATE, LM_PROJ_UP, LM_PROJ_DOWN};

static int create_v2(const lm_model *m, const lm_adapter_config *cfg, lm_adapter *a) {
    const lm_hparams *h = &m->hp;
    rng r = {cfg->seed};
    char name[128];
    a->n_prompt = cfg->v2_len;
    for (int32_t l = h->n_layer - cfg->v2_layers; l < h->n_layer; l++) {
        lm_adapter_layer *L = &a->layers[l];
        snprintf(name, sizeof name, "adapter.%d.prompt", l);
        if (!(L->prompt = add_tensor(a, name, 2, cfg->v2_len, h->n_embd, 0))) return 0;
        /* nn.Embedding's default N(0, 1), as the released code initialises adapter_query */
        for (int64_t i = 0; i < (int64_t)cfg->v2_len * h->n_embd; i++) L->prompt[i] = (float)rng_normal(&r);
        snprintf(name, sizeof name, "adapter.%d.gate", l);
        if (!(L->gate = add_tensor(a, name, 1, h->n_head, 0, 0))) return 0;
    }
    for (int32_t l = 0; l < h->n_layer; l++) {
        for (int i = 0; i < 5; i++) {
            const lm_proj p = v2_bias_projs[i];
            int64_t in, out;
            lm_proj_dims(h, p, &in, &out);
            proj_tensor_name(name, sizeof name, l, p, "bias");
            if (!(a->layers[l].bias[p] = add_tensor(a, name, 1, out, 0, qk_heads(h, p)))) return 0;
            if (!cfg->v2_scales) continue;
            proj_tensor_name(name, sizeof name, l, p, "scale");
            float *s = add_tensor(a, name, 1, out, 0, qk_heads(h, p));
            if (!s) return 0;
            for (int64_t o = 0; o < out; o++) s[o] = 1.0f;
            a->layers[l].scale[p] = s;
        }
    }
    return add_norm_copies(m, a);
}

static int create_lora(const lm_model *m, const lm_adapter_config *cfg, lm_adapter *a) {
    const lm_hparams *h = &m->hp;
    rng r = {cfg->seed};
    char name[128];
    a->lora_rank = cfg->lora_rank;
    a->lora_alpha = (float)cfg->lora_alpha;
    for (int32_t l = 0; l < h->n_layer; l++) {
        for (int p = 0; p < LM_PROJ_COUNT; p++) {
            if (!(cfg->lora_targets & (1u << p))) continue;
            int64_t in, out;
            lm_proj_dims(h, (lm_proj)p, &in, &out);
            lm_lora *lo = &a->layers[l].lora[p];
            proj_tensor_name(name, sizeof name, l, (lm_proj)p, "lora_A.weight");
            if (!(lo->a = add_tensor(a, name, 2, cfg->lora_rank, in, 0))) return 0;
            /* PEFT: A ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in), B = 0 */
            const double bound = 1.0 / sqrt((double)in);
            for (int64_t i = 0; i < cfg->lora_rank * in; i++) lo->a[i] = (float)((2.0 * rng_uniform(&r) - 1.0) * bound);
            proj_tensor_name(name, sizeof name, l, (lm_proj)p, "lora_B.weight");
            if (!(lo->b = add_tensor(a, name, 2, out, cfg->lora_rank, qk_heads(h, (lm_proj)p)))) return 0;
            lo->r = cfg->lora_rank;
            lo->scale = (float)(cfg->lora_alpha / cfg->lora_rank);
        }
    }
    return 1;
}

bp_status lm_adapter_create(const lm_model *m, const lm_adapter_config *cfg, lm_adapter **out, bp_error *err) {
    *out = NULL;
    if (cfg->type == LM_ADAPTER_NONE) return BP_OK;
    if (cfg->type == LM_ADAPTER_V2 && (cfg->v2_layers < 0 || cfg->v2_layers > m->hp.n_layer || cfg->v2_len < 1))
        return bp_error_set(err, BP_ERR_INVALID,
                            "llama: adapter_layers = %d must be in [0, %d] and adapter_len = %d at least 1",
                            cfg->v2_layers, m->hp.n_layer, cfg->v2_len);
    if (cfg->type == LM_ADAPTER_LORA && (cfg->lora_rank < 1 || cfg->lora_targets == 0))
        return bp_error_set(err, BP_ERR_INVALID, "llama: LoRA needs lora_rank >= 1 and at least one target");
    lm_adapter *a = NULL;
    bp_status st = adapter_new(m, cfg->type, &a, err);
    if (st != BP_OK) return st;
    int ok = cfg->type == LM_ADAPTER_V2 ? create_v2(m, cfg, a) : create_lora(m, cfg, a);
    if (!ok) {
        lm_adapter_free(a);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory for the adapter");
    }
    *out = a;
    return BP_OK;
}

/* --- row order --------------------------------------------------------------- */

/* File (HF, rotate-half) rows → internal rows for interleaved models, or back. */
static void permute_rows(const lm_adapter_tensor *t, int32_t head_dim, int to_file, const float *src, float *dst) {
    const int64_t width = t->ndim == 2 ? t->shape[1] : 1, half = head_dim / 2;
    for (int32_t hh = 0; hh < t->qk_heads; hh++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t r = 0; r < 2; r++) {
                const int64_t file_row = (int64_t)hh * head_dim + r * half + i;
                const int64_t mem_row = (int64_t)hh * head_dim + 2 * i + r;
                const int64_t from = to_file ? mem_row : file_row, to = to_file ? file_row : mem_row;
                memcpy(dst + to * width, src + from * width, (size_t)width * sizeof(float));
            }
}

static int needs_permute(const lm_model *m, const lm_adapter_tensor *t) {
    return t->qk_heads > 0 && m->hp.rope_layout == LM_ROPE_INTERLEAVED;
}

/* --- load -------------------------------------------------------------------- */

typedef struct parsed_name {
    enum { PN_PROMPT, PN_GATE, PN_BIAS, PN_SCALE, PN_NORM, PN_LORA_A, PN_LORA_B, PN_UNKNOWN } kind;
    int32_t layer; /* -1: model.norm */
    lm_proj proj;
    int ffn; /* norms: 1 = post_attention_layernorm */
} parsed_name;

static parsed_name parse_name(const char *name) {
    parsed_name pn = {PN_UNKNOWN, -1, LM_PROJ_Q, 0};
    int l = -1, used = 0;
    char module[32], proj[32], rest[64];
    if (strlen(name) > 200) return pn;
    if (sscanf(name, "adapter.%d.%31s%n", &l, rest, &used) == 2 && name[used] == '\0') {
        pn.layer = l;
        if (strcmp(rest, "prompt") == 0) pn.kind = PN_PROMPT;
        else if (strcmp(rest, "gate") == 0) pn.kind = PN_GATE;
        return pn;
    }
    if (strcmp(name, "model.norm.weight") == 0) {
        pn.kind = PN_NORM;
        return pn;
    }
    used = 0;
    if (sscanf(name, "model.layers.%d.%31[a-z_].weight%n", &l, rest, &used) == 2 && name[used] == '\0') {
        pn.layer = l;
        if (strcmp(rest, "input_layernorm") == 0) pn.kind = PN_NORM;
        else if (strcmp(rest, "post_attention_layernorm") == 0) pn.kind = PN_NORM, pn.ffn = 1;
        return pn;
    }
    used = 0;
    if (sscanf(name, "model.layers.%d.%31[a-z_].%31[a-z_].%63s%n", &l, module, proj, rest, &used) == 4 &&
        name[used] == '\0') {
        int p = -1;
        for (int i = 0; i < LM_PROJ_COUNT; i++)
            if (strcmp(proj, proj_names[i]) == 0) p = i;
        if (p < 0 || strcmp(module, lm_proj_module((lm_proj)p)) != 0) return pn;
        pn.layer = l;
        pn.proj = (lm_proj)p;
        if (strcmp(rest, "bias") == 0) pn.kind = PN_BIAS;
        else if (strcmp(rest, "scale") == 0) pn.kind = PN_SCALE;
        else if (strcmp(rest, "lora_A.weight") == 0) pn.kind = PN_LORA_A;
        else if (strcmp(rest, "lora_B.weight") == 0) pn.kind = PN_LORA_B;
    }
    return pn;
}

/* The shape a parsed tensor must have; LoRA ranks come from the file. */
static void expected_shape(const lm_hparams *h, const parsed_name *pn, const bp_tensor *t, int32_t *ndim,
                           int64_t *d0, int64_t *d1) {
    int64_t in = 0, out = 0;
    lm_proj_dims(h, pn->proj, &in, &out);
    *d1 = 0;
    switch (pn->kind) {
    case PN_PROMPT: *ndim = 2, *d0 = t->ndim == 2 ? t->shape[0] : -1, *d1 = h->n_embd; break;
    case PN_GATE: *ndim = 1, *d0 = h->n_head; break;
    case PN_NORM: *ndim = 1, *d0 = h->n_embd; break;
    case PN_BIAS:
    case PN_SCALE: *ndim = 1, *d0 = out; break;
    case PN_LORA_A: *ndim = 2, *d0 = t->ndim == 2 ? t->shape[0] : -1, *d1 = in; break;
    default: *ndim = 2, *d0 = out, *d1 = t->ndim == 2 ? t->shape[1] : -1; break;
    }
}

static int kind_fits(lm_adapter_type type, const parsed_name *pn) {
    if (pn->kind == PN_UNKNOWN) return 0;
    if (type == LM_ADAPTER_LORA) return pn->kind == PN_LORA_A || pn->kind == PN_LORA_B;
    if (pn->kind == PN_LORA_A || pn->kind == PN_LORA_B) return 0;
    if (pn->kind == PN_BIAS || pn->kind == PN_SCALE)
        return pn->proj != LM_PROJ_K && pn->proj != LM_PROJ_V; /* as in the released code: no k/v bias */
    return 1;
}

static bp_status load_tensors(const lm_model *m, lm_adapter *a, const bp_st_file *f, lm_problems *p) {
    const lm_hparams *h = &m->hp;
    uint32_t n = bp_st_count(f);
    for (uint32_t i = 0; i < n; i++) {
        const char *file_name = bp_st_name(f, i);
        const char *name = strncmp(file_name, PEFT_PREFIX, strlen(PEFT_PREFIX)) == 0
                               ? file_name + strlen(PEFT_PREFIX)
                               : file_name;
        parsed_name pn = parse_name(name);
        if (!kind_fits(a->type, &pn)) {
            lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' is not a %s parameter", file_name,
                           lm_adapter_type_name(a->type));
            continue;
        }
        if (pn.layer >= h->n_layer || (pn.layer < 0 && pn.kind != PN_NORM)) {
            lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' names layer %d, the model has %d", file_name, pn.layer,
                           h->n_layer);
            continue;
        }
        bp_tensor t;
        bp_error e = BP_ERROR_INIT;
        if (bp_st_get(f, file_name, &t, &e) != BP_OK) {
            lm_problem_add(p, (bp_status)e.code, "%s", e.msg);
            continue;
        }
        if (t.dtype != BP_DTYPE_F32 && t.dtype != BP_DTYPE_F16 && t.dtype != BP_DTYPE_BF16) {
            lm_problem_add(p, BP_ERR_UNSUPPORTED, "tensor '%s' has type %s, supported: F32, F16, BF16", file_name,
                           bp_dtype_name(t.dtype));
            continue;
        }
        int32_t ndim;
        int64_t d0, d1;
        expected_shape(h, &pn, &t, &ndim, &d0, &d1);
        char have[64];
        if (t.ndim != ndim || t.shape[0] != d0 || (ndim == 2 && t.shape[1] != d1) || d0 < 1 || (ndim == 2 && d1 < 1)) {
            if (ndim == 1)
                lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' has shape %s, expected [%lld]", file_name,
                               lm_shape_str(&t, have, sizeof have), (long long)d0);
            else
                lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' has shape %s, expected [%s,%lld]", file_name,
                               lm_shape_str(&t, have, sizeof have), pn.kind == PN_LORA_A ? "r" : "?",
                               (long long)(pn.kind == PN_LORA_B ? d0 : d1));
            continue;
        }
        const int32_t heads =
            (pn.kind == PN_BIAS || pn.kind == PN_SCALE || pn.kind == PN_LORA_B) ? qk_heads(h, pn.proj) : 0;
        float *dst = add_tensor(a, name, ndim, d0, d1, heads);
        if (!dst) return BP_ERR_NOMEM;
        lm_adapter_tensor *at = &a->tensors[a->n_tensors - 1];
        const int64_t count = ndim == 1 ? d0 : d0 * d1;
        float *conv = dst;
        if (needs_permute(m, at) && !(conv = malloc((size_t)count * sizeof(float)))) return BP_ERR_NOMEM;
        bp_dequantize_row(t.dtype, t.data, conv, count, NULL);
        if (conv != dst) {
            permute_rows(at, h->head_dim, 0, conv, dst);
            free(conv);
        }
        lm_adapter_layer *L = pn.layer >= 0 ? &a->layers[pn.layer] : NULL;
        float **slot = NULL;
        switch (pn.kind) {
        case PN_PROMPT: slot = &L->prompt; break;
        case PN_GATE: slot = &L->gate; break;
        case PN_BIAS: slot = &L->bias[pn.proj]; break;
        case PN_SCALE: slot = &L->scale[pn.proj]; break;
        case PN_NORM: slot = L ? (pn.ffn ? &L->ffn_norm : &L->attn_norm) : &a->output_norm; break;
        case PN_LORA_A: slot = &L->lora[pn.proj].a, L->lora[pn.proj].r = (int32_t)d0; break;
        case PN_LORA_B: slot = &L->lora[pn.proj].b; break;
        default: break;
        }
        if (slot && *slot) lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' appears twice", file_name);
        else if (slot) *slot = dst;
    }
    return BP_OK;
}

/* Cross-tensor checks: prompts with gates and one length; LoRA A with B of one rank. */
static void check_consistency(const lm_model *m, lm_adapter *a, lm_problems *p) {
    const lm_hparams *h = &m->hp;
    for (int32_t l = 0; l < h->n_layer; l++) {
        lm_adapter_layer *L = &a->layers[l];
        if (!!L->prompt != !!L->gate)
            lm_problem_add(p, BP_ERR_FORMAT, "layer %d has adapter.%d.%s without adapter.%d.%s", l, l,
                           L->prompt ? "prompt" : "gate", l, L->prompt ? "gate" : "prompt");
        if (L->prompt && L->gate) {
            int64_t len = 0;
            for (int32_t i = 0; i < a->n_tensors; i++)
                if (a->tensors[i].data == L->prompt) len = a->tensors[i].shape[0];
            if (a->n_prompt == 0) a->n_prompt = (int32_t)len;
            else if (len != a->n_prompt)
                lm_problem_add(p, BP_ERR_FORMAT, "adapter.%d.prompt has %lld rows, other layers %d", l, (long long)len,
                               a->n_prompt);
        }
        for (int pj = 0; pj < LM_PROJ_COUNT; pj++) {
            lm_lora *lo = &L->lora[pj];
            if (!!lo->a != !!lo->b) {
                lm_problem_add(p, BP_ERR_FORMAT, "layer %d %s has lora_%s without lora_%s", l, proj_names[pj],
                               lo->a ? "A" : "B", lo->a ? "B" : "A");
                lo->r = 0;
                continue;
            }
            if (!lo->a) continue;
            int64_t rb = 0;
            for (int32_t i = 0; i < a->n_tensors; i++)
                if (a->tensors[i].data == lo->b) rb = a->tensors[i].shape[1];
            if (rb != lo->r) {
                lm_problem_add(p, BP_ERR_FORMAT, "layer %d %s: lora_A has rank %d, lora_B %lld", l, proj_names[pj],
                               lo->r, (long long)rb);
                lo->r = 0;
            }
            if (lo->r > a->lora_rank) a->lora_rank = lo->r;
        }
    }
}

/* A loaded v2 adapter gets the parameters a fresh one has (zero biases,
 * copies of the base norms) where the file has none, so that every
 * trainable tensor exists; the model's output does not change. */
static int complete_v2(const lm_model *m, lm_adapter *a) {
    const lm_hparams *h = &m->hp;
    const int64_t E = h->n_embd;
    char name[128];
    for (int32_t l = 0; l < h->n_layer; l++) {
        lm_adapter_layer *L = &a->layers[l];
        for (int i = 0; i < 5; i++) {
            const lm_proj p = v2_bias_projs[i];
            int64_t in, out;
            lm_proj_dims(h, p, &in, &out);
            proj_tensor_name(name, sizeof name, l, p, "bias");
            if (!L->bias[p] && !(L->bias[p] = add_tensor(a, name, 1, out, 0, qk_heads(h, p)))) return 0;
        }
        for (int ffn = 0; ffn < 2; ffn++) {
            float **slot = ffn ? &L->ffn_norm : &L->attn_norm;
            if (*slot) continue;
            norm_name(name, sizeof name, l, ffn);
            if (!(*slot = add_tensor(a, name, 1, E, 0, 0))) return 0;
            memcpy(*slot, ffn ? m->layers[l].ffn_norm : m->layers[l].attn_norm, (size_t)E * sizeof(float));
        }
    }
    if (!a->output_norm) {
        norm_name(name, sizeof name, -1, 0);
        if (!(a->output_norm = add_tensor(a, name, 1, E, 0, 0))) return 0;
        memcpy(a->output_norm, m->output_norm, (size_t)E * sizeof(float));
    }
    return 1;
}

static lm_adapter_type type_from_metadata(const bp_st_file *f) {
    const char *t = bp_st_metadata(f, "adapter_type");
    if (!t) return LM_ADAPTER_NONE;
    if (strcmp(t, "llama_adapter_v2") == 0) return LM_ADAPTER_V2;
    if (strcmp(t, "lora") == 0) return LM_ADAPTER_LORA;
    return LM_ADAPTER_NONE;
}

bp_status lm_adapter_load(const lm_model *m, const lm_adapter_config *cfg, const char *path, lm_adapter **out,
                          bp_error *err) {
    *out = NULL;
    bp_st_file *f = NULL;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) return st;
    lm_adapter_type type = cfg->type;
    lm_adapter_type meta = type_from_metadata(f);
    if (type == LM_ADAPTER_NONE) type = meta;
    if (type == LM_ADAPTER_NONE) {
        bp_st_close(f);
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: adapter_type is none and the file does not say (set adapter_type = "
                            "llama_adapter_v2 or lora)",
                            path);
    }
    if (meta != LM_ADAPTER_NONE && meta != type) {
        bp_st_close(f);
        return bp_error_set(err, BP_ERR_INVALID, "%s: the file holds a %s adapter, adapter_type is %s", path,
                            lm_adapter_type_name(meta), lm_adapter_type_name(type));
    }
    lm_adapter *a = NULL;
    if ((st = adapter_new(m, type, &a, err)) != BP_OK) {
        bp_st_close(f);
        return st;
    }
    lm_problems p = {{0}, 0, 0};
    st = load_tensors(m, a, f, &p);
    if (st == BP_OK) check_consistency(m, a, &p);
    if (st == BP_OK && p.count == 0 && a->n_tensors == 0)
        lm_problem_add(&p, BP_ERR_FORMAT, "no %s tensors", lm_adapter_type_name(type));
    if (st == BP_OK && p.count == 0 && type == LM_ADAPTER_LORA) {
        double alpha = cfg->lora_alpha;
        const char *ma = bp_st_metadata(f, "lora_alpha");
        if (!cfg->lora_alpha_set && ma) alpha = strtod(ma, NULL);
        if (!(alpha > 0.0)) lm_problem_add(&p, BP_ERR_FORMAT, "lora_alpha = %g must be positive", alpha);
        a->lora_alpha = (float)alpha;
        for (int32_t l = 0; l < m->hp.n_layer; l++)
            for (int pj = 0; pj < LM_PROJ_COUNT; pj++)
                if (a->layers[l].lora[pj].r > 0) a->layers[l].lora[pj].scale = (float)(alpha / a->layers[l].lora[pj].r);
    }
    bp_st_close(f);
    if (st == BP_OK && p.count == 0 && type == LM_ADAPTER_V2 && !complete_v2(m, a)) st = BP_ERR_NOMEM;
    if (st == BP_ERR_NOMEM) {
        lm_adapter_free(a);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory loading %s", path);
    }
    if ((st = lm_problems_report(&p, path, err)) != BP_OK) {
        lm_adapter_free(a);
        return st;
    }
    *out = a;
    return BP_OK;
}

/* --- save -------------------------------------------------------------------- */

bp_status lm_adapter_save(const lm_model *m, const lm_adapter *a, const char *path, bp_error *err) {
    if (!a || a->type == LM_ADAPTER_NONE) return bp_error_set(err, BP_ERR_INVALID, "llama: no adapter to save");
    bp_st_writer *w = NULL;
    bp_status st = bp_st_writer_new(&w, err);
    if (st != BP_OK) return st;
    float **copies = calloc((size_t)(a->n_tensors ? a->n_tensors : 1), sizeof *copies);
    if (!copies) {
        bp_st_writer_free(w);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    }
    char buf[64];
    for (int32_t i = 0; i < a->n_tensors && st == BP_OK; i++) {
        const lm_adapter_tensor *at = &a->tensors[i];
        float *data = at->data;
        if (needs_permute(m, at)) {
            const int64_t count = at->ndim == 1 ? at->shape[0] : at->shape[0] * at->shape[1];
            if (!(copies[i] = malloc((size_t)count * sizeof(float)))) {
                st = bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
                break;
            }
            permute_rows(at, m->hp.head_dim, 1, at->data, copies[i]);
            data = copies[i];
        }
        bp_tensor t = bp_tensor_view(BP_DTYPE_F32, at->ndim, at->shape, data);
        st = bp_st_writer_add(w, at->name, &t, err);
    }
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "format", "batpipe-llama-adapter/1", err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "adapter_type", lm_adapter_type_name(a->type), err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "row_order", "hf_rotate_half", err);
    if (st == BP_OK && a->type == LM_ADAPTER_V2) {
        snprintf(buf, sizeof buf, "%d", a->n_prompt);
        st = bp_st_writer_set_metadata(w, "adapter_len", buf, err);
    }
    if (st == BP_OK && a->type == LM_ADAPTER_LORA) {
        snprintf(buf, sizeof buf, "%.9g", (double)a->lora_alpha);
        st = bp_st_writer_set_metadata(w, "lora_alpha", buf, err);
        snprintf(buf, sizeof buf, "%d", a->lora_rank);
        if (st == BP_OK) st = bp_st_writer_set_metadata(w, "lora_rank", buf, err);
    }
    if (st == BP_OK) st = bp_st_writer_write(w, path, err);
    for (int32_t i = 0; i < a->n_tensors; i++) free(copies[i]);
    free(copies);
    bp_st_writer_free(w);
    return st;
}
