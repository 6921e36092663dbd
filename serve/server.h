/*
 * The SMTP front end's event loop: listening sockets, access control,
 * connection limits, timeouts and a fixed pool of worker threads that
 * handle complete messages. One thread runs the loop (epoll, level
 * triggered); a connection whose message is with a worker reads nothing
 * until the worker's replies come back, so one slow message never holds
 * up the other connections.
 */
#ifndef CHAFF_SERVE_SERVER_H
#define CHAFF_SERVE_SERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "serve/smtp.h"

/* The longest reply line a handler may give. */
#define SERVE_REPLY_MAX 512

/* A network in CIDR notation. */
struct serve_net {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

/* "127.0.0.0/8", "::1", "10.1.2.3" (a host): false when malformed. */
bool serve_parse_net(const char *s, struct serve_net *out);
/* "ADDR:PORT", "[V6ADDR]:PORT" or "HOST:PORT" into host and port: false
 * when malformed. host and port point into buf. */
bool serve_split_hostport(const char *s, char *buf, size_t bufn, const char **host,
                          const char **port);

/* One complete message, handed to a worker. */
struct serve_job {
	const char *client;        /* the client's address, as text */
	const struct smtp_session *s; /* envelope and message; read only */
	char (*reply)[SERVE_REPLY_MAX]; /* out: one per recipient in LMTP, else one */
	unsigned nreply;
};

struct serve_config {
	const char *const *listen; /* "ADDR:PORT" each */
	size_t nlisten;
	const struct serve_net *allow;
	size_t nallow;
	struct smtp_config smtp;
	unsigned max_conn, max_conn_per_ip;
	unsigned timeout, data_timeout; /* seconds */
	unsigned threads;
	/* Per worker thread: state made at its start, freed at its end. A
	 * worker whose state cannot be made stops the server. */
	void *(*worker_new)(void *user);
	void (*worker_free)(void *state);
	/* Handles one message: fills job->reply. Runs in a worker thread. */
	void (*handle)(void *state, struct serve_job *job);
	/* Optional: called in a worker with no message waiting, after a message
	 * (before its reply goes out) and before it waits for work. */
	void (*idle)(void *state);
	void *user;
};

typedef struct serve_server serve_server;

/* Binds every listening socket; prints why and returns NULL on failure. */
serve_server *serve_open(const struct serve_config *cfg);
/* The bound address of listening socket i, as "ADDR:PORT". */
const char *serve_address(const serve_server *srv, size_t i);
/* Serves until SIGTERM or SIGINT, then finishes the messages in flight.
 * Returns 0, or -1 after printing why it could not go on. */
int serve_run(serve_server *srv);
void serve_close(serve_server *srv);

#endif
