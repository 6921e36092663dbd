#!/usr/bin/env bash
# corpora-scripts/split.py: the same seed gives the same split, another
# seed another one; the split is stratified, complete and disjoint; folds
# partition the index; --chrono keeps the index order.
set -u
. "$(dirname "$0")/../lib.sh"
split="python3 $here/corpora-scripts/split.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A synthetic index: 30 spam and 60 ham, relative paths.
for i in $(seq 1 90); do
  if [ $((i % 3)) -eq 0 ]; then echo "spam data/m$i"; else echo "ham data/m$i"; fi
done > "$tmp/index"
$split "$tmp/index" --seed 7 --out "$tmp/a" && $split "$tmp/index" --seed 7 --out "$tmp/b" &&
  $split "$tmp/index" --seed 8 --out "$tmp/c" || { echo "split.py failed"; exit 1; }
check "same seed, same split" cmp -s "$tmp/a/train.idx" "$tmp/b/train.idx"
check "same seed, same test part" cmp -s "$tmp/a/test.idx" "$tmp/b/test.idx"
check "another seed, another split" bash -c '! cmp -s "$1" "$2"' _ "$tmp/a/test.idx" "$tmp/c/test.idx"
check "2/3 of each class trains" test "$(grep -c '^spam' "$tmp/a/train.idx") $(grep -c '^ham' "$tmp/a/train.idx")" = "20 40"
check "every message once" test "$(cat "$tmp/a/train.idx" "$tmp/a/test.idx" | sort | uniq | wc -l)" -eq 90
check "paths made absolute" bash -c '! grep -qv " /" "$1"' _ "$tmp/a/test.idx"
# Pinned: the order comes from SHA-256 of the path as the index writes it,
# so it is the same on any machine and in any folder.
check "pinned first test message for seed 7" test "$(head -1 "$tmp/a/test.idx")" = "spam $tmp/data/m15"
mkdir -p "$tmp/elsewhere/deeper"
cp "$tmp/index" "$tmp/elsewhere/deeper/index"
$split "$tmp/elsewhere/deeper/index" --seed 7 --out "$tmp/e" || { echo "split.py failed"; exit 1; }
check "an index in another folder splits the same way" \
  cmp -s <(sed "s|$tmp/||" "$tmp/a/test.idx") <(sed "s|$tmp/elsewhere/deeper/||" "$tmp/e/test.idx")
# An output of split.py (absolute paths) split again, as bench/tune.py
# does, gives the same folds wherever the corpus lies.
$split "$tmp/a/train.idx" --folds 3 --seed 7 --out "$tmp/ra" &&
  $split "$tmp/e/train.idx" --folds 3 --seed 7 --out "$tmp/re" || { echo "split.py failed"; exit 1; }
check "a split of a split does not depend on the corpus's folder" \
  cmp -s <(sed "s|$tmp/||" "$tmp/ra/fold0.idx") <(sed "s|$tmp/elsewhere/deeper/||" "$tmp/re/fold0.idx")
$split "$tmp/index" --folds 4 --seed 7 --out "$tmp/f"
check "four folds partition the index" test "$(cat "$tmp"/f/fold*.idx | sort -u | wc -l)" -eq 90
check "folds are stratified" test "$(for k in 0 1 2 3; do grep -c '^spam' "$tmp/f/fold$k.idx"; done | sort -u | tr '\n' ' ')" = "7 8 "
$split "$tmp/index" --chrono --out "$tmp/t"
check "--chrono: the first 2/3 of each class train, in index order" \
  test "$(head -2 "$tmp/t/train.idx" | tr '\n' ' ')" = "ham $tmp/data/m1 ham $tmp/data/m2 "
check "--chrono: the last messages are tested" test "$(tail -1 "$tmp/t/test.idx")" = "spam $tmp/data/m90"
# A cut that falls on half a message rounds up, as chaff eval --split
# cuts: 5 of a class at 0.5 train 3.
for i in $(seq 1 10); do
  if [ $((i % 2)) -eq 0 ]; then echo "spam data/h$i"; else echo "ham data/h$i"; fi
done > "$tmp/half"
$split "$tmp/half" --ratio 0.5 --out "$tmp/h"
check "a cut on half a message rounds up (3 and 3 of 5 and 5)" \
  test "$(grep -c '^spam' "$tmp/h/train.idx") $(grep -c '^ham' "$tmp/h/train.idx")" = "3 3"
echo "$fails failed"
[ "$fails" -eq 0 ]
