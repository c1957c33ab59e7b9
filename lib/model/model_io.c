/*
 * model_io.c - Hugging Face GPT-2 files: config.json + model.safetensors.
 *
 * Loading accepts what transformers writes (`transformer.` prefix, tied
 * lm_head left out, attention mask buffers in old files) and refuses loudly
 * whatever the model would not honour.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/json.h"
#include "model_internal.h"

#define TRY SCALAR_TRY

#define PATH_MAX_LEN 4096

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* config.json and the weights file of a folder or a .safetensors path. */
static scalar_status resolve_paths(const char *path, char *config, char *weights, const char *fn)
{
    int n1, n2;
    if (scalar__is_dir(path)) {
        n1 = snprintf(config, PATH_MAX_LEN, "%s/config.json", path);
        n2 = snprintf(weights, PATH_MAX_LEN, "%s/model.safetensors", path);
    } else if (ends_with(path, ".safetensors")) {
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (int)(slash - path) : 1;
        n1 = snprintf(config, PATH_MAX_LEN, "%.*s/config.json", dir_len, slash ? path : ".");
        n2 = snprintf(weights, PATH_MAX_LEN, "%s", path);
    } else {
        return scalar__error_set(SCALAR_E_IO,
                                 "%s: %s is neither a folder nor a .safetensors file", fn, path);
    }
    if (n1 < 0 || n1 >= PATH_MAX_LEN || n2 < 0 || n2 >= PATH_MAX_LEN)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: path too long", fn);
    return SCALAR_OK;
}

/* A setting that must have one value (or be absent). */
static scalar_status need_bool(const scalar__json *j, const char *key, int want)
{
    int v;
    TRY(scalar__json_bool(&v, j, key, 0, want));
    if (v != want)
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: \"%s\": %s is not supported",
                                 j->source, key, v ? "true" : "false");
    return SCALAR_OK;
}

static scalar_status read_config_json(scalar_model_config *cfg, const char *path)
{
    scalar__json j;
    int64_t v;
    double eps;
    const char *s;
    TRY(scalar__json_load(&j, path));
    scalar_status st;
    scalar_model_config_init(cfg, sizeof *cfg);
#define GET_INT(field, key, req, dflt, lo, hi)                                                     \
    if ((st = scalar__json_int(&v, &j, key, req, dflt, lo, hi)) != SCALAR_OK)                      \
        goto out;                                                                                  \
    cfg->field = (int32_t)v;
    GET_INT(n_layer, "n_layer", 1, 0, 1, 1024)
    GET_INT(n_head, "n_head", 1, 0, 1, 4096)
    GET_INT(n_embd, "n_embd", 1, 0, 1, 65536)
    GET_INT(vocab_size, "vocab_size", 1, 0, 1, 1 << 24)
    GET_INT(block_size, "n_positions", 0, -1, 1, 1 << 20)
    if (cfg->block_size == -1) {
        GET_INT(block_size, "n_ctx", 1, 0, 1, 1 << 20)
    }
    GET_INT(d_mlp, "n_inner", 0, 4 * (int64_t)cfg->n_embd, 1, 1 << 20)
#undef GET_INT
    if ((st = scalar__json_double(&eps, &j, "layer_norm_epsilon", 0, 1e-5)) != SCALAR_OK)
        goto out;
    cfg->layer_norm_eps = (float)eps;
    if ((st = scalar__json_string(&s, &j, "activation_function", 0, "gelu_new")) != SCALAR_OK)
        goto out;
    if (strcmp(s, "gelu_new") && strcmp(s, "gelu_pytorch_tanh")) {
        st = scalar__error_set(SCALAR_E_UNSUPPORTED,
                               "%s: activation_function \"%s\" is not supported (only the tanh "
                               "GELU: gelu_new, gelu_pytorch_tanh)", path, s);
        goto out;
    }
    if ((st = scalar__json_string(&s, &j, "model_type", 0, "gpt2")) != SCALAR_OK)
        goto out;
    if (strcmp(s, "gpt2")) {
        st = scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: model_type \"%s\" is not gpt2", path, s);
        goto out;
    }
    if ((st = need_bool(&j, "scale_attn_weights", 1)) != SCALAR_OK ||
        (st = need_bool(&j, "scale_attn_by_inverse_layer_idx", 0)) != SCALAR_OK ||
        (st = need_bool(&j, "add_cross_attention", 0)) != SCALAR_OK ||
        (st = need_bool(&j, "tie_word_embeddings", 1)) != SCALAR_OK)
        goto out;
    st = scalar__model_config_check(cfg, path);
