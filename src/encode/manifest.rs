//! `models/manifest.json`: what each model is, where its files are, and how to feed it.

use serde::{Deserialize, Serialize};

use super::EncodeError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub models: Vec<ModelEntry>,
    /// Generative models (GGUF files run by `crate::lm`), kept apart from the encoders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language_models: Vec<LanguageModelEntry>,
}

/// A GGUF language model of the manifest: where it is and its digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LanguageModelEntry {
    pub name: String,
    pub description: String,
    /// Relative to the manifest's folder.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub licence: String,
    pub source: String,
}

impl Manifest {
    pub fn from_json(text: &str) -> Result<Manifest, EncodeError> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| EncodeError::Manifest(e.to_string()))?;
        for entry in &manifest.models {
            entry.validate()?;
        }
        Ok(manifest)
    }

    pub fn get(&self, name: &str) -> Result<&ModelEntry, EncodeError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            EncodeError::Manifest(format!(
                "no model named {name:?} (the manifest has: {})",
                self.models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Text,
    Image,
}

/// How token states become one sentence vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean of the token states over the attention mask (sentence-transformers).
    #[default]
    Mean,
    /// The first token's state.
    Cls,
    /// The output is already one vector per input (CLIP's `text_embeds`).
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    #[serde(default)]
    pub dtype: String,
    #[serde(default)]
    pub shape: Vec<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Scale the longer side to `size`, pad the rest with `background` (keeps everything).
    Letterbox,
    /// Scale the shorter side to `size`, then cut the centre square (CLIP).
    CenterCrop,
    /// Scale both sides to `size`, changing the aspect ratio.
    Stretch,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    #[default]
    Bilinear,
    Bicubic,
}

/// From RGBA pixels to the model's input tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// The square side the model takes.
    pub size: u32,
    pub resize: ResizeMode,
    /// Transparent pixels and letterbox bars are this colour.
    #[serde(default = "white")]
    pub background: [u8; 3],
    #[serde(default)]
    pub filter: Filter,
    /// `(x + offset) * scale` on 0–255 values…
    #[serde(default)]
    pub scale: Option<f32>,
    #[serde(default)]
    pub offset: Option<f32>,
    /// …or `(x / 255 − mean) / std` per channel.
    #[serde(default)]
    pub mean: Option<[f32; 3]>,
    #[serde(default)]
    pub std: Option<[f32; 3]>,
    /// A plain-words restatement, for people reading the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(default = "rgb")]
    pub channel_order: String,
    #[serde(default = "nchw")]
    pub layout: String,
}

fn white() -> [u8; 3] {
    [255, 255, 255]
}
fn rgb() -> String {
    "rgb".into()
}
fn nchw() -> String {
    "nchw".into()
}
fn default_max_tokens() -> usize {
    256
}
fn yes() -> bool {
    true
}

impl Preprocessing {
    /// CLIP's: shorter side to 224 (bicubic), centre crop, CLIP's mean and std.
    pub fn clip() -> Preprocessing {
        Preprocessing {
            size: 224,
            resize: ResizeMode::CenterCrop,
            background: white(),
            filter: Filter::Bicubic,
            scale: None,
            offset: None,
            mean: Some([0.481_454_66, 0.457_827_5, 0.408_210_73]),
            std: Some([0.268_629_54, 0.261_302_6, 0.275_777_1]),
            formula: Some("(x / 255 - mean) / std, CLIP's mean and std".into()),
            channel_order: rgb(),
            layout: nchw(),
        }
    }

    /// Per channel (scale, shift) such that value = x * scale + shift, x in 0–255.
    pub fn affine(&self) -> Result<[(f32, f32); 3], EncodeError> {
        match (self.scale, self.offset, self.mean, self.std) {
            (Some(scale), offset, None, None) => {
                let offset = offset.unwrap_or(0.0);
                Ok([(scale, offset * scale); 3])
            }
            (None, None, Some(mean), Some(std)) => {
                if let Some(bad) = std.iter().find(|s| **s <= 0.0 || !s.is_finite()) {
                    return Err(EncodeError::Manifest(format!(
                        "preprocessing std must be positive, not {bad}"
                    )));
                }
                Ok([0, 1, 2].map(|c| (1.0 / (255.0 * std[c]), -mean[c] / std[c])))
            }
            _ => Err(EncodeError::Manifest(
                "preprocessing needs either scale (and optional offset) or mean and std".into(),
            )),
        }
    }
}

/// One model of a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub kind: ModelKind,
    #[serde(default)]
    pub description: String,
    /// Path of the ONNX file, relative to the manifest (or a URL in the browser).
    pub file: String,
    /// Hex sha256 of the file; empty means "not checked" (a user's own model).
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub licence: String,
    #[serde(default)]
    pub source: String,
    /// The text model whose space an image model embeds into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs_with: Option<String>,
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub tokenizer_sha256: String,
    #[serde(default)]
    pub tokenizer_size: u64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub pooling: Pooling,
    /// The output holding token states (pooled per `pooling`) or embeddings.
    pub embedding_output: String,
    pub embedding_dim: usize,
    #[serde(default = "yes")]
    pub normalize: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Preprocessing>,
}

