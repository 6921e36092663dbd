/*
 * Scoring, after Gary Robinson ("A Statistical Approach to the Spam
 * Problem", 2003) and R. A. Fisher's method of combining probabilities.
 *
 * For a token seen in b spam and g ham messages, out of nspam and nham:
 *     p(w) = (b / nspam) / (b / nspam + g / nham)
 *     f(w) = (s * x + n * p(w)) / (s + n),        n = b + g
 * f(w) pulls p(w) towards the prior x for rarely seen tokens, with s the
 * weight of the prior. Tokens with |f(w) - 0.5| < min_dev say too little
 * and are dropped. For the N tokens left, Fisher's method asks how likely
 * their f values would be if they were random:
 *     H = C^-1(-2 sum ln f(w), 2N)       S = C^-1(-2 sum ln (1 - f(w)), 2N)
 * with C^-1 the inverse chi-square (upper tail) function, and
 *     spamminess = (1 + H - S) / 2.
 * Sums of logarithms and log-space tails keep thousands of tokens from
 * underflowing, and keep the score's distance from 0 or 1 when it is
 * closer than a double can show (see logit).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bigmem.h"
#include "../common/grow.h"
#include "../common/hashset.h"
#include "../store/db.h"

struct scored {
	double f, strength;
	uint64_t hash;
	uint32_t spam, ham;
	const struct chaff_token *tok;
};

/* Open addressing on the key's top bits, at most half full. */
struct snap_slot {
	uint64_t key;
	uint32_t spam, ham;
};

struct chaff_snapshot {
	struct snap_slot *slot;
	unsigned bits;
	bool has_zero; /* key 0 marks a free slot; its record is kept here */
	struct chaff_record zero;
	struct db_totals tot;
	struct chaff_params params;
	uint64_t gen;
};

static size_t snap_home(const struct chaff_snapshot *s, uint64_t key)
{
	return (size_t)(key >> (64 - s->bits));
}

static int snap_put(void *user, uint64_t key, const struct chaff_record *r)
{
	struct chaff_snapshot *s = user;
	if (key == 0) {
		s->has_zero = true;
		s->zero = *r;
		return 0;
	}
	size_t mask = ((size_t)1 << s->bits) - 1;
	size_t i = snap_home(s, key);
	while (s->slot[i].key)
		i = (i + 1) & mask;
	s->slot[i] = (struct snap_slot){key, r->spam, r->ham};
	return 0;
}

static int snap_get(const struct chaff_snapshot *s, uint64_t key, struct chaff_record *out)
{
	if (key == 0) {
		*out = s->zero;
		return s->has_zero ? CHAFF_OK : CHAFF_ENOTFOUND;
	}
	size_t mask = ((size_t)1 << s->bits) - 1;
	for (size_t i = snap_home(s, key); s->slot[i].key; i = (i + 1) & mask)
		if (s->slot[i].key == key) {
			*out = (struct chaff_record){s->slot[i].spam, s->slot[i].ham, 0};
			return CHAFF_OK;
		}
	return CHAFF_ENOTFOUND;
}

int chaff_snapshot_new(chaff_db *db, size_t max_tokens, chaff_snapshot **out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	*out = NULL;
	const struct store_ops *ops = db->st->ops;
	struct store_txn *t;
	int rc = ops->begin(db->st, false, &t);
	if (rc != CHAFF_OK)
		return rc;
	uint64_t ntok = 0, nd, used, file;
	struct chaff_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		rc = CHAFF_ENOMEM;
	if (rc == CHAFF_OK)
		rc = ops->info(t, &ntok, &nd, &used, &file);
	if (rc == CHAFF_OK && ntok > max_tokens)
		rc = CHAFF_ENOSPC;
	if (rc == CHAFF_OK) {
		/* at most half full */
		s->bits = 4;
		while (((uint64_t)1 << s->bits) < 2 * ntok)
			s->bits++;
		/* megabytes, written once: 2 MB pages spare a fault per 4 KB */
		s->slot = chaff_big_alloc(((size_t)1 << s->bits) * sizeof(*s->slot));
		if (!s->slot)
			rc = CHAFF_ENOMEM;
	}
	if (rc == CHAFF_OK)
		rc = db_read_totals(db, t, &s->tot);
	if (rc == CHAFF_OK)
		rc = db_read_params(db, t, &s->params);
	if (rc == CHAFF_OK)
		rc = ops->foreach(t, snap_put, s);
	if (rc == CHAFF_OK)
		s->gen = ops->txn_generation(t);
	ops->abort(t);
	if (rc != CHAFF_OK) {
		chaff_snapshot_free(s);
		return rc;
	}
	*out = s;
	return CHAFF_OK;
}

