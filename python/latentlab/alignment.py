"""Representation alignment between many models: the pieces `latentlab.ray.align_all_pairs`
runs as one Ray task per pair, usable without Ray too.

A model's features come from a `.npy` file (`items × dim`, rows in the same order for every
model) or from a Parquet file/folder in the embedders' layout (`latentlab.parquet`: an `id`
column, so rows are matched by id — Ray's `write_parquet` does not keep the input's order).
"""

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._latentlab import align
from .parquet import read_embeddings

Source = Union[str, "os.PathLike[str]"]

# The columns of `align_all_pairs`' table, in order; one row per (pair, metric).
COLUMNS = ("model_a", "model_b", "metric", "score", "k", "chance", "cca_dim", "n", "unmatched", "seconds", "error")


def load_features(source: Source) -> Tuple[Optional[List[str]], np.ndarray]:
    """(ids or None, `items × dim` float32) from a `.npy` file (no ids: rows are items in a
    shared order) or a Parquet file/folder of the embedders' layout (ids from its `id`
    column; rows that could not be embedded are refused by `read_embeddings`)."""
    path = Path(source)
    if path.suffix == ".npy":
        matrix = np.load(path, allow_pickle=False)
        if matrix.ndim != 2:
            raise ValueError(f"{path}: features must be a 2-D array (items × dim), not shape {matrix.shape}")
        return None, np.ascontiguousarray(matrix, dtype=np.float32)
    if path.suffix == ".parquet" or path.is_dir():
        ids, matrix, _ = read_embeddings(path)
        return ids, matrix
    raise ValueError(f"{path}: expected a .npy file or a Parquet file/folder of embeddings")


def matched_rows(
    a: Tuple[Optional[List[str]], np.ndarray], b: Tuple[Optional[List[str]], np.ndarray]
) -> Tuple[np.ndarray, np.ndarray, int]:
    """The two models' rows for the same items, and how many items only one side had.

    With ids on both sides the items are paired by id (in `a`'s order) and the rest counted as
    unmatched; without ids on either side rows pair by position, so the counts must agree.
    One side with ids and one without cannot be paired safely and is refused."""
    (ids_a, x), (ids_b, y) = a, b
    if ids_a is None and ids_b is None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} items against {len(y)}: .npy features must hold the same items in the same order")
        return x, y, 0
    if ids_a is None or ids_b is None:
        raise ValueError(
            "one side has ids (Parquet) and the other has none (.npy): the rows cannot be paired safely; "
            "give both as Parquet, or both as .npy in the same order"
        )
    for name, ids in (("first", ids_a), ("second", ids_b)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"the {name} model's ids repeat: each item must appear once")
    where = {id_: row for row, id_ in enumerate(ids_b)}
    rows_a = [row for row, id_ in enumerate(ids_a) if id_ in where]
    rows_b = [where[ids_a[row]] for row in rows_a]
    unmatched = (len(ids_a) - len(rows_a)) + (len(ids_b) - len(rows_b))
    return x[rows_a], y[rows_b], unmatched


def align_pair(
    name_a: str,
    source_a: Source,
    name_b: str,
    source_b: Source,
    *,
    metrics: Union[str, Sequence[str]] = "mutual_knn",
    on_error: str = "report",
    **options: Any,
) -> List[Dict[str, Any]]:
    """One row per metric for one pair of models (`COLUMNS`), the features read from their
    sources here (so a Ray task reads its own files). With `on_error="report"` a pair that
    cannot be scored gives rows with a null score and the reason in `error`, so one bad file
    costs only its own pairs; `"raise"` raises naming the pair."""
    if on_error not in ("report", "raise"):
        raise ValueError(f"on_error is {on_error!r}: expected 'report' or 'raise'")
    wanted = [metrics] if isinstance(metrics, str) else list(metrics)
    start = time.monotonic()
    try:
        x, y, unmatched = matched_rows(load_features(source_a), load_features(source_b))
        scores = align(x, y, metrics=wanted, **options)
    except (ValueError, OSError) as e:
        if on_error == "raise":
            raise ValueError(f"{name_a} × {name_b}: {e}") from e
        return [
            dict.fromkeys(COLUMNS) | {"model_a": name_a, "model_b": name_b, "metric": m, "error": str(e)}
            for m in wanted
        ]
    seconds = time.monotonic() - start
    return [
        {
            "model_a": name_a,
            "model_b": name_b,
            "metric": s["metric"],
            "score": s["score"],
            "k": s["k"],
            "chance": s["chance"],
            "cca_dim": s["cca_dim"],
            "n": s["n"],
            "unmatched": unmatched,
            "seconds": seconds,
            "error": None,
        }
        for s in scores
    ]


def pairs_of(names: Sequence[str]) -> List[Tuple[str, str]]:
    """Every unordered pair of distinct models, in the order the names were given."""
    if len(set(names)) != len(names):
        raise ValueError(f"model names repeat: {list(names)}")
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def alignment_table(rows: Sequence[Dict[str, Any]]) -> Any:
    """`align_pair`'s rows as one pyarrow Table with `COLUMNS` (typed, so an all-error column
    still has its type)."""
    from .parquet import _pyarrow

    pa = _pyarrow()
    types = {
        "model_a": pa.string(), "model_b": pa.string(), "metric": pa.string(), "score": pa.float64(),
        "k": pa.int64(), "chance": pa.float64(), "cca_dim": pa.int64(), "n": pa.int64(),
        "unmatched": pa.int64(), "seconds": pa.float64(), "error": pa.string(),
    }
    return pa.table({c: pa.array([r[c] for r in rows], types[c]) for c in COLUMNS})
