/* test_alloc.c - the counting allocator every suite uses to find leaks and to
 * inject allocation failures (declared in suites.h). */
#include <stdlib.h>

#include "suites.h"

static void *count_alloc(void *user, size_t size, size_t alignment)
{
    test_counting *c = user;
    c->n_alloc++;
    if (c->fail_at && c->n_alloc == c->fail_at)
        return NULL;
    c->live_bytes += size;
    return aligned_alloc(alignment, size);
}

static void count_free(void *user, void *ptr, size_t size)
{
    test_counting *c = user;
    c->n_free++;
    c->live_bytes -= size;
    free(ptr);
}

scalar_status test_ctx_with(scalar_ctx **out, test_counting *c, const char *backend,
                            int32_t n_threads)
{
    scalar_allocator a;
    scalar_ctx_options o;
    scalar_allocator_init(&a, sizeof a);
    a.user = c;
    a.alloc = count_alloc;
    a.free = count_free;
    scalar_ctx_options_init(&o, sizeof o);
    o.allocator = &a;
    o.backend = backend;
    o.n_threads = n_threads;
    return scalar_ctx_create(out, &o);
}
