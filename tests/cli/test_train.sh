#!/usr/bin/env bash
# chaff train, untrain, classify, filter, stats and config from the command
# line, on a small part of the SpamAssassin corpus (150 spam, 300 ham):
# every kind of input, verdicts and exit codes, digests (already trained,
# moved, re-delivered copies), filter's headers, parameters, and where the
# database lives.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export LC_ALL=C
unset CHAFF_DB
# one GROUP NUMBER: the corpus file whose name starts with NUMBER
one() { echo "$corpus/$1/$2".*; }
# mkmbox FILE...: an mboxrd of the messages on stdout (envelope line added
# where missing, ">From " quoted, a blank line after each message)
mkmbox() {
  awk 'FNR == 1 { if (NR > 1) print ""
                  if ($0 ~ /^From /) { print; next }
                  print "From chaff-test@example.com Thu Jan  1 00:00:00 2024" }
       /^>*From / { $0 = ">" $0 }
       { print }
       END { print "" }' "$@"
}
# totals DB: "SPAM HAM" as chaff stats shows them
totals() {
  "$chaff" stats --db "$1" 2>/dev/null |
    sed -n 's/^messages *\([0-9]*\) spam, \([0-9]*\) ham$/\1 \2/p'
}
tokens() { "$chaff" stats --db "$1" 2>/dev/null | sed -n 's/^tokens *\([0-9]*\)$/\1/p'; }
summary() { # the summary line train prints for SPAM HAM MOVED ALREADY REFUSED
  echo "^trained $1 spam and $2 ham ($3 moved from the other class); $4 already known, $5 refused; "
}

db=$dir/db

# --- training from every kind of input -------------------------------------
mkdir -p "$dir/spamdir" "$dir/hamdir/sub"
cp $(pick spam-1 1 60) "$dir/spamdir/"
cp $(pick easy-ham-1 1 60) "$dir/hamdir/"
cp $(pick easy-ham-1 61 120) "$dir/hamdir/sub/"
"$chaff" train --spam --db "$db" "$dir/spamdir" > "$dir/out" 2> "$dir/err"; rc=$?
check "folder: spam trained, exit 0" test "$rc" -eq 0
check "folder: summary line" grep -q "$(summary 60 0 0 0 0)60 messages" "$dir/out"
check "folder: no notices" test ! -s "$dir/err"
check "folder: stats shows 60 spam" test "$(totals "$db")" = "60 0"
check "new database directory has mode 700" test "$(stat -c %a "$db")" = 700
check "database files are private (600)" test "$(stat -c %a "$db/data.mdb")" = 600
"$chaff" train --ham --db "$db" "$dir/hamdir" > "$dir/out" 2>&1
check "folder with a subfolder: 120 ham" grep -q "$(summary 0 120 0 0 0)120 messages" "$dir/out"
check "folder: stats 60 spam, 120 ham" test "$(totals "$db")" = "60 120"

mkmbox $(pick spam-1 61 90) > "$dir/spam.mbox"
mkmbox $(pick easy-ham-1 121 180) > "$dir/ham.mbox"
"$chaff" train --spam --db "$db" "$dir/spam.mbox" > "$dir/out" 2>&1
check "mbox: 30 spam" grep -q "$(summary 30 0 0 0 0)30 messages" "$dir/out"
"$chaff" train --ham -q --db "$db" "$dir/ham.mbox" > "$dir/out" 2>&1
check "mbox: 60 ham" grep -q "$(summary 0 60 0 0 0)60 messages" "$dir/out"
check "mbox: stats 90 spam, 180 ham" test "$(totals "$db")" = "90 180"

mkmbox $(pick spam-1 91 109) | gzip -c > "$dir/spam.mbox.gz"
gzip -c "$(pick spam-1 110 110)" > "$dir/one-spam.eml.gz"
mkmbox $(pick easy-ham-1 181 220) | gzip -c > "$dir/ham.mbox.gz"
"$chaff" train --spam --db "$db" "$dir/spam.mbox.gz" "$dir/one-spam.eml.gz" > "$dir/out" 2>&1
check "gzip mbox and gzip message: 20 spam" grep -q "$(summary 20 0 0 0 0)20 messages" "$dir/out"
"$chaff" train --ham --db "$db" "$dir/ham.mbox.gz" > "$dir/out" 2>&1
check "gzip mbox: 40 ham" grep -q "$(summary 0 40 0 0 0)40 messages" "$dir/out"
check "gzip: stats 110 spam, 220 ham" test "$(totals "$db")" = "110 220"

"$chaff" train --spam --db "$db" < "$(pick spam-1 111 111)" > "$dir/out" 2>&1
check "stdin: one spam message" grep -q "$(summary 1 0 0 0 0)1 messages" "$dir/out"
mkmbox $(pick easy-ham-1 221 230) | "$chaff" train --ham --db "$db" - > "$dir/out" 2>&1
check "stdin ('-'): an mbox of 10 ham" grep -q "$(summary 0 10 0 0 0)10 messages" "$dir/out"
check "stdin: stats 111 spam, 230 ham" test "$(totals "$db")" = "111 230"

# A TREC index with paths relative to its folder; the labels come from it.
mkdir -p "$dir/trec"
ln -s "$corpus/spam-1" "$dir/trec/spam-1"
ln -s "$corpus/easy-ham-1" "$dir/trec/easy-ham-1"
paste -d '\n' <(pick spam-1 112 150 | sed "s|^$corpus/|spam |") \
              <(pick easy-ham-1 231 300 | sed "s|^$corpus/|ham |") | grep . > "$dir/trec/index"
"$chaff" train --db "$db" "$dir/trec/index" > "$dir/out" 2>&1; rc=$?
check "TREC index: exit 0" test "$rc" -eq 0
check "TREC index: 39 spam and 70 ham by its labels" \
  grep -q "$(summary 39 70 0 0 0)109 messages" "$dir/out"
check "all inputs: stats 150 spam, 300 ham" test "$(totals "$db")" = "150 300"
check "all inputs: 450 digests" grep -q '^digests *450 messages remembered$' \
  <("$chaff" stats --db "$db")
check "stats --json is valid JSON with the totals" python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if (s["spam"], s["ham"], s["digests"]) == (150, 300, 450) else 1)' \
  < <("$chaff" stats --json --db "$db")
"$chaff" train --db "$db" "$(one spam-1 00400)" > /dev/null 2> "$dir/err"; rc=$?
check "no class and not an index: a usage error" test "$rc" -eq 4 -a -s "$dir/err"
# (a gzip file cut short fails only when it is read, after the database
# was made)
gzip -c "$(one spam-1 00400)" | head -c 300 > "$dir/cut1.gz"
"$chaff" train --spam --db "$dir/never" "$dir/cut1.gz" > /dev/null 2> "$dir/err"; rc=$?
check "a first training that fails while reading leaves no database behind [$(cat "$dir/err")]" \
  test "$rc" -eq 3 -a ! -e "$dir/never"
"$chaff" train --spam --db "$dir/no/such/db" "$(one spam-1 00400)" > /dev/null 2> "$dir/err"; rc=$?
check "training into a folder whose parent is missing: says so, exit 3" \
  test "$rc" -eq 3 -a "$(grep -c "folder it would be in does not exist" "$dir/err")" -eq 1
# a first training whose database cannot be made (a full disk; here the
# file size limit, which stops LMDB's first writes the same way) leaves
# neither the folder nor the files the open made
for kb in 8 30; do
  (trap '' XFSZ; ulimit -f $kb; "$chaff" train -q --spam --db "$dir/toobig$kb" \
    "$(one spam-1 00400)") > /dev/null 2> "$dir/err"; rc=$?
  check "a database that cannot be made ($kb KB files): exit 3, nothing left behind" \
    test "$rc" -eq 3 -a ! -e "$dir/toobig$kb"
done
mkdir -p "$dir/keptfolder" && echo notes > "$dir/keptfolder/notes.txt"
(trap '' XFSZ; ulimit -f 8; "$chaff" train -q --spam --db "$dir/keptfolder" \
  "$(one spam-1 00400)") > /dev/null 2> "$dir/err"; rc=$?
