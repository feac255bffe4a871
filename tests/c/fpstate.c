/* A signal handler that clobbers SSE and AVX registers must not change the
 * interrupted code's registers: the frame saves and sigreturn restores the
 * whole XSAVE state (upper ymm halves included). */
#include "rf.h"
#include <immintrin.h>
#include <signal.h>

static volatile int handled;

__attribute__((target("avx"))) static void clobber(void)
{
    __asm__ volatile("vxorpd %%ymm1, %%ymm1, %%ymm1\n\tvxorpd %%ymm2, %%ymm2, %%ymm2" ::: "xmm1", "xmm2");
}

static void on_usr1(int sig)
{
    (void)sig;
    if (__builtin_cpu_supports("avx"))
        clobber();
    __asm__ volatile("xorpd %%xmm3, %%xmm3" ::: "xmm3");
    handled++;
}

__attribute__((target("avx"))) static void check_avx(void)
{
    double out[4];
    register __m256d v __asm__("ymm1") = _mm256_set_pd(4.0, 3.0, 2.0, 1.0);
    __asm__ volatile("" : "+x"(v));
    raise(SIGUSR1);
    __asm__ volatile("" : "+x"(v));
    _mm256_storeu_pd(out, v);
    printf("ymm1 after the handler: %g %g %g %g\n", out[0], out[1], out[2], out[3]);
}

int main(void)
{
    signal(SIGUSR1, on_usr1);
    register __m128d x __asm__("xmm3") = _mm_set_pd(6.0, 5.0);
    __asm__ volatile("" : "+x"(x));
    raise(SIGUSR1);
    __asm__ volatile("" : "+x"(x));
    double lo[2];
    _mm_storeu_pd(lo, x);
    printf("xmm3 after the handler: %g %g\n", lo[0], lo[1]);
    if (__builtin_cpu_supports("avx"))
        check_avx();
    else
        printf("ymm1 after the handler: 1 2 3 4 (no AVX on this CPU)\n");
    printf("handlers run: %d\n", handled);
    printf("done\n");
    return 0;
}
