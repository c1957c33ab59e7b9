/*
 * svg_plot.c - SVG line plots with confidence bands (see svg_plot.h).
 *
 * The document is appended to one growing buffer; an allocation failure
 * sets a flag that every later append checks, so the drawing code needs no
 * error paths.  Floating-point numbers never go through printf's %f/%g (their
 * decimal point follows LC_NUMERIC): pixel coordinates are printed as
 * integers of hundredths, tick labels from the digits of an integer.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_dir.h"
#include "strbuf.h"
#include "svg_plot.h"

/* Text content or attribute value: the five XML specials as entities, other
 * control characters (invalid in XML 1.0, or line breaks) as spaces. */
static void sb_escape(strbuf *b, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        switch (c) {
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '&': sb_puts(b, "&amp;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&apos;"); break;
        default:
            if ((unsigned char)c < 0x20)
                c = ' ';
            sb_put(b, &c, 1);
        }
    }
}

/* ---- numbers, without the locale ---- */

/* A pixel coordinate with at most two decimals ("12", "12.5", "-0.25"). */
static void sb_coord(strbuf *b, double v)
{
    if (!(v > -1e7)) /* also NaN; cannot happen for points inside the range */
        v = -1e7;
    if (v > 1e7)
        v = 1e7;
    long long c = llround(v * 100.0);
    const char *sign = c < 0 ? "-" : "";
    c = c < 0 ? -c : c;
    char t[40];
    int n;
    if (c % 100 == 0)
        n = snprintf(t, sizeof t, "%s%lld", sign, c / 100);
    else if (c % 10 == 0)
        n = snprintf(t, sizeof t, "%s%lld.%lld", sign, c / 100, c % 100 / 10);
    else
        n = snprintf(t, sizeof t, "%s%lld.%02lld", sign, c / 100, c % 100);
    sb_put(b, t, (size_t)n);
}

static double scale10(double v, int k)
{
    return v * pow(10.0, k / 2) * pow(10.0, k - k / 2);
}

/* v with `prec` significant digits (1..12), trailing zeros dropped, in fixed
 * notation when its decimal exponent is within [e_lo, e_hi], else as
 * "1.5e-7" / "1e3" (no '+', no leading zeros).  out holds 48 bytes. */
static void fmt_num(char *out, double v, int prec, int e_lo, int e_hi)
{
    char *o = out;
    if (!isfinite(v) || v == 0) {
        strcpy(out, "0");
        return;
    }
    prec = prec < 1 ? 1 : prec > 12 ? 12 : prec;
    if (v < 0) {
        *o++ = '-';
        v = -v;
    }
    long long p10 = 1;
    for (int i = 1; i < prec; i++)
        p10 *= 10;
    int e = (int)floor(log10(v));
    long long m = llround(scale10(v, prec - 1 - e));
    if (m >= p10 * 10 || m < p10) { /* log10 was off by one */
        e += m >= p10 * 10 ? 1 : -1;
        m = llround(scale10(v, prec - 1 - e));
    }
    if (m >= p10 * 10) { /* 9.9999996 -> 10.0000 */
        m /= 10;
        e++;
    }
    char dig[24];
    snprintf(dig, sizeof dig, "%lld", m);
    int nd = (int)strlen(dig);
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (e < e_lo || e > e_hi) {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        snprintf(o, 12, "e%d", e);
        return;
    }
    if (e < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++)
            *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else {
        for (int i = 0; i <= e; i++)
            *o++ = i < nd ? dig[i] : '0';
        if (nd > e + 1) {
            *o++ = '.';
            memcpy(o, dig + e + 1, (size_t)(nd - e - 1));
            o += nd - e - 1;
        }
    }
    *o = '\0';
}

/* ---- axes ---- */

typedef struct axis {
    int log;
    double lo, hi; /* the range, in log10 units on a log axis */
    double p0, p1; /* pixel positions of lo and hi */
} axis;

static int valid(const axis *a, double v)
{
    return isfinite(v) && (!a->log || v > 0);
}

static double tval(const axis *a, double v)
{
    return a->log ? log10(v) : v;
}

/* Position of transformed value t in the range, 0..1 (halved: no overflow). */
static double frac(const axis *a, double t)
{
    return (t * 0.5 - a->lo * 0.5) / (a->hi * 0.5 - a->lo * 0.5);
}

static double pix(const axis *a, double v)
{
    return a->p0 + frac(a, tval(a, v)) * (a->p1 - a->p0);
}

