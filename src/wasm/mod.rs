//! The wasm-bindgen facade: the only code that knows wasm-bindgen and js-sys.
//!
//! Thin by design: parse JS input, call `core` or `encode`, convert the result. Every
//! failure is a `JsError` whose message names the bad value; nothing here panics on user
//! input. Method names are camelCase; result objects keep the snake_case keys of the CLI's
//! JSON, so a result means the same thing in a terminal and in a browser. Arrays of
//! numbers cross as typed arrays with their shape beside them.

// Each of the two modules uses only some of the shared helpers below; the lint's check with
// both feature sets on still finds a helper that neither uses.
#![cfg_attr(not(all(feature = "core-api", feature = "models")), allow(dead_code))]

// The core module's facades (feature `core-api`) and the models module's (feature `models`):
// each wasm build exports one set, so the two modules share no exported code.
#[cfg(feature = "core-api")]
mod align;
#[cfg(feature = "core-api")]
mod collapse;
#[cfg(feature = "models")]
mod encode;
#[cfg(feature = "core-api")]
mod index;
#[cfg(feature = "models")]
mod lm;
#[cfg(feature = "core-api")]
mod ot;
#[cfg(feature = "core-api")]
mod plan;
#[cfg(feature = "models")]
mod repo;
#[cfg(feature = "core-api")]
mod steer;
#[cfg(feature = "core-api")]
mod tiny;
#[cfg(feature = "core-api")]
mod xrm;

#[cfg(feature = "core-api")]
pub use align::*;
#[cfg(feature = "core-api")]
pub use collapse::*;
#[cfg(feature = "models")]
pub use encode::*;
#[cfg(feature = "core-api")]
pub use index::*;
#[cfg(feature = "models")]
pub use lm::*;
#[cfg(feature = "core-api")]
pub use ot::*;
#[cfg(feature = "core-api")]
pub use plan::*;
#[cfg(feature = "models")]
pub use repo::*;
#[cfg(feature = "core-api")]
pub use steer::*;
#[cfg(feature = "core-api")]
mod webgpu;
#[cfg(feature = "core-api")]
pub(crate) use webgpu::{backend_option, forget_webgpu, webgpu, WebGpu};

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

extern "C" {
    /// Synthesised by wasm-ld: runs the module's static constructors (tract registers its
    /// kernels through `inventory`, which uses them).
    fn __wasm_call_ctors();
}

/// wasm-bindgen calls this once, right after instantiation, before any other export.
#[wasm_bindgen(start)]
fn start() {
    // wasm-ld treats a module that never calls `__wasm_call_ctors` itself as a one-shot
    // "command" and wraps *every* export in a call to it, so each call from JS (each
    // embed, each string or array handed in) re-ran every constructor: 12% of a
    // tokenisation call in a Chromium profile. One explicit call here turns that off.
    // SAFETY: the constructors are inventory's idempotent registrations, run exactly once,
    // before anything reads the registries.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("could not convert the result: {e}")))
}

/// A count or dimension from JavaScript. Taken as f64, because wasm-bindgen turns a JS
/// number into `usize` modulo 2^32 (−1 became 4,294,967,295 items and trapped the module on
/// the allocation): here it must be a whole number from `min` to 2^32 − 1, or the error names it.
pub(crate) fn size_arg(value: f64, name: &str, min: usize) -> Result<usize, JsError> {
    if !(value.is_finite()
        && value.fract() == 0.0
        && value >= min as f64
        && value <= u32::MAX as f64)
    {
        return Err(JsError::new(&format!(
            "{name} is {value}: expected a whole number from {min} to {}",
            u32::MAX
        )));
    }
    Ok(value as usize)
}

/// Checks that `len` values are exactly `dims` multiplied (checked: a product that overflows is
/// an error too), naming `what` and the dimensions.
pub(crate) fn check_shape(len: usize, dims: &[(&str, usize)], what: &str) -> Result<(), JsError> {
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &(_, d)| acc.checked_mul(d));
    let named = dims
        .iter()
        .map(|(n, d)| format!("{n} {d}"))
        .collect::<Vec<_>>()
        .join(" × ");
    match expected {
        Some(e) if e == len => Ok(()),
        Some(e) => Err(JsError::new(&format!(
            "`{what}` has {len} values, expected {e} ({named})"
        ))),
        None => Err(JsError::new(&format!(
            "`{what}`: {named} overflows; it has {len} values"
        ))),
    }
}

pub(crate) fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// An optional text argument: undefined or null is None, a string is itself, anything else is
/// refused by name. (wasm-bindgen's own `Option<String>` glue passes a number on as if it were
/// a string's pointer and the instance traps: found by tests/js/facade-fuzz.mjs.)
pub(crate) fn optional_string(
    value: Option<JsValue>,
    what: &str,
) -> Result<Option<String>, JsError> {
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(None);
    };
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| JsError::new(&format!("{what} must be a string")))
}

