/*
 * registry.c - which backends exist, and making a context's instance.
 *
 * The built-in backends are static const tables; scalar_backend_register
 * copies an outside table into a zeroed slot under a mutex (sqlite3_vfs_register
 * style).  A context's backend keeps the native table and instance plus a
 * cpu-ref instance; dispatch.c sends a kernel to cpu-ref when the native slot
 * is NULL or declines the call (one predictable branch per kernel call).
 */
#include <pthread.h>
#include <string.h>

#include "../internal.h"

#define MAX_BACKENDS 32

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static scalar_backend_ops registered[MAX_BACKENDS]; /* copies of outside tables */
static size_t n_registered;

static const scalar_backend_ops *builtin(size_t i)
{
    switch (i) {
    case 0: return &scalar__backend_cpu_ops;
    case 1: return &scalar__backend_cpu_ref_ops;
    default: return NULL;
    }
}
#define N_BUILTIN 2u

size_t scalar_backend_count(void)
{
    pthread_mutex_lock(&registry_lock);
    size_t n = N_BUILTIN + n_registered;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

/* Entries are never removed or moved, so a pointer stays valid after unlock. */
static const scalar_backend_ops *entry(size_t index)
{
    if (index < N_BUILTIN)
        return builtin(index);
    pthread_mutex_lock(&registry_lock);
    const scalar_backend_ops *ops =
        index - N_BUILTIN < n_registered ? &registered[index - N_BUILTIN] : NULL;
    pthread_mutex_unlock(&registry_lock);
    return ops;
}

const char *scalar_backend_name(size_t index)
{
    const scalar_backend_ops *ops = entry(index);
    return ops ? ops->name : NULL;
}

static const scalar_backend_ops *lookup(const char *name)
{
    for (size_t i = 0;; i++) {
        const scalar_backend_ops *ops = entry(i);
        if (!ops)
            return NULL;
        if (strcmp(ops->name, name) == 0)
            return ops;
    }
}

static int valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

scalar_status scalar_backend_register(const scalar_backend_ops *ops)
{
    static const char fn[] = "scalar_backend_register";
    if (!ops)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ops is NULL", fn);
    if (ops->abi_version != SCALAR_BACKEND_ABI_VERSION)
        return scalar__error_set(SCALAR_E_VERSION,
                                 "%s: abi_version %u, this library speaks %u", fn,
                                 (unsigned)ops->abi_version, (unsigned)SCALAR_BACKEND_ABI_VERSION);
    if (ops->struct_size < SCALAR_BACKEND_OPS_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION, "%s: struct_size %zu < %u", fn,
                                 ops->struct_size, (unsigned)SCALAR_BACKEND_OPS_V1_SIZE);
    if (!valid_name(ops->name))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: name must be 1-64 characters of [a-z0-9-]", fn);
    if (!ops->create || !ops->destroy || !ops->buffer_alloc || !ops->buffer_free)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: backend \"%s\" lacks a mandatory slot (create, destroy, "
                                 "buffer_alloc, buffer_free)", fn, ops->name);
    /* Slots past the caller's struct_size (a backend built against an older
     * header: 192 bytes for version 1) stay NULL, so their kernels run on
     * cpu-ref; bytes past our own size are never read. */
    scalar_backend_ops copy;
    memset(&copy, 0, sizeof copy);
    memcpy(&copy, ops, ops->struct_size < sizeof copy ? ops->struct_size : sizeof copy);
    copy.struct_size = sizeof copy;

    scalar_status st = SCALAR_OK;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < N_BUILTIN + n_registered && st == SCALAR_OK; i++) {
        const scalar_backend_ops *e = i < N_BUILTIN ? builtin(i) : &registered[i - N_BUILTIN];
        if (strcmp(e->name, copy.name) == 0)
            st = scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a backend named \"%s\" exists",
                                   fn, copy.name);
    }
    if (st == SCALAR_OK && n_registered == MAX_BACKENDS)
        st = scalar__error_set(SCALAR_E_NOMEM, "%s: registry full (%d backends)", fn,
                               MAX_BACKENDS);
    if (st == SCALAR_OK)
        registered[n_registered++] = copy;
    pthread_mutex_unlock(&registry_lock);
    return st;
}

