/*
 * evaluator.c - the scalar_evaluator handle: options, creation, the edge
 * ranking (step 2), the grid, the bootstrap and the scores (step 4), and the
 * readers.  Steps 1 and 3 live in eval_attr.c and eval_curve.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

#define TRY SCALAR_TRY

/* The first version of the options: frozen. */
#define EV_OPTIONS_V1_SIZE ((size_t)56)

/* SPEC.md's grid: unique(int(logspace(0, 18, 37, base=2))). */
static const int64_t spec_grid[35] = {
    1,     2,     4,     5,     7,     11,    16,    22,     32,     45,     63,     90,
    127,   181,   256,   362,   512,   724,   1024,  1448,   2048,   2896,   4095,   5792,
    8191,  11585, 16383, 23170, 32768, 46340, 65536, 92681, 131072, 185363, 262144};

scalar_status scalar_evaluator_options_init(scalar_evaluator_options *o, size_t struct_size)
{
    if (!o || struct_size < EV_OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_evaluator_options_init: NULL or struct_size %zu < %zu",
                                 struct_size, EV_OPTIONS_V1_SIZE);
    memset(o, 0, struct_size);
    o->struct_size = struct_size < sizeof *o ? struct_size : sizeof *o;
    o->quirks = 0;
    o->attribution = SCALAR_ATTR_GRADIENT_PATH;
    o->steps = 5;
    o->bootstrap = 1000;
    o->confidence = 0.95;
    o->seed = 0;
    o->rank_seed = 125;
    o->batch = 8;
    return SCALAR_OK;
}

size_t scalar_evaluator_options_size(void)
{
    return sizeof(scalar_evaluator_options);
}

static scalar_status check_options(scalar_evaluator_options *out,
                                   const scalar_evaluator_options *in, const char *fn)
{
    scalar_evaluator_options_init(out, sizeof *out);
    if (!in)
        return SCALAR_OK;
    if (in->struct_size < EV_OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: options.struct_size %zu < %zu", fn,
                                 in->struct_size, EV_OPTIONS_V1_SIZE);
    const unsigned char *tail = (const unsigned char *)in;
    for (size_t b = sizeof *out; b < in->struct_size; b++)
        if (tail[b])
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: options carry non-zero bytes past the %zu this library "
                                     "knows",
                                     fn, sizeof *out);
    memcpy(out, in, in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
    out->struct_size = sizeof *out;
    if (out->quirks & ~SCALAR_QUIRKS_PARITY)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: unknown quirk bits 0x%x", fn,
                                 (unsigned)(out->quirks & ~SCALAR_QUIRKS_PARITY));
    if (out->attribution != SCALAR_ATTR_GRADIENT_PATH && out->attribution != SCALAR_ATTR_JACOBIAN)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: attribution %d is not a "
                                 "SCALAR_ATTR_* value", fn, (int)out->attribution);
    if (out->steps < 1 || out->steps > 1000)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: steps %d (1 .. 1000)", fn,
                                 (int)out->steps);
    if (out->bootstrap < 0 || out->bootstrap > 1000000)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: bootstrap %d (0 .. 1e6)", fn,
                                 (int)out->bootstrap);
    if (!(out->confidence > 0.0 && out->confidence < 1.0))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: confidence %g is not in (0, 1)", fn,
                                 out->confidence);
    if (out->batch < 1 || out->batch > 4096)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: batch %d (1 .. 4096)", fn,
                                 (int)out->batch);
    if (out->reserved0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: reserved0 must be 0", fn);
    return SCALAR_OK;
}

/* The hooks of a path: upstream and downstream kinds. */
static void path_hooks(int32_t path, int32_t *u, int32_t *d)
{
    static const int32_t hu[] = {SCALAR_HOOK_MLP_IN, SCALAR_HOOK_RESID_MID, SCALAR_HOOK_RESID_PRE};
    static const int32_t hd[] = {SCALAR_HOOK_MLP_OUT, SCALAR_HOOK_RESID_POST,
                                 SCALAR_HOOK_RESID_POST};
    *u = hu[path];
    *d = hd[path];
}

