/* spatialsoundqa: the QA file ({"data": [...]} of the official schema: audio_id,
 * reverb_id, audio_id2, reverb_id2, question_id, question_type, question,
 * answer), the class list (class_labels_indices CSV), and per-entry labels:
 * from batpipe's ground-truth fields (generated sets: "sources", "audio_path",
 * "gain_db") or, for the official release, from the reverberation JSON's
 * positions (reverb_json) and the class lists of detection answers. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/labels.h"
#include "ssqa.h"

static char *dup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *join(const char *dir, const char *rel) {
    if (!rel) return NULL;
    if (rel[0] == '/' || !dir || !*dir) return dup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static char *dir_of(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return dup(".");
    size_t n = (size_t)(s - path);
    char *d = malloc(n + 2);
    if (!d) return NULL;
    if (n == 0) n = 1; /* "/x" → "/" */
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static int file_exists(const char *p) {
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void lower(char *s) {
    for (; s && *s; s++) *s = (char)tolower((unsigned char)*s);
}

void ssqa_index_free(ssqa_index *x) {
    if (!x) return;
    for (int64_t i = 0; i < x->n; i++) {
        ssqa_entry *e = &x->entries[i];
        free(e->id);
        free(e->question);
        free(e->answer);
        free(e->question_type);
        free(e->type);
        free(e->scene_id);
        free(e->audio_path);
        for (int k = 0; k < SSQA_MAX_SOURCES; k++) {
            free(e->audio_id[k]);
            free(e->reverb_id[k]);
        }
        free(e->classes);
    }
    free(x->entries);
    for (uint32_t i = 0; i < x->n_classes; i++) free(x->class_names[i]);
    free(x->class_names);
    memset(x, 0, sizeof *x);
}

/* ----------------------------------------------------------- class list -- */

/* CSV "index,mid,display_name" (display names may be quoted, "" escapes a quote). */
static bp_status load_classes(ssqa_index *x, const char *path, bp_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: cannot open the class list: %s", path, strerror(errno));
    char line[4096];
    uint32_t ln = 0, cap = 0;
    bp_status st = BP_OK;
    while (fgets(line, sizeof line, f) && st == BP_OK) {
        ln++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (!n || (ln == 1 && strncmp(line, "index", 5) == 0)) continue;
        char *c1 = strchr(line, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s:%u: expected index,mid,display_name", path, ln);
            break;
        }
        char *name = c2 + 1, out[1024];
        size_t o = 0;
        if (*name == '"') {
            for (char *p = name + 1; *p && o + 1 < sizeof out; p++) {
                if (*p == '"' && p[1] == '"')
                    out[o++] = '"', p++;
                else if (*p == '"')
                    break;
                else
                    out[o++] = *p;
            }
        } else {
            for (char *p = name; *p && o + 1 < sizeof out; p++) out[o++] = *p;
        }
        out[o] = '\0';
        if (x->n_classes == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(x->class_names, cap * sizeof *nn);
            if (!nn) {
                st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                break;
            }
            x->class_names = nn;
        }
        char *d = dup(out);
        if (!d) {
            st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            break;
        }
        lower(d);
        x->class_names[x->n_classes++] = d;
    }
    fclose(f);
    if (st == BP_OK && x->n_classes == 0) st = bp_error_set(err, BP_ERR_FORMAT, "%s: no classes", path);
    return st;
}

static int32_t class_index(const ssqa_index *x, const char *name) {
    char low[1024];
    snprintf(low, sizeof low, "%s", name);
    lower(low);
    /* trim */
    char *s = low;
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    for (uint32_t i = 0; i < x->n_classes; i++)
        if (strcmp(x->class_names[i], s) == 0) return (int32_t)i;
    return -1;
}

/* ------------------------------------------------------ reverb positions -- */

typedef struct reverb_pos {
    const char *fname;
    double source[3], sensor[3];
} reverb_pos;

static int parse_xyz(const json_t *v, double out[3]) {
    if (json_is_array(v) && json_array_size(v) == 3) {
        for (int k = 0; k < 3; k++) {
            if (!json_is_number(json_array_get(v, (size_t)k))) return -1;
            out[k] = json_number_value(json_array_get(v, (size_t)k));
        }
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s) return -1;
    char *e;
    for (int k = 0; k < 3; k++) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == '(') s++;
        out[k] = strtod(s, &e);
        if (e == s) return -1;
        s = e;
    }
    return 0;
}

/* ----------------------------------------------------------------- load -- */

static const char *letter_of(const char *qt) {
    if (!qt) return "";
    if (strcmp(qt, "CLASSIFICATION") == 0) return "A";
    if (strcmp(qt, "DOA_DISTANCE") == 0) return "B";
    if (strcmp(qt, "MIXUP_CLASSIFICATION") == 0) return "C";
    if (strcmp(qt, "MIXUP_DOA_DISTANCE") == 0) return "D";
    if (strncmp(qt, "MIXUP_", 6) == 0) return "E";
    return "";
}

