/* Evaluation reports: `batpipe report DIR...` — the report.json files of
 * several runs as one table, rows = runs, columns = metrics (the paper's
 * Table 3 columns first: mAP ↑, ER20° ↓, MAE ↓, DER ↓), in Markdown, CSV or
 * HTML. The best value of each Table 3 column is marked. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/report.h"
#include "report_internal.h"
#include "svg.h"

typedef struct merge_row {
    char *file;
    char *label;
    char *encoder;
    int64_t items;
    json_t *doc;
} merge_row;

typedef struct merge_col {
    const char *name; /* borrowed from a row's document */
    const char *unit;
    char header[96];
    int known, higher_better;
} merge_col;

int32_t bp_table_format_for_path(const char *path) {
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot) return -1;
    if (strcmp(dot, ".md") == 0 || strcmp(dot, ".markdown") == 0) return BP_TABLE_MARKDOWN;
    if (strcmp(dot, ".csv") == 0) return BP_TABLE_CSV;
    if (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0) return BP_TABLE_HTML;
    return -1;
}

void bp_report_text_free(char *text) { free(text); }

static const char *jstr(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static bp_status load_row(const char *path, merge_row *row, bp_error *err) {
    struct stat sb;
    size_t len = strlen(path);
    int is_file = len > 5 && strcmp(path + len - 5, ".json") == 0 && !(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
    row->file = is_file ? bp_strdup(path) : bp_strdupf("%s/report.json", path);
    if (!row->file) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    if (stat(row->file, &sb) != 0)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: %s (is this the output.dir of a run with metrics?)",
                            row->file, strerror(errno));
    json_error_t je;
    row->doc = json_load_file(row->file, 0, &je);
    if (!row->doc)
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%d:%d: %s", row->file, je.line, je.column, je.text);
    const json_t *ms = json_object_get(row->doc, "metrics");
    if (!json_is_object(row->doc) || !json_is_array(ms))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: not a batpipe report (no \"metrics\" list)", row->file);
    for (size_t i = 0; i < json_array_size(ms); i++) {
        const json_t *m = json_array_get(ms, i), *v = json_object_get(m, "value");
        if (!json_is_string(json_object_get(m, "name")) || !(json_is_number(v) || json_is_null(v)))
            return bp_error_set(err, BP_ERR_FORMAT, "%s: metrics[%zu] lacks a name or a numeric value", row->file, i);
    }
    const char *name = jstr(row->doc, "name");
    if (name[0]) {
        row->label = bp_strdup(name);
    } else { /* the run's directory */
        char *dir = bp_dirname(row->file);
        const char *base = dir ? strrchr(dir, '/') : NULL;
        row->label = bp_strdup(base ? base + 1 : dir ? dir : row->file);
        free(dir);
    }
    const json_t *enc = json_object_get(row->doc, "encoder");
    if (json_is_object(enc)) {
        const char *w = jstr(enc, "weights"), *wb = strrchr(w, '/');
        row->encoder = w[0] ? bp_strdupf("%s %s (%s)", jstr(enc, "plugin"), jstr(enc, "version"), wb ? wb + 1 : w)
                            : bp_strdupf("%s %s", jstr(enc, "plugin"), jstr(enc, "version"));
    } else {
        row->encoder = bp_strdup("–");
    }
    row->items = (int64_t)json_integer_value(json_object_get(json_object_get(row->doc, "counts"), "evaluated"));
    return row->label && row->encoder ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
}

/* The value of result `name` in a row: 1 = present (NaN for null), 0 = absent. */
static int row_value(const merge_row *row, const char *name, double *v) {
    const json_t *ms = json_object_get(row->doc, "metrics");
    for (size_t i = 0; i < json_array_size(ms); i++) {
        const json_t *m = json_array_get(ms, i);
        if (strcmp(jstr(m, "name"), name) != 0) continue;
        const json_t *x = json_object_get(m, "value");
        *v = json_is_number(x) ? json_number_value(x) : NAN;
        return 1;
    }
    return 0;
}

static int add_col(merge_col *cols, size_t *n, size_t cap, const char *name, const char *unit) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(cols[i].name, name) == 0) return 0;
    if (*n >= cap) return 0;
    merge_col *c = &cols[(*n)++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->unit = unit;
    const char *h = bp_report_column_header(name, &c->higher_better);
    c->known = h != NULL;
    if (h)
        snprintf(c->header, sizeof c->header, "%s", h);
    else if (unit && unit[0])
        snprintf(c->header, sizeof c->header, "%s (%s)", name, unit);
    else
        snprintf(c->header, sizeof c->header, "%s", name);
    return 1;
}

