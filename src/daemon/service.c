/*
 * service.c: write, remove and query ~/.config/systemd/user/irohds.service.
 *
 * The unit runs `irohds-daemon run` in the foreground (systemd supervises
 * it; the double fork of `start` is for when nothing does) and confines it:
 * the whole file system read-only except the data dir and the socket dir,
 * no new privileges, no devices, only the address families the daemon uses
 * (Unix socket now, UDP/QUIC and netlink for interface discovery later).
 *
 * systemctl is run as a child process with its output passed through; when
 * the user manager is absent we say that the detached daemon will be used
 * and succeed, because a missing service manager is not an error for irohds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/service.h"

#define UNIT_NAME "irohds.service"

int irohds_service_unit(const irohds_paths *paths, const char *exe, char *buf, size_t len)
{
    /* %t is the runtime dir (XDG_RUNTIME_DIR); ReadWritePaths needs existing
     * paths, so the run dir is given with a "-" prefix (ignored if absent).
     * An IROHDS_HOME in force at install time is carried into the unit, or
     * the service would serve a different data dir than the one installed. */
    const char *home = getenv("IROHDS_HOME");
    if (home && !home[0])
        home = NULL;
    int n = snprintf(buf, len,
                     "# Written by `irohds-daemon service install`; remove with `service uninstall`.\n"
                     "[Unit]\n"
                     "Description=irohds: decentralized function memoization daemon\n"
                     "\n"
                     "[Service]\n"
                     "Type=simple\n"
                     "%s%s%s"
                     "ExecStart=%s run\n"
                     "Restart=on-failure\n"
                     "RestartSec=2\n"
                     "UMask=0077\n"
                     "NoNewPrivileges=yes\n"
                     "ProtectSystem=strict\n"
                     "ProtectHome=read-only\n"
                     "ReadWritePaths=%s -%%t/irohds -%s\n"
                     "%s"
                     "PrivateDevices=yes\n"
                     "ProtectKernelTunables=yes\n"
                     "ProtectKernelModules=yes\n"
                     "ProtectKernelLogs=yes\n"
                     "ProtectControlGroups=yes\n"
                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n"
                     "RestrictNamespaces=yes\n"
                     "LockPersonality=yes\n"
                     "MemoryDenyWriteExecute=yes\n"
                     "RestrictRealtime=yes\n"
                     "RestrictSUIDSGID=yes\n"
                     "SystemCallArchitectures=native\n"
                     "SystemCallFilter=@system-service\n"
                     "\n"
                     "[Install]\n"
                     "WantedBy=default.target\n",
                     home ? "Environment=\"IROHDS_HOME=" : "", home ? paths->data_dir : "",
                     home ? "\"\n" : "",
                     exe, paths->data_dir, paths->run_dir,
                     /* A socket that fell back to /tmp (path too long for sun_path),
                      * or a data dir under /tmp, must stay shared with clients. */
                     strncmp(paths->run_dir, "/tmp/", 5) == 0 ||
                             strncmp(paths->data_dir, "/tmp/", 5) == 0
                         ? "# PrivateTmp off: the data dir or socket is under /tmp\n"
                         : "PrivateTmp=yes\n");
    return n < 0 || (size_t)n >= len ? -ENOBUFS : 0;
}

static int unit_path(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, len, "%s/systemd/user/" UNIT_NAME, xdg);
    else if (home && home[0])
        n = snprintf(out, len, "%s/.config/systemd/user/" UNIT_NAME, home);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Is a systemd user manager there to talk to? */
static int user_manager_running(void)
{
    char path[PATH_MAX];
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0])
        snprintf(path, sizeof(path), "%s/systemd", rt);
    else
        snprintf(path, sizeof(path), "/run/user/%lu/systemd", (unsigned long)getuid());
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Run systemctl --user ARGS...; its exit status, or -1 if it could not run. */
static int systemctl(const char *a, const char *b, const char *c, bool quiet)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execlp("systemctl", "systemctl", "--user", a, b, c, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void no_manager(void)
{
    printf("No systemd user manager here (container, CI or cluster node?): the detached daemon\n"
           "will be used instead; it starts on demand (`irohds-daemon start`).\n");
}

static int install(const irohds_paths *paths, const char *exe)
{
    char unit[8192], path[PATH_MAX], tmp[PATH_MAX + 8], dir[PATH_MAX];
    if (irohds_service_unit(paths, exe, unit, sizeof(unit)) < 0 || unit_path(path, sizeof(path)) < 0) {
        fprintf(stderr, "irohds-daemon: cannot place the unit file (HOME unset?)\n");
        no_manager();
        return 0;
    }
    if (!user_manager_running() || systemctl("is-system-running", NULL, NULL, true) == 127) {
        no_manager();
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = -1, rc = irohds_mkdirs(dir, 0755);
    if (rc == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rc < 0 || fd < 0 || irohds_write_all(fd, unit, strlen(unit)) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        fprintf(stderr, "irohds-daemon: writing %s: %s\n", path, strerror(rc < 0 ? -rc : errno));
        unlink(tmp);
        return 1;
    }
    printf("wrote %s\n", path);
    if (systemctl("daemon-reload", NULL, NULL, false) != 0 ||
        systemctl("enable", "--now", UNIT_NAME, false) != 0) {
        no_manager();
        return 0;
    }
    printf("enabled and started " UNIT_NAME "\n");
    return 0;
}

static int uninstall(void)
{
    char path[PATH_MAX];
    if (unit_path(path, sizeof(path)) < 0)
        return 0;
    if (user_manager_running())
        systemctl("disable", "--now", UNIT_NAME, true);
    if (unlink(path) == 0)
        printf("removed %s\n", path);
    else if (errno == ENOENT)
        printf("%s was not installed\n", path);
    else {
        fprintf(stderr, "irohds-daemon: removing %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (user_manager_running())
        systemctl("daemon-reload", NULL, NULL, true);
    return 0;
}

static int status(void)
{
    char path[PATH_MAX];
    struct stat st;
    bool installed = unit_path(path, sizeof(path)) == 0 && stat(path, &st) == 0;
    printf("unit file: %s (%s)\n", installed ? path : "-", installed ? "installed" : "not installed");
    if (!user_manager_running()) {
        no_manager();
        return 0;
    }
    if (installed)
        systemctl("status", "--no-pager", UNIT_NAME, false);
    return 0;
}

int irohds_service_main(const irohds_paths *paths, const char *exe, int argc, char **argv)
{
    const char *cmd = argc > 0 ? argv[0] : "";
    bool print = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--print"))
            print = true;
        else {
            fprintf(stderr, "irohds-daemon service: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (print || !strcmp(cmd, "--print")) {
        char unit[8192];
        if (irohds_service_unit(paths, exe, unit, sizeof(unit)) < 0)
            return 1;
        fputs(unit, stdout);
        return 0;
    }
    if (!strcmp(cmd, "install"))
        return install(paths, exe);
    if (!strcmp(cmd, "uninstall"))
        return uninstall();
    if (!strcmp(cmd, "status"))
        return status();
    fprintf(stderr, "usage: irohds-daemon service install|uninstall|status [--print]\n");
    return 2;
}
