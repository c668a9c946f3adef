/* synth: the per-scene record (scenes/<split>/<scene>.json: everything about
 * the scene and its questions), JSON file I/O, and the manifest
 * (synth.json) with its fingerprint. Numbers are rounded to sensible grids
 * (positions in mm, times in 0.1 ms) and printed with 15 significant digits,
 * so a value read back is the same double that was written. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/version.h"
#include "synth_internal.h"

static json_t *jreal(double v, double q) { return json_real(synth_quantize(v, q)); }

static json_t *jvec(const double *v, uint32_t n, double q) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, jreal(v[i], q));
    return a;
}

void synth_audio_rel(const char *scene_id, int32_t split, char *buf, size_t cap) {
    snprintf(buf, cap, "audio/%s/%s.flac", synth_split_name(split), scene_id);
}

void synth_record_rel(const char *scene_id, int32_t split, char *buf, size_t cap) {
    snprintf(buf, cap, "scenes/%s/%s.json", synth_split_name(split), scene_id);
}

static json_t *room_json(const synth_ctx *x, const synth_room *r) {
    static const char *const walls[6] = {"x-", "x+", "floor", "ceiling", "z-", "z+"};
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(x->cfg->rooms[r->type].name));
    json_object_set_new(j, "size", jvec(r->size, 3, 0.001));
    json_object_set_new(j, "volume", jreal(r->volume, 0.001));
    json_object_set_new(j, "surface", jreal(r->surface, 0.001));
    json_t *m = json_object();
    for (int w = 0; w < 6; w++) json_object_set_new(m, walls[w], json_string(x->cfg->materials[r->material[w]].name));
    json_object_set_new(j, "materials", m);
    json_object_set_new(j, "bands_hz", jvec(synth_band_hz, SYNTH_BANDS, 1));
    json_t *abs = json_object();
    for (int w = 0; w < 6; w++) json_object_set_new(abs, walls[w], jvec(r->alpha[w], SYNTH_BANDS, 1e-6));
    json_object_set_new(j, "absorption", abs);
    json_object_set_new(j, "furniture_absorption", jvec(r->furniture, SYNTH_BANDS, 1e-6));
    json_object_set_new(j, "target_t60", jreal(r->target_t60, 1e-4));
    json_object_set_new(j, "eyring_t60", jvec(r->eyring_t60, SYNTH_BANDS, 1e-4));
    json_object_set_new(j, "sabine_t60", jvec(r->sabine_t60, SYNTH_BANDS, 1e-4));
    return j;
}

static json_t *source_json(const synth_ctx *x, const synth_scene *sc, uint32_t k) {
    const synth_src *s = &sc->src[k];
    const synth_row *row = &x->corpus->rows[s->row];
    json_t *j = json_object();
    json_object_set_new(j, "class", json_string(x->corpus->classes[s->class_id]));
    json_t *labels = json_array(), *mids = json_array();
    for (uint32_t i = 0; i < row->n_labels; i++)
        if (row->class_ids[i] >= 0) {
            json_array_append_new(labels, json_string(row->labels[i]));
            json_array_append_new(mids, json_string(row->mids[i]));
        }
    json_object_set_new(j, "labels", labels);
    json_object_set_new(j, "mids", mids);
    char answer[256];
    synth_row_answer(x->corpus, row, answer, sizeof answer);
    json_object_set_new(j, "classes_answer", json_string(answer));
    json_object_set_new(j, "file", json_string(row->file));
    json_object_set_new(j, "audio_id", json_string(row->stem));
    char rid[128];
    snprintf(rid, sizeof rid, "%s/%s_%u.npy", synth_split_name(sc->split), sc->id, k);
    json_object_set_new(j, "reverb_id", json_string(rid));
    json_object_set_new(j, "recording", json_string(row->recording));
    json_object_set_new(j, "package", json_string(row->package));
    json_object_set_new(j, "license", json_string(row->license));
    json_object_set_new(j, "position", jvec(s->pos, 3, 0.001));
    json_object_set_new(j, "distance", jreal(s->label.distance, 1e-4));
    json_object_set_new(j, "distance_class", json_integer(s->label.distance_class));
    json_object_set_new(j, "azimuth", json_integer(s->label.azimuth));
    json_object_set_new(j, "elevation", json_integer(s->label.elevation));
    json_object_set_new(j, "elevation_class", json_integer(s->label.elevation_class));
    json_object_set_new(j, "azimuth_deg", jreal(s->label.azimuth_deg, 1e-3));
    json_object_set_new(j, "elevation_deg", jreal(s->label.elevation_deg, 1e-3));
    char dir[48], loc[64];
    json_object_set_new(j, "direction", json_string(bp_spatial_direction_text(&s->label, dir, sizeof dir)));
    json_object_set_new(j, "location_answer", json_string(bp_spatial_answer_text(&s->label, loc, sizeof loc)));
    json_object_set_new(j, "below_hrtf", json_boolean(s->below_hrtf));
    json_object_set_new(j, "placement", json_string(synth_place_name(s->placement)));
    json_object_set_new(j, "normalisation_gain_db", jreal(s->norm_gain_db, 1e-4));
    json_object_set_new(j, "clip_seconds", jreal(s->clip_s, 1e-4));
    json_object_set_new(j, "start_seconds", jreal(s->start_s, 1e-4));
    json_object_set_new(j, "window_seconds", jreal(s->window_s, 1e-4));
    json_object_set_new(j, "copies", json_integer(s->copies));
    if (s->replaced) json_object_set(j, "replaced", s->replaced);
    json_t *st = json_object();
    for (uint32_t i = 0; i < s->n_stats; i++)
        if (isfinite(s->stat_values[i])) json_object_set_new(st, s->stat_names[i], jreal(s->stat_values[i], 1e-6));
    json_object_set_new(j, "simulator", st);
    return j;
}

json_t *synth_record_build(const synth_ctx *x, const synth_scene *sc, const synth_qa *qa, uint32_t n_qa) {
    json_t *j = json_object();
    if (!j) return NULL;
    char buf[256];
    json_object_set_new(j, "scene_id", json_string(sc->id));
    json_object_set_new(j, "split", json_string(synth_split_name(sc->split)));
    json_object_set_new(j, "kind", json_string(synth_kind_name(sc->kind)));
    json_object_set_new(j, "index", json_integer(sc->index));
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)sc->seed);
    json_object_set_new(j, "seed", json_string(buf));
    synth_audio_rel(sc->id, sc->split, buf, sizeof buf);
    json_object_set_new(j, "audio_path", json_string(buf));
    json_object_set_new(j, "gain_db", json_real(sc->gain_db));
    json_object_set_new(j, "peak_dbfs", jreal(sc->peak > 0 ? 20 * log10(sc->peak) : -200.0, 1e-3));
    json_object_set_new(j, "scaled", json_boolean(sc->scaled));
    json_object_set_new(j, "rt60", jreal(sc->rt60, 1e-4));
    json_object_set_new(j, "room", room_json(x, &sc->room));
    json_object_set_new(j, "listener", jvec(sc->listener, 3, 0.001));
    json_t *srcs = json_array();
    for (uint32_t k = 0; k < sc->n_src; k++) json_array_append_new(srcs, source_json(x, sc, k));
    json_object_set_new(j, "sources", srcs);
    json_t *qs = json_array();
    for (uint32_t i = 0; i < n_qa; i++) {
        json_t *q = json_object();
        json_object_set_new(q, "type", json_string(synth_qa_type_letter(qa[i].type)));
        json_object_set_new(q, "question_type", json_string(qa[i].question_type));
        json_object_set_new(q, "question", json_string(qa[i].question));
        json_object_set_new(q, "answer", json_string(qa[i].answer));
        json_object_set(q, "query", qa[i].query);
        json_array_append_new(qs, q);
    }
    json_object_set_new(j, "qa", qs);
    return j;
}

/* ------------------------------------------------------------------ I/O -- */

