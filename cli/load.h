/*
 * load.h — the model and normalization options of every command that reads trained weights
 * (eval, predict, export), parsed here once so that they mean the same everywhere, and loading
 * the model from a weights file with them: by the model name in the file's metadata, or by a
 * --model name with the input geometry and classes taken from the metadata.
 *
 * Options given explicitly override the file's metadata: --model names the model (needed for
 * a PyTorch state_dict saved without metadata), --mean and --std replace the normalization.
 */
#ifndef RN_CLI_LOAD_H
#define RN_CLI_LOAD_H

#include "cli.h"

#include <getopt.h>

/* --model, --mean and --std as given (n_mean, n_std 0 and model NULL when not given). */
typedef struct {
    const char *model;
    float mean[4], std[4];
    int n_mean, n_std;
} cli_weights_opts;

/* The three entries of a subcommand's struct option table. */
#define CLI_WEIGHTS_OPTIONS                                                                     \
    {"model", required_argument, 0, CLI_OPT_MODEL}, {"mean", required_argument, 0, CLI_OPT_MEAN}, \
        {"std", required_argument, 0, CLI_OPT_STD}

/* Their lines in a subcommand's --help. */
#define CLI_WEIGHTS_HELP                                                                        \
    "  --model NAME     the model (default: the weights' metadata; a PyTorch state_dict\n"     \
    "                   saved without metadata needs it)\n"                                   \
    "  --mean R,G,B     input normalization (pixel/255 - mean) / std, one value per input\n"   \
    "  --std R,G,B      channel (default: the weights' metadata, else the model family's:\n"   \
    "                   CIFAR-10's or ImageNet's statistics)\n"                               \
    "Options given explicitly override the weights' metadata.\n"

/* Reads option opt (CLI_OPT_MODEL, CLI_OPT_MEAN or CLI_OPT_STD; others are ignored) into *o.
 * Returns false after printing a one-line error: an unknown model name, a malformed list, a
 * std that is not positive (all usage errors, exit status 2). */
bool cli_weights_opt(int opt, const char *arg, cli_weights_opts *o);

/* Builds the model and loads `weights` into it, as *o says; *norm receives the normalization:
 * --mean/--std where given, else the file's, else the model's default. Returns 0, or the exit
 * status after printing one line: 2 when --mean/--std do not have one value per input channel
 * of the model, 1 when the file cannot be read or does not hold the model (*m is then NULL). */
int cli_load_model(const char *weights, const cli_weights_opts *o, rn_model **m, rn_norm *norm);

/* Puts the --mean/--std values of *o into *norm (of `channels` channels); returns 0, or 2 after
 * printing an error when their count is not `channels`. cli_load_model calls it; a command that
 * replaces the normalization afterwards (predict --preset) calls it again. */
int cli_norm_override(const cli_weights_opts *o, int channels, rn_norm *norm);

#endif
