/* timerfd, signalfd and memfd: expiration counts, non-blocking and blocking
 * reads, absolute times, polling, signals taken as signalfd_siginfo records,
 * memfd names, mappings and seals, and the errors Linux gives. */
#include "rf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static void timerfds(void)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    printf("timerfd_create: %d cloexec %d\n", tfd >= 0, (fcntl(tfd, F_GETFD) & FD_CLOEXEC) != 0);
    uint64_t n = 0;
    ssize_t r = read(tfd, &n, 8);
    printf("disarmed read: %zd %s\n", r, errname(errno));
    struct itimerspec its = {0}, cur;
    timerfd_gettime(tfd, &cur);
    printf("disarmed gettime: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    its.it_value.tv_nsec = 20 * 1000 * 1000;
    printf("settime: %d\n", timerfd_settime(tfd, 0, &its, NULL));
    timerfd_gettime(tfd, &cur);
    printf("armed gettime: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0
           && cur.it_value.tv_nsec <= 20 * 1000 * 1000);
    r = read(tfd, &n, 8);
    printf("read before expiry: %zd %s\n", r, errname(errno));
    struct pollfd pfd = {.fd = tfd, .events = POLLIN};
    int pr = poll(&pfd, 1, 2000);
    printf("poll: %d revents %#x\n", pr, pfd.revents);
    r = read(tfd, &n, 8);
    printf("read after expiry: %zd count %lu\n", r, (unsigned long)n);
    r = read(tfd, &n, 4);
    printf("short read: %zd %s\n", r, errname(errno));
    r = write(tfd, &n, 8);
    printf("write: %zd %s\n", r, errname(errno));

    /* periodic, blocking */
    int bfd = timerfd_create(CLOCK_BOOTTIME, 0);
    its.it_value.tv_nsec = 10 * 1000 * 1000;
    its.it_interval.tv_nsec = 10 * 1000 * 1000;
    timerfd_settime(bfd, 0, &its, NULL);
    usleep(55 * 1000);
    r = read(bfd, &n, 8);
    printf("periodic blocking read: %zd several %d\n", r, n >= 3);
    r = read(bfd, &n, 8);
    printf("next blocking read: %zd at least one %d\n", r, n >= 1);
    struct itimerspec old;
    its.it_value.tv_nsec = 0;
    its.it_interval.tv_nsec = 0;
    timerfd_settime(bfd, 0, &its, &old);
    printf("old interval: %ld ms\n", old.it_interval.tv_nsec / 1000000);
    close(bfd);

    /* absolute, realtime, in the past: expires at once */
    int rfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    its.it_value.tv_sec = now.tv_sec - 10;
    its.it_value.tv_nsec = 0;
    printf("abstime in the past: %d\n", timerfd_settime(rfd, TFD_TIMER_ABSTIME, &its, NULL));
    usleep(5000);
    r = read(rfd, &n, 8);
    printf("read: %zd count %lu\n", r, (unsigned long)n);
    clock_gettime(CLOCK_REALTIME, &now);
    its.it_value.tv_sec = now.tv_sec + 100;
    timerfd_settime(rfd, TFD_TIMER_ABSTIME, &its, NULL);
    timerfd_gettime(rfd, &cur);
    printf("abstime in the future: gettime relative %d\n", cur.it_value.tv_sec >= 98 && cur.it_value.tv_sec <= 100);

    /* epoll */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, out[2];
    printf("epoll add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev));
    printf("epoll nothing: %d\n", epoll_wait(ep, out, 2, 0));
    its.it_value.tv_sec = 0;
    its.it_value.tv_nsec = 15 * 1000 * 1000;
    timerfd_settime(tfd, 0, &its, NULL);
    int k = epoll_wait(ep, out, 2, 2000);
    printf("epoll after expiry: %d data %lu events %#x\n", k, (unsigned long)out[0].data.u64, out[0].events);
    close(ep);

    r = timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0);
    printf("bad clock: %zd %s\n", r, errname(errno));
    r = timerfd_create(CLOCK_MONOTONIC, 0x10);
    printf("bad flags: %zd %s\n", r, errname(errno));
    r = timerfd_settime(tfd, 0x10, &its, NULL);
    printf("bad settime flags: %zd %s\n", r, errname(errno));
    its.it_value.tv_nsec = 1000000000;
    r = timerfd_settime(tfd, 0, &its, NULL);
    printf("bad nsec: %zd %s\n", r, errname(errno));
    r = timerfd_gettime(0, &cur);
    printf("not a timerfd: %zd %s\n", r, errname(errno));
    r = timerfd_gettime(999, &cur);
    printf("bad fd: %zd %s\n", r, errname(errno));
    close(rfd);
    close(tfd);
}

