/* Maildir delivery and the next-hop SMTP client (deliver.h). */
#include "serve/deliver.h"

#include "common/io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- Maildir ------------------------------------------------------------- */

bool maildir_make(const char *dir)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	char path[4096];
	for (size_t i = 0; i < 4; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s%s", dir, subs[i]) >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return false;
		}
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return false;
	}
	return true;
}

/* After a write to the next hop failed: true when the send timeout
 * (SO_SNDTIMEO) ended it, rather than the next hop closing. */
static bool send_timed_out(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Both buffers, in as few writes as the socket takes. */
static bool writev_all(int fd, struct iovec iov[2])
{
	int n = 2;
	while (n) {
		ssize_t w = writev(fd, iov + 2 - n, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		for (size_t left = (size_t)w; left && n;) {
			struct iovec *v = iov + 2 - n;
			size_t take = left < v->iov_len ? left : v->iov_len;
			v->iov_base = (char *)v->iov_base + take;
			v->iov_len -= take;
			left -= take;
			if (!v->iov_len)
				n--;
		}
	}
	return true;
}

/* A full disk or quota is 452 (RFC 3463's "mail system full"); any other
 * failure 451: both ask the sender to try again. */
static void storage_error(char reply[SERVE_REPLY_MAX], const char *what, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		snprintf(reply, SERVE_REPLY_MAX, "452 4.3.1 Insufficient system storage");
	else
		snprintf(reply, SERVE_REPLY_MAX, "451 4.3.0 Local error in %s: %s, try again later",
		         what, strerror(err));
}

bool maildir_deliver(const char *dir, const char *msg, size_t len, const char *id,
                     char reply[SERVE_REPLY_MAX])
{
	char tmp[4096], dst[4096], newdir[4096];
	/* a name cut short would be the same for every message (and the
	 * rename would put each over the one before) */
	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, id) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/new/%s", dir, id) >= (int)sizeof(dst)) {
		storage_error(reply, "the Maildir", ENAMETOOLONG);
		return false;
	}
	snprintf(newdir, sizeof(newdir), "%s/new", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		storage_error(reply, "the Maildir", errno);
		return false;
	}
	int err = 0;
	if (!chaff_write_all(fd, msg, len) || fsync(fd) != 0)
		err = errno ? errno : EIO;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, dst) != 0)
		err = errno;
	if (err) {
		unlink(tmp);
		storage_error(reply, "the Maildir", err);
		return false;
	}
	/* The rename is durable only once the directory is on disk too. */
	int dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		err = errno;
		if (dfd >= 0)
			close(dfd);
		unlink(dst);
		storage_error(reply, "the Maildir", err);
		return false;
	}
	close(dfd);
	snprintf(reply, SERVE_REPLY_MAX, "250 2.0.0 Ok: queued as %s", id);
	return true;
}

/* ---- the next hop ---------------------------------------------------------- */

void hop_init(struct hop *h, const char *host, const char *port, const char *helo,
              unsigned timeout)
{
	*h = (struct hop){ .host = host, .port = port, .helo = helo, .timeout = timeout, .fd = -1 };
}

void hop_close(struct hop *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->inlen = 0;
	free(h->out);
	h->out = NULL;
	h->outcap = 0;
}

static void disconnect(struct hop *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->inlen = 0;
}

/* Whether a reply line ("250-KEYWORD") offers an extension without
 * parameters. */
static bool offers(const char *line, const char *keyword)
{
	return strlen(line) >= 4 && strcasecmp(line + 4, keyword) == 0;
}

/* One reply, multi-line or not: its code, and the text of its last line
 * (without the code) in text. 0 when the connection failed or the whole
 * reply did not come within the timeout (h->timed_out says which). */
