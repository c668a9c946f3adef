/* Pipeline inputs: audio files (libsndfile, resampled to the first stage's
 * rate) or saved tensors (safetensors), from a list of paths, glob
 * patterns, or a list file; or the items of a dataset plugin chosen by
 * input.type (labels and all). */
#include <errno.h>
#include <stddef.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/safetensors.h"
#include "pipeline_internal.h"

static bp_status add_file(bp_pipeline *p, const char *path, const char *where, bp_error *err) {
    char *item = bp_path_stem(path);
    if (!item) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].item, item) == 0) {
            bp_error_set(err, BP_ERR_INVALID,
                         "%s: input: '%s' and '%s' would both be saved as '%s'; rename one or split the run", where,
                         p->files[i].path, path, item);
            free(item);
            return BP_ERR_INVALID;
        }
    if (bp_grow((void **)&p->files, &p->cap_files, p->n_files + 1, sizeof(bp_input_file)) != 0) {
        free(item);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    p->files[p->n_files].path = bp_strdup(path);
    p->files[p->n_files].item = item;
    if (!p->files[p->n_files].path) {
        free(item);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    p->n_files++;
    return BP_OK;
}

static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

static bp_status add_entry(bp_pipeline *p, const char *entry, const char *base, const char *where, bp_error *err) {
    char *full = bp_path_join(base, entry);
    if (!full) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = BP_OK;
    if (has_glob(entry)) {
        glob_t g;
        int r = glob(full, 0, NULL, &g);
        if (r == GLOB_NOMATCH || (r == 0 && g.gl_pathc == 0))
            st = bp_error_set(err, BP_ERR_NOT_FOUND, "%s: input: pattern '%s' matches no file", where, full);
        else if (r != 0)
            st = bp_error_set(err, BP_ERR_IO, "%s: input: cannot expand '%s'", where, full);
        for (size_t i = 0; st == BP_OK && i < g.gl_pathc; i++) st = add_file(p, g.gl_pathv[i], where, err);
        if (r == 0 || r == GLOB_NOMATCH) globfree(&g);
    } else if (access(full, R_OK) != 0) {
        st = bp_error_set(err, BP_ERR_NOT_FOUND, "%s: input: cannot read '%s': %s", where, full, strerror(errno));
    } else {
        st = add_file(p, full, where, err);
    }
    free(full);
    return st;
}

static bp_status read_list_file(bp_pipeline *p, const char *list_path, const char *where, bp_error *err) {
    FILE *f = fopen(list_path, "r");
    if (!f)
        return bp_error_set(err, BP_ERR_IO, "%s: input.list: cannot open '%s': %s", where, list_path, strerror(errno));
    char *dir = bp_dirname(list_path);
    char line[4096];
    unsigned lineno = 0;
    bp_status st = BP_OK;
    while (st == BP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') continue;
        char w[1200];
        snprintf(w, sizeof w, "%s:%u", list_path, lineno);
        st = add_entry(p, s, dir, w, err);
    }
    fclose(f);
    free(dir);
    return st;
}

/* input.type names a dataset plugin: its parameters are the other keys of
 * the section (less the reserved type, batch_size, on_error). */
static bp_status dataset_configure(bp_pipeline *p, config_setting_t *sec, const bp_component_info *c, bp_error *err) {
    char label[128], where[600];
    snprintf(label, sizeof label, "input (%s)", c->desc->name);
    static const char *const reserved[] = {"type", "batch_size", "on_error", NULL};
    bp_status st = bp_paramset_build(c->desc, label, p->cfg, sec, reserved, &p->ds_params, err);
    if (st != BP_OK) return st;
    p->ds_comp = c;
    void *inst = NULL;
    st = bp_registry_create(p->reg, c, bp_paramset_params(p->ds_params), NULL, &inst, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "%s: %s: ", bp_config_where(p->cfg, sec, where, sizeof where), label);
        return st;
    }
    p->ds = inst;
    if (p->ds->struct_size < offsetof(bp_dataset, destroy) + sizeof(void *) || !p->ds->count || !p->ds->item_ports ||
        !p->ds->get || !p->ds->destroy)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", label, c->plugin->path);
    p->ds_count = p->ds->count(p->ds);
    if (p->ds_count <= 0)
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s: the dataset has no items (check its parameters)",
                            bp_config_where(p->cfg, sec, where, sizeof where), label);
    uint32_t n = BP_MAX_ITEM_FIELDS;
    bp_error e2 = BP_ERROR_INIT;
    memset(p->ds_ports, 0, sizeof p->ds_ports);
    if ((st = p->ds->item_ports(p->ds, p->ds_ports, &n, &e2)) != BP_OK)
        return bp_error_set(err, st, "%s: item_ports: %s", label, e2.msg);
    if (n > BP_MAX_ITEM_FIELDS) return bp_error_set(err, BP_ERR_INTERNAL, "%s: reported %u item ports", label, n);
    p->n_ds_ports = n;
    return BP_OK;
}

