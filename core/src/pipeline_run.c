/* Pipeline execution. Items are read one by one (files or dataset items)
 * and run through the stages that take one item (frontends); the stages
 * from the first one that wants a batch dimension on (encoder, projector)
 * run on stacked batches of up to input.batch_size items. Then, per item:
 * finiteness checks and the saved tensors (batch outputs sliced per item);
 * per batch: the metrics. With progress, cancellation, a summary and, when
 * metrics are configured, the evaluation report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/npy.h"
#include "batpipe/report.h"
#include "batpipe/safetensors.h"
#include "pipeline_internal.h"

#define ITEM_MAX_TENSORS 64
#define METRIC_MAX_RESULTS 4096

typedef struct item_map {
    char names[ITEM_MAX_TENSORS][48];
    bp_tensor *tensors[ITEM_MAX_TENSORS];
    const char *producer[ITEM_MAX_TENSORS]; /* "input" or a stage label */
    uint8_t batched[ITEM_MAX_TENSORS];      /* the leading dimension is the batch */
    uint32_t n;
} item_map;

/* An item read and run through the per-item stages, waiting for its batch. */
typedef struct pending_item {
    item_map m;
    size_t idx;
    char name[128];     /* saved as DIR/<name>.safetensors */
    char what[640];     /* for messages: the file, or "dataset item 12 (A-123)" */
    double audio_rate;  /* of the input audio (metadata of saved files) */
    double rate;        /* after the per-item stages */
} pending_item;

/* Names already saved (dataset ids made file-name safe may collide). */
typedef struct name_set {
    char **slots;
    size_t cap, n;
} name_set;

typedef struct run_state {
    pending_item *batch;
    uint32_t nb;
    item_map bm; /* the batch's tensors from the batched stages */
    name_set saved;
    uint64_t finished;
    double t0;
    bp_progress_fn progress;
    void *user;
} run_state;

/* ------------------------------------------------------------ item maps -- */

static void map_free(item_map *m) {
    for (uint32_t i = 0; i < m->n; i++) bp_tensor_free(m->tensors[i]);
    m->n = 0;
}

static int map_index(const item_map *m, const char *name) {
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0) return (int)i;
    return -1;
}

static bp_tensor *map_find(item_map *m, const char *name, const char **producer) {
    int i = map_index(m, name);
    if (i < 0) return NULL;
    if (producer) *producer = m->producer[i];
    return m->tensors[i];
}

/* ------------------------------------------------------------- name set -- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* 1 = inserted, 0 = already there, -1 = out of memory. */
static int name_set_add(name_set *ns, const char *name) {
    if (2 * (ns->n + 1) > ns->cap) {
        size_t nc = ns->cap ? 2 * ns->cap : 256;
        char **slots = calloc(nc, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < ns->cap; i++)
            if (ns->slots[i]) {
                size_t h = hash_str(ns->slots[i]) & (nc - 1);
                while (slots[h]) h = (h + 1) & (nc - 1);
                slots[h] = ns->slots[i];
            }
        free(ns->slots);
        ns->slots = slots;
        ns->cap = nc;
    }
    size_t h = hash_str(name) & (ns->cap - 1);
    for (; ns->slots[h]; h = (h + 1) & (ns->cap - 1))
        if (strcmp(ns->slots[h], name) == 0) return 0;
    if (!(ns->slots[h] = bp_strdup(name))) return -1;
    ns->n++;
    return 1;
}

static void name_set_free(name_set *ns) {
    for (size_t i = 0; i < ns->cap; i++) free(ns->slots[i]);
    free(ns->slots);
    memset(ns, 0, sizeof *ns);
}

/* --------------------------------------------------------------- stages -- */

static int spec_shape_equal(const bp_spec *a, const bp_spec *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int32_t i = 0; i < a->ndim && i < BP_MAX_DIMS; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Re-prepare a stage for a concrete input spec; output names must not change. */
static bp_status reprepare(bp_stage_rec *s, const bp_spec *in, bp_error *err) {
    bp_port ports[BP_MAX_OUTPUTS];
    memset(ports, 0, sizeof ports);
    uint32_t n = BP_MAX_OUTPUTS;
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = s->st->prepare(s->st, in, ports, &n, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: %s", s->label, e2.msg);
    if (n != s->n_ports) return bp_error_set(err, BP_ERR_INTERNAL, "%s changed its number of outputs", s->label);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ports[i].name, s->ports[i].name) != 0)
            return bp_error_set(err, BP_ERR_INTERNAL, "%s renamed output '%s' to '%s'", s->label, s->ports[i].name,
                                ports[i].name);
    memcpy(s->ports, ports, sizeof ports);
    s->prepared_in = *in;
    return BP_OK;
}

