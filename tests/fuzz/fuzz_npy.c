/*
 * fuzz_npy.c - libFuzzer target for the .npy reader.
 *
 * Every input goes through scalar_npy_open_memory().  A rejected input must
 * leave *out NULL and a message; an accepted one is read back as int32 and
 * float32 and its invariants checked.  A broken invariant traps.
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

static void setup(void)
{
    scalar_ctx_options o;
    scalar_ctx_options_init(&o, sizeof o);
    o.backend = "cpu-ref";
    o.n_threads = 1;
    if (scalar_ctx_create(&ctx, &o) != SCALAR_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        setup();
    scalar_npy *npy = (scalar_npy *)&ctx; /* must be reset */
    scalar_last_error_clear();
    scalar_status s = scalar_npy_open_memory(&npy, ctx, data, size);
    if (s != SCALAR_OK) {
        CHECK(npy == NULL);
        CHECK(s == SCALAR_E_FORMAT || s == SCALAR_E_UNSUPPORTED || s == SCALAR_E_NOMEM);
        CHECK(scalar_last_error()[0] != '\0');
        return 0;
    }
    CHECK(npy != NULL);
    int32_t dtype = scalar_npy_dtype(npy), ndim = scalar_npy_ndim(npy);
    uint64_t numel = scalar_npy_numel(npy);
    int64_t shape[SCALAR_MAX_DIMS];
    CHECK(dtype == SCALAR_DTYPE_U16 || dtype == SCALAR_DTYPE_I32 || dtype == SCALAR_DTYPE_F32);
    CHECK(ndim >= 0 && ndim <= SCALAR_MAX_DIMS);
    CHECK(scalar_npy_shape(shape, SCALAR_MAX_DIMS, npy) == SCALAR_OK);
    if (ndim > 0)
        CHECK(scalar_npy_shape(shape, (size_t)ndim - 1, npy) == SCALAR_E_BUFSIZE);
    uint64_t prod = 1;
    for (int32_t d = 0; d < ndim; d++) {
        CHECK(shape[d] >= 0);
        prod *= (uint64_t)shape[d];
    }
    CHECK(prod == numel);
    /* The data fits in the input (after at least the 10-byte preamble). */
    CHECK(numel * scalar_dtype_size(dtype) <= size - 10);

    if (numel <= (1u << 20)) {
        size_t n = numel ? (size_t)numel : 1;
        float *f = malloc(n * sizeof *f);
        int32_t *i32 = malloc(n * sizeof *i32);
        CHECK(f && i32);
        CHECK(scalar_npy_read_f32(f, (size_t)numel, npy) == SCALAR_OK);
        s = scalar_npy_read_i32(i32, (size_t)numel, npy);
        if (dtype == SCALAR_DTYPE_F32) {
            CHECK(s == SCALAR_E_UNSUPPORTED);
        } else {
            CHECK(s == SCALAR_OK);
            for (uint64_t k = 0; k < numel; k++) {
                CHECK(f[k] == (float)i32[k]);
                if (dtype == SCALAR_DTYPE_U16)
                    CHECK(i32[k] >= 0 && i32[k] <= 65535);
            }
        }
        if (numel > 0)
            CHECK(scalar_npy_read_f32(f, (size_t)numel - 1, npy) == SCALAR_E_BUFSIZE);
        free(f);
        free(i32);
    }
    scalar_npy_free(npy);
    return 0;
}
