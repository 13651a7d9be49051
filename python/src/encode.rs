//! The ONNX encoders: `TextEncoder` and `ImageEncoder` from a models folder (the CLI's
//! `--models DIR` / `--model NAME`, through the same `latentlab::encode::Models`), embedding as
//! the CLI does (texts in batches of 32, files decoded by the CLI's decoder; every core by
//! default, `threads=N` as the CLI's `--threads N`), so both give the same numbers.

use std::path::PathBuf;

use numpy::{
    dtype, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use latentlab::core::matrix::Matrix;
use latentlab::encode::{
    decode_image, EncodeError, ImageEncoder as CoreImage, ModelKind, Models, RgbaImage,
    TextEncoder as CoreText, MAX_IMAGE_PIXELS,
};

use crate::convert::{encode_error, matrix_out, models_error, shape_text, value_error};

/// `latentlab embed text` embeds in batches of this many texts; the same batches give the
/// same padding, so the same numbers.
const TEXT_BATCH: usize = 32;

/// Opens the models folder (`models`, else `$LATENTLAB_MODELS`, else `./models`, else the
/// repository's `models/` the package was built from) and the model `model` (default: the
/// manifest's first of `kind`); its encoders run on `threads` threads (None: every core, as
/// onnxruntime's sessions and the CLI's `--threads` do).
fn open(
    models: Option<PathBuf>,
    model: Option<String>,
    kind: ModelKind,
    threads: Option<usize>,
) -> PyResult<(Models, String)> {
    if threads == Some(0) {
        return Err(value_error("threads must be at least 1"));
    }
    let mut dir = Models::open(models.as_deref()).map_err(models_error)?;
    dir.set_threads(threads.unwrap_or(0));
    let name = match model {
        Some(name) => name,
        None => dir.default_name(kind).map_err(models_error)?,
    };
    Ok((dir, name))
}

/// A text encoder: texts → L2-normalised float32 rows.
#[pyclass(module = "latentlab", frozen)]
pub struct TextEncoder {
    inner: CoreText,
}

#[pymethods]
impl TextEncoder {
    /// Loads the text model `model` of the models folder `models` (see the module's doc),
    /// to run on `threads` threads (default: every core). An image model's name loads the
    /// text model it pairs with, as the CLI does.
    #[new]
    #[pyo3(signature = (model=None, *, models=None, threads=None))]
    fn new(
        py: Python<'_>,
        model: Option<String>,
        models: Option<PathBuf>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let inner = py.detach(|| {
            let (dir, name) = open(models, model, ModelKind::Text, threads)?;
            dir.text(&name).map_err(models_error)
        })?;
        Ok(TextEncoder { inner })
    }

    /// The model's name in the manifest.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.entry().name
    }

    /// The embedding's width.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The threads it runs on.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// One row per text: an (n, dim) float32 array.
    fn embed<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let m = py
            .detach(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                self.inner.embed_batched(&refs, TEXT_BATCH, &mut |_, _| {})
            })
            .map_err(encode_error)?;
        matrix_out(py, m)
    }

    fn __repr__(&self) -> String {
        format!("TextEncoder(name={:?}, dim={})", self.name(), self.dim())
    }
}

/// A picture as it crossed from Python: a file, encoded bytes, or pixels.
enum Picture {
    File(PathBuf),
    Encoded(Vec<u8>),
    Pixels(RgbaImage),
}

impl Picture {
    fn from_py(item: &Bound<'_, PyAny>, index: usize) -> PyResult<Picture> {
        if let Ok(bytes) = item.cast::<PyBytes>() {
            return Ok(Picture::Encoded(bytes.as_bytes().to_vec()));
        }
        if let Ok(bytes) = item.cast::<PyByteArray>() {
            return Ok(Picture::Encoded(bytes.to_vec()));
        }
        if let Ok(array) = item.cast::<PyUntypedArray>() {
            return pixels(array, index).map(Picture::Pixels);
        }
        item.extract::<PathBuf>().map(Picture::File).map_err(|_| {
            PyTypeError::new_err(format!(
                "images[{index}] is a {}: expected a path, the bytes of a PNG or JPEG file, or an (height, width, 3 or 4) uint8 array",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            ))
        })
    }

    /// Decoded to RGBA: files and bytes by the CLI's decoder, so every route sees the same
    /// pixels.
    fn decode(self, index: usize) -> PyResult<RgbaImage> {
        match self {
            Picture::Pixels(image) => Ok(image),
            Picture::Encoded(bytes) => {
                decode_image(&format!("images[{index}]"), &bytes).map_err(encode_error)
            }
            Picture::File(path) => {
                let shown = path.display().to_string();
                let bytes = std::fs::read(&path).map_err(|e| {
                    let message = format!("cannot read the image {shown}: {e}");
                    if e.kind() == std::io::ErrorKind::NotFound {
                        PyFileNotFoundError::new_err(message)
                    } else {
                        PyOSError::new_err(message)
                    }
                })?;
                decode_image(&shown, &bytes)
                    .map_err(|e| value_error(format!("cannot read the image {shown}: {e}")))
            }
        }
    }
}

