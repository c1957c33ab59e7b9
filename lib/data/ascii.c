/*
 * ascii.c - the ASCII tokenizer of the toy model (SPEC 1): one token per byte,
 * id = byte if below 128, else the id of '?'.
 */
#include "data_internal.h"

_Static_assert(SCALAR_ASCII_UNKNOWN_ID == '?', "the unknown id is that of '?'");

int32_t scalar_ascii_vocab_size(void)
{
    return SCALAR_ASCII_VOCAB_SIZE;
}

void scalar__ascii_encode(int32_t *out_ids, const unsigned char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out_ids[i] = bytes[i] < SCALAR_ASCII_VOCAB_SIZE ? (int32_t)bytes[i]
                                                        : SCALAR_ASCII_UNKNOWN_ID;
}

scalar_status scalar_ascii_encode(const char *text, size_t n, int32_t *out_ids)
{
    if (n && (!text || !out_ids))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_ascii_encode: text and out_ids "
                                 "must not be NULL (n = %zu)", n);
    scalar__ascii_encode(out_ids, (const unsigned char *)text, n);
    return SCALAR_OK;
}

scalar_status scalar_ascii_decode(const int32_t *ids, size_t n, char *out, size_t out_size)
{
    if (!out || (n && !ids))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_ascii_decode: ids and out must "
                                 "not be NULL");
    if (out_size < n || out_size - n < 1)
        return scalar__error_set(SCALAR_E_BUFSIZE, "scalar_ascii_decode: %zu ids need %zu "
                                 "bytes with the NUL, out_size is %zu", n, n + 1, out_size);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= SCALAR_ASCII_VOCAB_SIZE)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "scalar_ascii_decode: id %d at index "
                                     "%zu is outside [0, %d)", (int)ids[i], i,
                                     SCALAR_ASCII_VOCAB_SIZE);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)ids[i];
    out[n] = '\0';
    return SCALAR_OK;
}
