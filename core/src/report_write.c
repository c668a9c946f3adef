/* Evaluation reports: report.json (machine-readable, what `batpipe report`
 * merges), report.csv (one row per result), report.md and report.html
 * (settings, metrics, per-class details, figures; the HTML embeds the SVG
 * figures, which are also written as files). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"
#include "svg.h"

typedef struct figure {
    const char *file, *title;
    bp_sbuf svg;
} figure;

/* -------------------------------------------------------------- values -- */

static json_t *param_json(const bp_param_value *v) {
    switch (v->type) {
    case BP_PARAM_BOOL: return json_boolean(v->i);
    case BP_PARAM_INT: return json_integer(v->i);
    case BP_PARAM_FLOAT: return isfinite(v->f) ? json_real(v->f) : json_null();
    case BP_PARAM_STRING: case BP_PARAM_PATH: return json_string(v->s ? v->s : "");
    case BP_PARAM_FLOAT_LIST: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < v->count; i++)
            json_array_append_new(a, isfinite(v->list[i]) ? json_real(v->list[i]) : json_null());
        return a;
    }
    case BP_PARAM_STRING_LIST: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < v->count; i++) json_array_append_new(a, json_string(v->strs[i]));
        return a;
    }
    default: return json_null();
    }
}

static void param_text(bp_sbuf *o, const bp_param_value *v) {
    switch (v->type) {
    case BP_PARAM_BOOL: bp_sbuf_printf(o, "%s", v->i ? "true" : "false"); break;
    case BP_PARAM_INT: bp_sbuf_printf(o, "%lld", (long long)v->i); break;
    case BP_PARAM_FLOAT: bp_sbuf_printf(o, "%.10g", v->f); break;
    case BP_PARAM_STRING: case BP_PARAM_PATH: bp_sbuf_printf(o, "\"%s\"", v->s ? v->s : ""); break;
    case BP_PARAM_FLOAT_LIST:
        bp_sbuf_printf(o, "[");
        for (uint32_t i = 0; i < v->count; i++) bp_sbuf_printf(o, "%s%.10g", i ? ", " : "", v->list[i]);
        bp_sbuf_printf(o, "]");
        break;
    case BP_PARAM_STRING_LIST:
        bp_sbuf_printf(o, "[");
        for (uint32_t i = 0; i < v->count; i++) bp_sbuf_printf(o, "%s\"%s\"", i ? ", " : "", v->strs[i]);
        bp_sbuf_printf(o, "]");
        break;
    default: break;
    }
}

static const char *weights_of(const bp_report_component *c) {
    const bp_param_value *w = bp_params_find(c->params, "weights");
    return w && (w->type == BP_PARAM_PATH || w->type == BP_PARAM_STRING) && w->s && w->s[0] ? w->s : NULL;
}

static const bp_report_component *encoder_of(const bp_report_meta *m) {
    for (uint32_t i = 0; i < m->n_stages; i++)
        if (strcmp(m->stages[i].slot, "encoder") == 0) return &m->stages[i];
    return NULL;
}

static void fmt_value(char *buf, size_t cap, double v) {
    if (isnan(v))
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap, "%.2f", v);
}

/* ---------------------------------------------------------------- json -- */

static json_t *component_json(const bp_report_component *c) {
    json_t *o = json_object(), *ps = json_object();
    json_object_set_new(o, "slot", json_string(c->slot));
    json_object_set_new(o, "plugin", json_string(c->plugin ? c->plugin : ""));
    json_object_set_new(o, "version", json_string(c->version ? c->version : ""));
    for (uint32_t i = 0; c->params && i < c->params->count; i++)
        json_object_set_new(ps, c->params->values[i].name, param_json(&c->params->values[i]));
    json_object_set_new(o, "params", ps);
    return o;
}

static json_t *result_json(const bp_report_result *x) {
    json_t *o = json_object();
    json_object_set_new(o, "metric", json_string(x->metric));
    json_object_set_new(o, "name", json_string(x->r.name));
    json_object_set_new(o, "value", isfinite(x->r.value) ? json_real(x->r.value) : json_null());
    json_object_set_new(o, "unit", json_string(x->r.unit));
    json_object_set_new(o, "note", json_string(x->r.note));
    return o;
}

