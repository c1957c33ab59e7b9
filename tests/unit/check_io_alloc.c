/*
 * check_io_alloc.c - allocation-failure injection: the Nth allocation after
 * the context exists fails, for N = 1, 2, ... until the operation succeeds.
 * Every failure must be SCALAR_E_NOMEM with *out NULL, and once everything
 * is freed the allocator must have nothing left alive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_io.h"

#define MAX_TRIES 500

static _Alignas(64) unsigned char buf[4096];

/* A context whose allocator fails its Nth call counted from now. */
static scalar_ctx *failing_ctx(io_counting *c, long n)
{
    scalar_ctx *ctx = NULL;
    memset(c, 0, sizeof *c);
    ck_assert_int_eq(io_ctx_with(&ctx, c), SCALAR_OK);
    c->fail_at = c->n_alloc + n;
    return ctx;
}

static void finish(scalar_ctx *ctx, io_counting *c)
{
    scalar_ctx_free(ctx);
    ck_assert_msg(c->live_bytes == 0, "%zu bytes left alive", c->live_bytes);
    ck_assert_int_eq(c->n_alloc - (c->fail_at && c->n_alloc >= c->fail_at), c->n_free);
}

/* Three tensors and two metadata entries. */
static size_t three_tensor_file(void)
{
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t ids[2] = {7, 8};
    static const uint16_t h[1] = {0x3C00};
    const io_tensor t[] = {{"encoder.weight", "F32", 2, {2, 3}, w, sizeof w},
                           {"ids", "I64", 1, {2}, ids, sizeof ids},
                           {"scale", "F16", 0, {0}, h, sizeof h}};
    return io_st_build(buf, sizeof buf, t, 3,
                       "{\"format\":\"pt\",\"hook_name\":\"blocks.8.hook_resid_pre\"}");
}

START_TEST(test_safetensors_open_survives_every_allocation_failure)
{
    const char *path = test_tmp_path("alloc.safetensors");
    io_write_file(path, buf, three_tensor_file());
    long n;
    for (n = 1; n < MAX_TRIES; n++) {
        io_counting c;
        scalar_ctx *ctx = failing_ctx(&c, n);
        scalar_safetensors *st = (scalar_safetensors *)&st;
        scalar_last_error_clear();
        scalar_status s = scalar_safetensors_open(&st, ctx, path);
        if (s == SCALAR_OK) {
            ck_assert_uint_eq(scalar_safetensors_count(st), 3);
            ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 2);
            ck_assert_str_eq(scalar_safetensors_metadata_get(st, "format"), "pt");
            scalar_safetensors_free(st);
            finish(ctx, &c);
            break;
        }
        ck_assert_msg(s == SCALAR_E_NOMEM, "failing allocation %ld: got %d (%s)", n, (int)s,
                      scalar_last_error());
        ck_assert_ptr_null(st);
        ck_assert_msg(scalar_last_error()[0] != '\0', "failing allocation %ld: no message", n);
        finish(ctx, &c);
    }
    ck_assert_int_gt(n, 3); /* several allocations were each made to fail */
    ck_assert_int_lt(n, MAX_TRIES);
}
END_TEST

START_TEST(test_safetensors_open_memory_survives_every_allocation_failure)
{
    size_t size = three_tensor_file();
    long n;
    for (n = 1; n < MAX_TRIES; n++) {
        io_counting c;
        scalar_ctx *ctx = failing_ctx(&c, n);
        scalar_safetensors *st = (scalar_safetensors *)&st;
        scalar_status s = scalar_safetensors_open_memory(&st, ctx, buf, size);
        if (s == SCALAR_OK) {
            float out[6];
            ck_assert_int_eq(scalar_safetensors_read_f32(out, 6, st, 0), SCALAR_OK);
            ck_assert_float_eq(out[5], 6.0f);
            scalar_safetensors_free(st);
            finish(ctx, &c);
            break;
        }
        ck_assert_msg(s == SCALAR_E_NOMEM, "failing allocation %ld: got %d", n, (int)s);
        ck_assert_ptr_null(st);
        finish(ctx, &c);
    }
    ck_assert_int_gt(n, 3);
    ck_assert_int_lt(n, MAX_TRIES);
}
END_TEST

