/*
 * forward.c - the transformer's forward pass with hook points, loss, and
 * sampling.  Shapes: BT = B*T rows, C = n_embd, F = d_mlp, V = vocab, H = heads.
 */
#include <math.h>
#include <string.h>

#include "model_internal.h"

#define TRY SCALAR_TRY

/* y[BT, n_out] = x[BT, n_in] W[n_in, n_out] + b[n_out]  (Conv1D layout) */
static scalar_status linear(scalar_backend *be, float *y, const float *x, const float *w,
                            const float *b, int64_t BT, int64_t n_in, int64_t n_out)
{
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, BT, n_out, n_in, 1.0f, x, n_in,
                             w, n_out, 0.0f, y, n_out));
    return scalar_backend_bias_add(be, y, b, BT, n_out);
}

/* Replacement, then callback, at one hook point. */
static scalar_status run_hook(scalar_model_workspace *ws, int32_t layer, int32_t kind, float *act,
                              int64_t BT)
{
    const scalar__hook *h = &ws->hooks[layer * SCALAR_HOOK_KIND_COUNT + kind];
    int64_t C = ws->model->cfg.n_embd;
    if (h->replacement)
        TRY(scalar_backend_upload(ws->model->backend, act, h->replacement,
                                  (size_t)(BT * C) * sizeof(float)));
    if (h->fn) {
        scalar_status st = h->fn(h->user, layer, kind, act, BT, C);
        if (st != SCALAR_OK) {
            if (st > 0)
                st = SCALAR_E_INVALID_ARG;
            return st;
        }
    }
    return SCALAR_OK;
}

/* The attention half of layer i: resid[i] -> resid_mid. */
static scalar_status attn_block(scalar_model_workspace *ws, int32_t i, int64_t B, int64_t T)
{
    const scalar_model *m = ws->model;
    scalar_backend *be = m->backend;
    const scalar__layer_weights *w = &m->w.layer[i];
    scalar__layer_acts *a = &ws->acts[i];
    int64_t BT = B * T, C = m->cfg.n_embd;
    const float *x = scalar__ws_hook_buffer(ws, i, SCALAR_HOOK_RESID_PRE);
    TRY(scalar_backend_layernorm_forward(be, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w,
                                         w->ln1_b, BT, C, m->cfg.layer_norm_eps));
    TRY(linear(be, a->qkv, a->ln1, w->qkv_w, w->qkv_b, BT, C, 3 * C));
    TRY(scalar_backend_attention_forward(be, a->atty, a->att, a->qkv, B, T, C, m->cfg.n_head));
    TRY(linear(be, a->resid_mid, a->atty, w->attn_proj_w, w->attn_proj_b, BT, C, C));
    return scalar_backend_add(be, a->resid_mid, a->resid_mid, x, BT * C);
}

/* ln_2 of layer i: resid_mid -> mlp_in. */
static scalar_status mlp_norm(scalar_model_workspace *ws, int32_t i, int64_t BT)
{
    const scalar_model *m = ws->model;
    scalar__layer_acts *a = &ws->acts[i];
    const scalar__layer_weights *w = &m->w.layer[i];
    return scalar_backend_layernorm_forward(m->backend, a->ln2, a->ln2_mean, a->ln2_rstd,
                                            a->resid_mid, w->ln2_w, w->ln2_b, BT, m->cfg.n_embd,
                                            m->cfg.layer_norm_eps);
}

/* The MLP of layer i: mlp_in -> mlp_out. */
static scalar_status mlp(scalar_model_workspace *ws, int32_t i, int64_t BT)
{
    const scalar_model *m = ws->model;
    scalar_backend *be = m->backend;
    scalar__layer_acts *a = &ws->acts[i];
    const scalar__layer_weights *w = &m->w.layer[i];
    int64_t C = m->cfg.n_embd, F = m->cfg.d_mlp;
    TRY(linear(be, a->fch, a->ln2, w->fc_w, w->fc_b, BT, C, F));
    TRY(scalar_backend_gelu_forward(be, a->fch_gelu, a->fch, BT * F));
    return linear(be, a->mlp_out, a->fch_gelu, w->mlp_proj_w, w->mlp_proj_b, BT, F, C);
}

/* Run from stage `stage` (scalar__hook_stage order) of layer `first` through
 * layer end - 1, then (with `logits`, and end = n_layer) ln_f and the logits;
 * the point at (first, stage) is already in place and its hooks are not run. */
