/* Pipeline loading: the config schema, stage creation, spec negotiation
 * between the input (files or a dataset) and the stages, which stages run
 * on batches, the metrics' inputs, and the plan. Nothing here computes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "pipeline_internal.h"

/* ------------------------------------------------------- config helpers -- */

bp_status bp_sec_check_keys(bp_config *cfg, const config_setting_t *sec, const char *sec_name,
                            const char *const *allowed, bp_error *err) {
    for (int i = 0; i < config_setting_length(sec); i++) {
        const config_setting_t *m = config_setting_get_elem(sec, (unsigned)i);
        const char *name = config_setting_name(m);
        int ok = 0;
        const char *best = NULL;
        int best_d = 3;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, name) == 0) ok = 1;
            int d = bp_edit_distance(name, *a);
            if (d < best_d) {
                best_d = d;
                best = *a;
            }
        }
        if (ok) continue;
        bp_sbuf list = {0};
        for (const char *const *a = allowed; *a; a++) bp_sbuf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
        char where[600];
        bp_config_where(cfg, m, where, sizeof where);
        if (best)
            bp_error_set(err, BP_ERR_INVALID, "%s: %s: unknown key '%s' (did you mean '%s'?); valid: %s", where,
                         sec_name, name, best, list.s ? list.s : "");
        else
            bp_error_set(err, BP_ERR_INVALID, "%s: %s: unknown key '%s'; valid: %s", where, sec_name, name,
                         list.s ? list.s : "");
        bp_sbuf_free(&list);
        return BP_ERR_INVALID;
    }
    return BP_OK;
}

bp_status bp_sec_string(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key,
                        const char *dflt, const char *choices, const char **out, bp_error *err) {
    const config_setting_t *s = sec ? config_setting_get_member(sec, key) : NULL;
    char where[600];
    if (!s) {
        if (!dflt)
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: missing required key '%s'%s%s",
                                sec ? bp_config_where(cfg, sec, where, sizeof where) : bp_config_label(cfg), sec_name,
                                key, choices ? "; one of: " : "", choices ? choices : "");
        *out = dflt;
        return BP_OK;
    }
    bp_config_where(cfg, s, where, sizeof where);
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s.%s must be a string, got %s", where, sec_name, key,
                            bp_config_type_phrase(config_setting_type(s)));
    const char *v = config_setting_get_string(s);
    if (choices) {
        size_t n = strlen(v);
        const char *c = choices;
        int ok = 0;
        while (*c && !ok) {
            size_t len = strcspn(c, "|");
            ok = len == n && strncmp(c, v, n) == 0;
            c += len;
            if (*c == '|') c++;
        }
        if (!ok)
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s.%s = \"%s\" is not one of: %s", where, sec_name, key, v,
                                choices);
    }
    *out = v;
    return BP_OK;
}

bp_status bp_sec_bool(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key, int dflt,
                      int *out, bp_error *err) {
    const config_setting_t *s = sec ? config_setting_get_member(sec, key) : NULL;
    if (!s) {
        *out = dflt;
        return BP_OK;
    }
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        char where[600];
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s.%s must be true or false, got %s",
                            bp_config_where(cfg, s, where, sizeof where), sec_name, key,
                            bp_config_type_phrase(config_setting_type(s)));
    }
    *out = config_setting_get_bool(s);
    return BP_OK;
}

bp_status bp_sec_int(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key, int64_t dflt,
                     int64_t lo, int64_t hi, int64_t *out, bp_error *err) {
    const config_setting_t *s = sec ? config_setting_get_member(sec, key) : NULL;
    if (!s) {
        *out = dflt;
        return BP_OK;
    }
    char where[600];
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s.%s must be an integer, got %s",
                            bp_config_where(cfg, s, where, sizeof where), sec_name, key, bp_config_type_phrase(t));
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s.%s = %lld is outside the range [%lld, %lld]",
                            bp_config_where(cfg, s, where, sizeof where), sec_name, key, v, (long long)lo,
                            (long long)hi);
    *out = v;
    return BP_OK;
}

/* ---------------------------------------------------------------- plan -- */

static const char *const top_keys[] = {"name",    "description", "threads", "backend", "input",      "frontend",
                                       "encoder", "projector",   "metrics", "output",  "provenance", NULL};

static const char *stage_input_name(int32_t kind) {
    switch (kind) {
    case BP_KIND_FRONTEND: return "audio";
    case BP_KIND_ENCODER: return "features";
    default: return "tokens";
    }
}

