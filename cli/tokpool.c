/*
 * A chunk of messages, tokenized by a few threads that take the next
 * message from a shared counter: threads - 1 workers, started once and
 * kept for the run (see struct crew), and the caller once it is done with
 * its own share of the pipeline. With a worker per core besides the
 * caller, the caller's serial work (reading, counting into the batch)
 * lost its core to them a third of the time.
 */
#include "tokpool.h"

#include "common/grow.h"
#include "common/hashset.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct worker;
struct crew;
static void crew_free(struct crew *c);

struct slot {
	size_t off, len; /* in the chunk's data */
	const char *ext; /* or the caller's copy (tokpool_add_ref) */
	char *name;
	struct tokpool_result res;
	uint64_t *hashes; /* res.hashes */
	size_t cap;
	struct chaff_clue *clues; /* scoring: copies of the clues ... */
	char *text;               /* ... and of their texts */
	size_t ccap, tcap;
};

struct tokpool {
	unsigned threads;
	const struct tokpool *twin; /* owner of tok, cl and seen, when not this pool */
	chaff_tokenizer **tok;
	chaff_classifier **cl; /* scoring pools only */
	size_t nclues;
	char *data;
	size_t dlen, dcap;
	struct hashset *seen; /* per thread: a message's distinct hashes */
	struct slot *slots;
	size_t n, scap;
	atomic_size_t next;     /* the next message to take */
	atomic_size_t finished; /* messages done */
	/* the worker threads, started once by the owner pool and shared with
	 * its twin; whether they were given this pool's chunk, and how many
	 * of them may still look at it (under the crew's lock) */
	struct crew *crew;
	bool running;
	unsigned users;
};

unsigned tokpool_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

int tokpool_new(struct tokpool **out, const struct chaff_tokenizer_config *cfg, unsigned threads)
{
	struct tokpool *p = calloc(1, sizeof(*p));
	if (!p)
		return CHAFF_ENOMEM;
	p->threads = threads < 1 ? 1 : threads;
	p->tok = calloc(p->threads, sizeof(*p->tok));
	p->seen = calloc(p->threads, sizeof(*p->seen));
	int rc = p->tok && p->seen ? CHAFF_OK : CHAFF_ENOMEM;
	for (unsigned i = 0; i < p->threads && rc == CHAFF_OK; i++)
		rc = chaff_tokenizer_new(cfg, &p->tok[i]);
	if (rc != CHAFF_OK) {
		tokpool_free(p);
		return rc;
	}
	*out = p;
	return CHAFF_OK;
}

int tokpool_new_scoring(struct tokpool **out, chaff_db *db, const struct chaff_params *params,
                        unsigned threads, size_t nclues)
{
	struct tokpool *p = calloc(1, sizeof(*p));
	if (!p)
		return CHAFF_ENOMEM;
	p->threads = threads < 1 ? 1 : threads;
	p->nclues = nclues;
	p->cl = calloc(p->threads, sizeof(*p->cl));
	int rc = p->cl ? CHAFF_OK : CHAFF_ENOMEM;
	for (unsigned i = 0; i < p->threads && rc == CHAFF_OK; i++) {
		rc = chaff_classifier_new(db, &p->cl[i]);
		if (rc == CHAFF_OK && params)
			rc = chaff_classifier_set_params(p->cl[i], params);
	}
	if (rc != CHAFF_OK) {
		tokpool_free(p);
		return rc;
	}
	*out = p;
	return CHAFF_OK;
}

void tokpool_use_snapshot(struct tokpool *p, const chaff_snapshot *s)
{
	for (unsigned i = 0; p && p->cl && i < p->threads; i++)
		chaff_classifier_use_snapshot(p->cl[i], s);
}

void tokpool_reset(struct tokpool *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->slots[i].name);
		p->slots[i].name = NULL;
		p->slots[i].ext = NULL;
	}
	p->n = 0;
	p->dlen = 0;
}

