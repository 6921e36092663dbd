/*
 * The in-memory backend, for unit tests: the same interface and the same
 * transaction semantics as LMDB (one writer; abort undoes everything the
 * transaction did), without a file. Readers see committed and in-flight
 * changes alike, which a single-threaded test cannot tell apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Linear probing on 64-bit keys; deletion shifts the run back, so no
 * tombstones. A digest's key is its first 8 bytes (uniform, from XXH3). */
struct slot {
	uint64_t key;
	bool used;
	struct chaff_record rec; /* tokens */
	uint8_t cls;             /* digests */
	struct chaff_digest digest;
};

struct map {
	struct slot *slots;
	size_t cap, n;
};

struct meta {
	char name[32];
	unsigned char val[256];
	size_t len;
};

enum undo_kind { U_TOKEN, U_DIGEST, U_META };

struct undo {
	enum undo_kind kind;
	uint64_t key;
	bool had; /* the key existed before */
	struct slot old;
	struct meta old_meta;
};

struct mstore {
	struct store base;
	struct map tokens, digests;
	struct meta metas[32];
	size_t nmeta;
	struct undo *log;
	size_t nlog, logcap;
	bool writing;
	uint64_t gen; /* write transactions committed */
};

struct store_txn {
	struct mstore *s;
	bool write;
	uint64_t gen;
};

static struct slot *find(struct map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = key & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].used)
			return NULL;
		if (m->slots[i].key == key)
			return &m->slots[i];
	}
}

static int grow(struct map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return CHAFF_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].used)
			continue;
		size_t j = m->slots[i].key & (cap - 1);
		while (s[j].used)
			j = (j + 1) & (cap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->cap = cap;
	return CHAFF_OK;
}

static struct slot *insert(struct map *m, uint64_t key)
{
	struct slot *e = find(m, key);
	if (e)
		return e;
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != CHAFF_OK)
		return NULL;
	size_t i = key & (m->cap - 1);
	while (m->slots[i].used)
		i = (i + 1) & (m->cap - 1);
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->slots[i].used = true;
	m->slots[i].key = key;
	m->n++;
	return &m->slots[i];
}

static void erase(struct map *m, struct slot *e)
{
	size_t i = (size_t)(e - m->slots), mask = m->cap - 1;
	m->slots[i].used = false;
	m->n--;
	/* Backward shift: move later entries of the run into the hole when
	 * their home is at or before it. */
	for (size_t j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
		size_t home = m->slots[j].key & mask;
		bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
		if (movable) {
			m->slots[i] = m->slots[j];
			m->slots[j].used = false;
			i = j;
		}
	}
}

/* Records what a change overwrites: old (a slot, or NULL when the key is
 * new) or, for metadata, old_meta with had telling whether it existed. */
static int journal(struct mstore *s, enum undo_kind kind, uint64_t key, const struct slot *old,
                   const struct meta *old_meta, bool had)
{
	if (s->nlog == s->logcap) {
		size_t cap = s->logcap ? s->logcap * 2 : 64;
		struct undo *n = realloc(s->log, cap * sizeof(*n));
		if (!n)
			return CHAFF_ENOMEM;
		s->log = n;
		s->logcap = cap;
	}
	struct undo *u = &s->log[s->nlog++];
	memset(u, 0, sizeof(*u));
	u->kind = kind;
	u->key = key;
	u->had = old || had;
	if (old)
		u->old = *old;
	if (old_meta)
		u->old_meta = *old_meta;
	return CHAFF_OK;
}

static int m_begin(struct store *st, bool write, struct store_txn **out)
{
	struct mstore *s = (struct mstore *)st;
	if (write && s->writing)
		return CHAFF_EDB; /* single-threaded tests never wait for a writer */
	struct store_txn *t = malloc(sizeof(*t));
	if (!t)
		return CHAFF_ENOMEM;
	t->s = s;
	t->gen = s->gen + write;
	t->write = write;
	if (write) {
		s->writing = true;
		s->nlog = 0;
	}
	*out = t;
	return CHAFF_OK;
}

static int m_commit(struct store_txn *t)
{
	if (t->write) {
		t->s->writing = false;
		t->s->gen++;
	}
	free(t);
	return CHAFF_OK;
}

static struct meta *meta_find(struct mstore *s, const char *name)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->metas[i].name, name) == 0)
			return &s->metas[i];
	return NULL;
}

