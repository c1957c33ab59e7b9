/*
 * main.c - runs every Check suite.  CK_RUN_SUITE / CK_RUN_CASE / CK_TAGS
 * select parts; CK_FORK=no for gdb and valgrind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"

const char *test_tmp_path(const char *name)
{
    static char dir[512];
    static char bufs[8][1024];
    static int next;
    if (!dir[0]) {
        const char *base = getenv("SCALAR_TEST_TMP");
        snprintf(dir, sizeof dir, "%s/unit-%ld", base && *base ? base : "/tmp", (long)getpid());
        mkdir(dir, 0755);
    }
    char *b = bufs[next++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

int main(void)
{
    SRunner *sr = srunner_create(scalar_core_suite());
    srunner_add_suite(sr, scalar_backend_suite());
    srunner_add_suite(sr, scalar_io_suite());
    srunner_add_suite(sr, scalar_data_suite());
    srunner_add_suite(sr, scalar_cli_suite());
    srunner_add_suite(sr, scalar_model_suite());
    srunner_add_suite(sr, scalar_cli_model_suite());
    srunner_add_suite(sr, scalar_sae_suite());
    srunner_add_suite(sr, scalar_sae_train_suite());
    srunner_add_suite(sr, scalar_evaluator_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
