/**
 * @file data.h
 * @brief Token data: the ASCII tokenizer, datasets with a train/val split, batches.
 *
 * @defgroup scalar_data Token data
 * @brief Turn text or pre-tokenized ids into the batches models train on.
 *
 * A ::scalar_dataset is one sequence of int32 token ids, split once into a
 * training prefix and a validation rest.  It comes from raw text (the ASCII
 * tokenizer: one token per byte), from a `.npy` array of uint16 or int32 ids,
 * from a flat little-endian uint16 `.bin` file, or from memory.  Batches are
 * read sequentially with a cursor the caller keeps (so a checkpoint can save
 * it), or as random windows drawn from a seed and a step number.
 *
 * The split (SPEC 1): of `n` tokens, the first
 * `n_train = floor(n * (1 - val_fraction))` rounded down to a multiple of
 * `split_multiple` train, the rest validate.  Tiny Shakespeare's 1,115,394
 * characters give 1,003,776 training and 111,618 validation tokens with the
 * defaults (0.1 and 256).
 * @{
 */
#ifndef SCALAR_DATA_H
#define SCALAR_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"

SCALAR_BEGIN_DECL

/* ===================================================================== */
/*  ASCII tokenizer                                                      */
/* ===================================================================== */

/** Tokens of the ASCII tokenizer: ids 0..127, one per byte value below 128. */
#define SCALAR_ASCII_VOCAB_SIZE 128

/** The id every byte >= 128 becomes: that of '?'. */
#define SCALAR_ASCII_UNKNOWN_ID 63

/**
 * @brief The run-time twin of ::SCALAR_ASCII_VOCAB_SIZE.
 * @return 128.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API int32_t scalar_ascii_vocab_size(void);

/**
 * @brief Tokenize bytes: one id per byte, the byte itself if below 128, else the id of '?'.
 *
 * Text is taken as bytes, so a UTF-8 character beyond ASCII becomes one '?'
 * per byte.  NUL bytes are ordinary bytes (id 0).
 *
 * @param[in]  text    [n] bytes, borrowed; may be NULL when @p n is 0.
 * @param[in]  n       number of bytes.
 * @param[out] out_ids [n] ids, caller-owned.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL @p text or @p out_ids with @p n > 0).
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_ascii_encode(const char *text, size_t n, int32_t *out_ids);

/**
 * @brief Turn ids back into text, NUL-terminated.
 *
 * @param[in]  ids      [n] ids, each in [0, 128); borrowed; may be NULL when @p n is 0.
 * @param[in]  n        number of ids.
 * @param[out] out      [out_size] bytes, caller-owned; receives n bytes and a NUL.
 * @param[in]  out_size bytes available at @p out; at least n + 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, or an id outside
 *         [0, 128), the message naming its index and value);
 *         ::SCALAR_E_BUFSIZE (@p out_size < n + 1; nothing written).
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_ascii_decode(const int32_t *ids, size_t n, char *out,
                                             size_t out_size);

/* ===================================================================== */
/*  Datasets                                                             */
/* ===================================================================== */

/** @name Splits of a dataset (values frozen)
 * @{ */
#define SCALAR_SPLIT_TRAIN 0 /**< The training prefix. */
#define SCALAR_SPLIT_VAL 1   /**< The validation rest. */
#define SCALAR_SPLIT_ALL 2   /**< Every token, training then validation. */
/** @} */

/** @name File formats of scalar_dataset_options::format (values frozen)
 * @{ */
#define SCALAR_DATA_AUTO 0    /**< By extension: `.npy`, `.bin`, anything else text. */
#define SCALAR_DATA_TEXT 1    /**< Raw bytes through the ASCII tokenizer. */
#define SCALAR_DATA_NPY 2     /**< A 1-D `.npy` array of uint16 or int32 ids. */
#define SCALAR_DATA_BIN_U16 3 /**< Flat little-endian uint16 ids, no header. */
/** @} */

/**
 * @brief A token sequence with its vocabulary size and train/val split.
 *
 * Create with scalar_dataset_load(), scalar_dataset_load_files(),
 * scalar_dataset_create_from_ids() or scalar_dataset_create_from_text(); the
 * tokens live in memory (4 bytes each) allocated through the context.
 * @note Immutable after creation: share freely across threads.  Cursors and
 *       batch buffers belong to the caller, one per thread.
 */
typedef struct scalar_dataset scalar_dataset;

/**
 * @brief Options of the dataset constructors.
 *
 * Fill with scalar_dataset_options_init(), then change fields.  Fields are
 * ordered largest first and the struct has no padding; new fields are only
 * appended.
 * @since 0.2
 */
