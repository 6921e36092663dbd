/*
 * chaff eval: measures the classifier on a labelled corpus (a TREC-style
 * index) the way TREC's spam track does: online (classify, then learn the
 * truth, message by message), on a held-out part, or by k-fold
 * cross-validation. It trains a throwaway in-memory database unless --db
 * names one, so the user's own database is never touched.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "eval_metrics.h"
#include "input.h"

static const char usage_text[] =
	"usage: chaff eval [OPTIONS] INDEX\n"
	"Measures the classifier on a labelled corpus: INDEX is a TREC-style index\n"
	"('spam PATH' / 'ham PATH' lines, paths relative to its folder). A new\n"
	"in-memory database is trained, so no database on disk is read or changed.\n\n"
	"  --online          (default) in index order, classify each message, then\n"
	"                    train it with its true class (TREC's immediate feedback)\n"
	"  --train-on WHAT   online: which messages are trained: all (default), error\n"
	"                    (only misclassified ones: spam called ham, ham called\n"
	"                    spam), unsure (misclassified and unsure ones); every\n"
	"                    message is trained until both classes have been\n"
	"  --split RATIO     train on the first RATIO (0 < RATIO < 1) of each class in\n"
	"                    index order, score the rest (corpora-scripts/split.py\n"
	"                    writes shuffled indexes)\n"
	"  --folds K         K-fold cross-validation: the j-th message (from 0) of each\n"
	"                    class is in fold j mod K; each fold is scored by a new\n"
	"                    database trained on the other folds; the metrics pool\n"
	"                    every fold\n"
	"  --db DIR          train a database in DIR and keep it (new or empty; with\n"
	"                    --folds one per fold: DIR/fold-1 ... DIR/fold-K)\n"
	"  --pairs           the database also learns word pairs\n"
	"  --set NAME=VALUE  a scoring parameter (repeatable; names as in 'chaff config')\n"
	"  --results FILE    one line per scored message: 'PATH JUDGMENT SCORE TRUTH',\n"
	"                    JUDGMENT spam when the score >= spam_cutoff, else ham (TREC's\n"
	"                    judgments are binary: unsure is ham); SCORE is the score's\n"
	"                    logit, which ranks messages whose scores round to 0 or 1\n"
	"  --roc FILE        the ROC curve as an SVG picture\n"
	"  --json            the report as one JSON object\n";

enum eval_mode { MODE_ONLINE, MODE_SPLIT, MODE_FOLDS };
enum train_on { TRAIN_ALL, TRAIN_ERROR, TRAIN_UNSURE };
static const char *const mode_names[] = { "online", "split", "folds" };
static const char *const train_on_names[] = { "all", "error", "unsure" };

/* One message of the index, in index order. */
struct eval_msg {
	char *name;
	double score;
	double rank; /* the score's logit: orders scores that round to 0 or 1 */
	unsigned fold;      /* the part it is scored in (split: 0 train, 1 test) */
	signed char label;  /* CHAFF_SPAM or CHAFF_HAM */
	signed char verdict; /* enum chaff_verdict, once scored */
	bool scored;
};

struct eval {
	/* options */
	enum eval_mode mode;
	enum train_on train_on;
	double ratio;
	unsigned long folds;
	char *index;
	const char *dbdir, *results, *roc;
	bool pairs, json, mode_set;
	char set_names[16][32];
	double set_values[16];
	size_t nsets;
	/* the corpus */
	struct eval_msg *msgs;
	size_t n, count[2];
	/* what happened */
	struct chaff_params params; /* as scored, --set applied */
	size_t scored, trained;
	size_t unscorable; /* online, before both classes were trained */
	double seconds; /* inside tokenizing, scoring and training only */
};

/* One database with its classifier and training batch. */
struct run {
	chaff_db *db;
	chaff_classifier *cl;
	chaff_tokenizer *tok; /* the classifier's */
	chaff_batch *batch;
	unsigned fold; /* the part this database scores */
};

