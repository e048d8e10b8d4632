/*
 * client.c: the blocking IPC client used by the Python extension and the CLI.
 *
 * One Unix stream socket, one request at a time.  Blocking is what the
 * callers want (the Python wrapper releases the GIL around it), but a stuck
 * daemon must not hang a user's program: every wait goes through poll() with
 * a deadline.  Every send and receive uses MSG_DONTWAIT, so a short write
 * or an empty socket never sleeps outside that poll.  A result file's descriptor rides along
 * with the frame's first bytes as SCM_RIGHTS ancillary data.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline (< 0: none).  0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return 0; /* readable, writable or hung up: the next syscall tells which */
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int irohds_ipc_connect(irohds_ipc_client *c, const char *socket_path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    c->fd = -1;
    c->next_id = 1;
    c->buf_len = c->buf_off = 0;
    size_t n = strlen(socket_path);
    if (n >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, socket_path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Blocking connect: on a Unix socket it completes at once, or waits while
     * the daemon's listen backlog is full (a non-blocking one would fail with
     * EAGAIN then).  Only the I/O after it is polled against a deadline. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno == EAGAIN ? -ECONNREFUSED : -errno;
        close(fd);
        return e;
    }
    c->fd = fd;
    return 0;
}

void irohds_ipc_close(irohds_ipc_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->buf_len = c->buf_off = 0;
}

/* Write all of buf; the descriptor goes with the first byte sent. */
static int send_all(int sock, const uint8_t *buf, size_t len, int fd, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        struct iovec iov = {.iov_base = (void *)(buf + off), .iov_len = len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            struct cmsghdr hdr;
            char space[CMSG_SPACE(sizeof(int))];
        } ctl;
        if (fd >= 0 && off == 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.space;
            mh.msg_controllen = sizeof(ctl.space);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(sock, POLLOUT, deadline);
            if (r < 0)
                return r;
            continue;
        }
        return n < 0 && errno != EPIPE ? -errno : -ECONNRESET;
    }
    return 0;
}

static int send_frame(irohds_ipc_client *c, irohds_ipc_msg *m, int fd, int64_t deadline)
{
    if (c->fd < 0)
        return -ENOTCONN;
    m->id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    uint8_t small[4096];
    uint8_t *buf = small;
    int n = irohds_ipc_encode(m, small, sizeof(small));
    if (n == -ENOBUFS) { /* rare: a large text field */
        buf = malloc(IROHDS_IPC_MAX_FRAME + 4);
        if (!buf)
            return -ENOMEM;
        n = irohds_ipc_encode(m, buf, IROHDS_IPC_MAX_FRAME + 4);
    }
    int r = n < 0 ? n : send_all(c->fd, buf, (size_t)n, fd, deadline);
    if (buf != small)
        free(buf);
    return r;
}

int irohds_ipc_send(irohds_ipc_client *c, irohds_ipc_msg *m, int fd)
{
    return send_frame(c, m, fd, -1);
}

/* Read what is available into c->buf; close any descriptor the peer sends
 * (the daemon never should, and a leaked fd would outlive us). */
static int read_some(irohds_ipc_client *c, int64_t deadline)
{
    for (;;) {
        struct iovec iov = {.iov_base = c->buf + c->buf_len,
                            .iov_len = sizeof(c->buf) - c->buf_len};
        union {
            struct cmsghdr hdr;
            char space[CMSG_SPACE(sizeof(int) * 8)];
        } ctl;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
                            .msg_controllen = sizeof(ctl.space)};
        ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n >= 0) {
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                    continue;
                size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int stray;
                    memcpy(&stray, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                    close(stray);
                }
            }
            if (n == 0)
                return -ECONNRESET;
            c->buf_len += (size_t)n;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == ECONNRESET ? -ECONNRESET : -errno;
        int r = wait_fd(c->fd, POLLIN, deadline);
        if (r < 0)
            return r;
    }
}

static int recv_frame(irohds_ipc_client *c, irohds_ipc_msg *m, int64_t deadline)
{
    if (c->fd < 0)
        return -ENOTCONN;
    /* The previous reply's strings die here, as the header promises. */
    if (c->buf_off) {
        memmove(c->buf, c->buf + c->buf_off, c->buf_len - c->buf_off);
        c->buf_len -= c->buf_off;
        c->buf_off = 0;
    }
    for (;;) {
        int n = irohds_ipc_decode(c->buf, c->buf_len, m);
        if (n > 0) {
            c->buf_off = (size_t)n;
            return 0;
        }
        if (n < 0)
            return n == -EMSGSIZE || n == -EPROTONOSUPPORT ? n : -EPROTO;
        int r = read_some(c, deadline);
        if (r < 0)
            return r;
    }
}

int irohds_ipc_recv(irohds_ipc_client *c, irohds_ipc_msg *m, int timeout_ms)
{
    return recv_frame(c, m, timeout_ms < 0 ? -1 : now_ms() + timeout_ms);
}

int irohds_ipc_call(irohds_ipc_client *c, irohds_ipc_msg *req, int fd, irohds_ipc_msg *reply,
                    int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int r = send_frame(c, req, fd, deadline);
    if (r < 0)
        return r;
    return recv_frame(c, reply, deadline);
}
