/*
 * check_backend_model_args.c - argument checks of the model-layer entry
 * points: status and message for every rule, on cpu and cpu-ref alike
 * (the dispatcher checks before any backend sees the call).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

static const char *const backends[] = {"cpu", "cpu-ref"};
static const scalar_status E = SCALAR_E_INVALID_ARG;

START_TEST(test_model_ops_reject_null_backend)
{
    float f[8] = {0};
    double d = 0.0;
    int32_t ix[2] = {0};
    const char *needle = "backend is NULL";
    bt_assert_error(scalar_backend_attention_forward(NULL, f, f, f, 1, 1, 1, 1), E,
                    "scalar_backend_attention_forward: backend is NULL");
    bt_assert_error(scalar_backend_attention_backward(NULL, f, f, f, f, 1, 1, 1, 1), E, needle);
    bt_assert_error(scalar_backend_embedding_forward(NULL, f, ix, f, f, 1, 1, 1, 1, 1), E,
                    needle);
    bt_assert_error(scalar_backend_embedding_backward(NULL, f, f, f, ix, 1, 1, 1, 1, 1), E,
                    needle);
    bt_assert_error(scalar_backend_cross_entropy_forward(NULL, f, f, 1, ix, 1, 1), E, needle);
    bt_assert_error(scalar_backend_cross_entropy_backward(NULL, f, f, 1, ix, f, 1, 1), E,
                    needle);
    bt_assert_error(scalar_backend_sum_rows(NULL, f, f, 1, 1), E, needle);
    bt_assert_error(scalar_backend_add(NULL, f, f, f, 1), E, "scalar_backend_add: backend");
    bt_assert_error(scalar_backend_sumsq(NULL, &d, f, 1), E, needle);
    bt_assert_error(scalar_backend_adamw(NULL, f, f, f, f, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f,
                                         1.0f, 1), E, needle);
}
END_TEST

START_TEST(test_attention_arguments_checked)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float f[64] = {0};
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, -1, 2, 4, 2), E,
                        "scalar_backend_attention_forward: B=-1 is negative");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 1, -2, 4, 2), E,
                        "T=-2 is negative");
        bt_assert_error(scalar_backend_attention_backward(be, f, f, f, f, 1, 2, -4, 2), E,
                        "scalar_backend_attention_backward: C=-4 is negative");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 1, 2, 4, 0), E,
                        "n_head=0 must be >= 1");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 0, 2, 4, -1), E,
                        "n_head=-1 must be >= 1");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 1, 2, 10, 3), E,
                        "C=10 is not a multiple of n_head=3");
        bt_assert_error(scalar_backend_attention_backward(be, f, f, f, f, 0, 2, 10, 4), E,
                        "C=10 is not a multiple of n_head=4");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 2, 1, 0, 1), E,
                        "C=0 with B*T=2");
        bt_assert_error(scalar_backend_attention_forward(be, NULL, f, f, 1, 2, 4, 2), E,
                        "out is NULL with non-zero sizes");
        bt_assert_error(scalar_backend_attention_forward(be, f, NULL, f, 1, 2, 4, 2), E,
                        "att is NULL");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, NULL, 1, 2, 4, 2), E,
                        "qkv is NULL");
        bt_assert_error(scalar_backend_attention_backward(be, NULL, f, f, f, 1, 2, 4, 2), E,
                        "d_qkv is NULL");
        bt_assert_error(scalar_backend_attention_backward(be, f, NULL, f, f, 1, 2, 4, 2), E,
                        "d_out is NULL");
        bt_assert_error(scalar_backend_attention_backward(be, f, f, f, NULL, 1, 2, 4, 2), E,
                        "att is NULL");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, INT64_MAX / 2, 4, 4, 2), E,
                        "B*T = 4611686018427387903 x 4 exceeds the address space");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 1, 4, INT64_MAX / 2, 1), E,
                        "3*C = ");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, 1, (int64_t)1 << 32, 3, 3),
                        E, "att [B, n_head, T, T] of");
        bt_assert_error(scalar_backend_attention_forward(be, f, f, f, (int64_t)1 << 40, 1 << 20,
                                                         3, 1), E, "qkv [B*T, 3*C] of");
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_embedding_arguments_checked)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float out[6 * 2] = {0}, wte[7 * 2] = {0}, wpe[4 * 2] = {0};
        const int32_t ok_ids[6] = {0, 1, 2, 3, 4, 6}, big[6] = {0, 1, 7, 0, 0, 0};
        const int32_t negative[6] = {0, -1, 0, 0, 0, 0};
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, wpe, -1, 3, 2, 7,
                                                         4), E,
                        "scalar_backend_embedding_forward: B=-1 is negative");
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, wpe, 2, 3, 2, -7,
                                                         4), E, "vocab=-7 is negative");
        bt_assert_error(scalar_backend_embedding_backward(be, wte, wpe, out, ok_ids, 2, 3, 2, 7,
                                                          -4), E,
                        "scalar_backend_embedding_backward: n_pos=-4 is negative");
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, wpe, 1, 5, 2, 7,
                                                         4), E, "T=5 > n_pos=4");
        bt_assert_error(scalar_backend_embedding_forward(be, out, big, wte, wpe, 2, 3, 2, 7, 4),
                        E, "scalar_backend_embedding_forward: ids[2]=7 out of range "
                           "[0, vocab=7)");
        bt_assert_error(scalar_backend_embedding_forward(be, out, negative, wte, wpe, 2, 3, 2, 7,
                                                         4), E, "ids[1]=-1 out of range");
        bt_assert_error(scalar_backend_embedding_backward(be, wte, NULL, out, big, 2, 3, 2, 7, 4),
                        E, "ids[2]=7 out of range [0, vocab=7)");
        bt_assert_error(scalar_backend_embedding_forward(be, NULL, ok_ids, wte, wpe, 2, 3, 2, 7,
                                                         4), E, "out is NULL");
        bt_assert_error(scalar_backend_embedding_forward(be, out, NULL, wte, wpe, 2, 3, 2, 7, 4),
                        E, "ids is NULL");
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, NULL, 2, 3, 2, 7,
                                                         4), E, "wpe is NULL");
        bt_assert_error(scalar_backend_embedding_backward(be, wte, wpe, NULL, ok_ids, 2, 3, 2, 7,
                                                          4), E, "d_out is NULL");
        bt_assert_error(scalar_backend_embedding_backward(be, wte, NULL, out, NULL, 2, 3, 2, 7,
                                                          4), E, "ids is NULL");
        /* d_wpe alone needs no ids, and the bad ones are not looked at */
        ck_assert_int_eq(scalar_backend_embedding_backward(be, NULL, wpe, out, NULL, 2, 3, 2, 7,
                                                           4), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_embedding_backward(be, NULL, wpe, out, big, 2, 3, 2, 7,
                                                           4), SCALAR_OK);
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, wpe, INT64_MAX / 2,
                                                         3, 2, 7, 4), E, "B*T =");
        bt_assert_error(scalar_backend_embedding_forward(be, out, ok_ids, wte, wpe, 2, 3, 2,
                                                         INT64_MAX / 2, 4), E,
                        "wte [vocab, C] of");
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_cross_entropy_arguments_checked)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float logits[3 * 6] = {0}, losses[3], d_losses[3] = {1, 1, 1}, g[3 * 6] = {0};
        const int32_t ok[3] = {0, -1, 4}, big[3] = {0, 5, 1};
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 6, ok, -1, 5), E,
                        "scalar_backend_cross_entropy_forward: n=-1 is negative");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 6, ok, 3, -5), E,
                        "vocab=-5 is negative");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 4, ok, 3, 5),
                        SCALAR_E_SHAPE, "scalar_backend_cross_entropy_forward: ld=4 < vocab=5");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, g, logits, -1, ok, d_losses, 3,
                                                              5), SCALAR_E_SHAPE,
                        "ld=-1 < vocab=5");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 6, ok, 3, 0), E,
                        "vocab=0 with n=3 (must be > 0)");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 6, big, 3, 5), E,
                        "scalar_backend_cross_entropy_forward: targets[1]=5 >= vocab=5");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, g, logits, 6, big, d_losses, 3,
                                                              5), E, "targets[1]=5 >= vocab=5");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, NULL, logits, 6, ok, 3, 5), E,
                        "losses is NULL");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, 6, NULL, 3, 5),
                        E, "targets is NULL");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, g, logits, 6, ok, NULL, 3, 5),
                        E, "d_losses is NULL");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, logits, logits, 6, ok, d_losses,
                                                              3, 5), E,
                        "scalar_backend_cross_entropy_backward: d_logits overlaps logits");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, logits + 12, logits, 6, ok,
                                                              d_losses, 1, 5), SCALAR_OK, "");
        bt_assert_error(scalar_backend_cross_entropy_backward(be, logits + 10, logits, 6, ok,
                                                              d_losses, 2, 5), E,
                        "d_logits overlaps logits");
        bt_assert_error(scalar_backend_cross_entropy_forward(be, losses, logits, INT64_MAX / 2,
                                                             ok, 3, 5), E,
                        "logits of 3 x 5 (row stride 4611686018427387903) exceeds");
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_sum_rows_add_sumsq_arguments_checked)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float f[16] = {0};
        double d = 0.0;
        bt_assert_error(scalar_backend_sum_rows(be, f, f, -1, 2), E,
                        "scalar_backend_sum_rows: n_rows=-1 is negative");
        bt_assert_error(scalar_backend_sum_rows(be, f, f, 2, -3), E, "n_cols=-3 is negative");
        bt_assert_error(scalar_backend_sum_rows(be, NULL, f, 2, 3), E, "out is NULL");
        bt_assert_error(scalar_backend_sum_rows(be, f, NULL, 2, 3), E, "x is NULL");
        bt_assert_error(scalar_backend_sum_rows(be, f, f, INT64_MAX / 2, 4), E,
                        "exceeds the address space");
        bt_assert_error(scalar_backend_add(be, f, f, f, -2), E,
                        "scalar_backend_add: n=-2 is negative");
        bt_assert_error(scalar_backend_add(be, f, NULL, f, 4), E, "a is NULL");
        bt_assert_error(scalar_backend_add(be, f, f, NULL, 4), E, "b is NULL");
        bt_assert_error(scalar_backend_add(be, f + 1, f, f + 8, 4), E,
                        "out partly overlaps a or b");
        bt_assert_error(scalar_backend_add(be, f + 8, f, f + 9, 4), E, "partly overlaps");
        ck_assert_int_eq(scalar_backend_add(be, f + 4, f, f + 4, 4), SCALAR_OK); /* out is b */
        bt_assert_error(scalar_backend_sumsq(be, &d, f, -1), E,
                        "scalar_backend_sumsq: n=-1 is negative");
        bt_assert_error(scalar_backend_sumsq(be, NULL, f, 0), E,
                        "scalar_backend_sumsq: out is NULL");
        bt_assert_error(scalar_backend_sumsq(be, &d, NULL, 3), E, "x is NULL");
        bt_assert_error(scalar_backend_sumsq(be, &d, f, INT64_MAX), E,
                        "exceeds the address space");
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_adamw_arguments_checked)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float p[4] = {1, 1, 1, 1}, g[4] = {0}, m[4] = {0}, v[4] = {0};
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, -1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, 1), E,
                        "scalar_backend_adamw: n=-1 is negative");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, 0), E, "step=0 must be >= 1");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, -3), E, "step=-3 must be >= 1");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, -1.0f, 0.9f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, 1), E, "lr=-1 must be finite and >= 0");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, NAN, 0.9f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, 1), E, "lr=nan");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, INFINITY, 0.9f, 0.999f, 1e-8f,
                                             0.0f, 1.0f, 1), E, "lr=inf");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f,
                                             1.0f, 1), E, "beta1=1 must be in [0, 1)");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, -0.5f, 1e-8f, 0.0f,
                                             1.0f, 1), E, "beta2=-0.5 must be in [0, 1)");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, NAN, 1e-8f, 0.0f,
                                             1.0f, 1), E, "beta2=nan");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, 0.999f, -1e-8f, 0.0f,
                                             1.0f, 1), E, "eps=-1e-08 must be finite and >= 0");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f, NAN,
                                             1.0f, 1), E, "weight_decay=nan");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f,
                                             INFINITY, 1), E, "grad_scale=inf must be finite");
        bt_assert_error(scalar_backend_adamw(be, p, g, m, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f,
                                             -1.0f, 1), E, "grad_scale=-1");
        bt_assert_error(scalar_backend_adamw(be, p, g, NULL, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f,
                                             0.0f, 1.0f, 1), E, "m is NULL");
        bt_assert_error(scalar_backend_adamw(be, p, NULL, m, v, 4, 1e-3f, 0.9f, 0.999f, 1e-8f,
                                             0.0f, 1.0f, 1), E, "grad is NULL");
        for (int i = 0; i < 4; i++) /* nothing was touched */
            ck_assert(p[i] == 1.0f && m[i] == 0.0f && v[i] == 0.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

TCase *bt_model_validation_tcase(void)
{
    TCase *tc = tcase_create("model_validation");
    tcase_add_test(tc, test_model_ops_reject_null_backend);
    tcase_add_test(tc, test_attention_arguments_checked);
    tcase_add_test(tc, test_embedding_arguments_checked);
    tcase_add_test(tc, test_cross_entropy_arguments_checked);
    tcase_add_test(tc, test_sum_rows_add_sumsq_arguments_checked);
    tcase_add_test(tc, test_adamw_arguments_checked);
    return tc;
}
