/*
 * The store interface, run against both backends: records, metadata,
 * digests, key order, and transactions that commit or leave no trace.
 * Then the database layer's refusal of an incompatible database.
 */
#include "test_db_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/store.h"

static char *dir;

static struct store *open_store(int lmdb)
{
	struct store *st;
	if (lmdb) {
		dir = temp_dir();
		assert_int_equal(store_lmdb_open(dir, false, true, 0, NULL, NULL, &st), CHAFF_OK);
	} else {
		dir = NULL;
		assert_int_equal(store_memory_open(&st), CHAFF_OK);
	}
	return st;
}

static void close_store(struct store *st)
{
	st->ops->close(st);
	if (dir) {
		remove_tree(dir);
		free(dir);
	}
}

static int collect(void *u, uint64_t key, const struct chaff_record *r)
{
	uint64_t *keys = u;
	keys[keys[0] + 1] = key;
	keys[0]++;
	return r->spam == 777 ? 42 : 0; /* a stop signal */
}

static void run_records(int lmdb)
{
	struct store *st = open_store(lmdb);
	const struct store_ops *o = st->ops;
	struct store_txn *t;
	struct chaff_record r = { 3, 4, 20000 }, got;
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	assert_int_equal(o->get(t, 5, &got), CHAFF_ENOTFOUND);
	for (uint64_t k = 10; k > 0; k--)
		assert_int_equal(o->put(t, k * 1000003, &r), CHAFF_OK);
	assert_int_equal(o->commit(t), CHAFF_OK);

	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	assert_int_equal(o->get(t, 3 * 1000003, &got), CHAFF_OK);
	assert_int_equal(got.spam, 3);
	assert_int_equal(got.ham, 4);
	assert_int_equal(got.day, 20000);
	uint64_t keys[16] = { 0 };
	assert_int_equal(o->foreach(t, collect, keys), CHAFF_OK);
	assert_int_equal(keys[0], 10);
	for (int i = 1; i < 10; i++)
		assert_true(keys[i] < keys[i + 1]); /* key order */
	o->abort(t);

	/* counts of every encoded width, and the largest day, round-trip */
	static const uint32_t widths[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
		                           268435455, 268435456, UINT32_MAX };
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	for (uint64_t i = 0; i < 11; i++) {
		struct chaff_record w = { widths[i], widths[10 - i], (uint32_t)(65535 - i) };
		assert_int_equal(o->put(t, 500 + i, &w), CHAFF_OK);
	}
	assert_int_equal(o->commit(t), CHAFF_OK);
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	for (uint64_t i = 0; i < 11; i++) {
		assert_int_equal(o->get(t, 500 + i, &got), CHAFF_OK);
		assert_int_equal(got.spam, widths[i]);
		assert_int_equal(got.ham, widths[10 - i]);
		assert_int_equal(got.day, 65535 - i);
	}
	o->abort(t);
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	for (uint64_t i = 0; i < 11; i++)
		assert_int_equal(o->del(t, 500 + i), CHAFF_OK);
	assert_int_equal(o->commit(t), CHAFF_OK);

	/* an aborted write leaves no trace: records, metadata, digests */
	struct chaff_digest d = digest_of(1);
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	struct chaff_record r2 = { 777, 1, 1 };
	assert_int_equal(o->put(t, 3 * 1000003, &r2), CHAFF_OK);
	assert_int_equal(o->put(t, 99, &r2), CHAFF_OK);
	assert_int_equal(o->del(t, 4 * 1000003), CHAFF_OK);
	assert_int_equal(o->meta_put(t, "name", "value", 5), CHAFF_OK);
	assert_int_equal(o->digest_put(t, &d, 1), CHAFF_OK);
	keys[0] = 0;
	assert_int_equal(o->foreach(t, collect, keys), 42); /* stopped at 777 */
	o->abort(t);
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	assert_int_equal(o->get(t, 3 * 1000003, &got), CHAFF_OK);
	assert_int_equal(got.spam, 3);
	assert_int_equal(o->get(t, 99, &got), CHAFF_ENOTFOUND);
	assert_int_equal(o->get(t, 4 * 1000003, &got), CHAFF_OK);
	char buf[16];
	size_t len = sizeof(buf);
	assert_int_equal(o->meta_get(t, "name", buf, &len), CHAFF_ENOTFOUND);
	uint8_t cls;
	assert_int_equal(o->digest_get(t, &d, &cls), CHAFF_ENOTFOUND);
	o->abort(t);

	/* committed metadata and digests stay */
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	assert_int_equal(o->meta_put(t, "name", "value", 5), CHAFF_OK);
	assert_int_equal(o->meta_put(t, "name", "other", 5), CHAFF_OK);
	assert_int_equal(o->digest_put(t, &d, 1), CHAFF_OK);
	assert_int_equal(o->commit(t), CHAFF_OK);
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	len = sizeof(buf);
	assert_int_equal(o->meta_get(t, "name", buf, &len), CHAFF_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "other", 5);
	assert_int_equal(o->digest_get(t, &d, &cls), CHAFF_OK);
	assert_int_equal(cls, 1);
	assert_int_equal(o->digest_del(t, &d), CHAFF_OK);
	assert_int_equal(o->digest_get(t, &d, &cls), CHAFF_ENOTFOUND);
	uint64_t ntok, ndig, used, file;
	assert_int_equal(o->info(t, &ntok, &ndig, &used, &file), CHAFF_OK);
	assert_int_equal(ntok, 10);
	assert_int_equal(ndig, 0);
	assert_int_equal(o->commit(t), CHAFF_OK);
	close_store(st);
}

