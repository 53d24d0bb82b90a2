/*
 * config.c — training settings: defaults, named recipes, and config.json (written at the start
 * of a run so it can be reproduced, read back on resume). JSON through cJSON.
 */
#include "train.h"

#include <cjson/cJSON.h>
#include <string.h>

void rn_train_config_defaults(rn_train_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "resnet20");
    c->batch = 128;
    c->epochs = 1;
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->wd = 5e-4f;
    c->gamma = 0.1f;
    c->schedule = RN_SCHED_CONSTANT;
    c->augment = true;
    c->shuffle = true;
    c->log_every = 50;
    c->seed = 1;
}

rn_status rn_train_config_recipe(rn_train_config *c, const char *recipe) {
    if (strcmp(recipe, "he2015") != 0)
        return rn_fail(RN_ERR_BAD_ARG, "unknown recipe '%s' (expected he2015)", recipe);
    c->batch = 128;
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->wd = 1e-4f;
    c->nesterov = false;
    c->gamma = 0.1f;
    c->schedule = RN_SCHED_MULTISTEP;
    c->milestones[0] = 32000;
    c->milestones[1] = 48000;
    c->n_milestones = 2;
    c->milestone_unit = RN_UNIT_STEPS;
    c->iters = 64000;
    c->val = 5000;
    c->augment = true;
    c->warmup = 0;
    c->warmup_factor = 0;
    /* "we use 0.01 to warm up the training until the training error is below 80% (about 400
     * iterations), and then go back to 0.1" (He et al. 2015, section 4.2). */
    if (!strcmp(c->model, "resnet110") || !strcmp(c->model, "resnet1202")) {
        c->warmup = 400;
        c->warmup_factor = 0.1f;
    }
    return RN_OK;
}

static const char *sched_names[] = {"constant", "multistep", "cosine", "onecycle"};

rn_status rn_train_config_save(const rn_train_config *c, const char *path) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return rn_fail(RN_ERR_NOMEM, "cannot build config.json");
    cJSON_AddStringToObject(j, "model", c->model);
    cJSON_AddStringToObject(j, "data", c->data);
    cJSON_AddStringToObject(j, "out", c->out);
    cJSON_AddStringToObject(j, "backend", c->backend);
    cJSON_AddStringToObject(j, "device", c->device);
    cJSON_AddStringToObject(j, "precision", c->precision);
    cJSON_AddStringToObject(j, "init", c->init);
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddNumberToObject(j, "resize_h", c->resize_h);
    cJSON_AddNumberToObject(j, "resize_w", c->resize_w);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "iters", (double)c->iters);
    cJSON_AddNumberToObject(j, "val", c->val);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(j, "seed", seed); /* a string: JSON numbers lose 64-bit precision */
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "momentum", c->momentum);
    cJSON_AddNumberToObject(j, "wd", c->wd);
    cJSON_AddNumberToObject(j, "gamma", c->gamma);
    cJSON_AddBoolToObject(j, "nesterov", c->nesterov);
    cJSON_AddBoolToObject(j, "wd_skip_bn", c->wd_skip_bn);
    cJSON_AddStringToObject(j, "schedule", sched_names[c->schedule]);
    cJSON *ms = cJSON_AddArrayToObject(j, "milestones");
    for (int i = 0; i < c->n_milestones; i++)
        cJSON_AddItemToArray(ms, cJSON_CreateNumber((double)c->milestones[i]));
    static const char *units[] = {"steps", "epochs", "percent"};
    cJSON_AddStringToObject(j, "milestone_unit", units[c->milestone_unit]);
    cJSON_AddNumberToObject(j, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(j, "warmup_factor", c->warmup_factor);
    cJSON_AddNumberToObject(j, "label_smoothing", c->label_smoothing);
    cJSON_AddBoolToObject(j, "augment", c->augment);
    cJSON_AddBoolToObject(j, "shuffle", c->shuffle);
    cJSON_AddNumberToObject(j, "log_every", c->log_every);
    cJSON_AddNumberToObject(j, "eval_every", c->eval_every);
    cJSON_AddNumberToObject(j, "ckpt_every", (double)c->ckpt_every);
    cJSON_AddBoolToObject(j, "log_grads", c->log_grads);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return rn_fail(RN_ERR_NOMEM, "cannot format config.json");
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator; the length below covers it */
    const void *parts[] = {text};
    size_t sizes[] = {len + 1};
    rn_status s = rn_write_file_atomic(path, parts, sizes, 1);
    cJSON_free(text);
    return s;
}

/* Field readers: each checks the JSON type and fails with the key's name. */
static bool get_num(const cJSON *j, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static bool get_str(const cJSON *j, const char *key, char *out, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size) return false;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

static bool get_bool(const cJSON *j, const char *key, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsBool(v)) return false;
    *out = cJSON_IsTrue(v);
    return true;
}

