#!/usr/bin/env python3
"""mutual_knn speed: latentlab (native CLI) against the Platonic Representation Hypothesis
reference code (minyoungg/platonic-rep `metrics.py`, torch on the CPU), measured in the same
run on the same data. A benchmark, not a test: prints one JSON object.

    python3 -m venv /tmp/alignvenv
    /tmp/alignvenv/bin/pip install torch==2.11.0 scikit-learn==1.6.1 numpy==2.2.6
    cargo build --release --bin latentlab
    /tmp/alignvenv/bin/python scripts/bench/align.py REFERENCE_CHECKOUT [--latentlab target/release/latentlab]

Data: two views of the same n items (a shared 64-d latent through two random linear maps
to d dimensions, plus noise), float32. Two comparisons; in each the two engines run in turn,
one call each per round, for `--rounds` rounds (timing.alternate), and times and speedups are
min / median / max over the rounds:
- `metric`: the reference's `AlignmentMetrics.mutual_knn` on L2-normalised tensors already in
  memory, against `latentlab align --metric mutual_knn --no-prepare` (the whole process:
  start, reading both .npy files, normalising, the metric, printing);
- `with_preparation`: `measure_alignment.prepare_features` (outliers clamped at the 0.95
  quantile) + `F.normalize` + `mutual_knn`, against `latentlab align --metric mutual_knn`
  (which prepares by default).
Both sides must report the same score (to the reference's float32 averaging); the script
checks it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
from timing import alternate, ratio_range, spread
import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("reference")
parser.add_argument("--latentlab", default="target/release/latentlab")
parser.add_argument("--n", type=int, default=4096)
parser.add_argument("--d", type=int, default=768)
parser.add_argument("--k", type=int, default=10)
parser.add_argument("--rounds", type=int, default=5)
args = parser.parse_args()

sys.path.insert(0, args.reference)
sys.modules["tasks"] = types.ModuleType("tasks")
sys.modules["tasks"].get_models = None
sys.modules["utils"] = types.ModuleType("utils")
for mod in ("tqdm", "tqdm.auto"):  # progress bars only
    sys.modules[mod] = types.ModuleType(mod)
sys.modules["tqdm.auto"].tqdm = None
torch.Tensor.cuda = lambda self, *a, **k: self  # CPU only
import measure_alignment  # noqa: E402
from metrics import AlignmentMetrics  # noqa: E402

rng = np.random.default_rng(0)
latent = rng.standard_normal((args.n, 64))
views = []
for _ in range(2):
    proj = rng.standard_normal((64, args.d)) / 8.0
    views.append((latent @ proj + 0.5 * rng.standard_normal((args.n, args.d))).astype(np.float32))
x_np, y_np = views


def reference_metric(x, y):
    return float(AlignmentMetrics.mutual_knn(x, y, topk=args.k))


def reference_prepared():
    xp = measure_alignment.prepare_features(torch.from_numpy(x_np), q=0.95, exact=False)
    yp = measure_alignment.prepare_features(torch.from_numpy(y_np), q=0.95, exact=False)
    return reference_metric(F.normalize(xp, dim=-1), F.normalize(yp, dim=-1))


with tempfile.TemporaryDirectory() as tmp:
    xf, yf = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xf, x_np)
    np.save(yf, y_np)

    def ours(*extra):
        out = subprocess.run(
            [args.latentlab, "align", "--x", xf, "--y", yf, "--metric", "mutual_knn", "--k", str(args.k), *extra],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)["score"]

    xn = F.normalize(torch.from_numpy(x_np), dim=-1)
    yn = F.normalize(torch.from_numpy(y_np), dim=-1)
    rows = {}
    for name, ref_fn, our_args in [
        ("metric", lambda: reference_metric(xn, yn), ("--no-prepare",)),
        ("with_preparation", reference_prepared, ()),
    ]:
        times, scores = alternate(args.rounds, {"latentlab": lambda: ours(*our_args), "reference": ref_fn})
        rows[name] = {
            "reference_s": spread(times["reference"]),
            "latentlab_s": spread(times["latentlab"]),
            "speedup": ratio_range(times["reference"], times["latentlab"]),
            "reference_score": scores["reference"],
            "latentlab_score": scores["latentlab"],
            # the reference averages in float32; the counts behind both are integers
            "same_score": abs(scores["reference"] - scores["latentlab"]) < 1e-6,
        }

print(json.dumps({
    "n": args.n, "d": args.d, "k": args.k, "rounds": args.rounds,
    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
    "cores": os.cpu_count(),
    **rows,
}, indent=1))
