/**
 * @file core.h
 * @brief Versions, status codes, error messages, the context and its options.
 *
 * @defgroup scalar_core Core
 * @brief The context every other object hangs off, and the error model.
 *
 * Every fallible function returns a ::scalar_status: ::SCALAR_OK (0) on success,
 * a negative code otherwise.  scalar_last_error() then describes the failure in
 * words, for the calling thread only.
 * @{
 */
#ifndef SCALAR_CORE_H
#define SCALAR_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

SCALAR_BEGIN_DECL

/* ===================================================================== */
/*  Status codes                                                         */
/* ===================================================================== */

/**
 * @brief Result of every fallible call: 0 on success, a negative code on failure.
 *
 * The values below are frozen: a released code is never renumbered.  Codes are
 * grouped in bands: -1..-19 generic, -20..-39 files, -40..-59 numerics,
 * -60..-79 backends.
 */
typedef int32_t scalar_status;

#define SCALAR_OK 0                /**< Success. */
#define SCALAR_E_INVALID_ARG (-1)  /**< An argument is NULL, out of range or inconsistent. */
#define SCALAR_E_NOMEM (-2)        /**< An allocation failed. */
#define SCALAR_E_UNSUPPORTED (-3)  /**< A valid request this build or backend does not do. */
#define SCALAR_E_VERSION (-4)      /**< A struct, file or plugin from an incompatible version. */
#define SCALAR_E_BUFSIZE (-5)      /**< A caller buffer is too small; the size needed is reported. */
#define SCALAR_E_NOT_FOUND (-6)    /**< A named item (tensor, backend, key) does not exist. */
#define SCALAR_E_IO (-20)          /**< The operating system failed to read or write a file. */
#define SCALAR_E_FORMAT (-21)      /**< A file or buffer is malformed, truncated or hostile. */
#define SCALAR_E_SHAPE (-40)       /**< Tensor shapes do not fit together. */
#define SCALAR_E_NUMERIC (-41)     /**< A NaN or infinity where a finite number is required. */
#define SCALAR_E_BACKEND (-60)     /**< A compute backend failed. */

/**
 * @brief Name a status code.
 *
 * @param[in] status any value, known or not.
 * @return static text such as "SCALAR_E_FORMAT: malformed input"; never NULL
 *         ("unknown status" for values this version does not define).
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_status_string(scalar_status status);

/**
 * @brief The calling thread's message about its last failed libscalar call.
 *
 * The message names the function and the offending value, for example
 * `scalar_safetensors_open: model.safetensors: header length 4294967296 exceeds 100000000`.
 * Read it right after a call returned a negative status; successful calls do
 * not clear it, so it does not tell whether a call failed.
 *
 * @return borrowed text, valid until the next libscalar call on this thread;
 *         never NULL (empty when nothing has failed on this thread).
 * @note Thread-local: each thread sees only its own failures.
 * @since 0.1
 */
SCALAR_API const char *scalar_last_error(void);

/**
 * @brief Forget the calling thread's last error message.
 * @note Thread-local.
 * @since 0.1
 */
SCALAR_API void scalar_last_error_clear(void);

/**
 * @brief Set the calling thread's last error message, for callbacks (model
 *        hooks, say) that fail and want their caller to see why.
 * @param[in] status  the status the callback will return; returned unchanged.
 * @param[in] message UTF-8 text, copied (truncated to 1023 bytes); NULL clears.
 * @return @p status, so a callback can `return scalar_last_error_set(...)`.
 * @note Thread-local.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_last_error_set(scalar_status status, const char *message);

/* ===================================================================== */
/*  Versions                                                             */
/* ===================================================================== */

/**
 * @brief The library's version as MAJOR*10000 + MINOR*100 + PATCH.
 * @return the run-time twin of ::SCALAR_VERSION_NUMBER.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API uint32_t scalar_version(void);

/**
 * @brief The library's version as text, e.g. "0.1.0".
 * @return static text, never NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_version_string(void);

/**
 * @brief The ABI counter of the loaded library (the N in `libscalar.so.N`).
 * @return the run-time twin of ::SCALAR_ABI_VERSION.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API uint32_t scalar_abi_version(void);

/* ===================================================================== */
/*  Allocator and logging hooks                                          */
/* ===================================================================== */

/**
 * @brief Allocation function of a ::scalar_allocator.
 *
 * @param[in] user      the allocator's `user` pointer.
 * @param[in] size      bytes wanted, never 0.
 * @param[in] alignment a power of two, at least 64.
 * @return memory aligned to @p alignment, or NULL on failure.
 */
typedef void *(*scalar_alloc_cb)(void *user, size_t size, size_t alignment);

/**
 * @brief Release function of a ::scalar_allocator.
 *
 * @param[in] user the allocator's `user` pointer.
 * @param[in] ptr  a pointer returned by the matching alloc, never NULL.
 * @param[in] size the size it was allocated with.
 */
typedef void (*scalar_free_cb)(void *user, void *ptr, size_t size);

/**
 * @brief Host-memory hooks for one context (zstd's `ZSTD_customMem`, per object).
 *
 * Every host allocation made for a context and its children goes through these
 * hooks, backend buffers of the CPU backends included.  The struct is copied
 * at scalar_ctx_create(); the functions and `user` must stay valid until the
 * context and all its children are freed.  Fill it with
 * scalar_allocator_init() so `struct_size` is right.
 * @since 0.1
 */
