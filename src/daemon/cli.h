/*
 * cli: the irohds-daemon command line (run, start, stop, info, ls, evict,
 * gc, service).  Commands talk to a running daemon over the socket when
 * there is one and otherwise read (or, holding the daemon lock, write) the
 * store directly, so every command works with the daemon down.
 */
#ifndef IROHDS_DAEMON_CLI_H
#define IROHDS_DAEMON_CLI_H

/* The whole program; returns the exit status (2 for a usage error). */
int irohds_cli_main(int argc, char **argv);

/* "1.2 MiB", "512 B" */
void irohds_cli_format_size(unsigned long long bytes, char *buf, unsigned len);
/* "45s", "3m", "2h", "5d" */
void irohds_cli_format_age(double seconds, char *buf, unsigned len);

#endif
