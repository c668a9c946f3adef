/* Evaluation reports: the figures, drawn with the shared SVG helpers
 * (svg.c): predicted vs true azimuth, angular error by true distance, and
 * the per-class average precision, sorted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"
#include "svg.h"

/* ------------------------------------------------------------- azimuth -- */

int bp_report_plot_azimuth(const bp_report *r, bp_sbuf *o) {
    if (!r->n_clips) return 0;
    const double W = 640, H = 640, left = 80, top = 70, size = 500;
    bp_svg_begin(o, W, H);
    char title[160];
    snprintf(title, sizeof title, "Predicted vs true azimuth (%zu clip%s)", r->n_clips, r->n_clips == 1 ? "" : "s");
    bp_svg_text(o, W / 2, 26, "middle", 18, title);
    static const char *const series[] = {"error <= 20°", "error > 20°"};
    bp_svg_legend(o, left + 10, 52, 140, 2, series);
    double base = top + size;
    for (int v = 0; v <= 360; v += 45) {
        double x = left + size * v / 360.0, y = base - size * v / 360.0;
        bp_svg_line(o, x, top, x, base, "#ddd");
        bp_svg_line(o, left, y, left + size, y, "#ddd");
        if (v % 90 == 0) {
            char lab[16];
            snprintf(lab, sizeof lab, "%d", v);
            bp_svg_text(o, x, base + 16, "middle", 11, lab);
            bp_svg_text(o, left - 6, y + 4, "end", 11, lab);
        }
    }
    bp_svg_line(o, left, base, left + size, top, "#999");
    bp_svg_line(o, left, base, left + size, base, "black");
    bp_svg_line(o, left, base, left, top, "black");
    for (size_t i = 0; i < r->n_clips; i++) {
        const bp_report_clip *c = &r->clips[i];
        double x = left + size * (c->az_true + 0.5) / 360.0, y = base - size * (c->az_pred + 0.5) / 360.0;
        bp_svg_dot(o, x, y, 2.5, bp_svg_colour(c->err_deg > 20.0), 0.6);
    }
    bp_svg_text(o, left + size / 2, base + 36, "middle", 12,
                "true azimuth (deg): 0 right, 90 front, 180 left, 270 behind");
    bp_svg_text_vertical(o, left - 45, top + size / 2, 12, "predicted azimuth (deg)");
    bp_svg_end(o);
    return 1;
}

/* --------------------------------------------------- error by distance -- */

int bp_report_plot_error_by_distance(const bp_report *r, bp_sbuf *o) {
    int32_t lo = -1, hi = -1;
    for (size_t i = 0; i < r->n_clips; i++) {
        int32_t d = r->clips[i].dist_true;
        if (d < 0 || d > 1000) continue;
        if (lo < 0 || d < lo) lo = d;
        if (d > hi) hi = d;
    }
    if (lo < 0) return 0;
    uint32_t nb = (uint32_t)(hi - lo + 1);
    double *sum = calloc(nb, sizeof *sum);
    uint64_t *cnt = calloc(nb, sizeof *cnt);
    if (!sum || !cnt) {
        free(sum), free(cnt);
        return 0;
    }
    for (size_t i = 0; i < r->n_clips; i++) {
        int32_t d = r->clips[i].dist_true;
        if (d < lo || d > hi) continue;
        sum[d - lo] += r->clips[i].err_deg;
        cnt[d - lo]++;
    }
    double max = 20;
    for (uint32_t b = 0; b < nb; b++)
        if (cnt[b] && sum[b] / (double)cnt[b] > max) max = sum[b] / (double)cnt[b];
    const double W = 960, H = 420, left = 80, right = 20, top = 50, plot_h = 300;
    double plot_w = W - left - right, base = top + plot_h, bw = plot_w / nb;
    double step = bp_svg_nice_step(max), top_v = step * ceil(max / step);
    bp_svg_begin(o, W, H);
    bp_svg_text(o, W / 2, 26, "middle", 18, "Mean angular error by true distance");
    for (double v = 0; v <= top_v + 1e-9; v += step) {
        double y = base - plot_h * v / top_v;
        char lab[32];
        bp_svg_fmt_num(lab, sizeof lab, v);
        bp_svg_line(o, left, y, left + plot_w, y, "#ddd");
        bp_svg_text(o, left - 6, y + 4, "end", 11, lab);
    }
    for (uint32_t b = 0; b < nb; b++) {
        char lab[32];
        snprintf(lab, sizeof lab, "%.1f", (lo + (int32_t)b) * 0.5);
        bp_svg_text(o, left + (b + 0.5) * bw, base + 16, "middle", 10, lab);
        if (!cnt[b]) continue;
        double v = sum[b] / (double)cnt[b], h = plot_h * v / top_v;
        bp_svg_rect(o, left + b * bw + bw * 0.1, base - h, bw * 0.8, h, bp_svg_colour(0));
        snprintf(lab, sizeof lab, "n=%llu", (unsigned long long)cnt[b]);
        bp_svg_text(o, left + (b + 0.5) * bw, base - h - 4, "middle", 9, lab);
    }
    double y20 = base - plot_h * 20.0 / top_v;
    bp_sbuf_printf(o,
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6 4\"/>\n",
                   left, y20, left + plot_w, y20, bp_svg_colour(1));
    bp_svg_text(o, left + plot_w - 4, y20 - 4, "end", 11, "20 deg (ER20 threshold)");
    bp_svg_line(o, left, base, left + plot_w, base, "black");
    bp_svg_text(o, left + plot_w / 2, base + 36, "middle", 12, "true distance (m), 0.5 m classes");
    bp_svg_text_vertical(o, left - 45, base - plot_h / 2, 12, "mean angular error (deg)");
    bp_svg_end(o);
    free(sum), free(cnt);
    return 1;
}