static char *dump(const json_t *j, int data_lines) {
    if (!data_lines) {
        char *s = json_dumps(j, SYNTH_JSON_FLAGS | JSON_INDENT(1));
        if (!s) return NULL;
        char *t = bp_strdupf("%s\n", s);
        free(s);
        return t;
    }
    /* {"data": [ one compact entry per line ]} */
    const json_t *data = json_object_get(j, "data");
    bp_sbuf b = {0};
    bp_sbuf_printf(&b, "{\"data\": [");
    for (size_t i = 0; i < json_array_size(data); i++) {
        char *e = json_dumps(json_array_get(data, i), SYNTH_JSON_FLAGS | JSON_COMPACT);
        if (!e) {
            bp_sbuf_free(&b);
            return NULL;
        }
        bp_sbuf_printf(&b, "%s\n%s", i ? "," : "", e);
        free(e);
    }
    bp_sbuf_printf(&b, "\n]}\n");
    if (b.failed) {
        bp_sbuf_free(&b);
        return NULL;
    }
    return b.s;
}

char *synth_json_text(const json_t *j, int data_lines) { return dump(j, data_lines); }

bp_status synth_json_write(const char *path, const json_t *j, int data_lines, bp_error *err) {
    char *s = dump(j, data_lines);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory while serialising JSON", path);
    bp_status st = bp_write_file_atomic(path, s, strlen(s), err);
    free(s);
    return st;
}

