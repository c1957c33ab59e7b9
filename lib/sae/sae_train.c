/*
 * sae_train.c - the SAE trainer: SPEC.md's loss on every member SAE of a set
 * of groups, sparse gradients, one global clip, Adam with warmup + cosine.
 *
 * Dimension legend:
 *   n      tokens of a step;  d  d_in;  k  codes per token
 *   n_j    latents of member j;  n_max  the group's largest;  lo  n_{j-1}
 *
 * One member's step, for its input x [n, d] (SPEC.md section 2):
 *   xc    = x - b_dec_j                                  [n, d]
 *   (v, idx) = topk_k(ReLU(xc W_enc[:, :n_j] + b_enc_j))  [n, k] each, blocked
 *   x_hat = b_dec_j + sum_k v W_dec[idx]                  sparse decode
 *   loss  = sum_{t,c} (x_hat - x)^2 / n;  g = 2 (x_hat - x) / n
 *   gb_dec_j  += sum_t g
 *   dv     = [v > 0] g . W_dec[idx]                        sparse dot, ReLU mask
 *   gW_dec[idx]  += v  g                                   sparse outer-add
 *   gW_enc^T[idx] += dv xc                                 sparse outer-add
 *   gb_enc_j[idx] += dv
 *   gb_dec_j  -= W_enc[:, :n_j] gb_enc_j                   (the -b_dec input path)
 * In `detach` mode the two matrix scatters skip idx < lo (the prefix other
 * members own); the bias gradients and the b_dec path do not.  The encoder
 * gradient collects transposed ([n_max, d], rows contiguous) and is transposed
 * into the parameter layout once per step.  No allocation per step: every
 * buffer is sized at creation (the model workspace at the first streamed
 * step, and again only if a larger batch comes).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../model/model_internal.h"
#include "sae_jsae.h"

#define TRY SCALAR_TRY
/* The first version of scalar_sae_trainer_options (frozen). */
#define OPTIONS_V1_SIZE ((size_t)56)
/* Transpose tile (floats per side). */
#define TILE 32

typedef struct train_group {
    scalar_sae_group *g;       /* retained */
    scalar_sae *member[SCALAR__GROUP_MAX_MEMBERS]; /* views */
    float *grad;               /* [n_params], the group's layout */
    float *gWT;                /* [n_max, d] encoder gradient, transposed */
    float *m, *v;              /* [n_params] Adam moments */
} train_group;

typedef struct train_pair {
    int32_t in, out, path, layer, mode; /* SAE indices, SCALAR_JSAE_* */
    float lambda;
    float penalty;             /* lambda * P of the last pass */
    int32_t *idx_in, *idx_out; /* [max_tokens, k] the SAEs' kept latents */
    float *WeT;                /* [n_out, C] the out-SAE's W_enc^T, made each pass */
} train_pair;

struct scalar_sae_trainer {
    scalar_ctx *ctx;           /* the groups' context (retained through them) */
    scalar_model *model;       /* retained, or NULL */
    scalar_model_workspace *ws;
    int64_t ws_B, ws_T;
    scalar_sae_trainer_options opt;
    int32_t n_groups, n_saes;
    train_group *groups;       /* [n_groups] */
    int32_t *sae_group, *sae_member, *hook_layer, *hook_kind; /* [n_saes] */
    float *losses;             /* [n_saes] when the caller passes none */
    unsigned char *fired;      /* per SAE s: [n_j] at fired + fired_off[s], since the last reset */
    int64_t *fired_off;        /* [n_saes] */
    const float **acts;        /* [n_saes] the model's hook buffers */
    int64_t max_tokens, max_d, max_k;
    /* scratch, shared by the members in turn */
    float *xc, *xhat;          /* [max_tokens, max_d] */
    float *vals, *dv;          /* [max_tokens, max_k] */
    int32_t *idx, *idx_m;      /* [max_tokens, max_k] */
    float *enc;                /* the encoder's blocks */
    int64_t step;
    int have_grad;
    /* JSAE pairs */
    train_pair *pairs;
    int32_t n_pairs;
    int32_t **keep_idx;        /* [n_saes]: where member_pass copies its indices, or NULL */
    scalar__jsae js;
    int have_js;
};

/* ---- options ---- */

scalar_status scalar_sae_trainer_options_init(scalar_sae_trainer_options *o, size_t struct_size)
{
    if (!o || struct_size < OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_sae_trainer_options_init: options "
                                 "NULL or struct_size %zu < %zu", struct_size, OPTIONS_V1_SIZE);
    memset(o, 0, struct_size);
    o->struct_size = struct_size < sizeof *o ? struct_size : sizeof *o;
    o->warmup_steps = 750;
    o->max_steps = 7500;
    o->lr = 1e-3f;
    o->min_lr = 1e-4f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.0f;
    o->grad_clip = 1.0f;
    o->renorm_decoder = 0;
    return SCALAR_OK;
}

size_t scalar_sae_trainer_options_size(void)
{
    return sizeof(scalar_sae_trainer_options);
}