static void m_abort(struct store_txn *t)
{
	struct mstore *s = t->s;
	if (t->write) {
		while (s->nlog) {
			struct undo *u = &s->log[--s->nlog];
			if (u->kind == U_META) {
				struct meta *m = meta_find(s, u->old_meta.name);
				if (m && u->had)
					*m = u->old_meta;
				else if (m)
					*m = s->metas[--s->nmeta];
				continue;
			}
			struct map *m = u->kind == U_TOKEN ? &s->tokens : &s->digests;
			struct slot *e = find(m, u->key);
			if (!u->had) {
				if (e)
					erase(m, e);
			} else {
				e = e ? e : insert(m, u->key);
				if (e)
					*e = u->old;
			}
		}
		s->writing = false;
	}
	free(t);
}

static int m_get(struct store_txn *t, uint64_t key, struct chaff_record *out)
{
	struct slot *e = find(&t->s->tokens, key);
	if (!e)
		return CHAFF_ENOTFOUND;
	*out = e->rec;
	return CHAFF_OK;
}

static int m_put(struct store_txn *t, uint64_t key, const struct chaff_record *r)
{
	struct slot *e = find(&t->s->tokens, key);
	int rc = journal(t->s, U_TOKEN, key, e, NULL, false);
	if (rc != CHAFF_OK)
		return rc;
	e = insert(&t->s->tokens, key);
	if (!e)
		return CHAFF_ENOMEM;
	e->rec = *r;
	return CHAFF_OK;
}

static int m_del(struct store_txn *t, uint64_t key)
{
	struct slot *e = find(&t->s->tokens, key);
	if (!e)
		return CHAFF_ENOTFOUND;
	int rc = journal(t->s, U_TOKEN, key, e, NULL, false);
	if (rc == CHAFF_OK)
		erase(&t->s->tokens, e);
	return rc;
}

/* Every token deleted as m_del would, so that abort restores them. */
static int m_clear(struct store_txn *t)
{
	struct map *m = &t->s->tokens;
	for (size_t i = 0; i < m->cap;) {
		if (!m->slots[i].used) {
			i++;
			continue;
		}
		/* erase may shift a later slot into i: look at i again */
		int rc = m_del(t, m->slots[i].key);
		if (rc != CHAFF_OK)
			return rc;
	}
	return CHAFF_OK;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Walks a map in key order, as LMDB's cursors do: the keys are copied and
 * sorted first, since slots sit in hash order. visit gets each slot. */
static int walk_sorted(struct map *m, int (*visit)(const struct slot *e, void *u), void *u)
{
	uint64_t *keys = malloc((m->n + 1) * sizeof(*keys));
	if (!keys)
		return CHAFF_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].used)
			keys[n++] = m->slots[i].key;
	qsort(keys, n, sizeof(*keys), cmp_key);
	int rc = CHAFF_OK;
	for (size_t i = 0; i < n && !rc; i++)
		rc = visit(find(m, keys[i]), u);
	free(keys);
	return rc;
}

struct token_visit {
	store_token_fn fn;
	void *user;
};

static int visit_token(const struct slot *e, void *u)
{
	struct token_visit *v = u;
	struct chaff_record r = e->rec;
	return v->fn(v->user, e->key, &r);
}

static int m_foreach(struct store_txn *t, store_token_fn fn, void *user)
{
	struct token_visit v = {fn, user};
	return walk_sorted(&t->s->tokens, visit_token, &v);
}

static int m_meta_get(struct store_txn *t, const char *name, void *buf, size_t *len)
{
	struct meta *m = meta_find(t->s, name);
	if (!m)
		return CHAFF_ENOTFOUND;
	if (m->len > *len)
		return CHAFF_ECORRUPT;
	memcpy(buf, m->val, m->len);
	*len = m->len;
	return CHAFF_OK;
}

