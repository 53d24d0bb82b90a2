/*
 * safetensors.c — reading and writing safetensors files (the format PyTorch and Hugging Face
 * use for weights): an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the
 * raw tensor bytes. Each JSON key names a tensor and maps to
 *     {"dtype": "F32", "shape": [64, 3, 3, 3], "data_offsets": [begin, end]}
 * with offsets counted from the first byte after the header; the optional key "__metadata__"
 * maps to an object of string values. Writers pad the header with spaces to a multiple of 8.
 *
 * The header is parsed with Jansson, a strict JSON library, rather than a hand-written scanner:
 * headers come from other programs and may use any valid JSON spelling (escapes in names,
 * whitespace, any key order), and hand-written parsers are where out-of-bounds reads on hostile
 * files hide. Jansson refuses what the format's reference reader (Rust's safetensors crate over
 * serde_json) refuses and laxer parsers such as cJSON accept: a byte-order mark, raw control
 * characters or NULs, "\u0000" in a string, a key given twice in one object (a second "dtype"),
 * lone surrogates, numbers like 01 or +1; and it tells integers (2) from reals (2.0, 2e0),
 * which the reference refuses as shapes and offsets. Like the reference, the tensors must fill
 * the data section exactly, in offset order, without gaps, overlaps or bytes after them.
 * The writer builds its header with cJSON.
 *
 * Reading validates everything (see rn_safetensors_read) and never reads outside the file.
 */
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull /* the safetensors library's own limit */

/* ------------------------------------------------------------------------------------------
 * dtypes
 * ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    [RN_DTYPE_F32] = {"F32", 4}, [RN_DTYPE_F64] = {"F64", 8},  [RN_DTYPE_F16] = {"F16", 2},
    [RN_DTYPE_BF16] = {"BF16", 2}, [RN_DTYPE_I64] = {"I64", 8}, [RN_DTYPE_I32] = {"I32", 4},
    [RN_DTYPE_U8] = {"U8", 1},
};
#define ST_N_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))
#define ST_DTYPE_LIST "F32, F64, F16, BF16, I64, I32, U8"

static bool dtype_valid(rn_dtype t) { return (int)t >= 0 && (int)t < ST_N_DTYPES; }

const char *rn_dtype_name(rn_dtype t) { return dtype_valid(t) ? st_dtypes[t].name : "?"; }

size_t rn_dtype_size(rn_dtype t) { return dtype_valid(t) ? st_dtypes[t].size : 0; }

static bool dtype_parse(const char *s, rn_dtype *out) {
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) {
            *out = (rn_dtype)i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

/* Strict UTF-8 check (no overlong forms, no surrogates, nothing above U+10FFFF). Returns the
 * offset of the first bad byte, or n if the bytes are valid. */
static size_t utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "invalid value";
}

/* A JSON value that must be a non-negative integer, written as one (2, not 2.0 or 2e0: the
 * reference reader refuses reals here). Returns NULL if fine, else why not. */
static const char *json_uint(const json_t *v, uint64_t *out) {
    if (json_is_real(v)) return "is a real number, not an integer";
    if (!json_is_integer(v)) return "is not a number";
    json_int_t i = json_integer_value(v);
    if (i < 0) return "is negative";
    *out = (uint64_t)i;
    return NULL;
}

/* A JSON number for a message. */
static const char *json_show(const json_t *v, char buf[40]) {
    if (json_is_integer(v)) snprintf(buf, 40, "%lld", (long long)json_integer_value(v));
    else snprintf(buf, 40, "%g", json_number_value(v));
    return buf;
}

/* "[2, 3, 4]" */
static const char *shape_str(const int64_t *shape, int ndim, char buf[200]) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, 200 - k, "[");
    for (int i = 0; i < ndim && k < 180; i++)
        k += (size_t)snprintf(buf + k, 200 - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    snprintf(buf + k, 200 - k, "]");
    return buf;
}

