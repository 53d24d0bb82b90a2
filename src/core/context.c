/*
 * context.c — the execution context (backend and thread count) and the backend registry.
 */
#include "backend.h"
#include "internal.h"

#include <string.h>
#include <unistd.h>

const rn_backend rn_backend_reference = {
    .name = "reference",
    .conv2d_scratch_floats = rn_conv2d_scratch_floats,
    .conv2d_forward = rn_conv2d_forward,
    .conv2d_backward = rn_conv2d_backward,
    .batchnorm_forward_train = rn_batchnorm_forward_train,
    .batchnorm_forward_eval = rn_batchnorm_forward_eval,
    .batchnorm_backward = rn_batchnorm_backward,
    .relu_forward = rn_relu_forward,
    .relu_backward = rn_relu_backward,
    .add_forward = rn_add_forward,
    .add_backward = rn_add_backward,
    .shortcut_a_forward = rn_shortcut_a_forward,
    .shortcut_a_backward = rn_shortcut_a_backward,
    .maxpool_forward = rn_maxpool_forward,
    .maxpool_backward = rn_maxpool_backward,
    .avgpool_forward = rn_avgpool_forward,
    .avgpool_backward = rn_avgpool_backward,
    .linear_forward = rn_linear_forward,
    .linear_backward = rn_linear_backward,
};

/* Every built backend, the default first. */
static const rn_backend *const rn_backends[] = {&rn_backend_cpu, &rn_backend_cpu_winograd,
                                                &rn_backend_reference};

const rn_backend *rn_backend_find(const char *name) {
    for (size_t i = 0; i < sizeof rn_backends / sizeof rn_backends[0]; i++)
        if (strcmp(rn_backends[i]->name, name) == 0) return rn_backends[i];
    return NULL;
}

rn_status rn_ctx_create(rn_ctx **out, const char *backend, int nthreads) {
    *out = NULL;
    const rn_backend *b = backend ? rn_backend_find(backend) : rn_backends[0];
    if (!b) return rn_fail(RN_ERR_BAD_ARG, "unknown backend '%s' (expected: cpu, cpu-winograd, reference)", backend);
    if (nthreads < 0) return rn_fail(RN_ERR_BAD_ARG, "thread count %d must be >= 0", nthreads);
    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    rn_ctx *c = rn_calloc(sizeof *c);
    if (!c) return rn_fail(RN_ERR_NOMEM, "cannot allocate a context");
    c->backend = b;
    c->nthreads = nthreads;
    *out = c;
    return RN_OK;
}

void rn_ctx_free(rn_ctx *ctx) { rn_free(ctx); }
const char *rn_ctx_backend_name(const rn_ctx *ctx) { return ctx->backend->name; }
int rn_ctx_threads(const rn_ctx *ctx) { return ctx->nthreads; }
