/* Directory family, all inside a fresh directory under /tmp that is removed at
 * the end: mkdir, create/write, rename, link, unlink, rmdir, getdents64
 * (sorted), getcwd/chdir/fchdir, symlink/readlink, truncate, O_APPEND, the *at
 * variants, and the errors EEXIST, ENOENT, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL. */
#include "rf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static const char *dtype(unsigned char t)
{
    switch (t) {
    case DT_REG: return "reg";
    case DT_DIR: return "dir";
    case DT_LNK: return "lnk";
    case DT_UNKNOWN: return "unknown";
    default: return "other";
    }
}

/* List a directory with raw getdents64 and a small buffer (so several calls
 * are needed), sorted by name. */
static void list(const char *label, const char *path)
{
    char buf[64];
    char *names[64];
    int count = 0, calls = 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("%s: open -1 %s\n", label, errname(errno));
        return;
    }
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            printf("%s: getdents64 -1 %s\n", label, errname(errno));
            break;
        }
        if (n == 0)
            break;
        calls++;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            if (count < 64) {
                char *s = malloc(strlen(d->d_name) + 16);
                sprintf(s, "%s(%s)", d->d_name, dtype(d->d_type));
                names[count++] = s;
            }
            off += d->d_reclen;
        }
    }
    close(fd);
    rf_print_names(label, names, count);
    if (count > 2) /* a 64-byte buffer cannot hold them all */
        YESNO("  needed several getdents64 calls", calls > 1);
}

static void show_file(const char *label, const char *path)
{
    char buf[128];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    printf("%s: [%.*s]\n", label, (int)(n > 0 ? n : 0), buf);
}

static void show_stat(const char *label, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    printf("%s: type=%s perm=%04o", label, ftype(st.st_mode), st.st_mode & 07777);
    /* Directory sizes and link counts depend on the file system. */
    if (!S_ISDIR(st.st_mode))
        printf(" nlink=%lu size=%lld", (unsigned long)st.st_nlink, (long long)st.st_size);
    printf("\n");
}

static int write_file(const char *path, const char *data, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0640);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, strlen(data));
    close(fd);
    return (int)n;
}

