/*
 * stream_dump.c — a test program for stream_test.sh: writes what a streamed set gives, so
 * that Python can compare it with torchvision and runs can be compared with each other.
 *
 *   stream_dump batches SPEC OUT [key=value ...]
 *       writes OUT.x (float32, every batch asked for, back to back: (n, 3, S, S) each),
 *       OUT.labels (int32) and OUT.txt (one line per image of the batches, in order:
 *       "name label top left h w flip", the box in the file's full-size pixels as the train
 *       transform draws it). Keys: split, transform (train|eval), size, seed, threads, batch,
 *       prefetch, dct (0|1), shuffle (0|1), skip (0|1), classes, and batches=E:S,E:S,... (the
 *       (epoch, step) pairs to ask for, in that order; default every step of epoch 0).
 *   stream_dump boxes W H N SEED
 *       prints N RandomResizedCrop boxes of a W x H image, "top left h w flip" (epoch 0,
 *       images 0..N-1).
 * Skipped images are reported on stderr as "skip: MESSAGE". Exits 1 with the library's message.
 */
#include "core/draws.h"
#include "data/decode.h"
#include "data/source.h"
#include "data/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_skip(const char *m, void *user) {
    (void)user;
    fprintf(stderr, "skip: %s\n", m);
}

static int die(rn_status s) {
    fprintf(stderr, "stream_dump: %s\n", rn_error_message());
    return s ? 1 : 0;
}

static int boxes(int argc, char **argv) {
    if (argc != 6) return 2;
    int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    for (int i = 0; i < n; i++) {
        rn_crop_box b = rn_draw_resized_crop(seed, 0, i, w, h, 0.08, 1.0, 3.0 / 4, 4.0 / 3);
        printf("%d %d %d %d %d\n", b.top, b.left, b.h, b.w, b.flip);
    }
    return 0;
}

/* Writes "name label top left h w flip" for stream image `image` drawn in `epoch`. */
static void describe(FILE *f, const rn_stream *s, const rn_stream_opts *o, int image, int epoch,
                     rn_source *src, rn_decoder *dec) {
    char name[4096];
    int label = rn_stream_label(s, image, name, sizeof name);
    /* the source index of this image: the stream keeps the source's order (no subset here) */
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    int w = 0, h = 0;
    if (!rn_source_read(src, image, &buf, &cap, &size)) rn_decoder_peek(dec, buf, size, name, &w, &h);
    free(buf);
    rn_crop_box b = rn_draw_resized_crop(o->seed, epoch, image, w, h, o->scale[0], o->scale[1],
                                         o->ratio[0], o->ratio[1]);
    fprintf(f, "%s %d %d %d %d %d %d\n", name, label, b.top, b.left, b.h, b.w, b.flip);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "boxes")) return boxes(argc, argv);
    if (argc < 4 || strcmp(argv[1], "batches")) {
        fprintf(stderr, "usage: stream_dump batches SPEC OUT [key=value ...] | boxes W H N SEED\n");
        return 2;
    }
    const char *spec = argv[2], *out = argv[3], *batches = NULL;
    rn_stream_opts o = rn_stream_opts_default();
    o.on_skip = on_skip;
    o.drop_last = false;
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return 2;
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "split")) o.split = v;
        else if (!strcmp(k, "transform")) o.transform = strcmp(v, "eval") ? RN_TRANSFORM_TRAIN : RN_TRANSFORM_EVAL;
        else if (!strcmp(k, "size")) o.size = atoi(v);
        else if (!strcmp(k, "seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "threads")) o.threads = atoi(v);
        else if (!strcmp(k, "batch")) o.batch = atoi(v);
        else if (!strcmp(k, "prefetch")) o.prefetch = atoi(v);
        else if (!strcmp(k, "dct")) o.dct_scaling = atoi(v);
        else if (!strcmp(k, "shuffle")) o.shuffle = atoi(v);
        else if (!strcmp(k, "skip")) o.skip_bad = atoi(v);
        else if (!strcmp(k, "classes")) o.num_classes = atoi(v);
        else if (!strcmp(k, "batches")) batches = v;
        else return 2;
    }
    rn_stream *s;
    rn_status st = rn_stream_open(&s, spec, &o);
    if (st) return die(st);
    /* A second index of the same source, for the names and boxes in OUT.txt. */
    rn_source src;
    st = !strncmp(spec, "folder:", 7) ? rn_source_open_folder(&src, spec + 7, o.split)
                                       : rn_source_open_shards(&src, spec + 7, o.num_classes);
    if (st) return die(st);
    rn_decoder dec;
    if ((st = rn_decoder_init(&dec))) return die(st);
    char path[4096];
    snprintf(path, sizeof path, "%s.x", out);
    FILE *fx = fopen(path, "wb");
    snprintf(path, sizeof path, "%s.labels", out);
    FILE *fl = fopen(path, "wb");
    snprintf(path, sizeof path, "%s.txt", out);
    FILE *ft = fopen(path, "w");
    size_t plane = (size_t)3 * o.size * o.size;
    float *x = malloc((size_t)o.batch * plane * sizeof *x);
    int32_t *labels = malloc((size_t)o.batch * sizeof *labels);
    int *perm = malloc((size_t)rn_stream_len(s) * sizeof *perm);
    if (!fx || !fl || !ft || !x || !labels || !perm) return 1;
    int steps = rn_stream_steps(s), n_req = 0;
    for (const char *p = batches; n_req < (batches ? 1 << 20 : steps); n_req++) {
        int epoch = 0, step = n_req;
        if (batches) {
            if (!*p) break;
            if (sscanf(p, "%d:%d", &epoch, &step) != 2) return 2;
            p = strchr(p, ',');
            p = p ? p + 1 : "";
        }
        int n;
        if ((st = rn_stream_batch(s, epoch, step, x, labels, &n))) return die(st);
        fwrite(x, sizeof *x, (size_t)n * plane, fx);
        fwrite(labels, sizeof *labels, (size_t)n, fl);
        rn_draw_epoch_order(perm, rn_stream_len(s), o.seed, epoch, o.shuffle);
        for (int k = 0; k < n; k++)
            describe(ft, s, &o, perm[step * o.batch + k], epoch, &src, &dec);
    }
    fclose(fx);
    fclose(fl);
    fclose(ft);
    free(x);
    free(labels);
    free(perm);
    rn_decoder_free(&dec);
    rn_source_free(&src);
    rn_stream_close(s);
    return 0;
}
