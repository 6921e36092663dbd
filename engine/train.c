/*
 * Training in batches. Messages are queued with their distinct token
 * hashes; at commit one write transaction decides, message by message and
 * by digest, whether each is trained, moved from the other class, already
 * known, or (untraining) unknown, sums the count changes of the whole batch
 * per token, and applies them in key order. One transaction per batch
 * makes a batch atomic and keeps the single writer cheap.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/db.h"

struct queued {
	struct chaff_digest digest;
	uint8_t cls;
	bool untrain;
	size_t off, n; /* its hashes in batch->hashes */
};

struct delta {
	uint64_t key;
	int32_t spam, ham;
	bool used;
};

struct chaff_batch {
	chaff_db *db;
	uint64_t *hashes;
	size_t nh, hcap;
	struct queued *msgs;
	size_t nm, mcap;
	enum chaff_learned *outcome;
	/* per-token sums, rebuilt by every attempt of the commit */
	struct delta *deltas;
	size_t dcap, dn;
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
	*out = b;
	return CHAFF_OK;
}

void chaff_batch_free(chaff_batch *b)
{
	if (!b)
		return;
	free(b->hashes);
	free(b->msgs);
	free(b->outcome);
	free(b->deltas);
	free(b);
}

size_t chaff_batch_size(const chaff_batch *b)
{
	return b->nm;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int chaff_batch_add(chaff_batch *b, const struct chaff_tokens *tk,
                    const struct chaff_digest *digest, enum chaff_class cls, int untrain)
{
	if (!b || !tk || !digest || (cls != CHAFF_HAM && cls != CHAFF_SPAM))
		return CHAFF_EINVAL;
	if (b->nh + tk->count > b->hcap) {
		size_t cap = b->hcap ? b->hcap : 1 << 16;
		while (cap < b->nh + tk->count)
			cap *= 2;
		uint64_t *h = realloc(b->hashes, cap * sizeof(*h));
		if (!h)
			return CHAFF_ENOMEM;
		b->hashes = h;
		b->hcap = cap;
	}
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
	/* A token counts once per message, however often it occurs. */
	uint64_t *h = b->hashes + b->nh;
	for (size_t i = 0; i < tk->count; i++)
		h[i] = tk->items[i].hash;
	qsort(h, tk->count, sizeof(*h), cmp_u64);
	size_t n = 0;
	for (size_t i = 0; i < tk->count; i++)
		if (i == 0 || h[i] != h[n - 1])
			h[n++] = h[i];
	b->msgs[b->nm++] = (struct queued){*digest, (uint8_t)cls, untrain != 0, b->nh, n};
	b->nh += n;
	return CHAFF_OK;
}

static struct delta *delta_slot(chaff_batch *b, uint64_t key)
{
	size_t mask = b->dcap - 1;
	for (size_t i = (key ^ key >> 29) & mask;; i = (i + 1) & mask) {
		struct delta *d = &b->deltas[i];
		if (!d->used) {
			d->used = true;
			d->key = key;
			d->spam = d->ham = 0;
			b->dn++;
			return d;
		}
		if (d->key == key)
			return d;
	}
}

/* Adds sign to the class count of every token of message m. */
static void count(chaff_batch *b, const struct queued *m, uint8_t cls, int sign)
{
	for (size_t i = 0; i < m->n; i++) {
		struct delta *d = delta_slot(b, b->hashes[m->off + i]);
		if (cls == CHAFF_SPAM)
			d->spam += sign;
		else
			d->ham += sign;
	}
}

static int cmp_delta(const void *a, const void *b)
{
	uint64_t x = ((const struct delta *)a)->key, y = ((const struct delta *)b)->key;
	return x < y ? -1 : x > y;
}

static uint32_t saturate(uint32_t v, int32_t d)
{
	int64_t r = (int64_t)v + d;
	return r < 0 ? 0 : r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

static void adjust(uint64_t *total, int sign)
{
	if (sign > 0)
		(*total)++;
	else if (*total > 0)
		(*total)--;
}

/* The decision for one message, given what its digest says was trained. */
static enum chaff_learned decide(chaff_batch *b, const struct queued *m, int prior,
                                 struct db_totals *tot)
{
	uint64_t *mine = m->cls == CHAFF_SPAM ? &tot->spam : &tot->ham;
	uint64_t *other = m->cls == CHAFF_SPAM ? &tot->ham : &tot->spam;
	if (m->untrain) {
		if (prior != m->cls)
			return CHAFF_LEARNED_NOT_TRAINED;
		count(b, m, m->cls, -1);
		adjust(mine, -1);
		return CHAFF_LEARNED_UNTRAINED;
	}
	if (prior == m->cls)
		return CHAFF_LEARNED_ALREADY;
	count(b, m, m->cls, +1);
	adjust(mine, +1);
	if (prior < 0)
		return CHAFF_LEARNED_TRAINED;
	count(b, m, (uint8_t)prior, -1);
	adjust(other, -1);
	return CHAFF_LEARNED_MOVED;
}

static int commit_txn(chaff_db *db, struct store_txn *t, void *u)
{
	chaff_batch *b = u;
	const struct store_ops *ops = db->st->ops;
	struct db_totals tot;
	int rc = db_read_totals(db, t, &tot);
	if (rc != CHAFF_OK)
		return rc;
	memset(b->deltas, 0, b->dcap * sizeof(*b->deltas));
	b->dn = 0;
	for (size_t i = 0; i < b->nm; i++) {
		const struct queued *m = &b->msgs[i];
		uint8_t prior;
		rc = ops->digest_get(t, &m->digest, &prior);
		if (rc != CHAFF_OK && rc != CHAFF_ENOTFOUND)
			return rc;
		enum chaff_learned what = decide(b, m, rc == CHAFF_OK ? prior : -1, &tot);
		b->outcome[i] = what;
		if (what == CHAFF_LEARNED_TRAINED || what == CHAFF_LEARNED_MOVED)
			rc = ops->digest_put(t, &m->digest, m->cls);
		else if (what == CHAFF_LEARNED_UNTRAINED)
			rc = ops->digest_del(t, &m->digest);
		else
			rc = CHAFF_OK;
		if (rc != CHAFF_OK)
			return rc;
	}
	/* Compact the used slots to the front and apply them in key order:
	 * neighbouring keys share pages. */
	size_t n = 0;
	for (size_t i = 0; i < b->dcap; i++)
		if (b->deltas[i].used && (b->deltas[i].spam || b->deltas[i].ham))
			b->deltas[n++] = b->deltas[i];
	qsort(b->deltas, n, sizeof(*b->deltas), cmp_delta);
	uint32_t today = db_today();
	for (size_t i = 0; i < n && rc == CHAFF_OK; i++) {
		const struct delta *d = &b->deltas[i];
		struct chaff_record r = {0, 0, today};
		rc = ops->get(t, d->key, &r);
		if (rc != CHAFF_OK && rc != CHAFF_ENOTFOUND)
			return rc;
		bool existed = rc == CHAFF_OK;
		r.spam = saturate(r.spam, d->spam);
		r.ham = saturate(r.ham, d->ham);
		if (d->spam > 0 || d->ham > 0)
			r.day = today;
		if (r.spam == 0 && r.ham == 0)
			rc = existed ? ops->del(t, d->key) : CHAFF_OK;
		else
			rc = ops->put(t, d->key, &r);
	}
	if (rc != CHAFF_OK)
		return rc;
	tot.last_train = (int64_t)time(NULL);
	return db_write_totals(db, t, &tot);
}

int chaff_batch_commit(chaff_batch *b, enum chaff_learned *outcome)
{
	if (!b)
		return CHAFF_EINVAL;
	int rc = CHAFF_OK;
	if (b->nm) {
		/* Room for every hash of the batch at a load of at most 1/2. */
		size_t cap = 1024;
		while (cap < b->nh * 2)
			cap *= 2;
		if (cap > b->dcap) {
			struct delta *d = realloc(b->deltas, cap * sizeof(*d));
			if (!d)
				rc = CHAFF_ENOMEM;
			else {
				b->deltas = d;
				b->dcap = cap;
			}
		}
		if (rc == CHAFF_OK)
			rc = db_write_txn(b->db, commit_txn, b);
		if (rc == CHAFF_OK && outcome)
			memcpy(outcome, b->outcome, b->nm * sizeof(*outcome));
	}
	b->nm = b->nh = 0;
	return rc;
}