/* Resolve the `type` of a stage section to a component and build its params. */
static bp_status make_stage(bp_pipeline *p, config_setting_t *sec, const char *slot, int32_t kind, bp_error *err) {
    bp_stage_rec *s = &p->stages[p->n_stages];
    memset(s, 0, sizeof *s);
    s->slot = slot;
    s->kind = kind;
    char where[600];
    if (!config_setting_is_group(sec))
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s must be a group: %s = { type = \"...\"; ... };",
                            bp_config_where(p->cfg, sec, where, sizeof where), slot, slot);
    const char *type;
    bp_status st = bp_sec_string(p->cfg, sec, slot, "type", NULL, NULL, &type, err);
    if (st != BP_OK) return st;
    const bp_component_info *c = bp_registry_find(p->reg, kind, type);
    if (!c) {
        char choices[512];
        const config_setting_t *ts = config_setting_get_member(sec, "type");
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: %s: unknown %s plugin '%s'; installed: %s",
                            bp_config_where(p->cfg, ts, where, sizeof where), slot, bp_kind_name(kind), type,
                            bp_registry_choices(p->reg, kind, choices, sizeof choices));
    }
    s->comp = c;
    snprintf(s->label, sizeof s->label, "%s (%s)", slot, c->desc->name);
    static const char *const reserved[] = {"type", NULL};
    st = bp_paramset_build(c->desc, s->label, p->cfg, sec, reserved, &s->params, err);
    if (st != BP_OK) return st;
    p->n_stages++;
    return BP_OK;
}

static bp_status make_backend(bp_pipeline *p, config_setting_t *sec, int32_t threads, bp_error *err) {
    const char *type = "cpu";
    bp_status st;
    if (sec && (st = bp_sec_string(p->cfg, sec, "backend", "type", "cpu", NULL, &type, err)) != BP_OK) return st;
    const bp_component_info *c = bp_registry_find(p->reg, BP_KIND_BACKEND, type);
    char where[600];
    if (!c) {
        char choices[512];
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: backend: unknown backend '%s'; usable here: %s",
                            sec ? bp_config_where(p->cfg, sec, where, sizeof where) : bp_config_label(p->cfg), type,
                            bp_registry_choices(p->reg, BP_KIND_BACKEND, choices, sizeof choices));
    }
    if (!sec) {
        sec = config_setting_add(bp_config_root(p->cfg), "backend", CONFIG_TYPE_GROUP);
        config_setting_t *t = sec ? config_setting_add(sec, "type", CONFIG_TYPE_STRING) : NULL;
        if (!t || config_setting_set_string(t, type) != CONFIG_TRUE)
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    /* The pipeline's thread count is the backend's unless it sets its own. */
    if (threads > 0 && !config_setting_get_member(sec, "threads")) {
        for (uint32_t i = 0; i < c->desc->n_params; i++)
            if (strcmp(bp_desc_param(c->desc, i)->name, "threads") == 0) {
                config_setting_t *t = config_setting_add(sec, "threads", CONFIG_TYPE_INT);
                if (t) config_setting_set_int(t, threads);
            }
    }
    static const char *const reserved[] = {"type", NULL};
    char label[128];
    snprintf(label, sizeof label, "backend (%s)", type);
    st = bp_paramset_build(c->desc, label, p->cfg, sec, reserved, &p->backend_params, err);
    if (st != BP_OK) return st;
    return bp_registry_create_backend(p->reg, type, bp_paramset_params(p->backend_params), &p->backend, err);
}

static int is_saved(const bp_pipeline *p, const char *name) {
    for (size_t i = 0; i < p->n_save; i++)
        if (strcmp(p->save[i], name) == 0) return 1;
    return 0;
}

