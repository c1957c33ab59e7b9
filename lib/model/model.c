/*
 * model.c - the model handle: configuration, parameter table, creation with
 * SPEC.md's initialisation, parameter access, hook names.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* The size of the first version of the struct: frozen, later fields append. */
#define CONFIG_V1_SIZE ((size_t)40)
_Static_assert(sizeof(scalar_model_config) >= CONFIG_V1_SIZE, "scalar_model_config shrank");

/* ---- configuration ---- */

static void set_toy(scalar_model_config *c)
{
    c->n_layer = 4;
    c->n_head = 4;
    c->n_embd = 64;
    c->d_mlp = 0;
    c->block_size = 128;
    c->vocab_size = 128;
}

scalar_status scalar_model_config_init(scalar_model_config *config, size_t struct_size)
{
    if (!config)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_model_config_init: config is NULL");
    if (struct_size < CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_model_config_init: struct_size %zu < %zu", struct_size,
                                 CONFIG_V1_SIZE);
    memset(config, 0, struct_size);
    config->struct_size = struct_size;
    set_toy(config);
    config->layer_norm_eps = 1e-5f;
    return SCALAR_OK;
}

size_t scalar_model_config_size(void)
{
    return sizeof(scalar_model_config);
}

scalar_status scalar_model_config_preset(scalar_model_config *config, const char *name)
{
    static const char fn[] = "scalar_model_config_preset";
    if (!config || !name)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: config or name is NULL", fn);
    if (strcmp(name, "toy") == 0) {
        set_toy(config);
    } else if (strcmp(name, "gpt2") == 0) {
        config->n_layer = 12;
        config->n_head = 12;
        config->n_embd = 768;
        config->d_mlp = 0;
        config->block_size = 1024;
        config->vocab_size = 50257;
    } else {
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: unknown preset \"%s\" (known: toy, gpt2)", fn, name);
    }
    config->layer_norm_eps = 1e-5f;
    return SCALAR_OK;
}

/* Copy a caller's config into `out` (our size), checking its struct_size. */
static scalar_status read_config(scalar_model_config *out, const scalar_model_config *given,
                                 const char *fn)
{
    scalar_model_config_init(out, sizeof *out);
    if (!given)
        return SCALAR_OK;
    if (given->struct_size < CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION,
                                 "%s: config.struct_size %zu is smaller than version 1 (%zu); "
                                 "fill it with scalar_model_config_init", fn, given->struct_size,
                                 CONFIG_V1_SIZE);
    if (!scalar__tail_is_zero(given, sizeof *out, given->struct_size))
        return scalar__error_set(SCALAR_E_VERSION,
                                 "%s: config.struct_size %zu > %zu and the fields this library "
                                 "does not know are not zero", fn, given->struct_size, sizeof *out);
    memcpy(out, given, sizeof *out);
    out->struct_size = sizeof *out;
    return SCALAR_OK;
}

scalar_status scalar__model_config_check(const scalar_model_config *c, const char *fn)
{
#define FIELD_RANGE(f, lo, hi)                                                                     \
    if (c->f < (lo) || c->f > (hi))                                                                \
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: " #f "=%d outside [%d, %d]", fn,      \
                                 (int)c->f, (int)(lo), (int)(hi));
    FIELD_RANGE(n_layer, 1, 1024)
    FIELD_RANGE(n_head, 1, 4096)
    FIELD_RANGE(n_embd, 1, 1 << 16)
    FIELD_RANGE(d_mlp, 1, 1 << 20)
    FIELD_RANGE(block_size, 1, 1 << 20)
    FIELD_RANGE(vocab_size, 1, 1 << 24)
#undef FIELD_RANGE
    if (c->n_embd % c->n_head)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_embd=%d is not a multiple of n_head=%d",
                                 fn, (int)c->n_embd, (int)c->n_head);
    if (!(c->layer_norm_eps >= 0.0f) || !isfinite(c->layer_norm_eps))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: layer_norm_eps=%g is not a finite "
                                 "value >= 0", fn, (double)c->layer_norm_eps);
    if (c->reserved0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: reserved0 is not zero", fn);
    return SCALAR_OK;
}

/* ---- the parameter table ---- */

static int64_t add_param(scalar__param *p, int32_t *n, int64_t offset, const char *name,
                         int64_t rows, int64_t cols, int32_t ndim)
{
    scalar__param *q = &p[(*n)++];
    snprintf(q->name, sizeof q->name, "%s", name);
    q->rows = rows;
    q->cols = cols;
    q->ndim = ndim;
    q->offset = offset;
    return offset + rows * cols;
}

