/* llama plugin — the forward pass over chunks of a batch, the KV cache and
 * the scratch it needs. See llama_forward.h for the threading scheme. */
#include "llama_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "llama_barrier.h"
#include "llama_ops.h"

/* ------------------------------------------------------------- memory -- */

static void *ctx_alloc(lm_ctx *c, size_t n_floats) {
    if (c->n_blocks == c->cap_blocks) {
        int32_t cap = c->cap_blocks ? 2 * c->cap_blocks : 32;
        void **grown = realloc(c->blocks, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        c->blocks = grown;
        c->cap_blocks = cap;
    }
    void *p = NULL;
    size_t bytes = (n_floats ? n_floats : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    c->blocks[c->n_blocks++] = p;
    return p;
}

static void scratch_free(lm_ctx *c) {
    for (int32_t i = 0; i < c->n_blocks; i++) free(c->blocks[i]);
    free(c->blocks);
    c->blocks = NULL;
    c->n_blocks = c->cap_blocks = 0;
    free(c->acts);
    c->acts = NULL;
}

static int32_t adapter_max_rank(const lm_ctx *c) {
    const lm_adapter *a = c->adapter;
    int32_t r = 0;
    if (!a) return 0;
    for (int32_t l = 0; l < c->model->hp.n_layer; l++)
        for (int p = 0; p < LM_PROJ_COUNT; p++)
            if (a->layers[l].lora[p].r > r) r = a->layers[l].lora[p].r;
    return r;
}

static int32_t adapter_prompt_len(const lm_ctx *c) {
    return (c->adapter && c->adapter->type == LM_ADAPTER_V2) ? c->adapter->n_prompt : 0;
}

static bp_status scratch_alloc(lm_ctx *c, bp_error *err) {
    const lm_hparams *h = &c->model->hp;
    const size_t T = (size_t)c->n_batch, E = (size_t)h->n_embd, Q = (size_t)h->n_head * (size_t)h->head_dim,
                 KV = (size_t)h->n_head_kv * (size_t)h->head_dim, F = (size_t)h->n_ff;
    c->lora_rmax = adapter_max_rank(c);
    const size_t R = (size_t)c->lora_rmax, P = (size_t)adapter_prompt_len(c);
    size_t kmax = E > Q ? E : Q;
    if (F > kmax) kmax = F;
    c->n_act_sets = 1;
    c->acts = calloc((size_t)c->n_act_sets, sizeof *c->acts);
    if (!c->acts) goto nomem;
    for (int32_t s = 0; s < c->n_act_sets; s++) {
        lm_acts *A = &c->acts[s];
        if (!(A->x_in = ctx_alloc(c, T * E)) || !(A->xn = ctx_alloc(c, T * E)) || !(A->q = ctx_alloc(c, T * Q)) ||
            !(A->k = ctx_alloc(c, T * KV)) || !(A->v = ctx_alloc(c, T * KV)) || !(A->att = ctx_alloc(c, T * Q)) ||
            !(A->mn = ctx_alloc(c, T * E)) || !(A->gate = ctx_alloc(c, T * F)) || !(A->up = ctx_alloc(c, T * F)) ||
            !(A->act = ctx_alloc(c, T * F)))
            goto nomem;
        A->x_mid = A->x_in; /* one shared record: the residual stream is updated in place */
    }
    c->x_out = c->acts[0].x_in;
    size_t tmp_w = E > F ? E : F;
    const size_t prompt_rows = P * (size_t)h->n_layer;
    const size_t q_rows = T > prompt_rows ? T : prompt_rows;
    const size_t n_scores = (size_t)c->n_ctx + P;
    c->qa.k = 0;
    c->qa.row_q = lm_qact_row_q((int64_t)kmax);
    c->qa.row_s = lm_qact_row_s((int64_t)kmax);
    if (!(c->tmp = ctx_alloc(c, T * tmp_w)) || !(c->lora_t = ctx_alloc(c, (size_t)LM_PROJ_COUNT * T * (R ? R : 1))) ||
        !(c->rope_cs = ctx_alloc(c, T * (size_t)h->head_dim / 2)) ||
        !(c->rope_sn = ctx_alloc(c, T * (size_t)h->head_dim / 2)) ||
        !(c->scores = ctx_alloc(c, (size_t)c->n_threads * n_scores)) || !(c->out_h = ctx_alloc(c, T * E)) ||
        !(c->pk = ctx_alloc(c, prompt_rows * KV)) || !(c->pv = ctx_alloc(c, prompt_rows * KV)))
        goto nomem;
    c->qa.q = NULL;
    c->qa.s = NULL;
    if (!c->exact && (!(c->qa.q = ctx_alloc(c, q_rows * (size_t)c->qa.row_q / sizeof(float))) ||
                      !(c->qa.s = ctx_alloc(c, q_rows * (size_t)c->qa.row_s))))
        goto nomem;
    return BP_OK;
nomem:
    scratch_free(c);
    return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory for the scratch of %d positions", c->n_batch);
}

bp_status lm_ctx_init(lm_ctx *c, const lm_model *m, const lm_adapter *a, const lm_ctx_params *p, bp_error *err) {
    memset(c, 0, sizeof *c);
    c->model = m;
    c->adapter = a;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : m->hp.n_ctx_train;
    c->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if (c->n_batch > c->n_ctx) c->n_batch = c->n_ctx;
    c->n_threads = p->n_threads > 0 ? p->n_threads : 1;
    bp_status st = lm_kernels_select(p->isa, &c->kr, err);
    if (st != BP_OK) return st;
    const lm_hparams *h = &m->hp;
    c->exact = p->exact ? 1 : 0;
    c->kv_f16 = p->kv_f16 && !c->exact ? 1 : 0; /* exact attention needs the F32 cache */
    const size_t kv_elems = (size_t)h->n_layer * 2 * (size_t)h->n_head_kv * (size_t)c->n_ctx * (size_t)h->head_dim;
    /* untouched pages of this block are never made resident */
    c->kv = malloc(kv_elems * (c->kv_f16 ? sizeof(uint16_t) : sizeof(float)));
    if (!c->kv) {
        lm_ctx_free(c);
        return bp_error_set(err, BP_ERR_NOMEM, "llama: out of memory for a KV cache of %d positions", c->n_ctx);
    }
    if ((st = scratch_alloc(c, err)) != BP_OK) {
        lm_ctx_free(c);
        return st;
    }
    return BP_OK;
}

void lm_ctx_free(lm_ctx *c) {
    scratch_free(c);
    free(c->kv);
    c->kv = NULL;
}

bp_status lm_ctx_set_adapter(lm_ctx *c, const lm_adapter *a, bp_error *err) {
    scratch_free(c);
    c->adapter = a;
    c->n_past = 0;
    c->prompts_valid = 0;
    return scratch_alloc(c, err);
}

bp_status lm_ctx_truncate(lm_ctx *c, int32_t n_keep, bp_error *err) {
    if (n_keep < 0)
        return bp_error_set(err, BP_ERR_INVALID, "llama: kv_truncate: n_keep = %d is negative", n_keep);
    if (n_keep < c->n_past) c->n_past = n_keep;
    return BP_OK;
}

/* ------------------------------------------------------------ threads -- */

static void sync_threads(lm_ctx *c) { lm_barrier_wait(&c->barrier); }

static void split(int64_t n, int ith, int nth, int64_t *a, int64_t *b) {
    *a = n * ith / nth;
    *b = n * (ith + 1) / nth;
}

/* ---------------------------------------------------------- the chunk -- */

typedef struct lm_chunk {
    lm_ctx *c;
    const lm_batch *b;
    int64_t i0, T;     /* batch items [i0, i0 + T) */
    int64_t pos0;      /* absolute position of item i0 */
    int64_t t_out0;    /* first local row with an output (T when none) */
    int64_t first_out; /* batch item of output row 0 */
    int prompts;       /* compute the adapter prompt keys/values in this chunk */
} lm_chunk;

typedef struct mm_job {
    lm_mat w;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
} mm_job;

/* Split the rows of all jobs over the threads, in units of 16 rows. */
static void run_jobs(const lm_ctx *c, const mm_job *jobs, int n_jobs, const lm_qact *qa, int64_t n, int ith,
                     int nth) {
    int64_t total = 0;
    for (int i = 0; i < n_jobs; i++) total += jobs[i].w.rows;
    const int64_t units = (total + 15) / 16;
    int64_t a, b;
    split(units, ith, nth, &a, &b);
    a *= 16;
    b = b * 16 < total ? b * 16 : total;
    int64_t base = 0;
    for (int i = 0; i < n_jobs; i++) {
        const int64_t rows = jobs[i].w.rows;
        const int64_t lo = a > base ? a : base, hi = b < base + rows ? b : base + rows;
        if (lo < hi && c->exact)
            lm_matmul_f32act(&c->kr, &jobs[i].w, lo - base, hi - base, jobs[i].x, jobs[i].ldx, n, jobs[i].y,
                             jobs[i].ldy);
        else if (lo < hi)
            lm_matmul(&c->kr, &jobs[i].w, lo - base, hi - base, jobs[i].x, jobs[i].ldx, qa, n, jobs[i].y,
                      jobs[i].ldy);
        base += rows;
    }
}

static lm_qact qact_for(const lm_ctx *c, int64_t k) {
    lm_qact q = c->qa;
    q.k = k;
    q.row_q = lm_qact_row_q(k);
    q.row_s = lm_qact_row_s(k);
    return q;
}

static mm_job job(const lm_mat *w, const float *x, int64_t ldx, float *y, int64_t ldy) {
    mm_job j = {*w, x, ldx, y, ldy};
    return j;
}

/* A LoRA A matrix [r, in] as an F32 weight. */
static mm_job lora_job(const lm_lora *lo, int64_t in, const float *x, float *y) {
    mm_job j;
    j.w.dtype = BP_DTYPE_F32;
    j.w.rows = lo->r;
    j.w.cols = in;
    j.w.row_bytes = (size_t)in * sizeof(float);
    j.w.data = (const uint8_t *)lo->a;
    j.x = x;
    j.ldx = in;
    j.y = y;
    j.ldy = lo->r;
    return j;
}

/* Do products with w read 8-bit activations (fast precision, quantized weights)? */
static int uses_qact(const lm_ctx *c, const lm_mat *w) { return !c->exact && lm_mat_quantized(w); }

static void rmsnorm(const lm_ctx *c, const float *x, const float *w, int64_t n, float *y) {
    if (c->exact) lm_rmsnorm_exact(x, w, c->model->hp.rms_eps, n, y);
    else lm_rmsnorm(x, w, c->model->hp.rms_eps, n, y);
}

static const float *norm_of(const float *base, const float *adapted) { return adapted ? adapted : base; }

static float *lora_buf(const lm_chunk *ch, lm_proj p) {
    const int32_t r = ch->c->lora_rmax;
    return ch->c->lora_t + (size_t)p * (size_t)ch->c->n_batch * (size_t)(r ? r : 1);
}

static const lm_lora *lora_of(const lm_ctx *c, int32_t l, lm_proj p) {
    return (c->adapter && c->adapter->layers[l].lora[p].r > 0) ? &c->adapter->layers[l].lora[p] : NULL;
}

/* Add the LoRA A jobs of the projections in `ps` reading x [T, in]. */
static int add_lora_jobs(const lm_chunk *ch, int32_t l, const lm_proj *ps, int n, const float *x, int64_t in,
                         mm_job *jobs, int n_jobs) {
    for (int i = 0; i < n; i++) {
        const lm_lora *lo = lora_of(ch->c, l, ps[i]);
        if (lo) jobs[n_jobs++] = lora_job(lo, in, x, lora_buf(ch, ps[i]));
    }
    return n_jobs;
}

static void apply_epilogue(const lm_chunk *ch, int32_t l, lm_proj p, int64_t t, float *y_row, int64_t n_out) {
    lm_epilogue e = lm_epilogue_of(ch->c->adapter, l, p);
    if (!lm_epilogue_active(&e)) return;
    const float *t1 = e.lora_b ? lora_buf(ch, p) + t * e.lora_r : NULL;
    lm_epilogue_apply(&e, t1, y_row, n_out);
}

/* Rows of KV head g of layer l: [n_ctx][hd] elements of the cache type. */
static void *cache_at(const lm_ctx *c, int32_t l, int kv, int32_t g) {
    const lm_hparams *h = &c->model->hp;
    const size_t row = (((size_t)l * 2 + (size_t)kv) * (size_t)h->n_head_kv + (size_t)g) * (size_t)c->n_ctx;
    return (uint8_t *)c->kv + row * (size_t)h->head_dim * (c->kv_f16 ? sizeof(uint16_t) : sizeof(float));
}

/* Store hd values at position p of KV head g. */
static void cache_store(const lm_ctx *c, int32_t l, int kv, int32_t g, int64_t p, const float *src) {
    const int32_t hd = c->model->hp.head_dim;
    void *base = cache_at(c, l, kv, g);
    if (c->kv_f16) c->kr.to_f16(src, (uint16_t *)base + p * hd, hd);
    else memcpy((float *)base + p * hd, src, (size_t)hd * sizeof(float));
}

/* Embeddings of the chunk's items into x. */
static void step_embed(const lm_chunk *ch, float *x, int ith, int nth) {
    const lm_model *m = ch->c->model;
    const int64_t E = m->hp.n_embd;
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        const int64_t item = ch->i0 + t;
        if (item < ch->b->n_prefix) memcpy(x + t * E, ch->b->prefix + item * E, (size_t)E * sizeof(float));
        else lm_mat_row_f32(&m->tok_embd, ch->b->tokens[item - ch->b->n_prefix], x + t * E);
    }
}

static lm_qact qact_rows_at(lm_qact qa, int64_t row) {
    qa.q += row * qa.row_q;
    qa.s += row * qa.row_s;
    return qa;
}

/* Adapter prompts: P·Wkᵀ and P·Wvᵀ of every adapted layer (frozen weights, no epilogue). */
static void step_prompts(const lm_chunk *ch, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const lm_hparams *h = &m->hp;
    const int64_t E = h->n_embd, KV = (int64_t)h->n_head_kv * h->head_dim, P = c->adapter->n_prompt;
    const lm_qact qa = qact_for(c, E);
    int64_t a, b;
    split(c->exact ? 0 : (int64_t)h->n_layer * P, ith, nth, &a, &b); /* exact: products read the prompts */
    for (int64_t i = a; i < b; i++) {
        const float *prompt = c->adapter->layers[i / P].prompt;
        lm_qact ql = qact_rows_at(qa, (i / P) * P);
        if (prompt) c->kr.quantize(prompt, E, i % P, i % P + 1, &ql);
    }
    sync_threads(c);
    for (int32_t l = 0; l < h->n_layer; l++) {
        const float *prompt = c->adapter->layers[l].prompt;
        if (!prompt) continue;
        const lm_qact ql = c->exact ? qa : qact_rows_at(qa, (int64_t)l * P); /* exact: no quantized rows */
        mm_job jobs[2] = {job(&m->layers[l].wk, prompt, E, c->pk + (size_t)l * (size_t)(P * KV), KV),
                          job(&m->layers[l].wv, prompt, E, c->pv + (size_t)l * (size_t)(P * KV), KV)};
        run_jobs(c, jobs, 2, &ql, P, ith, nth);
    }
    sync_threads(c);
}

/* Row step: finish the previous layer's FFN residual (when l > 0), then
 * xn = RMSNorm(x_in) and its quantized form. */
static void step_attn_in(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    const lm_layer *L = &m->layers[l];
    const int quant = uses_qact(c, &L->wq) || uses_qact(c, &L->wk) || uses_qact(c, &L->wv);
    lm_qact qa = qact_for(c, E);
    const float *w = norm_of(L->attn_norm, c->adapter ? c->adapter->layers[l].attn_norm : NULL);
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        if (l > 0) {
            const lm_acts *P = &c->acts[c->n_act_sets == 1 ? 0 : l - 1];
            float *d = c->tmp + t * E;
            apply_epilogue(ch, l - 1, LM_PROJ_DOWN, t, d, E);
            for (int64_t i = 0; i < E; i++) A->x_in[t * E + i] = P->x_mid[t * E + i] + d[i];
        }
        rmsnorm(c, A->x_in + t * E, w, E, A->xn + t * E);
        if (quant) c->kr.quantize(A->xn, E, t, t + 1, &qa);
    }
}

