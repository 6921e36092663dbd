/*
 * Training in batches. Each message's tokens are counted into a per-batch
 * table of count changes as it is queued, as if it will be trained (or
 * untrained) as asked: that is what nearly every message turns out to be,
 * and counting while the caller tokenizes the next messages keeps the
 * commit short. At commit one write transaction decides, message by
 * message and by digest, whether each is trained, moved from the other
 * class, already known, or (untraining) unknown; a message whose decision
 * differs adds a correction, and the summed changes are applied in key
 * order. One transaction per batch makes a batch atomic and keeps the
 * single writer cheap.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/bigmem.h"
#include "../common/grow.h"
#include "../store/db.h"

struct queued {
	struct chaff_digest digest;
	uint8_t cls;
	bool untrain;
	size_t off, n; /* its tokens' ids in batch->ids */
};

/* One token's count changes in the batch, in the order tokens were first
 * seen: spam and ham are counted as messages are queued. last is the
 * stamp of the message that touched it last, so a token repeated in a
 * message counts once without sorting. */
struct entry {
	uint64_t key;
	int32_t spam, ham;
	uint32_t last;
};

struct change {
	uint64_t key;
	int32_t spam, ham;
};

/*
 * The batch keeps its counts in a dense array of entries, found by key
 * through an open-addressing table of entry numbers (4 bytes a slot), and
 * each queued message as the entry numbers of its tokens (4 bytes each,
 * for the corrections at commit). A table of whole entries with the
 * messages' 8-byte hashes took two and a half times the memory, and on
 * this kind of machine first touching memory is dear: zeroing fresh pages
 * was a fifth of training a mailbox on one core.
 */
struct chaff_batch {
	chaff_db *db;
	uint32_t *ids;
	size_t nids, icap;
	struct queued *msgs;
	size_t nm, mcap;
	enum chaff_learned *outcome;
	struct entry *ents;
	size_t nents, ecap;
	uint32_t *table; /* entry number + 1; 0 is an empty slot */
	size_t tcap;
	int32_t (*corr)[2]; /* per entry, this commit attempt's corrections */
	size_t corr_cap;
	size_t corr_end; /* corr is zero from here on */
	uint32_t stamp;
	struct change *changes;
	size_t ccap;
	uint64_t *scratch; /* chaff_batch_add's hashes */
	size_t scap;
	unsigned threads; /* a commit may use this many (chaff_batch_threads) */
};

int chaff_batch_new(chaff_db *db, chaff_batch **out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	if (db->readonly)
		return CHAFF_EACCES;
	chaff_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return CHAFF_ENOMEM;
	b->db = db;
	b->threads = 1;
	*out = b;
	return CHAFF_OK;
}

void chaff_batch_threads(chaff_batch *b, unsigned threads)
{
	if (b)
		b->threads = threads ? threads : 1;
}

void chaff_batch_free(chaff_batch *b)
{
	if (!b)
		return;
	chaff_big_free(b->ids, b->icap * sizeof(*b->ids));
	free(b->msgs);
	free(b->outcome);
	chaff_big_free(b->ents, b->ecap * sizeof(*b->ents));
	chaff_big_free(b->table, b->tcap * sizeof(*b->table));
	chaff_big_free(b->corr, b->corr_cap * sizeof(*b->corr));
	chaff_big_free(b->changes, b->ccap * sizeof(*b->changes));
	free(b->scratch);
	free(b);
}

size_t chaff_batch_size(const chaff_batch *b)
{
	return b ? b->nm : 0;
}

static size_t home(size_t cap, uint64_t key)
{
	return (size_t)(key ^ key >> 29) & (cap - 1);
}

/* The table slot holding key's entry number, or the empty slot where it
 * goes. */
static uint32_t *probe(const chaff_batch *b, uint64_t key)
{
	size_t mask = b->tcap - 1;
	for (size_t i = home(b->tcap, key);; i = (i + 1) & mask) {
		uint32_t e = b->table[i];
		if (e == 0 || b->ents[e - 1].key == key)
			return &b->table[i];
	}
}

/* The table is a megabyte or more and a message's tokens land all over
 * it: each probe would wait for memory. Asking for the slot a few tokens
 * ahead overlaps those waits. */
