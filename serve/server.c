/*
 * The event loop of chaff serve (server.h).
 *
 * Threads: the loop thread owns every socket and every session; workers
 * only see a job, whose session is left alone by the loop until the job
 * comes back through the done list (an eventfd wakes the loop). Signals
 * arrive through a signalfd, so shutdown is just another event.
 */
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

/* Bytes read per read(2); a connection's input never holds much more. */
#define READ_CHUNK 65536
/* A client that does not read its replies stops being read from here. */
#define OUT_HIGH_WATER (1u << 20)

/* Sessions of clients outside --allow, waiting for their QUIT: at most
 * this many at once, each for at most this many seconds idle. */
enum { REFUSED_MAX = 16, REFUSED_TIMEOUT = 10 };

struct conn {
	int fd;
	char ip[INET6_ADDRSTRLEN];
	struct smtp_session s;
	struct buf in;
	double deadline;  /* 0: none (a worker has the message) */
	bool busy;        /* a worker has the message */
	bool gone;        /* the socket is closed; freed when the job returns */
	bool quit_after;  /* shutting down: close after the current message */
	bool refused;     /* outside --allow: greeted with 554, waiting for QUIT */
	uint32_t events;  /* what epoll watches now */
	struct serve_job job;
	struct conn *prev, *next;     /* all connections */
	struct conn *done_next;       /* the done list, then the graveyard */
};

struct serve_server {
	const struct serve_config *cfg;
	int ep, evfd, sigfd;
	int *lfd;
	char (*laddr)[INET6_ADDRSTRLEN + 8];
	size_t nl;
	struct conn *conns;
	unsigned nconn;
	unsigned nrefused; /* of them, refused ones (not counted in the limits) */
	bool stopping;
	/* Connections closed while a batch of events is handled are freed
	 * after it: a later event of the batch may still name them. */
	struct conn *graveyard;
	/* Out of file descriptors: the listeners rest until one is freed or a
	 * second has passed, instead of waking the loop for ever. */
	bool accept_paused;
	double pause_until;
	/* the worker pool */
	pthread_t *workers;
	unsigned nworkers;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct conn **queue; /* ring of jobs waiting for a worker */
	size_t qcap, qhead, qlen;
	struct conn *done;   /* jobs handled, for the loop */
	unsigned in_flight;  /* jobs queued or being handled */
	bool quit, failed;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool serve_parse_net(const char *s, struct serve_net *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(out, 0, sizeof(*out));
	unsigned max;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	out->bits = max;
	if (slash) {
		char *end;
		unsigned long b = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || b > max)
			return false;
		out->bits = (unsigned)b;
	}
	return true;
}

bool serve_split_hostport(const char *s, char *buf, size_t bufn, const char **host,
                          const char **port)
{
	size_t n = strlen(s);
	if (n == 0 || n >= bufn)
		return false;
	memcpy(buf, s, n + 1);
	char *colon;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close || close[1] != ':')
			return false;
		*close = '\0';
		*host = buf + 1;
		colon = close + 1;
	} else {
		colon = strrchr(buf, ':');
		if (!colon || strchr(buf, ':') != colon)
			return false; /* IPv6 needs brackets */
		*colon = '\0';
		*host = buf;
	}
	*port = colon + 1;
	if (!**host || !**port || strspn(*port, "0123456789") != strlen(*port))
		return false;
	return true;
}

/* An IPv4 client on an IPv6 socket arrives as ::ffff:a.b.c.d: compare it
 * as the IPv4 address it is. */
