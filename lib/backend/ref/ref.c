/* PLACEHOLDER (to be replaced by the backend kernels work): lifecycle and memory only. */
#include <string.h>
#include "../../internal.h"

typedef struct { scalar_ctx *ctx; } ref_self;

static scalar_status ref_create(void **out, scalar_ctx *ctx, const char *params)
{
    (void)params;
    ref_self *s = scalar__alloc(ctx, sizeof *s, "cpu-ref");
    if (!s) return SCALAR_E_NOMEM;
    s->ctx = ctx;
    *out = s;
    return SCALAR_OK;
}
static void ref_destroy(void *self) { ref_self *s = self; scalar__free(s->ctx, s); }
static scalar_status ref_alloc(void *self, void **out, size_t size)
{
    ref_self *s = self;
    *out = scalar__alloc_raw(s->ctx, size);
    return *out ? SCALAR_OK : scalar__error_set(SCALAR_E_NOMEM, "cpu-ref: out of memory");
}
static void ref_free(void *self, void *p, size_t size) { ref_self *s = self; scalar__free_raw(s->ctx, p, size); }

const scalar_backend_ops scalar__backend_cpu_ref_ops = {
    .abi_version = SCALAR_BACKEND_ABI_VERSION, .struct_size = sizeof(scalar_backend_ops),
    .name = "cpu-ref", .create = ref_create, .destroy = ref_destroy,
    .buffer_alloc = ref_alloc, .buffer_free = ref_free,
};
