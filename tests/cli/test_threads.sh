#!/usr/bin/env bash
# Training gives the same database whatever the number of threads: the
# same totals, tokens and digests, and so the same scores to the last
# digit. Batches smaller than the tokenizing chunk make commits fall in
# the middle of chunks. Classification gives the same output, clues and
# all, in the same order, on 1, 2 and 3 threads, over more messages than
# one scoring chunk holds, with a missing file in the middle, and the same
# whether scored against an in-memory copy of the database or not.
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
cut -d' ' -f2 "$tmp/test.idx" | head -700 > "$tmp/files"
sed -i '350a /nonexistent/message' "$tmp/files"
for n in 1 2 3; do
  "$chaff" classify --json --clues 5 --threads "$n" --db "$tmp/db1" $(cat "$tmp/files") \
    > "$tmp/out$n" 2> "$tmp/err$n"
  echo "exit $?" >> "$tmp/err$n"
  "$chaff" classify --explain --threads "$n" --db "$tmp/db1" "$corpus/spam.mbox" > "$tmp/mbox$n"
done
check "classify: 700 results and the missing file named, exit 3" \
  test "$(wc -l < "$tmp/out1")" -eq 700 -a "$(grep -c nonexistent "$tmp/err1")" -eq 1 \
  -a "$(tail -1 "$tmp/err1")" = "exit 3"
check "classify --explain of an mbox: a line per message" \
  test "$(grep -c '^[a-z]* [0-9.]* .*spam.mbox#' "$tmp/mbox1")" -eq 1896
# More than a chunk of messages is scored against a copy of the database
# in memory; 50 at a time, against the database itself: the same results.
split -l 50 "$tmp/files" "$tmp/part."
for f in "$tmp"/part.*; do
  "$chaff" classify --json --clues 5 --threads 1 --db "$tmp/db1" $(cat "$f") 2> /dev/null
done > "$tmp/parts"
check "classify: from the copy in memory or the database, the same JSON" \
  cmp -s "$tmp/out1" "$tmp/parts"
for n in 2 3; do
  check "classify, $n threads: the same JSON, clues included, in the same order" \
    cmp -s "$tmp/out1" "$tmp/out$n"
  check "classify, $n threads: the same errors and exit code" cmp -s "$tmp/err1" "$tmp/err$n"
  check "classify --explain, $n threads: the same output" cmp -s "$tmp/mbox1" "$tmp/mbox$n"
done
for n in 2 3; do
  check "$n threads: the same totals, tokens and digests" cmp -s "$tmp/stats1" "$tmp/stats$n"
  check "$n threads: the same scores" cmp -s "$tmp/scores1" "$tmp/scores$n"
  check "$n threads: the same summary" cmp -s "$tmp/again1" "$tmp/again$n"
done
check "scores were written" test "$(wc -l < "$tmp/scores1")" -eq 300
# Token by token: databases that share a hash seed (loaded from a dump
# with no tokens: a trained one's header with the seed set and no
# messages) and are trained alike, on 1, 2 and 3 threads, dump the same
# counts for every token and the same digests.
"$chaff" dump --db "$tmp/db1" | grep -v '^token \|^digest ' |
  sed 's/^seed .*/seed 0123456789abcdef/; s/^spam .*/spam 0/; s/^ham .*/ham 0/
       s/^# end .*/# end 0 tokens 0 digests/' > "$tmp/seed.txt"
for n in 1 2 3; do
  "$chaff" load --db "$tmp/seeded$n" "$tmp/seed.txt" > /dev/null &&
    "$chaff" train -q --threads "$n" --batch 97 --db "$tmp/seeded$n" "$tmp/train.idx" > /dev/null &&
    "$chaff" dump --db "$tmp/seeded$n" | grep -v '^last_train ' > "$tmp/dump$n"
done
check "the seeded dumps hold tokens" test "$(grep -c '^token ' "$tmp/dump1")" -gt 10000
for n in 2 3; do
  check "$n threads: every token's counts and every digest as on one thread" \
    cmp -s "$tmp/dump1" "$tmp/dump$n"
done
# The ham mbox, then the spam mbox, each one batch of new messages (the
# second batch's changes merged with the stored tokens): the same counts
# as on one thread.
for n in 1 2 3; do
  "$chaff" load --db "$tmp/fresh$n" "$tmp/seed.txt" > /dev/null &&
    "$chaff" train -q --threads "$n" --db "$tmp/fresh$n" --ham "$corpus/ham.mbox" > /dev/null &&
    "$chaff" train -q --threads "$n" --db "$tmp/fresh$n" --spam "$corpus/spam.mbox" > /dev/null &&
    "$chaff" dump --db "$tmp/fresh$n" | grep -v '^last_train ' > "$tmp/freshdump$n"
done
check "one batch per mbox: over 100,000 tokens" \
  test "$(grep -c '^token ' "$tmp/freshdump1")" -gt 100000
for n in 2 3; do
  check "one batch per mbox, $n threads: the same dump as on one thread" \
    cmp -s "$tmp/freshdump1" "$tmp/freshdump$n"
done
# A message of 8 MB or more is not copied into a chunk for the workers:
# the chunks before it are finished first and it is read in place. Among
# other messages, in an index and in an mbox, training (token by token)
# and classification come out as on one thread.
python3 - "$tmp/big.eml" <<'EOF'
import base64, random, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"From: offers@example.com\nTo: you@example.org\nSubject: your statement\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
            b"--b\nContent-Type: text/plain\n\nYour statement is attached: act now\n--b\n"
            b"Content-Type: application/pdf; name=\"statement.pdf\"\n"
            b"Content-Transfer-Encoding: base64\n\n")
    f.write(base64.encodebytes(random.Random(5).randbytes(7 << 20)))
    f.write(b"--b--\n")