static scalar_status check_sae(const scalar_model *m, const scalar_sae *s, const char *which,
                               int32_t layer, int32_t kind, const char *fn)
{
    if (s->cfg.architecture != SCALAR_SAE_TOPK)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the %s SAE is not TopK", fn, which);
    if (s->cfg.d_in != m->cfg.n_embd)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the %s SAE has d_in %d, the model "
                                 "n_embd %d", fn, which, (int)s->cfg.d_in, (int)m->cfg.n_embd);
    if (s->cfg.k > 32)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the %s SAE has k %d (at most 32)", fn,
                                 which, (int)s->cfg.k);
    if (s->cfg.hook_name && s->cfg.hook_name[0]) {
        int32_t l, k;
        scalar_status st = scalar_model_hook_parse(s->cfg.hook_name, &l, &k);
        int ok = st == SCALAR_OK &&
                 ((l == layer && k == kind) ||
                  (kind == SCALAR_HOOK_RESID_PRE && k == SCALAR_HOOK_RESID_POST && l == layer - 1) ||
                  (kind == SCALAR_HOOK_RESID_POST && k == SCALAR_HOOK_RESID_PRE && l == layer + 1));
        if (!ok) {
            char want[64];
            scalar_model_hook_name(want, sizeof want, layer, kind);
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the %s SAE reads %s; this path "
                                     "needs %s", fn, which, s->cfg.hook_name, want);
        }
    }
    return SCALAR_OK;
}

static void build_grid(scalar_evaluator *ev)
{
    int64_t total = ev->FU * ev->FD, n = 0;
    if (ev_quirk(ev, SCALAR_QUIRK_GRID)) {
        for (int i = 0; i < 35; i++)
            ev->grid[n++] = spec_grid[i];
    } else {
        for (int i = 0; i < 35 && spec_grid[i] < total; i++)
            ev->grid[n++] = spec_grid[i];
        for (double e = 18.5; n > 0 && ev->grid[n - 1] < total; e += 0.5) {
            int64_t v = (int64_t)llround(pow(2.0, e));
            if (v >= total)
                break;
            ev->grid[n++] = v;
        }
        ev->grid[n++] = total;
    }
    ev->n_grid = n;
}

static int64_t grid_capacity(int64_t total)
{
    int64_t n = 36;
    for (double e = 18.5; pow(2.0, e) < (double)total; e += 0.5)
        n++;
    return n + 1;
}

/* CT [FD, Fm]: row j = W_proj W_enc_D[:, j]; WdT [FD, C]: row j = W_enc_D[:, j]. */
static scalar_status derive_weights(scalar_evaluator *ev)
{
    const scalar_sae *D = ev->D;
    for (int64_t j = 0; j < ev->FD; j++)
        for (int64_t c = 0; c < ev->C; c++)
            ev->WdT[j * ev->C + c] = D->W_enc[c * D->ld_enc + j];
    const scalar__layer_weights *p = &ev->model->w.layer[ev->layer];
    /* CT = WdT [FD, C] x W_proj^T, W_proj = mlp_proj_w [Fm, C] */
    TRY(scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_TRANS, ev->FD, ev->Fm, ev->C, 1.0f,
                             ev->WdT, ev->C, p->mlp_proj_w, ev->C, 0.0f, ev->CT, ev->Fm));
    int64_t C = ev->C, Fm = ev->Fm;
    int ffb = ev->path == SCALAR_PATH_FF_BLOCK;
    for (int64_t c = 0; c < C; c++)
        for (int64_t f = 0; f < Fm; f++)
            ev->G[c * Fm + f] = (ffb ? p->ln2_w[c] : 1.0f) * p->fc_w[c * Fm + f];
    for (int64_t f = 0; f < Fm; f++) {
        double hb = ffb ? 0.0 : p->fc_b[f], sg = 0.0, c2 = p->fc_b[f];
        for (int64_t c = 0; c < C; c++) {
            hb += (double)ev->U->b_dec[c] * ev->G[c * Fm + f];
            sg += ev->G[c * Fm + f];
            c2 += (double)p->ln2_b[c] * p->fc_w[c * Fm + f];
        }
        ev->hb[f] = (float)hb;
        ev->sG[f] = (float)sg;
        ev->c2[f] = (float)c2;
    }
    for (int64_t j = 0; j < ev->FD; j++) {
        double s = D->b_enc[j];
        for (int64_t c = 0; c < C; c++)
            s += ((double)p->mlp_proj_b[c] - (D->cfg.apply_b_dec_to_input ? D->b_dec[c] : 0.0f)) *
                 ev->WdT[j * C + c];
        ev->cj[j] = (float)s;
    }
    return SCALAR_OK;
}