bp_status bp_input_configure(bp_pipeline *p, config_setting_t *sec, bp_error *err) {
    char where[600];
    const char *type;
    bp_status st = bp_sec_string(p->cfg, sec, "input", "type", NULL, NULL, &type, err);
    if (st != BP_OK) return st;
    int builtin = strcmp(type, "audio") == 0 || strcmp(type, "tensors") == 0;
    const bp_component_info *ds = builtin ? NULL : bp_registry_find(p->reg, BP_KIND_DATASET, type);
    if (!builtin && !ds) {
        char choices[512];
        const char *installed = bp_registry_choices(p->reg, BP_KIND_DATASET, choices, sizeof choices);
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: input.type = \"%s\" is not one of the built-in types (audio, tensors) nor an "
                            "installed dataset plugin (%s)",
                            bp_config_where(p->cfg, config_setting_get_member(sec, "type"), where, sizeof where), type,
                            installed && installed[0] ? installed : "none installed");
    }
    const char *onerr;
    if ((st = bp_sec_string(p->cfg, sec, "input", "on_error", "stop", "stop|skip", &onerr, err)) != BP_OK) return st;
    p->on_error_skip = strcmp(onerr, "skip") == 0;
    if ((st = bp_sec_int(p->cfg, sec, "input", "batch_size", ds ? 8 : 1, 1, BP_BATCH_MAX, &p->batch_size, err)) !=
        BP_OK)
        return st;
    if (ds) {
        p->input_kind = BP_INPUT_DATASET;
        return dataset_configure(p, sec, ds, err);
    }
    static const char *const keys[] = {"type", "files", "list", "resample_quality", "on_error", "rate", "batch_size",
                                       NULL};
    if ((st = bp_sec_check_keys(p->cfg, sec, "input", keys, err)) != BP_OK) return st;
    p->input_kind = strcmp(type, "audio") == 0 ? BP_INPUT_AUDIO : BP_INPUT_TENSORS;
    const char *q;
    if ((st = bp_sec_string(p->cfg, sec, "input", "resample_quality", "best", "best|medium|fast", &q, err)) != BP_OK)
        return st;
    p->quality = strcmp(q, "best") == 0     ? BP_RESAMPLE_BEST
                 : strcmp(q, "medium") == 0 ? BP_RESAMPLE_MEDIUM
                                            : BP_RESAMPLE_FAST;
    const config_setting_t *rate = config_setting_get_member(sec, "rate");
    if (rate) {
        int t = config_setting_type(rate);
        double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(rate)
                   : (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) ? (double)config_setting_get_int64(rate) : -1;
        if (!(v > 0 && v <= 1e6))
            return bp_error_set(err, BP_ERR_INVALID, "%s: input.rate must be a positive sample rate in Hz",
                                bp_config_where(p->cfg, rate, where, sizeof where));
        p->tensors_rate = v;
    }
    const config_setting_t *files = config_setting_get_member(sec, "files");
    if (files) {
        bp_config_where(p->cfg, files, where, sizeof where);
        const char *base = bp_config_base_dir(p->cfg, files);
        if (config_setting_type(files) == CONFIG_TYPE_STRING) {
            st = add_entry(p, config_setting_get_string(files), base, where, err);
        } else if (config_setting_is_array(files) || config_setting_is_list(files)) {
            for (int i = 0; st == BP_OK && i < config_setting_length(files); i++) {
                const config_setting_t *e = config_setting_get_elem(files, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                    return bp_error_set(err, BP_ERR_INVALID, "%s: input.files[%d] must be a string (a path)", where, i);
                st = add_entry(p, config_setting_get_string(e), base, where, err);
            }
        } else {
            return bp_error_set(err, BP_ERR_INVALID, "%s: input.files must be a path or a list of paths", where);
        }
        if (st != BP_OK) return st;
    }
    const char *list;
    if ((st = bp_sec_string(p->cfg, sec, "input", "list", "", NULL, &list, err)) != BP_OK) return st;
    if (list[0]) {
        const config_setting_t *ls = config_setting_get_member(sec, "list");
        char *full = bp_path_join(bp_config_base_dir(p->cfg, ls), list);
        st = full ? read_list_file(p, full, bp_config_where(p->cfg, ls, where, sizeof where), err)
                  : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(full);
        if (st != BP_OK) return st;
    }
    if (p->n_files == 0)
        return bp_error_set(err, BP_ERR_INVALID, "%s: input: no input files (set input.files or input.list)",
                            bp_config_where(p->cfg, sec, where, sizeof where));
    /* Check every file now, before any compute. */
    for (size_t i = 0; i < p->n_files; i++) {
        bp_input_file *f = &p->files[i];
        if (p->input_kind == BP_INPUT_AUDIO) {
            bp_audio_info info;
            if ((st = bp_audio_probe(f->path, &info, err)) != BP_OK) return st;
            f->rate = info.file_rate;
            f->channels = info.channels;
        } else {
            bp_st_file *sf;
            if ((st = bp_st_open(f->path, &sf, err)) != BP_OK) return st;
            const char *r = bp_st_metadata(sf, "sample_rate");
            f->rate = r ? atof(r) : p->tensors_rate;
            bp_st_close(sf);
        }
    }
    return BP_OK;
}

