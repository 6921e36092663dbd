/*
 * chaff serve: the SMTP (or LMTP) front end. The protocol and the event
 * loop live in serve/; this file reads the options and says what happens
 * to each message: score it, then reject it, pass it on tagged (to the
 * next hop or a Maildir), quarantine it, or train it when it was sent to
 * a training address.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/io.h"
#include "input.h"
#include "serve/deliver.h"
#include "serve/server.h"
#include "tag.h"

static const char serve_usage[] =
	"usage: chaff serve [--db DIR] (--next-hop HOST:PORT | --maildir DIR) [options]\n"
	"Receives mail over SMTP (or LMTP), scores each message and rejects it, passes\n"
	"it on with verdict headers added, or quarantines it.\n\n"
	"  --listen ADDR:PORT     where to listen, repeatable (default 127.0.0.1:10025;\n"
	"                         IPv6 as [::1]:10025)\n"
	"  --allow CIDR,...       clients allowed to connect (default 127.0.0.0/8,::1/128)\n"
	"  --lmtp                 speak LMTP: LHLO, one reply per recipient\n"
	"  --next-hop HOST:PORT   pass messages on over SMTP, envelope unchanged\n"
	"  --maildir DIR          or deliver them into this Maildir\n"
	"  --quarantine DIR       the Maildir for quarantined messages\n"
	"  --on-spam ACTION       pass, quarantine or reject (default pass)\n"
	"  --on-unsure ACTION     (default pass)\n"
	"  --on-ham ACTION        (default pass)\n"
	"  --reject-above SCORE   reject every message scoring at least SCORE\n"
	"  --domains D,...        accept recipients only in these domains and their\n"
	"                         subdomains (default: any)\n"
	"  --learn-spam ADDR      train what is sent to ADDR as spam: the attached\n"
	"  --learn-ham ADDR       message, else the message itself (\"local@\": any domain)\n"
	"  --max-size BYTES       largest message (default 10240000)\n"
	"  --max-rcpt N           recipients per message (default 1000)\n"
	"  --max-errors N         bad commands before disconnecting (default 20)\n"
	"  --max-conn N           connections in all (default 1024)\n"
	"  --max-conn-per-ip N    connections from one address (default 256)\n"
	"  --timeout SEC          idle time allowed between commands (default 300)\n"
	"  --data-timeout SEC     idle time allowed inside DATA (default 600)\n"
	"  --hop-timeout SEC      next hop connect and reply timeout (default 60)\n"
	"  --threads N            scoring and delivery threads (default: cores)\n"
	"  --hostname NAME        our name in replies (default: the host name)\n";

enum action { PASS, QUARANTINE, REJECT };

/*
 * The database's counts in memory, shared by the workers and read anew
 * after every training commit, in this process or another (the database's
 * generation tells): a hash-table probe per token instead of a B-tree
 * walk, which was a third of the server's time. While one worker reads
 * the new copy, the others score against the database itself, so no
 * message is scored against counts older than those at its arrival.
 */
struct snap_ref {
	chaff_snapshot *s;
	unsigned refs; /* the workers scoring against it, and snaps.cur */
};

struct snaps {
	pthread_mutex_t mu;
	struct snap_ref *cur;
	bool reading; /* a worker is reading a new copy */
	bool failed;  /* ... and could not, at generation failed_gen */
	uint64_t failed_gen;
};

static void snap_release(struct snaps *sn, struct snap_ref *r)
{
	pthread_mutex_lock(&sn->mu);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&sn->mu);
	if (last) {
		chaff_snapshot_free(r->s);
		free(r);
	}
}

/* A copy of the database as it is now, to release after scoring; NULL:
 * score against the database. */
static struct snap_ref *snap_take(struct snaps *sn, chaff_db *db)
{
	uint64_t gen = chaff_db_generation(db);
	pthread_mutex_lock(&sn->mu);
	struct snap_ref *r = sn->cur;
	if (r && chaff_snapshot_generation(r->s) >= gen) {
		r->refs++;
		pthread_mutex_unlock(&sn->mu);
		return r;
	}
	if (sn->reading || (sn->failed && sn->failed_gen == gen)) {
		pthread_mutex_unlock(&sn->mu);
		return NULL;
	}
	sn->reading = true;
	pthread_mutex_unlock(&sn->mu);

