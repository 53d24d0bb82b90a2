/*
 * resnet.h — the public API of resnet.c, a C11 library to build, train, evaluate and
 * deploy deep residual networks (He et al. 2015).
 *
 * Conventions (read these once, they hold everywhere):
 *  - Tensors are fp32, row-major NCHW: x[((n*C + c)*H + h)*W + w]. A comment beside each
 *    pointer gives its shape.
 *  - Every call that can fail returns an rn_status. On failure a one-line, human-readable
 *    message (what went wrong, which file, what was expected) is kept per thread and read
 *    with rn_error_message(). The library never prints and never exits.
 *  - Objects come in create/free pairs. The caller owns what a create hands back; pointers
 *    returned by accessors stay valid until the owning object is freed (or, for model
 *    activations, until the next forward pass).
 *  - Gradients accumulate (+=) unless a comment says otherwise; rn_model_zero_grad clears them.
 */
#ifndef RESNET_H
#define RESNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version: MAJOR changes when the API or ABI breaks (it is the shared library's
 * soname, libresnet.so.MAJOR), MINOR when functions are added, PATCH for fixes. */
#define RN_VERSION_MAJOR 0
#define RN_VERSION_MINOR 1
#define RN_VERSION_PATCH 0
#define RN_VERSION_STRING "0.1.0"

/* The version of the library actually linked, "MAJOR.MINOR.PATCH" (compare with
 * RN_VERSION_STRING, the header's). */
const char *rn_version(void);

/* ------------------------------------------------------------------------------------------
 * Status and errors
 * ---------------------------------------------------------------------------------------- */

typedef enum {
    RN_OK = 0,
    RN_ERR_NOMEM,         /* an allocation failed */
    RN_ERR_IO,            /* a file could not be opened, read or written */
    RN_ERR_BAD_FILE,      /* a file's contents are malformed (header, JSON, offsets, magic) */
    RN_ERR_BAD_ARG,       /* an argument or option value is out of range or malformed */
    RN_ERR_SHAPE,         /* a tensor's shape or dtype does not fit what was expected */
    RN_ERR_MISSING_KEY,   /* a weights file lacks a tensor the model needs */
    RN_ERR_UNKNOWN_MODEL, /* no model of that name */
    RN_ERR_NUMERIC,       /* a NaN or Inf appeared where a finite number was required */
    RN_ERR_INTERRUPTED,   /* a long operation was stopped by a signal; its state is saved */
    RN_ERR_DEVICE,        /* no GPU, no driver, a CUDA library failed, or built without CUDA */
} rn_status;

/* A short fixed name for a status, e.g. "bad file". */
const char *rn_status_name(rn_status s);

/* The message of the last failure on this thread ("" if none). Valid until the next failing
 * call on this thread. */
const char *rn_error_message(void);

/* ------------------------------------------------------------------------------------------
 * Execution context: which backend runs the kernels and with how many threads.
 * ---------------------------------------------------------------------------------------- */

typedef struct rn_ctx rn_ctx;

/* backend: "cpu" (the fast CPU kernels: AVX-512, AVX2 or portable C, picked at run time,
 * RN_ISA=avx512|avx2|portable lowers the level; direct convolutions), "cpu-winograd" (the same
 * with Winograd F(4x4,3x3) for the 3x3 stride-1 convolutions where it is faster),
 * "cpu-bf16" (bf16 convolutions and classifier, fp32 elsewhere), "reference" (portable C,
 * always built, the numbers the others are tested against) or NULL for the default (the
 * fastest fp32 one: "cpu-winograd"). nthreads: 0 means every available core. */
rn_status rn_ctx_create(rn_ctx **out, const char *backend, int nthreads);
void rn_ctx_free(rn_ctx *ctx);
const char *rn_ctx_backend_name(const rn_ctx *ctx);
int rn_ctx_threads(const rn_ctx *ctx);

/* Measures this machine's fp32 fused-multiply-add peak in GFLOP/s on nthreads threads (about a
 * tenth of a second); *isa receives the vector unit used ("avx512", "avx2", "portable"). */
double rn_fma_peak_gflops(int nthreads, const char **isa);
/* The vector unit rn_fma_peak_gflops measures with, without measuring (RN_ISA applied): what a
 * cached measurement is valid for, with the CPU model and the thread count. */
const char *rn_fma_peak_isa(void);

/* ------------------------------------------------------------------------------------------
 * Models
 * ---------------------------------------------------------------------------------------- */

typedef struct rn_model rn_model;

/* Input geometry and class count; a zero field takes the model's default (CIFAR models:
 * 3x32x32, 10 classes; -imagenet models: 3x224x224, 1000 classes). */
typedef struct {
    int in_channels;
    int in_height;
    int in_width;
    int num_classes;
} rn_model_opts;

/* Builds a named model (see rn_model_names) with freshly initialized weights: the same
 * initialization as the PyTorch code the names come from, drawn from `seed`.
 * opts may be NULL for the defaults. */
rn_status rn_model_create(rn_model **out, const char *name, const rn_model_opts *opts,
                          uint64_t seed);
void rn_model_free(rn_model *m);

/* NULL-terminated list of every model name. */
const char *const *rn_model_names(void);

const char *rn_model_name(const rn_model *m);
rn_model_opts rn_model_get_opts(const rn_model *m);
int64_t rn_model_param_count(const rn_model *m); /* trainable parameters */
int64_t rn_model_macs(const rn_model *m);        /* multiply-adds of one forward pass, one image */

/* The layer table, for `resnet info`: one row per op, in execution order. */
typedef struct {
    const char *name;  /* e.g. "layer1.0.conv1" */
    const char *op;    /* "conv3x3/1", "bn", "relu", "add", "shortcutA", "maxpool", ... */
    int c, h, w;       /* output shape of one image */
    int64_t params;
    int64_t macs;
} rn_layer_info;
int rn_model_num_layers(const rn_model *m);
rn_layer_info rn_model_layer(const rn_model *m, int i);

/* The model's state: every tensor PyTorch's state_dict() has, under PyTorch's key names,
 * in PyTorch's order. */
typedef enum {
    RN_TENSOR_PARAM,   /* trained by the optimizer; has a gradient */
    RN_TENSOR_BUFFER,  /* BN running_mean / running_var */
    RN_TENSOR_COUNTER, /* BN num_batches_tracked: one int64 */
} rn_tensor_kind;