static scalar_status read_options(scalar_sae_trainer_options *o,
                                  const scalar_sae_trainer_options *in, const char *fn)
{
    scalar_sae_trainer_options_init(o, sizeof *o);
    if (!in)
        return SCALAR_OK;
    if (in->struct_size < OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_VERSION, "%s: options struct_size %zu < %zu", fn,
                                 in->struct_size, OPTIONS_V1_SIZE);
    const unsigned char *extra = (const unsigned char *)in + sizeof *o;
    for (size_t i = sizeof *o; i < in->struct_size; i++)
        if (extra[i - sizeof *o])
            return scalar__error_set(SCALAR_E_VERSION, "%s: options has unknown nonzero fields "
                                     "(a newer library's?)", fn);
    memcpy(o, in, in->struct_size < sizeof *o ? in->struct_size : sizeof *o);
    o->struct_size = sizeof *o;
    if (o->warmup_steps < 0 || o->max_steps < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: warmup_steps and max_steps must be "
                                 ">= 0", fn);
    float f[] = {o->lr, o->min_lr, o->eps, o->weight_decay, o->grad_clip};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!(f[i] >= 0.0f) || isinf(f[i]))
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: lr, min_lr, eps, weight_decay and "
                                     "grad_clip must be finite and >= 0", fn);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f && o->beta2 >= 0.0f && o->beta2 < 1.0f))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: betas must be in [0, 1)", fn);
    if (o->renorm_decoder != 0 && o->renorm_decoder != 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: renorm_decoder must be 0 or 1", fn);
    return SCALAR_OK;
}

/* ---- lifecycle ---- */

static void *alloc_floats(scalar_ctx *ctx, int64_t n, const char *fn)
{
    return scalar__calloc(ctx, (size_t)(n > 0 ? n : 1), sizeof(float), fn);
}

void scalar_sae_trainer_free(scalar_sae_trainer *t)
{
    if (!t)
        return;
    scalar_ctx *ctx = t->ctx; /* the trainer's own reference keeps it to the end */
    for (int32_t i = 0; t->groups && i < t->n_groups; i++) {
        train_group *tg = &t->groups[i];
        for (int32_t j = 0; tg->g && j < tg->g->n_members; j++)
            scalar_sae_free(tg->member[j]);
        scalar__free(ctx, tg->grad);
        scalar__free(ctx, tg->gWT);
        scalar__free(ctx, tg->m);
        scalar__free(ctx, tg->v);
        scalar_sae_group_free(tg->g);
    }
    scalar__free(ctx, t->groups);
    scalar__free(ctx, t->sae_group);
    scalar__free(ctx, t->losses);
    scalar__free(ctx, t->fired);
    scalar__free(ctx, t->fired_off);
    for (int32_t p = 0; t->pairs && p < t->n_pairs; p++) {
        scalar__free(ctx, t->pairs[p].idx_in);
        scalar__free(ctx, t->pairs[p].idx_out);
        scalar__free(ctx, t->pairs[p].WeT);
    }
    scalar__free(ctx, t->pairs);
    scalar__free(ctx, t->keep_idx);
    if (t->have_js)
        scalar__jsae_free(&t->js, ctx);
    scalar__free(ctx, t->acts);
    scalar__free(ctx, t->xc);
    scalar__free(ctx, t->xhat);
    scalar__free(ctx, t->vals);
    scalar__free(ctx, t->dv);
    scalar__free(ctx, t->idx);
    scalar__free(ctx, t->idx_m);
    scalar__free(ctx, t->enc);
    scalar_model_workspace_free(t->ws);
    scalar_model_free(t->model);
    scalar__free(ctx, t);
    scalar__ctx_release(ctx);
}

/* Hooks of every member against the model (when there is one). */
static scalar_status resolve_hooks(scalar_sae_trainer *t, const char *fn)
{
    for (int32_t s = 0; s < t->n_saes; s++) {
        const scalar_sae_group *g = t->groups[t->sae_group[s]].g;
        const char *hook = g->hooks[t->sae_member[s]];
        t->hook_layer[s] = t->hook_kind[s] = -1;
        if (!t->model)
            continue;
        if (!hook[0])
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: SAE %d has no hook name; a model "
                                     "trainer needs one per SAE", fn, (int)s);
        if (scalar_model_hook_parse(hook, &t->hook_layer[s], &t->hook_kind[s]) != SCALAR_OK ||
            t->hook_layer[s] >= t->model->cfg.n_layer)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: SAE %d: the model has no hook "
                                     "\"%s\"", fn, (int)s, hook);
        if (g->d_in != t->model->cfg.n_embd)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: SAE %d has d_in %d, the model's "
                                     "n_embd is %d", fn, (int)s, (int)g->d_in,
                                     (int)t->model->cfg.n_embd);
    }
    return SCALAR_OK;
}

static scalar_status alloc_group(scalar_sae_trainer *t, train_group *tg, scalar_sae_group *g,
                                 const char *fn)
{
    scalar_ctx *ctx = t->ctx;
    tg->g = g;
    scalar__group_retain(g);
    tg->grad = alloc_floats(ctx, g->n_params, fn);
    tg->gWT = alloc_floats(ctx, (int64_t)g->d_in * scalar__group_n_max(g), fn);
    tg->m = alloc_floats(ctx, g->n_params, fn);
    tg->v = alloc_floats(ctx, g->n_params, fn);
    if (!tg->grad || !tg->gWT || !tg->m || !tg->v)
        return SCALAR_E_NOMEM;
    for (int32_t j = 0; j < g->n_members; j++)
        TRY(scalar_sae_group_get_sae(&tg->member[j], g, j));
    return SCALAR_OK;
}

