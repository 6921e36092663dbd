/*
 * The server side of SMTP (RFC 5321) and LMTP (RFC 2033) as a state
 * machine that does no I/O: bytes from the client go in, replies to send
 * come out, and a complete message comes out as an event. The event loop
 * owns the sockets; the fuzz target and the unit tests drive the same code
 * with plain buffers.
 */
#ifndef CHAFF_SERVE_SMTP_H
#define CHAFF_SERVE_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/buf.h"

/* Longest command line accepted, CRLF included (RFC 5321 asks for 512). */
#define SMTP_MAX_LINE 2048

struct smtp_config {
	const char *hostname;
	bool lmtp;
	size_t max_size;       /* bytes of message data */
	unsigned max_rcpt;     /* recipients per message */
	unsigned max_errors;   /* bad commands before the connection is closed */
	const char **domains;  /* RCPT only for these and their subdomains; */
	size_t ndomains;       /* none: any domain */
	const char *learn_spam; /* "local@" (any domain) or a whole address; */
	const char *learn_ham;  /* NULL: no training by mail */
};

enum smtp_learn { SMTP_LEARN_NONE, SMTP_LEARN_SPAM, SMTP_LEARN_HAM };

enum smtp_event {
	SMTP_NONE,    /* all input used; send out, then read more */
	SMTP_MESSAGE, /* a message is complete: handle it, then smtp_finish() */
	SMTP_CLOSE,   /* send out, then close the connection */
};

struct smtp_session {
	const struct smtp_config *cfg;
	enum { ST_CMD, ST_DATA, ST_BDAT, ST_WAIT, ST_CLOSED } state;
	bool greeted;       /* HELO, EHLO or LHLO seen */
	bool in_mail;       /* MAIL accepted: a transaction is open */
	bool refused;       /* greeted with 554: nothing but QUIT is taken */
	bool body8;         /* MAIL ... BODY=8BITMIME */
	bool smtputf8;      /* MAIL ... SMTPUTF8 (RFC 6531) */
	bool skipping;      /* discarding the rest of an over-long line */
	bool bol;           /* DATA: at the start of a line */
	bool crlf;          /* DATA: the last line ended with CR LF */
	bool oversize;      /* DATA: more than max_size bytes arrived */
	bool chunking;      /* this transaction sends BDAT chunks (RFC 3030) */
	bool bdat_last;     /* the chunk being read is the last */
	bool bdat_discard;  /* ... or is read only to be thrown away */
	bool cr_pending;    /* BDAT: a chunk ended in CR; is an LF next? */
	unsigned long long bdat_size, bdat_left; /* the chunk's bytes; still to come */
	unsigned errors;
	enum smtp_learn learn;
	struct buf from;    /* reverse path, without <>, NUL-terminated */
	char **rcpt;        /* forward paths, without <> */
	char **rcpt_dsn;    /* each one's NOTIFY= and ORCPT= (RFC 3461), or NULL */
	unsigned nrcpt, rcap;
	char dsn[256];      /* MAIL's RET= and ENVID=, "" when none */
	struct buf msg;     /* the message, dot-unstuffed, LF line ends */
	size_t msg_lfs;     /* its LFs: each was a CRLF of its size (RFC 1870) */
	struct buf out;     /* replies waiting to be sent */
};

void smtp_init(struct smtp_session *s, const struct smtp_config *cfg);
void smtp_free(struct smtp_session *s);
/* Queues the greeting. */
void smtp_greet(struct smtp_session *s);
/* Greets with 554 instead (a client that may not send mail here) and, as
 * RFC 5321 section 3.1 asks, answers every command but QUIT with 503
 * until the client quits (or the error limit or a timeout ends it). */
void smtp_refuse(struct smtp_session *s);
/*
 * Consumes client bytes. Returns how many were used; *ev says why it
 * stopped. Bytes not used (a partial line, or commands pipelined after a
 * complete message) must be offered again, with whatever follows, once the
 * event has been dealt with. Out of memory closes the session with a 421.
 */
size_t smtp_feed(struct smtp_session *s, const char *p, size_t n, enum smtp_event *ev);
/*
 * Ends the transaction of a SMTP_MESSAGE event: reply[i] answers recipient
 * i in LMTP; in SMTP only reply[0] is used. Each reply is a whole reply
 * line without CRLF ("250 2.0.0 Ok: queued as X").
 */
void smtp_finish(struct smtp_session *s, const char *const *reply);
/* The same, with one reply for every recipient. */
void smtp_finish_all(struct smtp_session *s, const char *reply);
/* Queues a reply line (CRLF added) outside the protocol's own flow: the
 * loop's timeouts and shutdown. */
void smtp_reply(struct smtp_session *s, const char *line);

#endif