/* ------------------------------------------------------------------ AP -- */

typedef struct ap_bar {
    const char *label;
    double value;
    size_t order;
} ap_bar;

static int by_ap_desc(const void *a, const void *b) {
    const ap_bar *x = a, *y = b;
    int xn = isnan(x->value), yn = isnan(y->value);
    if (xn != yn) return xn - yn;
    if (!xn && x->value != y->value) return x->value < y->value ? 1 : -1;
    return (x->order > y->order) - (x->order < y->order);
}

int bp_report_plot_ap(const bp_report *r, bp_sbuf *o) {
    const char *metric = NULL;
    double map = NAN;
    size_t n = 0;
    for (size_t i = 0; i < r->n_results; i++)
        if (strncmp(r->results[i].r.name, "AP/", 3) == 0 && (!metric || strcmp(metric, r->results[i].metric) == 0)) {
            metric = r->results[i].metric;
            n++;
        }
    if (!n) return 0;
    ap_bar *bars = calloc(n, sizeof *bars);
    if (!bars) return 0;
    size_t k = 0;
    for (size_t i = 0; i < r->n_results; i++) {
        const bp_report_result *x = &r->results[i];
        if (strcmp(x->metric, metric) != 0) continue;
        if (strcmp(x->r.name, "mAP") == 0) map = x->r.value;
        if (strncmp(x->r.name, "AP/", 3) == 0 && k < n) bars[k] = (ap_bar){x->r.name + 3, x->r.value, k}, k++;
    }
    qsort(bars, n, sizeof *bars, by_ap_desc);
    const double W = 960, row = 16, top = 84, left = 260, right = 80;
    double H = top + n * row + 40, plot_w = W - left - right;
    bp_svg_begin(o, W, H);
    char title[160];
    if (isnan(map))
        snprintf(title, sizeof title, "Average precision per class (%zu classes)", n);
    else
        snprintf(title, sizeof title, "Average precision per class (%zu classes, mAP %.2f %%)", n, map);
    bp_svg_text(o, W / 2, 26, "middle", 18, title);
    for (int v = 0; v <= 100; v += 20) {
        double x = left + plot_w * v / 100.0;
        char lab[16];
        snprintf(lab, sizeof lab, "%d", v);
        bp_svg_line(o, x, top - 6, x, top + n * row, "#ddd");
        bp_svg_text(o, x, top - 10, "middle", 10, lab);
    }
    bp_svg_text(o, left + plot_w / 2, top - 28, "middle", 12, "AP (%), sorted");
    for (size_t i = 0; i < n; i++) {
        double y = top + i * row;
        bp_svg_text(o, left - 6, y + row * 0.75, "end", 11, bars[i].label);
        char lab[32];
        if (isnan(bars[i].value)) {
            bp_svg_text(o, left + 4, y + row * 0.75, "start", 10, "no positives");
            continue;
        }
        double w = plot_w * fmax(0, fmin(100, bars[i].value)) / 100.0;
        bp_svg_rect(o, left, y + 2, w, row - 4, bp_svg_colour(0));
        snprintf(lab, sizeof lab, "%.1f", bars[i].value);
        bp_svg_text(o, left + w + 4, y + row * 0.75, "start", 10, lab);
    }
    bp_svg_end(o);
    free(bars);
    return 1;
}