bp_status synth_json_read(const char *path, json_t **out, bp_error *err) {
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (*out) return BP_OK;
    if (je.line <= 0 && je.position == 0)
        return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: %s", path, je.text);
    return bp_error_set(err, BP_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
}

/* ------------------------------------------------------------- manifest -- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

json_t *synth_manifest_build(const synth_cfg *cfg, const synth_corpus *corpus, const char *sim_desc,
                             json_t *sim_params) {
    json_t *m = json_object();
    json_object_set_new(m, "format", json_string("batpipe-synth/1"));
    json_object_set_new(m, "batpipe_version", json_string(BP_VERSION_STRING));
    json_t *key = json_object(); /* what the fingerprint covers */
    json_object_set_new(key, "generator", json_integer(SYNTH_GENERATOR_VERSION));
    json_object_set_new(key, "settings", synth_config_to_json(cfg));
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)corpus->hash);
    json_t *co = json_object();
    json_object_set_new(co, "hash", json_string(hash));
    json_object_set_new(co, "rows", json_integer(corpus->n_rows));
    json_object_set_new(co, "skipped", json_integer(corpus->n_skipped));
    json_object_set_new(key, "corpus", co);
    json_t *classes = json_array();
    for (uint32_t i = 0; i < corpus->n_classes; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "index", json_integer(i));
        json_object_set_new(c, "mid", json_string(corpus->class_mids[i]));
        json_object_set_new(c, "display_name", json_string(corpus->classes[i]));
        json_array_append_new(classes, c);
    }
    json_object_set_new(key, "classes", classes);
    json_t *sim = json_object();
    json_object_set_new(sim, "type", json_string(cfg->sim_type));
    json_object_set_new(sim, "version", json_string(sim_desc ? sim_desc : ""));
    json_object_set_new(sim, "params", sim_params ? sim_params : json_object());
    json_object_set_new(key, "simulator", sim);
    char *text = json_dumps(key, SYNTH_JSON_FLAGS | JSON_COMPACT);
    char fp[32] = "0";
    if (text) snprintf(fp, sizeof fp, "%016llx", (unsigned long long)fnv1a(text));
    free(text);
    json_object_update(m, key);
    json_decref(key);
    json_object_set_new(m, "fingerprint", json_string(fp));
    return m;
}

const char *synth_manifest_fingerprint(const json_t *manifest) {
    return json_string_value(json_object_get(manifest, "fingerprint"));
}
