"""latentlab: optimal transport, representation alignment, affine steering, plan graphs and
ONNX encoders on the same Rust core as the latentlab CLI and npm package.

Arrays go in and come out as numpy float32; results are dicts with the CLI's snake_case keys.
Bad input raises ValueError (TypeError for a wrong kind of object) naming the argument; a
model that cannot be loaded or run raises RuntimeError; a missing file raises
FileNotFoundError. Every call releases the GIL while the core works.
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

__all__ = [
    "EmbeddingIndex",
    "ImageEncoder",
    "Plan",
    "Steering",
    "TextEncoder",
    "__version__",
    "align",
    "format_seconds",
    "graph_encodings",
    "m3g",
    "multi_sinkhorn",
    "ordering_templates",
    "parse_duration",
    "parse_plans",
    "sinkhorn",
    "sinkhorn_cost",
]
