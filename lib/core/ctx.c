/*
 * ctx.c - the context: options, reference count, allocator hooks, logging.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../internal.h"

#define DEFAULT_SEED 0x5CA1A8u

/* Options structs: the first field is struct_size; anything shorter than the
 * fields of version 1 is refused. */
#define CTX_OPTIONS_V1_SIZE sizeof(scalar_ctx_options)
#define ALLOCATOR_V1_SIZE sizeof(scalar_allocator)

/* Extensible-struct rule (Linux copy_struct_from_user): a caller struct larger
 * than ours is fine only if the bytes we do not know are zero. */
scalar_status scalar_allocator_init(scalar_allocator *allocator, size_t struct_size)
{
    if (!allocator)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_allocator_init: allocator is NULL");
    if (struct_size < ALLOCATOR_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_allocator_init: struct_size %zu < %zu", struct_size,
                                 (size_t)ALLOCATOR_V1_SIZE);
    memset(allocator, 0, struct_size);
    allocator->struct_size = struct_size;
    return SCALAR_OK;
}

size_t scalar_allocator_size(void)
{
    return sizeof(scalar_allocator);
}

scalar_status scalar_ctx_options_init(scalar_ctx_options *options, size_t struct_size)
{
    if (!options)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_ctx_options_init: options is NULL");
    if (struct_size < CTX_OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_ctx_options_init: struct_size %zu < %zu", struct_size,
                                 (size_t)CTX_OPTIONS_V1_SIZE);
    memset(options, 0, struct_size);
    options->struct_size = struct_size;
    options->seed = DEFAULT_SEED;
    options->backend = NULL;
    options->n_threads = 0;
    options->log_level = SCALAR_LOG_WARN;
    return SCALAR_OK;
}

size_t scalar_ctx_options_size(void)
{
    return sizeof(scalar_ctx_options);
}

static scalar_status read_options(scalar_ctx_options *o, const scalar_ctx_options *given)
{
    scalar_ctx_options_init(o, sizeof *o);
    if (!given)
        return SCALAR_OK;
    if (given->struct_size < CTX_OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION,
                                 "scalar_ctx_create: options.struct_size %zu is smaller than "
                                 "version 1 (%zu); fill it with scalar_ctx_options_init",
                                 given->struct_size, (size_t)CTX_OPTIONS_V1_SIZE);
    if (!scalar__tail_is_zero(given, sizeof *o, given->struct_size))
        return scalar__error_set(SCALAR_E_VERSION,
                                 "scalar_ctx_create: options.struct_size %zu > %zu and the "
                                 "fields this library does not know are not zero",
                                 given->struct_size, sizeof *o);
    memcpy(o, given, sizeof *o);
    o->struct_size = sizeof *o;
    return SCALAR_OK;
}

static scalar_status read_allocator(scalar_allocator *dst, const scalar_allocator *src)
{
    memset(dst, 0, sizeof *dst);
    dst->struct_size = sizeof *dst;
    if (!src)
        return SCALAR_OK;
    if (src->struct_size < ALLOCATOR_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION,
                                 "scalar_ctx_create: allocator.struct_size %zu < %zu; fill it "
                                 "with scalar_allocator_init", src->struct_size,
                                 (size_t)ALLOCATOR_V1_SIZE);
    if (!scalar__tail_is_zero(src, sizeof *dst, src->struct_size))
        return scalar__error_set(SCALAR_E_VERSION,
                                 "scalar_ctx_create: allocator.struct_size %zu > %zu with "
                                 "non-zero unknown fields", src->struct_size, sizeof *dst);
    if ((src->alloc == NULL) != (src->free == NULL))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_ctx_create: allocator sets only one of alloc and free");
    dst->user = src->user;
    dst->alloc = src->alloc;
    dst->free = src->free;
    return SCALAR_OK;
}

