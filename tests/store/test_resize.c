/*
 * The LMDB map changes size under threads that are reading it: another
 * process grows the database past this process's map (MDB_MAP_RESIZED),
 * and this process's own writer doubles it (a full map). LMDB may only
 * move the map while the process has no transaction open; readers that
 * kept reading through a move would fault. Three threads classify without
 * pause while a child process and the main thread train, each from a map
 * of 256 KiB, until the database is many times that.
 */
#include "test_db_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

enum { READERS = 3, CHILD_BATCHES = 40, OWN_BATCHES = 40, PER_BATCH = 2000 };

/* What the store says, should anything fail. */
static void say(void *user, enum chaff_log_level level, const char *msg)
{
	(void)user;
	(void)level;
	fprintf(stderr, "[%d] %s\n", (int)getpid(), msg);
}

static const struct chaff_db_options small_map = { .map_size = 256 << 10, .log = say };
static chaff_db *shared_db;
static atomic_bool stop;
static atomic_int failures, scored;

static void *classify_loop(void *arg)
{
	(void)arg;
	chaff_classifier *c;
	if (chaff_classifier_new(shared_db, &c) != CHAFF_OK) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	static const char msg[] = "Subject: t1 t2\n\nt3 t4 t5 words of a message\n";
	while (!atomic_load(&stop)) {
		struct chaff_score sc;
		if (chaff_classify(c, msg, sizeof(msg) - 1, 0, &sc) != CHAFF_OK)
			atomic_fetch_add(&failures, 1);
		atomic_fetch_add(&scored, 1);
	}
	chaff_classifier_free(c);
	return NULL;
}

/* Trains batches of new tokens, ids from base up: the database grows by
 * about 20 KiB a batch. */
static int train_batches(chaff_db *db, int base, int batches)
{
	static int ids[PER_BATCH];
	for (int b = 0; b < batches; b++) {
		for (int i = 0; i < PER_BATCH; i++)
			ids[i] = base + b * PER_BATCH + i;
		if (train_one(db, base + b, ids, PER_BATCH, CHAFF_SPAM, 0) != CHAFF_LEARNED_TRAINED)
			return -1;
	}
	return 0;
}

static void test_resize_under_readers(void **state)
{
	(void)state;
	char *d = temp_dir();
	assert_non_null(d);
	chaff_db *db;
	struct chaff_db_options create = small_map;
	create.flags = CHAFF_DB_CREATE;
	assert_int_equal(chaff_db_open(d, &create, &db), CHAFF_OK);
	const int a[] = { 1, 2, 3 }, b[] = { 4, 5, 6 };
	train_one(db, 1, a, 3, CHAFF_SPAM, 0);
	train_one(db, 2, b, 3, CHAFF_HAM, 0);
	chaff_db_close(db);

	/* the other process: its own map, grown past this one's */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		chaff_db *cdb;
		if (chaff_db_open(d, &small_map, &cdb) != CHAFF_OK)
			_exit(2);
		int rc = train_batches(cdb, 1000000, CHILD_BATCHES);
		chaff_db_close(cdb);
		_exit(rc == 0 ? 0 : 3);
	}

	assert_int_equal(chaff_db_open(d, &small_map, &shared_db), CHAFF_OK);
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, classify_loop, NULL), 0);
	/* this process's writer fills its map too */
	assert_int_equal(train_batches(shared_db, 3000000, OWN_BATCHES), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	/* and once more after the child's last growth */
	assert_int_equal(train_batches(shared_db, 5000000, 5), 0);
	atomic_store(&stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(atomic_load(&failures), 0);
	assert_true(atomic_load(&scored) > 0);
	struct chaff_db_stats s;
	assert_int_equal(chaff_db_stats(shared_db, &s), CHAFF_OK);
	assert_int_equal(s.tokens, 6 + (uint64_t)(CHILD_BATCHES + OWN_BATCHES + 5) * PER_BATCH);
	assert_true(s.bytes_used > 4 * (256 << 10));
	chaff_db_close(shared_db);
	remove_tree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resize_under_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
