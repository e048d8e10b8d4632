/*
 * test_coren: the machine probe (plausible figures, the cache file: reuse,
 * and re-measuring when it is corrupt, old, from the future or from another
 * CPU), GPU detection on a fake /dev and /sys, the link estimates, and the
 * fetch / compute / wait decision on cases whose numbers are worked out by
 * hand in the comments.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "check.h"
#include "coren/coren.h"
#include "util/util.h"

#define S 1000000LL /* µs in a second */

static char dir[] = "/tmp/test_coren-XXXXXX";
static char cache[256];

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

static void write_text(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    irohds_write_all(fd, text, len);
    close(fd);
}

static int files_in(const char *d)
{
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        n += e->d_name[0] != '.' || strncmp(e->d_name, ".coren", 6) == 0;
    closedir(dd);
    return n;
}

/* ----------------------------------------------------------------- probe */

static void test_probe_measures(irohds_coren_probe *p)
{
    bool measured = false;
    int64_t now = irohds_now_us();
    int rc = irohds_coren_probe_get(p, cache, now, &measured);
    CHECK(rc == 0 && measured, "first get measures: %d", rc);
    printf("probe: %s, %u/%u cores, cpu %.3g ops/s (figure %.3f), mem %.3g B/s, "
           "disk w %.3g r %.3g B/s, ram %.3g B, gpu '%s', %.3f s\n",
           p->cpu_model, p->cores_usable, p->cores_online, p->cpu_ops, p->figure, p->mem_bw,
           p->disk_write_bw, p->disk_read_bw, (double)p->ram_bytes, p->gpu, p->probe_seconds);
    CHECK(p->cores_online >= 1 && p->cores_usable >= 1 && p->cores_usable <= p->cores_online,
          "cores %u/%u", p->cores_usable, p->cores_online);
    CHECK(p->cpu_ops > 1e8 && p->cpu_ops < 1e12, "cpu ops/s %g", p->cpu_ops);
    CHECK(p->mem_bw > 1e8 && p->mem_bw < 1e13, "memory bandwidth %g", p->mem_bw);
    CHECK(p->disk_write_bw > 1e5 && p->disk_read_bw > 1e5, "disk %g / %g", p->disk_write_bw,
          p->disk_read_bw);
    CHECK(p->ram_bytes >= (64u << 20), "ram %llu", (unsigned long long)p->ram_bytes);
    CHECK(near(p->figure, p->cpu_ops / IROHDS_COREN_REF_CPU_OPS), "figure = cpu / reference");
    CHECK(p->probe_seconds > 0 && p->probe_seconds < 1.0, "probe took %.3f s",
          p->probe_seconds);
    CHECK(p->measured_us == now && p->cpu_model[0], "time and model recorded");
    CHECK(files_in(dir) == 1, "only the cache file is left in the data dir");
}

static void test_probe_cached(const irohds_coren_probe *first)
{
    irohds_coren_probe p;
    bool measured = true;
    CHECK(irohds_coren_probe_get(&p, cache, first->measured_us + 3600 * S, &measured) == 0 &&
              !measured,
          "second get reads the cache");
    CHECK(memcmp(&p, first, sizeof p) == 0, "cache reads back bit for bit");
}

/* Save a changed copy of p, then get must measure again. */
static void expect_remeasure(const irohds_coren_probe *p, int64_t now, const char *why)
{
    irohds_coren_probe_save(p, cache);
    irohds_coren_probe again;
    bool measured = false;
    CHECK(irohds_coren_probe_get(&again, cache, now, &measured) == 0 && measured,
          "re-measured: %s", why);
    irohds_coren_probe reread;
    CHECK(irohds_coren_probe_load(&reread, cache) == 0 && reread.measured_us == now,
          "and saved again: %s", why);
}

static void test_probe_stale(const irohds_coren_probe *first)
{
    int64_t now = first->measured_us;
    irohds_coren_probe p = *first;
    expect_remeasure(&p, now + IROHDS_COREN_PROBE_MAX_AGE_US + 1, "older than 30 days");
    p = *first;
    p.measured_us = now + 2 * 86400 * S;
    expect_remeasure(&p, now, "measured in the future");
    p = *first;
    snprintf(p.cpu_model, sizeof p.cpu_model, "Some Other CPU 9000");
    expect_remeasure(&p, now, "another CPU model");
    p = *first;
    p.cores_online += 4;
    p.cores_usable = p.cores_online;
    expect_remeasure(&p, now, "another core count");
}