scalar_status scalar__backend_create(scalar_backend **out, scalar_ctx *ctx, const char *name)
{
    const scalar_backend_ops *native = lookup(name ? name : "cpu");
    const scalar_backend_ops *ref = &scalar__backend_cpu_ref_ops;
    scalar_status st;

    *out = NULL;
    if (!native)
        return scalar__error_set(SCALAR_E_NOT_FOUND,
                                 "scalar_ctx_create: no backend named \"%s\" (see `scalar info`)",
                                 name);
    scalar_backend *be = scalar__calloc(ctx, 1, sizeof *be, "scalar_ctx_create");
    if (!be)
        return SCALAR_E_NOMEM;
    be->ctx = ctx;
    be->native = native;
    be->ref = ref;
    be->ops = *native;
    if ((st = native->create(&be->self, ctx, NULL)) != SCALAR_OK)
        goto fail;
    if (native != ref && (st = ref->create(&be->ref_self, ctx, NULL)) != SCALAR_OK)
        goto fail;
    be->is_host = native->buffer_is_host ? native->buffer_is_host(be->self) : 1;
    *out = be;
    return SCALAR_OK;
fail:
    scalar__backend_destroy(be);
    return st;
}

void scalar__backend_destroy(scalar_backend *be)
{
    if (!be)
        return;
    if (be->self)
        be->native->destroy(be->self);
    if (be->ref_self)
        be->ref->destroy(be->ref_self);
    scalar__free(be->ctx, be);
}

scalar_backend *scalar_ctx_backend(const scalar_ctx *ctx)
{
    return ctx ? ctx->backend : NULL;
}

const char *scalar_ctx_backend_name(const scalar_ctx *ctx)
{
    return ctx ? ctx->backend->native->name : NULL;
}

const char *scalar_backend_describe(const scalar_backend *backend)
{
    if (!backend)
        return "";
    if (backend->native->describe) {
        const char *d = backend->native->describe(backend->self);
        if (d)
            return d;
    }
    return backend->native->name;
}

int32_t scalar_backend_is_host(const scalar_backend *backend)
{
    return backend ? backend->is_host : 0;
}

int32_t scalar_backend_supports(const scalar_backend *backend, int32_t op)
{
    if (!backend || op < 0 || op >= SCALAR_OP_COUNT)
        return 0;
    const scalar_backend_ops *n = backend->native;
    if (n->supports)
        return n->supports(backend->self, op) ? 1 : 0;
    switch (op) {
    case SCALAR_OP_SGEMM: return n->sgemm != NULL;
    case SCALAR_OP_BIAS_ADD: return n->bias_add != NULL;
    case SCALAR_OP_GELU_FORWARD: return n->gelu_forward != NULL;
    case SCALAR_OP_GELU_BACKWARD: return n->gelu_backward != NULL;
    case SCALAR_OP_LAYERNORM_FORWARD: return n->layernorm_forward != NULL;
    case SCALAR_OP_LAYERNORM_BACKWARD: return n->layernorm_backward != NULL;
    case SCALAR_OP_SOFTMAX_ROWS: return n->softmax_rows != NULL;
    case SCALAR_OP_TOPK_ROWS: return n->topk_rows != NULL;
    case SCALAR_OP_GATHER_ROWS: return n->gather_rows != NULL;
    case SCALAR_OP_SCATTER_ADD_ROWS: return n->scatter_add_rows != NULL;
    case SCALAR_OP_ATTENTION_FORWARD: return n->attention_forward != NULL;
    case SCALAR_OP_ATTENTION_BACKWARD: return n->attention_backward != NULL;
    case SCALAR_OP_EMBEDDING_FORWARD: return n->embedding_forward != NULL;
    case SCALAR_OP_EMBEDDING_BACKWARD: return n->embedding_backward != NULL;
    case SCALAR_OP_CROSS_ENTROPY_FORWARD: return n->cross_entropy_forward != NULL;
    case SCALAR_OP_CROSS_ENTROPY_BACKWARD: return n->cross_entropy_backward != NULL;
    case SCALAR_OP_SUM_ROWS: return n->sum_rows != NULL;
    case SCALAR_OP_ADD: return n->add != NULL;
    case SCALAR_OP_SUMSQ: return n->sumsq != NULL;
    case SCALAR_OP_ADAMW: return n->adamw != NULL;
    case SCALAR_OP_SPARSE_DECODE: return n->sparse_decode != NULL;
    case SCALAR_OP_SPARSE_DOT: return n->sparse_dot != NULL;
    case SCALAR_OP_SPARSE_OUTER_ADD: return n->sparse_outer_add != NULL;
    case SCALAR_OP_JACOBIAN_CONTRACT: return n->jacobian_contract != NULL;
    case SCALAR_OP_JACOBIAN_CONTRACT_BACKWARD: return n->jacobian_contract_backward != NULL;
    case SCALAR_OP_JACOBIAN_ROWS: return n->jacobian_rows != NULL;
    default: return 0;
    }
}
