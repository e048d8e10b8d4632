/*
 * link.c: per-peer link estimates (coren.h), smoothed the way TCP smooths
 * its RTT (RFC 6298: new = 7/8 old + 1/8 sample) and, a little faster, the
 * bandwidth (3/4 old + 1/4 sample): a link's speed changes more than its
 * path length.  The first sample replaces the default outright, so one real
 * transfer is enough to leave the 100 Mbit/s / 50 ms guess behind.
 *
 * A transfer's time counts from the request, so one RTT of it is latency,
 * not bandwidth: it is taken off (at most half the time, so a noisy RTT
 * cannot make a rate absurd).  The download estimate adds it back, so the
 * two stay consistent.
 */
#include <math.h>
#include <string.h>

#include "coren/coren.h"

#define RTT_GAIN 0.125
#define BW_GAIN 0.25
#define BW_MAX 1e12 /* 1 TB/s: anything above is a timing glitch */

void irohds_coren_link_init(irohds_coren_link *l)
{
    memset(l, 0, sizeof *l);
}

static double smooth(double old, double sample, double gain, unsigned n)
{
    return n == 0 ? sample : old + gain * (sample - old);
}

void irohds_coren_link_add_rtt(irohds_coren_link *l, double rtt_s)
{
    if (!isfinite(rtt_s) || rtt_s <= 0)
        return;
    l->rtt_s = smooth(l->rtt_s, rtt_s, RTT_GAIN, l->rtt_samples);
    l->rtt_samples++;
}

void irohds_coren_link_add_transfer(irohds_coren_link *l, uint64_t bytes, double seconds)
{
    if (bytes < IROHDS_COREN_MIN_BW_SAMPLE || !isfinite(seconds) || seconds <= 0)
        return;
    double busy = seconds - irohds_coren_link_est_rtt(l);
    if (busy < seconds / 2)
        busy = seconds / 2;
    double rate = fmin((double)bytes / busy, BW_MAX);
    l->bw = smooth(l->bw, rate, BW_GAIN, l->bw_samples);
    l->bw_samples++;
}

/* A measured value, or the default when there is none (or the struct
 * holds something no measurement could have produced). */
static double measured_or(double v, unsigned samples, double dflt)
{
    return samples && isfinite(v) && v > 0 ? v : dflt;
}

double irohds_coren_link_est_rtt(const irohds_coren_link *l)
{
    return measured_or(l->rtt_s, l->rtt_samples, IROHDS_COREN_DEFAULT_RTT_S);
}

double irohds_coren_link_est_bw(const irohds_coren_link *l)
{
    double rtt = measured_or(l->rtt_s, l->rtt_samples, 0);
    double prior = rtt > 0 && rtt < IROHDS_COREN_LAN_RTT_S ? IROHDS_COREN_LAN_BW
                                                             : IROHDS_COREN_DEFAULT_BW;
    return measured_or(l->bw, l->bw_samples, prior);
}

double irohds_coren_link_est_download(const irohds_coren_link *l, uint64_t bytes)
{
    double rtt = irohds_coren_link_est_rtt(l);
    double connect = l->connected ? 0 : 2 * rtt;
    return connect + rtt + (double)bytes / irohds_coren_link_est_bw(l);
}
