/*
 * What a failed first open leaves behind (cli/dbopen.c): removed only
 * when nobody has the database open and its data file can hold no record,
 * so that a database another process made and trained meanwhile stays.
 */
#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

/* cli/main.c is not linked in. */
void cli_error(const char *fmt, ...)
{
	(void)fmt;
}

void cli_warn(const char *fmt, ...)
{
	(void)fmt;
}

static char dir[] = "/tmp/chaff-dbopen-XXXXXX";
static char db[600], data[700], lockfile[700], notes[700];

static void put(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static bool there(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof(db), "%s/db", dir);
	snprintf(data, sizeof(data), "%s/data.mdb", db);
	snprintf(lockfile, sizeof(lockfile), "%s/lock.mdb", db);
	snprintf(notes, sizeof(notes), "%s/notes.txt", db);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(data);
	unlink(lockfile);
	unlink(notes);
	rmdir(db);
	return rmdir(dir);
}

/* LMDB's two meta pages and no more: made by the failed open, removed
 * with the folder it made. */
static void test_half_made_database_removed(void **state)
{
	(void)state;
	long page = sysconf(_SC_PAGESIZE);
	assert_int_equal(mkdir(db, 0700), 0);
	put(data, (size_t)(2 * page));
	put(lockfile, 32896);
	cli_db_close_unmade(NULL, db, CLI_DB_NOTHING);
	assert_false(there(data));
	assert_false(there(lockfile));
	assert_false(there(db));
	/* only the lock file: the same */
	assert_int_equal(mkdir(db, 0700), 0);
	put(lockfile, 32896);
	cli_db_close_unmade(NULL, db, CLI_DB_NOTHING);
	assert_false(there(db));
}

/* A data file with pages past the meta pages holds records (another
 * process trained it since this run looked): everything stays. */
static void test_trained_database_kept(void **state)
{
	(void)state;
	long page = sysconf(_SC_PAGESIZE);
	assert_int_equal(mkdir(db, 0700), 0);
	put(data, (size_t)(3 * page));
	put(lockfile, 32896);
	cli_db_close_unmade(NULL, db, CLI_DB_NOTHING);
	assert_true(there(data));
	assert_true(there(lockfile));
	unlink(data);
	unlink(lockfile);
	rmdir(db);
}

/* Another process has the database open (the folder's shared lock):
 * nothing is removed, however small the file. */
static void test_open_elsewhere_kept(void **state)
{
	(void)state;
	assert_int_equal(mkdir(db, 0700), 0);
	put(data, 0);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int fd = open(db, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || flock(fd, LOCK_SH) != 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	cli_db_close_unmade(NULL, db, CLI_DB_NOTHING);
	assert_true(there(data));
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	close(ready[0]);
	close(ready[1]);
	unlink(data);
	rmdir(db);
}

/* A folder that was there before: its own files and the folder stay. */
static void test_folder_that_was_there_kept(void **state)
{
	(void)state;
	assert_int_equal(mkdir(db, 0700), 0);
	put(notes, 10);
	put(data, 0);
	cli_db_close_unmade(NULL, db, CLI_DB_FOLDER);
	assert_false(there(data));
	assert_true(there(notes));
	assert_true(there(db));
	unlink(notes);
	rmdir(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_half_made_database_removed),
	        cmocka_unit_test(test_trained_database_kept),
	        cmocka_unit_test(test_open_elsewhere_kept),
	        cmocka_unit_test(test_folder_that_was_there_kept),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
