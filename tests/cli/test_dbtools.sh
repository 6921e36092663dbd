#!/usr/bin/env bash
# chaff dump, load, prune and backup, and databases that cannot be used:
# damaged, truncated, read-only, from another tokenizer version; training
# from inputs that cannot be read. Trains 150 spam and 300 ham of the
# SpamAssassin corpus.
set -u
chaff=$1
set_meta=$2
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
trap 'chmod -R u+rwX "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
export LC_ALL=C
unset CHAFF_DB
# Permission checks mean nothing as root: as root they run as nobody
# (setpriv), and where that is impossible they are said to be skipped.
skip() { echo "skip $1"; }
# sanitizer ERRFILE: shows a sanitizer report that made an exit code wrong
sanitizer() { grep -q 'Sanitizer' "$1" && { echo "  sanitizer report:"; grep -E '^(==|SUMMARY| +#[0-9] )' "$1" | head -12; }; true; }
totals() {
  "$chaff" stats --db "$1" 2>/dev/null |
    sed -n 's/^messages *\([0-9]*\) spam, \([0-9]*\) ham$/\1 \2/p'
}
tokens() { "$chaff" stats --db "$1" 2>/dev/null | sed -n 's/^tokens *\([0-9]*\)$/\1/p'; }
root=false
[ "$(id -u)" -eq 0 ] && root=true
as=()
if $root && command -v setpriv > /dev/null &&
   setpriv --reuid=65534 --regid=65534 --clear-groups true 2> /dev/null; then
  as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
