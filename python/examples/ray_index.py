"""Embed a folder of pictures (or a JSONL file of texts) with Ray Data, write the embeddings
to Parquet, and export the browser's index.

    python ray_index.py --images /usr/share/tuxpaint/stamps --out stamps.parquet \
        --index stamps.index --workers 2
    python ray_index.py --texts captions.jsonl --out captions.parquet   # {"id", "text"} lines

Ray runs locally (`ray.init()` starts a cluster of this machine's cores); on a cluster, pass
`--address ray://head:10001` (or set RAY_ADDRESS): nothing else changes, each worker loads the
model once per actor and reads the files from the shared path it is given.
"""

import argparse
import json
from pathlib import Path
from typing import Iterable, List, Optional

import latentlab
from latentlab.ray import LatentlabImageEmbedder, LatentlabTextEmbedder

# Each actor runs one picture at a time on one core. Its CPU slot is counted as half, so that
# with as many actors as cores Ray still has slots for the read and write tasks beside them
# (with whole slots, two actors on a two-CPU Ray wait forever for a read task that cannot
# start).
ACTOR_CPUS = 0.5


def embed_images(
    files: List[str],
    out: str,
    *,
    workers: int = 2,
    batch_size: int = 16,
    model: Optional[str] = None,
    models: Optional[str] = None,
) -> None:
    """Pictures → Parquet (`id` = the file's path, `embedding`), `workers` actors."""
    import ray

    ds = ray.data.read_binary_files(files, include_paths=True)
    ds = ds.map_batches(
        LatentlabImageEmbedder,
        fn_constructor_kwargs={"model": model, "models": models},
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        num_cpus=ACTOR_CPUS,
    )
    ds.write_parquet(out)


def embed_texts(
    rows: Iterable[dict],
    out: str,
    *,
    workers: int = 1,
    batch_size: int = 32,
    model: Optional[str] = None,
    models: Optional[str] = None,
) -> None:
    """{"id", "text"} rows → Parquet, `workers` actors."""
    import ray

    ds = ray.data.from_items(list(rows))
    ds = ds.map_batches(
        LatentlabTextEmbedder,
        fn_constructor_kwargs={"model": model, "models": models},
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        num_cpus=ACTOR_CPUS,
    )
    ds.write_parquet(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="a folder of PNG/JPEG files (searched recursively)")
    source.add_argument("--texts", help='a JSONL file of {"id", "text"} objects')
    parser.add_argument("--out", required=True, help="the Parquet folder to write")
    parser.add_argument("--index", help="also write the browser's index bytes here")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", help="the model's name in the manifest (default: the first)")
    parser.add_argument("--models", help="the models folder (default: $LATENTLAB_MODELS, ./models)")
    parser.add_argument("--address", help="a Ray cluster's address (default: a local Ray)")
    args = parser.parse_args()

    import ray

    ray.init(address=args.address)
    try:
        options = dict(workers=args.workers, batch_size=args.batch_size, model=args.model, models=args.models)
        if args.images:
            files = sorted(
                str(p) for p in Path(args.images).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
            )
            embed_images(files, args.out, **options)
        else:
            with open(args.texts, encoding="utf-8") as f:
                embed_texts((json.loads(line) for line in f if line.strip()), args.out, **options)
    finally:
        ray.shutdown()
    if args.index:
        index = latentlab.index_from_parquet(args.out)
        Path(args.index).write_bytes(index.to_bytes())
        print(f"{len(index)} embeddings of {index.model} ({index.dim} dimensions) → {args.index}")


if __name__ == "__main__":
    main()
