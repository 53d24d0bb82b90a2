/*
 * test_weights_names.c — class names in a weights file's metadata: rn_model_save_named writes
 * them as a JSON array under "class_names", rn_weights_class_names reads them back (NULL for a
 * file without them), names that cannot be one printed field are refused when saving, and a
 * malformed entry is a bad file when reading.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_tmpdir(), name);
    return buf[k];
}

static rn_model *make_model(void) {
    rn_model *m;
    rn_model_opts o = {.num_classes = 4};
    TU_OK(rn_model_create(&m, "resnet8", &o, 0));
    return m;
}

static void test_round_trip(void **state) {
    rn_model *m = make_model();
    char *names[4] = {"T-shirt/top", "Ankle boot", "a \"quoted\", name", "\xc3\xa9t\xc3\xa9"};
    const char *path = tmp_path("named.safetensors");
    TU_OK(rn_model_save_named(m, path, NULL, names));
    char **got;
    TU_OK(rn_weights_class_names(path, 4, &got));
    assert_non_null(got);
    for (int i = 0; i < 4; i++) assert_string_equal(got[i], names[i]);
    rn_class_names_free(got, 4);
    /* The entry is a JSON array of strings, as a Python reader sees it. */
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    const char *v = rn_safetensors_meta(&st, "class_names");
    assert_non_null(v);
    print_message("    class_names = %s\n", v);
    cJSON *j = cJSON_Parse(v);
    assert_true(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 4);
    assert_string_equal(cJSON_GetArrayItem(j, 1)->valuestring, "Ankle boot");
    cJSON_Delete(j);
    assert_string_equal(rn_safetensors_meta(&st, "model"), "resnet8"); /* the rest as before */
    rn_safetensors_free(&st);
    /* The weights load as any file of rn_model_save. */
    rn_model *m2;
    TU_OK(rn_model_create_from_file(&m2, path, NULL));
    rn_model_free(m2);
    /* Without names: none read back; NULL names save as rn_model_save does. */
    const char *plain = tmp_path("plain.safetensors");
    TU_OK(rn_model_save_named(m, plain, NULL, NULL));
    got = (char **)1;
    TU_OK(rn_weights_class_names(plain, 4, &got));
    assert_null(got);
    rn_model_free(m);
}

static void expect_fail(rn_status got, rn_status want, const char *a, const char *b) {
    assert_int_equal(got, want);
    const char *msg = rn_error_message();
    print_message("    expected failure: %s\n", msg);
    if (a) assert_non_null(strstr(msg, a));
    if (b) assert_non_null(strstr(msg, b));
    assert_null(strchr(msg, '\n'));
}

static void test_bad_names(void **state) {
    rn_model *m = make_model();
    const char *path = tmp_path("bad.safetensors");
    char *tab[4] = {"a", "b\tc", "d", "e"}, *empty[4] = {"a", "b", "", "e"};
    char *newline[4] = {"a", "b", "c", "d\n"}, *null[4] = {"a", NULL, "c", "d"};
    expect_fail(rn_model_save_named(m, path, NULL, tab), RN_ERR_BAD_ARG, "class 1", "tab");
    expect_fail(rn_model_save_named(m, path, NULL, empty), RN_ERR_BAD_ARG, "class 2", "empty");
    expect_fail(rn_model_save_named(m, path, NULL, newline), RN_ERR_BAD_ARG, "class 3", NULL);
    expect_fail(rn_model_save_named(m, path, NULL, null), RN_ERR_BAD_ARG, "class 1", NULL);
    /* Entries written by someone else: wrong count, not an array, not strings, not JSON. */
    char *names[4] = {"a", "b", "c", "d"};
    TU_OK(rn_model_save_named(m, path, NULL, names));
    char **got;
    expect_fail(rn_weights_class_names(path, 5, &got), RN_ERR_BAD_FILE, "class_names",
                "array of 5");
    assert_null(got);
    const char *bad_values[] = {"[\"a\", \"b\", \"c\", 4]", "{\"a\": 1}", "a,b,c,d",
                                "[\"a\", \"b\", \"c\", \"\"]"};
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path));
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        const char *keys[2] = {"model", "class_names"}, *vals[2] = {"resnet8", bad_values[i]};
        const char *bad = tmp_path("bad_meta.safetensors");
        TU_OK(rn_safetensors_write(bad, st.tensors, st.n_tensors, keys, vals, 2));
        expect_fail(rn_weights_class_names(bad, 4, &got), RN_ERR_BAD_FILE, "bad_meta.safetensors",
                    "class_names");
        assert_null(got);
    }
    rn_safetensors_free(&st);
    expect_fail(rn_weights_class_names(tmp_path("none.safetensors"), 4, &got), RN_ERR_IO,
                "none.safetensors", NULL);
    rn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