unprivileged() { ! $root || [ ${#as[@]} -gt 0 ]; }

db=$dir/db
pick spam-1 1 150 | sed 's/^/spam /' > "$dir/index"
pick easy-ham-1 1 300 | sed 's/^/ham /' >> "$dir/index"
"$chaff" train -q --db "$db" "$dir/index" > /dev/null; rc=$?
check "training 150 spam and 300 ham" test "$rc" -eq 0 -a "$(totals "$db")" = "150 300"
# 50 messages that were not trained, classified by each copy below.
mapfile -t msgs < <(pick spam-1 151 175; pick easy-ham-1 301 325)
"$chaff" classify --db "$db" "${msgs[@]}" > "$dir/scores"; rc=$?
check "classify 50 messages" test "$rc" -eq 0 -a "$(wc -l < "$dir/scores")" -eq 50
same_scores() { # DB: classify gives the original's lines, scores and all
  "$chaff" classify --db "$1" "${msgs[@]}" 2>&1 | cmp -s - "$dir/scores"
}
orig_tokens=$(tokens "$db")

# --- dump -------------------------------------------------------------------
"$chaff" dump --db "$db" > "$dir/dump.txt"; rc=$?
check "dump to stdout: exit 0" test "$rc" -eq 0
check "dump: the header" test "$(head -1 "$dir/dump.txt")" = "# chaff dump 1"
check "dump: the totals" test "$(grep -E '^(spam|ham) ' "$dir/dump.txt" | tr '\n' ' ')" = "spam 150 ham 300 "
check "dump: a token line per token" \
  test "$(grep -Ec '^token [0-9a-f]{16} [0-9]+ [0-9]+ [0-9]+$' "$dir/dump.txt")" -eq "$orig_tokens"
"$chaff" dump --db "$db" "$dir/dump2.txt"; rc=$?
check "dump FILE: exit 0, the same text" test "$rc" -eq 0 -a "$(cmp -s "$dir/dump.txt" "$dir/dump2.txt"; echo $?)" -eq 0
"$chaff" dump --db "$db" "$dir/dump.gz"; rc=$?
check "dump FILE.gz: exit 0" test "$rc" -eq 0
check "dump FILE.gz: gzip -t passes" gzip -t "$dir/dump.gz"
check "dump FILE.gz: the same text compressed" cmp -s "$dir/dump.txt" <(gzip -dc "$dir/dump.gz")
# a dump that fails half-way (here the file size limit, as a full disk
# would) leaves the file it was to replace as it was, and nothing beside it
mkdir -p "$dir/dumps" && cp "$dir/dump.gz" "$dir/dumps/keep.gz"
echo "not a dump" > "$dir/dumps/keep.txt"
for f in keep.gz keep.txt; do
  (trap '' XFSZ; ulimit -f 8; "$chaff" dump --db "$db" "$dir/dumps/$f") > /dev/null 2> "$dir/err"; rc=$?
  check "dump FILE failing half-way ($f): exit 3, says the file is as it was [exit $rc]" \
    test "$rc" -eq 3 -a "$(grep -c "the file is as it was" "$dir/err")" -eq 1
done
check "  ... the earlier files unchanged, no temporary file left" \
  bash -c 'cmp -s "$1/dump.gz" "$1/dumps/keep.gz" && [ "$(cat "$1/dumps/keep.txt")" = "not a dump" ] &&
           [ "$(ls "$1/dumps" | wc -l)" -eq 2 ]' _ "$dir"
# the file replaced keeps its mode; a dangling symbolic link is written
# through, making its target
chmod 640 "$dir/dumps/keep.txt"
"$chaff" dump --db "$db" "$dir/dumps/keep.txt"; rc=$?
check "dump over an existing file: exit 0, its mode kept (640)" \
  test "$rc" -eq 0 -a "$(stat -c %a "$dir/dumps/keep.txt")" = 640
ln -s "$dir/dumps/target.txt" "$dir/dumps/link.txt"
"$chaff" dump --db "$db" "$dir/dumps/link.txt"; rc=$?
check "dump to a dangling symbolic link: exit 0, the link kept, its target written" \
  bash -c '[ "$1" -eq 0 ] && [ -L "$2/link.txt" ] && cmp -s "$2/target.txt" "$2/keep.txt"' _ "$rc" "$dir/dumps"
"$chaff" dump --db "$dir/nodb" > "$dir/out" 2> "$dir/err"; rc=$?
check "dump of a missing database: exit 3, says so" test "$rc" -eq 3 -a -s "$dir/err"

# --- load -------------------------------------------------------------------
"$chaff" load --db "$dir/l1" "$dir/dump.txt" > "$dir/out"; rc=$?
check "load FILE: exit 0" test "$rc" -eq 0
check "load FILE: reports what it loaded" \
  grep -qx "loaded $orig_tokens tokens, 450 digests, 150 spam and 300 ham messages" "$dir/out"
first=$(head -1 "$dir/index" | cut -d' ' -f2-)
"$chaff" train --db "$dir/l1" --spam "$first" > /dev/null 2> "$dir/err"
check "loaded database remembers trained messages" grep -q "already trained as spam" "$dir/err"
"$chaff" load --db "$dir/l2" < "$dir/dump2.txt" > /dev/null; rc=$?
check "load from stdin: exit 0" test "$rc" -eq 0
"$chaff" load --db "$dir/l3" "$dir/dump.gz" > /dev/null; rc=$?
check "load FILE.gz: exit 0" test "$rc" -eq 0
gzip -dc "$dir/dump.gz" | gzip -c | "$chaff" load --db "$dir/l4" > /dev/null; rc=$?
check "load gzip from stdin: exit 0" test "$rc" -eq 0
for l in l1 l2 l3 l4; do
  check "$l: the same totals and token count" \
    test "$(totals "$dir/$l") $(tokens "$dir/$l")" = "150 300 $orig_tokens"
  check "$l: the same 50 scores as the original" same_scores "$dir/$l"
done
check "l1: dumps to the same text" cmp -s "$dir/dump.txt" <("$chaff" dump --db "$dir/l1")
check "a loaded database has mode 700" test "$(stat -c %a "$dir/l1")" = 700

"$chaff" load --db "$db" "$dir/dump.txt" > /dev/null 2> "$dir/err"; rc=$?
check "load into a non-empty database: exit 3" test "$rc" -eq 3
check "load into a non-empty database: says it needs an empty one" grep -q 'empty database' "$dir/err"
check "load into a non-empty database: unchanged" \
  test "$(totals "$db") $(tokens "$db")" = "150 300 $orig_tokens"
check "load into a non-empty database: the same scores" same_scores "$db"

# Garbage: text, binary, a damaged gzip file, a dump cut inside a line.
printf 'hello\nthis is not a dump\n' > "$dir/garbage.txt"
head -c 4096 /bin/sh > "$dir/garbage.bin"
head -c 20000 "$dir/dump.gz" > "$dir/cut.gz"
{ head -n 500 "$dir/dump.txt"; sed -n 501p "$dir/dump.txt" | cut -c1-20 | tr -d '\n'; } > "$dir/cut.txt"
sed '20s/^token \([0-9a-f]*\) /token \1 x/' "$dir/dump.txt" > "$dir/badline.txt"
# and what dump never writes: a header without a parameter (the database
# would score with the default instead), a comment line, a count with a
# leading zero, a doubled space, a parameter written otherwise than dump's
# "%.17g", upper-case hexadecimal
grep -v '^param robs ' "$dir/dump.txt" > "$dir/noparam.txt"
sed '3a # a comment' "$dir/dump.txt" > "$dir/comment.txt"
sed 's/^spam \([0-9]\)/spam 0\1/' "$dir/dump.txt" > "$dir/zero.txt"
sed 's/^param robs /param robs  /' "$dir/dump.txt" > "$dir/space.txt"
sed 's/^param robs .*/param robs 1e-1/' "$dir/dump.txt" > "$dir/paramform.txt"
sed '0,/^token /s/^token \(.*\)[a-f]/token \1F/' "$dir/dump.txt" > "$dir/upper.txt"
for g in garbage.txt garbage.bin cut.gz cut.txt badline.txt noparam.txt comment.txt zero.txt \
         space.txt paramform.txt upper.txt; do
  "$chaff" load --db "$dir/l1" "$dir/$g" > /dev/null 2> "$dir/err"; rc=$?
  check "load $g into a loaded database: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"
  check "load $g: the database as it was" \
    test "$(totals "$dir/l1") $(tokens "$dir/l1")" = "150 300 $orig_tokens"
  rm -rf "$dir/g"
  "$chaff" load --db "$dir/g" "$dir/$g" > /dev/null 2> "$dir/err"; rc=$?
  check "load $g into a new database: exit 3, 'nothing loaded'" \
    test "$rc" -eq 3 -a "$(grep -c 'nothing loaded' "$dir/err")" -eq 1
  check "load $g into a new database: nothing in it" \
    test ! -e "$dir/g" -o "$(totals "$dir/g") $(tokens "$dir/g")" = "0 0 0"
done
check "l1: still the same scores after the failed loads" same_scores "$dir/l1"
"$chaff" load --db "$dir/g" "$dir/noparam.txt" > /dev/null 2> "$dir/err"
check "load of a dump without a parameter: names it [$(cat "$dir/err")]" \
  grep -q 'no robs line; nothing loaded' "$dir/err"
mkdir -p "$dir/adir"
"$chaff" load --db "$dir/g" "$dir/adir" > /dev/null 2> "$dir/err"; rc=$?
check "load of a folder: exit 3, 'Is a directory' [$(cat "$dir/err")]" \
  test "$rc" -eq 3 -a "$(grep -c 'adir: Is a directory' "$dir/err")" -eq 1
# Damaged compressed data is named as such, wherever the damage is: its
# checksum (the lines all read), or a cut at any point.
python3 -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-6] ^= 0xff
open(sys.argv[2], "wb").write(b)' "$dir/dump.gz" "$dir/crc.gz"
head -c 300 "$dir/dump.gz" > "$dir/cut300.gz"
for g in crc.gz cut.gz cut300.gz; do
  rm -rf "$dir/g"
  "$chaff" load --db "$dir/g" "$dir/$g" > /dev/null 2> "$dir/err"; rc=$?
  check "load $g: exit 3, 'damaged or cut short compressed data' [$(cat "$dir/err")]" \
    test "$rc" -eq 3 -a "$(grep -c 'damaged or cut short compressed data; nothing loaded' "$dir/err")" -eq 1
done
# A plain dump cut short at a line end (an interrupted 'chaff dump > FILE'):
# the header promises 150 spam and 300 ham, most token lines are missing.
head -n 500 "$dir/dump.txt" > "$dir/cut-at-line.txt"
"$chaff" load --db "$dir/cutline" "$dir/cut-at-line.txt" > "$dir/out" 2> "$dir/err"; rc=$?
loaded=$(tokens "$dir/cutline")
check "load of a dump cut at a line end: refused, not loaded in part [exit $rc, $(cat "$dir/out" "$dir/err" | tr '\n' ' ')]" \
  test "$rc" -ne 0 -a "${loaded:-0}" = 0
rm -rf "$dir/cutline"
"$chaff" load --db "$dir/g" "$dir/dump.gz" > /dev/null; rc=$?
check "after a failed load, a good one works" \
  test "$rc" -eq 0 -a "$(totals "$dir/g") $(tokens "$dir/g")" = "150 300 $orig_tokens"
sed 's/^tokenizer [0-9]*$/tokenizer 99/' "$dir/dump.txt" > "$dir/tok99.txt"
"$chaff" load --db "$dir/t99" "$dir/tok99.txt" > /dev/null 2> "$dir/err"; rc=$?
check "load of a dump from tokenizer 99: refused, names the version" \
  test "$rc" -eq 3 -a "$(grep -c 'tokenizer version 99' "$dir/err")" -ge 1

# --- prune ------------------------------------------------------------------
"$chaff" prune --db "$dir/l2" > /dev/null 2>&1; rc=$?
check "prune without options: usage error (exit 4)" test "$rc" -eq 4
for opts in "--days 0" "--min-count 1"; do
  "$chaff" prune --db "$dir/l2" $opts > /dev/null 2> "$dir/err"; rc=$?
  check "prune $opts: removes nothing, so a usage error saying why (exit 4)" \
    test "$rc" -eq 4 -a "$(grep -c "nothing would be removed" "$dir/err")" -eq 1
done
"$chaff" prune --db "$dir/l2" --min-count x > /dev/null 2>&1; rc=$?
check "prune --min-count x: usage error (exit 4)" test "$rc" -eq 4
check "prune with a usage error: nothing removed" test "$(tokens "$dir/l2")" -eq "$orig_tokens"
rare=$(awk '$1 == "token" && $3 + $4 < 2' "$dir/dump.txt" | wc -l)
out=$("$chaff" prune --db "$dir/l2" --min-count 2); rc=$?
check "prune --min-count 2: exit 0" test "$rc" -eq 0
check "prune --min-count 2: 'removed N tokens', N = tokens seen once ($rare)" \
  test "$out" = "removed $rare tokens"
check "prune --min-count 2: the token count drops by N" \
  test "$(tokens "$dir/l2")" -eq "$((orig_tokens - rare))" -a "$rare" -gt 0
check "prune: the message totals stay" test "$(totals "$dir/l2")" = "150 300"
check "prune: what is left is what the dump had twice or more" \
  cmp -s <(awk '$1 == "token" && $3 + $4 >= 2' "$dir/dump.txt") \
         <("$chaff" dump --db "$dir/l2" | awk '$1 == "token"')
out=$("$chaff" prune --db "$dir/l2" --min-count 2)
check "prune again: removed 0 tokens" test "$out" = "removed 0 tokens"
out=$("$chaff" prune --db "$dir/l2" --days 30)
check "prune --days 30 after training today: removed 0 tokens" test "$out" = "removed 0 tokens"
"$chaff" classify --db "$dir/l2" "${msgs[@]}" > /dev/null; rc=$?
check "a pruned database still classifies" test "$rc" -eq 0
# A backup is compacted: after the prune, the copy is smaller than the
# database file, which LMDB never shrinks.
"$chaff" backup --db "$dir/l2" "$dir/l2bk" > /dev/null; rc=$?
check "backup of a pruned database: compacted, smaller than the database file" \
  test "$rc" -eq 0 -a "$(stat -c %s "$dir/l2bk/data.mdb")" -lt "$(stat -c %s "$dir/l2/data.mdb")"
# Age every other token of the dump by 100 days (the day is the last
# field): prune --days 30 removes exactly those.
awk '$1 == "token" && NR % 2 { $5 = $5 - 100 } { print }' "$dir/dump.txt" > "$dir/aged.txt"
aged=$(awk '$1 == "token" && NR % 2' "$dir/dump.txt" | wc -l)
"$chaff" load --db "$dir/aged" "$dir/aged.txt" > /dev/null
out=$("$chaff" prune --db "$dir/aged" --days 30); rc=$?
check "prune --days 30: removes the $aged tokens last seen 100 days ago [$out]" \
  test "$rc" -eq 0 -a "$out" = "removed $aged tokens" -a "$aged" -gt 0
check "prune --days 30: the others stay, as they were" \
  cmp -s <(awk '$1 == "token" && !(NR % 2)' "$dir/dump.txt") \
         <("$chaff" dump --db "$dir/aged" | awk '$1 == "token"')
# A token last seen on day 0 (1970, which a dump may say) is not older
# than a number of days beyond today's: prune --days 100000 keeps it.
awk '$1 == "token" && NR % 2 { $5 = 0 } { print }' "$dir/dump.txt" > "$dir/day0.txt"
"$chaff" load --db "$dir/day0" "$dir/day0.txt" > /dev/null
out=$("$chaff" prune --db "$dir/day0" --days 100000); rc=$?
check "prune --days 100000: a token of day 0 is kept [$out]" \
  test "$rc" -eq 0 -a "$out" = "removed 0 tokens"

# --- backup -----------------------------------------------------------------
out=$("$chaff" backup --db "$db" "$dir/bk"); rc=$?
check "backup DIR: exit 0" test "$rc" -eq 0 -a -n "$out"
check "backup: a data file" test -s "$dir/bk/data.mdb"
check "backup: the same totals and tokens" test "$(totals "$dir/bk") $(tokens "$dir/bk")" = "150 300 $orig_tokens"
check "backup: the same 50 scores" same_scores "$dir/bk"
check "backup: the same dump" cmp -s "$dir/dump.txt" <("$chaff" dump --db "$dir/bk")
check "backup: remembers the trained messages" \
  grep -q "already trained as spam" <("$chaff" train --spam --db "$dir/bk" "$(pick spam-1 1 1)" 2>&1)
"$chaff" backup --db "$db" > /dev/null 2>&1; rc=$?
check "backup without a target: usage error (exit 4)" test "$rc" -eq 4
"$chaff" backup --db "$db" "$dir/no/such/dir" > /dev/null 2> "$dir/err"; rc=$?
check "backup into a missing folder's child: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"
mkdir -m 755 "$dir/bkpub"
(umask 022; "$chaff" backup --db "$db" "$dir/bkpub" > /dev/null); rc=$?
check "backup into an existing open folder: the copy is private (600), as the database" \
  test "$rc" -eq 0 -a "$(stat -c %a "$dir/bkpub/data.mdb")" = 600
# A last training time past the calendar (a loaded dump may carry any
# number) is shown as a number, not a crash.
sed 's/^last_train .*/last_train 9223372036854775807/' "$dir/dump.txt" > "$dir/late.txt"
"$chaff" load --db "$dir/late" "$dir/late.txt" > /dev/null
"$chaff" stats --db "$dir/late" > "$dir/out" 2>&1; rc=$?
check "stats with a last training past the calendar: exit 0, the number shown" \
  test "$rc" -eq 0 -a "$(grep -c '9223372036854775807 seconds after 1970' "$dir/out")" -eq 1
"$chaff" stats --json --db "$dir/late" > "$dir/out" 2>&1; rc=$?
check "stats --json with that time: exit 0, valid JSON [exit $rc]" \
  python3 -c 'import json,sys; sys.exit(int(sys.argv[2]) != 0 or not json.load(open(sys.argv[1])))' \
  "$dir/out" "$rc"
# Parameters that cannot be read: config lists nothing, says why, exit 3.
cp -a "$db" "$dir/badparams"
"$set_meta" "$dir/badparams" params 5
"$chaff" config --db "$dir/badparams" > "$dir/out" 2> "$dir/err"; rc=$?
check "config on damaged parameters: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"

# --- databases that cannot be used ------------------------------------------
spam=$(pick spam-1 200 200)
one_line_error() { # ERRFILE: exactly one line, and a meaningful one
  [ "$(wc -l < "$1")" -eq 1 ] && ! grep -q 'unknown error' "$1"
}
mkdir -p "$dir/garbage"
yes 'not an lmdb file' | head -c 65536 > "$dir/garbage/data.mdb"
cp "$dir/garbage/data.mdb" "$dir/garbage.orig"
for cmd in classify train; do
  if [ $cmd = train ]; then args=(train --spam); else args=(classify); fi
  "$chaff" "${args[@]}" --db "$dir/garbage" "$spam" > /dev/null 2> "$dir/err"; rc=$?
  check "garbage data.mdb, $cmd: exit 3" test "$rc" -eq 3
  check "garbage data.mdb, $cmd: says the database is damaged" grep -q 'damaged' "$dir/err"
  check "garbage data.mdb, $cmd: one clear line [$(tr '\n' '|' < "$dir/err")]" one_line_error "$dir/err"
done
check "garbage data.mdb: left as it was" cmp -s "$dir/garbage/data.mdb" "$dir/garbage.orig"
"$chaff" stats --db "$dir/garbage" > /dev/null 2>&1; rc=$?
check "garbage data.mdb, stats: exit 3" test "$rc" -eq 3

# Page numbers scribbled over in the second half of the file: LMDB has no
# checksums and follows them out of its map (SIGBUS) or into nonsense.
# Every reader must still end with one line and exit 3, not die by the
# signal.
mkdir -p "$dir/scribbled"
cp "$db/data.mdb" "$dir/scribbled/data.mdb"
pages=$(( $(stat -c %s "$db/data.mdb") / 4096 ))
for (( pg = pages / 2; pg < pages; pg++ )); do
  printf '\xff\xff\xff\xff\xff\xff\xff\xff' |
    dd of="$dir/scribbled/data.mdb" bs=1 seek=$(( pg * 4096 + 8 )) conv=notrunc 2> /dev/null
done
for args in "dump" "classify ${msgs[*]}" "prune --min-count 2"; do
  # shellcheck disable=SC2086 # the message paths are words of args
  "$chaff" $args --db "$dir/scribbled" > /dev/null 2> "$dir/err"; rc=$?
  check "scribbled page numbers, ${args%% *}: exit 3 with one line [$(tr '\n' '|' < "$dir/err" | head -c 160)]" \
    test "$rc" -eq 3 -a "$(wc -l < "$dir/err")" -eq 1
  sanitizer "$dir/err"
done

# Leaf pages marked as branch pages in the second half of the file: LMDB's
# own checks fail when they walk them (an assertion, which aborts), as
# dump and a classification of many messages do. The one line names the
# database as damaged and the exit is 3.
mkdir -p "$dir/marked"
python3 - "$db/data.mdb" "$dir/marked/data.mdb" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
pages = len(data) // 4096
for pg in range(pages // 2, pages * 9 // 10):
    if data[pg * 4096 + 10:pg * 4096 + 12] == b"\x02\x00":  # a leaf page's flags
        data[pg * 4096 + 10] = 1
open(sys.argv[2], "wb").write(data)
PY
for args in "dump" "classify $corpus/spam-2"; do
  # shellcheck disable=SC2086 # the message paths are words of args
  "$chaff" $args --db "$dir/marked" > /dev/null 2> "$dir/err"; rc=$?
  check "failed LMDB check, ${args%% *}: exit 3, one line saying damaged [$(tr '\n' '|' < "$dir/err" | head -c 160)]" \
    test "$rc" -eq 3 -a "$(wc -l < "$dir/err")" -eq 1 -a "$(grep -c 'database is damaged' "$dir/err")" -eq 1
done

# Tokens and digests without metadata (the schema record lost): damaged,
# not "empty", and a training must not start the metadata anew (a new
# seed would make every stored token unreadable).
mkdir -p "$dir/nometa"
for t in meta tokens digests; do
  mdb_dump -s $t -f "$dir/$t.hex" "$db"
  awk 'skip { skip = 0; next } $0 == " 736368656d61" { skip = 1; next } { print }' \
    "$dir/$t.hex" | mdb_load -s $t "$dir/nometa" 2> /dev/null
done
cp "$dir/nometa/data.mdb" "$dir/nometa.orig"
for args in "stats" "classify $spam" "train --spam $spam"; do
  # shellcheck disable=SC2086
  "$chaff" $args --db "$dir/nometa" > /dev/null 2> "$dir/err"; rc=$?
  check "no metadata, ${args%% *}: exit 3, one line saying damaged [$(tr '\n' '|' < "$dir/err" | head -c 160)]" \
    test "$rc" -eq 3 -a "$(wc -l < "$dir/err")" -eq 1 -a "$(grep -c 'damaged (its metadata is missing)' "$dir/err")" -eq 1
done
check "no metadata: the database left as it was" cmp -s "$dir/nometa/data.mdb" "$dir/nometa.orig"

# A data file cut to nothing: readers say so in one line (LMDB alone
# answered "Bad file descriptor").
mkdir -p "$dir/zero" && : > "$dir/zero/data.mdb"
for cmd in classify stats; do
  if [ $cmd = classify ]; then args=(classify "$spam"); else args=(stats); fi
  "$chaff" "${args[@]}" --db "$dir/zero" > /dev/null 2> "$dir/err"; rc=$?
  check "empty data.mdb, $cmd: exit 3, one line saying so [$(tr '\n' '|' < "$dir/err")]" \
    test "$rc" -eq 3 -a "$(wc -l < "$dir/err")" -eq 1 -a "$(grep -c 'empty' "$dir/err")" -eq 1
done

# The first 16 KB of a real database: a copy cut short (disk full, an
# interrupted cp). LMDB maps the file; chaff must notice, not crash.
mkdir -p "$dir/cut"
head -c 16384 "$db/data.mdb" > "$dir/cut/data.mdb"
for cmd in classify train stats; do
  case $cmd in
    classify) args=(classify "$spam") ;;
    train) args=(train --spam "$spam") ;;
    stats) args=(stats) ;;
  esac
  "$chaff" "${args[@]}" --db "$dir/cut" > /dev/null 2> "$dir/err"; rc=$?
  check "truncated data.mdb, $cmd: exit 3 with a message (exit $rc)" test "$rc" -eq 3 -a -s "$dir/err"
  [ $cmd = classify ] && sanitizer "$dir/err"