/// serde-wasm-bindgen reads only the fields it knows, so a misspelt option would be
/// silently ignored; refuse it by name instead.
pub(crate) fn reject_unknown_keys(
    value: &JsValue,
    known: &[&str],
    what: &str,
) -> Result<(), JsError> {
    // Any object but an array: `instanceof Object` (dyn_ref) would refuse one made by
    // `Object.create(null)`, as the facade's fuzzing found.
    if !value.is_object() || js_sys::Array::is_array(value) || value.is_function() {
        return Err(JsError::new(&format!(
            "{what} must be an object with named keys"
        )));
    }
    let object = value.unchecked_ref::<js_sys::Object>();
    for key in js_sys::Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(JsError::new(&format!(
                "unknown {what} key {key:?} (expected one of: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// The memory budget in bytes: no allocation sized by input (`n × m`, `n^k`, counts in
/// options) may be larger; a call that would need more fails with an error naming the sizes
/// instead of aborting the module. Default 1 GiB.
#[wasm_bindgen(js_name = memoryBudget)]
pub fn memory_budget() -> f64 {
    crate::core::budget::memory_budget() as f64
}

/// Sets the memory budget (bytes, at least 1 MiB).
#[wasm_bindgen(js_name = setMemoryBudget)]
pub fn set_memory_budget(bytes: f64) -> Result<(), JsError> {
    let bytes = size_arg(bytes, "bytes", 0)?;
    crate::core::budget::set_memory_budget(bytes).map_err(js_error)
}

/// The crate's version, which the npm package's version equals.
/// Hex sha256, for pages served where `crypto.subtle` is unavailable (plain http). In both
/// modules: the core's pages check their downloaded data with it too.
#[wasm_bindgen(js_name = sha256Hex)]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[wasm_bindgen(typescript_custom_section)]
const SHARED_TYPESCRIPT_TYPES: &str = r#"
/** Row-major float32 values with their shape. */
export interface EmbeddingMatrix { rows: number; cols: number; data: Float32Array; }
"#;

#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// An options object read key by key, so a bad value is reported with its key.
pub(crate) struct Options {
    object: JsValue,
    what: &'static str,
}

impl Options {
    /// Options that may be left out (`undefined`/`null` = all defaults).
    pub(crate) fn optional(
        value: JsValue,
        known: &[&str],
        what: &'static str,
    ) -> Result<Options, JsError> {
        if value.is_undefined() || value.is_null() {
            return Ok(Options {
                object: js_sys::Object::new().into(),
                what,
            });
        }
        reject_unknown_keys(&value, known, what)?;
        Ok(Options {
            object: value,
            what,
        })
    }

    /// Options that must be given; `hint` says what at least.
    pub(crate) fn required(
        value: JsValue,
        known: &[&str],
        what: &'static str,
        hint: &str,
    ) -> Result<Options, JsError> {
        if value.is_undefined() || value.is_null() {
            return Err(JsError::new(&format!("{what} are required: {hint}")));
        }
        Options::optional(value, known, what)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, JsError> {
        let value = js_sys::Reflect::get(&self.object, &JsValue::from_str(key))
            .map_err(|_| JsError::new(&format!("cannot read {} key {key:?}", self.what)))?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        serde_wasm_bindgen::from_value(value)
            .map(Some)
            .map_err(|e| JsError::new(&format!("options.{key}: {e}")))
    }

    /// The raw value of `key` (undefined when absent).
    pub(crate) fn raw(&self, key: &str) -> Result<JsValue, JsError> {
        js_sys::Reflect::get(&self.object, &JsValue::from_str(key))
            .map_err(|_| JsError::new(&format!("cannot read {} key {key:?}", self.what)))
    }
}

/// Sets `key` on a result object.
pub(crate) fn set(object: &JsValue, key: &str, value: &JsValue) -> Result<(), JsError> {
    js_sys::Reflect::set(object, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| JsError::new("could not build the result object"))
}

/// `onProgress(done, total)` as the core's progress callback (nothing when not given). A
/// throwing callback must not stop the work: its error is dropped.
pub(crate) fn progress_reporter(on_progress: Option<js_sys::Function>) -> impl FnMut(usize, usize) {
    move |done, total| {
        if let Some(f) = &on_progress {
            let _ = f.call2(
                &JsValue::NULL,
                &JsValue::from(done as f64),
                &JsValue::from(total as f64),
            );
        }
    }
}

pub(crate) fn f32_array(values: &[f32]) -> JsValue {
    js_sys::Float32Array::from(values).into()
}
