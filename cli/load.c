/*
 * load.c — the weights options (load.h): --model, --mean and --std, parsed once for eval,
 * predict and export, and the model and its weights loaded with them.
 */
#include "load.h"

#include <stdlib.h>

bool cli_weights_opt(int opt, const char *arg, cli_weights_opts *o) {
    switch (opt) {
    case CLI_OPT_MODEL:
        if (!cli_check_model(arg)) return false;
        o->model = arg;
        return true;
    case CLI_OPT_MEAN: return cli_parse_floats("--mean", arg, o->mean, 4, &o->n_mean);
    case CLI_OPT_STD:
        if (!cli_parse_floats("--std", arg, o->std, 4, &o->n_std)) return false;
        for (int i = 0; i < o->n_std; i++)
            if (!(o->std[i] > 0)) {
                cli_error("--std: every value must be positive, got '%s'", arg);
                return false;
            }
        return true;
    }
    return true;
}

int cli_norm_override(const cli_weights_opts *o, int channels, rn_norm *norm) {
    if ((o->n_mean && o->n_mean != channels) || (o->n_std && o->n_std != channels)) {
        cli_error("--mean/--std: expected %d value%s (one per input channel)", channels,
                  channels == 1 ? "" : "s");
        return 2;
    }
    for (int c = 0; c < o->n_mean; c++) norm->mean[c] = o->mean[c];
    for (int c = 0; c < o->n_std; c++) norm->std[c] = o->std[c];
    return 0;
}

/* An integer metadata field of the weights file into *v (left 0, the default, when absent);
 * false after printing an error if it is not a positive integer. */
static bool meta_int(const rn_safetensors *st, const char *path, const char *key, int *v) {
    long x = *v;
    rn_status s = rn_safetensors_meta_int(st, path, key, 1, 1000000, &x);
    if (s != RN_OK) {
        cli_error("%s", rn_error_message());
        return false;
    }
    *v = (int)x;
    return true;
}

/* The model a file's metadata names, or o->model with the metadata's geometry; false after
 * printing why (every reason is the file's: a model name from the command line was checked
 * when it was parsed). */
static bool create_and_load(const char *weights, const char *model, rn_model **m,
                            rn_norm *norm) {
    rn_status s;
    if (!model) {
        if ((s = rn_model_create_from_file(m, weights, norm)) != RN_OK) {
            cli_error("%s", rn_error_message());
            return false;
        }
        return true;
    }
    rn_safetensors st;
    if ((s = rn_safetensors_read(&st, weights)) != RN_OK) {
        cli_error("%s", rn_error_message());
        return false;
    }
    rn_model_opts mo = {0};
    bool ok = meta_int(&st, weights, "in_channels", &mo.in_channels) &&
              meta_int(&st, weights, "in_height", &mo.in_height) &&
              meta_int(&st, weights, "in_width", &mo.in_width) &&
              meta_int(&st, weights, "num_classes", &mo.num_classes);
    rn_safetensors_free(&st);
    if (!ok) return false;
    if ((s = rn_model_create(m, model, &mo, 0)) != RN_OK) {
        cli_error("%s: metadata: %s", weights, rn_error_message()); /* its geometry */
        return false;
    }
    if ((s = rn_model_load(*m, weights, norm)) != RN_OK) {
        cli_error("%s", rn_error_message());
        rn_model_free(*m);
        *m = NULL;
        return false;
    }
    return true;
}

int cli_load_model(const char *weights, const cli_weights_opts *o, rn_model **m, rn_norm *norm) {
    *m = NULL;
    if (!create_and_load(weights, o->model, m, norm)) return 1;
    int rc = cli_norm_override(o, rn_model_get_opts(*m).in_channels, norm);
    if (rc) {
        rn_model_free(*m);
        *m = NULL;
    }
    return rc;
}
