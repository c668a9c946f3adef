/* synth: the generator configuration (docs/synth.md): every key checked
 * (unknown keys with a suggestion, types, ranges, choices), defaults filled
 * in, paths resolved against the file that set them. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "synth_internal.h"

const double synth_band_hz[SYNTH_BANDS] = {125, 250, 500, 1000, 2000, 4000, 8000};

/* ------------------------------------------------------------- helpers -- */

typedef struct cx {
    bp_config *cfg;
    bp_error *err;
} cx;

static BP_PRINTF(4, 5) bp_status fail_at(cx *x, const config_setting_t *s, const char *path, const char *fmt, ...) {
    char where[600], msg[BP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s)
        bp_config_where(x->cfg, s, where, sizeof where);
    else
        snprintf(where, sizeof where, "%s", bp_config_label(x->cfg));
    return bp_error_set(x->err, BP_ERR_INVALID, "%s: %s: %s", where, path, msg);
}

static void join_path(char *buf, size_t cap, const char *gpath, const char *key) {
    if (gpath && *gpath)
        snprintf(buf, cap, "%s.%s", gpath, key);
    else
        snprintf(buf, cap, "%s", key);
}

static bp_status check_keys(cx *x, const config_setting_t *group, const char *gpath, const char *const *allowed) {
    if (!group) return BP_OK;
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(m);
        if (!name) continue;
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, name) == 0) ok = 1;
        if (ok) continue;
        const char *best = NULL;
        int best_d = 3;
        char list[600] = "";
        size_t len = 0;
        for (const char *const *a = allowed; *a; a++) {
            int e = bp_edit_distance(name, *a);
            if (e < best_d) best_d = e, best = *a;
            len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s",
                                    a == allowed ? "" : ", ", *a);
        }
        char path[200];
        join_path(path, sizeof path, gpath, name);
        if (best) return fail_at(x, m, path, "unknown key '%s' (did you mean '%s'?); valid: %s", name, best, list);
        return fail_at(x, m, path, "unknown key '%s'; valid: %s", name, list);
    }
    return BP_OK;
}

static int number_of(const config_setting_t *s, double *out) {
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: *out = (double)config_setting_get_int(s); return 1;
    case CONFIG_TYPE_INT64: *out = (double)config_setting_get_int64(s); return 1;
    case CONFIG_TYPE_FLOAT: *out = config_setting_get_float(s); return 1;
    default: return 0;
    }
}

static int is_group(const config_setting_t *s) { return s && config_setting_type(s) == CONFIG_TYPE_GROUP; }
static int is_seq(const config_setting_t *s) {
    return s && (config_setting_type(s) == CONFIG_TYPE_ARRAY || config_setting_type(s) == CONFIG_TYPE_LIST);
}

static bp_status get_group(cx *x, const config_setting_t *parent, const char *gpath, const char *key,
                           const config_setting_t **out) {
    *out = parent ? config_setting_get_member(parent, key) : NULL;
    if (*out && !is_group(*out)) {
        char path[200];
        join_path(path, sizeof path, gpath, key);
        return fail_at(x, *out, path, "expected a group { ... }, got %s",
                       bp_config_type_phrase(config_setting_type(*out)));
    }
    return BP_OK;
}

static bp_status get_float(cx *x, const config_setting_t *g, const char *gpath, const char *key, double def, double lo,
                           double hi, double *out) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    if (!s) {
        *out = def;
        return BP_OK;
    }
    double v;
    if (!number_of(s, &v))
        return fail_at(x, s, path, "expected a number, got %s", bp_config_type_phrase(config_setting_type(s)));
    if (!isfinite(v) || v < lo || v > hi) return fail_at(x, s, path, "%g is out of range [%g, %g]", v, lo, hi);
    *out = v;
    return BP_OK;
}

static bp_status get_int(cx *x, const config_setting_t *g, const char *gpath, const char *key, int64_t def, int64_t lo,
                         int64_t hi, int64_t *out) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    if (!s) {
        *out = def;
        return BP_OK;
    }
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail_at(x, s, path, "expected an integer, got %s", bp_config_type_phrase(t));
    int64_t v = config_setting_get_int64(s);
    if (t == CONFIG_TYPE_INT) v = config_setting_get_int(s);
    if (v < lo || v > hi)
        return fail_at(x, s, path, "%lld is out of range [%lld, %lld]", (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return BP_OK;
}

static bp_status get_bool(cx *x, const config_setting_t *g, const char *gpath, const char *key, int def, int32_t *out) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    if (!s) {
        *out = def;
        return BP_OK;
    }
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail_at(x, s, path, "expected true or false, got %s", bp_config_type_phrase(config_setting_type(s)));
    *out = config_setting_get_bool(s);
    return BP_OK;
}

/* A string, optionally one of `choices` ("a|b|c"). */
static bp_status get_string(cx *x, const config_setting_t *g, const char *gpath, const char *key, const char *def,
                            const char *choices, char *buf, size_t cap) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    const char *v = def;
    if (s) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return fail_at(x, s, path, "expected a string, got %s", bp_config_type_phrase(config_setting_type(s)));
        v = config_setting_get_string(s);
    }
    if (choices && v) {
        size_t n = strlen(v);
        int ok = 0;
        for (const char *c = choices; *c;) {
            const char *e = strchr(c, '|');
            size_t l = e ? (size_t)(e - c) : strlen(c);
            if (l == n && strncmp(c, v, n) == 0) ok = 1;
            c += l + (e ? 1 : 0);
        }
        if (!ok) return fail_at(x, s, path, "'%s' is not one of %s", v, choices);
    }
    if (v && strlen(v) >= cap) return fail_at(x, s, path, "too long (at most %zu bytes)", cap - 1);
    snprintf(buf, cap, "%s", v ? v : "");
    return BP_OK;
}

