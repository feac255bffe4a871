/* Stress: 200 rounds of fork, threads, signals and exec.  Each round forks a
 * child that starts two threads, signals itself, and execs this program again
 * (which exits with the round's code); the parent checks every child's status.
 * Prints the number of rounds whose child came back with the right status. */
#include "rf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define ROUNDS 200
static volatile int usr1;

static void on_usr1(int sig) { (void)sig; usr1++; }

static void *spin(void *arg)
{
    volatile long n = 0;
    for (long i = 0; i < 1000 * (long)arg; i++)
        n += i;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    int good = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child = fork();
        if (child == 0) {
            signal(SIGUSR1, on_usr1);
            pthread_t t[2];
            for (long i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, spin, (void *)(i + 1));
            kill(getpid(), SIGUSR1);
            for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
            if (usr1 != 1)
                _exit(100);
            char code[16];
            snprintf(code, sizeof code, "%d", round % 50);
            execl(argv[0], argv[0], "exit", code, (char *)NULL);
            _exit(101);
        }
        if (round % 3 == 0)
            kill(child, SIGUSR2);  /* may land before or after exec: both end the child */
        int status;
        if (waitpid(child, &status, 0) != child)
            break;
        if (round % 3 == 0 ? (WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2) ||
                                 (WIFEXITED(status) && WEXITSTATUS(status) == round % 50)
                           : WIFEXITED(status) && WEXITSTATUS(status) == round % 50)
            good++;
        else
            printf("round %d: status %#x\n", round, status);
    }
    printf("stress: %d rounds of fork, 2 threads, a signal and exec\n", ROUNDS);
    printf("rounds ok: %d of %d\n", good, ROUNDS);
    printf("no child left: %d\n", waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    printf("done\n");
    return 0;
}
