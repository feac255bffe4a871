/* MAP_SHARED file mappings kept coherent: write() shows in a mapping and a
 * store through a mapping shows in read(), across processes that map the
 * file separately (fork before mmap) and through inherited mappings; msync,
 * munmap and close leave the data in the file; MAP_PRIVATE pages a process
 * wrote stay its own; ftruncate growth and shrinking (SIGBUS past the end);
 * mremap of a shared mapping; the EACCES rules for files open read-only; a
 * futex two processes share through a file mapped at different addresses;
 * memfds: coherence, and F_SEAL_WRITE against shared mappings (EBUSY, EPERM).
 * Works in /tmp, or in the directory argv[1], where it also leaves the file
 * "kept" holding bytes only ever stored through a mapping it never unmapped
 * (the caller checks that they reached the file after the exit). */
#include "rf.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long page;
static sigjmp_buf env;
static volatile int bus_code;

static void on_bus(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    bus_code = si->si_code;
    siglongjmp(env, 1);
}

/* Load one byte at p: "value N" or "SIGBUS code N". */
static void load(const char *label, volatile const char *p)
{
    if (sigsetjmp(env, 1) == 0) {
        int v = *p;
        printf("%s: value %d\n", label, v);
    } else {
        printf("%s: SIGBUS adrerr %d\n", label, bus_code == BUS_ADRERR);
    }
}

/* Read `n` bytes at `off` of fd and print them. */
static void show(const char *label, int fd, off_t off, size_t n)
{
    char buf[64] = {0};
    ssize_t r = pread(fd, buf, n, off);
    printf("%s: %zd %.*s\n", label, r, (int)(r > 0 ? r : 0), buf);
}

/* A one-byte handshake between two processes over two pipes. */
static void signal_peer(int fd) { MUST(write(fd, "x", 1)); }
static void wait_peer(int fd)
{
    char c;
    MUST(read(fd, &c, 1));
}

