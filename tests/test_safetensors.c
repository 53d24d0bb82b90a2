/*
 * test_safetensors.c — safetensors reading and writing: a round trip of every dtype, a file
 * written the way PyTorch's safetensors library writes it (tests/data/st_torch_fixture
 * .safetensors from tools/make_st_fixture.py), atomic replacement, writer argument checks, and
 * one test per kind of corrupt file (including what the format's reference reader refuses),
 * each checking the status and the message.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

/* tu_tmpdir()/name, in one of a few rotating buffers. */
static const char *tmp_path(const char *name) {
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_tmpdir(), name);
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    unlink(path); /* a fresh file: truncating one makes ext4 flush it to disk on close (slow) */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* A safetensors file from a header (unpadded, length as given) and data bytes. */
static void write_st_len(const char *path, uint64_t hlen, const char *json, const void *data,
                         size_t ndata) {
    size_t jl = strlen(json);
    unsigned char *b = malloc(8 + jl + ndata + 1);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, json, jl);
    if (ndata) memcpy(b + 8 + jl, data, ndata);
    write_bytes(path, b, 8 + jl + ndata);
    free(b);
}

static void write_st(const char *path, const char *json, const void *data, size_t ndata) {
    write_st_len(path, strlen(json), json, data, ndata);
}

/* Reads path, expecting `want` and a one-line message that names the file and contains
 * `substr`; the struct must come back empty. */
static void expect_fail_path(const char *path, rn_status want, const char *substr) {
    rn_safetensors st;
    memset(&st, 0x5a, sizeof st); /* garbage in: the reader must clear it */
    rn_status s = rn_safetensors_read(&st, path);
    const char *msg = rn_error_message();
    print_message("    %s: %s\n", rn_status_name(s), msg);
    assert_int_equal(s, want);
    if (!strstr(msg, substr)) fail_msg("message \"%s\" lacks \"%s\"", msg, substr);
    assert_int_equal(strncmp(msg, path, strlen(path)), 0);
    assert_null(strchr(msg, '\n'));
    assert_int_equal(st.n_tensors, 0);
    assert_null(st.tensors);
    assert_int_equal(st.n_meta, 0);
    assert_null(st.meta_keys);
    assert_null(st.meta_values);
    assert_null(st.file_buf);
    rn_safetensors_free(&st); /* harmless on an empty struct */
}

/* A crafted file with this header and data must fail as RN_ERR_BAD_FILE with `substr`. */
static void expect_bad(const char *json, const void *data, size_t ndata, const char *substr) {
    const char *path = tmp_path("bad.safetensors");
    write_st(path, json, data, ndata);
    expect_fail_path(path, RN_ERR_BAD_FILE, substr);
}

static const unsigned char zeros[64];

/* ------------------------------------------------------------------------------------------
 * dtypes
 * ---------------------------------------------------------------------------------------- */

static void test_dtype_names_and_sizes(void **state) {
    (void)state;
    const char *names[] = {"F32", "F64", "F16", "BF16", "I64", "I32", "U8"};
    const size_t sizes[] = {4, 8, 2, 2, 8, 4, 1};
    const rn_dtype types[] = {RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_F16, RN_DTYPE_BF16,
                              RN_DTYPE_I64, RN_DTYPE_I32, RN_DTYPE_U8};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(rn_dtype_name(types[i]), names[i]);
        assert_int_equal(rn_dtype_size(types[i]), sizes[i]);
    }
    assert_string_equal(rn_dtype_name((rn_dtype)99), "?");
    assert_int_equal(rn_dtype_size((rn_dtype)99), 0);
}

