/*
 * stream.c — the streamed data sets of stream.h: a fixed pool of decoding threads fills a ring
 * of batch slots. The consumer asks for (epoch, step); the slots hold that batch and the ones
 * after it, and the threads take images one at a time from the oldest unfinished slot. Each
 * image's result depends only on (seed, epoch, image), never on the thread that made it.
 */
#include "data/stream.h"
#include "core/draws.h"
#include "data/decode.h"
#include "data/source.h"

#include <pthread.h>
#include <string.h>

typedef enum { SLOT_FREE, SLOT_ACTIVE, SLOT_READY, SLOT_DISCARDED } slot_state;

/* An epoch's order: positions -> stream images, shared by the slots of that epoch. */
typedef struct {
    int epoch; /* -1: unused */
    int refs;
    int *perm; // (n)
} order;

typedef struct {
    slot_state state;
    int64_t seq;        /* scheduling order: threads serve the lowest first */
    int epoch, step, n; /* n images, positions step * batch + k */
    int next;           /* the next image to hand out */
    int busy, finished; /* images being made, and made */
    order *ord;
    float *x;           // (batch, 3, S, S)
    int32_t *labels;    // (batch)
    rn_status *status;  // (batch) per image
    char **error;       // (batch) the failure of image k, or NULL
    char **skipped;     // (batch) lines naming the images replaced at k, or NULL
} slot;

typedef struct {
    rn_stream *s;
    pthread_t thread;
    rn_decoder dec;
    rn_transform_scratch scratch;
    uint8_t *file;
    size_t file_cap;
} worker;

struct rn_stream {
    rn_source src;
    rn_stream_opts o;
    rn_normalizer norm;
    int n;              /* images of the stream */
    int *ids;           // (n) stream image -> source image
    int steps, resize;
    int n_slots, n_orders;
    slot *slots;
    order *orders;
    int64_t seq;
    int next_epoch, next_step; /* the batch the ring schedules next */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    bool stop;
    int n_workers;
    worker *workers;
};

rn_stream_opts rn_stream_opts_default(void) {
    rn_stream_opts o = {
        .split = "train", .transform = RN_TRANSFORM_TRAIN, .size = 224, .batch = 64,
        .shuffle = true, .drop_last = true, .threads = 2, .prefetch = 2,
        .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f},
        .scale = {0.08, 1.0}, .ratio = {3.0 / 4.0, 4.0 / 3.0}, .dct_scaling = true,
    };
    return o;
}

/* ---- one image ----------------------------------------------------------------------- */

/* The eval transform of one encoded image into out (3, S, S): full-size decode, Resize(resize),
 * CenterCrop(S), normalization. */
static rn_status eval_image(float *out, rn_decoder *dec, rn_transform_scratch *scratch,
                            const uint8_t *data, size_t bytes, const char *name, int S, int resize,
                            const rn_normalizer *norm) {
    rn_status st = rn_decoder_run(dec, data, bytes, name, 0, 0, 0);
    if (st) return st;
    int ih = dec->h, iw = dec->w, rh, rw, oy, ox;
    rn_eval_geometry(ih, iw, resize, S, &rh, &rw, &oy, &ox);
    rn_crop_box all = {0, 0, ih, iw, 0};
    return rn_transform_region(out, dec->pixels, ih, iw, all, rh, rw, oy, ox, S, S, norm,
                               scratch);
}

