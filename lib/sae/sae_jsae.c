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
 * z comes from one GEMM over all tokens through the backend; the per-token
 * contractions run in OpenMP loops over tokens (thread-private scratch), in
 * blocks of JSAE_BLOCK tokens whose dU, dV rows are then scattered in token
 * order with scalar_backend_sparse_outer_add (bit-identical on any thread
 * count).
 */
#include <math.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "../model/model_internal.h"
#include "sae_jsae.h"

#define TRY SCALAR_TRY

/* Per-thread scratch floats for one token. */
static int64_t token_scratch(int64_t C, int64_t F, int64_t ki, int64_t ko)
{
    /* Vl [ki, C], B [ki, F], A [ko, F], J then S [ko, ki], dA [ko, F], dB [ki, F] */
    return ki * C + 2 * ki * F + 2 * ko * F + ko * ki;
}

scalar_status scalar__jsae_alloc(scalar__jsae *js, scalar_ctx *ctx, int64_t max_tokens,
                                 int64_t C, int64_t F, int64_t max_k, int64_t max_latents,
                                 int32_t n_threads, const char *fn)
{
    int64_t blk = JSAE_BLOCK < max_tokens ? JSAE_BLOCK : max_tokens;
    js->C = C, js->F = F, js->max_tokens = max_tokens, js->n_threads = n_threads;
    js->z = scalar__alloc(ctx, (size_t)(max_tokens * F) * sizeof(float), fn);
    js->g = scalar__alloc(ctx, (size_t)(max_tokens * F) * sizeof(float), fn);
    js->ones = scalar__alloc(ctx, (size_t)(max_tokens * F) * sizeof(float), fn);
    js->ln = scalar__alloc(ctx, (size_t)(max_tokens * C) * sizeof(float), fn);
    js->mean = scalar__alloc(ctx, (size_t)(2 * max_tokens) * sizeof(float), fn);
    js->WeT = scalar__alloc(ctx, (size_t)(max_latents * C) * sizeof(float), fn);
    js->WfT = scalar__alloc(ctx, (size_t)(F * C) * sizeof(float), fn);
    js->dV = scalar__alloc(ctx, (size_t)(blk * max_k * C) * sizeof(float), fn);
    js->dU = scalar__alloc(ctx, (size_t)(blk * max_k * C) * sizeof(float), fn);
    js->unit = scalar__alloc(ctx, (size_t)(blk * max_k) * sizeof(float), fn);
    js->max_k = max_k;
    js->thread = scalar__alloc(ctx, (size_t)(n_threads * token_scratch(C, F, max_k, max_k)) *
                                        sizeof(float), fn);
    js->sums = scalar__alloc(ctx, (size_t)n_threads * sizeof(double), fn);
    if (!js->z || !js->g || !js->ones || !js->ln || !js->mean || !js->WeT || !js->WfT ||
        !js->dV || !js->dU || !js->unit || !js->thread || !js->sums)
        return SCALAR_E_NOMEM;
    js->rstd = js->mean + max_tokens;
    for (int64_t i = 0; i < max_tokens * F; i++)
        js->ones[i] = 1.0f;
    for (int64_t i = 0; i < blk * max_k; i++)
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
    scalar__free(ctx, js->WeT);
    scalar__free(ctx, js->WfT);
    scalar__free(ctx, js->dV);
    scalar__free(ctx, js->dU);
    scalar__free(ctx, js->unit);
    scalar__free(ctx, js->thread);
    scalar__free(ctx, js->sums);
}

/* out[r, :] += sum_c a[r, c] M[c, :] for rows r < rows: [rows, C] x [C, F] */
static void rows_times(float *restrict out, const float *restrict a, const float *restrict M,
                       int64_t rows, int64_t C, int64_t F)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) {
            float s = a[r * C + c];
            const float *restrict m = M + c * F;
#pragma omp simd
            for (int64_t h = 0; h < F; h++)
                out[r * F + h] += s * m[h];
        }
}

