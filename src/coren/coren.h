/*
 * coren: what this machine can do, what the links to peers can carry, and
 * the decision a miss turns on: FETCH the result from a peer, COMPUTE it
 * here, or WAIT for a peer that is computing it (a live CLAIM).
 *
 *   probe.c   measures the machine once (~0.3 s); cache.c keeps the figures
 *             as a small text file in the data dir, measured again when the
 *             file is missing, corrupt, older than 30 days, or the CPU
 *             changed.  The only parts that do I/O.
 *   link.c    per-peer RTT and bandwidth, smoothed from real transfers.
 *   decide.c  the decision: pure arithmetic on the numbers above plus what a
 *             HAVE says (compute seconds, capability figure, size) and what
 *             a CLAIM says (expected done time), with an explanation.
 *
 * The capability figure is this machine's single-thread CPU speed divided
 * by a fixed reference (IROHDS_COREN_REF_CPU_OPS, the speed of the 2-vCPU
 * AMD EPYC build machine of DESIGN.md, so figure ~1 there, ~2 on a machine
 * twice as fast).  Single-thread CPU because a memoized Python function is
 * mostly interpreter and library work on one core (the GIL), and because
 * nothing tells us an arbitrary function's mix of CPU, memory and disk work;
 * the other measurements are reported, not folded in.  Only ratios of
 * figures are used (producer seconds x producer figure / our figure), so the
 * reference cancels out; a wrong ratio makes a slower choice, never a wrong
 * result.
 *
 * Errors are negative errno values.  No function keeps a pointer to its
 * arguments; every struct is plain data the caller owns.
 */
#ifndef IROHDS_COREN_H
#define IROHDS_COREN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- probe */

#define IROHDS_COREN_REF_CPU_OPS 5.6e9 /* ops/s for figure 1.0 (see above) */
#define IROHDS_COREN_PROBE_MAX_AGE_US (30LL * 86400 * 1000000)

typedef struct irohds_coren_probe {
    char cpu_model[128];    /* /proc/cpuinfo's model name, "unknown" if none */
    unsigned cores_online;  /* sysconf(_SC_NPROCESSORS_ONLN) */
    unsigned cores_usable;  /* in this process's CPU affinity mask */
    double cpu_ops;         /* single-thread benchmark, ops/s */
    double mem_bw;          /* memcpy between buffers larger than the LLC, bytes/s */
    double disk_write_bw;   /* write + fdatasync in the data dir, bytes/s (0: failed) */
    double disk_read_bw;    /* read back after dropping the cache, bytes/s (0: failed) */
    uint64_t ram_bytes;     /* physical memory */
    char gpu[64];           /* "nvidia", "amd", "intel", comma-separated; "" none */
    double figure;          /* capability figure: cpu_ops / IROHDS_COREN_REF_CPU_OPS */
    int64_t measured_us;    /* when (unix µs) */
    double probe_seconds;   /* how long measuring took */
} irohds_coren_probe;

/*
 * The probe for this machine: read from cache_path when that holds a valid
 * probe less than 30 days old made on the same CPU model and core count;
 * else measured (the disk test writes and removes a temporary file beside
 * cache_path) and saved to cache_path (atomically; a failure to save is
 * logged, not returned).  *measured says which (may be NULL).
 */
int irohds_coren_probe_get(irohds_coren_probe *p, const char *cache_path, int64_t now_us,
                           bool *measured);

/* Measure now; the disk test uses a temporary file in scratch_dir. */
int irohds_coren_probe_measure(irohds_coren_probe *p, const char *scratch_dir, int64_t now_us);
/* Write / read the cache file.  load: -ENOENT missing, -EINVAL corrupt. */
int irohds_coren_probe_save(const irohds_coren_probe *p, const char *path);
int irohds_coren_probe_load(irohds_coren_probe *p, const char *path);
/* JSON object of the probe into buf (NUL-terminated); -ENOBUFS if too small. */
int irohds_coren_probe_json(const irohds_coren_probe *p, char *buf, size_t len);

/* GPUs seen under root ("/" normally): /dev/nvidia[0-9]*, /dev/kfd (AMD
 * ROCm), and the PCI vendor of /sys/class/drm/card<N>; out as above. */
void irohds_coren_detect_gpu(const char *root, char *out, size_t len);

/* ----------------------------------------------------------------- links */

/* Assumed until measured: a 100 Mbit/s link with 50 ms RTT (a modest WAN
 * path; a LAN or loopback peer measures better within one transfer). */
