//! What the unit tests of latentlab's replacement ops (`attention.rs`, `depthwise.rs`,
//! `packed.rs`, `pointwise.rs`) share.

/// `len` values in [-1, 1], fixed by `seed`, spread enough that a misplaced one shows.
pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// `got` against `want`, value by value within 1e-5 (float-order noise), naming `what`.
pub(crate) fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5, "{what} at {i}: {g} vs {w}");
    }
}

/// `y` clamped as an ONNX ReLU6-style Clip declutters: a Max by `floor`, then a Min by
/// `ceiling`, both scalars broadcast to y's rank 4.
pub(crate) fn wire_clamp(
    model: &mut tract_onnx::prelude::TypedModel,
    y: tract_onnx::prelude::OutletId,
    (floor, ceiling): (f32, f32),
) -> tract_onnx::prelude::TractResult<tract_onnx::prelude::OutletId> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::ops::math::{max, min};
    let floor = model.add_const("floor", tensor0(floor).broadcast_into_rank(4)?)?;
    let y = model.wire_node("max", max(), &[y, floor])?[0];
    let ceiling = model.add_const("ceiling", tensor0(ceiling).broadcast_into_rank(4)?)?;
    Ok(model.wire_node("min", min(), &[y, ceiling])?[0])
}