/* Fill `p` (2 + 12 L + 2 entries) in Hugging Face file order; returns the total. */
static int64_t params_layout(scalar__param *p, int32_t *n, const scalar_model_config *c)
{
    int64_t C = c->n_embd, F = c->d_mlp, off = 0;
    char name[SCALAR__PARAM_NAME_MAX];
    *n = 0;
    off = add_param(p, n, off, "wte.weight", c->vocab_size, C, 2);
    off = add_param(p, n, off, "wpe.weight", c->block_size, C, 2);
    for (int32_t i = 0; i < c->n_layer; i++) {
        static const struct {
            const char *suffix;
            int rows_c, rows_f, cols_c, cols_f, ndim; /* multiples of C or F */
        } t[] = {
            {"ln_1.weight", 1, 0, 0, 0, 1},       {"ln_1.bias", 1, 0, 0, 0, 1},
            {"attn.c_attn.weight", 1, 0, 3, 0, 2}, {"attn.c_attn.bias", 3, 0, 0, 0, 1},
            {"attn.c_proj.weight", 1, 0, 1, 0, 2}, {"attn.c_proj.bias", 1, 0, 0, 0, 1},
            {"ln_2.weight", 1, 0, 0, 0, 1},       {"ln_2.bias", 1, 0, 0, 0, 1},
            {"mlp.c_fc.weight", 1, 0, 0, 1, 2},    {"mlp.c_fc.bias", 0, 1, 0, 0, 1},
            {"mlp.c_proj.weight", 0, 1, 1, 0, 2},  {"mlp.c_proj.bias", 1, 0, 0, 0, 1},
        };
        for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
            int64_t rows = t[j].rows_c * C + t[j].rows_f * F;
            int64_t cols = t[j].ndim == 1 ? 1 : t[j].cols_c * C + t[j].cols_f * F;
            snprintf(name, sizeof name, "h.%d.%s", (int)i, t[j].suffix);
            off = add_param(p, n, off, name, rows, cols, t[j].ndim);
        }
    }
    off = add_param(p, n, off, "ln_f.weight", C, 1, 1);
    off = add_param(p, n, off, "ln_f.bias", C, 1, 1);
    return off;
}

void scalar__model_views(const scalar_model *m, float *base, scalar__weights *out,
                         scalar__layer_weights *layers)
{
    const scalar__param *p = m->params;
    out->wte = base + p[0].offset;
    out->wpe = base + p[1].offset;
    for (int32_t i = 0; i < m->cfg.n_layer; i++) {
        const scalar__param *q = &p[2 + 12 * i];
        scalar__layer_weights *l = &layers[i];
        float **slots[12] = {&l->ln1_w, &l->ln1_b, &l->qkv_w,  &l->qkv_b,
                             &l->attn_proj_w, &l->attn_proj_b, &l->ln2_w, &l->ln2_b,
                             &l->fc_w, &l->fc_b, &l->mlp_proj_w, &l->mlp_proj_b};
        for (int j = 0; j < 12; j++)
            *slots[j] = base + q[j].offset;
    }
    out->lnf_w = base + p[m->n_tensors - 2].offset;
    out->lnf_b = base + p[m->n_tensors - 1].offset;
    out->layer = layers;
}

int32_t scalar__model_find_param(const scalar_model *m, const char *name)
{
    if (strncmp(name, "transformer.", 12) == 0)
        name += 12;
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- lifecycle ---- */

scalar_status scalar__model_alloc(scalar_model **out, scalar_ctx *ctx,
                                  const scalar_model_config *cfg, const char *fn)
{
    scalar_status st;
    scalar_model *m = scalar__calloc(ctx, 1, sizeof *m, "model");
    if (!m)
        return SCALAR_E_NOMEM;
    m->refcount = 1;
    m->ctx = ctx;
    m->backend = ctx->backend;
    m->cfg = *cfg;
    m->n_tensors = 2 + 12 * cfg->n_layer + 2;
    m->params = scalar__calloc(ctx, (size_t)m->n_tensors, sizeof *m->params, "parameter table");
    m->w.layer = scalar__calloc(ctx, (size_t)cfg->n_layer, sizeof *m->w.layer, "layer views");
    if (!m->params || !m->w.layer) {
        st = SCALAR_E_NOMEM;
        goto fail;
    }
    int32_t n = 0;
    m->n_params = params_layout(m->params, &n, cfg);
    if ((uint64_t)m->n_params > SIZE_MAX / sizeof(float) / 8) {
        st = scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %lld parameters are too many", fn,
                               (long long)m->n_params);
        goto fail;
    }
    st = scalar_backend_buffer_alloc((void **)&m->data, m->backend,
                                     (size_t)m->n_params * sizeof(float));
    if (st != SCALAR_OK)
        goto fail;
    scalar__model_views(m, m->data, &m->w, m->w.layer);
    scalar__ctx_retain(ctx);
    *out = m;
    return SCALAR_OK;
fail:
    scalar__free(ctx, m->params);
    scalar__free(ctx, m->w.layer);
    scalar__free(ctx, m);
    return st;
}