static char *report_json(const bp_report *r, const bp_report_meta *m, const figure *figs, int n_figs) {
    json_t *root = json_object();
    json_object_set_new(root, "batpipe", json_string(BP_VERSION_STRING));
    json_object_set_new(root, "name", json_string(m->name));
    json_object_set_new(root, "description", json_string(m->description));
    json_object_set_new(root, "config", json_string(m->config));
    json_t *in = json_object();
    json_object_set_new(in, "type", json_string(m->input_type));
    if (m->input.plugin) {
        json_object_set_new(in, "version", json_string(m->input.version));
        json_t *c = component_json(&m->input);
        json_object_set(in, "params", json_object_get(c, "params"));
        json_decref(c);
    } else {
        json_object_set_new(in, "files", json_integer((json_int_t)m->input_files));
    }
    json_object_set_new(in, "batch_size", json_integer(m->batch_size));
    json_object_set_new(root, "input", in);
    const bp_report_component *enc = encoder_of(m);
    if (enc) {
        json_t *e = json_object();
        json_object_set_new(e, "plugin", json_string(enc->plugin));
        json_object_set_new(e, "version", json_string(enc->version));
        json_object_set_new(e, "weights", weights_of(enc) ? json_string(weights_of(enc)) : json_null());
        json_object_set_new(root, "encoder", e);
    } else {
        json_object_set_new(root, "encoder", json_null());
    }
    json_t *st = json_array();
    for (uint32_t i = 0; i < m->n_stages; i++) json_array_append_new(st, component_json(&m->stages[i]));
    json_object_set_new(root, "stages", st);
    json_t *mc = json_array();
    for (uint32_t i = 0; i < m->n_metrics; i++) json_array_append_new(mc, component_json(&m->metrics[i]));
    json_object_set_new(root, "metric_plugins", mc);
    if (m->backend) {
        json_t *b = json_object();
        json_object_set_new(b, "name", json_string(m->backend));
        json_object_set_new(b, "device", json_string(m->device ? m->device : ""));
        json_object_set_new(root, "backend", b);
    } else {
        json_object_set_new(root, "backend", json_null());
    }
    json_t *cnt = json_object();
    json_object_set_new(cnt, "items", json_integer((json_int_t)m->items_total));
    json_object_set_new(cnt, "evaluated", json_integer((json_int_t)m->items_done));
    json_object_set_new(cnt, "failed", json_integer((json_int_t)m->items_failed));
    json_object_set_new(cnt, "first_failure", json_string(m->first_failure ? m->first_failure : ""));
    json_object_set_new(root, "counts", cnt);
    json_t *ms = json_array(), *ds = json_array();
    for (size_t i = 0; i < r->n_results; i++)
        json_array_append_new(bp_report_is_detail(r->results[i].r.name) ? ds : ms, result_json(&r->results[i]));
    json_object_set_new(root, "metrics", ms);
    json_object_set_new(root, "details", ds);
    json_t *fg = json_array();
    for (int i = 0; i < n_figs; i++) json_array_append_new(fg, json_string(figs[i].file));
    json_object_set_new(root, "figures", fg);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(root);
    return text;
}

/* ----------------------------------------------------------------- csv -- */

static void csv_field(bp_sbuf *o, const char *s, int last) {
    if (strpbrk(s, ",\"\n\r")) {
        bp_sbuf_printf(o, "\"");
        for (; *s; s++) bp_sbuf_printf(o, *s == '"' ? "\"\"" : "%c", *s);
        bp_sbuf_printf(o, "\"");
    } else {
        bp_sbuf_printf(o, "%s", s);
    }
    bp_sbuf_printf(o, last ? "\n" : ",");
}

static void report_csv(bp_sbuf *o, const bp_report *r) {
    bp_sbuf_printf(o, "metric,result,value,unit,note\n");
    for (size_t i = 0; i < r->n_results; i++) {
        const bp_report_result *x = &r->results[i];
        char v[64];
        if (isnan(x->r.value))
            v[0] = '\0';
        else
            snprintf(v, sizeof v, "%.12g", x->r.value);
        csv_field(o, x->metric, 0);
        csv_field(o, x->r.name, 0);
        csv_field(o, v, 0);
        csv_field(o, x->r.unit, 0);
        csv_field(o, x->r.note, 1);
    }
}

/* ------------------------------------------------------------ md, html -- */

static void md_esc(bp_sbuf *o, const char *s) {
    for (; s && *s; s++) bp_sbuf_printf(o, *s == '|' ? "\\|" : "%c", *s);
}

