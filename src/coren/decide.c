/*
 * decide.c: fetch, compute or wait (coren.h).  Pure arithmetic:
 *
 *   compute = producer seconds x producer figure / our figure
 *             (or, with no HAVE, the claimer's own estimate scaled the same
 *             way; unknown when neither is known)
 *   fetch   = min over providers of the link's download estimate for size
 *   wait    = the claim's remaining time + the download from the claimer;
 *             remaining = T - now, or, when T is unknown or already past,
 *             the time until the claim dies (the longest it can still take)
 *
 * and the smallest wins; ties go to fetch, then wait, because both save a
 * computation.  An unknown estimate is infinite, so with nothing known the
 * answer is compute, and with only a live claim known it is wait, bounded:
 * decide_again_us says when to look again (the claim's death or the wait
 * bound, whichever is first; a HAVE arriving earlier also ends the wait).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coren/coren.h"

/* snprintf that may cut the text short: the explanation is for people,
 * and a clipped line is better than no decision. */
__attribute__((format(printf, 3, 4))) static void textf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static bool known(double v)
{
    return isfinite(v) && v > 0;
}

/* Their figure over ours, clamped; 1 when either is unknown. */
static double scale_of(double theirs, double ours)
{
    if (!known(theirs) || !known(ours))
        return 1.0;
    double r = theirs / ours;
    return fmin(fmax(r, 1.0 / IROHDS_COREN_MAX_SCALE), IROHDS_COREN_MAX_SCALE);
}

/* b - a in seconds, in doubles: no int64 overflow whatever the times. */
static double seconds_between(int64_t a, int64_t b)
{
    return ((double)b - (double)a) / 1e6;
}

static bool claim_live(const irohds_coren_miss *m)
{
    return m->claim && m->now_us < m->claim->expires_us;
}

/* "12 s", "1.5 ms", "2.3 h" */
static void fmt_s(char *b, size_t n, double s)
{
    if (!isfinite(s))
        textf(b, n, "unknown");
    else if (s < 1)
        textf(b, n, "%.3g ms", s * 1e3);
    else if (s < 3600)
        textf(b, n, "%.3g s", s);
    else
        textf(b, n, "%.3g h", s / 3600);
}

/* "48 MB" (decimal units, like the bandwidth) */
static void fmt_bytes(char *b, size_t n, double v)
{
    static const char *unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    unsigned u = 0;
    while (v >= 1000 && u < 5)
        v /= 1000, u++;
    textf(b, n, "%.3g %s", v, unit[u]);
}

static void compute_part(const irohds_coren_miss *m, irohds_coren_decision *d, char *out,
                         size_t n)
{
    double base = NAN, figure = 0;
    const char *whose = "";
    if (known(m->producer_seconds))
        base = m->producer_seconds, figure = m->producer_figure, whose = "on the producer";
    else if (m->claim && known(m->claim->expected_seconds))
        base = m->claim->expected_seconds, figure = m->claim->figure,
        whose = "by the claimer's estimate";
    if (!known(base)) {
        d->scale = 1.0;
        d->compute_s = INFINITY;
        textf(out, n, "compute time unknown");
        return;
    }
    d->scale = scale_of(figure, m->local_figure);
    d->compute_s = base * d->scale;
    char t[32], b[32];
    fmt_s(t, sizeof t, d->compute_s);
    fmt_s(b, sizeof b, base);
    if (known(figure) && known(m->local_figure))
        textf(out, n, "local compute ~%s (%s %s, x%.2f for this machine)", t, b, whose,
              d->scale);
    else
        textf(out, n, "local compute ~%s (%s %s; figures unknown, not scaled)", t, b, whose);
}

static void fetch_part(const irohds_coren_miss *m, irohds_coren_decision *d, char *out, size_t n)
{
    d->fetch_s = INFINITY;
    d->provider = -1;
    for (size_t i = 0; m->providers && i < m->nproviders; i++) {
        double t = irohds_coren_link_est_download(&m->providers[i], m->size);
        if (t < d->fetch_s)
            d->fetch_s = t, d->provider = (int)i;
    }
    if (d->provider < 0) {
        textf(out, n, "no provider");
        return;
    }
    const irohds_coren_link *l = &m->providers[d->provider];
    char t[32], sz[32], bw[32], rtt[32];
    fmt_s(t, sizeof t, d->fetch_s);
    fmt_bytes(sz, sizeof sz, (double)m->size);
    fmt_bytes(bw, sizeof bw, irohds_coren_link_est_bw(l));
    fmt_s(rtt, sizeof rtt, irohds_coren_link_est_rtt(l));
    textf(out, n, "download from provider %d ~%s (%s at %s/s, rtt %s%s%s)", d->provider, t, sz,
          bw, rtt, l->connected ? "" : ", connecting", l->bw_samples ? "" : ", bw assumed");
}

