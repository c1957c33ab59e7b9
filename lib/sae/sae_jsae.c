/*
 * sae_jsae.c - the Jacobian sparsity penalty of JSAE pairs (SPEC.md section
 * 2, "Jacobian SAEs") and its hand-derived gradient.
 *
 * Dimension legend:
 *   n   tokens;  C  n_embd (both SAEs' d_in);  F  d_mlp
 *   ki  the in-SAE's k;  ko  the out-SAE's k
 *
 * Per token t, with the in-SAE's kept latents b (indices idx_in[t, :], top-k
 * order) and the out-SAE's a (idx_out[t, :]):
 *   v_b = W_dec_in[b]  [C];  u_a = W_enc_out[:, a]  [C]
 *   FF layer:  z = x W_fc + b_fc at the clean x (mlp_in); g = gelu'(z)
 *              J[a, b] = u_a^T W_proj^T diag(g) W_fc^T v_b
 *   FF block:  x = resid_mid; LN Jacobian L = diag(gamma rstd) (I - 11^T/C - y y^T/C),
 *              y = (x - mean) rstd; z = LN(x) W_fc + b_fc
 *              J[a, b] = u_a^T W_proj^T diag(g) W_fc^T L v_b  +  u_a . v_b
 *   penalty = lambda * sum_{t,a,b} |J| / ki^2   (sum mode; mean mode: / n)
 * Computed as A = U W_proj^T [ko, F], B = (L) V W_fc [ki, F],
 * J = (A diag(g)) B^T.  With S = d penalty / dJ = sign(J) * scale:
 *   dU = (S (B diag(g))) W_proj  (+ S V)            -> rows of W_enc_out^T's gradient
 *   dV = L^T ((S^T (A diag(g))) W_fc^T)  (+ S^T U)   -> rows of W_dec_in's gradient
 * with L^T w = P (gamma rstd . w), P symmetric.  g, rstd, y and the index
 * sets are constants (detached), as SPEC.md says: nothing else gets a
 * gradient and no second derivative is needed.
 *
 * Everything runs through the backend, a block of tokens at a time: z is one
 * GEMM over all tokens; per block, the kept rows are gathered
 * (gather_rows), mapped by two GEMMs ([block * k, C] x [C, F]), contracted
 * per token (jacobian_contract, and its backward for S), mapped back by two
 * GEMMs, and scattered in token order (sparse_outer_add: bit-identical on
 * any thread count).  Only the LayerNorm projection P and sign(J) are plain
 * loops here.
 */
#include <math.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "../model/model_internal.h"
#include "sae_jsae.h"

#define TRY SCALAR_TRY

/* Tokens per block: the [block * k, F] operands stay near 8 MiB each. */
static int64_t block_tokens(int64_t max_k, int64_t F, int64_t max_tokens)
{
    int64_t rows = ((int64_t)1 << 21) / (max_k * (F > 0 ? F : 1));
    rows = rows < 1 ? 1 : rows > JSAE_BLOCK ? JSAE_BLOCK : rows;
    return rows < max_tokens ? rows : max_tokens;
}

scalar_status scalar__jsae_alloc(scalar__jsae *js, scalar_ctx *ctx, int64_t max_tokens,
                                 int64_t C, int64_t F, int64_t max_k, int64_t max_latents,
                                 int32_t n_threads, const char *fn)
{
    int64_t blk = block_tokens(max_k, F > C ? F : C, max_tokens), bk = blk * max_k;
    int64_t wide = F > C ? F : C;
    js->C = C, js->F = F, js->max_tokens = max_tokens, js->max_k = max_k, js->blk = blk;
    js->n_threads = n_threads;
    (void)max_latents;
    js->z = scalar__alloc(ctx, (size_t)(max_tokens * F) * sizeof(float), fn);
    js->g = scalar__alloc(ctx, (size_t)(max_tokens * F) * sizeof(float), fn);
    js->ones = scalar__alloc(ctx, (size_t)(max_tokens * wide) * sizeof(float), fn);
    js->ln = scalar__alloc(ctx, (size_t)(max_tokens * C) * sizeof(float), fn);
    js->mean = scalar__alloc(ctx, (size_t)(2 * max_tokens) * sizeof(float), fn);
    /* per block: V, Vl, U, dU, dV, dU2, dV2 [bk, C]; A, B, dA, dB [bk, F]; J, J2 [blk k k] */
    js->block = scalar__alloc(ctx, (size_t)(7 * bk * C + 4 * bk * F + 2 * bk * max_k) *
                                       sizeof(float), fn);
    js->unit = scalar__alloc(ctx, (size_t)bk * sizeof(float), fn);
    if (!js->z || !js->g || !js->ones || !js->ln || !js->mean || !js->block || !js->unit)
        return SCALAR_E_NOMEM;
    js->rstd = js->mean + max_tokens;
    for (int64_t i = 0; i < max_tokens * wide; i++)
        js->ones[i] = 1.0f;
    for (int64_t i = 0; i < bk; i++)
        js->unit[i] = 1.0f;
    return SCALAR_OK;
}