/* Run stage `s` on map `m` (one item, or a stacked batch when in_batch). */
static bp_status run_stage(bp_pipeline *p, bp_stage_rec *s, item_map *m, double *rate, int in_batch, bp_error *err) {
    const char *producer = NULL;
    bp_tensor *in = map_find(m, s->in_name, &producer);
    if (!in) return bp_error_set(err, BP_ERR_SPEC, "no tensor '%s' for %s", s->in_name, s->label);
    bp_tensor view = *in;
    if (s->add_batch && !in_batch) {
        for (int d = view.ndim; d > 0; d--) view.shape[d] = view.shape[d - 1];
        view.shape[0] = 1;
        view.ndim++;
    }
    bp_spec spec = bp_spec_of(&view, *rate);
    snprintf(spec.dims, sizeof spec.dims, "%s", s->prepared_in.dims);
    bp_status st;
    if (!spec_shape_equal(&spec, &s->prepared_in) && (st = reprepare(s, &spec, err)) != BP_OK) return st;
    if (m->n + s->n_ports > ITEM_MAX_TENSORS)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "more than %d tensors in one item", ITEM_MAX_TENSORS);
    bp_tensor *outs[BP_MAX_OUTPUTS] = {0};
    int on_backend = s->kind != BP_KIND_FRONTEND && p->backend && !bp_backend_is_host(p->backend);
    for (uint32_t i = 0; i < s->n_ports; i++) {
        if (!s->need[i]) continue;
        const bp_spec *o = &s->ports[i].spec;
        for (int32_t d = 0; d < o->ndim; d++)
            if (o->shape[d] < 0) {
                st = bp_error_set(err, BP_ERR_INTERNAL, "%s: output '%s' has no concrete size for this input",
                                  s->label, s->ports[i].name);
                goto fail;
            }
        if ((st = bp_tensor_new(on_backend ? p->backend : NULL, o->dtype, o->ndim, o->shape, &outs[i], err)) != BP_OK)
            goto fail;
    }
    bp_error e2 = BP_ERROR_INIT;
    st = s->st->process(s->st, &view, outs, s->n_ports, &e2);
    if (st != BP_OK) {
        bp_error_set(err, st, "%s: %s", s->label, e2.msg[0] ? e2.msg : bp_status_name(st));
        goto fail;
    }
    for (uint32_t i = 0; i < s->n_ports; i++) {
        if (!outs[i]) continue;
        snprintf(m->names[m->n], 48, "%s", s->ports[i].name);
        m->tensors[m->n] = outs[i];
        m->producer[m->n] = s->label;
        m->batched[m->n] = (uint8_t)(in_batch || s->kind != BP_KIND_FRONTEND);
        m->n++;
    }
    *rate = s->ports[0].spec.rate;
    return BP_OK;
fail:
    for (uint32_t i = 0; i < s->n_ports; i++) bp_tensor_free(outs[i]);
    return st;
}

/* ----------------------------------------------------------- item views -- */

/* Item j's tensor `name`: the item's own, else row j of the batch tensor as
 * a [1, ...] view. BP_ERR_NOT_FOUND (no message) when neither has it. */
static bp_status item_tensor(const pending_item *it, const item_map *bm, uint32_t j, uint32_t nb, const char *name,
                             bp_tensor *view, const char **producer, int *batched, bp_error *err) {
    int i = map_index(&it->m, name);
    if (i >= 0) {
        *view = *it->m.tensors[i];
        *producer = it->m.producer[i];
        *batched = it->m.batched[i];
        return BP_OK;
    }
    i = map_index(bm, name);
    if (i < 0) return BP_ERR_NOT_FOUND;
    const bp_tensor *t = bm->tensors[i];
    if (t->ndim < 1 || t->shape[0] != (int64_t)nb)
        return bp_error_set(err, BP_ERR_SPEC, "%s: output '%s' has a leading dimension of %lld for a batch of %u",
                            bm->producer[i], name, t->ndim ? (long long)t->shape[0] : 0LL, nb);
    if (t->backend && !bp_backend_is_host(t->backend))
        return bp_error_set(err, BP_ERR_INTERNAL, "'%s' is not in host memory", name);
    *view = *t;
    view->shape[0] = 1;
    view->owns_data = 0;
    view->data = (char *)t->data + (size_t)j * (bp_tensor_nbytes(t) / nb);
    *producer = bm->producer[i];
    *batched = 1;
    return BP_OK;
}