static scalar_status run_from(scalar_model_workspace *ws, int32_t first, int stage, int64_t B,
                              int64_t T, int32_t end, int logits)
{
    const scalar_model *m = ws->model;
    scalar_backend *be = m->backend;
    int64_t BT = B * T, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    for (int32_t i = first; i < end; i++) {
        scalar__layer_acts *a = &ws->acts[i];
        int s = i == first ? stage : 0;
        if (s <= 0) {
            if (i > first || stage < 0)
                TRY(run_hook(ws, i, SCALAR_HOOK_RESID_PRE, scalar__ws_hook_buffer(ws, i, 0), BT));
            TRY(attn_block(ws, i, B, T));
            TRY(run_hook(ws, i, SCALAR_HOOK_RESID_MID, a->resid_mid, BT));
        }
        if (s <= 1) {
            TRY(mlp_norm(ws, i, BT));
            TRY(run_hook(ws, i, SCALAR_HOOK_MLP_IN, a->ln2, BT));
        }
        if (s <= 2) {
            TRY(mlp(ws, i, BT));
            TRY(run_hook(ws, i, SCALAR_HOOK_MLP_OUT, a->mlp_out, BT));
        }
        if (s <= 3) {
            float *post = scalar__ws_hook_buffer(ws, i, SCALAR_HOOK_RESID_POST);
            TRY(scalar_backend_add(be, post, a->resid_mid, a->mlp_out, BT * C));
            TRY(run_hook(ws, i, SCALAR_HOOK_RESID_POST, post, BT));
        }
    }
    if (!logits || end < m->cfg.n_layer)
        return SCALAR_OK;
    const scalar__weights *w = &m->w;
    TRY(scalar_backend_layernorm_forward(be, ws->lnf, ws->lnf_mean, ws->lnf_rstd,
                                         ws->resid + (size_t)m->cfg.n_layer * (size_t)(ws->max_B *
                                                     ws->max_T) * (size_t)C,
                                         w->lnf_w, w->lnf_b, BT, C, m->cfg.layer_norm_eps));
    return scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_TRANS, BT, V, C, 1.0f, ws->lnf, C,
                                w->wte, C, 0.0f, ws->logits, V);
}

static scalar_status check_batch(const scalar_model *m, const scalar_model_workspace *ws,
                                 int64_t B, int64_t T, const char *fn)
{
    if (!m || !ws)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model or ws is NULL", fn);
    if (ws->model != m)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the workspace belongs to another model",
                                 fn);
    if (B < 1 || B > ws->max_B || T < 1 || T > ws->max_T)
        return scalar__error_set(SCALAR_E_SHAPE,
                                 "%s: batch %lld x %lld outside the workspace's 1..%lld x 1..%lld",
                                 fn, (long long)B, (long long)T, (long long)ws->max_B,
                                 (long long)ws->max_T);
    return SCALAR_OK;
}

/* Copy targets, check them, count the ones not ignored. */
static scalar_status take_targets(scalar_model_workspace *ws, const int32_t *targets, int64_t BT,
                                  const char *fn)
{
    int32_t V = ws->model->cfg.vocab_size;
    ws->have_targets = 0;
    ws->n_valid_targets = 0;
    if (!targets)
        return SCALAR_OK;
    for (int64_t i = 0; i < BT; i++) {
        if (targets[i] >= V)
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: targets[%lld]=%d >= vocab_size=%d", fn, (long long)i,
                                     (int)targets[i], (int)V);
        ws->n_valid_targets += targets[i] >= 0;
    }
    memcpy(ws->targets, targets, (size_t)BT * sizeof *targets);
    ws->have_targets = 1;
    return SCALAR_OK;
}

/* Logits copy-out and mean loss after a successful run. */
static scalar_status finish(scalar_model_workspace *ws, int64_t BT, float *logits, float *loss,
                            const char *fn)
{
    const scalar_model *m = ws->model;
    int64_t V = m->cfg.vocab_size;
    if (logits)
        TRY(scalar_backend_download(m->backend, logits, ws->logits,
                                    (size_t)(BT * V) * sizeof(float)));
    if (!ws->have_targets)
        return SCALAR_OK;
    TRY(scalar_backend_cross_entropy_forward(m->backend, ws->losses, ws->logits, V, ws->targets,
                                             BT, V));
    if (loss) {
        if (ws->n_valid_targets == 0)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: every target is ignored (< 0)",
                                     fn);
        double sum = 0.0;
        for (int64_t i = 0; i < BT; i++)
            sum += ws->losses[i];
        *loss = (float)(sum / (double)ws->n_valid_targets);
    }
    return SCALAR_OK;
}

