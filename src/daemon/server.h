/*
 * server: the daemon proper.  One libuv loop owns the Unix socket, the
 * connections, the store writer, the lease table and the timers; nothing
 * else in the process touches a socket.  Protocol decisions live in ipc/
 * (framing) and leases (single flight); this file moves bytes and calls them.
 */
#ifndef IROHDS_DAEMON_SERVER_H
#define IROHDS_DAEMON_SERVER_H

#include <stdbool.h>

#include "util/util.h"

#define IROHDS_VERSION_STRING "0.1.0"

enum {
    IROHDS_SERVER_DETACHED = 1, /* started by `start`: another daemon running is success */
};

/*
 * Run the daemon until STOP, SIGTERM or SIGINT.  Creates the data dirs,
 * loads config and node key, takes the daemon lock (if another daemon holds
 * it: returns 0 when DETACHED, else prints why and returns 1), binds the
 * socket, recovers the store, serves.  Returns the process exit status.
 */
int irohds_server_run(const irohds_paths *paths, unsigned flags);

/*
 * Take the daemon lock without serving (the CLI acting on the store while
 * no daemon runs).  Returns the locked fd (close it to release), -EWOULDBLOCK
 * if a daemon holds it, or another -errno.
 */
int irohds_server_lock(const irohds_paths *paths);

/* Remove staging dirs not modified for max_age_s seconds; returns how many. */
int irohds_server_sweep_staging(const char *staging_dir, long max_age_s);

#endif