static int32_t default_threads(void)
{
#ifdef _OPENMP
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

/* A library built for AVX2 + FMA (ARCH_FLAGS in the Makefile) must not run
 * its loops on a CPU without them.  This function itself is compiled for
 * baseline x86-64 so the check runs before any wide instruction. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__GNUC__)
__attribute__((target("arch=x86-64"))) static int cpu_lacks_build_isa(void)
{
    __builtin_cpu_init();
    return !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma");
}
#define BUILD_ISA "AVX2 + FMA (x86-64-v3)"
#else
static int cpu_lacks_build_isa(void)
{
    return 0;
}
#define BUILD_ISA ""
#endif

scalar_status scalar_ctx_create(scalar_ctx **out, const scalar_ctx_options *options)
{
    if (cpu_lacks_build_isa())
        return scalar__error_set(SCALAR_E_UNSUPPORTED,
                                 "scalar_ctx_create: libscalar was built for %s and this CPU "
                                 "lacks it; rebuild with `make ARCH_FLAGS=`", BUILD_ISA);
    scalar_ctx_options o;
    scalar_allocator a;
    scalar_status st;

    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_ctx_create: out is NULL");
    *out = NULL;
    if ((st = read_options(&o, options)) != SCALAR_OK)
        return st;
    if (o.n_threads < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_ctx_create: n_threads=%d must be >= 0 (0 = default)",
                                 (int)o.n_threads);
    if (o.log_level < SCALAR_LOG_ERROR || o.log_level > SCALAR_LOG_DEBUG)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_ctx_create: log_level=%d is not a SCALAR_LOG_* level",
                                 (int)o.log_level);
    if ((st = read_allocator(&a, o.allocator)) != SCALAR_OK)
        return st;

    /* The context itself comes from the caller's allocator too. */
    scalar_ctx boot;
    memset(&boot, 0, sizeof boot);
    boot.allocator = a;
    scalar_ctx *ctx = scalar__alloc_raw(&boot, sizeof *ctx);
    if (!ctx)
        return scalar__error_set(SCALAR_E_NOMEM, "scalar_ctx_create: out of memory (context)");
    memset(ctx, 0, sizeof *ctx);
    ctx->refcount = 1;
    ctx->allocator = a;
    ctx->n_threads = o.n_threads ? o.n_threads : default_threads();
    ctx->log_level = o.log_level;
    ctx->seed = o.seed;
    ctx->log_cb = o.log_cb;
    ctx->log_user = o.log_user;
    if ((st = scalar__backend_create(&ctx->backend, ctx, o.backend)) != SCALAR_OK) {
        scalar__free_raw(ctx, ctx, sizeof *ctx);
        return st;
    }
    *out = ctx;
    return SCALAR_OK;
}

void scalar__ctx_retain(scalar_ctx *ctx)
{
    __atomic_add_fetch(&ctx->refcount, 1, __ATOMIC_RELAXED);
}

void scalar__ctx_release(scalar_ctx *ctx)
{
    if (!ctx || __atomic_sub_fetch(&ctx->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    scalar__backend_destroy(ctx->backend);
    scalar__free_raw(ctx, ctx, sizeof *ctx);
}

void scalar_ctx_free(scalar_ctx *ctx)
{
    scalar__ctx_release(ctx);
}

int32_t scalar_ctx_n_threads(const scalar_ctx *ctx)
{
    return ctx ? ctx->n_threads : 0;
}

uint64_t scalar_ctx_seed(const scalar_ctx *ctx)
{
    return ctx ? ctx->seed : 0;
}

/* ---- memory ---- */

void *scalar__alloc_raw(scalar_ctx *ctx, size_t size)
{
    if (size == 0)
        size = 1;
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded = (size + SCALAR_ALIGNMENT - 1) & ~(size_t)(SCALAR_ALIGNMENT - 1);
    if (rounded < size)
        return NULL;
    if (ctx->allocator.alloc)
        return ctx->allocator.alloc(ctx->allocator.user, rounded, SCALAR_ALIGNMENT);
    return aligned_alloc(SCALAR_ALIGNMENT, rounded);
}

void scalar__free_raw(scalar_ctx *ctx, void *ptr, size_t size)
{
    if (!ptr)
        return;
    if (size == 0)
        size = 1;
    size_t rounded = (size + SCALAR_ALIGNMENT - 1) & ~(size_t)(SCALAR_ALIGNMENT - 1);
    if (ctx->allocator.free)
        ctx->allocator.free(ctx->allocator.user, ptr, rounded);
    else
        free(ptr);
}

/* scalar__alloc keeps a 64-byte header holding the size, so the payload stays
 * 64-byte aligned and scalar__free needs no size argument. */
void *scalar__alloc(scalar_ctx *ctx, size_t size, const char *what)
{
    if (size > SIZE_MAX - SCALAR_ALIGNMENT) {
        scalar__error_set(SCALAR_E_NOMEM, "%s: cannot allocate %zu bytes", what, size);
        return NULL;
    }
    unsigned char *p = scalar__alloc_raw(ctx, size + SCALAR_ALIGNMENT);
    if (!p) {
        scalar__error_set(SCALAR_E_NOMEM, "%s: out of memory (%zu bytes)", what, size);
        return NULL;
    }
    memcpy(p, &size, sizeof size);
    return p + SCALAR_ALIGNMENT;
}

void *scalar__calloc(scalar_ctx *ctx, size_t count, size_t size, const char *what)
{
    uint64_t total;
    if (scalar__mul_overflow(count, size, &total) || total > SIZE_MAX) {
        scalar__error_set(SCALAR_E_NOMEM, "%s: %zu x %zu bytes overflows", what, count, size);
        return NULL;
    }
    void *p = scalar__alloc(ctx, (size_t)total, what);
    if (p)
        memset(p, 0, (size_t)total);
    return p;
}

void scalar__free(scalar_ctx *ctx, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - SCALAR_ALIGNMENT;
    size_t size;
    memcpy(&size, p, sizeof size);
    scalar__free_raw(ctx, p, size + SCALAR_ALIGNMENT);
}

char *scalar__strdup(scalar_ctx *ctx, const char *s, const char *what)
{
    size_t n = strlen(s) + 1;
    char *d = scalar__alloc(ctx, n, what);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- logging ---- */

void scalar__log(scalar_ctx *ctx, int32_t level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    if (!ctx || !ctx->log_cb || level > ctx->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->log_cb(level, buf, ctx->log_user);
}
