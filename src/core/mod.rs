//! Pure Rust: the reference implementations and the CPU path of every capability.
//! Nothing here knows wasm-bindgen, wgpu or tract; the facades convert at their edge.

pub mod align;
pub mod budget;
pub mod collapse;
pub mod elicit;
pub mod index;
pub mod lm;
pub mod matrix;
pub mod ot;
pub(crate) mod par;
pub mod pca;
pub mod plan;
pub mod repo;
pub mod search;
pub mod sketch;
pub mod stats;
pub mod steer;
pub mod tiny;
pub mod xrm;
