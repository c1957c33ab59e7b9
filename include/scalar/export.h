/**
 * @file export.h
 * @brief Symbol-visibility and linkage macros used by every public header.
 *
 * Macros only; nothing here needs to be called.  The library is built with
 * `-fvisibility=hidden`, and `SCALAR_API` marks the functions that are exported.
 */
#ifndef SCALAR_EXPORT_H
#define SCALAR_EXPORT_H

/** @cond SCALAR_INTERNAL_MACROS */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(SCALAR_BUILDING_LIBRARY)
#    define SCALAR_API __declspec(dllexport)
#  else
#    define SCALAR_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define SCALAR_API __attribute__((visibility("default")))
#else
#  define SCALAR_API
#endif

#if defined(__GNUC__)
#  define SCALAR_DEPRECATED(msg) __attribute__((deprecated(msg)))
#  define SCALAR_WARN_UNUSED __attribute__((warn_unused_result))
#else
#  define SCALAR_DEPRECATED(msg)
#  define SCALAR_WARN_UNUSED
#endif

#ifdef __cplusplus
#  define SCALAR_BEGIN_DECL extern "C" {
#  define SCALAR_END_DECL }
#else
#  define SCALAR_BEGIN_DECL
#  define SCALAR_END_DECL
#endif
/** @endcond */

#endif /* SCALAR_EXPORT_H */
