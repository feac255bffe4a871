/* Advisory locks: POSIX record locks between processes (F_GETLK, conflicts, split and merge,
 * whence, release on closing any fd, at exit), OFD locks, flock, F_SETLKW waking, EDEADLK and
 * EINTR.  Children report through their exit status; only the parent prints. */
#include "rf.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

static char path[64], path2[72];

static struct flock lk(short type, short whence, off_t start, off_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = whence;
    fl.l_start = start;
    fl.l_len = len;
    return fl;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = lk(type, SEEK_SET, start, len);
    return fcntl(fd, cmd, &fl);
}

static const char *tname(short t)
{
    return t == F_RDLCK ? "RDLCK" : t == F_WRLCK ? "WRLCK" : t == F_UNLCK ? "UNLCK" : "?";
}

/* F_GETLK (or F_OFD_GETLK) for a write lock on [start, start+len) through fd: what blocks it. */
static void show_getlk(const char *label, int fd, int cmd, off_t start, off_t len, pid_t holder)
{
    struct flock fl = lk(F_WRLCK, SEEK_SET, start, len);
    if (fcntl(fd, cmd, &fl) < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    if (fl.l_type == F_UNLCK)
        printf("%s: UNLCK whence=%d start=%ld len=%ld pid=%d\n", label, fl.l_whence, (long)fl.l_start,
               (long)fl.l_len, fl.l_pid);
    else
        printf("%s: %s start=%ld len=%ld pid=%s\n", label, tname(fl.l_type), (long)fl.l_start, (long)fl.l_len,
               fl.l_pid == -1 ? "-1" : fl.l_pid == holder ? "holder" : "other");
}

/* A child that opens the file and runs fn(fd); its exit status is fn's result. */
static pid_t child(int (*fn)(int fd, int sync), int sync)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        _exit(fd < 0 ? 99 : fn(fd, sync));
    }
    return pid;
}

