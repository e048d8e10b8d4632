/*
 * service: the systemd user unit that keeps the daemon running across
 * logins and reboots.  Optional by design: where no systemd user manager
 * runs (containers, CI, cluster nodes) the detached daemon started on demand
 * does the same job, so nothing here ever fails a caller.
 */
#ifndef IROHDS_DAEMON_SERVICE_H
#define IROHDS_DAEMON_SERVICE_H

#include <stddef.h>

#include "util/util.h"

/* The unit text for exe (absolute path) and these paths.  -ENOBUFS if len is short. */
int irohds_service_unit(const irohds_paths *paths, const char *exe, char *buf, size_t len);

/* `irohds-daemon service install|uninstall|status [--print]`; argv[0] is the
 * subcommand.  Returns the exit status. */
int irohds_service_main(const irohds_paths *paths, const char *exe, int argc, char **argv);

#endif
