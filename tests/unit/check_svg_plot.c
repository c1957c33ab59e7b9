/*
 * check_svg_plot.c - the "svg_plot" suite: the CLI's SVG line-plot writer
 * (tools/svg_plot.c).
 *
 * tools/ code is not in libscalar, so this suite is a program of its own
 * (build/$(CONFIG)/check_svg_plot, run by `make unit` after check_scalar),
 * linked with tools/svg_plot.o and tools/run_dir.o.  The documents are
 * checked by reading them: a small XML checker (nesting, quoting, entities),
 * element counts, and the numbers of the tick and frame elements.
 */
#include <ctype.h>
#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "../../tools/run_dir.h"
#include "../../tools/svg_plot.h"

/* ---- helpers ---- */

#define LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

static int count(const char *s, const char *needle)
{
    int n = 0;
    size_t l = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + l, needle))
        n++;
    return n;
}

static int contains_ci(const char *s, const char *needle)
{
    size_t l = strlen(needle);
    for (; *s; s++)
        if (strncasecmp(s, needle, l) == 0)
            return 1;
    return 0;
}

/* An entity at p ("&lt;" ... "&#123;"); its length, or 0. */
static size_t entity_len(const char *p)
{
    static const char *const names[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strncmp(p, names[i], strlen(names[i])) == 0)
            return strlen(names[i]);
    if (p[1] == '#') {
        size_t n = 2;
        while (isdigit((unsigned char)p[n]))
            n++;
        return n > 2 && p[n] == ';' ? n + 1 : 0;
    }
    return 0;
}

/* Well-formed enough: one root element, tags nested and closed, attribute
 * values double-quoted without '<', '&' only in entities.  NULL or why not. */
static const char *xml_problem(const char *s)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    while (*p) {
        if (*p == '&') {
            size_t n = entity_len(p);
            if (!n)
                return "bare &";
            p += n;
        } else if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p))
                return "text outside the root";
            p++;
        } else if (p[1] == '/') {
            size_t n = strcspn(p + 2, ">");
            if (depth == 0 || n != strlen(stack[depth - 1]) || strncmp(p + 2, stack[depth - 1], n))
                return "mismatched end tag";
            depth--;
            p += n + 3;
        } else {
            size_t n = strspn(p + 1, LETTERS);
            if (n == 0 || n >= 32 || depth >= 64 || (depth == 0 && roots++))
                return "bad start tag";
            char name[32];
            memcpy(name, p + 1, n);
            name[n] = '\0';
            p += 1 + n;
            for (;;) {
                while (*p == ' ' || *p == '\n')
                    p++;
                if (p[0] == '/' && p[1] == '>') {
                    p += 2;
                    break;
                }
                if (*p == '>') {
                    strcpy(stack[depth++], name);
                    p++;
                    break;
                }
                size_t an = strspn(p, LETTERS "0123456789-:");
                if (an == 0 || p[an] != '=' || p[an + 1] != '"')
                    return "bad attribute";
                p += an + 2;
                while (*p && *p != '"') {
                    if (*p == '<')
                        return "< in an attribute";
                    if (*p == '&' && !entity_len(p))
                        return "bare & in an attribute";
                    p++;
                }
                if (!*p)
                    return "unterminated attribute";
                p++;
            }
        }
    }
    return depth || roots != 1 ? "unclosed element" : NULL;
}

/* The checks every document passes. */
static void assert_document(const char *svg)
{
    ck_assert_ptr_nonnull(svg);
    ck_assert_msg(strncmp(svg, "<svg ", 5) == 0, "does not start with <svg");
    size_t len = strlen(svg);
    ck_assert_msg(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0, "does not end with </svg>");
    const char *why = xml_problem(svg);
    ck_assert_msg(why == NULL, "not well-formed: %s", why);
    ck_assert_int_eq(count(svg, "<svg"), 1);
    ck_assert_int_eq(count(svg, "<g "), count(svg, "</g>"));
    ck_assert_int_eq(count(svg, "<text "), count(svg, "</text>"));
    ck_assert_msg(!contains_ci(svg, "nan") && !contains_ci(svg, "inf"), "NaN or inf in the output");
}

