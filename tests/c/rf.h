/* Shared helpers for the differential test programs.
 *
 * Every program prints deterministic lines only: results, errno names, flags
 * and comparisons -- never addresses, pids or times -- so that a native run
 * and a run under `ringfence do` can be compared byte for byte.
 * stdout is unbuffered so that nothing is duplicated across fork().
 */
#ifndef RF_H
#define RF_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline const char *errname(int e)
{
    static char other[32];
    switch (e) {
#define E(x) case x: return #x
    E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(E2BIG);
    E(ENOEXEC); E(EBADF); E(ECHILD); E(EAGAIN); E(ENOMEM); E(EACCES);
    E(EFAULT); E(EBUSY); E(EEXIST); E(EXDEV); E(ENODEV); E(ENOTDIR);
    E(EISDIR); E(EINVAL); E(ENFILE); E(EMFILE); E(ENOTTY); E(EFBIG);
    E(ENOSPC); E(ESPIPE); E(EROFS); E(EMLINK); E(EPIPE); E(ERANGE);
    E(ENAMETOOLONG); E(ENOSYS); E(ENOTEMPTY); E(ELOOP); E(EOVERFLOW);
    E(EOPNOTSUPP); E(ETIMEDOUT); E(EDEADLK);
    E(ENOTSOCK); E(EAFNOSUPPORT); E(EPROTONOSUPPORT); E(ESOCKTNOSUPPORT);
    E(ECONNREFUSED); E(EADDRINUSE); E(EISCONN); E(ENOTCONN); E(EPROTOTYPE);
    E(EMSGSIZE); E(ECONNRESET); E(EDESTADDRREQ); E(ENOPROTOOPT); E(ENOBUFS);
#undef E
    default:
        snprintf(other, sizeof other, "errno-%d", e);
        return other;
    }
}

static inline void rf_init(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
}

/* Print "label: <result>" or "label: -1 ENAME" for a call returning -1/errno. */
#define SHOW(label, expr)                                                   \
    do {                                                                    \
        errno = 0;                                                          \
        long rf_r_ = (long)(expr);                                          \
        int rf_e_ = errno;                                                  \
        if (rf_r_ < 0)                                                      \
            printf("%s: -1 %s\n", (label), errname(rf_e_));                 \
        else                                                                \
            printf("%s: %ld\n", (label), rf_r_);                            \
    } while (0)

/* Print "label: ok" or "label: -1 ENAME" (for calls whose value varies). */
#define OK(label, expr)                                                     \
    do {                                                                    \
        errno = 0;                                                          \
        long rf_r_ = (long)(expr);                                          \
        int rf_e_ = errno;                                                  \
        if (rf_r_ < 0)                                                      \
            printf("%s: -1 %s\n", (label), errname(rf_e_));                 \
        else                                                                \
            printf("%s: ok\n", (label));                                    \
    } while (0)

/* Print "label: yes|no". */
#define YESNO(label, cond) printf("%s: %s\n", (label), (cond) ? "yes" : "no")

/* Stop at once when a precondition of the rest of the program fails. */
#define MUST(expr)                                                          \
    do {                                                                    \
        if ((long)(expr) < 0) {                                             \
            printf("FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,      \
                   errname(errno));                                         \
            _exit(99);                                                      \
        }                                                                   \
    } while (0)

static inline const char *ftype(unsigned mode)
{
    switch (mode & 0170000) {
    case 0100000: return "reg";
    case 0040000: return "dir";
    case 0120000: return "lnk";
    case 0020000: return "chr";
    case 0060000: return "blk";
    case 0010000: return "fifo";
    case 0140000: return "sock";
    default: return "?";
    }
}

/* Describe a wait status. */
static inline void show_status(const char *label, int status)
{
    if ((status & 0x7f) == 0)
        printf("%s: exited %d\n", label, (status >> 8) & 0xff);
    else if ((status & 0xff) == 0x7f)
        printf("%s: stopped %d\n", label, (status >> 8) & 0xff);
    else
        printf("%s: killed by signal %d%s\n", label, status & 0x7f,
               (status & 0x80) ? " (core)" : "");
}

/* Wait until process `pid` sleeps (state S in /proc/PID/stat: it is then
 * parked in its blocking call); exits the program if it never does. */
static inline void rf_wait_sleeping(pid_t pid)
{
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (int i = 0; i < 20000; i++) {
        int fd = open(path, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, st, sizeof st - 1);
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            st[n] = 0;
            char *s = strrchr(st, ')');
            if (s && s[2] == 'S')
                return;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    printf("FATAL: process never slept\n");
    _exit(99);
}

/* The directory a file-system test program works in (it fills it in), and
 * paths of names inside it (four live at a time). */
#define RF_TOP_SIZE 512
static inline char *rf_top(void)
{
    static char top[RF_TOP_SIZE];
    return top;
}

static inline const char *rf_in_top(const char *name)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", rf_top(), name);
    return buf[i];
}

/* Whether the kernel can read or write one byte at p: write() from p into a
 * pipe, read() from the pipe into p ("readable"/"writable" or an errno name). */
static inline int *rf_probe(void)
{
    static int fds[2] = {-1, -1};
    if (fds[0] < 0 && pipe(fds) != 0) {
        printf("FATAL: no probe pipe: %s\n", errname(errno));
        _exit(99);
    }
    return fds;
}

static inline const char *rf_readable(const void *p)
{
    int *probe = rf_probe();
    char c;
    if (write(probe[1], p, 1) == 1) {
        read(probe[0], &c, 1);
        return "readable";
    }
    return errname(errno);
}

static inline const char *rf_writable(void *p)
{
    int *probe = rf_probe();
    char c = 0;
    if (write(probe[1], &c, 1) != 1)
        return "probe failed";
    if (read(probe[0], p, 1) == 1)
        return "writable";
    const char *e = errname(errno);
    read(probe[0], &c, 1); /* drain */
    return e;
}

static inline int rf_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print "label: name name ..." with the `count` names sorted, and free them. */
static inline void rf_print_names(const char *label, char **names, int count)
{
    qsort(names, count, sizeof names[0], rf_by_name);
    printf("%s:", label);
    for (int i = 0; i < count; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

#endif
