#!/usr/bin/env python3
"""A stand-in for `chaff serve` when debugging the Postfix side of
test_postfix.sh: a minimal SMTP server that adds chaff-like headers and passes
each message on to a next hop over SMTP, replying 250 only once the next hop
accepted it (451 if it could not be reached).

    standin_filter.py --listen 127.0.0.1:PORT --next-hop 127.0.0.1:PORT [other options ignored]

A message counts as spam when it has a header "X-Test-Id: spam...",
else as ham.
"""
import socket
import socketserver
import smtplib
import sys


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


listen = next_hop = None
args = sys.argv[1:]
i = 0
while i < len(args):
    if args[i] == "--listen":
        listen = hostport(args[i + 1]); i += 2
    elif args[i] == "--next-hop":
        next_hop = hostport(args[i + 1]); i += 2
    elif args[i] == "serve":
        i += 1
    elif args[i].startswith("--") and i + 1 < len(args):
        i += 2  # --db DIR and the like: ignored
    else:
        i += 1
if not listen or not next_hop:
    sys.exit("usage: standin_filter.py --listen HOST:PORT --next-hop HOST:PORT")


def tag(msg):
    spam = b"\nX-Test-Id: spam" in b"\n" + msg
    head, sep, body = msg.partition(b"\r\n\r\n")
    add = (b"X-Spam-Flag: YES\r\n" if spam else b"") + \
        b"X-Spam-Status: " + (b"Yes" if spam else b"No") + \
        b", score=0.5 required=0.600 tests=STANDIN version=standin\r\n" + \
        b"X-Chaff-Verdict: " + (b"spam" if spam else b"ham") + b"\r\n"
    return head + b"\r\n" + add.rstrip(b"\r\n") + sep + body, spam


class Handler(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.send("220 standin ESMTP chaff")
        sender, rcpts, params = None, [], []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.send("250-standin\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                self.send("250 standin")
            elif verb == "MAIL":
                rest = cmd[10:].strip()
                sender = rest[rest.index("<") + 1:rest.index(">")]
                params = ["BODY=8BITMIME"] if "BODY=8BITMIME" in rest.upper() else []
                rcpts = []
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rest = cmd[8:].strip()
                rcpts.append(rest[rest.index("<") + 1:rest.index(">")])
                self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                self.send("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    lines.append(l)
                msg, spam = tag(b"".join(lines))
                try:
                    with smtplib.SMTP(*next_hop, timeout=30) as s:
                        s.sendmail(sender, rcpts, msg, mail_options=params)
                    self.send("250 2.0.0 Ok: queued as standin")
                    print("standin: from=<%s> rcpt=%s verdict=%s passed" %
                          (sender, rcpts, "spam" if spam else "ham"), file=sys.stderr, flush=True)
                except (OSError, smtplib.SMTPException) as e:
                    self.send("451 4.4.1 next hop: %s" % str(e).replace("\n", " ")[:200])
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


srv = Server(listen, Handler)
print("chaff serve: listening on %s:%d" % listen, file=sys.stderr, flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
