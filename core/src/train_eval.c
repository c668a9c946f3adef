/* train: evaluation during training. The encoder runs in evaluation mode
 * (its ordinary `process`, no augmentation) over the evaluation set in order;
 * the validation losses are the training losses averaged over the set, and
 * every metric plugin of eval.metrics receives, batch by batch, the tensors it
 * names: encoder outputs (logits_*) or dataset tensors (classes, azimuth, ...). */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static int port_index(const bp_port *ports, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ports[i].name, name) == 0) return (int)i;
    return -1;
}

bp_status train_eval_create(train_eval *e, bp_registry *reg, const train_cfg *c, const train_model *m,
                            const train_data *d, bp_error *err) {
    memset(e, 0, sizeof *e);
    for (uint32_t k = 0; k < c->n_metrics; k++) {
        const train_comp *mc = &c->metrics[k];
        snprintf(e->labels[k], sizeof e->labels[k], "%s", mc->label);
        void *inst = NULL;
        bp_status st = bp_registry_create(reg, mc->comp, bp_paramset_params(mc->params), NULL, &inst, err);
        if (st != BP_OK) return st;
        bp_metric *mt = inst;
        e->metrics[k] = mt;
        e->n_metrics = k + 1;
        if (mt->struct_size < offsetof(bp_metric, destroy) + sizeof(void *) || !mt->inputs || !mt->reset ||
            !mt->update || !mt->compute || !mt->destroy)
            return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", mc->label,
                                mc->comp->plugin->path);
        bp_error e2 = BP_ERROR_INIT;
        if ((st = mt->inputs(mt, &e->inputs[k], &e->n_inputs[k], &e2)) != BP_OK)
            return bp_error_set(err, st, "%s: inputs: %s", mc->label, e2.msg);
        if (e->n_inputs[k] > BP_MAX_OUTPUTS * 2)
            return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: reads %u tensors; the trainer passes at most %d",
                                mc->label, e->n_inputs[k], BP_MAX_OUTPUTS * 2);
        for (uint32_t i = 0; i < e->n_inputs[k]; i++) {
            const char *name = e->inputs[k][i];
            if (port_index(m->ports, m->n_ports, name) >= 0) continue;
            int di = port_index(d->item_ports, d->n_item_ports, name);
            if (di >= 0) {
                const bp_spec *s = &d->item_ports[di].spec;
                int fixed = s->dtype >= 0 && s->ndim >= 0;
                for (int32_t j = 0; j < s->ndim; j++) fixed &= s->shape[j] > 0;
                if (fixed) continue;
                return bp_error_set(err, BP_ERR_SPEC, "%s: %s reads dataset tensor '%s', which has no fixed shape",
                                    mc->where, mc->label, name);
            }
            bp_sbuf avail = {0};
            for (uint32_t j = 0; j < m->n_ports; j++)
                bp_sbuf_printf(&avail, "%s%s", avail.len ? ", " : "", m->ports[j].name);
            for (uint32_t j = 0; j < d->n_item_ports; j++)
                bp_sbuf_printf(&avail, "%s%s", avail.len ? ", " : "", d->item_ports[j].name);
            bp_error_set(err, BP_ERR_INVALID, "%s: %s reads '%s', which neither %s nor %s produces; available: %s",
                         mc->where, mc->label, name, m->label, d->label, avail.s ? avail.s : "(none)");
            bp_sbuf_free(&avail);
            return BP_ERR_INVALID;
        }
    }
    return BP_OK;
}

void train_eval_free(train_eval *e) {
    if (!e) return;
    for (uint32_t k = 0; k < e->n_metrics; k++)
        if (e->metrics[k] && e->metrics[k]->destroy) e->metrics[k]->destroy(e->metrics[k]);
    memset(e, 0, sizeof *e);
}

/* The host tensors one batch of metric updates needs: encoder outputs read
 * back, dataset tensors collected by the loader. */
typedef struct eval_bufs {
    const char *names[TRAIN_MAX_METRICS * 8];
    bp_tensor *host[TRAIN_MAX_METRICS * 8];
    int32_t port[TRAIN_MAX_METRICS * 8]; /* encoder output index, −1 = dataset tensor */
    uint32_t n;
    const char *collect[TRAIN_MAX_METRICS * 8];
    bp_tensor *collect_out[TRAIN_MAX_METRICS * 8];
    uint32_t n_collect;
} eval_bufs;

