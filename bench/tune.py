#!/usr/bin/env python3
"""Chooses chaff's default parameters by cross-validation inside the
training part of the seeded split, never looking at the test part.

    python3 bench/tune.py [--seed 1] [--folds 3,4,5] [--pairs]

For each fold count (a cross-validation layout) the training part is split
into that many folds, and a database is trained on all folds but each;
every parameter combination of the grid then scores the held-out folds
(chaff classify --set, no retraining). Reports the combinations with the
lowest mean (1-AUC)% over the layouts, where the current defaults stand,
and for the best one the spam caught and ham misfiled at each candidate
cutoff.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

GRID = {
    "robs": [0.0178, 0.05, 0.1, 0.3],
    "robx": [0.5, 0.52],
    "min_dev": [0.2, 0.3, 0.375, 0.4, 0.45],
    "max_tokens": [0, 30, 50, 100],
}


def score_folds(dbs, folds, params):
    rows = []
    for db, fold in zip(dbs, folds):
        truth = dict((p, c) for c, p in bench.read_idx(fold))
        args = [bench.CHAFF, "classify", "--json", "--clues", "0", "--db", db, fold]
        for k, v in params.items():
            args += ["--set", f"{k}={v}"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            r = json.loads(line)
            rows.append((r["logit"], truth[r["path"]], r["score"]))
    return rows


def layout(tmp, train_idx, seed, k, pairs):
    """k folds of the training part, and a database trained on all but
    each: (fold indexes, databases)."""
    split = os.path.join(bench.ROOT, "corpora-scripts", "split.py")
    d = os.path.join(tmp, f"k{k}")
    bench.sh([sys.executable, split, train_idx, "--seed", seed, "--folds", str(k), "--out", d])
    folds = [os.path.join(d, f"fold{j}.idx") for j in range(k)]
    dbs = []
    for j in range(k):
        rest = os.path.join(d, f"rest{j}.idx")
        with open(rest, "w") as out:
            for i in range(k):
                if i != j:
                    out.write(open(folds[i]).read())
        db = os.path.join(d, f"db{j}")
        bench.sh([bench.CHAFF, "train", "-q", "--db", db, rest] + (["--pairs"] if pairs else []),
                 stdout=subprocess.DEVNULL)
        dbs.append(db)
    return folds, dbs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--folds", default="3,4,5",
                    help="fold counts, one cross-validation layout each (default 3,4,5)")
    ap.add_argument("--pairs", action="store_true")
    ap.add_argument("--corpus", default=os.path.join(bench.ROOT, "corpora", "spamassassin"))
    a = ap.parse_args()
    bench.build()
    corp = bench.corpus(a.corpus)
    split = os.path.join(bench.ROOT, "corpora-scripts", "split.py")
    ks = [int(k) for k in a.folds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        bench.sh([sys.executable, split, os.path.join(corp, "index"), "--seed", a.seed,
                  "--out", tmp])
        layouts = [layout(tmp, os.path.join(tmp, "train.idx"), a.seed, k, a.pairs) for k in ks]
        # each combination's (1-AUC)% in every layout, and their mean
        combos = list(itertools.product(*GRID.values()))
        def aucs(c):
            return [bench.metrics(score_folds(dbs, folds, dict(zip(GRID, c), spam_cutoff=1,
                                                               ham_cutoff=0)))["1-auc%"]
                    for folds, dbs in layouts]
        per = {c: aucs(c) for c in combos}
        results = sorted((sum(v) / len(v), c) for c, v in per.items())
        print(f"cross-validation inside the training part (folds {a.folds}, seed {a.seed}"
              f"{', word pairs' if a.pairs else ''}): mean (1-AUC)% over the layouts")
        def line(auc, c):
            return (f"  (1-AUC)% {auc:.4f} (" + " ".join(f"{x:.4f}" for x in per[c]) + ")  " +
                    " ".join(f"{k}={v:g}" for k, v in zip(GRID, c)))
        for auc, c in results[:10]:
            print(line(auc, c))
        # where chaff's own defaults (those of a new database) stand
        db0 = layouts[0][1][0]
        cur = tuple(float(subprocess.run([bench.CHAFF, "config", "--db", db0, "get", k],
                                         capture_output=True, text=True,
                                         check=True).stdout) for k in GRID)
        if cur not in per:
            per[cur] = aucs(cur)
        mean = sum(per[cur]) / len(per[cur])
        rank = 1 + sum(1 for auc, _ in results if auc < mean)
        print(f"the defaults, rank {rank} of {len(results)}:")
        print(line(mean, cur))
        best = dict(zip(GRID, results[0][1]))
        rows = []
        for folds, dbs in layouts:
            rows += score_folds(dbs, folds, dict(best, spam_cutoff=1, ham_cutoff=0))
        ham = sorted(s for _, t, s in rows if t == "ham")
        spam = [s for _, t, s in rows if t == "spam"]
        print("cutoffs for the best, all layouts pooled (each message once per layout):")
        for cut in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
            fp = sum(1 for s in ham if s >= cut)
            caught = 100 * sum(1 for s in spam if s >= cut) / len(spam)
            print(f"  spam_cutoff {cut}: ham misfiled {fp}, spam caught {caught:.1f}%")
        for cut in (0.1, 0.2, 0.3, 0.4, 0.45):
            fn = sum(1 for s in spam if s <= cut)
            hu = sum(1 for s in ham if s > cut)
            print(f"  ham_cutoff {cut}: spam called ham {fn}, ham above it {hu}")


if __name__ == "__main__":
    main()
