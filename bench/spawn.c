/*
 * One process per message, as procmail runs a filter:
 *
 *   spawn [-0] LIST COMMAND [ARG...]
 *
 * starts COMMAND once for each file named in LIST (one path per line),
 * with the file as its standard input and its output discarded, one after
 * another, and prints how many ran and the seconds they took. A command
 * that exits other than 0, 1 or 2 (the verdict codes; with -0, other than
 * 0, for a filter whose verdict is not its exit code) stops the run.
 *
 * Written in C so that the measurement is the filter's start-up and work,
 * not that of a harness forking a large interpreter for each message.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs argv with stdin from path; its exit status, or -1. */
static int run(char **argv, const char *path, int devnull)
{
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		fprintf(stderr, "spawn: %s: %s\n", path, strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in);
	if (rc != 0) {
		fprintf(stderr, "spawn: %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
	int max_ok = 2;
	if (argc > 1 && strcmp(argv[1], "-0") == 0) {
		max_ok = 0;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fputs("usage: spawn [-0] LIST COMMAND [ARG...]\n", stderr);
		return 2;
	}
	FILE *list = fopen(argv[1], "r");
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!list || devnull < 0) {
		fprintf(stderr, "spawn: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	char line[4096];
	size_t n = 0;
	double t0 = now();
	while (fgets(line, sizeof(line), list)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		int rc = run(argv + 2, line, devnull);
		if (rc < 0 || rc > max_ok) {
			fprintf(stderr, "spawn: %s < %s: exit %d\n", argv[2], line, rc);
			return 1;
		}
		n++;
	}
	printf("%zu %.6f\n", n, now() - t0);
	return 0;
}