/// An (h, w, 3) or (h, w, 4) uint8 array as straight RGBA (RGB gets an opaque alpha).
fn pixels(array: &Bound<'_, PyUntypedArray>, index: usize) -> PyResult<RgbaImage> {
    let shape = array.shape().to_vec();
    let uint8 = array.dtype().is_equiv_to(&dtype::<u8>(array.py()));
    let [height, width, channels @ (3 | 4)] = shape[..] else {
        return Err(value_error(format!(
            "images[{index}] has shape {}: expected (height, width, 3) or (height, width, 4)",
            shape_text(&shape)
        )));
    };
    if !uint8 {
        return Err(value_error(format!(
            "images[{index}] holds {}: expected uint8 pixels (0-255)",
            array
                .dtype()
                .str()
                .map(|s| s.to_string())
                .unwrap_or_default()
        )));
    }
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(encode_error(EncodeError::ImageTooLarge {
            index,
            width: u32::MAX,
            height: u32::MAX,
            max: MAX_IMAGE_PIXELS,
        }));
    };
    // Refused before the RGBA copy is allocated, with the core's message.
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(encode_error(EncodeError::ImageTooLarge {
            index,
            width: w,
            height: h,
            max: MAX_IMAGE_PIXELS,
        }));
    }
    let values = array.cast::<PyArrayDyn<u8>>()?.readonly();
    let values = values.as_array();
    let data: Vec<u8> = if channels == 4 {
        values.iter().copied().collect()
    } else {
        let rgb: Vec<u8> = values.iter().copied().collect();
        rgb.chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    Ok(RgbaImage {
        width: w,
        height: h,
        data,
    })
}

/// The core numbers pictures within one call; here each call embeds a few starting at the
/// caller's `first`, so the core's index i is the caller's `first + i`.
fn at_index(e: EncodeError, first: usize) -> EncodeError {
    match e {
        EncodeError::EmptyImage {
            index,
            width,
            height,
        } => EncodeError::EmptyImage {
            index: first + index,
            width,
            height,
        },
        EncodeError::ImageTooLarge {
            index,
            width,
            height,
            max,
        } => EncodeError::ImageTooLarge {
            index: first + index,
            width,
            height,
            max,
        },
        EncodeError::PixelBuffer {
            index,
            width,
            height,
            expected,
            actual,
        } => EncodeError::PixelBuffer {
            index: first + index,
            width,
            height,
            expected,
            actual,
        },
        other => other,
    }
}

/// An image encoder: pictures → L2-normalised float32 rows.
#[pyclass(module = "latentlab", frozen)]
pub struct ImageEncoder {
    inner: CoreImage,
}

#[pymethods]
impl ImageEncoder {
    /// Loads the image model `model` of the models folder `models` (see the module's doc),
    /// to run on `threads` threads (default: every core).
    #[new]
    #[pyo3(signature = (model=None, *, models=None, threads=None))]
    fn new(
        py: Python<'_>,
        model: Option<String>,
        models: Option<PathBuf>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let inner = py.detach(|| {
            let (dir, name) = open(models, model, ModelKind::Image, threads)?;
            dir.image(&name).map_err(models_error)
        })?;
        Ok(ImageEncoder { inner })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.inner.entry().name
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The threads it runs on.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The name of the text model this one pairs with, if the manifest says.
    #[getter]
    fn pairs_with(&self) -> Option<&str> {
        self.inner.entry().pairs_with.as_deref()
    }

    /// One row per picture: paths (str or os.PathLike), the bytes of PNG or JPEG files, or
    /// (height, width, 3 or 4) uint8 arrays. `output` names another output of the model
    /// (e.g. "features", raw) instead of the embedding, as `latentlab embed image --model-output`.
    #[pyo3(signature = (images, *, output=None))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        images: Vec<Bound<'py, PyAny>>,
        output: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if images.is_empty() {
            return Err(encode_error(EncodeError::NothingToEncode("image")));
        }
        let pictures = images
            .iter()
            .enumerate()
            .map(|(i, item)| Picture::from_py(item, i))
            .collect::<PyResult<Vec<_>>>()?;
        let m = py.detach(|| {
            let mut all = Matrix::zeros(0, 0);
            // As many decoded pictures at a time as the encoder has threads (it embeds them
            // side by side): a long list of large files never sits in memory at once.
            let step = self.inner.threads().max(1);
            let mut pictures = pictures.into_iter().enumerate().peekable();
            while let Some(&(first, _)) = pictures.peek() {
                let images = pictures
                    .by_ref()
                    .take(step)
                    .map(|(index, picture)| picture.decode(index))
                    .collect::<PyResult<Vec<_>>>()?;
                let some = match &output {
                    None => self.inner.embed(&images),
                    Some(name) => self
                        .inner
                        .embed_outputs(&images, &[name])
                        .map(|mut v| v.remove(0)),
                }
                .map_err(|e| match e {
                    // the caller's `output`, not the model, is at fault
                    EncodeError::MissingOutput { .. } => value_error(e),
                    e => encode_error(at_index(e, first)),
                })?;
                all.append(&some).map_err(value_error)?;
            }
            Ok::<_, PyErr>(all)
        })?;
        matrix_out(py, m)
    }

    fn __repr__(&self) -> String {
        format!("ImageEncoder(name={:?}, dim={})", self.name(), self.dim())
    }
}
