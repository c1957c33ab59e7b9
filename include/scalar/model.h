/**
 * @file model.h
 * @brief The GPT-2-style transformer: create, load and save (Hugging Face
 *        GPT-2 files), forward with hook points, backward, and training.
 *
 * @defgroup scalar_model Model
 * @brief The `scalar_model` handle (parameters), the `scalar_model_workspace`
 *        handle (activations and gradients of one batch) and the
 *        `scalar_model_trainer` handle (AdamW state).
 *
 * The architecture is GPT-2's, pre-LayerNorm:
 * `x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))`, final `ln_f`, LM head tied to
 * the token embedding, learned positions, tanh GELU, LayerNorm eps inside the
 * square root.  Parameters use Hugging Face GPT-2 names and Conv1D `[in, out]`
 * layout (`wte.weight`, `h.0.attn.c_attn.weight`, ..., `ln_f.bias`).
 *
 * A model is read-only after loading and may be shared across threads; all
 * per-batch state (activations, gradients, hooks) lives in a workspace, one per
 * thread.  A trainer changes its model's parameters: while one exists, no other
 * thread may run the model.
 *
 * **Hook points.**  Every layer `i` has five: ::SCALAR_HOOK_RESID_PRE (the
 * residual stream entering the block), ::SCALAR_HOOK_RESID_MID (after the
 * attention residual add), ::SCALAR_HOOK_RESID_POST (leaving the block; the same
 * tensor as the next layer's resid_pre), ::SCALAR_HOOK_MLP_IN (the output of
 * ln_2) and ::SCALAR_HOOK_MLP_OUT (the MLP's output before the residual add).
 * Their names follow TransformerLens: `blocks.{i}.hook_resid_pre`, ...,
 * `blocks.{i}.hook_mlp_in`, `blocks.{i}.hook_mlp_out`.  Each is a `[B, T, C]`
 * float tensor, token-major.
 *
 * A hook can be read after a forward (scalar_model_workspace_read()),
 * replaced during the forward by caller values or by a callback that edits it in
 * place (the splice SAEs need), started from (scalar_model_forward_from()), and
 * its gradient captured during the backward.  A replaced or edited activation is
 * a constant for the backward: the gradient stops there, and the gradient
 * captured at it is the gradient with respect to the values the rest of the
 * network saw.
 * @{
 */
#ifndef SCALAR_MODEL_H
#define SCALAR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "core.h"

SCALAR_BEGIN_DECL

/* ===================================================================== */
/*  Configuration                                                         */
/* ===================================================================== */

/**
 * @brief The shape of a model.  Fill with scalar_model_config_init() (the toy
 *        model of SPEC.md) or scalar_model_config_preset(), then change fields.
 */
typedef struct scalar_model_config {
    size_t struct_size;   /**< Set by scalar_model_config_init(). */
    int32_t n_layer;      /**< Transformer blocks (toy: 4). */
    int32_t n_head;       /**< Attention heads; divides n_embd (toy: 4). */
    int32_t n_embd;       /**< Residual width C (toy: 64). */
    int32_t d_mlp;        /**< MLP hidden width; 0 means 4 * n_embd. */
    int32_t block_size;   /**< Context length = learned positions (toy: 128). */
    int32_t vocab_size;   /**< Token ids 0 .. vocab_size - 1 (toy: 128). */
    float layer_norm_eps; /**< LayerNorm epsilon inside the square root (1e-5). */
    int32_t reserved0;    /**< Zero. */
} scalar_model_config;

/**
 * @brief Fill @p config with the toy model of SPEC.md (4 layers, 4 heads, width
 *        64, context 128, vocabulary 128).
 * @param[out] config      the struct to fill.
 * @param[in]  struct_size sizeof(*config) as the caller compiled it.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, or smaller than version 1).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_config_init(scalar_model_config *config,
                                                  size_t struct_size);

/**
 * @brief sizeof(scalar_model_config) in this library, for bindings.
 * @return the size in bytes.
 * @since 0.2
 */
SCALAR_API size_t scalar_model_config_size(void);