/* ------------------------------------------------------------------------------------------
 * Round trip
 * ---------------------------------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    float f32[6];
    tu_fill_uniform(f32, 6, 1, -3, 3);
    double f64[3] = {M_PI, -1e-300, 1e300};
    uint16_t f16[4] = {0x3E00, 0xC000, 0x7BFF, 0x0001};
    uint16_t bf16[4] = {0x3F80, 0x4049, 0xBF00, 0x7F80};
    int64_t i64 = -1234567890123ll;
    int32_t i32[4] = {-7, 0, 2147483647, -2147483647 - 1};
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    uint8_t deep[2] = {42, 43};
    rn_st_tensor t[] = {
        {.name = "conv.weight", .dtype = RN_DTYPE_F32, .ndim = 2, .shape = {2, 3},
         .nbytes = sizeof f32, .data = f32},
        {.name = "u8", .dtype = RN_DTYPE_U8, .ndim = 1, .shape = {5}, .nbytes = 5, .data = u8},
        {.name = "f64", .dtype = RN_DTYPE_F64, .ndim = 1, .shape = {3}, .nbytes = 24,
         .data = f64},
        {.name = "bn.num_batches_tracked", .dtype = RN_DTYPE_I64, .ndim = 0, .nbytes = 8,
         .data = &i64},
        {.name = "empty", .dtype = RN_DTYPE_F32, .ndim = 2, .shape = {0, 4}, .nbytes = 0,
         .data = NULL},
        {.name = "f16", .dtype = RN_DTYPE_F16, .ndim = 1, .shape = {4}, .nbytes = 8,
         .data = f16},
        {.name = "bf16 \"quoted\" é", .dtype = RN_DTYPE_BF16, .ndim = 2, .shape = {2, 2},
         .nbytes = 8, .data = bf16},
        {.name = "i32", .dtype = RN_DTYPE_I32, .ndim = 3, .shape = {2, 1, 2}, .nbytes = 16,
         .data = i32},
        {.name = "deep", .dtype = RN_DTYPE_U8, .ndim = 8, .shape = {1, 1, 1, 1, 1, 1, 1, 2},
         .nbytes = 2, .data = deep},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    const char *keys[] = {"format", "note"};
    const char *values[] = {"pt", "line1\nline2 \"µ\""};
    const char *path = tmp_path("round.safetensors");
    TU_OK(rn_safetensors_write(path, t, n, keys, values, 2));

    /* The raw layout: header length a multiple of 8, space padding, "__metadata__" first. */
    size_t size;
    unsigned char *raw = read_bytes(path, &size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | raw[i];
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].nbytes;
    print_message("    header %llu bytes, data %zu bytes, file %zu bytes\n",
                  (unsigned long long)hlen, total, size);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(size, 8 + hlen + total);
    assert_memory_equal(raw + 8, "{\"__metadata__\":{", 17);
    size_t j = 8 + hlen;
    while (raw[j - 1] == ' ') j--;
    assert_int_equal(raw[j - 1], '}');
    assert_true(8 + hlen - j < 8);
    free(raw);

    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    assert_int_equal(st.n_tensors, n);
    assert_int_equal(st.file_size, size);
    const unsigned char *data = (const unsigned char *)st.file_buf + 8 + hlen;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        /* Given order is offset order, and offsets are contiguous. */
        const rn_st_tensor *r = &st.tensors[i];
        assert_string_equal(r->name, t[i].name);
        assert_ptr_equal(rn_safetensors_find(&st, t[i].name), r);
        assert_int_equal(r->dtype, t[i].dtype);
        assert_int_equal(r->ndim, t[i].ndim);
        for (int d = 0; d < r->ndim; d++) assert_int_equal(r->shape[d], t[i].shape[d]);
        assert_int_equal(r->nbytes, t[i].nbytes);
        assert_ptr_equal(r->data, data + off);
        if (r->nbytes) assert_memory_equal(r->data, t[i].data, r->nbytes);
        off += r->nbytes;
    }
    assert_null(rn_safetensors_find(&st, "missing"));
    assert_int_equal(st.n_meta, 2);
    assert_string_equal(rn_safetensors_meta(&st, "format"), "pt");
    assert_string_equal(rn_safetensors_meta(&st, "note"), values[1]);
    assert_null(rn_safetensors_meta(&st, "absent"));
    rn_safetensors_free(&st);
    assert_null(st.file_buf);
    assert_int_equal(st.n_tensors, 0);
}

static void test_write_no_tensors_no_metadata(void **state) {
    (void)state;
    const char *path = tmp_path("nothing.safetensors");
    TU_OK(rn_safetensors_write(path, NULL, 0, NULL, NULL, 0));
    size_t size;
    unsigned char *raw = read_bytes(path, &size);
    assert_int_equal(size, 16);
    assert_int_equal(raw[0], 8);
    assert_memory_equal(raw + 8, "{}      ", 8);
    free(raw);
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    assert_int_equal(st.n_tensors, 0);
    assert_int_equal(st.n_meta, 0);
    rn_safetensors_free(&st);

    /* One tensor, no metadata: no "__metadata__" key at all. */
    float x = 1.5f;
    rn_st_tensor t = {.name = "x", .dtype = RN_DTYPE_F32, .ndim = 1, .shape = {1}, .nbytes = 4,
                      .data = &x};
    TU_OK(rn_safetensors_write(path, &t, 1, NULL, NULL, 0));
    raw = read_bytes(path, &size);
    const char *want = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t wl = strlen(want), padded = (wl + 7) / 8 * 8;
    assert_int_equal(raw[0], padded);
    assert_memory_equal(raw + 8, want, wl);
    assert_int_equal(size, 8 + padded + 4);
    assert_memory_equal(raw + 8 + padded, &x, 4);
    free(raw);
}

/* ------------------------------------------------------------------------------------------
 * A file written like PyTorch's safetensors library writes it
 * ---------------------------------------------------------------------------------------- */

static void expect_tensor(const rn_st_tensor *t, const char *name, rn_dtype dtype, int ndim,
                          const int64_t *shape, const void *want, size_t nbytes) {
    if (!t) fail_msg("tensor %s missing", name);
    assert_string_equal(t->name, name);
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(t->shape[d], shape[d]);
    assert_int_equal(t->nbytes, nbytes);
    if (nbytes) assert_memory_equal(t->data, want, nbytes);
}