static void step_qkv(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd, Q = (int64_t)m->hp.n_head * m->hp.head_dim,
                  KV = (int64_t)m->hp.n_head_kv * m->hp.head_dim;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    const lm_layer *L = &m->layers[l];
    mm_job jobs[6] = {job(&L->wq, A->xn, E, A->q, Q), job(&L->wk, A->xn, E, A->k, KV), job(&L->wv, A->xn, E, A->v, KV)};
    static const lm_proj ps[3] = {LM_PROJ_Q, LM_PROJ_K, LM_PROJ_V};
    int n = add_lora_jobs(ch, l, ps, 3, A->xn, E, jobs, 3);
    lm_qact qa = qact_for(c, E);
    run_jobs(c, jobs, n, &qa, ch->T, ith, nth);
}

/* Row step: epilogues of q/k/v, RoPE, and k/v into the cache. */
static void step_rope(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_hparams *h = &c->model->hp;
    const int64_t Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim,
                  half = h->head_dim / 2;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        float *q = A->q + t * Q, *k = A->k + t * KV, *v = A->v + t * KV;
        apply_epilogue(ch, l, LM_PROJ_Q, t, q, Q);
        apply_epilogue(ch, l, LM_PROJ_K, t, k, KV);
        apply_epilogue(ch, l, LM_PROJ_V, t, v, KV);
        lm_rope_apply(q, h->n_head, h->head_dim, h->rope_layout, c->rope_cs + t * half, c->rope_sn + t * half);
        lm_rope_apply(k, h->n_head_kv, h->head_dim, h->rope_layout, c->rope_cs + t * half, c->rope_sn + t * half);
        if (c->kv_f16) c->kr.round_f16(q, Q); /* llama.cpp multiplies f16 q with its f16 cache */
        const int64_t p = ch->pos0 + t;
        for (int32_t g = 0; g < h->n_head_kv; g++) {
            cache_store(c, l, 0, g, p, k + (int64_t)g * h->head_dim);
            cache_store(c, l, 1, g, p, v + (int64_t)g * h->head_dim);
        }
    }
}

