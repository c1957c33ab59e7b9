/*
 * sae_io.c - SAEs in SAELens' layout: a folder with cfg.json and
 * sae_weights.safetensors (W_enc [d_in, d_sae], b_enc [d_sae],
 * W_dec [d_sae, d_in], b_dec [d_in], threshold [d_sae] for JumpReLU).
 *
 * cfg.json varies across SAELens versions: the TopK k sits top-level or in
 * activation_fn_kwargs, the hook name top-level or under metadata, and older
 * files say activation_fn "topk" instead of architecture "topk".  All are
 * read; settings we do not honour are refused with a message.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../io/json.h"
#include "sae_internal.h"

#define PATH_LEN SCALAR__SAE_PATH_LEN

static const char *arch_name(int32_t a)
{
    return a == SCALAR_SAE_TOPK ? "topk" : a == SCALAR_SAE_JUMPRELU ? "jumprelu" : "standard";
}

/* A string setting that must be absent, null or one of `ok` (NULL-ended). */
static scalar_status need_string_in(const scalar__json *j, const char *key,
                                    const char *const *ok)
{
    const cJSON *v = scalar__json_find(j, key);
    if (!v || cJSON_IsNull(v))
        return SCALAR_OK;
    if (cJSON_IsString(v))
        for (const char *const *o = ok; *o; o++)
            if (strcmp(v->valuestring, *o) == 0)
                return SCALAR_OK;
    return scalar__error_set(SCALAR_E_FORMAT, "%s: %s = %s is not supported (libscalar reads %s)",
                             j->source, key, cJSON_IsString(v) ? v->valuestring : "(not a string)",
                             ok[0]);
}

static scalar_status read_cfg(scalar_sae_config *cfg, char *hook, const char *path)
{
    static const char *const norm_ok[] = {"none", NULL};
    static const char *const act_ok[] = {"relu", "topk", NULL};
    static const char *const dtype_ok[] = {"float32", "torch.float32", "float16",
                                           "torch.float16", "bfloat16", "torch.bfloat16", NULL};
    scalar__json j;
    SCALAR_TRY(scalar__json_load(&j, path));
    int64_t d_in = 0, d_sae = 0, k = 0;
    const char *arch = NULL, *act = NULL, *hook_name = NULL;
    int apply_b_dec = 1;
    scalar_status s = scalar__json_int(&d_in, &j, "d_in", 1, 0, 1, INT32_MAX);
    if (s == SCALAR_OK)
        s = scalar__json_int(&d_sae, &j, "d_sae", 1, 0, 1, INT32_MAX);
    if (s == SCALAR_OK)
        s = scalar__json_string(&arch, &j, "architecture", 0, "standard");
    if (s == SCALAR_OK)
        s = scalar__json_string(&act, &j, "activation_fn", 0, "relu");
    if (s == SCALAR_OK)
        s = need_string_in(&j, "activation_fn", act_ok);
    if (s == SCALAR_OK)
        s = need_string_in(&j, "normalize_activations", norm_ok);
    if (s == SCALAR_OK)
        s = need_string_in(&j, "dtype", dtype_ok);
    if (s == SCALAR_OK)
        s = scalar__json_bool(&apply_b_dec, &j, "apply_b_dec_to_input", 0, 1);
    if (s == SCALAR_OK)
        s = scalar__json_string(&hook_name, &j, "hook_name", 0, NULL);
    if (s == SCALAR_OK && !hook_name)
        s = scalar__json_string(&hook_name, &j, "metadata.hook_name", 0, NULL);
    if (s == SCALAR_OK) {
        if (strcmp(act, "topk") == 0 && strcmp(arch, "standard") != 0 &&
            strcmp(arch, "topk") != 0)
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: activation_fn \"topk\" with architecture "
                                  "\"%s\" is not supported", path, arch);
        else if (strcmp(arch, "topk") == 0 || strcmp(act, "topk") == 0)
            cfg->architecture = SCALAR_SAE_TOPK;
        else if (strcmp(arch, "standard") == 0)
            cfg->architecture = SCALAR_SAE_STANDARD;
        else if (strcmp(arch, "jumprelu") == 0)
            cfg->architecture = SCALAR_SAE_JUMPRELU;
        else
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: architecture \"%s\" is not supported "
                                  "(topk, standard, jumprelu)", path, arch);
    }
    if (s == SCALAR_OK && cfg->architecture == SCALAR_SAE_TOPK) {
        s = scalar__json_find(&j, "k") ? scalar__json_int(&k, &j, "k", 1, 0, 1, d_sae)
                                       : scalar__json_int(&k, &j, "activation_fn_kwargs.k", 1, 0,
                                                          1, d_sae);
    }
    if (s == SCALAR_OK && hook_name && strlen(hook_name) > SCALAR__SAE_HOOK_MAX)
        s = scalar__error_set(SCALAR_E_FORMAT, "%s: hook_name longer than %d bytes", path,
                              SCALAR__SAE_HOOK_MAX);
    if (s == SCALAR_OK) {
        cfg->d_in = (int32_t)d_in;
        cfg->d_sae = (int32_t)d_sae;
        cfg->k = (int32_t)k;
        cfg->apply_b_dec_to_input = apply_b_dec;
        if (hook_name) {
            memcpy(hook, hook_name, strlen(hook_name) + 1);
            cfg->hook_name = hook;
        }
    }
    scalar__json_free(&j);
    return s;
}

