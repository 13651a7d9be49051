"""Images per second through python/examples/ray_index.py's pipeline with 1 and 2 actors,
alternated round by round on one local two-CPU Ray (BENCHMARKS.md): `python ray_pipeline.py
ROUNDS` with latentlab, Ray Data and pyarrow installed (python/requirements-test.txt)."""

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import ray

ROOT = Path(__file__).resolve().parents[2]
# No usage report to Ray's servers.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
MODELS = os.environ.get("LATENTLAB_MODELS", str(ROOT / "models"))


def main(rounds: int) -> None:
    spec = importlib.util.spec_from_file_location("ray_index", ROOT / "python" / "examples" / "ray_index.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    every = sorted(str(p) for p in Path("/usr/share/tuxpaint/stamps").rglob("*.png"))
    # 96 spread over the sorted list, as the browser's worker-pool benchmark takes 96 stamps
    files = every[:: len(every) // 96][:96]
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    rates = {1: [], 2: []}
    try:
        # alternated within each round, so a change in the machine's load hits both sizes
        for _ in range(rounds):
            for actors in rates:
                with tempfile.TemporaryDirectory() as out:
                    start = time.monotonic()
                    example.embed_images(files, out + "/o", workers=actors, batch_size=8, models=MODELS)
                    rates[actors].append(len(files) / (time.monotonic() - start))
    finally:
        ray.shutdown()
    for actors, r in rates.items():
        print(f"actors={actors}: images/s {min(r):.1f}-{max(r):.1f} over {len(r)} rounds: {[round(x, 1) for x in r]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