done
"$chaff" filter --db "$dir/cut" < "$spam" > "$dir/out" 2>/dev/null; rc=$?
check "truncated data.mdb, filter: exit 3 (exit $rc)" test "$rc" -eq 3
check "truncated data.mdb, filter: the message passed on unchanged ($(wc -c < "$dir/out") of $(wc -c < "$spam") bytes)" \
  cmp -s "$spam" "$dir/out"

echo 'not a folder' > "$dir/plainfile"
"$chaff" classify --db "$dir/plainfile" "$spam" > /dev/null 2> "$dir/err"; rc=$?
check "--db names a plain file: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"

# Read-only: the folder and its files without write permission (as root,
# used by nobody). Classifying works (without the lock file); training is
# refused and changes nothing.
cp -a "$db" "$dir/ro"
chmod 444 "$dir/ro"/*
chmod 555 "$dir/ro"
chmod a+rx "$dir"
if unprivileged; then
  "${as[@]}" "$chaff" classify --db "$dir/ro" "${msgs[@]}" > "$dir/out" 2> "$dir/err"; rc=$?
  check "read-only database: classify works, the same scores" \
    test "$rc" -eq 0 -a "$(cmp -s "$dir/out" "$dir/scores"; echo $?)" -eq 0 -a ! -s "$dir/err"
  check "read-only database: stats works" \
    test "$("${as[@]}" "$chaff" stats --db "$dir/ro" 2>/dev/null |
           sed -n 's/^messages *\([0-9]*\) spam, \([0-9]*\) ham$/\1 \2/p')" = "150 300"
  "${as[@]}" "$chaff" train --spam --db "$dir/ro" "$spam" > /dev/null 2> "$dir/err"; rc=$?
  check "read-only database: train refused, exit 3, unchanged" \
    test "$rc" -eq 3 -a -s "$dir/err" -a "$(totals "$dir/ro")" = "150 300"
else
  skip "read-only database: no other user to run as"
fi
chmod 700 "$dir/ro"; chmod 600 "$dir/ro"/*

# Inputs that cannot be read: nothing is trained, whatever comes first.
cp -a "$db" "$dir/in"
mkdir -p "$dir/good"
cp $(pick spam-1 300 309) "$dir/good/"
"$chaff" train --spam --db "$dir/in" "$dir/good" "$dir/missing.eml" > /dev/null 2> "$dir/err"; rc=$?
check "missing input among good ones: exit 3 (exit $rc)" test "$rc" -eq 3
sanitizer "$dir/err"
check "missing input: named, 'nothing was trained'" \
  grep -q "missing.eml: No such file or directory; nothing was trained" "$dir/err"
check "missing input: totals unchanged" test "$(totals "$dir/in")" = "150 300"
if unprivileged; then
  # (as root: a copy of the database nobody may write, an input only root
  # may read)
  cp -a "$dir/in" "$dir/in-nobody"
  $root && chown -R 65534:65534 "$dir/in-nobody"
  chmod -R a+rX "$dir/good"
  cp "$spam" "$dir/unreadable.eml"; chmod 000 "$dir/unreadable.eml"
  "${as[@]}" "$chaff" train --spam --db "$dir/in-nobody" "$dir/good" "$dir/unreadable.eml" \
    > /dev/null 2> "$dir/err"; rc=$?
  check "unreadable input (chmod 000): exit 3, nothing trained" \
    test "$rc" -eq 3 -a "$(grep -c 'Permission denied; nothing was trained' "$dir/err")" -eq 1 \
         -a "$(totals "$dir/in-nobody")" = "150 300"
else
  skip "unreadable input: no other user to run as"
fi
printf '\037\213this is not gzip data at all' > "$dir/bad.gz"
"$chaff" train --spam --db "$dir/in" "$dir/good" "$dir/bad.gz" > /dev/null 2> "$dir/err"; rc=$?
check "damaged gzip input after good ones: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"
check "damaged gzip input: totals unchanged" test "$(totals "$dir/in")" = "150 300"
# A run that fails after some batches were committed says how many were
# and how many read messages were not, on any number of threads; the two
# add up to what was read.
pick spam-1 201 260 > "$dir/sixty"
for threads in 1 2; do
  rm -rf "$dir/partial"
  # shellcheck disable=SC2046 # one path per line
  "$chaff" train --spam --threads $threads --batch 7 --db "$dir/partial" $(cat "$dir/sixty") \
    "$dir/bad.gz" > /dev/null 2> "$dir/err"; rc=$?
  committed=$(totals "$dir/partial" | cut -d' ' -f1)
  said=$(sed -n -e 's/.*the first \([0-9]*\) messages were committed, the \([0-9]*\) read after them were not.*/\1 \2/p' \
    -e 's/.*none of the \([0-9]*\) messages read was trained.*/0 \1/p' "$dir/err")
  [ -n "$said" ] || said="-1 -1" # nothing said: fails below
  check "failed run on $threads thread(s): reports ${committed:-0} committed + the rest of 60 [$said]" \
    test "$rc" -eq 3 -a "${said% *}" = "${committed:-0}" -a "$(( ${said% *} + ${said#* } ))" -eq 60