static void wait_part(const irohds_coren_miss *m, double max_wait, irohds_coren_decision *d,
                      char *out, size_t n)
{
    d->wait_s = INFINITY;
    d->decide_again_us = 0;
    if (!m->claim) {
        textf(out, n, "no claim");
        return;
    }
    const irohds_coren_claim *c = m->claim;
    char t[32], dl[32];
    if (!claim_live(m)) {
        fmt_s(t, sizeof t, seconds_between(c->expires_us, m->now_us));
        textf(out, n, "claim expired %s ago", t);
        return;
    }
    bool on_time = c->expected_done_us > m->now_us;
    int64_t until = on_time ? c->expected_done_us : c->expires_us;
    double remaining = seconds_between(m->now_us, until);
    double download = irohds_coren_link_est_download(&c->link, m->size);
    d->wait_s = remaining + download;
    double bound = fmin(seconds_between(m->now_us, c->expires_us), max_wait);
    d->decide_again_us = m->now_us + (int64_t)(bound * 1e6);
    fmt_s(t, sizeof t, remaining);
    fmt_s(dl, sizeof dl, download);
    textf(out, n, "%s %s + download ~%s", on_time ? "claim done in" : "claim may run", t, dl);
}

void irohds_coren_decide(const irohds_coren_miss *m, irohds_coren_decision *d)
{
    memset(d, 0, sizeof *d);
    double max_wait = known(m->max_wait_s) ? fmin(m->max_wait_s, IROHDS_COREN_MAX_WAIT_CAP_S)
                                           : IROHDS_COREN_MAX_WAIT_S;
    char cp[112], fp[112], wp[80];
    compute_part(m, d, cp, sizeof cp);
    fetch_part(m, d, fp, sizeof fp);
    wait_part(m, max_wait, d, wp, sizeof wp);
    if (d->provider >= 0 && d->fetch_s <= d->compute_s && d->fetch_s <= d->wait_s) {
        d->action = IROHDS_COREN_FETCH;
        textf(d->why, sizeof d->why, "fetch: %s; %s; %s", fp, cp, wp);
    } else if (isfinite(d->wait_s) && d->wait_s <= d->compute_s) {
        d->action = IROHDS_COREN_WAIT;
        textf(d->why, sizeof d->why, "wait: %s; %s; %s", wp, cp, fp);
    } else {
        d->action = IROHDS_COREN_COMPUTE;
        textf(d->why, sizeof d->why, "compute: %s; %s; %s", cp, fp, wp);
    }
    if (d->action != IROHDS_COREN_FETCH)
        d->provider = -1;
    if (d->action != IROHDS_COREN_WAIT)
        d->decide_again_us = 0;
}

/* A number, or null when unknown (JSON has no infinity). */
static int put_num(char *buf, size_t len, size_t *off, const char *key, double v)
{
    int k = isfinite(v) ? snprintf(buf + *off, len - *off, "\"%s\":%.6g,", key, v)
                        : snprintf(buf + *off, len - *off, "\"%s\":null,", key);
    if (k < 0 || (size_t)k >= len - *off)
        return -ENOBUFS;
    *off += (size_t)k;
    return 0;
}

int irohds_coren_decision_json(const irohds_coren_decision *d, char *buf, size_t len)
{
    static const char *names[] = {"compute", "fetch", "wait"};
    size_t off = 0;
    int k = snprintf(buf, len, "{\"action\":\"%s\",\"provider\":%d,\"decide_again_us\":%lld,",
                     names[d->action], d->provider, (long long)d->decide_again_us);
    if (k < 0 || (size_t)k >= len)
        return -ENOBUFS;
    off = (size_t)k;
    if (put_num(buf, len, &off, "compute_s", d->compute_s) ||
        put_num(buf, len, &off, "fetch_s", d->fetch_s) ||
        put_num(buf, len, &off, "wait_s", d->wait_s) ||
        put_num(buf, len, &off, "scale", d->scale))
        return -ENOBUFS;
    /* why is our own text: no quotes, backslashes or control characters
     * (fmt_* and the literals above), so it goes in as it is. */
    k = snprintf(buf + off, len - off, "\"why\":\"%s\"}", d->why);
    if (k < 0 || (size_t)k >= len - off)
        return -ENOBUFS;
    return 0;
}