enum { AHEAD = 16 };

/* Doubles the table (entries stay where they are). */
static int grow_table(chaff_batch *b)
{
	size_t cap = b->tcap ? b->tcap * 2 : 1 << 15;
	uint32_t *t = chaff_big_alloc(cap * sizeof(*t));
	if (!t)
		return CHAFF_ENOMEM;
	chaff_big_free(b->table, b->tcap * sizeof(*b->table));
	b->table = t;
	b->tcap = cap;
	for (size_t e = 0; e < b->nents; e++)
		*probe(b, b->ents[e].key) = (uint32_t)e + 1;
	return CHAFF_OK;
}

/* A stamp no entry holds yet. */
static uint32_t next_stamp(chaff_batch *b)
{
	if (++b->stamp == 0) { /* wrapped, once in 4 billion messages */
		for (size_t i = 0; i < b->nents; i++)
			b->ents[i].last = 0;
		b->stamp = 1;
	}
	return b->stamp;
}

/* Adds dspam and dham to the queued counts of every distinct token of
 * keys[0..n), and writes the tokens' entry numbers to ids. There is room
 * for every token being new (see reserve_message). */
static void count(chaff_batch *b, const uint64_t *keys, size_t n, uint32_t *ids, int dspam,
                  int dham)
{
	uint32_t stamp = next_stamp(b);
	for (size_t i = 0; i < AHEAD && i < n; i++)
		__builtin_prefetch(&b->table[home(b->tcap, keys[i])]);
	for (size_t i = 0; i < n; i++) {
		if (i + AHEAD < n)
			__builtin_prefetch(&b->table[home(b->tcap, keys[i + AHEAD])]);
		uint32_t *slot = probe(b, keys[i]);
		if (*slot == 0) {
			b->ents[b->nents] = (struct entry){ .key = keys[i] };
			*slot = (uint32_t)++b->nents;
		}
		uint32_t id = *slot - 1;
		ids[i] = id;
		struct entry *e = &b->ents[id];
		if (e->last == stamp)
			continue; /* seen earlier in this message */
		e->last = stamp;
		e->spam += dspam;
		e->ham += dham;
	}
}

/* The same as a correction of this commit attempt: m's tokens have their
 * entries already, counted when it was queued. */
static void correct(chaff_batch *b, const struct queued *m, int dspam, int dham)
{
	uint32_t stamp = next_stamp(b);
	for (size_t i = 0; i < m->n; i++) {
		uint32_t id = b->ids[m->off + i];
		if (b->ents[id].last == stamp)
			continue;
		b->ents[id].last = stamp;
		if (id >= b->corr_end)
			b->corr_end = (size_t)id + 1;
		b->corr[id][0] += dspam;
		b->corr[id][1] += dham;
	}
}

/* Room for nids token ids and nents entries in all, the count table at
 * most half full: CHAFF_OK or CHAFF_ENOMEM (capacities may have grown). */
static int reserve_tables(chaff_batch *b, size_t nids, size_t nents)
{
	if (chaff_big_reserve((void **)&b->ids, &b->icap, nids, sizeof(*b->ids), 1 << 16) ||
	    chaff_big_reserve((void **)&b->ents, &b->ecap, nents, sizeof(*b->ents), 1 << 14))
		return CHAFF_ENOMEM;
	while ((nents + 1) * 2 > b->tcap)
		if (grow_table(b) != CHAFF_OK)
			return CHAFF_ENOMEM;
	return CHAFF_OK;
}

/* What the SpamAssassin corpus holds per byte of mail: a distinct token
 * of a message every 23 bytes, a token new to the batch every 210 (less
 * as the batch grows); with some room to spare. The hint is capped at what
 * a batch of the command line's size usually holds. */
enum { BYTES_PER_ID = 20, BYTES_PER_ENTRY = 160 };
#define EXPECT_MAX ((uint64_t)256 << 20)

int chaff_batch_expect(chaff_batch *b, uint64_t bytes)
{
	if (!b)
		return CHAFF_EINVAL;
	if (bytes > EXPECT_MAX)
		bytes = EXPECT_MAX;
	return reserve_tables(b, (size_t)(bytes / BYTES_PER_ID), (size_t)(bytes / BYTES_PER_ENTRY));
}

