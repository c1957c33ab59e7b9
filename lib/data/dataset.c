/*
 * dataset.c - the dataset handle: options, the train/val split, queries, and
 * the two batch readers (sequential with a caller-held cursor; seeded random
 * windows).  Loading files is load.c.
 */
#include <math.h>
#include <string.h>

#include "data_internal.h"

#define DEFAULT_VAL_FRACTION 0.1
#define DEFAULT_SPLIT_MULTIPLE 256
#define OPTIONS_V1_SIZE sizeof(scalar_dataset_options)

/* ---- options ---- */

scalar_status scalar_dataset_options_init(scalar_dataset_options *options, size_t struct_size)
{
    if (!options)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_dataset_options_init: options is NULL");
    if (struct_size < OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_dataset_options_init: struct_size %zu < %zu",
                                 struct_size, (size_t)OPTIONS_V1_SIZE);
    memset(options, 0, struct_size);
    options->struct_size = struct_size;
    options->val_fraction = DEFAULT_VAL_FRACTION;
    options->split_multiple = DEFAULT_SPLIT_MULTIPLE;
    options->format = SCALAR_DATA_AUTO;
    options->vocab = 0;
    return SCALAR_OK;
}

size_t scalar_dataset_options_size(void)
{
    return sizeof(scalar_dataset_options);
}

/* The extensible-struct rule of scalar_ctx_create: a larger struct than ours
 * is fine only if the bytes we do not know are zero. */
static scalar_status check_options(const scalar_dataset_options *o, const char *fn)
{
    if (!(o->val_fraction >= 0.0 && o->val_fraction < 1.0)) /* NaN fails too */
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: val_fraction=%g must be in [0, 1)",
                                 fn, o->val_fraction);
    if (o->split_multiple < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: split_multiple=%lld must be >= 1",
                                 fn, (long long)o->split_multiple);
    if (o->format < SCALAR_DATA_AUTO || o->format > SCALAR_DATA_BIN_U16)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: format=%d is not a SCALAR_DATA_* "
                                 "value", fn, (int)o->format);
    if (o->vocab < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: vocab=%d must be >= 0 (0: from the "
                                 "data)", fn, (int)o->vocab);
    return SCALAR_OK;
}

scalar_status scalar__dataset_options_read(scalar_dataset_options *o,
                                           const scalar_dataset_options *given, const char *fn)
{
    scalar_dataset_options_init(o, sizeof *o);
    if (!given)
        return SCALAR_OK;
    if (given->struct_size < OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION, "%s: options.struct_size %zu is smaller than "
                                 "version 1 (%zu); fill it with scalar_dataset_options_init",
                                 fn, given->struct_size, (size_t)OPTIONS_V1_SIZE);
    if (!scalar__tail_is_zero(given, sizeof *o, given->struct_size))
        return scalar__error_set(SCALAR_E_VERSION, "%s: options.struct_size %zu > %zu and the "
                                 "fields this library does not know are not zero", fn,
                                 given->struct_size, sizeof *o);
    memcpy(o, given, sizeof *o);
    o->struct_size = sizeof *o;
    return check_options(o, fn);
}

/* ---- building ---- */

scalar_status scalar__dataset_check_ids(int32_t *max_id, const int32_t *ids, uint64_t n,
                                        int32_t vocab, scalar_status status, const char *fn,
                                        const char *src)
{
    /* INT32_MAX is never valid: no int32 vocabulary size lies above it. */
    int32_t limit = vocab > 0 ? vocab : INT32_MAX, top = *max_id;
    for (uint64_t i = 0; i < n; i++) {
        int32_t v = ids[i];
        if (v >= 0 && v < limit) {
            top = v > top ? v : top;
            continue;
        }
        if (v < 0)
            return scalar__error_set(status, "%s: %s: id %d at index %llu is negative", fn, src,
                                     (int)v, (unsigned long long)i);
        return scalar__error_set(status, "%s: %s: id %d at index %llu is not below the "
                                 "vocabulary size %d", fn, src, (int)v, (unsigned long long)i,
                                 (int)limit);
    }
    *max_id = top;
    return SCALAR_OK;
}

/* SPEC 1: the first floor(n * (1 - val_fraction)) tokens (Python's
 * int(0.9 * n) for the default), rounded down to a multiple of split_multiple. */
static int64_t split_point(int64_t n, double val_fraction, int64_t multiple)
{
    int64_t n_train = (int64_t)floor((double)n * (1.0 - val_fraction));
    if (n_train > n) /* rounding of n beyond 2^53 */
        n_train = n;
    return n_train - n_train % multiple;
}

