/* `batpipe sources`: reading the input lists: the stage TSV that fetch.py
 * writes, and a user's labelled CSV (`batpipe sources import`). Both are
 * validated against the AudioSet vocabulary; every problem is reported with
 * its line before the call fails. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sources.h"

#define MAX_FIELDS 16
#define MAX_REPORTED 50

typedef struct problems {
    const char *path;
    sources_log_fn log;
    void *user;
    int count;
    char first[512];
} problems;

static BP_PRINTF(3, 4) void problem(problems *p, int line, const char *fmt, ...) {
    char msg[768], full[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(full, sizeof full, "%s:%d: %s", p->path, line, msg);
    else
        snprintf(full, sizeof full, "%s: %s", p->path, msg);
    if (p->count == 0) snprintf(p->first, sizeof p->first, "%s", full);
    if (p->log && p->count < MAX_REPORTED) p->log(p->user, full);
    if (p->log && p->count == MAX_REPORTED) p->log(p->user, "(further problems not shown)");
    p->count++;
}

static bp_status problems_result(const problems *p, bp_error *err) {
    if (p->count == 0) return BP_OK;
    if (p->count == 1) return bp_error_set(err, BP_ERR_INVALID, "%s", p->first);
    return bp_error_set(err, BP_ERR_INVALID, "%s: %d problems; the first: %s", p->path, p->count, p->first);
}

void sources_list_free(sources_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        sources_item *it = &l->items[i];
        free(it->input);
        free(it->package);
        free(it->license);
        free(it->source_path);
        free(it->placement);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static sources_item *list_add(sources_list *l) {
    if (sources_grow((void **)&l->items, &l->cap, l->n + 1, sizeof *l->items) != 0) return NULL;
    sources_item *it = &l->items[l->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Resolve ';'-separated labels into it->labels; problems are reported. */
static int resolve_labels(problems *pr, int line, const sources_ontology *o, const char *text, sources_item *it) {
    char *copy = sources_strdup(text);
    if (!copy) {
        problem(pr, line, "out of memory");
        return -1;
    }
    int ok = 0;
    char *cursor = copy;
    while (cursor) {
        char *semi = strchr(cursor, ';');
        if (semi) *semi = '\0';
        char *lab = sources_trim(cursor);
        cursor = semi ? semi + 1 : NULL;
        if (!lab[0]) continue;
        const sources_class *c = sources_ontology_find(o, lab);
        if (!c) {
            const sources_class *near = lab[0] != '/' ? sources_ontology_nearest(o, lab) : NULL;
            if (near)
                problem(pr, line, "unknown label '%s': not an AudioSet display name or id (did you mean '%s', %s?)",
                        lab, near->name, near->mid);
            else
                problem(pr, line, "unknown label '%s': not an AudioSet display name or id (see %s)", lab,
                        "data/curation/audioset_classes.tsv");
            ok = -1;
            continue;
        }
        int dup = 0;
        for (int k = 0; k < it->n_labels; k++) dup |= it->labels[k] == c;
        if (dup) continue;
        if (it->n_labels >= SOURCES_MAX_LABELS) {
            problem(pr, line, "more than %d labels", SOURCES_MAX_LABELS);
            ok = -1;
            break;
        }
        it->labels[it->n_labels++] = c;
    }
    free(copy);
    if (ok == 0 && it->n_labels == 0) {
        problem(pr, line, "no label given");
        ok = -1;
    }
    return ok;
}

/* ----------------------------------------------------------- stage TSV -- */

enum { COL_INPUT, COL_LABEL, COL_PACKAGE, COL_LICENSE, COL_SOURCE, COL_PLACEMENT, COL_COUNT };
static const char *const stage_cols[COL_COUNT] = {"input", "label", "package", "license", "source_path", "placement"};

static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p; p++)
        if (*p == '\t') {
            *p = '\0';
            if (n == max) return -1;
            f[n++] = p + 1;
        }
    return n;
}

