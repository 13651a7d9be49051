//! 1×1 convolutions over channels-first planes (`IHW,OI->OHW` once decluttered), natively on x86-64
//! AVX2 and AVX-512 machines: `out[o, p] = bias[o] + Σ_i W[o, i] · x[i, p]`, then an optional clamp
//! (ReLU6), as one op.
//!
//! Why: in EfficientNet-Lite0 at one picture on an AVX2 Zen 3 these products were ~33% of a
//! run in tract's kernels and another ~9% packing the activations for them on every call
//! (perf, 2026-12-07). Here the activations are read where they are: a register tile of 6
//! output channels × 16 positions broadcasts 6 weights and loads 16 positions of one input
//! channel per step (the positions of a channel are contiguous in NCHW), the bias is where
//! the sums start and the clamp is applied as they are stored. With AVX-512 the tile is 8
//! output channels × 32 positions, and a last, narrower block of positions is read and written
//! through masks instead of a padded copy. On small planes (14 × 14 and under) AVX-512 turns
//! the tile around: 7 positions × 48 output channels, registers along the channels, weights
//! packed once in blocks of 48 and activations broadcast, the sums transposed back to rows of
//! positions as they are stored (`channel_tile_avx512`): 49 and 196 positions are whole
//! multiples of 7, where the position tile computed 64 and 208. Next to a depthwise
//! convolution that tile reads or writes the activations channels innermost instead, in blocks
//! of 16, and stores its registers as they are (`channels_innermost`).
//!
//! Arithmetic: per output value the bias, then the input channels in order, one fused
//! multiply-add each, then the clamp: float-order noise against tract (which adds the bias
//! after the sum), bounded by the conformance tests against onnxruntime. A value does not
//! depend on the tiles or threads around it.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;

use super::depthwise::{first_lanes, transpose_16x16};
use super::following::{
    constant_operand, following_clamp, nodes_of, only_successor, replace_chain, Clamp,
};

/// The register tile this processor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tile {
    /// 6 output channels × 16 positions: 6 × 2 accumulators, two input registers and a
    /// broadcast of AVX2's 16.
    Avx2,
    /// 8 output channels × 32 positions: 8 × 2 accumulators of AVX-512's 32. Eight, not the
    /// twelve the registers would hold: EfficientNet's channel counts (16 … 1280) are all
    /// multiples of 8, most not of 12.
    Avx512,
}

impl Tile {
    /// The widest tile this processor runs, if any.
    pub(super) fn detect() -> Option<Tile> {
        Tile::available().last().copied()
    }

    /// Every tile this processor runs, narrowest first.
    pub(super) fn available() -> Vec<Tile> {
        let mut tiles = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            tiles.push(Tile::Avx2);
            if std::arch::is_x86_feature_detected!("avx512f") {
                tiles.push(Tile::Avx512);
            }
        }
        tiles
    }

    fn rows(self) -> usize {
        match self {
            Tile::Avx2 => 6,
            Tile::Avx512 => 8,
        }
    }

    fn cols(self) -> usize {
        match self {
            Tile::Avx2 => AVX2_COLS,
            Tile::Avx512 => 32,
        }
    }
}

/// Positions of one AVX2 tile: two registers.
const AVX2_COLS: usize = 16;

#[derive(Debug, PartialEq)]
struct Weights {
    /// Along positions [outputs, inputs], row-major, and the outputs' biases; along channels
    /// both as `pack_channel_blocks` lays them out.
    values: Vec<f32>,
    bias: Vec<f32>,
    outputs: usize,
    inputs: usize,
    along: Along,
}

/// Which way a tile's registers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Along {
    /// Each register 16 (AVX2: 8) positions of one output channel; weights broadcast.
    Positions,
    /// Each register 16 output channels of one position; activations broadcast (AVX-512).
    Channels,
}

/// Output channels of one channel tile: three AVX-512 registers.
const CHANNEL_BLOCK: usize = 48;
/// Positions of one channel tile: 7 × 3 accumulators leave registers for the weights. Every
/// plane of a 224 × 224 EfficientNet (112², 56², 28², 14², 7²) is a multiple of 7 positions.
const CHANNEL_TILE_POSITIONS: usize = 7;
/// With AVX-512, planes of at most this many positions run the channel tile. Per-op timing
/// over 64 random pictures, one thread, Zen 4 (2026-12-07), three alternating runs: the 1×1
/// layers on 7 × 7 planes 171–203 ms against 204–219 on tract's kernel (which packs the
/// activations on every call and computes 56 or 60 columns for 49), on 14 × 14 planes 165–181
/// against 178–186 on the position tile; on 28 × 28 planes 45–50 against 37–41, so those stay
/// on the position tile.
const CHANNEL_TILE_MAX_POSITIONS: usize = 196;
/// Planes of at most this many positions go over to the channel tile where the activations
/// stay channels innermost around a depthwise convolution (`channels_innermost`): on 28 × 28
/// planes the channel tile alone is slower, but with the transposes it saves on both sides of
/// the depthwise layers it comes out ahead. Per op over 64 pictures, one thread, Zen 4, two
/// alternating pairs of runs (2026-12-07): EfficientNet's 28 × 28 expand 23.3–23.6 → 19.3–20.7
/// ms and depthwise 27.8–28.6 → 17.2–22.7 ms, its two projects 19.5–20.0 → 21.3–22.7 ms.
const CHANNEL_TILE_INNERMOST_MAX_POSITIONS: usize = 784;

/// [outputs, inputs] weights and the outputs' biases as the channel tile reads them: blocks of
/// CHANNEL_BLOCK outputs, the last one's width rounded up to 16 with zeros; block b (outputs
/// 48b…) starts at 48b · inputs and holds `inputs` rows of its width, so a step over the
/// inputs reads one contiguous row of weights. The bias rounded up alike.
fn pack_channel_blocks(
    values: &[f32],
    bias: &[f32],
    outputs: usize,
    inputs: usize,
) -> (Vec<f32>, Vec<f32>) {
    let padded = outputs.next_multiple_of(16);
    let mut packed = vec![0f32; padded * inputs];
    for o0 in (0..outputs).step_by(CHANNEL_BLOCK) {
        let width = (padded - o0).min(CHANNEL_BLOCK);
        let block = &mut packed[o0 * inputs..(o0 + width) * inputs];
        for (i, row) in block.chunks_exact_mut(width).enumerate() {
            for (c, w) in row.iter_mut().enumerate().take(outputs - o0) {
                *w = values[(o0 + c) * inputs + i];
            }
        }
    }
    let mut padded_bias = bias.to_vec();
    padded_bias.resize(padded, 0.0);
    (packed, padded_bias)
}

