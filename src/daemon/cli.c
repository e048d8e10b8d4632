/*
 * cli.c: irohds-daemon's commands (see cli.h and `irohds-daemon --help`).
 *
 * `start` is the path every Python process takes when no daemon answers, so
 * it must be safe to run many times at once: it double-forks a detached
 * `run --detached`, and the daemon lock (not this code) decides which of
 * several such daemons survives; the losers exit 0.  Each `start` then waits
 * until some daemon answers HELLO, so all of them succeed with one daemon.
 *
 * Read-only commands (info, ls) open the store read-only, which LMDB allows
 * beside the writing daemon; evict and gc go through the daemon when it runs
 * (it is the only writer) and otherwise take its lock and write themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cli.h"
#include "daemon/nodekey.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "ipc/ipc.h"
#include "store/store.h"

#define CALL_TIMEOUT_MS 10000
#define START_WAIT_MS 10000
#define GC_TIMEOUT_MS 600000

static const char usage[] =
    "usage: irohds-daemon [--json] COMMAND [ARGS]\n"
    "\n"
    "  run                 run the daemon in the foreground\n"
    "  start               start a detached daemon unless one is running\n"
    "  stop                stop the running daemon\n"
    "  info                node id, addresses, data dir, socket, store size and entries\n"
    "  ls                  one line per cached result\n"
    "  peers               known peers per namespace: how found, address, round trip\n"
    "  evict FUNC          drop every cached result of FUNC (module.qualname)\n"
    "  gc                  apply the size limit, delete unreferenced blobs\n"
    "  service install|uninstall|status [--print]\n"
    "                      the systemd user unit (optional)\n"
    "\n"
    "  --json              machine-readable output (info, ls, peers, evict, gc)\n"
    "  --help, --version\n"
    "\n"
    "The data dir is $IROHDS_HOME, else $XDG_DATA_HOME/irohds, else ~/.local/share/irohds.\n";

/* ------------------------------------------------------------ formatting */

void irohds_cli_format_size(unsigned long long bytes, char *buf, unsigned len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", bytes);
        return;
    }
    double v = (double)bytes / 1024;
    unsigned u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void irohds_cli_format_age(double s, char *buf, unsigned len)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, s < 10 && s != (long)s ? "%.1fs" : "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%.0fm", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%.0fh", s / 3600);
    else
        snprintf(buf, len, "%.0fd", s / 86400);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* ------------------------------------------------------------- daemon */

/* Connect and say HELLO.  0 with *pid on success; the client stays open. */
static int daemon_hello(const irohds_paths *p, irohds_ipc_client *c, uint32_t *pid)
{
    int rc = irohds_ipc_connect(c, p->socket_path);
    if (rc < 0)
        return rc;
    irohds_ipc_msg req, rep;
    irohds_ipc_msg_init(&req, IROHDS_IPC_HELLO);
    rc = irohds_ipc_call(c, &req, -1, &rep, CALL_TIMEOUT_MS);
    if (rc == 0 && rep.type != IROHDS_IPC_HELLO)
        rc = -EPROTO;
    if (rc < 0) {
        irohds_ipc_close(c);
        return rc;
    }
    if (pid)
        *pid = rep.pid;
    return 0;
}

static irohds_ipc_client *client_new(void)
{
    irohds_ipc_client *c = malloc(sizeof(*c)); /* 1 MiB receive buffer: not on the stack */
    if (c)
        c->fd = -1;
    return c;
}

static void client_free(irohds_ipc_client *c)
{
    if (c) {
        irohds_ipc_close(c);
        free(c);
    }
}

/* One request to a running daemon.  1 if no daemon runs, 0 ok (reply in *rep), <0 error. */
static int daemon_call(const irohds_paths *p, irohds_ipc_client *c, irohds_ipc_msg *req,
                       irohds_ipc_msg *rep, int timeout_ms)
{
    uint32_t pid;
    if (daemon_hello(p, c, &pid) < 0)
        return 1;
    int rc = irohds_ipc_call(c, req, -1, rep, timeout_ms);
    if (rc < 0)
        return rc;
    if (rep->type == IROHDS_IPC_ERROR) {
        char text[512] = "";
        irohds_ipc_str_copy(rep->text, text, sizeof(text));
        fprintf(stderr, "irohds-daemon: %s\n", text);
        return rep->code < 0 ? rep->code : -EIO;
    }
    return 0;
}

