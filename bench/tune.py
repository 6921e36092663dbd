#!/usr/bin/env python3
"""Chooses chaff's default parameters by cross-validation inside the
training part of the seeded split, never looking at the test part.

    python3 bench/tune.py [--seed 1] [--folds 3] [--pairs]

For each fold a database is trained on the other folds; every parameter
combination of the grid then scores the held-out fold (chaff classify
--set, no retraining). Reports the combinations with the lowest pooled
(1-AUC)%, and for the best one the spam caught and ham misfiled at each
candidate cutoff.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--pairs", action="store_true")
    ap.add_argument("--corpus", default=os.path.join(bench.ROOT, "corpora", "spamassassin"))
    a = ap.parse_args()
    bench.build()
    corp = bench.corpus(a.corpus)
    split = os.path.join(bench.ROOT, "corpora-scripts", "split.py")
    with tempfile.TemporaryDirectory() as tmp:
        bench.sh([sys.executable, split, os.path.join(corp, "index"), "--seed", a.seed,
                  "--out", tmp])
        bench.sh([sys.executable, split, os.path.join(tmp, "train.idx"), "--seed", a.seed,
                  "--folds", str(a.folds), "--out", tmp])
        folds = [os.path.join(tmp, f"fold{k}.idx") for k in range(a.folds)]
        dbs = []
        for k in range(a.folds):
            rest = os.path.join(tmp, f"rest{k}.idx")
            with open(rest, "w") as out:
                for j in range(a.folds):
                    if j != k:
                        out.write(open(folds[j]).read())
            db = os.path.join(tmp, f"db{k}")
            bench.sh([bench.CHAFF, "train", "-q", "--db", db, rest] +
                     (["--pairs"] if a.pairs else []), stdout=subprocess.DEVNULL)
            dbs.append(db)
        results = []
        for combo in itertools.product(*GRID.values()):
            params = dict(zip(GRID, combo), spam_cutoff=1, ham_cutoff=0)
            m = bench.metrics(score_folds(dbs, folds, params))
            results.append((m["1-auc%"], combo))
        results.sort()
        print(f"cross-validation inside the training part ({a.folds} folds, seed {a.seed}"
              f"{', word pairs' if a.pairs else ''})")
        for auc, combo in results[:10]:
            print(f"  (1-AUC)% {auc:.4f}  " + " ".join(f"{k}={v}" for k, v in zip(GRID, combo)))
        best = dict(zip(GRID, results[0][1]))
        rows = score_folds(dbs, folds, dict(best, spam_cutoff=1, ham_cutoff=0))
        ham = sorted(s for _, t, s in rows if t == "ham")
        spam = [s for _, t, s in rows if t == "spam"]
        print("cutoffs for the best:")
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
