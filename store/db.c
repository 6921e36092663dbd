/*
 * chaff_db: opening and checking a database, its metadata and parameters,
 * statistics, pruning, backup, and loading a dump. Training and scoring
 * live in engine/.
 */
#include "db.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void db_log(chaff_db *db, enum chaff_log_level level, const char *fmt, ...)
{
	db->logged++;
	if (!db->log)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	db->log(db->log_user, level, msg);
}

uint32_t db_today(void)
{
	return (uint32_t)(time(NULL) / 86400);
}

static int get_u64(chaff_db *db, struct store_txn *t, const char *name, uint64_t *v)
{
	size_t len = sizeof(*v);
	int rc = db->st->ops->meta_get(t, name, v, &len);
	if (rc == CHAFF_OK && len != sizeof(*v))
		rc = CHAFF_ECORRUPT;
	return rc;
}

static int put_u64(chaff_db *db, struct store_txn *t, const char *name, uint64_t v)
{
	return db->st->ops->meta_put(t, name, &v, sizeof(v));
}

int db_read_totals(chaff_db *db, struct store_txn *t, struct db_totals *out)
{
	uint64_t last = 0;
	int rc = get_u64(db, t, "spam", &out->spam);
	if (rc == CHAFF_OK)
		rc = get_u64(db, t, "ham", &out->ham);
	if (rc == CHAFF_OK)
		rc = get_u64(db, t, "last_train", &last);
	out->last_train = (int64_t)last;
	return rc == CHAFF_ENOTFOUND ? CHAFF_ECORRUPT : rc;
}

/* Whether the database, as t sees it, holds no training at all: no
 * messages counted, no tokens, no digests. */
static int db_is_empty(chaff_db *db, struct store_txn *t, bool *empty)
{
	struct db_totals tot;
	uint64_t tokens, digests, used, file;
	int rc = db_read_totals(db, t, &tot);
	if (rc == CHAFF_OK)
		rc = db->st->ops->info(t, &tokens, &digests, &used, &file);
	*empty = rc == CHAFF_OK && !tot.spam && !tot.ham && !tokens && !digests;
	return rc;
}

/* The same, in a read transaction of its own. */
static int db_is_empty_now(chaff_db *db, bool *empty)
{
	struct store_txn *t;
	*empty = false;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	rc = db_is_empty(db, t, empty);
	db->st->ops->abort(t);
	return rc;
}

int db_write_totals(chaff_db *db, struct store_txn *t, const struct db_totals *tot)
{
	int rc = put_u64(db, t, "spam", tot->spam);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "ham", tot->ham);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "last_train", (uint64_t)tot->last_train);
	return rc;
}

/* Defaults chosen on the SpamAssassin corpus by cross-validation inside
 * the training part only (README, "Choosing the defaults"). */
void chaff_params_default(struct chaff_params *p)
{
	if (!p)
		return;
	p->robs = 0.1;
	p->robx = 0.52;
	p->min_dev = 0.4;
	p->ham_cutoff = 0.3;
	p->spam_cutoff = 0.6;
	p->max_tokens = 100;
}

static const char *const param_names[] = {
        "robs", "robx", "min_dev", "ham_cutoff", "spam_cutoff", "max_tokens", NULL,
};

const char *const *chaff_param_names(void)
{
	return param_names;
}

static double *param_slot(struct chaff_params *p, const char *name)
{
	double *slots[] = {&p->robs,       &p->robx,        &p->min_dev,
	                   &p->ham_cutoff, &p->spam_cutoff, &p->max_tokens};
	for (size_t i = 0; param_names[i]; i++)
		if (strcmp(param_names[i], name) == 0)
			return slots[i];
	return NULL;
}

int chaff_params_set(struct chaff_params *p, const char *name, double value)
{
	if (!p || !name)
		return CHAFF_EINVAL;
	double *slot = param_slot(p, name);
	if (!slot)
		return CHAFF_ENOTFOUND;
	*slot = value;
	return CHAFF_OK;
}

