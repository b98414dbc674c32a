//! ONNX control flow at import time: an `If` whose condition the importer knows
//! (an initializer, or a value folded from constants and known shapes, as in
//! `if x.shape[0] == 1`) is replaced by the nodes of the branch it takes; a
//! `Scan` over an axis of fixed length, and a `Loop` whose trip count and
//! condition the importer knows at every iteration, are unrolled: the body's
//! nodes are imported once per iteration, its formal inputs bound to that
//! iteration's values (the loop-carried ones to the last iteration's outputs,
//! the iteration number and condition as constants, so that what depends on
//! them folds). An `If` decided at run time computes both branches and selects
//! each output with `where` (if-conversion: the branches of an ONNX `If` have no
//! side effects), which needs the two branches' outputs to have the same types;
//! where they differ it is reported as unsupported, and so is a `Loop` whose
//! condition is computed at run time, or an unrolling of more than
//! [`MAX_UNROLL`] iterations.

use super::ctx::{Ctx, Known};
use super::error::Result;
use super::node::NodeRef;
use super::proto::GraphProto;
use super::{import_node, tensor};
use smelt_ir::ops::Slice;
use smelt_ir::{Dim, Op, Tensor, Value};

/// The most iterations a `Loop` or `Scan` is unrolled to.
pub const MAX_UNROLL: usize = 4096;

/// The most nodes all unrolled bodies of a model may add (nested loops
/// multiply).
const MAX_UNROLLED_NODES: usize = 1 << 20;

/// Imports `If` node `n` as its chosen branch: the branch's initializers and
/// nodes join the graph (they may read any value of the enclosing scopes), and
/// the If's outputs name the branch's outputs.
pub(super) fn import_if(cx: &mut Ctx, n: &NodeRef) -> Result<()> {
    let cond = n.input_name(0).ok_or_else(|| n.err("If has no condition"))?;
    let Some(t) = cx.known(cond).and_then(|k| k.tensor()) else {
        return predicated_if(cx, n, cond);
    };
    if t.numel() != 1 {
        return Err(n.err(format!("the condition of If has {} elements; it must have one", t.numel())));
    }
    let which = if t.to_f32()[0] != 0.0 { "then_branch" } else { "else_branch" };
    let g = graph_attr(n, which)?;
    if g.output.len() != n.p.output.len() {
        return Err(n.err(format!("the {which} has {} outputs; the If has {}", g.output.len(), n.p.output.len())));
    }
    let outs = run_body(cx, n, g, which, &[])?;
    set_outputs(cx, n, outs);
    Ok(())
}

/// An `If` whose condition is only known at run time: both branches imported,
/// each output `where(cond, then, else)`.
fn predicated_if(cx: &mut Ctx, n: &NodeRef, cond: &str) -> Result<()> {
    let c = cx.value_of(cond)?;
    let ct = cx.ty(c);
    if ct.dtype != smelt_ir::DType::Bool || ct.shape.numel() != Some(1) {
        return Err(n.err(format!("the condition of If must be one bool, found {ct}")));
    }
    let c = cx.reshape(c, &[])?;
    let then = run_body(cx, n, graph_attr(n, "then_branch")?, "then_branch", &[])?;
    let other = run_body(cx, n, graph_attr(n, "else_branch")?, "else_branch", &[])?;
    let outs = &n.p.output;
    if then.len() != outs.len() || other.len() != outs.len() {
        return Err(n.err(format!("the branches have {} and {} outputs; the If has {}", then.len(), other.len(), outs.len())));
    }
    let mut results = Vec::with_capacity(outs.len());
    for (i, (a, b)) in then.iter().zip(&other).enumerate() {
        if let (Slot::Known(ka), Slot::Known(kb)) = (a, b)
            && ka.tensor().is_some_and(|ta| kb.tensor().as_ref() == Some(&ta))
        {
            results.push(a.clone());
            continue;
        }
        let (va, vb) = (slot_value(cx, a, n)?, slot_value(cx, b, n)?);
        let (ta, tb) = (cx.ty(va), cx.ty(vb));
        if ta != tb {
            return Err(n.unsupported(format!(
                "an If decided at run time whose branches give output {i} as {ta} and {tb} (both branches are computed and one selected)"
            )));
        }
        results.push(Slot::Value(cx.op(Op::Where, &[c, va, vb])?));
    }
    set_outputs(cx, n, results);
    Ok(())
}