static scalar_status alloc_scratch(scalar_sae_trainer *t, const char *fn)
{
    scalar_ctx *ctx = t->ctx;
    int64_t enc = 0;
    t->n_saes = 0;
    for (int32_t i = 0; i < t->n_groups; i++) {
        const train_group *tg = &t->groups[i];
        t->max_d = tg->g->d_in > t->max_d ? tg->g->d_in : t->max_d;
        t->max_k = tg->g->k > t->max_k ? tg->g->k : t->max_k;
        for (int32_t j = 0; j < tg->g->n_members; j++) {
            int64_t e = scalar__sae_encode_scratch(tg->member[j], t->max_tokens);
            enc = e > enc ? e : enc;
        }
        t->n_saes += tg->g->n_members;
    }
    int64_t nd = t->max_tokens * t->max_d, nk = t->max_tokens * t->max_k;
    t->sae_group = scalar__calloc(ctx, (size_t)t->n_saes * 4, sizeof(int32_t), fn);
    t->xc = alloc_floats(ctx, nd, fn);
    t->xhat = alloc_floats(ctx, nd, fn);
    t->vals = alloc_floats(ctx, nk, fn);
    t->dv = alloc_floats(ctx, nk, fn);
    t->idx = scalar__calloc(ctx, (size_t)nk, sizeof(int32_t), fn);
    t->idx_m = scalar__calloc(ctx, (size_t)nk, sizeof(int32_t), fn);
    t->enc = alloc_floats(ctx, enc, fn);
    t->losses = alloc_floats(ctx, t->n_saes, fn);
    t->acts = scalar__calloc(ctx, (size_t)t->n_saes, sizeof *t->acts, fn);
    if (!t->losses || !t->acts || !t->sae_group || !t->xc || !t->xhat || !t->vals || !t->dv || !t->idx || !t->idx_m ||
        !t->enc)
        return SCALAR_E_NOMEM;
    t->sae_member = t->sae_group + t->n_saes;
    t->hook_layer = t->sae_member + t->n_saes;
    t->hook_kind = t->hook_layer + t->n_saes;
    int32_t s = 0;
    int64_t latents = 0;
    t->fired_off = scalar__calloc(ctx, (size_t)t->n_saes, sizeof *t->fired_off, fn);
    if (!t->fired_off)
        return SCALAR_E_NOMEM;
    for (int32_t i = 0; i < t->n_groups; i++)
        for (int32_t j = 0; j < t->groups[i].g->n_members; j++, s++) {
            t->sae_group[s] = i, t->sae_member[s] = j;
            t->fired_off[s] = latents;
            latents += t->groups[i].g->sizes[j];
        }
    t->fired = scalar__calloc(ctx, (size_t)latents, 1, fn);
    return t->fired ? SCALAR_OK : SCALAR_E_NOMEM;
}

static scalar_status check_groups(const scalar_model *model, scalar_sae_group *const *groups,
                                  int32_t n_groups, int64_t max_tokens, const char *fn)
{
    if (!groups || n_groups < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: groups is NULL or n_groups %d < 1",
                                 fn, (int)n_groups);
    if (max_tokens < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: max_tokens %lld < 1", fn,
                                 (long long)max_tokens);
    for (int32_t i = 0; i < n_groups; i++) {
        if (!groups[i])
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: groups[%d] is NULL", fn, (int)i);
        if (groups[i]->ctx != groups[0]->ctx || (model && model->ctx != groups[i]->ctx))
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: groups[%d] lives on another "
                                     "context than groups[0] or the model", fn, (int)i);
        for (int32_t j = 0; j < i; j++)
            if (groups[j] == groups[i])
                return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: groups[%d] repeats "
                                         "groups[%d]", fn, (int)i, (int)j);
    }
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_create(scalar_sae_trainer **out, const struct scalar_model *model,
                                        scalar_sae_group *const *groups, int32_t n_groups,
                                        int64_t max_tokens,
                                        const scalar_sae_trainer_options *options)
{
    static const char fn[] = "scalar_sae_trainer_create";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    TRY(check_groups(model, groups, n_groups, max_tokens, fn));
    scalar_sae_trainer_options opt;
    TRY(read_options(&opt, options, fn));
    scalar_ctx *ctx = groups[0]->ctx;
    scalar_sae_trainer *t = scalar__calloc(ctx, 1, sizeof *t, fn);
    if (!t)
        return SCALAR_E_NOMEM;
    t->ctx = ctx;
    scalar__ctx_retain(ctx);
    t->opt = opt;
    t->max_tokens = max_tokens;
    if (model) {
        t->model = (scalar_model *)model; /* held, never written */
        scalar__model_retain(t->model);
    }
    t->groups = scalar__calloc(ctx, (size_t)n_groups, sizeof *t->groups, fn);
    scalar_status s = t->groups ? SCALAR_OK : SCALAR_E_NOMEM;
    for (int32_t i = 0; s == SCALAR_OK && i < n_groups; i++) {
        t->n_groups = i + 1;
        s = alloc_group(t, &t->groups[i], groups[i], fn);
    }
    if (s == SCALAR_OK)
        s = alloc_scratch(t, fn);
    if (s == SCALAR_OK)
        s = resolve_hooks(t, fn);
    if (s != SCALAR_OK) {
        scalar_sae_trainer_free(t);
        return s;
    }
    *out = t;
    return SCALAR_OK;
}

int32_t scalar_sae_trainer_n_saes(const scalar_sae_trainer *t)
{
    return t ? t->n_saes : 0;
}

int64_t scalar_sae_trainer_steps(const scalar_sae_trainer *t)
{
    return t ? t->step : 0;
}

float scalar_sae_trainer_lr(const scalar_sae_trainer *t, int64_t step)
{
    if (!t || step < 0)
        return 0.0f;
    const scalar_sae_trainer_options *o = &t->opt;
    return scalar__lr_warmup_cosine(step, o->warmup_steps, o->max_steps, o->lr, o->min_lr);
}

