/*
 * The measures 'chaff eval' reports, against cases worked out by hand:
 * (1-ROCA)% as the share of wrongly ordered (spam, ham) pairs with ties
 * counting half, the ROC curve's points and area, lam% with TREC's
 * treatment of zero rates, and the SVG picture's shape.
 */
#include <math.h>

#include "test_util.h"

#include "cli/eval_metrics.h"

/* Samples from score lists; sorted, as the functions want them. */
static size_t make(struct eval_sample *s, const double *spam, size_t ns, const double *ham,
                   size_t nh)
{
	size_t n = 0;
	for (size_t i = 0; i < nh; i++)
		s[n++] = (struct eval_sample){ ham[i], false };
	for (size_t i = 0; i < ns; i++)
		s[n++] = (struct eval_sample){ spam[i], true };
	eval_sort(s, n);
	return n;
}

/* Area under a curve of straight segments. */
static double area_under(const struct eval_point *p, size_t n)
{
	double a = 0;
	for (size_t i = 1; i < n; i++)
		a += (p[i].fpr - p[i - 1].fpr) * (p[i].tpr + p[i - 1].tpr) / 2;
	return a;
}

/* spam {0.9, 0.8, 0.4}, ham {0.7, 0.3, 0.2, 0.1}: only (0.4, 0.7) of the
 * 12 pairs is in the wrong order, so ROCA = 11/12. */
static void test_roca_hand(void **state)
{
	(void)state;
	const double spam[] = { 0.4, 0.9, 0.8 }, ham[] = { 0.3, 0.7, 0.1, 0.2 };
	struct eval_sample s[7];
	size_t n = make(s, spam, 3, ham, 4);
	assert_float_equal(eval_roca_pct(s, n), 100.0 / 12, 1e-9);
	assert_float_equal(eval_roca_pct(s, n), 8.3333, 1e-4);
}

/* spam {0.9, 0.5}, ham {0.5, 0.1}: one tied pair of four, counting half. */
static void test_roca_ties(void **state)
{
	(void)state;
	const double spam[] = { 0.9, 0.5 }, ham[] = { 0.5, 0.1 };
	struct eval_sample s[4];
	size_t n = make(s, spam, 2, ham, 2);
	assert_float_equal(eval_roca_pct(s, n), 12.5, 1e-9);

	const double all_spam[] = { 0.5, 0.5, 0.5 }, all_ham[] = { 0.5, 0.5 };
	struct eval_sample t[5];
	n = make(t, all_spam, 3, all_ham, 2);
	assert_float_equal(eval_roca_pct(t, n), 50, 1e-9);
}

static void test_roca_extremes(void **state)
{
	(void)state;
	const double hi[] = { 0.99, 0.8 }, lo[] = { 0.2, 0.01, 0.3 };
	struct eval_sample s[5];
	size_t n = make(s, hi, 2, lo, 3);
	assert_float_equal(eval_roca_pct(s, n), 0, 0);
	n = make(s, lo, 3, hi, 2);
	assert_float_equal(eval_roca_pct(s, n), 100, 0);
	n = make(s, hi, 2, NULL, 0);
	assert_true(isnan(eval_roca_pct(s, n)));
	struct eval_point p[3];
	assert_int_equal(eval_roc_curve(s, n, p), 0);
}

/* The curve of the hand case: up two spam, right one ham, up the last
 * spam, right along the top; straight runs merged. */
static void test_curve_points(void **state)
{
	(void)state;
	const double spam[] = { 0.9, 0.8, 0.4 }, ham[] = { 0.7, 0.3, 0.2, 0.1 };
	struct eval_sample s[7];
	size_t n = make(s, spam, 3, ham, 4);
	struct eval_point p[8];
	size_t np = eval_roc_curve(s, n, p);
	const struct eval_point want[] = {
		{ 0, 0 }, { 0, 2.0 / 3 }, { 0.25, 2.0 / 3 }, { 0.25, 1 }, { 1, 1 },
	};
	assert_int_equal(np, 5);
	for (size_t i = 0; i < np; i++) {
		assert_float_equal(p[i].fpr, want[i].fpr, 1e-12);
		assert_float_equal(p[i].tpr, want[i].tpr, 1e-12);
	}
	assert_float_equal(100 * (1 - area_under(p, np)), eval_roca_pct(s, n), 1e-9);
}

