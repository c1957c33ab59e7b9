/*
 * sae_group.c - Staircase groups: one shared W_enc / W_dec, member SAEs on
 * prefix slices with their own biases; member views, parameters, files.
 *
 * Dimension legend:
 *   d_in  activation width;  n_j  latents of member j;  n_max  the largest
 *
 * Folder layout: cfg.json ("format": "libscalar.sae_group") and
 * sae_weights.safetensors with W_enc [d_in, n_max], W_dec [n_max, d_in] once
 * and b_enc.{j} [n_j], b_dec.{j} [d_in] per member.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/json.h"
#include "sae_internal.h"

#define PATH_LEN SCALAR__SAE_PATH_LEN
#define GROUP_FORMAT "libscalar.sae_group"

static const char *mode_name(int32_t mode)
{
    return mode == SCALAR_SAE_GROUP_DETACH ? "detach" : "share";
}

void scalar__group_retain(scalar_sae_group *g)
{
    __atomic_add_fetch(&g->refcount, 1, __ATOMIC_RELAXED);
}

void scalar_sae_group_free(scalar_sae_group *g)
{
    if (!g || __atomic_sub_fetch(&g->refcount, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    scalar_ctx *ctx = g->ctx;
    scalar__free(ctx, g->data);
    scalar__free(ctx, g->hooks);
    scalar__free(ctx, g);
    scalar__ctx_release(ctx);
}

/* Check the shape arguments of a group; `fn` names the caller. */
static scalar_status check_shape(const scalar_sae_config *base, int32_t n_members,
                                 const int32_t *sizes, int32_t mode, const char *fn)
{
    if (n_members < 1 || n_members > SCALAR__GROUP_MAX_MEMBERS)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_members %d not in 1..%d", fn,
                                 (int)n_members, SCALAR__GROUP_MAX_MEMBERS);
    if (!sizes)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sizes is NULL", fn);
    if (mode != SCALAR_SAE_GROUP_SHARE && mode != SCALAR_SAE_GROUP_DETACH)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown mode %d (share 0, detach 1)",
                                 fn, (int)mode);
    if (base->architecture != SCALAR_SAE_TOPK)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: groups hold TopK SAEs only", fn);
    for (int32_t j = 0; j < n_members; j++) {
        if (sizes[j] < base->k || (j > 0 && sizes[j] <= sizes[j - 1]))
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: sizes[%d] = %d: sizes must increase strictly and be "
                                     ">= k = %d", fn, (int)j, (int)sizes[j], (int)base->k);
    }
    if (base->d_sae != sizes[n_members - 1])
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: base d_sae %d must equal the largest size %d", fn,
                                 (int)base->d_sae, (int)sizes[n_members - 1]);
    return SCALAR_OK;
}

/* Allocate a group of a checked shape, parameters zero. */
static scalar_status group_alloc(scalar_sae_group **out, scalar_ctx *ctx,
                                 const scalar_sae_config *base, int32_t n_members,
                                 const int32_t *sizes, const char *const *hooks, int32_t mode,
                                 const char *fn)
{
    for (int32_t j = 0; hooks && j < n_members; j++)
        if (hooks[j] && strlen(hooks[j]) > SCALAR__SAE_HOOK_MAX)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: hook name %d longer than %d", fn,
                                     (int)j, SCALAR__SAE_HOOK_MAX);
    int64_t d_in = base->d_in, n_max = sizes[n_members - 1];
    int64_t n = 2 * d_in * n_max;
    for (int32_t j = 0; j < n_members; j++)
        n += sizes[j] + d_in;
    scalar_sae_group *g = scalar__calloc(ctx, 1, sizeof *g, fn);
    if (!g)
        return SCALAR_E_NOMEM;
    g->hooks = scalar__calloc(ctx, (size_t)n_members, sizeof *g->hooks, fn);
    g->data = g->hooks ? scalar__calloc(ctx, (size_t)n, sizeof(float), fn) : NULL;
    if (!g->data) {
        scalar__free(ctx, g->hooks);
        scalar__free(ctx, g);
        return SCALAR_E_NOMEM;
    }
    g->refcount = 1;
    g->ctx = ctx;
    scalar__ctx_retain(ctx);
    g->d_in = base->d_in;
    g->k = base->k;
    g->n_members = n_members;
    g->mode = mode;
    g->apply_b_dec_to_input = base->apply_b_dec_to_input;
    g->seed = base->seed;
    g->n_params = n;
    g->W_enc = g->data;
    g->W_dec = g->W_enc + d_in * n_max;
    float *p = g->W_dec + n_max * d_in;
    for (int32_t j = 0; j < n_members; j++) {
        g->sizes[j] = sizes[j];
        g->b_enc[j] = p;
        g->b_dec[j] = p + sizes[j];
        p += sizes[j] + d_in;
        if (hooks && hooks[j])
            memcpy(g->hooks[j], hooks[j], strlen(hooks[j]) + 1);
    }
    *out = g;
    return SCALAR_OK;
}

