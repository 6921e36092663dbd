"""Shared by test_serve.py and test_load.py: the check counter, a scratch
folder, a small trained database, corpus messages, `chaff serve` processes,
a raw SMTP client and a next-hop sink server.  Python 3.11 standard library
only.  Every process started here is stopped at exit (SIGTERM, then SIGKILL),
whatever happened; KEEP=1 leaves the scratch folder in place."""
import atexit
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.environ.get("CHAFF_CORPUS") or os.path.join(ROOT, "corpora", "spamassassin")

# --- checks -------------------------------------------------------------------
fails = 0
passes = 0


def check(what, cond, detail=""):
    """One 'ok   ...' or 'FAIL ...' line; on failure DETAIL says what came back."""
    global fails, passes
    if cond:
        passes += 1
        print("ok   " + what, flush=True)
    else:
        fails += 1
        if len(detail) > 600:
            detail = detail[:300] + " [...] " + detail[-300:]
        print("FAIL " + what + (("  -- " + detail) if detail else ""), flush=True)
    return bool(cond)


def skip(what, why):
    global passes
    passes += 1
    print("ok   %s (skipped: %s)" % (what, why), flush=True)


def finish():
    print("%d passed, %d failed" % (passes, fails), flush=True)
    sys.exit(1 if fails else 0)


def section(fn, *args):
    """Runs one group of checks; an exception in it is one failure, and the
    next group still runs."""
    name = fn.__name__
    try:
        fn(*args)
    except NotStarted:
        pass  # already a failure
    except Exception as e:  # noqa: BLE001 -- report, keep going
        import traceback
        check("%s: ran to the end" % name, False,
              "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))


# --- scratch folder and processes ---------------------------------------------
TMP = tempfile.mkdtemp(prefix="chaff-serve-test.")
PROCS = []


def _cleanup():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except OSError:
                pass
    if os.environ.get("KEEP"):
        print("scratch folder kept: " + TMP)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(sig, frame):
    sys.exit(130)


signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGTERM, _on_signal)


def chaff_path():
    if len(sys.argv) < 2:
        sys.exit("usage: %s PATH/TO/chaff" % sys.argv[0])
    c = os.path.abspath(sys.argv[1])
    if not os.access(c, os.X_OK):
        sys.exit("not an executable: " + c)
    return c


# --- corpus, database -----------------------------------------------------------
def need_corpus():
    for sub in ("spam-1", "easy-ham-1"):
        if not os.path.isdir(os.path.join(CORPUS, sub)):
            print("no corpus in %s: run corpora-scripts/fetch-spamassassin.sh first" % CORPUS)
            sys.exit(1)


def corpus_files(group):
    d = os.path.join(CORPUS, group)
    return [os.path.join(d, n) for n in sorted(os.listdir(d)) if not n.startswith(".")]


def load_message(path):
    """A corpus file as a message to send: LF line ends, no mbox 'From ' line,
    ending in a line end."""
    with open(path, "rb") as f:
        b = f.read()
    b = b.replace(b"\r\n", b"\n")
    if b.startswith(b"From "):
        b = b[b.index(b"\n") + 1:]
    if not b.endswith(b"\n"):
        b += b"\n"
    return b


def run(args, inp=None, timeout=120):
    return subprocess.run(args, input=inp, capture_output=True, timeout=timeout)


def train(chaff, db, cls, files):
    r = run([chaff, "train", "--" + cls, "-q", "--db", db] + list(files))
    if r.returncode != 0:
        raise RuntimeError("chaff train failed: %s" % r.stderr.decode(errors="replace"))


def make_db(chaff, db, nspam=100, nham=100):
    """A database trained on the first NSPAM spam-1 and NHAM easy-ham-1 messages."""
    train(chaff, db, "spam", corpus_files("spam-1")[:nspam])
    train(chaff, db, "ham", corpus_files("easy-ham-1")[:nham])


