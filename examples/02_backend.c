/* 02_backend.c - run a kernel through the context's backend (implementer tier). */
#include <stdio.h>

#include <scalar/scalar.h>
#include <scalar/sys/backend.h>

int main(void)
{
    scalar_ctx *ctx = NULL;
    scalar_ctx_options o;
    /* C[2,2] = A[2,3] B[3,2], row-major. */
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const float b[6] = {1, 0, 0, 1, 1, 1};
    float c[4] = {0};

    scalar_ctx_options_init(&o, sizeof o);
    o.n_threads = 1;
    if (scalar_ctx_create(&ctx, &o) != SCALAR_OK) {
        fprintf(stderr, "%s\n", scalar_last_error());
        return 1;
    }
    scalar_backend *be = scalar_ctx_backend(ctx);
    if (scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, 2, 2, 3, 1.0f, a, 3, b, 2,
                             0.0f, c, 2) != SCALAR_OK) {
        fprintf(stderr, "%s\n", scalar_last_error());
        return 1;
    }
    printf("backend %s\n", scalar_ctx_backend_name(ctx));
    printf("C = [[%g, %g], [%g, %g]]\n", c[0], c[1], c[2], c[3]);

    /* Bad shapes are refused with a message, never an abort inside BLIS. */
    scalar_status st = scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, 2, 2, 3, 1.0f,
                                            a, 2, b, 2, 0.0f, c, 2);
    printf("lda too small: %s\n", scalar_status_string(st));
    scalar_ctx_free(ctx);
    return 0;
}
