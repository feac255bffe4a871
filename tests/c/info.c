/* System information family: uname (sysname and machine only), credentials,
 * getrandom, clocks (monotonic never goes back, realtime is plausible,
 * nanosleep sleeps at least as long as asked), sysinfo, rlimits (prlimit64,
 * getrlimit/setrlimit, RLIMIT_NOFILE enforced), sched_yield, getcpu.
 * Prints comparisons, never the values of times, pids or the release. */
#include "rf.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>

static int64_t ns(clockid_t clk)
{
    struct timespec ts;
    /* raw syscall: the sentry must serve it even if the vDSO would not be used */
    if (syscall(SYS_clock_gettime, clk, &ts) < 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(void)
{
    struct utsname u;
    unsigned char r1[32], r2[32];

    rf_init();

    printf("== uname\n");
    SHOW("uname", uname(&u));
    printf("sysname: %s\n", u.sysname);
    printf("machine: %s\n", u.machine);
    YESNO("release non-empty", u.release[0] != 0);
    YESNO("version non-empty", u.version[0] != 0);
    YESNO("nodename non-empty", u.nodename[0] != 0);
    SHOW("uname bad pointer", syscall(SYS_uname, (void *)8));

    printf("== credentials\n");
    printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    SHOW("getresuid", getresuid(&ru, &eu, &su));
    YESNO("getresuid agrees", ru == getuid() && eu == geteuid());
    SHOW("getresgid", getresgid(&rg, &eg, &sg));
    YESNO("getresgid agrees", rg == getgid() && eg == getegid());
    YESNO("getgroups count >= 0", getgroups(0, NULL) >= 0);

    printf("== getrandom\n");
    SHOW("getrandom 32", getrandom(r1, sizeof r1, 0));
    SHOW("getrandom 32 GRND_NONBLOCK", getrandom(r2, sizeof r2, GRND_NONBLOCK));
    YESNO("two draws differ", memcmp(r1, r2, sizeof r1) != 0);
    SHOW("getrandom 0", getrandom(r1, 0, 0));
    SHOW("getrandom bad flags", getrandom(r1, sizeof r1, 0x1000));
    void *volatile badp = (void *)8;
    SHOW("getrandom bad pointer", getrandom(badp, 16, 0));
    int fd = open("/dev/urandom", O_RDONLY);
    SHOW("read /dev/urandom", read(fd, r1, sizeof r1));
    close(fd);

    printf("== clocks\n");
    int64_t prev = ns(CLOCK_MONOTONIC), back = 0;
    YESNO("CLOCK_MONOTONIC readable", prev >= 0);
    for (int i = 0; i < 200; i++) {
        int64_t now = ns(CLOCK_MONOTONIC);
        if (now < prev)
            back++;
        prev = now;
    }
    YESNO("monotonic never went back in 200 reads", back == 0);
    int64_t real = ns(CLOCK_REALTIME);
    YESNO("realtime after 2020-01-01", real / 1000000000 > 1577836800);
    struct timespec res;
    SHOW("clock_getres MONOTONIC", clock_getres(CLOCK_MONOTONIC, &res));
    YESNO("resolution at most 1 ms", res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000);
    SHOW("clock_gettime bad clock", syscall(SYS_clock_gettime, 12345, &res));
    SHOW("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8));
    time_t t = (time_t)syscall(SYS_time, NULL);
    YESNO("time() agrees with realtime", t - real / 1000000000 <= 2 && real / 1000000000 - t <= 2);

    int64_t t0 = ns(CLOCK_MONOTONIC);
    struct timespec ten_ms = { 0, 10 * 1000000 };
    SHOW("nanosleep 10 ms", nanosleep(&ten_ms, NULL));
    int64_t slept = ns(CLOCK_MONOTONIC) - t0;
    YESNO("slept at least 10 ms", slept >= 10 * 1000000);
    YESNO("slept less than 5 s", slept < 5000000000LL);
    struct timespec bad = { 0, 1000000000 };
    SHOW("nanosleep tv_nsec out of range", nanosleep(&bad, NULL));
    t0 = ns(CLOCK_MONOTONIC);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 5 * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    SHOW("clock_nanosleep TIMER_ABSTIME +5 ms", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL));
    YESNO("absolute sleep reached its deadline", ns(CLOCK_MONOTONIC) - t0 >= 4 * 1000000);

    printf("== sysinfo\n");
    struct sysinfo si;
    SHOW("sysinfo", sysinfo(&si));
    YESNO("uptime >= 0", si.uptime >= 0);
    YESNO("totalram > 0", si.totalram > 0);
    YESNO("freeram <= totalram", si.freeram <= si.totalram);
    YESNO("mem_unit >= 1", si.mem_unit >= 1);
    YESNO("procs >= 1", si.procs >= 1);

    printf("== rlimits\n");
    struct rlimit rl, rl2;
    SHOW("prlimit64 NOFILE get", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl));
    YESNO("NOFILE cur > 0", rl.rlim_cur > 0);
    YESNO("NOFILE cur <= max", rl.rlim_cur <= rl.rlim_max);
    SHOW("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &rl2));
    YESNO("getrlimit agrees", rl.rlim_cur == rl2.rlim_cur && rl.rlim_max == rl2.rlim_max);
    SHOW("getrlimit STACK", getrlimit(RLIMIT_STACK, &rl2));
    YESNO("STACK cur <= max", rl2.rlim_cur <= rl2.rlim_max);
    SHOW("getrlimit bad resource", getrlimit(1000, &rl2));
    struct rlimit small = { 16, rl.rlim_max };
    SHOW("setrlimit NOFILE 16", setrlimit(RLIMIT_NOFILE, &small));
    SHOW("prlimit64 NOFILE read back", (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl2), (long)rl2.rlim_cur));
    int last = -1, e = 0;
    for (int i = 0; i < 64; i++) {
        int d = dup(1);
        if (d < 0) {
            e = errno;
            break;
        }
        last = d;
    }
    printf("highest fd before the limit: %d, then %s\n", last, errname(e));
    SHOW("dup2 to fd 16", dup2(1, 16));
    for (int d = 3; d <= last; d++)
        close(d);
    struct rlimit inverted = { 32, 16 };
    SHOW("setrlimit cur > max", setrlimit(RLIMIT_NOFILE, &inverted));
    SHOW("setrlimit restore", setrlimit(RLIMIT_NOFILE, &rl));

    printf("== scheduler\n");
    SHOW("sched_yield", sched_yield());
    unsigned cpu = 0, node = 0;
    SHOW("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL));
    cpu_set_t set;
    CPU_ZERO(&set);
    YESNO("sched_getaffinity has a cpu", sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1);
    YESNO("getcpu is in the affinity mask", CPU_ISSET(cpu, &set));

    printf("done\n");
    return 0;
}
