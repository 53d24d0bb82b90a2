/*
 * cmd_eval.c — `resnet eval`: top-1 (and top-5) accuracy, mean loss, per-class accuracy and the
 * confusion matrix of a weights file on a data set split; --json for machine-readable output.
 * The model and its normalization come from the weights' metadata unless --model, --mean or
 * --std say otherwise (load.h, as for predict and export). On a terminal a progress line counts
 * the images evaluated. Under mpirun (make MPI=1) the processes split the set and rank 0
 * prints the totals.
 */
#include "cli.h"
#include "format.h"
#include "load.h"
#include "train/batches.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet eval --weights FILE --data SPEC [--split test|val|train] [--val N]\n"
            "                   [--seed S] [--batch B] [--threads N] [--resize HxW] [--json]\n"
            "                   [--model NAME] [--mean R,G,B] [--std R,G,B] [--quiet]\n"
            "                   [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16 (fp32)]\n"
            "                   [--size S] [--preset imagenet] [--skip-bad] [--data-threads N]\n"
            "                   [--data-memory BYTES]\n"
            "The val split is the --val N images held out with --seed S; when FILE lies in a\n"
            "run directory, N, S, the resize and the streamed-data settings default to that\n"
            "run's config.json. A streamed set (shards:PATTERN, or a folder:ROOT that streams as\n"
            "in train) is evaluated on Resize(S*256/224) + CenterCrop(S), S the model's input\n"
            "size, with the weights' normalization; its test split is ROOT/val (else ROOT/test),\n"
            "or the shards named with val in place of train.\n"
            CLI_WEIGHTS_HELP
            "When stderr is a terminal, a line there counts the images evaluated (not with\n"
            "--quiet).\n"
            CLI_STREAM_HELP);
}

/* Reads val, seed, the resize and the streamed-data settings (into *stream) from the
 * config.json beside the weights, if there is one. */
static void defaults_from_run(const char *weights, long *val, unsigned long long *seed,
                              rn_data_opts *resize, rn_train_config *stream) {
    char *copy = strdup(weights);
    if (!copy) return;
    rn_train_config c;
    if (rn_train_config_load(&c, dirname(copy)) == RN_OK) {
        *val = c.val;
        *seed = c.seed;
        resize->resize_h = c.resize_h;
        resize->resize_w = c.resize_w;
        *stream = c;
    }
    free(copy);
}

static void print_text(const rn_eval_result *r, const rn_dataset *d, const char *split) {
    int K = r->num_classes;
    printf("%s: %d images, %d classes\n", split, r->n, K);
    printf("top-1 accuracy: %.2f%%\n", 100 * r->top1);
    if (K > 5) printf("top-5 accuracy: %.2f%%\n", 100 * r->top5);
    printf("mean loss: %.4f\n\nper class:\n", r->loss);
    for (int k = 0; k < K; k++) {
        int64_t total = 0;
        for (int j = 0; j < K; j++) total += r->confusion[(size_t)k * K + j];
        const char *name = k < d->num_classes ? d->class_names[k] : "?";
        if (total)
            printf("  %3d %-20s %6.2f%% of %lld\n", k, name,
                   100.0 * r->confusion[(size_t)k * K + k] / total, (long long)total);
        else
            printf("  %3d %-20s      - of 0\n", k, name);
    }
    if (K > 30) return; /* a matrix that wide is for --json */
    printf("\nconfusion matrix (rows: true class, columns: predicted):\n      ");
    for (int j = 0; j < K; j++) printf(" %5d", j);
    printf("\n");
    for (int k = 0; k < K; k++) {
        printf("  %3d ", k);
        for (int j = 0; j < K; j++) printf(" %5lld", (long long)r->confusion[(size_t)k * K + j]);
        printf("\n");
    }
}