static int read_reply(struct hop *h, char *text, size_t textn)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	h->timed_out = false;
	for (;;) {
		char *nl = memchr(h->in, '\n', h->inlen);
		if (nl) {
			size_t n = (size_t)(nl - h->in) + 1;
			char line[sizeof(h->in)];
			memcpy(line, h->in, n);
			line[n - 1] = '\0';
			if (n >= 2 && line[n - 2] == '\r')
				line[n - 2] = '\0';
			memmove(h->in, h->in + n, h->inlen - n);
			h->inlen -= n;
			size_t ll = strlen(line);
			if (ll < 3 || line[0] < '1' || line[0] > '5')
				return 0;
			h->pipelining |= offers(line, "PIPELINING");
			h->chunking |= offers(line, "CHUNKING");
			h->eightbit |= offers(line, "8BITMIME");
			h->dsn |= offers(line, "DSN");
			h->smtputf8 |= offers(line, "SMTPUTF8");
			if (line[3] == '-')
				continue; /* more lines follow */
			const char *t = line[3] ? line + 4 : "";
			size_t tl = strlen(t) < textn ? strlen(t) : textn - 1;
			memcpy(text, t, tl);
			text[tl] = '\0';
			return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		}
		if (h->inlen == sizeof(h->in))
			return 0; /* a line longer than any reply */
		/* Each read waits at most the timeout (SO_RCVTIMEO), and the
		 * whole reply may not take more than one more: a next hop that
		 * drips a byte at a time cannot hold a worker for ever. */
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > (time_t)h->timeout) {
			h->timed_out = true;
			return 0;
		}
		ssize_t r = recv(h->fd, h->in + h->inlen, sizeof(h->in) - h->inlen, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			h->timed_out = true;
		if (r <= 0)
			return 0;
		h->inlen += (size_t)r;
	}
}

/* A command whose reply must be 250 for the connection to stay in step
 * (RSET after a refusal): anything else, and it is dropped. */
static void reset_or_drop(struct hop *h)
{
	char text[SERVE_REPLY_MAX];
	if (!chaff_write_all(h->fd, "RSET\r\n", 6) || read_reply(h, text, sizeof(text)) != 250)
		disconnect(h);
}

static int command(struct hop *h, const char *line, char *text, size_t textn)
{
	if (!chaff_write_all(h->fd, line, strlen(line)))
		return 0;
	return read_reply(h, text, textn);
}

static bool connect_hop(struct hop *h, char reply[SERVE_REPLY_MAX])
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(h->host, h->port, &hints, &ai);
	if (rc != 0) {
		snprintf(reply, SERVE_REPLY_MAX, "451 4.4.3 Next hop %s: %s, try again later",
		         h->host, gai_strerror(rc));
		return false;
	}
	int err = ECONNREFUSED;
	for (a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		socklen_t sl = sizeof(err);
		int pr = poll(&pfd, 1, (int)h->timeout * 1000);
		if (pr != 1) { /* a timeout is not the refusal an earlier address gave */
			err = pr == 0 ? ETIMEDOUT : errno;
			close(fd);
			continue;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0) {
			if (!err)
				err = errno;
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		int one = 1; /* the envelope and the message are separate writes */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct timeval tv = { .tv_sec = h->timeout };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		h->fd = fd;
		break;
	}
	freeaddrinfo(ai);
	if (h->fd < 0) {
		snprintf(reply, SERVE_REPLY_MAX, "451 4.4.1 Next hop unavailable: %s, try again later",
		         strerror(err));
		return false;
	}
	char text[SERVE_REPLY_MAX], line[300];
	h->pipelining = h->chunking = h->eightbit = h->dsn = h->smtputf8 = false;
	int code = read_reply(h, text, sizeof(text));
	if (code == 220) {
		snprintf(line, sizeof(line), "EHLO %s\r\n", h->helo);
		code = command(h, line, text, sizeof(text));
		if (code / 100 == 5) {
			snprintf(line, sizeof(line), "HELO %s\r\n", h->helo);
			code = command(h, line, text, sizeof(text));
		}
		if (code == 250)
			return true;
	}
	disconnect(h);
	snprintf(reply, SERVE_REPLY_MAX, "451 4.4.1 Next hop did not greet%s%.200s, try again later",
	         code ? ": " : "", code ? text : "");
	return false;
}

/* The next hop's reply, passed on with its code. A reply without an
 * enhanced status code gets the generic one for its class. */
static void relay_reply(char reply[SERVE_REPLY_MAX], int code, const char *text)
{
	bool has_esc = text[0] >= '2' && text[0] <= '5' && text[1] == '.';
	/* A 421 says that whoever gives it closes the connection: the next
	 * hop closes its own, chaff keeps the client's, so the client hears
	 * a plain temporary failure. */
	if (code == 421)
		code = 451;
	if (code == 0)
		snprintf(reply, SERVE_REPLY_MAX,
		         "451 4.4.2 Next hop connection lost or timed out, try again later");
	/* a relayed reply refuses: passed on, a 2xx (252 to RCPT) or a 3xx
	 * would tell the client its message was taken */
	else if (code < 400 || code > 599)
		snprintf(reply, SERVE_REPLY_MAX,
		         "451 4.4.2 Next hop answered %d unexpectedly, try again later", code);
	else if (has_esc)
		snprintf(reply, SERVE_REPLY_MAX, "%d %.*s next hop: %.400s", code,
		         (int)strcspn(text, " "), text,
		         text + strcspn(text, " ") + (text[strcspn(text, " ")] == ' '));
	else
		snprintf(reply, SERVE_REPLY_MAX, "%d %d.0.0 next hop: %.400s", code, code / 100, text);
}

