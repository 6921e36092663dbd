/* A hash map from token hash to a count and the token's text, for
 * corpus statistics. Open addressing; the text is kept once per token. */
#ifndef CHAFF_TOKMAP_H
#define CHAFF_TOKMAP_H

#include <stddef.h>
#include <stdint.h>

struct tokmap_entry {
	uint64_t hash;
	uint64_t count;
	char *text;
};

struct tokmap {
	struct tokmap_entry *slots;
	size_t cap, used;
};

void tokmap_init(struct tokmap *m);
void tokmap_free(struct tokmap *m);
/* Adds n to the count of hash, keeping text the first time. 0 or -1. */
int tokmap_add(struct tokmap *m, uint64_t hash, const char *text, uint64_t n);
/* The k entries with the highest counts, highest first (ties by text);
 * returns how many were written to out. */
size_t tokmap_top(const struct tokmap *m, struct tokmap_entry *out, size_t k);

#endif
