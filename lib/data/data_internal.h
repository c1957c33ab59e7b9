/* data_internal.h - what the files under lib/data/ share. */
#ifndef SCALAR_DATA_INTERNAL_H
#define SCALAR_DATA_INTERNAL_H

#include "../internal.h"

struct scalar_dataset {
    scalar_ctx *ctx;  /* retained */
    int32_t *tokens;  /* [n_tokens], context memory, owned */
    int64_t n_tokens; /* >= 1 */
    int64_t n_train;  /* tokens [0, n_train) train, [n_train, n_tokens) validate */
    int32_t vocab;    /* every token is in [0, vocab) */
};

/* ascii.c: ids of `n` bytes (no argument checks). */
void scalar__ascii_encode(int32_t *out_ids, const unsigned char *bytes, size_t n);

/* dataset.c: read `given` (NULL: defaults) under the struct_size rule of
 * scalar_ctx_create and check every field's range; `fn` names the caller. */
scalar_status scalar__dataset_options_read(scalar_dataset_options *o,
                                           const scalar_dataset_options *given, const char *fn);

/* dataset.c: require ids[i] >= 0 and, if vocab > 0, ids[i] < vocab; raise
 * *max_id to the largest id seen.  A failure is `status` with a message
 * "fn: src: id V at index I ...". */
scalar_status scalar__dataset_check_ids(int32_t *max_id, const int32_t *ids, uint64_t n,
                                        int32_t vocab, scalar_status status, const char *fn,
                                        const char *src);

/* dataset.c: wrap `tokens` (context memory, n >= 1, ids already checked) in a
 * dataset with the split of `o`.  The vocabulary is o->vocab if set, else
 * max(min_vocab, max_id + 1).  Takes ownership of `tokens` whatever happens. */
scalar_status scalar__dataset_make(scalar_dataset **out, scalar_ctx *ctx, int32_t *tokens,
                                   int64_t n, int32_t max_id, int32_t min_vocab,
                                   const scalar_dataset_options *o, const char *fn);

#endif
