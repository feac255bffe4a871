/* Pseudo-terminals: ptmx/devpts (locking, numbering, stat), the line discipline in
 * canonical mode (editing, echo, end-of-file, CR mapping) and raw mode (VMIN/VTIME),
 * output processing, termios and window-size ioctls, poll readiness, controlling
 * terminals (setsid + TIOCSCTTY, acquiring on open, /dev/tty), ^C to the foreground
 * group, SIGWINCH, and hang-up when the master closes. */
#include "rf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

/* Print `len` bytes, quoted, control characters escaped. */
static void show_bytes(const char *buf, int len)
{
    printf("\"");
    for (int i = 0; i < len; i++) {
        unsigned char c = buf[i];
        if (c == '\n')
            printf("\\n");
        else if (c == '\r')
            printf("\\r");
        else if (c < 32 || c == 127)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
}

/* Print what `fd` has to read within 300 ms (the host's pty delivers from a worker). */
static void drain(const char *label, int fd)
{
    char buf[512];
    int len = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len < (int)sizeof buf && poll(&p, 1, 300) == 1 && (p.revents & POLLIN)) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0)
            break;
        len += r;
    }
    printf("%s: ", label);
    show_bytes(buf, len);
}

static void put(int fd, const char *s)
{
    MUST(write(fd, s, strlen(s)));
}

/* Read once from `fd` (after waiting up to 1 s for it to be readable) and print the bytes. */
static void read_once(const char *label, int fd, size_t n)
{
    char buf[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 1000);
    ssize_t r = read(fd, buf, n);
    if (r < 0)
        printf("%s: -1 %s\n", label, errname(errno));
    else {
        printf("%s: %zd ", label, r);
        show_bytes(buf, (int)r);
    }
}

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    int n = poll(&p, 1, ms);
    return n == 1 ? p.revents : 0;
}

static int open_master(char *name, size_t size)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    MUST(m);
    MUST(grantpt(m));
    MUST(unlockpt(m));
    MUST(ptsname_r(m, name, size));
    return m;
}

static void devpts(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    MUST(m);
    int n = -1, lock = -1;
    MUST(ioctl(m, TIOCGPTN, &n));
    char name[64];
    MUST(ptsname_r(m, name, sizeof name));
    char expect[64];
    snprintf(expect, sizeof expect, "/dev/pts/%d", n);
    YESNO("ptsname is /dev/pts/<TIOCGPTN>", strcmp(name, expect) == 0);
    SHOW("TIOCGPTLCK before unlockpt", ioctl(m, TIOCGPTLCK, &lock) < 0 ? -1 : lock);
    SHOW("open locked replica", open(name, O_RDWR | O_NOCTTY));
    MUST(unlockpt(m));
    SHOW("TIOCGPTLCK after unlockpt", ioctl(m, TIOCGPTLCK, &lock) < 0 ? -1 : lock);
    fcntl(m, F_SETFL, O_NONBLOCK);
    char c;
    SHOW("master read before any replica", read(m, &c, 1));
    printf("master poll before any replica: %#x\n", readable(m, 50));
    int s = open(name, O_RDWR | O_NOCTTY);
    MUST(s);
    struct stat st;
    MUST(fstat(s, &st));
    printf("replica: %s major %u minor==N %s\n", ftype(st.st_mode), major(st.st_rdev),
           (int)minor(st.st_rdev) == n ? "yes" : "no");
    struct stat byname;
    MUST(stat(name, &byname));
    YESNO("stat(ptsname) is the replica", byname.st_ino == st.st_ino && byname.st_dev == st.st_dev);
    YESNO("isatty(replica)", isatty(s));
    YESNO("isatty(master)", isatty(m));
    const char *tn = ttyname(s);
    YESNO("ttyname(replica) == ptsname", tn && strcmp(tn, name) == 0);
    SHOW("TIOCGPTN on the replica", ioctl(s, TIOCGPTN, &n));
    SHOW("lseek on the replica", lseek(s, 0, SEEK_SET));
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    OK("TIOCGPTPEER", peer);
    tn = peer >= 0 ? ttyname(peer) : NULL;
    YESNO("ttyname(peer) == ptsname", tn && strcmp(tn, name) == 0);
    close(peer);
    close(s);
    SHOW("master read after the replica closed", read(m, &c, 1));
    printf("master poll after the replica closed: %#x\n", readable(m, 50));
    close(m);
    SHOW("stat(ptsname) after the master closed", stat(name, &st));
}

