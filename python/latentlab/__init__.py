"""latentlab: optimal transport, representation alignment, affine steering, plan graphs and
ONNX encoders on the same Rust core as the latentlab CLI and npm package.

Arrays go in and come out as numpy float32; results are dicts with the CLI's snake_case keys.
Bad input raises ValueError (TypeError for a wrong kind of object) naming the argument; a
model that cannot be loaded or run raises RuntimeError; a missing file raises
FileNotFoundError. Every call releases the GIL while the core works.

`EmbeddingIndex.to_bytes()` is the npm package's index format; `index_from_parquet` builds one
from the Parquet files `latentlab.ray`'s embedders write (pyarrow, imported when first used);
`latentlab.ray.align_all_pairs` scores every pair of models' features as Ray tasks
(`latentlab.alignment` holds the pieces, usable without Ray).
"""

from ._latentlab import (
    EmbeddingIndex,
    ImageEncoder,
    Plan,
    Steering,
    TextEncoder,
    __version__,
    align,
    format_seconds,
    graph_encodings,
    m3g,
    multi_sinkhorn,
    ordering_templates,
    parse_duration,
    parse_plans,
    sinkhorn,
    sinkhorn_cost,
)
from .parquet import embedding_table, index_from_parquet, index_from_table, read_embeddings

__all__ = [
    "EmbeddingIndex",
    "ImageEncoder",
    "Plan",
    "Steering",
    "TextEncoder",
    "__version__",
    "align",
    "embedding_table",
    "format_seconds",
    "graph_encodings",
    "index_from_parquet",
    "index_from_table",
    "m3g",
    "multi_sinkhorn",
    "ordering_templates",
    "parse_duration",
    "parse_plans",
    "read_embeddings",
    "sinkhorn",
    "sinkhorn_cost",
]
