/**
 * @file backend.h
 * @brief The user's side of compute backends: list them and pick one by name.
 *
 * @defgroup scalar_backend Backends
 * @brief Which compute backends exist.
 *
 * A context runs its kernels on one backend, chosen by name in
 * ::scalar_ctx_options (`backend`).  Built in: `"cpu"` (BLIS for GEMMs,
 * OpenMP for the rest; the default) and `"cpu-ref"` (plain loops, the
 * reference every backend is tested against).  Writing a backend is the
 * business of the implementer tier, `scalar/sys/backend.h`.
 * @{
 */
#ifndef SCALAR_BACKEND_H
#define SCALAR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"

SCALAR_BEGIN_DECL

/**
 * @brief One instance of a backend, owned by its context.
 *
 * Get the context's with scalar_ctx_backend(); the compute entry points are in
 * the implementer tier (`scalar/sys/backend.h`).
 * @note One thread at a time per context for calls that write buffers.
 */
typedef struct scalar_backend scalar_backend;

/**
 * @brief The number of registered backends.
 * @return at least 2 (the built-in "cpu" and "cpu-ref").
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API size_t scalar_backend_count(void);

/**
 * @brief The name of registered backend number @p index.
 * @param[in] index 0 .. scalar_backend_count() - 1.
 * @return static text, or NULL if @p index is out of range.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_backend_name(size_t index);

/**
 * @brief The backend instance of a context.
 * @param[in] ctx borrowed.
 * @return borrowed: valid while @p ctx is; NULL if @p ctx is NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_backend *scalar_ctx_backend(const scalar_ctx *ctx);

/**
 * @brief A one-line description of the backend's configuration.
 *
 * For "cpu": the BLIS version, its architecture configuration, its threading
 * model and the thread count, e.g. `BLIS 0.9.0 (zen3, openmp), 2 threads`.
 *
 * @param[in] backend borrowed.
 * @return borrowed text, valid while the backend's context is; never NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_backend_describe(const scalar_backend *backend);

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_BACKEND_H */