static bp_status output_configure(bp_pipeline *p, config_setting_t *sec, bp_error *err) {
    static const char *const keys[] = {"dir", "save", "format", "skip_existing", NULL};
    bp_status st = bp_sec_check_keys(p->cfg, sec, "output", keys, err);
    if (st != BP_OK) return st;
    const char *dir, *format;
    if ((st = bp_sec_string(p->cfg, sec, "output", "dir", NULL, NULL, &dir, err)) != BP_OK) return st;
    p->out_dir = bp_path_join(bp_config_base_dir(p->cfg, config_setting_get_member(sec, "dir")), dir);
    if ((st = bp_sec_string(p->cfg, sec, "output", "format", "safetensors", "safetensors|npy", &format, err)) != BP_OK)
        return st;
    p->format = strcmp(format, "npy") == 0 ? BP_SAVE_NPY : BP_SAVE_SAFETENSORS;
    if ((st = bp_sec_bool(p->cfg, sec, "output", "skip_existing", 0, &p->skip_existing, err)) != BP_OK) return st;
    const config_setting_t *save = config_setting_get_member(sec, "save");
    char where[600];
    if (save) {
        int t = config_setting_type(save);
        int n = t == CONFIG_TYPE_STRING ? 1 : config_setting_length(save);
        if (t != CONFIG_TYPE_STRING && t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
            return bp_error_set(err, BP_ERR_INVALID, "%s: output.save must be a list of tensor names",
                                bp_config_where(p->cfg, save, where, sizeof where));
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = t == CONFIG_TYPE_STRING ? save : config_setting_get_elem(save, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING)
                return bp_error_set(err, BP_ERR_INVALID, "%s: output.save[%d] must be a string",
                                    bp_config_where(p->cfg, save, where, sizeof where), i);
            if (bp_grow((void **)&p->save, &p->cap_save, p->n_save + 1, sizeof(char *)) != 0 ||
                !(p->save[p->n_save] = bp_strdup(config_setting_get_string(e))))
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            p->n_save++;
        }
    }
    return p->out_dir ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
}

/* Negotiate: the input's spec against each stage's wants, in order. */
static bp_status negotiate(bp_pipeline *p, bp_error *err) {
    char why[256], have_s[256], want_s[256];
    bp_spec have = bp_spec_any();
    char input_label[160];
    if (p->input_kind == BP_INPUT_DATASET)
        snprintf(input_label, sizeof input_label, "input (%s)", p->ds_comp->desc->name);
    else
        snprintf(input_label, sizeof input_label, "input");
    const char *producer = input_label;
    p->batch_stage = -1;
    if (p->input_kind == BP_INPUT_AUDIO) {
        have.dtype = BP_DTYPE_F32;
        have.ndim = 2;
        have.shape[0] = p->files[0].channels;
        snprintf(have.dims, sizeof have.dims, "channels,samples");
        for (size_t i = 1; i < p->n_files; i++)
            if (p->files[i].channels != have.shape[0]) have.shape[0] = BP_DIM_ANY;
    }
    for (int k = 0; k < p->n_stages; k++) {
        bp_stage_rec *s = &p->stages[k];
        bp_spec want = bp_spec_any();
        bp_error e2 = BP_ERROR_INIT;
        bp_status st = s->st->input_spec(s->st, &want, &e2);
        if (st != BP_OK) return bp_error_set(err, st, "%s: input_spec: %s", s->label, e2.msg);
        if (k == 0) {
            snprintf(s->in_name, sizeof s->in_name, "%s", stage_input_name(s->kind));
            if (p->input_kind == BP_INPUT_AUDIO) {
                if (s->kind != BP_KIND_FRONTEND)
                    return bp_error_set(err, BP_ERR_SPEC,
                                        "%s: audio input needs a frontend first (the %s reads '%s'); add a frontend "
                                        "section or use input.type = \"tensors\"",
                                        bp_config_label(p->cfg), s->label, s->in_name);
                /* Per-file channel check: name the offending file. */
                if (want.ndim == 2 && want.shape[0] != BP_DIM_ANY)
                    for (size_t i = 0; i < p->n_files; i++)
                        if (p->files[i].channels != want.shape[0])
                            return bp_error_set(err, BP_ERR_SPEC, "%s: %d channel%s, but %s needs %lld",
                                                p->files[i].path, p->files[i].channels,
                                                p->files[i].channels == 1 ? "" : "s", s->label,
                                                (long long)want.shape[0]);
                if (want.rate > 0) p->target_rate = want.rate;
                have.rate = want.rate;
                if (want.ndim == 2) have.shape[0] = want.shape[0] == BP_DIM_ANY ? have.shape[0] : want.shape[0];
            } else if (p->input_kind == BP_INPUT_DATASET) {
                const bp_port *port = NULL;
                for (uint32_t i = 0; i < p->n_ds_ports; i++)
                    if (strcmp(p->ds_ports[i].name, s->in_name) == 0) port = &p->ds_ports[i];
                if (!port) {
                    bp_sbuf offers = {0};
                    for (uint32_t i = 0; i < p->n_ds_ports; i++)
                        bp_sbuf_printf(&offers, "%s%s", i ? ", " : "", p->ds_ports[i].name);
                    bp_error_set(err, BP_ERR_SPEC, "%s: %s offers no tensor '%s', which %s reads; it offers: %s",
                                 bp_config_label(p->cfg), input_label, s->in_name, s->label,
                                 offers.s ? offers.s : "(nothing)");
                    bp_sbuf_free(&offers);
                    return BP_ERR_SPEC;
                }
                have = port->spec;
            } else {
                /* saved tensors: learn the spec from the first file */
                char names[64][48];
                bp_tensor *ts[64];
                uint32_t n = 0;
                double rate = 0;
                st = bp_input_read(p, 0, names, ts, 64, &n, &rate, NULL, err);
                if (st != BP_OK) return st;
                int found = 0;
                for (uint32_t i = 0; i < n; i++) {
                    if (strcmp(names[i], s->in_name) == 0) {
                        have = bp_spec_of(ts[i], rate);
                        found = 1;
                    }
                    bp_tensor_free(ts[i]);
                }
                if (!found)
                    return bp_error_set(err, BP_ERR_SPEC, "%s: has no tensor '%s', which %s reads", p->files[0].path,
                                        s->in_name, s->label);
                if (s->kind == BP_KIND_FRONTEND && want.rate > 0 && rate != want.rate)
                    return bp_error_set(err, BP_ERR_SPEC,
                                        "%s: tensor 'audio' is at %g Hz (metadata sample_rate or input.rate), but %s "
                                        "needs %g Hz",
                                        p->files[0].path, rate, s->label, want.rate);
            }
        } else {
            memcpy(s->in_name, p->stages[k - 1].ports[0].name, sizeof s->in_name);
            s->in_name[sizeof s->in_name - 1] = '\0';
        }
        /* A stage that wants a leading batch dim gets one: the first such
         * stage and those after it run on stacked batches of items. */
        if (want.ndim >= 0 && have.ndim >= 0 && want.ndim == have.ndim + 1 &&
            (want.shape[0] == BP_DIM_ANY || want.shape[0] == 1)) {
            if (want.shape[0] == 1) p->batch_size = 1; /* the stage takes one item at a time */
            for (int d = have.ndim; d > 0; d--) have.shape[d] = have.shape[d - 1];
            have.shape[0] = p->batch_stage < 0 ? p->batch_size : 1;
            have.ndim++;
            if (have.dims[0]) {
                char dims[sizeof have.dims];
                snprintf(dims, sizeof dims, "batch,%s", have.dims);
                memcpy(have.dims, dims, sizeof dims);
            }
            s->add_batch = 1;
            if (p->batch_stage < 0) p->batch_stage = k;
        }
        if (!bp_spec_satisfies(&have, &want, why, sizeof why))
            return bp_error_set(err, BP_ERR_SPEC, "%s cannot take what %s produces: %s (%s gives %s; %s needs %s)",
                                s->label, producer, why, producer, bp_spec_describe(&have, have_s, sizeof have_s),
                                s->label, bp_spec_describe(&want, want_s, sizeof want_s));
        uint32_t n = BP_MAX_OUTPUTS;
        memset(s->ports, 0, sizeof s->ports);
        st = s->st->prepare(s->st, &have, s->ports, &n, &e2);
        if (st != BP_OK) return bp_error_set(err, st, "%s: %s", s->label, e2.msg);
        if (n < 1 || n > BP_MAX_OUTPUTS)
            return bp_error_set(err, BP_ERR_INTERNAL, "%s: prepare reported %u outputs", s->label, n);
        s->n_ports = n;
        s->prepared_in = have;
        have = s->ports[0].spec;
        producer = s->label;
    }
    return BP_OK;
}