int tokpool_twin(struct tokpool **out, const struct tokpool *of)
{
	struct tokpool *p = calloc(1, sizeof(*p));
	if (!p)
		return CHAFF_ENOMEM;
	p->threads = of->threads;
	p->twin = of;
	p->tok = of->tok;
	p->cl = of->cl;
	p->seen = of->seen;
	p->nclues = of->nclues;
	*out = p;
	return CHAFF_OK;
}

void tokpool_free(struct tokpool *p)
{
	if (!p)
		return;
	tokpool_wait(p);
	crew_free(p->crew); /* only the owner has one */
	tokpool_reset(p);
	for (size_t i = 0; i < p->scap; i++) {
		free(p->slots[i].hashes);
		free(p->slots[i].clues);
		free(p->slots[i].text);
	}
	if (!p->twin) { /* a twin's instances are its owner's */
		for (unsigned i = 0; i < p->threads; i++) {
			if (p->tok)
				chaff_tokenizer_free(p->tok[i]);
			if (p->cl)
				chaff_classifier_free(p->cl[i]);
			if (p->seen)
				free(p->seen[i].slot);
		}
		free(p->seen);
		free(p->tok);
		free(p->cl);
	}
	free(p->slots);
	free(p->data);
	free(p);
}

/* A slot for the next message, named; NULL when out of memory. */
static struct slot *new_slot(struct tokpool *p, size_t len, const char *name, int cls)
{
	if (p->n == p->scap) {
		size_t cap = p->scap ? p->scap * 2 : 256;
		struct slot *s = realloc(p->slots, cap * sizeof(*s));
		if (!s)
			return NULL;
		memset(s + p->scap, 0, (cap - p->scap) * sizeof(*s));
		p->slots = s;
		p->scap = cap;
	}
	struct slot *s = &p->slots[p->n];
	s->name = strdup(name);
	if (!s->name)
		return NULL;
	s->len = len;
	s->res.cls = cls;
	s->res.bytes = len;
	p->n++;
	return s;
}

int tokpool_add_ref(struct tokpool *p, const char *data, size_t len, const char *name, int cls)
{
	struct slot *s = new_slot(p, len, name, cls);
	if (!s)
		return CHAFF_ENOMEM;
	s->ext = data;
	return CHAFF_OK;
}

int tokpool_add(struct tokpool *p, const char *data, size_t len, const char *name, int cls)
{
	/* a byte more than needed: the buffer exists even for an empty
	 * message, whose data is then a valid pointer too */
	if (chaff_reserve((void **)&p->data, &p->dcap, p->dlen + len + 1, 1))
		return CHAFF_ENOMEM;
	struct slot *s = new_slot(p, len, name, cls);
	if (!s)
		return CHAFF_ENOMEM;
	memcpy(p->data + p->dlen, data, len);
	s->off = p->dlen;
	p->dlen += len;
	return CHAFF_OK;
}

size_t tokpool_count(const struct tokpool *p)
{
	return p->n;
}

/* The message of slot s. */
static const char *slot_data(const struct tokpool *p, const struct slot *s)
{
	return s->ext ? s->ext : p->data + s->off;
}

/* One message: its distinct tokens' hashes kept in the slot (the
 * tokenizer's own result is overwritten by its next message), and its
 * digest. */
static int work_one(struct tokpool *p, unsigned id, struct slot *s)
{
	const char *msg = slot_data(p, s);
	struct chaff_tokens tk;
	int rc = chaff_tokenize(p->tok[id], msg, s->len, &tk);
	if (rc != CHAFF_OK)
		return rc;
	/* The training batch counts a token once per message anyway:
	 * dropping the repeats here, on the worker's core, spares the single
	 * writer a third of its probes into its large table. */
	struct hashset *seen = &p->seen[id];
	if (chaff_reserve((void **)&s->hashes, &s->cap, tk.count, sizeof(*s->hashes)) ||
	    hashset_clear(seen, tk.count))
		return CHAFF_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < tk.count; i++)
		if (hashset_add(seen, tk.items[i].hash))
			s->hashes[n++] = tk.items[i].hash;
	s->res.nhashes = n;
	s->res.hashes = s->hashes;
	s->res.limits_hit = tk.limits_hit;
	chaff_message_digest(msg, s->len, &s->res.digest);
	return CHAFF_OK;
}