/* The message in wire form: CRLF line ends; for DATA (dot) leading dots
 * doubled and the terminating dot line, for BDAT neither. A bare CR ends
 * a line too (and CR LF ends one line): RFC 5321 allows CR only before
 * LF, and a next hop that takes a bare CR for a line end must not find an
 * unstuffed lone dot behind one, the "<CR>.<CR>" way of smuggling a second
 * message past a filter. */
static bool wire_form(struct hop *h, const char *msg, size_t len, bool dot, size_t *outlen)
{
	size_t lines = 1;
	for (const char *p = msg; (p = memchr(p, '\n', (size_t)(msg + len - p))); p++)
		lines++;
	for (const char *p = msg; (p = memchr(p, '\r', (size_t)(msg + len - p))); p++)
		lines++;
	size_t need = len + 2 * lines + 8;
	if (need > h->outcap) {
		char *o = realloc(h->out, need);
		if (!o)
			return false;
		h->out = o;
		h->outcap = need;
	}
	char *o = h->out;
	const char *p = msg, *end = msg + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
		const char *cr = memchr(p, '\r', (size_t)(le - p));
		if (cr) {
			le = cr;
			next = cr + 1 < end && cr[1] == '\n' ? cr + 2 : cr + 1;
		}
		if (dot && *p == '.')
			*o++ = '.';
		memcpy(o, p, (size_t)(le - p));
		o += le - p;
		*o++ = '\r';
		*o++ = '\n';
		p = next;
	}
	if (dot) {
		memcpy(o, ".\r\n", 3);
		o += 3;
	}
	*outlen = (size_t)(o - h->out);
	return true;
}

/* MAIL, each RCPT and, when data_too, DATA, as wire lines; ends[i] is
 * where line i ends. NULL when out of memory. */
static char *envelope(const struct hop *h, const struct hop_envelope *v, bool data_too,
                      long long bdat, size_t *ends)
{
	bool dsn = h->dsn && v->dsn && v->dsn[0];
	size_t cap = strlen(v->from) + 80 + (dsn ? strlen(v->dsn) + 1 : 0), n = 0;
	for (unsigned i = 0; i < v->nrcpt; i++)
		cap += strlen(v->rcpt[i]) + 14 +
		       (h->dsn && v->rcpt_dsn && v->rcpt_dsn[i] ? strlen(v->rcpt_dsn[i]) + 1 : 0);
	char *e = malloc(cap + 8);
	if (!e)
		return NULL;
	n += (size_t)sprintf(e, "MAIL FROM:<%s>%s%s%s%s\r\n", v->from,
	                     v->body8 && h->eightbit ? " BODY=8BITMIME" : "",
	                     v->smtputf8 && h->smtputf8 ? " SMTPUTF8" : "", dsn ? " " : "",
	                     dsn ? v->dsn : "");
	ends[0] = n;
	for (unsigned i = 0; i < v->nrcpt; i++) {
		const char *d = h->dsn && v->rcpt_dsn ? v->rcpt_dsn[i] : NULL;
		n += (size_t)sprintf(e + n, "RCPT TO:<%s>%s%s\r\n", v->rcpt[i], d ? " " : "",
		                     d ? d : "");
		ends[i + 1] = n;
	}
	if (data_too && bdat >= 0)
		ends[v->nrcpt + 1] = n += (size_t)sprintf(e + n, "BDAT %lld LAST\r\n", bdat);
	else if (data_too)
		ends[v->nrcpt + 1] = n += (size_t)sprintf(e + n, "DATA\r\n");
	return e;
}

static bool all_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/*
 * Why this next hop cannot take the message as it is, or NULL. chaff
 * converts nothing, and a server that takes 8-bit or UTF-8 mail it
 * cannot pass on must refuse it rather than send it as it is (RFC 6152
 * section 3, RFC 6531 section 3.2): 8-bit text declared BODY=8BITMIME for
 * a next hop without 8BITMIME, UTF-8 addresses or header fields declared
 * SMTPUTF8 for one without SMTPUTF8. Undeclared 8-bit text goes on as it
 * came.
 */