uint64_t chaff_snapshot_generation(const chaff_snapshot *s)
{
	return s ? s->gen : 0;
}

uint64_t chaff_db_generation(chaff_db *db)
{
	return db ? db->st->ops->generation(db->st) : 0;
}

void chaff_snapshot_free(chaff_snapshot *s)
{
	if (!s)
		return;
	if (s->slot)
		chaff_big_free(s->slot, ((size_t)1 << s->bits) * sizeof(*s->slot));
	free(s);
}

struct chaff_classifier {
	const chaff_snapshot *snap;
	chaff_db *db;
	chaff_tokenizer *tok;
	const struct chaff_token **order;
	size_t ocap;
	struct scored *sc;
	size_t scap;
	struct chaff_clue *clues;
	size_t ccap;
	struct hashset seen;
	bool override;
	struct chaff_params params;
};

int chaff_classifier_set_params(chaff_classifier *c, const struct chaff_params *p)
{
	if (!c || (p && !chaff_params_valid(p)))
		return CHAFF_EINVAL;
	c->override = p != NULL;
	if (p)
		c->params = *p;
	return CHAFF_OK;
}

int chaff_classifier_new(chaff_db *db, chaff_classifier **out)
{
	if (!db || !out)
		return CHAFF_EINVAL;
	chaff_classifier *c = calloc(1, sizeof(*c));
	if (!c)
		return CHAFF_ENOMEM;
	c->db = db;
	struct chaff_tokenizer_config cfg;
	chaff_db_tokenizer_config(db, &cfg);
	int rc = chaff_tokenizer_new(&cfg, &c->tok);
	if (rc != CHAFF_OK) {
		free(c);
		return rc;
	}
	*out = c;
	return CHAFF_OK;
}

void chaff_classifier_free(chaff_classifier *c)
{
	if (!c)
		return;
	chaff_tokenizer_free(c->tok);
	free(c->order);
	free(c->sc);
	free(c->clues);
	free(c->seen.slot);
	free(c);
}

void chaff_classifier_use_snapshot(chaff_classifier *c, const chaff_snapshot *s)
{
	if (c)
		c->snap = s;
}

chaff_tokenizer *chaff_classifier_tokenizer(chaff_classifier *c)
{
	return c ? c->tok : NULL;
}