/* The valid cache text with one line replaced (or dropped when with is ""). */
static size_t edited(const char *text, const char *key, const char *with, char *out)
{
    out[0] = 0;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t k = strlen(key);
        bool hit = strncmp(line, key, k) == 0 && (line[k] == ' ' || line[k] == 0);
        const char *put = hit ? with : line;
        if (*put)
            strcat(strcat(out, put), "\n");
    }
    return strlen(out);
}

static void test_probe_corrupt(const irohds_coren_probe *first)
{
    irohds_coren_probe_save(first, cache);
    char *text;
    size_t len;
    irohds_read_file(cache, 4096, &text, &len);
    CHECK(strncmp(text, "irohds coren probe 1\ncpu_model ", 31) == 0, "cache file header");
    static const struct {
        const char *key, *with, *why;
    } cases[] = {
        {"end", "", "no end line"},
        {"cpu_ops", "", "a field missing"},
        {"cpu_ops", "cpu_ops nan", "NaN"},
        {"cpu_ops", "cpu_ops -5", "negative speed"},
        {"cpu_ops", "cpu_ops 12abc", "trailing junk in a number"},
        {"cores_online", "cores_online 0", "zero cores"},
        {"cores_online", "cores_online 99999999999", "cores out of range"},
        {"figure", "figure inf", "infinite figure"},
        {"gpu", "gpu nvidia\nbogus_key 1", "unknown key"},
        {"gpu", "gpu nvidia\ngpu amd", "repeated key"},
        {"irohds", "irohds coren probe 2", "another format version"},
        {"end", "end\nextra 1", "lines after end"},
        {"cpu_model", "cpu_model a\"b", "quote in a string"},
    };
    char bad[4096];
    irohds_coren_probe p;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = edited(text, cases[i].key, cases[i].with, bad);
        write_text(cache, bad, n);
        CHECK(irohds_coren_probe_load(&p, cache) == -EINVAL, "corrupt: %s", cases[i].why);
    }
    write_text(cache, text, len / 2);
    CHECK(irohds_coren_probe_load(&p, cache) == -EINVAL, "corrupt: cut in half");
    write_text(cache, "", 0);
    CHECK(irohds_coren_probe_load(&p, cache) == -EINVAL, "corrupt: empty");
    memcpy(bad, text, len);
    bad[40] = 0;
    write_text(cache, bad, len);
    CHECK(irohds_coren_probe_load(&p, cache) == -EINVAL, "corrupt: NUL inside");
    unlink(cache);
    CHECK(irohds_coren_probe_load(&p, cache) == -ENOENT, "missing: -ENOENT");

    write_text(cache, "garbage\n", 8);
    bool measured = false;
    CHECK(irohds_coren_probe_get(&p, cache, first->measured_us, &measured) == 0 && measured,
          "a corrupt cache is measured again");
    CHECK(irohds_coren_probe_load(&p, cache) == 0, "and replaced by a valid one");
    free(text);

    char json[2048];
    CHECK(irohds_coren_probe_json(&p, json, sizeof json) == 0 && json[0] == '{' &&
              strstr(json, "\"figure\":") && strstr(json, "\"cpu_model\":\""),
          "probe JSON: %s", json);
    CHECK(irohds_coren_probe_json(&p, json, 20) == -ENOBUFS, "probe JSON: small buffer");
}

/* ------------------------------------------------------------------- GPU */

