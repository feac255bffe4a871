/* inotify: events for changes made in a fresh directory (create, write, rename,
 * attributes, open/close, mkdir/rmdir, unlink, links, FIFOs), event coalescing,
 * watches on directories and files, IN_ONESHOT, IN_MASK_ADD/IN_MASK_CREATE,
 * rm_watch's IN_IGNORED, non-blocking and blocking reads, poll/epoll readiness,
 * FIONREAD, short reads, and the errors of init/add_watch/rm_watch. */
#include "rf.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static char dir[200];

static const char *path(const char *name)
{
    static char buf[2][300];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

static void masks(uint32_t m, char *out, size_t size)
{
    static const struct { uint32_t bit; const char *name; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"},
        {IN_ISDIR, "ISDIR"},
    };
    out[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) {
            strncat(out, out[0] ? "|" : "", size - strlen(out) - 1);
            strncat(out, names[i].name, size - strlen(out) - 1);
            m &= ~names[i].bit;
        }
    if (m)
        snprintf(out + strlen(out), size - strlen(out), "|%#x", m);
}

/* Print every queued event; cookies as "cookie" (nonzero) and "same" when equal to the
 * previous nonzero cookie. */
static void drain(int fd, const char *label)
{
    char buf[4096] __attribute__((aligned(8)));
    static uint32_t last_cookie;
    printf("-- %s\n", label);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno != EAGAIN)
                printf("read: %s\n", errname(errno));
            return;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            char m[160];
            masks(ev->mask, m, sizeof m);
            const char *cookie = "";
            if (ev->cookie) {
                cookie = ev->cookie == last_cookie ? " cookie=same" : " cookie=new";
                last_cookie = ev->cookie;
            }
            printf("wd=%d %s%s%s len=%u%s\n", ev->wd, m, ev->len ? " " : "", ev->len ? ev->name : "",
                   ev->len, cookie);
            p += sizeof *ev + ev->len;
        }
    }
}

static void touch(const char *name)
{
    int f = open(path(name), O_CREAT | O_WRONLY, 0644);
    MUST(f);
    close(f);
}

static void errors(int ifd)
{
    int wd;
    errno = 0;
    SHOW("init1 bad flags", inotify_init1(1));
    SHOW("add_watch bad fd", inotify_add_watch(999, dir, IN_ALL_EVENTS));
    SHOW("add_watch not inotify", inotify_add_watch(1, dir, IN_ALL_EVENTS));
    SHOW("add_watch no events", inotify_add_watch(ifd, dir, 0));
    SHOW("add_watch only flags", inotify_add_watch(ifd, dir, IN_ONESHOT));
    SHOW("add_watch missing", inotify_add_watch(ifd, path("missing"), IN_ALL_EVENTS));
    touch("plain");
    SHOW("add_watch onlydir on file", inotify_add_watch(ifd, path("plain"), IN_ALL_EVENTS | IN_ONLYDIR));
    SHOW("add_watch bad path", inotify_add_watch(ifd, (const char *)8, IN_ALL_EVENTS));
    SHOW("add_watch add+create", inotify_add_watch(ifd, dir, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE));
    SHOW("add_watch exists (mask create)", inotify_add_watch(ifd, dir, IN_MODIFY | IN_MASK_CREATE));
    MUST(symlink("plain", path("link")));
    wd = inotify_add_watch(ifd, path("link"), IN_ATTRIB | IN_DONT_FOLLOW);
    printf("add_watch dont_follow: %d\n", wd);
    SHOW("rm_watch it", inotify_rm_watch(ifd, wd));
    SHOW("rm_watch again", inotify_rm_watch(ifd, wd));
    SHOW("rm_watch bad wd", inotify_rm_watch(ifd, 12345));
    SHOW("rm_watch not inotify", inotify_rm_watch(1, 1));
    SHOW("rm_watch bad fd", inotify_rm_watch(999, 1));
    unlink(path("link"));
    unlink(path("plain"));
}

