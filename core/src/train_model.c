/* train: the encoder being trained, through its trainable extension:
 * the table and parameter checks, the output ports and the logits heads,
 * the batch tensors on the backend, forward/backward with host gradients,
 * and initial weights by name. */
#include <stdlib.h>
#include <string.h>

#include "batpipe/safetensors.h"
#include "train_internal.h"

static const char *const head_names[TRAIN_HEAD_COUNT] = {"logits_class", "logits_distance", "logits_azimuth",
                                                         "logits_elevation"};

static void free_batch_tensors(train_model *m) {
    bp_tensor_free(m->input);
    m->input = NULL;
    for (uint32_t i = 0; i < BP_MAX_OUTPUTS; i++) {
        bp_tensor_free(m->outputs[i]);
        bp_tensor_free(m->d_outputs[i]);
        m->outputs[i] = m->d_outputs[i] = NULL;
    }
}

static int is_head_port(const train_model *m, uint32_t i) {
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        if (m->head_port[h] == (int32_t)i) return 1;
    return 0;
}

/* prepare for [batch, C, T, F] and allocate input, outputs, head gradients */
static bp_status prepare_batch(train_model *m, int64_t batch, bp_error *err) {
    free_batch_tensors(m);
    bp_spec have = bp_spec_f32(4, m->in_shape, 0, "batch,channels,frames,bins");
    have.shape[0] = batch;
    bp_error e2 = BP_ERROR_INIT;
    uint32_t n = BP_MAX_OUTPUTS;
    memset(m->ports, 0, sizeof m->ports);
    bp_status st = m->st->prepare(m->st, &have, m->ports, &n, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: prepare: %s", m->label, e2.msg);
    if (n < 1 || n > BP_MAX_OUTPUTS)
        return bp_error_set(err, BP_ERR_INTERNAL, "%s: prepare reported %u outputs", m->label, n);
    m->n_ports = n;
    m->in_shape[0] = batch;
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        m->head_port[h] = -1;
        m->head_width[h] = 0;
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(m->ports[i].name, head_names[h]) == 0) {
                const bp_spec *s = &m->ports[i].spec;
                if (s->ndim != 2 || s->shape[0] != batch || s->shape[1] < 1 || s->dtype != BP_DTYPE_F32) {
                    char d[256];
                    return bp_error_set(err, BP_ERR_SPEC, "%s: output %s is %s, expected F32[%lld, classes]", m->label,
                                        head_names[h], bp_spec_describe(s, d, sizeof d), (long long)batch);
                }
                m->head_port[h] = (int32_t)i;
                m->head_width[h] = s->shape[1];
            }
    }
    st = bp_tensor_new(m->be, BP_DTYPE_F32, 4, m->in_shape, &m->input, err);
    for (uint32_t i = 0; st == BP_OK && i < n; i++) {
        const bp_spec *s = &m->ports[i].spec;
        for (int32_t d = 0; d < s->ndim; d++)
            if (s->shape[d] < 0) {
                char desc[256];
                return bp_error_set(err, BP_ERR_SPEC, "%s: output %s has no concrete shape for a batch of %lld: %s",
                                    m->label, m->ports[i].name, (long long)batch,
                                    bp_spec_describe(s, desc, sizeof desc));
            }
        int32_t dt = s->dtype < 0 ? BP_DTYPE_F32 : s->dtype;
        st = bp_tensor_new(m->be, dt, s->ndim, s->shape, &m->outputs[i], err);
        if (st == BP_OK && is_head_port(m, i)) st = bp_tensor_new(m->be, dt, s->ndim, s->shape, &m->d_outputs[i], err);
    }
    return st;
}

static bp_status check_params(train_model *m, bp_error *err) {
    m->n_layers = m->tr->n_layers(m->st);
    m->n_params = m->tr->param_count(m->st);
    if (m->n_layers < 1) return bp_error_set(err, BP_ERR_INTERNAL, "%s: n_layers is %d", m->label, m->n_layers);
    if (m->n_params == 0) return bp_error_set(err, BP_ERR_INVALID, "%s: has no parameters to train", m->label);
    m->params = calloc(m->n_params, sizeof *m->params);
    if (!m->params) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    for (uint32_t i = 0; i < m->n_params; i++) {
        bp_train_param *p = &m->params[i];
        p->struct_size = sizeof *p;
        bp_error e2 = BP_ERROR_INIT;
        bp_status st = m->tr->param_at(m->st, i, p, &e2);
        if (st != BP_OK) return bp_error_set(err, st, "%s: param_at(%u): %s", m->label, i, e2.msg);
        if (!p->name || !p->name[0] || !p->value)
            return bp_error_set(err, BP_ERR_INTERNAL, "%s: parameter %u has no name or value", m->label, i);
        if (p->layer_id < 0 || p->layer_id >= m->n_layers)
            return bp_error_set(err, BP_ERR_INTERNAL, "%s: parameter %s has layer id %d outside [0, %d)", m->label,
                                p->name, p->layer_id, m->n_layers);
        if (p->trainable) {
            if (!p->grad || !bp_tensor_same_shape(p->value, p->grad) || p->value->dtype != BP_DTYPE_F32)
                return bp_error_set(err, BP_ERR_INTERNAL,
                                    "%s: trainable parameter %s needs an F32 value and a gradient of the same shape",
                                    m->label, p->name);
            m->n_trainable_values += bp_tensor_numel(p->value);
        } else {
            m->n_buffer_values += bp_tensor_numel(p->value);
        }
        if (bp_tensor_nbytes(p->value) == 0 && bp_tensor_numel(p->value) > 0)
            return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: parameter %s has an unsupported dtype %s", m->label,
                                p->name, bp_dtype_name(p->value->dtype));
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->params[j].name, p->name) == 0)
                return bp_error_set(err, BP_ERR_INTERNAL, "%s: two parameters are named %s", m->label, p->name);
    }
    return BP_OK;
}

