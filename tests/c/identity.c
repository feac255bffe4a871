/* Identity and limits family: the set*id calls with saved and file-system ids,
 * supplementary groups, capget/capset and the capability transitions of
 * capabilities(7) on uid changes and execve, prctl's capability options,
 * resource limits (RLIMIT_NOFILE enforced, also on another process), nice
 * values, scheduling policies, CPU affinity, getrusage/times and personality.
 *
 * It runs as root (natively and sandboxed) and drops privileges only in
 * forked children.  Capability sets are printed as a few named bits and
 * relations (the host's root may lack some capabilities the sandbox's root
 * has); CPU times and tick counts only as comparisons.
 * `identity report` (run through execve by the children) prints what a
 * program starts with. */
#include "rf.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>

#define NOPID 0x7fffffff /* above any pid_max: never a process */
#define BIT(c) ((uint64_t)1 << (c))

static const char *self_path;

struct caps {
    uint64_t eff, prm, inh;
};

static int get_caps(pid_t pid, struct caps *c)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, pid };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return -1;
    c->eff = d[0].effective | (uint64_t)d[1].effective << 32;
    c->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    c->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    return 0;
}

static long set_caps(const struct caps *c)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = {
        { (uint32_t)c->eff, (uint32_t)c->prm, (uint32_t)c->inh },
        { (uint32_t)(c->eff >> 32), (uint32_t)(c->prm >> 32), (uint32_t)(c->inh >> 32) },
    };
    return syscall(SYS_capset, &h, d);
}

static const char *set_name(uint64_t set, uint64_t prm)
{
    if (set == 0)
        return "none";
    return set == prm ? "=prm" : "some";
}

/* The caller's capabilities: which sets are empty, and a few bits every root has. */
static void show_caps(const char *label)
{
    struct caps c;
    if (get_caps(0, &c) < 0) {
        printf("%s: capget %s\n", label, errname(errno));
        return;
    }
    printf("%s: prm=%s eff=%s inh=%s | prm setuid=%d dac=%d net_raw=%d | eff setuid=%d dac=%d chown=%d"
           " | inh setuid=%d\n",
           label, c.prm ? "some" : "none", set_name(c.eff, c.prm), c.inh ? "some" : "none",
           !!(c.prm & BIT(CAP_SETUID)), !!(c.prm & BIT(CAP_DAC_OVERRIDE)), !!(c.prm & BIT(CAP_NET_RAW)),
           !!(c.eff & BIT(CAP_SETUID)), !!(c.eff & BIT(CAP_DAC_OVERRIDE)), !!(c.eff & BIT(CAP_CHOWN)),
           !!(c.inh & BIT(CAP_SETUID)));
}

static void show_ids(const char *label)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%s: uid %d %d %d fsuid %d gid %d %d %d fsgid %d\n", label, (int)r, (int)e, (int)s,
           (int)setfsuid(-1), (int)gr, (int)ge, (int)gs, (int)setfsgid(-1));
}

