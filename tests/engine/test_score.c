/*
 * Scoring against values computed here by hand from Robinson's f(w) and
 * Fisher's method, plus the properties the formulas promise: no underflow
 * with thousands of tokens, min_dev and max_tokens, verdicts and clues.
 */
#include <math.h>
#include <string.h>

#include "test_db_util.h"

static chaff_db *db;
static chaff_classifier *cl;

/* Trains nspam spam and nham ham messages of token 1 (never scored) so
 * that the totals are as wanted. */
static void totals(int nspam, int nham)
{
	const int base[] = { 1 };
	int m = 100000;
	for (int i = 0; i < nspam; i++)
		train_one(db, m++, base, 1, CHAFF_SPAM, 0);
	for (int i = 0; i < nham; i++)
		train_one(db, m++, base, 1, CHAFF_HAM, 0);
}

static int setup(void **state)
{
	(void)state;
	if (chaff_db_open_memory(NULL, &db) != CHAFF_OK)
		return -1;
	return chaff_classifier_new(db, &cl);
}

static int teardown(void **state)
{
	(void)state;
	chaff_classifier_free(cl);
	chaff_db_close(db);
	return 0;
}

static struct chaff_params params(double robs, double robx, double min_dev, double max_tokens)
{
	struct chaff_params p;
	chaff_params_default(&p);
	p.robs = robs;
	p.robx = robx;
	p.min_dev = min_dev;
	p.max_tokens = max_tokens;
	p.ham_cutoff = 0.2;
	p.spam_cutoff = 0.9;
	return p;
}

static double robinson_f(double b, double g, double nspam, double nham, double s, double x)
{
	double bs = b / nspam, gh = g / nham, n = b + g;
	return (s * x + n * (bs / (bs + gh))) / (s + n);
}

static struct chaff_score score(const int *ids, size_t n, size_t nclues)
{
	static struct fake_tokens f;
	struct chaff_score s;
	assert_int_equal(chaff_classify_tokens(cl, fake(&f, ids, n), nclues, &s), CHAFF_OK);
	return s;
}

static void test_empty_database(void **state)
{
	(void)state;
	const int t[] = { 5 };
	static struct fake_tokens f;
	struct chaff_score s;
	assert_int_equal(chaff_classify_tokens(cl, fake(&f, t, 1), 0, &s), CHAFF_EEMPTY);
	/* tokens said to be there but not given: refused, not read */
	struct chaff_tokens none = {NULL, 3, 0};
	assert_int_equal(chaff_classify_tokens(cl, &none, 0, &s), CHAFF_EINVAL);
}