static void mkfile(const char *root, const char *rel, const char *text)
{
    char path[512], sub[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(sub, sizeof sub, "%s", path);
    *strrchr(sub, '/') = 0;
    irohds_mkdirs(sub, 0700);
    write_text(path, text, strlen(text));
}

static void test_gpu(void)
{
    char root[300], out[64];
    snprintf(root, sizeof root, "%s/fake1", dir);
    mkfile(root, "dev/nvidia0", "");
    mkfile(root, "sys/class/drm/card0/device/vendor", "0x10de\n");
    mkfile(root, "sys/class/drm/card1/device/vendor", "0x1af4\n");          /* virtio */
    mkfile(root, "sys/class/drm/card0-HDMI-A-1/device/vendor", "0x1002\n"); /* a connector */
    mkfile(root, "sys/class/drm/card2/device/vendor", "0x8086\n");
    irohds_coren_detect_gpu(root, out, sizeof out);
    CHECK(strcmp(out, "nvidia,intel") == 0,
          "nvidia node + nvidia and intel cards, virtio and connector ignored: '%s'", out);
    snprintf(root, sizeof root, "%s/fake2", dir);
    mkfile(root, "dev/kfd", "");
    irohds_coren_detect_gpu(root, out, sizeof out);
    CHECK(strcmp(out, "amd") == 0, "/dev/kfd: '%s'", out);
    snprintf(root, sizeof root, "%s/fake3", dir);
    mkfile(root, "sys/class/drm/card0/device/vendor", "0x1234\n");
    irohds_coren_detect_gpu(root, out, sizeof out);
    CHECK(strcmp(out, "") == 0, "unknown vendor only: '%s'", out);
    irohds_coren_detect_gpu("/nonexistent", out, sizeof out);
    CHECK(strcmp(out, "") == 0, "no /dev, no /sys");
}

/* ----------------------------------------------------------------- links */

static void test_links(void)
{
    irohds_coren_link l;
    irohds_coren_link_init(&l);
    CHECK(irohds_coren_link_est_rtt(&l) == 0.050 && irohds_coren_link_est_bw(&l) == 12.5e6,
          "defaults: 50 ms, 100 Mbit/s");
    /* not connected: 2 x 50 ms + 50 ms + 12.5 MB / 12.5 MB/s = 1.15 s */
    CHECK(near(irohds_coren_link_est_download(&l, 12500000), 1.15), "default download");
    irohds_coren_link_add_rtt(&l, NAN);
    irohds_coren_link_add_rtt(&l, -1);
    irohds_coren_link_add_rtt(&l, 0);
    CHECK(l.rtt_samples == 0, "bad RTT samples ignored");
    irohds_coren_link_add_rtt(&l, 0.010);
    CHECK(near(irohds_coren_link_est_rtt(&l), 0.010), "first RTT sample replaces the default");
    irohds_coren_link_add_rtt(&l, 0.090);
    CHECK(near(irohds_coren_link_est_rtt(&l), 0.020), "then 7/8 old + 1/8 new = 20 ms");

    irohds_coren_link_add_transfer(&l, 60000, 0.001);
    irohds_coren_link_add_transfer(&l, 1 << 20, 0);
    irohds_coren_link_add_transfer(&l, 1 << 20, INFINITY);
    CHECK(l.bw_samples == 0, "small, instant and endless transfers ignored");
    /* 10 MB in 1.02 s, one 20 ms RTT of it latency: 10 MB / 1 s */
    irohds_coren_link_add_transfer(&l, 10000000, 1.02);
    CHECK(near(irohds_coren_link_est_bw(&l), 1e7), "first transfer: 10 MB/s, got %g",
          irohds_coren_link_est_bw(&l));
    /* 20 MB in 0.52 s -> 40 MB/s; 3/4 x 10 + 1/4 x 40 = 17.5 MB/s */
    irohds_coren_link_add_transfer(&l, 20000000, 0.52);
    CHECK(near(irohds_coren_link_est_bw(&l), 17.5e6), "then 3/4 old + 1/4 new");
    /* 100 KB in 30 ms: the 20 ms RTT would leave 10 ms; at most half is taken: 15 ms */
    irohds_coren_link l2;
    irohds_coren_link_init(&l2);
    irohds_coren_link_add_rtt(&l2, 0.020);
    irohds_coren_link_add_transfer(&l2, 100000, 0.030);
    CHECK(near(irohds_coren_link_est_bw(&l2), 100000 / 0.015), "RTT takes at most half");
    l.connected = true;
    /* connected: 20 ms + 35 MB / 17.5 MB/s = 2.02 s */
    CHECK(near(irohds_coren_link_est_download(&l, 35000000), 2.02), "connected download");
    irohds_coren_link junk = {NAN, -5, 3, 3, true};
    CHECK(irohds_coren_link_est_rtt(&junk) == 0.050 && irohds_coren_link_est_bw(&junk) == 12.5e6,
          "nonsense in the struct: defaults");

    /* No transfer yet, but a measured sub-5 ms RTT: a LAN peer, 1 Gbit/s assumed. */
    irohds_coren_link lan;
    irohds_coren_link_init(&lan);
    irohds_coren_link_add_rtt(&lan, 0.0004);
    CHECK(irohds_coren_link_est_bw(&lan) == 125e6, "LAN prior: 125 MB/s, got %g",
          irohds_coren_link_est_bw(&lan));
    irohds_coren_link wan;
    irohds_coren_link_init(&wan);
    irohds_coren_link_add_rtt(&wan, 0.008);
    CHECK(irohds_coren_link_est_bw(&wan) == 12.5e6, "8 ms RTT: the 100 Mbit/s default");
    /* a measurement beats the prior */
    irohds_coren_link_add_transfer(&lan, 10000000, 0.1004);
    CHECK(near(irohds_coren_link_est_bw(&lan), 1e8), "measured 100 MB/s over the prior, got %g",
          irohds_coren_link_est_bw(&lan));
}

/* -------------------------------------------------------------- decision */

/* A connected link with the given RTT and bandwidth. */
static irohds_coren_link link_of(double rtt, double bw)
{
    irohds_coren_link l;
    irohds_coren_link_init(&l);
    irohds_coren_link_add_rtt(&l, rtt);
    l.bw = bw;
    l.bw_samples = 1;
    l.connected = true;
    return l;
}

static irohds_coren_miss miss_of(double seconds, double fig, uint64_t size,
                                 const irohds_coren_link *p, size_t n)
{
    irohds_coren_miss m = {0};
    m.producer_seconds = seconds;
    m.producer_figure = fig;
    m.size = size;
    m.providers = p;
    m.nproviders = n;
    m.local_figure = 1.0;
    m.now_us = 1000 * S;
    return m;
}

static void show(const char *what, const irohds_coren_decision *d)
{
    char json[1024];
    irohds_coren_decision_json(d, json, sizeof json);
    printf("%s: %s\n", what, json);
}

static void test_decide_basic(void)
{
    irohds_coren_decision d;
    /* 100 MB/s, 10 ms, 10 MB: 0.01 + 0.1 = 0.11 s  vs  60 s of compute */
    irohds_coren_link fast = link_of(0.010, 100e6);
    irohds_coren_miss m = miss_of(60, 1.0, 10000000, &fast, 1);
    irohds_coren_decide(&m, &d);
    show("fast link, slow function", &d);
    CHECK(d.action == IROHDS_COREN_FETCH && d.provider == 0 && near(d.fetch_s, 0.11) &&
              near(d.compute_s, 60) && isinf(d.wait_s) && d.decide_again_us == 0,
          "fast link + slow function: fetch (%s)", d.why);

    /* 1 GB over the default link: 2 x 0.05 + 0.05 + 1e9 / 12.5e6 = 80.15 s  vs  1 s */
    irohds_coren_link slow;
    irohds_coren_link_init(&slow);
    m = miss_of(1, 1.0, 1000000000, &slow, 1);
    irohds_coren_decide(&m, &d);
    show("1 GB, slow link, 1 s function", &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && d.provider == -1 && near(d.fetch_s, 80.15) &&
              near(d.compute_s, 1),
          "1 GB over a slow link for a 1 s function: compute (%s)", d.why);

    m = miss_of(5, 1.0, 100, NULL, 0);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && isinf(d.fetch_s) && strstr(d.why, "no provider"),
          "no providers: compute (%s)", d.why);
    m = miss_of(0, 0, 0, &fast, 0);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && isinf(d.compute_s),
          "nothing known at all: compute (%s)", d.why);

    /* Best of three providers: 0.01+1.0, 0.2+0.1, 0.05+0.1 -> the third. */
    irohds_coren_link three[3] = {link_of(0.01, 1e7), link_of(0.2, 1e8), link_of(0.05, 1e8)};
    m = miss_of(100, 1.0, 10000000, three, 3);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_FETCH && d.provider == 2 && near(d.fetch_s, 0.15),
          "the fastest provider (%s)", d.why);

    /* Tie: 0.5 s RTT + 500 kB at 1 MB/s = 1.0 s, exactly the 1.0 s compute. */
    irohds_coren_link tie = link_of(0.5, 1e6);
    m = miss_of(1.0, 1.0, 500000, &tie, 1);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_FETCH && d.fetch_s == d.compute_s, "tie goes to fetch");
}

