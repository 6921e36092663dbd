#!/usr/bin/env bash
# Installs the dependencies, builds chaff into build/, fetches the
# SpamAssassin public corpus and runs the main job on it: token
# statistics of the whole corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "$(nproc)" > /dev/null
echo "built build/chaff"
bash corpora-scripts/fetch-spamassassin.sh
c=corpora/spamassassin
./build/chaff tokens --stats --top 15 "$c/easy-ham-1" "$c/easy-ham-2" "$c/hard-ham-1" \
  "$c/spam-1" "$c/spam-2"
