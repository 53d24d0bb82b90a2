/*
 * source.h — the index of a streamed data set: where each encoded image lies and its label,
 * without any pixels. A folder (source.c) and WebDataset tar shards (shards.c) give the same
 * index, and rn_source_read fetches one image's bytes by random access, so the decoding
 * threads of stream.c can read any sample in any order. The index costs about 30 bytes plus
 * the file name per image (40 MB for ImageNet's 1.28 M), whatever the image sizes.
 */
#ifndef RN_DATA_SOURCE_H
#define RN_DATA_SOURCE_H

#include "core/internal.h"

#include <stdbool.h>

typedef struct {
    int n;               /* images */
    int num_classes;
    char **class_names;  /* num_classes strings (folder names, or "0", "1", ... for shards) */
    char **files;        /* n_files paths: class folders (folder:) or shard files (shards:) */
    int n_files;
    int32_t *label;      // (n)
    int32_t *file;       // (n) index into files
    int64_t *offset;     // (n) shards: the member's first byte in its tar file
    int64_t *size;       // (n) shards: the member's bytes; folder: -1 (the whole file)
    int64_t *name_at;    // (n) offset of the image's name (file or member name) in names
    char *names;         /* '\0'-terminated names, back to back */
    size_t names_len, names_cap;
} rn_source;

/* Indexes ROOT/split/CLASS/IMAGE (IMAGE a .png, .jpg or .jpeg, any case; ImageNet's layout is
 * ROOT/train/CLASS/NAME.JPEG and ROOT/val/CLASS/NAME). Classes are ROOT/train's sub-folders sorted by
 * strcmp, whatever the split; a class folder of the split that is not among them is an error.
 * Images are in class order, then file-name order. */
rn_status rn_source_open_folder(rn_source *src, const char *root, const char *split);

/* Indexes tar shards in WebDataset's layout: `pattern` names the files, with brace ranges
 * ({000000..000127}: every number, zero-padded to the first bound's width) and glob wildcards;
 * each sample is the consecutive members KEY.EXT sharing KEY (the name up to the first dot of
 * its last path component), with one image (EXT jpg, jpeg or png, any case) and KEY.cls, an
 * integer label in ASCII. Other members (KEY.json, ...) are ignored. Labels must lie in
 * [0, num_classes) when num_classes > 0; num_classes 0 takes 1 + the largest label. Plain
 * (uncompressed) tar only, so that each image can be read by its offset. A missing .cls or
 * image member, a bad or out-of-range label, an empty shard, a truncated or compressed shard:
 * each an RN_ERR_BAD_FILE naming the shard (and member). */
rn_status rn_source_open_shards(rn_source *src, const char *pattern, int num_classes);

/* Writes every image of src to tar shards dir/PREFIX-000000.tar, PREFIX-000001.tar, ...,
 * per_shard images each, in src's order: KEY.EXT with the file's bytes unchanged (EXT its
 * extension in lower case) and KEY.cls with the label, KEY the image's index and base name.
 * Each shard is written to .tmp first and renamed when complete. *n_shards gets the count. */
rn_status rn_source_pack_shards(const rn_source *src, const char *dir, const char *prefix,
                                int per_shard, int *n_shards);

/* Reads image i's encoded bytes into *buf (grown with realloc as needed; *cap its size) and sets
 * *size. Safe to call from several threads at once with different buffers. */
rn_status rn_source_read(const rn_source *src, int i, uint8_t **buf, size_t *cap, size_t *size);

/* Image i's name for messages: "ROOT/split/CLASS/FILE" or "SHARD.tar:MEMBER". */
void rn_source_name(const rn_source *src, int i, char *buf, size_t size);

void rn_source_free(rn_source *src);

/* Internal to source.c and shards.c: appends one image to the index (false: out of memory). */
bool rn_source_add(rn_source *src, int file, int64_t offset, int64_t size, int label,
                   const char *name);

#endif