/* The range of the valid values lo..hi (lo > hi: none), padded by 3%. */
static void set_range(axis *a, double lo, double hi)
{
    if (lo > hi) { /* no data: 0..1, or 1..10 on a log axis */
        a->lo = 0;
        a->hi = 1;
        return;
    }
    lo = tval(a, lo);
    hi = tval(a, hi);
    double pad = lo == hi ? (a->log ? 0.5 : lo != 0 ? fabs(lo) * 0.1 : 1.0)
                          : (hi * 0.5 - lo * 0.5) * 0.06;
    lo -= pad;
    hi += pad;
    if (!(lo >= -DBL_MAX))
        lo = -DBL_MAX;
    if (!(hi <= DBL_MAX))
        hi = DBL_MAX;
    if (!(hi * 0.5 - lo * 0.5 > 0)) { /* a span that underflowed */
        lo -= 1;
        hi += 1;
    }
    a->lo = lo;
    a->hi = hi;
}

static int point_ok(const axis *ax, const axis *ay, const svg_series *s, int64_t i)
{
    return valid(ax, s->x[i]) && valid(ay, s->y[i]);
}

static int band_ok(const axis *ax, const axis *ay, const svg_series *s, int64_t i)
{
    return valid(ax, s->x[i]) && valid(ay, s->lo[i]) && valid(ay, s->hi[i]);
}

static void widen(double *lo, double *hi, double v)
{
    if (v < *lo)
        *lo = v;
    if (v > *hi)
        *hi = v;
}

static void data_range(axis *ax, axis *ay, const svg_series *s, int n_series)
{
    double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            if (point_ok(ax, ay, &s[k], i)) {
                widen(&xl, &xh, s[k].x[i]);
                widen(&yl, &yh, s[k].y[i]);
            }
            if (s[k].lo && s[k].hi && band_ok(ax, ay, &s[k], i)) {
                widen(&xl, &xh, s[k].x[i]);
                widen(&yl, &yh, s[k].lo[i]);
                widen(&yl, &yh, s[k].hi[i]);
            }
        }
    set_range(ax, xl, xh);
    set_range(ay, yl, yh);
}

/* ---- ticks ---- */

#define MAX_TICKS 160

typedef struct tick {
    double f; /* position in the range, 0..1 */
    int major;
    char label[48]; /* "" for a minor tick */
} tick;

typedef struct ticks {
    tick v[MAX_TICKS];
    int n;
} ticks;

/* A tick at transformed value t, if it lies in the range. */
static void add_tick(ticks *tk, const axis *a, double t, int major, const char *label)
{
    double f = frac(a, t);
    if (!(f >= -1e-9 && f <= 1 + 1e-9) || tk->n >= MAX_TICKS)
        return;
    tick *k = &tk->v[tk->n++];
    k->f = f < 0 ? 0 : f > 1 ? 1 : f;
    k->major = major;
    snprintf(k->label, sizeof k->label, "%s", label ? label : "");
}

/* Ticks at the multiples of a 1-2-5 step between values vlo < vhi (raw
 * values: on a log axis they are placed by their log). */
static void linear_ticks(ticks *tk, const axis *a, double vlo, double vhi)
{
    double raw = (vhi * 0.5 - vlo * 0.5) / 2.5; /* a fifth of the span */
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag; /* 1..10, rounded to 1, 2, 5 or 10 in log scale: 4 to 9 ticks */
    double step = (r < 1.4142 ? 1 : r < 3.1623 ? 2 : r < 7.0711 ? 5 : 10) * mag;
    if (!(step > 0) || !isfinite(step))
        return;
    double k0 = ceil(vlo / step - 1e-9), k1 = floor(vhi / step + 1e-9); /* 3.3 / 0.1 < 33 */
    double big = fmax(fabs(vlo), fabs(vhi));
    int prec = (int)floor(log10(big)) - (int)floor(log10(step) + 1e-9) + 1;
    prec = prec < 1 ? 1 : prec > 12 ? 12 : prec;
    char lab[48];
    for (int i = 0; i < 64 && k0 + i <= k1; i++) {
        double v = (k0 + i) * step;
        v = v == 0 ? 0 : v; /* no "-0" */
        fmt_num(lab, v, prec, -4, prec > 6 ? prec - 1 : 5);
        add_tick(tk, a, tval(a, v), 1, lab);
    }
}

