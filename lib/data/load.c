/*
 * load.c - datasets from files: raw text (ASCII tokenizer), .npy ids (uint16
 * or int32, 1-D) and flat little-endian uint16 .bin ids, one file or several
 * concatenated.
 *
 * Every file is opened and measured first, then the tokens of all of them are
 * decoded into one allocation: no growing buffer, no second read.
 */
#include <stdio.h>
#include <string.h>

#include "data_internal.h"

typedef struct source {
    const char *path;
    int32_t format;            /* resolved: TEXT, NPY or BIN_U16 */
    scalar__mapped_file file;  /* TEXT and BIN_U16 */
    scalar_npy *npy;           /* NPY */
    uint64_t n;                /* tokens */
} source;

static const char *format_name(int32_t format)
{
    return format == SCALAR_DATA_NPY ? "npy" : format == SCALAR_DATA_BIN_U16 ? "bin" : "text";
}

/* ::SCALAR_DATA_AUTO: by the extension of the last path component. */
static int32_t resolve_format(const char *path, int32_t format)
{
    if (format != SCALAR_DATA_AUTO)
        return format;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (dot && strcmp(dot, ".npy") == 0)
        return SCALAR_DATA_NPY;
    if (dot && strcmp(dot, ".bin") == 0)
        return SCALAR_DATA_BIN_U16;
    return SCALAR_DATA_TEXT;
}

/* The npy reader's failure, re-raised under our name: a type or order it does
 * not read is a malformed token file here. */
static scalar_status npy_failed(scalar_status st, const char *fn, const char *path)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", scalar_last_error());
    if (st == SCALAR_E_UNSUPPORTED)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: token ids must be a 1-D uint16 or "
                                 "int32 array (%s)", fn, path, msg);
    return scalar__error_set(st, "%s: %s", fn, msg);
}

static scalar_status open_npy(source *src, scalar_ctx *ctx, const char *fn)
{
    scalar_status st = scalar_npy_open(&src->npy, ctx, src->path);
    if (st != SCALAR_OK)
        return npy_failed(st, fn, src->path);
    int32_t dtype = scalar_npy_dtype(src->npy), ndim = scalar_npy_ndim(src->npy);
    if (dtype != SCALAR_DTYPE_U16 && dtype != SCALAR_DTYPE_I32)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: token ids must be uint16 or int32, "
                                 "not %s", fn, src->path, scalar_dtype_name(dtype));
    if (ndim != 1)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: token ids must be a 1-D array, not "
                                 "%d-D", fn, src->path, (int)ndim);
    src->n = scalar_npy_numel(src->npy);
    return SCALAR_OK;
}

static scalar_status open_source(source *src, scalar_ctx *ctx, const char *path, int32_t format,
                                 const char *fn)
{
    scalar_status st;
    src->path = path;
    src->format = resolve_format(path, format);
    if (src->format == SCALAR_DATA_NPY) {
        st = open_npy(src, ctx, fn);
    } else {
        st = scalar__file_map(&src->file, path, fn);
        src->n = src->format == SCALAR_DATA_BIN_U16 ? src->file.size / 2 : src->file.size;
        if (st == SCALAR_OK && src->format == SCALAR_DATA_BIN_U16 && src->file.size % 2)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: a .bin file of uint16 ids has an "
                                     "even length, not %zu bytes", fn, path, src->file.size);
    }
    if (st == SCALAR_OK && src->n == 0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: the %s file holds no tokens", fn, path,
                                 format_name(src->format));
    return st;
}

static void close_source(source *src)
{
    scalar_npy_free(src->npy);
    scalar__file_unmap(&src->file);
    memset(src, 0, sizeof *src);
}

/* Decode one source's src->n tokens into dst and check them. */
static scalar_status read_source(int32_t *dst, int32_t *max_id, const source *src, int32_t vocab,
                                 const char *fn)
{
    if (src->format == SCALAR_DATA_NPY) {
        scalar_status st = scalar_npy_read_i32(dst, (size_t)src->n, src->npy);
        if (st != SCALAR_OK)
            return npy_failed(st, fn, src->path);
    } else if (src->format == SCALAR_DATA_BIN_U16) {
        const unsigned char *b = src->file.data;
        for (uint64_t i = 0; i < src->n; i++)
            dst[i] = (int32_t)b[2 * i] | (int32_t)b[2 * i + 1] << 8;
    } else {
        scalar__ascii_encode(dst, src->file.data, (size_t)src->n);
    }
    return scalar__dataset_check_ids(max_id, dst, src->n, vocab, SCALAR_E_FORMAT, fn, src->path);
}