/* Every tensor of the file is one of the SAE's, exactly once, of its shape. */
static scalar_status read_weights(scalar_sae *sae, const scalar_safetensors *st, const char *path)
{
    static const char *const names[] = {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"};
    int n_names = sae->threshold ? 5 : 4, seen[5] = {0};
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae;
    const int64_t shapes[5][2] = {{d_in, d_sae}, {d_sae, 0}, {d_sae, d_in}, {d_in, 0}, {d_sae, 0}};
    size_t count = scalar_safetensors_count(st);
    for (size_t i = 0; i < count; i++) {
        const char *name = scalar_safetensors_name(st, i);
        int which = -1;
        for (int w = 0; w < n_names; w++)
            if (strcmp(name, names[w]) == 0)
                which = w;
        if (which < 0)
            return scalar__error_set(SCALAR_E_FORMAT, "%s: unexpected tensor \"%s\" for a %s SAE",
                                     path, name, arch_name(sae->cfg.architecture));
        int32_t ndim = scalar_safetensors_ndim(st, i), want_ndim = shapes[which][1] ? 2 : 1;
        int64_t shape[SCALAR_MAX_DIMS] = {0};
        scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, i);
        if (ndim != want_ndim || shape[0] != shapes[which][0] ||
            (want_ndim == 2 && shape[1] != shapes[which][1])) {
            char have[96], want[64];
            int len = snprintf(have, sizeof have, "[%lld", (long long)shape[0]);
            for (int32_t d = 1; d < ndim && d < SCALAR_MAX_DIMS && len < 80; d++)
                len += snprintf(have + len, sizeof have - (size_t)len, ", %lld",
                                (long long)shape[d]);
            snprintf(have + len, sizeof have - (size_t)len, "]");
            if (want_ndim == 2)
                snprintf(want, sizeof want, "[%lld, %lld]", (long long)shapes[which][0],
                         (long long)shapes[which][1]);
            else
                snprintf(want, sizeof want, "[%lld]", (long long)shapes[which][0]);
            return scalar__error_set(SCALAR_E_SHAPE, "%s: \"%s\" has shape %s, cfg.json says %s",
                                     path, name, ndim > 0 ? have : "[]", want);
        }
        int64_t n = 0;
        float *dst = scalar__sae_param(sae, name, &n);
        SCALAR_TRY(scalar_safetensors_read_f32(dst, (size_t)n, st, i));
        for (int64_t e = 0; e < n; e++)
            if (!isfinite(dst[e]))
                return scalar__error_set(SCALAR_E_NUMERIC, "%s: \"%s\"[%lld] is not finite", path,
                                         name, (long long)e);
        seen[which] = 1;
    }
    for (int w = 0; w < n_names; w++)
        if (!seen[w])
            return scalar__error_set(SCALAR_E_FORMAT, "%s: tensor \"%s\" is missing (a %s SAE)",
                                     path, names[w], arch_name(sae->cfg.architecture));
    return SCALAR_OK;
}

scalar_status scalar__sae_folder_paths(const char *dir, char *cfg_path, char *weights_path,
                                      const char *fn)
{
    if (strlen(dir) > PATH_LEN - 32)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: path too long", fn);
    snprintf(cfg_path, PATH_LEN, "%s/cfg.json", dir);
    snprintf(weights_path, PATH_LEN, "%s/sae_weights.safetensors", dir);
    return SCALAR_OK;
}

scalar_status scalar_sae_load(scalar_sae **out, scalar_ctx *ctx, const char *path)
{
    static const char fn[] = "scalar_sae_load";
    char cfg_path[PATH_LEN], weights_path[PATH_LEN], hook[SCALAR__SAE_HOOK_MAX + 1];
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx or path is NULL", fn);
    if (!scalar__is_dir(path))
        return scalar__error_set(SCALAR_E_IO, "%s: %s is not a folder (SAELens saves cfg.json "
                                 "and sae_weights.safetensors in one)", fn, path);
    SCALAR_TRY(scalar__sae_folder_paths(path, cfg_path, weights_path, fn));
    scalar_sae_config cfg;
    scalar_sae_config_init(&cfg, sizeof cfg);
    SCALAR_TRY(read_cfg(&cfg, hook, cfg_path));
    scalar_sae_config checked;
    SCALAR_TRY(scalar__sae_config_check(&checked, &cfg, fn));
    scalar_safetensors *st = NULL;
    scalar_sae *sae = NULL;
    scalar_status s = scalar_safetensors_open(&st, ctx, weights_path);
    if (s == SCALAR_OK)
        s = scalar__sae_alloc(&sae, ctx, &checked, fn);
    if (s == SCALAR_OK)
        s = read_weights(sae, st, weights_path);
    scalar_safetensors_free(st);
    if (s != SCALAR_OK) {
        scalar_sae_free(sae);
        return s;
    }
    *out = sae;
    return SCALAR_OK;
}

