/*
 * load.c — cli_load_model (load.h): a model and its weights for `resnet predict` and
 * `resnet export`.
 */
#include "load.h"

#include "cli.h"

#include <stdlib.h>

/* An integer metadata field of the weights file into *v (left 0, the default, when absent);
 * false after printing an error if it is not a positive integer. */
static bool meta_int(const rn_safetensors *st, const char *path, const char *key, int *v) {
    long x = *v;
    rn_status s = rn_safetensors_meta_int(st, path, key, 1, 1000000, &x);
    if (s != RN_OK) {
        cli_lib_error(s);
        return false;
    }
    *v = (int)x;
    return true;
}

bool cli_load_model(const char *weights, const char *model_name, rn_model **m, rn_norm *norm) {
    rn_status s;
    *m = NULL;
    if (!model_name) {
        if ((s = rn_model_create_from_file(m, weights, norm)) != RN_OK) {
            cli_lib_error(s);
            return false;
        }
        return true;
    }
    rn_safetensors st;
    if ((s = rn_safetensors_read(&st, weights)) != RN_OK) {
        cli_lib_error(s);
        return false;
    }
    rn_model_opts mo = {0};
    bool ok = meta_int(&st, weights, "in_channels", &mo.in_channels) &&
              meta_int(&st, weights, "in_height", &mo.in_height) &&
              meta_int(&st, weights, "in_width", &mo.in_width) &&
              meta_int(&st, weights, "num_classes", &mo.num_classes);
    rn_safetensors_free(&st);
    if (!ok) return false;
    if ((s = rn_model_create(m, model_name, &mo, 0)) != RN_OK) {
        if (s == RN_ERR_UNKNOWN_MODEL) cli_lib_error(s); /* the --model name */
        else cli_error("%s: metadata: %s", weights, rn_error_message()); /* its geometry */
        return false;
    }
    if ((s = rn_model_load(*m, weights, norm)) != RN_OK) {
        cli_lib_error(s);
        rn_model_free(*m);
        *m = NULL;
        return false;
    }
    return true;
}
