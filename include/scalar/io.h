/**
 * @file io.h
 * @brief Tensor files: safetensors (read with mmap, write atomically) and .npy.
 *
 * @defgroup scalar_io File I/O
 * @brief Read and write the tensor files models and SAEs live in.
 *
 * Readers validate the whole header before anything is read: a malformed,
 * truncated or hostile file gives ::SCALAR_E_FORMAT and a message naming the
 * problem, never a crash.  Writers are atomic: the data goes to a temporary
 * file in the same folder, is flushed with fsync, and is renamed over the
 * target, so a reader never sees a half-written file.
 * @{
 */
#ifndef SCALAR_IO_H
#define SCALAR_IO_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"

SCALAR_BEGIN_DECL

/* ===================================================================== */
/*  Element types                                                         */
/* ===================================================================== */

/** @name Element types (values frozen)
 * @{ */
#define SCALAR_DTYPE_F32 0     /**< IEEE float32. */
#define SCALAR_DTYPE_F16 1     /**< IEEE float16. */
#define SCALAR_DTYPE_BF16 2    /**< bfloat16. */
#define SCALAR_DTYPE_I32 3     /**< int32. */
#define SCALAR_DTYPE_I64 4     /**< int64. */
#define SCALAR_DTYPE_U16 5     /**< uint16 (GPT-2 token ids). */
#define SCALAR_DTYPE_F64 6     /**< IEEE float64. */
#define SCALAR_DTYPE_I8 7      /**< int8. */
#define SCALAR_DTYPE_U8 8      /**< uint8. */
#define SCALAR_DTYPE_I16 9     /**< int16. */
#define SCALAR_DTYPE_U32 10    /**< uint32. */
#define SCALAR_DTYPE_U64 11    /**< uint64. */
#define SCALAR_DTYPE_BOOL 12   /**< bool, one byte. */
#define SCALAR_DTYPE_F8_E4M3 13 /**< float8 e4m3 (stored, not converted). */
#define SCALAR_DTYPE_F8_E5M2 14 /**< float8 e5m2 (stored, not converted). */
#define SCALAR_DTYPE_COUNT 15  /**< Number of element types in this version. */
/** @} */

/** Most dimensions a tensor may have. */
#define SCALAR_MAX_DIMS 8

/**
 * @brief The safetensors name of an element type ("F32", "BF16", ...).
 * @param[in] dtype a SCALAR_DTYPE_* value.
 * @return static text, or NULL for an unknown value.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API const char *scalar_dtype_name(int32_t dtype);

/**
 * @brief The size of one element in bytes.
 * @param[in] dtype a SCALAR_DTYPE_* value.
 * @return 1, 2, 4 or 8; 0 for an unknown value.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API size_t scalar_dtype_size(int32_t dtype);

/**
 * @brief The run-time twin of ::SCALAR_MAX_DIMS.
 * @return the most dimensions a tensor may have.
 * @since 0.1
 */
SCALAR_API int32_t scalar_max_dims(void);

/* ===================================================================== */
/*  safetensors reader                                                    */
/* ===================================================================== */

/**
 * @brief An open safetensors file (or memory buffer), header validated.
 *
 * The data is mapped, not copied; views from scalar_safetensors_data() point
 * into the mapping.
 * @note Immutable: share freely across threads.
 */
typedef struct scalar_safetensors scalar_safetensors;

