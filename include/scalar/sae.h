/**
 * @file sae.h
 * @brief Sparse autoencoder dictionaries: TopK, standard (ReLU) and JumpReLU
 *        SAEs on one hook point, in SAELens' on-disk layout.
 *
 * @defgroup scalar_sae SAE dictionaries
 * @brief The `scalar_sae` handle: one dictionary of `d_sae` latents over a
 *        `d_in`-wide activation.
 *
 * With `x` one token's activation (`d_in` floats):
 * - pre-activation: `pre = W_enc^T (x - b_dec) + b_enc` (the `- b_dec` only when
 *   `apply_b_dec_to_input` is set, as SAELens' default and SPEC.md);
 * - codes: TopK `f = topk_k(ReLU(pre))`, exactly k latents per token, larger
 *   values first, equal values lower index first (so when fewer than k
 *   pre-activations are positive, the kept zeros are the lowest indices;
 *   SAELens keeps the largest negative ones, and the values agree); standard
 *   `f = ReLU(pre)`; JumpReLU `f = ReLU(pre)` where `pre > threshold`, else 0
 *   (SAELens' formula);
 * - reconstruction: `x_hat = W_dec^T f + b_dec`.
 *
 * Shapes follow SAELens: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`,
 * `W_dec [d_sae, d_in]`, `b_dec [d_in]`, `threshold [d_sae]` (JumpReLU only).
 * Activations and codes are token-major float arrays.
 *
 * An SAE is read-only after creation or loading (except through
 * scalar_sae_param_write()) and may be shared across threads; encode and decode
 * keep their scratch per call.
 * @{
 */
#ifndef SCALAR_SAE_H
#define SCALAR_SAE_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"

SCALAR_BEGIN_DECL

/** @name Architectures (frozen values)
 * @{ */
#define SCALAR_SAE_TOPK 0     /**< ReLU, then the k largest (SAELens "topk"). */
#define SCALAR_SAE_STANDARD 1 /**< ReLU (SAELens "standard"). */
#define SCALAR_SAE_JUMPRELU 2 /**< `pre` where `pre > threshold`, else 0 (SAELens "jumprelu"). */
/** @} */

/**
 * @brief The shape and kind of an SAE.  Fill with scalar_sae_config_init()
 *        (SPEC.md's toy TopK SAE), then change fields.
 */
typedef struct scalar_sae_config {
    size_t struct_size;           /**< Set by scalar_sae_config_init(). */
    int32_t architecture;         /**< ::SCALAR_SAE_TOPK (default), ::SCALAR_SAE_STANDARD, ::SCALAR_SAE_JUMPRELU. */
    int32_t d_in;                 /**< Activation width (toy: 64). */
    int32_t d_sae;                /**< Latents (toy: 512). */
    int32_t k;                    /**< Latents kept per token, TopK only (toy: 10); 1 <= k <= d_sae. */
    int32_t apply_b_dec_to_input; /**< 1 (default): encode `x - b_dec`; 0: encode `x`. */
    int32_t reserved0;            /**< Zero. */
    const char *hook_name;        /**< The hook point it reads (`blocks.0.hook_mlp_out`), or NULL; copied. */
    uint64_t seed;                /**< Initialisation seed of scalar_sae_create() (default 0). */
} scalar_sae_config;

/** An SAE dictionary (opaque). */
typedef struct scalar_sae scalar_sae;

/**
 * @brief Fill @p config with SPEC.md's toy TopK SAE: d_in 64, d_sae 512, k 10,
 *        `apply_b_dec_to_input` 1, no hook name, seed 0.
 * @param[out] config      the struct to fill.
 * @param[in]  struct_size sizeof(*config) as the caller compiled it.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, or smaller than version 1).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_config_init(scalar_sae_config *config, size_t struct_size);

/**
 * @brief sizeof(::scalar_sae_config) as the library was built (bindings check it).
 * @return the size in bytes (48 on LP64).
 * @since 0.2
 */
SCALAR_API size_t scalar_sae_config_size(void);

/**
 * @brief Create an SAE with SPEC.md's initialisation: `W_dec` Kaiming-uniform,
 *        `W_enc = W_dec^T`, zero biases, JumpReLU thresholds zero.
 *
 * `W_dec` is drawn as PyTorch's `kaiming_uniform_` with its defaults on a
 * `[d_sae, d_in]` tensor: uniform in `[-b, b)`, `b = sqrt(6 / d_in)`.  The
 * random stream comes from the context seed and @p config->seed, so equal
 * seeds give equal SAEs and different seeds independent ones.
 *
 * @param[out] out    receives the SAE; NULL on failure.
 * @param[in]  ctx    the context; the SAE holds a reference, so the caller may
 *                    free its own first.
 * @param[in]  config the shape (struct_size set by scalar_sae_config_init()).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, sizes out of range, k not in
 *         1..d_sae, unknown architecture, nonzero reserved field);
 *         ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_create(scalar_sae **out, scalar_ctx *ctx,
                                           const scalar_sae_config *config);

/**
 * @brief Load an SAE saved by SAELens (or scalar_sae_save()).
 *
 * @p path is a folder holding `cfg.json` and `sae_weights.safetensors`.
 * cfg.json gives `d_in`, `d_sae`, the architecture (`architecture`: "topk",
 * "standard", "jumprelu"; absent means "standard"), `k` (top level or in
 * `activation_fn_kwargs`), `hook_name` (top level or under `metadata`) and
 * `apply_b_dec_to_input` (default true).  Settings we do not honour are refused
 * with a message: a `normalize_activations` other than "none", an
 * `activation_fn` other than "relu" or "topk" (or "topk" with another
 * architecture), a `dtype` other than float32, float16 or bfloat16.  Tensors
 * in F32, F16 or BF16 are read as float.  A missing or unexpected tensor is
 * ::SCALAR_E_FORMAT, a shape that disagrees with cfg.json ::SCALAR_E_SHAPE, a
 * non-finite value ::SCALAR_E_NUMERIC, each naming the file and the tensor.
 *
 * @param[out] out  receives the SAE; NULL on failure.
 * @param[in]  ctx  the context; the SAE holds a reference.
 * @param[in]  path the folder.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_FORMAT;
 *         ::SCALAR_E_SHAPE; ::SCALAR_E_NUMERIC; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_load(scalar_sae **out, scalar_ctx *ctx, const char *path);

/**
 * @brief Save in SAELens' layout: `DIR/sae_weights.safetensors` (F32) and then
 *        `DIR/cfg.json`, each written atomically (temporary file, fsync,
 *        rename); DIR is created if missing (its parent must exist).  Loading
 *        the files back gives the same bits.
 * @param[in] sae borrowed.
 * @param[in] dir the folder.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_save(const scalar_sae *sae, const char *dir);

/**
 * @brief Free an SAE; NULL is a no-op.
 * @param[in] sae owned.
 * @since 0.2
 */
