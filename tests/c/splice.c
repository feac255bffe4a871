/* Moving data without user buffers: sendfile, splice, tee, copy_file_range; lseek SEEK_DATA and
 * SEEK_HOLE on a sparse file and a host file; F_SETPIPE_SZ/F_GETPIPE_SZ; PIPE_BUF writes from
 * concurrent writers staying whole. */
#include "rf.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define SIZE 100000
static char data[SIZE], buf[SIZE * 2];
static char src_path[64], dst_path[64], sparse_path[64];

static int tmpfile_rw(char *path, const char *name)
{
    snprintf(path, 64, "/tmp/rf-splice-%s-XXXXXX", name);
    int fd = mkstemp(path);
    MUST(fd);
    return fd;
}

/* Whether the file at fd holds data[from, from+n) at offset at. */
static int holds(int fd, off_t at, size_t from, size_t n)
{
    ssize_t got = pread(fd, buf, n, at);
    return got == (ssize_t)n && memcmp(buf, data + from, n) == 0;
}

/* Read everything buffered in a pipe (non-blocking); how many bytes, into buf. */
static ssize_t drain(int rfd)
{
    int fl = fcntl(rfd, F_GETFL);
    fcntl(rfd, F_SETFL, fl | O_NONBLOCK);
    ssize_t total = 0, n;
    while ((n = read(rfd, buf + total, sizeof buf - total)) > 0)
        total += n;
    fcntl(rfd, F_SETFL, fl);
    return total;
}

static void test_sendfile(int src, int dst)
{
    int p[2];
    MUST(pipe(p));
    off_t off = 10;
    SHOW("sendfile with offset", sendfile(dst, src, &off, 1000));
    printf("offset now %ld, file offset %ld\n", (long)off, (long)lseek(src, 0, SEEK_CUR));
    YESNO("dst holds data[10,1010)", holds(dst, 0, 10, 1000));
    SHOW("sendfile at file offset", sendfile(dst, src, NULL, 500));
    printf("file offsets %ld %ld\n", (long)lseek(src, 0, SEEK_CUR), (long)lseek(dst, 0, SEEK_CUR));
    YESNO("dst holds data[0,500) at 1000", holds(dst, 1000, 0, 500));
    off = SIZE - 100;
    SHOW("sendfile past EOF", sendfile(dst, src, &off, 1000));
    off = SIZE;
    SHOW("sendfile at EOF", sendfile(dst, src, &off, 1000));
    off = 0;
    SHOW("sendfile whole file", sendfile(dst, src, &off, SIZE * 3));
    off = 0;
    SHOW("sendfile into a pipe", sendfile(p[1], src, &off, SIZE));
    ssize_t n = drain(p[0]);
    printf("pipe held %ld, same bytes: %s\n", (long)n, memcmp(buf, data, n) == 0 ? "yes" : "no");
    off = 0;
    SHOW("fill the pipe", sendfile(p[1], src, &off, SIZE));
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    SHOW("sendfile into a full non-blocking pipe", sendfile(p[1], src, &off, 10));
    drain(p[0]);
    SHOW("sendfile from a pipe", sendfile(dst, p[0], NULL, 10));
    off = 0;
    SHOW("sendfile from a pipe with offset", sendfile(dst, p[0], &off, 10));
    off = -1;
    SHOW("sendfile negative offset", sendfile(dst, src, &off, 10));
    SHOW("sendfile to a read-only fd", sendfile(src, src, NULL, 10));
    int wr = open(src_path, O_WRONLY), app = open(dst_path, O_WRONLY | O_APPEND);
    SHOW("sendfile from a write-only fd", sendfile(dst, wr, NULL, 10));
    SHOW("sendfile to O_APPEND", sendfile(app, src, NULL, 10));
    SHOW("sendfile bad offset pointer", sendfile(dst, src, (off_t *)8, 10));
    close(wr);
    close(app);
    close(p[0]);
    close(p[1]);
}

