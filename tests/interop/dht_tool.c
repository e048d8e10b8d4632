/*
 * dht_tool: our DHT core (src/dht) on a real UDP socket with a poll loop,
 * for interop tests against other implementations (libtorrent) and for
 * bench/bench_dht_traffic.py.  A test helper: built by meson, not installed.
 *
 *   dht_tool --listen IP:PORT [--router IP:PORT]... [--node IP:PORT]...
 *            [--id HEX40] [--min-nodes N] [--timeout S] [--stdin]
 *            [--report S] [--eager] CMD [ARGS]
 *
 * --router   a bootstrap router (asked while our table is poor, never in it)
 * --node     a node pinged at start: it joins our table when it answers
 * --stdin    after CMD (which may be left out), read commands from standard
 *            input, one per line, same syntax; runs until stdin closes
 * --report S with serve: a stats line every S seconds
 * --eager    commands start at once, not after the start-up bootstrap (as
 *            the daemon's first announce and publish do)
 *
 * Commands (each prints exactly one JSON line when it is over):
 *   bootstrap                         table size and nodes, stats
 *   announce <info-hash hex> <port>   peers found, stores accepted/refused
 *   get-peers <info-hash hex>         peers found
 *   put-mutable <seed hex> <seq> <value> [salt]
 *                                     value goes out bencoded as a string;
 *                                     the key pair is libsodium's from seed
 *   get-mutable <pubkey hex> [salt]   every version found: seq, value, and
 *                                     whether the signature verifies (checked
 *                                     here with libsodium, apart from the core)
 *   put-immutable <value>             target = SHA-1 of the bencoded value
 *   get-immutable <target hex>
 *   stats                             stats and routing table now
 *   wait-nodes <n>                    until the table has n good nodes
 *   serve <seconds>                   stay up answering (0: until stdin
 *                                     closes or SIGTERM), then print stats
 *
 * The first line printed is {"event": "ready", "port": P, "id": "..."}.
 * Every search command first waits for the start-up bootstrap (a lookup
 * of our own id through the routers and nodes given) to finish.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "dht/dht.h"

#define MAX_CMDS 64
#define MAX_ARGS 8
#define MAX_FOUND 256

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dht_tool: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* ---------------------------------------------------------- helpers */

static bool unhex(const char *hex, uint8_t *out, size_t len)
{
    if (strlen(hex) != 2 * len)
        return false;
    return sodium_hex2bin(out, len, hex, 2 * len, NULL, NULL, NULL) == 0;
}

