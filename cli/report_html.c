/*
 * report_html.c — the page of `resnet report`: a summary table, the training curves (loss,
 * error, learning rate, throughput), and for runs with grads.jsonl the gradient flow (block-input
 * gradient norm against depth, a layer x iteration heatmap per run). One self-contained HTML
 * file: inline SVG and CSS, no scripts, fonts or other files, readable offline and on paper.
 */
#include "cli.h"
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const CSS =
    ":root{color-scheme:light}\n"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif;"
    "color:#222;background:#fff;margin:0 auto;max-width:1200px;padding:24px;line-height:1.45}\n"
    "h1{font-size:1.6em;margin:0 0 .2em}\n"
    "h2{font-size:1.2em;margin:1.8em 0 .7em;border-bottom:1px solid #ddd;padding-bottom:.2em}\n"
    ".note{color:#555;font-size:.9em;max-width:62em}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px}\n"
    "figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:6px;background:#fff}\n"
    "figure svg{display:block;width:100%;height:auto}\n"
    "figcaption{font-size:.85em;color:#555;padding:4px 6px 2px}\n"
    ".table-wrap{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:.92em;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:5px 10px;border-bottom:1px solid #e3e3e3;text-align:right;"
    "vertical-align:top}\n"
    "thead th{border-bottom:2px solid #bbb;font-weight:600}\n"
    "th.l,td.l{text-align:left}\n"
    "td:first-child{white-space:nowrap}\n"
    ".swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.45em;"
    "vertical-align:-.05em}\n"
    "code{font-size:.92em}\n"
    "@media print{@page{size:A4;margin:12mm}"
    "body{max-width:none;padding:0;font-size:9.5pt}"
    ".grid{grid-template-columns:1fr 1fr;gap:8px}"
    "figure{break-inside:avoid;border:none;padding:0}"
    "h2{break-after:avoid}table{break-inside:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n";

/* Arrays the charts point into, freed when the page is done. */
typedef struct {
    void **p;
    int n, cap;
    bool oom;
} scratch;

static void *scratch_alloc(scratch *s, size_t bytes) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        void **p = realloc(s->p, (size_t)cap * sizeof *p);
        if (!p) {
            s->oom = true;
            return NULL;
        }
        s->p = p;
        s->cap = cap;
    }
    void *d = calloc(1, bytes ? bytes : 1);
    if (!d) {
        s->oom = true;
        return NULL;
    }
    s->p[s->n++] = d;
    return d;
}

static double *scratch_doubles(scratch *s, int n) {
    return scratch_alloc(s, (size_t)(n > 0 ? n : 0) * sizeof(double));
}

/* A formatted string that lives as long as the scratch. */
static char *scratch_printf(scratch *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *scratch_printf(scratch *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? scratch_alloc(s, (size_t)n + 1) : NULL;
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void scratch_free(scratch *s) {
    for (int i = 0; i < s->n; i++) free(s->p[i]);
    free(s->p);
}

static void fmt_count(char *buf, size_t n, int64_t v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    size_t len = strlen(tmp), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s)) snprintf(buf, n, "–");
    else {
        long t = lround(s);
        if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
        else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
        else snprintf(buf, n, "%.1fs", s);
    }
}

static void fmt_pct(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.2f%%", v);
    else snprintf(buf, n, "–");
}

/* Closes a <figure> with its caption. */
static void figure(rp_buf *b, const char *caption) {
    rp_printf(b, "<figcaption>");
    rp_escape(b, caption);
    rp_printf(b, "</figcaption></figure>\n");
}

