/*
 * report_runs.c — reads a training run directory for `resnet report`: config.json (the model and
 * the recipe), metrics.jsonl (training and evaluation lines) and grads.jsonl (gradient norms,
 * from `resnet train --log-grads`), and computes the summary numbers. Every malformed input is
 * one printed line naming the file and line, and a false return.
 */
#include "cli.h"
#include "format.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text buffer ---- */

void rp_printf(rp_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

void rp_escape(rp_buf *b, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': rp_printf(b, "&amp;"); break;
        case '<': rp_printf(b, "&lt;"); break;
        case '>': rp_printf(b, "&gt;"); break;
        case '"': rp_printf(b, "&quot;"); break;
        case '\'': rp_printf(b, "&#39;"); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n') rp_printf(b, "?");
            else rp_printf(b, "%c", *p);
        }
    }
}

void rp_buf_free(rp_buf *b) {
    free(b->s);
    *b = (rp_buf){0};
}

/* ---- reading ---- */

/* Reads a whole file, NUL-terminated. Returns NULL with errno set. */
static char *read_text(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    while (s) {
        len += fread(s + len, 1, cap - len - 1, f);
        if (ferror(f)) {
            free(s);
            s = NULL;
            break;
        }
        if (feof(f)) break;
        char *t = realloc(s, cap * 2);
        if (!t) {
            free(s);
            s = NULL;
            break;
        }
        s = t;
        cap *= 2;
    }
    fclose(f);
    if (!s) {
        errno = errno ? errno : ENOMEM;
        return NULL;
    }
    s[len] = 0;
    *size = len;
    return s;
}

/* A number field: NAN when absent; false when present but not a number. */
static bool opt_num(const cJSON *j, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NAN;
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static const char *opt_str(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool load_config(rp_run *r) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    size_t size;
    char *text = read_text(path, &size);
    if (!text) {
        cli_error("%s: cannot read (%s); a run directory written by `resnet train` has one", path,
                  strerror(errno));
        return false;
    }
    cJSON *j = cJSON_ParseWithLength(text, size);
    free(text);
    const char *model = opt_str(j, "model");
    if (!cJSON_IsObject(j) || !model || !model[0]) {
        cJSON_Delete(j);
        return cli_error("%s: not a JSON object with a \"model\" string", path), false;
    }
    snprintf(r->model, sizeof r->model, "%s", model);
    const char *data = opt_str(j, "data");
    snprintf(r->data, sizeof r->data, "%s", data ? data : "?");
    double batch, lr, wd, mom, iters, epochs, gamma, val;
    opt_num(j, "batch", &batch);
    opt_num(j, "lr", &lr);
    opt_num(j, "wd", &wd);
    opt_num(j, "momentum", &mom);
    opt_num(j, "iters", &iters);
    opt_num(j, "epochs", &epochs);
    opt_num(j, "gamma", &gamma);
    opt_num(j, "val", &val);
    r->iters = isfinite(iters) && iters > 0 ? (int64_t)iters : 0;
    const char *sched = opt_str(j, "schedule"), *unit = opt_str(j, "milestone_unit");
    const char *seed = opt_str(j, "seed");
    const cJSON *aug = cJSON_GetObjectItemCaseSensitive(j, "augment");
    char ms[160] = "";
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "milestones"), *e;
    if (sched && !strcmp(sched, "multistep") && cJSON_IsArray(m)) {
        size_t n = 0;
        const char *suffix = unit && !strcmp(unit, "percent") ? "%"
                             : unit && !strcmp(unit, "steps") ? " it"
                                                              : " ep";
        cJSON_ArrayForEach(e, m) {
            if (cJSON_IsNumber(e) && n < sizeof ms - 24)
                n += (size_t)snprintf(ms + n, sizeof ms - n, "%s%g%s", n ? ", " : " at ",
                                      e->valuedouble, suffix);
        }
        if (isfinite(gamma) && n < sizeof ms - 24)
            snprintf(ms + n, sizeof ms - n, " (×%g)", gamma);
    }
    double warmup;
    opt_num(j, "warmup", &warmup);
    size_t n_ms = strlen(ms);
    if (isfinite(warmup) && warmup > 0 && n_ms < sizeof ms - 40)
        snprintf(ms + n_ms, sizeof ms - n_ms, ", warm-up %g step%s", warmup, cli_plural(warmup));
    /* Where it ran: the device for GPU runs (with the precision when given), else the CPU
     * backend ("" is the default one: cpu-winograd since 2026-12-07, cpu before). */
    const char *device = opt_str(j, "device"), *backend = opt_str(j, "backend");
    const char *precision = opt_str(j, "precision");
    char where[96];
    int cuda_index = -1;
    if (device && rn_device_parse(device, &cuda_index) == RN_OK && cuda_index >= 0)
        snprintf(where, sizeof where, "%s%s%s", device, precision && *precision ? " " : "",
                 precision ? precision : "");
    else snprintf(where, sizeof where, "%s", backend && *backend ? backend : "default backend");
    char length[64];
    if (r->iters > 0)
        snprintf(length, sizeof length, "%lld iteration%s", (long long)r->iters,
                 cli_plural((double)r->iters));
    else snprintf(length, sizeof length, "%g epoch%s", epochs, cli_plural(epochs));
    snprintf(r->settings, sizeof r->settings,
             "batch %g · lr %g %s%s · momentum %g · wd %g · %s · %s · val %g · seed %s · %s",
             batch, lr, sched ? sched : "?", ms, mom, wd, length,
             cJSON_IsBool(aug) ? (cJSON_IsTrue(aug) ? "crop+flip" : "no augmentation") : "?", val,
             seed ? seed : "?", where);
    cJSON_Delete(j);
    return true;
}