typedef struct {
    const char *name;   /* e.g. "layer1.0.bn2.running_var" */
    rn_tensor_kind kind;
    int ndim;
    int shape[4];
    size_t numel;
    float *data;        /* PARAM and BUFFER: into the model's parameter or buffer block */
    float *grad;        /* PARAM only: into the gradient block; else NULL */
    int64_t *counter;   /* COUNTER only */
    bool is_bn_or_bias; /* PARAM that is a BN weight/bias or a bias (for --wd-skip-bn) */
} rn_tensor_info;

int rn_model_num_tensors(const rn_model *m);
const rn_tensor_info *rn_model_tensor(const rn_model *m, int i);
const rn_tensor_info *rn_model_find_tensor(const rn_model *m, const char *name);

/* All trainable parameters, their gradients and the BN running statistics each live in one
 * contiguous block (in rn_model_tensor order), so saving, zeroing, all-reducing and the
 * optimizer update are one loop. */
float *rn_model_params(rn_model *m, size_t *count);
float *rn_model_grads(rn_model *m, size_t *count);
float *rn_model_buffers(rn_model *m, size_t *count);
void rn_model_zero_grad(rn_model *m);

/* Allocates activations, their gradients and kernel scratch for batches of up to max_batch
 * images on ctx's backend and thread count. Called once before training or inference; the
 * forward and backward passes then allocate nothing. */
rn_status rn_model_reserve(rn_model *m, rn_ctx *ctx, int max_batch);
/* rn_model_reserve for forward passes in RN_MODE_EVAL or RN_MODE_INFER only: activations share
 * memory once no later layer reads them, and there are no gradients, so a deep net needs a
 * few activations' worth of memory instead of all of them. A training pass or a backward pass
 * then fails (RN_ERR_BAD_ARG) until rn_model_reserve is called. Results are bit-identical to
 * those of a training workspace. */
rn_status rn_model_reserve_inference(rn_model *m, rn_ctx *ctx, int max_batch);

typedef enum {
    RN_MODE_EVAL = 0,  /* BN uses running statistics */
    RN_MODE_TRAIN = 1, /* BN uses batch statistics and updates the running ones */
    RN_MODE_INFER = 2, /* as EVAL, for inference only: no backward pass may follow, so a backend
                        * may fold each BN into the convolution before it (the same results up
                        * to float rounding, ~1e-6) */
} rn_mode;

/* Forward pass of n images x (n, C, H, W), n <= max_batch. *logits (n, num_classes) points
 * into the model's activations and stays valid until the next forward pass. */
rn_status rn_model_forward(rn_model *m, rn_ctx *ctx, const float *x, int n, rn_mode mode,
                           const float **logits);

/* Backward pass for the last forward pass, given dloss/dlogits (n, num_classes). Parameter
 * gradients accumulate into rn_model_grads. */
rn_status rn_model_backward(rn_model *m, rn_ctx *ctx, const float *dlogits);

/* Per-op timing of the host passes, to see where a step's time goes: while on, every forward
 * and backward pass adds each node's wall time to a table (two clock reads per node; off by
 * default). rn_model_profile_print writes the time per pass by op kind and direction, and how
 * many nodes of each kind ran fused into the op before them; `RN_PROFILE=1 resnet bench`
 * prints it. Turning it on clears the table. */
void rn_model_profile(rn_model *m, bool on);
void rn_model_profile_print(const rn_model *m, FILE *f);

/* After a backward pass: the gradient of the loss w.r.t. the model's input (n, C, H, W). */
const float *rn_model_input_grad(const rn_model *m);

/* The residual (or, in plain nets, shortcut-free) blocks in order, named by their module path
 * ("layer2.0"), and after a backward pass the L2 norm of the gradient reaching each block's
 * input (over the whole batch): how well gradients flow back through depth. */
int rn_model_num_blocks(const rn_model *m);
const char *rn_model_block_name(const rn_model *m, int i);
double rn_model_block_input_grad_norm(const rn_model *m, int i);
/* Whether backward passes compute those norms (one extra read of each block's input
 * gradient); on for a new model. Training turns it off unless it logs gradients. */
void rn_model_track_block_grads(rn_model *m, bool on);

/* ------------------------------------------------------------------------------------------
 * Loss: softmax cross-entropy, mean over the batch, optional label smoothing (PyTorch's
 * definition: (1-eps)*nll + eps*mean_k(-log p_k)).
 * ---------------------------------------------------------------------------------------- */

/* probs (n, k) receives the softmax; returns the mean loss. labels: n ints in [0, k). */
float rn_softmax_xent_forward(float *probs, const float *logits, const int *labels, int n,
                              int k, float smoothing);
/* dlogits (n, k) is written (not accumulated): (probs - target) / n * dloss. */
void rn_softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n,
                              int k, float smoothing, float dloss);

/* ------------------------------------------------------------------------------------------
 * safetensors files: 8-byte little-endian header length, a JSON header, raw tensor bytes.
 * ---------------------------------------------------------------------------------------- */

typedef enum {
    RN_DTYPE_F32,
    RN_DTYPE_F64,
    RN_DTYPE_F16,
    RN_DTYPE_BF16,
    RN_DTYPE_I64,
    RN_DTYPE_I32,
    RN_DTYPE_U8,
} rn_dtype;

const char *rn_dtype_name(rn_dtype t); /* "F32", "I64", ... as in the format */
size_t rn_dtype_size(rn_dtype t);

#define RN_ST_MAX_DIMS 8

typedef struct {
    char *name;       /* reading: owned by the rn_safetensors */
    rn_dtype dtype;
    int ndim;         /* 0 for a scalar */
    int64_t shape[RN_ST_MAX_DIMS];
    size_t nbytes;    /* = product(shape) * rn_dtype_size(dtype) */
    /* Reading: points into file_buf and is NOT necessarily aligned for its dtype (the file's
     * offsets need not be multiples of the element size): copy with memcpy, never cast to
     * float* or int64_t*. Writing: the caller's nbytes bytes (may be NULL when nbytes is 0). */
    const void *data;
} rn_st_tensor;

