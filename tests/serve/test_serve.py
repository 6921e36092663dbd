#!/usr/bin/env python3
"""chaff serve, the SMTP/LMTP front end, against its contract: every command
and reply code, pipelining, dot-stuffing both ways, bare LF, size and
recipient limits, the headers and envelope the next hop receives, the
actions (pass, reject, quarantine, Maildir), the next hop failing in every
way, timeouts, connection limits, access control, relaying, LMTP, IPv6,
training by mail, SIGTERM with a message in flight, new training seen
without a restart, the log line per message, and what a review found: a
next hop whose late reply must not put it out of step, a client that never
reads, running out of file descriptors, connections freed while their
events are pending (a use-after-free the ASan build reports).

    python3 tests/serve/test_serve.py PATH/TO/chaff

The next hop is a sink server in this process (smtp_harness.Sink). Each
`chaff serve` runs on free loopback ports and is stopped at exit, whatever
happens. CHAFF_CORPUS overrides the corpus folder; KEEP=1 keeps the scratch
folder (databases, Maildirs, each server's stderr)."""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtp_harness import (TMP, Conn, NotStarted, Reply, Server, Sink, check, classify,  # noqa: E402
                          connect, filter_of, finish, free_port, greeted, have_ipv6, header,
                          log_for, make_db, need_corpus, pick_messages, run, score_of, section,
                          send_message, skip, split_message, to_crlf, totals, train, uid, wire,
                          chaff_path, corpus_files, cpu_seconds, load_message, tcp_socket, LOG_RE, LOG_KEYS, log_fields)

CH = chaff_path()
need_corpus()
T0 = time.monotonic()
HOST = "mx.test.invalid"
MAXSIZE = 60000
DB = os.path.join(TMP, "db")
make_db(CH, DB)
SPAM = pick_messages(CH, DB, "spam-1", 100, 200, "spam", 0.99, 1.0, 20000)
HAM = pick_messages(CH, DB, "easy-ham-1", 100, 200, "ham", 0.0, 0.05, 20000)
if not check("setup: database trained on 100 spam + 100 ham; %d clear spam and %d clear ham "
             "untrained test messages" % (len(SPAM), len(HAM)), len(SPAM) >= 4 and len(HAM) >= 4):
    finish()

SINK = Sink()         # the next hop of most servers
SERVERS = []


def serve(name, args, db=DB, listen=None):
    s = Server(CH, name, db, args, listen)
    SERVERS.append(s)
    return s.start_or_fail()


def simple(subject, body=b"Hello there.\n", extra=b""):
    """A small message (LF line ends)."""
    return (b"From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: " +
            subject.encode() + b"\nMessage-ID: <" + uid("m").encode() + b">\n" + extra +
            b"\n" + body)


def expect(what, r, prefix):
    return check("%s: %s" % (what, prefix), r.is_(prefix), "got %s" % r)


def final_of(res):
    """The reply that decided a transaction: the refusal, else the one after the dot."""
    if res["failed"]:
        return res[res["failed"]]
    return res["final"]


def oracle_wire(body):
    """What the next hop must receive for BODY: as `chaff filter` tags it, CRLF."""
    return to_crlf(filter_of(CH, DB, to_crlf(body)))


# === servers that must not start ===========================================
def t_startup_errors():
    r = run([CH, "serve", "--help"], timeout=10)
    out = (r.stdout + r.stderr).decode(errors="replace")
    check("serve --help: exit 0 with a usage text", r.returncode == 0 and "usage" in out.lower(),
          "exit %d: %r" % (r.returncode, out[:200]))

    spamonly = os.path.join(TMP, "spamonly")
    train(CH, spamonly, "spam", corpus_files("spam-1")[:5])
    emptydir = os.path.join(TMP, "emptydir")
    os.mkdir(emptydir)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    busyport = busy.getsockname()[1]

    def attempt(what, args, want, says=None):
        cmd = [CH, "serve"] + args
        if "--listen" not in args:
            cmd += ["--listen", "127.0.0.1:%d" % free_port()]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            check("%s: exit %d" % (what, want), False, "still running after 5 s (killed)")
            return
        check("%s: exit %d" % (what, want), r.returncode == want,
              "exit %d, stderr %r" % (r.returncode, r.stderr[-300:]))
        check("%s: says why on stderr" % what, r.stderr.strip() != b"")
        if says:
            check("%s: names %s" % (what, says), says.encode() in r.stderr, repr(r.stderr[-300:]))

    nh = ["--next-hop", "127.0.0.1:%d" % SINK.port]
    attempt("unknown option", ["--db", DB, "--bogus"] + nh, 4)
    attempt("neither --next-hop nor --maildir", ["--db", DB], 4)
    attempt("--on-spam quarantine without --quarantine", ["--db", DB, "--on-spam", "quarantine"] + nh, 4)
    attempt("--on-spam bogus", ["--db", DB, "--on-spam", "bogus"] + nh, 4)
    attempt("--allow 300.0.0.1/8", ["--db", DB, "--allow", "300.0.0.1/8"] + nh, 4)
    attempt("--max-size abc", ["--db", DB, "--max-size", "abc"] + nh, 4)
    attempt("--listen 127.0.0.1:notaport", ["--db", DB, "--listen", "127.0.0.1:notaport"] + nh, 4)
    attempt("--next-hop without a port", ["--db", DB, "--next-hop", "127.0.0.1"], 4)
    attempt("missing database", ["--db", os.path.join(TMP, "nodb")] + nh, 3)
    check("missing database: not created", not os.path.exists(os.path.join(TMP, "nodb")))
    attempt("empty database folder", ["--db", emptydir] + nh, 3)
    attempt("database with spam but no ham", ["--db", spamonly] + nh, 3)
    bad_q = "/nonexistent-chaff-test/q"
    attempt("a --quarantine that cannot be made, beside a good --maildir",
            ["--db", DB, "--maildir", os.path.join(TMP, "md-ok"), "--quarantine", bad_q], 3, bad_q)
    attempt("port already in use", ["--db", DB, "--listen", "127.0.0.1:%d" % busyport] + nh, 3)
    busy.close()


# === the main server: commands and replies ==================================
MAIN = None


def t_main_start():
    global MAIN
    MAIN = serve("main", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--hostname", HOST,
                          "--max-size", str(MAXSIZE), "--max-rcpt", "3", "--domains", "example.org"])
    check("stderr: 'chaff serve: listening on 127.0.0.1:PORT'",
          ("chaff serve: listening on 127.0.0.1:%d" % MAIN.port) in MAIN.stderr(), MAIN.stderr()[:300])


