/*
 * report_svg.c — the charts of `resnet report` as inline SVG: line charts (linear or log y axis,
 * legend on the right) and heatmaps (log colour scale with a colour bar). Colours: the Okabe–Ito
 * palette for series and viridis for heatmaps, both readable with colour-vision deficiencies.
 * Every chart is a standalone, well-formed <svg> element with a <title>.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FONT "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"
#define INK "#222"
#define GRID "#e6e6e6"
#define MUTED "#666"

const char *rp_color(int i) {
    /* Okabe & Ito (2008), most distinct first; yellow last (weak on white). */
    static const char *c[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                              "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return c[(i % 8 + 8) % 8];
}

/* ---- axes ---- */

#define MAX_TICKS 40

typedef struct {
    double lo, hi;
    bool log;
    int n;
    double tick[MAX_TICKS];
    double step; /* linear: tick spacing (for label precision) */
} axis;

static double nice_step(double span, int target, bool integer) {
    double raw = span / target;
    if (!(raw > 0)) raw = 1;
    double mag = pow(10, floor(log10(raw))), f = raw / mag;
    double s = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    if (integer && s < 1) s = 1;
    return s;
}

/* Ticks at multiples of a nice step inside [lo, hi]. */
static void ticks_within(axis *a, int target, bool integer) {
    a->step = nice_step(a->hi - a->lo, target, integer);
    a->n = 0;
    double first = ceil(a->lo / a->step - 1e-9);
    for (int i = 0; a->n < MAX_TICKS; i++) {
        double v = (first + i) * a->step;
        if (v > a->hi + 1e-9 * a->step) break;
        a->tick[a->n++] = fabs(v) < 1e-12 * a->step ? 0 : v;
    }
}

/* A linear axis over [mn, mx], widened to multiples of a nice step. */
static void axis_linear(axis *a, double mn, double mx, bool from_zero, bool integer, double cap) {
    a->log = false;
    if (!isfinite(mn) || !isfinite(mx)) mn = 0, mx = 1;
    if (from_zero && mn > 0) mn = 0;
    if (mx <= mn) {
        double d = mn != 0 ? fabs(mn) * 0.1 : 1;
        if (!(from_zero && mn == 0)) mn -= d;
        mx += d;
    }
    double s = nice_step(mx - mn, 5, integer);
    a->lo = floor(mn / s + 1e-9) * s;
    a->hi = ceil(mx / s - 1e-9) * s;
    if (cap > 0 && a->hi > cap && mx <= cap) a->hi = cap;
    if (from_zero && mn >= 0) a->lo = 0;
    ticks_within(a, 5, integer);
}

/* A log axis over whole decades around [mn, mx] (both > 0). */
static void axis_log(axis *a, double mn, double mx) {
    a->log = true;
    if (!(mn > 0) || !isfinite(mn)) mn = 1;
    if (!(mx >= mn) || !isfinite(mx)) mx = mn;
    int elo = (int)floor(log10(mn) + 1e-9), ehi = (int)ceil(log10(mx) - 1e-9);
    if (ehi <= elo) ehi = elo + 1;
    a->lo = pow(10, elo);
    a->hi = pow(10, ehi);
    int every = (ehi - elo + 6) / 7;
    a->n = 0;
    for (int e = elo; e <= ehi && a->n < MAX_TICKS; e += every) a->tick[a->n++] = pow(10, e);
    if (ehi - elo == 1) { /* a single decade: also 2 and 5 */
        a->tick[a->n++] = 2 * a->lo;
        a->tick[a->n++] = 5 * a->lo;
    }
}

static double axis_frac(const axis *a, double v) {
    if (a->log) return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return (v - a->lo) / (a->hi - a->lo);
}

