/*
 * Load generator and next-hop sink for benchmarking chaff serve.
 *
 *   smtp_load sink PORT
 *       a minimal SMTP server on 127.0.0.1:PORT that accepts everything
 *       (a thread per connection), for chaff serve's --next-hop
 *   smtp_load send HOST:PORT CONNS FILE...
 *       sends every FILE (a raw message) once, over CONNS concurrent
 *       connections (a thread each, messages dealt round-robin), with
 *       pipelined MAIL/RCPT/DATA; prints messages, seconds, messages/s,
 *       and how many were refused. A server that offers CHUNKING gets
 *       each message as one write (MAIL, RCPT, BDAT LAST and the bytes);
 *       "send-data" always uses DATA.
 *
 * Written in C so the generator is never slower than the server it
 * measures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct msg {
	char *wire; /* CRLF ends, dot-stuffed, terminated: for DATA */
	size_t len;
	char *raw;  /* MAIL, RCPT and "BDAT n LAST", then the message with
	             * CRLF ends: a whole transaction for one write */
	size_t rawlen;
};

static struct msg *msgs;
static size_t nmsgs;
static const char *host, *port;
static unsigned nconns;
static atomic_ulong ok_count, refused, failed;
static bool use_bdat = true;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct reader {
	int fd;
	char buf[4096];
	size_t len;
	bool chunking;
};

/* The code of the next (possibly multi-line) reply, 0 on failure; notes
 * a CHUNKING line. */
static int reply(struct reader *r)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->buf) + 1;
			int code = r->len >= 4 ? atoi(r->buf) : 0;
			bool more = r->len >= 4 && r->buf[3] == '-';
			if (n >= 12 && strncasecmp(r->buf + 4, "CHUNKING", 8) == 0)
				r->chunking = true;
			memmove(r->buf, r->buf + n, r->len - n);
			r->len -= n;
			if (!more)
				return code;
			continue;
		}
		if (r->len == sizeof(r->buf))
			return 0;
		ssize_t k = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
		if (k <= 0)
			return 0;
		r->len += (size_t)k;
	}
}

static int dial(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static void *sender(void *arg)
{
	size_t k = (size_t)arg;
	struct reader r = { .fd = dial() };
	if (r.fd < 0 || reply(&r) != 220 || send_all(r.fd, "EHLO load\r\n", 11) || reply(&r) != 250) {
		fprintf(stderr, "smtp_load: connection %zu failed\n", k);
		atomic_fetch_add(&failed, 1);
		return NULL;
	}
	static const char env[] = "MAIL FROM:<load@bench.test>\r\nRCPT TO:<user@bench.test>\r\nDATA\r\n";
	for (size_t i = k; i < nmsgs; i += nconns) {
		if (use_bdat && r.chunking) {
			/* the whole transaction in one write, as Postfix sends it to
			 * a server that offers PIPELINING and CHUNKING */
			if (send_all(r.fd, msgs[i].raw, msgs[i].rawlen))
				break;
			int a = reply(&r), b = reply(&r), d = reply(&r);
			if (a != 250 || b != 250 || d == 0) {
				atomic_fetch_add(&failed, 1);
				break;
			}
			if (d == 250)
				atomic_fetch_add(&ok_count, 1);
			else
				atomic_fetch_add(&refused, 1);
			continue;
		}
		if (send_all(r.fd, env, sizeof(env) - 1))
			break;
		int a = reply(&r), b = reply(&r), c = reply(&r);
		if (a != 250 || b != 250 || c != 354) {
			atomic_fetch_add(&failed, 1);
			break;
		}
		if (send_all(r.fd, msgs[i].wire, msgs[i].len))
			break;
		int d = reply(&r);
		if (d == 250)
			atomic_fetch_add(&ok_count, 1);
		else if (d >= 400)
			atomic_fetch_add(&refused, 1);
		else {
			atomic_fetch_add(&failed, 1);
			break;
		}
	}
	send_all(r.fd, "QUIT\r\n", 6);
	reply(&r);
	close(r.fd);
	return NULL;
}

static bool load(const char *path, struct msg *m)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	struct stat st;
	fstat(fileno(f), &st);
	char *raw = malloc((size_t)st.st_size + 1);
	size_t n = raw ? fread(raw, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!raw)
		return false;
	m->wire = malloc(2 * n + 8);
	m->raw = malloc(2 * n + 200);
	char *o = m->wire, *w = m->raw + 160; /* the envelope goes in front */
	char *body = w;
	bool bol = true;
	for (size_t i = 0; i < n; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			*w++ = '\r';
		*w++ = raw[i];
	}
	if (n && raw[n - 1] != '\n') {
		*w++ = '\r';
		*w++ = '\n';
	}
	size_t blen = (size_t)(w - body);
	char head[160];
	int hn = snprintf(head, sizeof(head),
	                  "MAIL FROM:<load@bench.test>\r\nRCPT TO:<user@bench.test>\r\n"
	                  "BDAT %zu LAST\r\n", blen);
	memmove(m->raw + hn, body, blen);
	memcpy(m->raw, head, (size_t)hn);
	m->rawlen = (size_t)hn + blen;
	for (size_t i = 0; i < n; i++) {
		if (bol && raw[i] == '.')
			*o++ = '.';
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			*o++ = '\r';
		*o++ = raw[i];
		bol = raw[i] == '\n';
	}
	if (!bol) {
		*o++ = '\r';
		*o++ = '\n';
	}
	memcpy(o, ".\r\n", 3);
	m->len = (size_t)(o + 3 - m->wire);
	free(raw);
	return true;
}