/**
 * @brief Open and validate a safetensors file.
 *
 * The header is checked in full before success: the 8-byte length (at most
 * 100,000,000 and within the file), UTF-8 JSON whose top level is an object,
 * no duplicate names, each tensor's dtype known, rank at most
 * ::SCALAR_MAX_DIMS, shape non-negative, byte range matching
 * `numel * dtype size`, ranges contiguous from 0 in some order and covering
 * the data section exactly, and `__metadata__` (if present) a map of strings.
 *
 * @param[out] out  receives the owned handle on success, NULL on failure.
 * @param[in]  ctx  borrowed; the handle holds a reference.
 * @param[in]  path file name.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO (cannot open or
 *         map); ::SCALAR_E_FORMAT (any header problem, named in the message);
 *         ::SCALAR_E_NOMEM.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_open(scalar_safetensors **out, scalar_ctx *ctx,
                                                 const char *path);

/**
 * @brief Open safetensors bytes already in memory, validated as by
 *        scalar_safetensors_open().
 * @param[out] out  receives the owned handle on success, NULL on failure.
 * @param[in]  ctx  borrowed; the handle holds a reference.
 * @param[in]  data borrowed: must stay valid and unchanged until the handle is freed.
 * @param[in]  size bytes at @p data.
 * @return as scalar_safetensors_open(), without ::SCALAR_E_IO.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_open_memory(scalar_safetensors **out,
                                                        scalar_ctx *ctx, const void *data,
                                                        size_t size);

/**
 * @brief Close the file; NULL does nothing.
 * @param[in] st owned.
 * @since 0.1
 */
SCALAR_API void scalar_safetensors_free(scalar_safetensors *st);

/**
 * @brief The number of tensors.
 * @param[in] st borrowed.
 * @return the count; 0 for NULL.
 * @since 0.1
 */
SCALAR_API size_t scalar_safetensors_count(const scalar_safetensors *st);

/**
 * @brief Find a tensor by name.
 * @param[out] out_index receives its index.
 * @param[in]  st        borrowed.
 * @param[in]  name      UTF-8 name.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOT_FOUND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_find(size_t *out_index,
                                                 const scalar_safetensors *st, const char *name);

/**
 * @brief The name of tensor @p index (tensors are in the order of their data offsets).
 * @param[in] st    borrowed.
 * @param[in] index 0 .. count - 1.
 * @return borrowed text, valid while @p st is; NULL if out of range.
 * @since 0.1
 */
SCALAR_API const char *scalar_safetensors_name(const scalar_safetensors *st, size_t index);

/**
 * @brief The element type of tensor @p index.
 * @param[in] st    borrowed.
 * @param[in] index 0 .. count - 1.
 * @return a SCALAR_DTYPE_* value; -1 if out of range.
 * @since 0.1
 */
SCALAR_API int32_t scalar_safetensors_dtype(const scalar_safetensors *st, size_t index);

/**
 * @brief The number of dimensions of tensor @p index.
 * @param[in] st    borrowed.
 * @param[in] index 0 .. count - 1.
 * @return 0 .. ::SCALAR_MAX_DIMS; -1 if out of range.
 * @since 0.1
 */
SCALAR_API int32_t scalar_safetensors_ndim(const scalar_safetensors *st, size_t index);

/**
 * @brief The shape of tensor @p index.
 * @param[out] out_shape [capacity], receives ndim entries.
 * @param[in]  capacity  entries available at @p out_shape.
 * @param[in]  st        borrowed.
 * @param[in]  index     0 .. count - 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE (capacity < ndim).
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_shape(int64_t *out_shape, size_t capacity,
                                                  const scalar_safetensors *st, size_t index);

/**
 * @brief The number of elements of tensor @p index (1 for a scalar).
 * @param[in] st    borrowed.
 * @param[in] index 0 .. count - 1.
 * @return the element count; 0 if out of range.
 * @since 0.1
 */
SCALAR_API uint64_t scalar_safetensors_numel(const scalar_safetensors *st, size_t index);