static void fmt_tick(char *buf, size_t n, const axis *a, double v) {
    if (a->log) {
        int e = (int)floor(log10(v) + 1e-9);
        double m = v / pow(10, e);
        if (e >= -3 && e <= 4) snprintf(buf, n, "%g", v);
        else if (fabs(m - 1) < 1e-6) snprintf(buf, n, "1e%d", e);
        else snprintf(buf, n, "%ge%d", round(m), e);
    } else if (fabs(v) >= 1e4 && fmod(fabs(v), 100) == 0) {
        snprintf(buf, n, "%gk", v / 1000);
    } else {
        int dec = a->step < 1 ? (int)ceil(-log10(a->step) - 1e-9) : 0;
        snprintf(buf, n, "%.*f", dec, v);
    }
}

/* ---- pieces ---- */

static void svg_open(rp_buf *b, int w, int h, const char *title, const char *subtitle) {
    rp_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 %d %d\" "
              "role=\"img\" font-family=\"" FONT "\">\n<title>",
              w, h);
    rp_escape(b, title);
    rp_printf(b, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", w, h);
    rp_printf(b, "<text x=\"12\" y=\"23\" font-size=\"16\" font-weight=\"600\" fill=\"" INK
                 "\">");
    rp_escape(b, title);
    rp_printf(b, "</text>\n");
    if (subtitle && subtitle[0]) {
        rp_printf(b, "<text x=\"12\" y=\"41\" font-size=\"12\" fill=\"" MUTED "\">");
        rp_escape(b, subtitle);
        rp_printf(b, "</text>\n");
    }
}

/* Axis titles: x centered under the plot, y rotated left of it. */
static void axis_titles(rp_buf *b, double x0, double x1, double y0, double y1, int h,
                        const char *xlabel, const char *ylabel) {
    rp_printf(b, "<text class=\"axis-label\" x=\"%.1f\" y=\"%d\" font-size=\"13\" "
                 "text-anchor=\"middle\" fill=\"" INK "\">",
              (x0 + x1) / 2, h - 12);
    rp_escape(b, xlabel);
    rp_printf(b, "</text>\n<text class=\"axis-label\" x=\"0\" y=\"0\" font-size=\"13\" "
                 "text-anchor=\"middle\" fill=\"" INK "\" transform=\"translate(16 %.1f) "
                 "rotate(-90)\">",
              (y0 + y1) / 2);
    rp_escape(b, ylabel);
    rp_printf(b, "</text>\n");
}

static void x_ticks(rp_buf *b, const axis *ax, double x0, double x1, double y0, double y1,
                    bool grid) {
    char lab[32];
    for (int i = 0; i < ax->n; i++) {
        double x = x0 + axis_frac(ax, ax->tick[i]) * (x1 - x0);
        if (grid)
            rp_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID
                         "\"/>\n",
                      x, y0, x, y1);
        rp_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" INK
                     "\"/>\n",
                  x, y1, x, y1 + 4);
        fmt_tick(lab, sizeof lab, ax, ax->tick[i]);
        rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
                     "fill=\"" INK "\">%s</text>\n",
                  x, y1 + 16, lab);
    }
}

static void y_ticks(rp_buf *b, const axis *ay, double x0, double x1, double y0, double y1) {
    char lab[32];
    for (int i = 0; i < ay->n; i++) {
        double y = y1 - axis_frac(ay, ay->tick[i]) * (y1 - y0);
        rp_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" GRID
                     "\"/>\n",
                  x0, y, x1, y);
        fmt_tick(lab, sizeof lab, ay, ay->tick[i]);
        rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
                     "fill=\"" INK "\">%s</text>\n",
                  x0 - 6, y + 4, lab);
    }
}

static bool usable(double y, bool log) { return isfinite(y) && (!log || y > 0); }

/* ---- line chart ---- */

