/* An LD_PRELOAD shim that makes the binary see a filesystem whose locks or symbolic links
 * fail, as Lustre without `flock`, NFSv3 without lockd, some SMB mounts and exFAT do.
 * Built by the tests (support/shim.rs) with `gcc -shared -fPIC -o fsshim.so fsshim.c -ldl`.
 *
 *   STRATA_SHIM_FLOCK   = enosys | enolck | eopnotsupp : flock() and fcntl() locks fail so
 *                         noop                         : they succeed without locking
 *   STRATA_SHIM_SYMLINK = eperm                        : symlink() and symlinkat() fail
 *   STRATA_SHIM_LINK    = eperm                        : link() and linkat() fail (exFAT and
 *                                                        vfat have no hard links either)
 *
 * Unset, every call goes to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

/* -1: pass through; 0: succeed without doing anything; > 0: fail with this errno. */
static int mode(const char *var) {
    const char *v = getenv(var);
    if (!v || !*v) return -1;
    if (!strcmp(v, "enosys")) return ENOSYS;
    if (!strcmp(v, "enolck")) return ENOLCK;
    if (!strcmp(v, "eopnotsupp")) return EOPNOTSUPP;
    if (!strcmp(v, "eperm")) return EPERM;
    if (!strcmp(v, "noop")) return 0;
    return -1;
}

int flock(int fd, int op) {
    int m = mode("STRATA_SHIM_FLOCK");
    if (m == 0) return 0;
    if (m > 0) { errno = m; return -1; }
    static int (*real)(int, int);
    if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
    return real(fd, op);
}

static int is_lock_cmd(int cmd) {
    switch (cmd) {
    case F_SETLK: case F_SETLKW: case F_GETLK:
#ifdef F_OFD_SETLK
    case F_OFD_SETLK: case F_OFD_SETLKW: case F_OFD_GETLK:
#endif
        return 1;
    }
    return 0;
}

static int shim_fcntl(const char *name, int fd, int cmd, void *arg) {
    if (is_lock_cmd(cmd)) {
        int m = mode("STRATA_SHIM_FLOCK");
        if (m == 0) {
            if (cmd == F_GETLK
#ifdef F_OFD_GETLK
                || cmd == F_OFD_GETLK
#endif
            ) ((struct flock *)arg)->l_type = F_UNLCK;
            return 0;
        }
        if (m > 0) { errno = m; return -1; }
    }
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
    return real(fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    return shim_fcntl("fcntl", fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    return shim_fcntl("fcntl64", fd, cmd, arg);
}

int symlink(const char *target, const char *path) {
    int m = mode("STRATA_SHIM_SYMLINK");
    if (m > 0) { errno = m; return -1; }
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "symlink");
    return real(target, path);
}

int symlinkat(const char *target, int dirfd, const char *path) {
    int m = mode("STRATA_SHIM_SYMLINK");
    if (m > 0) { errno = m; return -1; }
    static int (*real)(const char *, int, const char *);
    if (!real) real = (int (*)(const char *, int, const char *))dlsym(RTLD_NEXT, "symlinkat");
    return real(target, dirfd, path);
}

int link(const char *target, const char *path) {
    int m = mode("STRATA_SHIM_LINK");
    if (m > 0) { errno = m; return -1; }
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "link");
    return real(target, path);
}

int linkat(int olddirfd, const char *target, int newdirfd, const char *path, int flags) {
    int m = mode("STRATA_SHIM_LINK");
    if (m > 0) { errno = m; return -1; }
    static int (*real)(int, const char *, int, const char *, int);
    if (!real) real = (int (*)(int, const char *, int, const char *, int))dlsym(RTLD_NEXT, "linkat");
    return real(olddirfd, target, newdirfd, path, flags);
}
