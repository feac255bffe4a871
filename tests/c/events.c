/* eventfd and epoll: counters, semaphore mode, level-triggered readiness of
 * pipes and eventfds, EPOLLONESHOT, closed fds leaving the interest list,
 * and the errors Linux gives. */
#include "rf.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int wake_fd;

static void *later(void *arg)
{
    (void)arg;
    usleep(20000);
    uint64_t one = 1;
    if (write(wake_fd, &one, 8) != 8)
        printf("write failed\n");
    return NULL;
}

static void show(const char *what, int n, struct epoll_event *out)
{
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++)
        printf(" [data %lu events %#x]", (unsigned long)out[i].data.u64, out[i].events);
    printf("\n");
}

int main(void)
{
    int efd = eventfd(0, EFD_NONBLOCK);
    uint64_t v = 0;
    ssize_t r = read(efd, &v, 8);
    printf("empty eventfd read: %zd %s\n", r, errname(errno));
    v = 5;
    r = write(efd, &v, 8);
    r = read(efd, &v, 8);
    printf("eventfd read after writing 5: %zd value %lu\n", r, (unsigned long)v);
    int sem = eventfd(2, EFD_SEMAPHORE);
    r = read(sem, &v, 8);
    printf("semaphore read: value %lu\n", (unsigned long)v);
    r = read(efd, &v, 4);
    printf("short read: %zd %s\n", r, errname(errno));

    int ep = epoll_create1(EPOLL_CLOEXEC), p[2];
    if (pipe(p))
        return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7}, out[4];
    printf("add eventfd: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
    ev.data.u64 = 9;
    printf("add pipe: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    r = epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    printf("add twice: %zd %s\n", r, errname(errno));
    r = epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev);
    printf("add itself: %zd %s\n", r, errname(errno));
    int reg = open("/etc/debian_version", O_RDONLY);
    r = epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev);
    printf("add a regular file: %zd %s\n", r, errname(errno));
    r = epoll_ctl(ep, EPOLL_CTL_DEL, reg, NULL);
    printf("delete a missing one: %zd %s\n", r, errname(errno));
    show("nothing ready", epoll_wait(ep, out, 4, 10), out);
    v = 3;
    r = write(efd, &v, 8);
    if (write(p[1], "x", 1) != 1)
        return 1;
    show("both ready", epoll_wait(ep, out, 4, 100), out);
    show("still ready (level-triggered)", epoll_wait(ep, out, 1, 0), out);
    r = read(efd, &v, 8);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = 9;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    show("oneshot, first", epoll_wait(ep, out, 4, 0), out);
    show("oneshot, after", epoll_wait(ep, out, 4, 0), out);
    close(p[0]);
    close(p[1]);
    wake_fd = efd;
    ev.events = EPOLLIN;
    ev.data.u64 = 7;
    epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev);
    pthread_t t;
    pthread_create(&t, NULL, later, NULL);
    show("woken by another thread", epoll_wait(ep, out, 4, 2000), out);
    pthread_join(t, NULL);
    r = epoll_wait(ep, out, 0, 0);
    printf("maxevents 0: %zd %s\n", r, errname(errno));
    printf("done\n");
    return 0;
}
