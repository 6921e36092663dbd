#!/usr/bin/env bash
# Runs every test: installs dependencies, fetches the corpus, then
#  1. a gcc build with warnings as errors: all unit, CLI and corpus tests;
#  2. a clang build with ASan and UBSan: the same tests, plus libFuzzer
#     runs of the tokenizer and of the SMTP state machine
#     (CHAFF_FUZZ_SECONDS each, 60 by default);
#  3. a clang build with ThreadSanitizer: the tests that train and score
#     on several threads, the worker pool, and the map moving under readers.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
[ "${CHAFF_SKIP_DEPS:-}" = 1 ] || bash scripts/install-deps.sh
bash corpora-scripts/fetch-spamassassin.sh

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAFF_WERROR=ON > /dev/null
cmake --build build-test -j "$jobs"
(cd build-test && ctest --output-on-failure -j "$jobs")

CC=clang cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DCHAFF_WERROR=ON \
  -DCHAFF_SANITIZER=address,undefined -DCHAFF_FUZZ=ON \
  -DCHAFF_FUZZ_SECONDS="${CHAFF_FUZZ_SECONDS:-60}" > /dev/null
cmake --build build-san -j "$jobs"
(cd build-san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")

CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAFF_WERROR=ON \
  -DCHAFF_SANITIZER=thread > /dev/null
cmake --build build-tsan -j "$jobs" --target chaff_cli test_train test_score test_resize \
  test_tokpool
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --output-on-failure -j "$jobs" \
  -R '^(test_cli_threads|test_train|test_score|test_resize|test_tokpool)$')
