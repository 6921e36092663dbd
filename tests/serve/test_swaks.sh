#!/usr/bin/env bash
# chaff serve driven by swaks (a real SMTP client): a plain send, a
# pipelined send (--pipeline) to two recipients, a corpus spam sent as the
# message (quarantined), a relay attempt (refused, nothing delivered), and
# LMTP (--protocol LMTP, one reply per recipient). Delivery into a Maildir,
# so no next hop is needed.
#   test_swaks.sh PATH/TO/chaff        (needs swaks: apt-get install -y swaks)
set -u
chaff=$1
. "$(dirname "$0")/../lib.sh"
need_corpus
command -v swaks > /dev/null || { echo "FAIL swaks not installed (apt-get install -y swaks)"; exit 1; }
export LC_ALL=C
dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2> /dev/null; then kill -TERM "$p"; wait "$p" 2> /dev/null; fi
  done
  [ -n "${KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start NAME ARGS...: chaff serve on a free port in the background; sets $port
start() {
  local name=$1 i; shift
  port=$(freeport)
  "$chaff" serve --db "$dir/db" --listen "127.0.0.1:$port" "$@" 2> "$dir/$name.err" &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && return 0
    kill -0 "${pids[-1]}" 2> /dev/null || break
    sleep 0.1
  done
  echo "FAIL chaff serve $* did not start: $(cat "$dir/$name.err")"
  exit 1
}
count() { ls "$1" 2> /dev/null | wc -l; }
sw() { swaks --server 127.0.0.1 --port "$port" --helo client.test --from sender@example.com "$@"; }
# The test's own short messages carry a fixed Date and Message-Id: swaks's
# defaults (today's weekday, this machine's name) are tokens, and with this
# small training one of them alone can tip a message of three words to spam.
fixed=(--header "Date: Mon, 30 Nov 2026 12:00:00 +0000" --header "Message-Id: <swaks.test@client.test>")

"$chaff" train --spam -q --db "$dir/db" $(pick spam-1 1 100) > /dev/null
"$chaff" train --ham -q --db "$dir/db" $(pick easy-ham-1 1 100) > /dev/null
# and one ham of the shape this test sends, as a user's own mail would be
swaks --dump-mail --to bob@example.org --from sender@example.com "${fixed[@]}" --header "Subject: a note" \
  --body "A short note from the test." 2> /dev/null | "$chaff" train --ham -q --db "$dir/db" > /dev/null

start smtp --maildir "$dir/md" --on-spam quarantine --quarantine "$dir/q" --domains example.org
smtp_pid=${pids[-1]}

# --- plain send --------------------------------------------------------------
sw "${fixed[@]}" --to bob@example.org --header "Subject: swaks plain send" --body "Hello from swaks." > "$dir/out" 2>&1; rc=$?
check "plain send: swaks exit 0" test "$rc" -eq 0
check "plain send: 250 2.0.0 after the dot" grep -q '^<-  250 2\.0\.0 ' "$dir/out"
check "plain send: one file in the Maildir's new/" test "$(count "$dir/md/new")" -eq 1
f=$(ls -d "$dir"/md/new/* 2> /dev/null | head -1)
check "plain send: the file has the subject and the body" \
  bash -c 'grep -q "^Subject: swaks plain send$" "$1" && grep -q "^Hello from swaks\.$" "$1"' _ "$f"
check "plain send: X-Chaff-Score, X-Chaff-Verdict, X-Spam-Status added" \
  bash -c 'grep -Eq "^X-Chaff-Score: [01]\.[0-9]{6}$" "$1" && grep -Eq "^X-Chaff-Verdict: (spam|ham|unsure)$" "$1" &&
           grep -q "^X-Spam-Status: " "$1"' _ "$f"
check "plain send: nothing left in tmp/" test "$(count "$dir/md/tmp")" -eq 0

# --- pipelining --------------------------------------------------------------
sw "${fixed[@]}" --pipeline --to one@example.org,two@sub.example.org --header "Subject: swaks pipelined" \
  --body "Pipelined." > "$dir/out" 2>&1; rc=$?
check "pipelining: PIPELINING advertised" grep -q '^<-  250-PIPELINING' "$dir/out"
check "pipelining: swaks exit 0" test "$rc" -eq 0
# swaks marks pipelined commands and replies; MAIL, both RCPTs and DATA go out before the first reply
check "pipelining: MAIL, RCPT, RCPT, DATA sent as one group" python3 -c '
import sys
lines = [l.rstrip("\n") for l in open(sys.argv[1], errors="replace")]
i = next(n for n, l in enumerate(lines) if " MAIL FROM:" in l)
grp = []
for l in lines[i:]:
    if l.startswith("<"):
        break
    grp.append(l)
sys.exit(0 if sum(" RCPT TO:" in l for l in grp) == 2 and any(l.endswith("DATA") for l in grp) else 1)' "$dir/out"
check "pipelining: then the replies 250 250 250 354" \
  test "$(sed -n '/^ -> DATA$/,/^<-  354/p' "$dir/out" | grep '^<' | awk '{ print $2 }' | tr '\n' ' ')" = "250 250 250 354 "
check "pipelining: delivered (two files in new/ now)" test "$(count "$dir/md/new")" -eq 2

# --- a corpus spam as the message --------------------------------------------
# the first untrained spam-1 message (101st on) that this training calls spam clearly
spam=$("$chaff" classify --db "$dir/db" $(pick spam-1 101 200) | awk '$1 == "spam" && $2 >= 0.99 { print $3; exit }')
sed '1{/^From /d}' "$spam" > "$dir/spam.eml"
sw --to carol@example.org --data "@$dir/spam.eml" > "$dir/out" 2>&1; rc=$?
check "corpus spam: swaks exit 0 (quarantined, 250)" test "$rc" -eq 0
check "corpus spam: in the quarantine" test "$(count "$dir/q/new")" -eq 1
check "corpus spam: not in the Maildir" test "$(count "$dir/md/new")" -eq 2
check "corpus spam: X-Spam-Flag: YES" grep -q '^X-Spam-Flag: YES$' "$dir"/q/new/*

# --- relay attempt -----------------------------------------------------------
sw "${fixed[@]}" --to victim@elsewhere.net --body "relay me" > "$dir/out" 2>&1; rc=$?
check "relay to elsewhere.net: swaks fails (exit $rc)" test "$rc" -ne 0
check "relay: 550 5.7.1 ... Relaying denied" grep -Eq '^<\*\* +550 5\.7\.1 .*Relaying denied' "$dir/out"
check "relay: no DATA sent" bash -c '! grep -q "^ -> DATA" "$1"' _ "$dir/out"
check "relay: nothing delivered" test "$(count "$dir/md/new")" -eq 2 -a "$(count "$dir/q/new")" -eq 1
sw "${fixed[@]}" --to victim@elsewhere.net,bob@example.org --body "half relay" > "$dir/out" 2>&1
check "relay and a local recipient: only the local one accepted, delivered" \
  test "$(count "$dir/md/new")" -eq 3 -a "$(grep -c '^<\*\* *550 5\.7\.1' "$dir/out")" -eq 1

check "log: a line per delivered message, with client= from= rcpt= verdict= action=" \
  test "$(grep -c 'client=127\.0\.0\.1 .*from=<sender@example\.com> rcpt=.*verdict=.*action=' "$dir/smtp.err")" -eq 4

# --- LMTP --------------------------------------------------------------------
start lmtp --lmtp --maildir "$dir/lmtp"
sw "${fixed[@]}" --protocol LMTP --to a@example.org,b@example.org --body "over LMTP" > "$dir/out" 2>&1; rc=$?
check "LMTP: swaks exit 0" test "$rc" -eq 0
check "LMTP: LHLO answered" grep -q '^<-  250-PIPELINING' "$dir/out"
check "LMTP: two replies after the dot" test "$(sed -n '/^ -> \.$/,$p' "$dir/out" | grep -c '^<-  250 2\.0\.0')" -eq 2
check "LMTP: delivered" test "$(count "$dir/lmtp/new")" -ge 1

# --- SIGTERM -----------------------------------------------------------------
kill -TERM "$smtp_pid"; wait "$smtp_pid"; rc=$?
check "SIGTERM: exit 0" test "$rc" -eq 0

echo "$fails failed"
[ "$fails" -eq 0 ]