check "a database that cannot be made in a folder that was there: the folder kept as it was" \
  test "$rc" -eq 3 -a "$(ls "$dir/keptfolder")" = notes.txt
# an empty folder: nothing found is said, and is no success (classify's 0
# would read as "spam")
mkdir -p "$dir/emptyfolder"
"$chaff" train --spam --db "$db" "$dir/emptyfolder" > /dev/null 2> "$dir/err"; rc=$?
check "train of an empty folder: warns, exit 1 [exit $rc]" \
  test "$rc" -eq 1 -a "$(grep -c "no message found" "$dir/err")" -eq 1
"$chaff" classify --db "$db" "$dir/emptyfolder" > /dev/null 2> "$dir/err"; rc=$?
check "classify of an empty folder: error, exit 3 [exit $rc]" \
  test "$rc" -eq 3 -a "$(grep -c "no message found" "$dir/err")" -eq 1
# an index beside a file without a class: refused before the index's
# messages are trained, on any number of threads
for t in 1 2; do
  "$chaff" train -q --batch 10 --threads $t --db "$db" "$dir/trec/index" \
    "$(one spam-1 00400)" > /dev/null 2> "$dir/err"; rc=$?
  check "index and a file without a class, $t threads: usage error naming the file" \
    test "$rc" -eq 4 -a "$(grep -c "00400.*no class" "$dir/err")" -eq 1
done
check "no class: nothing trained" test "$(totals "$db")" = "150 300"

# --- classify ---------------------------------------------------------------
# Messages that were not trained, clearly spam or ham after this training.
spams=$(for n in 00215 00222 00227 00241 00251; do one spam-1 $n; done)
hams=$(for n in 00301 00303 00304 00305 00306; do one easy-ham-1 $n; done)
unsure=$(one spam-2 00003) # strong clues both ways: S = H = 1
for f in $spams; do
  out=$("$chaff" classify --db "$db" "$f"); rc=$?
  check "classify $(basename "$f" | cut -c1-5) (spam): exit 0" test "$rc" -eq 0
  check "  verdict line 'spam SCORE PATH'" grep -Eqx "spam (0|1)\.[0-9]{6} $f" <<<"$out"
done
for f in $hams; do
  out=$("$chaff" classify --db "$db" "$f"); rc=$?
  check "classify $(basename "$f" | cut -c1-5) (ham): exit 1" test "$rc" -eq 1
  check "  verdict line 'ham SCORE PATH'" grep -Eqx "ham 0\.[0-9]{6} $f" <<<"$out"
done
out=$("$chaff" classify --db "$db" "$unsure"); rc=$?
check "classify an unsure message: exit 2" test "$rc" -eq 2
check "  verdict line 'unsure SCORE PATH'" grep -Eqx "unsure 0\.[0-9]{6} $unsure" <<<"$out"
"$chaff" classify --db "$db" $spams $hams > "$dir/out"; rc=$?
check "several messages: exit 0" test "$rc" -eq 0
check "several messages: one line each, in order" \
  test "$(cut -d' ' -f3 "$dir/out")" = "$(printf '%s\n' $spams $hams)"
check "several messages: the verdicts" \
  test "$(cut -d' ' -f1 "$dir/out" | tr '\n' ' ')" = "spam spam spam spam spam ham ham ham ham ham "
out=$("$chaff" classify --db "$db" < "$(one spam-1 00215)"); rc=$?
check "stdin: one verdict line, exit 0" test "$rc" -eq 0 -a "$(wc -l <<<"$out")" -eq 1
mkmbox $(one spam-1 00215) $(one easy-ham-1 00301) $(one spam-1 00222) > "$dir/three.mbox"
out=$("$chaff" classify --db "$db" "$dir/three.mbox")
check "mbox: a line per message, PATH#N" test "$(cut -d' ' -f1,3 <<<"$out")" = \
  "spam $dir/three.mbox#1
ham $dir/three.mbox#2
spam $dir/three.mbox#3"

for bad in "--threads 0" "--clues x" "--no-such-option"; do
  # shellcheck disable=SC2086
  "$chaff" classify $bad --db "$db" "$(one spam-1 00215)" > /dev/null 2>&1; rc=$?
  check "classify $bad: exit 3, as every error of classify [exit $rc]" test "$rc" -eq 3
done
"$chaff" classify --db "$db" "$dir/missing.eml" > /dev/null 2> "$dir/err"; rc=$?
check "missing message: exit 3" test "$rc" -eq 3
check "missing message: named on stderr" grep -q 'missing.eml: No such file' "$dir/err"
"$chaff" classify --db "$db" "$dir/missing.eml" "$(one spam-1 00215)" > "$dir/out" 2>/dev/null; rc=$?
check "missing among others: exit 3, the others classified" \
  test "$rc" -eq 3 -a "$(wc -l < "$dir/out")" -eq 1
# What cannot be read, found while listing the input (an index line that
# names no file, a link in a folder that points nowhere), is an error in
# its place: classify scores the rest; train trains nothing.
mkdir -p "$dir/listing"
cp "$(one spam-1 00215)" "$dir/listing/m1"
ln -s "$dir/nowhere" "$dir/listing/m2"
printf 'spam %s\nno index line\n' "$(one spam-1 00215)" > "$dir/listing.idx"
"$chaff" classify --db "$db" "$dir/listing" "$dir/listing.idx" > "$dir/out" 2> "$dir/err"; rc=$?
check "listing errors: exit 3, the others classified" \
  test "$rc" -eq 3 -a "$(wc -l < "$dir/out")" -eq 2
check "listing errors: the link named" grep -q 'listing/m2: No such file' "$dir/err"
check "listing errors: the index line named" grep -q 'listing.idx:2: expected' "$dir/err"
"$chaff" dump --db "$db" > "$dir/before.dump"
"$chaff" train -q --db "$db" --spam "$dir/listing" > /dev/null 2> "$dir/err"; rc=$?
"$chaff" dump --db "$db" > "$dir/after.dump"
check "listing errors: train exits 3, says why, trains nothing" \
  test "$rc" -eq 3 -a -n "$(grep 'listing/m2: No such file' "$dir/err")"
check "listing errors: database unchanged" cmp -s "$dir/before.dump" "$dir/after.dump"
"$chaff" train --spam -q --db "$dir/spamonly" "$(one spam-1 00001)" > /dev/null 2>&1
"$chaff" classify --db "$dir/spamonly" "$(one spam-1 00215)" > /dev/null 2> "$dir/err"; rc=$?
check "spam but no ham: exit 3" test "$rc" -eq 3
check "spam but no ham: 'needs both spam and ham'" grep -q 'needs both spam and ham' "$dir/err"
# Symbolic links back into a folder already read (loops) are not followed
# again: each message once, a warning per link, and no endless walk.
mkdir -p "$dir/loop/sub"
cp "$(one spam-1 00215)" "$dir/loop/m1"
cp "$(one easy-ham-1 00002)" "$dir/loop/sub/m2"
ln -s . "$dir/loop/self"
ln -s .. "$dir/loop/sub/up"
timeout 20 "$chaff" classify --db "$db" "$dir/loop" > "$dir/out" 2> "$dir/err"; rc=$?
check "a folder with symbolic link loops: each message once [exit $rc]" \
  test "$rc" -eq 0 -a "$(wc -l < "$dir/out")" -eq 2
check "a folder with symbolic link loops: a warning per looping link" \
  test "$(grep -c 'a folder already read' "$dir/err")" -eq 2
: | "$chaff" classify --db "$db" > "$dir/out" 2> "$dir/err"; rc=$?
check "an empty message on stdin: scored unsure (exit 2), with a warning" \
  test "$rc" -eq 2 -a "$(grep -c 'an empty message' "$dir/err")" -eq 1
"$chaff" classify --db "$dir/nodb" "$(one spam-1 00215)" > /dev/null 2> "$dir/err"; rc=$?
check "missing database: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"
check "missing database: not created by classify" test ! -e "$dir/nodb"