/* A run being read, with the capacities of its growing arrays. */
typedef struct {
    rp_run *r;
    int train_cap, eval_cap, gstep_cap;
} loader;

/* Calls fn for every non-empty line of a JSON-lines file. A last line without its newline that
 * does not parse is a line still being written, and is skipped. */
typedef bool (*line_fn)(loader *L, const cJSON *j, const char *path, int line);

static bool each_line(loader *L, const char *path, char *text, line_fn fn) {
    int lineno = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        char *next = nl ? nl + 1 : line + len;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == len) {
            line = next;
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(line, len);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (!cJSON_IsObject(j) || !cJSON_IsNumber(step)) {
            cJSON_Delete(j);
            if (!nl) break; /* an unfinished last line */
            cli_error("%s:%d: not a JSON object with a numeric \"step\"", path, lineno);
            return false;
        }
        bool ok = fn(L, j, path, lineno);
        cJSON_Delete(j);
        if (!ok) return false;
        line = next;
    }
    return true;
}

static bool grow(void **p, int n, int *cap, size_t elem) {
    if (n < *cap) return true;
    int c = *cap ? *cap * 2 : 64;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool metrics_line(loader *L, const cJSON *j, const char *path, int line) {
    rp_run *r = L->r;
    int64_t step = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "step")->valuedouble;
    const char *bad = NULL;
    if (cJSON_HasObjectItem(j, "train_loss")) {
        rp_train_point p = {.step = step};
        if (!opt_num(j, "lr", &p.lr)) bad = "lr";
        else if (!opt_num(j, "train_loss", &p.loss)) bad = "train_loss";
        else if (!opt_num(j, "train_acc", &p.acc)) bad = "train_acc";
        else if (!opt_num(j, "images_per_s", &p.images_per_s)) bad = "images_per_s";
        else if (!opt_num(j, "elapsed_s", &p.elapsed_s)) bad = "elapsed_s";
        if (!bad) {
            if (!grow((void **)&r->train, r->n_train, &L->train_cap, sizeof p))
                return cli_error("%s: out of memory", path), false;
            r->train[r->n_train++] = p;
        }
    } else if (cJSON_HasObjectItem(j, "val_acc") || cJSON_HasObjectItem(j, "test_acc")) {
        rp_eval_point p = {.step = step};
        if (!opt_num(j, "val_acc", &p.val_acc)) bad = "val_acc";
        else if (!opt_num(j, "test_acc", &p.test_acc)) bad = "test_acc";
        else if (!opt_num(j, "elapsed_s", &p.elapsed_s)) bad = "elapsed_s";
        if (!bad) {
            if (!grow((void **)&r->eval, r->n_eval, &L->eval_cap, sizeof p))
                return cli_error("%s: out of memory", path), false;
            r->eval[r->n_eval++] = p;
        }
    }
    if (bad) return cli_error("%s:%d: \"%s\" is not a number", path, line, bad), false;
    return true;
}

