/*
 * quic_bench: QUIC (src/net) against plain TCP, two processes, one run.
 *
 *   quic_bench [--bytes N] [--runs R] [--addr HOST:PORT] [--cc cubic|bbr|bbr2|reno]
 *              [--payload N] [--role both|server|client]
 *
 * A receiver (the server: a QUIC endpoint with GSO/GRO, one without, one
 * whose initial RTT is ngtcp2's 333 ms, and a TCP listener, all on HOST)
 * and a sender (the client).  With --role both (default) the server is a
 * forked child on loopback; --role server/client run one side each, e.g.
 * in two network namespaces (QUIC on PORT, no GSO/GRO on PORT+1, 333 ms on
 * PORT+2, TCP on PORT; the server's key is fixed).
 *
 * Per run, in order: N bytes over one QUIC stream with the endpoint's own
 * choice of datagram size (65000 bytes to a loopback address, 1452
 * elsewhere; --payload overrides); the same over TCP; the same over QUIC
 * with 1452-byte datagrams, what a 1500-MTU path allows, with GSO and GRO
 * and then without.  Then a connect-to-first-echo time (handshake + one
 * stream round trip) from a fresh client endpoint (nothing remembered on
 * either side), with both ends at ngtcp2's default initial RTT (333 ms),
 * then both at ours (10 ms).  Medians are printed with the QUIC/TCP
 * ratios.  A transfer is timed from its first write to the receiver's
 * answer coming back: its byte count and the CPU time it spent (getrusage),
 * so each transfer also reports CPU seconds per GiB on both sides, a
 * measure that holds when other work shares the machine and wall-clock
 * rates do not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/net.h"
#include "util/util.h"

#define ALPN "/irohds-bench/1"
#define SRC_LEN (1u << 20)
#define MAX_RUNS 64

typedef struct opts {
    uint64_t bytes;
    int runs;
    const char *addr;
    const char *role;
    int cc;
    size_t payload;
} opts;

static uint8_t src[SRC_LEN];

/* CPU time (user + system) of this process, in microseconds. */
static uint64_t cpu_us(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (uint64_t)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

/* What the receiver answers at the end of a transfer. */
typedef struct answer {
    uint64_t count;
    uint64_t cpu_us;
} answer;

static void key_from_seed(uint8_t fill, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "quic_bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

/* --------------------------------------------------------------- server */

/* Per stream: 'E' echoes everything back, 'S' counts and answers the
 * count and the CPU time spent. */
typedef struct sstream {
    int64_t sid;
    char mode;
    uint64_t count;
    uint64_t cpu0;
} sstream;

static sstream *sstream_of(irohds_net_conn *c, int64_t sid)
{
    sstream *s = irohds_net_conn_user_ptr(c);
    if (!s) {
        s = calloc(1, sizeof *s);
        s->sid = -1;
        irohds_net_conn_set_user_ptr(c, s);
    }
    if (s->sid != sid) {
        s->sid = sid;
        s->mode = 0;
        s->count = 0;
    }
    return s;
}

static void srv_recv(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                     bool fin)
{
    (void)sptr;
    sstream *s = sstream_of(c, sid);
    if (!s->mode && len) {
        s->mode = (char)data[0];
        s->cpu0 = cpu_us();
    }
    s->count += len;
    if (s->mode == 'E') {
        irohds_net_stream_write(c, sid, data, len, fin);
    } else if (fin) {
        answer a = {s->count, cpu_us() - s->cpu0};
        irohds_net_stream_write(c, sid, &a, sizeof a, true);
    }
}

static void srv_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    (void)why;
    free(irohds_net_conn_user_ptr(c));
}

static const irohds_net_callbacks SRV_CB = {.closed = srv_closed, .recv = srv_recv};

/* TCP: count until EOF, answer the count. */
typedef struct tcp_conn {
    uv_tcp_t h;
    uint64_t cpu0;
    answer a;
    uv_write_t w;
} tcp_conn;

static char tcp_buf[1 << 20];

static void tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(tcp_buf, sizeof tcp_buf);
}

static void tcp_free(uv_handle_t *h)
{
    free(h);
}

static void tcp_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, tcp_free);
}

static void tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    tcp_conn *t = (tcp_conn *)st;
    if (n > 0) {
        t->a.count += (uint64_t)n;
    } else if (n == UV_EOF) {
        t->a.cpu_us = cpu_us() - t->cpu0;
        uv_buf_t ob = uv_buf_init((char *)&t->a, sizeof t->a);
        uv_write(&t->w, st, &ob, 1, tcp_written);
    } else if (n < 0) {
        uv_close((uv_handle_t *)st, tcp_free);
    }
}