/* Room for one more message of n tokens (none, for an empty message):
 * CHAFF_OK, or CHAFF_ENOMEM with nothing changed. */
static int reserve_message(chaff_batch *b, size_t n)
{
	if (b->nm == b->mcap) {
		size_t cap = b->mcap ? b->mcap * 2 : 256;
		struct queued *m = realloc(b->msgs, cap * sizeof(*m));
		if (!m)
			return CHAFF_ENOMEM;
		b->msgs = m;
		enum chaff_learned *o = realloc(b->outcome, cap * sizeof(*o));
		if (!o)
			return CHAFF_ENOMEM;
		b->outcome = o;
		b->mcap = cap;
	}
	/* Room for every token being new, so counting cannot fail half-way;
	 * entry numbers are 32 bits. */
	if (b->nents + n >= UINT32_MAX)
		return CHAFF_ENOMEM;
	return reserve_tables(b, b->nids + n, b->nents + n);
}

/* Queues a message of n token hashes; reserve_message made room. */
static void queue_message(chaff_batch *b, const uint64_t *keys, size_t n,
                          const struct chaff_digest *digest, enum chaff_class cls, int untrain)
{
	struct queued *m = &b->msgs[b->nm++];
	*m = (struct queued){*digest, (uint8_t)cls, untrain != 0, b->nids, n};
	int one = cls == CHAFF_SPAM, sign = untrain ? -1 : 1;
	if (n) /* an empty message has no entry numbers, perhaps not even the array */
		count(b, keys, n, b->ids + b->nids, sign * one, sign * !one);
	b->nids += n;
}

int chaff_batch_add(chaff_batch *b, const struct chaff_tokens *tk,
                    const struct chaff_digest *digest, enum chaff_class cls, int untrain)
{
	if (!b || !tk || (!tk->items && tk->count) || !digest ||
	    (cls != CHAFF_HAM && cls != CHAFF_SPAM))
		return CHAFF_EINVAL;
	if (chaff_reserve((void **)&b->scratch, &b->scap, tk->count, sizeof(*b->scratch)))
		return CHAFF_ENOMEM;
	for (size_t i = 0; i < tk->count; i++)
		b->scratch[i] = tk->items[i].hash;
	if (reserve_message(b, tk->count) != CHAFF_OK)
		return CHAFF_ENOMEM;
	queue_message(b, b->scratch, tk->count, digest, cls, untrain);
	return CHAFF_OK;
}

int chaff_batch_add_hashes(chaff_batch *b, const uint64_t *hashes, size_t n,
                           const struct chaff_digest *digest, enum chaff_class cls, int untrain)
{
	if (!b || (!hashes && n) || !digest || (cls != CHAFF_HAM && cls != CHAFF_SPAM))
		return CHAFF_EINVAL;
	if (reserve_message(b, n) != CHAFF_OK)
		return CHAFF_ENOMEM;
	queue_message(b, hashes, n, digest, cls, untrain);
	return CHAFF_OK;
}

/* One LSD radix pass: a[0..n) into out by the key's byte at shift,
 * keeping the order of equal bytes. */
static void radix_pass(const struct change *a, struct change *out, size_t n, unsigned shift)
{
	size_t pos[256] = {0};
	for (size_t i = 0; i < n; i++)
		pos[(a[i].key >> shift) & 0xff]++;
	size_t sum = 0;
	for (size_t k = 0; k < 256; k++) {
		size_t c = pos[k];
		pos[k] = sum;
		sum += c;
	}
	for (size_t i = 0; i < n; i++)
		out[pos[(a[i].key >> shift) & 0xff]++] = a[i];
}

/* LSD radix sort of a[0..n) by the key's low seven bytes, a byte per
 * pass through tmp (room for n). */
static void sort_low(struct change *a, struct change *tmp, size_t n)
{
	for (unsigned shift = 0; shift < 56; shift += 8) {
		radix_pass(a, tmp, n, shift);
		struct change *t = a;
		a = tmp;
		tmp = t;
	}
	/* after seven passes the result is in the scratch array */
	memcpy(tmp, a, n * sizeof(*a));
}

