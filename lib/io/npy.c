/*
 * npy.c - the NumPy .npy reader (format versions 1.0, 2.0, 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 for 1.0, u32 after),
 * then a Python dict literal such as
 *   {'descr': '<u2', 'fortran_order': False, 'shape': (1024,), }
 * padded with spaces and ended by '\n', then the data.  The dict is not JSON,
 * so a strict tokenizer for exactly this grammar reads it.
 */
#include <string.h>

#include "io_internal.h"

struct scalar_npy {
    scalar_ctx *ctx;
    scalar__mapped_file file;
    const unsigned char *payload;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[SCALAR_MAX_DIMS];
    uint64_t numel;
};

static const char FN[] = "scalar_npy_open";

typedef struct {
    const char *p, *end;
    const char *src;
    char descr[8];
    int fortran, seen_descr, seen_fortran, seen_shape;
    int32_t ndim;
    int64_t shape[SCALAR_MAX_DIMS];
} header;

static void skip_ws(header *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t'))
        h->p++;
}

static int accept(header *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

static scalar_status bad(const header *h, const char *what)
{
    return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: header: %s", FN, h->src, what);
}

/* A quoted string ('...' or "...") of at most cap-1 characters. */
static int quoted(header *h, char *out, size_t cap)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return 0;
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (n + 1 >= cap || (unsigned char)*h->p < 0x20 || *h->p == '\\')
            return 0;
        out[n++] = *h->p++;
    }
    if (h->p >= h->end)
        return 0;
    h->p++;
    out[n] = '\0';
    return 1;
}

static int word(header *h, const char *w)
{
    size_t n = strlen(w);
    skip_ws(h);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

static scalar_status parse_shape(header *h)
{
    if (!accept(h, '('))
        return bad(h, "'shape' must be a tuple");
    h->ndim = 0;
    while (!accept(h, ')')) {
        skip_ws(h);
        if (h->ndim == SCALAR_MAX_DIMS)
            return bad(h, "more than 8 dimensions");
        uint64_t v = 0;
        int digits = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9' && digits < 18) {
            v = v * 10 + (uint64_t)(*h->p++ - '0');
            digits++;
        }
        if (!digits || (h->p < h->end && *h->p >= '0' && *h->p <= '9'))
            return bad(h, "'shape' entries must be non-negative integers below 10^18");
        h->shape[h->ndim++] = (int64_t)v;
        if (!accept(h, ',')) {
            if (!accept(h, ')'))
                return bad(h, "malformed 'shape' tuple");
            break;
        }
    }
    return SCALAR_OK;
}

static scalar_status parse_entry(header *h)
{
    char key[32];
    if (!quoted(h, key, sizeof key) || !accept(h, ':'))
        return bad(h, "expected 'key': value");
    if (strcmp(key, "descr") == 0 && !h->seen_descr++) {
        if (!quoted(h, h->descr, sizeof h->descr))
            return bad(h, "'descr' must be a short string");
    } else if (strcmp(key, "fortran_order") == 0 && !h->seen_fortran++) {
        if (word(h, "True"))
            h->fortran = 1;
        else if (!word(h, "False"))
            return bad(h, "'fortran_order' must be True or False");
    } else if (strcmp(key, "shape") == 0 && !h->seen_shape++) {
        return parse_shape(h);
    } else {
        return bad(h, "unexpected or repeated key");
    }
    return SCALAR_OK;
}

static scalar_status parse_dict(header *h)
{
    if (!accept(h, '{'))
        return bad(h, "must start with '{'");
    while (!accept(h, '}')) {
        scalar_status s = parse_entry(h);
        if (s != SCALAR_OK)
            return s;
        if (!accept(h, ',')) {
            if (!accept(h, '}'))
                return bad(h, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(h);
    if (h->p >= h->end || *h->p != '\n' || h->p + 1 != h->end)
        return bad(h, "must end with spaces and one '\\n'");
    if (!h->seen_descr || !h->seen_fortran || !h->seen_shape)
        return bad(h, "needs 'descr', 'fortran_order' and 'shape'");
    return SCALAR_OK;
}

static scalar_status read_descr(scalar_npy *npy, const header *h)
{
    const char *d = h->descr;
    if (strlen(d) != 3 || !strchr("<|=>", d[0]))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: descr '%s' is not a simple type",
                                 FN, h->src, d);
    if (d[0] == '>')
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: %s: big-endian descr '%s' is not "
                                 "supported", FN, h->src, d);
    if (strcmp(d + 1, "u2") == 0)
        npy->dtype = SCALAR_DTYPE_U16;
    else if (strcmp(d + 1, "i4") == 0)
        npy->dtype = SCALAR_DTYPE_I32;
    else if (strcmp(d + 1, "f4") == 0)
        npy->dtype = SCALAR_DTYPE_F32;
    else
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: %s: descr '%s' is not supported "
                                 "(uint16 '<u2', int32 '<i4', float32 '<f4')", FN, h->src, d);
    return SCALAR_OK;
}

