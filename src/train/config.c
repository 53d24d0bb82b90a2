/*
 * config.c — training settings: defaults, named recipes, and config.json (written at the start
 * of a run so it can be reproduced, read back on resume). JSON through cJSON.
 */
#include "train.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

void rn_train_config_defaults(rn_train_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "resnet20");
    c->batch = 128;
    c->epochs = 1;
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->wd = 5e-4f;
    c->gamma = 0.1f;
    c->schedule = RN_SCHED_CONSTANT;
    c->augment = true;
    c->shuffle = true;
    c->log_every = 50;
    c->processes = 1;
    c->seed = 1;
}

rn_status rn_train_config_recipe(rn_train_config *c, const char *recipe) {
    if (strcmp(recipe, "he2015") != 0)
        return rn_fail(RN_ERR_BAD_ARG, "unknown recipe '%s' (expected he2015)", recipe);
    c->batch = 128;
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->wd = 1e-4f;
    c->nesterov = false;
    c->gamma = 0.1f;
    /* lr / 10 at 32k and 48k of the 64k steps, kept at 50% and 75% of a run made shorter or
     * longer with --iters or --epochs */
    c->schedule = RN_SCHED_MULTISTEP;
    c->milestones[0] = 50;
    c->milestones[1] = 75;
    c->n_milestones = 2;
    c->milestone_unit = RN_UNIT_PERCENT;
    c->iters = 64000;
    c->val = 5000;
    c->augment = true;
    c->warmup = 0;
    c->warmup_factor = 0;
    /* "we use 0.01 to warm up the training until the training error is below 80% (about 400
     * iterations), and then go back to 0.1" (He et al. 2015, section 4.2). */
    if (!strcmp(c->model, "resnet110") || !strcmp(c->model, "resnet1202")) {
        c->warmup = 400;
        c->warmup_factor = 0.1f;
    }
    return RN_OK;
}

/* ---- config.json: one table of fields, written and read by the same loop ---------------- */

static const char *const sched_names[] = {"constant", "multistep", "cosine", "onecycle", NULL};
static const char *const unit_names[] = {"steps", "epochs", "percent", NULL};

typedef enum {
    F_STR,    /* char[]: size bytes */
    F_INT,    /* int */
    F_I64,    /* int64_t */
    F_FLOAT,  /* float */
    F_BOOL,   /* bool */
    F_SEED,   /* uint64_t, written as a decimal string: JSON numbers lose 64 bits */
    F_ENUM,   /* an enum stored as int, written as one of names[] */
    F_MILESTONES,
} field_kind;

typedef struct {
    const char *key;
    field_kind kind;
    size_t off, size;
    double lo, hi;              /* numbers: the accepted range, the only statement of it: the
                                 * command line asks for it (rn_train_setting_range) */
    const char *const *names;   /* F_ENUM */
    bool optional;              /* absent in runs configured before the field existed */
} field;

#define AT(member) \
    .off = offsetof(rn_train_config, member), .size = sizeof(((rn_train_config *)0)->member)
