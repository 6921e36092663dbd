/*
 * The LMDB backend. One environment per database directory with three
 * named databases: "tokens" (blocks of tokens under 64-bit hash keys,
 * MDB_INTEGERKEY; see struct block), "meta" and "digests". LMDB gives the
 * rest of the design its guarantees: readers never block, one writer at
 * a time, and a commit is atomic and durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store.h"

/* A record is at most a 2-byte day and two 5-byte varints. */
enum { INITIAL_MAP = 64 << 20, RECORD_MAX = 12 };

struct lstore {
	struct store base;
	MDB_env *env;
	MDB_dbi tokens, meta, digests;
	char *dir;
	/* The folder, held with a shared flock() while the database is open,
	 * by every process; -1 when it could not be. l_alone() upgrades it to
	 * learn that no other process has the database open. */
	int dirfd;
	chaff_log_fn log;
	void *log_user;
	/* LMDB may change the map's size (adopting the size another process
	 * grew it to, or doubling it) only while this process has no
	 * transaction open: the map moves, and every open transaction's pages
	 * with it. The gate counts the open ones (and the calls that read the
	 * map without one); a resize waits until none is open, and transactions
	 * wait while one is pending, except that a read may start while this
	 * process writes (the commit's own reader thread: the writer waits for
	 * it, and no other process can grow the map while the write is open).
	 * No thread opens a second transaction while it holds one. */
	pthread_mutex_t gate;
	pthread_cond_t gate_cv;
	unsigned open_txns, open_writes, resizes;
	/* the folder, in this process's list of open databases */
	dev_t dev;
	ino_t ino;
	bool listed;
	struct lstore *next_open;
};

/*
 * The databases this process has open, by folder. LMDB must not open one
 * environment twice in a process: closing the second handle would drop
 * the first one's readers from the lock file, and another process's
 * writer could then reuse pages they still read. A second open is
 * refused; the threads share one handle. A child of fork() starts with
 * none open (it must not use its parent's).
 */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lstore *open_list;
static pthread_once_t open_once = PTHREAD_ONCE_INIT;

static void open_lock(void)
{
	pthread_mutex_lock(&open_mu);
}

static void open_unlock(void)
{
	pthread_mutex_unlock(&open_mu);
}

static void open_forget(void)
{
	open_list = NULL;
	pthread_mutex_unlock(&open_mu);
}

static void open_atfork(void)
{
	pthread_atfork(open_lock, open_unlock, open_forget);
}

/* Lists s under its folder: false when the folder is open already. */
static bool list_open(struct lstore *s, dev_t dev, ino_t ino)
{
	pthread_once(&open_once, open_atfork);
	pthread_mutex_lock(&open_mu);
	bool there = false;
	for (struct lstore *o = open_list; o && !there; o = o->next_open)
		there = o->dev == dev && o->ino == ino;
	if (!there) {
		s->dev = dev;
		s->ino = ino;
		s->listed = true;
		s->next_open = open_list;
		open_list = s;
	}
	pthread_mutex_unlock(&open_mu);
	return !there;
}

static void unlist_open(struct lstore *s)
{
	if (!s->listed)
		return;
	pthread_mutex_lock(&open_mu);
	for (struct lstore **o = &open_list; *o; o = &(*o)->next_open)
		if (*o == s) {
			*o = s->next_open;
			break;
		}
	pthread_mutex_unlock(&open_mu);
	s->listed = false;
}

/* One token in a block being read or changed. */
struct tok {
	uint64_t key;
	struct chaff_record r;
};

/*
 * Tokens are stored in blocks: each LMDB record of "tokens" holds up to
 * BLOCK_MAX tokens with neighbouring keys, under the key of its first.
 * A block covers the keys from its own key up to the next block's: the
 * first block also covers every key below its own. Writing a mailbox's
 * worth of tokens then takes one LMDB put per block instead of one per
 * token (each put walks the tree from its root), and the file holds 8
 * bytes of key and about 4 of counts per token, without LMDB's node
 * header and index of about 10 bytes more.
 */
enum { BLOCK_MAX = 32, ENTRY_MAX = 8 + RECORD_MAX, SPILL = 2 * BLOCK_MAX };

/* The block a transaction works in, decoded. Changes collect here and
 * are written when the transaction moves to another block or ends. */
struct block {
	bool loaded; /* holds the tokens of the keys lo..hi (inclusive) */
	bool dirty;
	bool stored; /* its record exists, under skey */
	uint64_t lo, hi, skey;
	size_t n;
	struct tok a[SPILL + 1];
};

struct store_txn {
	struct lstore *s;
	MDB_txn *txn;
	bool write;
	/* Write transactions that found no tokens: blocks written in rising
	 * key order append, which fills every page (a split in the middle of
	 * the tree leaves two half-full pages). A first bulk training writes
	 * that way. */
	bool append;
	uint64_t last_key;
	bool wrote; /* last_key holds a key written */
	/* A block that could not be written spoils the transaction: every
	 * later call on its tokens, and its commit, returns this error. */
	int err;
	/* The number of tokens, kept in the metadata: read on first need,
	 * written back at commit when it changed. */
	bool count_known, count_changed;
	uint64_t count;
	MDB_cursor *cur; /* the tokens cursor, opened on first use */
	struct block blk;
};