static scalar_status validate(scalar_npy *npy, const unsigned char *data, size_t size,
                              const char *src)
{
    size_t hlen, start;
    if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: not a .npy file (bad magic)", FN, src);
    if (data[6] < 1 || data[6] > 3 || data[7] != 0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: format version %u.%u is not 1.0, "
                                 "2.0 or 3.0", FN, src, data[6], data[7]);
    if (data[6] == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        start = 10;
    } else {
        if (size < 12)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: truncated preamble", FN, src);
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
               (size_t)data[11] << 24;
        start = 12;
    }
    if (hlen > size - start)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: header length %zu runs past the end "
                                 "of the file", FN, src, hlen);
    header h = {(const char *)data + start, (const char *)data + start + hlen, src, {0}, 0, 0, 0,
                0, 0, {0}};
    scalar_status s = parse_dict(&h);
    if (s == SCALAR_OK)
        s = read_descr(npy, &h);
    if (s != SCALAR_OK)
        return s;
    if (h.fortran && h.ndim > 1)
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: %s: Fortran-order arrays of rank %d "
                                 "are not supported", FN, src, (int)h.ndim);
    npy->ndim = h.ndim;
    memcpy(npy->shape, h.shape, sizeof h.shape);
    uint64_t nbytes;
    if (scalar__shape_numel(&npy->numel, h.shape, h.ndim) != 0 ||
        scalar__mul_overflow(npy->numel, scalar_dtype_size(npy->dtype), &nbytes))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: shape overflows", FN, src);
    if (nbytes != size - start - hlen)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %s: the shape needs %llu bytes of data, "
                                 "the file holds %zu", FN, src, (unsigned long long)nbytes,
                                 size - start - hlen);
    npy->payload = data + start + hlen;
    return SCALAR_OK;
}

static scalar_status open_common(scalar_npy **out, scalar_ctx *ctx, scalar__mapped_file *file,
                                 const unsigned char *data, size_t size, const char *src)
{
    /* Takes ownership of `file` whatever happens. */
    scalar_npy *npy = scalar__calloc(ctx, 1, sizeof *npy, FN);
    if (!npy) {
        if (file)
            scalar__file_unmap(file);
        return SCALAR_E_NOMEM;
    }
    npy->ctx = ctx;
    scalar__ctx_retain(ctx);
    if (file)
        npy->file = *file;
    scalar_status s = validate(npy, data, size, src);
    if (s != SCALAR_OK) {
        scalar_npy_free(npy);
        return s;
    }
    *out = npy;
    return SCALAR_OK;
}

scalar_status scalar_npy_open(scalar_npy **out, scalar_ctx *ctx, const char *path)
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

scalar_status scalar_npy_open_memory(scalar_npy **out, scalar_ctx *ctx, const void *data,
                                     size_t size)
{
    if (out)
        *out = NULL;
    if (!out || !ctx || (!data && size))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_npy_open_memory: out, ctx and "
                                 "data must not be NULL");
    return open_common(out, ctx, NULL, data, size, "<memory>");
}

void scalar_npy_free(scalar_npy *npy)
{
    if (!npy)
        return;
    scalar_ctx *ctx = npy->ctx;
    scalar__file_unmap(&npy->file);
    scalar__free(ctx, npy);
    scalar__ctx_release(ctx);
}

int32_t scalar_npy_dtype(const scalar_npy *npy)
{
    return npy ? npy->dtype : -1;
}

int32_t scalar_npy_ndim(const scalar_npy *npy)
{
    return npy ? npy->ndim : -1;
}

uint64_t scalar_npy_numel(const scalar_npy *npy)
{
    return npy ? npy->numel : 0;
}

scalar_status scalar_npy_shape(int64_t *out_shape, size_t capacity, const scalar_npy *npy)
{
    if (!npy || (!out_shape && capacity))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_npy_shape: NULL argument");
    if (capacity < (size_t)npy->ndim)
        return scalar__error_set(SCALAR_E_BUFSIZE, "scalar_npy_shape: capacity %zu < ndim %d",
                                 capacity, (int)npy->ndim);
    if (npy->ndim)
        memcpy(out_shape, npy->shape, (size_t)npy->ndim * sizeof(int64_t));
    return SCALAR_OK;
}

static scalar_status check_read(const char *fn, const void *out, size_t capacity,
                                const scalar_npy *npy)
{
    if (!npy || (!out && npy->numel))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: NULL argument", fn);
    if (capacity < npy->numel)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: the array has %llu elements, capacity "
                                 "%zu", fn, (unsigned long long)npy->numel, capacity);
    return SCALAR_OK;
}

scalar_status scalar_npy_read_i32(int32_t *out, size_t capacity, const scalar_npy *npy)
{
    scalar_status s = check_read("scalar_npy_read_i32", out, capacity, npy);
    if (s != SCALAR_OK)
        return s;
    if (npy->dtype == SCALAR_DTYPE_F32)
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "scalar_npy_read_i32: the array is "
                                 "float32; use scalar_npy_read_f32");
    for (uint64_t i = 0; i < npy->numel; i++) {
        if (npy->dtype == SCALAR_DTYPE_U16) {
            uint16_t v;
            memcpy(&v, npy->payload + 2 * i, 2);
            out[i] = v;
        } else {
            memcpy(&out[i], npy->payload + 4 * i, 4);
        }
    }
    return SCALAR_OK;
}

scalar_status scalar_npy_read_f32(float *out, size_t capacity, const scalar_npy *npy)
{
    scalar_status s = check_read("scalar_npy_read_f32", out, capacity, npy);
    if (s != SCALAR_OK)
        return s;
    return scalar__convert_to_f32(out, npy->payload, npy->dtype, npy->numel);
}