scalar_status scalar_evaluator_create(scalar_evaluator **out, scalar_model *model,
                                      const scalar_sae *upstream, const scalar_sae *downstream,
                                      int32_t path, int32_t layer,
                                      const scalar_evaluator_options *options)
{
    static const char fn[] = "scalar_evaluator_create";
    if (out)
        *out = NULL;
    if (!out || !model || !upstream || !downstream)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out, model or an SAE is NULL", fn);
    if (path < 0 || path >= SCALAR_PATH_COUNT)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: path %d is not a SCALAR_PATH_* value",
                                 fn, (int)path);
    if (layer < 0 || layer >= model->cfg.n_layer)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: layer %d of a %d-layer model", fn,
                                 (int)layer, (int)model->cfg.n_layer);
    scalar_evaluator_options opt;
    TRY(check_options(&opt, options, fn));
    int32_t hu, hd;
    path_hooks(path, &hu, &hd);
    TRY(check_sae(model, upstream, "upstream", layer, hu, fn));
    TRY(check_sae(model, downstream, "downstream", layer, hd, fn));

    scalar_ctx *ctx = model->ctx;
    scalar_evaluator *ev = scalar__alloc(ctx, sizeof *ev, "evaluator");
    if (!ev)
        return SCALAR_E_NOMEM;
    memset(ev, 0, sizeof *ev);
    ev->ctx = ctx;
    ev->model = model;
    scalar__model_retain(model);
    ev->be = model->backend;
    ev->U = upstream;
    ev->D = downstream;
    ev->path = path;
    ev->layer = layer;
    ev->hook_u = hu;
    ev->hook_d = hd;
    ev->opt = opt;
    ev->n_threads = scalar_ctx_n_threads(ctx);
    ev->C = model->cfg.n_embd;
    ev->Fm = model->cfg.d_mlp;
    ev->FU = upstream->cfg.d_sae;
    ev->FD = downstream->cfg.d_sae;
    ev->kU = upstream->cfg.k;
    ev->kD = downstream->cfg.k;
    ev->kcU = 2 * ev->kU < ev->FU ? 2 * ev->kU : ev->FU;
    ev->kcD = 2 * ev->kD < ev->FD ? 2 * ev->kD : ev->FD;
    ev->T_max = model->cfg.block_size;
    ev->max_B = opt.batch > opt.steps ? opt.batch : opt.steps;
    int64_t total = ev->FU * ev->FD;
    size_t nM = (size_t)ev->FD * (size_t)(ev->C * ev->C);
    int dense = opt.attribution == SCALAR_ATTR_JACOBIAN || (opt.quirks & SCALAR_QUIRK_NORM_WEIGHT);
    scalar_status st = scalar_model_workspace_create(&ev->ws, model, ev->max_B, ev->T_max,
                                                     path == SCALAR_PATH_BLOCK
                                                         ? SCALAR_WORKSPACE_GRAD : 0);
    if (st != SCALAR_OK)
        goto fail;
    st = SCALAR_E_NOMEM;
    ev->WdT = scalar__alloc(ctx, (size_t)(ev->FD * ev->C) * sizeof(float), "evaluator weights");
    ev->CT = scalar__alloc(ctx, (size_t)(ev->FD * ev->Fm) * sizeof(float), "evaluator weights");
    ev->G = scalar__alloc(ctx, (size_t)(ev->C * ev->Fm) * sizeof(float), "evaluator weights");
    ev->hb = scalar__alloc(ctx, (size_t)(3 * ev->Fm) * sizeof(float), "evaluator weights");
    ev->cj = scalar__alloc(ctx, (size_t)ev->FD * sizeof(float), "evaluator weights");
    ev->ones = scalar__alloc(ctx, (size_t)(ev->max_B * ev->T_max * ev->Fm) * sizeof(float),
                             "evaluator scratch");
    ev->A2 = scalar__alloc(ctx, (size_t)total * sizeof(double), "attribution scores");
    ev->grid = scalar__alloc(ctx, (size_t)grid_capacity(total) * sizeof(int64_t), "grid");
    ev->M_used = scalar__alloc(ctx, (size_t)ev->FD, "attribution scratch");
    if (dense)
        ev->M = scalar__alloc(ctx, nM * sizeof(double), "attribution quadratic forms");
    if (ev->hb) {
        ev->sG = ev->hb + ev->Fm;
        ev->c2 = ev->hb + 2 * ev->Fm;
    }
    if (!ev->WdT || !ev->CT || !ev->G || !ev->hb || !ev->cj || !ev->ones || !ev->A2 || !ev->grid || !ev->M_used ||
        (dense && !ev->M))
        goto fail;
    for (int64_t e = 0; e < ev->max_B * ev->T_max * ev->Fm; e++)
        ev->ones[e] = 1.0f;
    memset(ev->A2, 0, (size_t)total * sizeof(double));
    memset(ev->M_used, 0, (size_t)ev->FD);
    if (ev->M)
        memset(ev->M, 0, nM * sizeof(double));
    build_grid(ev);
    st = derive_weights(ev);
    if (st != SCALAR_OK)
        goto fail;
    *out = ev;
    return SCALAR_OK;