/**
 * @brief Set the shape fields of @p config to a named preset.
 *
 * Presets: `"toy"` (SPEC.md's 216,448-parameter model) and `"gpt2"` (GPT-2
 * Small: 12 layers, 12 heads, 768 wide, context 1024, vocabulary 50257).
 *
 * @param[in,out] config filled by scalar_model_config_init().
 * @param[in]     name   preset name.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (unknown name, listing the known ones).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_config_preset(scalar_model_config *config,
                                                    const char *name);

/* ===================================================================== */
/*  The model handle                                                      */
/* ===================================================================== */

/** @brief A transformer's parameters.  Read-only after loading, except through a trainer. */
typedef struct scalar_model scalar_model;

/**
 * @brief Create a model with SPEC.md's initialisation: normal(0, 0.02) for
 *        linear and embedding weights, `c_proj` weights with std
 *        0.02/sqrt(2 n_layer), zero biases, LayerNorm weights 1.
 *
 * The random numbers come from the context's seed: the same seed gives the
 * same parameters on every machine.
 *
 * @param[out] out    receives the model, NULL on failure.
 * @param[in]  ctx    borrowed; the model holds a reference.
 * @param[in]  config the shape; NULL means the toy model.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (bad shape, message says which
 *         field); ::SCALAR_E_VERSION; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_create(scalar_model **out, scalar_ctx *ctx,
                                             const scalar_model_config *config);

/**
 * @brief Load a model from a folder holding `config.json` and `model.safetensors`
 *        (Hugging Face GPT-2 layout), or from a `.safetensors` file with a
 *        `config.json` beside it.
 *
 * Keys may carry a `transformer.` prefix; `attn.bias` and `attn.masked_bias`
 * mask buffers are ignored; an `lm_head.weight` must equal `wte.weight` (the
 * head is tied).  F32, F16 and BF16 tensors are converted to float32.  Any
 * missing, unknown or misshapen tensor, or a config setting the model does not
 * honour (an activation other than `gelu_new`, say), is an error naming it.
 *
 * @param[out] out  receives the model, NULL on failure.
 * @param[in]  ctx  borrowed; the model holds a reference.
 * @param[in]  path folder or file.
 * @return ::SCALAR_OK; ::SCALAR_E_IO; ::SCALAR_E_FORMAT; ::SCALAR_E_SHAPE;
 *         ::SCALAR_E_UNSUPPORTED; ::SCALAR_E_NOMEM; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_load(scalar_model **out, scalar_ctx *ctx, const char *path);

/**
 * @brief Save to folder @p dir (created if missing): `config.json` and
 *        `model.safetensors` with Hugging Face GPT-2 names, no prefix, float32.
 *
 * Each file is written atomically (temporary file, fsync, rename).
 *
 * @param[in] model borrowed.
 * @param[in] dir   target folder.
 * @return ::SCALAR_OK; ::SCALAR_E_IO; ::SCALAR_E_NOMEM; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_save(const scalar_model *model, const char *dir);

/**
 * @brief Free a model; NULL does nothing.
 * @param[in] model owned.
 * @since 0.2
 */
SCALAR_API void scalar_model_free(scalar_model *model);

/**
 * @brief Copy the model's shape into @p config.
 * @param[in]  model  borrowed.
 * @param[out] config filled by scalar_model_config_init() first (its struct_size is honoured).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_get_config(const scalar_model *model,
                                                 scalar_model_config *config);

/**
 * @brief The number of parameter tensors (2 + 12 n_layer + 2).
 * @param[in] model borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int32_t scalar_model_param_count(const scalar_model *model);

/**
 * @brief The total number of parameters (toy model: 216,448).
 * @param[in] model borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int64_t scalar_model_n_params(const scalar_model *model);

/**
 * @brief Name and shape of parameter tensor @p index (file order).
 * @param[in]  model     borrowed.
 * @param[in]  index     0 .. scalar_model_param_count() - 1.
 * @param[out] out_name  receives a borrowed name (`h.0.attn.c_attn.weight`), valid while the model is; may be NULL.
 * @param[out] out_shape receives 2 sizes; a vector has shape [n, 1] and ndim 1; may be NULL.
 * @param[out] out_ndim  receives 1 or 2; may be NULL.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL model, index out of range).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_param_info(const scalar_model *model, int32_t index,
                                                 const char **out_name, int64_t *out_shape,
                                                 int32_t *out_ndim);

/**
 * @brief Copy the parameter called @p name into @p out.
 * @param[in]  model    borrowed.
 * @param[in]  name     a Hugging Face name (a `transformer.` prefix is accepted).
 * @param[out] out      receives numel floats.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (unknown name); ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_param_read(const scalar_model *model, const char *name,
                                                 float *out, size_t capacity);

/**
 * @brief Overwrite the parameter called @p name from @p values.
 *
 * Not while a workspace of this model runs on another thread.
 *
 * @param[in] model  borrowed.
 * @param[in] name   a Hugging Face name.
 * @param[in] values numel floats, all finite.
 * @param[in] count  floats at @p values; must equal numel.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_SHAPE; ::SCALAR_E_NUMERIC.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_param_write(scalar_model *model, const char *name,
                                                  const float *values, size_t count);

/* ===================================================================== */
/*  Hook points                                                           */
/* ===================================================================== */

