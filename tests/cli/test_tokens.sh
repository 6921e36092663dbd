#!/usr/bin/env bash
# chaff tokens from the command line: files, stdin, mbox, gzip, folders,
# options and errors.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

printf 'Subject: Hello World\n\nbody words here\n' > "$dir/one.eml"
out=$("$chaff" tokens "$dir/one.eml")
check "file: subject token" grep -qx 'subj:hello' <<<"$out"
check "file: body token" grep -qx 'words' <<<"$out"
check "stdin gives the same tokens" test "$("$chaff" tokens < "$dir/one.eml")" = "$out"
check "'-' reads stdin" test "$("$chaff" tokens - < "$dir/one.eml")" = "$out"

gzip -c "$dir/one.eml" > "$dir/one.eml.gz"
check "gzip file" test "$("$chaff" tokens "$dir/one.eml.gz")" = "$out"
check "gzip on stdin" test "$("$chaff" tokens < "$dir/one.eml.gz")" = "$out"

{ printf 'From a@b Mon Jan 1 00:00:00 2024\nSubject: first\n\none\n>From quoted line\n\n'
  printf 'From c@d Mon Jan 1 00:00:00 2024\nSubject: second\n\ntwo\n'; } > "$dir/box.mbox"
out=$("$chaff" tokens --stats "$dir/box.mbox")
check "mbox: two messages" grep -q '^messages *2$' <<<"$out"
out=$("$chaff" tokens "$dir/box.mbox")
check "mbox: second message read" grep -qx 'subj:second' <<<"$out"
check "mbox: From line not a token" bash -c '! grep -qx "2024" <<<"$1"' _ "$out"

# An mbox of more than a megabyte is read a step at a time: a message of
# 3 MB spans many steps, and the messages around it are still found.
python3 -c '
import sys
big = ("word " * 2000 + "\n") * 300
sys.stdout.write("From a@b Mon Jan 1 00:00:00 2024\nSubject: before\n\nx\n\n"
                 "From a@b Mon Jan 1 00:00:00 2024\nSubject: big\n\n" + big + "\n"
                 "From a@b Mon Jan 1 00:00:00 2024\nSubject: after\n\ny\n")' > "$dir/big.mbox"
out=$("$chaff" tokens --stats "$dir/big.mbox")
check "large mbox: three messages" grep -q '^messages *3$' <<<"$out"
check "large mbox: the message after the big one" grep -qx 'subj:after' \
  <<<"$("$chaff" tokens "$dir/big.mbox")"
# A file given as stdin is read from where the shell left it: here after
# the first message's lines, so the next two messages remain.
out=$({ for i in 1 2 3 4 5; do read -r l; done; "$chaff" tokens --stats -; echo "exit $?"; } \
  < "$dir/big.mbox" 2>&1)
check "stdin file read from its position: two messages, exit 0 [$(tail -c 300 <<<"$out")]" \
  bash -c 'grep -q "^messages *2$" <<<"$1" && grep -qx "exit 0" <<<"$1"' _ "$out"

mkdir -p "$dir/md/cur" "$dir/md/new" "$dir/md/tmp"
cp "$dir/one.eml" "$dir/md/cur/1"; cp "$dir/one.eml" "$dir/md/new/2"; cp "$dir/one.eml" "$dir/md/tmp/3"
out=$("$chaff" tokens --stats --json "$dir/md")
check "maildir: cur and new, not tmp" grep -q '"messages":2,' <<<"$out"

out=$("$chaff" tokens --stats --top 0 "$dir/md"); rc=$?
check "--stats --top 0: no common tokens, exit 0 [exit $rc]" \
  bash -c '[ "$1" -eq 0 ] && grep -q "^messages *2$" <<<"$2" && ! grep -q "most common" <<<"$2"' \
  _ "$rc" "$out"
check "--stats (top 20): the common tokens listed" \
  grep -q "most common" <<<"$("$chaff" tokens --stats "$dir/md")"
for opts in "--stats -q" "--stats --hash" "-q --hash" "--json" "--top 5"; do
  "$chaff" tokens $opts "$dir/one.eml" > "$dir/out" 2> "$dir/err"; rc=$?
  check "tokens $opts: refused, not ignored [exit $rc]" \
    test "$rc" -eq 4 -a ! -s "$dir/out" -a "$(wc -l < "$dir/err")" -eq 1
done

out=$("$chaff" tokens --hash "$dir/one.eml" | head -1)
check "--hash prints 16 hex digits first" grep -Eq '^[0-9a-f]{16} ' <<<"$out"