typedef struct {
    int n_tensors;
    rn_st_tensor *tensors; /* sorted by data offset (empty tensors by offset, then name) */
    int n_meta;
    char **meta_keys;      /* owned; in the header's order */
    char **meta_values;
    void *file_buf;        /* the whole file; tensors point into it */
    size_t file_size;
} rn_safetensors;

/* Reads and validates a whole file as strictly as the format's reference reader (header length,
 * strict JSON with unique keys, dtypes, integer shapes versus byte sizes, tensors filling the
 * data section without gaps or overlaps, string metadata). Bad contents give
 * RN_ERR_BAD_FILE, an unreadable file RN_ERR_IO. On failure *st is left empty. Everything
 * in *st stays valid until rn_safetensors_free, which also accepts an empty struct. */
rn_status rn_safetensors_read(rn_safetensors *st, const char *path);
void rn_safetensors_free(rn_safetensors *st);
/* Lookups by exact name (a linear scan); NULL if absent. */
const rn_st_tensor *rn_safetensors_find(const rn_safetensors *st, const char *name);
const char *rn_safetensors_meta(const rn_safetensors *st, const char *key);
/* The metadata value under key as an integer in [lo, hi], written as decimal digits only (no
 * sign, spaces, leading zeros or exponent). RN_OK with *out unchanged when key is absent;
 * RN_ERR_BAD_FILE with a message naming path, key and value when malformed or out of range. */
rn_status rn_safetensors_meta_int(const rn_safetensors *st, const char *path, const char *key,
                                  long lo, long hi, long *out);

/* Writes tensors (in the given order, contiguous offsets, header padded with spaces to a
 * multiple of 8 bytes, "__metadata__" first when n_meta > 0) atomically: a temporary file in
 * the same directory, fsync, rename. meta_keys/meta_values may be NULL when n_meta is 0.
 * Inconsistent inputs (nbytes versus shape and dtype, duplicate names, a tensor named
 * "__metadata__", non-UTF-8 strings) give RN_ERR_BAD_ARG and write nothing. */
rn_status rn_safetensors_write(const char *path, const rn_st_tensor *tensors, int n_tensors,
                               const char *const *meta_keys, const char *const *meta_values,
                               int n_meta);

/* ------------------------------------------------------------------------------------------
 * Model weights as safetensors, under PyTorch's state_dict names.
 * ---------------------------------------------------------------------------------------- */

/* Per-channel input normalization: x = (pixel/255 - mean) / std. */
typedef struct {
    int channels;
    float mean[4];
    float std[4];
} rn_norm;

/* The default normalization for a model: CIFAR-10's statistics for CIFAR models (1-channel
 * models: their mean), ImageNet's for -imagenet models. */
rn_norm rn_model_default_norm(const rn_model *m);

/* Saves every state tensor plus metadata (model name, input shape, classes, normalization). */
rn_status rn_model_save(const rn_model *m, const char *path, const rn_norm *norm);

/* As rn_model_save, plus the class names (the model's num_classes strings, in label order; none
 * empty, none with a tab or line break) in the metadata: "class_names", a JSON array such as
 * ["airplane", "automobile", ...] (Python: json.loads(metadata["class_names"])), which predict
 * prints. class_names NULL: the same as rn_model_save. */
rn_status rn_model_save_named(const rn_model *m, const char *path, const rn_norm *norm,
                              char *const *class_names);

/* The class names of a weights file's metadata (see rn_model_save_named): *names receives
 * num_classes strings (free with rn_class_names_free), or NULL when the file holds none.
 * RN_ERR_BAD_FILE when the entry is not an array of num_classes such names. */
rn_status rn_weights_class_names(const char *path, int num_classes, char ***names);
void rn_class_names_free(char **names, int n);

/* Loads every state tensor from a file into an existing model; each must be present with the
 * model's shape. F32 tensors are taken as they are; F16, BF16 and F64 are converted. If norm is
 * not NULL it receives the file's normalization (or the model's default if absent). */
rn_status rn_model_load(rn_model *m, const char *path, rn_norm *norm);

/* Builds the model a weights file describes (its metadata names model and shapes) and loads it. */
rn_status rn_model_create_from_file(rn_model **out, const char *path, rn_norm *norm);

/* ------------------------------------------------------------------------------------------
 * ONNX export
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int opset;    /* ONNX operator set, 11 to 21; 0: 13 */
    int batch;    /* > 0: the input's batch dimension is fixed to this; 0: dynamic ("N") */
    bool fold_bn; /* fold each BN that follows a convolution into that convolution's weights and
                   * bias (w * alpha, b * alpha + shift); else BatchNormalization nodes */
} rn_onnx_opts;

/* Writes the model in evaluation mode as an ONNX file (atomically: nothing is left at path on
 * failure). The graph has one input "input" (N, C, H, W), normalized as norm says, and one
 * output "logits" (N, classes); ops: Conv, BatchNormalization, Relu, Add, Slice + Pad (the
 * option-A shortcut), MaxPool, GlobalAveragePool, Flatten, Gemm. The normalization, model name
 * and geometry are recorded in the model's metadata_props ("mean", "std", "normalization",
 * "model", ...), not as nodes. opts may be NULL for the defaults. RN_ERR_BAD_ARG for an
 * unsupported opset or batch, RN_ERR_NUMERIC for a non-finite weight, RN_ERR_IO when the file
 * cannot be written. */
rn_status rn_model_export_onnx(const rn_model *m, const char *path, const rn_norm *norm,
                               const rn_onnx_opts *opts);

/* ------------------------------------------------------------------------------------------
 * Training
 *
 * rn_train_run trains a model on a data set (see "Data sets") and keeps everything in a run
 * directory: config.json (every setting), metrics.jsonl (one JSON object per logged interval),
 * classes.txt, checkpoint.safetensors (weights, BN statistics, momentum buffers and the
 * trainer's position: what exact resume needs), last.safetensors and best.safetensors
 * (weights only; best by validation accuracy with a validation split, else the final weights:
 * the test set never chooses). Files are written atomically. With log_grads,
 * grads.jsonl gets one line per logged step, after that step's backward pass:
 *   {"step": S, "params": {"<tensor>": |grad|, ...}, "blocks": {"<block>": |dL/dinput|, ...}}
 * (L2 norms: of each PARAM tensor's gradient, and of the gradient reaching each block's input,
 * see rn_model_block_input_grad_norm), to show how gradients flow back through depth.
 *
 * Determinism: the data order of epoch e is a shuffle seeded by (seed, e) and the augmentation
 * of step s is drawn from a generator seeded by (seed, s), so a resumed run replays exactly the
 * batches an uninterrupted one sees; with the same backend and thread count its weights are
 * bit-identical.
 * ---------------------------------------------------------------------------------------- */