static void test_torch_fixture(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/st_torch_fixture.safetensors", tu_data_dir());
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));

    /* The library lays tensors out by dtype (largest element first), then by name. */
    const char *order[] = {"bn1.num_batches_tracked", "f64", "empty", "fc.bias",
                           "layer1.0.conv1.weight", "i32", "bf16", "f16", "u8"};
    assert_int_equal(st.n_tensors, 9);
    for (int i = 0; i < 9; i++) assert_string_equal(st.tensors[i].name, order[i]);

    float w[18], w_got[18];
    for (int i = 0; i < 18; i++) w[i] = (float)i * 0.25f - 2.0f;
    const rn_st_tensor *tw = rn_safetensors_find(&st, "layer1.0.conv1.weight");
    expect_tensor(tw, "layer1.0.conv1.weight", RN_DTYPE_F32, 4, (int64_t[]){2, 1, 3, 3}, w,
                  sizeof w);
    memcpy(w_got, tw->data, sizeof w_got); /* data may be unaligned: copy, then use */
    print_message("    conv weight max |diff| %g\n", tu_max_abs_diff(w_got, w, 18));
    assert_true(tu_max_abs_diff(w_got, w, 18) == 0);

    float fc[3] = {0.5f, -1.25f, 3.0f};
    expect_tensor(rn_safetensors_find(&st, "fc.bias"), "fc.bias", RN_DTYPE_F32, 1,
                  (int64_t[]){3}, fc, sizeof fc);
    int64_t nbt = 123456789012ll;
    expect_tensor(rn_safetensors_find(&st, "bn1.num_batches_tracked"),
                  "bn1.num_batches_tracked", RN_DTYPE_I64, 0, NULL, &nbt, 8);
    double f64[3] = {M_PI, -1e-300, 1152921504606846976.0};
    expect_tensor(rn_safetensors_find(&st, "f64"), "f64", RN_DTYPE_F64, 1, (int64_t[]){3}, f64,
                  sizeof f64);
    uint16_t f16[4] = {0x3E00, 0xC000, 0x7BFF, 0x0400}; /* 1.5 -2 65504 2^-14 */
    expect_tensor(rn_safetensors_find(&st, "f16"), "f16", RN_DTYPE_F16, 1, (int64_t[]){4}, f16,
                  sizeof f16);
    uint16_t bf16[3] = {0x3F80, 0x4049, 0xBF00}; /* 1, pi rounded to 3.140625, -0.5 */
    expect_tensor(rn_safetensors_find(&st, "bf16"), "bf16", RN_DTYPE_BF16, 1, (int64_t[]){3},
                  bf16, sizeof bf16);
    int32_t i32[4] = {-7, 0, 2147483647, -2147483647 - 1};
    expect_tensor(rn_safetensors_find(&st, "i32"), "i32", RN_DTYPE_I32, 2, (int64_t[]){2, 2},
                  i32, sizeof i32);
    uint8_t u8[4] = {0, 1, 128, 255};
    expect_tensor(rn_safetensors_find(&st, "u8"), "u8", RN_DTYPE_U8, 1, (int64_t[]){4}, u8, 4);
    expect_tensor(rn_safetensors_find(&st, "empty"), "empty", RN_DTYPE_F32, 2,
                  (int64_t[]){0, 3}, NULL, 0);

    assert_int_equal(st.n_meta, 3);
    assert_string_equal(rn_safetensors_meta(&st, "format"), "pt");
    assert_string_equal(rn_safetensors_meta(&st, "note"), "température µ");
    const char *tv = rn_safetensors_meta(&st, "torch_version");
    assert_non_null(tv);
    print_message("    fixture written with torch %s\n", tv);
    assert_true(tv[0] >= '1' && tv[0] <= '9' && tv[1] == '.');

    /* Writing the same tensors in the same order with the same metadata order reproduces the
     * file byte for byte. */
    const char *keys[3], *values[3];
    for (int i = 0; i < 3; i++) {
        keys[i] = st.meta_keys[i];
        values[i] = st.meta_values[i];
    }
    const char *copy = tmp_path("torch_copy.safetensors");
    TU_OK(rn_safetensors_write(copy, st.tensors, st.n_tensors, keys, values, 3));
    size_t n1, n2;
    unsigned char *a = read_bytes(path, &n1), *b = read_bytes(copy, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    rn_safetensors_free(&st);
}

/* A valid file other writers could produce: unpadded odd-length header, leading and trailing
 * whitespace, unaligned data, escapes in names, any key order, an unknown key (ignored, as
 * the reference reader ignores it), an empty tensor between two others, and null metadata. */
static void test_read_lenient_valid_file(void **state) {
    (void)state;
    const char *json =
        " {\n \"b\\u00e9\\\"\" : {\"shape\": [2], \"dtype\": \"F32\", \"data_offsets\": [1, 9]},"
        " \"a\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [9, 17], \"x\": 1},"
        " \"z\": {\"dtype\": \"U8\", \"shape\": [9007199254740992, 9007199254740992, 0],"
        " \"data_offsets\": [9, 9]},"
        " \"u\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
        " \"__metadata__\": null}\n\t ";
    unsigned char data[17] = {0};
    float f[2] = {1.25f, -7.5f};
    int64_t v = -5;
    memcpy(data + 1, f, 8);
    memcpy(data + 9, &v, 8);
    const char *path = tmp_path("lenient.safetensors");
    write_st(path, json, data, sizeof data);
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    print_message("    header %zu bytes, unpadded; tensor 'bé\"' at data offset 1\n",
                  strlen(json));
    assert_int_equal(st.n_tensors, 4);
    assert_int_equal(st.n_meta, 0);
    assert_string_equal(st.tensors[0].name, "u");
    assert_string_equal(st.tensors[1].name, "b\xc3\xa9\"");
    assert_string_equal(st.tensors[2].name, "z");
    assert_string_equal(st.tensors[3].name, "a");
    float g[2];
    memcpy(g, st.tensors[1].data, 8);
    assert_true(g[0] == 1.25f && g[1] == -7.5f);
    assert_int_equal(st.tensors[2].ndim, 3);
    assert_int_equal(st.tensors[2].nbytes, 0);
    int64_t w;
    memcpy(&w, st.tensors[3].data, 8);
    assert_int_equal(w, -5);
    assert_int_equal(st.tensors[3].ndim, 0);
    rn_safetensors_free(&st);
}