def totals(chaff, db):
    """(spam, ham) as `chaff stats` shows them."""
    out = run([chaff, "stats", "--db", db]).stdout.decode()
    m = re.search(r"^messages\s+(\d+) spam, (\d+) ham$", out, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else None


def classify(chaff, db, files):
    """{path: (verdict, score)}"""
    out = run([chaff, "classify", "--db", db] + list(files)).stdout.decode()
    res = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            res[parts[2]] = (parts[0], float(parts[1]))
    return res


def pick_messages(chaff, db, group, first, last, verdict, lo, hi, max_bytes):
    """Corpus files FIRST..LAST (0-based, name order) of GROUP whose verdict
    is VERDICT with LO <= score <= HI, at most MAX_BYTES: [(path, bytes)]."""
    files = corpus_files(group)[first:last]
    v = classify(chaff, db, files)
    res = []
    for f in files:
        if f in v and v[f][0] == verdict and lo <= v[f][1] <= hi:
            b = load_message(f)
            if len(b) <= max_bytes:
                res.append((f, b))
    return res


def filter_of(chaff, db, data):
    """What `chaff filter` makes of DATA: the message the spec says is passed on."""
    r = run([chaff, "filter", "--db", db], inp=data)
    return r.stdout


def to_crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- ports, servers -------------------------------------------------------------
def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def have_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class NotStarted(Exception):
    pass


class Server:
    """A `chaff serve` process. ARGS are the options after --db; LISTEN a list
    of (host, port) (default one free 127.0.0.1 port). stderr goes to a file.
    PREEXEC runs in the child before chaff starts (e.g. to set a resource
    limit)."""

    def __init__(self, chaff, name, db, args, listen=None, preexec=None):
        self.name = name
        self.listen = listen or [("127.0.0.1", free_port())]
        self.host, self.port = self.listen[0]
        la = []
        for h, p in self.listen:
            la += ["--listen", ("[%s]:%d" % (h, p)) if ":" in h else ("%s:%d" % (h, p))]
        self.cmd = [chaff, "serve", "--db", db] + la + list(args)
        self.errpath = os.path.join(TMP, name + ".stderr")
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err, preexec_fn=preexec)
        PROCS.append(self.proc)
        self.pid = self.proc.pid
        self.rc = None

    def wait_ready(self, timeout=10.0):
        """Polls connect() until the server accepts (up to TIMEOUT s)."""
        deadline = time.monotonic() + timeout
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(1)
            try:
                s.connect((self.host, self.port))
                # Take the greeting and say QUIT, so the probe is gone (and
                # counts in no connection limit) when the tests begin.
                try:
                    s.recv(4096)
                    s.sendall(b"QUIT\r\n")
                    s.recv(4096)
                except OSError:
                    pass
                s.close()
                return True
            except OSError:
                s.close()
                time.sleep(0.05)
        return False

    def start_or_fail(self):
        ok = self.wait_ready()
        if not ok:
            check("server '%s' starts (%s)" % (self.name, " ".join(self.cmd[1:])), False,
                  "exit %s; stderr: %s" % (self.proc.poll(), self.stderr()[-2000:]))
            raise NotStarted(self.name)
        return self

    def stderr(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        return [l for l in self.stderr().splitlines() if " client=" in l]

    def vmhwm_kb(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for l in f:
                    if l.startswith("VmHWM:"):
                        return int(l.split()[1])
        except OSError:
            pass
        return None

    def stop(self, timeout=10.0):
        """SIGTERM and wait: the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = None
        else:
            self.rc = self.proc.returncode
        self.err.close()
        return self.rc


def cpu_seconds(pid):
    """User plus system CPU time of process PID so far, in seconds (/proc)."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()   # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_socket(lport, rport):
    """The kernel's view of the TCP socket with local port LPORT and remote
    port RPORT (/proc/net/tcp, tcp6): (state name, send queue bytes, receive
    queue bytes), or None when there is none."""
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for l in lines:
            f = l.split()
            if (int(f[1].rsplit(":", 1)[1], 16) == lport and int(f[2].rsplit(":", 1)[1], 16) == rport):
                tx, rx = f[4].split(":")
                st = int(f[3], 16)
                return TCP_STATES.get(st, str(st)), int(tx, 16), int(rx, 16)
    return None


# --- SMTP client ----------------------------------------------------------------
class Reply:
    def __init__(self, code, lines, eof=False, timeout=False):
        self.code, self.lines, self.eof, self.timeout = code, lines, eof, timeout

    @property
    def last(self):
        return self.lines[-1] if self.lines else ""

    def is_(self, prefix):
        """The reply's (last) line starts with PREFIX, e.g. '250 2.1.0'."""
        return self.code is not None and not self.eof and self.last.startswith(prefix)

    def cls(self):
        return self.code // 100 if self.code else None

    def __str__(self):
        s = " | ".join(self.lines)
        if self.eof:
            s += (" " if s else "") + "<connection closed>"
        if self.timeout:
            s += (" " if s else "") + "<no reply (timeout)>"
        return repr(s)


class Conn:
    """A raw SMTP client connection: send bytes, read replies."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=5.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        if source:
            self.s.bind((source, 0))
        self.s.settimeout(timeout)
        self.s.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.s.sendall(data)

    def _fill(self, deadline):
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise TimeoutError
        self.s.settimeout(rem)
        try:
            chunk = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except socket.timeout:
            raise TimeoutError
        if not chunk:
            self.eof = True
        self.buf += chunk

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def reply(self, timeout=None):
        lines = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                l = self.readline(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                return Reply(None, lines, timeout=True)
            if l is None:
                return Reply(None, lines, eof=True)
            t = l.decode("latin-1").rstrip("\r\n")
            lines.append(t)
            if len(t) >= 4 and t[3] == "-":
                continue
            code = int(t[:3]) if t[:3].isdigit() else None
            return Reply(code, lines)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n")
        return self.reply(timeout)

    def closed(self, timeout=3.0):
        """True when the server closes the connection within TIMEOUT (any
        data before that is kept)."""
        deadline = time.monotonic() + timeout
        try:
            while not self.eof:
                self._fill(deadline)
        except TimeoutError:
            return False
        return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def connect(port, host="127.0.0.1", source=None, timeout=5.0):
    """A connection and its greeting: (Conn, Reply)."""
    c = Conn(port, host, source, timeout)
    return c, c.reply()


def wire(body, lf=False, stuff=True):
    """BODY (LF line ends) as a client sends it after DATA, dot included;
    with LF, its lines end in bare LF, but the end of data is CR LF . CR LF,
    the only one that ends it."""
    if not body.endswith(b"\n"):
        body += b"\n"
    out = []
    for line in body[:-1].split(b"\n"):
        if stuff and line.startswith(b"."):
            line = b"." + line
        out.append(line)
    eol = b"\n" if lf else b"\r\n"
    return eol.join(out) + b"\r\n.\r\n"


def send_message(c, frm, rcpts, body, params="", lf=False, final_timeout=15.0, nreplies=1,
                 rcpt_params=""):
    """One transaction on an open, greeted connection: a dict of the replies
    (mail, rcpt: [...], data, final; final is a list when NREPLIES > 1 (LMTP)),
    and 'failed' naming the stage that was refused, if any. PARAMS go on
    MAIL, RCPT_PARAMS on every RCPT."""
    res = {"rcpt": [], "failed": None}
    r = c.cmd("MAIL FROM:<%s>%s" % (frm, (" " + params) if params else ""))
    res["mail"] = r
    if r.code != 250:
        res["failed"] = "mail"
        return res
    for a in rcpts:
        res["rcpt"].append(c.cmd("RCPT TO:<%s>%s" % (a, (" " + rcpt_params) if rcpt_params else "")))
    r = c.cmd("DATA")
    res["data"] = r
    if r.code != 354:
        res["failed"] = "data"
        return res
    t0 = time.monotonic()
    c.send(wire(body, lf))
    if nreplies == 1:
        res["final"] = c.reply(final_timeout)
    else:
        res["final"] = [c.reply(final_timeout) for _ in range(nreplies)]
    res["elapsed"] = time.monotonic() - t0
    return res


def greeted(port, host="127.0.0.1", source=None, hello="EHLO client.test", timeout=5.0):
    """A connection that has said EHLO: Conn (raises if refused)."""
    c, g = connect(port, host, source, timeout)
    if g.code != 220:
        c.close()
        raise RuntimeError("greeting: %s" % g)
    r = c.cmd(hello)
    if r.code != 250:
        c.close()
        raise RuntimeError("%s: %s" % (hello, r))
    return c


# --- next-hop sink ---------------------------------------------------------------
def _addr(arg):
    m = re.search(r"<([^>]*)>", arg)
    return m.group(1) if m else arg.split(":", 1)[-1].strip()


class Sink:
    """A next-hop SMTP server (threaded). MESSAGES: the ones it accepted with
    250, each {'hello', 'mail' (the command), 'from', 'params', 'rcpts', 'data'
    (dot-unstuffed, or the BDAT chunks joined), 'raw' (as on the wire: for
    BDAT the chunks' bytes, the same), 'via' ('DATA' or 'BDAT'), 'bdat' (the
    BDAT command lines), 'chunks' (their bytes)}; ATTEMPTS: the ones it
    refused or hung on.  MODE makes it misbehave: keys 'greeting', 'mail',
    'rcpt', 'data', 'dot', 'bdat'; values a reply line to give instead of the
    normal one, or 'hang' (say nothing more, read until the peer closes); for
    'dot' and 'bdat' (the reply to the LAST chunk, given after reading it) also
    a function of the envelope returning either (or None: accept), for 'mail'
    and 'rcpt' a function of the address.  Other keys: 'chunking': True offers CHUNKING
    (RFC 3030) and takes BDAT; 'pipelining': False leaves PIPELINING out of
    the EHLO reply; 'hold': True keeps the replies to MAIL and RCPT until the
    next other command arrives (BDAT, DATA, ...), so only a client that
    pipelines them gets anywhere; 'dsn' and 'smtputf8': True offer DSN (RFC
    3461) and SMTPUTF8 (RFC 6531); 'eightbit': False leaves 8BITMIME out;
    'early': (reply, n) gives the reply once n bytes of a DATA message (or
    of a BDAT chunk of n bytes or more) have come, and closes the
    connection without reading the rest.
    Each message also keeps its RCPT commands as sent ('rcpt_cmds')."""

    def __init__(self, backlog=1024):
        self.lock = threading.Lock()
        self.messages = []
        self.attempts = []
        self.connections = 0
        self.mode = {}
        self.socks = set()
        self.stopping = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 120

            def setup(self):
                super().setup()
                # Replies are written one by one: without this, Nagle's
                # algorithm and the peer's delayed ACK add 40 ms whenever the
                # peer pipelines commands.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def handle(self):
                try:
                    sink._session(self)
                except (OSError, ValueError):
                    pass

        class Srv(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = backlog

        self.srv = Srv(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def set_mode(self, mode):
        """Changes MODE and drops every open session, so that the next
        message comes over a new connection (a client may keep one open)."""
        self.mode = dict(mode)
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(0.3)

    def count(self):
        with self.lock:
            return len(self.messages)

    def find(self, frm):
        with self.lock:
            return [m for m in self.messages if m["from"] == frm]

    def find_attempts(self, frm):
        with self.lock:
            return [m for m in self.attempts if m["from"] == frm]

    def _hang(self, h, limit=60.0):
        conn = h.connection
        conn.settimeout(0.5)
        end = time.monotonic() + limit
        while not self.stopping.is_set() and time.monotonic() < end:
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _session(self, h):
        with self.lock:
            self.connections += 1
            self.socks.add(h.connection)
        try:
            self._session2(h)
        finally:
            with self.lock:
                self.socks.discard(h.connection)

    def _session2(self, h):
        mode = self.mode

        def w(s):
            h.wfile.write((s + "\r\n").encode())
            if s.startswith("421 ") and not s == mode.get("greeting"):
                # 421 closes the connection, as a server that gives it does
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                raise OSError("closed after 421")

        if mode.get("greeting") == "hang":
            return self._hang(h)
        w(mode.get("greeting") or "220 sink.test ESMTP sink")
        if mode.get("greeting"):
            return
        hello = None
        env = None
        held = []

        def w_held(s):
            if mode.get("hold"):
                held.append(s)
            else:
                w(s)

        def message_end(env, r, after):
            """The end of a message (the dot, or BDAT LAST): accepted,
            refused or hung on, as r says. False: hang up."""
            if callable(r):
                r = r(env)
            if r == "hang":
                env["result"] = "hang after " + after
                with self.lock:
                    self.attempts.append(env)
                self._hang(h)
                return False
            r = r or "250 2.0.0 Ok: queued by sink"
            env["result"] = r
            with self.lock:
                (self.messages if r.startswith("250") else self.attempts).append(env)
            w(r)
            return True

        while True:
            line = h.rfile.readline(1 << 20)
            if not line:
                return
            mode = self.mode
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb not in ("MAIL", "RCPT"):
                for x in held:
                    w(x)
                del held[:]
            if verb == "EHLO":
                hello = cmd
                env = None
                w("250-sink.test")
                if mode.get("pipelining", True):
                    w("250-PIPELINING")
                if mode.get("eightbit", True):
                    w("250-8BITMIME")
                if mode.get("dsn"):
                    w("250-DSN")
                if mode.get("smtputf8"):
                    w("250-SMTPUTF8")
                if mode.get("chunking"):
                    w("250-CHUNKING")
                w("250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                hello = cmd
                env = None
                w("250 sink.test")
            elif verb == "MAIL":
                r = mode.get("mail")
                if callable(r):
                    r = r(_addr(cmd[5:]))
                if r == "hang":
                    return self._hang(h)
                if r:
                    w_held(r)
                    continue
                rest = cmd[cmd.index(">") + 1:].strip() if ">" in cmd else ""
                env = {"hello": hello, "mail": cmd, "from": _addr(cmd[5:]), "params": rest,
                       "rcpts": [], "rcpt_cmds": [], "t": time.time(), "bdat": [], "chunks": []}
                w_held("250 2.1.0 Ok")
            elif verb == "RCPT":
                if env is None:
                    w_held("503 5.5.1 need MAIL")
                    continue
                r = mode.get("rcpt")
                if callable(r):
                    r = r(_addr(cmd[5:]))
                if r == "hang":
                    return self._hang(h)
                if r:
                    w_held(r)
                    continue
                env["rcpts"].append(_addr(cmd[5:]))
                env["rcpt_cmds"].append(cmd)
                w_held("250 2.1.5 Ok")
            elif verb == "BDAT" and mode.get("chunking"):
                m = re.fullmatch(r"BDAT +(\d+)( +LAST)? *", cmd, re.I)
                if not m:
                    w("501 5.5.4 Syntax: BDAT count [LAST]")
                    w("421 4.7.0 cannot find the end of that chunk")
                    return
                n, last = int(m.group(1)), bool(m.group(2))
                early = mode.get("early")
                if early and n >= early[1] and env is not None and env["rcpts"]:
                    h.rfile.read(early[1])      # and hang up on the rest, as for DATA
                    env["via"] = "BDAT"
                    env["result"] = "early " + early[0]
                    with self.lock:
                        self.attempts.append(env)
                    w(early[0])
                    return
                chunk = h.rfile.read(n) if n else b""   # read whatever the reply
                if env is None or not env["rcpts"] or env.get("via") == "DATA":
                    w("503 5.5.1 need MAIL and RCPT")
                    continue
                env["bdat"].append(cmd)
                env["chunks"].append(chunk)
                env["via"] = "BDAT"
                env["raw"] = env["data"] = b"".join(env["chunks"])
                if len(chunk) < n:
                    env["result"] = "eof in BDAT chunk"
                    with self.lock:
                        self.attempts.append(env)
                    return
                if not last:
                    w("250 2.0.0 Ok: %d octets" % n)
                    continue
                if not message_end(env, mode.get("bdat"), "BDAT LAST"):
                    return
                env = None
            elif verb == "DATA":
                if env is None or not env["rcpts"]:
                    w("503 5.5.1 need RCPT")
                    continue
                if env.get("via") == "BDAT":
                    w("503 5.5.1 BDAT already used")
                    continue
                r = mode.get("data")
                if r == "hang":
                    return self._hang(h)
                if r:
                    w(r)
                    continue
                env["via"] = "DATA"
                w("354 go ahead")
                raw = []
                data = []
                done = False
                early = mode.get("early")
                got = 0
                while True:
                    l = h.rfile.readline(1 << 24)
                    if not l:
                        break
                    got += len(l)
                    if early and got >= early[1]:
                        # refuse while the message is still coming and
                        # hang up on the rest (unread: the peer gets a reset)
                        env["result"] = "early " + early[0]
                        with self.lock:
                            self.attempts.append(env)
                        w(early[0])
                        return
                    if l in (b".\r\n", b".\n"):
                        done = True
                        break
                    raw.append(l)
                    data.append(l[1:] if l.startswith(b".") else l)
                env["raw"] = b"".join(raw)
                env["data"] = b"".join(data)
                if not done:
                    env["result"] = "eof in data"
                    with self.lock:
                        self.attempts.append(env)
                    return
                if not message_end(env, mode.get("dot"), "dot"):
                    return
                env = None
            elif verb == "RSET":
                env = None
                w("250 2.0.0 Ok")
            elif verb == "NOOP":
                w("250 2.0.0 Ok")
            elif verb == "QUIT":
                w("221 2.0.0 Bye")
                return
            else:
                w("502 5.5.2 unknown command")

    def close(self):
        self.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()


# --- parsing what arrived -----------------------------------------------------------
ADDED = ("x-spam-flag", "x-spam-status", "x-spam-level", "x-chaff-score", "x-chaff-verdict")


def split_message(data):
    """(header lines, body) of DATA; header lines keep their line ends,
    folded continuation lines are separate entries."""
    lines = data.splitlines(keepends=True)
    hdr = []
    i = 0
    while i < len(lines) and lines[i] not in (b"\r\n", b"\n"):
        hdr.append(lines[i])
        i += 1
    body = b"".join(lines[i:])
    return hdr, body


def header(data, name):
    """Values of header NAME (case-insensitive, unfolded) in DATA."""
    hdr, _ = split_message(data)
    vals = []
    cur = None
    for l in hdr:
        t = l.decode("latin-1").rstrip("\r\n")
        if t[:1] in (" ", "\t"):
            if cur == name.lower() and vals:
                vals[-1] += " " + t.strip()
            continue
        k, _, v = t.partition(":")
        cur = k.strip().lower()
        if cur == name.lower():
            vals.append(v.strip())
    return vals


def score_of(data):
    v = header(data, "X-Chaff-Score")
    return float(v[-1]) if v else None


LOG_KEYS = ("client", "from", "rcpt", "size", "score", "verdict", "action")
LOG_RE = re.compile(r"^chaff serve: client=(?P<client>\S+) from=<(?P<from>[^>]*)> "
                    r"rcpt=(?P<rcpt>\S+) size=(?P<size>\d+) score=(?P<score>[01]\.\d{6}) "
                    r"verdict=(?P<verdict>spam|ham|unsure) action=(?P<action>\S+)( time=\S+)?$")


def log_fields(line):
    """The key=value fields of a log line (values unquoted), in order."""
    out = {}
    for m in re.finditer(r'(\w+)=("[^"]*"|\S*)', line):
        out[m.group(1)] = m.group(2).strip('"')
    return out


def log_for(server, frm, wait=2.0):
    """The log lines of SERVER for envelope sender FRM (waits up to WAIT s for one)."""
    end = time.monotonic() + wait
    while True:
        ls = [l for l in server.log_lines() if ("from=<%s>" % frm) in l]
        if ls or time.monotonic() > end:
            return ls
        time.sleep(0.05)


_uid = [0]


def uid(tag="s"):
    """A fresh envelope sender, so each check finds its own messages."""
    _uid[0] += 1
    return "%s%d.%d@example.com" % (tag, _uid[0], os.getpid())
