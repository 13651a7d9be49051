//! Attention (`softmax(q·kᵀ · scale + mask) · v`), natively, as one op: tract's chain of ops
//! between the two products is replaced by this one at load.
//!
//! Why: in MiniLM at one thread on an AVX2 machine, once the linear layers ran on packed
//! weights (`packed.rs`), attention was the largest share of what was left (perf, 2026-12-07:
//! tract's two products 8%, packing their operands 2%, softmax and its max 5%, the scale, the
//! mask's Add and the moves of the heads' axis more): for a sentence of 10–30 tokens each
//! head's products are 30 × 32 × 30 multiply-adds, far below the tiles tract's kernels are
//! made for, and every step writes the batch × heads × tokens² scores out and reads them back.
//! Here each query row's scores live in a small buffer: dot products with every key, scale,
//! mask, softmax, then the weighted sum of the values written straight to the output.
//!
//! Matched in the decluttered graph: an EinSum of two activations contracting one axis (q, k;
//! batch axes shared, one query and one key axis), optionally times a scalar constant,
//! optionally plus a mask broadcast over it, a softmax over the key axis, and an EinSum of
//! that with v contracting the key axis. Anything else stays tract's.
//!
//! Arithmetic: the dot products in 8 lanes summed at the end (tract's kernels sum in their own
//! order too), the softmax with the row's maximum subtracted and `f32::exp`, then a multiply
//! and add per value: float-order noise against tract, which the conformance tests against
//! onnxruntime bound. A value depends only on its own query row, so results are the same bits
//! at any thread count.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Mul};
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

use super::following::{nodes_of, only_successor, replace_chain};

/// Where each role's axis is in one tensor: the batch axes (in the scores' batch order), and
/// the two others (q: query, depth; k: key, depth; v: key, value; output: query, value).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Axes {
    batch: TVec<usize>,
    first: usize,
    second: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct FusedAttention {
    q: Axes,
    k: Axes,
    v: Axes,
    /// The scores' axes: the mask's shape is read against these.
    scores: Axes,
    output: Axes,
    /// f32 bits of the scale (Hash and Eq for the op).
    scale: Option<u32>,
    masked: bool,
}

/// Strides of a tensor of `shape`, row-major, a broadcast (size 1) axis given stride 0 where
/// `broadcast` says so.
fn strides(shape: &[usize], broadcast: bool) -> TVec<usize> {
    let mut strides: TVec<usize> = tvec![0; shape.len()];
    let mut step = 1;
    for (axis, &dim) in shape.iter().enumerate().rev() {
        strides[axis] = if broadcast && dim == 1 { 0 } else { step };
        step *= dim;
    }
    strides
}

/// One tensor's layout for the loops: the batch strides and the two roles' strides.
#[derive(Clone, Copy, Debug)]
struct Layout<'a> {
    batch: &'a [usize],
    first: usize,
    second: usize,
}

fn layout<'a>(axes: &Axes, strides: &[usize], batch: &'a mut TVec<usize>) -> Layout<'a> {
    batch.clear();
    batch.extend(axes.batch.iter().map(|&a| strides[a]));
    Layout {
        batch,
        first: strides[axes.first],
        second: strides[axes.second],
    }
}

/// The output, written by several threads at once, each its own query rows.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every thread writes the rows of its own batch entries only.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Below this many multiply-adds attention stays on one thread.
const MIN_SPLIT_WORK: usize = 1 << 18;

struct Problem<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    mask: Option<&'a [f32]>,
    q_at: Layout<'a>,
    k_at: Layout<'a>,
    v_at: Layout<'a>,
    mask_at: Layout<'a>,
    out_at: Layout<'a>,
    batch_dims: &'a [usize],
    queries: usize,
    keys: usize,
    depth: usize,
    values: usize,
    scale: f32,
}