/* ------------------------------------------------------------------------------------------
 * Atomic writing
 * ---------------------------------------------------------------------------------------- */

static int count_entries(const char *dir, const char *substr) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && strstr(e->d_name, substr)) n++;
    closedir(d);
    return n;
}

static void test_write_atomic_replace(void **state) {
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/atomic", tu_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    write_bytes(path, "old contents, not a safetensors file at all", 43);

    int32_t x[3] = {1, 2, 3};
    rn_st_tensor t = {.name = "x", .dtype = RN_DTYPE_I32, .ndim = 1, .shape = {3}, .nbytes = 12,
                      .data = x};
    const char *k = "kind", *v = "test";
    TU_OK(rn_safetensors_write(path, &t, 1, &k, &v, 1));
    assert_int_equal(count_entries(dir, ""), 1);
    assert_int_equal(count_entries(dir, ".tmp"), 0);
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    assert_int_equal(st.n_tensors, 1);
    assert_memory_equal(st.tensors[0].data, x, 12);
    assert_string_equal(rn_safetensors_meta(&st, "kind"), "test");
    rn_safetensors_free(&st);

    /* Replacing it again with different contents. */
    x[0] = 99;
    TU_OK(rn_safetensors_write(path, &t, 1, NULL, NULL, 0));
    assert_int_equal(count_entries(dir, ""), 1);
    TU_OK(rn_safetensors_read(&st, path));
    assert_memory_equal(st.tensors[0].data, x, 12);
    assert_int_equal(st.n_meta, 0);
    rn_safetensors_free(&st);

    /* A folder that does not exist: an i/o error, nothing written. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no/such/dir/w.safetensors", dir);
    rn_status s = rn_safetensors_write(bad, &t, 1, NULL, NULL, 0);
    print_message("    %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_IO);
    assert_non_null(strstr(rn_error_message(), "cannot create"));
    assert_int_equal(count_entries(dir, ""), 1);
}

/* ------------------------------------------------------------------------------------------
 * Writer argument checks
 * ---------------------------------------------------------------------------------------- */

static void expect_write_fail(const rn_st_tensor *t, int n, const char *const *k,
                              const char *const *v, int nm, const char *substr) {
    const char *path = tmp_path("never_written.safetensors");
    unlink(path);
    rn_status s = rn_safetensors_write(path, t, n, k, v, nm);
    const char *msg = rn_error_message();
    print_message("    %s: %s\n", rn_status_name(s), msg);
    assert_int_equal(s, RN_ERR_BAD_ARG);
    if (!strstr(msg, substr)) fail_msg("message \"%s\" lacks \"%s\"", msg, substr);
    assert_int_equal(strncmp(msg, path, strlen(path)), 0);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_write_rejects_bad_input(void **state) {
    (void)state;
    float f[6] = {0};
    rn_st_tensor ok = {.name = "w", .dtype = RN_DTYPE_F32, .ndim = 2, .shape = {2, 3},
                       .nbytes = 24, .data = f};
    rn_st_tensor t[2] = {ok, ok};

    t[0].nbytes = 20;
    expect_write_fail(t, 1, NULL, NULL, 0, "nbytes is 20 but shape [2, 3] of F32 needs 24");
    t[0] = ok;
    t[0].dtype = RN_DTYPE_F64;
    expect_write_fail(t, 1, NULL, NULL, 0, "nbytes is 24 but shape [2, 3] of F64 needs 48");
    t[0] = ok;
    expect_write_fail(t, 2, NULL, NULL, 0, "tensor name 'w' is given twice");
    t[1].name = "__metadata__";
    expect_write_fail(t, 2, NULL, NULL, 0, "may not be named '__metadata__'");
    t[1] = ok;
    t[1].name = "v";
    t[1].ndim = 9;
    expect_write_fail(t, 2, NULL, NULL, 0, "ndim 9");
    t[1].ndim = 2;
    t[1].shape[0] = -2;
    expect_write_fail(t, 2, NULL, NULL, 0, "shape[0] = -2 is negative");
    t[1].shape[0] = 2;
    t[1].dtype = (rn_dtype)42;
    expect_write_fail(t, 2, NULL, NULL, 0, "dtype 42 is not an rn_dtype");
    t[1].dtype = RN_DTYPE_F32;
    t[1].data = NULL;
    expect_write_fail(t, 2, NULL, NULL, 0, "data is NULL for 24 bytes");
    t[1].data = f;
    t[1].shape[0] = INT64_MAX;
    expect_write_fail(t, 2, NULL, NULL, 0, "more than 2^64 bytes");
    t[1].shape[0] = 2;
    t[1].name = "bad \xff utf8";
    expect_write_fail(t, 2, NULL, NULL, 0, "not valid UTF-8");
    t[1].name = NULL;
    expect_write_fail(t, 2, NULL, NULL, 0, "tensor 1 has no name");
    t[1].name = "v";
    expect_write_fail(NULL, 1, NULL, NULL, 0, "NULL array");
    const char *k[2] = {"a", "a"}, *v[2] = {"1", "2"};
    expect_write_fail(t, 2, k, v, 2, "metadata key 'a' is given twice");
    expect_write_fail(t, 2, NULL, NULL, 1, "NULL key or value array");
    v[1] = NULL;
    k[1] = "b";
    expect_write_fail(t, 2, k, v, 2, "metadata entry 1 has a NULL key or value");
}

/* ------------------------------------------------------------------------------------------
 * Corrupt files: one test per kind
 * ---------------------------------------------------------------------------------------- */

static void test_bad_missing_file(void **state) {
    (void)state;
    expect_fail_path(tmp_path("does_not_exist.safetensors"), RN_ERR_IO, "cannot open");
}

static void test_bad_short_file(void **state) {
    (void)state;
    const char *path = tmp_path("short.safetensors");
    write_bytes(path, "\x08\0\0\0\0", 5);
    expect_fail_path(path, RN_ERR_BAD_FILE, "file is 5 bytes, shorter than the 8-byte header");
    write_bytes(path, "", 0);
    expect_fail_path(path, RN_ERR_BAD_FILE, "file is 0 bytes");
}

static void test_bad_header_length_beyond_file(void **state) {
    (void)state;
    const char *path = tmp_path("hlen.safetensors");
    write_st_len(path, 1000, "{}", NULL, 0);
    expect_fail_path(path, RN_ERR_BAD_FILE, "header length 1000 is larger than the 2 bytes");
    write_st_len(path, 3, "{}", NULL, 0);
    expect_fail_path(path, RN_ERR_BAD_FILE, "header length 3 is larger than the 2 bytes");
}

static void test_bad_header_length_absurd(void **state) {
    (void)state;
    const char *path = tmp_path("absurd.safetensors");
    write_st_len(path, 100000001ull, "{}", NULL, 0);
    expect_fail_path(path, RN_ERR_BAD_FILE, "header length 100000001 is absurd");
    write_st_len(path, UINT64_MAX, "{}", NULL, 0);
    expect_fail_path(path, RN_ERR_BAD_FILE, "header length 18446744073709551615 is absurd");
}

static void test_bad_header_not_utf8(void **state) {
    (void)state;
    expect_bad("{\"a\xff\":{}}", NULL, 0, "header is not valid UTF-8 (at header byte 3)");
    expect_bad("{\"\xc0\xaf\":{}}", NULL, 0, "not valid UTF-8"); /* overlong '/' */
    expect_bad("{\"\xed\xa0\x80\":{}}", NULL, 0, "not valid UTF-8"); /* a surrogate */
    expect_bad("{\"\xe2\x82", NULL, 0, "not valid UTF-8");           /* cut in a sequence */
}

static void test_bad_json_syntax(void **state) {
    (void)state;
    expect_bad("{\"a\": {\"dtype\": \"F32\",", NULL, 0, "header is not valid JSON: ");
    expect_bad("", NULL, 0, "header is not valid JSON");
    expect_bad("{'a': 1}", NULL, 0, "header is not valid JSON: string or '}' expected near ''' (at header byte 2)");
    expect_bad("{} {}", NULL, 0, "not valid JSON: end of file expected near '{' (at header byte 4)");
    char deep[4002]; /* nesting deeper than cJSON's limit: an error, not a stack overflow */
    memset(deep, '[', 4000);
    deep[4000] = 0;
    expect_bad(deep, NULL, 0, "header is not valid JSON");
    /* NUL padding instead of spaces. */
    const char *path = tmp_path("bad.safetensors");
    const unsigned char nul_pad[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, nul_pad, 16);
    expect_fail_path(path, RN_ERR_BAD_FILE, "not valid JSON: end of file expected");
}

static void test_bad_header_not_object(void **state) {
    (void)state;
    expect_bad("[1, 2]", NULL, 0, "header is a JSON array, expected an object");
    expect_bad("\"F32\"", NULL, 0, "header is a JSON string, expected an object");
}

static void test_bad_entry_not_object(void **state) {
    (void)state;
    expect_bad("{\"w\": 3}", NULL, 0,
               "tensor 'w': entry is a JSON number, expected an object with \"dtype\"");
    expect_bad("{\"w\": [\"F32\", [1], [0, 4]]}", zeros, 4, "tensor 'w': entry is a JSON array");
}

static void test_bad_missing_fields(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
               "tensor 'w': missing \"dtype\"");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", zeros, 4,
               "tensor 'w': missing \"shape\"");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", zeros, 4,
               "tensor 'w': missing \"data_offsets\" (expected [begin, end])");
    expect_bad("{\"w\": {\"Dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros,
               4, "missing \"dtype\""); /* keys are case-sensitive */
}