/* (position, head) step: attention, then (row step) quantize its output. */
static void step_attention(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_hparams *h = &c->model->hp;
    const int64_t Q = (int64_t)h->n_head * h->head_dim, KV = (int64_t)h->n_head_kv * h->head_dim;
    const int32_t group = h->n_head / h->n_head_kv;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    const lm_adapter_layer *AL = c->adapter ? &c->adapter->layers[l] : NULL;
    const int32_t n_prompt = (AL && AL->prompt) ? c->adapter->n_prompt : 0;
    const float *pk = c->pk + (size_t)l * (size_t)(n_prompt * KV), *pv = c->pv + (size_t)l * (size_t)(n_prompt * KV);
    float *scores = c->scores + (size_t)ith * (size_t)(c->n_ctx + adapter_prompt_len(c));
    const float scale = 1.0f / sqrtf((float)h->head_dim);
    int64_t a, b;
    split(ch->T * h->n_head, ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        const int64_t t = i / h->n_head;
        const int32_t hd = (int32_t)(i % h->n_head), g = hd / group;
        const float gate = n_prompt ? tanhf(AL->gate[hd]) : 0.0f;
        lm_attend(&c->kr, A->q + t * Q + (int64_t)hd * h->head_dim, cache_at(c, l, 0, g), cache_at(c, l, 1, g),
                  c->kv_f16, c->exact, ch->pos0 + t + 1,
                  h->head_dim, scale, pk + (int64_t)g * h->head_dim, pv + (int64_t)g * h->head_dim, KV, n_prompt,
                  gate, scores, A->att + t * Q + (int64_t)hd * h->head_dim);
    }
    sync_threads(c);
    if (uses_qact(c, &c->model->layers[l].wo)) {
        lm_qact qa = qact_for(c, Q);
        split(ch->T, ith, nth, &a, &b);
        if (a < b) c->kr.quantize(A->att, Q, a, b, &qa);
    }
}