"$chaff" classify --json --db "$db" $spams $hams "$dir/three.mbox" > "$dir/out"; rc=$?
check "--json: exit 0, a line per message" test "$rc" -eq 0 -a "$(wc -l < "$dir/out")" -eq 13
check "--json: every line is valid JSON" \
  python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' < "$dir/out"
check "--json: fields agree with the plain output" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
plain = [l.split() for l in open(sys.argv[2])]
ok = all(r["verdict"] == p[0] and "%.6f" % r["score"] == p[1] and r["path"] == p[2]
         and isinstance(r["clues"], list) for r, p in zip(rows, plain))
sys.exit(0 if ok and len(rows) == 13 else 1)' "$dir/out" \
  <("$chaff" classify --db "$db" $spams $hams "$dir/three.mbox")
odd=$dir/$'q"uo\\te\tname.eml'
cp "$(one spam-1 00215)" "$odd"
"$chaff" classify --json --db "$db" "$odd" > "$dir/out"
check "--json: a path with a quote, a backslash and a tab stays valid JSON" python3 -c '
import json, sys
sys.exit(0 if json.loads(open(sys.argv[1]).read())["path"] == sys.argv[2] else 1)' "$dir/out" "$odd"
latin1=$dir/$'caf\xe9 \xff.eml'
cp "$(one spam-1 00215)" "$latin1"
"$chaff" classify --json --db "$db" "$latin1" > "$dir/out"
check "--json: a path that is not UTF-8 stays valid JSON, its bad bytes as U+FFFD" python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
sys.exit(0 if json.loads(raw.decode("utf-8"))["path"].endswith("caf\ufffd \ufffd.eml") else 1)' "$dir/out"
# A value a header gives whole (here a Message-ID) may hold control
# characters, NUL among them: its token holds '?' in their place, so that
# no printed token ends a line early or steers a terminal; --json and
# --explain show it whole, through the thread pool too (a folder of
# messages). A backslash stays, and --explain shows it as \\.
mkdir -p "$dir/nulbox"
for i in 1 2 3; do
  printf 'Subject: s%s\nMessage-ID: <x@a\000b\033[2J%s.com>\n\nhello world\n' "$i" "$i" \
    > "$dir/nulbox/$i.eml"
done
"$chaff" classify --json --clues 1000 --set min_dev=0 --db "$db" "$dir/nulbox" > "$dir/out"
check "--json: control characters in a token are '?'" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = {"msgid:a?b?[2j%d.com" % i for i in (1, 2, 3)}
got = {c["token"] for r in rows for c in r["clues"] if c["token"].startswith("msgid:")}
sys.exit(0 if len(rows) == 3 and got == want else 1)' "$dir/out"
printf 'Subject: s\nMessage-ID: <x@a\\b\001.com>\n\nhello world\n' > "$dir/backslash.eml"
check "--explain: a token with a backslash, as \\\\" grep -qF 'msgid:a\\b?.com' \
  <("$chaff" classify --explain --clues 1000 --set min_dev=0 --db "$db" "$dir/backslash.eml")
out=$("$chaff" classify --explain --db "$db" "$(one spam-1 00215)")
check "--explain: the verdict line first" grep -Eq '^spam [01]\.[0-9]{6} ' <<<"$(head -1 <<<"$out")"
check "--explain: a summary line" grep -Eq '^  [0-9]+ distinct tokens, [0-9]+ counted' <<<"$out"
check "--explain: 15 clue lines" test "$(grep -Ec '^ +[01]\.[0-9]{6} +spam +[0-9]+ +ham +[0-9]+ +[^ ]' <<<"$out")" -eq 15
out=$("$chaff" classify --explain --clues 3 --db "$db" "$(one spam-1 00215)")
check "--clues 3: 3 clue lines" test "$(grep -Ec '^ +[01]\.[0-9]{6} +spam +[0-9]+ +ham ' <<<"$out")" -eq 3
# --set scores as the database would with the parameter stored
cp -r "$db" "$dir/robs"
"$chaff" config --db "$dir/robs" set robs 0.5 > /dev/null
out=$("$chaff" classify --json --set robs=0.5 --db "$db" "$(one spam-1 00215)"); rc=$?
check "--set robs=0.5: exit 0..2, scored as with robs 0.5 stored, not as with the default" \
  test "$rc" -le 2 -a -n "$out" -a \
  "$out" = "$("$chaff" classify --json --db "$dir/robs" "$(one spam-1 00215)")" -a \
  "$out" != "$("$chaff" classify --json --db "$db" "$(one spam-1 00215)")"
"$chaff" classify --set ham_cutoff=0.1 --set spam_cutoff=0.4 --db "$db" "$unsure" > /dev/null; rc=$?
check "--set ham_cutoff=0.1 --set spam_cutoff=0.4 makes the unsure message spam" test "$rc" -eq 0
"$chaff" classify --set bogus=1 --db "$db" "$unsure" > "$dir/out" 2> "$dir/err"; rc=$?
check "--set bogus=1: exit 3, nothing scored" test "$rc" -eq 3 -a ! -s "$dir/out"
check "--set bogus=1: names the parameter" grep -q "bogus" "$dir/err"
"$chaff" classify --set robs=x --db "$db" "$unsure" > /dev/null 2>&1; rc=$?
check "--set robs=x: refused" test "$rc" -eq 3
"$chaff" classify --set spam_cutoff=2 --db "$db" "$unsure" > /dev/null 2>&1; rc=$?
check "--set spam_cutoff=2: refused" test "$rc" -eq 3
check "--set does not change the database" test "$("$chaff" config --db "$db" get spam_cutoff)" = 0.6

# On a terminal, training shows its progress (messages, MB, rate and the
# time left) on one line that it rewrites, then the summary; without one,
# only the summary.
if command -v script > /dev/null; then
  script -qec "'$chaff' train --db '$dir/progressdb' --ham '$corpus/easy-ham-2'" /dev/null \
    > "$dir/tty.out" 2>&1; rc=$?
  check "progress on a terminal: a rewritten line of messages, MB and rate, then the summary" \
    test "$rc" -eq 0 -a "$(grep -c $'\r\033\\[K[0-9]* messages, [0-9.]* MB, [0-9]* messages/s' "$dir/tty.out")" -ge 1 \
      -a "$(grep -c 'trained 0 spam and 1400 ham' "$dir/tty.out")" -eq 1
  "$chaff" train --db "$dir/progressdb2" --ham "$corpus/easy-ham-2" > "$dir/out" 2> "$dir/err"
  check "no terminal: no progress line" test ! -s "$dir/err"
  # a commit per message makes the run slow enough for more lines where
  # a disk syncs slowly: each line once the rate is known says the time left
  script -qec "'$chaff' train --batch 1 --db '$dir/progressdb3' --ham '$corpus/easy-ham-2'" /dev/null \
    > "$dir/tty.out" 2>&1
  tr '\r' '\n' < "$dir/tty.out" | grep -E '^.\[K[0-9]+ messages, .* [1-9][0-9]* messages/s' > "$dir/lines"
  check "progress lines with a rate also give the time left [$(wc -l < "$dir/lines") lines]" \
    bash -c '! grep -vE "messages/s, [0-9]+:[0-9]{2} left$" "$1"' _ "$dir/lines"
else
  echo "skip: no script(1) to give training a terminal"
fi

# An empty file, or nothing on stdin, is no message: it is pointed out
# and not trained (exit 1, as for a refused message), and a run that
# trained nothing leaves no new database behind. Beside a real message it
# does not stop the run. (A message of no tokens at all is a library
# case, tests/engine/test_train.c.)
: > "$dir/empty.eml"
out=$("$chaff" train --db "$dir/emptydb" --spam "$dir/empty.eml" 2>&1); rc=$?
check "train an empty file: exit 1, warned, nothing trained, no database made" \
  test "$rc" -eq 1 -a "${out#*empty message, not trained}" != "$out" -a ! -e "$dir/emptydb"
out=$("$chaff" train --db "$dir/emptydb" --spam < /dev/null 2>&1); rc=$?
check "train nothing from stdin: exit 1, warned" test "$rc" -eq 1 -a "${out#*-: empty message}" != "$out"
out=$("$chaff" train --db "$dir/emptydb" --spam "$dir/empty.eml" "$(ls "$corpus"/spam-1/* | head -1)" 2>&1); rc=$?
printf 'From a Mon Jan  1 00:00:00 2024\n\nFrom b Mon Jan  1 00:00:00 2024\nSubject: the real one\n\nbody text\n' \
  > "$dir/withempty.mbox"