static bool allowed(const struct serve_config *cfg, const struct sockaddr_storage *sa)
{
	unsigned char a[16];
	int family = sa->ss_family;
	if (family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		const struct in6_addr *v6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(v6)) {
			family = AF_INET;
			memcpy(a, v6->s6_addr + 12, 4);
		} else {
			memcpy(a, v6->s6_addr, 16);
		}
	}
	for (size_t i = 0; i < cfg->nallow; i++) {
		const struct serve_net *n = &cfg->allow[i];
		if (n->family != family)
			continue;
		unsigned full = n->bits / 8, rest = n->bits % 8;
		if (memcmp(a, n->addr, full) != 0)
			continue;
		if (rest && ((a[full] ^ n->addr[full]) & (0xff << (8 - rest)) & 0xff))
			continue;
		return true;
	}
	return false;
}

static void ip_text(const struct sockaddr_storage *sa, char *out, size_t n)
{
	if (sa->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
		return;
	}
	const struct in6_addr *v6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(v6))
		inet_ntop(AF_INET, v6->s6_addr + 12, out, (socklen_t)n);
	else
		inet_ntop(AF_INET6, v6, out, (socklen_t)n);
}

/* ---- the worker pool ---------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct serve_server *srv = arg;
	const struct serve_config *cfg = srv->cfg;
	void *state = cfg->worker_new(cfg->user);
	pthread_mutex_lock(&srv->mu);
	if (!state) {
		srv->failed = true;
		pthread_mutex_unlock(&srv->mu);
		uint64_t one = 1;
		if (write(srv->evfd, &one, sizeof(one)) < 0) {
			/* the loop notices srv->failed at its next wake-up anyway */
		}
		return NULL;
	}
	for (;;) {
		if (!srv->qlen && cfg->idle) { /* about to wait: a moment to tidy up */
			pthread_mutex_unlock(&srv->mu);
			cfg->idle(state);
			pthread_mutex_lock(&srv->mu);
		}
		while (!srv->qlen && !srv->quit)
			pthread_cond_wait(&srv->cv, &srv->mu);
		if (!srv->qlen)
			break;
		struct conn *c = srv->queue[srv->qhead];
		srv->qhead = (srv->qhead + 1) % srv->qcap;
		srv->qlen--;
		pthread_mutex_unlock(&srv->mu);
		cfg->handle(state, &c->job);
		pthread_mutex_lock(&srv->mu);
		/* Nothing else waiting: tidy up (write the log line) before the
		 * client hears the reply, so that whoever reads the log after a
		 * 250 finds the line there. */
		if (!srv->qlen && cfg->idle) {
			pthread_mutex_unlock(&srv->mu);
			cfg->idle(state);
			pthread_mutex_lock(&srv->mu);
		}
		c->done_next = srv->done;
		srv->done = c;
		uint64_t one = 1;
		if (write(srv->evfd, &one, sizeof(one)) < 0) {
			/* an eventfd write fails only on overflow: already readable */
		}
	}
	pthread_mutex_unlock(&srv->mu);
	cfg->worker_free(state);
	return NULL;
}

/* Queues c's message for a worker. False when out of memory. */
static bool submit(struct serve_server *srv, struct conn *c)
{
	unsigned n = srv->cfg->smtp.lmtp ? c->s.nrcpt : 1;
	c->job.reply = calloc(n ? n : 1, sizeof(*c->job.reply));
	if (!c->job.reply)
		return false;
	c->job.nreply = n;
	c->job.client = c->ip;
	c->job.s = &c->s;
	pthread_mutex_lock(&srv->mu);
	if (srv->qlen == srv->qcap) {
		size_t cap = srv->qcap ? srv->qcap * 2 : 64;
		struct conn **q = malloc(cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&srv->mu);
			free(c->job.reply);
			c->job.reply = NULL;
			return false;
		}
		for (size_t i = 0; i < srv->qlen; i++)
			q[i] = srv->queue[(srv->qhead + i) % srv->qcap];
		free(srv->queue);
		srv->queue = q;
		srv->qcap = cap;
		srv->qhead = 0;
	}
	srv->queue[(srv->qhead + srv->qlen) % srv->qcap] = c;
	srv->qlen++;
	srv->in_flight++;
	pthread_cond_signal(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	return true;
}

/* ---- connections ---------------------------------------------------------- */

