/*
 * check_io.c - the "io" suite: shared helpers (counting allocator, fixture,
 * builders of safetensors and .npy bytes, file helpers) and the suite itself.
 * The tests live in check_io_*.c:
 *   check_io_safetensors.c  reader: rejects, accepts, getters, files, ownership
 *   check_io_convert.c      read_f32 from every dtype, unaligned views
 *   check_io_writer.c       writer: round trips, rejects, atomic failures
 *   check_io_npy.c          .npy reader
 *   check_io_json.c         the internal JSON config reader
 *   check_io_alloc.c        allocation-failure injection
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_io.h"

scalar_status io_ctx_with(scalar_ctx **out, io_counting *c)
{
    return test_ctx_with(out, c, "cpu-ref", 1);
}

/* ---- fixture ---- */

scalar_ctx *io_ctx;
io_counting io_count;

void io_setup(void)
{
    memset(&io_count, 0, sizeof io_count);
    io_ctx = NULL;
    ck_assert_int_eq(io_ctx_with(&io_ctx, &io_count), SCALAR_OK);
}

void io_teardown(void)
{
    scalar_ctx_free(io_ctx);
    io_ctx = NULL;
    /* Every handle a test opened was freed: nothing of the context is left. */
    ck_assert_uint_eq(io_count.live_bytes, 0);
    ck_assert_int_eq(io_count.n_alloc, io_count.n_free);
}

TCase *io_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, io_setup, io_teardown);
    tcase_set_timeout(tc, 60);
    return tc;
}

/* ---- safetensors bytes ---- */

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

size_t io_st_raw(unsigned char *out, size_t cap, uint64_t hlen, const char *header,
                 const void *data, size_t ndata)
{
    size_t n = strlen(header);
    ck_assert_uint_le(8 + n + ndata, cap);
    put_u64(out, hlen);
    memcpy(out + 8, header, n);
    if (ndata)
        memcpy(out + 8 + n, data, ndata);
    return 8 + n + ndata;
}

size_t io_st_build(unsigned char *out, size_t cap, const io_tensor *t, size_t n,
                   const char *meta)
{
    char h[8192];
    size_t len = 0, off = 0, total = 0;
    len += (size_t)snprintf(h + len, sizeof h - len, "{");
    if (meta)
        len += (size_t)snprintf(h + len, sizeof h - len, "\"__metadata__\":%s%s", meta,
                                n ? "," : "");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, sizeof h - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(h + len, sizeof h - len, "%s%lld", d ? "," : "",
                                    (long long)t[i].shape[d]);
        len += (size_t)snprintf(h + len, sizeof h - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + t[i].nbytes);
        off += t[i].nbytes;
        ck_assert_uint_lt(len, sizeof h - 64);
    }
    len += (size_t)snprintf(h + len, sizeof h - len, "}");
    while (len % 8)
        h[len++] = ' ';
    h[len] = '\0';
    ck_assert_uint_le(8 + len + off, cap);
    put_u64(out, len);
    memcpy(out + 8, h, len);
    total = 8 + len;
    for (size_t i = 0; i < n; i++) {
        if (t[i].nbytes)
            memcpy(out + total, t[i].data, t[i].nbytes);
        total += t[i].nbytes;
    }
    return total;
}

/* ---- .npy bytes ---- */

size_t io_npy_build(unsigned char *out, size_t cap, int major, const char *dict,
                    const void *data, size_t ndata)
{
    size_t pre = major == 1 ? 10 : 12, dlen = strlen(dict);
    size_t hlen = dlen + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    ck_assert_uint_le(pre + hlen + ndata, cap);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + pre, dict, dlen);
    memset(out + pre + dlen, ' ', hlen - dlen - 1);
    out[pre + hlen - 1] = '\n';
    if (ndata)
        memcpy(out + pre + hlen, data, ndata);
    return pre + hlen + ndata;
}

/* ---- files ---- */

void io_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

size_t io_read_file(const char *path, void *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return (size_t)-1;
    size_t n = fread(out, 1, cap, f);
    fclose(f);
    return n;
}

int io_count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* ---- the suite ---- */

Suite *scalar_io_suite(void)
{
    Suite *s = suite_create("io");
    io_add_safetensors_tests(s);
    io_add_convert_tests(s);
    io_add_writer_tests(s);
    io_add_npy_tests(s);
    io_add_json_tests(s);
    io_add_alloc_tests(s);
    return s;
}
