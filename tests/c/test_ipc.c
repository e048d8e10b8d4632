/*
 * test_ipc: the IPC codec against hand-written frames (the expected bytes
 * are spelled out here from docs/ipc.md, not produced by the encoder), plus
 * round trips, every truncation of a valid frame, and each way a frame can
 * be malformed.  Also one client round trip over a socketpair with an fd
 * passed by SCM_RIGHTS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#include "ipc/ipc.h"



/* GET, id 7, key = 00 01 .. 1f, func "m.f", flags 1. */
static const uint8_t get_frame[] = {
    /* body length: 8 + (5+32) + (5+3) + (5+4) = 62 */
    62, 0, 0, 0,
    1, 2, 0, 0,   /* version 1, type GET, pad */
    7, 0, 0, 0,   /* request id */
    1, 32, 0, 0, 0, /* KEY, 32 bytes */
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    9, 3, 0, 0, 0, 'm', '.', 'f', /* FUNC */
    13, 4, 0, 0, 0, 1, 0, 0, 0,   /* FLAGS = FORCE */
};

static void fill_key(uint8_t *k)
{
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)i;
}

static void test_encode_bytes(void)
{
    irohds_ipc_msg m;
    irohds_ipc_msg_init(&m, IROHDS_IPC_GET);
    m.id = 7;
    fill_key(m.key);
    m.present |= 1u << IROHDS_TAG_KEY;
    irohds_ipc_set_str(&m, IROHDS_TAG_FUNC, "m.f");
    m.flags = IROHDS_IPC_FLAG_FORCE;
    m.present |= 1u << IROHDS_TAG_FLAGS;
    uint8_t buf[256];
    int n = irohds_ipc_encode(&m, buf, sizeof(buf));
    CHECK(n == (int)sizeof(get_frame), "encode length %d want %zu", n, sizeof(get_frame));
    CHECK(n > 0 && memcmp(buf, get_frame, sizeof(get_frame)) == 0, "encoded bytes differ");
    CHECK(irohds_ipc_encode(&m, buf, sizeof(get_frame) - 1) == -ENOBUFS, "small cap");
}

static void test_decode_bytes(void)
{
    irohds_ipc_msg m;
    int n = irohds_ipc_decode(get_frame, sizeof(get_frame), &m);
    CHECK(n == (int)sizeof(get_frame), "decode consumed %d", n);
    CHECK(m.type == IROHDS_IPC_GET && m.id == 7, "type %d id %u", m.type, m.id);
    CHECK(m.present == ((1u << 1) | (1u << 9) | (1u << 13)), "present %#x", m.present);
    CHECK(m.key[0] == 0 && m.key[31] == 31, "key");
    CHECK(m.func.len == 3 && memcmp(m.func.ptr, "m.f", 3) == 0, "func");
    CHECK(m.flags == 1, "flags %u", m.flags);
    CHECK(!IROHDS_IPC_HAS(&m, IROHDS_TAG_NS), "ns absent");

    /* Every proper prefix is "need more bytes". */
    int bad = 0;
    for (size_t k = 0; k < sizeof(get_frame); k++)
        if (irohds_ipc_decode(get_frame, k, &m) != 0)
            bad++;
    CHECK(bad == 0, "%d prefixes did not return 0", bad);

    /* Two frames back to back: the first is consumed alone. */
    uint8_t two[2 * sizeof(get_frame)];
    memcpy(two, get_frame, sizeof(get_frame));
    memcpy(two + sizeof(get_frame), get_frame, sizeof(get_frame));
    CHECK(irohds_ipc_decode(two, sizeof(two), &m) == (int)sizeof(get_frame), "pipelined");
}