size_t bp_input_count(const bp_pipeline *p) {
    return p->input_kind == BP_INPUT_DATASET ? (size_t)p->ds_count : p->n_files;
}

void bp_input_describe(const bp_pipeline *p, size_t i, char *buf, size_t cap) {
    if (p->input_kind == BP_INPUT_DATASET)
        snprintf(buf, cap, "%s item %zu", p->ds_comp->desc->name, i);
    else
        snprintf(buf, cap, "%s", p->files[i].path);
}

uint32_t bp_input_names(bp_pipeline *p, char names[][48], uint32_t cap) {
    uint32_t n = 0;
    if (p->input_kind == BP_INPUT_DATASET) {
        for (uint32_t i = 0; i < p->n_ds_ports && n < cap; i++) snprintf(names[n++], 48, "%s", p->ds_ports[i].name);
    } else if (p->input_kind == BP_INPUT_AUDIO) {
        if (cap) snprintf(names[n++], 48, "audio");
    } else {
        bp_tensor *ts[64];
        double rate;
        bp_error e2 = BP_ERROR_INIT;
        if (bp_input_read(p, 0, names, ts, cap < 64 ? cap : 64, &n, &rate, NULL, &e2) != BP_OK) return 0;
        for (uint32_t i = 0; i < n; i++) bp_tensor_free(ts[i]);
    }
    return n;
}

void bp_input_free(bp_pipeline *p) {
    if (p->ds && p->ds->destroy) p->ds->destroy(p->ds);
    p->ds = NULL;
    bp_paramset_free(p->ds_params);
    p->ds_params = NULL;
    for (size_t i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        free(p->files[i].item);
    }
    free(p->files);
    p->files = NULL;
    p->n_files = 0;
}

/* A dataset item id as a file name: [A-Za-z0-9._-] kept, the rest '_'. */
static void safe_name(const char *id, size_t index, char out[128]) {
    size_t k = 0;
    for (const char *c = id; *c && k < 127; c++)
        out[k++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                    *c == '_' || *c == '-') ? *c : '_';
    out[k] = '\0';
    if (k == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) snprintf(out, 128, "item_%zu", index);
}

