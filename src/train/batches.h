/*
 * batches.h — the data of a training run or an evaluation: the batch of training step s, and
 * the evaluation of the validation, test or training split, over either of two kinds of set:
 *
 *   in memory  rn_dataset (rn_dataset_load); the executor assembles each batch from the
 *              epoch's order (rn_draw_epoch_order) and the step's crop and flip draws;
 *   streamed   rn_stream (src/data/stream.h): decoding threads assemble each batch from
 *              JPEG files or tar shards, and the executor takes it whole
 *              (rn_exec_train_step_batch).
 *
 * rn_batches_open decides which (see rn_train_config: shards always stream, folders when they
 * would not fit data_memory decoded or when size or preset asks for the streamed transforms),
 * so the training loop and `resnet eval` never ask. Both kinds are functions of (seed, step):
 * a resumed run gets the batches an uninterrupted one gets.
 */
#ifndef RN_TRAIN_BATCHES_H
#define RN_TRAIN_BATCHES_H

#include "core/internal.h"
#include "data/stream.h"

typedef enum { RN_SPLIT_TRAIN, RN_SPLIT_VAL, RN_SPLIT_TEST, RN_SPLIT_COUNT } rn_split;

typedef struct {
    bool streamed;
    /* In memory: the three sets (val held out of train with the seed). Streamed: train
     * describes the training split only (n, shape, classes and class names; images and
     * labels NULL), val and test are empty. */
    rn_dataset train, val, test;
    rn_norm norm;           /* computed, the preset's, or the caller's (rn_batches_open) */
    int steps_per_epoch;    /* full batches of the training split */
    int batch;
    uint64_t seed;          /* of the epoch orders (in memory) */
    bool shuffle;
    /* streamed */
    rn_stream *stream[RN_SPLIT_COUNT]; /* NULL where a split has none */
    float *x;               /* (batch, 3, S, S) */
    int32_t *labels;        /* (batch) */
    float *logits, *probs;  /* (batch, classes) for evaluation */
    /* in memory */
    int *perm;              /* (train.n) the order of epoch perm_epoch */
    int perm_epoch;
    void (*warn)(const char *message, void *user); /* a skipped image (skip_bad) */
    void *user;
} rn_batches;

/* Whether c's data streams (c->data, data_memory, size, preset, resize: see rn_train_config),
 * into *streamed; *memory gets the budget it was judged against (c->data_memory, or its
 * default). Reads the folder's file list and one image header, no pixels. */
rn_status rn_batches_decide(const rn_train_config *c, bool *streamed, int64_t *memory);

/* Opens the data of c for `nproc` processes (streamed sets train in one): in memory, loads the
 * sets and holds out c->val images; streamed, opens a stream per split. training: the training
 * split gets the training transform (else the evaluation one, for `resnet eval`). norm: the
 * normalization to use (the weights'), or NULL to compute it (in memory: rn_dataset_norm;
 * streamed: the preset's, or measured on a sample). warn (may be NULL) gets the names of the
 * images skip_bad skips. Free with rn_batches_close, also after a failure. */
rn_status rn_batches_open(rn_batches *b, const rn_train_config *c, int nproc, bool training,
                          const rn_norm *norm, void (*warn)(const char *message, void *user),
                          void *user);
void rn_batches_close(rn_batches *b);

/* Images in a split (0: none). */
int rn_batches_count(const rn_batches *b, rn_split split);

/* Training step `step` (0-based, of a run whose executor rn_exec_train_init prepared with
 * b->train): the epoch's order and the step in memory, the decoded batch when streamed. */
rn_status rn_batches_train_step(rn_batches *b, rn_exec *e, int64_t step);

/* Evaluates a split (eval mode) on e: in memory rn_exec_evaluate_comm (split over comm's
 * processes); streamed batch by batch through rn_exec_forward. num_classes: the model's. */
rn_status rn_batches_evaluate(rn_batches *b, rn_split split, rn_exec *e, rn_comm *comm,
                              int num_classes, rn_eval_result *r);

#endif