static int cmd_send(int argc, char **argv)
{
	static char hp[256];
	snprintf(hp, sizeof(hp), "%s", argv[2]);
	char *colon = strrchr(hp, ':');
	if (!colon)
		return 2;
	*colon = '\0';
	host = hp;
	port = colon + 1;
	nconns = (unsigned)atoi(argv[3]);
	nmsgs = (size_t)(argc - 4);
	msgs = calloc(nmsgs, sizeof(*msgs));
	for (size_t i = 0; i < nmsgs; i++)
		if (!load(argv[4 + i], &msgs[i])) {
			fprintf(stderr, "smtp_load: cannot read %s\n", argv[4 + i]);
			return 1;
		}
	pthread_t *t = calloc(nconns, sizeof(*t));
	double t0 = now();
	for (size_t i = 0; i < nconns; i++)
		pthread_create(&t[i], NULL, sender, (void *)i);
	for (size_t i = 0; i < nconns; i++)
		pthread_join(t[i], NULL);
	double dt = now() - t0;
	printf("messages %zu accepted %lu refused %lu failed %lu seconds %.3f msgs/s %.1f\n", nmsgs,
	       atomic_load(&ok_count), atomic_load(&refused), atomic_load(&failed), dt,
	       (double)nmsgs / dt);
	return atomic_load(&failed) ? 1 : 0;
}

/* ---- the sink ---- */

static void *sink_conn(void *arg)
{
	struct reader r = { .fd = (int)(intptr_t)arg };
	char line[4096], outbuf[4096];
	size_t ll = 0, ol = 0;
	bool data = false, last = false;
	unsigned long long chunk = 0; /* BDAT bytes still to skip */
	send_all(r.fd, "220 sink\r\n", 10);
	for (;;) {
		ssize_t k = recv(r.fd, r.buf, sizeof(r.buf), 0);
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++) {
			if (chunk) { /* BDAT data: counted, not parsed */
				size_t take = (size_t)(k - i) < chunk ? (size_t)(k - i) : (size_t)chunk;
				chunk -= take;
				i += (ssize_t)take - 1;
				if (!chunk && ol + 16 < sizeof(outbuf)) {
					memcpy(outbuf + ol, "250 2.0.0 Ok\r\n", 14);
					ol += 14;
				}
				continue;
			}
			char c = r.buf[i];
			if (ll < sizeof(line) - 1)
				line[ll++] = c;
			if (c != '\n')
				continue;
			line[ll] = '\0';
			const char *out = NULL;
			if (data) {
				if (strcmp(line, ".\r\n") == 0 || strcmp(line, ".\n") == 0) {
					data = false;
					out = "250 2.0.0 Ok\r\n";
				}
			} else if (strncasecmp(line, "EHLO", 4) == 0) {
				out = "250-sink\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
			} else if (strncasecmp(line, "BDAT ", 5) == 0) {
				chunk = strtoull(line + 5, NULL, 10);
				last = strstr(line, "LAST") != NULL;
				(void)last;
				if (!chunk)
					out = "250 2.0.0 Ok\r\n";
			} else if (strncasecmp(line, "DATA", 4) == 0) {
				data = true;
				out = "354 go\r\n";
			} else if (strncasecmp(line, "QUIT", 4) == 0) {
				send_all(r.fd, outbuf, ol);
				send_all(r.fd, "221 bye\r\n", 9);
				close(r.fd);
				return NULL;
			} else {
				out = "250 2.0.0 Ok\r\n";
			}
			if (out && ol + strlen(out) < sizeof(outbuf)) {
				memcpy(outbuf + ol, out, strlen(out));
				ol += strlen(out);
			}
			ll = 0;
		}
		/* the replies to pipelined commands go out together */
		if (ol && send_all(r.fd, outbuf, ol))
			break;
		ol = 0;
	}
	close(r.fd);
	return NULL;
}

static int cmd_sink(const char *p)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(p)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
		perror("smtp_load sink");
		return 1;
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		int one = 1; /* replies go out as soon as they are written */
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t t;
		pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)c);
		pthread_detach(t);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "sink") == 0)
		return cmd_sink(argv[2]);
	if (argc >= 5 && strcmp(argv[1], "send") == 0)
		return cmd_send(argc, argv);
	if (argc >= 6 && strcmp(argv[1], "send-data") == 0) { /* DATA even if BDAT is offered */
		use_bdat = false;
		argv[1] = "send";
		return cmd_send(argc, argv);
	}
	fprintf(stderr, "usage: smtp_load sink PORT | smtp_load send HOST:PORT CONNS FILE...\n");
	return 2;
}
