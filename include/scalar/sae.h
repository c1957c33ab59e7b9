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

/* ===================================================================== */
/*  Staircase groups: one shared dictionary, prefix slices per SAE        */
/* ===================================================================== */

/** @name Staircase training modes (frozen values)
 * @{ */
#define SCALAR_SAE_GROUP_SHARE 0  /**< SAE j's gradient reaches its whole prefix `[0, n_j)` (the paper's). */
#define SCALAR_SAE_GROUP_DETACH 1 /**< SAE j trains only its own latents `[n_{j-1}, n_j)`. */
/** @} */

/**
 * A Staircase group (opaque): one shared `W_enc [d_in, n_max]` and
 * `W_dec [n_max, d_in]`; member SAE j uses the first `n_j` latents
 * (`W_enc[:, :n_j]`, `W_dec[:n_j, :]`, sizes strictly increasing, `n_max` the
 * last) with its own `b_enc [n_j]` and `b_dec [d_in]` and its own hook point.
 * A group of one member is a plain TopK SAE; SPEC.md's `noshare` control is a
 * set of one-member groups.  Every member is a TopK SAE with the same `k`.
 *
 * Saved as a folder: `cfg.json` (`"format": "libscalar.sae_group"`, d_in, k,
 * mode, `apply_b_dec_to_input`, and per member `d_sae` and `hook_name`) and
 * `sae_weights.safetensors` holding the shared `W_enc` and `W_dec` once and
 * `b_enc.{j}`, `b_dec.{j}` per member: the names scalar_sae_group_param_read()
 * takes.
 */
typedef struct scalar_sae_group scalar_sae_group;

/**
 * @brief Create a group with SPEC.md's initialisation of one SAE of `n_max`
 *        latents (`W_dec` Kaiming-uniform, `W_enc = W_dec^T`, zero biases).
 *
 * @param[out] out        receives the group; NULL on failure.
 * @param[in]  ctx        the context; the group holds a reference.
 * @param[in]  base       d_in, k, `apply_b_dec_to_input` and the seed (the same
 *                        seed and `d_sae = n_max` give the matrices of
 *                        scalar_sae_create()); architecture ::SCALAR_SAE_TOPK;
 *                        `d_sae` must equal the largest size; `hook_name` unused.
 * @param[in]  n_members  1 to 64.
 * @param[in]  sizes      [n_members] latents per member, strictly increasing,
 *                        each >= k.
 * @param[in]  hook_names [n_members] hook point per member (copied), or NULL
 *                        (none); an entry may be NULL.
 * @param[in]  mode       ::SCALAR_SAE_GROUP_SHARE or ::SCALAR_SAE_GROUP_DETACH.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, sizes not increasing,
 *         unknown mode, not TopK, a bad base); ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_create(scalar_sae_group **out, scalar_ctx *ctx,
                                                 const scalar_sae_config *base, int32_t n_members,
                                                 const int32_t *sizes,
                                                 const char *const *hook_names, int32_t mode);

/**
 * @brief Load a group saved by scalar_sae_group_save().
 * @param[out] out  receives the group; NULL on failure.
 * @param[in]  ctx  the context; the group holds a reference.
 * @param[in]  path the folder.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_FORMAT
 *         (not a group folder, a missing or unexpected tensor); ::SCALAR_E_SHAPE;
 *         ::SCALAR_E_NUMERIC (a non-finite value); ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_load(scalar_sae_group **out, scalar_ctx *ctx,
                                               const char *path);

/**
 * @brief Save the group (weights, then cfg.json, each atomically); DIR is
 *        created if missing.  Loading it back gives the same bits.
 * @param[in] group borrowed.
 * @param[in] dir   the folder.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_save(const scalar_sae_group *group, const char *dir);

/**
 * @brief Release the caller's reference; the memory goes when the member
 *        handles of scalar_sae_group_get_sae() are freed too.  NULL is a no-op.
 * @param[in] group owned.
 * @since 0.2
 */
SCALAR_API void scalar_sae_group_free(scalar_sae_group *group);

/**
 * @brief Number of member SAEs.
 * @param[in] group borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int32_t scalar_sae_group_n_members(const scalar_sae_group *group);

/**
 * @brief The training mode (::SCALAR_SAE_GROUP_SHARE or ::SCALAR_SAE_GROUP_DETACH).
 * @param[in] group borrowed.
 * @return the mode; -1 for NULL.
 * @since 0.2
 */
SCALAR_API int32_t scalar_sae_group_mode(const scalar_sae_group *group);

