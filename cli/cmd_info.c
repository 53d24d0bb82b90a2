/*
 * cmd_info.c — `resnet info MODEL`: the layer table (name, output shape, parameters,
 * multiply-adds), then `params: N` and `macs: N` for one forward pass of one image.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet info MODEL [--in-channels C] [--size HxW] [--classes K]\n"
            "Prints MODEL's layers, then its parameter count and multiply-adds per image.\n"
            "Models:");
    for (const char *const *n = rn_model_names(); *n; n++) fprintf(f, " %s", *n);
    fprintf(f, "\n");
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"in-channels", required_argument, 0, CLI_OPT_IN_CHANNELS},
                                         {"size", required_argument, 0, CLI_OPT_SIZE},
                                         {"classes", required_argument, 0, CLI_OPT_CLASSES},
                                         {"help", no_argument, 0, CLI_OPT_HELP},
                                         {0, 0, 0, 0}};
    rn_model_opts mo = {0};
    int c;
    optind = 1;
    while ((c = cli_getopt("info", argc, argv, "h", opts, NULL)) != -1) {
        if (c == CLI_OPT_HELP) {
            usage(stdout);
            return 0;
        }
        if (c == '?' || !cli_model_opt(c, optarg, &mo)) return 2;
    }
    if (optind != argc - 1) {
        cli_error("info: expected one MODEL name, got %d (see `resnet info --help`)",
                  argc - optind);
        return 2;
    }
    rn_model *m;
    rn_status s = rn_model_create(&m, argv[optind], &mo, 0);
    if (s != RN_OK) return cli_lib_error(s);
    rn_model_opts o = rn_model_get_opts(m);
    printf("%s: input %dx%dx%d, %d classes\n\n", rn_model_name(m), o.in_channels, o.in_height,
           o.in_width, o.num_classes);
    printf("%-28s %-14s %-16s %12s %14s\n", "layer", "op", "output", "params", "macs");
    for (int i = 0; i < rn_model_num_layers(m); i++) {
        rn_layer_info l = rn_model_layer(m, i);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l.c, l.h, l.w);
        printf("%-28s %-14s %-16s %12lld %14lld\n", l.name[0] ? l.name : "-", l.op, shape,
               (long long)l.params, (long long)l.macs);
    }
    printf("\nparams: %lld\nmacs: %lld\n", (long long)rn_model_param_count(m),
           (long long)rn_model_macs(m));
    rn_model_free(m);
    return 0;
}
