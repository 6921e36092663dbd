#!/usr/bin/env python3
"""chaff benchmarks, run side by side with the peers from Debian.

    python3 bench/bench.py [all]          tokenizer, throughput, accuracy, chart
    python3 bench/bench.py tokenize [--runs N] [--corpus DIR]
    python3 bench/bench.py speed [--speed-runs N] [--per-process N]
    python3 bench/bench.py accuracy [--seed S] [--corpus DIR]
    python3 bench/bench.py serve [--speed-runs N] [--conns N]
    python3 bench/bench.py large [--runs N]   one 100 MB message: time, memory

builds chaff (Release) in build-bench/, fetches the SpamAssassin corpus if
it is missing, and times each program over the same mbox in the same run.
Timings are medians of N runs (wall clock); ratios compare chaff with the
peer measured in the same run. Prints a markdown table and writes it, with
the machine and versions, to bench/results/<what>.md.
"""
import argparse
import base64
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
CHAFF = os.path.join(BUILD, "chaff")
SPAWN = os.path.join(BUILD, "spawn")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    sh(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release",
        "-DCHAFF_TESTS=OFF"], stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", BUILD, "-j", str(os.cpu_count() or 2)],
       stdout=subprocess.DEVNULL)


def corpus(path):
    if not os.path.exists(os.path.join(path, "index")):
        sh(["bash", os.path.join(ROOT, "corpora-scripts", "fetch-spamassassin.sh"), path])
    return path


def which(prog):
    for d in os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, prog)
        if os.access(p, os.X_OK):
            return p
    return None


# Files and folders read before every timed run, so that each program
# finds its input in the page cache alike. This machine's kernel gives
# back idle file pages within a minute (a few MB a second): without it a
# run could wait on the disk for input an earlier program had read.
WARM = []