scalar_status scalar_model_forward(const scalar_model *model, scalar_model_workspace *ws,
                                   const int32_t *ids, const int32_t *targets, int64_t B,
                                   int64_t T, float *logits, float *loss)
{
    static const char fn[] = "scalar_model_forward";
    TRY(check_batch(model, ws, B, T, fn));
    if (!ids)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ids is NULL", fn);
    if (loss && !targets)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a loss needs targets", fn);
    int64_t BT = B * T;
    ws->have_forward = 0;
    TRY(take_targets(ws, targets, BT, fn));
    memcpy(ws->ids, ids, (size_t)BT * sizeof *ids);
    TRY(scalar_backend_embedding_forward(model->backend, ws->resid, ids, model->w.wte,
                                         model->w.wpe, B, T, model->cfg.n_embd,
                                         model->cfg.vocab_size, model->cfg.block_size));
    ws->B = B;
    ws->T = T;
    ws->start_layer = 0;
    ws->start_kind = -1;
    ws->mid_valid_from = model->cfg.n_layer; /* nothing valid until the run succeeds */
    TRY(run_from(ws, 0, -1, B, T, model->cfg.n_layer, 1));
    ws->mid_valid_from = 0;
    ws->have_forward = 1;
    return finish(ws, BT, logits, loss, fn);
}

scalar_status scalar__model_forward_acts(const scalar_model *model, scalar_model_workspace *ws,
                                         const int32_t *ids, int64_t B, int64_t T, int32_t end)
{
    static const char fn[] = "scalar_model_forward";
    TRY(check_batch(model, ws, B, T, fn));
    if (end < 1 || end > model->cfg.n_layer)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %d layers of %d", fn, (int)end,
                                 (int)model->cfg.n_layer);
    ws->have_forward = 0; /* no logits: the workspace does not claim a forward */
    ws->have_targets = 0;
    TRY(scalar_backend_embedding_forward(model->backend, ws->resid, ids, model->w.wte,
                                         model->w.wpe, B, T, model->cfg.n_embd,
                                         model->cfg.vocab_size, model->cfg.block_size));
    ws->B = B;
    ws->T = T;
    ws->mid_valid_from = model->cfg.n_layer;
    return run_from(ws, 0, -1, B, T, end, 0);
}

scalar_status scalar__model_block_forward(const scalar_model *model, scalar_model_workspace *ws,
                                         int32_t layer, const float *x, int64_t B, int64_t T,
                                         const float **y)
{
    static const char fn[] = "scalar__model_block_forward";
    TRY(check_batch(model, ws, B, T, fn));
    ws->have_forward = 0;
    ws->have_targets = 0;
    TRY(scalar_backend_upload(model->backend, scalar__ws_hook_buffer(ws, layer, SCALAR_HOOK_RESID_PRE),
                              x, (size_t)(B * T * model->cfg.n_embd) * sizeof(float)));
    ws->B = B;
    ws->T = T;
    ws->start_layer = layer;
    ws->start_kind = SCALAR_HOOK_RESID_PRE;
    ws->mid_valid_from = model->cfg.n_layer;
    TRY(run_from(ws, layer, 0, B, T, layer + 1, 0));
    *y = scalar__ws_hook_buffer(ws, layer, SCALAR_HOOK_RESID_POST);
    return SCALAR_OK;
}

