/* A file on a noexec mount: mapping it readable works, executable fails (EPERM), and so does
 * executing it (EACCES).  Usage: noexec FILE [ARGS...]: on an exec mount FILE runs with ARGS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void show(const char *what, void *p)
{
    printf("%s: %s\n", what, p == MAP_FAILED ? strerror(errno) : "ok");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    show("mmap read", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0));
    show("mmap exec", mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0));
    close(fd);
    execv(argv[1], argv + 1);
    printf("execve: %s\n", strerror(errno));
    return 0;
}
