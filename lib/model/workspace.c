/*
 * workspace.c - per-batch state of a model: activations, gradients, hooks.
 * Everything is carved out of one backend buffer allocated at creation, so
 * forward and backward allocate nothing.
 */
#include <string.h>

#include "model_internal.h"

/* Two passes over the same carving code: the first (base == NULL) sums the
 * sizes, the second hands out 64-byte aligned pointers. */
typedef struct carver {
    unsigned char *base;
    size_t used;
} carver;

static void *carve(carver *c, size_t count, size_t elem)
{
    size_t bytes = count * elem;
    size_t at = (c->used + SCALAR_ALIGNMENT - 1) & ~(size_t)(SCALAR_ALIGNMENT - 1);
    c->used = at + (bytes ? bytes : 1);
    return c->base ? c->base + at : NULL;
}

static void layout(scalar_model_workspace *ws, carver *c)
{
    const scalar_model_config *cfg = &ws->model->cfg;
    size_t BT = (size_t)(ws->max_B * ws->max_T), C = (size_t)cfg->n_embd;
    size_t F = (size_t)cfg->d_mlp, V = (size_t)cfg->vocab_size, L = (size_t)cfg->n_layer;
    size_t att = (size_t)ws->max_B * (size_t)cfg->n_head * (size_t)(ws->max_T * ws->max_T);
    ws->resid = carve(c, (L + 1) * BT * C, sizeof(float));
    for (size_t i = 0; i < L; i++) {
        scalar__layer_acts *a = &ws->acts[i];
        a->ln1 = carve(c, BT * C, sizeof(float));
        a->ln1_mean = carve(c, BT, sizeof(float));
        a->ln1_rstd = carve(c, BT, sizeof(float));
        a->qkv = carve(c, BT * 3 * C, sizeof(float));
        a->att = carve(c, att, sizeof(float));
        a->atty = carve(c, BT * C, sizeof(float));
        a->resid_mid = carve(c, BT * C, sizeof(float));
        a->ln2 = carve(c, BT * C, sizeof(float));
        a->ln2_mean = carve(c, BT, sizeof(float));
        a->ln2_rstd = carve(c, BT, sizeof(float));
        a->fch = carve(c, BT * F, sizeof(float));
        a->fch_gelu = carve(c, BT * F, sizeof(float));
        a->mlp_out = carve(c, BT * C, sizeof(float));
    }
    ws->lnf = carve(c, BT * C, sizeof(float));
    ws->lnf_mean = carve(c, BT, sizeof(float));
    ws->lnf_rstd = carve(c, BT, sizeof(float));
    ws->logits = carve(c, BT * V, sizeof(float));
    ws->losses = carve(c, BT, sizeof(float));
    ws->ids = carve(c, BT, sizeof(int32_t));
    ws->targets = carve(c, BT, sizeof(int32_t));
    if (ws->flags & SCALAR_WORKSPACE_GRAD) {
        ws->grad = carve(c, (size_t)ws->model->n_params, sizeof(float));
        ws->d_logits = carve(c, BT * V, sizeof(float));
        ws->d_losses = carve(c, BT, sizeof(float));
        ws->d_res = carve(c, BT * C, sizeof(float));
        ws->d_c = carve(c, BT * C, sizeof(float));
        ws->d_c2 = carve(c, BT * C, sizeof(float));
        ws->d_qkv = carve(c, BT * 3 * C, sizeof(float));
        ws->d_f = carve(c, BT * F, sizeof(float));
        ws->d_f2 = carve(c, BT * F, sizeof(float));
    }
}

/* Bytes the workspace needs, or 0 on overflow. */
static size_t arena_bytes(const scalar_model_workspace *ws)
{
    const scalar_model_config *cfg = &ws->model->cfg;
    /* Rough overflow guard before the exact layout: every term fits in 2^62. */
    uint64_t bt, att, widest;
    if (scalar__mul_overflow((uint64_t)ws->max_B, (uint64_t)ws->max_T, &bt) ||
        scalar__mul_overflow(bt, (uint64_t)ws->max_T * (uint64_t)cfg->n_head, &att) ||
        scalar__mul_overflow(bt, (uint64_t)(cfg->vocab_size + 8 * cfg->d_mlp + 20 * cfg->n_embd),
                             &widest) ||
        scalar__mul_overflow(widest + att, (uint64_t)cfg->n_layer + 2, &widest) ||
        widest > ((uint64_t)1 << 60) / sizeof(float))
        return 0;
    scalar_model_workspace probe = *ws;
    carver c = {NULL, 0};
    layout(&probe, &c);
    return c.used;
}