static void test_memory_records(void **state)
{
	(void)state;
	run_records(0);
}

static void test_lmdb_records(void **state)
{
	(void)state;
	run_records(1);
}

static void test_memory_deletes_keep_probing_right(void **state)
{
	(void)state;
	/* many keys in one probe run, deleted in a scattered order */
	struct store *st = open_store(0);
	const struct store_ops *o = st->ops;
	struct store_txn *t;
	struct chaff_record r = { 1, 1, 1 }, got;
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	for (uint64_t k = 0; k < 2000; k++)
		assert_int_equal(o->put(t, k * 256, &r), CHAFF_OK); /* same low bits */
	for (uint64_t k = 0; k < 2000; k += 3)
		assert_int_equal(o->del(t, k * 256), CHAFF_OK);
	for (uint64_t k = 0; k < 2000; k++)
		assert_int_equal(o->get(t, k * 256, &got), k % 3 ? CHAFF_OK : CHAFF_ENOTFOUND);
	assert_int_equal(o->commit(t), CHAFF_OK);
	close_store(st);
}

/* The tokens in key order, as foreach gives them. */
struct listing {
	uint64_t keys[6000];
	struct chaff_record r[6000];
	size_t n;
};

static int list_one(void *u, uint64_t key, const struct chaff_record *r)
{
	struct listing *l = u;
	assert_true(l->n < 6000);
	l->keys[l->n] = key;
	l->r[l->n++] = *r;
	return 0;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A key from a small pool (so that puts, deletes and gets meet), spread
 * over the whole range with its ends, or packed close together. */
static uint64_t pick_key(uint64_t *x, int round)
{
	uint64_t r = next_rand(x) % 3000;
	if (r < 4)
		return r < 2 ? r : UINT64_MAX - (r - 2);
	return round % 2 ? r * 0x9E3779B97F4A7C15ull : 1000 + r;
}

/* One call made on both stores (LMDB first, memory second), which must
 * answer alike: a walk also compares every record and the count. */
enum both_op { OP_PUT, OP_DEL, OP_GET, OP_WALK, OP_INFO };

static void on_both(struct store *both[2], struct store_txn *t[2], enum both_op op, uint64_t key,
                    const struct chaff_record *r)
{
	static struct listing l[2];
	int rc[2];
	struct chaff_record got[2] = {{0, 0, 0}, {0, 0, 0}};
	uint64_t n[2] = {0, 0}, d, u, f;
	for (int i = 0; i < 2; i++) {
		const struct store_ops *o = both[i]->ops;
		l[i].n = 0;
		switch (op) {
		case OP_PUT: rc[i] = o->put(t[i], key, r); break;
		case OP_DEL: rc[i] = o->del(t[i], key); break;
		case OP_GET: rc[i] = o->get(t[i], key, &got[i]); break;
		case OP_WALK:
			rc[i] = o->foreach (t[i], list_one, &l[i]);
			if (rc[i] == CHAFF_OK)
				assert_int_equal(o->info(t[i], &n[i], &d, &u, &f), CHAFF_OK);
			assert_int_equal(n[i], l[i].n);
			break;
		case OP_INFO: rc[i] = o->info(t[i], &n[i], &d, &u, &f); break;
		}
	}
	assert_int_equal(rc[0], rc[1]);
	assert_int_equal(n[0], n[1]);
	assert_int_equal(got[0].spam, got[1].spam);
	assert_int_equal(got[0].ham, got[1].ham);
	assert_int_equal(got[0].day, got[1].day);
	assert_int_equal(l[0].n, l[1].n);
	assert_memory_equal(l[0].keys, l[1].keys, l[0].n * sizeof(l[0].keys[0]));
	assert_memory_equal(l[0].r, l[1].r, l[0].n * sizeof(l[0].r[0]));
}

/* Both stores' write transactions committed (or, keep false, aborted);
 * then a reader of each must find the same tokens and count. */
static void end_on_both(struct store *both[2], struct store_txn *t[2], bool keep)
{
	for (int i = 0; i < 2; i++) {
		if (keep)
			assert_int_equal(both[i]->ops->commit(t[i]), CHAFF_OK);
		else
			both[i]->ops->abort(t[i]);
		assert_int_equal(both[i]->ops->begin(both[i], false, &t[i]), CHAFF_OK);
	}
	on_both(both, t, OP_WALK, 0, NULL);
	for (int i = 0; i < 2; i++)
		both[i]->ops->abort(t[i]);
}

/*
 * The LMDB store keeps tokens in blocks of neighbouring keys; the memory
 * store keeps each on its own. Both are given the same random puts,
 * deletes and gets, in random and in rising order, over several
 * transactions (some aborted), and must agree on every answer, on the
 * listing and on the count.
 */
static void test_blocks_agree_with_the_memory_store(void **state)
{
	(void)state;
	struct store *lm = open_store(1), *mem;
	assert_int_equal(store_memory_open(&mem), CHAFF_OK);
	struct store *both[2] = {lm, mem};
	uint64_t x = 88172645463325252ull;
	for (int round = 0; round < 24; round++) {
		struct store_txn *t[2];
		for (int i = 0; i < 2; i++)
			assert_int_equal(both[i]->ops->begin(both[i], true, &t[i]), CHAFF_OK);
		if (round == 12) /* a cleared store filled again in rising order */
			for (int i = 0; i < 2; i++)
				assert_int_equal(both[i]->ops->clear(t[i]), CHAFF_OK);
		uint64_t rising = 0;
		for (int op = 0; op < 1500; op++) {
			/* rounds 12 and 13 add keys in rising order; rounds 2, 6,
			 * ... sweep the packed pool in rising order, meeting each
			 * block's first key right after the block before */
			uint64_t key =
			        round == 12 || round == 13 ? (rising += 1 + next_rand(&x) % 9000)
			        : round % 4 == 2 ? 1000 + (uint64_t)op * 2 + next_rand(&x) % 2
			                         : pick_key(&x, round);
			unsigned what = (unsigned)(next_rand(&x) % 10);
			struct chaff_record r = {(uint32_t)next_rand(&x),
			                         (uint32_t)(next_rand(&x) % 200),
			                         (uint32_t)(next_rand(&x) % 65536)};
			on_both(both, t, what < 6 ? OP_PUT : what < 8 ? OP_DEL : OP_GET, key, &r);
		}
		on_both(both, t, OP_WALK, 0, NULL);
		end_on_both(both, t, round % 5 != 3);
	}
	mem->ops->close(mem);
	close_store(lm);
}

/* Key 0 put into an empty store, its block written by a walk, then
 * changed and walked again: the block under key 0 is written a second
 * time, which must not be taken for an append (nor lost, with the count
 * still raised). */
static void test_key_zero_written_twice(void **state)
{
	(void)state;
	struct store *st = open_store(1);
	const struct store_ops *o = st->ops;
	struct store_txn *t;
	struct chaff_record r = {1, 2, 3};
	static struct listing l;
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	assert_int_equal(o->put(t, 0, &r), CHAFF_OK);
	l.n = 0;
	assert_int_equal(o->foreach (t, list_one, &l), CHAFF_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(o->put(t, 7, &r), CHAFF_OK);
	l.n = 0;
	assert_int_equal(o->foreach (t, list_one, &l), CHAFF_OK);
	assert_int_equal(l.n, 2);
	assert_int_equal(o->commit(t), CHAFF_OK);
	uint64_t n, d, u, f;
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	l.n = 0;
	assert_int_equal(o->foreach (t, list_one, &l), CHAFF_OK);
	assert_int_equal(l.n, 2);
	assert_int_equal(o->info(t, &n, &d, &u, &f), CHAFF_OK);
	assert_int_equal(n, 2);
	o->abort(t);
	close_store(st);
}

/* Random puts, deletes and gets, with walks and counts in the middle of
 * write transactions (each walk writes the block being worked in), clears
 * and aborts, against the memory store. SEED=N in the environment picks
 * another sequence. */
static void test_blocks_agree_with_walks_between(void **state)
{
	(void)state;
	struct store *lm = open_store(1), *mem;
	assert_int_equal(store_memory_open(&mem), CHAFF_OK);
	struct store *both[2] = {lm, mem};
	uint64_t x = getenv("SEED") ? strtoull(getenv("SEED"), NULL, 0) : 31677;
	for (int round = 0; round < 200; round++) {
		struct store_txn *t[2];
		for (int i = 0; i < 2; i++)
			assert_int_equal(both[i]->ops->begin(both[i], true, &t[i]), CHAFF_OK);
		if (round % 17 == 5)
			for (int i = 0; i < 2; i++)
				assert_int_equal(both[i]->ops->clear(t[i]), CHAFF_OK);
		int ops = 1 + (int)(next_rand(&x) % 400);
		uint64_t rising = next_rand(&x) % 3;
		for (int op = 0; op < ops; op++) {
			uint64_t v = next_rand(&x) % 1000, key;
			switch (round % 4) {
			case 0: key = v < 10 ? v : v < 20 ? UINT64_MAX - (v - 10) : v * 7; break;
			case 1: key = (rising += next_rand(&x) % 4); break;
			case 2: key = v % 3 ? v : UINT64_MAX - v; break;
			default: key = v * 0x9E3779B97F4A7C15ull; break;
			}
			unsigned what = (unsigned)(next_rand(&x) % 20);
			struct chaff_record r = {(uint32_t)next_rand(&x),
			                         (uint32_t)(next_rand(&x) % 200),
			                         (uint32_t)(next_rand(&x) % 65536)};
			on_both(both, t,
			        what == 19   ? OP_WALK
			        : what == 18 ? OP_INFO
			        : what < 10  ? OP_PUT
			        : what < 15  ? OP_DEL
			                     : OP_GET,
			        key, &r);
		}
		end_on_both(both, t, next_rand(&x) % 4 != 0);
	}
	mem->ops->close(mem);
	close_store(lm);
}

static int count_one(void *u, uint64_t key, const struct chaff_record *r)
{
	(void)key;
	(void)r;
	(*(size_t *)u)++;
	return 0;
}

/* A new LMDB store in dir holding n tokens, at keys step, 2 step, ...,
 * committed and closed (the folder stays for the test to reopen). */
static void fill_and_close(uint64_t n, uint64_t step)
{
	struct store *st = open_store(1);
	const struct store_ops *o = st->ops;
	struct store_txn *t;
	struct chaff_record r = {5, 6, 7};
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	for (uint64_t k = 1; k <= n; k++)
		assert_int_equal(o->put(t, k * step, &r), CHAFF_OK);
	assert_int_equal(o->commit(t), CHAFF_OK);
	o->close(st);
}

/* The store in dir opened with LMDB itself, a write transaction begun on
 * its named database name (to damage it as a disk or a bug could). */
static MDB_env *raw_open(const char *name, unsigned flags, MDB_txn **txn, MDB_dbi *dbi)
{
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
	assert_int_equal(mdb_dbi_open(*txn, name, flags, dbi), 0);
	return env;
}

/* A block damaged on disk (cut short, bytes flipped, varints that never
 * end, random bytes): every call answers with a token, CHAFF_ENOTFOUND or
 * CHAFF_ECORRUPT, and reads nothing past the record (the sanitizer
 * build runs this too). */
static void test_damaged_blocks(void **state)
{
	(void)state;
	uint64_t x = 99;
	for (int trial = 0; trial < 400; trial++) {
		fill_and_close(100, 1000);
		struct store *st;
		const struct store_ops *o;
		struct store_txn *t;
		struct chaff_record r = {5, 6, 7};
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_env *env = raw_open("tokens", MDB_INTEGERKEY, &txn, &dbi);
		MDB_cursor *c;
		mdb_cursor_open(txn, dbi, &c);
		MDB_val k, v;
		int skip = (int)(next_rand(&x) % 4);
		int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		for (int i = 0; i < skip && rc == 0; i++)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		assert_int_equal(rc, 0);
		uint64_t key;
		memcpy(&key, k.mv_data, 8);
		unsigned char buf[700];
		size_t len = v.mv_size;
		memcpy(buf, v.mv_data, len);
		unsigned mode = (unsigned)(next_rand(&x) % 4);
		if (mode == 0) { /* cut short */
			len = next_rand(&x) % (len + 1);
		} else if (mode == 1) { /* bytes flipped */
			for (int i = 0; i < 3; i++)
				buf[next_rand(&x) % len] ^=
				        (unsigned char)(1 + next_rand(&x) % 255);
		} else if (mode == 2) { /* varints that never end */
			for (size_t i = 8; i < len; i++)
				buf[i] |= 0x80;
		} else { /* random */
			len = next_rand(&x) % sizeof(buf);
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)next_rand(&x);
			if (len >= 8)
				memcpy(buf, &key, 8);
		}
		unsigned char *heap = malloc(len ? len : 1);
		memcpy(heap, buf, len);
		MDB_val nv = {len, heap};
		assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
		free(heap);
		mdb_cursor_close(c);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
		assert_int_equal(store_lmdb_open(dir, false, false, 0, NULL, NULL, &st), CHAFF_OK);
		o = st->ops;
		assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
		struct chaff_record got;
		for (uint64_t q = 0; q <= 101; q++) {
			int g = o->get(t, q * 1000, &got);
			assert_true(g == CHAFF_OK || g == CHAFF_ENOTFOUND || g == CHAFF_ECORRUPT);
			if (q % 7 == 0) {
				g = o->put(t, q * 1000 + 1, &r);
				assert_true(g == CHAFF_OK || g == CHAFF_ECORRUPT);
			}
		}
		o->abort(t);
		assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
		size_t n = 0;
		int f = o->foreach (t, count_one, &n);
		assert_true(f == CHAFF_OK || f == CHAFF_ECORRUPT);
		uint64_t nt, d, u, fs;
		o->info(t, &nt, &d, &u, &fs);
		o->abort(t);
		close_store(st);
	}
}

/* A database whose token count is missing from the metadata counts its
 * blocks, and keeps the count right through updates, inserts and
 * deletes. */
static void test_count_missing(void **state)
{
	(void)state;
	fill_and_close(1000, 7919);
	struct store *st;
	const struct store_ops *o;
	struct store_txn *t;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_env *env = raw_open("meta", 0, &txn, &dbi);
	MDB_val k = {11, "token_count"};
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(store_lmdb_open(dir, false, false, 0, NULL, NULL, &st), CHAFF_OK);
	o = st->ops;
	uint64_t n, d, u, f;
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	assert_int_equal(o->info(t, &n, &d, &u, &f), CHAFF_OK);
	assert_int_equal(n, 1000);
	o->abort(t);
	assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
	struct chaff_record r2 = {9, 9, 9};
	for (uint64_t q = 1; q <= 300; q++) /* updates, then new keys, then deletes */
		assert_int_equal(o->put(t, q * 7919, &r2), CHAFF_OK);
	for (uint64_t q = 1; q <= 100; q++)
		assert_int_equal(o->put(t, q * 7919 + 1, &r2), CHAFF_OK);
	for (uint64_t q = 500; q <= 549; q++)
		assert_int_equal(o->del(t, q * 7919), CHAFF_OK);
	assert_int_equal(o->info(t, &n, &d, &u, &f), CHAFF_OK);
	assert_int_equal(n, 1050);
	assert_int_equal(o->commit(t), CHAFF_OK);
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	assert_int_equal(o->info(t, &n, &d, &u, &f), CHAFF_OK);
	assert_int_equal(n, 1050);
	size_t c = 0;
	assert_int_equal(o->foreach (t, count_one, &c), CHAFF_OK);
	assert_int_equal(c, 1050);
	o->abort(t);
	close_store(st);
}

/* A map too small for a transaction's blocks: the put or the commit that
 * cannot write one says STORE_FULL, and so does every later call on the
 * transaction's tokens (none succeeds with a block lost). Replayed after
 * grow(), as the database layer does, everything is there. */
static void test_full_map_spoils_the_transaction(void **state)
{
	(void)state;
	dir = temp_dir();
	struct store *st;
	assert_int_equal(store_lmdb_open(dir, false, true, 256 << 10, NULL, NULL, &st), CHAFF_OK);
	const struct store_ops *o = st->ops;
	struct chaff_record r = {3, 4, 5}, got;
	enum { N = 40000 };
	for (int attempt = 0;; attempt++) {
		assert_true(attempt < 12);
		struct store_txn *t;
		assert_int_equal(o->begin(st, true, &t), CHAFF_OK);
		int rc = CHAFF_OK;
		for (uint64_t k = 0; k < N && rc == CHAFF_OK; k++)
			rc = o->put(t, (k * 0x9E3779B97F4A7C15ull) | 1, &r);
		if (rc == CHAFF_OK) {
			rc = o->commit(t);
			if (rc == CHAFF_OK)
				break;
			assert_int_equal(rc, STORE_FULL);
		} else {
			assert_int_equal(rc, STORE_FULL);
			assert_int_equal(o->get(t, 1, &got), STORE_FULL);
			assert_int_equal(o->put(t, 3, &r), STORE_FULL);
			assert_int_equal(o->del(t, 1), STORE_FULL);
			uint64_t n = 0;
			assert_int_equal(o->foreach (t, count_one, &n), STORE_FULL);
			assert_int_equal(o->commit(t), STORE_FULL);
		}
		assert_int_equal(o->grow(st), CHAFF_OK);
	}
	struct store_txn *t;
	assert_int_equal(o->begin(st, false, &t), CHAFF_OK);
	uint64_t n, d, u, f;
	assert_int_equal(o->info(t, &n, &d, &u, &f), CHAFF_OK);
	assert_int_equal(n, N);
	size_t c = 0;
	assert_int_equal(o->foreach (t, count_one, &c), CHAFF_OK);
	assert_int_equal(c, N);
	assert_int_equal(o->get(t, (7 * 0x9E3779B97F4A7C15ull) | 1, &got), CHAFF_OK);
	assert_int_equal(got.ham, 4);
	o->abort(t);
	close_store(st);
}

static void test_incompatible_database_refused(void **state)
{
	(void)state;
	char *d = temp_dir();
	struct chaff_db_options o = { .flags = CHAFF_DB_CREATE };
	chaff_db *db;
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	chaff_db_close(db);
	struct store *st;
	assert_int_equal(store_lmdb_open(d, false, false, 0, NULL, NULL, &st), CHAFF_OK);
	struct store_txn *t;
	assert_int_equal(st->ops->begin(st, true, &t), CHAFF_OK);
	uint64_t v = 99;
	assert_int_equal(st->ops->meta_put(t, "tokenizer", &v, sizeof(v)), CHAFF_OK);
	assert_int_equal(st->ops->commit(t), CHAFF_OK);
	st->ops->close(st);
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_EVERSION);
	/* and another schema, the tokenizer's version right again (else that
	 * alone would refuse it) */
	assert_int_equal(store_lmdb_open(d, false, false, 0, NULL, NULL, &st), CHAFF_OK);
	assert_int_equal(st->ops->begin(st, true, &t), CHAFF_OK);
	v = CHAFF_TOKENIZER_VERSION;
	assert_int_equal(st->ops->meta_put(t, "tokenizer", &v, sizeof(v)), CHAFF_OK);
	v = 7;
	assert_int_equal(st->ops->meta_put(t, "schema", &v, sizeof(v)), CHAFF_OK);
	assert_int_equal(st->ops->commit(t), CHAFF_OK);
	st->ops->close(st);
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_EVERSION);
	/* with the schema put back too, it opens: the schema was the reason */
	assert_int_equal(store_lmdb_open(d, false, false, 0, NULL, NULL, &st), CHAFF_OK);
	assert_int_equal(st->ops->begin(st, true, &t), CHAFF_OK);
	v = CHAFF_SCHEMA_VERSION;
	assert_int_equal(st->ops->meta_put(t, "schema", &v, sizeof(v)), CHAFF_OK);
	assert_int_equal(st->ops->commit(t), CHAFF_OK);
	st->ops->close(st);
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	chaff_db_close(db);
	/* a missing database is not created unless asked */
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/nope", d);
	o.flags = 0;
	assert_int_equal(chaff_db_open(missing, &o, &db), CHAFF_ENOTFOUND);
	o.flags = CHAFF_DB_READONLY;
	assert_int_equal(chaff_db_open(missing, &o, &db), CHAFF_ENOTFOUND);
	remove_tree(d);
	free(d);
}

