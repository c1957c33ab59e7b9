/*
 * safetensors.c - the safetensors reader: mmap, full header validation,
 * zero-copy views, conversion to float32.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON (an object; tensor name ->
 * {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
 * "__metadata__" map of strings), then the data section.  The validation
 * follows the reference implementation: byte ranges, sorted by begin, must
 * start at 0, touch each other exactly, and end at the end of the data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "json.h"

#define MAX_HEADER 100000000u

typedef struct {
    char *name;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[SCALAR_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* within the data section */
} tensor;

struct scalar_safetensors {
    scalar_ctx *ctx;
    scalar__mapped_file file; /* empty for open_memory */
    const unsigned char *payload;
    size_t payload_size;
    size_t n_tensors;
    tensor *tensors; /* sorted by begin */
    size_t n_meta;
    char **meta_keys;
    char **meta_values;
};

static const char FN[] = "scalar_safetensors_open";

/* Reads a JSON number that must be an integer in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static scalar_status parse_shape(tensor *t, const cJSON *shape, const char *src)
{
    if (!cJSON_IsArray(shape))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": \"shape\" must be an "
                                 "array", FN, src, t->name);
    int n = cJSON_GetArraySize(shape);
    if (n > SCALAR_MAX_DIMS)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": rank %d exceeds %d",
                                 FN, src, t->name, n, SCALAR_MAX_DIMS);
    t->ndim = n;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": shape[%d] must be "
                                     "a non-negative integer", FN, src, t->name, i);
        t->shape[i] = (int64_t)v;
    }
    if (scalar__shape_numel(&t->numel, t->shape, t->ndim) != 0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": element count "
                                 "overflows", FN, src, t->name);
    return SCALAR_OK;
}

static scalar_status parse_offsets(tensor *t, const cJSON *off, const char *src)
{
    uint64_t nbytes;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &t->begin) ||
        json_uint(off->child->next, &t->end))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": \"data_offsets\" must "
                                 "be [begin, end] of non-negative integers", FN, src, t->name);
    if (t->begin > t->end)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": data_offsets [%llu, "
                                 "%llu] end before they begin", FN, src, t->name,
                                 (unsigned long long)t->begin, (unsigned long long)t->end);
    if (scalar__mul_overflow(t->numel, scalar_dtype_size(t->dtype), &nbytes) ||
        nbytes != t->end - t->begin)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": data_offsets [%llu, "
                                 "%llu] hold %llu bytes, %s with %llu elements needs %llu", FN,
                                 src, t->name, (unsigned long long)t->begin,
                                 (unsigned long long)t->end,
                                 (unsigned long long)(t->end - t->begin),
                                 scalar_dtype_name(t->dtype), (unsigned long long)t->numel,
                                 (unsigned long long)(t->numel * scalar_dtype_size(t->dtype)));
    return SCALAR_OK;
}

static scalar_status parse_tensor(scalar_safetensors *st, tensor *t, const cJSON *e,
                                  const char *src)
{
    if (!(t->name = scalar__strdup(st->ctx, e->string, FN)))
        return SCALAR_E_NOMEM;
    if (!cJSON_IsObject(e))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\" must be an object", FN,
                                 src, t->name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dtype))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": \"dtype\" must be a "
                                 "string", FN, src, t->name);
    if ((t->dtype = scalar__dtype_from_name(dtype->valuestring)) < 0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\": unknown dtype "
                                 "\"%.32s\"", FN, src, t->name, dtype->valuestring);
    scalar_status s = parse_shape(t, cJSON_GetObjectItemCaseSensitive(e, "shape"), src);
    if (s == SCALAR_OK)
        s = parse_offsets(t, cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), src);
    return s;
}

static scalar_status parse_metadata(scalar_safetensors *st, const cJSON *m, const char *src)
{
    if (!cJSON_IsObject(m))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: \"__metadata__\" must be an object "
                                 "of strings", FN, src);
    size_t n = (size_t)cJSON_GetArraySize(m), i = 0;
    st->meta_keys = scalar__calloc(st->ctx, n ? n : 1, sizeof(char *), FN);
    st->meta_values = scalar__calloc(st->ctx, n ? n : 1, sizeof(char *), FN);
    if (!st->meta_keys || !st->meta_values)
        return SCALAR_E_NOMEM;
    for (const cJSON *e = m->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: \"__metadata__\" value of "
                                     "\"%.100s\" is not a string", FN, src, e->string);
        st->meta_keys[i] = scalar__strdup(st->ctx, e->string, FN);
        st->meta_values[i] = scalar__strdup(st->ctx, e->valuestring, FN);
        st->n_meta = i + 1; /* counts entries whose memory must be freed */
        if (!st->meta_keys[i] || !st->meta_values[i])
            return SCALAR_E_NOMEM;
    }
    return SCALAR_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Ranges sorted by begin must tile [0, payload_size) exactly. */
