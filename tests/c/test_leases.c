/*
 * test_leases: the single-flight transitions of src/daemon/leases.c, driven
 * with made-up connection ids and checked against the answers each event
 * must produce (written out per step, not derived from the table).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "daemon/leases.h"



static irohds_lease_event evs[64];
static int nev;

static void record(void *ctx, const irohds_lease_event *ev)
{
    (void)ctx;
    if (nev < 64)
        evs[nev++] = *ev;
}

/* Expect exactly the events given, in order; clears the log. */
static void expect(int line, int n, const irohds_lease_event *want)
{
    if (nev != n) {
        failed++;
        printf("FAIL line %d: %d events, want %d\n", line, nev, n);
    } else {
        for (int i = 0; i < n; i++) {
            const irohds_lease_event *g = &evs[i], *w = &want[i];
            if (g->kind != w->kind || g->conn != w->conn || g->req_id != w->req_id ||
                memcmp(g->key, w->key, 32) != 0 ||
                (w->kind == IROHDS_LEASE_GRANT && g->lease != w->lease)) {
                failed++;
                printf("FAIL line %d: event %d is kind %d conn %llu req %u lease %llu\n", line,
                       i, g->kind, (unsigned long long)g->conn, g->req_id,
                       (unsigned long long)g->lease);
                nev = 0;
                return;
            }
        }
        passed++;
    }
    nev = 0;
}

#define EXPECT(...)                                                                                \
    do {                                                                                           \
        irohds_lease_event want_[] = {__VA_ARGS__};                                                \
        expect(__LINE__, (int)(sizeof(want_) / sizeof(want_[0])), want_);                          \
    } while (0)
#define EXPECT_NONE() expect(__LINE__, 0, NULL)

static uint8_t K1[32], K2[32], K3[32];


static irohds_lease_event ev(irohds_lease_kind kind, const uint8_t *key, uint64_t conn,
                             uint32_t req, uint64_t lease)
{
    irohds_lease_event e = {.kind = kind, .conn = conn, .req_id = req, .lease = lease};
    memcpy(e.key, key, 32);
    return e;
}

static void test_basic(void)
{
    irohds_leases *l;
    CHECK(irohds_leases_init(&l, record, NULL) == 0, "init");

    /* First miss gets lease 1; two more wait. */
    irohds_leases_get(l, K1, 10, 1);
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 10, 1, 1));
    irohds_leases_get(l, K1, 11, 5);
    EXPECT(ev(IROHDS_LEASE_WAIT, K1, 11, 5, 0));
    irohds_leases_get(l, K1, 12, 6);
    EXPECT(ev(IROHDS_LEASE_WAIT, K1, 12, 6, 0));
    /* Another key is independent: lease 2. */
    irohds_leases_get(l, K2, 11, 7);
    EXPECT(ev(IROHDS_LEASE_GRANT, K2, 11, 7, 2));
    CHECK(irohds_leases_count(l) == 2, "count 2");
    CHECK(irohds_leases_busy(l, K1) && irohds_leases_busy(l, K2) && !irohds_leases_busy(l, K3),
          "busy");

    /* Lease checks: right key + id only; 0 never valid. */
    CHECK(irohds_leases_check(l, K1, 1) == 0, "check ok");
    CHECK(irohds_leases_check(l, K1, 2) == -ESTALE, "check other key's lease");
    CHECK(irohds_leases_check(l, K3, 1) == -ESTALE, "check unknown key");
    CHECK(irohds_leases_check(l, K1, 0) == -ESTALE, "lease 0");

    /* PUT by the holder: both waiters get HIT in FIFO order; entry gone. */
    CHECK(irohds_leases_begin_put(l, K1, 1) == 0, "begin_put");
    EXPECT_NONE();
    irohds_leases_stored(l, K1, 1);
    EXPECT(ev(IROHDS_LEASE_HIT, K1, 11, 5, 0), ev(IROHDS_LEASE_HIT, K1, 12, 6, 0));
    CHECK(!irohds_leases_busy(l, K1) && irohds_leases_count(l) == 1, "K1 done");
    CHECK(irohds_leases_check(l, K1, 1) == -ESTALE, "old lease stale after put");

    /* Next miss on K1 starts over with a fresh lease id. */
    irohds_leases_get(l, K1, 12, 9);
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 12, 9, 3));
    irohds_leases_free(l);
}

