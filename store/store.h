/*
 * The store interface: everything above it (the database layer, training,
 * scoring) reaches tokens, metadata and digests only through this table of
 * functions. LMDB is the embedded backend; an in-memory one serves tests.
 * A shared network store would be a third table, not calls spread around.
 */
#ifndef CHAFF_STORE_H
#define CHAFF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaff.h"

/* Returned by put when the backend has no room left but can grow: the
 * caller aborts the transaction, calls grow() and replays it. */
#define STORE_FULL (-1000)

struct store;
struct store_txn;

typedef int (*store_token_fn)(void *user, uint64_t key, const struct chaff_record *r);

struct store_ops {
	/* True when a read transaction begun while this handle holds the
	 * write transaction sees the data as that transaction found it (the
	 * last commit: no other can come meanwhile), and may run on another
	 * thread at the same time. */
	bool parallel_reads;

	/* One write transaction at a time across all processes: a second
	 * begin(write) waits for the first to end. */
	int (*begin)(struct store *s, bool write, struct store_txn **out);
	int (*commit)(struct store_txn *t);
	void (*abort)(struct store_txn *t);

	/* Tokens. get returns CHAFF_ENOTFOUND for an unknown key. */
	int (*get)(struct store_txn *t, uint64_t key, struct chaff_record *out);
	int (*put)(struct store_txn *t, uint64_t key, const struct chaff_record *r);
	int (*del)(struct store_txn *t, uint64_t key);
	/* In key order; a non-zero return of fn stops and is returned. */
	int (*foreach)(struct store_txn *t, store_token_fn fn, void *user);
	/* Removes every token (write transactions). Puts that follow in
	 * rising key order may then fill pages as a first training does. */
	int (*clear)(struct store_txn *t);

	/* Metadata: small values under short names. *len is the buffer size
	 * in and the value size out. */
	int (*meta_get)(struct store_txn *t, const char *name, void *buf, size_t *len);
	int (*meta_put)(struct store_txn *t, const char *name, const void *buf, size_t len);

	/* Digests of trained messages and their class. */
	int (*digest_get)(struct store_txn *t, const struct chaff_digest *d, uint8_t *cls);
	int (*digest_put)(struct store_txn *t, const struct chaff_digest *d, uint8_t cls);
	int (*digest_del)(struct store_txn *t, const struct chaff_digest *d);
	/* In key order; a non-zero return of fn stops and is returned. */
	int (*digest_foreach)(struct store_txn *t,
	                      int (*fn)(void *user, const struct chaff_digest *d, uint8_t cls),
	                      void *user);

	/* A number that changes with every committed write transaction, in
	 * any process; and the one a transaction's view of the data has. */
	uint64_t (*generation)(struct store *s);
	uint64_t (*txn_generation)(struct store_txn *t);

	/* Counts and sizes for stats. */
	int (*info)(struct store_txn *t, uint64_t *tokens, uint64_t *digests, uint64_t *bytes_used,
	            uint64_t *bytes_file);
	/* Makes room after STORE_FULL (no transaction of this handle open). */
	int (*grow)(struct store *s);
	/* A consistent compacted copy into directory dir. */
	int (*backup)(struct store *s, const char *dir);
	/* Whether no other process has the store open, tried without
	 * waiting; when true, none can open it until this one closes. NULL
	 * for a store no other process can see. */
	bool (*alone)(struct store *s);
	/* Removes the store's files: only after alone() said true, and only
	 * close may follow. */
	int (*remove)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

/* Whether the store's messages (errors it logs) are silenced for the
 * calling thread alone: for a helper thread whose failures its caller
 * handles (and reports, if need be) itself. */
void store_quiet_thread(bool quiet);

int store_lmdb_open(const char *dir, bool readonly, bool create, uint64_t map_size,
                    chaff_log_fn log, void *log_user, struct store **out);
int store_memory_open(struct store **out);

#endif
