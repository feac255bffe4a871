/* FIFOs (named pipes): mkfifo/mknod, opens that wait for the other end (and are
 * interrupted or restarted by a signal), O_NONBLOCK opens (ENXIO for a writer with
 * no reader), O_RDWR, data shared by every open of the node and dropped with the
 * last close, end-of-file, EPIPE, POLLHUP only once a writer was seen, PIPE_BUF
 * atomicity, and mknod's other node types and errors. */
#include "rf.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>

static char dir[200];
static char fifo[220];
static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void arm(int usec)
{
    struct itimerval it = {.it_value = {.tv_usec = usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void handler(int flags)
{
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = flags};
    sigaction(SIGALRM, &sa, NULL);
}

static void nodes(void)
{
    char p[240];
    struct stat st;
    SHOW("mkfifo", mkfifo(fifo, 0640));
    SHOW("mkfifo again", mkfifo(fifo, 0640));
    MUST(stat(fifo, &st));
    printf("fifo: is fifo %d mode %o size %ld\n", S_ISFIFO(st.st_mode), st.st_mode & 07777, (long)st.st_size);
    snprintf(p, sizeof p, "%s/byknod", dir);
    SHOW("mknod fifo", mknod(p, S_IFIFO | 0600, 0));
    MUST(stat(p, &st));
    printf("mknod fifo: is fifo %d\n", S_ISFIFO(st.st_mode));
    SHOW("unlink", unlink(p));
    SHOW("mknod regular", mknod(p, S_IFREG | 0600, 0));
    MUST(stat(p, &st));
    printf("mknod regular: is reg %d\n", S_ISREG(st.st_mode));
    SHOW("unlink", unlink(p));
    SHOW("mknod type 0", mknod(p, 0600, 0));
    MUST(stat(p, &st));
    printf("mknod type 0: is reg %d\n", S_ISREG(st.st_mode));
    SHOW("unlink", unlink(p));
    SHOW("mknod dir", mknod(p, S_IFDIR | 0700, 0));
    SHOW("mknod bad type", mknod(p, 0170000 | 0600, 0));
    SHOW("mknod exists", mknod(fifo, S_IFIFO | 0600, 0));
    SHOW("mknodat missing dir", mknodat(AT_FDCWD, "/nonexistent-rf/x", S_IFIFO | 0600, 0));
    snprintf(p, sizeof p, "%s/slash/", dir);
    SHOW("mknod trailing slash", mknod(p, S_IFIFO | 0600, 0));
    SHOW("mknod bad path", mknod((const char *)8, S_IFIFO | 0600, 0));
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("mknodat relative", mknodat(d, "rel", S_IFIFO | 0600, 0));
    SHOW("unlinkat", unlinkat(d, "rel", 0));
    close(d);
}

static void nonblocking(void)
{
    SHOW("writer without reader", open(fifo, O_WRONLY | O_NONBLOCK));
    int r = open(fifo, O_RDONLY | O_NONBLOCK);
    printf("reader without writer: %d\n", r >= 0);
    char buf[64];
    SHOW("read no writer", read(r, buf, sizeof buf));
    struct pollfd pfd = {.fd = r, .events = POLLIN};
    SHOW("poll before any writer", poll(&pfd, 1, 0));
    printf("revents: %#x\n", pfd.revents);
    int w = open(fifo, O_WRONLY | O_NONBLOCK);
    printf("writer with reader: %d\n", w >= 0);
    SHOW("read empty with writer", read(r, buf, sizeof buf));
    SHOW("write", write(w, "abc", 3));
    int avail = -1;
    ioctl(r, FIONREAD, &avail);
    printf("FIONREAD: %d\n", avail);
    pfd.revents = 0;
    SHOW("poll data", poll(&pfd, 1, 0));
    printf("revents: %#x\n", pfd.revents);
    SHOW("read", read(r, buf, sizeof buf));
    SHOW("lseek", lseek(r, 0, SEEK_SET));
    struct stat st;
    MUST(fstat(w, &st));
    printf("fstat: is fifo %d\n", S_ISFIFO(st.st_mode));
    close(w);
    pfd.revents = 0;
    SHOW("poll writer gone", poll(&pfd, 1, 0));
    printf("revents: %#x\n", pfd.revents);
    SHOW("read eof", read(r, buf, sizeof buf));
    w = open(fifo, O_WRONLY | O_NONBLOCK);
    close(r);
    signal(SIGPIPE, SIG_IGN);
    SHOW("write no reader", write(w, "x", 1));
    signal(SIGPIPE, SIG_DFL);
    close(w);
}

static void rdwr(void)
{
    int rw = open(fifo, O_RDWR);
    printf("O_RDWR: %d\n", rw >= 0);
    SHOW("write", write(rw, "self", 4));
    int r = open(fifo, O_RDONLY | O_NONBLOCK);
    char buf[16] = {0};
    SHOW("read by another open", read(r, buf, sizeof buf - 1));
    printf("data: %s\n", buf);
    SHOW("write", write(rw, "kept?", 5));
    close(r);
    close(rw);
    rw = open(fifo, O_RDWR | O_NONBLOCK);
    SHOW("after last close", read(rw, buf, sizeof buf));

    /* PIPE_BUF: a full pipe takes no atomic write; a big write is partial when non-blocking */
    static char big[70000];
    memset(big, 'b', sizeof big);
    SHOW("fill", write(rw, big, sizeof big));
    SHOW("write to full", write(rw, big, 1));
    SHOW("drain one page", read(rw, big, 4096));
    SHOW("atomic write PIPE_BUF", write(rw, big, PIPE_BUF));
    SHOW("write to full again", write(rw, big, PIPE_BUF));
    close(rw);
}

static void blocking(void)
{
    char buf[64];
    /* the writer waits for a reader */
    pid_t child = fork();
    if (child == 0) {
        int w = open(fifo, O_WRONLY);
        if (write(w, "from child", 10) != 10)
            _exit(1);
        close(w);
        _exit(0);
    }
    usleep(30000);
    int r = open(fifo, O_RDONLY);
    printf("reader open: %d\n", r >= 0);
    ssize_t n, total = 0;
    while ((n = read(r, buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    buf[total] = 0;
    printf("read until eof: %zd %s\n", total, buf);
    close(r);
    int status;
    waitpid(child, &status, 0);
    printf("child: %d\n", WEXITSTATUS(status));

    /* the reader waits for a writer */
    child = fork();
    if (child == 0) {
        usleep(30000);
        int w = open(fifo, O_WRONLY);
        if (write(w, "late writer", 11) != 11)
            _exit(1);
        close(w);
        _exit(0);
    }
    r = open(fifo, O_RDONLY);
    printf("reader waited: %d\n", r >= 0);
    total = 0;
    while ((n = read(r, buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    buf[total] = 0;
    printf("read: %s\n", buf);
    close(r);
    waitpid(child, &status, 0);
    printf("child: %d\n", WEXITSTATUS(status));

    /* a signal interrupts a waiting open (no SA_RESTART): the waiting end is gone */
    handler(0);
    alarms = 0;
    arm(20000);
    SHOW("open interrupted", open(fifo, O_RDONLY));
    printf("alarms: %d\n", alarms);
    SHOW("writer after interrupted reader", open(fifo, O_WRONLY | O_NONBLOCK));
    arm(20000);
    SHOW("writer open interrupted", open(fifo, O_WRONLY));
    r = open(fifo, O_RDONLY | O_NONBLOCK);
    struct pollfd pfd = {.fd = r, .events = POLLIN};
    SHOW("no writer left", poll(&pfd, 1, 0));
    close(r);

    /* with SA_RESTART the open goes on waiting */
    handler(SA_RESTART);
    alarms = 0;
    child = fork();
    if (child == 0) {
        usleep(80000);
        int w = open(fifo, O_WRONLY);
        close(w);
        _exit(0);
    }
    arm(20000);
    r = open(fifo, O_RDONLY);
    printf("restarted open: %d alarms %d\n", r >= 0, alarms);
    SHOW("read eof", read(r, buf, sizeof buf));
    close(r);
    waitpid(child, &status, 0);
    signal(SIGALRM, SIG_DFL);

    /* a FIFO removed while open keeps working */
    int rw = open(fifo, O_RDWR);
    SHOW("unlink open fifo", unlink(fifo));
    SHOW("write", write(rw, "still", 5));
    SHOW("read", read(rw, buf, sizeof buf));
    close(rw);
}

int main(int argc, char **argv)
{
    rf_init();
    snprintf(dir, sizeof dir, "%s/rf-fifo-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    MUST(mkdtemp(dir) ? 0 : -1);
    snprintf(fifo, sizeof fifo, "%s/p", dir);
    nodes();
    nonblocking();
    rdwr();
    blocking();
    SHOW("rmdir", rmdir(dir));
    printf("done\n");
    return 0;
}