scalar_status scalar_model_forward_from(const scalar_model *model, scalar_model_workspace *ws,
                                        int32_t layer, int32_t kind, const float *act,
                                        const int32_t *targets, int64_t B, int64_t T,
                                        float *logits, float *loss)
{
    static const char fn[] = "scalar_model_forward_from";
    TRY(check_batch(model, ws, B, T, fn));
    if (layer < 0 || layer >= model->cfg.n_layer || kind < 0 || kind >= SCALAR_HOOK_KIND_COUNT)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: hook (layer %d, kind %d) out of range",
                                 fn, (int)layer, (int)kind);
    if (!act)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: act is NULL", fn);
    if (loss && !targets)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a loss needs targets", fn);
    int needs_mid = kind == SCALAR_HOOK_MLP_IN || kind == SCALAR_HOOK_MLP_OUT;
    if (needs_mid && !(ws->have_forward && ws->B == B && ws->T == T && ws->mid_valid_from <= layer))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: starting at %s of layer %d needs resid_mid of the same "
                                 "%lld x %lld batch from an earlier forward in this workspace",
                                 fn, kind == SCALAR_HOOK_MLP_IN ? "mlp_in" : "mlp_out", (int)layer,
                                 (long long)B, (long long)T);
    int64_t BT = B * T, C = model->cfg.n_embd;
    int was_mid_valid = needs_mid ? 1 : 0;
    ws->have_forward = 0;
    TRY(take_targets(ws, targets, BT, fn));
    TRY(scalar_backend_upload(model->backend, scalar__ws_hook_buffer(ws, layer, kind), act,
                              (size_t)(BT * C) * sizeof(float)));
    ws->B = B;
    ws->T = T;
    ws->start_layer = layer;
    ws->start_kind = kind;
    int32_t keep_mid = ws->mid_valid_from;
    ws->mid_valid_from = model->cfg.n_layer;
    scalar_status st;
    if (kind == SCALAR_HOOK_RESID_POST)
        st = run_from(ws, layer + 1, 0, B, T, model->cfg.n_layer, 1);
    else
        st = run_from(ws, layer, scalar__hook_stage(kind), B, T, model->cfg.n_layer, 1);
    if (st != SCALAR_OK)
        return st;
    if (was_mid_valid)
        ws->mid_valid_from = keep_mid;
    else
        ws->mid_valid_from = kind == SCALAR_HOOK_RESID_POST ? layer + 1 : layer;
    ws->have_forward = 1;
    return finish(ws, BT, logits, loss, fn);
}

/* ---- sampling ---- */

static int32_t sample_row(const float *logits, int64_t V, float temperature, scalar__rng *rng)
{
    int32_t best = 0;
    for (int64_t j = 1; j < V; j++)
        if (logits[j] > logits[best])
            best = (int32_t)j;
    if (temperature <= 0.0f)
        return best;
    double max = logits[best], total = 0.0;
    for (int64_t j = 0; j < V; j++)
        total += exp(((double)logits[j] - max) / temperature);
    double u = (double)scalar__rng_uniform(rng) * total, acc = 0.0;
    for (int64_t j = 0; j < V; j++) {
        acc += exp(((double)logits[j] - max) / temperature);
        if (u < acc)
            return (int32_t)j;
    }
    return best;
}

scalar_status scalar_model_generate(const scalar_model *model, scalar_model_workspace *ws,
                                    const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                                    float temperature, uint64_t seed, int32_t *out)
{
    static const char fn[] = "scalar_model_generate";
    TRY(check_batch(model, ws, 1, 1, fn));
    if (!prompt || n_prompt < 1 || n_new < 0 || (n_new && !out) || !(temperature >= 0.0f) ||
        !isfinite(temperature))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: needs a prompt of >= 1 ids, n_new >= 0, an output buffer "
                                 "and a finite temperature >= 0", fn);
    int64_t W = ws->max_T, V = model->cfg.vocab_size;
    int32_t *window = scalar__alloc(model->ctx, (size_t)W * sizeof *window, "generate window");
    if (!window)
        return SCALAR_E_NOMEM;
    int64_t n = n_prompt < W ? n_prompt : W;
    memcpy(window, prompt + (n_prompt - n), (size_t)n * sizeof *window);
    scalar__rng rng;
    scalar__rng_init(&rng, seed, 0x67656e /* "gen" */);
    scalar_status st = SCALAR_OK;
    for (int64_t s = 0; s < n_new; s++) {
        st = scalar_model_forward(model, ws, window, NULL, 1, n, NULL, NULL);
        if (st != SCALAR_OK)
            break;
        int32_t next = sample_row(ws->logits + (size_t)(n - 1) * (size_t)V, V, temperature, &rng);
        out[s] = next;
        if (n == W) {
            memmove(window, window + 1, (size_t)(W - 1) * sizeof *window);
            window[W - 1] = next;
        } else {
            window[n++] = next;
        }
    }
    scalar__free(model->ctx, window);
    return st;
}
