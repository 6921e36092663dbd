/*
 * The chaff command: a table of subcommands, each a function in its own
 * file. Every capability is a library call; this layer parses options,
 * reads input and prints.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <unistr.h>

#include "chaff.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("chaff: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("chaff: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* A JSON string is UTF-8: a byte that does not start a valid UTF-8
 * character (a file name in another charset) is written as U+FFFD. */
void cli_json_str(FILE *f, const char *s)
{
	cli_json_strn(f, s, strlen(s));
}

void cli_json_strn(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	const uint8_t *p = (const uint8_t *)s, *end = p + n;
	while (p < end) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
			p++;
		} else if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
			p++;
		} else if (c < 0x80) {
			fputc(c, f);
			p++;
		} else {
			ucs4_t u;
			int k = u8_mbtoucr(&u, p, (size_t)(end - p));
			if (k > 0)
				fwrite(p, 1, (size_t)k, f);
			else
				fputs("\\ufffd", f);
			p += k > 0 ? k : 1;
		}
	}
	fputc('"', f);
}

const char *cli_num(char buf[32], double v)
{
	if (v == floor(v) && fabs(v) < 1e15) { /* 100, not 1e+02 */
		snprintf(buf, 32, "%.0f", v);
		return buf;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
        {"train", cmd_train, "train messages as spam or ham"},
        {"untrain", cmd_untrain, "take trained messages back out"},
        {"classify", cmd_classify, "score messages: a verdict line each"},
        {"filter", cmd_filter, "copy a message through, adding verdict headers"},
        {"stats", cmd_stats, "database totals, size and parameters"},
        {"config", cmd_config, "get or set scoring parameters"},
        {"dump", cmd_dump, "write the database as text (gzip for .gz)"},
        {"load", cmd_load, "load a dump into an empty database"},
        {"prune", cmd_prune, "drop old or rare tokens"},
        {"backup", cmd_backup, "consistent compacted copy of the database"},
        {"tokens", cmd_tokens, "print the tokens of messages, or corpus token statistics"},
        {"eval", cmd_eval, "measure accuracy on a labelled corpus (TREC index)"},
        {"serve", cmd_serve,
         "SMTP/LMTP front end: score, then reject, tag and pass on, or quarantine"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: chaff COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'chaff COMMAND --help' describes one command; 'chaff --version' prints the\n"
	           "version and the tokenizer's.\n");
}

/* LMDB reads the database as mapped memory and has no checksums: a damaged
 * file can lead it astray (or fail one of its own checks, which aborts),
 * and a full disk under a sparse file it maps (a lock file made afresh)
 * faults on the first write. Each ends as a signal inside the library;
 * this turns it into a one-line error and the usual exit status instead
 * of a crash. chaff filter installs its own handler, which also passes
 * the message on. */
static void on_fault(int sig)
{
	static const char segv[] =
	        "chaff: fatal memory fault (SIGSEGV); if a database was in use it may be damaged "
	        "('chaff dump > /dev/null' reads all of it; restore a backup or retrain), else "
	        "this is a bug\n";
	static const char bus[] = "chaff: fatal bus error (SIGBUS) reading the database's mapped "
	                          "files: the database is damaged or cut short, or its disk is "
	                          "full\n";
	/* an abort comes after a line that says why (LMDB's failed check,
	 * through the library's log; glibc's heap checks) */
	const char *say = sig == SIGBUS ? bus : sig == SIGABRT ? "" : segv;
	if (write(STDERR_FILENO, say, strlen(say)) < 0) {
		/* nothing more to do about it here */
	}
	_exit(EXIT_FAIL);
}

void cli_catch_faults(void (*handler)(int), const int *sigs, size_t n)
{
	static char altstack[1 << 16];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = sigaltstack(&ss, NULL) == 0 ? SA_ONSTACK : 0;
	for (size_t i = 0; i < n; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* A command's exit status, made EXIT_FAIL when what it printed did not
 * get out (a full disk, a closed pipe): `v=$(chaff config get robs)` or
 * `chaff stats --json > f` must not succeed with nothing written. A
 * command that already said so has returned EXIT_FAIL. */
static int output_checked(int status)
{
	if (status != EXIT_FAIL && (fflush(stdout) != 0 || ferror(stdout))) {
		cli_error("writing output failed");
		return EXIT_FAIL;
	}
	return status;
}

/*
 * A standard descriptor the caller left closed would otherwise be the
 * next file opened: a database's lock or data file would then take the
 * message chaff filter writes, or the error text. Each gets /dev/null in
 * its place, open so that it reads as nothing (stdin, an empty message)
 * or refuses writes (stdout: the write fails and says so, where output
 * that vanished would lose mail) or takes them (stderr).
 */
static void hold_standard_fds(void)
{
	static const int modes[] = {O_RDONLY, O_RDONLY, O_WRONLY};
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		int got = open("/dev/null", modes[fd]);
		if (got >= 0 && got != fd) { /* cannot happen: the lowest is free */
			close(got);
			_exit(EXIT_FAIL);
		}
	}
}

int main(int argc, char **argv)
{
	hold_standard_fds();
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "--version") == 0) {
		printf("chaff %s (tokenizer %d)\n", CHAFF_VERSION, CHAFF_TOKENIZER_VERSION);
		return EXIT_OK;
	}
	static const int faults[] = {SIGSEGV, SIGBUS, SIGABRT};
	cli_catch_faults(on_fault, faults, sizeof(faults) / sizeof(faults[0]));
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return output_checked(commands[i].run(argc - 1, argv + 1));
	cli_error("unknown command '%s' (try 'chaff --help')", name);
	return EXIT_USAGE;
}