static void test_one_token_score_is_its_f(void **state)
{
	(void)state;
	totals(4, 6); /* token 1 only, in every message */
	/* token 10: 3 of 4 spam, 1 of 6 ham */
	const int a[] = { 10 };
	for (int i = 0; i < 3; i++)
		train_one(db, 200 + i, a, 1, CHAFF_SPAM, 0);
	train_one(db, 300, a, 1, CHAFF_HAM, 0);
	/* those four messages also count in the totals: 7 spam, 7 ham */
	struct chaff_params p = params(0.5, 0.4, 0.0, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	struct chaff_score s = score(a, 1, 5);
	double f = robinson_f(3, 1, 7, 7, 0.5, 0.4);
	/* with one token, chi2Q(-2 ln f, 2) = f: H = f, S = 1 - f, score = f */
	assert_float_equal(s.score, f, 1e-12);
	assert_int_equal(s.used, 1);
	assert_int_equal(s.nclues, 1);
	assert_string_equal(s.clues[0].text, "t10");
	assert_int_equal(s.clues[0].spam, 3);
	assert_int_equal(s.clues[0].ham, 1);
	assert_float_equal(s.clues[0].f, f, 1e-12);
}

static void test_two_tokens_by_hand(void **state)
{
	(void)state;
	totals(10, 10);
	const int a[] = { 20 }, b[] = { 21 };
	for (int i = 0; i < 8; i++)
		train_one(db, 400 + i, a, 1, CHAFF_SPAM, 0); /* 8 spam, 0 ham */
	for (int i = 0; i < 2; i++)
		train_one(db, 500 + i, b, 1, CHAFF_HAM, 0); /* 0 spam, 2 ham */
	/* totals now 18 spam, 12 ham */
	struct chaff_params p = params(1.0, 0.5, 0.0, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	const int both[] = { 20, 21, 20 };
	struct chaff_score s = score(both, 3, 0);
	double f1 = robinson_f(8, 0, 18, 12, 1.0, 0.5), f2 = robinson_f(0, 2, 18, 12, 1.0, 0.5);
	/* chi2Q(x, 4) = e^-m (1 + m), m = x / 2 */
	double mh = -log(f1 * f2), ms = -log((1 - f1) * (1 - f2));
	double h = exp(-mh) * (1 + mh), sq = exp(-ms) * (1 + ms);
	assert_int_equal(s.tokens, 2);
	assert_int_equal(s.used, 2);
	assert_float_equal(s.score, (1 + h - sq) / 2, 1e-12);
	assert_float_equal(s.ham_prob, 1 - h, 1e-12);
	assert_float_equal(s.spam_prob, 1 - sq, 1e-12);
}

static void test_min_dev_and_max_tokens(void **state)
{
	(void)state;
	totals(10, 10);
	const int strong[] = { 30 }, weak[] = { 31 };
	for (int i = 0; i < 9; i++)
		train_one(db, 600 + i, strong, 1, CHAFF_SPAM, 0);
	train_one(db, 700, weak, 1, CHAFF_SPAM, 0);
	train_one(db, 701, weak, 1, CHAFF_HAM, 0);
	const int both[] = { 30, 31, 32 }; /* 32 never seen */
	/* f(t31) = 0.362 with these totals (20 spam, 11 ham): within 0.2 */
	struct chaff_params p = params(0.1, 0.5, 0.2, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	struct chaff_score s = score(both, 3, 10);
	assert_int_equal(s.tokens, 3);
	/* token 31 is near 0.5, and 32 was never seen: both are dropped */
	assert_int_equal(s.used, 1);
	assert_string_equal(s.clues[0].text, "t30");
	p = params(0.1, 0.5, 0.0, 1);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	s = score(both, 3, 10);
	assert_int_equal(s.used, 1); /* max_tokens keeps the strongest only */
	assert_string_equal(s.clues[0].text, "t30");
}

static void test_thousands_of_tokens(void **state)
{
	(void)state;
	totals(5, 5);
	static int ids[6000];
	for (int i = 0; i < 6000; i++)
		ids[i] = 10000 + i;
	train_one(db, 800, ids, 3000, CHAFF_SPAM, 0);
	train_one(db, 801, ids + 3000, 3000, CHAFF_HAM, 0);
	struct chaff_params p = params(0.0178, 0.5, 0.1, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	struct chaff_score s = score(ids, 3000, 3);
	assert_int_equal(s.used, 3000);
	assert_true(isfinite(s.score));
	assert_true(s.score > 0.999 && s.score <= 1.0);
	assert_int_equal(s.verdict, CHAFF_VERDICT_SPAM);
	/* the score says which cutoffs its verdict came from */
	assert_float_equal(s.spam_cutoff, 0.9, 0);
	assert_float_equal(s.ham_cutoff, 0.2, 0);
	s = score(ids + 3000, 3000, 0);
	assert_true(s.score >= 0.0 && s.score < 0.001);
	assert_int_equal(s.verdict, CHAFF_VERDICT_HAM);
	/* strong evidence both ways: both tails vanish, the score is 0.5 */
	s = score(ids, 6000, 0);
	assert_true(isfinite(s.score));
	assert_float_equal(s.score, 0.5, 1e-9);
	assert_int_equal(s.verdict, CHAFF_VERDICT_UNSURE);
	/* no usable token at all is no evidence: 0.5 */
	const int unseen[] = { 999999 };
	s = score(unseen, 1, 0);
	assert_float_equal(s.score, 0.5, 0);
	assert_int_equal(s.used, 0);
	/* a score on a cutoff takes its side: spam at spam_cutoff (first,
	 * when both are equal), ham at ham_cutoff */
	p.ham_cutoff = 0.5;
	p.spam_cutoff = 0.5;
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	assert_int_equal(score(unseen, 1, 0).verdict, CHAFF_VERDICT_SPAM);
	p.spam_cutoff = 0.9;
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	assert_int_equal(score(unseen, 1, 0).verdict, CHAFF_VERDICT_HAM);
	p.ham_cutoff = 0.2;
	p.spam_cutoff = 0.5;
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	assert_int_equal(score(unseen, 1, 0).verdict, CHAFF_VERDICT_SPAM);
}

static void test_params_validation(void **state)
{
	(void)state;
	struct chaff_params p;
	chaff_params_default(&p);
	assert_true(chaff_params_valid(&p));
	p.robx = 1.5;
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_EINVAL);
	chaff_params_default(&p);
	p.ham_cutoff = 0.95;
	p.spam_cutoff = 0.9;
	assert_false(chaff_params_valid(&p));
	assert_int_equal(chaff_db_set_param(db, "spam_cutoff", 2), CHAFF_EINVAL);
	assert_int_equal(chaff_db_set_param(db, "nonsense", 1), CHAFF_ENOTFOUND);
	assert_int_equal(chaff_db_set_param(db, "max_tokens", 1.5), CHAFF_EINVAL);
	assert_int_equal(chaff_db_set_param(db, "robs", 0.25), CHAFF_OK);
	double v;
	assert_int_equal(chaff_db_get_param(db, "robs", &v), CHAFF_OK);
	assert_float_equal(v, 0.25, 0);
}

/* A snapshot scores exactly as the database it was read from, keeps that
 * state while the database is trained further, and refuses a database
 * larger than its limit. Hash 0 (id -1000) is a key like any other. */
/* A token never seen has f(w) = x: it counts when robx lies min_dev or
 * more from 0.5, and is dropped otherwise (as with the defaults). */
static void test_unseen_token_is_x(void **state)
{
	(void)state;
	totals(5, 5);
	const int a[] = {40};
	for (int i = 0; i < 4; i++)
		train_one(db, 800 + i, a, 1, CHAFF_SPAM, 0); /* totals: 9 spam, 5 ham */
	const int both[] = {40, 41};                         /* 41 never seen */
	struct chaff_params p = params(1.0, 0.95, 0.4, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	struct chaff_score s = score(both, 2, 5);
	double f1 = robinson_f(4, 0, 9, 5, 1.0, 0.95), f2 = 0.95;
	double mh = -log(f1 * f2), ms = -log((1 - f1) * (1 - f2));
	double h = exp(-mh) * (1 + mh), sq = exp(-ms) * (1 + ms);
	assert_int_equal(s.used, 2);
	assert_float_equal(s.score, (1 + h - sq) / 2, 1e-12);
	/* its clue: no counts, f = x */
	int k = strcmp(s.clues[0].text, "t41") == 0 ? 0 : 1;
	assert_string_equal(s.clues[k].text, "t41");
	assert_int_equal(s.clues[k].spam + s.clues[k].ham, 0);
	assert_float_equal(s.clues[k].f, 0.95, 1e-12);
	/* x within min_dev of 0.5: dropped */
	p = params(1.0, 0.52, 0.4, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	s = score(both, 2, 5);
	assert_int_equal(s.used, 1);
	assert_string_equal(s.clues[0].text, "t40");
	/* x exactly min_dev from 0.5 (as the doubles subtract): counted, on
	 * the ham side as on the spam side, whatever s is */
	const double edge[][3] = {{0.9, 0.4, 1.0},   {0.1, 0.4, 1.0},   {0.2, 0.3, 0.3},
	                          {0.74, 0.24, 0.7}, {0.26, 0.24, 3.0}, {0.1, 0.4, 0.45}};
	const int unseen[] = {41};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		if (fabs(edge[i][0] - 0.5) < edge[i][1])
			continue; /* not on the edge in doubles: nothing to check */
		p = params(edge[i][2], edge[i][0], edge[i][1], 0);
		assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
		s = score(unseen, 1, 5);
		assert_int_equal(s.used, 1);
		assert_true(s.clues[0].f == edge[i][0]);
	}
}

static void test_snapshot(void **state)
{
	(void)state;
	totals(3, 3);
	static int ids[40];
	for (int i = 0; i < 40; i++)
		ids[i] = i < 39 ? 50 + 7 * i : -1000;
	train_one(db, 900, ids, 25, CHAFF_SPAM, 0);
	train_one(db, 901, ids + 15, 25, CHAFF_HAM, 0);
	train_one(db, 902, ids + 30, 10, CHAFF_SPAM, 0);
	struct chaff_params p = params(0.3, 0.5, 0.0, 0);
	assert_int_equal(chaff_classifier_set_params(cl, &p), CHAFF_OK);
	struct chaff_score want[4];
	const size_t from[4] = { 0, 10, 20, 30 }, len[4] = { 12, 15, 18, 10 };
	for (int k = 0; k < 4; k++)
		want[k] = score(ids + from[k], len[k], 0);

	chaff_snapshot *snap;
	assert_int_equal(chaff_snapshot_new(db, 3, &snap), CHAFF_ENOSPC);
	assert_int_equal(chaff_snapshot_new(db, 1000, &snap), CHAFF_OK);
	chaff_classifier_use_snapshot(cl, snap);
	for (int k = 0; k < 4; k++) {
		struct chaff_score s = score(ids + from[k], len[k], 3);
		assert_float_equal(s.score, want[k].score, 0);
		assert_int_equal(s.used, want[k].used);
	}
	/* the clue of hash 0 carries its counts: 1 spam (902), 1 ham (901) */
	const int zero[] = { -1000 };
	struct chaff_score z = score(zero, 1, 1);
	assert_int_equal(z.nclues, 1);
	assert_int_equal(z.clues[0].spam, 1);
	assert_int_equal(z.clues[0].ham, 1);

	/* training after the snapshot: the snapshot keeps the old state, and
	 * the database's generation tells that it is old */
	assert_true(chaff_snapshot_generation(snap) == chaff_db_generation(db));
	train_one(db, 903, ids, 20, CHAFF_HAM, 0);
	assert_true(chaff_snapshot_generation(snap) != chaff_db_generation(db));
	struct chaff_score s = score(ids, 12, 0);
	assert_float_equal(s.score, want[0].score, 0);
	chaff_classifier_use_snapshot(cl, NULL);
	s = score(ids, 12, 0);
	assert_true(s.score < want[0].score);
	chaff_snapshot_free(snap);
}

static int fresh(void **state)
{
	teardown(state);
	return setup(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_empty_database, fresh),
	        cmocka_unit_test_setup(test_one_token_score_is_its_f, fresh),
	        cmocka_unit_test_setup(test_two_tokens_by_hand, fresh),
	        cmocka_unit_test_setup(test_min_dev_and_max_tokens, fresh),
	        cmocka_unit_test_setup(test_thousands_of_tokens, fresh),
	        cmocka_unit_test_setup(test_params_validation, fresh),
	        cmocka_unit_test_setup(test_unseen_token_is_x, fresh),
	        cmocka_unit_test_setup(test_snapshot, fresh),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
