/*
 * util/log: one line per message, "<UTC time> <LEVEL> [pid] message".
 *
 * Each line is formatted into a stack buffer and handed to the kernel with a
 * single write(), so lines from several threads (the daemon's loop and its
 * worker pool) or several processes sharing daemon.log never interleave
 * mid-line.  Level and fd are atomics: setting them needs no lock.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static atomic_int log_level = IROHDS_LOG_INFO;
static atomic_int log_fd = 2;

void irohds_log_set_level(int level)
{
    if (level < IROHDS_LOG_ERROR)
        level = IROHDS_LOG_ERROR;
    if (level > IROHDS_LOG_DEBUG)
        level = IROHDS_LOG_DEBUG;
    atomic_store(&log_level, level);
}

void irohds_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void irohds_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (level > atomic_load(&log_level) || level < IROHDS_LOG_ERROR)
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%ld] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], (long)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated message: still one whole line */
    line[len++] = '\n';
    /* Logging must never fail the caller; a lost line is the lesser evil. */
    (void)irohds_write_all(atomic_load(&log_fd), line, len);
}
