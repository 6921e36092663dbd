#!/usr/bin/env python3
"""chaff serve under load: 200 concurrent clients (threads) send 50 messages
each (10,000 in all, small corpus messages in turn, half spam, a new
connection every 10 messages) through `chaff serve --on-spam reject` to a
next-hop sink that refuses one message in ten after the dot with 451 and
another one in ten with 554 (chosen by envelope sender). Every message must
be accounted for: the 250s the clients saw equal the messages the sink
accepted (the same envelope senders, none twice), every other reply is a
proper 4xx/5xx code, the messages the sink refused got no 250, and no client
is left without a reply. Reports messages/s and the server's peak RSS
(VmHWM).

    python3 tests/serve/test_load.py PATH/TO/chaff

LOAD_CLIENTS and LOAD_MESSAGES (per client) change the size."""
import os
import smtplib
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtp_harness import (TMP, Server, Sink, chaff_path, check, corpus_files, finish,  # noqa: E402
                          greeted, header, load_message, make_db, need_corpus)

CH = chaff_path()
need_corpus()
T0 = time.monotonic()
CLIENTS = int(os.environ.get("LOAD_CLIENTS", 200))
PER_CLIENT = int(os.environ.get("LOAD_MESSAGES", 50))
PER_CONN = 10

db = os.path.join(TMP, "db")
make_db(CH, db)
msgs = []
for group, first in (("spam-1", 100), ("easy-ham-1", 100)):
    for f in corpus_files(group)[first:first + 150]:
        b = load_message(f)
        if len(b) <= 4000:
            msgs.append(b)
check("setup: %d small corpus messages (<= 4 kB) to send in turn" % len(msgs), len(msgs) >= 20)

def flaky(env):
    """The sink's answer after the dot: 451 for one sender in ten, 554 for another."""
    n = zlib.crc32(env["from"].encode()) % 10
    return "451 4.3.0 sink: try again later" if n == 0 else "554 5.7.1 sink: refused" if n == 1 else None


sink = Sink(backlog=4096)
sink.mode = {"dot": flaky}
srv = Server(CH, "load", db, ["--next-hop", "127.0.0.1:%d" % sink.port, "--on-spam", "reject", "--max-conn", "4096",
                              "--max-conn-per-ip", "4096", "--hostname", "load.test"])
if not srv.wait_ready():
    check("server starts", False, srv.stderr()[-1000:])
    finish()

lock = threading.Lock()
ok_from = []          # envelope senders of messages that got 250
codes = {}            # other reply codes: count
errors = []           # no proper reply at all
by_from = {}          # envelope sender: the code of a message that did not get 250


def worker(i):
    s = None
    sent = 0
    for k in range(PER_CLIENT):
        frm = "load%d.%d@example.com" % (i, k)
        msg = msgs[(i * PER_CLIENT + k) % len(msgs)]
        code = None
        try:
            if s is None:
                s = smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client%d.test" % i, timeout=60)
                s.ehlo()
            s.sendmail(frm, ["user%d@example.org" % i], msg)
            code = 250
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
        except smtplib.SMTPResponseException as e:      # sender/data refused, 421 greeting
            code = e.smtp_code
        except (smtplib.SMTPException, OSError) as e:
            with lock:
                errors.append("%s: %s: %s" % (frm, type(e).__name__, e))
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
            s = None
            continue
        with lock:
            if code == 250:
                ok_from.append(frm)
            else:
                codes[code] = codes.get(code, 0) + 1
                by_from[frm] = code
        sent += 1
        if s is not None and (sent % PER_CONN == 0 or code in (421, None)):
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
            s = None
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CLIENTS)]
t0 = time.monotonic()
for t in threads:
    t.start()
deadline = time.monotonic() + 240
for t in threads:
    t.join(max(0.1, deadline - time.monotonic()))
elapsed = time.monotonic() - t0
alive = sum(t.is_alive() for t in threads)
total = CLIENTS * PER_CLIENT
check("all %d clients finished (%d still running)" % (CLIENTS, alive), alive == 0)
time.sleep(0.5)
with sink.lock:
    got = [m["from"] for m in sink.messages]
    tagged = sum(1 for m in sink.messages if header(m["data"], "X-Chaff-Verdict"))
n_ok = len(ok_from)
n_codes = sum(codes.values())
print("     %d messages in %.1f s: %.0f messages/s; %d x 250, other codes %s, %d without a reply"
      % (total, elapsed, total / elapsed, n_ok, codes or "none", len(errors)), flush=True)
check("every message got a reply (%d of %d)" % (n_ok + n_codes, total), n_ok + n_codes == total and not errors,
      "; ".join(errors[:5]))
check("every non-250 reply is a 4xx or 5xx code", all(c and 400 <= c < 600 for c in codes), str(codes))
check("250s seen by the clients (%d) = messages the next hop got (%d)" % (n_ok, len(got)), n_ok == len(got))
check("the same messages (envelope senders), none twice", sorted(ok_from) == sorted(got) and len(set(got)) == len(got),
      "only at the sink: %s; only 250'd: %s" % (sorted(set(got) - set(ok_from))[:5], sorted(set(ok_from) - set(got))[:5]))
check("every message at the next hop has X-Chaff-Verdict (%d)" % tagged, tagged == len(got))
with sink.lock:
    refused = {m["from"]: m["result"] for m in sink.attempts}
t4 = [f for f, r in refused.items() if r.startswith("451")]
t5 = [f for f, r in refused.items() if r.startswith("554")]
check("the %d messages the next hop refused with 451: the client got 4xx" % len(t4),
      bool(t4) and all(400 <= by_from.get(f, 0) < 500 for f in t4),
      str([(f, by_from.get(f, 250)) for f in t4 if not 400 <= by_from.get(f, 0) < 500][:5]))
check("the %d messages the next hop refused with 554: the client got 5xx" % len(t5),
      bool(t5) and all(500 <= by_from.get(f, 0) < 600 for f in t5),
      str([(f, by_from.get(f, 250)) for f in t5 if not 500 <= by_from.get(f, 0) < 600][:5]))
rej = sum(1 for f, c in by_from.items() if c == 550 and f not in refused)
check("spam rejected with 550 by the server itself: %d" % rej, rej > 0)
check("no other failures: every non-250 is a spam rejection or a next-hop refusal",
      all(f in refused or c == 550 for f, c in by_from.items()),
      str([(f, c) for f, c in by_from.items() if f not in refused and c != 550][:5]))
nlog = len(srv.log_lines())
check("a log line per message (%d lines, %d messages)" % (nlog, total), nlog == total)
c = greeted(srv.port)
check("the server still answers after the load", c.cmd("NOOP").code == 250)
c.close()
hwm = srv.vmhwm_kb()
print("     server peak RSS (VmHWM): %s" % (("%.1f MB" % (hwm / 1024)) if hwm else "unknown"), flush=True)
print("     next hop connections: %d for %d messages" % (sink.connections, len(got)), flush=True)
rc = srv.stop()
check("SIGTERM: the server exits 0", rc == 0, "exit %s" % rc)
sink.close()
print("(%.1f s)" % (time.monotonic() - T0))
finish()