/* Reads, decodes and transforms source image id into out (3, S, S). */
static rn_status make_image(rn_stream *s, worker *w, int id, int epoch, float *out) {
    const rn_stream_opts *o = &s->o;
    char name[4096];
    rn_source_name(&s->src, id, name, sizeof name);
    size_t bytes;
    rn_status st = rn_source_read(&s->src, id, &w->file, &w->file_cap, &bytes);
    if (st) return st;
    int S = o->size;
    if (o->transform == RN_TRANSFORM_EVAL)
        return eval_image(out, &w->dec, &w->scratch, w->file, bytes, name, S, s->resize, &s->norm);
    int fw, fh;
    if ((st = rn_decoder_peek(&w->dec, w->file, bytes, name, &fw, &fh))) return st;
    rn_crop_box b = rn_draw_resized_crop(o->seed, epoch, id, fw, fh, o->scale[0], o->scale[1],
                                         o->ratio[0], o->ratio[1]);
    if ((st = rn_decoder_run(&w->dec, w->file, bytes, name, b.w, b.h, o->dct_scaling ? S : 0)))
        return st;
    int ih = w->dec.h, iw = w->dec.w;
    if (ih != fh || iw != fw) { /* shrunk in the DCT domain: the same box, scaled */
        double fy = (double)ih / fh, fx = (double)iw / fw;
        b.top = RN_MIN((int)(b.top * fy), ih - 1);
        b.left = RN_MIN((int)(b.left * fx), iw - 1);
        b.h = RN_MAX(1, RN_MIN((int)(b.h * fy + 0.5), ih - b.top));
        b.w = RN_MAX(1, RN_MIN((int)(b.w * fx + 0.5), iw - b.left));
    }
    return rn_transform_region(out, w->dec.pixels, ih, iw, b, S, S, 0, 0, S, S, &s->norm,
                               &w->scratch);
}

/* Appends "line" to *text (lines separated by '\n'); false when out of memory. */
static bool append_line(char **text, const char *line) {
    size_t old = *text ? strlen(*text) + 1 : 0, add = strlen(line) + 1;
    char *t = realloc(*text, old + add);
    if (!t) return false;
    if (old) t[old - 1] = '\n';
    memcpy(t + old, line, add);
    *text = t;
    return true;
}

/* Image k of slot sl: position p of the epoch, or with skip_bad the first image from p on
 * that works. Runs without the lock: it touches only row k of the slot. */
static void fill_image(rn_stream *s, worker *w, slot *sl, int k) {
    size_t plane = (size_t)3 * s->o.size * s->o.size;
    int64_t p = (int64_t)sl->step * s->o.batch + k;
    for (int tries = 0; tries < s->n; tries++) {
        int id = s->ids[sl->ord->perm[(p + tries) % s->n]];
        rn_status st = make_image(s, w, id, sl->epoch, sl->x + (size_t)k * plane);
        if (!st) {
            sl->labels[k] = s->src.label[id];
            return;
        }
        if (!s->o.skip_bad || st == RN_ERR_NOMEM) {
            sl->status[k] = st;
            sl->error[k] = strdup(rn_error_message());
            return;
        }
        char line[1200];
        snprintf(line, sizeof line, "skipped %s", rn_error_message());
        if (!append_line(&sl->skipped[k], line)) {
            sl->status[k] = RN_ERR_NOMEM;
            return;
        }
    }
    sl->status[k] = RN_ERR_BAD_FILE;
    sl->error[k] = strdup("no image of the set can be decoded");
}

/* ---- the ring ----------------------------------------------------------------------- */

static void release_slot(rn_stream *s, slot *sl) {
    if (sl->ord) sl->ord->refs--;
    sl->ord = NULL;
    for (int k = 0; k < s->o.batch; k++) {
        free(sl->error[k]);
        free(sl->skipped[k]);
        sl->error[k] = sl->skipped[k] = NULL;
        sl->status[k] = RN_OK;
    }
    sl->state = SLOT_FREE;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    rn_stream *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        slot *sl = NULL;
        for (int i = 0; i < s->n_slots; i++) {
            slot *c = &s->slots[i];
            if (c->state == SLOT_ACTIVE && c->next < c->n && (!sl || c->seq < sl->seq)) sl = c;
        }
        if (s->stop) break;
        if (!sl) {
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        int k = sl->next++;
        sl->busy++;
        pthread_mutex_unlock(&s->mu);
        fill_image(s, w, sl, k);
        pthread_mutex_lock(&s->mu);
        sl->busy--;
        sl->finished++;
        if (sl->state == SLOT_DISCARDED && sl->busy == 0) release_slot(s, sl);
        else if (sl->state == SLOT_ACTIVE && sl->finished == sl->n) sl->state = SLOT_READY;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The order of an epoch, computed once and shared while slots use it (under the lock). */
static order *get_order(rn_stream *s, int epoch) {
    int key = s->o.shuffle ? epoch : 0;
    order *spare = NULL;
    for (int i = 0; i < s->n_orders; i++) {
        if (s->orders[i].epoch == key) {
            s->orders[i].refs++;
            return &s->orders[i];
        }
        if (s->orders[i].refs == 0 && !spare) spare = &s->orders[i];
    }
    /* n_orders = n_slots + 1, each slot holds one: a spare always exists. */
    rn_draw_epoch_order(spare->perm, s->n, s->o.seed, epoch, s->o.shuffle);
    spare->epoch = key;
    spare->refs = 1;
    return spare;
}

/* Puts batch (epoch, step) into a free slot, if there is one (under the lock). */
static bool schedule(rn_stream *s, int epoch, int step) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_FREE) continue;
        sl->epoch = epoch;
        sl->step = step;
        sl->n = RN_MIN(s->o.batch, s->n - step * s->o.batch);
        sl->next = sl->busy = sl->finished = 0;
        sl->seq = s->seq++;
        sl->ord = get_order(s, epoch);
        sl->state = SLOT_ACTIVE;
        return true;
    }
    return false;
}