static void watch(struct serve_server *srv, struct conn *c, uint32_t events)
{
	if (c->events == events)
		return;
	struct epoll_event ev = { .events = events, .data.ptr = c };
	epoll_ctl(srv->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = events;
}

/* Takes c out of the list of connections; its memory goes to the
 * graveyard, freed after the current batch of events. */
static void conn_free(struct serve_server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconn--;
	srv->nrefused -= c->refused;
	c->gone = true;
	c->done_next = srv->graveyard;
	srv->graveyard = c;
}

static void bury(struct serve_server *srv)
{
	while (srv->graveyard) {
		struct conn *c = srv->graveyard;
		srv->graveyard = c->done_next;
		smtp_free(&c->s);
		buf_free(&c->in);
		free(c->job.reply);
		free(c);
	}
}

/* Closes the socket; the memory waits for a worker that still has it. */
static void conn_close(struct serve_server *srv, struct conn *c)
{
	if (!c->gone) {
		epoll_ctl(srv->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->gone = true;
	}
	if (!c->busy)
		conn_free(srv, c);
}

/* Writes what it can; false when the connection broke. */
static bool flush(struct conn *c)
{
	struct buf *o = &c->s.out;
	size_t off = 0;
	while (off < o->len) {
		ssize_t w = send(c->fd, o->p + off, o->len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	buf_consume(o, off);
	return true;
}

static void set_deadline(struct serve_server *srv, struct conn *c)
{
	bool data = c->s.state == ST_DATA || c->s.state == ST_BDAT;
	unsigned t = data ? srv->cfg->data_timeout : srv->cfg->timeout;
	if (c->refused && t > REFUSED_TIMEOUT)
		t = REFUSED_TIMEOUT;
	c->deadline = now() + t;
}

/* After input or a finished job: runs the protocol over what is buffered,
 * then sends, and sets what to wait for next. */
static void advance(struct serve_server *srv, struct conn *c)
{
	enum smtp_event ev = SMTP_NONE;
	while (!c->busy && c->s.state != ST_CLOSED) {
		size_t used = smtp_feed(&c->s, c->in.p, c->in.len, &ev);
		buf_consume(&c->in, used);
		if (ev != SMTP_MESSAGE)
			break;
		if (!submit(srv, c)) {
			smtp_finish_all(&c->s, "451 4.3.0 Insufficient memory, try again later");
			continue;
		}
		c->busy = true;
		c->deadline = 0;
	}
	/* shutting down: an idle client is told so; one whose BDAT chunks
	 * have begun is a message in flight, and sends the rest (within
	 * --timeout) */
	if (!c->busy && c->quit_after && c->s.state == ST_CMD && !(c->s.in_mail && c->s.chunking)) {
		smtp_reply(&c->s, "421 4.3.2 Service shutting down, closing connection");
		c->s.state = ST_CLOSED;
	}
	if (!flush(c)) {
		conn_close(srv, c);
		return;
	}
	if (c->s.state == ST_CLOSED) {
		if (c->s.out.len == 0) {
			shutdown(c->fd, SHUT_WR);
			conn_close(srv, c);
		} else {
			/* close once the last reply is out, or when the client
			 * has not taken it within the timeout */
			watch(srv, c, EPOLLOUT);
			if (!c->busy)
				c->deadline = now() + srv->cfg->timeout;
		}
		return;
	}
	uint32_t want = 0;
	/* A busy connection stays watched for input: its client nearly always
	 * waits for the reply, so no event comes, and two epoll_ctl calls per
	 * message are saved. One that pipelines on is unwatched when it does
	 * (on_readable). */
	if (c->s.out.len < OUT_HIGH_WATER && (!c->busy || (c->events & EPOLLIN)))
		want |= EPOLLIN;
	if (c->s.out.len)
		want |= EPOLLOUT;
	watch(srv, c, want);
	if (!c->busy)
		set_deadline(srv, c);
}

static void on_readable(struct serve_server *srv, struct conn *c)
{
	if (c->busy) { /* input while a worker has the message: later */
		watch(srv, c, c->events & ~(uint32_t)EPOLLIN);
		return;
	}
	if (!buf_reserve(&c->in, READ_CHUNK)) {
		conn_close(srv, c);
		return;
	}
	ssize_t r = read(c->fd, c->in.p + c->in.len, READ_CHUNK);
	if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) { /* the client went away; a message it was sending is lost to it */
		conn_close(srv, c);
		return;
	}
	c->in.len += (size_t)r;
	advance(srv, c);
}

/* Out of file descriptors: the pending connection would make every wake-up
 * fail again, so the listeners leave the epoll set for a while. */
static void pause_accepting(struct serve_server *srv)
{
	if (srv->accept_paused)
		return;
	fprintf(stderr, "chaff serve: out of file descriptors (%s); not accepting for a moment\n",
	        strerror(errno));
	for (size_t i = 0; i < srv->nl; i++)
		if (srv->lfd[i] >= 0)
			epoll_ctl(srv->ep, EPOLL_CTL_DEL, srv->lfd[i], NULL);
	srv->accept_paused = true;
	srv->pause_until = now() + 1;
}

static void resume_accepting(struct serve_server *srv)
{
	for (size_t i = 0; i < srv->nl; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->lfd[i] };
		if (srv->lfd[i] >= 0)
			epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->lfd[i], &ev);
	}
	srv->accept_paused = false;
}

/* A refusal on a connection that never gets a session. */
static void refuse(int fd, const char *line)
{
	if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the client is gone already */
	}
	close(fd);
}