/* ------------------------------------------------------- run/start/stop */

static int cmd_run(const irohds_paths *p, int argc, char **argv)
{
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--detached"))
            flags |= IROHDS_SERVER_DETACHED;
        else {
            fprintf(stderr, "irohds-daemon run: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    return irohds_server_run(p, flags);
}

static void self_exe(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n < 0)
        n = 0;
    buf[n] = 0;
}

/* The grandchild: a session leader's child, so it never gets a terminal. */
static void exec_detached(const irohds_paths *p, const char *exe)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null < 0 || log < 0)
        _exit(1);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    /* Whatever our caller left open (a pipe it reads until EOF, say) must
     * not be held for the daemon's lifetime. */
    close_range(3, ~0u, 0);
    if (chdir("/") < 0)
        _exit(1);
    umask(077);
    execl(exe, exe, "run", "--detached", (char *)NULL);
    _exit(127);
}

static int spawn_detached(const irohds_paths *p)
{
    char exe[PATH_MAX];
    self_exe(exe, sizeof(exe));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid_t g = fork();
        if (g < 0)
            _exit(1);
        if (g == 0)
            exec_detached(p, exe);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static int cmd_start(const irohds_paths *p)
{
    irohds_ipc_client *c = client_new();
    uint32_t pid;
    if (!c)
        return 1;
    if (daemon_hello(p, c, &pid) == 0) {
        printf("irohds-daemon already running (pid %u)\n", pid);
        client_free(c);
        return 0;
    }
    int rc = irohds_paths_create_dirs(p);
    if (rc == 0)
        rc = spawn_detached(p);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: cannot start: %s\n", strerror(-rc));
        client_free(c);
        return 1;
    }
    uint64_t deadline = irohds_monotonic_ns() + (uint64_t)START_WAIT_MS * 1000000u;
    while (irohds_monotonic_ns() < deadline) {
        if (daemon_hello(p, c, &pid) == 0) {
            printf("irohds-daemon started (pid %u, socket %s)\n", pid, p->socket_path);
            client_free(c);
            return 0;
        }
        poll(NULL, 0, 20);
    }
    client_free(c);
    fprintf(stderr, "irohds-daemon: started, but no answer on %s within %d s; see %s\n",
            p->socket_path, START_WAIT_MS / 1000, p->log_path);
    return 1;
}

static int cmd_stop(const irohds_paths *p)
{
    irohds_ipc_client *c = client_new();
    if (!c)
        return 1;
    irohds_ipc_msg req, rep;
    irohds_ipc_msg_init(&req, IROHDS_IPC_STOP);
    int rc = daemon_call(p, c, &req, &rep, CALL_TIMEOUT_MS);
    client_free(c);
    if (rc == 1) {
        printf("irohds-daemon is not running\n");
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: stop: %s\n", strerror(-rc));
        return 1;
    }
    /* The daemon releases its lock as its very last act: wait for that, so
     * a `start` right after `stop` never races the old daemon. */
    uint64_t deadline = irohds_monotonic_ns() + (uint64_t)START_WAIT_MS * 1000000u;
    while (irohds_monotonic_ns() < deadline) {
        int fd = irohds_server_lock(p);
        if (fd >= 0) {
            close(fd);
            printf("irohds-daemon stopped\n");
            return 0;
        }
        poll(NULL, 0, 20);
    }
    fprintf(stderr, "irohds-daemon: asked to stop, still running after %d s\n",
            START_WAIT_MS / 1000);
    return 1;
}

/* ---------------------------------------------------------------- info */

typedef struct offline {
    irohds_nodekey key;
    bool have_key;
    uint64_t entries, bytes;
    bool have_store;
    char namespaces[4096];
} offline;

