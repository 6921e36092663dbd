#!/usr/bin/env bash
# Several processes on one database: four loops classify, a fifth
# classifies 100 messages at a time (from a copy of the database in
# memory), and one reads the totals, while a trainer commits batches of 20;
# a second trainer started during the first waits for the writer lock and
# succeeds. Readers never fail and never see half a batch; the final
# totals are the sum of both trainings.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
export LC_ALL=C
unset CHAFF_DB
totals() {
  "$chaff" stats --db "$1" 2>/dev/null |
    sed -n 's/^messages *\([0-9]*\) spam, \([0-9]*\) ham$/\1 \2/p'
}

db=$dir/db
{ pick spam-1 1 100 | sed 's/^/spam /'; pick easy-ham-1 1 100 | sed 's/^/ham /'; } > "$dir/initial"
# The first trainer: 1000 spam, 1500 ham; the second: 300 spam, 700 ham.
# No message is in two sets, and the corpus has no duplicate messages.
{ pick spam-1 101 500; pick spam-2 1 600; } | sed 's/^/spam /' > "$dir/a"
pick easy-ham-1 101 1600 | sed 's/^/ham /' >> "$dir/a"
pick spam-2 601 900 | sed 's/^/spam /' > "$dir/b"
pick easy-ham-2 1 700 | sed 's/^/ham /' >> "$dir/b"
# Messages in none of the sets, for the readers.
mapfile -t msgs < <(pick hard-ham-1 1 1; pick spam-2 1390 1390; pick easy-ham-2 1400 1400)

"$chaff" train -q --db "$db" "$dir/initial" > /dev/null; rc=$?
check "initial training: 100 spam, 100 ham" test "$rc" -eq 0 -a "$(totals "$db")" = "100 100"
"$chaff" dump --db "$db" "$dir/initial.dump" # the seed too, for the comparison at the end

# classify_loop N: classify the messages again and again while training
# goes on (at least 10 times, at most 400); every failure is logged.
classify_loop() {
  local n=$1 i rc
  for ((i = 1; i <= 400; i++)); do
    [ "$i" -gt 10 ] && [ -e "$dir/done" ] && break
    "$chaff" classify --db "$db" "${msgs[@]}" > "$dir/c$n.out" 2> "$dir/c$n.err"; rc=$?
    if [ "$rc" -gt 2 ] || [ -s "$dir/c$n.err" ] || [ "$(wc -l < "$dir/c$n.out")" -ne 3 ]; then
      { echo "run $i: exit $rc"; cat "$dir/c$n.err"; } >> "$dir/c$n.fail"
    fi
    echo "$i" > "$dir/c$n.runs"
  done
}
# snapshot_loop: 100 messages at a time, enough that classify copies the
# database into memory first (more than a chunk of 64), while it changes.
mapfile -t many < <(pick hard-ham-1 1 100)
snapshot_loop() {
  local i rc
  for ((i = 1; i <= 200; i++)); do
    [ "$i" -gt 5 ] && [ -e "$dir/done" ] && break
    "$chaff" classify --db "$db" "${many[@]}" > "$dir/c5.out" 2> "$dir/c5.err"; rc=$?
    if [ "$rc" -ne 0 ] || [ -s "$dir/c5.err" ] || [ "$(wc -l < "$dir/c5.out")" -ne 100 ]; then
      { echo "run $i: exit $rc"; cat "$dir/c5.err"; } >> "$dir/c5.fail"
    fi
    echo "$i" > "$dir/c5.runs"
  done
}
# stats_loop: the totals a reader sees grow by whole batches of 20.
stats_loop() {
  local i last=200 s h t
  for ((i = 1; i <= 2000; i++)); do
    [ "$i" -gt 10 ] && [ -e "$dir/done" ] && break
    read -r s h < <(totals "$db")
    t=$((${s:-0} + ${h:-0}))
    if [ -z "${s:-}" ] || [ "$t" -lt "$last" ] || [ $(((t - 200) % 20)) -ne 0 ]; then
      echo "read $i: '$s $h' after a total of $last" >> "$dir/stats.fail"
    fi
    last=$t
    echo "$i" > "$dir/stats.runs"
  done
}

