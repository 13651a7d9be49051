//! Optimal transport, CPU reference: log-domain Sinkhorn (balanced and unbalanced),
//! multi-marginal Sinkhorn, and the M3G loss of Piran et al. (ICML 2024) with its gradient.
//!
//! Plain f32 slices with explicit shapes (row-major) in, plain structs out (serde
//! `Serialize`, keys `reg_ot_cost`, `ent_reg_cost`, `n_iters`, `converged`, `m3g`).
//! Conventions, defaults and error definitions follow OTT-JAX (`ott.solvers.linear.sinkhorn`,
//! `ott.experimental.mmsinkhorn`); `tests/ot_conformance.rs` checks them against fixtures
//! made with OTT-JAX and POT (`scripts/fixtures/make_ot_fixtures.py`). A future GPU path must
//! reproduce these loops: every update is a per-row streaming log-sum-exp over costs
//! computed on the fly.
//!
//! - `sinkhorn.rs` — two marginals: [`sinkhorn`] over a [`Geometry`].
//! - `multi.rs` — k marginals: [`multi_sinkhorn`], with a guard on the tensor size.
//! - `m3g.rs` — the matching gap [`m3g`] and its gradient.
//! - `cost.rs` — ground costs ([`CostFn`]) and point clouds ([`Points`]).
//! - `error.rs` — [`OtError`], one variant per kind of bad input.

mod cost;
mod error;
mod lse;
pub(crate) mod m3g;
pub(crate) mod multi;
pub(crate) mod sinkhorn;

pub use cost::{CostFn, Points, COSINE_RIDGE, MASS_TOLERANCE};
pub use error::OtError;
pub use m3g::{m3g, M3gOutput};
pub use multi::{
    multi_sinkhorn, MultiSinkhornOptions, MultiSinkhornOutput, DEFAULT_MAX_TENSOR_ENTRIES,
};
pub use sinkhorn::{
    rho, sinkhorn, Epsilon, Geometry, SinkhornOptions, SinkhornOutput, COST_CACHE_ENTRIES,
    DEFAULT_EPSILON_SCALE,
};
