/*
 * internal.h - what every file under lib/ shares.  Never installed.
 *
 * Internal non-static functions are named scalar__<noun>_<verb> (double
 * underscore); -fvisibility=hidden and the version script keep them out of
 * the shared library's dynamic symbol table, while tests and fuzz targets that
 * link libscalar.a can still call them.
 */
#ifndef SCALAR_INTERNAL_H
#define SCALAR_INTERNAL_H

#ifndef SCALAR_BUILDING_LIBRARY
#define SCALAR_BUILDING_LIBRARY
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#if defined(__GNUC__)
#define SCALAR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SCALAR_PRINTF(f, a)
#endif

/* Internal invariants only, never user input; compiled out unless SCALAR_DEBUG. */
#ifdef SCALAR_DEBUG
#include <assert.h>
#define SCALAR_ASSERT(x) assert(x)
#else
#define SCALAR_ASSERT(x) ((void)0)
#endif

#define SCALAR_ALIGNMENT 64u

/* Return from the enclosing function with the status of `expr` unless it is
 * SCALAR_OK. */
#define SCALAR_TRY(expr)                                                                           \
    do {                                                                                           \
        scalar_status scalar_try_st_ = (expr);                                                     \
        if (scalar_try_st_ != SCALAR_OK)                                                           \
            return scalar_try_st_;                                                                 \
    } while (0)

/* 1 if bytes [from, to) of `p` are all zero: the part of a caller's larger
 * options struct this library does not know (DESIGN: accepted only if zero). */
static inline int scalar__tail_is_zero(const void *p, size_t from, size_t to)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = from; i < to; i++)
        if (b[i])
            return 0;
    return 1;
}

/* ---- errors (lib/core/error.c) ---- */
/* Set the calling thread's message (printf-style, truncated to 1023 bytes) and
 * return `status`, so callers can write `return scalar__error_set(...)`. */
scalar_status scalar__error_set(scalar_status status, const char *fmt, ...) SCALAR_PRINTF(2, 3);
scalar_status scalar__error_setv(scalar_status status, const char *fmt, va_list ap);

/* ---- context (lib/core/ctx.c) ---- */
struct scalar_ctx {
    int32_t refcount;          /* atomic; the caller's reference plus one per child */
    int32_t n_threads;
    int32_t log_level;
    uint64_t seed;
    scalar_allocator allocator; /* alloc == NULL: aligned_alloc/free */
    scalar_log_cb log_cb;
    void *log_user;
    scalar_backend *backend;    /* owned */
};

void scalar__ctx_retain(scalar_ctx *ctx);
void scalar__ctx_release(scalar_ctx *ctx);

/* Host memory through the context's allocator hooks, 64-byte aligned.  The
 * size is remembered in a header, so scalar__free needs only the pointer.
 * scalar__alloc on failure sets SCALAR_E_NOMEM's message (naming `what`) and
 * returns NULL.  size 0 allocates a minimal block. */
void *scalar__alloc(scalar_ctx *ctx, size_t size, const char *what);
void *scalar__calloc(scalar_ctx *ctx, size_t count, size_t size, const char *what);
void scalar__free(scalar_ctx *ctx, void *ptr);
/* Copy a NUL-terminated string into context memory; NULL on failure. */
char *scalar__strdup(scalar_ctx *ctx, const char *s, const char *what);

/* Raw hooks without the size header (backend buffers carry their own size). */
void *scalar__alloc_raw(scalar_ctx *ctx, size_t size);
void scalar__free_raw(scalar_ctx *ctx, void *ptr, size_t size);

/* Log through the context's callback if `level` is at most its log level. */
void scalar__log(scalar_ctx *ctx, int32_t level, const char *fmt, ...) SCALAR_PRINTF(3, 4);

/* ---- deterministic RNG (lib/core/rng.c) ---- */
/* xoshiro256** seeded through splitmix64 from (seed, stream): the same pair
 * gives the same sequence on every machine and thread count; distinct streams
 * are independent for practical purposes. */