def t_greeting_ehlo():
    c, g = connect(MAIN.port)
    check("greeting: '220 %s ESMTP chaff'" % HOST, g.code == 220 and g.last == "220 %s ESMTP chaff" % HOST,
          "got %s" % g)
    r = c.cmd("EHLO client.test")
    check("EHLO: 250, 6 lines", r.code == 250 and len(r.lines) == 6, "got %s" % r)
    check("EHLO: first line 250-HOST", bool(r.lines) and r.lines[0].split(" ")[0] == "250-" + HOST,
          "got %s" % r)
    want = ["250-PIPELINING", "250-SIZE %d" % MAXSIZE, "250-8BITMIME", "250-CHUNKING", "250 ENHANCEDSTATUSCODES"]
    check("EHLO: PIPELINING, SIZE %d, 8BITMIME, CHUNKING, ENHANCEDSTATUSCODES in that order" % MAXSIZE,
          r.lines[1:] == want, "got %s" % r)
    expect("EHLO again (resets the session)", c.cmd("EHLO client.test"), "250")
    expect("LHLO in SMTP mode", c.cmd("LHLO client.test"), "500 5.5.1")
    expect("QUIT", c.cmd("QUIT"), "221 2.0.0")
    check("QUIT: connection closed", c.closed())
    c.close()

    c, g = connect(MAIN.port)
    r = c.cmd("HELO client.test")
    check("HELO: '250 %s'" % HOST, r.code == 250 and r.last.split(" ")[:2] == ["250", HOST], "got %s" % r)
    expect("HELO then MAIL", c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0")
    c.close()


def t_order():
    c, g = connect(MAIN.port)
    expect("NOOP before HELO", c.cmd("NOOP"), "250 2.0.0")
    expect("MAIL before HELO/EHLO", c.cmd("MAIL FROM:<a@example.com>"), "503 5.5.1")
    expect("RCPT before HELO/EHLO", c.cmd("RCPT TO:<b@example.org>"), "503 5.5.1")
    expect("DATA before HELO/EHLO", c.cmd("DATA"), "503 5.5.1")
    c.cmd("EHLO client.test")
    expect("RCPT before MAIL", c.cmd("RCPT TO:<b@example.org>"), "503 5.5.1")
    expect("DATA before MAIL", c.cmd("DATA"), "503 5.5.1")
    expect("MAIL FROM:<a@example.com>", c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0")
    expect("nested MAIL", c.cmd("MAIL FROM:<a@example.com>"), "503 5.5.1")
    expect("DATA before RCPT", c.cmd("DATA"), "503 5.5.1")
    expect("RCPT TO:<b@example.org>", c.cmd("RCPT TO:<b@example.org>"), "250 2.1.5")
    expect("RSET", c.cmd("RSET"), "250 2.0.0")
    expect("RCPT after RSET (transaction gone)", c.cmd("RCPT TO:<b@example.org>"), "503 5.5.1")
    expect("MAIL after RSET (not nested)", c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0")
    expect("RCPT after that", c.cmd("RCPT TO:<b@example.org>"), "250 2.1.5")
    expect("EHLO in a transaction", c.cmd("EHLO client.test"), "250")
    expect("RCPT after EHLO (EHLO resets the transaction)", c.cmd("RCPT TO:<b@example.org>"), "503 5.5.1")
    c.close()


def t_syntax():
    c = greeted(MAIN.port)
    expect("MAIL FROM:<a@example.com (no '>')", c.cmd("MAIL FROM:<a@example.com"), "501 5.5.4")
    expect("MAIL TO:<a@example.com>", c.cmd("MAIL TO:<a@example.com>"), "501 5.5.4")
    expect("MAIL without argument", c.cmd("MAIL"), "501 5.5.4")
    expect("MAIL SIZE=%d (over --max-size)" % (MAXSIZE + 1),
           c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % (MAXSIZE + 1)), "552 5.3.4")
    expect("MAIL unknown parameter FOO=bar", c.cmd("MAIL FROM:<a@example.com> FOO=bar"), "555 5.5.4")
    expect("MAIL SIZE=%d (at the limit)" % MAXSIZE,
           c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % MAXSIZE), "250 2.1.0")
    c.cmd("RSET")
    expect("MAIL FROM:<> (null sender)", c.cmd("MAIL FROM:<>"), "250 2.1.0")
    c.cmd("RSET")
    expect("MAIL BODY=8BITMIME", c.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME"), "250 2.1.0")
    c.cmd("RSET")
    expect("MAIL BODY=7BIT SIZE=100", c.cmd("MAIL FROM:<a@example.com> BODY=7BIT SIZE=100"), "250 2.1.0")
    c.cmd("RSET")
    expect("lower-case 'mail from:' (RFC 5321: case-insensitive)", c.cmd("mail from:<a@example.com>"),
           "250 2.1.0")
    expect("RCPT TO:<b@example.org (no '>')", c.cmd("RCPT TO:<b@example.org"), "501 5.5.4")
    expect("RCPT FROM:<b@example.org>", c.cmd("RCPT FROM:<b@example.org>"), "501 5.5.4")
    expect("RCPT without argument", c.cmd("RCPT"), "501 5.5.4")
    expect("lower-case 'rcpt to:'", c.cmd("rcpt to:<b@example.org>"), "250 2.1.5")
    c.close()


def t_misc_commands():
    c = greeted(MAIN.port)
    expect("NOOP", c.cmd("NOOP"), "250 2.0.0")
    expect("VRFY", c.cmd("VRFY bob@example.org"), "252 2.0.0")
    expect("HELP", c.cmd("HELP"), "214 2.0.0")
    r = c.cmd("FROB")
    expect("unknown command FROB", r, "502 5.5.2")
    check("unknown command: 'Error: command not recognized'", "command not recognized" in r.last, str(r))
    expect("RSET outside a transaction", c.cmd("RSET"), "250 2.0.0")
    expect("empty line", c.cmd(""), "5")
    expect("QUIT", c.cmd("QUIT"), "221 2.0.0")
    check("QUIT closes the connection", c.closed())
    c.close()


def t_long_lines():
    c = greeted(MAIN.port)
    expect("a 2000-byte command line (NOOP + text)", c.cmd("NOOP " + "x" * 1995), "250 2.0.0")
    c.send("NOOP " + "x" * 3000 + "\r\nHELP\r\n")
    r = c.reply()
    expect("a 3005-byte command line", r, "500 5.5.2")
    check("  ... 'Error: line too long'", "line too long" in r.last, str(r))
    expect("  ... the rest of the long line is not read as a command (next reply is HELP's)",
           c.reply(), "214")
    c.send("NOOP " + "y" * 200000 + "\r\n")
    expect("a 200 kB command line", c.reply(), "500 5.5.2")
    expect("  ... then the connection still works", c.cmd("NOOP"), "250 2.0.0")
    c.close()


def t_too_many_errors():
    c = greeted(MAIN.port)
    replies = []
    for i in range(25):
        try:
            r = c.cmd("FROB%d" % i)
        except OSError:
            break
        replies.append(r)
        if r.code != 502:
            break
    codes = [r.code for r in replies]
    n502 = codes.index(421) if 421 in codes else -1
    check("default --max-errors 20: 502 for the first 19 or 20, then 421",
          n502 in (19, 20) and all(x == 502 for x in codes[:n502]), "codes %s" % codes)
    if replies:
        expect("  ... the 421", replies[-1], "421 4.7.0")
        check("  ... says 'too many errors'", "too many errors" in replies[-1].last.lower(), str(replies[-1]))
    check("  ... and closes the connection", c.closed())
    c.close()


def t_relay():
    c = greeted(MAIN.port)

    def rcpt(addr):
        c.cmd("RSET")
        c.cmd("MAIL FROM:<a@example.com>")
        return c.cmd("RCPT TO:<%s>" % addr)

    r = rcpt("x@elsewhere.net")
    expect("--domains example.org: RCPT x@elsewhere.net", r, "550 5.7.1")
    check("  ... '<x@elsewhere.net>: Relaying denied'", "<x@elsewhere.net>: Relaying denied" in r.last, str(r))
    expect("RCPT x@example.org", rcpt("x@example.org"), "250 2.1.5")
    expect("RCPT x@sub.example.org (subdomain)", rcpt("x@sub.example.org"), "250 2.1.5")
    expect("RCPT x@EXAMPLE.ORG (domain case-insensitive)", rcpt("x@EXAMPLE.ORG"), "250 2.1.5")
    expect("RCPT x@notexample.org (suffix, not a subdomain)", rcpt("x@notexample.org"), "550 5.7.1")
    expect("RCPT x@example.org.elsewhere.net", rcpt("x@example.org.elsewhere.net"), "550 5.7.1")
    r = rcpt("@example.org:x@elsewhere.net")
    check("RCPT <@example.org:x@elsewhere.net> (source route): not accepted", r.code is not None and r.code >= 500,
          "got %s" % r)
    expect("RCPT <x> (no domain, not ours): refused as relaying", rcpt("x"), "550 5.7.1")
    expect("RCPT <postmaster> (no domain, RFC 5321 4.5.1): taken", rcpt("postmaster"), "250 2.1.5")
    c.close()


def t_max_rcpt():
    c = greeted(MAIN.port)
    frm = uid()
    c.cmd("MAIL FROM:<%s>" % frm)
    rs = [c.cmd("RCPT TO:<r%d@example.org>" % i) for i in range(1, 6)]
    check("--max-rcpt 3: three RCPTs 250", all(r.is_("250 2.1.5") for r in rs[:3]), str([str(r) for r in rs]))
    expect("--max-rcpt 3: the 4th RCPT", rs[3], "452 4.5.3")
    expect("--max-rcpt 3: the 5th RCPT", rs[4], "452 4.5.3")
    expect("DATA after that", c.cmd("DATA"), "354")
    c.send(wire(simple("max rcpt")))
    expect("message to the first 3", c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    check("the next hop gets it once, for r1, r2, r3 in order",
          len(m) == 1 and m[0]["rcpts"] == ["r1@example.org", "r2@example.org", "r3@example.org"],
          str([x["rcpts"] for x in m]))
    c.close()


# === pipelining, dots, line ends =============================================
def start_data(c, frm, rcpt="a@example.org"):
    """MAIL, RCPT and DATA in one write, and their three replies: the
    client may then send the message itself, as raw as it likes."""
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (frm, rcpt))
    return [c.reply() for _ in range(3)]


def t_pipelining():
    c = greeted(MAIN.port)
    f1, f2, f3 = uid(), uid(), uid()
    m1, m2 = simple("pipelined one"), simple("pipelined two")
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" % f1)
    rs = [c.reply() for _ in range(4)]
    check("pipelined MAIL, RCPT, RCPT, DATA in one write: 250 250 250 354",
          [r.code for r in rs] == [250, 250, 250, 354], str([str(r) for r in rs]))
    # The message, its dot and the next transaction's commands in one write (RFC 2920).
    c.send(wire(m1) + ("MAIL FROM:<%s>\r\nRCPT TO:<c@elsewhere.net>\r\nRCPT TO:<d@example.org>\r\n"
                       "DATA\r\n" % f2).encode())
    rs = [c.reply(15) for _ in range(5)]
    check("message + dot + MAIL, RCPT (relay), RCPT, DATA in one write: 250 250 550 250 354",
          [r.code for r in rs] == [250, 250, 550, 250, 354], str([str(r) for r in rs]))
    c.send(wire(m2) + b"QUIT\r\n")
    rs = [c.reply(15), c.reply()]
    check("message + dot + QUIT in one write: 250 221", [r.code for r in rs] == [250, 221],
          str([str(r) for r in rs]))
    check("  ... then closed", c.closed())
    c.close()
    a, b = SINK.find(f1), SINK.find(f2)
    check("first pipelined message reached the next hop for a, b",
          len(a) == 1 and a[0]["rcpts"] == ["a@example.org", "b@example.org"], str([x["rcpts"] for x in a]))
    check("  ... unchanged but for the headers", len(a) == 1 and a[0]["data"] == oracle_wire(m1))
    check("second pipelined message reached it for d only",
          len(b) == 1 and b[0]["rcpts"] == ["d@example.org"], str([x["rcpts"] for x in b]))
    check("  ... unchanged but for the headers", len(b) == 1 and b[0]["data"] == oracle_wire(m2))

    c = greeted(MAIN.port)
    rs = start_data(c, f3, "x@elsewhere.net")
    check("pipelined MAIL, RCPT (refused), DATA: 250 550 then 503/554 for DATA (no recipient)",
          [r.code for r in rs][:2] == [250, 550] and rs[2].code in (503, 554), str([str(r) for r in rs]))
    expect("  ... connection still in step", c.cmd("NOOP"), "250 2.0.0")
    c.close()


def t_dots():
    body = (b".hidden line\n..two dots\n.\n...\n. dot space\nend\n")
    msg = simple("dots", body)
    c = greeted(MAIN.port)
    frm = uid()
    res = send_message(c, frm, ["a@example.org"], msg)
    expect("message with lines '.hidden', '..two', '.', '...' (sent dot-stuffed)", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    ok = len(m) == 1
    check("dot-stuffing: the next hop gets each line as the client meant it",
          ok and split_message(m[0]["data"])[1] == to_crlf(b"\n" + body),
          repr(split_message(m[0]["data"])[1]) if ok else "not delivered")
    check("dot-stuffing: re-stuffed on the wire to the next hop ('..hidden', '...two', '..', '....')",
          ok and all(x in m[0]["raw"] for x in (b"\r\n..hidden line\r\n", b"\r\n...two dots\r\n",
                                                 b"\r\n..\r\n", b"\r\n....\r\n", b"\r\n.. dot space\r\n")),
          repr(m[0]["raw"][-120:]) if ok else "")
    check("dot-stuffing: whole message as chaff filter would tag it", ok and m[0]["data"] == oracle_wire(msg))

    # "..x" from the client is ".x"
    start_data(c, frm2 := uid())
    c.send(b"Subject: raw dots\r\n\r\n..x\r\n.\r\n")
    expect("raw '..x' line", c.reply(15), "250 2.0.0")
    m = SINK.find(frm2)
    check("  ... arrives as '.x' (re-stuffed '..x' on the wire)",
          len(m) == 1 and split_message(m[0]["data"])[1] == b"\r\n.x\r\n" and m[0]["raw"].endswith(b"\r\n..x\r\n"),
          repr(m[0]["raw"]) if m else "not delivered")

    # bare LF line ends, then CR LF . CR LF
    frm = uid()
    msg = simple("bare LF", b"line one\n.dotted\nline three\n")
    res = send_message(c, frm, ["a@example.org"], msg, lf=True)
    expect("bare LF line ends, then CR LF . CR LF", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... the next hop gets CRLF line ends only",
          len(m) == 1 and b"\n" not in m[0]["raw"].replace(b"\r\n", b""), repr(m[0]["raw"][:200]) if m else "")
    check("  ... and the message as chaff filter tags it", len(m) == 1 and m[0]["data"] == oracle_wire(msg))

    # mixed: CRLF headers, LF body, CRLF dot
    frm = uid()
    start_data(c, frm)
    c.send(b"Subject: mixed\r\nFrom: a@example.com\r\n\r\nlf line\nanother\r\n.\r\n")
    expect("mixed CRLF and LF line ends", c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... arrives with CRLF throughout",
          len(m) == 1 and split_message(m[0]["data"])[1] == b"\r\nlf line\r\nanother\r\n",
          repr(m[0]["data"]) if m else "")

    # A lone dot next to a bare LF does not end the data (RFC 5321
    # 4.1.1.4): what follows is the message's, not a second transaction a
    # sender could smuggle past a server that let the bare LF through.
    frm, evil = uid(), uid()
    start_data(c, frm)
    for end in (b"\n.\n", b"\n.\r\n", b"\r\n.\n"):
        c.send(b"Subject: smuggle\r\n\r\nhello" + end)
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n" % evil).encode())
        c.send(b"Subject: smuggled\r\n\r\npay now\r\n")
    c.send(b".\r\n")
    expect("'\\n.\\n', '\\n.\\r\\n' and '\\r\\n.\\n' do not end the data: one reply",
           c.reply(15), "250 2.0.0")
    check("  ... and nothing else is answered", c.reply(1).code is None)
    m, e = SINK.find(frm), SINK.find(evil)
    check("  ... one message at the next hop, holding the would-be commands",
          len(m) == 1 and not e and m[0]["data"].count(("MAIL FROM:<%s>" % evil).encode()) == 3,
          repr(m[0]["data"][-300:]) if m else "not delivered")

    # A bare CR is a line end on the wire: a next hop that reads it as one
    # must not meet a lone dot behind it ("<CR>.<CR>" smuggling).
    frm = uid()
    start_data(c, frm)
    c.send(b"Subject: bare CR\r\n\r\nx\r.\r\ny\r.\rz\r\nw\r\r\n.\r\n")
    expect("a body with bare CRs before dots", c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    raw = m[0]["raw"] if m else b""
    check("  ... no bare CR on the wire, and each dot after one stuffed",
          len(m) == 1 and b"\r" not in raw.replace(b"\r\n", b"") and
          raw.endswith(b"\r\n\r\nx\r\n..\r\ny\r\n..\r\nz\r\nw\r\n"), repr(raw[-80:]))

    # a long body line, 8-bit bytes, BODY=8BITMIME passed on
    frm = uid()
    body = b"caf\xc3\xa9 \xe9t\xe9 \xff\xfe\n" + b"y" * 3000 + b"\nend\n"
    msg = simple("8bit", body, b"Content-Type: text/plain; charset=utf-8\n")
    res = send_message(c, frm, ["a@example.org"], msg, params="BODY=8BITMIME")
    expect("8-bit body with a 3000-byte line, BODY=8BITMIME", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... body byte-identical at the next hop",
          len(m) == 1 and split_message(m[0]["data"])[1] == to_crlf(b"\n" + body))
    check("  ... MAIL to the next hop has BODY=8BITMIME",
          len(m) == 1 and "BODY=8BITMIME" in m[0]["params"].upper(), m[0]["mail"] if m else "")
    frm = uid()
    send_message(c, frm, ["a@example.org"], simple("7bit"))
    m = SINK.find(frm)
    check("without BODY=: MAIL to the next hop has no BODY=",
          len(m) == 1 and "BODY=" not in m[0]["params"].upper(), m[0]["mail"] if m else "not delivered")

    # headers only, and an empty message
    frm = uid()
    start_data(c, frm)
    c.send(b"Subject: only headers\r\nFrom: a@example.com\r\n.\r\n")
    expect("a message of headers only", c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... passed on as chaff filter makes it",
          len(m) == 1 and m[0]["data"] == to_crlf(filter_of(CH, DB, b"Subject: only headers\r\nFrom: a@example.com\r\n")),
          repr(m[0]["data"]) if m else "")
    frm = uid()
    start_data(c, frm)
    c.send(b".\r\n")
    r = c.reply(15)
    check("an empty message: 250 or a 5xx refusal (no crash)", r.code == 250 or (r.code or 0) >= 500, str(r))
    expect("  ... connection still works", c.cmd("NOOP"), "250 2.0.0")
    c.close()


def t_split_writes():
    """Commands and the end of DATA cut across TCP segments."""
    c = greeted(MAIN.port)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frm = uid("split")
    for part in ("MA", "IL FROM:<%s>" % frm, "\r\n"):
        c.send(part)
        time.sleep(0.05)
    expect("a MAIL command in three pieces", c.reply(), "250 2.1.0")
    c.send("RCPT TO:<a@example.org>\r")
    time.sleep(0.05)
    c.send("\nDATA\r\n")
    rs = [c.reply(), c.reply()]
    check("CR and LF in different segments: RCPT 250, DATA 354", [r.code for r in rs] == [250, 354],
          str([str(r) for r in rs]))
    for part in (b"Subject: split\r\n\r\nline one\r\n.", b".stuffed\r\n", b"last\r", b"\n.", b"\r", b"\n"):
        c.send(part)
        time.sleep(0.05)
    expect("the end of DATA '\\r\\n.\\r\\n' cut into pieces, a stuffed line cut after its first dot",
           c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... arrives whole: '.stuffed' unstuffed once",
          len(m) == 1 and split_message(m[0]["data"])[1] == b"\r\nline one\r\n.stuffed\r\nlast\r\n",
          repr(m[0]["data"][-80:]) if m else "not delivered")
    frm = uid("longline")
    body = b"w" * 50000 + b"\n"
    res = send_message(c, frm, ["a@example.org"], simple("one long line", body))
    expect("a 50 kB body line (under --max-size)", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... passed on unchanged", len(m) == 1 and split_message(m[0]["data"])[1] == b"\r\n" + b"w" * 50000 + b"\r\n")
    # SIZE counts CRLF line ends (RFC 1870): 35,000 empty lines are 70 kB
    # on the wire, over the limit, though 35 kB once stored with LF ends
    frm = uid("crlfsize")
    res = send_message(c, frm, ["a@example.org"], simple("many lines", b"\n" * 35000))
    expect("35,000 empty lines, 70 kB with CRLF, undeclared (over --max-size %d)" % MAXSIZE,
           final_of(res), "552 5.3.4")
    check("  ... not passed on", len(SINK.find(frm)) == 0)
    c.close()


# === CHUNKING (RFC 3030): BDAT from the client ================================
def bdat(chunk, last=False):
    """A BDAT command for CHUNK (bytes sent as they are) and the chunk."""
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


def cuts(data, points):
    """DATA cut at the offsets POINTS (ascending): the chunks."""
    assert points == sorted(points), points
    out, prev = [], 0
    for p in points + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


def send_chunks(c, frm, rcpts, chunks, nreplies=1, final_timeout=15.0):
    """MAIL, RCPTs, then CHUNKS one BDAT each, waiting for each reply, the
    last with LAST: (replies to the middle chunks, the final reply or list)."""
    c.cmd("MAIL FROM:<%s>" % frm)
    for a in rcpts:
        c.cmd("RCPT TO:<%s>" % a)
    mids = []
    for ch in chunks[:-1]:
        c.send(bdat(ch))
        mids.append(c.reply())
    c.send(bdat(chunks[-1], True))
    if nreplies == 1:
        return mids, c.reply(final_timeout)
    return mids, [c.reply(final_timeout) for _ in range(nreplies)]


DOTS_BODY = b"Hello.\n.hidden line\n.\n..two dots\n. dot space\nend\n"


def t_bdat_server():
    c = greeted(MAIN.port)
    # one chunk
    msg = simple("bdat one chunk", DOTS_BODY)
    frm = uid("bdat1")
    _, r = send_chunks(c, frm, ["a@example.org"], [to_crlf(msg)])
    expect("BDAT: the whole message as one 'BDAT n LAST' chunk", r, "250 2.0.0")
    check("  ... 'Ok: queued as ID'", bool(re.match(r"250 2\.0\.0 Ok: queued as \S+$", r.last)), str(r))
    m = SINK.find(frm)
    check("  ... at the next hop once, as chaff filter tags it", len(m) == 1 and m[0]["data"] == oracle_wire(msg),
          repr(m[0]["data"][-120:]) if m else "not delivered")
    check("  ... lines '.hidden', '.', '..two' taken as sent (no dot handling in BDAT)",
          len(m) == 1 and split_message(m[0]["data"])[1] == to_crlf(b"\n" + DOTS_BODY),
          repr(split_message(m[0]["data"])[1]) if m else "")
    check("  ... and dot-stuffed once on the wire to a next hop without CHUNKING (DATA)",
          len(m) == 1 and all(x in m[0]["raw"] for x in (b"\r\n..hidden line\r\n", b"\r\n..\r\n",
                                                         b"\r\n...two dots\r\n", b"\r\n.. dot space\r\n")),
          repr(m[0]["raw"][-120:]) if m else "")

    # several chunks, cut in awkward places
    msg = simple("bdat chunks", DOTS_BODY)
    w = to_crlf(msg)
    pts = [7, w.index(b"\r\n\r\n") + 1, w.index(b".hidden"), w.index(b"\r\n.\r\n") + 3,
           w.index(b"\r\nend") + 1]
    chunks = cuts(w, pts)
    frm = uid("bdatn")
    mids, r = send_chunks(c, frm, ["a@example.org"], chunks)
    check("BDAT in 6 chunks, cut mid-line, between CR and LF (end of the header; after a '.' line), "
          "before a '.' line: each middle chunk '250 2.0.0 Ok: <n> octets'",
          [x.last for x in mids] == ["250 2.0.0 Ok: %d octets" % len(x) for x in chunks[:-1]],
          str([str(x) for x in mids]))
    expect("  ... the LAST chunk", r, "250 2.0.0 Ok: queued as")
    m = SINK.find(frm)
    check("  ... the message arrives whole, as chaff filter tags it (CRLF across chunk ends is one line end)",
          len(m) == 1 and m[0]["data"] == oracle_wire(msg), repr(m[0]["data"]) if m else "not delivered")
    check("  ... the '.' lines exactly as sent", len(m) == 1 and
          split_message(m[0]["data"])[1] == to_crlf(b"\n" + DOTS_BODY))
    ls = log_for(MAIN, frm)
    check("  ... one log line for it, with size= the message size (%d)" % len(w),
          len(ls) == 1 and all(k in log_fields(ls[0]) for k in LOG_KEYS) and
          abs(int(log_fields(ls[0]).get("size", -1)) - len(w)) <= len(w) // 10 + 300, str(ls))

    # a CR at a chunk's end that is not followed by LF is kept (a bare CR,
    # which goes to the next hop as a line end: see t_dots)
    body = b"cr\rinside\nend\n"
    w1, w2 = to_crlf(simple("cr one", body)), to_crlf(simple("cr split", body))
    f1, f2 = uid("bdatcr"), uid("bdatcr")
    send_chunks(c, f1, ["a@example.org"], [w1])
    i = w2.index(b"cr\r") + 3
    _, r = send_chunks(c, f2, ["a@example.org"], [w2[:i], w2[i:]])
    m1, m2 = SINK.find(f1), SINK.find(f2)
    check("a chunk ending in a CR that no LF follows: the CR is kept (same body as in one chunk)",
          r.is_("250 2.0.0") and len(m1) == 1 and len(m2) == 1 and
          split_message(m2[0]["data"])[1] == split_message(m1[0]["data"])[1] and
          b"cr\r\ninside" in m2[0]["data"], "%s %r" % (r, m2[0]["data"][-40:] if m2 else ""))

    # bare LF line ends inside chunks
    msg = simple("bdat bare LF", b"one\n.two\nthree\n")
    frm = uid("bdatlf")
    _, r = send_chunks(c, frm, ["a@example.org"], [msg[:20], msg[20:]])
    m = SINK.find(frm)
    check("BDAT with bare LF line ends: passed on with CRLF, as chaff filter tags it",
          r.is_("250 2.0.0") and len(m) == 1 and m[0]["data"] == oracle_wire(msg), str(r))

    # a DATA transaction after a BDAT one (chunking ends with the transaction)
    frm = uid("bdatthendata")
    msg = simple("data after a bdat transaction")
    expect("DATA in the next transaction after a BDAT one",
           final_of(send_message(c, frm, ["a@example.org"], msg)), "250 2.0.0")
    check("  ... passed on", len(SINK.find(frm)) == 1 and SINK.find(frm)[0]["data"] == oracle_wire(msg))

    # BDAT 0 LAST ends a message
    msg = simple("bdat 0 last", b"zero last\n")
    frm = uid("bdat0")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    c.send(bdat(to_crlf(msg)))
    r1 = c.reply()
    r2 = c.cmd("BDAT 0 LAST", 15)
    check("a chunk, then 'BDAT 0 LAST': 250 octets, then 250 queued",
          r1.is_("250 2.0.0 Ok: %d octets" % len(to_crlf(msg))) and r2.is_("250 2.0.0 Ok: queued as"),
          "%s %s" % (r1, r2))
    m = SINK.find(frm)
    check("  ... the message whole at the next hop", len(m) == 1 and m[0]["data"] == oracle_wire(msg))
    c.cmd("MAIL FROM:<%s>" % uid("bdat0only"))
    c.cmd("RCPT TO:<a@example.org>")
    r = c.cmd("BDAT 0 LAST", 15)
    check("'BDAT 0 LAST' as the only chunk (an empty message): 250 or a 5xx refusal (no crash)",
          r.code == 250 or (r.code or 0) >= 500, str(r))
    expect("  ... connection still works", c.cmd("NOOP"), "250 2.0.0")
    c.close()


def t_bdat_pipelining():
    c = greeted(MAIN.port)
    f1, f2 = uid("bdatpipe"), uid("bdatpipe")
    m1 = simple("bdat pipelined", b".dot first\nsecond\n")
    c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<a@example.org>\r\n" % f1.encode() + bdat(to_crlf(m1), True) +
           b"MAIL FROM:<%s>\r\n" % f2.encode())
    rs = [c.reply(15) for _ in range(4)]
    check("MAIL, RCPT, 'BDAT n LAST' + message, next MAIL in one write: 250 250 250 250",
          [r.code for r in rs] == [250] * 4 and rs[2].last.startswith("250 2.0.0 Ok: queued as"),
          str([str(r) for r in rs]))
    m = SINK.find(f1)
    check("  ... passed on whole", len(m) == 1 and m[0]["data"] == oracle_wire(m1))
    m2 = simple("bdat pipelined chunks", b"line\n.\nend\n")
    w = to_crlf(m2)
    i = w.index(b".\r\n") + 1
    c.send(b"RCPT TO:<a@example.org>\r\nRCPT TO:<x@elsewhere.net>\r\nRCPT TO:<b@example.org>\r\n" +
           bdat(w[:i]) + bdat(w[i:]) + b"BDAT 0 LAST\r\nQUIT\r\n")
    rs = [c.reply(15) for _ in range(7)]
    check("RCPT, RCPT (relay), RCPT, BDAT (cut between '.' and CRLF), BDAT, BDAT 0 LAST, QUIT in one write: "
          "250 550 250 250 250 250 221", [r.code for r in rs] == [250, 550, 250, 250, 250, 250, 221],
          str([str(r) for r in rs]))
    check("  ... closed after QUIT", c.closed())
    c.close()
    m = SINK.find(f2)
    check("  ... passed on for a, b, whole", len(m) == 1 and m[0]["rcpts"] == ["a@example.org", "b@example.org"]
          and m[0]["data"] == oracle_wire(m2), str([x["rcpts"] for x in m]))

    # the command line and the chunk cut across TCP segments
    c = greeted(MAIN.port)
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frm = uid("bdatsplit")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    msg = simple("bdat split", b"abc\n.def\n")
    w = to_crlf(msg)
    line = b"BDAT %d LAST\r\n" % len(w)
    for part in (line[:3], line[3:-1], line[-1:] + w[:5], w[5:-3], w[-3:-1], w[-1:]):
        c.send(part)
        time.sleep(0.04)
    expect("a BDAT line and its chunk cut into 6 TCP segments", c.reply(15), "250 2.0.0 Ok: queued as")
    m = SINK.find(frm)
    check("  ... arrives whole", len(m) == 1 and m[0]["data"] == oracle_wire(msg))
    c.close()


def t_bdat_errors():
    c = greeted(MAIN.port)
    c.send(b"BDAT 12\r\nNOOP\r\nRSET\r\nHELP\r\n")
    r = c.reply()
    expect("BDAT without MAIL", r, "503 5.5.1")
    expect("  ... its 12 bytes ('NOOP\\r\\nRSET\\r\\n') are skipped, not run: the next reply is HELP's", c.reply(), "214")
    c.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
    expect("BDAT LAST without MAIL", c.reply(), "503 5.5.1")
    expect("  ... 'QUIT\\r\\n' in it skipped: the next reply is NOOP's", c.reply(), "250 2.0.0")
    c.cmd("MAIL FROM:<%s>" % uid("bdatnorcpt"))
    c.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
    expect("BDAT after MAIL, before any RCPT", c.reply(), "503 5.5.1")
    expect("  ... skipped too: NOOP answered next", c.reply(), "250 2.0.0")
    expect("  ... the transaction is still open: RCPT", c.cmd("RCPT TO:<a@example.org>"), "250 2.1.5")
    c.cmd("RSET")
    c.cmd("MAIL FROM:<%s>" % uid("bdatrelay"))
    c.cmd("RCPT TO:<x@elsewhere.net>")
    c.send(bdat(b"Subject: x\r\n\r\nNOOP\r\n", True) + b"NOOP\r\n")
    expect("BDAT LAST when the only RCPT was refused", c.reply(), "503 5.5.1")
    expect("  ... skipped: NOOP answered next", c.reply(), "250 2.0.0")
    c.cmd("RSET")

    # DATA after BDAT
    frm = uid("bdatdata")
    msg = simple("data after bdat", b"first part\nsecond part\n")
    w = to_crlf(msg)
    i = w.index(b"second")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    c.send(bdat(w[:i]))
    expect("BDAT (a middle chunk)", c.reply(), "250 2.0.0 Ok: %d octets" % i)
    r = c.cmd("DATA")
    expect("DATA after BDAT in the same transaction", r, "503 5.5.1")
    c.send(bdat(w[i:], True))
    expect("  ... then BDAT LAST still ends the message", c.reply(15), "250 2.0.0 Ok: queued as")
    m = SINK.find(frm)
    check("  ... the message is the chunks alone, whole", len(m) == 1 and m[0]["data"] == oracle_wire(msg),
          repr(m[0]["data"][-60:]) if m else "not delivered")

    # RSET after a chunk drops it
    frm, frm0 = uid("bdatrset"), uid("bdatrset0")
    c.cmd("MAIL FROM:<%s>" % frm0)
    c.cmd("RCPT TO:<a@example.org>")
    c.send(bdat(b"X-Leftover: yes\r\n"))
    c.reply()
    expect("RSET after a middle chunk", c.cmd("RSET"), "250 2.0.0")
    msg = simple("after rset")
    res = send_message(c, frm, ["a@example.org"], msg)
    expect("  ... then a DATA transaction", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... its message has nothing of the dropped chunk", len(m) == 1 and m[0]["data"] == oracle_wire(msg))
    time.sleep(0.1)
    check("  ... and the dropped transaction was never passed on",
          SINK.find(frm0) == [] and SINK.find_attempts(frm0) == [])

    # over --max-size
    frm = uid("bdatbig")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    big = b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 700            # 70 kB
    t0 = time.monotonic()
    c.send(bdat(big, True) + b"NOOP\r\n")
    r = c.reply(15)
    expect("one 'BDAT n LAST' chunk of 70 kB, --max-size %d" % MAXSIZE, r, "552 5.3.4")
    check("  ... 'Message size exceeds fixed limit'", "Message size exceeds fixed limit" in r.last, str(r))
    expect("  ... the chunk was read to its end: NOOP answered next", c.reply(), "250 2.0.0")
    expect("  ... and the transaction is over (RCPT: 503)", c.cmd("RCPT TO:<a@example.org>"), "503 5.5.1")
    frm2 = uid("bdatbig")
    c.cmd("MAIL FROM:<%s>" % frm2)
    c.cmd("RCPT TO:<a@example.org>")
    part = b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 400          # 40 kB
    c.send(bdat(part))
    r1 = c.reply(15)
    c.send(bdat(part))
    r2 = c.reply(15)
    c.send(bdat(b"end\r\n", True))
    r3 = c.reply(15)
    check("40 kB chunk, 40 kB chunk, LAST chunk: 250 for the first, 552 5.3.4 for the chunk over the limit "
          "(then 503 for LAST) or for the LAST chunk",
          r1.is_("250 2.0.0") and ((r2.is_("552 5.3.4") and r3.is_("503")) or
                                   (r2.is_("250 2.0.0") and r3.is_("552 5.3.4"))),
          "%s %s %s" % (r1, r2, r3))
    c.cmd("MAIL FROM:<%s>" % uid("bdathuge"))
    c.cmd("RCPT TO:<a@example.org>")
    c.send(bdat(b"q" * 4000000, True) + b"NOOP\r\n")
    r = c.reply(15)
    expect("a 4 MB chunk", r, "552 5.3.4")
    expect("  ... read to its end: NOOP answered next", c.reply(), "250 2.0.0")
    check("  ... refused in reasonable time (%.1f s for all three)" % (time.monotonic() - t0),
          time.monotonic() - t0 < 10)
    time.sleep(0.2)
    check("  ... none of them passed on", not SINK.find(frm) and not SINK.find(frm2) and
          not SINK.find_attempts(frm) and not SINK.find_attempts(frm2))
    frm = uid("bdatfits")
    fits = simple("fits", (b"z" * 70 + b"\n") * 700)                          # 50 kB
    _, r = send_chunks(c, frm, ["a@example.org"], [to_crlf(fits)])
    expect("then a 50 kB message by BDAT in the same connection", r, "250 2.0.0")
    check("  ... passed on", len(SINK.find(frm)) == 1)
    c.close()

    # counts that cannot be read
    for line in ("BDAT abc", "BDAT", "BDAT 10 LATER", "BDAT -5 LAST", "BDAT 99999999999999999999999 LAST"):
        c = greeted(MAIN.port)
        frm = uid("bdatbad")
        c.cmd("MAIL FROM:<%s>" % frm)
        c.cmd("RCPT TO:<a@example.org>")
        c.send(line + "\r\nSubject: x\r\n\r\nNOOP\r\n")
        r1, r2 = c.reply(), c.reply()
        check("'%s': '501 5.5.4 Syntax: BDAT count [LAST]', then 421 4.7.0, closed" % line,
              r1.last == "501 5.5.4 Syntax: BDAT count [LAST]" and r2.is_("421 4.7.0") and c.closed(),
              "%s %s" % (r1, r2))
        c.close()


# === CHUNKING: BDAT to the next hop ===========================================
CSINK = None
CHUNK = None


def t_bdat_client():
    global CSINK, CHUNK
    CSINK = Sink()
    CSINK.mode = {"chunking": True}
    # one thread: one next-hop connection, so that staying in step on it can be seen
    CHUNK = serve("chunking", ["--next-hop", "127.0.0.1:%d" % CSINK.port, "--hop-timeout", "2", "--threads", "1"])
    c = greeted(CHUNK.port)

    # the same messages through MAIN (its next hop: no CHUNKING) and CHUNK
    cases = [("corpus ham", HAM[0][1], ""), ("corpus spam", SPAM[0][1], ""),
             ("'.' lines", simple("dots to bdat", DOTS_BODY), ""),
             ("8-bit, BODY=8BITMIME", simple("8bit", b"caf\xc3\xa9 \xff\n" + b"y" * 3000 + b"\n.x\n",
                                             b"Content-Type: text/plain; charset=utf-8\n"), "BODY=8BITMIME")]
    cm = greeted(MAIN.port)
    sent = {}
    for name, msg, params in cases:
        fd, fb = uid("viadata"), uid("viabdat")
        sent[name] = fb
        rd = final_of(send_message(cm, fd, ["a@example.org"], msg, params=params))
        rb = final_of(send_message(c, fb, ["a@example.org"], msg, params=params))
        md, mb = SINK.find(fd), CSINK.find(fb)
        ok = len(md) == 1 and len(mb) == 1
        check("%s to a next hop with PIPELINING and CHUNKING, one recipient: 250, sent as one 'BDAT n LAST', "
              "no DATA" % name,
              rb.is_("250 2.0.0 Ok: queued as") and len(mb) == 1 and mb[0].get("via") == "BDAT" and
              mb[0]["bdat"] == ["BDAT %d LAST" % len(mb[0]["data"])],
              "%s; %s" % (rb, [(x.get("via"), x["bdat"]) for x in mb]))
        check("  ... byte-identical to what the DATA next hop got for it (headers included)",
              rd.is_("250") and ok and mb[0]["data"] == md[0]["data"],
              ("%r\n vs %r" % (mb[0]["data"][:300], md[0]["data"][:300])) if ok else "%s %s" % (rd, rb))
        check("  ... which is what chaff filter makes of it", ok and mb[0]["data"] == oracle_wire(msg))
        if params:
            check("  ... MAIL to the next hop has %s" % params, len(mb) == 1 and params in mb[0]["params"],
                  mb[0]["mail"] if mb else "")
    cm.close()
    m = CSINK.find(sent["'.' lines"])
    check("'.' lines to the BDAT next hop: not stuffed, and the lone '.' does not end the message",
          len(m) == 1 and m[0]["raw"].endswith(b"\r\nHello.\r\n.hidden line\r\n.\r\n..two dots\r\n"
                                                 b". dot space\r\nend\r\n"),
          repr(m[0]["raw"][-100:]) if m else "")

    # BDAT on both legs, in chunks
    msg = simple("bdat both ways", DOTS_BODY)
    w = to_crlf(msg)
    frm = uid("bdat2")
    _, r = send_chunks(c, frm, ["a@example.org"], cuts(w, [w.index(b"\r\n.hidden") + 1, w.index(b"\r\n.\r\n") + 3]))
    m = CSINK.find(frm)
    check("client BDAT in 3 chunks (cut between CR and LF) to a CHUNKING next hop: one 'BDAT n LAST', "
          "exactly as chaff filter tags it",
          r.is_("250 2.0.0") and len(m) == 1 and len(m[0]["chunks"]) == 1 and m[0]["data"] == oracle_wire(msg),
          "%s %r" % (r, m[0]["data"][-80:] if m else b""))

    # two recipients: DATA
    frm = uid("bdat2rcpt")
    msg = simple("two recipients")
    r = final_of(send_message(c, frm, ["a@example.org", "b@example.org"], msg))
    m = CSINK.find(frm)
    check("two recipients, CHUNKING next hop: 250, sent with DATA (no BDAT), both recipients",
          r.is_("250 2.0.0") and len(m) == 1 and m[0].get("via") == "DATA" and not m[0]["bdat"] and
          m[0]["rcpts"] == ["a@example.org", "b@example.org"],
          "%s %s" % (r, [(x.get("via"), x["rcpts"]) for x in m]))
    check("  ... the message as chaff filter tags it", len(m) == 1 and m[0]["data"] == oracle_wire(msg))

    # the next hop refusing, on one hop connection that must stay in step
    def bdat_mode(env):
        return ("452 4.3.1 disk full" if env["from"].startswith("bdat452") else
                "554 5.7.1 policy" if env["from"].startswith("bdat554") else None)

    CSINK.set_mode({"chunking": True, "bdat": bdat_mode,
                    "mail": lambda a: "451 4.3.0 try later" if a.startswith("mail451") else None,
                    "rcpt": lambda a: "550 5.1.1 no such user" if a.startswith("nouser") else None})
    c.close()
    c = greeted(CHUNK.port, timeout=15)
    frm = uid("warmup")
    send_message(c, frm, ["a@example.org"], simple("warm up"))
    conns = CSINK.connections
    for what, frm, rcpt, want in (("refuses the BDAT LAST with 452", uid("bdat452"), "a@example.org", "452 4.3.1"),
                                  ("refuses the BDAT LAST with 554", uid("bdat554"), "a@example.org", "554 5.7.1"),
                                  ("refuses MAIL with 451 (RCPT, BDAT + chunk already sent)", uid("mail451"),
                                   "a@example.org", "451 4.3.0"),
                                  ("refuses the one RCPT with 550 (BDAT + chunk already sent)", uid("nouser"),
                                   "nouser@example.org", "550 5.1.1")):
        msg = simple("refused")
        r = final_of(send_message(c, frm, [rcpt], msg, final_timeout=15))
        check("CHUNKING next hop %s: the client gets %s" % (what, want[:3]),
              r.is_(want), "got %s" % r)
        time.sleep(0.05)
        check("  ... nothing delivered", CSINK.find(frm) == [])
        expect("  ... connection still usable", c.cmd("RSET"), "250 2.0.0")
    msg = simple("after refusals", b".x\nend\n")
    frm = uid("bdatafter")
    r = final_of(send_message(c, frm, ["a@example.org"], msg))
    m = CSINK.find(frm)
    check("  ... then a message goes through whole", r.is_("250 2.0.0") and len(m) == 1 and
          m[0]["data"] == oracle_wire(msg), str(r))
    check("  ... all over the same next-hop connection (it stayed in step)", CSINK.connections == conns,
          "%d new connections" % (CSINK.connections - conns))
    a = [x for x in CSINK.attempts if x["from"].startswith(("bdat452", "bdat554"))]
    check("  ... the refused ones had reached the next hop whole, by BDAT", len(a) == 2 and
          all(x.get("via") == "BDAT" and x["data"].endswith(b"\r\nHello there.\r\n") for x in a),
          str([(x.get("via"), x["data"][-30:]) for x in a]))
    c.close()

    # pipelined: the next hop answers MAIL and RCPT only after BDAT and the chunk arrived
    CSINK.set_mode({"chunking": True, "hold": True})
    c = greeted(CHUNK.port, timeout=15)
    frm = uid("bdathold")
    msg = simple("held replies")
    t0 = time.monotonic()
    r = final_of(send_message(c, frm, ["a@example.org"], msg, final_timeout=15))
    el = time.monotonic() - t0
    m = CSINK.find(frm)
    check("MAIL, RCPT, 'BDAT n LAST' and the message sent without waiting for a reply (the next hop "
          "answers MAIL only once all is there): 250 at once (%.2f s)" % el,
          r.is_("250 2.0.0") and el < 1.5 and len(m) == 1 and m[0].get("via") == "BDAT", str(r))
    c.close()

    # CHUNKING without PIPELINING: DATA
    CSINK.set_mode({"chunking": True, "pipelining": False})
    c = greeted(CHUNK.port, timeout=15)
    frm = uid("bdatnopipe")
    msg = simple("chunking, no pipelining")
    r = final_of(send_message(c, frm, ["a@example.org"], msg))
    m = CSINK.find(frm)
    check("next hop with CHUNKING but not PIPELINING: DATA is used", r.is_("250 2.0.0") and len(m) == 1 and
          m[0].get("via") == "DATA" and m[0]["data"] == oracle_wire(msg),
          "%s %s" % (r, [x.get("via") for x in m]))
    c.close()
    CSINK.set_mode({"chunking": True})


def t_bdat_lmtp_hop():
    """--lmtp with a CHUNKING next hop: BDAT for several recipients, one reply each."""
    s = serve("lmtp-chunking", ["--lmtp", "--next-hop", "127.0.0.1:%d" % CSINK.port, "--hop-timeout", "2",
                                "--domains", "example.org"])
    CSINK.set_mode({"chunking": True,
                    "rcpt": lambda a: "550 5.1.1 no such user" if a.startswith("nouser") else None})
    c = greeted(s.port, hello="LHLO client.test", timeout=15)
    frm = uid("lmtpbdat")
    msg = simple("lmtp to a chunking hop", b".dot\nend\n")
    w = to_crlf(msg)
    i = w.index(b"\r\n.dot") + 1
    _, finals = send_chunks(c, frm, ["a@example.org", "nouser@example.org", "c@example.org"],
                            [w[:i], w[i:]], nreplies=3)
    check("--lmtp, client BDAT, next hop refusing the 2nd of 3 recipients: 250, 550, 250",
          [r.code for r in finals] == [250, 550, 250], str([str(r) for r in finals]))
    expect("  ... and no fourth reply (NOOP answered next)", c.cmd("NOOP"), "250 2.0.0")
    m = CSINK.find(frm)
    check("  ... the next hop got it by one 'BDAT n LAST' for a and c", len(m) == 1 and m[0].get("via") == "BDAT"
          and m[0]["rcpts"] == ["a@example.org", "c@example.org"] and len(m[0]["bdat"]) == 1,
          str([(x.get("via"), x["rcpts"], x["bdat"]) for x in m]))
    check("  ... as chaff filter tags it", len(m) == 1 and m[0]["data"] == oracle_wire(msg))
    c.close()
    CSINK.set_mode({"chunking": True})


def t_actions_per_verdict():
    q = os.path.join(TMP, "q-verdicts")
    s = serve("verdicts", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--on-spam", "pass", "--on-ham", "quarantine",
                           "--on-unsure", "reject", "--quarantine", q])
    cases = [("ham", HAM[1][1]), ("spam", SPAM[1][1]), ("unsure?", simple("Hello", b"Hello from the test.\n"))]
    c = greeted(s.port)
    for name, msg in cases:
        verdict = header(filter_of(CH, DB, msg), "X-Chaff-Verdict")[0]
        frm = uid("verdict")
        nq = len(maildir_files(q))
        r = final_of(send_message(c, frm, ["a@example.org"], msg))
        time.sleep(0.1)
        if verdict == "ham":
            check("--on-ham quarantine: a ham message quarantined (250, in the quarantine, not passed on)",
                  r.is_("250 2.0.0") and len(maildir_files(q)) == nq + 1 and SINK.find(frm) == [], str(r))
        elif verdict == "unsure":
            check("--on-unsure reject: an unsure message gets 550 5.7.1, not passed on",
                  r.is_("550 5.7.1") and SINK.find(frm) == [] and len(maildir_files(q)) == nq, str(r))
            check("  ... the reply says unsure, not spam", "rejected as unsure" in r.last, str(r))
        else:
            check("--on-spam pass with those: a spam message passed on",
                  r.is_("250 2.0.0") and len(SINK.find(frm)) == 1, str(r))
    c.close()


# === what the next hop receives ===========================================
SPAM_FROM = None


def added_ok(data, verdict):
    """The added header lines are the last of the header block, in the spec's order."""
    hdr, _ = split_message(data)
    names = [l.split(b":")[0].decode("latin-1").lower() for l in hdr if l[:1] not in (b" ", b"\t")]
    want = (["x-spam-flag"] if verdict == "spam" else []) + ["x-spam-status", "x-spam-level", "x-chaff-score", "x-chaff-verdict"]
    return names[-len(want):] == want and sum(n in want for n in names) == len(want)


def t_headers_envelope():
    global SPAM_FROM
    c = greeted(MAIN.port)
    # a spam message to three recipients
    path, msg = SPAM[0]
    frm = SPAM_FROM = uid("spam")
    rc = ["one@example.org", "two@sub.example.org", "three@example.org"]
    res = send_message(c, frm, rc, msg)
    r = final_of(res)
    expect("corpus spam, --on-spam pass (default)", r, "250 2.0.0")
    check("  ... 'Ok: queued as ID'", bool(re.match(r"250 2\.0\.0 Ok: queued as \S+", r.last)), str(r))
    m = SINK.find(frm)   # looked at right after the 250: it was passed on before the reply
    check("  ... at the next hop by the time of the 250, once", len(m) == 1, "%d copies" % len(m))
    if m:
        d = m[0]
        check("  ... envelope: MAIL FROM unchanged", d["from"] == frm, d["mail"])
        check("  ... envelope: all RCPT TOs, in order", d["rcpts"] == rc, str(d["rcpts"]))
        check("  ... the next hop was greeted with EHLO and a name", bool(re.fullmatch(r"EHLO \S+", d["hello"] or "")),
              repr(d["hello"]))
        check("  ... X-Spam-Flag: YES", header(d["data"], "X-Spam-Flag") == ["YES"], str(header(d["data"], "X-Spam-Flag")))
        st = header(d["data"], "X-Spam-Status")
        check("  ... X-Spam-Status: Yes, score=... required=0.600 tests=CHAFF_SPAM version=chaff-...",
              len(st) == 1 and re.fullmatch(r"Yes, score=[01]\.\d{3} required=0\.600 tests=CHAFF_SPAM version=chaff-\S+", st[0]),
              str(st))
        check("  ... X-Chaff-Verdict: spam", header(d["data"], "X-Chaff-Verdict") == ["spam"])
        sc = header(d["data"], "X-Chaff-Score")
        check("  ... X-Chaff-Score: 0.dddddd, >= 0.6", len(sc) == 1 and re.fullmatch(r"[01]\.\d{6}", sc[0])
              and float(sc[0]) >= 0.6, str(sc))
        check("  ... added at the end of the header block, in order", added_ok(d["data"], "spam"))
        check("  ... body unchanged", split_message(d["data"])[1] == to_crlf(split_message(msg)[1]))
        check("  ... the message exactly as chaff filter tags it (same score)", d["data"] == oracle_wire(msg))
        check("  ... CRLF line ends on the wire", b"\n" not in d["raw"].replace(b"\r\n", b""))

    # ham
    path, msg = HAM[0]
    frm = uid("ham")
    res = send_message(c, frm, ["h@example.org"], msg)
    expect("corpus ham", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    if check("  ... passed on once", len(m) == 1, "%d copies" % len(m)):
        d = m[0]["data"]
        check("  ... no X-Spam-Flag", header(d, "X-Spam-Flag") == [], str(header(d, "X-Spam-Flag")))
        st = header(d, "X-Spam-Status")
        check("  ... X-Spam-Status: No, ... tests=CHAFF_HAM",
              len(st) == 1 and re.fullmatch(r"No, score=0\.\d{3} required=0\.600 tests=CHAFF_HAM version=chaff-\S+", st[0]),
              str(st))
        check("  ... X-Chaff-Verdict: ham", header(d, "X-Chaff-Verdict") == ["ham"])
        check("  ... added at the end of the header block, in order", added_ok(d, "ham"))
        check("  ... exactly as chaff filter tags it", d == oracle_wire(msg))

    # forged headers from the client
    hdr, body = split_message(msg)
    forged = (b"X-Spam-Flag: YES\nX-Chaff-Verdict: spam\nx-chaff-score: 1.000000\n"
              b"X-Spam-Status: Yes,\n\tscore=1.000 required=0.600\n")
    fmsg = forged + b"".join(hdr) + body
    frm = uid("forged")
    res = send_message(c, frm, ["h@example.org"], fmsg)
    expect("ham with forged X-Spam-Flag, X-Spam-Status (folded), X-Chaff-* headers", final_of(res), "250 2.0.0")
    m = SINK.find(frm)
    if check("  ... passed on once", len(m) == 1):
        d = m[0]["data"]
        check("  ... forged X-Spam-Flag removed", header(d, "X-Spam-Flag") == [], str(header(d, "X-Spam-Flag")))
        check("  ... one X-Chaff-Verdict: ham", header(d, "X-Chaff-Verdict") == ["ham"], str(header(d, "X-Chaff-Verdict")))
        check("  ... one X-Chaff-Score (ours)", len(header(d, "X-Chaff-Score")) == 1, str(header(d, "X-Chaff-Score")))
        st = header(d, "X-Spam-Status")
        check("  ... one X-Spam-Status: No (folded forgery gone with its continuation)",
              len(st) == 1 and st[0].startswith("No,") and b"\tscore=1.000" not in d, str(st))
        check("  ... the rest exactly as chaff filter makes it", d == oracle_wire(fmsg))

    # null sender
    res = send_message(c, "", ["null@example.org"], simple("bounce"))
    expect("MAIL FROM:<> message", final_of(res), "250 2.0.0")
    m = [x for x in SINK.find("") if x["rcpts"] == ["null@example.org"]]
    check("  ... passed on with MAIL FROM:<>", len(m) == 1 and "<>" in m[0]["mail"], str([x["mail"] for x in m]))
    c.close()


def t_dsn_smtputf8():
    """A before-queue proxy (Postfix's smtpd_proxy_filter) repeats its
    client's MAIL and RCPT as they came, with the DSN and SMTPUTF8
    parameters its public server offers: taken, and passed on to a next hop
    that offers the same extensions, left out for one that does not. The
    same for BODY=8BITMIME."""
    plain, full = Sink(), Sink()
    full.set_mode({"dsn": True, "smtputf8": True})
    plain.set_mode({"eightbit": False})
    mail = "RET=HDRS ENVID=QQ+2Bid.1 SMTPUTF8 BODY=8BITMIME"
    rcpt = "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bx@example.org"
    for name, sink in (("plain", plain), ("full", full)):
        srv = serve("dsn-" + name, ["--next-hop", "127.0.0.1:%d" % sink.port, "--hostname", HOST])
        c = greeted(srv.port)
        frm = uid("dsn")
        res = send_message(c, frm, ["a@example.org", "b@example.org"], simple("dsn"),
                           params=mail, rcpt_params=rcpt)
        expect("MAIL with RET, ENVID, SMTPUTF8 (next hop %s)" % name, res["mail"], "250 2.1.0")
        for r in res["rcpt"]:
            expect("RCPT with NOTIFY, ORCPT (next hop %s)" % name, r, "250 2.1.5")
        expect("  ... the message (next hop %s)" % name, final_of(res), "250 2.0.0")
        m = sink.find(frm)
        if name == "full":
            check("  ... MAIL at a next hop with DSN and SMTPUTF8 keeps them",
                  len(m) == 1 and m[0]["params"] == "BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2Bid.1",
                  m[0]["mail"] if m else "not delivered")
            check("  ... each RCPT keeps NOTIFY and ORCPT",
                  len(m) == 1 and all(x.endswith(" " + rcpt) for x in m[0]["rcpt_cmds"])
                  and len(m[0]["rcpt_cmds"]) == 2, str(m[0]["rcpt_cmds"]) if m else "")
        else:
            check("  ... MAIL at a next hop without DSN, SMTPUTF8, 8BITMIME: none of them",
                  len(m) == 1 and m[0]["params"] == "", m[0]["mail"] if m else "not delivered")
            check("  ... RCPT without NOTIFY and ORCPT",
                  len(m) == 1 and all(x.endswith(">") for x in m[0]["rcpt_cmds"]),
                  str(m[0]["rcpt_cmds"]) if m else "")
        c.close()
    # What a next hop without the extension cannot take as it is, chaff
    # refuses (it converts nothing; RFC 6152 section 3, RFC 6531 section
    # 3.2); a next hop that offers it gets it. Undeclared 8-bit text goes on.
    eight = simple("8bit", "caf\u00e9 \u00e9t\u00e9\n".encode())
    utf8_subject = simple("r\u00e9sum\u00e9")
    cases = (("BODY=8BITMIME, an 8-bit body", "BODY=8BITMIME", "a@example.org", eight, "554 5.6.3"),
             ("SMTPUTF8, a UTF-8 recipient", "SMTPUTF8", "j\u00f6rg@example.org", simple("u"), "553 5.6.7"),
             ("SMTPUTF8, a UTF-8 Subject", "SMTPUTF8", "a@example.org", utf8_subject, "554 5.6.9"),
             ("an 8-bit body, undeclared", "", "a@example.org", eight, "250 2.0.0"))
    for name, sink in (("plain", plain), ("full", full)):
        srv = serve("dsn-" + name, ["--next-hop", "127.0.0.1:%d" % sink.port, "--hostname", HOST])
        for what, params, rcpt, msg, want in cases:
            c = greeted(srv.port)
            frm = uid("ext")
            res = send_message(c, frm, [rcpt], msg, params=params)
            want = want if name == "plain" else "250 2.0.0"
            expect("%s, next hop %s" % (what, name), final_of(res), want)
            check("  ... delivered once, or not at all",
                  len(sink.find(frm)) == (1 if want.startswith("250") else 0), str(len(sink.find(frm))))
            c.close()
    # The longest parameters a recipient may carry (every NOTIFY keyword
    # once, ORCPT of 250 characters) reach the next hop whole.
    orcpt = "rfc822;" + "x" * (250 - len("rfc822;") - len("@example.org")) + "@example.org"
    longest = "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=" + orcpt
    srv = serve("dsn-full", ["--next-hop", "127.0.0.1:%d" % full.port, "--hostname", HOST])
    c = greeted(srv.port)
    frm = uid("dsnlong")
    res = send_message(c, frm, ["a@example.org"], simple("dsnlong"), rcpt_params=longest)
    expect("RCPT with every NOTIFY keyword and a 250-character ORCPT", res["rcpt"][0], "250 2.1.5")
    m = full.find(frm)
    check("  ... reaches the next hop whole",
          len(m) == 1 and m[0]["rcpt_cmds"][0].endswith(" " + longest),
          str(m[0]["rcpt_cmds"])[:200] if m else "not delivered")
    c.close()
    c = greeted(MAIN.port)
    for bad, code in (("RET=SOME", "501 5.5.4"), ("RET=FULL RET=HDRS", "501 5.5.4"),
                      ("ENVID=a\x01b", "501 5.5.4"), ("SMTPUTF8=YES", "555 5.5.4"),
                      ("AUTH=<> FOO=1", "555 5.5.4")):
        expect("MAIL ... %s" % bad, c.cmd("MAIL FROM:<x@example.com> " + bad), code)
        c.cmd("RSET")
    c.cmd("MAIL FROM:<x@example.com>")
    for bad, code in (("NOTIFY=NEVER,SUCCESS", "501 5.5.4"), ("NOTIFY=SUCCESS,", "501 5.5.4"),
                      ("ORCPT=no-type", "501 5.5.4"), ("NOTIFY=DELAY NOTIFY=DELAY", "501 5.5.4"),
                      ("NOTIFY=SUCCESS,DELAY,SUCCESS", "501 5.5.4"),
                      ("NOTIFY=" + ",".join(["SUCCESS"] * 40), "501 5.5.4"),
                      ("XFOO=1", "555 5.5.4")):
        expect("RCPT ... %s" % bad, c.cmd("RCPT TO:<a@example.org> " + bad), code)
    expect("RCPT ... NOTIFY=NEVER ORCPT with 'notify=' inside",
           c.cmd("RCPT TO:<a@example.org> NOTIFY=NEVER ORCPT=rfc822;notify=x@example.org"), "250")
    c.close()
    plain.close()
    full.close()


def t_size():
    c = greeted(MAIN.port)
    r = c.cmd("MAIL FROM:<a@example.com> SIZE=%d" % (MAXSIZE * 10))
    expect("MAIL SIZE= ten times --max-size", r, "552 5.3.4")
    frm = uid("big")
    big = simple("big", (b"z" * 70 + b"\n") * 1000)          # 71 kB
    res = send_message(c, frm, ["a@example.org"], big)
    r = final_of(res)
    expect("a 71 kB message with --max-size %d" % MAXSIZE, r, "552 5.3.4")
    check("  ... 'Message size exceeds fixed limit'", "Message size exceeds fixed limit" in r.last, str(r))
    time.sleep(0.2)
    check("  ... nothing passed on", SINK.find(frm) == [] and SINK.find_attempts(frm) == [])
    expect("  ... the connection goes on: NOOP", c.cmd("NOOP"), "250 2.0.0")
    frm = uid("huge")
    t0 = time.monotonic()
    res = send_message(c, frm, ["a@example.org"], simple("huge", (b"q" * 999 + b"\n") * 8000), final_timeout=30)
    expect("an 8 MB message", final_of(res), "552 5.3.4")
    check("  ... refused in reasonable time (%.1f s)" % (time.monotonic() - t0), time.monotonic() - t0 < 20)
    frm = uid("fits")
    fits = simple("fits", (b"z" * 70 + b"\n") * 700)         # 50 kB
    res = send_message(c, frm, ["a@example.org"], fits, params="SIZE=%d" % len(fits))
    expect("then a 50 kB message in the same connection", final_of(res), "250 2.0.0")
    check("  ... passed on", len(SINK.find(frm)) == 1)
    c.close()


def t_default_allow():
    c, g = connect(MAIN.port, source="127.0.0.2")
    expect("default --allow (127.0.0.0/8): a client from 127.0.0.2", g, "220")
    c.close()


def t_log_main():
    ls = log_for(MAIN, SPAM_FROM)
    check("log: one line for the spam message", len(ls) == 1, str(ls))
    if ls:
        m = log_fields(ls[0])
        check("log line has client= from= rcpt= size= score= verdict= action=", all(k in m for k in LOG_KEYS),
              ls[0])
        if all(k in m for k in LOG_KEYS):
            d = SINK.find(SPAM_FROM)
            check("log line: client=127.0.0.1", m["client"] == "127.0.0.1", ls[0])
            check("log line: rcpt=<one@example.org>,<two@sub.example.org>,<three@example.org>",
                  m["rcpt"] == "<one@example.org>,<two@sub.example.org>,<three@example.org>", ls[0])
            check("log line: score= as in X-Chaff-Score", bool(d) and header(d[0]["data"], "X-Chaff-Score") == [m["score"]],
                  ls[0])
            check("log line: verdict=spam action=pass", m["verdict"] == "spam" and m["action"] == "pass", ls[0])
            n = len(to_crlf(SPAM[0][1]))
            check("log line: size= the message size (%d)" % n, abs(int(m["size"]) - n) <= n // 10 + 300, ls[0])
    check("log: every log line starts 'chaff serve: '",
          all(l.startswith("chaff serve: ") for l in MAIN.stderr().splitlines()), MAIN.stderr()[-500:])
    n = len([l for l in MAIN.log_lines() if "verdict=" in l])
    check("log: a line per passed-on message (%d lines, %d at the next hop from this server)"
          % (n, SINK.count()), n >= SINK.count())


# === actions ===================================================================
def t_reject():
    s = serve("reject", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--on-spam", "reject"])
    c = greeted(s.port)
    frm = uid("rej")
    r = final_of(send_message(c, frm, ["a@example.org"], SPAM[0][1]))
    check("--on-spam reject, corpus spam: '550 5.7.1 Message rejected as spam (score 0.ddd)'",
          bool(re.fullmatch(r"550 5\.7\.1 Message rejected as spam \(score [01]\.\d{3}\)", r.last)) and not r.eof,
          str(r))
    time.sleep(0.2)
    check("  ... nothing reached the next hop", SINK.find(frm) == [] and SINK.find_attempts(frm) == [])
    ls = log_for(s, frm)
    check("  ... logged with verdict=spam action=reject",
          len(ls) == 1 and "verdict=spam" in ls[0] and "action=reject" in ls[0], str(ls))
    frm = uid("rejham")
    expect("--on-spam reject, corpus ham", final_of(send_message(c, frm, ["a@example.org"], HAM[1][1])), "250 2.0.0")
    check("  ... passed on", len(SINK.find(frm)) == 1)
    c.close()

    s = serve("reject-above", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--reject-above", "0.5"])
    c = greeted(s.port)
    frm = uid("rejab")
    expect("--reject-above 0.5, spam (pass by --on-spam)",
           final_of(send_message(c, frm, ["a@example.org"], SPAM[1][1])), "550 5.7.1")
    check("  ... nothing passed on", SINK.find(frm) == [])
    frm = uid("rejab")
    expect("--reject-above 0.5, ham", final_of(send_message(c, frm, ["a@example.org"], HAM[1][1])), "250 2.0.0")
    c.close()

    # The threshold itself: a message of a middling score is refused just
    # below its score and passed just above it.
    mid = None
    for f in corpus_files("hard-ham-1")[:200] + corpus_files("spam-2")[:200]:
        b = load_message(f)
        if len(b) > 20000:
            continue
        out = run([CH, "classify", "--json", "--db", DB], inp=b).stdout
        sc = json.loads(out)["score"] if out else -1
        if 0.1 <= sc <= 0.9:
            mid = (b, sc)
            break
    if not mid:
        skip("--reject-above just below and above a message's score", "no message scores 0.1 to 0.9")
        return
    b, sc = mid
    for t, want in ((sc - 0.01, "550 5.7.1"), (sc + 0.01, "250 2.0.0")):
        s = serve("reject-at", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--reject-above", "%.4f" % t])
        c = greeted(s.port)
        expect("--reject-above %.4f, a message scoring %.4f" % (t, sc),
               final_of(send_message(c, uid("rejat"), ["a@example.org"], b)), want)
        c.close()


def maildir_files(d, sub="new"):
    p = os.path.join(d, sub)
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def t_maildir():
    md, q = os.path.join(TMP, "md"), os.path.join(TMP, "quarantine")
    s = serve("maildir", ["--maildir", md, "--on-spam", "quarantine", "--quarantine", q])
    c = greeted(s.port)
    ham = HAM[2][1]
    hamfrm = uid("md")
    res = send_message(c, hamfrm, ["a@example.org"], ham)
    r = final_of(res)
    expect("--maildir, ham", r, "250 2.0.0 Ok")
    check("  ... 'Ok: queued as ID' (spec wording)", r.last.startswith("250 2.0.0 Ok: queued as "), str(r))
    new = maildir_files(md)
    check("  ... one file in new/", len(new) == 1, str(new))
    check("  ... nothing left in tmp/", maildir_files(md, "tmp") == [], str(maildir_files(md, "tmp")))
    check("  ... cur/ exists (a real Maildir)", os.path.isdir(os.path.join(md, "cur")))
    if new:
        data = open(os.path.join(md, "new", new[0]), "rb").read()
        check("  ... LF line ends in the file", b"\r" not in data or b"\r" in ham)
        check("  ... has X-Chaff-Verdict: ham and X-Spam-Status", header(data, "X-Chaff-Verdict") == ["ham"]
              and len(header(data, "X-Spam-Status")) == 1)
        check("  ... exactly as chaff filter makes it", data == filter_of(CH, DB, ham))
    ls = log_for(s, hamfrm)
    check("  ... logged action=pass (ACTION pass, into the Maildir)", len(ls) == 1 and " action=pass" in ls[0], str(ls))
    frm = uid("mdspam")
    res = send_message(c, frm, ["a@example.org"], SPAM[2][1])
    expect("--on-spam quarantine, spam", final_of(res), "250 2.0.0")
    qn = maildir_files(q)
    check("  ... one file in the quarantine's new/", len(qn) == 1, str(qn))
    check("  ... not in the Maildir", len(maildir_files(md)) == 1)
    check("  ... nothing in the quarantine's tmp/", maildir_files(q, "tmp") == [])
    if qn:
        data = open(os.path.join(q, "new", qn[0]), "rb").read()
        check("  ... has X-Spam-Flag: YES", header(data, "X-Spam-Flag") == ["YES"])
    ls = log_for(s, frm)
    check("  ... logged action=quarantine", len(ls) == 1 and "action=quarantine" in ls[0], str(ls))

    msg = simple("md dots", b".hidden\n..two\nend\n")
    had = [os.path.join(d, "new", f) for d in (md, q) for f in maildir_files(d)]
    res = send_message(c, uid("mddots"), ["a@example.org"], msg)
    expect("--maildir, dot-stuffed lines", final_of(res), "250 2.0.0")
    new2 = [os.path.join(d, "new", f) for d in (md, q) for f in maildir_files(d)]
    new2 = [f for f in new2 if f not in had]
    if check("  ... a new file (Maildir or quarantine)", len(new2) == 1, str(new2)):
        data = open(new2[0], "rb").read()
        check("  ... unstuffed in the file", data.endswith(b"\n.hidden\n..two\nend\n"), repr(data[-60:]))

    # a Maildir that cannot be written: tmp/ replaced by a file
    before = maildir_files(md)
    os.rename(os.path.join(md, "tmp"), os.path.join(TMP, "md-tmp-away"))
    open(os.path.join(md, "tmp"), "w").close()
    frm = uid("mdfail")
    r = final_of(send_message(c, frm, ["a@example.org"], HAM[3][1]))
    check("Maildir write failure (tmp/ is a file): 451 4.3.0 or 452 4.3.1",
          r.is_("451 4.3.0") or r.is_("452 4.3.1"), str(r))
    check("  ... nothing new in new/", maildir_files(md) == before)
    os.unlink(os.path.join(md, "tmp"))
    os.rename(os.path.join(TMP, "md-tmp-away"), os.path.join(md, "tmp"))
    res = send_message(c, uid("mdok"), ["a@example.org"], HAM[3][1])
    expect("  ... and once repaired, delivery works again", final_of(res), "250 2.0.0")
    c.close()


# === the next hop failing ====================================================
def t_next_hop_failures():
    sink = Sink()
    s = serve("hop", ["--next-hop", "127.0.0.1:%d" % sink.port, "--hop-timeout", "2"])
    msg = HAM[0][1]

    def attempt(what, mode, want_class, max_time=None, not_code=None):
        sink.set_mode(mode)
        c = greeted(s.port, timeout=15)
        frm = uid("hop")
        t0 = time.monotonic()
        res = send_message(c, frm, ["a@example.org", "b@example.org"], msg, final_timeout=15)
        el = time.monotonic() - t0
        r = final_of(res)
        check("next hop %s: client gets %dxx" % (what, want_class), r.cls() == want_class and not r.eof,
              "got %s (at %s)" % (r, res["failed"] or "the dot"))
        if want_class == 4 and r.code and r.code // 100 == 4:
            check("  ... with a 4.x.x enhanced code", bool(re.match(r"4\d\d 4\.\d+\.\d+", r.last)), str(r))
        if max_time:
            check("  ... within %.0f s (took %.1f s)" % (max_time, el), el < max_time)
        if not_code:
            check("  ... not %d" % not_code, r.code != not_code, str(r))
        time.sleep(0.1)
        if want_class == 2:
            m = sink.find(frm)
            check("  ... delivered once", len(m) == 1, "%d copies" % len(m))
            check("  ... the next hop greeted with EHLO and a name (no --hostname: RFC 5321 needs a domain)",
                  len(m) == 1 and bool(re.fullmatch(r"EHLO \S+", m[0]["hello"] or "")), repr(m[0]["hello"]) if m else "")
        else:
            check("  ... nothing half-delivered", sink.find(frm) == [], str(sink.find(frm)))
        expect("  ... connection still usable", c.cmd("RSET"), "250 2.0.0")
        c.close()

    attempt("OK (sanity)", {}, 2)
    attempt("refusing MAIL with 451", {"mail": "451 4.3.0 try later"}, 4)
    attempt("refusing RCPT with 450", {"rcpt": "450 4.2.1 mailbox busy"}, 4)
    attempt("refusing RCPT with 550", {"rcpt": "550 5.1.1 no such user"}, 5)
    attempt("refusing DATA with 554", {"data": "554 5.3.0 no thanks"}, 5)
    # replies a next hop should not give: never passed on as if the
    # message were taken
    attempt("answering RCPT with 252", {"rcpt": "252 2.1.5 Cannot VRFY user, but will accept"}, 4)
    attempt("answering DATA with 250 instead of 354", {"data": "250 2.0.0 fine"}, 4)
    # a 354 to the pipelined DATA after refusing every recipient (RFC 2920
    # says 503): the refusal goes back, not an empty line
    attempt("answering DATA with 354 after refusing RCPT with 550",
            {"rcpt": "550 5.1.1 no such user", "data": "354 go ahead"}, 5)
    attempt("refusing the message (after the dot) with 452", {"dot": "452 4.3.1 disk full"}, 4)
    attempt("refusing the message (after the dot) with 554", {"dot": "554 5.7.1 policy"}, 5)
    attempt("greeting with 421 and closing", {"greeting": "421 4.3.2 go away"}, 4)
    # a 421 says the one who gives it closes the connection: passed on as
    # it is, it would tell the client that chaff closes, and chaff does not
    attempt("closing with 421 after RCPT", {"rcpt": "421 4.3.2 shutting down"}, 4, not_code=421)
    attempt("closing with 421 after DATA", {"data": "421 4.3.2 shutting down"}, 4, not_code=421)
    attempt("closing with 421 after the dot", {"dot": "421 4.3.2 shutting down"}, 4, not_code=421)
    attempt("hanging before its greeting (--hop-timeout 2)", {"greeting": "hang"}, 4, max_time=7)
    attempt("hanging after the dot (--hop-timeout 2)", {"dot": "hang"}, 4, max_time=7)

    # A next hop without CHUNKING that refuses a message while it is still
    # being written (larger than its own limit) and closes: its 552 reaches
    # the client, not a 451 that would have the client retry for days. 24 MB
    # is more than the two sockets' buffers hold, so chaff's write fails.
    big_s = serve("hop-big", ["--next-hop", "127.0.0.1:%d" % sink.port, "--hop-timeout", "5",
                              "--max-size", "40000000"])
    sink.set_mode({"early": ("552 5.3.4 Message too big for the sink", 1 << 20)})
    c = greeted(big_s.port, timeout=15)
    frm = uid("early")
    body = simple("early", (b"w" * 99 + b"\n") * 240000)
    r = final_of(send_message(c, frm, ["a@example.org"], body, final_timeout=60))
    expect("next hop refusing a 24 MB message with 552 while it comes, then closing: the client gets", r,
           "552 5.3.4")
    check("  ... the next hop's text", "too big for the sink" in r.last, str(r))
    check("  ... nothing delivered", sink.find(frm) == [])
    sink.set_mode({})
    frm = uid("early")
    expect("  ... the next message goes through (a new hop connection)",
           final_of(send_message(c, frm, ["a@example.org"], HAM[0][1])), "250 2.0.0")
    c.close()
    sink.set_mode({})
    # the same with CHUNKING: the envelope and 'BDAT n LAST' go in one
    # write, cut short by the next hop's refusal of the chunk
    csink = Sink()
    csink.set_mode({"chunking": True, "early": ("552 5.3.4 Chunk too big for the sink", 1 << 20)})
    big_c = serve("hop-big-bdat", ["--next-hop", "127.0.0.1:%d" % csink.port, "--hop-timeout", "5",
                                   "--max-size", "40000000"])
    c = greeted(big_c.port, timeout=15)
    frm = uid("early")
    r = final_of(send_message(c, frm, ["a@example.org"], body, final_timeout=60))
    expect("CHUNKING next hop refusing a 24 MB 'BDAT n LAST' with 552 while it comes, then closing: "
           "the client gets", r, "552 5.3.4")
    check("  ... the next hop's text", "too big for the sink" in r.last, str(r))
    check("  ... tried once, nothing delivered",
          csink.find(frm) == [] and len(csink.find_attempts(frm)) == 1, str(csink.find_attempts(frm)))
    csink.set_mode({"chunking": True})
    frm = uid("early")
    expect("  ... the next message goes through (a new hop connection)",
           final_of(send_message(c, frm, ["a@example.org"], HAM[0][1])), "250 2.0.0")
    c.close()
    csink.close()
    c = greeted(s.port)
    frm = uid("hop")
    expect("next hop back to normal: delivery works", final_of(send_message(c, frm, ["a@example.org"], msg)),
           "250 2.0.0")
    check("  ... once", len(sink.find(frm)) == 1)
    sink.set_mode({})       # the next hop closes its connections, as one does after an idle time
    frm = uid("hop")
    expect("next hop closed its (idle) connection: the next message still goes through",
           final_of(send_message(c, frm, ["a@example.org"], msg)), "250 2.0.0")
    check("  ... once", len(sink.find(frm)) == 1)
    c.close()
    sink.close()

    down = free_port()
    s = serve("hop-down", ["--next-hop", "127.0.0.1:%d" % down, "--hop-timeout", "2"])
    c = greeted(s.port, timeout=15)
    t0 = time.monotonic()
    r = final_of(send_message(c, uid("down"), ["a@example.org"], msg, final_timeout=15))
    expect("next hop down (port closed)", r, "4")
    check("  ... a 4.4.x code", bool(re.match(r"4\d\d 4\.4\.\d+", r.last)), str(r))
    check("  ... promptly (%.1f s)" % (time.monotonic() - t0), time.monotonic() - t0 < 7)
    c.close()


# === timeouts ===================================================================
def t_timeouts():
    s = serve("timeouts", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--timeout", "1", "--data-timeout", "1",
                           "--max-errors", "3", "--hostname", HOST])
    c, g = connect(s.port)
    t0 = time.monotonic()
    r = c.reply(6)
    el = time.monotonic() - t0
    expect("--timeout 1, idle after the greeting", r, "421 4.4.2")
    check("  ... '%s Error: timeout exceeded'" % HOST, r.last == "421 4.4.2 %s Error: timeout exceeded" % HOST, str(r))
    check("  ... after about 1 s (%.1f s)" % el, 0.5 <= el <= 3.5)
    check("  ... connection closed", c.closed())
    c.close()

    c = greeted(s.port)
    time.sleep(0.5)
    expect("--timeout 1: activity resets the clock (NOOP after 0.5 s)", c.cmd("NOOP"), "250")
    t0 = time.monotonic()
    expect("--timeout 1, idle after EHLO", c.reply(6), "421 4.4.2")
    check("  ... closed", c.closed())
    c.close()

    c = greeted(s.port)
    frm = uid("slow")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    expect("DATA", c.cmd("DATA"), "354")
    c.send(b"Subject: slow\r\n\r\npartial line")
    t0 = time.monotonic()
    r = c.reply(6)
    el = time.monotonic() - t0
    expect("--data-timeout 1, client stalls in DATA", r, "421 4.4.2")
    check("  ... after about 1 s (%.1f s)" % el, 0.5 <= el <= 3.5)
    check("  ... connection closed", c.closed())
    time.sleep(0.2)
    check("  ... nothing passed on", SINK.find(frm) == [] and SINK.find_attempts(frm) == [])
    c.close()

    c = greeted(s.port)
    codes = []
    for i in range(5):
        try:
            r = c.cmd("FROB%d" % i)
        except OSError:
            break
        codes.append(r.code)
        if r.code != 502:
            break
    check("--max-errors 3: 421 at the 3rd or 4th bad command", codes in ([502, 502, 421], [502, 502, 502, 421]),
          "codes %s" % codes)
    check("  ... closed", c.closed())
    c.close()

    s = serve("timeouts2", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--timeout", "1", "--data-timeout", "5"])
    c = greeted(s.port)
    frm = uid("slowok")
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    expect("DATA", c.cmd("DATA"), "354")
    c.send(b"Subject: slow but fine\r\n\r\nfirst part\r\n")
    time.sleep(2.2)
    c.send(b"second part\r\n.\r\n")
    expect("--timeout 1 --data-timeout 5: a 2 s pause in DATA is fine", c.reply(10), "250 2.0.0")
    check("  ... passed on", len(SINK.find(frm)) == 1)
    c.close()


def t_many_idle():
    """300 clients stalled in the middle of a command line or of DATA hold
    up nobody: a fresh client's message goes through at once."""
    s = serve("idle", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--max-conn-per-ip", "1000"])
    stalled = []
    for i in range(300):
        c = greeted(s.port)
        if i % 2:
            c.cmd("MAIL FROM:<idle%d@example.com>" % i)
            c.cmd("RCPT TO:<a@example.org>")
            c.cmd("DATA")
            c.send(b"Subject: stalled\r\n\nhalf a li")
        else:
            c.send(b"MAIL FROM:<half")
        stalled.append(c)
    frm = uid("amid-idle")
    c = greeted(s.port)
    t0 = time.monotonic()
    c.cmd("MAIL FROM:<%s>" % frm)
    c.cmd("RCPT TO:<a@example.org>")
    c.cmd("DATA")
    c.send(b"Subject: hello\r\n\nbody\r\n.\r\n")
    r = c.reply(10)
    el = time.monotonic() - t0
    expect("300 stalled clients: a new client's message is accepted", r, "250 2.0.0")
    check("  ... within a second (%.2f s)" % el, el < 1.0)
    check("  ... and passed on", len(SINK.find(frm)) == 1)
    for x in stalled + [c]:
        x.close()
    time.sleep(0.3)
    check("  ... the stalled messages were never passed on",
          not any(SINK.find("idle%d@example.com" % i) for i in range(1, 300, 2)))


# === connection limits, access control ==========================================
def t_conn_limits():
    s = serve("maxconn", ["--maildir", os.path.join(TMP, "md-maxconn"), "--max-conn", "2", "--hostname", HOST])
    time.sleep(0.3)
    c1, g1 = connect(s.port)
    c2, g2 = connect(s.port)
    check("--max-conn 2: first two clients get 220", g1.code == 220 and g2.code == 220, "%s %s" % (g1, g2))
    c3, g3 = connect(s.port)
    expect("--max-conn 2: the third", g3, "421 4.7.0")
    check("  ... '%s Too many connections'" % HOST, g3.last.startswith("421 4.7.0 %s Too many connections" % HOST), str(g3))
    check("  ... and closed", c3.closed())
    c3.close()
    check("  ... the first two still work", c1.cmd("NOOP").code == 250 and c2.cmd("NOOP").code == 250)
    c1.cmd("QUIT")
    c1.close()
    ok = False
    end = time.monotonic() + 3
    while time.monotonic() < end and not ok:
        c4, g4 = connect(s.port)
        ok = g4.code == 220
        c4.close()
        if not ok:
            time.sleep(0.2)
    check("  ... once one leaves, a new client gets 220", ok)
    c2.close()

    s = serve("maxperip", ["--maildir", os.path.join(TMP, "md-maxperip"), "--max-conn-per-ip", "2"])
    time.sleep(0.3)
    a1, h1 = connect(s.port)
    a2, h2 = connect(s.port)
    check("--max-conn-per-ip 2: two from 127.0.0.1 get 220", h1.code == 220 and h2.code == 220, "%s %s" % (h1, h2))
    a3, h3 = connect(s.port)
    expect("--max-conn-per-ip 2: a third from 127.0.0.1", h3, "421 4.7.0")
    check("  ... closed", a3.closed())
    b1, k1 = connect(s.port, source="127.0.0.2")
    expect("--max-conn-per-ip 2: one from 127.0.0.2 meanwhile", k1, "220")
    a1.cmd("QUIT")
    a1.close()
    ok = False
    end = time.monotonic() + 3
    while time.monotonic() < end and not ok:
        a4, h4 = connect(s.port)
        ok = h4.code == 220
        a4.close()
        if not ok:
            time.sleep(0.2)
    check("  ... once one from 127.0.0.1 leaves, 127.0.0.1 gets 220 again", ok)
    for x in (a2, a3, b1):
        x.close()


def t_access():
    s = serve("allow", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--allow", "127.0.0.1/32",
                        "--domains", "example.org"])
    c, g = connect(s.port, source="127.0.0.2")
    expect("--allow 127.0.0.1/32: a client from 127.0.0.2", g, "554 5.7.1")
    check("  ... 'Access denied'", "Access denied" in g.last, str(g))
    # RFC 5321 section 3.1: after a 554 greeting the server waits for QUIT
    # and answers every other command with 503
    c.send("EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
    more = [c.reply(5) for _ in range(4)]
    check("  ... its EHLO, MAIL, RCPT and DATA each get 503",
          all(r.is_("503 5.7.1") for r in more), str([str(r) for r in more]))
    expect("  ... and QUIT its 221", c.cmd("QUIT"), "221 2.0.0")
    check("  ... then the connection closes", c.closed())
    c.close()
    c, g = connect(s.port, source="127.0.0.2")
    c.send("NOOP\r\n" * 25)
    more = [c.reply(5) for _ in range(21)]
    check("  ... a refused client that goes on is cut off at the error limit (421)",
          any(r.is_("421") for r in more) and c.closed(), str([str(r) for r in more[-3:]]))
    c.close()
    # Refused sessions take no room from allowed clients, and have a cap of
    # their own (16), past which the connection is closed after the 554.
    s2 = serve("allow-cap", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--allow", "127.0.0.1/32",
                             "--max-conn", "2", "--max-conn-per-ip", "2"])
    held = [connect(s2.port, source="127.0.0.2")[0] for _ in range(16)]
    c, g = connect(s2.port)
    expect("  ... 16 refused sessions open, --max-conn 2: an allowed client", g, "220")
    c.close()
    x, g = connect(s2.port, source="127.0.0.2")
    expect("  ... a 17th refused client", g, "554 5.7.1")
    check("  ... is closed at once", x.closed())
    x.close()
    for h in held:
        h.close()
    c = greeted(s.port)
    c.cmd("MAIL FROM:<a@example.com>")
    r = c.cmd("RCPT TO:<x@elsewhere.net>")
    expect("an allowed client (127.0.0.1): relay attempt", r, "550 5.7.1")
    check("  ... 'Relaying denied'", "Relaying denied" in r.last, str(r))
    expect("  ... a local recipient", c.cmd("RCPT TO:<x@example.org>"), "250 2.1.5")
    c.close()

    s = serve("allow2", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--allow", "127.0.0.2/32,127.0.0.3/32"])
    c, g = connect(s.port, source="127.0.0.3")
    expect("--allow 127.0.0.2/32,127.0.0.3/32: from 127.0.0.3", g, "220")
    c.close()
    c, g = connect(s.port, source="127.0.0.1")
    expect("  ... from 127.0.0.1", g, "554 5.7.1")
    c.close()
    if have_ipv6():
        s = serve("allow-v4only", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--allow", "127.0.0.0/8"],
                  listen=[("127.0.0.1", free_port()), ("::1", free_port())])
        c, g = connect(s.listen[1][1], host="::1")
        expect("--allow 127.0.0.0/8: a client from ::1", g, "554 5.7.1")
        c.close()


# === LMTP, IPv6 ====================================================================
def t_lmtp():
    md = os.path.join(TMP, "md-lmtp")
    s = serve("lmtp", ["--lmtp", "--maildir", md, "--on-spam", "reject", "--domains", "example.org",
                       "--hostname", HOST, "--max-size", str(MAXSIZE)])
    c, g = connect(s.port)
    check("--lmtp greeting: '220 %s LMTP chaff'" % HOST, g.last == "220 %s LMTP chaff" % HOST, str(g))
    expect("--lmtp: EHLO refused", c.cmd("EHLO client.test"), "500 5.5.1")
    expect("--lmtp: HELO refused", c.cmd("HELO client.test"), "500 5.5.1")
    expect("--lmtp: MAIL before LHLO", c.cmd("MAIL FROM:<a@example.com>"), "503 5.5.1")
    r = c.cmd("LHLO client.test")
    check("--lmtp: LHLO answered like EHLO", r.code == 250 and r.lines[1:] ==
          ["250-PIPELINING", "250-SIZE %d" % MAXSIZE, "250-8BITMIME", "250-CHUNKING", "250 ENHANCEDSTATUSCODES"],
          str(r))
    frm = uid("lmtp")
    c.cmd("MAIL FROM:<%s>" % frm)
    rs = [c.cmd("RCPT TO:<%s>" % a) for a in ("a@example.org", "b@elsewhere.net", "c@example.org")]
    check("--lmtp: RCPT 250, 550 (relay), 250", [r.code for r in rs] == [250, 550, 250], str([str(r) for r in rs]))
    expect("--lmtp: DATA", c.cmd("DATA"), "354")
    c.send(wire(HAM[0][1]))
    finals = [c.reply(15), c.reply(15)]
    check("--lmtp, ham to 2 accepted recipients: two replies 250 2.0.0",
          all(r.is_("250 2.0.0") for r in finals), str([str(r) for r in finals]))
    expect("  ... and no third reply (NOOP answered next)", c.cmd("NOOP"), "250 2.0.0")
    check("  ... delivered into the Maildir", len(maildir_files(md)) >= 1, str(maildir_files(md)))
    c.cmd("MAIL FROM:<%s>" % uid("lmtpspam"))
    c.cmd("RCPT TO:<a@example.org>")
    c.cmd("RCPT TO:<c@example.org>")
    c.cmd("RCPT TO:<d@example.org>")
    n = len(maildir_files(md))
    expect("--lmtp: DATA", c.cmd("DATA"), "354")
    c.send(wire(SPAM[0][1]))
    finals = [c.reply(15) for _ in range(3)]
    check("--lmtp, --on-spam reject, spam to 3 recipients: three replies 550 5.7.1",
          all(r.is_("550 5.7.1") for r in finals), str([str(r) for r in finals]))
    expect("  ... then in step (NOOP)", c.cmd("NOOP"), "250 2.0.0")
    check("  ... nothing delivered", len(maildir_files(md)) == n)

    # BDAT in LMTP: a middle chunk gets one reply, the LAST one a reply per recipient
    frm = uid("lmtpbdat")
    msg = HAM[1][1]
    w = to_crlf(msg)
    i = w.index(b"\r\n", len(w) // 2) + 1
    c.cmd("MAIL FROM:<%s>" % frm)
    rs = [c.cmd("RCPT TO:<%s>" % a) for a in ("a@example.org", "b@elsewhere.net", "c@example.org")]
    n = len(maildir_files(md))
    c.send(bdat(w[:i]) + b"NOOP\r\n")
    rs = [c.reply(), c.reply()]
    check("--lmtp: a middle BDAT chunk (cut between CR and LF), then NOOP: one '250 2.0.0 Ok: <n> octets', "
          "then NOOP's reply", rs[0].last == "250 2.0.0 Ok: %d octets" % i and rs[1].last == "250 2.0.0 Ok",
          str([str(r) for r in rs]))
    c.send(bdat(w[i:], True))
    finals = [c.reply(15), c.reply(15)]
    check("--lmtp, ham by BDAT LAST to 2 accepted recipients (of 3): two replies 250 2.0.0",
          all(r.is_("250 2.0.0") for r in finals), str([str(r) for r in finals]))
    expect("  ... and no third reply (NOOP answered next)", c.cmd("NOOP"), "250 2.0.0")
    new = maildir_files(md)
    check("  ... delivered into the Maildir, as chaff filter makes it", len(new) == n + 1 and
          any(open(os.path.join(md, "new", f), "rb").read() == filter_of(CH, DB, msg) for f in new), str(new))
    c.cmd("MAIL FROM:<%s>" % uid("lmtpbdatspam"))
    c.cmd("RCPT TO:<a@example.org>")
    c.cmd("RCPT TO:<c@example.org>")
    c.send(bdat(to_crlf(SPAM[1][1]), True))
    finals = [c.reply(15), c.reply(15)]
    check("--lmtp, --on-spam reject, spam by BDAT LAST to 2 recipients: two replies 550 5.7.1",
          all(r.is_("550 5.7.1") for r in finals), str([str(r) for r in finals]))
    expect("  ... then in step (NOOP)", c.cmd("NOOP"), "250 2.0.0")
    check("  ... nothing delivered", len(maildir_files(md)) == n + 1)
    expect("--lmtp: QUIT", c.cmd("QUIT"), "221 2.0.0")
    c.close()


def t_ipv6():
    if not have_ipv6():
        skip("IPv6: listen on [::1]", "no IPv6")
        return
    p6, p4 = free_port("::1"), free_port()
    md = os.path.join(TMP, "md-v6")
    s = serve("ipv6", ["--maildir", md], listen=[("::1", p6), ("127.0.0.1", p4)])
    err = s.stderr()
    check("--listen [::1]:P --listen 127.0.0.1:Q: 'listening on' both",
          ("listening on [::1]:%d" % p6) in err and ("listening on 127.0.0.1:%d" % p4) in err, err[:300])
    c, g = connect(p6, host="::1")
    expect("IPv6 client on [::1]", g, "220")
    c.cmd("EHLO v6.test")
    frm = uid("v6")
    expect("  ... sends a message", final_of(send_message(c, frm, ["a@example.org"], HAM[0][1])), "250 2.0.0")
    c.close()
    ls = log_for(s, frm)
    check("  ... logged with client=::1", len(ls) == 1 and "client=::1 " in ls[0], str(ls))
    c, g = connect(p4)
    expect("the same server on 127.0.0.1", g, "220")
    c.close()


# === training by mail, training seen live ========================================
def wrap(msg, to):
    b = b"BOUNDARY-chaff-test-42"
    return (b"From: user@example.org\nTo: " + to.encode() + b"\nSubject: Fwd: this is it\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + b + b"\"\n\n"
            b"--" + b + b"\nContent-Type: text/plain\n\nSee attached.\n"
            b"--" + b + b"\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n" +
            msg + b"\n--" + b + b"--\n")


def t_learn():
    ldb = os.path.join(TMP, "learndb")
    shutil.copytree(DB, ldb)
    s = serve("learn", ["--next-hop", "127.0.0.1:%d" % SINK.port, "--learn-spam", "learn-spam@",
                        "--learn-ham", "learn-ham@"], db=ldb)
    path, msg = SPAM[3]
    t0 = totals(CH, ldb)
    c = greeted(s.port)
    frm = uid("learn")
    r = final_of(send_message(c, frm, ["learn-spam@example.org"], wrap(msg, "learn-spam@example.org")))
    expect("a spam forwarded as message/rfc822 to learn-spam@example.org", r, "250 2.0.0")
    check("  ... 'trained as spam'", "trained as spam" in r.last and "already" not in r.last, str(r))
    check("  ... chaff stats: spam +1", totals(CH, ldb) == (t0[0] + 1, t0[1]), "%s -> %s" % (t0, totals(CH, ldb)))
    time.sleep(0.2)
    check("  ... not passed on", SINK.find(frm) == [])
    ls = log_for(s, frm)
    check("  ... logged", len(ls) == 1, str(ls))
    r = final_of(send_message(c, uid("learn"), ["learn-spam@example.org"], wrap(msg, "learn-spam@example.org")))
    expect("the same again", r, "250 2.0.0")
    check("  ... 'already trained as spam'", "already" in r.last, str(r))
    check("  ... totals unchanged", totals(CH, ldb) == (t0[0] + 1, t0[1]), str(totals(CH, ldb)))
    tr = run([CH, "train", "--spam", "--db", ldb, path])
    check("  ... it was the attached message that was trained (chaff train: already trained)",
          b"already trained as spam" in tr.stderr, tr.stderr.decode(errors="replace")[:300])
    r = final_of(send_message(c, uid("learn"), ["learn-ham@example.org"], wrap(msg, "learn-ham@example.org")))
    expect("the same to learn-ham@example.org", r, "250 2.0.0")
    check("  ... 'moved from spam to ham'", "moved from spam to ham" in r.last, str(r))
    check("  ... spam -1, ham +1", totals(CH, ldb) == (t0[0], t0[1] + 1), str(totals(CH, ldb)))
    r = final_of(send_message(c, uid("learn"), ["learn-ham@another.test"], HAM[3][1]))
    expect("a ham message itself (no attachment) to learn-ham@another.test ('local@': any domain)", r, "250 2.0.0")
    check("  ... 'trained as ham'", "trained as ham" in r.last, str(r))
    check("  ... ham +1", totals(CH, ldb) == (t0[0], t0[1] + 2), str(totals(CH, ldb)))

    before = totals(CH, ldb)
    for what, body in (("an empty message", b""), ("a message with no header", b"just some text\r\n"),
                       ("an empty attached message", wrap(b"", "learn-spam@example.org"))):
        r = final_of(send_message(c, uid("learn"), ["learn-spam@example.org"], body))
        expect("%s to learn-spam@: refused" % what, r, "550 5.6.0")
        check("  ... saying why", "Nothing trained" in r.last, str(r))
        check("  ... nothing trained", totals(CH, ldb) == before, "%s -> %s" % (before, totals(CH, ldb)))

    c.cmd("MAIL FROM:<%s>" % uid("mix"))
    expect("learn address first", c.cmd("RCPT TO:<learn-spam@example.org>"), "250 2.1.5")
    expect("  ... then a normal recipient in the same transaction", c.cmd("RCPT TO:<user@example.org>"), "550 5.5.1")
    c.cmd("RSET")
    frm = uid("mix")
    c.cmd("MAIL FROM:<%s>" % frm)
    expect("normal recipient first", c.cmd("RCPT TO:<user@example.org>"), "250 2.1.5")
    expect("  ... then a learn address", c.cmd("RCPT TO:<learn-ham@example.org>"), "550 5.5.1")
    expect("  ... DATA", c.cmd("DATA"), "354")
    before = totals(CH, ldb)
    c.send(wire(HAM[2][1]))
    expect("  ... the message", c.reply(15), "250 2.0.0")
    m = SINK.find(frm)
    check("  ... passed on to the normal recipient only",
          len(m) == 1 and m[0]["rcpts"] == ["user@example.org"], str([x["rcpts"] for x in m]))
    check("  ... and nothing trained", totals(CH, ldb) == before, "%s -> %s" % (before, totals(CH, ldb)))
    c.close()


def t_training_live():
    rdb = os.path.join(TMP, "livedb")
    shutil.copytree(DB, rdb)
    s = serve("live", ["--next-hop", "127.0.0.1:%d" % SINK.port], db=rdb)
    path, msg = HAM[4]
    want1 = score_of(to_crlf(filter_of(CH, rdb, to_crlf(msg))))
    c = greeted(s.port)
    f1 = uid("live")
    send_message(c, f1, ["a@example.org"], msg)
    m1 = SINK.find(f1)
    s1 = score_of(m1[0]["data"]) if m1 else None
    check("before: X-Chaff-Score as chaff classify scores it (%s)" % want1, s1 is not None and s1 == want1, str(s1))
    train(CH, rdb, "spam", [path])
    want2 = score_of(to_crlf(filter_of(CH, rdb, to_crlf(msg))))
    f2 = uid("live")
    send_message(c, f2, ["a@example.org"], msg)
    m2 = SINK.find(f2)
    s2 = score_of(m2[0]["data"]) if m2 else None
    check("after `chaff train --spam` of it, server not restarted: the new score (%s -> %s)" % (want1, want2),
          s2 is not None and s2 == want2 and want2 != want1, "server said %s" % s2)
    c.close()


# === robustness: found in review =================================================
def own(name, args, preexec=None):
    """A server the test stops (and checks the exit of) itself: not in SERVERS."""
    s = Server(CH, name, DB, args, preexec=preexec)
    return s.start_or_fail()


def stopped_ok(what, s, timeout=5.0):
    """SIGTERM to S: it must exit 0 within TIMEOUT s, with no sanitizer report."""
    t0 = time.monotonic()
    rc = s.stop(timeout)
    el = time.monotonic() - t0
    check("%s: SIGTERM, then exit 0 within %.0f s" % (what, timeout), rc == 0,
          "exit %s after %.1f s" % ("none (killed)" if rc is None else rc, el))
    err = s.stderr()
    check("%s: no sanitizer report on stderr" % what,
          "AddressSanitizer" not in err and "runtime error:" not in err, err[-1500:])


def t_hop_out_of_step():
    """The next hop refuses the first message's RCPT and answers the RSET after
    it only when --hop-timeout has passed; then it refuses the second message
    (BDAT) with 554. The late 250 must not be taken for an answer to the
    second message's commands: the connection is dropped, not kept."""
    first, second = uid("step1"), uid("step2")
    late = 1.6                       # the RSET reply comes after this (--hop-timeout 1)
    late_sent = threading.Event()
    got = []                         # the commands the next hop read
    lock = threading.Lock()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(0.3)
    done = threading.Event()

    def session(c):
        f = c.makefile("rb")
        frm = None
        try:
            c.sendall(b"220 hop.test ESMTP\r\n")
            while True:
                line = f.readline(1 << 16)
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd[:4].upper()
                with lock:
                    got.append(cmd)
                if verb == "EHLO":
                    c.sendall(b"250-hop.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
                elif verb == "HELO":
                    c.sendall(b"250 hop.test\r\n")
                elif verb == "MAIL":
                    frm = re.search(r"<([^>]*)>", cmd).group(1)
                    c.sendall(b"250 2.1.0 Ok\r\n")
                elif verb == "RCPT":
                    c.sendall(b"550 5.1.1 no such user\r\n" if frm == first else b"250 2.1.5 Ok\r\n")
                elif verb == "BDAT":
                    f.read(int(cmd.split()[1]))
                    c.sendall(b"554 5.5.1 no valid recipients\r\n" if frm == first
                              else b"554 5.7.1 content refused by the next hop\r\n")
                elif verb == "DATA":
                    if frm == first:
                        c.sendall(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    c.sendall(b"354 go ahead\r\n")
                    while f.readline(1 << 20) not in (b".\r\n", b".\n", b""):
                        pass
                    c.sendall(b"554 5.7.1 content refused by the next hop\r\n")
                elif verb == "RSET":
                    if frm == first:
                        time.sleep(late)
                        try:
                            c.sendall(b"250 2.0.0 Ok (a late reply to RSET)\r\n")
                        finally:
                            late_sent.set()
                    else:
                        c.sendall(b"250 2.0.0 Ok\r\n")
                    frm = None
                elif verb == "NOOP":
                    c.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == "QUIT":
                    c.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    c.sendall(b"502 5.5.2 unknown command\r\n")
        except OSError:
            pass
        finally:
            f.close()
            c.close()

    def acceptor():
        while not done.is_set():
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=session, args=(c,), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()
    try:
        s = own("hop-step", ["--next-hop", "127.0.0.1:%d" % ls.getsockname()[1],
                             "--hop-timeout", "1", "--threads", "1"])
        c = greeted(s.port, timeout=10)
        r1 = final_of(send_message(c, first, ["nobody@example.org"], HAM[0][1], final_timeout=10))
        c.close()
        check("next hop out of step: the first message, its RCPT refused with 550: client gets 5xx",
              r1.cls() == 5 and not r1.eof, str(r1))
        check("  ... the next hop got an RSET after it (and answers it after --hop-timeout)",
              late_sent.wait(late + 3), str(got))
        time.sleep(0.1)
        c = greeted(s.port, timeout=10)
        res = send_message(c, second, ["someone@example.org"], HAM[1][1], final_timeout=10)
        r2 = final_of(res)
        c.close()
        with lock:
            seen = list(got)
        check("  ... the second message reached the next hop", ("MAIL FROM:<%s>" % second) in
              " ".join(seen), str(seen))
        check("  ... the second message, refused by the next hop with 554: client gets 4xx or 554, "
              "never 250", r2.code is not None and r2.code != 250 and r2.cls() in (4, 5) and
              (r2.cls() == 4 or r2.code == 554), "got %s (at %s)" % (r2, res["failed"] or "the dot"))
        bad = [l for l in log_for(s, first) + log_for(s, second) if 'reply="2' in l]
        check("  ... neither message logged as delivered (reply 2xx)",
              not bad and len(log_for(s, second)) == 1, "\n".join(bad) or s.stderr()[-800:])
        stopped_ok("  ... server", s)
    finally:
        done.set()
        ls.close()


def t_client_never_reads():
    """A client fills the server's output (HELP) without reading, then sends a
    message and QUIT: once the message is done the QUIT leaves the
    connection closing with its output unsent; --timeout must still end it."""
    md = os.path.join(TMP, "md-noread")
    s = own("noread", ["--maildir", md, "--threads", "2", "--timeout", "2", "--data-timeout", "2"])
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    try:
        c.connect(("127.0.0.1", s.port))
        cport = c.getsockname()[1]
        c.settimeout(0.5)
        flood = b"HELP\r\n" * 4500
        last = None
        full = False
        for _ in range(40):            # until the server's send queue stops growing
            try:
                c.sendall(flood)
            except socket.timeout:
                break                  # the server stopped reading
            time.sleep(0.15)
            st = tcp_socket(s.port, cport)
            if st and st[1] == last and st[2] == 0:
                full = True
                break
            last = st and st[1]
        check("client never reads: the server's send queue fills (%s bytes) while it still reads"
              % last, full, str(tcp_socket(s.port, cport)))
        frm = uid("noread")
        c.settimeout(3)
        c.sendall(b"EHLO client.test\r\nMAIL FROM:<" + frm.encode() + b">\r\nRCPT TO:<a@example.org>\r\n"
                  b"DATA\r\n" + wire(simple("never read")) + b"QUIT\r\n")
        ls = log_for(s, frm, wait=5)
        check("  ... the message after it is taken (then QUIT)",
              len(ls) == 1 and 'reply="250"' in ls[0], str(ls))
        t0 = time.monotonic()
        st = tcp_socket(s.port, cport)
        while st and st[0] == "ESTABLISHED" and time.monotonic() - t0 < 6:
            time.sleep(0.2)
            st = tcp_socket(s.port, cport)
        el = time.monotonic() - t0
        check("  ... the server closes its end within 6 s (--timeout 2): %s after %.1f s"
              % (st[0] if st else "gone", el), not st or st[0] != "ESTABLISHED", str(st))
        # From the client's side: what did come, then the end (FIN or RST).
        end = None
        t0 = time.monotonic()
        c.settimeout(1)
        try:
            while time.monotonic() - t0 < 5:
                try:
                    if not c.recv(1 << 20):
                        end = "EOF"
                        break
                except socket.timeout:
                    end = "nothing more, not closed"
                    break
        except ConnectionResetError:
            end = "reset"
        check("  ... the client, reading at last, sees the connection closed", end in ("EOF", "reset"),
              str(end))
    finally:
        c.close()
    stopped_ok("  ... server", s)


def t_out_of_descriptors():
    """At RLIMIT_NOFILE 40, 60 connections: accept() fails with EMFILE and the
    pending connection keeps the listener readable; the server must neither
    spin nor flood its log, and must serve again once descriptors are free."""
    md = os.path.join(TMP, "md-emfile")
    s = own("emfile", ["--maildir", md, "--threads", "2"],
            preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)))
    socks = []
    failed = 0
    try:
        for _ in range(60):
            try:
                socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=2))
            except OSError:
                failed += 1
        time.sleep(0.5)
        c0 = cpu_seconds(s.pid)
        time.sleep(3)
        used = cpu_seconds(s.pid) - c0
        check("out of descriptors (60 connections at 40 descriptors): no spinning, %.2f s CPU in 3 s "
              "(%d connects failed)" % (used, failed), used < 0.5)
        n = sum(1 for l in s.stderr().splitlines() if "descriptor" in l)
        check("  ... and no log flood: %d lines about descriptors" % n, n < 20,
              s.stderr()[-600:])
    finally:
        for x in socks:
            x.close()
    c = None
    t0 = time.monotonic()
    while c is None and time.monotonic() - t0 < 10:
        try:
            c = greeted(s.port, timeout=3)
        except (OSError, RuntimeError):
            time.sleep(0.2)
    check("  ... once they are closed, a new connection is served", c is not None)
    if c:
        frm = uid("emfile")
        r = final_of(send_message(c, frm, ["a@example.org"], simple("after EMFILE")))
        expect("  ... and its message delivered", r, "250 2.0.0")
        check("  ... into the Maildir", len(maildir_files(md)) == 1, str(maildir_files(md)))
        c.close()
    stopped_ok("  ... server", s)


def t_free_with_events_pending():
    """Connections freed while later events of the same epoll batch still name
    them (SIGSTOP, pipelined NOOPs, SIGTERM, more NOOPs, SIGCONT): the ASan
    build reports a use-after-free, if there is one, on stderr."""
    md = os.path.join(TMP, "md-uaf")
    s = own("freed", ["--maildir", md, "--threads", "2"])
    socks = []
    try:
        for _ in range(40):
            x = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            socks.append(x)
            x.recv(1000)              # the greeting
        os.kill(s.pid, signal.SIGSTOP)
        try:
            time.sleep(0.3)
            for x in socks[:20]:
                x.send(b"NOOP\r\n")
            time.sleep(0.1)
            os.kill(s.pid, signal.SIGTERM)
            time.sleep(0.1)
            for x in socks[20:]:
                x.send(b"NOOP\r\n")
            time.sleep(0.2)
        finally:
            os.kill(s.pid, signal.SIGCONT)
        try:
            rc = s.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = "still running after 10 s"
        check("connections freed with events pending (SIGSTOP, NOOPs, SIGTERM, NOOPs, SIGCONT): exit 0",
              rc == 0, "exit %s; stderr: %s" % (rc, s.stderr()[-1500:]))
        err = s.stderr()
        check("  ... no sanitizer report on stderr",
              "AddressSanitizer" not in err and "runtime error:" not in err, err[-1500:])
    finally:
        for x in socks:
            x.close()
        s.stop()


# === SIGTERM with a message in flight ==========================================
def t_sigterm():
    s = serve("sigterm", ["--next-hop", "127.0.0.1:%d" % SINK.port])
    idle = greeted(s.port)
    busy = greeted(s.port)
    frm = uid("term")
    busy.cmd("MAIL FROM:<%s>" % frm)
    busy.cmd("RCPT TO:<a@example.org>")
    expect("SIGTERM test: DATA", busy.cmd("DATA"), "354")
    # a second message in flight, sent in BDAT chunks: its first is in
    bd = greeted(s.port)
    frm_bd = uid("termbdat")
    bd.cmd("MAIL FROM:<%s>" % frm_bd)
    bd.cmd("RCPT TO:<a@example.org>")
    raw = HAM[2][1].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    cut = len(raw) // 2
    bd.send(b"BDAT %d\r\n" % cut + raw[:cut])
    expect("SIGTERM test: the first BDAT chunk", bd.reply(5), "250")
    # SIGHUP is ignored: nothing to reload, and sessions go on
    os.kill(s.pid, signal.SIGHUP)
    time.sleep(0.2)
    expect("after SIGHUP: the server still answers", idle.cmd("NOOP"), "250")
    w = wire(HAM[1][1])
    half = w.index(b"\r\n", len(w) // 2) + 2
    busy.send(w[:half])
    time.sleep(0.2)
    os.kill(s.pid, signal.SIGTERM)
    time.sleep(0.5)
    r = idle.reply(5)
    expect("after SIGTERM: an idle client gets 421", r, "421")
    check("  ... and is closed", idle.closed())
    try:
        c, g = connect(s.port, timeout=2)
        refused = g.code != 220
        c.close()
    except OSError:
        refused = True
    check("  ... new connections are not served", refused)
    check("  ... the server still runs while a message is in flight", s.proc.poll() is None)
    bd.send(b"BDAT %d LAST\r\n" % (len(raw) - cut) + raw[cut:])
    expect("  ... the client between BDAT chunks finishes its message", bd.reply(15), "250 2.0.0")
    check("  ... delivered", len(SINK.find(frm_bd)) == 1)
    bd.close()
    busy.send(w[half:])
    r = busy.reply(15)
    expect("  ... the client mid-DATA finishes its message", r, "250 2.0.0")
    m = SINK.find(frm)
    check("  ... delivered, whole", len(m) == 1 and m[0]["data"] == oracle_wire(HAM[1][1]))
    try:
        r = busy.cmd("QUIT")
        check("  ... QUIT after it: 221 or closed", r.code in (221, 421) or r.eof, str(r))
    except OSError:
        check("  ... QUIT after it: 221 or closed", True)
    busy.close()
    idle.close()
    try:
        rc = s.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = "still running after 10 s"
    check("  ... then the server exits 0", rc == 0, "exit %s" % rc)


def t_exit_codes():
    bad = []
    for s in SERVERS:
        if s.proc.poll() is not None and s.name != "sigterm":
            bad.append("%s died early (exit %s)" % (s.name, s.proc.returncode))
            continue
        if s.name == "sigterm":
            continue
        rc = s.stop()
        if rc != 0:
            bad.append("%s: exit %s after SIGTERM" % (s.name, rc))
    check("every server ran until SIGTERM, then exited 0", not bad, "; ".join(bad))


for t in (t_startup_errors, t_main_start):
    section(t)
if MAIN is None:
    finish()
for t in (t_greeting_ehlo, t_order, t_syntax, t_misc_commands, t_long_lines, t_too_many_errors, t_relay,
          t_max_rcpt, t_pipelining, t_dots, t_split_writes, t_bdat_server, t_bdat_pipelining,
          t_bdat_errors, t_bdat_client, t_bdat_lmtp_hop, t_headers_envelope, t_dsn_smtputf8, t_size, t_default_allow, t_log_main,
          t_actions_per_verdict,
          t_reject, t_maildir, t_next_hop_failures, t_timeouts, t_many_idle, t_conn_limits, t_access, t_lmtp, t_ipv6,
          t_learn, t_training_live, t_hop_out_of_step, t_client_never_reads, t_out_of_descriptors,
          t_free_with_events_pending, t_sigterm, t_exit_codes):
    section(t)
SINK.close()
if CSINK:
    CSINK.close()
print("(%.1f s)" % (time.monotonic() - T0))
finish()
