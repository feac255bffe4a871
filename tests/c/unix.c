/* AF_UNIX sockets: socketpair of each type, message boundaries, flags, shutdown, SCM_RIGHTS and
 * SCM_CREDENTIALS, options, readiness, path and abstract names, listen/accept/connect, datagram
 * destinations.  Peers are forked processes; only results and errno names are printed. */
#include "rf.h"

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

static pid_t sender_pid; /* the pid SCM_CREDENTIALS should name */

static void pair(int type, int sv[2])
{
    MUST(socketpair(AF_UNIX, type, 0, sv));
}

static void show_poll(const char *label, int fd)
{
    struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    MUST(poll(&p, 1, 0));
    printf("%s: in=%d out=%d hup=%d rdhup=%d err=%d\n", label, !!(p.revents & POLLIN),
           !!(p.revents & POLLOUT), !!(p.revents & POLLHUP), !!(p.revents & POLLRDHUP),
           !!(p.revents & POLLERR));
}

static int intopt(int fd, int opt)
{
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0)
        return -errno;
    return v;
}

static void wait_child(const char *label, pid_t pid)
{
    int status;
    MUST(waitpid(pid, &status, 0));
    show_status(label, status);
}

static void stream_basics(void)
{
    int sv[2];
    char buf[64];
    struct stat st;
    pair(SOCK_STREAM, sv);
    SHOW("SO_TYPE", intopt(sv[0], SO_TYPE));
    SHOW("SO_DOMAIN", intopt(sv[0], SO_DOMAIN));
    SHOW("SO_PROTOCOL", intopt(sv[0], SO_PROTOCOL));
    SHOW("SO_ERROR", intopt(sv[0], SO_ERROR));
    SHOW("SO_ACCEPTCONN", intopt(sv[0], SO_ACCEPTCONN));
    SHOW("SO_BOGUS", intopt(sv[0], 9999));
    MUST(fstat(sv[0], &st));
    printf("fstat type: %s perms: %o size: %ld\n", ftype(st.st_mode), st.st_mode & 0777, (long)st.st_size);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", sv[0]);
    char link[64] = "";
    MUST(readlink(buf, link, sizeof link - 1));
    YESNO("fd link socket:[", strncmp(link, "socket:[", 8) == 0);
    show_poll("fresh", sv[0]);
    SHOW("write", write(sv[0], "hello", 5));
    SHOW("send", send(sv[0], " world", 6, 0));
    int n = -1;
    MUST(ioctl(sv[1], FIONREAD, &n));
    printf("FIONREAD: %d\n", n);
    show_poll("readable", sv[1]);
    memset(buf, 0, sizeof buf);
    SHOW("recv peek", recv(sv[1], buf, 4, MSG_PEEK));
    printf("peeked: %s\n", buf);
    memset(buf, 0, sizeof buf);
    SHOW("read (two writes merge)", read(sv[1], buf, sizeof buf));
    printf("got: %s\n", buf);
    SHOW("recv dontwait empty", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    struct iovec iov[2] = {{"ab", 2}, {"cde", 3}};
    SHOW("writev", writev(sv[0], iov, 2));
    char x[2], y[8] = "";
    struct iovec riov[2] = {{x, 2}, {y, 7}};
    SHOW("readv", readv(sv[1], riov, 2));
    printf("readv: %.2s|%s\n", x, y);
    SHOW("sendto with address on connected", sendto(sv[0], "z", 1, 0, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX, "/x"}, sizeof(struct sockaddr_un)));
    SHOW("recv MSG_TRUNC ignored on stream", send(sv[0], "q", 1, 0));
    SHOW("recv", recv(sv[1], buf, sizeof buf, 0));
    SHOW("lseek", lseek(sv[0], 0, SEEK_SET));
    SHOW("pread", pread(sv[0], buf, 1, 0));
    /* shutdown: a half-close gives end-of-file, writing after it EPIPE */
    SHOW("shutdown bad how", shutdown(sv[0], 7));
    SHOW("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
    show_poll("after SHUT_WR (writer)", sv[0]);
    show_poll("after SHUT_WR (reader)", sv[1]);
    SHOW("read at eof", read(sv[1], buf, sizeof buf));
    SHOW("send after SHUT_WR nosignal", send(sv[0], "x", 1, MSG_NOSIGNAL));
    SHOW("reverse direction still works", write(sv[1], "back", 4));
    SHOW("read reverse", read(sv[0], buf, sizeof buf));
    close(sv[0]);
    close(sv[1]);

    /* SIGPIPE: default kills, MSG_NOSIGNAL and SIG_IGN do not */
    pair(SOCK_STREAM, sv);
    close(sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        write(sv[0], "x", 1);
        _exit(0);
    }
    wait_child("write to closed peer", pid);
    signal(SIGPIPE, SIG_IGN);
    SHOW("write closed peer (SIGPIPE ignored)", write(sv[0], "x", 1));
    signal(SIGPIPE, SIG_DFL);
    SHOW("send closed peer nosignal", send(sv[0], "x", 1, MSG_NOSIGNAL));
    show_poll("peer closed", sv[0]);
    SHOW("read closed peer", read(sv[0], buf, sizeof buf));
    close(sv[0]);

    /* closing with unread data resets the peer once */
    pair(SOCK_STREAM, sv);
    MUST(write(sv[0], "unread", 6));
    close(sv[1]);
    show_poll("reset", sv[0]);
    SHOW("read after reset", read(sv[0], buf, sizeof buf));
    SHOW("read again", read(sv[0], buf, sizeof buf));
    close(sv[0]);

    /* nonblocking: fill the buffer */
    MUST(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    SHOW("nonblock flag", fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    SHOW("cloexec flag", fcntl(sv[0], F_GETFD));
    SHOW("read empty nonblock", read(sv[1], buf, sizeof buf));
    static char big[1 << 16];
    long total = 0, r;
    while ((r = write(sv[0], big, sizeof big)) > 0)
        total += r;
    printf("filled: %s %s\n", total > 100000 ? "yes" : "no", errname(errno));
    show_poll("full", sv[0]);
    long drained = 0;
    while ((r = read(sv[1], big, sizeof big)) > 0)
        drained += r;
    YESNO("drained all", drained == total);
    show_poll("drained", sv[0]);
    close(sv[0]);
    close(sv[1]);
}

static void stream_blocking(void)
{
    int sv[2];
    char buf[64];
    pair(SOCK_STREAM, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        memset(buf, 0, sizeof buf);
        long n = read(sv[1], buf, sizeof buf);
        /* a large transfer back, read with MSG_WAITALL */
        static char out[300000];
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = (char)(i * 7);
        long w = write(sv[1], out, sizeof out);
        _exit(n == 4 && memcmp(buf, "wake", 4) == 0 && w == sizeof out ? 0 : 1);
    }
    close(sv[1]);
    rf_wait_sleeping(pid);
    SHOW("parent write", write(sv[0], "wake", 4));
    static char in[300000];
    SHOW("recv waitall", recv(sv[0], in, sizeof in, MSG_WAITALL));
    int ok = 1;
    for (size_t i = 0; i < sizeof in; i++)
        ok &= in[i] == (char)(i * 7);
    YESNO("content intact", ok);
    wait_child("child", pid);
    SHOW("eof", read(sv[0], buf, sizeof buf));
    close(sv[0]);
}

static void datagrams(int type, const char *name)
{
    int sv[2];
    char buf[64];
    printf("-- %s\n", name);
    pair(type, sv);
    SHOW("SO_TYPE", intopt(sv[0], SO_TYPE));
    SHOW("send a", send(sv[0], "first", 5, 0));
    SHOW("send b", send(sv[0], "second!", 7, 0));
    SHOW("send empty", send(sv[0], "", 0, 0));
    int n = -1;
    MUST(ioctl(sv[1], FIONREAD, &n));
    printf("FIONREAD: %d\n", n);
    memset(buf, 0, sizeof buf);
    SHOW("recv small", recv(sv[1], buf, 3, 0));
    printf("got: %s\n", buf);
    SHOW("recv MSG_TRUNC peek", recv(sv[1], buf, 2, MSG_TRUNC | MSG_PEEK));
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    SHOW("recvmsg cut", recvmsg(sv[1], &mh, 0));
    printf("msg_flags trunc: %d\n", !!(mh.msg_flags & MSG_TRUNC));
    SHOW("recv empty datagram", recv(sv[1], buf, sizeof buf, 0));
    SHOW("recv none", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    static char huge[300000];
    SHOW("send huge", send(sv[0], huge, sizeof huge, 0));
    SHOW("shutdown SHUT_RD", shutdown(sv[1], SHUT_RD));
    SHOW("recv after SHUT_RD", recv(sv[1], buf, sizeof buf, 0));
    show_poll("after SHUT_RD", sv[1]);
    close(sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        long r = send(sv[0], "x", 1, 0);
        printf("child send to closed: %ld %s\n", r, r < 0 ? errname(errno) : "");
        _exit(0);
    }
    wait_child("send to closed peer", pid);
    SHOW("send again", send(sv[0], "x", 1, MSG_NOSIGNAL));
    show_poll("peer closed", sv[0]);
    SHOW("recv from closed", recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    close(sv[0]);
}

static int send_fds(int sock, const int *fds, int n, const char *data)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(sock, &mh, 0);
}

/* Receive into a control buffer of `room` bytes; prints what came. */
static void recv_fds(const char *label, int sock, size_t room, int flags)
{
    char cbuf[256], data[32] = "";
    struct iovec iov = {data, sizeof data - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = room ? cbuf : NULL,
                        .msg_controllen = room};
    long r = recvmsg(sock, &mh, flags);
    if (r < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    printf("%s: %ld %s ctrunc=%d controllen=%s\n", label, r, data, !!(mh.msg_flags & MSG_CTRUNC),
           mh.msg_controllen == 0 ? "0" : "some");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            printf("  rights: %d fds\n", nfds);
            for (int i = 0; i < nfds; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                char buf[32] = "";
                long n = read(fd, buf, sizeof buf - 1);
                printf("  fd %d: cloexec=%d read %ld %s\n", i, fcntl(fd, F_GETFD), n, buf);
                close(fd);
            }
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cr;
            memcpy(&cr, CMSG_DATA(c), sizeof cr);
            printf("  creds: pid ok=%d uid ok=%d gid ok=%d\n", cr.pid == sender_pid,
                   cr.uid == getuid(), cr.gid == getgid());
        }
    }
}

static int pipe_with(const char *text)
{
    int p[2];
    MUST(pipe(p));
    MUST(write(p[1], text, strlen(text)));
    close(p[1]);
    return p[0];
}

static void rights(int type, const char *name)
{
    int sv[2];
    printf("-- rights over %s\n", name);
    pair(type, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        int a = pipe_with("alpha"), b = pipe_with("beta");
        int two[2] = {a, b};
        printf("child send 2: %d\n", send_fds(sv[1], two, 2, "m1"));
        close(a);
        close(b);
        a = pipe_with("gamma");
        b = pipe_with("delta");
        int more[2] = {a, b};
        printf("child send cut: %d\n", send_fds(sv[1], more, 2, "m2"));
        printf("child send cloexec: %d\n", send_fds(sv[1], &a, 1, "m3"));
        printf("child send none-room: %d\n", send_fds(sv[1], &b, 1, "m4"));
        int bad = 999;
        int r = send_fds(sv[1], &bad, 1, "m5");
        printf("child send bad fd: %d %s\n", r, errname(errno));
        _exit(0);
    }
    close(sv[1]);
    wait_child("rights sender", pid);
    recv_fds("recv 2", sv[0], 256, 0);
    recv_fds("recv room for 1", sv[0], CMSG_SPACE(sizeof(int)), 0);
    recv_fds("recv cloexec", sv[0], 256, MSG_CMSG_CLOEXEC);
    recv_fds("recv no control", sv[0], 0, 0);
    recv_fds("recv end", sv[0], 256, MSG_DONTWAIT);
    close(sv[0]);

    /* a socket passes itself's peer; data read through the passed socket */
    pair(type, sv);
    int inner[2];
    pair(SOCK_STREAM, inner);
    printf("send socket: %d\n", send_fds(sv[0], &inner[1], 1, "s"));
    close(inner[1]);
    char cbuf[CMSG_SPACE(sizeof(int))], data[8];
    struct iovec iov = {data, sizeof data};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    MUST(recvmsg(sv[1], &mh, 0));
    int got;
    memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof got);
    SHOW("write via passed socket", write(got, "via", 3));
    memset(data, 0, sizeof data);
    SHOW("read other end", read(inner[0], data, sizeof data));
    printf("data: %s\n", data);
    SHOW("passed socket SO_TYPE", intopt(got, SO_TYPE));
    close(got);
    close(inner[0]);
    close(sv[0]);
    close(sv[1]);
}

static void credentials(void)
{
    int sv[2];
    pair(SOCK_DGRAM, sv);
    int on = 1;
    SHOW("SO_PASSCRED", setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    SHOW("SO_PASSCRED get", intopt(sv[1], SO_PASSCRED));
    pid_t pid = fork();
    if (pid == 0) {
        printf("child send: %ld\n", send(sv[0], "cred", 4, 0));
        _exit(0);
    }
    sender_pid = pid;
    wait_child("cred sender", pid);
    recv_fds("recv creds", sv[1], 256, 0);
    /* claimed credentials: its own pass, another pid does not (unprivileged or not, checked natively) */
    char cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct ucred cr = {getpid(), getuid(), getgid()};
    struct iovec iov = {"own", 3};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof cr);
    memcpy(CMSG_DATA(c), &cr, sizeof cr);
    SHOW("sendmsg own creds", sendmsg(sv[0], &mh, 0));
    sender_pid = getpid();
    recv_fds("recv own creds", sv[1], 256, 0);
    c->cmsg_len = 8;
    SHOW("sendmsg bad cmsg_len", sendmsg(sv[0], &mh, 0));
    c->cmsg_len = CMSG_LEN(sizeof cr);
    c->cmsg_type = 77;
    SHOW("sendmsg bad cmsg type", sendmsg(sv[0], &mh, 0));
    struct ucred peer;
    socklen_t len = sizeof peer;
    MUST(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &peer, &len));
    printf("SO_PEERCRED: len %d pid ok=%d uid ok=%d gid ok=%d\n", (int)len, peer.pid == getpid(),
           peer.uid == geteuid(), peer.gid == getegid());
    close(sv[0]);
    close(sv[1]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    len = sizeof peer;
    MUST(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &peer, &len));
    printf("unconnected SO_PEERCRED: pid %d uid %d gid %d\n", peer.pid, (int)peer.uid, (int)peer.gid);
    int v = 10000;
    SHOW("set SO_SNDBUF", setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    SHOW("SO_SNDBUF", intopt(s, SO_SNDBUF));
    v = 100;
    SHOW("set SO_RCVBUF", setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    SHOW("SO_RCVBUF", intopt(s, SO_RCVBUF));
    SHOW("set short", setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, 2));
    SHOW("set SO_REUSEADDR", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    SHOW("SO_REUSEADDR", intopt(s, SO_REUSEADDR));
    SHOW("other level", setsockopt(s, 6, 1, &v, sizeof v));
    close(s);
}

static socklen_t un_addr(struct sockaddr_un *a, const char *path, int abstract)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        memcpy(a->sun_path + 1, path, strlen(path));
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    }
    strcpy(a->sun_path, path);
    return sizeof *a;
}

static void names(const char *base)
{
    char dir[96];  /* (a socket path must fit sun_path) */
    snprintf(dir, sizeof dir, "%s/rf-unix-XXXXXX", base);
    MUST(mkdtemp(dir) ? 0 : -1);
    char path[128], file[128];
    snprintf(path, sizeof path, "%s/sock", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    close(open(file, O_CREAT | O_WRONLY, 0644));
    umask(022);
    struct sockaddr_un a, got;
    socklen_t alen = un_addr(&a, path, 0), glen;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("listen unbound", listen(l, 5));
    SHOW("bind", bind(l, (struct sockaddr *)&a, alen));
    SHOW("bind again", bind(l, (struct sockaddr *)&a, alen));
    struct stat st;
    MUST(stat(path, &st));
    printf("node: %s %o\n", ftype(st.st_mode), st.st_mode & 0777);
    SHOW("open node", open(path, O_RDONLY));
    glen = sizeof got;
    MUST(getsockname(l, (struct sockaddr *)&got, &glen));
    printf("getsockname: len ok=%d same=%d\n", glen == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1,
           strcmp(got.sun_path, path) == 0);
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind taken", bind(other, (struct sockaddr *)&a, alen));
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SHOW("connect not listening", connect(c, (struct sockaddr *)&a, alen));
    SHOW("listen", listen(l, 1));
    SHOW("SO_ACCEPTCONN", intopt(l, SO_ACCEPTCONN));
    MUST(fcntl(l, F_SETFL, O_NONBLOCK));
    SHOW("accept none", accept(l, NULL, NULL));
    MUST(fcntl(l, F_SETFL, 0));
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    SHOW("connect wrong type", connect(d, (struct sockaddr *)&a, alen));
    SHOW("listen dgram", listen(d, 1));
    struct sockaddr_un bad;
    socklen_t blen = un_addr(&bad, file, 0);
    SHOW("connect to file", connect(other, (struct sockaddr *)&bad, blen));
    blen = un_addr(&bad, "/nonexistent-rf/sock", 0);
    SHOW("connect nonexistent", connect(other, (struct sockaddr *)&bad, blen));
    bad.sun_family = AF_INET;
    SHOW("connect bad family", connect(other, (struct sockaddr *)&bad, blen));
    SHOW("connect short", connect(other, (struct sockaddr *)&a, 2));
    SHOW("read unconnected", read(other, path + 100, 1));
    SHOW("write unconnected", write(other, "x", 1));
    SHOW("getpeername unconnected", getpeername(other, (struct sockaddr *)&got, &glen));
    SHOW("accept on unlistening", accept(other, NULL, NULL));
    /* backlog 1: two connections wait, the third would block */
    SHOW("connect 1", connect(c, (struct sockaddr *)&a, alen));
    SHOW("connect again", connect(c, (struct sockaddr *)&a, alen));
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int c3 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SHOW("connect 2", connect(c2, (struct sockaddr *)&a, alen));
    SHOW("connect 3 (backlog full)", connect(c3, (struct sockaddr *)&a, alen));
    show_poll("listener", l);
    SHOW("write before accept", write(c, "early", 5));
    glen = sizeof got;
    memset(&got, 0x55, sizeof got);
    int s = accept4(l, (struct sockaddr *)&got, &glen, SOCK_CLOEXEC);
    printf("accept4: %s peer addr len %d cloexec %d\n", s >= 0 ? "ok" : errname(errno), (int)glen,
           fcntl(s, F_GETFD));
    char buf[32] = "";
    SHOW("read accepted", read(s, buf, sizeof buf));
    printf("data: %s\n", buf);
    glen = sizeof got;
    MUST(getsockname(s, (struct sockaddr *)&got, &glen));
    printf("accepted getsockname is listener's: %d\n", strcmp(got.sun_path, path) == 0);
    glen = sizeof got;
    MUST(getpeername(c, (struct sockaddr *)&got, &glen));
    printf("client getpeername is listener's: %d\n", strcmp(got.sun_path, path) == 0);
    glen = sizeof got;
    MUST(getsockname(c, (struct sockaddr *)&got, &glen));
    printf("client getsockname len %d\n", (int)glen);
    glen = 4;
    MUST(getpeername(c, (struct sockaddr *)&got, &glen));
    printf("short getpeername: the full length %d\n",
           glen == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    SHOW("connect 3 now", connect(c3, (struct sockaddr *)&a, alen));
    close(s);
    /* closing the listener resets the connections it had not accepted */
    close(l);
    SHOW("read from unaccepted", read(c2, buf, sizeof buf));
    SHOW("connect after close", connect(other, (struct sockaddr *)&a, alen));
    SHOW("unlink", unlink(path));
    close(c);
    close(c2);
    close(c3);
    close(other);
    close(d);

    /* a blocking accept woken by a connecting child */
    l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    MUST(bind(l, (struct sockaddr *)&a, alen));
    MUST(listen(l, 4));
    pid_t pid = fork();
    if (pid == 0) {
        int cc = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        rf_wait_sleeping(getppid());
        int ok = connect(cc, (struct sockaddr *)&a, alen) == 0;
        ok &= send(cc, "packet", 6, 0) == 6;
        ok &= send(cc, "two", 3, 0) == 3;
        _exit(ok ? 0 : 1);
    }
    s = accept(l, NULL, NULL);
    printf("blocking accept: %s\n", s >= 0 ? "ok" : errname(errno));
    wait_child("connector", pid);
    memset(buf, 0, sizeof buf);
    SHOW("seqpacket recv", recv(s, buf, 3, 0));
    SHOW("seqpacket recv next", recv(s, buf, sizeof buf, 0));
    SHOW("seqpacket eof", recv(s, buf, sizeof buf, 0));
    signal(SIGPIPE, SIG_IGN);
    SHOW("seqpacket send to closed", send(s, "x", 1, 0));
    signal(SIGPIPE, SIG_DFL);
    close(s);
    close(l);
    unlink(path);

    /* abstract names, autobind */
    char abs_name[64];
    snprintf(abs_name, sizeof abs_name, "rf-unix-%d", getpid());
    alen = un_addr(&a, abs_name, 1);
    int r1 = socket(AF_UNIX, SOCK_DGRAM, 0), r2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    SHOW("bind abstract", bind(r1, (struct sockaddr *)&a, alen));
    SHOW("bind abstract taken", bind(r2, (struct sockaddr *)&a, alen));
    glen = sizeof got;
    MUST(getsockname(r1, (struct sockaddr *)&got, &glen));
    printf("abstract getsockname len ok=%d\n", glen == alen);
    SHOW("autobind", bind(r2, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path)));
    glen = sizeof got;
    MUST(getsockname(r2, (struct sockaddr *)&got, &glen));
    printf("autobind name: len %d abstract %d\n", (int)glen, got.sun_path[0] == 0);
    /* datagrams to a name: the sender's address comes with them */
    int u = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    SHOW("sendto unbound", sendto(u, "anon", 4, 0, (struct sockaddr *)&a, alen));
    SHOW("sendto bound", sendto(r2, "named", 5, 0, (struct sockaddr *)&a, alen));
    SHOW("send unconnected", send(u, "x", 1, 0));
    glen = sizeof got;
    memset(buf, 0, sizeof buf);
    SHOW("recvfrom anon", recvfrom(r1, buf, sizeof buf, 0, (struct sockaddr *)&got, &glen));
    printf("from len %d\n", (int)glen);
    glen = sizeof got;
    SHOW("recvfrom named", recvfrom(r1, buf, sizeof buf, 0, (struct sockaddr *)&got, &glen));
    printf("from len %d abstract %d\n", (int)glen, got.sun_path[0] == 0);
    int sent = 0;
    while (sendto(u, "q", 1, 0, (struct sockaddr *)&a, alen) == 1)
        sent++;
    printf("queued before full: %d %s\n", sent, errname(errno));
    struct pollfd p = {u, POLLOUT, 0};
    SHOW("connect dgram", connect(u, (struct sockaddr *)&a, alen));
    SHOW("poll connected to full", poll(&p, 1, 0));
    SHOW("recv one", recv(r1, buf, sizeof buf, 0));
    SHOW("connect r2 to r1", connect(r2, (struct sockaddr *)&a, alen));
    SHOW("r1 connects to u", connect(r1, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX, ""}, 2));
    struct sockaddr_un gaddr;
    socklen_t gl = sizeof gaddr;
    MUST(getsockname(r2, (struct sockaddr *)&gaddr, &gl));
    SHOW("r1 connects to r2", connect(r1, (struct sockaddr *)&gaddr, gl));
    SHOW("u sends to r1 (connected elsewhere)", send(u, "x", 1, 0));
    struct sockaddr unspec = {AF_UNSPEC};
    SHOW("disconnect", connect(u, &unspec, sizeof unspec));
    SHOW("send disconnected", send(u, "x", 1, 0));
    close(u);
    close(r1);
    close(r2);
    unlink(file);
    rmdir(dir);
}

static void families(void)
{
    SHOW("socket bad type", socket(AF_UNIX, 99, 0));
    SHOW("socket bad protocol", socket(AF_UNIX, SOCK_STREAM, 5));
    SHOW("socket bad flags", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
    int s = socket(AF_UNIX, SOCK_RAW, 0);
    SHOW("SOCK_RAW is datagram", intopt(s, SO_TYPE));
    close(s);
    SHOW("socket family 200", socket(200, SOCK_STREAM, 0));
    int p[2];
    MUST(pipe(p));
    SHOW("getsockopt on pipe", intopt(p[0], SO_TYPE));
    SHOW("shutdown on pipe", shutdown(p[0], SHUT_RD));
    SHOW("shutdown bad fd", shutdown(999, SHUT_RD));
    close(p[0]);
    close(p[1]);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* Set SO_RCVTIMEO or SO_SNDTIMEO to `usec` microseconds (tv_sec `sec`). */
static int set_timeout(int fd, int opt, long sec, long usec)
{
    struct timeval tv = {sec, usec};
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* SO_RCVTIMEO and SO_SNDTIMEO: a blocking call waits at most that long, then fails with
 * EAGAIN or returns what it moved; a signal interrupts it even with SA_RESTART. */
static void timeouts(void)
{
    int sv[2];
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct timeval tv;
    socklen_t len = sizeof tv;
    MUST(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    printf("default timeout: %ld.%06ld len %d\n", (long)tv.tv_sec, (long)tv.tv_usec, (int)len);
    SHOW("bad usec", set_timeout(sv[0], SO_RCVTIMEO, 0, 1000000));
    SHOW("set 0.1s", set_timeout(sv[0], SO_RCVTIMEO, 0, 100000));
    len = sizeof tv;
    MUST(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    printf("read back: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    char buf[4096];
    double start = seconds();
    SHOW("recv, nothing comes", recv(sv[0], buf, sizeof buf, 0));
    double took = seconds() - start;
    printf("waited about the timeout: %d\n", took >= 0.09 && took < 3);
    MUST(write(sv[1], "abc", 3) == 3 ? 0 : -1);
    SHOW("MSG_WAITALL, 3 of 10 came", recv(sv[0], buf, 10, MSG_WAITALL));
    SHOW("read, nothing comes", read(sv[0], buf, sizeof buf));

    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, &old);
    SHOW("set 5s", set_timeout(sv[0], SO_RCVTIMEO, 5, 0));
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    start = seconds();
    SHOW("recv, a signal with SA_RESTART", recv(sv[0], buf, sizeof buf, 0));
    printf("interrupted before the timeout: %d\n", seconds() - start < 4);
    sigaction(SIGALRM, &old, NULL);

    SHOW("set negative", set_timeout(sv[0], SO_RCVTIMEO, -1, 0));
    len = sizeof tv;
    MUST(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    printf("negative reads back: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    SHOW("recv, negative: no wait", recv(sv[0], buf, sizeof buf, 0));
    SHOW("set 0: none", set_timeout(sv[0], SO_RCVTIMEO, 0, 0));

    int small = 4096;
    MUST(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    SHOW("SO_SNDTIMEO 0.1s", set_timeout(sv[1], SO_SNDTIMEO, 0, 100000));
    static char big[1 << 20];
    long sent = send(sv[1], big, sizeof big, 0);
    printf("send of 1 MiB: some, not all: %d\n", sent > 0 && sent < (long)sizeof big);
    int flags = fcntl(sv[1], F_GETFL);
    fcntl(sv[1], F_SETFL, flags | O_NONBLOCK);
    while (send(sv[1], big, sizeof big, 0) > 0)
        ;
    fcntl(sv[1], F_SETFL, flags);
    SHOW("send, no room at all", send(sv[1], big, 10, 0));
    close(sv[0]);
    close(sv[1]);

    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    socklen_t alen = un_addr(&a, "rf-timeo", 1);
    MUST(bind(l, (struct sockaddr *)&a, alen));
    MUST(listen(l, 1));
    SHOW("accept timeout", set_timeout(l, SO_RCVTIMEO, 0, 50000));
    SHOW("accept, nobody connects", accept(l, NULL, NULL));
    close(l);
}

/* A blocking write of 4 MiB to `w` (a stream socket or a pipe nobody reads), interrupted by a
 * signal (SA_RESTART) once the buffer is full: it returns the count it moved, and that is
 * exactly what `r` holds. */
static void interrupted_write(const char *what, int w, int r)
{
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    static char big[4 << 20];
    long sent = write(w, big, sizeof big);
    sigaction(SIGALRM, &old, NULL);
    printf("%s: interrupted write returns a part: %d\n", what, sent > 0 && sent < (long)sizeof big);
    long queued = 0, n;
    fcntl(r, F_SETFL, O_NONBLOCK);
    while ((n = read(r, big, sizeof big)) > 0)
        queued += n;
    printf("%s: what is queued is what it returned: %d\n", what, queued == sent);
    close(w);
    close(r);
}

/* sendmmsg and recvmmsg: several datagrams in one call, each message's msg_len set. */
static void several_messages(void)
{
    int sv[2];
    MUST(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    char out[3][8] = {"one", "two!", "three"};
    struct iovec oiov[3];
    struct mmsghdr omsg[3];
    memset(omsg, 0, sizeof omsg);
    for (int i = 0; i < 3; i++) {
        oiov[i].iov_base = out[i];
        oiov[i].iov_len = strlen(out[i]);
        omsg[i].msg_hdr.msg_iov = &oiov[i];
        omsg[i].msg_hdr.msg_iovlen = 1;
    }
    SHOW("sendmmsg 3", sendmmsg(sv[0], omsg, 3, 0));
    printf("msg_len: %u %u %u\n", omsg[0].msg_len, omsg[1].msg_len, omsg[2].msg_len);
    SHOW("sendmmsg 0", sendmmsg(sv[0], omsg, 0, 0));
    SHOW("sendmmsg bad vector", sendmmsg(sv[0], (struct mmsghdr *)8, 1, 0));

    char in[5][16];
    struct iovec iiov[5];
    struct mmsghdr imsg[5];
    memset(imsg, 0, sizeof imsg);
    memset(in, 0, sizeof in);
    for (int i = 0; i < 5; i++) {
        iiov[i].iov_base = in[i];
        iiov[i].iov_len = sizeof in[i] - 1;
        imsg[i].msg_hdr.msg_iov = &iiov[i];
        imsg[i].msg_hdr.msg_iovlen = 1;
    }
    SHOW("recvmmsg 5, MSG_WAITFORONE", recvmmsg(sv[1], imsg, 5, MSG_WAITFORONE, NULL));
    printf("got: %s(%u) %s(%u) %s(%u)\n", in[0], imsg[0].msg_len, in[1], imsg[1].msg_len, in[2], imsg[2].msg_len);
    SHOW("recvmmsg, nothing there, MSG_DONTWAIT", recvmmsg(sv[1], imsg, 5, MSG_DONTWAIT, NULL));
    MUST(sendmmsg(sv[0], omsg, 2, 0) == 2 ? 0 : -1);
    struct timespec left = {5, 0};
    SHOW("recvmmsg 5, a timeout", recvmmsg(sv[1], imsg, 2, 0, &left));
    printf("timeout left, written back: %d\n", left.tv_sec <= 5 && left.tv_sec >= 3);
    struct timespec bad = {0, 2000000000};
    SHOW("recvmmsg, a bad timeout", recvmmsg(sv[1], imsg, 2, 0, &bad));
    close(sv[0]);
    close(sv[1]);
}

static void readiness(void)
{
    int sv[2];
    pair(SOCK_STREAM, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN | EPOLLRDHUP, {.fd = sv[1]}}, out[2];
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    SHOW("epoll nothing", epoll_wait(ep, out, 2, 0));
    pid_t pid = fork();
    if (pid == 0) {
        rf_wait_sleeping(getppid());
        write(sv[0], "e", 1);
        rf_wait_sleeping(getppid());
        shutdown(sv[0], SHUT_WR);
        _exit(0);
    }
    SHOW("epoll wakes on data", epoll_wait(ep, out, 2, 10000));
    printf("events in=%d rdhup=%d\n", !!(out[0].events & EPOLLIN), !!(out[0].events & EPOLLRDHUP));
    char c;
    SHOW("read", read(sv[1], &c, 1));
    struct pollfd p = {sv[1], POLLIN, 0};
    SHOW("poll wakes on shutdown", poll(&p, 1, 10000));
    printf("revents in=%d rdhup=%d\n", !!(p.revents & POLLIN), !!(p.revents & POLLRDHUP));
    wait_child("child", pid);
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    rf_init();
    stream_basics();
    stream_blocking();
    datagrams(SOCK_DGRAM, "dgram");
    datagrams(SOCK_SEQPACKET, "seqpacket");
    rights(SOCK_STREAM, "stream");
    rights(SOCK_DGRAM, "dgram");
    credentials();
    names(argc > 1 ? argv[1] : "/tmp");  /* where socket nodes are made */
    families();
    readiness();
    timeouts();
    several_messages();
    int sv[2], p[2];
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    interrupted_write("socket", sv[0], sv[1]);
    MUST(pipe(p));
    interrupted_write("pipe", p[1], p[0]);
    printf("done\n");
    return 0;
}
