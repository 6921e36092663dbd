/* Writing a whole buffer to a descriptor. */
#ifndef CHAFF_IO_H
#define CHAFF_IO_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* Waits until fd can be read (events POLLIN) or written (POLLOUT); false
 * on an error. */
static inline bool chaff_wait_fd(int fd, short events)
{
	struct pollfd p = {fd, events, 0};
	int r;
	while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	return r > 0;
}

/* Writes all n bytes, through short writes and EINTR; with wait, a
 * descriptor left non-blocking is waited on when full instead of
 * failing. False on an error (errno says which). Async-signal-safe
 * (write and poll only): chaff filter's fault handler passes a message
 * on through it. */
static inline bool chaff_write_loop(int fd, const void *buf, size_t n, bool wait)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 &&
		    (errno == EINTR || (wait && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		                        chaff_wait_fd(fd, POLLOUT))))
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Writes all n bytes. A non-blocking descriptor's EAGAIN is an error
 * here: for a socket with a send timeout, the time is up. */
static inline bool chaff_write_all(int fd, const void *buf, size_t n)
{
	return chaff_write_loop(fd, buf, n, false);
}

/* As chaff_write_all, but a descriptor left non-blocking (stdout of a
 * filter, as its parent set it up) is waited on instead of failing. */
static inline bool chaff_write_all_wait(int fd, const void *buf, size_t n)
{
	return chaff_write_loop(fd, buf, n, true);
}

/* read() through EINTR, and on a non-blocking descriptor waiting for
 * data (or its end) instead of failing with EAGAIN. */
static inline ssize_t chaff_read_wait(int fd, void *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(fd, buf, n);
		if (r >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return r;
		if (errno != EINTR && !chaff_wait_fd(fd, POLLIN))
			return -1;
	}
}

#endif
