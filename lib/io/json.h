/*
 * json.h - the internal JSON config reader, on cJSON (never a parser of our own).
 *
 * Parsing validates UTF-8, requires an object at the top level, rejects
 * duplicate keys at any depth and caps the input size.  Getters look values up
 * by a dotted path ("metadata.hook_name") and produce messages that name the
 * source ("cfg.json") and the key.
 */
#ifndef SCALAR_IO_JSON_H
#define SCALAR_IO_JSON_H

#include <cjson/cJSON.h>

#include "../internal.h"

/* The safetensors header limit of the reference reader. */
#define SCALAR_JSON_MAX_BYTES 100000000u

typedef struct scalar__json {
    cJSON *root;        /* an object */
    char source[128];   /* names the input in messages, e.g. "config.json" */
} scalar__json;

/* 1 if `s[0..n)` is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int scalar__utf8_valid(const unsigned char *s, size_t n);

/* Parse `n` bytes (not necessarily NUL-terminated).  Errors: SCALAR_E_FORMAT
 * (bad UTF-8, not JSON, trailing garbage, root not an object, duplicate key),
 * SCALAR_E_INVALID_ARG (too large), SCALAR_E_NOMEM. */
scalar_status scalar__json_parse(scalar__json *out, const char *text, size_t n,
                                 const char *source);
/* Read and parse a file; `source` in messages is the path. */
scalar_status scalar__json_load(scalar__json *out, const char *path);
void scalar__json_free(scalar__json *json);

/* Lookup by dotted path; NULL if any step is missing or not an object. */
const cJSON *scalar__json_find(const scalar__json *json, const char *path);

/* Typed getters.  `required`: a missing key is SCALAR_E_FORMAT; otherwise the
 * default is stored and SCALAR_OK returned.  A present value of the wrong type
 * or out of range is always SCALAR_E_FORMAT. */
scalar_status scalar__json_int(int64_t *out, const scalar__json *json, const char *path,
                               int required, int64_t dflt, int64_t min, int64_t max);
scalar_status scalar__json_double(double *out, const scalar__json *json, const char *path,
                                  int required, double dflt);
/* The string is borrowed from `json`. */
scalar_status scalar__json_string(const char **out, const scalar__json *json, const char *path,
                                  int required, const char *dflt);
scalar_status scalar__json_bool(int *out, const scalar__json *json, const char *path,
                                int required, int dflt);

/* Write `text` (cJSON_Print output) and a newline to `path` atomically. */
scalar_status scalar__write_json_text(scalar_ctx *ctx, const char *path, const char *text,
                                      const char *caller);

#endif