static void step_o(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd, Q = (int64_t)m->hp.n_head * m->hp.head_dim;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    mm_job jobs[2] = {job(&m->layers[l].wo, A->att, Q, c->tmp, E)};
    static const lm_proj ps[1] = {LM_PROJ_O};
    int n = add_lora_jobs(ch, l, ps, 1, A->att, Q, jobs, 1);
    lm_qact qa = qact_for(c, Q);
    run_jobs(c, jobs, n, &qa, ch->T, ith, nth);
}

/* Row step: x_mid = x_in + o, mn = RMSNorm(x_mid) and its quantized form. */
static void step_ffn_in(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    const lm_layer *L = &m->layers[l];
    const int quant = uses_qact(c, &L->wgate) || uses_qact(c, &L->wup);
    const float *w = norm_of(L->ffn_norm, c->adapter ? c->adapter->layers[l].ffn_norm : NULL);
    lm_qact qa = qact_for(c, E);
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        float *o = c->tmp + t * E;
        apply_epilogue(ch, l, LM_PROJ_O, t, o, E);
        for (int64_t i = 0; i < E; i++) A->x_mid[t * E + i] = A->x_in[t * E + i] + o[i];
        rmsnorm(c, A->x_mid + t * E, w, E, A->mn + t * E);
        if (quant) c->kr.quantize(A->mn, E, t, t + 1, &qa);
    }
}