/* An OK reply with every numeric type, written out by hand. */
static void test_numeric_bytes(void)
{
    static const uint8_t ok[] = {
        8 + 13 + 13 + 9 + 9, 0, 0, 0, 1, 64, 0, 0, 0x78, 0x56, 0x34, 0x12,
        3, 8, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* LEASE */
        6, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,                   /* SECONDS 1.5 */
        8, 4, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff,                         /* CODE -2 */
        17, 4, 0, 0, 0, 0x39, 0x30, 0, 0,                              /* PID 12345 */
    };
    irohds_ipc_msg m;
    int n = irohds_ipc_decode(ok, sizeof(ok), &m);
    CHECK(n == (int)sizeof(ok), "decode %d", n);
    CHECK(m.type == IROHDS_IPC_OK && m.id == 0x12345678u, "hdr");
    CHECK(m.lease == 0x0102030405060708ull, "lease %llx", (unsigned long long)m.lease);
    CHECK(m.seconds == 1.5, "seconds %g", m.seconds);
    CHECK(m.code == -2, "code %d", m.code);
    CHECK(m.pid == 12345, "pid %u", m.pid);
    uint8_t buf[128];
    CHECK(irohds_ipc_encode(&m, buf, sizeof(buf)) == (int)sizeof(ok) &&
              memcmp(buf, ok, sizeof(ok)) == 0,
          "re-encode differs");
}

static void test_roundtrip(void)
{
    irohds_ipc_msg a, b;
    irohds_ipc_msg_init(&a, IROHDS_IPC_HIT);
    a.id = 99;
    for (int i = 0; i < 32; i++) {
        a.key[i] = (uint8_t)(0xa0 + i);
        a.hash[i] = (uint8_t)(0x50 ^ i);
        a.node[i] = (uint8_t)(3 * i);
    }
    a.lease = 1;
    a.size = 1ull << 40;
    a.count = 5;
    a.seconds = 3600.25;
    a.serializer = 1;
    a.flags = 0;
    a.code = -110;
    a.pid = 4242;
    a.present = (1u << IROHDS_TAG_KEY) | (1u << IROHDS_TAG_HASH) | (1u << IROHDS_TAG_LEASE) |
                (1u << IROHDS_TAG_SIZE) | (1u << IROHDS_TAG_COUNT) | (1u << IROHDS_TAG_SECONDS) |
                (1u << IROHDS_TAG_SERIALIZER) | (1u << IROHDS_TAG_CODE) |
                (1u << IROHDS_TAG_FLAGS) | (1u << IROHDS_TAG_FD) | (1u << IROHDS_TAG_NODE) |
                (1u << IROHDS_TAG_PID);
    irohds_ipc_set_str(&a, IROHDS_TAG_FUNC, "pkg.mod.Class.method");
    irohds_ipc_set_str(&a, IROHDS_TAG_NS, "lab");
    irohds_ipc_set_str(&a, IROHDS_TAG_TEXT, "{\"x\": 1}");
    irohds_ipc_set_str(&a, IROHDS_TAG_STAGING, "abc123");
    irohds_ipc_set_str(&a, IROHDS_TAG_PATH, "/home/u/.local/share/irohds");
    uint8_t buf[1024];
    int n = irohds_ipc_encode(&a, buf, sizeof(buf));
    CHECK(n > 0, "encode %d", n);
    int m = irohds_ipc_decode(buf, (size_t)n, &b);
    CHECK(m == n, "decode %d of %d", m, n);
    CHECK(b.type == a.type && b.id == a.id && b.present == a.present, "header/present");
    CHECK(!memcmp(a.key, b.key, 32) && !memcmp(a.hash, b.hash, 32) && !memcmp(a.node, b.node, 32),
          "32-byte fields");
    CHECK(b.lease == 1 && b.size == 1ull << 40 && b.count == 5 && b.seconds == 3600.25 &&
              b.serializer == 1 && b.code == -110 && b.pid == 4242,
          "numbers");
    char s[64];
    CHECK(irohds_ipc_str_copy(b.func, s, sizeof(s)) == 0 && !strcmp(s, "pkg.mod.Class.method"),
          "func");
    CHECK(irohds_ipc_str_copy(b.ns, s, sizeof(s)) == 0 && !strcmp(s, "lab"), "ns");
    CHECK(irohds_ipc_str_copy(b.staging, s, sizeof(s)) == 0 && !strcmp(s, "abc123"), "staging");
    CHECK(irohds_ipc_str_copy(b.path, s, 4) == -ENAMETOOLONG, "str_copy too small");
}

