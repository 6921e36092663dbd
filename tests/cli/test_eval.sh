#!/usr/bin/env bash
# chaff eval on a small corpus taken from the SpamAssassin one: the three
# modes, the results file and its agreement with the report, the ROC
# picture, --json, errors, and that no database is left anywhere.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# 60 spam and 120 ham, copied beside the index (relative paths), in a fixed
# interleaved order: ham, ham, spam, ...
mkdir -p "$dir/c/spam" "$dir/c/ham"
grep '^spam ' "$corpus/index" | head -60 | cut -d' ' -f2- > "$dir/spam.list"
grep '^ham ' "$corpus/index" | head -120 | cut -d' ' -f2- > "$dir/ham.list"
i=0
while read -r p; do cp "$corpus/$p" "$dir/c/spam/$i"; i=$((i + 1)); done < "$dir/spam.list"
i=0
while read -r p; do cp "$corpus/$p" "$dir/c/ham/$i"; i=$((i + 1)); done < "$dir/ham.list"
for i in $(seq 0 59); do
  printf 'ham ham/%d\nham ham/%d\nspam spam/%d\n' $((2 * i)) $((2 * i + 1)) "$i"
done > "$dir/c/index"

export HOME=$dir/home CHAFF_DB=
mkdir -p "$HOME"

# Results lines: PATH JUDGMENT SCORE TRUTH, one per scored message; SCORE
# is the score's logit, any real number.
results_ok() { # file, expected lines
  awk -v want="$2" '
    NF != 4 || ($2 != "spam" && $2 != "ham") || ($4 != "spam" && $4 != "ham") ||
    $3 !~ /^-?[0-9.e+-]+$/ { bad = 1 }
    END { exit !(NR == want && !bad) }' "$1"
}
svg_ok() {
  python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$1" &&
    grep -Eq '<(polyline|path) ' "$1"
}
# (1-ROCA)% recomputed from a results file, ties counting half.
roca_from() {
  python3 - "$1" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
spam = [float(r[2]) for r in rows if r[3] == "spam"]
ham = [float(r[2]) for r in rows if r[3] == "ham"]
wrong = sum((h > s) + 0.5 * (h == s) for s in spam for h in ham)
print(f"{100 * wrong / (len(spam) * len(ham)):.4f}")
PY
}

out=$("$chaff" eval --online --results "$dir/online.txt" --roc "$dir/online.svg" "$dir/c/index")
rc=$?
check "online: exit 0" test "$rc" -eq 0
check "online: 180 messages, 60 spam, 120 ham" grep -q '^messages *180 scored (60 spam, 120 ham)$' <<<"$out"
check "online: reports (1-ROCA)% and lam%" grep -Eq '^lam% +[0-9.]+ ' <<<"$out"
check "online: results, one line per message" results_ok "$dir/online.txt" 180
check "online: results in index order" test "$(head -1 "$dir/online.txt" | cut -d' ' -f1)" = "$dir/c/ham/0"
check "online: first messages unscored count as 0.5 (logit 0)" test "$(head -1 "$dir/online.txt" | cut -d' ' -f3)" = 0
reported=$(sed -n 's/^(1-ROCA)% *//p' <<<"$out")
check "online: (1-ROCA)% agrees with the results file" test "$reported" = "$(roca_from "$dir/online.txt")"
check "online: ROC picture is well-formed SVG with a curve" svg_ok "$dir/online.svg"
check "online: the ROC picture's title gives (1-ROCA)%" grep -q "(1-ROCA)% = $reported" "$dir/online.svg"
check "online: no database left in HOME" test ! -e "$HOME/.chaff"

out=$("$chaff" eval --split 0.5 --results "$dir/split.txt" --roc "$dir/split.svg" "$dir/c/index")
check "split: exit 0, half of each class scored" grep -q '^messages *90 scored (30 spam, 60 ham)$' <<<"$out"
check "split: results for the scored half only" results_ok "$dir/split.txt" 90
check "split: the first half of each class trained" bash -c '! grep -q "^$1/c/spam/[0-9] \|^$1/c/spam/[12][0-9] " "$2"' _ "$dir" "$dir/split.txt"
check "split: ROC picture" svg_ok "$dir/split.svg"