out2=$("$chaff" train --db "$dir/emptydb2" --spam "$dir/withempty.mbox" 2>&1); rc2=$?
check "an mbox message that is its envelope line alone: warned, not trained" \
  test "$rc2" -eq 1 -a "${out2#*withempty.mbox (message 1): empty message}" != "$out2" \
    -a "${out2#*trained 1 spam}" != "$out2"
# Something that is not a mail message (no header at its start: a binary
# file, bare text) is scored with a warning, and not trained.
head -c 3000 /dev/urandom | tr '\n:' 'xy' > "$dir/noise.bin"
"$chaff" classify --db "$db" "$dir/noise.bin" > "$dir/noise.out" 2> "$dir/noise.err"; rc4=$?
check "classify a non-mail file: scored (exit 0-2), with a warning" \
  test "$rc4" -le 2 -a "$(wc -l < "$dir/noise.out")" -eq 1 -a "$(grep -c 'not a mail message' "$dir/noise.err")" -eq 1
out3=$("$chaff" train --db "$dir/noisedb" --spam "$dir/noise.bin" 2>&1); rc3=$?
check "train a non-mail file: exit 1, warned, not trained, no database made" \
  test "$rc3" -eq 1 -a "${out3#*not a mail message}" != "$out3" -a ! -e "$dir/noisedb"
check "an empty file beside a message: the message trained" \
  test "$rc" -eq 1 -a "${out#*trained 1 spam}" != "$out"

# Input: a Maildir's own server files are not messages; an index may name
# Maildir files (their names have colons) and may be gzip-compressed; a
# message whose first line looks like an index line is still a message.
md=$dir/maildir
mkdir -p "$md/cur" "$md/new" "$md/tmp" "$md/.Sub/cur"
cp "$(one spam-1 00001)" "$md/cur/1700000000.M1P2.host:2,S"
cp "$(one spam-1 00002)" "$md/new/1700000001.M1P3.host"
cp "$(one spam-1 00003)" "$md/tmp/1700000002.M1P4.host"
cp "$(one spam-1 00004)" "$md/.Sub/cur/1700000003.M1P5.host:2,"
printf '1 1700000000\n' > "$md/dovecot-uidlist"
head -c 3000 /dev/urandom > "$md/dovecot.index.cache"
printf 'Junk\n' > "$md/subscriptions"
out=$("$chaff" train --db "$dir/mddb" --spam "$md" 2>&1); rc=$?
check "Maildir: cur/ and new/ only, not the server's files, tmp/ or subfolders" \
  test "$rc" -eq 0 -a "${out#trained 2 spam}" != "$out"
printf 'spam maildir/cur/1700000000.M1P2.host:2,S\nspam maildir/new/1700000001.M1P3.host\n' \
  > "$dir/md.idx"
out=$("$chaff" train --db "$dir/mddb2" "$dir/md.idx" 2>&1); rc=$?
check "index naming Maildir files (colons in the first path): read as an index" \
  test "$rc" -eq 0 -a "${out#trained 2 spam}" != "$out"
gzip -c "$dir/md.idx" > "$dir/md.idx.gz"
out=$("$chaff" train --db "$dir/mddb3" "$dir/md.idx.gz" 2>&1); rc=$?
check "gzip-compressed index: read as an index" \
  test "$rc" -eq 0 -a "${out#trained 2 spam}" != "$out"
# An mbox that starts with a blank line is still an mbox.
{ printf '\n'; pick spam-1 1 2 | while read -r f; do cat "$f"; echo; done; } > "$dir/blank-first.mbox"
out=$("$chaff" train --db "$dir/mddb5" --spam "$dir/blank-first.mbox" 2>&1); rc=$?
check "an mbox starting with a blank line: both messages trained [$out]" \
  test "$rc" -eq 0 -a "${out#trained 2 spam}" != "$out"
check "  ... and classified as two" \
  test "$("$chaff" classify --db "$db" "$dir/blank-first.mbox" | grep -c 'blank-first.mbox#')" -eq 2
{ printf 'Spam : yes\nSubject: first line like an index line\n\nbody\n'; } > "$dir/spamcolon.eml"
out=$("$chaff" train --db "$dir/mddb4" --spam "$dir/spamcolon.eml" 2>&1); rc=$?
check "a message starting 'Spam : yes' is a message, not an index" \
  test "$rc" -eq 0 -a "${out#trained 1 spam}" != "$out"

# --- filter -----------------------------------------------------------------
# hdrlines FILE: the number of header lines (before the first blank line)
hdrlines() { awk '/^\r?$/ { print NR - 1; exit }' "$1"; }
spam=$(one spam-1 00215); ham=$(one easy-ham-1 00301)
n=$(hdrlines "$spam")
"$chaff" filter --db "$db" < "$spam" > "$dir/out"; rc=$?
check "filter spam: exit 0" test "$rc" -eq 0
check "filter spam: the headers unchanged first" cmp -s <(head -n "$n" "$spam") <(head -n "$n" "$dir/out")
check "filter spam: then X-Spam-Flag: YES" test "$(sed -n "$((n + 1))p" "$dir/out")" = "X-Spam-Flag: YES"
check "filter spam: X-Spam-Status: Yes, score=..." grep -Eqx \
  'X-Spam-Status: Yes, score=[01]\.[0-9]{3} required=0\.600 tests=CHAFF_SPAM version=chaff-.+' \
  <(sed -n "$((n + 2))p" "$dir/out")
score=$("$chaff" classify --db "$db" "$spam" | cut -d' ' -f2)
# X-Spam-Level: five stars stand for the spam cutoff, as five points for
# SpamAssassin's usual threshold
stars=$(python3 -c "import sys; print('*' * min(50, int(float(sys.argv[1]) / 0.6 * 5 + 1e-9)))" "$score")
check "filter spam: X-Spam-Level, five stars or more [$stars]" \
  test "$(sed -n "$((n + 3))p" "$dir/out")" = "X-Spam-Level: $stars" -a "${#stars}" -ge 5
check "filter spam: X-Chaff-Score as classify scores" \
  test "$(sed -n "$((n + 4))p" "$dir/out")" = "X-Chaff-Score: $score"
check "filter spam: X-Chaff-Verdict: spam" test "$(sed -n "$((n + 5))p" "$dir/out")" = "X-Chaff-Verdict: spam"
check "filter spam: blank line and body byte-identical" \
  cmp -s <(tail -n +"$((n + 1))" "$spam") <(tail -n +"$((n + 6))" "$dir/out")
check "filter spam: procmail rule matches" grep -q '^X-Spam-Status: Yes' "$dir/out"
check "filter spam: procmail star rule matches" grep -q '^X-Spam-Level: \*\*\*\*\*' "$dir/out"
n=$(hdrlines "$ham")
"$chaff" filter --db "$db" < "$ham" > "$dir/out"; rc=$?
check "filter ham: exit 0" test "$rc" -eq 0
check "filter ham: no X-Spam-Flag" bash -c '! grep -qi "^X-Spam-Flag" "$1"' _ "$dir/out"
check "filter ham: exactly the input plus 4 headers at the end of the header block" \
  cmp -s <(head -n "$n" "$ham"; printf 'X-Spam-Status: No, score=%s required=0.600 tests=CHAFF_HAM version=%s\nX-Spam-Level: \nX-Chaff-Score: %s\nX-Chaff-Verdict: ham\n' \
             "$(printf '%.3f' "$("$chaff" classify --db "$db" "$ham" | cut -d' ' -f2)")" \
             "$(sed -n "$((n + 1))s/.*version=//p" "$dir/out")" \
             "$("$chaff" classify --db "$db" "$ham" | cut -d' ' -f2)"
           tail -n +"$((n + 1))" "$ham") "$dir/out"
