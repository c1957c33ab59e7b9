/*
 * sae.c - the SAE handle: configuration, creation with SPEC.md's
 * initialisation, parameter access.
 */
#include <math.h>
#include <string.h>

#include "sae_internal.h"

_Static_assert(sizeof(scalar_sae_config) >= SCALAR__SAE_CONFIG_V1_SIZE,
               "scalar_sae_config shrank");

/* Largest d_in and d_sae accepted: GPT-2 Small's widest SAEs are 768 x 98,304;
 * this leaves room and keeps every [d_in, d_sae] product far below 2^63. */
#define SAE_MAX_DIM (1 << 24)

scalar_status scalar_sae_config_init(scalar_sae_config *config, size_t struct_size)
{
    if (!config)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_sae_config_init: config is NULL");
    if (struct_size < SCALAR__SAE_CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_sae_config_init: struct_size %zu < %zu", struct_size,
                                 SCALAR__SAE_CONFIG_V1_SIZE);
    memset(config, 0, struct_size);
    config->struct_size = struct_size;
    config->architecture = SCALAR_SAE_TOPK;
    config->d_in = 64;
    config->d_sae = 512;
    config->k = 10;
    config->apply_b_dec_to_input = 1;
    return SCALAR_OK;
}

size_t scalar_sae_config_size(void)
{
    return sizeof(scalar_sae_config);
}

scalar_status scalar__sae_config_check(scalar_sae_config *out, const scalar_sae_config *in,
                                       const char *fn)
{
    if (!in)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: config is NULL", fn);
    if (in->struct_size < SCALAR__SAE_CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: config->struct_size %zu < %zu (not initialised with "
                                 "scalar_sae_config_init?)", fn, in->struct_size,
                                 SCALAR__SAE_CONFIG_V1_SIZE);
    if (in->struct_size > sizeof *in &&
        !scalar__tail_is_zero(in, sizeof *in, in->struct_size))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: config has nonzero fields this library does not know", fn);
    *out = *in;
    out->struct_size = sizeof *out;
    if (out->architecture < SCALAR_SAE_TOPK || out->architecture > SCALAR_SAE_JUMPRELU)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown architecture %d", fn,
                                 (int)out->architecture);
    if (out->d_in < 1 || out->d_in > SAE_MAX_DIM || out->d_sae < 1 || out->d_sae > SAE_MAX_DIM)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: d_in %d and d_sae %d must be in 1..%d", fn, (int)out->d_in,
                                 (int)out->d_sae, SAE_MAX_DIM);
    if (out->architecture == SCALAR_SAE_TOPK && (out->k < 1 || out->k > out->d_sae))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: k %d not in 1..d_sae (%d)", fn,
                                 (int)out->k, (int)out->d_sae);
    if (out->architecture != SCALAR_SAE_TOPK)
        out->k = 0;
    if (out->apply_b_dec_to_input != 0 && out->apply_b_dec_to_input != 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: apply_b_dec_to_input must be 0 or 1",
                                 fn);
    if (out->reserved0 != 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: config->reserved0 must be 0", fn);
    if (out->hook_name && strlen(out->hook_name) > SCALAR__SAE_HOOK_MAX)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: hook name longer than %d bytes", fn,
                                 SCALAR__SAE_HOOK_MAX);
    return SCALAR_OK;
}

scalar_status scalar__sae_alloc(scalar_sae **out, scalar_ctx *ctx, const scalar_sae_config *cfg,
                                const char *fn)
{
    int64_t d_in = cfg->d_in, d_sae = cfg->d_sae;
    int64_t n = 2 * d_in * d_sae + d_sae + d_in;
    if (cfg->architecture == SCALAR_SAE_JUMPRELU)
        n += d_sae;
    scalar_sae *s = scalar__calloc(ctx, 1, sizeof *s, fn);
    if (!s)
        return SCALAR_E_NOMEM;
    s->data = scalar__calloc(ctx, (size_t)n, sizeof(float), fn);
    if (!s->data) {
        scalar__free(ctx, s);
        return SCALAR_E_NOMEM;
    }
    s->ctx = ctx;
    scalar__ctx_retain(ctx); /* the context lives until its last child is freed */
    s->cfg = *cfg;
    if (cfg->hook_name) {
        memcpy(s->hook, cfg->hook_name, strlen(cfg->hook_name) + 1);
        s->cfg.hook_name = s->hook;
    }
    s->n_params = n;
    s->W_enc = s->data;
    s->b_enc = s->W_enc + d_in * d_sae;
    s->W_dec = s->b_enc + d_sae;
    s->b_dec = s->W_dec + d_sae * d_in;
    s->threshold = cfg->architecture == SCALAR_SAE_JUMPRELU ? s->b_dec + d_in : NULL;
    s->ld_enc = d_sae;
    *out = s;
    return SCALAR_OK;
}

/* W_dec ~ U[-b, b), b = sqrt(6 / d_in) (torch.nn.init.kaiming_uniform_'s
 * defaults on [d_sae, d_in]); W_enc = W_dec^T (row stride ld_enc). */
