/* io_internal.h - helpers shared by the readers and writers under lib/io/. */
#ifndef SCALAR_IO_INTERNAL_H
#define SCALAR_IO_INTERNAL_H

#include "../internal.h"

/* The dtype whose safetensors name is `name[0..n)`, or -1. */
int32_t scalar__dtype_from_name(const char *name);

/* Convert `n` little-endian elements of `dtype` at `src` (any alignment) to
 * float32.  SCALAR_E_UNSUPPORTED for the float8 types. */
scalar_status scalar__convert_to_f32(float *dst, const unsigned char *src, int32_t dtype,
                                     uint64_t n);

float scalar__f16_to_f32(uint16_t h);
float scalar__bf16_to_f32(uint16_t b);

/* numel = product of shape; 0 on success, -1 on overflow past 2^62 elements. */
int scalar__shape_numel(uint64_t *out, const int64_t *shape, int32_t ndim);

#endif
