/*
 * chaff train / untrain: messages from files, mboxes, folders, TREC
 * indexes and stdin, committed in atomic batches. Every input is checked
 * to be readable before anything is trained, so a run that cannot read
 * its inputs changes nothing.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "input.h"
#include "tokpool.h"

static const char usage_text[] =
	"usage: chaff train (--spam|--ham) [OPTIONS] [PATH...]\n"
	"       chaff untrain (--spam|--ham) [OPTIONS] [PATH...]\n"
	"Trains (or untrains) messages as spam or ham. PATH may be a message, an mbox,\n"
	"a Maildir or other folder, a TREC index ('spam PATH' lines, which give each\n"
	"message its class), any of these gzip-compressed; stdin when none is named.\n"
	"A message already trained as the other class is moved to this one.\n\n"
	"  --spam, --ham     the class of the messages\n"
	"  --untrain         take the messages back out (what 'chaff untrain' does)\n"
	"  --db DIR          the database (default $CHAFF_DB, else ~/.chaff)\n"
	"  --batch N         messages per transaction (default 20000)\n"
	"  --pairs           a new database also learns word pairs\n"
	"  --threads N       tokenize on N threads (default: every core); the\n"
	"                    result is the same for any N\n"
	"  -q, --quiet       no progress, no per-message notices\n";

/* Messages tokenized per chunk. Small chunks keep the two chunks' copies
 * of the input in cache and in pages already faulted in: with 512
 * messages (16 MB) a chunk, the main thread spent a third of its time
 * having fresh pages zeroed. Training the corpus (the spam mbox, then the
 * ham mbox) takes 314 ms against 334 ms with 512 (medians of 8). */
enum { CHUNK_MESSAGES = 64, CHUNK_BYTES = 2 << 20 };

struct train {
	chaff_db *db;
	/* Chunks alternate between two pools: one is filled (and then its
	 * results added to the batch) by this thread while the other is
	 * tokenized by the workers. With one thread, only p[0] is used. */
	struct tokpool_pair pp;
	unsigned long threads;
	chaff_batch *batch;
	int cls; /* -1: from the index */
	bool untrain, quiet, progress;
	unsigned long batch_max;
	/* the queued messages: names for notices, classes, outcomes */
	char **names;
	int *classes;
	enum chaff_learned *outcome;
	size_t nnames, cap;
	/* what happened */
	size_t trained[2], moved, already, untrained, refused, committed;
	size_t skipped; /* read, but empty: never queued */
	size_t messages, chunk_bytes;
	uint64_t bytes, total_bytes;
	double t0, last_progress;
};

static void free_names(struct train *tr)
{
	for (size_t i = 0; i < tr->nnames; i++)
		free(tr->names[i]);
	tr->nnames = 0;
}

static const char *class_name(int cls)
{
	return cls == CHAFF_SPAM ? "spam" : "ham";
}

static void clear_progress(struct train *tr)
{
	if (tr->progress && tr->last_progress > 0)
		fprintf(stderr, "\r\033[K");
}

/* Commits the queued messages and reports what each became. */
static int flush(struct train *tr)
{
	size_t n = chaff_batch_size(tr->batch);
	if (!n)
		return 0;
	int rc = chaff_batch_commit(tr->batch, tr->outcome);
	if (rc != CHAFF_OK) {
		clear_progress(tr);
		cli_error("training failed: %s", chaff_strerror(rc));
		free_names(tr);
		return -1; /* the caller says what was committed */
	}
	tr->committed += n;
	for (size_t i = 0; i < n; i++) {
		int cls = tr->classes[i];
		const char *name = tr->names[i];
		switch (tr->outcome[i]) {
		case CHAFF_LEARNED_TRAINED: tr->trained[cls]++; break;
		case CHAFF_LEARNED_MOVED:
			tr->moved++;
			tr->trained[cls]++;
			if (!tr->quiet) {
				clear_progress(tr);
				fprintf(stderr, "chaff: %s: was trained as %s, moved to %s\n", name,
				        class_name(!cls), class_name(cls));
			}
			break;
		case CHAFF_LEARNED_ALREADY:
			tr->already++;
			if (!tr->quiet) {
				clear_progress(tr);
				fprintf(stderr, "chaff: %s: already trained as %s, skipped\n", name,
				        class_name(cls));
			}
			break;
		case CHAFF_LEARNED_UNTRAINED: tr->untrained++; break;
		case CHAFF_LEARNED_NOT_TRAINED:
			tr->refused++;
			clear_progress(tr);
			fprintf(stderr, "chaff: %s: never trained as %s, not untrained\n", name,
			        class_name(cls));
			break;
		}
	}
	free_names(tr);
	return 0;
}

