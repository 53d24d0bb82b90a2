/*
 * fuzz_cifar.c — the CIFAR-style loaders (cifar10:DIR, and packed:DIR when a meta.json is
 * given) on arbitrary files. Input parts (see fuzz_split): meta.json, batches.meta.txt,
 * data_batch_1.bin, then test_batch.bin; data_batch_2..5.bin hold one valid record each.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) {
        static uint8_t rec[1 + 3072];
        for (int b = 2; b <= 5; b++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", b);
            rec[0] = (uint8_t)b;
            fuzz_write(name, rec, sizeof rec);
        }
        ready = true;
    }
    const uint8_t *part[4];
    size_t len[4];
    fuzz_split(data, size, 4, part, len);
    fuzz_write("meta.json", part[0], len[0]);
    fuzz_write("batches.meta.txt", part[1], len[1]);
    fuzz_write("data_batch_1.bin", part[2], len[2]);
    fuzz_write("test_batch.bin", part[3], len[3]);
    char spec[600];
    snprintf(spec, sizeof spec, "%s:%s", len[0] != SIZE_MAX ? "packed" : "cifar10", fuzz_dir());
    rn_dataset train, test;
    rn_status s = rn_dataset_load(&train, &test, spec, NULL);
    fuzz_check_error(s);
    if (s == RN_OK) {
        for (int i = 0; i < train.n; i++)
            if (train.labels[i] < 0 || train.labels[i] >= train.num_classes) abort();
        rn_dataset_free(&train);
        rn_dataset_free(&test);
    }
    return 0;
}