/**
 * @brief Zero-copy view of tensor @p index's raw little-endian bytes.
 *
 * The view is not necessarily aligned for its element type.
 *
 * @param[out] out        receives a borrowed pointer, valid while @p st is.
 * @param[out] out_nbytes receives the byte length.
 * @param[in]  st         borrowed.
 * @param[in]  index      0 .. count - 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_data(const void **out, size_t *out_nbytes,
                                                 const scalar_safetensors *st, size_t index);

/**
 * @brief Read tensor @p index as float32, converting from its stored type.
 *
 * Converts F32, F16, BF16, F64 and every integer and bool type (integers
 * beyond 2^24 round to the nearest float).
 *
 * @param[out] out      [capacity] floats, receives numel values.
 * @param[in]  capacity floats available at @p out.
 * @param[in]  st       borrowed.
 * @param[in]  index    0 .. count - 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE
 *         (capacity < numel); ::SCALAR_E_UNSUPPORTED (float8 types).
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_read_f32(float *out, size_t capacity,
                                                     const scalar_safetensors *st, size_t index);

/**
 * @brief The number of `__metadata__` entries.
 * @param[in] st borrowed.
 * @return the count; 0 for NULL or no metadata.
 * @since 0.1
 */
SCALAR_API size_t scalar_safetensors_metadata_count(const scalar_safetensors *st);

/**
 * @brief The key of metadata entry @p index.
 * @param[in] st    borrowed.
 * @param[in] index 0 .. metadata_count - 1.
 * @return borrowed text; NULL if out of range.
 * @since 0.1
 */
SCALAR_API const char *scalar_safetensors_metadata_key(const scalar_safetensors *st,
                                                       size_t index);

/**
 * @brief The metadata value stored under @p key.
 * @param[in] st  borrowed.
 * @param[in] key UTF-8 key.
 * @return borrowed text; NULL if there is no such key.
 * @since 0.1
 */
SCALAR_API const char *scalar_safetensors_metadata_get(const scalar_safetensors *st,
                                                       const char *key);

/* ===================================================================== */
/*  safetensors writer                                                    */
/* ===================================================================== */

/**
 * @brief Collects tensors and metadata, then writes one safetensors file atomically.
 * @note One thread at a time.
 */
typedef struct scalar_safetensors_writer scalar_safetensors_writer;

/**
 * @brief Create an empty writer.
 * @param[out] out receives the owned writer on success, NULL on failure.
 * @param[in]  ctx borrowed; the writer holds a reference.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_writer_create(scalar_safetensors_writer **out,
                                                          scalar_ctx *ctx);

/**
 * @brief Free a writer; NULL does nothing.
 * @param[in] writer owned.
 * @since 0.1
 */
SCALAR_API void scalar_safetensors_writer_free(scalar_safetensors_writer *writer);

/**
 * @brief Add a tensor.  Tensors are laid out in the order added.
 * @param[in] writer borrowed.
 * @param[in] name   UTF-8, unique, not "__metadata__"; copied.
 * @param[in] dtype  a SCALAR_DTYPE_* value.
 * @param[in] shape  [ndim] sizes, each >= 0; copied.
 * @param[in] ndim   0 .. ::SCALAR_MAX_DIMS.
 * @param[in] data   numel * dtype size bytes, little-endian; borrowed: must
 *                   stay valid and unchanged until scalar_safetensors_writer_write() returns.
 * @param[in] nbytes bytes at @p data; must equal numel * dtype size.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (bad name, duplicate, bad dtype
 *         or rank); ::SCALAR_E_SHAPE (nbytes does not match the shape);
 *         ::SCALAR_E_NOMEM.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_writer_add(scalar_safetensors_writer *writer,
                                                       const char *name, int32_t dtype,
                                                       const int64_t *shape, int32_t ndim,
                                                       const void *data, size_t nbytes);

/**
 * @brief Set a `__metadata__` string (replacing an earlier value of the same key).
 * @param[in] writer borrowed.
 * @param[in] key    UTF-8; copied.
 * @param[in] value  UTF-8; copied.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_writer_set_metadata(
    scalar_safetensors_writer *writer, const char *key, const char *value);

/**
 * @brief Write the file atomically: temporary file, fsync, rename.
 *
 * The header is padded with spaces to a multiple of 8 bytes.  On failure the
 * target is untouched and no temporary file remains.  The writer may be
 * written again (to another path, say).
 *
 * @param[in] writer borrowed.
 * @param[in] path   target file name.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_NOMEM.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_safetensors_writer_write(scalar_safetensors_writer *writer,
                                                         const char *path);

/* ===================================================================== */
/*  .npy reader                                                           */
/* ===================================================================== */