int main(void)
{
    char top[] = "/tmp/rf-dirs-XXXXXX";
    char cwd[4096], buf[256];

    rf_init();
    umask(022);
    if (!mkdtemp(top)) {
        printf("mkdtemp: %s\n", errname(errno));
        return 99;
    }
    MUST(chdir(top));
    YESNO("getcwd is the new dir", getcwd(cwd, sizeof cwd) && strcmp(cwd, top) == 0);

    printf("== mkdir/create/write\n");
    SHOW("mkdir a", mkdir("a", 0755));
    SHOW("mkdir a again", mkdir("a", 0755));
    SHOW("mkdir missing parent", mkdir("nope/b", 0755));
    SHOW("mkdir raw", syscall(SYS_mkdir, "raw", 0700));
    show_stat("stat raw", "raw");
    SHOW("create a/f1 O_EXCL", write_file("a/f1", "hello\n", O_EXCL));
    SHOW("create a/f1 O_EXCL again", write_file("a/f1", "x", O_EXCL));
    show_stat("stat a/f1", "a/f1");
    show_file("a/f1", "a/f1");
    SHOW("append", write_file("a/f1", "more\n", O_APPEND));
    show_file("a/f1 after append", "a/f1");
    int cfd = (int)syscall(SYS_creat, "c", 0600);
    SHOW("creat raw", cfd);
    SHOW("write to creat fd", write(cfd, "c", 1));
    SHOW("read from creat fd (O_WRONLY)", read(cfd, buf, 1));
    close(cfd);
    show_stat("stat c", "c");
    SHOW("mkdir under file", mkdir("c/x", 0755));
    SHOW("mkdirat", mkdirat(AT_FDCWD, "a/sub", 0750));
    show_stat("stat a/sub", "a/sub");
    show_stat("stat a", "a");

    printf("== truncate\n");
    SHOW("truncate a/f1 to 3", truncate("a/f1", 3));
    show_file("a/f1", "a/f1");
    int fd = open("a/f1", O_RDWR);
    SHOW("ftruncate to 8", ftruncate(fd, 8));
    show_stat("stat a/f1", "a/f1");
    SHOW("read past old end", (lseek(fd, 3, SEEK_SET), read(fd, buf, sizeof buf)));
    printf("zero bytes: %s\n", memcmp(buf, "\0\0\0\0\0", 5) == 0 ? "yes" : "no");
    SHOW("pwrite at 1", pwrite(fd, "EL", 2, 1));
    close(fd);
    show_file("a/f1", "a/f1");
    SHOW("truncate dir", truncate("a", 0));

    printf("== rename/link/unlink\n");
    SHOW("rename a/f1 a/f2", rename("a/f1", "a/f2"));
    show_stat("stat a/f1", "a/f1");
    show_stat("stat a/f2", "a/f2");
    SHOW("write b", write_file("b", "bee\n", O_TRUNC));
    SHOW("rename b over a/f2", rename("b", "a/f2"));
    show_file("a/f2", "a/f2");
    SHOW("rename missing", rename("b", "b2"));
    SHOW("rename dir into itself", rename("a", "a/sub/a"));
    SHOW("rename file over dir", rename("a/f2", "raw"));
    SHOW("renameat", renameat(AT_FDCWD, "raw", AT_FDCWD, "raw2"));
    SHOW("link a/f2 hard", link("a/f2", "hard"));
    show_stat("stat hard", "hard");
    SHOW("link to existing", link("a/f2", "hard"));
    SHOW("unlink hard", unlink("hard"));
    show_stat("stat a/f2 nlink back to 1", "a/f2");
    SHOW("unlink missing", unlink("hard"));
    SHOW("unlink dir", unlink("a"));
    SHOW("unlink through file", unlink("c/x"));

    printf("== symlinks\n");
    SHOW("symlink lnk -> a/f2", symlink("a/f2", "lnk"));
    SHOW("symlink exists", symlink("a/f2", "lnk"));
    ssize_t n = readlink("lnk", buf, sizeof buf);
    SHOW("readlink", n);
    printf("target: %.*s\n", (int)(n > 0 ? n : 0), buf);
    n = readlink("lnk", buf, 2);
    printf("readlink truncated: %.*s\n", (int)(n > 0 ? n : 0), buf);
    SHOW("readlink regular file", readlink("c", buf, sizeof buf));
    SHOW("readlink missing", readlink("nothere", buf, sizeof buf));
    show_stat("lstat lnk", "lnk");
    struct stat st;
    SHOW("stat through lnk size", stat("lnk", &st) == 0 ? st.st_size : -1);
    show_file("read through lnk", "lnk");
    SHOW("symlink dangling", symlink("nothere", "dangle"));
    show_file("open dangling", "dangle");
    SHOW("symlink dir", symlink("a", "dirlink"));
    show_file("path through dir symlink", "dirlink/f2");
    SHOW("symlinkat", symlinkat("../c", AT_FDCWD, "a/up"));
    show_file("relative target", "a/up");
    SHOW("loop a", symlink("loopb", "loopa"));
    SHOW("loop b", symlink("loopa", "loopb"));
    show_file("open loop", "loopa");
    SHOW("open O_NOFOLLOW on link", open("lnk", O_RDONLY | O_NOFOLLOW));

    printf("== getdents64\n");
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof buf, "a/file-%d", 5 - i);
        write_file(buf, "", 0);
    }
    list("top", ".");
    list("a", "a");
    list("empty a/sub", "a/sub");
    SHOW("getdents64 on file", (fd = open("c", O_RDONLY),
                                syscall(SYS_getdents64, fd, buf, sizeof buf)));
    close(fd);

    printf("== chdir/fchdir/getcwd\n");
    SHOW("chdir a/sub", chdir("a/sub"));
    printf("getcwd ends with /a/sub: %s\n",
           getcwd(cwd, sizeof cwd) && strlen(cwd) > 6 &&
           strcmp(cwd + strlen(cwd) - 6, "/a/sub") == 0 ? "yes" : "no");
    SHOW("raw getcwd length", syscall(SYS_getcwd, cwd, sizeof cwd) == (long)strlen(top) + 7);
    SHOW("getcwd too small", syscall(SYS_getcwd, cwd, 4));
    SHOW("chdir ..", chdir(".."));
    show_file("relative after chdir ..", "f2");
    SHOW("chdir file", chdir("f2"));
    SHOW("chdir missing", chdir("missing"));
    int topfd = open(top, O_RDONLY | O_DIRECTORY);
    SHOW("fchdir top", fchdir(topfd));
    YESNO("getcwd is top again", getcwd(cwd, sizeof cwd) && strcmp(cwd, top) == 0);
    SHOW("chdir through dir symlink", chdir("dirlink"));
    YESNO("getcwd resolved the link", getcwd(cwd, sizeof cwd) && strlen(cwd) > 2 &&
          strcmp(cwd + strlen(cwd) - 2, "/a") == 0);
    fchdir(topfd);
    close(topfd);

    printf("== rmdir/unlinkat\n");
    SHOW("rmdir non-empty", rmdir("a"));
    SHOW("rmdir file", rmdir("c"));
    SHOW("rmdir missing", rmdir("missing"));
    SHOW("rmdir .", rmdir("."));
    SHOW("unlinkat dir without AT_REMOVEDIR", unlinkat(AT_FDCWD, "raw2", 0));
    SHOW("unlinkat AT_REMOVEDIR", unlinkat(AT_FDCWD, "raw2", AT_REMOVEDIR));
    SHOW("rmdir a/sub", rmdir("a/sub"));
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof buf, "a/file-%d", i);
        unlink(buf);
    }
    SHOW("unlink a/f2", unlink("a/f2"));
    SHOW("unlink a/up", unlink("a/up"));
    SHOW("rmdir a", rmdir("a"));
    const char *rest[] = { "c", "lnk", "dangle", "dirlink", "loopa", "loopb" };
    for (unsigned i = 0; i < sizeof rest / sizeof rest[0]; i++) {
        snprintf(buf, sizeof buf, "unlink %s", rest[i]);
        SHOW(buf, unlink(rest[i]));
    }
    list("top at the end", ".");
    SHOW("chdir /", chdir("/"));
    SHOW("rmdir top", rmdir(top));
    SHOW("stat top after rmdir", stat(top, &st));
    printf("done\n");
    return 0;
}
