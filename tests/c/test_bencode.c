/*
 * test_bencode: the strict bencode decoder and the sorted-key writer of
 * src/dht.  The BEP 5 packets of testdata/krpc/bep5_examples.json decode
 * and re-encode byte for byte; every non-canonical form BEP 5 peers refuse
 * (unsorted or duplicate keys, leading zeros, "-0", overflow, trailing
 * bytes) is refused with the documented error; the bounds (depth, node
 * count) hold; the writer refuses keys out of order.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dht/dht.h"
#include "util/util.h"

static irohds_benc_node nodes[1024];

static int decode(irohds_benc *d, const char *s)
{
    return irohds_benc_decode(d, s, strlen(s), nodes, 1024, IROHDS_BENC_MAX_DEPTH);
}

/* decode + re-encode gives the input back */
static bool round_trips(const uint8_t *in, size_t len)
{
    irohds_benc d;
    uint8_t out[4096];
    if (irohds_benc_decode(&d, in, len, nodes, 1024, IROHDS_BENC_MAX_DEPTH) != 0)
        return false;
    irohds_benc_writer w;
    irohds_benc_writer_init(&w, out, sizeof out);
    irohds_benc_node_encode(&w, &d, 0);
    return w.err == 0 && w.len == len && memcmp(out, in, len) == 0;
}

static void test_values(void)
{
    irohds_benc d;
    CHECK(decode(&d, "i0e") == 0 && nodes[0].type == IROHDS_BENC_INT && nodes[0].i == 0, "i0e");
    CHECK(decode(&d, "i-42e") == 0 && nodes[0].i == -42, "i-42e");
    CHECK(decode(&d, "i9223372036854775807e") == 0 && nodes[0].i == INT64_MAX, "int64 max");
    CHECK(decode(&d, "i-9223372036854775808e") == 0 && nodes[0].i == INT64_MIN, "int64 min");
    CHECK(decode(&d, "0:") == 0 && nodes[0].type == IROHDS_BENC_STR && nodes[0].slen == 0, "0:");
    CHECK(decode(&d, "4:spam") == 0 && nodes[0].slen == 4 && memcmp(nodes[0].s, "spam", 4) == 0,
          "4:spam");
    CHECK(decode(&d, "le") == 0 && nodes[0].type == IROHDS_BENC_LIST && nodes[0].count == 0, "le");
    CHECK(decode(&d, "de") == 0 && nodes[0].type == IROHDS_BENC_DICT && d.n == 1, "de");

    const char *s = "d3:bar4:spam3:fooi42e4:listli1ei2eee";
    CHECK(decode(&d, s) == 0 && d.n == 9 && nodes[0].count == 3, "dict: %zu nodes", d.n);
    const uint8_t *str;
    size_t len;
    int64_t v;
    CHECK(irohds_benc_dict_str(&d, 0, "bar", &str, &len) && len == 4 && !memcmp(str, "spam", 4),
          "dict_str");
    CHECK(irohds_benc_dict_int(&d, 0, "foo", &v) && v == 42, "dict_int");
    CHECK(!irohds_benc_dict_int(&d, 0, "bar", &v), "dict_int of a string");
    CHECK(irohds_benc_dict_get(&d, 0, "zzz") < 0 && irohds_benc_dict_get(&d, 0, "a") < 0,
          "absent keys");
    int l = irohds_benc_dict_get(&d, 0, "list");
    CHECK(l > 0 && nodes[l].type == IROHDS_BENC_LIST && nodes[l].count == 2 &&
              nodes[l + 1].i == 1 && nodes[nodes[l + 1].next].i == 2 && nodes[l].next == d.n,
          "list walk");
    CHECK(nodes[l].off == 27 && nodes[l].len == 8, "raw span of the list: %u+%u", nodes[l].off,
          nodes[l].len);
    CHECK(round_trips((const uint8_t *)s, strlen(s)), "round trip");
    /* keys compare as raw bytes: "a" < "ab" < "b", and 0x80 after ASCII */
    CHECK(decode(&d, "d1:ai0e2:abi0e1:bi0e1:\x80i0ee") == 0, "byte order of keys");
}