impl Problem<'_> {
    /// Batch entries `entries` (the batch axes flattened, row-major) into `out`.
    fn run(&self, entries: std::ops::Range<usize>, out: OutPtr) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has AVX2 and FMA (checked just above); the caller's
            // contract is passed on.
            return unsafe { self.run_avx2(entries, out) };
        }
        self.run_portable(entries, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, entries: std::ops::Range<usize>, out: OutPtr) {
        self.run_portable(entries, out)
    }

    #[inline(always)]
    fn run_portable(&self, entries: std::ops::Range<usize>, out: OutPtr) {
        let mut scores = vec![0f32; self.keys];
        let mut row = vec![0f32; self.values];
        let mut q_gathered = vec![0f32; self.depth];
        for entry in entries {
            // The entry's offset in every tensor.
            let (mut q0, mut k0, mut v0, mut m0, mut o0) = (0, 0, 0, 0, 0);
            let mut rest = entry;
            for axis in (0..self.batch_dims.len()).rev() {
                let index = rest % self.batch_dims[axis];
                rest /= self.batch_dims[axis];
                q0 += index * self.q_at.batch[axis];
                k0 += index * self.k_at.batch[axis];
                v0 += index * self.v_at.batch[axis];
                m0 += index * self.mask_at.batch[axis];
                o0 += index * self.out_at.batch[axis];
            }
            for i in 0..self.queries {
                let q = q0 + i * self.q_at.first;
                let q_row: &[f32] = if self.q_at.second == 1 {
                    &self.q[q..q + self.depth]
                } else {
                    for (d, x) in q_gathered.iter_mut().enumerate() {
                        *x = self.q[q + d * self.q_at.second];
                    }
                    &q_gathered
                };
                let mut max = f32::NEG_INFINITY;
                for (j, score) in scores.iter_mut().enumerate() {
                    let k = k0 + j * self.k_at.first;
                    let mut s = if self.k_at.second == 1 {
                        dot(q_row, &self.k[k..k + self.depth])
                    } else {
                        q_row
                            .iter()
                            .enumerate()
                            .map(|(d, &x)| x * self.k[k + d * self.k_at.second])
                            .sum()
                    } * self.scale;
                    if let Some(mask) = self.mask {
                        s += mask[m0 + i * self.mask_at.first + j * self.mask_at.second];
                    }
                    max = max.max(s);
                    *score = s;
                }
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    // Below e^-88 a value is 0 in f32 anyway; masked keys (-10000) would take
                    // expf's slow underflow path every time.
                    let x = *s - max;
                    *s = if x < -88.0 { 0.0 } else { x.exp() };
                    total += *s;
                }
                let norm = 1.0 / total;
                row.fill(0.0);
                for (j, &p) in scores.iter().enumerate() {
                    let p = p * norm;
                    let v = v0 + j * self.v_at.first;
                    if self.v_at.second == 1 {
                        for (acc, &x) in row.iter_mut().zip(&self.v[v..v + self.values]) {
                            *acc += p * x;
                        }
                    } else {
                        for (e, acc) in row.iter_mut().enumerate() {
                            *acc += p * self.v[v + e * self.v_at.second];
                        }
                    }
                }
                let o = o0 + i * self.out_at.first;
                // SAFETY: o + e·stride for every e < values lies in the output (the shapes
                // were checked), in a row of this caller's batch entries.
                if self.out_at.second == 1 {
                    unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), out.0.add(o), row.len()) };
                } else {
                    for (e, &x) in row.iter().enumerate() {
                        unsafe { *out.0.add(o + e * self.out_at.second) = x };
                    }
                }
            }
        }
    }
}

/// `a · b` in 8 lanes, summed at the end (a single running sum would not vectorise).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

impl Op for FusedAttention {
    fn name(&self) -> StaticName {
        "LatentlabAttention".into()
    }

    op_as_typed_op!();
}