/** @name Hook kinds (values frozen)
 * @{ */
#define SCALAR_HOOK_RESID_PRE 0  /**< `blocks.{i}.hook_resid_pre`: the block's input. */
#define SCALAR_HOOK_RESID_MID 1  /**< `blocks.{i}.hook_resid_mid`: after the attention add. */
#define SCALAR_HOOK_RESID_POST 2 /**< `blocks.{i}.hook_resid_post`: the block's output. */
#define SCALAR_HOOK_MLP_IN 3     /**< `blocks.{i}.hook_mlp_in`: the output of ln_2. */
#define SCALAR_HOOK_MLP_OUT 4    /**< `blocks.{i}.hook_mlp_out`: the MLP output before its add. */
#define SCALAR_HOOK_KIND_COUNT 5 /**< Number of hook kinds. */
/** @} */

/**
 * @brief Write the TransformerLens name of a hook point into @p buf.
 * @param[out] buf   receives the NUL-terminated name.
 * @param[in]  size  bytes at @p buf (32 is always enough).
 * @param[in]  layer 0 .. 9999.
 * @param[in]  kind  a SCALAR_HOOK_* value.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_hook_name(char *buf, size_t size, int32_t layer,
                                                int32_t kind);

/**
 * @brief Parse a hook name (`blocks.3.hook_mlp_out`; also the short forms
 *        `3.mlp_out`, `resid_pre.3`) into layer and kind.
 * @param[in]  name       the text.
 * @param[out] out_layer  receives the layer.
 * @param[out] out_kind   receives the SCALAR_HOOK_* value.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (unparseable, with the accepted forms).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_hook_parse(const char *name, int32_t *out_layer,
                                                 int32_t *out_kind);

/**
 * @brief A callback run during the forward at a hook point; it may read and
 *        edit the activation in place.
 * @param[in]     user     the pointer given to scalar_model_workspace_set_hook().
 * @param[in]     layer    the layer.
 * @param[in]     kind     the SCALAR_HOOK_* value.
 * @param[in,out] act      [n_tokens, d] activation, token-major.
 * @param[in]     n_tokens B * T.
 * @param[in]     d        the width (n_embd).
 * @return ::SCALAR_OK to continue; any other status stops the forward and is
 *         returned by it (set a message with scalar_last_error_set()).
 */
typedef scalar_status (*scalar_model_hook_fn)(void *user, int32_t layer, int32_t kind,
                                              float *act, int64_t n_tokens, int64_t d);

/* ===================================================================== */
/*  Workspaces: one batch's activations and gradients                     */
/* ===================================================================== */

/** @brief Activations, gradients and hooks for batches of up to B x T tokens.  One per thread. */
typedef struct scalar_model_workspace scalar_model_workspace;

/** @name Workspace flags
 * @{ */
#define SCALAR_WORKSPACE_GRAD 1 /**< Also hold parameter gradients and backward buffers. */
/** @} */

/**
 * @brief Create a workspace for batches of at most @p max_batch x @p max_seq tokens.
 *
 * Every buffer is allocated here, once: forward and backward allocate nothing.
 *
 * @param[out] out       receives the workspace, NULL on failure.
 * @param[in]  model     borrowed; the workspace holds a reference to it.
 * @param[in]  max_batch B >= 1.
 * @param[in]  max_seq   1 <= T <= block_size.
 * @param[in]  flags     0 (inference) or ::SCALAR_WORKSPACE_GRAD.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_create(scalar_model_workspace **out,
                                                       scalar_model *model, int64_t max_batch,
                                                       int64_t max_seq, int32_t flags);

/**
 * @brief Free a workspace; NULL does nothing.
 * @param[in] ws owned.
 * @since 0.2
 */