START_TEST(test_npy_open_survives_every_allocation_failure)
{
    static const int32_t v[4] = {1, -2, 3, -4};
    const char *path = test_tmp_path("alloc.npy");
    io_write_file(path, buf,
                  io_npy_build(buf, sizeof buf, 1,
                               "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", v,
                               sizeof v));
    long n;
    for (n = 1; n < MAX_TRIES; n++) {
        io_counting c;
        scalar_ctx *ctx = failing_ctx(&c, n);
        scalar_npy *npy = (scalar_npy *)&npy;
        scalar_status s = scalar_npy_open(&npy, ctx, path);
        if (s == SCALAR_OK) {
            int32_t out[4];
            ck_assert_int_eq(scalar_npy_read_i32(out, 4, npy), SCALAR_OK);
            ck_assert_int_eq(out[3], -4);
            scalar_npy_free(npy);
            finish(ctx, &c);
            break;
        }
        ck_assert_msg(s == SCALAR_E_NOMEM, "failing allocation %ld: got %d", n, (int)s);
        ck_assert_ptr_null(npy);
        finish(ctx, &c);
    }
    ck_assert_int_gt(n, 1);
    ck_assert_int_lt(n, MAX_TRIES);
}
END_TEST

/* create + add x3 + set_metadata x2 + write: the first call that fails must
 * fail with SCALAR_E_NOMEM and leave no temporary file; the writer is then
 * freed with whatever it holds. */
START_TEST(test_writer_survives_every_allocation_failure)
{
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t ids[2] = {7, 8}, shape_w[2] = {2, 3}, shape_ids[1] = {2};
    const char *path = test_tmp_path("alloc-writer.safetensors");
    const char *dir = test_tmp_path("");
    long n;
    unlink(path);
    for (n = 1; n < MAX_TRIES; n++) {
        io_counting c;
        scalar_ctx *ctx = failing_ctx(&c, n);
        scalar_safetensors_writer *wr = (scalar_safetensors_writer *)&wr;
        scalar_status s = scalar_safetensors_writer_create(&wr, ctx);
        if (s != SCALAR_OK)
            ck_assert_ptr_null(wr);
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_add(wr, "w", SCALAR_DTYPE_F32, shape_w, 2, w, sizeof w);
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_add(wr, "ids", SCALAR_DTYPE_I64, shape_ids, 1, ids,
                                              sizeof ids);
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_set_metadata(wr, "format", "pt");
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_set_metadata(wr, "format", "np"); /* replace */
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_set_metadata(wr, "note", "x");
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_add(wr, "last", SCALAR_DTYPE_U8, NULL, 0, "z", 1);
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_write(wr, path);
        if (s != SCALAR_OK) {
            ck_assert_msg(s == SCALAR_E_NOMEM, "failing allocation %ld: got %d (%s)", n, (int)s,
                          scalar_last_error());
            ck_assert_int_eq(io_count_tmp_files(dir), 0);
            ck_assert_int_eq(access(path, F_OK), -1); /* nothing written */
        }
        scalar_safetensors_writer_free(wr); /* NULL if create failed */
        finish(ctx, &c);
        if (s == SCALAR_OK)
            break;
    }
    ck_assert_int_gt(n, 3);
    ck_assert_int_lt(n, MAX_TRIES);

    /* What the last round wrote is complete. */
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), 3);
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "format"), "np");
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "note"), "x");
    scalar_safetensors_free(st);
}
END_TEST

void io_add_alloc_tests(Suite *s)
{
    TCase *tc = io_tcase("io_alloc_failures");
    tcase_add_test(tc, test_safetensors_open_survives_every_allocation_failure);
    tcase_add_test(tc, test_safetensors_open_memory_survives_every_allocation_failure);
    tcase_add_test(tc, test_npy_open_survives_every_allocation_failure);
    tcase_add_test(tc, test_writer_survives_every_allocation_failure);
    suite_add_tcase(s, tc);
}