out:
    scalar__json_free(&j);
    return st;
}

static int ignored_buffer(const char *name)
{
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
}

/* Read every tensor of `st` into the model; each parameter exactly once. */
static scalar_status read_tensors(scalar_model *m, const scalar_safetensors *st, const char *path,
                                  int64_t *lm_head_index)
{
    size_t n = scalar_safetensors_count(st);
    uint8_t *seen = scalar__calloc(m->ctx, (size_t)m->n_tensors, 1, "loaded flags");
    if (!seen)
        return SCALAR_E_NOMEM;
    scalar_status s = SCALAR_OK;
    *lm_head_index = -1;
    for (size_t i = 0; i < n && s == SCALAR_OK; i++) {
        const char *name = scalar_safetensors_name(st, i);
        const char *bare = strncmp(name, "transformer.", 12) == 0 ? name + 12 : name;
        if (ignored_buffer(bare))
            continue;
        if (strcmp(bare, "lm_head.weight") == 0) {
            *lm_head_index = (int64_t)i;
            continue;
        }
        int32_t k = scalar__model_find_param(m, bare);
        if (k < 0) {
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: unknown tensor \"%s\"", path, name);
            break;
        }
        const scalar__param *p = &m->params[k];
        if (seen[k]) {
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: tensor \"%s\" appears twice (with and "
                                  "without the transformer. prefix)", path, p->name);
            break;
        }
        int64_t shape[SCALAR_MAX_DIMS];
        int32_t ndim = scalar_safetensors_ndim(st, i);
        scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, i);
        if (ndim != p->ndim || shape[0] != p->rows || (ndim == 2 && shape[1] != p->cols)) {
            s = scalar__error_set(SCALAR_E_SHAPE,
                                  "%s: \"%s\" has shape [%lld%s%lld], config.json says [%lld%s%lld]",
                                  path, name, (long long)shape[0], ndim == 2 ? ", " : "",
                                  ndim == 2 ? (long long)shape[1] : 0LL, (long long)p->rows,
                                  p->ndim == 2 ? ", " : "", p->ndim == 2 ? (long long)p->cols : 0LL);
            break;
        }
        s = scalar_safetensors_read_f32(m->data + p->offset, (size_t)(p->rows * p->cols), st, i);
        seen[k] = 1;
    }
    for (int32_t k = 0; s == SCALAR_OK && k < m->n_tensors; k++)
        if (!seen[k])
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: tensor \"%s\" is missing", path,
                                  m->params[k].name);
    scalar__free(m->ctx, seen);
    return s;
}

/* A stored lm_head must be the tied embedding. */
static scalar_status check_lm_head(scalar_model *m, const scalar_safetensors *st, size_t index,
                                   const char *path)
{
    const scalar__param *p = &m->params[0];
    size_t n = (size_t)(p->rows * p->cols);
    int64_t shape[SCALAR_MAX_DIMS];
    scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, index);
    if (scalar_safetensors_ndim(st, index) != 2 || shape[0] != p->rows || shape[1] != p->cols)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: lm_head.weight does not have wte's shape",
                                 path);
    float *head = scalar__alloc(m->ctx, n * sizeof(float), "lm_head check");
    if (!head)
        return SCALAR_E_NOMEM;
    scalar_status s = scalar_safetensors_read_f32(head, n, st, index);
    if (s == SCALAR_OK && memcmp(head, m->data + p->offset, n * sizeof(float)) != 0)
        s = scalar__error_set(SCALAR_E_UNSUPPORTED, "%s: lm_head.weight differs from wte.weight; "
                              "only tied heads are supported", path);
    scalar__free(m->ctx, head);
    return s;
}