/* out[r, :] += sum_c M[idx[r]][c] W[c, :]: rows gathered by index. */
static void gathered_times(float *restrict out, const float *const *rows_ptr, const float *W,
                           int64_t rows, int64_t C, int64_t F)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) {
            float s = rows_ptr[r][c];
            const float *restrict m = W + c * F;
#pragma omp simd
            for (int64_t h = 0; h < F; h++)
                out[r * F + h] += s * m[h];
        }
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* L^T w = L w for w given as s . w' (s = gamma rstd): out = w - mean(w) - y (y.w)/C,
 * in place; with fwd, first scale by s (L v = s . P v needs the scale after). */
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

/* One token: the penalty (unscaled sum of |J|) and, with dU/dV, the scaled
 * gradient rows.  s = gamma rstd and y for the block, NULL for the FF layer. */
static double token(const scalar__jsae_call *c, int64_t t, float *scratch, float *dU, float *dV)
{
    const scalar__jsae *js = c->js;
    int64_t C = js->C, F = js->F, ki = c->k_in, ko = c->k_out;
    const float *g = js->g + t * F;
    float *Vl = scratch, *B = Vl + ki * C, *A = B + ki * F, *J = A + ko * F;
    float *dA = J + ko * ki, *dB = dA + ko * F;
    const float *V[SCALAR__JSAE_MAX_K], *U[SCALAR__JSAE_MAX_K];
    for (int64_t b = 0; b < ki; b++)
        V[b] = c->W_dec_in + (int64_t)c->idx_in[t * ki + b] * C;
    for (int64_t a = 0; a < ko; a++)
        U[a] = js->WeT + (int64_t)c->idx_out[t * ko + a] * C;
    /* B = (L) V W_fc */
    if (c->block) {
        const float *y = js->ln + t * C; /* y = (x - mean) rstd, kept in ln */
        float sc = js->rstd[t];
        for (int64_t b = 0; b < ki; b++) {
            float *vl = Vl + b * C;
            memcpy(vl, V[b], (size_t)C * sizeof *vl);
            ln_project(vl, y, C);
            for (int64_t i = 0; i < C; i++)
                vl[i] *= c->gamma[i] * sc;
        }
        memset(B, 0, (size_t)(ki * F) * sizeof *B);
        rows_times(B, Vl, c->W_fc, ki, C, F);
    } else {
        memset(B, 0, (size_t)(ki * F) * sizeof *B);
        gathered_times(B, V, c->W_fc, ki, C, F);
    }
    /* A = U W_proj^T = U WpT, WpT [C, F] */
    memset(A, 0, (size_t)(ko * F) * sizeof *A);
    gathered_times(A, U, c->WpT, ko, C, F);
    double sum = 0.0;
    for (int64_t a = 0; a < ko; a++)
        for (int64_t b = 0; b < ki; b++) {
            double j = 0.0;
            for (int64_t h = 0; h < F; h++)
                j += (double)A[a * F + h] * g[h] * B[b * F + h];
            if (c->block)
                j += dot(U[a], V[b], C);
            J[a * ki + b] = (float)j;
            sum += fabs(j);
        }
    if (!dU)
        return sum;
    for (int64_t e = 0; e < ko * ki; e++) /* S = sign(J) scale; sign(0) = 0 */
        J[e] = J[e] > 0.0f ? c->scale : J[e] < 0.0f ? -c->scale : 0.0f;
    /* dA = S (B g), dB = S^T (A g) */
    memset(dA, 0, (size_t)(ko * F) * sizeof *dA);
    memset(dB, 0, (size_t)(ki * F) * sizeof *dB);
    for (int64_t a = 0; a < ko; a++)
        for (int64_t b = 0; b < ki; b++) {
            float s = J[a * ki + b];
            if (s == 0.0f)
                continue;
#pragma omp simd
            for (int64_t h = 0; h < F; h++) {
                dA[a * F + h] += s * B[b * F + h] * g[h];
                dB[b * F + h] += s * A[a * F + h] * g[h];
            }
        }
    /* dU = dA W_proj (W_proj [F, C]); dV' = dB W_fc^T = dB WfT (WfT [F, C]) */
    memset(dU, 0, (size_t)(ko * C) * sizeof *dU);
    memset(dV, 0, (size_t)(ki * C) * sizeof *dV);
    rows_times(dU, dA, c->W_proj, ko, F, C);
    rows_times(dV, dB, js->WfT, ki, F, C);
    if (c->block) {
        const float *y = js->ln + t * C;
        float sc = js->rstd[t];
        for (int64_t b = 0; b < ki; b++) {
            float *dv = dV + b * C;
            for (int64_t i = 0; i < C; i++)
                dv[i] *= c->gamma[i] * sc;
            ln_project(dv, y, C);
        }
        for (int64_t a = 0; a < ko; a++) /* the skip path: J += u_a . v_b */
            for (int64_t b = 0; b < ki; b++) {
                float s = J[a * ki + b];
                for (int64_t i = 0; i < C; i++) {
                    dU[a * C + i] += s * V[b][i];
                    dV[b * C + i] += s * U[a][i];
                }
            }
    }
    return sum;
}

