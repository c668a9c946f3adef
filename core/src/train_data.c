/* train: the data loader. Items come from a dataset plugin, clips go through
 * the frontend one by one (on the fly, host memory) and are stacked into a
 * batch. The example stream is the concatenation of per-epoch permutations
 * from (seed, epoch), so example k of the run is the same item whatever was
 * interrupted before it. Mixup (per example, from (seed, k)) mixes the
 * waveforms of two rendered clips and their class targets; see docs/train.md
 * for what happens to the spatial targets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* ---------------------------------------------------------- frontend -- */

bp_status train_frontend_create(train_frontend *f, bp_registry *reg, const train_comp *fe, bp_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->label, sizeof f->label, "%s", fe->label);
    void *inst = NULL;
    bp_status st = bp_registry_create(reg, fe->comp, bp_paramset_params(fe->params), NULL, &inst, err);
    if (st != BP_OK) return st;
    f->st = inst;
    if (f->st->struct_size < offsetof(bp_stage, destroy) + sizeof(void *) || !f->st->input_spec || !f->st->prepare ||
        !f->st->process || !f->st->destroy)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", f->label, fe->comp->plugin->path);
    f->prepared = bp_spec_any();
    return BP_OK;
}

void train_frontend_free(train_frontend *f) {
    if (!f) return;
    for (uint32_t i = 0; i < BP_MAX_OUTPUTS; i++) bp_tensor_free(f->outputs[i]);
    if (f->st && f->st->destroy) f->st->destroy(f->st);
    memset(f, 0, sizeof *f);
}

