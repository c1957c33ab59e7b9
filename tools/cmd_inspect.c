/*
 * cmd_inspect.c - `scalar inspect [--json] FILE`: what a tensor file holds.
 *
 * The format is chosen by content: `\x93NUMPY` opens as .npy, an 8-byte
 * header length followed by `{` as safetensors.  A file too short or
 * unreadable to tell falls back on its extension, so the library's reader
 * reports the problem in its own words.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

enum file_kind { KIND_SAFETENSORS, KIND_NPY };

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static enum file_kind sniff(const char *path)
{
    unsigned char head[9] = {0};
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    if (got >= 6 && memcmp(head, "\x93NUMPY", 6) == 0)
        return KIND_NPY;
    if (got == sizeof head && head[8] == '{')
        return KIND_SAFETENSORS;
    return ends_with(path, ".npy") ? KIND_NPY : KIND_SAFETENSORS;
}

/* "[2, 3]" into buf. */
static const char *shape_text(char *buf, size_t cap, const int64_t *shape, int32_t ndim)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int32_t d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* ---- safetensors ---------------------------------------------------- */

typedef struct tensor_row {
    const char *name;
    const char *dtype;
    int64_t shape[SCALAR_MAX_DIMS];
    int32_t ndim;
    uint64_t numel;
    uint64_t nbytes;
} tensor_row;

static scalar_status tensor_row_get(tensor_row *r, const scalar_safetensors *st, size_t i)
{
    r->name = scalar_safetensors_name(st, i);
    r->dtype = scalar_dtype_name(scalar_safetensors_dtype(st, i));
    r->ndim = scalar_safetensors_ndim(st, i);
    r->numel = scalar_safetensors_numel(st, i);
    r->nbytes = r->numel * scalar_dtype_size(scalar_safetensors_dtype(st, i));
    if (!r->dtype)
        r->dtype = "?";
    return scalar_safetensors_shape(r->shape, SCALAR_MAX_DIMS, st, i);
}

static int print_safetensors_text(const char *path, const scalar_safetensors *st)
{
    size_t n = scalar_safetensors_count(st), n_meta = scalar_safetensors_metadata_count(st);
    int w = 4;
    uint64_t total_numel = 0, total_bytes = 0;
    tensor_row r;
    char shape[256];
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(scalar_safetensors_name(st, i));
        w = len > w ? len : w;
    }
    printf("file:      %s\nformat:    safetensors\ntensors:   %zu\nmetadata:  %zu\n", path, n,
           n_meta);
    for (size_t i = 0; i < n_meta; i++) {
        const char *key = scalar_safetensors_metadata_key(st, i);
        printf("  %s = %s\n", key, scalar_safetensors_metadata_get(st, key));
    }
    printf("\n%-*s  %-7s %-20s %12s %14s\n", w, "name", "dtype", "shape", "numel", "bytes");
    for (size_t i = 0; i < n; i++) {
        if (tensor_row_get(&r, st, i) != SCALAR_OK)
            return cli_fail("inspect");
        printf("%-*s  %-7s %-20s %12" PRIu64 " %14" PRIu64 "\n", w, r.name, r.dtype,
               shape_text(shape, sizeof shape, r.shape, r.ndim), r.numel, r.nbytes);
        total_numel += r.numel;
        total_bytes += r.nbytes;
    }
    printf("\ntotal:     %zu tensors, %" PRIu64 " elements, %" PRIu64 " bytes\n", n, total_numel,
           total_bytes);
    return CLI_OK;
}

/* Adds a shape array to obj; returns 0 on allocation failure. */
static int json_add_shape(cJSON *obj, const int64_t *shape, int32_t ndim)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, "shape");
    if (!arr)
        return 0;
    for (int32_t d = 0; d < ndim; d++) {
        cJSON *v = cJSON_CreateNumber((double)shape[d]);
        if (!v || !cJSON_AddItemToArray(arr, v)) {
            cJSON_Delete(v);
            return 0;
        }
    }
    return 1;
}

static int json_add_tensors(cJSON *root, const scalar_safetensors *st, uint64_t *numel,
                            uint64_t *nbytes)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
    tensor_row r;
    if (!arr)
        return 0;
    for (size_t i = 0; i < scalar_safetensors_count(st); i++) {
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddItemToArray(arr, t)) {
            cJSON_Delete(t);
            return 0;
        }
        if (tensor_row_get(&r, st, i) != SCALAR_OK)
            return -1;
        if (!cJSON_AddStringToObject(t, "name", r.name) ||
            !cJSON_AddStringToObject(t, "dtype", r.dtype) || !json_add_shape(t, r.shape, r.ndim) ||
            !cJSON_AddNumberToObject(t, "numel", (double)r.numel) ||
            !cJSON_AddNumberToObject(t, "nbytes", (double)r.nbytes))
            return 0;
        *numel += r.numel;
        *nbytes += r.nbytes;
    }
    return 1;
}

static int json_add_metadata(cJSON *root, const scalar_safetensors *st)
{
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    if (!meta)
        return 0;
    for (size_t i = 0; i < scalar_safetensors_metadata_count(st); i++) {
        const char *key = scalar_safetensors_metadata_key(st, i);
        if (!cJSON_AddStringToObject(meta, key, scalar_safetensors_metadata_get(st, key)))
            return 0;
    }
    return 1;
}

