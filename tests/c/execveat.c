/* execveat: relative to a directory fd, fexecve (AT_EMPTY_PATH on an fd),
 * AT_SYMLINK_NOFOLLOW, and the errors for an empty path. */
#include "rf.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static int run(const char *what, int dirfd, const char *path, int flags)
{
    char *args[] = {"child", (char *)what, NULL};
    pid_t p = fork();
    if (p == 0) {
        syscall(SYS_execveat, dirfd, path, args, environ, flags);
        printf("%s: %s\n", what, errname(errno));
        _exit(1);
    }
    int st;
    waitpid(p, &st, 0);
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] != '/') {
        printf("child ran via %s\n", argv[1]);
        return 4;
    }
    int self = open(argv[0], O_RDONLY | O_CLOEXEC);
    int root = open("/", O_DIRECTORY | O_RDONLY);
    printf("relative to /: status %d\n", run("dirfd", root, argv[0] + 1, 0));
    printf("fexecve: status %d\n", run("fd", self, "", AT_EMPTY_PATH));
    printf("empty path without AT_EMPTY_PATH: status %d\n", run("empty", self, "", 0));
    printf("bad flag: status %d\n", run("flag", root, argv[0] + 1, 0x8));
    if (symlink(argv[0], "/tmp/rf-execveat-link") == 0) {
        printf("symlink with AT_SYMLINK_NOFOLLOW: status %d\n",
               run("nofollow", AT_FDCWD, "/tmp/rf-execveat-link", AT_SYMLINK_NOFOLLOW));
        printf("symlink followed: status %d\n", run("follow", AT_FDCWD, "/tmp/rf-execveat-link", 0));
        unlink("/tmp/rf-execveat-link");
    }
    printf("done\n");
    return 0;
}
