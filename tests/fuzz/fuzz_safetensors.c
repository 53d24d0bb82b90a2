/*
 * fuzz_safetensors.c — rn_safetensors_read on arbitrary bytes, then every tensor's bytes
 * touched (they must lie inside the file) and the metadata read as a model's would be.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write("w.safetensors", data, size);
    rn_safetensors st;
    rn_status s = rn_safetensors_read(&st, fuzz_path("w.safetensors"));
    fuzz_check_error(s);
    if (s != RN_OK) return 0;
    const uint8_t *lo = st.file_buf, *hi = lo + st.file_size;
    unsigned sum = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const uint8_t *p = st.tensors[i].data;
        if (p < lo || p > hi || st.tensors[i].nbytes > (size_t)(hi - p)) abort();
        for (size_t j = 0; j < st.tensors[i].nbytes; j++) sum += p[j];
        if (rn_safetensors_find(&st, st.tensors[i].name) == NULL) abort();
    }
    static const char *const keys[] = {"in_channels", "in_height", "in_width", "num_classes"};
    for (int k = 0; k < 4; k++) {
        long v = 0;
        fuzz_check_error(rn_safetensors_meta_int(&st, "w.safetensors", keys[k], 1, 1000000, &v));
    }
    rn_safetensors_free(&st);
    return (int)(sum & 0);
}