static void read_local(const irohds_paths *p, offline *o)
{
    memset(o, 0, sizeof(*o));
    /* The node id is made on first use, by whoever comes first (`info` or the
     * daemon; creation is atomic), so a new machine can print the id others
     * put in their bootstrap_peers before it ever ran. */
    o->have_key = irohds_nodekey_load(&o->key, p->key_path, false) == 0;
    if (!o->have_key && irohds_paths_create_dirs(p) == 0)
        o->have_key = irohds_nodekey_load(&o->key, p->key_path, true) == 0;
    if (o->have_key)
        irohds_nodekey_wipe(&o->key);
    irohds_store *s;
    if (irohds_store_open(&s, p->store_dir, IROHDS_STORE_READONLY) == 0) {
        o->have_store = irohds_store_stats(s, &o->entries, &o->bytes) == 0;
        irohds_store_close(s);
    }
    char path[PATH_MAX + 16], *text;
    size_t len;
    snprintf(path, sizeof(path), "%s/namespaces", p->data_dir);
    if (irohds_read_file(path, sizeof(o->namespaces) - 1, &text, &len) == 0) {
        memcpy(o->namespaces, text, len + 1);
        free(text);
    }
}

/*
 * The strings of the array under "key" in JSON text we wrote ourselves (the
 * daemon's INFO): "key": ["a", "b"].  Our writer escapes quotes, and these
 * strings (socket addresses) hold none, so a scan is enough here.
 */
static size_t json_strings(const char *text, size_t len, const char *key, char out[][80],
                           size_t max)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = memmem(text, len, pat, strlen(pat));
    if (!p)
        return 0;
    p += strlen(pat);
    size_t n = 0;
    while (n < max && *p == '"') {
        const char *end = strchr(p + 1, '"');
        if (!end || (size_t)(end - p - 1) >= sizeof out[0])
            break;
        snprintf(out[n++], sizeof out[0], "%.*s", (int)(end - p - 1), p + 1);
        p = end + 1;
        if (*p == ',')
            p += 2;
    }
    return n;
}

static int cmd_info(const irohds_paths *p, bool json)
{
    irohds_ipc_client *c = client_new();
    if (!c)
        return 1;
    uint32_t pid = 0;
    bool running = daemon_hello(p, c, &pid) == 0;
    char addrs[16][80];
    size_t naddrs = 0;
    if (running) {
        irohds_ipc_msg req, rep;
        irohds_ipc_msg_init(&req, IROHDS_IPC_INFO);
        if (irohds_ipc_call(c, &req, -1, &rep, CALL_TIMEOUT_MS) == 0 &&
            rep.type == IROHDS_IPC_OK) {
            if (json) {
                printf("%.*s\n", (int)rep.text.len, rep.text.ptr);
                client_free(c);
                return 0;
            }
            naddrs = json_strings(rep.text.ptr, rep.text.len, "addresses", addrs, 16);
        }
    }
    client_free(c);
    offline o;
    read_local(p, &o);
    char size[32];
    irohds_cli_format_size(o.bytes, size, sizeof(size));
    if (json) {
        printf("{\"node_id\": ");
        if (o.have_key)
            json_str(o.key.id);
        else
            printf("null");
        printf(", \"data_dir\": ");
        json_str(p->data_dir);
        printf(", \"socket\": ");
        json_str(p->socket_path);
        printf(", \"pid\": null, \"running\": false, \"version\": \"%s\", \"store_bytes\": %llu, "
               "\"entries\": %llu, \"namespaces\": [",
               IROHDS_VERSION_STRING, (unsigned long long)o.bytes, (unsigned long long)o.entries);
        bool first = true;
        for (char *line = strtok(o.namespaces, "\n"); line; line = strtok(NULL, "\n")) {
            printf(first ? "" : ", ");
            json_str(line);
            first = false;
        }
        printf("]}\n");
        return 0;
    }
    printf("node id    %s\n", o.have_key ? o.key.id : "(none: the data dir is not writable)");
    printf("data dir   %s\n", p->data_dir);
    if (running)
        printf("socket     %s (daemon running, pid %u)\n", p->socket_path, pid);
    else
        printf("socket     %s (daemon not running)\n", p->socket_path);
    if (o.have_store)
        printf("store      %s in %llu entr%s\n", size, (unsigned long long)o.entries,
               o.entries == 1 ? "y" : "ies");
    else
        printf("store      (empty: nothing cached yet)\n");
    if (o.namespaces[0]) {
        printf("namespaces");
        for (char *line = strtok(o.namespaces, "\n"); line; line = strtok(NULL, "\n"))
            printf(" %s", line);
        printf("\n");
    }
    if (naddrs && o.have_key) {
        printf("as a bootstrap peer (for another machine's config.toml):\n");
        printf("  bootstrap_peers = [");
        for (size_t i = 0; i < naddrs; i++)
            printf("%s\"%s@%s\"", i ? ", " : "", o.key.id, addrs[i]);
        printf("]\n");
    }
    return 0;
}

