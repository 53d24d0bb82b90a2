/*
 * data.h — pieces shared by the data set loaders in src/data/: allocation of a set, class-name
 * lists, resizing, and one load function per format (rn_dataset_load dispatches on the spec).
 */
#ifndef RN_DATA_H
#define RN_DATA_H

#include "core/internal.h"

#include <stdbool.h>

/* Allocates d's images (n, c, h, w) and labels (n); class_names stays NULL. d is overwritten.
 * source names the file or folder the set comes from, for the message (NULL: none). */
rn_status rn_data_alloc(rn_dataset *d, const char *source, int n, int c, int h, int w,
                        int num_classes);

/* Sets d->class_names to "0", "1", ..., num_classes-1. */
rn_status rn_data_default_names(rn_dataset *d);

/* Reads class names, one per line (blank lines and surrounding spaces ignored), into d. If the
 * file does not exist and `optional` is true, falls back to rn_data_default_names. The count
 * must equal d->num_classes. */
rn_status rn_data_read_names(rn_dataset *d, const char *path, bool optional);

/* A deep copy of n class names (NULL on allocation failure). */
char **rn_data_copy_names(char *const *names, int n);

/* Resizes a planar image src (c, sh, sw) into dst (c, dh, dw): bilinear, antialiased when
 * shrinking, bit for bit as PIL's BILINEAR (resize.c). */
rn_status rn_data_resize_planes(uint8_t *dst, int dh, int dw, const uint8_t *src, int sh, int sw,
                                int c);

/* A decoded image (height, width, channels) as planar pixels dst (channels, h, w), resized as
 * rn_data_resize_planes does when its size differs: the one conversion behind folder: data
 * sets and rn_image_to_input (predict). */
rn_status rn_data_image_planes(uint8_t *dst, int h, int w, const rn_image *img);

/* Resizes every image of d to h x w in place (a new images array); nothing if already so. */
rn_status rn_data_resize_set(rn_dataset *d, int h, int w);

/* A growable list of strings (each malloc'd). */
typedef struct {
    char **v;
    int n, cap;
} rn_str_list;

void rn_str_list_free(rn_str_list *l);

/* The strcmp-sorted names in dir: its sub-folders (want_dirs) or its image files (named as
 * rn_image_name_ok accepts; a file named as an image format that is not read is an error that
 * names it); hidden entries are skipped. A folder that cannot be opened is RN_ERR_IO with a
 * message that names it. */
rn_status rn_data_list_dir(rn_str_list *out, const char *dir, bool want_dirs);

/* "dir/name" into buf; false if it does not fit. */
bool rn_data_path(char *buf, size_t size, const char *dir, const char *name);

/* The loaders behind rn_dataset_load; each fills train (and test unless NULL) or fails. */
rn_status rn_data_load_cifar10(rn_dataset *train, rn_dataset *test, const char *dir);
rn_status rn_data_load_packed(rn_dataset *train, rn_dataset *test, const char *dir);
rn_status rn_data_load_cifar100(rn_dataset *train, rn_dataset *test, const char *dir,
                                bool coarse);
rn_status rn_data_load_mnist(rn_dataset *train, rn_dataset *test, const char *dir);
rn_status rn_data_load_folder(rn_dataset *train, rn_dataset *test, const char *root,
                              const rn_data_opts *opts, rn_data_progress progress, void *user);

#endif
