/* Signal family: rt_sigaction (plain and SA_SIGINFO handlers), delivery of
 * kill(getpid()) and raise() before the call returns, rt_sigprocmask blocking
 * -> rt_sigpending -> delivery on unblock, rt_sigsuspend waiting for SIGCHLD
 * with its siginfo, default actions on a child (SIGTERM kills, SIG_IGN
 * survives), a blocking read interrupted by a handler (EINTR), and errors.
 * Handlers print with write(2) only. */
#include "rf.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t handled, last_sig;
static volatile sig_atomic_t chld_code, chld_status, chld_pid_ok;
static volatile pid_t chld_expected;

static void say(const char *s)
{
    write(1, s, strlen(s));
}

static void on_signal(int sig)
{
    handled++;
    last_sig = sig;
    say(sig == SIGUSR1 ? "  handler: SIGUSR1\n" : sig == SIGUSR2 ? "  handler: SIGUSR2\n" : "  handler: other\n");
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    handled++;
    say(si->si_signo == sig ? "  siginfo: si_signo matches\n" : "  siginfo: si_signo WRONG\n");
    say(si->si_code == SI_USER ? "  siginfo: si_code SI_USER\n"
        : si->si_code == SI_TKILL ? "  siginfo: si_code SI_TKILL\n" : "  siginfo: si_code other\n");
    say(si->si_pid == getpid() ? "  siginfo: si_pid is us\n" : "  siginfo: si_pid WRONG\n");
    say(si->si_uid == getuid() ? "  siginfo: si_uid is ours\n" : "  siginfo: si_uid WRONG\n");
}

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    handled++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid_ok = si->si_pid == chld_expected;
}

static void install(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    MUST(sigaction(sig, &sa, NULL));
}