static void test_splice(int src, int dst)
{
    int p[2], q[2];
    MUST(pipe(p));
    MUST(pipe(q));
    SHOW("splice len 0 bad fds", splice(-1, NULL, -1, NULL, 0, 0));
    SHOW("splice bad flags", splice(src, NULL, p[1], NULL, 10, 0x10));
    SHOW("splice bad fd", splice(99, NULL, p[1], NULL, 10, 0));
    SHOW("splice file to file", splice(src, NULL, dst, NULL, 10, 0));
    loff_t off = 0;
    SHOW("splice offset on pipe in", splice(p[0], &off, dst, NULL, 10, 0));
    SHOW("splice offset on pipe out", splice(src, NULL, p[1], &off, 10, 0));
    SHOW("splice pipe to itself", splice(p[0], NULL, p[1], NULL, 10, 0));
    SHOW("splice wrong direction", splice(p[1], NULL, q[1], NULL, 10, 0));
    MUST(lseek(src, 0, SEEK_SET));
    off = 100;
    SHOW("splice file to pipe", splice(src, &off, p[1], NULL, SIZE, 0));
    printf("offset now %ld, file offset %ld\n", (long)off, (long)lseek(src, 0, SEEK_CUR));
    SHOW("splice empty pipe nonblock", splice(q[0], NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK));
    SHOW("splice into full pipe nonblock", splice(src, NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK));
    SHOW("splice pipe to pipe", splice(p[0], NULL, q[1], NULL, 1000, 0));
    SHOW("splice pipe to file at offset", splice(q[0], NULL, dst, &off, 5000, 0));
    printf("offset now %ld\n", (long)off);
    YESNO("dst holds data[100,1100) at 65536", holds(dst, 65536, 100, 1000));
    MUST(lseek(dst, 0, SEEK_SET));
    SHOW("splice pipe to file offset", splice(p[0], NULL, dst, NULL, 300, SPLICE_F_MORE | SPLICE_F_MOVE));
    printf("file offset %ld\n", (long)lseek(dst, 0, SEEK_CUR));
    YESNO("dst holds data[1100,1400)", holds(dst, 0, 1100, 300));
    int app = open(dst_path, O_WRONLY | O_APPEND);
    SHOW("splice to O_APPEND", splice(p[0], NULL, app, NULL, 10, 0));
    close(app);
    drain(p[0]);

    /* A blocking splice waits for a writer. */
    pid_t parent = getpid(), kid = fork();
    if (kid == 0) {
        rf_wait_sleeping(parent);
        _exit(write(p[1], "late", 4) == 4 ? 0 : 1);
    }
    SHOW("splice waits for data", splice(p[0], NULL, q[1], NULL, 100, 0));
    MUST(waitpid(kid, NULL, 0));
    SHOW("drained", drain(q[0]));

    /* tee copies without consuming. */
    MUST(write(p[1], "teeing data", 11));
    SHOW("tee bad flags", tee(p[0], q[1], 10, 0x10));
    SHOW("tee len 0", tee(p[0], q[1], 0, 0));
    SHOW("tee file", tee(src, q[1], 10, 0));
    SHOW("tee same pipe", tee(p[0], p[1], 10, 0));
    SHOW("tee pipe to pipe", tee(p[0], q[1], 4, 0));
    ssize_t n = read(q[0], buf, 100);
    printf("tee copy: %.*s\n", (int)n, buf);
    n = read(p[0], buf, 100);
    printf("source kept: %.*s\n", (int)n, buf);
    SHOW("tee empty nonblock", tee(p[0], q[1], 10, SPLICE_F_NONBLOCK));

    /* End of file and broken pipes. */
    close(p[1]);
    SHOW("splice from a pipe without writers", splice(p[0], NULL, q[1], NULL, 10, 0));
    close(q[0]);
    int r[2];
    MUST(pipe(r));
    MUST(write(r[1], "x", 1));
    SHOW("splice to a pipe without readers", splice(r[0], NULL, q[1], NULL, 1, 0));
    close(p[0]);
    close(q[1]);
    close(r[0]);
    close(r[1]);
}