scalar_status scalar__jsae_run(const scalar__jsae_call *c, int64_t n, int grad, double *penalty)
{
    const scalar__jsae *js = c->js;
    scalar_backend *be = scalar_ctx_backend(c->ctx);
    int64_t C = js->C, F = js->F, ki = c->k_in, ko = c->k_out;
    int32_t nt = js->n_threads;
    /* z = (LN(x) or x) W_fc + b_fc;  g = gelu'(z);  for the block, ln holds y */
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
    if (c->block) /* y = (x - mean) rstd, replacing LN(x) now that z is made */
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < C; i++)
                js->ln[t * C + i] = (c->x_in[t * C + i] - js->mean[t]) * js->rstd[t];
    /* W_enc_out^T rows [n_out, C]; W_fc^T [F, C] */
    for (int64_t i = 0; i < C; i++)
        for (int64_t a = 0; a < c->n_out; a++)
            js->WeT[a * C + i] = c->W_enc_out[i * c->ld_enc_out + a];
    for (int64_t i = 0; i < C; i++)
        for (int64_t h = 0; h < F; h++)
            js->WfT[h * C + i] = c->W_fc[i * F + h];
    double total = 0.0;
    int64_t per_thread = token_scratch(C, F, js->max_k, js->max_k);
    for (int64_t t0 = 0; t0 < n; t0 += JSAE_BLOCK) {
        int64_t rows = n - t0 < JSAE_BLOCK ? n - t0 : JSAE_BLOCK;
        double sum = 0.0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : sum) if (nt > 1)
        for (int64_t r = 0; r < rows; r++) {
            int tid = 0;
#if defined(_OPENMP)
            tid = omp_get_thread_num();
#endif
            float *scratch = js->thread + (int64_t)tid * per_thread;
            sum += token(c, t0 + r, scratch, grad ? js->dU + r * ko * C : NULL,
                         grad ? js->dV + r * ki * C : NULL);
        }
        total += sum;
        if (grad) { /* scatter in token order: dW[idx] += 1 * row */
            TRY(scalar_backend_sparse_outer_add(be, c->grad_W_dec_in, js->unit,
                                                c->idx_in + t0 * ki, js->dV, rows * ki, 1,
                                                c->n_in, C));
            TRY(scalar_backend_sparse_outer_add(be, c->grad_WT_enc_out, js->unit,
                                                c->idx_out + t0 * ko, js->dU, rows * ko, 1,
                                                c->n_out, C));
        }
    }
    *penalty = total;
    return SCALAR_OK;
}
