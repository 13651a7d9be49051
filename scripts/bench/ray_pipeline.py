"""Images per second through python/examples/ray_index.py's pipeline (read_binary_files →
map_batches with an actor pool → write_parquet) on one local two-CPU Ray, with 1 and 2 actors,
latentlab's `LatentlabImageEmbedder` against an embedder running the same ONNX file with
onnxruntime (one thread per actor for both, as each latentlab actor runs on one core). All four
configurations run in turn within each round, so a change in the machine's load hits them
alike; rates are reported as min–max over the rounds, and latentlab/onnxruntime per round.

    python ray_pipeline.py [ROUNDS] [IMAGES]   # latentlab, Ray Data, pyarrow
                                               # (python/requirements-test.txt)
                                               # + onnxruntime==1.32.0 pillow tokenizers (the peer)

IMAGES (default 96) stamps spread over the sorted list; more pictures per run weigh actor start
and model loading (inside every run's time) less, towards the steady-state rate.

The onnxruntime embedder decodes and letterboxes with Pillow (scripts/bench/encoders.py's
preprocessing), latentlab with its own decoder, so their embeddings agree closely but not to
the bit; the script prints the worst cosine between them as a check that both did the work.
"""

import importlib.util
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
# No usage report to Ray's servers.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
MODELS = os.environ.get("LATENTLAB_MODELS", str(ROOT / "models"))
IMAGE_MODEL = "effl0-minilm-bridge"


class OnnxruntimeImageEmbedder:
    """The peer: LatentlabImageEmbedder's contract (`bytes` + `path` → `id` + `embedding`)
    with onnxruntime on the same ONNX file, one session per actor, one thread."""

    def __init__(self, models: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(models, IMAGE_MODEL, "model.onnx"), options)

    def __call__(self, batch):
        from encoders import letterbox
        from latentlab import embedding_table

        pixels = np.stack([letterbox(io.BytesIO(bytes(b))) for b in batch["bytes"]])
        embeds = self.session.run(["image_embeds"], {"pixel_values": pixels})[0]
        return embedding_table([str(p) for p in batch["path"]], embeds, IMAGE_MODEL)


def run_pipeline(embedder, kwargs, files, out, actors, batch_size, actor_cpus):
    ds = ray.data.read_binary_files(files, include_paths=True)
    ds = ds.map_batches(
        embedder,
        fn_constructor_kwargs=kwargs,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        num_cpus=actor_cpus,
    )
    ds.write_parquet(out)


def main(rounds: int, images: int) -> None:
    import latentlab
    from latentlab.ray import LatentlabImageEmbedder

    spec = importlib.util.spec_from_file_location("ray_index", ROOT / "python" / "examples" / "ray_index.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    every = sorted(str(p) for p in Path("/usr/share/tuxpaint/stamps").rglob("*.png"))
    # spread over the sorted list (96 by default, as the browser's worker-pool benchmark takes)
    images = min(images, len(every))
    files = every[:: len(every) // images][:images]
    ray.init(
        num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent)}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    engines = {
        "latentlab": (LatentlabImageEmbedder, {"models": MODELS}),
        "onnxruntime": (OnnxruntimeImageEmbedder, {"models": MODELS}),
    }
    rates = {(engine, actors): [] for actors in (1, 2) for engine in engines}
    worst_cosine = None
    try:
        for _ in range(rounds):
            for engine, actors in rates:
                cls, kwargs = engines[engine]
                with tempfile.TemporaryDirectory() as out:
                    start = time.monotonic()
                    run_pipeline(cls, kwargs, files, out + "/o", actors, 8, example.ACTOR_CPUS)
                    rates[(engine, actors)].append(len(files) / (time.monotonic() - start))
                    if worst_cosine is None or engine == "onnxruntime":
                        ids, x, _ = latentlab.read_embeddings(out + "/o")
                        if engine == "latentlab":
                            ours = dict(zip(ids, x))
                        else:
                            theirs = x / np.linalg.norm(x, axis=1, keepdims=True)
                            worst_cosine = min(float(ours[i] @ t) for i, t in zip(ids, theirs))
    finally:
        ray.shutdown()
    print(f"{len(files)} stamps, {rounds} rounds, batches of 8, one thread per actor")
    for (engine, actors), r in rates.items():
        print(f"{engine:12} actors={actors}: images/s {min(r):.1f}-{max(r):.1f} (median {np.median(r):.1f}): "
              f"{[round(x, 1) for x in r]}")
    for actors in (1, 2):
        ratio = [a / b for a, b in zip(rates[("latentlab", actors)], rates[("onnxruntime", actors)])]
        print(f"latentlab/onnxruntime images/s, actors={actors}: {min(ratio):.2f}-{max(ratio):.2f} per round")
    print(f"worst cosine between the two engines' embeddings: {worst_cosine:.5f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, int(sys.argv[2]) if len(sys.argv) > 2 else 96)
