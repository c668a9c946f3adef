/* Internal: a small hand-written SVG toolkit (text, lines, rectangles,
 * circles, "nice" axis steps, a two-colour palette) shared by the figures of
 * the synth summary (synth_plot.c) and of evaluation reports
 * (report_plot.c), so that no plotting dependency is needed. Everything is
 * appended to a bp_sbuf; numbers are printed with fixed precision so that
 * the same data always gives the same bytes. */
#ifndef BP_SVG_H
#define BP_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Series colours: 0 blue, 1 orange (further indices cycle). */
const char *bp_svg_colour(uint32_t i);

/* "<svg ...>" of width × height with a white background, and its end. */
void bp_svg_begin(bp_sbuf *o, double width, double height);
void bp_svg_end(bp_sbuf *o);

/* Append `s` with &, <, >, " escaped (also right for HTML text). */
void bp_svg_esc(bp_sbuf *o, const char *s);
/* A text element; anchor is "start", "middle" or "end". */
void bp_svg_text(bp_sbuf *o, double x, double y, const char *anchor, int size, const char *s);
/* Text rotated by −90° about (x, y) (a y-axis label). */
void bp_svg_text_vertical(bp_sbuf *o, double x, double y, int size, const char *s);
void bp_svg_line(bp_sbuf *o, double x1, double y1, double x2, double y2, const char *stroke);
void bp_svg_rect(bp_sbuf *o, double x, double y, double w, double h, const char *fill);
/* A filled circle with an opacity (scatter plots). */
void bp_svg_dot(bp_sbuf *o, double x, double y, double r, const char *fill, double opacity);
/* Coloured squares with labels in a row starting at (x, y), `spacing` apart. */
void bp_svg_legend(bp_sbuf *o, double x, double y, double spacing, uint32_t n, const char *const *series);

/* A step of 1, 2 or 5 × 10^k giving about 4–6 ticks up to `max`. */
double bp_svg_nice_step(double max);
/* An integer without decimals, otherwise three significant digits. */
void bp_svg_fmt_num(char *buf, size_t cap, double v);

#endif