_Static_assert(sizeof(rn_sched_kind) == sizeof(int), "F_ENUM fields are stored as int");
static const field fields[] = {
    {.key = "model", .kind = F_STR, AT(model)},
    {.key = "data", .kind = F_STR, AT(data)},
    {.key = "out", .kind = F_STR, AT(out)},
    {.key = "backend", .kind = F_STR, AT(backend)},
    {.key = "device", .kind = F_STR, AT(device), .optional = true},
    {.key = "precision", .kind = F_STR, AT(precision), .optional = true},
    {.key = "init", .kind = F_STR, AT(init)},
    {.key = "threads", .kind = F_INT, AT(threads), .lo = 0, .hi = 1024},
    {.key = "resize_h", .kind = F_INT, AT(resize_h), .lo = 0, .hi = 4096},
    {.key = "resize_w", .kind = F_INT, AT(resize_w), .lo = 0, .hi = 4096},
    {.key = "batch", .kind = F_INT, AT(batch), .lo = 1, .hi = 65536},
    {.key = "epochs", .kind = F_INT, AT(epochs), .lo = 0, .hi = 100000},
    {.key = "iters", .kind = F_I64, AT(iters), .lo = 0, .hi = 1e9},
    {.key = "val", .kind = F_INT, AT(val), .lo = 0, .hi = 1e8},
    {.key = "seed", .kind = F_SEED, AT(seed)},
    {.key = "lr", .kind = F_FLOAT, AT(lr), .lo = 0, .hi = 100},
    {.key = "momentum", .kind = F_FLOAT, AT(momentum), .lo = 0, .hi = 1},
    {.key = "wd", .kind = F_FLOAT, AT(wd), .lo = 0, .hi = 1},
    {.key = "gamma", .kind = F_FLOAT, AT(gamma), .lo = 0, .hi = 1},
    {.key = "nesterov", .kind = F_BOOL, AT(nesterov)},
    {.key = "wd_skip_bn", .kind = F_BOOL, AT(wd_skip_bn)},
    {.key = "schedule", .kind = F_ENUM, AT(schedule), .names = sched_names},
    {.key = "milestones", .kind = F_MILESTONES, AT(milestones), .lo = 0, .hi = 1e9},
    {.key = "milestone_unit", .kind = F_ENUM, AT(milestone_unit), .names = unit_names},
    {.key = "warmup", .kind = F_I64, AT(warmup), .lo = 0, .hi = 1e9},
    {.key = "warmup_factor", .kind = F_FLOAT, AT(warmup_factor), .lo = 0, .hi = 1},
    {.key = "label_smoothing", .kind = F_FLOAT, AT(label_smoothing), .lo = 0, .hi = 1},
    {.key = "augment", .kind = F_BOOL, AT(augment)},
    {.key = "shuffle", .kind = F_BOOL, AT(shuffle)},
    {.key = "log_every", .kind = F_INT, AT(log_every), .lo = 1, .hi = 1e9},
    {.key = "eval_every", .kind = F_INT, AT(eval_every), .lo = 0, .hi = 100000},
    {.key = "ckpt_every", .kind = F_I64, AT(ckpt_every), .lo = 0, .hi = 1e9},
    {.key = "log_grads", .kind = F_BOOL, AT(log_grads), .optional = true},
    {.key = "processes", .kind = F_INT, AT(processes), .lo = 1, .hi = 1 << 20, .optional = true},
    /* streamed sets */
    {.key = "data_memory", .kind = F_I64, AT(data_memory), .lo = 0, .hi = 1e15, .optional = true},
    {.key = "size", .kind = F_INT, AT(size), .lo = 0, .hi = 4096, .optional = true},
    {.key = "preset", .kind = F_STR, AT(preset), .optional = true},
    {.key = "skip_bad", .kind = F_BOOL, AT(skip_bad), .optional = true},
    {.key = "data_threads", .kind = F_INT, AT(data_threads), .lo = 0, .hi = 256, .optional = true},
    {.key = "sync_bn", .kind = F_BOOL, AT(sync_bn), .optional = true},
};
#undef AT