/* Which outputs are needed, and does every saved name exist? */
static bp_status resolve_outputs(bp_pipeline *p, bp_error *err) {
    /* default: the last stage's main output (with metrics: nothing but the report) */
    if (p->out_dir && p->n_save == 0 && p->n_stages > 0 && !p->n_metrics) {
        const char *main = p->stages[p->n_stages - 1].ports[0].name;
        if (bp_grow((void **)&p->save, &p->cap_save, 1, sizeof(char *)) != 0 || !(p->save[0] = bp_strdup(main)))
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        p->n_save = 1;
    }
    for (int k = 0; k < p->n_stages; k++) {
        bp_stage_rec *s = &p->stages[k];
        for (uint32_t i = 0; i < s->n_ports; i++) {
            s->need[i] = i == 0 || is_saved(p, s->ports[i].name) || bp_metrics_uses(p, s->ports[i].name);
            for (int j = 0; j <= k; j++)
                for (uint32_t m = 0; m < (j == k ? i : p->stages[j].n_ports); m++)
                    if (strcmp(p->stages[j].ports[m].name, s->ports[i].name) == 0)
                        return bp_error_set(err, BP_ERR_INTERNAL, "%s and %s both produce a tensor named '%s'",
                                            p->stages[j].label, s->label, s->ports[i].name);
        }
    }
    for (size_t i = 0; i < p->n_save; i++) {
        int found = strcmp(p->save[i], "audio") == 0 && p->input_kind == BP_INPUT_AUDIO;
        for (uint32_t j = 0; j < p->n_ds_ports && !found; j++) found = strcmp(p->ds_ports[j].name, p->save[i]) == 0;
        for (int k = 0; k < p->n_stages && !found; k++)
            for (uint32_t j = 0; j < p->stages[k].n_ports; j++)
                if (strcmp(p->stages[k].ports[j].name, p->save[i]) == 0) found = 1;
        if (!found && p->input_kind == BP_INPUT_TENSORS) found = 1; /* checked per item */
        if (!found) {
            bp_sbuf avail = {0};
            if (p->input_kind == BP_INPUT_AUDIO) bp_sbuf_printf(&avail, "audio");
            for (uint32_t j = 0; j < p->n_ds_ports; j++)
                bp_sbuf_printf(&avail, "%s%s", avail.len ? ", " : "", p->ds_ports[j].name);
            for (int k = 0; k < p->n_stages; k++)
                for (uint32_t j = 0; j < p->stages[k].n_ports; j++)
                    bp_sbuf_printf(&avail, "%s%s", avail.len ? ", " : "", p->stages[k].ports[j].name);
            bp_error_set(err, BP_ERR_INVALID, "%s: output.save: no stage produces '%s'; available: %s",
                         bp_config_label(p->cfg), p->save[i], avail.s ? avail.s : "(none)");
            bp_sbuf_free(&avail);
            return BP_ERR_INVALID;
        }
    }
    return BP_OK;
}