/* Fills free slots with the batches after the last one scheduled (under the lock). */
static void schedule_ahead(rn_stream *s) {
    while (schedule(s, s->next_epoch, s->next_step)) {
        if (++s->next_step == s->steps) {
            s->next_step = 0;
            s->next_epoch++;
        }
    }
    pthread_cond_broadcast(&s->work);
}

static slot *find_slot(rn_stream *s, int epoch, int step) {
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if ((sl->state == SLOT_ACTIVE || sl->state == SLOT_READY) && sl->epoch == epoch &&
            sl->step == step)
            return sl;
    }
    return NULL;
}

rn_status rn_stream_batch(rn_stream *s, int epoch, int step, float *x, int32_t *labels,
                          int *count) {
    *count = 0;
    if (epoch < 0 || step < 0 || step >= s->steps)
        return rn_fail(RN_ERR_BAD_ARG, "batch %d of epoch %d: expected epoch >= 0 and a batch in "
                       "0..%d", step, epoch, s->steps - 1);
    pthread_mutex_lock(&s->mu);
    slot *sl = find_slot(s, epoch, step);
    if (!sl) { /* a jump: drop the work ahead and start over from here */
        for (int i = 0; i < s->n_slots; i++) {
            slot *c = &s->slots[i];
            if (c->state == SLOT_READY || (c->state == SLOT_ACTIVE && c->busy == 0)) {
                release_slot(s, c);
            } else if (c->state == SLOT_ACTIVE) {
                c->state = SLOT_DISCARDED;
                c->next = c->n;
            }
        }
        s->next_epoch = epoch;
        s->next_step = step;
        while (!(sl = find_slot(s, epoch, step))) {
            schedule_ahead(s);
            if (!find_slot(s, epoch, step)) pthread_cond_wait(&s->done, &s->mu);
        }
    }
    schedule_ahead(s);
    while (sl->state != SLOT_READY) pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);

    size_t plane = (size_t)3 * s->o.size * s->o.size;
    rn_status st = RN_OK;
    for (int k = 0; k < sl->n; k++) {
        if (sl->skipped[k] && s->o.on_skip) {
            for (char *line = sl->skipped[k]; line;) {
                char *nl = strchr(line, '\n');
                if (nl) *nl = 0;
                s->o.on_skip(line, s->o.user);
                line = nl ? nl + 1 : NULL;
            }
        }
        if (sl->status[k] && !st)
            st = rn_fail(sl->status[k], "%s", sl->error[k] ? sl->error[k] : "out of memory");
    }
    if (!st) {
        memcpy(x, sl->x, (size_t)sl->n * plane * sizeof *x);
        memcpy(labels, sl->labels, (size_t)sl->n * sizeof *labels);
        *count = sl->n;
    }
    pthread_mutex_lock(&s->mu);
    release_slot(s, sl);
    schedule_ahead(s);
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- open and close -------------------------------------------------------------------- */