/* --------------------------------------------------------------- peers */

static int cmd_peers(const irohds_paths *p, bool json)
{
    irohds_ipc_client *c = client_new();
    if (!c)
        return 1;
    uint32_t pid;
    if (daemon_hello(p, c, &pid) != 0) {
        client_free(c);
        fprintf(stderr, "irohds-daemon: no daemon is running (irohds-daemon start)\n");
        return 1;
    }
    irohds_ipc_msg req, rep;
    irohds_ipc_msg_init(&req, IROHDS_IPC_PEERS);
    if (!json) {
        req.flags = IROHDS_IPC_PEERS_TEXT;
        req.present |= 1u << IROHDS_TAG_FLAGS;
    }
    int rc = irohds_ipc_call(c, &req, -1, &rep, CALL_TIMEOUT_MS);
    if (rc == 0 && rep.type == IROHDS_IPC_OK)
        printf("%.*s%s", (int)rep.text.len, rep.text.ptr, json ? "\n" : "");
    else
        fprintf(stderr, "irohds-daemon: peers: %s\n",
                rc < 0 ? strerror(-rc) : "the daemon refused");
    client_free(c);
    return rc == 0 && rep.type == IROHDS_IPC_OK ? 0 : 1;
}

/* ------------------------------------------------------------------ ls */

typedef struct row {
    uint8_t key[32];
    irohds_record rec;
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
} rows;

static int collect(void *ctx, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec)
{
    rows *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        row *v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    memcpy(r->v[r->n].key, key, 32);
    r->v[r->n].rec = *rec;
    r->n++;
    return 0;
}

/* By function, then newest first. */
static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int c = strcmp(x->rec.func, y->rec.func);
    if (c)
        return c;
    return (x->rec.created_us < y->rec.created_us) - (x->rec.created_us > y->rec.created_us);
}

static int cmd_ls(const irohds_paths *p, bool json)
{
    irohds_store *s;
    rows r = {0};
    int rc = irohds_store_open(&s, p->store_dir, IROHDS_STORE_READONLY);
    if (rc == 0) {
        rc = irohds_store_foreach(s, collect, &r);
        irohds_store_close(s);
    } else if (rc == -ENOENT) {
        rc = 0; /* no store yet: nothing cached */
    }
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: reading %s: %s\n", p->store_dir, strerror(-rc));
        free(r.v);
        return 1;
    }
    qsort(r.v, r.n, sizeof(row), row_cmp);
    double now = (double)irohds_now_us() / 1e6;
    if (json)
        printf("[");
    else if (r.n)
        printf("%-40s %-16s %9s %6s %8s %s\n", "FUNCTION", "KEY", "SIZE", "AGE", "COMPUTE",
               "NS");
    for (size_t i = 0; i < r.n; i++) {
        const irohds_record *rec = &r.v[i].rec;
        char hex[65], bhex[65], size[32], age[16], comp[16];
        irohds_hex_encode(r.v[i].key, 32, hex);
        double age_s = (double)(long long)(now - (double)rec->created_us / 1e6); /* whole seconds */
        if (json) {
            irohds_hex_encode(rec->blob, 32, bhex);
            printf("%s\n {\"func\": ", i ? "," : "");
            json_str(rec->func);
            printf(", \"key\": \"%s\", \"blob\": \"%s\", \"size\": %llu, \"files_size\": %llu, "
                   "\"nfiles\": %u, \"serializer\": %u, \"compute_seconds\": %.6f, "
                   "\"created_us\": %lld, \"last_used_us\": %lld, \"ns\": ",
                   hex, bhex, (unsigned long long)rec->size, (unsigned long long)rec->files_size,
                   rec->nfiles, rec->serializer, rec->compute_seconds, (long long)rec->created_us,
                   (long long)rec->last_used_us);
            json_str(rec->ns);
            printf("}");
            continue;
        }
        irohds_cli_format_size(rec->size + rec->files_size, size, sizeof(size));
        irohds_cli_format_age(age_s, age, sizeof(age));
        irohds_cli_format_age(rec->compute_seconds, comp, sizeof(comp));
        hex[16] = 0;
        printf("%-40s %-16s %9s %6s %8s %s\n", rec->func, hex, size, age, comp,
               rec->ns[0] ? rec->ns : "-");
    }
    if (json)
        printf("%s]\n", r.n ? "\n" : "");
    else if (r.n == 0)
        printf("nothing cached yet (%s)\n", p->store_dir);
    free(r.v);
    return 0;
}