void scalar__jsae_free(scalar__jsae *js, scalar_ctx *ctx)
{
    scalar__free(ctx, js->z);
    scalar__free(ctx, js->g);
    scalar__free(ctx, js->ones);
    scalar__free(ctx, js->ln);
    scalar__free(ctx, js->mean);
    scalar__free(ctx, js->block);
    scalar__free(ctx, js->unit);
}

/* w <- w - mean(w) - y (y . w) / C: P, the symmetric part of ln_2's Jacobian. */
static void ln_project(float *w, const float *y, int64_t C)
{
    double mean = 0.0, yw = 0.0;
    for (int64_t c = 0; c < C; c++) {
        mean += w[c];
        yw += (double)y[c] * w[c];
    }
    mean /= (double)C;
    yw /= (double)C;
    for (int64_t c = 0; c < C; c++)
        w[c] = (float)((double)w[c] - mean - (double)y[c] * yw);
}

/* rows [rows * k, C] of tokens t0..: forward L v = s . P v (fwd), backward
 * L^T w = P (s . w); s = gamma * rstd[t], y = js->ln[t]. */
static void ln_jacobian(const scalar__jsae_call *c, float *rows, int64_t t0, int64_t n_tok,
                        int64_t k, int fwd)
{
    const scalar__jsae *js = c->js;
    int64_t C = js->C;
#pragma omp parallel for num_threads(js->n_threads) schedule(static) \
    if (js->n_threads > 1 && n_tok * k * C >= 65536)
    for (int64_t r = 0; r < n_tok * k; r++) {
        int64_t t = t0 + r / k;
        float *w = rows + r * C, sc = js->rstd[t];
        if (!fwd)
            for (int64_t i = 0; i < C; i++)
                w[i] *= c->gamma[i] * sc;
        ln_project(w, js->ln + t * C, C);
        if (fwd)
            for (int64_t i = 0; i < C; i++)
                w[i] *= c->gamma[i] * sc;
    }
}

/* z = (LN(x) or x) W_fc + b_fc; g = gelu'(z); for the block, ln then holds y. */
static scalar_status path_constants(const scalar__jsae_call *c, int64_t n)
{
    const scalar__jsae *js = c->js;
    scalar_backend *be = scalar_ctx_backend(c->ctx);
    int64_t C = js->C, F = js->F;
    const float *xin = c->x_in;
    if (c->block) {
        TRY(scalar_backend_layernorm_forward(be, js->ln, js->mean, js->rstd, c->x_in, c->gamma,
                                             c->beta, n, C, c->eps));
        xin = js->ln;
    }
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n, F, C, 1.0f, xin, C, c->W_fc,
                             F, 0.0f, js->z, F));
    TRY(scalar_backend_bias_add(be, js->z, c->b_fc, n, F));
    memset(js->g, 0, (size_t)(n * F) * sizeof(float));
    TRY(scalar_backend_gelu_backward(be, js->g, js->z, js->ones, n * F));
    if (c->block)
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < C; i++)
                js->ln[t * C + i] = (c->x_in[t * C + i] - js->mean[t]) * js->rstd[t];
    return SCALAR_OK;
}

/* One block of `rows` tokens from t0: adds sum |J| to *sum; with grad, the
 * scaled gradient rows into the call's buffers. */
