/* Test helper: set_meta DIR NAME VALUE writes VALUE as a native uint64
 * under the metadata NAME of the chaff database in DIR, through the store
 * layer, bypassing every check. The shell tests use it to make databases
 * that look as if another chaff had written them. */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: set_meta DIR NAME VALUE\n");
		return 2;
	}
	uint64_t value = strtoull(argv[3], NULL, 10);
	struct store *st;
	struct store_txn *t;
	int rc = store_lmdb_open(argv[1], false, false, 0, NULL, NULL, &st);
	if (rc != 0) {
		fprintf(stderr, "set_meta: %s: cannot open (%d)\n", argv[1], rc);
		return 1;
	}
	rc = st->ops->begin(st, true, &t);
	if (rc == 0)
		rc = st->ops->meta_put(t, argv[2], &value, sizeof(value));
	if (rc == 0)
		rc = st->ops->commit(t);
	st->ops->close(st);
	if (rc != 0)
		fprintf(stderr, "set_meta: %s: cannot write %s (%d)\n", argv[1], argv[2], rc);
	return rc != 0;
}
