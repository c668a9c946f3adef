/* synth: SVG figures of the summary (histograms and bar charts), written by
 * hand so that no plotting dependency is needed. Counts are shown as the
 * share of each series (train, eval) so that splits of different sizes
 * compare at a glance. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synth_internal.h"

static const char *const colours[2] = {"#3b6ea8", "#e08a2c"};

static void esc(bp_sbuf *o, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': bp_sbuf_printf(o, "&amp;"); break;
        case '<': bp_sbuf_printf(o, "&lt;"); break;
        case '>': bp_sbuf_printf(o, "&gt;"); break;
        case '"': bp_sbuf_printf(o, "&quot;"); break;
        default: bp_sbuf_printf(o, "%c", *s);
        }
    }
}

static void text(bp_sbuf *o, double x, double y, const char *anchor, int size, const char *s) {
    bp_sbuf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\">", x, y, anchor, size);
    esc(o, s);
    bp_sbuf_printf(o, "</text>\n");
}

/* A step of 1, 2 or 5 × 10^k giving about 4–6 ticks up to `max`. */
static double nice_step(double max) {
    if (!(max > 0)) return 1;
    double raw = max / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_num(char *buf, size_t cap, double v) {
    if (fabs(v - round(v)) < 1e-9)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.3g", v);
}

static void legend(bp_sbuf *o, double x, double y, uint32_t n, const char *const *series) {
    for (uint32_t s = 0; s < n && series; s++) {
        bp_sbuf_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x + 90.0 * s,
                       y - 10, colours[s % 2]);
        text(o, x + 90.0 * s + 16, y, "start", 12, series[s]);
    }
}

void synth_svg_panels(bp_sbuf *o, const char *title, const synth_panel *panels, uint32_t n) {
    const double W = 960, ph = 230, top = 50, left = 70, right = 20;
    double H = top + n * (ph + 30) + 10;
    bp_sbuf_printf(o,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                   W, H, W, H);
    text(o, W / 2, 24, "middle", 18, title);
    if (n) legend(o, W - 200, 24, panels[0].n_series, panels[0].series);
    for (uint32_t p = 0; p < n; p++) {
        const synth_panel *pn = &panels[p];
        double y0 = top + p * (ph + 30), plot_h = ph - 60, plot_w = W - left - right, base = y0 + 25 + plot_h;
        text(o, W / 2, y0 + 14, "middle", 14, pn->title);
        /* shares per series */
        double max = 0, totals[2] = {0, 0};
        for (uint32_t s = 0; s < pn->n_series && s < 2; s++)
            for (uint32_t b = 0; b < pn->n_bins; b++) totals[s] += pn->counts[s * pn->n_bins + b];
        for (uint32_t s = 0; s < pn->n_series && s < 2; s++)
            for (uint32_t b = 0; b < pn->n_bins; b++) {
                double v = totals[s] > 0 ? 100.0 * pn->counts[s * pn->n_bins + b] / totals[s] : 0;
                if (v > max) max = v;
            }
        double step = nice_step(max), top_v = step * ceil(max / step);
        if (!(top_v > 0)) top_v = 1;
        /* axes and grid */
        for (double v = 0; v <= top_v + 1e-9; v += step) {
            double y = base - plot_h * v / top_v;
            char lab[32];
            fmt_num(lab, sizeof lab, v);
            bp_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y,
                           left + plot_w, y);
            text(o, left - 6, y + 4, "end", 11, lab);
        }
        bp_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, base,
                       left + plot_w, base);
        bp_sbuf_printf(
            o,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 %.1f "
            "%.1f)\">",
            left - 45, base - plot_h / 2, left - 45, base - plot_h / 2);
        esc(o, pn->ylabel ? pn->ylabel : "%");
        bp_sbuf_printf(o, "</text>\n");
        double bw = plot_w / (pn->n_bins ? pn->n_bins : 1);
        uint32_t ns = pn->n_series ? (pn->n_series > 2 ? 2 : pn->n_series) : 1;
        for (uint32_t b = 0; b < pn->n_bins; b++)
            for (uint32_t s = 0; s < ns; s++) {
                double v = totals[s] > 0 ? 100.0 * pn->counts[s * pn->n_bins + b] / totals[s] : 0;
                double h = plot_h * v / top_v, w = bw * 0.8 / ns;
                bp_sbuf_printf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
                               left + b * bw + bw * 0.1 + s * w, base - h, w, h, colours[s]);
            }
        /* x ticks */
        uint32_t every = pn->tick_every ? pn->tick_every : 1;
        for (uint32_t b = 0; b <= pn->n_bins; b++) {
            if (pn->bin_labels) {
                if (b < pn->n_bins && b % every == 0)
                    text(o, left + (b + 0.5) * bw, base + 14, "middle", 10, pn->bin_labels[b]);
                continue;
            }
            if (b % every) continue;
            char lab[32];
            fmt_num(lab, sizeof lab, pn->x0 + b * pn->dx);
            bp_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                           left + b * bw, base, left + b * bw, base + 4);
            text(o, left + b * bw, base + 16, "middle", 10, lab);
        }
        text(o, left + plot_w / 2, base + 32, "middle", 12, pn->xlabel);
    }
    bp_sbuf_printf(o, "</svg>\n");
}

void synth_svg_hbars(bp_sbuf *o, const char *title, const char *const *names, const double *counts, uint32_t n,
                     uint32_t n_series, const char *const *series) {
    const double W = 960, row = 20, top = 60, left = 260, right = 90;
    double H = top + n * row + 40;
    uint32_t ns = n_series > 2 ? 2 : (n_series ? n_series : 1);
    bp_sbuf_printf(o,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                   W, H, W, H);
    text(o, W / 2, 24, "middle", 18, title);
    legend(o, W - 200, 24, ns, series);
    double totals[2] = {0, 0}, max = 0;
    for (uint32_t s = 0; s < ns; s++)
        for (uint32_t i = 0; i < n; i++) totals[s] += counts[s * n + i];
    for (uint32_t s = 0; s < ns; s++)
        for (uint32_t i = 0; i < n; i++) {
            double v = totals[s] > 0 ? 100.0 * counts[s * n + i] / totals[s] : 0;
            if (v > max) max = v;
        }
    double step = nice_step(max), top_v = step * ceil(max / step);
    if (!(top_v > 0)) top_v = 1;
    double plot_w = W - left - right;
    for (double v = 0; v <= top_v + 1e-9; v += step) {
        double x = left + plot_w * v / top_v;
        char lab[32];
        fmt_num(lab, sizeof lab, v);
        bp_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, top - 6, x,
                       top + n * row);
        text(o, x, top - 10, "middle", 10, lab);
    }
    text(o, left + plot_w / 2, top + n * row + 24, "middle", 12,
         "% of sources (count for the first series at the bar end)");
    for (uint32_t i = 0; i < n; i++) {
        double y = top + i * row;
        text(o, left - 6, y + row * 0.7, "end", 11, names[i]);
        for (uint32_t s = 0; s < ns; s++) {
            double v = totals[s] > 0 ? 100.0 * counts[s * n + i] / totals[s] : 0;
            double h = (row - 4) / ns;
            bp_sbuf_printf(o, "<rect x=\"%.1f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n", left,
                           y + 2 + s * h, plot_w * v / top_v, h, colours[s]);
            if (s == 0) {
                char lab[32];
                snprintf(lab, sizeof lab, "%.0f", counts[i]);
                text(o, left + plot_w * v / top_v + 4, y + 2 + h * 0.9, "start", 10, lab);
            }
        }
    }
    bp_sbuf_printf(o, "</svg>\n");
}
