/**
 * @file version.h
 * @brief Compile-time version numbers; the single source the Makefile reads.
 *
 * The marketing version (MAJOR.MINOR.PATCH) and the ABI counter are separate:
 * the shared library's soname is `libscalar.so.<SCALAR_ABI_VERSION>`, bumped only
 * when a released symbol or public struct changes meaning.  Compare these
 * macros with scalar_version() and scalar_abi_version() at run time.
 */
#ifndef SCALAR_VERSION_H
#define SCALAR_VERSION_H

/** Major version: incompatible API changes. */
#define SCALAR_VERSION_MAJOR 0
/** Minor version: added functionality. */
#define SCALAR_VERSION_MINOR 1
/** Patch version: fixes. */
#define SCALAR_VERSION_PATCH 0
/** The version as one number, MAJOR*10000 + MINOR*100 + PATCH. */
#define SCALAR_VERSION_NUMBER \
    (SCALAR_VERSION_MAJOR * 10000 + SCALAR_VERSION_MINOR * 100 + SCALAR_VERSION_PATCH)
/** The version as text. */
#define SCALAR_VERSION_STRING "0.1.0"
/** ABI counter: the number in the soname `libscalar.so.N`. */
#define SCALAR_ABI_VERSION 0

#endif /* SCALAR_VERSION_H */