/* ---- one member: loss and (optionally) gradients ---- */

/* x_hat - x into xhat, returning sum of squares / n; with grad, xhat becomes
 * the loss gradient 2 (x_hat - x) / n. */
static double residual(float *xhat, const float *x, int64_t n, int64_t d, int grad,
                       int32_t n_threads)
{
    double sum = 0.0;
    float scale = 2.0f / (float)n;
#pragma omp parallel for num_threads(n_threads) reduction(+ : sum) schedule(static) \
    if (n_threads > 1 && n * d >= 65536)
    for (int64_t t = 0; t < n; t++) {
        double row = 0.0;
        for (int64_t c = 0; c < d; c++) {
            float r = xhat[t * d + c] - x[t * d + c];
            row += (double)r * r;
            xhat[t * d + c] = grad ? r * scale : r;
        }
        sum += row;
    }
    return sum / (double)n;
}

static scalar_status member_pass(scalar_sae_trainer *t, int32_t s, const float *x, int64_t n,
                                 int grad, float *loss)
{
    train_group *tg = &t->groups[t->sae_group[s]];
    const scalar_sae_group *g = tg->g;
    int32_t j = t->sae_member[s];
    const scalar_sae *sae = tg->member[j];
    int64_t d = g->d_in, k = g->k, n_j = g->sizes[j], n_max = scalar__group_n_max(g);
    scalar_backend *be = scalar_ctx_backend(t->ctx);
    TRY(scalar__sae_encode_topk(sae, x, n, t->vals, t->idx, t->xc, t->enc));
    if (t->keep_idx && t->keep_idx[s]) /* a JSAE pair reads the kept latents */
        memcpy(t->keep_idx[s], t->idx, (size_t)(n * k) * sizeof(int32_t));
    TRY(scalar_backend_sparse_decode(be, t->xhat, t->vals, t->idx, g->W_dec, g->b_dec[j], n, k,
                                     n_j, d));
    double l = residual(t->xhat, x, n, d, grad, scalar_ctx_n_threads(t->ctx));
    *loss = (float)l;
    if (!grad)
        return SCALAR_OK;
    float *gb_enc = tg->grad + (g->b_enc[j] - g->data);
    float *gb_dec = tg->grad + (g->b_dec[j] - g->data);
    float *gW_dec = tg->grad + (g->W_dec - g->data);
    TRY(scalar_backend_sum_rows(be, gb_dec, t->xhat, n, d));
    TRY(scalar_backend_sparse_dot(be, t->dv, t->idx, g->W_dec, t->xhat, n, k, n_j, d));
    int32_t lo = g->mode == SCALAR_SAE_GROUP_DETACH && j > 0 ? g->sizes[j - 1] : 0;
    unsigned char *fired = t->fired + t->fired_off[s];
    for (int64_t e = 0; e < n * k; e++) {
        if (!(t->vals[e] > 0.0f))
            t->dv[e] = 0.0f; /* ReLU: no gradient where pre <= 0 */
        else
            fired[t->idx[e]] = 1;
        t->idx_m[e] = t->idx[e] >= lo ? t->idx[e] : -1;
        gb_enc[t->idx[e]] += t->dv[e];
    }
    TRY(scalar_backend_sparse_outer_add(be, gW_dec, t->vals, t->idx_m, t->xhat, n, k, n_j, d));
    TRY(scalar_backend_sparse_outer_add(be, tg->gWT, t->dv, t->idx_m, t->xc, n, k, n_j, d));
    if (g->apply_b_dec_to_input) /* x - b_dec: gb_dec -= W_enc[:, :n_j] gb_enc */
        TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, d, 1, n_j, -1.0f, g->W_enc,
                                 n_max, gb_enc, 1, 1.0f, gb_dec, 1));
    return SCALAR_OK;
}

/* grad's W_enc [d, n_max] = gWT^T, in tiles. */
static void transpose_encoder_grad(train_group *tg, int32_t n_threads)
{
    int64_t d = tg->g->d_in, n_max = scalar__group_n_max(tg->g);
    float *dst = tg->grad;
    const float *src = tg->gWT;
#pragma omp parallel for collapse(2) num_threads(n_threads) schedule(static) \
    if (n_threads > 1 && d * n_max >= 65536)
    for (int64_t c0 = 0; c0 < n_max; c0 += TILE)
        for (int64_t i0 = 0; i0 < d; i0 += TILE)
            for (int64_t i = i0; i < i0 + TILE && i < d; i++)
                for (int64_t c = c0; c < c0 + TILE && c < n_max; c++)
                    dst[i * n_max + c] = src[c * d + i];
}

static scalar_status check_acts(const scalar_sae_trainer *t, const float *const *acts, int64_t n,
                                const char *fn)
{
    if (!t || !acts)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or acts is NULL", fn);
    if (n < 1 || n > t->max_tokens)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_tokens %lld not in 1..%lld", fn,
                                 (long long)n, (long long)t->max_tokens);
    for (int32_t s = 0; s < t->n_saes; s++)
        if (!acts[s])
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: acts[%d] is NULL", fn, (int)s);
    return SCALAR_OK;
}

