/* synth: the final files of a complete set, assembled from the per-scene
 * records in a fixed order (train before eval, single- before two-source
 * scenes, by index), so that one run, a resumed run and merged shards give
 * the same bytes. Question ids count up over that order. All files are
 * staged and renamed into place together: a failure leaves none of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synth_internal.h"

/* --------------------------------------------------------------- staging -- */

static char *staged_name(const char *dst) {
    char *dir = bp_dirname(dst);
    const char *base = strrchr(dst, '/') ? strrchr(dst, '/') + 1 : dst;
    char *tmp = dir ? bp_strdupf("%s/.%s.staged", dir, base) : NULL;
    free(dir);
    return tmp;
}

static bp_status push(synth_staged *s, char *tmp, const char *dst, FILE *f, bp_error *err) {
    char *d = bp_strdup(dst);
    if (!d || bp_grow((void **)&s->items, &s->cap, s->n + 1, sizeof *s->items) != 0) {
        free(d);
        if (f) fclose(f);
        unlink(tmp);
        free(tmp);
        synth_staged_abort(s);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", dst);
    }
    s->items[s->n].tmp = tmp;
    s->items[s->n].dst = d;
    s->items[s->n].f = f;
    s->n++;
    return BP_OK;
}

bp_status synth_staged_add(synth_staged *s, const char *dst, const void *data, size_t size, bp_error *err) {
    char *tmp = staged_name(dst);
    if (!tmp) {
        synth_staged_abort(s);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", dst);
    }
    bp_status st = bp_write_file_atomic(tmp, data, size, err);
    if (st != BP_OK) {
        free(tmp);
        synth_staged_abort(s);
        return st;
    }
    return push(s, tmp, dst, NULL, err);
}

bp_status synth_staged_open(synth_staged *s, const char *dst, FILE **f, bp_error *err) {
    *f = NULL;
    char *tmp = staged_name(dst);
    FILE *fp = tmp ? fopen(tmp, "w") : NULL;
    if (!fp) {
        bp_status st = tmp ? bp_error_set(err, BP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno))
                           : bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", dst);
        free(tmp);
        synth_staged_abort(s);
        return st;
    }
    bp_status st = push(s, tmp, dst, fp, err);
    if (st == BP_OK) *f = fp;
    return st;
}

bp_status synth_staged_commit(synth_staged *s, bp_error *err) {
    bp_status st = BP_OK;
    for (size_t i = 0; i < s->n && st == BP_OK; i++) {
        FILE *f = s->items[i].f;
        if (!f) continue;
        int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
        int e = errno;
        bad |= fclose(f) != 0;
        s->items[i].f = NULL;
        if (bad)
            st = bp_error_set(err, BP_ERR_IO, "%s: write failed: %s", s->items[i].dst, strerror(e ? e : errno));
    }
    if (st != BP_OK) {
        synth_staged_abort(s);
        return st;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (st == BP_OK && rename(s->items[i].tmp, s->items[i].dst) != 0)
            st = bp_error_set(err, BP_ERR_IO, "%s: cannot move the finished file into place: %s", s->items[i].dst,
                              strerror(errno));
        if (st != BP_OK) unlink(s->items[i].tmp);
    }
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].tmp);
        free(s->items[i].dst);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
    return st;
}

void synth_staged_abort(synth_staged *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].f) fclose(s->items[i].f);
        unlink(s->items[i].tmp);
        free(s->items[i].tmp);
        free(s->items[i].dst);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- entries -- */

static json_t *compact_source(const json_t *src) {
    static const char *const keep[] = {"class",   "labels",    "position",        "distance",  "distance_class",
                                       "azimuth", "elevation", "elevation_class", "direction", NULL};
    json_t *o = json_object();
    for (const char *const *k = keep; *k; k++) {
        json_t *v = json_object_get(src, *k);
        if (v) json_object_set(o, *k, v);
    }
    return o;
}

/* An entry of the official schema (first eight fields) plus batpipe's
 * ground truth. `prefix` makes audio_path relative to the file that holds it. */
static json_t *make_entry(const json_t *rec, const json_t *qa, int64_t qid, const char *prefix) {
    const json_t *srcs = json_object_get(rec, "sources");
    const json_t *s0 = json_array_get(srcs, 0), *s1 = json_array_get(srcs, 1);
    json_t *e = json_object();
    json_object_set(e, "audio_id", json_object_get(s0, "audio_id"));
    json_object_set(e, "reverb_id", json_object_get(s0, "reverb_id"));
    json_object_set_new(e, "audio_id2", s1 ? json_copy(json_object_get(s1, "audio_id")) : json_null());
    json_object_set_new(e, "reverb_id2", s1 ? json_copy(json_object_get(s1, "reverb_id")) : json_null());
    json_object_set_new(e, "question_id", json_integer(qid));
    json_object_set(e, "question_type", json_object_get(qa, "question_type"));
    json_object_set(e, "question", json_object_get(qa, "question"));
    json_object_set(e, "answer", json_object_get(qa, "answer"));
    json_object_set(e, "type", json_object_get(qa, "type"));
    json_object_set(e, "scene_id", json_object_get(rec, "scene_id"));
    char path[512];
    snprintf(path, sizeof path, "%s%s", prefix, json_string_value(json_object_get(rec, "audio_path")));
    json_object_set_new(e, "audio_path", json_string(path));
    json_object_set(e, "gain_db", json_object_get(rec, "gain_db"));
    json_object_set(e, "listener", json_object_get(rec, "listener"));
    json_t *cs = json_array();
    for (size_t k = 0; k < json_array_size(srcs); k++)
        json_array_append_new(cs, compact_source(json_array_get(srcs, k)));
    json_object_set_new(e, "sources", cs);
    json_object_set(e, "rt60", json_object_get(rec, "rt60"));
    json_object_set(e, "query", json_object_get(qa, "query"));
    return e;
}