/* ----------------------------------------------------------- evict, gc */

static bool nothing_in_use(void *ctx, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec)
{
    (void)ctx, (void)key, (void)rec;
    return false; /* no daemon, so no leases */
}

/* Open the store as its writer, which only the lock holder may be. */
static int open_locked(const irohds_paths *p, irohds_store **s, int *lock_fd)
{
    int rc = irohds_paths_create_dirs(p);
    if (rc < 0)
        return rc;
    *lock_fd = irohds_server_lock(p);
    if (*lock_fd < 0)
        return *lock_fd; /* -EWOULDBLOCK: a daemon started meanwhile; the caller retries */
    irohds_config cfg;
    char err[256];
    irohds_config_defaults(&cfg);
    irohds_config_load(&cfg, p->config_path, err, sizeof(err));
    rc = irohds_store_open(s, p->store_dir, cfg.sync ? IROHDS_STORE_SYNC : 0);
    if (rc == 0)
        rc = irohds_store_set_files_dir(*s, p->files_dir);
    if (rc < 0) {
        close(*lock_fd);
        return rc;
    }
    return 0;
}

/* What a store-changing command does itself when no daemon runs. */
typedef int (*offline_fn)(const irohds_paths *p, irohds_store *s, const void *arg, uint64_t *out);

/*
 * Ask the daemon (req, whose OK reply carries COUNT into *out).  When none
 * runs, take the daemon's lock and run offline() on the store directly; a
 * daemon that grabs the lock first is asked instead.  0, or a negative errno
 * (1 = still racing after three tries).
 */
static int daemon_or_store(const irohds_paths *p, irohds_ipc_msg *req, int timeout_ms,
                           offline_fn offline, const void *arg, uint64_t *out)
{
    int rc = 1;
    for (int attempt = 0; attempt < 3 && rc == 1; attempt++) {
        irohds_ipc_client *c = client_new();
        irohds_ipc_msg rep;
        rc = c ? daemon_call(p, c, req, &rep, timeout_ms) : -ENOMEM;
        if (rc == 0)
            *out = rep.count;
        client_free(c);
        if (rc != 1)
            break;
        irohds_store *s;
        int lock_fd;
        rc = open_locked(p, &s, &lock_fd);
        if (rc == -EWOULDBLOCK) {
            rc = 1; /* a daemon got there first: ask it */
            continue;
        }
        if (rc == 0) {
            rc = offline(p, s, arg, out);
            irohds_store_close(s);
            close(lock_fd);
        }
    }
    return rc;
}

static int evict_offline(const irohds_paths *p, irohds_store *s, const void *func, uint64_t *n)
{
    (void)p;
    return irohds_store_evict_func(s, func, n);
}

static int gc_offline(const irohds_paths *p, irohds_store *s, const void *arg, uint64_t *freed)
{
    (void)arg;
    irohds_config cfg;
    char err[256];
    irohds_config_defaults(&cfg);
    irohds_config_load(&cfg, p->config_path, err, sizeof(err));
    irohds_store_apply_touches(s);
    return irohds_store_gc(s, cfg.size_limit ? cfg.size_limit : UINT64_MAX, nothing_in_use, NULL,
                           freed);
}