/* Allowed clients connected from ip now. */
static unsigned same_ip(const struct serve_server *srv, const char *ip)
{
	unsigned n = 0;
	for (const struct conn *o = srv->conns; o; o = o->next)
		n += !o->gone && !o->refused && strcmp(o->ip, ip) == 0;
	return n;
}

static void on_accept(struct serve_server *srv, int lfd)
{
	const struct serve_config *cfg = srv->cfg;
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause_accepting(srv);
			return;
		}
		char ip[INET6_ADDRSTRLEN];
		ip_text(&sa, ip, sizeof(ip));
		/* A client outside --allow is greeted with 554 and then heard
		 * until it quits (RFC 5321 section 3.1). Such sessions have
		 * their own small cap and a short timeout, and take no room
		 * from allowed clients: past the cap, one is told 554 and the
		 * connection closed at once. */
		bool denied = !allowed(cfg, &sa);
		char line[300];
		if (denied) {
			fprintf(stderr, "chaff serve: client=%s refused: not in --allow\n", ip);
			if (srv->nrefused >= REFUSED_MAX) {
				snprintf(line, sizeof(line), "554 5.7.1 %s Access denied\r\n",
				         cfg->smtp.hostname);
				refuse(fd, line);
				continue;
			}
		} else if (srv->nconn - srv->nrefused >= cfg->max_conn ||
		           same_ip(srv, ip) >= cfg->max_conn_per_ip) {
			snprintf(line, sizeof(line), "421 4.7.0 %s Too many connections, try again later\r\n",
			         cfg->smtp.hostname);
			fprintf(stderr, "chaff serve: client=%s refused: too many connections\n", ip);
			refuse(fd, line);
			continue;
		}
		/* Replies are already gathered per read: Nagle would only add
		 * a delayed-ACK wait to pipelined exchanges. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			refuse(fd, "421 4.3.0 Insufficient memory\r\n");
			continue;
		}
		c->fd = fd;
		memcpy(c->ip, ip, sizeof(ip));
		smtp_init(&c->s, &cfg->smtp);
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconn++;
		c->refused = denied;
		srv->nrefused += denied;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		c->events = EPOLLIN;
		if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			c->gone = true;
			close(fd);
			conn_free(srv, c);
			continue;
		}
		if (denied)
			smtp_refuse(&c->s);
		else
			smtp_greet(&c->s);
		advance(srv, c);
	}
}

/* Jobs that came back from the workers: their replies go out. */
static void on_done(struct serve_server *srv)
{
	uint64_t n;
	if (read(srv->evfd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another wake-up already took the count */
	}
	pthread_mutex_lock(&srv->mu);
	struct conn *list = srv->done;
	srv->done = NULL;
	pthread_mutex_unlock(&srv->mu);
	while (list) {
		struct conn *c = list;
		list = c->done_next;
		pthread_mutex_lock(&srv->mu);
		srv->in_flight--;
		pthread_mutex_unlock(&srv->mu);
		const char *r[c->job.nreply ? c->job.nreply : 1];
		for (unsigned i = 0; i < c->job.nreply; i++)
			r[i] = c->job.reply[i];
		smtp_finish(&c->s, r);
		free(c->job.reply);
		c->job.reply = NULL;
		c->busy = false;
		if (c->gone)
			conn_free(srv, c);
		else
			advance(srv, c);
	}
}

static void on_timeouts(struct serve_server *srv)
{
	double t = now();
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if (c->gone || c->busy || !c->deadline || t < c->deadline)
			continue;
		if (c->s.state == ST_CLOSED) { /* its last reply was never taken */
			conn_close(srv, c);
			continue;
		}
		char line[300];
		snprintf(line, sizeof(line), "421 4.4.2 %s Error: timeout exceeded",
		         srv->cfg->smtp.hostname);
		smtp_reply(&c->s, line);
		flush(c);
		conn_close(srv, c);
	}
}