/* Which entries a file holds. */
typedef struct file_spec {
    const char *rel;
    int32_t split;
    const char *types;  /* letters, e.g. "AB" */
    const char *qtypes; /* question_type prefixes separated by '|', or NULL for all */
    const char *prefix;
} file_spec;

static const file_spec file_specs[] = {
    {"train.json", SYNTH_TRAIN, "ABCDE", NULL, ""},
    {"eval.json", SYNTH_EVAL, "ABCDE", NULL, ""},
    {"stage1-clsdoa/train.json", SYNTH_TRAIN, "AB", NULL, "../"},
    {"stage1-clsdoa/eval-stage1-classification.json", SYNTH_EVAL, "A", NULL, "../"},
    {"stage1-clsdoa/eval-stage1-doa.json", SYNTH_EVAL, "B", NULL, "../"},
    {"stage2-single/train.json", SYNTH_TRAIN, "ABCD", NULL, "../"},
    {"stage2-single/eval-stage2-classification.json", SYNTH_EVAL, "C", NULL, "../"},
    {"stage2-single/eval-stage2-doa.json", SYNTH_EVAL, "D", NULL, "../"},
    {"stage3-mixup/train.json", SYNTH_TRAIN, "ABCDE", NULL, "../"},
    {"stage3-mixup/eval-stage3-direction.json", SYNTH_EVAL, "E", "MIXUP_BINARY_DIRECTION", "../"},
    {"stage3-mixup/eval-stage3-distance.json", SYNTH_EVAL, "E", "MIXUP_BINARY_DISTANCE", "../"},
    {"stage3-mixup/eval-stage3-nonbinary.json", SYNTH_EVAL, "E", "MIXUP_NONBINARY", "../"},
};

static int entry_wanted(const file_spec *f, const json_t *qa) {
    const char *t = json_string_value(json_object_get(qa, "type"));
    const char *q = json_string_value(json_object_get(qa, "question_type"));
    if (!t || !q || !strchr(f->types, t[0])) return 0;
    return !f->qtypes || strncmp(q, f->qtypes, strlen(f->qtypes)) == 0;
}

static int64_t scene_count(const json_t *manifest, int32_t split, int32_t kind) {
    const json_t *sc = json_object_get(json_object_get(manifest, "settings"), "scenes");
    return json_integer_value(json_object_get(json_object_get(sc, synth_split_name(split)), synth_kind_name(kind)));
}

static bp_status stage_classes(synth_staged *st, const char *dir, const json_t *manifest, bp_error *err) {
    bp_sbuf b = {0};
    bp_sbuf_printf(&b, "index,mid,display_name\n");
    const json_t *cl = json_object_get(manifest, "classes");
    for (size_t i = 0; i < json_array_size(cl); i++) {
        const json_t *c = json_array_get(cl, i);
        bp_sbuf_printf(&b, "%zu,%s,\"", i, json_string_value(json_object_get(c, "mid")));
        for (const char *p = json_string_value(json_object_get(c, "display_name")); p && *p; p++)
            bp_sbuf_printf(&b, *p == '"' ? "\"\"" : "%c", *p);
        bp_sbuf_printf(&b, "\"\n");
    }
    char *path = bp_strdupf("%s/class_labels_indices.csv", dir);
    bp_status s = (b.failed || !path) ? bp_error_set(err, BP_ERR_NOMEM, "out of memory")
                                      : synth_staged_add(st, path, b.s, b.len, err);
    if (s != BP_OK && (b.failed || !path)) synth_staged_abort(st);
    free(path);
    bp_sbuf_free(&b);
    return s;
}

/* Append one entry to a streamed {"data": [...]} file. */
static int put_entry(FILE *f, int64_t *count, const json_t *e) {
    char *text = json_dumps(e, SYNTH_JSON_FLAGS | JSON_COMPACT);
    if (!text) return -1;
    fprintf(f, "%s\n%s", *count ? "," : "", text);
    free(text);
    (*count)++;
    return 0;
}

#define N_SPECS (sizeof file_specs / sizeof file_specs[0])