static void test_malformed(void)
{
    irohds_ipc_msg m;
    uint8_t f[128];

    /* Oversized length: refused from the 4 length bytes alone. */
    static const uint8_t big[] = {0x01, 0x00, 0x10, 0x00}; /* 1 MiB + 1 */
    CHECK(irohds_ipc_decode(big, 4, &m) == -EMSGSIZE, "oversize");
    static const uint8_t max[] = {0x00, 0x00, 0x10, 0x00, 1}; /* exactly 1 MiB: wait */
    CHECK(irohds_ipc_decode(max, 5, &m) == 0, "max size is allowed");

    /* Bad version. */
    memcpy(f, get_frame, sizeof(get_frame));
    f[4] = 2;
    CHECK(irohds_ipc_decode(f, sizeof(get_frame), &m) == -EPROTONOSUPPORT, "version");

    /* Body shorter than the fixed header. */
    static const uint8_t tiny[] = {4, 0, 0, 0, 1, 1, 0, 0};
    CHECK(irohds_ipc_decode(tiny, sizeof(tiny), &m) == -EPROTO, "tiny body");

    /* Nonzero pad. */
    memcpy(f, get_frame, sizeof(get_frame));
    f[7] = 1;
    CHECK(irohds_ipc_decode(f, sizeof(get_frame), &m) == -EPROTO, "pad");

    /* Repeated tag: FLAGS twice. */
    static const uint8_t rep[] = {8 + 18, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0,
                                  13, 4, 0, 0, 0, 1, 0, 0, 0,
                                  13, 4, 0, 0, 0, 0, 0, 0, 0};
    CHECK(irohds_ipc_decode(rep, sizeof(rep), &m) == -EPROTO, "repeated tag");

    /* Wrong fixed-field size: KEY with 31 bytes, LEASE with 4. */
    uint8_t k31[4 + 8 + 5 + 31] = {8 + 5 + 31, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 1, 31, 0, 0, 0};
    CHECK(irohds_ipc_decode(k31, sizeof(k31), &m) == -EPROTO, "key 31 bytes");
    static const uint8_t l4[] = {8 + 9, 0, 0, 0, 1, 3, 0, 0, 1, 0, 0, 0, 3, 4, 0, 0, 0, 1, 0, 0, 0};
    CHECK(irohds_ipc_decode(l4, sizeof(l4), &m) == -EPROTO, "lease 4 bytes");
    static const uint8_t fd1[] = {8 + 6, 0, 0, 0, 1, 3, 0, 0, 1, 0, 0, 0, 14, 1, 0, 0, 0, 0};
    CHECK(irohds_ipc_decode(fd1, sizeof(fd1), &m) == -EPROTO, "fd with a byte");

    /* Field running past the body (length says 9, 3 bytes left). */
    static const uint8_t over[] = {8 + 8, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 9, 9, 0, 0, 0, 'a', 'b', 'c'};
    CHECK(irohds_ipc_decode(over, sizeof(over), &m) == -EPROTO, "field past body");
    /* Field length near 2^32 must not wrap. */
    static const uint8_t wrap[] = {8 + 5, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff};
    CHECK(irohds_ipc_decode(wrap, sizeof(wrap), &m) == -EPROTO, "huge field length");
    /* A partial field header at the end of the body. */
    static const uint8_t part[] = {8 + 3, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 9, 0, 0};
    CHECK(irohds_ipc_decode(part, sizeof(part), &m) == -EPROTO, "partial field header");

    /* NUL inside a string. */
    static const uint8_t nul[] = {8 + 7, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 9, 2, 0, 0, 0, 'a', 0};
    CHECK(irohds_ipc_decode(nul, sizeof(nul), &m) == -EPROTO, "NUL in string");

    /* ns over its limit (128 bytes; the limit is 127). */
    uint8_t ns[4 + 8 + 5 + 128] = {8 + 5 + 128, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0, 0, 10, 128, 0, 0, 0};
    memset(ns + 17, 'n', 128);
    CHECK(irohds_ipc_decode(ns, sizeof(ns), &m) == -EPROTO, "ns too long");
    ns[0] = 8 + 5 + 127;
    ns[13] = 127;
    CHECK(irohds_ipc_decode(ns, sizeof(ns) - 1, &m) == (int)sizeof(ns) - 1, "ns 127 ok");

    /* Unknown tags are skipped, known ones still read (tag 200 and tag 31). */
    static const uint8_t unk[] = {8 + 7 + 5 + 9, 0, 0, 0, 1, 2, 0, 0, 5, 0, 0, 0,
                                  200, 2, 0, 0, 0, 0xaa, 0xbb,
                                  31, 0, 0, 0, 0,
                                  13, 4, 0, 0, 0, 9, 0, 0, 0};
    int n = irohds_ipc_decode(unk, sizeof(unk), &m);
    CHECK(n == (int)sizeof(unk) && m.flags == 9 && m.present == 1u << IROHDS_TAG_FLAGS,
          "unknown tag skipped: n=%d present=%#x", n, m.present);
    /* ...even repeated. */
    static const uint8_t unk2[] = {8 + 10, 0, 0, 0, 1, 2, 0, 0, 5, 0, 0, 0,
                                   99, 0, 0, 0, 0, 99, 0, 0, 0, 0};
    CHECK(irohds_ipc_decode(unk2, sizeof(unk2), &m) == (int)sizeof(unk2), "repeated unknown");

    /* Encoder limits. */
    irohds_ipc_msg e;
    irohds_ipc_msg_init(&e, IROHDS_IPC_GET);
    char longfunc[300];
    memset(longfunc, 'f', sizeof(longfunc) - 1);
    longfunc[299] = 0;
    irohds_ipc_set_str(&e, IROHDS_TAG_FUNC, longfunc);
    CHECK(irohds_ipc_encode(&e, f, sizeof(f)) == -EINVAL, "encode long func");
    irohds_ipc_msg_init(&e, IROHDS_IPC_GET);
    e.present = 1u << 20; /* not a tag */
    CHECK(irohds_ipc_encode(&e, f, sizeof(f)) == -EINVAL, "encode unknown tag");
}

