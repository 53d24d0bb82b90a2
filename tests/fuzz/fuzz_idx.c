/*
 * fuzz_idx.c — the MNIST-style IDX loader (mnist:DIR) on arbitrary files. Input parts (see
 * fuzz_split): the images file, then the labels file; both are named .gz, which zlib reads
 * whether or not they are gzip-compressed, so the seeds hold both kinds.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    fuzz_split(data, size, 2, part, len);
    fuzz_write("train-images-idx3-ubyte.gz", part[0], len[0]);
    fuzz_write("train-labels-idx1-ubyte.gz", part[1], len[1]);
    char spec[600];
    snprintf(spec, sizeof spec, "mnist:%s", fuzz_dir());
    rn_dataset train;
    rn_status s = rn_dataset_load(&train, NULL, spec, NULL);
    fuzz_check_error(s);
    if (s == RN_OK) {
        for (int i = 0; i < train.n; i++)
            if (train.labels[i] < 0 || train.labels[i] >= train.num_classes) abort();
        rn_dataset_free(&train);
    }
    return 0;
}