/* log(e^a + e^b) without overflow. */
static double log_add(double a, double b)
{
	if (a == -INFINITY)
		return b;
	if (b == -INFINITY)
		return a;
	return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/*
 * Both tails of the chi-square distribution with 2n degrees of freedom at
 * x2, as logarithms. For even degrees the upper tail is the Poisson sum
 *     Q = sum_{i<n} e^-m m^i / i!,     m = x2 / 2,
 * and the lower tail is the rest of the same sum, i >= n. Each is summed
 * from its largest term outwards in log space, so that neither e^-m nor
 * m^i overflows or underflows for any n, and a tail near 1 is never
 * computed as 1 minus a tiny number: the tiny one is summed directly.
 */
static void chi2_tails(double x2, size_t n, double *lnq, double *lnp)
{
	double m = x2 / 2;
	if (n == 0 || m <= 0) {
		*lnq = 0;
		*lnp = -INFINITY;
		return;
	}
	double lm = log(m);
	/* the terms grow while i < m: term(i) peaks at i = floor(m) */
	size_t top = (size_t)m;
	size_t peak_q = top < n - 1 ? top : n - 1; /* largest term below n */
	size_t peak_p = top > n ? top : n;         /* largest term from n up */
	/* lgamma_r: lgamma sets the global signgam, a race between threads */
	int sign;
	double lq = -m + (double)peak_q * lm - lgamma_r((double)peak_q + 1, &sign);
	double lp = -m + (double)peak_p * lm - lgamma_r((double)peak_p + 1, &sign);
	/* Outwards from each peak the terms shrink by a factor per step
	 * (term(i-1) = term(i) * i / m): summed relative to the peak, in
	 * plain arithmetic, until they no longer matter. */
	double sq = 1, sp = 1, t;
	t = 1;
	for (size_t i = peak_q; i > 0; i--) {
		t *= (double)i / m;
		sq += t;
		if (t < 1e-17 * sq)
			break;
	}
	t = 1;
	for (size_t i = peak_q + 1; i < n; i++) {
		t *= m / (double)i;
		sq += t;
		if (t < 1e-17 * sq)
			break;
	}
	t = 1;
	for (size_t i = peak_p; i > n; i--) {
		t *= (double)i / m;
		sp += t;
		if (t < 1e-17 * sp)
			break;
	}
	t = 1;
	for (size_t i = peak_p + 1;; i++) { /* the infinite upper end */
		t *= m / (double)i;
		sp += t;
		if (t < 1e-17 * sp)
			break;
	}
	*lnq = fmin(0, lq + log(sq));
	*lnp = fmin(0, lp + log(sp));
}

static int cmp_token_hash(const void *a, const void *b)
{
	uint64_t x = (*(const struct chaff_token *const *)a)->hash;
	uint64_t y = (*(const struct chaff_token *const *)b)->hash;
	return x < y ? -1 : x > y;
}

/* Whether a ranks before b: strongest first, equal strengths in hash
 * order, so results never depend on the order tokens were found in. */
static inline bool stronger(const struct scored *a, const struct scored *b)
{
	return a->strength != b->strength ? a->strength > b->strength : a->hash < b->hash;
}

/* stronger() as qsort's comparison. */
static int cmp_strength(const void *a, const void *b)
{
	return stronger(a, b) ? -1 : stronger(b, a);
}

static inline void swap_scored(struct scored *a, struct scored *b)
{
	struct scored t = *a;
	*a = *b;
	*b = t;
}

/* Moves the k strongest of sc[0..n) (k < n) to the front, in no order:
 * a quickselect, linear where sorting them all cost a tenth of scoring.
 * cmp_strength's order is total, so the k are the same on every path. */
static void select_strongest(struct scored *sc, size_t n, size_t k)
{
	size_t lo = 0, hi = n;
	while (hi - lo > 1) {
		swap_scored(&sc[lo + (hi - lo) / 2], &sc[hi - 1]);
		const struct scored *pivot = &sc[hi - 1];
		size_t p = lo;
		for (size_t i = lo; i < hi - 1; i++)
			if (stronger(&sc[i], pivot))
				swap_scored(&sc[i], &sc[p++]);
		swap_scored(&sc[p], &sc[hi - 1]);
		if (p == k || p + 1 == k)
			return;
		if (k < p)
			hi = p;
		else
			lo = p + 1;
	}
}

/* Looks up the message's distinct tokens in key order, within one read
 * transaction, and keeps those with a useful f(w). */
static int lookup(chaff_classifier *c, size_t ndistinct, const struct chaff_params *p,
                  const struct db_totals *tot, struct store_txn *t, size_t *nscored)
{
	const struct store_ops *ops = c->db->st->ops;
	double nspam = (double)tot->spam, nham = (double)tot->ham;
	size_t k = 0;
	/* The snapshot's table is megabytes large: asking for the slots of
	 * the tokens a few places ahead overlaps their waits for memory. */
	enum { AHEAD = 8 };
	const struct chaff_snapshot *sn = c->snap;
	for (size_t i = 0; sn && i < AHEAD && i < ndistinct; i++)
		__builtin_prefetch(&sn->slot[snap_home(sn, c->order[i]->hash)]);
	for (size_t i = 0; i < ndistinct; i++) {
		if (sn && i + AHEAD < ndistinct)
			__builtin_prefetch(&sn->slot[snap_home(sn, c->order[i + AHEAD]->hash)]);
		const struct chaff_token *tk = c->order[i];
		struct chaff_record r;
		int rc = sn ? snap_get(sn, tk->hash, &r) : ops->get(t, tk->hash, &r);
		if (rc == CHAFF_ENOTFOUND)
			r = (struct chaff_record){0, 0, 0};
		else if (rc != CHAFF_OK)
			return rc;
		/* a token never seen has f = x: it counts when robx is set
		 * min_dev or more from 0.5, never with the defaults. (It is x
		 * itself, not s·x / s, which rounds away from x and so decided
		 * a robx exactly min_dev from 0.5 by the rounding.) */
		double n = (double)r.spam + (double)r.ham, f = p->robx;
		if (n > 0) {
			double bs = r.spam / nspam, gh = r.ham / nham, pw = bs / (bs + gh);
			f = (p->robs * p->robx + n * pw) / (p->robs + n);
		}
		double strength = fabs(f - 0.5);
		if (strength < p->min_dev)
			continue;
		c->sc[k++] = (struct scored){f, strength, tk->hash, r.spam, r.ham, tk};
	}
	*nscored = k;
	return CHAFF_OK;
}

static void combine(const struct scored *sc, size_t n, struct chaff_score *out)
{
	if (n == 0) {
		out->score = 0.5;
		out->spam_prob = out->ham_prob = 0;
		out->logit = 0;
		return;
	}
	/* The sums of ln f and ln(1 - f) in fixed point: an integer sum is
	 * the same in any order, so the clues need no sorting for a score to
	 * be the same on every path. A term is at least -745 (the log of the
	 * least double above 0): in units of 2^-30, eight million of them
	 * fit in 63 bits, and in units of 2^-20 any number a message can
	 * have (at most 2^32 tokens). */
	double unit = n < (1u << 23) ? 0x1p30 : 0x1p20;
	int64_t fix_lnf = 0, fix_ln1mf = 0;
	for (size_t i = 0; i < n; i++) {
		fix_lnf += (int64_t)llrint(fmax(log(sc[i].f), -745) * unit);
		fix_ln1mf += (int64_t)llrint(fmax(log1p(-sc[i].f), -745) * unit);
	}
	double sum_lnf = (double)fix_lnf / unit, sum_ln1mf = (double)fix_ln1mf / unit;
	/* H and S with their complements, each summed directly */
	double ln_h, ln_hc, ln_s, ln_sc;
	chi2_tails(-2 * sum_lnf, n, &ln_h, &ln_hc);
	chi2_tails(-2 * sum_ln1mf, n, &ln_s, &ln_sc);
	out->spam_prob = exp(ln_sc);
	out->ham_prob = exp(ln_hc);
	/* score = (1 + H - S) / 2 = (H + (1 - S)) / 2, and 1 - score is
	 * ((1 - H) + S) / 2: both sums of accurate small terms. */
	double ln_score = log_add(ln_h, ln_sc) - M_LN2;
	double ln_rest = log_add(ln_hc, ln_s) - M_LN2;
	out->score = ln_score > ln_rest ? 1 - exp(ln_rest) : exp(ln_score);
	out->logit = ln_score - ln_rest;
}

int chaff_classify_tokens(chaff_classifier *c, const struct chaff_tokens *tk, size_t nclues,
                          struct chaff_score *out)
{
	if (!c || !tk || (!tk->items && tk->count) || !out)
		return CHAFF_EINVAL;
	memset(out, 0, sizeof(*out));
	out->limits_hit = tk->limits_hit;
	if (chaff_reserve((void **)&c->order, &c->ocap, tk->count + 1, sizeof(*c->order)) ||
	    chaff_reserve((void **)&c->sc, &c->scap, tk->count + 1, sizeof(*c->sc)))
		return CHAFF_ENOMEM;
	if (hashset_clear(&c->seen, tk->count))
		return CHAFF_ENOMEM;
	size_t nd = 0;
	for (size_t i = 0; i < tk->count; i++)
		if (hashset_add(&c->seen, tk->items[i].hash))
			c->order[nd++] = &tk->items[i];
	/* the database is looked up in key order: neighbouring keys share
	 * B-tree pages (a snapshot's table needs no order) */
	if (!c->snap)
		qsort(c->order, nd, sizeof(*c->order), cmp_token_hash);
	out->tokens = (uint32_t)nd;

	const struct store_ops *ops = c->db->st->ops;
	struct store_txn *t = NULL;
	struct db_totals tot;
	struct chaff_params p;
	int rc = CHAFF_OK;
	if (c->snap) {
		tot = c->snap->tot;
		p = c->snap->params;
	} else {
		rc = ops->begin(c->db->st, false, &t);
		if (rc != CHAFF_OK)
			return rc;
		rc = db_read_totals(c->db, t, &tot);
		if (rc == CHAFF_OK && !c->override)
			rc = db_read_params(c->db, t, &p);
	}
	if (c->override)
		p = c->params;
	if (rc == CHAFF_OK && (tot.spam == 0 || tot.ham == 0))
		rc = CHAFF_EEMPTY;
	size_t n = 0;
	if (rc == CHAFF_OK)
		rc = lookup(c, nd, &p, &tot, t, &n);
	if (t)
		ops->abort(t);
	if (rc != CHAFF_OK)
		return rc;

	/* The strongest max_tokens, and strongest first when shown. */
	if (p.max_tokens > 0 && n > (size_t)p.max_tokens) {
		select_strongest(c->sc, n, (size_t)p.max_tokens);
		n = (size_t)p.max_tokens;
	}
	if (nclues > 0)
		qsort(c->sc, n, sizeof(*c->sc), cmp_strength);
	out->used = (uint32_t)n;
	combine(c->sc, n, out);
	out->spam_cutoff = p.spam_cutoff;
	out->ham_cutoff = p.ham_cutoff;
	out->verdict = out->score >= p.spam_cutoff  ? CHAFF_VERDICT_SPAM
	               : out->score <= p.ham_cutoff ? CHAFF_VERDICT_HAM
	                                            : CHAFF_VERDICT_UNSURE;
	if (nclues > n)
		nclues = n;
	if (chaff_reserve((void **)&c->clues, &c->ccap, nclues + 1, sizeof(*c->clues)))
		return CHAFF_ENOMEM;
	for (size_t i = 0; i < nclues; i++)
		c->clues[i] = (struct chaff_clue){c->sc[i].tok->text, c->sc[i].tok->len,
		                                  c->sc[i].spam, c->sc[i].ham, c->sc[i].f};
	out->clues = c->clues;
	out->nclues = nclues;
	return CHAFF_OK;
}

int chaff_classify(chaff_classifier *c, const void *msg, size_t len, size_t nclues,
                   struct chaff_score *out)
{
	if (!c || !out)
		return CHAFF_EINVAL;
	struct chaff_tokens tk;
	int rc = chaff_tokenize(c->tok, msg, len, &tk);
	if (rc != CHAFF_OK)
		return rc;
	return chaff_classify_tokens(c, &tk, nclues, out);
}