static void cell_md(bp_sbuf *o, const char *s) {
    for (; *s; s++) bp_sbuf_printf(o, *s == '|' ? "\\|" : "%c", *s);
}

static void cell_csv(bp_sbuf *o, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        bp_sbuf_printf(o, "%s", s);
        return;
    }
    bp_sbuf_printf(o, "\"");
    for (; *s; s++) bp_sbuf_printf(o, *s == '"' ? "\"\"" : "%c", *s);
    bp_sbuf_printf(o, "\"");
}

static void render(bp_sbuf *o, const merge_row *rows, uint32_t n, const merge_col *cols, size_t nc, int32_t fmt) {
    /* best value per known column */
    double best[64];
    for (size_t c = 0; c < nc; c++) {
        best[c] = NAN;
        for (uint32_t r = 0; r < n && cols[c].known; r++) {
            double v;
            if (!row_value(&rows[r], cols[c].name, &v) || isnan(v)) continue;
            if (isnan(best[c]) || (cols[c].higher_better ? v > best[c] : v < best[c])) best[c] = v;
        }
    }
    if (fmt == BP_TABLE_CSV) {
        bp_sbuf_printf(o, "config,encoder,items");
        for (size_t c = 0; c < nc; c++) {
            bp_sbuf_printf(o, ",");
            cell_csv(o, cols[c].name);
        }
        bp_sbuf_printf(o, ",report\n");
        for (uint32_t r = 0; r < n; r++) {
            cell_csv(o, rows[r].label);
            bp_sbuf_printf(o, ",");
            cell_csv(o, rows[r].encoder);
            bp_sbuf_printf(o, ",%lld", (long long)rows[r].items);
            for (size_t c = 0; c < nc; c++) {
                double v;
                bp_sbuf_printf(o, ",");
                if (row_value(&rows[r], cols[c].name, &v) && !isnan(v)) bp_sbuf_printf(o, "%.10g", v);
            }
            bp_sbuf_printf(o, ",");
            cell_csv(o, rows[r].file);
            bp_sbuf_printf(o, "\n");
        }
        return;
    }
    int html = fmt == BP_TABLE_HTML;
    if (html) {
        bp_sbuf_printf(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>batpipe "
                          "evaluation</title>\n<style>\nbody { font-family: sans-serif; margin: 2em; }\n"
                          "table { border-collapse: collapse; }\ntd, th { border: 1px solid #ccc; padding: 4px 8px; }\n"
                          "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n</style>\n</head>\n"
                          "<body>\n<table>\n<tr><th>config</th><th>encoder</th><th>items</th>");
        for (size_t c = 0; c < nc; c++) {
            bp_sbuf_printf(o, "<th>");
            bp_svg_esc(o, cols[c].header);
            bp_sbuf_printf(o, "</th>");
        }
        bp_sbuf_printf(o, "</tr>\n");
    } else {
        bp_sbuf_printf(o, "| config | encoder | items |");
        for (size_t c = 0; c < nc; c++) {
            bp_sbuf_printf(o, " ");
            cell_md(o, cols[c].header);
            bp_sbuf_printf(o, " |");
        }
        bp_sbuf_printf(o, "\n|---|---|---:|");
        for (size_t c = 0; c < nc; c++) bp_sbuf_printf(o, "---:|");
        bp_sbuf_printf(o, "\n");
    }
    for (uint32_t r = 0; r < n; r++) {
        if (html) {
            bp_sbuf_printf(o, "<tr><td>");
            bp_svg_esc(o, rows[r].label);
            bp_sbuf_printf(o, "</td><td>");
            bp_svg_esc(o, rows[r].encoder);
            bp_sbuf_printf(o, "</td><td class=\"num\">%lld</td>", (long long)rows[r].items);
        } else {
            bp_sbuf_printf(o, "| ");
            cell_md(o, rows[r].label);
            bp_sbuf_printf(o, " | ");
            cell_md(o, rows[r].encoder);
            bp_sbuf_printf(o, " | %lld |", (long long)rows[r].items);
        }
        for (size_t c = 0; c < nc; c++) {
            double v;
            char cell[64];
            int present = row_value(&rows[r], cols[c].name, &v);
            if (!present) snprintf(cell, sizeof cell, "–");
            else if (isnan(v)) snprintf(cell, sizeof cell, "n/a");
            else snprintf(cell, sizeof cell, "%.2f", v);
            int is_best = present && !isnan(v) && n > 1 && v == best[c];
            if (html)
                bp_sbuf_printf(o, "<td class=\"num\">%s%s%s</td>", is_best ? "<b>" : "", cell, is_best ? "</b>" : "");
            else
                bp_sbuf_printf(o, " %s%s%s |", is_best ? "**" : "", cell, is_best ? "**" : "");
        }
        bp_sbuf_printf(o, html ? "</tr>\n" : "\n");
    }
    if (html)
        bp_sbuf_printf(o, "</table>\n<p><small>↑ higher is better, ↓ lower is better; the best value of each "
                          "column is bold.</small></p>\n</body>\n</html>\n");
}

