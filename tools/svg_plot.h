/*
 * svg_plot.h - a small SVG line-plot writer for the CLI: the SCALAR curves
 * (KL divergence against the number of kept edges, log x) for several
 * variants, each a line over a shaded confidence band.
 *
 * No dependencies and no global state: the picture is built in one growing
 * buffer, every number is formatted by hand (no locale decimal comma), and
 * each point costs constant work, so a million points are fine.
 *
 * What is drawn: a frame, nice-number ticks and a light grid (1-2-5 steps on
 * a linear axis; decades, with minor ticks at 2..9, on a log10 axis, labelled
 * 0.01, 0.1, 1, 10, 100, 1e3, 1e4, ...), the axis labels, the title, the
 * bands of every series (a filled polygon, opacity 0.2) under the lines of
 * every series, a dot for a point that has no valid neighbour, and a legend
 * in the plot corner with the fewest points.  Colours cycle through the
 * Okabe-Ito palette (dashed after the first 8 series).
 *
 * A point is skipped, breaking its line, when x or y is NaN or infinite, or
 * not positive on a log axis; a band point likewise when x, lo or hi is.  The
 * axis ranges cover the valid points and band edges, padded by 3%; a range of
 * one value (or none) is widened so the plot is never degenerate.
 */
#ifndef SCALAR_TOOLS_SVG_PLOT_H
#define SCALAR_TOOLS_SVG_PLOT_H

#include <stdint.h>

/* One curve.  All arrays are borrowed for the call and hold n values; x and
 * y may be NULL only when n is 0.  The band is drawn only when both lo and hi
 * are given. */
typedef struct svg_series {
    const char *label;     /* legend text, XML-escaped on output; NULL or "" = not in the legend */
    const double *x, *y;   /* [n] */
    const double *lo, *hi; /* [n] band edges, or NULL (no band) */
    int64_t n;
} svg_series;

/* The picture.  Strings may be NULL (not drawn). */
typedef struct svg_plot {
    const char *title, *x_label, *y_label;
    int log_x, log_y; /* 1: log10 axis */
    int width, height; /* pixels, 200..10000 x 150..10000; 0 = 720 x 440 */
} svg_plot;

#define SVG_PLOT_WIDTH 720
#define SVG_PLOT_HEIGHT 440

/* The SVG document for `n_series` series `s` (s may be NULL when n_series is
 * 0), malloc'ed and NUL-terminated: starts with "<svg", ends with "</svg>\n".
 * NULL on bad input or out of memory, with a static reason in *why when why
 * is not NULL. */
char *svg_plot_render(const svg_plot *p, const svg_series *s, int n_series, const char **why);

/* svg_plot_render, then cli_write_atomic to `path`: 0, or -1 (nothing
 * written, no temp file left) on bad input or a failed write. */
int svg_plot_write(const char *path, const svg_plot *p, const svg_series *s, int n_series);

#endif /* SCALAR_TOOLS_SVG_PLOT_H */