/// Channel block b's width (a multiple of 16) and how many of its outputs are real.
fn channel_block_width(outputs: usize, b: usize) -> (usize, usize) {
    let real = (outputs - b * CHANNEL_BLOCK).min(CHANNEL_BLOCK);
    (real.next_multiple_of(16), real)
}

#[derive(Debug, Clone)]
pub(super) struct PointwiseConv {
    /// Found on this processor when the op was made.
    tile: Tile,
    weights: Arc<Weights>,
    /// Positions of a plane (H·W).
    positions: usize,
    clamp: Clamp,
    output_shape: TVec<usize>,
    /// The input, or the output, channels innermost in blocks of 16 (`Strides::of`),
    /// between this op and a depthwise one (`depthwise::keep_channels_innermost`); channel
    /// tile only.
    blocked_input: bool,
    blocked_output: bool,
}

impl PartialEq for PointwiseConv {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights)
            && self.tile == other.tile
            && self.positions == other.positions
            && self.clamp == other.clamp
            && self.output_shape == other.output_shape
            && self.blocked_input == other.blocked_input
            && self.blocked_output == other.blocked_output
    }
}

impl Eq for PointwiseConv {}

/// Where the op writes, shared by the threads (each its own positions).
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every thread writes the columns of its own blocks of positions only.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Below this many multiply-adds a convolution stays on one thread.
const MIN_SPLIT_WORK: usize = 1 << 20;

impl PointwiseConv {
    /// Blocks of `tile.cols()` positions `blocks` of `out = clamp(W · x + bias)`; `x` is
    /// inputs × positions.
    ///
    /// # Safety
    /// The tile's instructions present; `out` holds outputs × positions values, no other
    /// thread writes these blocks' columns meanwhile.
    unsafe fn run_blocks(&self, x: &[f32], blocks: std::ops::Range<usize>, out: OutPtr) {
        let w = &*self.weights;
        let (k, p) = (w.inputs, self.positions);
        let (rows, block_cols) = (self.tile.rows(), self.tile.cols());
        // Blocks in groups whose activations (k × the group's positions) stay in L2 while
        // every row tile passes over them; row tiles outside, blocks inside, so the output is
        // written as a few long runs per row tile, not a short run in each of the outputs'
        // rows per block (with k = 16 and 12,544 positions that ran at 17 G multiply-adds a
        // second, Zen 4).
        let group = (GROUP_BYTES / (4 * k.max(1) * block_cols)).max(1);
        let mut padded = Vec::new();
        let mut start = blocks.start;
        while start < blocks.end {
            let end = blocks.end.min(start + group);
            // The op's last block, when narrower than an AVX2 tile, reads its positions from a
            // padded copy (AVX-512 masks its loads instead).
            let last_col = (end - 1) * block_cols;
            let pad_last = self.tile == Tile::Avx2 && p - last_col < block_cols;
            if pad_last {
                let cols = p - last_col;
                padded.clear();
                padded.resize(k * AVX2_COLS, 0.0);
                for i in 0..k {
                    padded[i * AVX2_COLS..i * AVX2_COLS + cols]
                        .copy_from_slice(&x[i * p + last_col..i * p + last_col + cols]);
                }
            }
            let mut row = 0;
            while row < w.outputs {
                let r = rows.min(w.outputs - row);
                for block in start..end {
                    let col = block * block_cols;
                    let cols = block_cols.min(p - col);
                    let (source, ldx) = if pad_last && block == end - 1 {
                        (&padded[..], AVX2_COLS)
                    } else {
                        (&x[col..], p)
                    };
                    let args = (
                        &w.values[row * k..(row + r) * k],
                        k,
                        source,
                        ldx,
                        &w.bias[row..row + r],
                        (self.clamp.floor, self.clamp.ceiling),
                        // SAFETY: row < outputs and col < positions: inside out.
                        unsafe { out.0.add(row * p + col) },
                        p,
                        cols,
                    );
                    macro_rules! rows_dispatch {
                        ($f:ident, $($n:literal)*) => {
                            match r {
                                $($n => unsafe { $f::<$n>(args) },)*
                                _ => unreachable!("a tile of {r} rows"),
                            }
                        };
                    }
                    match self.tile {
                        Tile::Avx2 => rows_dispatch!(tile_avx2, 1 2 3 4 5 6),
                        // A last block of at most 16 positions (14 × 14's last 4, 28 × 28's
                        // last 16) as half a tile: the other half's multiply-adds were all on
                        // masked-off zeros.
                        Tile::Avx512 if cols <= 16 => {
                            rows_dispatch!(tile_avx512_half, 1 2 3 4 5 6 7 8)
                        }
                        Tile::Avx512 => rows_dispatch!(tile_avx512, 1 2 3 4 5 6 7 8),
                    }
                }
                row += r;
            }
            start = end;
        }
    }
}

