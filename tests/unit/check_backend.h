/*
 * check_backend.h - helpers shared by check_backend.c (registry, dispatch,
 * buffers) and check_backend_kernels.c (conformance, gradients, known values,
 * thread determinism).
 */
#ifndef SCALAR_CHECK_BACKEND_H
#define SCALAR_CHECK_BACKEND_H

#include <check.h>

#include "internal.h"

/* A context on `backend` with `n_threads` threads; asserts success. */
scalar_ctx *bt_ctx(const char *backend, int32_t n_threads);
/* malloc'ed floats (at least one), asserts success; free() them. */
float *bt_floats(int64_t n);
int32_t *bt_ints(int64_t n);
/* x[i] = offset + scale * N(0, 1) */
void bt_fill_normal(float *x, int64_t n, scalar__rng *rng, float scale, float offset);
/* Normalised mean squared error sum((x - ref)^2) / sum(ref^2), in double;
 * the plain sum of squares when ref is all zeros; infinity if x and ref
 * disagree on where the NaNs are. */
double bt_nmse(const float *x, const float *ref, int64_t n);
/* Register "test-lite" (lifecycle and memory only) and "test-unsup" (an
 * sgemm that always answers SCALAR_E_UNSUPPORTED), once per process. */
void bt_register_test_backends(void);
/* Calls of test-unsup's sgemm so far. */
int bt_unsupported_calls(void);

TCase *bt_conformance_tcase(void);
TCase *bt_gradient_tcase(void);
TCase *bt_known_values_tcase(void);
TCase *bt_threads_tcase(void);

#endif
