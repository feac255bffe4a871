/* Memory family: anonymous mmap (private and shared across fork), mprotect,
 * munmap, MAP_FIXED over an existing mapping, mremap, madvise(DONTNEED), brk
 * through sbrk, and argument errors.  Never faults on purpose: whether a page
 * is accessible is probed with write()/read() on a pipe, which fail with
 * EFAULT on inaccessible memory instead of raising SIGSEGV. */
#include "rf.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long page;
static unsigned sum(const unsigned char *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static int all(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

int main(void)
{
    rf_init();
    page = sysconf(_SC_PAGESIZE);
    printf("page size: %ld\n", page);

    printf("== anonymous mmap\n");
    unsigned char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    YESNO("mmap succeeded", p != MAP_FAILED);
    if (p == MAP_FAILED)
        return 99;
    YESNO("page aligned", ((uintptr_t)p & (page - 1)) == 0);
    YESNO("zero filled", all(p, 4 * page, 0));
    for (long i = 0; i < 4 * page; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    printf("checksum: %u\n", sum(p, 4 * page));

    printf("== mprotect\n");
    SHOW("mprotect page 1 read-only", mprotect(p + page, page, PROT_READ));
    printf("page 1 checksum still: %u\n", sum(p + page, page));
    printf("page 1: %s, %s\n", rf_readable(p + page), rf_writable(p + page));
    printf("page 0: %s, %s\n", rf_readable(p), rf_writable(p));
    SHOW("mprotect page 2 PROT_NONE", mprotect(p + 2 * page, page, PROT_NONE));
    printf("page 2: %s, %s\n", rf_readable(p + 2 * page), rf_writable(p + 2 * page));
    SHOW("mprotect pages 1-2 read-write", mprotect(p + page, 2 * page, PROT_READ | PROT_WRITE));
    printf("page 2: %s, %s\n", rf_readable(p + 2 * page), rf_writable(p + 2 * page));
    p[2 * page] = 42;
    printf("page 2 first byte after write: %u\n", p[2 * page]);
    SHOW("mprotect unaligned", mprotect(p + 1, page, PROT_READ));
    SHOW("mprotect bad prot", mprotect(p, page, 0x1000));

    printf("== munmap\n");
    SHOW("munmap page 3", munmap(p + 3 * page, page));
    printf("page 3: %s\n", rf_readable(p + 3 * page));
    printf("page 2 still: %s\n", rf_readable(p + 2 * page));
    SHOW("mprotect unmapped", mprotect(p + 3 * page, page, PROT_READ));
    SHOW("munmap unaligned", munmap(p + 1, page));
    SHOW("munmap zero length", munmap(p, 0));
    SHOW("munmap already unmapped", munmap(p + 3 * page, page));

    printf("== MAP_FIXED over an existing mapping\n");
    memset(p, 'A', 3 * page);
    unsigned char *q = mmap(p + page, page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    YESNO("mapped at the requested address", q == p + page);
    YESNO("new page zero filled", all(p + page, page, 0));
    YESNO("neighbours kept their bytes", all(p, page, 'A') && all(p + 2 * page, page, 'A'));
    q = mmap(p + page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE over a mapping: %s\n", q == MAP_FAILED ? errname(errno) : "mapped");
    SHOW("munmap all", munmap(p, 3 * page));
    printf("page 0 after munmap: %s\n", rf_readable(p));

    printf("== mmap errors\n");
    q = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("zero length: %s\n", q == MAP_FAILED ? errname(errno) : "mapped");
    q = mmap(NULL, page, PROT_READ, MAP_ANONYMOUS, -1, 0);
    printf("neither private nor shared: %s\n", q == MAP_FAILED ? errname(errno) : "mapped");
    q = mmap(NULL, page, PROT_READ, MAP_PRIVATE, 999, 0);
    printf("file mapping of a bad fd: %s\n", q == MAP_FAILED ? errname(errno) : "mapped");
    q = mmap((void *)(p + 1), page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED unaligned: %s\n", q == MAP_FAILED ? errname(errno) : "mapped");

    printf("== large mapping\n");
    size_t big = 64u << 20;
    unsigned char *b = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    YESNO("64 MiB mapped", b != MAP_FAILED);
    if (b != MAP_FAILED) {
        b[0] = 1;
        b[big / 2] = 2;
        b[big - 1] = 3;
        printf("touched: %u %u %u\n", b[0], b[big / 2], b[big - 1]);
        SHOW("munmap 64 MiB", munmap(b, big));
    }

    printf("== mremap\n");
    unsigned char *r = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(r == MAP_FAILED ? -1 : 0);
    memset(r, 'R', page);
    unsigned char *r2 = mremap(r, page, 4 * page, MREMAP_MAYMOVE);
    YESNO("grown", r2 != MAP_FAILED);
    if (r2 != MAP_FAILED) {
        YESNO("old bytes kept", all(r2, page, 'R'));
        YESNO("new bytes zero", all(r2 + page, 3 * page, 0));
        r2[4 * page - 1] = 9;
        unsigned char *r3 = mremap(r2, 4 * page, 2 * page, 0);
        YESNO("shrunk in place", r3 == r2);
        printf("after shrink: %s\n", rf_readable(r2 + 3 * page));
        munmap(r2, 2 * page);
    }
    /* Growing without MREMAP_MAYMOVE: into a hole we made, and into a mapping. */
    unsigned char *g = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(g == MAP_FAILED ? -1 : 0);
    g[0] = 'g';
    munmap(g + page, 7 * page);
    unsigned char *g2 = mremap(g, page, 8 * page, 0);
    printf("grow in place into a hole: %s\n", g2 == MAP_FAILED ? errname(errno) : g2 == g ? "in place" : "moved");
    if (g2 == g)
        printf("grown tail: %s, first byte %c\n", rf_writable(g + 7 * page), g[0]);
    munmap(g + 4 * page, page); /* a hole, then a mapped page above it */
    g2 = mremap(g, 3 * page, 6 * page, 0);
    printf("grow in place over a mapping: %s\n", g2 == MAP_FAILED ? errname(errno) : "grew");
    munmap(g, 8 * page);
    q = mremap(r + 1, page, page, 0);
    printf("mremap unaligned: %s\n", q == MAP_FAILED ? errname(errno) : "remapped");

    printf("== madvise\n");
    unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(m == MAP_FAILED ? -1 : 0);
    memset(m, 'M', 2 * page);
    SHOW("madvise DONTNEED page 0", madvise(m, page, MADV_DONTNEED));
    YESNO("page 0 reads zero", all(m, page, 0));
    YESNO("page 1 kept", all(m + page, page, 'M'));
    SHOW("madvise WILLNEED", madvise(m, 2 * page, MADV_WILLNEED));
    munmap(m, 2 * page);

    printf("== fork: private is copied, shared is shared\n");
    unsigned char *priv = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *shr = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    MUST(priv == MAP_FAILED || shr == MAP_FAILED ? -1 : 0);
    priv[0] = 'p';
    shr[0] = 's';
    pid_t pid = fork();
    MUST(pid);
    if (pid == 0) {
        int ok = priv[0] == 'p' && shr[0] == 's';
        priv[0] = 'P';
        shr[0] = 'S';
        _exit(ok ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    show_status("child saw the parent's bytes (0 = yes)", status);
    printf("private after child wrote: %c\n", priv[0]);
    printf("shared after child wrote: %c\n", shr[0]);

    printf("== brk\n");
    char *b0 = sbrk(0);
    long raw = syscall(SYS_brk, 0);
    YESNO("brk(0) == sbrk(0)", raw == (long)b0);
    char *old = sbrk(4 * page);
    YESNO("sbrk returns the old break", old == b0);
    YESNO("break moved by 4 pages", (char *)sbrk(0) - b0 == 4 * page);
    memset(b0, 'B', 4 * page);
    YESNO("grown heap holds data", all((unsigned char *)b0, 4 * page, 'B'));
    sbrk(-2 * page);
    YESNO("break shrank by 2 pages", (char *)sbrk(0) - b0 == 2 * page);
    YESNO("kept heap holds data", all((unsigned char *)b0, 2 * page, 'B'));
    sbrk(2 * page);
    YESNO("re-grown heap is zero", all((unsigned char *)b0 + 2 * page, 2 * page, 0));
    long below = syscall(SYS_brk, 4096);
    YESNO("brk below the start is refused (returns the current break)", below == (long)sbrk(0));
    sbrk(-4 * page);
    YESNO("break back at the start", sbrk(0) == b0);

    printf("done\n");
    return 0;
}