static void test_release_and_close(void)
{
    irohds_leases *l;
    irohds_leases_init(&l, record, NULL);
    irohds_leases_get(l, K1, 1, 1); /* lease 1 */
    irohds_leases_get(l, K1, 2, 1);
    irohds_leases_get(l, K1, 3, 1);
    irohds_leases_get(l, K1, 4, 1);
    nev = 0;

    /* RELEASE by a non-holder changes nothing. */
    CHECK(irohds_leases_release(l, K1, 7) == -ESTALE, "release stale");
    EXPECT_NONE();
    /* RELEASE by the holder: conn 2 gets lease 2, 3 and 4 keep waiting. */
    CHECK(irohds_leases_release(l, K1, 1) == 0, "release");
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 2, 1, 2));
    /* Waiter 3 disconnects: removed silently. */
    irohds_leases_drop_conn(l, 3);
    EXPECT_NONE();
    /* Holder 2 disconnects: 4 (not 3) gets lease 3. */
    irohds_leases_drop_conn(l, 2);
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 4, 1, 3));
    /* Holder 4 disconnects with nobody waiting: entry gone. */
    irohds_leases_drop_conn(l, 4);
    EXPECT_NONE();
    CHECK(irohds_leases_count(l) == 0 && !irohds_leases_busy(l, K1), "empty");

    /* A connection that holds one key and waits on another. */
    irohds_leases_get(l, K1, 5, 1); /* lease 4 */
    irohds_leases_get(l, K2, 6, 1); /* lease 5 */
    irohds_leases_get(l, K2, 5, 2); /* 5 waits on K2 */
    irohds_leases_get(l, K1, 6, 2); /* 6 waits on K1 */
    nev = 0;
    irohds_leases_drop_conn(l, 5);
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 6, 2, 6));
    irohds_leases_stored(l, K2, 5);
    EXPECT_NONE(); /* 5's wait on K2 was removed with it */
    CHECK(irohds_leases_count(l) == 1, "one left");
    irohds_leases_free(l);
}

static void test_putting(void)
{
    irohds_leases *l;
    irohds_leases_init(&l, record, NULL);
    irohds_leases_get(l, K1, 1, 1); /* lease 1 */
    irohds_leases_get(l, K1, 2, 8);
    nev = 0;
    /* Holder sends its PUT and exits before the store finishes. */
    CHECK(irohds_leases_begin_put(l, K1, 1) == 0, "begin_put");
    irohds_leases_drop_conn(l, 1);
    EXPECT_NONE(); /* the lease did not pass on */
    CHECK(irohds_leases_release(l, K1, 1) == -EBUSY, "release while putting");
    /* A GET meanwhile waits too. */
    irohds_leases_get(l, K1, 3, 4);
    EXPECT(ev(IROHDS_LEASE_WAIT, K1, 3, 4, 0));
    /* The store failed: next waiter (2) computes. */
    CHECK(irohds_leases_put_failed(l, K1, 1) == 0, "put failed");
    EXPECT(ev(IROHDS_LEASE_GRANT, K1, 2, 8, 2));
    CHECK(irohds_leases_put_failed(l, K1, 1) == -ESTALE, "put failed twice");
    /* An unleased put (lease 0) lands: waiter 3 gets HIT, holder 2 keeps its lease. */
    irohds_leases_stored(l, K1, 0);
    EXPECT(ev(IROHDS_LEASE_HIT, K1, 3, 4, 0));
    CHECK(irohds_leases_check(l, K1, 2) == 0, "holder still holds");
    irohds_leases_stored(l, K1, 2);
    EXPECT_NONE();
    CHECK(irohds_leases_count(l) == 0, "empty");
    irohds_leases_free(l);
}