/* A JSAE pair's penalty (and its gradient into the two groups). */
static scalar_status pair_pass(scalar_sae_trainer *t, train_pair *p, const float *x_in, int64_t n,
                               int grad)
{
    train_group *gi = &t->groups[t->sae_group[p->in]], *go = &t->groups[t->sae_group[p->out]];
    int32_t ji = t->sae_member[p->in], jo = t->sae_member[p->out];
    const scalar__layer_weights *w = &t->model->w.layer[p->layer];
    scalar__jsae_call c;
    memset(&c, 0, sizeof c);
    c.js = &t->js;
    c.ctx = t->ctx;
    c.block = p->path == SCALAR_JSAE_FF_BLOCK;
    c.x_in = x_in;
    c.idx_in = p->idx_in;
    c.idx_out = p->idx_out;
    c.k_in = gi->g->k;
    c.k_out = go->g->k;
    c.n_in = gi->g->sizes[ji];
    c.n_out = go->g->sizes[jo];
    c.W_dec_in = gi->g->W_dec;
    int64_t C = gi->g->d_in, n_out = go->g->sizes[jo], ld = scalar__group_n_max(go->g);
    const float *We = go->g->W_enc; /* [C, ld]: its first n_out columns, as rows */
#pragma omp parallel for num_threads(scalar_ctx_n_threads(t->ctx)) schedule(static) \
    if (scalar_ctx_n_threads(t->ctx) > 1 && n_out * C >= 65536)
    for (int64_t a = 0; a < n_out; a++)
        for (int64_t i = 0; i < C; i++)
            p->WeT[a * C + i] = We[i * ld + a];
    c.WeT = p->WeT;
    c.W_fc = w->fc_w;
    c.b_fc = w->fc_b;
    c.W_proj = w->mlp_proj_w;
    c.gamma = w->ln2_w;
    c.beta = w->ln2_b;
    c.eps = t->model->cfg.layer_norm_eps;
    double scale = (double)p->lambda / (double)(c.k_in * c.k_in);
    if (p->mode == SCALAR_JSAE_MEAN)
        scale /= (double)n;
    c.scale = (float)scale;
    c.grad_W_dec_in = gi->grad + (gi->g->W_dec - gi->g->data);
    c.grad_WT_enc_out = go->gWT;
    double sum = 0.0;
    TRY(scalar__jsae_run(&c, n, grad, &sum));
    p->penalty = (float)(scale * sum);
    return SCALAR_OK;
}