impl PointwiseConv {
    /// Blocks `blocks` of CHANNEL_BLOCK output channels of `out = clamp(W · x + bias)` with
    /// the channel tile, CHANNEL_TILE_POSITIONS positions at a time; `x` is inputs × positions
    /// (channels first, or innermost where the op reads them so).
    ///
    /// # Safety
    /// AVX-512F present; `out` holds outputs × positions values,
    /// no other thread writes these blocks' rows meanwhile.
    #[target_feature(enable = "avx512f")]
    unsafe fn run_channel_blocks(&self, x: &[f32], blocks: std::ops::Range<usize>, out: OutPtr) {
        let w = &*self.weights;
        let (k, p) = (w.inputs, self.positions);
        assert!(
            x.len() >= k * p,
            "1×1 convolution: input shorter than its planes"
        );
        let (x_strides, out_strides) = (
            Strides::of(self.blocked_input, p),
            Strides::of(self.blocked_output, p),
        );
        for b in blocks {
            let o0 = b * CHANNEL_BLOCK;
            let (width, real) = channel_block_width(w.outputs, b);
            let weights = &w.values[o0 * k..(o0 + width) * k];
            let bias = &w.bias[o0..o0 + width];
            for p0 in (0..p).step_by(CHANNEL_TILE_POSITIONS) {
                let n = (p - p0).min(CHANNEL_TILE_POSITIONS);
                let args = ChannelTileArgs {
                    weights,
                    inputs: k,
                    x: &x[x_strides.at(0, p0)..],
                    x_strides,
                    bias,
                    clamp: (self.clamp.floor, self.clamp.ceiling),
                    // SAFETY: o0 < outputs and p0 < positions (o0 a multiple of 16): inside
                    // out.
                    out: unsafe { out.0.add(out_strides.at(o0, p0)) },
                    out_strides,
                    channels: real,
                };
                macro_rules! positions_dispatch {
                    ($c:literal) => {
                        match n {
                            1 => unsafe { channel_tile_avx512::<$c, 1>(args) },
                            2 => unsafe { channel_tile_avx512::<$c, 2>(args) },
                            3 => unsafe { channel_tile_avx512::<$c, 3>(args) },
                            4 => unsafe { channel_tile_avx512::<$c, 4>(args) },
                            5 => unsafe { channel_tile_avx512::<$c, 5>(args) },
                            6 => unsafe { channel_tile_avx512::<$c, 6>(args) },
                            7 => unsafe { channel_tile_avx512::<$c, 7>(args) },
                            _ => unreachable!("a channel tile of {n} positions"),
                        }
                    };
                }
                match width / 16 {
                    1 => positions_dispatch!(1),
                    2 => positions_dispatch!(2),
                    3 => positions_dispatch!(3),
                    _ => unreachable!("a channel block {width} wide"),
                }
            }
        }
    }
}

/// Bytes of activations one group of blocks reads (see `run_blocks`): a quarter of the
/// smallest L2 of the machines measured (512 KiB, Zen 3).
const GROUP_BYTES: usize = 128 << 10;

impl PointwiseConv {
    /// `tile`'s op for `out = clamp(W · x + bias)`: `values` the [outputs, inputs] weights,
    /// row-major, x inputs × `positions`, the output of `output_shape`.
    pub(super) fn new(
        tile: Tile,
        (values, bias): (Vec<f32>, Vec<f32>),
        (outputs, inputs, positions): (usize, usize, usize),
        clamp: Clamp,
        output_shape: TVec<usize>,
    ) -> PointwiseConv {
        let (along, (values, bias)) =
            if tile == Tile::Avx512 && positions <= CHANNEL_TILE_MAX_POSITIONS {
                let packed = pack_channel_blocks(&values, &bias, outputs, inputs);
                (Along::Channels, packed)
            } else {
                (Along::Positions, (values, bias))
            };
        PointwiseConv {
            tile,
            weights: Arc::new(Weights {
                values,
                bias,
                outputs,
                inputs,
                along,
            }),
            positions,
            clamp,
            output_shape,
            blocked_input: false,
            blocked_output: false,
        }
    }

    /// This op reading its input (`input`) and writing its output (`output`) channels
    /// innermost in blocks of 16 — the output's shape then [outputs / 16, positions, 16] — on
    /// the channel tile: where it runs it already, or where AVX-512's position tile runs a
    /// plane of at most CHANNEL_TILE_INNERMOST_MAX_POSITIONS; and where those channels come in
    /// whole blocks.
    pub(super) fn channels_innermost(&self, input: bool, output: bool) -> Option<PointwiseConv> {
        let w = &self.weights;
        if (input && !w.inputs.is_multiple_of(16)) || (output && !w.outputs.is_multiple_of(16)) {
            return None;
        }
        let mut op = self.clone();
        if w.along == Along::Positions {
            if self.tile != Tile::Avx512 || self.positions > CHANNEL_TILE_INNERMOST_MAX_POSITIONS {
                return None;
            }
            let (values, bias) = pack_channel_blocks(&w.values, &w.bias, w.outputs, w.inputs);
            op.weights = Arc::new(Weights {
                values,
                bias,
                outputs: w.outputs,
                inputs: w.inputs,
                along: Along::Channels,
            });
        }
        op.blocked_input |= input;
        if output && !op.blocked_output {
            op.blocked_output = true;
            op.output_shape = tvec![w.outputs / 16, self.positions, 16];
        }
        Some(op)
    }

    pub(super) fn output_shape(&self) -> &TVec<usize> {
        &self.output_shape
    }

    pub(super) fn positions(&self) -> usize {
        self.positions
    }

    /// `out = clamp(W · x + bias)`, x inputs × positions and out outputs × positions
    /// (checked), the blocks of positions (or of channels) split over tract's executor.
    pub(super) fn product(&self, x: &[f32], out: &mut [f32]) -> TractResult<()> {
        let w = &*self.weights;
        ensure!(
            x.len() == w.inputs * self.positions,
            "1×1 convolution: an input of {} values for {} channels of {} positions",
            x.len(),
            w.inputs,
            self.positions
        );
        ensure!(
            out.len() == w.outputs * self.positions,
            "1×1 convolution: an output of {} values for {} channels of {} positions",
            out.len(),
            w.outputs,
            self.positions
        );
        let out = OutPtr(out.as_mut_ptr());
        // Blocks of positions, or of output channels for the channel tile.
        let blocks = match w.along {
            Along::Positions => self.positions.div_ceil(self.tile.cols()),
            Along::Channels => w.outputs.div_ceil(CHANNEL_BLOCK),
        };
        // SAFETY (both calls): the tile's instructions were found when the op was made (along
        // channels only with AVX-512); each part writes its own blocks of out (sizes checked
        // above).
        let run = move |part| unsafe {
            match w.along {
                Along::Positions => self.run_blocks(x, part, out),
                Along::Channels => self.run_channel_blocks(x, part, out),
            }
        };
        let work = w.outputs * w.inputs * self.positions;
        match tract_linalg::multithread::current_tract_executor() {
            tract_linalg::multithread::Executor::MultiThread(pool)
                if pool.current_num_threads() > 1 && work >= MIN_SPLIT_WORK && blocks > 1 =>
            {
                let per = blocks.div_ceil(pool.current_num_threads());
                pool.scope(|scope| {
                    for start in (0..blocks).step_by(per) {
                        let part = start..blocks.min(start + per);
                        scope.spawn(move |_| run(part));
                    }
                });
            }
            _ => run(0..blocks),
        }
        Ok(())
    }
}