static void signalfds(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    printf("signalfd: %d cloexec %d\n", sfd >= 0, (fcntl(sfd, F_GETFD) & FD_CLOEXEC) != 0);
    struct signalfd_siginfo si[2];
    ssize_t r = read(sfd, si, sizeof si);
    printf("empty read: %zd %s\n", r, errname(errno));
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    printf("poll empty: %d\n", poll(&pfd, 1, 0));
    kill(getpid(), SIGUSR1);
    int pr = poll(&pfd, 1, 0);
    printf("poll pending: %d revents %#x\n", pr, pfd.revents);
    r = read(sfd, si, sizeof si);
    printf("read: %zd signo %u code %d pid ok %d uid ok %d\n", r, si[0].ssi_signo, si[0].ssi_code,
           si[0].ssi_pid == (uint32_t)getpid(), si[0].ssi_uid == getuid());
    union sigval val = {.sival_int = 42};
    sigqueue(getpid(), SIGRTMIN, val);
    raise(SIGUSR2);
    r = read(sfd, si, sizeof si);
    printf("read two: %zd first %d second %d int %d\n", r, si[0].ssi_signo == SIGUSR2 || si[0].ssi_signo == (unsigned)SIGRTMIN,
           si[1].ssi_signo == SIGUSR2 || si[1].ssi_signo == (unsigned)SIGRTMIN,
           si[0].ssi_signo == (unsigned)SIGRTMIN ? si[0].ssi_int : si[1].ssi_int);
    r = read(sfd, si, 100);
    printf("short read: %zd %s\n", r, errname(errno));
    sigset_t pend;
    sigpending(&pend);
    printf("consumed: %d\n", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2));

    /* a blocking read woken by a signal from a child */
    int bfd = signalfd(-1, &set, 0);
    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    r = read(bfd, si, sizeof si);
    printf("blocking read: %zd signo %u from child %d\n", r, si[0].ssi_signo, si[0].ssi_pid == (uint32_t)child);
    waitpid(child, NULL, 0);

    /* poll woken by a signal */
    child = fork();
    if (child == 0) {
        usleep(20000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    pfd.fd = sfd;
    pfd.revents = 0;
    pr = poll(&pfd, 1, 2000);
    printf("poll waits: %d revents %#x\n", pr, pfd.revents);
    r = read(sfd, si, sizeof si);
    printf("then read: %zd signo %u\n", r, si[0].ssi_signo);
    waitpid(child, NULL, 0);

    /* epoll woken by a signal */
    int sep = epoll_create1(0);
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = 9}, sout;
    epoll_ctl(sep, EPOLL_CTL_ADD, sfd, &sev);
    child = fork();
    if (child == 0) {
        usleep(20000);
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    pr = epoll_wait(sep, &sout, 1, 2000);
    printf("epoll waits: %d data %lu events %#x\n", pr, (unsigned long)sout.data.u64, sout.events);
    r = read(sfd, si, sizeof si);
    printf("then read: %zd signo %u\n", r, si[0].ssi_signo);
    waitpid(child, NULL, 0);
    close(sep);

    /* changing the mask of an existing signalfd */
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGUSR2);
    printf("update mask: same fd %d\n", signalfd(sfd, &only, 0) == sfd);
    raise(SIGUSR1);
    r = read(sfd, si, sizeof si);
    printf("masked out: %zd %s\n", r, errname(errno));
    r = signalfd(0, &set, 0);
    printf("not a signalfd: %zd %s\n", r, errname(errno));
    r = signalfd(-1, &set, 0x10);
    printf("bad flags: %zd %s\n", r, errname(errno));
    r = syscall(289, -1, &set, 4, 0);
    printf("bad size: %zd %s\n", r, errname(errno));
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    int s1 = signalfd(-1, &usr1, SFD_NONBLOCK);
    r = read(s1, si, sizeof si);
    printf("left pending, taken by another: %zd signo %u\n", r, si[0].ssi_signo);
    close(s1);
    close(sfd);
    close(bfd);
}

static void memfds(void)
{
    int m = memfd_create("rf-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("memfd_create: %d cloexec %d\n", m >= 0, (fcntl(m, F_GETFD) & FD_CLOEXEC) != 0);
    char link[64], path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", m);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("link: %s\n", link);
    struct stat st;
    fstat(m, &st);
    printf("fstat: regular %d mode %o size %ld\n", S_ISREG(st.st_mode), st.st_mode & 07777, (long)st.st_size);
    printf("fl: accmode rdwr %d\n", (fcntl(m, F_GETFL) & O_ACCMODE) == O_RDWR);
    printf("write: %zd\n", write(m, "hello memfd", 11));
    char buf[32] = {0};
    printf("pread: %zd %s\n", pread(m, buf, sizeof buf - 1, 0), buf);
    printf("ftruncate: %d\n", ftruncate(m, 4096));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    printf("mmap: %d first %.5s\n", p != MAP_FAILED, p != MAP_FAILED ? p : "");
    if (p != MAP_FAILED)
        munmap(p, 4096);
    printf("seals: %#x\n", fcntl(m, F_GET_SEALS));
    printf("add shrink|grow: %d\n", fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    n = ftruncate(m, 100);
    printf("shrink: %zd %s\n", n, errname(errno));
    n = ftruncate(m, 8192);
    printf("grow: %zd %s\n", n, errname(errno));
    n = pwrite(m, "x", 1, 4096);
    printf("write past the end: %zd %s\n", n, errname(errno));
    printf("write inside: %zd\n", pwrite(m, "HE", 2, 0));
    printf("add write|seal: %d\n", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL));
    n = pwrite(m, "x", 1, 0);
    printf("write sealed: %zd %s\n", n, errname(errno));
    n = fcntl(m, F_ADD_SEALS, F_SEAL_GROW);
    printf("add after F_SEAL_SEAL: %zd %s\n", n, errname(errno));
    printf("seals: %#x\n", fcntl(m, F_GET_SEALS));
    pread(m, buf, 8, 0);
    buf[8] = 0;
    printf("content: %s\n", buf);
    int plain = memfd_create("plain", 0);
    printf("unsealable: seals %#x\n", fcntl(plain, F_GET_SEALS));
    n = fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE);
    printf("add to unsealable: %zd %s\n", n, errname(errno));
    n = fcntl(0, F_GET_SEALS);
    printf("seals of a non-memfd: %zd %s\n", n, errname(errno));
    n = memfd_create("bad", 0x100);
    printf("bad flags: %zd %s\n", n, errname(errno));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    n = memfd_create(longname, 0);
    printf("name too long: %zd %s\n", n, errname(errno));
    close(plain);
    close(m);
}

int main(void)
{
    rf_init();
    timerfds();
    signalfds();
    memfds();
    printf("done\n");
    return 0;
}