done
# Damaged input before any message was read: the line says so plainly
# (not "none of the 0 messages read").
rm -rf "$dir/known"
"$chaff" train -q --spam --db "$dir/known" "$(head -1 "$dir/sixty")" > /dev/null 2>&1
"$chaff" train --spam --db "$dir/known" "$dir/bad.gz" > /dev/null 2> "$dir/err"; rc=$?
check "damaged input, no message read: exit 3, 'nothing was trained' [$(grep stopped "$dir/err")]" \
  test "$rc" -eq 3 -a "$(grep -c 'stopped: nothing was trained; the database is as it was' "$dir/err")" -eq 1
# A gzip file cut short: zlib reads it like a whole one up to the cut, so
# only its error state tells; the half message at the cut must not be
# trained as a whole one, and nothing of the run is.
pick spam-1 201 260 | while read -r f; do cat "$f"; echo; done | gzip > "$dir/whole.gz" # each has its From line
head -c $(( $(stat -c %s "$dir/whole.gz") / 2 )) "$dir/whole.gz" > "$dir/cut.gz"
"$chaff" train --spam --db "$dir/in" "$dir/cut.gz" > /dev/null 2> "$dir/err"; rc=$?
check "gzip input cut short: exit 3, says so [$(head -c 160 "$dir/err")]" \
  test "$rc" -eq 3 -a "$(grep -c 'cut short' "$dir/err")" -ge 1