fail:
    scalar_evaluator_free(ev);
    return st;
}

void scalar__ev_drop_curve(scalar_evaluator *ev)
{
    for (int c = 0; c < 2; c++) {
        scalar__free(ev->ctx, ev->kl_tok[c]);
        scalar__free(ev->ctx, ev->mean[c]);
        scalar__free(ev->ctx, ev->lo[c]);
        scalar__free(ev->ctx, ev->hi[c]);
        ev->kl_tok[c] = NULL;
        ev->mean[c] = ev->lo[c] = ev->hi[c] = NULL;
    }
    ev->have_curve = 0;
}

void scalar_evaluator_free(scalar_evaluator *ev)
{
    if (!ev)
        return;
    scalar_ctx *ctx = ev->ctx;
    scalar__ev_drop_curve(ev);
    scalar_model_workspace_free(ev->ws);
    scalar__free(ctx, ev->WdT);
    scalar__free(ctx, ev->CT);
    scalar__free(ctx, ev->G);
    scalar__free(ctx, ev->hb);
    scalar__free(ctx, ev->cj);
    scalar__free(ctx, ev->ones);
    scalar__free(ctx, ev->A2);
    scalar__free(ctx, ev->M);
    scalar__free(ctx, ev->M_used);
    scalar__free(ctx, ev->grid);
    scalar_model *m = ev->model;
    scalar__free(ctx, ev);
    scalar_model_free(m);
}

/* ---- step 2: ranking ---- */

/* Merge sort by (score desc, index asc): no global state, thread-safe. */
static void rank_merge(int64_t *v, int64_t *tmp, int64_t n, const double *s)
{
    if (n < 2)
        return;
    int64_t h = n / 2;
    rank_merge(v, tmp, h, s);
    rank_merge(v + h, tmp, n - h, s);
    int64_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        int64_t x = v[i], y = v[j];
        int take_x = s[x] > s[y] || (s[x] == s[y] && x < y);
        tmp[o++] = take_x ? v[i++] : v[j++];
    }
    while (i < h)
        tmp[o++] = v[i++];
    while (j < n)
        tmp[o++] = v[j++];
    memcpy(v, tmp, (size_t)n * sizeof *v);
}

scalar_status scalar__ev_rank(const scalar_evaluator *ev, int64_t *out)
{
    int64_t total = ev->FU * ev->FD, n_pos = 0, n_zero = 0;
    for (int64_t f = 0; f < total; f++)
        if (ev->A2[f] > 0.0)
            out[n_pos++] = f;
    int64_t *tmp = scalar__alloc(ev->ctx, (size_t)(n_pos > 0 ? n_pos : 1) * sizeof(int64_t),
                                 "edge ranking");
    if (!tmp)
        return SCALAR_E_NOMEM;
    rank_merge(out, tmp, n_pos, ev->A2);
    scalar__free(ev->ctx, tmp);
    for (int64_t f = 0; f < total; f++)
        if (!(ev->A2[f] > 0.0))
            out[n_pos + n_zero++] = f;
    scalar__rng rng;
    scalar__rng_init(&rng, ev->opt.rank_seed, 0x72616e6bULL /* "rank" */);
    int64_t *z = out + n_pos;
    for (int64_t i = n_zero - 1; i > 0; i--) {
        int64_t j = (int64_t)scalar__rng_below(&rng, (uint64_t)(i + 1));
        int64_t t = z[i];
        z[i] = z[j];
        z[j] = t;
    }
    return SCALAR_OK;
}

/* ---- readers ---- */

scalar_status scalar_evaluator_read_attribution(const scalar_evaluator *ev, float *out,
                                                size_t capacity)
{
    static const char fn[] = "scalar_evaluator_read_attribution";
    if (!ev || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ev or out is NULL", fn);
    size_t total = (size_t)(ev->FU * ev->FD);
    if (capacity < total)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: %zu floats needed, %zu given", fn, total,
                                 capacity);
    for (size_t f = 0; f < total; f++)
        out[f] = (float)sqrt(ev->A2[f]);
    return SCALAR_OK;
}