/* SIGTERM or SIGINT: no new connections; idle sessions end now, the rest
 * after their current message. */
static void begin_stop(struct serve_server *srv)
{
	srv->stopping = true;
	for (size_t i = 0; i < srv->nl; i++) {
		epoll_ctl(srv->ep, EPOLL_CTL_DEL, srv->lfd[i], NULL);
		close(srv->lfd[i]);
		srv->lfd[i] = -1;
	}
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		c->quit_after = true;
		if (!c->gone && !c->busy)
			advance(srv, c);
	}
}

/* ---- set-up ------------------------------------------------------------------ */

static int listen_on(const char *spec, char *text, size_t textn)
{
	char buf[300];
	const char *host, *port;
	if (!serve_split_hostport(spec, buf, sizeof(buf), &host, &port)) {
		fprintf(stderr, "chaff serve: --listen %s: expected ADDR:PORT or [ADDR]:PORT\n", spec);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "chaff serve: --listen %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
		fprintf(stderr, "chaff serve: cannot listen on %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned p = 0;
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
		ip_text(&sa, ip, sizeof(ip));
		p = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
		                                  : ((struct sockaddr_in6 *)&sa)->sin6_port);
	}
	snprintf(text, textn, sa.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, p);
	return fd;
}

serve_server *serve_open(const struct serve_config *cfg)
{
	/* Every connection is a descriptor: take all the system allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct serve_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->cfg = cfg;
	srv->ep = srv->evfd = srv->sigfd = -1;
	srv->lfd = calloc(cfg->nlisten, sizeof(*srv->lfd));
	srv->laddr = calloc(cfg->nlisten, sizeof(*srv->laddr));
	if (!srv->lfd || !srv->laddr) {
		serve_close(srv);
		return NULL;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		srv->lfd[i] = listen_on(cfg->listen[i], srv->laddr[i], sizeof(srv->laddr[i]));
		srv->nl = i + 1;
		if (srv->lfd[i] < 0) {
			serve_close(srv);
			return NULL;
		}
	}
	return srv;
}

const char *serve_address(const serve_server *srv, size_t i)
{
	return srv->laddr[i];
}

static bool start(struct serve_server *srv)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the workers start, so they inherit the mask and
	 * the signals reach only the signalfd. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* nothing to reload (training shows by itself), and a hangup of the
	 * terminal it was started from must not kill messages in flight */
	signal(SIGHUP, SIG_IGN);
	srv->ep = epoll_create1(EPOLL_CLOEXEC);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->ep < 0 || srv->evfd < 0 || srv->sigfd < 0)
		return false;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->evfd };
	epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->evfd, &ev);
	ev.data.ptr = &srv->sigfd;
	epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->sigfd, &ev);
	for (size_t i = 0; i < srv->nl; i++) {
		ev.data.ptr = &srv->lfd[i];
		epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->lfd[i], &ev);
	}
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	srv->workers = calloc(srv->cfg->threads, sizeof(*srv->workers));
	if (!srv->workers)
		return false;
	for (unsigned i = 0; i < srv->cfg->threads; i++) {
		if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
			return false;
		srv->nworkers++;
	}
	return true;
}