type TileArgs<'a> = (
    &'a [f32],
    usize,
    &'a [f32],
    usize,
    &'a [f32],
    (f32, f32),
    *mut f32,
    usize,
    usize,
);

/// R output channels × 16 positions: `w` R rows of k weights, `x` k rows (ldx apart) of at
/// least 16 positions, `bias` R values; `cols` of the tile's positions stored at `c` (rows
/// ldc apart), clamped.
///
/// # Safety
/// AVX2 and FMA present; the slices as described; c holds R rows of cols values ldc apart.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>((w, k, x, ldx, bias, clamp, c, ldc, cols): TileArgs) {
    use std::arch::x86_64::*;
    const COLS: usize = AVX2_COLS;
    debug_assert!(w.len() >= R * k && bias.len() >= R);
    debug_assert!(k == 0 || x.len() >= (k - 1) * ldx + COLS);
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    for r in 0..R {
        lo[r] = _mm256_set1_ps(bias[r]);
        hi[r] = lo[r];
    }
    let (w, x) = (w.as_ptr(), x.as_ptr());
    for i in 0..k {
        // SAFETY: i < k, so every read is inside w's R rows and x's k rows.
        unsafe {
            let x_lo = _mm256_loadu_ps(x.add(i * ldx));
            let x_hi = _mm256_loadu_ps(x.add(i * ldx + 8));
            for r in 0..R {
                let weight = _mm256_broadcast_ss(&*w.add(r * k + i));
                lo[r] = _mm256_fmadd_ps(weight, x_lo, lo[r]);
                hi[r] = _mm256_fmadd_ps(weight, x_hi, hi[r]);
            }
        }
    }
    let (floor, ceiling) = (_mm256_set1_ps(clamp.0), _mm256_set1_ps(clamp.1));
    for r in 0..R {
        let lo = _mm256_min_ps(_mm256_max_ps(lo[r], floor), ceiling);
        let hi = _mm256_min_ps(_mm256_max_ps(hi[r], floor), ceiling);
        // SAFETY: row r of the tile has cols values at c + r·ldc (the caller's contract).
        unsafe {
            let row = c.add(r * ldc);
            if cols == COLS {
                _mm256_storeu_ps(row, lo);
                _mm256_storeu_ps(row.add(8), hi);
            } else {
                let mut all = [0f32; COLS];
                _mm256_storeu_ps(all.as_mut_ptr(), lo);
                _mm256_storeu_ps(all.as_mut_ptr().add(8), hi);
                std::ptr::copy_nonoverlapping(all.as_ptr(), row, cols);
            }
        }
    }
}

/// R output channels × 32 positions, `cols` (≤ 32) of them read and stored: `w` R rows of k
/// weights, `x` k rows (ldx apart) of at least `cols` positions, `bias` R values; the
/// positions stored at `c` (rows ldc apart), clamped. Lanes past `cols` are masked off, so
/// nothing past them is read or written.
///
/// # Safety
/// AVX-512F present; the slices as described; c holds R rows of cols values ldc apart.
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize>(args: TileArgs) {
    // SAFETY: the caller's contract, which tile_avx512_wide's is.
    unsafe { tile_avx512_wide::<R, 2>(args) }
}

/// `tile_avx512` for `cols` ≤ 16: R output channels × 16 positions.
///
/// # Safety
/// As `tile_avx512`, with cols ≤ 16.
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512_half<const R: usize>(args: TileArgs) {
    // SAFETY: the caller's contract, which tile_avx512_wide's is (cols ≤ 16 = H · 16).
    unsafe { tile_avx512_wide::<R, 1>(args) }
}

/// `tile_avx512` over H registers of 16 positions (`cols` ≤ 16 · H): each value the bias, then
/// the inputs in order as fused multiply-adds, then the clamp, whatever H.
///
/// # Safety
/// As `tile_avx512`, with cols ≤ 16 · H.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_avx512_wide<const R: usize, const H: usize>(
    (w, k, x, ldx, bias, clamp, c, ldc, cols): TileArgs,
) {
    use std::arch::x86_64::*;
    debug_assert!(w.len() >= R * k && bias.len() >= R && (1..=16 * H).contains(&cols));
    debug_assert!(k == 0 || x.len() >= (k - 1) * ldx + cols);
    // Register h's lanes inside the tile's cols positions.
    let mut masks: [__mmask16; H] = [0; H];
    for (h, mask) in masks.iter_mut().enumerate() {
        *mask = first_lanes(cols.saturating_sub(16 * h));
    }
    let mut acc = [[_mm512_setzero_ps(); H]; R];
    for r in 0..R {
        acc[r] = [_mm512_set1_ps(bias[r]); H];
    }
    let (w, x) = (w.as_ptr(), x.as_ptr());
    for i in 0..k {
        // SAFETY: i < k, so every weight read is inside w's R rows; the masks enable only the
        // row's first cols positions, inside x (masked-off lanes are neither read nor fault,
        // and wrapping_add forms their address without claiming it is in bounds).
        unsafe {
            let row = x.wrapping_add(i * ldx);
            let mut xs = [_mm512_setzero_ps(); H];
            for (h, (x, &mask)) in xs.iter_mut().zip(&masks).enumerate() {
                *x = _mm512_maskz_loadu_ps(mask, row.wrapping_add(16 * h));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let weight = _mm512_set1_ps(*w.add(r * k + i));
                for (acc, &x) in acc.iter_mut().zip(&xs) {
                    *acc = _mm512_fmadd_ps(weight, x, *acc);
                }
            }
        }
    }
    let (floor, ceiling) = (_mm512_set1_ps(clamp.0), _mm512_set1_ps(clamp.1));
    for (r, acc) in acc.iter().enumerate() {
        for (h, &sum) in acc.iter().enumerate() {
            let value = _mm512_min_ps(_mm512_max_ps(sum, floor), ceiling);
            // SAFETY: row r of the tile has cols values at c + r·ldc (the caller's contract);
            // the masks store only those.
            unsafe {
                _mm512_mask_storeu_ps(c.wrapping_add(r * ldc + 16 * h), masks[h], value);
            }
        }
    }
}