def warm():
    for top in WARM:
        paths = [top] if os.path.isfile(top) else [
            os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
        for path in paths:
            try:
                with open(path, "rb", buffering=0) as f:
                    while f.read(1 << 20):
                        pass
            except OSError:
                pass


def round_order(items, r):
    """Round r's order of items, seeded by r: in rounds run this way no
    measure always follows the same one (after a long single-threaded
    run, such as bogofilter -b over the corpus, this machine's second
    core starts slowly, and a two-thread run that always came next would
    pay for it in every round)."""
    order = list(items)
    random.Random(r).shuffle(order)
    return order


def timed_rounds(cmds, runs):
    """Median wall-clock seconds of each command, run in rounds (each
    command once per round) so that the machine's slow spells fall on all
    of them alike; output discarded."""
    return [statistics.median(t) for t in round_times(cmds, runs)]


def round_times(cmds, runs, warmup=False):
    """Each command's wall-clock seconds in each round (see timed_rounds);
    with warmup, one untimed round first, so that no timed run is a
    program's first one after the build."""
    if warmup:
        for cmd in cmds:
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
    times = [[] for _ in cmds]
    for r in range(runs):
        for k in round_order(range(len(cmds)), r):
            cmd = cmds[k]
            warm()
            t0 = time.perf_counter()
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            times[k].append(time.perf_counter() - t0)
    return times


def timed(cmd, runs, stdin=None):
    """Median wall-clock seconds of runs executions, output discarded."""
    times = []
    for _ in range(runs):
        warm()
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=fin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
        if stdin:
            fin.close()
    return statistics.median(times)


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    def version(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            return (out or "").strip().splitlines()[0]
        except (OSError, IndexError):
            return "absent"
    return [
        f"machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}",
        f"chaff: {version([CHAFF, '--version'])}",
        f"bogofilter: {version(['bogofilter-bdb', '-V'])}",
        f"spamprobe: {version(['spamprobe', '-V'])}",
    ]


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def report(name, lines):
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench", "results", name + ".md"), "w") as f:
        f.write(text)
    print(text)


def mbox_of(corp, tmp):
    """Both classes in one mbox: the input every program reads."""
    path = os.path.join(tmp, "all.mbox")
    with open(path, "wb") as out:
        for cls in ("ham", "spam"):
            with open(os.path.join(corp, cls + ".mbox"), "rb") as f:
                out.write(f.read())
    return path


def bench_tokenize(args):
    """Each mode of chaff against bogolexer in the same mode: printing
    every token (-p) and tokenizing without printing (-q, which only
    counts them). Two ratios: of the medians, and the median of the
    rounds' own ratios (each program against the peer's run of the same
    round, a second or so apart), which a slow spell of the host that
    lasts a round or more does not move."""
    corp = corpus(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        mbox = mbox_of(corp, tmp)
        WARM[:] = [mbox]
        size = os.path.getsize(mbox)
        msgs = len(read_idx(os.path.join(corp, "index")))
        peer = which("bogolexer")
        if not peer:
            print("note: bogolexer is not installed; no peer to compare with")
        # (name, command, the row of the peer it is compared with)
        progs = []
        if peer:
            progs.append(("bogolexer -p (prints tokens)",
                          ["bogolexer", "-C", "-p", "-I", mbox], 0))
            progs.append(("bogolexer -q (tokenize only)",
                          ["bogolexer", "-C", "-q", "-I", mbox], 1))
        progs.append(("chaff tokens (prints tokens)", [CHAFF, "tokens", mbox], 0))
        progs.append(("chaff tokens -q (tokenize and hash)", [CHAFF, "tokens", "-q", mbox], 1))
        runs = args.tokenize_runs
        rounds = round_times([c for _, c, _ in progs], runs, warmup=True)
    secs = [statistics.median(t) for t in rounds]
    out = []
    for (name, _, ref), t, mine in zip(progs, secs, rounds):
        ratio = paired = "n/a"
        if peer:
            ratio = f"{secs[ref] / t:.1f}x"
            rs = sorted(p / m for p, m in zip(rounds[ref], mine))
            paired = (f"{statistics.median(rs):.1f}x "
                      f"({rs[len(rs) // 4]:.1f}-{rs[(3 * len(rs)) // 4]:.1f})")
        out.append((name, f"{t * 1000:.0f} ms", f"{size / 1e6 / t:.1f}",
                    f"{msgs / t:,.0f}", ratio, paired))
    lines = [f"## Tokenizer throughput, one thread ({msgs} messages, {size / 1e6:.1f} MB mbox, "
             f"median of {runs} rounds after an untimed one)", "",
             table(out, ["program", "time", "MB/s", "messages/s",
                         "vs bogolexer in the same mode (medians)",
                         "the same, median of the rounds' ratios (quartiles)"]), "",
             "`chaff tokens` prints the tokens' text and so does not hash them; "
             "`chaff tokens -q` hashes every token with XXH3, as training and scoring do.", ""]
    lines += ["- " + m for m in machine()]
    report("tokenize", lines)


def read_idx(path):
    with open(path) as f:
        return [tuple(l.split(" ", 1)) for l in f.read().splitlines() if l]


def metrics(rows):
    """rows: (score, truth, verdict) with verdict in spam/ham/unsure."""
    spam = sorted(s for s, t, v in rows if t == "spam")
    ham = sorted(s for s, t, v in rows if t == "ham")
    import bisect
    above = 0.0  # pairs (spam, ham) ranked right, ties counting half
    for s in spam:
        lo, hi = bisect.bisect_left(ham, s), bisect.bisect_right(ham, s)
        above += lo + (hi - lo) * 0.5
    auc = above / (len(spam) * len(ham))
    count = lambda t, v: sum(1 for _, tt, vv in rows if tt == t and vv == v)
    return {
        "1-auc%": 100 * (1 - auc),
        "fp": count("ham", "spam"), "fn": count("spam", "ham"),
        "unsure_spam": count("spam", "unsure"), "unsure_ham": count("ham", "unsure"),
        "caught%": 100 * count("spam", "spam") / len(spam),
        "nspam": len(spam), "nham": len(ham),
    }


def run_chaff(train, test, tmp):
    db = os.path.join(tmp, "chaff-db")
    warm()
    t0 = time.perf_counter()
    sh([CHAFF, "train", "-q", "--db", db, train], stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    warm()
    t2 = time.perf_counter()
    p = subprocess.run([CHAFF, "classify", "--json", "--clues", "0", "--db", db, test],
                       capture_output=True, text=True)
    t3 = time.perf_counter()
    if p.returncode != 0:
        raise RuntimeError(f"chaff classify exited {p.returncode}: {p.stderr[-300:]!r}")
    truth = dict((p, c) for c, p in read_idx(test))
    rows = []
    for line in p.stdout.splitlines():
        r = json.loads(line)
        # ranked by the logit: the score itself rounds to 0 or 1 at the ends
        rows.append((r["logit"], truth[r["path"]], r["verdict"]))
    return scored_all("chaff", rows, truth), t1 - t0, t3 - t2, dir_size(db)


def scored_all(name, rows, test):
    """rows, once it is sure that every test message got a score: a
    message left out would silently shrink the figures."""
    if len(rows) != len(test):
        raise RuntimeError(f"{name} scored {len(rows)} of the {len(test)} test messages")
    return rows


def dir_size(d):
    """The data files' bytes: not LMDB's lock file nor Berkeley DB's
    environment regions (__db.001 ...), which hold locks and caches."""
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f != "lock.mdb" and not f.startswith("__db."))


def run_bogofilter(train, test, tmp):
    import re
    db = os.path.join(tmp, "bogo")
    os.makedirs(db)
    tr = read_idx(train)
    warm()
    t0 = time.perf_counter()
    for cls, flag in (("spam", "-s"), ("ham", "-n")):
        files = [p for c, p in tr if c == cls]
        for i in range(0, len(files), 2000):
            sh(["bogofilter-bdb", "-C", "-d", db, flag, "-B"] + files[i:i + 2000])
    t1 = time.perf_counter()
    te = read_idx(test)
    warm()
    t2 = time.perf_counter()
    truth = dict((p, c) for c, p in te)
    rows = []
    files = [p for _, p in te]
    # the spamicity with 17 decimals, as many as bogofilter's output holds
    # (its default prints 6, which ties many scores at 0 and 1 and ranks
    # it worse)
    fmt = "--spamicity-formats=%0.17f,%0.17f,%0.17f"
    for i in range(0, len(files), 2000):
        out = subprocess.run(["bogofilter-bdb", "-C", "-d", db, "-v", "-B", fmt] +
                             files[i:i + 2000], capture_output=True, text=True).stdout
        for line in out.splitlines():
            path = line.split(" ", 1)[0]
            m = re.search(r"X-Bogosity: (\w+),.*spamicity=([0-9.eE+-]+)", line)
            rows.append((float(m.group(2)), truth[path], m.group(1).lower()))
    t3 = time.perf_counter()
    return scored_all("bogofilter", rows, te), t1 - t0, t3 - t2, dir_size(db)


def run_spamprobe(train, test, tmp):
    db = os.path.join(tmp, "spamprobe")
    tr = read_idx(train)
    warm()
    t0 = time.perf_counter()
    for cls, cmd in (("spam", "spam"), ("ham", "good")):
        files = [p for c, p in tr if c == cls]
        for i in range(0, len(files), 2000):
            sh(["spamprobe", "-c", "-M", "-d", db, cmd] + files[i:i + 2000])
    t1 = time.perf_counter()
    te = read_idx(test)
    warm()
    t2 = time.perf_counter()
    rows = []
    for i in range(0, len(te), 2000):
        chunk = te[i:i + 2000]
        out = subprocess.run(["spamprobe", "-M", "-d", db, "score"] + [p for _, p in chunk],
                             capture_output=True, text=True).stdout.splitlines()
        # one line per message, in order: anything else would pair them wrong
        scored_all("spamprobe", out, chunk)
        for (cls, _), line in zip(chunk, out):
            v, score = line.split()[:2]
            # spamprobe has no unsure band: SPAM or GOOD at its 0.6 threshold
            rows.append((float(score), cls, "spam" if v == "SPAM" else "ham"))
    t3 = time.perf_counter()
    return scored_all("spamprobe", rows, te), t1 - t0, t3 - t2, dir_size(db)


def bench_accuracy(args):
    corp = corpus(args.corpus)
    WARM[:] = [os.path.join(corp, l.split(" ", 1)[1].strip())
               for l in open(os.path.join(corp, "index")) if l.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        sh([sys.executable, os.path.join(ROOT, "corpora-scripts", "split.py"),
            os.path.join(corp, "index"), "--seed", str(args.seed), "--out", tmp])
        train, test = os.path.join(tmp, "train.idx"), os.path.join(tmp, "test.idx")
        ntrain, ntest = len(read_idx(train)), len(read_idx(test))
        peers = [("chaff", run_chaff)]
        for name, prog, fn in (("bogofilter", "bogofilter-bdb", run_bogofilter),
                               ("spamprobe", "spamprobe", run_spamprobe)):
            if which(prog):
                peers.append((name, fn))
            else:
                print(f"note: {prog} is not installed; {name} skipped")
        out, all_rows = [], {}
        for name, fn in peers:
            rows, ttrain, tclass, size = fn(train, test, tmp)
            all_rows[name] = rows
            m = metrics(rows)
            out.append((name, f"{m['1-auc%']:.4f}", m["fp"], m["fn"],
                        f"{m['unsure_spam']} ({100 * m['unsure_spam'] / m['nspam']:.1f}%)",
                        m["unsure_ham"], f"{m['caught%']:.1f}%",
                        f"{ntrain / ttrain:,.0f}", f"{ntest / tclass:,.0f}",
                        f"{size / 1e6:.1f} MB"))
    lines = [f"## Accuracy: SpamAssassin corpus, seeded 2/3 split (seed {args.seed}): "
             f"{ntrain} training, {ntest} test messages", "",
             table(out, ["filter", "(1-AUC)%", "FP", "FN", "unsure spam", "unsure ham",
                         "spam caught", "train msg/s", "classify msg/s", "database"]),
             "", "Default settings of every filter. The rates are one timed run each, "
             "as each filter is used by default: chaff reads the split's index file, on "
             "every core; bogofilter and spamprobe are given the files on the command "
             "line, 2,000 to a process, on one core. The throughput table compares them "
             "on equal terms.", ""]
    lines += ["- " + m for m in machine()]
    report("accuracy", lines)
    return all_rows


def bench_all(args):
    """Everything in one run: tokenizer, throughput, accuracy, and the chart."""
    bench_tokenize(args)
    speed = bench_speed(args)
    rows = bench_accuracy(args)
    bench_serve(args)
    bench_large(args)
    path = os.path.join(ROOT, "bench", "results", "bench.svg")
    chart(speed, rows, path)
    print(f"chart: {path}")


GNU_TIME = "/usr/bin/time"


def ok_codes(cmd):
    """The exit codes that mean success (GNU time passes them on): a
    scoring command's 1 and 2 are verdicts (chaff classify, bogofilter,
    whose -b exits with the last message's); training has only 0, and
    spamprobe exits 0 whatever its verdict and 1 on an error."""
    if os.path.basename(cmd[0]) == "spamprobe" or "train" in cmd or "-s" in cmd or "-n" in cmd:
        return (0,)
    return (0, 1, 2)


def run_once(cmd, stdin=None):
    """Wall seconds and peak RSS (KiB, 0 when unknown) of one run; fails
    loudly. The peak comes from GNU time: a child's own rusage would count
    the memory of the Python process it was forked from."""
    warm()
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    with tempfile.NamedTemporaryFile("r") as rss_file:
        wrap = [GNU_TIME, "-f", "%M", "-o", rss_file.name] if os.access(GNU_TIME, os.X_OK) else []
        t0 = time.perf_counter()
        p = subprocess.run(wrap + cmd, stdin=fin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        secs = time.perf_counter() - t0
        if stdin:
            fin.close()
        if p.returncode not in ok_codes(cmd):
            raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {p.returncode}: "
                               f"{p.stderr[-300:]!r}")
        text = rss_file.read().strip().splitlines()
        rss = int(text[-1]) if wrap and text and text[-1].isdigit() else 0
    return secs, rss


def median_run(make, runs):
    """make() -> (setup, cmd, stdin); median seconds and the largest RSS."""
    times, rss = [], 0
    for _ in range(runs):
        cmds = make()
        t = 0.0
        for cmd, stdin in cmds:
            secs, peak = run_once(cmd, stdin)
            t += secs
            rss = max(rss, peak)
        times.append(t)
    return statistics.median(times), rss


def spawn_rates(cmds, sample_list, runs):
    """Median messages/s of each command of cmds (name -> (cmd, verdict
    by exit code)) started once per message, each file as its stdin
    (bench/spawn.c, as procmail would start it). The commands take turns
    within each round, in alternating order, so that every ratio between
    them comes from the same rounds."""
    rates = {name: [] for name in cmds}
    names = list(cmds)
    for i in range(runs):
        for name in (names if i % 2 == 0 else names[::-1]):
            cmd, verdicts = cmds[name]
            warm()
            out = subprocess.run([SPAWN] + ([] if verdicts else ["-0"]) + [sample_list] + cmd,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"spawn {' '.join(cmd[:3])}: {out.stderr[-300:]!r}")
            n, secs = out.stdout.split()
            rates[name].append(int(n) / float(secs))
    return {name: statistics.median(r) for name, r in rates.items()}


def parallel_ceilings(cmds, runs):
    """How much more work the machine does with every core busy, for each
    command of cmds (name -> (cmd, stdin)): one process alone against as
    many independent copies as there are cores, started at once. The
    commands take turns in each round, so their figures share the rounds.
    The copies share nothing, so each pays for its own memory and caches:
    the figure is what independent processes gain, not a bound on threads
    that share their work."""
    n = os.cpu_count() or 1
    alone = {name: [] for name in cmds}
    together = {name: [] for name in cmds}
    names = list(cmds)
    for i in range(runs):
        for name in (names if i % 2 == 0 else names[::-1]):
            cmd, stdin = cmds[name]
            alone[name].append(run_once(cmd, stdin)[0])
            warm()
            fins = [open(stdin, "rb") if stdin else subprocess.DEVNULL for _ in range(n)]
            t0 = time.perf_counter()
            procs = [subprocess.Popen(cmd, stdin=f, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for f in fins]
            codes = [p.wait() for p in procs]
            together[name].append(time.perf_counter() - t0)
            for f in fins:
                if stdin:
                    f.close()
            if any(c not in ok_codes(cmd) for c in codes):
                raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {codes}")
    return {name: n * statistics.median(alone[name]) / statistics.median(together[name])
            for name in cmds}


def paired_ratio(make, a, b, pairs):
    """Median over back-to-back pairs of (time with a) / (time with b),
    make(x) giving the commands for the setting x; the pairs alternate
    which setting runs first."""
    ratios = []
    for i in range(pairs):
        t = {}
        for x in ((a, b) if i % 2 == 0 else (b, a)):
            t[x] = sum(run_once(cmd, stdin)[0] for cmd, stdin in make(x))
        ratios.append(t[a] / t[b])
    return statistics.median(ratios)


def fresh_dir(tmp, name):
    d = os.path.join(tmp, name)
    subprocess.run(["rm", "-rf", d], check=True)
    os.makedirs(d)
    return d


def speed_rows(corp, tmp, runs, per_process):
    """Training, batch classification and one-process-per-message rates of
    each filter over the whole corpus. Returns {filter: {measure: value}}."""
    spam_mbox, ham_mbox = os.path.join(corp, "spam.mbox"), os.path.join(corp, "ham.mbox")
    idx = read_idx(os.path.join(corp, "index"))
    files = [os.path.join(corp, p) for _, p in idx]
    n = len(files)
    listing = os.path.join(tmp, "files.txt")
    with open(listing, "w") as f:
        f.write("\n".join(files) + "\n")
    index = os.path.join(tmp, "all.idx")
    with open(index, "w") as f:
        f.writelines(f"{c} {os.path.join(corp, p)}\n" for c, p in idx)
    sample = files[:: max(1, n // per_process)][:per_process]
    sample_list = os.path.join(tmp, "sample.txt")
    with open(sample_list, "w") as f:
        f.write("\n".join(sample) + "\n")
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    out = {}

    def train_cmds(prog, name, threads=None):
        d = fresh_dir(tmp, name)
        if prog == "bogofilter":
            return [(["bogofilter-bdb", "-C", "-d", d, "-s", "-M", "-I", spam_mbox], None),
                    (["bogofilter-bdb", "-C", "-d", d, "-n", "-M", "-I", ham_mbox], None)]
        t = ["--threads", threads] if threads else []
        return [([CHAFF, "train", "-q"] + t + ["--db", d, "--spam", spam_mbox], None),
                ([CHAFF, "train", "-q"] + t + ["--db", d, "--ham", ham_mbox], None)]

    bogo = which("bogofilter-bdb")
    if not bogo:
        print("note: bogofilter-bdb is not installed; bogofilter skipped")
    # Databases for classification, trained once; the timed trainings
    # below write databases of their own.
    for cmd, stdin in train_cmds("chaff", "chaff-db-c") + (
            train_cmds("bogofilter", "bogo-db-c") if bogo else []):
        run_once(cmd, stdin)
    db, bdb = os.path.join(tmp, "chaff-db-c"), os.path.join(tmp, "bogo-db-c")
    WARM[:] = [spam_mbox, ham_mbox, db] + ([bdb] if bogo else []) + files
    one = ["--threads", "1"]
    measures = {
        ("chaff", "train"): lambda: train_cmds("chaff", "chaff-db"),
        ("chaff, 1 core", "train"): lambda: train_cmds("chaff", "chaff-db1", "1"),
        ("chaff", "classify"): lambda: [([CHAFF, "classify", "--db", db, index], None)],
        ("chaff, 1 core", "classify"):
            lambda: [([CHAFF, "classify"] + one + ["--db", db, index], None)],
    }
    if bogo:
        measures[("bogofilter", "train")] = lambda: train_cmds("bogofilter", "bogo-db")
        measures[("bogofilter", "classify")] = \
            lambda: [(["bogofilter-bdb", "-C", "-d", bdb, "-b"], listing)]
    # Rounds: every measure once per round, so that the machine's slow and
    # fast spells fall on all of them alike instead of on whichever ran then.
    times = {k: [] for k in measures}
    rss = {k: 0 for k in measures}
    for r in range(runs):
        for k in round_order(measures, r):
            make = measures[k]
            t = 0.0
            for cmd, stdin in make():
                secs, peak = run_once(cmd, stdin)
                t += secs
                rss[k] = max(rss[k], peak)
            times[k].append(t)
    for (name, what), ts in times.items():
        r = out.setdefault(name, {})
        r[what] = n / statistics.median(ts)
        r[what + "_rss"] = rss[(name, what)]
    # Classification's memory does not grow with the number of messages:
    # the peak for the corpus once and for it four times over.
    index4 = os.path.join(tmp, "all4.idx")
    with open(index4, "w") as f:
        f.write(open(index).read() * 4)
    out["chaff, 1 core"]["rss_by_count"] = [
        (k * n, run_once([CHAFF, "classify", "--threads", "1", "--db", db, ix])[1])
        for k, ix in ((1, index), (4, index4))]
    out["chaff"]["size"] = dir_size(os.path.join(tmp, "chaff-db"))
    out["chaff, 1 core"]["size"] = dir_size(os.path.join(tmp, "chaff-db1"))
    procs = {"chaff": ([CHAFF, "classify", "--db", db], True)}
    if bogo:
        procs["bogofilter"] = (["bogofilter-bdb", "-C", "-d", bdb], True)
    rates = spawn_rates(procs, sample_list, runs)
    out["chaff"]["process"] = rates["chaff"]
    out["chaff, 1 core"]["process"] = out["chaff"]["process"]
    ceilings = {"chaff": ([CHAFF, "classify"] + one + ["--db", db, index], None)}
    if bogo:
        ceilings["bogofilter"] = (["bogofilter-bdb", "-C", "-d", bdb, "-b"], listing)
    ceilings = parallel_ceilings(ceilings, runs)
    out["chaff, 1 core"]["ceiling"] = ceilings["chaff"]
    # From one core to all, also in back-to-back pairs: each pair runs the
    # one-thread and the all-thread command one right after the other (in
    # turn, which first), so that both meet the machine in the same state.
    cores = str(os.cpu_count() or 1)
    out["chaff, 1 core"]["pairs"] = {
        "train": paired_ratio(lambda t: train_cmds("chaff", "chaff-dbp", t), "1", cores,
                              max(runs, 7)),
        "classify": paired_ratio(
            lambda t: [([CHAFF, "classify", "--threads", t, "--db", db, index], None)],
            "1", cores, max(runs, 7)),
    }
    if bogo:
        r = out["bogofilter"]
        r["size"] = dir_size(os.path.join(tmp, "bogo-db"))
        r["process"] = rates["bogofilter"]
        r["ceiling"] = ceilings["bogofilter"]
    if which("spamprobe"):
        def sp_train():
            d = fresh_dir(tmp, "sp-db")
            return [(["spamprobe", "-c", "-d", d, "spam", spam_mbox], None),
                    (["spamprobe", "-c", "-d", d, "good", ham_mbox], None)]
        t, rss = median_run(sp_train, 1)
        sdb = os.path.join(tmp, "sp-db")
        r = {"train": n / t, "train_rss": rss, "size": dir_size(sdb)}
        t, rss = median_run(lambda: [(["spamprobe", "-M", "-d", sdb, "score"] + files, None)],
                            1)
        r.update(classify=n / t, classify_rss=rss)
        # spamprobe exits 0 whatever its verdict, and 1 on an error
        r["process"] = spawn_rates({"sp": (["spamprobe", "-d", sdb, "score"], False)},
                                   sample_list, 1)["sp"]
        out["spamprobe"] = r
    else:
        print("note: spamprobe is not installed; spamprobe skipped")
    for r in out.values():
        r["train_mb"] = r["train"] * mb / n
        r["classify_mb"] = r["classify"] * mb / n
    return out


def bench_speed(args):
    corp = corpus(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        res = speed_rows(corp, tmp, args.speed_runs, args.per_process)
    args.messages = len(read_idx(os.path.join(corp, "index")))
    report("speed", speed_lines(res, args))
    return res


def speed_lines(res, args):
    base = res.get("bogofilter")
    def ratio(name, key):
        if not base or name == "bogofilter" or key not in res[name]:
            return ""
        return f" ({res[name][key] / base[key]:.1f}x)"
    rows = []
    for name, r in res.items():
        rows.append((name,
                     f"{r['train']:,.0f} / {r['train_mb']:.1f}{ratio(name, 'train')}",
                     f"{r['classify']:,.0f} / {r['classify_mb']:.1f}{ratio(name, 'classify')}",
                     f"{r['process']:,.0f}{ratio(name, 'process')}",
                     f"{r['train_rss'] / 1024:.0f} / {r['classify_rss'] / 1024:.0f} MB",
                     f"{r['size'] / 1e6:.1f} MB{ratio(name, 'size')}"))
    n = getattr(args, "messages", 6046)
    lines = [f"## Throughput: the whole corpus ({n:,} messages), median of "
             f"{args.speed_runs} rounds (spamprobe: one run); (Nx) = times bogofilter in the "
             f"same rounds", "",
             table(rows, ["filter", "train msg/s / MB/s (mbox)", "classify msg/s / MB/s (batch)",
                          f"msg/s, one process each ({args.per_process})",
                          "peak RSS train / classify", "database"]), "",
             "Training reads one mbox per class (bogofilter -s/-n -M, spamprobe spam/good); "
             f"batch classification reads the {n:,} files (chaff classify INDEX, "
             "bogofilter -b, spamprobe score FILES); one process per message starts a new "
             "process for each of a sample of messages with the message as its input, as "
             "procmail does (bench/spawn.c).", ""]
    if "chaff, 1 core" in res:
        one, all_ = res["chaff, 1 core"], res["chaff"]
        lines += [f"chaff from 1 to {os.cpu_count()} cores: training "
                  f"{all_['train'] / one['train']:.2f}x, batch classification "
                  f"{all_['classify'] / one['classify']:.2f}x (medians of the rounds above)."]
        if "pairs" in one:
            p = one["pairs"]
            lines += [f"In back-to-back pairs (the one-core run and the {os.cpu_count()}-core "
                      f"run one right after the other, median of the pairs' ratios): "
                      f"training {p['train']:.2f}x, batch classification "
                      f"{p['classify']:.2f}x."]
        lines += [""]
        if "rss_by_count" in one:
            (n1, r1), (n4, r4) = one["rss_by_count"]
            lines += [f"Peak RSS of chaff classify --threads 1: {r1 / 1024:.1f} MB for the "
                      f"{n1:,} messages, {r4 / 1024:.1f} MB for them four times over "
                      f"({n4:,} messages).", ""]
        ceil = [f"chaff classify --threads 1 {one['ceiling']:.2f}x"]
        if base and "ceiling" in base:
            ceil.append(f"bogofilter -b {base['ceiling']:.2f}x")
        n = os.cpu_count()
        lines += [f"What independent processes gain here: {n} single-thread copies started "
                  f"together do {' and '.join(ceil)} the work of one copy alone in the same "
                  f"time (in the same rounds). Such copies share nothing, each paying for its "
                  f"own memory (chaff: its own copy of the database's counts) and caches, so "
                  f"this is no bound on threads of one process that share them.", ""]
    return lines + ["- " + m for m in machine()]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, secs=10):
    import socket
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def large_message(path, kind):
    """A message of about 100 MB: a short text part and a 75 MB attachment
    in base64 (the usual large mail), or 100 MB of plain text. The same
    bytes in every run."""
    rnd = random.Random(1)
    head = ("From: sender@example.com\nTo: rcpt@example.org\nSubject: large\n"
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
            "--b\nContent-Type: text/plain\n\nThe report is attached.\n--b\n")
    with open(path, "wb") as f:
        if kind == "attachment":
            f.write((head + "Content-Type: application/pdf; name=\"report.pdf\"\n"
                     "Content-Transfer-Encoding: base64\n\n").encode())
            for _ in range(75):
                f.write(base64.encodebytes(rnd.randbytes(1 << 20)))
        else:
            f.write((head + "Content-Type: text/plain\n\n").encode())
            words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz")
                             for _ in range(rnd.randint(3, 10))) for _ in range(5000)]
            block = "\n".join(" ".join(rnd.choice(words) for _ in range(12))
                              for _ in range(16000)).encode() + b"\n"
            for _ in range(100 * (1 << 20) // len(block)):
                f.write(block)
        f.write(b"--b--\n")


def bench_large(args):
    """One message of about 100 MB, classified, filtered and trained by
    one process each: time and peak memory, chaff against bogofilter,
    both with databases of the whole corpus."""
    corp = corpus(args.corpus)
    spam_mbox, ham_mbox = os.path.join(corp, "spam.mbox"), os.path.join(corp, "ham.mbox")
    bogo = which("bogofilter-bdb")
    if not bogo:
        print("note: bogofilter-bdb is not installed; bogofilter skipped")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db, bdb = os.path.join(tmp, "chaff-db"), fresh_dir(tmp, "bogo-db")
        for m, box in (("--spam", spam_mbox), ("--ham", ham_mbox)):
            sh([CHAFF, "train", "-q", "--db", db, m, box], stdout=subprocess.DEVNULL)
        if bogo:
            sh(["bogofilter-bdb", "-C", "-d", bdb, "-s", "-M", "-I", spam_mbox])
            sh(["bogofilter-bdb", "-C", "-d", bdb, "-n", "-M", "-I", ham_mbox])

        def copy(src, name):
            d = os.path.join(tmp, name)
            subprocess.run(["rm", "-rf", d], check=True)
            shutil.copytree(src, d)
            return d

        for kind in ("attachment", "text"):
            msg = os.path.join(tmp, kind + ".eml")
            large_message(msg, kind)
            size = os.path.getsize(msg)
            WARM[:] = [msg, db] + ([bdb] if bogo else [])
            progs = {"chaff": {
                "classify": lambda: [([CHAFF, "classify", "--db", db, msg], None)],
                "filter": lambda: [([CHAFF, "filter", "--db", db], msg)],
                "train": lambda: [([CHAFF, "train", "-q", "--db", copy(db, "t"), "--spam", msg],
                                   None)]}}
            if bogo:
                progs["bogofilter"] = {
                    "classify": lambda: [(["bogofilter-bdb", "-C", "-d", bdb, "-v"], msg)],
                    "filter": lambda: [(["bogofilter-bdb", "-C", "-d", bdb, "-p"], msg)],
                    "train": lambda: [(["bogofilter-bdb", "-C", "-d", copy(bdb, "bt"), "-s"],
                                       msg)]}
            for prog, ms in progs.items():
                cells = []
                for what in ("classify", "filter", "train"):
                    secs, rss = median_run(ms[what], args.runs)
                    cells.append(f"{secs:.2f} s / {rss / 1024:.0f} MB")
                rows.append([f"{kind}, {size / 1e6:.0f} MB", prog] + cells)
    lines = [f"## One large message, one process each (median of {args.runs} runs; "
             "time / peak RSS)", "",
             table(rows, ["message", "program", "classify", "filter (adds headers)",
                          "train"]), ""]
    lines += ["- " + m for m in machine()]
    report("large", lines)
    return rows


def bench_serve(args):
    """chaff serve on loopback against chaff classify in batch, on the same
    messages: the corpus sent by concurrent clients (bench/smtp_load.c)
    through the front end to a next-hop sink."""
    corp = corpus(args.corpus)
    load = os.path.join(BUILD, "smtp_load")
    files = [os.path.join(corp, l.split(" ", 1)[1].strip())
             for l in open(os.path.join(corp, "index"))]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "db")
        sh([CHAFF, "train", "-q", "--db", db, "--spam", os.path.join(corp, "spam.mbox")],
           stdout=subprocess.DEVNULL)
        sh([CHAFF, "train", "-q", "--db", db, "--ham", os.path.join(corp, "ham.mbox")],
           stdout=subprocess.DEVNULL)
        WARM[:] = [db] + files
        batch_cmd = [CHAFF, "classify", "--db", db, os.path.join(corp, "index")]
        sink_port, port = free_port(), free_port()
        sink = subprocess.Popen([load, "sink", str(sink_port)])
        log = open(os.path.join(tmp, "serve.log"), "w")
        srv = subprocess.Popen([CHAFF, "serve", "--db", db, "--listen", f"127.0.0.1:{port}",
                                "--next-hop", f"127.0.0.1:{sink_port}"], stderr=log)
        try:
            wait_port(sink_port, sink)
            wait_port(port, srv)
            def rate(mode):
                out = subprocess.run([load, mode, f"127.0.0.1:{port}", str(args.conns)] + files,
                                     capture_output=True, text=True, check=True).stdout.split()
                vals = dict(zip(out[::2], out[1::2]))
                if int(vals["accepted"]) != len(files):
                    raise RuntimeError(f"smtp_load: {' '.join(out)}")
                return float(vals["msgs/s"])
            # batch, BDAT and DATA take turns in each round (in an order
            # that changes), so that their ratios share the rounds
            batch_times, rates, data_rates = [], [], []
            for r in range(args.speed_runs):
                for k in round_order(range(3), r):
                    if k == 0:
                        batch_times.append(run_once(batch_cmd)[0])
                    elif k == 1:
                        rates.append(rate("send"))
                    else:
                        data_rates.append(rate("send-data"))
            batch = statistics.median(batch_times)
            with open(f"/proc/{srv.pid}/status") as f:
                hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
        finally:
            srv.terminate()
            srv.wait()
            sink.kill()
            sink.wait()
            log.close()
    serve_rate, batch_rate = statistics.median(rates), len(files) / batch
    data_rate = statistics.median(data_rates)
    lines = [f"## chaff serve: {len(files):,} messages through the SMTP front end on loopback, "
             f"median of {args.speed_runs} rounds", "",
             table([("chaff classify, batch (one process, files named by an index)",
                     f"{batch_rate:,.0f}", ""),
                    (f"chaff serve, {args.conns} concurrent SMTP clients (BDAT), next hop a sink",
                     f"{serve_rate:,.0f}", f"{serve_rate / batch_rate:.2f}x of batch"),
                    (f"the same, clients sending DATA",
                     f"{data_rate:,.0f}", f"{data_rate / batch_rate:.2f}x of batch")],
                   ["path", "msg/s", "ratio"]), "",
             f"Peak RSS of the server over all runs: {hwm / 1024:.0f} MB. The load generator "
             "and the sink (bench/smtp_load.c) run on the same cores as the server. Both offer "
             "and use PIPELINING and CHUNKING as Postfix does: a client sends MAIL, RCPT and "
             "BDAT LAST with the message in one write (or, in the DATA row, MAIL, RCPT, DATA, "
             "then the message after the 354), and chaff passes each message on to the sink "
             "with its headers before the client hears 250. The three take turns in each "
             "round. The serve rates run from the first connection to the last reply, the "
             "messages already in the load generator's memory; the batch rate counts the "
             "whole process, its start and its reading of the files included.", ""]
    report("serve", lines + ["- " + m for m in machine()])


def roc_points(rows):
    """(fpr, tpr) points of the ROC curve, ties taken together."""
    pts, fp, tp = [(0.0, 0.0)], 0, 0
    nspam = sum(1 for _, t, _ in rows if t == "spam")
    nham = len(rows) - nspam
    srt = sorted(rows, key=lambda r: -r[0])
    i = 0
    while i < len(srt):
        j = i
        while j < len(srt) and srt[j][0] == srt[i][0]:
            if srt[j][1] == "spam":
                tp += 1
            else:
                fp += 1
            j += 1
        pts.append((fp / nham, tp / nspam))
        i = j
    return pts


def chart(speed, accuracy_rows, path):
    """An SVG with throughput bars (times bogofilter) and the ROC curves."""
    colors = {"chaff": "#c0392b", "bogofilter": "#2471a3", "spamprobe": "#7d8c2c"}
    w, h = 900, 380
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           '<text x="20" y="22" font-size="15">Throughput (messages/s, log scale)</text>',
           '<text x="480" y="22" font-size="15">ROC, test third (zoomed: FPR 0-5%, TPR 80-100%)</text>']
    measures = [("train", "train"), ("classify", "classify"), ("process", "1 process/msg")]
    names = list(speed)
    top = max(max(r[m] for m, _ in measures) for r in speed.values())
    import math
    lo, hi = 10, 10 ** math.ceil(math.log10(top))
    x0, y0, bw, gh = 60, 340, 28, 290
    for gi, (m, label) in enumerate(measures):
        gx = x0 + gi * (len(names) * bw + 40)
        for ni, name in enumerate(names):
            v = max(speed[name][m], lo)
            bh = gh * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
            out.append(f'<rect x="{gx + ni * bw}" y="{y0 - bh:.1f}" width="{bw - 4}" '
                       f'height="{bh:.1f}" fill="{colors.get(name, "#888")}"/>')
            out.append(f'<text x="{gx + ni * bw + 2}" y="{y0 - bh - 4:.1f}" font-size="9">'
                       f'{speed[name][m]:,.0f}</text>')
        out.append(f'<text x="{gx}" y="{y0 + 16}">{label}</text>')
    for k in range(int(math.log10(lo)), int(math.log10(hi)) + 1):
        y = y0 - gh * (k - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        out.append(f'<line x1="{x0 - 5}" y1="{y:.1f}" x2="{x0 - 1}" y2="{y:.1f}" stroke="black"/>')
        out.append(f'<text x="{x0 - 40}" y="{y + 4:.1f}" font-size="10">1e{k}</text>')
    px, py, pw, ph = 500, 50, 360, 290
    out.append(f'<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    for k in range(6):
        out.append(f'<text x="{px + k * pw / 5 - 8:.0f}" y="{py + ph + 14}" font-size="10">'
                   f'{k}%</text>')
        out.append(f'<text x="{px - 32}" y="{py + ph - k * ph / 4 + 4:.0f}" font-size="10">'
                   f'{80 + 5 * k if k < 5 else 100}%</text>' if k < 5 else "")
    out.append(f'<text x="{px - 32}" y="{py + 4}" font-size="10">100%</text>')
    for li, (name, rows) in enumerate(accuracy_rows.items()):
        pts = []
        for fpr, tpr in roc_points(rows):
            x = px + pw * min(fpr, 0.05) / 0.05
            y = py + ph - ph * max(0.0, tpr - 0.8) / 0.2
            pts.append(f"{x:.1f},{y:.1f}")
        out.append(f'<polyline fill="none" stroke="{colors.get(name, "#888")}" stroke-width="2" '
                   f'points="{" ".join(pts)}"/>')
        out.append(f'<text x="{px + pw - 90}" y="{py + ph - 50 + li * 16}" '
                   f'fill="{colors.get(name, "#888")}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["all", "tokenize", "speed", "accuracy", "serve", "large"], nargs="?",
                    default="all")
    ap.add_argument("--speed-runs", type=int, default=5,
                    help="runs of each throughput test (spamprobe, minutes per run: one)")
    ap.add_argument("--per-process", type=int, default=300,
                    help="messages for the one-process-per-message rate")
    ap.add_argument("--seed", default="1", help="split seed (accuracy)")
    ap.add_argument("--conns", type=int, default=10,
                    help="SMTP clients at once (serve); 10 is the process limit of the Postfix set-up in README")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokenize-runs", type=int, default=15,
                    help="rounds of the tokenizer benchmark (about 1.5 s each)")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "corpora", "spamassassin"))
    ap.add_argument("--no-build", action="store_true", help="use build-bench/ as it is")
    args = ap.parse_args()
    if not args.no_build:
        build()
    {"all": bench_all, "tokenize": bench_tokenize, "speed": bench_speed,
     "accuracy": bench_accuracy, "serve": bench_serve, "large": bench_large}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