static void summary_table(rp_buf *b, const rp_run *runs, int n) {
    bool approx = false;
    rp_printf(b, "<h2 id=\"summary\">Summary</h2>\n<div class=\"table-wrap\"><table "
                 "class=\"summary\">\n<thead><tr><th class=\"l\">run</th><th class=\"l\">model"
                 "</th><th>parameters</th><th>iterations</th><th>final training error</th>"
                 "<th>best validation error</th><th>test error</th><th>wall time</th>"
                 "<th>images/s</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        const rp_run *r = &runs[i];
        char params[40] = "–", it[64], tr[16], va[16], te[16], wall[32], ips[32] = "–";
        if (r->params >= 0) {
            fmt_count(params, sizeof params - 2, r->params);
            if (!r->params_exact) strcat(params, "*"), approx = true;
        }
        if (r->iters > 0 && r->last_step < r->iters)
            snprintf(it, sizeof it, "%lld of %lld", (long long)r->last_step, (long long)r->iters);
        else snprintf(it, sizeof it, "%lld", (long long)r->last_step);
        fmt_pct(tr, sizeof tr, r->final_train_err);
        fmt_pct(va, sizeof va, r->best_val_err);
        fmt_pct(te, sizeof te, r->test_err);
        fmt_duration(wall, sizeof wall, r->wall_s);
        if (isfinite(r->images_per_s)) snprintf(ips, sizeof ips, "%.0f", r->images_per_s);
        rp_printf(b, "<tr><td class=\"l\"><span class=\"swatch\" style=\"background:%s\">"
                     "</span>",
                  rp_color(i));
        rp_escape(b, r->name);
        rp_printf(b, "</td><td class=\"l\">");
        rp_escape(b, r->model);
        rp_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                     "<td>%s</td></tr>\n",
                  params, it, tr, va, te, wall, ips);
    }
    rp_printf(b, "</tbody></table></div>\n<p class=\"note\">Errors are 1 &#8722; top-1 accuracy. "
                 "Final training error: the mean over the last 5 logged intervals (training mode, "
                 "with augmentation). Best validation error: over the run's evaluations (the "
                 "validation set chooses best.safetensors). Test error: the last evaluation. "
                 "Images/s: the median over logged intervals.%s</p>\n",
              approx ? " * counted for the model's default input (3&#215;32&#215;32, 10 "
                       "classes): the run has no last.safetensors yet."
                     : "");
    rp_printf(b, "<div class=\"table-wrap\"><table class=\"settings\">\n<thead><tr>"
                 "<th class=\"l\">run</th><th class=\"l\">directory</th><th class=\"l\">data"
                 "</th><th class=\"l\">settings</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < n; i++) {
        rp_printf(b, "<tr><td class=\"l\">");
        rp_escape(b, runs[i].name);
        rp_printf(b, "</td><td class=\"l\"><code>");
        rp_escape(b, runs[i].dir);
        rp_printf(b, "</code></td><td class=\"l\"><code>");
        rp_escape(b, runs[i].data);
        rp_printf(b, "</code></td><td class=\"l\">");
        rp_escape(b, runs[i].settings);
        rp_printf(b, "</td></tr>\n");
    }
    rp_printf(b, "</tbody></table></div>\n");
}

/* Training points of run r as x (steps) and y = f(point). */
typedef double (*train_field)(const rp_train_point *p);
static double f_loss(const rp_train_point *p) { return p->loss; }
static double f_err(const rp_train_point *p) { return 100 * (1 - p->acc); }
static double f_lr(const rp_train_point *p) { return p->lr; }
static double f_ips(const rp_train_point *p) { return p->images_per_s; }

static rp_series train_series(scratch *s, const rp_run *r, train_field f) {
    double *x = scratch_doubles(s, r->n_train), *y = scratch_doubles(s, r->n_train);
    rp_series S = {.x = x, .y = y};
    if (!x || !y) return S;
    for (int i = 0; i < r->n_train; i++) {
        x[i] = (double)r->train[i].step;
        y[i] = f(&r->train[i]);
    }
    S.n = r->n_train;
    return S;
}

/* Evaluation error of run r: test (test = true) or validation, in %. */
static rp_series eval_series(scratch *s, const rp_run *r, bool test) {
    double *x = scratch_doubles(s, r->n_eval), *y = scratch_doubles(s, r->n_eval);
    rp_series S = {.x = x, .y = y};
    if (!x || !y) return S;
    for (int i = 0; i < r->n_eval; i++) {
        double a = test ? r->eval[i].test_acc : r->eval[i].val_acc;
        if (!isfinite(a)) continue;
        x[S.n] = (double)r->eval[i].step;
        y[S.n++] = 100 * (1 - a);
    }
    return S;
}

