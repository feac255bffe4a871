/* Sandbox check (not differential): bad pointers given to syscalls fail with
 * EFAULT, as on Linux, and neither the program nor the sentry dies. */
#include "rf.h"

#include <fcntl.h>
#include <sys/syscall.h>

int main(void)
{
    int p[2];
    /* volatile: keep the compiler from seeing (and warning about) the bad pointers */
    void *volatile bad_low = (void *)16, *volatile bad_one = (void *)1;

    rf_init();
    errno = 0;
    long r = write(1, bad_low, 10);
    printf("write from bad pointer: %ld %s\n", r, errname(errno));

    if (pipe(p) < 0 || write(p[1], "0123456789", 10) != 10) {
        printf("pipe setup failed: %s\n", errname(errno));
        return 99;
    }
    errno = 0;
    r = read(p[0], bad_one, 10);
    printf("read into bad pointer: %ld %s\n", r, errname(errno));

    errno = 0;
    r = syscall(SYS_openat, AT_FDCWD, (char *)bad_one, O_RDONLY);
    printf("openat bad path pointer: %ld %s\n", r, errname(errno));
    printf("alive\n");
    return 0;
}
