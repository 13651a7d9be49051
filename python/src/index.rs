//! `EmbeddingIndex` for Python: string ids, JSON metadata, top-k cosine search, compact
//! storage and `to_bytes`/`from_bytes` over `core::index`, as `src/wasm/index.rs` is for
//! JavaScript. The bytes are the core's format, so an index built here (e.g. from a Ray
//! pipeline's Parquet) loads in the browser's `EmbeddingIndex.fromBytes` unchanged.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyType};
use serde_json::Value;

use latentlab::core::index::{EmbeddingIndex as CoreIndex, Hit, SearchOptions, Storage};

use crate::convert::{json_to_py, matrix, value_error, vector};

/// Normalised embeddings with ids and metadata: top-k cosine search with a score threshold,
/// f32/f16/int8 storage, and bytes to save and load again (in the browser too).
// Not frozen: `add` changes the index in place, as the JS class's does. PyO3 guards it with a
// runtime borrow, so a search from another thread during an `add` (which releases the GIL)
// raises RuntimeError ("Already mutably borrowed") instead of reading a half-added index.
#[pyclass(module = "latentlab")]
pub struct EmbeddingIndex {
    inner: CoreIndex,
}

/// One metadata entry as JSON: None stays absent; anything else goes through Python's own
/// `json.dumps`, so what is accepted is exactly what Python calls JSON (NaN refused, since
/// the browser's JSON.parse would refuse it too).
fn metadata_entry(
    json: &Bound<'_, PyModule>,
    item: &Bound<'_, PyAny>,
    i: usize,
) -> PyResult<Option<Value>> {
    if item.is_none() {
        return Ok(None);
    }
    let kwargs = PyDict::new(item.py());
    kwargs.set_item("allow_nan", false)?;
    let text: String = json
        .call_method("dumps", (item,), Some(&kwargs))
        .and_then(|s| s.extract())
        .map_err(|e| value_error(format!("metadata[{i}] is not JSON: {e}")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| value_error(format!("metadata[{i}] is not JSON: {e}")))
}

fn metadata_list(metadata: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Option<Value>>> {
    let Some(metadata) = metadata.filter(|m| !m.is_none()) else {
        return Ok(Vec::new());
    };
    let list = metadata.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err("metadata must be a list with one JSON value (or None) per id")
    })?;
    let json = metadata.py().import("json")?;
    list.iter()
        .enumerate()
        .map(|(i, item)| metadata_entry(&json, &item, i))
        .collect()
}

#[pymethods]
impl EmbeddingIndex {
    /// An empty index for embeddings of `model` (kept in the bytes and checked by
    /// `from_bytes`); `dim`, when given, is checked from the first add.
    #[new]
    #[pyo3(signature = (model="", dim=None, storage="f32"))]
    fn new(model: &str, dim: Option<usize>, storage: &str) -> PyResult<Self> {
        let storage: Storage = storage
            .parse()
            .map_err(|e: String| value_error(format!("storage: {e}")))?;
        let inner = CoreIndex::new(model, dim, storage).map_err(value_error)?;
        Ok(EmbeddingIndex { inner })
    }

    /// Adds one item per id, `vectors` an (n, dim) float array (normalised on the way in),
    /// `metadata` None or one JSON value (or None) per id. Refused as a whole (nothing
    /// added) when an id is already there, twice or empty, or a vector has the wrong
    /// dimension, zero length or a value that is not finite.
    #[pyo3(signature = (ids, vectors, metadata=None))]
    fn add(
        &mut self,
        py: Python<'_>,
        ids: Vec<String>,
        vectors: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let vectors = matrix(vectors, "vectors")?;
        // Checked here, not left to the core: it sees a flat buffer, and the shape is the
        // better message.
        if vectors.rows != ids.len() {
            return Err(value_error(format!(
                "vectors has {} rows but ids has {} entries: give one row per id",
                vectors.rows,
                ids.len()
            )));
        }
        let metadata = metadata_list(metadata)?;
        let inner = &mut self.inner;
        py.detach(|| inner.add(&ids, &vectors.data, metadata))
            .map_err(value_error)
    }

    /// The `k` items most similar to `query` (a 1-D float array), best first, each a dict
    /// `{"id", "score", "metadata"}`; with `threshold`, only those scoring at least that.
    /// `rerank` (int8 storage only): how many first-pass candidates are scored again.
    #[pyo3(signature = (query, k=10, threshold=None, rerank=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        k: usize,
        threshold: Option<f32>,
        rerank: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let query = vector(query, "query")?;
        let options = SearchOptions {
            k,
            threshold,
            rerank,
        };
        let hits = py
            .detach(|| self.inner.search(&query, options, None))
            .map_err(value_error)?;
        self.hits_out(py, &hits)
    }

    /// `search` for each row of `queries` (an (n, dim) float array): one list per query.
    #[pyo3(signature = (queries, k=10, threshold=None, rerank=None))]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        threshold: Option<f32>,
        rerank: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let queries = matrix(queries, "queries")?;
        if let Some(dim) = self.inner.dim() {
            if queries.cols != dim {
                return Err(value_error(format!(
                    "queries have {} dimensions, but the index has {dim}",
                    queries.cols
                )));
            }
        }
        let options = SearchOptions {
            k,
            threshold,
            rerank,
        };
        let all = py
            .detach(|| self.inner.search_batch(&queries.data, options, None))
            .map_err(value_error)?;
        PyList::new(
            py,
            all.iter()
                .map(|hits| self.hits_out(py, hits))
                .collect::<PyResult<Vec<_>>>()?,
        )
    }

    /// The index in latentlab's versioned byte format (model, dimension, storage, ids,
    /// metadata, vectors, sha256): what the browser's `EmbeddingIndex.fromBytes` reads.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.inner.to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// An index from `to_bytes` (here or in the browser); `model`, when given, must be the
    /// model the bytes name.
    #[classmethod]
    #[pyo3(signature = (data, model=None))]
    fn from_bytes(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        data: &[u8],
        model: Option<String>,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| CoreIndex::from_bytes(data, model.as_deref()))
            .map_err(value_error)?;
        Ok(EmbeddingIndex { inner })
    }

    /// Every id, in the order the items were added.
    fn ids(&self) -> Vec<String> {
        self.inner.ids().to_vec()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, id: &str) -> bool {
        self.inner.contains(id)
    }

    #[getter]
    fn model(&self) -> &str {
        self.inner.model()
    }

    /// None until the first add when no `dim` was given.
    #[getter]
    fn dim(&self) -> Option<usize> {
        self.inner.dim()
    }

    #[getter]
    fn storage(&self) -> String {
        self.inner.storage().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "EmbeddingIndex(model={:?}, dim={}, storage={:?}, len={})",
            self.inner.model(),
            self.inner
                .dim()
                .map_or_else(|| "None".to_string(), |d| d.to_string()),
            self.inner.storage().to_string(),
            self.inner.len()
        )
    }
}

impl EmbeddingIndex {
    fn hits_out<'py>(&self, py: Python<'py>, hits: &[Hit]) -> PyResult<Bound<'py, PyList>> {
        let items = hits
            .iter()
            .map(|hit| {
                let item = PyDict::new(py);
                item.set_item("id", &hit.id)?;
                item.set_item("score", f64::from(hit.score))?;
                let metadata = match self.inner.metadata(hit.row) {
                    Some(value) => json_to_py(py, value)?,
                    None => py.None().into_bound(py),
                };
                item.set_item("metadata", metadata)?;
                Ok(item)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }
}