/* The number after `attr="` in the first `key` element found from s. */
static double attr_num(const char *s, const char *key, const char *attr)
{
    const char *e = strstr(s, key);
    ck_assert_msg(e != NULL, "no %s", key);
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", attr);
    const char *a = strstr(e, pat);
    ck_assert_ptr_nonnull(a);
    return strtod(a + strlen(pat), NULL);
}

/* The labels of the <text class="cls"> elements, '|'-separated, into out. */
static void tick_labels(const char *svg, const char *cls, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "<text class=\"%s\"", cls);
    out[0] = '\0';
    for (const char *p = strstr(svg, pat); p; p = strstr(p + 1, pat)) {
        const char *b = strchr(p, '>') + 1, *e = strstr(b, "</text>");
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%.*s", len ? "|" : "", (int)(e - b), b);
    }
}

/* The d attribute of the n-th line path (0-based), malloc'ed. */
static char *line_d(const char *svg, int n)
{
    const char *p = strstr(svg, "<path class=\"line\"");
    for (int i = 0; p && i < n; i++)
        p = strstr(p + 1, "<path class=\"line\"");
    ck_assert_ptr_nonnull(p);
    const char *b = strstr(p, " d=\"") + 4, *e = strchr(b, '"');
    return strndup(b, (size_t)(e - b));
}

static const char *scratch_dir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("SCALAR_TEST_TMP");
        snprintf(dir, sizeof dir, "%s/svg-%ld", base && *base ? base : "/tmp", (long)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

enum { N = 35 };

/* 35 log-spaced x from 1 to 262144 (2^18) and three decreasing curves. */
static void curves(double x[N], double y[3][N], double lo[3][N], double hi[3][N])
{
    for (int i = 0; i < N; i++) {
        x[i] = pow(2.0, 18.0 * i / (N - 1));
        for (int k = 0; k < 3; k++) {
            y[k][i] = (2.5 - 0.6 * k) / (1 + 0.3 * log2(x[i]) * (k + 1));
            lo[k][i] = 0.9 * y[k][i];
            hi[k][i] = 1.1 * y[k][i];
        }
    }
}

static const svg_plot kl_plot = {"KL vs kept edges", "kept edges", "KL divergence", 1, 0, 0, 0};

/* ---- tests ---- */

START_TEST(test_svg_render_is_wellformed)
{
    double x[N], y[3][N], lo[3][N], hi[3][N];
    curves(x, y, lo, hi);
    svg_series s[3] = {{"jsae", x, y[0], lo[0], hi[0], N},
                       {"topk", x, y[1], lo[1], hi[1], N},
                       {"staircase", x, y[2], lo[2], hi[2], N}};
    char *svg = svg_plot_render(&kl_plot, s, 3, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, "<path class=\"line\""), 3);
    ck_assert_int_eq(count(svg, "<polygon class=\"band\""), 3);
    ck_assert_int_eq(count(svg, ">KL vs kept edges</text>"), 1);
    ck_assert_int_eq(count(svg, ">kept edges</text>"), 1);
    ck_assert_int_eq(count(svg, ">KL divergence</text>"), 1);
    /* the legend: three entries in three palette colours */
    ck_assert_int_eq(count(svg, "<text class=\"label\""), 3);
    ck_assert_int_eq(count(svg, "stroke=\"#0072B2\""), 2);
    ck_assert_int_eq(count(svg, "stroke=\"#D55E00\""), 2);
    ck_assert_int_eq(count(svg, "stroke=\"#009E73\""), 2);
    /* each line has 35 points, in one piece */
    char *d = line_d(svg, 1);
    ck_assert_int_eq(count(d, "M"), 1);
    ck_assert_int_eq(count(d, "L"), N - 1);
    free(d);
    free(svg);
}
END_TEST