bp_status train_model_create(train_model *m, bp_registry *reg, const train_comp *enc, bp_backend *be,
                             const bp_spec *features, const char *producer, bp_error *err) {
    memset(m, 0, sizeof *m);
    m->be = be;
    snprintf(m->label, sizeof m->label, "%s", enc->label);
    void *inst = NULL;
    bp_status st = bp_registry_create(reg, enc->comp, bp_paramset_params(enc->params), be, &inst, err);
    if (st != BP_OK) return st;
    m->st = inst;
    if (m->st->struct_size < offsetof(bp_stage, destroy) + sizeof(void *) || !m->st->input_spec || !m->st->prepare ||
        !m->st->process || !m->st->destroy)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", m->label,
                            enc->comp->plugin->path);
    m->tr = m->st->get_extension ? m->st->get_extension(m->st, BP_EXT_TRAINABLE_ID) : NULL;
    if (!m->tr)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s (%s) cannot be trained: it offers no %s extension", m->label,
                            enc->comp->plugin->path, BP_EXT_TRAINABLE_ID);
    if (m->tr->struct_size < sizeof(bp_trainable) || !m->tr->n_layers || !m->tr->param_count || !m->tr->param_at ||
        !m->tr->set_training || !m->tr->forward || !m->tr->backward || !m->tr->zero_grad)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): the trainable table is incomplete", m->label,
                            enc->comp->plugin->path);
    /* the features the frontend gives, with a batch dim */
    if (features->ndim != 3)
        return bp_error_set(err, BP_ERR_SPEC, "%s gives features of rank %d; encoders take [channels, frames, bins]",
                            producer, features->ndim);
    bp_spec want = bp_spec_any(), have = bp_spec_any();
    bp_error e2 = BP_ERROR_INIT;
    if ((st = m->st->input_spec(m->st, &want, &e2)) != BP_OK)
        return bp_error_set(err, st, "%s: input_spec: %s", m->label, e2.msg);
    have.dtype = BP_DTYPE_F32;
    have.ndim = 4;
    have.shape[0] = BP_DIM_ANY;
    for (int d = 0; d < 3; d++) have.shape[d + 1] = features->shape[d];
    have.rate = features->rate;
    char why[256], hs[256], ws[256];
    if (!bp_spec_satisfies(&have, &want, why, sizeof why))
        return bp_error_set(err, BP_ERR_SPEC, "%s cannot take what %s produces: %s (%s gives %s; %s needs %s)",
                            m->label, producer, why, producer, bp_spec_describe(&have, hs, sizeof hs), m->label,
                            bp_spec_describe(&want, ws, sizeof ws));
    for (int d = 0; d < 3; d++) m->in_shape[d + 1] = features->shape[d];
    if ((st = check_params(m, err)) != BP_OK) return st;
    return prepare_batch(m, 1, err);
}

void train_model_free(train_model *m) {
    if (!m) return;
    free_batch_tensors(m);
    if (m->st && m->st->destroy) m->st->destroy(m->st);
    free(m->params);
    memset(m, 0, sizeof *m);
}

bp_status train_model_set_batch(train_model *m, int64_t batch, bp_error *err) {
    if (batch == m->in_shape[0] && m->input) return BP_OK;
    return prepare_batch(m, batch, err);
}

