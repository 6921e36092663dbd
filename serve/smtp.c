/*
 * SMTP and LMTP, server side, as a state machine without I/O (smtp.h).
 *
 * Lines end at LF; a CR before it is dropped, so bare LF clients work, but
 * only CR LF . CR LF ends DATA. In
 * DATA the message is kept with LF line ends, dot-unstuffed, and counted
 * against the size limit as it arrives: an oversized message is read to
 * its end and refused with 552, never held in memory whole.
 */
#include "serve/smtp.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

/* A message buffer that grew beyond this is freed between messages, so an
 * idle connection does not keep a large body's memory. */
#define KEEP_MSG_BYTES (1u << 20)

static void out_line(struct smtp_session *s, const char *line)
{
	if (!buf_adds(&s->out, line) || !buf_add(&s->out, "\r\n", 2))
		s->state = ST_CLOSED; /* out of memory: nothing sensible is left */
}

void smtp_reply(struct smtp_session *s, const char *line)
{
	out_line(s, line);
}

static void vreply(struct smtp_session *s, const char *fmt, va_list ap)
{
	char line[600];
	vsnprintf(line, sizeof(line), fmt, ap);
	out_line(s, line);
}

static void replyf(struct smtp_session *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void replyf(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
}

void smtp_init(struct smtp_session *s, const struct smtp_config *cfg)
{
	*s = (struct smtp_session){ .cfg = cfg, .state = ST_CMD };
}

static void reset_transaction(struct smtp_session *s)
{
	for (unsigned i = 0; i < s->nrcpt; i++) {
		free(s->rcpt[i]);
		free(s->rcpt_dsn[i]);
	}
	s->nrcpt = 0;
	s->from.len = 0;
	s->dsn[0] = '\0';
	s->in_mail = s->body8 = s->smtputf8 = s->oversize = s->chunking = s->cr_pending = false;
	s->learn = SMTP_LEARN_NONE;
	s->msg.len = s->msg_lfs = 0;
	if (s->msg.cap > KEEP_MSG_BYTES)
		buf_free(&s->msg);
}

void smtp_free(struct smtp_session *s)
{
	reset_transaction(s);
	free(s->rcpt);
	free(s->rcpt_dsn);
	buf_free(&s->from);
	buf_free(&s->msg);
	buf_free(&s->out);
}

void smtp_greet(struct smtp_session *s)
{
	replyf(s, "220 %s %s chaff", s->cfg->hostname, s->cfg->lmtp ? "LMTP" : "ESMTP");
}

void smtp_refuse(struct smtp_session *s)
{
	s->refused = true;
	replyf(s, "554 5.7.1 %s Access denied", s->cfg->hostname);
}

/* A 5xx for a bad command: counted, and past the limit the session ends. */
static void errorf(struct smtp_session *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void errorf(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->cfg->max_errors) {
		replyf(s, "421 4.7.0 %s Error: too many errors", s->cfg->hostname);
		s->state = ST_CLOSED;
	}
}

/* Case-insensitive prefix test; on a match *p moves past it. */
static bool eat(const char **p, const char *word)
{
	size_t n = strlen(word);
	if (strncasecmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Parses "<path>" (or a bare path, as lenient servers accept) at *p into
 * s->from-style buffer out. A source route ("<@a,@b:user@d>") is dropped.
 * Control characters, spaces and angle brackets inside are refused: the
 * path is written into the next hop's commands as it is.
 */
static bool parse_path(const char **p, struct buf *out)
{
	const char *q = skip_spaces(*p), *start, *end;
	if (*q == '<') {
		start = q + 1;
		end = strchr(start, '>');
		if (!end)
			return false;
		*p = end + 1;
	} else {
		start = q;
		end = q;
		while (*end && *end != ' ')
			end++;
		if (end == start)
			return false;
		*p = end;
	}
	if (*start == '@') { /* a source route */
		const char *colon = memchr(start, ':', (size_t)(end - start));
		if (!colon)
			return false;
		start = colon + 1;
	}
	for (const char *c = start; c < end; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' || *c == 0x7f)
			return false;
	if (end - start > 512)
		return false;
	out->len = 0;
	return buf_add(out, start, (size_t)(end - start)) && buf_add(out, "", 1);
}

/* The next " KEY=VALUE" parameter: false at the end of the line. */
static bool next_param(const char **p, char *key, size_t kn, const char **val, size_t *vn)
{
	const char *q = skip_spaces(*p);
	if (!*q)
		return false;
	const char *e = q;
	while (*e && *e != ' ' && *e != '=')
		e++;
	size_t n = (size_t)(e - q);
	if (n >= kn)
		n = kn - 1;
	memcpy(key, q, n);
	key[n] = '\0';
	*val = e;
	if (*e == '=')
		*val = ++e;
	while (*e && *e != ' ')
		e++;
	*vn = (size_t)(e - *val);
	*p = e;
	return true;
}

/* A DSN parameter's value (RFC 3461 xtext and the like): printable
 * ASCII without spaces, passed on as it came. */
static bool dsn_value(const char *v, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 33 || v[i] > 126)
			return false;
	return true;
}

/* Whether a parameter list ("KEY=value KEY=value") has key already. */
static bool has_param(const char *list, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = list; *p; p++)
		if ((p == list || p[-1] == ' ') && strncasecmp(p, key, n) == 0 && p[n] == '=')
			return true;
	return false;
}

/* Appends "KEY=value" to a parameter list of size bytes: NULL, or the
 * reason it was refused (the key given twice; no room, which the bounds
 * on the values keep from happening: a list cut short would be passed on
 * to the next hop as it is). */
static const char *add_param(char *list, size_t size, const char *key, const char *v, size_t n)
{
	if (has_param(list, key))
		return "Duplicate";
	size_t l = strlen(list);
	int k = snprintf(list + l, size - l, "%s%s=%.*s", l ? " " : "", key, (int)n, v);
	if (k < 0 || (size_t)k >= size - l) {
		list[l] = '\0';
		return "Too long";
	}
	return NULL;
}

/* NOTIFY's value: NEVER alone, or a list of SUCCESS, FAILURE, DELAY,
 * each at most once (so that it fits the recipient's parameter list,
 * which must never be passed on cut short). */
static bool notify_value(const char *v, size_t n)
{
	if (n == 5 && strncasecmp(v, "NEVER", 5) == 0)
		return true;
	unsigned seen = 0;
	while (n) {
		size_t k = 0;
		while (k < n && v[k] != ',')
			k++;
		unsigned bit = k == 7 && strncasecmp(v, "SUCCESS", 7) == 0   ? 1
		               : k == 7 && strncasecmp(v, "FAILURE", 7) == 0 ? 2
		               : k == 5 && strncasecmp(v, "DELAY", 5) == 0   ? 4
		                                                             : 0;
		if (!bit || (seen & bit))
			return false;
		seen |= bit;
		if (k == n)
			return true;
		v += k + 1;
		n -= k + 1;
		if (n == 0)
			return false; /* a trailing comma */
	}
	return false;
}

static void cmd_mail(struct smtp_session *s, const char *args)
{
	if (!s->greeted) {
		errorf(s, "%s", s->cfg->lmtp ? "503 5.5.1 Error: send LHLO first"
		                      : "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_mail) {
		errorf(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	const char *p = args;
	if (!eat(&p, "FROM:") || !parse_path(&p, &s->from)) {
		errorf(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	char key[32];
	const char *val;
	size_t vn;
	bool body8 = false, smtputf8 = false;
	char dsn[sizeof(s->dsn)] = "";
	while (next_param(&p, key, sizeof(key), &val, &vn)) {
		if (strcasecmp(key, "SIZE") == 0) {
			char *end;
			char num[24];
			if (vn == 0 || vn >= sizeof(num)) {
				errorf(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
			memcpy(num, val, vn);
			num[vn] = '\0';
			unsigned long long size = strtoull(num, &end, 10);
			if (*end || !isdigit((unsigned char)num[0])) {
				errorf(s, "501 5.5.4 Bad SIZE parameter");
				return;
			}
			if (size > s->cfg->max_size) {
				out_line(s, "552 5.3.4 Message size exceeds fixed limit");
				return;
			}
		} else if (strcasecmp(key, "BODY") == 0) {
			if (vn == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
				body8 = true;
			else if (!(vn == 4 && strncasecmp(val, "7BIT", 4) == 0)) {
				errorf(s, "501 5.5.4 Unsupported BODY parameter");
				return;
			}
		} else if (strcasecmp(key, "SMTPUTF8") == 0 && vn == 0 && val[-1] != '=') {
			/* Not offered, but a before-queue proxy (Postfix's
			 * smtpd_proxy_filter) repeats its client's MAIL as it came,
			 * with what the public server offered: taken and passed on
			 * to a next hop that offers it, like the DSN ones. */
			smtputf8 = true;
		} else if (strcasecmp(key, "RET") == 0 || strcasecmp(key, "ENVID") == 0) {
			bool ret = strcasecmp(key, "RET") == 0;
			if (ret ? !(vn == 4 && (strncasecmp(val, "FULL", 4) == 0 ||
			                        strncasecmp(val, "HDRS", 4) == 0))
			        : !dsn_value(val, vn, 100)) {
				errorf(s, "501 5.5.4 Bad %s parameter", key);
				return;
			}
			const char *why = add_param(dsn, sizeof(dsn), ret ? "RET" : "ENVID", val, vn);
			if (why) {
				errorf(s, "501 5.5.4 %s %s parameter", why, ret ? "RET" : "ENVID");
				return;
			}
		} else {
			errorf(s, "555 5.5.4 Unsupported option: %s", key);
			return;
		}
	}
	s->in_mail = true;
	s->body8 = body8;
	s->smtputf8 = smtputf8;
	memcpy(s->dsn, dsn, sizeof(dsn));
	out_line(s, "250 2.1.0 Ok");
}

/* addr matches "local@" (any domain) or the whole address. */
static bool learn_match(const char *pattern, const char *addr)
{
	if (!pattern || !*pattern)
		return false;
	size_t n = strlen(pattern);
	if (pattern[n - 1] == '@')
		return strncasecmp(addr, pattern, n) == 0 && !strchr(addr + n, '@');
	return strcasecmp(addr, pattern) == 0;
}

/* The domain is one of ours, or a subdomain of one. Without a list every
 * domain is: the one next hop is the only way out either way. */
static bool domain_ok(const struct smtp_config *c, const char *addr)
{
	if (c->ndomains == 0)
		return true;
	const char *at = strrchr(addr, '@');
	if (!at)
		return strcasecmp(addr, "postmaster") == 0; /* RFC 5321 4.5.1 */
	/* "u%other@ours", "u@other@ours", "other!u@ours": routing hacks a next
	 * hop might still honour, relaying to a domain not ours */
	if (strchr(addr, '@') != at || memchr(addr, '%', (size_t)(at - addr)) ||
	    memchr(addr, '!', (size_t)(at - addr)))
		return false;
	const char *d = at + 1;
	size_t dn = strlen(d);
	for (size_t i = 0; i < c->ndomains; i++) {
		size_t n = strlen(c->domains[i]);
		if (dn == n && strcasecmp(d, c->domains[i]) == 0)
			return true;
		if (dn > n && d[dn - n - 1] == '.' && strcasecmp(d + dn - n, c->domains[i]) == 0)
			return true;
	}
	return false;
}

/* Doubles the room for recipients (their paths and DSN parameters);
 * -1, with nothing lost, when memory runs out. */
static int grow_rcpt(struct smtp_session *s)
{
	unsigned cap = s->rcap ? s->rcap * 2 : 4;
	char **r = realloc(s->rcpt, cap * sizeof(*r));
	if (!r)
		return -1;
	s->rcpt = r; /* larger, while rcap still says the old size */
	char **d = realloc(s->rcpt_dsn, cap * sizeof(*d));
	if (!d)
		return -1;
	s->rcpt_dsn = d;
	s->rcap = cap;
	return 0;
}

static void cmd_rcpt(struct smtp_session *s, const char *args)
{
	if (!s->in_mail) {
		errorf(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	const char *p = args;
	struct buf path = { 0 };
	if (!eat(&p, "TO:") || !parse_path(&p, &path) || path.len <= 1) {
		buf_free(&path);
		errorf(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	char dsn[300] = "", key[32];
	const char *val;
	size_t vn;
	while (next_param(&p, key, sizeof(key), &val, &vn)) {
		bool notify = strcasecmp(key, "NOTIFY") == 0, orcpt = strcasecmp(key, "ORCPT") == 0;
		if (!notify && !orcpt) {
			buf_free(&path);
			errorf(s, "555 5.5.4 Unsupported option: %s", key);
			return;
		}
		/* ORCPT is addr-type;xtext, at most 500 characters all told */
		if (notify ? !notify_value(val, vn)
		           : !dsn_value(val, vn, 250) || !memchr(val, ';', vn)) {
			buf_free(&path);
			errorf(s, "501 5.5.4 Bad %s parameter", key);
			return;
		}
		const char *why = add_param(dsn, sizeof(dsn), notify ? "NOTIFY" : "ORCPT", val, vn);
		if (why) {
			buf_free(&path);
			errorf(s, "501 5.5.4 %s %s parameter", why, key);
			return;
		}
	}
	const char *addr = path.p;
	enum smtp_learn learn = learn_match(s->cfg->learn_spam, addr)  ? SMTP_LEARN_SPAM
	                        : learn_match(s->cfg->learn_ham, addr) ? SMTP_LEARN_HAM
	                                                               : SMTP_LEARN_NONE;
	if (s->nrcpt >= s->cfg->max_rcpt) {
		out_line(s, "452 4.5.3 Error: too many recipients");
	} else if (s->nrcpt > 0 && learn != s->learn) {
		replyf(s, "550 5.5.1 <%s>: a message for training goes to one training address "
		          "and to nobody else", addr);
	} else if (learn == SMTP_LEARN_NONE && !domain_ok(s->cfg, addr)) {
		errorf(s, "550 5.7.1 <%s>: Relaying denied", addr);
	} else {
		char *d = NULL;
		if ((s->nrcpt == s->rcap && grow_rcpt(s) < 0) || (dsn[0] && !(d = strdup(dsn)))) {
			buf_free(&path);
			out_line(s, "452 4.3.1 Insufficient system resources");
			return;
		}
		s->rcpt_dsn[s->nrcpt] = d;
		s->rcpt[s->nrcpt++] = path.p; /* the buffer is the string */
		s->learn = learn;
		out_line(s, "250 2.1.5 Ok");
		return;
	}
	buf_free(&path);
}

static void cmd_hello(struct smtp_session *s, const char *verb, const char *args)
{
	bool lhlo = strcasecmp(verb, "LHLO") == 0;
	if (lhlo != s->cfg->lmtp) {
		errorf(s, "%s", lhlo ? "500 5.5.1 Error: this is SMTP, not LMTP"
		              : "500 5.5.1 Error: this is LMTP, send LHLO");
		return;
	}
	if (!*skip_spaces(args)) {
		errorf(s, "501 5.5.4 Syntax: %s hostname", verb);
		return;
	}
	reset_transaction(s);
	s->greeted = true;
	if (strcasecmp(verb, "HELO") == 0) {
		replyf(s, "250 %s", s->cfg->hostname);
		return;
	}
	replyf(s, "250-%s", s->cfg->hostname);
	out_line(s, "250-PIPELINING");
	replyf(s, "250-SIZE %zu", s->cfg->max_size);
	out_line(s, "250-8BITMIME");
	out_line(s, "250-CHUNKING");
	out_line(s, "250 ENHANCEDSTATUSCODES");
}

/* Appends message bytes, counting them against the size limit as SIZE
 * counts a message: with CRLF line ends, as it came over the wire. */
static void data_add(struct smtp_session *s, const char *p, size_t n)
{
	if (s->oversize)
		return;
	size_t lfs = 0;
	for (const char *q = p, *e = p + n; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
		lfs++;
	if (s->msg.len + s->msg_lfs + n + lfs > s->cfg->max_size) {
		s->oversize = true;
		s->msg.len = s->msg_lfs = 0;
		return;
	}
	if (!buf_add(&s->msg, p, n)) {
		s->oversize = true; /* refused below like a message too large */
		s->msg.len = s->msg_lfs = 0;
		return;
	}
	s->msg_lfs += lfs;
}

/* Refuses the message being received: in LMTP once per recipient, as
 * every recipient waits for its own reply. */
static void refuse_message(struct smtp_session *s, const char *line)
{
	for (unsigned i = 0; i < (s->cfg->lmtp ? s->nrcpt : 1); i++)
		out_line(s, line);
	reset_transaction(s);
	s->state = ST_CMD;
}

/*
 * BDAT (RFC 3030): the chunk's bytes follow the command line at once, so
 * they are read (and thrown away when the command cannot be accepted)
 * whatever the reply. Only a count that cannot be read leaves no way to
 * find the next command: the connection is closed.
 */
static void cmd_bdat(struct smtp_session *s, const char *args)
{
	const char *p = skip_spaces(args);
	char *end;
	unsigned long long size = strtoull(p, &end, 10);
	const char *rest = skip_spaces(end);
	/* "LAST" is a word of its own: "BDAT 10LAST" is no command */
	bool last = rest > end && strncasecmp(rest, "LAST", 4) == 0 && !*skip_spaces(rest + 4);
	if (end == p || !isdigit((unsigned char)*p) || (*rest && !last) || size > (1ull << 40)) {
		out_line(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		replyf(s, "421 4.7.0 %s Error: cannot find the end of that chunk", s->cfg->hostname);
		s->state = ST_CLOSED;
		return;
	}
	s->bdat_discard = false;
	if (!s->in_mail || s->nrcpt == 0) {
		errorf(s, "503 5.5.1 Error: need %s command", s->in_mail ? "RCPT" : "MAIL");
		s->bdat_discard = true;
	} else if (!s->chunking) {
		s->chunking = true;
		s->msg.len = s->msg_lfs = 0;
	}
	s->bdat_size = s->bdat_left = size;
	s->bdat_last = last;
	if (s->state != ST_CLOSED)
		s->state = ST_BDAT;
}

/* Chunk bytes: CRLF becomes LF, as in DATA; a CR at a chunk's end waits
 * to see what follows. */
static void chunk_add(struct smtp_session *s, const char *p, size_t n)
{
	if (s->bdat_discard)
		return;
	const char *end = p + n;
	while (p < end) {
		if (s->cr_pending) {
			s->cr_pending = false;
			if (*p != '\n')
				data_add(s, "\r", 1);
		}
		const char *cr = memchr(p, '\r', (size_t)(end - p));
		if (!cr) {
			data_add(s, p, (size_t)(end - p));
			return;
		}
		data_add(s, p, (size_t)(cr - p));
		if (cr + 1 == end) {
			s->cr_pending = true;
			return;
		}
		if (cr[1] != '\n')
			data_add(s, "\r", 1);
		p = cr + 1;
	}
}

/* The chunk has been read: a 250 for a middle chunk, the end of the
 * message for the last one. True when a message is complete. */
static bool chunk_done(struct smtp_session *s)
{
	if (s->bdat_discard) {
		s->state = ST_CMD;
		return false;
	}
	if (!s->bdat_last && s->oversize) {
		/* the sender must stop here: the transaction is over. A middle
		 * chunk has one reply, in LMTP too. */
		out_line(s, "552 5.3.4 Message size exceeds fixed limit");
		reset_transaction(s);
		s->state = ST_CMD;
		return false;
	}
	if (!s->bdat_last) {
		replyf(s, "250 2.0.0 Ok: %llu octets", s->bdat_size);
		s->state = ST_CMD;
		return false;
	}
	if (s->cr_pending) {
		s->cr_pending = false;
		data_add(s, "\r", 1);
	}
	if (s->oversize) {
		refuse_message(s, "552 5.3.4 Message size exceeds fixed limit");
		return false;
	}
	s->state = ST_WAIT;
	return true;
}

/* One command line, CRLF removed. */
static void command(struct smtp_session *s, char *line)
{
	char verb[8];
	size_t n = 0;
	while (line[n] && line[n] != ' ' && n < sizeof(verb) - 1) {
		verb[n] = line[n];
		n++;
	}
	verb[n] = '\0';
	if (line[n] && line[n] != ' ') {
		errorf(s, "502 5.5.2 Error: command not recognized");
		return;
	}
	const char *args = line + n + (line[n] == ' ');
	bool bare = !*skip_spaces(args);
	if (s->refused && strcasecmp(verb, "QUIT") != 0) {
		errorf(s, "503 5.7.1 Error: access denied");
		return;
	}
	if (strcasecmp(verb, "EHLO") == 0 || strcasecmp(verb, "HELO") == 0 ||
	    strcasecmp(verb, "LHLO") == 0) {
		cmd_hello(s, verb, args);
	} else if (strcasecmp(verb, "MAIL") == 0) {
		cmd_mail(s, args);
	} else if (strcasecmp(verb, "RCPT") == 0) {
		cmd_rcpt(s, args);
	} else if (strcasecmp(verb, "BDAT") == 0) {
		cmd_bdat(s, args);
	} else if (strcasecmp(verb, "DATA") == 0) {
		if (!bare)
			errorf(s, "501 5.5.4 Syntax: DATA");
		else if (s->chunking)
			errorf(s, "503 5.5.1 Error: BDAT chunks already sent, DATA not allowed");
		else if (!s->in_mail)
			errorf(s, "503 5.5.1 Error: need MAIL command");
		else if (s->nrcpt == 0)
			errorf(s, "503 5.5.1 Error: need RCPT command");
		else {
			out_line(s, "354 End data with <CR><LF>.<CR><LF>");
			s->state = ST_DATA;
			s->bol = s->crlf = true;
			s->msg.len = s->msg_lfs = 0;
		}
	} else if (strcasecmp(verb, "RSET") == 0) {
		reset_transaction(s);
		out_line(s, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "NOOP") == 0) {
		out_line(s, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "QUIT") == 0) {
		out_line(s, "221 2.0.0 Bye");
		s->state = ST_CLOSED;
	} else if (strcasecmp(verb, "VRFY") == 0) {
		out_line(s, "252 2.0.0 Send some mail and it will be delivered or bounced");
	} else if (strcasecmp(verb, "HELP") == 0) {
		out_line(s, s->cfg->lmtp ? "214 2.0.0 Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP "
		                           "QUIT VRFY HELP"
		                         : "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
		                           "NOOP QUIT VRFY HELP");
	} else {
		errorf(s, "502 5.5.2 Error: command not recognized");
	}
}

/* DATA: consumes lines until the lone dot. Returns bytes used; *done
 * when the terminating line was consumed. */
static size_t data(struct smtp_session *s, const char *p, size_t n, bool *done)
{
	size_t i = 0;
	*done = false;
	while (i < n) {
		const char *q = p + i;
		size_t left = n - i;
		if (s->bol && *q == '.') {
			if (left < 2 || (q[1] == '\r' && left < 3))
				return i; /* "." or ".\r": wait for what follows */
			bool lone = q[1] == '\n' || (q[1] == '\r' && q[2] == '\n');
			if (lone && q[1] == '\r' && s->crlf) {
				*done = true;
				return i + 3;
			}
			/* Only CR LF . CR LF ends the data (RFC 5321 4.1.1.4). A
			 * lone dot next to a bare LF is a line of the message:
			 * ending there would let a sender whose mail passed an
			 * earlier server whole smuggle the rest in as commands of
			 * their own (another MAIL FROM) */
			if (!lone) {
				i++; /* a stuffed dot */
				q++;
				left--;
			}
		}
		const char *nl = memchr(q, '\n', left);
		if (nl) {
			size_t len = (size_t)(nl - q);
			s->crlf = len && q[len - 1] == '\r';
			if (s->crlf)
				len--;
			data_add(s, q, len);
			data_add(s, "\n", 1);
			i += (size_t)(nl - q) + 1;
			s->bol = true;
		} else {
			/* A partial line: take it, except a final CR that may be
			 * the start of CRLF. */
			size_t len = left;
			if (q[len - 1] == '\r')
				len--;
			if (len == 0)
				return i;
			data_add(s, q, len);
			i += len;
			s->bol = false;
		}
	}
	return i;
}

size_t smtp_feed(struct smtp_session *s, const char *p, size_t n, enum smtp_event *ev)
{
	size_t used = 0;
	*ev = SMTP_NONE;
	for (;;) {
		if (s->state == ST_CLOSED) {
			*ev = SMTP_CLOSE;
			return used;
		}
		if (s->state == ST_WAIT)
			return used;
		if (s->state == ST_BDAT) {
			size_t take = n - used < s->bdat_left ? n - used : (size_t)s->bdat_left;
			chunk_add(s, p + used, take);
			used += take;
			s->bdat_left -= take;
			if (s->bdat_left)
				return used; /* the rest of the chunk is still to come */
			if (chunk_done(s)) {
				*ev = SMTP_MESSAGE;
				return used;
			}
			continue;
		}
		if (used >= n)
			break;
		if (s->state == ST_DATA) {
			bool done;
			used += data(s, p + used, n - used, &done);
			if (!done)
				return used;
			if (s->oversize) {
				refuse_message(s, "552 5.3.4 Message size exceeds fixed limit");
				continue;
			}
			s->state = ST_WAIT;
			*ev = SMTP_MESSAGE;
			return used;
		}
		const char *q = p + used;
		const char *nl = memchr(q, '\n', n - used);
		if (!nl) {
			if (!s->skipping && n - used < SMTP_MAX_LINE)
				return used; /* wait for the rest of the line */
			if (!s->skipping)
				errorf(s, "500 5.5.2 Error: line too long");
			s->skipping = true;
			used = n;
			break;
		}
		size_t len = (size_t)(nl - q);
		used += len + 1;
		if (s->skipping) {
			s->skipping = false;
			continue;
		}
		if (len && q[len - 1] == '\r')
			len--;
		if (len >= SMTP_MAX_LINE) {
			errorf(s, "500 5.5.2 Error: line too long");
			continue;
		}
		char line[SMTP_MAX_LINE];
		memcpy(line, q, len);
		line[len] = '\0';
		if (memchr(line, '\0', len)) {
			errorf(s, "500 5.5.2 Error: NUL in a command");
			continue;
		}
		command(s, line);
	}
	if (s->state == ST_CLOSED)
		*ev = SMTP_CLOSE;
	return used;
}

static void end_transaction(struct smtp_session *s)
{
	reset_transaction(s);
	if (s->state == ST_WAIT)
		s->state = ST_CMD;
}

void smtp_finish(struct smtp_session *s, const char *const *reply)
{
	if (s->cfg->lmtp)
		for (unsigned i = 0; i < s->nrcpt; i++)
			out_line(s, reply[i]);
	else
		out_line(s, reply[0]);
	end_transaction(s);
}

void smtp_finish_all(struct smtp_session *s, const char *reply)
{
	for (unsigned i = 0; i < (s->cfg->lmtp ? s->nrcpt : 1); i++)
		out_line(s, reply);
	end_transaction(s);
}