static scalar_status run_block(const scalar__jsae_call *c, int64_t t0, int64_t rows, int grad,
                               double *sum)
{
    const scalar__jsae *js = c->js;
    scalar_backend *be = scalar_ctx_backend(c->ctx);
    int64_t C = js->C, F = js->F, ki = c->k_in, ko = c->k_out;
    int64_t bk = js->blk * js->max_k;
    float *V = js->block, *Vl = V + bk * C, *U = Vl + bk * C, *dU = U + bk * C, *dV = dU + bk * C;
    float *dU2 = dV + bk * C, *dV2 = dU2 + bk * C, *A = dV2 + bk * C, *B = A + bk * F;
    float *dA = B + bk * F, *dB = dA + bk * F, *J = dB + bk * F, *J2 = J + bk * js->max_k;
    const float *g = js->g + t0 * F;
    const int32_t *ii = c->idx_in + t0 * ki, *io = c->idx_out + t0 * ko;
    /* B = (L) V W_fc;  A = U W_proj^T, U = W_enc_out^T rows */
    TRY(scalar_backend_gather_rows(be, V, c->W_dec_in, ii, rows * ki, c->n_in, C));
    const float *Vmap = V;
    if (c->block) {
        memcpy(Vl, V, (size_t)(rows * ki * C) * sizeof *Vl);
        ln_jacobian(c, Vl, t0, rows, ki, 1);
        Vmap = Vl;
    }
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, rows * ki, F, C, 1.0f, Vmap, C,
                             c->W_fc, F, 0.0f, B, F));
    TRY(scalar_backend_gather_rows(be, U, c->WeT, io, rows * ko, c->n_out, C));
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_TRANS, rows * ko, F, C, 1.0f, U, C,
                             c->W_proj, C, 0.0f, A, F));
    TRY(scalar_backend_jacobian_contract(be, J, A, g, B, rows, ko, ki, F));
    if (c->block) { /* the skip path: J += U V^T, a contraction with g = 1 */
        TRY(scalar_backend_jacobian_contract(be, J2, U, js->ones, V, rows, ko, ki, C));
        for (int64_t e = 0; e < rows * ko * ki; e++)
            J[e] += J2[e];
    }
    double s = 0.0;
    for (int64_t e = 0; e < rows * ko * ki; e++) {
        s += fabs((double)J[e]);
        J[e] = J[e] > 0.0f ? c->scale : J[e] < 0.0f ? -c->scale : 0.0f; /* S; sign(0) = 0 */
    }
    *sum += s;
    if (!grad)
        return SCALAR_OK;
    /* dU = (S (B g)) W_proj (+ S V);  dV = L^T ((S^T (A g)) W_fc^T) (+ S^T U) */
    TRY(scalar_backend_jacobian_contract_backward(be, dA, dB, J, A, g, B, rows, ko, ki, F));
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, rows * ko, C, F, 1.0f, dA, F,
                             c->W_proj, C, 0.0f, dU, C));
    TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_TRANS, rows * ki, C, F, 1.0f, dB, F,
                             c->W_fc, F, 0.0f, dV, C));
    if (c->block) {
        ln_jacobian(c, dV, t0, rows, ki, 0);
        TRY(scalar_backend_jacobian_contract_backward(be, dU2, dV2, J, U, js->ones, V, rows, ko,
                                                      ki, C));
        TRY(scalar_backend_add(be, dU, dU, dU2, rows * ko * C));
        TRY(scalar_backend_add(be, dV, dV, dV2, rows * ki * C));
    }
    /* scatter in token order: dW[idx] += 1 * row */
    TRY(scalar_backend_sparse_outer_add(be, c->grad_W_dec_in, js->unit, ii, dV, rows * ki, 1,
                                        c->n_in, C));
    return scalar_backend_sparse_outer_add(be, c->grad_WT_enc_out, js->unit, io, dU, rows * ko, 1,
                                           c->n_out, C);
}

scalar_status scalar__jsae_run(const scalar__jsae_call *c, int64_t n, int grad, double *penalty)
{
    const scalar__jsae *js = c->js;
    TRY(path_constants(c, n));
    double total = 0.0;
    for (int64_t t0 = 0; t0 < n; t0 += js->blk)
        TRY(run_block(c, t0, n - t0 < js->blk ? n - t0 : js->blk, grad, &total));
    *penalty = total;
    return SCALAR_OK;
}
