"""Embeddings as Arrow/Parquet tables and back into an `EmbeddingIndex`.

The table is what the Ray embedders (`latentlab.ray`) write: an `id` string column and an
`embedding` column of `FixedSizeList<float32>[dim]`, with the model's name and the dimension
in the schema metadata (`latentlab.model`, `latentlab.dim`), so a reader can tell which model
a file holds before loading it. `index_from_parquet` is the export step to the browser: its
index's `to_bytes()` is what `EmbeddingIndex.fromBytes` in the npm package loads.

pyarrow is imported when these functions are first called, so `import latentlab` works
without it (`pip install latentlab[parquet]`).
"""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._latentlab import EmbeddingIndex

MODEL_KEY = b"latentlab.model"
# The Ray embedders' column of per-row failures (null where the row was embedded).
ERROR_COLUMN = "error"
DIM_KEY = b"latentlab.dim"


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the submodule is not loaded by `import pyarrow`)
    except ImportError as e:
        raise ImportError(
            "latentlab's Parquet support needs pyarrow: pip install 'latentlab[parquet]'"
        ) from e
    return pyarrow


def embedding_table(
    ids: Sequence[str], embeddings: np.ndarray, model: str, errors: Optional[Sequence[Optional[str]]] = None
) -> Any:
    """A pyarrow Table: `id` (string) and `embedding` (FixedSizeList<float32>[dim]), with the
    model's name and dimension in the schema metadata. With `errors` (one per id, None where the
    row was embedded) it also has an `error` string column, and the rows with an error have a
    null embedding (their row of `embeddings` is ignored): a failed row is kept and says why."""
    pa = _pyarrow()
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(ids):
        raise ValueError(
            f"embeddings has shape {embeddings.shape}: expected ({len(ids)}, dim), one row per id"
        )
    if errors is not None and len(errors) != len(ids):
        raise ValueError(f"{len(errors)} errors for {len(ids)} ids: give one (or None) per id")
    dim = embeddings.shape[1]
    failed = None if errors is None else pa.array([e is not None for e in errors], pa.bool_())
    column = pa.FixedSizeListArray.from_arrays(
        pa.array(embeddings.reshape(-1), pa.float32()), dim, mask=failed
    )
    columns = {"id": pa.array([str(i) for i in ids], pa.string()), "embedding": column}
    if errors is not None:
        columns[ERROR_COLUMN] = pa.array(list(errors), pa.string())
    table = pa.table(columns)
    return table.replace_schema_metadata({MODEL_KEY: model.encode(), DIM_KEY: str(dim).encode()})


def index_from_parquet(
    path: Any,
    *,
    model: Optional[str] = None,
    storage: str = "f32",
    id_column: str = "id",
    embedding_column: str = "embedding",
    skip_errors: bool = False,
) -> EmbeddingIndex:
    """An `EmbeddingIndex` from a Parquet file or folder of files (e.g. Ray's `write_parquet`
    output) holding `id_column` and a FixedSizeList<float32> `embedding_column`. Its model is
    the schema's `latentlab.model`; `model`, when given, must be that name (so an index is
    never built from another model's vectors by mistake). Rows the embedders could not embed
    (an `error` column) are refused, naming them, unless `skip_errors` leaves them out."""
    pa = _pyarrow()
    table = pa.parquet.read_table(path)
    return index_from_table(
        table, model=model, storage=storage, id_column=id_column, embedding_column=embedding_column,
        skip_errors=skip_errors,
    )


def index_from_table(
    table: Any,
    *,
    model: Optional[str] = None,
    storage: str = "f32",
    id_column: str = "id",
    embedding_column: str = "embedding",
    skip_errors: bool = False,
) -> EmbeddingIndex:
    """`index_from_parquet` for a pyarrow Table already in memory."""
    ids, matrix, found = embeddings_from_table(
        table, model=model, id_column=id_column, embedding_column=embedding_column, skip_errors=skip_errors
    )
    index = EmbeddingIndex(model or found, dim=matrix.shape[1], storage=storage)
    if ids:
        index.add(ids, matrix)
    return index


def read_embeddings(path: Any, **options: Any) -> Tuple[List[str], np.ndarray, str]:
    """(ids, `rows × dim` float32 embeddings, the model's name from the schema metadata, "" if
    none) from a Parquet file or folder in the embedders' layout, checked as
    `index_from_parquet` checks it; `options` as `embeddings_from_table` takes them."""
    return embeddings_from_table(_pyarrow().parquet.read_table(path), **options)


def embeddings_from_table(
    table: Any,
    *,
    model: Optional[str] = None,
    id_column: str = "id",
    embedding_column: str = "embedding",
    skip_errors: bool = False,
) -> Tuple[List[str], np.ndarray, str]:
    """`read_embeddings` for a pyarrow Table already in memory."""
    pa = _pyarrow()
    names = table.schema.names
    if ERROR_COLUMN in names and table.column(ERROR_COLUMN).null_count < len(table):
        errors = table.column(ERROR_COLUMN).to_pylist()
        failed = [i for i, e in enumerate(errors) if e is not None]
        if not skip_errors:
            ids = table.column(id_column).to_pylist() if id_column in names else failed
            shown = "; ".join(f"{ids[i]!r}: {errors[i]}" for i in failed[:3])
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            raise ValueError(
                f"{len(failed)} of {len(table)} rows have no embedding: {shown}{more}; "
                "pass skip_errors=True to build the index from the others"
            )
        keep = pa.array([e is None for e in errors], pa.bool_())
        table = table.filter(keep)
    for column in (id_column, embedding_column):
        if column not in names:
            raise ValueError(f"the table has no column {column!r} (its columns: {names})")
    metadata = table.schema.metadata or {}
    found = metadata.get(MODEL_KEY, b"").decode()
    if model is not None and found and found != model:
        raise ValueError(f"the table holds embeddings of {found!r}, not of {model!r}")
    kind = table.schema.field(embedding_column).type
    if not pa.types.is_fixed_size_list(kind) or not pa.types.is_floating(kind.value_type):
        raise ValueError(
            f"column {embedding_column!r} is {kind}: expected fixed_size_list<float32>[dim]"
        )
    dim = kind.list_size
    if DIM_KEY in metadata and int(metadata[DIM_KEY]) != dim:
        raise ValueError(
            f"column {embedding_column!r} has {dim} dimensions but the schema metadata says "
            f"{metadata[DIM_KEY].decode()}"
        )
    ids = table.column(id_column)
    vectors = table.column(embedding_column).combine_chunks()
    for what, values in ((id_column, ids), (embedding_column, vectors)):
        if values.null_count:
            row = next(i for i, v in enumerate(values) if not v.is_valid)
            raise ValueError(f"column {what!r} is null in row {row}: every row needs an id and an embedding")
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return [str(i) for i in ids.to_pylist()], flat.reshape(len(table), dim), found
