/* The rest of the file syscalls: openat2 (size and flag checks, every RESOLVE_* flag),
 * preadv/pwritev/preadv2/pwritev2 (offset -1, RWF_* flags), fallocate (allocate,
 * KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE and the errors), syncfs, sync_file_range and
 * close_range (closing as close(2) does: inotify sees the close), and O_TMPFILE
 * (in /tmp only: the gofer's 9p-like file system has none).  In a fresh
 * directory under argv[1] (default /tmp), removed at the end.
 * Run by test_differential.py under `ringfence do` and by test_mounts.py on
 * directories the gofer serves. */
#include "rf.h"

#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE 2
#define CLOSE_RANGE_CLOEXEC 4
#endif

#define p(name) rf_in_top(name)

static long o2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* openat2 and, if it opened a file, its first bytes (to tell which file it was). */
static void o2show(const char *label, int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    errno = 0;
    long fd = o2(dirfd, path, flags, 0, resolve);
    if (fd < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    char buf[16] = {0};
    struct stat st;
    fstat(fd, &st);
    if (S_ISREG(st.st_mode) && !(flags & O_PATH) && read(fd, buf, 8) >= 0)
        printf("%s: reg \"%s\"\n", label, buf);
    else
        printf("%s: %s\n", label, ftype(st.st_mode));
    close(fd);
}

static void put(const char *name, const char *data)
{
    int fd = open(p(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    MUST(fd);
    MUST(write(fd, data, strlen(data)));
    close(fd);
}

static void openat2_checks(int dfd)
{
    struct {
        struct open_how how;
        uint64_t extra;
    } big = {.how = {.flags = O_RDONLY}};
    SHOW("openat2 size 0", syscall(SYS_openat2, dfd, "f", &big, 0));
    SHOW("openat2 size 23", syscall(SYS_openat2, dfd, "f", &big, 23));
    long fd = syscall(SYS_openat2, dfd, "f", &big, 32);
    OK("openat2 size 32 zero tail", fd);
    close(fd);
    big.extra = 1;
    SHOW("openat2 size 32 nonzero tail", syscall(SYS_openat2, dfd, "f", &big, 32));
    SHOW("openat2 size 8192", syscall(SYS_openat2, dfd, "f", &big, 8192));
    SHOW("openat2 NULL how", syscall(SYS_openat2, dfd, "f", NULL, sizeof(struct open_how)));
    SHOW("openat2 bad how", syscall(SYS_openat2, dfd, "f", (void *)8, sizeof(struct open_how)));
    SHOW("openat2 unknown flag", o2(dfd, "f", 1ULL << 33, 0, 0));
    SHOW("openat2 unknown resolve", o2(dfd, "f", O_RDONLY, 0, 0x4000));
    SHOW("openat2 beneath|in_root", o2(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT));
    SHOW("openat2 mode without O_CREAT", o2(dfd, "f", O_RDONLY, 0644, 0));
    SHOW("openat2 mode beyond 07777", o2(dfd, "new", O_RDWR | O_CREAT, 010644, 0));
    SHOW("openat2 O_PATH|O_RDWR", o2(dfd, "f", O_PATH | O_RDWR, 0, 0));
    SHOW("openat2 O_CREAT|O_DIRECTORY", o2(dfd, "new", O_CREAT | O_DIRECTORY, 0644, 0));
    SHOW("openat2 cached O_CREAT", o2(dfd, "new", O_RDWR | O_CREAT, 0644, RESOLVE_CACHED));
    SHOW("openat2 cached O_TRUNC", o2(dfd, "f", O_RDWR | O_TRUNC, 0, RESOLVE_CACHED));
    SHOW("openat2 bad path", o2(dfd, (const char *)8, O_RDONLY, 0, 0));

    fd = o2(dfd, "new", O_RDWR | O_CREAT | O_EXCL, 0640, 0);
    OK("openat2 create", fd);
    struct stat st;
    MUST(fstat(fd, &st));
    printf("created mode: %o\n", st.st_mode);
    printf("O_LARGEFILE: %d\n", (fcntl(fd, F_GETFL) & 0100000) != 0); /* (0 in x86_64 headers) */
    close(fd);
    fd = o2(dfd, "new", O_RDONLY | O_CLOEXEC, 0, 0);
    printf("cloexec: %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
    SHOW("openat2 O_EXCL again", o2(dfd, "new", O_RDWR | O_CREAT | O_EXCL, 0640, 0));
    fd = o2(dfd, "new", O_PATH, 0, 0);
    printf("O_PATH O_LARGEFILE: %d\n", (fcntl(fd, F_GETFL) & 0100000) != 0);
    close(fd);
    unlink(p("new"));
    SHOW("openat O_CREAT|O_DIRECTORY", openat(dfd, "new", O_CREAT | O_DIRECTORY, 0644));
    SHOW("openat O_CREAT|O_DIRECTORY made", faccessat(dfd, "new", F_OK, 0));
    fd = openat(dfd, "sub", O_PATH | O_CREAT | O_DIRECTORY, 0644);
    OK("openat O_PATH|O_CREAT|O_DIRECTORY", fd);
    close(fd);
}

static void resolve_checks(int dfd)
{
    /* top/f "top", top/sub/g "sub-g", top/sub/back -> ../f, top/abs -> /sub/g,
     * top/up -> ../x, top/rel -> sub/g, top/lsub -> sub */
    o2show("plain f", dfd, "f", O_RDONLY, 0);
    o2show("plain abs", dfd, "abs", O_RDONLY, 0);
    o2show("cached f", dfd, "f", O_RDONLY, RESOLVE_CACHED);

    o2show("beneath f", dfd, "f", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath sub/../f", dfd, "sub/../f", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath sub/back", dfd, "sub/back", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath rel", dfd, "rel", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath .", dfd, ".", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath ..", dfd, "..", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath sub/../../x", dfd, "sub/../../x", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath absolute", dfd, "/etc", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath abs link", dfd, "abs", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath abs link nofollow", dfd, "abs", O_PATH | O_NOFOLLOW, RESOLVE_BENEATH);
    o2show("beneath up link", dfd, "up", O_RDONLY, RESOLVE_BENEATH);
    o2show("beneath create escape", dfd, "../x", O_RDWR | O_CREAT, RESOLVE_BENEATH);

    int sub = open(p("sub"), O_RDONLY | O_DIRECTORY);
    MUST(sub);
    o2show("in_root f", dfd, "f", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root /f", dfd, "/f", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root ../../f", dfd, "../../f", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root abs link", dfd, "abs", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root up link", dfd, "up", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root sub: back", sub, "back", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root sub: /g", sub, "/g", O_RDONLY, RESOLVE_IN_ROOT);
    o2show("in_root sub: ../g", sub, "../g", O_RDONLY, RESOLVE_IN_ROOT);
    close(sub);

    o2show("no_symlinks f", dfd, "f", O_RDONLY, RESOLVE_NO_SYMLINKS);
    o2show("no_symlinks rel", dfd, "rel", O_RDONLY, RESOLVE_NO_SYMLINKS);
    o2show("no_symlinks lsub/g", dfd, "lsub/g", O_RDONLY, RESOLVE_NO_SYMLINKS);
    o2show("no_symlinks rel O_PATH|O_NOFOLLOW", dfd, "rel", O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    o2show("no_symlinks rel O_NOFOLLOW", dfd, "rel", O_RDONLY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    o2show("no_symlinks lsub/g (no flag)", dfd, "lsub/g", O_RDONLY, 0);

    int f = open(p("f"), O_RDONLY);
    MUST(f);
    char magic[64];
    snprintf(magic, sizeof magic, "/proc/self/fd/%d", f);
    o2show("magic link", AT_FDCWD, magic, O_RDONLY, 0);
    o2show("no_magiclinks magic", AT_FDCWD, magic, O_RDONLY, RESOLVE_NO_MAGICLINKS);
    o2show("no_magiclinks magic O_PATH|O_NOFOLLOW", AT_FDCWD, magic, O_PATH | O_NOFOLLOW, RESOLVE_NO_MAGICLINKS);
    o2show("no_magiclinks /proc/self/fd", AT_FDCWD, "/proc/self/fd", O_RDONLY, RESOLVE_NO_MAGICLINKS);
    o2show("no_symlinks magic", AT_FDCWD, magic, O_RDONLY, RESOLVE_NO_SYMLINKS);
    int fddir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    MUST(fddir);
    snprintf(magic, sizeof magic, "%d", f);
    o2show("beneath magic", fddir, magic, O_RDONLY, RESOLVE_BENEATH);
    o2show("in_root magic", fddir, magic, O_RDONLY, RESOLVE_IN_ROOT);
    close(fddir);
    close(f);

    int root = open("/", O_RDONLY | O_DIRECTORY);
    MUST(root);
    o2show("no_xdev / bin", root, "bin", O_RDONLY, RESOLVE_NO_XDEV);
    o2show("no_xdev / proc", root, "proc", O_RDONLY, RESOLVE_NO_XDEV);
    o2show("no_xdev / proc/self/status", root, "proc/self/status", O_PATH, RESOLVE_NO_XDEV);
    o2show("no_xdev /proc/self/status", AT_FDCWD, "/proc/self/status", O_PATH, RESOLVE_NO_XDEV);
    close(root);
    int proc = open("/proc", O_RDONLY | O_DIRECTORY);
    MUST(proc);
    o2show("no_xdev /proc: self/status", proc, "self/status", O_PATH, RESOLVE_NO_XDEV);
    o2show("no_xdev /proc: ../bin", proc, "../bin", O_RDONLY, RESOLVE_NO_XDEV);
    o2show("no_xdev /proc: /bin", proc, "/bin", O_RDONLY, RESOLVE_NO_XDEV);
    close(proc);
    o2show("no_xdev top: sub/back", dfd, "sub/back", O_RDONLY, RESOLVE_NO_XDEV);
}

static void vector_io(int dfd)
{
    int fd = openat(dfd, "v", O_RDWR | O_CREAT | O_TRUNC, 0644);
    MUST(fd);
    char a[8] = "abc", b[8] = "defgh";
    struct iovec w[2] = {{a, 3}, {b, 5}};
    SHOW("pwritev at 2", pwritev(fd, w, 2, 2));
    printf("offset after pwritev: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    char r1[4] = {0}, r2[16] = {0};
    struct iovec r[2] = {{r1, 3}, {r2, 10}};
    SHOW("preadv at 1", preadv(fd, r, 2, 1));
    printf("preadv got: %02x %c%c / %s\n", r1[0], r1[1], r1[2], r2);
    printf("offset after preadv: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    SHOW("preadv at -1", preadv(fd, r, 2, -1));
    SHOW("pwritev at -1", pwritev(fd, w, 2, -1));

    MUST(lseek(fd, 4, SEEK_SET));
    memset(r2, 0, sizeof r2);
    SHOW("preadv2 at -1", preadv2(fd, r, 2, -1, 0));
    printf("preadv2 got: %c%c%c / %s; offset %ld\n", r1[0], r1[1], r1[2], r2, (long)lseek(fd, 0, SEEK_CUR));
    MUST(lseek(fd, 1, SEEK_SET));
    SHOW("pwritev2 at -1", pwritev2(fd, w, 1, -1, 0));
    printf("offset after pwritev2 -1: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    SHOW("preadv2 at -2", preadv2(fd, r, 2, -2, 0));
    SHOW("pwritev2 at -2", pwritev2(fd, w, 2, -2, 0));
    SHOW("preadv2 HIPRI", preadv2(fd, r, 2, 0, RWF_HIPRI));
    SHOW("preadv2 NOWAIT", preadv2(fd, r, 2, 0, RWF_NOWAIT));
    SHOW("preadv2 DSYNC (a write flag)", preadv2(fd, r, 2, 0, RWF_DSYNC));
    SHOW("preadv2 unknown flag", preadv2(fd, r, 2, 0, 0x10000000));
    SHOW("preadv2 unknown flag, 0 iovecs", preadv2(fd, r, 0, 0, 0x10000000));
    SHOW("preadv2 APPEND|NOAPPEND", preadv2(fd, r, 2, 0, RWF_APPEND | RWF_NOAPPEND));
    SHOW("preadv2 APPEND (a write flag)", preadv2(fd, r, 2, 0, RWF_APPEND));
    SHOW("pwritev2 DSYNC", pwritev2(fd, w, 2, 0, RWF_DSYNC));
    SHOW("pwritev2 SYNC", pwritev2(fd, w, 2, 0, RWF_SYNC));
    SHOW("pwritev2 HIPRI", pwritev2(fd, w, 1, 0, RWF_HIPRI));
    SHOW("pwritev2 NOWAIT", pwritev2(fd, w, 2, 0, RWF_NOWAIT));
    SHOW("pwritev2 unknown flag", pwritev2(fd, w, 2, 0, 0x10000000));
    MUST(lseek(fd, 2, SEEK_SET));
    SHOW("pwritev2 APPEND at 0", pwritev2(fd, w, 1, 0, RWF_APPEND));
    printf("offset after APPEND at 0: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    SHOW("pwritev2 APPEND at -1", pwritev2(fd, w, 1, -1, RWF_APPEND));
    printf("offset after APPEND at -1: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    int afd = openat(dfd, "v", O_WRONLY | O_APPEND);
    MUST(afd);
    SHOW("pwritev2 O_APPEND NOAPPEND at 1", pwritev2(afd, w, 1, 1, RWF_NOAPPEND));
    SHOW("pwritev2 O_APPEND at 1", pwritev2(afd, w + 1, 1, 1, 0));
    MUST(lseek(afd, 4, SEEK_SET));
    SHOW("pwritev2 O_APPEND NOAPPEND at -1", pwritev2(afd, w + 1, 1, -1, RWF_NOAPPEND));
    printf("offset after NOAPPEND at -1: %ld\n", (long)lseek(afd, 0, SEEK_CUR));
    close(afd);
    char all[64] = {0};
    SHOW("pread all", pread(fd, all, sizeof all - 1, 0));
    for (char *c = all; c < all + 20; c++)
        if (!*c)
            *c = '.';
    printf("content: %s\n", all);
    SHOW("preadv 0 iovecs", preadv(fd, r, 0, 0));
    SHOW("preadv too many iovecs", syscall(SYS_preadv, fd, r, 1025, 0, 0));
    SHOW("preadv bad iovec array", syscall(SYS_preadv, fd, 8L, 1, 0, 0));
    struct iovec bad[2] = {{r1, 2}, {(void *)8, 4}};
    SHOW("preadv second iovec bad", preadv(fd, bad, 2, 0));
    SHOW("preadv first iovec bad", preadv(fd, bad + 1, 1, 0));
    struct iovec badw[2] = {{a, 2}, {(void *)8, 4}};
    SHOW("pwritev second iovec bad", pwritev(fd, badw, 2, 0));
    SHOW("preadv past end", preadv(fd, r, 2, 1000));
    SHOW("preadv2 bad fd", preadv2(-1, r, 2, 0, 0));
    close(fd);

    fd = openat(dfd, "v", O_WRONLY);
    SHOW("preadv write-only", preadv(fd, r, 2, 0));
    SHOW("preadv2 -1 write-only", preadv2(fd, r, 2, -1, 0));
    close(fd);
    fd = openat(dfd, "v", O_RDONLY);
    SHOW("pwritev read-only", pwritev(fd, w, 2, 0));
    SHOW("pwritev2 -1 read-only", pwritev2(fd, w, 2, -1, 0));
    close(fd);
    fd = openat(dfd, "sub", O_RDONLY | O_DIRECTORY);
    SHOW("preadv directory", preadv(fd, r, 2, 0));
    close(fd);

    int pfd[2];
    MUST(pipe(pfd));
    SHOW("preadv pipe", preadv(pfd[0], r, 2, 0));
    SHOW("pwritev pipe", pwritev(pfd[1], w, 2, 0));
    SHOW("pwritev2 pipe at 0", pwritev2(pfd[1], w, 2, 0, 0));
    SHOW("preadv2 pipe NOWAIT empty", preadv2(pfd[0], r, 2, -1, RWF_NOWAIT));
    SHOW("pwritev2 pipe at -1", pwritev2(pfd[1], w, 2, -1, 0));
    memset(r2, 0, sizeof r2);
    SHOW("preadv2 pipe NOWAIT", preadv2(pfd[0], r, 2, -1, RWF_NOWAIT));
    printf("pipe got: %c%c%c / %s\n", r1[0], r1[1], r1[2], r2);
    close(pfd[0]);
    close(pfd[1]);
    unlinkat(dfd, "v", 0);
}

static void show_size(const char *label, int fd)
{
    struct stat st;
    MUST(fstat(fd, &st));
    printf("%s: size=%ld blocks>0=%d\n", label, (long)st.st_size, st.st_blocks > 0);
}

static void show_bytes(const char *label, int fd, int n)
{
    char buf[64];
    long got = pread(fd, buf, n, 0);
    printf("%s:", label);
    for (long i = 0; i < got; i++)
        printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
}

static void fallocate_checks(int dfd)
{
    int fd = openat(dfd, "fa", O_RDWR | O_CREAT | O_TRUNC, 0644);
    MUST(fd);
    show_size("empty", fd);
    SHOW("fallocate 0..8192", fallocate(fd, 0, 0, 8192));
    show_size("allocated", fd);
    SHOW("fallocate KEEP_SIZE past end", fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192));
    show_size("kept size", fd);
    SHOW("fallocate inside", fallocate(fd, 0, 100, 100));
    show_size("inside", fd);
    MUST(ftruncate(fd, 0));
    MUST(pwrite(fd, "abcdefghijklmnop", 16, 0));
    SHOW("fallocate PUNCH_HOLE alone", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 2, 3));
    SHOW("fallocate PUNCH_HOLE|KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3));
    show_bytes("punched", fd, 16);
    SHOW("fallocate PUNCH past end", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 14, 100));
    show_bytes("punched end", fd, 20);
    show_size("punched end", fd);
    MUST(pwrite(fd, "abcdefghijklmnop", 16, 0));
    SHOW("fallocate ZERO_RANGE", fallocate(fd, FALLOC_FL_ZERO_RANGE, 4, 2));
    show_bytes("zeroed", fd, 16);
    SHOW("fallocate ZERO_RANGE extends", fallocate(fd, FALLOC_FL_ZERO_RANGE, 12, 8));
    show_bytes("zero-extended", fd, 24);
    SHOW("fallocate ZERO_RANGE|KEEP_SIZE past end", fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 18, 10));
    show_size("zero keep", fd);
    SHOW("fallocate PUNCH|ZERO", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4));
    SHOW("fallocate unknown mode", fallocate(fd, 0x1000, 0, 4));
    SHOW("fallocate len 0", fallocate(fd, 0, 0, 0));
    SHOW("fallocate len -1", fallocate(fd, 0, 0, -1));
    SHOW("fallocate offset -1", fallocate(fd, 0, -1, 10));
    SHOW("fallocate wraps", fallocate(fd, 0, LLONG_MAX - 10, 100));
    SHOW("fallocate bad fd", fallocate(-1, 0, 0, 10));
    close(fd);

    fd = openat(dfd, "fa", O_RDONLY);
    SHOW("fallocate read-only", fallocate(fd, 0, 0, 10));
    SHOW("fallocate read-only len 0", fallocate(fd, 0, 0, 0));
    close(fd);
    fd = openat(dfd, "fa", O_PATH);
    SHOW("fallocate O_PATH", fallocate(fd, 0, 0, 10));
    close(fd);
    fd = openat(dfd, "fa", O_WRONLY | O_APPEND);
    SHOW("fallocate O_APPEND", fallocate(fd, 0, 0, 100));
    show_size("append", fd);
    close(fd);
    fd = open("/dev/null", O_WRONLY);
    SHOW("fallocate /dev/null", fallocate(fd, 0, 0, 10));
    close(fd);
    int pfd[2];
    MUST(pipe(pfd));
    SHOW("fallocate pipe write end", fallocate(pfd[1], 0, 0, 10));
    SHOW("fallocate pipe read end", fallocate(pfd[0], 0, 0, 10));
    SHOW("fallocate pipe len 0", fallocate(pfd[1], 0, 0, 0));
    SHOW("fallocate pipe unknown mode", fallocate(pfd[1], 0x1000, 0, 10));
    close(pfd[0]);
    close(pfd[1]);
    unlinkat(dfd, "fa", 0);
}

/* A memfd is a tmpfs file: no ZERO_RANGE, and its seals bound fallocate. */
static void memfd_fallocate(void)
{
    int fd = memfd_create("fa", MFD_ALLOW_SEALING);
    MUST(fd);
    SHOW("memfd fallocate", fallocate(fd, 0, 0, 100));
    show_size("memfd", fd);
    SHOW("memfd ZERO_RANGE", fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 10));
    MUST(pwrite(fd, "abcdef", 6, 0));
    SHOW("memfd PUNCH_HOLE", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, 2));
    show_bytes("memfd punched", fd, 6);
    MUST(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    SHOW("memfd sealed grow: inside", fallocate(fd, 0, 0, 100));
    SHOW("memfd sealed grow: past end", fallocate(fd, 0, 50, 100));
    SHOW("memfd sealed grow: KEEP_SIZE past end", fallocate(fd, FALLOC_FL_KEEP_SIZE, 50, 100));
    MUST(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    SHOW("memfd sealed write: PUNCH_HOLE", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10));
    SHOW("memfd sealed write: allocate", fallocate(fd, 0, 0, 10));
    show_size("memfd sealed", fd);
    close(fd);
}

/* O_TMPFILE: a nameless file in the directory's file system (an in-memory one in the
 * sandbox, ext4 or tmpfs natively: both support it), named by linkat(AT_EMPTY_PATH)
 * unless O_EXCL; an ordinary unlinked file cannot be named again. */
static void tmpfile_checks(int dfd)
{
    int fd = openat(dfd, ".", O_TMPFILE | O_RDWR, 0640);
    if (fd < 0) {
        printf("O_TMPFILE: -1 %s\n", errname(errno));
        return;
    }
    printf("O_TMPFILE: ok\n");
    SHOW("write", write(fd, "tmp", 3));
    struct stat st;
    MUST(fstat(fd, &st));
    printf("nlink %ld mode %o size %ld\n", (long)st.st_nlink, st.st_mode & 07777, (long)st.st_size);
    char link[PATH_MAX], path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    YESNO("fd link is #N (deleted)", strstr(link, "/#") && strstr(link, " (deleted)"));
    SHOW("linkat AT_EMPTY_PATH", linkat(fd, "", dfd, "named", AT_EMPTY_PATH));
    MUST(fstat(fd, &st));
    printf("nlink after linkat %ld\n", (long)st.st_nlink);
    char buf[8] = {0};
    int named = openat(dfd, "named", O_RDONLY);
    MUST(named);
    SHOW("read named", read(named, buf, sizeof buf));
    printf("named holds %s\n", buf);
    close(named);
    close(fd);
    MUST(unlinkat(dfd, "named", 0));

    fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    MUST(fd);
    SHOW("linkat of O_EXCL tmpfile", linkat(fd, "", dfd, "excl", AT_EMPTY_PATH));
    close(fd);
    SHOW("O_TMPFILE read-only", openat(dfd, ".", O_TMPFILE | O_RDONLY, 0600));
    SHOW("O_TMPFILE without O_DIRECTORY", openat(dfd, ".", 020000000 | O_RDWR, 0600));
    SHOW("O_TMPFILE on a file", openat(dfd, "f", O_TMPFILE | O_RDWR, 0600));
    SHOW("O_TMPFILE|O_CREAT", openat(dfd, ".", O_TMPFILE | O_CREAT | O_RDWR, 0600));
    fd = openat(dfd, "gone", O_CREAT | O_RDWR, 0600);
    MUST(fd);
    MUST(unlinkat(dfd, "gone", 0));
    SHOW("linkat of an unlinked file", linkat(fd, "", dfd, "back", AT_EMPTY_PATH));
    close(fd);
}

static void sync_checks(int dfd)
{
    int fd = openat(dfd, "s", O_RDWR | O_CREAT | O_TRUNC, 0644);
    MUST(fd);
    MUST(write(fd, "sync me", 7));
    SHOW("fsync", fsync(fd));
    SHOW("fdatasync", fdatasync(fd));
    SHOW("syncfs", syncfs(fd));
    SHOW("syncfs dir", syncfs(dfd));
    SHOW("syncfs bad fd", syncfs(-1));
    SHOW("sync_file_range", sync_file_range(fd, 0, 0, 0));
    SHOW("sync_file_range all flags", sync_file_range(fd, 0, 7, SYNC_FILE_RANGE_WAIT_BEFORE |
                                                      SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
    SHOW("sync_file_range bad flags", sync_file_range(fd, 0, 0, 8));
    SHOW("sync_file_range offset -1", sync_file_range(fd, -1, 0, 0));
    SHOW("sync_file_range wraps", sync_file_range(fd, 10, LLONG_MAX, 0));
    SHOW("sync_file_range nbytes -5", sync_file_range(fd, 10, -5, 0));
    SHOW("sync_file_range bad fd", sync_file_range(-1, 0, 0, 0));
    SHOW("sync_file_range bad fd, bad flags", sync_file_range(-1, 0, 0, 8));
    SHOW("sync_file_range dir", sync_file_range(dfd, 0, 0, 0));
    close(fd);
    fd = openat(dfd, "s", O_RDONLY);
    SHOW("sync_file_range read-only", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    SHOW("syncfs read-only", syncfs(fd));
    close(fd);
    fd = openat(dfd, "s", O_PATH);
    SHOW("syncfs O_PATH", syncfs(fd));
    SHOW("sync_file_range O_PATH", sync_file_range(fd, 0, 0, 0));
    SHOW("fsync O_PATH", fsync(fd));
    close(fd);
    int pfd[2];
    MUST(pipe(pfd));
    SHOW("syncfs pipe", syncfs(pfd[0]));
    SHOW("sync_file_range pipe", sync_file_range(pfd[1], 0, 0, 0));
    SHOW("sync_file_range pipe bad flags", sync_file_range(pfd[1], 0, 0, 8));
    close(pfd[0]);
    close(pfd[1]);
    fd = open("/dev/null", O_RDONLY);
    SHOW("sync_file_range /dev/null", sync_file_range(fd, 0, 0, 0));
    close(fd);
    unlinkat(dfd, "s", 0);
}

static void show_fds(const char *label, int from, int to)
{
    printf("%s:", label);
    for (int fd = from; fd <= to; fd++) {
        int fl = fcntl(fd, F_GETFD);
        printf(" %d=%s", fd, fl < 0 ? errname(errno) : (fl & FD_CLOEXEC) ? "cloexec" : "open");
    }
    printf("\n");
}

static void close_range_checks(int dfd)
{
    int fd = openat(dfd, "c", O_RDWR | O_CREAT | O_TRUNC, 0644);
    MUST(fd);
    for (int i = 100; i <= 105; i++)
        MUST(dup2(fd, i));
    close(fd);
    show_fds("dup'd", 100, 105);
    SHOW("close_range 101..102", syscall(SYS_close_range, 101, 102, 0));
    show_fds("closed 101..102", 100, 105);
    SHOW("close_range first > last", syscall(SYS_close_range, 104, 103, 0));
    SHOW("close_range unknown flag", syscall(SYS_close_range, 100, 105, 1));
    SHOW("close_range unknown flag 8", syscall(SYS_close_range, 100, 105, 8));
    SHOW("close_range CLOEXEC 100..103", syscall(SYS_close_range, 100, 103, CLOSE_RANGE_CLOEXEC));
    show_fds("cloexec 100..103", 100, 105);
    SHOW("close_range nothing open", syscall(SYS_close_range, 200, 300, 0));
    SHOW("close_range UNSHARE 100", syscall(SYS_close_range, 100, 100, CLOSE_RANGE_UNSHARE));
    SHOW("close_range UNSHARE|CLOEXEC 104", syscall(SYS_close_range, 104, 104,
                                                      CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC));
    show_fds("after unshare", 100, 105);
    SHOW("close_range 103..~0", syscall(SYS_close_range, 103, ~0U, 0));
    show_fds("closed 103..", 100, 105);

    /* Closed as close(2) closes: the last close of a file open for writing is IN_CLOSE_WRITE. */
    int ifd = inotify_init1(IN_NONBLOCK);
    MUST(ifd);
    MUST(inotify_add_watch(ifd, p("c"), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE));
    fd = openat(dfd, "c", O_WRONLY);
    MUST(dup2(fd, 150));
    MUST(dup2(fd, 151));
    close(fd);
    SHOW("close_range 150..151", syscall(SYS_close_range, 150, 151, 0));
    char buf[256];
    long n = read(ifd, buf, sizeof buf);
    if (n >= (long)sizeof(struct inotify_event)) {
        struct inotify_event *ev = (struct inotify_event *)buf;
        printf("inotify: %ld bytes, mask %x\n", n, ev->mask);
    } else {
        printf("inotify: %ld %s\n", n, n < 0 ? errname(errno) : "");
    }
    close(ifd);
    unlinkat(dfd, "c", 0);
}

static int unshared_fd;

static void *unsharer(void *arg)
{
    (void)arg;
    SHOW("thread: close_range UNSHARE", syscall(SYS_close_range, unshared_fd, unshared_fd, CLOSE_RANGE_UNSHARE));
    printf("thread: its fd: %s\n", fcntl(unshared_fd, F_GETFD) < 0 ? errname(errno) : "open");
    return NULL;
}

/* A thread that unshares its fd table closes only its own copy; when it exits its table (and
 * the pipe's write end in it) goes, so the reader sees end-of-file. */
static void unshare_checks(void)
{
    int pfd[2];
    MUST(pipe(pfd));
    unshared_fd = dup(pfd[0]);
    MUST(unshared_fd);
    pthread_t th;
    MUST(-pthread_create(&th, NULL, unsharer, NULL));
    MUST(-pthread_join(th, NULL));
    printf("main: the fd: %s\n", fcntl(unshared_fd, F_GETFD) < 0 ? errname(errno) : "open");
    close(pfd[1]);
    char c;
    SHOW("read at end-of-file", read(pfd[0], &c, 1));
    close(pfd[0]);
    close(unshared_fd);
}

int main(int argc, char **argv)
{
    rf_init();
    umask(022);
    snprintf(rf_top(), RF_TOP_SIZE, "%s/rf-fsmore-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    MUST(mkdtemp(rf_top()) ? 0 : -1);
    int dfd = open(rf_top(), O_RDONLY | O_DIRECTORY);
    MUST(dfd);
    put("f", "top");
    MUST(mkdir(p("sub"), 0755));
    put("sub/g", "sub-g");
    MUST(symlink("../f", p("sub/back")));
    MUST(symlink("/sub/g", p("abs")));
    MUST(symlink("../x", p("up")));
    MUST(symlink("sub/g", p("rel")));
    MUST(symlink("sub", p("lsub")));

    openat2_checks(dfd);
    resolve_checks(dfd);
    vector_io(dfd);
    fallocate_checks(dfd);
    memfd_fallocate();
    sync_checks(dfd);
    if (argc == 1)  /* the in-memory /tmp of `ringfence do`; 9p (the gofer's) has no O_TMPFILE */
        tmpfile_checks(dfd);
    close_range_checks(dfd);
    unshare_checks();

    const char *names[] = {"sub/back", "sub/g", "abs", "up", "rel", "lsub", "f", "x"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        unlink(p(names[i]));
    MUST(rmdir(p("sub")));
    close(dfd);
    MUST(rmdir(rf_top()));
    printf("done\n");
    return 0;
}