static int same_spec(const bp_spec *a, const bp_spec *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->rate != b->rate) return 0;
    for (int32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

bp_status train_frontend_prepare(train_frontend *f, const bp_spec *audio, bp_error *err) {
    if (f->outputs[0] && same_spec(&f->prepared, audio)) return BP_OK;
    bp_spec want = bp_spec_any();
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = f->st->input_spec(f->st, &want, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: input_spec: %s", f->label, e2.msg);
    char why[256], hs[256], ws[256];
    if (!bp_spec_satisfies(audio, &want, why, sizeof why))
        return bp_error_set(err, BP_ERR_SPEC,
                            "%s cannot take the dataset's audio: %s (the dataset gives %s; %s needs %s)", f->label, why,
                            bp_spec_describe(audio, hs, sizeof hs), f->label, bp_spec_describe(&want, ws, sizeof ws));
    uint32_t n = BP_MAX_OUTPUTS;
    memset(f->ports, 0, sizeof f->ports);
    if ((st = f->st->prepare(f->st, audio, f->ports, &n, &e2)) != BP_OK)
        return bp_error_set(err, st, "%s: prepare: %s", f->label, e2.msg);
    if (n < 1 || n > BP_MAX_OUTPUTS)
        return bp_error_set(err, BP_ERR_INTERNAL, "%s: prepare gave %u outputs", f->label, n);
    f->n_ports = n;
    const bp_spec *o = &f->ports[0].spec;
    if (o->ndim != 3 || o->dtype != BP_DTYPE_F32 || o->shape[0] < 1 || o->shape[1] < 1 || o->shape[2] < 1) {
        char d[256];
        return bp_error_set(err, BP_ERR_SPEC, "%s: features are %s; the trainer needs F32[channels, frames, bins]",
                            f->label, bp_spec_describe(o, d, sizeof d));
    }
    for (uint32_t i = 0; i < BP_MAX_OUTPUTS; i++) {
        bp_tensor_free(f->outputs[i]);
        f->outputs[i] = NULL;
    }
    if ((st = bp_tensor_new(NULL, BP_DTYPE_F32, 3, o->shape, &f->outputs[0], err)) != BP_OK) return st;
    for (int d = 0; d < 3; d++) f->feat_shape[d] = o->shape[d];
    f->prepared = *audio;
    return BP_OK;
}

/* features of one clip into dst (feat_shape elements) */
static bp_status frontend_run(train_frontend *f, const bp_tensor *audio, double rate, float *dst, const char *item,
                              bp_error *err) {
    bp_spec s = bp_spec_of(audio, rate);
    int64_t want[3] = {f->feat_shape[0], f->feat_shape[1], f->feat_shape[2]};
    bp_status st = train_frontend_prepare(f, &s, err);
    if (st != BP_OK) return st;
    if (f->feat_shape[0] != want[0] || f->feat_shape[1] != want[1] || f->feat_shape[2] != want[2])
        return bp_error_set(err, BP_ERR_SPEC,
                            "item %s: its clip gives features [%lld, %lld, %lld], the others [%lld, %lld, %lld] "
                            "(clips of one batch must have the same length: set the dataset's clip length)",
                            item, (long long)f->feat_shape[0], (long long)f->feat_shape[1], (long long)f->feat_shape[2],
                            (long long)want[0], (long long)want[1], (long long)want[2]);
    bp_error e2 = BP_ERROR_INIT;
    if ((st = f->st->process(f->st, audio, f->outputs, f->n_ports, &e2)) != BP_OK)
        return bp_error_set(err, st, "item %s: %s: %s", item, f->label, e2.msg);
    memcpy(dst, f->outputs[0]->data, bp_tensor_nbytes(f->outputs[0]));
    return BP_OK;
}

/* ------------------------------------------------------------ dataset -- */

bp_status train_data_open(train_data *d, bp_registry *reg, const train_comp *ds, train_frontend *fe, bp_error *err) {
    memset(d, 0, sizeof *d);
    d->fe = fe;
    d->perm_epoch = -1;
    snprintf(d->label, sizeof d->label, "%s", ds->label);
    void *inst = NULL;
    bp_status st = bp_registry_create(reg, ds->comp, bp_paramset_params(ds->params), NULL, &inst, err);
    if (st != BP_OK) return st;
    d->ds = inst;
    if (d->ds->struct_size < offsetof(bp_dataset, destroy) + sizeof(void *) || !d->ds->count || !d->ds->item_ports ||
        !d->ds->get || !d->ds->destroy)
        return bp_error_set(err, BP_ERR_ABI, "%s (%s): instance table is incomplete", d->label, ds->comp->plugin->path);
    d->n_items = d->ds->count(d->ds);
    if (d->n_items <= 0) return bp_error_set(err, BP_ERR_INVALID, "%s: the dataset has no items", d->label);
    bp_port *ports = d->item_ports;
    uint32_t n = BP_MAX_ITEM_FIELDS;
    bp_error e2 = BP_ERROR_INIT;
    if ((st = d->ds->item_ports(d->ds, ports, &n, &e2)) != BP_OK)
        return bp_error_set(err, st, "%s: item_ports: %s", d->label, e2.msg);
    d->n_item_ports = n < BP_MAX_ITEM_FIELDS ? n : BP_MAX_ITEM_FIELDS;
    int have_audio = 0;
    for (uint32_t i = 0; i < n && i < BP_MAX_ITEM_FIELDS; i++) {
        if (strcmp(ports[i].name, "audio") == 0) {
            d->audio_spec = ports[i].spec;
            have_audio = 1;
        } else if (strcmp(ports[i].name, "classes") == 0 && ports[i].spec.ndim == 1) {
            d->n_classes = ports[i].spec.shape[0];
        }
    }
    if (!have_audio) return bp_error_set(err, BP_ERR_SPEC, "%s: items have no 'audio' tensor", d->label);
    d->perm = malloc((size_t)d->n_items * sizeof *d->perm);
    if (!d->perm) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    return BP_OK;
}

void train_data_close(train_data *d) {
    if (!d) return;
    if (d->ds && d->ds->destroy) d->ds->destroy(d->ds);
    free(d->perm);
    free(d->mix_a);
    memset(d, 0, sizeof *d);
}

static const bp_tensor *item_tensor(const bp_item *it, const char *name) {
    for (uint32_t i = 0; i < it->n_tensors && i < BP_MAX_ITEM_FIELDS; i++)
        if (it->tensor_names[i] && strcmp(it->tensor_names[i], name) == 0) return it->tensors[i];
    return NULL;
}

static bp_status get_item(train_data *d, int64_t index, bp_item *it, const bp_tensor **audio, bp_error *err) {
    memset(it, 0, sizeof *it);
    it->struct_size = sizeof *it;
    bp_error e2 = BP_ERROR_INIT;
    bp_status st = d->ds->get(d->ds, index, it, &e2);
    if (st != BP_OK) return bp_error_set(err, st, "%s: item %lld: %s", d->label, (long long)index, e2.msg);
    *audio = item_tensor(it, "audio");
    if (!*audio || (*audio)->dtype != BP_DTYPE_F32 || (*audio)->ndim != 2 || (*audio)->backend)
        return bp_error_set(err, BP_ERR_SPEC, "%s: item %s has no host F32 [channels, samples] 'audio' tensor",
                            d->label, it->id);
    return BP_OK;
}

bp_status train_data_feature_shape(train_data *d, int64_t shape[3], bp_error *err) {
    bp_spec s = d->audio_spec;
    int concrete = s.ndim == 2 && s.shape[0] > 0 && s.shape[1] > 0;
    if (!concrete) { /* learn the clip shape from the first item */
        bp_item it;
        const bp_tensor *audio;
        bp_status st = get_item(d, 0, &it, &audio, err);
        if (st != BP_OK) return st;
        s = bp_spec_of(audio, d->audio_spec.rate);
    }
    bp_status st = train_frontend_prepare(d->fe, &s, err);
    if (st != BP_OK) return st;
    memcpy(shape, d->fe->feat_shape, 3 * sizeof *shape);
    return BP_OK;
}

bp_status train_data_clip(train_data *d, int64_t index, bp_item *item, const bp_tensor **audio, bp_error *err) {
    return get_item(d, index, item, audio, err);
}

/* Labels of one item: classes (valid flag) and source 0's spatial classes;
 * an item with a second source has no single direction: −1. */
typedef struct item_labels {
    int32_t class_valid;
    int32_t spatial[TRAIN_HEAD_COUNT];
} item_labels;

static void read_labels(const train_data *d, const bp_item *it, float *classes, item_labels *lab) {
    memset(lab, 0, sizeof *lab);
    const bp_tensor *c = item_tensor(it, "classes");
    if (d->n_classes > 0 && c && c->dtype == BP_DTYPE_F32 && bp_tensor_numel(c) == d->n_classes && !c->backend) {
        const float *v = c->data;
        lab->class_valid = v[0] >= 0;
        if (lab->class_valid) memcpy(classes, v, (size_t)d->n_classes * sizeof *classes);
    }
    static const char *const names[TRAIN_HEAD_COUNT] = {NULL, "distance", "azimuth", "elevation"};
    int second = 0;
    for (int h = 1; h < TRAIN_HEAD_COUNT; h++) {
        lab->spatial[h] = -1;
        const bp_tensor *t = item_tensor(it, names[h]);
        if (!t || t->dtype != BP_DTYPE_I32 || bp_tensor_numel(t) < 1 || t->backend) continue;
        const int32_t *v = t->data;
        lab->spatial[h] = v[0];
        if (bp_tensor_numel(t) >= 2 && v[1] >= 0) second = 1;
    }
    if (second)
        for (int h = 1; h < TRAIN_HEAD_COUNT; h++) lab->spatial[h] = -1;
}

static int64_t stream_index(train_data *d, const train_batch_req *req, int64_t pos) {
    if (!req->shuffle) return pos;
    int64_t epoch = pos / d->n_items, k = pos % d->n_items;
    if (epoch != d->perm_epoch) {
        train_permutation(req->seed, epoch, d->perm, d->n_items);
        d->perm_epoch = epoch;
    }
    return d->perm[k];
}

bp_status train_data_batch(train_data *d, const train_batch_req *req, float *features, train_targets *tg,
                           bp_error *err) {
    int64_t feat = d->fe->feat_shape[0] * d->fe->feat_shape[1] * d->fe->feat_shape[2];
    int64_t nc = d->n_classes;
    float *cls_b = nc > 0 ? malloc((size_t)nc * sizeof *cls_b) : NULL;
    if (nc > 0 && !cls_b) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    tg->n_mixed = 0;
    bp_status st = BP_OK;
    for (int64_t b = 0; b < req->batch && st == BP_OK; b++) {
        int64_t pos = req->first + b;
        if (!req->shuffle && pos >= d->n_items) {
            st = bp_error_set(err, BP_ERR_INTERNAL, "%s: example %lld past the end", d->label, (long long)pos);
            break;
        }
        int64_t idx = stream_index(d, req, pos);
        bp_item it;
        const bp_tensor *audio;
        if ((st = get_item(d, idx, &it, &audio, err)) != BP_OK) break;
        for (uint32_t k = 0; k < req->n_collect && st == BP_OK; k++) {
            const bp_tensor *src = item_tensor(&it, req->collect[k]);
            bp_tensor *dst = req->collect_out[k];
            size_t row = bp_tensor_nbytes(dst) / (size_t)req->batch;
            if (!src || src->backend || src->dtype != dst->dtype || bp_tensor_nbytes(src) != row)
                st = bp_error_set(err, BP_ERR_SPEC, "%s: item %s: tensor '%s' is missing or not %s with %zu bytes",
                                  d->label, it.id, req->collect[k], bp_dtype_name(dst->dtype), row);
            else
                memcpy((char *)dst->data + (size_t)b * row, src->data, row);
        }
        if (st != BP_OK) break;
        float *cls = nc > 0 ? tg->classes + b * nc : NULL;
        item_labels lab;
        read_labels(d, &it, cls, &lab);
        double rate = d->audio_spec.rate;
        int mixed = 0;
        if (req->shuffle && req->mixup_prob > 0) {
            train_rng r;
            train_rng_init(&r, req->seed, TRAIN_RNG_MIXUP, (uint64_t)pos, 0);
            if (train_rng_uniform(&r) < req->mixup_prob) {
                int64_t j = train_rng_below(&r, d->n_items);
                double lam = train_rng_beta(&r, req->mixup_alpha, req->mixup_alpha);
                size_t ns = (size_t)bp_tensor_numel(audio);
                if (ns > d->mix_cap) {
                    float *p = realloc(d->mix_a, ns * sizeof *p);
                    if (!p) {
                        st = bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
                        break;
                    }
                    d->mix_a = p;
                    d->mix_cap = ns;
                }
                memcpy(d->mix_a, audio->data, ns * sizeof(float));
                int64_t shape[2] = {audio->shape[0], audio->shape[1]};
                char id_a[128];
                snprintf(id_a, sizeof id_a, "%s", it.id);
                bp_item it2;
                const bp_tensor *audio2;
                if ((st = get_item(d, j, &it2, &audio2, err)) != BP_OK) break;
                if (audio2->shape[0] != shape[0] || audio2->shape[1] != shape[1]) {
                    st = bp_error_set(err, BP_ERR_SPEC, "%s: mixup: items %s and %s have clips of different shapes",
                                      d->label, id_a, it2.id);
                    break;
                }
                item_labels lab2;
                read_labels(d, &it2, cls_b, &lab2);
                const float *a2 = audio2->data;
                for (size_t s = 0; s < ns; s++)
                    d->mix_a[s] = (float)(lam * (double)d->mix_a[s] + (1.0 - lam) * (double)a2[s]);
                if (lab.class_valid && lab2.class_valid)
                    for (int64_t k = 0; k < nc; k++)
                        cls[k] = (float)(lam * (double)cls[k] + (1.0 - lam) * (double)cls_b[k]);
                else
                    lab.class_valid = 0;
                for (int h = 1; h < TRAIN_HEAD_COUNT; h++) {
                    if (req->mixup_spatial == TRAIN_MIXUP_SPATIAL_DOMINANT)
                        lab.spatial[h] = lam >= 0.5 ? lab.spatial[h] : lab2.spatial[h];
                    else
                        lab.spatial[h] = -1;
                }
                bp_tensor mixed_t = bp_tensor_view(BP_DTYPE_F32, 2, shape, d->mix_a);
                char id[300];
                snprintf(id, sizeof id, "%s+%s", id_a, it2.id);
                st = frontend_run(d->fe, &mixed_t, rate, features + b * feat, id, err);
                mixed = 1;
                tg->n_mixed++;
            }
        }
        if (st == BP_OK && !mixed) st = frontend_run(d->fe, audio, rate, features + b * feat, it.id, err);
        tg->class_valid[b] = (uint8_t)lab.class_valid;
        for (int h = 1; h < TRAIN_HEAD_COUNT; h++) tg->label[h][b] = lab.spatial[h];
    }
    free(cls_b);
    return st;
}