/* A host copy of `t` in *tmp when it lives on a device; *out is what to read. */
static bp_status host_of(const bp_tensor *t, bp_tensor **tmp, const bp_tensor **out, bp_error *err) {
    *tmp = NULL;
    *out = t;
    if (!t->backend || bp_backend_is_host(t->backend)) return BP_OK;
    bp_status st = bp_tensor_new(NULL, t->dtype, t->ndim, t->shape, tmp, err);
    if (st == BP_OK) st = bp_tensor_read(t, (*tmp)->data, bp_tensor_nbytes(t), err);
    if (st != BP_OK) {
        bp_tensor_free(*tmp);
        *tmp = NULL;
        return st;
    }
    *out = *tmp;
    return BP_OK;
}

/* ------------------------------------------------------------- summary -- */

static void update_stats(bp_pipeline *p, const char *name, const bp_tensor *t) {
    bp_run_summary *sum = &p->summary;
    bp_tensor_summary *ts = NULL;
    for (uint32_t i = 0; i < sum->n_tensors; i++)
        if (strcmp(sum->tensors[i].name, name) == 0) ts = &sum->tensors[i];
    if (!ts) {
        if (sum->n_tensors >= BP_SUMMARY_MAX_TENSORS) return;
        ts = &sum->tensors[sum->n_tensors++];
        memset(ts, 0, sizeof *ts);
        snprintf(ts->name, sizeof ts->name, "%s", name);
        ts->min = INFINITY;
        ts->max = -INFINITY;
    }
    bp_tensor_describe(t, ts->shape, sizeof ts->shape);
    if (t->dtype != BP_DTYPE_F32) return;
    const float *x = t->data;
    int64_t n = bp_tensor_numel(t);
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        if (x[i] < ts->min) ts->min = x[i];
        if (x[i] > ts->max) ts->max = x[i];
    }
    /* running mean over items (each item weighted equally) */
    ts->items++;
    ts->mean += ((n ? s / (double)n : 0) - ts->mean) / (double)ts->items;
}

/* --------------------------------------------------------------- saving -- */

static char *output_path(const bp_pipeline *p, const char *item, const char *tensor) {
    if (p->format == BP_SAVE_NPY) return bp_strdupf("%s/%s.%s.npy", p->out_dir, item, tensor);
    return bp_strdupf("%s/%s.safetensors", p->out_dir, item);
}

static int outputs_exist(const bp_pipeline *p, const char *item) {
    struct stat sb;
    for (size_t i = 0; i < (p->format == BP_SAVE_NPY ? p->n_save : 1); i++) {
        char *path = output_path(p, item, p->save[i]);
        int ok = path && stat(path, &sb) == 0;
        free(path);
        if (!ok) return 0;
    }
    return 1;
}

