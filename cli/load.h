/*
 * load.h — loading a model from a weights file for the commands that use trained weights
 * (predict, export): by the model name in the file's metadata, or by a --model name with the
 * input geometry and classes taken from the metadata.
 */
#ifndef RN_CLI_LOAD_H
#define RN_CLI_LOAD_H

#include "resnet.h"

#include <stdbool.h>

/* Builds the model and loads `weights` into it; model_name NULL takes the name from the file's
 * metadata. *norm receives the file's normalization (or the model's default). Prints a
 * one-line error and returns false on failure (*m is then NULL). */
bool cli_load_model(const char *weights, const char *model_name, rn_model **m, rn_norm *norm);

#endif
