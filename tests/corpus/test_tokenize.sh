#!/usr/bin/env bash
# Tokenizes every message of the SpamAssassin public corpus. In the
# sanitizer build any ASan or UBSan report aborts chaff, so this test
# fails on the first one. The corpus comes from
# corpora-scripts/fetch-spamassassin.sh (CHAFF_CORPUS overrides its place).
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
out=$("$chaff" tokens --stats --json "$corpus/easy-ham-1" "$corpus/easy-ham-2" \
      "$corpus/hard-ham-1" "$corpus/spam-1" "$corpus/spam-2") || { echo "chaff failed"; exit 1; }
echo "$out"
grep -q '"messages":6046,' <<<"$out" || { echo "expected 6046 messages"; exit 1; }
# The same corpus as two mbox files must give the same token count.
out2=$("$chaff" tokens --stats --json "$corpus/ham.mbox" "$corpus/spam.mbox") || exit 1
t1=$(grep -o '"tokens":[0-9]*' <<<"$out"); t2=$(grep -o '"tokens":[0-9]*' <<<"$out2")
grep -q '"messages":6046,' <<<"$out2" || { echo "mbox: expected 6046 messages"; exit 1; }
[ "$t1" = "$t2" ] || { echo "mbox tokens differ: $t1 vs $t2"; exit 1; }
echo "corpus tokenized cleanly"
