"""Ray Data embedders: callable classes for `Dataset.map_batches` that load a model once per
actor and turn each batch into `id` + `embedding` columns (`latentlab.parquet`'s table, with
the model's name and dimension in the schema metadata), ready for `write_parquet`.

    ds = ray.data.read_binary_files(folder, include_paths=True)
    ds = ds.map_batches(LatentlabImageEmbedder, compute=ray.data.ActorPoolStrategy(size=2),
                        batch_size=16, num_cpus=0.5)
    ds.write_parquet(out)
    latentlab.index_from_parquet(out).to_bytes()   # what the browser's fromBytes loads

`align_all_pairs` scores every pair of models' feature files as one Ray task each and gathers
the scores into one table (representation alignment at scale, `latentlab.alignment`).

The classes never import ray themselves (Ray imports and calls them), so this module loads
without it; they need pyarrow for the tables they return.
"""

from typing import Any, Dict, List, Optional

import numpy as np

from ._latentlab import ImageEncoder, TextEncoder
from .parquet import embedding_table

Batch = Dict[str, Any]


def _column(batch: Batch, name: str) -> List[Any]:
    """One column of a batch in any of Ray's batch formats (numpy dict, pandas, pyarrow)."""
    names = list(batch.keys()) if hasattr(batch, "keys") else list(batch.column_names)
    if name not in names:
        raise ValueError(f"the batch has no column {name!r} (its columns: {names})")
    values = batch[name]
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


class LatentlabImageEmbedder:
    """Pictures → embeddings, for `map_batches`. Reads `image_column`: encoded PNG/JPEG bytes
    (`read_binary_files`' "bytes", decoded by latentlab's own decoder, so the numbers equal
    `ImageEncoder.embed` of the same files) or (h, w, 3|4) uint8 arrays (`read_images`'
    "image", decoded by Ray's Pillow); default: "bytes" if present, else "image". Ids come
    from `id_column` ("path" with `include_paths=True`). A picture that cannot be decoded is
    reported in its row (`on_error="report"`, the default: a null embedding and the reason in
    the `error` column, the rest of the batch kept) or stops the pipeline naming its id
    (`on_error="raise"`)."""

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        models: Optional[str] = None,
        id_column: str = "path",
        image_column: Optional[str] = None,
        on_error: str = "report",
        threads: int = 1,
    ):
        if on_error not in ("report", "raise"):
            raise ValueError(f"on_error is {on_error!r}: expected 'report' or 'raise'")
        # Once per actor: Ray keeps the instance for every batch it is given. One thread by
        # default: Ray runs actors side by side, and actors each on every core would fight
        # over them; give `threads` the actor's num_cpus when actors are fewer than cores.
        self.encoder = ImageEncoder(model, models=models, threads=threads)
        self.id_column = id_column
        self.image_column = image_column
        self.on_error = on_error

    def __call__(self, batch: Batch) -> Any:
        column = self.image_column
        if column is None:
            has = set(batch.keys()) if hasattr(batch, "keys") else set(batch.column_names)
            column = "bytes" if "bytes" in has else "image"
        ids = [str(i) for i in _column(batch, self.id_column)]
        pictures = [
            bytes(p) if isinstance(p, (bytes, bytearray, memoryview)) else np.asarray(p, np.uint8)
            for p in _column(batch, column)
        ]
        rows, errors = [], []
        # One call per picture (the core embeds one at a time anyway), so that an error
        # names the row's id rather than its place in a batch the user never sees, and a
        # picture that cannot be decoded costs only its own row.
        for id_, picture in zip(ids, pictures):
            try:
                rows.append(self.encoder.embed([picture]))
                errors.append(None)
            except ValueError as e:
                if self.on_error == "raise":
                    raise ValueError(f"{self.id_column} {id_!r}: {e}") from e
                rows.append(np.zeros((1, self.encoder.dim), np.float32))
                errors.append(str(e))
        embeddings = np.concatenate(rows) if rows else np.zeros((0, self.encoder.dim), np.float32)
        return embedding_table(ids, embeddings, self.encoder.name, errors)


