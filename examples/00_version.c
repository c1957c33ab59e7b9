/* 00_version.c - the library's version, and a check that the header matches it. */
#include <stdio.h>

#include <scalar/scalar.h>

int main(void)
{
    /* A program built against one header and run against another library
     * should notice: compare the compile-time and run-time numbers. */
    if (scalar_abi_version() != SCALAR_ABI_VERSION) {
        fprintf(stderr, "libscalar ABI %u, built for %u\n", scalar_abi_version(),
                SCALAR_ABI_VERSION);
        return 1;
    }
    printf("libscalar %s (ABI %u)\n", scalar_version_string(), scalar_abi_version());
    return 0;
}
