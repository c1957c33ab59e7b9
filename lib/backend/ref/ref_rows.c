/*
 * ref_rows.c - cpu-ref row selection and movement: top-k, gather, scatter-add.
 *
 * Dimension legend (row-major):
 *   n_rows, n_cols  rows and columns of top-k's input
 *   k               entries kept per row
 *   n_idx           rows gathered or scattered
 *   n_src_rows, n_dst_rows  rows of the gathered source / scattered target
 *   d               row length
 */
#include <math.h>

#include "ref.h"

/* The one order of top-k: larger values first, NaN after every number
 * (-inf included), and among equals the lower column first.  Column indices
 * are unique, so this is a strict total order and the result is unique. */
static int ranks_before(float va, int64_t ia, float vb, int64_t ib)
{
    int a_nan = isnan(va), b_nan = isnan(vb);
    if (a_nan != b_nan)
        return b_nan;
    if (!a_nan && va != vb)
        return va > vb;
    return ia < ib;
}

/* out_values[r, t], out_indices[r, t] = the t-th entry of row r in rank order
 *   out_values:  [n_rows, k]
 *   out_indices: [n_rows, k]
 *   in:          [n_rows, n_cols]
 * Selection by successors: pick the best entry that ranks after the previous
 * pick, k times.  O(n_cols * k) per row and no memory: an oracle, not fast. */
scalar_status scalar__ref_topk_rows(void *self, float *out_values, int32_t *out_indices,
                                    const float *in, int64_t n_rows, int64_t n_cols, int64_t k)
{
    (void)self;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = in + r * n_cols;
        int64_t prev = -1;
        for (int64_t t = 0; t < k; t++) {
            int64_t best = -1;
            for (int64_t j = 0; j < n_cols; j++) {
                if (prev >= 0 && !ranks_before(x[prev], prev, x[j], j))
                    continue; /* already picked, or ranks before the previous pick */
                if (best < 0 || ranks_before(x[j], j, x[best], best))
                    best = j;
            }
            out_values[r * k + t] = x[best];
            out_indices[r * k + t] = (int32_t)best;
            prev = best;
        }
    }
    return SCALAR_OK;
}

/* out[i, :] = src[idx[i], :]
 *   out: [n_idx, d]
 *   src: [n_src_rows, d]
 *   idx: [n_idx], each in [0, n_src_rows) (checked by the dispatcher) */
scalar_status scalar__ref_gather_rows(void *self, float *out, const float *src,
                                      const int32_t *idx, int64_t n_idx, int64_t n_src_rows,
                                      int64_t d)
{
    (void)self;
    (void)n_src_rows;
    for (int64_t i = 0; i < n_idx; i++)
        for (int64_t c = 0; c < d; c++)
            out[i * d + c] = src[(int64_t)idx[i] * d + c];
    return SCALAR_OK;
}

/* dst[idx[i], :] += src[i, :] for i = 0, 1, ..., n_idx - 1 in that order
 *   dst: [n_dst_rows, d], accumulated
 *   src: [n_idx, d]
 *   idx: [n_idx], each in [0, n_dst_rows) (checked by the dispatcher) */
scalar_status scalar__ref_scatter_add_rows(void *self, float *dst, const float *src,
                                           const int32_t *idx, int64_t n_idx, int64_t n_dst_rows,
                                           int64_t d)
{
    (void)self;
    (void)n_dst_rows;
    for (int64_t i = 0; i < n_idx; i++)
        for (int64_t c = 0; c < d; c++)
            dst[(int64_t)idx[i] * d + c] += src[i * d + c];
    return SCALAR_OK;
}
