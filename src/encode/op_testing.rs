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