static void test_copy_file_range(int src, int dst)
{
    loff_t in = 5, out = 0;
    MUST(ftruncate(dst, 0));
    SHOW("copy with offsets", copy_file_range(src, &in, dst, &out, 2000, 0));
    printf("offsets now %ld %ld, file offsets %ld %ld\n", (long)in, (long)out, (long)lseek(src, 0, SEEK_CUR),
           (long)lseek(dst, 0, SEEK_CUR));
    YESNO("dst holds data[5,2005)", holds(dst, 0, 5, 2000));
    MUST(lseek(src, SIZE - 50, SEEK_SET));
    MUST(lseek(dst, 10, SEEK_SET));
    SHOW("copy at file offsets, past EOF", copy_file_range(src, NULL, dst, NULL, 1000, 0));
    printf("file offsets %ld %ld\n", (long)lseek(src, 0, SEEK_CUR), (long)lseek(dst, 0, SEEK_CUR));
    YESNO("dst holds the last 50 at 10", holds(dst, 10, SIZE - 50, 50));
    SHOW("copy at EOF", copy_file_range(src, NULL, dst, NULL, 1000, 0));
    SHOW("copy flags", copy_file_range(src, NULL, dst, NULL, 10, 1));
    int rw = open(src_path, O_RDWR);
    in = 0, out = 10;
    SHOW("copy overlapping in one file", copy_file_range(src, &in, rw, &out, 100, 0));
    in = 0, out = SIZE;
    SHOW("copy within one file, apart", copy_file_range(src, &in, rw, &out, 100, 0));
    YESNO("src holds data[0,100) at SIZE", holds(src, SIZE, 0, 100));
    MUST(ftruncate(rw, SIZE));
    close(rw);
    in = -1;
    SHOW("copy negative offset", copy_file_range(src, &in, dst, NULL, 10, 0));
    in = 0x7fffffffffffff00L;
    SHOW("copy wrapping offset", copy_file_range(src, &in, dst, NULL, 0xffffffffffffff00UL, 0));
    SHOW("copy to a read-only fd", copy_file_range(src, NULL, src, NULL, 10, 0));
    int app = open(dst_path, O_WRONLY | O_APPEND), dir = open("/tmp", O_RDONLY), p[2];
    MUST(pipe(p));
    SHOW("copy to O_APPEND", copy_file_range(src, NULL, app, NULL, 10, 0));
    SHOW("copy from a directory", copy_file_range(dir, NULL, dst, NULL, 10, 0));
    SHOW("copy from a pipe", copy_file_range(p[0], NULL, dst, NULL, 10, 0));
    SHOW("copy bad fd", copy_file_range(99, NULL, dst, NULL, 10, 0));
    SHOW("copy bad offset pointer", copy_file_range(src, (loff_t *)8, dst, NULL, 10, 0));
    int proc = open("/proc/self/stat", O_RDONLY);
    SHOW("copy across file systems", copy_file_range(proc, NULL, dst, NULL, 10, 0));
    close(proc);
    close(app);
    close(dir);
    close(p[0]);
    close(p[1]);
}

static void test_seek_data(const char *self)
{
    int fd = tmpfile_rw(sparse_path, "sparse");
    memset(buf, 'x', 4096);
    MUST(pwrite(fd, buf, 4096, 0));
    MUST(pwrite(fd, "y", 1, 3 * 65536 + 100));
    off_t size = 3 * 65536 + 101;
    SHOW("data from 0", lseek(fd, 0, SEEK_DATA));
    SHOW("hole from 0", lseek(fd, 0, SEEK_HOLE));
    SHOW("hole from 100", lseek(fd, 100, SEEK_HOLE));
    SHOW("data from 4096", lseek(fd, 4096, SEEK_DATA));
    SHOW("hole from 5000", lseek(fd, 5000, SEEK_HOLE));
    SHOW("data from 196700", lseek(fd, 196700, SEEK_DATA));
    SHOW("hole from 196608", lseek(fd, 196608, SEEK_HOLE));
    SHOW("file offset", lseek(fd, 0, SEEK_CUR));
    SHOW("data at EOF", lseek(fd, size, SEEK_DATA));
    SHOW("hole at EOF", lseek(fd, size, SEEK_HOLE));
    SHOW("data from -1", lseek(fd, -1, SEEK_DATA));
    MUST(ftruncate(fd, 5 * 65536));
    SHOW("hole after the last data, extended", lseek(fd, 196608, SEEK_HOLE));
    SHOW("data after the last data, extended", lseek(fd, 200704, SEEK_DATA));
    close(fd);
    unlink(sparse_path);
    int p[2];
    MUST(pipe(p));
    SHOW("data on a pipe", lseek(p[0], 0, SEEK_DATA));
    close(p[0]);
    close(p[1]);
    int host = open(self, O_RDONLY);
    struct stat st;
    MUST(fstat(host, &st));
    SHOW("host file data from 0", lseek(host, 0, SEEK_DATA));
    YESNO("host file hole at its end", lseek(host, 0, SEEK_HOLE) == st.st_size);
    close(host);
}