/* Losses (and gradients, zeroed first) of every member. */
static scalar_status pass_all(scalar_sae_trainer *t, const float *const *acts, int64_t n,
                              int grad, float *losses)
{
    t->have_grad = 0;
    for (int32_t i = 0; grad && i < t->n_groups; i++) {
        train_group *tg = &t->groups[i];
        memset(tg->grad, 0, (size_t)tg->g->n_params * sizeof(float));
        memset(tg->gWT, 0, (size_t)(tg->g->d_in * scalar__group_n_max(tg->g)) * sizeof(float));
    }
    for (int32_t s = 0; s < t->n_saes; s++) {
        float l = 0.0f;
        TRY(member_pass(t, s, acts[s], n, grad, &l));
        if (losses)
            losses[s] = l;
    }
    for (int32_t p = 0; p < t->n_pairs; p++)
        TRY(pair_pass(t, &t->pairs[p], acts[t->pairs[p].in], n, grad));
    for (int32_t i = 0; grad && i < t->n_groups; i++)
        transpose_encoder_grad(&t->groups[i], scalar_ctx_n_threads(t->ctx));
    t->have_grad = grad;
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_compute_acts(scalar_sae_trainer *t, const float *const *acts,
                                              int64_t n_tokens, float *losses)
{
    TRY(check_acts(t, acts, n_tokens, "scalar_sae_trainer_compute_acts"));
    return pass_all(t, acts, n_tokens, 1, losses);
}

/* Rows of every group's W_dec to unit norm (SAELens' decoder constraint). */
static void renorm_decoder(train_group *tg)
{
    int64_t d = tg->g->d_in, n_max = scalar__group_n_max(tg->g);
    for (int64_t r = 0; r < n_max; r++) {
        float *row = tg->g->W_dec + r * d;
        double ss = 0.0;
        for (int64_t c = 0; c < d; c++)
            ss += (double)row[c] * row[c];
        if (ss > 0.0)
            for (int64_t c = 0; c < d; c++)
                row[c] = (float)(row[c] / sqrt(ss));
    }
}

/* Clip and Adam on the gradients of the last pass; *norm the global norm. */
static scalar_status apply_update(scalar_sae_trainer *t, const float *losses, float *grad_norm,
                                  const char *fn)
{
    scalar_backend *be = scalar_ctx_backend(t->ctx);
    const scalar_sae_trainer_options *o = &t->opt;
    double sumsq = 0.0;
    for (int32_t i = 0; i < t->n_groups; i++) {
        double part = 0.0;
        TRY(scalar_backend_sumsq(be, &part, t->groups[i].grad, t->groups[i].g->n_params));
        sumsq += part;
    }
    double norm = sqrt(sumsq);
    if (grad_norm)
        *grad_norm = (float)norm;
    int finite = isfinite(norm);
    for (int32_t s = 0; losses && s < t->n_saes; s++)
        finite = finite && isfinite(losses[s]);
    for (int32_t p = 0; p < t->n_pairs; p++)
        finite = finite && isfinite(t->pairs[p].penalty);
    if (!finite)
        return scalar__error_set(SCALAR_E_NUMERIC, "%s: step %lld: a loss or the gradient norm "
                                 "(%g) is not finite; the SAEs are unchanged", fn,
                                 (long long)t->step, norm);
    /* torch.nn.utils.clip_grad_norm_: coef = clip / (norm + 1e-6), clamped to 1 */
    double coef = 1.0;
    if (o->grad_clip > 0.0f) {
        coef = (double)o->grad_clip / (norm + 1e-6);
        coef = coef > 1.0 ? 1.0 : coef;
    }
    float lr = scalar_sae_trainer_lr(t, t->step);
    for (int32_t i = 0; i < t->n_groups; i++) {
        train_group *tg = &t->groups[i];
        int64_t n_mat = 2 * (int64_t)tg->g->d_in * scalar__group_n_max(tg->g);
        int64_t n_bias = tg->g->n_params - n_mat;
        TRY(scalar_backend_adamw(be, tg->g->data, tg->grad, tg->m, tg->v, n_mat, lr, o->beta1,
                                 o->beta2, o->eps, o->weight_decay, (float)coef, t->step + 1));
        TRY(scalar_backend_adamw(be, tg->g->data + n_mat, tg->grad + n_mat, tg->m + n_mat,
                                 tg->v + n_mat, n_bias, lr, o->beta1, o->beta2, o->eps, 0.0f,
                                 (float)coef, t->step + 1));
        if (o->renorm_decoder)
            renorm_decoder(tg);
    }
    t->step++;
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_step_acts(scalar_sae_trainer *t, const float *const *acts,
                                           int64_t n_tokens, float *losses, float *grad_norm)
{
    static const char fn[] = "scalar_sae_trainer_step_acts";
    TRY(check_acts(t, acts, n_tokens, fn));
    float *l = losses ? losses : t->losses;
    TRY(pass_all(t, acts, n_tokens, 1, l));
    return apply_update(t, l, grad_norm, fn);
}

/* ---- streaming from the model ---- */

static scalar_status model_acts(scalar_sae_trainer *t, const int32_t *ids, int64_t B, int64_t T,
                                const char *fn)
{
    if (!t || !ids)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or ids is NULL", fn);
    if (!t->model)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the trainer was made without a "
                                 "model (use the _acts calls)", fn);
    if (B < 1 || T < 1 || B > t->max_tokens / T)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: B x T = %lld x %lld must be in "
                                 "1..max_tokens = %lld", fn, (long long)B, (long long)T,
                                 (long long)t->max_tokens);
    if (!t->ws || B > t->ws_B || T > t->ws_T) {
        scalar_model_workspace_free(t->ws);
        t->ws = NULL;
        int64_t nb = B > t->ws_B ? B : t->ws_B, nt = T > t->ws_T ? T : t->ws_T;
        TRY(scalar_model_workspace_create(&t->ws, t->model, nb, nt, 0));
        t->ws_B = nb, t->ws_T = nt;
    }
    int32_t end = 1; /* the layers the hooks need, no logits */
    for (int32_t s = 0; s < t->n_saes; s++)
        end = t->hook_layer[s] + 1 > end ? t->hook_layer[s] + 1 : end;
    TRY(scalar__model_forward_acts(t->model, t->ws, ids, B, T, end));
    for (int32_t s = 0; s < t->n_saes; s++)
        t->acts[s] = scalar__ws_hook_buffer(t->ws, t->hook_layer[s], t->hook_kind[s]);
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_step(scalar_sae_trainer *t, const int32_t *ids, int64_t B,
                                      int64_t T, float *losses, float *grad_norm)
{
    static const char fn[] = "scalar_sae_trainer_step";
    TRY(model_acts(t, ids, B, T, fn));
    return scalar_sae_trainer_step_acts(t, t->acts, B * T, losses, grad_norm);
}

scalar_status scalar_sae_trainer_evaluate(scalar_sae_trainer *t, const int32_t *ids, int64_t B,
                                          int64_t T, float *losses)
{
    static const char fn[] = "scalar_sae_trainer_evaluate";
    if (!losses)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: losses is NULL", fn);
    TRY(model_acts(t, ids, B, T, fn));
    int had = t->have_grad;
    scalar_status s = pass_all(t, t->acts, B * T, 0, losses);
    t->have_grad = had; /* the gradients were not touched */
    return s;
}

scalar_status scalar_sae_trainer_dead_latents(scalar_sae_trainer *t, int64_t *out, int32_t reset)
{
    if (!t || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_sae_trainer_dead_latents: "
                                 "trainer or out is NULL");
    for (int32_t s = 0; s < t->n_saes; s++) {
        int32_t n_j = t->groups[t->sae_group[s]].g->sizes[t->sae_member[s]];
        unsigned char *fired = t->fired + t->fired_off[s];
        int64_t dead = 0;
        for (int32_t f = 0; f < n_j; f++)
            dead += !fired[f];
        out[s] = dead;
        if (reset)
            memset(fired, 0, (size_t)n_j);
    }
    return SCALAR_OK;
}

/* ---- JSAE pairs ---- */

static scalar_status check_pair(const scalar_sae_trainer *t, int32_t in, int32_t out, int32_t path,
                                int32_t layer, float lambda, int32_t mode, const char *fn)
{
    if (!t->model)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a Jacobian penalty needs the "
                                 "trainer's model (its MLP weights)", fn);
    if (in < 0 || in >= t->n_saes || out < 0 || out >= t->n_saes || in == out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: SAEs %d -> %d: two different SAEs "
                                 "of the trainer's %d", fn, (int)in, (int)out, (int)t->n_saes);
    if (path != SCALAR_JSAE_FF_LAYER && path != SCALAR_JSAE_FF_BLOCK)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown path %d (FF layer 0, FF "
                                 "block 1)", fn, (int)path);
    if (mode != SCALAR_JSAE_SUM && mode != SCALAR_JSAE_MEAN)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown mode %d (sum 0, mean 1)", fn,
                                 (int)mode);
    if (layer < 0 || layer >= t->model->cfg.n_layer)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: layer %d not in 0..%d", fn,
                                 (int)layer, (int)t->model->cfg.n_layer - 1);
    if (!(lambda >= 0.0f) || isinf(lambda))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: lambda %g must be finite and >= 0",
                                 fn, (double)lambda);
    for (int32_t p = 0; p < t->n_pairs; p++) {
        const train_pair *q = &t->pairs[p];
        if (q->in == in || q->out == in || q->in == out || q->out == out)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: SAE %d or %d is already in a "
                                     "pair", fn, (int)in, (int)out);
    }
    const int32_t want_in = path == SCALAR_JSAE_FF_LAYER ? SCALAR_HOOK_MLP_IN : SCALAR_HOOK_RESID_MID;
    const int32_t want_out = path == SCALAR_JSAE_FF_LAYER ? SCALAR_HOOK_MLP_OUT
                                                          : SCALAR_HOOK_RESID_POST;
    if (t->hook_layer[in] != layer || t->hook_kind[in] != want_in || t->hook_layer[out] != layer ||
        t->hook_kind[out] != want_out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the pair's SAEs must read the path's "
                                 "input and output of layer %d (%s)", fn, (int)layer,
                                 path == SCALAR_JSAE_FF_LAYER ? "hook_mlp_in -> hook_mlp_out"
                                                              : "hook_resid_mid -> "
                                                                "hook_resid_post");
    int32_t kin = t->groups[t->sae_group[in]].g->k, kout = t->groups[t->sae_group[out]].g->k;
    if (kin > SCALAR__JSAE_MAX_K || kout > SCALAR__JSAE_MAX_K)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: k above %d", fn, SCALAR__JSAE_MAX_K);
    return SCALAR_OK;
}