static bool is_listener(struct serve_server *srv, void *p, int *fd)
{
	for (size_t i = 0; i < srv->nl; i++)
		if (p == &srv->lfd[i]) {
			*fd = srv->lfd[i];
			return true;
		}
	return false;
}

int serve_run(serve_server *srv)
{
	if (!start(srv)) {
		fprintf(stderr, "chaff serve: cannot start: %s\n", strerror(errno));
		return -1;
	}
	double last_scan = now();
	struct epoll_event evs[256];
	for (;;) {
		pthread_mutex_lock(&srv->mu);
		bool failed = srv->failed, idle = srv->in_flight == 0;
		pthread_mutex_unlock(&srv->mu);
		if (failed) {
			fprintf(stderr, "chaff serve: a worker could not start\n");
			return -1;
		}
		if (srv->stopping && idle && !srv->conns)
			break;
		int n = epoll_wait(srv->ep, evs, 256, 1000);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "chaff serve: epoll_wait: %s\n", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			int lfd;
			if (p == &srv->evfd) {
				on_done(srv);
			} else if (p == &srv->sigfd) {
				struct signalfd_siginfo si;
				while (read(srv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				}
				if (!srv->stopping)
					begin_stop(srv);
			} else if (is_listener(srv, p, &lfd)) {
				if (!srv->stopping)
					on_accept(srv, lfd);
			} else {
				struct conn *c = p;
				if (c->gone)
					continue;
				if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN)) {
					conn_close(srv, c);
				} else if (evs[i].events & EPOLLIN) {
					on_readable(srv, c);
				} else if (evs[i].events & EPOLLOUT) {
					if (!flush(c))
						conn_close(srv, c);
					else if (c->s.state == ST_CLOSED && c->s.out.len == 0)
						conn_close(srv, c);
					else
						advance(srv, c);
				}
			}
		}
		double t = now();
		if (t - last_scan >= 1.0) {
			on_timeouts(srv);
			last_scan = t;
		}
		bool freed = srv->graveyard != NULL;
		bury(srv);
		if (srv->accept_paused && !srv->stopping && (freed || t >= srv->pause_until))
			resume_accepting(srv);
	}
	return 0;
}

void serve_close(serve_server *srv)
{
	if (!srv)
		return;
	if (srv->nworkers) {
		pthread_mutex_lock(&srv->mu);
		srv->quit = true;
		pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
		for (unsigned i = 0; i < srv->nworkers; i++)
			pthread_join(srv->workers[i], NULL);
	}
	while (srv->conns) {
		srv->conns->busy = false;
		conn_close(srv, srv->conns);
	}
	bury(srv);
	for (size_t i = 0; i < srv->nl; i++)
		if (srv->lfd[i] >= 0)
			close(srv->lfd[i]);
	if (srv->ep >= 0)
		close(srv->ep);
	if (srv->evfd >= 0)
		close(srv->evfd);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	free(srv->workers);
	free(srv->queue);
	free(srv->lfd);
	free(srv->laddr);
	free(srv);
}
