#!/usr/bin/env python3
"""chaff benchmarks, run side by side with the peers from Debian.

    python3 bench/bench.py tokenize [--runs N] [--corpus DIR]
    python3 bench/bench.py accuracy [--seed S] [--corpus DIR]

builds chaff (Release) in build-bench/, fetches the SpamAssassin corpus if
it is missing, and times each program over the same mbox in the same run.
Timings are medians of N runs (wall clock); ratios compare chaff with the
peer measured in the same run. Prints a markdown table and writes it, with
the machine and versions, to bench/results/<what>.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
CHAFF = os.path.join(BUILD, "chaff")


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


def timed(cmd, runs, stdin=None):
    """Median wall-clock seconds of runs executions, output discarded."""
    times = []
    for _ in range(runs):
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
    corp = corpus(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        mbox = mbox_of(corp, tmp)
        size = os.path.getsize(mbox)
        msgs = 6046
        rows = []
        base = None
        if which("bogolexer"):
            base = timed(["bogolexer", "-C", "-p", "-I", mbox], args.runs)
            rows.append(("bogolexer -p (prints tokens)", base))
        else:
            print("note: bogolexer is not installed; no peer to compare with")
        rows.append(("chaff tokens (prints tokens)", timed([CHAFF, "tokens", mbox], args.runs)))
        rows.append(("chaff tokens -q (tokenize only)",
                     timed([CHAFF, "tokens", "-q", mbox], args.runs)))
    out = []
    for name, secs in rows:
        ratio = f"{base / secs:.1f}x" if base else "n/a"
        out.append((name, f"{secs * 1000:.0f} ms", f"{size / 1e6 / secs:.1f}",
                    f"{msgs / secs:,.0f}", ratio))
    lines = [f"## Tokenizer throughput, one thread ({msgs} messages, {size / 1e6:.1f} MB mbox, "
             f"median of {args.runs} runs)", "",
             table(out, ["program", "time", "MB/s", "messages/s", "vs bogolexer"]), ""]
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
    t0 = time.perf_counter()
    sh([CHAFF, "train", "-q", "--db", db, train], stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    out = subprocess.run([CHAFF, "classify", "--json", "--clues", "0", "--db", db, test],
                         capture_output=True, text=True).stdout
    t2 = time.perf_counter()
    truth = dict((p, c) for c, p in read_idx(test))
    rows = []
    for line in out.splitlines():
        r = json.loads(line)
        # ranked by the logit: the score itself rounds to 0 or 1 at the ends
        rows.append((r["logit"], truth[r["path"]], r["verdict"]))
    return rows, t1 - t0, t2 - t1, dir_size(db)


def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f != "lock.mdb")


def run_bogofilter(train, test, tmp):
    import re
    db = os.path.join(tmp, "bogo")
    os.makedirs(db)
    tr = read_idx(train)
    t0 = time.perf_counter()
    for cls, flag in (("spam", "-s"), ("ham", "-n")):
        files = [p for c, p in tr if c == cls]
        for i in range(0, len(files), 2000):
            sh(["bogofilter-bdb", "-C", "-d", db, flag, "-B"] + files[i:i + 2000])
    t1 = time.perf_counter()
    te = read_idx(test)
    truth = dict((p, c) for c, p in te)
    rows = []
    files = [p for _, p in te]
    for i in range(0, len(files), 2000):
        out = subprocess.run(["bogofilter-bdb", "-C", "-d", db, "-v", "-B"] + files[i:i + 2000],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            path = line.split(" ", 1)[0]
            m = re.search(r"X-Bogosity: (\w+),.*spamicity=([0-9.]+)", line)
            rows.append((float(m.group(2)), truth[path], m.group(1).lower()))
    t2 = time.perf_counter()
    return rows, t1 - t0, t2 - t1, dir_size(db)


def run_spamprobe(train, test, tmp):
    db = os.path.join(tmp, "spamprobe")
    tr = read_idx(train)
    t0 = time.perf_counter()
    for cls, cmd in (("spam", "spam"), ("ham", "good")):
        files = [p for c, p in tr if c == cls]
        for i in range(0, len(files), 2000):
            sh(["spamprobe", "-c", "-M", "-d", db, cmd] + files[i:i + 2000])
    t1 = time.perf_counter()
    te = read_idx(test)
    rows = []
    for i in range(0, len(te), 2000):
        chunk = te[i:i + 2000]
        out = subprocess.run(["spamprobe", "-M", "-d", db, "score"] + [p for _, p in chunk],
                             capture_output=True, text=True).stdout.splitlines()
        for (cls, _), line in zip(chunk, out):
            v, score = line.split()[:2]
            # spamprobe has no unsure band: SPAM or GOOD at its 0.6 threshold
            rows.append((float(score), cls, "spam" if v == "SPAM" else "ham"))
    t2 = time.perf_counter()
    return rows, t1 - t0, t2 - t1, dir_size(db)


def bench_accuracy(args):
    corp = corpus(args.corpus)
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
        out = []
        for name, fn in peers:
            rows, ttrain, tclass, size = fn(train, test, tmp)
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
             "", "Default settings of every filter; one process per command, files "
             "named on the command line.", ""]
    lines += ["- " + m for m in machine()]
    report("accuracy", lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tokenize", "accuracy"])
    ap.add_argument("--seed", default="1", help="split seed (accuracy)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "corpora", "spamassassin"))
    ap.add_argument("--no-build", action="store_true", help="use build-bench/ as it is")
    args = ap.parse_args()
    if not args.no_build:
        build()
    {"tokenize": bench_tokenize, "accuracy": bench_accuracy}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