static void test_prune_and_load(void **state)
{
	(void)state;
	chaff_db *db;
	assert_int_equal(chaff_db_open_memory(NULL, &db), CHAFF_OK);
	const int a[] = { 1, 2 }, b[] = { 2, 3 };
	train_one(db, 1, a, 2, CHAFF_SPAM, 0);
	train_one(db, 2, b, 2, CHAFF_HAM, 0);
	uint64_t removed;
	assert_int_equal(chaff_db_prune(db, 0, 2, &removed), CHAFF_OK);
	assert_int_equal(removed, 2); /* tokens 1 and 3 were seen once */
	assert_int_equal(record_of(db, 2).spam, 1);
	assert_int_equal(record_of(db, 1).spam, UINT32_MAX);
	/* everything was trained today: an age limit removes nothing */
	assert_int_equal(chaff_db_prune(db, 30, 0, &removed), CHAFF_OK);
	assert_int_equal(removed, 0);

	struct chaff_db_image img;
	assert_int_equal(chaff_db_image(db, &img), CHAFF_OK);
	chaff_loader *l;
	/* not into a database that holds anything */
	assert_int_equal(chaff_loader_new(db, &img, &l), CHAFF_EINVAL);
	chaff_db *db2;
	assert_int_equal(chaff_db_open_memory(NULL, &db2), CHAFF_OK);
	assert_int_equal(chaff_loader_new(db2, &img, &l), CHAFF_OK);
	struct chaff_record r = { 5, 6, 7 };
	assert_int_equal(chaff_loader_put(l, 1002, &r), CHAFF_OK);
	chaff_loader_free(l); /* without commit: nothing */
	assert_int_equal(record_of(db2, 2).spam, UINT32_MAX);
	assert_int_equal(chaff_loader_new(db2, &img, &l), CHAFF_OK);
	assert_int_equal(chaff_loader_put(l, 1002, &r), CHAFF_OK);
	assert_int_equal(chaff_loader_commit(l), CHAFF_OK);
	chaff_loader_free(l);
	assert_int_equal(record_of(db2, 2).ham, 6);
	struct chaff_db_stats st;
	assert_int_equal(chaff_db_stats(db2, &st), CHAFF_OK);
	assert_int_equal(st.spam_messages, 1);
	assert_int_equal(st.ham_messages, 1);
	assert_int_equal(st.seed, img.seed);
	img.tokenizer_version = 99;
	assert_int_equal(chaff_loader_new(db2, &img, &l), CHAFF_EVERSION);
	chaff_db_close(db2);
	chaff_db_close(db);
}

