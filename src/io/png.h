/*
 * png.h — the container checks stb_image leaves out: every chunk of a PNG file complete, its
 * CRC right, and the file ending with an IEND chunk (what libpng and Pillow refuse, stb accepts).
 */
#ifndef RN_PNG_H
#define RN_PNG_H

#include "core/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* True if buf (n bytes) starts with the 8-byte PNG signature. */
bool rn_png_is_png(const uint8_t *buf, size_t n);

/* Walks the chunks of a PNG file held in buf (n bytes, starting with the signature): each must
 * be whole, have a 4-letter type and a CRC-32 matching its type and data, and an IEND chunk
 * must come before the end. Bytes after IEND are ignored, as libpng does. RN_ERR_BAD_FILE with
 * a message naming path otherwise. */
rn_status rn_png_check(const uint8_t *buf, size_t n, const char *path);

#endif