static const char *unsendable(const struct hop *h, const struct hop_envelope *v, const char *msg,
                              size_t len)
{
	if (v->smtputf8 && !h->smtputf8) {
		bool ascii = all_ascii(v->from, strlen(v->from));
		for (unsigned i = 0; ascii && i < v->nrcpt; i++)
			ascii = all_ascii(v->rcpt[i], strlen(v->rcpt[i]));
		if (!ascii)
			return "553 5.6.7 Non-ASCII addresses not permitted: the next hop does not "
			       "offer SMTPUTF8";
		const char *body = memmem(msg, len, "\n\n", 2);
		if (!all_ascii(msg, body ? (size_t)(body - msg) : len))
			return "554 5.6.9 UTF-8 header fields cannot be passed on: the next hop "
			       "does not offer SMTPUTF8";
	}
	if (v->body8 && !h->eightbit && !all_ascii(msg, len))
		return "554 5.6.3 Conversion required but not supported: the next hop does not "
		       "offer 8BITMIME";
	return NULL;
}

/* One attempt. Returns false when the connection failed in a way that a
 * fresh connection may not (a reused one the next hop had dropped).
 *
 * A next hop that offers PIPELINING (RFC 2920) gets the envelope in one
 * write, and DATA with it when there is one recipient (or in LMTP, where
 * recipients fail one by one): two round trips per message instead of
 * four. With several SMTP recipients DATA waits for their replies, since
 * a refused one must stop the message before it is sent to the rest.
 * When the next hop also offers CHUNKING (RFC 3030), the message itself
 * follows in the same write as "BDAT n LAST": one round trip. */
