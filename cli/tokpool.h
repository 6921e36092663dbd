/*
 * Tokenizing a chunk of messages on every core. The caller copies messages
 * in, runs the chunk, then takes the results in input order, so the work
 * that follows (training decisions) sees them exactly as one thread would.
 */
#ifndef CHAFF_TOKPOOL_H
#define CHAFF_TOKPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaff.h"

struct tokpool;

/* threads >= 1, the caller included (threads - 1 workers, started on the
 * first chunk and kept until tokpool_free); each thread gets its own
 * tokenizer made from cfg. */
int tokpool_new(struct tokpool **out, const struct chaff_tokenizer_config *cfg, unsigned threads);
/* Scoring instead: each thread gets its own classifier of db (params, when
 * not NULL, override the database's), and tokpool_run scores every message
 * with up to nclues clues. */
int tokpool_new_scoring(struct tokpool **out, chaff_db *db, const struct chaff_params *params,
                        unsigned threads, size_t nclues);
/* Scoring pools: every classifier of p scores against s (see
 * chaff_snapshot_new); only while neither p nor its twin is running (they
 * share the classifiers). */
void tokpool_use_snapshot(struct tokpool *p, const chaff_snapshot *s);
/* A second pool that works with of's tokenizers or classifiers and its
 * threads: half the memory, and half the pages to fault in, for two pools
 * taking turns. Both may be queued at once: a thread does one message at
 * a time, always with the instances of its own number, so no instance is
 * used twice at once. of must outlive it. */
int tokpool_twin(struct tokpool **out, const struct tokpool *of);
void tokpool_free(struct tokpool *p);
/* Copies a message and a label for it into the chunk. */
int tokpool_add(struct tokpool *p, const char *data, size_t len, const char *name, int cls);
/* The same without the copy: data must stay as it is until the chunk has
 * been run and its results taken (a caller with one thread runs each
 * message as soon as it is read). */
int tokpool_add_ref(struct tokpool *p, const char *data, size_t len, const char *name, int cls);
size_t tokpool_count(const struct tokpool *p);
/* Tokenizes and digests every message of the chunk. CHAFF_OK or the first
 * error; the slot of a failed message says which. */
int tokpool_run(struct tokpool *p);
/* The same in the background: the pool's workers start on the chunk while
 * the caller does something else; tokpool_wait has the caller join in
 * until the chunk is done, and returns what tokpool_run would. Nothing
 * else may touch the pool meanwhile. A pool of one thread, or a chunk of
 * a few messages, is done by the caller before tokpool_start returns. */
int tokpool_start(struct tokpool *p);
int tokpool_wait(struct tokpool *p);

/*
 * Two pools taking turns, for reading and handing on to overlap the
 * workers: the caller fills pp->fill (set it to p[0] to begin); when the
 * chunk is complete (or the input ended), tokpool_turn queues it for the
 * workers (who go on to it as soon as the chunk before has no message
 * left) and returns the chunk before, finished, in input order, or
 * NULL. The caller takes the results and resets that pool. Call it once
 * more after the last chunk for the one still running. Without p[1] (one
 * thread) each chunk is done at once and returned. start false: nothing
 * new is started (the caller is stopping).
 */
struct tokpool_pair {
	struct tokpool *p[2], *fill, *running;
};
struct tokpool *tokpool_turn(struct tokpool_pair *pp, bool start);
void tokpool_pair_free(struct tokpool_pair *pp);

struct tokpool_result {
	const uint64_t *hashes; /* the distinct token hashes (not when scoring) */
	size_t nhashes;
	uint32_t limits_hit;
	struct chaff_score score;   /* when scoring; its clues belong to the slot */
	struct chaff_digest digest;
	const char *name;
	int cls;
	size_t bytes;
	int rc;
	unsigned thread; /* which did the work: 0 to threads - 2 a worker, threads - 1 the caller */
};
/* Slot i after tokpool_run; valid until tokpool_reset. */
const struct tokpool_result *tokpool_result(const struct tokpool *p, size_t i);
void tokpool_reset(struct tokpool *p);

/* The number of online cores (at least 1). */
unsigned tokpool_cores(void);

#endif
