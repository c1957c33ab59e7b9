/**
 * @file eval.h
 * @brief Evaluation: the quality numbers of SAEs on a model (L0, FVU, dead
 *        latents, CE-loss increase and KL with the reconstruction spliced in).
 *
 * @defgroup scalar_eval Evaluation
 * @brief SPEC.md section 4's numbers reported beside SCALAR.
 *
 * Data: non-overlapping windows of `seq` tokens of a dataset split (window j
 * holds tokens `j*seq .. j*seq+seq-1` and predicts the next ones), `batch`
 * windows per forward.  Each SAE reads the activation at its hook point
 * (`hook_name` of its config, `blocks.{i}.hook_*`, width n_embd).  Splicing
 * replaces that activation by the SAE's reconstruction for the rest of the
 * forward (at `hook_mlp_out` the reconstruction is added to the clean
 * `resid_mid`; at `hook_resid_post` it is the residual entering the next
 * block), as in SPEC.md's placement table.
 * @{
 */
#ifndef SCALAR_EVAL_H
#define SCALAR_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"
#include "data.h"
#include "model.h"
#include "sae.h"

SCALAR_BEGIN_DECL

/** @name SAE metric indices (frozen values): positions in the output rows
 * @{ */
#define SCALAR_SAE_METRIC_L0 0          /**< Mean active latents per token. */
#define SCALAR_SAE_METRIC_FVU 1         /**< `sum |x - x_hat|^2 / sum |x - mean(x)|^2` over the tokens. */
#define SCALAR_SAE_METRIC_MSE 2         /**< Mean over tokens of `|x - x_hat|^2` (the training loss). */
#define SCALAR_SAE_METRIC_DEAD 3        /**< Latents never active over the tokens. */
#define SCALAR_SAE_METRIC_CE_CLEAN 4    /**< The model's mean cross-entropy (nats/token), nothing spliced. */
#define SCALAR_SAE_METRIC_CE_SPLICED 5  /**< Mean cross-entropy with the reconstruction spliced. */
#define SCALAR_SAE_METRIC_CE_INCREASE 6 /**< CE_SPLICED - CE_CLEAN. */
#define SCALAR_SAE_METRIC_KL 7          /**< Mean per-token KL(clean || spliced), nats. */
#define SCALAR_SAE_METRIC_COUNT 8       /**< Entries per row. */
/** @} */

/**
 * @brief SAE quality numbers on a model: each SAE alone, and all of them
 *        spliced at once (the compound numbers).
 *
 * One clean forward per batch gives the clean cross-entropy and logits and,
 * at every SAE's hook, L0, the squared error, the variance and which latents
 * fire; then one forward per SAE with its reconstruction spliced, and one with
 * all spliced together (downstream SAEs then read activations that upstream
 * reconstructions changed).
 *
 * @param[in]  model       borrowed.
 * @param[in]  data        borrowed; its token ids must be < the model's vocab.
 * @param[in]  split       a SCALAR_SPLIT_* value.
 * @param[in]  saes        [n_saes] borrowed; each with a hook name the model has
 *                         and d_in = n_embd; any architecture.
 * @param[in]  n_saes      >= 1.
 * @param[in]  batch       windows per forward, >= 1.
 * @param[in]  seq         tokens per window, 1 .. block_size.
 * @param[in]  max_windows cap on the windows (0: the whole split).
 * @param[out] out_each    [n_saes * ::SCALAR_SAE_METRIC_COUNT], row i for
 *                         saes[i]; may be NULL (no single-SAE splices run).
 * @param[out] out_all     [::SCALAR_SAE_METRIC_COUNT]: the CE and KL entries of
 *                         the compound splice (L0, FVU, MSE, DEAD are NaN); may
 *                         be NULL (no compound splice runs).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, a hook the model lacks,
 *         a width that is not n_embd, a repeated hook, the split shorter than
 *         one window); ::SCALAR_E_NOMEM; model and backend errors.
 * @note Thread-safe for distinct outputs: the model, data and SAEs are only read.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_sae_metrics(const scalar_model *model, const scalar_dataset *data,
                                            int32_t split, const scalar_sae *const *saes,
                                            int32_t n_saes, int64_t batch, int64_t seq,
                                            int64_t max_windows, double *out_each,
                                            double *out_all);

/* ===================================================================== */
/*  The SCALAR evaluator: interaction sparsity of one SAE pair            */
/* ===================================================================== */