static int reap(pid_t pid)
{
    int status;
    MUST(waitpid(pid, &status, 0));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static void ready(int sync)
{
    char c = 'r';
    if (write(sync, &c, 1) != 1)
        _exit(98);
}

static void await_ready(int sync)
{
    char c;
    MUST(read(sync, &c, 1));
}

/* ---- children ---- */
static int try_write_0_10(int fd, int sync)
{
    (void)sync;
    return setlk(fd, F_SETLK, F_WRLCK, 0, 10) < 0 ? errno : 0;
}

static int try_read_20_5(int fd, int sync)
{
    (void)sync;
    return setlk(fd, F_SETLK, F_RDLCK, 20, 5) < 0 ? errno : 0;
}

static int try_write_1000(int fd, int sync)
{
    (void)sync;
    return setlk(fd, F_SETLK, F_WRLCK, 1000, 1) < 0 ? errno : 0;
}

static int hold_50_10(int fd, int sync)
{
    if (setlk(fd, F_SETLK, F_WRLCK, 50, 10) < 0)
        return errno;
    ready(sync);
    pause();
    return 0;
}

static int lock_and_exit(int fd, int sync)
{
    (void)sync;
    return setlk(fd, F_SETLK, F_WRLCK, 0, 0) < 0 ? errno : 0;
}

static int wait_for_0(int fd, int sync)
{
    ready(sync);
    return setlk(fd, F_SETLKW, F_WRLCK, 0, 1) < 0 ? errno : 0;
}

static int hold_1_then_wait_for_0(int fd, int sync)
{
    if (setlk(fd, F_SETLK, F_WRLCK, 1, 1) < 0)
        return errno;
    ready(sync);
    return setlk(fd, F_SETLKW, F_WRLCK, 0, 1) < 0 ? errno : 0;
}

static int flock_wait(int fd, int sync)
{
    ready(sync);
    return flock(fd, LOCK_EX) < 0 ? errno : 0;
}

static int ofd_try(int fd, int sync)
{
    (void)sync;
    struct flock fl = lk(F_WRLCK, SEEK_SET, 0, 1);
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? errno : 0;
}

static void on_usr1(int sig)
{
    (void)sig;
}

static void show_child(const char *label, int code)
{
    printf("%s: %s\n", label, code == 0 ? "ok" : code < 100 ? errname(code) : "killed");
}

int main(void)
{
    rf_init();
    strcpy(path, "/tmp/rf-locks-XXXXXX");
    int fd = mkstemp(path);
    MUST(fd);
    MUST(write(fd, "0123456789abcdefghijklmnopqrstuvwxyz", 36));
    snprintf(path2, sizeof path2, "%s.link", path);
    MUST(link(path, path2));
    int sync[2];
    MUST(pipe(sync));
    pid_t me = getpid();

    /* Argument checks. */
    struct flock fl = lk(F_UNLCK, SEEK_SET, 0, 0);
    SHOW("getlk F_UNLCK", fcntl(fd, F_GETLK, &fl));
    fl = lk(7, SEEK_SET, 0, 0);
    SHOW("setlk bad type", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, 9, 0, 0);
    SHOW("setlk bad whence", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, SEEK_SET, -5, 0);
    SHOW("setlk negative start", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, SEEK_SET, 2, -5);
    SHOW("setlk len before 0", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, SEEK_SET, 0x7fffffffffffff00L, 0x1000);
    SHOW("setlk past OFFSET_MAX", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, SEEK_SET, 0, 1);
    fl.l_pid = 1;
    SHOW("ofd setlk with l_pid", fcntl(fd, F_OFD_SETLK, &fl));
    SHOW("ofd getlk with l_pid", fcntl(fd, F_OFD_GETLK, &fl));
    SHOW("setlk bad pointer", fcntl(fd, F_SETLK, (struct flock *)8));
    int rdonly = open(path, O_RDONLY), wronly = open(path, O_WRONLY);
    SHOW("wrlck on O_RDONLY", setlk(rdonly, F_SETLK, F_WRLCK, 0, 1));
    SHOW("rdlck on O_WRONLY", setlk(wronly, F_SETLK, F_RDLCK, 0, 1));
    SHOW("unlck on O_RDONLY", setlk(rdonly, F_SETLK, F_UNLCK, 0, 1));
    close(wronly);
    show_getlk("getlk unlocked", fd, F_GETLK, 3, 4, 0);

    /* Conflicts with another process. */
    SHOW("parent wrlck [0,10)", setlk(fd, F_SETLK, F_WRLCK, 0, 10));
    SHOW("parent rdlck [20,EOF)", setlk(fd, F_SETLK, F_RDLCK, 20, 0));
    show_getlk("own getlk sees nothing", fd, F_GETLK, 0, 100, me);
    show_child("child wrlck [0,10)", reap(child(try_write_0_10, sync[1])));
    show_child("child rdlck [20,25)", reap(child(try_read_20_5, sync[1])));
    show_child("child wrlck [1000,1001)", reap(child(try_write_1000, sync[1])));
    SHOW("unlock [20,EOF)", setlk(fd, F_SETLK, F_UNLCK, 20, 0));
    pid_t holder = child(hold_50_10, sync[1]);
    await_ready(sync[0]);
    show_getlk("parent getlk [45,55)", fd, F_GETLK, 45, 10, holder);
    show_getlk("parent getlk [58,70)", fd, F_GETLK, 58, 12, holder);
    SHOW("parent setlk over child's", setlk(fd, F_SETLK, F_RDLCK, 55, 1));
    kill(holder, SIGKILL);
    show_child("holder", reap(holder));
    show_getlk("after holder died", fd, F_GETLK, 45, 20, 0);

    /* Split and merge, as another process sees them. */
    SHOW("unlock [4,6)", setlk(fd, F_SETLK, F_UNLCK, 4, 2));
    holder = fork();
    if (holder == 0) {
        int cfd = open(path, O_RDWR);
        show_getlk("child sees [0,4)", cfd, F_GETLK, 0, 100, getppid());
        show_getlk("child sees [6,10)", cfd, F_GETLK, 4, 100, getppid());
        _exit(0);
    }
    reap(holder);
    SHOW("wrlck [4,6) again", setlk(fd, F_SETLK, F_WRLCK, 4, 2));
    SHOW("rdlck [10,20)", setlk(fd, F_SETLK, F_RDLCK, 10, 10));
    SHOW("rdlck [20,30)", setlk(fd, F_SETLK, F_RDLCK, 20, 10));
    MUST(lseek(fd, 30, SEEK_SET));
    fl = lk(F_WRLCK, SEEK_CUR, -2, -3);
    SHOW("wrlck SEEK_CUR [25,28)", fcntl(fd, F_SETLK, &fl));
    fl = lk(F_RDLCK, SEEK_END, -6, 3);
    SHOW("rdlck SEEK_END [30,33)", fcntl(fd, F_SETLK, &fl));
    holder = fork();
    if (holder == 0) {
        int cfd = open(path, O_RDWR);
        show_getlk("child sees merged [0,10)", cfd, F_GETLK, 0, 100, getppid());
        show_getlk("child sees [10,25)", cfd, F_GETLK, 10, 100, getppid());
        show_getlk("child sees [25,28)", cfd, F_GETLK, 25, 100, getppid());
        show_getlk("child sees [28,30)", cfd, F_GETLK, 28, 100, getppid());
        show_getlk("child sees [30,33)", cfd, F_GETLK, 30, 100, getppid());
        show_getlk("child sees nothing past 33", cfd, F_GETLK, 33, 0, getppid());
        _exit(0);
    }
    reap(holder);

    /* Closing any fd of the file (here: through a hard link) drops the process's locks. */
    int other = open(path2, O_RDONLY);
    MUST(other);
    holder = fork();
    if (holder == 0) {
        show_getlk("child via link sees lock", other, F_GETLK, 0, 1, getppid());
        _exit(0);
    }
    reap(holder);
    close(other);
    show_child("child wrlck after close of another fd", reap(child(try_write_0_10, sync[1])));
    SHOW("rdonly fd still open", fcntl(rdonly, F_GETFD));
    close(rdonly);

    /* Locks go when their process exits. */
    show_child("child locks everything and exits", reap(child(lock_and_exit, sync[1])));
    SHOW("parent wrlck everything", setlk(fd, F_SETLK, F_WRLCK, 0, 0));
    SHOW("parent unlock everything", setlk(fd, F_SETLK, F_UNLCK, 0, 0));

    /* OFD locks: owned by the open file description. */
    int ofd1 = open(path, O_RDWR), ofd2 = open(path, O_RDWR);
    fl = lk(F_WRLCK, SEEK_SET, 0, 1);
    SHOW("ofd wrlck on ofd1", fcntl(ofd1, F_OFD_SETLK, &fl));
    fl = lk(F_WRLCK, SEEK_SET, 0, 1);
    SHOW("ofd wrlck on ofd2", fcntl(ofd2, F_OFD_SETLK, &fl));
    SHOW("posix wrlck vs ofd", setlk(fd, F_SETLK, F_WRLCK, 0, 1));
    show_getlk("ofd getlk from ofd2", ofd2, F_OFD_GETLK, 0, 10, me);
    show_getlk("posix getlk sees ofd", fd, F_GETLK, 0, 10, me);
    int dupd = dup(ofd1);
    close(ofd1);
    show_child("child ofd after closing one fd", reap(child(ofd_try, sync[1])));
    close(dupd);
    show_child("child ofd after last close", reap(child(ofd_try, sync[1])));
    close(ofd2);

    /* flock: per open file description, independent of record locks. */
    int f1 = open(path, O_RDONLY), f2 = open(path, O_RDONLY);
    SHOW("flock bad op", flock(f1, 3));
    SHOW("flock ex f1", flock(f1, LOCK_EX));
    SHOW("flock ex f1 again", flock(f1, LOCK_EX | LOCK_NB));
    SHOW("flock ex f2 nb", flock(f2, LOCK_EX | LOCK_NB));
    SHOW("flock sh f2 nb", flock(f2, LOCK_SH | LOCK_NB));
    SHOW("posix wrlck beside flock", setlk(fd, F_SETLK, F_WRLCK, 0, 0));
    SHOW("posix unlock", setlk(fd, F_SETLK, F_UNLCK, 0, 0));
    SHOW("flock sh f1 (convert)", flock(f1, LOCK_SH));
    SHOW("flock sh f2 nb", flock(f2, LOCK_SH | LOCK_NB));
    SHOW("flock ex f1 nb (f2 shares)", flock(f1, LOCK_EX | LOCK_NB));
    SHOW("flock ex f2 nb (f1 dropped its lock)", flock(f2, LOCK_EX | LOCK_NB));
    holder = fork();
    if (holder == 0)
        _exit(flock(f2, LOCK_EX | LOCK_NB) < 0 ? errno : 0);
    show_child("child flock on inherited f2", reap(holder));
    SHOW("flock un f2", flock(f2, LOCK_UN));
    SHOW("flock un f2 again", flock(f2, LOCK_UN));
    SHOW("flock ex f1 nb", flock(f1, LOCK_EX | LOCK_NB));
    pid_t waiter = child(flock_wait, sync[1]);
    await_ready(sync[0]);
    rf_wait_sleeping(waiter);
    YESNO("flock waiter still waiting", waitpid(waiter, NULL, WNOHANG) == 0);
    SHOW("flock un f1", flock(f1, LOCK_UN));
    show_child("flock waiter after unlock", reap(waiter));
    close(f1);
    close(f2);

    /* F_SETLKW waits until the lock is released. */
    SHOW("parent wrlck [0,1)", setlk(fd, F_SETLK, F_WRLCK, 0, 1));
    waiter = child(wait_for_0, sync[1]);
    await_ready(sync[0]);
    rf_wait_sleeping(waiter);
    YESNO("setlkw waiter still waiting", waitpid(waiter, NULL, WNOHANG) == 0);
    SHOW("parent unlock [0,1)", setlk(fd, F_SETLK, F_UNLCK, 0, 1));
    show_child("setlkw waiter", reap(waiter));

    /* EDEADLK: the child holds byte 1 and waits for byte 0, which the parent holds. */
    SHOW("parent wrlck [0,1)", setlk(fd, F_SETLK, F_WRLCK, 0, 1));
    waiter = child(hold_1_then_wait_for_0, sync[1]);
    await_ready(sync[0]);
    rf_wait_sleeping(waiter);
    SHOW("parent setlkw [1,2)", setlk(fd, F_SETLKW, F_WRLCK, 1, 1));
    SHOW("parent unlock [0,1)", setlk(fd, F_SETLK, F_UNLCK, 0, 1));
    show_child("deadlock child", reap(waiter));

    /* A signal without SA_RESTART interrupts F_SETLKW with EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    MUST(sigaction(SIGUSR1, &sa, NULL));
    SHOW("parent wrlck [0,1)", setlk(fd, F_SETLK, F_WRLCK, 0, 1));
    waiter = child(wait_for_0, sync[1]);
    await_ready(sync[0]);
    rf_wait_sleeping(waiter);
    kill(waiter, SIGUSR1);
    show_child("interrupted setlkw", reap(waiter));
    SHOW("parent unlock [0,1)", setlk(fd, F_SETLK, F_UNLCK, 0, 1));

    unlink(path2);
    unlink(path);
    printf("done\n");
    return 0;
}