int main(int argc, char **argv)
{
    rf_init();
    snprintf(dir, sizeof dir, "%s/rf-inotify-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    MUST(mkdtemp(dir) ? 0 : -1);

    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    MUST(ifd);
    printf("init1: cloexec %d nonblock %d\n", (fcntl(ifd, F_GETFD) & FD_CLOEXEC) != 0,
           (fcntl(ifd, F_GETFL) & O_NONBLOCK) != 0);
    char small[8];
    SHOW("empty read", read(ifd, small, sizeof small));
    struct pollfd pfd = {.fd = ifd, .events = POLLIN};
    SHOW("poll empty", poll(&pfd, 1, 0));
    int avail = -1;
    ioctl(ifd, FIONREAD, &avail);
    printf("FIONREAD empty: %d\n", avail);

    int wd = inotify_add_watch(ifd, dir, IN_MODIFY);
    printf("add_watch: %d\n", wd);
    printf("same inode, same wd: %d\n", inotify_add_watch(ifd, dir, IN_ALL_EVENTS) == wd);
    printf("mask add: %d\n", inotify_add_watch(ifd, dir, IN_MODIFY | IN_MASK_ADD) == wd);
    errors(ifd);
    printf("restore mask: %d\n", inotify_add_watch(ifd, dir, IN_ALL_EVENTS) == wd);
    drain(ifd, "errors");

    /* create, write (two identical events coalesce), close */
    int f = open(path("a"), O_CREAT | O_WRONLY, 0644);
    MUST(f);
    SHOW("write", write(f, "hello", 5));
    SHOW("write", write(f, "world", 5));
    close(f);
    SHOW("poll ready", poll(&pfd, 1, 0));
    printf("revents: %#x\n", pfd.revents);
    ioctl(ifd, FIONREAD, &avail);
    printf("FIONREAD: %d\n", avail);
    /* a buffer too small for the first event */
    SHOW("short read", read(ifd, small, sizeof small));
    drain(ifd, "create write close");

    /* rename, attributes, reading, truncation */
    MUST(rename(path("a"), path("b")));
    MUST(chmod(path("b"), 0600));
    f = open(path("b"), O_RDONLY);
    MUST(f);
    char buf[16];
    SHOW("read", read(f, buf, sizeof buf));
    SHOW("read at end", read(f, buf, sizeof buf));
    close(f);
    MUST(truncate(path("b"), 2));
    f = open(path("b"), O_WRONLY | O_TRUNC);
    MUST(f);
    close(f);
    MUST(unlink(path("b")));
    drain(ifd, "rename chmod read truncate unlink");

    /* directories and a watch on a subdirectory */
    MUST(mkdir(path("sub"), 0755));
    int wd2 = inotify_add_watch(ifd, path("sub"), IN_ALL_EVENTS);
    printf("add_watch sub: %d\n", wd2);
    touch("sub/x");
    MUST(unlink(path("sub/x")));
    MUST(rmdir(path("sub")));
    drain(ifd, "mkdir rmdir");

    /* a watch on a file; unlinking it */
    touch("f");
    int wd3 = inotify_add_watch(ifd, path("f"), IN_ALL_EVENTS);
    printf("add_watch file: %d\n", wd3);
    f = open(path("f"), O_WRONLY | O_APPEND);
    MUST(f);
    SHOW("write", write(f, "x", 1));
    close(f);
    MUST(unlink(path("f")));
    drain(ifd, "file watch unlink");

    /* an unlinked file still open: its watch ends when it is closed */
    f = open(path("g"), O_CREAT | O_RDWR, 0644);
    MUST(f);
    int wd4 = inotify_add_watch(ifd, path("g"), IN_ALL_EVENTS);
    printf("add_watch open file: %d\n", wd4);
    MUST(unlink(path("g")));
    drain(ifd, "unlinked while open");
    close(f);
    drain(ifd, "closed");

    /* rename over an existing file, and rename of a watched file */
    touch("old");
    touch("victim");
    int wd5 = inotify_add_watch(ifd, path("old"), IN_MOVE_SELF | IN_ATTRIB);
    int wd6 = inotify_add_watch(ifd, path("victim"), IN_ALL_EVENTS);
    printf("add_watch old %d victim %d\n", wd5, wd6);
    MUST(rename(path("old"), path("victim")));
    drain(ifd, "rename over");

    /* links, symlinks, FIFOs */
    MUST(link(path("victim"), path("hard")));
    MUST(symlink("victim", path("soft")));
    MUST(mkfifo(path("fifo"), 0600));
    MUST(unlink(path("hard")));
    MUST(unlink(path("soft")));
    MUST(unlink(path("fifo")));
    drain(ifd, "links");

    /* data moved by copy_file_range and sendfile is read and written (IN_ACCESS, IN_MODIFY) */
    int src = open(path("src"), O_CREAT | O_RDWR, 0644), dst = open(path("dst"), O_CREAT | O_WRONLY, 0644);
    MUST(src);
    MUST(dst);
    SHOW("write", write(src, "0123456789", 10));
    drain(ifd, "copy sources made");
    loff_t off = 0;
    SHOW("copy_file_range", copy_file_range(src, &off, dst, NULL, 4, 0));
    drain(ifd, "copy_file_range");
    off_t soff = 4;
    SHOW("sendfile", sendfile(dst, src, &soff, 3));
    drain(ifd, "sendfile");
    close(src);
    close(dst);
    MUST(unlink(path("src")));
    MUST(unlink(path("dst")));
    drain(ifd, "copies removed");

    /* IN_ONESHOT: one event, then IN_IGNORED */
    int wd7 = inotify_add_watch(ifd, path("victim"), IN_ATTRIB | IN_ONESHOT);
    printf("add_watch oneshot: %d\n", wd7);
    MUST(chmod(path("victim"), 0644));
    MUST(chmod(path("victim"), 0600));
    drain(ifd, "oneshot");
    MUST(unlink(path("victim")));
    drain(ifd, "victim gone");

    /* rm_watch queues IN_IGNORED */
    SHOW("rm_watch", inotify_rm_watch(ifd, wd));
    touch("after");
    drain(ifd, "rm_watch");
    unlink(path("after"));

    /* a blocking read (and epoll) woken by a child's change */
    int bfd = inotify_init();
    MUST(bfd);
    printf("init: cloexec %d\n", (fcntl(bfd, F_GETFD) & FD_CLOEXEC) != 0);
    printf("add_watch other group: %d\n", inotify_add_watch(bfd, dir, IN_CREATE | IN_DELETE));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, out;
    SHOW("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, bfd, &ev));
    SHOW("epoll nothing", epoll_wait(ep, &out, 1, 0));
    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        touch("from-child");
        _exit(0);
    }
    int k = epoll_wait(ep, &out, 1, 5000);
    printf("epoll woken: %d data %lu events %#x\n", k, (unsigned long)out.data.u64, out.events);
    char evbuf[sizeof(struct inotify_event) + NAME_MAX + 1];
    ssize_t n = read(bfd, evbuf, sizeof evbuf);
    struct inotify_event *e = (struct inotify_event *)evbuf;
    printf("read: %zd mask %#x name %s\n", n, e->mask, e->name);
    waitpid(child, NULL, 0);
    child = fork();
    if (child == 0) {
        usleep(20000);
        unlink(path("from-child"));
        _exit(0);
    }
    n = read(bfd, evbuf, sizeof evbuf);
    printf("blocking read: %zd mask %#x name %s len %u\n", n, e->mask, e->name, e->len);
    waitpid(child, NULL, 0);
    close(ep);
    close(bfd);
    close(ifd);
    MUST(rmdir(dir));
    printf("done\n");
    return 0;
}