static void step_gate_up(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd, F = m->hp.n_ff;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    mm_job jobs[4] = {job(&m->layers[l].wgate, A->mn, E, A->gate, F), job(&m->layers[l].wup, A->mn, E, A->up, F)};
    static const lm_proj ps[2] = {LM_PROJ_GATE, LM_PROJ_UP};
    int n = add_lora_jobs(ch, l, ps, 2, A->mn, E, jobs, 2);
    lm_qact qa = qact_for(c, E);
    run_jobs(c, jobs, n, &qa, ch->T, ith, nth);
}

/* Row step: epilogues, SwiGLU and its quantized form. */
static void step_swiglu(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const int64_t F = c->model->hp.n_ff;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    const int quant = uses_qact(c, &c->model->layers[l].wdown);
    lm_qact qa = qact_for(c, F);
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        apply_epilogue(ch, l, LM_PROJ_GATE, t, A->gate + t * F, F);
        apply_epilogue(ch, l, LM_PROJ_UP, t, A->up + t * F, F);
        if (c->exact) lm_swiglu_exact(A->gate + t * F, A->up + t * F, F, A->act + t * F);
        else lm_swiglu(A->gate + t * F, A->up + t * F, F, A->act + t * F);
        if (quant) c->kr.quantize(A->act, F, t, t + 1, &qa);
    }
}

