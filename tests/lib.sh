# Shared by the shell tests (sourced): the source tree, the corpus, and a
# check helper that counts failures.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
corpus=${CHAFF_CORPUS:-$here/corpora/spamassassin}
fails=0

# Stops the test when the SpamAssassin corpus has not been fetched.
need_corpus() {
  [ -f "$corpus/index" ] && return 0
  echo "no corpus in $corpus: run corpora-scripts/fetch-spamassassin.sh first"
  exit 1
}

# pick GROUP FIRST LAST: the corpus files FIRST..LAST (1-based, name order)
pick() { ls "$corpus/$1" | sed -n "$2,$3p" | sed "s|^|$corpus/$1/|"; }

check() { # description, then a command that must succeed
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
