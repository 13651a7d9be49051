#!/usr/bin/env python3
"""The image model alone: latentlab's ImageEncoder (the Python package, the native core)
against onnxruntime on the same ONNX file, decoding left out of both, the two engines taking
turns unit by unit. A benchmark, not a test: prints each round (stderr) and one JSON object
(stdout).

    pip install onnxruntime==1.32.0 numpy ./latentlab-*.whl   # the wheel: maturin build --release
    python scripts/bench/image_model.py [--models models] [--threads 1,2] [--rounds 5]

Why beside encoders.py: that one times a photo end to end (decoding, letterbox, the network),
as a user waits for it, and there the engines' decoders differ (the `image` crate against
Pillow) by more than their networks do on large JPEGs. Here latentlab gets 224 × 224 RGB
uint8 arrays (its letterbox a copy, its normalisation inside the timing) and onnxruntime the
normalised float tensor; what is left is the network. A unit is --pictures random pictures;
onnxruntime runs them --ort-batch at a time with `intra_op_num_threads` = the thread count,
latentlab as its encoder does with a list (pictures side by side, one thread each, at two
threads). Ratios are latentlab / onnxruntime within a round.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import alternate, ratio_range, spread  # noqa: E402

import latentlab  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "effl0-minilm-bridge"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=os.path.join(ROOT, "models"))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pictures", type=int, default=64)
    parser.add_argument("--ort-batch", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(args.pictures)]
    # onnxruntime's input: encoders.py's normalisation, channels first
    tensor = np.stack([(p.astype(np.float32) - 127.0) / 128.0 for p in pictures]).transpose(0, 3, 1, 2).copy()
    result = {"model": MODEL, "pictures": args.pictures, "onnxruntime": ort.__version__,
              "onnxruntime_batch": args.ort_batch, "rounds": args.rounds,
              "loadavg_before": [round(x, 2) for x in os.getloadavg()], "ms_per_picture": {}}
    for threads in [int(t) for t in args.threads.split(",")]:
        encoder = latentlab.ImageEncoder(models=args.models, threads=threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(os.path.join(args.models, MODEL, "model.onnx"), options,
                                       providers=["CPUExecutionProvider"])

        def onnxruntime_unit():
            return np.concatenate([session.run(["image_embeds"], {"pixel_values": tensor[at:at + args.ort_batch]})[0]
                                   for at in range(0, len(tensor), args.ort_batch)])

        engines = {"latentlab": lambda: encoder.embed(pictures), "onnxruntime": onnxruntime_unit}
        alternate(1, engines)  # warm-up, not counted
        times, values = alternate(args.rounds, engines)
        ours, theirs = values["latentlab"], values["onnxruntime"]
        theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
        per_picture = {name: [1e3 * t / args.pictures for t in ts] for name, ts in times.items()}
        for r in range(args.rounds):
            print(f"round {r + 1}, {threads} thread(s): latentlab {per_picture['latentlab'][r]:.2f} ms, "
                  f"onnxruntime {per_picture['onnxruntime'][r]:.2f} ms", file=sys.stderr)
        result["ms_per_picture"][f"{threads}_threads"] = {
            **{name: spread(ts, 3) for name, ts in per_picture.items()},
            "ratio": ratio_range(per_picture["latentlab"], per_picture["onnxruntime"]),
            # a check that both ran the same network on the same pictures
            "worst_cosine": round(float(np.min(np.sum(ours * theirs, axis=1))), 6),
        }
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