static int enum_get(const void *p) {
    int v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Adds field f of c to j. */
static void put_field(cJSON *j, const field *f, const rn_train_config *c) {
    const char *p = (const char *)c + f->off;
    switch (f->kind) {
    case F_STR: cJSON_AddStringToObject(j, f->key, p); break;
    case F_INT: cJSON_AddNumberToObject(j, f->key, *(const int *)p); break;
    case F_I64: cJSON_AddNumberToObject(j, f->key, (double)*(const int64_t *)p); break;
    /* The float's shortest decimal form ("lr": 0.1), which reads back as the same float. */
    case F_FLOAT: {
        char buf[32];
        snprintf(buf, sizeof buf, "%.9g", (double)*(const float *)p);
        for (int prec = 6; prec < 9; prec++) {
            char shorter[32];
            snprintf(shorter, sizeof shorter, "%.*g", prec, (double)*(const float *)p);
            if (strtof(shorter, NULL) == *(const float *)p) {
                memcpy(buf, shorter, sizeof buf);
                break;
            }
        }
        cJSON_AddRawToObject(j, f->key, buf);
        break;
    }
    case F_BOOL: cJSON_AddBoolToObject(j, f->key, *(const bool *)p); break;
    case F_SEED: {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)p);
        cJSON_AddStringToObject(j, f->key, buf);
        break;
    }
    case F_ENUM: cJSON_AddStringToObject(j, f->key, f->names[enum_get(p)]); break;
    case F_MILESTONES: {
        cJSON *ms = cJSON_AddArrayToObject(j, f->key);
        for (int i = 0; i < c->n_milestones; i++)
            cJSON_AddItemToArray(ms, cJSON_CreateNumber((double)c->milestones[i]));
        break;
    }
    }
}

/* Whether x is in field f's range (and whole, for integers). */
static bool in_range(const field *f, double x) {
    bool whole = f->kind != F_FLOAT;
    return x >= f->lo && x <= f->hi && (!whole || x == (double)(int64_t)x);
}

/* "an integer from 1 to 65536": what field f accepts, for messages. */
static const char *range_text(const field *f, char buf[96]) {
    snprintf(buf, 96, "%s from %.17g to %.17g", f->kind != F_FLOAT ? "an integer" : "a number",
             f->lo, f->hi);
    return buf;
}

static bool numeric(const field *f) {
    return f->kind == F_INT || f->kind == F_I64 || f->kind == F_FLOAT || f->kind == F_MILESTONES;
}

/* A number of field f in its range (and whole, for integers). */
static rn_status get_number(const cJSON *v, const field *f, const char *path, double *out) {
    if (!cJSON_IsNumber(v))
        return rn_fail(RN_ERR_BAD_FILE, "%s: field '%s' is missing or has the wrong type", RN_SHOW(path),
                       f->key);
    double x = v->valuedouble;
    char want[96];
    if (!in_range(f, x))
        return rn_fail(RN_ERR_BAD_FILE, "%s: field '%s' is %.17g, expected %s", RN_SHOW(path),
                       f->key, x, range_text(f, want));
    *out = x;
    return RN_OK;
}

/* Reads field f from j into c, checking its type and range. */
static rn_status get_field(const cJSON *j, const field *f, rn_train_config *c,
                           const char *path) {
    char *p = (char *)c + f->off;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, f->key);
    if (!v && f->optional) return RN_OK; /* the default stays */
    double x;
    rn_status s;
    switch (f->kind) {
    case F_STR:
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= f->size) break;
        memcpy(p, v->valuestring, strlen(v->valuestring) + 1);
        return RN_OK;
    case F_INT:
        if ((s = get_number(v, f, path, &x)) != RN_OK) return s;
        *(int *)p = (int)x;
        return RN_OK;
    case F_I64:
        if ((s = get_number(v, f, path, &x)) != RN_OK) return s;
        *(int64_t *)p = (int64_t)x;
        return RN_OK;
    case F_FLOAT:
        if ((s = get_number(v, f, path, &x)) != RN_OK) return s;
        *(float *)p = (float)x;
        return RN_OK;
    case F_BOOL:
        if (!cJSON_IsBool(v)) break;
        *(bool *)p = cJSON_IsTrue(v);
        return RN_OK;
    case F_SEED: {
        char *end;
        if (!cJSON_IsString(v) || !isdigit((unsigned char)v->valuestring[0])) break;
        errno = 0;
        unsigned long long u = strtoull(v->valuestring, &end, 10);
        if (*end || errno == ERANGE) break;
        *(uint64_t *)p = u;
        return RN_OK;
    }
    case F_ENUM:
        if (!cJSON_IsString(v)) break;
        for (int i = 0; f->names[i]; i++)
            if (!strcmp(v->valuestring, f->names[i])) {
                memcpy(p, &i, sizeof i);
                return RN_OK;
            }
        return rn_fail(RN_ERR_BAD_FILE, "%s: field '%s' is '%s', an unknown value", RN_SHOW(path),
                       f->key, RN_SHOW(v->valuestring));
    case F_MILESTONES: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > RN_MAX_MILESTONES) break;
        c->n_milestones = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            if ((s = get_number(e, f, path, &x)) != RN_OK) return s;
            c->milestones[c->n_milestones++] = (int64_t)x;
        }
        return RN_OK;
    }
    }
    return rn_fail(RN_ERR_BAD_FILE, "%s: field '%s' is missing or has the wrong type", RN_SHOW(path),
                   f->key);
}