impl ModelEntry {
    pub fn validate(&self) -> Result<(), EncodeError> {
        let bad = |why: String| {
            Err(EncodeError::Manifest(format!(
                "model {:?}: {why}",
                self.name
            )))
        };
        if self.embedding_dim == 0 {
            return bad("embedding_dim must be positive".into());
        }
        match self.kind {
            ModelKind::Text => {
                if self.tokenizer.is_none() {
                    return bad("a text model needs a tokenizer file".into());
                }
                if self.max_tokens < 2 {
                    return bad(format!(
                        "max_tokens must be at least 2, not {}",
                        self.max_tokens
                    ));
                }
            }
            ModelKind::Image => {
                let Some(p) = &self.preprocessing else {
                    return bad("an image model needs preprocessing".into());
                };
                if p.size == 0 || p.size > 2048 {
                    return bad(format!("preprocessing size must be 1–2048, not {}", p.size));
                }
                if p.layout != "nchw" && p.layout != "nhwc" {
                    return bad(format!("layout must be nchw or nhwc, not {:?}", p.layout));
                }
                if p.channel_order != "rgb" && p.channel_order != "bgr" {
                    return bad(format!(
                        "channel_order must be rgb or bgr, not {:?}",
                        p.channel_order
                    ));
                }
                p.affine()?;
            }
        }
        Ok(())
    }

    /// A CLIP-style text tower as transformers.js exports it (`input_ids`,
    /// `attention_mask` → `text_embeds`), for a model the user points at.
    pub fn clip_text(name: &str, file: &str, tokenizer: &str, dim: usize) -> ModelEntry {
        ModelEntry {
            name: name.into(),
            kind: ModelKind::Text,
            description: "A CLIP-style text encoder supplied by the user.".into(),
            file: file.into(),
            sha256: String::new(),
            size: 0,
            licence: String::new(),
            source: file.into(),
            pairs_with: None,
            inputs: vec![],
            outputs: vec![],
            tokenizer: Some(tokenizer.into()),
            tokenizer_sha256: String::new(),
            tokenizer_size: 0,
            max_tokens: 77,
            pooling: Pooling::None,
            embedding_output: "text_embeds".into(),
            embedding_dim: dim,
            normalize: true,
            preprocessing: None,
        }
    }

    /// A CLIP-style vision tower (`pixel_values` → `image_embeds`).
    pub fn clip_vision(name: &str, file: &str, pairs_with: &str, dim: usize) -> ModelEntry {
        ModelEntry {
            name: name.into(),
            kind: ModelKind::Image,
            description: "A CLIP-style image encoder supplied by the user.".into(),
            file: file.into(),
            sha256: String::new(),
            size: 0,
            licence: String::new(),
            source: file.into(),
            pairs_with: Some(pairs_with.into()),
            inputs: vec![],
            outputs: vec![],
            tokenizer: None,
            tokenizer_sha256: String::new(),
            tokenizer_size: 0,
            max_tokens: 77,
            pooling: Pooling::None,
            embedding_output: "image_embeds".into(),
            embedding_dim: dim,
            normalize: true,
            preprocessing: Some(Preprocessing::clip()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../../models/manifest.json");

    #[test]
    fn the_bundled_manifest_is_valid_and_honest() {
        let m = Manifest::from_json(MANIFEST).unwrap();
        let text = m.get("minilm-l6-v2").unwrap();
        assert_eq!(text.kind, ModelKind::Text);
        assert_eq!(text.pooling, Pooling::Mean);
        assert_eq!(text.sha256.len(), 64);
        let image = m.get("effl0-minilm-bridge").unwrap();
        assert_eq!(image.pairs_with.as_deref(), Some("minilm-l6-v2"));
        assert!(image.description.contains("NOT CLIP"));
        let affine = image.preprocessing.as_ref().unwrap().affine().unwrap();
        // (x − 127) / 128
        assert_eq!(affine[0], (1.0 / 128.0, -127.0 / 128.0));
        assert!(m
            .get("clip")
            .unwrap_err()
            .to_string()
            .contains("minilm-l6-v2"));
    }

    #[test]
    fn bad_manifests_are_named() {
        assert!(Manifest::from_json("{").is_err());
        let mut entry = ModelEntry::clip_vision("v", "v.onnx", "t", 512);
        entry.preprocessing.as_mut().unwrap().std = Some([0.0, 1.0, 1.0]);
        let err = entry.validate().unwrap_err().to_string();
        assert!(err.contains("std must be positive"), "{err}");
        let mut text = ModelEntry::clip_text("t", "t.onnx", "tok.json", 512);
        text.tokenizer = None;
        assert!(text
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs a tokenizer"));
    }
}
