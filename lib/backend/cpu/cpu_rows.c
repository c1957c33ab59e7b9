/*
 * cpu_rows.c - cpu row selection and movement: top-k, gather, scatter-add.
 *
 * Dimension legend (row-major):
 *   n_rows, n_cols  rows and columns of top-k's input
 *   k               entries kept per row
 *   n_idx           rows gathered or scattered
 *   n_src_rows, n_dst_rows  rows of the gathered source / scattered target
 *   d               row length
 *
 * Threads: OpenMP over rows (top-k, gather) or column blocks (scatter-add),
 * static schedule, above SCALAR__CPU_PAR_MIN_WORK elements.  Results are
 * exactly cpu-ref's: top-k's order is a strict total order, and scatter-add
 * sums every element in i order as cpu-ref does.
 */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "simd.h"

/* Top-k scans a row in blocks of this many entries and skips a block at once
 * when none of them can enter the current top k (one compare per vector). */
#define TOPK_BLOCK 64
/* The floor pass takes lane-wise maxima over groups of this many vectors,
 * at most TOPK_MAX_CHUNKS of them. */
#define TOPK_GROUP_VECS 16
#define TOPK_MAX_CHUNKS 4096
/* Columns per block of scatter-add: each block belongs to one thread. */
#define SCATTER_COL_BLOCK 64

/* ---- top-k ---- */

/* Rank order: larger values first, NaN after every number, equal values by
 * lower column.  Identical to cpu-ref's rule (lib/backend/ref/ref_rows.c). */
static inline int ranks_before(float va, int32_t ia, float vb, int32_t ib)
{
    int a_nan = isnan(va), b_nan = isnan(vb);
    if (a_nan != b_nan)
        return b_nan;
    if (!a_nan && va != vb)
        return va > vb;
    return ia < ib;
}

/* Restore the heap below `pos`.  The heap keeps the entry that ranks last at
 * the root: it is the one a better candidate replaces. */
static void sift_down(float *val, int32_t *idx, int64_t size, int64_t pos)
{
    float v = val[pos];
    int32_t id = idx[pos];
    for (;;) {
        int64_t child = 2 * pos + 1;
        if (child >= size)
            break;
        int64_t right = child + 1;
        if (right < size && ranks_before(val[child], idx[child], val[right], idx[right]))
            child = right; /* the child that ranks later */
        if (!ranks_before(v, id, val[child], idx[child]))
            break;
        val[pos] = val[child];
        idx[pos] = idx[child];
        pos = child;
    }
    val[pos] = v;
    idx[pos] = id;
}

/* 1 if some x[0..TOPK_BLOCK) is > top and >= floor (NaN never is). */
static int block_beats(const float *x, float top, float floor)
{
    scalar__vi beats = {0};
    for (int64_t j = 0; j < TOPK_BLOCK; j += VF_LANES) {
        scalar__vf v = vf_load(x + j);
        beats |= (v > vf_splat(top)) & (v >= vf_splat(floor));
    }
    return vf_any(beats);
}

/* Partition a[lo..hi] around a pivot; returns the k-th largest (0-based) of
 * a[0..n) (quickselect, numbers only; a is scratch). */
