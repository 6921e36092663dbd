/* Adding verdict headers to a message (cli/tag.c). */
#ifndef CHAFF_CLI_TAG_H
#define CHAFF_CLI_TAG_H

#include <stddef.h>

#include "chaff.h"

/* Writes n bytes somewhere; negative on failure. */
typedef int (*cli_write_fn)(void *user, const char *p, size_t n);

/*
 * Writes msg through write_all with the header block rebuilt: earlier
 * X-Spam-Flag, X-Spam-Status, X-Spam-Level and X-Chaff-* headers dropped
 * (a sender may forge them), ours put where the tokenizer's header block
 * ends, in the message's own line ending. A leading mbox "From " line
 * stays first.
 * Returns 0, or the first negative value write_all returned.
 */
int cli_tag_message(const char *msg, size_t len, const struct chaff_score *s,
                    cli_write_fn write_all, void *user);

#endif
