/*
 * The ptrace platform's hot path: stub creation, the wait/registers/resume
 * loop, syscall injection and memory copies.  Policy lives in Python; this
 * file only moves registers and bytes.
 *
 * A "stub" is a host process whose address space holds nothing but one page
 * of code (the stub page): a `syscall; int3` gadget used to run syscalls on
 * the sentry's behalf.  The sandboxed program's pages are mapped around it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <elf.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/rseq.h>
#include <linux/prctl.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

#define RF_TASK_SIZE 0x7ffffffff000UL
#define RF_PAGE 4096UL
/* The fd of the stubs' end of the sentry's channel (see rf_stub_create_master). */
#define RF_STUB_CHANNEL 0

struct rf_stop {
    int tid;
    int status;
    /* The syscall at a stop, ready for Python in one unpack: wait status,
     * number, six arguments. */
    unsigned long sys[8];
    struct user_regs_struct regs;
};

/*
 * The stub page.  Entered in the freshly cloned child with %rdi = the page's
 * own address.  It unmaps everything but itself, then stops with int3 so the
 * tracer can take over; afterwards the tracer only ever points %rip at
 * rf_stub_gadget.
 */
extern const char rf_stub_begin[], rf_stub_gadget[], rf_stub_end[];
__asm__(
    ".pushsection .text\n"
    ".globl rf_stub_begin\n"
    ".globl rf_stub_gadget\n"
    ".globl rf_stub_end\n"
    "rf_stub_begin:\n"
    "  mov %rdi, %r12\n"               /* r12 = stub page */
    "  mov $11, %eax\n"                /* munmap(0, stub) */
    "  xor %edi, %edi\n"
    "  mov %r12, %rsi\n"
    "  syscall\n"
    "  mov $11, %eax\n"                /* munmap(stub + page, top - stub - page) */
    "  lea 4096(%r12), %rdi\n"
    "  movabs $0x7ffffffff000, %rsi\n"
    "  sub %rdi, %rsi\n"
    "  syscall\n"
    "  int3\n"                         /* first stop: the tracer takes over */
    "rf_stub_gadget:\n"
    "  syscall\n"
    "  int3\n"
    "  jmp rf_stub_gadget\n"
    "rf_stub_end:\n"
    ".popsection\n");

static unsigned long stub_page;

static long raw(long nr, long a, long b, long c, long d)
{
    return syscall(nr, a, b, c, d);
}

unsigned long rf_stub_page(void) { return stub_page; }
unsigned long rf_stub_gadget_addr(void)
{
    return stub_page + (unsigned long)(rf_stub_gadget - rf_stub_begin);
}

/*
 * Create the master stub: a traced child with a clean address space, no open
 * fds but `channel` (when >= 0) as fd RF_STUB_CHANNEL (the socket the sentry
 * passes memory files through), default signal dispositions (SIGCHLD ignored
 * so exited stubs are reaped by the host), its own session, killed when the
 * tracer dies.  Returns its pid (stopped, ptrace options set) or -errno.
 */
