#include "suites.h"
Suite *scalar_core_suite(void) { return suite_create("core"); }
