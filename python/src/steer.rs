//! Affine steering: the `Steering` class (fit, apply, JSON round trip), with the options and
//! defaults of the wasm package's `Steering` and JSON that `latentlab steer` reads and writes.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use latentlab::core::steer::{self, check_concept, ApplyTo, FitOptions, Method};

use crate::convert::{labels, matrix, matrix_out, tensor_out, value_error, vector_out};

/// Concept labels: one 0/1 per row.
fn concept(obj: &Bound<'_, PyAny>, rows: usize) -> PyResult<Vec<u8>> {
    check_concept(&labels(obj, "z")?, rows).map_err(value_error)
}

/// A fitted affine steering function `x ↦ x·W + b` that moves the rows of one concept group
/// onto the other's mean (and covariance, for "mean-cov").
#[pyclass(module = "latentlab", frozen)]
pub struct Steering {
    inner: steer::Steering,
}

#[pymethods]
impl Steering {
    /// Fits on `x` (n × dim) with concept labels `z` (n values, 0 or 1).
    #[classmethod]
    #[pyo3(signature = (x, z, *, method="mean-cov", source_label=1, reg=None, relative_reg=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        z: &Bound<'_, PyAny>,
        method: &str,
        source_label: i64,
        reg: Option<f64>,
        relative_reg: Option<f64>,
    ) -> PyResult<Steering> {
        let x = matrix(x, "x")?;
        let z = concept(z, x.rows)?;
        let source_label = match source_label {
            0 | 1 => source_label as u8,
            other => {
                return Err(value_error(format!(
                    "source_label is {other}: expected 0 or 1"
                )))
            }
        };
        let options = FitOptions {
            method: Method::parse(method).map_err(value_error)?,
            source_label,
            reg,
            relative_reg,
            ..FitOptions::default()
        };
        let inner = py
            .detach(|| steer::fit(&x, &z, &options))
            .map_err(value_error)?;
        Ok(Steering { inner })
    }

    /// Reads a steering function written by `to_json`, the wasm package's `toJson` or
    /// `latentlab steer fit --out`.
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Steering> {
        let inner = steer::Steering::from_json(text).map_err(value_error)?;
        Ok(Steering { inner })
    }

    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// Applies the map to the rows of `x` (n × dim): those of the source group by the stored
    /// classifier ("predicted", the default), by the labels `z` ("source") or every row
    /// ("all"). Returns `x` (the rows after steering), `steered` (a bool per row) and
    /// `n_steered`.
    #[pyo3(signature = (x, *, apply_to="predicted", z=None))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        apply_to: &str,
        z: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let x = matrix(x, "x")?;
        let z = z
            .filter(|z| !z.is_none())
            .map(|z| concept(z, x.rows))
            .transpose()?;
        let to = ApplyTo::parse(apply_to).map_err(value_error)?;
        let steered = py
            .detach(|| self.inner.apply(&x, z.as_deref(), to))
            .map_err(value_error)?;
        let n_steered = steered.steered.iter().filter(|&&s| s).count();
        let d = PyDict::new(py);
        d.set_item("x", matrix_out(py, steered.x)?)?;
        let flags = numpy::ndarray::Array1::from_vec(steered.steered);
        d.set_item("steered", numpy::IntoPyArray::into_pyarray(flags, py))?;
        d.set_item("n_steered", n_steered)?;
        Ok(d)
    }

    #[getter]
    fn method(&self) -> &'static str {
        self.inner.method.name()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim
    }

    #[getter]
    fn source_label(&self) -> u8 {
        self.inner.source_label
    }

    /// The regularisation added to both covariances (0 for mean matching).
    #[getter]
    fn reg(&self) -> f64 {
        self.inner.reg
    }

    #[getter]
    fn n_source(&self) -> usize {
        self.inner.n_source
    }

    #[getter]
    fn n_target(&self) -> usize {
        self.inner.n_target
    }

    /// W, dim × dim float32 (the JSON keeps float64).
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let w = self.inner.w.iter().flatten().map(|&v| v as f32).collect();
        tensor_out(py, &[self.inner.dim, self.inner.dim], w)
    }

    /// b, dim float32 values.
    #[getter]
    fn bias<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        vector_out(py, self.inner.b.iter().map(|&v| v as f32).collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "Steering(method={:?}, dim={}, source_label={}, n_source={}, n_target={})",
            self.inner.method.name(),
            self.inner.dim,
            self.inner.source_label,
            self.inner.n_source,
            self.inner.n_target
        )
    }
}