static void bufs_free(eval_bufs *b) {
    for (uint32_t i = 0; i < b->n; i++) bp_tensor_free(b->host[i]);
    memset(b, 0, sizeof *b);
}

static bp_status bufs_alloc(eval_bufs *b, const train_eval *e, const train_model *m, const train_data *d, int64_t batch,
                            bp_error *err) {
    bufs_free(b);
    for (uint32_t k = 0; k < e->n_metrics; k++)
        for (uint32_t i = 0; i < e->n_inputs[k]; i++) {
            const char *name = e->inputs[k][i];
            int dup = 0;
            for (uint32_t j = 0; j < b->n; j++) dup |= strcmp(b->names[j], name) == 0;
            if (dup || b->n >= TRAIN_MAX_METRICS * 8) continue;
            int p = port_index(m->ports, m->n_ports, name);
            int64_t shape[BP_MAX_DIMS];
            int32_t ndim, dtype;
            if (p >= 0) {
                const bp_tensor *t = m->outputs[p];
                ndim = t->ndim;
                dtype = t->dtype;
                memcpy(shape, t->shape, sizeof shape);
            } else {
                const bp_spec *s = &d->item_ports[port_index(d->item_ports, d->n_item_ports, name)].spec;
                if (s->ndim + 1 > BP_MAX_DIMS)
                    return bp_error_set(err, BP_ERR_SPEC, "train: '%s' has too many dims", name);
                ndim = s->ndim + 1;
                dtype = s->dtype;
                shape[0] = batch;
                for (int32_t j = 0; j < s->ndim; j++) shape[j + 1] = s->shape[j];
            }
            bp_status st = bp_tensor_new(NULL, dtype, ndim, shape, &b->host[b->n], err);
            if (st != BP_OK) return st;
            b->names[b->n] = name;
            b->port[b->n] = p;
            if (p < 0) {
                b->collect[b->n_collect] = name;
                b->collect_out[b->n_collect++] = b->host[b->n];
            }
            b->n++;
        }
    return BP_OK;
}

static void add_result(bp_metric_result *out, uint32_t cap, uint32_t *n, const char *name, double v, const char *unit,
                       const char *note) {
    if (*n >= cap) return;
    bp_metric_result *r = &out[(*n)++];
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->value = v;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
}

