/*
 * cmd_predict.c — `resnet predict`: classifies image files with a trained model.
 *
 * For each image: decode (PNG, JPEG, ...), convert to the model's channel count, resize
 * bilinearly only when the size differs, normalize with the weights' statistics (or --mean and
 * --std), run the eval-mode forward pass and print the top K classes as
 * PATH<TAB>RANK<TAB>CLASS<TAB>PROBABILITY.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet predict --weights FILE [--model NAME] [--top K] [--mean R,G,B]\n"
            "                      [--std R,G,B] [--labels FILE] [--threads N]\n"
            "                      [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16] IMAGE...\n"
            "Prints PATH<TAB>RANK<TAB>CLASS<TAB>PROBABILITY for the K most likely classes.\n"
            "The model name and normalization come from the weights' metadata unless given.\n");
}

/* Reads one label per line (any length; "\r\n" endings); returns the count or -1 (error
 * printed, nothing to free). */
static int read_labels(const char *path, char ***out) {
    struct stat sb; /* a FIFO or a device would block or never end */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
        cli_error("%s: not a regular file, expected the labels file", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("%s: cannot open the labels file: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t size = 0;
    int n = 0, cap = 0;
    char **labels = NULL;
    bool nomem = false;
    errno = 0;
    while (!nomem && getline(&line, &size, f) != -1) {
        line[strcspn(line, "\r\n")] = 0;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(labels, (size_t)cap * sizeof *p);
            if (!p) {
                nomem = true;
                break;
            }
            labels = p;
        }
        if (!(labels[n] = strdup(line))) nomem = true;
        else n++;
    }
    int read_errno = ferror(f) ? (errno ? errno : EIO) : 0; /* e.g. EISDIR for a directory */
    free(line);
    fclose(f);
    if (nomem || read_errno) {
        for (int i = 0; i < n; i++) free(labels[i]);
        free(labels);
        if (nomem) cli_error("%s: out of memory reading the labels file", path);
        else cli_error("%s: cannot read the labels file: %s", path, strerror(read_errno));
        return -1;
    }
    *out = labels;
    return n;
}

typedef struct {
    const char *weights, *model, *labels;
    long top, threads;
    float mean[4], std[4];
    int n_mean, n_std;
    int cuda; /* -1: CPU */
    rn_precision precision;
} predict_opts;

static bool parse(int argc, char **argv, predict_opts *o, int *first_image) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"model", required_argument, 0, 'm'},
        {"top", required_argument, 0, 'k'},     {"mean", required_argument, 0, 'M'},
        {"std", required_argument, 0, 's'},     {"labels", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {"device", required_argument, 0, 'D'}, {"precision", required_argument, 0, 'P'},
        {0, 0, 0, 0}};
    int c;
    o->cuda = -1;
    o->precision = RN_PRECISION_FP32;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': o->weights = optarg; break;
        case 'm': o->model = optarg; break;
        case 'l': o->labels = optarg; break;
        case 'k': if (!cli_parse_int("--top", optarg, 1, 100000, &o->top)) return false; break;
        case 't': if (!cli_parse_int("--threads", optarg, 0, 1024, &o->threads)) return false; break;
        case 'M': if (!cli_parse_floats("--mean", optarg, o->mean, 4, &o->n_mean)) return false; break;
        case 's': if (!cli_parse_floats("--std", optarg, o->std, 4, &o->n_std)) return false; break;
        case 'D': if (!cli_parse_device(optarg, &o->cuda)) return false; break;
        case 'P': if (!cli_parse_precision(optarg, &o->precision)) return false; break;
        case 'h': usage(stdout); exit(0);
        default: cli_option_error("predict", c, argv); return false;
        }
    }
    if (!o->weights) {
        cli_error("predict: --weights FILE is required");
        return false;
    }
    if (optind >= argc) {
        cli_error("predict: no image files given");
        return false;
    }
    for (int i = 0; i < o->n_std; i++)
        if (!(o->std[i] > 0)) {
            cli_error("--std: every value must be positive");
            return false;
        }
    *first_image = optind;
    return true;
}

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

/* Loads the model: by --model name (geometry from the file's metadata, then checked by the
 * loader) or from the weights' metadata. Prints the error and returns false on failure. */
static bool load_model(const predict_opts *o, rn_model **m, rn_norm *norm) {
    rn_status s;
    if (!o->model) {
        if ((s = rn_model_create_from_file(m, o->weights, norm)) != RN_OK) {
            cli_lib_error(s);
            return false;
        }
        return true;
    }
    rn_safetensors st;
    if ((s = rn_safetensors_read(&st, o->weights)) != RN_OK) {
        cli_lib_error(s);
        return false;
    }
    rn_model_opts mo = {0};
    bool ok = meta_int(&st, o->weights, "in_channels", &mo.in_channels) &&
              meta_int(&st, o->weights, "in_height", &mo.in_height) &&
              meta_int(&st, o->weights, "in_width", &mo.in_width) &&
              meta_int(&st, o->weights, "num_classes", &mo.num_classes);
    rn_safetensors_free(&st);
    if (!ok) return false;
    if ((s = rn_model_create(m, o->model, &mo, 0)) != RN_OK) {
        if (s == RN_ERR_UNKNOWN_MODEL) cli_lib_error(s); /* the --model name */
        else cli_error("%s: metadata: %s", o->weights, rn_error_message()); /* its geometry */
        return false;
    }
    if ((s = rn_model_load(*m, o->weights, norm)) != RN_OK) {
        cli_lib_error(s);
        rn_model_free(*m);
        *m = NULL;
        return false;
    }
    return true;
}

