#!/usr/bin/env bash
# Commands racing on one database: first trainings of a new database at
# once, a failed first training while another process has the new
# database open, a load while a trainer fills the database, and dumps
# taken while a trainer commits small batches.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
export LC_ALL=C
unset CHAFF_DB
field() { # DB NAME: a line of chaff stats, its value
  "$chaff" stats --db "$1" 2>/dev/null | sed -n "s/^$2  *//p"
}

# --- first trainings at once ---------------------------------------------------
# Eight processes each train one message into the same new database. They
# must agree on one seed (each opener that finds no metadata writes it,
# unless another has meanwhile) and every count must stay: 8 spam, and as
# many distinct tokens as training the eight one after another gives.
mapfile -t eight < <(pick spam-1 1 8)
"$chaff" train -q --spam --db "$dir/ref" "${eight[@]}" > /dev/null
ref_tokens=$(field "$dir/ref" tokens)
bad=0
for round in $(seq 30); do
  db=$dir/first$round
  for m in "${eight[@]}"; do
    "$chaff" train -q --spam --db "$db" "$m" > /dev/null 2>&1 &
  done
  wait
  got="$(field "$db" messages) / $(field "$db" tokens)"
  if [ "$got" != "8 spam, 0 ham / $ref_tokens" ]; then
    echo "round $round: $got, expected 8 spam, 0 ham / $ref_tokens"
    bad=$((bad + 1))
  fi
done
check "8 first trainings at once, 30 rounds: every count kept, one seed" test "$bad" -eq 0

# --- a failed first training beside another opener ------------------------------
# A creates the database and then reads an empty stdin (nothing to train:
# it fails and would remove the database it made); B opens the same
# database before that and trains a message after it. B's message must
# land in a database that is still there.
m2=$(pick easy-ham-1 1 1)
db=$dir/shared
( sleep 2 | "$chaff" train --spam --db "$db" > /dev/null 2> "$dir/a.err"; echo $? > "$dir/a.rc" ) &
sleep 0.7
( (sleep 3; cat "$m2") | "$chaff" train --ham --db "$db" > "$dir/b.out" 2>&1
  echo $? > "$dir/b.rc" ) &
wait
check "the failed first training exits 1" test "$(cat "$dir/a.rc")" -eq 1
check "the other training succeeds" test "$(cat "$dir/b.rc")" -eq 0
check "its message is in the database, which is still there" \
  test "$(field "$db" messages)" = "0 spam, 1 ham"
# Alone, a failed first training still leaves nothing behind.
: | "$chaff" train --spam --db "$dir/alone" > /dev/null 2>&1
check "a failed first training alone leaves no database" test ! -e "$dir/alone"

# --- the folder lock held by others ---------------------------------------------
# Anyone who can read the folder can lock it: an open waits a second at
# most, then goes on without the lock, so mail is never held up.
cp -a "$dir/ref" "$dir/held"
"$chaff" train -q --ham --db "$dir/held" "$m2" > /dev/null
flock -x "$dir/held" sleep 5 &
holder=$!
sleep 0.3
start=$(date +%s%N)
printf 'Subject: x\n\nhi\n' | "$chaff" filter --db "$dir/held" > "$dir/held.out" 2>&1; rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "filter on a folder another process keeps locked: answers, tagged, exit $rc in $ms ms" \
  test "$rc" -le 2 -a "$(grep -c '^X-Chaff-Verdict:' "$dir/held.out")" -eq 1 -a "$ms" -lt 4000
# A folder removed while a trainer waited for its lock (a failed first
# run removing the database it made) is made anew, and the training lands.
mkdir "$dir/gone"
flock -x "$dir/gone" sh -c "sleep 0.8; rmdir '$dir/gone'" &
sleep 0.2
"$chaff" train -q --ham --db "$dir/gone" "$m2" > /dev/null 2> "$dir/gone.err"; rc=$?
wait
check "a folder removed while the trainer waited: made anew, trained [exit $rc]" \
  test "$rc" -eq 0 -a "$(field "$dir/gone" messages)" = "0 spam, 1 ham"

