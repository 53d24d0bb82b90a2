/*
 * cmd_data.c — `resnet data`: look at a data set (counts, shape, classes, per-channel
 * statistics) or pack it into CIFAR-style batches that load fast (packed:DIR). Progress goes to
 * stderr: images decoded (folders), then for pack what was read and what is being written.
 */
#include "cli.h"
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Decoding progress: on a terminal one line rewritten in place, elsewhere a line per tenth. */
typedef struct {
    bool tty;
    int last; /* the last tenth (or, on a terminal, percent) printed; -1: none yet */
} progress_state;

static void show_progress(int done, int total, void *user) {
    progress_state *p = user;
    int step = (int)((long long)done * (p->tty ? 100 : 10) / (total > 0 ? total : 1));
    if (step == p->last) return;
    p->last = step;
    char d[32], t[32];
    cli_thousands(d, sizeof d, done);
    cli_thousands(t, sizeof t, total);
    fprintf(stderr, "%sdecoding images: %s of %s (%d%%)%s", p->tty ? "\r" : "", d, t,
            (int)((long long)done * 100 / (total > 0 ? total : 1)),
            p->tty && done < total ? "" : "\n");
    fflush(stderr);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet data pack --data SPEC --out DIR [--resize HxW]\n"
            "       resnet data info --data SPEC [--resize HxW]\n"
            "\n"
            "  pack      write the train and test sets to DIR as data_batch_1..5.bin, test_batch.bin\n"
            "            (records of a label byte + pixels, shuffled with a fixed seed so that\n"
            "            each batch samples every class and the same set gives the same files),\n"
            "            batches.meta.txt and meta.json;\n"
            "            load them again with packed:DIR (or cifar10:DIR when 3x32x32)\n"
            "  info      print image counts, shape, classes and the train set's per-channel\n"
            "            mean and std of pixel/255\n"
            "\n"
            "  --data SPEC    cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR, mnist:DIR,\n"
            "                 folder:ROOT (ROOT/train/CLASS/IMAGE, ROOT/test/CLASS/IMAGE; IMAGE\n"
            "                 a " RN_IMAGE_FORMATS " file: " RN_IMAGE_EXTENSIONS "),\n"
            "                 packed:DIR\n"
            "  --out DIR      where pack writes (created if missing)\n"
            "  --resize HxW   resize every image (bilinear, as PIL) to H x W pixels\n");
}

/* "HxW", both in [1, 65536]. */
static bool parse_size(const char *opt, const char *s, int *h, int *w) {
    const char *x = s ? strchr(s, 'x') : NULL;
    if (!x || strchr(x + 1, 'x') || x == s || !x[1]) {
        cli_error("%s: expected HxW such as 32x32, got '%s'", opt, s ? s : "");
        return false;
    }
    char hs[32];
    snprintf(hs, sizeof hs, "%.*s", (int)(x - s) < 31 ? (int)(x - s) : 31, s);
    long hv, wv;
    if (!cli_parse_int(opt, hs, 1, 65536, &hv) || !cli_parse_int(opt, x + 1, 1, 65536, &wv))
        return false;
    *h = (int)hv;
    *w = (int)wv;
    return true;
}

static void print_classes(const rn_dataset *d) {
    printf("classes  %d:", d->num_classes);
    for (int k = 0; k < d->num_classes; k++)
        printf("%s %s", k ? "," : "", d->class_names ? d->class_names[k] : "?");
    printf("\n");
}

/* Smallest and largest number of images per class. */
static void class_range(const rn_dataset *d, int *lo, int *hi) {
    int *count = calloc((size_t)d->num_classes + 1, sizeof *count);
    *lo = *hi = 0;
    if (!count) return;
    for (int i = 0; i < d->n; i++) count[d->labels[i]]++;
    *lo = *hi = count[0];
    for (int k = 1; k < d->num_classes; k++) {
        if (count[k] < *lo) *lo = count[k];
        if (count[k] > *hi) *hi = count[k];
    }
    free(count);
}

int cmd_data(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        usage(stdout);
        return 0;
    }
    bool pack = !strcmp(action, "pack");
    if (!pack && strcmp(action, "info"))
        return cli_error("data: unknown action '%s' (expected pack or info; see `resnet data "
                         "--help`)", action);
    const char *spec = NULL, *out = NULL;
    rn_data_opts opts = {0, 0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        bool takes_value = !strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--resize");
        if (!takes_value)
            return cli_error("data %s: unknown option '%s' (see `resnet data --help`)", action, a);
        if (i + 1 >= argc) return cli_error("%s: expected a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--data")) spec = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!parse_size(a, v, &opts.resize_h, &opts.resize_w)) return 1;
    }
    if (!spec) return cli_error("data %s: --data SPEC is required (see `resnet data --help`)",
                                action);
    if (pack && !out) return cli_error("data pack: --out DIR is required");
    if (!pack && out) return cli_error("data info: --out is only for pack");

    progress_state progress = {.tty = isatty(STDERR_FILENO), .last = -1};
    double t0 = now_s();
    rn_dataset train, test;
    rn_status s = rn_dataset_load_progress(&train, &test, spec, &opts, show_progress, &progress);
    if (s) return cli_lib_error(s);
    int rc = 0;
    if (pack) {
        char ntr[32], nte[32];
        fprintf(stderr, "read %s train and %s test image%s of %dx%dx%d in %.1f s; writing %s\n",
                cli_thousands(ntr, sizeof ntr, train.n), cli_thousands(nte, sizeof nte, test.n),
                cli_plural(test.n), train.c, train.h, train.w, now_s() - t0, out);
        s = rn_dataset_pack(&train, &test, out);
        if (s) {
            rc = cli_lib_error(s);
        } else {
            printf("wrote %s: data_batch_1..5.bin (%d train image%s), test_batch.bin (%d test "
                   "image%s), batches.meta.txt, meta.json\n", out, train.n, cli_plural(train.n),
                   test.n, cli_plural(test.n));
            printf("shape    %dx%dx%d (channels x height x width)\n", train.c, train.h, train.w);
            print_classes(&train);
            if (train.c == 3 && train.h == 32 && train.w == 32)
                printf("load it with --data packed:%s (or cifar10:%s)\n", out, out);
            else
                printf("load it with --data packed:%s\n", out);
        }
    } else {
        int trlo, trhi, telo, tehi;
        class_range(&train, &trlo, &trhi);
        class_range(&test, &telo, &tehi);
        rn_norm nm = rn_dataset_norm(&train);
        printf("data     %s\n", spec);
        printf("train    %d image%s (%d..%d per class)\n", train.n, cli_plural(train.n), trlo,
               trhi);
        printf("test     %d image%s (%d..%d per class)\n", test.n, cli_plural(test.n), telo,
               tehi);
        printf("shape    %dx%dx%d (channels x height x width)\n", train.c, train.h, train.w);
        print_classes(&train);
        printf("mean    ");
        for (int c = 0; c < nm.channels; c++) printf(" %.4f", nm.mean[c]);
        printf("   (train set, pixel/255)\nstd     ");
        for (int c = 0; c < nm.channels; c++) printf(" %.4f", nm.std[c]);
        printf("\n");
    }
    rn_dataset_free(&train);
    rn_dataset_free(&test);
    return rc;
}