static void test_pipe_size(void)
{
    int p[2];
    MUST(pipe(p));
    SHOW("default size", fcntl(p[0], F_GETPIPE_SZ));
    SHOW("set 1", fcntl(p[1], F_SETPIPE_SZ, 1));
    SHOW("set 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    SHOW("set 5000", fcntl(p[1], F_SETPIPE_SZ, 5000));
    SHOW("get", fcntl(p[0], F_GETPIPE_SZ));
    SHOW("set 2^31+1", fcntl(p[1], F_SETPIPE_SZ, (1UL << 31) + 1));
    memset(buf, 'z', 8192);
    MUST(write(p[1], buf, 8192));
    SHOW("shrink below content", fcntl(p[1], F_SETPIPE_SZ, 4096));
    SHOW("shrink to content", fcntl(p[1], F_SETPIPE_SZ, 8192));
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    SHOW("write into the full pipe", write(p[1], "a", 1));
    SHOW("read", read(p[0], buf, 100));
    SHOW("write PIPE_BUF without room", write(p[1], buf, 4096));
    int dir = open("/tmp", O_RDONLY);
    SHOW("on a directory", fcntl(dir, F_GETPIPE_SZ));
    close(dir);
    pid_t kid = fork();
    if (kid == 0) {
        MUST(setuid(65534));
        SHOW("unprivileged: set 2 MiB", fcntl(p[1], F_SETPIPE_SZ, 2 << 20));
        SHOW("unprivileged: set 1 MiB", fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
        _exit(0);
    }
    MUST(waitpid(kid, NULL, 0));
    close(p[0]);
    close(p[1]);
}

/* Writers each write PIPE_BUF-byte records of their own letter; every record read back must be
 * whole.  With `size` set, the pipe holds only that much. */
static void test_atomic(int size)
{
    enum { WRITERS = 4, RECORDS = 40 };
    int p[2];
    MUST(pipe(p));
    if (size)
        MUST(fcntl(p[1], F_SETPIPE_SZ, size));
    for (int w = 0; w < WRITERS; w++) {
        if (fork() == 0) {
            char rec[4096];
            memset(rec, 'a' + w, sizeof rec);
            for (int i = 0; i < RECORDS; i++)
                if (write(p[1], rec, sizeof rec) != sizeof rec)
                    _exit(1);
            _exit(0);
        }
    }
    close(p[1]);
    int records = 0, torn = 0, counts[WRITERS] = {0};
    char rec[4096];
    for (;;) {
        size_t got = 0;
        ssize_t n = 1;
        while (got < sizeof rec && (n = read(p[0], rec + got, sizeof rec - got)) > 0)
            got += n;
        if (got == 0)
            break;
        records++;
        int w = rec[0] - 'a';
        int whole = got == sizeof rec && w >= 0 && w < WRITERS;
        for (size_t i = 0; whole && i < got; i++)
            whole = rec[i] == rec[0];
        if (whole)
            counts[w]++;
        else
            torn++;
    }
    for (int w = 0; w < WRITERS; w++)
        wait(NULL);
    printf("pipe size %d: %d records, %d torn, per writer %d %d %d %d\n", size, records, torn, counts[0],
           counts[1], counts[2], counts[3]);
    close(p[0]);
}

int main(int argc, char **argv)
{
    (void)argc;
    rf_init();
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < SIZE; i++)
        data[i] = 1 + i % 251;
    int src = tmpfile_rw(src_path, "src"), dst = tmpfile_rw(dst_path, "dst");
    MUST(write(src, data, SIZE));
    close(src);
    src = open(src_path, O_RDONLY);
    test_sendfile(src, dst);
    test_splice(src, dst);
    test_copy_file_range(src, dst);
    test_seek_data(argv[0]);
    test_pipe_size();
    test_atomic(0);
    test_atomic(4096);
    unlink(src_path);
    unlink(dst_path);
    printf("done\n");
    return 0;
}
