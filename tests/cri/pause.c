/* The pod sandbox's process (the CRI "pause" container), for the locally
 * built pause image of tests/containerd_env.py: it sleeps (sigsuspend, the
 * race-free pause()) until SIGINT or SIGTERM, then exits 0; as a pid namespace's init it also reaps
 * any orphan that gets reparented to it.
 *
 * It lives in tests/cri/, not tests/c/: every tests/c program is a
 * differential test (tests/test_differential.py), and this one never ends
 * on its own. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
    (void)sig;
    stop = 1;
}

static void on_child(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        return 1;
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL))
        return 1;
    /* Block the stop signals outside sigsuspend, so one that arrives between
     * the test of `stop` and the wait is not lost. */
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &block, &wait_mask))
        return 1;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    while (!stop)
        sigsuspend(&wait_mask);
    return 0;
}
