#!/usr/bin/env bash
# A full disk during training: the run fails with a one-line error and exit
# 3, and the database is exactly as before (totals, tokens, scores).
set -u
chaff=$1 shim=$2
. "$(dirname "$0")/../lib.sh"
need_corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$chaff" train -q --db "$tmp/db" --spam $(ls "$corpus"/spam-1/*.txt | head -60) > /dev/null
"$chaff" train -q --db "$tmp/db" --ham $(ls "$corpus"/easy-ham-1/*.txt | head -60) > /dev/null
"$chaff" stats --db "$tmp/db" --json | sed 's/"last_train":[0-9]*,//; s/"bytes_[a-z]*":[0-9]*,//g' > "$tmp/before"
"$chaff" classify --db "$tmp/db" $(ls "$corpus"/spam-2/*.txt | head -20) > "$tmp/scores-before"

# The next training needs more pages than the disk has left.
CHAFF_TEST_ENOSPC_AFTER=4096 LD_PRELOAD="$shim" "$chaff" train -q --db "$tmp/db" \
  --spam $(ls "$corpus"/spam-2/*.txt | head -200) > /dev/null 2> "$tmp/err"
rc=$?
cat "$tmp/err"
check "full disk: exit 3" test "$rc" -eq 3
check "full disk: one clear error line" grep -q "disk is full" "$tmp/err"
check "full disk: says none of the 200 messages read was trained" \
  grep -q "none of the 200 messages read was trained" "$tmp/err"
"$chaff" stats --db "$tmp/db" --json | sed 's/"last_train":[0-9]*,//; s/"bytes_[a-z]*":[0-9]*,//g' > "$tmp/after"
check "totals and tokens unchanged" cmp -s "$tmp/before" "$tmp/after"
"$chaff" classify --db "$tmp/db" $(ls "$corpus"/spam-2/*.txt | head -20) > "$tmp/scores-after"
check "scores unchanged" cmp -s "$tmp/scores-before" "$tmp/scores-after"
# and once there is room again, the same training works
"$chaff" train -q --db "$tmp/db" --spam $(ls "$corpus"/spam-2/*.txt | head -200) > /dev/null
check "training works again with room" test $? -eq 0
# A backup that runs out of room leaves nothing behind: no half copy that
# looks like a damaged database, and the next try goes ahead.
CHAFF_TEST_ENOSPC_AFTER=20000 LD_PRELOAD="$shim" "$chaff" backup --db "$tmp/db" "$tmp/bk" \
  > /dev/null 2> "$tmp/err"; rc=$?
check "backup on a full disk: fails, exit 3 [$(tr '\n' '|' < "$tmp/err")]" test "$rc" -eq 3
check "backup on a full disk: no half copy left" test ! -e "$tmp/bk"
"$chaff" backup --db "$tmp/db" "$tmp/bk" > /dev/null 2> "$tmp/err"; rc=$?
check "backup with room again: works" test "$rc" -eq 0 -a -s "$tmp/bk/data.mdb"
mkdir "$tmp/bk2"
CHAFF_TEST_ENOSPC_AFTER=20000 LD_PRELOAD="$shim" "$chaff" backup --db "$tmp/db" "$tmp/bk2" \
  > /dev/null 2>&1
check "backup into an empty folder on a full disk: the folder stays, empty" \
  test -d "$tmp/bk2" -a -z "$(ls -A "$tmp/bk2")"
# A real full file system, where the kernel gives LMDB a short write (which
# it reports as an I/O error) rather than ENOSPC: a 3 MB tmpfs, when this
# test may mount one (root outside a locked-down container).
mnt=$tmp/small
mkdir -p "$mnt"
if mount -t tmpfs -o size=3m tmpfs "$mnt" 2> /dev/null; then
  "$chaff" train -q --db "$mnt/db" --spam "$corpus/spam.mbox" > /dev/null 2>&1
  "$chaff" stats --db "$mnt/db" --json | sed 's/"bytes_[a-z]*":[0-9]*,//g' > "$tmp/small-before"
  "$chaff" train -q --db "$mnt/db" --ham "$corpus/ham.mbox" > /dev/null 2> "$tmp/err"; rc=$?
  check "really full tmpfs: exit 3, the full disk named, then what was not trained [$(tr '\n' '|' < "$tmp/err")]" \
    test "$rc" -eq 3 -a "$(wc -l < "$tmp/err")" -eq 2 -a "$(grep -c 'disk is full' "$tmp/err")" -eq 1 \
      -a "$(grep -c 'none of the 4150 messages read was trained' "$tmp/err")" -eq 1
  "$chaff" stats --db "$mnt/db" --json | sed 's/"bytes_[a-z]*":[0-9]*,//g' > "$tmp/small-after"
  check "really full tmpfs: the database as it was" cmp -s "$tmp/small-before" "$tmp/small-after"
  umount "$mnt"
else
  echo "skip: cannot mount a tmpfs here"
fi
echo "$fails failed"
[ "$fails" -eq 0 ]