int chaff_params_valid(const struct chaff_params *p)
{
	if (!p)
		return 0;
	/* robs from 1e-6: with a weight far smaller, s·x rounds and a token
	 * never seen would no longer score x */
	return isfinite(p->robs) && p->robs >= 1e-6 && p->robs <= 100 && p->robx > 0 && p->robx < 1 &&
	       p->min_dev >= 0 && p->min_dev < 0.5 && p->ham_cutoff >= 0 && p->spam_cutoff <= 1 &&
	       p->ham_cutoff <= p->spam_cutoff && p->max_tokens >= 0 && p->max_tokens <= 1e6 &&
	       p->max_tokens == floor(p->max_tokens);
}

int db_read_params(chaff_db *db, struct store_txn *t, struct chaff_params *out)
{
	size_t len = sizeof(*out);
	int rc = db->st->ops->meta_get(t, "params", out, &len);
	if (rc == CHAFF_OK && (len != sizeof(*out) || !chaff_params_valid(out)))
		rc = CHAFF_ECORRUPT;
	return rc;
}

/* Writes the metadata of a new database, unless another process wrote
 * it first: two first trainings may both have found none, and only the
 * first writer's seed and totals may stand. */
static int init_meta(chaff_db *db, uint32_t tok_flags)
{
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, true, &t);
	if (rc != CHAFF_OK)
		return rc;
	uint64_t schema;
	rc = get_u64(db, t, "schema", &schema);
	if (rc != CHAFF_ENOTFOUND) {
		db->st->ops->abort(t);
		return rc;
	}
	uint64_t seed = 0;
	/* A per-database seed keeps token hashes of one user's database from
	 * being computed in advance by someone who wants to collide them. */
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
	struct chaff_params p;
	chaff_params_default(&p);
	struct db_totals tot = {0, 0, 0};
	rc = put_u64(db, t, "schema", CHAFF_SCHEMA_VERSION);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "tokenizer", CHAFF_TOKENIZER_VERSION);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "tok_flags", tok_flags);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "seed", seed);
	if (rc == CHAFF_OK)
		rc = db->st->ops->meta_put(t, "params", &p, sizeof(p));
	if (rc == CHAFF_OK)
		rc = db_write_totals(db, t, &tot);
	if (rc != CHAFF_OK) {
		db->st->ops->abort(t);
		return rc;
	}
	return db->st->ops->commit(t);
}

/* Reads and checks the metadata: a database from another schema or
 * tokenizer is refused, saying why and what to do. */
static int check_meta(chaff_db *db, const char *where, const struct chaff_db_options *opt)
{
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	uint64_t schema = 0, tokv = 0, flags = 0, tokens = 0, digests = 0, used, file;
	rc = get_u64(db, t, "schema", &schema);
	/* no metadata: a database no training has filled yet (one under way,
	 * or one that failed), unless it holds tokens or digests: then its
	 * metadata is damaged */
	if (rc == CHAFF_ENOTFOUND &&
	    db->st->ops->info(t, &tokens, &digests, &used, &file) == CHAFF_OK &&
	    (tokens || digests))
		rc = CHAFF_ECORRUPT;
	db->st->ops->abort(t);
	if (rc == CHAFF_ECORRUPT) {
		db_log(db, CHAFF_LOG_ERROR,
		       "%s: the database is damaged (its metadata is missing); restore a backup or "
		       "retrain",
		       where);
		return rc;
	}
	if (rc == CHAFF_ENOTFOUND) {
		if (db->readonly) {
			db_log(db, CHAFF_LOG_ERROR, "%s: empty database (train it first)", where);
			return CHAFF_EEMPTY;
		}
		rc = init_meta(db, opt ? opt->tok_flags : 0);
		if (rc != CHAFF_OK)
			return rc;
		/* what is there now, ours or the other process's */
		rc = db->st->ops->begin(db->st, false, &t);
		if (rc != CHAFF_OK)
			return rc;
		rc = get_u64(db, t, "schema", &schema);
		db->st->ops->abort(t);
		if (rc != CHAFF_OK)
			return rc == CHAFF_ENOTFOUND ? CHAFF_ECORRUPT : rc;
	}
	if (rc != CHAFF_OK) {
		return rc;
	}
	if (schema != CHAFF_SCHEMA_VERSION) {
		db_log(db, CHAFF_LOG_ERROR,
		       "%s: database schema version %llu, this chaff reads version %d; dump it "
		       "with the chaff that wrote it ('chaff dump'), then 'chaff load' it here",
		       where, (unsigned long long)schema, CHAFF_SCHEMA_VERSION);
		return CHAFF_EVERSION;
	}
	rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	rc = get_u64(db, t, "tokenizer", &tokv);
	if (rc == CHAFF_OK)
		rc = get_u64(db, t, "tok_flags", &flags);
	if (rc == CHAFF_OK)
		rc = get_u64(db, t, "seed", &db->seed);
	db->st->ops->abort(t);
	if (rc != CHAFF_OK)
		return rc == CHAFF_ENOTFOUND ? CHAFF_ECORRUPT : rc;
	if (tokv != CHAFF_TOKENIZER_VERSION) {
		db_log(db, CHAFF_LOG_ERROR,
		       "%s: trained with tokenizer version %llu, this chaff tokenizes with version "
		       "%d, so its counts belong to other tokens; retrain: move the directory away "
		       "and run 'chaff train' on your spam and ham again",
		       where, (unsigned long long)tokv, CHAFF_TOKENIZER_VERSION);
		return CHAFF_EVERSION;
	}
	db->tok_flags = (uint32_t)flags;
	return CHAFF_OK;
}