static int print_json(const rn_eval_result *r, const rn_dataset *d, const char *split,
                      const char *weights) {
    int K = r->num_classes;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "weights", weights);
    cJSON_AddStringToObject(j, "split", split);
    cJSON_AddNumberToObject(j, "images", r->n);
    cJSON_AddNumberToObject(j, "top1", r->top1);
    if (K > 5) cJSON_AddNumberToObject(j, "top5", r->top5);
    cJSON_AddNumberToObject(j, "loss", r->loss);
    cJSON *names = cJSON_AddArrayToObject(j, "classes");
    cJSON *acc = cJSON_AddArrayToObject(j, "class_accuracy");
    cJSON *conf = cJSON_AddArrayToObject(j, "confusion");
    for (int k = 0; k < K; k++) {
        cJSON_AddItemToArray(names,
                             cJSON_CreateString(k < d->num_classes ? d->class_names[k] : "?"));
        int64_t total = 0;
        cJSON *row = cJSON_CreateArray();
        for (int c = 0; c < K; c++) {
            total += r->confusion[(size_t)k * K + c];
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[(size_t)k * K + c]));
        }
        cJSON_AddItemToArray(conf, row);
        cJSON_AddItemToArray(acc, total ? cJSON_CreateNumber(
                                              (double)r->confusion[(size_t)k * K + k] / total)
                                        : cJSON_CreateNull());
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return cli_error("out of memory");
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

/* ---- streamed sets (train/batches.h) ---------------------------------------------------- */

/* Prints a skipped image's name (--skip-bad). */
static void eval_warning(const char *message, void *user) {
    (void)user;
    fprintf(stderr, "warning: %s\n", message);
}

/* `resnet eval` on a streamed set: the split through rn_batches_evaluate, with the weights'
 * normalization and input size (or those of --model/--mean/--std). One process. */
static int eval_streamed(rn_train_config *c, const char *split, const char *weights,
                         const cli_weights_opts *wo, const rn_exec_opts *eo, bool json,
                         bool quiet) {
    rn_model *m = NULL;
    rn_exec *e = NULL;
    rn_batches b = {0};
    rn_eval_result r = {0};
    rn_norm norm;
    int load_rc = cli_load_model(weights, wo, &m, &norm), rc = load_rc ? load_rc : 1;
    rn_status s = load_rc ? RN_ERR_BAD_FILE : RN_OK; /* cli_load_model said why */
    if (s == RN_OK) {
        rn_model_opts mo = rn_model_get_opts(m);
        c->size = mo.in_height;
        s = rn_batches_open(&b, c, 1, false, &norm, eval_warning, NULL);
    }
    rn_split which = !strcmp(split, "test") ? RN_SPLIT_TEST
                     : !strcmp(split, "val") ? RN_SPLIT_VAL : RN_SPLIT_TRAIN;
    if (s == RN_OK && rn_batches_count(&b, which) == 0) {
        cli_error("--split %s: %s has no such split (%s)", split, c->data,
                  which == RN_SPLIT_VAL ? "give --val N" : "expected ROOT/val or ROOT/test");
        goto out;
    }
    if (s == RN_OK) s = rn_exec_open(&e, m, eo, c->batch);
    cli_progress progress;
    cli_progress_init(&progress, "evaluating images", true);
    if (s == RN_OK && !quiet) rn_exec_set_eval_progress(e, cli_progress_show, &progress);
    if (s == RN_OK)
        s = rn_batches_evaluate(&b, which, e, NULL, rn_model_get_opts(m).num_classes, &r);
    if (s != RN_OK) {
        if (!load_rc) rc = cli_lib_error(s);
        goto out;
    }
    rc = json ? print_json(&r, &b.train, split, weights) : (print_text(&r, &b.train, split), 0);
out:
    rn_eval_result_free(&r);
    rn_batches_close(&b);
    rn_exec_close(e);
    rn_model_free(m);
    return rc;
}