check "filter ham: procmail rule does not match" bash -c '! grep -q "^X-Spam-Status: Yes" "$1"' _ "$dir/out"
check "filter ham: procmail star rule does not match" bash -c '! grep -q "^X-Spam-Level: \*\*\*\*\*" "$1"' _ "$dir/out"
# stdout and stderr left closed by the caller: no database file takes
# their place (and the message or an error text), and the lost output is an
# error
"$chaff" dump --db "$db" > "$dir/before.dump"
"$chaff" filter --learn --db "$db" < "$ham" >&- 2>&-; rc=$?
"$chaff" dump --db "$db" > "$dir/after.dump"
check "filter with stdout and stderr closed: exit 3, database unchanged [exit $rc]" \
  bash -c '[ "$1" -eq 3 ] && cmp -s "$2" "$3"' _ "$rc" "$dir/before.dump" "$dir/after.dump"
# a mistyped option or a file operand: exit 3, the mail passed on unchanged
for bad in "--lean" "$ham"; do
  "$chaff" filter --db "$db" "$bad" < "$ham" > "$dir/out" 2> "$dir/err"; rc=$?
  check "filter with a usage error ($(basename -- "$bad")): exit 3, message unchanged" \
    bash -c '[ "$1" -eq 3 ] && cmp -s "$2" "$3" && grep -q "usage error" "$4"' _ "$rc" "$ham" "$dir/out" "$dir/err"
done

# The README's procmail recipe, run by procmail itself: the spam lands in
# Junk/, the ham in the inbox, each with the headers added.
if command -v procmail > /dev/null; then
  pm=$dir/procmail
  mkdir -p "$pm"
  { printf 'MAILDIR=%s/\nDEFAULT=%s/inbox/\nLOGFILE=%s/log\nPATH=%s:/usr/bin:/bin\nCHAFF_DB=%s\n\n' \
      "$pm" "$pm" "$pm" "$(dirname "$chaff")" "$db"
    printf ':0fw\n| %s filter\n\n:0\n* ^X-Spam-Status: Yes\nJunk/\n' "$(basename "$chaff")"; } > "$pm/rc"
  procmail -m "$pm/rc" < "$spam"; rc1=$?
  procmail -m "$pm/rc" < "$ham"; rc2=$?
  check "procmail recipe: spam into Junk/, ham into the inbox" \
    test "$rc1" -eq 0 -a "$rc2" -eq 0 -a "$(ls "$pm/Junk/new" 2>/dev/null | wc -l)" -eq 1 \
      -a "$(ls "$pm/inbox/new" 2>/dev/null | wc -l)" -eq 1
  check "procmail recipe: the delivered spam carries X-Spam-Flag: YES" \
    grep -q '^X-Spam-Flag: YES' "$pm/Junk/new/"*
else
  echo "skip: no procmail"
fi

sed 's/$/\r/' "$spam" > "$dir/crlf.eml"
n=$(hdrlines "$dir/crlf.eml")
"$chaff" filter --db "$db" < "$dir/crlf.eml" > "$dir/out"; rc=$?
check "filter CRLF: exit 0" test "$rc" -eq 0
check "filter CRLF: added header lines end in CRLF" \
  test "$(sed -n "$((n + 1)),$((n + 5))p" "$dir/out" | grep -c $'\r$')" -eq 5
check "filter CRLF: every header line ends in CRLF" \
  test "$(head -n "$((n + 6))" "$dir/out" | grep -vc $'\r$')" -eq 0
check "filter CRLF: headers and body byte-identical around them" \
  cmp -s <(head -n "$n" "$dir/crlf.eml"; tail -n +"$((n + 1))" "$dir/crlf.eml") \
         <(head -n "$n" "$dir/out"; tail -n +"$((n + 6))" "$dir/out")

# A CRLF message behind an mbox envelope line written with LF (what a local
# delivery agent on Unix prepends): the header block is CRLF.
{ printf 'From sender@example.com Mon Jan  1 00:00:00 2024\n'; sed 1d "$dir/crlf.eml"; } > "$dir/crlf-env.eml"
"$chaff" filter --db "$db" < "$dir/crlf-env.eml" > "$dir/out"
n=$(hdrlines "$dir/crlf-env.eml")
check "filter CRLF after an LF envelope line: added header lines end in CRLF" \
  test "$(sed -n "$((n + 1)),$((n + 5))p" "$dir/out" | grep -c $'\r$')" -eq 5
# A message of headers only, without a final line end: the header lines,
# ours, and a blank line to end the header block.
printf 'Subject: no body\nFrom: sender@example.com' > "$dir/nobody.eml"
"$chaff" filter --db "$db" < "$dir/nobody.eml" > "$dir/out"; rc=$?
check "filter headers-only message: headers, ours, blank line" test "$rc" -eq 0 -a \
  "$(sed 's/^\(X-Chaff-Score:\|X-Spam-Status:\|X-Spam-Level:\).*/\1/' "$dir/out"; echo .)" = \
  "$(printf 'Subject: no body\nFrom: sender@example.com\nX-Spam-Status:\nX-Spam-Level:\nX-Chaff-Score:\nX-Chaff-Verdict: %s\n\n.' \
     "$(sed -n 's/^X-Chaff-Verdict: //p' "$dir/out")")"

# Verdict headers already in the message (forged, or from an earlier run)
# go, folded lines and all; the body keeps its lines.
{ printf 'X-Spam-Status: Yes, score=42.0 required=5.0\n\ttests=FORGED_TEST\n'
  printf 'From: sender@example.com\nX-Spam-Flag: YES\nTo: you@example.com\n'
  printf 'x-chaff-verdict: ham\nX-Chaff-Score: 0.000000\nSubject: old headers\n'
  printf 'X-Spam-Level: ***\nX-Spam-Flag : YES\nX-Chaff-Verdict\t: spam\n'
  printf '\nbody text\nX-Spam-Status: Yes (a body line)\n'; } > "$dir/old.eml"
"$chaff" filter --db "$db" < "$dir/old.eml" > "$dir/out"; rc=$?
verdict=$(sed -n 's/^X-Chaff-Verdict: //p' "$dir/out")
hdr=$(sed '/^$/q' "$dir/out")
check "old headers: exit 0" test "$rc" -eq 0
check "old headers: one X-Spam-Status" test "$(grep -ic '^X-Spam-Status:' <<<"$hdr")" -eq 1
check "old headers: the folded line went with it" bash -c '! grep -q FORGED_TEST "$1"' _ "$dir/out"
check "old headers: X-Spam-Flag only if spam (also written 'X-Spam-Flag : YES')" \
  test "$(grep -ic '^X-Spam-Flag[[:blank:]]*:' <<<"$hdr")" -eq "$([ "$verdict" = spam ] && echo 1 || echo 0)"
check "old headers: one X-Chaff-Verdict, one X-Chaff-Score" \
  test "$(grep -ic '^X-Chaff-Verdict[[:blank:]]*:' <<<"$hdr")$(grep -ic '^X-Chaff-Score:' <<<"$hdr")" = 11
check "old headers: one X-Spam-Level, the new one" \
  test "$(grep -ic '^X-Spam-Level:' <<<"$hdr")" -eq 1 -a "$(grep -c '^X-Spam-Level: \*\*\*$' <<<"$hdr")" -eq 0
check "old headers: the other headers kept, in order" test "$(grep -iv '^x-spam-flag:\|^x-spam-status:\|^x-spam-level:\|^x-chaff-' <<<"$hdr")" = \
  "From: sender@example.com
To: you@example.com
Subject: old headers"
check "old headers: the body untouched" \
  test "$(sed '1,/^$/d' "$dir/out")" = $'body text\nX-Spam-Status: Yes (a body line)'

# An owned header as the last line, without a line end, goes whole: no
# blank line is left in its place, so the new headers stay in the header
# block.
printf 'From: x@example.com\nSubject: s\nX-Spam-Status: No, forged' | "$chaff" filter --db "$db" > "$dir/out"; rc=$?
check "forged last header without a line end: the new headers stay in the header block" \
  test "$rc" -eq 0 -a "$(sed -n '3p' "$dir/out" | cut -d: -f1)" = X-Spam-Status \
  -a "$(grep -c '^$' "$dir/out")" -eq 1 -a "$(tail -c 1 "$dir/out" | od -An -c | tr -d ' ')" = '\n'