static void show_termios(int fd)
{
    struct termios t;
    MUST(tcgetattr(fd, &t));
    printf("termios: iflag %#x oflag %#x cflag %#x lflag %#x", t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag);
    printf(" intr %d quit %d erase %d kill %d eof %d min %d time %d\n", t.c_cc[VINTR], t.c_cc[VQUIT],
           t.c_cc[VERASE], t.c_cc[VKILL], t.c_cc[VEOF], t.c_cc[VMIN], t.c_cc[VTIME]);
}

static void canonical(int m, int s)
{
    show_termios(s);
    put(m, "abc\n");
    readable(s, 1000);
    int n = -1;
    MUST(ioctl(s, FIONREAD, &n));
    printf("FIONREAD on a line: %d\n", n);
    read_once("line", s, 256);
    drain("echo of a line", m);
    put(m, "xy");
    printf("poll with a partial line: %#x\n", readable(s, 100));
    put(m, "\x7f");
    drain("echo of erase", m);
    put(m, "z\n");
    read_once("line after erase", s, 256);
    drain("echo", m);
    put(m, "foo\x15" "bar\n");
    read_once("line after kill", s, 256);
    drain("echo of kill", m);
    put(m, "one two\x17three\n");
    read_once("line after word erase", s, 256);
    drain("echo of word erase", m);
    put(m, "a\x01\x7f" "b\n");
    read_once("control character erased", s, 256);
    drain("echo of a control character", m);
    put(m, "\x16\x15q\n");
    read_once("literal next", s, 256);
    drain("echo of literal next", m);
    put(m, "ab\x04");
    read_once("line ended by EOF", s, 256);
    put(m, "\x04");
    read_once("EOF at line start", s, 256);
    drain("echo of EOF", m);
    put(m, "hello\n");
    read_once("short read", s, 2);
    read_once("rest of the line", s, 256);
    put(m, "one\ntwo\n");
    read_once("first of two lines", s, 256);
    read_once("second of two lines", s, 256);
    put(m, "cr\r");
    read_once("CR becomes NL (ICRNL)", s, 256);
    drain("echo", m);
    put(m, "\t\x7fx\n");
    read_once("tab erased", s, 256);
    drain("echo of tab erase", m);

    struct termios t;
    MUST(tcgetattr(s, &t));
    t.c_lflag &= ~ECHO;
    t.c_lflag |= ECHONL;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "quiet\n");
    read_once("no echo", s, 256);
    drain("ECHONL only", m);
    t.c_lflag |= ECHO;
    t.c_lflag &= ~ECHONL;
    t.c_iflag |= IGNCR;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "ig\rnored\n");
    read_once("IGNCR", s, 256);
    drain("echo", m);
    t.c_iflag &= ~IGNCR;
    MUST(tcsetattr(s, TCSANOW, &t));

    put(m, "flushed\n");
    readable(s, 1000);
    MUST(tcflush(s, TCIFLUSH));
    printf("poll after TCIFLUSH: %#x\n", readable(s, 100));
    drain("echo before flush", m);

    put(s, "a\nb\tc");
    drain("output with ONLCR", m);
    t.c_oflag &= ~OPOST;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(s, "a\nb");
    drain("output without OPOST", m);
    t.c_oflag |= OPOST;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "pending");
    t.c_lflag &= ~ICANON;
    MUST(tcsetattr(s, TCSANOW, &t));
    read_once("partial line after leaving ICANON", s, 256);
    drain("echo", m);
    t.c_lflag |= ICANON;
    MUST(tcsetattr(s, TCSANOW, &t));
}

