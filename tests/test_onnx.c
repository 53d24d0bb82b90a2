/*
 * test_onnx.c — the protobuf wire-format writer against hand-encoded bytes (varints of every
 * length, negative int64, fixed32 floats, strings, nested messages whose length needs two
 * bytes), and rn_model_export_onnx's argument checks (opset, batch, normalization, NaN
 * weights, unwritable path: the status, the message, and no file left) plus the opset and
 * BN folding seen in the bytes of a written file. ONNX Runtime and onnx.checker read the
 * files in tests/onnx_test.sh.
 */
#include "testutil.h"

#include "io/protobuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fails unless the writer holds exactly the n bytes `want`. */
static void expect_bytes(const rn_pb_writer *w, const uint8_t *want, size_t n) {
    assert_false(w->failed);
    assert_int_equal(w->len, n);
    assert_memory_equal(w->buf, want, n);
}

static void test_varint(void **state) {
    rn_pb_writer w = {0};
    rn_pb_varint(&w, 1, 0);
    rn_pb_varint(&w, 1, 1);
    rn_pb_varint(&w, 1, 300);     /* 0b10_0101100: AC 02 */
    rn_pb_varint(&w, 16, 127);    /* key 16 << 3 = 128: 80 01 */
    rn_pb_varint(&w, 2, UINT64_MAX);
    const uint8_t want[] = {0x08, 0x00, 0x08, 0x01, 0x08, 0xAC, 0x02, 0x80, 0x01, 0x7F,
                            0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    expect_bytes(&w, want, sizeof want);
    rn_pb_free(&w);
}

static void test_int64_negative(void **state) {
    rn_pb_writer w = {0};
    rn_pb_int64(&w, 3, -1); /* two's complement: ten bytes */
    rn_pb_int64(&w, 3, -2);
    const uint8_t want[] = {0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                            0x18, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    expect_bytes(&w, want, sizeof want);
    rn_pb_free(&w);
}

static void test_fixed32_and_strings(void **state) {
    rn_pb_writer w = {0};
    rn_pb_float(&w, 2, 1.0f);  /* 0x3F800000, little-endian */
    rn_pb_float(&w, 2, -2.5f); /* 0xC0200000 */
    rn_pb_string(&w, 4, "Add");
    rn_pb_string(&w, 4, "");
    const float v[2] = {1.0f, 0.5f};
    rn_pb_floats_le(&w, 9, v, 2);
    const uint8_t want[] = {0x15, 0x00, 0x00, 0x80, 0x3F, 0x15, 0x00, 0x00, 0x20, 0xC0,
                            0x22, 0x03, 'A',  'd',  'd',  0x22, 0x00, 0x4A, 0x08, 0x00,
                            0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x3F};
    expect_bytes(&w, want, sizeof want);
    rn_pb_free(&w);
}

static void test_nested(void **state) {
    rn_pb_writer w = {0};
    rn_pb_varint(&w, 1, 7);
    size_t outer = rn_pb_begin(&w, 7);
    size_t inner = rn_pb_begin(&w, 1);
    rn_pb_string(&w, 2, "x");
    rn_pb_end(&w, inner);
    uint8_t blob[200];
    for (int i = 0; i < 200; i++) blob[i] = (uint8_t)i;
    rn_pb_bytes(&w, 5, blob, sizeof blob);
    rn_pb_end(&w, outer);
    /* outer: inner message (1 + 1 + 3 bytes) + blob (1 + 2 + 200 bytes) = 208 = D0 01 */
    const uint8_t head[] = {0x08, 0x07, 0x3A, 0xD0, 0x01, 0x0A, 0x03, 0x12, 0x01, 'x',
                            0x2A, 0xC8, 0x01};
    assert_false(w.failed);
    assert_int_equal(w.len, sizeof head + 200);
    assert_memory_equal(w.buf, head, sizeof head);
    assert_memory_equal(w.buf + sizeof head, blob, 200);
    rn_pb_free(&w);
}

/* ---- export ------------------------------------------------------------------------------- */

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tu_tmpdir(), name);
    return buf;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* Whether the file at path contains the bytes of s. */
static bool file_has(const char *path, const char *s) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    bool found = memmem(buf, (size_t)n, s, strlen(s)) != NULL;
    free(buf);
    return found;
}

