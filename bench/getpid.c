/* getpid.c N: N raw getpid syscalls in a loop; prints the cost per call.
 * Output: "getpid N=<n> total_ns=<t> ns_per_op=<x>". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long raw_getpid(void)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_getpid) : "rcx", "r11", "memory");
    return ret;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0)
        n = 1;
    for (long i = 0; i < n / 100 + 1; i++) /* warm up */
        raw_getpid();
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        raw_getpid();
    long long t = now_ns() - t0;
    printf("getpid N=%ld total_ns=%lld ns_per_op=%.1f\n", n, t, (double)t / n);
    return 0;
}
