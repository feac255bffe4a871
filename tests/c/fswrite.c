/* Writing to a file system and seeing it coherently: in a fresh directory under
 * argv[1] (default /tmp), removed at the end.  Attributes after writes through
 * another fd or another name (hard links), files renamed or unlinked while open
 * (write, fchmod, ftruncate, fstat on them), directories renamed with their
 * children, RENAME_NOREPLACE/EXCHANGE, umask, set-group-ID directories, chown,
 * utimensat, truncate, O_TRUNC, O_APPEND from two fds, symlinks, fsync, and the
 * errors EEXIST, ENOENT, ENOTEMPTY, ENOTDIR, EISDIR, ELOOP.
 * Run by test_differential.py under `ringfence do` (the overlay) and by
 * test_mounts.py in a container whose root and bind mounts the gofer serves. */
#include "rf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

#define p(name) rf_in_top(name)

static void show_stat(const char *label, const char *name)
{
    struct stat st;
    if (lstat(p(name), &st) < 0) {
        printf("%s: lstat -1 %s\n", label, errname(errno));
        return;
    }
    if (S_ISDIR(st.st_mode)) /* (a directory's size and link count depend on the file system) */
        printf("%s: mode=%o uid=%u gid=%u\n", label, st.st_mode, st.st_uid, st.st_gid);
    else
        printf("%s: mode=%o nlink=%lu uid=%u gid=%u size=%ld\n", label, st.st_mode,
               (unsigned long)st.st_nlink, st.st_uid, st.st_gid, (long)st.st_size);
}

static void show_fstat(const char *label, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        printf("%s: fstat -1 %s\n", label, errname(errno));
        return;
    }
    printf("%s: mode=%o nlink=%lu size=%ld\n", label, st.st_mode, (unsigned long)st.st_nlink, (long)st.st_size);
}

static void show_file(const char *label, const char *name)
{
    char buf[128];
    int fd = open(p(name), O_RDONLY);
    if (fd < 0) {
        printf("%s: open -1 %s\n", label, errname(errno));
        return;
    }
    long n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        printf("%s: read -1 %s\n", label, errname(errno));
        return;
    }
    buf[n] = 0;
    printf("%s: \"%s\"\n", label, buf);
}