scalar_status scalar__dataset_make(scalar_dataset **out, scalar_ctx *ctx, int32_t *tokens,
                                   int64_t n, int32_t max_id, int32_t min_vocab,
                                   const scalar_dataset_options *o, const char *fn)
{
    scalar_dataset *ds = scalar__calloc(ctx, 1, sizeof *ds, fn);
    if (!ds) {
        scalar__free(ctx, tokens);
        return SCALAR_E_NOMEM;
    }
    scalar__ctx_retain(ctx);
    ds->ctx = ctx;
    ds->tokens = tokens;
    ds->n_tokens = n;
    ds->n_train = split_point(n, o->val_fraction, o->split_multiple);
    ds->vocab = o->vocab ? o->vocab : (max_id + 1 > min_vocab ? max_id + 1 : min_vocab);
    *out = ds;
    return SCALAR_OK;
}

static int32_t *copy_in(scalar_ctx *ctx, size_t n, const char *fn)
{
    uint64_t bytes;
    if (n > (uint64_t)INT64_MAX || scalar__mul_overflow(n, sizeof(int32_t), &bytes) ||
        bytes > SIZE_MAX) {
        scalar__error_set(SCALAR_E_NOMEM, "%s: %zu tokens do not fit in memory", fn, n);
        return NULL;
    }
    return scalar__alloc(ctx, (size_t)bytes, fn);
}

static scalar_status create_begin(scalar_dataset_options *o, scalar_dataset **out,
                                  scalar_ctx *ctx, const void *data, size_t n,
                                  const scalar_dataset_options *given, const char *fn)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || !data)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out, ctx and the data must not be "
                                 "NULL", fn);
    if (n == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a dataset needs at least one token",
                                 fn);
    return scalar__dataset_options_read(o, given, fn);
}

scalar_status scalar_dataset_create_from_ids(scalar_dataset **out, scalar_ctx *ctx,
                                             const int32_t *ids, size_t n,
                                             const scalar_dataset_options *options)
{
    static const char fn[] = "scalar_dataset_create_from_ids";
    scalar_dataset_options o;
    int32_t max_id = 0;
    scalar_status st = create_begin(&o, out, ctx, ids, n, options, fn);
    if (st == SCALAR_OK)
        st = scalar__dataset_check_ids(&max_id, ids, n, o.vocab, SCALAR_E_INVALID_ARG, fn, "ids");
    if (st != SCALAR_OK)
        return st;
    int32_t *tokens = copy_in(ctx, n, fn);
    if (!tokens)
        return SCALAR_E_NOMEM;
    memcpy(tokens, ids, n * sizeof *tokens);
    return scalar__dataset_make(out, ctx, tokens, (int64_t)n, max_id, 0, &o, fn);
}

scalar_status scalar_dataset_create_from_text(scalar_dataset **out, scalar_ctx *ctx,
                                              const char *text, size_t n,
                                              const scalar_dataset_options *options)
{
    static const char fn[] = "scalar_dataset_create_from_text";
    scalar_dataset_options o;
    int32_t max_id = 0;
    scalar_status st = create_begin(&o, out, ctx, text, n, options, fn);
    if (st != SCALAR_OK)
        return st;
    int32_t *tokens = copy_in(ctx, n, fn);
    if (!tokens)
        return SCALAR_E_NOMEM;
    scalar__ascii_encode(tokens, (const unsigned char *)text, n);
    st = scalar__dataset_check_ids(&max_id, tokens, n, o.vocab, SCALAR_E_INVALID_ARG, fn, "text");
    if (st != SCALAR_OK) {
        scalar__free(ctx, tokens);
        return st;
    }
    return scalar__dataset_make(out, ctx, tokens, (int64_t)n, max_id, SCALAR_ASCII_VOCAB_SIZE,
                                &o, fn);
}

void scalar_dataset_free(scalar_dataset *dataset)
{
    if (!dataset)
        return;
    scalar_ctx *ctx = dataset->ctx;
    scalar__free(ctx, dataset->tokens);
    scalar__free(ctx, dataset);
    scalar__ctx_release(ctx);
}

/* ---- queries ---- */

static const char *split_name(int32_t split)
{
    return split == SCALAR_SPLIT_TRAIN ? "train" : split == SCALAR_SPLIT_VAL ? "val" : "all";
}

/* The tokens of one split: [*n] ids at *tokens. */
static scalar_status split_view(const int32_t **tokens, int64_t *n, const scalar_dataset *ds,
                                int32_t split, const char *fn)
{
    switch (split) {
    case SCALAR_SPLIT_TRAIN:
        *tokens = ds->tokens;
        *n = ds->n_train;
        return SCALAR_OK;
    case SCALAR_SPLIT_VAL:
        *tokens = ds->tokens + ds->n_train;
        *n = ds->n_tokens - ds->n_train;
        return SCALAR_OK;
    case SCALAR_SPLIT_ALL:
        *tokens = ds->tokens;
        *n = ds->n_tokens;
        return SCALAR_OK;
    default:
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: split=%d is not a SCALAR_SPLIT_* "
                                 "value", fn, (int)split);
    }
}