static void test_bad_field_types(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros, 4,
               "\"dtype\" is a JSON number, expected a string");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": \"1\", \"data_offsets\": [0, 4]}}", zeros,
               4, "\"shape\" is a JSON string, expected an array");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}",
               zeros, 4, "shape[0] is a JSON string (expected a non-negative integer)");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, null], \"data_offsets\": [0, 4]}}",
               zeros, 4, "shape[1] is a JSON null");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {\"a\": 0}}}",
               zeros, 4, "\"data_offsets\" is a JSON object, expected an array of two integers");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}",
               zeros, 8, "\"data_offsets\" is a JSON array of the wrong length");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, \"4\"]}}",
               zeros, 4, "data_offsets[1] is a JSON string");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 4]}}",
               zeros, 4, "data_offsets[0] = -4 is negative");
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.5]}}",
               zeros, 4, "data_offsets[1] = 4.5 is a real number, not an integer");
}

static void test_bad_unknown_dtype(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}",
               zeros, 4,
               "tensor 'w': unknown dtype \"F8_E4M3\" (supported: F32, F64, F16, BF16, I64, "
               "I32, U8)");
    expect_bad("{\"w\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", zeros,
               4, "unknown dtype \"f32\"");
}

static void test_bad_negative_shape(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -2], \"data_offsets\": [0, 16]}}",
               zeros, 16, "tensor 'w': shape[1] = -2 is negative (expected a non-negative");
}

