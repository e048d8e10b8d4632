/*
 * util: the small pieces every other subsystem leans on.
 *
 *   - paths:  where the data dir, store, staging area and daemon socket live.
 *             One function decides this for the daemon, the CLI and the Python
 *             extension alike, so they can never disagree.
 *   - config: a reader for the subset of TOML that config.toml uses.
 *   - log:    one-line logging with a level, to stderr or a file.
 *   - hex, time, fs helpers.
 *
 * Errors are negative errno values everywhere in irohds (libuv style);
 * 0 means success.
 */
#ifndef IROHDS_UTIL_H
#define IROHDS_UTIL_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IROHDS_SOCK_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */

/* ---------------------------------------------------------------- paths */

/*
 * The data dir is $IROHDS_HOME if set, else $XDG_DATA_HOME/irohds, else
 * ~/.local/share/irohds.  Inside it:
 *
 *   config.toml        user settings (may be absent)
 *   node.key           Ed25519 secret seed, 32 bytes, mode 0600
 *   store/index/       LMDB environment (data.mdb, lock.mdb)
 *   store/blobs/xx/    content-addressed blobs <hex>, outboards <hex>.obao
 *   store/tmp/         files being written (removed at daemon start)
 *   store/touch.log    last-used records appended by clients
 *   staging/<id>/      per-call dirs handed out by irohds.resolve()
 *   files/<key>/       FileRef results, hard links to their blobs
 *   daemon.log         log of the detached daemon
 *   daemon.lock        flock()ed by the running daemon (one per data dir)
 *
 * The socket lives in $IROHDS_HOME/run/ when IROHDS_HOME is set (tests), else
 * in $XDG_RUNTIME_DIR/irohds/ when that exists, else in <data dir>/run/.
 * The socket is <run dir>/daemon.sock.  A socket path longer than sun_path
 * falls back to run dir /tmp/irohds-<uid>/ with the socket named
 * <16 hex of a hash of the run dir it would have had>.sock, so data dirs never
 * share a socket; irohds_paths_create_dirs() then refuses that directory
 * unless it is ours (and makes it 0700).
 */
typedef struct irohds_paths {
    char data_dir[PATH_MAX];
    char config_path[PATH_MAX];
    char key_path[PATH_MAX];
    char store_dir[PATH_MAX];
    char staging_dir[PATH_MAX];
    char files_dir[PATH_MAX];
    char run_dir[PATH_MAX];
    char log_path[PATH_MAX];
    char lock_path[PATH_MAX];  /* flock()ed by the running daemon */
    char socket_path[IROHDS_SOCK_PATH_MAX];
} irohds_paths;

/* Fill *p from the environment.  Creates nothing. */
int irohds_paths_init(irohds_paths *p);

/* Create the data dir and its subdirs (mode 0700) if missing. */
int irohds_paths_create_dirs(const irohds_paths *p);

/* --------------------------------------------------------------- config */

#define IROHDS_MAX_TRUSTED 64
#define IROHDS_MAX_BOOTSTRAP 64
#define IROHDS_MAX_NS_TRUSTED 256 /* (namespace, node id) pairs over all [namespace.<ns>] tables */
#define IROHDS_CONFIG_NS_MAX 128  /* = IROHDS_NS_MAX (store.h): a namespace name incl. NUL */

/* One entry of a [namespace.<ns>] trusted = [...] list. */
typedef struct irohds_ns_trust {
    char ns[IROHDS_CONFIG_NS_MAX];
    char id[65]; /* node id, lower-case hex */
} irohds_ns_trust;

typedef struct irohds_config {
    uint64_t size_limit;          /* bytes; 0 = unlimited. default 10 GiB */
    double cheap_warning_seconds; /* warn when a call is cheaper; default 15 */
    bool sync;                    /* fdatasync blobs before acking a put; default true */
    int log_level;                /* IROHDS_LOG_*; default INFO */
    /* network */
    char listen[128];             /* QUIC "host:port"; default "0.0.0.0:4433"; "off" */
    unsigned n_bootstrap;
    char bootstrap_peers[IROHDS_MAX_BOOTSTRAP][160];
    /* discovery */
    bool mdns;                    /* multicast DNS on the LAN; default true */
    bool dht;                     /* the BitTorrent mainline DHT; default true */
    char dht_listen[128];         /* DHT UDP "host:port"; default "0.0.0.0:0" */
    unsigned n_dht_bootstrap;     /* 0 with dht_bootstrap unset: the public routers */
    char dht_bootstrap[IROHDS_MAX_BOOTSTRAP][160]; /* "host:port" */
    bool dht_bootstrap_set;       /* dht_bootstrap given (even empty) */
    unsigned n_trusted;
    char trusted[IROHDS_MAX_TRUSTED][65]; /* node ids, hex: trusted in every namespace */
    unsigned n_ns_trusted;
    irohds_ns_trust ns_trusted[IROHDS_MAX_NS_TRUSTED]; /* trusted in one namespace each */
} irohds_config;

