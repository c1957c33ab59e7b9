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

SCALAR_END_DECL

/** @} */

#endif /* SCALAR_EVAL_H */