static void tcp_accept(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    tcp_conn *t = calloc(1, sizeof *t);
    t->cpu0 = cpu_us();
    uv_tcp_init(server->loop, &t->h);
    if (uv_accept(server, (uv_stream_t *)&t->h) == 0)
        uv_read_start((uv_stream_t *)&t->h, tcp_alloc, tcp_read);
    else
        uv_close((uv_handle_t *)&t->h, tcp_free);
}

static irohds_net_endpoint *bench_endpoint(uv_loop_t *loop, const opts *o, const char *listen,
                                           uint8_t seed, unsigned flags, size_t payload,
                                           uint64_t rtt_us, const irohds_net_callbacks *cb)
{
    uint8_t pk[32], sk[64];
    key_from_seed(seed, pk, sk);
    static const char *const alpns[] = {ALPN};
    irohds_net_config cfg = {.secret_key = sk, .listen = listen, .alpns = alpns, .n_alpns = 1,
                             .cb = cb, .cc = o->cc, .max_udp_payload = payload,
                             .flags = flags, .initial_rtt_us = rtt_us};
    irohds_net_endpoint *ep;
    int r = irohds_net_endpoint_init(loop, &cfg, &ep);
    if (r < 0)
        die(listen, r);
    return ep;
}

static uint16_t port_of(irohds_net_endpoint *ep)
{
    struct sockaddr_storage a;
    irohds_net_endpoint_local_addr(ep, &a);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static void with_port(const char *addr, uint16_t port, char *out, size_t len)
{
    struct sockaddr_storage a;
    irohds_net_parse_addr(addr, &a);
    ((struct sockaddr_in *)&a)->sin_port = htons(port); /* same offset in v6 */
    irohds_net_addr_str((struct sockaddr *)&a, out, len);
}

/* Runs until killed.  Writes its four ports to report_fd (if >= 0). */
static void serve(const opts *o, int report_fd)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sockaddr_storage a;
    if (irohds_net_parse_addr(o->addr, &a) < 0)
        die("--addr", EINVAL);
    uint16_t port = ntohs(((struct sockaddr_in *)&a)->sin_port);
    char l1[80], l2[80], l3[80];
    with_port(o->addr, port, l1, sizeof l1);
    irohds_net_endpoint *gso = bench_endpoint(&loop, o, l1, 0, 0, 0, 0, &SRV_CB);
    with_port(o->addr, port ? port + 1 : 0, l2, sizeof l2);
    irohds_net_endpoint *plain = bench_endpoint(
        &loop, o, l2, 0, IROHDS_NET_NO_GSO | IROHDS_NET_NO_GRO, 0, 0, &SRV_CB);
    with_port(o->addr, port ? port + 2 : 0, l3, sizeof l3);
    irohds_net_endpoint *slow = bench_endpoint(&loop, o, l3, 0, 0, 0, 333000, &SRV_CB);
    uv_tcp_t tcp;
    uv_tcp_init(&loop, &tcp);
    ((struct sockaddr_in *)&a)->sin_port = htons(port_of(gso));
    int r = uv_tcp_bind(&tcp, (struct sockaddr *)&a, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&tcp, 16, tcp_accept);
    if (r < 0)
        die("tcp listen", r);
    uint16_t ports[4] = {port_of(gso), port_of(plain), port_of(gso), port_of(slow)};
    if (report_fd >= 0 && write(report_fd, ports, sizeof ports) != sizeof ports)
        die("report", errno);
    fprintf(stderr, "quic_bench: serving QUIC on %s (no GSO/GRO: %s, 333 ms: %s), TCP on %u\n",
            l1, l2, l3, port_of(gso));
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* --------------------------------------------------------------- client */

typedef struct client {
    uv_loop_t loop;
    irohds_net_endpoint *ep;
    irohds_net_conn *conn;
    bool up, done, failed;
    char why[IROHDS_NET_REASON_MAX];
    int64_t sid;
    uint64_t total, sent;
    answer answer;
    size_t answer_len;
} client;

static void cli_connected(irohds_net_conn *c)
{
    client *cl = irohds_net_conn_user_ptr(c);
    cl->up = true;
}

static void cli_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    client *cl = irohds_net_conn_user_ptr(c);
    if (!cl->done)
        cl->failed = true;
    snprintf(cl->why, sizeof cl->why, "%s", why->reason);
    cl->conn = NULL;
}

