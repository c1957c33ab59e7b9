/*
 * trainer.c - AdamW on a model: gradient accumulation, global-norm clipping,
 * warmup + cosine schedule, optimizer state files.
 */
#include <math.h>
#include <string.h>

#include "model_internal.h"

#define TRY SCALAR_TRY

/* The size of the first version of the struct: frozen, later fields append. */
#define OPTIONS_V1_SIZE ((size_t)80)
_Static_assert(sizeof(scalar_model_trainer_options) >= OPTIONS_V1_SIZE, "options shrank");

scalar_status scalar_model_trainer_options_init(scalar_model_trainer_options *o, size_t struct_size)
{
    if (!o || struct_size < OPTIONS_V1_SIZE)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "scalar_model_trainer_options_init: %s", o ? "struct_size too small"
                                                                           : "options is NULL");
    memset(o, 0, struct_size);
    o->struct_size = struct_size;
    o->batch = 128;
    o->seq = 128;
    o->grad_accum = 1;
    o->warmup_steps = 1000;
    o->max_steps = 10000;
    o->lr = 1e-3f;
    o->min_lr = 1e-5f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->grad_clip = 1.0f;
    return SCALAR_OK;
}

size_t scalar_model_trainer_options_size(void)
{
    return sizeof(scalar_model_trainer_options);
}

static scalar_status read_options(scalar_model_trainer_options *o,
                                  const scalar_model_trainer_options *given, const scalar_model *m,
                                  const char *fn)
{
    scalar_model_trainer_options_init(o, sizeof *o);
    if (given) {
        if (given->struct_size < OPTIONS_V1_SIZE ||
            !scalar__tail_is_zero(given, sizeof *o, given->struct_size))
            return scalar__error_set(SCALAR_E_VERSION,
                                     "%s: options.struct_size %zu is not one this library reads "
                                     "(fill with scalar_model_trainer_options_init)", fn,
                                     given->struct_size);
        memcpy(o, given, sizeof *o);
        o->struct_size = sizeof *o;
    }
    if (o->batch < 1 || o->seq < 1 || o->seq > m->cfg.block_size || o->grad_accum < 1 ||
        o->warmup_steps < 0 || o->max_steps < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: needs batch >= 1, 1 <= seq <= block_size (%d), grad_accum >= "
                                 "1, warmup_steps >= 0, max_steps >= 1", fn,
                                 (int)m->cfg.block_size);
    float f[] = {o->lr, o->min_lr, o->eps, o->weight_decay, o->grad_clip};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!isfinite(f[i]) || f[i] < 0.0f)
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: lr, min_lr, eps, weight_decay and grad_clip must be "
                                     "finite and >= 0", fn);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f && o->beta2 >= 0.0f && o->beta2 < 1.0f))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: betas must be in [0, 1)", fn);
    if (o->reserved0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: reserved0 is not zero", fn);
    return SCALAR_OK;
}

scalar_status scalar_model_trainer_create(scalar_model_trainer **out, scalar_model *model,
                                          const scalar_model_trainer_options *options)
{
    static const char fn[] = "scalar_model_trainer_create";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!model)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model is NULL", fn);
    scalar_model_trainer_options o;
    TRY(read_options(&o, options, model, fn));
    scalar_model_trainer *t = scalar__calloc(model->ctx, 1, sizeof *t, "trainer");
    if (!t)
        return SCALAR_E_NOMEM;
    t->opt = o;
    size_t bytes = (size_t)model->n_params * sizeof(float);
    scalar_status st = scalar_model_workspace_create(&t->ws, model, o.batch, o.seq,
                                                     SCALAR_WORKSPACE_GRAD);
    if (st == SCALAR_OK)
        st = scalar_backend_buffer_alloc((void **)&t->m, model->backend, bytes);
    if (st == SCALAR_OK)
        st = scalar_backend_buffer_alloc((void **)&t->v, model->backend, bytes);
    if (st != SCALAR_OK) {
        t->model = model;
        scalar__model_retain(model);
        scalar_model_trainer_free(t);
        return st;
    }
    memset(t->m, 0, bytes);
    memset(t->v, 0, bytes);
    t->model = model;
    scalar__model_retain(model);
    *out = t;
    return SCALAR_OK;
}

void scalar_model_trainer_free(scalar_model_trainer *t)
{
    if (!t)
        return;
    scalar_model *m = t->model;
    size_t bytes = (size_t)m->n_params * sizeof(float);
    scalar_backend_buffer_free(m->backend, t->m, bytes);
    scalar_backend_buffer_free(m->backend, t->v, bytes);
    scalar_model_workspace_free(t->ws);
    scalar__free(m->ctx, t);
    scalar_model_free(m);
}

float scalar_model_trainer_lr(const scalar_model_trainer *t, int64_t step)
{
    if (!t || step < 0)
        return 0.0f;
    const scalar_model_trainer_options *o = &t->opt;
    return scalar__lr_warmup_cosine(step, o->warmup_steps, o->max_steps, o->lr, o->min_lr);
}

int64_t scalar_model_trainer_steps(const scalar_model_trainer *t)
{
    return t ? t->step : 0;
}

