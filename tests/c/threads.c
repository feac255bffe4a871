/* Threads: clone(CLONE_THREAD...), futex-based mutexes, condition variables
 * and joins (CLONE_CHILD_CLEARTID + FUTEX_WAKE), gettid, thread-directed
 * signals with tgkill, pthread_exit, and exit_group from a thread. */
#include "rf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

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

static long thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins until its own CPU clock shows 150 ms; returns that reading. */
static void *spinner(void *arg)
{
    long *out = arg;
    do {
        volatile long x = 0;
        for (int i = 0; i < 100000; i++)
            x += i;
    } while ((*out = thread_cpu_ns()) < 150000000L);
    return NULL;
}

/* Sleeps 200 ms; returns its CPU clock then. */
static void *idler(void *arg)
{
    usleep(200000);
    *(long *)arg = thread_cpu_ns();
    return NULL;
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

    /* Each thread's CPU clock counts its own time: a sleeping thread's stays small. */
    long busy = 0, idle = 0;
    pthread_t b, i;
    pthread_create(&b, NULL, spinner, &busy);
    pthread_create(&i, NULL, idler, &idle);
    pthread_join(b, NULL);
    pthread_join(i, NULL);
    struct timespec proc;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &proc);
    printf("thread CPU clocks: busy >= 150 ms %d, idle < 50 ms %d, busy <= process %d\n", busy >= 150000000L,
           idle < 50000000L, busy <= proc.tv_sec * 1000000000L + proc.tv_nsec);
    printf("done\n");
    return 0;
}
