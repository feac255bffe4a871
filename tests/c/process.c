/* Process family: fork (libc's clone and the raw fork syscall), wait4 statuses
 * (exit 0, exit 7, killed by SIGKILL while blocked), getpid/getppid/gettid
 * relations, pipes between parent and child, execve of this program with an
 * argument, execve errors, ECHILD, WNOHANG, process groups, exit_group.
 * The program itself ends with exit_group(5).
 * Only one process prints at a time: the parent waits before printing. */
#include "rf.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static void wait_show(const char *label, pid_t pid)
{
    int status = 0;
    pid_t r = wait4(pid, &status, 0, NULL);
    if (r < 0) {
        printf("%s: wait4 -1 %s\n", label, errname(errno));
        return;
    }
    YESNO("  wait4 returned the child's pid", r == pid);
    show_status(label, status);
}

/* Run as "process exec-child ARG...": report what execve gave us. */
static int exec_child(int argc, char **argv)
{
    printf("exec child: argc=%d", argc);
    for (int i = 1; i < argc; i++)
        printf(" [%s]", argv[i]);
    printf("\n");
    printf("exec child: RF_TEST_ENV=%s\n", getenv("RF_TEST_ENV") ? getenv("RF_TEST_ENV") : "(unset)");
    /* fd 3 was marked close-on-exec by the parent, fd 4 was not. */
    YESNO("exec child: cloexec fd closed", fcntl(3, F_GETFD) < 0 && errno == EBADF);
    YESNO("exec child: plain fd inherited", fcntl(4, F_GETFD) == 0);
    return 3;
}

int main(int argc, char **argv)
{
    pid_t pid;
    int status;

    rf_init();
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return exec_child(argc, argv);

    printf("== no children yet\n");
    SHOW("wait4 without children", wait4(-1, &status, 0, NULL));
    SHOW("wait4 WNOHANG without children", wait4(-1, &status, WNOHANG, NULL));
    YESNO("gettid == getpid", syscall(SYS_gettid) == getpid());
    YESNO("getpgid(0) == getpgrp()", getpgid(0) == getpgrp());

    printf("== fork and exit statuses\n");
    for (int code = 0; code <= 7; code += 7) {
        pid = fork();
        MUST(pid);
        if (pid == 0)
            _exit(code);
        YESNO("fork returned a positive pid", pid > 0);
        wait_show(code ? "child exit 7" : "child exit 0", pid);
    }
    SHOW("wait4 after reaping", wait4(-1, &status, 0, NULL));

    pid = (pid_t)syscall(SYS_fork);
    MUST(pid);
    if (pid == 0)
        syscall(SYS_exit_group, 9);
    wait_show("raw fork child exit_group 9", pid);

    pid = fork();
    MUST(pid);
    if (pid == 0)
        syscall(SYS_exit, 300); /* only the low 8 bits survive */
    wait_show("child exit(300)", pid);

    printf("== parent/child relations\n");
    pid_t me = getpid();
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        int ok = getppid() == me && getpid() != me && syscall(SYS_gettid) == getpid();
        _exit(ok ? 0 : 1);
    }
    wait_show("child checks getppid == parent, own pid differs (0 = yes)", pid);

    printf("== kill a child blocked in read\n");
    int block[2];
    MUST(pipe(block));
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char c;
        read(block[0], &c, 1); /* blocks: the parent keeps the write end */
        _exit(1);
    }
    SHOW("kill SIGKILL", kill(pid, SIGKILL));
    wait_show("child killed", pid);
    close(block[0]);
    close(block[1]);

    printf("== pipes between parent and child\n");
    int down[2], up[2];
    MUST(pipe(down));
    MUST(pipe(up));
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char buf[64];
        close(down[1]);
        close(up[0]);
        ssize_t n = read(down[0], buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        write(up[1], buf, n > 0 ? n : 0);
        /* EOF on down once the parent closes its end */
        n = read(down[0], buf, sizeof buf);
        _exit(n == 0 ? 0 : 1);
    }
    close(down[0]);
    close(up[1]);
    SHOW("parent writes", write(down[1], "data from parent", 16));
    char reply[64];
    ssize_t n = read(up[0], reply, sizeof reply);
    printf("child replied: %.*s\n", (int)(n > 0 ? n : 0), reply);
    close(down[1]);
    SHOW("read after child closed", read(up[0], reply, sizeof reply));
    close(up[0]);
    wait_show("pipe child", pid);

    printf("== several children\n");
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        MUST(kids[i]);
        if (kids[i] == 0)
            _exit(11 + i);
    }
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        pid_t r = waitpid(-1, &status, 0);
        for (int k = 0; k < 3; k++)
            if (r == kids[k] && WIFEXITED(status) && WEXITSTATUS(status) == 11 + k)
                seen |= 1 << k;
    }
    YESNO("waitpid(-1) reaped all three with their own statuses", seen == 7);
    SHOW("then ECHILD", waitpid(-1, &status, 0));

    printf("== WNOHANG on a running child\n");
    int gate[2];
    MUST(pipe(gate));
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char c;
        close(gate[1]);
        _exit(read(gate[0], &c, 1) == 0 ? 4 : 1);
    }
    close(gate[0]);
    SHOW("wait4 WNOHANG while running", wait4(pid, &status, WNOHANG, NULL));
    close(gate[1]); /* child sees EOF and exits */
    wait_show("child after EOF", pid);
    SHOW("wait4 on a non-child", wait4(1, &status, WNOHANG, NULL));

    printf("== execve\n");
    int cloexec_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int plain_fd = open("/dev/null", O_RDONLY);
    printf("fds: %d %d\n", cloexec_fd, plain_fd);
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *args[] = { argv[0], "exec-child", "one", "two words", NULL };
        char *env[] = { "RF_TEST_ENV=passed", NULL };
        execve(argv[0], args, env);
        printf("execve failed: %s\n", errname(errno));
        _exit(98);
    }
    wait_show("exec child", pid);
    close(cloexec_fd);
    close(plain_fd);
    pid = fork();
    MUST(pid);
    if (pid == 0) {
        char *args[] = { "x", NULL };
        int r1 = execve("/nonexistent-rf/prog", args, environ);
        int e1 = errno;
        int r2 = execve("/etc", args, environ);
        int e2 = errno;
        int r3 = execve("/etc/debian_version", args, environ);
        int e3 = errno;
        printf("execve missing: %d %s\n", r1, errname(e1));
        printf("execve directory: %d %s\n", r2, errname(e2));
        printf("execve non-executable file: %d %s\n", r3, errname(e3));
        _exit(0);
    }
    wait_show("execve errors child", pid);

    printf("== exit_group\n");
    printf("exiting with 5\n");
    syscall(SYS_exit_group, 5);
    printf("not reached\n");
    return 0;
}
