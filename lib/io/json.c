/*
 * json.c - the JSON config reader: cJSON for the parsing, our own rules on top
 * (UTF-8, object root, no duplicate keys, typed getters with clear messages).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int scalar__utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* First duplicate key among one object's children, or NULL.  Sorting keeps a
 * hostile header with millions of keys from taking quadratic time.  The
 * scratch array comes from malloc, like cJSON's own nodes. */
static const char *object_duplicate(const cJSON *obj, int *nomem)
{
    size_t n = 0, i = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return NULL;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        *nomem = 1;
        return NULL;
    }
    for (const cJSON *c = obj->child; c; c = c->next)
        keys[i++] = c->string ? c->string : "";
    qsort(keys, n, sizeof *keys, cmp_keys);
    const char *dup = NULL;
    for (i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            dup = keys[i];
    free(keys);
    return dup;
}

/* First duplicate key in any object at or below `node` (depth is bounded by
 * cJSON's nesting limit), or NULL. */
static const char *find_duplicate(const cJSON *node, int *nomem)
{
    const char *d = cJSON_IsObject(node) ? object_duplicate(node, nomem) : NULL;
    for (const cJSON *c = node->child; c && !d && !*nomem; c = c->next)
        if (cJSON_IsObject(c) || cJSON_IsArray(c))
            d = find_duplicate(c, nomem);
    return d;
}

static void set_source(scalar__json *json, const char *source)
{
    snprintf(json->source, sizeof json->source, "%s", source ? source : "JSON");
}

scalar_status scalar__json_parse(scalar__json *out, const char *text, size_t n,
                                 const char *source)
{
    memset(out, 0, sizeof *out);
    set_source(out, source);
    if (!text && n)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no text", out->source);
    if (n > SCALAR_JSON_MAX_BYTES)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %zu bytes exceed the %u-byte limit",
                                 out->source, n, (unsigned)SCALAR_JSON_MAX_BYTES);
    if (!scalar__utf8_valid((const unsigned char *)text, n))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: not valid UTF-8", out->source);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text ? text : "", n, &end, 0);
    if (!root) /* cJSON_GetErrorPtr is process-global, so no position: it would race */
        return scalar__error_set(SCALAR_E_FORMAT, "%s: not valid JSON", out->source);
    /* cJSON stops after the first value: anything but whitespace after it is junk. */
    for (const char *p = end; p && p < text + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return scalar__error_set(SCALAR_E_FORMAT, "%s: trailing data after the JSON value "
                                     "at byte %ld", out->source, (long)(p - text));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return scalar__error_set(SCALAR_E_FORMAT, "%s: the top level must be an object",
                                 out->source);
    }
    int nomem = 0;
    const char *dup = find_duplicate(root, &nomem);
    if (nomem) {
        cJSON_Delete(root);
        return scalar__error_set(SCALAR_E_NOMEM, "%s: out of memory", out->source);
    }
    if (dup) {
        scalar__error_set(SCALAR_E_FORMAT, "%s: duplicate key \"%.100s\"", out->source, dup);
        cJSON_Delete(root);
        return SCALAR_E_FORMAT;
    }
    out->root = root;
    return SCALAR_OK;
}

scalar_status scalar__json_load(scalar__json *out, const char *path)
{
    scalar__mapped_file f;
    memset(out, 0, sizeof *out);
    scalar_status st = scalar__file_map(&f, path, "scalar__json_load");
    if (st != SCALAR_OK)
        return st;
    st = scalar__json_parse(out, (const char *)f.data, f.size, path);
    scalar__file_unmap(&f);
    return st;
}

void scalar__json_free(scalar__json *json)
{
    if (json && json->root) {
        cJSON_Delete(json->root);
        json->root = NULL;
    }
}

const cJSON *scalar__json_find(const scalar__json *json, const char *path)
{
    const cJSON *node = json ? json->root : NULL;
    char key[256];
    while (node && path && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof key || !cJSON_IsObject(node))
            return NULL;
        memcpy(key, path, len);
        key[len] = '\0';
        node = cJSON_GetObjectItemCaseSensitive(node, key);
        path = dot ? dot + 1 : NULL;
    }
    return node;
}

/* Missing value: default, or an error if required. */
static scalar_status missing(const scalar__json *json, const char *path, int required)
{
    if (!required)
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" is missing", json->source, path);
}

scalar_status scalar__json_int(int64_t *out, const scalar__json *json, const char *path,
                               int required, int64_t dflt, int64_t min, int64_t max)
{
    const cJSON *v = scalar__json_find(json, path);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return missing(json, path, required);
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" must be an integer", json->source,
                                 path);
    if ((int64_t)d < min || (int64_t)d > max)
        return scalar__error_set(SCALAR_E_FORMAT,
                                 "%s: \"%s\" must be an integer in [%lld, %lld], got %lld",
                                 json->source, path, (long long)min, (long long)max,
                                 (long long)d);
    *out = (int64_t)d;
    return SCALAR_OK;
}

scalar_status scalar__json_double(double *out, const scalar__json *json, const char *path,
                                  int required, double dflt)
{
    const cJSON *v = scalar__json_find(json, path);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return missing(json, path, required);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" must be a finite number",
                                 json->source, path);
    *out = v->valuedouble;
    return SCALAR_OK;
}

scalar_status scalar__json_string(const char **out, const scalar__json *json, const char *path,
                                  int required, const char *dflt)
{
    const cJSON *v = scalar__json_find(json, path);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return missing(json, path, required);
    if (!cJSON_IsString(v) || !v->valuestring)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" must be a string", json->source,
                                 path);
    *out = v->valuestring;
    return SCALAR_OK;
}

scalar_status scalar__json_bool(int *out, const scalar__json *json, const char *path,
                                int required, int dflt)
{
    const cJSON *v = scalar__json_find(json, path);
    *out = dflt;
    if (!v || cJSON_IsNull(v))
        return missing(json, path, required);
    if (!cJSON_IsBool(v))
        return scalar__error_set(SCALAR_E_FORMAT, "%s: \"%s\" must be true or false",
                                 json->source, path);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return SCALAR_OK;
}

scalar_status scalar__write_json_text(scalar_ctx *ctx, const char *path, const char *text,
                                      const char *caller)
{
    scalar__atomic_file af;
    SCALAR_TRY(scalar__atomic_open(&af, ctx, path, caller));
    scalar_status st = scalar__atomic_write(&af, text, strlen(text));
    if (st == SCALAR_OK)
        st = scalar__atomic_write(&af, "\n", 1);
    if (st != SCALAR_OK) {
        scalar__atomic_abort(&af);
        return st;
    }
    return scalar__atomic_commit(&af);
}
