/* Extended attributes on a file: set, get (size query, too small, exact), list, remove.
 * Leaves user.keep=kept on the file for the caller to check on the host. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static void show(const char *what, long r)
{
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/data/file";
    char buf[64], small[2];
    show("set", setxattr(path, "user.test", "hello", 5, 0));
    show("create again", setxattr(path, "user.test", "x", 1, XATTR_CREATE));
    show("replace missing", setxattr(path, "user.none", "x", 1, XATTR_REPLACE));
    show("size query", getxattr(path, "user.test", NULL, 0));
    show("too small", getxattr(path, "user.test", small, sizeof small));
    ssize_t n = getxattr(path, "user.test", buf, sizeof buf);
    printf("get: %zd %.*s\n", n, (int)(n > 0 ? n : 0), buf);
    show("keep", setxattr(path, "user.keep", "kept", 4, 0));
    n = listxattr(path, buf, sizeof buf);
    int test = 0, keep = 0;
    for (char *p = buf; n > 0 && p < buf + n; p += strlen(p) + 1) {
        test |= !strcmp(p, "user.test");
        keep |= !strcmp(p, "user.keep");
    }
    printf("list: test %d keep %d\n", test, keep);
    show("remove", removexattr(path, "user.test"));
    show("get removed", getxattr(path, "user.test", buf, sizeof buf));
    show("unknown namespace", setxattr(path, "bogus.name", "x", 1, 0));
    printf("done\n");
    return 0;
}
