/*
 * safetensors_writer.c - collect tensors and metadata, write one file atomically.
 *
 * The header JSON is built with cJSON (string escaping); integers go in as raw
 * text so sizes past 2^31 never print in exponent form.  The header is padded
 * with spaces so the data section starts at a multiple of 8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "json.h"

typedef struct {
    char *name;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[SCALAR_MAX_DIMS];
    const void *data; /* borrowed until write returns */
    size_t nbytes;
} entry;

struct scalar_safetensors_writer {
    scalar_ctx *ctx;
    size_t n, cap;
    entry *entries;
    size_t n_meta, meta_cap;
    char **meta_keys;
    char **meta_values;
};

scalar_status scalar_safetensors_writer_create(scalar_safetensors_writer **out, scalar_ctx *ctx)
{
    if (out)
        *out = NULL;
    if (!out || !ctx)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_safetensors_writer_create: out and ctx must not be NULL");
    scalar_safetensors_writer *w = scalar__calloc(ctx, 1, sizeof *w,
                                                  "scalar_safetensors_writer_create");
    if (!w)
        return SCALAR_E_NOMEM;
    w->ctx = ctx;
    scalar__ctx_retain(ctx);
    *out = w;
    return SCALAR_OK;
}

void scalar_safetensors_writer_free(scalar_safetensors_writer *w)
{
    if (!w)
        return;
    scalar_ctx *ctx = w->ctx;
    for (size_t i = 0; i < w->n; i++)
        scalar__free(ctx, w->entries[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        scalar__free(ctx, w->meta_keys[i]);
        scalar__free(ctx, w->meta_values[i]);
    }
    scalar__free(ctx, w->entries);
    scalar__free(ctx, w->meta_keys);
    scalar__free(ctx, w->meta_values);
    scalar__free(ctx, w);
    scalar__ctx_release(ctx);
}

/* Grow an array of `elem`-byte items to hold at least `need`. */
static int grow(scalar_ctx *ctx, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = scalar__calloc(ctx, ncap, elem, "scalar_safetensors_writer");
    if (!p)
        return -1;
    if (*arr)
        memcpy(p, *arr, *cap * elem);
    scalar__free(ctx, *arr);
    *arr = p;
    *cap = ncap;
    return 0;
}

static scalar_status check_entry(const scalar_safetensors_writer *w, const char *name,
                                 int32_t dtype, const int64_t *shape, int32_t ndim,
                                 const void *data, size_t nbytes)
{
    static const char fn[] = "scalar_safetensors_writer_add";
    uint64_t numel, need;
    if (!name || !*name || !scalar__utf8_valid((const unsigned char *)name, strlen(name)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: name must be non-empty UTF-8", fn);
    if (strcmp(name, "__metadata__") == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"__metadata__\" is reserved", fn);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: duplicate tensor \"%.200s\"", fn,
                                     name);
    if (!scalar_dtype_name(dtype))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%.200s\": unknown dtype %d", fn,
                                 name, (int)dtype);
    if (ndim < 0 || ndim > SCALAR_MAX_DIMS || (ndim && !shape))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%.200s\": ndim %d outside [0, %d]",
                                 fn, name, (int)ndim, SCALAR_MAX_DIMS);
    if (scalar__shape_numel(&numel, shape, ndim) != 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%.200s\": negative or overflowing "
                                 "shape", fn, name);
    if (scalar__mul_overflow(numel, scalar_dtype_size(dtype), &need) || need != nbytes)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: \"%.200s\": %zu bytes given, the shape "
                                 "needs %llu", fn, name, nbytes, (unsigned long long)need);
    if (!data && nbytes)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%.200s\": data is NULL", fn, name);
    return SCALAR_OK;
}

scalar_status scalar_safetensors_writer_add(scalar_safetensors_writer *w, const char *name,
                                            int32_t dtype, const int64_t *shape, int32_t ndim,
                                            const void *data, size_t nbytes)
{
    if (!w)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_safetensors_writer_add: writer is NULL");
    scalar_status s = check_entry(w, name, dtype, shape, ndim, data, nbytes);
    if (s != SCALAR_OK)
        return s;
    if (grow(w->ctx, (void **)&w->entries, &w->cap, w->n + 1, sizeof(entry)) != 0)
        return SCALAR_E_NOMEM;
    entry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = scalar__strdup(w->ctx, name, "scalar_safetensors_writer_add")))
        return SCALAR_E_NOMEM;
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim)
        memcpy(e->shape, shape, (size_t)ndim * sizeof(int64_t));
    e->data = data;
    e->nbytes = nbytes;
    w->n++;
    return SCALAR_OK;
}