static void write_plan(bp_pipeline *p) {
    bp_sbuf *b = &p->plan;
    char s1[256];
    bp_sbuf_printf(b, "pipeline  %s\n", bp_config_label(p->cfg));
    const bp_input_file *f0 = p->files;
    if (p->input_kind == BP_INPUT_DATASET) {
        bp_sbuf_printf(b, "input     dataset %s %s (%s): %lld items, tensors", p->ds_comp->desc->name,
                       p->ds_comp->desc->version, p->ds_comp->plugin->path, (long long)p->ds_count);
        for (uint32_t i = 0; i < p->n_ds_ports; i++)
            bp_sbuf_printf(b, "%s %s %s", i ? "," : "", p->ds_ports[i].name,
                           bp_spec_describe(&p->ds_ports[i].spec, s1, sizeof s1));
        bp_sbuf_printf(b, "\n");
    } else if (p->input_kind == BP_INPUT_AUDIO) {
        bp_sbuf_printf(b, "input     audio: %zu file%s (first: %s, %d ch, %g Hz)", p->n_files,
                       p->n_files == 1 ? "" : "s", f0->path, f0->channels, f0->rate);
        if (p->target_rate > 0) bp_sbuf_printf(b, ", resampled to %g Hz where needed", p->target_rate);
        bp_sbuf_printf(b, "\n");
    } else {
        bp_sbuf_printf(b, "input     tensors: %zu file%s (first: %s)\n", p->n_files, p->n_files == 1 ? "" : "s",
                       f0->path);
    }
    if (p->backend)
        bp_sbuf_printf(b, "backend   %s: %s, %d threads\n", bp_backend_name(p->backend), bp_backend_device(p->backend),
                       bp_backend_threads(p->backend));
    for (int k = 0; k < p->n_stages; k++) {
        const bp_stage_rec *s = &p->stages[k];
        bp_sbuf_printf(b, "%-9s %s %s (%s)\n", s->slot, s->comp->desc->name, s->comp->desc->version,
                       s->comp->plugin->path);
        char batch[96] = "";
        if (s->add_batch && k == p->batch_stage && p->batch_size > 1)
            snprintf(batch, sizeof batch, " (items stacked in batches of up to %lld)", (long long)p->batch_size);
        else if (s->add_batch)
            snprintf(batch, sizeof batch, " (batch of 1 added)");
        bp_sbuf_printf(b, "          in : %s%s\n", bp_spec_describe(&s->prepared_in, s1, sizeof s1), batch);
        for (uint32_t i = 0; i < s->n_ports; i++)
            bp_sbuf_printf(b, "          %s: %s %s%s\n", i == 0 ? "out" : "   ", s->ports[i].name,
                           bp_spec_describe(&s->ports[i].spec, s1, sizeof s1),
                           i == 0                                   ? ""
                           : is_saved(p, s->ports[i].name)          ? " (saved)"
                           : bp_metrics_uses(p, s->ports[i].name)   ? " (for the metrics)"
                                                                    : " (optional, not computed)");
    }
    for (size_t i = 0; i < p->n_metrics; i++) {
        const bp_metric_rec *r = &p->metrics[i];
        bp_sbuf_printf(b, "%-9s %s %s (%s) reads", i ? "" : "metrics", r->comp->desc->name, r->comp->desc->version,
                       r->comp->plugin->path);
        for (uint32_t k = 0; k < r->n_inputs; k++) bp_sbuf_printf(b, "%s %s", k ? "," : "", r->inputs[k]);
        bp_sbuf_printf(b, "\n");
    }
    if (p->out_dir) {
        bp_sbuf_printf(b, "output    %s: ", p->out_dir);
        for (size_t i = 0; i < p->n_save; i++) bp_sbuf_printf(b, "%s%s", i ? ", " : "", p->save[i]);
        if (p->n_save)
            bp_sbuf_printf(b, " as %s%s\n", p->format == BP_SAVE_NPY ? ".npy" : "safetensors",
                           p->skip_existing ? " (existing outputs skipped)" : "");
        else
            bp_sbuf_printf(b, "no per-item tensors\n");
        if (p->n_metrics)
            bp_sbuf_printf(b, "report    %s/report.{json,csv,md,html} and figures (SVG)\n", p->out_dir);
    } else {
        bp_sbuf_printf(b, "output    none (no output section: results are computed and summarised only)\n");
    }
    bp_sbuf_printf(b, "threads   %d\n", bp_registry_threads(p->reg));
}