/// Where channel c of position p lies from a tile's first value, P positions a plane:
/// channels first (`(c / 16)·16·P + (c % 16)·P + p`) or channels innermost in blocks of 16
/// (`(c / 16)·16·P + p·16 + c % 16`, as onnxruntime's NCHWc16).
#[derive(Clone, Copy)]
struct Strides {
    group: usize,
    lane: usize,
    position: usize,
}

impl Strides {
    fn of(channels_innermost: bool, positions: usize) -> Strides {
        if channels_innermost {
            Strides {
                group: 16 * positions,
                lane: 1,
                position: 16,
            }
        } else {
            Strides {
                group: 16 * positions,
                lane: positions,
                position: 1,
            }
        }
    }

    fn at(self, c: usize, p: usize) -> usize {
        (c / 16) * self.group + (c % 16) * self.lane + p * self.position
    }
}

/// One channel tile's operands (see `channel_tile_avx512`).
struct ChannelTileArgs<'a> {
    weights: &'a [f32],
    inputs: usize,
    x: &'a [f32],
    x_strides: Strides,
    bias: &'a [f32],
    clamp: (f32, f32),
    out: *mut f32,
    out_strides: Strides,
    channels: usize,
}

/// P positions × C·16 output channels, registers along the channels: `weights` k rows of 16·C
/// (a block of `pack_channel_blocks`), `x` the k inputs at the tile's P positions as
/// `x_strides` places them, `bias` 16·C values; the first `channels` of the tile's output
/// channels stored at `out` as `out_strides` places them, clamped. Each value is the bias, then
/// the inputs in order as fused multiply-adds, then the clamp: the bits of the position tiles.
/// Into channels-first planes the sums are turned back to rows of positions by 16 × 16
/// transposes; channels innermost, each register is stored as it is. Stores go through masks,
/// so nothing past the P positions or the real channels is written.
///
/// # Safety
/// AVX-512F present; the slices as described; `out` holds the tile's `channels` channels at P
/// positions where `out_strides` places them.
#[target_feature(enable = "avx512f")]
unsafe fn channel_tile_avx512<const C: usize, const P: usize>(args: ChannelTileArgs) {
    use std::arch::x86_64::*;
    let ChannelTileArgs {
        weights: w,
        inputs: k,
        x,
        x_strides,
        bias,
        clamp,
        out: c,
        out_strides,
        channels,
    } = args;
    debug_assert!(w.len() >= 16 * C * k && bias.len() >= 16 * C && channels <= 16 * C);
    debug_assert!(P <= 16 && (k == 0 || x.len() > x_strides.at(k - 1, P - 1)));
    let mut acc = [[_mm512_setzero_ps(); C]; P];
    for h in 0..C {
        // SAFETY: bias holds 16·C values.
        let b = unsafe { _mm512_loadu_ps(bias.as_ptr().add(16 * h)) };
        for acc in acc.iter_mut() {
            acc[h] = b;
        }
    }
    let (w, x) = (w.as_ptr(), x.as_ptr());
    for i in 0..k {
        // SAFETY: i < k, so the row of weights is inside w and the P positions inside x.
        unsafe {
            let row = w.add(i * 16 * C);
            let ws: [__m512; C] = std::array::from_fn(|h| _mm512_loadu_ps(row.add(16 * h)));
            let xs = x.add(x_strides.at(i, 0));
            for (p, acc) in acc.iter_mut().enumerate() {
                let value = _mm512_set1_ps(*xs.add(p * x_strides.position));
                for (acc, &weights) in acc.iter_mut().zip(&ws) {
                    *acc = _mm512_fmadd_ps(weights, value, *acc);
                }
            }
        }
    }
    let (floor, ceiling) = (_mm512_set1_ps(clamp.0), _mm512_set1_ps(clamp.1));
    if out_strides.position != 1 {
        // Channels innermost: each register is where its 16 channels go.
        for h in 0..C {
            let mask = first_lanes(channels.saturating_sub(16 * h));
            for (p, acc) in acc.iter().enumerate() {
                let value = _mm512_min_ps(_mm512_max_ps(acc[h], floor), ceiling);
                // SAFETY: position p of channels 16·h… is inside c (the caller's contract);
                // the mask stores only the real channels.
                unsafe {
                    _mm512_mask_storeu_ps(c.wrapping_add(out_strides.at(16 * h, p)), mask, value)
                };
            }
        }
        return;
    }
    let mask = first_lanes(P);
    for h in 0..C {
        let mut r = [_mm512_setzero_ps(); 16];
        for (r, acc) in r.iter_mut().zip(&acc) {
            *r = _mm512_min_ps(_mm512_max_ps(acc[h], floor), ceiling);
        }
        transpose_16x16(&mut r);
        for (j, &values) in r.iter().enumerate().take(channels.saturating_sub(16 * h)) {
            // SAFETY: channel 16·h + j < channels: its P positions are inside c (the caller's
            // contract); the mask stores only those.
            unsafe {
                _mm512_mask_storeu_ps(c.wrapping_add(out_strides.at(16 * h + j, 0)), mask, values)
            };
        }
    }
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "LatentlabPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.weights;
        Ok(vec![format!(
            "{} → {} channels over {} positions, clamp {:?}",
            w.inputs, w.outputs, self.positions, self.clamp
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let x = input.to_plain_array_view::<f32>()?;
        let x = x
            .as_slice()
            .context("1×1 convolution: input not contiguous")?;
        // SAFETY: f32 has no invalid bit patterns, and `product` writes every value.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut view = output.to_plain_array_view_mut::<f32>()?;
            let out = view
                .as_slice_mut()
                .context("1×1 convolution: output not contiguous")?;
            self.product(x, out)?;
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&self.output_shape)))
    }

    as_op!();
}