check "gzip input cut short: totals unchanged" test "$(totals "$dir/in")" = "150 300"
"$chaff" classify --db "$dir/in" "$dir/whole.gz" > /dev/null 2> "$dir/err"; rc=$?
check "the same gzip file whole: read without complaint" test "$rc" -ne 3 -a ! -s "$dir/err"
# An index cut short at a line end (no half path to stumble on): the lines
# read so far must not pass for the whole index.
pick spam-1 201 260 | sed 's/^/spam /' | gzip > "$dir/idx.gz"
head -c $(( $(stat -c %s "$dir/idx.gz") - 9 )) "$dir/idx.gz" > "$dir/idxcut.gz" # the trailer lost
for cmd in train classify tokens; do
  args=(--db "$dir/in"); [ "$cmd" = tokens ] && args=(-q)
  "$chaff" "$cmd" "${args[@]}" "$dir/idxcut.gz" > /dev/null 2> "$dir/err"; rc=$?
  check "gzip index cut short, $cmd: exit 3, says so [$(head -c 160 "$dir/err")]" \
    test "$rc" -eq 3 -a "$(grep -c 'cut short' "$dir/err")" -ge 1
done
check "gzip index cut short: totals unchanged" test "$(totals "$dir/in")" = "150 300"
"$chaff" train --spam --db "$dir/in" /dev/null/x > /dev/null 2> "$dir/err"; rc=$?
check "an input path through a non-folder: exit 3 (exit $rc)" test "$rc" -eq 3
sanitizer "$dir/err"
"$chaff" train --spam --db "$dir/in" "$dir/good" > /dev/null; rc=$?
check "and then the good ones train" test "$rc" -eq 0 -a "$(totals "$dir/in")" = "160 300"

