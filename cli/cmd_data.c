/*
 * cmd_data.c — `resnet data`: look at a data set (counts, shape, classes, per-channel
 * statistics), pack it into CIFAR-style batches that load fast (packed:DIR), or measure how
 * fast a streamed set (folder:ROOT, shards:PATTERN) decodes and augments. Progress goes to
 * stderr: images decoded (folders), then for pack what was read and what is being written.
 */
#include "cli.h"
#include "data/stream.h"
#include "format.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet data pack --data SPEC --out DIR [--resize HxW]\n"
            "       resnet data pack --data folder:ROOT --format shards --out DIR [--shard-size N]\n"
            "       resnet data info --data SPEC [--resize HxW]\n"
            "       resnet data bench --data SPEC [--size S] [--transform train|eval] [--threads N]\n"
            "                         [--batch B] [--split NAME] [--images N] [--seed N]\n"
            "                         [--no-dct] [--skip-bad] [--classes K]\n"
            "\n"
            "  pack      write the train and test sets to DIR as data_batch_1..5.bin, test_batch.bin\n"
            "            (records of a label byte + pixels, shuffled with a fixed seed so that\n"
            "            each batch samples every class and the same set gives the same files),\n"
            "            batches.meta.txt and meta.json;\n"
            "            load them again with packed:DIR (or cifar10:DIR when 3x32x32);\n"
            "            --format shards writes ROOT/train (and ROOT/val) of an ImageNet-layout\n"
            "            folder as WebDataset tar shards DIR/train-000000.tar, ... of --shard-size\n"
            "            images (default 1000): KEY.jpg (the file, unchanged) + KEY.cls (label)\n"
            "  info      print image counts, shape, classes and the train set's per-channel\n"
            "            mean and std of pixel/255\n"
            "  bench     stream a set (folder:ROOT or shards:PATTERN) through decoding and the\n"
            "            transform alone, one epoch or --images N, and print images/s: X\n"
            "            (and the peak memory)\n"
            "\n"
            "  --data SPEC    cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR, mnist:DIR,\n"
            "                 folder:ROOT (ROOT/train/CLASS/IMAGE, ROOT/test/CLASS/IMAGE; IMAGE\n"
            "                 a " RN_IMAGE_FORMATS " file: " RN_IMAGE_EXTENSIONS "),\n"
            "                 packed:DIR\n"
            "  --out DIR      where pack writes (created if missing)\n"
            "  --resize HxW   resize every image (bilinear, as PIL) to H x W pixels (S: S x S)\n"
            "\n"
            "bench options (streamed sets: folder:ROOT reads ROOT/SPLIT/CLASS/*, shards:PATTERN\n"
            "reads tar shards such as shards:DIR/train-{000000..000127}.tar of KEY.jpg + KEY.cls):\n"
            "  --size S             crop size (default 224)\n"
            "  --transform T        train: RandomResizedCrop + flip (default); eval: resize the\n"
            "                       shorter side to S*256/224 + center crop\n"
            "  --threads N          decoding threads (default 2)\n"
            "  --batch B            images per batch (default 64)\n"
            "  --split NAME         folder: the sub-folder (default train)\n"
            "  --images N           stop after about N images (default: one epoch)\n"
            "  --seed N             the order and augmentation seed (default 0)\n"
            "  --no-dct             train: decode at full size (no DCT-domain downscaling)\n"
            "  --skip-bad           skip images that do not decode (a warning each) instead of\n"
            "                       stopping with an error\n"
            "  --classes K          shards: labels must be below K\n");
}

static void warn_skip(const char *message, void *user) {
    (void)user;
    fprintf(stderr, "resnet: warning: %s\n", message);
}

/* The long options of `resnet data`'s actions, beyond the shared CLI_OPT_* ones. */
enum {
    OPT_TRANSFORM = CLI_OPT_OWN, OPT_SPLIT, OPT_IMAGES, OPT_NO_DCT, OPT_SKIP_BAD, OPT_FORMAT,
    OPT_SHARD_SIZE,
};