/* The JSAE scratch, once, for the largest k and dictionary of the trainer. */
static scalar_status jsae_scratch(scalar_sae_trainer *t, const char *fn)
{
    if (t->have_js)
        return SCALAR_OK;
    int64_t max_k = 0, max_lat = 0;
    for (int32_t i = 0; i < t->n_groups; i++) {
        const scalar_sae_group *g = t->groups[i].g;
        max_k = g->k > max_k ? g->k : max_k;
        max_lat = scalar__group_n_max(g) > max_lat ? scalar__group_n_max(g) : max_lat;
    }
    t->keep_idx = scalar__calloc(t->ctx, (size_t)t->n_saes, sizeof *t->keep_idx, fn);
    if (!t->keep_idx)
        return SCALAR_E_NOMEM;
    memset(&t->js, 0, sizeof t->js);
    t->have_js = 1;
    return scalar__jsae_alloc(&t->js, t->ctx, t->max_tokens, t->model->cfg.n_embd,
                              t->model->cfg.d_mlp, max_k, max_lat, scalar_ctx_n_threads(t->ctx),
                              fn);
}

scalar_status scalar_sae_trainer_add_jacobian(scalar_sae_trainer *t, int32_t sae_in,
                                              int32_t sae_out, int32_t path, int32_t layer,
                                              float lambda, int32_t mode)
{
    static const char fn[] = "scalar_sae_trainer_add_jacobian";
    if (!t)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer is NULL", fn);
    TRY(check_pair(t, sae_in, sae_out, path, layer, lambda, mode, fn));
    TRY(jsae_scratch(t, fn));
    train_pair *grown = scalar__alloc(t->ctx, (size_t)(t->n_pairs + 1) * sizeof *grown, fn);
    if (!grown)
        return SCALAR_E_NOMEM;
    if (t->n_pairs)
        memcpy(grown, t->pairs, (size_t)t->n_pairs * sizeof *grown);
    scalar__free(t->ctx, t->pairs);
    t->pairs = grown;
    train_pair *p = &t->pairs[t->n_pairs];
    memset(p, 0, sizeof *p);
    p->in = sae_in, p->out = sae_out, p->path = path, p->layer = layer, p->mode = mode;
    p->lambda = lambda;
    int64_t C = t->model->cfg.n_embd;
    int64_t kin = t->groups[t->sae_group[sae_in]].g->k;
    int64_t kout = t->groups[t->sae_group[sae_out]].g->k;
    p->idx_in = scalar__calloc(t->ctx, (size_t)(t->max_tokens * kin), sizeof(int32_t), fn);
    p->idx_out = scalar__calloc(t->ctx, (size_t)(t->max_tokens * kout), sizeof(int32_t), fn);
    int64_t n_out = t->groups[t->sae_group[sae_out]].g->sizes[t->sae_member[sae_out]];
    p->WeT = scalar__alloc(t->ctx, (size_t)(n_out * C) * sizeof(float), fn);
    if (!p->idx_in || !p->idx_out || !p->WeT) {
        scalar__free(t->ctx, p->idx_in);
        scalar__free(t->ctx, p->idx_out);
        scalar__free(t->ctx, p->WeT);
        return SCALAR_E_NOMEM;
    }
    t->keep_idx[sae_in] = p->idx_in;
    t->keep_idx[sae_out] = p->idx_out;
    t->n_pairs++;
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_jacobian_penalties(const scalar_sae_trainer *t, float *out)
{
    if (!t || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_sae_trainer_jacobian_penalties: "
                                 "trainer or out is NULL");
    for (int32_t p = 0; p < t->n_pairs; p++)
        out[p] = t->pairs[p].penalty;
    return SCALAR_OK;
}

int32_t scalar_sae_trainer_n_jacobians(const scalar_sae_trainer *t)
{
    return t ? t->n_pairs : 0;
}

/* ---- gradients and optimizer state ---- */

scalar_status scalar_sae_trainer_read_grad(const scalar_sae_trainer *t, int32_t group,
                                           const char *name, float *out, size_t capacity)
{
    static const char fn[] = "scalar_sae_trainer_read_grad";
    if (!t || !name || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer, name or out is NULL", fn);
    if (group < 0 || group >= t->n_groups)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: group %d not in 0..%d", fn,
                                 (int)group, (int)t->n_groups - 1);
    if (!t->have_grad)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no gradient yet (compute or step "
                                 "first)", fn);
    const train_group *tg = &t->groups[group];
    int64_t n, shape[2];
    int32_t ndim;
    int64_t off = scalar__group_tensor(tg->g, name, &n, shape, &ndim);
    if (off < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the group has no tensor \"%s\"", fn,
                                 name);
    if (capacity < (size_t)n)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: \"%s\" has %lld floats, capacity %zu", fn,
                                 name, (long long)n, capacity);
    memcpy(out, tg->grad + off, (size_t)n * sizeof *out);
    return SCALAR_OK;
}