static void test_decide_scaling(void)
{
    irohds_coren_decision d;
    /* 1 MB/s, 1 ms, 15 MB: 15.001 s to fetch */
    irohds_coren_link l = link_of(0.001, 1e6);
    /* 10 s on a machine twice as fast as ours: 20 s here -> fetch */
    irohds_coren_miss m = miss_of(10, 2.0, 15000000, &l, 1);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_FETCH && near(d.compute_s, 20) && near(d.scale, 2),
          "producer 2x faster: 20 s here, fetch (%s)", d.why);
    /* 10 s on a machine half as fast: 5 s here -> compute */
    m = miss_of(10, 0.5, 15000000, &l, 1);
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && near(d.compute_s, 5) && near(d.scale, 0.5),
          "producer 2x slower: 5 s here, compute (%s)", d.why);
    /* the same, our machine 4x the reference: 10 x 0.5 / 4 = 1.25 s */
    m.local_figure = 4.0;
    irohds_coren_decide(&m, &d);
    CHECK(near(d.compute_s, 1.25), "our figure divides");
    /* absurd figures are clamped to 20x */
    m = miss_of(10, 1e9, 15000000, &l, 1);
    irohds_coren_decide(&m, &d);
    CHECK(near(d.scale, 20) && near(d.compute_s, 200), "scale clamped to 20");
    m = miss_of(10, 1e-9, 15000000, &l, 1);
    irohds_coren_decide(&m, &d);
    CHECK(near(d.scale, 1.0 / 20), "scale clamped to 1/20");
}

