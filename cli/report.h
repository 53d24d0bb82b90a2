/*
 * report.h — `resnet report`: reads training run directories (config.json, metrics.jsonl and,
 * when present, grads.jsonl) and draws them into one self-contained HTML page of inline SVG
 * charts. report_runs.c reads the runs, report_svg.c draws charts, report_html.c lays out the
 * page.
 */
#ifndef RN_REPORT_H
#define RN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growing text buffer; on allocation failure `oom` is set and further writes are dropped. */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} rp_buf;

void rp_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with &, <, >, " and ' escaped for XML and HTML. */
void rp_escape(rp_buf *b, const char *text);
void rp_buf_free(rp_buf *b);

/* One metrics.jsonl line of training progress (means over the logged interval). */
typedef struct {
    int64_t step;
    double lr, loss, acc, images_per_s, elapsed_s;
} rp_train_point;

/* One metrics.jsonl evaluation line; NAN where a set was not evaluated. */
typedef struct {
    int64_t step;
    double val_acc, test_acc, elapsed_s;
} rp_eval_point;

typedef struct {
    char dir[1024];
    char name[256];  /* the directory's base name: how charts and tables label the run */
    char model[64];
    char data[1024];
    char settings[512]; /* batch, lr, schedule, wd, ... from config.json, for the settings table */
    int64_t iters;      /* config.json's iters (0 when the run was set up in epochs) */

    rp_train_point *train;
    int n_train;
    rp_eval_point *eval;
    int n_eval;

    /* From grads.jsonl: gparam/gblock norms are (n_gsteps, n_gparams) / (n_gsteps, n_gblocks),
     * NAN where a line lacks a name. is_layer marks the tensors drawn in the heatmap (conv and
     * linear weights, ndim >= 2, when the model is known; else every tensor). */
    int n_gsteps, n_gparams, n_gblocks;
    int64_t *gstep;
    char **gparam, **gblock;
    bool *is_layer;
    double *gparam_norm, *gblock_norm;

    /* Summary. NAN where unknown. */
    int64_t params;     /* -1 if the model is unknown */
    bool params_exact;  /* counted from the run's weights (else from the model's defaults) */
    double final_train_err, best_val_err, test_err, wall_s, images_per_s;
    int64_t last_step;
} rp_run;

/* Reads one run directory. Needs config.json (with a "model") and metrics.jsonl; grads.jsonl
 * is optional. On failure prints one line ("resnet: DIR/metrics.jsonl:3: ...") and returns
 * false; the run is then empty and may be freed. */
bool rp_run_load(rp_run *r, const char *dir);
void rp_run_free(rp_run *r);

/* Options of the page. grad_step < 0: each run's last logged gradient step. */
typedef struct {
    const char *title;
    int64_t grad_step;
} rp_options;

/* Writes the page for n runs into b. Returns the number of <svg> charts drawn. */
int rp_html(rp_buf *b, const rp_run *runs, int n, const rp_options *o);

/* Writes the report for the run directories to out_path (atomically: a temporary file, then
 * rename). Prints one line on failure and returns false; on success *charts receives the
 * number of charts. */
bool rp_write_report(const char *out_path, const char *const *dirs, int n, const rp_options *o,
                     int *charts);

/* ---- charts (report_svg.c) ---- */

/* Okabe–Ito colours (colour-blind safe), for run i. */
const char *rp_color(int i);

typedef struct {
    const double *x, *y; /* n points; non-finite (and, on a log axis, non-positive) y split the
                          * line */
    int n;
    const char *color;
    double width;        /* stroke width in px */
    const char *dash;    /* stroke-dasharray, NULL for solid */
    bool markers;        /* circles at the points (always for a single point) */
    const char *label;   /* the series' <title>, shown as a tooltip */
} rp_series;

typedef struct {
    const char *label, *color;
    double width;
    const char *dash;
    bool marker;
} rp_legend_item;

typedef struct {
    const char *title, *subtitle, *xlabel, *ylabel;
    bool logy;
    bool y_from_zero;  /* a linear y axis starts at 0 */
    bool integer_x;    /* x ticks at whole numbers only */
    double y_max_cap;  /* > 0: the y axis ends at most here (e.g. 100 %) */
    const rp_series *series;
    int n_series;
    const rp_legend_item *legend;
    int n_legend;
} rp_line_chart;

void rp_svg_line_chart(rp_buf *b, const rp_line_chart *c);

typedef struct {
    const char *title, *subtitle, *xlabel, *ylabel, *bar_label;
    int rows, cols;
    const char *const *row_labels; /* rows */
    const int64_t *col_steps;      /* cols, increasing */
    const double *v;               /* (rows, cols); non-finite or <= 0: drawn grey */
    double vmin, vmax;             /* the log colour scale (shared between runs) */
    int id;                        /* makes the colour bar's gradient id unique in the page */
} rp_heatmap;

void rp_svg_heatmap(rp_buf *b, const rp_heatmap *h);

#endif