/* The client over a socketpair: a frame out with an fd, a reply back. */
static void test_client_socketpair(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        CHECK(0, "socketpair: %s", strerror(errno));
        return;
    }
    irohds_ipc_client *c = calloc(1, sizeof(*c));
    c->fd = sv[0];
    c->next_id = 1;
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    irohds_ipc_msg m, r;
    irohds_ipc_msg_init(&m, IROHDS_IPC_PUT);
    m.present |= 1u << IROHDS_TAG_FD;
    CHECK(irohds_ipc_send(c, &m, pfd[1]) == 0, "send");

    uint8_t in[256];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {in, sizeof(in)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(sv[1], &mh, 0);
    CHECK(n == 4 + 8 + 5, "server got %zd bytes", n);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    int got = -1;
    if (cm && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&got, CMSG_DATA(cm), sizeof(int));
    CHECK(got >= 0, "fd passed");
    if (got >= 0) {
        CHECK(write(got, "x", 1) == 1, "write through passed fd");
        char ch = 0;
        CHECK(read(pfd[0], &ch, 1) == 1 && ch == 'x', "read back");
        close(got);
    }
    /* Reply in two pieces plus a second frame; then a timeout. */
    irohds_ipc_msg_init(&r, IROHDS_IPC_OK);
    r.id = 1;
    r.count = 77;
    r.present = 1u << IROHDS_TAG_COUNT;
    uint8_t out[64];
    int len = irohds_ipc_encode(&r, out, sizeof(out));
    CHECK(write(sv[1], out, 5) == 5, "write part");
    CHECK(irohds_ipc_recv(c, &m, 50) == -ETIMEDOUT, "partial frame times out");
    CHECK(write(sv[1], out + 5, (size_t)len - 5) == len - 5, "write rest");
    CHECK(irohds_ipc_recv(c, &m, 1000) == 0 && m.count == 77 && m.id == 1, "reply");
    /* Garbage then: a bad version. */
    out[4] = 9;
    CHECK(write(sv[1], out, (size_t)len) == len, "write garbage");
    CHECK(irohds_ipc_recv(c, &m, 1000) == -EPROTONOSUPPORT, "bad version reply");
    close(sv[1]);
    c->buf_len = c->buf_off = 0;
    CHECK(irohds_ipc_recv(c, &m, 1000) == -ECONNRESET, "peer closed");
    irohds_ipc_close(c);
    close(pfd[0]);
    close(pfd[1]);
    free(c);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* no golden files: the expected bytes are in this file */
    test_encode_bytes();
    test_decode_bytes();
    test_numeric_bytes();
    test_roundtrip();
    test_malformed();
    test_client_socketpair();
    return check_summary();
}