/* The tokens cursor, opened on first use; NULL when that fails. */
static MDB_cursor *cursor(struct store_txn *t)
{
	if (!t->cur && mdb_cursor_open(t->txn, t->s->tokens, &t->cur) != MDB_SUCCESS)
		t->cur = NULL;
	return t->cur;
}

static void close_cursor(struct store_txn *t)
{
	if (t->cur)
		mdb_cursor_close(t->cur);
	t->cur = NULL;
}

static _Thread_local bool quiet_thread;

void store_quiet_thread(bool quiet)
{
	quiet_thread = quiet;
}

static void logf_(struct lstore *s, enum chaff_log_level lvl, const char *fmt, const char *a,
                  const char *b)
{
	if (!s->log || quiet_thread)
		return;
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, a, b);
	s->log(s->log_user, lvl, msg);
}

/* LMDB checks its pages with assertions, and when one fails (a damaged
 * file) it prints the check and calls abort(). The log says instead which
 * database it is, what failed and what to do, and the abort comes at once,
 * as LMDB's would: the process's SIGABRT handler decides what follows
 * (chaff exits 3 after that one line; chaff filter passes the message
 * on). */
static void on_assert(MDB_env *env, const char *msg)
{
	struct lstore *s = mdb_env_get_userctx(env);
	if (s)
		logf_(s, CHAFF_LOG_ERROR,
		      "%s: the database is damaged (LMDB: %s); restore a backup or retrain", s->dir,
		      msg);
	abort();
}

/* A new LMDB environment for s, with its log and the named tables. */
static int env_create(struct lstore *s)
{
	int rc = mdb_env_create(&s->env);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_userctx(s->env, s);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_assert(s->env, on_assert);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxdbs(s->env, 4);
	return rc;
}

/* True when the file system holding dir has (next to) no room left for
 * this process (root may use the blocks kept for it). */
static bool disk_full(const char *dir)
{
	struct statvfs v;
	if (statvfs(dir, &v) != 0)
		return false;
	uint64_t blocks = geteuid() == 0 ? v.f_bfree : v.f_bavail;
	return blocks * v.f_frsize < 64 * 1024;
}

/* LMDB and errno codes to chaff's, with the detail logged. */
static int map_rc(struct lstore *s, int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return CHAFF_OK;
	case MDB_NOTFOUND: return CHAFF_ENOTFOUND;
	case MDB_MAP_FULL: return STORE_FULL;
	case ENOSPC: return CHAFF_ENOSPC;
	case EIO:
		/* LMDB turns a short write, which is how a full disk often
		 * shows, into EIO: when the database's disk has no room left,
		 * that is the error to name */
		if (disk_full(s->dir))
			return CHAFF_ENOSPC;
		break;
	case ENOMEM: return CHAFF_ENOMEM;
	case ENOENT:
		logf_(s, CHAFF_LOG_ERROR, "%s: %s", s->dir, "no database here (train one first)");
		return CHAFF_ENOTFOUND;
	case EACCES:
	case EROFS:
	case EPERM: return CHAFF_EACCES;
	case MDB_VERSION_MISMATCH: return CHAFF_EVERSION;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID: return CHAFF_ECORRUPT;
	}
	logf_(s, CHAFF_LOG_ERROR, "%s: %s", s->dir, mdb_strerror(rc));
	return CHAFF_EDB;
}

/*
 * A token's record on disk: the day (days since 1970, two bytes, good
 * until 2149) little-endian, then the spam and ham counts as LEB128
 * varints. Most tokens have counts below 128, so a record is 4 bytes
 * instead of 10.
 */
static size_t put_varint(unsigned char *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static const unsigned char *get_varint(const unsigned char *p, const unsigned char *end,
                                       uint32_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; p < end && shift < 35; shift += 7) {
		unsigned char c = *p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			if (v > UINT32_MAX)
				return NULL;
			*out = (uint32_t)v;
			return p;
		}
	}
	return NULL;
}

/* A day as the file keeps it: two bytes, later days held at the last. */
static uint16_t disk_day(uint32_t day)
{
	return day > UINT16_MAX ? UINT16_MAX : (uint16_t)day;
}

static size_t pack(unsigned char *v, const struct chaff_record *r)
{
	uint16_t day = disk_day(r->day);
	v[0] = (unsigned char)day;
	v[1] = (unsigned char)(day >> 8);
	size_t n = 2 + put_varint(v + 2, r->spam);
	return n + put_varint(v + n, r->ham);
}

/* A block on disk: its tokens in rising key order, each its key (8 bytes
 * in the machine's order, as LMDB keeps integer keys) and its record. */
static size_t encode_block(unsigned char *v, const struct tok *a, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(v + len, &a[i].key, sizeof(a[i].key));
		len += sizeof(a[i].key);
		len += pack(v + len, &a[i].r);
	}
	return len;
}

/* The block stored under key, into a[0..*n): CHAFF_ECORRUPT unless it
 * holds 1 to BLOCK_MAX tokens in rising key order, the first under key. */