/* Normal(0, std) for weights, zeros for biases, ones for LayerNorm weights. */
static void init_params(scalar_model *m)
{
    scalar__rng rng;
    scalar__rng_init(&rng, m->ctx->seed, 0x6d6f64656cull /* "model" */);
    float std_proj = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const scalar__param *p = &m->params[i];
        float *x = m->data + p->offset;
        int64_t n = p->rows * p->cols;
        if (strstr(p->name, "ln_") && strstr(p->name, ".weight")) {
            for (int64_t j = 0; j < n; j++)
                x[j] = 1.0f;
        } else if (p->ndim == 1) {
            memset(x, 0, (size_t)n * sizeof *x);
        } else {
            float std = strstr(p->name, "c_proj.weight") ? std_proj : 0.02f;
            for (int64_t j = 0; j < n; j++)
                x[j] = std * scalar__rng_normal(&rng);
        }
    }
}

scalar_status scalar_model_create(scalar_model **out, scalar_ctx *ctx,
                                  const scalar_model_config *config)
{
    static const char fn[] = "scalar_model_create";
    scalar_model_config cfg;
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx is NULL", fn);
    scalar_status st = read_config(&cfg, config, fn);
    if (st != SCALAR_OK)
        return st;
    if (cfg.d_mlp == 0)
        cfg.d_mlp = 4 * cfg.n_embd;
    if ((st = scalar__model_config_check(&cfg, fn)) != SCALAR_OK)
        return st;
    if ((st = scalar__model_alloc(out, ctx, &cfg, fn)) != SCALAR_OK)
        return st;
    init_params(*out);
    return SCALAR_OK;
}

void scalar__model_retain(scalar_model *m)
{
    __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
}

