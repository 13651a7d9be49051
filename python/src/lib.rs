//! The Python package `latentlab` (its native module `latentlab._latentlab`): a thin facade
//! over the same core as the CLI and the wasm package, of the same kind as `src/wasm`. Each
//! function parses its Python arguments (numpy arrays, keyword options), calls the core with
//! the GIL released, and converts the result (numpy arrays, dicts with the CLI's keys); bad
//! input is a ValueError (TypeError for a wrong kind of object) whose message names the
//! argument, a model that cannot be loaded or run a RuntimeError, a missing file an OSError.

use pyo3::prelude::*;

mod align;
mod convert;
mod encode;
mod index;
mod ot;
mod plan;
mod steer;

#[pymodule]
fn _latentlab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<encode::TextEncoder>()?;
    m.add_class::<encode::ImageEncoder>()?;
    m.add_class::<index::EmbeddingIndex>()?;
    m.add_function(wrap_pyfunction!(ot::sinkhorn, m)?)?;
    m.add_function(wrap_pyfunction!(ot::sinkhorn_cost, m)?)?;
    m.add_function(wrap_pyfunction!(ot::multi_sinkhorn, m)?)?;
    m.add_function(wrap_pyfunction!(ot::m3g, m)?)?;
    m.add_function(wrap_pyfunction!(align::align, m)?)?;
    m.add_class::<steer::Steering>()?;
    m.add_class::<plan::Plan>()?;
    m.add_function(wrap_pyfunction!(plan::parse_plans, m)?)?;
    m.add_function(wrap_pyfunction!(plan::parse_duration, m)?)?;
    m.add_function(wrap_pyfunction!(plan::format_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(plan::graph_encodings, m)?)?;
    m.add_function(wrap_pyfunction!(plan::ordering_templates, m)?)?;
    Ok(())
}