/* Bytes a tensor of this dtype and shape occupies; false on overflow. A zero anywhere in the
 * shape makes 0 bytes, however large the other dimensions. */
static bool tensor_bytes(rn_dtype t, const int64_t *shape, int ndim, size_t *out) {
    size_t n = rn_dtype_size(t);
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) {
            *out = 0;
            return true;
        }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(n, (size_t)shape[i], &n)) return false;
    *out = n;
    return true;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice among n names, or NULL. Sorts a copy of the pointers. */
static rn_status find_duplicate(const char *const *names, int n, const char **dup) {
    *dup = NULL;
    if (n < 2) return RN_OK;
    const char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return rn_fail(RN_ERR_NOMEM, "cannot allocate %d name pointers", n);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    for (int i = 1; i < n && !*dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
    free(sorted);
    return RN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------------------------- */

/* Offset order; ties (empty tensors) by size, then by name, so the order is deterministic. */
static int cmp_tensor_offset(const void *pa, const void *pb) {
    const rn_st_tensor *a = pa, *b = pb;
    if (a->data != b->data) return (const char *)a->data < (const char *)b->data ? -1 : 1;
    if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* One tensor entry of the header into *t (name already set). data: the data section. */
static rn_status parse_tensor(rn_st_tensor *t, const json_t *e, const char *path,
                              const unsigned char *data, size_t data_size) {
    char sb[200], vb[40];
    const char *name = RN_SHOW(t->name);
    path = RN_SHOW(path);
    if (!json_is_object(e))
        return rn_fail(RN_ERR_BAD_FILE,
                       "%s: tensor '%s': entry is a JSON %s, expected an object with \"dtype\", "
                       "\"shape\" and \"data_offsets\"", path, name, json_kind(e));

    const json_t *dt = json_object_get(e, "dtype");
    if (!dt)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': missing \"dtype\" (expected e.g. "
                       "\"dtype\": \"F32\")", path, name);
    if (!json_is_string(dt))
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': \"dtype\" is a JSON %s, expected a "
                       "string such as \"F32\"", path, name, json_kind(dt));
    if (!dtype_parse(json_string_value(dt), &t->dtype))
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': unknown dtype \"%s\" (supported: "
                       ST_DTYPE_LIST ")", path, name, RN_SHOW(json_string_value(dt)));

    const json_t *sh = json_object_get(e, "shape");
    if (!sh)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': missing \"shape\" (expected an array "
                       "of non-negative integers, [] for a scalar)", path, name);
    if (!json_is_array(sh))
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': \"shape\" is a JSON %s, expected an "
                       "array of non-negative integers", path, name, json_kind(sh));
    size_t ndim = json_array_size(sh);
    if (ndim > RN_ST_MAX_DIMS)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': shape has %zu dimensions, at most %d "
                       "are supported", path, name, ndim, RN_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t d = 0; d < ndim; d++) {
        const json_t *v = json_array_get(sh, d);
        uint64_t u;
        const char *why = json_uint(v, &u);
        if (why && !json_is_number(v))
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': shape[%zu] is a JSON %s (expected "
                           "a non-negative integer)", path, name, d, json_kind(v));
        if (why)
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': shape[%zu] = %s %s (expected a "
                           "non-negative integer)", path, name, d, json_show(v, vb), why);
        t->shape[d] = (int64_t)u;
    }

    const json_t *off = json_object_get(e, "data_offsets");
    if (!off)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': missing \"data_offsets\" (expected "
                       "[begin, end])", path, name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': \"data_offsets\" is a JSON %s%s, "
                       "expected an array of two integers [begin, end]", path, name,
                       json_kind(off), json_is_array(off) ? " of the wrong length" : "");
    uint64_t be[2];
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_array_get(off, i);
        const char *why = json_uint(v, &be[i]);
        if (why && !json_is_number(v))
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets[%zu] is a JSON %s "
                           "(expected a non-negative integer)", path, name, i, json_kind(v));
        if (why)
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets[%zu] = %s %s "
                           "(expected a non-negative integer)", path, name, i, json_show(v, vb),
                           why);
    }
    if (be[1] < be[0])
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets [%llu, %llu] end before "
                       "they begin (expected begin <= end)", path, name,
                       (unsigned long long)be[0], (unsigned long long)be[1]);
    if (be[1] > data_size)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets [%llu, %llu] go beyond "
                       "the data section of %zu bytes (truncated file?)", path, name,
                       (unsigned long long)be[0], (unsigned long long)be[1], data_size);
    size_t want;
    t->nbytes = (size_t)(be[1] - be[0]);
    if (!tensor_bytes(t->dtype, t->shape, t->ndim, &want))
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets [%llu, %llu] hold %zu "
                       "bytes but shape %s of %s needs more than 2^64 bytes", path, name,
                       (unsigned long long)be[0], (unsigned long long)be[1], t->nbytes,
                       shape_str(t->shape, t->ndim, sb), rn_dtype_name(t->dtype));
    if (want != t->nbytes)
        return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s': data_offsets [%llu, %llu] hold %zu "
                       "bytes but shape %s of %s needs %zu bytes", path, name,
                       (unsigned long long)be[0], (unsigned long long)be[1], t->nbytes,
                       shape_str(t->shape, t->ndim, sb), rn_dtype_name(t->dtype), want);
    t->data = data + be[0];
    return RN_OK;
}

