#!/usr/bin/env python3
"""Deterministic splits of a TREC-style index ("spam PATH" / "ham PATH").

    split.py INDEX --ratio 0.6667 --seed 1 --out DIR    -> DIR/train.idx DIR/test.idx
    split.py INDEX --folds 5 --seed 1 --out DIR         -> DIR/fold0.idx ... fold4.idx
    split.py INDEX --chrono --ratio 0.6667 --out DIR    -> first messages train, last test

Paths in the outputs are absolute. The order of a class is the order of
SHA-256("<seed>:<path>"), where <path> is a relative path as the index
writes it, and an absolute one (as in the indexes this script writes)
relative to the folder that holds all the index's messages, so the same
seed gives the same split on every machine, in every folder and with
every Python version, also when an output of this script is split again
(as bench/tune.py does); each class is split on its own (stratified),
so both halves keep the corpus's spam/ham proportion. --chrono keeps the
index's own order (the corpus's time order where it has one).
"""
import argparse
import hashlib
import os
import sys


def read_index(path):
    base = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            cls, _, p = line.partition(" ")
            if cls not in ("spam", "ham") or not p:
                sys.exit(f"{path}:{n}: expected 'spam PATH' or 'ham PATH'")
            out.append((cls, p if os.path.isabs(p) else os.path.join(base, p), p))
    # the key of each message: a relative path as written; an absolute one
    # (an index this script wrote) relative to the folder holding them all
    tops = [os.path.dirname(q) for _, q, p in out if os.path.isabs(p)]
    top = os.path.commonpath(tops) if tops else ""
    return [(cls, q, os.path.relpath(q, top) if os.path.isabs(p) else p) for cls, q, p in out]


def order(items, seed):
    """Sorted by the hash of the path below the messages' common folder,
    never by where the corpus happens to lie."""
    return sorted(items, key=lambda it: hashlib.sha256(f"{seed}:{it[2]}".encode()).digest())


def write(path, items):
    with open(path, "w") as f:
        for cls, p, _ in items:
            f.write(f"{cls} {p}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--ratio", type=float, default=2 / 3, help="training share")
    ap.add_argument("--folds", type=int, default=0)
    ap.add_argument("--chrono", action="store_true")
    a = ap.parse_args()
    items = read_index(a.index)
    os.makedirs(a.out, exist_ok=True)
    if a.folds:
        folds = [[] for _ in range(a.folds)]
        for cls in ("spam", "ham"):
            for i, it in enumerate(order([x for x in items if x[0] == cls], a.seed)):
                folds[i % a.folds].append(it)
        for k, fold in enumerate(folds):
            write(os.path.join(a.out, f"fold{k}.idx"), order(fold, a.seed))
        return
    train, test = [], []
    for cls in ("spam", "ham"):
        part = [x for x in items if x[0] == cls]
        if not a.chrono:
            part = order(part, a.seed)
        # halves rounded up, as chaff eval --split rounds (Python's round()
        # takes halves to the even neighbour)
        cut = int(len(part) * a.ratio + 0.5)
        train += part[:cut]
        test += part[cut:]
    if not a.chrono:
        train, test = order(train, a.seed), order(test, a.seed)
    else:
        pos = {it: i for i, it in enumerate(items)}
        train.sort(key=pos.get)
        test.sort(key=pos.get)
    write(os.path.join(a.out, "train.idx"), train)
    write(os.path.join(a.out, "test.idx"), test)


if __name__ == "__main__":
    main()
