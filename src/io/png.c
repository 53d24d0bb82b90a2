/*
 * png.c — PNG chunk checks before decoding (see png.h). A chunk is: 4-byte big-endian data
 * length (at most 2^31 - 1), 4-byte type, the data, then a CRC-32 (zlib's crc32) of type and
 * data.
 */
#include "io/png.h"

#include <string.h>

#include <zlib.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

bool rn_png_is_png(const uint8_t *buf, size_t n) {
    return n >= sizeof png_signature && memcmp(buf, png_signature, sizeof png_signature) == 0;
}

rn_status rn_png_check(const uint8_t *buf, size_t n, const char *path) {
    size_t at = sizeof png_signature;
    while (at < n) {
        if (n - at < 12)
            return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: file ends inside the "
                           "chunk header at byte %zu; truncated)", RN_SHOW(path), at);
        uint32_t len = be32(buf + at);
        const uint8_t *type = buf + at + 4;
        char name[5];
        for (int i = 0; i < 4; i++) name[i] = is_letter(type[i]) ? (char)type[i] : '?';
        name[4] = 0;
        if (!is_letter(type[0]) || !is_letter(type[1]) || !is_letter(type[2]) ||
            !is_letter(type[3]))
            return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: chunk type '%s' at "
                           "byte %zu is not 4 letters; corrupt)", RN_SHOW(path), name, at);
        if (len > 0x7fffffffu)
            return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: chunk %s at byte %zu "
                           "claims %u bytes, above 2^31 - 1; corrupt)", RN_SHOW(path), name,
                           at, len);
        if (n - at - 12 < len)
            return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: file ends inside "
                           "chunk %s at byte %zu; truncated)", RN_SHOW(path), name, at);
        uint32_t want = be32(buf + at + 8 + len);
        uint32_t got = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, (uInt)len + 4);
        if (got != want)
            return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: chunk %s at byte %zu "
                           "has CRC 0x%08x, its contents give 0x%08x; corrupt)",
                           RN_SHOW(path), name, at, want, got);
        if (memcmp(type, "IEND", 4) == 0) return RN_OK;
        at += 12 + (size_t)len;
    }
    return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (PNG: no IEND chunk; truncated)",
                   RN_SHOW(path));
}