static void step_down(const lm_chunk *ch, int32_t l, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd, F = m->hp.n_ff;
    lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : l];
    mm_job jobs[2] = {job(&m->layers[l].wdown, A->act, F, c->tmp, E)};
    static const lm_proj ps[1] = {LM_PROJ_DOWN};
    int n = add_lora_jobs(ch, l, ps, 1, A->act, F, jobs, 1);
    lm_qact qa = qact_for(c, F);
    run_jobs(c, jobs, n, &qa, ch->T, ith, nth);
}

/* Row step: last residual, final norm of the output rows, hidden states. */
static void step_final(const lm_chunk *ch, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int32_t L = m->hp.n_layer;
    const int64_t E = m->hp.n_embd;
    const lm_acts *A = &c->acts[c->n_act_sets == 1 ? 0 : L - 1];
    const float *w = norm_of(m->output_norm, c->adapter ? c->adapter->output_norm : NULL);
    lm_qact qa = qact_for(c, E);
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        float *d = c->tmp + t * E;
        apply_epilogue(ch, L - 1, LM_PROJ_DOWN, t, d, E);
        for (int64_t i = 0; i < E; i++) c->x_out[t * E + i] = A->x_mid[t * E + i] + d[i];
        if (t < ch->t_out0) continue;
        const int64_t o = t - ch->t_out0;
        rmsnorm(c, c->x_out + t * E, w, E, c->out_h + o * E);
        if (ch->b->hidden)
            memcpy(ch->b->hidden + (ch->i0 + t - ch->first_out) * E, c->out_h + o * E, (size_t)E * sizeof(float));
        if (ch->b->logits && uses_qact(c, &m->output)) c->kr.quantize(c->out_h, E, o, o + 1, &qa);
    }
}