scalar_status scalar_evaluator_read_order(const scalar_evaluator *ev, int64_t *out,
                                          size_t capacity)
{
    static const char fn[] = "scalar_evaluator_read_order";
    if (!ev || !out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ev or out is NULL", fn);
    size_t total = (size_t)(ev->FU * ev->FD);
    if (capacity < total)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: %zu entries needed, %zu given", fn,
                                 total, capacity);
    return scalar__ev_rank(ev, out);
}

scalar_status scalar_evaluator_top_edges(const scalar_evaluator *ev, int64_t n, int32_t *upstream,
                                         int32_t *downstream, float *weight, int64_t *n_written)
{
    static const char fn[] = "scalar_evaluator_top_edges";
    if (n_written)
        *n_written = 0;
    if (!ev || !upstream || !downstream || !weight || !n_written || n < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: NULL argument or n < 0", fn);
    int64_t total = ev->FU * ev->FD;
    int64_t *order = scalar__alloc(ev->ctx, (size_t)total * sizeof(int64_t), "edge ranking");
    if (!order)
        return SCALAR_E_NOMEM;
    scalar_status st = scalar__ev_rank(ev, order);
    int64_t m = 0;
    for (; st == SCALAR_OK && m < n && m < total && ev->A2[order[m]] > 0.0; m++) {
        upstream[m] = (int32_t)(order[m] / ev->FD);
        downstream[m] = (int32_t)(order[m] % ev->FD);
        weight[m] = (float)sqrt(ev->A2[order[m]]);
    }
    scalar__free(ev->ctx, order);
    if (st == SCALAR_OK)
        *n_written = m;
    return st;
}

int64_t scalar_evaluator_n_points(const scalar_evaluator *ev)
{
    return ev ? ev->n_grid : -1;
}

static scalar_status curve_args(const scalar_evaluator *ev, int32_t which, const char *fn)
{
    if (!ev)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ev is NULL", fn);
    if (which != SCALAR_CURVE_KL && which != SCALAR_CURVE_KL_FULL)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: which %d is not a SCALAR_CURVE_* "
                                 "value", fn, (int)which);
    if (!ev->have_curve)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: no curve yet "
                                 "(scalar_evaluator_curve)", fn);
    return SCALAR_OK;
}

scalar_status scalar_evaluator_read_curve(const scalar_evaluator *ev, int32_t which,
                                          int64_t *edges, double *mean, double *lo, double *hi,
                                          size_t capacity)
{
    static const char fn[] = "scalar_evaluator_read_curve";
    TRY(curve_args(ev, which, fn));
    if (capacity < (size_t)ev->n_grid)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: %lld entries needed, %zu given", fn,
                                 (long long)ev->n_grid, capacity);
    size_t n = (size_t)ev->n_grid;
    if (edges)
        memcpy(edges, ev->grid, n * sizeof *edges);
    if (mean)
        memcpy(mean, ev->mean[which], n * sizeof *mean);
    if (lo)
        memcpy(lo, ev->lo[which], n * sizeof *lo);
    if (hi)
        memcpy(hi, ev->hi[which], n * sizeof *hi);
    return SCALAR_OK;
}

scalar_status scalar_evaluator_read_token_kl(const scalar_evaluator *ev, int32_t which,
                                             float *out, size_t capacity)
{
    static const char fn[] = "scalar_evaluator_read_token_kl";
    TRY(curve_args(ev, which, fn));
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    size_t n = (size_t)(ev->n_grid * ev->eval_tokens);
    if (capacity < n)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: %zu floats needed, %zu given", fn, n,
                                 capacity);
    memcpy(out, ev->kl_tok[which], n * sizeof *out);
    return SCALAR_OK;
}

scalar_status scalar_evaluator_scores(const scalar_evaluator *ev, double *out, size_t capacity)
{
    static const char fn[] = "scalar_evaluator_scores";
    TRY(curve_args(ev, SCALAR_CURVE_KL, fn));
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    if (capacity < SCALAR_SCORE_COUNT)
        return scalar__error_set(SCALAR_E_BUFSIZE, "%s: %d doubles needed, %zu given", fn,
                                 SCALAR_SCORE_COUNT, capacity);
    memcpy(out, ev->scores, sizeof ev->scores);
    return SCALAR_OK;
}