static int wanted(const ssqa_index_opts *o, const char *letter, const char *qt) {
    if (!o->n_types) return 1;
    for (uint32_t i = 0; i < o->n_types; i++)
        if ((letter && strcmp(o->types[i], letter) == 0) || (qt && strcmp(o->types[i], qt) == 0)) return 1;
    return 0;
}

static bp_status fill_entry(const ssqa_index_opts *o, ssqa_index *x, const json_t *j, size_t i, const reverb_pos *rp,
                            size_t n_rp, ssqa_entry *e, bp_error *err) {
    const char *jp = o->json_path;
    const char *q = json_string_value(json_object_get(j, "question"));
    const char *a = json_string_value(json_object_get(j, "answer"));
    if (!q || !a) return bp_error_set(err, BP_ERR_FORMAT, "%s: entry %zu has no question or answer string", jp, i);
    const char *qt = json_string_value(json_object_get(j, "question_type"));
    const char *ty = json_string_value(json_object_get(j, "type"));
    if (!ty) ty = letter_of(qt);
    const json_t *qid = json_object_get(j, "question_id");
    char id[128];
    if (json_is_integer(qid))
        snprintf(id, sizeof id, "%s-%lld", qt ? qt : "QA", (long long)json_integer_value(qid));
    else if (json_is_string(qid))
        snprintf(id, sizeof id, "%s-%s", qt ? qt : "QA", json_string_value(qid));
    else
        snprintf(id, sizeof id, "%s-%zu", qt ? qt : "QA", i);
    e->id = dup(id);
    e->question = dup(q);
    e->answer = dup(a);
    e->question_type = dup(qt ? qt : "");
    e->type = dup(ty);
    e->scene_id =
        dup(json_string_value(json_object_get(j, "scene_id")) ? json_string_value(json_object_get(j, "scene_id")) : "");
    if (!e->id || !e->question || !e->answer || !e->question_type || !e->type || !e->scene_id)
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int k = 0; k < SSQA_MAX_SOURCES; k++) e->azimuth[k] = e->elevation[k] = e->distance[k] = -1;
    const char *ap = json_string_value(json_object_get(j, "audio_path"));
    static const char *const aid_keys[2] = {"audio_id", "audio_id2"}, *const rid_keys[2] = {"reverb_id", "reverb_id2"};
    for (int k = 0; k < SSQA_MAX_SOURCES; k++) {
        const char *aid = json_string_value(json_object_get(j, aid_keys[k]));
        const char *rid = json_string_value(json_object_get(j, rid_keys[k]));
        if (aid && !(e->audio_id[k] = dup(aid))) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (rid && !(e->reverb_id[k] = dup(rid))) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        if (aid) e->n_sources = k + 1;
    }
    if (ap) {
        e->audio_path = join(o->audio_root, ap);
        if (!e->audio_path) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        e->gain_db = json_number_value(json_object_get(j, "gain_db"));
    } else if (!e->audio_id[0] || !e->reverb_id[0] || (e->audio_id[1] && !e->reverb_id[1])) {
        return bp_error_set(
            err, BP_ERR_FORMAT,
            "%s: entry %zu (%s) has neither audio_path nor audio_id/reverb_id (and audio_id2/reverb_id2 "
            "for a second source)",
            jp, i, id);
    }
    /* labels: batpipe's ground truth, when present */
    const json_t *srcs = json_object_get(j, "sources");
    int classes_known = 0;
    if (json_is_array(srcs) && json_array_size(srcs) >= 1) {
        e->n_sources = (int32_t)(json_array_size(srcs) < SSQA_MAX_SOURCES ? json_array_size(srcs) : SSQA_MAX_SOURCES);
        if (x->n_classes && !(e->classes = calloc(x->n_classes, sizeof *e->classes)))
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        for (int32_t k = 0; k < e->n_sources; k++) {
            const json_t *s = json_array_get(srcs, (size_t)k);
            const json_t *v;
            if (json_is_integer(v = json_object_get(s, "azimuth"))) e->azimuth[k] = (int32_t)json_integer_value(v);
            if (json_is_integer(v = json_object_get(s, "elevation_class")))
                e->elevation[k] = (int32_t)json_integer_value(v);
            if (json_is_integer(v = json_object_get(s, "distance_class")))
                e->distance[k] = (int32_t)json_integer_value(v);
            const json_t *labels = json_object_get(s, "labels");
            for (size_t l = 0; e->classes && l < json_array_size(labels); l++) {
                int32_t c = class_index(x, json_string_value(json_array_get(labels, l))
                                               ? json_string_value(json_array_get(labels, l))
                                               : "");
                if (c >= 0) e->classes[c] = 1.0f;
            }
        }
        classes_known = e->classes != NULL;
    } else {
        /* official entries: positions from the reverberation JSON */
        for (int k = 0; k < SSQA_MAX_SOURCES && rp; k++) {
            if (!e->reverb_id[k]) continue;
            for (size_t r = 0; r < n_rp; r++) {
                size_t lf = strlen(rp[r].fname), lr = strlen(e->reverb_id[k]);
                if (!(lr >= lf && strcmp(e->reverb_id[k] + lr - lf, rp[r].fname) == 0)) continue;
                bp_spatial_label lab;
                if (bp_spatial_label_compute(rp[r].source, rp[r].sensor, &lab, NULL) == BP_OK) {
                    e->azimuth[k] = lab.azimuth;
                    e->elevation[k] = lab.elevation_class;
                    e->distance[k] = lab.distance_class;
                }
                break;
            }
        }
        /* a single-source detection answer lists the clip's classes */
        if (x->n_classes && e->n_sources == 1 && strcmp(e->type, "A") == 0) {
            e->classes = calloc(x->n_classes, sizeof *e->classes);
            if (!e->classes) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            classes_known = 1;
            char buf[2048];
            snprintf(buf, sizeof buf, "%s", a);
            for (char *save = NULL, *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
                int32_t c = class_index(x, t);
                if (c < 0)
                    classes_known = 0; /* a name outside the list: do not pretend to know */
                else
                    e->classes[c] = 1.0f;
            }
        }
    }
    if (!classes_known) {
        free(e->classes);
        e->classes = NULL;
    }
    return BP_OK;
}