/// The one output of graph attribute `attr` of `n` (a FlexAttention `score_mod`,
/// say) applied to `inputs`, or `None` when `n` has no such attribute.
pub(crate) fn apply_graph(cx: &mut Ctx, n: &NodeRef, attr: &str, inputs: &[Value]) -> Result<Option<Value>> {
    if !n.p.attribute.iter().any(|a| a.name() == attr) {
        return Ok(None);
    }
    let g = graph_attr(n, attr)?;
    let slots: Vec<Slot> = inputs.iter().map(|&v| Slot::Value(v)).collect();
    let outs = run_body(cx, n, g, attr, &slots)?;
    match &outs[..] {
        [one] => Ok(Some(slot_value(cx, one, n)?)),
        o => Err(n.err(format!("the {attr} graph has {} outputs; it must have one", o.len()))),
    }
}

/// What an ONNX name stands for while a body is unrolled: a value folded at
/// import, or a graph value.
#[derive(Clone)]
enum Slot {
    Known(Known),
    Value(Value),
}

fn slot_of(cx: &mut Ctx, name: &str) -> Result<Slot> {
    if let Some(k) = cx.known(name) {
        return Ok(Slot::Known(k.clone()));
    }
    Ok(Slot::Value(cx.value_of(name)?))
}

fn bind(cx: &mut Ctx, name: &str, slot: &Slot) {
    match slot {
        Slot::Known(k) => cx.set_known(name, k.clone()),
        Slot::Value(v) => cx.set_value(name, *v),
    }
}

fn slot_value(cx: &mut Ctx, slot: &Slot, n: &NodeRef) -> Result<Value> {
    match slot {
        Slot::Value(v) => Ok(*v),
        Slot::Known(k) => {
            let t = k.tensor().ok_or_else(|| n.unsupported("a loop output that is a shape with symbolic dims"))?;
            Ok(cx.konst(t))
        }
    }
}

/// The graph attribute `name` of `n`.
fn graph_attr<'a>(n: &NodeRef<'a>, name: &str) -> Result<&'a GraphProto> {
    n.p.attribute
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| n.err(format!("{} has no {name} graph", n.op_type())))
}

/// Imports subgraph `body` of `n` (a branch, or one iteration of a loop body;
/// `what` names it in errors): binds its formal inputs, imports its
/// initializers and nodes (which may read any value of the enclosing scopes),
/// and returns its outputs.
fn run_body(cx: &mut Ctx, n: &NodeRef, body: &GraphProto, what: &str, inputs: &[Slot]) -> Result<Vec<Slot>> {
    if body.input.len() != inputs.len() {
        return Err(n.err(format!("the body takes {} inputs; {} are given", body.input.len(), inputs.len())));
    }
    for (vi, slot) in body.input.iter().zip(inputs) {
        bind(cx, vi.name(), slot);
    }
    cx.unrolled += body.node.len();
    if cx.unrolled > MAX_UNROLLED_NODES {
        return Err(n.unsupported(format!("its unrolled loops and branches would import more than {MAX_UNROLLED_NODES} nodes")));
    }
    for init in &body.initializer {
        cx.add_initializer(init.name(), tensor::from_proto(init, None).map_err(|e| n.err(format!("{what}: {e}")))?);
    }
    for node in &body.node {
        let b = NodeRef::new(node);
        if let Some(bad) = (0..b.num_inputs()).filter_map(|i| b.input_name(i)).find(|i| !cx.is_defined(i)) {
            return Err(b.err(format!("input `{bad}` is not defined before the node (in the {what} of `{}`)", n.name)));
        }
        cx.begin(&b);
        import_node(cx, &b)?;
    }
    cx.begin(n);
    body.output.iter().map(|o| slot_of(cx, o.name())).collect()
}