typedef enum {
    RN_SCHED_CONSTANT,
    RN_SCHED_MULTISTEP, /* lr *= gamma at each milestone */
    RN_SCHED_COSINE,    /* lr * (1 + cos(pi * t)) / 2 over the run */
    RN_SCHED_ONECYCLE,  /* PyTorch's OneCycleLR with its defaults: cosine from lr/25 up to lr
                         * over the first 30% of the steps, then down to lr/25/1e4 (the
                         * momentum stays fixed: cycle_momentum=False) */
} rn_sched_kind;

#define RN_MAX_MILESTONES 16

typedef struct {
    char model[32];        /* a name from rn_model_names() */
    char data[1024];       /* data set spec, e.g. "cifar10:DIR" */
    char out[1024];        /* run directory */
    char backend[32];      /* "" for the default */
    char init[1024];       /* weights file to start from ("" : fresh initialization) */
    int threads;           /* per process; 0: the host's cores / the processes on the host */
    int resize_h, resize_w;/* folder images resized to this; 0 keeps sizes */

    int batch;             /* 128 */
    int epochs;            /* used when iters is 0 */
    int64_t iters;         /* total optimizer steps; 0: epochs * steps per epoch */
    int val;               /* training images held out for validation (seeded) */
    uint64_t seed;

    float lr, momentum, wd, gamma; /* 0.1, 0.9, 5e-4, 0.1 */
    bool nesterov;
    bool wd_skip_bn;       /* no weight decay on BN weights/biases and biases */
    rn_sched_kind schedule;
    /* multistep milestones, in the unit below (resolved to steps when the run starts) */
    int64_t milestones[RN_MAX_MILESTONES];
    int n_milestones;
    enum { RN_UNIT_STEPS, RN_UNIT_EPOCHS, RN_UNIT_PERCENT } milestone_unit;
    int64_t warmup;        /* steps of warm-up */
    float warmup_factor;   /* 0: linear from 0 to lr; > 0: constant lr * factor during warm-up */
    float label_smoothing;
    bool augment;          /* pad 4 with zeros, random crop back, random horizontal flip */
    bool shuffle;          /* reshuffle the data every epoch (else: the data set's order) */

    int log_every;         /* steps between metrics.jsonl lines (and progress callbacks) */
    int eval_every;        /* evaluate the test set every N epochs (0: only at the end) */
    int64_t ckpt_every;    /* steps between checkpoints besides each epoch end (0: epochs only) */
    bool log_grads;        /* at each logged step, append gradient norms to grads.jsonl */
    char device[16];       /* "cpu" ("" too) or "cuda[:N]" (see rn_device_parse) */
    char precision[8];     /* on a GPU: "fp32", "tf32" or "bf16" ("" : tf32) */
    int processes;         /* processes that started the run (written to config.json by
                            * the trainer from its communicator; a resume may use another
                            * number) */

    /* Streamed sets (src/data/stream.h): shards:PATTERN always streams; folder:ROOT streams
     * when its decoded train and test images would take more than data_memory bytes, or when
     * size or preset is set, and is otherwise loaded into memory as before. A streamed set
     * trains on RandomResizedCrop(size) + flip (augment) or Resize + CenterCrop (no augment),
     * is evaluated on Resize(size * 256 / 224) + CenterCrop(size), and is normalized with
     * ImageNet's mean and std (preset "imagenet") or with statistics measured on a sample of
     * up to 500 training images (the evaluation transform, spread evenly over the set). Its
     * test set is ROOT/val (else ROOT/test) for folders, the pattern with "train" replaced by
     * "val" in its file name for shards, when that exists; `val` images are held out of the
     * training split as for sets in memory. */
    int64_t data_memory;   /* bytes; 0: a quarter of physical memory (the trainer writes the
                            * value it used to config.json, so a resume decides the same) */
    int size;              /* the crop S (0: 224 for -imagenet models, 32 for the others) */
    char preset[16];       /* "" or "imagenet" */
    bool skip_bad;         /* an image that does not decode is skipped with a warning (the
                            * progress callback's `warning`), instead of stopping the run */
    int data_threads;      /* decoding threads (0: 2) */
    bool sync_bn;          /* BatchNorm statistics over the global batch (every process's
                            * images; rn_exec_train_opts.bn_sum), not each process's share */
} rn_train_config;

/* Fills the defaults (above; augment on, schedule constant, log_every 50). */
void rn_train_config_defaults(rn_train_config *c);

/* Applies a named recipe. "he2015": the paper's CIFAR recipe: batch 128, lr 0.1, momentum 0.9,
 * wd 1e-4, 64k steps with lr / 10 at 32k and 48k (milestones 50% and 75%, so that they keep
 * their place in a run made shorter or longer), 45k/5k split, crop+flip; for resnet110 and
 * deeper, lr 0.01 for the first 400 steps. */
rn_status rn_train_config_recipe(rn_train_config *c, const char *recipe);

/* What a progress callback sees: once when the run is set up (started: data loaded, model
 * built, checkpoint read; step is where training begins, 0 or the resumed step; only step,
 * total_steps, epoch, steps_per_epoch, lr and elapsed_s are set), then after each logged
 * interval and evaluation. */
typedef struct {
    int64_t step, total_steps;
    int epoch;              /* 0-based epoch of the last step */
    int steps_per_epoch;
    double lr;
    double train_loss, train_acc; /* means over the interval */
    double images_per_s, elapsed_s, eta_s;
    bool has_val, has_test; /* set on evaluation reports */
    double val_loss, val_acc, test_loss, test_acc;
    bool final;             /* the last report of the run */
    bool started;           /* the first report, before any step of this call */
    bool streamed;          /* (with started) the training set is streamed from disk */
    const char *warning;    /* when set, the report is only this line to show (an image
                             * skipped by skip_bad); nothing else is set */
} rn_train_progress;

typedef void (*rn_train_callback)(const rn_train_progress *p, void *user);

