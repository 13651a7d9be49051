#!/usr/bin/env bash
# Makes www/public/tiny/retrieval-responses.json, the tinyBenchmarks page's data: which of 100
# retrieval configurations (prompt template × leading embedding dimensions kept × top-k) find
# each captioned Tux Paint stamp's picture for its caption, measured with the bundled encoders
# by `latentlab tiny responses` (≈4 minutes on 2 cores). The stamps themselves and their
# captions are not written (their licence: GPL-2, Debian tuxpaint-stamps-default); the page
# shows them when the site build has copied them (scripts/lib.sh copy_stamps_to_site).
#
#   scripts/data/make_tiny_responses.sh [LATENTLAB_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --bin latentlab
  bin=target/debug/latentlab
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" tiny responses --out "$tmp/R.npy" --describe "$tmp/described.json" >/dev/null
mkdir -p www/public/tiny
python3 - "$tmp/described.json" www/public/tiny/retrieval-responses.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
out = {
    "source": "latentlab tiny responses (scripts/data/make_tiny_responses.sh): bundled encoders "
              "effl0-minilm-bridge + minilm-l6-v2 on the captioned stamps of Debian's "
              "tuxpaint-stamps-default; 1 = the configuration ranks the stamp's picture within "
              "its top k for the stamp's caption",
    "configs": d["configs"],
    "items": [i["name"] for i in d["items"]],
    "responses": d["responses"],
}
json.dump(out, open(sys.argv[2], "w"), separators=(",", ":"))
print(len(out["configs"]), "configurations ×", len(out["items"]), "items")
PY