static int m_meta_put(struct store_txn *t, const char *name, const void *buf, size_t len)
{
	struct mstore *s = t->s;
	if (len > sizeof(s->metas[0].val) || strlen(name) >= sizeof(s->metas[0].name))
		return CHAFF_EINVAL;
	struct meta *m = meta_find(s, name);
	struct meta before;
	memset(&before, 0, sizeof(before));
	snprintf(before.name, sizeof(before.name), "%s", name);
	if (m)
		before = *m;
	int rc = journal(s, U_META, 0, NULL, &before, m != NULL);
	if (rc != CHAFF_OK)
		return rc;
	if (!m) {
		if (s->nmeta == sizeof(s->metas) / sizeof(s->metas[0]))
			return CHAFF_ENOMEM;
		m = &s->metas[s->nmeta++];
		snprintf(m->name, sizeof(m->name), "%s", name);
	}
	memcpy(m->val, buf, len);
	m->len = len;
	return CHAFF_OK;
}

static uint64_t digest_key(const struct chaff_digest *d)
{
	uint64_t k;
	memcpy(&k, d->bytes, sizeof(k));
	return k;
}

static int m_digest_get(struct store_txn *t, const struct chaff_digest *d, uint8_t *cls)
{
	struct slot *e = find(&t->s->digests, digest_key(d));
	if (!e)
		return CHAFF_ENOTFOUND;
	*cls = e->cls;
	return CHAFF_OK;
}

static int m_digest_put(struct store_txn *t, const struct chaff_digest *d, uint8_t cls)
{
	uint64_t key = digest_key(d);
	struct slot *e = find(&t->s->digests, key);
	int rc = journal(t->s, U_DIGEST, key, e, NULL, false);
	if (rc != CHAFF_OK)
		return rc;
	e = insert(&t->s->digests, key);
	if (!e)
		return CHAFF_ENOMEM;
	e->cls = cls;
	e->digest = *d;
	return CHAFF_OK;
}

static int m_digest_del(struct store_txn *t, const struct chaff_digest *d)
{
	uint64_t key = digest_key(d);
	struct slot *e = find(&t->s->digests, key);
	if (!e)
		return CHAFF_ENOTFOUND;
	int rc = journal(t->s, U_DIGEST, key, e, NULL, false);
	if (rc == CHAFF_OK)
		erase(&t->s->digests, e);
	return rc;
}

struct digest_visit {
	int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls);
	void *user;
};

static int visit_digest(const struct slot *e, void *u)
{
	struct digest_visit *v = u;
	return v->fn(v->user, &e->digest, e->cls);
}

static int m_digest_foreach(struct store_txn *t,
                            int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls),
                            void *user)
{
	struct digest_visit v = {fn, user};
	return walk_sorted(&t->s->digests, visit_digest, &v);
}

static uint64_t m_generation(struct store *st)
{
	return ((struct mstore *)st)->gen;
}

static uint64_t m_txn_generation(struct store_txn *t)
{
	return t->gen;
}

static int m_info(struct store_txn *t, uint64_t *tokens, uint64_t *digests, uint64_t *used,
                  uint64_t *file)
{
	*tokens = t->s->tokens.n;
	*digests = t->s->digests.n;
	*used = (t->s->tokens.cap + t->s->digests.cap) * sizeof(struct slot);
	*file = 0;
	return CHAFF_OK;
}

static int m_grow(struct store *st)
{
	(void)st;
	return CHAFF_OK;
}

static int m_backup(struct store *st, const char *dir)
{
	(void)st;
	(void)dir;
	return CHAFF_EINVAL; /* nothing on disk to copy */
}

static void m_close(struct store *st)
{
	struct mstore *s = (struct mstore *)st;
	free(s->tokens.slots);
	free(s->digests.slots);
	free(s->log);
	free(s);
}

static const struct store_ops memory_ops = {
        .parallel_reads = false, /* one set of tables, changed in place */
        .begin = m_begin,
        .commit = m_commit,
        .abort = m_abort,
        .get = m_get,
        .put = m_put,
        .del = m_del,
        .foreach = m_foreach,
        .clear = m_clear,
        .meta_get = m_meta_get,
        .meta_put = m_meta_put,
        .digest_get = m_digest_get,
        .digest_put = m_digest_put,
        .digest_del = m_digest_del,
        .digest_foreach = m_digest_foreach,
        .generation = m_generation,
        .txn_generation = m_txn_generation,
        .info = m_info,
        .grow = m_grow,
        .backup = m_backup,
        .close = m_close,
};

int store_memory_open(struct store **out)
{
	struct mstore *s = calloc(1, sizeof(*s));
	if (!s)
		return CHAFF_ENOMEM;
	s->base.ops = &memory_ops;
	*out = &s->base;
	return CHAFF_OK;
}
