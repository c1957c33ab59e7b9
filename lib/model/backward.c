/*
 * backward.c - reverse mode through the transformer.
 *
 * One walk from a start point down to the embeddings: d_res holds the
 * gradient of the residual stream at the current point.  Parameter gradients
 * accumulate into the workspace; hook points capture their gradient on the
 * way.  A replaced or edited point (and the point a forward_from started at)
 * is a constant: its gradient is captured and the walk stops there.
 * Shapes: BT rows, C = n_embd, F = d_mlp, V = vocab.
 */
#include <string.h>

#include "model_internal.h"

#define TRY SCALAR_TRY

/* Returned internally when the walk reaches a constant point. */
#define STOPPED 1

typedef struct walk {
    scalar_model_workspace *ws;
    const scalar_model *m;
    scalar_backend *be;
    int64_t B, T, BT, C, F, V;
    int32_t stop_layer, stop_stage; /* the forward's start point, (-1, -1) if none */
    int grads;                      /* 0: input gradients only (no parameter gradients) */
} walk;

static int is_edited(const walk *w, int32_t layer, int32_t kind)
{
    const scalar__hook *h = &w->ws->hooks[layer * SCALAR_HOOK_KIND_COUNT + kind];
    return h->replacement || h->fn;
}

/* Capture the gradient at a point; STOPPED if the walk ends there. */
static scalar_status visit(const walk *w, int32_t layer, int32_t kind, const float *grad)
{
    const scalar__hook *h = &w->ws->hooks[layer * SCALAR_HOOK_KIND_COUNT + kind];
    if (h->grad_capture) {
        size_t bytes = (size_t)(w->BT * w->C) * sizeof(float);
        if (grad)
            TRY(scalar_backend_download(w->be, h->grad_capture, grad, bytes));
        else
            memset(h->grad_capture, 0, bytes);
    }
    int32_t sl = layer, ss = scalar__hook_stage(kind);
    if (kind == SCALAR_HOOK_RESID_POST) {
        sl = layer + 1;
        ss = 0;
    }
    if (sl == w->stop_layer && ss == w->stop_stage)
        return STOPPED;
    return is_edited(w, layer, kind) ? STOPPED : SCALAR_OK;
}

/* resid_pre(layer + 1) is the same tensor as resid_post(layer): visit both. */
static scalar_status visit_post(const walk *w, int32_t layer, const float *grad)
{
    if (layer + 1 < w->m->cfg.n_layer) {
        scalar_status st = visit(w, layer + 1, SCALAR_HOOK_RESID_PRE, grad);
        if (st != SCALAR_OK)
            return st;
    }
    return visit(w, layer, SCALAR_HOOK_RESID_POST, grad);
}

/* x^T dy accumulated into dW [n_in, n_out], and column sums of dy into db. */
static scalar_status linear_weight_grad(const walk *w, float *dW, float *db, const float *x,
                                        const float *dy, int64_t n_in, int64_t n_out)
{
    if (!w->grads)
        return SCALAR_OK;
    TRY(scalar_backend_sgemm(w->be, SCALAR_TRANS, SCALAR_NO_TRANS, n_in, n_out, w->BT, 1.0f, x,
                             n_in, dy, n_out, 1.0f, dW, n_out));
    return scalar_backend_sum_rows(w->be, db, dy, w->BT, n_out);
}

/* dx [BT, n_in] = dy [BT, n_out] W^T, W [n_in, n_out]. */
static scalar_status linear_input_grad(const walk *w, float *dx, const float *dy, const float *W,
                                       int64_t n_in, int64_t n_out)
{
    return scalar_backend_sgemm(w->be, SCALAR_NO_TRANS, SCALAR_TRANS, w->BT, n_in, n_out, 1.0f, dy,
                                n_out, W, n_out, 0.0f, dx, n_in);
}

