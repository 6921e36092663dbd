#!/usr/bin/env bash
# The README's Sieve rules, run by Dovecot's sieve-test with the
# sieve_extprograms plugin: vnd.dovecot.filter through `chaff filter` files
# spam into Junk and keeps ham; vnd.dovecot.execute with the exit code of
# `chaff classify` does the same without rewriting the message.
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
if ! command -v sieve-test > /dev/null; then
  echo "skip: no sieve-test (Debian package dovecot-sieve)"
  exit 77 # ctest: skipped (SKIP_RETURN_CODE), not passed
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
export LC_ALL=C
unset CHAFF_DB
mkdir -p "$dir/bin" "$dir/mail" "$dir/home" "$dir/sieve"
{ pick spam-1 1 150 | sed 's/^/spam /'; pick easy-ham-1 1 300 | sed 's/^/ham /'; } > "$dir/train.idx"
"$chaff" train -q --db "$dir/db" "$dir/train.idx" > /dev/null || { echo "training failed"; exit 1; }
cp "$chaff" "$dir/bin/chaff-bin"
# the programs Sieve may run: chaff with its database, and the README's
# two-line wrapper for execute
printf '#!/bin/sh\nexec %s/bin/chaff-bin "$@" --db %s/db\n' "$dir" "$dir" > "$dir/bin/chaff"
printf '#!/bin/sh\n%s/bin/chaff classify\n[ $? -eq 0 ]\n' "$dir" > "$dir/bin/chaff-is-spam"
chmod -R a+rX "$dir"
chmod 755 "$dir/bin/chaff" "$dir/bin/chaff-is-spam"
{
  echo "mail_location = maildir:$dir/mail"
  echo "mail_home = $dir/home"
  # as root, sieve-test gives up its privileges to mail_uid
  [ "$(id -u)" = 0 ] && { echo "mail_uid = nobody"; echo "mail_gid = nogroup"; chown -R nobody:nogroup "$dir/mail" "$dir/home" "$dir/sieve"; }
  echo "plugin {"
  echo "  sieve_plugins = sieve_extprograms"
  echo "  sieve_extensions = +vnd.dovecot.filter +vnd.dovecot.execute"
  echo "  sieve_filter_bin_dir = $dir/bin"
  echo "  sieve_execute_bin_dir = $dir/bin"
  echo "}"
} > "$dir/dovecot.conf"
# the README's scripts, as written there
printf 'require ["vnd.dovecot.filter", "fileinto"];\nfilter "chaff" ["filter"];\nif header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }\n' > "$dir/sieve/filter.sieve"
printf 'require ["vnd.dovecot.execute", "fileinto"];\nif execute :pipe "chaff-is-spam" { fileinto "Junk"; }\n' > "$dir/sieve/execute.sieve"
spam=$(pick spam-1 201 201) ham=$(pick easy-ham-1 401 401)
for script in filter execute; do
  sieve-test -c "$dir/dovecot.conf" "$dir/sieve/$script.sieve" "$spam" > "$dir/out" 2>&1
  check "Sieve $script: a spam is filed into Junk [$(grep -E 'folder|Fatal|Error' "$dir/out" | tr '\n' ' ')]" \
    grep -q 'store message in folder: Junk' "$dir/out"
  sieve-test -c "$dir/dovecot.conf" "$dir/sieve/$script.sieve" "$ham" > "$dir/out" 2>&1
  check "Sieve $script: a ham is kept in INBOX [$(grep -E 'folder|Fatal|Error' "$dir/out" | tr '\n' ' ')]" \
    bash -c 'grep -q "store message in folder: INBOX" "$1" && ! grep -q "folder: Junk" "$1"' _ "$dir/out"
done
echo "$fails failed"
[ "$fails" -eq 0 ]
