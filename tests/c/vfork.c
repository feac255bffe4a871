/* vfork and posix_spawn: the child borrows the parent's memory until it
 * execs or exits, so what it writes is seen by the parent, and posix_spawn
 * reports an exec failure through that memory. */
#include "rf.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "child") == 0)
        return 6;
    volatile int shared = 1;
    pid_t p = vfork();
    if (p == 0) {
        shared = 42;
        _exit(3);
    }
    int st;
    waitpid(p, &st, 0);
    printf("vfork child wrote the parent's memory: %d, status %d\n", shared, WEXITSTATUS(st));
    p = vfork();
    if (p == 0) {
        execl(argv[0], argv[0], "child", (char *)NULL);
        _exit(127);
    }
    waitpid(p, &st, 0);
    printf("vfork + exec: status %d\n", WEXITSTATUS(st));
    char *missing[] = {"/nonexistent-rf", NULL};
    int r = posix_spawn(&p, missing[0], NULL, NULL, missing, environ);
    printf("posix_spawn of a missing program: %s\n", errname(r));
    char *self[] = {argv[0], "child", NULL};
    r = posix_spawn(&p, argv[0], NULL, NULL, self, environ);
    waitpid(p, &st, 0);
    printf("posix_spawn of itself: %d, status %d\n", r, WEXITSTATUS(st));
    printf("done\n");
    return 0;
}