/* A path resolved against the directory of the file that set it; NULL when absent and no default. */
static bp_status get_path(cx *x, const config_setting_t *g, const char *gpath, const char *key, char **out) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    *out = NULL;
    if (!s) return BP_OK;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail_at(x, s, path, "expected a path (string), got %s", bp_config_type_phrase(config_setting_type(s)));
    const char *v = config_setting_get_string(s);
    if (!*v) return fail_at(x, s, path, "empty path");
    *out = bp_path_join(bp_config_base_dir(x->cfg, s), v);
    return *out ? BP_OK : bp_error_set(x->err, BP_ERR_NOMEM, "out of memory");
}

/* A number (lo = hi) or [lo, hi]. */
static bp_status get_range(cx *x, const config_setting_t *g, const char *gpath, const char *key, const double def[2],
                           double min, double max, double out[2]) {
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    char path[200];
    join_path(path, sizeof path, gpath, key);
    out[0] = def[0];
    out[1] = def[1];
    if (!s) return BP_OK;
    double v;
    if (number_of(s, &v)) {
        out[0] = out[1] = v;
    } else if (is_seq(s) && config_setting_length(s) == 2 && number_of(config_setting_get_elem(s, 0), &out[0]) &&
               number_of(config_setting_get_elem(s, 1), &out[1])) {
    } else {
        return fail_at(x, s, path, "expected a number or [low, high]");
    }
    for (int i = 0; i < 2; i++)
        if (!isfinite(out[i]) || out[i] < min || out[i] > max)
            return fail_at(x, s, path, "%g is out of range [%g, %g]", out[i], min, max);
    if (out[0] > out[1]) return fail_at(x, s, path, "low %g is above high %g", out[0], out[1]);
    return BP_OK;
}

/* Exactly n numbers. */
static bp_status get_floats(cx *x, const config_setting_t *s, const char *path, uint32_t n, double min, double max,
                            double *out) {
    if (!is_seq(s) || (uint32_t)config_setting_length(s) != n)
        return fail_at(x, s, path, "expected a list of %u numbers", n);
    for (uint32_t i = 0; i < n; i++) {
        double v;
        if (!number_of(config_setting_get_elem(s, i), &v)) return fail_at(x, s, path, "element %u is not a number", i);
        if (!isfinite(v) || v < min || v > max)
            return fail_at(x, s, path, "element %u (%g) is out of range [%g, %g]", i, v, min, max);
        out[i] = v;
    }
    return BP_OK;
}

static const char *const band_names = "125, 250, 500, 1000, 2000, 4000, 8000 Hz";

/* ------------------------------------------------------------ defaults -- */

typedef struct material_def {
    const char *name;
    double alpha[SYNTH_BANDS];
} material_def;

/* Octave-band random-incidence absorption coefficients (125 Hz … 8 kHz), the
 * usual textbook values (e.g. Everest & Pohlmann, Master Handbook of
 * Acoustics, appendix tables; 8 kHz repeats 4 kHz where tables stop). */
static const material_def builtin_materials[] = {
    {"plaster", {0.013, 0.015, 0.02, 0.03, 0.04, 0.05, 0.05}},
    {"gypsum_board", {0.29, 0.10, 0.05, 0.04, 0.07, 0.09, 0.09}},
    {"brick", {0.03, 0.03, 0.03, 0.04, 0.05, 0.07, 0.07}},
    {"brick_painted", {0.01, 0.01, 0.02, 0.02, 0.02, 0.03, 0.03}},
    {"concrete", {0.01, 0.01, 0.015, 0.02, 0.02, 0.02, 0.02}},
    {"concrete_block_painted", {0.10, 0.05, 0.06, 0.07, 0.09, 0.08, 0.08}},
    {"wood_floor", {0.15, 0.11, 0.10, 0.07, 0.06, 0.07, 0.07}},
    {"wood_panel", {0.28, 0.22, 0.17, 0.09, 0.10, 0.11, 0.11}},
    {"linoleum", {0.02, 0.03, 0.03, 0.03, 0.03, 0.02, 0.02}},
    {"ceramic_tile", {0.01, 0.01, 0.01, 0.01, 0.02, 0.02, 0.02}},
    {"marble", {0.01, 0.01, 0.01, 0.01, 0.02, 0.02, 0.02}},
    {"carpet_thin", {0.02, 0.06, 0.14, 0.37, 0.60, 0.65, 0.65}},
    {"carpet_heavy", {0.08, 0.24, 0.57, 0.69, 0.71, 0.73, 0.73}},
    {"glass", {0.35, 0.25, 0.18, 0.12, 0.07, 0.04, 0.04}},
    {"acoustic_tile", {0.50, 0.70, 0.60, 0.70, 0.70, 0.50, 0.50}},
    {"curtains", {0.14, 0.35, 0.55, 0.72, 0.70, 0.65, 0.65}},
};

void synth_default_materials(synth_cfg *c) {
    c->n_materials = 0;
    for (size_t i = 0; i < sizeof builtin_materials / sizeof builtin_materials[0]; i++) {
        synth_material *m = &c->materials[c->n_materials++];
        snprintf(m->name, sizeof m->name, "%s", builtin_materials[i].name);
        memcpy(m->alpha, builtin_materials[i].alpha, sizeof m->alpha);
    }
}

int32_t synth_material_find(const synth_cfg *c, const char *name) {
    for (uint32_t i = 0; i < c->n_materials; i++)
        if (strcmp(c->materials[i].name, name) == 0) return (int32_t)i;
    return -1;
}