/* The simple per-run chart: one training field against iterations. */
static void train_chart(rp_buf *b, scratch *sc, const rp_run *runs, int n, train_field f,
                        rp_line_chart *c, int *charts) {
    rp_series *S = scratch_alloc(sc, (size_t)(n) * sizeof(rp_series));
    rp_legend_item *L = scratch_alloc(sc, (size_t)(n) * sizeof(rp_legend_item));
    if (!S || !L) return;
    for (int i = 0; i < n; i++) {
        S[i] = train_series(sc, &runs[i], f);
        S[i].color = rp_color(i);
        S[i].width = 1.6;
        S[i].label = runs[i].name;
        L[i] = (rp_legend_item){runs[i].name, rp_color(i), 2.4, NULL, false};
    }
    c->series = S;
    c->n_series = n;
    c->legend = L;
    c->n_legend = n;
    rp_svg_line_chart(b, c);
    (*charts)++;
}

static void curves(rp_buf *b, scratch *sc, const rp_run *runs, int n, int *charts) {
    rp_printf(b, "<h2 id=\"curves\">Training curves</h2>\n<div class=\"grid\">\n");

    /* Error, in the style of He et al. (2015), Fig. 6: thin training, bold test. */
    int ns = 3 * n;
    rp_series *S = scratch_alloc(sc, (size_t)(ns) * sizeof(rp_series));
    rp_legend_item *L = scratch_alloc(sc, (size_t)(n + 3) * sizeof(rp_legend_item));
    if (!S || !L) return;
    int k = 0;
    bool any_val = false, any_test = false;
    for (int i = 0; i < n; i++) {
        S[k] = train_series(sc, &runs[i], f_err);
        S[k].color = rp_color(i), S[k].width = 1.1, S[k].label = scratch_printf(sc, "%s training", runs[i].name);
        k++;
        rp_series v = eval_series(sc, &runs[i], false);
        if (v.n > 0) {
            v.color = rp_color(i), v.width = 1.3, v.dash = "5 3", v.markers = false;
            v.label = scratch_printf(sc, "%s validation", runs[i].name);
            S[k++] = v;
            any_val = true;
        }
        rp_series t = eval_series(sc, &runs[i], true);
        if (t.n > 0) {
            t.color = rp_color(i), t.width = 2.8, t.markers = true;
            t.label = scratch_printf(sc, "%s test", runs[i].name);
            S[k++] = t;
            any_test = true;
        }
    }
    int nl = 0;
    for (int i = 0; i < n; i++) L[nl++] = (rp_legend_item){runs[i].name, rp_color(i), 2.4, NULL, false};
    L[nl++] = (rp_legend_item){"training (thin)", "#555", 1.1, NULL, false};
    if (any_val) L[nl++] = (rp_legend_item){"validation (dashed)", "#555", 1.3, "5 3", false};
    if (any_test) L[nl++] = (rp_legend_item){"test (bold)", "#555", 2.8, NULL, true};
    rp_line_chart ec = {.title = "Error", .subtitle = "1 - top-1 accuracy: training (mean over "
                                                      "each logged interval), validation, test",
                        .xlabel = "iteration (optimizer steps)", .ylabel = "error (%)",
                        .y_from_zero = true, .y_max_cap = 100, .series = S, .n_series = k,
                        .legend = L, .n_legend = nl};
    rp_printf(b, "<figure class=\"error\">\n");
    rp_svg_line_chart(b, &ec);
    (*charts)++;
    figure(b, "Thin lines: training error; dashed: validation error; bold with dots: test error. "
              "Degradation shows as a deeper plain net with a higher training error.");

    rp_line_chart lc = {.title = "Training loss", .subtitle = "softmax cross-entropy, mean over "
                                                              "each logged interval",
                        .xlabel = "iteration (optimizer steps)", .ylabel = "loss (nats)",
                        .y_from_zero = true};
    rp_printf(b, "<figure class=\"loss\">\n");
    train_chart(b, sc, runs, n, f_loss, &lc, charts);
    figure(b, "Training loss against iterations.");

    bool logy = true;
    double mn = INFINITY, mx = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i].n_train; j++) {
            double v = runs[i].train[j].lr;
            if (!isfinite(v)) continue;
            if (v <= 0) logy = false;
            mn = fmin(mn, v), mx = fmax(mx, v);
        }
    if (!(mx >= 10 * mn)) logy = false;
    rp_line_chart rc = {.title = "Learning rate", .subtitle = "the rate of the last step of "
                                                              "each logged interval",
                        .xlabel = "iteration (optimizer steps)",
                        .ylabel = logy ? "learning rate (log scale)" : "learning rate",
                        .logy = logy, .y_from_zero = true};
    rp_printf(b, "<figure class=\"lr\">\n");
    train_chart(b, sc, runs, n, f_lr, &rc, charts);
    figure(b, "The learning-rate schedule as logged.");

    rp_line_chart tc = {.title = "Throughput", .subtitle = "training images per second over each "
                                                           "logged interval (evaluation excluded)",
                        .xlabel = "iteration (optimizer steps)", .ylabel = "images/s",
                        .y_from_zero = true};
    rp_printf(b, "<figure class=\"throughput\">\n");
    train_chart(b, sc, runs, n, f_ips, &tc, charts);
    figure(b, "Training throughput against iterations.");
    rp_printf(b, "</div>\n");
}