static rn_status check_opts(const rn_stream_opts *o) {
    if (o->size < 1 || o->size > 4096)
        return rn_fail(RN_ERR_BAD_ARG, "stream: size %d (expected 1..4096)", o->size);
    if (o->batch < 1) return rn_fail(RN_ERR_BAD_ARG, "stream: batch %d (expected >= 1)", o->batch);
    if (o->threads < 1 || o->threads > 1024)
        return rn_fail(RN_ERR_BAD_ARG, "stream: %d threads (expected 1..1024)", o->threads);
    if (o->prefetch < 1 || o->prefetch > 64)
        return rn_fail(RN_ERR_BAD_ARG, "stream: prefetch %d (expected 1..64)", o->prefetch);
    if (o->resize && o->resize < o->size)
        return rn_fail(RN_ERR_BAD_ARG, "stream: resize %d is smaller than the crop %d", o->resize,
                       o->size);
    if (!(0 < o->scale[0] && o->scale[0] <= o->scale[1] && o->scale[1] <= 1 &&
          0 < o->ratio[0] && o->ratio[0] <= o->ratio[1]))
        return rn_fail(RN_ERR_BAD_ARG, "stream: crop scale (%g, %g) and ratio (%g, %g) (expected "
                       "0 < scale0 <= scale1 <= 1, 0 < ratio0 <= ratio1)", o->scale[0],
                       o->scale[1], o->ratio[0], o->ratio[1]);
    for (int c = 0; c < 3; c++)
        if (!(o->std[c] > 0))
            return rn_fail(RN_ERR_BAD_ARG, "stream: std[%d] = %g (expected > 0)", c, o->std[c]);
    return RN_OK;
}

static rn_status alloc_ring(rn_stream *s) {
    int B = s->o.batch;
    size_t plane = (size_t)3 * s->o.size * s->o.size;
    s->n_slots = s->o.prefetch + 1;
    s->n_orders = s->n_slots + 1;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->orders = calloc((size_t)s->n_orders, sizeof *s->orders);
    if (!s->slots || !s->orders) return rn_fail(RN_ERR_NOMEM, "stream: cannot allocate the ring");
    for (int i = 0; i < s->n_orders; i++) {
        s->orders[i].epoch = -1;
        if (!(s->orders[i].perm = malloc((size_t)s->n * sizeof(int))))
            return rn_fail(RN_ERR_NOMEM, "stream: cannot allocate the epoch order");
    }
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->x = rn_alloc((size_t)B * plane * sizeof(float));
        sl->labels = calloc((size_t)B, sizeof *sl->labels);
        sl->status = calloc((size_t)B, sizeof *sl->status);
        sl->error = calloc((size_t)B, sizeof *sl->error);
        sl->skipped = calloc((size_t)B, sizeof *sl->skipped);
        if (!sl->x || !sl->labels || !sl->status || !sl->error || !sl->skipped)
            return rn_fail(RN_ERR_NOMEM, "stream: cannot allocate %d batches of %d images of "
                           "3x%dx%d", s->n_slots, B, s->o.size, s->o.size);
    }
    return RN_OK;
}