/* Decades (thinned to at most 8 labels) with minor ticks at 2..9; under two
 * decades, 1-2-5 labels; under two of those, linear_ticks. */
static void log_ticks(ticks *tk, const axis *a)
{
    double d0 = ceil(a->lo - 1e-9), d1 = floor(a->hi + 1e-9);
    char lab[48];
    if (d1 - d0 >= 1) {
        int nd = (int)(d1 - d0) + 1, stride = (nd + 7) / 8;
        int minors = stride == 1 && a->hi - a->lo <= 12;
        for (int d = (int)d0 - 1; d <= (int)d1; d++) {
            int labelled = ((d % stride) + stride) % stride == 0;
            if (d >= d0 && labelled) {
                fmt_num(lab, pow(10.0, d), 1, -2, 2);
                add_tick(tk, a, d, 1, lab);
            } else if (d >= d0 && nd <= 60) {
                add_tick(tk, a, d, 0, NULL);
            }
            for (int m = 2; minors && m <= 9; m++)
                add_tick(tk, a, d + log10(m), 0, NULL);
        }
        return;
    }
    static const int nice[3] = {1, 2, 5};
    int n = 0;
    for (int d = (int)floor(a->lo); d <= (int)ceil(a->hi); d++)
        for (int j = 0; j < 3; j++) {
            double t = d + log10(nice[j]);
            n += t >= a->lo && t <= a->hi;
        }
    if (n < 2) {
        linear_ticks(tk, a, pow(10.0, a->lo), pow(10.0, a->hi));
        return;
    }
    for (int d = (int)floor(a->lo); d <= (int)ceil(a->hi); d++)
        for (int m = 1; m <= 9; m++) {
            int major = m == 1 || m == 2 || m == 5;
            if (major)
                fmt_num(lab, m * pow(10.0, d), 1, -2, 2);
            add_tick(tk, a, d + log10(m), major, major ? lab : NULL);
        }
}

static void make_ticks(ticks *tk, const axis *a)
{
    tk->n = 0;
    if (a->log)
        log_ticks(tk, a);
    else
        linear_ticks(tk, a, a->lo, a->hi);
}

/* ---- drawing ---- */

/* Okabe & Ito (2008), yellow last: it is faint on white. */
static const char *const palette[8] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                       "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
static const char *const dashes[3] = {"", " stroke-dasharray=\"6 3\"", " stroke-dasharray=\"2 3\""};

static const char *colour(int k)
{
    return palette[k % 8];
}

static const char *dash(int k)
{
    return dashes[(k / 8) % 3];
}

typedef struct frame {
    int w, h;
    double x0, x1, y0, y1; /* the plot area: x0 left, y0 top */
} frame;

static void sb_xy(strbuf *b, double x, double y)
{
    sb_coord(b, x);
    sb_put(b, ",", 1);
    sb_coord(b, y);
}

/* A <line> with the given class and attributes. */
static void sb_line(strbuf *b, const char *cls, double x1, double y1, double x2, double y2,
                    const char *attrs)
{
    sb_printf(b, "<line class=\"%s\" x1=\"", cls);
    sb_coord(b, x1);
    sb_puts(b, "\" y1=\"");
    sb_coord(b, y1);
    sb_puts(b, "\" x2=\"");
    sb_coord(b, x2);
    sb_puts(b, "\" y2=\"");
    sb_coord(b, y2);
    sb_printf(b, "\"%s/>\n", attrs);
}

/* <text class=... x y [attrs]>escaped</text> */
static void sb_text(strbuf *b, const char *cls, double x, double y, const char *attrs, const char *s)
{
    sb_printf(b, "<text class=\"%s\" x=\"", cls);
    sb_coord(b, x);
    sb_puts(b, "\" y=\"");
    sb_coord(b, y);
    sb_printf(b, "\"%s>", attrs);
    sb_escape(b, s);
    sb_puts(b, "</text>\n");
}

