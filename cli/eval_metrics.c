/*
 * (1-ROCA)%, lam% and the ROC curve, computed the way TREC's spam track
 * toolkit reports them, so figures can be set beside published ones.
 */
#include "eval_metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int cmp_desc(const void *a, const void *b)
{
	double x = ((const struct eval_sample *)a)->score;
	double y = ((const struct eval_sample *)b)->score;
	return x < y ? 1 : x > y ? -1 : 0;
}

void eval_sort(struct eval_sample *s, size_t n)
{
	qsort(s, n, sizeof(*s), cmp_desc);
}

/* The end of the run of scores tied with s[i]. */
static size_t tie_end(const struct eval_sample *s, size_t n, size_t i)
{
	size_t j = i + 1;
	while (j < n && s[j].score == s[i].score)
		j++;
	return j;
}

/*
 * Counted in whole pairs rather than summed as trapezoids: a good filter's
 * area above the curve is around 1e-4, and 1 minus a sum of thousands of
 * slices would keep few of its digits.
 */
double eval_roca_pct(const struct eval_sample *sorted, size_t n)
{
	uint64_t spam = 0, ham = 0;
	for (size_t i = 0; i < n; i++)
		sorted[i].spam ? spam++ : ham++;
	if (!spam || !ham)
		return NAN;
	/* twice the wrongly ordered pairs: a tie counts one, not two */
	uint64_t twice_wrong = 0, spam_above = 0;
	for (size_t i = 0; i < n;) {
		size_t j = tie_end(sorted, n, i);
		uint64_t gs = 0, gh = 0;
		for (size_t k = i; k < j; k++)
			sorted[k].spam ? gs++ : gh++;
		uint64_t spam_below = spam - spam_above - gs;
		twice_wrong += gh * (2 * spam_below + gs);
		spam_above += gs;
		i = j;
	}
	return 100.0 * (double)twice_wrong / (2.0 * (double)spam * (double)ham);
}

/* Appends p, replacing the last point when it only lengthens a straight
 * vertical or horizontal run. */
static void push(struct eval_point *pts, size_t *n, struct eval_point p)
{
	if (*n >= 2) {
		struct eval_point a = pts[*n - 2], b = pts[*n - 1];
		if ((a.fpr == b.fpr && b.fpr == p.fpr) || (a.tpr == b.tpr && b.tpr == p.tpr)) {
			pts[*n - 1] = p;
			return;
		}
	}
	pts[(*n)++] = p;
}

size_t eval_roc_curve(const struct eval_sample *sorted, size_t n, struct eval_point *pts)
{
	size_t spam = 0, ham = 0;
	for (size_t i = 0; i < n; i++)
		sorted[i].spam ? spam++ : ham++;
	if (!spam || !ham)
		return 0;
	size_t np = 0, tp = 0, fp = 0;
	push(pts, &np, (struct eval_point){ 0, 0 });
	for (size_t i = 0; i < n;) {
		size_t j = tie_end(sorted, n, i);
		for (size_t k = i; k < j; k++)
			sorted[k].spam ? tp++ : fp++;
		push(pts, &np, (struct eval_point){ (double)fp / (double)ham, (double)tp / (double)spam });
		i = j;
	}
	return np;
}

/*
 * A rate of 0 (or 1) has an infinite logit, so, as TREC's lam does, it is
 * taken as half a message's worth: 0.5/n (or 1 - 0.5/n). A perfect run
 * thus scores a lam that shrinks as the corpus grows, never 0.
 */
double eval_rate(size_t k, size_t n)
{
	if (n == 0)
		return NAN;
	if (k == 0)
		return 0.5 / (double)n;
	if (k >= n)
		return 1 - 0.5 / (double)n;
	return (double)k / (double)n;
}

static double logit(double p)
{
	return log(p / (1 - p));
}

double eval_lam_pct(size_t fp, size_t nham, size_t fn, size_t nspam)
{
	if (!nham || !nspam)
		return NAN;
	double x = (logit(eval_rate(fp, nham)) + logit(eval_rate(fn, nspam))) / 2;
	return 100.0 / (1 + exp(-x));
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else if ((unsigned char)*s >= 0x20 || *s == '\t')
			fputc(*s, f);
	}
}

/* Plot geometry in SVG user units: the square plot sits at (L, T), side S. */
enum { SVG_W = 540, SVG_H = 560, PLOT_L = 80, PLOT_T = 68, PLOT_S = 420 };

static void svg_axes(FILE *f)
{
	for (int k = 0; k <= 5; k++) {
		int x = PLOT_L + PLOT_S * k / 5, y = PLOT_T + PLOT_S - PLOT_S * k / 5;
		fprintf(f,
		        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n"
		        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n"
		        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n"
		        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f</text>\n",
		        x, PLOT_T, x, PLOT_T + PLOT_S, PLOT_L, y, PLOT_L + PLOT_S, y, x,
		        PLOT_T + PLOT_S + 18, k / 5.0, PLOT_L - 8, y + 4, k / 5.0);
	}
	fprintf(f,
	        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
	        "stroke=\"black\"/>\n"
	        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\" "
	        "stroke-dasharray=\"4 4\"/>\n"
	        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">false positive rate (share of "
	        "ham at or above the threshold)</text>\n"
	        "<text transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">true "
	        "positive rate (share of spam at or above the threshold)</text>\n",
	        PLOT_L, PLOT_T, PLOT_S, PLOT_S, PLOT_L, PLOT_T + PLOT_S, PLOT_L + PLOT_S, PLOT_T,
	        PLOT_L + PLOT_S / 2, PLOT_T + PLOT_S + 42, PLOT_L - 46, PLOT_T + PLOT_S / 2);
}

int eval_roc_svg(FILE *f, const struct eval_point *pts, size_t npts, const char *title,
                 const char *subtitle)
{
	fprintf(f,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n<title>",
	        SVG_W, SVG_H, SVG_W, SVG_H);
	xml_text(f, title);
	fprintf(f,
	        "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n"
	        "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">",
	        SVG_W, SVG_H, SVG_W / 2);
	xml_text(f, title);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"50\" text-anchor=\"middle\">", SVG_W / 2);
	xml_text(f, subtitle);
	fputs("</text>\n", f);
	svg_axes(f);
	fputs("<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"", f);
	for (size_t i = 0; i < npts; i++)
		fprintf(f, "%s%.2f,%.2f", i ? " " : "", PLOT_L + pts[i].fpr * PLOT_S,
		        PLOT_T + PLOT_S - pts[i].tpr * PLOT_S);
	fputs("\"/>\n</svg>\n", f);
	return ferror(f) ? -1 : 0;
}