/* "spatial_ast 1.0.0, weights `x.safetensors`": the plugin and its non-empty path parameters. */
static void component_line(bp_sbuf *o, const bp_report_component *c, int html) {
    bp_sbuf_printf(o, "%s %s", c->plugin, c->version);
    for (uint32_t i = 0; c->params && i < c->params->count; i++) {
        const bp_param_value *v = &c->params->values[i];
        if (v->type != BP_PARAM_PATH || !v->s || !v->s[0]) continue;
        bp_sbuf_printf(o, html ? ", %s <code>" : ", %s `", v->name);
        if (html)
            bp_svg_esc(o, v->s);
        else
            md_esc(o, v->s);
        bp_sbuf_printf(o, html ? "</code>" : "`");
    }
}

static void settings_rows(bp_sbuf *o, const bp_report_component *c, int html) {
    for (uint32_t i = 0; c->params && i < c->params->count; i++) {
        bp_sbuf v = {0};
        param_text(&v, &c->params->values[i]);
        if (html) {
            bp_sbuf_printf(o, "<tr><td>%s (%s)</td><td>%s</td><td><code>", c->slot, c->plugin,
                           c->params->values[i].name);
            bp_svg_esc(o, v.s ? v.s : "");
            bp_sbuf_printf(o, "</code></td></tr>\n");
        } else {
            bp_sbuf_printf(o, "| %s (%s) | %s | `", c->slot, c->plugin, c->params->values[i].name);
            md_esc(o, v.s ? v.s : "");
            bp_sbuf_printf(o, "` |\n");
        }
        bp_sbuf_free(&v);
    }
}