static void put_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static void put_jstr(const uint8_t *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static bool parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return false;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

static void put_addr(const irohds_dht_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(a->family, a->ip, ip, sizeof ip);
    printf("\"%s:%u\"", ip, a->port);
}

/* A bencoded byte string "<len>:<bytes>" of s. */
static size_t benc_string(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    int hl = snprintf((char *)out, cap, "%zu:", n);
    if (hl < 0 || (size_t)hl + n > cap)
        die("value too long");
    memcpy(out + hl, s, n);
    return (size_t)hl + n;
}

/* ---------------------------------------------------------- the tool */

enum cmd_kind {
    C_BOOTSTRAP = 1, C_ANNOUNCE, C_GET_PEERS, C_PUT_MUT, C_GET_MUT, C_PUT_IMM, C_GET_IMM,
    C_STATS, C_WAIT_NODES, C_SERVE,
};

typedef struct found_item {
    int64_t seq;
    bool is_mutable;
    uint8_t k[32], sig[64];
    uint8_t v[IROHDS_DHT_MAX_V];
    size_t v_len;
    bool sig_ok, hash_ok;
} found_item;

typedef struct tool {
    irohds_dht *d;
    int fd;
    uint16_t port;
    uint64_t timeout_ms;
    unsigned min_nodes;
    /* start-up bootstrap */
    uint32_t boot_handle;
    bool booted;
    int boot_status;
    size_t boot_closest;
    /* the command queue and the current command */
    char *queue[MAX_CMDS];
    size_t nq;
    bool busy;
    enum cmd_kind kind;
    char name[32];
    uint32_t handle;
    bool started; /* its search began (after the bootstrap) */
    uint64_t deadline;
    char *argv[MAX_ARGS];
    int argc;
    uint8_t target[20], key[32], salt[IROHDS_DHT_MAX_SALT];
    size_t salt_len;
    irohds_dht_addr peers[MAX_FOUND];
    size_t n_peers;
    found_item *items;
    size_t n_items;
    bool stored;
    unsigned n_ok, n_failed;
    int store_error;
    int64_t seen_seq, seq;
    int status;
    size_t n_closest;
    unsigned want_nodes;
    /* stdin */
    bool read_stdin, stdin_open;
    char inbuf[4096];
    size_t inlen;
    /* serve */
    bool serving;
    uint64_t serve_until; /* 0: until stdin closes */
    uint64_t report_ms, next_report;
    bool serve_forever;
} tool;

static void put_stats(tool *t)
{
    irohds_dht_stats s;
    irohds_dht_stats_get(t->d, &s);
    printf("{\"nodes_good\": %zu, \"nodes_questionable\": %zu, \"nodes_bad\": %zu, "
           "\"buckets\": %zu, \"replacements\": %zu, \"torrents\": %zu, \"peers\": %zu, "
           "\"items\": %zu, \"searches\": %zu, \"rpcs_in_flight\": %zu, "
           "\"packets_in\": %" PRIu64 ", \"packets_out\": %" PRIu64 ", \"bytes_in\": %" PRIu64
           ", \"bytes_out\": %" PRIu64 ", \"queries_in\": %" PRIu64 ", \"replies_in\": %" PRIu64
           ", \"errors_in\": %" PRIu64 ", \"errors_sent\": %" PRIu64
           ", \"dropped_malformed\": %" PRIu64 ", \"dropped_oversize\": %" PRIu64
           ", \"dropped_unsolicited\": %" PRIu64 ", \"dropped_rate\": %" PRIu64
           ", \"dropped_queue\": %" PRIu64 ", \"tokens_rejected\": %" PRIu64
           ", \"bep42_mismatch\": %" PRIu64 ", \"rpc_timeouts\": %" PRIu64 "}",
           s.nodes_good, s.nodes_questionable, s.nodes_bad, s.buckets, s.replacements, s.torrents,
           s.peers, s.items, s.searches, s.rpcs_in_flight, s.packets_in, s.packets_out, s.bytes_in,
           s.bytes_out, s.queries_in, s.replies_in, s.errors_in, s.errors_sent,
           s.dropped_malformed, s.dropped_oversize, s.dropped_unsolicited, s.dropped_rate,
           s.dropped_queue, s.tokens_rejected, s.bep42_mismatch, s.rpc_timeouts);
}

static void put_table(tool *t)
{
    irohds_dht_node ns[512];
    size_t n = irohds_dht_nodes_get(t->d, NULL, ns, 512);
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"id\": \"", i ? ", " : "");
        put_hex(ns[i].id, 20);
        printf("\", \"addr\": ");
        put_addr(&ns[i].addr);
        printf("}");
    }
    printf("]");
}

/* The closing fields every result line has. */
static void finish_line(tool *t, bool ok)
{
    printf(", \"ok\": %s, \"stats\": ", ok ? "true" : "false");
    put_stats(t);
    printf("}\n");
    fflush(stdout);
}

