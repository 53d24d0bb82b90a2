/*
 * weights.c — a model's state as a safetensors file under PyTorch's state_dict names, so that
 * weights move between resnet.c and PyTorch in both directions.
 *
 * Metadata written: "format" = "pt", "model", "in_channels", "in_height", "in_width",
 * "num_classes", "mean" and "std" (comma-separated per-channel normalization), and with
 * rn_model_save_named "class_names" (a JSON array of the names in label order).
 */
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>

rn_norm rn_model_default_norm(const rn_model *m) {
    rn_norm n = {.channels = m->opts.in_channels};
    static const float cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f};
    static const float cifar_std[3] = {0.2470f, 0.2435f, 0.2616f};
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
    static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    bool imagenet = m->family == RN_FAMILY_IMAGENET;
    const float *mean = imagenet ? imagenet_mean : cifar_mean;
    const float *std = imagenet ? imagenet_std : cifar_std;
    for (int c = 0; c < n.channels && c < 4; c++) {
        if (n.channels == 3) {
            n.mean[c] = mean[c];
            n.std[c] = std[c];
        } else { /* gray or 4-channel input: the average of the RGB statistics */
            n.mean[c] = (mean[0] + mean[1] + mean[2]) / 3;
            n.std[c] = (std[0] + std[1] + std[2]) / 3;
        }
    }
    return n;
}

static void format_floats(char *buf, size_t size, const float *v, int n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%.9g" : "%.9g", (double)v[i]);
}

rn_status rn_model_save_ext(const rn_model *m, const char *path, const rn_norm *norm,
                            const rn_st_tensor *extra, int n_extra, const char *const *keys,
                            const char *const *vals, int n_meta) {
    rn_norm nm = norm ? *norm : rn_model_default_norm(m);
    int nt = m->n_tensors + n_extra;
    rn_st_tensor *ts = calloc((size_t)nt, sizeof *ts);
    const char **mk = calloc((size_t)n_meta + 8, sizeof *mk);
    const char **mv = calloc((size_t)n_meta + 8, sizeof *mv);
    if (!ts || !mk || !mv) {
        free(ts);
        free(mk);
        free(mv);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the tensor list", RN_SHOW(path));
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_info *t = &m->tensors[i].info;
        ts[i].name = (char *)t->name;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
        if (t->kind == RN_TENSOR_COUNTER) {
            ts[i].dtype = RN_DTYPE_I64;
            ts[i].nbytes = sizeof(int64_t);
            ts[i].data = t->counter;
        } else {
            ts[i].dtype = RN_DTYPE_F32;
            ts[i].nbytes = t->numel * sizeof(float);
            ts[i].data = t->data;
        }
    }
    for (int i = 0; i < n_extra; i++) ts[m->n_tensors + i] = extra[i];
    char ch[16], h[16], w[16], k[16], mean[128], std[128];
    snprintf(ch, sizeof ch, "%d", m->opts.in_channels);
    snprintf(h, sizeof h, "%d", m->opts.in_height);
    snprintf(w, sizeof w, "%d", m->opts.in_width);
    snprintf(k, sizeof k, "%d", m->opts.num_classes);
    format_floats(mean, sizeof mean, nm.mean, nm.channels);
    format_floats(std, sizeof std, nm.std, nm.channels);
    const char *keys0[] = {"format", "model", "in_channels", "in_height", "in_width",
                           "num_classes", "mean", "std"};
    const char *vals0[] = {"pt", m->name, ch, h, w, k, mean, std};
    for (int i = 0; i < 8; i++) {
        mk[i] = keys0[i];
        mv[i] = vals0[i];
    }
    for (int i = 0; i < n_meta; i++) {
        mk[8 + i] = keys[i];
        mv[8 + i] = vals[i];
    }
    rn_status s = rn_safetensors_write(path, ts, nt, mk, mv, 8 + n_meta);
    free(ts);
    free(mk);
    free(mv);
    return s;
}

rn_status rn_model_save(const rn_model *m, const char *path, const rn_norm *norm) {
    return rn_model_save_ext(m, path, norm, NULL, 0, NULL, NULL, 0);
}

#define CLASS_NAMES_KEY "class_names"