int cmd_predict(int argc, char **argv) {
    predict_opts o = {.top = 5};
    int first;
    if (!parse(argc, argv, &o, &first)) return 2;
    rn_model *m = NULL;
    rn_ctx *ctx = NULL;
    rn_gpu *gpu = NULL;
    float *gpu_logits = NULL;
    rn_norm norm;
    char **labels = NULL;
    int n_labels = 0, rc = 1;
    float *x = NULL, *probs = NULL;
    rn_status s;
    if (!load_model(&o, &m, &norm)) return 1;
    rn_model_opts mo = rn_model_get_opts(m);
    if ((o.n_mean && o.n_mean != mo.in_channels) || (o.n_std && o.n_std != mo.in_channels)) {
        cli_error("--mean/--std: expected %d values (one per input channel)", mo.in_channels);
        goto out;
    }
    for (int c = 0; c < o.n_mean; c++) norm.mean[c] = o.mean[c];
    for (int c = 0; c < o.n_std; c++) norm.std[c] = o.std[c];
    if (o.labels && (n_labels = read_labels(o.labels, &labels)) < 0) goto out;
    if (o.labels && n_labels < mo.num_classes) {
        cli_error("%s: %d labels, the model has %d classes", o.labels, n_labels, mo.num_classes);
        goto out;
    }
    if (o.cuda >= 0) s = rn_gpu_open(&gpu, o.cuda, m, 1, o.precision);
    else if ((s = rn_ctx_create(&ctx, NULL, (int)o.threads)) == RN_OK)
        s = rn_model_reserve(m, ctx, 1);
    if (s != RN_OK) {
        cli_lib_error(s);
        goto out;
    }
    size_t in_floats = (size_t)mo.in_channels * mo.in_height * mo.in_width;
    x = malloc(in_floats * sizeof(float));
    probs = malloc((size_t)mo.num_classes * sizeof(float));
    gpu_logits = malloc((size_t)mo.num_classes * sizeof(float));
    int *order = malloc((size_t)mo.num_classes * sizeof(int));
    if (!x || !probs || !order || !gpu_logits) {
        free(order);
        cli_error("out of memory");
        goto out;
    }
    int k = (int)(o.top < mo.num_classes ? o.top : mo.num_classes);
    rc = 0;
    for (int i = first; i < argc; i++) {
        rn_image img;
        const float *logits;
        if ((s = rn_image_load(&img, argv[i], mo.in_channels)) != RN_OK) {
            rc = cli_lib_error(s);
            continue; /* the other images are still classified */
        }
        s = rn_image_to_input(x, &img, mo.in_channels, mo.in_height, mo.in_width, &norm);
        rn_image_free(&img);
        if (s == RN_OK && gpu) {
            s = rn_gpu_forward(gpu, x, 1, RN_MODE_EVAL, gpu_logits);
            logits = gpu_logits;
        } else if (s == RN_OK) {
            s = rn_model_forward(m, ctx, x, 1, RN_MODE_INFER, &logits);
        }
        if (s != RN_OK) {
            rc = cli_lib_error(s);
            continue;
        }
        int label = 0; /* the softmax needs a label; the loss it returns is unused */
        bool finite = true;
        for (int c = 0; c < mo.num_classes; c++) finite = finite && isfinite(logits[c]);
        if (!finite) {
            rc = cli_error("%s: the model's output is not finite (NaN or Inf): check the weights "
                           "%s and --mean/--std", argv[i], o.weights);
            continue;
        }
        rn_softmax_xent_forward(probs, logits, &label, 1, mo.num_classes, 0.0f);
        /* Top k by partial selection; ties keep the lower class index first. */
        for (int c = 0; c < mo.num_classes; c++) order[c] = c;
        for (int r = 0; r < k; r++) {
            int best = r;
            for (int c = r + 1; c < mo.num_classes; c++)
                if (probs[order[c]] > probs[order[best]]) best = c;
            int t = order[r];
            order[r] = order[best];
            order[best] = t;
            if (labels)
                printf("%s\t%d\t%s\t%.6f\n", argv[i], r + 1, labels[order[r]], probs[order[r]]);
            else
                printf("%s\t%d\t%d\t%.6f\n", argv[i], r + 1, order[r], probs[order[r]]);
        }
    }
    free(order);
out:
    for (int i = 0; i < n_labels; i++) free(labels[i]);
    free(labels);
    free(x);
    free(probs);
    free(gpu_logits);
    rn_gpu_close(gpu);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return rc;
}