# Another tokenizer version: the "tokenizer" metadata set to 99 in a copy.
cp -a "$db" "$dir/tok"
check "set_meta writes tokenizer 99 into a copy" "$set_meta" "$dir/tok" tokenizer 99
"$chaff" classify --db "$dir/tok" "$spam" > "$dir/out" 2> "$dir/err"; rc=$?
check "tokenizer 99: classify exit 3, nothing printed" test "$rc" -eq 3 -a ! -s "$dir/out"
check "tokenizer 99: names the version [$(head -c 300 "$dir/err")]" grep -q 'tokenizer version 99' "$dir/err"
check "tokenizer 99: tells to retrain" grep -q 'retrain' "$dir/err"
"$chaff" train --spam --db "$dir/tok" "$spam" > /dev/null 2> "$dir/err"; rc=$?
check "tokenizer 99: train refused too (exit 3)" test "$rc" -eq 3 -a "$(grep -c 'retrain' "$dir/err")" -eq 1
"$chaff" filter --db "$dir/tok" < "$spam" > "$dir/out" 2>/dev/null; rc=$?
check "tokenizer 99: filter passes the message on, exit 3" \
  test "$rc" -eq 3 -a "$(cmp -s "$spam" "$dir/out"; echo $?)" -eq 0

# --- bad targets and damaged dumps --------------------------------------------
"$chaff" dump --db "$db" "$dir/nodir/x.gz" > "$dir/out" 2> "$dir/err"; rc=$?
check "dump to a .gz that cannot be made: exit 3, nothing on stdout" \
  test "$rc" -eq 3 -a ! -s "$dir/out" -a -s "$dir/err"