/* One message scored; the clues' texts, borrowed from the classifier
 * until its next message, are copied into the slot. */
static int score_one(struct tokpool *p, chaff_classifier *cl, struct slot *s)
{
	struct chaff_score *sc = &s->res.score;
	int rc = chaff_classify(cl, slot_data(p, s), s->len, p->nclues, sc);
	if (rc != CHAFF_OK || sc->nclues == 0)
		return rc;
	size_t tl = 0;
	for (size_t i = 0; i < sc->nclues; i++)
		tl += sc->clues[i].len + 1;
	if (chaff_reserve((void **)&s->clues, &s->ccap, sc->nclues, sizeof(*s->clues)) ||
	    chaff_reserve((void **)&s->text, &s->tcap, tl, 1))
		return CHAFF_ENOMEM;
	char *t = s->text;
	for (size_t i = 0; i < sc->nclues; i++) {
		size_t n = sc->clues[i].len + 1;
		memcpy(t, sc->clues[i].text, n);
		s->clues[i] = sc->clues[i];
		s->clues[i].text = t;
		t += n;
	}
	sc->clues = s->clues;
	return CHAFF_OK;
}

struct worker {
	unsigned id;
	struct crew *crew;
};

/* Threads kept for the life of the pool: starting one per chunk cost a
 * clone, a stack and a join each time. The chunks handed to them wait in
 * a queue, oldest first; a thread that finds no message left in one
 * chunk goes on to the next, so the workers need not wait for the
 * slowest message of a chunk before the next one starts. They sleep
 * only when no queued chunk has a message left. */
enum { QUEUE = 4 };
struct crew {
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	struct tokpool *queue[QUEUE];
	unsigned nq, n;
	bool quit;
	pthread_t th[64];
	struct worker w[64];
};

/* After a chunk: the results name their messages; the first error. */
static int finish(struct tokpool *p)
{
	int rc = CHAFF_OK;
	for (size_t i = 0; i < p->n; i++) {
		p->slots[i].res.name = p->slots[i].name;
		if (rc == CHAFF_OK)
			rc = p->slots[i].res.rc;
	}
	return rc;
}

/* Takes the next message of p and does it: false when none was left.
 * The thread that finishes a crew's chunk last wakes its waiter. */
static bool one(struct tokpool *p, unsigned id)
{
	size_t i = atomic_fetch_add(&p->next, 1);
	if (i >= p->n)
		return false;
	struct slot *s = &p->slots[i];
	s->res.rc = p->cl ? score_one(p, p->cl[id], s) : work_one(p, id, s);
	s->res.thread = id;
	if (atomic_fetch_add(&p->finished, 1) + 1 == p->n && p->running) {
		struct crew *c = p->twin ? p->twin->crew : p->crew;
		pthread_mutex_lock(&c->mu);
		pthread_cond_broadcast(&c->done);
		pthread_mutex_unlock(&c->mu);
	}
	return true;
}

/* The oldest queued chunk with a message left, or NULL; under c->mu. */
static struct tokpool *open_chunk(struct crew *c)
{
	for (unsigned k = 0; k < c->nq; k++)
		if (atomic_load(&c->queue[k]->next) < c->queue[k]->n)
			return c->queue[k];
	return NULL;
}

static void *crew_main(void *arg)
{
	struct worker *w = arg;
	struct crew *c = w->crew;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct tokpool *p;
		while (!c->quit && !(p = open_chunk(c)))
			pthread_cond_wait(&c->go, &c->mu);
		if (c->quit)
			break;
		p->users++; /* its waiter leaves it alone until we are done */
		pthread_mutex_unlock(&c->mu);
		while (one(p, w->id))
			;
		pthread_mutex_lock(&c->mu);
		if (--p->users == 0)
			pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The owner's crew of n threads, started on first use; NULL when none
 * could be started (the caller then does the work alone). */
static struct crew *crew_of(struct tokpool *p, unsigned n)
{
	struct tokpool *owner = p->twin ? (struct tokpool *)p->twin : p;
	if (owner->crew)
		return owner->crew->n ? owner->crew : NULL;
	struct crew *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->go, NULL);
	pthread_cond_init(&c->done, NULL);
	for (unsigned i = 0; i < n; i++) {
		c->w[i] = (struct worker){i, c};
		if (pthread_create(&c->th[i], NULL, crew_main, &c->w[i]) != 0)
			break;
		c->n++;
	}
	owner->crew = c;
	return c->n ? c : NULL;
}

