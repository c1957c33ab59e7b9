/* PLACEHOLDER: replaced by the CLI work. */
#include <stdio.h>
#include <scalar/scalar.h>
int main(void) { printf("scalar %s\n", scalar_version_string()); return 0; }
