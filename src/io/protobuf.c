/*
 * protobuf.c — the protocol-buffers wire-format writer of protobuf.h: each field is a key
 * (field number << 3 | wire type) as a varint, then a varint, 4 little-endian bytes, or a
 * varint length and that many bytes.
 */
#include "io/protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* Makes room for n more bytes; false (and `failed` set) when it cannot. */
static bool reserve(rn_pb_writer *w, size_t n) {
    if (w->failed) return false;
    if (w->len + n <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n) cap *= 2;
    uint8_t *p = realloc(w->buf, cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

/* Encodes v as a varint into out (10 bytes at most); returns its length. */
static size_t encode_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void raw_varint(rn_pb_writer *w, uint64_t v) {
    if (!reserve(w, 10)) return;
    w->len += encode_varint(w->buf + w->len, v);
}

static void raw_bytes(rn_pb_writer *w, const void *data, size_t n) {
    if (!reserve(w, n)) return;
    if (n) memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void key(rn_pb_writer *w, int field, int wire) {
    raw_varint(w, (uint64_t)field << 3 | (uint64_t)wire);
}

void rn_pb_varint(rn_pb_writer *w, int field, uint64_t v) {
    key(w, field, WIRE_VARINT);
    raw_varint(w, v);
}

void rn_pb_int64(rn_pb_writer *w, int field, int64_t v) { rn_pb_varint(w, field, (uint64_t)v); }

void rn_pb_fixed32(rn_pb_writer *w, int field, uint32_t v) {
    key(w, field, WIRE_FIXED32);
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    raw_bytes(w, b, 4);
}

void rn_pb_float(rn_pb_writer *w, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    rn_pb_fixed32(w, field, u);
}

void rn_pb_bytes(rn_pb_writer *w, int field, const void *data, size_t n) {
    key(w, field, WIRE_LEN);
    raw_varint(w, n);
    raw_bytes(w, data, n);
}

void rn_pb_string(rn_pb_writer *w, int field, const char *s) {
    rn_pb_bytes(w, field, s, strlen(s));
}

void rn_pb_floats_le(rn_pb_writer *w, int field, const float *v, size_t n) {
    key(w, field, WIRE_LEN);
    raw_varint(w, 4 * n);
    if (!reserve(w, 4 * n)) return;
    uint8_t *out = w->buf + w->len;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        out[4 * i] = (uint8_t)u;
        out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16);
        out[4 * i + 3] = (uint8_t)(u >> 24);
    }
    w->len += 4 * n;
}

size_t rn_pb_begin(rn_pb_writer *w, int field) {
    key(w, field, WIRE_LEN);
    return w->len;
}

void rn_pb_end(rn_pb_writer *w, size_t mark) {
    if (w->failed) return;
    uint8_t len[10];
    size_t n = encode_varint(len, w->len - mark);
    if (!reserve(w, n)) return;
    memmove(w->buf + mark + n, w->buf + mark, w->len - mark);
    memcpy(w->buf + mark, len, n);
    w->len += n;
}

void rn_pb_free(rn_pb_writer *w) {
    free(w->buf);
    *w = (rn_pb_writer){0};
}