bp_status sources_stage_read(const char *path, const char *base_dir, const sources_ontology *o, sources_list *out,
                             sources_log_fn log, void *log_user, bp_error *err) {
    memset(out, 0, sizeof *out);
    char *text;
    bp_status st = sources_read_text(path, &text, NULL, err);
    if (st != BP_OK) return st;
    problems pr = {path, log, log_user, 0, {0}};
    int col[COL_COUNT];
    for (int c = 0; c < COL_COUNT; c++) col[c] = -1;
    int lineno = 0, have_header = 0, ncols = 0;
    char *cursor = text;
    for (char *line; (line = sources_next_line(&cursor)) != NULL;) {
        lineno++;
        if (line[0] == '\0' || line[0] == '#') continue;
        char *f[MAX_FIELDS];
        int nf = split_tabs(line, f, MAX_FIELDS);
        if (!have_header) {
            have_header = 1;
            ncols = nf;
            for (int i = 0; i < nf && nf > 0; i++)
                for (int c = 0; c < COL_COUNT; c++)
                    if (strcmp(f[i], stage_cols[c]) == 0) col[c] = i;
            for (int c = 0; c < COL_PLACEMENT; c++)
                if (col[c] < 0) problem(&pr, lineno, "the header has no '%s' column", stage_cols[c]);
            if (pr.count) break;
            continue;
        }
        if (nf != ncols) {
            problem(&pr, lineno, "%d fields, the header has %d", nf, ncols);
            continue;
        }
        if (!f[col[COL_INPUT]][0] || !f[col[COL_PACKAGE]][0]) {
            problem(&pr, lineno, "empty input or package");
            continue;
        }
        sources_item it;
        memset(&it, 0, sizeof it);
        it.line = lineno;
        if (resolve_labels(&pr, lineno, o, f[col[COL_LABEL]], &it) != 0) continue;
        sources_item *dst = list_add(out);
        if (!dst) {
            problem(&pr, lineno, "out of memory");
            break;
        }
        *dst = it;
        const char *in = f[col[COL_INPUT]];
        dst->input = in[0] == '/' || !base_dir ? sources_strdup(in) : sources_strdupf("%s/%s", base_dir, in);
        if (dst->input) sources_path_normalize(dst->input);
        dst->package = sources_strdup(f[col[COL_PACKAGE]]);
        dst->license = sources_strdup(f[col[COL_LICENSE]][0] ? f[col[COL_LICENSE]] : "unknown");
        dst->source_path = sources_strdup(f[col[COL_SOURCE]][0] ? f[col[COL_SOURCE]] : in);
        dst->placement = sources_strdup(col[COL_PLACEMENT] >= 0 ? f[col[COL_PLACEMENT]] : "");
        if (!dst->input || !dst->package || !dst->license || !dst->source_path || !dst->placement) {
            problem(&pr, lineno, "out of memory");
            break;
        }
    }
    free(text);
    if (!have_header && pr.count == 0) problem(&pr, 0, "empty list");
    st = problems_result(&pr, err);
    if (st != BP_OK) sources_list_free(out);
    return st;
}

/* ----------------------------------------------------------- user CSV --- */

/* Parse one CSV record starting at *pos. Fields are NUL-terminated in place
 * (quotes removed, "" unescaped). Returns the field count, 0 at the end of
 * the text, -1 for an unterminated quote. *lines gets the number of newlines
 * consumed. */
static int csv_record(char **pos, char **f, int max, int *lines, int *too_many) {
    char *s = *pos;
    *lines = 0;
    *too_many = 0;
    if (!*s) return 0;
    int n = 0;
    for (;;) {
        char *w = s; /* write pointer for unquoting */
        char *start = s;
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        *w++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                if (*s == '\n') (*lines)++;
                *w++ = *s++;
            }
            /* text after the closing quote up to the separator is kept */
            while (*s && *s != ',' && *s != '\n') *w++ = *s++;
        } else {
            while (*s && *s != ',' && *s != '\n') s++;
            w = s;
        }
        char sep = *s;
        *w = '\0';
        if (n < max)
            f[n++] = start;
        else
            *too_many = 1;
        if (sep == ',') {
            s++;
            continue;
        }
        if (sep == '\n') {
            (*lines)++;
            s++;
        }
        break;
    }
    /* strip a CR that ended the last field */
    size_t l = strlen(f[n - 1]);
    if (l && f[n - 1][l - 1] == '\r') f[n - 1][l - 1] = '\0';
    *pos = s;
    return n;
}

static int blank_record(char **f, int n) {
    for (int i = 0; i < n; i++) {
        for (const char *p = f[i]; *p; p++)
            if (*p != ' ' && *p != '\t' && *p != '\r') return 0;
    }
    return 1;
}