/* The MLP of layer i backward: d_mlp_out -> ws->d_c = d(mlp_in). */
static scalar_status mlp_backward(const walk *w, int32_t i, const float *d_out)
{
    scalar_model_workspace *ws = w->ws;
    const scalar__layer_weights *p = &w->m->w.layer[i];
    scalar__layer_weights *g = &ws->g.layer[i];
    const scalar__layer_acts *a = &ws->acts[i];
    TRY(linear_input_grad(w, ws->d_f2, d_out, p->mlp_proj_w, w->F, w->C));
    TRY(linear_weight_grad(w, g->mlp_proj_w, g->mlp_proj_b, a->fch_gelu, d_out, w->F, w->C));
    memset(ws->d_f, 0, (size_t)(w->BT * w->F) * sizeof(float));
    TRY(scalar_backend_gelu_backward(w->be, ws->d_f, a->fch, ws->d_f2, w->BT * w->F));
    TRY(linear_weight_grad(w, g->fc_w, g->fc_b, a->ln2, ws->d_f, w->C, w->F));
    return linear_input_grad(w, ws->d_c, ws->d_f, p->fc_w, w->C, w->F);
}

/* The attention half of layer i backward: d_res = d(resid_mid) -> d(resid_pre). */
static scalar_status attn_backward(const walk *w, int32_t i)
{
    scalar_model_workspace *ws = w->ws;
    const scalar__layer_weights *p = &w->m->w.layer[i];
    scalar__layer_weights *g = &ws->g.layer[i];
    const scalar__layer_acts *a = &ws->acts[i];
    int64_t C = w->C;
    TRY(linear_input_grad(w, ws->d_c, ws->d_res, p->attn_proj_w, C, C));
    TRY(linear_weight_grad(w, g->attn_proj_w, g->attn_proj_b, a->atty, ws->d_res, C, C));
    memset(ws->d_qkv, 0, (size_t)(w->BT * 3 * C) * sizeof(float));
    TRY(scalar_backend_attention_backward(w->be, ws->d_qkv, ws->d_c, a->qkv, a->att, w->B, w->T, C,
                                          w->m->cfg.n_head));
    TRY(linear_weight_grad(w, g->qkv_w, g->qkv_b, a->ln1, ws->d_qkv, C, 3 * C));
    TRY(linear_input_grad(w, ws->d_c, ws->d_qkv, p->qkv_w, C, 3 * C));
    return scalar_backend_layernorm_backward(w->be, ws->d_res, w->grads ? g->ln1_w : NULL,
                                             w->grads ? g->ln1_b : NULL, ws->d_c,
                                             scalar__ws_hook_buffer(ws, i, SCALAR_HOOK_RESID_PRE),
                                             p->ln1_w, a->ln1_mean, a->ln1_rstd, w->BT, C);
}

/*
 * Walk layers top..0.  entry: 4 = d_res is d(resid_post(top)); 3 = d_c2 is
 * d(mlp_out(top)) and d_res is zero; 2 = d_c is d(mlp_in(top)), d_res zero;
 * 1 = d_res is d(resid_mid(top)); 0 = d_res is d(resid_pre(top)).
 */