static void print_result(tool *t, bool timed_out)
{
    printf("{\"cmd\": \"%s\"", t->name);
    if (timed_out)
        printf(", \"timeout\": true");
    bool ok = !timed_out;
    switch (t->kind) {
    case C_BOOTSTRAP:
    case C_STATS:
    case C_WAIT_NODES:
    case C_SERVE:
        printf(", \"id\": \"");
        put_hex(irohds_dht_id(t->d), 20);
        printf("\", \"port\": %u, \"table\": ", t->port);
        put_table(t);
        if (t->kind == C_BOOTSTRAP)
            printf(", \"bootstrap_status\": %d, \"bootstrap_closest\": %zu", t->boot_status,
                   t->boot_closest);
        break;
    case C_ANNOUNCE:
    case C_GET_PEERS:
        printf(", \"peers\": [");
        for (size_t i = 0; i < t->n_peers; i++) {
            printf("%s", i ? ", " : "");
            put_addr(&t->peers[i]);
        }
        printf("]");
        break;
    case C_GET_MUT:
    case C_GET_IMM:
        printf(", \"items\": [");
        for (size_t i = 0; i < t->n_items; i++) {
            found_item *f = &t->items[i];
            printf("%s{\"v_hex\": \"", i ? ", " : "");
            put_hex(f->v, f->v_len);
            printf("\"");
            /* a bencoded byte string: its bytes too */
            const uint8_t *colon = memchr(f->v, ':', f->v_len < 8 ? f->v_len : 8);
            if (colon && f->v[0] >= '0' && f->v[0] <= '9') {
                printf(", \"value\": ");
                put_jstr(colon + 1, f->v_len - (size_t)(colon + 1 - f->v));
            }
            if (f->is_mutable) {
                printf(", \"seq\": %" PRId64 ", \"k\": \"", f->seq);
                put_hex(f->k, 32);
                printf("\", \"sig\": \"");
                put_hex(f->sig, 64);
                printf("\", \"sig_ok\": %s", f->sig_ok ? "true" : "false");
            } else {
                printf(", \"hash_ok\": %s", f->hash_ok ? "true" : "false");
            }
            printf("}");
        }
        printf("]");
        if (t->n_items) {
            found_item *last = &t->items[t->n_items - 1];
            if (last->is_mutable)
                printf(", \"seq\": %" PRId64, last->seq);
        }
        break;
    default:
        break;
    }
    if (t->kind == C_ANNOUNCE || t->kind == C_PUT_MUT || t->kind == C_PUT_IMM) {
        printf(", \"stored\": %s, \"stored_ok\": %u, \"stored_failed\": %u, \"error\": %d, "
               "\"seen_seq\": %" PRId64,
               t->stored ? "true" : "false", t->n_ok, t->n_failed, t->store_error, t->seen_seq);
        ok = ok && t->stored;
    }
    if (t->kind == C_PUT_MUT || t->kind == C_PUT_IMM || t->kind == C_GET_IMM ||
        t->kind == C_GET_MUT) {
        printf(", \"target\": \"");
        put_hex(t->target, 20);
        printf("\"");
    }
    if (t->kind == C_PUT_MUT || t->kind == C_GET_MUT) {
        printf(", \"key\": \"");
        put_hex(t->key, 32);
        printf("\"");
    }
    if (t->handle || t->kind == C_BOOTSTRAP)
        printf(", \"status\": %d, \"closest\": %zu", t->status, t->n_closest);
    finish_line(t, ok);
}

static void fail_cmd(tool *t, const char *why)
{
    printf("{\"cmd\": \"%s\", \"error_text\": ", t->name);
    put_jstr((const uint8_t *)why, strlen(why));
    finish_line(t, false);
    t->busy = false;
}

/* ------------------------------------------------------------ events */

static void on_item(tool *t, const irohds_dht_item *it)
{
    found_item *items = realloc(t->items, (t->n_items + 1) * sizeof *items);
    if (!items)
        return;
    t->items = items;
    found_item *f = &items[t->n_items++];
    memset(f, 0, sizeof *f);
    f->is_mutable = it->is_mutable;
    f->v_len = it->v_len <= sizeof f->v ? it->v_len : sizeof f->v;
    memcpy(f->v, it->v, f->v_len);
    if (it->is_mutable) {
        memcpy(f->k, it->k, 32);
        memcpy(f->sig, it->sig, 64);
        f->seq = it->seq;
        /* Verified here again, with libsodium alone: the BEP 44 signed
         * buffer built by hand, not by the core. */
        uint8_t msg[IROHDS_DHT_MAX_V + IROHDS_DHT_MAX_SALT + 64];
        int n = 0;
        if (it->salt_len)
            n = snprintf((char *)msg, sizeof msg, "4:salt%zu:", it->salt_len);
        if (it->salt_len)
            memcpy(msg + n, it->salt, it->salt_len), n += (int)it->salt_len;
        n += snprintf((char *)msg + n, sizeof msg - (size_t)n, "3:seqi%" PRId64 "e1:v", it->seq);
        memcpy(msg + n, it->v, it->v_len);
        n += (int)it->v_len;
        f->sig_ok = crypto_sign_verify_detached(it->sig, msg, (unsigned long long)n, it->k) == 0;
    } else {
        uint8_t h[20];
        irohds_dht_sha1(it->v, it->v_len, h);
        f->hash_ok = memcmp(h, t->target, 20) == 0;
    }
}

