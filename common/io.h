/* Writing a whole buffer to a descriptor. */
#ifndef CHAFF_IO_H
#define CHAFF_IO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* Writes all n bytes, through short writes and EINTR; false on an error
 * (errno says which). Async-signal-safe: chaff filter's fault handler
 * uses it to pass a message on. */
static inline bool chaff_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

#endif
