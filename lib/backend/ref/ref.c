/*
 * ref.c - the "cpu-ref" backend: lifecycle, memory and its ops table.
 *
 * cpu-ref is the oracle every other backend is tested against
 * (tests/unit/check_backend.c), so its kernels (ref_dense.c, ref_rows.c,
 * ref_model.c, ref_train.c) are plain loops that accumulate in double, with
 * no threads and no tricks.
 */
#include "ref.h"

typedef struct ref_self {
    scalar_ctx *ctx;
} ref_self;

static scalar_status ref_create(void **out_self, scalar_ctx *ctx, const char *params)
{
    (void)params;
    ref_self *s = scalar__alloc(ctx, sizeof *s, "cpu-ref");
    if (!s)
        return SCALAR_E_NOMEM;
    s->ctx = ctx;
    *out_self = s;
    return SCALAR_OK;
}

static void ref_destroy(void *self)
{
    ref_self *s = self;
    scalar__free(s->ctx, s);
}

/* Buffers are plain host memory from the context's allocator hooks, 64-byte
 * aligned (scalar__alloc_raw rounds the size up to a multiple of 64). */
static scalar_status ref_buffer_alloc(void *self, void **out_ptr, size_t size)
{
    ref_self *s = self;
    *out_ptr = scalar__alloc_raw(s->ctx, size);
    if (!*out_ptr)
        return scalar__error_set(SCALAR_E_NOMEM, "cpu-ref: out of memory (%zu-byte buffer)", size);
    return SCALAR_OK;
}

static void ref_buffer_free(void *self, void *ptr, size_t size)
{
    ref_self *s = self;
    scalar__free_raw(s->ctx, ptr, size);
}

const scalar_backend_ops scalar__backend_cpu_ref_ops = {
    .abi_version = SCALAR_BACKEND_ABI_VERSION,
    .struct_size = sizeof(scalar_backend_ops),
    .name = "cpu-ref",
    .create = ref_create,
    .destroy = ref_destroy,
    .describe = NULL, /* the name says it all */
    .buffer_alloc = ref_buffer_alloc,
    .buffer_free = ref_buffer_free,
    .buffer_is_host = NULL, /* host memory */
    .upload = NULL,         /* memcpy */
    .download = NULL,       /* memcpy */
    .synchronize = NULL,    /* synchronous */
    .supports = NULL,       /* every slot below */
    .sgemm = scalar__ref_sgemm,
    .bias_add = scalar__ref_bias_add,
    .gelu_forward = scalar__ref_gelu_forward,
    .gelu_backward = scalar__ref_gelu_backward,
    .layernorm_forward = scalar__ref_layernorm_forward,
    .layernorm_backward = scalar__ref_layernorm_backward,
    .softmax_rows = scalar__ref_softmax_rows,
    .topk_rows = scalar__ref_topk_rows,
    .gather_rows = scalar__ref_gather_rows,
    .scatter_add_rows = scalar__ref_scatter_add_rows,
    .get_proc_address = NULL,
    .attention_forward = scalar__ref_attention_forward,
    .attention_backward = scalar__ref_attention_backward,
    .embedding_forward = scalar__ref_embedding_forward,
    .embedding_backward = scalar__ref_embedding_backward,
    .cross_entropy_forward = scalar__ref_cross_entropy_forward,
    .cross_entropy_backward = scalar__ref_cross_entropy_backward,
    .sum_rows = scalar__ref_sum_rows,
    .add = scalar__ref_add,
    .sumsq = scalar__ref_sumsq,
    .adamw = scalar__ref_adamw,
    .sparse_decode = scalar__ref_sparse_decode,
    .sparse_dot = scalar__ref_sparse_dot,
    .sparse_outer_add = scalar__ref_sparse_outer_add,
    .jacobian_contract = scalar__ref_jacobian_contract,
    .jacobian_contract_backward = scalar__ref_jacobian_contract_backward,
    .jacobian_rows = scalar__ref_jacobian_rows,
};
