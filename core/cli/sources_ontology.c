/* `batpipe sources`: the AudioSet class vocabulary (display names and mids),
 * read from data/curation/audioset_classes.tsv. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sources.h"

void sources_ontology_free(sources_ontology *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->classes[i].mid);
        free(o->classes[i].name);
        free(o->classes[i].restrictions);
    }
    free(o->classes);
    o->classes = NULL;
    o->n = 0;
}

bp_status sources_ontology_load(const char *path, sources_ontology *o, bp_error *err) {
    memset(o, 0, sizeof *o);
    char *text;
    bp_status st = sources_read_text(path, &text, NULL, err);
    if (st != BP_OK) return st;
    size_t cap = 0;
    int lineno = 0, header_seen = 0;
    char *cursor = text;
    for (char *line; (line = sources_next_line(&cursor)) != NULL;) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0') continue;
        char *f[3] = {line, NULL, NULL};
        int nf = 1;
        for (char *p = line; *p && nf < 3; p++)
            if (*p == '\t') {
                *p = '\0';
                f[nf++] = p + 1;
            }
        if (!header_seen) {
            header_seen = 1;
            if (strcmp(f[0], "mid") == 0) continue; /* header */
        }
        if (nf < 2 || f[0][0] != '/' || f[1][0] == '\0') {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s:%d: expected 'mid<TAB>name[<TAB>restrictions]'", path, lineno);
            break;
        }
        if (sources_grow((void **)&o->classes, &cap, o->n + 1, sizeof *o->classes) != 0) {
            st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        sources_class *c = &o->classes[o->n];
        c->mid = sources_strdup(f[0]);
        c->name = sources_strdup(f[1]);
        c->restrictions = sources_strdup(nf > 2 ? f[2] : "");
        o->n++;
        if (!c->mid || !c->name || !c->restrictions) {
            st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
    }
    free(text);
    if (st == BP_OK && o->n == 0) st = bp_error_set(err, BP_ERR_FORMAT, "%s: no classes in the file", path);
    if (st != BP_OK) sources_ontology_free(o);
    return st;
}

const sources_class *sources_ontology_find(const sources_ontology *o, const char *label) {
    if (!label || !label[0]) return NULL;
    if (label[0] == '/') {
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->classes[i].mid, label) == 0) return &o->classes[i];
        return NULL;
    }
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->classes[i].name, label) == 0) return &o->classes[i];
    for (size_t i = 0; i < o->n; i++)
        if (strcasecmp(o->classes[i].name, label) == 0) return &o->classes[i];
    return NULL;
}

const sources_class *sources_ontology_nearest(const sources_ontology *o, const char *label) {
    const sources_class *best = NULL;
    int best_d = 1 << 30;
    size_t ll = strlen(label);
    for (size_t i = 0; i < o->n; i++) {
        const char *name = o->classes[i].name;
        int d = sources_edit_distance(label, name);
        /* a label that is the first part of a name ("Bird vocalization") is close */
        if (ll >= 3 && strncasecmp(name, label, ll) == 0 && (name[ll] == ',' || name[ll] == ' ')) d = 1;
        if (d < best_d) {
            best_d = d;
            best = &o->classes[i];
        }
    }
    /* only suggest plausible neighbours */
    if (!best || best_d > 3 + (int)ll / 4) return NULL;
    return best;
}