bp_status train_model_set_training(train_model *m, int32_t training, bp_error *err) {
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = m->tr->set_training(m->st, training, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: set_training(%d): %s", m->label, training, e2.msg);
    m->training = training;
    return BP_OK;
}

bp_status train_model_upload(train_model *m, const float *features, bp_error *err) {
    return bp_tensor_write(m->input, features, bp_tensor_nbytes(m->input), err);
}

bp_status train_model_forward(train_model *m, const bp_train_step *step, bp_error *err) {
    /* Only the heads are needed (trainable.h: outputs[i] NULL = not needed); the
     * main output's shape may differ in training anyway (token masking). */
    bp_tensor *outs[BP_MAX_OUTPUTS] = {0};
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        if (m->head_port[h] >= 0) outs[m->head_port[h]] = m->outputs[m->head_port[h]];
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = m->tr->forward(m->st, m->input, step, outs, m->n_ports, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: forward: %s", m->label, e2.msg);
    return BP_OK;
}

bp_status train_model_process(train_model *m, bp_error *err) {
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = m->st->process(m->st, m->input, m->outputs, m->n_ports, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: process: %s", m->label, e2.msg);
    return BP_OK;
}

bp_status train_model_read_head(train_model *m, int32_t h, float *out, bp_error *err) {
    int32_t p = m->head_port[h];
    if (p < 0) return bp_error_set(err, BP_ERR_INTERNAL, "%s has no %s", m->label, head_names[h]);
    return bp_tensor_read(m->outputs[p], out, bp_tensor_nbytes(m->outputs[p]), err);
}

bp_status train_model_backward(train_model *m, float *const grads[TRAIN_HEAD_COUNT], bp_error *err) {
    const bp_tensor *d_outs[BP_MAX_OUTPUTS] = {0};
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        int32_t p = m->head_port[h];
        if (p < 0 || !grads[h]) continue;
        bp_status st = bp_tensor_write(m->d_outputs[p], grads[h], bp_tensor_nbytes(m->d_outputs[p]), err);
        if (st != BP_OK) return st;
        d_outs[p] = m->d_outputs[p];
    }
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = m->tr->backward(m->st, d_outs, m->n_ports, NULL, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: backward: %s", m->label, e2.msg);
    return BP_OK;
}

bp_status train_model_zero_grad(train_model *m, bp_error *err) {
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = m->tr->zero_grad(m->st, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: zero_grad: %s", m->label, e2.msg);
    return BP_OK;
}

bp_status train_model_init_weights(train_model *m, const char *path, int32_t strict, const bp_host *host,
                                   bp_error *err) {
    bp_st_file *f;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) return st;
    uint32_t loaded = 0, used = 0;
    bp_sbuf missing = {0}, skipped = {0};
    uint32_t n_missing = 0;
    for (uint32_t i = 0; i < m->n_params && st == BP_OK; i++) {
        const bp_train_param *p = &m->params[i];
        bp_tensor t;
        bp_error e2 = BP_ERROR_INIT;
        if (bp_st_get(f, p->name, &t, &e2) != BP_OK) {
            if (p->trainable) {
                n_missing++;
                bp_sbuf_printf(&missing, "%s%s", missing.len ? ", " : "", p->name);
            }
            continue;
        }
        used++;
        char a[96], b[96];
        if (t.dtype != p->value->dtype || !bp_tensor_same_shape(&t, p->value)) {
            if (strict) {
                st = bp_error_set(err, BP_ERR_SPEC, "%s: tensor '%s' is %s, the encoder's is %s", path, p->name,
                                  bp_tensor_describe(&t, a, sizeof a), bp_tensor_describe(p->value, b, sizeof b));
                break;
            }
            bp_sbuf_printf(&skipped, "%s%s (%s, want %s)", skipped.len ? ", " : "", p->name,
                           bp_tensor_describe(&t, a, sizeof a), bp_tensor_describe(p->value, b, sizeof b));
            continue;
        }
        st = bp_tensor_write(p->value, t.data, bp_tensor_nbytes(&t), err);
        if (st == BP_OK) loaded++;
    }
    if (st == BP_OK && strict && n_missing)
        st = bp_error_set(err, BP_ERR_NOT_FOUND, "%s: init.strict: %u trainable parameter(s) missing: %s", path,
                          n_missing, missing.s ? missing.s : "");
    if (st == BP_OK && host && host->log) {
        char msg[1024];
        snprintf(msg, sizeof msg, "init: %u of %u tensors loaded from %s; %u file tensors unused", loaded, m->n_params,
                 path, bp_st_count(f) - used);
        host->log(host, BP_LOG_INFO, "train", msg);
        if (n_missing) {
            snprintf(msg, sizeof msg, "init: %u trainable parameter(s) keep their initial values: %.800s", n_missing,
                     missing.s ? missing.s : "");
            host->log(host, BP_LOG_WARN, "train", msg);
        }
        if (skipped.len) {
            snprintf(msg, sizeof msg, "init: skipped for their shape: %.900s", skipped.s);
            host->log(host, BP_LOG_WARN, "train", msg);
        }
    }
    bp_sbuf_free(&missing);
    bp_sbuf_free(&skipped);
    bp_st_close(f);
    return st;
}
