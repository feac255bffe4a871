/* Raw futex operations: WAIT value mismatch and timeout, WAKE counts,
 * REQUEUE / CMP_REQUEUE moving waiters, WAKE_OP updating the second word. */
#include "rf.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

static uint32_t word, word2;
static volatile int started, finished;

static long fx(uint32_t *a, int op, uint32_t v, const void *ts_or_v2, uint32_t *a2, uint32_t v3)
{
    return syscall(SYS_futex, a, op, v, ts_or_v2, a2, v3);
}

static void *waiter(void *arg)
{
    (void)arg;
    __sync_fetch_and_add(&started, 1);
    fx(&word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    __sync_fetch_and_add(&finished, 1);
    return NULL;
}

static void settle(void)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
}

int main(void)
{
    long r = fx(&word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
    printf("wait on changed value: %ld %s\n", r, errname(errno));
    struct timespec ts = {0, 20000000};
    r = fx(&word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    printf("wait with timeout: %ld %s\n", r, errname(errno));
    printf("wake with no waiters: %ld\n", fx(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));

    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, waiter, NULL);
    while (started < 3)
        settle();
    settle();
    printf("wake 1 of 3: %ld\n", fx(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    r = fx(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1L, &word2, 99);
    printf("cmp_requeue with a stale value: %ld %s\n", r, errname(errno));
    printf("requeue 1 woken + 1 moved: %ld\n", fx(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1L, &word2, 0));
    word2 = 5;
    int op = FUTEX_OP(FUTEX_OP_ADD, 10, FUTEX_OP_CMP_EQ, 5);
    r = fx(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &word2, op);
    printf("wake_op woke %ld, second word now %u\n", r, word2);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("all waiters finished: %d\n", finished);
    printf("done\n");
    return 0;
}