impl EvalOp for FusedAttention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 3 + usize::from(self.masked));
        let views = inputs
            .iter()
            .map(|t| t.to_plain_array_view::<f32>())
            .collect::<TractResult<Vec<_>>>()?;
        let slices = views
            .iter()
            .map(|v| v.as_slice().context("attention: an input not contiguous"))
            .collect::<TractResult<Vec<_>>>()?;
        let (q_shape, k_shape, v_shape) = (inputs[0].shape(), inputs[1].shape(), inputs[2].shape());
        let batch_dims: TVec<usize> = self.q.batch.iter().map(|&a| q_shape[a]).collect();
        let (queries, depth) = (q_shape[self.q.first], q_shape[self.q.second]);
        let (keys, values) = (k_shape[self.k.first], v_shape[self.v.second]);
        let same = |shape: &[usize], axes: &Axes| {
            axes.batch
                .iter()
                .zip(&batch_dims)
                .all(|(&a, &d)| shape[a] == d)
        };
        ensure!(
            same(k_shape, &self.k)
                && same(v_shape, &self.v)
                && k_shape[self.k.second] == depth
                && v_shape[self.v.first] == keys,
            "attention: q {q_shape:?}, k {k_shape:?} and v {v_shape:?} do not fit"
        );
        let mut out_shape: TVec<usize> = tvec![0; batch_dims.len() + 2];
        for (&a, &d) in self.output.batch.iter().zip(&batch_dims) {
            out_shape[a] = d;
        }
        out_shape[self.output.first] = queries;
        out_shape[self.output.second] = values;
        let mask_shape = if self.masked {
            let shape = inputs[3].shape();
            let fits = |axis: usize, dim: usize| shape[axis] == dim || shape[axis] == 1;
            ensure!(
                shape.len() == batch_dims.len() + 2
                    && self
                        .scores
                        .batch
                        .iter()
                        .zip(&batch_dims)
                        .all(|(&a, &d)| fits(a, d))
                    && fits(self.scores.first, queries)
                    && fits(self.scores.second, keys),
                "attention: a mask of shape {shape:?} for {queries} queries and {keys} keys"
            );
            shape.to_vec()
        } else {
            vec![1; batch_dims.len() + 2]
        };
        // SAFETY: f32 has no invalid bit patterns, and every value is written: each query
        // row of each batch entry, every value of it.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&out_shape)? };
        let (mut qb, mut kb, mut vb, mut mb, mut ob) = Default::default();
        let (q_strides, k_strides, v_strides) = (
            strides(q_shape, false),
            strides(k_shape, false),
            strides(v_shape, false),
        );
        let (mask_strides, out_strides) = (strides(&mask_shape, true), strides(&out_shape, false));
        let problem = Problem {
            q: slices[0],
            k: slices[1],
            v: slices[2],
            mask: slices.get(3).copied(),
            q_at: layout(&self.q, &q_strides, &mut qb),
            k_at: layout(&self.k, &k_strides, &mut kb),
            v_at: layout(&self.v, &v_strides, &mut vb),
            mask_at: layout(&self.scores, &mask_strides, &mut mb),
            out_at: layout(&self.output, &out_strides, &mut ob),
            batch_dims: &batch_dims,
            queries,
            keys,
            depth,
            values,
            scale: self.scale.map(f32::from_bits).unwrap_or(1.0),
        };
        let entries: usize = batch_dims.iter().product();
        let out = {
            let mut view = output.to_plain_array_view_mut::<f32>()?;
            let slice = view
                .as_slice_mut()
                .context("attention: output not contiguous")?;
            OutPtr(slice.as_mut_ptr())
        };
        if queries > 0 && values > 0 {
            ensure!(keys > 0, "attention over no keys");
            let work = entries * queries * keys * (depth + values);
            match tract_linalg::multithread::current_tract_executor() {
                tract_linalg::multithread::Executor::MultiThread(pool)
                    if pool.current_num_threads() > 1 && work >= MIN_SPLIT_WORK && entries > 1 =>
                {
                    let per = entries.div_ceil(pool.current_num_threads());
                    let problem = &problem;
                    pool.scope(|scope| {
                        for start in (0..entries).step_by(per) {
                            let part = start..entries.min(start + per);
                            scope.spawn(move |_| problem.run(part, out));
                        }
                    });
                }
                _ => problem.run(0..entries, out),
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for FusedAttention {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (q, v) = (&inputs[0].shape, &inputs[2].shape);
        let mut shape: TVec<TDim> = tvec![TDim::from(0); self.output.batch.len() + 2];
        for (&o, &a) in self.output.batch.iter().zip(&self.q.batch) {
            shape[o] = q[a].clone();
        }
        shape[self.output.first] = q[self.q.first].clone();
        shape[self.output.second] = v[self.v.second].clone();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// The EinSum's labels: inputs' and output's.
fn labels(einsum: &EinSum) -> (Vec<Vec<char>>, Vec<char>) {
    let (inputs, outputs) = einsum.axes.to_strs();
    (
        inputs.iter().map(|s| s.chars().collect()).collect(),
        outputs[0].chars().collect(),
    )
}

fn position(labels: &[char], label: char) -> Option<usize> {
    labels.iter().position(|&c| c == label)
}

/// A matched attention: the op, its inputs (q, k, v, and the mask if any) and the node whose
/// output it replaces.
struct Found {
    op: FusedAttention,
    inputs: TVec<OutletId>,
    replaces: usize,
}

fn is_f32(model: &TypedModel, outlet: OutletId) -> TractResult<bool> {
    Ok(model.outlet_fact(outlet)?.datum_type == f32::datum_type())
}

/// The attention starting at the EinSum `first`, if the nodes after it are one.
fn attention_at(model: &TypedModel, first: &TypedNode) -> TractResult<Option<Found>> {
    let Some(einsum) = first.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || first.inputs.len() != 2
        || !is_f32(model, first.inputs[0])?
        || !is_f32(model, first.inputs[1])?
        || first.inputs.iter().any(|&i| {
            model
                .outlet_fact(i)
                .map(|f| f.konst.is_some())
                .unwrap_or(true)
        })
    {
        return Ok(None);
    }
    let (ins, s) = labels(einsum);
    let (q, k) = (&ins[0], &ins[1]);
    let distinct = |l: &[char]| l.iter().enumerate().all(|(i, c)| !l[..i].contains(c));
    if !distinct(q) || !distinct(k) || !distinct(&s) {
        return Ok(None);
    }
    // Roles: batch in q, k and the scores; the query axis in q and the scores; the key axis in
    // k and the scores; the depth in q and k only.
    let batch: Vec<char> = s
        .iter()
        .copied()
        .filter(|c| q.contains(c) && k.contains(c))
        .collect();
    let query: Vec<char> = s
        .iter()
        .copied()
        .filter(|c| q.contains(c) && !k.contains(c))
        .collect();
    let key: Vec<char> = s
        .iter()
        .copied()
        .filter(|c| k.contains(c) && !q.contains(c))
        .collect();
    let depth: Vec<char> = q
        .iter()
        .copied()
        .filter(|c| k.contains(c) && !s.contains(c))
        .collect();
    let ([m], [n], [d]) = (query.as_slice(), key.as_slice(), depth.as_slice()) else {
        return Ok(None);
    };
    if q.len() != batch.len() + 2 || k.len() != batch.len() + 2 || s.len() != batch.len() + 2 {
        return Ok(None);
    }
    let axes_in = |labels: &[char], first: char, second: char| -> Option<Axes> {
        Some(Axes {
            batch: batch
                .iter()
                .map(|&b| position(labels, b))
                .collect::<Option<_>>()?,
            first: position(labels, first)?,
            second: position(labels, second)?,
        })
    };
    let (Some(q_axes), Some(k_axes), Some(s_axes)) =
        (axes_in(q, *m, *d), axes_in(k, *n, *d), axes_in(&s, *m, *n))
    else {
        return Ok(None);
    };

    // Optionally times a scalar, optionally plus a mask, then the softmax over the keys.
    let mut at = OutletId::new(first.id, 0);
    let mut scale = None;
    let mut mask = None;
    let mut node = match only_successor(model, at)? {
        Some(node) => node,
        None => return Ok(None),
    };
    if let Some(bin) = node.op_as::<TypedBinOp>().filter(|b| b.0.is::<Mul>()) {
        let other = node.inputs.iter().find(|&&i| i != at).copied();
        let konst = match other {
            Some(o) if node.inputs.len() == 2 => model.outlet_fact(o)?.konst.clone(),
            _ => None,
        };
        let Some(konst) = konst.filter(|c| c.len() == 1 && c.datum_type() == f32::datum_type())
        else {
            return Ok(None);
        };
        if bin.1.is_some_and(|dt| dt != f32::datum_type())
            || model.outlet_fact(OutletId::new(node.id, 0))?.shape != model.outlet_fact(at)?.shape
        {
            return Ok(None);
        }
        scale = Some(konst.cast_to_scalar::<f32>()?.to_bits());
        at = OutletId::new(node.id, 0);
        node = match only_successor(model, at)? {
            Some(node) => node,
            None => return Ok(None),
        };
    }
    if let Some(bin) = node.op_as::<TypedBinOp>().filter(|b| b.0.is::<Add>()) {
        let Some(other) = node.inputs.iter().find(|&&i| i != at).copied() else {
            return Ok(None);
        };
        let fact = model.outlet_fact(other)?;
        if node.inputs.len() != 2
            || bin.1.is_some_and(|dt| dt != f32::datum_type())
            || fact.datum_type != f32::datum_type()
            || fact.rank() != s.len()
            || model.outlet_fact(OutletId::new(node.id, 0))?.shape != model.outlet_fact(at)?.shape
        {
            return Ok(None);
        }
        mask = Some(other);
        at = OutletId::new(node.id, 0);
        node = match only_successor(model, at)? {
            Some(node) => node,
            None => return Ok(None),
        };
    }
    let Some(softmax) = node.op_as::<Softmax>() else {
        return Ok(None);
    };
    if softmax.kind != SoftmaxKind::Softmax
        || softmax.quant_output_dt.is_some()
        || *softmax.axes != [s_axes.second]
        || !is_f32(model, at)?
    {
        return Ok(None);
    }
    let probabilities = OutletId::new(node.id, 0);

    // Then the product with v over the key axis.
    let Some(second) = only_successor(model, probabilities)? else {
        return Ok(None);
    };
    let Some(einsum) = second.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || second.inputs.len() != 2
        || second.inputs[0] == second.inputs[1]
    {
        return Ok(None);
    }
    let (ins, o) = labels(einsum);
    let p_slot = usize::from(second.inputs[1] == probabilities);
    let (p, v) = (&ins[p_slot], &ins[1 - p_slot]);
    let v_outlet = second.inputs[1 - p_slot];
    if !is_f32(model, v_outlet)? || !distinct(v) || !distinct(&o) || p.len() != s.len() {
        return Ok(None);
    }
    // p's labels stand for the scores' axes, position by position.
    let (p_query, p_key) = (p[s_axes.first], p[s_axes.second]);
    let p_batch: Vec<char> = s_axes.batch.iter().map(|&a| p[a]).collect();
    let values: Vec<char> = v
        .iter()
        .copied()
        .filter(|c| !p.contains(c) && o.contains(c))
        .collect();
    let [e] = values.as_slice() else {
        return Ok(None);
    };
    if o.contains(&p_key)
        || v.len() != batch.len() + 2
        || o.len() != batch.len() + 2
        || !o.contains(&p_query)
        || v.contains(&p_query)
    {
        return Ok(None);
    }
    let find = |labels: &[char], first: char, second: char| -> Option<Axes> {
        Some(Axes {
            batch: p_batch
                .iter()
                .map(|&b| position(labels, b))
                .collect::<Option<_>>()?,
            first: position(labels, first)?,
            second: position(labels, second)?,
        })
    };
    let (Some(v_axes), Some(o_axes)) = (find(v, p_key, *e), find(&o, p_query, *e)) else {
        return Ok(None);
    };
    let mut inputs = tvec![first.inputs[0], first.inputs[1], v_outlet];
    inputs.extend(mask);
    Ok(Some(Found {
        op: FusedAttention {
            q: q_axes,
            k: k_axes,
            v: v_axes,
            scores: s_axes,
            output: o_axes,
            scale,
            masked: mask.is_some(),
        },
        inputs,
        replaces: second.id,
    }))
}

/// Replaces every attention of `model` (see the module's comment) by `FusedAttention`; run
/// after decluttering, before optimising. `LATENTLAB_TRACT_ATTENTION` keeps tract's ops, to
/// compare the two.
pub(crate) fn fuse_attention(model: &mut TypedModel) -> TractResult<()> {
    if std::env::var_os("LATENTLAB_TRACT_ATTENTION").is_some() {
        return Ok(());
    }
    let firsts = nodes_of::<EinSum>(model);
    for id in firsts {
        // Matched now: an earlier replacement may have rewired the graph.
        let Some(found) = attention_at(model, model.node(id))? else {
            continue;
        };
        replace_chain(model, &found.inputs, found.op, found.replaces)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::values;

    /// One attention: q, k, v (and the mask) as sources of the given shapes, the two products
    /// by the given formulas, the scale and mask if given, a softmax over `softmax_axis` of
    /// the scores. Returns the model before any replacement.
    struct Case {
        q: Vec<usize>,
        k: Vec<usize>,
        v: Vec<usize>,
        scores: (&'static [&'static str], &'static str),
        output: (&'static [&'static str], &'static str),
        softmax_axis: usize,
        scale: Option<f32>,
        mask: Option<Vec<usize>>,
        kind: SoftmaxKind,
        /// v the second product's first operand.
        v_first: bool,
    }

    impl Case {
        fn model(&self) -> TractResult<TypedModel> {
            let mut model = TypedModel::default();
            let q = model.add_source("q", f32::fact(&self.q))?;
            let k = model.add_source("k", f32::fact(&self.k))?;
            let v = model.add_source("v", f32::fact(&self.v))?;
            let axes = AxesMapping::from_strs(self.scores.0, &[self.scores.1])?;
            let op = EinSum::new(axes, f32::datum_type());
            let mut s = model.wire_node("scores", op, &[q, k])?[0];
            if let Some(scale) = self.scale {
                let rank = model.outlet_fact(s)?.rank();
                let c = tensor0(scale).broadcast_into_rank(rank)?;
                let c = model.add_const("scale", c)?;
                s = model.wire_node("scaled", tract_onnx::tract_core::ops::math::mul(), &[s, c])?
                    [0];
            }
            if let Some(shape) = &self.mask {
                let mask = model.add_source("mask", f32::fact(shape))?;
                s = model.wire_node(
                    "masked",
                    tract_onnx::tract_core::ops::math::add(),
                    &[s, mask],
                )?[0];
            }
            let softmax = Softmax::new(tvec!(self.softmax_axis), None, self.kind);
            let p = model.wire_node("softmax", softmax, &[s])?[0];
            let axes = AxesMapping::from_strs(self.output.0, &[self.output.1])?;
            let inputs = if self.v_first { [v, p] } else { [p, v] };
            let o = model.wire_node("output", EinSum::new(axes, f32::datum_type()), &inputs)?;
            model.select_output_outlets(&o)?;
            Ok(model)
        }

        fn inputs(&self) -> TractResult<TVec<TValue>> {
            let mut shapes = vec![&self.q, &self.k, &self.v];
            shapes.extend(&self.mask);
            shapes
                .iter()
                .enumerate()
                .map(|(i, shape)| {
                    let len = shape.iter().product();
                    Ok(Tensor::from_shape(shape, &values(len, i as u32 + 3))?.into_tvalue())
                })
                .collect()
        }

        /// The output and how many attentions were fused.
        fn run(&self, fuse: bool, threads: usize) -> TractResult<(Vec<f32>, usize)> {
            let mut model = self.model()?.into_decluttered()?;
            if fuse {
                fuse_attention(&mut model)?;
            }
            let fused = model
                .nodes()
                .iter()
                .filter(|n| n.op_is::<FusedAttention>())
                .count();
            let plan = model.into_optimized()?.into_runnable()?;
            let inputs = self.inputs()?;
            let run = || plan.run(inputs.clone());
            let out = if threads > 1 {
                use tract_linalg::multithread::{multithread_tract_scope, Executor};
                multithread_tract_scope(Executor::multithread(threads), run)?
            } else {
                run()?
            };
            let out = out[0].to_plain_array_view::<f32>()?;
            Ok((out.iter().copied().collect(), fused))
        }
    }

    /// MiniLM's: q, k, v [batch, tokens, heads, depth], a mask [batch, 1, 1, tokens].
    fn minilm() -> Case {
        Case {
            q: vec![2, 7, 3, 11],
            k: vec![2, 7, 3, 11],
            v: vec![2, 7, 3, 11],
            scores: (&["ambk", "anbk"], "abmn"),
            output: (&["abmk", "akbn"], "ambn"),
            softmax_axis: 3,
            scale: Some(0.3),
            mask: Some(vec![2, 1, 1, 7]),
            kind: SoftmaxKind::Softmax,
            v_first: false,
        }
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5, "{what} at {i}: {g} vs {w}");
        }
    }

    #[test]
    fn gives_tracts_attention_for_every_layout() -> TractResult<()> {
        let cases = [
            minilm(),
            // No scale, no mask; heads first; keys fewer than queries.
            Case {
                q: vec![3, 5, 8],
                k: vec![3, 4, 8],
                v: vec![3, 4, 6],
                scores: (&["hmd", "hnd"], "hmn"),
                output: (&["hmn", "hne"], "hme"),
                softmax_axis: 2,
                scale: None,
                mask: None,
                kind: SoftmaxKind::Softmax,
                v_first: false,
            },
            // k given transposed, v first in the second product, a full mask, depth 20 (past
            // one 8-lane block, with a tail).
            Case {
                q: vec![2, 6, 20],
                k: vec![2, 20, 9],
                v: vec![2, 9, 5],
                scores: (&["bmd", "bdn"], "bmn"),
                output: (&["bne", "bmn"], "bem"),
                softmax_axis: 2,
                scale: Some(0.125),
                mask: Some(vec![2, 6, 9]),
                kind: SoftmaxKind::Softmax,
                v_first: true,
            },
        ];
        for case in cases {
            let what = format!("{:?} {:?}", case.scores, case.output);
            let (want, none) = case.run(false, 1)?;
            let (got, fused) = case.run(true, 1)?;
            assert_eq!((none, fused), (0, 1), "{what}");
            assert_close(&got, &want, &what);
        }
        Ok(())
    }

    #[test]
    fn threads_change_no_bit() -> TractResult<()> {
        let mut case = minilm();
        // Enough work to be split.
        case.q = vec![8, 40, 12, 32];
        case.k = case.q.clone();
        case.v = case.q.clone();
        case.mask = Some(vec![8, 1, 1, 40]);
        let (one, _) = case.run(true, 1)?;
        let (two, fused) = case.run(true, 2)?;
        assert_eq!(fused, 1);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two));
        Ok(())
    }

    #[test]
    fn other_chains_stay_tracts() -> TractResult<()> {
        let mut log = minilm();
        log.kind = SoftmaxKind::LogSoftmax;
        let mut over_queries = minilm();
        over_queries.softmax_axis = 2;
        for case in [log, over_queries] {
            let (want, none) = case.run(false, 1)?;
            let (got, fused) = case.run(true, 1)?;
            assert_eq!((none, fused), (0, 0));
            assert_eq!(got, want);
        }
        Ok(())
    }
}