bp_status sources_import_csv(const char *path, const sources_ontology *o, const char *package,
                             const char *default_license, sources_list *out, sources_log_fn log, void *log_user,
                             bp_error *err) {
    memset(out, 0, sizeof *out);
    char *text;
    bp_status st = sources_read_text(path, &text, NULL, err);
    if (st != BP_OK) return st;
    char *dir = sources_dirname(path);
    if (!dir) {
        free(text);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    problems pr = {path, log, log_user, 0, {0}};
    int c_file = 0, c_labels = 1, c_license = -1, expect = -1;
    int lineno = 1, first = 1;
    char *pos = text;
    if ((unsigned char)pos[0] == 0xEF && (unsigned char)pos[1] == 0xBB && (unsigned char)pos[2] == 0xBF) pos += 3;
    for (;;) {
        char *f[MAX_FIELDS];
        int lines, too_many;
        int start_line = lineno;
        int n = csv_record(&pos, f, MAX_FIELDS, &lines, &too_many);
        lineno += lines;
        if (n == 0) break;
        if (n < 0) {
            problem(&pr, start_line, "unterminated quoted field");
            break;
        }
        if (blank_record(f, n) || sources_trim(f[0])[0] == '#') continue;
        for (int i = 0; i < n; i++) sources_trim(f[i]);
        if (first) {
            first = 0;
            if (strcasecmp(f[0], "file") == 0) { /* header */
                c_file = c_labels = c_license = -1;
                for (int i = 0; i < n; i++) {
                    if (strcasecmp(f[i], "file") == 0) c_file = i;
                    else if (strcasecmp(f[i], "labels") == 0 || strcasecmp(f[i], "label") == 0) c_labels = i;
                    else if (strcasecmp(f[i], "license") == 0) c_license = i;
                    else problem(&pr, start_line, "unknown column '%s' (expected file, labels, license)", f[i]);
                }
                if (c_labels < 0) problem(&pr, start_line, "the header has no 'labels' column");
                if (pr.count) break;
                expect = n;
                continue;
            }
        }
        if (too_many || (expect > 0 && n != expect) || (expect < 0 && n != 2 && n != 3)) {
            if (expect > 0)
                problem(&pr, start_line, "%s%d fields, the header has %d (quote labels that contain commas)",
                        too_many ? "more than " : "", n, expect);
            else
                problem(&pr, start_line, "%s%d fields, expected 'file,labels' (quote labels that contain commas)",
                        too_many ? "more than " : "", n);
            continue;
        }
        if (expect < 0 && n == 3) c_license = 2;
        const char *file = f[c_file];
        if (!file[0]) {
            problem(&pr, start_line, "empty file name");
            continue;
        }
        sources_item it;
        memset(&it, 0, sizeof it);
        it.line = start_line;
        if (resolve_labels(&pr, start_line, o, f[c_labels], &it) != 0) continue;
        char *input = file[0] == '/' ? sources_strdup(file) : sources_strdupf("%s/%s", dir, file);
        if (!input) {
            problem(&pr, start_line, "out of memory");
            break;
        }
        char *real = access(input, R_OK) == 0 ? realpath(input, NULL) : NULL;
        if (!real) {
            problem(&pr, start_line, "file '%s' does not exist or cannot be read", input);
            free(input);
            continue;
        }
        free(input);
        input = real; /* canonical, so that "./a.wav" and "a.wav" are the same file */
        int dup_line = 0;
        for (size_t k = 0; k < out->n && !dup_line; k++)
            if (strcmp(out->items[k].input, input) == 0) dup_line = out->items[k].line;
        if (dup_line) {
            problem(&pr, start_line, "file '%s' is listed twice (first on line %d): give all its labels on one line",
                    file, dup_line);
            free(input);
            continue;
        }
        sources_item *dst = list_add(out);
        if (!dst) {
            free(input);
            problem(&pr, start_line, "out of memory");
            break;
        }
        *dst = it;
        dst->input = input;
        dst->package = sources_strdup(package);
        const char *lic = c_license >= 0 && f[c_license][0] ? f[c_license] : default_license;
        dst->license = sources_strdup(lic && lic[0] ? lic : "unknown");
        dst->source_path = sources_strdup(file);
        dst->placement = sources_strdup("");
        if (!dst->package || !dst->license || !dst->source_path || !dst->placement) {
            problem(&pr, start_line, "out of memory");
            break;
        }
    }
    if (pr.count == 0 && out->n == 0) problem(&pr, 0, "no files listed");
    free(text);
    free(dir);
    st = problems_result(&pr, err);
    if (st != BP_OK) sources_list_free(out);
    return st;
}
