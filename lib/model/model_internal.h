/*
 * model_internal.h - the model, workspace and trainer structs, shared by the
 * files of lib/model/.  Never installed.
 *
 * Parameters live in one float array in file order (the table built by
 * model_params_layout); the same layout indexes gradients and AdamW moments,
 * so `scalar__model_weights` views any of them as named tensors.
 */
#ifndef SCALAR_MODEL_INTERNAL_H
#define SCALAR_MODEL_INTERNAL_H

#include "../internal.h"

#define SCALAR__PARAM_NAME_MAX 48

typedef struct scalar__param {
    char name[SCALAR__PARAM_NAME_MAX]; /* Hugging Face name, no prefix */
    int64_t rows, cols;                /* a vector: [rows, 1] with ndim 1 */
    int32_t ndim;
    int64_t offset;                    /* in floats, from the array's start */
} scalar__param;

/* Views of one parameter-shaped array. Shapes (C = n_embd, F = d_mlp):
 * wte [V, C], wpe [P, C]; per layer ln_1 w/b [C], c_attn w [C, 3C] b [3C],
 * attn c_proj w [C, C] b [C], ln_2 w/b [C], c_fc w [C, F] b [F],
 * mlp c_proj w [F, C] b [C]; ln_f w/b [C]. */
typedef struct scalar__layer_weights {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *attn_proj_w, *attn_proj_b;
    float *ln2_w, *ln2_b, *fc_w, *fc_b, *mlp_proj_w, *mlp_proj_b;
} scalar__layer_weights;

typedef struct scalar__weights {
    float *wte, *wpe, *lnf_w, *lnf_b;
    scalar__layer_weights *layer; /* [n_layer], owned by whoever built the view */
} scalar__weights;

struct scalar_model {
    int32_t refcount;            /* atomic: the caller plus one per workspace/trainer */
    scalar_ctx *ctx;             /* retained */
    scalar_backend *backend;     /* the context's */
    scalar_model_config cfg;     /* d_mlp resolved */
    int32_t n_tensors;
    scalar__param *params;       /* [n_tensors] */
    int64_t n_params;
    float *data;                 /* [n_params], backend buffer */
    scalar__weights w;           /* views into data */
};

/* Activations of one layer, each [max_B * max_T, width] unless noted. */
typedef struct scalar__layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [BT, C], [BT], [BT] */
    float *qkv;                       /* [BT, 3C] */
    float *att;                       /* [B, H, T, T] softmax probabilities */
    float *atty;                      /* [BT, C] attention output before c_proj */
    float *resid_mid;                 /* [BT, C] */
    float *ln2, *ln2_mean, *ln2_rstd; /* [BT, C] = mlp_in, [BT], [BT] */
    float *fch, *fch_gelu;            /* [BT, F] before and after GELU */
    float *mlp_out;                   /* [BT, C] */
} scalar__layer_acts;

typedef struct scalar__hook {
    scalar_model_hook_fn fn;
    void *user;
    const float *replacement;
    float *grad_capture;
} scalar__hook;

struct scalar_model_workspace {
    scalar_model *model;  /* retained */
    int64_t max_B, max_T;
    int32_t flags;
    void *arena;          /* one backend buffer holding everything below */
    size_t arena_size;
    float *resid;         /* [L + 1][BT, C]: resid[i] = resid_pre(i) = resid_post(i - 1) */
    scalar__layer_acts *acts;
    float *lnf, *lnf_mean, *lnf_rstd; /* [BT, C], [BT], [BT] */
    float *logits;        /* [BT, V] */
    float *losses;        /* [BT] */
    int32_t *ids, *targets; /* [BT] copies of the last forward's */
    /* backward (SCALAR_WORKSPACE_GRAD) */
    float *grad;          /* [n_params], the parameter layout */
    scalar__weights g;    /* views into grad */
    float *d_logits;      /* [BT, V] */
    float *d_losses;      /* [BT] */
    float *d_res;         /* [BT, C] gradient of the residual stream */
    float *d_c, *d_c2;    /* [BT, C] scratch */
    float *d_qkv;         /* [BT, 3C] */
    float *d_f, *d_f2;    /* [BT, F] */
    scalar__hook *hooks;  /* [L * SCALAR_HOOK_KIND_COUNT] */
    /* what the last forward computed */
    int64_t B, T;
    int32_t have_forward, have_targets;
    int32_t start_layer, start_kind; /* forward_from's start; (0, -1) for a full forward */
    int32_t mid_valid_from;          /* resid_mid[i] holds this B x T batch for i >= this */
    int64_t n_valid_targets;
};

struct scalar_model_trainer {
    scalar_model *model;  /* retained */
    scalar_model_workspace *ws;
    scalar_model_trainer_options opt;
    float *m, *v;         /* [n_params] AdamW moments, backend buffers */
    int64_t step;         /* optimizer steps taken */
};

/* Build the views of a parameter-shaped array; `layers` has n_layer entries. */
void scalar__model_views(const scalar_model *m, float *base, scalar__weights *out,
                         scalar__layer_weights *layers);
/* The parameter called `name` (a `transformer.` prefix is skipped); -1 if none. */
int32_t scalar__model_find_param(const scalar_model *m, const char *name);
/* Allocate an empty model of a validated config (parameters uninitialised). */
scalar_status scalar__model_alloc(scalar_model **out, scalar_ctx *ctx,
                                  const scalar_model_config *cfg, const char *fn);
scalar_status scalar__model_config_check(const scalar_model_config *cfg, const char *fn);
void scalar__model_retain(scalar_model *m);

/* forward.c: embeddings and layers 0 .. end - 1 only (no ln_f, no logits):
 * the activations a trainer streams.  Leaves have_forward 0. */
scalar_status scalar__model_forward_acts(const scalar_model *model, scalar_model_workspace *ws,
                                         const int32_t *ids, int64_t B, int64_t T, int32_t end);

/* forward.c: block `layer` alone on x [B, T, C] (its hooks are not run); *y
 * points at the workspace's resid_post(layer), valid until the next call.
 * The workspace keeps what scalar__model_block_vjp needs. */
scalar_status scalar__model_block_forward(const scalar_model *model, scalar_model_workspace *ws,
                                         int32_t layer, const float *x, int64_t B, int64_t T,
                                         const float **y);
/* backward.c: after scalar__model_block_forward, the vector-Jacobian product
 * of block `layer`: d_post [B, T, C] at its output -> *d_pre [B, T, C] at its
 * input (a workspace buffer, valid until the next call).  No parameter
 * gradients; ws made with SCALAR_WORKSPACE_GRAD. */
scalar_status scalar__model_block_vjp(const scalar_model *model, scalar_model_workspace *ws,
                                     int32_t layer, const float *d_post, const float **d_pre);

/* workspace.c: the buffer of a hook point; 1 if the last forward computed it. */
float *scalar__ws_hook_buffer(const scalar_model_workspace *ws, int32_t layer, int32_t kind);
int scalar__ws_point_valid(const scalar_model_workspace *ws, int32_t layer, int32_t kind);

/* Stage order of the hook points inside a layer, in forward order. */
static inline int scalar__hook_stage(int32_t kind)
{
    switch (kind) {
    case SCALAR_HOOK_RESID_PRE: return 0;
    case SCALAR_HOOK_RESID_MID: return 1;
    case SCALAR_HOOK_MLP_IN: return 2;
    case SCALAR_HOOK_MLP_OUT: return 3;
    default: return 4; /* RESID_POST */
    }
}

#endif