/** @name Paths between the two SAEs of a pair (frozen values)
 * @{ */
#define SCALAR_PATH_FF_LAYER 0 /**< `mlp_in` L -> `mlp_out` L through the MLP (SPEC's FF layer). */
#define SCALAR_PATH_FF_BLOCK 1 /**< `resid_mid` L -> `resid_post` L, `x + mlp(ln_2(x))` (FF block). */
#define SCALAR_PATH_BLOCK 2    /**< `resid_pre` L -> `resid_post` L, the whole transformer block. */
#define SCALAR_PATH_COUNT 3    /**< Number of paths. */
/** @} */

/** @name Attribution kinds (frozen values)
 * @{ */
#define SCALAR_ATTR_GRADIENT_PATH 0 /**< SPEC.md step 1: gradients at `steps` points on the path 0 -> z, weighted. */
#define SCALAR_ATTR_JACOBIAN 1      /**< The plain Jacobian magnitude at the clean codes. */
/** @} */

/** @name Quirks of the reference implementation (bits of the options' `quirks`)
 *
 * Each reproduces one behaviour of the paper's code that SPEC.md marks
 * [quirk]; docs/evaluator.md says exactly what each changes.
 * @{ */
#define SCALAR_QUIRK_TIES 1u          /**< Top-k keeps every value >= the k-th (ties keep more than k). */
#define SCALAR_QUIRK_S1_ZERO 2u       /**< With steps = 1 the only point is 0 (`linspace(0, 1, 1)`), not z. */
#define SCALAR_QUIRK_NORM_WEIGHT 4u   /**< Attribution weights `||z||_2 / S` per token instead of `z_i / S`. */
#define SCALAR_QUIRK_CURVE_TOPK 8u    /**< Subcircuit codes: entries >= the k-th largest, no ReLU. */
#define SCALAR_QUIRK_FULL_CIRCUIT 16u /**< The full circuit is the reference's hooked run (per path), used at N = all edges. */
#define SCALAR_QUIRK_GRID 32u         /**< The 35-point grid stops at 2^18 for every pair. */
#define SCALAR_QUIRKS_PARITY 63u      /**< Every quirk: `parity` mode, the paper's numbers. */
/** @} */

/** @name Curves of an evaluator (frozen values)
 * @{ */
#define SCALAR_CURVE_KL 0      /**< KL(clean model || subcircuit), the SCALAR curve. */
#define SCALAR_CURVE_KL_FULL 1 /**< KL(full SAE circuit || subcircuit), the paper's appendix metric. */
/** @} */

/** @name Score indices (frozen values): positions in scalar_evaluator_scores()' output
 * @{ */
#define SCALAR_SCORE_S_ABS 0         /**< Trapezoid of the mean KL over the grid (nats x edges). */
#define SCALAR_SCORE_S_ABS_ERR 1     /**< Its half-width from the bootstrap interval. */
#define SCALAR_SCORE_S_REL 2         /**< S_ABS / (F_U * F_D); the paper prints it x 2^18. */
#define SCALAR_SCORE_S_REL_ERR 3     /**< S_ABS_ERR / (F_U * F_D). */
#define SCALAR_SCORE_FULL_S_ABS 4    /**< S_ABS of the appendix curve (KL to the full circuit). */
#define SCALAR_SCORE_FULL_S_ABS_ERR 5 /**< Its half-width. */
#define SCALAR_SCORE_FULL_KL 6       /**< Mean KL(clean model || full SAE circuit). */
#define SCALAR_SCORE_N_EDGES 7       /**< F_U * F_D. */
#define SCALAR_SCORE_ATTR_TOKENS 8   /**< Tokens the attribution summed over. */
#define SCALAR_SCORE_EVAL_TOKENS 9   /**< Tokens of the curve. */
#define SCALAR_SCORE_COUNT 10        /**< Entries. */
/** @} */

/**
 * @brief Options of an evaluator.  Fill with scalar_evaluator_options_init()
 *        (clean mode, SPEC.md's settings), then change fields.
 */
