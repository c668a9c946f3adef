/* llama plugin — model record, hyper-parameter checks and weight binding
 * shared by the GGUF and Hugging Face loaders. */
#include "llama_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/quant.h"

bp_status lm_model_new(const char *path, const char *format, lm_model **out, bp_error *err) {
    *out = NULL;
    lm_model *m = calloc(1, sizeof *m);
    if (!m) return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    m->path = strdup(path);
    if (!m->path) {
        free(m);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    }
    m->label = m->path;
    m->format = format;
    m->hp.bos_id = -1;
    m->hp.eos_id = -1;
    *out = m;
    return BP_OK;
}

void lm_model_free(lm_model *m) {
    if (!m) return;
    tokenizer_free(m->tok);
    free(m->layers);
    free(m->norms);
    bp_gguf_close(m->gguf);
    for (int32_t i = 0; i < m->n_st; i++) bp_st_close(m->st[i]);
    free(m->st);
    free(m->path);
    free(m);
}

bp_status lm_hparams_check(const lm_model *m, bp_error *err) {
    const lm_hparams *h = &m->hp;
    const char *l = m->label;
    if (h->n_vocab <= 0 || h->n_embd <= 0 || h->n_layer <= 0 || h->n_head <= 0 || h->n_head_kv <= 0 ||
        h->head_dim <= 0 || h->n_ff <= 0 || h->n_ctx_train <= 0)
        return bp_error_set(err, BP_ERR_FORMAT,
                            "%s: invalid hyper-parameters (vocab %d, embd %d, layers %d, heads %d/%d, head_dim %d, "
                            "ff %d, context %d): all must be positive",
                            l, h->n_vocab, h->n_embd, h->n_layer, h->n_head, h->n_head_kv, h->head_dim, h->n_ff,
                            h->n_ctx_train);
    if (h->n_head % h->n_head_kv != 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: %d attention heads are not a multiple of %d KV heads", l,
                            h->n_head, h->n_head_kv);
    if (h->head_dim % 2 != 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: head dimension %d is odd (RoPE rotates pairs)", l, h->head_dim);
    if (h->n_embd > (1 << 20) || h->n_ff > (1 << 22) || h->n_layer > 4096 || h->n_head > 4096 ||
        (int64_t)h->n_head * h->head_dim > (1 << 20) || h->n_vocab > (1 << 24))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: hyper-parameters are implausibly large", l);
    if (!(h->rms_eps > 0.0f) || !(h->rope_theta > 0.0))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: rms_norm_eps (%g) and rope theta (%g) must be positive", l,
                            (double)h->rms_eps, h->rope_theta);
    return BP_OK;
}

bp_status lm_model_alloc_layers(lm_model *m, bp_error *err) {
    const lm_hparams *h = &m->hp;
    m->layers = calloc((size_t)h->n_layer, sizeof *m->layers);
    m->norms = calloc((size_t)(2 * h->n_layer + 1) * (size_t)h->n_embd, sizeof *m->norms);
    if (!m->layers || !m->norms) return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory");
    for (int32_t l = 0; l < h->n_layer; l++) {
        m->layers[l].attn_norm = m->norms + (size_t)(2 * l) * (size_t)h->n_embd;
        m->layers[l].ffn_norm = m->norms + (size_t)(2 * l + 1) * (size_t)h->n_embd;
    }
    m->output_norm = m->norms + (size_t)(2 * h->n_layer) * (size_t)h->n_embd;
    return BP_OK;
}

void lm_problem_add(lm_problems *p, bp_status code, const char *fmt, ...) {
    char one[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    size_t used = strlen(p->text);
    if (used + 8 < sizeof p->text)
        snprintf(p->text + used, sizeof p->text - used, "%s%s", p->count ? "; " : "", one);
    /* keep the first non-format code: UNSUPPORTED beats FORMAT */
    if (p->count == 0 || (p->code == BP_ERR_FORMAT && code != BP_ERR_FORMAT)) p->code = code;
    p->count++;
}

bp_status lm_problems_report(const lm_problems *p, const char *label, bp_error *err) {
    if (p->count == 0) return BP_OK;
    if (p->count == 1) return bp_error_set(err, (bp_status)p->code, "%s: %s", label, p->text);
    return bp_error_set(err, (bp_status)p->code, "%s: %d problems: %s", label, p->count, p->text);
}

const char *lm_shape_str(const bp_tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    if (cap == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < t->ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

static int computable(int32_t dtype) {
    return dtype == BP_DTYPE_F32 || dtype == BP_DTYPE_F16 || dtype == BP_DTYPE_BF16 || dtype == BP_DTYPE_Q8_0 ||
           dtype == BP_DTYPE_Q4_0 || dtype == BP_DTYPE_Q4_1;
}

int lm_bind_mat(lm_mat *dst, const bp_tensor *t, const char *name, int64_t rows, int64_t cols, lm_problems *p) {
    char have[64];
    if (!computable(t->dtype)) {
        lm_problem_add(p, BP_ERR_UNSUPPORTED,
                       "tensor '%s' has type %s, supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1", name,
                       bp_dtype_name(t->dtype));
        return 0;
    }
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' has shape %s, expected [%lld,%lld]", name,
                       lm_shape_str(t, have, sizeof have), (long long)rows, (long long)cols);
        return 0;
    }
    if (cols % bp_dtype_block_elems(t->dtype) != 0) {
        lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' (%s) has rows of %lld elements, not whole blocks", name,
                       bp_dtype_name(t->dtype), (long long)cols);
        return 0;
    }
    dst->dtype = t->dtype;
    dst->rows = rows;
    dst->cols = cols;
    dst->row_bytes = (size_t)(cols / bp_dtype_block_elems(t->dtype)) * bp_dtype_block_bytes(t->dtype);
    dst->data = t->data;
    return 1;
}

int lm_bind_norm(float *dst, const bp_tensor *t, const char *name, int64_t n, lm_problems *p) {
    char have[64];
    if (t->dtype != BP_DTYPE_F32 && t->dtype != BP_DTYPE_F16 && t->dtype != BP_DTYPE_BF16) {
        lm_problem_add(p, BP_ERR_UNSUPPORTED, "tensor '%s' has type %s, supported for norms: F32, F16, BF16", name,
                       bp_dtype_name(t->dtype));
        return 0;
    }
    if (t->ndim != 1 || t->shape[0] != n) {
        lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s' has shape %s, expected [%lld]", name,
                       lm_shape_str(t, have, sizeof have), (long long)n);
        return 0;
    }
    bp_error e = BP_ERROR_INIT;
    if (bp_dequantize_row(t->dtype, t->data, dst, n, &e) != BP_OK) {
        lm_problem_add(p, BP_ERR_FORMAT, "tensor '%s': %s", name, e.msg);
        return 0;
    }
    return 1;
}

bp_status lm_model_load(const char *path, lm_model **out, bp_error *err) {
    *out = NULL;
    if (!path || !path[0]) return bp_error_set(err, BP_ERR_INVALID, "llama: no model path given (parameter 'model')");
    size_t n = strlen(path);
    int is_gguf = n >= 5 && strcmp(path + n - 5, ".gguf") == 0;
    if (!is_gguf) {
        FILE *f = fopen(path, "rb");
        if (f) {
            char magic[4] = {0};
            if (fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0) is_gguf = 1;
            fclose(f);
        }
    }
    return is_gguf ? lm_model_load_gguf(path, out, err) : lm_model_load_hf(path, out, err);
}