static void test_bad_fractional_shape(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 10]}}",
               zeros, 10, "tensor 'w': shape[0] = 2.5 is a real number, not an integer");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [1e300], \"data_offsets\": [0, 1]}}",
               zeros, 1, "shape[0] = 1e+300 is a real number, not an integer");
}

static void test_bad_too_many_dims(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
               "\"data_offsets\": [0, 1]}}",
               zeros, 1, "tensor 'w': shape has 9 dimensions, at most 8 are supported");
}

static void test_bad_end_before_begin(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", zeros,
               8, "tensor 'w': data_offsets [8, 4] end before they begin");
}

static void test_bad_offsets_beyond_data(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", zeros,
               8, "tensor 'w': data_offsets [0, 16] go beyond the data section of 8 bytes");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [9, 9]}}", zeros, 8,
               "data_offsets [9, 9] go beyond the data section of 8 bytes");
}

static void test_bad_byte_size_mismatch(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", zeros, 8,
               "tensor 'w': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12 bytes");
    expect_bad("{\"w\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [0, 4]}}", zeros, 8,
               "hold 4 bytes but shape [] of I64 needs 8 bytes");
    expect_bad("{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 0], \"data_offsets\": [0, 4]}}",
               zeros, 8, "hold 4 bytes but shape [2, 0] of BF16 needs 0 bytes");
}

static void test_bad_byte_size_overflow(void **state) {
    (void)state;
    /* 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits: must not pass as an empty tensor. */
    expect_bad("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
               "\"data_offsets\": [0, 0]}}",
               NULL, 0, "shape [4294967296, 4294967296] of F32 needs more than 2^64 bytes");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [9007199254740992, 9007199254740992, 2],"
               " \"data_offsets\": [0, 0]}}",
               NULL, 0, "needs more than 2^64 bytes");
}

static void test_bad_overlap(void **state) {
    (void)state;
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
               zeros, 12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    /* b is inside a long a; c after b still overlaps a. */
    expect_bad("{\"a\": {\"dtype\": \"U8\", \"shape\": [16], \"data_offsets\": [0, 16]},"
               " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [2, 4]}}",
               zeros, 16, "tensors 'a' [0, 16] and 'b' [2, 4] overlap");
    expect_bad("{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
               " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]}}",
               zeros, 4, "tensors 'a' [0, 4] and 'b' [0, 4] overlap");
}

static void test_bad_metadata(void **state) {
    (void)state;
    expect_bad("{\"__metadata__\": {\"format\": \"pt\", \"epoch\": 3}}", NULL, 0,
               "__metadata__ 'epoch' is a JSON number, expected a string");
    expect_bad("{\"__metadata__\": {\"a\": {\"b\": \"c\"}}}", NULL, 0,
               "__metadata__ 'a' is a JSON object, expected a string");
    expect_bad("{\"__metadata__\": [\"pt\"]}", NULL, 0,
               "\"__metadata__\" is a JSON array, expected an object of string values");
    expect_bad("{\"__metadata__\": {\"a\": \"1\", \"a\": \"2\"}}", NULL, 0,
               "duplicate object key near '\"a\"'");
    expect_bad("{\"__metadata__\": {}, \"__metadata__\": {}}", NULL, 0,
               "duplicate object key near '\"__metadata__\"'");
}

static void test_bad_duplicate_tensor(void **state) {
    (void)state;
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
               " \"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
               zeros, 2, "duplicate object key near '\"w\"'");
}

static void test_bad_name_in_message_is_one_line(void **state) {
    (void)state;
    expect_bad("{\"bad\\nname\": 1}", NULL, 0, "tensor 'bad?name': entry is a JSON number");
}

/* What the format's reference reader refuses and a lax JSON parser accepted: a byte-order mark,
 * raw NUL or control bytes, "\u0000" in a name (it loaded as the truncated name), a key given
 * twice inside an entry, numbers outside JSON's grammar, reals as shapes or offsets, and
 * tensors that do not fill the data section exactly. */
