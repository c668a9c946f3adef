/* llama plugin — entry point, descriptor and parameters, and the bp_llm
 * functions over a loaded model, its adapter and its forward context. */
#include <stdlib.h>
#include <string.h>

#include "batpipe/llm.h"
#include "batpipe/plugin.h"
#include "llama_adapter.h"
#include "llama_adapter_ext.h"
#include "llama_forward.h"
#include "llama_model.h"

/* ----------------------------------------------------------- parameters -- */

static const bp_param_spec llama_params[] = {
    {sizeof(bp_param_spec), "model", BP_PARAM_PATH, NULL, BP_NO_RANGE, NULL,
     "weights: a .gguf file (llama.cpp names) or a Hugging Face directory / config.json with safetensors"},
    {sizeof(bp_param_spec), "n_ctx", BP_PARAM_INT, "0", 0, 16777216, NULL,
     "positions in the KV cache, prefix included (0 = the model's trained context)"},
    {sizeof(bp_param_spec), "n_batch", BP_PARAM_INT, "512", 1, 65536, NULL,
     "positions per forward chunk during prefill (memory vs. speed)"},
    {sizeof(bp_param_spec), "threads", BP_PARAM_INT, "0", 0, 1024, NULL,
     "compute threads (0 = the host's thread count)"},
    {sizeof(bp_param_spec), "kv_type", BP_PARAM_STRING, "\"f16\"", BP_NO_RANGE, "f16|f32",
     "KV cache element type: f16 (as llama.cpp: q, k, v and attention weights in f16) or f32 (exact attention)"},
    {sizeof(bp_param_spec), "precision", BP_PARAM_STRING, "\"fast\"", BP_NO_RANGE, "fast|exact",
     "fast: llama.cpp's numerics (8-bit activations in quantized products, kv_type cache); exact: F32 activations "
     "against weights dequantized block by block on the fly, F32 KV cache, norms/softmax/SiLU in double (slower)"},
    {sizeof(bp_param_spec), "kernels", BP_PARAM_STRING, "\"auto\"", BP_NO_RANGE, "auto|avx512|avx2|generic",
     "matrix kernels: the best this CPU runs, or a given instruction set (for testing)"},
    {sizeof(bp_param_spec), "adapter", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "adapter weights (.safetensors); empty = a fresh adapter of adapter_type (or none)"},
    {sizeof(bp_param_spec), "adapter_type", BP_PARAM_STRING, "\"none\"", BP_NO_RANGE, "none|llama_adapter_v2|lora",
     "adapter kind; with an adapter file, none means: as the file's metadata says"},
    {sizeof(bp_param_spec), "adapter_layers", BP_PARAM_INT, "-1", -1, 65536, NULL,
     "LLaMA-Adapter v2 (fresh): adaption prompts in the top N layers (-1 = all but the first, as the 7B code)"},
    {sizeof(bp_param_spec), "adapter_len", BP_PARAM_INT, "10", 1, 4096, NULL,
     "LLaMA-Adapter v2 (fresh): adaption prompt length per layer"},
    {sizeof(bp_param_spec), "adapter_scales", BP_PARAM_BOOL, "false", BP_NO_RANGE, NULL,
     "LLaMA-Adapter v2 (fresh): also add unit scales y = s*(Wx + b) (the paper's eq. 1-2; not in the 7B code)"},
    {sizeof(bp_param_spec), "lora_rank", BP_PARAM_INT, "8", 1, 4096, NULL, "LoRA (fresh): rank r"},
    {sizeof(bp_param_spec), "lora_alpha", BP_PARAM_FLOAT, "16.0", 1e-6, 1e6, NULL,
     "LoRA: alpha (scale alpha/r); when set it overrides the file's lora_alpha"},
    {sizeof(bp_param_spec), "lora_targets", BP_PARAM_STRING_LIST, "[\"q_proj\", \"v_proj\"]", BP_NO_RANGE, NULL,
     "LoRA (fresh): projections to adapt (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)"},
    {sizeof(bp_param_spec), "adapter_seed", BP_PARAM_INT, "0", 0, 9007199254740992.0, NULL,
     "seed of a fresh adapter's random parts (prompts, LoRA A)"},
};

/* ------------------------------------------------------------- instance -- */

typedef struct llama {
    bp_llm llm; /* first member: the host sees this */
    const bp_host *host;
    lm_model *model;
    lm_adapter *adapter;
    lm_adapter_config adapter_cfg;
    lm_ctx ctx;
} llama;