static void on_event(tool *t, const irohds_dht_event *ev)
{
    if (t->boot_handle && ev->handle == t->boot_handle) {
        if (ev->type == IROHDS_DHT_EV_DONE) {
            t->booted = true;
            t->boot_handle = 0;
            t->boot_status = ev->status;
            t->boot_closest = ev->n_nodes;
        }
        return;
    }
    if (!t->busy || ev->handle != t->handle || !t->handle)
        return;
    switch (ev->type) {
    case IROHDS_DHT_EV_PEERS:
        for (size_t i = 0; i < ev->n_peers && t->n_peers < MAX_FOUND; i++)
            t->peers[t->n_peers++] = ev->peers[i];
        break;
    case IROHDS_DHT_EV_ITEM:
        on_item(t, &ev->item);
        break;
    case IROHDS_DHT_EV_STORED:
        t->stored = true;
        t->n_ok = ev->n_ok;
        t->n_failed = ev->n_failed;
        t->store_error = ev->error;
        t->seen_seq = ev->seen_seq;
        break;
    case IROHDS_DHT_EV_DONE:
        t->status = ev->status;
        t->n_closest = ev->n_nodes;
        print_result(t, false);
        t->busy = false;
        t->handle = 0;
        break;
    default:
        break;
    }
}

static void flush(tool *t)
{
    irohds_dht_packet p;
    while (irohds_dht_next_packet(t->d, &p))
        sendto(t->fd, p.buf, p.len, 0, (const struct sockaddr *)&p.to, p.tolen);
    irohds_dht_event ev;
    while (irohds_dht_next_event(t->d, &ev))
        on_event(t, &ev);
}

/* ---------------------------------------------------------- commands */

static const struct {
    const char *name;
    enum cmd_kind kind;
    int min_args, max_args;
} CMDS[] = {
    {"bootstrap", C_BOOTSTRAP, 0, 0},   {"announce", C_ANNOUNCE, 2, 2},
    {"get-peers", C_GET_PEERS, 1, 1},   {"put-mutable", C_PUT_MUT, 3, 4},
    {"get-mutable", C_GET_MUT, 1, 2},   {"put-immutable", C_PUT_IMM, 1, 1},
    {"get-immutable", C_GET_IMM, 1, 1}, {"stats", C_STATS, 0, 0},
    {"wait-nodes", C_WAIT_NODES, 1, 1}, {"serve", C_SERVE, 1, 1},
};

static void set_salt(tool *t, int idx)
{
    t->salt_len = 0;
    if (t->argc > idx) {
        size_t n = strlen(t->argv[idx]);
        if (n > IROHDS_DHT_MAX_SALT)
            n = IROHDS_DHT_MAX_SALT + 1; /* refused by the core */
        memcpy(t->salt, t->argv[idx], n > IROHDS_DHT_MAX_SALT ? IROHDS_DHT_MAX_SALT : n);
        t->salt_len = n;
    }
}