# Without --hash a message's tokens are copied in runs, their NULs made
# line ends; with it, one by one. Both print the same tokens, also where
# header values hold NULs (their tokens hold '?' in their place) and over
# every golden message with word pairs (long runs).
printf 'Subject: he\000llo there\nMessage-ID: <x@a\000b.com>\nContent-Type: text/pl\000ain\n\nsome te\000xt words\n' > "$dir/nul.eml"
for args in "$dir/nul.eml" "--pairs $(dirname "$0")/../messages"; do
  # shellcheck disable=SC2086
  check "runs and token by token print the same lines ($(basename "${args##* }"))" \
    cmp -s <("$chaff" tokens $args) <("$chaff" tokens --hash $args | cut -c18-)
done
check "a NUL in a header's value is '?' in its token" grep -qx 'msgid:a?b\.com' <("$chaff" tokens "$dir/nul.eml")

printf 'Subject: s\n\nbuy cheap pills\n' > "$dir/p.eml"
check "--pairs adds pairs" grep -qx 'buy 2 pills' <<<"$("$chaff" tokens --pairs "$dir/p.eml")"

"$chaff" tokens "$dir/missing.eml" > /dev/null 2> "$dir/err"; rc=$?
check "missing file: exit 3" test "$rc" -eq 3
check "missing file: message names it" grep -q 'missing.eml: No such file' "$dir/err"
"$chaff" tokens "$dir/missing.eml" "$dir/one.eml" > "$dir/out" 2>/dev/null
check "missing file: the others are still read" grep -qx 'subj:hello' "$dir/out"
printf '\037\213garbage' > "$dir/bad.gz"
"$chaff" tokens "$dir/bad.gz" > /dev/null 2> "$dir/err"; rc=$?
check "corrupt gzip: exit 3 with a message" test "$rc" -eq 3 -a -s "$dir/err"
"$chaff" tokens --top x > /dev/null 2>&1; rc=$?
check "bad option value: usage exit 4" test "$rc" -eq 4
"$chaff" frobnicate > /dev/null 2>&1; rc=$?
check "unknown command: exit 4" test "$rc" -eq 4
check "--help works" "$chaff" tokens --help > /dev/null

# Many files in one folder are read ahead, 32 at a time. Whatever is not
# plainly a whole small file (missing, a folder, empty, gzip, larger than
# the 64 KB a file is read ahead into, /dev/null) is read again one by one:
# over an index, every file gives what it gives on its own, in order.
mkdir -p "$dir/many"
python3 - "$dir/many" <<'PY'
import gzip, os, sys
d = sys.argv[1]
def msg(i, size=0):
    body = f"Subject: number{i}\n\nword{i} text\n".encode()
    return body + b"x" * max(0, size - len(body))
for i in range(40):
    open(os.path.join(d, f"m{i:02d}"), "wb").write(msg(i))
open(os.path.join(d, "m05"), "wb").write(b"")
open(os.path.join(d, "m07"), "wb").write(gzip.compress(msg(7)))
open(os.path.join(d, "m09"), "wb").write(msg(9, 65536))
open(os.path.join(d, "m10"), "wb").write(msg(10, 65537))
open(os.path.join(d, "m11"), "wb").write(msg(11, 200000))
open(os.path.join(d, "m12"), "wb").write(b"From a@b Mon Jan 1 00:00:00 2024\nSubject: boxa\n\na\n\n"
                                        b"From a@b Mon Jan 1 00:00:00 2024\nSubject: boxb\n\nb\n")
PY
rm "$dir/many/m20" "$dir/many/m30"; mkdir "$dir/many/m30"
: > "$dir/many.idx"; : > "$dir/many.expect"
for i in $(seq -w 0 39); do
  f="$dir/many/m$i"
  echo "ham $f" >> "$dir/many.idx"
  [ -f "$f" ] && "$chaff" tokens "$f" >> "$dir/many.expect" 2>/dev/null
done
# Devices and FIFOs are never read ahead: each is refused as before, and
# nothing waits on them. One FIFO's writer never writes; the other's
# writes once and is gone, so a second open of it would wait for ever.
mkfifo "$dir/many/m40" "$dir/many/m41"
sleep 30 > "$dir/many/m40" &
writer=$!
printf 'Subject: f\n\nx\n' > "$dir/many/m41" &
printf 'ham %s\n' "$dir/many/m40" "$dir/many/m41" /dev/null /dev/zero >> "$dir/many.idx"
timeout 20 "$chaff" tokens "$dir/many.idx" > "$dir/many.out" 2> "$dir/many.err"; rc=$?
check "files read ahead: the tokens of each file, in order" cmp -s "$dir/many.expect" "$dir/many.out"
check "files read ahead: exit 3 for the unreadable ones" test "$rc" -eq 3
check "files read ahead: the missing file is named" grep -q 'm20: No such file' "$dir/many.err"
check "files read ahead: the folder is refused" grep -q 'm30: not a regular file' "$dir/many.err"
check "files read ahead: /dev/null is refused" grep -q '/dev/null: not a regular file' "$dir/many.err"
check "files read ahead: /dev/zero is refused" grep -q '/dev/zero: not a regular file' "$dir/many.err"
check "files read ahead: the FIFOs are refused" \
  bash -c 'grep -q "m40: not a regular file" "$1" && grep -q "m41: not a regular file" "$1"' _ "$dir/many.err"
check "files read ahead: six errors, no more" test "$(wc -l < "$dir/many.err")" -eq 6
printf 'Subject: f\n\nx\n' > "$dir/many/m41" &
out=$(timeout 20 "$chaff" tokens --stats "$dir/many.idx" 2>/dev/null)
check "files read ahead: 39 messages (an mbox of two, two files unreadable)" \
  grep -q '^messages *39$' <<<"$out"
kill "$writer" 2>/dev/null

# A large mbox is streamed: cut short by another program while chaff reads
# it (chaff waits on a full pipe meanwhile), it says so and exits 3 instead
# of passing the half message at the cut on as a whole one.
if [ -f "$corpus/spam.mbox" ]; then
  cat "$corpus/spam.mbox" "$corpus/ham.mbox" > "$dir/cut.mbox"
  { "$chaff" tokens "$dir/cut.mbox"; echo "exit $?" > "$dir/cut.rc"; } 2> "$dir/err" |
    { sleep 1; truncate -s 100000 "$dir/cut.mbox"; cat > /dev/null; }
  check "mbox cut short while read: exit 3 [$(cat "$dir/cut.rc") $(head -c 200 "$dir/err")]" \
    grep -qx 'exit 3' "$dir/cut.rc"
  check "mbox cut short while read: says so" grep -q 'cut short while being read' "$dir/err"
else
  echo "skip: no $corpus/spam.mbox, so no mbox cut short while read"
fi

# 200,000 short folded headers (2 MB): each unfolded header costs its own
# length, not the 16 KB the header limit allows, so the message tokenizes
# within a 300 MB address space (it once took 800 MB). Sanitizer builds
# cannot start under such a limit and skip this.
python3 -c "import sys; sys.stdout.write('Subject: hello\n' + 'X-A: a\n b\n' * 200000 + '\nbody\n')" \
  > "$dir/folded.eml"
if prlimit --as=300000000 "$chaff" --version > /dev/null 2>&1; then
  prlimit --as=300000000 "$chaff" tokens "$dir/folded.eml" > "$dir/out" 2> "$dir/err"; rc=$?
  check "200,000 folded headers within 300 MB [exit $rc $(head -c 160 "$dir/err")]" \
    test "$rc" -eq 0 -a ! -s "$dir/err"
  check "200,000 folded headers: the Subject is read" \
    grep -qx 'subj:hello' "$dir/out"
else
  echo "skip: $chaff cannot start under a 300 MB address-space limit"
fi

# Index recognition: a message whose text starts like an index line is a
# message; an index whose first file is missing is still an index (its
# second line says so) and the missing file is named.
# text is written to file, which is then read: as a message holding the
# token word, or as an index of missing files that names the first.
read_as_message() { # text file word description
  printf "%b" "$1" > "$dir/$2"
  "$chaff" tokens "$dir/$2" > "$dir/out" 2> "$dir/err"; rc=$?
  check "$4 [exit $rc $(head -c 120 "$dir/err")]" \
    test "$rc" -eq 0 -a "$(grep -cx "$3" "$dir/out")" -eq 1
}
read_as_index() { # text file missing-name description
  printf "%b" "$1" > "$dir/$2"
  "$chaff" tokens "$dir/$2" > /dev/null 2> "$dir/err"; rc=$?
  check "$4" test "$rc" -eq 3 -a "$(grep -c "$3" "$dir/err")" -eq 1
}
read_as_message 'ham sandwich recipe\n\nbread and cheese\n' sandwich.txt cheese \
  "a message starting 'ham sandwich' is a message"
read_as_message 'spam is bad\nreally bad\n' spamis.txt really \
  "a message starting 'spam is bad' is a message"
read_as_index 'spam gone-0.eml\n' gone1.idx gone-0.eml \
  "a one-line index of a missing file is an index: exit 3 naming it"
read_as_index 'spam gone-0.eml\n\n\nham gone-3.eml\n' gone2.idx gone-0.eml \
  "an index with blank lines after a missing first file: still an index"
read_as_message 'ham sandwich recipe\n' sandwich1.txt recipe \
  "a one-line message 'ham sandwich recipe' is a message"
read_as_index 'spam gone-1.eml\nham gone-2.eml\n' gone.idx gone-1.eml \
  "an index of missing files is an index: exit 3 naming them"
read_as_index 'spam cur/1700000000.M1P2.host:2,S\nham gone-4.eml\n' gonemd.idx \
  '1700000000.M1P2.host:2,S' \
  "an index whose first file, a Maildir name with a colon, is missing: still an index"
read_as_index 'spam cur/1700000000.M1P3.host:2,S\n' gonemd1.idx '1700000000.M1P3.host:2,S' \
  "a one-line index of a missing Maildir file is an index"
read_as_message 'Spam : yes\nSpam : no\n\nold syntax\n' oldsyntax.txt syntax \
  "a message starting with 'Spam : yes' header lines is a message"
# A FIFO is refused at once as not a regular file, not waited on.
mkfifo "$dir/fifo"
timeout 10 "$chaff" tokens "$dir/fifo" > /dev/null 2> "$dir/err"; rc=$?
check "a FIFO is refused, not waited on [exit $rc $(head -c 120 "$dir/err")]" \
  test "$rc" -eq 3 -a "$(grep -c 'not a regular file' "$dir/err")" -eq 1

echo "$fails failed"
[ "$fails" -eq 0 ]
