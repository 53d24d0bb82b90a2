/*
 * save_weights.c — writes a weights file with the library's own writer (rn_model_save), for the
 * shell tests that run `resnet predict` on it (built by `make tests`, not a test itself):
 *
 *   save_weights MODEL IN OUT [MEAN STD]
 *
 * builds MODEL (default geometry), loads IN into it ("-" keeps the seed-0 initialization) and
 * saves it to OUT with the metadata rn_model_save writes; MEAN and STD ("0.5,0.5,0.5") replace
 * the normalization stored there. Exit status 0 on success, else 1 with the error on stderr.
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

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: save_weights MODEL IN|- OUT [MEAN STD]\n");
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
    if (s == RN_OK) s = rn_model_save(m, argv[3], &norm);
    if (s != RN_OK) fprintf(stderr, "save_weights: %s\n", rn_error_message());
    rn_model_free(m);
    return s == RN_OK ? 0 : 1;
}
