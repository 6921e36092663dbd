/*
 * Database maintenance: chaff stats, prune, backup and config.
 * (dump and load are in cmd_dump.c.)
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cmd_stats(int argc, char **argv)
{
	static const char usage[] = "usage: chaff stats [--db DIR] [--json]\n";
	const char *dbpath = NULL;
	bool json = false;
	int first = cli_db_opts(argc, argv, usage, &dbpath, &json, false);
	if (first < 0 || first != argc) {
		if (first >= 0)
			fputs(usage, stderr);
		return EXIT_USAGE;
	}
	chaff_db *db = cli_db_open(dbpath, CHAFF_DB_READONLY);
	if (!db)
		return EXIT_FAIL;
	struct chaff_db_stats st;
	struct chaff_params p;
	int rc = chaff_db_stats(db, &st);
	if (rc == CHAFF_OK)
		rc = chaff_db_params(db, &p);
	chaff_db_close(db);
	if (rc != CHAFF_OK) {
		cli_error("%s: %s", cli_db_path(dbpath), chaff_strerror(rc));
		return EXIT_FAIL;
	}
	char when[64] = "never";
	if (st.last_train) {
		time_t t = (time_t)st.last_train;
		struct tm tm;
		/* a time past what the calendar functions take (a loaded dump
		 * may carry any number) is shown as the number */
		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
		else
			snprintf(when, sizeof(when), "%lld seconds after 1970",
			         (long long)st.last_train);
	}
	const char *const *names = chaff_param_names();
	double vals[] = { p.robs, p.robx, p.min_dev, p.ham_cutoff, p.spam_cutoff, p.max_tokens };
	if (json) {
		printf("{\"database\":");
		cli_json_str(stdout, cli_db_path(dbpath));
		printf(",\"spam\":%llu,\"ham\":%llu,\"tokens\":%llu,"
		       "\"digests\":%llu,\"bytes_used\":%llu,\"bytes_file\":%llu,"
		       "\"last_train\":%lld,\"tokenizer\":%u,\"pairs\":%s,\"params\":{",
		       (unsigned long long)st.spam_messages,
		       (unsigned long long)st.ham_messages, (unsigned long long)st.tokens,
		       (unsigned long long)st.digests, (unsigned long long)st.bytes_used,
		       (unsigned long long)st.bytes_file, (long long)st.last_train,
		       st.tokenizer_version, st.tok_flags & CHAFF_TOK_PAIRS ? "true" : "false");
		char num[32];
		for (size_t i = 0; names[i]; i++)
			printf("%s\"%s\":%s", i ? "," : "", names[i], cli_num(num, vals[i]));
		printf("}}\n");
		return EXIT_OK;
	}
	printf("database        %s\n", cli_db_path(dbpath));
	printf("messages        %llu spam, %llu ham\n", (unsigned long long)st.spam_messages,
	       (unsigned long long)st.ham_messages);
	printf("tokens          %llu\n", (unsigned long long)st.tokens);
	printf("digests         %llu messages remembered\n", (unsigned long long)st.digests);
	printf("size on disk    %.1f MB file, %.1f MB in use\n", (double)st.bytes_file / 1e6,
	       (double)st.bytes_used / 1e6);
	printf("last training   %s\n", when);
	printf("tokenizer       version %u%s\n", st.tokenizer_version,
	       st.tok_flags & CHAFF_TOK_PAIRS ? ", word pairs" : "");
	char num[32];
	for (size_t i = 0; names[i]; i++)
		printf("%-15s %s\n", names[i], cli_num(num, vals[i]));
	return EXIT_OK;
}

