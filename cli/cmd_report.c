/*
 * cmd_report.c — `resnet report RUN_DIR... -o report.html`: one self-contained HTML page of the
 * given training runs (see report.h), regenerated from their files alone.
 */
#include "cli.h"
#include "report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: resnet report RUN_DIR... [-o report.html] [--grad-step N] [--title TEXT]\n"
"Draws training runs (directories of `resnet train`) into one self-contained HTML page:\n"
"a summary table; loss, error, learning rate and throughput against iterations, every run\n"
"overlaid; and for runs trained with --log-grads, the gradient norm reaching each block\n"
"against depth and a layer x iteration heatmap of gradient norms.\n"
"  -o, --out FILE    the page to write (default report.html)\n"
"  --grad-step N     iteration of the block-gradient chart (default: the last logged)\n"
"  --title TEXT      the page's title\n");
}

int cmd_report(int argc, char **argv) {
    enum { OPT_GRAD_STEP = CLI_OPT_OWN, OPT_TITLE };
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                         {"grad-step", required_argument, 0, OPT_GRAD_STEP},
                                         {"title", required_argument, 0, OPT_TITLE},
                                         {"help", no_argument, 0, CLI_OPT_HELP},
                                         {0, 0, 0, 0}};
    const char *out = "report.html";
    rp_options ro = {.grad_step = -1};
    long v;
    int o;
    optind = 1;
    while ((o = cli_getopt("report", argc, argv, "ho:", opts, NULL)) != -1) {
        switch (o) {
        case 'o': out = optarg; break;
        case OPT_GRAD_STEP:
            if (!cli_parse_int("--grad-step", optarg, 0, 2000000000, &v)) return 2;
            ro.grad_step = v;
            break;
        case OPT_TITLE: ro.title = optarg; break;
        case CLI_OPT_HELP: usage(stdout); return 0;
        default: return 2; /* cli_getopt said why */
        }
    }
    int n = argc - optind;
    if (n < 1) {
        cli_error("report: no run directories given (usage: resnet report RUN_DIR... -o FILE)");
        return 2;
    }
    int charts = 0;
    if (!rp_write_report(out, (const char *const *)argv + optind, n, &ro, &charts)) return 1;
    printf("wrote %s (%d run%s, %d charts)\n", out, n, n == 1 ? "" : "s", charts);
    return 0;
}