scalar_status scalar_sae_group_create(scalar_sae_group **out, scalar_ctx *ctx,
                                      const scalar_sae_config *base, int32_t n_members,
                                      const int32_t *sizes, const char *const *hook_names,
                                      int32_t mode)
{
    static const char fn[] = "scalar_sae_group_create";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx || !base)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx or base is NULL", fn);
    scalar_sae_config cfg;
    SCALAR_TRY(scalar__sae_config_check(&cfg, base, fn));
    SCALAR_TRY(check_shape(&cfg, n_members, sizes, mode, fn));
    scalar_sae_group *g;
    SCALAR_TRY(group_alloc(&g, ctx, &cfg, n_members, sizes, hook_names, mode, fn));
    int64_t n_max = scalar__group_n_max(g);
    scalar__sae_init_weights(ctx, g->seed, g->d_in, n_max, g->W_enc, n_max, g->W_dec);
    *out = g;
    return SCALAR_OK;
}

int32_t scalar_sae_group_n_members(const scalar_sae_group *g)
{
    return g ? g->n_members : 0;
}

int32_t scalar_sae_group_mode(const scalar_sae_group *g)
{
    return g ? g->mode : -1;
}

scalar_status scalar_sae_group_get_sae(scalar_sae **out, scalar_sae_group *g, int32_t index)
{
    static const char fn[] = "scalar_sae_group_get_sae";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!g)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: group is NULL", fn);
    if (index < 0 || index >= g->n_members)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: index %d not in 0..%d", fn,
                                 (int)index, (int)g->n_members - 1);
    scalar_sae *s = scalar__calloc(g->ctx, 1, sizeof *s, fn);
    if (!s)
        return SCALAR_E_NOMEM;
    s->ctx = g->ctx;
    scalar_sae_config_init(&s->cfg, sizeof s->cfg);
    s->cfg.architecture = SCALAR_SAE_TOPK;
    s->cfg.d_in = g->d_in;
    s->cfg.d_sae = g->sizes[index];
    s->cfg.k = g->k;
    s->cfg.apply_b_dec_to_input = g->apply_b_dec_to_input;
    s->cfg.seed = g->seed;
    if (g->hooks[index][0]) {
        memcpy(s->hook, g->hooks[index], sizeof s->hook);
        s->cfg.hook_name = s->hook;
    }
    s->n_params = 2 * (int64_t)g->d_in * g->sizes[index] + g->sizes[index] + g->d_in;
    s->W_enc = g->W_enc;
    s->ld_enc = scalar__group_n_max(g);
    s->W_dec = g->W_dec;
    s->b_enc = g->b_enc[index];
    s->b_dec = g->b_dec[index];
    s->group = g;
    scalar__group_retain(g);
    *out = s;
    return SCALAR_OK;
}

int64_t scalar__group_tensor(const scalar_sae_group *g, const char *name, int64_t *n,
                             int64_t shape[2], int32_t *ndim)
{
    int64_t d_in = g->d_in, n_max = scalar__group_n_max(g);
    if (strcmp(name, "W_enc") == 0) {
        *n = d_in * n_max, shape[0] = d_in, shape[1] = n_max, *ndim = 2;
        return 0;
    }
    if (strcmp(name, "W_dec") == 0) {
        *n = n_max * d_in, shape[0] = n_max, shape[1] = d_in, *ndim = 2;
        return (int64_t)(g->W_dec - g->data);
    }
    int is_enc = strncmp(name, "b_enc.", 6) == 0, is_dec = strncmp(name, "b_dec.", 6) == 0;
    if (!is_enc && !is_dec)
        return -1;
    char *end = NULL;
    const char *digits = name + 6;
    if (*digits < '0' || *digits > '9' || (digits[0] == '0' && digits[1]))
        return -1;
    long j = strtol(digits, &end, 10);
    if (*end || j < 0 || j >= g->n_members)
        return -1;
    *ndim = 1;
    shape[1] = 0;
    if (is_enc) {
        *n = shape[0] = g->sizes[j];
        return (int64_t)(g->b_enc[j] - g->data);
    }
    *n = shape[0] = d_in;
    return (int64_t)(g->b_dec[j] - g->data);
}

