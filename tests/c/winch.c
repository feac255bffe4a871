/* winch: a program that sets the size of its terminal (stdin) and counts the
 * SIGWINCHs it gets.  Linux raises one for the terminal's foreground process
 * group when the size changes, none when it is set to what it is.  Needs a
 * terminal: test_pty.py and test_oci_cli.py run it on one.
 */
#include "rf.h"

#include <signal.h>
#include <sys/ioctl.h>

static volatile sig_atomic_t winches;

static void on_winch(int sig)
{
    (void)sig;
    winches++;
}

/* Wait `ms` milliseconds, or until the count passes `above` (then 300 ms more,
 * for a second signal that should not come). */
static void settle(int ms, int above)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < ms / 10 && winches <= above; i++)
        nanosleep(&tick, NULL);
    for (int i = 0; i < 30 && winches > above; i++)
        nanosleep(&tick, NULL);
}

int main(void)
{
    rf_init();
    struct sigaction sa = {0};
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);

    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) < 0) {
        printf("TIOCGWINSZ: %s\n", errname(errno));
        return 1;
    }
    ws.ws_row += 1;
    ws.ws_col += 2;
    if (ioctl(0, TIOCSWINSZ, &ws) < 0) {
        printf("TIOCSWINSZ: %s\n", errname(errno));
        return 1;
    }
    settle(5000, 0);
    struct winsize now;
    ioctl(0, TIOCGWINSZ, &now);
    printf("new size: %d winch, size is the one set: %s\n", winches,
           now.ws_row == ws.ws_row && now.ws_col == ws.ws_col ? "yes" : "no");

    int before = winches;
    ioctl(0, TIOCSWINSZ, &ws);
    settle(500, before);
    printf("same size again: %d more\n", winches - before);
    return 0;
}