static int decode_block(uint64_t key, const MDB_val *v, struct tok *a, size_t *n)
{
	const unsigned char *p = v->mv_data, *end = p + v->mv_size;
	size_t i = 0;
	for (; p && p < end; i++) {
		if (i == BLOCK_MAX || end - p < 8 + 4)
			return CHAFF_ECORRUPT;
		memcpy(&a[i].key, p, sizeof(a[i].key));
		if (i ? a[i].key <= a[i - 1].key : a[i].key != key)
			return CHAFF_ECORRUPT;
		a[i].r.day = (uint32_t)p[8] | (uint32_t)p[9] << 8;
		p = get_varint(p + 10, end, &a[i].r.spam);
		p = p ? get_varint(p, end, &a[i].r.ham) : NULL;
	}
	if (!p || i == 0)
		return CHAFF_ECORRUPT;
	*n = i;
	return CHAFF_OK;
}

/* Through the gate (see struct lstore): a transaction, or a look at the
 * map without one, is about to start. */
static void gate_enter(struct lstore *s, bool write)
{
	pthread_mutex_lock(&s->gate);
	while (s->resizes && !(s->open_writes && !write))
		pthread_cond_wait(&s->gate_cv, &s->gate);
	s->open_txns++;
	s->open_writes += write;
	pthread_mutex_unlock(&s->gate);
}

static void gate_leave(struct lstore *s, bool write)
{
	pthread_mutex_lock(&s->gate);
	s->open_txns--;
	s->open_writes -= write;
	if (!s->open_txns)
		pthread_cond_broadcast(&s->gate_cv);
	pthread_mutex_unlock(&s->gate);
}

/* Sets the map's size (0: the size another process grew it to) once this
 * process has no transaction open; none starts meanwhile. */
static int gate_resize(struct lstore *s, size_t size)
{
	pthread_mutex_lock(&s->gate);
	s->resizes++;
	while (s->open_txns)
		pthread_cond_wait(&s->gate_cv, &s->gate);
	int rc = mdb_env_set_mapsize(s->env, size);
	s->resizes--;
	pthread_cond_broadcast(&s->gate_cv);
	pthread_mutex_unlock(&s->gate);
	return rc;
}

static int l_begin(struct store *st, bool write, struct store_txn **out)
{
	struct lstore *s = (struct lstore *)st;
	struct store_txn *t = malloc(sizeof(*t));
	if (!t)
		return CHAFF_ENOMEM;
	t->s = s;
	t->write = write;
	gate_enter(s, write);
	int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	/* Another process grew the map: adopt its size and retry (again when
	 * it grew once more meanwhile). */
	for (int tries = 0; rc == MDB_MAP_RESIZED && tries < 100; tries++) {
		gate_leave(s, write);
		gate_resize(s, 0);
		gate_enter(s, write);
		rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	}
	if (rc != MDB_SUCCESS) {
		gate_leave(s, write);
		free(t);
		return map_rc(s, rc);
	}
	MDB_stat ms;
	t->append = write && mdb_stat(t->txn, s->tokens, &ms) == MDB_SUCCESS && ms.ms_entries == 0;
	t->last_key = 0;
	t->wrote = false;
	t->err = CHAFF_OK;
	t->count_known = t->count_changed = false;
	t->count = 0;
	t->cur = NULL;
	t->blk.loaded = t->blk.dirty = false;
	*out = t;
	return CHAFF_OK;
}

/* The metadata entry that holds the number of tokens. */
static const char COUNT_NAME[] = "token_count";

/* Counts the tokens block by block: for a database whose count is
 * missing (its metadata damaged). */
static int count_blocks(struct store_txn *t, uint64_t *out);
static int l_meta_get(struct store_txn *t, const char *name, void *buf, size_t *len);
static int l_meta_put(struct store_txn *t, const char *name, const void *buf, size_t len);

static int count_load(struct store_txn *t)
{
	if (t->count_known)
		return CHAFF_OK;
	size_t len = sizeof(t->count);
	int rc = l_meta_get(t, COUNT_NAME, &t->count, &len);
	if (rc == CHAFF_OK && len != sizeof(t->count))
		rc = CHAFF_ECORRUPT;
	else if (rc == CHAFF_ENOTFOUND)
		rc = count_blocks(t, &t->count);
	t->count_known = rc == CHAFF_OK;
	return rc;
}

static void count_add(struct store_txn *t, int d)
{
	t->count += (uint64_t)(int64_t)d;
	t->count_changed = true;
}

/* Writes a[0..n) as blocks of at most BLOCK_MAX tokens, of even sizes,
 * each under its first key; the block's own record goes first when it is
 * not under the first key any more (or nothing is left of it). */
