/*
 * fuzz_config.c — rn_train_config_load (a run's config.json, read by --resume) on arbitrary
 * bytes.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write("config.json", data, size);
    rn_train_config c;
    memset(&c, 0, sizeof c);
    fuzz_check_error(rn_train_config_load(&c, fuzz_dir()));
    return 0;
}