/* `identity report`: what a freshly executed program holds. */
static int report(void)
{
    show_ids("after exec");
    show_caps("after exec");
    struct caps c;
    get_caps(0, &c);
    uint64_t amb = 0;
    for (int cap = 0; cap <= CAP_SETUID; cap++)
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
            amb |= BIT(cap);
    printf("after exec: ambient setuid=%d; prm==ambient %s\n", !!(amb & BIT(CAP_SETUID)),
           c.prm == amb ? "yes" : "no");
    SHOW("after exec: keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("after exec: nice", getpriority(PRIO_PROCESS, 0));
    SHOW("after exec: policy", sched_getscheduler(0));
    printf("after exec: personality %#x\n", personality(0xffffffff));
    return 0;
}

static void exec_report(void)
{
    fflush(stdout);
    execl(self_path, self_path, "report", (char *)NULL);
    printf("execl: %s\n", errname(errno));
    _exit(1);
}

/* Run fn in a forked child and report how it ended. */
static void in_child(const char *name, void (*fn)(void))
{
    printf("-- %s\n", name);
    pid_t pid = fork();
    MUST(pid);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status;
    MUST(waitpid(pid, &status, 0));
    show_status(name, status);
}

/* ------------------------------------------------------------------ ids */

static void ids_as_root(void)
{
    show_ids("root");
    gid_t list[8] = { 5, 3, 5 };
    SHOW("setgroups 5 3 5", setgroups(3, list));
    SHOW("getgroups count", getgroups(0, NULL));
    memset(list, 0xff, sizeof list);
    SHOW("getgroups", getgroups(8, list));
    printf("groups (sorted): %d %d %d\n", (int)list[0], (int)list[1], (int)list[2]);
    SHOW("getgroups too small", getgroups(1, list));
    SHOW("setgroups negative size", syscall(SYS_setgroups, -1, list));
    SHOW("setgroups NGROUPS_MAX+1", syscall(SYS_setgroups, 65537, list));
    SHOW("setgroups bad pointer", syscall(SYS_setgroups, 1, (void *)8));
    gid_t invalid = (gid_t)-1;
    SHOW("setgroups gid -1", syscall(SYS_setgroups, 1, &invalid));
    SHOW("setgroups none", setgroups(0, NULL));
    SHOW("getgroups count", getgroups(0, NULL));
    SHOW("setuid -1", syscall(SYS_setuid, -1));
    SHOW("setgid -1", syscall(SYS_setgid, -1));
    SHOW("setresuid -1 -1 -1", setresuid(-1, -1, -1));
    SHOW("setreuid -1 -1", setreuid(-1, -1));
    SHOW("setfsuid -1 (query)", setfsuid(-1));
}

static void gids_as_root(void)
{
    SHOW("setresgid 1000 2000 3000", setresgid(1000, 2000, 3000));
    show_ids("gids");
    show_caps("after gid change");
    SHOW("setregid -1 4000", setregid(-1, 4000));
    show_ids("setregid -1 4000 (saved follows)");
    SHOW("setregid -1 1000", setregid(-1, 1000));
    show_ids("setregid -1 <real> (saved kept)");
    SHOW("setresgid 1000 2000 3000", setresgid(1000, 2000, 3000));
    SHOW("setresuid 1000 1000 1000", setresuid(1000, 1000, 1000));
    SHOW("setgid 3000 (saved)", setgid(3000));
    show_ids("unprivileged setgid");
    SHOW("setgid 4000", setgid(4000));
    SHOW("setregid 3000 -1", setregid(3000, -1));
    show_ids("setregid 3000 -1");
    SHOW("setresgid 1000 -1 -1", setresgid(1000, -1, -1));
    SHOW("setfsgid 1000 (returns old)", setfsgid(1000));
    SHOW("setfsgid -1 (not changed)", setfsgid(-1));
    SHOW("setgroups unprivileged", setgroups(0, NULL));
}

static void drop_with_setuid(void)
{
    MUST(setgroups(0, NULL));
    SHOW("setgid 1000", setgid(1000));
    SHOW("setuid 1000", setuid(1000));
    show_ids("setuid 1000");
    show_caps("setuid 1000");
    SHOW("setuid 0", setuid(0));
    SHOW("setgid 0", setgid(0));
    SHOW("setresuid 1000 1000 1000 (no change)", setresuid(1000, 1000, 1000));
    SHOW("setreuid -1 0", setreuid(-1, 0));
    SHOW("setresuid 0 -1 -1", setresuid(0, -1, -1));
    SHOW("setfsuid 0 (returns old)", setfsuid(0));
    SHOW("setfsuid -1 (not changed)", setfsuid(-1));
    SHOW("setgroups", setgroups(0, NULL));
    SHOW("kill(parent, 0) without CAP_KILL", kill(getppid(), 0));
    SHOW("kill(self, 0)", kill(getpid(), 0));
    struct caps c = { BIT(CAP_SETUID), BIT(CAP_SETUID), 0 };
    SHOW("capset raise", set_caps(&c));
    SHOW("PR_CAPBSET_DROP", prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
    SHOW("PR_CAPBSET_READ setuid (bounding kept)", prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0));
    struct rlimit rl;
    MUST(getrlimit(RLIMIT_NOFILE, &rl));
    struct rlimit higher = { rl.rlim_cur, rl.rlim_max + 1 };
    SHOW("setrlimit raise hard", setrlimit(RLIMIT_NOFILE, &higher));
    struct rlimit lower = { 64, rl.rlim_max - 1 };
    SHOW("setrlimit lower", setrlimit(RLIMIT_NOFILE, &lower));
    SHOW("setrlimit back to the old hard", setrlimit(RLIMIT_NOFILE, &rl));
    SHOW("prlimit64 on root's process", syscall(SYS_prlimit64, getppid(), RLIMIT_NOFILE, NULL, &rl));
    SHOW("setpriority 5", setpriority(PRIO_PROCESS, 0, 5));
    SHOW("getpriority", getpriority(PRIO_PROCESS, 0));
    SHOW("setpriority back to 0", setpriority(PRIO_PROCESS, 0, 0));
    SHOW("setpriority root's process", setpriority(PRIO_PROCESS, getppid(), 10));
    struct sched_param sp = { 10 };
    SHOW("SCHED_FIFO unprivileged", sched_setscheduler(0, SCHED_FIFO, &sp));
    sp.sched_priority = 0;
    SHOW("SCHED_BATCH unprivileged", sched_setscheduler(0, SCHED_BATCH, &sp));
    SHOW("SCHED_OTHER again", sched_setscheduler(0, SCHED_OTHER, &sp));
    SHOW("sched_setscheduler root's process", sched_setscheduler(getppid(), SCHED_OTHER, &sp));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    SHOW("sched_setaffinity root's process", sched_setaffinity(getppid(), sizeof set, &set));
    exec_report();
}

static void drop_effective_only(void)
{
    SHOW("setresuid -1 1000 -1", setresuid(-1, 1000, -1));
    show_ids("euid 1000");
    show_caps("euid 1000");
    SHOW("setuid 2000", setuid(2000));
    SHOW("seteuid 0", seteuid(0));
    show_caps("euid 0 again");
    SHOW("setresuid -1 1000 -1", setresuid(-1, 1000, -1));
    exec_report(); /* real uid 0: permitted comes back, effective stays empty */
}

static void drop_with_setreuid(void)
{
    SHOW("setreuid -1 1000", setreuid(-1, 1000));
    show_ids("setreuid -1 1000");
    show_caps("setreuid -1 1000");
    SHOW("setreuid 1000 1000", setreuid(1000, 1000));
    show_ids("setreuid 1000 1000");
    show_caps("setreuid 1000 1000");
}

static void keep_caps(void)
{
    SHOW("PR_SET_KEEPCAPS 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
    SHOW("PR_SET_KEEPCAPS 1", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    SHOW("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    SHOW("setresuid 1000 1000 1000", setresuid(1000, 1000, 1000));
    show_caps("keepcaps, uid 1000");
    struct caps c;
    MUST(get_caps(0, &c));
    c.eff = c.prm;
    SHOW("capset effective = permitted", set_caps(&c));
    show_caps("raised");
    SHOW("setuid 0 (with CAP_SETUID)", setuid(0));
    show_ids("back to root");
    show_caps("back to root");
}

static void keep_caps_then_exec(void)
{
    MUST(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    MUST(setresuid(1000, 1000, 1000));
    exec_report(); /* no ambient capabilities: none survive */
}

static void ambient_then_exec(void)
{
    struct caps c;
    MUST(get_caps(0, &c));
    c.inh = BIT(CAP_SETUID) | BIT(CAP_NET_BIND_SERVICE);
    SHOW("capset inheritable", set_caps(&c));
    SHOW("ambient raise setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
    SHOW("ambient is_set setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    MUST(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    SHOW("setresuid 1000 1000 1000", setresuid(1000, 1000, 1000));
    SHOW("ambient is_set after leaving root", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    SHOW("ambient raise setuid again", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
    exec_report(); /* the ambient set becomes permitted and effective */
}

static void fsuid_changes(void)
{
    SHOW("setfsuid 1000 (returns old)", setfsuid(1000));
    show_ids("fsuid 1000");
    show_caps("fsuid 1000");
    SHOW("setfsuid 0", setfsuid(0));
    show_caps("fsuid 0 again");
    SHOW("seteuid 1000", seteuid(1000));
    SHOW("setfsuid 0 (saved uid)", setfsuid(0));
    SHOW("setfsuid -1", setfsuid(-1));
    show_caps("euid 1000 fsuid 0");
}

static void root_exec(void)
{
    exec_report();
}

/* securebits (linux/securebits.h): no fix-up on uid changes, no root privilege on exec, locks. */
#define SECBIT_NOROOT 0x01
#define SECBIT_NO_SETUID_FIXUP 0x04
#define SECBIT_KEEP_CAPS 0x10
#define SECBIT_KEEP_CAPS_LOCKED 0x20

static void securebits(void)
{
    SHOW("PR_SET_SECUREBITS unknown bit", prctl(PR_SET_SECUREBITS, 0x1000, 0, 0, 0));
    SHOW("PR_SET_SECUREBITS KEEP_CAPS|locked", prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
    SHOW("PR_SET_KEEPCAPS 0 while locked", prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("unlocking", prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0));
    SHOW("PR_SET_SECUREBITS NO_SETUID_FIXUP|NOROOT (lock kept)",
         prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NOROOT, 0, 0, 0));
    SHOW("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    SHOW("seteuid 1000", seteuid(1000));
    show_caps("no fix-up, euid 1000");
    SHOW("setfsuid 0 (returns old)", setfsuid(0));
    show_caps("no fix-up, fsuid 0");
    SHOW("seteuid 0", seteuid(0));
    exec_report(); /* no root privilege: the permitted set empties */
}

/* ----------------------------------------------------------- capabilities */

static void capabilities_as_root(void)
{
    show_caps("root");
    struct __user_cap_header_struct h = { 0x12345678, 0 };
    struct __user_cap_data_struct d[2];
    SHOW("capget bad version", syscall(SYS_capget, &h, d));
    YESNO("version written back is v3", h.version == _LINUX_CAPABILITY_VERSION_3);
    h.version = 1;
    SHOW("capget bad version, NULL data", syscall(SYS_capget, &h, NULL));
    YESNO("version written back is v3", h.version == _LINUX_CAPABILITY_VERSION_3);
    SHOW("capget v3 NULL data", syscall(SYS_capget, &h, NULL));
    h.version = _LINUX_CAPABILITY_VERSION_1;
    memset(d, 0, sizeof d);
    SHOW("capget v1", syscall(SYS_capget, &h, d));
    YESNO("v1 has setuid", d[0].effective & BIT(CAP_SETUID));
    YESNO("v1 left the second struct alone", d[1].effective == 0);
    h.version = _LINUX_CAPABILITY_VERSION_2;
    SHOW("capget v2", syscall(SYS_capget, &h, d));
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = NOPID;
    SHOW("capget no such pid", syscall(SYS_capget, &h, d));
    h.pid = -1;
    SHOW("capget pid -1", syscall(SYS_capget, &h, d));
    h.pid = 0;
    SHOW("capget bad data pointer", syscall(SYS_capget, &h, (void *)8));
    SHOW("capget bad header pointer", syscall(SYS_capget, (void *)8, d));
    h.version = 0;
    SHOW("capset bad version", syscall(SYS_capset, &h, d));

    int ready[2];
    MUST(pipe(ready));
    pid_t child = fork();
    MUST(child);
    if (child == 0) {
        char b;
        close(ready[1]);
        read(ready[0], &b, 1);
        _exit(0);
    }
    close(ready[0]);
    struct caps mine, theirs;
    MUST(get_caps(0, &mine));
    SHOW("capget of a child", get_caps(child, &theirs));
    YESNO("child's capabilities are ours", mine.eff == theirs.eff && mine.prm == theirs.prm);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = child;
    SHOW("capset of a child", syscall(SYS_capset, &h, d));
    close(ready[1]);
    MUST(waitpid(child, NULL, 0));

    SHOW("PR_CAPBSET_READ setuid", prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0));
    SHOW("PR_CAPBSET_READ 64", prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
    SHOW("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    SHOW("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    SHOW("ambient is_set setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    SHOW("ambient raise without inheritable", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
    SHOW("ambient is_set cap 64", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 64, 0, 0));
    SHOW("ambient bad op", prctl(PR_CAP_AMBIENT, 99, CAP_SETUID, 0, 0));
    SHOW("ambient clear_all with a cap", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
    SHOW("ambient clear_all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
}

static void capset_reduces(void)
{
    struct caps c;
    MUST(get_caps(0, &c));
    struct caps fewer = { c.eff & ~BIT(CAP_NET_RAW), c.prm & ~BIT(CAP_NET_RAW), 0 };
    SHOW("capset drop net_raw", set_caps(&fewer));
    show_caps("net_raw dropped");
    SHOW("capset permitted back", set_caps(&c));
    struct caps wider = fewer;
    wider.eff |= BIT(CAP_NET_RAW);
    SHOW("capset effective beyond permitted", set_caps(&wider));
    struct caps inh = fewer;
    inh.inh = BIT(CAP_SETUID);
    SHOW("capset inheritable setuid", set_caps(&inh));
    SHOW("ambient raise setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
    SHOW("ambient is_set setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    SHOW("ambient lower setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_SETUID, 0, 0));
    SHOW("ambient is_set setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    SHOW("ambient raise setuid", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
    SHOW("capset inheritable empty", set_caps(&fewer));
    SHOW("ambient follows inheritable", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SETUID, 0, 0));
    SHOW("PR_CAPBSET_DROP net_raw", prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
    SHOW("PR_CAPBSET_READ net_raw", prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
    SHOW("PR_CAPBSET_DROP 64", prctl(PR_CAPBSET_DROP, 64, 0, 0, 0));
    inh.inh = BIT(CAP_NET_RAW);
    inh.prm = inh.eff = fewer.prm;
    SHOW("capset inheritable outside bounding and permitted", set_caps(&inh));
    struct caps no_setpcap = { fewer.eff & ~BIT(CAP_SETPCAP), fewer.prm, 0 };
    SHOW("capset drop setpcap from effective", set_caps(&no_setpcap));
    SHOW("PR_CAPBSET_DROP without setpcap", prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0));
    SHOW("PR_SET_SECUREBITS without setpcap", prctl(PR_SET_SECUREBITS, 0, 0, 0, 0));
    SHOW("PR_SET_KEEPCAPS without setpcap", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    struct caps none = { 0, 0, 0 };
    SHOW("capset all empty", set_caps(&none));
    show_caps("empty");
    SHOW("setuid 1000 without setuid", setuid(1000));
    SHOW("setgroups without setgid", setgroups(0, NULL));
}

/* --------------------------------------------------------------- limits */

static void fill_fds(const char *label)
{
    int last = -1, e = 0;
    for (int i = 0; i < 64; i++) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            e = errno;
            break;
        }
        last = fd;
    }
    printf("%s: highest fd %d, then %s\n", label, last, errname(e));
    for (int fd = 3; fd <= last; fd++)
        close(fd);
}

static void limits(void)
{
    struct rlimit rl, got;
    SHOW("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &rl));
    struct rlimit ten = { 10, rl.rlim_max };
    SHOW("setrlimit NOFILE 10", setrlimit(RLIMIT_NOFILE, &ten));
    SHOW("getrlimit NOFILE soft", (getrlimit(RLIMIT_NOFILE, &got), (long)got.rlim_cur));
    fill_fds("NOFILE 10");
    SHOW("dup2 to fd 10", dup2(0, 10));
    SHOW("F_DUPFD from 10", fcntl(0, F_DUPFD, 10));
    SHOW("setrlimit restore", setrlimit(RLIMIT_NOFILE, &rl));
    struct rlimit too_many = { 16, (1 << 20) + 1 };
    SHOW("setrlimit NOFILE above nr_open", setrlimit(RLIMIT_NOFILE, &too_many));
    struct rlimit inverted = { 32, 16 };
    SHOW("setrlimit cur > max", setrlimit(RLIMIT_NOFILE, &inverted));
    SHOW("getrlimit 16", getrlimit(16, &got));
    SHOW("setrlimit 16", setrlimit(16, &rl));
    SHOW("getrlimit bad pointer", getrlimit(RLIMIT_NOFILE, (void *)8));
    SHOW("setrlimit bad pointer", setrlimit(RLIMIT_NOFILE, (void *)8));
    SHOW("prlimit64 no such pid", syscall(SYS_prlimit64, NOPID, RLIMIT_NOFILE, NULL, &got));

    struct rlimit stack;
    MUST(getrlimit(RLIMIT_STACK, &stack));
    struct rlimit four = { 4 << 20, stack.rlim_max };
    SHOW("setrlimit STACK 4 MiB", setrlimit(RLIMIT_STACK, &four));
    SHOW("getrlimit STACK soft (MiB)", (getrlimit(RLIMIT_STACK, &got), (long)(got.rlim_cur >> 20)));
    struct rlimit as = { (rlim_t)1 << 40, RLIM_INFINITY };
    SHOW("setrlimit AS 1 TiB", setrlimit(RLIMIT_AS, &as));
    SHOW("getrlimit AS soft (GiB)", (getrlimit(RLIMIT_AS, &got), (long)(got.rlim_cur >> 30)));
    YESNO("AS hard unlimited", got.rlim_max == RLIM_INFINITY);
    struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
    SHOW("prlimit64 AS unlimited", syscall(SYS_prlimit64, 0, RLIMIT_AS, &unlimited, &got));
    SHOW("old AS soft (GiB)", (long)(got.rlim_cur >> 30));

    /* Another process's RLIMIT_NOFILE, set with prlimit64, is enforced there. */
    int go[2];
    MUST(pipe(go));
    pid_t child = fork();
    MUST(child);
    if (child == 0) {
        char b;
        close(go[1]);
        read(go[0], &b, 1);
        struct rlimit nofile, stack_seen;
        getrlimit(RLIMIT_NOFILE, &nofile);
        getrlimit(RLIMIT_STACK, &stack_seen);
        printf("child sees NOFILE %ld, STACK %ld MiB\n", (long)nofile.rlim_cur, (long)(stack_seen.rlim_cur >> 20));
        fill_fds("child NOFILE 6");
        _exit(0);
    }
    close(go[0]);
    struct rlimit six = { 6, rl.rlim_max };
    SHOW("prlimit64 child NOFILE 6", syscall(SYS_prlimit64, child, RLIMIT_NOFILE, &six, &got));
    YESNO("old value is ours", got.rlim_cur == rl.rlim_cur);
    close(go[1]);
    int status;
    MUST(waitpid(child, &status, 0));
    show_status("prlimit child", status);
    MUST(setrlimit(RLIMIT_STACK, &stack));
}

/* ----------------------------------------------------------- priorities */

static void pgrp_priority(void)
{
    MUST(setpgid(0, 0));
    SHOW("setpriority PRIO_PGRP 7", setpriority(PRIO_PGRP, 0, 7));
    SHOW("getpriority PRIO_PROCESS", getpriority(PRIO_PROCESS, 0));
    SHOW("getpriority PRIO_PGRP", getpriority(PRIO_PGRP, 0));
    SHOW("getpriority PRIO_PGRP of our pgid", getpriority(PRIO_PGRP, getpgrp()));
}

static void user_priority(void)
{
    MUST(setresuid(54321, 54321, 54321));
    SHOW("setpriority PRIO_USER 0 -> 12", setpriority(PRIO_USER, 0, 12));
    SHOW("getpriority PRIO_USER 0", getpriority(PRIO_USER, 0));
    SHOW("getpriority PRIO_USER 54321", getpriority(PRIO_USER, 54321));
    SHOW("raw getpriority PRIO_USER", syscall(SYS_getpriority, PRIO_USER, 0));
}

static void show_nice(const char *label)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    printf("%s: nice %d %s\n", label, nice, errno ? errname(errno) : "");
}

static void nice_extremes(void)
{
    show_nice("inherited");
    SHOW("setpriority 100", setpriority(PRIO_PROCESS, 0, 100));
    show_nice("after 100");
    SHOW("setpriority -30 (root)", setpriority(PRIO_PROCESS, 0, -30));
    show_nice("after -30");
    SHOW("raw getpriority (20 - nice)", syscall(SYS_getpriority, PRIO_PROCESS, 0));
}

static void priorities(void)
{
    SHOW("getpriority", getpriority(PRIO_PROCESS, 0));
    SHOW("raw getpriority (20 - nice)", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    SHOW("setpriority 10", setpriority(PRIO_PROCESS, 0, 10));
    SHOW("getpriority", getpriority(PRIO_PROCESS, 0));
    SHOW("raw getpriority (20 - nice)", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    SHOW("getpriority bad which", getpriority(7, 0));
    SHOW("setpriority bad which", setpriority(7, 0, 1));
    SHOW("getpriority no such pid", getpriority(PRIO_PROCESS, NOPID));
    SHOW("setpriority no such pid", setpriority(PRIO_PROCESS, NOPID, 1));
    SHOW("getpriority no such user", getpriority(PRIO_USER, 54329));
    in_child("nice extremes", nice_extremes);
    in_child("process group", pgrp_priority);
    in_child("user", user_priority);
}

/* ------------------------------------------------------------ scheduler */

static void show_policy(const char *label)
{
    struct sched_param sp = { -1 };
    int policy = sched_getscheduler(0);
    sched_getparam(0, &sp);
    printf("%s: policy %#x priority %d\n", label, policy, sp.sched_priority);
}

static void show_child_policy(void)
{
    show_policy("child");
}

static void show_child_affinity(void)
{
    cpu_set_t got;
    CPU_ZERO(&got);
    MUST(sched_getaffinity(0, sizeof got, &got));
    printf("child mask: %d cpu(s)\n", CPU_COUNT(&got));
}

static void realtime(void)
{
    struct sched_param sp = { 10 };
    SHOW("SCHED_FIFO 10", sched_setscheduler(0, SCHED_FIFO, &sp));
    show_policy("fifo");
    sp.sched_priority = 20;
    SHOW("sched_setparam 20", sched_setparam(0, &sp));
    show_policy("fifo 20");
    sp.sched_priority = 0;
    SHOW("sched_setparam 0 under FIFO", sched_setparam(0, &sp));
    sp.sched_priority = 5;
    SHOW("SCHED_RR 5 | RESET_ON_FORK", sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp));
    show_policy("rr");
    in_child("forked from RR with reset-on-fork", show_child_policy);
    sp.sched_priority = 0;
    SHOW("SCHED_OTHER", sched_setscheduler(0, SCHED_OTHER, &sp));
}

static void scheduler(void)
{
    show_policy("start");
    int policies[] = { SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, 42 };
    for (unsigned i = 0; i < sizeof policies / sizeof *policies; i++) {
        char label[64];
        snprintf(label, sizeof label, "priority range of %d", policies[i]);
        errno = 0;
        int lo = sched_get_priority_min(policies[i]), hi = sched_get_priority_max(policies[i]);
        printf("%s: %d..%d %s\n", label, lo, hi, lo < 0 ? errname(errno) : "");
    }
    struct sched_param sp = { 0 };
    SHOW("getscheduler pid -1", sched_getscheduler(-1));
    SHOW("getscheduler no such pid", sched_getscheduler(NOPID));
    SHOW("getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
    SHOW("getparam bad pointer", sched_getparam(0, (void *)8));
    SHOW("SCHED_BATCH", sched_setscheduler(0, SCHED_BATCH, &sp));
    show_policy("batch");
    SHOW("SCHED_IDLE", sched_setscheduler(0, SCHED_IDLE, &sp));
    show_policy("idle");
    SHOW("SCHED_OTHER", sched_setscheduler(0, SCHED_OTHER, &sp));
    sp.sched_priority = 5;
    SHOW("SCHED_OTHER priority 5", sched_setscheduler(0, SCHED_OTHER, &sp));
    SHOW("SCHED_FIFO priority 100", (sp.sched_priority = 100, sched_setscheduler(0, SCHED_FIFO, &sp)));
    sp.sched_priority = 0;
    SHOW("SCHED_FIFO priority 0", sched_setscheduler(0, SCHED_FIFO, &sp));
    SHOW("policy 42", sched_setscheduler(0, 42, &sp));
    SHOW("policy -1", syscall(SYS_sched_setscheduler, 0, -1, &sp));
    SHOW("NULL param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    SHOW("pid -1", sched_setscheduler(-1, SCHED_OTHER, &sp));
    SHOW("no such pid", sched_setscheduler(NOPID, SCHED_OTHER, &sp));
    SHOW("SCHED_BATCH | RESET_ON_FORK", sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp));
    show_policy("batch, reset on fork");
    in_child("forked with reset-on-fork", show_child_policy);
    SHOW("SCHED_OTHER (clears reset-on-fork)", sched_setscheduler(0, SCHED_OTHER, &sp));
    in_child("real-time", realtime);

    cpu_set_t set, got;
    CPU_ZERO(&got);
    SHOW("sched_getaffinity", sched_getaffinity(0, sizeof got, &got) < 0 ? -1 : 0);
    YESNO("cpu 0 allowed", CPU_ISSET(0, &got));
    SHOW("sched_getaffinity 4-byte mask", syscall(SYS_sched_getaffinity, 0, 4, &got));
    SHOW("sched_getaffinity no such pid", sched_getaffinity(NOPID, sizeof got, &got));
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    SHOW("sched_setaffinity cpu 0", sched_setaffinity(0, sizeof set, &set));
    CPU_ZERO(&got);
    SHOW("sched_getaffinity", sched_getaffinity(0, sizeof got, &got) < 0 ? -1 : 0);
    printf("mask: %d cpu(s), cpu 0 %s\n", CPU_COUNT(&got), CPU_ISSET(0, &got) ? "set" : "clear");
    unsigned cpu = 99;
    SHOW("getcpu", syscall(SYS_getcpu, &cpu, NULL, NULL));
    printf("getcpu says cpu %u\n", cpu);
    CPU_ZERO(&set);
    CPU_SET(1000, &set);
    SHOW("sched_setaffinity cpu 1000 only", sched_setaffinity(0, sizeof set, &set));
    SHOW("sched_setaffinity empty mask", sched_setaffinity(0, 0, &set));
    SHOW("sched_setaffinity bad pointer", syscall(SYS_sched_setaffinity, 0, sizeof set, (void *)8));
    SHOW("sched_setaffinity no such pid", sched_setaffinity(NOPID, sizeof set, &set));
    in_child("affinity is inherited", show_child_affinity);
    memset(&set, 0xff, sizeof set);
    SHOW("sched_setaffinity every cpu", sched_setaffinity(0, sizeof set, &set));
    SHOW("sched_yield", sched_yield());
}

/* ----------------------------------------------------------------- usage */

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t tv_us(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void usage(void)
{
    struct tms before, after;
    clock_t t0 = times(&before);
    YESNO("times returned a count", t0 != (clock_t)-1);
    volatile uint64_t x = 0;
    while (cpu_ns(CLOCK_PROCESS_CPUTIME_ID) < 150 * 1000000LL)
        for (int i = 0; i < 100000; i++)
            x += i;
    clock_t t1 = times(&after);
    YESNO("times went forward", t1 >= t0);
    YESNO("user+system ticks grew by at least 5",
          (after.tms_utime + after.tms_stime) - (before.tms_utime + before.tms_stime) >= 5);
    YESNO("no negative tick counts", after.tms_utime >= 0 && after.tms_stime >= 0 && after.tms_cutime >= 0 &&
                                      after.tms_cstime >= 0);
    SHOW("times NULL", times(NULL) == (clock_t)-1 ? -1 : 0);

    struct rusage ru;
    SHOW("getrusage SELF", getrusage(RUSAGE_SELF, &ru));
    int64_t self = tv_us(ru.ru_utime) + tv_us(ru.ru_stime);
    YESNO("self used at least 100 ms", self >= 100000);
    YESNO("self used less than 60 s", self < 60000000);
    YESNO("microseconds in range", ru.ru_utime.tv_usec < 1000000 && ru.ru_stime.tv_usec < 1000000);
    SHOW("getrusage THREAD", getrusage(RUSAGE_THREAD, &ru));
    YESNO("thread used at least 100 ms", tv_us(ru.ru_utime) + tv_us(ru.ru_stime) >= 100000);
    SHOW("getrusage CHILDREN", getrusage(RUSAGE_CHILDREN, &ru));
    YESNO("children's times not negative", tv_us(ru.ru_utime) >= 0 && tv_us(ru.ru_stime) >= 0);
    SHOW("getrusage 5", getrusage(5, &ru));
    SHOW("getrusage bad pointer", getrusage(RUSAGE_SELF, (void *)8));
}

/* ----------------------------------------------------------- personality */

static void show_personality(void)
{
    printf("child personality %#x\n", personality(0xffffffff));
}

static void personalities(void)
{
    printf("personality %#x\n", personality(0xffffffff));
    printf("set ADDR_NO_RANDOMIZE, old %#x\n", personality(PER_LINUX | ADDR_NO_RANDOMIZE));
    printf("personality %#x\n", personality(0xffffffff));
    in_child("personality is inherited", show_personality);
    in_child("and kept across exec", root_exec);
    printf("back to PER_LINUX, old %#x\n", personality(PER_LINUX));
}

int main(int argc, char **argv)
{
    rf_init();
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        return report();

    printf("== ids\n");
    ids_as_root();
    in_child("gids", gids_as_root);
    in_child("setuid 1000", drop_with_setuid);
    in_child("effective uid only", drop_effective_only);
    in_child("setreuid", drop_with_setreuid);
    in_child("keep capabilities", keep_caps);
    in_child("keep capabilities, then exec", keep_caps_then_exec);
    in_child("ambient capabilities, then exec", ambient_then_exec);
    in_child("file-system uid", fsuid_changes);
    in_child("root exec", root_exec);
    in_child("securebits", securebits);

    printf("== capabilities\n");
    capabilities_as_root();
    in_child("capset reduces", capset_reduces);

    printf("== limits\n");
    limits();

    printf("== priorities\n");
    priorities();

    printf("== scheduler\n");
    scheduler();

    printf("== usage\n");
    usage();

    printf("== personality\n");
    personalities();

    printf("done\n");
    return 0;
}
