/*
 * version.c — the version of the library that is linked, for programs built against another
 * header (the header's own is RN_VERSION_STRING).
 */
#include "resnet.h"

const char *rn_version(void) { return RN_VERSION_STRING; }
