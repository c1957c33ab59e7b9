/* check_data.h - what the check_data*.c files (the "data" suite) share.  They
 * reuse the io suite's fixture (a counting cpu-ref context per test, checked
 * for leaks), its IO_EXPECT and its .npy and file builders. */
#ifndef SCALAR_TEST_CHECK_DATA_H
#define SCALAR_TEST_CHECK_DATA_H

#include "check_io.h"

/* Create with `expr` (which writes `*out`), require SCALAR_OK and a handle. */
#define DATA_OK(expr, ds)                                                                  \
    do {                                                                                   \
        scalar_last_error_clear();                                                         \
        scalar_status got_ = (expr);                                                       \
        ck_assert_msg(got_ == SCALAR_OK, "%s: got %d (%s)", #expr, (int)got_,              \
                      scalar_last_error());                                                \
        ck_assert_ptr_nonnull(ds);                                                         \
    } while (0)

int64_t data_n(const scalar_dataset *ds, int32_t split); /* n_tokens, asserted OK */

void data_add_load_tests(Suite *s); /* check_data_load.c */

#endif