rn_status rn_train_config_load(rn_train_config *c, const char *run_dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    void *buf;
    size_t size;
    rn_status s = rn_read_file(path, &buf, &size);
    if (s != RN_OK) return s;
    cJSON *j = cJSON_ParseWithLength(buf, size);
    rn_free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a JSON object", path);
    }
    rn_train_config_defaults(c);
    double v[20];
    char seed[32], sched[32], unit[16];
    const char *bad = NULL;
    /* Required fields, in order; the first missing or mistyped one is reported. */
    if (!get_str(j, "model", c->model, sizeof c->model)) bad = "model";
    else if (!get_str(j, "data", c->data, sizeof c->data)) bad = "data";
    else if (!get_str(j, "out", c->out, sizeof c->out)) bad = "out";
    else if (!get_str(j, "backend", c->backend, sizeof c->backend)) bad = "backend";
    else if (!get_str(j, "init", c->init, sizeof c->init)) bad = "init";
    /* Optional (runs from before GPUs existed here have neither): CPU, default precision. */
    if (!bad && cJSON_GetObjectItemCaseSensitive(j, "device") &&
        !get_str(j, "device", c->device, sizeof c->device))
        bad = "device";
    if (!bad && cJSON_GetObjectItemCaseSensitive(j, "precision") &&
        !get_str(j, "precision", c->precision, sizeof c->precision))
        bad = "precision";
    else if (!get_num(j, "threads", &v[0])) bad = "threads";
    else if (!get_num(j, "resize_h", &v[1])) bad = "resize_h";
    else if (!get_num(j, "resize_w", &v[2])) bad = "resize_w";
    else if (!get_num(j, "batch", &v[3])) bad = "batch";
    else if (!get_num(j, "epochs", &v[4])) bad = "epochs";
    else if (!get_num(j, "iters", &v[5])) bad = "iters";
    else if (!get_num(j, "val", &v[6])) bad = "val";
    else if (!get_str(j, "seed", seed, sizeof seed)) bad = "seed";
    else if (!get_num(j, "lr", &v[7])) bad = "lr";
    else if (!get_num(j, "momentum", &v[8])) bad = "momentum";
    else if (!get_num(j, "wd", &v[9])) bad = "wd";
    else if (!get_num(j, "gamma", &v[10])) bad = "gamma";
    else if (!get_bool(j, "nesterov", &c->nesterov)) bad = "nesterov";
    else if (!get_bool(j, "wd_skip_bn", &c->wd_skip_bn)) bad = "wd_skip_bn";
    else if (!get_str(j, "schedule", sched, sizeof sched)) bad = "schedule";
    else if (!get_str(j, "milestone_unit", unit, sizeof unit)) bad = "milestone_unit";
    else if (!get_num(j, "warmup", &v[11])) bad = "warmup";
    else if (!get_num(j, "warmup_factor", &v[12])) bad = "warmup_factor";
    else if (!get_num(j, "label_smoothing", &v[13])) bad = "label_smoothing";
    else if (!get_bool(j, "augment", &c->augment)) bad = "augment";
    else if (!get_bool(j, "shuffle", &c->shuffle)) bad = "shuffle";
    else if (!get_num(j, "log_every", &v[14])) bad = "log_every";
    else if (!get_num(j, "eval_every", &v[15])) bad = "eval_every";
    else if (!get_num(j, "ckpt_every", &v[16])) bad = "ckpt_every";
    /* Optional: runs configured before it existed did not log gradients. */
    else if (cJSON_HasObjectItem(j, "log_grads") && !get_bool(j, "log_grads", &c->log_grads))
        bad = "log_grads";
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "milestones");
    if (!bad && (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > RN_MAX_MILESTONES))
        bad = "milestones";
    if (!bad) {
        c->n_milestones = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ms) {
            if (!cJSON_IsNumber(e)) {
                bad = "milestones";
                break;
            }
            c->milestones[c->n_milestones++] = (int64_t)e->valuedouble;
        }
    }
    cJSON_Delete(j);
    if (bad)
        return rn_fail(RN_ERR_BAD_FILE, "%s: field '%s' is missing or has the wrong type", path,
                       bad);
    c->schedule = RN_SCHED_CONSTANT;
    bool known = false;
    for (int i = 0; i < 4; i++)
        if (!strcmp(sched, sched_names[i])) {
            c->schedule = (rn_sched_kind)i;
            known = true;
        }
    if (!known)
        return rn_fail(RN_ERR_BAD_FILE, "%s: unknown schedule '%s'", path, sched);
    if (!strcmp(unit, "steps")) c->milestone_unit = RN_UNIT_STEPS;
    else if (!strcmp(unit, "epochs")) c->milestone_unit = RN_UNIT_EPOCHS;
    else if (!strcmp(unit, "percent")) c->milestone_unit = RN_UNIT_PERCENT;
    else return rn_fail(RN_ERR_BAD_FILE, "%s: unknown milestone_unit '%s'", path, unit);
    c->threads = (int)v[0];
    c->resize_h = (int)v[1];
    c->resize_w = (int)v[2];
    c->batch = (int)v[3];
    c->epochs = (int)v[4];
    c->iters = (int64_t)v[5];
    c->val = (int)v[6];
    c->seed = strtoull(seed, NULL, 10);
    c->lr = (float)v[7];
    c->momentum = (float)v[8];
    c->wd = (float)v[9];
    c->gamma = (float)v[10];
    c->warmup = (int64_t)v[11];
    c->warmup_factor = (float)v[12];
    c->label_smoothing = (float)v[13];
    c->log_every = (int)v[14];
    c->eval_every = (int)v[15];
    c->ckpt_every = (int64_t)v[16];
    return RN_OK;
}
