/* PLACEHOLDER: replaced by the backend work. */
#include "suites.h"
Suite *scalar_backend_suite(void) { return suite_create("backend"); }