/* Trains as configured (resume = false: a new run, the directory may exist but must not hold a
 * checkpoint, and is created only once data, model and settings are found good; resume = true:
 * c is the run's config as rn_train_config_load read it, checkpoint.safetensors of c->out is
 * read and the run continues where it stopped). When *stop becomes nonzero (set it from a signal handler),
 * the run writes a checkpoint after the current step and returns RN_ERR_INTERRUPTED. A NaN or
 * Inf loss stops the run with RN_ERR_NUMERIC naming the step; the last checkpoint stays. */
rn_status rn_train_run(const rn_train_config *c, bool resume, rn_train_callback cb, void *user,
                       volatile int *stop);

/* Reads RUN_DIR/config.json into c (for resume), each setting checked as
 * rn_train_config_check checks it; errors name the file and the field. */
rn_status rn_train_config_load(rn_train_config *c, const char *run_dir);

/* The accepted range of a numeric setting, by its config.json name ("lr", "batch",
 * "milestones", ...): [*lo, *hi], and whether it must be whole. This table is the one
 * statement of every range: config.json's reader, rn_train_config_check and the command
 * line's options all ask it. RN_ERR_BAD_ARG for a name that is not a numeric setting. */
rn_status rn_train_setting_range(const char *key, double *lo, double *hi, bool *integer);

/* Checks every numeric setting of c against its range (rn_train_setting_range);
 * RN_ERR_BAD_ARG naming the first setting out of range. rn_train_run calls it first. */
rn_status rn_train_config_check(const rn_train_config *c);

/* ------------------------------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int n, num_classes;
    double top1, top5;   /* accuracies in [0, 1]; top5 is 1 when there are <= 5 classes */
    double loss;         /* mean cross-entropy */
    int64_t *confusion;  /* (num_classes, num_classes): [true][predicted] counts */
} rn_eval_result;

/* rn_evaluate and rn_eval_result_free are declared after the data sets, below. */

/* ------------------------------------------------------------------------------------------
 * Images: one list of formats, read the same way by predict and by folder: data sets (decoded
 * by stb_image). A file is recognized by its first bytes, not its name; folder: data sets list
 * the files whose names end in one of the extensions (any case).
 * ---------------------------------------------------------------------------------------- */

#define RN_IMAGE_FORMATS "PNG, JPEG, BMP, PGM or PPM"
#define RN_IMAGE_EXTENSIONS ".png, .jpg, .jpeg, .bmp, .pgm or .ppm"

/* Whether a file name ends in one of RN_IMAGE_EXTENSIONS (any case). */
bool rn_image_name_ok(const char *name);

/* For a name ending in the extension of an image format that is not read (.webp, .gif, .tif,
 * .tiff, .heic, .heif, .avif; any case): the format's name, e.g. "WebP"; else NULL. folder:
 * data sets refuse such files rather than leave them out unnoticed. */
const char *rn_image_name_unread(const char *name);

/* Reads an image file's header: size and channels as rn_image_load(img, path, 0) would give
 * them (1: gray, 3: color). RN_ERR_BAD_FILE for a file not of RN_IMAGE_FORMATS (the message
 * names formats it recognizes, such as WebP) or whose header is unreadable. */
rn_status rn_image_info(const char *path, int *width, int *height, int *channels);

typedef struct {
    int width, height, channels; /* channels: 1 (gray) or 3 (RGB) */
    uint8_t *pixels;             /* (height, width, channels), row-major */
} rn_image;

/* Decodes an image file; `channels` 1 or 3 converts it (0 keeps the file's, gray or RGB). */
rn_status rn_image_load(rn_image *img, const char *path, int channels);
void rn_image_free(rn_image *img);

/* Turns an image into a normalized model input out (channels, height, width): when its size
 * differs, resizes it as the data sets' resize does (rn_data_opts: bit for bit PIL's
 * Image.resize((width, height), Image.BILINEAR), which is torchvision's Resize((height, width))
 * on PIL images), then applies (pixel/255 - mean)/std per channel. img->channels must equal
 * channels (load the image with that count). */
rn_status rn_image_to_input(float *out, const rn_image *img, int channels, int height,
                            int width, const rn_norm *norm);

/* ------------------------------------------------------------------------------------------
 * Data sets: whole labelled image sets held in memory as uint8 pixels.
 *
 * A spec string names a format and a folder:
 *   cifar10:DIR          data_batch_1..5.bin + test_batch.bin: records of 1 label byte and
 *                        3072 pixel bytes (3x32x32, planar); class names from batches.meta.txt
 *   cifar100:DIR         train.bin + test.bin: records of coarse label, fine label, 3072 bytes;
 *                        fine labels (100 classes), names from fine_label_names.txt
 *   cifar100-coarse:DIR  the same files with the coarse labels (20 classes), names from
 *                        coarse_label_names.txt
 *   mnist:DIR            train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
 *                        t10k-labels-idx1-ubyte, each plain or .gz (MNIST, Fashion-MNIST); class
 *                        names are Fashion-MNIST's (T-shirt/top ... Ankle boot) when the training
 *                        labels are Fashion-MNIST's own (recognized by content, not by path),
 *                        else the digits
 *   folder:ROOT          ROOT/train/CLASS/NAME.EXT and ROOT/test/CLASS/..., EXT one of
 *                        RN_IMAGE_EXTENSIONS (any case; other files are skipped):
 *                        the class of an image is its folder, never its file name; the class
 *                        index is the position of the folder name among ROOT/train's class
 *                        folders sorted by strcmp, and ROOT/test uses the same list
 *   packed:DIR           what rn_dataset_pack wrote (any shape; meta.json gives it)
 * Class names default to "0", "1", ... when the format carries none.
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    int n;              /* images */
    int c, h, w;        /* every image has this shape */
    int num_classes;
    uint8_t *images;    /* (n, c, h, w), planar like CIFAR's binary format */
    int32_t *labels;    /* (n) in [0, num_classes) */
    char **class_names; /* num_classes strings */
} rn_dataset; /* owns its arrays; rn_dataset_free releases them with free(), so a set built by
               * hand may hold malloc'd arrays and strdup'd names */

