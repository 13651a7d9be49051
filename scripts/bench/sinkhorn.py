#!/usr/bin/env python3
"""Sinkhorn speed: latentlab (native CLI) against POT (`ot.bregman.sinkhorn_log`, numpy) and
OTT-JAX (`linear.solve`, jitted, CPU), measured in the same run on the same problem. A
benchmark, not a test: prints one JSON object.

    python3 -m venv /tmp/otvenv
    /tmp/otvenv/bin/pip install pot==0.9.7.post1 ott-jax==0.6.0 jax==0.10.2 jaxlib==0.10.2 numpy scipy
    cargo build --release --bin latentlab
    /tmp/otvenv/bin/python scripts/bench/sinkhorn.py [--latentlab target/release/latentlab]

Problem: n = m = 4,096 points in d = 64 (standard normal, the second cloud shifted), uniform
weights, squared Euclidean cost, ε = 0.05 × the mean cost (absolute, the same for all three),
log domain, exactly 100 iterations (threshold 0, so nobody stops early; each library checks its
error on its own schedule: every 10 iterations for all three). Float32 everywhere (POT keeps
the dtype of its inputs). The engines run in turn, one solve each per round, for `--rounds`
rounds (timing.alternate), and every time and speedup is reported as min / median / max over
the rounds (the speedups per round, each against the peer measured beside it):
- POT: `ot.dist` (the cost matrix) + `sinkhorn_log` on numpy arrays in memory;
- OTT-JAX: `linear.solve`, jitted, compiled before timing (the compiling calls are excluded),
  `block_until_ready`, in two forms: on a `PointCloud` (its default: costs recomputed inside each
  update) and on a `Geometry` holding the cost matrix (computed inside the timed call);
- latentlab: the whole CLI process (start, reading both .npy files, the solve, printing).
The three regularised OT costs are printed: they must agree to ~1e-4 relative.
"""
import argparse
import json
import os
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from timing import alternate, ratio_range, spread
import ot
from ott.geometry import geometry, pointcloud
from ott.solvers import linear

parser = argparse.ArgumentParser()
parser.add_argument("--latentlab", default="target/release/latentlab")
parser.add_argument("--n", type=int, default=4096)
parser.add_argument("--d", type=int, default=64)
parser.add_argument("--iterations", type=int, default=100)
parser.add_argument("--rounds", type=int, default=5)
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.standard_normal((args.n, args.d)).astype(np.float32)
y = (rng.standard_normal((args.n, args.d)) + 0.5).astype(np.float32)
a = np.full(args.n, 1.0 / args.n, dtype=np.float32)
M = ot.dist(x, y)
eps = float(0.05 * M.mean())


def pot():
    cost = ot.dist(x, y)
    log_plan = ot.bregman.sinkhorn_log(a, a, cost, eps, numItermax=args.iterations, stopThr=0.0)
    return float(np.sum(log_plan * cost))


def ott_solve(geom):
    out = linear.solve(geom, threshold=0.0, min_iterations=args.iterations,
                       max_iterations=args.iterations, inner_iterations=10)
    return out.reg_ot_cost


@jax.jit
def ott_point_cloud(xj, yj):
    return ott_solve(pointcloud.PointCloud(xj, yj, epsilon=eps))


@jax.jit
def ott_cost_matrix(xj, yj):
    return ott_solve(geometry.Geometry(cost_matrix=pointcloud.PointCloud(xj, yj).cost_matrix, epsilon=eps))


def ott(solver):
    return lambda: float(jax.block_until_ready(solver(jnp.asarray(x), jnp.asarray(y))))


ott(ott_point_cloud)()  # compile both forms before any timing
ott(ott_cost_matrix)()
with tempfile.TemporaryDirectory() as tmp:
    xf, yf = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xf, x)
    np.save(yf, y)

    def ours():
        out = subprocess.run(
            [args.latentlab, "ot", "sinkhorn", "--x", xf, "--y", yf, "--epsilon", repr(eps),
             "--threshold", "0", "--max-iterations", str(args.iterations), "--backend", "cpu"],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)

    times, values = alternate(args.rounds, {
        "latentlab": ours,
        "pot": pot,
        "ott_jax_point_cloud": ott(ott_point_cloud),
        "ott_jax_cost_matrix": ott(ott_cost_matrix),
    })

# per round, OTT-JAX's faster form of that round
ott_faster = [min(a, b) for a, b in zip(times["ott_jax_point_cloud"], times["ott_jax_cost_matrix"])]
our = values["latentlab"]
print(json.dumps({
    "n": args.n, "d": args.d, "iterations": args.iterations, "epsilon": eps, "rounds": args.rounds,
    "cores": os.cpu_count(), "pot": ot.__version__, "jax": jax.__version__,
    "seconds": {name: spread(t, 3) for name, t in times.items()},
    "speedup_vs_pot": ratio_range(times["pot"], times["latentlab"]),
    "speedup_vs_ott_jax_faster_form": ratio_range(ott_faster, times["latentlab"]),
    "n_iters": our["n_iters"],
    "reg_ot_cost": {"ott_jax_point_cloud": values["ott_jax_point_cloud"],
                    "ott_jax_cost_matrix": values["ott_jax_cost_matrix"], "latentlab": our["reg_ot_cost"]},
    "transport_cost": {"pot": values["pot"], "latentlab": our["transport_cost"]},
}, indent=1))