/**
 * @brief An open NumPy `.npy` array (format versions 1, 2 and 3), header validated.
 *
 * Element types: little-endian uint16, int32 and float32, C order (Fortran
 * order only for rank <= 1).
 * @note Immutable: share freely across threads.
 */
typedef struct scalar_npy scalar_npy;

/**
 * @brief Open and validate a `.npy` file.
 * @param[out] out  receives the owned handle on success, NULL on failure.
 * @param[in]  ctx  borrowed; the handle holds a reference.
 * @param[in]  path file name.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO;
 *         ::SCALAR_E_FORMAT (bad magic, version, header, shape or size);
 *         ::SCALAR_E_UNSUPPORTED (a valid array of another type or order);
 *         ::SCALAR_E_NOMEM.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_npy_open(scalar_npy **out, scalar_ctx *ctx, const char *path);

/**
 * @brief Open `.npy` bytes already in memory, validated as by scalar_npy_open().
 * @param[out] out  receives the owned handle on success, NULL on failure.
 * @param[in]  ctx  borrowed; the handle holds a reference.
 * @param[in]  data borrowed: must stay valid until the handle is freed.
 * @param[in]  size bytes at @p data.
 * @return as scalar_npy_open(), without ::SCALAR_E_IO.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_npy_open_memory(scalar_npy **out, scalar_ctx *ctx,
                                                const void *data, size_t size);

/**
 * @brief Close the array; NULL does nothing.
 * @param[in] npy owned.
 * @since 0.1
 */
SCALAR_API void scalar_npy_free(scalar_npy *npy);

/**
 * @brief The element type.
 * @param[in] npy borrowed.
 * @return ::SCALAR_DTYPE_U16, ::SCALAR_DTYPE_I32 or ::SCALAR_DTYPE_F32; -1 for NULL.
 * @since 0.1
 */
SCALAR_API int32_t scalar_npy_dtype(const scalar_npy *npy);

/**
 * @brief The number of dimensions.
 * @param[in] npy borrowed.
 * @return 0 .. ::SCALAR_MAX_DIMS; -1 for NULL.
 * @since 0.1
 */
SCALAR_API int32_t scalar_npy_ndim(const scalar_npy *npy);

/**
 * @brief The shape.
 * @param[out] out_shape [capacity], receives ndim entries.
 * @param[in]  capacity  entries available.
 * @param[in]  npy       borrowed.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_npy_shape(int64_t *out_shape, size_t capacity,
                                          const scalar_npy *npy);

/**
 * @brief The number of elements.
 * @param[in] npy borrowed.
 * @return the count; 0 for NULL.
 * @since 0.1
 */
SCALAR_API uint64_t scalar_npy_numel(const scalar_npy *npy);

/**
 * @brief Read the array as int32 (uint16 and int32 arrays).
 * @param[out] out      [capacity], receives numel values.
 * @param[in]  capacity entries available.
 * @param[in]  npy      borrowed.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE;
 *         ::SCALAR_E_UNSUPPORTED (a float32 array).
 * @since 0.1
 */
SCALAR_API scalar_status scalar_npy_read_i32(int32_t *out, size_t capacity,
                                             const scalar_npy *npy);

/**
 * @brief Read the array as float32 (any of the three types).
 * @param[out] out      [capacity], receives numel values.
 * @param[in]  capacity entries available.
 * @param[in]  npy      borrowed.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_npy_read_f32(float *out, size_t capacity,
                                             const scalar_npy *npy);

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_IO_H */
