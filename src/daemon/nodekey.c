/*
 * nodekey.c: load or create the node's Ed25519 seed (see nodekey.h).
 *
 * The seed file is created under a unique temporary name with O_EXCL and
 * mode 0600 from the start (never chmod-ed after the fact, so it is never
 * readable by others even for an instant), fsync-ed, then link()ed to its
 * final name: link() fails with EEXIST if someone else won the race, and we
 * then read theirs.  rename() would silently replace a key already handed
 * out as our identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/nodekey.h"
#include "util/util.h"

static int read_seed(const char *path, uint8_t seed[IROHDS_NODEKEY_SEED])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_size != IROHDS_NODEKEY_SEED)
        rc = -EINVAL;
    else if (read(fd, seed, IROHDS_NODEKEY_SEED) != IROHDS_NODEKEY_SEED)
        rc = -EIO;
    /* A key others can read is a key others can use: tighten it. */
    if (rc == 0 && (st.st_mode & 077) && st.st_uid == geteuid()) {
        IROHDS_WARN("node key %s was readable by others; set to 0600", path);
        if (fchmod(fd, 0600) < 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

static int create_seed(const char *path)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    uint8_t seed[IROHDS_NODEKEY_SEED];
    randombytes_buf(seed, sizeof(seed));
    unlink(tmp); /* a leftover from a crashed run with our pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = irohds_write_all(fd, seed, sizeof(seed));
    sodium_memzero(seed, sizeof(seed));
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && link(tmp, path) < 0 && errno != EEXIST)
        rc = -errno;
    unlink(tmp);
    if (rc == 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        irohds_fsync_dir(dirname(dir));
    }
    return rc;
}

int irohds_nodekey_load(irohds_nodekey *k, const char *path, bool create)
{
    if (sodium_init() < 0)
        return -EIO;
    uint8_t seed[IROHDS_NODEKEY_SEED];
    int rc = read_seed(path, seed);
    if (rc == -ENOENT && create) {
        rc = create_seed(path);
        if (rc == 0)
            rc = read_seed(path, seed);
    }
    if (rc < 0)
        return rc;
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    sodium_memzero(seed, sizeof(seed));
    irohds_hex_encode(k->pk, sizeof(k->pk), k->id);
    return 0;
}

void irohds_nodekey_wipe(irohds_nodekey *k)
{
    sodium_memzero(k->sk, sizeof(k->sk));
}
