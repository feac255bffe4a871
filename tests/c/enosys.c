/* Sandbox check (not differential): syscalls the sentry does not implement
 * fail with ENOSYS, and the program goes on.  kexec_file_load is called twice
 * (the sentry logs an unimplemented syscall once).  Natively the result of
 * kexec_file_load depends on the host kernel (ENOSYS without kexec support,
 * EPERM or EBADF with it); under the sentry it is always ENOSYS. */
#include "rf.h"

#include <fcntl.h>
#include <sys/syscall.h>

int main(void)
{
    rf_init();
    for (int i = 0; i < 2; i++) {
        errno = 0;
        long r = syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0UL);
        printf("kexec_file_load: %ld %s\n", r, errname(errno));
    }
    /* A host kernel with swap support answers this one (ENOENT, or EPERM
     * without CAP_SYS_ADMIN) and swaps nothing off; the sentry says ENOSYS. */
    errno = 0;
    long r = syscall(SYS_swapoff, "/nonexistent-rf/swap");
    printf("swapoff: %ld %s\n", r, errname(errno));
    /* POSIX message queues are refused (natively: a descriptor, or ENOSYS without them). */
    for (int i = 0; i < 2; i++) {
        errno = 0;
        r = syscall(SYS_mq_open, "rf-enosys", O_RDONLY, 0, NULL);
        printf("mq_open: %ld %s\n", r, errname(errno));
    }
    errno = 0;
    r = syscall(1000, 1, 2, 3);
    printf("syscall 1000: %ld %s\n", r, errname(errno));
    printf("alive\n");
    return 0;
}
