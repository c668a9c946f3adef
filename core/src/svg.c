/* A small hand-written SVG toolkit shared by the synth summary figures and
 * the evaluation report figures (see svg.h). */
#include "svg.h"

#include <math.h>
#include <stdio.h>

static const char *const colours[2] = {"#3b6ea8", "#e08a2c"};

const char *bp_svg_colour(uint32_t i) { return colours[i % 2]; }

void bp_svg_begin(bp_sbuf *o, double w, double h) {
    bp_sbuf_printf(o,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                   w, h, w, h);
}

void bp_svg_end(bp_sbuf *o) { bp_sbuf_printf(o, "</svg>\n"); }

void bp_svg_esc(bp_sbuf *o, const char *s) {
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

void bp_svg_text(bp_sbuf *o, double x, double y, const char *anchor, int size, const char *s) {
    bp_sbuf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\">", x, y, anchor, size);
    bp_svg_esc(o, s);
    bp_sbuf_printf(o, "</text>\n");
}

void bp_svg_text_vertical(bp_sbuf *o, double x, double y, int size, const char *s) {
    bp_sbuf_printf(o,
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\" transform=\"rotate(-90 %.1f "
                   "%.1f)\">",
                   x, y, size, x, y);
    bp_svg_esc(o, s);
    bp_sbuf_printf(o, "</text>\n");
}

void bp_svg_line(bp_sbuf *o, double x1, double y1, double x2, double y2, const char *stroke) {
    bp_sbuf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x1, y1, x2, y2,
                   stroke);
}

void bp_svg_rect(bp_sbuf *o, double x, double y, double w, double h, const char *fill) {
    bp_sbuf_printf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n", x, y, w, h, fill);
}

void bp_svg_dot(bp_sbuf *o, double x, double y, double r, const char *fill, double opacity) {
    bp_sbuf_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n", x, y, r, fill,
                   opacity);
}

void bp_svg_legend(bp_sbuf *o, double x, double y, double spacing, uint32_t n, const char *const *series) {
    for (uint32_t s = 0; s < n && series; s++) {
        bp_sbuf_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x + spacing * s,
                       y - 10, bp_svg_colour(s));
        bp_svg_text(o, x + spacing * s + 16, y, "start", 12, series[s]);
    }
}

double bp_svg_nice_step(double max) {
    if (!(max > 0)) return 1;
    double raw = max / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

void bp_svg_fmt_num(char *buf, size_t cap, double v) {
    if (fabs(v - round(v)) < 1e-9)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.3g", v);
}
