#!/usr/bin/env bash
# Training gives the same database whatever the number of threads: the
# same totals, tokens and digests, and so the same scores to the last
# digit. Batches smaller than the tokenizing chunk make commits fall in
# the middle of chunks.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$here/corpora-scripts/split.py" "$corpus/index" --seed 3 --ratio 0.3 --out "$tmp" || exit 1
head -300 "$tmp/test.idx" > "$tmp/score.idx"
for n in 1 2 3; do
  "$chaff" train -q --threads "$n" --batch 97 --db "$tmp/db$n" "$tmp/train.idx" > /dev/null ||
    { echo "training with $n threads failed"; exit 1; }
  # the whole spam mbox again: the messages of the first training are
  # known, the others trained, whatever thread each ran on
  "$chaff" train -q --threads "$n" --db "$tmp/db$n" --spam "$corpus/spam.mbox" |
    sed 's/ in [0-9.]* s (.*//' > "$tmp/again$n" ||
    { echo "training with $n threads failed"; exit 1; }
  "$chaff" stats --json --db "$tmp/db$n" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["spam"], s["ham"], s["tokens"], s["digests"])' > "$tmp/stats$n"
  # (clues of equal strength are ordered by hash, and each database has
  # its own hash seed: the scores are what must agree)
  "$chaff" classify --json --clues 0 --db "$tmp/db$n" "$tmp/score.idx" > "$tmp/scores$n"
done
cat "$tmp/stats1"
for n in 2 3; do
  check "$n threads: the same totals, tokens and digests" cmp -s "$tmp/stats1" "$tmp/stats$n"
  check "$n threads: the same scores" cmp -s "$tmp/scores1" "$tmp/scores$n"
  check "$n threads: the same summary" cmp -s "$tmp/again1" "$tmp/again$n"
done
check "scores were written" test "$(wc -l < "$tmp/scores1")" -eq 300
echo "$fails failed"
[ "$fails" -eq 0 ]
