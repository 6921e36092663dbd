#!/usr/bin/env bash
# libchaff is one library: a program outside the build compiles against
# include/chaff.h and links libchaff.a with the libraries README names.
set -u
cc=$1 lib=$2 src=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../lib.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$cc" "$src/tests/lib/example.c" -I"$src/include" "$lib" -lpcre2-8 -lxxhash -lunistring -llmdb -lm \
  -o "$dir/example" 2> "$dir/err"; rc=$?
check "compiled and linked against libchaff.a alone [$(head -c 300 "$dir/err")]" test "$rc" -eq 0
out=$("$dir/example" 2>&1); rc=$?
check "runs: exit 0" test "$rc" -eq 0
check "prints hashed tokens" grep -Eq '^[0-9a-f]{16} subj:cheap$' <<<"$out"
check "  ... and url: tokens" grep -Eq '^[0-9a-f]{16} url:shop.example.com$' <<<"$out"
echo "$fails failed"
[ "$fails" -eq 0 ]
