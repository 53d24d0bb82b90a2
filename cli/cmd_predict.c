/*
 * cmd_predict.c — `resnet predict`: classifies image files with a trained model.
 *
 * For each image: decode (RN_IMAGE_FORMATS), convert to the model's channel count, resize as the
 * data sets' --resize does (PIL's BILINEAR) only when the size differs, normalize with the
 * weights' statistics (or --mean and --std, load.h), run the eval-mode forward pass and print the top K
 * classes as PATH<TAB>RANK<TAB>CLASS<TAB>PROBABILITY, CLASS named by --labels, the weights'
 * metadata or the run folder's classes.txt (default_labels), else its index. With --preset
 * imagenet the image is prepared as torchvision's ImageNet evaluation does instead:
 * Resize(S*256/224) of the shorter side, then CenterCrop(S), S the model's input size, and
 * ImageNet's mean and std.
 */
#include "cli.h"
#include "data/stream.h"
#include "load.h"

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
            "                      [--std R,G,B] [--labels FILE] [--threads N] [--preset imagenet]\n"
            "                      [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16] IMAGE...\n"
            "Prints PATH<TAB>RANK<TAB>CLASS<TAB>PROBABILITY for the K most likely classes.\n"
            "IMAGE: a " RN_IMAGE_FORMATS " file (recognized by its content), as folder: data\n"
            "sets read them.\n"
            CLI_WEIGHTS_HELP
            "CLASS is a name from --labels FILE (one per line, in class order), else from the\n"
            "weights' metadata (class_names), else from classes.txt beside the weights file\n"
            "(a training run's folder) when it names every class; else the class index.\n"
            "An image of another size than the model's input is resized as training's --resize\n"
            "does: PIL's Image.resize((W, H), Image.BILINEAR), antialiased when shrinking\n"
            "(torchvision's transforms.Resize((H, W)) on a PIL image).\n"
            "--preset imagenet: resize the shorter side to S*256/224 (PIL's antialiased\n"
            "bilinear) and keep the center S x S (S the model's input size), normalized with\n"
            "ImageNet's mean and std (--mean/--std still override), as torchvision's\n"
            "evaluation does.\n");
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
    const char *weights, *labels;
    cli_weights_opts w; /* --model, --mean, --std */
    long top, threads;
    const char *device, *precision;
    bool imagenet; /* --preset imagenet */
} predict_opts;