static void show_progress(struct train *tr)
{
	double now = cli_now();
	if (!tr->progress || now - tr->last_progress < 0.25)
		return;
	tr->last_progress = now;
	double secs = now - tr->t0, rate = secs > 0 ? (double)tr->bytes / secs : 0;
	fprintf(stderr, "\r\033[K%zu messages, %.1f MB, %.0f messages/s", tr->messages,
	        (double)tr->bytes / 1e6, secs > 0 ? (double)tr->messages / secs : 0);
	if (rate > 0 && tr->total_bytes > tr->bytes) {
		unsigned left = (unsigned)((double)(tr->total_bytes - tr->bytes) / rate);
		fprintf(stderr, ", %u:%02u left", left / 60, left % 60);
	}
}

/* Room for one more queued message. */
static int grow_queue(struct train *tr)
{
	if (tr->nnames < tr->cap)
		return 0;
	size_t cap = tr->cap ? tr->cap * 2 : 1024;
	int *c = realloc(tr->classes, cap * sizeof(*c));
	if (c)
		tr->classes = c;
	char **nm = realloc(tr->names, cap * sizeof(*nm));
	if (nm)
		tr->names = nm;
	enum chaff_learned *o = realloc(tr->outcome, cap * sizeof(*o));
	if (o)
		tr->outcome = o;
	if (!c || !nm || !o)
		return -1;
	tr->cap = cap;
	return 0;
}

/* Copies one message into the chunk being tokenized, or with in_place
 * (a large message) only refers to it there. */
static int queue(struct train *tr, const struct input_msg *m, bool in_place)
{
	int cls = m->label >= 0 ? m->label : tr->cls;
	if (cls < 0) {
		clear_progress(tr);
		cli_error("%s: no class for this message: use --spam or --ham", m->path);
		return -1;
	}
	char name[4200];
	if (m->in_mbox)
		snprintf(name, sizeof(name), "%s (message %zu)", m->path, m->index + 1);
	else
		snprintf(name, sizeof(name), "%s", m->path);
	const char *why = input_refusal(m->data, m->len);
	if (why) {
		clear_progress(tr);
		cli_warn("%s: %s, not %strained", name, why, tr->untrain ? "un" : "");
		tr->refused++;
		tr->skipped++;
		return 0;
	}
	/* One thread, or a large message: it is tokenized where it was read,
	 * at once (see run); otherwise it is copied into the chunk. */
	int rc = tr->pp.p[1] && !in_place
	                 ? tokpool_add(tr->pp.fill, m->data, m->len, name, cls)
	                 : tokpool_add_ref(tr->pp.fill, m->data, m->len, name, cls);
	if (rc != CHAFF_OK) {
		cli_error("out of memory");
		return -1;
	}
	return 0;
}

/* Adds a tokenized chunk's messages to the batch in input order,
 * committing whenever the batch is full. */
static int add_chunk(struct train *tr, struct tokpool *pool)
{
	size_t n = tokpool_count(pool);
	int rc;
	for (size_t i = 0; i < n; i++) {
		const struct tokpool_result *r = tokpool_result(pool, i);
		if (r->rc != CHAFF_OK) {
			clear_progress(tr);
			cli_error("%s: %s", r->name, chaff_strerror(r->rc));
			return -1;
		}
		if (grow_queue(tr) < 0 || !(tr->names[tr->nnames] = strdup(r->name))) {
			cli_error("out of memory");
			return -1;
		}
		tr->classes[tr->nnames++] = r->cls;
		rc = chaff_batch_add_hashes(tr->batch, r->hashes, r->nhashes, &r->digest,
		                            (enum chaff_class)r->cls, tr->untrain);
		if (rc != CHAFF_OK) {
			cli_error("%s: %s", r->name, chaff_strerror(rc));
			return -1;
		}
		tr->messages++;
		tr->bytes += r->bytes;
		if (chaff_batch_size(tr->batch) >= tr->batch_max && flush(tr) < 0)
			return -1;
	}
	tokpool_reset(pool);
	return 0;
}

/* The chunk being filled is complete (or the input ended): the workers
 * start on it, and meanwhile the chunk they finished before goes into the
 * batch, so the single writer's work overlaps the tokenizing instead of
 * following it. */
static int drain(struct train *tr, bool start)
{
	struct tokpool *done = tokpool_turn(&tr->pp, start);
	return done ? add_chunk(tr, done) : 0;
}

/* The chunk being filled, then the one the workers may still have, into
 * the batch: afterwards no chunk runs. */
static int drain_all(struct train *tr)
{
	return drain(tr, true) < 0 ? -1 : drain(tr, false);
}

/* After a failure: what was committed, and what was read and was not
 * (still in the batch, or in the chunks being tokenized). */