/**
 * @brief A handle on member @p index: a TopK ::scalar_sae of `d_sae = n_j`
 *        that views the group's memory (nothing is copied).
 *
 * Every scalar_sae_* function takes it: encode, decode, scalar_sae_save()
 * (which writes the member alone, as a plain SAELens SAE), and
 * scalar_sae_param_write(), which writes into the shared matrices.  The handle
 * holds a reference on the group; release it with scalar_sae_free().
 *
 * @param[out] out   receives the handle; NULL on failure.
 * @param[in]  group borrowed.
 * @param[in]  index 0 .. n_members - 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_get_sae(scalar_sae **out, scalar_sae_group *group,
                                                  int32_t index);

/**
 * @brief Copy the group parameter @p name: `W_enc` [d_in, n_max], `W_dec`
 *        [n_max, d_in], `b_enc.{j}` [n_j], `b_dec.{j}` [d_in].
 * @param[in]  group    borrowed.
 * @param[in]  name     the tensor name.
 * @param[out] out      receives the values.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (unknown name); ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_param_read(const scalar_sae_group *group,
                                                     const char *name, float *out,
                                                     size_t capacity);

/**
 * @brief Overwrite the group parameter @p name with exactly its size in floats.
 * @param[in,out] group no other thread may use it meanwhile.
 * @param[in]     name  as scalar_sae_group_param_read().
 * @param[in]     in    the values, every one finite.
 * @param[in]     n     floats at @p in.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NUMERIC (nothing written).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_group_param_write(scalar_sae_group *group, const char *name,
                                                      const float *in, size_t n);

/* ===================================================================== */
/*  Training                                                              */
/* ===================================================================== */

/**
 * @brief Adam and schedule settings of the SAE trainer.  Defaults
 *        (scalar_sae_trainer_options_init()) are SPEC.md's toy recipe.
 */
typedef struct scalar_sae_trainer_options {
    size_t struct_size;     /**< Set by scalar_sae_trainer_options_init(). */
    int64_t warmup_steps;   /**< Linear warmup steps (750). */
    int64_t max_steps;      /**< Step at which the cosine reaches min_lr (7500). */
    float lr;               /**< Peak learning rate (1e-3). */
    float min_lr;           /**< Final learning rate (1e-4). */
    float beta1;            /**< Adam beta1 (0.9). */
    float beta2;            /**< Adam beta2 (0.95). */
    float eps;              /**< Adam epsilon (1e-8). */
    float weight_decay;     /**< Decoupled decay on W_enc and W_dec (0). */
    float grad_clip;        /**< One global gradient-norm clip over every SAE; 0 disables (1.0). */
    int32_t renorm_decoder; /**< 1: rescale decoder rows to unit norm after each step (0). */
} scalar_sae_trainer_options;

/**
 * @brief Fill @p options with the defaults.
 * @param[out] options     the struct.
 * @param[in]  struct_size sizeof(*options) as compiled.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_options_init(scalar_sae_trainer_options *options,
                                                         size_t struct_size);

/**
 * @brief sizeof(scalar_sae_trainer_options) in this library.
 * @return the size in bytes (56 on LP64).
 * @since 0.2
 */
SCALAR_API size_t scalar_sae_trainer_options_size(void);

/**
 * Trains a set of groups concurrently (opaque): SPEC.md's loss per SAE
 * (squared error summed over d_in, mean over tokens), their sum
 * back-propagated, one global norm clip, then Adam on every group.
 * Gradients are sparse: only the k kept latents of each token carry one
 * (decoder rows and encoder columns by scatter, never a dense
 * `[n, d_sae]` gradient).  One thread at a time per trainer.
 */
typedef struct scalar_sae_trainer scalar_sae_trainer;

/** Forward declaration (scalar/model.h). */
struct scalar_model;

/**
 * @brief Create a trainer over @p n_groups groups.
 *
 * Members are numbered across the groups in order (group 0's members first);
 * that order indexes activations and losses below.  With a @p model, every
 * member needs a hook name the model has (`blocks.{i}.hook_*`, d_in = n_embd),
 * and scalar_sae_trainer_step() streams its activations from a frozen
 * forward; without one, only the `_acts` calls are available.
 *
 * @param[out] out      receives the trainer.
 * @param[in]  model    borrowed and held, never changed; or NULL.
 * @param[in]  groups   [n_groups], borrowed and held; the trainer changes their
 *                      parameters on every step.  A group may appear once.
 * @param[in]  n_groups >= 1.
 * @param[in]  max_tokens the most tokens of one step (sizes the workspaces).
 * @param[in]  options  NULL for the defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, a repeated group, a hook
 *         the model lacks, a width that is not n_embd, groups on other
 *         contexts); ::SCALAR_E_VERSION; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_create(scalar_sae_trainer **out,
                                                   const struct scalar_model *model,
                                                   scalar_sae_group *const *groups,
                                                   int32_t n_groups, int64_t max_tokens,
                                                   const scalar_sae_trainer_options *options);

/**
 * @brief Free a trainer (and its references); NULL does nothing.
 * @param[in] trainer owned.
 * @since 0.2
 */
