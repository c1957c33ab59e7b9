/*
 * check_data.c - the "data" suite: the ASCII tokenizer, dataset options, the
 * train/val split, datasets from memory, token ranges, and both batch readers.
 * Files (text, .npy, .bin, Tiny Shakespeare, allocation failures) are in
 * check_data_load.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_data.h"

int64_t data_n(const scalar_dataset *ds, int32_t split)
{
    int64_t n = -1;
    ck_assert_int_eq(scalar_dataset_n_tokens(ds, split, &n), SCALAR_OK);
    return n;
}

/* A dataset of the ids 0 .. n-1 with the given split. */
static scalar_dataset *iota_dataset(int64_t n, double val_fraction, int64_t split_multiple)
{
    scalar_dataset_options o;
    scalar_dataset *ds = NULL;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)i;
    scalar_dataset_options_init(&o, sizeof o);
    o.val_fraction = val_fraction;
    o.split_multiple = split_multiple;
    DATA_OK(scalar_dataset_create_from_ids(&ds, io_ctx, ids, (size_t)n, &o), ds);
    free(ids);
    return ds;
}

/* ---- ASCII tokenizer ---- */

START_TEST(test_ascii_vocab_size_is_128)
{
    ck_assert_int_eq(scalar_ascii_vocab_size(), 128);
    ck_assert_int_eq(SCALAR_ASCII_VOCAB_SIZE, 128);
    ck_assert_int_eq(SCALAR_ASCII_UNKNOWN_ID, '?');
}
END_TEST

START_TEST(test_ascii_encode_maps_every_byte)
{
    char text[256];
    int32_t ids[256];
    for (int i = 0; i < 256; i++)
        text[i] = (char)i;
    ck_assert_int_eq(scalar_ascii_encode(text, 256, ids), SCALAR_OK);
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(ids[i], i < 128 ? i : '?');
    /* UTF-8 is bytes: "é" is two bytes, so two '?'. */
    ck_assert_int_eq(scalar_ascii_encode("\xc3\xa9!", 3, ids), SCALAR_OK);
    ck_assert_int_eq(ids[0], '?');
    ck_assert_int_eq(ids[1], '?');
    ck_assert_int_eq(ids[2], '!');
}
END_TEST

START_TEST(test_ascii_encode_rejects_null)
{
    int32_t ids[3];
    IO_EXPECT(scalar_ascii_encode(NULL, 3, ids), SCALAR_E_INVALID_ARG, "scalar_ascii_encode");
    IO_EXPECT(scalar_ascii_encode("abc", 3, NULL), SCALAR_E_INVALID_ARG, "NULL");
    ck_assert_int_eq(scalar_ascii_encode(NULL, 0, NULL), SCALAR_OK);
}
END_TEST

START_TEST(test_ascii_decode_round_trips)
{
    static const char text[] = "First Citizen:\nBefore we proceed any further, hear me speak.";
    size_t n = sizeof text - 1;
    int32_t ids[sizeof text];
    char out[sizeof text];
    ck_assert_int_eq(scalar_ascii_encode(text, n, ids), SCALAR_OK);
    memset(out, 'x', sizeof out);
    ck_assert_int_eq(scalar_ascii_decode(ids, n, out, n + 1), SCALAR_OK); /* exactly enough */
    ck_assert_str_eq(out, text);
    ck_assert_int_eq(scalar_ascii_decode(NULL, 0, out, 1), SCALAR_OK);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_ascii_decode_rejects_bad_ids_and_small_buffers)
{
    int32_t ids[4] = {'a', 'b', -1, 'c'};
    char out[8] = "unset";
    IO_EXPECT(scalar_ascii_decode(ids, 4, out, sizeof out), SCALAR_E_INVALID_ARG,
              "id -1 at index 2");
    ids[2] = 128;
    IO_EXPECT(scalar_ascii_decode(ids, 4, out, sizeof out), SCALAR_E_INVALID_ARG,
              "id 128 at index 2 is outside [0, 128)");
    ids[2] = 'z';
    IO_EXPECT(scalar_ascii_decode(ids, 4, out, 4), SCALAR_E_BUFSIZE, "need 5 bytes");
    IO_EXPECT(scalar_ascii_decode(ids, 4, out, 0), SCALAR_E_BUFSIZE, "out_size is 0");
    ck_assert_str_eq(out, "unset"); /* nothing written on failure */
    IO_EXPECT(scalar_ascii_decode(ids, 4, NULL, 8), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_ascii_decode(NULL, 4, out, 8), SCALAR_E_INVALID_ARG, "NULL");
    ck_assert_int_eq(scalar_ascii_decode(ids, 4, out, 5), SCALAR_OK);
    ck_assert_str_eq(out, "abzc");
}
END_TEST