typedef struct scalar_dataset_options {
    size_t struct_size;     /**< Set by scalar_dataset_options_init(). */
    double val_fraction;    /**< Share of tokens held out for validation, in [0, 1); default 0.1. */
    int64_t split_multiple; /**< The training prefix is a multiple of this, >= 1; default 256. */
    int32_t format;         /**< A SCALAR_DATA_* value; default ::SCALAR_DATA_AUTO. Files only. */
    int32_t vocab;          /**< Every id is below it; 0 (default): 128 for text, max id + 1 for ids. */
} scalar_dataset_options;

/**
 * @brief Fill @p options with defaults.
 *
 * @param[out] options     the struct to fill.
 * @param[in]  struct_size `sizeof *options` as the caller compiled it.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG if @p options is NULL or
 *         @p struct_size is smaller than the first version of the struct.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_options_init(scalar_dataset_options *options,
                                                     size_t struct_size);

/**
 * @brief The library's `sizeof(scalar_dataset_options)`.
 * @return the size in bytes.
 * @since 0.2
 */
SCALAR_API size_t scalar_dataset_options_size(void);

/**
 * @brief Load a dataset from one file.
 *
 * The format is `options->format`; with ::SCALAR_DATA_AUTO it follows the
 * file name's extension (lower case): `.npy`, `.bin`, anything else is text.
 * Every id is checked: negative ids, and ids >= `vocab` when a vocabulary
 * size is given, are refused.
 *
 * Options are read as by scalar_ctx_create(): `min(struct_size, known size)`
 * bytes, a larger struct only if its unknown tail is zero.
 *
 * @param[out] out     receives the owned dataset on success, NULL on failure.
 * @param[in]  ctx     borrowed; the dataset holds a reference.
 * @param[in]  path    file name.
 * @param[in]  options copied; NULL means all defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, `val_fraction`
 *         outside [0, 1), `split_multiple` < 1, unknown `format`, negative
 *         `vocab`); ::SCALAR_E_VERSION (bad options `struct_size`);
 *         ::SCALAR_E_IO (cannot open or map, the message naming the path and
 *         the system's reason); ::SCALAR_E_FORMAT (empty file, `.npy` not a
 *         1-D uint16 or int32 array, `.bin` of odd length, a negative id or
 *         one >= `vocab`, named by index and value); ::SCALAR_E_NOMEM.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_load(scalar_dataset **out, scalar_ctx *ctx,
                                             const char *path,
                                             const scalar_dataset_options *options);

/**
 * @brief Load a dataset from several files, concatenated in the given order.
 *
 * Each file is read as by scalar_dataset_load() (with ::SCALAR_DATA_AUTO, by
 * its own extension); the split applies to the concatenation.  With `vocab`
 * 0 the vocabulary is 128 if any file is text, and at least max id + 1.
 *
 * @param[out] out     receives the owned dataset on success, NULL on failure.
 * @param[in]  ctx     borrowed; the dataset holds a reference.
 * @param[in]  paths   [n_paths] file names, none NULL; borrowed.
 * @param[in]  n_paths at least 1.
 * @param[in]  options copied; NULL means all defaults.
 * @return as scalar_dataset_load(); ::SCALAR_E_INVALID_ARG also for
 *         @p n_paths 0 or a NULL entry.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_load_files(scalar_dataset **out, scalar_ctx *ctx,
                                                   const char *const *paths, size_t n_paths,
                                                   const scalar_dataset_options *options);

/**
 * @brief Create a dataset from token ids in memory.
 *
 * `options->format` is not used (it must still be a SCALAR_DATA_* value).
 *
 * @param[out] out     receives the owned dataset on success, NULL on failure.
 * @param[in]  ctx     borrowed; the dataset holds a reference.
 * @param[in]  ids     [n] ids, each >= 0 (and < `vocab` if given); copied.
 * @param[in]  n       at least 1.
 * @param[in]  options copied; NULL means all defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, @p n 0, bad
 *         options, an id out of range named by index and value);
 *         ::SCALAR_E_VERSION; ::SCALAR_E_NOMEM.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_create_from_ids(scalar_dataset **out, scalar_ctx *ctx,
                                                        const int32_t *ids, size_t n,
                                                        const scalar_dataset_options *options);

/**
 * @brief Create a dataset from text in memory, through the ASCII tokenizer.
 *
 * `options->format` is not used (it must still be a SCALAR_DATA_* value);
 * `vocab` 0 means 128.
 *
 * @param[out] out     receives the owned dataset on success, NULL on failure.
 * @param[in]  ctx     borrowed; the dataset holds a reference.
 * @param[in]  text    [n] bytes (need not be NUL-terminated); copied.
 * @param[in]  n       at least 1.
 * @param[in]  options copied; NULL means all defaults.
 * @return as scalar_dataset_create_from_ids().
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_create_from_text(scalar_dataset **out, scalar_ctx *ctx,
                                                         const char *text, size_t n,
                                                         const scalar_dataset_options *options);

/**
 * @brief Free a dataset; NULL does nothing.
 * @param[in] dataset owned; invalid after the call.
 * @note Thread-safe against other objects of the same context.
 * @since 0.2
 */