#define IROHDS_COREN_DEFAULT_RTT_S 0.050
#define IROHDS_COREN_DEFAULT_BW 12.5e6 /* bytes/s */
/* ...unless the RTT is measured (a gossip link gives RTT samples long before
 * any transfer) and under this (5 ms: wired and Wi-Fi LANs; QUIC's smoothed RTT
 * includes ack delays): then the peer is on the LAN or this very
 * machine, and 1 Gbit/s is the modest guess. */
#define IROHDS_COREN_LAN_RTT_S 0.005
#define IROHDS_COREN_LAN_BW 125e6 /* bytes/s */
/* Transfers smaller than this say more about latency than bandwidth. */
#define IROHDS_COREN_MIN_BW_SAMPLE 65536

typedef struct irohds_coren_link {
    double rtt_s; /* smoothed RTT; 0 = not measured */
    double bw;    /* smoothed bandwidth, bytes/s; 0 = not measured */
    unsigned rtt_samples, bw_samples;
    bool connected; /* a QUIC connection is up (no handshake to pay) */
} irohds_coren_link;

void irohds_coren_link_init(irohds_coren_link *l);
/* A QUIC RTT sample (seconds).  Not finite or <= 0: ignored. */
void irohds_coren_link_add_rtt(irohds_coren_link *l, double rtt_s);
/* A finished transfer: bytes received, seconds from request to last byte. */
void irohds_coren_link_add_transfer(irohds_coren_link *l, uint64_t bytes, double seconds);
/* Current estimates (the defaults until measured). */
double irohds_coren_link_est_rtt(const irohds_coren_link *l);
double irohds_coren_link_est_bw(const irohds_coren_link *l);
/* Seconds to download bytes: (not connected: 2 RTT to connect) + 1 RTT for
 * the request + bytes / bandwidth. */
double irohds_coren_link_est_download(const irohds_coren_link *l, uint64_t bytes);

/* -------------------------------------------------------------- decision */

/* Longest wait on a claim before deciding again, when the caller does not
 * say (and at most the cap when it does). */
#define IROHDS_COREN_MAX_WAIT_S 600.0
#define IROHDS_COREN_MAX_WAIT_CAP_S 86400.0
/* Capability ratios are clamped to [1/this, this]: one absurd figure in a
 * HAVE cannot make a computation look free or endless. */
#define IROHDS_COREN_MAX_SCALE 20.0

enum irohds_coren_action {
    IROHDS_COREN_COMPUTE = 0,
    IROHDS_COREN_FETCH = 1,
    IROHDS_COREN_WAIT = 2,
};

/* A live or dead claim on the result (proto's CLAIM). */
typedef struct irohds_coren_claim {
    int64_t expected_done_us; /* T; 0 = unknown */
    int64_t expires_us;       /* dead from then (irohds_proto_claim_expires_us) */
    double expected_seconds;  /* claimer's estimate of the whole run; 0 = unknown */
    double figure;            /* claimer's capability figure; 0 = unknown */
    irohds_coren_link link;   /* to the claimer, who will then provide it */
} irohds_coren_claim;

/* A miss, as the daemon sees it.  Unknown numbers are 0 (NaN, negative and
 * infinite ones count as unknown too). */
typedef struct irohds_coren_miss {
    double producer_seconds; /* from the HAVE */
    double producer_figure;  /* from the HAVE */
    uint64_t size;           /* bytes to fetch: result blob + files */
    const irohds_coren_link *providers; /* peers holding it */
    size_t nproviders;
    const irohds_coren_claim *claim;    /* NULL: no claim known */
    double local_figure;     /* ours (irohds_coren_probe.figure) */
    int64_t now_us;
    double max_wait_s;       /* 0: IROHDS_COREN_MAX_WAIT_S; at most a day */
} irohds_coren_miss;

typedef struct irohds_coren_decision {
    enum irohds_coren_action action;
    int provider;          /* FETCH: index into providers; else -1 */
    double compute_s;      /* estimated here; INFINITY when unknown */
    double fetch_s;        /* from the best provider; INFINITY when none */
    double wait_s;         /* claim's remaining time + download; INFINITY when no live claim */
    double scale;          /* the capability ratio applied to the compute time */
    int64_t decide_again_us; /* WAIT: decide again by then at the latest; else 0 */
    char why[320];         /* one line for irohds.explain() */
} irohds_coren_decision;

/* Pick the smallest estimate; ties go to FETCH, then WAIT (both save work). */
void irohds_coren_decide(const irohds_coren_miss *m, irohds_coren_decision *d);
/* JSON object (unknown numbers as null) into buf; -ENOBUFS if too small. */
int irohds_coren_decision_json(const irohds_coren_decision *d, char *buf, size_t len);

#endif