static bool attempt(struct hop *h, const struct hop_envelope *v, const char *msg, size_t len,
                    const char *id, char (*reply)[SERVE_REPLY_MAX], unsigned nreply)
{
	unsigned nrcpt = v->nrcpt;
	char text[SERVE_REPLY_MAX], r[SERVE_REPLY_MAX];
	const char *cannot = unsendable(h, v, msg, len);
	if (cannot) { /* nothing sent: the connection stays as it was */
		for (unsigned i = 0; i < nreply; i++)
			snprintf(reply[i], SERVE_REPLY_MAX, "%s", cannot);
		return true;
	}
	bool data_too = h->pipelining && (nrcpt == 1 || nreply > 1);
	bool bdat = data_too && h->chunking;
	unsigned nlines = nrcpt + 1 + data_too;
	size_t wl = 0;
	size_t *ends = malloc((nrcpt + 2) * sizeof(*ends));
	char *env = ends && (!bdat || wire_form(h, msg, len, false, &wl))
	                    ? envelope(h, v, data_too, bdat ? (long long)wl : -1, ends)
	                    : NULL;
	if (!env) {
		free(ends);
		for (unsigned i = 0; i < nreply; i++)
			snprintf(reply[i], SERVE_REPLY_MAX, "451 4.3.0 Insufficient memory, try again later");
		return true;
	}
	bool ok = true, wrote = true;
	if (bdat) { /* the envelope and the chunk as one write */
		struct iovec iov[2] = { { env, ends[nlines - 1] }, { h->out, wl } };
		/* a write cut short still has its replies read: the next hop
		 * may have refused the chunk while it came (below); not one
		 * the send timeout ended, which waited long enough */
		wrote = writev_all(h->fd, iov);
		if (!wrote && send_timed_out())
			ok = false;
	} else if (h->pipelining) {
		ok = chaff_write_all(h->fd, env, ends[nlines - 1]);
	}
	int mail = 0, data = 0, worst = 0;
	unsigned accepted = 0;
	char mail_r[SERVE_REPLY_MAX] = "", first_refusal[SERVE_REPLY_MAX] = "";
	for (unsigned i = 0; ok && i < nlines; i++) {
		size_t start = i ? ends[i - 1] : 0;
		if (!h->pipelining && !chaff_write_all(h->fd, env + start, ends[i] - start)) {
			ok = false;
			break;
		}
		int code = read_reply(h, text, sizeof(text));
		if (code == 0 || (i == 0 && code == 421)) {
			ok = false;
			break;
		}
		if (i == 0) {
			mail = code;
			relay_reply(mail_r, code, text);
			if (mail != 250 && !h->pipelining)
				break; /* nothing else was sent */
		} else if (i <= nrcpt) {
			if (code == 250 || code == 251) {
				accepted++;
				if (nreply > 1)
					reply[i - 1][0] = '\0';
				continue;
			}
			relay_reply(r, code, text);
			if (nreply > 1)
				memcpy(reply[i - 1], r, sizeof(r));
			if (!first_refusal[0] || (code / 100 == 4 && worst / 100 != 4))
				memcpy(first_refusal, r, sizeof(r));
			if (code / 100 == 4 || worst == 0)
				worst = code;
		} else {
			data = code;
			relay_reply(r, code, text);
		}
	}
	free(env);
	free(ends);
	if (!ok) {
		bool timed_out = h->timed_out;
		disconnect(h);
		/* Not even MAIL was answered: on a kept connection the next hop
		 * had closed, a new one is worth a try. Not after a timeout: the
		 * next hop may be working on the message, and a retry could
		 * deliver it twice. */
		if (mail == 0 && !timed_out)
			return false;
		for (unsigned i = 0; i < nreply; i++)
			relay_reply(reply[i], 0, "");
		return true;
	}
	/* Refused: MAIL, or every recipient, or in SMTP any recipient. */
	const char *refusal = mail != 250 ? mail_r
	                      : accepted == 0 || (nreply == 1 && accepted < nrcpt) ? first_refusal
	                                                                           : NULL;
	if (refusal) {
		for (unsigned i = 0; i < nreply; i++)
			if (nreply == 1 || mail != 250 || !reply[i][0])
				memcpy(reply[i], refusal, SERVE_REPLY_MAX);
		/* a 354 after the refusal (a next hop that breaks RFC 2920)
		 * waits for a message it must not get, and a chunk cut short
		 * leaves the connection out of step: hang up instead */
		if (data == 354 || !wrote)
			disconnect(h);
		else
			reset_or_drop(h);
		return true;
	}
	if (!data_too)
		data = command(h, "DATA\r\n", text, sizeof(text));
	int code = data; /* with BDAT, already the final reply */
	bool sent = bdat; /* (with BDAT, the message went with the envelope) */
	if (code == 354 && !bdat) {
		if (!wire_form(h, msg, len, true, &wl)) {
			code = -1;
		} else if (!chaff_write_all(h->fd, h->out, wl)) {
			/* A next hop may refuse a message while it is still
			 * coming (one too large for it) and close. A refusal it
			 * gave before the connection broke is passed on as it is,
			 * so that a permanent one is not retried for days;
			 * anything else is a connection lost (451). */
			wrote = false;
			code = send_timed_out() ? 0 : read_reply(h, text, sizeof(text));
		} else {
			code = read_reply(h, text, sizeof(text));
		}
		sent = code > 0;
	}
	if (!wrote) { /* the message was cut short: only a refusal of it counts */
		sent = false;
		if (code < 400 || code > 599)
			code = 0;
	}
	/* a 250 to DATA itself (a broken next hop) took no message: as any
	 * other reply that is no refusal, relayed as a 451 */
	if (code == 250 && sent)
		snprintf(r, sizeof(r), "250 2.0.0 Ok: queued as %s", id);
	else if (code == -1)
		snprintf(r, sizeof(r), "451 4.3.0 Insufficient memory, try again later");
	else
		relay_reply(r, code, text);
	if (code <= 0 || !wrote || (!sent && code < 400))
		disconnect(h);
	else if (code != 250)
		reset_or_drop(h);
	for (unsigned i = 0; i < nreply; i++)
		if (nreply == 1 || !reply[i][0])
			memcpy(reply[i], r, sizeof(r));
	return true;
}

void hop_send(struct hop *h, const struct hop_envelope *env, const char *msg, size_t len,
              const char *id, char (*reply)[SERVE_REPLY_MAX], unsigned nreply)
{
	for (int tries = 0; tries < 2; tries++) {
		/* A kept connection with bytes waiting (a late reply, a 421 from
		 * an idle timeout) or closed by the next hop is out of step. */
		struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
		if (h->fd >= 0 && (h->inlen || poll(&pfd, 1, 0) != 0))
			disconnect(h);
		bool reused = h->fd >= 0;
		if (!reused && !connect_hop(h, reply[0])) {
			for (unsigned i = 1; i < nreply; i++)
				memcpy(reply[i], reply[0], SERVE_REPLY_MAX);
			return;
		}
		if (attempt(h, env, msg, len, id, reply, nreply))
			return;
		disconnect(h);
		if (!reused)
			break;
	}
	for (unsigned i = 0; i < nreply; i++)
		relay_reply(reply[i], 0, "");
}
