/*
 * chaff classify: a verdict line per message, exit codes for one message
 * as bogofilter's (0 spam, 1 ham, 2 unsure, 3 error).
 * chaff filter: the message on stdin to stdout with SpamAssassin-style
 * headers added; whatever goes wrong, the message comes out whole.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "input.h"
#include "tokpool.h"

/* Messages scored per chunk: enough to keep every core busy, few enough
 * that the first lines come out soon and the chunks' copies of the input
 * stay in cache (see cmd_train.c). */
enum { CHUNK_MESSAGES = 64, CHUNK_BYTES = 2 << 20 };

static const char classify_usage[] =
	"usage: chaff classify [OPTIONS] [PATH...]\n"
	"Prints 'VERDICT SCORE PATH' per message (stdin when no path is named).\n"
	"For one message the exit code is 0 spam, 1 ham, 2 unsure, 3 error.\n\n"
	"  --db DIR      the database (default $CHAFF_DB, else ~/.chaff)\n"
	"  --explain     list the tokens that moved the score most\n"
	"  --clues N     how many tokens --explain lists (15)\n"
	"  --json        one JSON object per message\n"
	"  --set NAME=VALUE  score with this parameter for this run only\n"
	"                (repeatable; names as in 'chaff config')\n"
	"  --threads N   scoring threads (default: one per core)\n";

static const char *verdict_name(enum chaff_verdict v)
{
	return v == CHAFF_VERDICT_SPAM ? "spam" : v == CHAFF_VERDICT_HAM ? "ham" : "unsure";
}

static void print_json(const char *name, const struct chaff_score *s)
{
	printf("{\"path\":");
	cli_json_str(stdout, name);
	printf(",\"verdict\":\"%s\",\"score\":%.6f,\"logit\":%.6g,\"spam_prob\":%.6f,"
	       "\"ham_prob\":%.6f,\"tokens\":%u,\"used\":%u,\"clues\":[",
	       verdict_name(s->verdict), s->score, s->logit, s->spam_prob, s->ham_prob, s->tokens,
	       s->used);
	for (size_t i = 0; i < s->nclues; i++) {
		printf("%s{\"token\":", i ? "," : "");
		cli_json_strn(stdout, s->clues[i].text, s->clues[i].len);
		printf(",\"spam\":%u,\"ham\":%u,\"f\":%.6f}", s->clues[i].spam, s->clues[i].ham,
		       s->clues[i].f);
	}
	printf("]}\n");
}

/* A clue's text on its line: a control character (none comes from the
 * tokenizer, but one would end the line or steer the terminal: C0, DEL,
 * and C1 written in UTF-8) as \xNN for each byte, and so a backslash as
 * \\. */
static void put_clue(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		          (unsigned char)s[i + 1] <= 0x9f;
		if (c1) {
			printf("\\x%02x\\x%02x", c, (unsigned char)s[++i]);
		} else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else
			putchar(c);
	}
}

static void print_explain(const struct chaff_score *s)
{
	printf("  %u distinct tokens, %u counted; S=%.4f H=%.4f\n", s->tokens, s->used,
	       s->spam_prob, s->ham_prob);
	for (size_t i = 0; i < s->nclues; i++) {
		printf("  %8.6f  spam %6u  ham %6u  ", s->clues[i].f, s->clues[i].spam,
		       s->clues[i].ham);
		put_clue(s->clues[i].text, s->clues[i].len);
		putchar('\n');
	}
}

/* The database's parameters with --set NAME=VALUE options applied. */
static int override(chaff_db *db, const char *const *sets, size_t n, struct chaff_params *out)
{
	struct chaff_params p;
	if (chaff_db_params(db, &p) != CHAFF_OK) {
		cli_error("cannot read the database's parameters");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char name[32];
		const char *eq = strchr(sets[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - sets[i]), sets[i]);
		char *end;
		double v = strtod(eq + 1, &end);
		if (end == eq + 1 || *end) {
			cli_error("--set %s: '%s' is not a number", name, eq + 1);
			return -1;
		}
		if (chaff_params_set(&p, name, v) != CHAFF_OK) {
			cli_error("--set: no parameter named '%s'", name);
			return -1;
		}
	}
	if (!chaff_params_valid(&p)) {
		cli_error("--set: value out of range (see 'chaff config --help')");
		return -1;
	}
	*out = p;
	return 0;
}