static void test_bad_not_like_the_reference(void **state) {
    (void)state;
    const char *ok = "{\"w\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}";
    const char *path = tmp_path("strict.safetensors");
    write_st(path, ok, zeros, 2);
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path)); /* the valid file these are variations of */
    rn_safetensors_free(&st);
    char bom[200];
    snprintf(bom, sizeof bom, "\xef\xbb\xbf%s", ok);
    expect_bad(bom, zeros, 2, "header is not valid JSON: invalid token near '\xef\xbb\xbf'");
    /* Raw bytes below 0x20 inside a name and between tokens (a NUL needs write_st_len). */
    expect_bad("{\"w\x01\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}", zeros,
               2, "control character 0x1");
    char nul[200];
    size_t n = (size_t)snprintf(nul, sizeof nul, "%s", ok);
    nul[1] = 0; /* {\0w": ... */
    unsigned char file[300];
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(file + 8, nul, n);
    memcpy(file + 8 + n, zeros, 2);
    write_bytes(path, file, 8 + n + 2);
    expect_fail_path(path, RN_ERR_BAD_FILE, "header is not valid JSON");
    expect_bad("{\"w\\u0000x\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}",
               zeros, 2, "NUL byte in object key not supported");
    expect_bad("{\"__metadata__\": {\"a\": \"x\\u0000y\"}}", NULL, 0,
               "header is not valid JSON: \\u0000 is not allowed");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"dtype\": \"F32\", \"shape\": [2], "
               "\"data_offsets\": [0, 2]}}", zeros, 2, "duplicate object key near '\"dtype\"'");
    expect_bad("{\"w\\ud800\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}",
               zeros, 2, "invalid Unicode '\\uD800'");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [02], \"data_offsets\": [0, 2]}}", zeros,
               2, "header is not valid JSON: invalid token");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [+2], \"data_offsets\": [0, 2]}}", zeros,
               2, "header is not valid JSON: invalid token");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [2.0], \"data_offsets\": [0, 2]}}", zeros,
               2, "shape[0] = 2 is a real number, not an integer");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2e0]}}", zeros,
               2, "data_offsets[1] = 2 is a real number, not an integer");
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}\x0b", zeros,
               2, "header is not valid JSON: end of file expected");
    /* Layout: a gap before, between and after the tensors. */
    expect_bad("{\"w\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [1, 3]}}", zeros, 3,
               "tensor 'w' begins at data offset 1, but the tensors before it end at 0");
    expect_bad("{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]},"
               " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}", zeros, 6,
               "tensor 'b' begins at data offset 4, but the tensors before it end at 2");
    expect_bad(ok, zeros, 3, "the tensors end at data offset 2, but the data section has 3 bytes");
    expect_bad("{}", zeros, 1, "the tensors end at data offset 0, but the data section has 1 bytes");
}

/* Metadata integers: decimal digits only, in range. */
static void test_meta_int_strict(void **state) {
    (void)state;
    const char *path = tmp_path("meta_int.safetensors");
    write_st(path, "{\"__metadata__\": {\"a\": \"32\", \"b\": \" 3\", \"c\": \"0x10\", \"d\": \"+1\","
             " \"e\": \"01\", \"f\": \"1e3\", \"g\": \"\", \"h\": \"3 \", \"i\": \"-1\","
             " \"j\": \"99999999999999999999\", \"k\": \"0\"}}", NULL, 0);
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    long v = 7;
    TU_OK(rn_safetensors_meta_int(&st, path, "absent", 1, 100, &v));
    assert_int_equal(v, 7);
    TU_OK(rn_safetensors_meta_int(&st, path, "a", 1, 100, &v));
    assert_int_equal(v, 32);
    assert_int_equal(rn_safetensors_meta_int(&st, path, "a", 1, 31, &v), RN_ERR_BAD_FILE);
    const char *bad[] = {"b", "c", "d", "e", "f", "g", "h", "i", "j", "k"};
    for (int i = 0; i < 10; i++) {
        v = 7;
        assert_int_equal(rn_safetensors_meta_int(&st, path, bad[i], 1, 1000000, &v),
                         RN_ERR_BAD_FILE);
        assert_int_equal(v, 7);
        assert_non_null(strstr(rn_error_message(), "decimal digits only"));
        assert_int_equal(strncmp(rn_error_message(), path, strlen(path)), 0);
    }
    rn_safetensors_free(&st);
}

/* A FIFO or a device is refused before it is opened (opening a FIFO blocks until a writer
 * comes: the alarm turns such a hang into a failure). */
static void test_bad_not_a_regular_file(void **state) {
    (void)state;
    const char *fifo = tmp_path("fifo.safetensors");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(30);
    expect_fail_path(fifo, RN_ERR_IO, "is a FIFO (named pipe), expected a file");
    rn_safetensors st;
    assert_int_equal(rn_safetensors_read(&st, "/dev/null"), RN_ERR_IO);
    assert_non_null(strstr(rn_error_message(), "/dev/null: is a character device"));
    alarm(0);
    unlink(fifo);
}

