/*
 * ratelimit.c: per-peer token buckets (proto.h), I/O-free: the caller
 * passes the time.
 *
 * The table is fixed (no allocation, a bounded cost per message whatever a
 * flood does).  A peer's slot is found by probing PROBE slots from a start
 * picked by its id; a peer not in the table takes an empty slot among them
 * (starting with a full bucket), else the slot whose bucket is fullest, and
 * inherits that bucket as it is.  The tokens belong to the slot, not to the
 * peer: replacing an idle peer (full bucket) costs nobody anything, and
 * making up new ids (keys are free) cannot mint tokens, so a flood from any
 * number of ids gets at most what the table refills, and a drained peer
 * that was pushed out comes back to a bucket no fuller than the one it left.
 */
#include <math.h>
#include <string.h>

#include "proto/proto.h"

#define PROBE 8

void irohds_proto_limiter_init(irohds_proto_limiter *l, double rate, double burst)
{
    memset(l, 0, sizeof *l);
    l->rate = isfinite(rate) && rate > 0 ? rate : 0;
    l->burst = isfinite(burst) && burst > 0 ? burst : 0;
}

/* Tokens in slot i at now_us (the clock going backwards adds nothing). */
static double refilled(const irohds_proto_limiter *l, unsigned i, int64_t now_us)
{
    double t = l->slot[i].tokens;
    if (now_us > l->slot[i].last_us)
        t += (double)(now_us - l->slot[i].last_us) / 1e6 * l->rate;
    return t < l->burst ? t : l->burst;
}

static unsigned start_of(const uint8_t peer[IROHDS_PROTO_ID_LEN])
{
    /* Node ids are public keys: their bytes are as good as a hash. */
    return ((unsigned)peer[0] | (unsigned)peer[1] << 8) % IROHDS_PROTO_LIMITER_SLOTS;
}

/* peer's slot, or (*found false) the one it would take: an empty one, else
 * the fullest it probes. */
static unsigned probe(const irohds_proto_limiter *l, const uint8_t peer[IROHDS_PROTO_ID_LEN],
                      int64_t now_us, bool *found)
{
    unsigned start = start_of(peer), pick = start;
    double fullest = -1;
    *found = false;
    for (unsigned k = 0; k < PROBE; k++) {
        unsigned i = (start + k) % IROHDS_PROTO_LIMITER_SLOTS;
        if (l->slot[i].used && memcmp(l->slot[i].peer, peer, IROHDS_PROTO_ID_LEN) == 0) {
            *found = true;
            return i;
        }
        double t = l->slot[i].used ? refilled(l, i, now_us) : INFINITY;
        if (t > fullest)
            fullest = t, pick = i;
    }
    return pick;
}

static unsigned find_slot(irohds_proto_limiter *l, const uint8_t peer[IROHDS_PROTO_ID_LEN],
                          int64_t now_us)
{
    bool found;
    unsigned pick = probe(l, peer, now_us, &found);
    if (found)
        return pick;
    if (!l->slot[pick].used) {
        l->slot[pick].used = true;
        l->slot[pick].tokens = l->burst;
        l->slot[pick].last_us = now_us;
    }
    memcpy(l->slot[pick].peer, peer, IROHDS_PROTO_ID_LEN);
    return pick;
}

bool irohds_proto_limiter_would_allow(const irohds_proto_limiter *l,
                                      const uint8_t peer[IROHDS_PROTO_ID_LEN], int64_t now_us,
                                      double cost)
{
    bool found;
    unsigned i = probe(l, peer, now_us, &found);
    double t = l->slot[i].used ? refilled(l, i, now_us) : l->burst;
    return isfinite(cost) && cost >= 0 && t >= cost;
}

bool irohds_proto_limiter_allow(irohds_proto_limiter *l, const uint8_t peer[IROHDS_PROTO_ID_LEN],
                                int64_t now_us, double cost)
{
    unsigned i = find_slot(l, peer, now_us);
    double t = refilled(l, i, now_us);
    if (now_us > l->slot[i].last_us)
        l->slot[i].last_us = now_us;
    bool ok = isfinite(cost) && cost >= 0 && t >= cost;
    l->slot[i].tokens = ok ? t - cost : t;
    return ok;
}