static void list(const char *label, const char *name)
{
    char *names[64];
    int count = 0;
    DIR *d = opendir(p(name));
    if (!d) {
        printf("%s: opendir -1 %s\n", label, errname(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) && count < 64)
        names[count++] = strdup(e->d_name);
    closedir(d);
    rf_print_names(label, names, count);
}

static void writes(const char *label, int fd, const char *s)
{
    SHOW(label, write(fd, s, strlen(s)));
}

int main(int argc, char **argv)
{
    rf_init();
    snprintf(rf_top(), RF_TOP_SIZE, "%s/rf-fswrite.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    umask(022);
    SHOW("mkdir top", mkdir(rf_top(), 0777));
    show_stat("top", "");

    /* umask and O_EXCL */
    umask(077);
    int fd = open(p("private"), O_CREAT | O_EXCL | O_WRONLY, 0666);
    SHOW("create private", fd >= 0 ? 0 : -1);
    close(fd);
    umask(022);
    show_stat("private", "private");
    SHOW("create private again", open(p("private"), O_CREAT | O_EXCL | O_WRONLY, 0666));

    /* a write through one fd is seen through another fd and by path */
    int a = open(p("a"), O_CREAT | O_RDWR, 0644);
    int a2 = open(p("a"), O_RDONLY);
    writes("write a", a, "0123456789");
    show_fstat("a via other fd", a2);
    show_stat("a by path", "a");
    close(a2);

    /* hard links share attributes */
    SHOW("link a b", link(p("a"), p("b")));
    int b = open(p("b"), O_WRONLY | O_APPEND);
    writes("append via b", b, "abc");
    close(b);
    show_stat("a after b grew", "a");
    show_file("a content", "a");
    SHOW("unlink a", unlink(p("a")));
    show_stat("b after unlink a", "b");

    /* an unlinked open file */
    writes("write a (unlinked)", a, "XY");
    show_fstat("a unlinked", a);
    SHOW("ftruncate unlinked", ftruncate(a, 4));
    show_fstat("a truncated", a);
    char buf[32] = {0};
    SHOW("pread unlinked", pread(a, buf, sizeof buf - 1, 0));
    printf("unlinked content: \"%s\"\n", buf);
    close(a);

    /* a file renamed while open */
    int d = open(p("d"), O_CREAT | O_RDWR, 0644);
    SHOW("rename d e", rename(p("d"), p("e")));
    writes("write renamed", d, "moved");
    SHOW("fchmod renamed", fchmod(d, 0640));
    SHOW("ftruncate renamed", ftruncate(d, 7));
    show_stat("e", "e");
    SHOW("open d", open(p("d"), O_RDONLY));
    close(d);
    SHOW("chmod e", chmod(p("e"), 0600));
    show_stat("e after chmod", "e");

    /* a directory renamed with its children */
    SHOW("mkdir x", mkdir(p("x"), 0755));
    fd = open(p("x/y"), O_CREAT | O_WRONLY, 0644);
    writes("write x/y", fd, "child");
    close(fd);
    SHOW("rename x z", rename(p("x"), p("z")));
    show_file("z/y", "z/y");
    show_stat("x", "x");
    fd = open(p("z/w"), O_CREAT | O_WRONLY, 0600);
    SHOW("create z/w", fd >= 0 ? 0 : -1);
    close(fd);
    SHOW("rename z/y z/w", rename(p("z/y"), p("z/w")));
    show_file("z/w replaced", "z/w");
    show_stat("z/y", "z/y");
    list("z", "z");

    /* renameat2 flags */
    SHOW("noreplace", syscall(SYS_renameat2, AT_FDCWD, p("b"), AT_FDCWD, p("e"), RENAME_NOREPLACE));
    SHOW("exchange", syscall(SYS_renameat2, AT_FDCWD, p("b"), AT_FDCWD, p("e"), RENAME_EXCHANGE));
    show_file("b after exchange", "b");
    show_file("e after exchange", "e");
    SHOW("exchange dir and file", syscall(SYS_renameat2, AT_FDCWD, p("z"), AT_FDCWD, p("e"), RENAME_EXCHANGE));
    show_stat("e is the dir", "e");
    show_file("e/w", "e/w");

    /* owners, set-group-ID directories, times */
    SHOW("mkdir sg", mkdir(p("sg"), 0755));
    SHOW("chown sg", chown(p("sg"), 1234, 4321));
    SHOW("chmod sg", chmod(p("sg"), 02775));
    fd = open(p("sg/f"), O_CREAT | O_WRONLY, 0664);
    close(fd);
    show_stat("sg/f", "sg/f");
    SHOW("mkdir sg/d", mkdir(p("sg/d"), 0755));
    show_stat("sg/d", "sg/d");
    struct timespec ts[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
    SHOW("utimensat", utimensat(AT_FDCWD, p("sg/f"), ts, 0));
    struct stat st;
    stat(p("sg/f"), &st);
    printf("times: %ld.%09ld %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_sec = 1300000000;
    ts[1].tv_nsec = 0;
    SHOW("utimensat omit", utimensat(AT_FDCWD, p("sg/f"), ts, 0));
    stat(p("sg/f"), &st);
    printf("times: %ld.%09ld %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    SHOW("chown sg/f", chown(p("sg/f"), 55, -1));
    show_stat("sg/f chowned", "sg/f");

    /* truncate, O_TRUNC, O_APPEND from two fds, fsync */
    SHOW("truncate grow", truncate(p("b"), 20));
    show_stat("b grown", "b");
    SHOW("truncate shrink", truncate(p("b"), 2));
    show_file("b shrunk", "b");
    fd = open(p("b"), O_WRONLY | O_TRUNC);
    show_stat("b O_TRUNC", "b");
    close(fd);
    int l1 = open(p("log"), O_CREAT | O_WRONLY | O_APPEND, 0644);
    int l2 = open(p("log"), O_WRONLY | O_APPEND);
    writes("log 1", l1, "one\n");
    writes("log 2", l2, "two\n");
    writes("log 1 again", l1, "three\n");
    SHOW("fsync", fsync(l1));
    SHOW("fdatasync", fdatasync(l2));
    close(l1);
    close(l2);
    show_file("log", "log");

    /* symlinks */
    SHOW("symlink", symlink("log", p("ln")));
    char target[64] = {0};
    SHOW("readlink", readlink(p("ln"), target, sizeof target - 1));
    printf("target: %s\n", target);
    show_file("via symlink", "ln");
    SHOW("open nofollow", open(p("ln"), O_RDONLY | O_NOFOLLOW));
    show_stat("ln", "ln");

    /* errors */
    SHOW("rmdir non-empty", rmdir(p("e")));
    SHOW("rmdir file", rmdir(p("log")));
    SHOW("unlink dir", unlink(p("e")));
    SHOW("mkdir existing", mkdir(p("log"), 0755));
    SHOW("open missing", open(p("nope/x"), O_CREAT | O_WRONLY, 0644));
    list("top", "");

    /* clean up */
    const char *files[] = {"private", "b", "e/w", "sg/f", "log", "ln", "z"};
    for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++)
        SHOW(files[i], unlink(p(files[i])));
    SHOW("rmdir e", rmdir(p("e")));
    SHOW("rmdir sg/d", rmdir(p("sg/d")));
    SHOW("rmdir sg", rmdir(p("sg")));
    SHOW("rmdir top", rmdir(rf_top()));
    printf("done\n");
    return 0;
}