scalar_status scalar_sae_group_param_read(const scalar_sae_group *g, const char *name, float *out,
                                          size_t capacity)
{
    static const char fn[] = "scalar_sae_group_param_read";
    if (!g || !name || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: group, name or out is NULL", fn);
    int64_t n, shape[2];
    int32_t ndim;
    int64_t off = scalar__group_tensor(g, name, &n, shape, &ndim);
    if (off < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the group has no tensor \"%s\" "
                                 "(W_enc, W_dec, b_enc.{j}, b_dec.{j})", fn, name);
    if (capacity < (size_t)n)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: \"%s\" has %lld floats, capacity %zu", fn,
                                 name, (long long)n, capacity);
    memcpy(out, g->data + off, (size_t)n * sizeof *out);
    return SCALAR_OK;
}

scalar_status scalar_sae_group_param_write(scalar_sae_group *g, const char *name, const float *in,
                                           size_t n_in)
{
    static const char fn[] = "scalar_sae_group_param_write";
    if (!g || !name || !in)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: group, name or in is NULL", fn);
    int64_t n, shape[2];
    int32_t ndim;
    int64_t off = scalar__group_tensor(g, name, &n, shape, &ndim);
    if (off < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the group has no tensor \"%s\" "
                                 "(W_enc, W_dec, b_enc.{j}, b_dec.{j})", fn, name);
    if (n_in != (size_t)n)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%s\" has %lld floats, got %zu", fn,
                                 name, (long long)n, n_in);
    for (size_t i = 0; i < n_in; i++)
        if (!isfinite(in[i]))
            return scalar__error_set(SCALAR_E_NUMERIC, "%s: \"%s\"[%zu] is not finite", fn, name,
                                     i);
    memcpy(g->data + off, in, n_in * sizeof *in);
    return SCALAR_OK;
}

/* ---- files ---- */

static char *cfg_text(const scalar_sae_group *g)
{
    cJSON *root = cJSON_CreateObject(), *members = cJSON_CreateArray();
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->seed);
    int ok = root && members && cJSON_AddStringToObject(root, "format", GROUP_FORMAT) &&
             cJSON_AddNumberToObject(root, "format_version", 1) &&
             cJSON_AddStringToObject(root, "architecture", "topk") &&
             cJSON_AddNumberToObject(root, "d_in", g->d_in) &&
             cJSON_AddNumberToObject(root, "k", g->k) &&
             cJSON_AddStringToObject(root, "mode", mode_name(g->mode)) &&
             cJSON_AddBoolToObject(root, "apply_b_dec_to_input", g->apply_b_dec_to_input) &&
             cJSON_AddStringToObject(root, "seed", seed) &&
             cJSON_AddStringToObject(root, "dtype", "float32");
    for (int32_t j = 0; ok && j < g->n_members; j++) {
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddItemToArray(members, m);
        if (!ok) {
            cJSON_Delete(m);
            break;
        }
        ok = cJSON_AddNumberToObject(m, "d_sae", g->sizes[j]) &&
             (g->hooks[j][0] ? cJSON_AddStringToObject(m, "hook_name", g->hooks[j]) != NULL
                             : cJSON_AddNullToObject(m, "hook_name") != NULL);
    }
    if (ok) {
        ok = cJSON_AddItemToObject(root, "members", members);
        if (ok)
            members = NULL;
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(members);
    cJSON_Delete(root);
    return text;
}

static scalar_status write_weights(const scalar_sae_group *g, const char *path)
{
    scalar_safetensors_writer *w = NULL;
    SCALAR_TRY(scalar_safetensors_writer_create(&w, g->ctx));
    scalar_status s = scalar_safetensors_writer_set_metadata(w, "format", "pt");
    char name[32];
    for (int32_t t = 0; s == SCALAR_OK && t < 2 + 2 * g->n_members; t++) {
        if (t < 2)
            snprintf(name, sizeof name, "%s", t == 0 ? "W_enc" : "W_dec");
        else
            snprintf(name, sizeof name, "%s.%d", t % 2 == 0 ? "b_enc" : "b_dec", (int)(t - 2) / 2);
        int64_t n, shape[2];
        int32_t ndim;
        int64_t off = scalar__group_tensor(g, name, &n, shape, &ndim);
        s = scalar_safetensors_writer_add(w, name, SCALAR_DTYPE_F32, shape, ndim, g->data + off,
                                          (size_t)n * sizeof(float));
    }
    if (s == SCALAR_OK)
        s = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    return s;
}