static void crew_free(struct crew *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->quit = true;
	pthread_cond_broadcast(&c->go);
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < c->n; i++)
		pthread_join(c->th[i], NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->go);
	pthread_cond_destroy(&c->done);
	free(c);
}

int tokpool_run(struct tokpool *p)
{
	int rc = tokpool_start(p);
	return rc != CHAFF_OK ? rc : tokpool_wait(p);
}

int tokpool_start(struct tokpool *p)
{
	atomic_store(&p->next, 0);
	atomic_store(&p->finished, 0);
	p->running = false;
	/* threads - 1 workers; the caller is the last thread. A pool of one
	 * thread, or a message or two (one, from procmail): the caller does
	 * the work, no thread is worth starting. (Not "two messages a thread":
	 * a chunk holds at most 64, and 33 threads or more never started.) */
	bool crew = p->n > 2 && p->threads > 1;
	struct crew *c = crew ? crew_of(p, p->threads - 1) : NULL;
	if (c) {
		pthread_mutex_lock(&c->mu);
		if (c->nq < QUEUE) {
			c->queue[c->nq++] = p;
			p->running = true;
			pthread_cond_broadcast(&c->go);
		}
		pthread_mutex_unlock(&c->mu);
	}
	if (!p->running) { /* no thread at all: do the work here */
		while (one(p, p->threads - 1))
			;
	}
	return CHAFF_OK;
}

int tokpool_wait(struct tokpool *p)
{
	/* The caller takes the chunk's messages too, until none are left: it
	 * does its own work for the chunk (reading the next one, counting the
	 * one before) while the workers start, and then helps them finish.
	 * While the workers finish the last of them, it takes messages of the
	 * next chunk queued, one at a time, instead of waiting. */
	if (p->running) {
		unsigned self = p->threads - 1;
		while (one(p, self))
			;
		struct crew *c = crew_of(p, 0);
		pthread_mutex_lock(&c->mu);
		while (atomic_load(&p->finished) < p->n || p->users) {
			struct tokpool *q = atomic_load(&p->finished) < p->n ? open_chunk(c) : NULL;
			if (q) {
				pthread_mutex_unlock(&c->mu);
				one(q, self);
				pthread_mutex_lock(&c->mu);
			} else {
				pthread_cond_wait(&c->done, &c->mu);
			}
		}
		unsigned k = 0;
		while (c->queue[k] != p)
			k++;
		memmove(&c->queue[k], &c->queue[k + 1], (c->nq - k - 1) * sizeof(*c->queue));
		c->nq--;
		pthread_mutex_unlock(&c->mu);
	}
	p->running = false;
	return finish(p);
}

const struct tokpool_result *tokpool_result(const struct tokpool *p, size_t i)
{
	return &p->slots[i].res;
}

struct tokpool *tokpool_turn(struct tokpool_pair *pp, bool start)
{
	if (!pp->p[1]) { /* one pool: the chunk is done here and now */
		if (!start || !tokpool_count(pp->fill))
			return NULL;
		tokpool_run(pp->fill);
		return pp->fill;
	}
	/* the new chunk is queued first: the workers go on to it as soon as
	 * the one before has no message left */
	struct tokpool *done = pp->running;
	pp->running = NULL;
	if (start && tokpool_count(pp->fill)) {
		tokpool_start(pp->fill);
		pp->running = pp->fill;
		pp->fill = pp->fill == pp->p[0] ? pp->p[1] : pp->p[0];
	}
	if (done)
		tokpool_wait(done);
	return done;
}

void tokpool_pair_free(struct tokpool_pair *pp)
{
	tokpool_free(pp->p[1]); /* the twin first: it works with p[0]'s instances */
	tokpool_free(pp->p[0]);
	*pp = (struct tokpool_pair){ 0 };
}
