/* Shared pieces of the chaff command's subcommands. */
#ifndef CHAFF_CLI_H
#define CHAFF_CLI_H

#include <stdio.h>

/* Exit codes shared by every subcommand (classify has its own 0/1/2). */
enum { EXIT_OK = 0, EXIT_FAIL = 3, EXIT_USAGE = 4 };

int cmd_tokens(int argc, char **argv);

/* "chaff: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