static int write_blocks(struct store_txn *t, const struct tok *a, size_t n)
{
	struct block *b = &t->blk;
	MDB_cursor *c = cursor(t);
	if (!c)
		return CHAFF_EDB;
	if (b->stored && (n == 0 || a[0].key != b->skey)) {
		MDB_val k = {sizeof(b->skey), &b->skey};
		int rc = mdb_del(t->txn, t->s->tokens, &k, NULL);
		if (rc != MDB_SUCCESS)
			return map_rc(t->s, rc);
	}
	b->stored = false;
	size_t parts = (n + BLOCK_MAX - 1) / BLOCK_MAX;
	for (size_t i = 0, p = 0; p < parts; p++) {
		size_t m = (n - i) / (parts - p);
		unsigned char buf[BLOCK_MAX * ENTRY_MAX];
		uint64_t key = a[i].key;
		MDB_val k = {sizeof(key), &key}, v = {encode_block(buf, a + i, m), buf};
		unsigned flags = 0;
		if (t->append) {
			if (!t->wrote || key > t->last_key)
				flags = MDB_APPEND;
			else
				t->append = false; /* out of order: plain puts from here on */
			t->last_key = key;
			t->wrote = true;
		}
		int rc = mdb_cursor_put(c, &k, &v, flags);
		if (rc != MDB_SUCCESS)
			return map_rc(t->s, rc);
		i += m;
	}
	return CHAFF_OK;
}

/* Writes the block being worked in, if it changed, and lets it go. */
static int flush(struct store_txn *t)
{
	struct block *b = &t->blk;
	if (t->err)
		return t->err;
	int rc = b->loaded && b->dirty ? write_blocks(t, b->a, b->n) : CHAFF_OK;
	b->loaded = b->dirty = false;
	t->err = rc;
	return rc;
}

/* Makes the block that covers key the one being worked in. */
static int load(struct store_txn *t, uint64_t key)
{
	struct block *b = &t->blk;
	if (t->err)
		return t->err;
	if (b->loaded && key >= b->lo && key <= b->hi)
		return CHAFF_OK;
	int rc = flush(t);
	if (rc != CHAFF_OK)
		return rc;
	MDB_cursor *c = cursor(t);
	if (!c)
		return CHAFF_EDB;
	uint64_t at = key, hi = UINT64_MAX;
	bool know_hi = false, first = false;
	MDB_val k = {sizeof(at), &at}, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND) { /* above every block's key: the last one's */
		know_hi = true;
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		if (rc == MDB_NOTFOUND) { /* no tokens at all */
			*b = (struct block){.loaded = true, .lo = 0, .hi = UINT64_MAX};
			return CHAFF_OK;
		}
	}
	if (rc != MDB_SUCCESS)
		return map_rc(t->s, rc);
	if (k.mv_size != sizeof(at))
		return CHAFF_ECORRUPT;
	memcpy(&at, k.mv_data, sizeof(at));
	if (at > key) {
		/* the block before covers key; or, when there is none, this
		 * one, the first, which covers every key below its own too */
		hi = at - 1;
		know_hi = true;
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
		if (rc == MDB_NOTFOUND) {
			first = true;
			know_hi = false; /* (the block after this one bounds it) */
			hi = UINT64_MAX;
			k = (MDB_val){sizeof(at), &at};
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
		}
		if (rc != MDB_SUCCESS)
			return rc == MDB_NOTFOUND ? CHAFF_ECORRUPT : map_rc(t->s, rc);
		if (k.mv_size != sizeof(at))
			return CHAFF_ECORRUPT;
		memcpy(&at, k.mv_data, sizeof(at));
	}
	rc = decode_block(at, &v, b->a, &b->n);
	if (rc != CHAFF_OK)
		return rc;
	if (!know_hi) {
		uint64_t next;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc == MDB_SUCCESS) {
			if (k.mv_size != sizeof(next))
				return CHAFF_ECORRUPT;
			memcpy(&next, k.mv_data, sizeof(next));
			hi = next - 1;
		} else if (rc != MDB_NOTFOUND) {
			return map_rc(t->s, rc);
		}
	}
	if (b->a[b->n - 1].key > hi) /* reaches into the next block's keys */
		return CHAFF_ECORRUPT;
	b->lo = first ? 0 : at;
	b->hi = hi;
	b->skey = at;
	b->stored = true;
	b->dirty = false;
	b->loaded = true;
	return CHAFF_OK;
}