int cmd_prune(int argc, char **argv)
{
	static const char usage[] =
		"usage: chaff prune [--db DIR] [--days N] [--min-count K]\n"
		"Drops tokens not trained for N days and tokens seen fewer than K times.\n";
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' }, { "days", required_argument, NULL, 'a' },
		{ "min-count", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dbpath = NULL;
	unsigned long days = 0, min = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dbpath = optarg; break;
		case 'a':
			if (!cli_number("--days", optarg, 100000, &days))
				return EXIT_USAGE;
			break;
		case 'm':
			if (!cli_number("--min-count", optarg, 1000000000, &min))
				return EXIT_USAGE;
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: fputs(usage, stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!days && min <= 1) {
		cli_error("prune wants --days N (1 or more) or --min-count K (2 or more): with "
		          "neither, nothing would be removed");
		return EXIT_USAGE;
	}
	chaff_db *db = cli_db_open(dbpath, 0);
	if (!db)
		return EXIT_FAIL;
	uint64_t removed = 0;
	int rc = chaff_db_prune(db, (uint32_t)days, (uint32_t)min, &removed);
	chaff_db_close(db);
	if (rc != CHAFF_OK) {
		cli_error("prune failed: %s; nothing was removed", chaff_strerror(rc));
		return EXIT_FAIL;
	}
	printf("removed %llu tokens\n", (unsigned long long)removed);
	return EXIT_OK;
}

int cmd_backup(int argc, char **argv)
{
	static const char usage[] =
		"usage: chaff backup [--db DIR] TARGET-DIR\n"
		"A consistent, compacted copy, taken while training goes on.\n";
	const char *dbpath = NULL;
	int first = cli_db_opts(argc, argv, usage, &dbpath, NULL, false);
	if (first < 0 || argc - first != 1) {
		if (first >= 0)
			fputs(usage, stderr);
		return EXIT_USAGE;
	}
	/* a new folder, or an empty one: a backup mixed into other files, or
	 * over the database itself, is no backup */
	const char *target = argv[first];
	DIR *d = opendir(target);
	if (d) {
		struct dirent *e;
		bool empty = true;
		while (empty && (e = readdir(d)))
			empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
		closedir(d);
		if (!empty) {
			cli_error("%s is not empty: a backup goes into a new or empty folder",
			          target);
			return EXIT_FAIL;
		}
	} else if (errno != ENOENT) {
		cli_error("%s: %s", target, errno == ENOTDIR ? "not a folder" : strerror(errno));
		return EXIT_FAIL;
	}
	chaff_db *db = cli_db_open(dbpath, CHAFF_DB_READONLY);
	if (!db)
		return EXIT_FAIL;
	int rc = chaff_db_backup(db, target);
	chaff_db_close(db);
	if (rc != CHAFF_OK)
		return EXIT_FAIL; /* the library has said why */
	printf("backed up %s to %s\n", cli_db_path(dbpath), target);
	return EXIT_OK;
}

int cmd_config(int argc, char **argv)
{
	static const char usage[] =
		"usage: chaff config [--db DIR] [get NAME | set NAME VALUE]\n"
		"Without arguments lists every parameter. Names and ranges:\n"
		"  robs         0.000001 to 100\n"
		"  robx         above 0, below 1\n"
		"  min_dev      0 to below 0.5\n"
		"  ham_cutoff   0 to spam_cutoff\n"
		"  spam_cutoff  ham_cutoff to 1\n"
		"  max_tokens   a whole number, 0 (all) to 1000000\n";
	const char *dbpath = NULL;
	int first = cli_db_opts(argc, argv, usage, &dbpath, NULL, true);
	if (first < 0)
		return EXIT_USAGE;
	int nargs = argc - first;
	char **a = argv + first;
	bool set = nargs == 3 && strcmp(a[0], "set") == 0;
	if (!(nargs == 0 || (nargs == 2 && strcmp(a[0], "get") == 0) || set)) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	chaff_db *db = cli_db_open(dbpath, set ? 0 : CHAFF_DB_READONLY);
	if (!db)
		return EXIT_FAIL;
	int status = EXIT_OK, rc;
	if (nargs == 0) {
		for (const char *const *n = chaff_param_names(); *n && status == EXIT_OK; n++) {
			double v;
			rc = chaff_db_get_param(db, *n, &v);
			if (rc == CHAFF_OK) {
				char num[32];
				printf("%s %s\n", *n, cli_num(num, v));
			} else {
				cli_error("%s: %s", cli_db_path(dbpath), chaff_strerror(rc));
				status = EXIT_FAIL;
			}
		}
	} else if (!set) {
		double v;
		rc = chaff_db_get_param(db, a[1], &v);
		if (rc == CHAFF_OK) {
			char num[32];
			printf("%s\n", cli_num(num, v));
		} else {
			cli_error("%s: %s", a[1],
			          rc == CHAFF_ENOTFOUND ? "no such parameter" : chaff_strerror(rc));
			status = EXIT_FAIL;
		}
	} else {
		char *end;
		double v = strtod(a[2], &end);
		if (end == a[2] || *end) {
			cli_error("%s: '%s' is not a number", a[1], a[2]);
			status = EXIT_USAGE;
		} else if ((rc = chaff_db_set_param(db, a[1], v)) != CHAFF_OK) {
			cli_error("%s: %s", a[1],
			          rc == CHAFF_ENOTFOUND ? "no such parameter"
			          : rc == CHAFF_EINVAL
			                  ? "value out of range (see 'chaff config --help')"
			                  : chaff_strerror(rc));
			status = EXIT_FAIL;
		}
	}
	chaff_db_close(db);
	return status;
}