json=$("$chaff" eval --folds 3 --json --results "$dir/folds.txt" --roc "$dir/folds.svg" "$dir/c/index")
check "folds: --json parses" python3 -c 'import json,sys; d = json.loads(sys.argv[1]); assert d["mode"] == "folds" and d["folds"] == 3 and d["messages"] == 180 and d["spam"] == 60' "$json"
check "folds: every message scored once" results_ok "$dir/folds.txt" 180
check "folds: ranks far better than chance" python3 -c 'import json,sys; assert json.loads(sys.argv[1])["one_minus_roca_pct"] < 10' "$json"
check "folds: ROC picture" svg_ok "$dir/folds.svg"
# score >= 0.6 (the default spam_cutoff) exactly when its logit >= ln(1.5)
check "folds: judgments follow spam_cutoff" awk '($3 >= 0.4054651081) != ($2 == "spam") { exit 1 }' "$dir/folds.txt"

json=$("$chaff" eval --online --train-on error --json --set spam_cutoff=0.9 "$dir/c/index")
check "train-on error: fewer trained than scored" python3 -c 'import json,sys; d = json.loads(sys.argv[1]); assert d["trained"] < d["messages"] and d["train_on"] == "error" and d["spam_cutoff"] == 0.9' "$json"
json=$("$chaff" eval --online --train-on unsure --json "$dir/c/index")
check "train-on unsure: trains exactly the misclassified and unsure messages" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["train_on"] == "unsure" and d["trained"] < d["messages"]
assert d["trained"] == d["false_positives"] + d["false_negatives"] + d["unsure"]["all"]' "$json"

"$chaff" eval --folds 2 --db "$dir/kept" "$dir/c/index" > /dev/null
check "--db with --folds keeps one database per fold" test -d "$dir/kept/fold-1" -a -d "$dir/kept/fold-2"
"$chaff" eval --db "$dir/kept/fold-1" "$dir/c/index" > /dev/null 2> "$dir/err"; rc=$?
check "--db refuses a trained database: exit 3" test "$rc" -eq 3
check "--db refuses a trained database: says why" grep -q 'already holds trained messages' "$dir/err"
check "no database left in HOME after all runs" test ! -e "$HOME/.chaff"

"$chaff" eval "$dir/missing.idx" > /dev/null 2> "$dir/err"; rc=$?
check "missing index: exit 3" test "$rc" -eq 3
check "missing index: message names it" grep -q 'missing.idx' "$dir/err"
grep '^ham ' "$dir/c/index" > "$dir/c/hamonly.idx"
"$chaff" eval "$dir/c/hamonly.idx" > /dev/null 2> "$dir/err"; rc=$?
check "index without spam: exit 3" test "$rc" -eq 3 -a -s "$dir/err"
: > "$dir/c/empty.idx"
"$chaff" eval "$dir/c/empty.idx" > /dev/null 2>&1; rc=$?
check "empty index: exit 3" test "$rc" -eq 3
"$chaff" eval "$dir/c/ham/0" > /dev/null 2> "$dir/err"; rc=$?
check "a message, not an index: exit 3" test "$rc" -eq 3
"$chaff" eval --split 1.5 "$dir/c/index" > /dev/null 2>&1; rc=$?
check "bad --split: usage exit 4" test "$rc" -eq 4
"$chaff" eval --folds 3 --split 0.5 "$dir/c/index" > /dev/null 2>&1; rc=$?
check "two modes: usage exit 4" test "$rc" -eq 4
"$chaff" eval --folds 3 --train-on error "$dir/c/index" > /dev/null 2>&1; rc=$?
check "--train-on without --online: usage exit 4" test "$rc" -eq 4
"$chaff" eval > /dev/null 2>&1; rc=$?
check "no index: usage exit 4" test "$rc" -eq 4
"$chaff" eval --set nosuch=1 "$dir/c/index" > /dev/null 2>&1; rc=$?
check "unknown --set name: usage exit 4" test "$rc" -eq 4
check "--help works" "$chaff" eval --help > /dev/null

echo "$fails failed"
[ "$fails" -eq 0 ]
