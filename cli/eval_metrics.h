/*
 * The measures 'chaff eval' reports, as TREC's spam track defines them,
 * kept apart from the command so they can be checked by hand-computed
 * cases: (1-ROCA)%, lam%, the ROC curve and its SVG picture.
 */
#ifndef CHAFF_EVAL_METRICS_H
#define CHAFF_EVAL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One scored message. */
struct eval_sample {
	double score; /* spamminess in [0, 1] */
	bool spam;    /* its true class */
};

/* A point of the ROC curve: the share of ham at or above a threshold
 * (false positive rate) against the share of spam (true positive rate). */
struct eval_point {
	double fpr, tpr;
};

/* Sorts samples by score, highest first (ties in no particular order). */
void eval_sort(struct eval_sample *s, size_t n);

/*
 * (1-ROCA)% of samples sorted by eval_sort(): 100 times the share of
 * (spam, ham) pairs whose scores put the ham above the spam, a tie counting
 * half, which is the area above the ROC curve. NAN when a class is empty.
 */
double eval_roca_pct(const struct eval_sample *sorted, size_t n);

/*
 * The ROC curve of sorted samples from (0, 0) to (1, 1), one step per
 * distinct score (a group of tied scores is one diagonal step), points
 * on a straight horizontal or vertical run merged. pts has room for n + 1
 * points; returns how many were written (0 when a class is empty).
 */
size_t eval_roc_curve(const struct eval_sample *sorted, size_t n, struct eval_point *pts);

/* Rates in [0, 1] made finite for a logit, as TREC's lam does. */
double eval_rate(size_t k, size_t n);

/*
 * lam%, TREC's logistic average misclassification: the inverse logit of
 * the mean of logit(fp/nham) and logit(fn/nspam), times 100. NAN when a
 * class is empty.
 */
double eval_lam_pct(size_t fp, size_t nham, size_t fn, size_t nspam);

/* Writes the curve as a standalone SVG picture headed by title and a
 * smaller subtitle (plain text, escaped here). 0, or -1 when writing
 * failed. */
int eval_roc_svg(FILE *f, const struct eval_point *pts, size_t npts, const char *title,
                 const char *subtitle);

#endif