scalar_status scalar_model_load(scalar_model **out, scalar_ctx *ctx, const char *path)
{
    static const char fn[] = "scalar_model_load";
    char config_path[PATH_MAX_LEN], weights_path[PATH_MAX_LEN];
    scalar_model_config cfg;
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx or path is NULL", fn);
    TRY(resolve_paths(path, config_path, weights_path, fn));
    TRY(read_config_json(&cfg, config_path));
    scalar_safetensors *st = NULL;
    scalar_model *m = NULL;
    int64_t lm_head = -1;
    scalar_status s = scalar_safetensors_open(&st, ctx, weights_path);
    if (s == SCALAR_OK)
        s = scalar__model_alloc(&m, ctx, &cfg, fn);
    if (s == SCALAR_OK)
        s = read_tensors(m, st, weights_path, &lm_head);
    if (s == SCALAR_OK && lm_head >= 0)
        s = check_lm_head(m, st, (size_t)lm_head, weights_path);
    for (int64_t i = 0; s == SCALAR_OK && i < m->n_params; i++)
        if (!isfinite(m->data[i]))
            s = scalar__error_set(SCALAR_E_NUMERIC, "%s: a parameter value is not finite (index "
                                  "%lld of the flat layout)", weights_path, (long long)i);
    scalar_safetensors_free(st);
    if (s != SCALAR_OK) {
        scalar_model_free(m);
        return s;
    }
    *out = m;
    return SCALAR_OK;
}

/* ---- saving ---- */

static scalar_status write_config_json(const scalar_model *m, const char *path)
{
    const scalar_model_config *c = &m->cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateStringArray((const char *const[]){"GPT2LMHeadModel"}, 1);
    int ok = root && arch && cJSON_AddItemToObject(root, "architectures", arch);
    if (!ok)
        cJSON_Delete(arch);
    ok = ok && cJSON_AddStringToObject(root, "model_type", "gpt2") &&
         cJSON_AddNumberToObject(root, "n_layer", c->n_layer) &&
         cJSON_AddNumberToObject(root, "n_head", c->n_head) &&
         cJSON_AddNumberToObject(root, "n_embd", c->n_embd) &&
         cJSON_AddNumberToObject(root, "n_positions", c->block_size) &&
         cJSON_AddNumberToObject(root, "n_ctx", c->block_size) &&
         cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size) &&
         (c->d_mlp == 4 * c->n_embd ? cJSON_AddNullToObject(root, "n_inner") != NULL
                                    : cJSON_AddNumberToObject(root, "n_inner", c->d_mlp) != NULL) &&
         cJSON_AddNumberToObject(root, "layer_norm_epsilon", (double)c->layer_norm_eps) &&
         cJSON_AddStringToObject(root, "activation_function", "gelu_new") &&
         cJSON_AddTrueToObject(root, "tie_word_embeddings") &&
         cJSON_AddTrueToObject(root, "scale_attn_weights") &&
         cJSON_AddNumberToObject(root, "attn_pdrop", 0) &&
         cJSON_AddNumberToObject(root, "embd_pdrop", 0) &&
         cJSON_AddNumberToObject(root, "resid_pdrop", 0) &&
         cJSON_AddStringToObject(root, "torch_dtype", "float32");
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return scalar__error_set(SCALAR_E_NOMEM, "scalar_model_save: building config.json failed");
    scalar_status st = scalar__write_json_text(m->ctx, path, text, "scalar_model_save");
    cJSON_free(text);
    return st;
}

static scalar_status write_weights(const scalar_model *m, const char *path)
{
    scalar_safetensors_writer *w = NULL;
    TRY(scalar_safetensors_writer_create(&w, m->ctx));
    scalar_status st = scalar_safetensors_writer_set_metadata(w, "format", "pt");
    for (int32_t i = 0; st == SCALAR_OK && i < m->n_tensors; i++) {
        const scalar__param *p = &m->params[i];
        int64_t shape[2] = {p->rows, p->cols};
        st = scalar_safetensors_writer_add(w, p->name, SCALAR_DTYPE_F32, shape, p->ndim,
                                           m->data + p->offset,
                                           (size_t)(p->rows * p->cols) * sizeof(float));
    }
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    return st;
}

scalar_status scalar_model_save(const scalar_model *model, const char *dir)
{
    static const char fn[] = "scalar_model_save";
    char path[PATH_MAX_LEN];
    if (!model || !dir)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model or dir is NULL", fn);
    if (strlen(dir) > PATH_MAX_LEN - 32)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: path too long", fn);
    TRY(scalar__make_dir(dir, fn));
    /* Weights first: a reader that sees the new config.json also sees the new weights. */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    TRY(write_weights(model, path));
    snprintf(path, sizeof path, "%s/config.json", dir);
    return write_config_json(model, path);
}