static int eval(rn_comm *comm, int argc, char **argv) {
    enum { OPT_SPLIT = CLI_OPT_OWN, OPT_VAL, OPT_JSON, OPT_QUIET, OPT_STREAM };
    static const struct option opts[] = {
        {"weights", required_argument, 0, CLI_OPT_WEIGHTS},
        {"data", required_argument, 0, CLI_OPT_DATA},
        {"split", required_argument, 0, OPT_SPLIT},
        {"val", required_argument, 0, OPT_VAL},
        {"seed", required_argument, 0, CLI_OPT_SEED},
        {"batch", required_argument, 0, CLI_OPT_BATCH},
        {"threads", required_argument, 0, CLI_OPT_THREADS},
        {"resize", required_argument, 0, CLI_OPT_RESIZE},
        {"json", no_argument, 0, OPT_JSON},
        {"quiet", no_argument, 0, OPT_QUIET},
        CLI_WEIGHTS_OPTIONS,
        {"help", no_argument, 0, CLI_OPT_HELP},
        {"device", required_argument, 0, CLI_OPT_DEVICE},
        {"precision", required_argument, 0, CLI_OPT_PRECISION},
        CLI_STREAM_OPTIONS(OPT_STREAM),
        {0, 0, 0, 0}};
    const char *device = NULL, *precision = "fp32";
    const char *weights = NULL, *spec = NULL, *split = "test";
    long val = -1, batch = 256, threads = 0;
    unsigned long long seed = 1;
    bool json = false, seed_given = false, quiet = false;
    cli_weights_opts wo = {0};
    rn_data_opts dopts = {0};
    int o, li = -1;
    rn_train_config given, run; /* the streamed-data options given, and the run's */
    rn_train_config_defaults(&given);
    rn_train_config_defaults(&run);
    optind = 1;
    while ((o = cli_getopt("eval", argc, argv, "h", opts, &li)) != -1) {
        if (o >= OPT_STREAM && o < OPT_STREAM + CLI_STREAM_COUNT) {
            if (li < 0 || !cli_stream_opt(opts[li].name, optarg, &given)) return 2;
            continue;
        }
        switch (o) {
        case CLI_OPT_WEIGHTS: weights = optarg; break;
        case CLI_OPT_DATA: spec = optarg; break;
        case OPT_SPLIT:
            if (strcmp(optarg, "test") && strcmp(optarg, "val") && strcmp(optarg, "train"))
                return cli_usage_error("--split: expected test, val or train, got '%s'", optarg);
            split = optarg;
            break;
        case OPT_VAL: if (!cli_parse_int("--val", optarg, 0, 100000000, &val)) return 2; break;
        case CLI_OPT_SEED: {
            char *end;
            seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                return cli_usage_error("--seed: expected a non-negative integer, got '%s'", optarg);
            seed_given = true;
            break;
        }
        case CLI_OPT_BATCH: if (!cli_parse_int("--batch", optarg, 1, 65536, &batch)) return 2; break;
        case CLI_OPT_THREADS: if (!cli_parse_int("--threads", optarg, 0, 1024, &threads)) return 2; break;
        case CLI_OPT_RESIZE:
            if (!cli_parse_size("--resize", optarg, &dopts.resize_h, &dopts.resize_w)) return 2;
            break;
        case OPT_JSON: json = true; break;
        case OPT_QUIET: quiet = true; break;
        case CLI_OPT_MODEL:
        case CLI_OPT_MEAN:
        case CLI_OPT_STD: if (!cli_weights_opt(o, optarg, &wo)) return 2; break;
        case CLI_OPT_DEVICE: if (!cli_check_device(optarg)) return 2; device = optarg; break;
        case CLI_OPT_PRECISION: if (!cli_check_precision(optarg)) return 2; precision = optarg; break;
        case CLI_OPT_HELP: usage(stdout); return 0;
        default: return 2; /* cli_getopt said why */
        }
    }
    if (!weights || !spec) return cli_usage_error("eval: --weights FILE and --data SPEC are required");
    if (optind != argc) return cli_usage_error("eval: unexpected argument '%s'", argv[optind]);
    long run_val = 0;
    unsigned long long run_seed = 1;
    rn_data_opts run_resize = {0};
    defaults_from_run(weights, &run_val, &run_seed, &run_resize, &run);
    if (val < 0) val = run_val;
    if (!seed_given) seed = run_seed;
    if (!dopts.resize_h) dopts = run_resize;
    /* streamed sets: evaluated in eval_streamed */
    rn_train_config sc = run;
    snprintf(sc.data, sizeof sc.data, "%s", spec);
    if (given.size) sc.size = given.size;
    if (given.preset[0]) snprintf(sc.preset, sizeof sc.preset, "%s", given.preset);
    if (given.data_memory) sc.data_memory = given.data_memory;
    if (given.data_threads) sc.data_threads = given.data_threads;
    sc.skip_bad = sc.skip_bad || given.skip_bad;
    sc.resize_h = dopts.resize_h;
    sc.resize_w = dopts.resize_w;
    sc.val = (int)RN_MAX(val, 0);
    sc.seed = seed;
    sc.batch = (int)batch;
    bool streamed;
    int64_t budget;
    rn_status sd = rn_batches_decide(&sc, &streamed, &budget);
    if (sd != RN_OK) return cli_lib_error(sd);
    if (streamed) {
        threads = cli_comm_threads(comm, (int)threads);
        rn_exec_opts eo = {.device = device, .threads = (int)threads, .precision = precision,
                           .inference_only = true};
        return eval_streamed(&sc, split, weights, &wo, &eo, json, quiet);
    }

    rn_model *m = NULL;
    rn_exec *e = NULL;
    rn_dataset train = {0}, test = {0}, held = {0};
    rn_eval_result r = {0};
    rn_norm norm;
    int load_rc = cli_load_model(weights, &wo, &m, &norm), rc = 1;
    rn_status s = load_rc ? RN_ERR_BAD_FILE : RN_OK; /* cli_load_model said why */
    if (s == RN_OK) s = rn_dataset_load(&train, &test, spec, &dopts);
    if (s == RN_OK && strcmp(split, "test") != 0 && val > 0) {
        if (val >= train.n) {
            rc = cli_usage_error("--val %ld: the training set has %d images", val, train.n);
            goto out;
        }
        s = rn_dataset_split(&train, &held, (int)val, seed);
    }
    if (s == RN_OK && !strcmp(split, "val") && val <= 0) {
        rc = cli_usage_error("--split val: no validation split (give --val N, or evaluate "
                             "weights from a run that used --val)");
        goto out;
    }
    const rn_dataset *d = !strcmp(split, "test") ? &test : !strcmp(split, "val") ? &held : &train;
    threads = cli_comm_threads(comm, (int)threads);
    rn_exec_opts eo = {.device = device, .threads = (int)threads, .precision = precision,
                       .inference_only = true};
    if (s == RN_OK) s = rn_exec_open(&e, m, &eo, (int)batch);
    s = rn_comm_agree(comm, s); /* each process read the weights and data itself */
    cli_progress progress;
    cli_progress_init(&progress, "evaluating images", true);
    if (s == RN_OK && !quiet) rn_exec_set_eval_progress(e, cli_progress_show, &progress);
    if (s == RN_OK) s = rn_exec_evaluate_comm(e, comm, d, &norm, &r);
    if (s != RN_OK) {
        rc = load_rc ? load_rc : cli_lib_error(s);
        goto out;
    }
    rc = json ? print_json(&r, d, split, weights) : (print_text(&r, d, split), 0);
out:
    rn_eval_result_free(&r);
    rn_dataset_free(&train);
    rn_dataset_free(&test);
    rn_dataset_free(&held);
    rn_exec_close(e);
    rn_model_free(m);
    return rc;
}

int cmd_eval(int argc, char **argv) { return cli_comm_run(eval, argc, argv); }