static void cli_recv(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                     bool fin)
{
    (void)sid;
    (void)sptr;
    client *cl = irohds_net_conn_user_ptr(c);
    size_t room = sizeof cl->answer - cl->answer_len;
    size_t take = len < room ? len : room;
    memcpy((uint8_t *)&cl->answer + cl->answer_len, data, take);
    cl->answer_len += take;
    cl->done = fin;
}

static void pump(client *cl)
{
    while (cl->sent < cl->total) {
        size_t off = (size_t)(cl->sent % SRC_LEN);
        size_t n = SRC_LEN - off;
        if (n > cl->total - cl->sent)
            n = (size_t)(cl->total - cl->sent);
        ssize_t w = irohds_net_stream_write(cl->conn, cl->sid, src + off, n,
                                            cl->sent + n == cl->total);
        if (w <= 0)
            return;
        cl->sent += (uint64_t)w;
    }
}

static void cli_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sid;
    (void)sptr;
    pump(irohds_net_conn_user_ptr(c));
}

static const irohds_net_callbacks CLI_CB = {
    .connected = cli_connected, .closed = cli_closed, .recv = cli_recv, .writable = cli_writable};

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static bool run_while(client *cl, bool *flag, uint64_t ms)
{
    bool expired = false;
    uv_timer_t t;
    uv_update_time(&cl->loop); /* this loop may have been idle for a while */
    uv_timer_init(&cl->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!*flag && !cl->failed && !expired)
        uv_run(&cl->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
    return *flag;
}

static void connect_to(client *cl, const char *addr, uint16_t port, uint64_t rtt_us)
{
    uint8_t pk[32], sk[64];
    key_from_seed(0, pk, sk);
    char s[80];
    with_port(addr, port, s, sizeof s);
    struct sockaddr_storage to;
    irohds_net_parse_addr(s, &to);
    cl->up = cl->done = cl->failed = false;
    cl->answer_len = 0;
    memset(&cl->answer, 0, sizeof cl->answer);
    int r = irohds_net_connect(cl->ep, pk, (struct sockaddr *)&to, ALPN, rtt_us, cl, &cl->conn);
    if (r < 0)
        die("connect", r);
}

static void hang_up(client *cl)
{
    if (cl->conn)
        irohds_net_conn_close(cl->conn, 0, "bench done");
    bool never = false;
    run_while(cl, &never, 20);
}

static void handshake_failed(const client *cl)
{
    fprintf(stderr, "quic_bench: QUIC handshake: %s\n",
            cl->failed ? cl->why : "no answer in 5 s");
    exit(1);
}

/* One transfer: MB/s (0 on failure) and CPU seconds per GiB on each side. */
typedef struct result {
    double mbps, tx_cpu, rx_cpu;
} result;

static result measured(uint64_t bytes, uint64_t ns, uint64_t tx_cpu_us, const answer *a)
{
    double gib = (double)bytes / (1u << 30);
    result r = {0, 0, 0};
    if (a->count != bytes)
        return r;
    r.mbps = (double)bytes / ((double)ns / 1e9) / 1e6;
    r.tx_cpu = (double)tx_cpu_us / 1e6 / gib;
    r.rx_cpu = (double)a->cpu_us / 1e6 / gib;
    return r;
}

/* N bytes over one stream. */
static result quic_transfer(client *cl, const char *addr, uint16_t port, uint64_t bytes)
{
    connect_to(cl, addr, port, 0);
    if (!run_while(cl, &cl->up, 5000))
        handshake_failed(cl);
    uint64_t t0 = uv_hrtime(), c0 = cpu_us();
    irohds_net_stream_open(cl->conn, true, NULL, &cl->sid);
    src[0] = 'S';
    cl->total = bytes;
    cl->sent = 0;
    pump(cl);
    run_while(cl, &cl->done, 600000);
    result r = measured(bytes, uv_hrtime() - t0, cpu_us() - c0, &cl->answer);
    if (r.mbps == 0)
        fprintf(stderr, "quic_bench: QUIC transfer failed (%s; %llu of %llu)\n", cl->why,
                (unsigned long long)cl->answer.count, (unsigned long long)bytes);
    hang_up(cl);
    return r;
}

static void client_init(client *cl, const opts *o, unsigned flags, size_t payload,
                        uint64_t rtt_us);
static void client_free(client *cl);

/* connect() to the echo of one byte, in ms, from a fresh endpoint. */
static double first_echo(const opts *o, uint16_t port, uint64_t rtt_us)
{
    static client fresh;
    client_init(&fresh, o, 0, o->payload, rtt_us);
    client *cl = &fresh;
    const char *addr = o->addr;
    uint64_t t0 = uv_hrtime();
    connect_to(cl, addr, port, 0);
    if (!run_while(cl, &cl->up, 5000))
        handshake_failed(cl);
    irohds_net_stream_open(cl->conn, true, NULL, &cl->sid);
    irohds_net_stream_write(cl->conn, cl->sid, "E", 1, true);
    bool ok = run_while(cl, &cl->done, 5000);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    hang_up(cl);
    client_free(cl);
    return ok ? ms : 0;
}

static result tcp_transfer(const char *addr, uint16_t port, uint64_t bytes)
{
    char s[80];
    with_port(addr, port, s, sizeof s);
    struct sockaddr_storage to;
    irohds_net_parse_addr(s, &to);
    int fd = socket(to.ss_family, SOCK_STREAM, 0);
    socklen_t tl = to.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, tl) != 0)
        die("tcp connect", errno);
    uint64_t t0 = uv_hrtime(), c0 = cpu_us(), sent = 0;
    while (sent < bytes) {
        size_t off = (size_t)(sent % SRC_LEN), n = SRC_LEN - off;
        if (n > bytes - sent)
            n = (size_t)(bytes - sent);
        ssize_t w = write(fd, src + off, n);
        if (w <= 0)
            die("tcp write", errno);
        sent += (uint64_t)w;
    }
    shutdown(fd, SHUT_WR);
    answer a;
    size_t got = 0;
    while (got < sizeof a) {
        ssize_t r = read(fd, (uint8_t *)&a + got, sizeof a - got);
        if (r <= 0)
            die("tcp answer", errno);
        got += (size_t)r;
    }
    result res = measured(bytes, uv_hrtime() - t0, cpu_us() - c0, &a);
    close(fd);
    return res;
}

