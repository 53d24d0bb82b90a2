/*
 * classify.c — classifies image files with trained weights through resnet.c's public API: the
 * smallest complete program that uses the installed library.
 *
 *   cc classify.c $(pkg-config --cflags --libs resnet) -o classify
 *   ./classify WEIGHTS.safetensors IMAGE...
 *
 * prints PATH<TAB>CLASS<TAB>PROBABILITY (the most likely class) for each image. The model,
 * its input size and normalization come from the weights file's metadata.
 */
#include <resnet.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "classify: %s: %s\n", what, rn_error_message());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: classify WEIGHTS.safetensors IMAGE...\n");
        return 2;
    }
    rn_model *model;
    rn_norm norm;
    if (rn_model_create_from_file(&model, argv[1], &norm) != RN_OK) return fail(argv[1]);
    rn_ctx *ctx;
    /* Forward passes only: activations share memory once no later layer reads them. */
    if (rn_ctx_create(&ctx, NULL, 0) != RN_OK ||
        rn_model_reserve_inference(model, ctx, 1) != RN_OK)
        return fail("setup");
    rn_model_opts o = rn_model_get_opts(model);
    float *x = malloc(sizeof(float) * o.in_channels * o.in_height * o.in_width); /* (C, H, W) */
    float *probs = malloc(sizeof(float) * o.num_classes);                       /* (classes) */
    if (!x || !probs) return 1;
    int status = 0;
    for (int i = 2; i < argc; i++) {
        rn_image img;
        const float *logits; /* (1, classes), owned by the model */
        if (rn_image_load(&img, argv[i], o.in_channels) != RN_OK) {
            status = fail(argv[i]);
            continue;
        }
        rn_status s = rn_image_to_input(x, &img, o.in_channels, o.in_height, o.in_width, &norm);
        rn_image_free(&img);
        if (s == RN_OK) s = rn_model_forward(model, ctx, x, 1, RN_MODE_INFER, &logits);
        if (s != RN_OK) {
            status = fail(argv[i]);
            continue;
        }
        int label = 0; /* the loss needs a label; only the softmax in probs is used */
        rn_softmax_xent_forward(probs, logits, &label, 1, o.num_classes, 0.0f);
        int best = 0;
        for (int c = 1; c < o.num_classes; c++)
            if (probs[c] > probs[best]) best = c;
        printf("%s\t%d\t%.6f\n", argv[i], best, probs[best]);
    }
    free(x);
    free(probs);
    rn_ctx_free(ctx);
    rn_model_free(model);
    return status;
}