static void test_decide_bad_inputs(void)
{
    irohds_coren_decision d;
    irohds_coren_link l = link_of(0.001, 1e6);
    double bad[] = {0, -3, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        /* an unknown compute time with a provider: fetch */
        irohds_coren_miss m = miss_of(bad[i], 1.0, 1000, &l, 1);
        irohds_coren_decide(&m, &d);
        CHECK(d.action == IROHDS_COREN_FETCH && isinf(d.compute_s),
              "producer seconds %g: unknown, fetch", bad[i]);
        /* unknown figures: unscaled */
        m = miss_of(10, bad[i], 1000, &l, 1);
        irohds_coren_decide(&m, &d);
        CHECK(d.scale == 1.0 && near(d.compute_s, 10) && strstr(d.why, "not scaled"),
              "producer figure %g: not scaled", bad[i]);
        m = miss_of(10, 2.0, 1000, &l, 1);
        m.local_figure = bad[i];
        irohds_coren_decide(&m, &d);
        CHECK(d.scale == 1.0 && near(d.compute_s, 10), "our figure %g: not scaled", bad[i]);
        char json[1024];
        CHECK(irohds_coren_decision_json(&d, json, sizeof json) == 0 && !strstr(json, "nan") &&
                  !strstr(json, "inf"),
              "JSON has no nan/inf: %s", json);
    }
    irohds_coren_miss m = miss_of(10, 1, 1000, NULL, 3); /* count without array */
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE, "providers NULL: compute");
}

