//! `EmbeddingIndex` for JavaScript: string ids, JSON metadata, filtered top-k search,
//! compact storage and `toBytes`/`fromBytes` over `core::index`. Saving to IndexedDB is the
//! JS layer's (pkg/index-store.js): bytes cross here, storage never does.

use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::cell::RefCell;
use std::rc::Rc;

use super::{backend_option, forget_webgpu, js_error, set, size_arg, to_js, webgpu, Options};
use crate::core::index::{CpuOnly, EmbeddingIndex, Hit, SearchOptions, Storage};
use crate::gpu::gallery::{index_search_async, GalleryOptions, GpuGallery, GpuSearchError};

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
export interface IndexSearchAsyncOptions extends IndexSearchOptions {
  /** "auto" (default): WebGPU when the browser has an adapter and the search is one it answers
   * exactly (f32 storage, no filter, k <= 64), else the CPU; "gpu": fail rather than fall back;
   * "cpu": never ask for a GPU. */
  backend?: "auto" | "gpu" | "cpu";
}
export interface IndexSearchAsyncResult {
  /** One list per query: exactly what searchBatch gives. */
  hits: IndexHit[][];
  backend: "webgpu" | "cpu";
  /** The WebGPU adapter, when it searched. */
  adapter?: string;
  /** Why it searched on the CPU with backend "auto". */
  fallback?: string;
  /** Queries the CPU scanned again because their GPU candidates sat in a crowd of near-ties. */
  queries_rescanned?: number;
}
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
    /// The f32 vectors on the WebGPU device, uploaded by the first GPU search and again after
    /// the index changes (its revision) or the device is replaced. An Rc, so that a search
    /// holds it across its awaits without a RefCell borrow.
    gallery: RefCell<Option<Rc<GpuGallery>>>,
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
            gallery: RefCell::new(None),
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
        self.hit_lists_to_js(&all)
    }

    /// `searchBatch` with the inner products on WebGPU: the gallery's f32 vectors are uploaded
    /// once (again after a change) and each batch reads back a few candidates per query, which
    /// the CPU scores again with `searchBatch`'s own arithmetic, so `hits` are exactly
    /// `searchBatch`'s. Falls back to the CPU (saying why in `fallback`) where there is no
    /// adapter, the GPU fails, or the search is one the GPU path does not answer exactly (f16
    /// or int8 storage, a filter, k > 64). The index must not be changed while a search runs.
    #[wasm_bindgen(js_name = searchBatchAsync, unchecked_return_type = "IndexSearchAsyncResult")]
    pub async fn search_batch_async(
        &self,
        queries: Vec<f32>,
        #[wasm_bindgen(unchecked_param_type = "IndexSearchAsyncOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let (search, filter, backend) = search_options_with_backend(options)?;
        let mut fallback = None;
        if backend != "cpu" {
            match self.gpu_search(&queries, search, filter.is_some()).await {
                Ok((found, adapter)) => {
                    let out = js_sys::Object::new().into();
                    set(&out, "hits", &self.hit_lists_to_js(&found.hits)?)?;
                    set(&out, "backend", &JsValue::from_str("webgpu"))?;
                    set(&out, "adapter", &JsValue::from_str(&adapter))?;
                    set(
                        &out,
                        "queries_rescanned",
                        &JsValue::from(found.queries_rescanned as f64),
                    )?;
                    return Ok(out);
                }
                Err(GpuFailure::Input(e)) => return Err(e),
                Err(GpuFailure::Fallback(why)) if backend == "gpu" => {
                    return Err(JsError::new(&format!("backend \"gpu\": {why}")))
                }
                Err(GpuFailure::Fallback(why)) => fallback = Some(why),
            }
        }
        let all = self.with_filter(filter.as_ref(), |index, f| {
            index.search_batch(&queries, search, f)
        })?;
        let out = js_sys::Object::new().into();
        set(&out, "hits", &self.hit_lists_to_js(&all)?)?;
        set(&out, "backend", &JsValue::from_str("cpu"))?;
        if let Some(why) = fallback {
            set(&out, "fallback", &JsValue::from_str(&why))?;
        }
        Ok(out)
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
        Ok(JsEmbeddingIndex {
            inner,
            gallery: RefCell::new(None),
        })
    }
}