/* Start the current command's search (the bootstrap is over). */
static void begin_search(tool *t)
{
    uint64_t now = now_ms();
    int rc = 0;
    t->started = true;
    switch (t->kind) {
    case C_BOOTSTRAP:
    case C_STATS:
    case C_WAIT_NODES:
    case C_SERVE:
        return;
    case C_ANNOUNCE: {
        char *end;
        long port = strtol(t->argv[1], &end, 10);
        if (!unhex(t->argv[0], t->target, 20) || *end || port <= 0 || port > 65535)
            return fail_cmd(t, "announce <info-hash hex40> <port>");
        rc = irohds_dht_announce(t->d, now, t->target, (uint16_t)port, false, &t->handle);
        break;
    }
    case C_GET_PEERS:
        if (!unhex(t->argv[0], t->target, 20))
            return fail_cmd(t, "get-peers <info-hash hex40>");
        rc = irohds_dht_get_peers(t->d, now, t->target, &t->handle);
        break;
    case C_PUT_MUT: {
        uint8_t seed[32], sk[64], v[IROHDS_DHT_MAX_V + 16];
        char *end;
        long long seq = strtoll(t->argv[1], &end, 10);
        if (!unhex(t->argv[0], seed, 32) || *end)
            return fail_cmd(t, "put-mutable <seed hex64> <seq> <value> [salt]");
        crypto_sign_seed_keypair(t->key, sk, seed);
        set_salt(t, 3);
        irohds_dht_item it = {.is_mutable = true, .seq = seq, .salt = t->salt,
                              .salt_len = t->salt_len};
        it.v = v;
        it.v_len = benc_string(t->argv[2], v, sizeof v);
        if ((rc = irohds_dht_item_sign(&it, sk)) == 0) {
            irohds_dht_item_target(&it, t->target);
            rc = irohds_dht_put(t->d, now, &it, false, 0, &t->handle);
        }
        sodium_memzero(sk, sizeof sk);
        break;
    }
    case C_GET_MUT:
        if (!unhex(t->argv[0], t->key, 32))
            return fail_cmd(t, "get-mutable <pubkey hex64> [salt]");
        set_salt(t, 1);
        irohds_dht_mutable_target(t->key, t->salt, t->salt_len > IROHDS_DHT_MAX_SALT ? 0 : t->salt_len,
                                  t->target);
        rc = irohds_dht_get_mutable(t->d, now, t->key, t->salt, t->salt_len, false, 0, &t->handle);
        break;
    case C_PUT_IMM: {
        uint8_t v[IROHDS_DHT_MAX_V + 16];
        irohds_dht_item it = {.v = v, .v_len = benc_string(t->argv[0], v, sizeof v)};
        irohds_dht_item_target(&it, t->target);
        rc = irohds_dht_put(t->d, now, &it, false, 0, &t->handle);
        break;
    }
    case C_GET_IMM:
        if (!unhex(t->argv[0], t->target, 20))
            return fail_cmd(t, "get-immutable <target hex40>");
        rc = irohds_dht_get_immutable(t->d, now, t->target, &t->handle);
        break;
    }
    if (rc) {
        char why[64];
        snprintf(why, sizeof why, "the core refused: %s", strerror(-rc));
        fail_cmd(t, why);
    }
}

static void start_cmd(tool *t, char *line)
{
    memset(t->peers, 0, sizeof t->peers);
    free(t->items);
    t->items = NULL;
    t->n_items = t->n_peers = 0;
    t->stored = false;
    t->n_ok = t->n_failed = 0;
    t->store_error = 0;
    t->seen_seq = -1;
    t->status = 0;
    t->n_closest = 0;
    t->handle = 0;
    t->started = false;
    t->argc = 0;
    char *save = NULL, *name = strtok_r(line, " \t\r\n", &save);
    if (!name)
        return;
    snprintf(t->name, sizeof t->name, "%s", name);
    for (char *a; t->argc < MAX_ARGS && (a = strtok_r(NULL, " \t\r\n", &save));)
        t->argv[t->argc++] = a;
    t->busy = true;
    t->deadline = now_ms() + t->timeout_ms;
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) {
        if (strcmp(CMDS[i].name, name) != 0)
            continue;
        t->kind = CMDS[i].kind;
        if (t->argc < CMDS[i].min_args || t->argc > CMDS[i].max_args)
            return fail_cmd(t, "wrong number of arguments");
        if (t->kind == C_WAIT_NODES)
            t->want_nodes = (unsigned)atoi(t->argv[0]);
        if (t->kind == C_SERVE) {
            /* not a blocking command: others run meanwhile (from stdin) */
            double s = atof(t->argv[0]);
            t->serving = true;
            t->serve_forever = s <= 0;
            t->serve_until = now_ms() + (uint64_t)(s * 1000);
            t->next_report = t->report_ms ? now_ms() + t->report_ms : 0;
            t->busy = false;
        }
        if (t->kind == C_STATS) {
            print_result(t, false);
            t->busy = false;
        }
        return;
    }
    fail_cmd(t, "unknown command");
}

