/*
 * sae_codes.c - encode activations to codes and decode codes to
 * reconstructions, through the context's backend.
 *
 * Dimension legend:
 *   n       tokens of a call;  blk  tokens per encoder block
 *   d_in    activation width;  d_sae latents;  k  codes kept per token
 *
 * Encoding runs blk tokens at a time (x - b_dec, one GEMM against W_enc, the
 * bias, the activation, then the backend's top-k), so the sparse path never
 * holds more than a [blk, d_sae] block of pre-activations; blk is chosen to
 * keep that block near 4 MiB.  The scratch is allocated once per call.
 */
#include <string.h>

#include "sae_internal.h"

/* Floats of pre-activations per encoder block (4 MiB) ... */
#define ENC_BLOCK_FLOATS (1 << 20)
/* ... but at least this many rows: the encoder GEMM of a wide dictionary
 * needs tall blocks (GPT-2 size, d_sae 24,576: 42-row blocks ran its GEMM at
 * 57% of a whole-batch sgemm; 256 rows are a 25 MB block). */
#define ENC_BLOCK_MIN_ROWS 256

static int64_t block_rows(int64_t d_sae, int64_t n)
{
    int64_t blk = ENC_BLOCK_FLOATS / d_sae;
    blk = blk < ENC_BLOCK_MIN_ROWS ? ENC_BLOCK_MIN_ROWS : blk > 1024 ? 1024 : blk;
    return blk < n ? blk : n;
}

/* pre[r, :] = act(W_enc^T (x[r] - b_dec?) + b_enc) for blk rows.
 *   xc: [blk, d_in] scratch;  pre: [blk, d_sae] with row stride ld_pre */
static scalar_status encode_block(const scalar_sae *s, float *xc, float *pre, int64_t ld_pre,
                                  const float *x, int64_t blk)
{
    int64_t d_in = s->cfg.d_in, d_sae = s->cfg.d_sae;
    scalar_backend *be = scalar_ctx_backend(s->ctx);
    int32_t nt = scalar_ctx_n_threads(s->ctx);
    const float *in = x;
    if (s->cfg.apply_b_dec_to_input) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && blk * d_in >= 65536)
        for (int64_t r = 0; r < blk; r++)
            for (int64_t i = 0; i < d_in; i++)
                xc[r * d_in + i] = x[r * d_in + i] - s->b_dec[i];
        in = xc;
    }
    SCALAR_TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, blk, d_sae, d_in, 1.0f,
                                    in, d_in, s->W_enc, s->ld_enc, 0.0f, pre, ld_pre));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && blk * d_sae >= 65536)
    for (int64_t r = 0; r < blk; r++) {
        float *row = pre + r * ld_pre;
        if (s->cfg.architecture == SCALAR_SAE_JUMPRELU) {
            for (int64_t j = 0; j < d_sae; j++) {
                float v = row[j] + s->b_enc[j];
                /* SAELens: ReLU(pre) * (pre > threshold); NaN stays NaN */
                row[j] = !(v <= s->threshold[j]) && !(v <= 0.0f) ? v : 0.0f;
            }
        } else {
            for (int64_t j = 0; j < d_sae; j++) {
                float v = row[j] + s->b_enc[j];
                row[j] = !(v <= 0.0f) ? v : 0.0f; /* ReLU; NaN stays NaN */
            }
        }
    }
    return SCALAR_OK;
}

static scalar_status check_call(const scalar_sae *s, const void *a, const void *b, const void *c,
                                int64_t n, const char *fn)
{
    if (!s)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sae is NULL", fn);
    if (n < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_tokens %lld is negative", fn,
                                 (long long)n);
    if (n > 0 && (!a || !b || !c))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: a buffer is NULL", fn);
    return SCALAR_OK;
}

int64_t scalar__sae_encode_scratch(const scalar_sae *s, int64_t n)
{
    int64_t blk = block_rows(s->cfg.d_sae, n > 0 ? n : 1);
    return blk * ((int64_t)s->cfg.d_in + s->cfg.d_sae);
}

scalar_status scalar__sae_encode_topk(const scalar_sae *s, const float *x, int64_t n,
                                      float *values, int32_t *indices, float *xc, float *scratch)
{
    int64_t d_in = s->cfg.d_in, d_sae = s->cfg.d_sae, k = s->cfg.k;
    int64_t blk = block_rows(d_sae, n > 0 ? n : 1);
    float *pre = scratch + blk * d_in;
    scalar_backend *be = scalar_ctx_backend(s->ctx);
    for (int64_t t0 = 0; t0 < n; t0 += blk) {
        int64_t rows = n - t0 < blk ? n - t0 : blk;
        float *xc_blk = xc ? xc + t0 * d_in : scratch;
        SCALAR_TRY(encode_block(s, xc_blk, pre, d_sae, x + t0 * d_in, rows));
        if (xc && !s->cfg.apply_b_dec_to_input)
            memcpy(xc_blk, x + t0 * d_in, (size_t)(rows * d_in) * sizeof(float));
        SCALAR_TRY(scalar_backend_topk_rows(be, values + t0 * k, indices + t0 * k, pre, rows,
                                            d_sae, k));
    }
    return SCALAR_OK;
}