START_TEST(test_svg_escapes_label)
{
    double x[2] = {1, 2}, y[2] = {3, 4};
    svg_series s = {"a<b & \"c\"", x, y, NULL, NULL, 2};
    svg_plot p = {"t's <title>", "x & y", "\"y\"", 0, 0, 0, 0};
    char *svg = svg_plot_render(&p, &s, 1, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, ">a&lt;b &amp; &quot;c&quot;</text>"), 1);
    ck_assert_int_eq(count(svg, "t&apos;s &lt;title&gt;"), 2); /* <title> and the title text */
    ck_assert_int_eq(count(svg, ">x &amp; y</text>"), 1);
    ck_assert_int_eq(count(svg, ">&quot;y&quot;</text>"), 1);
    ck_assert_ptr_null(strstr(svg, "a<b"));
    ck_assert_ptr_null(strstr(svg, "<title>\n"));
    free(svg);
}
END_TEST

START_TEST(test_svg_one_band_per_series_with_lo_hi)
{
    double x[N], y[3][N], lo[3][N], hi[3][N];
    curves(x, y, lo, hi);
    svg_series s[4] = {{"both", x, y[0], lo[0], hi[0], N},
                       {"none", x, y[1], NULL, NULL, N},
                       {"lo only", x, y[2], lo[2], NULL, N},
                       {"both again", x, y[2], lo[2], hi[2], N}};
    char *svg = svg_plot_render(&kl_plot, s, 4, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, "<polygon class=\"band\""), 2);
    /* in the colours of series 0 and 3, at opacity 0.2 */
    ck_assert_int_eq(count(svg, "class=\"band\" fill=\"#0072B2\" fill-opacity=\"0.2\""), 1);
    ck_assert_int_eq(count(svg, "class=\"band\" fill=\"#E69F00\" fill-opacity=\"0.2\""), 1);
    /* hi forwards, lo backwards: 2n vertices */
    const char *pts = strstr(strstr(svg, "<polygon class=\"band\""), "points=\"") + 8;
    char *list = strndup(pts, strcspn(pts, "\""));
    ck_assert_int_eq(count(list, ","), 2 * N);
    free(list);
    /* bands come before (under) every line */
    const char *last_band = NULL;
    for (const char *q = strstr(svg, "<polygon"); q; q = strstr(q + 1, "<polygon"))
        last_band = q;
    ck_assert(last_band && last_band < strstr(svg, "<path class=\"line\""));
    free(svg);
}
END_TEST

START_TEST(test_svg_nan_points_skipped)
{
    double x[7] = {1, 2, 3, 4, 5, 6, 7};
    double y[7] = {1, 2, NAN, 4, 5, INFINITY, 7};
    double lo[7] = {0.5, 1.5, 2.5, 3.5, -INFINITY, 5.5, 6.5};
    double hi[7] = {1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5};
    x[3] = NAN;
    /* valid points: 0, 1, 4, 6 -> "M L", "M" (a dot), "M" (a dot) */
    svg_series s = {"gaps", x, y, lo, hi, 7};
    svg_plot p = {NULL, NULL, NULL, 0, 0, 0, 0};
    char *svg = svg_plot_render(&p, &s, 1, NULL);
    assert_document(svg);
    char *d = line_d(svg, 0);
    ck_assert_int_eq(count(d, "M"), 3);
    ck_assert_int_eq(count(d, "L"), 1);
    free(d);
    ck_assert_int_eq(count(svg, "<circle class=\"dot\""), 2);
    /* band points 0..2 and 5..6 (x[3] and lo[4] are not finite) */
    ck_assert_int_eq(count(svg, "<polygon class=\"band\""), 2);
    /* the y range is that of the finite values, 0.5..7.5 padded by 3% */
    char labels[256];
    tick_labels(svg, "ytick", labels, sizeof labels);
    ck_assert_str_eq(labels, "2|4|6");
    free(svg);
}
END_TEST

