/* Robust mutexes: a thread, and a process sharing the mutex, die holding it;
 * the next locker gets EOWNERDEAD and can make it consistent.  Also
 * PR_SET_CHILD_SUBREAPER (orphans come to the subreaper) and PR_SET_PDEATHSIG. */
#include "rf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static pthread_mutex_t *shared;
static pthread_mutex_t local;

static void *die_holding(void *arg)
{
    pthread_mutex_lock(arg);
    return NULL;  /* exits holding it */
}

static void init_robust(pthread_mutex_t *m, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared)
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
}

int main(void)
{
    init_robust(&local, 0);
    pthread_t t;
    pthread_create(&t, NULL, die_holding, &local);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&local);
    printf("thread died holding it: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : errname(r));
    int consistent = pthread_mutex_consistent(&local);
    int unlocked = pthread_mutex_unlock(&local);
    printf("made consistent: %d, unlocked: %d\n", consistent, unlocked);

    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    init_robust(shared, 1);
    pid_t child = fork();
    if (child == 0) {
        pthread_mutex_lock(shared);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    r = pthread_mutex_lock(shared);
    printf("process died holding it: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : errname(r));

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int is = 0;
    prctl(PR_GET_CHILD_SUBREAPER, &is);
    printf("subreaper: %d\n", is);
    int ready[2];
    if (pipe(ready))
        return 1;
    child = fork();
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            if (write(ready[1], "r", 1) != 1)
                _exit(2);
            for (;;)
                pause();
        }
        char c;
        if (read(ready[0], &c, 1) != 1)
            _exit(3);
        _exit(0);  /* orphans the grandchild, which gets its pdeathsig */
    }
    waitpid(child, NULL, 0);
    int status;
    pid_t got = wait(&status);
    printf("orphan reaped by the subreaper: %d, killed by SIGUSR1 (pdeathsig): %d\n",
           got > 0, WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1);
    printf("done\n");
    return 0;
}
