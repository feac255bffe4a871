/* File benchmarks, timed inside the program (sandbox start not counted).
 *   files stat DIR N     open+fstat+close of DIR/0 .. DIR/N-1  ->  us_per_op=...
 *   files read FILE BUF  read FILE to the end in BUF-byte reads ->  ms_per_op=... (one pass) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int stat_files(const char *dir, long n)
{
    char path[4096];
    struct stat st;
    double start = now_ms();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%ld", dir, i);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || close(fd) != 0) {
            perror(path);
            return 1;
        }
    }
    printf("us_per_op=%.3f\n", (now_ms() - start) * 1e3 / n);
    return 0;
}

static int read_file(const char *file, long bufsize)
{
    char *buf = malloc(bufsize);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (!buf || fd < 0) {
        perror(file);
        return 1;
    }
    long long total = 0;
    double start = now_ms();
    for (;;) {
        ssize_t got = read(fd, buf, bufsize);
        if (got < 0) {
            perror("read");
            return 1;
        }
        if (got == 0)
            break;
        total += got;
    }
    printf("ms_per_op=%.3f bytes=%lld\n", now_ms() - start, total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "stat") == 0)
        return stat_files(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "read") == 0)
        return read_file(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: files stat DIR N | files read FILE BUFSIZE\n");
    return 2;
}