/* The logged gradient step of r nearest to want (the last when want < 0). */
static int grad_index(const rp_run *r, int64_t want) {
    if (want < 0) return r->n_gsteps - 1;
    int best = 0;
    for (int i = 1; i < r->n_gsteps; i++)
        if (llabs(r->gstep[i] - want) < llabs(r->gstep[best] - want)) best = i;
    return best;
}

static void gradients(rp_buf *b, scratch *sc, const rp_run *runs, int n, const rp_options *o,
                      int *charts) {
    int with = 0;
    for (int i = 0; i < n; i++) with += runs[i].n_gsteps > 0;
    if (with == 0) return;
    rp_printf(b, "<h2 id=\"gradients\">Gradient flow</h2>\n<p class=\"note\">From "
                 "<code>grads.jsonl</code> (<code>resnet train --log-grads</code>): L2 norms "
                 "after the backward pass of each logged step. In a plain net the gradient "
                 "reaching early blocks shrinks or grows with depth; the identity shortcuts of "
                 "a residual net carry it back unchanged.</p>\n<div class=\"grid\">\n");

    /* Block-input gradient norm against depth, every run at its chosen step. */
    rp_series *S = scratch_alloc(sc, (size_t)(n) * sizeof(rp_series));
    rp_legend_item *L = scratch_alloc(sc, (size_t)(n) * sizeof(rp_legend_item));
    if (!S || !L) return;
    int k = 0;
    int64_t common = -2;
    for (int i = 0; i < n; i++) {
        const rp_run *r = &runs[i];
        if (r->n_gsteps == 0) continue;
        int g = grad_index(r, o->grad_step);
        double *x = scratch_doubles(sc, r->n_gblocks), *y = scratch_doubles(sc, r->n_gblocks);
        if (!x || !y) return;
        for (int j = 0; j < r->n_gblocks; j++) {
            x[j] = j + 1;
            y[j] = r->gblock_norm[(size_t)g * r->n_gblocks + j];
        }
        char *lab = scratch_printf(sc, "%s (it. %lld)", r->name, (long long)r->gstep[g]);
        S[k] = (rp_series){.x = x, .y = y, .n = r->n_gblocks, .color = rp_color(i),
                           .width = 2, .markers = true, .label = lab};
        L[k] = (rp_legend_item){lab, rp_color(i), 2, NULL, true};
        k++;
        common = common == -2 || common == r->gstep[g] ? r->gstep[g] : -1;
    }
    char sub[160];
    if (common >= 0)
        snprintf(sub, sizeof sub, "L2 norm over the batch of dloss/d(block input), at iteration "
                                  "%lld",
                 (long long)common);
    else
        snprintf(sub, sizeof sub, "L2 norm over the batch of dloss/d(block input), at each run's "
                                  "iteration in the legend");
    rp_line_chart bc = {.title = "Gradient reaching each block", .subtitle = sub,
                        .xlabel = "block (1 = nearest the input)",
                        .ylabel = "gradient norm at block input (log)", .logy = true,
                        .integer_x = true, .series = S, .n_series = k, .legend = L,
                        .n_legend = k};
    rp_printf(b, "<figure class=\"blocks\">\n");
    rp_svg_line_chart(b, &bc);
    (*charts)++;
    figure(b, o->grad_step >= 0 ? "Gradient norm against depth at the iteration chosen with "
                                  "--grad-step (the nearest logged one)."
                                : "Gradient norm against depth at the last logged iteration "
                                  "(choose another with --grad-step N).");

    /* The gradient reaching the first block, over training. */
    k = 0;
    for (int i = 0; i < n; i++) {
        const rp_run *r = &runs[i];
        if (r->n_gsteps == 0 || r->n_gblocks == 0) continue;
        double *x = scratch_doubles(sc, r->n_gsteps), *y = scratch_doubles(sc, r->n_gsteps);
        if (!x || !y) return;
        for (int j = 0; j < r->n_gsteps; j++) {
            x[j] = (double)r->gstep[j];
            y[j] = r->gblock_norm[(size_t)j * r->n_gblocks];
        }
        S[k] = (rp_series){.x = x, .y = y, .n = r->n_gsteps, .color = rp_color(i), .width = 1.6,
                           .label = r->name};
        L[k] = (rp_legend_item){r->name, rp_color(i), 2.4, NULL, false};
        k++;
    }
    rp_line_chart fc = {.title = "Gradient reaching the first block",
                        .subtitle = "L2 norm over the batch of dloss/d(input of block 1), over "
                                    "training",
                        .xlabel = "iteration (optimizer steps)",
                        .ylabel = "gradient norm (log scale)", .logy = true, .series = S,
                        .n_series = k, .legend = L, .n_legend = k};
    rp_printf(b, "<figure class=\"first-block\">\n");
    rp_svg_line_chart(b, &fc);
    (*charts)++;
    figure(b, "How much gradient arrives at the bottom of the network as training goes on.");

    /* One colour scale for every heatmap, so runs compare. */
    double vmin = INFINITY, vmax = 0;
    for (int i = 0; i < n; i++) {
        const rp_run *r = &runs[i];
        for (size_t q = 0; q < (size_t)r->n_gsteps * r->n_gparams; q++) {
            double v = r->gparam_norm[q];
            if (r->is_layer[q % r->n_gparams] && isfinite(v) && v > 0)
                vmin = fmin(vmin, v), vmax = fmax(vmax, v);
        }
    }
    if (!(vmax > 0)) vmin = 1, vmax = 10;
    if (!(vmax > vmin)) vmax = vmin * 10;
    for (int i = 0; i < n; i++) {
        const rp_run *r = &runs[i];
        if (r->n_gsteps == 0) continue;
        int rows = 0;
        for (int p = 0; p < r->n_gparams; p++) rows += r->is_layer[p];
        /* At most 160 columns: every k-th logged step, and always the last. */
        int every = (r->n_gsteps + 159) / 160, cols = 0;
        int64_t *steps = scratch_alloc(sc, (size_t)r->n_gsteps * sizeof *steps);
        int *pick = scratch_alloc(sc, (size_t)r->n_gsteps * sizeof *pick);
        const char **names = scratch_alloc(sc, (size_t)rows * sizeof *names);
        double *v = scratch_doubles(sc, rows * (r->n_gsteps / every + 2));
        if (!steps || !pick || !names || !v) return;
        for (int j = 0; j < r->n_gsteps; j++)
            if (j % every == 0 || j == r->n_gsteps - 1) pick[cols++] = j;
        for (int c = 0; c < cols; c++) steps[c] = r->gstep[pick[c]];
        int row = 0;
        for (int p = 0; p < r->n_gparams; p++) {
            if (!r->is_layer[p]) continue;
            names[row] = r->gparam[p];
            for (int c = 0; c < cols; c++)
                v[(size_t)row * cols + c] = r->gparam_norm[(size_t)pick[c] * r->n_gparams + p];
            row++;
        }
        char title[320], subtitle[320];
        snprintf(title, sizeof title, "%s: gradient norm per layer", r->name);
        snprintf(subtitle, sizeof subtitle, "%s; %s; %d logged steps%s", r->model,
                 rows < r->n_gparams ? "conv and linear weights" : "every parameter tensor",
                 r->n_gsteps, every > 1 ? " (a subsample shown)" : "");
        rp_heatmap h = {.title = title, .subtitle = subtitle, .xlabel = "iteration (optimizer "
                                                                        "steps)",
                        .ylabel = "layer (input at the top)",
                        .bar_label = "gradient L2 norm (log scale)", .rows = rows, .cols = cols,
                        .row_labels = names, .col_steps = steps, .v = v, .vmin = vmin,
                        .vmax = vmax, .id = i};
        rp_printf(b, "<figure class=\"heatmap\">\n");
        rp_svg_heatmap(b, &h);
        (*charts)++;
        figure(b, "Each cell: the L2 norm of a layer's weight gradient at one logged step, on a "
                  "log colour scale shared by every run (grey: not logged).");
    }
    rp_printf(b, "</div>\n");
}

