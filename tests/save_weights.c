/*
 * save_weights.c — writes a weights file with the library's own writer (rn_model_save), for the
 * shell tests that run `resnet predict` on it (built by `make tests`, not a test itself):
 *
 *   save_weights MODEL IN OUT [MEAN STD] [--names FILE]
 *
 * builds MODEL (default geometry), loads IN into it ("-" keeps the seed-0 initialization) and
 * saves it to OUT with the metadata rn_model_save writes; MEAN and STD ("0.5,0.5,0.5") replace
 * the normalization stored there; --names saves with rn_model_save_named the class names of
 * FILE (one per line). Exit status 0 on success, else 1 with the error on stderr.
 */
#include "resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse3(const char *s, float *v, int n) {
    char *end;
    for (int i = 0; i < n; i++) {
        v[i] = strtof(s, &end);
        if (end == s || (*end != (i + 1 < n ? ',' : 0))) return 0;
        s = end + 1;
    }
    return 1;
}

/* Up to 1000 names of FILE, one per line (line breaks removed); the count, or -1. */
static int read_names(const char *path, char **names) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (n < 1000 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        names[n++] = strdup(line);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    static char *names[1000];
    int n_names = -1;
    if (argc >= 6 && !strcmp(argv[argc - 2], "--names")) {
        if ((n_names = read_names(argv[argc - 1], names)) < 0) {
            fprintf(stderr, "save_weights: cannot read %s\n", argv[argc - 1]);
            return 1;
        }
        argc -= 2;
    }
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: save_weights MODEL IN|- OUT [MEAN STD] [--names FILE]\n");
        return 1;
    }
    rn_model *m;
    rn_status s = rn_model_create(&m, argv[1], NULL, 0);
    if (s != RN_OK) {
        fprintf(stderr, "save_weights: %s\n", rn_error_message());
        return 1;
    }
    rn_norm norm = rn_model_default_norm(m);
    if (strcmp(argv[2], "-") != 0) s = rn_model_load(m, argv[2], &norm);
    if (s == RN_OK && argc == 6 &&
        (!parse3(argv[4], norm.mean, norm.channels) || !parse3(argv[5], norm.std, norm.channels))) {
        fprintf(stderr, "save_weights: MEAN and STD must be %d comma-separated numbers\n",
                norm.channels);
        rn_model_free(m);
        return 1;
    }
    if (s == RN_OK && n_names >= 0 && n_names != rn_model_get_opts(m).num_classes) {
        fprintf(stderr, "save_weights: %d names for %d classes\n", n_names,
                rn_model_get_opts(m).num_classes);
        rn_model_free(m);
        return 1;
    }
    if (s == RN_OK) s = rn_model_save_named(m, argv[3], &norm, n_names >= 0 ? names : NULL);
    for (int i = 0; i < n_names; i++) free(names[i]);
    if (s != RN_OK) fprintf(stderr, "save_weights: %s\n", rn_error_message());
    rn_model_free(m);
    return s == RN_OK ? 0 : 1;
}