/* Whether a class name can be stored and printed in one field of a line: not empty, no tab or
 * line break. */
static bool class_name_ok(const char *name) {
    return name && name[0] && !strpbrk(name, "\t\n\r");
}

rn_status rn_model_save_named(const rn_model *m, const char *path, const rn_norm *norm,
                              char *const *class_names) {
    if (!class_names) return rn_model_save(m, path, norm);
    int k = m->opts.num_classes;
    for (int i = 0; i < k; i++)
        if (!class_name_ok(class_names[i]))
            return rn_fail(RN_ERR_BAD_ARG, "%s: class %d's name is empty or holds a tab or line "
                           "break (expected one printable field per class)", path, i);
    cJSON *names = cJSON_CreateStringArray((const char *const *)class_names, k);
    char *json = names ? cJSON_PrintUnformatted(names) : NULL;
    cJSON_Delete(names);
    if (!json) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the class names", path);
    const char *keys[] = {CLASS_NAMES_KEY}, *vals[] = {json};
    rn_status s = rn_model_save_ext(m, path, norm, NULL, 0, keys, vals, 1);
    cJSON_free(json);
    return s;
}

void rn_class_names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

rn_status rn_weights_class_names(const char *path, int num_classes, char ***names) {
    *names = NULL;
    rn_safetensors st;
    rn_status s = rn_safetensors_read(&st, path);
    if (s) return s;
    const char *v = rn_safetensors_meta(&st, CLASS_NAMES_KEY);
    cJSON *j = v ? cJSON_Parse(v) : NULL;
    bool ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) == num_classes;
    char **out = ok ? calloc((size_t)(num_classes > 0 ? num_classes : 1), sizeof *out) : NULL;
    int i = 0;
    for (const cJSON *e = j ? j->child : NULL; out && e; e = e->next, i++)
        if (!cJSON_IsString(e) || !class_name_ok(e->valuestring) ||
            !(out[i] = strdup(e->valuestring))) {
            rn_class_names_free(out, num_classes);
            out = NULL;
        }
    cJSON_Delete(j);
    rn_safetensors_free(&st);
    if (v && !out)
        return rn_fail(RN_ERR_BAD_FILE, "%s: metadata " CLASS_NAMES_KEY " is not a JSON array of "
                       "%d non-empty names without tabs or line breaks", path, num_classes);
    *names = out;
    return RN_OK;
}

/* Length of the number at p written as JSON writes one (-?digits[.digits][e[+-]digits]: no
 * spaces, no '+', no leading zero, no hex, no inf or nan), 0 if none. */
static size_t number_len(const char *p) {
    const char *q = p;
    if (*q == '-') q++;
    if (*q < '0' || *q > '9') return 0;
    if (*q == '0' && q[1] >= '0' && q[1] <= '9') return 0; /* leading zero */
    while (*q >= '0' && *q <= '9') q++;
    if (*q == '.') {
        if (*++q < '0' || *q > '9') return 0;
        while (*q >= '0' && *q <= '9') q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (*q < '0' || *q > '9') return 0;
        while (*q >= '0' && *q <= '9') q++;
    }
    return (size_t)(q - p);
}

/* Parses "a,b,c" metadata into floats; false if malformed, not exactly `expect` values, or a
 * value beyond the float range (1e40 would become infinity). */
static bool parse_norm_list(const char *s, float *out, int expect) {
    int n = 0;
    for (const char *p = s;; p++) {
        size_t len = number_len(p);
        if (len == 0 || n == expect) return false;
        float v = strtof(p, NULL);
        if (!isfinite(v)) return false;
        out[n++] = v;
        p += len;
        if (*p == 0) return n == expect;
        if (*p != ',') return false;
    }
}