static int finish_open(chaff_db *db, const char *where, const struct chaff_db_options *opt,
                       chaff_db **out)
{
	int rc = check_meta(db, where, opt);
	if (rc != CHAFF_OK) {
		chaff_db_close(db);
		return rc;
	}
	*out = db;
	return CHAFF_OK;
}

/* Forwards the store's messages, counting them: an open that failed
 * without a word from below gets one from here. */
static void forward_log(void *user, enum chaff_log_level level, const char *msg)
{
	chaff_db *db = user;
	db->logged++;
	if (db->log)
		db->log(db->log_user, level, msg);
}

int chaff_db_open(const char *dir, const struct chaff_db_options *opt, chaff_db **out)
{
	if (!dir || !out)
		return CHAFF_EINVAL;
	chaff_db *db = calloc(1, sizeof(*db));
	if (!db)
		return CHAFF_ENOMEM;
	uint32_t flags = opt ? opt->flags : 0;
	db->readonly = flags & CHAFF_DB_READONLY;
	db->log = opt ? opt->log : NULL;
	db->log_user = opt ? opt->log_user : NULL;
	int rc = store_lmdb_open(dir, db->readonly, (flags & CHAFF_DB_CREATE) && !db->readonly,
	                         opt ? opt->map_size : 0, forward_log, db, &db->st);
	if (rc == CHAFF_OK)
		rc = check_meta(db, dir, opt);
	if (rc != CHAFF_OK && !db->logged)
		db_log(db, CHAFF_LOG_ERROR, "%s: %s", dir, chaff_strerror(rc));
	if (rc != CHAFF_OK) {
		chaff_db_close(db);
		return rc;
	}
	*out = db;
	return CHAFF_OK;
}

int chaff_db_open_memory(const struct chaff_db_options *opt, chaff_db **out)
{
	/* a new memory database is empty: read-only, it could hold nothing */
	if (!out || (opt && (opt->flags & CHAFF_DB_READONLY)))
		return CHAFF_EINVAL;
	chaff_db *db = calloc(1, sizeof(*db));
	if (!db)
		return CHAFF_ENOMEM;
	db->log = opt ? opt->log : NULL;
	db->log_user = opt ? opt->log_user : NULL;
	int rc = store_memory_open(&db->st);
	if (rc != CHAFF_OK) {
		free(db);
		return rc;
	}
	return finish_open(db, "memory", opt, out);
}

void chaff_db_close(chaff_db *db)
{
	if (!db)
		return;
	if (db->st)
		db->st->ops->close(db->st);
	free(db);
}

int chaff_db_close_unmade(chaff_db *db)
{
	if (!db)
		return 0;
	const struct store_ops *ops = db->st->ops;
	bool removed = false;
	bool empty;
	if (ops->alone && ops->alone(db->st) && db_is_empty_now(db, &empty) == CHAFF_OK && empty)
		removed = ops->remove(db->st) == CHAFF_OK;
	chaff_db_close(db);
	return removed;
}

int chaff_db_params(chaff_db *db, struct chaff_params *out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	rc = db_read_params(db, t, out);
	db->st->ops->abort(t);
	return rc;
}