/* Exporting resnet8 with these options fails with `status`, a message holding `msg`, and
 * leaves no file. */
static void expect_export_error(rn_model *m, const rn_norm *norm, rn_onnx_opts o,
                                const char *path, rn_status status, const char *msg) {
    rn_status s = rn_model_export_onnx(m, path, norm, &o);
    printf("  %s\n", rn_error_message());
    assert_int_equal(s, status);
    assert_non_null(strstr(rn_error_message(), msg));
    assert_false(exists(path));
}

static void test_export_bad_args(void **state) {
    rn_model *m;
    assert_int_equal(rn_model_create(&m, "resnet8", NULL, 1), RN_OK);
    rn_norm norm = rn_model_default_norm(m);
    const char *path = tmp_path("bad.onnx");
    unlink(path);
    expect_export_error(m, &norm, (rn_onnx_opts){.opset = 10}, path, RN_ERR_BAD_ARG,
                        "opset 10 is not supported (expected 11 to 21)");
    expect_export_error(m, &norm, (rn_onnx_opts){.opset = 22}, path, RN_ERR_BAD_ARG, "opset 22");
    expect_export_error(m, &norm, (rn_onnx_opts){.batch = -1}, path, RN_ERR_BAD_ARG, "batch -1");
    rn_norm gray = {.channels = 1, .mean = {0.5f}, .std = {0.25f}};
    expect_export_error(m, &gray, (rn_onnx_opts){0}, path, RN_ERR_BAD_ARG,
                        "normalization has 1 channels, the model 3");
    expect_export_error(m, &norm, (rn_onnx_opts){0}, tmp_path("no/such/dir/bad.onnx"),
                        RN_ERR_IO, "cannot create");
    const rn_tensor_info *t = rn_model_find_tensor(m, "layer2.0.conv1.weight");
    t->data[5] = NAN;
    expect_export_error(m, &norm, (rn_onnx_opts){0}, path, RN_ERR_NUMERIC,
                        "tensor layer2.0.conv1.weight holds a NaN or Inf at index 5");
    rn_model_free(m);
}

static void test_export_file(void **state) {
    rn_model *m;
    assert_int_equal(rn_model_create(&m, "resnet8", NULL, 1), RN_OK);
    rn_norm norm = rn_model_default_norm(m);
    const char *path = tmp_path("r8.onnx");
    assert_int_equal(rn_model_export_onnx(m, path, &norm, NULL), RN_OK);
    /* ir_version 7 for opset 13 first, then the op types and the normalization metadata */
    FILE *f = fopen(path, "rb");
    uint8_t head[2];
    assert_int_equal(fread(head, 1, 2, f), 2);
    fclose(f);
    assert_int_equal(head[0], 0x08);
    assert_int_equal(head[1], 7);
    const char *ops[] = {"Conv", "BatchNormalization", "Relu", "Add", "Slice", "Pad",
                         "GlobalAveragePool", "Flatten", "Gemm", "mean", "0.4914"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) assert_true(file_has(path, ops[i]));
    assert_int_equal(rn_model_export_onnx(m, path, &norm,
                                          &(rn_onnx_opts){.opset = 21, .fold_bn = true}),
                     RN_OK);
    f = fopen(path, "rb");
    assert_int_equal(fread(head, 1, 2, f), 2);
    fclose(f);
    assert_int_equal(head[1], 10); /* ir_version 10 for opset 21 */
    assert_false(file_has(path, "BatchNormalization"));
    assert_true(file_has(path, "folded"));
    unlink(path);
    rn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_int64_negative),
        cmocka_unit_test(test_fixed32_and_strings),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_export_bad_args),
        cmocka_unit_test(test_export_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