SCALAR_API void scalar_sae_trainer_free(scalar_sae_trainer *trainer);

/**
 * @brief Total member SAEs over all groups.
 * @param[in] trainer borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int32_t scalar_sae_trainer_n_saes(const scalar_sae_trainer *trainer);

/**
 * @brief The learning rate of step @p step (0-based), as
 *        scalar_model_trainer_lr(): linear warmup, then a cosine to min_lr.
 * @param[in] trainer borrowed.
 * @param[in] step    >= 0.
 * @return the rate; 0 for NULL.
 * @since 0.2
 */
SCALAR_API float scalar_sae_trainer_lr(const scalar_sae_trainer *trainer, int64_t step);

/**
 * @brief Losses and gradients for given activations, without an update.
 *
 * Afterwards scalar_sae_trainer_read_grad() reads the gradient of the summed
 * loss (before clipping).
 *
 * @param[in]  trainer  borrowed.
 * @param[in]  acts     [n_saes] pointers, each [n_tokens, d_in] (the member's input).
 * @param[in]  n_tokens 1 .. max_tokens.
 * @param[out] losses   [n_saes] per-SAE losses; may be NULL.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_compute_acts(scalar_sae_trainer *trainer,
                                                         const float *const *acts,
                                                         int64_t n_tokens, float *losses);

/**
 * @brief One training step on given activations: scalar_sae_trainer_compute_acts(),
 *        the global clip, Adam at the scheduled rate.
 * @param[in]  trainer   borrowed.
 * @param[in]  acts      as scalar_sae_trainer_compute_acts().
 * @param[in]  n_tokens  1 .. max_tokens.
 * @param[out] losses    [n_saes]; may be NULL.
 * @param[out] grad_norm the global gradient norm before clipping; may be NULL.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NUMERIC (a non-finite
 *         loss or gradient: nothing is updated).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_step_acts(scalar_sae_trainer *trainer,
                                                      const float *const *acts, int64_t n_tokens,
                                                      float *losses, float *grad_norm);

/**
 * @brief One training step on activations of the frozen model for token ids.
 * @param[in]  trainer   borrowed; created with a model.
 * @param[in]  ids       [B, T] token ids.
 * @param[in]  B         sequences.
 * @param[in]  T         tokens per sequence; B * T <= max_tokens.
 * @param[out] losses    [n_saes]; may be NULL.
 * @param[out] grad_norm may be NULL.
 * @return as scalar_sae_trainer_step_acts(); model errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_step(scalar_sae_trainer *trainer, const int32_t *ids,
                                                 int64_t B, int64_t T, float *losses,
                                                 float *grad_norm);

/**
 * @brief Per-SAE losses of the model's activations for @p ids, no gradient
 *        (validation).
 * @param[in]  trainer borrowed; created with a model.
 * @param[in]  ids     [B, T].
 * @param[in]  B       sequences.
 * @param[in]  T       tokens per sequence; B * T <= max_tokens.
 * @param[out] losses  [n_saes].
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; model and backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_evaluate(scalar_sae_trainer *trainer,
                                                     const int32_t *ids, int64_t B, int64_t T,
                                                     float *losses);

/**
 * @brief The gradient of the last compute or step (before clipping) of group
 *        @p group's parameter @p name (names of scalar_sae_group_param_read()).
 * @param[in]  trainer  borrowed.
 * @param[in]  group    0 .. n_groups - 1.
 * @param[in]  name     the tensor name.
 * @param[out] out      receives the values.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_read_grad(const scalar_sae_trainer *trainer,
                                                      int32_t group, const char *name, float *out,
                                                      size_t capacity);

/** @name Jacobian SAE pairs (frozen values)
 * @{ */
#define SCALAR_JSAE_FF_LAYER 0 /**< Path `hook_mlp_in -> hook_mlp_out` of a layer: the MLP. */
#define SCALAR_JSAE_FF_BLOCK 1 /**< Path `hook_resid_mid -> hook_resid_post`: `x + mlp(ln_2(x))`. */
#define SCALAR_JSAE_SUM 0      /**< Penalty summed over the batch's tokens (the reference's; lambda depends on the batch size). */
#define SCALAR_JSAE_MEAN 1     /**< Penalty averaged over tokens (clean mode: lambda_mean = lambda_sum * tokens). */
/** @} */