static void test_refused(void)
{
    static const struct {
        const char *in;
        int err;
    } cases[] = {
        {"", -EBADMSG},
        {"x", -EBADMSG},
        {"i01e", -EBADMSG},
        {"i-0e", -EBADMSG},
        {"i-01e", -EBADMSG},
        {"ie", -EBADMSG},
        {"i-e", -EBADMSG},
        {"i+1e", -EBADMSG},
        {"i1", -EBADMSG},
        {"i 1e", -EBADMSG},
        {"i9223372036854775808e", -EOVERFLOW},
        {"i-9223372036854775809e", -EOVERFLOW},
        {"i99999999999999999999e", -EOVERFLOW},
        {"01:a", -EBADMSG},
        {"00:", -EBADMSG},
        {"-1:a", -EBADMSG},
        {"5:abc", -EBADMSG},
        {"4294967295:a", -EBADMSG},
        {"99999999999:a", -EOVERFLOW},
        {"4:spam ", -EBADMSG},
        {"i1ei2e", -EBADMSG},
        {"l", -EBADMSG},
        {"li1e", -EBADMSG},
        {"d", -EBADMSG},
        {"d1:a", -EBADMSG},
        {"d1:ai1e", -EBADMSG},
        {"d1:bi1e1:ai2ee", -EBADMSG},  /* unsorted */
        {"d1:ai1e1:ai2ee", -EBADMSG},  /* duplicate */
        {"d2:abi1e1:ai2ee", -EBADMSG}, /* "ab" before "a" */
        {"di1ei2ee", -EBADMSG},        /* integer key */
        {"dlei1ee", -EBADMSG},         /* list key */
        {"e", -EBADMSG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        irohds_benc d;
        int rc = decode(&d, cases[i].in);
        CHECK(rc == cases[i].err, "%s: got %d want %d", cases[i].in, rc, cases[i].err);
    }
}

static void test_bounds(void)
{
    char deep[2 * 40 + 1];
    for (int depth = 1; depth <= 40; depth++) {
        memset(deep, 'l', (size_t)depth);
        memset(deep + depth, 'e', (size_t)depth);
        irohds_benc d;
        int rc = irohds_benc_decode(&d, deep, 2 * (size_t)depth, nodes, 1024, 16);
        CHECK(rc == (depth <= 16 ? 0 : -ELOOP), "depth %d: %d", depth, rc);
    }
    irohds_benc d;
    const char *three = "li1ei2ee";
    CHECK(irohds_benc_decode(&d, three, strlen(three), nodes, 2, 8) == -E2BIG, "node cap 2");
    CHECK(irohds_benc_decode(&d, three, strlen(three), nodes, 3, 8) == 0, "node cap 3");
}

static void test_writer(void)
{
    uint8_t buf[128];
    irohds_benc_writer w;
    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_dict(&w);
    irohds_benc_key(&w, "a");
    irohds_benc_int(&w, -7);
    irohds_benc_key(&w, "b");
    irohds_benc_list(&w);
    irohds_benc_cstr(&w, "x");
    irohds_benc_int(&w, 0);
    irohds_benc_end(&w);
    irohds_benc_key(&w, "c");
    irohds_benc_raw(&w, "de", 2);
    irohds_benc_end(&w);
    const char *want = "d1:ai-7e1:bl1:xi0ee1:cdee";
    CHECK(w.err == 0 && w.len == strlen(want) && memcmp(buf, want, w.len) == 0, "writer: %.*s",
          (int)w.len, buf);

    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_dict(&w);
    irohds_benc_key(&w, "b");
    irohds_benc_int(&w, 1);
    irohds_benc_key(&w, "a");
    CHECK(w.err == -EINVAL, "key out of order refused");

    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_dict(&w);
    irohds_benc_key(&w, "a");
    irohds_benc_int(&w, 1);
    irohds_benc_key(&w, "a");
    CHECK(w.err == -EINVAL, "duplicate key refused");

    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_dict(&w);
    irohds_benc_key(&w, "a");
    irohds_benc_end(&w);
    CHECK(w.err == -EINVAL, "key without value refused");

    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_dict(&w);
    irohds_benc_int(&w, 1);
    CHECK(w.err == -EINVAL, "value without key refused");

    irohds_benc_writer_init(&w, buf, 4);
    irohds_benc_cstr(&w, "hello");
    CHECK(w.err == -ENOBUFS && w.len == 7, "short buffer: err %d, len %zu", w.err, w.len);

    irohds_benc_writer_init(&w, buf, sizeof buf);
    irohds_benc_int(&w, INT64_MIN);
    CHECK(w.len == 22 && memcmp(buf, "i-9223372036854775808e", 22) == 0, "int64 min");
}

static void test_bep5(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/krpc/bep5_examples.json", dir);
    json_object *root = json_object_from_file(path), *cases;
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    size_t n = json_object_array_length(cases);
    CHECK(n == 10, "10 cases, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *hex, *ascii, *name;
        json_object_object_get_ex(c, "bencoded_hex", &hex);
        json_object_object_get_ex(c, "bencoded_ascii", &ascii);
        json_object_object_get_ex(c, "name", &name);
        const char *h = json_object_get_string(hex);
        uint8_t bytes[1024];
        size_t len = strlen(h) / 2;
        CHECK(len <= sizeof bytes && irohds_hex_decode(h, bytes, len) == 0, "hex");
        CHECK(len == strlen(json_object_get_string(ascii)) &&
                  memcmp(bytes, json_object_get_string(ascii), len) == 0,
              "hex and ascii agree");
        CHECK(round_trips(bytes, len), "%s round trip", json_object_get_string(name));
    }
    json_object_put(root);
}

int main(int argc, char **argv)
{
    test_values();
    test_refused();
    test_bounds();
    test_writer();
    test_bep5(argc > 1 ? argv[1] : "../shared/testdata");
    return check_summary();
}