struct run {
	bool explain, json, failed, stop;
	size_t done;
	enum chaff_verdict last;
	const char *dbpath;
};

/* The database's counts read into memory for the rest of the run (see
 * cmd_classify); only while no chunk runs, since the pools' classifiers
 * take it. Tried once: a database too large for it is looked up. */
static void take_snapshot(chaff_db *db, struct tokpool_pair *ps, chaff_snapshot **snap, bool *tried)
{
	*tried = true;
	if (chaff_snapshot_new(db, CLI_SNAPSHOT_MAX_TOKENS, snap) == CHAFF_OK)
		tokpool_use_snapshot(ps->p[0], *snap);
}

/* Prints a scored chunk in input order (nothing for NULL). */
static void print_chunk(struct tokpool *pool, struct run *r)
{
	if (!pool)
		return;
	size_t n = tokpool_count(pool);
	for (size_t i = 0; i < n && !r->stop; i++) {
		const struct tokpool_result *res = tokpool_result(pool, i);
		const struct chaff_score *s = &res->score;
		if (res->rc != CHAFF_OK) {
			if (res->rc == CHAFF_EEMPTY)
				cli_error("%s: the database needs both spam and ham trained first",
				          cli_db_path(r->dbpath));
			else
				cli_error("%s: %s", res->name, chaff_strerror(res->rc));
			r->failed = true;
			r->stop = res->rc == CHAFF_EEMPTY;
			continue;
		}
		r->done++;
		r->last = s->verdict;
		if (r->json) {
			print_json(res->name, s);
		} else {
			printf("%s %.6f %s\n", verdict_name(s->verdict), s->score, res->name);
			if (r->explain)
				print_explain(s);
		}
	}
	tokpool_reset(pool);
}

/* The chunk being filled (started unless the run stops), then the one the
 * workers may still have, printed: afterwards no chunk runs. */
static void print_rest(struct tokpool_pair *ps, struct run *r)
{
	print_chunk(tokpool_turn(ps, !r->stop), r);
	print_chunk(tokpool_turn(ps, false), r);
}

