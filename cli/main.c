/*
 * main.c — the `resnet` command: dispatches to one subcommand per file (cli/cmd_*.c).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"data", cmd_data, "print a data set's counts, shape, classes and statistics, or pack it"},
    {"info", cmd_info, "print a model's layer table, parameter count and multiply-adds"},
    {"predict", cmd_predict, "classify image files with a trained model"},
    {"train", cmd_train, "train a model on a data set (with exact resume)"},
    {"bench", cmd_bench, "training or inference throughput against the machine's FMA peak"},
    {"eval", cmd_eval, "accuracy, loss and confusion matrix of trained weights on a data set"},
    {"experiment", cmd_experiment, "the degradation experiment: plain vs residual nets by depth"},
    {"report", cmd_report, "one HTML page of training runs: curves, gradient flow, summary"},
    {"export", cmd_export, "write trained weights as an ONNX model"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: resnet COMMAND [OPTIONS]\n       resnet --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`resnet COMMAND --help` describes a command's options.\n"
               "\nexit status, the same for every command:\n"
               "  0    success\n"
               "  1    failure: a file that cannot be read or holds bad data, a runtime error\n"
               "  2    usage error: an unknown or malformed option, a bad or missing value, an\n"
               "       unknown model name given on the command line\n"
               "  130  interrupted (Ctrl-C)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("resnet %s%s\n", rn_version(), rn_cuda_built() ? " (with CUDA)" : "");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "resnet: unknown command '%s' (run `resnet --help` for the list)\n", argv[1]);
    return 2;
}