/* cfg.json as SAELens 6 writes it for these architectures, with the hook
 * name also at the top level: without a "sae_lens_version" (which we do not
 * claim) SAELens 6 reads the file as its pre-6 format, where it sits there. */
static char *cfg_text(const scalar_sae *sae)
{
    const scalar_sae_config *c = &sae->cfg;
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    int ok = root && meta && cJSON_AddStringToObject(root, "architecture",
                                                      arch_name(c->architecture)) &&
             cJSON_AddNumberToObject(root, "d_in", c->d_in) &&
             cJSON_AddNumberToObject(root, "d_sae", c->d_sae) &&
             cJSON_AddStringToObject(root, "dtype", "float32") &&
             cJSON_AddStringToObject(root, "device", "cpu") &&
             cJSON_AddBoolToObject(root, "apply_b_dec_to_input", c->apply_b_dec_to_input) &&
             cJSON_AddStringToObject(root, "normalize_activations", "none") &&
             (c->architecture != SCALAR_SAE_TOPK || cJSON_AddNumberToObject(root, "k", c->k)) &&
             (!c->hook_name || (cJSON_AddStringToObject(meta, "hook_name", c->hook_name) &&
                                cJSON_AddStringToObject(root, "hook_name", c->hook_name))) &&
             cJSON_AddStringToObject(meta, "sae_lens_training_version", "libscalar");
    if (ok) {
        ok = cJSON_AddItemToObject(root, "metadata", meta);
        if (ok)
            meta = NULL; /* root owns it now */
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(meta);
    cJSON_Delete(root);
    return text;
}

static scalar_status write_weights(const scalar_sae *sae, const char *path)
{
    static const char *const names[] = {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"};
    scalar_safetensors_writer *w = NULL;
    SCALAR_TRY(scalar_safetensors_writer_create(&w, sae->ctx));
    scalar_status s = scalar_safetensors_writer_set_metadata(w, "format", "pt");
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae;
    const int64_t shapes[5][2] = {{d_in, d_sae}, {d_sae, 0}, {d_sae, d_in}, {d_in, 0}, {d_sae, 0}};
    /* a group member's W_enc is a column slice: written from a packed copy */
    float *packed = NULL;
    if (s == SCALAR_OK && sae->ld_enc != d_sae) {
        packed = scalar__alloc(sae->ctx, (size_t)(d_in * d_sae) * sizeof(float),
                               "scalar_sae_save");
        s = packed ? scalar_sae_param_read(sae, "W_enc", packed, (size_t)(d_in * d_sae))
                   : SCALAR_E_NOMEM;
    }
    for (int i = 0; s == SCALAR_OK && i < (sae->threshold ? 5 : 4); i++) {
        int64_t n = 0;
        const float *p = scalar__sae_param(sae, names[i], &n);
        if (i == 0 && packed)
            p = packed;
        s = scalar_safetensors_writer_add(w, names[i], SCALAR_DTYPE_F32, shapes[i],
                                          shapes[i][1] ? 2 : 1, p, (size_t)n * sizeof(float));
    }
    if (s == SCALAR_OK)
        s = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    scalar__free(sae->ctx, packed);
    return s;
}

scalar_status scalar_sae_save(const scalar_sae *sae, const char *dir)
{
    static const char fn[] = "scalar_sae_save";
    char cfg_path[PATH_LEN], weights_path[PATH_LEN];
    if (!sae || !dir)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sae or dir is NULL", fn);
    SCALAR_TRY(scalar__sae_folder_paths(dir, cfg_path, weights_path, fn));
    SCALAR_TRY(scalar__make_dir(dir, fn));
    /* Weights first: a reader that sees the new cfg.json also sees the new weights. */
    SCALAR_TRY(write_weights(sae, weights_path));
    char *text = cfg_text(sae);
    if (!text)
        return scalar__error_set(SCALAR_E_NOMEM, "%s: building cfg.json failed", fn);
    scalar_status s = scalar__write_json_text(sae->ctx, cfg_path, text, fn);
    cJSON_free(text);
    return s;
}
