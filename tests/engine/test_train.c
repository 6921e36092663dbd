/* Batched training: digests decide train, move, skip and untrain; counts
 * saturate; totals follow. Runs on the in-memory store and on LMDB. */
#include "test_db_util.h"

static int use_lmdb;
static char *dir;

static chaff_db *open_db(void)
{
	chaff_db *db;
	if (use_lmdb) {
		dir = temp_dir();
		struct chaff_db_options o = { .flags = CHAFF_DB_CREATE };
		assert_int_equal(chaff_db_open(dir, &o, &db), CHAFF_OK);
	} else {
		assert_int_equal(chaff_db_open_memory(NULL, &db), CHAFF_OK);
	}
	return db;
}

static void close_db(chaff_db *db)
{
	chaff_db_close(db);
	if (use_lmdb) {
		remove_tree(dir);
		free(dir);
	}
}

static void totals(chaff_db *db, uint64_t spam, uint64_t ham)
{
	struct chaff_db_stats st;
	assert_int_equal(chaff_db_stats(db, &st), CHAFF_OK);
	assert_int_equal(st.spam_messages, spam);
	assert_int_equal(st.ham_messages, ham);
}

static void test_train_skip_move_untrain(void **state)
{
	(void)state;
	chaff_db *db = open_db();
	const int a[] = { 1, 2, 3, 3, 3 }; /* repeats count once */
	assert_int_equal(train_one(db, 1, a, 5, CHAFF_SPAM, 0), CHAFF_LEARNED_TRAINED);
	totals(db, 1, 0);
	assert_int_equal(record_of(db, 3).spam, 1);
	assert_int_equal(train_one(db, 1, a, 5, CHAFF_SPAM, 0), CHAFF_LEARNED_ALREADY);
	totals(db, 1, 0);
	assert_int_equal(record_of(db, 3).spam, 1);
	/* the user says it was ham after all: moved */
	assert_int_equal(train_one(db, 1, a, 5, CHAFF_HAM, 0), CHAFF_LEARNED_MOVED);
	totals(db, 0, 1);
	struct chaff_record r = record_of(db, 2);
	assert_int_equal(r.spam, 0);
	assert_int_equal(r.ham, 1);
	/* untraining as spam what is ham is refused */
	assert_int_equal(train_one(db, 1, a, 5, CHAFF_SPAM, 1), CHAFF_LEARNED_NOT_TRAINED);
	assert_int_equal(train_one(db, 99, a, 5, CHAFF_HAM, 1), CHAFF_LEARNED_NOT_TRAINED);
	totals(db, 0, 1);
	assert_int_equal(train_one(db, 1, a, 5, CHAFF_HAM, 1), CHAFF_LEARNED_UNTRAINED);
	totals(db, 0, 0);
	/* a record at zero is gone */
	assert_int_equal(record_of(db, 2).ham, UINT32_MAX);
	close_db(db);
}

static void test_counts_never_negative(void **state)
{
	(void)state;
	chaff_db *db = open_db();
	const int a[] = { 1, 2 }, b[] = { 1, 2, 7 };
	train_one(db, 5, a, 2, CHAFF_SPAM, 0);
	/* untraining the same digest with a token it never had (a re-delivered
	 * copy with other tokens) leaves that token at zero, not below */
	assert_int_equal(train_one(db, 5, b, 3, CHAFF_SPAM, 1), CHAFF_LEARNED_UNTRAINED);
	assert_int_equal(record_of(db, 7).spam, UINT32_MAX);
	assert_int_equal(record_of(db, 1).spam, UINT32_MAX);
	close_db(db);
}