static bp_status dataset_read(bp_pipeline *p, size_t i, char names[][48], bp_tensor **tensors, uint32_t cap,
                              uint32_t *n, double *rate, char item[128], bp_error *err) {
    bp_item it;
    memset(&it, 0, sizeof it);
    it.struct_size = sizeof it;
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = p->ds->get(p->ds, (int64_t)i, &it, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "input (%s): %s", p->ds_comp->desc->name, e2.msg);
    if (it.n_tensors > BP_MAX_ITEM_FIELDS || it.n_tensors > cap)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "input (%s): item has %u tensors", p->ds_comp->desc->name,
                            it.n_tensors);
    for (uint32_t k = 0; k < it.n_tensors && st == BP_OK; k++) {
        const bp_tensor *src = it.tensors[k];
        if (!src || !it.tensor_names[k] || src->backend) {
            st = bp_error_set(err, BP_ERR_INTERNAL, "input (%s): item tensor %u is missing or not in host memory",
                              p->ds_comp->desc->name, k);
            break;
        }
        bp_tensor *t;
        if ((st = bp_tensor_new(NULL, src->dtype, src->ndim, src->shape, &t, err)) != BP_OK) break;
        memcpy(t->data, src->data, bp_tensor_nbytes(src));
        snprintf(names[*n], 48, "%s", it.tensor_names[k]);
        tensors[(*n)++] = t;
    }
    if (st != BP_OK) {
        for (uint32_t k = 0; k < *n; k++) bp_tensor_free(tensors[k]);
        *n = 0;
        return st;
    }
    /* the rate of the tensor the first stage reads (audio by default) */
    const char *first = p->n_stages ? p->stages[0].in_name : "audio";
    *rate = 0;
    for (uint32_t k = 0; k < p->n_ds_ports; k++)
        if (strcmp(p->ds_ports[k].name, first[0] ? first : "audio") == 0) *rate = p->ds_ports[k].spec.rate;
    if (item) safe_name(it.id, i, item);
    return BP_OK;
}

bp_status bp_input_read(bp_pipeline *p, size_t i, char names[][48], bp_tensor **tensors, uint32_t cap, uint32_t *n,
                        double *rate, char item[128], bp_error *err) {
    *n = 0;
    if (p->input_kind == BP_INPUT_DATASET) return dataset_read(p, i, names, tensors, cap, n, rate, item, err);
    if (item) snprintf(item, 128, "%s", p->files[i].item);
    bp_input_file *f = &p->files[i];
    if (p->input_kind == BP_INPUT_AUDIO) {
        bp_tensor *t;
        bp_status st = bp_audio_read(f->path, p->target_rate, 0, p->quality, &t, NULL, err);
        if (st != BP_OK) return st;
        snprintf(names[0], 48, "audio");
        tensors[0] = t;
        *n = 1;
        *rate = p->target_rate > 0 ? p->target_rate : f->rate;
        return BP_OK;
    }
    bp_st_file *sf;
    bp_status st = bp_st_open(f->path, &sf, err);
    if (st != BP_OK) return st;
    uint32_t count = bp_st_count(sf);
    for (uint32_t k = 0; k < count && st == BP_OK; k++) {
        if (*n >= cap) {
            st = bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: more than %u tensors in one item", f->path, cap);
            break;
        }
        bp_tensor view, *t;
        if ((st = bp_st_get_index(sf, k, &view, err)) != BP_OK) break;
        if ((st = bp_tensor_new(NULL, view.dtype, view.ndim, view.shape, &t, err)) != BP_OK) break;
        memcpy(t->data, view.data, bp_tensor_nbytes(&view));
        snprintf(names[*n], 48, "%s", bp_st_name(sf, k));
        tensors[(*n)++] = t;
    }
    bp_st_close(sf);
    *rate = f->rate;
    if (st != BP_OK) {
        for (uint32_t k = 0; k < *n; k++) bp_tensor_free(tensors[k]);
        *n = 0;
    }
    return st;
}
