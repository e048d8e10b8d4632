/*
 * cache.c: the probe's cache file and its JSON form (coren.h).
 *
 * The file is plain text, one "key value" line a field, between a header
 * line and "end":
 *
 *   irohds coren probe 1
 *   cpu_model AMD EPYC 7B13
 *   cores_online 2
 *   ...
 *   end
 *
 * so a person can read it and a truncated or edited file is noticed.  One
 * table drives writing, reading and JSON.  Reading is strict: every field
 * exactly once, no unknown key, numbers whole and in range; anything else
 * is "corrupt" and the caller measures again (a probe is cheap, a wrong
 * figure is not).  Doubles are written with 17 significant digits, so they
 * read back bit for bit.  Saved as a temporary file renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coren/coren.h"
#include "util/util.h"

#define HEADER "irohds coren probe 1"
#define FILE_MAX 4096

enum kind { STR, UINT, U64, I64, DBL };

typedef struct field {
    const char *key;
    enum kind kind;
    size_t off, size;
    bool positive; /* must be > 0 (else >= 0; strings: non-empty) */
} field;

#define F(name, k, pos) {#name, k, offsetof(irohds_coren_probe, name), \
                         sizeof(((irohds_coren_probe *)0)->name), pos}
static const field fields[] = {
    F(cpu_model, STR, true),     F(cores_online, UINT, true), F(cores_usable, UINT, true),
    F(cpu_ops, DBL, true),       F(mem_bw, DBL, true),        F(disk_write_bw, DBL, false),
    F(disk_read_bw, DBL, false), F(ram_bytes, U64, true),     F(gpu, STR, false),
    F(figure, DBL, true),        F(measured_us, I64, true),   F(probe_seconds, DBL, false),
};
#undef F
#define NFIELDS (sizeof fields / sizeof *fields)

/* ---------------------------------------------------------------- write */

/* The value of f in p as text (strings as they are). */
static void format_value(const irohds_coren_probe *p, const field *f, char *out, size_t len)
{
    const char *at = (const char *)p + f->off;
    switch (f->kind) {
    case STR: snprintf(out, len, "%s", at); break;
    case UINT: snprintf(out, len, "%u", *(const unsigned *)at); break;
    case U64: snprintf(out, len, "%llu", (unsigned long long)*(const uint64_t *)at); break;
    case I64: snprintf(out, len, "%lld", (long long)*(const int64_t *)at); break;
    case DBL: snprintf(out, len, "%.17g", *(const double *)at); break;
    }
}

/* printf at buf + *off; false (and nothing more written) once it is full. */
__attribute__((format(printf, 4, 5))) static bool append(char *buf, size_t cap, size_t *off,
                                                          const char *fmt, ...)
{
    if (*off >= cap)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *off, cap - *off, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap - *off) {
        *off = cap;
        return false;
    }
    *off += (size_t)k;
    return true;
}

/* The cache file's text into buf; its length, or 0 if it does not fit. */
static size_t format_file(const irohds_coren_probe *p, char *buf, size_t cap)
{
    char v[160];
    size_t off = 0;
    append(buf, cap, &off, "%s\n", HEADER);
    for (size_t i = 0; i < NFIELDS; i++) {
        format_value(p, &fields[i], v, sizeof v);
        append(buf, cap, &off, "%s %s\n", fields[i].key, v);
    }
    return append(buf, cap, &off, "end\n") ? off : 0;
}

int irohds_coren_probe_save(const irohds_coren_probe *p, const char *path)
{
    char text[FILE_MAX], tmp[PATH_MAX];
    size_t len = format_file(p, text, sizeof text);
    if (!len)
        return -ENOBUFS;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = irohds_write_all(fd, text, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* ----------------------------------------------------------------- read */

static bool printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* Parse v into f's member of p: false when it is not a whole, in-range value. */
static bool parse_value(irohds_coren_probe *p, const field *f, const char *v)
{
    char *at = (char *)p + f->off, *end = NULL;
    errno = 0;
    switch (f->kind) {
    case STR:
        if (strlen(v) >= f->size || !printable(v) || (f->positive && !*v))
            return false;
        memcpy(at, v, strlen(v) + 1);
        return true;
    case UINT: {
        unsigned long long u = strtoull(v, &end, 10);
        *(unsigned *)at = (unsigned)u;
        return u <= UINT_MAX && (!f->positive || u > 0) && *v != '-' && *end == 0 && !errno;
    }
    case U64: {
        unsigned long long u = strtoull(v, &end, 10);
        *(uint64_t *)at = u;
        return (!f->positive || u > 0) && *v != '-' && *end == 0 && !errno;
    }
    case I64: {
        long long i = strtoll(v, &end, 10);
        *(int64_t *)at = i;
        return (f->positive ? i > 0 : i >= 0) && *end == 0 && !errno;
    }
    case DBL: {
        double d = strtod(v, &end);
        *(double *)at = d;
        return isfinite(d) && (f->positive ? d > 0 : d >= 0) && *end == 0 && end != v;
    }
    }
    return false;
}

/* One "key value" line; *seen marks the fields read so far. */
static bool parse_line(irohds_coren_probe *p, char *line, unsigned *seen)
{
    char *sp = strchr(line, ' ');
    if (!sp)
        return false;
    *sp = 0;
    for (size_t i = 0; i < NFIELDS; i++) {
        if (strcmp(line, fields[i].key) != 0)
            continue;
        if (*seen & (1u << i))
            return false;
        *seen |= 1u << i;
        return parse_value(p, &fields[i], sp + 1);
    }
    return false;
}

static int parse(irohds_coren_probe *p, char *text)
{
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, HEADER) != 0)
        return -EINVAL;
    unsigned seen = 0;
    while ((line = strtok_r(NULL, "\n", &save)) && strcmp(line, "end") != 0)
        if (!parse_line(p, line, &seen))
            return -EINVAL;
    bool complete = line && !strtok_r(NULL, "\n", &save) && seen == (1u << NFIELDS) - 1;
    return complete ? 0 : -EINVAL;
}

int irohds_coren_probe_load(irohds_coren_probe *p, const char *path)
{
    char *text = NULL;
    size_t len;
    memset(p, 0, sizeof *p);
    int rc = irohds_read_file(path, FILE_MAX, &text, &len);
    if (rc)
        return rc == -ENOENT ? rc : rc == -EFBIG ? -EINVAL : rc;
    rc = strlen(text) == len ? parse(p, text) : -EINVAL; /* no NUL inside */
    free(text);
    if (rc)
        memset(p, 0, sizeof *p);
    return rc;
}

/* ----------------------------------------------------------------- JSON */

int irohds_coren_probe_json(const irohds_coren_probe *p, char *buf, size_t len)
{
    size_t off = 0;
    char v[160];
    for (size_t i = 0; i < NFIELDS; i++) {
        format_value(p, &fields[i], v, sizeof v);
        /* Strings were made printable without quotes or backslashes. */
        const char *q = fields[i].kind == STR ? "\"" : "";
        append(buf, len, &off, "%s\"%s\":%s%s%s", i ? "," : "{", fields[i].key, q, v, q);
    }
    return append(buf, len, &off, "}") ? 0 : -ENOBUFS;
}