static scalar_status walk_layers(const walk *w, int32_t top, int entry)
{
    scalar_model_workspace *ws = w->ws;
    for (int32_t i = top; i >= 0; i--) {
        int s = i == top ? entry : 4;
        const scalar__layer_acts *a = &ws->acts[i];
        const scalar__layer_weights *p = &w->m->w.layer[i];
        scalar__layer_weights *g = &ws->g.layer[i];
        int have_d_mlp_in = 0;
        if (s >= 4)
            TRY(visit_post(w, i, ws->d_res));
        if (s >= 3) {
            const float *d_out = s == 3 ? ws->d_c2 : ws->d_res;
            TRY(visit(w, i, SCALAR_HOOK_MLP_OUT, d_out));
            if (!is_edited(w, i, SCALAR_HOOK_MLP_OUT)) {
                TRY(mlp_backward(w, i, d_out));
                have_d_mlp_in = 1;
            }
        }
        if (s >= 2) {
            have_d_mlp_in |= s == 2;
            TRY(visit(w, i, SCALAR_HOOK_MLP_IN, have_d_mlp_in ? ws->d_c : NULL));
            if (have_d_mlp_in && !is_edited(w, i, SCALAR_HOOK_MLP_IN))
                TRY(scalar_backend_layernorm_backward(w->be, ws->d_res, w->grads ? g->ln2_w : NULL,
                                                      w->grads ? g->ln2_b : NULL,
                                                      ws->d_c, a->resid_mid, p->ln2_w,
                                                      a->ln2_mean, a->ln2_rstd, w->BT, w->C));
        }
        if (s >= 1) {
            TRY(visit(w, i, SCALAR_HOOK_RESID_MID, ws->d_res));
            TRY(attn_backward(w, i));
        }
        if (i == 0)
            TRY(visit(w, 0, SCALAR_HOOK_RESID_PRE, ws->d_res));
        /* resid_pre(i > 0) is visited as resid_post(i - 1) on the next turn. */
    }
    return scalar_backend_embedding_backward(w->be, ws->g.wte, ws->g.wpe, ws->d_res, ws->ids, w->B,
                                             w->T, w->C, w->V, w->m->cfg.block_size);
}

static scalar_status begin(walk *w, const scalar_model *m, scalar_model_workspace *ws,
                           const char *fn)
{
    if (!m || !ws)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model or ws is NULL", fn);
    if (ws->model != m)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the workspace belongs to another model",
                                 fn);
    if (!ws->grad)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the workspace was made without SCALAR_WORKSPACE_GRAD", fn);
    if (!ws->have_forward)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no forward to go back through", fn);
    w->ws = ws;
    w->m = m;
    w->be = m->backend;
    w->B = ws->B;
    w->T = ws->T;
    w->BT = ws->B * ws->T;
    w->C = m->cfg.n_embd;
    w->F = m->cfg.d_mlp;
    w->V = m->cfg.vocab_size;
    w->stop_layer = -1;
    w->stop_stage = -1;
    w->grads = 1;
    if (ws->start_kind >= 0) {
        w->stop_layer = ws->start_layer;
        w->stop_stage = scalar__hook_stage(ws->start_kind);
        if (ws->start_kind == SCALAR_HOOK_RESID_POST) {
            w->stop_layer++;
            w->stop_stage = 0;
        }
    }
    return SCALAR_OK;
}

static scalar_status finish(scalar_status st)
{
    return st == STOPPED ? SCALAR_OK : st;
}

/* From ws->d_logits down. */
static scalar_status from_logits(const walk *w)
{
    scalar_model_workspace *ws = w->ws;
    const scalar__weights *p = &w->m->w;
    int32_t L = w->m->cfg.n_layer;
    TRY(scalar_backend_sgemm(w->be, SCALAR_TRANS, SCALAR_NO_TRANS, w->V, w->C, w->BT, 1.0f,
                             ws->d_logits, w->V, ws->lnf, w->C, 1.0f, ws->g.wte, w->C));
    TRY(scalar_backend_sgemm(w->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, w->BT, w->C, w->V, 1.0f,
                             ws->d_logits, w->V, p->wte, w->C, 0.0f, ws->d_c, w->C));
    memset(ws->d_res, 0, (size_t)(w->BT * w->C) * sizeof(float));
    TRY(scalar_backend_layernorm_backward(w->be, ws->d_res, ws->g.lnf_w, ws->g.lnf_b, ws->d_c,
                                          scalar__ws_hook_buffer(ws, L - 1,
                                                                 SCALAR_HOOK_RESID_POST),
                                          p->lnf_w, ws->lnf_mean, ws->lnf_rstd, w->BT, w->C));
    return walk_layers(w, L - 1, 4);
}

