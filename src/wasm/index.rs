//! `EmbeddingIndex` for JavaScript: string ids, JSON metadata, filtered top-k search,
//! compact storage and `toBytes`/`fromBytes` over `core::index`. Saving to IndexedDB is the
//! JS layer's (pkg/index-store.js): bytes cross here, storage never does.

use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{js_error, set, size_arg, to_js, Options};
use crate::core::index::{EmbeddingIndex, Hit, SearchOptions, Storage};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export type IndexStorage = "f32" | "f16" | "int8";
export interface EmbeddingIndexOptions {
  /** The model the embeddings come from; kept in the bytes and checked by `fromBytes`. */
  model?: string;
  /** Checked from the first add; otherwise the first add sets it. */
  dim?: number;
  /** How vectors are kept: f32 (4 bytes a value), f16 (2) or int8 (1, plus 4 a vector). */
  storage?: IndexStorage;
}
export interface IndexSearchOptions {
  /** How many hits at most (default 10). */
  k?: number;
  /** Only hits with at least this cosine similarity. */
  threshold?: number;
  /** Called with each candidate's id and metadata, best first, until k pass. */
  filter?: (id: string, metadata: unknown) => boolean;
  /** int8 only: how many first-pass candidates are re-scored with the float query
   * (default max(4k, k + 32)). */
  rerank?: number;
}
export interface IndexHit { id: string; score: number; metadata: unknown; }
export interface IndexItem { id: string; vector: Float32Array; metadata: unknown; }
"#;

fn ids_from_js(ids: JsValue, what: &str) -> Result<Vec<String>, JsError> {
    serde_wasm_bindgen::from_value(ids)
        .map_err(|_| JsError::new(&format!("{what} must be an array of strings")))
}

fn metadata_from_js(metadata: JsValue) -> Result<Vec<Option<Value>>, JsError> {
    if metadata.is_undefined() || metadata.is_null() {
        return Ok(Vec::new());
    }
    if !js_sys::Array::is_array(&metadata) {
        return Err(JsError::new(
            "metadata must be an array with one JSON value (or null) per id",
        ));
    }
    serde_wasm_bindgen::from_value::<Vec<Option<Value>>>(metadata)
        .map(|m| m.into_iter().map(|v| v.filter(|v| !v.is_null())).collect())
        .map_err(|e| JsError::new(&format!("metadata must hold JSON values: {e}")))
}

/// The ids and metadata of an `add` or `upsert` call.
fn batch_from_js(
    ids: JsValue,
    metadata: JsValue,
) -> Result<(Vec<String>, Vec<Option<Value>>), JsError> {
    Ok((ids_from_js(ids, "ids")?, metadata_from_js(metadata)?))
}

fn metadata_to_js(value: Option<&Value>) -> Result<JsValue, JsError> {
    value.map_or(Ok(JsValue::NULL), to_js)
}

/// A JS exception's message (an Error's `message`, else its string form).
fn exception_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "it threw".into())
}

/// Normalised embeddings with ids and metadata: top-k cosine search with a filter and a
/// score threshold, f32/f16/int8 storage, and bytes to save and load again.
#[wasm_bindgen(js_name = EmbeddingIndex)]
pub struct JsEmbeddingIndex {
    inner: EmbeddingIndex,
}

