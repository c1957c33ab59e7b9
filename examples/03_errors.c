/* 03_errors.c - status codes and the thread-local message. */
#include <stdio.h>

#include <scalar/scalar.h>

int main(void)
{
    scalar_ctx *ctx = NULL;
    scalar_safetensors *st = NULL;
    scalar_ctx_options o;

    scalar_ctx_options_init(&o, sizeof o);
    o.backend = "no-such-backend";
    scalar_status rc = scalar_ctx_create(&ctx, &o);
    printf("%s\n  %s\n", scalar_status_string(rc), scalar_last_error());

    if (scalar_ctx_create(&ctx, NULL) != SCALAR_OK)
        return 1;
    rc = scalar_safetensors_open(&st, ctx, "missing.safetensors");
    printf("%s (handle %s)\n", scalar_status_string(rc), st ? "set" : "NULL");
    scalar_ctx_free(ctx);
    return 0;
}