typedef struct room_def {
    const char *name;
    double weight;
    double size_min[3], size_max[3];
    double t60[2];
    const char *walls, *floors, *ceilings; /* space-separated material names */
} room_def;

/* Residential rooms plus larger open-plan rooms and halls, so that 8–10 m
 * source distances fit. Sizes x (width) × y (height) × z (depth). */
static const room_def builtin_rooms[] = {
    {"small",
     1.0,
     {2.5, 2.4, 2.5},
     {4.5, 2.8, 4.5},
     {0.2, 0.5},
     "plaster gypsum_board gypsum_board wood_panel glass ceramic_tile",
     "wood_floor carpet_thin carpet_heavy linoleum ceramic_tile",
     "plaster gypsum_board"},
    {"living",
     1.5,
     {4.0, 2.4, 3.5},
     {7.0, 3.0, 6.0},
     {0.3, 0.7},
     "plaster gypsum_board brick_painted wood_panel glass curtains",
     "wood_floor carpet_thin carpet_heavy linoleum ceramic_tile",
     "plaster gypsum_board wood_panel"},
    {"large",
     1.0,
     {7.0, 2.7, 5.0},
     {12.0, 3.5, 10.0},
     {0.4, 0.8},
     "plaster brick concrete_block_painted glass curtains wood_panel",
     "wood_floor carpet_thin linoleum concrete ceramic_tile",
     "plaster acoustic_tile concrete gypsum_board"},
    {"hall",
     0.5,
     {10.0, 3.5, 8.0},
     {20.0, 6.0, 15.0},
     {0.5, 0.9},
     "plaster brick concrete concrete_block_painted glass curtains wood_panel",
     "wood_floor linoleum concrete marble carpet_thin",
     "plaster acoustic_tile concrete wood_panel"},
};

static bp_status fill_materials(synth_cfg *c, const char *names, uint32_t *out, uint32_t *n, bp_error *err) {
    *n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        int32_t m = synth_material_find(c, t);
        if (m < 0) return bp_error_set(err, BP_ERR_INTERNAL, "synth: built-in room uses unknown material '%s'", t);
        if (*n < SYNTH_MAX_MATERIALS) out[(*n)++] = (uint32_t)m;
    }
    return BP_OK;
}