/* Sorts a[0..m) by insertion, true; or false, the changes still all there
 * but not sorted, once that took more than budget moves. */
static bool insertion_sort(struct change *a, size_t m, size_t budget)
{
	for (size_t i = 1; i < m; i++) {
		struct change c = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1].key > c.key; j--) {
			a[j] = a[j - 1];
			if (budget-- == 0) {
				a[j - 1] = c;
				return false;
			}
		}
		a[j] = c;
	}
	return true;
}

/* Sorts a stretch of changes whose keys share their top byte, through tmp
 * (room for m). Two radix passes by the next two bytes leave only keys
 * that share those as well out of order, and hashes, spread evenly, seldom
 * do: insertion finishes in about one more pass. Keys crowded into a few
 * values of those bytes (no hash function makes them) would make
 * insertion slow: past a budget of moves, the stretch is sorted by all its
 * bytes instead. */
static void sort_stretch(struct change *a, struct change *tmp, size_t m)
{
	if (m > 16) {
		radix_pass(a, tmp, m, 40);
		radix_pass(tmp, a, m, 48);
	}
	if (!insertion_sort(a, m, 4 * m + 64))
		sort_low(a, tmp, m);
}

/*
 * Sorts the changes by key in place, linear in their number (a batch has
 * hundreds of thousands): they are moved into 256 stretches by the key's
 * top byte, each swap putting one in its place, then each stretch (a few
 * hundred changes of random hashes) is sorted by the rest of the key
 * through a scratch array as large as the largest stretch. A second array
 * as large as all the changes was a megabyte or more of fresh memory each
 * commit. CHAFF_OK or CHAFF_ENOMEM (for the scratch array).
 */
static int sort_changes(struct change *a, size_t n)
{
	if (n < 2) /* (a may be NULL then) */
		return CHAFF_OK;
	size_t count[256] = {0}, next[256], end[256];
	for (size_t i = 0; i < n; i++)
		count[a[i].key >> 56]++;
	size_t sum = 0, most = 0;
	for (unsigned k = 0; k < 256; k++) {
		next[k] = sum;
		sum += count[k];
		end[k] = sum;
		if (count[k] > most)
			most = count[k];
	}
	for (unsigned k = 0; k < 256; k++) {
		while (next[k] < end[k]) {
			struct change c = a[next[k]];
			unsigned d = (unsigned)(c.key >> 56);
			while (d != k) { /* c goes to stretch d; what was there moves on */
				struct change t = a[next[d]];
				a[next[d]++] = c;
				c = t;
				d = (unsigned)(c.key >> 56);
			}
			a[next[k]++] = c;
		}
	}
	struct change *tmp = malloc((most ? most : 1) * sizeof(*tmp));
	if (!tmp)
		return CHAFF_ENOMEM;
	size_t start = 0;
	for (unsigned k = 0; k < 256; start = end[k++]) {
		size_t m = end[k] - start;
		sort_stretch(a + start, tmp, m);
	}
	free(tmp);
	return CHAFF_OK;
}