/* ---- options ---- */

START_TEST(test_dataset_options_init_defaults)
{
    scalar_dataset_options o;
    memset(&o, 0x5A, sizeof o);
    ck_assert_int_eq(scalar_dataset_options_init(&o, sizeof o), SCALAR_OK);
    ck_assert_uint_eq(o.struct_size, sizeof o);
    ck_assert(o.val_fraction == 0.1);
    ck_assert_int_eq(o.split_multiple, 256);
    ck_assert_int_eq(o.format, SCALAR_DATA_AUTO);
    ck_assert_int_eq(o.vocab, 0);
    ck_assert_uint_eq(scalar_dataset_options_size(), sizeof o);
    IO_EXPECT(scalar_dataset_options_init(NULL, sizeof o), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_options_init(&o, sizeof o - 1), SCALAR_E_INVALID_ARG, "struct_size");
}
END_TEST

/* A binding built against a newer header passes a larger struct: accepted
 * while the fields this library does not know are zero. */
START_TEST(test_dataset_options_struct_size_rule)
{
    struct {
        scalar_dataset_options o;
        uint64_t future[2];
    } big;
    scalar_dataset *ds = NULL;
    memset(&big, 0x77, sizeof big);
    ck_assert_int_eq(scalar_dataset_options_init(&big.o, sizeof big), SCALAR_OK);
    ck_assert_uint_eq(big.o.struct_size, sizeof big);
    ck_assert_uint_eq(big.future[0] | big.future[1], 0); /* init zeroes the whole struct */
    big.o.split_multiple = 1;
    DATA_OK(scalar_dataset_create_from_text(&ds, io_ctx, "abcdefghij", 10, &big.o), ds);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 9);
    scalar_dataset_free(ds);

    big.future[1] = 1;
    ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, "abc", 3, &big.o), SCALAR_E_VERSION,
              "not zero");
    ck_assert_ptr_null(ds);
    big.o.struct_size = 8;
    IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, "abc", 3, &big.o), SCALAR_E_VERSION,
              "scalar_dataset_options_init");
}
END_TEST

START_TEST(test_dataset_options_out_of_range)
{
    static const struct {
        double val_fraction;
        int64_t split_multiple;
        int32_t format, vocab;
        const char *msg;
    } bad[] = {
        {-0.1, 256, 0, 0, "val_fraction=-0.1 must be in [0, 1)"},
        {1.0, 256, 0, 0, "val_fraction=1 must be"},
        {1.5, 256, 0, 0, "val_fraction"},
        {NAN, 256, 0, 0, "val_fraction=nan"},
        {0.1, 0, 0, 0, "split_multiple=0 must be >= 1"},
        {0.1, -256, 0, 0, "split_multiple=-256"},
        {0.1, 256, 4, 0, "format=4"},
        {0.1, 256, -1, 0, "format=-1"},
        {0.1, 256, 0, -1, "vocab=-1"},
    };
    static const int32_t ids[3] = {1, 2, 3};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scalar_dataset_options o;
        scalar_dataset *ds = (scalar_dataset *)&ds;
        scalar_dataset_options_init(&o, sizeof o);
        o.val_fraction = bad[i].val_fraction;
        o.split_multiple = bad[i].split_multiple;
        o.format = bad[i].format;
        o.vocab = bad[i].vocab;
        IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, ids, 3, &o), SCALAR_E_INVALID_ARG,
                  bad[i].msg);
        ck_assert_ptr_null(ds);
        IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, "abc", 3, &o),
                  SCALAR_E_INVALID_ARG, bad[i].msg);
    }
}
END_TEST

/* ---- the split ---- */