static void draw_grid(strbuf *b, const frame *fr, const ticks *tx, const ticks *ty)
{
    sb_puts(b, "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (int i = 0; i < tx->n; i++)
        if (tx->v[i].major) {
            double x = fr->x0 + tx->v[i].f * (fr->x1 - fr->x0);
            sb_line(b, "grid", x, fr->y0, x, fr->y1, "");
        }
    for (int i = 0; i < ty->n; i++)
        if (ty->v[i].major) {
            double y = fr->y1 - ty->v[i].f * (fr->y1 - fr->y0);
            sb_line(b, "grid", fr->x0, y, fr->x1, y, "");
        }
    sb_puts(b, "</g>\n");
}

/* Tick marks and their labels; xtick/ytick for major, xminor/yminor. */
static void draw_ticks(strbuf *b, const frame *fr, const ticks *tx, const ticks *ty)
{
    sb_puts(b, "<g class=\"ticks\" stroke=\"#333333\" stroke-width=\"1\">\n");
    for (int i = 0; i < tx->n; i++) {
        double x = fr->x0 + tx->v[i].f * (fr->x1 - fr->x0);
        sb_line(b, tx->v[i].major ? "xtick" : "xminor", x, fr->y1, x,
                fr->y1 + (tx->v[i].major ? 6 : 3), "");
    }
    for (int i = 0; i < ty->n; i++) {
        double y = fr->y1 - ty->v[i].f * (fr->y1 - fr->y0);
        sb_line(b, ty->v[i].major ? "ytick" : "yminor", fr->x0 - (ty->v[i].major ? 6 : 3), y,
                fr->x0, y, "");
    }
    sb_puts(b, "</g>\n<g class=\"ticklabels\" fill=\"#222222\" font-size=\"11\">\n");
    for (int i = 0; i < tx->n; i++)
        if (tx->v[i].label[0])
            sb_text(b, "xtick", fr->x0 + tx->v[i].f * (fr->x1 - fr->x0), fr->y1 + 19,
                    " text-anchor=\"middle\"", tx->v[i].label);
    for (int i = 0; i < ty->n; i++)
        if (ty->v[i].label[0])
            sb_text(b, "ytick", fr->x0 - 9, fr->y1 - ty->v[i].f * (fr->y1 - fr->y0) + 4,
                    " text-anchor=\"end\"", ty->v[i].label);
    sb_puts(b, "</g>\n");
}

/* One polygon per run (2+ points) of valid band points: hi forwards, lo back. */
static void draw_band(strbuf *b, const axis *ax, const axis *ay, const svg_series *s, int k)
{
    int64_t i = 0;
    while (s->lo && s->hi && i < s->n) {
        if (!band_ok(ax, ay, s, i)) {
            i++;
            continue;
        }
        int64_t a = i;
        while (i < s->n && band_ok(ax, ay, s, i))
            i++;
        if (i - a < 2)
            continue;
        sb_printf(b, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.2\" points=\"",
                  colour(k));
        for (int64_t j = a; j < i; j++) {
            sb_xy(b, pix(ax, s->x[j]), pix(ay, s->hi[j]));
            sb_put(b, " ", 1);
        }
        for (int64_t j = i - 1; j >= a; j--) {
            sb_xy(b, pix(ax, s->x[j]), pix(ay, s->lo[j]));
            if (j > a)
                sb_put(b, " ", 1);
        }
        sb_puts(b, "\"/>\n");
    }
}

/* One <path> with a subpath per run of valid points, and a dot for each
 * point that has no valid neighbour (a subpath of one point shows nothing). */
static void draw_line(strbuf *b, const axis *ax, const axis *ay, const svg_series *s, int k)
{
    int open = 0, pen = 0;
    for (int64_t i = 0; i < s->n; i++) {
        if (!point_ok(ax, ay, s, i)) {
            pen = 0;
            continue;
        }
        if (!open)
            sb_printf(b, "<path class=\"line\" stroke=\"%s\"%s d=\"", colour(k), dash(k));
        else
            sb_put(b, " ", 1);
        sb_put(b, pen ? "L" : "M", 1);
        sb_xy(b, pix(ax, s->x[i]), pix(ay, s->y[i]));
        open = pen = 1;
    }
    if (open)
        sb_puts(b, "\"/>\n");
    for (int64_t i = 0; i < s->n; i++)
        if (point_ok(ax, ay, s, i) && (i == 0 || !point_ok(ax, ay, s, i - 1)) &&
            (i + 1 == s->n || !point_ok(ax, ay, s, i + 1))) {
            sb_printf(b, "<circle class=\"dot\" fill=\"%s\" stroke=\"none\" r=\"2.5\" cx=\"",
                      colour(k));
            sb_coord(b, pix(ax, s->x[i]));
            sb_puts(b, "\" cy=\"");
            sb_coord(b, pix(ay, s->y[i]));
            sb_puts(b, "\"/>\n");
        }
}

static int has_label(const svg_series *s)
{
    return s->label && s->label[0];
}

/* The legend box's top-left corner: of the four plot corners, the one whose
 * box covers the fewest points. */
static void legend_place(const frame *fr, const axis *ax, const axis *ay, const svg_series *s,
                         int n_series, double bw, double bh, double *bx, double *by)
{
    double cx[4] = {fr->x1 - 8 - bw, fr->x0 + 8, fr->x1 - 8 - bw, fr->x0 + 8};
    double cy[4] = {fr->y0 + 8, fr->y0 + 8, fr->y1 - 8 - bh, fr->y1 - 8 - bh};
    int64_t hits[4] = {0, 0, 0, 0};
    for (int k = 0; k < n_series; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            if (!point_ok(ax, ay, &s[k], i))
                continue;
            double x = pix(ax, s[k].x[i]), y = pix(ay, s[k].y[i]);
            for (int c = 0; c < 4; c++)
                hits[c] += x >= cx[c] && x <= cx[c] + bw && y >= cy[c] && y <= cy[c] + bh;
        }
    int best = 0;
    for (int c = 1; c < 4; c++)
        if (hits[c] < hits[best])
            best = c;
    *bx = cx[best] < fr->x0 + 2 ? fr->x0 + 2 : cx[best];
    *by = cy[best];
}

static void draw_legend(strbuf *b, const frame *fr, const axis *ax, const axis *ay,
                        const svg_series *s, int n_series)
{
    int rows = 0;
    size_t chars = 0;
    for (int k = 0; k < n_series; k++)
        if (has_label(&s[k])) {
            size_t c = 0; /* UTF-8 code points */
            for (const char *q = s[k].label; *q; q++)
                c += ((unsigned char)*q & 0xC0) != 0x80;
            chars = c > chars ? c : chars;
            rows++;
        }
    if (!rows)
        return;
    double bw = 50 + 7.2 * (double)(chars > 80 ? 80 : chars), bh = 8 + 18.0 * rows, bx, by;
    legend_place(fr, ax, ay, s, n_series, bw, bh, &bx, &by);
    sb_puts(b, "<g class=\"legend\" font-size=\"12\">\n<rect class=\"legendbox\" x=\"");
    sb_coord(b, bx);
    sb_puts(b, "\" y=\"");
    sb_coord(b, by);
    sb_puts(b, "\" width=\"");
    sb_coord(b, bw);
    sb_puts(b, "\" height=\"");
    sb_coord(b, bh);
    sb_puts(b, "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbbbbb\"/>\n");
    for (int k = 0, r = 0; k < n_series; k++) {
        if (!has_label(&s[k]))
            continue;
        double yc = by + 4 + 18.0 * r++ + 9;
        if (s[k].lo && s[k].hi) {
            sb_printf(b, "<rect class=\"swatch\" fill=\"%s\" fill-opacity=\"0.2\" x=\"", colour(k));
            sb_coord(b, bx + 8);
            sb_puts(b, "\" y=\"");
            sb_coord(b, yc - 6);
            sb_puts(b, "\" width=\"26\" height=\"12\"/>\n");
        }
        char attrs[96];
        snprintf(attrs, sizeof attrs, " stroke=\"%s\" stroke-width=\"1.8\"%s", colour(k), dash(k));
        sb_line(b, "key", bx + 8, yc, bx + 34, yc, attrs);
        sb_text(b, "label", bx + 42, yc + 4, "", s[k].label);
    }
    sb_puts(b, "</g>\n");
}

/* Title and axis labels. */
static void draw_labels(strbuf *b, const svg_plot *p, const frame *fr)
{
    if (p->title)
        sb_text(b, "title", fr->w / 2.0, 22, " text-anchor=\"middle\" font-size=\"15\"", p->title);
    if (p->x_label)
        sb_text(b, "xlabel", (fr->x0 + fr->x1) / 2, fr->h - 10, " text-anchor=\"middle\"",
                p->x_label);
    if (p->y_label) {
        char attrs[96];
        snprintf(attrs, sizeof attrs, " text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\"",
                 (int)lround((fr->y0 + fr->y1) / 2));
        sb_text(b, "ylabel", 16, round((fr->y0 + fr->y1) / 2), attrs, p->y_label);
    }
}

/* ---- the document ---- */

static const char *check_input(const svg_plot *p, const svg_series *s, int n_series)
{
    if (!p)
        return "no plot description";
    if (n_series < 0 || (n_series > 0 && !s))
        return "bad series array";
    if (p->width < 0 || p->height < 0 || (p->width && (p->width < 200 || p->width > 10000)) ||
        (p->height && (p->height < 150 || p->height > 10000)))
        return "width must be 0 or 200..10000, height 0 or 150..10000";
    for (int k = 0; k < n_series; k++)
        if (s[k].n < 0 || (s[k].n > 0 && (!s[k].x || !s[k].y)))
            return "a series has n < 0, or n > 0 with x or y NULL";
    return NULL;
}

/* The plot area, leaving room for the longest y tick label. */
static void layout(frame *fr, const svg_plot *p, const ticks *ty)
{
    size_t longest = 0;
    for (int i = 0; i < ty->n; i++) {
        size_t l = strlen(ty->v[i].label);
        longest = l > longest ? l : longest;
    }
    fr->w = p->width ? p->width : SVG_PLOT_WIDTH;
    fr->h = p->height ? p->height : SVG_PLOT_HEIGHT;
    fr->x0 = 34 + 6.5 * (double)longest;
    fr->x0 = fr->x0 < 58 ? 58 : fr->x0;
    fr->x1 = fr->w - 18;
    fr->y0 = p->title ? 36 : 14;
    fr->y1 = fr->h - (p->x_label ? 46 : 30);
}

char *svg_plot_render(const svg_plot *p, const svg_series *s, int n_series, const char **why)
{
    const char *bad = check_input(p, s, n_series);
    if (bad) {
        if (why)
            *why = bad;
        return NULL;
    }
    axis ax = {.log = p->log_x != 0}, ay = {.log = p->log_y != 0};
    data_range(&ax, &ay, s, n_series);
    ticks *tk = malloc(2 * sizeof *tk); /* about 19 KB: not on the stack */
    strbuf b = {0};
    if (!tk || sb_reserve(&b, 4096)) {
        free(tk);
        free(b.p);
        if (why)
            *why = "out of memory";
        return NULL;
    }
    make_ticks(&tk[0], &ax);
    make_ticks(&tk[1], &ay);
    frame fr;
    layout(&fr, p, &tk[1]);
    ax.p0 = fr.x0, ax.p1 = fr.x1, ay.p0 = fr.y1, ay.p1 = fr.y0;

    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\" "
                  "font-size=\"12\">\n",
              fr.w, fr.h, fr.w, fr.h);
    if (p->title) {
        sb_puts(&b, "<title>");
        sb_escape(&b, p->title);
        sb_puts(&b, "</title>\n");
    }
    sb_puts(&b, "<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    draw_grid(&b, &fr, &tk[0], &tk[1]);
    sb_puts(&b, "<g class=\"bands\" stroke=\"none\">\n");
    for (int k = 0; k < n_series; k++)
        draw_band(&b, &ax, &ay, &s[k], k);
    sb_puts(&b, "</g>\n<g class=\"lines\" fill=\"none\" stroke-width=\"1.8\" "
                "stroke-linejoin=\"round\" stroke-linecap=\"round\">\n");
    for (int k = 0; k < n_series; k++)
        draw_line(&b, &ax, &ay, &s[k], k);
    sb_puts(&b, "</g>\n<rect class=\"frame\" x=\"");
    sb_coord(&b, fr.x0);
    sb_puts(&b, "\" y=\"");
    sb_coord(&b, fr.y0);
    sb_puts(&b, "\" width=\"");
    sb_coord(&b, fr.x1 - fr.x0);
    sb_puts(&b, "\" height=\"");
    sb_coord(&b, fr.y1 - fr.y0);
    sb_puts(&b, "\" fill=\"none\" stroke=\"#333333\"/>\n");
    draw_ticks(&b, &fr, &tk[0], &tk[1]);
    draw_labels(&b, p, &fr);
    draw_legend(&b, &fr, &ax, &ay, s, n_series);
    sb_puts(&b, "</svg>\n");
    free(tk);
    if (b.oom) {
        free(b.p);
        if (why)
            *why = "out of memory";
        return NULL;
    }
    return b.p;
}

int svg_plot_write(const char *path, const svg_plot *p, const svg_series *s, int n_series)
{
    if (!path)
        return -1;
    char *svg = svg_plot_render(p, s, n_series, NULL);
    if (!svg)
        return -1;
    int rc = cli_write_atomic(path, svg);
    free(svg);
    return rc;
}
