/* File I/O family: open/openat/read/pread/lseek, fstat/stat/lstat (raw and
 * through libc), readv/writev, dup/dup2/dup3, fcntl, pipe/pipe2, and the
 * errors ENOENT, ENOTDIR, EBADF, EISDIR, ESPIPE, EAGAIN, EINVAL.
 * Reads only stable host files: /etc/debian_version, /bin, /etc, /dev/null. */
#include "rf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#define VERSION_FILE "/etc/debian_version"

static void show_stat(const char *label, int r, const struct stat *st, int with_size)
{
    if (r < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    printf("%s: type=%s perm=%04o", label, ftype(st->st_mode), st->st_mode & 07777);
    if (with_size)
        printf(" size=%lld", (long long)st->st_size);
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        printf(" rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
    printf("\n");
}

static void show_flags(const char *label, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    int acc = fl & O_ACCMODE;
    printf("%s: %s%s%s\n", label,
           acc == O_RDONLY ? "O_RDONLY" : acc == O_WRONLY ? "O_WRONLY" : "O_RDWR",
           (fl & O_APPEND) ? "|O_APPEND" : "", (fl & O_NONBLOCK) ? "|O_NONBLOCK" : "");
}

static void files(void)
{
    char buf[256];
    struct stat st, st2;
    int r;

    printf("== open/read/lseek/pread\n");
    int fd = open(VERSION_FILE, O_RDONLY);
    SHOW("open " VERSION_FILE, fd);
    MUST(fd);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    SHOW("read", n);
    MUST(n);
    buf[n] = 0;
    printf("content: %s", buf);
    if (n == 0 || buf[n - 1] != '\n')
        printf("\n");
    SHOW("read at eof", read(fd, buf, sizeof buf));
    SHOW("lseek end", lseek(fd, 0, SEEK_END));
    SHOW("lseek set 1", lseek(fd, 1, SEEK_SET));
    n = read(fd, buf, 2);
    SHOW("read 2", n);
    printf("bytes: %.*s\n", (int)(n > 0 ? n : 0), buf);
    n = pread(fd, buf, 3, 0);
    SHOW("pread 3 at 0", n);
    printf("bytes: %.*s\n", (int)(n > 0 ? n : 0), buf);
    SHOW("offset after pread", lseek(fd, 0, SEEK_CUR));
    SHOW("lseek cur -1", lseek(fd, -1, SEEK_CUR));
    SHOW("lseek negative", lseek(fd, -100, SEEK_SET));
    SHOW("lseek bad whence", lseek(fd, 0, 12345));
    SHOW("pread negative offset", pread(fd, buf, 1, -1));
    SHOW("write to O_RDONLY fd", write(fd, "x", 1));

    printf("== stat family\n");
    show_stat("fstat", fstat(fd, &st), &st, 1);
    show_stat("fstat raw", (int)syscall(SYS_fstat, fd, &st2), &st2, 1);
    YESNO("fstat raw same size", st.st_size == st2.st_size);
    show_stat("stat " VERSION_FILE, stat(VERSION_FILE, &st), &st, 1);
    show_stat("stat raw", (int)syscall(SYS_stat, VERSION_FILE, &st), &st, 1);
    r = lstat("/bin", &st);
    show_stat("lstat /bin", r, &st, S_ISLNK(st.st_mode)); /* a symlink's size is its length */
    show_stat("lstat raw /bin", (int)syscall(SYS_lstat, "/bin", &st), &st, 0);
    show_stat("stat /bin", stat("/bin", &st), &st, 0);
    show_stat("stat /etc", stat("/etc", &st), &st, 0);
    show_stat("stat /dev/null", stat("/dev/null", &st), &st, 0);
    show_stat("fstatat /etc debian_version", fstatat(AT_FDCWD, VERSION_FILE, &st, 0), &st, 1);
    show_stat("stat missing", stat("/nonexistent-rf/x", &st), &st, 0);
    show_stat("stat through file", stat(VERSION_FILE "/x", &st), &st, 0);
    show_stat("stat empty path", stat("", &st), &st, 0);
    SHOW("close", close(fd));
    SHOW("close again", close(fd));

    printf("== openat\n");
    int dirfd = open("/etc", O_RDONLY | O_DIRECTORY);
    SHOW("open /etc O_DIRECTORY", dirfd);
    fd = openat(dirfd, "debian_version", O_RDONLY);
    SHOW("openat relative", fd);
    show_stat("fstat openat", fstat(fd, &st), &st, 1);
    SHOW("openat absolute ignores dirfd", close(openat(dirfd, VERSION_FILE, O_RDONLY)));
    SHOW("openat raw AT_FDCWD", close((int)syscall(SYS_openat, AT_FDCWD, VERSION_FILE, O_RDONLY)));
    SHOW("open raw", close((int)syscall(SYS_open, VERSION_FILE, O_RDONLY)));
    SHOW("read dir fd", read(dirfd, buf, sizeof buf));
    SHOW("openat relative on file fd", openat(fd, "x", O_RDONLY));
    SHOW("openat relative on bad fd", openat(999, "x", O_RDONLY));
    close(fd);
    close(dirfd);

    printf("== errors\n");
    SHOW("open missing", open("/nonexistent-rf", O_RDONLY));
    SHOW("open through file", open(VERSION_FILE "/x", O_RDONLY));
    SHOW("open dir for writing", open("/etc", O_WRONLY));
    SHOW("open file O_DIRECTORY", open(VERSION_FILE, O_RDONLY | O_DIRECTORY));
    SHOW("open empty path", open("", O_RDONLY));
    SHOW("read bad fd", read(999, buf, 1));
    SHOW("read negative fd", read(-1, buf, 1));
    SHOW("write bad fd", write(999, "x", 1));
    SHOW("close bad fd", close(999));
    SHOW("fstat bad fd", fstat(999, &st));
}

static void devnull(void)
{
    char buf[16];
    struct stat st;

    printf("== /dev/null\n");
    int fd = open("/dev/null", O_RDWR);
    SHOW("open /dev/null", fd);
    SHOW("write", write(fd, "hello", 5));
    SHOW("read", read(fd, buf, sizeof buf));
    show_stat("fstat", fstat(fd, &st), &st, 0);
    show_flags("F_GETFL", fd);
    close(fd);
}

static void vectors(void)
{
    int p[2];
    char a[4], b[16];
    struct iovec out[3] = {
        { "one ", 4 }, { "two ", 4 }, { "three", 5 },
    };
    struct iovec in[2] = { { a, sizeof a }, { b, sizeof b } };

    printf("== readv/writev\n");
    MUST(pipe(p));
    SHOW("writev", writev(p[1], out, 3));
    ssize_t n = readv(p[0], in, 2);
    SHOW("readv", n);
    printf("iov0: %.4s\n", a);
    printf("iov1: %.*s\n", (int)(n > 4 ? n - 4 : 0), b);
    SHOW("writev zero count", writev(p[1], out, 0));
    volatile int negative = -1;
    SHOW("writev negative count", writev(p[1], out, negative));
    close(p[0]);
    close(p[1]);
}

static void descriptors(void)
{
    char buf[16];
    int fd = open(VERSION_FILE, O_RDONLY);

    printf("== dup family and fcntl\n");
    SHOW("open", fd);
    int d = dup(fd);
    SHOW("dup", d);
    SHOW("dup shares offset: lseek", lseek(fd, 3, SEEK_SET));
    SHOW("offset seen through dup", lseek(d, 0, SEEK_CUR));
    SHOW("dup2 to 10", dup2(fd, 10));
    SHOW("dup2 same fd", dup2(fd, fd));
    SHOW("dup2 bad fd", dup2(999, 11));
    SHOW("dup3 to 11 O_CLOEXEC", dup3(fd, 11, O_CLOEXEC));
    SHOW("F_GETFD 11", fcntl(11, F_GETFD));
    SHOW("F_GETFD 10", fcntl(10, F_GETFD));
    SHOW("dup3 same fd", dup3(fd, fd, 0));
    SHOW("dup3 bad flags", dup3(fd, 12, 0x1234));
    SHOW("F_SETFD FD_CLOEXEC", fcntl(10, F_SETFD, FD_CLOEXEC));
    SHOW("F_GETFD after set", fcntl(10, F_GETFD));
    SHOW("F_SETFD 0", fcntl(10, F_SETFD, 0));
    SHOW("F_GETFD after clear", fcntl(10, F_GETFD));
    show_flags("F_GETFL O_RDONLY file", fd);
    SHOW("F_DUPFD from 20", fcntl(fd, F_DUPFD, 20));
    SHOW("F_DUPFD_CLOEXEC from 20", fcntl(fd, F_DUPFD_CLOEXEC, 20));
    SHOW("F_GETFD 21", fcntl(21, F_GETFD));
    SHOW("fcntl bad fd", fcntl(999, F_GETFD));
    SHOW("read via 20", read(20, buf, 2));
    SHOW("closed fd is reused", (close(d), dup(fd)));
    close(fd);
    close(10);
    close(11);
    close(20);
    close(21);
    close(d);
    SHOW("lowest free fd after closes", fd = open(VERSION_FILE, O_RDONLY));
    close(fd);
}

static void pipes(void)
{
    int p[2];
    char buf[32];

    printf("== pipe/pipe2\n");
    SHOW("pipe", pipe(p));
    printf("pipe fds: %d %d\n", p[0], p[1]);
    SHOW("write ping", write(p[1], "ping", 4));
    ssize_t n = read(p[0], buf, sizeof buf);
    SHOW("read", n);
    printf("got: %.*s\n", (int)(n > 0 ? n : 0), buf);
    SHOW("lseek on pipe", lseek(p[0], 0, SEEK_SET));
    SHOW("write to read end", write(p[0], "x", 1));
    show_flags("F_GETFL read end", p[0]);
    show_flags("F_GETFL write end", p[1]);
    SHOW("close write end", close(p[1]));
    SHOW("read at eof", read(p[0], buf, sizeof buf));
    close(p[0]);

    int raw[2];
    SHOW("pipe raw", syscall(SYS_pipe, raw));
    SHOW("raw round trip", (write(raw[1], "abc", 3), read(raw[0], buf, sizeof buf)));
    close(raw[0]);
    close(raw[1]);

    SHOW("pipe2 O_NONBLOCK|O_CLOEXEC", pipe2(p, O_NONBLOCK | O_CLOEXEC));
    show_flags("F_GETFL", p[0]);
    SHOW("F_GETFD", fcntl(p[0], F_GETFD));
    SHOW("read empty nonblocking", read(p[0], buf, sizeof buf));
    SHOW("F_SETFL clear O_NONBLOCK", fcntl(p[0], F_SETFL, 0));
    show_flags("F_GETFL after F_SETFL", p[0]);
    SHOW("pipe2 bad flags", pipe2(raw, 0x1234));
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    rf_init();
    files();
    devnull();
    vectors();
    descriptors();
    pipes();
    printf("done\n");
    return 0;
}