static void install_info(int sig, void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    MUST(sigaction(sig, &sa, NULL));
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(void)
{
    sigset_t set, old, pending;
    int status;
    pid_t pid;

    rf_init();

    printf("== handler runs before kill() returns\n");
    install(SIGUSR1, on_signal, SA_RESTART);
    handled = 0;
    SHOW("kill(getpid(), SIGUSR1)", kill(getpid(), SIGUSR1));
    printf("handled=%d last=%s\n", (int)handled, last_sig == SIGUSR1 ? "SIGUSR1" : "?");
    install(SIGUSR2, on_signal, 0);
    SHOW("raise(SIGUSR2)", raise(SIGUSR2));
    printf("handled=%d last=%s\n", (int)handled, last_sig == SIGUSR2 ? "SIGUSR2" : "?");

    printf("== sigaction reports the old action\n");
    struct sigaction cur;
    SHOW("sigaction query", sigaction(SIGUSR1, NULL, &cur));
    YESNO("old handler is ours", cur.sa_handler == on_signal);
    YESNO("SA_RESTART kept", (cur.sa_flags & SA_RESTART) != 0);
    SHOW("sigaction SIGKILL", sigaction(SIGKILL, &cur, NULL));
    SHOW("sigaction SIGSTOP", sigaction(SIGSTOP, &cur, NULL));
    SHOW("sigaction signal 0", sigaction(0, &cur, NULL));
    SHOW("sigaction signal 65", syscall(SYS_rt_sigaction, 65, NULL, &cur, 8));
    SHOW("rt_sigaction bad sigsetsize", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &cur, 4));

    printf("== SA_SIGINFO\n");
    install_info(SIGUSR2, on_info);
    handled = 0;
    SHOW("kill", kill(getpid(), SIGUSR2));
    printf("handled=%d\n", (int)handled);

    printf("== blocked, pending, delivered on unblock\n");
    handled = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    SHOW("sigprocmask block SIGUSR1", sigprocmask(SIG_BLOCK, &set, &old));
    YESNO("old mask had SIGUSR1", sigismember(&old, SIGUSR1));
    SHOW("kill", kill(getpid(), SIGUSR1));
    SHOW("kill again (not queued twice)", kill(getpid(), SIGUSR1));
    printf("handled while blocked=%d\n", (int)handled);
    SHOW("sigpending", sigpending(&pending));
    YESNO("SIGUSR1 pending", sigismember(&pending, SIGUSR1));
    YESNO("SIGUSR2 pending", sigismember(&pending, SIGUSR2));
    SHOW("sigprocmask unblock", sigprocmask(SIG_UNBLOCK, &set, NULL));
    printf("handled after unblock=%d\n", (int)handled);
    sigpending(&pending);
    YESNO("SIGUSR1 still pending", sigismember(&pending, SIGUSR1));
    SHOW("sigprocmask bad how", sigprocmask(12345, &set, NULL));
    sigfillset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    sigprocmask(SIG_SETMASK, NULL, &old);
    YESNO("SIGKILL cannot be blocked", !sigismember(&old, SIGKILL));
    YESNO("SIGSTOP cannot be blocked", !sigismember(&old, SIGSTOP));
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);

    printf("== SIG_IGN discards, SIG_DFL of SIGCHLD/SIGWINCH ignores\n");
    handled = 0;
    install(SIGUSR1, SIG_IGN, 0);
    SHOW("kill ignored SIGUSR1", kill(getpid(), SIGUSR1));
    SHOW("kill SIGWINCH (default: ignore)", kill(getpid(), SIGWINCH));
    SHOW("kill signal 0 (existence check)", kill(getpid(), 0));
    SHOW("kill bad signal", kill(getpid(), 1000));
    install(SIGUSR1, on_signal, SA_RESTART);
    printf("handled=%d\n", (int)handled);

    printf("== SIGCHLD after a child exits (rt_sigsuspend)\n");
    install_info(SIGCHLD, on_chld);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    handled = 0;
    pid = fork();
    MUST(pid);
    if (pid == 0)
        _exit(3);
    chld_expected = pid;
    sigemptyset(&set);
    int r = sigsuspend(&set);
    printf("sigsuspend: %d %s\n", r, errname(errno));
    printf("SIGCHLD handled=%d code=%s status=%d pid matches=%s\n", (int)handled,
           chld_code == CLD_EXITED ? "CLD_EXITED" : "other", (int)chld_status,
           chld_pid_ok ? "yes" : "no");
    sigprocmask(SIG_SETMASK, &old, NULL);
    waitpid(pid, &status, 0);
    show_status("child", status);
    SHOW("kill a reaped child", kill(pid, 0));
    install(SIGCHLD, SIG_DFL, 0);

    printf("== default action of SIGTERM on a child\n");
    int gate[2];
    MUST(pipe(gate));
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char c;
        read(gate[0], &c, 1); /* blocks until killed */
        _exit(1);
    }
    SHOW("kill SIGTERM", kill(pid, SIGTERM));
    waitpid(pid, &status, 0);
    show_status("child", status);
    printf("WIFSIGNALED=%d WTERMSIG is SIGTERM=%d\n", WIFSIGNALED(status), WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

    printf("== SIGTERM ignored by a child\n");
    int ready[2];
    MUST(pipe(ready));
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char c;
        signal(SIGTERM, SIG_IGN);
        write(ready[1], "r", 1);
        _exit(read(gate[0], &c, 1) == 1 && c == 'g' ? 0 : 1);
    }
    char c;
    read(ready[0], &c, 1);
    SHOW("kill SIGTERM", kill(pid, SIGTERM));
    write(gate[1], "g", 1);
    waitpid(pid, &status, 0);
    show_status("child that ignores SIGTERM", status);

    printf("== a handler interrupts a blocking read: EINTR\n");
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char b;
        install(SIGUSR1, on_signal, 0); /* no SA_RESTART */
        close(1);                       /* the handler's output is not ours to compare */
        write(ready[1], "r", 1);
        for (;;) {
            ssize_t n = read(gate[0], &b, 1);
            if (n < 0 && errno == EINTR)
                _exit(4);
            if (n != 0 || handled > 1000)
                _exit(1);
        }
    }
    read(ready[0], &c, 1);
    /* The first signal may land before the child blocks: keep sending. */
    int reaped = 0;
    for (int i = 0; i < 500 && !reaped; i++) {
        kill(pid, SIGUSR1);
        sleep_ms(20);
        reaped = waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!reaped) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    show_status("reader child (4 = got EINTR)", status);

    printf("done\n");
    return 0;
}
