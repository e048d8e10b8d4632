/*
 * util/paths: where irohds keeps things.
 *
 * The daemon, the CLI and every Python process must agree on the data dir and
 * the socket without talking to each other, so the rules (documented in
 * util.h) live in this one function and depend only on the environment.
 *
 * The socket path is the awkward part: sun_path holds 107 characters, and a
 * deep $IROHDS_HOME (pytest's tmp dirs) easily exceeds that.  Then the socket
 * moves to /tmp/irohds-<uid>/, named by a hash of the run dir it would have
 * had, so two data dirs never share a socket.  That directory is in a
 * world-writable place, so irohds_paths_create_dirs() insists it belongs to us
 * and is mode 0700 before anyone trusts it.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* snprintf into a PATH_MAX buffer, -ENAMETOOLONG instead of truncating. */
static int join(char *out, size_t outlen, const char *a, const char *b)
{
    int n = snprintf(out, outlen, "%s/%s", a, b);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int find_data_dir(char *out, size_t outlen)
{
    const char *v = env_nonempty("IROHDS_HOME");
    if (v) {
        int n = snprintf(out, outlen, "%s", v);
        return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
    }
    v = env_nonempty("XDG_DATA_HOME");
    if (v)
        return join(out, outlen, v, "irohds");
    const char *home = env_nonempty("HOME");
    if (!home) {
        struct passwd *pw = getpwuid(getuid());
        if (!pw || !pw->pw_dir || !pw->pw_dir[0])
            return -ENOENT;
        home = pw->pw_dir;
    }
    return join(out, outlen, home, ".local/share/irohds");
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* FNV-1a: util cannot depend on hash/, and this only has to spread names. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static int find_socket(irohds_paths *p)
{
    if (env_nonempty("IROHDS_HOME")) {
        if (join(p->run_dir, sizeof p->run_dir, p->data_dir, "run"))
            return -ENAMETOOLONG;
    } else {
        const char *xdg = env_nonempty("XDG_RUNTIME_DIR");
        int rc = xdg && is_dir(xdg) ? join(p->run_dir, sizeof p->run_dir, xdg, "irohds")
                                    : join(p->run_dir, sizeof p->run_dir, p->data_dir, "run");
        if (rc)
            return rc;
    }
    int n = snprintf(p->socket_path, sizeof p->socket_path, "%s/daemon.sock", p->run_dir);
    if (n >= 0 && (size_t)n < sizeof p->socket_path)
        return 0;
    uint64_t h = fnv1a(p->run_dir);
    snprintf(p->run_dir, sizeof p->run_dir, "/tmp/irohds-%lu", (unsigned long)getuid());
    n = snprintf(p->socket_path, sizeof p->socket_path, "%s/%016llx.sock", p->run_dir,
                 (unsigned long long)h);
    return n < 0 || (size_t)n >= sizeof p->socket_path ? -ENAMETOOLONG : 0;
}

int irohds_paths_init(irohds_paths *p)
{
    memset(p, 0, sizeof *p);
    int rc = find_data_dir(p->data_dir, sizeof p->data_dir);
    if (rc)
        return rc;
    const struct {
        char *out;
        const char *name;
    } sub[] = {
        {p->config_path, "config.toml"}, {p->key_path, "node.key"},
        {p->store_dir, "store"},         {p->staging_dir, "staging"},
        {p->files_dir, "files"},         {p->log_path, "daemon.log"},
        {p->lock_path, "daemon.lock"},
    };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
        if ((rc = join(sub[i].out, PATH_MAX, p->data_dir, sub[i].name)))
            return rc;
    return find_socket(p);
}

/* The /tmp fallback is shared ground: trust it only if it is ours alone. */
static int check_private_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
        return -EPERM;
    if ((st.st_mode & 0077) && chmod(dir, 0700) != 0)
        return -errno;
    return 0;
}

int irohds_paths_create_dirs(const irohds_paths *p)
{
    const char *dirs[] = {p->data_dir, p->store_dir, p->staging_dir, p->files_dir, p->run_dir};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        int rc = irohds_mkdirs(dirs[i], 0700);
        if (rc)
            return rc;
    }
    if (strncmp(p->run_dir, "/tmp/irohds-", 12) == 0)
        return check_private_dir(p->run_dir);
    return 0;
}