/* The index of key in the loaded block, or where it would go. */
static size_t find(const struct block *b, uint64_t key)
{
	if (b->n && b->a[b->n - 1].key < key)
		return b->n; /* after them all, as a training's rewrite puts */
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (b->a[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int l_commit(struct store_txn *t)
{
	int rc = t->write ? flush(t) : CHAFF_OK;
	if (rc == CHAFF_OK && t->count_changed)
		rc = l_meta_put(t, COUNT_NAME, &t->count, sizeof(t->count));
	close_cursor(t);
	struct lstore *s = t->s;
	if (rc != CHAFF_OK)
		mdb_txn_abort(t->txn);
	else
		rc = map_rc(s, mdb_txn_commit(t->txn));
	gate_leave(s, t->write);
	free(t);
	return rc;
}

static void l_abort(struct store_txn *t)
{
	close_cursor(t);
	mdb_txn_abort(t->txn);
	gate_leave(t->s, t->write);
	free(t);
}

static int l_get(struct store_txn *t, uint64_t key, struct chaff_record *out)
{
	int rc = load(t, key);
	if (rc != CHAFF_OK)
		return rc;
	const struct block *b = &t->blk;
	size_t i = find(b, key);
	if (i == b->n || b->a[i].key != key)
		return CHAFF_ENOTFOUND;
	*out = b->a[i].r;
	return CHAFF_OK;
}

static int l_put(struct store_txn *t, uint64_t key, const struct chaff_record *r)
{
	int rc = load(t, key);
	if (rc != CHAFF_OK)
		return rc;
	struct block *b = &t->blk;
	size_t i = find(b, key);
	/* the day as it will read back from the file */
	struct chaff_record rec = *r;
	rec.day = disk_day(r->day);
	b->dirty = true;
	if (i < b->n && b->a[i].key == key) {
		b->a[i].r = rec;
		return CHAFF_OK;
	}
	rc = count_load(t);
	if (rc != CHAFF_OK)
		return rc;
	memmove(b->a + i + 1, b->a + i, (b->n - i) * sizeof(*b->a));
	b->a[i] = (struct tok){key, rec};
	b->n++;
	count_add(t, 1);
	if (b->n <= SPILL)
		return CHAFF_OK;
	/* Full: all but the last BLOCK_MAX tokens are written, and those
	 * stay, as a block of their own, for the puts that follow (tokens
	 * put in rising order, as a training writes them, go there). */
	size_t keep = BLOCK_MAX, out = b->n - keep;
	rc = write_blocks(t, b->a, out);
	if (rc != CHAFF_OK)
		return t->err = rc;
	memmove(b->a, b->a + out, keep * sizeof(*b->a));
	b->n = keep;
	b->lo = b->a[0].key;
	return CHAFF_OK;
}

static int l_del(struct store_txn *t, uint64_t key)
{
	int rc = load(t, key);
	if (rc != CHAFF_OK)
		return rc;
	struct block *b = &t->blk;
	size_t i = find(b, key);
	if (i == b->n || b->a[i].key != key)
		return CHAFF_ENOTFOUND;
	rc = count_load(t);
	if (rc != CHAFF_OK)
		return rc;
	memmove(b->a + i, b->a + i + 1, (b->n - i - 1) * sizeof(*b->a));
	b->n--;
	b->dirty = true;
	count_add(t, -1);
	return CHAFF_OK;
}

static int l_clear(struct store_txn *t)
{
	if (t->err)
		return t->err;
	close_cursor(t);
	t->blk.loaded = t->blk.dirty = false;
	t->append = true; /* the tree is empty now */
	t->last_key = 0;
	t->wrote = false;
	t->count_known = t->count_changed = true;
	t->count = 0;
	return map_rc(t->s, mdb_drop(t->txn, t->s->tokens, 0));
}

/* Walks a named database in key order, handing each pair to visit; a
 * non-zero return of visit stops the walk and is returned. */
static int walk(struct store_txn *t, MDB_dbi dbi,
                int (*visit)(const MDB_val *k, const MDB_val *v, void *u), void *u)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(t->txn, dbi, &c);
	if (rc != MDB_SUCCESS)
		return map_rc(t->s, rc);
	MDB_val k, v;
	int ret = CHAFF_OK;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ret = visit(&k, &v, u);
		if (ret)
			break;
	}
	if (!ret && rc != MDB_NOTFOUND)
		ret = map_rc(t->s, rc);
	mdb_cursor_close(c);
	return ret;
}

struct token_visit {
	store_token_fn fn; /* NULL: only count */
	void *user;
	uint64_t count;
	uint64_t last; /* the last key of the block before, if any */
	bool any;
};

static int visit_block(const MDB_val *k, const MDB_val *v, void *u)
{
	struct token_visit *tv = u;
	struct tok a[BLOCK_MAX];
	uint64_t key;
	size_t n = 0;
	if (k->mv_size != sizeof(key))
		return CHAFF_ECORRUPT;
	memcpy(&key, k->mv_data, sizeof(key));
	int rc = decode_block(key, v, a, &n);
	if (rc != CHAFF_OK || (tv->any && a[0].key <= tv->last))
		return rc != CHAFF_OK ? rc : CHAFF_ECORRUPT; /* blocks overlap */
	tv->last = a[n - 1].key;
	tv->any = true;
	tv->count += n;
	for (size_t i = 0; i < n && rc == CHAFF_OK && tv->fn; i++)
		rc = tv->fn(tv->user, a[i].key, &a[i].r);
	return rc;
}

static int count_blocks(struct store_txn *t, uint64_t *out)
{
	struct token_visit tv = {NULL, NULL, 0, 0, false};
	int rc = walk(t, t->s->tokens, visit_block, &tv);
	*out = tv.count;
	return rc;
}

static int l_foreach(struct store_txn *t, store_token_fn fn, void *user)
{
	/* the walk reads what is stored: this transaction's changes first */
	int rc = flush(t);
	if (rc != CHAFF_OK)
		return rc;
	struct token_visit tv = {fn, user, 0, 0, false};
	return walk(t, t->s->tokens, visit_block, &tv);
}

static int l_meta_get(struct store_txn *t, const char *name, void *buf, size_t *len)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(t->txn, t->s->meta, &k, &v);
	if (rc != MDB_SUCCESS)
		return map_rc(t->s, rc);
	if (v.mv_size > *len)
		return CHAFF_ECORRUPT;
	memcpy(buf, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return CHAFF_OK;
}

static int l_meta_put(struct store_txn *t, const char *name, const void *buf, size_t len)
{
	MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)buf};
	return map_rc(t->s, mdb_put(t->txn, t->s->meta, &k, &v, 0));
}