/* `resnet data bench`: one pass over a streamed set, timed. argv[0] is "bench". */
static int data_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, 0, CLI_OPT_DATA},
        {"size", required_argument, 0, CLI_OPT_SIZE},
        {"transform", required_argument, 0, OPT_TRANSFORM},
        {"threads", required_argument, 0, CLI_OPT_THREADS},
        {"batch", required_argument, 0, CLI_OPT_BATCH},
        {"split", required_argument, 0, OPT_SPLIT},
        {"images", required_argument, 0, OPT_IMAGES},
        {"seed", required_argument, 0, CLI_OPT_SEED},
        {"classes", required_argument, 0, CLI_OPT_CLASSES},
        {"no-dct", no_argument, 0, OPT_NO_DCT},
        {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {0, 0, 0, 0}};
    rn_stream_opts o = rn_stream_opts_default();
    o.on_skip = warn_skip;
    const char *spec = NULL;
    long images = 0, v;
    int c;
    optind = 1;
    while ((c = cli_getopt("data bench", argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_HELP: usage(stdout); return 0;
        case CLI_OPT_DATA: spec = optarg; break;
        case OPT_SPLIT: o.split = optarg; break;
        case OPT_NO_DCT: o.dct_scaling = false; break;
        case OPT_SKIP_BAD: o.skip_bad = true; break;
        case OPT_TRANSFORM:
            if (!strcmp(optarg, "train")) o.transform = RN_TRANSFORM_TRAIN;
            else if (!strcmp(optarg, "eval")) o.transform = RN_TRANSFORM_EVAL;
            else return cli_usage_error("--transform: expected train or eval, got '%s'", optarg);
            break;
        case CLI_OPT_SIZE:
            if (!cli_parse_int("--size", optarg, 1, 4096, &v)) return 2;
            o.size = (int)v;
            break;
        case CLI_OPT_THREADS:
            if (!cli_parse_int("--threads", optarg, 1, 1024, &v)) return 2;
            o.threads = (int)v;
            break;
        case CLI_OPT_BATCH:
            if (!cli_parse_int("--batch", optarg, 1, 100000, &v)) return 2;
            o.batch = (int)v;
            break;
        case OPT_IMAGES:
            if (!cli_parse_int("--images", optarg, 1, 1000000000L, &images)) return 2;
            break;
        case CLI_OPT_SEED:
            if (!cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &v)) return 2;
            o.seed = (uint64_t)v;
            break;
        case CLI_OPT_CLASSES:
            if (!cli_parse_int("--classes", optarg, 1, 100000, &v)) return 2;
            o.num_classes = (int)v;
            break;
        default: return 2; /* cli_getopt said why */
        }
    }
    if (optind != argc)
        return cli_usage_error("data bench: unexpected argument '%s'", argv[optind]);
    if (!spec)
        return cli_usage_error("data bench: --data SPEC is required (see `resnet data --help`)");
    o.drop_last = false;
    rn_stream *s;
    double t0 = now_s();
    rn_status st = rn_stream_open(&s, spec, &o);
    if (st) return cli_lib_error(st);
    double t_index = now_s() - t0;
    size_t plane = (size_t)3 * o.size * o.size;
    float *x = malloc((size_t)o.batch * plane * sizeof *x);
    int32_t *labels = malloc((size_t)o.batch * sizeof *labels);
    if (!x || !labels) {
        free(x);
        free(labels);
        rn_stream_close(s);
        return cli_error("data bench: cannot allocate a batch of %d images", o.batch);
    }
    int steps = rn_stream_steps(s);
    long done = 0;
    int rc = 0;
    t0 = now_s();
    for (int step = 0; step < steps && (!images || done < images); step++) {
        int n;
        if ((st = rn_stream_batch(s, 0, step, x, labels, &n))) {
            rc = cli_lib_error(st);
            break;
        }
        done += n;
    }
    double seconds = now_s() - t0;
    if (!rc) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("data     %s (%d images, %d classes; indexed in %.2f s)\n", spec, rn_stream_len(s),
               rn_stream_num_classes(s), t_index);
        printf("images   %ld of 3x%dx%d, %s transform, %d thread%s, batch %d\n", done, o.size,
               o.size, o.transform == RN_TRANSFORM_TRAIN ? "train" : "eval", o.threads,
               cli_plural(o.threads), o.batch);
        printf("peak memory: %.1f MiB\n", ru.ru_maxrss / 1024.0);
        printf("images/s: %.1f\n", done / seconds);
    }
    free(x);
    free(labels);
    rn_stream_close(s);
    return rc;
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

