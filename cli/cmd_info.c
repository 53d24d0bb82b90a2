/*
 * cmd_info.c — `resnet info MODEL`: the layer table (name, output shape, parameters,
 * multiply-adds), then `params: N` and `macs: N multiply-adds per image (N M)` for one forward
 * pass of one image, the numbers with thousands separators.
 */
#include "cli.h"
#include "format.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: resnet info MODEL [--in-channels C] [--size HxW] [--classes K]\n"
            "Prints MODEL's layers, then its parameter count and multiply-adds per image\n"
            "(thousands separated by commas).\n"
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
    if (!cli_check_model(argv[optind])) return 2;
    rn_model *m;
    rn_status s = rn_model_create(&m, argv[optind], &mo, 0);
    if (s != RN_OK) { /* the geometry options do not fit the model */
        cli_lib_error(s);
        return CLI_EXIT_USAGE;
    }
    rn_model_opts o = rn_model_get_opts(m);
    printf("%s: input %dx%dx%d, %d class%s\n\n", rn_model_name(m), o.in_channels, o.in_height,
           o.in_width, o.num_classes, o.num_classes == 1 ? "" : "es");
    printf("%-28s %-14s %-16s %12s %14s\n", "layer", "op", "output", "params", "macs");
    for (int i = 0; i < rn_model_num_layers(m); i++) {
        rn_layer_info l = rn_model_layer(m, i);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l.c, l.h, l.w);
        char params[32], macs[32];
        printf("%-28s %-14s %-16s %12s %14s\n", l.name[0] ? l.name : "-", l.op, shape,
               cli_thousands(params, sizeof params, l.params),
               cli_thousands(macs, sizeof macs, l.macs));
    }
    char params[32], macs[32], si[32];
    printf("\nparams: %s\nmacs: %s multiply-adds per image (%s)\n",
           cli_thousands(params, sizeof params, rn_model_param_count(m)),
           cli_thousands(macs, sizeof macs, rn_model_macs(m)),
           cli_si(si, sizeof si, (double)rn_model_macs(m)));
    rn_model_free(m);
    return 0;
}
