/*
 * protobuf.h — a minimal writer of the protocol-buffers wire format, enough for ONNX files
 * (onnx.c): varint, fixed32 and length-delimited fields, and nested messages.
 *
 * Why not protobuf-c with onnx.proto: an ONNX model needs only these three wire types, and the
 * writer below is about a hundred lines, while protobuf-c would add a build-time code generator
 * (protoc-c), a runtime library, generated sources and a copy of onnx.proto to keep in step.
 * The output is checked by onnx.checker and read by onnxruntime in tests/onnx_test.sh.
 *
 * Usage: rn_pb_begin/rn_pb_end bracket a nested message (its length is written once its end is
 * known, by moving the contents up). A failed allocation sets `failed` and every later call
 * does nothing, so a writer checks it once at the end.
 */
#ifndef RN_PROTOBUF_H
#define RN_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    bool failed; /* an allocation failed: the contents are incomplete */
} rn_pb_writer;

/* Field writers: `field` is the field number from the .proto file. */
/* int32/int64/enum/bool (wire type 0) */
void rn_pb_varint(rn_pb_writer *w, int field, uint64_t v);
void rn_pb_int64(rn_pb_writer *w, int field, int64_t v);    /* negative values as 10-byte varints */
void rn_pb_fixed32(rn_pb_writer *w, int field, uint32_t v); /* wire type 5 */
void rn_pb_float(rn_pb_writer *w, int field, float v);      /* as fixed32, IEEE 754 little-endian */
void rn_pb_bytes(rn_pb_writer *w, int field, const void *data, size_t n); /* wire type 2 */
void rn_pb_string(rn_pb_writer *w, int field, const char *s);
/* A float array as little-endian bytes in a bytes field (ONNX's TensorProto.raw_data). */
void rn_pb_floats_le(rn_pb_writer *w, int field, const float *v, size_t n);

/* Starts a nested message in field `field`; returns the mark rn_pb_end needs. */
size_t rn_pb_begin(rn_pb_writer *w, int field);
/* Ends the nested message started at mark: inserts its length before its contents. */
void rn_pb_end(rn_pb_writer *w, size_t mark);

void rn_pb_free(rn_pb_writer *w);

#endif