static const char *class_name(int cls)
{
	return cls == CHAFF_SPAM ? "spam" : "ham";
}

static int parse_set(struct eval *ev, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (ev->nsets == 16 || !eq || eq == arg || (size_t)(eq - arg) >= sizeof(ev->set_names[0])) {
		cli_error("--set wants NAME=VALUE (at most 16 of them)");
		return -1;
	}
	char *end;
	errno = 0;
	double v = strtod(eq + 1, &end);
	snprintf(ev->set_names[ev->nsets], sizeof(ev->set_names[0]), "%.*s", (int)(eq - arg), arg);
	if (end == eq + 1 || *end || errno) {
		cli_error("--set %s: '%s' is not a number", ev->set_names[ev->nsets], eq + 1);
		return -1;
	}
	struct chaff_params p;
	chaff_params_default(&p);
	if (chaff_params_set(&p, ev->set_names[ev->nsets], v) != CHAFF_OK) {
		cli_error("--set: no parameter named '%s'", ev->set_names[ev->nsets]);
		return -1;
	}
	ev->set_values[ev->nsets++] = v;
	return 0;
}

static int set_mode(struct eval *ev, enum eval_mode m)
{
	if (ev->mode_set && ev->mode != m) {
		cli_error("--online, --split and --folds exclude each other");
		return -1;
	}
	ev->mode = m;
	ev->mode_set = true;
	return 0;
}

/* Option values; -1 for a usage error, 1 after --help. */
static int parse_opt(struct eval *ev, int c)
{
	char *end;
	switch (c) {
	case 'o': return set_mode(ev, MODE_ONLINE);
	case 's':
		ev->ratio = strtod(optarg, &end);
		if (end == optarg || *end || !(ev->ratio > 0 && ev->ratio < 1)) {
			cli_error("--split wants a ratio between 0 and 1, not '%s'", optarg);
			return -1;
		}
		return set_mode(ev, MODE_SPLIT);
	case 'k':
		if (!cli_number_in("--folds", optarg, 2, 1000, &ev->folds))
			return -1;
		return set_mode(ev, MODE_FOLDS);
	case 't':
		for (int i = 0; i < 3; i++)
			if (strcmp(optarg, train_on_names[i]) == 0) {
				ev->train_on = (enum train_on)i;
				return 0;
			}
		cli_error("--train-on wants all, error or unsure, not '%s'", optarg);
		return -1;
	case 'd': ev->dbdir = optarg; return 0;
	case 'p': ev->pairs = true; return 0;
	case 'S': return parse_set(ev, optarg);
	case 'r': ev->results = optarg; return 0;
	case 'R': ev->roc = optarg; return 0;
	case 'j': ev->json = true; return 0;
	case 'h': fputs(usage_text, stdout); return 1;
	default: return -1;
	}
}

