"""Types of the native module latentlab._latentlab (python/src/*.rs)."""

import os
from typing import Any, List, Literal, Optional, Sequence, Tuple, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

FloatArray = npt.NDArray[np.float32]
# float32 or float64 (rounded to float32, as the CLI reads .npy files).
FloatInput = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
# Integers, booleans, or floats that are whole numbers.
LabelInput = npt.NDArray[Any]
CostFn = Literal["sqeuclidean", "cosine"]
Metric = Literal[
    "mutual_knn",
    "cycle_knn",
    "lcs_knn",
    "edit_distance_knn",
    "cka",
    "unbiased_cka",
    "cknna",
    "svcca",
]
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, npt.NDArray[np.uint8]]

class TextEncoder:
    """A text encoder of a models folder: texts → L2-normalised float32 rows, on `threads`
    threads (default: every core)."""

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        models: Optional[Union[str, "os.PathLike[str]"]] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def threads(self) -> int: ...
    def embed(self, texts: Sequence[str]) -> FloatArray:
        """An (n, dim) float32 array, one row per text."""

class ImageEncoder:
    """An image encoder of a models folder: pictures → L2-normalised float32 rows, on
    `threads` threads (default: every core)."""

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        models: Optional[Union[str, "os.PathLike[str]"]] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def pairs_with(self) -> Optional[str]: ...
    def embed(self, images: Sequence[ImageInput], *, output: Optional[str] = None) -> FloatArray:
        """An (n, dim) float32 array: paths, PNG/JPEG bytes, or (h, w, 3|4) uint8 arrays."""

class SinkhornResult(TypedDict, total=False):
    backend: Literal["cpu"]
    reg_ot_cost: float
    ent_reg_cost: float
    transport_cost: float
    epsilon: float
    n_iters: int
    converged: bool
    errors: FloatArray
    n: int
    m: int
    cost_fn: Optional[CostFn]
    tau_a: float
    tau_b: float
    f: FloatArray
    g: FloatArray
    plan: FloatArray

def sinkhorn(
    x: FloatInput,
    y: FloatInput,
    *,
    epsilon: Optional[float] = None,
    relative_epsilon: Optional[float] = None,
    cost_fn: CostFn = "sqeuclidean",
    a: Optional[FloatInput] = None,
    b: Optional[FloatInput] = None,
    tau_a: float = 1.0,
    tau_b: float = 1.0,
    threshold: float = 1e-3,
    max_iterations: int = 2000,
    return_plan: bool = False,
) -> SinkhornResult: ...
def sinkhorn_cost(
    cost: FloatInput,
    *,
    epsilon: Optional[float] = None,
    relative_epsilon: Optional[float] = None,
    a: Optional[FloatInput] = None,
    b: Optional[FloatInput] = None,
    tau_a: float = 1.0,
    tau_b: float = 1.0,
    threshold: float = 1e-3,
    max_iterations: int = 2000,
    return_plan: bool = False,
) -> SinkhornResult: ...

class MultiSinkhornResult(TypedDict, total=False):
    backend: Literal["cpu"]
    ent_reg_cost: float
    epsilon: float
    n_iters: int
    converged: bool
    errors: FloatArray
    shape: List[int]
    k: int
    sizes: List[int]
    dim: Optional[int]
    cost_fn: CostFn
    potentials: List[FloatArray]
    coupling: FloatArray

def multi_sinkhorn(
    clouds: List[FloatInput],
    *,
    epsilon: Optional[float] = None,
    relative_epsilon: Optional[float] = None,
    cost_fn: CostFn = "sqeuclidean",
    weights: Optional[List[FloatInput]] = None,
    threshold: float = 1e-3,
    max_iterations: int = 2000,
    max_tensor_entries: int = 16777216,
    return_coupling: bool = False,
) -> MultiSinkhornResult: ...

class M3gResult(TypedDict, total=False):
    backend: Literal["cpu"]
    m3g: float
    ground_truth_cost: float
    ent_reg_cost: float
    epsilon: float
    n_iters: int
    converged: bool
    errors: FloatArray
    k: int
    n: int
    cost_fn: CostFn
    potentials: List[FloatArray]
    gradient: List[FloatArray]

def m3g(
    views: List[FloatInput],
    *,
    epsilon: Optional[float] = None,
    relative_epsilon: Optional[float] = None,
    cost_fn: CostFn = "sqeuclidean",
    threshold: float = 1e-3,
    max_iterations: int = 2000,
    max_tensor_entries: int = 16777216,
    with_gradient: bool = False,
) -> M3gResult: ...

class AlignScore(TypedDict):
    metric: Metric
    score: float
    k: Optional[int]
    chance: Optional[float]
    cca_dim: Optional[int]
    n: int
    backend: Literal["cpu"]