scalar_status scalar_model_workspace_create(scalar_model_workspace **out, scalar_model *model,
                                            int64_t max_batch, int64_t max_seq, int32_t flags)
{
    static const char fn[] = "scalar_model_workspace_create";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!model)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model is NULL", fn);
    if (max_batch < 1 || max_seq < 1 || max_seq > model->cfg.block_size)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: max_batch=%lld must be >= 1 and max_seq=%lld in [1, "
                                 "block_size=%d]", fn, (long long)max_batch, (long long)max_seq,
                                 (int)model->cfg.block_size);
    if (flags & ~SCALAR_WORKSPACE_GRAD)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown flags 0x%x", fn,
                                 (unsigned)flags);
    scalar_ctx *ctx = model->ctx;
    scalar_model_workspace *ws = scalar__calloc(ctx, 1, sizeof *ws, "model workspace");
    if (!ws)
        return SCALAR_E_NOMEM;
    ws->model = model;
    ws->max_B = max_batch;
    ws->max_T = max_seq;
    ws->flags = flags;
    size_t L = (size_t)model->cfg.n_layer;
    ws->acts = scalar__calloc(ctx, L, sizeof *ws->acts, "workspace layers");
    ws->hooks = scalar__calloc(ctx, L * SCALAR_HOOK_KIND_COUNT, sizeof *ws->hooks, "hooks");
    ws->g.layer = scalar__calloc(ctx, L, sizeof *ws->g.layer, "gradient views");
    scalar_status st = SCALAR_E_NOMEM;
    if (!ws->acts || !ws->hooks || !ws->g.layer)
        goto fail;
    ws->arena_size = arena_bytes(ws);
    if (!ws->arena_size) {
        st = scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a %lld x %lld workspace is too large",
                               fn, (long long)max_batch, (long long)max_seq);
        goto fail;
    }
    st = scalar_backend_buffer_alloc(&ws->arena, model->backend, ws->arena_size);
    if (st != SCALAR_OK)
        goto fail;
    carver c = {ws->arena, 0};
    layout(ws, &c);
    if (ws->grad) {
        scalar__model_views(model, ws->grad, &ws->g, ws->g.layer);
        memset(ws->grad, 0, (size_t)model->n_params * sizeof(float));
    }
    ws->start_kind = -1;
    scalar__model_retain(model);
    *out = ws;
    return SCALAR_OK;
fail:
    scalar__free(ctx, ws->acts);
    scalar__free(ctx, ws->hooks);
    scalar__free(ctx, ws->g.layer);
    scalar__free(ctx, ws);
    return st;
}

void scalar_model_workspace_free(scalar_model_workspace *ws)
{
    if (!ws)
        return;
    scalar_model *m = ws->model;
    scalar_ctx *ctx = m->ctx;
    scalar_backend_buffer_free(m->backend, ws->arena, ws->arena_size);
    scalar__free(ctx, ws->acts);
    scalar__free(ctx, ws->hooks);
    scalar__free(ctx, ws->g.layer);
    scalar__free(ctx, ws);
    scalar_model_free(m);
}

static scalar_status hook_slot(scalar_model_workspace *ws, int32_t layer, int32_t kind,
                               const char *fn, scalar__hook **out)
{
    if (!ws)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ws is NULL", fn);
    if (layer < 0 || layer >= ws->model->cfg.n_layer || kind < 0 ||
        kind >= SCALAR_HOOK_KIND_COUNT)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: hook (layer %d, kind %d) out of range (%d layers, %d kinds)",
                                 fn, (int)layer, (int)kind, (int)ws->model->cfg.n_layer,
                                 SCALAR_HOOK_KIND_COUNT);
    *out = &ws->hooks[layer * SCALAR_HOOK_KIND_COUNT + kind];
    return SCALAR_OK;
}

scalar_status scalar_model_workspace_set_hook(scalar_model_workspace *ws, int32_t layer,
                                              int32_t kind, scalar_model_hook_fn fn, void *user)
{
    scalar__hook *h = NULL;
    scalar_status st = hook_slot(ws, layer, kind, "scalar_model_workspace_set_hook", &h);
    if (st == SCALAR_OK) {
        h->fn = fn;
        h->user = fn ? user : NULL;
    }
    return st;
}

scalar_status scalar_model_workspace_set_replacement(scalar_model_workspace *ws, int32_t layer,
                                                     int32_t kind, const float *values)
{
    scalar__hook *h = NULL;
    scalar_status st = hook_slot(ws, layer, kind, "scalar_model_workspace_set_replacement", &h);
    if (st == SCALAR_OK)
        h->replacement = values;
    return st;
}

