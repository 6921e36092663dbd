/* Shared pieces of the chaff command's subcommands. */
#ifndef CHAFF_CLI_H
#define CHAFF_CLI_H

#include <stdio.h>

/* Exit codes shared by every subcommand (classify has its own 0/1/2). */
enum { EXIT_OK = 0, EXIT_FAIL = 3, EXIT_USAGE = 4 };

/* A command that has read this many messages, or training whose input
 * files hold this many bytes, is a bulk run (cli_bulk_heap). */
enum { CLI_BULK_MESSAGES = 16, CLI_BULK_BYTES = 2 << 20 };

/* A message this large is not copied into a chunk for the worker threads:
 * the chunks before it are finished first, and it is tokenized where it
 * was read, so that it is held once, not twice. */
enum { CLI_BIG_MESSAGE = 8 << 20 };

/* The largest database scored against a copy in memory (chaff_snapshot_new):
 * a table of at most 128 MB. Larger ones are looked up in LMDB. */
enum { CLI_SNAPSHOT_MAX_TOKENS = 1 << 22 };

#include <stdbool.h>

#include "chaff.h"

int cmd_tokens(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_untrain(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* The database directory: --db, else $CHAFF_DB, else ~/.chaff. */
const char *cli_db_path(const char *opt);
/* Opens it with errors logged to stderr; NULL after printing why. */
chaff_db *cli_db_open(const char *opt, unsigned flags);
/* What was at a database path before a command that may make the
 * database (and that removes it again when it fails before its first
 * commit): nothing, a folder with no database in it, or a database (or
 * something that cannot be told from one). */
enum cli_db_before { CLI_DB_NOTHING, CLI_DB_FOLDER, CLI_DB_THERE };
enum cli_db_before cli_db_before(const char *path);
/* Closes db, a database at path that this run made and failed to fill,
 * and removes its two files, and its folder when the run made that too,
 * unless it holds anything by now. db NULL: the run failed to open it
 * (a full disk), and what the open left is removed unless another
 * process has the database open. Nothing is removed when before is
 * CLI_DB_THERE. */
void cli_db_close_unmade(chaff_db *db, const char *path, enum cli_db_before before);
/*
 * Options of the commands that take only --db (and --json when json is not
 * NULL): returns the index of the first operand, or -1 after a usage
 * message; --help prints usage and exits. stop_at_operand keeps what
 * follows the first operand as operands ("config set robx -1").
 */
int cli_db_opts(int argc, char **argv, const char *usage, const char **dbpath, bool *json,
                bool stop_at_operand);
/* Trains one message as cls in a transaction of its own, tokenized by tok
 * (made for db); *outcome says what happened. */
int cli_train_one(chaff_db *db, chaff_tokenizer *tok, const char *msg, size_t len,
                  enum chaff_class cls, enum chaff_learned *outcome);
/* The log callback that prints library messages as "chaff: ...". */
void cli_log(void *user, enum chaff_log_level level, const char *msg);
/* Parses a whole non-negative number; false (after an error) otherwise. */
bool cli_number(const char *opt, const char *s, unsigned long max, unsigned long *out);
/* The same for a number from min to max. */
bool cli_number_in(const char *opt, const char *s, unsigned long min, unsigned long max,
                   unsigned long *out);

/* "chaff: <message>" on stderr. */
/* Runs handler, on a stack of its own, for each of the n signals sigs (a
 * fault turned into a message and an exit instead of a crash). */
void cli_catch_faults(void (*handler)(int), const int *sigs, size_t n);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s as a JSON string: quotes, backslashes and control characters escaped
 * (NUL as \u0000), UTF-8 passed through; _strn for n bytes of s. */
void cli_json_str(FILE *f, const char *s);
void cli_json_strn(FILE *f, const char *s, size_t n);
/* v in the fewest significant digits that read back as v exactly (0.1,
 * not 0.10000000000000001), in buf; returns buf. */
const char *cli_num(char buf[32], double v);
/* Seconds on a monotonic clock. */
double cli_now(void);
/* Sets the process's heap up for a bulk run: a large first stretch in
 * 2 MB pages, one arena, nothing given back (see cli/bulkheap.c). Call it
 * on the main thread as soon as the run is known to be a bulk one (see
 * CLI_BULK_MESSAGES), before the worker threads start where possible;
 * later calls do nothing. */
void cli_bulk_heap(void);

#endif
