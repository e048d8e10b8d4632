/*
 * blobs_get: fetch one blob over /iroh-bytes/4 with irohds's own transport
 * (src/net) and verify it with irohds's bao decoder (src/blobs), without the
 * daemon's decision logic.  An interop test tool (tests/interop/run.sh),
 * built by meson, not installed.
 *
 *   blobs_get [-v] [--sni] [--raw FILE] <node id hex> <ip:port> <hash hex> <out> [RANGES]
 *
 * Without RANGES it asks for the whole blob (iroh's GetRequest::blob: the
 * ranges "all" for blob 0, nothing for later blobs) and writes the blob to
 * out.  RANGES selects 1 KiB BLAKE3 chunks: comma-separated, ascending
 * items "A-B" (chunks [A, B)), "A-" (A to the end) or "last" (iroh's
 * last_chunk(): an open range from chunk 2^64-1, answered with the last
 * chunk); out then gets the verified bytes the response carried, in order.
 * Exit 0 and "ok size N bytes M ..." on stdout only when the response
 * verified completely against the hash and the stream ended cleanly;
 * otherwise a reason on stderr and exit 1.
 *
 * --raw FILE also writes the response as received (size header and bao
 * encoding), to compare encoders byte for byte.  --sni sends iroh's
 * synthetic server name (older iroh did); -v logs the transport at debug
 * level.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "blobs/blobs.h"
#include "hash/bao.h"
#include "net/net.h"
#include "util/util.h"

typedef struct {
    uv_loop_t loop;
    uv_timer_t timer;
    irohds_net_endpoint *ep;
    irohds_net_conn *conn;
    int64_t sid;
    uint8_t hash[32];
    irohds_blobs_ranges ranges;
    uint64_t next_off;   /* blob offset after the last byte written */
    int fd, raw_fd;
    irohds_bao_decoder dec;
    uint64_t rx;         /* response bytes */
    uint64_t written;    /* bytes written to out */
    bool fin, ok, failed;
    char cipher[32];
    char why[1024];
    uint64_t t0;
} getter;

static void fail(getter *g, const char *fmt, const char *detail)
{
    if (!g->failed && !g->ok) {
        g->failed = true;
        snprintf(g->why, sizeof g->why, fmt, detail);
    }
    if (g->conn)
        irohds_net_conn_close(g->conn, 0, g->ok ? "done" : "failed");
}

static int on_data(void *ctx, uint64_t offset, const uint8_t *data, size_t len)
{
    getter *g = ctx;
    if (g->written && offset < g->next_off)
        return -EBADMSG; /* the decoder hands out data in order */
    g->next_off = offset + len;
    while (len) {
        ssize_t w = pwrite(g->fd, data, len, (off_t)g->written);
        if (w < 0)
            return -errno;
        data += w;
        len -= (size_t)w;
        g->written += (uint64_t)w;
    }
    return 0;
}

static void connected(irohds_net_conn *c)
{
    getter *g = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    irohds_net_conn_info info;
    if (irohds_net_conn_info_get(c, &info) == 0)
        snprintf(g->cipher, sizeof g->cipher, "%s", info.cipher);
    irohds_blobs_get get;
    memcpy(get.hash, g->hash, 32);
    /* GetRequest::blob_ranges(hash, r) = ChunkRangesSeq::from_ranges([r]):
     * blob 0 gets r, later blobs nothing. */
    if (irohds_blobs_seq_from_ranges(&get.ranges, &g->ranges, 1, false) != 0)
        return fail(g, "%s", "cannot build the request");
    uint8_t req[1024];
    size_t len;
    if (irohds_blobs_get_encode(&get, req, sizeof req, &len) != 0)
        return fail(g, "%s", "cannot encode the request");
    if (irohds_net_stream_open(c, true, NULL, &g->sid) != 0)
        return fail(g, "%s", "cannot open a stream");
    if (irohds_net_stream_write(c, g->sid, req, len, true) != (ssize_t)len)
        return fail(g, "%s", "cannot write the request");
    irohds_bao_sink sink = {.on_data = on_data, .on_parent = NULL, .ctx = g};
    if (irohds_bao_decoder_init(&g->dec, g->hash, &g->ranges, IROHDS_BAO_GROUP_LOG, &sink) != 0)
        return fail(g, "%s", "cannot start the decoder");
}

static void recv_cb(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                    bool fin)
{
    (void)c;
    (void)sptr;
    getter *g = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    if (sid != g->sid || g->failed)
        return;
    g->rx += len;
    if (g->raw_fd >= 0 && len && write(g->raw_fd, data, len) != (ssize_t)len)
        return fail(g, "%s", "cannot write the raw response");
    int rc = irohds_bao_decoder_feed(&g->dec, data, len);
    if (rc)
        return fail(g, "response failed verification: %s", strerror(-rc));
    if (fin) {
        g->fin = true;
        rc = irohds_bao_decoder_finish(&g->dec);
        if (rc)
            return fail(g, "response ended early: %s", strerror(-rc));
        g->ok = true;
        irohds_net_conn_close(c, 0, "done");
    }
}

static void stream_reset(irohds_net_conn *c, int64_t sid, void *sptr, uint64_t code)
{
    (void)sid;
    (void)sptr;
    getter *g = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    char d[64];
    snprintf(d, sizeof d, "%llu", (unsigned long long)code);
    fail(g, "the provider reset the stream with code %s", d);
}