START_TEST(test_dataset_split_rule)
{
    static const struct {
        int64_t n;
        double val_fraction;
        int64_t split_multiple, n_train;
    } t[] = {
        {1115394, 0.1, 256, 1003776}, /* Tiny Shakespeare: int(0.9 * n) = 1003854 -> 1003776 */
        {1115394, 0.1, 1, 1003854},
        {1000, 0.1, 256, 768},
        {1000, 0.1, 1, 900},
        {10, 0.1, 1, 9},    /* 0.9 * 10 is 9.000000000000002 in floating point, not 8 */
        {7, 0.5, 1, 3},     /* floor(3.5) */
        {3, 0.9, 1, 0},     /* floor(0.3) */
        {100, 0.1, 256, 0}, /* too short for one multiple: everything validates */
        {1024, 0.0, 256, 1024},
        {1000, 0.0, 256, 768}, /* val_fraction 0 still rounds down */
        {1, 0.0, 1, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        scalar_dataset *ds = iota_dataset(t[i].n, t[i].val_fraction, t[i].split_multiple);
        ck_assert_msg(data_n(ds, SCALAR_SPLIT_TRAIN) == t[i].n_train,
                      "n=%lld f=%g m=%lld: train %lld, expected %lld", (long long)t[i].n,
                      t[i].val_fraction, (long long)t[i].split_multiple,
                      (long long)data_n(ds, SCALAR_SPLIT_TRAIN), (long long)t[i].n_train);
        ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_VAL), t[i].n - t[i].n_train);
        ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_ALL), t[i].n);
        scalar_dataset_free(ds);
    }
}
END_TEST

/* ---- datasets from memory ---- */

START_TEST(test_dataset_from_text)
{
    scalar_dataset *ds = NULL;
    scalar_dataset_options o;
    int32_t got[6], vocab;
    scalar_dataset_options_init(&o, sizeof o);
    o.split_multiple = 1;
    DATA_OK(scalar_dataset_create_from_text(&ds, io_ctx, "hi\xff\0!x", 6, &o), ds);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &vocab), SCALAR_OK);
    ck_assert_int_eq(vocab, 128); /* text: always the tokenizer's vocabulary */
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 5);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_ALL, 0, 6, got), SCALAR_OK);
    const int32_t want[6] = {'h', 'i', '?', 0, '!', 'x'};
    ck_assert_mem_eq(got, want, sizeof want);
    scalar_dataset_free(ds);

    o.vocab = 300;
    DATA_OK(scalar_dataset_create_from_text(&ds, io_ctx, "abc", 3, &o), ds);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &vocab), SCALAR_OK);
    ck_assert_int_eq(vocab, 300);
    scalar_dataset_free(ds);

    o.vocab = 100;
    ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, "abcz", 4, &o), SCALAR_E_INVALID_ARG,
              "id 122 at index 3 is not below the vocabulary size 100");
    ck_assert_ptr_null(ds);
    IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, "", 0, NULL), SCALAR_E_INVALID_ARG,
              "at least one token");
    IO_EXPECT(scalar_dataset_create_from_text(&ds, io_ctx, NULL, 3, NULL), SCALAR_E_INVALID_ARG,
              "NULL");
    IO_EXPECT(scalar_dataset_create_from_text(&ds, NULL, "abc", 3, NULL), SCALAR_E_INVALID_ARG,
              "NULL");
    IO_EXPECT(scalar_dataset_create_from_text(NULL, io_ctx, "abc", 3, NULL),
              SCALAR_E_INVALID_ARG, "NULL");
}
END_TEST

START_TEST(test_dataset_from_ids_vocab)
{
    static const int32_t ids[5] = {3, 1, 4, 1, 5};
    scalar_dataset *ds = NULL;
    scalar_dataset_options o;
    int32_t vocab;
    DATA_OK(scalar_dataset_create_from_ids(&ds, io_ctx, ids, 5, NULL), ds);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &vocab), SCALAR_OK);
    ck_assert_int_eq(vocab, 6); /* max id + 1 */
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 0);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_VAL), 5);
    scalar_dataset_free(ds);

    scalar_dataset_options_init(&o, sizeof o);
    o.vocab = 50257;
    DATA_OK(scalar_dataset_create_from_ids(&ds, io_ctx, ids, 5, &o), ds);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &vocab), SCALAR_OK);
    ck_assert_int_eq(vocab, 50257);
    scalar_dataset_free(ds);

    o.vocab = 5;
    ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, ids, 5, &o), SCALAR_E_INVALID_ARG,
              "id 5 at index 4 is not below the vocabulary size 5");
    ck_assert_ptr_null(ds);
    const int32_t neg[3] = {1, -2, 3};
    IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, neg, 3, NULL), SCALAR_E_INVALID_ARG,
              "id -2 at index 1 is negative");
    const int32_t huge[2] = {0, INT32_MAX};
    IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, huge, 2, NULL), SCALAR_E_INVALID_ARG,
              "id 2147483647 at index 1");
    IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, ids, 0, NULL), SCALAR_E_INVALID_ARG,
              "at least one token");
    IO_EXPECT(scalar_dataset_create_from_ids(&ds, io_ctx, NULL, 5, NULL), SCALAR_E_INVALID_ARG,
              "NULL");
}
END_TEST

