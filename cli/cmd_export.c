/*
 * cmd_export.c — `resnet export`: trained weights as an ONNX file for ONNX Runtime, TensorRT,
 * OpenVINO and other runtimes (the graph in evaluation mode; see rn_model_export_onnx).
 */
#include "cli.h"
#include "load.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet export --weights FILE [--model NAME] [--mean R,G,B] [--std R,G,B]\n"
            "                     [--format onnx] -o OUT.onnx [--opset N] [--batch N|dynamic]\n"
            "                     [--fold-bn]\n"
            "Writes the model in evaluation mode as ONNX: input \"input\" (N, C, H, W), already\n"
            "normalized as (pixel/255 - mean)/std (mean and std are written to the ONNX file's\n"
            "metadata), output \"logits\" (N, classes).\n"
            "  --opset N        ONNX operator set, 11 to 21 (default 13)\n"
            "  --batch N        fix the batch dimension to N (default: dynamic, named \"N\")\n"
            "  --fold-bn        fold each BatchNorm into the convolution before it\n"
            CLI_WEIGHTS_HELP
            "The input geometry and classes come from the weights' metadata (else the model's\n"
            "defaults).\n");
}

typedef struct {
    const char *weights, *out;
    cli_weights_opts w; /* --model, --mean, --std */
    rn_onnx_opts onnx;
} export_opts;

static bool parse(int argc, char **argv, export_opts *o) {
    enum { OPT_FORMAT = CLI_OPT_OWN, OPT_OPSET, OPT_FOLD_BN };
    static const struct option opts[] = {
        {"weights", required_argument, 0, CLI_OPT_WEIGHTS},
        CLI_WEIGHTS_OPTIONS,
        {"format", required_argument, 0, OPT_FORMAT},
        {"output", required_argument, 0, 'o'},
        {"opset", required_argument, 0, OPT_OPSET},
        {"batch", required_argument, 0, CLI_OPT_BATCH},
        {"fold-bn", no_argument, 0, OPT_FOLD_BN},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {0, 0, 0, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = cli_getopt("export", argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_WEIGHTS: o->weights = optarg; break;
        case CLI_OPT_MODEL:
        case CLI_OPT_MEAN:
        case CLI_OPT_STD: if (!cli_weights_opt(c, optarg, &o->w)) return false; break;
        case 'o': o->out = optarg; break;
        case OPT_FOLD_BN: o->onnx.fold_bn = true; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "onnx") != 0) {
                cli_error("--format: unknown format '%s' (expected onnx)", optarg);
                return false;
            }
            break;
        case OPT_OPSET:
            if (!cli_parse_int("--opset", optarg, 1, 1000, &v)) return false;
            o->onnx.opset = (int)v;
            break;
        case CLI_OPT_BATCH:
            if (!strcmp(optarg, "dynamic")) o->onnx.batch = 0;
            else if (!cli_parse_int("--batch", optarg, 1, 1000000, &v)) return false;
            else o->onnx.batch = (int)v;
            break;
        case CLI_OPT_HELP: usage(stdout); exit(0);
        default: return false; /* cli_getopt said why */
        }
    }
    if (optind < argc) {
        cli_error("export: unexpected argument '%s'", argv[optind]);
        return false;
    }
    if (!o->weights) {
        cli_error("export: --weights FILE is required");
        return false;
    }
    if (!o->out) {
        cli_error("export: -o OUT.onnx is required");
        return false;
    }
    return true;
}

int cmd_export(int argc, char **argv) {
    export_opts o = {0};
    if (!parse(argc, argv, &o)) return 2;
    rn_model *m;
    rn_norm norm;
    int rc = cli_load_model(o.weights, &o.w, &m, &norm);
    if (rc) return rc;
    rn_status s = rn_model_export_onnx(m, o.out, &norm, &o.onnx);
    rn_model_free(m);
    if (s != RN_OK) return cli_lib_error(s);
    return 0;
}