	chaff_snapshot *s = NULL;
	struct snap_ref *fresh = NULL;
	if (chaff_snapshot_new(db, CLI_SNAPSHOT_MAX_TOKENS, &s) == CHAFF_OK &&
	    !(fresh = malloc(sizeof(*fresh))))
		chaff_snapshot_free(s);
	struct snap_ref *old = NULL;
	pthread_mutex_lock(&sn->mu);
	sn->reading = false;
	sn->failed = !fresh;
	sn->failed_gen = gen;
	if (fresh) {
		*fresh = (struct snap_ref){s, 2};
		old = sn->cur;
		sn->cur = fresh;
	}
	pthread_mutex_unlock(&sn->mu);
	if (old)
		snap_release(sn, old);
	return fresh;
}

struct opts {
	const char *dbpath, *next_hop, *maildir, *quarantine;
	char hop_buf[300];
	const char *hop_host, *hop_port;
	const char *helo; /* our name, in the greeting and in EHLO to the next hop */
	enum action on[3]; /* by enum chaff_verdict */
	double reject_above; /* > 1: off */
	unsigned hop_timeout;
	chaff_db *db;
	struct snaps snaps;
	atomic_uint seq;
	int pid;           /* of this process, and the host: in every id */
	char id_host[64];
};

/* State of one worker thread. */
struct worker {
	struct opts *o;
	chaff_classifier *cl;
	struct hop hop;
	struct buf tagged;
	struct buf inner; /* a message attached for training, copied */
	struct buf log;   /* log lines not yet written */
};

/* Log lines go out in one write when the worker runs out of work (so at
 * once when mail is light, before the client has its reply), or when a
 * few kilobytes have gathered under load: a write per message was a
 * measurable part of the front end. */
static void flush_log(void *state)
{
	struct worker *w = state;
	if (!w->log.len)
		return;
	/* nowhere to log to: the lines are dropped rather than stall mail */
	chaff_write_all(STDERR_FILENO, w->log.p, w->log.len);
	w->log.len = 0;
}

static void *worker_new(void *user)
{
	struct opts *o = user;
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->o = o;
	if (chaff_classifier_new(o->db, &w->cl) != CHAFF_OK) {
		free(w);
		return NULL;
	}
	hop_init(&w->hop, o->hop_host, o->hop_port, o->helo, o->hop_timeout);
	return w;
}

static void worker_free(void *state)
{
	struct worker *w = state;
	flush_log(w);
	buf_free(&w->log);
	chaff_classifier_free(w->cl);
	hop_close(&w->hop);
	buf_free(&w->tagged);
	buf_free(&w->inner);
	free(w);
}

static int to_buf(void *user, const char *p, size_t n)
{
	return buf_add(user, p, n) ? 0 : -1;
}

/* A unique name: a Maildir file name (time, microseconds, process,
 * counter, host) that also serves as the queue id in replies and logs. */
static void make_id(struct opts *o, char *id, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(id, n, "%lld.M%ldP%dQ%u.%s", (long long)ts.tv_sec, ts.tv_nsec / 1000, o->pid,
	         atomic_fetch_add(&o->seq, 1), o->id_host);
}