EOF
head -400 "$tmp/train.idx" | sed "200a spam $tmp/big.eml" > "$tmp/big.idx"
mboxed() { # (a file's own envelope line kept; mboxrd's ">From " quoting)
  for f in "$@"; do
    [ "$(head -c 5 "$f")" = "From " ] || printf 'From x@example.com Mon Jan  1 00:00:00 2024\n'
    sed '1!s/^\(>*From \)/>\1/' "$f"
    echo
  done
}
grep '^spam' "$tmp/test.idx" | cut -d' ' -f2 | head -300 > "$tmp/some"
{ mboxed $(head -150 "$tmp/some"); mboxed "$tmp/big.eml"; mboxed $(tail -150 "$tmp/some"); } \
  > "$tmp/big.mbox"
for n in 1 2 3; do
  "$chaff" load --db "$tmp/bigdb$n" "$tmp/seed.txt" > /dev/null
  "$chaff" train --threads "$n" --batch 97 --db "$tmp/bigdb$n" "$tmp/big.idx" |
    sed 's/ in [0-9.]* s (.*//' > "$tmp/bigsum$n"
  # the same as ham, in the mbox: the large message moves from spam
  "$chaff" train --threads "$n" --batch 97 --db "$tmp/bigdb$n" --ham "$tmp/big.mbox" \
    2> /dev/null | sed 's/ in [0-9.]* s (.*//' >> "$tmp/bigsum$n"
  "$chaff" dump --db "$tmp/bigdb$n" | grep -v '^last_train ' > "$tmp/bigdump$n"
  "$chaff" classify --json --clues 5 --threads "$n" --db "$tmp/db1" "$tmp/big.mbox" \
    $(head -100 "$tmp/files") "$tmp/big.eml" $(tail -100 "$tmp/files") > "$tmp/bigout$n"
done
head -400 "$tmp/train.idx" > "$tmp/nobig.idx"
"$chaff" train --db "$tmp/nobig" "$tmp/nobig.idx" > "$tmp/nobigsum"
spams() { sed -n 's/^trained \([0-9]*\) spam.*/\1/p' "$1" | head -1; }
check "a large message: trained as spam, then moved to ham [$(tr '\n' '|' < "$tmp/bigsum1")]" \
  test "$(spams "$tmp/bigsum1")" -eq "$(($(spams "$tmp/nobigsum") + 1))" -a \
  "$(grep -c '(1 moved from the other class)' "$tmp/bigsum1")" -eq 1
check "a large message: scored in the mbox and as a file, among 502 results" \
  test "$(wc -l < "$tmp/bigout1")" -eq 502 -a "$(grep -c 'big.mbox#151"' "$tmp/bigout1")" -eq 1 \
  -a "$(grep -c 'big.eml"' "$tmp/bigout1")" -eq 1
for n in 2 3; do
  check "a large message, $n threads: every token's counts and digest as on one thread" \
    cmp -s "$tmp/bigdump1" "$tmp/bigdump$n"
  check "a large message, $n threads: the same JSON, in the same order" \
    cmp -s "$tmp/bigout1" "$tmp/bigout$n"
  check "a large message, $n threads: the same summaries" cmp -s "$tmp/bigsum1" "$tmp/bigsum$n"
done
# A run that stops at a damaged file commits the same whatever the number
# of threads: the full batches before it, as one thread commits them.
gzip -c "$corpus/spam.mbox" | head -c 100000 > "$tmp/bad.gz"
head -999 "$tmp/train.idx" | sed "499a ham $tmp/bad.gz" > "$tmp/bad.idx"
for b in 7 100; do
  for n in 1 2 3; do
    "$chaff" train -q --threads "$n" --batch "$b" --db "$tmp/bad$b-$n" "$tmp/bad.idx" \
      > /dev/null 2> "$tmp/bad$b-$n.err"
    echo "exit $? $("$chaff" stats --json --db "$tmp/bad$b-$n" 2> /dev/null |
      python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["spam"], s["ham"])')" \
      >> "$tmp/bad$b-$n.err"
  done
  for n in 2 3; do
    check "stopped at a damaged file, --batch $b, $n threads: the same commit and message [$(tr '\n' '|' < "$tmp/bad$b-$n.err")]" \
      cmp -s "$tmp/bad$b-1.err" "$tmp/bad$b-$n.err"
  done
done
check "stopped at a damaged file: some batches committed first [$(tr '\n' '|' < "$tmp/bad100-1.err")]" \
  grep -q "the first 500 messages were committed" "$tmp/bad100-1.err"
# A bulk run reserves a large stretch of heap (cli/bulkheap.c), except
# under a data limit, where that stretch would make later allocations
# fail: a mailbox trains on two threads under a 90 MB limit as it does
# without one. (Sanitizer builds cannot start under such a limit.)
if prlimit --data=90000000 "$chaff" --version > /dev/null 2>&1; then
  "$chaff" train -q --threads 2 --db "$tmp/free" --ham "$corpus/ham.mbox" > /dev/null
  prlimit --data=90000000 "$chaff" train -q --threads 2 --db "$tmp/limited" \
    --ham "$corpus/ham.mbox" > /dev/null 2> "$tmp/limited.err"
  check "training under a 90 MB data limit succeeds" test $? -eq 0 -a ! -s "$tmp/limited.err"
  for d in free limited; do
    "$chaff" stats --json --db "$tmp/$d" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["spam"], s["ham"], s["tokens"], s["digests"])' > "$tmp/$d.stats"
  done
  check "the limited training holds the same counts" cmp -s "$tmp/free.stats" "$tmp/limited.stats"
else
  echo "skip: $chaff cannot start under a 90 MB data limit"
fi
echo "$fails failed"
[ "$fails" -eq 0 ]