bp_status train_eval_run(train_eval *e, train_model *m, train_data *d, const train_cfg *c, const train_loss_weights *w,
                         bp_metric_result *out, uint32_t cap, uint32_t *n, bp_error *err) {
    *n = 0;
    int64_t total = d->n_items;
    if (c->eval_max_items > 0 && c->eval_max_items < total) total = c->eval_max_items;
    int64_t bmax = c->eval_batch < total ? c->eval_batch : total;
    int64_t feat = d->fe->feat_shape[0] * d->fe->feat_shape[1] * d->fe->feat_shape[2];
    float *features = malloc((size_t)(bmax * feat) * sizeof *features);
    float *logits[TRAIN_HEAD_COUNT] = {0};
    train_targets tg;
    memset(&tg, 0, sizeof tg);
    eval_bufs bufs;
    memset(&bufs, 0, sizeof bufs);
    double sums[TRAIN_HEAD_COUNT] = {0};
    int64_t counts[TRAIN_HEAD_COUNT] = {0};
    bp_status st = features ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    for (int h = 0; h < TRAIN_HEAD_COUNT && st == BP_OK; h++)
        if (m->head_port[h] >= 0 && !(logits[h] = malloc((size_t)(bmax * m->head_width[h]) * sizeof(float))))
            st = bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    if (st == BP_OK) st = train_model_set_training(m, 0, err);
    for (uint32_t k = 0; k < e->n_metrics && st == BP_OK; k++) {
        bp_error e2 = BP_ERROR_INIT;
        if ((st = e->metrics[k]->reset(e->metrics[k], &e2)) != BP_OK)
            bp_error_set(err, st, "%s: reset: %s", e->labels[k], e2.msg);
    }
    int64_t cur = -1;
    for (int64_t first = 0; first < total && st == BP_OK; first += bmax) {
        int64_t b = total - first < bmax ? total - first : bmax;
        if (b != cur) {
            train_targets_free(&tg);
            if ((st = train_targets_alloc(&tg, b, d->n_classes, err)) != BP_OK) break;
            if ((st = train_model_set_batch(m, b, err)) != BP_OK) break;
            if ((st = bufs_alloc(&bufs, e, m, d, b, err)) != BP_OK) break;
            cur = b;
        }
        train_batch_req req;
        memset(&req, 0, sizeof req);
        req.first = first;
        req.batch = b;
        req.n_collect = bufs.n_collect;
        req.collect = bufs.collect;
        req.collect_out = bufs.collect_out;
        if ((st = train_data_batch(d, &req, features, &tg, err)) != BP_OK) break;
        if ((st = train_model_upload(m, features, err)) != BP_OK) break;
        if ((st = train_model_process(m, err)) != BP_OK) break;
        for (int h = 0; h < TRAIN_HEAD_COUNT && st == BP_OK; h++)
            if (logits[h]) st = train_model_read_head(m, h, logits[h], err);
        train_loss loss;
        const float *const *lg = (const float *const *)logits;
        if (st == BP_OK) st = train_loss_compute(lg, m->head_width, &tg, w, &loss, NULL, err);
        for (int h = 0; h < TRAIN_HEAD_COUNT && st == BP_OK; h++) {
            sums[h] += loss.term[h] * (double)loss.count[h];
            counts[h] += loss.count[h];
        }
        for (uint32_t i = 0; i < bufs.n && st == BP_OK; i++)
            if (bufs.port[i] >= 0)
                st = bp_tensor_read(m->outputs[bufs.port[i]], bufs.host[i]->data, bp_tensor_nbytes(bufs.host[i]), err);
        for (uint32_t k = 0; k < e->n_metrics && st == BP_OK; k++) {
            const bp_tensor *ins[BP_MAX_OUTPUTS * 2];
            for (uint32_t i = 0; i < e->n_inputs[k] && i < BP_MAX_OUTPUTS * 2; i++)
                for (uint32_t j = 0; j < bufs.n; j++)
                    if (strcmp(bufs.names[j], e->inputs[k][i]) == 0) ins[i] = bufs.host[j];
            bp_error e2 = BP_ERROR_INIT;
            if ((st = e->metrics[k]->update(e->metrics[k], ins, e->n_inputs[k], &e2)) != BP_OK)
                bp_error_set(err, st, "%s: update: %s", e->labels[k], e2.msg);
        }
    }
    if (st == BP_OK) {
        static const char *const names[TRAIN_HEAD_COUNT] = {"val_loss_class", "val_loss_distance", "val_loss_azimuth",
                                                            "val_loss_elevation"};
        double total_loss = 0;
        for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
            if (m->head_port[h] < 0) continue;
            double v = counts[h] ? sums[h] / (double)counts[h] : 0.0;
            if (w->on[h]) total_loss += w->w[h] * v;
            add_result(out, cap, n, names[h], v, "", counts[h] ? NULL : "no labelled items");
        }
        add_result(out, cap, n, "val_loss", total_loss, "", "weighted like the training loss of this stage");
        for (uint32_t k = 0; k < e->n_metrics && st == BP_OK; k++) {
            uint32_t room = cap > *n ? cap - *n : 0, nr = 0;
            bp_metric_result *res = calloc(room ? room : 1, sizeof *res);
            if (!res) {
                st = bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
                break;
            }
            for (uint32_t i = 0; i < room; i++) res[i].struct_size = sizeof res[i];
            bp_error e2 = BP_ERROR_INIT;
            if ((st = e->metrics[k]->compute(e->metrics[k], res, room, &nr, &e2)) != BP_OK)
                bp_error_set(err, st, "%s: compute: %s", e->labels[k], e2.msg);
            for (uint32_t i = 0; st == BP_OK && i < nr && i < room; i++)
                add_result(out, cap, n, res[i].name, res[i].value, res[i].unit, res[i].note);
            free(res);
        }
    }
    if (st == BP_OK) st = train_model_set_training(m, 1, err);
    bufs_free(&bufs);
    train_targets_free(&tg);
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) free(logits[h]);
    free(features);
    return st;
}