/* The document in Markdown (html = 0) or HTML (html = 1, figures inline). */
static void report_doc(bp_sbuf *o, const bp_report *r, const bp_report_meta *m, const figure *figs, int n_figs,
                       int html) {
    const char *title = m->name && m->name[0] ? m->name : m->config;
    char v[64];
    if (html) {
        bp_sbuf_printf(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Evaluation: ");
        bp_svg_esc(o, title);
        bp_sbuf_printf(o, "</title>\n<style>\nbody { font-family: sans-serif; max-width: 1000px; margin: 2em auto; "
                          "color: #222; }\ntable { border-collapse: collapse; margin: 1em 0; }\n"
                          "td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }\n"
                          "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
                          "figure { margin: 2em 0; }\n</style>\n</head>\n<body>\n<h1>Evaluation: ");
        bp_svg_esc(o, title);
        bp_sbuf_printf(o, "</h1>\n");
        if (m->description && m->description[0]) {
            bp_sbuf_printf(o, "<p>");
            bp_svg_esc(o, m->description);
            bp_sbuf_printf(o, "</p>\n");
        }
        bp_sbuf_printf(o, "<table>\n<tr><th>config</th><td><code>");
        bp_svg_esc(o, m->config);
        bp_sbuf_printf(o, "</code></td></tr>\n<tr><th>input</th><td>");
        if (m->input.plugin) component_line(o, &m->input, 1);
        else bp_sbuf_printf(o, "%s: %llu files", m->input_type, (unsigned long long)m->input_files);
        bp_sbuf_printf(o, ", batches of %lld</td></tr>\n", (long long)m->batch_size);
        for (uint32_t i = 0; i < m->n_stages; i++) {
            bp_sbuf_printf(o, "<tr><th>%s</th><td>", m->stages[i].slot);
            component_line(o, &m->stages[i], 1);
            bp_sbuf_printf(o, "</td></tr>\n");
        }
        if (m->backend) {
            bp_sbuf_printf(o, "<tr><th>backend</th><td>");
            bp_svg_esc(o, m->backend);
            bp_sbuf_printf(o, ": ");
            bp_svg_esc(o, m->device);
            bp_sbuf_printf(o, "</td></tr>\n");
        }
        bp_sbuf_printf(o, "<tr><th>items</th><td>%llu evaluated of %llu (%llu failed)</td></tr>\n</table>\n",
                       (unsigned long long)m->items_done, (unsigned long long)m->items_total,
                       (unsigned long long)m->items_failed);
        bp_sbuf_printf(o, "<h2>Metrics</h2>\n<table>\n<tr><th>metric</th><th>value</th><th>unit</th>"
                          "<th>note</th></tr>\n");
        for (size_t i = 0; i < r->n_results; i++) {
            const bp_report_result *x = &r->results[i];
            if (bp_report_is_detail(x->r.name)) continue;
            const char *h = bp_report_column_header(x->r.name, NULL);
            fmt_value(v, sizeof v, x->r.value);
            bp_sbuf_printf(o, "<tr><td>");
            bp_svg_esc(o, h ? h : x->r.name);
            bp_sbuf_printf(o, " <small>(%s)</small></td><td class=\"num\">%s</td><td>", x->metric, v);
            bp_svg_esc(o, x->r.unit);
            bp_sbuf_printf(o, "</td><td>");
            bp_svg_esc(o, x->r.note);
            bp_sbuf_printf(o, "</td></tr>\n");
        }
        bp_sbuf_printf(o, "</table>\n");
        for (int i = 0; i < n_figs; i++) {
            bp_sbuf_printf(o, "<figure>\n%s<figcaption>", figs[i].svg.s ? figs[i].svg.s : "");
            bp_svg_esc(o, figs[i].title);
            bp_sbuf_printf(o, " (<a href=\"%s\">%s</a>)</figcaption>\n</figure>\n", figs[i].file, figs[i].file);
        }
    } else {
        bp_sbuf_printf(o, "# Evaluation: ");
        md_esc(o, title);
        bp_sbuf_printf(o, "\n\n");
        if (m->description && m->description[0]) bp_sbuf_printf(o, "%s\n\n", m->description);
        bp_sbuf_printf(o, "| | |\n|---|---|\n| config | `");
        md_esc(o, m->config);
        bp_sbuf_printf(o, "` |\n| input | ");
        if (m->input.plugin) component_line(o, &m->input, 0);
        else bp_sbuf_printf(o, "%s: %llu files", m->input_type, (unsigned long long)m->input_files);
        bp_sbuf_printf(o, ", batches of %lld |\n", (long long)m->batch_size);
        for (uint32_t i = 0; i < m->n_stages; i++) {
            bp_sbuf_printf(o, "| %s | ", m->stages[i].slot);
            component_line(o, &m->stages[i], 0);
            bp_sbuf_printf(o, " |\n");
        }
        if (m->backend) {
            bp_sbuf_printf(o, "| backend | ");
            md_esc(o, m->backend);
            bp_sbuf_printf(o, ": ");
            md_esc(o, m->device);
            bp_sbuf_printf(o, " |\n");
        }
        bp_sbuf_printf(o, "| items | %llu evaluated of %llu (%llu failed) |\n\n", (unsigned long long)m->items_done,
                       (unsigned long long)m->items_total, (unsigned long long)m->items_failed);
        bp_sbuf_printf(o, "## Metrics\n\n| metric | value | unit | note |\n|---|---:|---|---|\n");
        for (size_t i = 0; i < r->n_results; i++) {
            const bp_report_result *x = &r->results[i];
            if (bp_report_is_detail(x->r.name)) continue;
            const char *h = bp_report_column_header(x->r.name, NULL);
            fmt_value(v, sizeof v, x->r.value);
            bp_sbuf_printf(o, "| ");
            md_esc(o, h ? h : x->r.name);
            bp_sbuf_printf(o, " (%s) | %s | ", x->metric, v);
            md_esc(o, x->r.unit);
            bp_sbuf_printf(o, " | ");
            md_esc(o, x->r.note);
            bp_sbuf_printf(o, " |\n");
        }
        if (n_figs) bp_sbuf_printf(o, "\n## Figures\n\n");
        for (int i = 0; i < n_figs; i++) bp_sbuf_printf(o, "![%s](%s)\n\n", figs[i].title, figs[i].file);
    }
    /* per-class and other detail results */
    int any = 0;
    for (size_t i = 0; i < r->n_results; i++) any |= bp_report_is_detail(r->results[i].r.name);
    if (any) {
        bp_sbuf_printf(o, html ? "<h2>Details</h2>\n<table>\n<tr><th>metric</th><th>result</th><th>value</th>"
                                 "<th>unit</th><th>note</th></tr>\n"
                               : "\n## Details\n\n| metric | result | value | unit | note |\n|---|---|---:|---|---|\n");
        for (size_t i = 0; i < r->n_results; i++) {
            const bp_report_result *x = &r->results[i];
            if (!bp_report_is_detail(x->r.name)) continue;
            fmt_value(v, sizeof v, x->r.value);
            if (html) {
                bp_sbuf_printf(o, "<tr><td>%s</td><td>", x->metric);
                bp_svg_esc(o, x->r.name);
                bp_sbuf_printf(o, "</td><td class=\"num\">%s</td><td>", v);
                bp_svg_esc(o, x->r.unit);
                bp_sbuf_printf(o, "</td><td>");
                bp_svg_esc(o, x->r.note);
                bp_sbuf_printf(o, "</td></tr>\n");
            } else {
                bp_sbuf_printf(o, "| %s | ", x->metric);
                md_esc(o, x->r.name);
                bp_sbuf_printf(o, " | %s | ", v);
                md_esc(o, x->r.unit);
                bp_sbuf_printf(o, " | ");
                md_esc(o, x->r.note);
                bp_sbuf_printf(o, " |\n");
            }
        }
        if (html) bp_sbuf_printf(o, "</table>\n");
    }
    /* every setting */
    bp_sbuf_printf(o, html ? "<h2>Settings</h2>\n<table>\n<tr><th>component</th><th>parameter</th><th>value</th></tr>\n"
                           : "\n## Settings\n\n| component | parameter | value |\n|---|---|---|\n");
    if (m->input.plugin) settings_rows(o, &m->input, html);
    for (uint32_t i = 0; i < m->n_stages; i++) settings_rows(o, &m->stages[i], html);
    for (uint32_t i = 0; i < m->n_metrics; i++) settings_rows(o, &m->metrics[i], html);
    if (html) bp_sbuf_printf(o, "</table>\n");
    if (m->first_failure && m->first_failure[0]) {
        bp_sbuf_printf(o, html ? "<p>First failure: <code>" : "\nFirst failure: `");
        if (html) bp_svg_esc(o, m->first_failure);
        else md_esc(o, m->first_failure);
        bp_sbuf_printf(o, html ? "</code></p>\n" : "`\n");
    }
    bp_sbuf_printf(o, html ? "<p><small>batpipe %s; %s</small></p>\n</body>\n</html>\n" : "\n_batpipe %s; %s_\n",
                   BP_VERSION_STRING, "metrics: docs/metrics.md");
}

/* ---------------------------------------------------------------- write -- */

static bp_status write_text(const char *dir, const char *name, const char *text, size_t len, bp_error *err) {
    char *path = bp_strdupf("%s/%s", dir, name);
    if (!path) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = bp_write_file_atomic(path, text ? text : "", text ? len : 0, err);
    free(path);
    return st;
}

bp_status bp_report_write(const bp_report *r, const bp_report_meta *m, const char *dir, bp_error *err) {
    figure figs[3];
    memset(figs, 0, sizeof figs);
    int n_figs = 0;
    figs[n_figs] = (figure){"report_ap.svg", "Average precision per class, sorted", {0}};
    if (bp_report_plot_ap(r, &figs[n_figs].svg)) n_figs++;
    else bp_sbuf_free(&figs[n_figs].svg);
    figs[n_figs] = (figure){"report_azimuth.svg", "Predicted vs true azimuth (source 0)", {0}};
    if (bp_report_plot_azimuth(r, &figs[n_figs].svg)) n_figs++;
    else bp_sbuf_free(&figs[n_figs].svg);
    figs[n_figs] = (figure){"report_error_by_distance.svg", "Mean angular error by true distance", {0}};
    if (bp_report_plot_error_by_distance(r, &figs[n_figs].svg)) n_figs++;
    else bp_sbuf_free(&figs[n_figs].svg);
    bp_status st = BP_OK;
    for (int i = 0; i < n_figs && st == BP_OK; i++)
        st = figs[i].svg.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory")
                                : write_text(dir, figs[i].file, figs[i].svg.s, figs[i].svg.len, err);
    char *json = st == BP_OK ? report_json(r, m, figs, n_figs) : NULL;
    if (st == BP_OK && !json) st = bp_error_set(err, BP_ERR_NOMEM, "report.json: out of memory");
    if (st == BP_OK) {
        bp_sbuf j = {0};
        bp_sbuf_printf(&j, "%s\n", json);
        st = j.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory")
                      : write_text(dir, "report.json", j.s, j.len, err);
        bp_sbuf_free(&j);
    }
    free(json);
    bp_sbuf b = {0};
    if (st == BP_OK) {
        report_csv(&b, r);
        st = b.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory")
                      : write_text(dir, "report.csv", b.s, b.len, err);
    }
    bp_sbuf_free(&b);
    if (st == BP_OK) {
        report_doc(&b, r, m, figs, n_figs, 0);
        st =
            b.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory") : write_text(dir, "report.md", b.s, b.len, err);
    }
    bp_sbuf_free(&b);
    if (st == BP_OK) {
        report_doc(&b, r, m, figs, n_figs, 1);
        st = b.failed ? bp_error_set(err, BP_ERR_NOMEM, "out of memory")
                      : write_text(dir, "report.html", b.s, b.len, err);
    }
    bp_sbuf_free(&b);
    for (int i = 0; i < 3; i++) bp_sbuf_free(&figs[i].svg);
    return st;
}