static void closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    getter *g = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    g->conn = NULL;
    if (!g->ok && !g->failed) {
        char d[512];
        snprintf(d, sizeof d, "err %s, %s %s code %llu, reason \"%s\"",
                 why->err ? strerror(-why->err) : "0", why->remote ? "remote" : "local",
                 why->app_code ? "app" : "transport", (unsigned long long)why->code, why->reason);
        fail(g, "connection closed before the response was complete: %s", d);
    }
    uv_stop(&g->loop);
}

static void timeout_cb(uv_timer_t *t)
{
    getter *g = t->data;
    fail(g, "%s", "timed out");
    uv_stop(&g->loop);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: blobs_get [-v] [--sni] [--raw FILE] <node id hex> <ip:port> "
                    "<hash hex> <out> [A-B,C-,last]\n");
    return 2;
}

/* "A-B,C-,last" (see the top of the file) into rs. */
static int parse_ranges(const char *spec, irohds_blobs_ranges *rs)
{
    irohds_blobs_ranges_empty(rs);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        uint64_t a, b = IROHDS_BLOBS_OPEN;
        if (!strcmp(item, "last")) {
            a = UINT64_MAX;
        } else {
            char *dash = strchr(item, '-');
            if (!dash)
                return -EINVAL;
            *dash = '\0';
            if (parse_u64(item, &a) || (dash[1] && parse_u64(dash + 1, &b)))
                return -EINVAL;
        }
        if (a == UINT64_MAX && rs->n == 0) {
            irohds_blobs_ranges_from(rs, UINT64_MAX);
            continue;
        }
        if (irohds_blobs_ranges_add(rs, a, b) != 0)
            return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool verbose = false, sni = false;
    const char *raw = NULL;
    int a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
        if (!strcmp(argv[a], "-v"))
            verbose = true;
        else if (!strcmp(argv[a], "--sni"))
            sni = true;
        else if (!strcmp(argv[a], "--raw") && a + 1 < argc)
            raw = argv[++a];
        else
            return usage();
    }
    int nargs = argc - a;
    if (nargs != 4 && nargs != 5)
        return usage();
    if (sodium_init() < 0)
        return 1;
    irohds_log_set_level(verbose ? IROHDS_LOG_DEBUG : IROHDS_LOG_WARN);

    static getter g;
    uint8_t node[32];
    struct sockaddr_storage addr;
    if (irohds_hex_decode(argv[a], node, 32) || irohds_hex_decode(argv[a + 2], g.hash, 32)) {
        fprintf(stderr, "blobs_get: node id and hash are 64 hex digits\n");
        return 2;
    }
    if (irohds_net_parse_addr(argv[a + 1], &addr) != 0) {
        fprintf(stderr, "blobs_get: bad address %s\n", argv[a + 1]);
        return 2;
    }
    if (nargs == 5) {
        if (parse_ranges(argv[a + 4], &g.ranges) != 0) {
            fprintf(stderr, "blobs_get: bad ranges %s\n", argv[a + 4]);
            return 2;
        }
    } else {
        irohds_blobs_ranges_all(&g.ranges);
    }
    g.raw_fd = -1;
    if (raw && (g.raw_fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        perror(raw);
        return 1;
    }
    g.fd = open(argv[a + 3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (g.fd < 0) {
        perror(argv[a + 3]);
        return 1;
    }
    g.sid = -1;

    uint8_t pk[32], sk[64];
    crypto_sign_keypair(pk, sk); /* a fresh identity for each run */
    irohds_net_callbacks cb = {
        .connected = connected,
        .closed = closed,
        .recv = recv_cb,
        .stream_reset = stream_reset,
    };
    irohds_net_config cfg = {0};
    cfg.secret_key = sk;
    cfg.listen = addr.ss_family == AF_INET6 ? "[::1]:0" : "127.0.0.1:0";
    cfg.cb = &cb;
    cfg.user_ptr = &g;
    cfg.flags = sni ? IROHDS_NET_SEND_SNI : 0;
    uv_loop_init(&g.loop);
    int rc = irohds_net_endpoint_init(&g.loop, &cfg, &g.ep);
    if (rc) {
        fprintf(stderr, "blobs_get: endpoint: %s\n", strerror(-rc));
        return 1;
    }
    uv_timer_init(&g.loop, &g.timer);
    g.timer.data = &g;
    const char *t = getenv("BLOBS_GET_TIMEOUT");
    uv_timer_start(&g.timer, timeout_cb, (t ? strtoull(t, NULL, 10) : 60) * 1000, 0);
    g.t0 = uv_hrtime();
    rc = irohds_net_connect(g.ep, node, (struct sockaddr *)&addr, IROHDS_BLOBS_ALPN, 0, NULL,
                            &g.conn);
    if (rc) {
        fprintf(stderr, "blobs_get: connect: %s\n", strerror(-rc));
        return 1;
    }
    uv_run(&g.loop, UV_RUN_DEFAULT);
    double ms = (double)(uv_hrtime() - g.t0) / 1e6;

    irohds_net_endpoint_free(g.ep);
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    close(g.fd);
    if (g.raw_fd >= 0)
        close(g.raw_fd);

    uint64_t size = 0;
    bool have = irohds_bao_decoder_size(&g.dec, &size);
    if (!g.ok) {
        fprintf(stderr, "blobs_get: %s (after %llu response bytes, %llu verified)\n",
                g.why[0] ? g.why : "failed", (unsigned long long)g.rx,
                (unsigned long long)g.written);
        return 1;
    }
    printf("ok size %llu (%s) bytes %llu response %llu elapsed_ms %.1f cipher %s\n",
           (unsigned long long)size,
           have && irohds_bao_decoder_size_verified(&g.dec) ? "verified" : "unverified",
           (unsigned long long)g.written, (unsigned long long)g.rx, ms, g.cipher);
    return 0;
}