/* The "__metadata__" object: string keys to string values (JSON null means none). Jansson has
 * already refused a key given twice. */
static rn_status parse_meta(rn_safetensors *st, const json_t *m, const char *path) {
    if (json_is_null(m)) return RN_OK;
    if (!json_is_object(m))
        return rn_fail(RN_ERR_BAD_FILE, "%s: \"__metadata__\" is a JSON %s, expected an object "
                       "of string values", RN_SHOW(path), json_kind(m));
    size_t n = json_object_size(m);
    if (n == 0) return RN_OK;
    st->meta_keys = calloc(n, sizeof(char *));
    st->meta_values = calloc(n, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu metadata entries", RN_SHOW(path), n);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)m, key, v) {
        if (!json_is_string(v))
            return rn_fail(RN_ERR_BAD_FILE, "%s: __metadata__ '%s' is a JSON %s, expected a "
                           "string (metadata values are strings)", RN_SHOW(path), RN_SHOW(key),
                           json_kind(v));
        int i = st->n_meta;
        st->meta_keys[i] = strdup(key);
        st->meta_values[i] = strdup(json_string_value(v));
        st->n_meta++;
        if (!st->meta_keys[i] || !st->meta_values[i])
            return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate metadata", RN_SHOW(path));
    }
    return RN_OK;
}

/* The tensors, sorted by offset, must fill the data section exactly, as the reference reader
 * requires: each begins where the one before ends, the first at 0, the last at the end. */
static rn_status check_layout(const rn_safetensors *st, const unsigned char *data,
                              size_t data_size, const char *path) {
    const rn_st_tensor *prev = NULL;
    size_t end = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const rn_st_tensor *t = &st->tensors[i];
        size_t b = (size_t)((const unsigned char *)t->data - data);
        if (b < end)
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] "
                           "overlap (expected disjoint data_offsets)", RN_SHOW(path),
                           RN_SHOW(prev->name), end - prev->nbytes, end, RN_SHOW(t->name), b,
                           b + t->nbytes);
        if (b > end)
            return rn_fail(RN_ERR_BAD_FILE, "%s: tensor '%s' begins at data offset %zu, but the "
                           "tensors before it end at %zu (expected no gaps between tensors)",
                           RN_SHOW(path), RN_SHOW(t->name), b, end);
        end = b + t->nbytes;
        prev = t;
    }
    if (end != data_size)
        return rn_fail(RN_ERR_BAD_FILE, "%s: the tensors end at data offset %zu, but the data "
                       "section has %zu bytes (expected the tensors to fill it exactly)",
                       RN_SHOW(path), end, data_size);
    return RN_OK;
}