static bp_status llama_info(bp_llm *llm, bp_llm_info *out, bp_error *err) {
    const llama *p = llm->self;
    const lm_hparams *h = &p->model->hp;
    if (!out || out->struct_size < sizeof *out)
        return bp_error_set(err, BP_ERR_INVALID, "llama: info: struct_size %u < %zu", out ? out->struct_size : 0,
                            sizeof *out);
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    snprintf(out->arch, sizeof out->arch, "llama");
    out->vocab_size = h->n_vocab;
    out->n_embd = h->n_embd;
    out->n_layer = h->n_layer;
    out->n_ctx = p->ctx.n_ctx;
    out->bos_id = h->bos_id;
    out->eos_id = h->eos_id;
    out->chat_template = p->model->tok ? tokenizer_chat_template(p->model->tok) : NULL;
    return BP_OK;
}

static bp_status llama_tokenize(bp_llm *llm, const char *text, int32_t add_bos, int32_t *ids, int32_t cap,
                                int32_t *n, bp_error *err) {
    const llama *p = llm->self;
    if (!p->model->tok)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "llama: %s has no tokenizer (no tokenizer.json)",
                            p->model->label);
    if (!text) return bp_error_set(err, BP_ERR_INVALID, "llama: tokenize: text is NULL");
    return tokenizer_encode(p->model->tok, text, strlen(text), add_bos, 1, ids, cap, n, err);
}

static bp_status llama_token_piece(bp_llm *llm, int32_t id, char *buf, int32_t cap, int32_t *n, bp_error *err) {
    const llama *p = llm->self;
    if (!p->model->tok)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "llama: %s has no tokenizer (no tokenizer.json)",
                            p->model->label);
    return tokenizer_piece(p->model->tok, id, buf, cap, n, err);
}

static bp_status llama_eval(bp_llm *llm, const bp_llm_batch *batch, bp_error *err) {
    llama *p = llm->self;
    const int64_t E = p->model->hp.n_embd;
    if (!batch || batch->struct_size < sizeof *batch)
        return bp_error_set(err, BP_ERR_INVALID, "llama: eval: missing batch or struct_size too small");
    lm_batch b;
    memset(&b, 0, sizeof b);
    const bp_tensor *pe = batch->prefix_embeds;
    if (pe) {
        char have[64];
        const int ok_shape = (pe->ndim == 2 && pe->shape[1] == E) ||
                             (pe->ndim == 3 && pe->shape[0] == 1 && pe->shape[2] == E);
        if (pe->dtype != BP_DTYPE_F32 || pe->backend || !ok_shape || !pe->data)
            return bp_error_set(err, BP_ERR_INVALID,
                                "llama: prefix_embeds must be host F32 [n_prefix, %lld], got %s%s %s", (long long)E,
                                bp_dtype_name(pe->dtype), lm_shape_str(pe, have, sizeof have),
                                pe->backend ? "on a device" : "");
        b.prefix = pe->data;
        b.n_prefix = pe->ndim == 2 ? pe->shape[0] : pe->shape[1];
    }
    b.tokens = batch->tokens;
    b.n_tokens = batch->n_tokens;
    b.pos = batch->pos;
    b.n_out = batch->n_logits;
    b.logits = batch->logits;
    b.hidden = batch->hidden;
    return lm_ctx_eval(&p->ctx, &b, err);
}

static bp_status llama_kv_truncate(bp_llm *llm, int32_t n_keep, bp_error *err) {
    llama *p = llm->self;
    return lm_ctx_truncate(&p->ctx, n_keep, err);
}

/* ------------------------------------------------------------ extension -- */

static const char *ext_type(bp_llm *llm) {
    const llama *p = llm->self;
    return lm_adapter_type_name(p->adapter ? p->adapter->type : LM_ADAPTER_NONE);
}

static int32_t ext_tensor_count(bp_llm *llm) {
    const llama *p = llm->self;
    return p->adapter ? p->adapter->n_tensors : 0;
}

static bp_status ext_tensor_at(bp_llm *llm, int32_t i, bp_tensor *view, bp_error *err) {
    const llama *p = llm->self;
    if (!p->adapter || i < 0 || i >= p->adapter->n_tensors)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "llama: adapter tensor %d does not exist (%d tensors)", i,
                            ext_tensor_count(llm));
    const lm_adapter_tensor *t = &p->adapter->tensors[i];
    *view = bp_tensor_view(BP_DTYPE_F32, t->ndim, t->shape, t->data);
    view->name = t->name;
    return BP_OK;
}

