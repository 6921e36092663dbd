#include "tokmap.h"

#include <stdlib.h>
#include <string.h>

void tokmap_init(struct tokmap *m)
{
	m->slots = NULL;
	m->cap = m->used = 0;
}

void tokmap_free(struct tokmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].text);
	free(m->slots);
	tokmap_init(m);
}

/* Hash 0 marks an empty slot; a real hash of 0 is stored as 1. XXH3 output
 * is uniform, so its low bits index the table directly. */
static int grow(struct tokmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct tokmap_entry *s = calloc(cap, sizeof(*s));
	if (!s)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].hash)
			continue;
		size_t j = m->slots[i].hash & (cap - 1);
		while (s[j].hash)
			j = (j + 1) & (cap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->cap = cap;
	return 0;
}

int tokmap_add(struct tokmap *m, uint64_t hash, const char *text, uint64_t n)
{
	if (!hash)
		hash = 1;
	if ((m->used + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -1;
	size_t j = hash & (m->cap - 1);
	while (m->slots[j].hash && m->slots[j].hash != hash)
		j = (j + 1) & (m->cap - 1);
	struct tokmap_entry *e = &m->slots[j];
	if (!e->hash) {
		e->text = strdup(text);
		if (!e->text)
			return -1;
		e->hash = hash;
		m->used++;
	}
	e->count += n;
	return 0;
}

static int better(const struct tokmap_entry *a, const struct tokmap_entry *b)
{
	if (a->count != b->count)
		return a->count > b->count;
	return strcmp(a->text, b->text) < 0;
}

size_t tokmap_top(const struct tokmap *m, struct tokmap_entry *out, size_t k)
{
	size_t n = 0;
	for (size_t i = 0; i < m->cap && k; i++) {
		const struct tokmap_entry *e = &m->slots[i];
		if (!e->hash)
			continue;
		if (n < k) {
			out[n++] = *e;
		} else if (better(e, &out[n - 1])) {
			out[n - 1] = *e;
		} else {
			continue;
		}
		/* Insertion step: k is small. */
		for (size_t j = n - 1; j > 0 && better(&out[j], &out[j - 1]); j--) {
			struct tokmap_entry t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	}
	return n;
}