/* Reads one {"name": number, ...} object of a grads.jsonl line into row (n values), by the
 * names of the first line. */
static bool grads_object(const cJSON *obj, char **names, int n, double *row, const char *key,
                         const char *path, int line) {
    if (!cJSON_IsObject(obj))
        return cli_error("%s:%d: \"%s\" is not an object of norms", path, line, key), false;
    for (int i = 0; i < n; i++) row[i] = NAN;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) {
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) /* null: not finite when logged */
            return cli_error("%s:%d: %s \"%s\" is not a number", path, line, key, e->string),
                   false;
        int at = i < n && !strcmp(names[i], e->string) ? i : -1; /* the usual order */
        for (int k = 0; at < 0 && k < n; k++)
            if (!strcmp(names[k], e->string)) at = k;
        if (at >= 0) row[at] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        i++;
    }
    return true;
}

static bool names_of(const cJSON *obj, char ***names, int *n) {
    *n = cJSON_GetArraySize(obj);
    *names = calloc((size_t)(*n ? *n : 1), sizeof **names);
    if (!*names) return false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) {
        if (!((*names)[i++] = strdup(e->string))) return false;
    }
    return true;
}

static bool grads_line(loader *L, const cJSON *j, const char *path, int line) {
    rp_run *r = L->r;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");
    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(j, "blocks");
    if (!cJSON_IsObject(params) || !cJSON_IsObject(blocks))
        return cli_error("%s:%d: expected \"params\" and \"blocks\" objects", path, line), false;
    if (r->n_gsteps == 0) {
        if (!names_of(params, &r->gparam, &r->n_gparams) ||
            !names_of(blocks, &r->gblock, &r->n_gblocks))
            return cli_error("%s: out of memory", path), false;
    }
    int n = r->n_gsteps, cap = L->gstep_cap;
    if (!grow((void **)&r->gstep, n, &L->gstep_cap, sizeof *r->gstep))
        return cli_error("%s: out of memory", path), false;
    if (L->gstep_cap != cap) {
        size_t rows = (size_t)L->gstep_cap;
        double *p = realloc(r->gparam_norm, rows * (size_t)(r->n_gparams + 1) * sizeof *p);
        if (p) r->gparam_norm = p;
        double *q = realloc(r->gblock_norm, rows * (size_t)(r->n_gblocks + 1) * sizeof *q);
        if (q) r->gblock_norm = q;
        if (!p || !q) return cli_error("%s: out of memory", path), false;
    }
    r->gstep[n] = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "step")->valuedouble;
    if (!grads_object(params, r->gparam, r->n_gparams, r->gparam_norm + (size_t)n * r->n_gparams,
                      "params", path, line) ||
        !grads_object(blocks, r->gblock, r->n_gblocks, r->gblock_norm + (size_t)n * r->n_gblocks,
                      "blocks", path, line))
        return false;
    r->n_gsteps++;
    return true;
}

/* Counts the parameters (from the run's weights when they exist) and marks which gradient
 * tensors are layers (conv and linear weights). */
