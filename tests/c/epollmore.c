/* epoll's triggering modes (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE) and the
 * temporary signal masks of ppoll, pselect6, epoll_pwait and epoll_pwait2.
 */
#include "rf.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define LONG_MS 20000 /* never reached when the test works: a wait a signal ends */

static volatile sig_atomic_t handled;
static volatile sig_atomic_t usr2_blocked_in_handler = -1;

/* The handler runs with the wait's mask (plus its own signal); its frame saves the original. */
static void on_usr1(int sig)
{
    sigset_t cur;
    (void)sig;
    handled++;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    usr2_blocked_in_handler = sigismember(&cur, SIGUSR2);
}

static int wait1(int ep, int timeout_ms, struct epoll_event *out)
{
    return epoll_wait(ep, out, 1, timeout_ms);
}

static void edge_triggered(void)
{
    int p[2], ep = epoll_create1(0);
    char buf[8];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 1}, out;
    MUST(pipe(p));
    SHOW("et add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("et nothing", wait1(ep, 0, &out));
    MUST(write(p[1], "abcd", 4));
    SHOW("et after write", wait1(ep, 0, &out));
    printf("et events %#x data %lu\n", out.events, (unsigned long)out.data.u64);
    SHOW("et again (still readable)", wait1(ep, 0, &out));
    MUST(write(p[1], "ef", 2));
    SHOW("et after more data", wait1(ep, 0, &out));
    SHOW("et partial read", read(p[0], buf, 2));
    SHOW("et after partial read", wait1(ep, 0, &out));
    MUST(write(p[1], "g", 1));
    SHOW("et after one more byte", wait1(ep, 0, &out));
    SHOW("et drain", read(p[0], buf, sizeof buf));
    SHOW("et drained", wait1(ep, 0, &out));
    /* a MOD re-checks the file: readable, it is reported once more */
    MUST(write(p[1], "h", 1));
    SHOW("et consumed", wait1(ep, 0, &out));
    SHOW("et mod", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    SHOW("et after mod", wait1(ep, 0, &out));
    SHOW("et after mod again", wait1(ep, 0, &out));
    /* a writer blocked in epoll_wait wakes for new data */
    pid_t child = fork();
    if (child == 0) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        MUST(write(p[1], "i", 1));
        _exit(0);
    }
    SHOW("et blocked wait woken", wait1(ep, LONG_MS, &out));
    MUST(waitpid(child, NULL, 0));
    /* write end: EPOLLOUT edge when room is made */
    int ep2 = epoll_create1(0);
    struct epoll_event wev = {.events = EPOLLOUT | EPOLLET, .data.u64 = 2};
    SHOW("et out add", epoll_ctl(ep2, EPOLL_CTL_ADD, p[1], &wev));
    SHOW("et out first", wait1(ep2, 0, &out));
    SHOW("et out again", wait1(ep2, 0, &out));
    /* (a read re-arms it only from a full pipe on Linux, from any pipe here: not compared) */
    SHOW("et read", read(p[0], buf, sizeof buf));
    /* level-triggered for comparison */
    int ep3 = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = 3};
    MUST(write(p[1], "j", 1));
    SHOW("lt add", epoll_ctl(ep3, EPOLL_CTL_ADD, p[0], &lev));
    SHOW("lt first", wait1(ep3, 0, &out));
    SHOW("lt again", wait1(ep3, 0, &out));
    /* an eventfd: EPOLLIN edges come from writes, not from reads */
    int efd = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    struct epoll_event eev = {.events = EPOLLIN | EPOLLET, .data.u64 = 4};
    int ep4 = epoll_create1(0);
    uint64_t v = 1;
    SHOW("et eventfd add", epoll_ctl(ep4, EPOLL_CTL_ADD, efd, &eev));
    SHOW("et eventfd first", wait1(ep4, 0, &out));
    SHOW("et eventfd read", read(efd, &v, 8));
    SHOW("et eventfd after read", wait1(ep4, 0, &out));
    SHOW("et eventfd write", write(efd, &v, 8));
    SHOW("et eventfd after write", wait1(ep4, 0, &out));
    close(efd);
    close(ep4);
    close(ep3);
    close(ep2);
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void oneshot(void)
{
    int p[2], ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 5}, out;
    MUST(pipe(p));
    MUST(write(p[1], "x", 1));
    SHOW("oneshot add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("oneshot first", wait1(ep, 0, &out));
    SHOW("oneshot disabled", wait1(ep, 0, &out));
    MUST(write(p[1], "y", 1));
    SHOW("oneshot disabled after write", wait1(ep, 0, &out));
    SHOW("oneshot add again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("oneshot mod re-arms", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    SHOW("oneshot after mod", wait1(ep, 0, &out));
    printf("oneshot data %lu\n", (unsigned long)out.data.u64);
    SHOW("oneshot after mod again", wait1(ep, 0, &out));
    ev.events = EPOLLIN | EPOLLONESHOT | EPOLLET;
    SHOW("oneshot et mod", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    SHOW("oneshot et", wait1(ep, 0, &out));
    MUST(write(p[1], "z", 1));
    SHOW("oneshot et after write", wait1(ep, 0, &out));
    SHOW("oneshot del", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    close(ep);
    close(p[0]);
    close(p[1]);
}

static void exclusive(void)
{
    int p[2], ep = epoll_create1(0), inner = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = 6}, out;
    MUST(pipe(p));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
    SHOW("excl with oneshot", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLRDNORM | EPOLLEXCLUSIVE;
    SHOW("excl with rdnorm", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    SHOW("excl on an epoll fd", epoll_ctl(ep, EPOLL_CTL_ADD, inner, &ev));
    SHOW("excl mod of unknown", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
    SHOW("excl add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    ev.events = EPOLLIN;
    SHOW("excl mod", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    SHOW("excl mod with flag", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    SHOW("excl del with flag", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], &ev));
    SHOW("excl add again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    MUST(write(p[1], "x", 1));
    SHOW("excl wait", wait1(ep, 0, &out));
    /* one pipe, exclusive in two instances each waited on by a child: a byte
     * written wakes one of them (which reads it: exit 0; woken for nothing: 2) */
    int ep2 = epoll_create1(0);
    char c;
    MUST(read(p[0], &c, 1));
    MUST(fcntl(p[0], F_SETFL, O_NONBLOCK));
    SHOW("excl add second", epoll_ctl(ep2, EPOLL_CTL_ADD, p[0], &ev));
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int n = epoll_wait(i ? ep2 : ep, &out, 1, LONG_MS);
            _exit(n != 1 ? 1 : read(p[0], &c, 1) == 1 ? 0 : 2);
        }
    }
    for (int i = 0; i < 2; i++)
        rf_wait_sleeping(kids[i]);
    for (int i = 0; i < 2; i++) {
        int status;
        MUST(write(p[1], "a", 1));
        MUST(waitpid(-1, &status, 0));
        show_status("excl a byte wakes one waiter", status);
    }
    /* nesting loops */
    struct epoll_event nev = {.events = EPOLLIN};
    SHOW("nest inner in outer", epoll_ctl(ep, EPOLL_CTL_ADD, inner, &nev));
    SHOW("nest outer in inner", epoll_ctl(inner, EPOLL_CTL_ADD, ep, &nev));
    SHOW("nest self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &nev));
    close(ep2);
    close(inner);
    close(ep);
    close(p[0]);
    close(p[1]);
}

/* Send SIGUSR1 to the parent once it sleeps in its wait. */
static pid_t signal_when_waiting(void)
{
    pid_t parent = getpid(), child = fork();
    if (child == 0) {
        rf_wait_sleeping(parent);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    return child;
}

static void after(const char *label)
{
    sigset_t cur, pend;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    sigpending(&pend);
    printf("%s: handled %d, usr2 blocked in handler %d, usr1/usr2 blocked after %d/%d, pending after %d\n",
           label, (int)handled, (int)usr2_blocked_in_handler, sigismember(&cur, SIGUSR1),
           sigismember(&cur, SIGUSR2), sigismember(&pend, SIGUSR1));
    handled = 0;
    usr2_blocked_in_handler = -1;
}

/* kinds of waits, each on a pipe that never becomes readable */
enum { PPOLL, PSELECT, EPWAIT, EPWAIT2 };
static const char *names[] = {"ppoll", "pselect6", "epoll_pwait", "epoll_pwait2"};

static int masked_wait(int kind, int rfd, int ep, const sigset_t *mask, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    struct epoll_event out;
    struct pollfd pfd = {.fd = rfd, .events = POLLIN};
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(rfd, &rs);
    switch (kind) {
    case PPOLL:
        return ppoll(&pfd, 1, &ts, mask);
    case PSELECT:
        return pselect(rfd + 1, &rs, NULL, NULL, &ts, mask);
    case EPWAIT:
        return epoll_pwait(ep, &out, 1, timeout_ms, mask);
    default:
        return syscall(SYS_epoll_pwait2, ep, &out, 1, &ts, mask, 8);
    }
}

static void masks(void)
{
    int p[2], ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    MUST(pipe(p));
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    /* SA_RESTART: a late signal must not fail the test's own waitpid (the waits under
     * test are never restarted) */
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    MUST(sigaction(SIGUSR1, &sa, NULL));
    sigset_t block_usr1, usr2, empty;
    sigemptyset(&block_usr1);
    sigaddset(&block_usr1, SIGUSR1);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigemptyset(&empty);
    for (int kind = PPOLL; kind <= EPWAIT2; kind++) {
        char label[64];
        /* blocked and pending, unblocked by the wait's mask: EINTR, the handler runs */
        MUST(sigprocmask(SIG_BLOCK, &block_usr1, NULL));
        MUST(kill(getpid(), SIGUSR1));
        snprintf(label, sizeof label, "%s unblocking a pending signal", names[kind]);
        SHOW(label, masked_wait(kind, p[0], ep, &usr2, LONG_MS));
        after(label);
        /* the same with no wait left (timeout 0) */
        MUST(kill(getpid(), SIGUSR1));
        snprintf(label, sizeof label, "%s timeout 0 with a pending signal", names[kind]);
        SHOW(label, masked_wait(kind, p[0], ep, &usr2, 0));
        after(label);
        sigset_t none;
        sigpending(&none);
        if (sigismember(&none, SIGUSR1)) { /* epoll with timeout 0 does not look at signals */
            MUST(sigprocmask(SIG_UNBLOCK, &block_usr1, NULL));
            MUST(sigprocmask(SIG_BLOCK, &block_usr1, NULL));
            after("  (delivered by unblocking)");
        }
        /* unblocked, a signal during the wait: blocked by the wait's mask, so the wait
         * times out and the signal is delivered once the mask comes back */
        MUST(sigprocmask(SIG_UNBLOCK, &block_usr1, NULL));
        pid_t kid = signal_when_waiting();
        snprintf(label, sizeof label, "%s blocking a signal sent meanwhile", names[kind]);
        SHOW(label, masked_wait(kind, p[0], ep, &block_usr1, 300));
        MUST(waitpid(kid, NULL, 0));
        after(label);
        /* blocked, the wait's mask blocks it too: times out, stays pending */
        MUST(sigprocmask(SIG_BLOCK, &block_usr1, NULL));
        kid = signal_when_waiting();
        snprintf(label, sizeof label, "%s signal stays pending", names[kind]);
        SHOW(label, masked_wait(kind, p[0], ep, &block_usr1, 300));
        MUST(waitpid(kid, NULL, 0));
        after(label);
        MUST(sigprocmask(SIG_UNBLOCK, &block_usr1, NULL));
        after("  (delivered by unblocking)");
        /* no mask: a signal during the wait interrupts it */
        kid = signal_when_waiting();
        snprintf(label, sizeof label, "%s no mask, signal meanwhile", names[kind]);
        SHOW(label, masked_wait(kind, p[0], ep, NULL, LONG_MS));
        MUST(waitpid(kid, NULL, 0));
        after(label);
    }
    /* argument errors */
    struct timespec ts = {0, 0};
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    struct epoll_event out;
    SHOW("ppoll bad sigsetsize", syscall(SYS_ppoll, &pfd, 1, &ts, &empty, 4));
    SHOW("ppoll bad mask pointer", syscall(SYS_ppoll, &pfd, 1, &ts, (void *)8, 8));
    SHOW("epoll_pwait bad sigsetsize", syscall(SYS_epoll_pwait, ep, &out, 1, 0, &empty, 16));
    SHOW("epoll_pwait bad mask pointer", syscall(SYS_epoll_pwait, ep, &out, 1, 0, (void *)8, 8));
    SHOW("epoll_pwait2 bad timeout", syscall(SYS_epoll_pwait2, ep, &out, 1, (void *)8, NULL, 8));
    struct timespec bad = {0, 1000000000};
    SHOW("epoll_pwait2 unnormalised timeout", syscall(SYS_epoll_pwait2, ep, &out, 1, &bad, NULL, 8));
    MUST(write(p[1], "r", 1));
    SHOW("epoll_pwait2 no timeout, ready", syscall(SYS_epoll_pwait2, ep, &out, 1, NULL, NULL, 8));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct { const sigset_t *ss; size_t len; } pack = {&empty, 4};
    SHOW("pselect6 bad ss_len", syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &pack));
    SHOW("pselect6 bad pack pointer", syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, (void *)8));
    pack.ss = (void *)8;
    pack.len = 8;
    SHOW("pselect6 bad mask pointer", syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &pack));
    pack.ss = NULL;
    pack.len = 4;
    SHOW("pselect6 no mask, any ss_len", syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &pack));
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("mask intact after errors: %d\n", sigismember(&cur, SIGUSR1) == 0);
    close(ep);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    rf_init();
    edge_triggered();
    oneshot();
    exclusive();
    masks();
    printf("done\n");
    return 0;
}