scalar_status scalar_model_backward(const scalar_model *model, scalar_model_workspace *ws)
{
    static const char fn[] = "scalar_model_backward";
    walk w;
    TRY(begin(&w, model, ws, fn));
    if (!ws->have_targets || ws->n_valid_targets == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the last forward had no targets (or all were ignored)", fn);
    float scale = 1.0f / (float)ws->n_valid_targets;
    for (int64_t i = 0; i < w.BT; i++)
        ws->d_losses[i] = scale;
    memset(ws->d_logits, 0, (size_t)(w.BT * w.V) * sizeof(float));
    TRY(scalar_backend_cross_entropy_backward(w.be, ws->d_logits, ws->logits, w.V, ws->targets,
                                              ws->d_losses, w.BT, w.V));
    return finish(from_logits(&w));
}

scalar_status scalar_model_backward_logits(const scalar_model *model, scalar_model_workspace *ws,
                                           const float *d_logits)
{
    static const char fn[] = "scalar_model_backward_logits";
    walk w;
    TRY(begin(&w, model, ws, fn));
    if (!d_logits)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: d_logits is NULL", fn);
    TRY(scalar_backend_upload(w.be, ws->d_logits, d_logits, (size_t)(w.BT * w.V) * sizeof(float)));
    return finish(from_logits(&w));
}

scalar_status scalar_model_backward_from(const scalar_model *model, scalar_model_workspace *ws,
                                         int32_t layer, int32_t kind, const float *d_act)
{
    static const char fn[] = "scalar_model_backward_from";
    walk w;
    TRY(begin(&w, model, ws, fn));
    if (layer < 0 || layer >= model->cfg.n_layer || kind < 0 || kind >= SCALAR_HOOK_KIND_COUNT)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: hook (layer %d, kind %d) out of range",
                                 fn, (int)layer, (int)kind);
    if (!d_act)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: d_act is NULL", fn);
    if (!scalar__ws_point_valid(ws, layer, kind))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: the last forward did not compute layer %d kind %d", fn,
                                 (int)layer, (int)kind);
    size_t bytes = (size_t)(w.BT * w.C) * sizeof(float);
    int entry;
    memset(ws->d_res, 0, bytes);
    switch (kind) {
    case SCALAR_HOOK_MLP_OUT:
        TRY(scalar_backend_upload(w.be, ws->d_c2, d_act, bytes));
        entry = 3;
        break;
    case SCALAR_HOOK_MLP_IN:
        TRY(scalar_backend_upload(w.be, ws->d_c, d_act, bytes));
        entry = 2;
        break;
    default:
        TRY(scalar_backend_upload(w.be, ws->d_res, d_act, bytes));
        entry = scalar__hook_stage(kind) == 4 ? 4 : scalar__hook_stage(kind);
        break;
    }
    if (entry == 0 && layer > 0) {
        /* resid_pre(layer) is resid_post(layer - 1): walk from there. */
        return finish(walk_layers(&w, layer - 1, 4));
    }
    return finish(walk_layers(&w, layer, entry));
}

scalar_status scalar__model_block_vjp(const scalar_model *model, scalar_model_workspace *ws,
                                     int32_t layer, const float *d_post, const float **d_pre)
{
    walk w;
    memset(&w, 0, sizeof w);
    w.ws = ws;
    w.m = model;
    w.be = model->backend;
    w.B = ws->B;
    w.T = ws->T;
    w.BT = ws->B * ws->T;
    w.C = model->cfg.n_embd;
    w.F = model->cfg.d_mlp;
    w.V = model->cfg.vocab_size;
    w.stop_layer = layer;
    w.stop_stage = 0;
    w.grads = 0;
    TRY(scalar_backend_upload(w.be, ws->d_res, d_post, (size_t)(w.BT * w.C) * sizeof(float)));
    scalar_status st = walk_layers(&w, layer, 4);
    if (st != STOPPED)
        return st == SCALAR_OK ? scalar__error_set(SCALAR_E_BACKEND, "block vjp did not stop")
                               : st;
    *d_pre = ws->d_res;
    return SCALAR_OK;
}