static void stopped(const struct train *tr, size_t nread)
{
	size_t done = tr->committed + tr->skipped;
	size_t lost = nread > done ? nread - done : 0;
	if (tr->committed)
		cli_error("stopped: the first %zu messages were committed, the %zu read after them "
		          "were not",
		          tr->committed, lost);
	else if (lost)
		cli_error("stopped: none of the %zu messages read was trained; the database is as "
		          "it was",
		          lost);
	else
		cli_error("stopped: nothing was trained; the database is as it was");
}

static int parse(int argc, char **argv, struct train *tr, const char **dbpath, bool *pairs)
{
	static const struct option longopts[] = {
		{ "spam", no_argument, NULL, 's' },   { "ham", no_argument, NULL, 'g' },
		{ "untrain", no_argument, NULL, 'u' }, { "db", required_argument, NULL, 'd' },
		{ "batch", required_argument, NULL, 'b' }, { "pairs", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },  { "help", no_argument, NULL, 'h' },
		{ "threads", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'g':
			if (tr->cls >= 0 && tr->cls != (c == 's' ? CHAFF_SPAM : CHAFF_HAM)) {
				cli_error("--spam and --ham exclude each other");
				return -1;
			}
			tr->cls = c == 's' ? CHAFF_SPAM : CHAFF_HAM;
			break;
		case 'u': tr->untrain = true; break;
		case 'd': *dbpath = optarg; break;
		case 'b':
			if (!cli_number("--batch", optarg, 10000000, &tr->batch_max))
				return -1;
			if (tr->batch_max == 0)
				tr->batch_max = 1;
			break;
		case 'p': *pairs = true; break;
		case 't':
			if (!cli_number_in("--threads", optarg, 1, 64, &tr->threads))
				return -1;
			break;
		case 'q': tr->quiet = true; break;
		case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
		default: fputs(usage_text, stderr); return -1;
		}
	}
	return 0;
}

