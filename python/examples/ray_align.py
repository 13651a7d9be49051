"""Representation alignment at scale with Ray: every pair of models' features scored as one Ray
task, gathered into one table — the Platonic Representation Hypothesis paper's pairwise figure.

    python ray_align.py --out alignment.parquet                       # the bundled models
    python ray_align.py --features a=a.npy b=b.npy c=run/c.parquet    # your own feature files

Without --features it builds five feature files from the bundled models on the captioned Tux
Paint stamps (the retrieval evaluation's data): the image model's three outputs (its 1280-d
EfficientNet features, its 1,000 ImageNet logits, its 384-d embedding bridged into MiniLM's
space) and the captions through MiniLM and int8 MiniLM. Five "models" of one small machine, not
the paper's 78 — what it shows is the pipeline, and which of these representations agree.

Ray runs locally (`ray.init()`); on a cluster pass `--address ray://head:10001` (or set
RAY_ADDRESS) and feature paths every worker can read: nothing else changes. The driver never
loads the features; each task reads its own two files.
"""

import argparse
import os
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

STAMPS = "/usr/share/tuxpaint/stamps"


def captioned_stamps(folder: str, limit: int) -> List[Tuple[str, str]]:
    """(picture, first line of the .txt beside it), as `latentlab eval retrieval` picks them
    (cartoons and symbols left out)."""
    found = []
    for path in sorted(Path(folder).rglob("*")):
        text = str(path)
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg") or "cartoon" in text or "/symbols/" in text:
            continue
        caption = path.with_suffix(".txt")
        if not caption.is_file():
            continue
        first = caption.read_bytes().decode("utf-8", "replace").splitlines()
        if first and first[0].strip():
            found.append((text, first[0].strip()))
    return found[:limit] if limit else found


def bundled_features(folder: str, out: Path, limit: int, models: str = None) -> Dict[str, Path]:
    """Five models' features of the same stamps, rows in one order, as .npy files in `out`."""
    import latentlab

    stamps = captioned_stamps(folder, limit)
    if not stamps:
        raise SystemExit(f"no captioned stamps under {folder} (Debian's tuxpaint-stamps-default)")
    pictures = [p for p, _ in stamps]
    captions = [c for _, c in stamps]
    image = latentlab.ImageEncoder(models=models)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for output in ("features", "logits", None):
        name = f"{image.name}:{output or 'embedding'}"
        files[name] = out / f"{name.replace(':', '.')}.npy"
        np.save(files[name], image.embed(pictures, output=output))
    for text_model in ("minilm-l6-v2", "minilm-l6-v2-int8"):
        name = f"{text_model}:captions"
        files[name] = out / f"{name.replace(':', '.')}.npy"
        np.save(files[name], latentlab.TextEncoder(text_model, models=models).embed(captions))
    print(f"{len(stamps)} captioned stamps, {len(files)} feature files in {out}")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", nargs="*", metavar="NAME=PATH",
                        help="feature files (.npy, rows in one order; or embedders' Parquet, matched by id)")
    parser.add_argument("--stamps", default=STAMPS, help="without --features: the stamps folder")
    parser.add_argument("--limit", type=int, default=0, help="without --features: at most this many stamps")
    parser.add_argument("--work", default="ray-align-features", help="without --features: where to write them")
    parser.add_argument("--models", help="the models folder (default: bundled / $LATENTLAB_MODELS)")
    parser.add_argument("--metrics", nargs="+", default=["mutual_knn", "cka"])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", help="write the table here (Parquet)")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="a Ray cluster (default: local)")
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import ray

    from latentlab.ray import align_all_pairs

    if args.features:
        features = dict(item.split("=", 1) for item in args.features)
    else:
        features = bundled_features(args.stamps, Path(args.work), args.limit, args.models)
    ray.init(address=args.address, include_dashboard=False)
    try:
        table = align_all_pairs(features, metrics=args.metrics, k=args.k)
    finally:
        ray.shutdown()
    if args.out:
        pq.write_table(table, args.out)
    names = list(features)
    width = max(len(n) for n in names)
    for metric in args.metrics:
        score = {(r["model_a"], r["model_b"]): r for r in table.to_pylist() if r["metric"] == metric}
        print(f"\n{metric}" + (f" (k = {args.k})" if "knn" in metric else ""))
        print(" " * width + "".join(f" {i:>7}" for i in range(len(names))))
        for i, a in enumerate(names):
            cells = []
            for j, b in enumerate(names):
                r = score.get((a, b)) or score.get((b, a))
                cells.append("      -" if i == j else ("  error" if r["score"] is None else f" {r['score']:7.3f}"))
            print(f"{a:>{width}}" + "".join(cells) + f"   ({i})")
    for r in table.to_pylist():
        if r["error"]:
            print(f"{r['model_a']} × {r['model_b']} ({r['metric']}): {r['error']}")


if __name__ == "__main__":
    main()