static rn_status read_norm(const rn_safetensors *st, const char *path, const rn_model *m,
                           rn_norm *norm) {
    *norm = rn_model_default_norm(m);
    const char *mean = rn_safetensors_meta(st, "mean"), *std = rn_safetensors_meta(st, "std");
    if (!mean && !std) return RN_OK;
    rn_norm n = {.channels = m->opts.in_channels};
    if (!mean || !std)
        return rn_fail(RN_ERR_BAD_FILE, "%s: metadata has \"%s\" but no \"%s\" (expected both "
                       "or neither)", RN_SHOW(path), mean ? "mean" : "std", mean ? "std" : "mean");
    if (!parse_norm_list(mean, n.mean, n.channels) || !parse_norm_list(std, n.std, n.channels))
        return rn_fail(RN_ERR_BAD_FILE, "%s: metadata mean '%s' / std '%s': expected %d "
                       "comma-separated decimal numbers each, within the float range",
                       RN_SHOW(path), RN_SHOW(mean), RN_SHOW(std), n.channels);
    for (int c = 0; c < n.channels; c++)
        if (!(n.std[c] > 0))
            return rn_fail(RN_ERR_BAD_FILE, "%s: metadata std '%s': every value must be "
                           "positive", RN_SHOW(path), RN_SHOW(std));
    *norm = n;
    return RN_OK;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f;
    if (exp == 0) f = ldexpf((float)man, -24);
    else if (exp == 31) f = man ? NAN : INFINITY;
    else f = ldexpf((float)(man | 0x400), (int)exp - 25);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= sign;
    memcpy(&f, &bits, 4);
    return f;
}

/* Copies one file tensor into model storage, converting floating dtypes to fp32. */
static void copy_tensor(float *dst, const rn_st_tensor *t, size_t n) {
    const unsigned char *src = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case RN_DTYPE_F32: memcpy(&dst[i], src + 4 * i, 4); break;
        case RN_DTYPE_F64: {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
            break;
        }
        case RN_DTYPE_F16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = half_to_float(h);
            break;
        }
        case RN_DTYPE_BF16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
            break;
        }
        default: break;
        }
    }
}

/* The file's tensor for a model key: the name itself or under DataParallel's "module." prefix. */
static const rn_st_tensor *find_key(const rn_safetensors *st, const char *name) {
    const rn_st_tensor *t = rn_safetensors_find(st, name);
    if (!t) {
        char buf[128];
        snprintf(buf, sizeof buf, "module.%s", name);
        t = rn_safetensors_find(st, buf);
    }
    return t;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld",
                                 (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* Checks every tensor of the file against the model before anything is copied, so a failed
 * load leaves the model as it was. */
static rn_status check_tensors(const rn_model *m, const rn_safetensors *st, const char *path,
                               const char *ignore_prefix) {
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_info *mt = &m->tensors[i].info;
        const rn_st_tensor *t = find_key(st, mt->name);
        int64_t want[4];
        for (int d = 0; d < mt->ndim; d++) want[d] = mt->shape[d];
        char wants[64], gots[96];
        shape_str(wants, sizeof wants, mt->ndim, want);
        if (!t) {
            if (mt->kind == RN_TENSOR_COUNTER) continue; /* older PyTorch files lack it */
            return rn_fail(RN_ERR_MISSING_KEY,
                           "%s: missing tensor '%s' (model %s expects it with shape %s)",
                           RN_SHOW(path), RN_SHOW(mt->name), RN_SHOW(m->name), wants);
        }
        bool float_ok = t->dtype == RN_DTYPE_F32 || t->dtype == RN_DTYPE_F64 ||
                        t->dtype == RN_DTYPE_F16 || t->dtype == RN_DTYPE_BF16;
        bool int_ok = t->dtype == RN_DTYPE_I64 || t->dtype == RN_DTYPE_I32;
        if (mt->kind == RN_TENSOR_COUNTER ? !int_ok : !float_ok)
            return rn_fail(RN_ERR_SHAPE, "%s: tensor '%s' has dtype %s (expected %s)",
                           RN_SHOW(path), RN_SHOW(mt->name), rn_dtype_name(t->dtype),
                           mt->kind == RN_TENSOR_COUNTER ? "I64" : "F32, F16, BF16 or F64");
        bool same = t->ndim == mt->ndim;
        for (int d = 0; same && d < mt->ndim; d++) same = t->shape[d] == mt->shape[d];
        if (!same) {
            shape_str(gots, sizeof gots, t->ndim, t->shape);
            return rn_fail(RN_ERR_SHAPE, "%s: tensor '%s' has shape %s (model %s expects %s)",
                           RN_SHOW(path), RN_SHOW(mt->name), gots, RN_SHOW(m->name), wants);
        }
    }
    /* Strict like PyTorch's load_state_dict: a tensor the model does not have is an error. */
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name;
        const char *bare = strncmp(name, "module.", 7) == 0 ? name + 7 : name;
        if (ignore_prefix && strncmp(name, ignore_prefix, strlen(ignore_prefix)) == 0) continue;
        if (!rn_model_find_tensor(m, bare))
            return rn_fail(RN_ERR_SHAPE, "%s: unexpected tensor '%s' (model %s has no such key)",
                           RN_SHOW(path), RN_SHOW(name), RN_SHOW(m->name));
    }
    return RN_OK;
}

