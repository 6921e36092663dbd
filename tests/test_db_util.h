/* Helpers for tests that train and score with hand-made tokens. */
#ifndef CHAFF_TEST_DB_UTIL_H
#define CHAFF_TEST_DB_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* A token list with hashes 1000 + id for each id given, text "t<id>". */
struct fake_tokens {
	struct chaff_token items[8192];
	char text[8192][16];
	struct chaff_tokens tk;
};

static inline struct chaff_tokens *fake(struct fake_tokens *f, const int *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(f->text[i], sizeof(f->text[i]), "t%d", ids[i]);
		f->items[i] = (struct chaff_token){ 1000 + (uint64_t)ids[i], f->text[i],
			                            (uint32_t)strlen(f->text[i]), CHAFF_ORIGIN_BODY };
	}
	f->tk = (struct chaff_tokens){ f->items, n, 0 };
	return &f->tk;
}

static inline struct chaff_digest digest_of(int id)
{
	struct chaff_digest d;
	memset(&d, 0, sizeof(d));
	memcpy(d.bytes, &id, sizeof(id));
	d.bytes[15] = 0x5a;
	return d;
}

/* Trains one fake message; returns what the batch decided. */
static inline enum chaff_learned train_one(chaff_db *db, int msg_id, const int *ids, size_t n,
                                           enum chaff_class cls, int untrain)
{
	static struct fake_tokens f;
	chaff_batch *b;
	assert_int_equal(chaff_batch_new(db, &b), CHAFF_OK);
	struct chaff_digest d = digest_of(msg_id);
	assert_int_equal(chaff_batch_add(b, fake(&f, ids, n), &d, cls, untrain), CHAFF_OK);
	enum chaff_learned out;
	assert_int_equal(chaff_batch_commit(b, &out), CHAFF_OK);
	chaff_batch_free(b);
	return out;
}

struct rec_find {
	uint64_t key;
	struct chaff_record r;
	int found;
};

static inline int find_rec(void *u, uint64_t key, const struct chaff_record *r)
{
	struct rec_find *f = u;
	if (key == f->key) {
		f->r = *r;
		f->found = 1;
	}
	return 0;
}

/* The record of token id, or counts of -1 when it is not stored. */
static inline struct chaff_record record_of(chaff_db *db, int id)
{
	struct rec_find f = { 1000 + (uint64_t)id, { 0, 0, 0 }, 0 };
	assert_int_equal(chaff_db_foreach(db, find_rec, &f), CHAFF_OK);
	if (!f.found)
		f.r.spam = f.r.ham = UINT32_MAX;
	return f.r;
}

/* A fresh temporary directory path (not created). */
static inline char *temp_dir(void)
{
	char *t = malloc(64);
	snprintf(t, 64, "/tmp/chaff-test-XXXXXX");
	if (!mkdtemp(t))
		return NULL;
	return t;
}

static inline void remove_tree(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

#endif