/* Everything after the file is in memory: fills st, or fails leaving partial state that
 * rn_safetensors_free releases. */
static rn_status parse_file(rn_safetensors *st, const char *path) {
    const unsigned char *buf = st->file_buf;
    size_t size = st->file_size;
    const char *P = RN_SHOW(path);

    if (size < 8)
        return rn_fail(RN_ERR_BAD_FILE, "%s: file is %zu bytes, shorter than the 8-byte header "
                       "length of a safetensors file", P, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > ST_MAX_HEADER)
        return rn_fail(RN_ERR_BAD_FILE, "%s: header length %llu is absurd (expected at most "
                       "%llu bytes; not a safetensors file?)", P, (unsigned long long)n,
                       ST_MAX_HEADER);
    if (n > size - 8)
        return rn_fail(RN_ERR_BAD_FILE, "%s: header length %llu is larger than the %zu bytes "
                       "that follow it (truncated file?)", P, (unsigned long long)n, size - 8);
    const unsigned char *hdr = buf + 8;
    size_t bad = utf8_check(hdr, (size_t)n);
    if (bad != n)
        return rn_fail(RN_ERR_BAD_FILE, "%s: header is not valid UTF-8 (at header byte %zu)", P,
                       bad);

    /* Jansson gets the exact length: nothing it does can run past the header. */
    json_error_t err;
    json_t *root = json_loadb((const char *)hdr, (size_t)n,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    rn_status s = RN_OK;
    if (!root) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: header is not valid JSON: %s (at header byte %d)", P,
                    RN_SHOW(err.text), err.position);
        goto done;
    }
    if (!json_is_object(root)) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: header is a JSON %s, expected an object mapping "
                    "tensor names to {\"dtype\", \"shape\", \"data_offsets\"}", P,
                    json_kind(root));
        goto done;
    }

    size_t n_entries = json_object_size(root);
    if (n_entries > 0) {
        st->tensors = calloc(n_entries, sizeof *st->tensors);
        if (!st->tensors) {
            s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu tensors", P, n_entries);
            goto done;
        }
    }
    const unsigned char *data = hdr + n;
    size_t data_size = size - 8 - (size_t)n;
    const char *key;
    json_t *e;
    json_object_foreach(root, key, e) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((s = parse_meta(st, e, path))) goto done;
            continue;
        }
        rn_st_tensor *t = &st->tensors[st->n_tensors];
        if (!(t->name = strdup(key))) {
            s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate a tensor name", P);
            goto done;
        }
        st->n_tensors++;
        if ((s = parse_tensor(t, e, path, data, data_size))) goto done;
    }
    if (st->n_tensors > 1)
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_offset);
    s = check_layout(st, data, data_size, path);
done:
    json_decref(root);
    return s;
}

rn_status rn_safetensors_read(rn_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    rn_status s = rn_read_file(path, &st->file_buf, &st->file_size);
    if (s) return s;
    s = parse_file(st, path);
    if (s) rn_safetensors_free(st);
    return s;
}

void rn_safetensors_free(rn_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    rn_free(st->file_buf);
    memset(st, 0, sizeof *st);
}