void rp_svg_line_chart(rp_buf *b, const rp_line_chart *c) {
    const int W = 640, H = 400;
    const double x0 = 66, x1 = 466, y0 = 58, y1 = 338;
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->series[s].n; i++) {
            double x = c->series[s].x[i], y = c->series[s].y[i];
            if (!isfinite(x) || !usable(y, c->logy)) continue;
            xmn = fmin(xmn, x), xmx = fmax(xmx, x);
            ymn = fmin(ymn, y), ymx = fmax(ymx, y);
        }
    bool empty = !(xmn <= xmx);
    axis ax, ay;
    axis_linear(&ax, empty ? 0 : xmn, empty ? 1 : xmx, !c->integer_x, c->integer_x, 0);
    if (c->integer_x && !empty) { /* block indices: the axis spans exactly the data */
        ax.lo = xmn - 0.5, ax.hi = xmx + 0.5;
        ticks_within(&ax, xmx - xmn > 30 ? 8 : 12, true);
    }
    if (c->logy) axis_log(&ay, empty ? 1 : ymn, empty ? 10 : ymx);
    else axis_linear(&ay, empty ? 0 : ymn, empty ? 1 : ymx, c->y_from_zero, false, c->y_max_cap);

    svg_open(b, W, H, c->title, c->subtitle);
    rp_printf(b, "<g class=\"axes\">\n");
    y_ticks(b, &ay, x0, x1, y0, y1);
    x_ticks(b, &ax, x0, x1, y0, y1, true);
    rp_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"" INK "\" stroke-width=\"1\"/>\n</g>\n",
              x0, y0, x1 - x0, y1 - y0);
    axis_titles(b, x0, x1, y0, y1, H, c->xlabel, c->ylabel);
    if (empty)
        rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
                     "fill=\"" MUTED "\">no data</text>\n",
                  (x0 + x1) / 2, (y0 + y1) / 2);

    /* Series: a polyline per unbroken run of usable points, circles where asked. */
    for (int s = 0; s < c->n_series && !empty; s++) {
        const rp_series *S = &c->series[s];
        rp_printf(b, "<g class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.2g\"",
                  S->color, S->width);
        if (S->dash) rp_printf(b, " stroke-dasharray=\"%s\"", S->dash);
        rp_printf(b, " stroke-linejoin=\"round\" stroke-linecap=\"round\">\n");
        if (S->label) {
            rp_printf(b, "<title>");
            rp_escape(b, S->label);
            rp_printf(b, "</title>\n");
        }
        int i = 0, drawn = 0;
        while (i < S->n) {
            while (i < S->n && !(isfinite(S->x[i]) && usable(S->y[i], c->logy))) i++;
            int start = i;
            while (i < S->n && isfinite(S->x[i]) && usable(S->y[i], c->logy)) i++;
            if (i - start >= 2) {
                rp_printf(b, "<polyline points=\"");
                for (int k = start; k < i; k++)
                    rp_printf(b, "%s%.1f,%.1f", k > start ? " " : "",
                              x0 + axis_frac(&ax, S->x[k]) * (x1 - x0),
                              y1 - axis_frac(&ay, S->y[k]) * (y1 - y0));
                rp_printf(b, "\"/>\n");
            }
            drawn += i - start;
        }
        if (S->markers || drawn == 1) {
            double r = S->width + 1.2;
            for (int k = 0; k < S->n; k++)
                if (isfinite(S->x[k]) && usable(S->y[k], c->logy))
                    rp_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" "
                                 "stroke=\"#fff\" stroke-width=\"0.8\"/>\n",
                              x0 + axis_frac(&ax, S->x[k]) * (x1 - x0),
                              y1 - axis_frac(&ay, S->y[k]) * (y1 - y0), r, S->color);
        }
        rp_printf(b, "</g>\n");
    }

    /* Legend, right of the plot. */
    if (c->n_legend > 0) {
        double lx = x1 + 14, ly = y0 + 8;
        double step = fmin(20, (y1 - y0 - 8) / c->n_legend);
        rp_printf(b, "<g class=\"legend\">\n");
        for (int i = 0; i < c->n_legend; i++) {
            const rp_legend_item *L = &c->legend[i];
            double y = ly + i * step;
            rp_printf(b, "<g class=\"legend-item\">");
            if (L->width > 0) {
                rp_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                             "stroke-width=\"%.2g\"",
                          lx, y, lx + 26, y, L->color, L->width);
                if (L->dash) rp_printf(b, " stroke-dasharray=\"%s\"", L->dash);
                rp_printf(b, "/>");
            }
            if (L->marker)
                rp_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\"/>", lx + 13,
                          y, L->color);
            rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12.5\" fill=\"" INK "\">",
                      lx + 32, y + 4.5);
            char lab[21];
            snprintf(lab, sizeof lab, "%s", L->label);
            if (strlen(L->label) >= sizeof lab) strcpy(lab + sizeof lab - 4, "...");
            rp_escape(b, lab);
            rp_printf(b, "</text></g>\n");
        }
        rp_printf(b, "</g>\n");
    }
    rp_printf(b, "</svg>\n");
}