int rf_stub_create_master(int channel)
{
    size_t len = (size_t)(rf_stub_end - rf_stub_begin);
    if (!stub_page) {
        void *p = mmap(NULL, RF_PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -errno;
        memcpy(p, rf_stub_begin, len);
        if (mprotect(p, RF_PAGE, PROT_READ | PROT_EXEC) != 0)
            return -errno;
        stub_page = (unsigned long)p;
    }
    long pid = raw(SYS_clone, SIGCHLD, 0, 0, 0);
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Child: only raw syscalls from here on. */
        struct { unsigned long handler, flags, restorer, mask; } act = {0};
        unsigned long none = 0;
        raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
        raw(SYS_setsid, 0, 0, 0, 0);
        for (int sig = 1; sig < 65; sig++) {
            act.handler = (sig == SIGCHLD) ? (unsigned long)SIG_IGN : (unsigned long)SIG_DFL;
            raw(SYS_rt_sigaction, sig, (long)&act, 0, 8);
        }
        raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
        if (channel >= 0 && raw(SYS_dup2, channel, RF_STUB_CHANNEL, 0, 0) != RF_STUB_CHANNEL)
            raw(SYS_exit_group, 127, 0, 0, 0);
        raw(SYS_close_range, channel >= 0 ? RF_STUB_CHANNEL + 1 : 0, ~0U, 0, 0);
        /* glibc registered an rseq area in memory we are about to unmap:
         * the kernel would fault on it at the next return to user mode. */
        if (__rseq_size > 0) {
            void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
            if (raw(SYS_rseq, (long)area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0)
                raw(SYS_rseq, (long)area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
        }
        if (raw(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0) != 0)
            raw(SYS_exit_group, 127, 0, 0, 0);
        __asm__ volatile("mov %0, %%rdi\n jmp *%0\n" : : "r"(stub_page) : "rdi", "memory");
        __builtin_unreachable();
    }
    int status;
    for (;;) {
        if (waitpid(pid, &status, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        break;
    }
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
        kill(pid, SIGKILL);
        return -ECHILD;
    }
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, opts) != 0) {
        int e = errno;
        kill(pid, SIGKILL);
        return -e;
    }
    return (int)pid;
}

static int wait_one(int pid, int *status, int flags)
{
    for (;;) {
        int r = waitpid(pid, status, flags | __WALL);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

/*
 * Wait for the next stop of `pid` (-1: any traced thread).  With WNOHANG
 * returns 0 when nothing is pending.  When the thread is stopped its
 * registers are read into out->regs.
 */
int rf_wait(int pid, int flags, struct rf_stop *out)
{
    int status;
    int r = waitpid(pid, &status, flags | __WALL);
    if (r < 0)
        return -errno;
    if (r == 0)
        return 0;
    out->tid = r;
    out->status = status;
    if (WIFSTOPPED(status) && ptrace(PTRACE_GETREGS, r, 0, &out->regs) != 0)
        memset(&out->regs, 0, sizeof(out->regs));
    struct user_regs_struct *g = &out->regs;
    unsigned long *sys = out->sys;
    sys[0] = (unsigned long)status;
    sys[1] = g->orig_rax;
    sys[2] = g->rdi;
    sys[3] = g->rsi;
    sys[4] = g->rdx;
    sys[5] = g->r10;
    sys[6] = g->r8;
    sys[7] = g->r9;
    return r;
}

/*
 * The per-syscall hot path: give `tid` its syscall result in %rax (when
 * set_rax), resume it with PTRACE_SYSEMU delivering `sig`, then block until
 * any traced thread stops.  Returns the stopped tid, or -errno (-EINTR when a
 * signal for the sentry arrived: the caller handles it and waits again).
 */
int rf_resume_wait(int tid, int set_rax, unsigned long rax, int sig, struct rf_stop *out)
{
    if (set_rax &&
        ptrace(PTRACE_POKEUSER, tid, offsetof(struct user_regs_struct, rax), rax) != 0)
        return -errno;
    if (ptrace(PTRACE_SYSEMU, tid, 0, sig) != 0)
        return -errno;
    return rf_wait(-1, 0, out);
}

/* rf_resume_wait without the wait. */
int rf_resume(int tid, int set_rax, unsigned long rax, int sig)
{
    if (set_rax &&
        ptrace(PTRACE_POKEUSER, tid, offsetof(struct user_regs_struct, rax), rax) != 0)
        return -errno;
    return ptrace(PTRACE_SYSEMU, tid, 0, sig) == 0 ? 0 : -errno;
}

/* The signal that caused `tid`'s signal-delivery stop: si_signo, si_code, si_addr. */
int rf_getsiginfo(int tid, int *signo, int *code, unsigned long *addr)
{
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) != 0)
        return -errno;
    *signo = si.si_signo;
    *code = si.si_code;
    *addr = (unsigned long)si.si_addr;
    return 0;
}

/*
 * Block SIGCHLD in the calling thread and return a non-blocking signalfd for
 * it: ptrace stops become poll()able without a signal handler per stop.
 */
int rf_sigchld_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -errno;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rf_getregs(int tid, struct user_regs_struct *regs)
{
    return ptrace(PTRACE_GETREGS, tid, 0, regs) == 0 ? 0 : -errno;
}

int rf_setregs(int tid, const struct user_regs_struct *regs)
{
    return ptrace(PTRACE_SETREGS, tid, 0, regs) == 0 ? 0 : -errno;
}

int rf_getfpregs(int tid, void *buf)
{
    return ptrace(PTRACE_GETFPREGS, tid, 0, buf) == 0 ? 0 : -errno;
}

int rf_setfpregs(int tid, const void *buf)
{
    return ptrace(PTRACE_SETFPREGS, tid, 0, buf) == 0 ? 0 : -errno;
}

/* The thread's whole XSAVE area (x87, SSE, AVX...): returns its size or -errno. */
long rf_getxstate(int tid, void *buf, size_t size)
{
    struct iovec iov = {buf, size};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) != 0)
        return -errno;
    return (long)iov.iov_len;
}

