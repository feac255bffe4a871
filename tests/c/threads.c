/* Threads: clone(CLONE_THREAD...), futex-based mutexes, condition variables
 * and joins (CLONE_CHILD_CLEARTID + FUTEX_WAKE), gettid, thread-directed
 * signals with tgkill, pthread_exit, and exit_group from a thread. */
#include "rf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NTHREADS 8
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long total;
static int ready;
static volatile pid_t handled_in;

static void *sum_range(void *arg)
{
    long i = (long)arg, s = 0;
    for (long k = i * 50000; k < (i + 1) * 50000; k++)
        s += k;
    pthread_mutex_lock(&lock);
    total += s;
    pthread_mutex_unlock(&lock);
    return (void *)(i * i);
}

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!ready)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    pthread_exit((void *)42);
}

static void on_usr1(int sig)
{
    (void)sig;
    handled_in = (pid_t)syscall(SYS_gettid);
}

static void *sleeper(void *arg)
{
    pid_t *tid = arg;
    *tid = (pid_t)syscall(SYS_gettid);
    while (!handled_in)
        usleep(1000);
    return NULL;
}

static void *exiter(void *arg)
{
    (void)arg;
    exit(9);
}

int main(void)
{
    pthread_t t[NTHREADS];
    long joined = 0;
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, sum_range, (void *)i);
    for (int i = 0; i < NTHREADS; i++) {
        void *v;
        pthread_join(t[i], &v);
        joined += (long)v;
    }
    printf("sum %ld expected %ld joined %ld\n", total, (long)NTHREADS * 50000 * (NTHREADS * 50000 - 1) / 2, joined);

    pthread_t w;
    pthread_create(&w, NULL, waiter, NULL);
    usleep(20000);
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    void *v;
    pthread_join(w, &v);
    printf("cond waiter returned %ld\n", (long)v);

    signal(SIGUSR1, on_usr1);
    pid_t target = 0;
    pthread_t s;
    pthread_create(&s, NULL, sleeper, &target);
    while (!target)
        usleep(1000);
    printf("thread tid differs from pid: %d\n", target != getpid());
    syscall(SYS_tgkill, getpid(), target, SIGUSR1);
    pthread_join(s, NULL);
    printf("signal handled in the target thread: %d\n", handled_in == target);

    pid_t child = fork();
    if (child == 0) {
        pthread_t e;
        pthread_create(&e, NULL, exiter, NULL);
        for (;;)
            pause();
    }
    int status;
    waitpid(child, &status, 0);
    printf("exit from a thread ends the process: exited %d status %d\n", WIFEXITED(status), WEXITSTATUS(status));
    printf("done\n");
    return 0;
}