/// Replaces every 1×1 convolution of `model` (an EinSum of channels-first planes by a
/// constant [outputs, inputs] or [inputs, outputs] matrix, with concrete sizes), with the
/// bias Add and the Max/Min clamp that alone follow it, by `PointwiseConv`; run after
/// decluttering, before optimising. `LATENTLAB_TRACT_POINTWISE` keeps tract's.
pub(crate) fn replace_pointwise_convolutions(model: &mut TypedModel) -> TractResult<()> {
    if std::env::var_os("LATENTLAB_TRACT_POINTWISE").is_some() {
        return Ok(());
    }
    match Tile::detect() {
        Some(tile) => replace_with(model, tile),
        None => Ok(()),
    }
}

fn replace_with(model: &mut TypedModel, tile: Tile) -> TractResult<()> {
    let found = nodes_of::<EinSum>(model);
    for id in found {
        let Some((x, op, replaces)) = pointwise(model, model.node(id), tile)? else {
            continue;
        };
        replace_chain(model, &[x], op, replaces)?;
    }
    Ok(())
}

type Match = (OutletId, PointwiseConv, usize);

fn pointwise(model: &TypedModel, node: &TypedNode, tile: Tile) -> TractResult<Option<Match>> {
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let facts = [
        model.outlet_fact(node.inputs[0])?,
        model.outlet_fact(node.inputs[1])?,
    ];
    let Some(w_slot) = (0..2).find(|&s| facts[s].konst.is_some() && facts[s].rank() == 2) else {
        return Ok(None);
    };
    let x_slot = 1 - w_slot;
    if facts[x_slot].konst.is_some() || facts.iter().any(|f| f.datum_type != f32::datum_type()) {
        return Ok(None);
    }
    let (Some(x_shape), Some(out_shape)) = (
        facts[x_slot].shape.as_concrete(),
        model
            .outlet_fact(OutletId::new(node.id, 0))?
            .shape
            .as_concrete(),
    ) else {
        return Ok(None);
    };
    let (ins, outs) = einsum.axes.to_strs();
    let x: Vec<char> = ins[x_slot].chars().collect();
    let w: Vec<char> = ins[w_slot].chars().collect();
    let out: Vec<char> = outs[0].chars().collect();
    // out = [axes of size 1 added…, o, spatial…]; x = [axes of size 1 summed away…, i,
    // spatial…]; w = [o, i] or [i, o]. (The added axes leave the layout as it is: EfficientNet's
    // last 1×1 convolution is `IHW,OI->NOHW` once decluttered.)
    let added = out
        .iter()
        .enumerate()
        .take_while(|&(a, c)| out_shape[a] == 1 && !x.contains(c) && !w.contains(c))
        .count();
    let Some((&o_label, spatial)) = out[added..].split_first() else {
        return Ok(None);
    };
    if spatial.is_empty() || x.len() < spatial.len() + 1 || x[x.len() - spatial.len()..] != *spatial
    {
        return Ok(None);
    }
    let i_at = x.len() - spatial.len() - 1;
    let i_label = x[i_at];
    let transposed = match w.as_slice() {
        [a, b] if *a == o_label && *b == i_label => false,
        [a, b] if *a == i_label && *b == o_label => true,
        _ => return Ok(None),
    };
    if x[..i_at]
        .iter()
        .enumerate()
        .any(|(a, c)| x_shape[a] != 1 || out.contains(c) || w.contains(c))
        || x.iter().enumerate().any(|(a, c)| x[..a].contains(c))
        || x.contains(&o_label)
    {
        return Ok(None);
    }
    let weights = facts[w_slot]
        .konst
        .as_ref()
        .context("a constant, checked above")?;
    let (outputs, inputs) = if transposed {
        (weights.shape()[1], weights.shape()[0])
    } else {
        (weights.shape()[0], weights.shape()[1])
    };
    let positions: usize = x_shape[i_at + 1..].iter().product();
    if x_shape[i_at] != inputs || outputs == 0 || inputs == 0 || positions == 0 {
        return Ok(None);
    }
    let view = weights.to_plain_array_view::<f32>()?;
    let Some(w_values) = view.as_slice() else {
        return Ok(None);
    };
    let values = if transposed {
        (0..outputs * inputs)
            .map(|at| w_values[(at % inputs) * outputs + at / inputs])
            .collect()
    } else {
        w_values.to_vec()
    };
    let mut replaces = node.id;
    let mut bias = vec![0f32; outputs];
    // The bias: a constant of the outputs' count along the output-channel axis alone.
    if let Some(next) = only_successor(model, OutletId::new(replaces, 0))? {
        if let Some(b) = constant_operand::<Add>(model, next, replaces)? {
            let shape = b.shape();
            let aligned = out_shape.len().checked_sub(shape.len());
            let along_o = aligned.is_some_and(|skip| {
                shape.iter().enumerate().all(|(a, &d)| {
                    if a + skip == added {
                        d == outputs
                    } else {
                        d == 1
                    }
                })
            });
            if along_o && b.len() == outputs {
                let b = b.to_plain_array_view::<f32>()?;
                bias = b.iter().copied().collect();
                replaces = next.id;
            }
        }
    }
    // The clamp: a Max by a scalar, then possibly a Min by one (ReLU, ReLU6).
    let (clamp, replaces) = following_clamp(model, replaces)?;
    let op = PointwiseConv::new(
        tile,
        (values, bias),
        (outputs, inputs, positions),
        clamp,
        out_shape.into(),
    );
    Ok(Some((node.inputs[x_slot], op, replaces)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::values;
    use tract_onnx::tract_core::ops::math::{add, max, min};

    struct Case {
        formula: (&'static [&'static str], &'static str),
        x: Vec<usize>,
        w: Vec<usize>,
        /// The bias's shape, if any.
        bias: Option<Vec<usize>>,
        /// Max then Min bounds, if any (None for the Min: ReLU alone).
        clamp: Option<(f32, Option<f32>)>,
    }

    impl Case {
        /// The output and how many convolutions were replaced (by `tile`'s op; none: tract's
        /// alone).
        fn run(&self, tile: Option<Tile>, threads: usize) -> TractResult<(Vec<f32>, usize)> {
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact(&self.x))?;
            let w_len = self.w.iter().product();
            let w = model.add_const("w", Tensor::from_shape(&self.w, &values(w_len, 5))?)?;
            let axes = AxesMapping::from_strs(self.formula.0, &[self.formula.1])?;
            let op = EinSum::new(axes, f32::datum_type());
            let mut y = model.wire_node("conv", op, &[x, w])?[0];
            let rank = model.outlet_fact(y)?.rank();
            if let Some(shape) = &self.bias {
                let len = shape.iter().product();
                let b = model.add_const("bias", Tensor::from_shape(shape, &values(len, 6))?)?;
                y = model.wire_node("biased", add(), &[y, b])?[0];
            }
            if let Some((floor, ceiling)) = self.clamp {
                let f = model.add_const("floor", tensor0(floor).broadcast_into_rank(rank)?)?;
                y = model.wire_node("max", max(), &[y, f])?[0];
                if let Some(ceiling) = ceiling {
                    let c = tensor0(ceiling).broadcast_into_rank(rank)?;
                    let c = model.add_const("ceiling", c)?;
                    y = model.wire_node("min", min(), &[y, c])?[0];
                }
            }
            model.select_output_outlets(&[y])?;
            let mut model = model.into_decluttered()?;
            if let Some(tile) = tile {
                replace_with(&mut model, tile)?;
            }
            let replaced = model
                .nodes()
                .iter()
                .filter(|n| n.op_is::<PointwiseConv>())
                .count();
            let plan = model.into_optimized()?.into_runnable()?;
            let len = self.x.iter().product();
            let input = Tensor::from_shape(&self.x, &values(len, 7))?.into_tvalue();
            let run = || plan.run(tvec!(input.clone()));
            let out = if threads > 1 {
                use tract_linalg::multithread::{multithread_tract_scope, Executor};
                multithread_tract_scope(Executor::multithread(threads), run)?
            } else {
                run()?
            };
            let out = out[0].to_plain_array_view::<f32>()?;
            Ok((out.iter().copied().collect(), replaced))
        }
    }

    fn efficientnet_like() -> Case {
        // 13 outputs (AVX2: two tiles and one row; AVX-512: one and five), 9 × 8 positions
        // (AVX2: four blocks and 8 over; AVX-512: two and 8 over).
        Case {
            formula: (&["IHW", "OI"], "OHW"),
            x: vec![10, 9, 8],
            w: vec![13, 10],
            bias: Some(vec![13, 1, 1]),
            clamp: Some((0.0, Some(6.0))),
        }
    }

    #[test]
    fn gives_tracts_convolution_with_its_bias_and_clamp() -> TractResult<()> {
        let cases = [
            efficientnet_like(),
            // A batch axis of one summed away, weights [inputs, outputs], ReLU alone.
            Case {
                formula: (&["NIHW", "IO"], "OHW"),
                x: vec![1, 24, 8, 9],
                w: vec![24, 6],
                bias: None,
                clamp: Some((0.0, None)),
            },
            // Several groups of blocks (k = 64: 16 or 32 blocks a group) and a ragged last
            // block.
            Case {
                formula: (&["IHW", "OI"], "OHW"),
                x: vec![64, 41, 39],
                w: vec![13, 64],
                bias: Some(vec![13, 1, 1]),
                clamp: Some((0.0, Some(6.0))),
            },
            // An axis of size 1 added in front of the output, its bias along it too.
            Case {
                formula: (&["IHW", "OI"], "NOHW"),
                x: vec![12, 8, 10],
                w: vec![9, 12],
                bias: Some(vec![1, 9, 1, 1]),
                clamp: Some((0.0, Some(6.0))),
            },
            // No bias nor clamp; one plane of a single position.
            Case {
                formula: (&["IHW", "OI"], "OHW"),
                x: vec![5, 1, 1],
                w: vec![7, 5],
                bias: None,
                clamp: None,
            },
        ];
        let tiles = Tile::available();
        for case in cases {
            let what = format!("{:?} x {:?}", case.formula, case.x);
            let (want, none) = case.run(None, 1)?;
            assert_eq!(none, 0);
            for &tile in &tiles {
                let (got, replaced) = case.run(Some(tile), 1)?;
                assert_eq!(replaced, 1, "{what} {tile:?}");
                assert_eq!(got.len(), want.len(), "{what} {tile:?}");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-5, "{what} {tile:?} at {i}: {g} vs {w}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn threads_change_no_bit() -> TractResult<()> {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // A large plane (blocks of positions split) and, with AVX-512, a small one (blocks of
        // 48 output channels split, the last 16 wide).
        for (x, outputs) in [([64, 40, 40], 70), ([64, 14, 14], 112)] {
            let mut case = efficientnet_like();
            case.x = x.to_vec();
            case.w = vec![outputs, 64];
            case.bias = Some(vec![outputs, 1, 1]);
            for tile in Tile::available() {
                let (one, replaced) = case.run(Some(tile), 1)?;
                let (two, _) = case.run(Some(tile), 2)?;
                assert_eq!(replaced, 1, "{x:?} {tile:?}");
                assert_eq!(bits(&one), bits(&two), "{x:?} {tile:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn other_products_stay_tracts() -> TractResult<()> {
        for case in [
            // Positions not the trailing axes of the output in the input's order.
            Case {
                formula: (&["IHW", "OI"], "OWH"),
                x: vec![4, 3, 5],
                w: vec![6, 4],
                bias: None,
                clamp: None,
            },
            // Channels last.
            Case {
                formula: (&["HWI", "OI"], "HWO"),
                x: vec![3, 5, 4],
                w: vec![6, 4],
                bias: None,
                clamp: None,
            },
        ] {
            for tile in Tile::available() {
                let (_, replaced) = case.run(Some(tile), 1)?;
                assert_eq!(replaced, 0, "{:?} {tile:?}", case.formula);
            }
        }
        // A bias along the positions, not the channels: the product alone is replaced, the
        // Add stays.
        let mut case = efficientnet_like();
        case.bias = Some(vec![1, 9, 8]);
        case.clamp = None;
        let (want, _) = case.run(None, 1)?;
        for tile in Tile::available() {
            let (got, replaced) = case.run(Some(tile), 1)?;
            assert_eq!(replaced, 1, "{tile:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5, "{tile:?}");
            }
        }
        Ok(())
    }

    /// Every AVX-512 tile, half or whole, gives each value as the bias, then the inputs in
    /// order as fused multiply-adds, then the clamp: the same bits whatever the block's width.
    #[test]
    fn avx512_tiles_give_the_fused_sums_bit_for_bit() {
        if Tile::detect() != Some(Tile::Avx512) {
            return;
        }
        const R: usize = 5;
        let (k, ldx, ldc) = (37, 40, 41);
        let (w, x, bias) = (values(R * k, 1), values(k * ldx, 2), values(R, 3));
        let clamp = (-0.75, 0.5);
        let mut stored = Vec::new();
        for cols in [1, 4, 15, 16, 17, 32] {
            let mut want = vec![f32::NAN; R * ldc];
            for r in 0..R {
                for p in 0..cols {
                    let sum = (0..k).fold(bias[r], |s, i| w[r * k + i].mul_add(x[i * ldx + p], s));
                    want[r * ldc + p] = sum.max(clamp.0).min(clamp.1);
                }
            }
            let mut got = vec![f32::NAN; R * ldc];
            let args = (
                &w[..],
                k,
                &x[..],
                ldx,
                &bias[..],
                clamp,
                got.as_mut_ptr(),
                ldc,
                cols,
            );
            // SAFETY: AVX-512 detected above; w holds R rows of k, x k rows of ldx ≥ cols,
            // got R rows of ldc ≥ cols.
            unsafe {
                if cols <= 16 {
                    tile_avx512_half::<R>(args)
                } else {
                    tile_avx512::<R>(args)
                }
            };
            let same = got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{cols} columns");
            stored.extend(got.into_iter().filter(|v| !v.is_nan()));
        }
        assert!(stored.contains(&clamp.0) && stored.iter().any(|&v| v > clamp.0 && v < clamp.1));
    }

    /// The channel tile, through the op as the model runs it: every width of a last block of
    /// channels (16, 32, 48 wide, some of it padding) and of positions (1 … 7), each value the
    /// bias, then the inputs in order as fused multiply-adds, then the clamp, bit for bit.
    #[test]
    fn channel_tiles_give_the_fused_sums_bit_for_bit() -> TractResult<()> {
        if Tile::detect() != Some(Tile::Avx512) {
            return Ok(());
        }
        let k = 29;
        let clamp = Clamp {
            floor: -0.75,
            ceiling: 0.5,
        };
        for outputs in [5, 16, 40, 48, 61, 100] {
            for positions in [1, 6, 7, 13, 49] {
                let (w, bias) = (values(outputs * k, 1), values(outputs, 3));
                let x = values(k * positions, 2);
                let op = PointwiseConv::new(
                    Tile::Avx512,
                    (w.clone(), bias.clone()),
                    (outputs, k, positions),
                    clamp,
                    tvec![outputs, positions],
                );
                assert_eq!(op.weights.along, Along::Channels);
                let mut got = vec![f32::NAN; outputs * positions];
                op.product(&x, &mut got)?;
                for o in 0..outputs {
                    for p in 0..positions {
                        let sum = (0..k).fold(bias[o], |s, i| {
                            w[o * k + i].mul_add(x[i * positions + p], s)
                        });
                        let want = sum.max(clamp.floor).min(clamp.ceiling);
                        let at = o * positions + p;
                        assert_eq!(
                            got[at].to_bits(),
                            want.to_bits(),
                            "{outputs} × {positions}: {o}, {p}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn avx512_runs_planes_up_to_14_by_14_along_the_channels() {
        // Made only, not run: this processor may not have AVX-512.
        let op = |tile, positions| {
            PointwiseConv::new(
                tile,
                (values(32 * 16, 1), values(32, 2)),
                (32, 16, positions),
                Clamp::NONE,
                tvec![32, positions],
            )
        };
        for positions in [1, 49, 196] {
            let along = op(Tile::Avx512, positions).weights.along;
            assert_eq!(along, Along::Channels, "{positions}");
            let along = op(Tile::Avx2, positions).weights.along;
            assert_eq!(along, Along::Positions, "{positions}");
        }
        for positions in [197, 784, 12_544] {
            let along = op(Tile::Avx512, positions).weights.along;
            assert_eq!(along, Along::Positions, "{positions}");
        }
        // Channels innermost around a depthwise layer, planes up to 28 × 28 go over to the
        // channel tile, their weights packed as if made for it.
        for (tile, positions, over) in [
            (Tile::Avx512, 196, true),
            (Tile::Avx512, 784, true),
            (Tile::Avx512, 785, false),
            (Tile::Avx2, 49, false),
        ] {
            let innermost = op(tile, positions).channels_innermost(true, true);
            assert_eq!(innermost.is_some(), over, "{tile:?} {positions}");
            if let Some(innermost) = innermost {
                let made = op(tile, 1);
                assert_eq!(innermost.weights.values, made.weights.values);
                assert_eq!(innermost.weights.bias, made.weights.bias);
                assert_eq!(innermost.output_shape[..], [2, positions, 16]);
            }
        }
        // Channels that do not come in whole blocks of 16 stay as they are.
        let thirteen = PointwiseConv::new(
            Tile::Avx512,
            (vec![0.0; 13 * 16], vec![0.0; 13]),
            (13, 16, 49),
            Clamp::NONE,
            tvec![13, 49],
        );
        assert!(thirteen.channels_innermost(false, true).is_none());
        assert!(thirteen.channels_innermost(true, false).is_some());
    }
}