/* The parts of every id that do not change, found once at start. */
static void id_parts(struct opts *o)
{
	o->pid = (int)getpid();
	snprintf(o->id_host, sizeof(o->id_host), "localhost");
	gethostname(o->id_host, sizeof(o->id_host) - 1);
	for (char *p = o->id_host; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_'; /* Maildir names keep to one path part, no colon */
}

static void fill(struct serve_job *job, const char *reply)
{
	for (unsigned i = 0; i < job->nreply; i++)
		snprintf(job->reply[i], SERVE_REPLY_MAX, "%s", reply);
}

/* Training by mail: the attached message if there is one, else the whole. */
static const char *learn(struct worker *w, const struct smtp_session *s, struct serve_job *job)
{
	chaff_tokenizer *tok = chaff_classifier_tokenizer(w->cl);
	const char *msg = s->msg.p, *inner;
	size_t len = s->msg.len, ilen;
	if (chaff_attached_message(tok, msg, len, &inner, &ilen) == CHAFF_OK) {
		w->inner.len = 0;
		if (!buf_add(&w->inner, inner, ilen)) {
			fill(job, "451 4.3.0 Insufficient memory, try again later");
			return "error";
		}
		msg = w->inner.p;
		len = w->inner.len;
	}
	char r[SERVE_REPLY_MAX];
	/* what chaff train refuses, refused for good: sent again, it is the
	 * same mistake */
	const char *why = input_refusal(msg, len);
	if (why) {
		snprintf(r, sizeof(r), "550 5.6.0 Nothing trained: %s", why);
		fill(job, r);
		return "learn-refused";
	}
	enum chaff_class cls = s->learn == SMTP_LEARN_SPAM ? CHAFF_SPAM : CHAFF_HAM;
	const char *name = cls == CHAFF_SPAM ? "spam" : "ham";
	enum chaff_learned outcome;
	int rc = cli_train_one(w->o->db, tok, msg, len, cls, &outcome);
	if (rc != CHAFF_OK)
		snprintf(r, sizeof(r), "451 4.3.0 Training failed: %s, try again later",
		         chaff_strerror(rc));
	else if (outcome == CHAFF_LEARNED_ALREADY)
		snprintf(r, sizeof(r), "250 2.0.0 Ok: already trained as %s", name);
	else if (outcome == CHAFF_LEARNED_MOVED)
		snprintf(r, sizeof(r), "250 2.0.0 Ok: moved from %s to %s",
		         cls == CHAFF_SPAM ? "ham" : "spam", name);
	else
		snprintf(r, sizeof(r), "250 2.0.0 Ok: trained as %s", name);
	fill(job, r);
	return rc != CHAFF_OK ? "learn-failed" : cls == CHAFF_SPAM ? "learn-spam" : "learn-ham";
}

/* Scores the message and carries out the action its verdict calls for. */
static void handle(void *state, struct serve_job *job)
{
	struct worker *w = state;
	struct opts *o = w->o;
	const struct smtp_session *s = job->s;
	double t0 = cli_now();
	char id[160];
	make_id(o, id, sizeof(id));
	struct chaff_score sc = { 0 };
	const char *action, *verdict = "-";
	int rc = CHAFF_OK;
	if (s->learn != SMTP_LEARN_NONE) {
		action = learn(w, s, job);
	} else {
		struct snap_ref *snap = snap_take(&o->snaps, o->db);
		chaff_classifier_use_snapshot(w->cl, snap ? snap->s : NULL);
		rc = chaff_classify(w->cl, s->msg.p, s->msg.len, 0, &sc);
		chaff_classifier_use_snapshot(w->cl, NULL);
		if (snap)
			snap_release(&o->snaps, snap);
		if (rc != CHAFF_OK) {
			char r[SERVE_REPLY_MAX];
			snprintf(r, sizeof(r), "451 4.3.0 Cannot score the message (%s), try again later",
			         chaff_strerror(rc));
			fill(job, r);
			action = "tempfail";
		} else {
			verdict = sc.verdict == CHAFF_VERDICT_SPAM   ? "spam"
			          : sc.verdict == CHAFF_VERDICT_HAM ? "ham"
			                                            : "unsure";
			enum action a = sc.score >= o->reject_above ? REJECT : o->on[sc.verdict];
			w->tagged.len = 0;
			if (a == REJECT) {
				char r[SERVE_REPLY_MAX];
				/* the reason as it is: --on-ham and --on-unsure may
				 * reject too */
				if (sc.score >= o->reject_above)
					snprintf(r, sizeof(r),
					         "550 5.7.1 Message rejected (spam score %.3f, "
					         "at or above %.3f)",
					         sc.score, o->reject_above);
				else
					snprintf(r, sizeof(r), "550 5.7.1 Message rejected as %s (score %.3f)",
					         verdict, sc.score);
				fill(job, r);
				action = "reject";
			} else if (cli_tag_message(s->msg.p, s->msg.len, &sc, to_buf, &w->tagged) < 0) {
				fill(job, "451 4.3.0 Insufficient memory, try again later");
				action = "tempfail";
			} else if (a == QUARANTINE || !o->next_hop) {
				maildir_deliver(a == QUARANTINE ? o->quarantine : o->maildir, w->tagged.p,
				                w->tagged.len, id, job->reply[0]);
				for (unsigned i = 1; i < job->nreply; i++)
					memcpy(job->reply[i], job->reply[0], SERVE_REPLY_MAX);
				action = a == QUARANTINE ? "quarantine" : "pass";
			} else {
				struct hop_envelope env = {.from = s->from.p,
				                           .body8 = s->body8,
				                           .smtputf8 = s->smtputf8,
				                           .dsn = s->dsn,
				                           .rcpt = s->rcpt,
				                           .rcpt_dsn = s->rcpt_dsn,
				                           .nrcpt = s->nrcpt};
				hop_send(&w->hop, &env, w->tagged.p, w->tagged.len, id, job->reply,
				         job->nreply);
				action = "pass";
			}
		}
	}
	/* One line per message: who, what, the verdict, what became of it. */
	char rcpts[600];
	size_t k = 0;
	for (unsigned i = 0; i < s->nrcpt && k < sizeof(rcpts) - 1; i++)
		k += (size_t)snprintf(rcpts + k, sizeof(rcpts) - k, "%s<%s>", i ? "," : "", s->rcpt[i]);
	char line[1200];
	int n = snprintf(line, sizeof(line),
	                 "chaff serve: id=%s client=%s from=<%s> rcpt=%s size=%zu score=%.6f "
	                 "verdict=%s action=%s reply=\"%.3s\" time=%.1fms\n",
	                 id, job->client, s->from.p ? s->from.p : "", rcpts, s->msg.len, sc.score,
	                 verdict, action, job->reply[0], (cli_now() - t0) * 1000);
	if (n > 0 && (size_t)n >= sizeof(line)) { /* a long sender: cut, keep the line end */
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (n > 0 && !buf_add(&w->log, line, (size_t)n))
		flush_log(w);
	if (w->log.len >= 8192)
		flush_log(w);
}

static bool parse_action(const char *opt, const char *s, enum action *out)
{
	if (strcmp(s, "pass") == 0)
		*out = PASS;
	else if (strcmp(s, "quarantine") == 0)
		*out = QUARANTINE;
	else if (strcmp(s, "reject") == 0)
		*out = REJECT;
	else {
		cli_error("%s %s: expected pass, quarantine or reject", opt, s);
		return false;
	}
	return true;
}

/* Splits a comma-separated list in place into *items (appended). */
static bool split_list(char *s, const char ***items, size_t *n)
{
	for (char *tok = s, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (!*tok)
			continue;
		const char **v = realloc(*items, (*n + 1) * sizeof(*v));
		if (!v)
			return false;
		v[(*n)++] = tok;
		*items = v;
	}
	return true;
}

struct lists {
	const char **listen, **allow_text, **domains;
	size_t nlisten, nallow, ndomains;
	struct serve_net *allow;
};

static void lists_free(struct lists *l)
{
	free(l->listen);
	free(l->allow_text);
	free(l->domains);
	free(l->allow);
}

/* Checks what the options leave to check once all are read: every list
 * item well-formed, and a place for every action that needs one. */
static bool check(struct opts *o, struct lists *l, struct serve_config *cfg)
{
	for (size_t i = 0; i < l->nlisten; i++) {
		char buf[300];
		const char *h, *p;
		if (!serve_split_hostport(l->listen[i], buf, sizeof(buf), &h, &p)) {
			cli_error("--listen %s: expected ADDR:PORT or [ADDR]:PORT", l->listen[i]);
			return false;
		}
	}
	if (!o->next_hop == !o->maildir) {
		cli_error("serve needs exactly one of --next-hop and --maildir");
		return false;
	}
	if (o->next_hop && !serve_split_hostport(o->next_hop, o->hop_buf, sizeof(o->hop_buf),
	                                         &o->hop_host, &o->hop_port)) {
		cli_error("--next-hop %s: expected HOST:PORT or [ADDR]:PORT", o->next_hop);
		return false;
	}
	bool quarantines = o->on[0] == QUARANTINE || o->on[1] == QUARANTINE || o->on[2] == QUARANTINE;
	if (quarantines && !o->quarantine) {
		cli_error("an action 'quarantine' needs --quarantine DIR");
		return false;
	}
	l->allow = calloc(l->nallow ? l->nallow : 1, sizeof(*l->allow));
	if (!l->allow)
		return false;
	for (size_t i = 0; i < l->nallow; i++)
		if (!serve_parse_net(l->allow_text[i], &l->allow[i])) {
			cli_error("--allow %s: expected an address or ADDR/BITS", l->allow_text[i]);
			return false;
		}
	cfg->listen = l->listen;
	cfg->nlisten = l->nlisten;
	cfg->allow = l->allow;
	cfg->nallow = l->nallow;
	cfg->smtp.domains = l->domains;
	cfg->smtp.ndomains = l->ndomains;
	return true;
}

/* Reads the options into o, l and cfg; -1 after a usage message, 1 after
 * --help. */
static int read_opts(int argc, char **argv, struct opts *o, struct lists *l,
                     struct serve_config *cfg, char *hostname, size_t hn)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'L' },
		{ "allow", required_argument, NULL, 'A' },
		{ "lmtp", no_argument, NULL, 'l' },
		{ "next-hop", required_argument, NULL, 'n' },
		{ "maildir", required_argument, NULL, 'm' },
		{ "quarantine", required_argument, NULL, 'q' },
		{ "on-spam", required_argument, NULL, 'S' },
		{ "on-unsure", required_argument, NULL, 'U' },
		{ "on-ham", required_argument, NULL, 'H' },
		{ "reject-above", required_argument, NULL, 'r' },
		{ "domains", required_argument, NULL, 'D' },
		{ "learn-spam", required_argument, NULL, 's' },
		{ "learn-ham", required_argument, NULL, 'g' },
		{ "max-size", required_argument, NULL, 'z' },
		{ "max-rcpt", required_argument, NULL, 'R' },
		{ "max-errors", required_argument, NULL, 'e' },
		{ "max-conn", required_argument, NULL, 'c' },
		{ "max-conn-per-ip", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "data-timeout", required_argument, NULL, 'T' },
		{ "hop-timeout", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 'j' },
		{ "hostname", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'd': o->dbpath = optarg; break;
		case 'L': ok = split_list(optarg, &l->listen, &l->nlisten); break;
		case 'A': ok = split_list(optarg, &l->allow_text, &l->nallow); break;
		case 'l': cfg->smtp.lmtp = true; break;
		case 'n': o->next_hop = optarg; break;
		case 'm': o->maildir = optarg; break;
		case 'q': o->quarantine = optarg; break;
		case 'S': ok = parse_action("--on-spam", optarg, &o->on[CHAFF_VERDICT_SPAM]); break;
		case 'U': ok = parse_action("--on-unsure", optarg, &o->on[CHAFF_VERDICT_UNSURE]); break;
		case 'H': ok = parse_action("--on-ham", optarg, &o->on[CHAFF_VERDICT_HAM]); break;
		case 'r':
			o->reject_above = strtod(optarg, &end);
			ok = *optarg && !*end && o->reject_above >= 0 && o->reject_above <= 1;
			if (!ok)
				cli_error("--reject-above %s: expected a score from 0 to 1", optarg);
			break;
		case 'D': ok = split_list(optarg, &l->domains, &l->ndomains); break;
		case 's': cfg->smtp.learn_spam = optarg; break;
		case 'g': cfg->smtp.learn_ham = optarg; break;
		case 'z':
			ok = cli_number_in("--max-size", optarg, 1, 1ul << 40, &v);
			cfg->smtp.max_size = v;
			break;
		case 'R':
			ok = cli_number_in("--max-rcpt", optarg, 1, 100000, &v);
			cfg->smtp.max_rcpt = (unsigned)v;
			break;
		case 'e':
			ok = cli_number_in("--max-errors", optarg, 1, 100000, &v);
			cfg->smtp.max_errors = (unsigned)v;
			break;
		case 'c':
			ok = cli_number_in("--max-conn", optarg, 1, 100000, &v);
			cfg->max_conn = (unsigned)v;
			break;
		case 'i':
			ok = cli_number_in("--max-conn-per-ip", optarg, 1, 100000, &v);
			cfg->max_conn_per_ip = (unsigned)v;
			break;
		case 't':
			ok = cli_number_in("--timeout", optarg, 1, 86400, &v);
			cfg->timeout = (unsigned)v;
			break;
		case 'T':
			ok = cli_number_in("--data-timeout", optarg, 1, 86400, &v);
			cfg->data_timeout = (unsigned)v;
			break;
		case 'o':
			ok = cli_number_in("--hop-timeout", optarg, 1, 86400, &v);
			o->hop_timeout = (unsigned)v;
			break;
		case 'j':
			ok = cli_number_in("--threads", optarg, 1, 256, &v);
			cfg->threads = (unsigned)v;
			break;
		case 'N': snprintf(hostname, hn, "%s", optarg); break;
		case 'h': fputs(serve_usage, stdout); return 1;
		default: ok = false; break;
		}
		if (!ok) {
			fputs(serve_usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		cli_error("serve takes no operands ('%s')", argv[optind]);
		fputs(serve_usage, stderr);
		return -1;
	}
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	static char default_listen[] = "127.0.0.1:10025";
	static char default_allow[] = "127.0.0.0/8,::1/128";
	char hostname[256] = "localhost";
	gethostname(hostname, sizeof(hostname) - 1);
	struct opts o = { .reject_above = 2, .hop_timeout = 60, .helo = hostname,
		          .snaps = { .mu = PTHREAD_MUTEX_INITIALIZER } };
	struct lists l = { 0 };
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct serve_config cfg = {
		.smtp = { .hostname = hostname, .max_size = 10240000, .max_rcpt = 1000,
		          .max_errors = 20 },
		.max_conn = 1024, .max_conn_per_ip = 256, .timeout = 300, .data_timeout = 600,
		.threads = cores > 0 ? (unsigned)cores : 1,
		.worker_new = worker_new, .worker_free = worker_free, .handle = handle,
		.idle = flush_log, .user = &o,
	};
	int r = read_opts(argc, argv, &o, &l, &cfg, hostname, sizeof(hostname));
	if (r != 0) {
		lists_free(&l);
		return r > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if ((!l.nlisten && !split_list(default_listen, &l.listen, &l.nlisten)) ||
	    (!l.nallow && !split_list(default_allow, &l.allow_text, &l.nallow))) {
		lists_free(&l);
		return EXIT_FAIL;
	}
	if (!check(&o, &l, &cfg)) {
		lists_free(&l);
		return EXIT_USAGE;
	}
	const char *folders[] = { o.maildir, o.quarantine };
	for (size_t i = 0; i < 2; i++) {
		if (folders[i] && !maildir_make(folders[i])) {
			cli_error("cannot make the Maildir %s: %s", folders[i], strerror(errno));
			lists_free(&l);
			return EXIT_FAIL;
		}
	}
	id_parts(&o);
	bool learns = cfg.smtp.learn_spam || cfg.smtp.learn_ham;
	o.db = cli_db_open(o.dbpath, learns ? 0 : CHAFF_DB_READONLY);
	struct chaff_db_stats st;
	if (o.db && chaff_db_stats(o.db, &st) == CHAFF_OK && (!st.spam_messages || !st.ham_messages)) {
		cli_error("%s: the database has no %s trained yet; train it first",
		          cli_db_path(o.dbpath), st.spam_messages ? "ham" : "spam");
		chaff_db_close(o.db);
		o.db = NULL;
	}
	serve_server *srv = o.db ? serve_open(&cfg) : NULL;
	int status = EXIT_FAIL;
	if (srv) {
		for (size_t i = 0; i < cfg.nlisten; i++)
			fprintf(stderr, "chaff serve: listening on %s%s\n", serve_address(srv, i),
			        cfg.smtp.lmtp ? " (LMTP)" : "");
		status = serve_run(srv) == 0 ? EXIT_OK : EXIT_FAIL;
		serve_close(srv);
		if (status == EXIT_OK)
			fprintf(stderr, "chaff serve: stopped\n");
	}
	if (o.snaps.cur)
		snap_release(&o.snaps, o.snaps.cur);
	chaff_db_close(o.db);
	lists_free(&l);
	return status;
}
