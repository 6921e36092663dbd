/*
 * LD_PRELOAD shim for tests: makes writes to files named data.mdb fail with
 * ENOSPC once CHAFF_TEST_ENOSPC_AFTER bytes have been written to them, the
 * way a full disk does. LMDB flushes pages with writev and writes its meta
 * page with pwrite.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long budget = -2; /* -2: not read yet, -1: unlimited */

static int is_data_file(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	size_t l = strlen(path);
	return l >= 8 && strcmp(path + l - 8, "data.mdb") == 0;
}

/* True when a write of n bytes to fd must fail. */
static int full(int fd, size_t n)
{
	if (budget == -2) {
		const char *e = getenv("CHAFF_TEST_ENOSPC_AFTER");
		budget = e ? atoll(e) : -1;
	}
	if (budget < 0 || !is_data_file(fd))
		return 0;
	if ((long long)n > budget) {
		errno = ENOSPC;
		return 1;
	}
	budget -= (long long)n;
	return 0;
}

__attribute__((visibility("default"))) ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	return full(fd, n) ? -1 : real(fd, buf, n, off);
}

__attribute__((visibility("default"))) ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

__attribute__((visibility("default"))) ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t);
	if (!real)
		real = (ssize_t(*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev");
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return full(fd, n) ? -1 : real(fd, iov, cnt, off);
}

__attribute__((visibility("default"))) ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

__attribute__((visibility("default"))) ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	return full(fd, n) ? -1 : real(fd, buf, n);
}

__attribute__((visibility("default"))) ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*real)(int, const struct iovec *, int);
	if (!real)
		real = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return full(fd, n) ? -1 : real(fd, iov, cnt);
}