static scalar_status check_coverage(const scalar_safetensors *st, const char *src)
{
    uint64_t expect = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const tensor *t = &st->tensors[i];
        if (t->begin != expect)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensor \"%s\" begins at byte "
                                     "%llu, expected %llu (%s)", FN, src, t->name,
                                     (unsigned long long)t->begin, (unsigned long long)expect,
                                     t->begin < expect ? "overlapping ranges" : "gap in the data");
        expect = t->end;
    }
    if (expect != st->payload_size)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: tensors cover %llu bytes of data but "
                                 "the file holds %zu (%s)", FN, src, (unsigned long long)expect,
                                 st->payload_size, expect < st->payload_size ?
                                 "trailing bytes" : "truncated file");
    return SCALAR_OK;
}

static scalar_status parse_header(scalar_safetensors *st, const scalar__json *h, const char *src)
{
    size_t n = 0;
    for (const cJSON *e = h->root->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    st->tensors = scalar__calloc(st->ctx, n ? n : 1, sizeof(tensor), FN);
    if (!st->tensors)
        return SCALAR_E_NOMEM;
    scalar_status s = SCALAR_OK;
    for (const cJSON *e = h->root->child; e && s == SCALAR_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            s = parse_metadata(st, e, src);
        } else {
            s = parse_tensor(st, &st->tensors[st->n_tensors++], e, src);
        }
    }
    if (s != SCALAR_OK)
        return s;
    qsort(st->tensors, st->n_tensors, sizeof(tensor), cmp_begin);
    return check_coverage(st, src);
}

static scalar_status validate(scalar_safetensors *st, const unsigned char *data, size_t size,
                              const char *src)
{
    uint64_t n;
    scalar__json h;
    if (size < 8)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: %zu bytes is too short for a "
                                 "safetensors file (8-byte header length missing)", FN, src, size);
    memcpy(&n, data, 8);
    if (n > MAX_HEADER)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: header length %llu exceeds %u", FN,
                                 src, (unsigned long long)n, MAX_HEADER);
    if (n > size - 8)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: header length %llu runs past the end "
                                 "of the file (%zu bytes)", FN, src, (unsigned long long)n, size);
    if (n == 0 || data[8] != '{')
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: the header must start with '{'", FN,
                                 src);
    scalar_status s = scalar__json_parse(&h, (const char *)data + 8, (size_t)n, src);
    if (s != SCALAR_OK) {
        /* The JSON layer names the source; add the function, as every message does. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", scalar_last_error());
        return scalar__error_set(s == SCALAR_E_NOMEM ? s : SCALAR_E_FORMAT, "%s: %s", FN, msg);
    }
    st->payload = data + 8 + n;
    st->payload_size = size - 8 - (size_t)n;
    s = parse_header(st, &h, src);
    scalar__json_free(&h);
    return s;
}

static scalar_status open_common(scalar_safetensors **out, scalar_ctx *ctx,
                                 scalar__mapped_file *file, const unsigned char *data,
                                 size_t size, const char *src)
{
    /* Takes ownership of `file` whatever happens. */
    scalar_safetensors *st = scalar__calloc(ctx, 1, sizeof *st, FN);
    if (!st) {
        if (file)
            scalar__file_unmap(file);
        return SCALAR_E_NOMEM;
    }
    st->ctx = ctx;
    scalar__ctx_retain(ctx);
    if (file)
        st->file = *file;
    scalar_status s = validate(st, data, size, src);
    if (s != SCALAR_OK) {
        scalar_safetensors_free(st);
        return s;
    }
    *out = st;
    return SCALAR_OK;
}

scalar_status scalar_safetensors_open(scalar_safetensors **out, scalar_ctx *ctx,
                                      const char *path)
{
    scalar__mapped_file f;
    if (out)
        *out = NULL;
    if (!out || !ctx || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out, ctx and path must not be NULL",
                                 FN);
    scalar_status s = scalar__file_map(&f, path, FN);
    if (s != SCALAR_OK)
        return s;
    return open_common(out, ctx, &f, f.data, f.size, path);
}

scalar_status scalar_safetensors_open_memory(scalar_safetensors **out, scalar_ctx *ctx,
                                             const void *data, size_t size)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || (!data && size))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_safetensors_open_memory: out, ctx and data must not be "
                                 "NULL");
    return open_common(out, ctx, NULL, data, size, "<memory>");
}