SCALAR_API void scalar_dataset_free(scalar_dataset *dataset);

/**
 * @brief The number of tokens in a split.
 * @param[out] out     receives the count.
 * @param[in]  dataset borrowed.
 * @param[in]  split   a SCALAR_SPLIT_* value.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, unknown split).
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_n_tokens(const scalar_dataset *dataset, int32_t split,
                                                 int64_t *out);

/**
 * @brief The vocabulary size: every id of the dataset is below it.
 * @param[in]  dataset borrowed.
 * @param[out] out     receives the size.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_vocab_size(const scalar_dataset *dataset, int32_t *out);

/**
 * @brief Copy tokens [offset, offset + n) of a split.
 * @param[in]  dataset borrowed.
 * @param[in]  split   a SCALAR_SPLIT_* value.
 * @param[in]  offset  first token, counted from the split's start, >= 0.
 * @param[in]  n       tokens to copy, >= 0; offset + n at most the split's size.
 * @param[out] out     [n] ids, caller-owned; may be NULL when @p n is 0.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, unknown split,
 *         range outside the split).
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_tokens(const scalar_dataset *dataset, int32_t split,
                                               int64_t offset, int64_t n, int32_t *out);

/**
 * @brief The next sequential batch of a split (SPEC 1's loader: unshuffled, wrapping).
 *
 * If `*cursor + B*T + 1` exceeds the split's size, `*cursor` first goes back
 * to 0.  Then with `buf = tokens[*cursor, *cursor + B*T + 1)` of the split,
 * @p x receives `buf[0 .. B*T)` and @p y `buf[1 .. B*T]`, both read as
 * [B, T] row-major, and `*cursor` advances by B*T.  Start with a cursor of 0;
 * save it to resume.
 *
 * @param[in]     dataset borrowed.
 * @param[in]     split   a SCALAR_SPLIT_* value.
 * @param[in,out] cursor  token offset into the split, >= 0; updated on success only.
 * @param[in]     B       sequences per batch, >= 1.
 * @param[in]     T       tokens per sequence, >= 1.
 * @param[out]    x       [B, T] input ids, caller-owned.
 * @param[out]    y       [B, T] target ids (x shifted by one), caller-owned;
 *                        must not overlap @p x.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, unknown split,
 *         B or T < 1, negative cursor); ::SCALAR_E_SHAPE (the split holds
 *         fewer than B*T + 1 tokens).
 * @note Thread-safe (the cursor and buffers are the caller's).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_batch(const scalar_dataset *dataset, int32_t split,
                                              int64_t *cursor, int64_t B, int64_t T,
                                              int32_t *x, int32_t *y);

/**
 * @brief A batch of B random windows of a split, deterministic in (seed, step).
 *
 * Row b is the window of T + 1 tokens starting at an offset drawn uniformly
 * from [0, n_split - T - 1] by the library's RNG on stream @p step of
 * @p seed: @p x gets its first T tokens, @p y its last T.  Windows are
 * independent and may overlap.  The same (seed, step) gives the same batch on
 * every machine.
 *
 * @param[in]  dataset borrowed.
 * @param[in]  split   a SCALAR_SPLIT_* value.
 * @param[in]  seed    seed, e.g. scalar_ctx_seed().
 * @param[in]  step    stream number, e.g. the training step.
 * @param[in]  B       sequences per batch, >= 1.
 * @param[in]  T       tokens per sequence, >= 1.
 * @param[out] x       [B, T] input ids, caller-owned.
 * @param[out] y       [B, T] target ids, caller-owned; must not overlap @p x.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL argument, unknown split,
 *         B or T < 1); ::SCALAR_E_SHAPE (the split holds fewer than T + 1 tokens).
 * @note Thread-safe.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_dataset_batch_random(const scalar_dataset *dataset,
                                                     int32_t split, uint64_t seed,
                                                     int64_t step, int64_t B, int64_t T,
                                                     int32_t *x, int32_t *y);

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_DATA_H */