static int cmd_evict(const irohds_paths *p, const char *func, bool json)
{
    if (strlen(func) >= IROHDS_FUNC_MAX || !func[0]) {
        fprintf(stderr, "irohds-daemon: not a function name: %s\n", func);
        return 2;
    }
    uint64_t n = 0;
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, IROHDS_IPC_EVICT);
    irohds_ipc_set_str(&req, IROHDS_TAG_FUNC, func);
    int rc = daemon_or_store(p, &req, CALL_TIMEOUT_MS, evict_offline, func, &n);
    if (rc != 0) {
        fprintf(stderr, "irohds-daemon: evict: %s\n", strerror(rc < 0 ? -rc : EAGAIN));
        return 1;
    }
    if (json) {
        printf("{\"func\": ");
        json_str(func);
        printf(", \"evicted\": %llu}\n", (unsigned long long)n);
    } else {
        printf("evicted %llu result%s of %s\n", (unsigned long long)n, n == 1 ? "" : "s", func);
    }
    return 0;
}

static int cmd_gc(const irohds_paths *p, bool json)
{
    uint64_t freed = 0;
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, IROHDS_IPC_GC);
    int rc = daemon_or_store(p, &req, GC_TIMEOUT_MS, gc_offline, NULL, &freed);
    if (rc != 0) {
        fprintf(stderr, "irohds-daemon: gc: %s\n", strerror(rc < 0 ? -rc : EAGAIN));
        return 1;
    }
    char size[32];
    irohds_cli_format_size(freed, size, sizeof(size));
    if (json)
        printf("{\"freed\": %llu}\n", (unsigned long long)freed);
    else
        printf("gc freed %s\n", size);
    return 0;
}

/* ----------------------------------------------------------------- main */

int irohds_cli_main(int argc, char **argv)
{
    bool json = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("irohds-daemon %s (ipc protocol %d)\n", IROHDS_VERSION_STRING,
                   IROHDS_IPC_VERSION);
            return 0;
        } else {
            fprintf(stderr, "irohds-daemon: unknown option %s\n%s", argv[i], usage);
            return 2;
        }
    }
    if (i == argc) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int nargs = argc - i - 1;
    char **args = argv + i + 1;
    /* --json is also accepted after the command. */
    for (int k = 0; k < nargs; k++) {
        if (!strcmp(args[k], "--json")) {
            json = true;
            memmove(args + k, args + k + 1, (size_t)(nargs - k - 1) * sizeof(char *));
            nargs--;
            k--;
        }
    }
    irohds_paths p;
    int rc = irohds_paths_init(&p);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: cannot find the data dir: %s\n", strerror(-rc));
        return 1;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(&p, nargs + 1, args - 1);
    if (!strcmp(cmd, "start") && nargs == 0)
        return cmd_start(&p);
    if (!strcmp(cmd, "stop") && nargs == 0)
        return cmd_stop(&p);
    if (!strcmp(cmd, "info") && nargs == 0)
        return cmd_info(&p, json);
    if (!strcmp(cmd, "ls") && nargs == 0)
        return cmd_ls(&p, json);
    if (!strcmp(cmd, "peers") && nargs == 0)
        return cmd_peers(&p, json);
    if (!strcmp(cmd, "evict") && nargs == 1)
        return cmd_evict(&p, args[0], json);
    if (!strcmp(cmd, "gc") && nargs == 0)
        return cmd_gc(&p, json);
    if (!strcmp(cmd, "service") && nargs >= 1) {
        char exe[PATH_MAX];
        self_exe(exe, sizeof(exe));
        if (strcmp(args[0], "--print") != 0)
            irohds_paths_create_dirs(&p); /* ReadWritePaths needs the data dir to exist */
        return irohds_service_main(&p, exe, nargs, args);
    }
    fprintf(stderr, "irohds-daemon: unknown command or wrong arguments: %s\n%s", cmd, usage);
    return 2;
}