static int l_digest_get(struct store_txn *t, const struct chaff_digest *d, uint8_t *cls)
{
	MDB_val k = {sizeof(d->bytes), (void *)d->bytes}, v;
	int rc = mdb_get(t->txn, t->s->digests, &k, &v);
	if (rc != MDB_SUCCESS)
		return map_rc(t->s, rc);
	if (v.mv_size != 1)
		return CHAFF_ECORRUPT;
	*cls = *(const uint8_t *)v.mv_data;
	return CHAFF_OK;
}

static int l_digest_put(struct store_txn *t, const struct chaff_digest *d, uint8_t cls)
{
	MDB_val k = {sizeof(d->bytes), (void *)d->bytes}, v = {1, &cls};
	return map_rc(t->s, mdb_put(t->txn, t->s->digests, &k, &v, 0));
}

static int l_digest_del(struct store_txn *t, const struct chaff_digest *d)
{
	MDB_val k = {sizeof(d->bytes), (void *)d->bytes};
	return map_rc(t->s, mdb_del(t->txn, t->s->digests, &k, NULL));
}

struct digest_visit {
	int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls);
	void *user;
};

static int visit_digest(const MDB_val *k, const MDB_val *v, void *u)
{
	struct digest_visit *dv = u;
	struct chaff_digest d;
	if (k->mv_size != sizeof(d.bytes) || v->mv_size != 1)
		return CHAFF_ECORRUPT;
	memcpy(d.bytes, k->mv_data, sizeof(d.bytes));
	return dv->fn(dv->user, &d, *(const uint8_t *)v->mv_data);
}

static int l_digest_foreach(struct store_txn *t,
                            int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls),
                            void *user)
{
	struct digest_visit dv = {fn, user};
	return walk(t, t->s->digests, visit_digest, &dv);
}

static uint64_t l_generation(struct store *st)
{
	struct lstore *s = (struct lstore *)st;
	MDB_envinfo ei;
	gate_enter(s, false); /* the meta pages are in the map */
	int rc = mdb_env_info(s->env, &ei);
	gate_leave(s, false);
	return rc == MDB_SUCCESS ? (uint64_t)ei.me_last_txnid : 0;
}

static uint64_t l_txn_generation(struct store_txn *t)
{
	return (uint64_t)mdb_txn_id(t->txn);
}

static int l_info(struct store_txn *t, uint64_t *tokens, uint64_t *digests, uint64_t *used,
                  uint64_t *file)
{
	MDB_stat st;
	MDB_envinfo ei;
	int rc = count_load(t);
	if (rc != CHAFF_OK)
		return rc;
	*tokens = t->count;
	rc = mdb_stat(t->txn, t->s->digests, &st);
	if (rc != MDB_SUCCESS)
		return map_rc(t->s, rc);
	*digests = st.ms_entries;
	mdb_env_info(t->s->env, &ei);
	*used = (uint64_t)(ei.me_last_pgno + 1) * st.ms_psize;
	char path[4096];
	struct stat fs;
	snprintf(path, sizeof(path), "%s/data.mdb", t->s->dir);
	*file = stat(path, &fs) == 0 ? (uint64_t)fs.st_size : 0;
	return CHAFF_OK;
}

/* Doubling keeps the number of resizes logarithmic in the database size;
 * the map is address space, not memory or disk, until pages are used. */
static int l_grow(struct store *st)
{
	struct lstore *s = (struct lstore *)st;
	MDB_envinfo ei;
	gate_enter(s, false);
	mdb_env_info(s->env, &ei);
	gate_leave(s, false);
	return map_rc(s, gate_resize(s, ei.me_mapsize * 2));
}

static int l_backup(struct store *st, const char *dir)
{
	struct lstore *s = (struct lstore *)st;
	bool made = mkdir(dir, 0700) == 0;
	if (!made && errno != EEXIST) {
		int e = errno; /* the log callback may change errno */
		logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir, strerror(e));
		return e == EACCES || e == EROFS ? CHAFF_EACCES : CHAFF_EIO;
	}
	/* the copy is as private as the database (0600), also in a folder
	 * that was there: LMDB makes its file as the umask allows */
	mode_t mask = umask(077);
	int rc;
	for (int tries = 0;; tries++) {
		gate_enter(s, false); /* the copy reads the map */
		rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
		gate_leave(s, false);
		if (rc != MDB_MAP_RESIZED || tries == 100)
			break;
		/* another process grew the database past this one's map: the
		 * copy's file, made before its transaction failed, goes, the
		 * map takes the new size, and the copy starts again */
		char path[4096];
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		unlink(path);
		gate_resize(s, 0);
	}
	umask(mask);
	if (rc == MDB_SUCCESS)
		return CHAFF_OK;
	/* A copy cut short (a full disk) is no database: it goes, and the
	 * folder too when this call made it, so that the next try finds the
	 * place as the first did. (LMDB makes the file only when none is
	 * there: EEXIST leaves someone else's file alone.) */
	if (rc != EEXIST) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		unlink(path);
		if (made)
			rmdir(dir);
	}
	/* said once, naming the copy (map_rc would name the database) */
	logf_(s, CHAFF_LOG_ERROR, "backup to %s: %s", dir, mdb_strerror(rc));
	return rc == EACCES || rc == EROFS || rc == EPERM ? CHAFF_EACCES
	       : rc == ENOSPC || rc == EDQUOT             ? CHAFF_ENOSPC
	                                                  : CHAFF_EIO;
}