/* ---- heatmap ---- */

/* viridis at t = 0, 1/8, ..., 1 */
static const unsigned char viridis[9][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e},
    {0x26, 0x82, 0x8e}, {0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58},
    {0xfd, 0xe7, 0x25}};

static void viridis_hex(char out[8], double t) {
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 8;
    int i = (int)p;
    if (i > 7) i = 7;
    double f = p - i;
    int rgb[3];
    for (int k = 0; k < 3; k++)
        rgb[k] = (int)lround(viridis[i][k] + f * (viridis[i + 1][k] - viridis[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

void rp_svg_heatmap(rp_buf *b, const rp_heatmap *h) {
    const int W = 640;
    const double x0 = 136, x1 = 510, y0 = 58;
    double ph = h->rows * 7.0;
    if (ph < 150) ph = 150;
    if (ph > 440) ph = 440;
    const double y1 = y0 + ph;
    const int H = (int)(y1 + 56);
    svg_open(b, W, H, h->title, h->subtitle);
    if (h->rows <= 0 || h->cols <= 0) {
        axis_titles(b, x0, x1, y0, y1, H, h->xlabel, h->ylabel);
        rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
                     "fill=\"" MUTED "\">no gradient data</text>\n</svg>\n",
                  (x0 + x1) / 2, (y0 + y1) / 2);
        return;
    }
    /* Column j covers the steps from the midpoint with its left neighbour to the midpoint with
     * its right one, so the x axis is in iterations even when the logged steps are uneven. */
    const int64_t *s = h->col_steps;
    int nc = h->cols;
    double gap0 = nc > 1 ? (double)(s[1] - s[0]) : 1, gapn = nc > 1 ? (double)(s[nc - 1] - s[nc - 2]) : 1;
    axis ax = {.lo = fmax(0, (double)s[0] - gap0 / 2), .hi = (double)s[nc - 1] + gapn / 2};
    ticks_within(&ax, 6, true);
    double lv = log10(h->vmin), hv = log10(h->vmax);
    if (!(hv > lv)) hv = lv + 1;
    double rh = ph / h->rows;

    rp_printf(b, "<g class=\"cells\" shape-rendering=\"crispEdges\">\n");
    for (int j = 0; j < nc; j++) {
        double e0 = j == 0 ? ax.lo : ((double)s[j - 1] + (double)s[j]) / 2;
        double e1 = j == nc - 1 ? ax.hi : ((double)s[j] + (double)s[j + 1]) / 2;
        double cx0 = x0 + axis_frac(&ax, e0) * (x1 - x0), cx1 = x0 + axis_frac(&ax, e1) * (x1 - x0);
        for (int i = 0; i < h->rows; i++) {
            double v = h->v[(size_t)i * nc + j];
            char col[8] = "#d9d9d9";
            if (isfinite(v) && v > 0) viridis_hex(col, (log10(v) - lv) / (hv - lv));
            rp_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                         "fill=\"%s\"/>\n",
                      cx0, y0 + i * rh, cx1 - cx0 + 0.4, rh + 0.4, col);
        }
    }
    rp_printf(b, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"" INK "\"/>\n",
              x0, y0, x1 - x0, ph);
    x_ticks(b, &ax, x0, x1, y0, y1, false);
    /* Row labels, thinned to stay readable. */
    int every = (int)ceil(12.5 / rh);
    if (every < 1) every = 1;
    for (int i = 0; i < h->rows; i++) {
        if (i % every && i != h->rows - 1) continue;
        if (i == h->rows - 1 && i % every && (i % every) * rh < 12.5) continue;
        char lab[48];
        snprintf(lab, sizeof lab, "%s", h->row_labels[i]);
        size_t n = strlen(lab);
        if (n > 7 && !strcmp(lab + n - 7, ".weight")) lab[n - 7] = 0;
        rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
                     "fill=\"" INK "\">",
                  x0 - 5, y0 + (i + 0.5) * rh + 4);
        rp_escape(b, lab);
        rp_printf(b, "</text>\n");
    }
    axis_titles(b, x0, x1, y0, y1, H, h->xlabel, "");
    rp_printf(b, "<text class=\"axis-label\" x=\"0\" y=\"0\" font-size=\"12\" "
                 "text-anchor=\"middle\" fill=\"" INK "\" transform=\"translate(16 %.1f) "
                 "rotate(-90)\">",
              (y0 + y1) / 2);
    rp_escape(b, h->ylabel);
    rp_printf(b, "</text>\n");

    /* Colour bar: a vertical gradient with log ticks. */
    double bx = x1 + 20, bw = 14;
    rp_printf(b, "<defs><linearGradient id=\"rp-cbar-%d\" x1=\"0\" y1=\"1\" x2=\"0\" "
                 "y2=\"0\">",
              h->id);
    for (int k = 0; k <= 8; k++) {
        char col[8];
        viridis_hex(col, k / 8.0);
        rp_printf(b, "<stop offset=\"%g\" stop-color=\"%s\"/>", k / 8.0, col);
    }
    rp_printf(b, "</linearGradient></defs>\n<g class=\"colorbar\">\n<rect x=\"%.1f\" "
                 "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#rp-cbar-%d)\" "
                 "stroke=\"" INK "\" stroke-width=\"0.6\"/>\n",
              bx, y0, bw, ph, h->id);
    /* Ticks at decades, and at 2 and 5 times them when the scale spans less than 2.5. */
    axis ac = {.lo = pow(10, lv), .hi = pow(10, hv), .log = true};
    static const double mult[3] = {1, 2, 5};
    int n_mult = hv - lv < 2.5 ? 3 : 1, shown = 0;
    char lab[32];
    for (int e = (int)floor(lv); e <= (int)ceil(hv); e++)
        for (int k = 0; k < n_mult; k++) {
            double v = mult[k] * pow(10, e), f = axis_frac(&ac, v);
            if (f < -1e-9 || f > 1 + 1e-9) continue;
            double y = y1 - f * ph;
            fmt_tick(lab, sizeof lab, &ac, v);
            rp_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" INK
                         "\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"" INK
                         "\">%s</text>\n",
                      bx + bw, y, bx + bw + 4, y, bx + bw + 6, y + 3.5, lab);
            shown++;
        }
    if (shown < 2) /* a narrow scale: label its ends */
        for (int e = 0; e < 2; e++) {
            snprintf(lab, sizeof lab, "%.2g", e ? ac.hi : ac.lo);
            rp_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"" MUTED
                         "\">%s</text>\n",
                      bx - 2, e ? y0 - 5 : y1 + 13, lab);
        }
    rp_printf(b, "<text class=\"axis-label\" x=\"0\" y=\"0\" font-size=\"11\" "
                 "text-anchor=\"middle\" fill=\"" INK "\" transform=\"translate(%d %.1f) "
                 "rotate(-90)\">",
              W - 12, (y0 + y1) / 2);
    rp_escape(b, h->bar_label);
    rp_printf(b, "</text>\n</g>\n</svg>\n");
}