static void test_decide_claims(void)
{
    irohds_coren_decision d;
    int64_t now = 1000 * S;
    irohds_coren_claim c = {0};
    c.link = link_of(0.010, 100e6);
    c.expected_done_us = now + 2 * S;
    c.expires_us = now + 62 * S;
    c.expected_seconds = 60;
    c.figure = 1.0;

    /* Claim done in 2 s + 0.01 s download (size unknown: 0)  vs  60 s compute */
    irohds_coren_miss m = miss_of(0, 0, 0, NULL, 0);
    m.claim = &c;
    irohds_coren_decide(&m, &d);
    show("claim in 2 s vs 60 s compute", &d);
    CHECK(d.action == IROHDS_COREN_WAIT && near(d.wait_s, 2.01) && near(d.compute_s, 60) &&
              d.decide_again_us == now + 62 * S,
          "claim in 2 s vs 60 s compute: wait (%s)", d.why);

    /* The same with the cost known from a HAVE (provider unreachable) */
    m.producer_seconds = 60, m.producer_figure = 1;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_WAIT, "wait with the producer's cost too");

    /* A fetch beats the wait when faster: 0.01 + 0.001 s */
    irohds_coren_link p = link_of(0.010, 100e6);
    m.providers = &p, m.nproviders = 1, m.size = 100000;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_FETCH, "a provider beats waiting (%s)", d.why);

    /* Expired claim: compute */
    m = miss_of(0, 0, 0, NULL, 0);
    irohds_coren_claim dead = c;
    dead.expires_us = now - S;
    m.claim = &dead;
    irohds_coren_decide(&m, &d);
    show("expired claim", &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && isinf(d.wait_s) && strstr(d.why, "expired"),
          "dead claim: compute (%s)", d.why);
    dead.expires_us = now;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE, "claim dying right now: compute");

    /* Claim done in 2 s but the function takes 1 s here: compute */
    m = miss_of(1, 1, 0, NULL, 0);
    m.claim = &c;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && near(d.wait_s, 2.01), "1 s compute beats 2 s wait");

    /* Nothing known about the cost, claim T unknown: wait, bounded.
     * remaining = until it dies (90 s); decide again at min(90 s, max wait 30 s). */
    irohds_coren_claim blind = {0};
    blind.link = c.link;
    blind.expires_us = now + 90 * S;
    m = miss_of(0, 0, 0, NULL, 0);
    m.claim = &blind;
    m.max_wait_s = 30;
    irohds_coren_decide(&m, &d);
    show("unknown cost, live claim", &d);
    CHECK(d.action == IROHDS_COREN_WAIT && near(d.wait_s, 90.01) &&
              d.decide_again_us == now + 30 * S,
          "unknown compute time + live claim: wait, bounded (%s)", d.why);
    m.max_wait_s = NAN;
    irohds_coren_decide(&m, &d);
    CHECK(d.decide_again_us == now + 90 * S, "bad max wait: default (600 s) > claim's 90 s");
    /* A claim that never dies and an endless max wait: capped at a day. */
    blind.expires_us = INT64_MAX;
    m.max_wait_s = 1e300;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_WAIT && d.decide_again_us == now + 86400 * S,
          "waits are capped at a day");
    m.now_us = INT64_MIN;
    irohds_coren_decide(&m, &d); /* UBSan: no overflow */
    CHECK(d.action == IROHDS_COREN_WAIT, "absurd clock: still an answer");

    /* Overdue claim (T passed, still within grace): remaining = until death. */
    irohds_coren_claim late = c;
    late.expected_done_us = now - 10 * S;
    late.expires_us = now + 50 * S;
    m = miss_of(0, 0, 0, NULL, 0);
    m.claim = &late;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_WAIT && near(d.wait_s, 50.01), "overdue claim: up to 50 s");

    /* A claimer's estimate on a slower machine, scaled: 60 s x 0.5 / 1 = 30 s */
    irohds_coren_claim est = c;
    est.figure = 0.5;
    est.expected_done_us = now + 40 * S;
    m = miss_of(0, 0, 0, NULL, 0);
    m.claim = &est;
    irohds_coren_decide(&m, &d);
    CHECK(d.action == IROHDS_COREN_COMPUTE && near(d.compute_s, 30),
          "claimer's estimate scaled: 30 s here beats 40 s wait (%s)", d.why);

    char json[1024];
    irohds_coren_decide(&m, &d);
    CHECK(irohds_coren_decision_json(&d, json, sizeof json) == 0 &&
              strstr(json, "\"action\":\"compute\"") && strstr(json, "\"fetch_s\":null") &&
              strstr(json, "\"why\":\"compute: "),
          "decision JSON: %s", json);
    CHECK(irohds_coren_decision_json(&d, json, 40) == -ENOBUFS, "decision JSON: small buffer");
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(cache, sizeof cache, "%s/coren.txt", dir);
    irohds_coren_probe first;
    test_probe_measures(&first);
    test_probe_cached(&first);
    test_probe_stale(&first);
    test_probe_corrupt(&first);
    test_gpu();
    test_links();
    test_decide_basic();
    test_decide_scaling();
    test_decide_bad_inputs();
    test_decide_claims();
    irohds_rmtree_at(AT_FDCWD, dir);
    return check_summary();
}