static void model_facts(rp_run *r) {
    rn_model *m = NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/last.safetensors", r->dir);
    r->params = -1;
    r->params_exact = false;
    if (rn_model_create_from_file(&m, path, NULL) == RN_OK && !strcmp(rn_model_name(m), r->model))
        r->params_exact = true;
    else {
        rn_model_free(m);
        m = NULL;
        if (rn_model_create(&m, r->model, NULL, 0) != RN_OK) m = NULL;
    }
    if (m) r->params = rn_model_param_count(m);
    int layers = 0;
    for (int i = 0; i < r->n_gparams; i++) {
        const rn_tensor_info *t = m ? rn_model_find_tensor(m, r->gparam[i]) : NULL;
        r->is_layer[i] = t ? t->ndim >= 2 : false;
        layers += r->is_layer[i];
    }
    if (layers == 0)
        for (int i = 0; i < r->n_gparams; i++) r->is_layer[i] = true;
    rn_model_free(m);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(rp_run *r) {
    r->final_train_err = r->best_val_err = r->test_err = r->wall_s = r->images_per_s = NAN;
    r->last_step = 0;
    /* The mean over the last (up to) 5 logged intervals: one interval is noisy. */
    double sum = 0;
    int k = 0;
    for (int i = r->n_train - 1; i >= 0 && i >= r->n_train - 5; i--)
        if (isfinite(r->train[i].acc)) sum += 1 - r->train[i].acc, k++;
    if (k > 0) r->final_train_err = 100 * sum / k;
    double *ips = malloc((size_t)(r->n_train + 1) * sizeof *ips);
    int n_ips = 0;
    for (int i = 0; i < r->n_train; i++) {
        const rp_train_point *p = &r->train[i];
        if (ips && isfinite(p->images_per_s) && p->images_per_s > 0) ips[n_ips++] = p->images_per_s;
        if (isfinite(p->elapsed_s) && !(p->elapsed_s <= r->wall_s)) r->wall_s = p->elapsed_s;
        if (p->step > r->last_step) r->last_step = p->step;
    }
    if (n_ips > 0) { /* the median: robust to a slow first interval */
        qsort(ips, (size_t)n_ips, sizeof *ips, cmp_double);
        r->images_per_s = n_ips % 2 ? ips[n_ips / 2] : (ips[n_ips / 2 - 1] + ips[n_ips / 2]) / 2;
    }
    free(ips);
    for (int i = 0; i < r->n_eval; i++) {
        const rp_eval_point *p = &r->eval[i];
        if (isfinite(p->val_acc) && !(100 * (1 - p->val_acc) >= r->best_val_err))
            r->best_val_err = 100 * (1 - p->val_acc);
        if (isfinite(p->test_acc)) r->test_err = 100 * (1 - p->test_acc);
        if (isfinite(p->elapsed_s) && !(p->elapsed_s <= r->wall_s)) r->wall_s = p->elapsed_s;
        if (p->step > r->last_step) r->last_step = p->step;
    }
}

bool rp_run_load(rp_run *r, const char *dir) {
    memset(r, 0, sizeof *r);
    loader L = {.r = r};
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--; /* "runs/r20/" is labelled r20 */
    if (dl >= sizeof r->dir) return cli_error("%s: path too long", dir), false;
    memcpy(r->dir, dir, dl);
    r->dir[dl] = 0;
    const char *base = strrchr(r->dir, '/');
    const char *label = base && base[1] ? base + 1 : r->dir;
    size_t ll = strlen(label) < sizeof r->name - 1 ? strlen(label) : sizeof r->name - 1;
    memcpy(r->name, label, ll);
    r->name[ll] = 0;
    if (!load_config(r)) return false;

    char path[1100];
    size_t size;
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    char *text = read_text(path, &size);
    if (!text)
        return cli_error("%s: cannot read (%s); is %s a run directory of `resnet train`?", path,
                         strerror(errno), r->dir),
               false;
    bool ok = each_line(&L, path, text, metrics_line);
    free(text);
    if (!ok) return false;

    snprintf(path, sizeof path, "%s/grads.jsonl", r->dir);
    text = read_text(path, &size);
    if (text) {
        ok = each_line(&L, path, text, grads_line);
        free(text);
        if (!ok) return false;
    } else if (errno != ENOENT) {
        return cli_error("%s: cannot read (%s)", path, strerror(errno)), false;
    }
    r->is_layer = calloc((size_t)r->n_gparams + 1, sizeof *r->is_layer);
    if (!r->is_layer) return cli_error("%s: out of memory", r->dir), false;
    model_facts(r);
    summarize(r);
    return true;
}

void rp_run_free(rp_run *r) {
    free(r->train);
    free(r->eval);
    for (int i = 0; r->gparam && i < r->n_gparams; i++) free(r->gparam[i]);
    for (int i = 0; r->gblock && i < r->n_gblocks; i++) free(r->gblock[i]);
    free(r->gparam);
    free(r->gblock);
    free(r->gstep);
    free(r->is_layer);
    free(r->gparam_norm);
    free(r->gblock_norm);
    memset(r, 0, sizeof *r);
}