"$chaff" train --batch 20 -q --db "$db" "$dir/a" > "$dir/a.out" 2> "$dir/a.err" &
pa=$!; pids+=("$pa")
for n in 1 2 3 4; do classify_loop "$n" & pids+=($!); done
snapshot_loop & pids+=($!)
stats_loop & pids+=($!)
# Start the second trainer once the first has committed a batch.
for ((i = 0; i < 2000; i++)); do
  read -r s h < <(totals "$db")
  [ $((${s:-0} + ${h:-0})) -gt 200 ] && break
  sleep 0.01
done
kill -0 "$pa" 2>/dev/null; a_running=$?
"$chaff" train --batch 20 -q --db "$db" "$dir/b" > "$dir/b.out" 2> "$dir/b.err" &
pb=$!; pids+=("$pb")
# A backup taken while both train: a consistent copy at a batch boundary.
"$chaff" backup --db "$db" "$dir/bk" > /dev/null 2> "$dir/bk.err"; rcbk=$?
kill -0 "$pa" 2>/dev/null || kill -0 "$pb" 2>/dev/null; bk_running=$?
wait "$pa"; rca=$?
wait "$pb"; rcb=$?
touch "$dir/done"
wait
pids=()

check "the second trainer started while the first was running" test "$a_running" -eq 0
check "first trainer: exit 0, no errors" test "$rca" -eq 0 -a ! -s "$dir/a.err"
check "first trainer: 1000 spam and 1500 ham" \
  grep -q '^trained 1000 spam and 1500 ham (0 moved from the other class); 0 already known' "$dir/a.out"
check "second trainer: exit 0, no errors" test "$rcb" -eq 0 -a ! -s "$dir/b.err"
check "second trainer: 300 spam and 700 ham" \
  grep -q '^trained 300 spam and 700 ham (0 moved from the other class); 0 already known' "$dir/b.out"
for n in 1 2 3 4; do
  check "classify loop $n: $(cat "$dir/c$n.runs" 2>/dev/null) runs, every one exit 0-2, no error output" \
    test -s "$dir/c$n.runs" -a ! -e "$dir/c$n.fail"
  [ -e "$dir/c$n.fail" ] && head -5 "$dir/c$n.fail"
done
check "classify 100 at a time (a copy of the database): $(cat "$dir/c5.runs" 2>/dev/null) runs, all exit 0, 100 lines, no error output" \
  test -s "$dir/c5.runs" -a ! -e "$dir/c5.fail"
[ -e "$dir/c5.fail" ] && head -5 "$dir/c5.fail"
check "stats loop: $(cat "$dir/stats.runs" 2>/dev/null) reads, totals only ever grew by whole batches" \
  test -s "$dir/stats.runs" -a ! -e "$dir/stats.fail"
[ -e "$dir/stats.fail" ] && head -5 "$dir/stats.fail"
read -r s h < <(totals "$dir/bk")
check "backup during training (still training after it: $([ $bk_running = 0 ] && echo yes || echo no)): exit 0, $s spam + $h ham = 200 + whole batches" \
  test "$rcbk" -eq 0 -a ! -s "$dir/bk.err" -a -n "${s:-}" -a $(((${s:-0} + ${h:-0} - 200) % 20)) -eq 0
"$chaff" classify --db "$dir/bk" "${msgs[@]}" > /dev/null 2>&1; rc=$?
check "the backup classifies" test "$rc" -eq 0
check "the backup has a digest per message" \
  grep -q "^digests *$((${s:-0} + ${h:-0})) " <("$chaff" stats --db "$dir/bk")
check "final totals: 100+1000+300 spam, 100+1500+700 ham" test "$(totals "$db")" = "1400 2300"
check "final digests: 3700" grep -q '^digests *3700 ' <("$chaff" stats --db "$db")
"$chaff" classify --db "$db" "${msgs[@]}" > /dev/null; rc=$?
check "classify afterwards: exit 0" test "$rc" -eq 0
# The same trainings into one database, one after the other, give the
# same token counts: concurrent batches lost no update.
"$chaff" load --db "$dir/serial" "$dir/initial.dump" > /dev/null
"$chaff" train -q --db "$dir/serial" "$dir/a" > /dev/null
"$chaff" train -q --db "$dir/serial" "$dir/b" > /dev/null
check "token records equal those of the same trainings run one after the other" \
  cmp -s <("$chaff" dump --db "$db" | awk '$1 == "token" { print $2, $3, $4 }' | sort) \
         <("$chaff" dump --db "$dir/serial" | awk '$1 == "token" { print $2, $3, $4 }' | sort)

echo "$fails failed"
[ "$fails" -eq 0 ]
