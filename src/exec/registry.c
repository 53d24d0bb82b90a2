/*
 * registry.c — the backends this build has, found by name, and the execution context (which
 * backend, how many threads). It sits above src/ops and src/cpu, which each define their
 * tables without knowing of the other.
 */
#include "core/internal.h"
#include "cpu/bf16.h"
#include "cpu/cpu.h"
#include "ops/backend.h"

#include <string.h>
#include <unistd.h>

/* Every built backend, the default first: Winograd where it is faster, direct elsewhere. */
static const rn_backend *const rn_backends[] = {&rn_backend_cpu_winograd, &rn_backend_cpu,
                                                &rn_backend_cpu_bf16, &rn_backend_reference};

const rn_backend *rn_backend_find(const char *name) {
    for (size_t i = 0; i < sizeof rn_backends / sizeof rn_backends[0]; i++)
        if (strcmp(rn_backends[i]->name, name) == 0) return rn_backends[i];
    return NULL;
}

rn_status rn_ctx_create(rn_ctx **out, const char *backend, int nthreads) {
    *out = NULL;
    const rn_backend *b = backend ? rn_backend_find(backend) : rn_backends[0];
    if (!b) return rn_fail(RN_ERR_BAD_ARG, "unknown backend '%s' (expected: cpu, cpu-winograd, cpu-bf16, reference)",
                             backend);
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