# A header block that runs into body text with no blank line ends at the
# first line that is not a header field: the new headers go before it,
# with the blank line the message lacked.
printf 'From: x@example.com\nSubject: s\nbuy now: cheap\nmore text\n' | "$chaff" filter --db "$db" > "$dir/out"; rc=$?
check "no blank line before the body: new headers before the first body line, then a blank line" \
  test "$rc" -eq 0 -a "$(sed -n '/^X-Chaff-Verdict: /{n;p;}' "$dir/out" | od -An -c | tr -d ' ')" = '\n' \
  -a "$(sed '1,/^$/d' "$dir/out")" = $'buy now: cheap\nmore text' \
  -a "$(sed -n '3p' "$dir/out" | cut -d: -f1)" = X-Spam-Status
python3 - "$dir/out" <<'PY'
import email, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read())
sys.exit(0 if m["X-Chaff-Verdict"] and not m.defects else 1)
PY
check "no blank line before the body: Python's parser finds the verdict, no defects" test $? -eq 0
# An odd line before the blank line ends the tokenizer's header block:
# the new headers go before it (where the tokenizer reads them as headers
# and so ignores them), nothing else moves, and an old copy of them past
# the odd line is still left out.
printf 'Subject: s\nbroken line\nFrom: x@example.com\nX-Spam-Flag: YES\n\nbodyword\n' | "$chaff" filter --db "$db" > "$dir/out"; rc=$?
check "an odd line inside the header block: the new headers before it" \
  test "$rc" -eq 0 -a "$(sed -n '1p' "$dir/out")" = "Subject: s" \
  -a "$(sed -n '2p' "$dir/out" | cut -d: -f1)" = X-Spam-Status \
  -a "$(sed -n '/^X-Chaff-Verdict: /,$p' "$dir/out" | tail -n +2 | tr '\n' '|')" = "broken line|From: x@example.com||bodyword|"
check "  ... the forged X-Spam-Flag after it left out" bash -c '! grep -q "^X-Spam-Flag" "$1"' _ "$dir/out"
"$chaff" tokens < "$dir/out" > "$dir/toks"
check "  ... the tokenizer does not read the new headers as words" \
  bash -c '! grep -Eqx "required|tests|chaff_(ham|unsure|spam)|x-spam-status" "$1"' _ "$dir/toks"
: | "$chaff" filter --db "$db" > "$dir/out"; rc=$?
check "an empty message: our headers and a blank line, exit 0" \
  test "$rc" -eq 0 -a "$(head -1 "$dir/out" | cut -d: -f1)" = X-Spam-Status -a "$(tail -1 "$dir/out")" = ""
# A reader that stops early (a pipe closed after 10 bytes of a 1 MB
# message): an error with exit 3 and a message, not a silent SIGPIPE.
{ printf 'From: x@example.com\nSubject: long\n\n'; head -c 1000000 /dev/zero | tr '\0' 'a' |
  fold -w 70; } > "$dir/long.eml"
"$chaff" filter --db "$db" < "$dir/long.eml" 2> "$dir/err" | head -c 10 > /dev/null
rc=${PIPESTATUS[0]}
check "filter, reader gone early: exit 3 [exit $rc]" test "$rc" -eq 3
check "filter, reader gone early: says so" grep -q "writing the message failed" "$dir/err"
# stdin left non-blocking by the parent: the filter waits for the rest of
# the message instead of passing on what had come so far.
python3 - "$chaff" "$db" > "$dir/nb.out" <<'PY'
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sys.argv[1], "filter", "--db", sys.argv[2]], stdin=r,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(r)
os.write(w, b"Subject: x\n\nfirst part\n")
time.sleep(0.5)
os.write(w, b"second part\n")
os.close(w)
out, err = p.communicate()
print(p.returncode, out.endswith(b"first part\nsecond part\n"), len(err))
PY
check "filter on a non-blocking stdin: the whole message, exit 0" test "$(cat "$dir/nb.out")" = "0 True 0"

for bad in missing corrupt spamonly; do
  case $bad in
    missing) b=$dir/nodb ;;
    corrupt) b=$dir/corrupt; mkdir -p "$b"; yes 'not lmdb' | head -c 65536 > "$b/data.mdb" ;;
    spamonly) b=$dir/spamonly ;;
  esac
  "$chaff" filter --db "$b" < "$spam" > "$dir/out" 2> "$dir/err"; rc=$?
  check "filter, $bad database: exit 3" test "$rc" -eq 3
  check "filter, $bad database: output byte-identical to the input" cmp -s "$spam" "$dir/out"
  check "filter, $bad database: says why on stderr" test -s "$dir/err"
done
check "filter, spam but no ham: a meaningful reason (not 'unknown error')" \
  bash -c '! grep -q "unknown error" "$1"' _ "$dir/err"
"$chaff" filter --db "$dir/nodb" < "$dir/crlf.eml" > "$dir/out" 2>/dev/null; rc=$?
check "filter error, CRLF message: byte-identical, exit 3" \
  test "$rc" -eq 3 -a "$(cmp -s "$dir/crlf.eml" "$dir/out"; echo $?)" -eq 0

cp -a "$db" "$dir/learndb"
"$chaff" filter --learn --db "$dir/learndb" < "$(one spam-1 00274)" > "$dir/out"; rc=$?
check "filter --learn spam: exit 0, tagged" test "$rc" -eq 0 -a "$(grep -c '^X-Spam-Flag: YES' "$dir/out")" -eq 1
check "filter --learn spam: spam total +1" test "$(totals "$dir/learndb")" = "151 300"
"$chaff" filter --learn --db "$dir/learndb" < "$(one easy-ham-1 00303)" > /dev/null; rc=$?
check "filter --learn ham: ham total +1" test "$rc" -eq 0 -a "$(totals "$dir/learndb")" = "151 301"
"$chaff" filter --learn --db "$dir/learndb" < "$unsure" > /dev/null
check "filter --learn unsure: nothing learned" test "$(totals "$dir/learndb")" = "151 301"
# What chaff train refuses, --learn does not learn, whatever the verdict:
# with ham_cutoff 0.55 a text of unknown words (score 0.5) is ham.
"$chaff" config --db "$dir/learndb" set ham_cutoff 0.55
for what in "no header" "empty"; do
  if [ "$what" = empty ]; then : > "$dir/text"; else printf 'zqxjv wordless\nplain text\n' > "$dir/text"; fi
  "$chaff" filter --learn --db "$dir/learndb" < "$dir/text" > "$dir/out" 2> "$dir/err"; rc=$?
  check "filter --learn, $what: tagged ham, exit 0, a warning" test "$rc" -eq 0 -a \
    "$(grep -c '^X-Chaff-Verdict: ham' "$dir/out")" -eq 1 -a -s "$dir/err"
  check "filter --learn, $what: nothing learned" test "$(totals "$dir/learndb")" = "151 301"
done
"$chaff" config --db "$dir/learndb" set ham_cutoff 0.3

# A fault before the output has begun still passes the message on whole:
# here an abort (as an LMDB assertion on a damaged file raises it) while
# the filter waits for the database's lock file, held by another process.
rm -f "$dir/locked" "$dir/unlock"
python3 - "$db/lock.mdb" "$dir/locked" "$dir/unlock" <<'PY' &
import fcntl, os, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX, 1, 0)
open(sys.argv[2], "w").close()
end = time.monotonic() + 60
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.05)
PY
locker=$!
for _ in $(seq 200); do [ -e "$dir/locked" ] && break; sleep 0.05; done
"$chaff" filter --db "$db" < "$spam" > "$dir/out" 2> "$dir/err" &
fpid=$!
# until it waits for the lock (its wait channel says so), or 10 s
for _ in $(seq 200); do
  grep -q lk "/proc/$fpid/wchan" 2> /dev/null && break
  sleep 0.05