/* Training a token again makes it young: its day becomes today, in place
 * (a small batch) and in a batch that writes the tokens anew, so prune's
 * age test keeps it. */
static void test_training_renews_a_tokens_day(void **state)
{
	(void)state;
	for (int lmdb = 0; lmdb < 2; lmdb++) {
		chaff_db *db;
		char *d = lmdb ? temp_dir() : NULL;
		struct chaff_db_options o = { .flags = CHAFF_DB_CREATE };
		assert_int_equal(lmdb ? chaff_db_open(d, &o, &db) : chaff_db_open_memory(NULL, &db),
		                 CHAFF_OK);
		struct chaff_db_image img;
		assert_int_equal(chaff_db_image(db, &img), CHAFF_OK);
		img.spam_messages = img.ham_messages = 10;
		chaff_loader *l;
		assert_int_equal(chaff_loader_new(db, &img, &l), CHAFF_OK);
		uint32_t old = db_today() - 100;
		for (int id = 1; id <= 6; id++) {
			struct chaff_record r = { 2, 1, old };
			assert_int_equal(chaff_loader_put(l, 1000 + (uint64_t)id, &r), CHAFF_OK);
		}
		assert_int_equal(chaff_loader_commit(l), CHAFF_OK);
		chaff_loader_free(l);
		const int one[] = { 1 };          /* 1 change of 6 tokens: in place */
		const int three[] = { 2, 3, 4 };  /* 3 of 6: written anew */
		train_one(db, 1, one, 1, CHAFF_SPAM, 0);
		assert_int_equal(record_of(db, 1).day, db_today());
		assert_int_equal(record_of(db, 5).day, old);
		train_one(db, 2, three, 3, CHAFF_HAM, 0);
		for (int id = 2; id <= 4; id++)
			assert_int_equal(record_of(db, id).day, db_today());
		assert_int_equal(record_of(db, 6).day, old);
		uint64_t removed;
		assert_int_equal(chaff_db_prune(db, 30, 0, &removed), CHAFF_OK);
		assert_int_equal(removed, 2); /* 5 and 6 */
		assert_int_equal(record_of(db, 1).spam, 3);
		assert_int_equal(record_of(db, 5).spam, UINT32_MAX);
		chaff_db_close(db);
		if (d) {
			remove_tree(d);
			free(d);
		}
	}
}

