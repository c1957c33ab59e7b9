/* PLACEHOLDER: replaced by the io work. */
#include "suites.h"
Suite *scalar_io_suite(void) { return suite_create("io"); }
