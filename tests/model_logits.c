/*
 * model_logits.c — the library's logits for tests/onnx_test.sh, to compare with what ONNX
 * Runtime computes from an exported file (built by `make tests`, not a test itself):
 *
 *   model_logits MODEL WEIGHTS OUT INPUT.safetensors   inputs: INPUT's "input" (N, C, H, W)
 *   model_logits MODEL WEIGHTS OUT IMAGE...             inputs: image files, decoded, resized
 *                                                       and normalized as `resnet predict` does
 *   model_logits --init MODEL OUT                       writes seed-1 weights whose BNs have
 *                                                       random weight, bias, mean and variance
 *
 * OUT gets "input" (N, C, H, W), "logits" (N, K) from the eval-mode forward pass
 * (RN_MODE_EVAL: BN nodes run as they are) and "logits_infer" (N, K) from the inference pass
 * `resnet predict` runs (RN_MODE_INFER: BNs folded into the convolutions), on the default
 * backend. Exit status 0 on success, else 1 with the error on stderr.
 */
#include "resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "model_logits: %s: %s\n", what, rn_error_message());
    return 1;
}

/* Seeded weights with BNs that are not identities: every BN weight in [0.75, 1.25), bias and
 * running mean in [-0.1, 0.1), running variance in [0.5, 1.5). */
static int write_init(const char *name, const char *out) {
    rn_model *m;
    if (rn_model_create(&m, name, NULL, 1) != RN_OK) return fail(name);
    uint64_t r = 12345;
    for (int i = 0; i < rn_model_num_tensors(m); i++) {
        const rn_tensor_info *t = rn_model_tensor(m, i);
        const char *dot = strrchr(t->name, '.');
        bool bn = strstr(t->name, "bn") || strstr(t->name, "shortcut.1") ||
                  strstr(t->name, "downsample.1");
        if (!bn || !dot || t->kind == RN_TENSOR_COUNTER) continue;
        float lo = 0, span = 0;
        if (!strcmp(dot, ".weight")) lo = 0.75f, span = 0.5f;
        else if (!strcmp(dot, ".bias") || !strcmp(dot, ".running_mean")) lo = -0.1f, span = 0.2f;
        else if (!strcmp(dot, ".running_var")) lo = 0.5f, span = 1.0f;
        for (size_t j = 0; j < t->numel; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            t->data[j] = lo + span * (float)(r >> 40) / (float)(1 << 24);
        }
    }
    rn_norm norm = rn_model_default_norm(m);
    rn_status s = rn_model_save(m, out, &norm);
    rn_model_free(m);
    return s == RN_OK ? 0 : fail(out);
}

/* Fills x (n, C, H, W) from the arguments: a safetensors file's "input" or image files. */
static int read_inputs(rn_model *m, const rn_norm *norm, char **args, int n_args, float **x,
                       int *n) {
    rn_model_opts o = rn_model_get_opts(m);
    size_t per = (size_t)o.in_channels * o.in_height * o.in_width;
    size_t len = strlen(args[0]);
    if (len > 12 && !strcmp(args[0] + len - 12, ".safetensors")) {
        rn_safetensors st;
        if (rn_safetensors_read(&st, args[0]) != RN_OK) return fail(args[0]);
        const rn_st_tensor *t = rn_safetensors_find(&st, "input");
        if (!t || t->dtype != RN_DTYPE_F32 || t->ndim != 4 || t->shape[1] != o.in_channels ||
            t->shape[2] != o.in_height || t->shape[3] != o.in_width) {
            fprintf(stderr, "model_logits: %s: no F32 \"input\" of the model's shape\n", args[0]);
            rn_safetensors_free(&st);
            return 1;
        }
        *n = (int)t->shape[0];
        *x = malloc(t->nbytes);
        memcpy(*x, t->data, t->nbytes);
        rn_safetensors_free(&st);
        return 0;
    }
    *n = n_args;
    *x = malloc((size_t)n_args * per * sizeof(float));
    for (int i = 0; i < n_args; i++) {
        rn_image img;
        if (rn_image_load(&img, args[i], o.in_channels) != RN_OK) return fail(args[i]);
        rn_status s = rn_image_to_input(*x + i * per, &img, o.in_channels, o.in_height,
                                        o.in_width, norm);
        rn_image_free(&img);
        if (s != RN_OK) return fail(args[i]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--init")) return write_init(argv[2], argv[3]);
    if (argc < 5) {
        fprintf(stderr, "usage: model_logits MODEL WEIGHTS OUT (INPUT.safetensors | IMAGE...)\n"
                        "       model_logits --init MODEL OUT\n");
        return 1;
    }
    rn_model *m;
    rn_ctx *ctx;
    rn_norm norm;
    if (rn_model_create(&m, argv[1], NULL, 0) != RN_OK) return fail(argv[1]);
    if (rn_model_load(m, argv[2], &norm) != RN_OK) return fail(argv[2]);
    float *x = NULL;
    int n = 0;
    if (read_inputs(m, &norm, argv + 4, argc - 4, &x, &n)) return 1;
    rn_model_opts o = rn_model_get_opts(m);
    size_t k = (size_t)o.num_classes;
    float *logits = malloc(2 * n * k * sizeof(float));
    if (rn_ctx_create(&ctx, NULL, 0) != RN_OK || rn_model_reserve(m, ctx, n) != RN_OK)
        return fail("reserve");
    const rn_mode modes[2] = {RN_MODE_EVAL, RN_MODE_INFER};
    for (int i = 0; i < 2; i++) {
        const float *out;
        if (rn_model_forward(m, ctx, x, n, modes[i], &out) != RN_OK) return fail("forward");
        memcpy(logits + i * n * k, out, n * k * sizeof(float));
    }
    rn_st_tensor t[3] = {
        {.name = "input", .dtype = RN_DTYPE_F32, .ndim = 4,
         .shape = {n, o.in_channels, o.in_height, o.in_width},
         .nbytes = (size_t)n * o.in_channels * o.in_height * o.in_width * sizeof(float), .data = x},
        {.name = "logits", .dtype = RN_DTYPE_F32, .ndim = 2, .shape = {n, (int64_t)k},
         .nbytes = n * k * sizeof(float), .data = logits},
        {.name = "logits_infer", .dtype = RN_DTYPE_F32, .ndim = 2, .shape = {n, (int64_t)k},
         .nbytes = n * k * sizeof(float), .data = logits + n * k},
    };
    if (rn_safetensors_write(argv[3], t, 3, NULL, NULL, 0) != RN_OK) return fail(argv[3]);
    free(x);
    free(logits);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return 0;
}