/* Check the tensors the metrics read for NaN/Inf, then save the item. */
static bp_status finish_item(bp_pipeline *p, run_state *rs, uint32_t j, bp_error *err) {
    pending_item *it = &rs->batch[j];
    bp_status st = BP_OK;
    for (size_t m = 0; m < p->n_metrics && st == BP_OK; m++)
        for (uint32_t k = 0; k < p->metrics[m].n_inputs && st == BP_OK; k++) {
            bp_tensor view, *tmp;
            const bp_tensor *h;
            const char *producer;
            int batched;
            st = item_tensor(it, &rs->bm, j, rs->nb, p->metrics[m].inputs[k], &view, &producer, &batched, err);
            if (st == BP_ERR_NOT_FOUND)
                st = bp_error_set(err, BP_ERR_NOT_FOUND, "no tensor '%s' for %s", p->metrics[m].inputs[k],
                                  p->metrics[m].label);
            if (st != BP_OK || (st = host_of(&view, &tmp, &h, err)) != BP_OK) break;
            char what[160];
            snprintf(what, sizeof what, "%s: '%s'", producer, p->metrics[m].inputs[k]);
            st = bp_tensor_check_finite(h, what, err);
            bp_tensor_free(tmp);
        }
    if (st != BP_OK || !p->out_dir || !p->n_save) return st;
    bp_tensor *host[64] = {0};
    bp_st_writer *w = NULL;
    if (p->format == BP_SAVE_SAFETENSORS && (st = bp_st_writer_new(&w, err)) != BP_OK) return st;
    for (size_t i = 0; i < p->n_save && i < 64 && st == BP_OK; i++) {
        bp_tensor view;
        const bp_tensor *t;
        const char *producer = "input";
        int batched;
        st = item_tensor(it, &rs->bm, j, rs->nb, p->save[i], &view, &producer, &batched, err);
        if (st == BP_ERR_NOT_FOUND) {
            st = bp_error_set(err, BP_ERR_NOT_FOUND, "no tensor '%s' to save (not in this input file)", p->save[i]);
            break;
        }
        if (st != BP_OK || (st = host_of(&view, &host[i], &t, err)) != BP_OK) break;
        char what[160];
        snprintf(what, sizeof what, "%s: '%s'", producer, p->save[i]);
        if ((st = bp_tensor_check_finite(t, what, err)) != BP_OK) break;
        update_stats(p, p->save[i], t);
        if (p->format == BP_SAVE_SAFETENSORS) {
            st = bp_st_writer_add(w, p->save[i], t, err);
        } else {
            char *path = output_path(p, it->name, p->save[i]);
            st = path ? bp_npy_write(path, t, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            if (st == BP_OK) snprintf(p->summary.last_output, sizeof p->summary.last_output, "%s", path);
            free(path);
        }
    }
    if (st == BP_OK && w) {
        char rate[32];
        const char *source = p->input_kind == BP_INPUT_DATASET ? it->what : p->files[it->idx].path;
        st = bp_st_writer_set_metadata(w, "source", source, err);
        if (st == BP_OK) st = bp_st_writer_set_metadata(w, "batpipe_version", BP_VERSION_STRING, err);
        if (st == BP_OK) st = bp_st_writer_set_metadata(w, "pipeline", bp_config_label(p->cfg), err);
        if (st == BP_OK && it->audio_rate > 0) {
            snprintf(rate, sizeof rate, "%g", it->audio_rate);
            st = bp_st_writer_set_metadata(w, "sample_rate", rate, err);
        }
        char *path = output_path(p, it->name, "");
        if (st == BP_OK)
            st = path ? bp_st_writer_write(w, path, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (st == BP_OK) snprintf(p->summary.last_output, sizeof p->summary.last_output, "%s", path);
        free(path);
    }
    bp_st_writer_free(w);
    for (size_t i = 0; i < 64; i++) bp_tensor_free(host[i]);
    return st;
}

/* -------------------------------------------------------------- metrics -- */

/* The tensor `name` of the ok items of the batch as one host tensor: batch
 * outputs row by row ([n, ...]), per-item tensors stacked ([n, shape]). */
static bp_status gather(run_state *rs, const uint8_t *ok, uint32_t n_ok, const char *name, bp_tensor **out,
                        bp_error *err) {
    *out = NULL;
    bp_tensor first;
    int first_batched = 0;
    size_t row = 0;
    uint32_t r = 0;
    bp_status st = BP_OK;
    for (uint32_t j = 0; j < rs->nb && st == BP_OK; j++) {
        if (!ok[j]) continue;
        bp_tensor view, *tmp = NULL;
        const bp_tensor *h;
        const char *producer;
        int batched;
        st = item_tensor(&rs->batch[j], &rs->bm, j, rs->nb, name, &view, &producer, &batched, err);
        if (st == BP_ERR_NOT_FOUND) st = bp_error_set(err, BP_ERR_NOT_FOUND, "no tensor '%s'", name);
        if (st != BP_OK) break;
        if (batched && (view.ndim < 1 || view.shape[0] != 1)) {
            st = bp_error_set(err, BP_ERR_SPEC, "%s: '%s' holds %lld rows for one item", producer, name,
                              view.ndim ? (long long)view.shape[0] : 0LL);
            break;
        }
        if (!*out) {
            first = view;
            first_batched = batched;
            int64_t shape[BP_MAX_DIMS];
            int32_t nd = 0;
            shape[nd++] = n_ok;
            for (int32_t d = batched ? 1 : 0; d < view.ndim && nd < BP_MAX_DIMS; d++) shape[nd++] = view.shape[d];
            if (!batched && view.ndim >= BP_MAX_DIMS) {
                st = bp_error_set(err, BP_ERR_UNSUPPORTED, "'%s' has too many dimensions to stack", name);
                break;
            }
            row = bp_tensor_nbytes(&view);
            if ((st = bp_tensor_new(NULL, view.dtype, nd, shape, out, err)) != BP_OK) break;
        } else if (!bp_tensor_same_shape(&view, &first) || batched != first_batched) {
            char a[96], b[96];
            st = bp_error_set(err, BP_ERR_SPEC, "'%s' of %s is %s, earlier items' %s: items with different shapes "
                              "cannot be scored together", name, rs->batch[j].what,
                              bp_tensor_describe(&view, a, sizeof a), bp_tensor_describe(&first, b, sizeof b));
            break;
        }
        if ((st = host_of(&view, &tmp, &h, err)) != BP_OK) break;
        memcpy((char *)(*out)->data + (size_t)r * row, h->data, row);
        bp_tensor_free(tmp);
        r++;
    }
    if (st != BP_OK) {
        bp_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* Feed the ok items of the batch to every metric (and to the report's figures). */
static bp_status metrics_update(bp_pipeline *p, run_state *rs, const uint8_t *ok, uint32_t n_ok, bp_error *err) {
    if (!p->n_metrics || !n_ok) return BP_OK;
    const char *names[256];
    bp_tensor *vals[256] = {0};
    uint32_t nn = 0;
    bp_status st = BP_OK;
    for (size_t m = 0; m < p->n_metrics && st == BP_OK; m++)
        for (uint32_t k = 0; k < p->metrics[m].n_inputs && st == BP_OK; k++) {
            const char *name = p->metrics[m].inputs[k];
            uint32_t i = 0;
            while (i < nn && strcmp(names[i], name) != 0) i++;
            if (i < nn || nn >= 256) continue;
            names[nn] = name;
            st = gather(rs, ok, n_ok, name, &vals[nn], err);
            if (st != BP_OK) bp_error_prefix(err, "%s: ", p->metrics[m].label);
            nn++;
        }
    for (size_t m = 0; m < p->n_metrics && st == BP_OK; m++) {
        const bp_metric_rec *r = &p->metrics[m];
        const bp_tensor *in[16] = {0};
        for (uint32_t k = 0; k < r->n_inputs; k++)
            for (uint32_t i = 0; i < nn; i++)
                if (strcmp(names[i], r->inputs[k]) == 0) in[k] = vals[i];
        bp_error e2 = BP_ERROR_INIT;
        if ((st = r->m->update(r->m, in, r->n_inputs, &e2)) != BP_OK)
            bp_error_set(err, st, "%s: %s", r->label, e2.msg[0] ? e2.msg : bp_status_name(st));
    }
    if (st == BP_OK && p->report) { /* per-clip directions for the figures */
        const bp_tensor *f[5] = {0};
        static const char *const want[5] = {"logits_azimuth", "logits_elevation", "azimuth", "elevation", "distance"};
        for (int k = 0; k < 5; k++)
            for (uint32_t i = 0; i < nn; i++)
                if (strcmp(names[i], want[k]) == 0) f[k] = vals[i];
        if (f[0] && f[1] && f[2] && f[3]) st = bp_report_add_doa(p->report, f[0], f[1], f[2], f[3], f[4], err);
    }
    for (uint32_t i = 0; i < nn; i++) bp_tensor_free(vals[i]);
    return st;
}

/* ------------------------------------------------------------- batching -- */

/* After an item failed: stop (the status) or, with on_error = "skip", count
 * it, log it and go on (BP_OK). `count` items fail together (a batch). */
static bp_status item_failed(bp_pipeline *p, bp_status st, uint64_t count, bp_error *err) {
    const bp_host *host = bp_registry_host(p->reg);
    if (!p->on_error_skip || st == BP_ERR_NOMEM || st == BP_ERR_INTERNAL || st == BP_ERR_CANCELLED) return st;
    bp_run_summary *sum = &p->summary;
    if (!sum->items_failed) snprintf(sum->first_failure, sizeof sum->first_failure, "%s", err->msg);
    sum->items_failed += count;
    if (host->log) host->log(host, BP_LOG_WARN, "pipeline", err->msg);
    bp_error_clear(err);
    return BP_OK;
}

static void finished(bp_pipeline *p, run_state *rs, const char *name) {
    rs->finished++;
    if (rs->progress) rs->progress(rs->user, rs->finished, bp_input_count(p), name, bp_now() - rs->t0);
}

static void batch_clear(run_state *rs) {
    for (uint32_t j = 0; j < rs->nb; j++) map_free(&rs->batch[j].m);
    map_free(&rs->bm);
    rs->nb = 0;
}

/* Is `name` saved or read by a metric? */
static int is_needed(const bp_pipeline *p, const char *name) {
    for (size_t i = 0; i < p->n_save; i++)
        if (strcmp(p->save[i], name) == 0) return 1;
    return bp_metrics_uses(p, name);
}

/* Stack the batch stage's input over the batch and run the batched stages;
 * their outputs that are saved or scored are brought to host memory. */
static bp_status run_batched(bp_pipeline *p, run_state *rs, bp_error *err) {
    bp_stage_rec *s0 = &p->stages[p->batch_stage];
    uint32_t nb = rs->nb;
    const char *producer = "input";
    bp_tensor *first = map_find(&rs->batch[0].m, s0->in_name, &producer);
    if (!first) return bp_error_set(err, BP_ERR_SPEC, "no tensor '%s' for %s", s0->in_name, s0->label);
    if (first->ndim >= BP_MAX_DIMS)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "'%s' has too many dimensions to batch", s0->in_name);
    int64_t shape[BP_MAX_DIMS];
    shape[0] = nb;
    for (int32_t d = 0; d < first->ndim; d++) shape[d + 1] = first->shape[d];
    bp_tensor *stacked;
    bp_status st = bp_tensor_new(NULL, first->dtype, first->ndim + 1, shape, &stacked, err);
    if (st != BP_OK) return st;
    size_t row = bp_tensor_nbytes(first);
    for (uint32_t j = 0; j < nb && st == BP_OK; j++) {
        bp_tensor *t = map_find(&rs->batch[j].m, s0->in_name, NULL), *tmp;
        const bp_tensor *h;
        if (!t || !bp_tensor_same_shape(t, first)) {
            st = bp_error_set(err, BP_ERR_INTERNAL, "batch: '%s' of %s does not match the batch", s0->in_name,
                              rs->batch[j].what);
            break;
        }
        if ((st = host_of(t, &tmp, &h, err)) != BP_OK) break;
        memcpy((char *)stacked->data + (size_t)j * row, h->data, row);
        bp_tensor_free(tmp);
    }
    if (st != BP_OK) {
        bp_tensor_free(stacked);
        return st;
    }
    item_map *bm = &rs->bm;
    memset(bm, 0, sizeof *bm);
    snprintf(bm->names[0], 48, "%s", s0->in_name);
    bm->tensors[0] = stacked;
    bm->producer[0] = producer;
    bm->batched[0] = 1;
    bm->n = 1;
    double rate = rs->batch[0].rate;
    for (int k = p->batch_stage; k < p->n_stages && st == BP_OK; k++)
        st = run_stage(p, &p->stages[k], bm, &rate, 1, err);
    /* outputs that will be sliced per item: to host memory */
    for (uint32_t i = 1; i < bm->n && st == BP_OK; i++) {
        bp_tensor *t = bm->tensors[i], *h;
        const bp_tensor *hv;
        if (!t->backend || bp_backend_is_host(t->backend)) continue;
        if (!is_needed(p, bm->names[i])) continue;
        if ((st = host_of(t, &h, &hv, err)) != BP_OK) break;
        bp_tensor_free(t);
        bm->tensors[i] = h;
    }
    return st;
}

/* Finish the pending batch: batched stages, per-item checks and saving,
 * metrics, progress. */
static bp_status flush(bp_pipeline *p, run_state *rs, bp_error *err) {
    uint32_t nb = rs->nb;
    if (!nb) return BP_OK;
    bp_status st = BP_OK;
    uint8_t ok[BP_BATCH_MAX];
    memset(ok, 1, sizeof ok);
    if (p->batch_stage >= 0 && (st = run_batched(p, rs, err)) != BP_OK) {
        if (nb == 1)
            bp_error_prefix(err, "%s: ", rs->batch[0].what);
        else
            bp_error_prefix(err, "batch of %u items (%s … %s): ", nb, rs->batch[0].what, rs->batch[nb - 1].what);
        st = item_failed(p, st, nb, err);
        for (uint32_t j = 0; j < nb; j++) finished(p, rs, rs->batch[j].name);
        batch_clear(rs);
        return st;
    }
    uint32_t n_ok = 0;
    for (uint32_t j = 0; j < nb; j++) {
        st = finish_item(p, rs, j, err);
        if (st != BP_OK) {
            ok[j] = 0;
            bp_error_prefix(err, "%s: ", rs->batch[j].what);
            if ((st = item_failed(p, st, 1, err)) != BP_OK) {
                batch_clear(rs);
                return st;
            }
        } else {
            n_ok++;
            p->summary.items_done++;
        }
    }
    st = metrics_update(p, rs, ok, n_ok, err);
    for (uint32_t j = 0; j < nb; j++) finished(p, rs, rs->batch[j].name);
    batch_clear(rs);
    return st;
}

/* Read item i and run it through the per-item stages into `it`. */
static bp_status read_item(bp_pipeline *p, run_state *rs, size_t i, pending_item *it, int *skipped, bp_error *err) {
    memset(it, 0, sizeof *it);
    it->idx = i;
    *skipped = 0;
    bp_input_describe(p, i, it->what, sizeof it->what);
    double rate = 0;
    bp_status st = bp_input_read(p, i, it->m.names, it->m.tensors, ITEM_MAX_TENSORS, &it->m.n, &rate, it->name, err);
    if (st != BP_OK) return st;
    for (uint32_t k = 0; k < it->m.n; k++) it->m.producer[k] = "input";
    if (p->input_kind == BP_INPUT_DATASET) {
        size_t len = strlen(it->what);
        snprintf(it->what + len, sizeof it->what - len, " (%s)", it->name);
        if (p->out_dir && p->n_save) {
            if (p->skip_existing && outputs_exist(p, it->name)) {
                *skipped = 1;
                return BP_OK;
            }
            int r = name_set_add(&rs->saved, it->name);
            if (r < 0) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            if (r == 0)
                return bp_error_set(err, BP_ERR_INVALID,
                                    "an earlier item is saved as '%s' too (item ids must be unique)", it->name);
        }
    }
    it->audio_rate = rate;
    int last = p->batch_stage >= 0 ? p->batch_stage : p->n_stages;
    for (int k = 0; k < last && st == BP_OK; k++) st = run_stage(p, &p->stages[k], &it->m, &rate, 0, err);
    it->rate = rate;
    return st;
}

/* Can `it` join the pending batch (same shape of the batched stage's input)? */
static int fits_batch(const bp_pipeline *p, run_state *rs, pending_item *it) {
    if (p->batch_stage < 0 || rs->nb == 0) return 1;
    const char *name = p->stages[p->batch_stage].in_name;
    const bp_tensor *a = map_find(&rs->batch[0].m, name, NULL), *b = map_find(&it->m, name, NULL);
    return a && b && bp_tensor_same_shape(a, b) && rs->batch[0].rate == it->rate;
}

/* --------------------------------------------------------------- report -- */

static const char *config_string(bp_pipeline *p, const char *key) {
    const config_setting_t *s = config_setting_get_member(bp_config_root(p->cfg), key);
    const char *v = s && config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
    return v ? v : "";
}

static bp_status write_report(bp_pipeline *p, bp_error *err) {
    bp_metric_result *res = calloc(METRIC_MAX_RESULTS, sizeof *res);
    if (!res) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = BP_OK;
    for (size_t m = 0; m < p->n_metrics && st == BP_OK; m++) {
        const bp_metric_rec *r = &p->metrics[m];
        uint32_t n = 0;
        for (uint32_t i = 0; i < METRIC_MAX_RESULTS; i++) res[i].struct_size = sizeof res[i];
        bp_error e2 = BP_ERROR_INIT;
        if ((st = r->m->compute(r->m, res, METRIC_MAX_RESULTS, &n, &e2)) != BP_OK) {
            bp_error_set(err, st, "%s: compute: %s", r->label, e2.msg);
            break;
        }
        if (n > METRIC_MAX_RESULTS) n = METRIC_MAX_RESULTS;
        st = bp_report_add_results(p->report, r->comp->desc->name, res, n, err);
    }
    free(res);
    if (st != BP_OK || !p->out_dir) return st;
    bp_report_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.name = config_string(p, "name");
    meta.description = config_string(p, "description");
    meta.config = bp_config_label(p->cfg);
    if (p->input_kind == BP_INPUT_DATASET) {
        meta.input_type = p->ds_comp->desc->name;
        meta.input = (bp_report_component){"input", p->ds_comp->desc->name, p->ds_comp->desc->version,
                                           bp_paramset_params(p->ds_params)};
    } else {
        meta.input_type = p->input_kind == BP_INPUT_AUDIO ? "audio" : "tensors";
        meta.input_files = p->n_files;
    }
    meta.batch_size = p->batch_size;
    for (int k = 0; k < p->n_stages; k++)
        meta.stages[meta.n_stages++] = (bp_report_component){p->stages[k].slot, p->stages[k].comp->desc->name,
                                                             p->stages[k].comp->desc->version,
                                                             bp_paramset_params(p->stages[k].params)};
    for (size_t m = 0; m < p->n_metrics && m < 16; m++)
        meta.metrics[meta.n_metrics++] = (bp_report_component){"metric", p->metrics[m].comp->desc->name,
                                                               p->metrics[m].comp->desc->version,
                                                               bp_paramset_params(p->metrics[m].params)};
    if (p->backend) {
        meta.backend = bp_backend_name(p->backend);
        meta.device = bp_backend_device(p->backend);
    }
    meta.items_total = p->summary.items_total;
    meta.items_done = p->summary.items_done;
    meta.items_failed = p->summary.items_failed;
    meta.first_failure = p->summary.first_failure;
    st = bp_report_write(p->report, &meta, p->out_dir, err);
    if (st == BP_OK) snprintf(p->summary.last_output, sizeof p->summary.last_output, "%s/report.html", p->out_dir);
    return st;
}

uint32_t bp_pipeline_result_count(const bp_pipeline *p) {
    return p && p->report ? (uint32_t)p->report->n_results : 0;
}

const bp_metric_result *bp_pipeline_result_at(const bp_pipeline *p, uint32_t i, const char **metric) {
    if (!p || !p->report || i >= p->report->n_results) return NULL;
    if (metric) *metric = p->report->results[i].metric;
    return &p->report->results[i].r;
}

/* ------------------------------------------------------------------ run -- */

static bp_status write_resolved(bp_pipeline *p, bp_error *err) {
    bp_sbuf text = {0};
    bp_sbuf_printf(&text,
                   "# Resolved by batpipe %s: includes inlined, overrides applied, every parameter explicit.\n"
                   "# Re-run with: batpipe run %s/resolved.cfg\n",
                   BP_VERSION_STRING, p->out_dir);
    bp_status st = bp_config_to_text(p->cfg, &text, err);
    char *path = bp_strdupf("%s/resolved.cfg", p->out_dir);
    if (st == BP_OK) st = path ? bp_write_file_atomic(path, text.s, text.len, err) : BP_ERR_NOMEM;
    if (st == BP_OK) snprintf(p->summary.resolved_config, sizeof p->summary.resolved_config, "%s", path);
    free(path);
    bp_sbuf_free(&text);
    return st;
}

static bp_status run_items(bp_pipeline *p, run_state *rs, bp_error *err) {
    const bp_host *host = bp_registry_host(p->reg);
    bp_run_summary *sum = &p->summary;
    size_t n = bp_input_count(p);
    pending_item *cur = malloc(sizeof *cur);
    if (!cur) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        if (host->cancelled(host)) {
            st = bp_error_set(err, BP_ERR_CANCELLED, "cancelled after %llu of %zu items (finished outputs are kept)",
                              (unsigned long long)(sum->items_done + sum->items_skipped), n);
            break;
        }
        if (p->input_kind != BP_INPUT_DATASET && p->out_dir && p->skip_existing && p->n_save &&
            outputs_exist(p, p->files[i].item)) {
            sum->items_skipped++;
            finished(p, rs, p->files[i].item);
            continue;
        }
        int skipped = 0;
        st = read_item(p, rs, i, cur, &skipped, err);
        if (st == BP_OK && skipped) {
            sum->items_skipped++;
            map_free(&cur->m);
            finished(p, rs, cur->name);
            continue;
        }
        if (st != BP_OK) {
            bp_error_prefix(err, "%s: ", cur->what);
            map_free(&cur->m);
            st = item_failed(p, st, 1, err);
            finished(p, rs, cur->name);
            continue;
        }
        if (!fits_batch(p, rs, cur) && (st = flush(p, rs, err)) != BP_OK) {
            map_free(&cur->m);
            break;
        }
        memcpy(&rs->batch[rs->nb++], cur, sizeof *cur);
        if (rs->nb >= (uint32_t)p->batch_size) st = flush(p, rs, err);
    }
    free(cur);
    if (st == BP_OK) st = flush(p, rs, err);
    return st;
}

bp_status bp_pipeline_run(bp_pipeline *p, bp_progress_fn progress, void *user, bp_error *err) {
    bp_run_summary *sum = &p->summary;
    memset(sum, 0, sizeof *sum);
    sum->items_total = bp_input_count(p);
    bp_status st;
    if (p->out_dir) {
        snprintf(sum->output_dir, sizeof sum->output_dir, "%s", p->out_dir);
        if ((st = bp_mkdir_p(p->out_dir, err)) != BP_OK) return st;
        if ((st = write_resolved(p, err)) != BP_OK) return st;
    }
    if (p->report) bp_report_reset(p->report);
    for (size_t m = 0; m < p->n_metrics; m++) {
        bp_error e2 = BP_ERROR_INIT;
        if ((st = p->metrics[m].m->reset(p->metrics[m].m, &e2)) != BP_OK)
            return bp_error_set(err, st, "%s: reset: %s", p->metrics[m].label, e2.msg);
    }
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.batch = calloc((size_t)p->batch_size, sizeof *rs.batch);
    if (!rs.batch) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    rs.progress = progress;
    rs.user = user;
    rs.t0 = bp_now();
    st = run_items(p, &rs, err);
    batch_clear(&rs);
    free(rs.batch);
    name_set_free(&rs.saved);
    sum->seconds = bp_now() - rs.t0;
    if (st == BP_OK && p->report) st = write_report(p, err);
    return st;
}