static void l_close(struct store *st)
{
	struct lstore *s = (struct lstore *)st;
	unlist_open(s);
	if (s->env)
		mdb_env_close(s->env);
	if (s->dirfd >= 0)
		close(s->dirfd); /* and with it the folder's lock */
	pthread_cond_destroy(&s->gate_cv);
	pthread_mutex_destroy(&s->gate);
	free(s->dir);
	free(s);
}

/* The folder's shared lock on fd, waiting for at most about a second
 * while another process holds it alone (a load, or the removal of a
 * database never trained into, each brief): true when taken. */
static bool lock_shared(int fd)
{
	enum { TRIES = 200, PAUSE_US = 5000 };
	for (int i = 0; i < TRIES; i++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return false;
		usleep(PAUSE_US);
	}
	return false;
}

/* Takes the folder's lock for this process alone, without waiting: true
 * when no other process has the database open (or is opening it), and
 * then none can until this one closes it. */
static bool l_alone(struct store *st)
{
	struct lstore *s = (struct lstore *)st;
	if (s->dirfd < 0)
		return false;
	if (flock(s->dirfd, LOCK_EX | LOCK_NB) == 0)
		return true;
	/* A conversion that fails may have dropped the shared lock (flock(2)
	 * converts by removing, then taking): take it again, waiting as an
	 * open does, so that this process still counts as a user. */
	(void)lock_shared(s->dirfd);
	return false;
}

/* Removes the database's files; only after l_alone(), before close. */
static int l_remove(struct store *st)
{
	struct lstore *s = (struct lstore *)st;
	static const char *const files[] = {"data.mdb", "lock.mdb"};
	int rc = CHAFF_OK;
	for (size_t i = 0; i < 2; i++)
		if (unlinkat(s->dirfd, files[i], 0) != 0 && errno != ENOENT)
			rc = CHAFF_EIO;
	return rc;
}

/* The folder's shared lock, taken before LMDB opens anything in it, so
 * that a process removing a database it made (l_alone, l_remove) never
 * does so under another's feet. Only such a process holds the lock
 * exclusively, and only for a moment, so the wait is short: past a
 * second (another user can lock any folder they can read) the database
 * is opened without the lock, works as before and is never removed.
 * A folder removed while this process waited is opened anew (made anew
 * by a trainer). */
static void lock_folder(struct lstore *s, bool create)
{
	for (int round = 0; round < 3; round++) {
		s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dirfd < 0 && errno == ENOENT && create &&
		    (mkdir(s->dir, 0700) == 0 || errno == EEXIST))
			s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dirfd < 0)
			return;
		bool locked = lock_shared(s->dirfd);
		struct stat held, now;
		if (locked && fstat(s->dirfd, &held) == 0 && held.st_nlink > 0 &&
		    stat(s->dir, &now) == 0 && held.st_dev == now.st_dev &&
		    held.st_ino == now.st_ino)
			return;
		close(s->dirfd);
		s->dirfd = -1;
		if (!locked)
			return; /* on without the lock */
		/* removed meanwhile: the path names another folder, or none */
	}
}

static const struct store_ops lmdb_ops = {
        .parallel_reads = true, /* MDB_NOTLS, and LMDB's copy-on-write */
        .begin = l_begin,
        .commit = l_commit,
        .abort = l_abort,
        .get = l_get,
        .put = l_put,
        .del = l_del,
        .foreach = l_foreach,
        .clear = l_clear,
        .meta_get = l_meta_get,
        .meta_put = l_meta_put,
        .digest_get = l_digest_get,
        .digest_put = l_digest_put,
        .digest_del = l_digest_del,
        .alone = l_alone,
        .remove = l_remove,
        .digest_foreach = l_digest_foreach,
        .generation = l_generation,
        .txn_generation = l_txn_generation,
        .info = l_info,
        .grow = l_grow,
        .backup = l_backup,
        .close = l_close,
};

/* A data file shorter than the pages its meta page names (a truncated
 * copy, a disk that filled during a copy) would fault when the map is
 * read: refuse it before touching any page. */
static int check_size(struct lstore *s)
{
	MDB_envinfo ei;
	MDB_stat st;
	char path[4096];
	struct stat fs;
	if (mdb_env_info(s->env, &ei) != MDB_SUCCESS || mdb_env_stat(s->env, &st) != MDB_SUCCESS)
		return CHAFF_ECORRUPT;
	snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
	if (stat(path, &fs) != 0)
		return CHAFF_EIO;
	if ((uint64_t)fs.st_size < (uint64_t)(ei.me_last_pgno + 1) * st.ms_psize) {
		logf_(s, CHAFF_LOG_ERROR,
		      "%s: the database file is truncated%s; restore a backup or retrain", s->dir,
		      "");
		return CHAFF_ECORRUPT;
	}
	return CHAFF_OK;
}

