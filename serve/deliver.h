/*
 * Where chaff serve puts a message it accepts: a Maildir, or the next hop
 * over SMTP. Both answer with an SMTP reply line for the client, and both
 * say 250 only once the message is safe: fsynced and renamed into new/,
 * or accepted by the next hop. Everything else is a 4xx (try again) or
 * the next hop's own 5xx.
 */
#ifndef CHAFF_SERVE_DELIVER_H
#define CHAFF_SERVE_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "serve/server.h"

/* Creates DIR and its tmp/, new/ and cur/ (mode 0700) if missing. False,
 * with errno set, when it cannot. */
bool maildir_make(const char *dir);

/* Writes msg into dir/tmp, fsyncs it, renames it into dir/new and fsyncs
 * new/. reply receives "250 ..." (with id) or a 4xx line. */
bool maildir_deliver(const char *dir, const char *msg, size_t len, const char *id,
                     char reply[SERVE_REPLY_MAX]);

/* A connection to the next hop, kept open between messages. One per
 * worker thread. */
struct hop {
	const char *host, *port; /* from --next-hop */
	const char *helo;        /* our name in EHLO */
	unsigned timeout;        /* seconds, for connect and each reply */
	int fd;                  /* -1: not connected */
	bool pipelining;         /* the next hop offers PIPELINING */
	bool chunking;           /* ... and CHUNKING (BDAT) */
	bool eightbit, dsn, smtputf8; /* ... 8BITMIME, DSN, SMTPUTF8 */
	bool timed_out;          /* the last reply did not come in time */
	char in[8192];           /* reply bytes read and not yet used */
	size_t inlen;
	char *out;               /* the message in SMTP's wire form */
	size_t outcap;
};

void hop_init(struct hop *h, const char *host, const char *port, const char *helo,
              unsigned timeout);
void hop_close(struct hop *h);

/* A message's envelope as the client gave it. The optional parameters
 * go on to a next hop that offers their extension, and are left out for
 * one that does not (as a relay without the extension would). */
struct hop_envelope {
	const char *from;
	bool body8;            /* BODY=8BITMIME */
	bool smtputf8;         /* SMTPUTF8 */
	const char *dsn;       /* MAIL's RET= and ENVID=, "" when none */
	char *const *rcpt;     /* forward paths */
	char *const *rcpt_dsn; /* each one's NOTIFY= and ORCPT=, or NULL */
	unsigned nrcpt;
};

/*
 * Passes the message on with the envelope unchanged. In SMTP (nreply 1)
 * the one reply says whether every recipient got it: a recipient the next
 * hop refuses makes the whole message fail (4xx if any refusal was
 * temporary), so nothing is half-delivered. In LMTP (nreply = recipients)
 * each recipient gets its own outcome.
 */
void hop_send(struct hop *h, const struct hop_envelope *env, const char *msg, size_t len,
              const char *id, char (*reply)[SERVE_REPLY_MAX], unsigned nreply);

#endif