const rn_st_tensor *rn_safetensors_find(const rn_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *rn_safetensors_meta(const rn_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

rn_status rn_safetensors_meta_int(const rn_safetensors *st, const char *path, const char *key,
                                  long lo, long hi, long *out) {
    const char *v = rn_safetensors_meta(st, key);
    if (!v) return RN_OK;
    size_t len = strspn(v, "0123456789");
    long x = 0;
    bool ok = len > 0 && len <= 18 && v[len] == 0 && !(v[0] == '0' && len > 1);
    for (size_t i = 0; ok && i < len; i++) x = 10 * x + (v[i] - '0');
    if (!ok || x < lo || x > hi)
        return rn_fail(RN_ERR_BAD_FILE, "%s: metadata %s is '%s' (expected an integer in [%ld, "
                       "%ld], decimal digits only)", RN_SHOW(path), RN_SHOW(key), RN_SHOW(v), lo,
                       hi);
    *out = x;
    return RN_OK;
}

/* ------------------------------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------------------------- */

/* Checks the writer's inputs; the message names the output path. */
static rn_status check_write_args(const char *path, const rn_st_tensor *tensors, int n_tensors,
                                  const char *const *meta_keys, const char *const *meta_values,
                                  int n_meta) {
    char sb[200];
    path = RN_SHOW(path);
    if (n_tensors < 0 || (n_tensors > 0 && !tensors))
        return rn_fail(RN_ERR_BAD_ARG, "%s: %d tensors given%s", path, n_tensors,
                       n_tensors > 0 ? " with a NULL array" : " (expected 0 or more)");
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return rn_fail(RN_ERR_BAD_ARG, "%s: %d metadata entries given%s", path, n_meta,
                       n_meta > 0 ? " with a NULL key or value array" : " (expected 0 or more)");
    for (int i = 0; i < n_tensors; i++) {
        const rn_st_tensor *t = &tensors[i];
        if (!t->name) return rn_fail(RN_ERR_BAD_ARG, "%s: tensor %d has no name", path, i);
        const char *name = RN_SHOW(t->name);
        if (strcmp(t->name, "__metadata__") == 0)
            return rn_fail(RN_ERR_BAD_ARG, "%s: a tensor may not be named '__metadata__' (the "
                           "format reserves that key)", path);
        if (utf8_check((const unsigned char *)t->name, strlen(t->name)) != strlen(t->name))
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor name '%s' is not valid UTF-8", path, name);
        if (!dtype_valid(t->dtype))
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': dtype %d is not an rn_dtype", path,
                           name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > RN_ST_MAX_DIMS)
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': ndim %d (expected 0 to %d)", path,
                           name, t->ndim, RN_ST_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': shape[%d] = %lld is negative",
                               path, name, d, (long long)t->shape[d]);
        size_t want;
        if (!tensor_bytes(t->dtype, t->shape, t->ndim, &want))
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': shape %s of %s needs more than "
                           "2^64 bytes", path, name, shape_str(t->shape, t->ndim, sb),
                           rn_dtype_name(t->dtype));
        if (want != t->nbytes)
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': nbytes is %zu but shape %s of %s "
                           "needs %zu bytes", path, name, t->nbytes,
                           shape_str(t->shape, t->ndim, sb), rn_dtype_name(t->dtype), want);
        if (t->nbytes > 0 && !t->data)
            return rn_fail(RN_ERR_BAD_ARG, "%s: tensor '%s': data is NULL for %zu bytes", path,
                           name, t->nbytes);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i])
            return rn_fail(RN_ERR_BAD_ARG, "%s: metadata entry %d has a NULL key or value", path,
                           i);
        size_t lk = strlen(meta_keys[i]), lv = strlen(meta_values[i]);
        if (utf8_check((const unsigned char *)meta_keys[i], lk) != lk ||
            utf8_check((const unsigned char *)meta_values[i], lv) != lv)
            return rn_fail(RN_ERR_BAD_ARG, "%s: metadata '%s' is not valid UTF-8", path,
                           RN_SHOW(meta_keys[i]));
    }

    const char *dup = NULL;
    const char **names = malloc((size_t)RN_MAX(n_tensors, 1) * sizeof *names);
    if (!names) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %d names", path, n_tensors);
    for (int i = 0; i < n_tensors; i++) names[i] = tensors[i].name;
    rn_status s = find_duplicate(names, n_tensors, &dup);
    free(names);
    if (s) return s;
    if (dup)
        return rn_fail(RN_ERR_BAD_ARG, "%s: tensor name '%s' is given twice (names must be "
                       "unique)", path, RN_SHOW(dup));
    if ((s = find_duplicate(meta_keys, n_meta, &dup))) return s;
    if (dup)
        return rn_fail(RN_ERR_BAD_ARG, "%s: metadata key '%s' is given twice (keys must be "
                       "unique)", path, RN_SHOW(dup));
    return RN_OK;
}