int chaff_db_get_param(chaff_db *db, const char *name, double *value)
{
	if (!db || !name || !value)
		return CHAFF_EINVAL;
	struct chaff_params p;
	double *slot = param_slot(&p, name);
	if (!slot)
		return CHAFF_ENOTFOUND;
	int rc = chaff_db_params(db, &p);
	if (rc == CHAFF_OK)
		*value = *slot;
	return rc;
}

int db_write_txn(chaff_db *db, int (*fn)(chaff_db *db, struct store_txn *t, void *u), void *u)
{
	if (db->readonly)
		return CHAFF_EACCES;
	for (;;) {
		struct store_txn *t;
		int rc = db->st->ops->begin(db->st, true, &t);
		if (rc != CHAFF_OK)
			return rc;
		rc = fn(db, t, u);
		if (rc == CHAFF_OK) {
			rc = db->st->ops->commit(t);
			if (rc != STORE_FULL)
				return rc;
		} else {
			db->st->ops->abort(t);
			if (rc != STORE_FULL)
				return rc;
		}
		rc = db->st->ops->grow(db->st);
		if (rc != CHAFF_OK)
			return rc;
	}
}

struct set_param {
	const char *name;
	double value;
};

static int set_param_txn(chaff_db *db, struct store_txn *t, void *u)
{
	struct set_param *sp = u;
	struct chaff_params p;
	int rc = db_read_params(db, t, &p);
	if (rc != CHAFF_OK)
		return rc;
	*param_slot(&p, sp->name) = sp->value;
	if (!chaff_params_valid(&p))
		return CHAFF_EINVAL;
	return db->st->ops->meta_put(t, "params", &p, sizeof(p));
}

int chaff_db_set_param(chaff_db *db, const char *name, double value)
{
	struct chaff_params p;
	if (!db || !name)
		return CHAFF_EINVAL;
	if (!param_slot(&p, name))
		return CHAFF_ENOTFOUND;
	struct set_param sp = {name, value};
	return db_write_txn(db, set_param_txn, &sp);
}

int chaff_db_tokenizer_config(chaff_db *db, struct chaff_tokenizer_config *cfg)
{
	if (!db || !cfg)
		return CHAFF_EINVAL;
	chaff_tokenizer_config_default(cfg);
	cfg->seed = db->seed;
	cfg->flags = db->tok_flags;
	cfg->log = db->log;
	cfg->log_user = db->log_user;
	return CHAFF_OK;
}

int chaff_db_stats(chaff_db *db, struct chaff_db_stats *out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	memset(out, 0, sizeof(*out));
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	struct db_totals tot = {0, 0, 0};
	rc = db_read_totals(db, t, &tot);
	if (rc == CHAFF_OK)
		rc = db->st->ops->info(t, &out->tokens, &out->digests, &out->bytes_used,
		                       &out->bytes_file);
	db->st->ops->abort(t);
	if (rc != CHAFF_OK) { /* nothing half-read */
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->spam_messages = tot.spam;
	out->ham_messages = tot.ham;
	out->last_train = tot.last_train;
	out->schema_version = CHAFF_SCHEMA_VERSION;
	out->tokenizer_version = CHAFF_TOKENIZER_VERSION;
	out->tok_flags = db->tok_flags;
	out->seed = db->seed;
	return rc;
}

int chaff_db_foreach(chaff_db *db,
                     int (*fn)(void *user, uint64_t hash, const struct chaff_record *r), void *user)
{
	if (!db || !fn)
		return CHAFF_EINVAL;
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	rc = db->st->ops->foreach (t, fn, user);
	db->st->ops->abort(t);
	return rc;
}

struct digest_walk {
	int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls);
	void *user;
};

int chaff_db_foreach_digest(chaff_db *db,
                            int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls),
                            void *user)
{
	if (!db || !fn)
		return CHAFF_EINVAL;
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	rc = db->st->ops->digest_foreach(t, fn, user);
	db->st->ops->abort(t);
	return rc;
}

/* Pruning collects the doomed keys in a read pass, then deletes them in
 * key order in one write transaction. */
struct prune {
	uint32_t oldest, min_count;
	uint64_t *keys;
	size_t n, cap;
	int err;
};