scalar_status scalar_dataset_n_tokens(const scalar_dataset *dataset, int32_t split, int64_t *out)
{
    const int32_t *tokens;
    if (!dataset || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_dataset_n_tokens: dataset and "
                                 "out must not be NULL");
    return split_view(&tokens, out, dataset, split, "scalar_dataset_n_tokens");
}

scalar_status scalar_dataset_vocab_size(const scalar_dataset *dataset, int32_t *out)
{
    if (!dataset || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_dataset_vocab_size: dataset and "
                                 "out must not be NULL");
    *out = dataset->vocab;
    return SCALAR_OK;
}

scalar_status scalar_dataset_tokens(const scalar_dataset *dataset, int32_t split, int64_t offset,
                                    int64_t n, int32_t *out)
{
    static const char fn[] = "scalar_dataset_tokens";
    const int32_t *tokens;
    int64_t n_split;
    if (!dataset || (!out && n))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: dataset and out must not be NULL",
                                 fn);
    scalar_status st = split_view(&tokens, &n_split, dataset, split, fn);
    if (st != SCALAR_OK)
        return st;
    if (offset < 0 || n < 0 || offset > n_split || n > n_split - offset)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: range [%lld, %lld + %lld) is outside "
                                 "split '%s' of %lld tokens", fn, (long long)offset,
                                 (long long)offset, (long long)n, split_name(split),
                                 (long long)n_split);
    if (n)
        memcpy(out, tokens + offset, (size_t)n * sizeof *out);
    return SCALAR_OK;
}

/* ---- batches ---- */

/* *bt = B*T after checking B, T >= 1, and that a split of n_split tokens holds
 * need + 1 (B*T + 1 sequentially, T + 1 for random windows). */
static scalar_status batch_size(int64_t *bt, const char *fn, int32_t split, int64_t n_split,
                                int64_t B, int64_t T, uint64_t need, const char *need_text)
{
    uint64_t prod;
    if (B < 1 || T < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: B=%lld and T=%lld must be >= 1", fn,
                                 (long long)B, (long long)T);
    if (scalar__mul_overflow((uint64_t)B, (uint64_t)T, &prod) || prod > SIZE_MAX / 4)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: B=%lld x T=%lld tokens overflow", fn,
                                 (long long)B, (long long)T);
    if (need >= (uint64_t)n_split)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: split '%s' holds %lld tokens; B=%lld x "
                                 "T=%lld needs %s = %llu", fn, split_name(split),
                                 (long long)n_split, (long long)B, (long long)T, need_text,
                                 (unsigned long long)need + 1);
    *bt = (int64_t)prod;
    return SCALAR_OK;
}

scalar_status scalar_dataset_batch(const scalar_dataset *dataset, int32_t split, int64_t *cursor,
                                   int64_t B, int64_t T, int32_t *x, int32_t *y)
{
    static const char fn[] = "scalar_dataset_batch";
    const int32_t *tokens;
    int64_t n, bt;
    if (!dataset || !cursor || !x || !y)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: dataset, cursor, x and y must not be "
                                 "NULL", fn);
    scalar_status st = split_view(&tokens, &n, dataset, split, fn);
    if (st != SCALAR_OK)
        return st;
    if (*cursor < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: cursor=%lld must be >= 0", fn,
                                 (long long)*cursor);
    if ((st = batch_size(&bt, fn, split, n, B, T, (uint64_t)B * (uint64_t)T, "B*T + 1")) !=
        SCALAR_OK)
        return st;
    int64_t c = *cursor;
    if (c > n - (bt + 1)) /* the batch would overrun: wrap to the start */
        c = 0;
    memcpy(x, tokens + c, (size_t)bt * sizeof *x);
    memcpy(y, tokens + c + 1, (size_t)bt * sizeof *y);
    *cursor = c + bt;
    return SCALAR_OK;
}

scalar_status scalar_dataset_batch_random(const scalar_dataset *dataset, int32_t split,
                                          uint64_t seed, int64_t step, int64_t B, int64_t T,
                                          int32_t *x, int32_t *y)
{
    static const char fn[] = "scalar_dataset_batch_random";
    const int32_t *tokens;
    int64_t n, bt;
    scalar__rng rng;
    if (!dataset || !x || !y)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: dataset, x and y must not be NULL",
                                 fn);
    scalar_status st = split_view(&tokens, &n, dataset, split, fn);
    if (st != SCALAR_OK)
        return st;
    if ((st = batch_size(&bt, fn, split, n, B, T, (uint64_t)T, "T + 1")) != SCALAR_OK)
        return st;
    scalar__rng_init(&rng, seed, (uint64_t)step);
    for (int64_t b = 0; b < B; b++) {
        /* T + 1 tokens from an offset in [0, n - T - 1]. */
        int64_t off = (int64_t)scalar__rng_below(&rng, (uint64_t)(n - T));
        memcpy(x + b * T, tokens + off, (size_t)T * sizeof *x);
        memcpy(y + b * T, tokens + off + 1, (size_t)T * sizeof *y);
    }
    return SCALAR_OK;
}