done
kill -ABRT "$fpid" 2> /dev/null
wait "$fpid"; rc=$?
touch "$dir/unlock"
wait "$locker"
check "filter aborted mid-way: exit 3" test "$rc" -eq 3
check "filter aborted mid-way: the message byte-identical" cmp -s "$spam" "$dir/out"
check "filter aborted mid-way: says so" grep -q "internal fault" "$dir/err"

# A message too large to hold is passed on whole, streamed after the part
# that was read. (Sanitizer builds cannot start under a memory limit.)
if bash -c 'ulimit -v 120000; "$1" --version' _ "$chaff" > /dev/null 2>&1; then
  { printf 'Subject: large\n\n'
    yes 'a line of a very large message body to fill it up' | head -c 150000000; } > "$dir/big.eml"
  bash -c 'ulimit -v 120000; "$1" filter --db "$2" < "$3" > "$4" 2> "$5"' _ \
    "$chaff" "$db" "$dir/big.eml" "$dir/out" "$dir/err"; rc=$?
  check "filter, message larger than memory allows: exit 3" test "$rc" -eq 3
  check "filter, message larger than memory allows: passed on byte-identical" \
    cmp -s "$dir/big.eml" "$dir/out"
  rm -f "$dir/big.eml" "$dir/out"
else
  echo "skip: $chaff cannot start under a 120 MB memory limit"
fi