SCALAR_API void scalar_model_workspace_free(scalar_model_workspace *ws);

/**
 * @brief Run @p fn at a hook point during every following forward (NULL removes it).
 *
 * Runs after any replacement at the same point.
 *
 * @param[in] ws    borrowed.
 * @param[in] layer 0 .. n_layer - 1.
 * @param[in] kind  a SCALAR_HOOK_* value.
 * @param[in] fn    the callback, or NULL.
 * @param[in] user  passed to @p fn.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_set_hook(scalar_model_workspace *ws, int32_t layer,
                                                         int32_t kind, scalar_model_hook_fn fn,
                                                         void *user);

/**
 * @brief Replace a hook point's activation with @p values during every
 *        following forward (NULL removes the replacement).
 * @param[in] ws     borrowed.
 * @param[in] layer  0 .. n_layer - 1.
 * @param[in] kind   a SCALAR_HOOK_* value.
 * @param[in] values [B, T, n_embd] floats for the batch of the next forwards;
 *                   borrowed: must stay valid while set.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_set_replacement(scalar_model_workspace *ws,
                                                                int32_t layer, int32_t kind,
                                                                const float *values);

/**
 * @brief Capture d(objective)/d(activation) at a hook point into @p out during
 *        every following backward (NULL stops capturing).
 * @param[in] ws    borrowed; made with ::SCALAR_WORKSPACE_GRAD.
 * @param[in] layer 0 .. n_layer - 1.
 * @param[in] kind  a SCALAR_HOOK_* value.
 * @param[in] out   [B, T, n_embd] floats, overwritten by each backward; borrowed.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_set_grad_capture(scalar_model_workspace *ws,
                                                                 int32_t layer, int32_t kind,
                                                                 float *out);

/**
 * @brief Remove every hook, replacement and gradient capture.
 * @param[in] ws borrowed; NULL does nothing.
 * @since 0.2
 */
SCALAR_API void scalar_model_workspace_clear_hooks(scalar_model_workspace *ws);

/**
 * @brief Copy a hook point's activation from the last forward into @p out.
 *
 * The values are those the rest of the network saw (after any replacement or
 * callback edit).
 *
 * @param[in]  ws       borrowed.
 * @param[in]  layer    0 .. n_layer - 1.
 * @param[in]  kind     a SCALAR_HOOK_* value.
 * @param[out] out      receives B * T * n_embd floats.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (no forward yet, or a point the
 *         last forward_from() did not compute); ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_read(const scalar_model_workspace *ws,
                                                     int32_t layer, int32_t kind, float *out,
                                                     size_t capacity);

/**
 * @brief Copy the gradient of parameter @p name accumulated in the workspace.
 * @param[in]  ws       borrowed; made with ::SCALAR_WORKSPACE_GRAD.
 * @param[in]  name     a Hugging Face parameter name.
 * @param[out] out      receives numel floats.
 * @param[in]  capacity floats at @p out.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BUFSIZE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_read_grad(const scalar_model_workspace *ws,
                                                          const char *name, float *out,
                                                          size_t capacity);

/**
 * @brief Set every parameter gradient in the workspace to zero.
 * @param[in] ws borrowed; made with ::SCALAR_WORKSPACE_GRAD.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_workspace_zero_grad(scalar_model_workspace *ws);

/* ===================================================================== */
/*  Forward and backward                                                  */
/* ===================================================================== */