fn search_options(options: JsValue) -> Result<(SearchOptions, Option<js_sys::Function>), JsError> {
    let options = Options::optional(
        options,
        &["k", "threshold", "filter", "rerank"],
        "search options",
    )?;
    parsed_search_options(&options)
}

/// `searchBatchAsync`'s options: `search`'s and `backend`.
fn search_options_with_backend(
    options: JsValue,
) -> Result<(SearchOptions, Option<js_sys::Function>, String), JsError> {
    let options = Options::optional(
        options,
        &["k", "threshold", "filter", "rerank", "backend"],
        "search options",
    )?;
    let (search, filter) = parsed_search_options(&options)?;
    Ok((search, filter, backend_option(&options)?))
}

fn parsed_search_options(
    options: &Options,
) -> Result<(SearchOptions, Option<js_sys::Function>), JsError> {
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

/// Why a GPU search gave no answer: bad input (an error for the caller, whatever the backend),
/// or a reason to search on the CPU instead.
enum GpuFailure {
    Input(JsError),
    Fallback(String),
}

impl JsEmbeddingIndex {
    /// The GPU search and the adapter's name; the gallery uploaded first when it is missing,
    /// out of date or on a device since replaced.
    async fn gpu_search(
        &self,
        queries: &[f32],
        options: SearchOptions,
        filtered: bool,
    ) -> Result<(crate::gpu::gallery::GpuIndexSearch, String), GpuFailure> {
        // Refused before a device is asked for or the gallery uploaded: the filter is a JS
        // function the CPU path calls item by item.
        if filtered {
            return Err(GpuFailure::Fallback(format!(
                "{}; searched on the CPU",
                CpuOnly::Filter
            )));
        }
        let shared = webgpu().await.map_err(GpuFailure::Fallback)?;
        let fallback = |e: GpuSearchError| match e {
            GpuSearchError::Input(e) => GpuFailure::Input(js_error(e)),
            GpuSearchError::Gpu(e) => {
                forget_webgpu();
                GpuFailure::Fallback(format!("{e}; searched on the CPU"))
            }
            other => GpuFailure::Fallback(format!("{other}; searched on the CPU")),
        };
        for attempt in 0..2 {
            let current = self
                .gallery
                .borrow()
                .clone()
                .filter(|g| g.is_current(&self.inner));
            let gallery = match current {
                Some(g) => g,
                None => {
                    *self.gallery.borrow_mut() = None;
                    let g = GpuGallery::upload_async(
                        &shared.gpu,
                        &self.inner,
                        GalleryOptions::default(),
                    )
                    .await
                    .map(Rc::new)
                    .map_err(fallback)?;
                    *self.gallery.borrow_mut() = Some(g.clone());
                    g
                }
            };
            let found = index_search_async(
                &shared.gpu,
                shared.knn(),
                &gallery,
                &self.inner,
                queries,
                options,
                None,
            )
            .await;
            match found {
                Ok(found) => return Ok((found, shared.gpu.adapter.to_string())),
                // Uploaded to a device that was lost and replaced since: upload once more.
                Err(GpuSearchError::OtherDevice) if attempt == 0 => {
                    *self.gallery.borrow_mut() = None;
                }
                Err(e) => {
                    if matches!(e, GpuSearchError::Gpu(_)) {
                        *self.gallery.borrow_mut() = None;
                    }
                    return Err(fallback(e));
                }
            }
        }
        Err(GpuFailure::Fallback(
            "the GPU device changed twice during one search; searched on the CPU".into(),
        ))
    }

    fn hit_lists_to_js(&self, all: &[Vec<Hit>]) -> Result<JsValue, JsError> {
        let out = js_sys::Array::new();
        for hits in all {
            out.push(&self.hits_to_js(hits)?);
        }
        Ok(out.into())
    }

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