rn_status rn_train_setting_range(const char *key, double *lo, double *hi, bool *integer) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        if (strcmp(f->key, key) != 0 || !numeric(f)) continue;
        *lo = f->lo;
        *hi = f->hi;
        *integer = f->kind != F_FLOAT;
        return RN_OK;
    }
    return rn_fail(RN_ERR_BAD_ARG, "'%s' is not a numeric training setting", RN_SHOW(key));
}

/* Field f of c as a double (numeric fields but milestones). */
static double number_of(const field *f, const rn_train_config *c) {
    const char *p = (const char *)c + f->off;
    switch (f->kind) {
    case F_INT: return *(const int *)p;
    case F_I64: return (double)*(const int64_t *)p;
    default: return *(const float *)p;
    }
}

rn_status rn_train_config_check(const rn_train_config *c) {
    char want[96];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        if (!numeric(f)) continue;
        if (f->kind == F_MILESTONES) {
            if (c->n_milestones < 0 || c->n_milestones > RN_MAX_MILESTONES)
                return rn_fail(RN_ERR_BAD_ARG, "setting 'milestones': %d of them, expected 0 to %d",
                               c->n_milestones, RN_MAX_MILESTONES);
            for (int k = 0; k < c->n_milestones; k++)
                if (!in_range(f, (double)c->milestones[k]))
                    return rn_fail(RN_ERR_BAD_ARG, "setting 'milestones': %lld, expected %s",
                                   (long long)c->milestones[k], range_text(f, want));
            continue;
        }
        double x = number_of(f, c);
        if (!in_range(f, x))
            return rn_fail(RN_ERR_BAD_ARG, "setting '%s' is %.*g, expected %s", f->key,
                           f->kind == F_FLOAT ? 9 : 17, x, range_text(f, want));
    }
    return RN_OK;
}

rn_status rn_train_config_save(const rn_train_config *c, const char *path) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return rn_fail(RN_ERR_NOMEM, "cannot build config.json");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) put_field(j, &fields[i], c);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return rn_fail(RN_ERR_NOMEM, "cannot format config.json");
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator; the length below covers it */
    const void *parts[] = {text};
    size_t sizes[] = {len + 1};
    rn_status s = rn_write_file_atomic(path, parts, sizes, 1);
    cJSON_free(text);
    return s;
}

rn_status rn_train_config_load(rn_train_config *c, const char *run_dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    void *buf;
    size_t size;
    rn_status s = rn_read_file(path, &buf, &size);
    if (s != RN_OK) return s;
    cJSON *j = cJSON_ParseWithLength(buf, size);
    rn_free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a JSON object", RN_SHOW(path));
    }
    rn_train_config_defaults(c);
    for (size_t i = 0; s == RN_OK && i < sizeof fields / sizeof fields[0]; i++)
        s = get_field(j, &fields[i], c, path);
    cJSON_Delete(j);
    return s;
}
