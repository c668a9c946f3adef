/* Pipeline execution: item by item, input → stages → saved tensors, with
 * finiteness checks, atomic writes, progress, cancellation and a summary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/npy.h"
#include "batpipe/safetensors.h"
#include "pipeline_internal.h"

#define ITEM_MAX_TENSORS 64

typedef struct item_map {
    char names[ITEM_MAX_TENSORS][48];
    bp_tensor *tensors[ITEM_MAX_TENSORS];
    const char *producer[ITEM_MAX_TENSORS]; /* "input" or a stage label */
    uint32_t n;
} item_map;

static void map_free(item_map *m) {
    for (uint32_t i = 0; i < m->n; i++) bp_tensor_free(m->tensors[i]);
    m->n = 0;
}

static bp_tensor *map_find(item_map *m, const char *name, const char **producer) {
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0) {
            if (producer) *producer = m->producer[i];
            return m->tensors[i];
        }
    return NULL;
}

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

static bp_status run_stage(bp_pipeline *p, bp_stage_rec *s, item_map *m, double *rate, bp_error *err) {
    const char *producer = NULL;
    bp_tensor *in = map_find(m, s->in_name, &producer);
    if (!in) return bp_error_set(err, BP_ERR_SPEC, "no tensor '%s' for %s", s->in_name, s->label);
    bp_tensor view = *in;
    if (s->add_batch) {
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
        m->n++;
    }
    *rate = s->ports[0].spec.rate;
    return BP_OK;
fail:
    for (uint32_t i = 0; i < s->n_ports; i++) bp_tensor_free(outs[i]);
    return st;
}

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

static bp_status save_item(bp_pipeline *p, size_t idx, item_map *m, double audio_rate, bp_error *err) {
    const bp_input_file *f = &p->files[idx];
    bp_tensor *host[64] = {0};
    bp_status st = BP_OK;
    bp_st_writer *w = NULL;
    if (p->format == BP_SAVE_SAFETENSORS && (st = bp_st_writer_new(&w, err)) != BP_OK) return st;
    for (size_t i = 0; i < p->n_save && st == BP_OK; i++) {
        const char *producer = "input";
        bp_tensor *t = map_find(m, p->save[i], &producer);
        if (!t) {
            st = bp_error_set(err, BP_ERR_NOT_FOUND, "no tensor '%s' to save (not in this input file)", p->save[i]);
            break;
        }
        if (t->backend && !bp_backend_is_host(t->backend)) {
            if ((st = bp_tensor_new(NULL, t->dtype, t->ndim, t->shape, &host[i], err)) != BP_OK) break;
            if ((st = bp_tensor_read(t, host[i]->data, bp_tensor_nbytes(t), err)) != BP_OK) break;
            t = host[i];
        }
        char what[160];
        snprintf(what, sizeof what, "%s: '%s'", producer, p->save[i]);
        if ((st = bp_tensor_check_finite(t, what, err)) != BP_OK) break;
        update_stats(p, p->save[i], t);
        if (p->format == BP_SAVE_SAFETENSORS) {
            st = bp_st_writer_add(w, p->save[i], t, err);
        } else {
            char *path = output_path(p, f->item, p->save[i]);
            st = path ? bp_npy_write(path, t, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            if (st == BP_OK) snprintf(p->summary.last_output, sizeof p->summary.last_output, "%s", path);
            free(path);
        }
    }
    if (st == BP_OK && w) {
        char rate[32];
        st = bp_st_writer_set_metadata(w, "source", f->path, err);
        if (st == BP_OK) st = bp_st_writer_set_metadata(w, "batpipe_version", BP_VERSION_STRING, err);
        if (st == BP_OK) st = bp_st_writer_set_metadata(w, "pipeline", bp_config_label(p->cfg), err);
        if (st == BP_OK && audio_rate > 0) {
            snprintf(rate, sizeof rate, "%g", audio_rate);
            st = bp_st_writer_set_metadata(w, "sample_rate", rate, err);
        }
        char *path = output_path(p, f->item, "");
        if (st == BP_OK) st = path ? bp_st_writer_write(w, path, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (st == BP_OK) snprintf(p->summary.last_output, sizeof p->summary.last_output, "%s", path);
        free(path);
    }
    bp_st_writer_free(w);
    for (size_t i = 0; i < 64; i++) bp_tensor_free(host[i]);
    return st;
}

static bp_status run_item(bp_pipeline *p, size_t idx, bp_error *err) {
    item_map m;
    memset(&m, 0, sizeof m);
    double rate = 0;
    bp_status st = bp_input_read(p, idx, m.names, m.tensors, ITEM_MAX_TENSORS, &m.n, &rate, err);
    if (st != BP_OK) return st;
    for (uint32_t i = 0; i < m.n; i++) m.producer[i] = "input";
    double audio_rate = rate;
    for (int k = 0; k < p->n_stages && st == BP_OK; k++) st = run_stage(p, &p->stages[k], &m, &rate, err);
    if (st == BP_OK && p->out_dir) st = save_item(p, idx, &m, audio_rate, err);
    map_free(&m);
    return st;
}

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

bp_status bp_pipeline_run(bp_pipeline *p, bp_progress_fn progress, void *user, bp_error *err) {
    bp_run_summary *sum = &p->summary;
    memset(sum, 0, sizeof *sum);
    sum->items_total = p->n_files;
    const bp_host *host = bp_registry_host(p->reg);
    bp_status st;
    if (p->out_dir) {
        snprintf(sum->output_dir, sizeof sum->output_dir, "%s", p->out_dir);
        if ((st = bp_mkdir_p(p->out_dir, err)) != BP_OK) return st;
        if ((st = write_resolved(p, err)) != BP_OK) return st;
    }
    double t0 = bp_now();
    for (size_t i = 0; i < p->n_files; i++) {
        if (host->cancelled(host)) {
            sum->seconds = bp_now() - t0;
            return bp_error_set(err, BP_ERR_CANCELLED, "cancelled after %llu of %zu items (finished outputs are kept)",
                                (unsigned long long)(sum->items_done + sum->items_skipped), p->n_files);
        }
        const bp_input_file *f = &p->files[i];
        if (p->out_dir && p->skip_existing && outputs_exist(p, f->item)) {
            sum->items_skipped++;
        } else {
            st = run_item(p, i, err);
            if (st != BP_OK) {
                bp_error_prefix(err, "%s: ", f->path);
                if (!p->on_error_skip || st == BP_ERR_NOMEM || st == BP_ERR_INTERNAL || st == BP_ERR_CANCELLED) {
                    sum->seconds = bp_now() - t0;
                    return st;
                }
                if (!sum->items_failed) snprintf(sum->first_failure, sizeof sum->first_failure, "%s", err->msg);
                sum->items_failed++;
                if (host->log) host->log(host, BP_LOG_WARN, "pipeline", err->msg);
                bp_error_clear(err);
            } else {
                sum->items_done++;
            }
        }
        if (progress) progress(user, i + 1, p->n_files, f->item, bp_now() - t0);
    }
    sum->seconds = bp_now() - t0;
    return BP_OK;
}