typedef struct scalar_evaluator_options {
    size_t struct_size;  /**< Set by scalar_evaluator_options_init(). */
    uint32_t quirks;     /**< SCALAR_QUIRK_* bits: 0 = `clean` (default), ::SCALAR_QUIRKS_PARITY = `parity`. */
    int32_t attribution; /**< ::SCALAR_ATTR_GRADIENT_PATH (default) or ::SCALAR_ATTR_JACOBIAN. */
    int32_t steps;       /**< Points on the gradient path, >= 1 (default 5). */
    int32_t bootstrap;   /**< Bootstrap resamples of the tokens, >= 0 (default 1000; 0: no interval). */
    double confidence;   /**< Of the interval, in (0, 1) (default 0.95). */
    uint64_t seed;       /**< Seed of the bootstrap (default 0). */
    uint64_t rank_seed;  /**< Seed of the order of zero-score edges (default 125, the reference's). */
    int32_t batch;       /**< Sequences per chunk of work, >= 1 (default 8): memory against speed. */
    int32_t reserved0;   /**< Zero. */
} scalar_evaluator_options;

/**
 * @brief Fill @p options with the defaults (clean mode, gradient path with 5
 *        steps, 1000 bootstrap resamples at 95%, rank seed 125).
 * @param[out] options     the struct to fill.
 * @param[in]  struct_size sizeof(*options) as the caller compiled it.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, or smaller than version 1).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_options_init(scalar_evaluator_options *options,
                                                       size_t struct_size);

/**
 * @brief sizeof(scalar_evaluator_options) as this library was compiled.
 * @return the size in bytes.
 * @since 0.2
 */
SCALAR_API size_t scalar_evaluator_options_size(void);

/** The SCALAR evaluator of one SAE pair on a model (opaque).  One per thread. */
typedef struct scalar_evaluator scalar_evaluator;

/**
 * @brief Make an evaluator for the pair (@p upstream, @p downstream) across
 *        @p path at @p layer.
 *
 * Both SAEs must be TopK with `d_in` = n_embd; an SAE with a hook name must
 * read the hook the path needs (`blocks.L.hook_mlp_in` / `hook_mlp_out` for
 * ::SCALAR_PATH_FF_LAYER, `hook_resid_mid` / `hook_resid_post` for
 * ::SCALAR_PATH_FF_BLOCK, `hook_resid_pre` / `hook_resid_post` for
 * ::SCALAR_PATH_BLOCK).
 *
 * @param[out] out        receives the evaluator, NULL on failure.
 * @param[in]  model      borrowed; the evaluator holds a reference.
 * @param[in]  upstream   borrowed: must outlive the evaluator.
 * @param[in]  downstream borrowed: must outlive the evaluator.
 * @param[in]  path       a SCALAR_PATH_* value.
 * @param[in]  layer      0 .. n_layer - 1.
 * @param[in]  options    NULL for the defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, bad option, an SAE that
 *         is not TopK, a width or hook that does not fit, k > 32);
 *         ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_create(scalar_evaluator **out, scalar_model *model,
                                                 const scalar_sae *upstream,
                                                 const scalar_sae *downstream, int32_t path,
                                                 int32_t layer,
                                                 const scalar_evaluator_options *options);

/**
 * @brief Free an evaluator; NULL does nothing.
 * @param[in] ev owned.
 * @since 0.2
 */
SCALAR_API void scalar_evaluator_free(scalar_evaluator *ev);

