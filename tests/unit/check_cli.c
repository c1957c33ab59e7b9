/* PLACEHOLDER: replaced by the cli work. */
#include "suites.h"
Suite *scalar_cli_suite(void) { return suite_create("cli"); }