rn_status rn_model_load_st(rn_model *m, const rn_safetensors *st, const char *path,
                           const char *ignore_prefix, rn_norm *norm) {
    const char *model = rn_safetensors_meta(st, "model");
    if (model && strcmp(model, m->name) != 0)
        return rn_fail(RN_ERR_SHAPE, "%s: holds weights of model '%s', not '%s'", RN_SHOW(path),
                       RN_SHOW(model), RN_SHOW(m->name));
    rn_norm n;
    rn_status s;
    if ((s = check_tensors(m, st, path, ignore_prefix)) != RN_OK ||
        (s = read_norm(st, path, m, &n)) != RN_OK)
        return s;
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_info *mt = &m->tensors[i].info;
        const rn_st_tensor *t = find_key(st, mt->name);
        if (!t) {
            *mt->counter = 0;
        } else if (mt->kind == RN_TENSOR_COUNTER) {
            if (t->dtype == RN_DTYPE_I64) {
                memcpy(mt->counter, t->data, 8);
            } else {
                int32_t v;
                memcpy(&v, t->data, 4);
                *mt->counter = v;
            }
        } else {
            copy_tensor(mt->data, t, mt->numel);
        }
    }
    if (norm) *norm = n;
    return RN_OK;
}

rn_status rn_model_load(rn_model *m, const char *path, rn_norm *norm) {
    rn_safetensors st;
    rn_status s = rn_safetensors_read(&st, path);
    if (s != RN_OK) return s;
    s = rn_model_load_st(m, &st, path, NULL, norm);
    rn_safetensors_free(&st);
    return s;
}

rn_status rn_model_create_from_file(rn_model **out, const char *path, rn_norm *norm) {
    *out = NULL;
    rn_safetensors st;
    rn_status s = rn_safetensors_read(&st, path); /* read once: metadata, then the tensors */
    if (s != RN_OK) return s;
    const char *model = rn_safetensors_meta(&st, "model");
    static const char *const geometry[4] = {"in_channels", "in_height", "in_width",
                                            "num_classes"};
    long g[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4 && s == RN_OK; i++)
        s = rn_safetensors_meta_int(&st, path, geometry[i], 1, 1000000, &g[i]);
    rn_model_opts o = {(int)g[0], (int)g[1], (int)g[2], (int)g[3]};
    rn_model *m = NULL;
    if (s != RN_OK) {
        /* the message names the field */
    } else if (!model || !model[0]) {
        s = rn_fail(RN_ERR_BAD_FILE,
                    "%s: no model name in the metadata (name the model, e.g. --model resnet20)",
                    RN_SHOW(path));
    } else if (strlen(model) > 100) { /* no model has such a name; do not echo it whole */
        s = rn_fail(RN_ERR_UNKNOWN_MODEL, "%s: metadata: unknown model '%s'", RN_SHOW(path),
                    RN_SHOW(model));
    } else if ((s = rn_model_create(&m, model, &o, 0)) != RN_OK) {
        /* The model name or geometry came from the file: say which file. */
        char why[512];
        snprintf(why, sizeof why, "%s", rn_error_message());
        s = rn_fail(s, "%s: metadata: %s", RN_SHOW(path), why);
    } else if ((s = rn_model_load_st(m, &st, path, NULL, norm)) != RN_OK) {
        rn_model_free(m);
        m = NULL;
    }
    rn_safetensors_free(&st);
    *out = m;
    return s;
}
