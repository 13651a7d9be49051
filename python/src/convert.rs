//! Python ↔ core: numpy arrays in (dtype, dimensions and finiteness named in errors), numpy
//! arrays and dicts out, core errors as Python exceptions with the core's messages.

use numpy::ndarray::{Array1, Array2, ArrayD, IxDyn};
use numpy::{
    dtype, IntoPyArray, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use latentlab::core::matrix::Matrix;
use latentlab::encode::{EncodeError, ModelsError};

/// Bad input: the message says which argument and why.
pub fn value_error(message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(message.to_string())
}

/// An encoder error: a model that cannot be loaded or run is a RuntimeError; everything else
/// (an empty text, an undecodable picture, an unknown model name) is bad input.
pub fn encode_error(e: EncodeError) -> PyErr {
    match e {
        EncodeError::Sha256 { .. }
        | EncodeError::InvalidModel { .. }
        | EncodeError::UnsupportedModel { .. }
        | EncodeError::MissingInput { .. }
        | EncodeError::MissingOutput { .. }
        | EncodeError::UnknownInput { .. }
        | EncodeError::Tokenizer(_)
        | EncodeError::Inference { .. } => PyRuntimeError::new_err(e.to_string()),
        _ => value_error(e),
    }
}

/// A models folder's error: unreadable files are OSErrors (FileNotFoundError when missing),
/// so `except FileNotFoundError` works as for any file.
pub fn models_error(e: ModelsError) -> PyErr {
    let message = e.to_string();
    match e {
        ModelsError::ReadManifest { error, .. } | ModelsError::ReadFile { error, .. } => {
            if error.kind() == std::io::ErrorKind::NotFound {
                PyFileNotFoundError::new_err(message)
            } else {
                PyOSError::new_err(message)
            }
        }
        ModelsError::Encode(inner) => encode_error(inner),
        _ => value_error(message),
    }
}

/// `obj` as a numpy array, or a TypeError naming `what` and what it was instead.
fn ndarray<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let kind = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!(
            "{what} must be a numpy array, got {kind} (numpy.asarray(..., dtype=numpy.float32) makes one)"
        ))
    })
}

/// The values of a float32 or float64 array in row-major order (float64 rounded to float32,
/// as the CLI reads float64 .npy files), whatever its memory layout.
fn float_values(array: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Vec<f32>> {
    let py = array.py();
    let descr = array.dtype();
    if descr.is_equiv_to(&dtype::<f32>(py)) {
        let a = array.cast::<PyArrayDyn<f32>>()?.readonly();
        Ok(a.as_array().iter().copied().collect())
    } else if descr.is_equiv_to(&dtype::<f64>(py)) {
        let a = array.cast::<PyArrayDyn<f64>>()?.readonly();
        Ok(a.as_array().iter().map(|&v| v as f32).collect())
    } else {
        Err(value_error(format!(
            "{what} holds {}: expected float32 or float64",
            dtype_name(&descr)
        )))
    }
}

fn dtype_name(descr: &Bound<'_, numpy::PyArrayDescr>) -> String {
    descr
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "an unknown dtype".into())
}

/// A 2-D float array (n × dim) as a core matrix. Finiteness is the core's to check, with
/// messages that name the row.
pub fn matrix(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Matrix> {
    let array = ndarray(obj, what)?;
    let shape = array.shape().to_vec();
    let [rows, cols] = shape[..] else {
        return Err(value_error(format!(
            "{what} has shape {}: expected a 2-D array (rows × dim)",
            shape_text(&shape)
        )));
    };
    let data = float_values(array, what)?;
    Matrix::new(rows, cols, data, what).map_err(value_error)
}

/// A 1-D float array (weights).
pub fn vector(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f32>> {
    let array = ndarray(obj, what)?;
    let shape = array.shape().to_vec();
    if shape.len() != 1 {
        return Err(value_error(format!(
            "{what} has shape {}: expected a 1-D array",
            shape_text(&shape)
        )));
    }
    float_values(array, what)
}

/// A 1-D array of labels: integers, booleans, or floats that are whole numbers (the CLI's
/// reader accepts the same).
pub fn labels(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    let array = ndarray(obj, what)?;
    let shape = array.shape().to_vec();
    if shape.len() != 1 {
        return Err(value_error(format!(
            "{what} has shape {}: expected a 1-D array of labels",
            shape_text(&shape)
        )));
    }
    let kind = array.dtype().kind();
    match kind {
        b'i' | b'u' | b'b' => {
            // numpy converts every integer width (and bool) to int64 exactly, except uint64
            // values past i64::MAX, which no label needs and which wrap to negatives the core
            // refuses.
            let wide = array.call_method1("astype", ("int64",))?;
            let a = wide.cast::<PyArray1<i64>>()?.readonly();
            Ok(a.as_array().to_vec())
        }
        b'f' => {
            let values = float_values(array, what)?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    latentlab::core::matrix::whole_number(f64::from(v)).ok_or_else(|| {
                        value_error(format!("{what} entry {i} is {v}: expected a whole number"))
                    })
                })
                .collect()
        }
        _ => Err(value_error(format!(
            "{what} holds {}: expected integer, boolean or whole-number labels",
            dtype_name(&array.dtype())
        ))),
    }
}

pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A core matrix as an (n, dim) float32 array, moved, not copied.
pub fn matrix_out<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyAny>> {
    let array = Array2::from_shape_vec((m.rows, m.cols), m.data).map_err(value_error)?;
    Ok(array.into_pyarray(py).into_any())
}

pub fn vector_out<'py>(py: Python<'py>, v: Vec<f32>) -> Bound<'py, PyAny> {
    Array1::from_vec(v).into_pyarray(py).into_any()
}

/// A row-major buffer as an array of `shape`.
pub fn tensor_out<'py>(
    py: Python<'py>,
    shape: &[usize],
    v: Vec<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    let array = ArrayD::from_shape_vec(IxDyn(shape), v).map_err(value_error)?;
    Ok(array.into_pyarray(py).into_any())
}

pub fn vectors_out<'py>(py: Python<'py>, vs: Vec<Vec<f32>>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, vs.into_iter().map(|v| vector_out(py, v)))
}

/// A JSON value (a core result serialised with serde) as Python objects: the same keys and
/// numbers the CLI prints.
pub fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => PyList::new(
            py,
            items
                .iter()
                .map(|v| json_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serialisable core result as a Python dict (or list).
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    json_to_py(py, &value)
}
