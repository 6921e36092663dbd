#!/usr/bin/env bash
# Training killed with SIGKILL at pseudo-random moments, 25 times in a row
# on one database. Each run trains N new distinct messages in batches of
# 10; after each kill the database must open, hold exactly the batches
# committed before the kill (the totals grow by a multiple of 10, or by N
# when the run finished), and classify. The kill delays come from a fixed
# seed, as fractions (1% to 120%) of the time a first, uninterrupted run
# took, so that the kills fall all over a run on a fast disk (or tmpfs)
# and a slow one (or under the sanitizers) alike.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
export LC_ALL=C
unset CHAFF_DB
counts() { # DB: "SPAM HAM DIGESTS" as chaff stats shows them
  "$chaff" stats --db "$1" 2>/dev/null | tr '\n' ' ' |
    sed -n 's/.*messages *\([0-9]*\) spam, \([0-9]*\) ham .*digests *\([0-9]*\) .*/\1 \2 \3/p'
}

N=305         # messages per run: not a multiple of 10, so "finished" shows
ITERATIONS=25
RANDOM=42     # the kill delays are the same fractions every time

db=$dir/db
"$chaff" train -q --spam --db "$db" $(pick spam-1 1 50) > /dev/null
"$chaff" train -q --ham --db "$db" $(pick easy-ham-1 1 50) > /dev/null
mapfile -t readers < <(pick hard-ham-1 1 2; pick spam-2 1390 1390)
mapfile -t spam_src < <(pick spam-1 51 355)
mapfile -t ham_src < <(pick easy-ham-1 51 355)

# mkrun RUN FILE...: an mbox of the messages, each made new by a line
# "chaff crash test, run RUN, message K" at the end of its body.
mkrun() {
  local run=$1; shift
  awk -v run="$run" '
    function mark() { print ""; printf "chaff crash test, run %s, message %d\n\n", run, k }
    FNR == 1 { if (NR > 1) mark(); k++
               if ($0 ~ /^From /) { print; next }
               print "From chaff-test@example.com Thu Jan  1 00:00:00 2024" }
    /^>*From / { $0 = ">" $0 }
    { print }
    END { mark() }' "$@"
}

# The first run is not killed: it must train all N, and its time scales
# the kill delays.
mkrun 0 "${ham_src[@]}" > "$dir/run.mbox"
start=$(date +%s%N)
"$chaff" train --ham --batch 10 -q --db "$db" "$dir/run.mbox" > /dev/null; rc=$?
took=$((($(date +%s%N) - start) / 1000000)) # ms
read -r spam ham digests < <(counts "$db")
check "run 0, not killed: exit 0, all $N trained, in $took ms" \
  test "$rc" -eq 0 -a "$((spam + ham))" -eq $((100 + N)) -a "$digests" -eq $((100 + N))
[ "$took" -lt 20 ] && took=20

total=$((100 + N)) midrun=0 between=0
for ((run = 1; run <= ITERATIONS; run++)); do
  if ((run % 2)); then cls=spam; mkrun "$run" "${spam_src[@]}" > "$dir/run.mbox"
  else cls=ham; mkrun "$run" "${ham_src[@]}" > "$dir/run.mbox"; fi
  if [ "$run" -le 1 ]; then
    check "run $run: its mbox holds $N messages" grep -q "\"messages\":$N," \
      <("$chaff" tokens --stats --json "$dir/run.mbox")
  fi
  ms=$((took * (RANDOM % 120 + 1) / 100))
  delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  "$chaff" train --$cls --batch 10 -q --db "$db" "$dir/run.mbox" > /dev/null 2> "$dir/train.err" &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; rc=$?
  pid=
  "$chaff" stats --db "$db" > /dev/null 2> "$dir/stats.err"; src=$?
  read -r spam ham digests < <(counts "$db")
  now=$((${spam:-0} + ${ham:-0}))
  delta=$((now - total))
  if [ "$rc" -eq 0 ]; then what="finished"
  elif [ "$delta" -lt "$N" ]; then what="killed"; midrun=$((midrun + 1))
    [ "$delta" -gt 0 ] && between=$((between + 1))
  else what="killed after the last commit"; fi
  check "run $run ($cls, kill after ${delay}s, exit $rc, $what, +$delta): stats opens it" \
    test "$src" -eq 0 -a ! -s "$dir/stats.err" -a -n "${spam:-}"
  check "run $run: the trainer finished (exit 0) or died of the kill (137)" \
    test "$rc" -eq 0 -o "$rc" -eq 137
  [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] && head -5 "$dir/train.err"
  check "run $run: totals grew by whole batches of 10 or by all $N" \
    test "$delta" -ge 0 -a "$delta" -le "$N" -a \( $((delta % 10)) -eq 0 -o "$delta" -eq "$N" \)
  check "run $run: a finished run trained all $N" test "$rc" -ne 0 -o "$delta" -eq "$N"
  check "run $run: a digest per trained message" test "${digests:-x}" = "$now"
  "$chaff" classify --db "$db" "${readers[@]}" > "$dir/out" 2> "$dir/err"; rc=$?
  check "run $run: classify works" \
    test "$rc" -eq 0 -a ! -s "$dir/err" -a "$(wc -l < "$dir/out")" -eq 3
  [ -n "${spam:-}" ] && total=$now
done
check "$midrun of $ITERATIONS runs were killed part way (at least 5)" test "$midrun" -ge 5
# (a run that commits nothing until its end would pass the checks above
# with +0 at every kill: some kills must have fallen between commits)
check "$between of them had committed some batches and not others (at least 2)" \
  test "$between" -ge 2

# After all that, a run that is not killed trains everything.
mkrun final "${ham_src[@]}" > "$dir/run.mbox"
"$chaff" train --ham --batch 10 -q --db "$db" "$dir/run.mbox" > /dev/null; rc=$?
read -r spam ham digests < <(counts "$db")
now=$((spam + ham))
check "a last run, not killed: exit 0, all $N trained" test "$rc" -eq 0 -a "$((now - total))" -eq "$N"
"$chaff" dump --db "$db" > /dev/null; rc=$?
check "the database dumps whole (every record readable)" test "$rc" -eq 0

echo "$fails failed"
[ "$fails" -eq 0 ]