/* The current command's progress, called after every loop turn. */
static void serve_progress(tool *t)
{
    uint64_t now = now_ms();
    if (!t->serving)
        return;
    if (t->report_ms && now >= t->next_report) {
        t->next_report = now + t->report_ms;
        printf("{\"event\": \"stats\", \"t_ms\": %" PRIu64 ", \"stats\": ", now);
        put_stats(t);
        printf("}\n");
        fflush(stdout);
    }
    bool over = t->serve_forever ? (g_stop || (t->read_stdin && !t->stdin_open))
                                 : (g_stop || now >= t->serve_until);
    if (over && !t->busy) {
        t->serving = false;
        t->kind = C_SERVE;
        snprintf(t->name, sizeof t->name, "serve");
        t->handle = 0;
        print_result(t, false);
    }
}

static void progress(tool *t)
{
    uint64_t now = now_ms();
    if (!t->busy)
        return;
    if (now >= t->deadline && !t->handle) {
        print_result(t, true);
        t->busy = false;
        return;
    }
    if (!t->booted)
        return;
    if (!t->started) {
        begin_search(t);
        return;
    }
    irohds_dht_stats s;
    if (t->kind == C_BOOTSTRAP || t->kind == C_WAIT_NODES) {
        irohds_dht_stats_get(t->d, &s);
        unsigned want = t->kind == C_BOOTSTRAP ? t->min_nodes : t->want_nodes;
        if (s.nodes_good >= want) {
            t->status = t->boot_status;
            t->n_closest = t->boot_closest;
            print_result(t, false);
            t->busy = false;
        }
    }
    /* a search's own timeout (search_timeout_ms) ends it with DONE */
}

/* ------------------------------------------------------------- stdin */

static void push_cmd(tool *t, const char *line)
{
    if (t->nq == MAX_CMDS)
        die("too many queued commands");
    t->queue[t->nq++] = strdup(line);
}

static void read_stdin(tool *t)
{
    ssize_t r = read(0, t->inbuf + t->inlen, sizeof t->inbuf - 1 - t->inlen);
    if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            t->stdin_open = false;
        return;
    }
    t->inlen += (size_t)r;
    char *nl;
    while ((nl = memchr(t->inbuf, '\n', t->inlen))) {
        *nl = 0;
        if (t->inbuf[0])
            push_cmd(t, t->inbuf);
        size_t used = (size_t)(nl + 1 - t->inbuf);
        memmove(t->inbuf, nl + 1, t->inlen - used);
        t->inlen -= used;
    }
    if (t->inlen == sizeof t->inbuf - 1)
        t->inlen = 0; /* a line too long: dropped */
}

/* -------------------------------------------------------------- loop */