/* Opens the three named databases, creating them when writable. */
static int open_dbis(struct lstore *s, bool readonly)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	/* Another process grew the database between the environment's
	 * opening and here: adopt its size (nothing of this handle is open
	 * yet) and try again, as l_begin does. */
	for (int tries = 0; rc == MDB_MAP_RESIZED && tries < 100; tries++) {
		rc = mdb_env_set_mapsize(s->env, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	}
	if (rc != MDB_SUCCESS)
		return map_rc(s, rc);
	unsigned create = readonly ? 0 : MDB_CREATE;
	rc = mdb_dbi_open(txn, "tokens", MDB_INTEGERKEY | create, &s->tokens);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, "meta", create, &s->meta);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, "digests", create, &s->digests);
	if (rc != MDB_SUCCESS) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND) {
			logf_(s, CHAFF_LOG_ERROR, "%s: not a chaff database%s", s->dir, "");
			return CHAFF_ENOTFOUND;
		}
		return map_rc(s, rc);
	}
	return map_rc(s, mdb_txn_commit(txn));
}

int store_lmdb_open(const char *dir, bool readonly, bool create, uint64_t map_size,
                    chaff_log_fn log, void *log_user, struct store **out)
{
	struct lstore *s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return CHAFF_ENOMEM;
	}
	s->base.ops = &lmdb_ops;
	s->dirfd = -1;
	pthread_mutex_init(&s->gate, NULL);
	pthread_cond_init(&s->gate_cv, NULL);
	s->log = log;
	s->log_user = log_user;
	struct stat st;
	if (stat(dir, &st) != 0) {
		/* another process may make the folder at the same moment */
		if (errno != ENOENT || !create || (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
			int e = errno;
			logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir,
			      e != ENOENT ? strerror(e)
			      : create    ? "cannot make the database: the folder it would be in "
			                    "does not exist"
			                  : "no database here (train one first)");
			l_close(&s->base);
			return e == ENOENT   ? CHAFF_ENOTFOUND
			       : e == EACCES ? CHAFF_EACCES
			                     : CHAFF_EIO;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir, "not a directory");
		l_close(&s->base);
		return CHAFF_EINVAL;
	}
	lock_folder(s, create);
	struct stat folder;
	if ((s->dirfd >= 0 ? fstat(s->dirfd, &folder) : stat(dir, &folder)) == 0 &&
	    !list_open(s, folder.st_dev, folder.st_ino)) {
		logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir,
		      "open already in this process (its threads share one handle)");
		l_close(&s->base);
		return CHAFF_EBUSY;
	}
	int rc = env_create(s);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxreaders(s->env, 512);
	/* Start with room for the file as it is, and then some; grow() and
	 * MDB_MAP_RESIZED handle the rest. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	size_t map = map_size ? (size_t)map_size : INITIAL_MAP;
	bool there = stat(path, &st) == 0;
	if (there && st.st_size == 0 && readonly) {
		/* LMDB writes its first pages as it makes a file: an empty one
		 * was cut to nothing (a writer would start it afresh) */
		logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir,
		      "the database file is empty (cut to nothing?); restore a backup or retrain");
		l_close(&s->base);
		return CHAFF_ECORRUPT;
	} else if (there) {
		while (map < (size_t)st.st_size * 2)
			map *= 2;
	} else if (errno == ENOENT && !create) {
		/* a folder, but no database in it: only training makes one (LMDB
		 * would make an empty one for any writer) */
		int crc = map_rc(s, ENOENT);
		l_close(&s->base);
		return crc;
	}
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_mapsize(s->env, map);
	unsigned flags = MDB_NOTLS | (readonly ? MDB_RDONLY : 0);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(s->env, dir, flags, 0600);
	if (rc == EACCES && readonly) {
		/* A database on read-only media, or another user's: readable
		 * without the lock file, as long as nobody writes meanwhile. */
		mdb_env_close(s->env);
		rc = env_create(s);
		if (rc == MDB_SUCCESS)
			rc = mdb_env_set_mapsize(s->env, map);
		if (rc == MDB_SUCCESS)
			rc = mdb_env_open(s->env, dir, flags | MDB_NOLOCK, 0600);
	}
	if (rc != MDB_SUCCESS) {
		int crc = map_rc(s, rc);
		if (crc == CHAFF_ECORRUPT)
			logf_(s, CHAFF_LOG_ERROR,
			      "%s: the database is damaged (%s); restore a backup or "
			      "retrain",
			      dir, mdb_strerror(rc));
		else if (crc != CHAFF_ENOTFOUND && crc != CHAFF_EDB) /* those two logged */
			logf_(s, CHAFF_LOG_ERROR, "%s: %s", dir, mdb_strerror(rc));
		l_close(&s->base);
		return crc == STORE_FULL ? CHAFF_EDB : crc;
	}
	rc = check_size(s);
	if (rc == CHAFF_OK)
		rc = open_dbis(s, readonly);
	if (rc != CHAFF_OK) {
		l_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return CHAFF_OK;
}
