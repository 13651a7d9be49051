//! A models folder on disk (`manifest.json` beside the model files): where it is and how its
//! encoders are loaded. Shared by the CLI (`--models DIR`, `--model NAME`) and the Python
//! package, so both find, check and name models the same way. Native only: browsers fetch
//! the files themselves and call `TextEncoder::from_bytes`.

use std::path::{Path, PathBuf};

use super::{EncodeError, ImageEncoder, Manifest, ModelKind, TextEncoder};

/// What can go wrong opening a models folder or loading one of its encoders. Messages name
/// the file or model at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("cannot read {}: {error}", .path.display())]
    ReadManifest {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("in {}: {error}", .path.display())]
    Manifest { path: PathBuf, error: EncodeError },
    #[error("cannot read {} (the bundled models are built by scripts/build, or python3 models/build_models.py): {error}", .path.display())]
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the manifest has no {0:?} model")]
    NoModelOfKind(ModelKind),
    #[error("model {name:?} is not {} model", if *.kind == ModelKind::Text { "a text" } else { "an image" })]
    WrongKind { name: String, kind: ModelKind },
    #[error("model {0:?} has no tokenizer")]
    NoTokenizer(String),
    #[error("model {0:?} does not say which text model it pairs with")]
    NoPair(String),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Where the models are: `dir` when given, else `$LATENTLAB_MODELS`, else `./models` when it
/// holds a manifest, else the repository's `models/` this library was built from.
pub fn models_dir(dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = dir {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("LATENTLAB_MODELS") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("models");
    if local.join("manifest.json").exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
    }
}

/// An opened models folder: its place and its parsed, validated manifest.
pub struct Models {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The threads each encoder loaded from here runs on (0: one per core).
    threads: usize,
}

impl Models {
    /// Opens `dir`, or the folder [`models_dir`] finds without one.
    pub fn open(dir: Option<&Path>) -> Result<Models, ModelsError> {
        let dir = models_dir(dir);
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|error| ModelsError::ReadManifest {
            path: path.clone(),
            error,
        })?;
        let manifest =
            Manifest::from_json(&text).map_err(|error| ModelsError::Manifest { path, error })?;
        Ok(Models {
            dir,
            manifest,
            threads: 1,
        })
    }

    /// Encoders loaded from now on run on `threads` threads (0: one per core; default one):
    /// see `TextEncoder::set_threads` and `ImageEncoder::set_threads`.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }

    fn file(&self, rel: &str) -> Result<Vec<u8>, ModelsError> {
        let path = self.dir.join(rel);
        std::fs::read(&path).map_err(|error| ModelsError::ReadFile { path, error })
    }

    /// The default model of a kind: the manifest's first of that kind.
    pub fn default_name(&self, kind: ModelKind) -> Result<String, ModelsError> {
        self.manifest
            .models
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.name.clone())
            .ok_or(ModelsError::NoModelOfKind(kind))
    }

    /// The text model `name`; an image model's name gives the text model it pairs with.
    pub fn text(&self, name: &str) -> Result<TextEncoder, ModelsError> {
        let entry = self.manifest.get(name)?;
        if entry.kind != ModelKind::Text {
            if let Some(pair) = &entry.pairs_with {
                return self.text(pair);
            }
            return Err(ModelsError::WrongKind {
                name: name.to_string(),
                kind: ModelKind::Text,
            });
        }
        let tokenizer = entry
            .tokenizer
            .as_deref()
            .ok_or_else(|| ModelsError::NoTokenizer(name.to_string()))?;
        let mut encoder =
            TextEncoder::from_bytes(entry, &self.file(&entry.file)?, &self.file(tokenizer)?)?;
        encoder.set_threads(self.threads)?;
        Ok(encoder)
    }

    pub fn image(&self, name: &str) -> Result<ImageEncoder, ModelsError> {
        let entry = self.manifest.get(name)?;
        if entry.kind != ModelKind::Image {
            return Err(ModelsError::WrongKind {
                name: name.to_string(),
                kind: ModelKind::Image,
            });
        }
        let mut encoder = ImageEncoder::from_bytes(entry, &self.file(&entry.file)?)?;
        encoder.set_threads(self.threads)?;
        Ok(encoder)
    }

    /// The image model `name` (default: the bundled one) and the text model it pairs with,
    /// with their names.
    pub fn image_text_pair(
        &self,
        name: Option<String>,
    ) -> Result<(String, ImageEncoder, String, TextEncoder), ModelsError> {
        let image_name = match name {
            Some(n) => n,
            None => self.default_name(ModelKind::Image)?,
        };
        let image = self.image(&image_name)?;
        let text_name = image
            .entry()
            .pairs_with
            .clone()
            .ok_or_else(|| ModelsError::NoPair(image_name.clone()))?;
        let text = self.text(&text_name)?;
        Ok((image_name, image, text_name, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_folder_and_the_file() {
        let dir = std::env::temp_dir().join(format!("latentlab-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = Models::open(Some(&dir)).err().unwrap().to_string();
        assert!(
            missing.starts_with(&format!(
                "cannot read {}",
                dir.join("manifest.json").display()
            )),
            "{missing}"
        );
        std::fs::write(dir.join("manifest.json"), "{").unwrap();
        let bad = Models::open(Some(&dir)).err().unwrap().to_string();
        assert!(
            bad.starts_with(&format!(
                "in {}: manifest: ",
                dir.join("manifest.json").display()
            )),
            "{bad}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