void scalar_safetensors_free(scalar_safetensors *st)
{
    if (!st)
        return;
    scalar_ctx *ctx = st->ctx;
    for (size_t i = 0; st->tensors && i < st->n_tensors; i++)
        scalar__free(ctx, st->tensors[i].name);
    for (size_t i = 0; i < st->n_meta; i++) {
        scalar__free(ctx, st->meta_keys[i]);
        scalar__free(ctx, st->meta_values[i]);
    }
    scalar__free(ctx, st->tensors);
    scalar__free(ctx, st->meta_keys);
    scalar__free(ctx, st->meta_values);
    scalar__file_unmap(&st->file);
    scalar__free(ctx, st);
    scalar__ctx_release(ctx);
}

/* ---- getters ---- */

static const tensor *at(const scalar_safetensors *st, size_t index)
{
    return st && index < st->n_tensors ? &st->tensors[index] : NULL;
}

size_t scalar_safetensors_count(const scalar_safetensors *st)
{
    return st ? st->n_tensors : 0;
}

scalar_status scalar_safetensors_find(size_t *out_index, const scalar_safetensors *st,
                                      const char *name)
{
    if (!out_index || !st || !name)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_safetensors_find: NULL argument");
    for (size_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) {
            *out_index = i;
            return SCALAR_OK;
        }
    return scalar__error_set(SCALAR_E_NOT_FOUND, "scalar_safetensors_find: no tensor named "
                             "\"%.200s\"", name);
}

const char *scalar_safetensors_name(const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    return t ? t->name : NULL;
}

int32_t scalar_safetensors_dtype(const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    return t ? t->dtype : -1;
}

int32_t scalar_safetensors_ndim(const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    return t ? t->ndim : -1;
}

uint64_t scalar_safetensors_numel(const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    return t ? t->numel : 0;
}

scalar_status scalar_safetensors_shape(int64_t *out_shape, size_t capacity,
                                       const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    if (!t || (!out_shape && capacity))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_safetensors_shape: NULL handle "
                                 "or index %zu out of range", index);
    if (capacity < (size_t)t->ndim)
        return scalar__error_set(SCALAR_E_BUFSIZE, "scalar_safetensors_shape: capacity %zu < "
                                 "ndim %d", capacity, (int)t->ndim);
    if (t->ndim)
        memcpy(out_shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
    return SCALAR_OK;
}

scalar_status scalar_safetensors_data(const void **out, size_t *out_nbytes,
                                      const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    if (!out || !out_nbytes || !t)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_safetensors_data: NULL argument "
                                 "or index %zu out of range", index);
    *out = st->payload + t->begin;
    *out_nbytes = (size_t)(t->end - t->begin);
    return SCALAR_OK;
}

scalar_status scalar_safetensors_read_f32(float *out, size_t capacity,
                                          const scalar_safetensors *st, size_t index)
{
    const tensor *t = at(st, index);
    if (!t || (!out && t->numel))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_safetensors_read_f32: NULL "
                                 "argument or index %zu out of range", index);
    if (capacity < t->numel)
        return scalar__error_set(SCALAR_E_BUFSIZE, "scalar_safetensors_read_f32: tensor \"%s\" "
                                 "has %llu elements, capacity %zu", t->name,
                                 (unsigned long long)t->numel, capacity);
    scalar_status s = scalar__convert_to_f32(out, st->payload + t->begin, t->dtype, t->numel);
    if (s != SCALAR_OK)
        scalar__error_set(s, "scalar_safetensors_read_f32: tensor \"%s\": %s to F32 is not "
                          "supported", t->name, scalar_dtype_name(t->dtype));
    return s;
}

size_t scalar_safetensors_metadata_count(const scalar_safetensors *st)
{
    return st ? st->n_meta : 0;
}

const char *scalar_safetensors_metadata_key(const scalar_safetensors *st, size_t index)
{
    return st && index < st->n_meta ? st->meta_keys[index] : NULL;
}

const char *scalar_safetensors_metadata_get(const scalar_safetensors *st, const char *key)
{
    for (size_t i = 0; st && key && i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}

scalar_status scalar__safetensors_find_1d(const scalar_safetensors *st, const char *name,
                                          int32_t dtype, uint64_t numel, const char *path,
                                          size_t *index)
{
    if (scalar_safetensors_find(index, st, name) != SCALAR_OK)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: tensor \"%s\" is missing", path, name);
    if (scalar_safetensors_dtype(st, *index) != dtype || scalar_safetensors_ndim(st, *index) != 1)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" must be a 1-D %s tensor", path, name,
                                 scalar_dtype_name(dtype));
    if (scalar_safetensors_numel(st, *index) != numel)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: \"%s\" has %llu values, %llu needed",
                                 path, name,
                                 (unsigned long long)scalar_safetensors_numel(st, *index),
                                 (unsigned long long)numel);
    return SCALAR_OK;
}