static bp_status ext_save(bp_llm *llm, const char *path, bp_error *err) {
    const llama *p = llm->self;
    if (!path || !path[0]) return bp_error_set(err, BP_ERR_INVALID, "llama: adapter save: no path");
    return lm_adapter_save(p->model, p->adapter, path, err);
}

static bp_status ext_load(bp_llm *llm, const char *path, bp_error *err) {
    llama *p = llm->self;
    if (!path || !path[0]) return bp_error_set(err, BP_ERR_INVALID, "llama: adapter load: no path");
    lm_adapter *a = NULL;
    bp_status st = lm_adapter_load(p->model, &p->adapter_cfg, path, &a, err);
    if (st != BP_OK) return st;
    if ((st = lm_ctx_set_adapter(&p->ctx, a, err)) != BP_OK) {
        /* back to the old adapter, whose scratch fitted before */
        bp_error e2 = BP_ERROR_INIT;
        lm_ctx_set_adapter(&p->ctx, p->adapter, &e2);
        lm_adapter_free(a);
        return st;
    }
    lm_adapter_free(p->adapter);
    p->adapter = a;
    return BP_OK;
}

static const bp_llm_adapter_ext adapter_ext = {
    sizeof(bp_llm_adapter_ext), ext_type, ext_tensor_count, ext_tensor_at, ext_save, ext_load,
};

static const void *llama_get_extension(bp_llm *llm, const char *id) {
    (void)llm;
    if (id && strcmp(id, BP_LLM_ADAPTER_EXT_ID) == 0) return &adapter_ext;
    return NULL;
}

/* ------------------------------------------------------------ lifecycle -- */

static void llama_destroy(bp_llm *llm) {
    if (!llm) return;
    llama *p = llm->self;
    lm_ctx_free(&p->ctx);
    lm_adapter_free(p->adapter);
    lm_model_free(p->model);
    free(p);
}

static bp_status read_adapter_config(const bp_params *params, const lm_model *m, lm_adapter_config *cfg,
                                     bp_error *err) {
    memset(cfg, 0, sizeof *cfg);
    const char *type = bp_params_string(params, "adapter_type");
    cfg->type = !type || strcmp(type, "none") == 0 ? LM_ADAPTER_NONE
                : strcmp(type, "lora") == 0        ? LM_ADAPTER_LORA
                                                   : LM_ADAPTER_V2;
    int64_t layers = bp_params_int(params, "adapter_layers");
    if (layers < 0) layers = m->hp.n_layer - 1;
    if (layers > m->hp.n_layer)
        return bp_error_set(err, BP_ERR_INVALID, "adapter_layers = %lld but %s has %d layers",
                            (long long)layers, m->label, m->hp.n_layer);
    cfg->v2_layers = (int32_t)layers;
    cfg->v2_len = (int32_t)bp_params_int(params, "adapter_len");
    cfg->v2_scales = bp_params_bool(params, "adapter_scales");
    cfg->lora_rank = (int32_t)bp_params_int(params, "lora_rank");
    cfg->lora_alpha = bp_params_float(params, "lora_alpha");
    const bp_param_value *alpha = bp_params_find(params, "lora_alpha");
    cfg->lora_alpha_set = alpha && alpha->from_config;
    cfg->seed = (uint64_t)bp_params_int(params, "adapter_seed");
    const bp_param_value *targets = bp_params_find(params, "lora_targets");
    for (uint32_t i = 0; targets && i < targets->count; i++) {
        int found = -1;
        for (int pj = 0; pj < LM_PROJ_COUNT; pj++)
            if (strcmp(targets->strs[i], lm_proj_name((lm_proj)pj)) == 0) found = pj;
        if (found < 0)
            return bp_error_set(err, BP_ERR_INVALID,
                                "lora_targets: '%s' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                "up_proj, down_proj",
                                targets->strs[i]);
        cfg->lora_targets |= 1u << found;
    }
    return BP_OK;
}

static lm_isa isa_from_param(const char *s) {
    if (!s || strcmp(s, "auto") == 0) return LM_ISA_COUNT;
    if (strcmp(s, "avx512") == 0) return LM_ISA_AVX512;
    if (strcmp(s, "avx2") == 0) return LM_ISA_AVX2;
    return LM_ISA_GENERIC;
}