/* Prints and deletes root; a NULL print means cJSON ran out of memory. */
static int json_emit(cJSON *root, int ok)
{
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "scalar: inspect: out of memory building JSON\n");
        return CLI_FAIL;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return CLI_OK;
}

static int print_safetensors_json(const char *path, const scalar_safetensors *st)
{
    uint64_t numel = 0, nbytes = 0;
    cJSON *root = cJSON_CreateObject(), *total;
    int ok = root && cJSON_AddStringToObject(root, "file", path) &&
             cJSON_AddStringToObject(root, "format", "safetensors");
    int tensors_ok = ok ? json_add_tensors(root, st, &numel, &nbytes) : 0;
    if (tensors_ok < 0) {
        cJSON_Delete(root);
        return cli_fail("inspect");
    }
    ok = tensors_ok && json_add_metadata(root, st) &&
         (total = cJSON_AddObjectToObject(root, "total")) != NULL &&
         cJSON_AddNumberToObject(total, "tensors", (double)scalar_safetensors_count(st)) &&
         cJSON_AddNumberToObject(total, "numel", (double)numel) &&
         cJSON_AddNumberToObject(total, "nbytes", (double)nbytes);
    return json_emit(root, ok);
}

static int inspect_safetensors(const char *path, int json, scalar_ctx *ctx)
{
    scalar_safetensors *st;
    if (scalar_safetensors_open(&st, ctx, path) != SCALAR_OK)
        return cli_fail("inspect");
    int rc = json ? print_safetensors_json(path, st) : print_safetensors_text(path, st);
    scalar_safetensors_free(st);
    return rc;
}

/* ---- npy -------------------------------------------------------------- */

static int print_npy(const char *path, const scalar_npy *npy, int json)
{
    int64_t shape[SCALAR_MAX_DIMS];
    int32_t ndim = scalar_npy_ndim(npy), dtype = scalar_npy_dtype(npy);
    uint64_t numel = scalar_npy_numel(npy), nbytes = numel * scalar_dtype_size(dtype);
    const char *dname = scalar_dtype_name(dtype);
    char text[256];
    if (scalar_npy_shape(shape, SCALAR_MAX_DIMS, npy) != SCALAR_OK)
        return cli_fail("inspect");
    if (!json) {
        printf("file:      %s\nformat:    npy\ndtype:     %s\nshape:     %s\n"
               "numel:     %" PRIu64 "\nbytes:     %" PRIu64 "\n",
               path, dname ? dname : "?", shape_text(text, sizeof text, shape, ndim), numel,
               nbytes);
        return CLI_OK;
    }
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "file", path) &&
             cJSON_AddStringToObject(root, "format", "npy") &&
             cJSON_AddStringToObject(root, "dtype", dname ? dname : "?") &&
             json_add_shape(root, shape, ndim) &&
             cJSON_AddNumberToObject(root, "numel", (double)numel) &&
             cJSON_AddNumberToObject(root, "nbytes", (double)nbytes);
    return json_emit(root, ok);
}

static int inspect_npy(const char *path, int json, scalar_ctx *ctx)
{
    scalar_npy *npy;
    if (scalar_npy_open(&npy, ctx, path) != SCALAR_OK)
        return cli_fail("inspect");
    int rc = print_npy(path, npy, json);
    scalar_npy_free(npy);
    return rc;
}

/* ---- command ---------------------------------------------------------- */

static int inspect_run(const cli_global *global, int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, options_done = 0;
    scalar_ctx *ctx;
    for (int i = 1; i < argc; i++) {
        if (!options_done && strcmp(argv[i], "--") == 0)
            options_done = 1;
        else if (!options_done && strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (!options_done && argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error(&cli_cmd_inspect, "unknown option '%s'", argv[i]);
        else if (path)
            return cli_usage_error(&cli_cmd_inspect, "one FILE only ('%s' is extra)", argv[i]);
        else
            path = argv[i];
    }
    if (!path)
        return cli_usage_error(&cli_cmd_inspect, "no FILE given");
    if (cli_ctx_create(&ctx, global, "inspect") != CLI_OK)
        return CLI_FAIL;
    int rc = sniff(path) == KIND_NPY ? inspect_npy(path, json, ctx)
                                     : inspect_safetensors(path, json, ctx);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_inspect = {
    .name = "inspect",
    .args = "[--json] FILE",
    .summary = "list the tensors of a .safetensors file, or the array of a .npy file",
    .help = "The format is recognised by content (the .npy magic, or a safetensors\n"
            "header), the extension deciding only when the file cannot be read.\n"
            "\nsafetensors: the metadata (key = value), then per tensor its name, dtype,\n"
            "shape, element count and byte size, in file order, and a total.\n"
            ".npy: dtype, shape, element count and byte size.\n"
            "\noptions:\n"
            "  --json   print the same as one JSON object: {\"file\", \"format\",\n"
            "           \"tensors\": [{\"name\", \"dtype\", \"shape\", \"numel\", \"nbytes\"}],\n"
            "           \"metadata\": {...}, \"total\": {\"tensors\", \"numel\", \"nbytes\"}}\n"
            "           for safetensors; {\"file\", \"format\", \"dtype\", \"shape\",\n"
            "           \"numel\", \"nbytes\"} for .npy.\n"
            "\nexit status: 0 success, 1 the file is missing or malformed (the reader's\n"
            "message on stderr), 2 usage error.\n",
    .run = inspect_run,
};