scalar_status scalar_sae_group_save(const scalar_sae_group *g, const char *dir)
{
    static const char fn[] = "scalar_sae_group_save";
    char cfg_path[PATH_LEN], weights_path[PATH_LEN];
    if (!g || !dir)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: group or dir is NULL", fn);
    SCALAR_TRY(scalar__sae_folder_paths(dir, cfg_path, weights_path, fn));
    SCALAR_TRY(scalar__make_dir(dir, fn));
    SCALAR_TRY(write_weights(g, weights_path)); /* weights first, as scalar_sae_save() */
    char *text = cfg_text(g);
    if (!text)
        return scalar__error_set(SCALAR_E_NOMEM, "%s: building cfg.json failed", fn);
    scalar_status s = scalar__write_json_text(g->ctx, cfg_path, text, fn);
    cJSON_free(text);
    return s;
}

/* cfg.json of a group: the base config, mode, sizes and hooks. */
static scalar_status read_cfg(const char *path, scalar_sae_config *base, int32_t *n_members,
                              int32_t *sizes, char (*hooks)[SCALAR__SAE_HOOK_MAX + 1],
                              int32_t *mode)
{
    scalar__json j;
    SCALAR_TRY(scalar__json_load(&j, path));
    const char *format = NULL, *arch = NULL, *mode_s = NULL, *seed_s = NULL;
    int64_t version = 0, d_in = 0, k = 0;
    int apply = 1;
    scalar_status s = scalar__json_string(&format, &j, "format", 1, NULL);
    if (s == SCALAR_OK && strcmp(format, GROUP_FORMAT) != 0)
        s = scalar__error_set(SCALAR_E_FORMAT, "%s: format \"%s\" is not \"%s\" (a single SAE "
                              "loads with scalar_sae_load)", path, format, GROUP_FORMAT);
    if (s == SCALAR_OK)
        s = scalar__json_int(&version, &j, "format_version", 1, 1, 1, 1);
    if (s == SCALAR_OK)
        s = scalar__json_string(&arch, &j, "architecture", 1, NULL);
    if (s == SCALAR_OK && strcmp(arch, "topk") != 0)
        s = scalar__error_set(SCALAR_E_FORMAT, "%s: architecture \"%s\": groups are topk", path,
                              arch);
    if (s == SCALAR_OK)
        s = scalar__json_int(&d_in, &j, "d_in", 1, 0, 1, INT32_MAX);
    if (s == SCALAR_OK)
        s = scalar__json_int(&k, &j, "k", 1, 0, 1, INT32_MAX);
    if (s == SCALAR_OK)
        s = scalar__json_string(&mode_s, &j, "mode", 1, NULL);
    if (s == SCALAR_OK) {
        if (strcmp(mode_s, "share") == 0)
            *mode = SCALAR_SAE_GROUP_SHARE;
        else if (strcmp(mode_s, "detach") == 0)
            *mode = SCALAR_SAE_GROUP_DETACH;
        else
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: mode \"%s\" is not share or detach", path,
                                  mode_s);
    }
    if (s == SCALAR_OK)
        s = scalar__json_bool(&apply, &j, "apply_b_dec_to_input", 0, 1);
    if (s == SCALAR_OK)
        s = scalar__json_string(&seed_s, &j, "seed", 0, "0");
    const cJSON *members = scalar__json_find(&j, "members");
    int count = members && cJSON_IsArray(members) ? cJSON_GetArraySize(members) : 0;
    if (s == SCALAR_OK && (count < 1 || count > SCALAR__GROUP_MAX_MEMBERS))
        s = scalar__error_set(SCALAR_E_FORMAT, "%s: \"members\" must be an array of 1 to %d "
                              "objects", path, SCALAR__GROUP_MAX_MEMBERS);
    for (int m = 0; s == SCALAR_OK && m < count; m++) {
        const cJSON *e = cJSON_GetArrayItem(members, m);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "d_sae");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(e, "hook_name");
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > INT32_MAX ||
            d->valuedouble != (double)(int32_t)d->valuedouble)
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: members[%d].d_sae must be a positive "
                                  "integer", path, m);
        else if (h && !cJSON_IsNull(h) &&
                 (!cJSON_IsString(h) || strlen(h->valuestring) > SCALAR__SAE_HOOK_MAX))
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: members[%d].hook_name must be a string "
                                  "of at most %d bytes", path, m, SCALAR__SAE_HOOK_MAX);
        else {
            sizes[m] = (int32_t)d->valuedouble;
            hooks[m][0] = '\0';
            if (h && cJSON_IsString(h))
                memcpy(hooks[m], h->valuestring, strlen(h->valuestring) + 1);
        }
    }
    if (s == SCALAR_OK) {
        char *end = NULL;
        base->architecture = SCALAR_SAE_TOPK;
        base->d_in = (int32_t)d_in;
        base->k = (int32_t)k;
        base->d_sae = sizes[count - 1];
        base->apply_b_dec_to_input = apply;
        base->seed = strtoull(seed_s, &end, 10);
        *n_members = count;
    }
    scalar__json_free(&j);
    return s;
}