# --- a load while a trainer fills the database ----------------------------------
pick spam-2 1001 1300 > "$dir/spam300"
"$chaff" train -q --spam --db "$dir/big" $(cat "$dir/spam300") > /dev/null
"$chaff" dump --db "$dir/big" "$dir/ref.dump"
db=$dir/loaded
# The pause comes halfway through the tokens, well past what the reader
# buffers: the loader has found the database empty and is reading the
# records.
cut=$(($(wc -l < "$dir/ref.dump") / 2))
( (head -n "$cut" "$dir/ref.dump"; sleep 3; tail -n +$((cut + 1)) "$dir/ref.dump") |
    "$chaff" load --db "$db" > /dev/null 2> "$dir/load.err"; echo $? > "$dir/load.rc" ) &
sleep 0.7
"$chaff" train -q --ham --db "$db" "$m2" > /dev/null 2>&1; rc=$?
wait
check "a training during a load succeeds" test "$rc" -eq 0
check "the load then fails, saying once that another process trained meanwhile" \
  test "$(cat "$dir/load.rc")" -eq 3 -a "$(grep -c 'trained into this one meanwhile' "$dir/load.err")" -eq 1 \
  -a "$(wc -l < "$dir/load.err")" -eq 1
check "the database holds the training alone" test "$(field "$db" messages)" = "0 spam, 1 ham"

# --- dumps while a trainer commits ----------------------------------------------
# The trainer commits 1000 spam in batches of 5 into a database that holds
# 100 ham, while dumps are taken one after another. Each dump must be one
# moment of it: the spam total equals the spam digests, the ham total the
# ham digests, and the end line's counts the lines written.
db=$dir/dumped
pick easy-ham-1 1 100 > "$dir/ham100"
"$chaff" train -q --ham --db "$db" $(cat "$dir/ham100") > /dev/null
pick spam-2 1 1000 > "$dir/spam1000"
"$chaff" train -q --spam --batch 5 --db "$db" $(cat "$dir/spam1000") > /dev/null 2>&1 &
trainer=$!
n=0
while kill -0 "$trainer" 2>/dev/null && [ "$n" -lt 100 ]; do
  "$chaff" dump --db "$db" "$dir/dump$n.txt" 2>/dev/null && n=$((n + 1))
done
wait "$trainer"
python3 - "$dir" "$n" > "$dir/dumps.out" <<'PY'
import sys
bad = mid = 0
for k in range(int(sys.argv[2])):
    head, digests, tokens, end = {}, {"spam": 0, "ham": 0}, 0, None
    for line in open(f"{sys.argv[1]}/dump{k}.txt"):
        f = line.split()
        if f[0] in ("spam", "ham"):
            head[f[0]] = int(f[1])
        elif f[0] == "digest":
            digests[f[2]] += 1
        elif f[0] == "token":
            tokens += 1
        elif line.startswith("# end"):
            end = (int(f[2]), int(f[4]))
    if head != digests or end != (tokens, digests["spam"] + digests["ham"]):
        print(f"dump {k}: totals {head}, digests {digests}, end {end}, {tokens} tokens")
        bad += 1
    mid += 0 < head.get("spam", 0) < 1000
print(mid)
print(bad)
PY
check "$n dumps during training: each one a single moment [$(head -3 "$dir/dumps.out" | tr '\n' ' ')]" \
  test "$(tail -1 "$dir/dumps.out")" = 0 -a "$n" -ge 2
# (a trainer that committed everything at once would pass that too)
check "some dumps fell between two of the trainer's commits ($(tail -2 "$dir/dumps.out" | head -1))" \
  test "$(tail -2 "$dir/dumps.out" | head -1)" -ge 1

echo "$fails failed"
[ "$fails" -eq 0 ]