static void step_logits(const lm_chunk *ch, int ith, int nth) {
    lm_ctx *c = ch->c;
    const lm_model *m = c->model;
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab, n_o = ch->T - ch->t_out0;
    if (!ch->b->logits || n_o <= 0) return;
    mm_job jobs[1] = {job(&m->output, c->out_h, E, ch->b->logits + (ch->i0 + ch->t_out0 - ch->first_out) * V, V)};
    lm_qact qa = qact_for(c, E);
    run_jobs(c, jobs, 1, &qa, n_o, ith, nth);
}

static void chunk_thread(const lm_chunk *ch, int ith, int nth) {
    lm_ctx *c = ch->c;
    const int32_t L = c->model->hp.n_layer;
    const int32_t half = c->model->hp.head_dim / 2;
    float *x0 = c->acts[0].x_in;
    step_embed(ch, x0, ith, nth);
    int64_t a, b;
    split(ch->T, ith, nth, &a, &b);
    for (int64_t t = a; t < b; t++) {
        if (c->exact)
            lm_rope_table_exact(c->model->hp.rope_theta, c->model->hp.head_dim, ch->pos0 + t, c->rope_cs + t * half,
                                c->rope_sn + t * half);
        else
            lm_rope_table((float)c->model->hp.rope_theta, c->model->hp.head_dim, ch->pos0 + t, c->rope_cs + t * half,
                          c->rope_sn + t * half);
    }
    sync_threads(c);
    if (ch->prompts) step_prompts(ch, ith, nth);
    for (int32_t l = 0; l < L; l++) {
        step_attn_in(ch, l, ith, nth);
        sync_threads(c);
        step_qkv(ch, l, ith, nth);
        sync_threads(c);
        step_rope(ch, l, ith, nth);
        sync_threads(c);
        step_attention(ch, l, ith, nth);
        sync_threads(c);
        step_o(ch, l, ith, nth);
        sync_threads(c);
        step_ffn_in(ch, l, ith, nth);
        sync_threads(c);
        step_gate_up(ch, l, ith, nth);
        sync_threads(c);
        step_swiglu(ch, l, ith, nth);
        sync_threads(c);
        step_down(ch, l, ith, nth);
        sync_threads(c);
    }
    step_final(ch, ith, nth);
    sync_threads(c);
    step_logits(ch, ith, nth);
}