scalar_status scalar_model_trainer_step(scalar_model_trainer *t, const int32_t *x, const int32_t *y,
                                        float *loss, float *grad_norm)
{
    static const char fn[] = "scalar_model_trainer_step";
    if (!t || !x || !y)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer, x or y is NULL", fn);
    scalar_model *m = t->model;
    scalar_backend *be = m->backend;
    const scalar_model_trainer_options *o = &t->opt;
    int64_t BT = o->batch * o->seq;
    TRY(scalar_model_workspace_zero_grad(t->ws));
    double loss_sum = 0.0;
    for (int64_t a = 0; a < o->grad_accum; a++) {
        float l = 0.0f;
        TRY(scalar_model_forward(m, t->ws, x + a * BT, y + a * BT, o->batch, o->seq, NULL, &l));
        TRY(scalar_model_backward(m, t->ws));
        loss_sum += l;
    }
    double sumsq = 0.0;
    TRY(scalar_backend_sumsq(be, &sumsq, t->ws->grad, m->n_params));
    double inv_accum = 1.0 / (double)o->grad_accum;
    double norm = sqrt(sumsq) * inv_accum;
    float mean_loss = (float)(loss_sum * inv_accum);
    if (loss)
        *loss = mean_loss;
    if (grad_norm)
        *grad_norm = (float)norm;
    if (!isfinite(norm) || !isfinite(mean_loss))
        return scalar__error_set(SCALAR_E_NUMERIC,
                                 "%s: step %lld: loss %g, gradient norm %g; the parameters are "
                                 "unchanged", fn, (long long)t->step, (double)mean_loss, norm);
    /* torch.nn.utils.clip_grad_norm_: coef = clip / (norm + 1e-6), clamped to 1. */
    double coef = 1.0;
    if (o->grad_clip > 0.0f) {
        coef = (double)o->grad_clip / (norm + 1e-6);
        if (coef > 1.0)
            coef = 1.0;
    }
    float scale = (float)(inv_accum * coef);
    float lr = scalar_model_trainer_lr(t, t->step);
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const scalar__param *p = &m->params[i];
        float wd = p->ndim >= 2 ? o->weight_decay : 0.0f;
        TRY(scalar_backend_adamw(be, m->data + p->offset, t->ws->grad + p->offset,
                                 t->m + p->offset, t->v + p->offset, p->rows * p->cols, lr,
                                 o->beta1, o->beta2, o->eps, wd, scale, t->step + 1));
    }
    t->step++;
    return SCALAR_OK;
}

scalar_status scalar_model_trainer_save(const scalar_model_trainer *t, const char *path)
{
    static const char fn[] = "scalar_model_trainer_save";
    if (!t || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or path is NULL", fn);
    const scalar_model *m = t->model;
    scalar_safetensors_writer *w = NULL;
    TRY(scalar_safetensors_writer_create(&w, m->ctx));
    int64_t n = m->n_params, one = 1;
    int64_t step = t->step;
    scalar_status st = scalar_safetensors_writer_set_metadata(w, "format", "scalar-adamw-1");
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_add(w, "adamw.m", SCALAR_DTYPE_F32, &n, 1, t->m,
                                           (size_t)n * sizeof(float));
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_add(w, "adamw.v", SCALAR_DTYPE_F32, &n, 1, t->v,
                                           (size_t)n * sizeof(float));
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_add(w, "adamw.step", SCALAR_DTYPE_I64, &one, 1, &step,
                                           sizeof step);
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    return st;
}

scalar_status scalar_model_trainer_load(scalar_model_trainer *t, const char *path)
{
    static const char fn[] = "scalar_model_trainer_load";
    if (!t || !path)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: trainer or path is NULL", fn);
    const scalar_model *m = t->model;
    scalar_safetensors *st = NULL;
    TRY(scalar_safetensors_open(&st, m->ctx, path));
    size_t im, iv, is;
    uint64_t n = (uint64_t)m->n_params;
    scalar_status s = scalar__safetensors_find_1d(st, "adamw.m", SCALAR_DTYPE_F32, n, path, &im);
    if (s == SCALAR_OK)
        s = scalar__safetensors_find_1d(st, "adamw.v", SCALAR_DTYPE_F32, n, path, &iv);
    if (s == SCALAR_OK)
        s = scalar__safetensors_find_1d(st, "adamw.step", SCALAR_DTYPE_I64, 1, path, &is);
    const void *step_data = NULL;
    size_t step_bytes = 0;
    if (s == SCALAR_OK)
        s = scalar_safetensors_data(&step_data, &step_bytes, st, is);
    int64_t step = 0;
    if (s == SCALAR_OK) {
        memcpy(&step, step_data, sizeof step);
        if (step < 0)
            s = scalar__error_set(SCALAR_E_FORMAT, "%s: adamw.step is negative", path);
    }
    /* Read into the live buffers only once everything checked out. */
    if (s == SCALAR_OK)
        s = scalar_safetensors_read_f32(t->m, (size_t)n, st, im);
    if (s == SCALAR_OK)
        s = scalar_safetensors_read_f32(t->v, (size_t)n, st, iv);
    if (s == SCALAR_OK)
        t->step = step;
    scalar_safetensors_free(st);
    return s;
}

float scalar__lr_warmup_cosine(int64_t step, int64_t warmup, int64_t max_steps, float lr,
                               float min_lr)
{
    if (step < warmup)
        return lr * (float)(step + 1) / (float)warmup;
    if (step >= max_steps || max_steps <= warmup)
        return min_lr;
    double ratio = (double)(step - warmup) / (double)(max_steps - warmup);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * ratio));
    return (float)(min_lr + coeff * (double)(lr - min_lr));
}