static bool parse(int argc, char **argv, predict_opts *o, int *first_image) {
    enum { OPT_TOP = CLI_OPT_OWN, OPT_LABELS, OPT_PRESET };
    static const struct option opts[] = {
        {"weights", required_argument, 0, CLI_OPT_WEIGHTS},
        CLI_WEIGHTS_OPTIONS,
        {"top", required_argument, 0, OPT_TOP},
        {"labels", required_argument, 0, OPT_LABELS},
        {"threads", required_argument, 0, CLI_OPT_THREADS},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {"device", required_argument, 0, CLI_OPT_DEVICE},
        {"precision", required_argument, 0, CLI_OPT_PRECISION},
        {"preset", required_argument, 0, OPT_PRESET},
        {0, 0, 0, 0}};
    int c;
    o->device = NULL;
    o->precision = "fp32";
    optind = 1;
    while ((c = cli_getopt("predict", argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_WEIGHTS: o->weights = optarg; break;
        case OPT_LABELS: o->labels = optarg; break;
        case OPT_TOP: if (!cli_parse_int("--top", optarg, 1, 100000, &o->top)) return false; break;
        case CLI_OPT_THREADS: if (!cli_parse_int("--threads", optarg, 0, 1024, &o->threads)) return false; break;
        case CLI_OPT_MODEL:
        case CLI_OPT_MEAN:
        case CLI_OPT_STD: if (!cli_weights_opt(c, optarg, &o->w)) return false; break;
        case CLI_OPT_DEVICE: if (!cli_check_device(optarg)) return false; o->device = optarg; break;
        case CLI_OPT_PRECISION: if (!cli_check_precision(optarg)) return false; o->precision = optarg; break;
        case OPT_PRESET:
            if (strcmp(optarg, "imagenet")) {
                cli_error("--preset: expected imagenet, got '%s'", optarg);
                return false;
            }
            o->imagenet = true;
            break;
        case CLI_OPT_HELP: usage(stdout); exit(0);
        default: return false; /* cli_getopt said why */
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
    *first_image = optind;
    return true;
}

/* The class names when no --labels FILE is given: the weights' metadata, else classes.txt in the
 * weights file's folder (what training writes beside them) when it has one non-empty line per
 * class; *n 0 (indices are printed) when neither has them. False after printing an error. */
static bool default_labels(const char *weights, int num_classes, char ***labels, int *n) {
    *n = 0;
    rn_status s = rn_weights_class_names(weights, num_classes, labels);
    if (s != RN_OK) {
        cli_lib_error(s);
        return false;
    }
    if (*labels) {
        *n = num_classes;
        return true;
    }
    const char *slash = strrchr(weights, '/');
    char path[4096];
    int dir_len = slash ? (int)(slash - weights) : 1;
    int len = snprintf(path, sizeof path, "%.*s/classes.txt", dir_len, slash ? weights : ".");
    struct stat st;
    if (len < 0 || (size_t)len >= sizeof path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return true;
    int got = read_labels(path, labels);
    if (got < 0) return false;
    bool fits = got == num_classes;
    for (int i = 0; fits && i < got; i++) fits = (*labels)[i][0] != 0;
    if (fits) {
        *n = got;
    } else {
        for (int i = 0; i < got; i++) free((*labels)[i]);
        free(*labels);
        *labels = NULL;
    }
    return true;
}
int cmd_predict(int argc, char **argv) {
    predict_opts o = {.top = 5};
    int first;
    if (!parse(argc, argv, &o, &first)) return 2;
    rn_model *m = NULL;
    rn_exec *e = NULL;
    float *logits = NULL;
    rn_norm norm;
    char **labels = NULL;
    int n_labels = 0, rc = 1;
    float *x = NULL, *probs = NULL;
    rn_status s;
    if ((rc = cli_load_model(o.weights, &o.w, &m, &norm))) return rc;
    rc = 1;
    rn_model_opts mo = rn_model_get_opts(m);
    if (o.imagenet) {
        if (mo.in_channels != 3 || mo.in_height != mo.in_width) {
            rc = cli_usage_error("--preset imagenet: the model takes %dx%dx%d inputs, expected 3xSxS",
                      mo.in_channels, mo.in_height, mo.in_width);
            goto out;
        }
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        norm.channels = 3;
        for (int c = 0; c < 3; c++) {
            norm.mean[c] = mean[c];
            norm.std[c] = std[c];
        }
        cli_norm_override(&o.w, 3, &norm); /* the counts were checked on loading */
    }
    if (o.labels && (n_labels = read_labels(o.labels, &labels)) < 0) goto out;
    if (!o.labels && !default_labels(o.weights, mo.num_classes, &labels, &n_labels)) goto out;
    if (o.labels && n_labels < mo.num_classes) {
        cli_error("%s: %d label%s, the model has %d classes", o.labels, n_labels,
                  n_labels == 1 ? "" : "s", mo.num_classes);
        goto out;
    }
    rn_exec_opts eo = {.device = o.device, .threads = (int)o.threads, .precision = o.precision,
                       .inference_only = true};
    if ((s = rn_exec_open(&e, m, &eo, 1)) != RN_OK) {
        cli_lib_error(s);
        goto out;
    }
    size_t in_floats = (size_t)mo.in_channels * mo.in_height * mo.in_width;
    x = malloc(in_floats * sizeof(float));
    probs = malloc((size_t)mo.num_classes * sizeof(float));
    logits = malloc((size_t)mo.num_classes * sizeof(float));
    int *order = malloc((size_t)mo.num_classes * sizeof(int));
    if (!x || !probs || !order || !logits) {
        free(order);
        cli_error("out of memory");
        goto out;
    }
    int k = (int)(o.top < mo.num_classes ? o.top : mo.num_classes);
    rc = 0;
    for (int i = first; i < argc; i++) {
        rn_image img;
        if (o.imagenet) {
            s = rn_image_eval_input(x, argv[i], mo.in_height, 0, norm.mean, norm.std);
        } else {
            if ((s = rn_image_load(&img, argv[i], mo.in_channels)) != RN_OK) {
                rc = cli_lib_error(s);
                continue; /* the other images are still classified */
            }
            s = rn_image_to_input(x, &img, mo.in_channels, mo.in_height, mo.in_width, &norm);
            rn_image_free(&img);
        }
        if (s == RN_OK) s = rn_exec_forward(e, x, 1, RN_MODE_INFER, logits);
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
    free(logits);
    rn_exec_close(e);
    rn_model_free(m);
    return rc;
}