scalar_status scalar_sae_trainer_save(const scalar_sae_trainer *t, const char *path)
{
    static const char fn[] = "scalar_sae_trainer_save";
    if (!t || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or path is NULL", fn);
    scalar_safetensors_writer *w = NULL;
    TRY(scalar_safetensors_writer_create(&w, t->ctx));
    int64_t one = 1, step = t->step;
    char name[48];
    scalar_status s = scalar_safetensors_writer_set_metadata(w, "format", "scalar-sae-adam-1");
    for (int32_t i = 0; s == SCALAR_OK && i < t->n_groups; i++) {
        int64_t n = t->groups[i].g->n_params;
        snprintf(name, sizeof name, "group.%d.adam.m", (int)i);
        s = scalar_safetensors_writer_add(w, name, SCALAR_DTYPE_F32, &n, 1, t->groups[i].m,
                                          (size_t)n * sizeof(float));
        snprintf(name, sizeof name, "group.%d.adam.v", (int)i);
        if (s == SCALAR_OK)
            s = scalar_safetensors_writer_add(w, name, SCALAR_DTYPE_F32, &n, 1, t->groups[i].v,
                                              (size_t)n * sizeof(float));
    }
    if (s == SCALAR_OK)
        s = scalar_safetensors_writer_add(w, "adam.step", SCALAR_DTYPE_I64, &one, 1, &step,
                                          sizeof step);
    if (s == SCALAR_OK)
        s = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    return s;
}

scalar_status scalar_sae_trainer_load(scalar_sae_trainer *t, const char *path)
{
    static const char fn[] = "scalar_sae_trainer_load";
    if (!t || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or path is NULL", fn);
    scalar_safetensors *st = NULL;
    TRY(scalar_safetensors_open(&st, t->ctx, path));
    size_t count = scalar_safetensors_count(st), is = 0;
    char name[48];
    scalar_status s = count == (size_t)(2 * t->n_groups + 1)
                          ? SCALAR_OK
                          : scalar__error_set(SCALAR_E_FORMAT, "%s: %zu tensors, the trainer's "
                                              "%d groups need %d", path, count, (int)t->n_groups,
                                              (int)(2 * t->n_groups + 1));
    /* check everything before touching the live state */
    for (int32_t i = 0; s == SCALAR_OK && i < t->n_groups; i++) {
        size_t im, iv;
        uint64_t n = (uint64_t)t->groups[i].g->n_params;
        snprintf(name, sizeof name, "group.%d.adam.m", (int)i);
        s = scalar__safetensors_find_1d(st, name, SCALAR_DTYPE_F32, n, path, &im);
        snprintf(name, sizeof name, "group.%d.adam.v", (int)i);
        if (s == SCALAR_OK)
            s = scalar__safetensors_find_1d(st, name, SCALAR_DTYPE_F32, n, path, &iv);
    }
    if (s == SCALAR_OK)
        s = scalar__safetensors_find_1d(st, "adam.step", SCALAR_DTYPE_I64, 1, path, &is);
    int64_t step = -1;
    const void *data = NULL;
    size_t bytes = 0;
    if (s == SCALAR_OK)
        s = scalar_safetensors_data(&data, &bytes, st, is);
    if (s == SCALAR_OK) {
        memcpy(&step, data, sizeof step);
        if (step < 0)
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: adam.step is negative", path);
    }
    for (int32_t i = 0; s == SCALAR_OK && i < t->n_groups; i++) {
        size_t im, iv;
        size_t n = (size_t)t->groups[i].g->n_params;
        snprintf(name, sizeof name, "group.%d.adam.m", (int)i);
        scalar_safetensors_find(&im, st, name);
        snprintf(name, sizeof name, "group.%d.adam.v", (int)i);
        scalar_safetensors_find(&iv, st, name);
        s = scalar_safetensors_read_f32(t->groups[i].m, n, st, im);
        if (s == SCALAR_OK)
            s = scalar_safetensors_read_f32(t->groups[i].v, n, st, iv);
    }
    if (s == SCALAR_OK)
        t->step = step;
    scalar_safetensors_free(st);
    return s;
}