static void raw(int m, int s)
{
    struct termios t, saved;
    MUST(tcgetattr(s, &saved));
    t = saved;
    cfmakeraw(&t);
    MUST(tcsetattr(s, TCSANOW, &t));
    show_termios(s);
    put(m, "\x03x\r");
    read_once("raw bytes", s, 256);
    drain("raw echo (none)", m);
    put(s, "a\nb");
    drain("raw output", m);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    MUST(tcsetattr(s, TCSANOW, &t));
    char c;
    SHOW("VMIN 0 VTIME 0, nothing typed", read(s, &c, 1));
    t.c_cc[VTIME] = 1;
    MUST(tcsetattr(s, TCSANOW, &t));
    SHOW("VMIN 0 VTIME 1, nothing typed", read(s, &c, 1));
    t.c_cc[VMIN] = 3;
    t.c_cc[VTIME] = 0;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "12");
    printf("poll with 2 of VMIN 3: %#x\n", readable(s, 100));
    put(m, "3");
    printf("poll with 3 of VMIN 3: %#x\n", readable(s, 1000));
    read_once("VMIN 3", s, 256);
    t.c_cc[VTIME] = 1;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "4");
    read_once("VMIN 3 VTIME 1, one byte", s, 256);
    t.c_lflag |= ECHO | ECHOCTL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    MUST(tcsetattr(s, TCSANOW, &t));
    put(m, "\x01z\n");
    read_once("raw with ECHO", s, 256);
    drain("raw echo of control characters", m);
    MUST(tcsetattr(s, TCSAFLUSH, &saved));
}

static volatile sig_atomic_t hup;
static int report = -1;

static void on_signal(int sig)
{
    char c = (char)sig;
    if (sig == SIGHUP)
        hup = 1;
    if (write(report, &c, 1) != 1)
        _exit(98);
}

static void wait_report(const char *label, int fd)
{
    char c = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1 || read(fd, &c, 1) != 1) {
        printf("%s: nothing\n", label);
        return;
    }
    printf("%s: %s\n", label, c == SIGINT ? "SIGINT" : c == SIGWINCH ? "SIGWINCH" : c == SIGHUP ? "SIGHUP"
                                        : c == 'R' ? "ready" : "other");
}

/* A session leader takes the terminal with TIOCSCTTY; ^C and a new window size signal it;
 * closing the master hangs the terminal up and sends it SIGHUP. */
static void session(int m, int s, const char *name)
{
    int pgrp = -1;
    SHOW("TIOCGPGRP on the replica without a session", ioctl(s, TIOCGPGRP, &pgrp));
    SHOW("TIOCGPGRP on the master without a session", ioctl(m, TIOCGPGRP, &pgrp) < 0 ? -1 : pgrp);
    SHOW("TIOCGSID on the master without a session", ioctl(m, TIOCGSID, &pgrp));
    SHOW("TIOCNOTTY on the master", ioctl(m, TIOCNOTTY));
    int ws_ok = 0;
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    MUST(ioctl(m, TIOCSWINSZ, &ws));
    struct winsize got;
    MUST(ioctl(s, TIOCGWINSZ, &got));
    ws_ok = got.ws_row == 24 && got.ws_col == 80;
    YESNO("window size set on the master, read on the replica", ws_ok);

    pid_t other = fork();
    MUST(other);
    if (other == 0) {
        SHOW("TIOCSCTTY by a process that leads no session", ioctl(s, TIOCSCTTY, 0));
        _exit(0);
    }
    int status;
    MUST(waitpid(other, &status, 0));

    int pipefd[2];
    MUST(pipe(pipefd));
    report = pipefd[1];
    pid_t child = fork();
    MUST(child);
    if (child == 0) {
        close(pipefd[0]);
        close(m);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGWINCH, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        MUST(setsid());
        SHOW("child /dev/tty after setsid", open("/dev/tty", O_RDWR));
        SHOW("child TIOCSCTTY", ioctl(s, TIOCSCTTY, 0));
        SHOW("child TIOCSCTTY again", ioctl(s, TIOCSCTTY, 0));
        YESNO("child tcgetpgrp == getpgrp", tcgetpgrp(s) == getpgrp());
        YESNO("child tcgetsid == getsid", tcgetsid(s) == getsid(0));
        SHOW("child tcsetpgrp(-1)", tcsetpgrp(s, -1));
        SHOW("child tcsetpgrp(own group)", tcsetpgrp(s, getpgrp()));
        int tty = open("/dev/tty", O_RDWR);
        OK("child /dev/tty with a controlling terminal", tty);
        YESNO("child /dev/tty is a terminal", isatty(tty));
        if (write(tty, "via dev tty\n", 12) != 12)
            printf("child write to /dev/tty failed\n");
        char c = 'R';
        MUST(write(report, &c, 1));
        while (!hup)
            pause();
        char buf[8];
        SHOW("child read after hangup", read(s, buf, sizeof buf));
        SHOW("child write after hangup", write(s, "x", 1));
        SHOW("child read /dev/tty after hangup", read(tty, buf, sizeof buf));
        SHOW("child open /dev/tty after hangup", open("/dev/tty", O_RDWR));
        _exit(0);
    }
    close(pipefd[1]);
    wait_report("child", pipefd[0]);
    drain("written through /dev/tty", m);
    pgrp = -1;
    MUST(ioctl(m, TIOCGPGRP, &pgrp));
    YESNO("master TIOCGPGRP is the child's group", pgrp == child);
    SHOW("TIOCGPGRP on the replica, not our terminal", ioctl(s, TIOCGPGRP, &pgrp));
    SHOW("TIOCSCTTY on a terminal of another session", ioctl(s, TIOCSCTTY, 0));
    put(m, "typed");
    drain("echo of typed text", m);
    put(m, "\x03");
    wait_report("^C", pipefd[0]);
    drain("echo of ^C", m);
    put(m, "\n");
    read_once("line after ^C (typed text flushed)", s, 256);
    drain("echo", m);
    ws.ws_row = 50;
    MUST(ioctl(m, TIOCSWINSZ, &ws));
    wait_report("new window size", pipefd[0]);
    MUST(ioctl(m, TIOCSWINSZ, &ws));
    close(m);
    MUST(waitpid(child, &status, 0));
    wait_report("master closed", pipefd[0]);
    show_status("child", status);
    char buf[8];
    SHOW("read after hangup", read(s, buf, sizeof buf));
    SHOW("write after hangup", write(s, "x", 1));
    printf("poll after hangup: %#x\n", readable(s, 100));
    SHOW("TCGETS after hangup", ioctl(s, TCGETS, &buf));
    SHOW("open after the master closed", open(name, O_RDWR | O_NOCTTY));
    close(s);
    close(pipefd[0]);
}