/// `slices` (each of one iteration, without the scan axis) stacked along `axis`.
fn stack(cx: &mut Ctx, n: &NodeRef, slices: &[Slot], axis: i64) -> Result<Value> {
    let mut vals = Vec::with_capacity(slices.len());
    for s in slices {
        let v = slot_value(cx, s, n)?;
        let mut dims = cx.dims(v);
        let r = dims.len() as i64 + 1;
        let a = if axis < 0 { axis + r } else { axis };
        if !(0..r).contains(&a) {
            return Err(n.err(format!("scan output axis {axis} is out of range for rank {r}")));
        }
        dims.insert(a as usize, Dim::Fixed(1));
        vals.push((cx.reshape(v, &dims)?, a));
    }
    let a = vals.first().map(|&(_, a)| a).unwrap_or(0);
    let vs: Vec<Value> = vals.into_iter().map(|(v, _)| v).collect();
    if vs.len() == 1 {
        return cx.copy(vs[0]);
    }
    cx.op(Op::Concat { axis: a }, &vs)
}

/// Binds the node's outputs to `slots` (an output computed in the loop takes
/// the node's output name).
fn set_outputs(cx: &mut Ctx, n: &NodeRef, slots: Vec<Slot>) {
    for (o, slot) in n.p.output.iter().zip(slots) {
        if o.is_empty() {
            continue;
        }
        match slot {
            Slot::Known(k) => cx.set_known(o, k),
            Slot::Value(v) => {
                cx.rename(v, o);
                cx.set_value(o, v);
            }
        }
    }
}

/// Imports `Scan` (opset 9 and later) unrolled over its scan axis.
pub(super) fn import_scan(cx: &mut Ctx, n: &NodeRef) -> Result<()> {
    if cx.opset < 9 {
        return Err(n.unsupported("Scan before opset 9 (batched, with sequence_lens)"));
    }
    let body = graph_attr(n, "body")?;
    let m = n.int("num_scan_inputs", -1)?;
    let ins = n.num_inputs();
    if m < 1 || m as usize > ins {
        return Err(n.err(format!("num_scan_inputs {m} does not fit {ins} inputs")));
    }
    let m = m as usize;
    let states = ins - m;
    let k = body.output.len().checked_sub(states).ok_or_else(|| n.err("the body has fewer outputs than states"))?;
    let per = |name: &str, len: usize| -> Result<Vec<i64>> {
        match n.ints(name)? {
            Some(v) if v.len() == len => Ok(v),
            Some(v) => Err(n.err(format!("{name} has {} entries for {len}", v.len()))),
            None => Ok(vec![0; len]),
        }
    };
    let (in_axes, in_dirs) = (per("scan_input_axes", m)?, per("scan_input_directions", m)?);
    let (out_axes, out_dirs) = (per("scan_output_axes", k)?, per("scan_output_directions", k)?);
    let mut state: Vec<Slot> = (0..states).map(|i| slot_of(cx, n.input_name(i).unwrap_or_default())).collect::<Result<_>>()?;
    // The scan inputs, their (normalized) axes and the common length.
    let mut scans = Vec::with_capacity(m);
    let mut len = None;
    for (j, &axis) in in_axes.iter().enumerate() {
        let v = cx.input(n, states + j)?;
        let dims = cx.dims(v);
        let a = smelt_ir::shape::normalize_axis(axis, dims.len())
            .ok_or_else(|| n.err(format!("scan input axis {axis} is out of range for {}", cx.ty(v))))?;
        let l = dims[a].fixed().ok_or_else(|| n.unsupported("a Scan over a symbolic axis (it is unrolled at import)"))? as usize;
        if len.is_some_and(|x| x != l) {
            return Err(n.err("the scan inputs differ in length"));
        }
        len = Some(l);
        scans.push((v, a, dims));
    }
    let len = len.unwrap_or(0);
    if len > MAX_UNROLL {
        return Err(n.unsupported(format!("a Scan of {len} iterations (it is unrolled at import, up to {MAX_UNROLL})")));
    }
    let mut outs: Vec<Vec<Slot>> = vec![Vec::with_capacity(len); k];
    for t in 0..len {
        let mut inputs = state.clone();
        for (j, (v, a, dims)) in scans.iter().enumerate() {
            let i = if in_dirs[j] != 0 { len - 1 - t } else { t } as i64;
            let s = cx.op(Op::Slice(Slice { starts: vec![i], ends: vec![i + 1], axes: Some(vec![*a as i64]), steps: None }), &[*v])?;
            let mut d = dims.clone();
            d.remove(*a);
            inputs.push(Slot::Value(cx.reshape(s, &d)?));
        }
        let mut res = run_body(cx, n, body, "body", &inputs)?;
        let scanned = res.split_off(states);
        state = res;
        for (o, sv) in outs.iter_mut().zip(scanned) {
            o.push(sv);
        }
    }
    if len == 0 && k > 0 {
        return Err(n.unsupported("a Scan of no iterations with scan outputs"));
    }
    let mut results = state;
    for (j, mut o) in outs.into_iter().enumerate() {
        if out_dirs[j] != 0 {
            o.reverse();
        }
        results.push(Slot::Value(stack(cx, n, &o, out_axes[j])?));
    }
    set_outputs(cx, n, results);
    Ok(())
}

