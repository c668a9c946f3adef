/* synth: SVG figures of the summary (histograms and bar charts), drawn with
 * the shared helpers of svg.c so that no plotting dependency is needed.
 * Counts are shown as the share of each series (train, eval) so that splits
 * of different sizes compare at a glance. */
#include <math.h>
#include <stdio.h>

#include "svg.h"
#include "synth_internal.h"

void synth_svg_panels(bp_sbuf *o, const char *title, const synth_panel *panels, uint32_t n) {
    const double W = 960, ph = 230, top = 50, left = 70, right = 20;
    double H = top + n * (ph + 30) + 10;
    bp_svg_begin(o, W, H);
    bp_svg_text(o, W / 2, 24, "middle", 18, title);
    if (n) bp_svg_legend(o, W - 200, 24, 90, panels[0].n_series, panels[0].series);
    for (uint32_t p = 0; p < n; p++) {
        const synth_panel *pn = &panels[p];
        double y0 = top + p * (ph + 30), plot_h = ph - 60, plot_w = W - left - right, base = y0 + 25 + plot_h;
        bp_svg_text(o, W / 2, y0 + 14, "middle", 14, pn->title);
        /* shares per series */
        double max = 0, totals[2] = {0, 0};
        for (uint32_t s = 0; s < pn->n_series && s < 2; s++)
            for (uint32_t b = 0; b < pn->n_bins; b++) totals[s] += pn->counts[s * pn->n_bins + b];
        for (uint32_t s = 0; s < pn->n_series && s < 2; s++)
            for (uint32_t b = 0; b < pn->n_bins; b++) {
                double v = totals[s] > 0 ? 100.0 * pn->counts[s * pn->n_bins + b] / totals[s] : 0;
                if (v > max) max = v;
            }
        double step = bp_svg_nice_step(max), top_v = step * ceil(max / step);
        if (!(top_v > 0)) top_v = 1;
        /* axes and grid */
        for (double v = 0; v <= top_v + 1e-9; v += step) {
            double y = base - plot_h * v / top_v;
            char lab[32];
            bp_svg_fmt_num(lab, sizeof lab, v);
            bp_svg_line(o, left, y, left + plot_w, y, "#ddd");
            bp_svg_text(o, left - 6, y + 4, "end", 11, lab);
        }
        bp_svg_line(o, left, base, left + plot_w, base, "black");
        bp_svg_text_vertical(o, left - 45, base - plot_h / 2, 11, pn->ylabel ? pn->ylabel : "%");
        double bw = plot_w / (pn->n_bins ? pn->n_bins : 1);
        uint32_t ns = pn->n_series ? (pn->n_series > 2 ? 2 : pn->n_series) : 1;
        for (uint32_t b = 0; b < pn->n_bins; b++)
            for (uint32_t s = 0; s < ns; s++) {
                double v = totals[s] > 0 ? 100.0 * pn->counts[s * pn->n_bins + b] / totals[s] : 0;
                double h = plot_h * v / top_v, w = bw * 0.8 / ns;
                bp_svg_rect(o, left + b * bw + bw * 0.1 + s * w, base - h, w, h, bp_svg_colour(s));
            }
        /* x ticks */
        uint32_t every = pn->tick_every ? pn->tick_every : 1;
        for (uint32_t b = 0; b <= pn->n_bins; b++) {
            if (pn->bin_labels) {
                if (b < pn->n_bins && b % every == 0)
                    bp_svg_text(o, left + (b + 0.5) * bw, base + 14, "middle", 10, pn->bin_labels[b]);
                continue;
            }
            if (b % every) continue;
            char lab[32];
            bp_svg_fmt_num(lab, sizeof lab, pn->x0 + b * pn->dx);
            bp_svg_line(o, left + b * bw, base, left + b * bw, base + 4, "black");
            bp_svg_text(o, left + b * bw, base + 16, "middle", 10, lab);
        }
        bp_svg_text(o, left + plot_w / 2, base + 32, "middle", 12, pn->xlabel);
    }
    bp_svg_end(o);
}

void synth_svg_hbars(bp_sbuf *o, const char *title, const char *const *names, const double *counts, uint32_t n,
                     uint32_t n_series, const char *const *series) {
    const double W = 960, row = 20, top = 60, left = 260, right = 90;
    double H = top + n * row + 40;
    uint32_t ns = n_series > 2 ? 2 : (n_series ? n_series : 1);
    bp_svg_begin(o, W, H);
    bp_svg_text(o, W / 2, 24, "middle", 18, title);
    bp_svg_legend(o, W - 200, 24, 90, ns, series);
    double totals[2] = {0, 0}, max = 0;
    for (uint32_t s = 0; s < ns; s++)
        for (uint32_t i = 0; i < n; i++) totals[s] += counts[s * n + i];
    for (uint32_t s = 0; s < ns; s++)
        for (uint32_t i = 0; i < n; i++) {
            double v = totals[s] > 0 ? 100.0 * counts[s * n + i] / totals[s] : 0;
            if (v > max) max = v;
        }
    double step = bp_svg_nice_step(max), top_v = step * ceil(max / step);
    if (!(top_v > 0)) top_v = 1;
    double plot_w = W - left - right;
    for (double v = 0; v <= top_v + 1e-9; v += step) {
        double x = left + plot_w * v / top_v;
        char lab[32];
        bp_svg_fmt_num(lab, sizeof lab, v);
        bp_svg_line(o, x, top - 6, x, top + n * row, "#ddd");
        bp_svg_text(o, x, top - 10, "middle", 10, lab);
    }
    bp_svg_text(o, left + plot_w / 2, top + n * row + 24, "middle", 12,
                "% of sources (count for the first series at the bar end)");
    for (uint32_t i = 0; i < n; i++) {
        double y = top + i * row;
        bp_svg_text(o, left - 6, y + row * 0.7, "end", 11, names[i]);
        for (uint32_t s = 0; s < ns; s++) {
            double v = totals[s] > 0 ? 100.0 * counts[s * n + i] / totals[s] : 0;
            double h = (row - 4) / ns;
            bp_svg_rect(o, left, y + 2 + s * h, plot_w * v / top_v, h, bp_svg_colour(s));
            if (s == 0) {
                char lab[32];
                snprintf(lab, sizeof lab, "%.0f", counts[i]);
                bp_svg_text(o, left + plot_w * v / top_v + 4, y + 2 + h * 0.9, "start", 10, lab);
            }
        }
    }
    bp_svg_end(o);
}