scalar_status scalar_sae_encode(const scalar_sae *sae, const float *x, int64_t n_tokens,
                                float *values, int32_t *indices)
{
    static const char fn[] = "scalar_sae_encode";
    SCALAR_TRY(check_call(sae, x, values, indices, n_tokens, fn));
    if (sae->cfg.architecture != SCALAR_SAE_TOPK)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: sparse codes need a TopK SAE (use "
                                 "scalar_sae_encode_dense)", fn);
    if (n_tokens == 0)
        return SCALAR_OK;
    int64_t floats = scalar__sae_encode_scratch(sae, n_tokens);
    float *scratch = scalar__alloc(sae->ctx, (size_t)floats * sizeof(float), fn);
    if (!scratch)
        return SCALAR_E_NOMEM;
    scalar_status s = scalar__sae_encode_topk(sae, x, n_tokens, values, indices, NULL, scratch);
    scalar__free(sae->ctx, scratch);
    return s;
}

scalar_status scalar_sae_encode_dense(const scalar_sae *sae, const float *x, int64_t n_tokens,
                                      float *codes)
{
    static const char fn[] = "scalar_sae_encode_dense";
    SCALAR_TRY(check_call(sae, x, codes, codes, n_tokens, fn));
    if (n_tokens == 0)
        return SCALAR_OK;
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae, k = sae->cfg.k;
    int64_t blk = block_rows(d_sae, n_tokens);
    int topk = sae->cfg.architecture == SCALAR_SAE_TOPK;
    size_t scratch = (size_t)(blk * d_in) * sizeof(float) +
                     (topk ? (size_t)(blk * k) * (sizeof(float) + sizeof(int32_t)) : 0);
    float *xc = scalar__alloc(sae->ctx, scratch, fn);
    if (!xc)
        return SCALAR_E_NOMEM;
    float *vals = xc + blk * d_in;
    int32_t *idx = (int32_t *)(vals + blk * k);
    scalar_backend *be = scalar_ctx_backend(sae->ctx);
    scalar_status s = SCALAR_OK;
    for (int64_t t0 = 0; t0 < n_tokens && s == SCALAR_OK; t0 += blk) {
        int64_t rows = n_tokens - t0 < blk ? n_tokens - t0 : blk;
        float *block = codes + t0 * d_sae;
        s = encode_block(sae, xc, block, d_sae, x + t0 * d_in, rows);
        if (s != SCALAR_OK || !topk)
            continue;
        s = scalar_backend_topk_rows(be, vals, idx, block, rows, d_sae, k);
        for (int64_t r = 0; s == SCALAR_OK && r < rows; r++) {
            float *row = block + r * d_sae;
            memset(row, 0, (size_t)d_sae * sizeof *row);
            for (int64_t j = 0; j < k; j++)
                row[idx[r * k + j]] = vals[r * k + j];
        }
    }
    scalar__free(sae->ctx, xc);
    return s;
}

scalar_status scalar_sae_decode(const scalar_sae *sae, const float *values,
                                const int32_t *indices, int64_t n_tokens, int64_t k, float *x_hat)
{
    static const char fn[] = "scalar_sae_decode";
    SCALAR_TRY(check_call(sae, values, indices, x_hat, n_tokens, fn));
    if (k < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: k %lld is negative", fn, (long long)k);
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t j = 0; j < k; j++)
            if (indices[t * k + j] >= d_sae)
                return scalar__error_set(SCALAR_E_INVALID_ARG,
                                         "%s: token %lld code %lld: latent %d >= d_sae %lld", fn,
                                         (long long)t, (long long)j, (int)indices[t * k + j],
                                         (long long)d_sae);
    return scalar_backend_sparse_decode(scalar_ctx_backend(sae->ctx), x_hat, values, indices,
                                        sae->W_dec, sae->b_dec, n_tokens, k, d_sae, d_in);
}

scalar_status scalar_sae_decode_dense(const scalar_sae *sae, const float *codes, int64_t n_tokens,
                                      float *x_hat)
{
    static const char fn[] = "scalar_sae_decode_dense";
    SCALAR_TRY(check_call(sae, codes, x_hat, x_hat, n_tokens, fn));
    if (n_tokens == 0)
        return SCALAR_OK;
    int64_t d_in = sae->cfg.d_in, d_sae = sae->cfg.d_sae;
    scalar_backend *be = scalar_ctx_backend(sae->ctx);
    SCALAR_TRY(scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n_tokens, d_in, d_sae,
                                    1.0f, codes, d_sae, sae->W_dec, d_in, 0.0f, x_hat, d_in));
    return scalar_backend_bias_add(be, x_hat, sae->b_dec, n_tokens, d_in);
}
