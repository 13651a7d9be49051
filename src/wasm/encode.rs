//! Encoders for JavaScript: `TextEmbedder`, `ImageEmbedder`,
//! `fuseQuery`, `evaluateRetrieval`, `parseManifest`.
//!
//! Bytes in, typed arrays out. Fetching, caching and sha256-checking downloads is the JS
//! layer's job (pkg/encoder.js); model code here never sees a URL.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{js_error, optional_string, size_arg, to_js};
use crate::core::matrix::Matrix;
use crate::core::search::{evaluate_retrieval, fuse};
use crate::encode::{FusionModel, ImageEncoder, Manifest, ModelEntry, RgbaImage, TextEncoder};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
/** Straight RGBA pixels, as an ImageData has them. */
export interface ImageInput { width: number; height: number; data: Uint8Array | Uint8ClampedArray; }
export interface RetrievalReport {
  n: number; recall_at_1: number; recall_at_5: number; recall_at_10: number;
  median_rank: number; ranks: number[];
}
/** One model of models/manifest.json (see the README). */
export interface ModelEntry {
  name: string; kind: "text" | "image"; description?: string; file: string;
  sha256?: string; size?: number; licence?: string; source?: string; pairs_with?: string;
  inputs?: { name: string; dtype?: string; shape?: (number | string)[] }[];
  outputs?: { name: string; dtype?: string; shape?: (number | string)[] }[];
  tokenizer?: string; tokenizer_sha256?: string; tokenizer_size?: number; max_tokens?: number;
  pooling?: "mean" | "cls" | "none"; embedding_output: string; embedding_dim: number;
  normalize?: boolean; preprocessing?: Record<string, unknown>;
}
export interface LanguageModelManifestEntry {
  name: string; description: string; file: string; sha256: string; size: number; licence: string; source: string;
}
export interface Manifest { version: number; models: ModelEntry[]; language_models: LanguageModelManifestEntry[]; }
"#;

fn entry_from_js(entry: JsValue) -> Result<ModelEntry, JsError> {
    let entry: ModelEntry = serde_wasm_bindgen::from_value(entry)
        .map_err(|e| JsError::new(&format!("bad model entry: {e}")))?;
    entry.validate().map_err(js_error)?;
    Ok(entry)
}

fn matrix_to_js(m: &Matrix) -> Result<JsValue, JsError> {
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        js_sys::Reflect::set(&out, &JsValue::from_str(k), v)
            .map(|_| ())
            .map_err(|_| JsError::new("could not build the result object"))
    };
    set("rows", &JsValue::from(m.rows as u32))?;
    set("cols", &JsValue::from(m.cols as u32))?;
    set("data", &js_sys::Float32Array::from(&m.data[..]).into())?;
    Ok(out.into())
}

fn matrix_from_js(data: &[f32], rows: usize, cols: usize, what: &str) -> Result<Matrix, JsError> {
    Matrix::new(rows, cols, data.to_vec(), what).map_err(js_error)
}

/// Reads `{width, height, data}` objects (ImageData works as is).
fn images_from_js(images: &js_sys::Array) -> Result<Vec<RgbaImage>, JsError> {
    images
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let get = |key: &str| {
                js_sys::Reflect::get(&value, &JsValue::from_str(key))
                    .map_err(|_| JsError::new(&format!("image {i} has no {key}")))
            };
            let dimension = |key: &str| -> Result<u32, JsError> {
                let v = get(key)?
                    .as_f64()
                    .ok_or_else(|| JsError::new(&format!("image {i}: {key} must be a number")))?;
                if v < 0.0 || v.fract() != 0.0 || v > f64::from(u32::MAX) {
                    return Err(JsError::new(&format!(
                        "image {i}: {key} must be a whole number of pixels, not {v}"
                    )));
                }
                Ok(v as u32)
            };
            let (width, height) = (dimension("width")?, dimension("height")?);
            let data = get("data")?;
            let bytes = if let Some(a) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
                a.to_vec()
            } else if let Some(a) = data.dyn_ref::<js_sys::Uint8Array>() {
                a.to_vec()
            } else {
                return Err(JsError::new(&format!(
                    "image {i}: data must be a Uint8Array or Uint8ClampedArray of RGBA bytes"
                )));
            };
            Ok(RgbaImage {
                width,
                height,
                data: bytes,
            })
        })
        .collect()
}

/// A text encoder (tokenizer + ONNX graph), loaded once and run many times.
#[wasm_bindgen(js_name = TextEmbedder)]
pub struct JsTextEmbedder {
    inner: TextEncoder,
}

#[wasm_bindgen(js_class = TextEmbedder)]
impl JsTextEmbedder {
    /// Checks both files against the entry's sha256 (when given) and the graph against
    /// the entry's input and output names.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "ModelEntry")] entry: JsValue,
        model: &[u8],
        tokenizer: &[u8],
    ) -> Result<JsTextEmbedder, JsError> {
        let entry = entry_from_js(entry)?;
        let inner = TextEncoder::from_bytes(&entry, model, tokenizer).map_err(js_error)?;
        Ok(JsTextEmbedder { inner })
    }

    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.entry().name.clone()
    }

    /// One L2-normalised row per text.
    #[wasm_bindgen(unchecked_return_type = "EmbeddingMatrix")]
    pub fn embed(&self, texts: Vec<String>) -> Result<JsValue, JsError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        matrix_to_js(&self.inner.embed(&refs).map_err(js_error)?)
    }

    /// Token ids per text, special tokens included (for inspection and tests).
    #[wasm_bindgen(js_name = tokenIds, unchecked_return_type = "number[][]")]
    pub fn token_ids(&self, texts: Vec<String>) -> Result<JsValue, JsError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        to_js(&self.inner.token_ids(&refs).map_err(js_error)?)
    }
}