void irohds_config_defaults(irohds_config *c);

/*
 * Parse TOML text into *c (over the defaults already in it).  Producers
 * trusted for one namespace come from "[namespace.<ns>]  trusted = [...]"
 * (quote a name that is not a bare key: [namespace."my.lab"]).  Supports
 * key = value with strings, integers, floats, booleans, arrays of strings,
 * [tables] for section names, comments, and size strings like "10GiB".
 * Unknown keys are ignored (forward compatible).  On a syntax error returns
 * -EINVAL and writes "line N: why" into err.
 */
int irohds_config_parse(irohds_config *c, const char *text, size_t len,
                        char *err, size_t errlen);

/* Read the file at path (absent file = defaults, returns 0). */
int irohds_config_load(irohds_config *c, const char *path, char *err, size_t errlen);

/* ------------------------------------------------------------------ log */

enum { IROHDS_LOG_ERROR = 0, IROHDS_LOG_WARN, IROHDS_LOG_INFO, IROHDS_LOG_DEBUG };

void irohds_log_set_level(int level);
void irohds_log_set_fd(int fd); /* default 2 (stderr) */
void irohds_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define IROHDS_ERROR(...) irohds_log(IROHDS_LOG_ERROR, __VA_ARGS__)
#define IROHDS_WARN(...) irohds_log(IROHDS_LOG_WARN, __VA_ARGS__)
#define IROHDS_INFO(...) irohds_log(IROHDS_LOG_INFO, __VA_ARGS__)
#define IROHDS_DEBUG(...) irohds_log(IROHDS_LOG_DEBUG, __VA_ARGS__)

/* ----------------------------------------------------------------- json */

/* A growing, NUL-terminated buffer for writing JSON text.  Start it zeroed;
 * free(b.p) when done.  Out of memory drops the text and sets failed (b.p
 * is then NULL): check once at the end. */
typedef struct irohds_jbuf {
    char *p;
    size_t len, cap;
    bool failed;
} irohds_jbuf;

void irohds_jbuf_put(irohds_jbuf *b, const char *s, size_t n);
void irohds_jbuf_puts(irohds_jbuf *b, const char *s);
void irohds_jbuf_printf(irohds_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of s (quotes, backslashes, control characters escaped). */
void irohds_jbuf_str(irohds_jbuf *b, const char *s);
/* A JSON string of the lower-case hex of bytes. */
void irohds_jbuf_hex(irohds_jbuf *b, const uint8_t *bytes, size_t n);
/* A number, or null when not finite. */
void irohds_jbuf_num(irohds_jbuf *b, double v);

/* ------------------------------------------------------------- hex/time */

/* out must hold 2*len+1 bytes; NUL-terminated lower-case hex. */
void irohds_hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2*len hex digits expected; returns 0 or -EINVAL. */
int irohds_hex_decode(const char *in, uint8_t *out, size_t len);

int64_t irohds_now_us(void);       /* CLOCK_REALTIME, µs since the epoch */
uint64_t irohds_monotonic_ns(void); /* CLOCK_MONOTONIC */

/* ------------------------------------------------------------------- fs */

/* mkdir -p with the given mode. */
int irohds_mkdirs(const char *path, unsigned mode);
/* Write all of buf to fd, retrying on EINTR/short writes. */
int irohds_write_all(int fd, const void *buf, size_t len);
/* Read a whole small file (<= max bytes) into a malloc'd, NUL-terminated buffer. */
int irohds_read_file(const char *path, size_t max, char **out, size_t *len);
/* rm -r of parent/name (parent a dir fd or AT_FDCWD), never following a
 * symlink, depth-bounded.  0 when gone (or never there). */
int irohds_rmtree_at(int parent, const char *name);
/* fsync a directory (after rename/link into it). */
int irohds_fsync_dir(const char *dir);

/*
 * Is rel a safe relative name for a file under a staging or files dir?
 * Refuses empty names, absolute paths, any ".." or "." component, empty
 * components, NUL bytes and names longer than IROHDS_NAME_MAX.
 */
#define IROHDS_NAME_MAX 1024
bool irohds_name_is_safe(const char *rel);

#endif
