/* 01_safetensors.c - write a safetensors file atomically, read it back. */
#include <stdio.h>

#include <scalar/scalar.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        scalar_status st_ = (call);                                                  \
        if (st_ != SCALAR_OK) {                                                      \
            fprintf(stderr, "%s: %s\n", scalar_status_string(st_), scalar_last_error()); \
            return 1;                                                                \
        }                                                                            \
    } while (0)

int main(void)
{
    scalar_ctx *ctx = NULL;
    scalar_safetensors_writer *w = NULL;
    scalar_safetensors *st = NULL;
    float weight[2][3] = {{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}};
    int32_t ids[4] = {7, 8, 9, 10};
    int64_t wshape[2] = {2, 3}, ishape[1] = {4};

    CHECK(scalar_ctx_create(&ctx, NULL));
    CHECK(scalar_safetensors_writer_create(&w, ctx));
    CHECK(scalar_safetensors_writer_add(w, "weight", SCALAR_DTYPE_F32, wshape, 2, weight,
                                        sizeof weight));
    CHECK(scalar_safetensors_writer_add(w, "ids", SCALAR_DTYPE_I32, ishape, 1, ids, sizeof ids));
    CHECK(scalar_safetensors_writer_set_metadata(w, "format", "pt"));
    CHECK(scalar_safetensors_writer_write(w, "example.safetensors"));
    scalar_safetensors_writer_free(w);

    CHECK(scalar_safetensors_open(&st, ctx, "example.safetensors"));
    for (size_t i = 0; i < scalar_safetensors_count(st); i++) {
        int64_t shape[SCALAR_MAX_DIMS];
        float values[6];
        int32_t ndim = scalar_safetensors_ndim(st, i);
        CHECK(scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, i));
        CHECK(scalar_safetensors_read_f32(values, 6, st, i));
        printf("%-6s %-3s [", scalar_safetensors_name(st, i),
               scalar_dtype_name(scalar_safetensors_dtype(st, i)));
        for (int32_t d = 0; d < ndim; d++)
            printf("%s%lld", d ? ", " : "", (long long)shape[d]);
        printf("] first=%g last=%g\n", values[0],
               values[scalar_safetensors_numel(st, i) - 1]);
    }
    printf("metadata format=%s\n", scalar_safetensors_metadata_get(st, "format"));
    scalar_safetensors_free(st);
    scalar_ctx_free(ctx);
    return 0;
}