bp_status ssqa_index_load(const ssqa_index_opts *o, ssqa_index *x, bp_error *err) {
    memset(x, 0, sizeof *x);
    json_error_t je;
    json_t *root = json_load_file(o->json_path, 0, &je);
    if (!root) {
        if (je.line <= 0)
            return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: %s", o->json_path, je.text);
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%d:%d: malformed JSON: %s", o->json_path, je.line, je.column,
                            je.text);
    }
    const json_t *data = json_is_array(root) ? root : json_object_get(root, "data");
    bp_status st = BP_OK;
    if (!json_is_array(data))
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: expected {\"data\": [...]} (the SpatialSoundQA schema)",
                          o->json_path);
    /* class list: given, or class_labels_indices.csv beside the JSON or one level up */
    char *found = NULL;
    if (st == BP_OK && o->class_list && *o->class_list) {
        st = load_classes(x, o->class_list, err);
    } else if (st == BP_OK) {
        char *d = dir_of(o->json_path);
        char *c1 = join(d, "class_labels_indices.csv"), *c2 = join(d, "../class_labels_indices.csv");
        found = file_exists(c1) ? dup(c1) : file_exists(c2) ? dup(c2) : NULL;
        free(d);
        free(c1);
        free(c2);
        if (found) st = load_classes(x, found, err);
    }
    free(found);
    /* positions of the official RIRs */
    json_t *rj = NULL;
    reverb_pos *rp = NULL;
    size_t n_rp = 0;
    if (st == BP_OK && o->reverb_json && *o->reverb_json) {
        rj = json_load_file(o->reverb_json, 0, &je);
        const json_t *rd = rj ? (json_is_array(rj) ? rj : json_object_get(rj, "data")) : NULL;
        if (!rd || !json_is_array(rd)) {
            st =
                bp_error_set(err, BP_ERR_FORMAT, "%s: %s", o->reverb_json, rj ? "expected {\"data\": [...]}" : je.text);
        } else {
            rp = calloc(json_array_size(rd) + 1, sizeof *rp);
            if (!rp) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            for (size_t i = 0; rp && i < json_array_size(rd); i++) {
                const json_t *r = json_array_get(rd, i);
                const char *fn = json_string_value(json_object_get(r, "fname"));
                const json_t *sensor = json_object_get(r, "sensor_position");
                if (!sensor) sensor = json_object_get(r, "agent_position");
                if (!fn || parse_xyz(json_object_get(r, "source_position"), rp[n_rp].source) != 0 ||
                    parse_xyz(sensor, rp[n_rp].sensor) != 0)
                    continue;
                rp[n_rp++].fname = fn;
            }
        }
    }
    size_t n = st == BP_OK ? json_array_size(data) : 0;
    if (st == BP_OK && !(x->entries = calloc(n ? n : 1, sizeof *x->entries)))
        st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        const json_t *j = json_array_get(data, i);
        if (!json_is_object(j)) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: entry %zu is not an object", o->json_path, i);
            break;
        }
        const char *qt = json_string_value(json_object_get(j, "question_type"));
        const char *ty = json_string_value(json_object_get(j, "type"));
        if (!wanted(o, ty ? ty : letter_of(qt), qt)) continue;
        if (o->max_items > 0 && x->n >= o->max_items) break;
        st = fill_entry(o, x, j, i, rp, n_rp, &x->entries[x->n], err);
        x->n++;
    }
    free(rp);
    json_decref(rj);
    json_decref(root);
    if (st != BP_OK) ssqa_index_free(x);
    return st;
}