/* Every tensor of the file is one of the group's, exactly once, of its shape. */
static scalar_status read_weights(scalar_sae_group *g, const scalar_safetensors *st,
                                  const char *path)
{
    int32_t n_tensors = 2 + 2 * g->n_members;
    size_t count = scalar_safetensors_count(st);
    if (count != (size_t)n_tensors)
        return scalar__error_set(SCALAR_E_FORMAT, "%s: %zu tensors, a group of %d members has %d "
                                 "(W_enc, W_dec, b_enc.{j}, b_dec.{j})", path, count,
                                 (int)g->n_members, (int)n_tensors);
    for (size_t i = 0; i < count; i++) {
        const char *name = scalar_safetensors_name(st, i);
        int64_t n, shape[2], have[SCALAR_MAX_DIMS] = {0};
        int32_t ndim;
        int64_t off = scalar__group_tensor(g, name, &n, shape, &ndim);
        if (off < 0)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: unexpected tensor \"%s\"", path, name);
        scalar_safetensors_shape(have, SCALAR_MAX_DIMS, st, i);
        if (scalar_safetensors_ndim(st, i) != ndim || have[0] != shape[0] ||
            (ndim == 2 && have[1] != shape[1]))
            return scalar__error_set(SCALAR_E_SHAPE, "%s: \"%s\" does not have the shape "
                                     "cfg.json gives ([%lld%s%lld])", path, name,
                                     (long long)shape[0], ndim == 2 ? ", " : "",
                                     ndim == 2 ? (long long)shape[1] : 0LL);
        float *dst = g->data + off;
        SCALAR_TRY(scalar_safetensors_read_f32(dst, (size_t)n, st, i));
        for (int64_t e = 0; e < n; e++)
            if (!isfinite(dst[e]))
                return scalar__error_set(SCALAR_E_NUMERIC, "%s: \"%s\"[%lld] is not finite", path,
                                         name, (long long)e);
    }
    return SCALAR_OK; /* count matched and names are distinct: every tensor was seen */
}

scalar_status scalar_sae_group_load(scalar_sae_group **out, scalar_ctx *ctx, const char *path)
{
    static const char fn[] = "scalar_sae_group_load";
    char cfg_path[PATH_LEN], weights_path[PATH_LEN];
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx or path is NULL", fn);
    if (!scalar__is_dir(path))
        return scalar__error_set(SCALAR_E_IO, "%s: %s is not a folder", fn, path);
    SCALAR_TRY(scalar__sae_folder_paths(path, cfg_path, weights_path, fn));
    scalar_sae_config base, checked;
    scalar_sae_config_init(&base, sizeof base);
    int32_t n_members = 0, mode = 0, sizes[SCALAR__GROUP_MAX_MEMBERS];
    char(*hooks)[SCALAR__SAE_HOOK_MAX + 1] =
        scalar__calloc(ctx, SCALAR__GROUP_MAX_MEMBERS, sizeof *hooks, fn);
    if (!hooks)
        return SCALAR_E_NOMEM;
    const char *hook_ptrs[SCALAR__GROUP_MAX_MEMBERS];
    scalar_status s = read_cfg(cfg_path, &base, &n_members, sizes, hooks, &mode);
    if (s == SCALAR_OK)
        s = scalar__sae_config_check(&checked, &base, fn);
    if (s == SCALAR_OK)
        s = check_shape(&checked, n_members, sizes, mode, fn);
    for (int32_t j = 0; j < n_members; j++)
        hook_ptrs[j] = hooks[j][0] ? hooks[j] : NULL;
    scalar_sae_group *g = NULL;
    if (s == SCALAR_OK)
        s = group_alloc(&g, ctx, &checked, n_members, sizes, hook_ptrs, mode, fn);
    scalar__free(ctx, hooks);
    scalar_safetensors *st = NULL;
    if (s == SCALAR_OK)
        s = scalar_safetensors_open(&st, ctx, weights_path);
    if (s == SCALAR_OK)
        s = read_weights(g, st, weights_path);
    scalar_safetensors_free(st);
    if (s != SCALAR_OK) {
        scalar_sae_group_free(g);
        return s;
    }
    *out = g;
    return SCALAR_OK;
}