int rp_html(rp_buf *b, const rp_run *runs, int n, const rp_options *o) {
    scratch sc = {0};
    int charts = 0;
    const char *title = o->title && o->title[0] ? o->title : "Training report";
    rp_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>");
    rp_escape(b, title);
    rp_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>", CSS);
    rp_escape(b, title);
    rp_printf(b, "</h1>\n<p class=\"note\">%d run%s: ", n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++) {
        rp_printf(b, "%s<span class=\"swatch\" style=\"background:%s\"></span>", i ? ", " : "",
                  rp_color(i));
        rp_escape(b, runs[i].name);
    }
    rp_printf(b, ". Written by <code>resnet report</code> from the runs' config.json, "
                 "metrics.jsonl and grads.jsonl; run it again to refresh.</p>\n</header>\n"
                 "<main>\n");
    summary_table(b, runs, n);
    curves(b, &sc, runs, n, &charts);
    gradients(b, &sc, runs, n, o, &charts);
    rp_printf(b, "</main>\n</body>\n</html>\n");
    if (sc.oom) b->oom = true;
    scratch_free(&sc);
    return charts;
}

bool rp_write_report(const char *out_path, const char *const *dirs, int n, const rp_options *o,
                     int *charts) {
    rp_run *runs = calloc((size_t)n, sizeof *runs);
    if (!runs) return cli_error("out of memory"), false;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) ok = rp_run_load(&runs[i], dirs[i]);
    /* Runs with the same directory name are told apart by their whole paths. */
    for (int i = 0; i < n && ok; i++)
        for (int j = i + 1; j < n; j++)
            if (!strcmp(runs[i].name, runs[j].name)) {
                snprintf(runs[i].name, sizeof runs[i].name, "%.255s", runs[i].dir);
                snprintf(runs[j].name, sizeof runs[j].name, "%.255s", runs[j].dir);
            }
    rp_buf b = {0};
    if (ok) {
        *charts = rp_html(&b, runs, n, o);
        if (b.oom) ok = (cli_error("out of memory while writing the report"), false);
    }
    if (ok) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
        FILE *f = fopen(tmp, "wb");
        if (!f) ok = (cli_error("%s: cannot write (%s)", tmp, strerror(errno)), false);
        else {
            bool w = fwrite(b.s, 1, b.len, f) == b.len;
            if (fclose(f) != 0) w = false;
            if (!w) ok = (cli_error("%s: write failed", tmp), false);
            else if (rename(tmp, out_path) != 0)
                ok = (cli_error("%s: cannot rename to %s (%s)", tmp, out_path, strerror(errno)),
                      false);
            if (!ok) remove(tmp);
        }
    }
    rp_buf_free(&b);
    for (int i = 0; i < n; i++) rp_run_free(&runs[i]);
    free(runs);
    return ok;
}
