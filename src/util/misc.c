/*
 * util/misc: hex, clocks, small file-system helpers and the name check.
 *
 * These are the few lines every subsystem would otherwise rewrite slightly
 * differently.  The name check matters most: names of FileRef files come from
 * user code and, later, from peers, and are joined onto directories we own, so
 * one strict definition of "safe" lives here and everybody calls it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* ------------------------------------------------------------------ hex */

void irohds_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int irohds_hex_decode(const char *in, uint8_t *out, size_t len)
{
    /* Check everything first so a bad string leaves out untouched. */
    for (size_t i = 0; i < 2 * len; i++)
        if (hex_digit(in[i]) < 0)
            return -EINVAL;
    if (in[2 * len] != '\0')
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(hex_digit(in[2 * i]) << 4 | hex_digit(in[2 * i + 1]));
    return 0;
}

/* ---------------------------------------------------------------- clocks */

int64_t irohds_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t irohds_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* -------------------------------------------------------------------- fs */

int irohds_mkdirs(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return n ? -ENAMETOOLONG : -EINVAL;
    memcpy(buf, path, n + 1);
    /* Walk the prefixes; each mkdir may find its directory already there. */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -errno;
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int irohds_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int irohds_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        close(fd);
        return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    /* Read until EOF rather than trusting st_size: the file may change. */
    for (;;) {
        if (got == (size_t)st.st_size) {
            char extra;
            ssize_t r = read(fd, &extra, 1);
            if (r == 0)
                break;
            if (r < 0 && errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return r < 0 ? -errno : -EFBIG;
        }
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

int irohds_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ name check */

bool irohds_name_is_safe(const char *rel)
{
    size_t n = strnlen(rel, IROHDS_NAME_MAX);
    /* The name must fit irohds_file.name with its NUL. */
    if (n == 0 || n >= IROHDS_NAME_MAX || rel[0] == '/')
        return false;
    const char *comp = rel;
    for (;;) {
        const char *end = strchr(comp, '/');
        size_t clen = end ? (size_t)(end - comp) : strlen(comp);
        if (clen == 0 || clen > NAME_MAX)
            return false; /* "a//b", trailing "/", or too long for any fs */
        if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
            return false;
        for (size_t i = 0; i < clen; i++) {
            unsigned char c = (unsigned char)comp[i];
            /* Control characters (newlines above all) break logs and shells. */
            if (c < 0x20 || c == 0x7f)
                return false;
        }
        if (!end)
            return true;
        comp = end + 1;
    }
}

#define RMTREE_MAX_DEPTH 64

static int rmtree_depth(int parent, const char *name, int depth)
{
    if (unlinkat(parent, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return errno == ENOENT ? 0 : -errno;
    if (depth > RMTREE_MAX_DEPTH)
        return -ELOOP;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int r = rmtree_depth(dirfd(d), de->d_name, depth + 1);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

/* rm -r of parent/name that never follows a symlink (a link planted in a dir
 * we delete is removed, not followed), bounded in depth. */
int irohds_rmtree_at(int parent, const char *name)
{
    return rmtree_depth(parent, name, 0);
}