rn_status rn_stream_open(rn_stream **out, const char *spec, const rn_stream_opts *opts) {
    *out = NULL;
    rn_status st = check_opts(opts);
    if (st) return st;
    rn_stream *s = calloc(1, sizeof *s);
    if (!s) return rn_fail(RN_ERR_NOMEM, "stream: cannot allocate");
    s->o = *opts;
    s->o.subset = NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    if (!strncmp(spec, "folder:", 7))
        st = rn_source_open_folder(&s->src, spec + 7, opts->split ? opts->split : "train");
    else if (!strncmp(spec, "shards:", 7))
        st = rn_source_open_shards(&s->src, spec + 7, opts->num_classes);
    else
        st = rn_fail(RN_ERR_BAD_ARG, "'%s': not a streamed data set (expected folder:ROOT or "
                     "shards:PATTERN)", spec);
    if (st) goto fail;
    s->n = opts->subset ? opts->subset_n : s->src.n;
    if (!(s->ids = malloc((size_t)RN_MAX(s->n, 1) * sizeof *s->ids))) {
        st = rn_fail(RN_ERR_NOMEM, "stream: cannot allocate the image list");
        goto fail;
    }
    for (int i = 0; i < s->n; i++) {
        s->ids[i] = opts->subset ? opts->subset[i] : i;
        if (s->ids[i] < 0 || s->ids[i] >= s->src.n) {
            st = rn_fail(RN_ERR_BAD_ARG, "%s: subset image %d is %d, the source has %d images",
                         spec, i, s->ids[i], s->src.n);
            goto fail;
        }
    }
    s->steps = opts->drop_last ? s->n / opts->batch : (s->n + opts->batch - 1) / opts->batch;
    if (s->steps == 0) {
        st = rn_fail(RN_ERR_BAD_ARG, "%s: %d images, fewer than one batch of %d", spec, s->n,
                     opts->batch);
        goto fail;
    }
    s->resize = opts->resize ? opts->resize : opts->size * 256 / 224;
    rn_normalizer_init(&s->norm, opts->mean, opts->std);
    if ((st = alloc_ring(s))) goto fail;
    s->workers = calloc((size_t)opts->threads, sizeof *s->workers);
    if (!s->workers) {
        st = rn_fail(RN_ERR_NOMEM, "stream: cannot allocate %d threads", opts->threads);
        goto fail;
    }
    for (int t = 0; t < opts->threads; t++) {
        worker *w = &s->workers[t];
        w->s = s;
        if ((st = rn_decoder_init(&w->dec))) goto fail;
        if (pthread_create(&w->thread, NULL, worker_main, w)) {
            rn_decoder_free(&w->dec);
            st = rn_fail(RN_ERR_NOMEM, "stream: cannot start decoding thread %d", t);
            goto fail;
        }
        s->n_workers = t + 1;
    }
    *out = s;
    return RN_OK;
fail:
    rn_stream_close(s);
    return st;
}

void rn_stream_close(rn_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int t = 0; t < s->n_workers; t++) {
        pthread_join(s->workers[t].thread, NULL);
        rn_decoder_free(&s->workers[t].dec);
        rn_transform_scratch_free(&s->workers[t].scratch);
        free(s->workers[t].file);
    }
    free(s->workers);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->error && sl->skipped) release_slot(s, sl);
        rn_free(sl->x);
        free(sl->labels);
        free(sl->status);
        free(sl->error);
        free(sl->skipped);
    }
    free(s->slots);
    for (int i = 0; s->orders && i < s->n_orders; i++) free(s->orders[i].perm);
    free(s->orders);
    free(s->ids);
    rn_source_free(&s->src);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    free(s);
}

int rn_stream_len(const rn_stream *s) { return s->n; }
int rn_stream_num_classes(const rn_stream *s) { return s->src.num_classes; }
char *const *rn_stream_class_names(const rn_stream *s) { return s->src.class_names; }
int rn_stream_steps(const rn_stream *s) { return s->steps; }

int rn_stream_label(const rn_stream *s, int i, char *buf, size_t size) {
    int id = s->ids[i];
    if (buf) rn_source_name(&s->src, id, buf, size);
    return s->src.label[id];
}

rn_status rn_image_eval_input(float *out, const char *path, int size, int resize,
                              const float mean[3], const float std[3]) {
    if (size < 1 || size > 4096 || (resize && resize < size))
        return rn_fail(RN_ERR_BAD_ARG, "%s: crop %d after a resize to %d (expected 1 <= crop <= "
                       "resize)", path, size, resize);
    void *data;
    size_t bytes;
    rn_status st = rn_read_file(path, &data, &bytes);
    if (st) return st;
    rn_decoder dec;
    rn_transform_scratch scratch = {0};
    rn_normalizer norm;
    rn_normalizer_init(&norm, mean, std);
    if (!(st = rn_decoder_init(&dec))) {
        st = eval_image(out, &dec, &scratch, data, bytes, path, size,
                        resize ? resize : size * 256 / 224, &norm);
        rn_decoder_free(&dec);
    }
    rn_transform_scratch_free(&scratch);
    rn_free(data);
    return st;
}