scalar_status scalar_model_workspace_set_grad_capture(scalar_model_workspace *ws, int32_t layer,
                                                      int32_t kind, float *out)
{
    static const char fn[] = "scalar_model_workspace_set_grad_capture";
    scalar__hook *h = NULL;
    scalar_status st = hook_slot(ws, layer, kind, fn, &h);
    if (st != SCALAR_OK)
        return st;
    if (out && !(ws->flags & SCALAR_WORKSPACE_GRAD))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the workspace was made without SCALAR_WORKSPACE_GRAD", fn);
    h->grad_capture = out;
    return SCALAR_OK;
}

void scalar_model_workspace_clear_hooks(scalar_model_workspace *ws)
{
    if (ws)
        memset(ws->hooks, 0,
               (size_t)ws->model->cfg.n_layer * SCALAR_HOOK_KIND_COUNT * sizeof *ws->hooks);
}

/* The activation buffer of a hook point. */
float *scalar__ws_hook_buffer(const scalar_model_workspace *ws, int32_t layer, int32_t kind)
{
    size_t BTC = (size_t)(ws->max_B * ws->max_T) * (size_t)ws->model->cfg.n_embd;
    const scalar__layer_acts *a = &ws->acts[layer];
    switch (kind) {
    case SCALAR_HOOK_RESID_PRE: return ws->resid + (size_t)layer * BTC;
    case SCALAR_HOOK_RESID_MID: return a->resid_mid;
    case SCALAR_HOOK_MLP_IN: return a->ln2;
    case SCALAR_HOOK_MLP_OUT: return a->mlp_out;
    default: return ws->resid + (size_t)(layer + 1) * BTC;
    }
}

/* 1 if the last forward computed (or was given) the point. */
int scalar__ws_point_valid(const scalar_model_workspace *ws, int32_t layer, int32_t kind)
{
    if (!ws->have_forward)
        return 0;
    if (ws->start_kind < 0 || layer > ws->start_layer)
        return 1;
    if (layer < ws->start_layer)
        return 0;
    return scalar__hook_stage(kind) >= scalar__hook_stage(ws->start_kind);
}

scalar_status scalar_model_workspace_read(const scalar_model_workspace *ws, int32_t layer,
                                          int32_t kind, float *out, size_t capacity)
{
    static const char fn[] = "scalar_model_workspace_read";
    scalar__hook *unused = NULL;
    scalar_status st = hook_slot((scalar_model_workspace *)ws, layer, kind, fn, &unused);
    if (st != SCALAR_OK)
        return st;
    if (!scalar__ws_point_valid(ws, layer, kind))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the last forward did not compute layer %d kind %d", fn,
                                 (int)layer, (int)kind);
    size_t n = (size_t)(ws->B * ws->T) * (size_t)ws->model->cfg.n_embd;
    if (!out || capacity < n)
        return scalar__error_set(out ? SCALAR_E_BUFSIZE : SCALAR_E_INVALID_ARG,
                                 "%s: needs %zu floats, has %zu", fn, n, out ? capacity : 0);
    return scalar_backend_download(ws->model->backend, out, scalar__ws_hook_buffer(ws, layer, kind),
                                   n * sizeof(float));
}

scalar_status scalar_model_workspace_read_grad(const scalar_model_workspace *ws, const char *name,
                                               float *out, size_t capacity)
{
    static const char fn[] = "scalar_model_workspace_read_grad";
    if (!ws || !name)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ws or name is NULL", fn);
    if (!ws->grad)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the workspace was made without SCALAR_WORKSPACE_GRAD", fn);
    int32_t i = scalar__model_find_param(ws->model, name);
    if (i < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no parameter \"%s\"", fn, name);
    const scalar__param *p = &ws->model->params[i];
    size_t n = (size_t)(p->rows * p->cols);
    if (!out || capacity < n)
        return scalar__error_set(out ? SCALAR_E_BUFSIZE : SCALAR_E_INVALID_ARG,
                                 "%s: \"%s\" has %zu values, the buffer %zu", fn, name, n,
                                 out ? capacity : 0);
    return scalar_backend_download(ws->model->backend, out, ws->grad + p->offset,
                                   n * sizeof(float));
}

scalar_status scalar_model_workspace_zero_grad(scalar_model_workspace *ws)
{
    if (!ws || !ws->grad)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_model_workspace_zero_grad: %s",
                                 ws ? "no gradients (SCALAR_WORKSPACE_GRAD)" : "ws is NULL");
    memset(ws->grad, 0, (size_t)ws->model->n_params * sizeof(float));
    return SCALAR_OK;
}
