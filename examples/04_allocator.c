/* 04_allocator.c - route every host allocation of a context through your hooks. */
#include <stdio.h>
#include <stdlib.h>

#include <scalar/scalar.h>

typedef struct {
    long calls;
    long live;
} stats;

static void *my_alloc(void *user, size_t size, size_t alignment)
{
    stats *s = user;
    s->calls++;
    s->live++;
    return aligned_alloc(alignment, size);
}

static void my_free(void *user, void *ptr, size_t size)
{
    stats *s = user;
    (void)size;
    s->live--;
    free(ptr);
}

int main(void)
{
    stats s = {0, 0};
    scalar_allocator a;
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;

    scalar_allocator_init(&a, sizeof a);
    a.user = &s;
    a.alloc = my_alloc;
    a.free = my_free;
    scalar_ctx_options_init(&o, sizeof o);
    o.allocator = &a; /* copied: `a` may go out of scope after create */
    if (scalar_ctx_create(&ctx, &o) != SCALAR_OK)
        return 1;
    printf("allocations while alive: %s\n", s.live > 0 ? "yes" : "no");
    scalar_ctx_free(ctx);
    printf("live allocations after free: %ld\n", s.live);
    return 0;
}