static void coherence(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    MUST(fd);
    char block[8192];
    memset(block, '.', sizeof block);
    MUST(write(fd, block, sizeof block));
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    MUST(pwrite(fd, "HELLO", 5, 100));
    printf("write() seen in the mapping: %.5s\n", p + 100);
    memcpy(p + 200, "WORLD", 5);
    show("store seen by read()", fd, 200, 5);
    memcpy(p + page + 10, "PAGE2", 5);
    show("store in the second page", fd, page + 10, 5);

    /* Another process maps the file on its own (fork before its mmap). */
    int to_child[2], to_parent[2];
    MUST(pipe(to_child));
    MUST(pipe(to_parent));
    pid_t pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (q == MAP_FAILED)
            _exit(2);
        printf("child sees the parent's store: %.5s\n", q + 200);
        memcpy(q + 300, "CHILD", 5);
        signal_peer(to_parent[1]);
        wait_peer(to_child[0]);
        printf("child sees the parent's write(): %.5s\n", q + 400);
        printf("child sees the parent's later store: %.5s\n", q + 500);
        _exit(0); /* no munmap: the stores stay in the file */
    }
    wait_peer(to_parent[0]);
    printf("parent's mapping sees the child's store: %.5s\n", p + 300);
    show("parent's read() sees the child's store", fd, 300, 5);
    MUST(pwrite(fd, "PARNT", 5, 400));
    memcpy(p + 500, "LATER", 5);
    signal_peer(to_child[1]);
    int status;
    MUST(waitpid(pid, &status, 0));
    printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* An inherited mapping stays shared too. */
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        memcpy(p + 600, "INHER", 5);
        _exit(0);
    }
    MUST(waitpid(pid, &status, 0));
    show("store through an inherited mapping", fd, 600, 5);

    /* msync, then a new open of the file has the data. */
    memcpy(p + 700, "SYNCD", 5);
    SHOW("msync MS_SYNC", msync(p, 2 * page, MS_SYNC));
    SHOW("msync MS_ASYNC", msync(p + page, 1, MS_ASYNC));
    SHOW("msync unaligned", msync(p + 1, page, MS_SYNC));
    SHOW("msync MS_SYNC|MS_ASYNC", msync(p, page, MS_SYNC | MS_ASYNC));
    char *hole = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(hole == MAP_FAILED ? -1 : 0);
    MUST(munmap(hole + page, page));
    SHOW("msync over a hole", msync(hole, 2 * page, MS_SYNC));
    munmap(hole, page);
    int again = open(path, O_RDONLY);
    MUST(again);
    show("re-opened after msync", again, 700, 5);
    close(again);

    /* A private mapping: a page it wrote is its own. */
    char *priv = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    MUST(priv == MAP_FAILED ? -1 : 0);
    printf("private mapping starts with the file: %.5s\n", priv + 100);
    memcpy(priv + 800, "PRIVT", 5);
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (q == MAP_FAILED)
            _exit(2);
        memcpy(q + 800, "SHARE", 5);
        memcpy(q + 810, "OTHER", 5);
        _exit(0);
    }
    MUST(waitpid(pid, &status, 0));
    printf("private page keeps its own store: %.5s\n", priv + 800);
    printf("shared mapping sees the other store: %.5s\n", p + 810);
    show("the file has the shared store", fd, 800, 5);
    munmap(priv, page);

    /* mremap keeps a shared mapping shared. */
    char *moved = mremap(p, 2 * page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED,
                         mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    MUST(moved == MAP_FAILED ? -1 : 0);
    printf("moved mapping keeps the data: %.5s\n", moved + 100);
    memcpy(moved + 900, "MOVED", 5);
    show("store through the moved mapping", fd, 900, 5);
    MUST(pwrite(fd, "AFTER", 5, 1000));
    printf("write() seen in the moved mapping: %.5s\n", moved + 1000);

    /* munmap and close: the file keeps everything. */
    memcpy(moved + 1100, "UNMAP", 5);
    MUST(munmap(moved, 2 * page));
    close(fd);
    fd = open(path, O_RDONLY);
    MUST(fd);
    show("after munmap+close: 100", fd, 100, 5);
    show("after munmap+close: 300", fd, 300, 5);
    show("after munmap+close: 500", fd, 500, 5);
    show("after munmap+close: 1100", fd, 1100, 5);
    show("after munmap+close: page 2", fd, page + 10, 5);

    /* A file open read-only: no writable shared mapping. */
    errno = 0;
    p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("writable shared mapping of a read-only fd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
    p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    printf("read-only shared mapping: %.5s\n", p + 100);
    SHOW("mprotect it writable", mprotect(p, page, PROT_READ | PROT_WRITE));
    int rw = open(path, O_RDWR);
    MUST(rw);
    MUST(pwrite(rw, "RWFD!", 5, 100));
    printf("read-only mapping sees a write() through another fd: %.5s\n", p + 100);
    munmap(p, page);
    p = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
    SHOW("mprotect a private mapping writable", mprotect(p, page, PROT_READ | PROT_WRITE));
    munmap(p, page);
    close(rw);
    close(fd);
    unlink(path);
}

static void truncation(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    MUST(fd);
    MUST(ftruncate(fd, page));
    char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    load("first page", p);
    load("past the end", p + page);
    printf("kernel read past the end: %s\n", rf_readable(p + page));
    MUST(ftruncate(fd, 3 * page));
    load("grown: second page", p + page);
    MUST(pwrite(fd, "GROWN", 5, 2 * page + 8));
    printf("write() into the grown part: %.5s\n", p + 2 * page + 8);
    memcpy(p + page + 8, "STORE", 5);
    show("store into the grown part", fd, page + 8, 5);
    struct stat st;
    fstat(fd, &st);
    printf("size: %ld\n", (long)st.st_size);
    MUST(ftruncate(fd, page + 100));
    load("shrunk: inside the last page", p + page + 8);
    load("shrunk: past the last page", p + 2 * page + 8);
    munmap(p, 3 * page);
    close(fd);
    unlink(path);
}

/* A futex in a file mapped by two processes at different addresses. */
static void futexes(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    MUST(fd);
    MUST(ftruncate(fd, page));
    pid_t pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *q = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (q == MAP_FAILED)
            _exit(2);
        long r = syscall(SYS_futex, (unsigned *)(q + 64), FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(r == 0 ? 0 : 3);
    }
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    long woken = 0; /* wake until the child is waiting (at most ~10 s) */
    for (int i = 0; i < 10000 && woken == 0; i++) {
        woken = syscall(SYS_futex, (unsigned *)(p + 64), FUTEX_WAKE, 1, NULL, NULL, 0);
        if (woken == 0)
            usleep(1000);
    }
    if (woken == 0)
        kill(pid, SIGKILL);
    int status;
    MUST(waitpid(pid, &status, 0));
    printf("futex across separate mappings: woken %ld, child exit %d\n", woken,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    munmap(p, page);
    close(fd);
    unlink(path);
}

static void memfds(void)
{
    int m = memfd_create("shared", MFD_ALLOW_SEALING);
    MUST(m);
    MUST(ftruncate(m, page));
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    MUST(pwrite(m, "MEMFD", 5, 10));
    printf("memfd write() seen in the mapping: %.5s\n", p + 10);
    memcpy(p + 20, "STORE", 5);
    show("memfd store seen by read()", m, 20, 5);
    pid_t pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
        if (q == MAP_FAILED)
            _exit(2);
        memcpy(q + 30, "CHILD", 5);
        _exit(0);
    }
    int status;
    MUST(waitpid(pid, &status, 0));
    printf("memfd: the child's store in the parent's mapping: %.5s\n", p + 30);

    SHOW("F_SEAL_WRITE with a writable mapping", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE));
    MUST(munmap(p, page));
    p = mmap(NULL, page, PROT_READ, MAP_SHARED, m, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    SHOW("F_SEAL_WRITE with a read-only mapping of a writable fd", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE));
    MUST(munmap(p, page));
    p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, m, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    SHOW("F_SEAL_WRITE with a private mapping", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE));
    munmap(p, page);
    errno = 0;
    p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    printf("writable shared mapping of a sealed memfd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
    p = mmap(NULL, page, PROT_READ, MAP_SHARED, m, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    printf("read-only mapping of a sealed memfd: %.5s\n", p + 20);
    SHOW("mprotect it writable", mprotect(p, page, PROT_READ | PROT_WRITE));
    munmap(p, page);
    close(m);
}

static void leave_kept(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/kept", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    MUST(fd);
    MUST(ftruncate(fd, 32));
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    MUST(p == MAP_FAILED ? -1 : 0);
    memcpy(p, "stored through a mapping", 24);
    printf("kept: stored\n"); /* and exit without munmap, msync or close */
}

int main(int argc, char **argv)
{
    rf_init();
    page = sysconf(_SC_PAGESIZE);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[256];
    snprintf(path, sizeof path, "%s/rf-mmapshared-%d", dir, (int)getpid());
    coherence(path);
    truncation(path);
    futexes(path);
    memfds();
    if (argc > 1)
        leave_kept(dir);
    printf("done\n");
    return 0;
}