bp_status synth_final_write(const char *dir, const json_t *manifest, bp_synth_report *rep, bp_error *err) {
    int64_t total = 0;
    for (int32_t s = 0; s < SYNTH_SPLITS; s++)
        for (int32_t k = 0; k < SYNTH_KINDS; k++) total += scene_count(manifest, s, k);
    /* every record must be there */
    int64_t missing = 0;
    char first_missing[64] = "";
    for (int32_t s = 0; s < SYNTH_SPLITS; s++)
        for (int32_t k = 0; k < SYNTH_KINDS; k++)
            for (int64_t i = 0; i < scene_count(manifest, s, k); i++) {
                char id[64], rel[160], path[1400];
                synth_scene_id(s, k, i, id, sizeof id);
                synth_record_rel(id, s, rel, sizeof rel);
                snprintf(path, sizeof path, "%s/%s", dir, rel);
                struct stat sb;
                if (stat(path, &sb) != 0) {
                    if (!missing) snprintf(first_missing, sizeof first_missing, "%s", id);
                    missing++;
                }
            }
    if (rep) rep->scenes_missing = missing;
    if (missing)
        return bp_error_set(err, BP_ERR_NOT_FOUND,
                            "%s: the set is incomplete: %lld of %lld scenes are missing (first: %s); render the missing "
                            "shards, or merge their directories, before the final files can be written",
                            dir, (long long)missing, (long long)total, first_missing);
    bp_status st = BP_OK;
    char *sub[4] = {bp_strdupf("%s/stage1-clsdoa", dir), bp_strdupf("%s/stage2-single", dir),
                    bp_strdupf("%s/stage3-mixup", dir), bp_strdupf("%s/summary", dir)};
    for (int i = 0; i < 4 && st == BP_OK; i++)
        st = sub[i] ? bp_mkdir_p(sub[i], err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 4; i++) free(sub[i]);
    if (st != BP_OK) return st;
    /* open every output: the QA files, then the scene lists of each split */
    synth_staged staged = {0};
    FILE *out[N_SPECS + SYNTH_SPLITS];
    int64_t counts[N_SPECS + SYNTH_SPLITS] = {0};
    for (size_t f = 0; f < N_SPECS + SYNTH_SPLITS && st == BP_OK; f++) {
        char *path = f < N_SPECS ? bp_strdupf("%s/%s", dir, file_specs[f].rel)
                                 : bp_strdupf("%s/scenes-%s.json", dir, synth_split_name((int32_t)(f - N_SPECS)));
        st = path ? synth_staged_open(&staged, path, &out[f], err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (st == BP_OK) fputs("{\"data\": [", out[f]);
        free(path);
    }
    synth_summary *sum = st == BP_OK ? synth_summary_new(manifest) : NULL;
    if (st == BP_OK && !sum) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    /* one pass over the records, in the fixed order */
    int64_t qid = 0;
    for (int32_t s = 0; s < SYNTH_SPLITS && st == BP_OK; s++)
        for (int32_t k = 0; k < SYNTH_KINDS && st == BP_OK; k++)
            for (int64_t i = 0; i < scene_count(manifest, s, k) && st == BP_OK; i++) {
                char id[64], rel[160], path[1400];
                synth_scene_id(s, k, i, id, sizeof id);
                synth_record_rel(id, s, rel, sizeof rel);
                snprintf(path, sizeof path, "%s/%s", dir, rel);
                json_t *rec;
                st = synth_json_read(path, &rec, err);
                if (st != BP_OK) break;
                const char *rid = json_string_value(json_object_get(rec, "scene_id"));
                const json_t *qs = json_object_get(rec, "qa");
                if (!rid || strcmp(rid, id) != 0 || !json_is_array(qs) ||
                    json_array_size(json_object_get(rec, "sources")) < 1) {
                    st = bp_error_set(err, BP_ERR_FORMAT, "%s: not the record of scene %s", path, id);
                    json_decref(rec);
                    break;
                }
                for (size_t q = 0; q < json_array_size(qs) && st == BP_OK; q++, qid++)
                    for (size_t f = 0; f < N_SPECS && st == BP_OK; f++) {
                        if (file_specs[f].split != s || !entry_wanted(&file_specs[f], json_array_get(qs, q))) continue;
                        json_t *e = make_entry(rec, json_array_get(qs, q), qid, file_specs[f].prefix);
                        if (!e || put_entry(out[f], &counts[f], e) != 0)
                            st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                        json_decref(e);
                    }
                synth_summary_add(sum, rec);
                json_t *c = json_copy(rec);
                json_object_del(c, "qa");
                if (st == BP_OK && (!c || put_entry(out[N_SPECS + s], &counts[N_SPECS + s], c) != 0))
                    st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                json_decref(c);
                json_decref(rec);
            }
    for (size_t f = 0; f < N_SPECS + SYNTH_SPLITS && st == BP_OK; f++) fputs("\n]}\n", out[f]);
    if (st == BP_OK) st = stage_classes(&staged, dir, manifest, err);
    if (st == BP_OK) st = synth_summary_stage(sum, &staged, dir, err);
    if (st == BP_OK)
        st = synth_staged_commit(&staged, err);
    else
        synth_staged_abort(&staged);
    synth_summary_free(sum);
    if (st == BP_OK && rep) {
        rep->qa_pairs = counts[0] + counts[1];
        rep->finalized = 1;
    }
    return st;
}
