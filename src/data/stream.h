/*
 * stream.h — streamed data sets: batches of normalized model inputs decoded from JPEG (or PNG)
 * files on demand by a pool of threads that works a bounded number of batches ahead, for sets
 * far larger than memory (ImageNet: 1.28 M JPEGs). Sources:
 *
 *   folder:ROOT       ROOT/<split>/CLASS/IMAGE in ImageNet's layout (ROOT/train/CLASS/NAME.JPEG,
 *                     ROOT/val/CLASS/NAME); classes are ROOT/train's folders in strcmp order
 *   shards:PATTERN    WebDataset tar shards, e.g. shards:/data/train-{000000..000127}.tar, each
 *                     sample a KEY.jpg (or .jpeg, .png) member and a KEY.cls member holding its
 *                     label; the pattern names one split
 *
 * Transforms, with torchvision's semantics on PIL images:
 *   train  RandomResizedCrop(S, scale=(0.08, 1), ratio=(3/4, 4/3)) + RandomHorizontalFlip()
 *   eval   Resize(R) (shorter side, PIL's antialiased bilinear) + CenterCrop(S), R = S*256/224
 * then ToTensor + Normalize(mean, std).
 *
 * Batch `step` of epoch `epoch` is a pure function of (source, options, seed, epoch, step): the
 * epoch's order is rn_draw_epoch_order(seed, epoch) over the images, and image i's crop and
 * flip are rn_draw_resized_crop(seed, epoch, i) with i its index in the source. So batches do
 * not depend on the thread count or on which batches were asked for before, and a run resumed
 * at (epoch, step) gets exactly the batches it would have had. The pool decodes the batches
 * that follow the last one asked for; asking for any other batch discards that work.
 *
 * Memory: (prefetch + 1) batches of floats, per thread one encoded file and one decoded image,
 * and the index (about 30 bytes + the file name per image); never the whole set.
 */
#ifndef RN_DATA_STREAM_H
#define RN_DATA_STREAM_H

#include "resnet.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { RN_TRANSFORM_TRAIN, RN_TRANSFORM_EVAL } rn_transform_kind;

typedef struct {
    const char *split;   /* folder: the sub-folder to read ("train", "val"); shards: unused */
    rn_transform_kind transform;
    int size;            /* S: batches are (n, 3, S, S) */
    int resize;          /* eval: the shorter side before the center crop; 0: S * 256 / 224 */
    int batch;           /* images per batch */
    bool shuffle;        /* a new order every epoch; false: the source's order */
    bool drop_last;      /* drop the last, incomplete batch of an epoch */
    uint64_t seed;
    int threads;         /* decoding threads, >= 1 */
    int prefetch;        /* batches decoded ahead of the one asked for, >= 1 */
    float mean[3], std[3];
    double scale[2], ratio[2];  /* RandomResizedCrop's ranges */
    /* train: decode a JPEG shrunk in the DCT domain (by 1/2, 1/4 or 1/8) as long as the crop
     * keeps at least S pixels on each side: faster on large photos (1.17x on 1600x1200), with
     * a slightly softer crop than torchvision's full-size decode. Eval always decodes at full
     * size. */
    bool dct_scaling;
    /* An image that cannot be read or decoded: false, the batch fails with a message naming it;
     * true, it is replaced by the next image of the epoch's order that decodes, and on_skip (if
     * set) gets a one-line message naming it, in batch order, on the thread that asked for
     * the batch. */
    bool skip_bad;
    void (*on_skip)(const char *message, void *user);
    void *user;
    int num_classes;     /* shards: labels must be below it; 0: 1 + the largest label */
    const int *subset;   /* if set: the stream holds only these images of the source (indices,
                          * subset_n of them), e.g. a validation split; copied at open */
    int subset_n;
} rn_stream_opts;

typedef struct rn_stream rn_stream;

/* The defaults: split "train", train transform, S 224, batch 64, shuffled, drop_last, seed 0,
 * 2 threads, prefetch 2, ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225),
 * scale (0.08, 1), ratio (3/4, 4/3), DCT scaling on, bad images refused, num_classes 0. */
rn_stream_opts rn_stream_opts_default(void);

/* Indexes the source a spec names (see above) and starts the decoding threads. Reads no pixels
 * yet. Free with rn_stream_close. */
rn_status rn_stream_open(rn_stream **out, const char *spec, const rn_stream_opts *opts);
void rn_stream_close(rn_stream *s);

int rn_stream_len(const rn_stream *s);          /* images per epoch */
int rn_stream_num_classes(const rn_stream *s);
char *const *rn_stream_class_names(const rn_stream *s);  /* num_classes strings, owned by s */
int rn_stream_steps(const rn_stream *s);        /* batches per epoch */
/* Image i of the stream (0 <= i < rn_stream_len: the source's i-th image, or its subset[i]-th):
 * its label and, into buf unless NULL, its name (path, or SHARD:MEMBER). */
int rn_stream_label(const rn_stream *s, int i, char *buf, size_t size);

/* Writes batch `step` (0 <= step < rn_stream_steps) of epoch `epoch` (>= 0): x (n, 3, S, S)
 * normalized floats and labels (n), n = *count, the batch size except for an incomplete last
 * batch. x and labels must hold a full batch. Blocks until the batch is decoded. One consumer
 * thread at a time. On failure (a file that cannot be read or decoded, without skip_bad) the
 * message names the file and *count is 0; the stream stays usable. */
rn_status rn_stream_batch(rn_stream *s, int epoch, int step, float *x, int32_t *labels,
                          int *count);

/* Packs split `split` of a folder:ROOT set into WebDataset tar shards DIR/SPLIT-000000.tar,
 * ..., per_shard images each, in the folder's order (class, then file name): KEY.jpg (the file's
 * bytes, unchanged; .png for a PNG) + KEY.cls (the label). shards:DIR/SPLIT-{000000..N-1}.tar
 * then streams the same set. Sets *n_shards and *n_images. */
rn_status rn_stream_pack_shards(const char *spec, const char *split, const char *dir,
                                int per_shard, int *n_shards, int *n_images);

/* The eval transform of one image file (JPEG or PNG; gray and CMYK become RGB): torchvision's
 * Resize(resize) (the shorter side; 0: size * 256 / 224) + CenterCrop(size) + ToTensor +
 * Normalize(mean, std) on the PIL image, into out (3, size, size). For `resnet predict`. */
rn_status rn_image_eval_input(float *out, const char *path, int size, int resize,
                              const float mean[3], const float std[3]);

#endif