static int parse(int argc, char **argv, struct eval *ev)
{
	static const struct option longopts[] = {
		{ "online", no_argument, NULL, 'o' },     { "split", required_argument, NULL, 's' },
		{ "folds", required_argument, NULL, 'k' }, { "train-on", required_argument, NULL, 't' },
		{ "db", required_argument, NULL, 'd' },    { "pairs", no_argument, NULL, 'p' },
		{ "set", required_argument, NULL, 'S' },   { "results", required_argument, NULL, 'r' },
		{ "roc", required_argument, NULL, 'R' },   { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	bool train_on = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		train_on |= c == 't';
		int r = parse_opt(ev, c);
		if (r != 0) {
			if (c == '?')
				fputs(usage_text, stderr);
			return r;
		}
	}
	/* checked together: a ham_cutoff may only fit with a spam_cutoff */
	struct chaff_params p;
	chaff_params_default(&p);
	for (size_t i = 0; i < ev->nsets; i++)
		chaff_params_set(&p, ev->set_names[i], ev->set_values[i]);
	if (!chaff_params_valid(&p)) {
		cli_error("--set: value out of range (see 'chaff config --help')");
		return -1;
	}
	if (train_on && ev->mode != MODE_ONLINE) {
		cli_error("--train-on only applies to --online");
		return -1;
	}
	if (argc - optind != 1) {
		cli_error("eval wants one INDEX file");
		fputs(usage_text, stderr);
		return -1;
	}
	ev->index = argv[optind];
	return 0;
}

/*
 * Reads the index once before any training: every message's class and
 * name, so that an unreadable file, a folder that is not an index or a
 * corpus without one of the classes stops the run before it starts.
 */
static int collect(struct eval *ev)
{
	char err[8300];
	struct input *in;
	uint64_t bytes;
	if (input_open(&in, &ev->index, 1, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return -1;
	}
	if (input_check(in, &bytes, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		input_close(in);
		return -1;
	}
	size_t cap = 0;
	struct input_msg m;
	int r = 0, rc = 0;
	while (rc == 0 && (r = input_next(in, &m, err, sizeof(err))) != 0) {
		if (r < 0 || m.label < 0) {
			if (r < 0)
				cli_error("%s", err);
			else
				cli_error("%s: not a TREC index ('spam PATH' / 'ham PATH' lines)",
				          ev->index);
			rc = -1;
			break;
		}
		if (ev->n == cap) {
			cap = cap ? cap * 2 : 4096;
			struct eval_msg *nm = realloc(ev->msgs, cap * sizeof(*nm));
			if (!nm)
				break;
			ev->msgs = nm;
		}
		char name[4200];
		if (m.in_mbox)
			snprintf(name, sizeof(name), "%s#%zu", m.path, m.index + 1);
		else
			snprintf(name, sizeof(name), "%s", m.path);
		struct eval_msg *e = &ev->msgs[ev->n];
		*e = (struct eval_msg){ .name = strdup(name), .label = (signed char)m.label };
		if (!e->name)
			break;
		ev->n++;
		ev->count[m.label]++;
		if (ev->n == CLI_BULK_MESSAGES)
			cli_bulk_heap();
	}
	input_close(in);
	if (rc == 0 && r != 0) {
		cli_error("out of memory");
		rc = -1;
	}
	if (rc == 0 && (!ev->count[CHAFF_SPAM] || !ev->count[CHAFF_HAM])) {
		cli_error("%s: %s", ev->index,
		          ev->n ? (ev->count[CHAFF_SPAM] ? "no ham in it" : "no spam in it")
		                : "no messages in it");
		rc = -1;
	}
	return rc;
}

/*
 * Which part each message is scored in, for --split and --folds. Each
 * class is dealt out on its own, in index order: the first RATIO of it
 * trains, or its j-th message goes to fold j mod K. Both parts thus keep
 * the corpus's share of spam, and an index that repeats a pattern (ham,
 * ham, spam, ...) cannot put one class in a fold of its own.
 */
static int assign_parts(struct eval *ev)
{
	size_t quota[2] = { 0, 0 }, seen[2] = { 0, 0 };
	for (int c = 0; c < 2 && ev->mode == MODE_SPLIT; c++) {
		quota[c] = (size_t)llround(ev->ratio * (double)ev->count[c]);
		if (quota[c] == 0 || quota[c] == ev->count[c]) {
			cli_error("--split %g of %zu %s leaves none to %s", ev->ratio, ev->count[c],
			          class_name(c), quota[c] ? "score" : "train on");
			return -1;
		}
	}
	for (int c = 0; c < 2 && ev->mode == MODE_FOLDS; c++)
		if (ev->count[c] < 2) {
			cli_error("--folds needs at least 2 %s messages", class_name(c));
			return -1;
		}
	for (size_t i = 0; i < ev->n; i++) {
		int c = ev->msgs[i].label;
		size_t j = seen[c]++;
		ev->msgs[i].fold = ev->mode == MODE_FOLDS ? (unsigned)(j % ev->folds)
		                   : j < quota[c]         ? 0
		                                          : 1;
	}
	return 0;
}

static void run_close(struct run *r)
{
	chaff_batch_free(r->batch);
	chaff_classifier_free(r->cl);
	chaff_db_close(r->db);
	*r = (struct run){ 0 };
}

/* cli_log, noting that the library gave a reason for an error. */
static void eval_log(void *user, enum chaff_log_level level, const char *msg)
{
	if (level == CHAFF_LOG_ERROR)
		*(bool *)user = true;
	cli_log(NULL, level, msg);
}

/* The database, new in memory, or DIR (DIR/fold-K with --folds); one on
 * disk must be empty, or its counts would leak into the measures. */
static int open_db(struct eval *ev, unsigned fold, chaff_db **db)
{
	bool said = false; /* the library said why an open failed */
	struct chaff_db_options o = {.flags = CHAFF_DB_CREATE,
	                             .tok_flags = ev->pairs ? CHAFF_TOK_PAIRS : 0,
	                             .log = eval_log,
	                             .log_user = &said};
	if (!ev->dbdir) {
		int rc = chaff_db_open_memory(&o, db);
		if (rc != CHAFF_OK)
			cli_error("%s", chaff_strerror(rc));
		return rc == CHAFF_OK ? 0 : -1;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s", ev->dbdir);
	if (ev->mode == MODE_FOLDS) {
		if (mkdir(ev->dbdir, 0700) < 0 && errno != EEXIST) {
			cli_error("%s: %s", ev->dbdir, strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path), "%s/fold-%u", ev->dbdir, fold + 1);
	}
	int rc = chaff_db_open(path, &o, db);
	if (rc != CHAFF_OK) {
		if (!said)
			cli_error("%s: %s", path, chaff_strerror(rc));
		return -1;
	}
	struct chaff_db_stats st;
	if (chaff_db_stats(*db, &st) != CHAFF_OK || st.spam_messages || st.ham_messages) {
		cli_error("%s already holds trained messages; eval wants a new or empty database",
		          path);
		chaff_db_close(*db);
		*db = NULL;
		return -1;
	}
	return 0;
}

/* A database with its classifier, --set applied, and a batch. */
static int run_open(struct eval *ev, unsigned fold, struct run *r)
{
	*r = (struct run){ .fold = fold };
	if (open_db(ev, fold, &r->db) < 0)
		return -1;
	struct chaff_params p;
	if (chaff_classifier_new(r->db, &r->cl) != CHAFF_OK ||
	    chaff_batch_new(r->db, &r->batch) != CHAFF_OK ||
	    chaff_db_params(r->db, &p) != CHAFF_OK) {
		cli_error("out of memory");
		run_close(r);
		return -1;
	}
	r->tok = chaff_classifier_tokenizer(r->cl);
	for (size_t i = 0; i < ev->nsets; i++)
		chaff_params_set(&p, ev->set_names[i], ev->set_values[i]);
	if (chaff_classifier_set_params(r->cl, &p) != CHAFF_OK) {
		cli_error("--set: value out of range (see 'chaff config --help')");
		run_close(r);
		return -1;
	}
	ev->params = p;
	return 0;
}

/* Queues tk (made by r->tok from m) to be trained as cls. */
static int learn(struct eval *ev, struct run *r, const struct input_msg *m,
                 const struct chaff_tokens *tk, int cls)
{
	struct chaff_digest d;
	chaff_message_digest(m->data, m->len, &d);
	int rc = chaff_batch_add(r->batch, tk, &d, (enum chaff_class)cls, 0);
	if (rc != CHAFF_OK) {
		cli_error("%s: %s", m->path, chaff_strerror(rc));
		return -1;
	}
	ev->trained++;
	return 0;
}

static int commit(struct run *r)
{
	int rc = chaff_batch_commit(r->batch, NULL);
	if (rc != CHAFF_OK)
		cli_error("training failed: %s", chaff_strerror(rc));
	return rc == CHAFF_OK ? 0 : -1;
}

static void record(struct eval *ev, struct eval_msg *e, double score, double logit)
{
	e->score = score;
	e->rank = logit;
	e->verdict = score >= ev->params.spam_cutoff  ? CHAFF_VERDICT_SPAM
	             : score <= ev->params.ham_cutoff ? CHAFF_VERDICT_HAM
	                                              : CHAFF_VERDICT_UNSURE;
	e->scored = true;
	ev->scored++;
}

/*
 * TREC's online protocol for one message: score it, then learn its truth
 * as --train-on says. Until both classes have been trained there is no
 * score (CHAFF_EEMPTY): the message counts as 0.5 and is always trained,
 * or --train-on error would never train anything.
 */
static int online_one(struct eval *ev, struct run *r, size_t i, const struct input_msg *m)
{
	struct eval_msg *e = &ev->msgs[i];
	double t0 = cli_now();
	struct chaff_tokens tk;
	struct chaff_score s;
	int rc = chaff_tokenize(r->tok, m->data, m->len, &tk);
	if (rc == CHAFF_OK)
		rc = chaff_classify_tokens(r->cl, &tk, 0, &s);
	bool empty = rc == CHAFF_EEMPTY;
	if (rc != CHAFF_OK && !empty) {
		cli_error("%s: %s", e->name, chaff_strerror(rc));
		return -1;
	}
	record(ev, e, empty ? 0.5 : s.score, empty ? 0 : s.logit);
	ev->unscorable += empty;
	bool unsure = e->verdict == CHAFF_VERDICT_UNSURE;
	bool wrong = !unsure && (e->verdict == CHAFF_VERDICT_SPAM) != (e->label == CHAFF_SPAM);
	bool train = empty || ev->train_on == TRAIN_ALL || wrong ||
	             (ev->train_on == TRAIN_UNSURE && unsure);
	if (train && (learn(ev, r, m, &tk, e->label) < 0 || commit(r) < 0))
		return -1;
	ev->seconds += cli_now() - t0;
	return 0;
}

/* Batches of this many messages when training a whole part at once. */
enum { TRAIN_BATCH = 5000 };

static int train_one(struct eval *ev, struct run *r, size_t i, const struct input_msg *m)
{
	if (ev->msgs[i].fold == r->fold)
		return 0;
	double t0 = cli_now();
	struct chaff_tokens tk;
	int rc = chaff_tokenize(r->tok, m->data, m->len, &tk);
	if (rc != CHAFF_OK) {
		cli_error("%s: %s", ev->msgs[i].name, chaff_strerror(rc));
		return -1;
	}
	if (learn(ev, r, m, &tk, ev->msgs[i].label) < 0 ||
	    (chaff_batch_size(r->batch) >= TRAIN_BATCH && commit(r) < 0))
		return -1;
	ev->seconds += cli_now() - t0;
	return 0;
}

static int score_one(struct eval *ev, struct run *r, size_t i, const struct input_msg *m)
{
	struct eval_msg *e = &ev->msgs[i];
	if (e->fold != r->fold)
		return 0;
	double t0 = cli_now();
	struct chaff_score s;
	int rc = chaff_classify(r->cl, m->data, m->len, 0, &s);
	if (rc == CHAFF_EEMPTY)
		cli_error("fold %u: the messages trained hold no spam or no ham", r->fold + 1);
	else if (rc != CHAFF_OK)
		cli_error("%s: %s", e->name, chaff_strerror(rc));
	if (rc != CHAFF_OK)
		return -1;
	record(ev, e, s.score, s.logit);
	ev->seconds += cli_now() - t0;
	return 0;
}

typedef int (*visit_fn)(struct eval *ev, struct run *r, size_t i, const struct input_msg *m);

/* Calls fn for each message of the index in order. The messages are read
 * again on each pass rather than kept: memory holds one at a time. */
static int each_message(struct eval *ev, struct run *r, visit_fn fn)
{
	char err[8300];
	struct input *in;
	if (input_open(&in, &ev->index, 1, err, sizeof(err)) < 0) {
		cli_error("%s", err);
		return -1;
	}
	struct input_msg m;
	size_t i = 0;
	int got, rc = 0;
	while (rc == 0 && (got = input_next(in, &m, err, sizeof(err))) != 0) {
		if (got < 0) {
			cli_error("%s", err);
			rc = -1;
		} else if (i == ev->n || m.label != ev->msgs[i].label) {
			rc = -2;
		} else {
			rc = fn(ev, r, i++, &m);
		}
	}
	input_close(in);
	if (rc == -2 || (rc == 0 && i != ev->n)) {
		cli_error("%s: changed while being read", ev->index);
		rc = -1;
	}
	return rc;
}

/* Trains every part but one, then scores that one. */
static int run_part(struct eval *ev, unsigned fold)
{
	struct run r;
	if (run_open(ev, fold, &r) < 0)
		return -1;
	int rc = each_message(ev, &r, train_one);
	if (rc == 0) {
		double t0 = cli_now();
		rc = commit(&r);
		ev->seconds += cli_now() - t0;
	}
	if (rc == 0)
		rc = each_message(ev, &r, score_one);
	run_close(&r);
	return rc;
}

static int evaluate(struct eval *ev)
{
	if (ev->mode == MODE_ONLINE) {
		struct run r;
		if (run_open(ev, 0, &r) < 0)
			return -1;
		int rc = each_message(ev, &r, online_one);
		run_close(&r);
		return rc;
	}
	if (assign_parts(ev) < 0)
		return -1;
	if (ev->mode == MODE_SPLIT)
		return run_part(ev, 1);
	/* fold f holds messages only while some class has more than f */
	size_t most = ev->count[0] > ev->count[1] ? ev->count[0] : ev->count[1];
	for (unsigned f = 0; f < ev->folds && f < most; f++)
		if (run_part(ev, f) < 0)
			return -1;
	return 0;
}

/* What the report says, from the scored messages. */
struct tally {
	size_t n[2];       /* scored, by true class */
	size_t other[2];   /* called the other class: fn for spam, fp for ham */
	size_t unsure[2];
	double roca_pct, lam_pct;
};

static double pct(size_t k, size_t n)
{
	return n ? 100.0 * (double)k / (double)n : 0;
}

/* Counts verdicts and works out (1-ROCA)% and lam%; the ROC curve too
 * when --roc asks for it (*pts then belongs to the caller). */
static int measure(const struct eval *ev, struct tally *t, struct eval_point **pts,
                   size_t *npts)
{
	*t = (struct tally){ 0 };
	struct eval_sample *s = malloc((ev->scored + 1) * sizeof(*s));
	if (!s)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < ev->n; i++) {
		const struct eval_msg *e = &ev->msgs[i];
		if (!e->scored)
			continue;
		s[k++] = (struct eval_sample){ e->rank, e->label == CHAFF_SPAM };
		t->n[e->label]++;
		if (e->verdict == CHAFF_VERDICT_UNSURE)
			t->unsure[e->label]++;
		else if ((e->verdict == CHAFF_VERDICT_SPAM) != (e->label == CHAFF_SPAM))
			t->other[e->label]++;
	}
	eval_sort(s, k);
	t->roca_pct = eval_roca_pct(s, k);
	/* lam takes TREC's binary judgment, spam at or above spam_cutoff, so
	 * an unsure spam counts as a miss */
	t->lam_pct = eval_lam_pct(t->other[CHAFF_HAM], t->n[CHAFF_HAM],
	                          t->other[CHAFF_SPAM] + t->unsure[CHAFF_SPAM], t->n[CHAFF_SPAM]);
	*pts = NULL;
	*npts = 0;
	if (ev->roc) {
		*pts = malloc((k + 1) * sizeof(**pts));
		if (*pts)
			*npts = eval_roc_curve(s, k, *pts);
	}
	free(s);
	return ev->roc && !*pts ? -1 : 0;
}

static const char *mode_text(const struct eval *ev, char *buf, size_t len)
{
	if (ev->mode == MODE_ONLINE)
		snprintf(buf, len, "online, training %s", ev->train_on == TRAIN_ALL ? "every message"
		                                          : ev->train_on == TRAIN_ERROR
		                                                  ? "on errors"
		                                                  : "on errors and unsure");
	else if (ev->mode == MODE_SPLIT)
		snprintf(buf, len, "trained on the first %g of each class, %zu messages",
		         ev->ratio, ev->trained);
	else
		snprintf(buf, len, "%lu-fold cross-validation", ev->folds);
	return buf;
}

static void print_text(const struct eval *ev, const struct tally *t)
{
	char mode[200];
	size_t all = t->n[0] + t->n[1], uns = t->unsure[0] + t->unsure[1];
	printf("chaff eval %s: %s\n", ev->index, mode_text(ev, mode, sizeof(mode)));
	printf("messages         %zu scored (%zu spam, %zu ham)\n", all, t->n[CHAFF_SPAM],
	       t->n[CHAFF_HAM]);
	printf("(1-ROCA)%%        %.4f\n", t->roca_pct);
	printf("lam%%             %.4f (spam when score >= spam_cutoff %g)\n", t->lam_pct,
	       ev->params.spam_cutoff);
	printf("false positives  %zu of %zu ham (%.2f%%): ham called spam\n", t->other[CHAFF_HAM],
	       t->n[CHAFF_HAM], pct(t->other[CHAFF_HAM], t->n[CHAFF_HAM]));
	printf("false negatives  %zu of %zu spam (%.2f%%): spam called ham (score <= "
	       "ham_cutoff %g)\n",
	       t->other[CHAFF_SPAM], t->n[CHAFF_SPAM], pct(t->other[CHAFF_SPAM], t->n[CHAFF_SPAM]),
	       ev->params.ham_cutoff);
	printf("unsure           %zu of %zu spam (%.2f%%), %zu of %zu ham (%.2f%%), %zu of %zu "
	       "(%.2f%%)\n",
	       t->unsure[CHAFF_SPAM], t->n[CHAFF_SPAM], pct(t->unsure[CHAFF_SPAM], t->n[CHAFF_SPAM]),
	       t->unsure[CHAFF_HAM], t->n[CHAFF_HAM], pct(t->unsure[CHAFF_HAM], t->n[CHAFF_HAM]),
	       uns, all, pct(uns, all));
	printf("speed            %.0f messages/s (%zu scored, %zu trained in %.2f s)\n",
	       ev->seconds > 0 ? (double)ev->scored / ev->seconds : 0, ev->scored, ev->trained,
	       ev->seconds);
}

static void print_json(const struct eval *ev, const struct tally *t)
{
	size_t all = t->n[0] + t->n[1], uns = t->unsure[0] + t->unsure[1];
	printf("{\"index\":");
	cli_json_str(stdout, ev->index);
	printf(",\"mode\":\"%s\"", mode_names[ev->mode]);
	if (ev->mode == MODE_ONLINE)
		printf(",\"train_on\":\"%s\"", train_on_names[ev->train_on]);
	else if (ev->mode == MODE_SPLIT)
		printf(",\"split\":%g", ev->ratio);
	else
		printf(",\"folds\":%lu", ev->folds);
	printf(",\"messages\":%zu,\"spam\":%zu,\"ham\":%zu,\"one_minus_roca_pct\":%.6f,"
	       "\"lam_pct\":%.6f,\"spam_cutoff\":%g,\"ham_cutoff\":%g,"
	       "\"false_positives\":%zu,\"fp_rate_pct\":%.4f,"
	       "\"false_negatives\":%zu,\"fn_rate_pct\":%.4f,",
	       all, t->n[CHAFF_SPAM], t->n[CHAFF_HAM], t->roca_pct, t->lam_pct,
	       ev->params.spam_cutoff, ev->params.ham_cutoff, t->other[CHAFF_HAM],
	       pct(t->other[CHAFF_HAM], t->n[CHAFF_HAM]), t->other[CHAFF_SPAM],
	       pct(t->other[CHAFF_SPAM], t->n[CHAFF_SPAM]));
	printf("\"unsure\":{\"spam\":%zu,\"ham\":%zu,\"all\":%zu},"
	       "\"unsure_pct\":{\"spam\":%.4f,\"ham\":%.4f,\"all\":%.4f},",
	       t->unsure[CHAFF_SPAM], t->unsure[CHAFF_HAM], uns,
	       pct(t->unsure[CHAFF_SPAM], t->n[CHAFF_SPAM]), pct(t->unsure[CHAFF_HAM], t->n[CHAFF_HAM]),
	       pct(uns, all));
	printf("\"trained\":%zu,\"seconds\":%.3f,\"messages_per_second\":%.1f}\n", ev->trained,
	       ev->seconds, ev->seconds > 0 ? (double)ev->scored / ev->seconds : 0);
}

/* TREC's result lines: the judgment is binary, so unsure is ham. */
static int write_results(const struct eval *ev)
{
	FILE *f = fopen(ev->results, "w");
	if (!f) {
		cli_error("%s: %s", ev->results, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < ev->n; i++) {
		const struct eval_msg *e = &ev->msgs[i];
		if (e->scored)
			fprintf(f, "%s %s %.17g %s\n", e->name,
			        e->score >= ev->params.spam_cutoff ? "spam" : "ham", e->rank,
			        class_name(e->label));
	}
	int werr = ferror(f) != 0;
	int cerr = fclose(f) != 0; /* closed whatever the write did */
	if (werr || cerr) {
		cli_error("%s: writing failed", ev->results);
		return -1;
	}
	return 0;
}

static int write_roc(const struct eval *ev, const struct tally *t,
                     const struct eval_point *pts, size_t npts)
{
	FILE *f = fopen(ev->roc, "w");
	if (!f) {
		cli_error("%s: %s", ev->roc, strerror(errno));
		return -1;
	}
	char mode[200], title[100], sub[400];
	snprintf(title, sizeof(title), "ROC curve: (1-ROCA)%% = %.4f", t->roca_pct);
	snprintf(sub, sizeof(sub), "%s; %zu spam, %zu ham", mode_text(ev, mode, sizeof(mode)),
	         t->n[CHAFF_SPAM], t->n[CHAFF_HAM]);
	int werr = eval_roc_svg(f, pts, npts, title, sub) < 0;
	int cerr = fclose(f) != 0; /* closed whatever the write did */
	if (werr || cerr) {
		cli_error("%s: writing failed", ev->roc);
		return -1;
	}
	return 0;
}

static int report(const struct eval *ev)
{
	struct tally t;
	struct eval_point *pts;
	size_t npts;
	if (measure(ev, &t, &pts, &npts) < 0) {
		cli_error("out of memory");
		return -1;
	}
	int rc = 0;
	if (ev->results && write_results(ev) < 0)
		rc = -1;
	if (ev->roc && write_roc(ev, &t, pts, npts) < 0)
		rc = -1;
	free(pts);
	if (ev->json)
		print_json(ev, &t);
	else
		print_text(ev, &t);
	if (fflush(stdout) != 0) {
		cli_error("writing output failed");
		rc = -1;
	}
	return rc;
}

int cmd_eval(int argc, char **argv)
{
	struct eval ev = { .mode = MODE_ONLINE };
	int r = parse(argc, argv, &ev);
	if (r != 0)
		return r > 0 ? EXIT_OK : EXIT_USAGE;
	int status = EXIT_FAIL;
	if (collect(&ev) == 0 && evaluate(&ev) == 0) {
		/* an index sorted by class starves the online run of one class */
		if (ev.unscorable > ev.n / 10)
			cli_warn("%zu of %zu messages came before both classes were trained and count "
			         "as 0.5: online evaluation wants the index in time order, or the "
			         "classes mixed",
			         ev.unscorable, ev.n);
		if (report(&ev) == 0)
			status = EXIT_OK;
	}
	for (size_t i = 0; i < ev.n; i++)
		free(ev.msgs[i].name);
	free(ev.msgs);
	return status;
}
