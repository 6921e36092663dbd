/*
 * The database layer between the public chaff_db calls and a store: the
 * metadata schema, parameter validation, and helpers that training and
 * scoring share. Internal.
 */
#ifndef CHAFF_DB_H
#define CHAFF_DB_H

#include "store.h"

#define CHAFF_SCHEMA_VERSION 3 /* 2: varint counts in token records; 3: tokens in blocks */

struct chaff_db {
	struct store *st;
	bool readonly;
	chaff_log_fn log;
	void *log_user;
	uint64_t seed;
	uint32_t tok_flags;
	unsigned logged; /* messages logged, so an open failure is told once */
};

/* Message totals and the last training time. */
struct db_totals {
	uint64_t spam, ham;
	int64_t last_train;
};

int db_read_totals(chaff_db *db, struct store_txn *t, struct db_totals *out);
int db_write_totals(chaff_db *db, struct store_txn *t, const struct db_totals *tot);
int db_read_params(chaff_db *db, struct store_txn *t, struct chaff_params *out);
/*
 * Runs fn in a write transaction and commits it. When the store fills up,
 * the transaction is abandoned, the store grown and fn run again from the
 * start: fn must be replayable, and users never see a full map.
 */
int db_write_txn(chaff_db *db, int (*fn)(chaff_db *db, struct store_txn *t, void *u), void *u);
/* Today, in days since 1970, as records store it. */
uint32_t db_today(void);
void db_log(chaff_db *db, enum chaff_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