typedef struct {
    /* When both are > 0 every image (of any format) is resized to resize_h x resize_w:
     * bilinear, bit for bit as PIL's Image.resize(BILINEAR) (torchvision's Resize on PIL
     * images): a triangle filter sampled at pixel centers, widened when shrinking so it
     * averages instead of aliasing. An image already of that size is kept as it is.
     * Both 0 keep the sizes, and a folder's images must then all have one size. */
    int resize_h, resize_w;
} rn_data_opts;

/* Loads the train and test sets a spec names (see above). test may be NULL to skip the test
 * set. opts may be NULL (no resize). A folder's images are decoded in parallel (OpenMP) in a
 * fixed order; channels are 3 if any image of the folder is in color, else 1. On failure both
 * sets are left empty (all fields zero) and the message names the file and what was expected.
 * Free each set with rn_dataset_free. */
rn_status rn_dataset_load(rn_dataset *train, rn_dataset *test, const char *spec,
                          const rn_data_opts *opts);

/* rn_dataset_load, telling `progress` (unless NULL) how far decoding has come, as done of total
 * images: folder: sets call it from one thread while they decode (done rising, about once per
 * 64 images of that thread) and once with done == total; the other formats, which read a few
 * large files, do not call it. */
typedef void (*rn_data_progress)(int done, int total, void *user);
rn_status rn_dataset_load_progress(rn_dataset *train, rn_dataset *test, const char *spec,
                                   const rn_data_opts *opts, rn_data_progress progress,
                                   void *user);

/* Frees a set's arrays and zeroes it; a zeroed set may be freed again. */
void rn_dataset_free(rn_dataset *d);

/* Per-channel mean and standard deviation (population, divisor n) of pixel/255 over every
 * image of the set, for rn_norm-style input normalization. d->c must be <= 4; an empty set
 * gives mean 0, std 1. A std below 1/255 (one grey level; 0 when a channel's pixels are all
 * equal) is raised to 1/255, so that normalized inputs stay finite. */
rn_norm rn_dataset_norm(const rn_dataset *d);

/* Moves n_val images (0 <= n_val <= train->n), chosen by a Fisher-Yates shuffle seeded with
 * `seed`, from train into val (a new set, overwriting *val without freeing it; free it with
 * rn_dataset_free). Both keep the original relative order of their images, so the same seed
 * always gives the same split. val gets the same shape and class names as train. */
rn_status rn_dataset_split(rn_dataset *train, rn_dataset *val, int n_val, uint64_t seed);

/* Writes both sets to dir (created if missing) as CIFAR-10-style binaries: data_batch_1..5.bin
 * (train in 5 nearly equal batches) and test_batch.bin, each a run of records of 1 label byte +
 * c*h*w pixel bytes in a shuffled order (a fixed seed per set, so the same set always gives the
 * same files, and each batch is a sample of every class as CIFAR's own batches are), plus batches.meta.txt (class names, one per line) and
 * meta.json (shape, classes and counts). Each file is written atomically; meta.json last. Load
 * the result with "packed:DIR" (or "cifar10:DIR" when the images are 3x32x32). Labels above
 * 255 cannot be stored and give RN_ERR_BAD_ARG. */
rn_status rn_dataset_pack(const rn_dataset *train, const rn_dataset *test, const char *dir);

/* Evaluates a model (eval mode) on every image of a set, normalized with norm, in batches of
 * up to `batch` (the model is reserved for it). Fills *r (free with rn_eval_result_free). */
rn_status rn_evaluate(rn_model *m, rn_ctx *ctx, const rn_dataset *d, const rn_norm *norm,
                      int batch, rn_eval_result *r);
void rn_eval_result_free(rn_eval_result *r);

/* ------------------------------------------------------------------------------------------
 * Executors: one model running on one device.
 *
 * An executor runs a model's training step, evaluation and inference on the CPU (through a host
 * kernel table, see rn_ctx_create) or on a GPU (builds made with `make CUDA=1`). The training
 * loop, evaluation, benchmarks and prediction call only these functions, the same on every
 * device; what differs (op by op on the host, one captured CUDA graph per step on a GPU) stays
 * behind them.
 *
 * The host model (rn_model) is the reference copy of the state for files. A device may keep its
 * own copy while it trains: rn_exec_sync_to_host brings weights, BN statistics and the momentum
 * block (rn_exec_momentum) into the host model, and rn_exec_sync_to_device sends them back
 * after they were changed on the host (a checkpoint was loaded). On the CPU both do nothing.
 * ---------------------------------------------------------------------------------------- */

typedef enum {
    RN_PRECISION_FP32, /* fp32 everywhere (no tensor-core rounding) */
    RN_PRECISION_TF32, /* fp32 storage, convolutions and matrix products in TF32 */
    RN_PRECISION_BF16, /* bf16 activations and convolutions; fp32 master weights, BN
                        * statistics, classifier and loss */
} rn_precision;

/* "fp32", "tf32", "bf16" ("" or NULL: tf32). RN_ERR_BAD_ARG for anything else. */
rn_status rn_precision_parse(const char *s, rn_precision *p);
const char *rn_precision_name(rn_precision p);

/* "cpu" (or "" or NULL): *cuda_index = -1; "cuda": 0; "cuda:N": N. RN_ERR_BAD_ARG otherwise. */
rn_status rn_device_parse(const char *spec, int *cuda_index);

/* Whether this build has the CUDA backend. */
bool rn_cuda_built(void);

typedef struct rn_exec rn_exec;

/* Where and how an executor runs. Zeroed fields take the defaults. */
typedef struct {
    const char *device;    /* "cpu" (also NULL or "") or "cuda[:N]" (see rn_device_parse) */
    const char *backend;   /* the host's kernels: "cpu", "cpu-winograd", "reference" (NULL: the
                            * default, see rn_ctx_create); a GPU has its own and ignores it */
    int threads;           /* host threads (0: every core) */
    const char *precision; /* "fp32", "tf32", "bf16"; NULL or "": fp32 on the CPU, tf32 on a
                            * GPU. On the CPU bf16 runs the cpu-bf16 kernels (bf16 convolutions
                            * and classifier, fp32 accumulation, weights, BN and loss) and tf32
                            * is refused */
    bool inference_only;   /* forward passes and evaluation only (no training step): on the
                            * host, a workspace whose activations share memory (see
                            * rn_model_reserve_inference); a GPU ignores it */
} rn_exec_opts;