static void turn(tool *t)
{
    uint64_t now = now_ms();
    uint64_t dl = irohds_dht_next_deadline(t->d);
    uint64_t wait = dl > now ? dl - now : 0;
    if (wait > 100)
        wait = 100; /* command deadlines and reports */
    struct pollfd p[2] = {{.fd = t->fd, .events = POLLIN},
                          {.fd = t->stdin_open ? 0 : -1, .events = POLLIN}};
    int n = poll(p, 2, (int)wait);
    if (n > 0 && (p[0].revents & POLLIN)) {
        uint8_t buf[65536];
        for (int i = 0; i < 256; i++) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t r = recvfrom(t->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
            if (r < 0)
                break;
            irohds_dht_receive(t->d, now_ms(), buf, (size_t)r, (struct sockaddr *)&from, fl);
            flush(t);
        }
    }
    if (n > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        read_stdin(t);
    irohds_dht_periodic(t->d, now_ms());
    flush(t);
}

static void usage(void)
{
    fprintf(stderr, "usage: dht_tool --listen IP:PORT [--router IP:PORT]... [--node IP:PORT]...\n"
                    "       [--id HEX40] [--min-nodes N] [--timeout S] [--stdin] [--report S]\n"
                    "       [CMD [ARGS]]  (see the comment at the top of dht_tool.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        die("sodium_init failed");
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    static tool t;
    t.timeout_ms = 30000;
    t.min_nodes = 1;
    const char *listen = NULL;
    struct sockaddr_in routers[16], nodes[64];
    size_t nr = 0, nn = 0;
    irohds_dht_config cfg;
    irohds_dht_config_default(&cfg);
    randombytes_buf(cfg.seed, sizeof cfg.seed);
    bool eager = false;
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--stdin")) {
            t.read_stdin = true;
            continue;
        }
        if (!strcmp(o, "--eager")) { /* commands do not wait for the bootstrap */
            eager = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(o, "--listen"))
            listen = v;
        else if (!strcmp(o, "--router") && nr < 16 && parse_addr(v, &routers[nr]))
            nr++;
        else if (!strcmp(o, "--node") && nn < 64 && parse_addr(v, &nodes[nn]))
            nn++;
        else if (!strcmp(o, "--id") && unhex(v, cfg.id, 20))
            cfg.has_id = true;
        else if (!strcmp(o, "--min-nodes"))
            t.min_nodes = (unsigned)atoi(v);
        else if (!strcmp(o, "--timeout"))
            t.timeout_ms = (uint64_t)(atof(v) * 1000);
        else if (!strcmp(o, "--report"))
            t.report_ms = (uint64_t)(atof(v) * 1000);
        else
            usage();
    }
    struct sockaddr_in la;
    if (!listen || !parse_addr(listen, &la))
        usage();
    t.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (t.fd < 0 || bind(t.fd, (struct sockaddr *)&la, sizeof la) != 0)
        die("cannot bind %s: %s", listen, strerror(errno));
    socklen_t ll = sizeof la;
    getsockname(t.fd, (struct sockaddr *)&la, &ll);
    t.port = ntohs(la.sin_port);
    int rc = irohds_dht_new(&t.d, &cfg);
    if (rc)
        die("irohds_dht_new: %s", strerror(-rc));
    printf("{\"event\": \"ready\", \"port\": %u, \"id\": \"", t.port);
    put_hex(irohds_dht_id(t.d), 20);
    printf("\"}\n");
    fflush(stdout);

    uint64_t now = now_ms();
    for (size_t k = 0; k < nr; k++)
        irohds_dht_add_router(t.d, (struct sockaddr *)&routers[k], sizeof routers[k]);
    for (size_t k = 0; k < nn; k++)
        irohds_dht_ping(t.d, now, (struct sockaddr *)&nodes[k], sizeof nodes[k]);
    flush(&t);
    if (nr || nn) {
        /* Let the pings of --node be answered first, so the lookup starts
         * from them too (routers seed it anyway). */
        uint64_t until = now_ms() + (nn ? 300 : 0);
        while (now_ms() < until)
            turn(&t);
        if ((rc = irohds_dht_find_node(t.d, now_ms(), irohds_dht_id(t.d), &t.boot_handle)))
            die("bootstrap lookup: %s", strerror(-rc));
        flush(&t);
        t.booted = eager;
    } else {
        t.booted = true;
    }

    /* CMD from the command line, then stdin */
    if (i < argc) {
        char line[2048] = "";
        for (int k = i; k < argc; k++) {
            strncat(line, argv[k], sizeof line - strlen(line) - 2);
            strcat(line, " ");
        }
        push_cmd(&t, line);
    }
    t.stdin_open = t.read_stdin;
    if (t.read_stdin)
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    size_t qhead = 0;
    char *line = NULL; /* the current command's; its argv points into it */
    for (;;) {
        if (!t.busy && qhead < t.nq) {
            free(line);
            line = t.queue[qhead++];
            if (qhead == t.nq)
                qhead = t.nq = 0;
            start_cmd(&t, line);
            continue;
        }
        if (!t.busy && !t.serving && qhead >= t.nq && (!t.stdin_open || g_stop))
            break;
        if (g_stop && !t.serving)
            break;
        turn(&t);
        progress(&t);
        serve_progress(&t);
        if (t.busy && t.handle && now_ms() >= t.deadline) {
            irohds_dht_cancel(t.d, t.handle);
            t.handle = 0;
            print_result(&t, true);
            t.busy = false;
        }
    }
    free(line);
    irohds_dht_free(t.d);
    close(t.fd);
    free(t.items);
    return 0;
}
