/* Finding and opening the user's database, and other shared helpers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char *cli_db_path(const char *opt)
{
	static char buf[4096];
	if (opt && *opt)
		return opt;
	const char *env = getenv("CHAFF_DB");
	if (env && *env)
		return env;
	const char *home = getenv("HOME");
	snprintf(buf, sizeof(buf), "%s/.chaff", home && *home ? home : ".");
	return buf;
}

void cli_log(void *user, enum chaff_log_level level, const char *msg)
{
	(void)user;
	if (level == CHAFF_LOG_ERROR)
		cli_error("%s", msg);
	else if (level == CHAFF_LOG_WARN)
		cli_warn("%s", msg);
	else
		fprintf(stderr, "chaff: %s\n", msg);
}

chaff_db *cli_db_open(const char *opt, unsigned flags)
{
	const char *path = cli_db_path(opt);
	struct chaff_db_options o = {.flags = flags, .log = cli_log};
	chaff_db *db;
	int rc = chaff_db_open(path, &o, &db);
	if (rc != CHAFF_OK)
		return NULL; /* the library has said why, once, through cli_log */
	return db;
}

enum cli_db_before cli_db_before(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? CLI_DB_NOTHING : CLI_DB_THERE;
	char f[4200];
	snprintf(f, sizeof(f), "%s/data.mdb", path);
	if (S_ISDIR(st.st_mode) && stat(f, &st) != 0 && errno == ENOENT)
		return CLI_DB_FOLDER;
	return CLI_DB_THERE;
}

/* The files a failed first open of the database at path left (a full
 * disk stops it half-way): removed when nobody has the database open
 * (an open holds the folder's shared lock) and its data file holds no
 * more than LMDB's two meta pages, which no record lives in. Another
 * process may have made and trained the database since this run looked,
 * and its data file is then larger: it stays. True when none is left. */
static bool remove_unopened(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);
	bool alone = flock(fd, LOCK_EX | LOCK_NB) == 0;
	bool blank = fstatat(fd, "data.mdb", &st, AT_SYMLINK_NOFOLLOW) != 0
	                     ? errno == ENOENT
	                     : S_ISREG(st.st_mode) && st.st_size <= 2 * (page > 0 ? page : 4096);
	if (alone && blank) {
		(void)unlinkat(fd, "data.mdb", 0);
		(void)unlinkat(fd, "lock.mdb", 0);
	}
	close(fd); /* (and the lock with it) */
	return alone && blank;
}

void cli_db_close_unmade(chaff_db *db, const char *path, enum cli_db_before before)
{
	if (before == CLI_DB_THERE) {
		chaff_db_close(db);
		return;
	}
	/* kept when anything was trained into it, or another process has it
	 * open (perhaps to train into it) */
	bool removed = db ? chaff_db_close_unmade(db) : remove_unopened(path);
	if (removed && before == CLI_DB_NOTHING)
		rmdir(path); /* fails, harmlessly, if anything else is there */
}

bool cli_number_in(const char *opt, const char *s, unsigned long min, unsigned long max,
                   unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		cli_error("%s wants a whole number from %lu to %lu, not '%s'", opt, min, max, s);
		return false;
	}
	*out = v;
	return true;
}

bool cli_number(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	return cli_number_in(opt, s, 0, max, out);
}

int cli_db_opts(int argc, char **argv, const char *usage, const char **dbpath, bool *json,
                bool stop_at_operand)
{
	static const struct option longopts[] = {
	        {"db", required_argument, NULL, 'd'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, stop_at_operand ? "+h" : "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': *dbpath = optarg; break;
		case 'j':
			if (!json)
				goto bad;
			*json = true;
			break;
		case 'h': fputs(usage, stdout); exit(EXIT_OK);
		default: goto bad;
		}
	}
	return optind;
bad:
	fputs(usage, stderr);
	return -1;
}

int cli_train_one(chaff_db *db, chaff_tokenizer *tok, const char *msg, size_t len,
                  enum chaff_class cls, enum chaff_learned *outcome)
{
	struct chaff_tokens tk;
	struct chaff_digest d;
	chaff_batch *b = NULL;
	chaff_message_digest(msg, len, &d);
	int rc = chaff_tokenize(tok, msg, len, &tk);
	if (rc == CHAFF_OK)
		rc = chaff_batch_new(db, &b);
	if (rc == CHAFF_OK)
		rc = chaff_batch_add(b, &tk, &d, cls, 0);
	if (rc == CHAFF_OK)
		rc = chaff_batch_commit(b, outcome);
	chaff_batch_free(b);
	return rc;
}