static float kth_largest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot)
                i++;
            while (a[j] < pivot)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* A lower bound on the k-th largest entry of x[0..n): the k-th largest of
 * maxima of disjoint sets (k distinct entries are >= it).  Each group of
 * TOPK_GROUP_VECS vectors gives VF_LANES maxima, lane-wise (lane l's set is
 * the group's entries at l, l + VF_LANES, ...): vector max only, no
 * horizontal step.  -inf when it cannot help: a NaN in the row, or fewer
 * maxima than k. */
static float topk_floor(const float *x, int64_t n, int64_t k)
{
    float maxima[TOPK_MAX_CHUNKS];
    const int64_t group = TOPK_GROUP_VECS * VF_LANES;
    int64_t n_groups = n / group, n_max = n_groups * VF_LANES;
    if (n_max < k || n_max > TOPK_MAX_CHUNKS)
        return -INFINITY;
    scalar__vi nan = {0};
    for (int64_t g = 0; g < n_groups; g++) {
        const float *p = x + g * group;
        scalar__vf m = vf_load(p);
        nan |= m != m;
        for (int64_t v = 1; v < TOPK_GROUP_VECS; v++) {
            scalar__vf y = vf_load(p + v * VF_LANES);
            nan |= y != y;
            m = vf_select(y > m, y, m);
        }
        vf_store(maxima + g * VF_LANES, m);
    }
    for (int64_t j = n_groups * group; j < n; j++)
        if (isnan(x[j]))
            return -INFINITY;
    if (vf_any(nan))
        return -INFINITY;
    return kth_largest(maxima, n_max, k - 1);
}

/* One row, k >= 1.  The output row itself is the heap, so nothing is
 * allocated: O(n_cols + replacements * log k), then a heap sort.  Columns
 * arrive in ascending order, so a candidate beats the root only by ranking
 * strictly before it: a larger value, or a number against a NaN root.
 * Entries below topk_floor() cannot be kept, so they are skipped (a block
 * at a time) even while the heap still holds weak early entries. */
static void topk_row(float *val, int32_t *idx, const float *x, int64_t n, int64_t k)
{
    float floor = topk_floor(x, n, k);
    for (int64_t j = 0; j < k; j++) {
        val[j] = x[j];
        idx[j] = (int32_t)j;
    }
    for (int64_t pos = k / 2 - 1; pos >= 0; pos--)
        sift_down(val, idx, k, pos);
    int64_t j = k;
    while (j < n) {
        if (!isnan(val[0]))
            while (j + TOPK_BLOCK <= n && !block_beats(x + j, val[0], floor))
                j += TOPK_BLOCK;
        int64_t end = n - j < TOPK_BLOCK ? n : j + TOPK_BLOCK;
        if (end - j == TOPK_BLOCK && !isnan(val[0])) {
            /* a full block: visit only the lanes that pass, a vector at a time */
            for (int64_t j0 = j; j0 < end; j0 += VF_LANES) {
                scalar__vf v = vf_load(x + j0);
                uint32_t bits = vf_mask_bits((v > vf_splat(val[0])) & (v >= vf_splat(floor)));
                while (bits) {
                    int64_t jj = j0 + __builtin_ctz(bits);
                    bits &= bits - 1;
                    if (x[jj] > val[0]) { /* the root may have risen meanwhile */
                        val[0] = x[jj];
                        idx[0] = (int32_t)jj;
                        sift_down(val, idx, k, 0);
                    }
                }
            }
            j = end;
            continue;
        }
        for (; j < end; j++) {
            float v = x[j];
            if (isnan(val[0]) ? !isnan(v) : v > val[0] && v >= floor) {
                val[0] = v;
                idx[0] = (int32_t)j;
                sift_down(val, idx, k, 0);
            }
        }
    }
    for (int64_t last = k - 1; last > 0; last--) { /* heap sort: worst entries to the back */
        float v = val[0];
        int32_t id = idx[0];
        val[0] = val[last];
        idx[0] = idx[last];
        val[last] = v;
        idx[last] = id;
        sift_down(val, idx, last, 0);
    }
}

/* The k largest entries of every row, in rank order
 *   out_values:  [n_rows, k]
 *   out_indices: [n_rows, k]
 *   in:          [n_rows, n_cols], n_cols <= INT32_MAX */
scalar_status scalar__cpu_topk_rows(void *self, float *out_values, int32_t *out_indices,
                                    const float *in, int64_t n_rows, int64_t n_cols, int64_t k)
{
    const scalar__cpu *s = self;
    if (k == 0)
        return SCALAR_OK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_rows * n_cols))
    for (int64_t r = 0; r < n_rows; r++)
        topk_row(out_values + r * k, out_indices + r * k, in + r * n_cols, n_cols, k);
    return SCALAR_OK;
}

/* ---- gather / scatter ---- */

/* out[i, :] = src[idx[i], :]
 *   out: [n_idx, d]
 *   src: [n_src_rows, d]
 *   idx: [n_idx], in range (checked by the dispatcher) */
scalar_status scalar__cpu_gather_rows(void *self, float *out, const float *src,
                                      const int32_t *idx, int64_t n_idx, int64_t n_src_rows,
                                      int64_t d)
{
    const scalar__cpu *s = self;
    (void)n_src_rows;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_idx * d))
    for (int64_t i = 0; i < n_idx; i++)
        memcpy(out + i * d, src + (int64_t)idx[i] * d, (size_t)d * sizeof(float));
    return SCALAR_OK;
}

/* dst[idx[i], :] += src[i, :] for i ascending
 *   dst: [n_dst_rows, d], accumulated
 *   src: [n_idx, d]
 *   idx: [n_idx], in range (checked by the dispatcher), repeats allowed
 * Threads split the columns, never the rows: repeated indices would race, and
 * each element must see its additions in i order for a result independent of
 * the thread count (and equal to cpu-ref's). */
scalar_status scalar__cpu_scatter_add_rows(void *self, float *dst, const float *src,
                                           const int32_t *idx, int64_t n_idx, int64_t n_dst_rows,
                                           int64_t d)
{
    const scalar__cpu *s = self;
    (void)n_dst_rows;
    int64_t n_blocks = (d + SCATTER_COL_BLOCK - 1) / SCATTER_COL_BLOCK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_idx * d) && n_blocks > 1)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        int64_t c0 = blk * SCATTER_COL_BLOCK;
        int64_t nc = d - c0 < SCATTER_COL_BLOCK ? d - c0 : SCATTER_COL_BLOCK;
        for (int64_t i = 0; i < n_idx; i++) {
            float *dst_row = dst + (int64_t)idx[i] * d + c0;
            const float *src_row = src + i * d + c0;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++)
                dst_row[j] += src_row[j];
        }
    }
    return SCALAR_OK;
}