static bp_status llama_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                              bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, "llama: no llm component #%u", index);
    llama *p = calloc(1, sizeof *p);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    p->host = host;
    bp_status st = lm_model_load(bp_params_string(params, "model"), &p->model, err);
    if (st != BP_OK) goto fail;
    if ((st = read_adapter_config(params, p->model, &p->adapter_cfg, err)) != BP_OK) goto fail;
    const char *apath = bp_params_string(params, "adapter");
    if (apath && apath[0]) st = lm_adapter_load(p->model, &p->adapter_cfg, apath, &p->adapter, err);
    else st = lm_adapter_create(p->model, &p->adapter_cfg, &p->adapter, err);
    if (st != BP_OK) goto fail;
    lm_ctx_params cp;
    cp.n_ctx = (int32_t)bp_params_int(params, "n_ctx");
    cp.n_batch = (int32_t)bp_params_int(params, "n_batch");
    cp.n_threads = (int32_t)bp_params_int(params, "threads");
    if (cp.n_threads <= 0) cp.n_threads = host && host->n_threads > 0 ? host->n_threads : 1;
    cp.isa = isa_from_param(bp_params_string(params, "kernels"));
    const char *kv_type = bp_params_string(params, "kv_type");
    const char *precision = bp_params_string(params, "precision");
    const bp_param_value *kv_set = bp_params_find(params, "kv_type");
    cp.exact = precision && strcmp(precision, "exact") == 0;
    cp.kv_f16 = !kv_type || strcmp(kv_type, "f32") != 0;
    if (cp.exact && cp.kv_f16 && kv_set && kv_set->from_config) {
        st = bp_error_set(err, BP_ERR_INVALID,
                          "llama: precision = \"exact\" keeps the KV cache in f32, but kv_type = \"f16\" was set "
                          "(%s): drop kv_type or set it to \"f32\"",
                          kv_set->origin ? kv_set->origin : "config");
        goto fail;
    }
    if (cp.exact) cp.kv_f16 = 0;
    if ((st = lm_ctx_init(&p->ctx, p->model, p->adapter, &cp, err)) != BP_OK) goto fail;

    bp_logf(host, BP_LOG_INFO, "llama",
            "%s: %s, %d layers, %d/%d heads, embd %d, ff %d, vocab %d, context %d (trained %d), %.1f MB of weights, "
            "%s KV cache, %s precision, %s kernels, %d threads, adapter %s",
            p->model->label, p->model->format, p->model->hp.n_layer, p->model->hp.n_head, p->model->hp.n_head_kv,
            p->model->hp.n_embd, p->model->hp.n_ff, p->model->hp.n_vocab, p->ctx.n_ctx, p->model->hp.n_ctx_train,
            (double)p->model->weight_bytes / 1e6, p->ctx.kv_f16 ? "f16" : "f32", p->ctx.exact ? "exact" : "fast",
            lm_isa_name(p->ctx.kr.isa),
            p->ctx.n_threads,
            lm_adapter_type_name(p->adapter ? p->adapter->type : LM_ADAPTER_NONE));

    p->llm.struct_size = sizeof p->llm;
    p->llm.self = p;
    p->llm.info = llama_info;
    p->llm.tokenize = llama_tokenize;
    p->llm.token_piece = llama_token_piece;
    p->llm.eval = llama_eval;
    p->llm.kv_truncate = llama_kv_truncate;
    p->llm.get_extension = llama_get_extension;
    p->llm.destroy = llama_destroy;
    *instance = &p->llm;
    return BP_OK;
fail:
    lm_adapter_free(p->adapter);
    lm_model_free(p->model);
    free(p);
    return st;
}

/* ---------------------------------------------------------------- entry -- */

static const bp_descriptor llama_descriptor = {
    sizeof(bp_descriptor),
    "llama",
    "1.0.0",
    "LLaMA-architecture decoder (LLaMA-2, SmolLM2): GGUF or Hugging Face safetensors, F32/F16/BF16/Q8_0/Q4_0/Q4_1, "
    "KV cache, prefix embeddings, LLaMA-Adapter v2 and LoRA",
    "Touvron et al. 2023 (LLaMA 2); Gao et al. 2023 (LLaMA-Adapter V2); Hu et al. 2021 (LoRA); checked against "
    "golden/llama_tiny.safetensors",
    llama_params,
    sizeof llama_params / sizeof llama_params[0],
};
static const bp_descriptor *const descriptors[] = {&llama_descriptor};
static const bp_factory llm_factory = {sizeof(bp_factory), 1, descriptors, llama_create};

static const bp_factory *get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_LLM_ID) == 0 ? &llm_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "llama", "1.0.0", "MIT", NULL, NULL, NULL, get_factory,
};