/* ---- step 4: bootstrap and scores ---- */

static double trapezoid(const int64_t *x, const double *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i + 1 < n; i++)
        s += 0.5 * (y[i] + y[i + 1]) * (double)(x[i + 1] - x[i]);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y);
}

static double quantile_sorted(const double *v, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    if (i >= n - 1)
        return v[n - 1];
    double f = pos - (double)i;
    return v[i] + f * (v[i + 1] - v[i]);
}

/* Means, intervals (the same resamples for both curves and every point) and
 * the scores, from ev->kl_tok. */
scalar_status scalar__ev_finish_curve(scalar_evaluator *ev)
{
    int64_t G = ev->n_grid, n = ev->eval_tokens, R = ev->opt.bootstrap;
    for (int c = 0; c < 2; c++)
        for (int64_t g = 0; g < G; g++) {
            double s = 0.0;
            for (int64_t t = 0; t < n; t++)
                s += ev->kl_tok[c][g * n + t];
            ev->mean[c][g] = s / (double)n;
            ev->lo[c][g] = ev->hi[c][g] = NAN;
        }
    if (R > 0) {
        double *means = scalar__alloc(ev->ctx, (size_t)(2 * G * R) * sizeof(double), "bootstrap");
        int32_t *count = scalar__alloc(ev->ctx, (size_t)n * sizeof(int32_t), "bootstrap");
        if (!means || !count) {
            scalar__free(ev->ctx, means);
            scalar__free(ev->ctx, count);
            return SCALAR_E_NOMEM;
        }
        scalar__rng rng;
        scalar__rng_init(&rng, ev->opt.seed, 0x626f6f74ULL /* "boot" */);
        for (int64_t r = 0; r < R; r++) {
            memset(count, 0, (size_t)n * sizeof *count);
            for (int64_t t = 0; t < n; t++)
                count[scalar__rng_below(&rng, (uint64_t)n)]++;
            for (int c = 0; c < 2; c++)
                for (int64_t g = 0; g < G; g++) {
                    const float *kl = ev->kl_tok[c] + g * n;
                    double s = 0.0;
                    for (int64_t t = 0; t < n; t++)
                        s += (double)count[t] * kl[t];
                    means[(c * G + g) * R + r] = s / (double)n;
                }
        }
        double qlo = (1.0 - ev->opt.confidence) / 2.0, qhi = (1.0 + ev->opt.confidence) / 2.0;
        for (int c = 0; c < 2; c++)
            for (int64_t g = 0; g < G; g++) {
                double *v = means + (c * G + g) * R;
                qsort(v, (size_t)R, sizeof *v, cmp_double);
                ev->lo[c][g] = quantile_sorted(v, R, qlo);
                ev->hi[c][g] = quantile_sorted(v, R, qhi);
            }
        scalar__free(ev->ctx, means);
        scalar__free(ev->ctx, count);
    }
    double total = (double)(ev->FU * ev->FD);
    for (int c = 0; c < 2; c++) {
        double s = trapezoid(ev->grid, ev->mean[c], G), err = NAN;
        if (R > 0) {
            double *w = scalar__alloc(ev->ctx, (size_t)G * sizeof(double), "scores");
            if (!w)
                return SCALAR_E_NOMEM;
            for (int64_t g = 0; g < G; g++)
                w[g] = ev->hi[c][g] - ev->lo[c][g];
            err = trapezoid(ev->grid, w, G) / 2.0;
            scalar__free(ev->ctx, w);
        }
        if (c == 0) {
            ev->scores[SCALAR_SCORE_S_ABS] = s;
            ev->scores[SCALAR_SCORE_S_ABS_ERR] = err;
            ev->scores[SCALAR_SCORE_S_REL] = s / total;
            ev->scores[SCALAR_SCORE_S_REL_ERR] = err / total;
        } else {
            ev->scores[SCALAR_SCORE_FULL_S_ABS] = s;
            ev->scores[SCALAR_SCORE_FULL_S_ABS_ERR] = err;
        }
    }
    ev->scores[SCALAR_SCORE_N_EDGES] = total;
    ev->scores[SCALAR_SCORE_ATTR_TOKENS] = (double)ev->attr_tokens;
    ev->scores[SCALAR_SCORE_EVAL_TOKENS] = (double)n;
    ev->have_curve = 1;
    return SCALAR_OK;
}
