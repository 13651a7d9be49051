//! latentlab: ICML 2024 ideas on the user's own device.
//!
//! - [`core`]: pure Rust reference implementations (no wasm, GPU or ONNX types).
//! - [`encode`]: ONNX encoders (the only module that knows tract and tokenizers).
//! - [`gpu`]: WGSL compute through wgpu (Vulkan/GL natively, WebGPU in the browser), the only
//!   module that knows wgpu.
//! - [`npy`] (native only): `.npy` bytes → matrices and labels, for the CLI.
//! - `wasm` (wasm32 only): the thin wasm-bindgen facade that the npm package exports, built
//!   twice: the core module (feature `core-api`) and the models module (feature `models`:
//!   `encode`, the language model and the labs on it).
//!
//! The README's Architecture section is the map; keep the two in step.

pub mod core;
#[cfg(feature = "models")]
pub mod encode;
pub mod gpu;
pub mod lm;
#[cfg(not(target_arch = "wasm32"))]
pub mod npy;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