typedef struct scalar__rng {
    uint64_t s[4];
    int32_t has_spare;
    float spare;
} scalar__rng;

void scalar__rng_init(scalar__rng *rng, uint64_t seed, uint64_t stream);
uint64_t scalar__rng_u64(scalar__rng *rng);
uint64_t scalar__rng_below(scalar__rng *rng, uint64_t n); /* uniform in [0, n), n > 0, unbiased */
float scalar__rng_uniform(scalar__rng *rng);              /* uniform in [0, 1), 24 random bits */
float scalar__rng_normal(scalar__rng *rng);               /* standard normal (Box-Muller) */

/* ---- checked arithmetic ---- */
static inline int scalar__mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline int scalar__add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* ---- backends (lib/backend/) ---- */
struct scalar_backend {
    scalar_backend_ops ops;          /* copy of the registered table */
    const scalar_backend_ops *native; /* the registered table, for supports() */
    const scalar_backend_ops *ref;   /* cpu-ref, for per-call fallback */
    void *self;                      /* instance of `native` */
    void *ref_self;                  /* instance of cpu-ref (NULL if native is cpu-ref) */
    scalar_ctx *ctx;                 /* not retained: the context owns the backend */
    int32_t is_host;
};

extern const scalar_backend_ops scalar__backend_cpu_ref_ops;
extern const scalar_backend_ops scalar__backend_cpu_ops;

/* Look the name up in the registry (NULL: "cpu"), create the instance. */
scalar_status scalar__backend_create(scalar_backend **out, scalar_ctx *ctx, const char *name);
void scalar__backend_destroy(scalar_backend *backend);

/* ---- files (lib/io/file.c) ---- */
/* A read-only view of a whole file: mmap'ed, or for an empty file, nothing. */
typedef struct scalar__mapped_file {
    const unsigned char *data;
    size_t size;
    void *map;     /* munmap target, NULL if not mapped */
    size_t map_size;
} scalar__mapped_file;

scalar_status scalar__file_map(scalar__mapped_file *out, const char *path, const char *caller);
void scalar__file_unmap(scalar__mapped_file *file);

/* Atomic write: open a temporary file beside `path`, write, then commit
 * (fsync, rename, fsync the folder) or abort (unlink). */
typedef struct scalar__atomic_file {
    int fd;
    char *tmp_path;   /* context memory */
    char *path;       /* context memory */
    scalar_ctx *ctx;
} scalar__atomic_file;

scalar_status scalar__atomic_open(scalar__atomic_file *af, scalar_ctx *ctx, const char *path,
                                  const char *caller);
scalar_status scalar__atomic_write(scalar__atomic_file *af, const void *data, size_t size);
scalar_status scalar__atomic_commit(scalar__atomic_file *af);
void scalar__atomic_abort(scalar__atomic_file *af);
/* 1 if `path` is a folder. */
int scalar__is_dir(const char *path);
/* The 1-D tensor `name` of `st` with `numel` elements of `dtype` (optimizer
 * state files); SCALAR_E_FORMAT / SCALAR_E_SHAPE naming `path` otherwise. */
scalar_status scalar__safetensors_find_1d(const scalar_safetensors *st, const char *name,
                                          int32_t dtype, uint64_t numel, const char *path,
                                          size_t *index);
/* Linear warmup over `warmup` steps (step 0-based), then a cosine from lr to
 * min_lr reached at max_steps, min_lr after (both trainers' schedule). */
float scalar__lr_warmup_cosine(int64_t step, int64_t warmup, int64_t max_steps, float lr,
                               float min_lr);
/* Create the folder `dir` (its parent must exist); an existing folder is fine. */
scalar_status scalar__make_dir(const char *dir, const char *caller);

#endif /* SCALAR_INTERNAL_H */