START_TEST(test_dataset_tokens_ranges)
{
    scalar_dataset *ds = iota_dataset(100, 0.25, 10); /* train 70, val 30 */
    int32_t out[100];
    int32_t vocab = 0;
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 70);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_TRAIN, 65, 5, out), SCALAR_OK);
    ck_assert_int_eq(out[0], 65);
    ck_assert_int_eq(out[4], 69);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, 0, 30, out), SCALAR_OK);
    ck_assert_int_eq(out[0], 70);
    ck_assert_int_eq(out[29], 99);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_ALL, 0, 100, out), SCALAR_OK);
    ck_assert_int_eq(out[99], 99);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, 30, 0, NULL), SCALAR_OK);
    IO_EXPECT(scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, 1, 30, out), SCALAR_E_INVALID_ARG,
              "range [1, 1 + 30) is outside split 'val' of 30 tokens");
    IO_EXPECT(scalar_dataset_tokens(ds, SCALAR_SPLIT_TRAIN, -1, 2, out), SCALAR_E_INVALID_ARG,
              "outside split 'train'");
    IO_EXPECT(scalar_dataset_tokens(ds, SCALAR_SPLIT_TRAIN, 0, -1, out), SCALAR_E_INVALID_ARG,
              "outside");
    IO_EXPECT(scalar_dataset_tokens(ds, SCALAR_SPLIT_TRAIN, INT64_MAX, 2, out),
              SCALAR_E_INVALID_ARG, "outside");
    IO_EXPECT(scalar_dataset_tokens(ds, 3, 0, 1, out), SCALAR_E_INVALID_ARG, "split=3");
    IO_EXPECT(scalar_dataset_tokens(ds, SCALAR_SPLIT_ALL, 0, 1, NULL), SCALAR_E_INVALID_ARG,
              "NULL");
    IO_EXPECT(scalar_dataset_tokens(NULL, SCALAR_SPLIT_ALL, 0, 1, out), SCALAR_E_INVALID_ARG,
              "NULL");
    int64_t n;
    IO_EXPECT(scalar_dataset_n_tokens(ds, -1, &n), SCALAR_E_INVALID_ARG, "split=-1");
    IO_EXPECT(scalar_dataset_n_tokens(ds, SCALAR_SPLIT_ALL, NULL), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_n_tokens(NULL, SCALAR_SPLIT_ALL, &n), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_vocab_size(ds, NULL), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_vocab_size(NULL, &vocab), SCALAR_E_INVALID_ARG, "NULL");
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_free_null_and_any_order)
{
    scalar_dataset_free(NULL);
    /* The dataset holds a reference: the context may go first. */
    io_counting c;
    scalar_ctx *ctx = NULL;
    scalar_dataset *ds = NULL;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(io_ctx_with(&ctx, &c), SCALAR_OK);
    DATA_OK(scalar_dataset_create_from_text(&ds, ctx, "abcdef", 6, NULL), ds);
    scalar_ctx_free(ctx);
    ck_assert_uint_gt(c.live_bytes, 0);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_ALL), 6);
    scalar_dataset_free(ds);
    ck_assert_uint_eq(c.live_bytes, 0);
    ck_assert_int_eq(c.n_alloc, c.n_free);
}
END_TEST

/* ---- sequential batches ---- */

/* x = tokens [c, c + B*T), y = x + 1, for a dataset of ids 0 .. n-1 (offset
 * `base` for the val split). */
static void assert_batch_at(const int32_t *x, const int32_t *y, int64_t bt, int64_t first)
{
    for (int64_t i = 0; i < bt; i++) {
        ck_assert_int_eq(x[i], first + i);
        ck_assert_int_eq(y[i], first + i + 1);
    }
}