bp_status bp_report_merge(const char *const *paths, uint32_t n, int32_t format, char **out, bp_error *err) {
    *out = NULL;
    if (n == 0) return bp_error_set(err, BP_ERR_INVALID, "report: no reports given");
    if (format < BP_TABLE_MARKDOWN || format > BP_TABLE_HTML)
        return bp_error_set(err, BP_ERR_INVALID, "report: unknown table format %d", format);
    merge_row *rows = calloc(n, sizeof *rows);
    if (!rows) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = BP_OK;
    for (uint32_t i = 0; i < n && st == BP_OK; i++) st = load_row(paths[i], &rows[i], err);
    merge_col cols[64];
    size_t nc = 0;
    if (st == BP_OK) {
        static const char *const table3[] = {"mAP", "ER20_percent", "MAE_deg", "DER_percent"};
        for (size_t k = 0; k < 4; k++)
            for (uint32_t r = 0; r < n; r++) {
                double v;
                if (row_value(&rows[r], table3[k], &v)) {
                    add_col(cols, &nc, 64, table3[k], "");
                    break;
                }
            }
        for (uint32_t r = 0; r < n; r++) {
            const json_t *ms = json_object_get(rows[r].doc, "metrics");
            for (size_t i = 0; i < json_array_size(ms); i++) {
                const json_t *m = json_array_get(ms, i);
                if (!bp_report_is_detail(jstr(m, "name"))) add_col(cols, &nc, 64, jstr(m, "name"), jstr(m, "unit"));
            }
        }
        bp_sbuf o = {0};
        render(&o, rows, n, cols, nc, format);
        if (o.failed || !o.s) {
            bp_sbuf_free(&o);
            st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        } else {
            *out = o.s;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        free(rows[i].file);
        free(rows[i].label);
        free(rows[i].encoder);
        if (rows[i].doc) json_decref(rows[i].doc);
    }
    free(rows);
    return st;
}
