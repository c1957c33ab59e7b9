/*
 * fuzz_json.c - libFuzzer target for the internal JSON config reader.
 *
 * Every input goes through scalar__json_parse(); an accepted document is
 * queried for the keys model and SAE configs use, with every getter, required
 * and optional.  scalar__utf8_valid() is checked against an independent
 * validator written from the Unicode table of well-formed byte sequences.
 * A broken invariant traps.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/json.h"

#define CHECK(x)              \
    do {                      \
        if (!(x))             \
            __builtin_trap(); \
    } while (0)

static const char *const keys[] = {
    "n_layer", "n_head", "n_embd", "vocab_size", "d_sae", "k", "activation_fn_kwargs.k",
    "metadata.hook_name", "hook_name", "architecture", "normalize_activations",
    "apply_b_dec_to_input", "lr", "", ".", "metadata..hook_name", "a.b.c.d.e.f",
};

/* Unicode 15, table 3-7: the well-formed UTF-8 byte sequences. */
static int utf8_reference(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        unsigned lo = 0x80, hi = 0xBF;
        size_t len;
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0)
                lo = 0xA0;
            if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0)
                lo = 0x90;
            if (b == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += len;
    }
    return 1;
}

static void query(const scalar__json *j, const char *key)
{
    int64_t iv;
    double dv;
    const char *sv;
    int bv;
    const cJSON *node = scalar__json_find(j, key);
    for (int required = 0; required <= 1; required++) {
        scalar_status s = scalar__json_int(&iv, j, key, required, -7, -1000, 1000000);
        CHECK(s == SCALAR_OK || s == SCALAR_E_FORMAT);
        CHECK(s != SCALAR_OK || (iv >= -1000 && iv <= 1000000) || (iv == -7 && !node));
        s = scalar__json_int(&iv, j, key, required, 0, INT64_MIN, INT64_MAX);
        CHECK(s == SCALAR_OK || s == SCALAR_E_FORMAT);
        s = scalar__json_double(&dv, j, key, required, 0.5);
        CHECK(s == SCALAR_OK || s == SCALAR_E_FORMAT);
        CHECK(s != SCALAR_OK || isfinite(dv));
        s = scalar__json_string(&sv, j, key, required, "default");
        CHECK(s == SCALAR_OK || s == SCALAR_E_FORMAT);
        CHECK(s != SCALAR_OK || sv != NULL);
        if (s == SCALAR_OK)
            CHECK(strlen(sv) < ((size_t)1 << 30));
        s = scalar__json_bool(&bv, j, key, required, 1);
        CHECK(s == SCALAR_OK || s == SCALAR_E_FORMAT);
        CHECK(s != SCALAR_OK || bv == 0 || bv == 1);
        if (required && !node)
            CHECK(s == SCALAR_E_FORMAT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scalar__json j;
    int valid = scalar__utf8_valid(data, size);
    CHECK(valid == utf8_reference(data, size));
    scalar_last_error_clear();
    scalar_status s = scalar__json_parse(&j, (const char *)data, size, "fuzz.json");
    if (s != SCALAR_OK) {
        CHECK(j.root == NULL);
        CHECK(s == SCALAR_E_FORMAT || s == SCALAR_E_NOMEM || s == SCALAR_E_INVALID_ARG);
        CHECK(strstr(scalar_last_error(), "fuzz.json") != NULL);
        scalar__json_free(&j);
        return 0;
    }
    CHECK(valid);
    CHECK(cJSON_IsObject(j.root));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        query(&j, keys[i]);
    scalar__json_free(&j);
    scalar__json_free(&j); /* idempotent */
    return 0;
}