/**
 * @brief Run the model on token ids.
 *
 * @param[in]  model   borrowed; the workspace's model.
 * @param[in]  ws      borrowed.
 * @param[in]  ids     [B, T] token ids in [0, vocab_size).
 * @param[in]  targets [B, T] next-token ids, a negative id ignores its position;
 *                     NULL for no loss.
 * @param[in]  B       1 .. the workspace's max_batch.
 * @param[in]  T       1 .. the workspace's max_seq.
 * @param[out] logits  receives [B, T, vocab_size] floats; NULL to skip the copy.
 * @param[out] loss    receives the mean cross-entropy (nats) over the positions
 *                     not ignored; NULL to skip; needs @p targets.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (bad id, with its position);
 *         ::SCALAR_E_SHAPE; a status returned by a hook callback.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_forward(const scalar_model *model, scalar_model_workspace *ws,
                                              const int32_t *ids, const int32_t *targets,
                                              int64_t B, int64_t T, float *logits, float *loss);

/**
 * @brief Run the model from a hook point onward, starting from the caller's
 *        activation there (hooks upstream of the point are not run).
 * @param[in]  model   borrowed.
 * @param[in]  ws      borrowed.
 * @param[in]  layer   0 .. n_layer - 1.
 * @param[in]  kind    a SCALAR_HOOK_* value; ::SCALAR_HOOK_MLP_OUT is refused
 *                     (it needs resid_mid too: start from resid_post instead).
 * @param[in]  act     [B, T, n_embd] activation at the point.
 * @param[in]  targets as in scalar_model_forward().
 * @param[in]  B       batch.
 * @param[in]  T       sequence length.
 * @param[out] logits  as in scalar_model_forward().
 * @param[out] loss    as in scalar_model_forward().
 * @return as scalar_model_forward().
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_forward_from(const scalar_model *model,
                                                   scalar_model_workspace *ws, int32_t layer,
                                                   int32_t kind, const float *act,
                                                   const int32_t *targets, int64_t B, int64_t T,
                                                   float *logits, float *loss);

/**
 * @brief Backward of the last forward's loss: parameter gradients accumulate
 *        in the workspace, hook gradients go to their captures.
 * @param[in] model borrowed.
 * @param[in] ws    made with ::SCALAR_WORKSPACE_GRAD; its last forward had targets.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_backward(const scalar_model *model,
                                               scalar_model_workspace *ws);

/**
 * @brief Backward from a caller gradient on the logits of the last forward
 *        (a vector-Jacobian product).
 * @param[in] model    borrowed.
 * @param[in] ws       made with ::SCALAR_WORKSPACE_GRAD.
 * @param[in] d_logits [B, T, vocab_size] floats.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_backward_logits(const scalar_model *model,
                                                      scalar_model_workspace *ws,
                                                      const float *d_logits);

/**
 * @brief Backward from a caller gradient at a hook point of the last forward,
 *        through everything upstream of it (a vector-Jacobian product).
 *
 * The seed gradient is added at the point; nothing downstream contributes.
 * Parameter gradients of the upstream part accumulate; captures upstream of
 * the point (and at it) receive their gradients.
 *
 * @param[in] model  borrowed.
 * @param[in] ws     made with ::SCALAR_WORKSPACE_GRAD.
 * @param[in] layer  0 .. n_layer - 1.
 * @param[in] kind   a SCALAR_HOOK_* value.
 * @param[in] d_act  [B, T, n_embd] floats.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_backward_from(const scalar_model *model,
                                                    scalar_model_workspace *ws, int32_t layer,
                                                    int32_t kind, const float *d_act);

/**
 * @brief Generate @p n_new tokens after a prompt by sampling.
 *
 * Each step runs the model on the last block_size tokens and samples from
 * softmax(logits / temperature) with the context's RNG stream @p seed;
 * temperature 0 takes the most likely token.
 *
 * @param[in]  model       borrowed.
 * @param[in]  ws          borrowed; max_batch >= 1, max_seq = block_size is best.
 * @param[in]  prompt      [n_prompt] ids, n_prompt >= 1.
 * @param[in]  n_prompt    prompt length.
 * @param[in]  n_new       tokens to generate.
 * @param[in]  temperature >= 0.
 * @param[in]  seed        sampling seed.
 * @param[out] out         receives n_new ids.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_generate(const scalar_model *model,
                                               scalar_model_workspace *ws, const int32_t *prompt,
                                               int64_t n_prompt, int64_t n_new, float temperature,
                                               uint64_t seed, int32_t *out);

/* ===================================================================== */
/*  Training                                                              */
/* ===================================================================== */

/**
 * @brief AdamW and schedule settings.  Defaults (scalar_model_trainer_options_init())
 *        are SPEC.md's toy recipe.
 */
