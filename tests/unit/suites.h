/* suites.h - every Check suite of the unit-test binary, and shared helpers. */
#ifndef SCALAR_TEST_SUITES_H
#define SCALAR_TEST_SUITES_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "scalar/scalar.h"

Suite *scalar_core_suite(void);    /* check_core.c: status, errors, ctx, options, allocator, RNG */
Suite *scalar_backend_suite(void); /* check_backend.c: registry, dispatch, conformance */
Suite *scalar_io_suite(void);      /* check_io.c: safetensors, npy, JSON, atomic files */
Suite *scalar_data_suite(void);    /* check_data*.c: ASCII tokenizer, datasets, splits, batches */
Suite *scalar_cli_suite(void);     /* check_cli.c: the scalar program */
Suite *scalar_model_suite(void);   /* check_model.c: GPT-2 model, fixture, training */
Suite *scalar_cli_model_suite(void); /* check_cli_model.c: train-model, generate, eval-model */
Suite *scalar_sae_suite(void);     /* check_sae.c: SAE handle, codes, SAELens files */
Suite *scalar_sae_train_suite(void); /* check_sae_train.c: groups, trainer, fixture */
Suite *scalar_evaluator_suite(void); /* check_evaluator.c: the SCALAR evaluator */

/* A scratch folder for this test process (under $SCALAR_TEST_TMP or /tmp),
 * created on first use; returns "<dir>/<name>" in a static buffer per call
 * site-independent rotation of 8 buffers. */
const char *test_tmp_path(const char *name);

/* A counting allocator that can fail its Nth call (test_alloc.c). */
typedef struct {
    long n_alloc, n_free, fail_at; /* fail_at: 1-based call number to fail, 0 = never */
    size_t live_bytes;
} test_counting;

/* A context whose allocations go through `c`; backend NULL = "cpu",
 * n_threads 0 = default. */
scalar_status test_ctx_with(scalar_ctx **out, test_counting *c, const char *backend,
                            int32_t n_threads);

/* Run the `scalar` program (check_cli.c): args NULL-terminated, without argv[0]. */
typedef struct cli_result {
    int status; /* exit code; 128 + signal if killed */
    char *out;
    char *err;
} cli_result;
cli_result run_cli(const char *const *args);
void cli_result_free(cli_result *r);

#endif