void scalar_model_free(scalar_model *model)
{
    if (!model || __atomic_sub_fetch(&model->refcount, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    scalar_ctx *ctx = model->ctx;
    scalar_backend_buffer_free(model->backend, model->data, (size_t)model->n_params * sizeof(float));
    scalar__free(ctx, model->params);
    scalar__free(ctx, model->w.layer);
    scalar__free(ctx, model);
    scalar__ctx_release(ctx);
}

scalar_status scalar_model_get_config(const scalar_model *model, scalar_model_config *config)
{
    static const char fn[] = "scalar_model_get_config";
    if (!model || !config)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model or config is NULL", fn);
    if (config->struct_size < CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: config.struct_size %zu < %zu; fill it "
                                 "with scalar_model_config_init", fn, config->struct_size,
                                 CONFIG_V1_SIZE);
    size_t size = config->struct_size;
    memset(config, 0, size);
    memcpy(config, &model->cfg, sizeof model->cfg < size ? sizeof model->cfg : size);
    config->struct_size = size;
    return SCALAR_OK;
}

int32_t scalar_model_param_count(const scalar_model *model)
{
    return model ? model->n_tensors : 0;
}

int64_t scalar_model_n_params(const scalar_model *model)
{
    return model ? model->n_params : 0;
}

scalar_status scalar_model_param_info(const scalar_model *model, int32_t index,
                                      const char **out_name, int64_t *out_shape, int32_t *out_ndim)
{
    if (!model || index < 0 || index >= model->n_tensors)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_model_param_info: %s", model ? "index out of range"
                                                                      : "model is NULL");
    const scalar__param *p = &model->params[index];
    if (out_name)
        *out_name = p->name;
    if (out_shape) {
        out_shape[0] = p->rows;
        out_shape[1] = p->cols;
    }
    if (out_ndim)
        *out_ndim = p->ndim;
    return SCALAR_OK;
}

static scalar_status find_named(const scalar_model *m, const char *name, const char *fn,
                                const scalar__param **out)
{
    if (!m || !name)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model or name is NULL", fn);
    int32_t i = scalar__model_find_param(m, name);
    if (i < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no parameter \"%s\"", fn, name);
    *out = &m->params[i];
    return SCALAR_OK;
}

scalar_status scalar_model_param_read(const scalar_model *model, const char *name, float *out,
                                      size_t capacity)
{
    static const char fn[] = "scalar_model_param_read";
    const scalar__param *p;
    scalar_status st = find_named(model, name, fn, &p);
    if (st != SCALAR_OK)
        return st;
    size_t n = (size_t)(p->rows * p->cols);
    if (!out || capacity < n)
        return scalar__error_set(out ? SCALAR_E_BUFSIZE : SCALAR_E_INVALID_ARG,
                                 "%s: \"%s\" has %zu values, the buffer %zu", fn, name, n,
                                 out ? capacity : 0);
    return scalar_backend_download(model->backend, out, model->data + p->offset, n * sizeof(float));
}

scalar_status scalar_model_param_write(scalar_model *model, const char *name, const float *values,
                                       size_t count)
{
    static const char fn[] = "scalar_model_param_write";
    const scalar__param *p;
    scalar_status st = find_named(model, name, fn, &p);
    if (st != SCALAR_OK)
        return st;
    size_t n = (size_t)(p->rows * p->cols);
    if (!values)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: values is NULL", fn);
    if (count != n)
        return scalar__error_set(SCALAR_E_SHAPE, "%s: \"%s\" has %zu values, given %zu", fn, name,
                                 n, count);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return scalar__error_set(SCALAR_E_NUMERIC, "%s: values[%zu] of \"%s\" is not finite",
                                     fn, i, name);
    return scalar_backend_upload(model->backend, model->data + p->offset, values, n * sizeof(float));
}

/* ---- hook names ---- */

static const char *const hook_kinds[SCALAR_HOOK_KIND_COUNT] = {
    "resid_pre", "resid_mid", "resid_post", "mlp_in", "mlp_out"};

scalar_status scalar_model_hook_name(char *buf, size_t size, int32_t layer, int32_t kind)
{
    static const char fn[] = "scalar_model_hook_name";
    if (!buf || layer < 0 || layer > 9999 || kind < 0 || kind >= SCALAR_HOOK_KIND_COUNT)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s", fn,
                                 !buf ? "buf is NULL" : "layer or kind out of range");
    int n = snprintf(buf, size, "blocks.%d.hook_%s", (int)layer, hook_kinds[kind]);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: needs %d bytes, has %zu", fn, n + 1, size);
    }
    return SCALAR_OK;
}

static int parse_kind(const char *s, size_t len, int32_t *kind)
{
    for (int32_t k = 0; k < SCALAR_HOOK_KIND_COUNT; k++)
        if (strlen(hook_kinds[k]) == len && strncmp(s, hook_kinds[k], len) == 0) {
            *kind = k;
            return 1;
        }
    return 0;
}

static int parse_layer(const char *s, const char **end, int32_t *layer)
{
    if (*s < '0' || *s > '9')
        return 0;
    long v = 0;
    while (*s >= '0' && *s <= '9' && v <= 9999)
        v = v * 10 + (*s++ - '0');
    if (v > 9999)
        return 0;
    *layer = (int32_t)v;
    *end = s;
    return 1;
}

scalar_status scalar_model_hook_parse(const char *name, int32_t *out_layer, int32_t *out_kind)
{
    const char *rest;
    int32_t layer = 0, kind = 0;
    int ok = 0;
    if (name && out_layer && out_kind) {
        if (strncmp(name, "blocks.", 7) == 0 && parse_layer(name + 7, &rest, &layer) &&
            strncmp(rest, ".hook_", 6) == 0)
            ok = parse_kind(rest + 6, strlen(rest + 6), &kind);
        else if (parse_layer(name, &rest, &layer) && *rest == '.')
            ok = parse_kind(rest + 1, strlen(rest + 1), &kind);
        else {
            const char *dot = strrchr(name, '.');
            ok = dot && parse_kind(name, (size_t)(dot - name), &kind) &&
                 parse_layer(dot + 1, &rest, &layer) && *rest == '\0';
        }
    }
    if (!ok)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_model_hook_parse: cannot parse \"%s\" (accepted: "
                                 "blocks.3.hook_mlp_out, 3.mlp_out, mlp_out.3; kinds resid_pre, "
                                 "resid_mid, resid_post, mlp_in, mlp_out)", name ? name : "(null)");
    *out_layer = layer;
    *out_kind = kind;
    return SCALAR_OK;
}