START_TEST(test_svg_log_axis_decade_ticks_inside_plot)
{
    double x[N], y[3][N], lo[3][N], hi[3][N];
    curves(x, y, lo, hi);
    ck_assert(x[0] == 1 && x[N - 1] == 262144);
    svg_series s = {"jsae", x, y[0], lo[0], hi[0], N};
    char *svg = svg_plot_render(&kl_plot, &s, 1, NULL);
    assert_document(svg);
    char labels[512];
    tick_labels(svg, "xtick", labels, sizeof labels);
    ck_assert_str_eq(labels, "1|10|100|1e3|1e4|1e5");
    double x0 = attr_num(svg, "<rect class=\"frame\"", "x");
    double x1 = x0 + attr_num(svg, "<rect class=\"frame\"", "width");
    double y0 = attr_num(svg, "<rect class=\"frame\"", "y");
    double y1 = y0 + attr_num(svg, "<rect class=\"frame\"", "height");
    /* every tick mark on the frame, left to right, none twice (a tick out of
     * the range must be dropped, not pinned to the edge); decades evenly
     * spaced */
    int n_major = 0, n_minor = 0;
    double prev = 0, gap = 0, last = -1;
    for (const char *p = strstr(svg, "<line class=\"x"); p; p = strstr(p + 1, "<line class=\"x")) {
        double tx = attr_num(p, "<line", "x1");
        ck_assert_msg(tx >= x0 && tx <= x1, "x tick at %g outside %g..%g", tx, x0, x1);
        ck_assert_msg(tx > last, "x tick at %g after one at %g", tx, last);
        last = tx;
        if (strncmp(p, "<line class=\"xtick\"", 19) == 0) {
            if (n_major >= 2)
                ck_assert_double_eq_tol(tx - prev, gap, 0.02);
            gap = tx - prev;
            prev = tx;
            n_major++;
        } else {
            n_minor++;
        }
    }
    ck_assert_int_eq(n_major, 6);
    ck_assert_int_ge(n_minor, 5 * 8); /* 2..9 in each of 1..1e5 */
    for (const char *p = strstr(svg, "<line class=\"y"); p; p = strstr(p + 1, "<line class=\"y")) {
        double ty = attr_num(p, "<line", "y1");
        ck_assert_msg(ty >= y0 && ty <= y1, "y tick at %g outside %g..%g", ty, y0, y1);
    }
    /* the first point sits on the "1" tick */
    char *d = line_d(svg, 0);
    double px = strtod(d + 1, NULL);
    double t1 = attr_num(svg, "<line class=\"xtick\"", "x1");
    ck_assert_double_eq_tol(px, t1, 0.011);
    free(d);
    free(svg);
}
END_TEST

START_TEST(test_svg_log_axis_skips_nonpositive)
{
    /* the points x <= 0 (log x) or y <= 0 (log y) are dropped: the document
     * is the one drawn without them */
    double x[6] = {-1, 0, 1, 10, 100, 1000}, y[6] = {5, 6, 1, 2, 3, 0};
    double xs[3] = {1, 10, 100}, ys[3] = {1, 2, 3};
    svg_series a = {"s", x, y, NULL, NULL, 6}, b = {"s", xs, ys, NULL, NULL, 3};
    svg_plot p = {"log", "x", "y", 1, 1, 0, 0};
    char *with = svg_plot_render(&p, &a, 1, NULL), *without = svg_plot_render(&p, &b, 1, NULL);
    assert_document(with);
    ck_assert_str_eq(with, without);
    free(with);
    free(without);
    /* on a linear y axis, y = 0 is kept: x decides alone */
    p.log_y = 0;
    double y2[5] = {5, 6, 0, 2, 3}, ys2[3] = {0, 2, 3};
    a.y = y2, a.n = 5, b.y = ys2;
    with = svg_plot_render(&p, &a, 1, NULL);
    without = svg_plot_render(&p, &b, 1, NULL);
    assert_document(with);
    ck_assert_str_eq(with, without);
    free(with);
    free(without);
}
END_TEST

START_TEST(test_svg_empty_series_ok)
{
    svg_plot p = {"empty", "x", "y", 1, 0, 0, 0};
    char *svg = svg_plot_render(&p, NULL, 0, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, "<path"), 0);
    ck_assert_int_eq(count(svg, "class=\"legend\""), 0);
    char labels[256];
    tick_labels(svg, "xtick", labels, sizeof labels); /* the default 1..10 */
    ck_assert_str_eq(labels, "1|10");
    free(svg);
    svg_series s[2] = {{"none", NULL, NULL, NULL, NULL, 0}, {NULL, NULL, NULL, NULL, NULL, 0}};
    svg = svg_plot_render(&p, s, 2, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, "<path"), 0);
    ck_assert_int_eq(count(svg, "<text class=\"label\""), 1);
    free(svg);
}
END_TEST