/* Record plugin names/versions and every parameter in the config tree. */
static bp_status record_provenance(bp_pipeline *p, const char *const *overrides, uint32_t n, bp_error *err) {
    config_setting_t *root = bp_config_root(p->cfg);
    if (config_setting_get_member(root, "provenance")) config_setting_remove(root, "provenance");
    config_setting_t *prov = config_setting_add(root, "provenance", CONFIG_TYPE_GROUP);
    if (!prov) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
#define ADD_STR(parent, key, val)                                                    \
    do {                                                                             \
        config_setting_t *s_ = config_setting_add(parent, key, CONFIG_TYPE_STRING);  \
        if (!s_ || config_setting_set_string(s_, val) != CONFIG_TRUE)                 \
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");                 \
    } while (0)
    /* inputs and outputs as absolute paths, so that the file runs from anywhere */
    config_setting_t *in = config_setting_get_member(root, "input");
    if (in && !config_setting_get_member(in, "batch_size")) {
        config_setting_t *bs = config_setting_add(in, "batch_size", CONFIG_TYPE_INT);
        if (!bs || config_setting_set_int(bs, (int)p->batch_size) != CONFIG_TRUE)
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    if (in && p->input_kind == BP_INPUT_DATASET) {
        bp_status st = bp_paramset_write_back(p->ds_params, in, err);
        if (st != BP_OK) return st;
    } else if (in) {
        if (config_setting_get_member(in, "files")) config_setting_remove(in, "files");
        if (config_setting_get_member(in, "list")) config_setting_remove(in, "list");
        config_setting_t *files = config_setting_add(in, "files", CONFIG_TYPE_ARRAY);
        for (size_t i = 0; files && i < p->n_files; i++) {
            char *real = realpath(p->files[i].path, NULL);
            config_setting_set_string_elem(files, -1, real ? real : p->files[i].path);
            free(real);
        }
    }
    config_setting_t *out = config_setting_get_member(root, "output");
    if (out && p->out_dir) {
        config_setting_t *d = config_setting_get_member(out, "dir");
        if (d) config_setting_set_string(d, p->out_dir);
    }
    ADD_STR(prov, "batpipe", BP_VERSION_STRING);
    char abi[32];
    snprintf(abi, sizeof abi, "%d.%d", BP_ABI_MAJOR, BP_ABI_MINOR);
    ADD_STR(prov, "abi", abi);
    ADD_STR(prov, "config", bp_config_label(p->cfg));
    config_setting_t *ov = config_setting_add(prov, "overrides", CONFIG_TYPE_ARRAY);
    for (uint32_t i = 0; ov && i < n; i++) config_setting_set_string_elem(ov, -1, overrides[i]);
    for (int k = 0; k < p->n_stages; k++) {
        bp_stage_rec *s = &p->stages[k];
        config_setting_t *g = config_setting_add(prov, s->slot, CONFIG_TYPE_GROUP);
        if (!g) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        ADD_STR(g, "plugin", s->comp->desc->name);
        ADD_STR(g, "version", s->comp->desc->version);
        ADD_STR(g, "library", s->comp->plugin->plugin_name);
        ADD_STR(g, "library_version", s->comp->plugin->plugin_version);
        ADD_STR(g, "file", s->comp->plugin->path);
        bp_status st = bp_paramset_write_back(s->params, config_setting_get_member(root, s->slot), err);
        if (st != BP_OK) return st;
    }
    if (p->input_kind == BP_INPUT_DATASET) {
        config_setting_t *g = config_setting_add(prov, "input", CONFIG_TYPE_GROUP);
        if (!g) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        ADD_STR(g, "plugin", p->ds_comp->desc->name);
        ADD_STR(g, "version", p->ds_comp->desc->version);
        ADD_STR(g, "library", p->ds_comp->plugin->plugin_name);
        ADD_STR(g, "file", p->ds_comp->plugin->path);
    }
    if (p->n_metrics) {
        config_setting_t *ml = config_setting_get_member(root, "metrics");
        config_setting_t *pl = config_setting_add(prov, "metrics", CONFIG_TYPE_LIST);
        if (!pl) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < p->n_metrics; i++) {
            const bp_metric_rec *r = &p->metrics[i];
            config_setting_t *sec = config_setting_is_group(ml) ? ml : config_setting_get_elem(ml, (unsigned)i);
            bp_status st = sec ? bp_paramset_write_back(r->params, sec, err) : BP_OK;
            if (st != BP_OK) return st;
            config_setting_t *g = config_setting_add(pl, NULL, CONFIG_TYPE_GROUP);
            if (!g) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            ADD_STR(g, "plugin", r->comp->desc->name);
            ADD_STR(g, "version", r->comp->desc->version);
            ADD_STR(g, "library", r->comp->plugin->plugin_name);
            ADD_STR(g, "file", r->comp->plugin->path);
        }
    }
    if (p->backend) {
        config_setting_t *g = config_setting_add(prov, "backend", CONFIG_TYPE_GROUP);
        if (!g) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        ADD_STR(g, "name", bp_backend_name(p->backend));
        ADD_STR(g, "device", bp_backend_device(p->backend));
        bp_status st = bp_paramset_write_back(p->backend_params, config_setting_get_member(root, "backend"), err);
        if (st != BP_OK) return st;
    }
#undef ADD_STR
    return BP_OK;
}

static bp_status load(bp_pipeline *p, const char *const *overrides, uint32_t n, bp_error *err) {
    bp_status st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = bp_config_apply_override(p->cfg, overrides[i], err)) != BP_OK) return st;
    config_setting_t *root = bp_config_root(p->cfg);
    if ((st = bp_sec_check_keys(p->cfg, root, "pipeline", top_keys, err)) != BP_OK) return st;
    char where[600];
    const char *dummy;
    if ((st = bp_sec_string(p->cfg, root, "pipeline", "name", "", NULL, &dummy, err)) != BP_OK) return st;
    if ((st = bp_sec_string(p->cfg, root, "pipeline", "description", "", NULL, &dummy, err)) != BP_OK) return st;
    int32_t threads = 0;
    const config_setting_t *th = config_setting_get_member(root, "threads");
    if (th) {
        int t = config_setting_type(th);
        if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || config_setting_get_int64(th) < 0 ||
            config_setting_get_int64(th) > 4096)
            return bp_error_set(err, BP_ERR_INVALID, "%s: threads must be an integer in [0, 4096] (0 = all cores)",
                                bp_config_where(p->cfg, th, where, sizeof where));
        threads = (int32_t)config_setting_get_int64(th);
    }
    bp_registry_set_threads(p->reg, threads);
    config_setting_t *in = config_setting_get_member(root, "input");
    if (!in || !config_setting_is_group(in))
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: missing 'input' group, e.g. input = { type = \"audio\"; files = [\"clip.wav\"]; };",
                            bp_config_label(p->cfg));
    if ((st = bp_input_configure(p, in, err)) != BP_OK) return st;
    static const char *const slots[] = {"frontend", "encoder", "projector"};
    static const int32_t kinds[] = {BP_KIND_FRONTEND, BP_KIND_ENCODER, BP_KIND_PROJECTOR};
    for (int i = 0; i < 3; i++) {
        config_setting_t *sec = config_setting_get_member(root, slots[i]);
        if (sec && (st = make_stage(p, sec, slots[i], kinds[i], err)) != BP_OK) return st;
    }
    int needs_backend = 0;
    for (int k = 0; k < p->n_stages; k++) needs_backend |= p->stages[k].kind != BP_KIND_FRONTEND;
    config_setting_t *bsec = config_setting_get_member(root, "backend");
    if (bsec && !config_setting_is_group(bsec))
        return bp_error_set(err, BP_ERR_INVALID, "%s: backend must be a group: backend = { type = \"cpu\"; };",
                            bp_config_where(p->cfg, bsec, where, sizeof where));
    if (bsec || needs_backend)
        if ((st = make_backend(p, bsec, threads, err)) != BP_OK) return st;
    for (int k = 0; k < p->n_stages; k++) {
        bp_stage_rec *s = &p->stages[k];
        void *inst;
        st = bp_registry_create(p->reg, s->comp, bp_paramset_params(s->params),
                                s->kind == BP_KIND_FRONTEND ? NULL : p->backend, &inst, err);
        if (st != BP_OK) return st;
        s->st = inst;
        if (s->st->struct_size < offsetof(bp_stage, destroy) + sizeof(void *) || !s->st->input_spec ||
            !s->st->prepare || !s->st->process || !s->st->destroy)
            return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", s->label,
                                s->comp->plugin->path);
    }
    config_setting_t *out = config_setting_get_member(root, "output");
    if (out && (st = output_configure(p, out, err)) != BP_OK) return st;
    config_setting_t *mets = config_setting_get_member(root, "metrics");
    if (mets) {
        if ((st = bp_metrics_configure(p, mets, err)) != BP_OK) return st;
        if (p->n_metrics && !p->out_dir)
            return bp_error_set(
                err, BP_ERR_INVALID,
                "%s: metrics: the report goes to the output directory; add output = { dir = \"...\"; };",
                bp_config_where(p->cfg, mets, where, sizeof where));
        if (p->n_metrics && p->skip_existing)
            return bp_error_set(err, BP_ERR_INVALID,
                                "%s: metrics: output.skip_existing cannot be combined with metrics (the report needs "
                                "every item); set it to false",
                                bp_config_where(p->cfg, mets, where, sizeof where));
        if (p->n_metrics && !(p->report = calloc(1, sizeof *p->report)))
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    if ((st = negotiate(p, err)) != BP_OK) return st;
    if ((st = bp_metrics_check_inputs(p, err)) != BP_OK) return st;
    if ((st = resolve_outputs(p, err)) != BP_OK) return st;
    write_plan(p);
    return record_provenance(p, overrides, n, err);
}

