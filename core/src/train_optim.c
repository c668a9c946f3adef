/* train: AdamW state (first and second moments on the backend), the
 * learning-rate schedule (per-step linear warm-up, then half-cycle cosine to
 * min_lr, as MAE's lr_sched) and layer-wise lr decay. The update itself is
 * the backend's op (bp_op_adamw). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

double bp_lr_at(const bp_lr_schedule *s, int64_t step) {
    if (!s) return 0.0;
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps) return s->lr * (double)step / (double)s->warmup_steps;
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0) return s->lr;
    double frac = (double)(step - s->warmup_steps) / (double)span;
    if (frac > 1.0) frac = 1.0;
    return s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
}

double bp_layer_decay_scale(double decay, int32_t n_layers, int32_t layer_id) {
    int32_t k = n_layers - 1 - layer_id;
    if (k <= 0) return 1.0;
    return pow(decay, (double)k);
}

bp_status train_optim_init(train_optim *o, const train_model *m, const train_cfg *c, bp_error *err) {
    memset(o, 0, sizeof *o);
    o->n = m->n_params;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->weight_decay = c->weight_decay;
    o->m = calloc(o->n, sizeof *o->m);
    o->v = calloc(o->n, sizeof *o->v);
    o->lr_scale = calloc(o->n, sizeof *o->lr_scale);
    if (!o->m || !o->v || !o->lr_scale) {
        train_optim_free(o);
        return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    bp_status st = BP_OK;
    for (uint32_t i = 0; i < o->n && st == BP_OK; i++) {
        const bp_train_param *p = &m->params[i];
        o->lr_scale[i] = bp_layer_decay_scale(c->layer_decay, m->n_layers, p->layer_id);
        if (!p->trainable) continue;
        st = bp_tensor_new(m->be, BP_DTYPE_F32, p->value->ndim, p->value->shape, &o->m[i], err);
        if (st == BP_OK) st = bp_tensor_new(m->be, BP_DTYPE_F32, p->value->ndim, p->value->shape, &o->v[i], err);
    }
    if (st == BP_OK) st = train_optim_zero(o, err);
    if (st != BP_OK) train_optim_free(o);
    return st;
}

void train_optim_free(train_optim *o) {
    if (!o) return;
    for (uint32_t i = 0; o->m && i < o->n; i++) bp_tensor_free(o->m[i]);
    for (uint32_t i = 0; o->v && i < o->n; i++) bp_tensor_free(o->v[i]);
    free(o->m);
    free(o->v);
    free(o->lr_scale);
    memset(o, 0, sizeof *o);
}

bp_status train_optim_zero(train_optim *o, bp_error *err) {
    for (uint32_t i = 0; i < o->n; i++) {
        if (!o->m[i]) continue;
        bp_status st = bp_op_fill(o->m[i]->backend, o->m[i], 0.0f, err);
        if (st == BP_OK) st = bp_op_fill(o->v[i]->backend, o->v[i], 0.0f, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

bp_status train_optim_step(train_optim *o, train_model *m, double lr_base, int64_t adam_step, float grad_scale,
                           bp_error *err) {
    for (uint32_t i = 0; i < o->n; i++) {
        const bp_train_param *p = &m->params[i];
        if (!p->trainable || !o->m[i]) continue;
        bp_adamw_desc d;
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        d.param = p->value;
        d.grad = p->grad;
        d.m = o->m[i];
        d.v = o->v[i];
        d.lr = (float)(lr_base * o->lr_scale[i]);
        d.beta1 = (float)o->beta1;
        d.beta2 = (float)o->beta2;
        d.eps = (float)o->eps;
        d.weight_decay = p->decay ? (float)o->weight_decay : 0.0f;
        d.grad_scale = grad_scale;
        d.step = adam_step;
        bp_status st = bp_op_adamw(m->be, &d, err);
        if (st != BP_OK) {
            bp_error_prefix(err, "train: AdamW on %s: ", p->name);
            return st;
        }
    }
    return BP_OK;
}