static void test_batch_of_many(void **state)
{
	(void)state;
	chaff_db *db = open_db();
	chaff_batch *b;
	assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
	static struct fake_tokens f;
	for (int m = 0; m < 300; m++) {
		int ids[3] = { m % 7, 100 + m % 3, 500 };
		struct chaff_digest d = digest_of(m % 250); /* 50 repeats */
		assert_int_equal(chaff_batch_add(b, fake(&f, ids, 3), &d,
		                                 m % 2 ? CHAFF_SPAM : CHAFF_HAM, 0),
		                 CHAFF_OK);
	}
	assert_int_equal(chaff_batch_size(b), 300);
	enum chaff_learned out[300];
	assert_int_equal(chaff_batch_commit(b, out), CHAFF_OK);
	assert_int_equal(chaff_batch_size(b), 0);
	int trained = 0, already = 0, moved = 0;
	for (int i = 0; i < 300; i++) {
		trained += out[i] == CHAFF_LEARNED_TRAINED;
		already += out[i] == CHAFF_LEARNED_ALREADY;
		moved += out[i] == CHAFF_LEARNED_MOVED;
	}
	/* digests repeat every 250: message m and m+250 differ in class when
	 * 250 is even... m and m+250 have the same parity: already trained */
	assert_int_equal(trained, 250);
	assert_int_equal(already, 50);
	assert_int_equal(moved, 0);
	struct chaff_record r = record_of(db, 500);
	assert_int_equal(r.spam + r.ham, 250);
	totals(db, 125, 125);
	chaff_batch_free(b);
	close_db(db);
}

/* Digests are kept in every database, so their values may not change
 * with the code that computes them: pinned for messages that take each
 * way through it (many short header pieces, a CRLF body with many line
 * ends, a body quoting "From " lines, a long body, a tag zone). */
static void test_digest_values(void **state)
{
	(void)state;
	static char big[20000];
	size_t n = (size_t)snprintf(big, sizeof(big),
	                            "From: a@example.com\r\nTo: b@c\r\n"
	                            "Subject: many\r\n  words\tand   space\r\n\r\n");
	for (int i = 0; n + 40 < sizeof(big); i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "line %d of the body\r\n", i);
	static char lf[sizeof(big)]; /* the same with LF line ends: long pieces */
	size_t nlf = 0;
	for (size_t i = 0; i < n; i++)
		if (big[i] != '\r')
			lf[nlf++] = big[i];
	const char *msgs[] = {
	        "From: A@Example.COM\nTo: x@y, z@w,\n\tv@u\nCc: q@r\nSubject:  Hello \n  there\n"
	        "Date: Mon, 1 Jan 2024\nMessage-ID: <x@y>\nX-Other: 1\n\nbody line\nsecond\n\n\n",
	        "From: a@b\r\nSubject: s\r\n\r\na\r\nb\rc\r\n\r\nd\r\n",
	        "From: a@b\nSubject: s\n\ntext\n>From here\n>>From there\nFrom x\nend\n",
	        "From: a@b\nSubject: s\nnot a field\nX-Spam-Flag: YES\nX-Chaff-Score: "
	        "0.9\n\nbody\n",
	        big,
	        lf,
	};
	static const char *const want[] = {
	        "063e04fec39c0817d35b18a79649cd4a", "cee16c56461e672732229164bd3a4bd4",
	        "9b89f2b68e11f9ca9e1efd31ae8f9ece", "0ac6db3b2182b4060f6ed3878901e57a",
	        "85c945f3f87cf1d48c2420dc0b33664c", "85c945f3f87cf1d48c2420dc0b33664c",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct chaff_digest d;
		chaff_message_digest(msgs[i], strlen(msgs[i]), &d);
		char hex[33];
		for (int k = 0; k < 16; k++)
			snprintf(hex + 2 * k, 3, "%02x", d.bytes[k]);
		if (strcmp(hex, want[i]) != 0)
			fail_msg("message %zu: digest %s, want %s", i, hex, want[i]);
	}
}