/* A tie of a spam and a ham is one diagonal step, and the area over many
 * tied scores is the pair count's, ties half. */
static void test_curve_ties_match_area(void **state)
{
	(void)state;
	enum { N = 2000 };
	struct eval_sample *s = malloc(N * sizeof(*s));
	struct eval_point *p = malloc((N + 1) * sizeof(*p));
	assert_non_null(s);
	assert_non_null(p);
	uint32_t x = 12345;
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		bool spam = (x >> 16) % 3 == 0;
		x = x * 1103515245u + 12345u;
		/* twenty score levels, spam leaning high: many ties */
		unsigned level = ((x >> 16) % 15) + (spam ? 5 : 0);
		s[i] = (struct eval_sample){ level / 19.0, spam };
	}
	eval_sort(s, N);
	size_t np = eval_roc_curve(s, N, p);
	assert_true(np >= 2 && np <= N + 1);
	assert_float_equal(p[0].fpr, 0, 0);
	assert_float_equal(p[np - 1].tpr, 1, 0);
	assert_float_equal(100 * (1 - area_under(p, np)), eval_roca_pct(s, N), 1e-9);
	free(s);
	free(p);
}

static void test_rate(void **state)
{
	(void)state;
	assert_float_equal(eval_rate(0, 100), 0.005, 1e-15);
	assert_float_equal(eval_rate(100, 100), 0.995, 1e-15);
	assert_float_equal(eval_rate(3, 100), 0.03, 1e-15);
	assert_true(isnan(eval_rate(0, 0)));
}

/* lam is the inverse logit of the mean logit: its odds are the geometric
 * mean of the two rates' odds. */
static void test_lam(void **state)
{
	(void)state;
	/* fpr 1/100 (odds 1/99), fnr 4/100 (odds 4/96) */
	double o = sqrt((1.0 / 99) * (4.0 / 96));
	assert_float_equal(eval_lam_pct(1, 100, 4, 100), 100 * o / (1 + o), 1e-9);
	assert_float_equal(eval_lam_pct(1, 100, 4, 100), 2.01028, 1e-5);
	/* equal rates: lam is that rate */
	assert_float_equal(eval_lam_pct(10, 100, 20, 200), 10, 1e-9);
	/* no errors: the rates become 0.5/100 and 0.5/50 */
	o = sqrt((0.005 / 0.995) * (0.01 / 0.99));
	assert_float_equal(eval_lam_pct(0, 100, 0, 50), 100 * o / (1 + o), 1e-9);
	assert_true(eval_lam_pct(0, 100, 0, 50) > 0);
	/* every ham wrong and no spam: symmetric, 50% */
	assert_float_equal(eval_lam_pct(100, 100, 0, 100), 50, 1e-9);
	assert_true(isnan(eval_lam_pct(0, 0, 1, 10)));
}

static void test_svg(void **state)
{
	(void)state;
	const struct eval_point p[] = { { 0, 0 }, { 0, 0.5 }, { 0.5, 1 }, { 1, 1 } };
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(eval_roc_svg(f, p, 4, "a <b> & c", "sub\"title"), 0);
	long len = ftell(f);
	assert_true(len > 0);
	char *buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	assert_true(strncmp(buf, "<?xml", 5) == 0);
	assert_non_null(strstr(buf, "<title>a &lt;b&gt; &amp; c</title>"));
	assert_non_null(strstr(buf, "sub&quot;title"));
	assert_null(strstr(buf, "a <b>"));
	/* (0,0) is the plot's lower left, (1,1) its upper right */
	assert_non_null(strstr(buf, "points=\"80.00,488.00 80.00,278.00 290.00,68.00 500.00,68.00\""));
	assert_true(strcmp(buf + len - 7, "</svg>\n") == 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roca_hand),      cmocka_unit_test(test_roca_ties),
		cmocka_unit_test(test_roca_extremes),  cmocka_unit_test(test_curve_points),
		cmocka_unit_test(test_curve_ties_match_area), cmocka_unit_test(test_rate),
		cmocka_unit_test(test_lam),            cmocka_unit_test(test_svg),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