/// Imports `Loop` unrolled: its trip count (input 0) and condition (input 1)
/// must be known, and so must the condition each iteration computes.
pub(super) fn import_loop(cx: &mut Ctx, n: &NodeRef) -> Result<()> {
    let body = graph_attr(n, "body")?;
    let trips = if n.has_input(0) {
        match cx.need_ints(n, 0, "trip count")?[..] {
            [m] => Some(m.max(0) as usize),
            ref v => return Err(n.err(format!("the trip count has {} values; it must have one", v.len()))),
        }
    } else {
        None
    };
    let mut cond = match n.has_input(1) {
        true => match cx.need_tensor(n, 1, "loop condition")? {
            t if t.numel() == 1 => t.to_f32()[0] != 0.0,
            t => return Err(n.err(format!("the condition has {} values; it must have one", t.numel()))),
        },
        false => true,
    };
    if trips.is_none() && !n.has_input(1) {
        return Err(n.err("a Loop with neither a trip count nor a condition never ends"));
    }
    let deps = n.num_inputs().saturating_sub(2);
    let k = body.output.len().checked_sub(1 + deps).ok_or_else(|| n.err("the body has fewer outputs than loop-carried values"))?;
    let mut state: Vec<Slot> = (0..deps).map(|i| slot_of(cx, n.input_name(2 + i).unwrap_or_default())).collect::<Result<_>>()?;
    let mut outs: Vec<Vec<Slot>> = vec![vec![]; k];
    let mut t = 0usize;
    while cond && trips.is_none_or(|m| t < m) {
        if t >= MAX_UNROLL {
            return Err(n.unsupported(format!("a Loop of more than {MAX_UNROLL} iterations (it is unrolled at import)")));
        }
        let iter = Slot::Known(Known::T(Tensor::i64(vec![], vec![t as i64]).map_err(|e| n.err(e.to_string()))?));
        let c = Slot::Known(Known::T(Tensor::new(vec![], smelt_ir::Data::Bool(vec![cond])).map_err(|e| n.err(e.to_string()))?));
        let mut inputs = vec![iter, c];
        inputs.extend(state.iter().cloned());
        let mut res = run_body(cx, n, body, "body", &inputs)?;
        let scanned = res.split_off(1 + deps);
        cond = match &res[0] {
            Slot::Known(k) => k.tensor().filter(|t| t.numel() == 1).map(|t| t.to_f32()[0] != 0.0),
            Slot::Value(_) => None,
        }
        .ok_or_else(|| n.unsupported("a Loop whose condition is computed at run time (it is unrolled at import)"))?;
        state = res.split_off(1);
        for (o, sv) in outs.iter_mut().zip(scanned) {
            o.push(sv);
        }
        t += 1;
    }
    if t == 0 && k > 0 {
        return Err(n.unsupported("a Loop of no iterations with scan outputs"));
    }
    let mut results = state;
    for o in outs {
        results.push(Slot::Value(stack(cx, n, &o, 0)?));
    }
    set_outputs(cx, n, results);
    Ok(())
}