static uint32_t saturate(uint32_t v, int32_t d)
{
	int64_t r = (int64_t)v + d;
	return r < 0 ? 0 : r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

/* A message total, saturating as the counts do: at INT64_MAX, the most a
 * dump may carry, so that any database can be dumped and loaded back. */
static void adjust(uint64_t *total, int sign)
{
	if (sign > 0) {
		if (*total < INT64_MAX)
			(*total)++;
	} else if (*total > 0) {
		(*total)--;
	}
}

/* The decision for one message, given what its digest says was trained
 * (-1: nothing), and the correction it needs: m was counted when queued
 * as trained (or untrained) as asked. */
static enum chaff_learned decide(chaff_batch *b, const struct queued *m, int prior,
                                 struct db_totals *tot)
{
	uint64_t *mine = m->cls == CHAFF_SPAM ? &tot->spam : &tot->ham;
	uint64_t *other = m->cls == CHAFF_SPAM ? &tot->ham : &tot->spam;
	int one = m->cls == CHAFF_SPAM; /* +1 goes to spam when the class is spam */
	if (m->untrain) {
		if (prior != m->cls) {
			correct(b, m, one, !one); /* takes back the queued -1 */
			return CHAFF_LEARNED_NOT_TRAINED;
		}
		adjust(mine, -1);
		return CHAFF_LEARNED_UNTRAINED;
	}
	if (prior == m->cls) {
		correct(b, m, -one, -!one); /* takes back the queued +1 */
		return CHAFF_LEARNED_ALREADY;
	}
	adjust(mine, +1);
	if (prior < 0)
		return CHAFF_LEARNED_TRAINED;
	/* moved: the other class also loses it */
	correct(b, m, -!one, -one);
	adjust(other, -1);
	return CHAFF_LEARNED_MOVED;
}

/* r with change c applied; false when its counts are both 0 now (the
 * token is dropped). */
static bool change_record(struct chaff_record *r, const struct change *c, uint32_t today)
{
	r->spam = saturate(r->spam, c->spam);
	r->ham = saturate(r->ham, c->ham);
	if (c->spam > 0 || c->ham > 0)
		r->day = today;
	return r->spam || r->ham;
}

/* The changes (in key order), each looked up and written in place. */
static int apply(chaff_db *db, struct store_txn *t, const struct change *ch, size_t n)
{
	const struct store_ops *ops = db->st->ops;
	uint32_t today = db_today();
	int rc = CHAFF_OK;
	for (size_t i = 0; i < n && rc == CHAFF_OK; i++) {
		struct chaff_record r = {0, 0, today};
		rc = ops->get(t, ch[i].key, &r);
		if (rc != CHAFF_OK && rc != CHAFF_ENOTFOUND)
			return rc;
		bool existed = rc == CHAFF_OK;
		if (change_record(&r, &ch[i], today))
			rc = ops->put(t, ch[i].key, &r);
		else
			rc = existed ? ops->del(t, ch[i].key) : CHAFF_OK;
	}
	return rc;
}

struct stored {
	uint64_t key;
	struct chaff_record r;
};

struct collect {
	struct stored *a;
	size_t n, cap;
	const atomic_bool *stop; /* when set, the walk stops (a reader not needed) */
};

static int collect_one(void *u, uint64_t key, const struct chaff_record *r)
{
	struct collect *c = u;
	if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed))
		return CHAFF_EDB;
	/* first a megabyte's worth */
	if (chaff_big_reserve((void **)&c->a, &c->cap, c->n + 1, sizeof(*c->a),
	                      (1 << 20) / sizeof(*c->a)))
		return CHAFF_ENOMEM;
	c->a[c->n++] = (struct stored){ key, *r };
	return CHAFF_OK;
}

/* Every stored record, in key order, into *old. */
static int collect_all(const struct store_ops *ops, struct store_txn *t, uint64_t stored,
                       struct collect *old)
{
	/* sized for the tokens stored at once: no copies as it fills */
	size_t want = stored < SIZE_MAX / sizeof(*old->a) / 2 ? (size_t)stored + 1024 : 1024;
	int rc = chaff_big_reserve((void **)&old->a, &old->cap, want, sizeof(*old->a), want);
	return rc == CHAFF_OK ? ops->foreach(t, collect_one, old) : rc;
}

/*
 * The stored tokens read on a second thread, in a read transaction of
 * their own, while the commit's thread decides the messages and sorts the
 * changes: the write transaction holds the writer's lock, so no commit
 * can come between, and the read sees the tokens as the write found them
 * (it changes none before reading them all back from this copy).
 */
struct reader {
	chaff_db *db;
	uint64_t stored;
	struct collect old;
	int rc;
	pthread_t th;
	bool running;
	atomic_bool stop; /* the commit did not need the read after all */
};

static void *read_stored(void *arg)
{
	struct reader *r = arg;
	/* a failure here is the caller's to handle (it reads the tokens
	 * itself): nothing is logged from this thread */
	store_quiet_thread(true);
	const struct store_ops *ops = r->db->st->ops;
	r->old.stop = &r->stop;
	struct store_txn *t;
	r->rc = ops->begin(r->db->st, false, &t);
	if (r->rc != CHAFF_OK)
		return NULL;
	r->rc = collect_all(ops, t, r->stored, &r->old);
	ops->abort(t);
	return NULL;
}