static void client_init(client *cl, const opts *o, unsigned flags, size_t payload,
                        uint64_t rtt_us)
{
    memset(cl, 0, sizeof *cl);
    uv_loop_init(&cl->loop);
    struct sockaddr_storage a;
    irohds_net_parse_addr(o->addr, &a);
    const char *any = a.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0";
    cl->ep = bench_endpoint(&cl->loop, o, any, 0x2a, flags, payload, rtt_us, &CLI_CB);
}

static void client_free(client *cl)
{
    irohds_net_endpoint_free(cl->ep);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
    uv_loop_close(&cl->loop);
}

static void print_row(const char *what, double *v, int n, const char *unit)
{
    printf("%-44s median %8.2f %-4s [", what, median(v, n), unit);
    for (int i = 0; i < n; i++)
        printf("%s%.2f", i ? " " : "", v[i]);
    printf("]\n");
}

enum { QUIC_AUTO, TCP, QUIC_1452, QUIC_PLAIN, KINDS };

static const char *const KIND_NAME[KINDS] = {
    "QUIC, auto-sized datagrams", "TCP", "QUIC, 1452-byte datagrams, GSO+GRO",
    "QUIC, 1452-byte datagrams, no GSO/GRO"};

/* MB/s, then CPU seconds per GiB on each side, for one kind of transfer. */
static void print_kind(int k, result *res, int n)
{
    double mbps[MAX_RUNS], tx[MAX_RUNS], rx[MAX_RUNS];
    for (int i = 0; i < n; i++) {
        mbps[i] = res[i].mbps;
        tx[i] = res[i].tx_cpu;
        rx[i] = res[i].rx_cpu;
    }
    char what[96];
    print_row(KIND_NAME[k], mbps, n, "MB/s");
    snprintf(what, sizeof what, "  CPU per GiB, sender");
    print_row(what, tx, n, "s");
    snprintf(what, sizeof what, "  CPU per GiB, receiver");
    print_row(what, rx, n, "s");
}

#define STD_PAYLOAD 1452