static bp_status finish_load(bp_registry *reg, bp_config *cfg, const char *const *overrides, uint32_t n,
                             bp_pipeline **out, bp_error *err) {
    bp_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        bp_config_free(cfg);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    p->reg = reg;
    p->cfg = cfg;
    bp_status st = load(p, overrides, n, err);
    if (st != BP_OK) {
        bp_pipeline_free(p);
        return st;
    }
    *out = p;
    return BP_OK;
}

bp_status bp_pipeline_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                           bp_pipeline **out, bp_error *err) {
    *out = NULL;
    bp_config *cfg;
    bp_status st = bp_config_load_file(path, &cfg, err);
    if (st != BP_OK) return st;
    return finish_load(reg, cfg, overrides, n, out, err);
}

bp_status bp_pipeline_load_text(bp_registry *reg, const char *text, const char *label, const char *base_dir,
                                const char *const *overrides, uint32_t n, bp_pipeline **out, bp_error *err) {
    *out = NULL;
    bp_config *cfg;
    bp_status st = bp_config_load_text(text, label, base_dir, &cfg, err);
    if (st != BP_OK) return st;
    return finish_load(reg, cfg, overrides, n, out, err);
}

void bp_pipeline_free(bp_pipeline *p) {
    if (!p) return;
    for (int k = p->n_stages - 1; k >= 0; k--) {
        if (p->stages[k].st && p->stages[k].st->destroy) p->stages[k].st->destroy(p->stages[k].st);
        bp_paramset_free(p->stages[k].params);
    }
    bp_metrics_free(p);
    bp_report_free(p->report);
    bp_backend_free(p->backend);
    bp_paramset_free(p->backend_params);
    bp_input_free(p);
    for (size_t i = 0; i < p->n_save; i++) free(p->save[i]);
    free(p->save);
    free(p->out_dir);
    bp_sbuf_free(&p->plan);
    bp_config_free(p->cfg);
    free(p);
}

const char *bp_pipeline_plan(const bp_pipeline *p) { return p->plan.s ? p->plan.s : ""; }
const bp_run_summary *bp_pipeline_summary(const bp_pipeline *p) { return &p->summary; }