int rf_setxstate(int tid, const void *buf, size_t size)
{
    struct iovec iov = {(void *)buf, size};
    return ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 ? 0 : -errno;
}

/*
 * Run syscall `nr` with `args` inside stopped thread `tid` and restore its
 * registers.  The result (or -errno) goes to *ret.  For a clone/fork the
 * new thread or process is auto-attached (PTRACE_O_TRACE*); its pid goes to
 * *child after its first stop has been consumed.  Returns 0 or -errno for a
 * ptrace failure.
 */
int rf_inject(int tid, long nr, const unsigned long args[6], long *ret, int *child)
{
    struct user_regs_struct saved, regs;
    int status, r;
    *child = 0;
    if (ptrace(PTRACE_GETREGS, tid, 0, &saved) != 0)
        return -errno;
    regs = saved;
    regs.rax = nr;
    regs.orig_rax = -1;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    regs.rip = rf_stub_gadget_addr();
    if (ptrace(PTRACE_SETREGS, tid, 0, &regs) != 0)
        return -errno;
    if (ptrace(PTRACE_CONT, tid, 0, 0) != 0)
        return -errno;
    for (;;) {
        r = wait_one(tid, &status, 0);
        if (r < 0)
            return r;
        if (!WIFSTOPPED(status))
            return -ESRCH; /* the stub died */
        int event = status >> 16;
        if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
            event == PTRACE_EVENT_CLONE) {
            unsigned long msg = 0;
            ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
            *child = (int)msg;
        } else if (WSTOPSIG(status) == SIGTRAP) {
            break;
        }
        /* Any other stop (a stray signal) is suppressed. */
        if (ptrace(PTRACE_CONT, tid, 0, 0) != 0)
            return -errno;
    }
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0)
        return -errno;
    *ret = (long)regs.rax;
    if (ptrace(PTRACE_SETREGS, tid, 0, &saved) != 0)
        return -errno;
    if (*child > 0) {
        r = wait_one(*child, &status, 0);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Copy from the stub's memory; returns bytes copied or -errno. */
long rf_read(int pid, unsigned long addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)addr, len};
    long r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    return r < 0 ? -errno : r;
}

/* Copy into the stub's memory; returns bytes copied or -errno. */
long rf_write(int pid, unsigned long addr, const void *buf, size_t len)
{
    struct iovec local = {(void *)buf, len}, remote = {(void *)addr, len};
    long r = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    return r < 0 ? -errno : r;
}

/*
 * Read a NUL-terminated string of at most `max` bytes (NUL excluded) into
 * buf (size max + 1).  Returns its length, -EFAULT, or -ENAMETOOLONG.
 */
long rf_read_cstr(int pid, unsigned long addr, char *buf, size_t max)
{
    size_t got = 0;
    while (got <= max) {
        size_t chunk = RF_PAGE - ((addr + got) & (RF_PAGE - 1));
        if (chunk > max + 1 - got)
            chunk = max + 1 - got;
        long r = rf_read(pid, addr + got, buf + got, chunk);
        if (r <= 0)
            return -EFAULT;
        char *nul = memchr(buf + got, 0, (size_t)r);
        if (nul)
            return (long)(nul - buf);
        got += (size_t)r;
    }
    return -ENAMETOOLONG;
}

int rf_tgkill(int tgid, int tid, int sig)
{
    return syscall(SYS_tgkill, tgid, tid, sig) == 0 ? 0 : -errno;
}
