//! Representation alignment: `align`, the Platonic Representation Hypothesis' metrics between
//! the paired rows of two matrices, with `latentlab align`'s options and per-metric keys, on
//! the CPU path.

use pyo3::prelude::*;
use pyo3::types::PyList;

use latentlab::core::align::{
    align_many, AlignOptions, Metric, Prepare, QuantileMode, DEFAULT_CCA_DIM, DEFAULT_K,
    DEFAULT_OUTLIER_QUANTILE,
};

use crate::convert::{matrix, to_py, value_error};

/// `"all"`, one metric's name, or a list of names.
fn metrics(arg: &Bound<'_, PyAny>) -> PyResult<Vec<Metric>> {
    if let Ok(name) = arg.extract::<String>() {
        return if name == "all" {
            Ok(Metric::ALL.to_vec())
        } else {
            Ok(vec![Metric::parse(&name).map_err(value_error)?])
        };
    }
    let names: Vec<String> = arg
        .extract()
        .map_err(|_| value_error("metrics must be \"all\", a metric's name or a list of names"))?;
    if names.is_empty() {
        return Err(value_error(
            "metrics is an empty list: name at least one metric, or \"all\"",
        ));
    }
    names
        .iter()
        .map(|m| Metric::parse(m).map_err(value_error))
        .collect()
}

/// Every requested metric (default `"mutual_knn"`) between `x` (n × dx) and `y` (n × dy), rows
/// paired: one dict per metric with the keys `metric`, `score`, `k`, `chance`, `cca_dim`, `n`
/// and `backend`.
#[pyfunction]
#[pyo3(signature = (x, y, *, metrics=None,
    k=DEFAULT_K, cca_dim=DEFAULT_CCA_DIM, prepare=true, outlier_quantile=DEFAULT_OUTLIER_QUANTILE,
    exact_quantile=false))]
#[allow(clippy::too_many_arguments)]
pub fn align<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    metrics: Option<&Bound<'py, PyAny>>,
    k: usize,
    cca_dim: usize,
    prepare: bool,
    outlier_quantile: f64,
    exact_quantile: bool,
) -> PyResult<Bound<'py, PyList>> {
    let metrics = match metrics.filter(|m| !m.is_none()) {
        None => vec![Metric::MutualKnn],
        Some(m) => self::metrics(m)?,
    };
    let (x, y) = (matrix(x, "x")?, matrix(y, "y")?);
    let prepare = if prepare {
        Prepare {
            outlier_quantile,
            quantile_mode: if exact_quantile {
                QuantileMode::Exact
            } else {
                QuantileMode::MeanOfRows
            },
            normalize: true,
        }
    } else {
        Prepare::OFF
    };
    let opts = AlignOptions {
        k,
        cca_dim,
        prepare,
    };
    let scores = py
        .detach(|| align_many(&x, &y, &metrics, &opts))
        .map_err(value_error)?;
    let rows = scores
        .iter()
        .map(|s| {
            let row = to_py(py, s)?;
            row.set_item("backend", "cpu")?;
            Ok(row)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, rows)
}
