/*
 * Local delivery into a Maildir (serve/deliver.c): a message is in new/
 * before the 250, and a name that would not fit is a 451 that replaces
 * nothing.
 */
#include "test_db_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include "serve/deliver.h"

static int count_files(const char *dir)
{
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void test_delivered_into_new(void **state)
{
	(void)state;
	char *d = temp_dir();
	char md[512], path[600];
	snprintf(md, sizeof(md), "%s/Maildir", d);
	assert_true(maildir_make(md));
	char reply[SERVE_REPLY_MAX];
	assert_true(maildir_deliver(md, "Subject: a\n\nbody\n", 17, "1.M1P1Q1.host", reply));
	assert_string_equal(reply, "250 2.0.0 Ok: queued as 1.M1P1Q1.host");
	snprintf(path, sizeof(path), "%s/new/1.M1P1Q1.host", md);
	size_t len;
	char *got = test_read_file(path, &len);
	assert_non_null(got);
	assert_int_equal(len, 17);
	assert_memory_equal(got, "Subject: a\n\nbody\n", 17);
	free(got);
	snprintf(path, sizeof(path), "%s/tmp", md);
	assert_int_equal(count_files(path), 0);
	remove_tree(d);
	free(d);
}

/* A Maildir whose path leaves no room for the file names: cut short, two
 * messages' names would be the same, and the second would replace the
 * first after both got their 250. */
static void test_name_too_long_is_refused(void **state)
{
	(void)state;
	char *d = temp_dir();
	char md[4200];
	size_t n = (size_t)snprintf(md, sizeof(md), "%s", d);
	while (n < 4075) {
		md[n++] = '/';
		size_t k = 4075 - n < 200 ? 4075 - n : 200;
		if (k == 0)
			k = 1;
		memset(md + n, 'd', k);
		n += k;
		md[n] = '\0';
		assert_int_equal(mkdir(md, 0700), 0);
	}
	/* tmp/ and new/ still fit (4079 bytes), "tmp/" + the id does not */
	assert_true(maildir_make(md));
	char reply[SERVE_REPLY_MAX];
	assert_false(
	        maildir_deliver(md, "Subject: a\n\nfirst\n", 18, "1700000000.M1P2Q1.host", reply));
	assert_memory_equal(reply, "451 4.3.0", 9);
	assert_false(
	        maildir_deliver(md, "Subject: b\n\nsecond\n", 19, "1700000000.M1P2Q2.host", reply));
	char sub[4300];
	snprintf(sub, sizeof(sub), "%s/new", md);
	assert_int_equal(count_files(sub), 0);
	snprintf(sub, sizeof(sub), "%s/tmp", md);
	assert_int_equal(count_files(sub), 0);
	remove_tree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_delivered_into_new),
	        cmocka_unit_test(test_name_too_long_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
