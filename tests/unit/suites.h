/* suites.h - every Check suite of the unit-test binary, and shared helpers. */
#ifndef SCALAR_TEST_SUITES_H
#define SCALAR_TEST_SUITES_H

#include <check.h>

Suite *scalar_core_suite(void);    /* check_core.c: status, errors, ctx, options, allocator, RNG */
Suite *scalar_backend_suite(void); /* check_backend.c: registry, dispatch, conformance */
Suite *scalar_io_suite(void);      /* check_io.c: safetensors, npy, JSON, atomic files */
Suite *scalar_cli_suite(void);     /* check_cli.c: the scalar program */

/* A scratch folder for this test process (under $SCALAR_TEST_TMP or /tmp),
 * created on first use; returns "<dir>/<name>" in a static buffer per call
 * site-independent rotation of 8 buffers. */
const char *test_tmp_path(const char *name);

#endif