START_TEST(test_svg_single_point_and_flat_series)
{
    svg_plot p = {NULL, NULL, NULL, 0, 0, 0, 0};
    double x1 = 5, y1 = 3;
    svg_series one = {"one", &x1, &y1, NULL, NULL, 1};
    char *svg = svg_plot_render(&p, &one, 1, NULL);
    assert_document(svg);
    ck_assert_int_eq(count(svg, "<circle class=\"dot\""), 1);
    free(svg);
    /* all-equal y: the range is padded around 3, the line mid-height */
    double x[4] = {1, 2, 3, 4}, y[4] = {3, 3, 3, 3};
    svg_series flat = {"flat", x, y, NULL, NULL, 4};
    svg = svg_plot_render(&p, &flat, 1, NULL);
    assert_document(svg);
    char labels[256];
    tick_labels(svg, "ytick", labels, sizeof labels);
    ck_assert_str_eq(labels, "2.7|2.8|2.9|3|3.1|3.2|3.3");
    double top = attr_num(svg, "<rect class=\"frame\"", "y");
    double bottom = top + attr_num(svg, "<rect class=\"frame\"", "height");
    char *d = line_d(svg, 0);
    double py = strtod(strchr(d, ',') + 1, NULL);
    ck_assert_double_eq_tol(py, (top + bottom) / 2, 0.011);
    free(d);
    free(svg);
}
END_TEST

START_TEST(test_svg_rejects_bad_input)
{
    double x[2] = {1, 2}, y[2] = {1, 2};
    svg_series s = {"s", x, y, NULL, NULL, 2};
    svg_plot p = {NULL, NULL, NULL, 0, 0, 0, 0};
    const char *why = NULL;
    ck_assert_ptr_null(svg_plot_render(NULL, &s, 1, &why));
    ck_assert_ptr_nonnull(why);
    why = NULL;
    ck_assert_ptr_null(svg_plot_render(&p, NULL, 1, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(svg_plot_render(&p, &s, -1, NULL));
    s.n = -1;
    ck_assert_ptr_null(svg_plot_render(&p, &s, 1, NULL));
    s.n = 2, s.y = NULL;
    ck_assert_ptr_null(svg_plot_render(&p, &s, 1, NULL));
    s.y = y, p.width = 50;
    ck_assert_ptr_null(svg_plot_render(&p, &s, 1, NULL));
    p.width = 1000, p.height = 600;
    char *svg = svg_plot_render(&p, &s, 1, NULL);
    assert_document(svg);
    ck_assert_ptr_nonnull(strstr(svg, "width=\"1000\" height=\"600\" viewBox=\"0 0 1000 600\""));
    free(svg);
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.svg", scratch_dir());
    ck_assert_int_eq(svg_plot_write(path, NULL, &s, 1), -1);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(test_svg_write_is_atomic_and_same_bytes)
{
    double x[N], y[3][N], lo[3][N], hi[3][N];
    curves(x, y, lo, hi);
    svg_series s[2] = {{"jsae", x, y[0], lo[0], hi[0], N}, {"topk", x, y[1], lo[1], hi[1], N}};
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/write", scratch_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/kl.svg", dir);
    ck_assert_int_eq(svg_plot_write(path, &kl_plot, s, 2), 0);
    char *rendered = svg_plot_render(&kl_plot, s, 2, NULL), *written = cli_read_file(path);
    ck_assert_ptr_nonnull(rendered);
    ck_assert_ptr_nonnull(written);
    ck_assert_str_eq(written, rendered);
    /* the folder holds kl.svg and nothing else (no temp file) */
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            ck_assert_str_eq(e->d_name, "kl.svg");
            n++;
        }
    closedir(d);
    ck_assert_int_eq(n, 1);
    /* a write that cannot happen (no such folder) reports -1 */
    snprintf(path, sizeof path, "%s/missing/kl.svg", dir);
    ck_assert_int_eq(svg_plot_write(path, &kl_plot, s, 2), -1);
    free(rendered);
    free(written);
}
END_TEST

START_TEST(test_svg_large_n_is_linear)
{
    /* 400,000 points render in one pass: well under the test timeout, and
     * about 20 bytes a point */
    enum { BIG = 400000 };
    double *x = malloc(BIG * sizeof *x), *y = malloc(BIG * sizeof *y);
    double *lo = malloc(BIG * sizeof *lo), *hi = malloc(BIG * sizeof *hi);
    ck_assert(x && y && lo && hi);
    for (int i = 0; i < BIG; i++) {
        x[i] = 1 + i;
        y[i] = 1.0 / (1 + 0.001 * i);
        lo[i] = 0.9 * y[i];
        hi[i] = 1.1 * y[i];
    }
    svg_series s = {"big", x, y, lo, hi, BIG};
    char *svg = svg_plot_render(&kl_plot, &s, 1, NULL);
    ck_assert_ptr_nonnull(svg);
    size_t len = strlen(svg);
    ck_assert_uint_gt(len, (size_t)BIG * 3 * 8);
    ck_assert_uint_lt(len, (size_t)BIG * 3 * 20);
    ck_assert_int_eq(count(svg, "<polygon"), 1);
    free(svg);
    free(x);
    free(y);
    free(lo);
    free(hi);
}
END_TEST

/* A locale whose decimal point is a comma: de_DE.UTF-8 if installed (1),
 * else compiled with localedef into the scratch folder (2, LOCPATH set); 0 if
 * neither. */
static int comma_locale(void)
{
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8"))
        return 1;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
             scratch_dir());
    if (system(cmd) == -1)
        return 0;
    setenv("LOCPATH", scratch_dir(), 1);
    return setlocale(LC_NUMERIC, "de_DE.UTF-8") ? 2 : 0;
}