bp_status synth_default_rooms(synth_cfg *c, bp_error *err) {
    c->n_rooms = 0;
    for (size_t i = 0; i < sizeof builtin_rooms / sizeof builtin_rooms[0]; i++) {
        const room_def *d = &builtin_rooms[i];
        synth_room_type *r = &c->rooms[c->n_rooms++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", d->name);
        r->weight = d->weight;
        memcpy(r->size_min, d->size_min, sizeof r->size_min);
        memcpy(r->size_max, d->size_max, sizeof r->size_max);
        r->t60_min = d->t60[0];
        r->t60_max = d->t60[1];
        snprintf(r->where, sizeof r->where, "built-in room type '%s'", d->name);
        bp_status st = fill_materials(c, d->walls, r->walls, &r->n_walls, err);
        if (st == BP_OK) st = fill_materials(c, d->floors, r->floors, &r->n_floors, err);
        if (st == BP_OK) st = fill_materials(c, d->ceilings, r->ceilings, &r->n_ceilings, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

/* ------------------------------------------------------------- sections -- */

static bp_status parse_corpus(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {"file", "classes", "min_recordings", NULL};
    const config_setting_t *g;
    bp_status st = get_group(x, root, "", "corpus", &g);
    if (st != BP_OK) return st;
    if (!g) return fail_at(x, NULL, "corpus", "missing group: corpus = { file = \"corpus.tsv\"; };");
    if ((st = check_keys(x, g, "corpus", keys)) != BP_OK) return st;
    if ((st = get_path(x, g, "corpus", "file", &c->corpus_file)) != BP_OK) return st;
    if (!c->corpus_file) return fail_at(x, g, "corpus.file", "missing: the corpus manifest (corpus.tsv)");
    int64_t v;
    if ((st = get_int(x, g, "corpus", "min_recordings", 1, 1, 1000000, &v)) != BP_OK) return st;
    c->min_recordings = (int32_t)v;
    const config_setting_t *cl = config_setting_get_member(g, "classes");
    if (cl) {
        bp_config_where(x->cfg, cl, c->classes_where, sizeof c->classes_where);
        int t = config_setting_type(cl);
        if (t == CONFIG_TYPE_STRING) {
            c->classes = calloc(1, sizeof *c->classes);
            if (!c->classes || !(c->classes[0] = bp_strdup(config_setting_get_string(cl))))
                return bp_error_set(x->err, BP_ERR_NOMEM, "out of memory");
            c->n_classes = 1;
        } else if (is_seq(cl)) {
            uint32_t n = (uint32_t)config_setting_length(cl);
            c->classes = calloc(n ? n : 1, sizeof *c->classes);
            if (!c->classes) return bp_error_set(x->err, BP_ERR_NOMEM, "out of memory");
            for (uint32_t i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(cl, i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                    return fail_at(x, cl, "corpus.classes", "element %u is not a string", i);
                for (uint32_t j = 0; j < i; j++)
                    if (strcmp(c->classes[j], config_setting_get_string(e)) == 0)
                        return fail_at(x, cl, "corpus.classes", "'%s' is listed twice", c->classes[j]);
                if (!(c->classes[i] = bp_strdup(config_setting_get_string(e))))
                    return bp_error_set(x->err, BP_ERR_NOMEM, "out of memory");
                c->n_classes = i + 1;
            }
        } else {
            return fail_at(x, cl, "corpus.classes", "expected a list of AudioSet display names");
        }
    } else {
        snprintf(c->classes_where, sizeof c->classes_where, "%s", bp_config_label(x->cfg));
    }
    return BP_OK;
}

static bp_status parse_scenes(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {"train", "eval", NULL};
    static const char *const kind_keys[] = {"single", "two", NULL};
    const config_setting_t *g;
    bp_status st = get_group(x, root, "", "scenes", &g);
    if (st != BP_OK) return st;
    if (!g) return fail_at(x, NULL, "scenes", "missing group: scenes = { train = { single = 100; two = 100; }; ... };");
    if ((st = check_keys(x, g, "scenes", keys)) != BP_OK) return st;
    for (int s = 0; s < SYNTH_SPLITS; s++) {
        const config_setting_t *sg;
        char path[64];
        snprintf(path, sizeof path, "scenes.%s", synth_split_name(s));
        if ((st = get_group(x, g, "scenes", synth_split_name(s), &sg)) != BP_OK) return st;
        if ((st = check_keys(x, sg, path, kind_keys)) != BP_OK) return st;
        for (int k = 0; k < SYNTH_KINDS; k++)
            if ((st = get_int(x, sg, path, synth_kind_name(k), 0, 0, 99999999, &c->counts[s][k])) != BP_OK) return st;
    }
    int64_t total = 0;
    for (int s = 0; s < SYNTH_SPLITS; s++)
        for (int k = 0; k < SYNTH_KINDS; k++) total += c->counts[s][k];
    if (total == 0) return fail_at(x, g, "scenes", "no scenes asked for");
    return BP_OK;
}

static bp_status parse_audio(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {
        "sample_rate",  "seconds",      "rms_dbfs",          "placement",   "gap_seconds",
        "lead_seconds", "fade_seconds", "crossfade_seconds", "rir_seconds", NULL};
    const config_setting_t *g;
    bp_status st = get_group(x, root, "", "audio", &g);
    if (st == BP_OK) st = check_keys(x, g, "audio", keys);
    double secs;
    char placement[16];
    static const double gap_def[2] = {0.25, 1.0}, lead_def[2] = {0.0, 0.5};
    if (st == BP_OK) st = get_float(x, g, "audio", "sample_rate", 32000, 8000, 192000, &c->sample_rate);
    if (st == BP_OK) st = get_float(x, g, "audio", "seconds", 10.0, 0.1, 600, &secs);
    if (st == BP_OK) st = get_float(x, g, "audio", "rms_dbfs", -14.0, -60, 0, &c->rms_dbfs);
    if (st == BP_OK)
        st = get_string(x, g, "audio", "placement", "corpus", "corpus|repeat|loop|once", placement, sizeof placement);
    if (st == BP_OK) st = get_range(x, g, "audio", "gap_seconds", gap_def, 0, 60, c->gap_s);
    if (st == BP_OK) st = get_range(x, g, "audio", "lead_seconds", lead_def, 0, 60, c->lead_s);
    if (st == BP_OK) st = get_float(x, g, "audio", "fade_seconds", 0.01, 0, 1, &c->fade_s);
    if (st == BP_OK) st = get_float(x, g, "audio", "crossfade_seconds", 0.05, 0, 1, &c->crossfade_s);
    if (st == BP_OK) st = get_float(x, g, "audio", "rir_seconds", 2.0, 0.05, 10, &c->rir_seconds);
    if (st != BP_OK) return st;
    c->clip_samples = (int64_t)llround(secs * c->sample_rate);
    c->placement = strcmp(placement, "repeat") == 0 ? SYNTH_PLACEMENT_REPEAT
                   : strcmp(placement, "loop") == 0 ? SYNTH_PLACEMENT_LOOP
                   : strcmp(placement, "once") == 0 ? SYNTH_PLACEMENT_ONCE
                                                    : SYNTH_PLACEMENT_CORPUS;
    return BP_OK;
}

static bp_status parse_geometry(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {
        "distance_classes", "min_distance", "listener_height", "source_height", "wall_margin", "min_elevation",
        "low_elevation",    "temperature",  "humidity",        "scattering",    NULL};
    const config_setting_t *g;
    bp_status st = get_group(x, root, "", "geometry", &g);
    if (st == BP_OK) st = check_keys(x, g, "geometry", keys);
    static const double lh_def[2] = {1.5, 1.6}, sh_def[2] = {0.2, 3.0};
    char low[16];
    if (st == BP_OK) st = get_float(x, g, "geometry", "min_distance", 0.15, 0.05, 10, &c->min_distance);
    if (st == BP_OK) st = get_range(x, g, "geometry", "listener_height", lh_def, 0.2, 10, c->listener_height);
    if (st == BP_OK) st = get_range(x, g, "geometry", "source_height", sh_def, 0.0, 50, c->source_height);
    if (st == BP_OK) st = get_float(x, g, "geometry", "wall_margin", 0.25, 0.1, 5, &c->wall_margin);
    if (st == BP_OK) st = get_float(x, g, "geometry", "min_elevation", -40.0, -90, 0, &c->min_elevation);
    if (st == BP_OK) st = get_string(x, g, "geometry", "low_elevation", "reject", "reject|keep", low, sizeof low);
    if (st == BP_OK) st = get_float(x, g, "geometry", "temperature", 20.0, -20, 50, &c->temperature_c);
    if (st == BP_OK) st = get_float(x, g, "geometry", "humidity", 50.0, 0, 100, &c->humidity);
    if (st == BP_OK) st = get_float(x, g, "geometry", "scattering", 0.1, 0, 1, &c->scattering);
    if (st != BP_OK) return st;
    c->keep_low_elevation = strcmp(low, "keep") == 0;
    const config_setting_t *dc = g ? config_setting_get_member(g, "distance_classes") : NULL;
    c->n_distance_classes = 0;
    if (dc && !(is_seq(dc) && config_setting_length(dc) == 0)) {
        if (!is_seq(dc)) return fail_at(x, dc, "geometry.distance_classes", "expected a list of class indices (0..40)");
        uint32_t n = (uint32_t)config_setting_length(dc);
        if (n > 64) return fail_at(x, dc, "geometry.distance_classes", "at most 64 classes");
        for (uint32_t i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(dc, i);
            int t = config_setting_type(e);
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
                return fail_at(x, dc, "geometry.distance_classes", "element %u is not an integer", i);
            int64_t v = config_setting_get_int64(e);
            if (t == CONFIG_TYPE_INT) v = config_setting_get_int(e);
            if (v < 0 || v > 40)
                return fail_at(x, dc, "geometry.distance_classes", "class %lld is out of range [0, 40] (0.5 m bins)",
                               (long long)v);
            for (uint32_t j = 0; j < i; j++)
                if (c->distance_classes[j] == v)
                    return fail_at(x, dc, "geometry.distance_classes", "class %lld is listed twice", (long long)v);
            c->distance_classes[c->n_distance_classes++] = (int32_t)v;
        }
    } else {
        for (int32_t k = 0; k < BP_DISTANCE_CLASSES; k++) c->distance_classes[c->n_distance_classes++] = k;
    }
    for (uint32_t i = 0; i < c->n_distance_classes; i++)
        if (c->distance_classes[i] * 0.5 + 0.25 <= c->min_distance)
            return fail_at(x, dc ? dc : g, "geometry.distance_classes",
                           "class %d (%.2f–%.2f m) lies below geometry.min_distance = %g m", c->distance_classes[i],
                           fmax(0, c->distance_classes[i] * 0.5 - 0.25), c->distance_classes[i] * 0.5 + 0.25,
                           c->min_distance);
    return BP_OK;
}

static bp_status parse_material_list(cx *x, synth_cfg *c, const config_setting_t *t, const char *path, const char *key,
                                     uint32_t *out, uint32_t *n) {
    const config_setting_t *s = config_setting_get_member(t, key);
    char p[200];
    join_path(p, sizeof p, path, key);
    if (!s) return fail_at(x, t, p, "missing: a list of material names");
    if (!is_seq(s) || config_setting_length(s) == 0)
        return fail_at(x, s, p, "expected a non-empty list of material names");
    *n = 0;
    for (int i = 0; i < config_setting_length(s) && *n < SYNTH_MAX_MATERIALS; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) return fail_at(x, s, p, "element %d is not a string", i);
        int32_t m = synth_material_find(c, config_setting_get_string(e));
        if (m < 0) {
            char list[1200] = "";
            size_t len = 0;
            const char *best = NULL;
            int bd = 3;
            for (uint32_t k = 0; k < c->n_materials; k++) {
                int d = bp_edit_distance(config_setting_get_string(e), c->materials[k].name);
                if (d < bd) bd = d, best = c->materials[k].name;
                len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s", k ? ", " : "",
                                        c->materials[k].name);
            }
            if (best)
                return fail_at(x, s, p, "unknown material '%s' (did you mean '%s'?); known: %s",
                               config_setting_get_string(e), best, list);
            return fail_at(x, s, p, "unknown material '%s'; known: %s", config_setting_get_string(e), list);
        }
        out[(*n)++] = (uint32_t)m;
    }
    return BP_OK;
}

static bp_status parse_rooms(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {"types", "materials", "furniture_profile", "max_furniture", NULL};
    static const char *const type_keys[] = {"name",  "weight", "size_min", "size_max", "t60",
                                            "walls", "floor",  "ceiling",  NULL};
    static const double profile_def[SYNTH_BANDS] = {0.3, 0.5, 0.8, 1.0, 1.0, 1.0, 1.0};
    const config_setting_t *g;
    bp_status st = get_group(x, root, "", "rooms", &g);
    if (st == BP_OK) st = check_keys(x, g, "rooms", keys);
    if (st != BP_OK) return st;
    if (g)
        bp_config_where(x->cfg, g, c->rooms_where, sizeof c->rooms_where);
    else
        snprintf(c->rooms_where, sizeof c->rooms_where, "built-in room types");
    synth_default_materials(c);
    const config_setting_t *mats = g ? config_setting_get_member(g, "materials") : NULL;
    if (mats) {
        if (!is_group(mats))
            return fail_at(x, mats, "rooms.materials", "expected a group: name = [7 coefficients]; ...");
        for (int i = 0; i < config_setting_length(mats); i++) {
            const config_setting_t *m = config_setting_get_elem(mats, (unsigned)i);
            char p[200];
            join_path(p, sizeof p, "rooms.materials", config_setting_name(m));
            int32_t k = synth_material_find(c, config_setting_name(m));
            if (k < 0) {
                if (c->n_materials >= SYNTH_MAX_MATERIALS)
                    return fail_at(x, m, p, "too many materials (at most %d)", SYNTH_MAX_MATERIALS);
                k = (int32_t)c->n_materials++;
                snprintf(c->materials[k].name, sizeof c->materials[k].name, "%s", config_setting_name(m));
            }
            double a[SYNTH_BANDS];
            if ((st = get_floats(x, m, p, SYNTH_BANDS, 0, 1, a)) != BP_OK) {
                bp_error_prefix(x->err, "(bands %s) ", band_names);
                return st;
            }
            memcpy(c->materials[k].alpha, a, sizeof a);
        }
    }
    const config_setting_t *fp = g ? config_setting_get_member(g, "furniture_profile") : NULL;
    memcpy(c->furniture_profile, profile_def, sizeof profile_def);
    if (fp && (st = get_floats(x, fp, "rooms.furniture_profile", SYNTH_BANDS, 0, 1, c->furniture_profile)) != BP_OK)
        return st;
    if ((st = get_float(x, g, "rooms", "max_furniture", 0.6, 0, 0.95, &c->max_furniture)) != BP_OK) return st;
    const config_setting_t *types = g ? config_setting_get_member(g, "types") : NULL;
    if (!types) return synth_default_rooms(c, x->err);
    if (!is_seq(types) || config_setting_length(types) == 0)
        return fail_at(x, types, "rooms.types", "expected a non-empty list of room types ( { name = ...; }, ... )");
    if (config_setting_length(types) > SYNTH_MAX_ROOM_TYPES)
        return fail_at(x, types, "rooms.types", "at most %d room types", SYNTH_MAX_ROOM_TYPES);
    c->n_rooms = 0;
    for (int i = 0; i < config_setting_length(types); i++) {
        const config_setting_t *t = config_setting_get_elem(types, (unsigned)i);
        char path[64];
        snprintf(path, sizeof path, "rooms.types.[%d]", i);
        if (!is_group(t)) return fail_at(x, t, path, "expected a group { name = ...; size_min = [...]; ... }");
        if ((st = check_keys(x, t, path, type_keys)) != BP_OK) return st;
        synth_room_type *r = &c->rooms[c->n_rooms++];
        memset(r, 0, sizeof *r);
        bp_config_where(x->cfg, t, r->where, sizeof r->where);
        char def_name[40];
        snprintf(def_name, sizeof def_name, "room%d", i);
        if ((st = get_string(x, t, path, "name", def_name, NULL, r->name, sizeof r->name)) != BP_OK) return st;
        if ((st = get_float(x, t, path, "weight", 1.0, 0, 1e6, &r->weight)) != BP_OK) return st;
        char p[200];
        const config_setting_t *smin = config_setting_get_member(t, "size_min");
        const config_setting_t *smax = config_setting_get_member(t, "size_max");
        join_path(p, sizeof p, path, "size_min");
        if (!smin) return fail_at(x, t, p, "missing: [width x, height y, depth z] in metres");
        if ((st = get_floats(x, smin, p, 3, 0.5, 1000, r->size_min)) != BP_OK) return st;
        join_path(p, sizeof p, path, "size_max");
        if (smax) {
            if ((st = get_floats(x, smax, p, 3, 0.5, 1000, r->size_max)) != BP_OK) return st;
        } else {
            memcpy(r->size_max, r->size_min, sizeof r->size_max);
        }
        for (int k = 0; k < 3; k++)
            if (r->size_max[k] < r->size_min[k])
                return fail_at(x, smax, p, "size_max[%d] = %g is below size_min[%d] = %g", k, r->size_max[k], k,
                               r->size_min[k]);
        static const double t60_def[2] = {0.2, 0.9};
        double t60[2];
        if ((st = get_range(x, t, path, "t60", t60_def, 0.05, 20, t60)) != BP_OK) return st;
        r->t60_min = t60[0];
        r->t60_max = t60[1];
        if ((st = parse_material_list(x, c, t, path, "walls", r->walls, &r->n_walls)) != BP_OK) return st;
        if ((st = parse_material_list(x, c, t, path, "floor", r->floors, &r->n_floors)) != BP_OK) return st;
        if ((st = parse_material_list(x, c, t, path, "ceiling", r->ceilings, &r->n_ceilings)) != BP_OK) return st;
    }
    double wsum = 0;
    for (uint32_t i = 0; i < c->n_rooms; i++) wsum += c->rooms[i].weight;
    if (!(wsum > 0)) return fail_at(x, types, "rooms.types", "every weight is 0");
    return BP_OK;
}

static bp_status parse_qa(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {"single", "two", "e_mix", "relation_margin", "distance_margin", NULL};
    static const char *const single_keys[] = {"A", "B", NULL};
    static const char *const two_keys[] = {"C", "D", "E", NULL};
    static const char *const mix_keys[] = {"binary_direction", "binary_distance", "nonbinary", NULL};
    const config_setting_t *g, *gs, *gt, *gm;
    bp_status st = get_group(x, root, "", "qa", &g);
    if (st == BP_OK) st = check_keys(x, g, "qa", keys);
    if (st == BP_OK) st = get_group(x, g, "qa", "single", &gs);
    if (st == BP_OK) st = get_group(x, g, "qa", "two", &gt);
    if (st == BP_OK) st = get_group(x, g, "qa", "e_mix", &gm);
    if (st == BP_OK) st = check_keys(x, gs, "qa.single", single_keys);
    if (st == BP_OK) st = check_keys(x, gt, "qa.two", two_keys);
    if (st == BP_OK) st = check_keys(x, gm, "qa.e_mix", mix_keys);
    int64_t v[SYNTH_QA_TYPES];
    if (st == BP_OK) st = get_int(x, gs, "qa.single", "A", 1, 0, 8, &v[0]);
    if (st == BP_OK) st = get_int(x, gs, "qa.single", "B", 1, 0, 8, &v[1]);
    if (st == BP_OK) st = get_int(x, gt, "qa.two", "C", 1, 0, 8, &v[2]);
    if (st == BP_OK) st = get_int(x, gt, "qa.two", "D", 1, 0, 8, &v[3]);
    if (st == BP_OK) st = get_int(x, gt, "qa.two", "E", 3, 0, 16, &v[4]);
    if (st == BP_OK) st = get_float(x, gm, "qa.e_mix", "binary_direction", 0.4, 0, 1e6, &c->e_mix[0]);
    if (st == BP_OK) st = get_float(x, gm, "qa.e_mix", "binary_distance", 0.3, 0, 1e6, &c->e_mix[1]);
    if (st == BP_OK) st = get_float(x, gm, "qa.e_mix", "nonbinary", 0.3, 0, 1e6, &c->e_mix[2]);
    if (st == BP_OK) st = get_float(x, g, "qa", "relation_margin", 0.3, 0, 10, &c->relation_margin);
    if (st == BP_OK) st = get_float(x, g, "qa", "distance_margin", 0.5, 0, 10, &c->distance_margin);
    if (st != BP_OK) return st;
    for (int i = 0; i < SYNTH_QA_TYPES; i++) c->qa_count[i] = (int32_t)v[i];
    if (c->qa_count[SYNTH_QA_E] > 0 && !(c->e_mix[0] + c->e_mix[1] + c->e_mix[2] > 0))
        return fail_at(x, gm, "qa.e_mix", "every weight is 0 but qa.two.E asks for type E questions");
    return BP_OK;
}

static bp_status parse_output(cx *x, const config_setting_t *root, synth_cfg *c) {
    static const char *const keys[] = {"dir", "subtype", "gain_db", "on_clip", "peak_limit", "save_rirs", NULL};
    const config_setting_t *g;
    char on_clip[16];
    bp_status st = get_group(x, root, "", "output", &g);
    if (st == BP_OK) st = check_keys(x, g, "output", keys);
    if (st == BP_OK) st = get_path(x, g, "output", "dir", &c->out_dir);
    if (st == BP_OK)
        st = get_string(x, g, "output", "subtype", "PCM_16", "PCM_16|PCM_24", c->subtype, sizeof c->subtype);
    if (st == BP_OK) st = get_float(x, g, "output", "gain_db", -20.0, -60, 20, &c->gain_db);
    if (st == BP_OK) st = get_string(x, g, "output", "on_clip", "scale", "scale|error", on_clip, sizeof on_clip);
    if (st == BP_OK) st = get_float(x, g, "output", "peak_limit", 0.99, 0.1, 1.0, &c->peak_limit);
    if (st == BP_OK) st = get_bool(x, g, "output", "save_rirs", 0, &c->save_rirs);
    if (st != BP_OK) return st;
    c->on_clip_scale = strcmp(on_clip, "scale") == 0;
    return BP_OK;
}

bp_status synth_config_parse(bp_config *cfg, synth_cfg *c, bp_error *err) {
    static const char *const keys[] = {"name",      "description", "seed",  "threads", "corpus", "scenes",     "audio",
                                       "simulator", "geometry",    "rooms", "qa",      "output", "provenance", NULL};
    memset(c, 0, sizeof *c);
    cx x = {cfg, err};
    const config_setting_t *root = bp_config_root(cfg);
    bp_status st = check_keys(&x, root, "", keys);
    int64_t seed = 0, threads = 0;
    if (st == BP_OK) st = get_string(&x, root, "", "name", "synth", NULL, c->name, sizeof c->name);
    if (st == BP_OK) st = get_int(&x, root, "", "seed", 0, 0, INT64_MAX, &seed);
    if (st == BP_OK) st = get_int(&x, root, "", "threads", 0, 0, 1024, &threads);
    if (st == BP_OK) {
        c->seed = (uint64_t)seed;
        c->threads = (int32_t)threads;
        st = parse_corpus(&x, root, c);
    }
    if (st == BP_OK) st = parse_scenes(&x, root, c);
    if (st == BP_OK) st = parse_audio(&x, root, c);
    if (st == BP_OK) st = parse_geometry(&x, root, c);
    if (st == BP_OK) st = parse_rooms(&x, root, c);
    if (st == BP_OK) st = parse_qa(&x, root, c);
    if (st == BP_OK) st = parse_output(&x, root, c);
    if (st == BP_OK) {
        const config_setting_t *sim;
        st = get_group(&x, root, "", "simulator", &sim);
        const config_setting_t *type = sim ? config_setting_get_member(sim, "type") : NULL;
        if (st == BP_OK && !sim)
            st = fail_at(&x, NULL, "simulator", "missing group: simulator = { type = \"ism_binaural\"; };");
        if (st == BP_OK && (!type || config_setting_type(type) != CONFIG_TYPE_STRING))
            st = fail_at(&x, sim, "simulator.type", "missing: the simulator plugin's name (a string)");
        if (st == BP_OK) {
            bp_config_where(cfg, sim, c->sim_where, sizeof c->sim_where);
            c->sim_type = bp_strdup(config_setting_get_string(type));
            if (!c->sim_type) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        }
    }
    if (st != BP_OK) synth_config_free(c);
    return st;
}

const config_setting_t *synth_config_sim_group(bp_config *cfg) {
    return config_setting_get_member(bp_config_root(cfg), "simulator");
}

void synth_config_free(synth_cfg *c) {
    if (!c) return;
    free(c->corpus_file);
    for (uint32_t i = 0; i < c->n_classes; i++) free(c->classes[i]);
    free(c->classes);
    free(c->sim_type);
    free(c->out_dir);
    memset(c, 0, sizeof *c);
}

/* ----------------------------------------------------------------- JSON -- */

static json_t *jfloats(const double *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *jmaterial_names(const synth_cfg *c, const uint32_t *idx, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_string(c->materials[idx[i]].name));
    return a;
}

/* Everything that changes the generated bytes (not the output directory,
 * the thread count or the config file's location). */
json_t *synth_config_to_json(const synth_cfg *c) {
    json_t *j = json_object();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    json_object_set_new(j, "name", json_string(c->name));
    json_object_set_new(j, "seed", json_string(seed));
    json_t *sc = json_object();
    for (int s = 0; s < SYNTH_SPLITS; s++) {
        json_t *k = json_object();
        for (int t = 0; t < SYNTH_KINDS; t++) json_object_set_new(k, synth_kind_name(t), json_integer(c->counts[s][t]));
        json_object_set_new(sc, synth_split_name(s), k);
    }
    json_object_set_new(j, "scenes", sc);
    json_t *au = json_object();
    json_object_set_new(au, "sample_rate", json_real(c->sample_rate));
    json_object_set_new(au, "clip_samples", json_integer(c->clip_samples));
    json_object_set_new(au, "rms_dbfs", json_real(c->rms_dbfs));
    static const char *const pl[] = {"corpus", "repeat", "loop", "once"};
    json_object_set_new(au, "placement", json_string(pl[c->placement]));
    json_object_set_new(au, "gap_seconds", jfloats(c->gap_s, 2));
    json_object_set_new(au, "lead_seconds", jfloats(c->lead_s, 2));
    json_object_set_new(au, "fade_seconds", json_real(c->fade_s));
    json_object_set_new(au, "crossfade_seconds", json_real(c->crossfade_s));
    json_object_set_new(au, "rir_seconds", json_real(c->rir_seconds));
    json_object_set_new(j, "audio", au);
    json_t *ge = json_object();
    json_t *dc = json_array();
    for (uint32_t i = 0; i < c->n_distance_classes; i++)
        json_array_append_new(dc, json_integer(c->distance_classes[i]));
    json_object_set_new(ge, "distance_classes", dc);
    json_object_set_new(ge, "min_distance", json_real(c->min_distance));
    json_object_set_new(ge, "listener_height", jfloats(c->listener_height, 2));
    json_object_set_new(ge, "source_height", jfloats(c->source_height, 2));
    json_object_set_new(ge, "wall_margin", json_real(c->wall_margin));
    json_object_set_new(ge, "min_elevation", json_real(c->min_elevation));
    json_object_set_new(ge, "low_elevation", json_string(c->keep_low_elevation ? "keep" : "reject"));
    json_object_set_new(ge, "temperature", json_real(c->temperature_c));
    json_object_set_new(ge, "humidity", json_real(c->humidity));
    json_object_set_new(ge, "scattering", json_real(c->scattering));
    json_object_set_new(j, "geometry", ge);
    json_t *ro = json_object();
    json_object_set_new(ro, "bands_hz", jfloats(synth_band_hz, SYNTH_BANDS));
    json_object_set_new(ro, "furniture_profile", jfloats(c->furniture_profile, SYNTH_BANDS));
    json_object_set_new(ro, "max_furniture", json_real(c->max_furniture));
    json_t *mats = json_object();
    for (uint32_t i = 0; i < c->n_materials; i++)
        json_object_set_new(mats, c->materials[i].name, jfloats(c->materials[i].alpha, SYNTH_BANDS));
    json_object_set_new(ro, "materials", mats);
    json_t *types = json_array();
    for (uint32_t i = 0; i < c->n_rooms; i++) {
        const synth_room_type *r = &c->rooms[i];
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(r->name));
        json_object_set_new(t, "weight", json_real(r->weight));
        json_object_set_new(t, "size_min", jfloats(r->size_min, 3));
        json_object_set_new(t, "size_max", jfloats(r->size_max, 3));
        double t60[2] = {r->t60_min, r->t60_max};
        json_object_set_new(t, "t60", jfloats(t60, 2));
        json_object_set_new(t, "walls", jmaterial_names(c, r->walls, r->n_walls));
        json_object_set_new(t, "floor", jmaterial_names(c, r->floors, r->n_floors));
        json_object_set_new(t, "ceiling", jmaterial_names(c, r->ceilings, r->n_ceilings));
        json_array_append_new(types, t);
    }
    json_object_set_new(ro, "types", types);
    json_object_set_new(j, "rooms", ro);
    json_t *qa = json_object();
    static const char *const letters[SYNTH_QA_TYPES] = {"A", "B", "C", "D", "E"};
    json_t *cnt = json_object();
    for (int i = 0; i < SYNTH_QA_TYPES; i++) json_object_set_new(cnt, letters[i], json_integer(c->qa_count[i]));
    json_object_set_new(qa, "per_scene", cnt);
    json_t *mix = json_object();
    json_object_set_new(mix, "binary_direction", json_real(c->e_mix[0]));
    json_object_set_new(mix, "binary_distance", json_real(c->e_mix[1]));
    json_object_set_new(mix, "nonbinary", json_real(c->e_mix[2]));
    json_object_set_new(qa, "e_mix", mix);
    json_object_set_new(qa, "relation_margin", json_real(c->relation_margin));
    json_object_set_new(qa, "distance_margin", json_real(c->distance_margin));
    json_object_set_new(j, "qa", qa);
    json_t *out = json_object();
    json_object_set_new(out, "subtype", json_string(c->subtype));
    json_object_set_new(out, "gain_db", json_real(c->gain_db));
    json_object_set_new(out, "on_clip", json_string(c->on_clip_scale ? "scale" : "error"));
    json_object_set_new(out, "peak_limit", json_real(c->peak_limit));
    json_object_set_new(out, "save_rirs", json_boolean(c->save_rirs));
    json_object_set_new(j, "output", out);
    return j;
}
