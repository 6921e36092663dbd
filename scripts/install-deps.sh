#!/usr/bin/env bash
# Installs what chaff needs to build, test and benchmark on Debian 12.
set -euo pipefail
run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
# Postfix serves chaff serve's end-to-end test from a private instance;
# Debian's own configuration of it is not wanted.
echo "postfix postfix/main_mailer_type select No configuration" | run debconf-set-selections
# (libclang-rt-dev: the sanitizer and libFuzzer runtimes, which clang
# only recommends)
run apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config clang libclang-rt-dev python3 gzip ca-certificates \
  liblmdb-dev lmdb-utils libpcre2-dev zlib1g-dev libxxhash-dev libunistring-dev liburing-dev \
  libcmocka-dev bogofilter bogofilter-bdb spamprobe time swaks postfix procmail dovecot-sieve \
  > /dev/null
# npm fetches the corpus; keep an npm that is already there.
command -v npm > /dev/null || run apt-get install -y -qq --no-install-recommends npm > /dev/null
echo "dependencies installed"