/* Opens an executor for model m (which must outlive it), reserved for batches of up to
 * max_batch images. The device takes the model's current parameters and buffers.
 * RN_ERR_DEVICE when there is no such GPU, no driver, too little memory, a model the GPU path
 * does not support, or a build without CUDA. */
rn_status rn_exec_open(rn_exec **out, rn_model *m, const rn_exec_opts *o, int max_batch);
void rn_exec_close(rn_exec *e);
/* What runs: "cpu (backend cpu, 2 threads)", "NVIDIA H100 80GB HBM3 (cuda:0, sm_90, ...)". */
const char *rn_exec_describe(const rn_exec *e);
int rn_exec_max_batch(const rn_exec *e);

/* One forward pass of n <= max_batch images x (n, C, H, W) in host memory; logits (n, K) are
 * written to host memory. RN_MODE_TRAIN needs n == max_batch and updates the BN statistics. */
rn_status rn_exec_forward(rn_exec *e, const float *x, int n, rn_mode mode, float *logits);

/* Evaluates the model (eval mode) on every image of a set, normalized with norm, in batches of
 * max_batch, as rn_evaluate does. Fills *r (free with rn_eval_result_free). A GPU keeps the set
 * in its memory after the first call (up to two sets). */
rn_status rn_exec_evaluate(rn_exec *e, const rn_dataset *d, const rn_norm *norm,
                           rn_eval_result *r);
/* Has rn_exec_evaluate (and rn_exec_evaluate_comm) call progress(done, total, user) as it goes:
 * on the host after each batch, done images of the total this process evaluates; on a GPU,
 * which queues every batch at once, when it ends. progress NULL: no calls (the default). The
 * library prints nothing; the caller shows what it likes. */
void rn_exec_set_eval_progress(rn_exec *e, rn_data_progress progress, void *user);

/* The settings of a training run that the step itself needs. */
typedef struct {
    int batch;                  /* == the executor's max_batch: this process's images */
    int global_batch;           /* the step's batch over every process (0: batch) */
    int first;                  /* this process trains on images [first, first + batch) of
                                 * each global batch, with those positions' draws */
    float momentum, wd, label_smoothing;
    bool nesterov, wd_skip_bn, augment;
    uint64_t seed;              /* the augmentation seed (src/core/draws.h) */
    bool block_norms;           /* compute the block input gradient norms every step */
    /* Synchronized BatchNorm: when set, each training-mode BN takes its batch statistics over
     * the global batch: bn_sum(bn_sum_user, buf, n) adds n doubles in place over the
     * processes (each calls it at the same points), for the per-channel sums of the forward
     * pass (x, then its squared deviations) and of the backward pass (dy and dy * xhat), so
     * every process normalizes with the same statistics and keeps the same running ones
     * (rn_comm_sum_f64_hook adds over a communicator). Host executor only (a GPU refuses). */
    rn_status (*bn_sum)(void *user, double *buf, size_t n);
    void *bn_sum_user;
} rn_exec_train_opts;

/* Called by each training step once the gradients are final and before the update: grads is
 * the one contiguous gradient block (n floats, rn_model_grads' layout on the host; in device
 * memory, the GPU's layout, when on_device), to be combined in place (for instance averaged
 * across processes). A failing status stops the step. */
typedef rn_status (*rn_grad_hook)(void *user, float *grads, size_t n, bool on_device);

/* Sets (or with NULL clears) the gradient hook; call it before rn_exec_train_init. */
void rn_exec_set_grad_hook(rn_exec *e, rn_grad_hook hook, void *user);

/* Called during a training step's backward pass each time more of the gradient block is
 * final: grads[from, n) will not change again before the update (from decreases from call to
 * call within a step, and 0 means the whole block). A hook may start combining that part
 * (without waiting for it) and must be done with it by the gradient hook, which every step
 * still calls. on_device as for rn_grad_hook. The host executor calls it after each node whose
 * parameters then have their final gradients; an executor may call it less often, or never. */
typedef rn_status (*rn_grads_ready_hook)(void *user, float *grads, size_t n, size_t from,
                                         bool on_device);

/* Sets (or with NULL clears) the gradients-ready hook; call it before rn_exec_train_init. */
void rn_exec_set_grads_ready_hook(rn_exec *e, rn_grads_ready_hook hook, void *user);

/* Prepares training on a set: the learning rate of every step (lrs[0..n_steps)), the options,
 * and the next step to run (`step`, 0 or a resumed step). The set must outlive the training.
 * A set with images NULL gives only its shape: its batches come from rn_exec_train_step_batch. */
rn_status rn_exec_train_init(rn_exec *e, const rn_dataset *train, const rn_norm *norm,
                             const rn_exec_train_opts *o, const float *lrs, int64_t n_steps,
                             int64_t step);
/* The data order of the current epoch (train->n indices); call it before an epoch's first
 * step. Step s trains on order[(s % steps_per_epoch) * G + first ...] (batch images), G the
 * global batch, steps_per_epoch = n / G, with the augmentation draws of step s. */
rn_status rn_exec_train_set_order(rn_exec *e, const int *order);
/* One training step: the batch, forward, loss, backward, the gradient hook, the SGD update.
 * A device may return before it has finished; rn_exec_train_metrics waits. RN_ERR_NUMERIC when
 * the loss is not finite (the host notices at the step, a GPU at the next metrics). */
rn_status rn_exec_train_step(rn_exec *e);
/* One training step on a batch the caller assembled: x (batch, C, H, W), already normalized,
 * and labels (batch); otherwise as rn_exec_train_step (the next step's learning rate, the hook,
 * the update). For streamed sets (src/data/stream.h), whose batches are decoded outside the
 * executor; rn_exec_train_init then takes a set that describes the shape alone (images NULL).
 * The host executor only, for now: a GPU executor returns RN_ERR_DEVICE. */
rn_status rn_exec_train_step_batch(rn_exec *e, const float *x, const int *labels);
/* Waits for the queued steps; the sum of their mean losses and the number of correctly
 * classified training images since the last call (which resets both). */
rn_status rn_exec_train_metrics(rn_exec *e, double *loss_sum, int64_t *correct);

/* The momentum block (as many floats as parameters, rn_model_params' layout), current after
 * rn_exec_sync_to_host; write it, then rn_exec_sync_to_device, to restore a checkpoint. */