# --learn with a database this user may read but not write: scored and
# tagged, not learned. (As root, the filter runs as nobody.)
rodb=$dir/rodb
cp -a "$db" "$rodb"
chmod -R a+rX,a-w "$rodb"
chmod a+rx "$dir"
as=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null; then
  as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if { [ "$(id -u)" -ne 0 ] || [ ${#as[@]} -gt 0 ]; } &&
   "${as[@]}" "$chaff" --version > /dev/null 2>&1; then
  before=$(totals "$rodb")
  "${as[@]}" "$chaff" filter --learn --db "$rodb" < "$spam" > "$dir/out" 2> "$dir/err"; rc=$?
  check "filter --learn, read-only database: exit 0, tagged" \
    test "$rc" -eq 0 -a "$(grep -c '^X-Chaff-Verdict:' "$dir/out")" -eq 1
  check "filter --learn, read-only database: says learning is skipped" grep -q "without --learn" "$dir/err"
  check "filter --learn, read-only database: nothing learned" test "$(totals "$rodb")" = "$before"
else
  echo "skip: no other user to run $chaff as"
fi
chmod -R u+w "$rodb"

# --- config -----------------------------------------------------------------
cdb=$dir/configdb
cp -a "$db" "$cdb"
out=$("$chaff" config --db "$cdb"); rc=$?
check "config: lists the 6 parameters" test "$rc" -eq 0 -a \
  "$(cut -d' ' -f1 <<<"$out" | tr '\n' ' ')" = "robs robx min_dev ham_cutoff spam_cutoff max_tokens "
check "config get robs: the default" test "$("$chaff" config --db "$cdb" get robs)" = 0.1
"$chaff" config --db "$cdb" set robs 0.02; rc=$?
check "config set robs 0.02: exit 0" test "$rc" -eq 0
check "config get robs: 0.02" test "$("$chaff" config --db "$cdb" get robs)" = 0.02
check "config list shows it" grep -qx 'robs 0.02' <("$chaff" config --db "$cdb")
check "stats shows it" grep -Eq '^robs +0.02$' <("$chaff" stats --db "$cdb")
params=$("$chaff" config --db "$cdb")
refused() { # NAME VALUE: set must fail, say why, and change no parameter
  local rc
  "$chaff" config --db "$cdb" set "$1" "$2" > /dev/null 2> "$dir/err"; rc=$?
  [ "$rc" -ne 0 ] && [ -s "$dir/err" ] && [ "$("$chaff" config --db "$cdb")" = "$params" ]
}
check "config set spam_cutoff 2: refused, unchanged" refused spam_cutoff 2
check "config set robx 0: refused, unchanged" refused robx 0
check "config set robx 1: refused, unchanged" refused robx 1
check "config set ham_cutoff 0.995 (above spam_cutoff): refused" refused ham_cutoff 0.995
check "config set min_dev 0.5: refused, unchanged" refused min_dev 0.5
check "config set max_tokens 2.5: refused, unchanged" refused max_tokens 2.5
check "config set robs abc (not a number): refused, unchanged" refused robs abc
check "config set robs nan: refused, unchanged" refused robs nan
check "config set robs 5e-324 (a never-seen token would score 1): refused, unchanged" \
  refused robs 5e-324
check "config set robs '': refused, unchanged" refused robs ''
check "config set bogus 1: refused" refused bogus 1
check "config: nothing else changed" test "$("$chaff" config --db "$cdb" | tr '\n' ' ')" = \
  "robs 0.02 robx 0.52 min_dev 0.4 ham_cutoff 0.3 spam_cutoff 0.6 max_tokens 100 "
"$chaff" config --db "$cdb" get bogus > /dev/null 2>&1; rc=$?
check "config get bogus: fails" test "$rc" -ne 0
"$chaff" config --db "$cdb" set ham_cutoff 0.1 && "$chaff" config --db "$cdb" set spam_cutoff 0.4
"$chaff" classify --db "$cdb" "$unsure" > /dev/null; rc=$?
check "config set ham_cutoff 0.1, spam_cutoff 0.4: the unsure message is now spam" test "$rc" -eq 0
# Five stars stand for the spam cutoff however low it is set: with both
# cutoffs 0 every message is spam, a ham scoring near 0 too.
"$chaff" config --db "$cdb" set ham_cutoff 0 && "$chaff" config --db "$cdb" set spam_cutoff 0
hs=$("$chaff" classify --db "$cdb" "$ham" | cut -d' ' -f2)
"$chaff" filter --db "$cdb" < "$ham" > "$dir/out"; rc=$?
check "spam_cutoff 0: a ham scoring $hs is spam, with all 50 stars" test "$rc" -eq 0 -a \
  "$(grep -c '^X-Spam-Flag: YES' "$dir/out")" -eq 1 -a \
  "$(grep '^X-Spam-Level: ' "$dir/out" | tr -cd '*' | wc -c)" -eq 50 -a \
  "$(python3 -c "import sys; print(float(sys.argv[1]) < 0.01)" "$hs")" = True
"$chaff" config --db "$dir/nodb" set robs 0.02 > /dev/null 2>&1; rc=$?
check "config set on a missing database: fails, creates nothing" test "$rc" -ne 0 -a ! -e "$dir/nodb"
# What get prints, set takes back unchanged: in as few digits as that needs.
"$chaff" config --db "$cdb" set spam_cutoff 0.9999999 && "$chaff" config --db "$cdb" set robx 0.5234567
check "config get: 0.9999999 as set (not rounded to 1)" \
  test "$("$chaff" config --db "$cdb" get spam_cutoff)" = 0.9999999
check "config get: 0.5234567 as set" test "$("$chaff" config --db "$cdb" get robx)" = 0.5234567
check "stats --json: the same digits" grep -q '"spam_cutoff":0.9999999,' <("$chaff" stats --json --db "$cdb")
check "config get max_tokens: 100, not 1e+02" test "$("$chaff" config --db "$cdb" get max_tokens)" = 100
# Output that does not get out (a full disk, a closed pipe) is an error.
for args in "stats" "stats --json" "config" "config get robs"; do
  # shellcheck disable=SC2086
  set -- $args
  "$chaff" "$1" --db "$cdb" "${@:2}" > /dev/full 2> "$dir/err"; rc=$?
  check "$args > /dev/full: exit 3, says so" test "$rc" -eq 3 -a "$(cat "$dir/err")" = "chaff: writing output failed"
done
"$chaff" train --db "$dir/fulldb" --spam "$spam" > /dev/full 2> "$dir/err"; rc=$?
check "train with its summary going to /dev/full: exit 3" test "$rc" -eq 3

# --- digests: already trained, moved, re-delivered copies, untrain ----------
msg=$(pick spam-1 1 1)
"$chaff" train --spam --db "$db" "$msg" > "$dir/out" 2> "$dir/err"; rc=$?
check "same message, same class: exit 0" test "$rc" -eq 0
check "same message, same class: 'already trained' notice" \
  grep -q "$msg: already trained as spam, skipped" "$dir/err"
check "same message, same class: summary says 1 already known" grep -q "$(summary 0 0 0 1 0)" "$dir/out"
check "same message, same class: totals unchanged" test "$(totals "$db")" = "150 300"
"$chaff" train --spam -q --db "$db" "$msg" > /dev/null 2> "$dir/err"
check "-q: no notice" test ! -s "$dir/err"
"$chaff" train --spam --db "$db" "$(one spam-1 00450)" "$(one spam-1 00450)" > "$dir/out" 2> "$dir/err"
check "the same new message twice in one run: trained once, then already known" \
  grep -q "$(summary 1 0 0 1 0)" "$dir/out"
check "the same new message twice in one run: spam +1" test "$(totals "$db")" = "151 300"
"$chaff" untrain --spam -q --db "$db" "$(one spam-1 00450)" > /dev/null

msg=$(pick easy-ham-1 1 1)
"$chaff" train --spam --db "$db" "$msg" > "$dir/out" 2> "$dir/err"; rc=$?
check "ham message trained as spam: exit 0" test "$rc" -eq 0
check "ham message trained as spam: 'moved' notice" \
  grep -q "$msg: was trained as ham, moved to spam" "$dir/err"
check "ham message trained as spam: summary says moved" grep -q "$(summary 1 0 1 0 0)" "$dir/out"
check "ham message trained as spam: ham -1, spam +1" test "$(totals "$db")" = "151 299"
check "moved: digests unchanged (450)" grep -q '^digests *450 ' <("$chaff" stats --db "$db")

# A re-delivered copy: a relay added a Received line (after the envelope
# line, where an MTA puts it); a copy saved without the envelope line; a
# copy saved with CRLF line ends.
msg=$(pick easy-ham-1 2 2)
awk 'NR == 1 && /^From / { print; print "Received: from relay.example.org (relay.example.org [192.0.2.1]) by mx.example.net; Mon, 1 Jan 2024 00:00:00 +0000"; next }
     NR == 1 { print "Received: from relay.example.org by mx.example.net; Mon, 1 Jan 2024 00:00:00 +0000" }
     { print }' "$msg" > "$dir/received.eml"
check "(the copy really has one more Received line)" \
  test "$(grep -c '^Received:' "$dir/received.eml")" -eq "$(($(grep -c '^Received:' "$msg") + 1))"
"$chaff" train --ham --db "$db" "$dir/received.eml" > "$dir/out" 2> "$dir/err"
check "extra Received line: already trained" grep -q 'already trained as ham' "$dir/err"
check "extra Received line: totals unchanged" test "$(totals "$db")" = "151 299"
sed '1{/^From /d}' "$msg" > "$dir/noenvelope.eml"
"$chaff" train --ham --db "$db" "$dir/noenvelope.eml" > /dev/null 2> "$dir/err"
check "without the envelope line: already trained" grep -q 'already trained as ham' "$dir/err"
sed 's/$/\r/' "$msg" > "$dir/crlf-copy.eml"
"$chaff" train --ham --db "$db" "$dir/crlf-copy.eml" > /dev/null 2> "$dir/err"
check "with CRLF line ends: already trained" grep -q 'already trained as ham' "$dir/err"
# A body line "From " is stored as ">From " in a file with an envelope
# line and as ">>From " in an mboxrd mbox: one message either way.
printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: quoting\nMessage-ID: <q1@example.org>\n\nfirst\n>From here on\n' \
  > "$dir/quoted.eml"
printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: quoting\nMessage-ID: <q1@example.org>\n\nfirst\n>>From here on\n\n' \
  > "$dir/quoted.mbox"
"$chaff" train --ham --db "$db" "$dir/quoted.eml" > /dev/null 2>&1
"$chaff" train --ham --db "$db" "$dir/quoted.mbox" > /dev/null 2> "$dir/err"
check "'>From' in a file, '>>From' in an mbox: one message" grep -q 'already trained as ham' "$dir/err"
"$chaff" untrain --ham --db "$db" "$dir/quoted.eml" > /dev/null 2>&1
"$chaff" train --spam --db "$db" "$dir/received.eml" > /dev/null 2> "$dir/err"
check "extra Received line, as spam: moves the original" grep -q 'was trained as ham, moved to spam' "$dir/err"
check "extra Received line, as spam: ham -1, spam +1" test "$(totals "$db")" = "152 298"

msg=$(one spam-1 00400)
"$chaff" untrain --spam --db "$db" "$msg" > "$dir/out" 2> "$dir/err"; rc=$?
check "untrain a never-trained message: non-zero exit" test "$rc" -ne 0
check "untrain a never-trained message: refused on stderr" \
  grep -q "$msg: never trained as spam, not untrained" "$dir/err"
check "untrain a never-trained message: totals unchanged" test "$(totals "$db")" = "152 298"
"$chaff" untrain --ham --db "$db" "$(pick spam-1 2 2)" > /dev/null 2> "$dir/err"; rc=$?
check "untrain --ham of a spam-trained message: refused" test "$rc" -ne 0 -a -s "$dir/err"
check "untrain --ham of a spam-trained message: totals unchanged" test "$(totals "$db")" = "152 298"
"$chaff" untrain --spam --db "$db" "$(pick spam-1 2 2)" > "$dir/out" 2> "$dir/err"; rc=$?
check "untrain a trained message: exit 0" test "$rc" -eq 0
check "untrain a trained message: 'untrained 1 messages'" grep -q '^untrained 1 messages' "$dir/out"
check "untrain a trained message: spam -1" test "$(totals "$db")" = "151 298"
"$chaff" train --spam --untrain --db "$db" "$(pick spam-1 3 3)" > "$dir/out" 2>&1
check "train --untrain does the same" test "$(totals "$db")" = "150 298"
t0=$(tokens "$db")
"$chaff" train --spam -q --db "$db" "$msg" > /dev/null
t1=$(tokens "$db")
"$chaff" untrain --spam -q --db "$db" "$msg" > /dev/null
check "train then untrain: totals back" test "$(totals "$db")" = "150 298"
check "train then untrain: token count back ($t0 -> $t1 -> $(tokens "$db"))" \
  test "$t1" -gt "$t0" -a "$(tokens "$db")" = "$t0"

# --- where the database lives -----------------------------------------------
m=$(pick easy-ham-1 400 400)
CHAFF_DB=$dir/envdb "$chaff" train --ham -q "$m" > /dev/null
check "\$CHAFF_DB: the database is made there" test -f "$dir/envdb/data.mdb"
check "\$CHAFF_DB: stats reads it" test "$(CHAFF_DB=$dir/envdb "$chaff" stats | sed -n 's/^messages *//p')" = "0 spam, 1 ham"
check "--db wins over \$CHAFF_DB" test "$(CHAFF_DB=$dir/envdb totals "$db")" = "150 298"
mkdir -p "$dir/home"
HOME=$dir/home "$chaff" train --ham -q "$m" > /dev/null
check "no --db, no \$CHAFF_DB: \$HOME/.chaff" test -f "$dir/home/.chaff/data.mdb"
check "\$HOME/.chaff has mode 700" test "$(stat -c %a "$dir/home/.chaff")" = 700
check "\$HOME/.chaff: stats reads it" \
  grep -q "^database *$dir/home/.chaff$" <(HOME=$dir/home "$chaff" stats)
CHAFF_DB= HOME=$dir/home "$chaff" train --spam -q "$(pick spam-1 400 400)" > /dev/null
check "an empty \$CHAFF_DB counts as unset" test "$(HOME=$dir/home "$chaff" stats | sed -n 's/^messages *//p')" = "1 spam, 1 ham"
(umask 000 && "$chaff" train --ham -q --db "$dir/umaskdb" "$m" > /dev/null)
check "mode 700 whatever the umask" test "$(stat -c %a "$dir/umaskdb")" = 700
"$chaff" train --ham -q --db "$dir/no/such/parent" "$m" > /dev/null 2> "$dir/err"; rc=$?
check "database in a missing folder: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"

echo "$fails failed"
[ "$fails" -eq 0 ]