/**
 * @brief Make SAEs @p sae_in and @p sae_out a JSAE pair: every following
 *        compute or step adds `lambda * P` to the loss.
 *
 * `P = sum_{tokens, a, b} |J[a, b]| / k_in^2` (::SCALAR_JSAE_SUM; divided by
 * the token count for ::SCALAR_JSAE_MEAN), with J the Jacobian of the
 * out-SAE's pre-activations (before ReLU and top-k) with respect to the
 * in-SAE's codes through the model's path, per token, restricted to the k_out
 * and k_in latents each SAE keeps on the clean activations (SPEC.md section
 * 2):
 * - ::SCALAR_JSAE_FF_LAYER: `J[a, b] = W_enc_out[:, a]^T W_proj^T diag(gelu'(z)) W_fc^T W_dec_in[b]`,
 *   z the MLP pre-activation at the in-SAE's input;
 * - ::SCALAR_JSAE_FF_BLOCK: the same through ln_2's Jacobian
 *   `diag(gamma)/sigma (I - 1 1^T/C - y y^T/C)`, plus the skip path
 *   `W_enc_out[:, a] . W_dec_in[b]`.
 * gelu', sigma, y and the kept index sets are constants, so the penalty's
 * gradient reaches only the kept rows of the in-SAE's `W_dec` and the kept
 * columns of the out-SAE's `W_enc`; it is derived by hand (no autograd, no
 * second derivatives) and checked against PyTorch (tests/reference/sae_ref.py).
 * The in-SAE's activations must be the path's input and the out-SAE's its
 * clean output (as the model's hook points give them).
 *
 * @param[in,out] trainer made with a model; each SAE in at most one pair.
 * @param[in]     sae_in  SAE index (member order) reading the path's input:
 *                        hook `blocks.{layer}.hook_mlp_in` (FF layer) or
 *                        `hook_resid_mid` (FF block).
 * @param[in]     sae_out SAE index reading the output: `hook_mlp_out` or
 *                        `hook_resid_post` of the same layer.
 * @param[in]     path    ::SCALAR_JSAE_FF_LAYER or ::SCALAR_JSAE_FF_BLOCK.
 * @param[in]     layer   the model layer.
 * @param[in]     lambda  the penalty's weight, finite, >= 0.
 * @param[in]     mode    ::SCALAR_JSAE_SUM or ::SCALAR_JSAE_MEAN.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (no model, bad index or hook, an
 *         SAE already paired, k above 256); ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_add_jacobian(scalar_sae_trainer *trainer,
                                                         int32_t sae_in, int32_t sae_out,
                                                         int32_t path, int32_t layer,
                                                         float lambda, int32_t mode);

/**
 * @brief Number of JSAE pairs (scalar_sae_trainer_add_jacobian()).
 * @param[in] trainer borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int32_t scalar_sae_trainer_n_jacobians(const scalar_sae_trainer *trainer);

/**
 * @brief Each pair's `lambda * P` from the last compute, step or evaluate.
 * @param[in]  trainer borrowed.
 * @param[out] out     [n_jacobians].
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_jacobian_penalties(const scalar_sae_trainer *trainer,
                                                               float *out);

/**
 * @brief Dead latents per SAE: latents that no training token activated (a
 *        kept code > 0) since the trainer was made or last reset.
 * @param[in,out] trainer borrowed.
 * @param[out]    out     [n_saes] counts.
 * @param[in]     reset   1: start a new window after reading.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_dead_latents(scalar_sae_trainer *trainer,
                                                         int64_t *out, int32_t reset);

/**
 * @brief Steps taken (restored by scalar_sae_trainer_load()).
 * @param[in] trainer borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int64_t scalar_sae_trainer_steps(const scalar_sae_trainer *trainer);

/**
 * @brief Save the optimizer state (Adam moments of every group, the step) to
 *        a safetensors file, atomically.  The groups' weights are saved apart
 *        (scalar_sae_group_save()).
 * @param[in] trainer borrowed.
 * @param[in] path    the file.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_save(const scalar_sae_trainer *trainer,
                                                 const char *path);

/**
 * @brief Restore the state written by scalar_sae_trainer_save() for groups of
 *        the same shapes; nothing changes on failure.
 * @param[in] trainer borrowed.
 * @param[in] path    the file.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_IO; ::SCALAR_E_FORMAT;
 *         ::SCALAR_E_SHAPE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_trainer_load(scalar_sae_trainer *trainer, const char *path);

SCALAR_END_DECL

/** @} */

#endif /* SCALAR_SAE_H */