static int grow_meta(scalar_safetensors_writer *w)
{
    size_t cap = w->meta_cap;
    if (grow(w->ctx, (void **)&w->meta_keys, &cap, w->n_meta + 1, sizeof(char *)) != 0)
        return -1;
    cap = w->meta_cap; /* grow the twin array to the same capacity */
    if (grow(w->ctx, (void **)&w->meta_values, &cap, w->n_meta + 1, sizeof(char *)) != 0)
        return -1;
    w->meta_cap = cap;
    return 0;
}

scalar_status scalar_safetensors_writer_set_metadata(scalar_safetensors_writer *w,
                                                     const char *key, const char *value)
{
    static const char fn[] = "scalar_safetensors_writer_set_metadata";
    if (!w || !key || !value)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: NULL argument", fn);
    if (!scalar__utf8_valid((const unsigned char *)key, strlen(key)) ||
        !scalar__utf8_valid((const unsigned char *)value, strlen(value)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: key and value must be UTF-8", fn);
    char *v = scalar__strdup(w->ctx, value, fn);
    if (!v)
        return SCALAR_E_NOMEM;
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            scalar__free(w->ctx, w->meta_values[i]);
            w->meta_values[i] = v;
            return SCALAR_OK;
        }
    char *k = scalar__strdup(w->ctx, key, fn);
    if (!k || grow_meta(w) != 0) {
        scalar__free(w->ctx, k);
        scalar__free(w->ctx, v);
        return SCALAR_E_NOMEM;
    }
    w->meta_keys[w->n_meta] = k;
    w->meta_values[w->n_meta] = v;
    w->n_meta++;
    return SCALAR_OK;
}

static cJSON *raw_uint(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* One tensor's header entry, or NULL when cJSON runs out of memory. */
static cJSON *entry_json(const entry *e, uint64_t begin)
{
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
    int ok = o && shape && off && cJSON_AddStringToObject(o, "dtype", scalar_dtype_name(e->dtype));
    for (int32_t d = 0; ok && d < e->ndim; d++)
        ok = cJSON_AddItemToArray(shape, raw_uint((uint64_t)e->shape[d]));
    ok = ok && cJSON_AddItemToArray(off, raw_uint(begin)) &&
         cJSON_AddItemToArray(off, raw_uint(begin + e->nbytes));
    if (ok && cJSON_AddItemToObject(o, "shape", shape)) {
        shape = NULL;
        if (cJSON_AddItemToObject(o, "data_offsets", off))
            return o;
    }
    cJSON_Delete(shape);
    cJSON_Delete(off);
    cJSON_Delete(o);
    return NULL;
}

/* The header text, unpadded (malloc'ed by cJSON), or NULL on out of memory. */
static char *header_text(const scalar_safetensors_writer *w)
{
    cJSON *root = cJSON_CreateObject();
    uint64_t off = 0;
    int ok = root != NULL;
    if (ok && w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (size_t i = 0; ok && i < w->n_meta; i++)
            ok = cJSON_AddStringToObject(m, w->meta_keys[i], w->meta_values[i]) != NULL;
    }
    for (size_t i = 0; ok && i < w->n; i++) {
        cJSON *e = entry_json(&w->entries[i], off);
        ok = e && cJSON_AddItemToObject(root, w->entries[i].name, e);
        if (!ok)
            cJSON_Delete(e);
        off += w->entries[i].nbytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

scalar_status scalar_safetensors_writer_write(scalar_safetensors_writer *w, const char *path)
{
    static const char fn[] = "scalar_safetensors_writer_write";
    if (!w || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: writer and path must not be NULL", fn);
    char *text = header_text(w);
    if (!text)
        return scalar__error_set(SCALAR_E_NOMEM, "%s: out of memory building the header", fn);
    size_t len = strlen(text);
    size_t padded = len + (8 - (8 + len) % 8) % 8;
    uint64_t n = padded;
    static const char spaces[8] = "       ";
    scalar__atomic_file af;
    scalar_status s = scalar__atomic_open(&af, w->ctx, path, fn);
    if (s == SCALAR_OK) {
        s = scalar__atomic_write(&af, &n, 8);
        if (s == SCALAR_OK)
            s = scalar__atomic_write(&af, text, len);
        if (s == SCALAR_OK)
            s = scalar__atomic_write(&af, spaces, padded - len);
        for (size_t i = 0; s == SCALAR_OK && i < w->n; i++)
            s = scalar__atomic_write(&af, w->entries[i].data, w->entries[i].nbytes);
        if (s == SCALAR_OK)
            s = scalar__atomic_commit(&af);
        else
            scalar__atomic_abort(&af);
    }
    free(text);
    return s;
}
