/* check_io.h - helpers shared by the check_io*.c files (the "io" suite). */
#ifndef SCALAR_TEST_CHECK_IO_H
#define SCALAR_TEST_CHECK_IO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "suites.h"

/* ---- the counting allocator of suites.h, on a single-threaded cpu-ref context ---- */
typedef test_counting io_counting;

scalar_status io_ctx_with(scalar_ctx **out, io_counting *c);

/* The checked fixture of every io TCase: a fresh counting context per test in
 * `io_ctx`, freed after the test, which then checks nothing is left alive. */
extern scalar_ctx *io_ctx;
extern io_counting io_count;
void io_setup(void);
void io_teardown(void);
TCase *io_tcase(const char *name); /* with the fixture and a 60 s timeout */

/* Call `expr` with the thread's message cleared, then require status `want`
 * and a message containing `substr`. */
#define IO_EXPECT(expr, want, substr)                                                     \
    do {                                                                                  \
        scalar_last_error_clear();                                                        \
        scalar_status got_ = (expr);                                                      \
        ck_assert_msg(got_ == (want), "%s: got %d, expected %d (message: \"%s\")", #expr, \
                      (int)got_, (int)(want), scalar_last_error());                       \
        ck_assert_msg(strstr(scalar_last_error(), (substr)) != NULL,                      \
                      "%s: message \"%s\" lacks \"%s\"", #expr, scalar_last_error(),      \
                      (substr));                                                          \
    } while (0)

/* ---- building safetensors bytes ---- */
typedef struct {
    const char *name;
    const char *dtype; /* the safetensors name, e.g. "F32" */
    int ndim;
    int64_t shape[SCALAR_MAX_DIMS];
    const void *data;
    size_t nbytes; /* laid out in order, offsets computed */
} io_tensor;

/* Writes u64 length + header JSON (+ `meta`, a JSON object text or NULL) +
 * spaces to a multiple of 8 + data into `out`; returns the size. */
size_t io_st_build(unsigned char *out, size_t cap, const io_tensor *t, size_t n,
                   const char *meta);
/* u64 length `hlen` + `header` (strlen bytes) + `data`.  `hlen` is written as
 * given, so it may lie. */
size_t io_st_raw(unsigned char *out, size_t cap, uint64_t hlen, const char *header,
                 const void *data, size_t ndata);

/* ---- building .npy bytes ---- */
/* Magic, version major.0, header length, `dict` + spaces + '\n' padded so the
 * data starts at a multiple of 64 (as numpy writes), then the data. */
size_t io_npy_build(unsigned char *out, size_t cap, int major, const char *dict,
                    const void *data, size_t ndata);

/* ---- files ---- */
void io_write_file(const char *path, const void *data, size_t n);
/* Reads at most cap bytes; returns the count, or (size_t)-1 if it cannot open. */
size_t io_read_file(const char *path, void *out, size_t cap);
/* Entries of `dir` whose name contains ".tmp." (leftover temporary files). */
int io_count_tmp_files(const char *dir);

/* ---- the TCases, one function per file ---- */
void io_add_safetensors_tests(Suite *s); /* check_io_safetensors.c */
void io_add_convert_tests(Suite *s);     /* check_io_convert.c */
void io_add_writer_tests(Suite *s);      /* check_io_writer.c */
void io_add_npy_tests(Suite *s);         /* check_io_npy.c */
void io_add_json_tests(Suite *s);        /* check_io_json.c */
void io_add_alloc_tests(Suite *s);       /* check_io_alloc.c */

#endif