static void test_digest_identity(void **state)
{
	(void)state;
	const char *m1 = "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody line\nsecond line\n";
	const char *m2 = "Received: from relay by mx; Mon, 1 Jan 2024\nX-Spam-Status: No\n"
	                 "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody line\nsecond line\n";
	const char *m3 = "From: a@example.com\r\nSubject: Hello\r\nDate: Mon, 1 Jan 2024\r\n"
	                 "Message-ID: <x@y>\r\n\r\nbody line\r\nsecond line\r\n";
	const char *m4 = "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody line\nother line\n";
	const char *m5 = "From: a@example.com\nSubject: Hello!\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody line\nsecond line\n";
	const char *m6 = "From b@c Mon Jan  1 00:00:00 2024\nFrom: a@example.com\nSubject:\n"
	                 " Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody line\nsecond line\n";
	/* an mbox adds a blank line after the message */
	const char *m7 = "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody line\nsecond line\n\n";
	/* a '\r' that ends no line is part of the text */
	const char *m8 = "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody\r line\nsecond line\n";
	const char *m9 = "From: a@example.com\nSubject: Hello\nDate: Mon, 1 Jan 2024\n"
	                 "Message-ID: <x@y>\n\nbody\r line\r\nsecond line\r\n";
	struct chaff_digest d[9];
	const char *m[] = { m1, m2, m3, m4, m5, m6, m7, m8, m9 };
	for (int i = 0; i < 9; i++)
		chaff_message_digest(m[i], strlen(m[i]), &d[i]);
	/* each header an author writes counts: another Date, Cc, To or From
	 * is another message; folding does not count */
	const char *base = "From: a@example.com\nTo: b@example.org\nCc: c@example.net,\n d@example.net\n"
	                   "Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody\n";
	const char *other[] = {
		"From: a@example.com\nTo: b@example.org\nCc: c@example.net,\n d@example.net\n"
		"Subject: Hello\nDate: Tue, 2 Jan 2024\nMessage-ID: <x@y>\n\nbody\n",
		"From: a@example.com\nTo: b@example.org\nCc: c@example.net\n"
		"Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody\n",
		"From: a@example.com\nTo: e@example.org\nCc: c@example.net,\n d@example.net\n"
		"Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody\n",
		"From: f@example.com\nTo: b@example.org\nCc: c@example.net,\n d@example.net\n"
		"Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody\n",
		"From: a@example.com\nTo: b@example.org\nCc: c@example.net,\n d@example.net\n"
		"Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <z@y>\n\nbody\n",
	};
	const char *folded = "From: a@example.com\nTo: b@example.org\nCc: c@example.net, d@example.net\n"
	                     "Subject: Hello\nDate: Mon, 1 Jan 2024\nMessage-ID: <x@y>\n\nbody\n";
	struct chaff_digest db_, dx;
	chaff_message_digest(base, strlen(base), &db_);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		chaff_message_digest(other[i], strlen(other[i]), &dx);
		assert_memory_not_equal(&db_, &dx, sizeof(dx));
	}
	chaff_message_digest(folded, strlen(folded), &dx);
	assert_memory_equal(&db_, &dx, sizeof(dx));
	assert_memory_equal(&d[0], &d[1], sizeof(d[0])); /* new relay headers */
	assert_memory_equal(&d[0], &d[2], sizeof(d[0])); /* CRLF */
	assert_memory_equal(&d[0], &d[5], sizeof(d[0])); /* mbox line, folding */
	assert_memory_equal(&d[0], &d[6], sizeof(d[0])); /* trailing blank line */
	assert_memory_not_equal(&d[0], &d[3], sizeof(d[0])); /* other body */
	assert_memory_not_equal(&d[0], &d[4], sizeof(d[0])); /* other subject */
	assert_memory_not_equal(&d[0], &d[7], sizeof(d[0])); /* a lone CR */
	assert_memory_equal(&d[7], &d[8], sizeof(d[0]));     /* ... kept, CRLF or not */
}

/* The digest's header block ends where the tokenizer's does: at the first
 * line that is no header field, blank or not. chaff filter puts a blank
 * line there; the tagged copy must be the message that was learned. */
static void test_digest_header_block_ends_as_tokenizer(void **state)
{
	(void)state;
	const char *m[] = {
	        "From: a@example.com\nSubject: cheap\nbody text\nmore\n",
	        "From: a@example.com\nSubject: cheap\n\nbody text\nmore\n",
	        "From: a@example.com\nSubject: cheap\nX-Chaff-Verdict: spam\n\nbody text\nmore\n",
	        /* a line led by white space before any field: all of it is body */
	        " ham\nSubject: cheap\n\nbody\n",
	        "X-Chaff-Verdict: spam\n\n ham\nSubject: cheap\n\nbody\n",
	        /* other body */
	        "From: a@example.com\nSubject: cheap\nbody text\nless\n",
	};
	struct chaff_digest d[6];
	for (int i = 0; i < 6; i++)
		chaff_message_digest(m[i], strlen(m[i]), &d[i]);
	assert_memory_equal(&d[0], &d[1], sizeof(d[0]));
	assert_memory_equal(&d[0], &d[2], sizeof(d[0]));
	assert_memory_equal(&d[3], &d[4], sizeof(d[0]));
	assert_memory_not_equal(&d[0], &d[5], sizeof(d[0]));
}