typedef struct scalar_model_trainer_options {
    size_t struct_size;    /**< Set by scalar_model_trainer_options_init(). */
    int64_t batch;         /**< Sequences per micro-batch (128). */
    int64_t seq;           /**< Tokens per sequence (128). */
    int64_t grad_accum;    /**< Micro-batches per step (1). */
    int64_t warmup_steps;  /**< Linear warmup steps (1000). */
    int64_t max_steps;     /**< Step at which the cosine reaches min_lr (10000). */
    float lr;              /**< Peak learning rate (1e-3). */
    float min_lr;          /**< Final learning rate (1e-5). */
    float beta1;           /**< AdamW beta1 (0.9). */
    float beta2;           /**< AdamW beta2 (0.95). */
    float eps;             /**< AdamW epsilon (1e-8). */
    float weight_decay;    /**< On tensors of rank >= 2 only (0.1). */
    float grad_clip;       /**< Global gradient-norm clip; 0 disables (1.0). */
    int32_t reserved0;     /**< Zero. */
} scalar_model_trainer_options;

/**
 * @brief Fill @p options with the defaults.
 * @param[out] options     the struct.
 * @param[in]  struct_size sizeof(*options) as compiled.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_trainer_options_init(scalar_model_trainer_options *options,
                                                           size_t struct_size);

/**
 * @brief sizeof(scalar_model_trainer_options) in this library.
 * @return the size in bytes.
 * @since 0.2
 */
SCALAR_API size_t scalar_model_trainer_options_size(void);

/** @brief AdamW moments, step counter and a gradient workspace for one model. */
typedef struct scalar_model_trainer scalar_model_trainer;

/**
 * @brief Create a trainer.  It changes @p model's parameters on every step.
 * @param[out] out     receives the trainer.
 * @param[in]  model   borrowed; the trainer holds a reference.
 * @param[in]  options NULL for the defaults.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_VERSION; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_trainer_create(scalar_model_trainer **out,
                                                     scalar_model *model,
                                                     const scalar_model_trainer_options *options);

/**
 * @brief Free a trainer; NULL does nothing.
 * @param[in] trainer owned.
 * @since 0.2
 */
SCALAR_API void scalar_model_trainer_free(scalar_model_trainer *trainer);

/**
 * @brief The learning rate of step @p step (0-based): `lr (step+1)/warmup`
 *        during warmup, then a cosine from lr to min_lr reached at max_steps,
 *        min_lr after.
 * @param[in] trainer borrowed.
 * @param[in] step    >= 0.
 * @return the rate; 0 for NULL.
 * @since 0.2
 */
SCALAR_API float scalar_model_trainer_lr(const scalar_model_trainer *trainer, int64_t step);

/**
 * @brief One optimizer step: grad_accum micro-batches of forward + backward,
 *        the global norm clip, and AdamW at the scheduled learning rate.
 * @param[in]  trainer   borrowed.
 * @param[in]  x         [grad_accum, batch, seq] input ids.
 * @param[in]  y         [grad_accum, batch, seq] target ids.
 * @param[out] loss      receives the mean loss over the micro-batches; may be NULL.
 * @param[out] grad_norm receives the global gradient norm before clipping; may be NULL.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NUMERIC (a non-finite
 *         loss or gradient: the parameters are left unchanged).
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_trainer_step(scalar_model_trainer *trainer, const int32_t *x,
                                                   const int32_t *y, float *loss,
                                                   float *grad_norm);

/**
 * @brief Steps taken so far (restored by scalar_model_trainer_load()).
 * @param[in] trainer borrowed.
 * @return the count; 0 for NULL.
 * @since 0.2
 */
SCALAR_API int64_t scalar_model_trainer_steps(const scalar_model_trainer *trainer);

/**
 * @brief Save the optimizer state (moments and step) to a safetensors file, atomically.
 * @param[in] trainer borrowed.
 * @param[in] path    target file.
 * @return ::SCALAR_OK; ::SCALAR_E_IO; ::SCALAR_E_NOMEM.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_trainer_save(const scalar_model_trainer *trainer,
                                                   const char *path);

/**
 * @brief Restore the optimizer state written by scalar_model_trainer_save().
 * @param[in] trainer borrowed; its model must have the same shape.
 * @param[in] path    the file.
 * @return ::SCALAR_OK; ::SCALAR_E_IO; ::SCALAR_E_FORMAT; ::SCALAR_E_SHAPE.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_model_trainer_load(scalar_model_trainer *trainer,
                                                   const char *path);

SCALAR_END_DECL

#endif /* SCALAR_MODEL_H */
/** @} */