static void run_chunk(const lm_chunk *ch) {
#ifdef _OPENMP
    const int n = ch->c->n_threads;
    if (n > 1) {
#pragma omp parallel num_threads(n)
        {
            /* the team may be smaller than asked for: size the barrier by it */
#pragma omp single
            lm_barrier_init(&ch->c->barrier, omp_get_num_threads());
            chunk_thread(ch, omp_get_thread_num(), omp_get_num_threads());
        }
        return;
    }
#endif
    lm_barrier_init(&ch->c->barrier, 1);
    chunk_thread(ch, 0, 1);
}

/* ------------------------------------------------------------- eval -- */

bp_status lm_ctx_eval(lm_ctx *c, const lm_batch *b, bp_error *err) {
    const lm_hparams *h = &c->model->hp;
    const int64_t n = b->n_prefix + b->n_tokens;
    if (b->n_prefix < 0 || b->n_tokens < 0 || (b->n_tokens > 0 && !b->tokens) || (b->n_prefix > 0 && !b->prefix))
        return bp_error_set(err, BP_ERR_INVALID, "llama: eval: invalid batch (counts or missing arrays)");
    if (b->pos < 0 || b->pos > c->n_past)
        return bp_error_set(err, BP_ERR_INVALID,
                            "llama: eval: pos = %d but the KV cache holds %d positions (use 0..%d)", b->pos, c->n_past,
                            c->n_past);
    if ((int64_t)b->pos + n > c->n_ctx)
        return bp_error_set(err, BP_ERR_INVALID, "llama: %s: prompt of %lld tokens exceeds the model's context of %d",
                            c->model->label, (long long)((int64_t)b->pos + n), c->n_ctx);
    if (b->n_out < 0 || b->n_out > n)
        return bp_error_set(err, BP_ERR_INVALID, "llama: eval: n_logits = %d, the batch has %lld positions", b->n_out,
                            (long long)n);
    if (b->n_out > 0 && !b->logits && !b->hidden)
        return bp_error_set(err, BP_ERR_INVALID, "llama: eval: n_logits = %d but no logits or hidden buffer",
                            b->n_out);
    for (int64_t i = 0; i < b->n_tokens; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= h->n_vocab)
            return bp_error_set(err, BP_ERR_INVALID, "llama: eval: token %lld is %d, outside the vocabulary [0, %d)",
                                (long long)i, b->tokens[i], h->n_vocab);
    for (int64_t i = 0; i < b->n_prefix * h->n_embd; i++)
        if (!isfinite(b->prefix[i]))
            return bp_error_set(err, BP_ERR_NUMERIC, "llama: eval: prefix embedding %lld, element %lld is not finite",
                                (long long)(i / h->n_embd), (long long)(i % h->n_embd));
    c->n_past = b->pos; /* positions from pos on are replaced */
    const int prompts = adapter_prompt_len(c) > 0;
    for (int64_t i0 = 0; i0 < n; i0 += c->n_batch) {
        lm_chunk ch;
        ch.c = c;
        ch.b = b;
        ch.i0 = i0;
        ch.T = n - i0 < c->n_batch ? n - i0 : c->n_batch;
        ch.pos0 = b->pos + i0;
        ch.first_out = n - b->n_out;
        ch.t_out0 = ch.first_out > i0 ? ch.first_out - i0 : 0;
        if (ch.t_out0 > ch.T) ch.t_out0 = ch.T;
        /* prompt keys/values are recomputed at the start of every sequence */
        ch.prompts = prompts && (ch.pos0 == 0 || !c->prompts_valid);
        run_chunk(&ch);
        c->n_past = (int32_t)(ch.pos0 + ch.T);
        if (ch.prompts) c->prompts_valid = 1;
    }
    return BP_OK;
}
