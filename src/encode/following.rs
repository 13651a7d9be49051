//! Ops that follow a replaced op and fold into it: the single reader of an outlet, the
//! constant operand of a binary op, and the clamp (ReLU, ReLU6) of a Max by a scalar and a
//! Min by one; the nodes a replacement looks at, and the patch that puts it in place. Shared by the native
//! replacements (`packed.rs`, `pointwise.rs`, `depthwise.rs`, `im2col.rs`, `layer_norm.rs`,
//! `attention.rs`).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};
use tract_onnx::tract_core::ops::math::{Max, Min};

/// Puts `op`, reading `inputs`, in the place of the nodes that end at `last` (a matched chain
/// whose only way out is `last`'s output): op takes last's name and last's readers read op.
pub(crate) fn replace_chain(
    model: &mut TypedModel,
    inputs: &[OutletId],
    op: impl Into<Box<dyn TypedOp>>,
    last: usize,
) -> TractResult<()> {
    let mut patch = TypedModelPatch::default();
    let taps = inputs
        .iter()
        .map(|&input| patch.tap_model(model, input))
        .collect::<TractResult<TVec<_>>>()?;
    let name = model.node(last).name.clone();
    let wire = patch.wire_node(name, op, &taps)?;
    patch.shunt_outside(model, OutletId::new(last, 0), wire[0])?;
    patch.apply(model)
}

/// The ids of `model`'s nodes whose op is an `O`, in the model's order: collected before a
/// replacement patches the model, so each is matched again as the graph then stands.
pub(crate) fn nodes_of<O: TypedOp>(model: &TypedModel) -> Vec<usize> {
    model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<O>())
        .map(|n| n.id)
        .collect()
}

/// The single node reading `outlet`, unless it is a model output or read by several.
pub(crate) fn only_successor(
    model: &TypedModel,
    outlet: OutletId,
) -> TractResult<Option<&TypedNode>> {
    let successors = &model.node(outlet.node).outputs[outlet.slot].successors;
    if successors.len() != 1 || model.output_outlets()?.contains(&outlet) {
        return Ok(None);
    }
    Ok(Some(model.node(successors[0].node)))
}

/// `node`'s other input's constant, when node is the binary op `B` on f32 with `id`'s output
/// and a constant keeping its shape.
pub(crate) fn constant_operand<'m, B: BinMiniOp>(
    model: &'m TypedModel,
    node: &TypedNode,
    id: usize,
) -> TractResult<Option<&'m Arc<Tensor>>> {
    let Some(bin) = node.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !bin.0.is::<B>() || bin.1.is_some_and(|dt| dt != f32::datum_type()) || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let Some(other) = node
        .inputs
        .iter()
        .find(|i| i.node != id)
        .filter(|_| node.inputs.iter().any(|i| i.node == id))
    else {
        return Ok(None);
    };
    let fact = model.outlet_fact(*other)?;
    if model.outlet_fact(OutletId::new(node.id, 0))?.shape
        != model.outlet_fact(OutletId::new(id, 0))?.shape
    {
        return Ok(None);
    }
    Ok(fact
        .konst
        .as_ref()
        .filter(|c| c.datum_type() == f32::datum_type()))
}

/// Bounds applied to every value (ReLU6: 0 and 6); ±∞ where there are none. Compared and
/// hashed by their bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clamp {
    pub(crate) floor: f32,
    pub(crate) ceiling: f32,
}

impl Clamp {
    pub(crate) const NONE: Clamp = Clamp {
        floor: f32::NEG_INFINITY,
        ceiling: f32::INFINITY,
    };

    fn bits(self) -> (u32, u32) {
        (self.floor.to_bits(), self.ceiling.to_bits())
    }
}

impl PartialEq for Clamp {
    fn eq(&self, other: &Self) -> bool {
        self.bits() == other.bits()
    }
}

impl Eq for Clamp {}

impl std::hash::Hash for Clamp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits().hash(state);
    }
}

/// The clamp that alone follows node `id`'s output: a Max by a scalar constant, then possibly
/// a Min by one (ReLU, ReLU6); its bounds and the last node it covers (`id` and
/// `Clamp::NONE` when none follows).
pub(crate) fn following_clamp(model: &TypedModel, id: usize) -> TractResult<(Clamp, usize)> {
    let mut clamp = Clamp::NONE;
    let mut last = id;
    if let Some(next) = only_successor(model, OutletId::new(last, 0))? {
        if let Some(floor) = constant_operand::<Max>(model, next, last)?.filter(|c| c.len() == 1) {
            clamp.floor = floor.cast_to_scalar::<f32>()?;
            last = next.id;
            if let Some(next) = only_successor(model, OutletId::new(last, 0))? {
                if let Some(ceiling) =
                    constant_operand::<Min>(model, next, last)?.filter(|c| c.len() == 1)
                {
                    let ceiling = ceiling.cast_to_scalar::<f32>()?;
                    if ceiling >= clamp.floor {
                        clamp.ceiling = ceiling;
                        last = next.id;
                    }
                }
            }
        }
    }
    Ok((clamp, last))
}