typedef struct scalar_allocator {
    size_t struct_size;     /**< sizeof(scalar_allocator), set by scalar_allocator_init(). */
    void *user;             /**< Passed to every call. */
    scalar_alloc_cb alloc;  /**< Allocation; NULL for the default (aligned_alloc). */
    scalar_free_cb free;    /**< Release; must be set whenever `alloc` is. */
} scalar_allocator;

/**
 * @brief Fill a ::scalar_allocator with defaults (no hooks) and its struct_size.
 *
 * @param[out] allocator   the struct to fill.
 * @param[in]  struct_size `sizeof *allocator` as the caller compiled it.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG if @p allocator is NULL or
 *         @p struct_size is smaller than the first version of the struct.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_allocator_init(scalar_allocator *allocator, size_t struct_size);

/**
 * @brief The library's `sizeof(scalar_allocator)`, for bindings without a compiler.
 * @return the size in bytes.
 * @since 0.1
 */
SCALAR_API size_t scalar_allocator_size(void);

#define SCALAR_LOG_ERROR 0 /**< Log level: something failed. */
#define SCALAR_LOG_WARN 1  /**< Log level: suspicious but carried on. */
#define SCALAR_LOG_INFO 2  /**< Log level: progress worth telling. */
#define SCALAR_LOG_DEBUG 3 /**< Log level: detail for debugging. */

/**
 * @brief Log callback of a context.
 *
 * Called only on the thread that made the libscalar call, never from worker
 * threads.
 *
 * @param[in] level one of the SCALAR_LOG_* levels.
 * @param[in] msg   borrowed text, valid during the call.
 * @param[in] user  the `log_user` pointer of the context options.
 */
typedef void (*scalar_log_cb)(int32_t level, const char *msg, void *user);

/* ===================================================================== */
/*  Context                                                              */
/* ===================================================================== */

/**
 * @brief A context: backend, thread count, allocator, log sink and seed.
 *
 * Create one with scalar_ctx_create().  Objects created on a context hold a
 * reference on it, so scalar_ctx_free() may come before or after theirs.
 * @note Immutable after creation: share freely across threads.
 */
typedef struct scalar_ctx scalar_ctx;

/**
 * @brief Options for scalar_ctx_create().
 *
 * Fill with scalar_ctx_options_init(), then change fields.  Fields are ordered
 * largest first and the struct has no padding; new fields are only appended.
 * @since 0.1
 */
typedef struct scalar_ctx_options {
    size_t struct_size;                 /**< Set by scalar_ctx_options_init(). */
    uint64_t seed;                      /**< Seed of every random stream derived from the context; default 0x5CA1A8. */
    const char *backend;                /**< Backend name ("cpu", "cpu-ref"); NULL means "cpu". Copied. */
    const scalar_allocator *allocator;  /**< Host memory hooks; NULL for the default. Copied. */
    scalar_log_cb log_cb;               /**< Log sink; NULL (default) is silent. */
    void *log_user;                     /**< Passed to the log callback. */
    int32_t n_threads;                  /**< Worker threads for BLIS and OpenMP; 0 (default) means the OpenMP default. */
    int32_t log_level;                  /**< Most verbose level passed to the log callback; default ::SCALAR_LOG_WARN. */
} scalar_ctx_options;

/**
 * @brief Fill @p options with defaults.
 *
 * @param[out] options     the struct to fill.
 * @param[in]  struct_size `sizeof *options` as the caller compiled it; a
 *                         caller built against an older header passes a
 *                         smaller size and only that prefix is written.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG if @p options is NULL or
 *         @p struct_size is smaller than the first version of the struct.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_ctx_options_init(scalar_ctx_options *options, size_t struct_size);

/**
 * @brief The library's `sizeof(scalar_ctx_options)`.
 * @return the size in bytes.
 * @since 0.1
 */
SCALAR_API size_t scalar_ctx_options_size(void);

/**
 * @brief Create a context.
 *
 * Reads `min(options->struct_size, scalar_ctx_options_size())` bytes; fields a
 * shorter struct lacks take their defaults.  A longer struct is accepted only
 * if the bytes past what this library knows are all zero.
 *
 * @param[out] out     receives the owned context on success, NULL on failure.
 * @param[in]  options copied; NULL means all defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL @p out, negative thread
 *         count, allocator with only one hook); ::SCALAR_E_VERSION (options
 *         struct too small, or larger with non-zero unknown fields);
 *         ::SCALAR_E_NOT_FOUND (no backend of that name); ::SCALAR_E_NOMEM;
 *         ::SCALAR_E_BACKEND (the backend failed to start).
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_ctx_create(scalar_ctx **out, const scalar_ctx_options *options);

/**
 * @brief Drop the caller's reference to a context.
 *
 * The context goes when its last child (model, SAE, file handle...) is freed
 * too.  Freeing NULL does nothing.
 *
 * @param[in] ctx owned; invalid for the caller after the call.
 * @note Thread-safe against children being freed on other threads.
 * @since 0.1
 */
SCALAR_API void scalar_ctx_free(scalar_ctx *ctx);

/**
 * @brief The number of worker threads the context's kernels use.
 * @param[in] ctx borrowed.
 * @return at least 1; 0 if @p ctx is NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API int32_t scalar_ctx_n_threads(const scalar_ctx *ctx);

/**
 * @brief The seed the context was created with.
 * @param[in] ctx borrowed.
 * @return the seed; 0 if @p ctx is NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API uint64_t scalar_ctx_seed(const scalar_ctx *ctx);

/**
 * @brief The name of the context's backend.
 * @param[in] ctx borrowed.
 * @return static text such as "cpu"; NULL if @p ctx is NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_ctx_backend_name(const scalar_ctx *ctx);

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_CORE_H */