bad_load() { # NAME DUMPFILE: refused with a message, and no database made
  rm -rf "$dir/bad"
  "$chaff" load --db "$dir/bad" "$2" > /dev/null 2> "$dir/err"; local rc=$?
  check "load, $1: exit 3, says why, no database left" \
    test "$rc" -eq 3 -a -s "$dir/err" -a ! -e "$dir/bad"
}
sed 's/^param robx .*/param robx 2/' "$dir/dump.txt" > "$dir/d1"
bad_load "a parameter out of range" "$dir/d1"
head -c 20000 "$dir/dump.txt" > "$dir/d2"
bad_load "cut short" "$dir/d2"
python3 - "$dir/dump.txt" "$dir" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(k for k, l in enumerate(lines) if l.startswith("token "))
j = next(k for k, l in enumerate(lines) if l.startswith("digest "))
f, g = lines[i].split(), lines[j].split()
def write(name, k, line, extra=None):
    a = lines[:]
    a[k] = line
    if extra:
        a.insert(len(a) - 1, extra)
    open(sys.argv[2] + "/" + name, "w").write("\n".join(a))
write("d3", i, " ".join(f[:2] + ["-1"] + f[3:]))
write("d4", i, " ".join(f[:2] + ["4294967296"] + f[3:]))
write("d5", i, " ".join(f[:4]))
write("d6", j, "digest zz" + g[1][2:] + " " + g[2])
write("d7", i, lines[i], lines[i])  # a token line after the end line
write("d8", i, " ".join(f[:4] + ["65536"]))  # a day past two bytes
write("d9", i, " ".join(f[:2] + ["0", "0"] + f[4:]))  # counted in neither class
# Lines no dump writes, which read in pieces or cut at a CR or NUL would
# load as something else: a long comment whose tail looks like a header
# field, junk after a CR or a NUL, two token lines run together.
def write_raw(name, k, line):
    a = [l.encode() for l in lines]
    a[k] = line
    open(sys.argv[2] + "/" + name, "wb").write(b"\n".join(a))