/* Keys sharing a bucket (same first two bytes) stay apart. */
static void test_collisions(void)
{
    irohds_leases *l;
    irohds_leases_init(&l, record, NULL);
    uint8_t keys[40][32];
    for (int i = 0; i < 40; i++) {
        memset(keys[i], 0, 32);
        keys[i][31] = (uint8_t)i;
        irohds_leases_get(l, keys[i], 100 + (uint64_t)i, 1);
    }
    int grants = 0;
    for (int i = 0; i < nev; i++)
        grants += evs[i].kind == IROHDS_LEASE_GRANT && evs[i].lease == (uint64_t)i + 1;
    CHECK(grants == 40, "40 distinct grants, got %d", grants);
    nev = 0;
    for (int i = 0; i < 40; i += 2)
        irohds_leases_drop_conn(l, 100 + (uint64_t)i);
    CHECK(irohds_leases_count(l) == 20, "20 left, got %zu", irohds_leases_count(l));
    CHECK(!irohds_leases_busy(l, keys[0]) && irohds_leases_busy(l, keys[1]), "right ones left");
    CHECK(irohds_leases_check(l, keys[39], 40) == 0, "lease of key 39");
    irohds_leases_free(l);
}

/* Waiters seen by foreach_waiter, as (conn, req) pairs. */
static uint64_t seen[8][2];
static int nseen;
static void collect(void *ctx, uint64_t conn, uint32_t req)
{
    (void)ctx;
    if (nseen < 8) {
        seen[nseen][0] = conn;
        seen[nseen][1] = req;
    }
    nseen++;
}

/* The daemon holds a key itself (a download from a peer): GETs wait behind
 * it, a stored result answers them, a failed download hands the lease on. */
static void test_daemon_holder(void)
{
    irohds_leases *l;
    CHECK(irohds_leases_init(&l, record, NULL) == 0, "init");
    uint64_t lease = 0, again = 0;
    CHECK(irohds_leases_acquire(l, K1, 0, &lease) == 0 && lease == 1, "acquire K1 -> lease 1");
    EXPECT_NONE();
    CHECK(irohds_leases_acquire(l, K1, 0, &again) == -EBUSY, "second acquire refused");
    irohds_leases_get(l, K1, 10, 3);
    irohds_leases_get(l, K1, 11, 4);
    EXPECT(ev(IROHDS_LEASE_WAIT, K1, 10, 3, 0), ev(IROHDS_LEASE_WAIT, K1, 11, 4, 0));
    nseen = 0;
    irohds_leases_foreach_waiter(l, K1, collect, NULL);
    CHECK(nseen == 2 && seen[0][0] == 10 && seen[0][1] == 3 && seen[1][0] == 11 &&
              seen[1][1] == 4,
          "waiters in queue order");
    nseen = 0;
    irohds_leases_foreach_waiter(l, K2, collect, NULL);
    CHECK(nseen == 0, "no waiters on a free key");

    /* Download done: both waiters get HIT, the entry ends. */
    irohds_leases_stored(l, K1, lease);
    EXPECT(ev(IROHDS_LEASE_HIT, K1, 10, 3, 0), ev(IROHDS_LEASE_HIT, K1, 11, 4, 0));
    CHECK(!irohds_leases_busy(l, K1), "K1 free after the download");

    /* Download failed: the first waiter computes (lease 3). */
    CHECK(irohds_leases_acquire(l, K2, 0, &lease) == 0 && lease == 2, "acquire K2");
    irohds_leases_get(l, K2, 12, 5);
    EXPECT(ev(IROHDS_LEASE_WAIT, K2, 12, 5, 0));
    CHECK(irohds_leases_release(l, K2, lease) == 0, "release the daemon's lease");
    EXPECT(ev(IROHDS_LEASE_GRANT, K2, 12, 5, 3));
    /* A closing client connection does not touch the daemon's own lease. */
    CHECK(irohds_leases_acquire(l, K3, 0, &lease) == 0, "acquire K3");
    irohds_leases_drop_conn(l, 12);
    CHECK(irohds_leases_check(l, K3, lease) == 0, "daemon lease survives client closes");
    irohds_leases_free(l);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    memset(K1, 0x11, 32);
    memset(K2, 0x22, 32);
    memset(K3, 0x33, 32);
    test_basic();
    test_release_and_close();
    test_putting();
    test_collisions();
    test_daemon_holder();
    return check_summary();
}