/* Open every source, then decode them all into one token array. */
static scalar_status load_sources(int32_t **out_tokens, int64_t *out_n, int32_t *max_id,
                                  int32_t *min_vocab, source *srcs, scalar_ctx *ctx,
                                  const char *const *paths, size_t n_paths,
                                  const scalar_dataset_options *o, const char *fn)
{
    uint64_t total = 0, bytes;
    scalar_status st;
    for (size_t i = 0; i < n_paths; i++) {
        if ((st = open_source(&srcs[i], ctx, paths[i], o->format, fn)) != SCALAR_OK)
            return st;
        if (scalar__add_overflow(total, srcs[i].n, &total))
            total = UINT64_MAX;
        if (srcs[i].format == SCALAR_DATA_TEXT)
            *min_vocab = SCALAR_ASCII_VOCAB_SIZE;
    }
    if (total > (uint64_t)INT64_MAX || scalar__mul_overflow(total, sizeof(int32_t), &bytes) ||
        bytes > SIZE_MAX)
        return scalar__error_set(SCALAR_E_NOMEM, "%s: %llu tokens do not fit in memory", fn,
                                 (unsigned long long)total);
    int32_t *tokens = scalar__alloc(ctx, (size_t)bytes, fn);
    if (!tokens)
        return SCALAR_E_NOMEM;
    uint64_t at = 0;
    for (size_t i = 0; i < n_paths; i++) {
        if ((st = read_source(tokens + at, max_id, &srcs[i], o->vocab, fn)) != SCALAR_OK) {
            scalar__free(ctx, tokens);
            return st;
        }
        at += srcs[i].n;
    }
    *out_tokens = tokens;
    *out_n = (int64_t)total;
    return SCALAR_OK;
}

static scalar_status load(scalar_dataset **out, scalar_ctx *ctx, const char *const *paths,
                          size_t n_paths, const scalar_dataset_options *options, const char *fn)
{
    scalar_dataset_options o;
    int32_t *tokens = NULL;
    int64_t n = 0;
    int32_t max_id = 0, min_vocab = 0;
    scalar_status st = scalar__dataset_options_read(&o, options, fn);
    if (st != SCALAR_OK)
        return st;
    source *srcs = scalar__calloc(ctx, n_paths, sizeof *srcs, fn);
    if (!srcs)
        return SCALAR_E_NOMEM;
    st = load_sources(&tokens, &n, &max_id, &min_vocab, srcs, ctx, paths, n_paths, &o, fn);
    for (size_t i = 0; i < n_paths; i++)
        close_source(&srcs[i]);
    scalar__free(ctx, srcs);
    if (st != SCALAR_OK)
        return st;
    return scalar__dataset_make(out, ctx, tokens, n, max_id, min_vocab, &o, fn);
}

scalar_status scalar_dataset_load(scalar_dataset **out, scalar_ctx *ctx, const char *path,
                                  const scalar_dataset_options *options)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_dataset_load: out, ctx and path "
                                 "must not be NULL");
    return load(out, ctx, &path, 1, options, "scalar_dataset_load");
}

scalar_status scalar_dataset_load_files(scalar_dataset **out, scalar_ctx *ctx,
                                        const char *const *paths, size_t n_paths,
                                        const scalar_dataset_options *options)
{
    static const char fn[] = "scalar_dataset_load_files";
    if (out)
        *out = NULL;
    if (!out || !ctx || !paths)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out, ctx and paths must not be NULL",
                                 fn);
    if (n_paths == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_paths is 0; give at least one file",
                                 fn);
    for (size_t i = 0; i < n_paths; i++)
        if (!paths[i])
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: paths[%zu] is NULL", fn, i);
    return load(out, ctx, paths, n_paths, options, fn);
}