static int prune_pick(void *u, uint64_t key, const struct chaff_record *r)
{
	struct prune *p = u;
	bool old = p->oldest && r->day < p->oldest;
	bool rare = p->min_count && (uint64_t)r->spam + r->ham < p->min_count;
	if (!old && !rare)
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		uint64_t *k = realloc(p->keys, cap * sizeof(*k));
		if (!k)
			return CHAFF_ENOMEM;
		p->keys = k;
		p->cap = cap;
	}
	p->keys[p->n++] = key;
	return 0;
}

static int prune_txn(chaff_db *db, struct store_txn *t, void *u)
{
	struct prune *p = u;
	p->n = 0;
	int rc = db->st->ops->foreach (t, prune_pick, p);
	for (size_t i = 0; i < p->n && rc == CHAFF_OK; i++)
		rc = db->st->ops->del(t, p->keys[i]);
	return rc;
}

int chaff_db_prune(chaff_db *db, uint32_t days, uint32_t min_count, uint64_t *removed)
{
	if (removed)
		*removed = 0;
	if (!db)
		return CHAFF_EINVAL;
	uint32_t today = db_today();
	/* a token is old when last seen more than days ago; with days at
	 * today's number or more, none is (not even one of day 0, from a
	 * loaded dump) and the age test is off */
	struct prune p = {days && days < today ? today - days : 0, min_count, NULL, 0, 0, 0};
	int rc = db_write_txn(db, prune_txn, &p);
	if (removed)
		*removed = rc == CHAFF_OK ? p.n : 0;
	free(p.keys);
	return rc;
}

int chaff_db_backup(chaff_db *db, const char *dir)
{
	if (!db || !dir)
		return CHAFF_EINVAL;
	return db->st->ops->backup(db->st, dir);
}

static int read_image(chaff_db *db, struct store_txn *t, struct chaff_db_image *out)
{
	memset(out, 0, sizeof(*out));
	struct db_totals tot = {0, 0, 0};
	int rc = db_read_totals(db, t, &tot);
	if (rc == CHAFF_OK)
		rc = db_read_params(db, t, &out->params);
	out->seed = db->seed;
	out->tokenizer_version = CHAFF_TOKENIZER_VERSION;
	out->tok_flags = db->tok_flags;
	out->spam_messages = tot.spam;
	out->ham_messages = tot.ham;
	out->last_train = tot.last_train;
	return rc;
}

int chaff_db_image(chaff_db *db, struct chaff_db_image *out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	rc = read_image(db, t, out);
	db->st->ops->abort(t);
	return rc;
}

int chaff_db_dump(chaff_db *db, const struct chaff_dump_fns *fns, void *user)
{
	if (!db || !fns || !fns->image || !fns->token || !fns->digest)
		return CHAFF_EINVAL;
	struct store_txn *t;
	int rc = db->st->ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	struct chaff_db_image img;
	rc = read_image(db, t, &img);
	if (rc == CHAFF_OK)
		rc = fns->image(user, &img);
	if (rc == CHAFF_OK)
		rc = db->st->ops->foreach (t, fns->token, user);
	if (rc == CHAFF_OK)
		rc = db->st->ops->digest_foreach(t, fns->digest, user);
	db->st->ops->abort(t);
	return rc;
}

/* A loader keeps the records in memory and writes them all at commit, so a
 * load that fails part way leaves the database as it was. */
struct chaff_loader {
	chaff_db *db;
	struct chaff_db_image img;
	uint64_t *keys;
	struct chaff_record *recs;
	size_t n, cap;
	struct chaff_digest *digests;
	uint8_t *classes;
	size_t nd, dcap;
};

int chaff_loader_put_digest(chaff_loader *l, const struct chaff_digest *d, uint8_t cls)
{
	if (!l || !d || (cls != CHAFF_SPAM && cls != CHAFF_HAM))
		return CHAFF_EINVAL;
	if (l->nd == l->dcap) {
		size_t cap = l->dcap ? l->dcap * 2 : 1024;
		struct chaff_digest *nd = realloc(l->digests, cap * sizeof(*nd));
		if (!nd)
			return CHAFF_ENOMEM;
		l->digests = nd;
		uint8_t *nc = realloc(l->classes, cap);
		if (!nc)
			return CHAFF_ENOMEM;
		l->classes = nc;
		l->dcap = cap;
	}
	l->digests[l->nd] = *d;
	l->classes[l->nd++] = cls;
	return CHAFF_OK;
}

