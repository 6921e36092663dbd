#!/usr/bin/env bash
# End to end with a real Postfix: chaff serve as Postfix's after-queue
# content filter (content_filter = chaff:[127.0.0.1]:PORT, a re-injection
# smtpd on a second port), final delivery into a Maildir by Postfix's virtual
# agent. A private Postfix instance lives entirely in a temporary folder
# (postfix -c DIR) and listens on free loopback ports only.
#   1. a ham and a spam message sent to Postfix arrive in the Maildir with
#      chaff's headers; the spam has X-Spam-Flag: YES;
#   2. with chaff stopped a message stays in Postfix's queue (deferred) and
#      is delivered, tagged, once chaff runs again and the queue is flushed;
#   3. after the re-injection smtpd dropped an idle connection of chaff's
#      (its smtpd_timeout, 5 s here), the next message still goes straight
#      through (chaff reconnects rather than answering 4xx); chaff runs with
#      --threads 1 for this, so the message meets that connection.
# Needs root and Debian's postfix package.
#   test_postfix.sh PATH/TO/chaff
#   test_postfix.sh --standin [PATH/TO/chaff]   the Python stand-in instead
#                                                of chaff serve (for debugging)
# KEEP=1 leaves the temporary folder (logs, queue, Maildir) in place.
set -u
standin=0
if [ "${1:-}" = --standin ]; then standin=1; shift; fi
chaff=${1:-}
serve_dir=$(cd "$(dirname "$0")" && pwd)
. "$serve_dir/../lib.sh"
export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C
command -v postfix > /dev/null || { echo "FAIL: postfix not installed (apt-get install postfix; scripts/install-deps.sh should do it)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "FAIL: test_postfix.sh must run as root (it starts a private Postfix)"; exit 1; }
[ "$standin" = 1 ] || [ -x "$chaff" ] || { echo "usage: test_postfix.sh [--standin] PATH/TO/chaff"; exit 1; }
need_corpus

t=$(mktemp -d /tmp/chaff-postfix.XXXXXX)
chmod 755 "$t" # the virtual agent writes the Maildir as nobody
etc=$t/etc mail=$t/mail db=$t/db
maillog=$t/maillog chafflog=$t/chaff.log
mkdir -p "$etc" "$mail" "$t/spool"
chown nobody: "$mail"
chaff_pid=

stop_chaff() {
  [ -n "$chaff_pid" ] || return 0
  kill -TERM "$chaff_pid" 2> /dev/null
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$chaff_pid" 2> /dev/null || break; sleep 0.1; done
  kill -KILL "$chaff_pid" 2> /dev/null
  wait "$chaff_pid" 2> /dev/null
  chaff_pid=
}
stop_postfix() {
  local pid
  pid=$(tr -d ' ' 2> /dev/null < "$t/spool/pid/master.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 0
  postfix -c "$etc" stop > /dev/null 2>&1
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.1; done
  postfix -c "$etc" abort > /dev/null 2>&1
  sleep 0.5
  kill -KILL "$pid" 2> /dev/null
}
cleanup() {
  stop_chaff
  stop_postfix
  if [ "$fails" -ne 0 ] || [ "${KEEP:-}" = 1 ]; then
    echo "--- Postfix log (last 40 lines)"; tail -n 40 "$maillog" 2> /dev/null
    echo "--- chaff serve log (last 20 lines)"; tail -n 20 "$chafflog" 2> /dev/null
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $t"; else rm -rf "$t"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Three free loopback ports: Postfix's smtpd, chaff serve, the re-injection smtpd.
read -r smtp_port chaff_port reinject_port < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')


# --- the private Postfix instance
cat > "$etc/main.cf" << EOF
compatibility_level = 3.6
queue_directory = $t/spool
data_directory = $t/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $maillog
maillog_file_prefixes = $t
myhostname = mail.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
delay_warning_time = 0
in_flow_delay = 0
# address rewriting happens once, after the filter
receive_override_options = no_address_mappings
content_filter = chaff:[127.0.0.1]:$chaff_port
virtual_mailbox_domains = example.test
virtual_mailbox_base = $mail
virtual_mailbox_maps = texthash:$etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
echo "user@example.test inbox/" > "$etc/vmailbox"
inbox=$mail/inbox

cat > "$etc/master.cf" << EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$smtp_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
# to chaff serve
chaff     unix  -       -       n       -       10      smtp
  -o syslog_name=postfix/chaff
  -o smtp_send_xforward_command=no
  -o smtp_data_done_timeout=1200
  -o disable_mime_output_conversion=yes
  -o smtp_generic_maps=
# back from chaff serve
127.0.0.1:$reinject_port inet n - n - 10 smtpd
  -o syslog_name=postfix/reinject
  -o smtpd_timeout=5s
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
EOF

# wait_port PORT: until something accepts connections there (10 s at most)
wait_port() {
  python3 - "$1" << 'EOF'
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

start_chaff() { # [more options of chaff serve]
  if [ "$standin" = 1 ]; then
    python3 "$serve_dir/standin_filter.py" --listen "127.0.0.1:$chaff_port" \
      --next-hop "127.0.0.1:$reinject_port" 2>> "$chafflog" &
  else
    "$chaff" serve --listen "127.0.0.1:$chaff_port" --next-hop "127.0.0.1:$reinject_port" \
      --db "$db" "$@" 2>> "$chafflog" &
  fi
  chaff_pid=$!
  wait_port "$chaff_port"
}

# send TAG FILE: FILE (a corpus message) to Postfix's smtpd for
# user@example.test, with a first header line "X-Test-Id: TAG"
send() {
  python3 - "$smtp_port" "$1" "$2" << 'EOF'
import re, smtplib, sys
port, tag, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
raw = open(path, "rb").read()
if raw.startswith(b"From "):  # the mbox envelope line
    raw = raw.split(b"\n", 1)[1]
raw = re.sub(rb"\r?\n", b"\r\n", b"X-Test-Id: " + tag.encode() + b"\n" + raw)
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    s.sendmail("sender@example.test", ["user@example.test"], raw)
EOF
}
# delivered TAG: the Maildir file of the message sent with TAG, if it is there
delivered() { grep -l -x "X-Test-Id: $1" "$inbox"/new/* 2> /dev/null | head -n 1; }
# wait_delivered TAG SECONDS: its file name once it arrived
wait_delivered() {
  local i f
  for ((i = 0; i < $2 * 5; i++)); do
    f=$(delivered "$1")
    [ -n "$f" ] && { echo "$f"; return 0; }
    sleep 0.2
  done
  return 1
}
# header FILE NAME: the values of header NAME in FILE's header block, one a line
header() { sed -n '/^$/q; p' "$1" | sed -n "s/^$2: *//p"; }
# tagged FILE VERDICT: chaff's headers, each once, for VERDICT
tagged() {
  local f=$1 v=$2 flag=YES status=Yes
  [ "$v" = spam ] || { flag=; status=No; }
  [ "$(header "$f" X-Chaff-Verdict)" = "$v" ] &&
    [ "$(header "$f" X-Spam-Flag)" = "$flag" ] &&
    [ "$(header "$f" X-Spam-Status | grep -c .)" = 1 ] &&
    header "$f" X-Spam-Status | grep -q "^$status, score="
}
queue() { postqueue -c "$etc" -p 2> /dev/null; }
# deferred: the JSON lines of the deferred queue
deferred() { postqueue -c "$etc" -j 2> /dev/null | grep '"queue_name": *"deferred"'; }

start=$SECONDS

# --- the database: 100 spam and 100 ham of the corpus
if [ "$standin" = 0 ]; then
  check "train 100 spam" "$chaff" train --spam -q --db "$db" $(pick spam-1 1 100)
  check "train 100 ham" "$chaff" train --ham -q --db "$db" $(pick easy-ham-1 1 100)
fi
ham=$(pick easy-ham-1 1000 1000) ham2=$(pick easy-ham-1 1001 1001)
ham3=$(pick easy-ham-1 1002 1002) ham4=$(pick easy-ham-1 1003 1003)
spam=$(pick spam-1 302 302)

# --- start both
start_chaff
check "chaff serve listens on 127.0.0.1:$chaff_port" grep -q "listening on 127.0.0.1:$chaff_port" "$chafflog"
postfix -c "$etc" check > "$t/check.log" 2>&1 || { cat "$t/check.log"; }
if ! postfix -c "$etc" start > "$t/start.log" 2>&1; then
  echo "FAIL postfix start"; cat "$t/start.log"; fails=$((fails + 1)); exit 1
fi
check "Postfix's smtpd listens on 127.0.0.1:$smtp_port" wait_port "$smtp_port"
check "the re-injection smtpd listens on 127.0.0.1:$reinject_port" wait_port "$reinject_port"

# --- 1. a ham and a spam through Postfix -> chaff -> Postfix -> Maildir
check "Postfix accepts the ham" send ham-1 "$ham"
check "Postfix accepts the spam" send spam-1 "$spam"
f_ham=$(wait_delivered ham-1 60)
check "the ham arrives in the Maildir" [ -n "$f_ham" ]
f_spam=$(wait_delivered spam-1 10) # sent together with the ham
check "the spam arrives in the Maildir" [ -n "$f_spam" ]
[ -n "$f_ham" ] && check "the ham is tagged ham by chaff" tagged "$f_ham" ham
[ -n "$f_spam" ] && check "the spam is tagged spam by chaff, X-Spam-Flag: YES" tagged "$f_spam" spam
check "Postfix passed both through the chaff transport" \
  [ "$(grep -c "postfix/chaff/smtp.*relay=127.0.0.1\[127.0.0.1\]:$chaff_port,.*status=sent" "$maillog")" = 2 ]
check "both came back through the re-injection smtpd" \
  [ "$(grep -c "postfix/reinject/smtpd\[[0-9]*\]: [0-9A-F]*: client=" "$maillog")" = 2 ]

# --- 2. chaff down: the message waits in Postfix's queue
stop_chaff
check "Postfix accepts a message while chaff is down" send ham-2 "$ham2"
for ((i = 0; i < 150; i++)); do [ -n "$(deferred)" ] && break; sleep 0.2; done
check "the message is deferred" [ -n "$(deferred)" ]
check "postqueue -p shows it, connection refused" \
  sh -c "postqueue -c '$etc' -p | grep -q 'connect to 127.0.0.1\[127.0.0.1\]:$chaff_port: Connection refused'"
sleep 1
check "it was not delivered untagged" [ -z "$(delivered ham-2)" ]
start_chaff
check "chaff serve starts again" kill -0 "$chaff_pid"
check "postqueue -f" postqueue -c "$etc" -f
f_ham2=$(wait_delivered ham-2 30)
check "the deferred message arrives after the flush" [ -n "$f_ham2" ]
[ -n "$f_ham2" ] && check "it is tagged ham by chaff" tagged "$f_ham2" ham
for ((i = 0; i < 50; i++)); do queue | grep -q '^Mail queue is empty' && break; sleep 0.2; done
check "the queue is empty again" sh -c "postqueue -c '$etc' -p | grep -q '^Mail queue is empty'"

# --- 3. the re-injection smtpd drops chaff's idle connection
stop_chaff
start_chaff --threads 1
check "Postfix accepts a message with chaff on one thread" send ham-3 "$ham3"
f_ham3=$(wait_delivered ham-3 20)
check "it arrives" [ -n "$f_ham3" ]
logged=$(wc -l < "$maillog")
sleep 7
tail -n +$((logged + 1)) "$maillog" | grep -q "postfix/reinject/smtpd.*timeout after" ||
  echo "note: no idle next-hop connection timed out (chaff does not keep them open?)"
check "Postfix accepts a message after that" send ham-4 "$ham4"
f_ham4=$(wait_delivered ham-4 20)
check "it arrives without being deferred" [ -n "$f_ham4" ]
[ -n "$f_ham4" ] && check "it is tagged ham by chaff" tagged "$f_ham4" ham
check "Postfix deferred nothing but the message sent while chaff was down" \
  [ "$(grep -c "postfix/chaff/smtp.*status=deferred" "$maillog")" = 1 ]
check "nothing bounced or was delivered twice" [ "$(ls "$inbox/new" | wc -l)" = 5 ]

stop_chaff
stop_postfix
echo "time: $((SECONDS - start)) s"
echo "$fails failed"
[ "$fails" -eq 0 ]