static void test_readonly_refuses_training(void **state)
{
	(void)state;
	if (!use_lmdb)
		skip();
	char *d = temp_dir();
	chaff_db *db;
	struct chaff_db_options o = { .flags = CHAFF_DB_CREATE };
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	chaff_db_close(db);
	o.flags = CHAFF_DB_READONLY;
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	chaff_batch *b;
	assert_int_equal(chaff_batch_new(db, &b), CHAFF_EACCES);
	assert_int_equal(chaff_db_set_param(db, "robs", 0.5), CHAFF_EACCES);
	chaff_db_close(db);
	remove_tree(d);
	free(d);
}

static void test_map_grows_by_itself(void **state)
{
	(void)state;
	if (!use_lmdb)
		skip();
	char *d = temp_dir();
	chaff_db *db;
	/* a 256 KiB map fills after about ten thousand records */
	struct chaff_db_options o = { .flags = CHAFF_DB_CREATE, .map_size = 256 << 10 };
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	static int ids[20000];
	for (int i = 0; i < 20000; i++)
		ids[i] = i;
	for (int m = 0; m < 5; m++)
		assert_int_equal(train_one(db, m, ids + m * 4000, 4000, CHAFF_SPAM, 0),
		                 CHAFF_LEARNED_TRAINED);
	struct chaff_db_stats st;
	assert_int_equal(chaff_db_stats(db, &st), CHAFF_OK);
	assert_int_equal(st.tokens, 20000);
	assert_true(st.bytes_used > (256 << 10));
	chaff_db_close(db);
	/* and it opens again at its grown size */
	assert_int_equal(chaff_db_open(d, &o, &db), CHAFF_OK);
	assert_int_equal(record_of(db, 19999).spam, 1);
	chaff_db_close(db);
	remove_tree(d);
	free(d);
}

struct recs {
	uint64_t key[4096];
	uint32_t spam[4096], ham[4096];
	size_t n;
};

static int add_rec(void *u, uint64_t key, const struct chaff_record *r)
{
	struct recs *rs = u;
	assert_true(rs->n < 4096);
	rs->key[rs->n] = key;
	rs->spam[rs->n] = r->spam;
	rs->ham[rs->n++] = r->ham;
	return 0;
}

/* Message m of the test below: ten tokens out of a thousand. */
static void msg_tokens(int m, int *ids)
{
	for (int k = 0; k < 10; k++)
		ids[k] = (m * 7 + k * 13) % 1000;
}

/* Trains (or untrains) messages from..to-1, all in one batch or a batch
 * each. A batch that changes about as many tokens as are stored writes
 * the tokens anew; a small one changes them in place. */
static void train_range(chaff_db *db, int from, int to, bool one_batch, int untrain, int flip)
{
	static struct fake_tokens f;
	chaff_batch *b = NULL;
	for (int m = from; m < to; m++) {
		if (!b)
			assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
		int ids[10];
		msg_tokens(m, ids);
		struct chaff_digest d = digest_of(m);
		enum chaff_class cls = (m % 3 == 0) != flip ? CHAFF_SPAM : CHAFF_HAM;
		assert_int_equal(chaff_batch_add(b, fake(&f, ids, 10), &d, cls, untrain), CHAFF_OK);
		if (!one_batch || m == to - 1) {
			assert_int_equal(chaff_batch_commit(b, NULL), CHAFF_OK);
			chaff_batch_free(b);
			b = NULL;
		}
	}
}

static void test_rewrite_equals_in_place(void **state)
{
	(void)state;
	chaff_db *dbs[2];
	char *dirs[2];
	for (int i = 0; i < 2; i++) {
		dbs[i] = open_db();
		dirs[i] = dir;
	}
	/* dbs[0] a message per batch, dbs[1] every step in one batch */
	for (int i = 0; i < 2; i++) {
		train_range(dbs[i], 0, 200, i, 0, 0);
		train_range(dbs[i], 0, 100, i, 1, 0);   /* untrained: many counts reach 0 */
		train_range(dbs[i], 150, 200, i, 0, 1); /* moved to the other class */
	}
	static struct recs r[2];
	for (int i = 0; i < 2; i++) {
		r[i].n = 0;
		assert_int_equal(chaff_db_foreach(dbs[i], add_rec, &r[i]), CHAFF_OK);
	}
	assert_true(r[0].n > 300);
	assert_int_equal(r[0].n, r[1].n);
	for (size_t k = 0; k < r[0].n; k++) {
		assert_int_equal(r[0].key[k], r[1].key[k]);
		assert_int_equal(r[0].spam[k], r[1].spam[k]);
		assert_int_equal(r[0].ham[k], r[1].ham[k]);
		assert_true(r[0].spam[k] + r[0].ham[k] > 0);
	}
	/* messages 100..149 as trained (17 spam), 150..199 flipped (32) */
	totals(dbs[0], 49, 51);
	totals(dbs[1], 49, 51);
	for (int i = 0; i < 2; i++) {
		dir = dirs[i];
		close_db(dbs[i]);
	}
}