/* A very long tensor name or path is echoed cut: first and last 30 bytes around "...". */
static void test_bad_long_names_are_cut(void **state) {
    (void)state;
    size_t n = 100000;
    char *json = malloc(n + 100);
    assert_non_null(json);
    strcpy(json, "{\"");
    memset(json + 2, 'n', n);
    strcpy(json + 2 + n, "\": 1}");
    expect_bad(json, NULL, 0, "tensor 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...nnnnnnnnnnnnnnnnnnnnnnnnnnnnnn': "
               "entry is a JSON number");
    assert_true(strlen(rn_error_message()) < 300);
    char *path = malloc(n + 1);
    assert_non_null(path);
    memset(path, 'p', n);
    path[n] = 0;
    rn_safetensors st;
    assert_int_equal(rn_safetensors_read(&st, path), RN_ERR_IO);
    print_message("    %s\n", rn_error_message());
    assert_true(strlen(rn_error_message()) < 200);
    assert_non_null(strstr(rn_error_message(), "ppp...ppp"));
    assert_non_null(strstr(rn_error_message(), "ppp: cannot open"));
    free(path);
    free(json);
}

/* Every truncation of the fixture and many single-byte changes of its header: never a crash
 * or an out-of-bounds read (run under SANITIZE=1), always OK or a bad-file error. */
static void test_bad_truncations_and_byte_flips(void **state) {
    (void)state;
    char src[1024];
    snprintf(src, sizeof src, "%s/st_torch_fixture.safetensors", tu_data_dir());
    size_t n;
    unsigned char *orig = read_bytes(src, &n);
    unsigned char *b = malloc(n);
    assert_non_null(b);
    const char *path = tmp_path("fuzz.safetensors");
    int n_ok = 0, n_bad = 0;
    for (size_t len = 0; len < n; len++) {
        write_bytes(path, orig, len);
        rn_safetensors st;
        rn_status s = rn_safetensors_read(&st, path);
        if (s != RN_ERR_BAD_FILE) fail_msg("truncated to %zu: %s", len, rn_status_name(s));
        n_bad++;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | orig[i];
    const unsigned char subs[] = {0x00, '"', '}', ']', '9', '-', ',', 0xff, 0x80, ' '};
    for (size_t pos = 0; pos < 8 + hlen; pos++) {
        for (size_t k = 0; k < sizeof subs; k++) {
            memcpy(b, orig, n);
            b[pos] = subs[k];
            write_bytes(path, b, n);
            rn_safetensors st;
            rn_status s = rn_safetensors_read(&st, path);
            if (s == RN_OK) {
                n_ok++;
                const unsigned char *lo = st.file_buf, *hi = lo + st.file_size;
                for (int i = 0; i < st.n_tensors; i++) { /* inside the file; touch every byte */
                    const unsigned char *p = st.tensors[i].data;
                    assert_true(p >= lo + 8 && p <= hi && st.tensors[i].nbytes <= (size_t)(hi - p));
                    unsigned sum = 0;
                    for (size_t j = 0; j < st.tensors[i].nbytes; j++) sum += p[j];
                    (void)sum;
                }
                rn_safetensors_free(&st);
            } else if (s == RN_ERR_BAD_FILE) {
                n_bad++;
                assert_null(strchr(rn_error_message(), '\n'));
            } else {
                fail_msg("byte %zu := 0x%02x: %s", pos, subs[k], rn_status_name(s));
            }
        }
    }
    print_message("    %d corrupted files read fine, %d rejected as bad files\n", n_ok, n_bad);
    free(orig);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_names_and_sizes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_no_tensors_no_metadata),
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_read_lenient_valid_file),
        cmocka_unit_test(test_write_atomic_replace),
        cmocka_unit_test(test_write_rejects_bad_input),
        cmocka_unit_test(test_bad_missing_file),
        cmocka_unit_test(test_bad_short_file),
        cmocka_unit_test(test_bad_header_length_beyond_file),
        cmocka_unit_test(test_bad_header_length_absurd),
        cmocka_unit_test(test_bad_header_not_utf8),
        cmocka_unit_test(test_bad_json_syntax),
        cmocka_unit_test(test_bad_header_not_object),
        cmocka_unit_test(test_bad_entry_not_object),
        cmocka_unit_test(test_bad_missing_fields),
        cmocka_unit_test(test_bad_field_types),
        cmocka_unit_test(test_bad_unknown_dtype),
        cmocka_unit_test(test_bad_negative_shape),
        cmocka_unit_test(test_bad_fractional_shape),
        cmocka_unit_test(test_bad_too_many_dims),
        cmocka_unit_test(test_bad_end_before_begin),
        cmocka_unit_test(test_bad_offsets_beyond_data),
        cmocka_unit_test(test_bad_byte_size_mismatch),
        cmocka_unit_test(test_bad_byte_size_overflow),
        cmocka_unit_test(test_bad_overlap),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_duplicate_tensor),
        cmocka_unit_test(test_bad_name_in_message_is_one_line),
        cmocka_unit_test(test_bad_truncations_and_byte_flips),
        cmocka_unit_test(test_bad_not_like_the_reference),
        cmocka_unit_test(test_meta_int_strict),
        cmocka_unit_test(test_bad_not_a_regular_file),
        cmocka_unit_test(test_bad_long_names_are_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