write_raw("d10", 1, b"# " + b"x" * 509 + b"seed 0000000000000001\n" + lines[1].encode())
write_raw("d11", i, lines[i].encode() + b"\rgarbage")
write_raw("d12", i, lines[i].encode() + b"\0 garbage here")
write_raw("d13", i, lines[i].encode() + b" " * 480 + lines[i + 1].encode())
PY
bad_load "a negative count" "$dir/d3"
bad_load "a count above 32 bits" "$dir/d4"
bad_load "a token line short of a field" "$dir/d5"
bad_load "a digest that is not hexadecimal" "$dir/d6"
bad_load "a line after the end line" "$dir/d7"
bad_load "a token's day above 65535" "$dir/d8"
bad_load "a token counted in neither class" "$dir/d9"
bad_load "a header comment longer than a line may be" "$dir/d10"
bad_load "junk after a CR inside a token line" "$dir/d11"
bad_load "junk after a NUL inside a token line" "$dir/d12"
bad_load "a token line longer than a dump writes" "$dir/d13"
# Message totals saturate, as counts do, at the most a dump may carry: a
# database loaded at the top, trained more, still dumps and loads back.
sed 's/^spam 150$/spam 9223372036854775807/' "$dir/dump.txt" > "$dir/topdump.txt"
rm -rf "$dir/top" "$dir/top2"
"$chaff" load --db "$dir/top" "$dir/topdump.txt" > /dev/null
"$chaff" train -q --spam --db "$dir/top" "${msgs[0]}" > /dev/null
"$chaff" dump --db "$dir/top" "$dir/top.txt"
"$chaff" load --db "$dir/top2" "$dir/top.txt" > /dev/null 2> "$dir/err"; rc=$?
check "spam total at INT64_MAX, trained once more: saturates, dumps and loads back [$(head -c 200 "$dir/err")]" \
  test "$rc" -eq 0 -a "$(totals "$dir/top2")" = "9223372036854775807 300"
# A failed load into a folder that was there and empty leaves it there,
# and empty; so does a failed training.
rm -rf "$dir/emptyfolder" && mkdir "$dir/emptyfolder"
"$chaff" load --db "$dir/emptyfolder" "$dir/d7" > /dev/null 2>&1; rc=$?
"$chaff" train --spam --db "$dir/emptyfolder" "$dir/bad.gz" > /dev/null 2>&1; rc2=$?
check "failed load and train into an empty folder: the folder kept, empty" \
  test "$rc" -eq 3 -a "$rc2" -eq 3 -a -d "$dir/emptyfolder" -a -z "$(ls -A "$dir/emptyfolder")"
# Header fields are read whole and in range, once each.
hdr_case() { # NAME SED-SCRIPT
  sed "$2" "$dir/dump.txt" > "$dir/dh"
  bad_load "$1" "$dir/dh"
}
hdr_case "a negative message total" 's/^spam \([0-9]*\)$/spam -5/'
hdr_case "a total with trailing junk" 's/^spam \([0-9]*\)$/spam \1abc/'
hdr_case "a tokenizer version past 32 bits" 's/^tokenizer .*/tokenizer 4294967297/'
hdr_case "unknown tokenizer flags" 's/^tok_flags .*/tok_flags 4294967295/'
hdr_case "a seed of 18 digits" 's/^seed \(.*\)$/seed \1ab/'
hdr_case "no seed" '/^seed /d'
hdr_case "a field given twice" 's/^ham \(.*\)$/ham \1\nham \1/'
hdr_case "a parameter given twice" 's/^param robs .*/param robs 0.1\nparam robs 0.2/'
first_token=$(grep -m1 '^token ' "$dir/dump.txt")
hdr_case "a token given twice" "/^${first_token}\$/p"
echo hi > "$dir/afile"
"$chaff" backup --db "$db" "$dir/afile" > /dev/null 2> "$dir/err"; rc=$?
check "backup onto a file: exit 3, one line" test "$rc" -eq 3 -a "$(wc -l < "$dir/err")" -eq 1
mkdir -p "$dir/full" && echo notes > "$dir/full/notes.txt"
"$chaff" backup --db "$db" "$dir/full" > /dev/null 2> "$dir/err"; rc=$?
check "backup into a folder that is not empty: refused, nothing written" \
  test "$rc" -eq 3 -a ! -e "$dir/full/data.mdb"
"$chaff" backup --db "$db" "$db" > /dev/null 2> "$dir/err"; rc=$?
check "backup onto the database itself: refused" test "$rc" -eq 3
mkdir -p "$dir/plain" && echo x > "$dir/plain/file"
"$chaff" prune --db "$dir/plain" --days 1 > /dev/null 2> "$dir/err"; rc=$?
"$chaff" config --db "$dir/plain" set robs 0.1 > /dev/null 2>> "$dir/err"; rc2=$?
check "prune, config set in a folder with no database: exit 3, no database made" \
  test "$rc" -eq 3 -a "$rc2" -eq 3 -a ! -e "$dir/plain/data.mdb"

echo "$fails failed"
[ "$fails" -eq 0 ]