START_TEST(test_svg_numbers_ignore_locale)
{
    double x[5] = {0.5, 1.25, 2.5, 3.75, 4.5}, y[5] = {0.25, 0.75, 0.5, 1.25, 1.125};
    svg_series s = {"frac", x, y, NULL, NULL, 5};
    svg_plot p = {NULL, NULL, NULL, 0, 0, 0, 0};
    char *c_doc = svg_plot_render(&p, &s, 1, NULL);
    assert_document(c_doc);
    ck_assert_ptr_nonnull(strstr(c_doc, ">0.4</text>")); /* a fractional tick label */
    char *d = line_d(c_doc, 0);
    ck_assert_ptr_nonnull(strchr(d, '.')); /* fractional coordinates */
    free(d);
    int how = comma_locale();
    if (!how) {
        fprintf(stderr, "check_svg_plot: no de_DE locale and no localedef: "
                        "test_svg_numbers_ignore_locale checked the C locale only\n");
        free(c_doc);
        return;
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 0.5);
    ck_assert_str_eq(probe, "0,5"); /* the locale is in force */
    char *de_doc = svg_plot_render(&p, &s, 1, NULL);
    setlocale(LC_NUMERIC, "C");
    if (how == 2) { /* our compiled locale: a few MB */
        char loc[1100];
        snprintf(loc, sizeof loc, "%s/de_DE.UTF-8", scratch_dir());
        cli_remove_dir(loc);
        unsetenv("LOCPATH");
    }
    ck_assert_str_eq(de_doc, c_doc);
    free(de_doc);
    free(c_doc);
}
END_TEST

/* ---- the suite ---- */

static Suite *svg_plot_suite(void)
{
    Suite *s = suite_create("svg_plot");
    TCase *tc = tcase_create("render");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_svg_render_is_wellformed);
    tcase_add_test(tc, test_svg_escapes_label);
    tcase_add_test(tc, test_svg_one_band_per_series_with_lo_hi);
    tcase_add_test(tc, test_svg_nan_points_skipped);
    tcase_add_test(tc, test_svg_log_axis_decade_ticks_inside_plot);
    tcase_add_test(tc, test_svg_log_axis_skips_nonpositive);
    tcase_add_test(tc, test_svg_empty_series_ok);
    tcase_add_test(tc, test_svg_single_point_and_flat_series);
    tcase_add_test(tc, test_svg_rejects_bad_input);
    tcase_add_test(tc, test_svg_large_n_is_linear);
    tcase_add_test(tc, test_svg_numbers_ignore_locale);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("write");
    tcase_add_test(io, test_svg_write_is_atomic_and_same_bytes);
    suite_add_tcase(s, io);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(svg_plot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