/* `resnet data pack --format shards`: ROOT/train and, if present, ROOT/val. */
static int pack_shards(const char *spec, const char *out, int per_shard) {
    const char *splits[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        if (k == 1) { /* val is optional */
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/val", spec + 7);
            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) break;
        }
        int shards, images;
        rn_status s = rn_stream_pack_shards(spec, splits[k], out, per_shard, &shards, &images);
        if (s) return cli_lib_error(s);
        printf("wrote %s/%s-{000000..%06d}.tar: %d images in %d shards\n", out, splits[k],
               shards - 1, images, shards);
        printf("load it with --data 'shards:%s/%s-{000000..%06d}.tar'\n", out, splits[k],
               shards - 1);
    }
    return 0;
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
    if (!strcmp(action, "bench")) return data_bench(argc - 1, argv + 1);
    bool pack = !strcmp(action, "pack");
    if (!pack && strcmp(action, "info"))
        return cli_usage_error("data: unknown action '%s' (expected pack, info or bench; see "
                               "`resnet data --help`)", action);
    static const struct option pack_opts[] = {
        {"data", required_argument, 0, CLI_OPT_DATA},
        {"out", required_argument, 0, CLI_OPT_OUT},
        {"resize", required_argument, 0, CLI_OPT_RESIZE},
        {"format", required_argument, 0, OPT_FORMAT},
        {"shard-size", required_argument, 0, OPT_SHARD_SIZE},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {0, 0, 0, 0}};
    /* info takes the first three and --help */
    static const struct option info_opts[] = {
        {"data", required_argument, 0, CLI_OPT_DATA},
        {"resize", required_argument, 0, CLI_OPT_RESIZE},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {0, 0, 0, 0}};
    const char *spec = NULL, *out = NULL, *format = "batches";
    long shard_size = 1000;
    rn_data_opts opts = {0, 0};
    const char *cmd = pack ? "data pack" : "data info";
    int c;
    optind = 1;
    while ((c = cli_getopt(cmd, argc - 1, argv + 1, "h", pack ? pack_opts : info_opts, NULL)) !=
           -1) {
        switch (c) {
        case CLI_OPT_HELP: usage(stdout); return 0;
        case CLI_OPT_DATA: spec = optarg; break;
        case CLI_OPT_OUT: out = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_SHARD_SIZE:
            if (!cli_parse_int("--shard-size", optarg, 1, 100000000, &shard_size)) return 2;
            break;
        case CLI_OPT_RESIZE:
            if (!cli_parse_size("--resize", optarg, &opts.resize_h, &opts.resize_w)) return 2;
            break;
        default: return 2; /* cli_getopt said why */
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("%s: unexpected argument '%s'", cmd, argv[1 + optind]);
    if (!spec)
        return cli_usage_error("%s: --data SPEC is required (see `resnet data --help`)", cmd);
    if (pack && !out) return cli_usage_error("data pack: --out DIR is required");
    if (strcmp(format, "batches") && strcmp(format, "shards"))
        return cli_usage_error("--format: expected batches or shards, got '%s'", format);
    if (!strcmp(format, "shards")) {
        if (strncmp(spec, "folder:", 7))
            return cli_usage_error("data pack --format shards: expected --data folder:ROOT, "
                                   "got '%s'", spec);
        if (opts.resize_h)
            return cli_usage_error("data pack --format shards: --resize does not apply (the "
                                   "files are copied unchanged)");
        return pack_shards(spec, out, (int)shard_size);
    }

    cli_progress progress; /* decoding: a line per tenth where stderr is no terminal */
    cli_progress_init(&progress, "decoding images", false);
    double t0 = now_s();
    rn_dataset train, test;
    rn_status s = rn_dataset_load_progress(&train, &test, spec, &opts, cli_progress_show,
                                           &progress);
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