/* A session leader opening a replica without O_NOCTTY acquires it; with O_NOCTTY it does not.
 * When the leader exits the terminal controls no session. */
static void acquire(void)
{
    char name[64];
    int m = open_master(name, sizeof name);
    pid_t child = fork();
    MUST(child);
    if (child == 0) {
        signal(SIGHUP, SIG_IGN); /* TIOCNOTTY sends it to our own (foreground) group */
        MUST(setsid());
        int s = open(name, O_RDWR | O_NOCTTY);
        SHOW("O_NOCTTY open: tcgetsid", tcgetsid(s) < 0 ? -1 : 0);
        SHOW("O_NOCTTY open: /dev/tty", open("/dev/tty", O_RDWR));
        int s2 = open(name, O_RDWR);
        YESNO("open without O_NOCTTY: tcgetsid == getsid", tcgetsid(s2) == getsid(0));
        OK("open without O_NOCTTY: /dev/tty", open("/dev/tty", O_RDWR));
        SHOW("TIOCNOTTY by the leader", ioctl(s2, TIOCNOTTY));
        SHOW("after TIOCNOTTY: /dev/tty", open("/dev/tty", O_RDWR));
        SHOW("after TIOCNOTTY: tcgetsid", tcgetsid(s2) < 0 ? -1 : 0);
        SHOW("TIOCSCTTY after TIOCNOTTY", ioctl(s2, TIOCSCTTY, 0));
        _exit(0);
    }
    int status, pgrp = -1;
    MUST(waitpid(child, &status, 0));
    show_status("acquiring child", status);
    SHOW("TIOCGPGRP on the master after the leader exited", ioctl(m, TIOCGPGRP, &pgrp) < 0 ? -1 : pgrp);
    SHOW("TIOCGSID on the master after the leader exited", ioctl(m, TIOCGSID, &pgrp));
    close(m);
}

int main(void)
{
    rf_init();
    devpts();
    char name[64];
    int m = open_master(name, sizeof name);
    int s = open(name, O_RDWR | O_NOCTTY);
    MUST(s);
    printf("master poll, idle: %#x\n", readable(m, 50));
    printf("replica poll, idle: %#x\n", readable(s, 50));
    canonical(m, s);
    raw(m, s);
    session(m, s, name);
    acquire();
    printf("done\n");
    return 0;
}
