/*
 * check_backend.h - helpers shared by check_backend.c (registry, dispatch,
 * buffers), check_backend_kernels.c and check_backend_numerics.c
 * (conformance, gradients, known values, thread determinism) and
 * check_backend_model.c (the same for the model-layer kernels).
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
/* Asserts the status and that the thread's message contains `needle`. */
void bt_assert_error(scalar_status got, scalar_status want, const char *needle);

/* A conformance case: `be` against the cpu-ref backend `ref`. */
typedef void (*bt_conf_fn)(scalar_backend *be, scalar_backend *ref, const char *name,
                           scalar__rng *rng);
/* Run `fn` for every registered host backend but cpu-ref (2 threads). */
void bt_for_each_backend(bt_conf_fn fn);

TCase *bt_conformance_tcase(void);
TCase *bt_gradient_tcase(void);
TCase *bt_known_values_tcase(void);
TCase *bt_threads_tcase(void);
/* check_backend_model.c */
TCase *bt_model_validation_tcase(void);
TCase *bt_model_conformance_tcase(void);
TCase *bt_model_gradient_tcase(void);
TCase *bt_model_known_values_tcase(void);
TCase *bt_model_threads_tcase(void);
/* check_backend_sparse.c */
TCase *bt_sparse_tcase(void);

#endif