static int run(int argc, char **argv, bool untrain)
{
	struct train tr = { .cls = -1, .untrain = untrain, .batch_max = 20000 };
	const char *dbpath = NULL;
	bool pairs = false;
	if (parse(argc, argv, &tr, &dbpath, &pairs) < 0)
		return EXIT_USAGE;
	tr.progress = !tr.quiet && isatty(STDERR_FILENO);
	char err[8300];
	struct input *in;
	if (input_open(&in, argv + optind, (size_t)(argc - optind), err, sizeof(err)) < 0) {
		cli_error("%s; nothing was trained", err);
		return EXIT_FAIL;
	}
	/* a usage error, known before a batch is committed: with an index
	 * beside it, a file without a class would otherwise stop the run
	 * after the index's messages, at a point that depends on --threads */
	const char *unlabelled = tr.cls < 0 ? input_unlabelled(in) : NULL;
	if (unlabelled) {
		cli_error("%s: no class for its messages: use --spam or --ham (only an index "
		          "names each message's class); nothing was trained",
		          strcmp(unlabelled, "-") == 0 ? "standard input" : unlabelled);
		input_close(in);
		return EXIT_USAGE;
	}
	if (input_check(in, &tr.total_bytes, err, sizeof(err)) < 0) {
		cli_error("%s; nothing was trained", err);
		input_close(in);
		return EXIT_FAIL;
	}
	const char *path = cli_db_path(dbpath);
	enum cli_db_before before = cli_db_before(path);
	bool fresh = before != CLI_DB_THERE; /* this run creates it */
	struct chaff_db_options o = {.flags = tr.untrain ? 0 : CHAFF_DB_CREATE,
	                             .tok_flags = pairs ? CHAFF_TOK_PAIRS : 0,
	                             .log = cli_log};
	int rc = chaff_db_open(path, &o, &tr.db);
	if (rc != CHAFF_OK) { /* the library has said why */
		if (fresh)
			cli_db_close_unmade(NULL, path, before);
		input_close(in);
		return EXIT_FAIL;
	}
	/* before the tokenizers and pools allocate: large named input makes
	 * a bulk run from the start (stdin only after some messages). After
	 * the database is open: LMDB's two-megabyte list of dirty pages is
	 * then mapped afresh, zero without being written, instead of cleared
	 * in the heap. */
	if (tr.total_bytes >= CLI_BULK_BYTES)
		cli_bulk_heap();
	struct chaff_tokenizer_config cfg;
	chaff_db_tokenizer_config(tr.db, &cfg);
	if (pairs && !(cfg.flags & CHAFF_TOK_PAIRS))
		cli_warn("%s was made without word pairs; --pairs only applies to a new database",
		         path);
	int status = EXIT_OK;
	unsigned threads = tr.threads ? (unsigned)tr.threads : tokpool_cores();
	if (tokpool_new(&tr.pp.p[0], &cfg, threads) != CHAFF_OK ||
	    (threads > 1 && tokpool_twin(&tr.pp.p[1], tr.pp.p[0]) != CHAFF_OK) ||
	    chaff_batch_new(tr.db, &tr.batch) != CHAFF_OK) {
		cli_error("out of memory");
		status = EXIT_FAIL;
		goto out;
	}
	/* the tables sized for the input at once, or for a batch's worth of
	 * it (at 64 KB a message, more than mail averages); only a hint:
	 * without the room, they grow as messages come */
	uint64_t per_batch = (uint64_t)tr.batch_max << 16;
	(void)chaff_batch_expect(tr.batch, tr.total_bytes < per_batch ? tr.total_bytes : per_batch);
	chaff_batch_threads(tr.batch, threads);
	tr.pp.fill = tr.pp.p[0];
	tr.t0 = cli_now();
	struct input_msg m;
	int r;
	size_t nread = 0;
	while ((r = input_next(in, &m, err, sizeof(err))) != 0) {
		if (r > 0 && ++nread == CLI_BULK_MESSAGES)
			cli_bulk_heap();
		if (r >= 0 && tokpool_count(tr.pp.fill) == 0)
			tr.chunk_bytes = 0;
		if (r > 0)
			tr.chunk_bytes += m.len;
		/* A large message on several threads: the chunks before it go
		 * into the batch first, and it is tokenized alone, in place. */
		bool in_place = r > 0 && tr.pp.p[1] && m.len >= CLI_BIG_MESSAGE;
		if (in_place && drain_all(&tr) < 0) {
			stopped(&tr, nread);
			status = EXIT_FAIL;
			goto out;
		}
		if (r < 0 || queue(&tr, &m, in_place) < 0) {
			if (r < 0) {
				clear_progress(&tr);
				cli_error("%s", err);
			}
			/* The messages read before go into the batch as one
			 * thread puts them, full batches committed, so that
			 * what a failed run commits does not depend on the
			 * number of threads (the last batch stays out). */
			(void)drain_all(&tr);
			stopped(&tr, nread);
			status = EXIT_FAIL;
			goto out;
		}
		/* (a large message is done before the next read moves it) */
		bool full = tokpool_count(tr.pp.fill) >= CHUNK_MESSAGES ||
		            tr.chunk_bytes >= CHUNK_BYTES || !tr.pp.p[1];
		if ((in_place ? drain_all(&tr) : full ? drain(&tr, true) : 0) < 0) {
			stopped(&tr, nread);
			status = EXIT_FAIL;
			goto out;
		}
		show_progress(&tr);
	}
	/* the last chunk, then the one the workers may still have */
	if (drain_all(&tr) < 0) {
		stopped(&tr, nread);
		status = EXIT_FAIL;
		goto out;
	}
	/* The pools are done with: their chunks and the tokenizers' arenas,
	 * memory already touched, go back to the heap before the last
	 * commit, whose database pages then reuse it instead of having
	 * fresh pages zeroed. */
	tokpool_pair_free(&tr.pp);
	if (flush(&tr) < 0) {
		stopped(&tr, nread);
		status = EXIT_FAIL;
		goto out;
	}
	clear_progress(&tr);
	double secs = cli_now() - tr.t0;
	if (tr.untrain)
		printf("untrained %zu messages", tr.untrained);
	else
		printf("trained %zu spam and %zu ham (%zu moved from the other class)",
		       tr.trained[CHAFF_SPAM], tr.trained[CHAFF_HAM], tr.moved);
	printf("; %zu already known, %zu refused; %zu messages, %.1f MB in %.2f s (%.0f "
	       "messages/s)\n",
	       tr.already, tr.refused, tr.messages, (double)tr.bytes / 1e6, secs,
	       secs > 0 ? (double)tr.messages / secs : 0);
	if (tr.refused)
		status = 1;
	if (nread == 0) { /* an empty folder or index: likely the wrong path */
		cli_warn("no message found; nothing was %strained", tr.untrain ? "un" : "");
		status = 1;
	}
out:
	free_names(&tr);
	free(tr.names);
	free(tr.outcome);
	free(tr.classes);
	chaff_batch_free(tr.batch);
	tokpool_pair_free(&tr.pp);
	/* A run that failed or trained nothing before its first commit
	 * leaves things as they were: a database it created goes again. */
	if (fresh && tr.committed == 0)
		cli_db_close_unmade(tr.db, path, before);
	else
		chaff_db_close(tr.db);
	input_close(in);
	return status;
}

int cmd_train(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cmd_untrain(int argc, char **argv)
{
	return run(argc, argv, true);
}