/// An image encoder: RGBA pixels in, embeddings (and other outputs) out.
#[wasm_bindgen(js_name = ImageEmbedder)]
pub struct JsImageEmbedder {
    inner: ImageEncoder,
}

#[wasm_bindgen(js_class = ImageEmbedder)]
impl JsImageEmbedder {
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "ModelEntry")] entry: JsValue,
        model: &[u8],
    ) -> Result<JsImageEmbedder, JsError> {
        let entry = entry_from_js(entry)?;
        let inner = ImageEncoder::from_bytes(&entry, model).map_err(js_error)?;
        Ok(JsImageEmbedder { inner })
    }

    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.entry().name.clone()
    }

    /// One L2-normalised row per image.
    #[wasm_bindgen(unchecked_return_type = "EmbeddingMatrix")]
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput[]")] images: js_sys::Array,
    ) -> Result<JsValue, JsError> {
        let images = images_from_js(&images)?;
        matrix_to_js(&self.inner.embed(&images).map_err(js_error)?)
    }

    /// Several named outputs at once (e.g. `["image_embeds", "features"]`).
    #[wasm_bindgen(js_name = embedOutputs, unchecked_return_type = "EmbeddingMatrix[]")]
    pub fn embed_outputs(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput[]")] images: js_sys::Array,
        outputs: Vec<String>,
    ) -> Result<JsValue, JsError> {
        let images = images_from_js(&images)?;
        let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let result = js_sys::Array::new();
        for m in self
            .inner
            .embed_outputs(&images, &names)
            .map_err(js_error)?
        {
            result.push(&matrix_to_js(&m)?);
        }
        Ok(result.into())
    }
}

/// An image + instruction query: normalize((1 − weight)·image + weight·text).
/// A PNG or JPEG file's bytes as straight RGBA pixels (`{width, height, data}`), by the same
/// decoder as the CLI's: the package uses it under Node, which has no image decoder.
#[wasm_bindgen(js_name = decodeImage, unchecked_return_type = "ImageInput")]
pub fn decode_image_js(
    bytes: &[u8],
    #[wasm_bindgen(unchecked_optional_param_type = "string | null")] label: Option<JsValue>,
) -> Result<JsValue, JsError> {
    let what =
        optional_string(label, "decodeImage: the label")?.unwrap_or_else(|| "image".to_string());
    let image = crate::encode::decode_image(&what, bytes).map_err(js_error)?;
    let out = js_sys::Object::new();
    let set =
        |key: &str, value: JsValue| js_sys::Reflect::set(&out, &JsValue::from_str(key), &value);
    set("width", image.width.into()).map_err(|_| JsError::new("cannot build the result"))?;
    set("height", image.height.into()).map_err(|_| JsError::new("cannot build the result"))?;
    set(
        "data",
        js_sys::Uint8Array::from(image.data.as_slice()).into(),
    )
    .map_err(|_| JsError::new("cannot build the result"))?;
    Ok(out.into())
}

#[wasm_bindgen(js_name = fuseQuery)]
pub fn fuse_query(image: &[f32], text: &[f32], weight: f32) -> Result<Vec<f32>, JsError> {
    fuse(image, text, weight).map_err(js_error)
}

/// A learned (MagicLens-style) image + instruction fusion, plugged in instead of `fuseQuery`
/// when its ONNX is supplied: inputs `image_embeds`, `text_embeds`, output `query_embeds`.
#[wasm_bindgen(js_name = FusionModel)]
pub struct JsFusionModel {
    inner: FusionModel,
}

#[wasm_bindgen(js_class = FusionModel)]
impl JsFusionModel {
    /// `name` labels errors (e.g. the URL it came from).
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(name: &str, model: &[u8]) -> Result<JsFusionModel, JsError> {
        let inner = FusionModel::from_bytes(name, model).map_err(js_error)?;
        Ok(JsFusionModel { inner })
    }

    /// `rows` normalised queries: row i fuses image row i with text row i (`rows × cols`
    /// each, row-major).
    #[wasm_bindgen(unchecked_return_type = "EmbeddingMatrix")]
    pub fn fuse(
        &self,
        image: &[f32],
        text: &[f32],
        rows: f64,
        cols: f64,
    ) -> Result<JsValue, JsError> {
        let (rows, cols) = (size_arg(rows, "rows", 0)?, size_arg(cols, "cols", 1)?);
        let image = matrix_from_js(image, rows, cols, "image embeddings")?;
        let text = matrix_from_js(text, rows, cols, "text embeddings")?;
        matrix_to_js(&self.inner.fuse(&image, &text).map_err(js_error)?)
    }
}

/// Paired retrieval: query row i's correct target is target row i.
#[wasm_bindgen(js_name = evaluateRetrieval, unchecked_return_type = "RetrievalReport")]
pub fn evaluate_retrieval_js(
    queries: &[f32],
    targets: &[f32],
    rows: f64,
    cols: f64,
) -> Result<JsValue, JsError> {
    let (rows, cols) = (size_arg(rows, "rows", 0)?, size_arg(cols, "cols", 1)?);
    let q = matrix_from_js(queries, rows, cols, "queries")?;
    let t = matrix_from_js(targets, rows, cols, "targets")?;
    to_js(&evaluate_retrieval(&q, &t).map_err(js_error)?)
}

/// Reads and validates a manifest (models/manifest.json).
#[wasm_bindgen(js_name = parseManifest, unchecked_return_type = "Manifest")]
pub fn parse_manifest(text: &str) -> Result<JsValue, JsError> {
    to_js(&Manifest::from_json(text).map_err(js_error)?)
}
