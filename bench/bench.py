#!/usr/bin/env python3
"""chaff benchmarks, run side by side with the peers from Debian.

    python3 bench/bench.py tokenize [--runs N] [--corpus DIR]

builds chaff (Release) in build-bench/, fetches the SpamAssassin corpus if
it is missing, and times each program over the same mbox in the same run.
Timings are medians of N runs (wall clock); ratios compare chaff with the
peer measured in the same run. Prints a markdown table and writes it, with
the machine and versions, to bench/results/<what>.md.
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tokenize"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--corpus", default=os.path.join(ROOT, "corpora", "spamassassin"))
    ap.add_argument("--no-build", action="store_true", help="use build-bench/ as it is")
    args = ap.parse_args()
    if not args.no_build:
        build()
    {"tokenize": bench_tokenize}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