float *rn_exec_momentum(rn_exec *e, size_t *count);
rn_status rn_exec_sync_to_host(rn_exec *e);
rn_status rn_exec_sync_to_device(rn_exec *e);
/* The last step's parameter gradients into rn_model_grads and its block input gradient norms
 * into the host model (rn_model_block_input_grad_norm). */
rn_status rn_exec_grads_to_host(rn_exec *e);

/* The device's measured peak in GFLOP/s for what the op counts measure (on the CPU: the fp32
 * FMA peak of the executor's threads, measured on the first call, about a tenth of a second),
 * with *what naming it ("avx512 FMA, 2 threads"); 0 where the device has no such figure. */
double rn_exec_peak_gflops(rn_exec *e, const char **what);

/* Per-op timing: rn_exec_profile(e, true) before the steps to time, then
 * rn_exec_profile_print writes the time per op kind, forward and backward (on a GPU it times
 * one more training step launched op by op). */
void rn_exec_profile(rn_exec *e, bool on);
rn_status rn_exec_profile_print(rn_exec *e, FILE *f);

/* ------------------------------------------------------------------------------------------
 * Processes: data-parallel training across processes (and machines) with a communicator.
 *
 * A communicator joins the processes that train one model: each has a rank in [0, size).
 * Builds made with `make MPI=1` join the processes mpirun (or slurm's srun) started; other
 * builds run alone and refuse, with RN_ERR_DEVICE, to start under a launcher with more than
 * one process (rather than train N separate copies into one directory).
 * ---------------------------------------------------------------------------------------- */

typedef struct rn_comm rn_comm;

/* Joins the launcher's processes (MPI builds: MPI_Init; otherwise one process alone). Close
 * with rn_comm_close, which every process must reach. */
rn_status rn_comm_open(rn_comm **out);
void rn_comm_close(rn_comm *c);
/* Ends every process of the job at once (MPI_Abort) with exit status `code`: for an error
 * that the other processes cannot know of (they would wait in a collective forever). */
void rn_comm_abort(rn_comm *c, int code);
int rn_comm_rank(const rn_comm *c);
int rn_comm_size(const rn_comm *c);
int rn_comm_local_size(const rn_comm *c); /* processes on this host */
const char *rn_comm_name(const rn_comm *c); /* "mpi" or "single" */

/* Collectives: every process calls them in the same order. The sums reduce in an order that
 * depends only on the number of processes, and every process receives the same bits. */
rn_status rn_comm_sum_f32(rn_comm *c, float *buf, size_t n);
rn_status rn_comm_sum_f64(rn_comm *c, double *buf, size_t n);
rn_status rn_comm_sum_i64(rn_comm *c, int64_t *buf, size_t n);
rn_status rn_comm_broadcast(rn_comm *c, void *buf, size_t bytes, int root);
rn_status rn_comm_barrier(rn_comm *c);
/* rn_comm_sum_f64 with the communicator as a void pointer (rn_exec_train_opts.bn_sum). */
rn_status rn_comm_sum_f64_hook(void *comm, double *buf, size_t n);

/* Every process's status, agreed (a collective): RN_OK when all succeeded; otherwise every
 * process returns the status and message of the lowest rank that failed, so that all stop
 * together instead of one waiting in a collective for another that gave up. */
rn_status rn_comm_agree(rn_comm *c, rn_status s);

/* rn_exec_evaluate split over the processes of comm (NULL or one process: rn_exec_evaluate):
 * rank r evaluates images [r n / N, (r+1) n / N) with its own executor, and the counts
 * (correct, top-5, the confusion matrix) and loss sums are added up, so the accuracies are
 * exactly one process's, the loss up to the order of its summation. Every process must hold
 * the same weights and statistics. */
rn_status rn_exec_evaluate_comm(rn_exec *e, rn_comm *c, const rn_dataset *d,
                                const rn_norm *norm, rn_eval_result *r);

/* The average of the gradients over the processes, set up as an executor's two gradient
 * hooks (rn_exec_set_grads_ready_hook, rn_exec_set_grad_hook). */
typedef struct rn_grad_avg rn_grad_avg;

/* Makes e's training steps average their gradients over the processes of c before each
 * update (for one process there is nothing to do: *out stays NULL). The gradient block is cut,
 * from its end, into buckets of bucket_kb kilobytes; each bucket's sum starts (without
 * waiting) as soon as the backward pass has made its gradients final, so the communication
 * overlaps the rest of the pass, and the gradient hook waits for them all and scales by 1/N.
 * The buckets and their order are the same every step and on every process. bucket_kb 0: one
 * sum of the whole block after the backward pass; < 0: RN_BUCKET_KB from the environment,
 * else 1024. For 2 processes every choice gives the same bits; for more, the order of the
 * additions may depend on the bucket size (a run is deterministic for a fixed N and size).
 * Host memory only: a step with the block in device memory fails with RN_ERR_DEVICE. Close it
 * after e's last step. */
rn_status rn_grad_avg_open(rn_grad_avg **out, rn_comm *c, rn_exec *e, long bucket_kb);
void rn_grad_avg_close(rn_grad_avg *g);

/* rn_train_run with the processes of comm training one model (comm NULL: this process
 * alone). c->batch stays the global batch: rank r trains on images [r * B/N, (r+1) * B/N) of
 * each global batch, with the augmentation draws of their global positions, so the processes
 * together see exactly the images one process sees; B must be divisible by N. Gradients are
 * averaged over the processes before each update (rn_grad_avg_open, RN_BUCKET_KB buckets
 * overlapping the backward pass). With c->sync_bn BN takes the global batch's statistics, and
 * every rank's running statistics are the same. Rank 0 alone
 * writes the run directory (config.json records "processes"), and its BN running statistics
 * are the model's: they are broadcast to every rank before each evaluation. Logged losses and
 * accuracies are over the global batch; evaluation is split over the ranks and its counts
 * summed. A stop requested on any rank is agreed at the next step boundary. Every process
 * gets the same status, except after an error that only one process saw (a failure after
 * the progress callback's `started` report), when the caller should rn_comm_abort. */
rn_status rn_train_run_comm(const rn_train_config *c, rn_comm *comm, bool resume,
                            rn_train_callback cb, void *user, volatile int *stop);

#ifdef __cplusplus
}
#endif

#endif /* RESNET_H */
