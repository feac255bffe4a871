/* bare_tracer.c [--no-pin] PROGRAM [ARG...]: the lower bound for a ptrace
 * sandbox.  Runs PROGRAM under PTRACE_SYSEMU; every getpid is emulated by
 * only setting %rax (PTRACE_POKEUSER) and resuming, every other syscall is
 * executed for real (rewind over the `syscall` instruction, step it with
 * PTRACE_SYSCALL).  Tracer and tracee are pinned to the same CPU unless
 * --no-pin.  PROGRAM's own output (e.g. bench/getpid's ns/op) is the result;
 * the tracer adds one line on stderr: "bare_tracer: emulated=<n> real=<n>". */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

#define REG(r) offsetof(struct user_regs_struct, r)
#define FAKE_PID 4242

static void die(const char *what)
{
    fprintf(stderr, "bare_tracer: %s: %s\n", what, strerror(errno));
    exit(111);
}

/* Wait for the next stop of pid; returns 0 on a syscall stop, 1 when the
 * tracee has ended (its status in *status), 2 on a signal stop (*sig). */
static int next_stop(pid_t pid, int *status, int *sig)
{
    for (;;) {
        if (waitpid(pid, status, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            die("waitpid");
        }
        if (WIFEXITED(*status) || WIFSIGNALED(*status))
            return 1;
        if (WIFSTOPPED(*status)) {
            if (WSTOPSIG(*status) == (SIGTRAP | 0x80))
                return 0;
            *sig = WSTOPSIG(*status) == SIGTRAP ? 0 : WSTOPSIG(*status);
            return 2;
        }
    }
}

int main(int argc, char **argv)
{
    int pin = 1, argi = 1;
    if (argi < argc && strcmp(argv[argi], "--no-pin") == 0) {
        pin = 0;
        argi++;
    }
    if (argi >= argc) {
        fprintf(stderr, "usage: bare_tracer [--no-pin] PROGRAM [ARG...]\n");
        return 2;
    }
    if (pin) {
        /* Pin to the CPU we run on now; the child inherits the mask. */
        cpu_set_t set;
        int cpu = sched_getcpu();
        CPU_ZERO(&set);
        CPU_SET(cpu < 0 ? 0 : cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            die("sched_setaffinity");
    }
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
            die("PTRACE_TRACEME");
        execv(argv[argi], argv + argi);
        die("execv");
    }
    if (!pin) {
        /* Keep the two apart, as an unpinned scheduler would often do. */
        cpu_set_t all;
        if (sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) > 1) {
            cpu_set_t one;
            int first = -1, second = -1;
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &all)) {
                    if (first < 0)
                        first = c;
                    else if (second < 0)
                        second = c;
                }
            CPU_ZERO(&one);
            CPU_SET(first, &one);
            sched_setaffinity(0, sizeof one, &one);
            CPU_ZERO(&one);
            CPU_SET(second, &one);
            sched_setaffinity(pid, sizeof one, &one);
        }
    }
    int status, sig = 0;
    /* The stop after execve (SIGTRAP). */
    if (next_stop(pid, &status, &sig) != 2)
        die("tracee did not stop after execve");
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) < 0)
        die("PTRACE_SETOPTIONS");

    long emulated = 0, real = 0;
    sig = 0;
    for (;;) {
        if (ptrace(PTRACE_SYSEMU, pid, 0, sig) < 0)
            die("PTRACE_SYSEMU");
        sig = 0;
        int kind = next_stop(pid, &status, &sig);
        if (kind == 1)
            break;
        if (kind == 2)
            continue; /* deliver the signal on the next resume */
        struct user_regs_struct regs;
        if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)
            die("PTRACE_GETREGS");
        if (regs.orig_rax == SYS_getpid) {
            if (ptrace(PTRACE_POKEUSER, pid, REG(rax), FAKE_PID) < 0)
                die("PTRACE_POKEUSER");
            emulated++;
            continue;
        }
        /* Execute it for real: back over the 2-byte syscall instruction,
         * restore the number, and step through entry and exit stops. */
        regs.rax = regs.orig_rax;
        regs.rip -= 2;
        if (ptrace(PTRACE_SETREGS, pid, 0, &regs) < 0)
            die("PTRACE_SETREGS");
        real++;
        int done = 0;
        for (int stops = 0; stops < 2 && !done;) {
            if (ptrace(PTRACE_SYSCALL, pid, 0, sig) < 0)
                die("PTRACE_SYSCALL");
            sig = 0;
            kind = next_stop(pid, &status, &sig);
            if (kind == 1)
                done = 1;
            else if (kind == 0)
                stops++;
        }
        if (done)
            break;
    }
    fprintf(stderr, "bare_tracer: emulated=%ld real=%ld\n", emulated, real);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