void scalar__sae_init_weights(const scalar_ctx *ctx, uint64_t seed, int64_t d_in, int64_t d_sae,
                              float *W_enc, int64_t ld_enc, float *W_dec)
{
    scalar__rng rng;
    /* one stream per SAE seed: "sae" in the top bytes, the seed below */
    scalar__rng_init(&rng, ctx->seed, (0x736165ull << 40) ^ seed);
    float bound = sqrtf(6.0f / (float)d_in);
    for (int64_t j = 0; j < d_sae; j++)
        for (int64_t i = 0; i < d_in; i++) {
            float w = bound * (2.0f * scalar__rng_uniform(&rng) - 1.0f);
            W_dec[j * d_in + i] = w;
            W_enc[i * ld_enc + j] = w;
        }
}

scalar_status scalar_sae_create(scalar_sae **out, scalar_ctx *ctx, const scalar_sae_config *config)
{
    static const char fn[] = "scalar_sae_create";
    scalar_sae_config cfg;
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ctx is NULL", fn);
    SCALAR_TRY(scalar__sae_config_check(&cfg, config, fn));
    scalar_sae *s;
    SCALAR_TRY(scalar__sae_alloc(&s, ctx, &cfg, fn));
    scalar__sae_init_weights(ctx, s->cfg.seed, s->cfg.d_in, s->cfg.d_sae, s->W_enc, s->ld_enc,
                             s->W_dec); /* biases (and thresholds) stay 0 */
    *out = s;
    return SCALAR_OK;
}

void scalar_sae_free(scalar_sae *sae)
{
    if (!sae)
        return;
    scalar_ctx *ctx = sae->ctx;
    scalar_sae_group *group = sae->group;
    scalar__free(ctx, sae->data);
    scalar__free(ctx, sae);
    if (group)
        scalar_sae_group_free(group); /* the view's reference */
    else
        scalar__ctx_release(ctx);
}

scalar_status scalar_sae_get_config(const scalar_sae *sae, scalar_sae_config *config)
{
    if (!sae || !config)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_sae_get_config: sae or config is "
                                 "NULL");
    if (config->struct_size < SCALAR__SAE_CONFIG_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_sae_get_config: config->struct_size %zu < %zu",
                                 config->struct_size, SCALAR__SAE_CONFIG_V1_SIZE);
    size_t size = config->struct_size < sizeof *config ? config->struct_size : sizeof *config;
    memcpy(config, &sae->cfg, size);
    config->struct_size = size;
    return SCALAR_OK;
}

float *scalar__sae_param(const scalar_sae *sae, const char *name, int64_t *n)
{
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae;
    if (strcmp(name, "W_enc") == 0)
        return *n = d_in * d_sae, sae->W_enc;
    if (strcmp(name, "b_enc") == 0)
        return *n = d_sae, sae->b_enc;
    if (strcmp(name, "W_dec") == 0)
        return *n = d_sae * d_in, sae->W_dec;
    if (strcmp(name, "b_dec") == 0)
        return *n = d_in, sae->b_dec;
    if (strcmp(name, "threshold") == 0 && sae->threshold)
        return *n = d_sae, sae->threshold;
    return NULL;
}

scalar_status scalar_sae_param_read(const scalar_sae *sae, const char *name, float *out,
                                    size_t capacity)
{
    static const char fn[] = "scalar_sae_param_read";
    int64_t n = 0;
    if (!sae || !name || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sae, name or out is NULL", fn);
    const float *p = scalar__sae_param(sae, name, &n);
    if (!p)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: this SAE has no parameter \"%s\"", fn,
                                 name);
    if (capacity < (size_t)n)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: \"%s\" has %lld floats, capacity %zu", fn,
                                 name, (long long)n, capacity);
    if (p == sae->W_enc && sae->ld_enc != sae->cfg.d_sae) { /* a group member's columns */
        for (int64_t i = 0; i < sae->cfg.d_in; i++)
            memcpy(out + i * sae->cfg.d_sae, p + i * sae->ld_enc,
                   (size_t)sae->cfg.d_sae * sizeof *out);
        return SCALAR_OK;
    }
    memcpy(out, p, (size_t)n * sizeof *out);
    return SCALAR_OK;
}

scalar_status scalar_sae_param_write(scalar_sae *sae, const char *name, const float *in, size_t n)
{
    static const char fn[] = "scalar_sae_param_write";
    int64_t want = 0;
    if (!sae || !name || !in)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sae, name or in is NULL", fn);
    float *p = scalar__sae_param(sae, name, &want);
    if (!p)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: this SAE has no parameter \"%s\"", fn,
                                 name);
    if (n != (size_t)want)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: \"%s\" has %lld floats, got %zu", fn,
                                 name, (long long)want, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(in[i]))
            return scalar__error_set(SCALAR_E_NUMERIC, "%s: \"%s\"[%zu] is not finite", fn, name,
                                     i);
    if (p == sae->W_enc && sae->ld_enc != sae->cfg.d_sae) { /* a group member's columns */
        for (int64_t i = 0; i < sae->cfg.d_in; i++)
            memcpy(p + i * sae->ld_enc, in + i * sae->cfg.d_sae,
                   (size_t)sae->cfg.d_sae * sizeof *p);
        return SCALAR_OK;
    }
    memcpy(p, in, n * sizeof *p);
    return SCALAR_OK;
}