/* Corrections (a known message in a batch) of one commit must not leak
 * into a later one: a large batch with a correction at a high entry, a
 * small one without, then one whose tokens reach that entry again. */
static void test_corrections_stay_in_their_batch(void **state)
{
	(void)state;
	chaff_db *db = open_db();
	static uint64_t big[1000], big2[1000], small[10];
	const uint64_t x[1] = { 7 };
	for (int i = 0; i < 1000; i++) {
		big[i] = 100000 + (uint64_t)i;
		big2[i] = 200000 + (uint64_t)i;
	}
	for (int i = 0; i < 10; i++)
		small[i] = 300000 + (uint64_t)i;
	struct {
		int id;
		const uint64_t *h;
		size_t n;
	} steps[][2] = {
		{ { 1, x, 1 }, { 0, NULL, 0 } },
		{ { 2, big, 1000 }, { 1, x, 1 } }, /* message 1 again: a correction */
		{ { 3, small, 10 }, { 0, NULL, 0 } },
		{ { 1, x, 1 }, { 4, big2, 1000 } },
	};
	/* one batch for all four commits, as chaff eval keeps one */
	chaff_batch *b;
	assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
	for (size_t s = 0; s < 4; s++) {
		for (int k = 0; k < 2 && steps[s][k].id; k++) {
			struct chaff_digest d = digest_of(steps[s][k].id);
			assert_int_equal(chaff_batch_add_hashes(b, steps[s][k].h, steps[s][k].n, &d,
			                                        CHAFF_SPAM, 0),
			                 CHAFF_OK);
		}
		assert_int_equal(chaff_batch_commit(b, NULL), CHAFF_OK);
	}
	chaff_batch_free(b);
	for (int k = 0; k < 1000; k++) {
		struct rec_find f = { 200000 + (uint64_t)k, { 0, 0, 0 }, 0 };
		assert_int_equal(chaff_db_foreach(db, find_rec, &f), CHAFF_OK);
		assert_true(f.found);
		assert_int_equal(f.r.spam, 1);
	}
	close_db(db);
}

/* Tokens with hashes spread over all 64 bits, as real ones are, through
 * batches of every size from one message up, with and without a size
 * hint: the store ends with exactly the counts kept here, and gives them
 * back in rising key order. */
struct keyed {
	uint64_t key[4000];
	uint32_t spam[4000], ham[4000];
	size_t n;
	uint64_t last;
	int ordered;
};

static int pool_index(const struct keyed *k, uint64_t key)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->key[i] == key)
			return (int)i;
	return -1;
}

static int check_rec(void *u, uint64_t key, const struct chaff_record *r)
{
	struct keyed *k = u;
	if (key <= k->last && k->ordered == 1)
		k->ordered = 0;
	k->last = key;
	int i = pool_index(k, key);
	assert_true(i >= 0);
	assert_int_equal(r->spam, k->spam[i]);
	assert_int_equal(r->ham, k->ham[i]);
	k->spam[i] = k->ham[i] = 0; /* seen */
	return 0;
}

/* Trains messages of keys drawn from a pool, in batches of several sizes,
 * and checks every stored count. The pool holds random 64-bit keys, as
 * hashes are; or, crowded, small ones that share all but their two low
 * bytes, as no hash function makes them (the sort of the changes must
 * still order them). */