/**
 * @brief Step 1: add the attribution of @p n_seq sequences to the edge
 *        scores A [F_U, F_D] (sums of squares accumulate across calls;
 *        the scores are their square roots).
 *
 * Per-token paths use the exact Jacobian `A diag(g) B` of the path at every
 * point (only downstream latents the top-k keeps); the transformer block uses
 * vector-Jacobian products of the block, batched over (latent, sequence)
 * pairs where the latent is kept somewhere in the sequence.
 *
 * @param[in] ev    borrowed.
 * @param[in] ids   [n_seq, seq] token ids.
 * @param[in] n_seq >= 1.
 * @param[in] seq   1 .. block_size.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM;
 *         ::SCALAR_E_NUMERIC (a top-k with more tied codes than 2k); model
 *         and backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_attribute(scalar_evaluator *ev, const int32_t *ids,
                                                    int64_t n_seq, int64_t seq);

/**
 * @brief Copy the edge scores A [F_U, F_D] (row-major, `A[i * F_D + j]`).
 * @param[in]  ev       borrowed.
 * @param[out] out      receives F_U * F_D floats.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_read_attribution(const scalar_evaluator *ev, float *out,
                                                           size_t capacity);

/**
 * @brief Step 2: the edge order of the current scores (flat indices
 *        `i * F_D + j`: positive scores descending, equal scores by index,
 *        then the zeros in the order of `rank_seed`).
 * @param[in]  ev       borrowed.
 * @param[out] out      receives F_U * F_D indices.
 * @param[in]  capacity entries at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_read_order(const scalar_evaluator *ev, int64_t *out,
                                                     size_t capacity);

/**
 * @brief The strongest @p n edges as a list for circuit tools.
 * @param[in]  ev         borrowed.
 * @param[in]  n          edges wanted; fewer are written if fewer have a positive score.
 * @param[out] upstream   [n] upstream latent of each edge.
 * @param[out] downstream [n] downstream latent.
 * @param[out] weight     [n] its score.
 * @param[out] n_written  receives the count written.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_top_edges(const scalar_evaluator *ev, int64_t n,
                                                    int32_t *upstream, int32_t *downstream,
                                                    float *weight, int64_t *n_written);

/**
 * @brief Steps 3 and 4: the subcircuit curve on @p n_seq sequences, its
 *        bootstrap intervals and the scores.
 *
 * For every N of the grid, the top-N edges give edge-restricted downstream
 * codes, which are kept by top-k, decoded, spliced, and run to the logits;
 * the per-token KL to the clean model (and to the full SAE circuit) is
 * recorded.  Replaces the results of an earlier call.
 *
 * @param[in] ev      borrowed.
 * @param[in] ids     [n_seq, seq] token ids (SPEC: the first 50 windows of 128
 *                    of the val split).
 * @param[in] n_seq   >= 1.
 * @param[in] seq     1 .. block_size.
 * @param[in] order   an edge order (flat indices, distinct, each < F_U * F_D;
 *                    the first N are kept at grid point N, so it must be at
 *                    least as long as the last grid point below the edge
 *                    count), or NULL for the attribution's order.
 * @param[in] n_order entries of @p order.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM;
 *         ::SCALAR_E_NUMERIC; model and backend errors.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_curve(scalar_evaluator *ev, const int32_t *ids,
                                                int64_t n_seq, int64_t seq, const int64_t *order,
                                                int64_t n_order);

/**
 * @brief Points of the grid of this pair and mode.
 * @param[in] ev borrowed.
 * @return the count (35 in parity mode), or -1 for NULL.
 * @since 0.2
 */
SCALAR_API int64_t scalar_evaluator_n_points(const scalar_evaluator *ev);

/**
 * @brief Copy a curve of the last scalar_evaluator_curve(): its grid, mean
 *        and interval per point.
 * @param[in]  ev       borrowed.
 * @param[in]  which    ::SCALAR_CURVE_KL or ::SCALAR_CURVE_KL_FULL.
 * @param[out] edges    [n_points] N of each point, or NULL.
 * @param[out] mean     [n_points] mean KL, or NULL.
 * @param[out] lo       [n_points] lower end of the interval (NaN without bootstrap), or NULL.
 * @param[out] hi       [n_points] upper end, or NULL.
 * @param[in]  capacity entries at each non-NULL output.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (no curve yet); ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_read_curve(const scalar_evaluator *ev, int32_t which,
                                                     int64_t *edges, double *mean, double *lo,
                                                     double *hi, size_t capacity);

/**
 * @brief Copy the per-token KL of a curve: [n_points, n_tokens] floats.
 * @param[in]  ev       borrowed.
 * @param[in]  which    ::SCALAR_CURVE_KL or ::SCALAR_CURVE_KL_FULL.
 * @param[out] out      receives n_points * n_tokens floats (token order: sequence-major).
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_read_token_kl(const scalar_evaluator *ev, int32_t which,
                                                        float *out, size_t capacity);

/**
 * @brief The scores of the last curve (SCALAR_SCORE_* positions).
 * @param[in]  ev       borrowed.
 * @param[out] out      receives ::SCALAR_SCORE_COUNT doubles.
 * @param[in]  capacity doubles at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (no curve yet); ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_evaluator_scores(const scalar_evaluator *ev, double *out,
                                                 size_t capacity);

SCALAR_END_DECL

/** @} */

#endif /* SCALAR_EVAL_H */