int cmd_classify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' }, { "explain", no_argument, NULL, 'e' },
		{ "clues", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' },
		{ "set", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ "threads", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dbpath = NULL;
	const char *sets[16];
	size_t nsets = 0;
	bool explain = false, json = false;
	unsigned long nclues = 15, threads = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dbpath = optarg; break;
		case 'e': explain = true; break;
		case 'j': json = true; break;
		case 'c':
			if (!cli_number("--clues", optarg, 10000, &nclues))
				return EXIT_FAIL;
			break;
		case 's':
			if (nsets == 16 || !strchr(optarg, '=')) {
				cli_error("--set wants NAME=VALUE (at most 16 of them)");
				return EXIT_FAIL;
			}
			sets[nsets++] = optarg;
			break;
		case 't':
			/* 3 as for any bad option: classify's 0, 1 and 2 are
			 * verdicts, and procmail reads only those and 3 */
			if (!cli_number_in("--threads", optarg, 1, 64, &threads))
				return EXIT_FAIL;
			break;
		case 'h': fputs(classify_usage, stdout); return EXIT_OK;
		default: fputs(classify_usage, stderr); return EXIT_FAIL;
		}
	}
	char err[4200];
	struct input *in;
	if (input_open(&in, argv + optind, (size_t)(argc - optind), err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	/* many messages named (an index, a folder, an mbox): a bulk run from
	 * the start, before the pools allocate; else after some messages */
	if (input_is_bulk(in))
		cli_bulk_heap();
	chaff_db *db = cli_db_open(dbpath, CHAFF_DB_READONLY);
	struct chaff_params params;
	/* two pools taking turns: the workers score one chunk while this
	 * thread reads the next and prints the one before */
	struct tokpool_pair ps = { 0 };
	int rc = CHAFF_EDB;
	if (db && (!nsets || override(db, sets, nsets, &params) == 0)) {
		unsigned n = threads ? (unsigned)threads : tokpool_cores();
		size_t clues = explain || json ? nclues : 0;
		rc = tokpool_new_scoring(&ps.p[0], db, nsets ? &params : NULL, n, clues);
		if (rc == CHAFF_OK && n > 1)
			rc = tokpool_twin(&ps.p[1], ps.p[0]);
		if (rc != CHAFF_OK)
			cli_error("%s", chaff_strerror(rc));
		ps.fill = ps.p[0];
	}
	if (rc != CHAFF_OK) {
		tokpool_pair_free(&ps);
		chaff_db_close(db);
		input_close(in);
		return EXIT_FAIL;
	}
	struct run run = { .explain = explain, .json = json, .last = CHAFF_VERDICT_UNSURE,
		           .dbpath = dbpath };
	size_t chunk_bytes = 0;
	chaff_snapshot *snap = NULL;
	bool snap_tried = false;
	size_t nread = 0;
	struct input_msg m;
	int r;
	while (!run.stop && (r = input_next(in, &m, err, sizeof(err))) != 0) {
		if (r < 0) {
			cli_error("%s", err);
			run.failed = true;
			continue;
		}
		if (++nread == CLI_BULK_MESSAGES)
			cli_bulk_heap();
		char name[4200];
		if (m.in_mbox)
			snprintf(name, sizeof(name), "%s#%zu", m.path, m.index + 1);
		else
			snprintf(name, sizeof(name), "%s", m.path);
		if (!m.len)
			cli_warn("%s: an empty message (no header, no body); scored all the same",
			         name);
		else if (!input_is_mail(m.data, m.len))
			cli_warn("%s: not a mail message (no header at its start); scored as text", name);
		/* A large message: the chunks before it are scored and printed
		 * first, and it is scored alone, in place, not copied. */
		bool big = m.len >= CLI_BIG_MESSAGE;
		if (big) {
			print_rest(&ps, &run);
			/* nothing runs now: a run of many messages, in which
			 * large ones come before any chunk fills, gets its copy
			 * of the database here */
			if (!snap_tried && nread >= CHUNK_MESSAGES)
				take_snapshot(db, &ps, &snap, &snap_tried);
		}
		/* One thread, once the first chunk has decided on the snapshot
		 * (or a large message): each message is scored where it was
		 * read, at once. */
		bool direct = (!ps.p[1] && snap_tried) || big;
		int arc = direct ? tokpool_add_ref(ps.fill, m.data, m.len, name, -1)
		                 : tokpool_add(ps.fill, m.data, m.len, name, -1);
		if (arc != CHAFF_OK) {
			cli_error("out of memory");
			run.failed = run.stop = true;
			break;
		}
		chunk_bytes += m.len;
		if (direct || tokpool_count(ps.fill) >= CHUNK_MESSAGES || chunk_bytes >= CHUNK_BYTES) {
			/* More than a chunk of messages to score: the database's
			 * counts are read into memory once, and every message is
			 * scored against that copy. A B-tree lookup per token was two
			 * thirds of scoring the corpus; building the copy costs what
			 * scoring a hundred messages does. Nothing runs yet at the
			 * first chunk (a large message's is finished at once, and
			 * is no reason for a copy), and the twin pool shares the
			 * classifiers. */
			if (!snap_tried && !big)
				take_snapshot(db, &ps, &snap, &snap_tried);
			if (big) /* done before the next read moves it */
				print_rest(&ps, &run);
			else
				print_chunk(tokpool_turn(&ps, !run.stop), &run);
			chunk_bytes = 0;
		}
	}
	print_rest(&ps, &run); /* the last chunk, and the one still running */
	tokpool_pair_free(&ps);
	chaff_snapshot_free(snap);
	chaff_db_close(db);
	input_close(in);
	bool failed = run.failed;
	size_t done = run.done;
	enum chaff_verdict last = run.last;
	if (fflush(stdout) != 0) {
		cli_error("writing output failed");
		return EXIT_FAIL;
	}
	if (failed)
		return EXIT_FAIL;
	if (done == 0 && nread == 0) { /* an empty folder or index */
		cli_error("no message found to classify");
		return EXIT_FAIL; /* not 0, which for one message means spam */
	}
	if (done == 1)
		return last == CHAFF_VERDICT_SPAM ? 0 : last == CHAFF_VERDICT_HAM ? 1 : 2;
	return EXIT_OK;
}