static void run_client(const opts *o, const uint16_t ports[4])
{
    static client fast, std, plain;
    static result res[KINDS][MAX_RUNS];
    client_init(&fast, o, 0, o->payload, 0);
    client_init(&std, o, 0, STD_PAYLOAD, 0);
    client_init(&plain, o, IROHDS_NET_NO_GSO | IROHDS_NET_NO_GRO, STD_PAYLOAD, 0);
    double ratio[MAX_RUNS], ratio1452[MAX_RUNS], e333[MAX_RUNS], e10[MAX_RUNS];
    for (int i = 0; i < o->runs; i++) {
        res[QUIC_AUTO][i] = quic_transfer(&fast, o->addr, ports[0], o->bytes);
        res[TCP][i] = tcp_transfer(o->addr, ports[2], o->bytes);
        res[QUIC_1452][i] = quic_transfer(&std, o->addr, ports[0], o->bytes);
        res[QUIC_PLAIN][i] = quic_transfer(&plain, o->addr, ports[1], o->bytes);
        double tcp = res[TCP][i].mbps;
        ratio[i] = tcp > 0 ? res[QUIC_AUTO][i].mbps / tcp : 0;
        ratio1452[i] = tcp > 0 ? res[QUIC_1452][i].mbps / tcp : 0;
        e333[i] = first_echo(o, ports[3], 333000);
        e10[i] = first_echo(o, ports[0], 10000);
        fprintf(stderr,
                "run %d: QUIC %.0f, TCP %.0f, QUIC/1452 %.0f, QUIC/1452 no GSO/GRO %.0f MB/s; "
                "first echo %.2f / %.2f ms\n",
                i + 1, res[QUIC_AUTO][i].mbps, tcp, res[QUIC_1452][i].mbps,
                res[QUIC_PLAIN][i].mbps, e333[i], e10[i]);
    }
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(fast.ep, &st);
    printf("quic_bench: %llu MiB per transfer, %d runs, server %s (GSO %s, GRO %s)%s\n",
           (unsigned long long)(o->bytes >> 20), o->runs, o->addr, st.gso ? "on" : "off",
           st.gro ? "on" : "off", o->payload ? ", --payload set" : "");
    for (int k = 0; k < KINDS; k++)
        print_kind(k, res[k], o->runs);
    print_row("ratio QUIC/TCP", ratio, o->runs, "");
    print_row("ratio QUIC(1452, GSO+GRO)/TCP", ratio1452, o->runs, "");
    print_row("connect->first echo, initial RTT 333 ms", e333, o->runs, "ms");
    print_row("connect->first echo, initial RTT 10 ms", e10, o->runs, "ms");
    client_free(&fast);
    client_free(&std);
    client_free(&plain);
}

/* ----------------------------------------------------------------- main */

static int parse_cc(const char *s)
{
    if (strcmp(s, "reno") == 0)
        return IROHDS_NET_CC_RENO;
    if (strcmp(s, "cubic") == 0)
        return IROHDS_NET_CC_CUBIC;
    if (strcmp(s, "bbr") == 0)
        return IROHDS_NET_CC_BBR;
    if (strcmp(s, "bbr2") == 0)
        return IROHDS_NET_CC_BBR2;
    die("--cc reno|cubic|bbr|bbr2", EINVAL);
    return 0;
}

static void parse(opts *o, int argc, char **argv)
{
    *o = (opts){.bytes = 1ull << 30, .runs = 5, .addr = "127.0.0.1:0", .role = "both"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--bytes") == 0)
            o->bytes = strtoull(v, NULL, 0);
        else if (strcmp(k, "--runs") == 0)
            o->runs = atoi(v);
        else if (strcmp(k, "--addr") == 0)
            o->addr = v;
        else if (strcmp(k, "--role") == 0)
            o->role = v;
        else if (strcmp(k, "--cc") == 0)
            o->cc = parse_cc(v);
        else if (strcmp(k, "--payload") == 0)
            o->payload = strtoul(v, NULL, 0);
        else
            die(k, EINVAL);
    }
    if (o->runs < 1 || o->runs > MAX_RUNS || o->bytes == 0)
        die("--runs 1..64, --bytes > 0", EINVAL);
}

int main(int argc, char **argv)
{
    opts o;
    parse(&o, argc, argv);
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(src, sizeof src);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.role, "server") == 0) {
        serve(&o, -1);
        return 0;
    }
    uint16_t ports[4];
    if (strcmp(o.role, "client") == 0) {
        struct sockaddr_storage a;
        irohds_net_parse_addr(o.addr, &a);
        uint16_t port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        ports[0] = ports[2] = port;
        ports[1] = port + 1;
        ports[3] = port + 2;
        run_client(&o, ports);
        return 0;
    }
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe", errno);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* do not outlive a client that died */
        serve(&o, pfd[1]);
        _exit(0);
    }
    close(pfd[1]);
    if (read(pfd[0], ports, sizeof ports) != sizeof ports)
        die("server did not start", EIO);
    run_client(&o, ports);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
}