/* What the reader found; *old empty and an error when it failed. */
static int reader_join(struct reader *r, struct collect *old)
{
	pthread_join(r->th, NULL);
	r->running = false;
	*old = r->old;
	old->stop = NULL;
	r->old = (struct collect){ 0 };
	return r->rc;
}

/* The same result by writing the tokens anew: every stored record is
 * read in key order, the tokens are cleared, and the merge of the two
 * sorted lists is written in rising key order. When a batch changes as
 * many tokens as the database holds (training a mailbox), that costs
 * less than a lookup and an insertion in the middle of the tree per
 * change, and leaves full pages instead of half-full ones: a smaller
 * database, and fewer pages to write at commit. */
static int rewrite(chaff_db *db, struct store_txn *t, const struct change *ch, size_t n,
                   uint64_t stored, struct reader *rd)
{
	const struct store_ops *ops = db->st->ops;
	struct collect old = { 0 };
	int rc = rd && rd->running ? reader_join(rd, &old) : CHAFF_EDB;
	if (rc != CHAFF_OK) { /* not read, or the reader failed: read them here */
		chaff_big_free(old.a, old.cap * sizeof(*old.a));
		old = (struct collect){ 0 };
		rc = collect_all(ops, t, stored, &old);
	}
	if (rc == CHAFF_OK)
		rc = ops->clear(t);
	uint32_t today = db_today();
	size_t i = 0, j = 0;
	while (rc == CHAFF_OK && (i < old.n || j < n)) {
		uint64_t key;
		struct chaff_record r = {0, 0, today};
		bool keep = true;
		if (j == n || (i < old.n && old.a[i].key < ch[j].key)) {
			key = old.a[i].key;
			r = old.a[i++].r;
		} else {
			key = ch[j].key;
			if (i < old.n && old.a[i].key == key)
				r = old.a[i++].r;
			keep = change_record(&r, &ch[j++], today);
		}
		if (keep)
			rc = ops->put(t, key, &r);
	}
	chaff_big_free(old.a, old.cap * sizeof(*old.a));
	return rc;
}

/* Decides every message in order (each sees the digests of those before
 * it), then applies the summed changes in key order: neighbouring keys
 * share pages. */
static int decide_and_apply(chaff_db *db, struct store_txn *t, chaff_batch *b, uint64_t stored,
                            struct reader *rd)
{
	const struct store_ops *ops = db->st->ops;
	struct db_totals tot;
	int rc = db_read_totals(db, t, &tot);
	if (rc != CHAFF_OK)
		return rc;
	/* This attempt's corrections start from nothing: whatever an earlier
	 * attempt or batch (larger, perhaps) left below corr_end is cleared. */
	if (b->nents > b->corr_cap) {
		chaff_big_free(b->corr, b->corr_cap * sizeof(*b->corr));
		b->corr_cap = b->corr_end = 0;
		b->corr = chaff_big_alloc(b->ecap * sizeof(*b->corr));
		if (!b->corr)
			return CHAFF_ENOMEM;
		b->corr_cap = b->ecap;
	}
	if (b->corr_end) /* (no array at all while no batch had entries) */
		memset(b->corr, 0, b->corr_end * sizeof(*b->corr));
	b->corr_end = 0;
	for (size_t i = 0; i < b->nm; i++) {
		const struct queued *m = &b->msgs[i];
		uint8_t prior;
		rc = ops->digest_get(t, &m->digest, &prior);
		if (rc != CHAFF_OK && rc != CHAFF_ENOTFOUND)
			return rc;
		int known = rc == CHAFF_OK ? prior : -1;
		enum chaff_learned what = decide(b, m, known, &tot);
		rc = CHAFF_OK;
		b->outcome[i] = what;
		if (what == CHAFF_LEARNED_TRAINED || what == CHAFF_LEARNED_MOVED)
			rc = ops->digest_put(t, &m->digest, m->cls);
		else if (what == CHAFF_LEARNED_UNTRAINED)
			rc = ops->digest_del(t, &m->digest);
		if (rc != CHAFF_OK)
			return rc;
	}
	if (b->nents > b->ccap) {
		/* contents are rebuilt by every attempt: a fresh array will do */
		struct change *c = chaff_big_alloc(b->nents * sizeof(*c));
		if (!c)
			return CHAFF_ENOMEM;
		chaff_big_free(b->changes, b->ccap * sizeof(*c));
		b->changes = c;
		b->ccap = b->nents;
	}
	size_t n = 0;
	for (size_t i = 0; i < b->nents; i++) {
		const struct entry *e = &b->ents[i];
		int32_t ds = e->spam, dh = e->ham;
		if (i < b->corr_end) {
			ds += b->corr[i][0];
			dh += b->corr[i][1];
		}
		if (ds || dh)
			b->changes[n++] = (struct change){e->key, ds, dh};
	}
	rc = sort_changes(b->changes, n);
	if (rc != CHAFF_OK)
		return rc;
	const struct change *ch = b->changes;
	rc = n == 0            ? CHAFF_OK
	     : n >= stored / 2 ? rewrite(db, t, ch, n, stored, rd)
	                       : apply(db, t, ch, n);
	if (rc != CHAFF_OK)
		return rc;
	bool changed = false; /* a batch of known messages is no training */
	for (size_t i = 0; i < b->nm; i++)
		changed |= b->outcome[i] != CHAFF_LEARNED_ALREADY &&
		           b->outcome[i] != CHAFF_LEARNED_NOT_TRAINED;
	if (!changed)
		return CHAFF_OK;
	tot.last_train = (int64_t)time(NULL);
	return db_write_totals(db, t, &tot);
}

