/*
 * cli.h — shared pieces of the `resnet` command: one function per subcommand, and small
 * helpers for parsing option values with clear error messages.
 */
#ifndef RN_CLI_H
#define RN_CLI_H

#include "resnet.h"

#include <stdbool.h>
#include <stdint.h>

/* Each subcommand gets argv starting at its own name and returns the exit status. */
int cmd_data(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Exit statuses, the same in every subcommand (README, `resnet --help`): 0 success; 2 a usage
 * error (an unknown or malformed option, a bad value, a missing required option, an unknown
 * model name given on the command line); 1 a failure (a file that cannot be read or holds bad
 * data, a runtime error); 130 when interrupted (Ctrl-C). */
enum { CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_INTERRUPTED = 130 };

/* Prints "resnet: <message>" on stderr and returns 1, a failure (`return cli_error(...)`). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for a usage error: returns 2. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the library's last error for a failed status and returns 1, or 2 for
 * RN_ERR_UNKNOWN_MODEL: the library hears of a model name from the command line (a command
 * that takes one from a file reports that failure itself, with cli_error). */
int cli_lib_error(rn_status s);

/* Running as one of several processes (procs.c). cli_comm_open joins them (NULL after
 * printing why, e.g. a build without MPI under mpirun; reported by the launcher's rank 0
 * only) and silences the stdout and stderr of every rank but 0, which speaks for all.
 * cli_comm_speak gives a rank its voice back. cli_comm_local_error reports an error that only
 * this process saw and ends the whole job (the others may wait in a collective); alone, it is
 * cli_lib_error. */
rn_comm *cli_comm_open(void);
void cli_comm_speak(void);
int cli_comm_local_error(rn_comm *c, rn_status s);
/* --threads per process: as given, or (0) with several processes the host's cores divided by
 * the processes on it (0, every core, for a process alone). */
int cli_comm_threads(const rn_comm *c, int threads);
/* Runs a subcommand among the launcher's processes: cli_comm_open, cmd, rn_comm_close. */
int cli_comm_run(int (*cmd)(rn_comm *c, int argc, char **argv), int argc, char **argv);

/* After getopt_long (called with opterr = 0 and an optstring starting with ':') returned '?'
 * (unknown option) or ':' (missing value): prints one line naming the option, returns 2. */
int cli_option_error(const char *cmd, int c, char **argv);

/* Long options that several subcommands share, each named once (values above every short
 * option's character); a subcommand numbers its own from CLI_OPT_OWN. */
enum {
    CLI_OPT_HELP = 'h',
    CLI_OPT_MODEL = 256,
    CLI_OPT_IN_CHANNELS,
    CLI_OPT_SIZE,
    CLI_OPT_CLASSES,
    CLI_OPT_DEVICE,
    CLI_OPT_PRECISION,
    CLI_OPT_THREADS,
    CLI_OPT_BACKEND,
    CLI_OPT_BATCH,
    CLI_OPT_SEED,
    CLI_OPT_DATA,
    CLI_OPT_WEIGHTS,
    CLI_OPT_RESIZE,
    CLI_OPT_OUT,
    CLI_OPT_MEAN,
    CLI_OPT_STD,
    CLI_OPT_OWN = 512,
};

/* getopt_long for subcommand cmd, the one way every subcommand reads its options: returns
 * the next option's value, -1 after the last, or '?' after printing one error line (an
 * unknown option, a missing value, an abbreviated long option). shorts lists the short
 * options ("h"); a leading '+' stops at the first operand. *longindex (may be NULL) receives
 * the long option's index in opts, or -1. */
struct option;
int cli_getopt(const char *cmd, int argc, char **argv, const char *shorts,
               const struct option *opts, int *longindex);

/* Option values: each returns false after printing a one-line error naming the option. */
bool cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
/* --device cpu|cuda|cuda:N and --precision fp32|tf32|bf16 are well formed (whether the
 * device exists and computes in that precision is the executor's to say); false after
 * printing an error. */
bool cli_check_device(const char *s);
bool cli_check_precision(const char *s);
bool cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);
/* A comma-separated list of up to max floats, e.g. "0.49,0.48,0.45". */
bool cli_parse_floats(const char *opt, const char *s, float *out, int max, int *n);
/* "HxW" or "S" (square), each side from 1 to 4096. */
bool cli_parse_size(const char *opt, const char *s, int *h, int *w);
/* Whether name is a model of the zoo (rn_model_names); cli_check_model prints an error naming
 * them when it is not (a usage error: the caller returns 2). */
bool cli_model_known(const char *name);
bool cli_check_model(const char *name);
/* cli_parse_size with each side in [lo, hi]. */
bool cli_parse_size_in(const char *opt, const char *s, long lo, long hi, int *h, int *w);
/* A decimal integer from 0 to 2^64 - 1 (a seed), overflow checked. */
bool cli_parse_u64(const char *opt, const char *s, uint64_t *out);
/* A training setting's value, in the range the library holds for it (rn_train_setting_range):
 * the setting is the option's name ("--label-smoothing" is label_smoothing); integers as
 * cli_parse_int, numbers as cli_parse_float, into *out either way. */
bool cli_parse_setting(const char *opt, const char *s, double *out);
/* Model geometry options shared by commands: 'C' --in-channels, 'S' --size, 'K' --classes.
 * Other option characters are ignored (returns true). */
bool cli_model_opt(int opt, const char *arg, rn_model_opts *o);

/* The streamed-data options of `train` and `eval` (see rn_train_config): a command lists
 * CLI_STREAM_OPTIONS(FIRST) in its option table, codes FIRST .. FIRST + 4, and hands each
 * of them to cli_stream_opt by its long name. CLI_STREAM_HELP is their --help text. */
#define CLI_STREAM_OPTIONS(first)                              \
    {"size", required_argument, 0, (first)},                   \
    {"preset", required_argument, 0, (first) + 1},             \
    {"skip-bad", no_argument, 0, (first) + 2},                 \
    {"data-threads", required_argument, 0, (first) + 3},       \
    {"data-memory", required_argument, 0, (first) + 4}
#define CLI_STREAM_COUNT 5
#define CLI_STREAM_HELP                                                                      \
    "streamed: shards:PATTERN (WebDataset tar: KEY.jpg + KEY.cls) always streams from disk;\n" \
    "          folder:ROOT streams when its decoded images exceed --data-memory BYTES\n"       \
    "          (also 512M, 8G; default a quarter of physical memory) or when --size or\n"     \
    "          --preset is given, else it is loaded into memory as before\n"                  \
    "          --size S (crop; default 224 for -imagenet models, 32 for others)\n"            \
    "          --preset imagenet (ImageNet's mean and std; without it they are measured\n"    \
    "          on up to 500 training images)  --data-threads N (decoders, default 2)\n"        \
    "          --skip-bad (skip images that do not decode, each named in a warning;\n"       \
    "          default: stop with an error naming the image)\n"
/* Applies one of the streamed-data options (long name `name`) to c; false after printing an
 * error. */
bool cli_stream_opt(const char *name, const char *arg, rn_train_config *c);

#endif