class LatentlabTextEmbedder:
    """Texts → embeddings, for `map_batches`: `text_column` (default "text") embedded as
    `TextEncoder.embed` does, ids from `id_column` (default "id"). Strings, or bytes holding
    UTF-8 (a Parquet `binary` column). A row that is not text — bytes that are not UTF-8, a
    null, a number — is reported in its row as the image embedder does (`on_error="report"`,
    the default: a null embedding and the reason in `error`, the rest kept) or stops the
    pipeline naming its id (`on_error="raise"`)."""

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        models: Optional[str] = None,
        id_column: str = "id",
        text_column: str = "text",
        on_error: str = "report",
        threads: int = 1,
    ):
        if on_error not in ("report", "raise"):
            raise ValueError(f"on_error is {on_error!r}: expected 'report' or 'raise'")
        # One thread by default, as LatentlabImageEmbedder.
        self.encoder = TextEncoder(model, models=models, threads=threads)
        self.id_column = id_column
        self.text_column = text_column
        self.on_error = on_error

    def _text(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{self.text_column} is not valid UTF-8 (byte 0x{bytes(value)[e.start]:02x} at offset {e.start})"
                ) from None
        raise ValueError(f"{self.text_column} is {type(value).__name__}, not a string")

    def __call__(self, batch: Batch) -> Any:
        ids = [str(i) for i in _column(batch, self.id_column)]
        texts, errors = [], []
        for id_, value in zip(ids, _column(batch, self.text_column)):
            try:
                texts.append(self._text(value))
                errors.append(None)
            except ValueError as e:
                if self.on_error == "raise":
                    raise ValueError(f"{self.id_column} {id_!r}: {e}") from e
                texts.append("")
                errors.append(str(e))
        # The batch's good texts in one call (texts are batched by the encoder); the failed
        # rows' places get zeros that embedding_table masks as null.
        good = [t for t, e in zip(texts, errors) if e is None]
        embeddings = np.zeros((len(ids), self.encoder.dim), np.float32)
        if good:
            embeddings[[i for i, e in enumerate(errors) if e is None]] = self.encoder.embed(good)
        # Always with the `error` column, as the image embedder: every block of a dataset then
        # has one schema, whichever blocks happened to hold a bad row.
        return embedding_table(ids, embeddings, self.encoder.name, errors)


def align_all_pairs(
    features: Dict[str, Any],
    *,
    metrics: Any = "mutual_knn",
    num_cpus: float = 1,
    on_error: str = "report",
    **options: Any,
) -> Any:
    """Representation alignment at scale: `features` maps each model's name to its features
    (a `.npy` file, rows in one shared item order, or a Parquet file/folder of the embedders'
    layout, rows matched by id); one Ray task per unordered pair of models reads its two
    sources and scores them with `latentlab.align` (`metrics`, and `k`, `cca_dim`, `prepare`,
    … as `align` takes them). Returns one pyarrow Table, a row per (pair, metric):
    `latentlab.alignment.COLUMNS` — the Platonic Representation paper's pairwise figure.

    The sources are paths every worker can read (a shared file system or object store on a
    cluster): the driver never loads the features, so the table is built however many and
    large they are. A pair that cannot be scored (different items, a bad file) gives rows
    with the reason in `error` and the others are kept (`on_error="raise"` stops instead).
    Ray must be initialised (`ray.init(...)`; on a cluster only its address changes)."""
    import ray

    from .alignment import align_pair, alignment_table, pairs_of

    score_pair = ray.remote(num_cpus=num_cpus)(align_pair)
    pending = [
        score_pair.remote(a, str(features[a]), b, str(features[b]), metrics=metrics, on_error=on_error, **options)
        for a, b in pairs_of(list(features))
    ]
    try:
        done = ray.get(pending)
    except ray.exceptions.RayTaskError as e:
        # on_error="raise": the pair's own ValueError ("a × b: …"), not Ray's wrapper
        # with the worker's traceback in its message.
        raise (e.cause if isinstance(e.cause, ValueError) else e) from None
    return alignment_table([row for rows in done for row in rows])