int chaff_loader_new(chaff_db *db, const struct chaff_db_image *img, chaff_loader **out)
{
	if (!db || !img || !out)
		return CHAFF_EINVAL;
	if (img->tokenizer_version != CHAFF_TOKENIZER_VERSION) {
		db_log(db, CHAFF_LOG_ERROR,
		       "the dump was made with tokenizer version %u, this chaff's is %d: its "
		       "tokens cannot be reused; retrain instead",
		       img->tokenizer_version, CHAFF_TOKENIZER_VERSION);
		return CHAFF_EVERSION;
	}
	if (!chaff_params_valid(&img->params))
		return CHAFF_EINVAL;
	bool empty;
	int rc = db_is_empty_now(db, &empty);
	if (rc != CHAFF_OK)
		return rc;
	if (!empty) {
		db_log(db, CHAFF_LOG_ERROR, "%s", "load needs an empty database");
		return CHAFF_EINVAL;
	}
	chaff_loader *l = calloc(1, sizeof(*l));
	if (!l)
		return CHAFF_ENOMEM;
	l->db = db;
	l->img = *img;
	*out = l;
	return CHAFF_OK;
}

int chaff_loader_put(chaff_loader *l, uint64_t hash, const struct chaff_record *r)
{
	if (!l || !r)
		return CHAFF_EINVAL;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint64_t *k = realloc(l->keys, cap * sizeof(*k));
		if (!k)
			return CHAFF_ENOMEM;
		l->keys = k;
		struct chaff_record *rr = realloc(l->recs, cap * sizeof(*rr));
		if (!rr)
			return CHAFF_ENOMEM;
		l->recs = rr;
		l->cap = cap;
	}
	l->keys[l->n] = hash;
	l->recs[l->n++] = *r;
	return CHAFF_OK;
}

static int load_txn(chaff_db *db, struct store_txn *t, void *u)
{
	chaff_loader *l = u;
	/* asked again where it counts: another process may have trained
	 * into the database since chaff_loader_new looked */
	bool empty;
	int rc = db_is_empty(db, t, &empty);
	if (rc != CHAFF_OK)
		return rc;
	if (!empty) {
		db_log(db, CHAFF_LOG_ERROR, "%s",
		       "load needs an empty database, and another process has trained into "
		       "this one meanwhile; nothing was loaded");
		return CHAFF_EINVAL;
	}
	struct db_totals tot = {l->img.spam_messages, l->img.ham_messages, l->img.last_train};
	rc = put_u64(db, t, "seed", l->img.seed);
	if (rc == CHAFF_OK)
		rc = put_u64(db, t, "tok_flags", l->img.tok_flags);
	if (rc == CHAFF_OK)
		rc = db->st->ops->meta_put(t, "params", &l->img.params, sizeof(l->img.params));
	if (rc == CHAFF_OK)
		rc = db_write_totals(db, t, &tot);
	for (size_t i = 0; i < l->n && rc == CHAFF_OK; i++)
		rc = db->st->ops->put(t, l->keys[i], &l->recs[i]);
	for (size_t i = 0; i < l->nd && rc == CHAFF_OK; i++)
		rc = db->st->ops->digest_put(t, &l->digests[i], l->classes[i]);
	return rc;
}

int chaff_loader_commit(chaff_loader *l)
{
	if (!l)
		return CHAFF_EINVAL;
	/* A load sets the seed and the tokenizer flags: a process that has
	 * the database open meanwhile would go on hashing with the old ones.
	 * So the load takes the database for this process alone (until it
	 * is closed), or is refused. */
	const struct store_ops *ops = l->db->st->ops;
	if (ops->alone && !ops->alone(l->db->st)) {
		db_log(l->db, CHAFF_LOG_ERROR, "%s",
		       "another process has the database open (a filter, chaff serve?): a load "
		       "changes its seed under it; close it and load again");
		return CHAFF_EBUSY;
	}
	int rc = db_write_txn(l->db, load_txn, l);
	if (rc == CHAFF_OK) {
		l->db->seed = l->img.seed;
		l->db->tok_flags = l->img.tok_flags;
	}
	return rc;
}

void chaff_loader_free(chaff_loader *l)
{
	if (!l)
		return;
	free(l->keys);
	free(l->recs);
	free(l->digests);
	free(l->classes);
	free(l);
}
