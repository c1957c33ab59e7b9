/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader.
 *
 * Every input goes through scalar_safetensors_open_memory().  A rejected input
 * must leave *out NULL and a message; an accepted one is walked in full
 * (names, dtypes, shapes, views, conversion to float32, metadata) and its
 * invariants checked: views inside the input, sorted by offset, touching,
 * sized numel * dtype size, names found by find().  A broken invariant traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/json.h"

#define CHECK(x)              \
    do {                      \
        if (!(x))             \
            __builtin_trap(); \
    } while (0)

static scalar_ctx *ctx;
static float *fbuf;
static size_t fbuf_cap;

static void setup(void)
{
    scalar_ctx_options o;
    scalar_ctx_options_init(&o, sizeof o);
    o.backend = "cpu-ref";
    o.n_threads = 1;
    if (scalar_ctx_create(&ctx, &o) != SCALAR_OK)
        abort();
}

static float *floats(size_t n)
{
    if (n > fbuf_cap) {
        free(fbuf);
        fbuf_cap = n;
        fbuf = malloc(n * sizeof *fbuf);
        CHECK(fbuf != NULL);
    }
    return fbuf;
}

static void walk_tensor(const scalar_safetensors *st, size_t i, const uint8_t *data, size_t size,
                        const unsigned char **expect)
{
    const char *name = scalar_safetensors_name(st, i);
    int32_t dtype = scalar_safetensors_dtype(st, i);
    int32_t ndim = scalar_safetensors_ndim(st, i);
    uint64_t numel = scalar_safetensors_numel(st, i);
    int64_t shape[SCALAR_MAX_DIMS];
    const void *view = NULL;
    size_t nbytes = 0, found = (size_t)-1;

    CHECK(name != NULL);
    CHECK(scalar_dtype_name(dtype) != NULL);
    CHECK(ndim >= 0 && ndim <= SCALAR_MAX_DIMS);
    CHECK(scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, i) == SCALAR_OK);
    if (ndim > 0)
        CHECK(scalar_safetensors_shape(shape, (size_t)ndim - 1, st, i) == SCALAR_E_BUFSIZE);
    uint64_t prod = 1;
    for (int32_t d = 0; d < ndim; d++) {
        CHECK(shape[d] >= 0);
        prod *= (uint64_t)shape[d]; /* cannot overflow: the reader checked it */
    }
    CHECK(prod == numel);
    CHECK(scalar_safetensors_data(&view, &nbytes, st, i) == SCALAR_OK);
    CHECK(nbytes == numel * scalar_dtype_size(dtype));
    /* Inside the input, in offset order, each range starting where the last ended. */
    const unsigned char *p = view;
    CHECK(p >= data && p <= data + size && nbytes <= (size_t)(data + size - p));
    CHECK(p == *expect);
    *expect = p + nbytes;
    CHECK(scalar_safetensors_find(&found, st, name) == SCALAR_OK);
    CHECK(strcmp(scalar_safetensors_name(st, found), name) == 0);

    if (numel <= (1u << 20)) {
        float *out = floats(numel ? (size_t)numel : 1);
        scalar_status s = scalar_safetensors_read_f32(out, (size_t)numel, st, i);
        if (dtype == SCALAR_DTYPE_F8_E4M3 || dtype == SCALAR_DTYPE_F8_E5M2)
            CHECK(s == SCALAR_E_UNSUPPORTED);
        else
            CHECK(s == SCALAR_OK);
        if (numel > 0 && s == SCALAR_OK)
            CHECK(scalar_safetensors_read_f32(out, (size_t)numel - 1, st, i) == SCALAR_E_BUFSIZE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        setup();
    scalar_safetensors *st = (scalar_safetensors *)&ctx; /* must be reset */
    scalar_last_error_clear();
    scalar_status s = scalar_safetensors_open_memory(&st, ctx, data, size);
    if (s != SCALAR_OK) {
        CHECK(st == NULL);
        CHECK(s == SCALAR_E_FORMAT || s == SCALAR_E_NOMEM);
        CHECK(scalar_last_error()[0] != '\0');
        return 0;
    }
    CHECK(st != NULL);
    size_t n = scalar_safetensors_count(st);
    /* The data section starts after the 8-byte length and the header, and the
     * ranges cover it exactly. */
    uint64_t hlen;
    CHECK(size >= 8);
    memcpy(&hlen, data, 8);
    CHECK(hlen <= size - 8);
    const unsigned char *expect = data + 8 + hlen;
    for (size_t i = 0; i < n; i++)
        walk_tensor(st, i, data, size, &expect);
    CHECK(expect == data + size);
    CHECK(scalar_safetensors_name(st, n) == NULL);
    CHECK(scalar_safetensors_dtype(st, n) == -1);
    CHECK(scalar_safetensors_ndim(st, n) == -1);
    CHECK(scalar_safetensors_numel(st, n) == 0);

    size_t nm = scalar_safetensors_metadata_count(st);
    for (size_t i = 0; i < nm; i++) {
        const char *k = scalar_safetensors_metadata_key(st, i);
        CHECK(k != NULL);
        const char *v = scalar_safetensors_metadata_get(st, k);
        CHECK(v != NULL);
        CHECK(scalar__utf8_valid((const unsigned char *)v, strlen(v)));
    }
    CHECK(scalar_safetensors_metadata_key(st, nm) == NULL);
    scalar_safetensors_free(st);
    return 0;
}
