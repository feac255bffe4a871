/* Timers and the rest of signals: alarm, setitimer, timer_create (SI_TIMER
 * with its sigval), sigqueue + sigtimedwait, waitid for exited, stopped and
 * continued children (SIGSTOP/SIGCONT job control), and a SIGSEGV handler
 * that sees the fault address and leaves with siglongjmp. */
#include "rf.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

static volatile int alarms, ticks, timer_hits, timer_code, timer_value;
static sigjmp_buf env;
static void *fault_addr;
static volatile int fault_code;

static void on_alarm(int sig) { (void)sig; alarms++; }
static void on_tick(int sig) { (void)sig; ticks++; }
static void on_timer(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    timer_hits++;
    timer_code = si->si_code;
    timer_value = si->si_value.sival_int;
}
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(env, 1);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    printf("alarm(0) before any: %u\n", alarm(0));
    alarm(1);
    printf("alarm(5) returns the old one: %u\n", alarm(5));
    alarm(0);
    struct itimerval it = {{0, 0}, {0, 30000}};
    setitimer(ITIMER_REAL, &it, NULL);
    pause();
    printf("alarms after a one-shot itimer: %d\n", alarms);

    signal(SIGALRM, on_tick);
    struct itimerval periodic = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &periodic, NULL);
    while (ticks < 3)
        pause();
    struct itimerval stop = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &stop, &old);
    printf("periodic ticks >= 3: %d, old interval %ld us\n", ticks >= 3, (long)old.it_interval.tv_usec);

    struct sigaction sa = {0};
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 77;
    timer_t tid;
    printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &sev, &tid));
    struct itimerspec ts = {{0, 0}, {0, 10000000}};
    timer_settime(tid, 0, &ts, NULL);
    while (!timer_hits)
        pause();
    printf("timer fired: hits %d code SI_TIMER %d value %d\n", timer_hits, timer_code == SI_TIMER, timer_value);
    struct itimerspec cur;
    timer_gettime(tid, &cur);
    printf("disarmed after one shot: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    int first = timer_delete(tid);
    int again = timer_delete(tid);
    printf("timer_delete: %d, again: %d %s\n", first, again, errname(errno));

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR1, v);
    siginfo_t si;
    struct timespec zero = {0, 0};
    int got = sigtimedwait(&set, &si, &zero);
    printf("sigtimedwait: %s code SI_QUEUE %d value %d\n", got == SIGUSR1 ? "SIGUSR1" : "other",
           si.si_code == SI_QUEUE, si.si_value.sival_int);
    struct timespec short_wait = {0, 20000000};
    got = sigtimedwait(&set, &si, &short_wait);
    printf("sigtimedwait with nothing pending: %d %s\n", got, errname(errno));

    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    kill(child, SIGSTOP);
    siginfo_t wi = {0};
    waitid(P_PID, child, &wi, WSTOPPED);
    printf("waitid stopped: code CLD_STOPPED %d status SIGSTOP %d\n", wi.si_code == CLD_STOPPED, wi.si_status == SIGSTOP);
    kill(child, SIGCONT);
    waitid(P_PID, child, &wi, WCONTINUED);
    printf("waitid continued: %d\n", wi.si_code == CLD_CONTINUED);
    kill(child, SIGTERM);
    waitid(P_PID, child, &wi, WEXITED);
    printf("waitid killed: %d by SIGTERM %d\n", wi.si_code == CLD_KILLED, wi.si_status == SIGTERM);
    memset(&wi, 0xff, sizeof wi);
    int none = waitid(P_ALL, 0, &wi, WEXITED | WNOHANG);
    printf("waitid with no children: %d %s\n", none, errname(errno));

    sa.sa_sigaction = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(env, 1) == 0) {
        page[100] = 1;
        printf("no fault?\n");
    }
    printf("SIGSEGV caught: addr matches %d, SEGV_ACCERR %d\n", fault_addr == page + 100, fault_code == SEGV_ACCERR);
    munmap(page, 4096);
    if (sigsetjmp(env, 1) == 0)
        *(volatile char *)page = 1;
    printf("SIGSEGV on unmapped: SEGV_MAPERR %d\n", fault_code == SEGV_MAPERR);

    /* ITIMER_PROF counts CPU time: nothing while asleep, ticks while spinning. */
    ticks = 0;
    signal(SIGPROF, on_tick);
    struct itimerval prof = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_PROF, &prof, NULL);
    usleep(100000);
    int asleep = ticks;
    while (ticks < 3) {
        volatile long x = 0;
        for (int i = 0; i < 100000; i++)
            x += i;
    }
    setitimer(ITIMER_PROF, &stop, NULL);
    printf("ITIMER_PROF: ticks while asleep %d, 3 ticks while spinning\n", asleep);
    printf("done\n");
    return 0;
}