START_TEST(test_dataset_batch_sequential_and_wrapping)
{
    scalar_dataset *ds = iota_dataset(100, 0.0, 1);
    int32_t x[8], y[8];
    int64_t cursor = 0;
    /* B=2, T=4: 8 tokens per batch, 9 read.  Cursors 0, 8, ..., 88 fit (88 + 9 <= 100). */
    for (int64_t want = 0; want <= 88; want += 8) {
        ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 2, 4, x, y),
                         SCALAR_OK);
        assert_batch_at(x, y, 8, want);
        ck_assert_int_eq(cursor, want + 8);
    }
    ck_assert_int_eq(cursor, 96); /* 96 + 9 > 100: the next batch starts over */
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 2, 4, x, y), SCALAR_OK);
    assert_batch_at(x, y, 8, 0);
    ck_assert_int_eq(cursor, 8);
    /* A saved cursor beyond the end (another dataset's) also starts over. */
    cursor = 1000;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 2, 4, x, y), SCALAR_OK);
    assert_batch_at(x, y, 8, 0);
    scalar_dataset_free(ds);

    /* The boundary: exactly B*T + 1 tokens left is a batch, not a wrap. */
    ds = iota_dataset(17, 0.0, 1);
    cursor = 0;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_ALL, &cursor, 2, 4, x, y), SCALAR_OK);
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_ALL, &cursor, 2, 4, x, y), SCALAR_OK);
    assert_batch_at(x, y, 8, 8);
    ck_assert_int_eq(y[7], 16);
    ck_assert_int_eq(cursor, 16);
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_ALL, &cursor, 2, 4, x, y), SCALAR_OK);
    assert_batch_at(x, y, 8, 0);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_batch_reads_its_split)
{
    scalar_dataset *ds = iota_dataset(100, 0.5, 1); /* train 0..49, val 50..99 */
    int32_t x[6], y[6];
    int64_t cursor = 0;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_VAL, &cursor, 3, 2, x, y), SCALAR_OK);
    assert_batch_at(x, y, 6, 50);
    /* Cursors count from the split's start; the train split never reaches val. */
    cursor = 43;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 3, 2, x, y), SCALAR_OK);
    assert_batch_at(x, y, 6, 43);
    ck_assert_int_eq(y[5], 49);
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 3, 2, x, y), SCALAR_OK);
    assert_batch_at(x, y, 6, 0);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_batch_errors)
{
    scalar_dataset *ds = iota_dataset(8, 0.0, 1);
    int32_t x[8], y[8];
    int64_t cursor = 3;
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 2, 4, x, y), SCALAR_E_SHAPE,
              "split 'train' holds 8 tokens; B=2 x T=4 needs B*T + 1 = 9");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_VAL, &cursor, 1, 1, x, y), SCALAR_E_SHAPE,
              "split 'val' holds 0 tokens");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, INT64_C(1) << 40,
                                   INT64_C(1) << 40, x, y),
              SCALAR_E_SHAPE, "overflow");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 0, 4, x, y),
              SCALAR_E_INVALID_ARG, "B=0 and T=4 must be >= 1");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 1, -1, x, y),
              SCALAR_E_INVALID_ARG, "must be >= 1");
    IO_EXPECT(scalar_dataset_batch(ds, 7, &cursor, 1, 1, x, y), SCALAR_E_INVALID_ARG, "split=7");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 1, 1, NULL, y),
              SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 1, 1, x, NULL),
              SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, NULL, 1, 1, x, y),
              SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_batch(NULL, SCALAR_SPLIT_TRAIN, &cursor, 1, 1, x, y),
              SCALAR_E_INVALID_ARG, "NULL");
    ck_assert_int_eq(cursor, 3); /* failures leave the cursor alone */
    cursor = -1;
    IO_EXPECT(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 1, 1, x, y),
              SCALAR_E_INVALID_ARG, "cursor=-1");
    ck_assert_int_eq(cursor, -1);
    /* B*T + 1 = 8 tokens: exactly enough. */
    cursor = 0;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 7, 1, x, y), SCALAR_OK);
    assert_batch_at(x, y, 7, 0);
    scalar_dataset_free(ds);
}
END_TEST

/* ---- random batches ---- */