static void run_keys(bool crowded)
{
	static struct keyed k;
	memset(&k, 0, sizeof(k));
	k.n = 4000;
	uint64_t x = 0x9E3779B97F4A7C15u;
	for (size_t i = 0; i < k.n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k.key[i] = crowded ? 1 + i * 13 : x;
	}
	chaff_db *db = open_db();
	const size_t sizes[] = {1, 7, 300, 2000};
	int msg = 0;
	for (size_t s = 0; s < 4; s++) {
		chaff_batch *b;
		assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
		if (s % 2)
			assert_int_equal(chaff_batch_expect(b, (uint64_t)sizes[s] << 12), CHAFF_OK);
		for (size_t m = 0; m < sizes[s]; m++, msg++) {
			uint64_t h[60];
			enum chaff_class cls = msg % 3 ? CHAFF_HAM : CHAFF_SPAM;
			for (size_t t = 0; t < 60; t++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				h[t] = k.key[x % k.n];
			}
			for (size_t t = 0; t < 60; t++) { /* each distinct token once */
				size_t u = 0;
				while (u < t && h[u] != h[t])
					u++;
				if (u < t)
					continue;
				int i = pool_index(&k, h[t]);
				if (cls == CHAFF_SPAM)
					k.spam[i]++;
				else
					k.ham[i]++;
			}
			struct chaff_digest d = digest_of(msg);
			assert_int_equal(chaff_batch_add_hashes(b, h, 60, &d, cls, 0), CHAFF_OK);
		}
		assert_int_equal(chaff_batch_commit(b, NULL), CHAFF_OK);
		chaff_batch_free(b);
	}
	k.ordered = 1;
	assert_int_equal(chaff_db_foreach(db, check_rec, &k), CHAFF_OK);
	assert_int_equal(k.ordered, 1);
	for (size_t i = 0; i < k.n; i++) /* every token trained was stored */
		assert_int_equal(k.spam[i] + k.ham[i], 0);
	close_db(db);
}

static void test_random_keys(void **state)
{
	(void)state;
	run_keys(false);
}

static void test_crowded_keys(void **state)
{
	(void)state;
	run_keys(true);
}

static int on_lmdb(void **state)
{
	(void)state;
	use_lmdb = 1;
	return 0;
}

/* A message of no tokens, the first of a new batch (no arrays yet): it
 * trains, with its digest, and counts in the totals. */
static void test_message_without_tokens(void **state)
{
	(void)state;
	chaff_db *db = open_db();
	chaff_batch *b;
	assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
	struct chaff_digest d = digest_of(42);
	assert_int_equal(chaff_batch_add_hashes(b, NULL, 0, &d, CHAFF_SPAM, 0), CHAFF_OK);
	/* tokens said to be there but not given: refused, not read */
	struct chaff_tokens none = {NULL, 3, 0};
	assert_int_equal(chaff_batch_add(b, &none, &d, CHAFF_SPAM, 0), CHAFF_EINVAL);
	assert_int_equal(chaff_batch_add_hashes(b, NULL, 3, &d, CHAFF_SPAM, 0), CHAFF_EINVAL);
	assert_int_equal(chaff_batch_size(b), 1);
	enum chaff_learned out[1];
	assert_int_equal(chaff_batch_commit(b, out), CHAFF_OK);
	assert_int_equal(out[0], CHAFF_LEARNED_TRAINED);
	chaff_batch_free(b);
	struct chaff_db_stats st;
	assert_int_equal(chaff_db_stats(db, &st), CHAFF_OK);
	assert_int_equal(st.spam_messages, 1);
	close_db(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_train_skip_move_untrain),
	        cmocka_unit_test(test_message_without_tokens),
	        cmocka_unit_test(test_counts_never_negative),
	        cmocka_unit_test(test_batch_of_many),
	        cmocka_unit_test(test_digest_identity),
	        cmocka_unit_test(test_digest_header_block_ends_as_tokenizer),
	        cmocka_unit_test(test_rewrite_equals_in_place),
	        cmocka_unit_test(test_corrections_stay_in_their_batch),
	        cmocka_unit_test(test_random_keys),
	        cmocka_unit_test(test_crowded_keys),
	        cmocka_unit_test(test_digest_values),
	};
	const struct CMUnitTest lmdb_only[] = {
		cmocka_unit_test(test_readonly_refuses_training),
		cmocka_unit_test(test_map_grows_by_itself),
	};
	int failed = cmocka_run_group_tests_name("memory store", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("lmdb store", tests, on_lmdb, NULL);
	failed += cmocka_run_group_tests_name("lmdb only", lmdb_only, on_lmdb, NULL);
	return failed;
}
