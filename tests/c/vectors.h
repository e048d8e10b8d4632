/*
 * vectors.h: reading the golden vectors of shared/testdata/ in the C unit
 * tests: json-c field getters that tolerate a missing field (the test then
 * fails on the value, not on a NULL), hex to bytes, and the input generator
 * of the bao vectors.  Static functions, as in check.h, so each test stays
 * one program; a test that includes this links json_dep and util_dep.
 */
#ifndef IROHDS_TEST_VECTORS_H
#define IROHDS_TEST_VECTORS_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* o[k], or NULL. */
static inline json_object *jget(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* o[k] as a string, or "". */
static inline const char *jstr(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    return v ? json_object_get_string(v) : "";
}

/* o[k] as an integer, or -1. */
static inline int64_t jint(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    return v ? json_object_get_int64(v) : -1;
}

/* Hex digits to bytes: how many, or (size_t)-1 for an odd count, a bad
 * digit or more than cap bytes. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len = strlen(hex);
    if (len % 2 || len / 2 > cap || irohds_hex_decode(hex, out, len / 2) != 0)
        return (size_t)-1;
    return len / 2;
}

/* Exactly 64 hex digits to 32 bytes: 0, or -1. */
static inline int unhex32(const char *hex, uint8_t out[32])
{
    return unhex(hex, out, 32) == 32 ? 0 : -1;
}

/* The bao vectors' input of len bytes: a 4-byte little-endian counter
 * starting at 1 (bao's generate_input.py).  Free with free(). */
static inline uint8_t *bao_input(size_t len)
{
    uint8_t *b = malloc(len + 4);
    for (size_t i = 0; i * 4 < len; i++) {
        uint32_t c = (uint32_t)(i + 1);
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(c >> (8 * k));
    }
    return b;
}

#endif
