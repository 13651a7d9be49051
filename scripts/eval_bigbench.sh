#!/usr/bin/env bash
# The README's BIG-bench table: `latentlab sketch eval` for both tasks in the four modes
# (direct, sketch with argmax, sketch with beam_var, rank), whole tasks, then a Markdown table.
# About 70 minutes on one core of the 2-core development machine (release build).
#
#     scripts/eval_bigbench.sh [OUT_DIR]      # default .cache/bigbench-eval; reruns skip finished runs
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.cache/bigbench-eval}
mkdir -p "$out"
cargo build --release --bin latentlab
bin="${CARGO_TARGET_DIR:-target}/release/latentlab"
for task in date_understanding tracking_shuffled_objects_three; do
  for spec in "rank argmax" "sketch argmax" "sketch beam_var" "direct argmax"; do
    set -- $spec
    file="$out/$task-$1-$2.json"
    [ -s "$file" ] && continue
    "$bin" sketch eval --task "$task" --mode "$1" --decoder "$2" --threads 1 \
      --per-example > "$file.tmp"
    mv "$file.tmp" "$file"
  done
done
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = [("direct", "argmax", "asked directly (greedy, first option named)"),
        ("sketch", "argmax", "sketch, choice hole, `argmax`"),
        ("sketch", "beam_var", "sketch, choice hole, `beam_var` (n = 2)"),
        ("rank", "argmax", "options ranked by Σ log p")]
tasks = ["date_understanding", "tracking_shuffled_objects_three"]
res = {(t, m, d): json.loads((out / f"{t}-{m}-{d}.json").read_text()) for t in tasks for m, d, _ in rows}
print("| mode | " + " | ".join(f"{t} (n = {res[(t, 'rank', 'argmax')]['n']})" for t in tasks) + " |")
print("|---|" + "---|" * len(tasks))
for m, d, label in rows:
    cells = []
    for t in tasks:
        r = res[(t, m, d)]
        lo, hi = r["ci95"]
        cells.append(f"{100 * r['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
    print(f"| {label} | " + " | ".join(cells) + " |")
print("| chance | " + " | ".join(f"{100 * res[(t, 'rank', 'argmax')]['chance']:.1f}%" for t in tasks) + " |")
for t in tasks:
    secs = {f"{m}/{d}": round(res[(t, m, d)]["seconds"]) for m, d, _ in rows}
    direct = res[(t, "direct", "argmax")]
    print(f"\n{t}: seconds per mode {secs}; direct answers naming no option: {direct['named_no_option']} of {direct['n']}")
PY