/* One handle per database and process (LMDB's rule), and a load only
 * while no other process has the database open: it sets the seed, which
 * that process would go on hashing with. */
static void test_one_handle_and_a_load_alone(void **state)
{
	(void)state;
	char *d = temp_dir();
	struct chaff_db_options o = {.flags = CHAFF_DB_CREATE};
	chaff_db *a, *b;
	assert_int_equal(chaff_db_open(d, &o, &a), CHAFF_OK);
	assert_int_equal(chaff_db_open(d, NULL, &b), CHAFF_EBUSY);
	struct chaff_db_image img;
	assert_int_equal(chaff_db_image(a, &img), CHAFF_OK);
	img.seed ^= 0x5a5a;
	/* another process holding the database open: the load is refused */
	int ready[2], done[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the child may open it: its parent's handle is not its own */
		chaff_db *c;
		char x = chaff_db_open(d, NULL, &c) == CHAFF_OK ? 'y' : 'n';
		if (write(ready[1], &x, 1) != 1 || read(done[0], &x, 1) != 1)
			_exit(1);
		chaff_db_close(c);
		_exit(0);
	}
	char x = 0;
	assert_int_equal(read(ready[0], &x, 1), 1);
	assert_int_equal(x, 'y');
	chaff_loader *l;
	assert_int_equal(chaff_loader_new(a, &img, &l), CHAFF_OK);
	assert_int_equal(chaff_loader_commit(l), CHAFF_EBUSY);
	chaff_loader_free(l);
	assert_int_equal(write(done[1], "q", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the refusal kept this process's own (shared) lock on the folder: no
	 * other process can take it for itself */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(d, O_RDONLY | O_DIRECTORY);
		_exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* alone now: loaded, and the handle hashes with the new seed */
	assert_int_equal(chaff_loader_new(a, &img, &l), CHAFF_OK);
	assert_int_equal(chaff_loader_commit(l), CHAFF_OK);
	chaff_loader_free(l);
	struct chaff_tokenizer_config cfg;
	assert_int_equal(chaff_db_tokenizer_config(a, &cfg), CHAFF_OK);
	assert_true(cfg.seed == img.seed);
	chaff_db_close(a);
	assert_int_equal(chaff_db_open(d, NULL, &b), CHAFF_OK);
	chaff_db_close(b);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(done[i]);
	}
	remove_tree(d);
	free(d);
}

/* NULL where a pointer is needed is CHAFF_EINVAL (or nothing done), never
 * a crash. */
static int no_record(void *u, uint64_t h, const struct chaff_record *r)
{
	(void)u, (void)h, (void)r;
	return 0;
}

static void test_null_arguments(void **state)
{
	(void)state;
	chaff_db *db;
	assert_int_equal(chaff_db_open_memory(NULL, &db), CHAFF_OK);
	struct chaff_params p;
	double v;
	struct chaff_db_stats st;
	struct chaff_db_image img;
	struct chaff_tokenizer_config cfg;
	struct chaff_record r = {1, 0, 0};
	uint64_t removed = 7;
	assert_int_equal(chaff_db_params(NULL, &p), CHAFF_EINVAL);
	assert_int_equal(chaff_db_params(db, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_get_param(db, NULL, &v), CHAFF_EINVAL);
	assert_int_equal(chaff_db_get_param(db, "robs", NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_get_param(NULL, "robs", &v), CHAFF_EINVAL);
	assert_int_equal(chaff_db_set_param(NULL, "robs", 0.2), CHAFF_EINVAL);
	assert_int_equal(chaff_db_set_param(db, NULL, 0.2), CHAFF_EINVAL);
	assert_int_equal(chaff_db_stats(NULL, &st), CHAFF_EINVAL);
	assert_int_equal(chaff_db_stats(db, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_image(NULL, &img), CHAFF_EINVAL);
	assert_int_equal(chaff_db_image(db, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_tokenizer_config(NULL, &cfg), CHAFF_EINVAL);
	assert_int_equal(chaff_db_tokenizer_config(db, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_foreach(db, NULL, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_foreach(NULL, no_record, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_foreach_digest(db, NULL, NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_db_prune(NULL, 1, 0, &removed), CHAFF_EINVAL);
	assert_int_equal(removed, 0);
	assert_int_equal(chaff_db_backup(NULL, "/tmp"), CHAFF_EINVAL);
	assert_int_equal(chaff_db_backup(db, NULL), CHAFF_EINVAL);
	chaff_loader *l;
	assert_int_equal(chaff_loader_new(db, NULL, &l), CHAFF_EINVAL);
	assert_int_equal(chaff_loader_new(NULL, &img, &l), CHAFF_EINVAL);
	assert_int_equal(chaff_loader_put(NULL, 1, &r), CHAFF_EINVAL);
	assert_int_equal(chaff_loader_put_digest(NULL, NULL, CHAFF_SPAM), CHAFF_EINVAL);
	assert_int_equal(chaff_loader_commit(NULL), CHAFF_EINVAL);
	assert_int_equal(chaff_params_set(NULL, "robs", 1), CHAFF_EINVAL);
	assert_int_equal(chaff_params_set(&p, NULL, 1), CHAFF_EINVAL);
	assert_int_equal(chaff_params_valid(NULL), 0);
	chaff_params_default(NULL);
	chaff_limits_default(NULL);
	chaff_tokenizer_config_default(NULL);
	chaff_message_digest("x", 1, NULL);
	assert_int_equal(chaff_batch_size(NULL), 0);
	assert_int_equal(chaff_classifier_set_params(NULL, NULL), CHAFF_EINVAL);
	assert_null(chaff_classifier_tokenizer(NULL));
	/* a memory database is made empty: read-only it could hold nothing */
	struct chaff_db_options ro = {.flags = CHAFF_DB_READONLY};
	chaff_db *m;
	assert_int_equal(chaff_db_open_memory(&ro, &m), CHAFF_EINVAL);
	chaff_db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_memory_records),
	        cmocka_unit_test(test_lmdb_records),
	        cmocka_unit_test(test_memory_deletes_keep_probing_right),
	        cmocka_unit_test(test_blocks_agree_with_the_memory_store),
	        cmocka_unit_test(test_key_zero_written_twice),
	        cmocka_unit_test(test_damaged_blocks),
	        cmocka_unit_test(test_count_missing),
	        cmocka_unit_test(test_blocks_agree_with_walks_between),
	        cmocka_unit_test(test_full_map_spoils_the_transaction),
	        cmocka_unit_test(test_incompatible_database_refused),
	        cmocka_unit_test(test_prune_and_load),
	        cmocka_unit_test(test_training_renews_a_tokens_day),
	        cmocka_unit_test(test_one_handle_and_a_load_alone),
	        cmocka_unit_test(test_null_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
