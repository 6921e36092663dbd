#!/usr/bin/env bash
# Installs the dependencies, builds chaff into build/, fetches the
# SpamAssassin public corpus and runs the main job on it: token
# statistics of the whole corpus, then an accuracy run beside bogofilter
# and spamprobe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCHAFF_TESTS=OFF > /dev/null
cmake --build build-bench -j "$(nproc)" > /dev/null
cmake --build build -j "$(nproc)" > /dev/null
echo "built build/chaff"
bash corpora-scripts/fetch-spamassassin.sh
c=corpora/spamassassin
./build/chaff tokens --stats --top 15 "$c/easy-ham-1" "$c/easy-ham-2" "$c/hard-ham-1" \
  "$c/spam-1" "$c/spam-2"
# The main job: train on a seeded 2/3 of the corpus, score the other third,
# with bogofilter and spamprobe measured in the same run.
python3 bench/bench.py accuracy --no-build