/* A JSON integer printed exactly. cJSON prints numbers from doubles (exponent notation above
 * 15 digits), so integers go in as raw text. */
static cJSON *json_u64(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

/* The header JSON: "__metadata__" first (as the safetensors library writes it), then the
 * tensors in the given order with contiguous offsets. NULL if an allocation failed. */
static char *build_header(const rn_st_tensor *tensors, int n_tensors,
                          const char *const *meta_keys, const char *const *meta_values,
                          int n_meta) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *meta = cJSON_CreateObject();
        ok = meta && cJSON_AddItemToObject(root, "__metadata__", meta);
        if (!ok) cJSON_Delete(meta);
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]) != NULL;
    }
    uint64_t offset = 0;
    for (int i = 0; ok && i < n_tensors; i++) {
        const rn_st_tensor *t = &tensors[i];
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToObject(root, t->name, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        cJSON *shape = NULL, *off = NULL;
        ok = cJSON_AddStringToObject(e, "dtype", rn_dtype_name(t->dtype)) &&
             (shape = cJSON_AddArrayToObject(e, "shape")) &&
             (off = cJSON_AddArrayToObject(e, "data_offsets"));
        for (int d = 0; ok && d < t->ndim; d++) {
            cJSON *v = json_u64((uint64_t)t->shape[d]);
            ok = v && cJSON_AddItemToArray(shape, v);
            if (!ok) cJSON_Delete(v);
        }
        uint64_t be[2] = {offset, offset + t->nbytes};
        for (int k = 0; ok && k < 2; k++) {
            cJSON *v = json_u64(be[k]);
            ok = v && cJSON_AddItemToArray(off, v);
            if (!ok) cJSON_Delete(v);
        }
        offset += t->nbytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

rn_status rn_safetensors_write(const char *path, const rn_st_tensor *tensors, int n_tensors,
                               const char *const *meta_keys, const char *const *meta_values,
                               int n_meta) {
    if (!path) return rn_fail(RN_ERR_BAD_ARG, "safetensors write: path is NULL");
    rn_status s = check_write_args(path, tensors, n_tensors, meta_keys, meta_values, n_meta);
    if (s) return s;
    size_t total = 0;
    for (int i = 0; i < n_tensors; i++)
        if (__builtin_add_overflow(total, tensors[i].nbytes, &total))
            return rn_fail(RN_ERR_BAD_ARG, "%s: the tensors add up to more than 2^64 bytes",
                           path);

    char *json = build_header(tensors, n_tensors, meta_keys, meta_values, n_meta);
    if (!json) return rn_fail(RN_ERR_NOMEM, "%s: cannot build the header", path);
    size_t len = strlen(json), padded = (len + 7) & ~(size_t)7;
    unsigned char *hdr = malloc(8 + padded);
    const void **parts = malloc((size_t)(n_tensors + 1) * sizeof *parts);
    size_t *sizes = malloc((size_t)(n_tensors + 1) * sizeof *sizes);
    if (!hdr || !parts || !sizes) {
        s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the header", path);
        goto done;
    }
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(hdr + 8, json, len);
    memset(hdr + 8 + len, ' ', padded - len);
    int np = 0;
    parts[np] = hdr;
    sizes[np++] = 8 + padded;
    for (int i = 0; i < n_tensors; i++)
        if (tensors[i].nbytes > 0) {
            parts[np] = tensors[i].data;
            sizes[np++] = tensors[i].nbytes;
        }
    s = rn_write_file_atomic(path, (const void *const *)parts, sizes, np);
done:
    free(json);
    free(hdr);
    free(parts);
    free(sizes);
    return s;
}