START_TEST(test_dataset_batch_random_is_deterministic)
{
    enum { B = 8, T = 16, N = 1000 };
    scalar_dataset *ds = iota_dataset(N, 0.0, 1);
    int32_t x[B * T], y[B * T], x2[B * T], y2[B * T];
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 42, 3, B, T, x, y),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 42, 3, B, T, x2, y2),
                     SCALAR_OK);
    ck_assert_mem_eq(x, x2, sizeof x);
    ck_assert_mem_eq(y, y2, sizeof y);
    for (int b = 0; b < B; b++) {
        int32_t off = x[b * T];
        ck_assert_int_ge(off, 0);
        ck_assert_int_le(off, N - T - 1);
        for (int t = 0; t < T; t++) { /* one contiguous window of T + 1 tokens per row */
            ck_assert_int_eq(x[b * T + t], off + t);
            ck_assert_int_eq(y[b * T + t], off + t + 1);
        }
    }
    /* Another step or seed draws other windows. */
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 42, 4, B, T, x2, y2),
                     SCALAR_OK);
    ck_assert(memcmp(x, x2, sizeof x) != 0);
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 43, 3, B, T, x2, y2),
                     SCALAR_OK);
    ck_assert(memcmp(x, x2, sizeof x) != 0);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_batch_random_offsets_are_pinned)
{
    /* The RNG's (seed, stream) contract: these offsets hold on every machine. */
    static const int32_t want[4] = {973, 184, 25, 17};
    scalar_dataset *ds = iota_dataset(1000, 0.0, 1);
    int32_t x[4 * 2], y[4 * 2];
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_ALL, 0x5CA1A8, 0, 4, 2, x, y),
                     SCALAR_OK);
    for (int b = 0; b < 4; b++)
        ck_assert_msg(x[b * 2] == want[b], "row %d: offset %d, pinned %d", b, x[b * 2], want[b]);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_batch_random_errors)
{
    scalar_dataset *ds = iota_dataset(16, 0.0, 1);
    int32_t x[3 * 15], y[3 * 15];
    IO_EXPECT(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 1, 0, 1, 16, x, y),
              SCALAR_E_SHAPE, "split 'train' holds 16 tokens; B=1 x T=16 needs T + 1 = 17");
    IO_EXPECT(scalar_dataset_batch_random(ds, SCALAR_SPLIT_VAL, 1, 0, 1, 1, x, y),
              SCALAR_E_SHAPE, "holds 0 tokens");
    IO_EXPECT(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 1, 0, 0, 1, x, y),
              SCALAR_E_INVALID_ARG, "B=0");
    IO_EXPECT(scalar_dataset_batch_random(ds, 5, 1, 0, 1, 1, x, y), SCALAR_E_INVALID_ARG,
              "split=5");
    IO_EXPECT(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 1, 0, 1, 1, NULL, y),
              SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_batch_random(NULL, SCALAR_SPLIT_TRAIN, 1, 0, 1, 1, x, y),
              SCALAR_E_INVALID_ARG, "NULL");
    /* T + 1 = 16 tokens: one possible window, every row the same. */
    ck_assert_int_eq(scalar_dataset_batch_random(ds, SCALAR_SPLIT_TRAIN, 9, 9, 3, 15, x, y),
                     SCALAR_OK);
    for (int b = 0; b < 3; b++)
        assert_batch_at(x + b * 15, y + b * 15, 15, 0);
    scalar_dataset_free(ds);
}
END_TEST

Suite *scalar_data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = io_tcase("ascii");
    tcase_add_test(tc, test_ascii_vocab_size_is_128);
    tcase_add_test(tc, test_ascii_encode_maps_every_byte);
    tcase_add_test(tc, test_ascii_encode_rejects_null);
    tcase_add_test(tc, test_ascii_decode_round_trips);
    tcase_add_test(tc, test_ascii_decode_rejects_bad_ids_and_small_buffers);
    suite_add_tcase(s, tc);

    tc = io_tcase("dataset");
    tcase_add_test(tc, test_dataset_options_init_defaults);
    tcase_add_test(tc, test_dataset_options_struct_size_rule);
    tcase_add_test(tc, test_dataset_options_out_of_range);
    tcase_add_test(tc, test_dataset_split_rule);
    tcase_add_test(tc, test_dataset_from_text);
    tcase_add_test(tc, test_dataset_from_ids_vocab);
    tcase_add_test(tc, test_dataset_tokens_ranges);
    tcase_add_test(tc, test_dataset_free_null_and_any_order);
    suite_add_tcase(s, tc);

    tc = io_tcase("batch");
    tcase_add_test(tc, test_dataset_batch_sequential_and_wrapping);
    tcase_add_test(tc, test_dataset_batch_reads_its_split);
    tcase_add_test(tc, test_dataset_batch_errors);
    tcase_add_test(tc, test_dataset_batch_random_is_deterministic);
    tcase_add_test(tc, test_dataset_batch_random_offsets_are_pinned);
    tcase_add_test(tc, test_dataset_batch_random_errors);
    suite_add_tcase(s, tc);

    data_add_load_tests(s);
    return s;
}