SCALAR_API void scalar_sae_free(scalar_sae *sae);

/**
 * @brief The SAE's configuration; `hook_name` is borrowed from the SAE.
 * @param[in]  sae    borrowed.
 * @param[out] config the struct to fill (its struct_size set by the caller, or
 *                    by scalar_sae_config_init()).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_get_config(const scalar_sae *sae, scalar_sae_config *config);

/**
 * @brief Copy the parameter @p name (`W_enc`, `b_enc`, `W_dec`, `b_dec`,
 *        `threshold`) into @p out, row-major in the shapes above.
 * @param[in]  sae      borrowed.
 * @param[in]  name     the SAELens tensor name.
 * @param[out] out      receives the values.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, unknown name, `threshold`
 *         of a non-JumpReLU SAE); ::SCALAR_E_BUFSIZE (capacity too small).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_param_read(const scalar_sae *sae, const char *name,
                                               float *out, size_t capacity);

/**
 * @brief Overwrite the parameter @p name with @p n floats (exactly its size).
 * @param[in,out] sae  the SAE; no other thread may use it meanwhile.
 * @param[in]     name as scalar_sae_param_read().
 * @param[in]     in   the values; every one finite.
 * @param[in]     n    floats at @p in.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, unknown name, wrong @p n);
 *         ::SCALAR_E_NUMERIC (a non-finite value; nothing is written).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_param_write(scalar_sae *sae, const char *name,
                                                const float *in, size_t n);

/**
 * @brief Sparse codes of a TopK SAE: for every token the k kept latents,
 *        larger values first (equal values: lower index first).
 *
 * Tokens go through the encoder in blocks, so no `[n_tokens, d_sae]` matrix is
 * formed.  A kept value can be 0 when fewer than k pre-activations are
 * positive.
 *
 * @param[in]  sae      borrowed; architecture ::SCALAR_SAE_TOPK.
 * @param[in]  x        [n_tokens, d_in] activations.
 * @param[in]  n_tokens tokens, >= 0.
 * @param[out] values   [n_tokens, k] code values.
 * @param[out] indices  [n_tokens, k] latent indices.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL with n_tokens > 0, not a
 *         TopK SAE); ::SCALAR_E_NOMEM; backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_encode(const scalar_sae *sae, const float *x,
                                           int64_t n_tokens, float *values, int32_t *indices);

/**
 * @brief Dense codes of any architecture: `[n_tokens, d_sae]`, zeros where a
 *        latent is off (for a TopK SAE, all but k per token).
 * @param[in]  sae      borrowed.
 * @param[in]  x        [n_tokens, d_in].
 * @param[in]  n_tokens tokens, >= 0.
 * @param[out] codes    [n_tokens, d_sae].
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM; backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_encode_dense(const scalar_sae *sae, const float *x,
                                                 int64_t n_tokens, float *codes);

/**
 * @brief Reconstruction from sparse codes: `x_hat[t] = b_dec + sum_j
 *        values[t, j] W_dec[indices[t, j]]`, a gather-accumulate of k decoder
 *        rows per token (no dense GEMM).
 * @param[in]  sae      borrowed.
 * @param[in]  values   [n_tokens, k].
 * @param[in]  indices  [n_tokens, k], each in [0, d_sae), or negative to skip.
 * @param[in]  n_tokens tokens, >= 0.
 * @param[in]  k        codes per token, >= 0.
 * @param[out] x_hat    [n_tokens, d_in].
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, an index >= d_sae: the
 *         message names the token and the value); backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_decode(const scalar_sae *sae, const float *values,
                                           const int32_t *indices, int64_t n_tokens, int64_t k,
                                           float *x_hat);

/**
 * @brief Reconstruction from dense codes: `x_hat = codes W_dec + b_dec` (a GEMM).
 * @param[in]  sae      borrowed.
 * @param[in]  codes    [n_tokens, d_sae].
 * @param[in]  n_tokens tokens, >= 0.
 * @param[out] x_hat    [n_tokens, d_in].
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_decode_dense(const scalar_sae *sae, const float *codes,
                                                 int64_t n_tokens, float *x_hat);

SCALAR_END_DECL

/** @} */

#endif /* SCALAR_SAE_H */