#[wasm_bindgen(js_class = EmbeddingIndex)]
impl JsEmbeddingIndex {
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "EmbeddingIndexOptions")] options: JsValue,
    ) -> Result<JsEmbeddingIndex, JsError> {
        let options = Options::optional(options, &["model", "dim", "storage"], "index options")?;
        let model: String = options.get("model")?.unwrap_or_default();
        let dim = options
            .get::<f64>("dim")?
            .map(|d| size_arg(d, "options.dim", 1))
            .transpose()?;
        let storage = match options.get::<String>("storage")? {
            None => Storage::F32,
            Some(s) => s
                .parse()
                .map_err(|e: String| JsError::new(&format!("options.storage: {e}")))?,
        };
        Ok(JsEmbeddingIndex {
            inner: EmbeddingIndex::new(&model, dim, storage).map_err(js_error)?,
        })
    }

    /// Adds one item per id: `vectors` holds their vectors one after another. Refused as a
    /// whole (nothing added) when an id is already there, twice or empty, or a vector is
    /// of the wrong dimension, zero or not finite.
    pub fn add(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] ids: JsValue,
        vectors: &[f32],
        #[wasm_bindgen(unchecked_param_type = "unknown[] | undefined")] metadata: JsValue,
    ) -> Result<(), JsError> {
        let (ids, metadata) = batch_from_js(ids, metadata)?;
        self.inner.add(&ids, vectors, metadata).map_err(js_error)
    }

    /// `add`, replacing the vector and metadata of ids already there (they keep their place).
    pub fn upsert(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] ids: JsValue,
        vectors: &[f32],
        #[wasm_bindgen(unchecked_param_type = "unknown[] | undefined")] metadata: JsValue,
    ) -> Result<(), JsError> {
        let (ids, metadata) = batch_from_js(ids, metadata)?;
        self.inner.upsert(&ids, vectors, metadata).map_err(js_error)
    }

    /// Removes these ids; returns how many were there.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] ids: JsValue,
    ) -> Result<usize, JsError> {
        Ok(self.inner.remove(&ids_from_js(ids, "ids")?))
    }

    pub fn has(&self, id: &str) -> bool {
        self.inner.contains(id)
    }

    /// The stored (normalised) vector and metadata of `id`, or undefined.
    #[wasm_bindgen(unchecked_return_type = "IndexItem | undefined")]
    pub fn get(&self, id: &str) -> Result<JsValue, JsError> {
        let Some((vector, metadata)) = self.inner.get(id) else {
            return Ok(JsValue::UNDEFINED);
        };
        let out: JsValue = js_sys::Object::new().into();
        set(&out, "id", &JsValue::from_str(id))?;
        set(
            &out,
            "vector",
            &js_sys::Float32Array::from(&vector[..]).into(),
        )?;
        set(&out, "metadata", &metadata_to_js(metadata)?)?;
        Ok(out)
    }

    /// Every id, in the order the items were added.
    #[wasm_bindgen(unchecked_return_type = "string[]")]
    pub fn ids(&self) -> JsValue {
        self.inner
            .ids()
            .iter()
            .map(|id| JsValue::from_str(id))
            .collect::<js_sys::Array>()
            .into()
    }

    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.len()
    }

    #[wasm_bindgen(getter)]
    pub fn model(&self) -> String {
        self.inner.model().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> Option<usize> {
        self.inner.dim()
    }

    #[wasm_bindgen(getter, unchecked_return_type = "IndexStorage")]
    pub fn storage(&self) -> String {
        self.inner.storage().to_string()
    }

    /// Bytes one vector takes in memory (undefined until the dimension is known).
    #[wasm_bindgen(getter, js_name = bytesPerVector)]
    pub fn bytes_per_vector(&self) -> Option<usize> {
        self.inner.bytes_per_vector()
    }

    /// The items most similar to `query`, best first: `{id, score, metadata}`.
    #[wasm_bindgen(unchecked_return_type = "IndexHit[]")]
    pub fn search(
        &self,
        query: &[f32],
        #[wasm_bindgen(unchecked_param_type = "IndexSearchOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let (options, filter) = search_options(options)?;
        let hits = self.with_filter(filter.as_ref(), |index, f| index.search(query, options, f))?;
        self.hits_to_js(&hits)
    }

    /// `search` for each of several queries (one after another in `queries`).
    #[wasm_bindgen(js_name = searchBatch, unchecked_return_type = "IndexHit[][]")]
    pub fn search_batch(
        &self,
        queries: &[f32],
        #[wasm_bindgen(unchecked_param_type = "IndexSearchOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let (options, filter) = search_options(options)?;
        let all = self.with_filter(filter.as_ref(), |index, f| {
            index.search_batch(queries, options, f)
        })?;
        let out = js_sys::Array::new();
        for hits in &all {
            out.push(&self.hits_to_js(hits)?);
        }
        Ok(out.into())
    }

    /// The index in latentlab's versioned byte format (model, dimension, storage, ids,
    /// metadata, vectors, sha256).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// An index from `toBytes`; `options.model`, when given, must be the model it names.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        bytes: &[u8],
        #[wasm_bindgen(unchecked_param_type = "{ model?: string }")] options: JsValue,
    ) -> Result<JsEmbeddingIndex, JsError> {
        let options = Options::optional(options, &["model"], "load options")?;
        let model: Option<String> = options.get("model")?;
        let inner = EmbeddingIndex::from_bytes(bytes, model.as_deref()).map_err(js_error)?;
        Ok(JsEmbeddingIndex { inner })
    }
}

fn search_options(options: JsValue) -> Result<(SearchOptions, Option<js_sys::Function>), JsError> {
    let options = Options::optional(
        options,
        &["k", "threshold", "filter", "rerank"],
        "search options",
    )?;
    let k = match options.get::<f64>("k")? {
        Some(k) => size_arg(k, "options.k", 1)?,
        None => 10,
    };
    let rerank = options
        .get::<f64>("rerank")?
        .map(|r| size_arg(r, "options.rerank", 1))
        .transpose()?;
    let threshold = options.get::<f64>("threshold")?.map(|t| t as f32);
    let filter = options.raw("filter")?;
    let filter = if filter.is_undefined() || filter.is_null() {
        None
    } else {
        Some(filter.dyn_into::<js_sys::Function>().map_err(|_| {
            JsError::new("options.filter must be a function (id, metadata) => boolean")
        })?)
    };
    Ok((
        SearchOptions {
            k,
            threshold,
            rerank,
        },
        filter,
    ))
}

impl JsEmbeddingIndex {
    /// Runs `search` with the JS filter (if any) as the core's filter.
    fn with_filter<T>(
        &self,
        filter: Option<&js_sys::Function>,
        search: impl FnOnce(
            &EmbeddingIndex,
            Option<&mut crate::core::index::Filter>,
        ) -> Result<T, crate::core::index::IndexError>,
    ) -> Result<T, JsError> {
        match filter {
            None => search(&self.inner, None).map_err(js_error),
            Some(f) => {
                let mut call = |id: &str, metadata: Option<&Value>| {
                    let metadata = metadata_to_js(metadata)
                        .map_err(|_| "could not convert the metadata".to_string())?;
                    f.call2(&JsValue::NULL, &JsValue::from_str(id), &metadata)
                        .map(|keep| keep.is_truthy())
                        .map_err(|e| exception_message(&e))
                };
                search(&self.inner, Some(&mut call)).map_err(js_error)
            }
        }
    }

    fn hits_to_js(&self, hits: &[Hit]) -> Result<JsValue, JsError> {
        let out = js_sys::Array::new();
        for hit in hits {
            let item: JsValue = js_sys::Object::new().into();
            set(&item, "id", &JsValue::from_str(&hit.id))?;
            set(&item, "score", &JsValue::from(hit.score as f64))?;
            set(
                &item,
                "metadata",
                &metadata_to_js(self.inner.metadata(hit.row))?,
            )?;
            out.push(&item);
        }
        Ok(out.into())
    }
}