def align(
    x: FloatInput,
    y: FloatInput,
    *,
    metrics: Optional[Union[Metric, Literal["all"], Sequence[Metric]]] = None,
    k: int = 10,
    cca_dim: int = 10,
    prepare: bool = True,
    outlier_quantile: float = 0.95,
    exact_quantile: bool = False,
) -> List[AlignScore]:
    """One dict per metric; `metrics` defaults to "mutual_knn"."""

class SteeringApplyResult(TypedDict):
    x: FloatArray
    steered: npt.NDArray[np.bool_]
    n_steered: int

class Steering:
    """A fitted affine steering function x ↦ x·W + b."""

    @classmethod
    def fit(
        cls,
        x: FloatInput,
        z: LabelInput,
        *,
        method: Literal["mean", "mean-cov"] = "mean-cov",
        source_label: int = 1,
        reg: Optional[float] = None,
        relative_reg: Optional[float] = None,
    ) -> "Steering": ...
    @classmethod
    def from_json(cls, text: str) -> "Steering": ...
    def to_json(self) -> str: ...
    def apply(
        self,
        x: FloatInput,
        *,
        apply_to: Literal["predicted", "source", "all"] = "predicted",
        z: Optional[LabelInput] = None,
    ) -> SteeringApplyResult: ...
    @property
    def method(self) -> Literal["mean", "mean-cov"]: ...
    @property
    def dim(self) -> int: ...
    @property
    def source_label(self) -> int: ...
    @property
    def reg(self) -> float: ...
    @property
    def n_source(self) -> int: ...
    @property
    def n_target(self) -> int: ...
    @property
    def weights(self) -> FloatArray:
        """W, (dim, dim) float32."""
    @property
    def bias(self) -> FloatArray:
        """b, (dim,) float32."""

GraphEncoding = Literal["none", "adjacency-list", "adjacency-matrix", "csr", "edge-list"]

class PlanStep(TypedDict):
    id: str
    text: str
    duration: List[float]
    duration_text: str

class StepTiming(TypedDict):
    id: str
    duration: List[float]
    earliest_start: List[float]
    earliest_finish: List[float]
    latest_start: List[float]
    latest_finish: List[float]
    slack: List[float]
    critical: bool

class PlanAnalysis(TypedDict):
    title: str
    optimal_seconds: List[float]
    sequential_seconds: List[float]
    speedup: List[Optional[float]]
    critical_path: List[str]
    optimal_text: str
    sequential_text: str
    steps: List[StepTiming]

class AnswerScore(TypedDict):
    correct: bool
    answer_text: Optional[str]
    answer_seconds: Optional[List[float]]
    expected_seconds: List[float]
    reason: Optional[Literal["no_quoted_time", "unknown_unit", "range_answer", "out_of_range"]]
    message: str

class Plan:
    """A validated plan: steps with [low, high] durations and precedence constraints."""

    @classmethod
    def from_json(cls, text: str) -> "Plan": ...
    @property
    def title(self) -> str: ...
    @property
    def steps(self) -> List[PlanStep]: ...
    @property
    def constraints(self) -> List[Tuple[str, str]]: ...
    def analyze(self) -> PlanAnalysis: ...
    def prompt(
        self,
        *,
        encoding: GraphEncoding = "none",
        bag: bool = False,
        chain_of_thought: bool = False,
        ordering_template: int = 1,
    ) -> str: ...
    def score(self, answer: str) -> AnswerScore: ...
    def to_asynchow(self) -> str: ...
    def to_json(self) -> str: ...

def parse_plans(text: str) -> List[Plan]: ...
def parse_duration(phrase: str) -> Tuple[float, float]: ...
def format_seconds(seconds: float) -> str: ...
def graph_encodings() -> List[GraphEncoding]: ...
def ordering_templates() -> List[str]: ...

IndexStorage = Literal["f32", "f16", "int8"]

class IndexHit(TypedDict):
    id: str
    score: float
    metadata: Any

class EmbeddingIndex:
    """Normalised embeddings with ids and JSON metadata: top-k cosine search, f32/f16/int8
    storage, and the byte format the npm package's EmbeddingIndex.fromBytes reads."""

    def __init__(self, model: str = "", dim: Optional[int] = None, storage: IndexStorage = "f32") -> None: ...
    def add(self, ids: Sequence[str], vectors: FloatInput, metadata: Optional[List[Any]] = None) -> None:
        """One (n, dim) row per id; refused as a whole when anything is wrong."""
    def search(
        self, query: FloatInput, k: int = 10, threshold: Optional[float] = None, rerank: Optional[int] = None
    ) -> List[IndexHit]: ...
    def search_batch(
        self, queries: FloatInput, k: int = 10, threshold: Optional[float] = None, rerank: Optional[int] = None
    ) -> List[List[IndexHit]]: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes, model: Optional[str] = None) -> "EmbeddingIndex": ...
    def ids(self) -> List[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, id: str) -> bool: ...
    @property
    def model(self) -> str: ...
    @property
    def dim(self) -> Optional[int]: ...
    @property
    def storage(self) -> IndexStorage: ...