static int commit_txn(chaff_db *db, struct store_txn *t, void *u)
{
	chaff_batch *b = u;
	const struct store_ops *ops = db->st->ops;
	/* the tokens stored (unknown: changes go in place) */
	uint64_t stored = UINT64_MAX, digests, used, file;
	if (b->nents && ops->info(t, &stored, &digests, &used, &file) != CHAFF_OK)
		stored = UINT64_MAX;
	/* A batch with as many tokens as the database holds will most likely
	 * write them anew (see rewrite): the stored ones are read meanwhile. */
	struct reader rd = { .db = db, .stored = stored };
	atomic_init(&rd.stop, false);
	if (b->threads > 1 && ops->parallel_reads && b->nents && stored &&
	    stored != UINT64_MAX && b->nents >= stored / 2)
		rd.running = pthread_create(&rd.th, NULL, read_stored, &rd) == 0;
	int rc = decide_and_apply(db, t, b, stored, &rd);
	if (rd.running) { /* (not wanted after all, or an error came first) */
		atomic_store(&rd.stop, true);
		struct collect old;
		reader_join(&rd, &old);
		chaff_big_free(old.a, old.cap * sizeof(*old.a));
	}
	return rc;
}

/* Empties the table for the next batch. The table keeps the size of the
 * largest batch, and a batch of one message (chaff eval commits each) has
 * a few hundred entries: their slots are found first, into the ids array
 * the batch no longer needs (it holds at least as many), then cleared. */
static void clear_table(chaff_batch *b)
{
	if (!b->table)
		return;
	if (b->nents * 16 > b->tcap || b->tcap > UINT32_MAX) {
		memset(b->table, 0, b->tcap * sizeof(*b->table));
		return;
	}
	for (size_t e = 0; e < b->nents; e++)
		b->ids[e] = (uint32_t)(probe(b, b->ents[e].key) - b->table);
	for (size_t e = 0; e < b->nents; e++)
		b->table[b->ids[e]] = 0;
}

int chaff_batch_commit(chaff_batch *b, enum chaff_learned *outcome)
{
	if (!b)
		return CHAFF_EINVAL;
	int rc = CHAFF_OK;
	if (b->nm) {
		rc = db_write_txn(b->db, commit_txn, b);
		if (rc == CHAFF_OK && outcome)
			memcpy(outcome, b->outcome, b->nm * sizeof(*outcome));
	}
	clear_table(b);
	b->nm = b->nids = b->nents = 0;
	return rc;
}
