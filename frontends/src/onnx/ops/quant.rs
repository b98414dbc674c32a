//! ONNX quantization ops on smelt's quantized types (scale and zero point live in
//! the type): QuantizeLinear → `quantize`, DequantizeLinear → `dequantize` (or
//! `(x − zp)·scale` for plain integers), QLinearMatMul / MatMulInteger → `qmatmul`,
//! QLinearConv / ConvInteger → `qconv`. Quantization parameters must be constants;
//! 8-bit integers only. Blocked quantization (`block_size`) is written with
//! elementwise ops on the scale and zero point repeated over each block (reshape,
//! expand, slice), since a quantized type carries one scale per tensor or per
//! axis entry. DynamicQuantizeLinear, whose scale comes from the data, is
//! written with reductions and rounding as ONNX's reference computes it.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::nn::window;
use smelt_ir::ops::{Conv, QuantizeAttrs, ReduceKind, Requant};
use smelt_ir::{BinaryOp, DType, Dim, Op, Quant, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

/// Scale and zero point of input slots `s`, `z` for a tensor of `dims`: per
/// tensor, or per axis when the scale has several entries (the node's `axis`,
/// or `axis_of_op` for ops whose axis is fixed: QLinearMatMul's columns,
/// QLinearConv's output channels), the scales covering that axis.
fn params(cx: &Ctx, n: &NodeRef, s: usize, z: usize, dims: &[Dim], qdtype: DType, axis_of_op: Option<usize>) -> Result<Quant> {
    let rank = dims.len();
    if n.int("block_size", 0)? != 0 {
        return Err(n.unsupported("blocked quantization"));
    }
    let scale = cx.need_floats(n, s, "scale")?;
    let zp: Vec<i32> = if n.has_input(z) { zero_points(cx, n, z)? } else { vec![0; scale.len()] };
    if scale.is_empty() || zp.len() != scale.len() {
        return Err(n.err(format!("{} scales and {} zero points", scale.len(), zp.len())));
    }
    if scale.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        return Err(n.unsupported(format!("scales must be positive, found {scale:?}")));
    }
    if let Some((lo, hi)) = qdtype.int_range()
        && zp.iter().any(|&v| i64::from(v) < lo || i64::from(v) > hi)
    {
        return Err(n.err(format!("zero points {zp:?} do not fit {qdtype}")));
    }
    if scale.len() == 1 {
        return Ok(Quant::PerTensor { scale: scale[0], zero_point: zp[0] });
    }
    let axis = match axis_of_op {
        Some(a) => a,
        None => {
            let axis = n.int("axis", 1)?;
            smelt_ir::shape::normalize_axis(axis, rank).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?
        }
    };
    // The scales must cover the axis (its size when it is fixed).
    if let Some(d) = dims.get(axis)
        && d.fixed().is_some_and(|d| d != scale.len() as u64)
    {
        return Err(n.err(format!("{} scales for axis {axis} of size {d}", scale.len())));
    }
    Ok(Quant::PerAxis { axis, scale, zero_point: zp })
}

/// The constant zero points of input `z`, each checked to fit an i32.
fn zero_points(cx: &Ctx, n: &NodeRef, z: usize) -> Result<Vec<i32>> {
    let v = cx.need_ints(n, z, "zero point")?;
    v.iter().map(|&x| i32::try_from(x).map_err(|_| n.err(format!("zero point {x} is out of range")))).collect()
}

/// The 8-bit dtype of a zero-point input, or `default` without one.
fn qdtype(cx: &Ctx, n: &NodeRef, z: usize, default: DType) -> Result<DType> {
    let d = if n.has_input(z) { cx.need_tensor(n, z, "zero point")?.dtype() } else { default };
    if !d.is_quantizable() {
        return Err(n.unsupported(format!("{d} quantization (smelt quantizes to i8 and u8)")));
    }
    Ok(d)
}

/// `x` (plain 8-bit or quantized) as a value of the quantized type `q`, holding the
/// same integers.
fn as_quant(cx: &mut Ctx, x: Value, q: Quant) -> Result<Value> {
    let t = cx.ty(x);
    if t.quant.as_ref() == Some(&q) {
        return Ok(x);
    }
    let node = cx.g.node(x.node).op.clone();
    let unused = cx.g.users(x).is_empty() && !cx.g.outputs().contains(&x);
    if t.quant.is_none() && unused && matches!(node, Op::Input) {
        cx.g.node_mut(x.node).types[0].quant = Some(q);
        return Ok(x);
    }
    if t.quant.is_none()
        && let Some(w) = cx.const_of(x)
    {
        let name = format!("{}.q", cx.g.value_name(x));
        let name = cx.claim(&name);
        let v = cx.g.add_param(name.clone(), t.with_dtype(t.dtype).with_quant(q));
        cx.g.set_weight(name, (*w).clone());
        return Ok(v);
    }
    // Through floats: exact for 8-bit values.
    let ints = plain_ints(cx, x)?;
    let (attrs, _) = quantize_attrs(&q, t.dtype);
    let f = dequant_arith(cx, ints, &q, t.rank())?;
    cx.op(Op::Quantize(attrs), &[f])
}

/// The integers of `x` as f32 (dequantized and mapped back when `x` is quantized).
fn plain_ints(cx: &mut Ctx, x: Value) -> Result<Value> {
    let t = cx.ty(x);
    let Some(q) = t.quant.clone() else { return cx.cast(x, DType::F32) };
    let f = cx.op(Op::Dequantize, &[x])?;
    let (s, z) = broadcast_params(cx, &q, t.rank())?;
    let y = cx.binary(BinaryOp::Div, f, s)?;
    let y = cx.binary(BinaryOp::Add, y, z)?;
    cx.unary(UnaryOp::Round, y)
}

/// Scale and zero point as f32 constants broadcastable against the tensor.
fn broadcast_params(cx: &mut Ctx, q: &Quant, rank: usize) -> Result<(Value, Value)> {
    let (scale, zp, axis) = match q {
        Quant::PerTensor { scale, zero_point } => (vec![*scale], vec![*zero_point as f32], None),
        Quant::PerAxis { axis, scale, zero_point } => {
            (scale.clone(), zero_point.iter().map(|&z| z as f32).collect(), Some(*axis))
        }
    };
    let shape: Vec<usize> = match axis {
        None => vec![],
        Some(a) => (0..rank).map(|i| if i == a { scale.len() } else { 1 }).collect(),
    };
    let bad =
        |e: smelt_ir::tensor::ShapeMismatch| super::super::error::Error::Model(format!("quantization parameters: {e}"));
    let s = cx.konst(Tensor::f32(shape.clone(), scale).map_err(bad)?);
    let z = cx.konst(Tensor::f32(shape, zp).map_err(bad)?);
    Ok((s, z))
}

/// `(x − zp)·scale` for integers `x` given as f32.
fn dequant_arith(cx: &mut Ctx, xf: Value, q: &Quant, rank: usize) -> Result<Value> {
    let (s, z) = broadcast_params(cx, q, rank)?;
    let c = cx.binary(BinaryOp::Sub, xf, z)?;
    cx.binary(BinaryOp::Mul, c, s)
}

fn quantize_attrs(q: &Quant, dtype: DType) -> (QuantizeAttrs, ()) {
    let a = match q {
        Quant::PerTensor { scale, zero_point } => {
            QuantizeAttrs { dtype, scale: vec![*scale], zero_point: vec![*zero_point], axis: None }
        }
        Quant::PerAxis { axis, scale, zero_point } => {
            QuantizeAttrs { dtype, scale: scale.clone(), zero_point: zero_point.clone(), axis: Some(*axis as i64) }
        }
    };
    (a, ())
}

pub fn quantize(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let default = match n.int_opt("output_dtype")? {
        Some(code) if code != 0 => super::super::tensor::dtype(code as i32).map_err(|e| n.unsupported(e))?,
        _ => DType::U8,
    };
    if n.int("block_size", 0)? != 0 {
        return quantize_blocked(cx, n, x, default);
    }
    // Computed (not constant, not a graph input that could be frozen).
    let dynamic = |i: usize| n.input_name(i).is_some_and(|s| cx.known(s).is_none() && !cx.graph_inputs.contains_key(s));
    if dynamic(1) || dynamic(2) {
        return quantize_dynamic(cx, n, x, default);
    }
    let d = qdtype(cx, n, 2, default)?;
    let q = params(cx, n, 1, 2, &cx.dims(x), d, None)?;
    let x = if cx.ty(x).dtype == DType::F32 { x } else { cx.cast(x, DType::F32)? };
    let (attrs, _) = quantize_attrs(&q, d);
    Ok(vec![cx.op(Op::Quantize(attrs), &[x])?])
}

/// QuantizeLinear with a computed scale or zero point (per tensor):
/// `saturate(round(x/scale) + zp)` as a plain 8-bit tensor.
fn quantize_dynamic(cx: &mut Ctx, n: &NodeRef, x: Value, default: DType) -> Out {
    let s = cx.input(n, 1)?;
    let z = cx.opt_input(n, 2)?;
    let d = match z {
        Some(z) => cx.ty(z).dtype,
        None => default,
    };
    let Some((lo, hi)) = d.int_range().filter(|_| d.is_quantizable()) else {
        return Err(n.unsupported(format!("{d} quantization")));
    };
    if cx.rank(s) > 1 || cx.dims(s).iter().any(|d| d.fixed() != Some(1)) {
        return Err(n.unsupported("a computed per-axis scale"));
    }
    let xf = cx.cast(x, DType::F32)?;
    let sf = cx.cast(s, DType::F32)?;
    let y = cx.binary(BinaryOp::Div, xf, sf)?;
    let mut y = cx.unary(UnaryOp::Round, y)?;
    if let Some(z) = z {
        let zf = cx.cast(z, DType::F32)?;
        y = cx.binary(BinaryOp::Add, y, zf)?;
    }
    let y = cx.unary(UnaryOp::Clip { min: lo as f32, max: hi as f32 }, y)?;
    Ok(vec![cx.cast(y, d)?])
}

pub fn dequantize(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    if n.int("block_size", 0)? != 0 {
        return dequantize_blocked(cx, n, x);
    }
    let t = cx.ty(x);
    let q = params(cx, n, 1, 2, t.dims(), if t.dtype.is_quantizable() { t.dtype } else { DType::I32 }, None)?;
    let out = cx.need_tensor(n, 1, "scale")?.dtype();
    let y = if t.quant.as_ref() == Some(&q) {
        cx.op(Op::Dequantize, &[x])?
    } else if t.quant.is_none() && t.dtype.is_quantizable() && cx.const_of(x).is_some() {
        // A QDQ model's weight: a quantized param, so that `fold-qdq` sees
        // `dequantize` and makes the layer an integer kernel.
        let xq = as_quant(cx, x, q)?;
        cx.op(Op::Dequantize, &[xq])?
    } else {
        let f = plain_ints(cx, x)?;
        dequant_arith(cx, f, &q, t.rank())?
    };
    Ok(vec![cx.cast(y, out)?])
}

/// The blocked scale (or zero point) `v` of a tensor `x`, as f32 of `x`'s shape:
/// along `axis` each entry repeats `block` times (the last block may be short).
/// Written with reshape, expand and slice, so `v` may be computed.
fn expand_blocks(cx: &mut Ctx, n: &NodeRef, x: Value, v: Value) -> Result<Value> {
    use super::tensor::dim_spec;
    let (xd, vd) = (cx.dims(x), cx.dims(v));
    let r = xd.len();
    let block = n.int("block_size", 0)?;
    let axis = n.int("axis", 1)?;
    let a = smelt_ir::shape::normalize_axis(axis, r).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?;
    if !(1..=1 << 24).contains(&block) {
        return Err(n.err(format!("block_size {block} must be positive")));
    }
    let block = block as u64;
    let len = xd[a].fixed().ok_or_else(|| n.unsupported("blocked quantization along a symbolic dim"))?;
    let nb = len.div_ceil(block);
    let fits = vd.len() == r && (0..r).all(|i| if i == a { vd[i] == Dim::Fixed(nb) } else { vd[i] == xd[i] });
    if !fits {
        return Err(n.err(format!("blocked scale {} does not fit {} with block_size {block} on axis {a}", cx.ty(v), cx.ty(x))));
    }
    let v = cx.cast(v, DType::F32)?;
    let mut inter = vd.clone();
    inter.insert(a + 1, Dim::Fixed(1));
    let mut big: Vec<smelt_ir::DimSpec> = inter.iter().map(dim_spec).collect();
    big[a + 1] = smelt_ir::DimSpec::Int(block as i64);
    let mut wide = vd.clone();
    wide[a] = Dim::Fixed(nb * block);
    let y = cx.reshape(v, &inter)?;
    let y = cx.expand(y, &big)?;
    let y = cx.reshape(y, &wide)?;
    if nb * block == len {
        return Ok(y);
    }
    let s = smelt_ir::ops::Slice { starts: vec![0], ends: vec![len as i64], axes: Some(vec![a as i64]), steps: None };
    cx.op(Op::Slice(s), &[y])
}

/// Blocked QuantizeLinear: `saturate(round(x / scale) + zp)` with the scale and zero
/// point repeated over each block, as a plain 8-bit tensor.
fn quantize_blocked(cx: &mut Ctx, n: &NodeRef, x: Value, default: DType) -> Out {
    let s = cx.input(n, 1)?;
    let z = cx.opt_input(n, 2)?;
    let d = z.map_or(default, |z| cx.ty(z).dtype);
    let Some((lo, hi)) = d.int_range().filter(|_| d.is_quantizable()) else {
        return Err(n.unsupported(format!("{d} quantization")));
    };
    let xf = cx.cast(x, DType::F32)?;
    let se = expand_blocks(cx, n, x, s)?;
    let y = cx.binary(BinaryOp::Div, xf, se)?;
    let mut y = cx.unary(UnaryOp::Round, y)?;
    if let Some(z) = z {
        let ze = expand_blocks(cx, n, x, z)?;
        y = cx.binary(BinaryOp::Add, y, ze)?;
    }
    let y = cx.unary(UnaryOp::Clip { min: lo as f32, max: hi as f32 }, y)?;
    Ok(vec![cx.cast(y, d)?])
}

/// Blocked DequantizeLinear: `(x − zp)·scale` with the scale and zero point repeated
/// over each block, in the scale's dtype.
fn dequantize_blocked(cx: &mut Ctx, n: &NodeRef, x: Value) -> Out {
    let s = cx.input(n, 1)?;
    let out = cx.ty(s).dtype;
    let mut y = plain_ints(cx, x)?;
    if let Some(z) = cx.opt_input(n, 2)? {
        let ze = expand_blocks(cx, n, x, z)?;
        y = cx.binary(BinaryOp::Sub, y, ze)?;
    }
    let se = expand_blocks(cx, n, x, s)?;
    let y = cx.binary(BinaryOp::Mul, y, se)?;
    Ok(vec![cx.cast(y, out)?])
}

/// The largest batch [`qmatmul`] splits into 2-d slices.
const MAX_BATCH: usize = 1 << 16;

/// `a·b` of 8-bit quantized values, requantized by `r` (2-d b, or batched b split
/// into 2-d slices).
fn qmatmul(cx: &mut Ctx, n: &NodeRef, a: Value, b: Value, r: Requant) -> Result<Value> {
    let bd = cx.dims(b);
    if bd.len() == 2 {
        return cx.op(Op::QMatMul(r), &[a, b]);
    }
    if bd.len() != 3 || cx.rank(a) != 3 {
        return Err(n.unsupported(format!("quantized matmul of {} and {}", cx.ty(a), cx.ty(b))));
    }
    let batch = bd[0].fixed().ok_or_else(|| n.unsupported("a symbolic batch"))? as usize;
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(n.unsupported(format!("a quantized matmul over a batch of {batch} (1 to {MAX_BATCH})")));
    }
    let ad = cx.dims(a);
    let mut parts = Vec::new();
    for i in 0..batch {
        let pick = |cx: &mut Ctx, v: Value, d: &[Dim]| -> Result<Value> {
            let k = if d[0] == Dim::Fixed(1) { 0 } else { i as i64 };
            let s = smelt_ir::ops::Slice { starts: vec![k], ends: vec![k + 1], axes: Some(vec![0]), steps: None };
            let y = cx.op(Op::Slice(s), &[v])?;
            cx.reshape(y, &d[1..])
        };
        let ai = pick(cx, a, &ad)?;
        let bi = pick(cx, b, &bd)?;
        let y = cx.op(Op::QMatMul(r.clone()), &[ai, bi])?;
        let mut d = vec![Dim::Fixed(1)];
        d.extend(cx.dims(y));
        parts.push(cx.reshape(y, &d)?);
    }
    if parts.len() == 1 { Ok(parts[0]) } else { cx.op(Op::Concat { axis: 0 }, &parts) }
}

/// The requantization of output zero point slot `z` and scale slot `s`.
fn requant(cx: &Ctx, n: &NodeRef, s: usize, z: usize) -> Result<Requant> {
    let d = qdtype(cx, n, z, DType::U8)?;
    match params(cx, n, s, z, &[], d, None)? {
        Quant::PerTensor { scale, zero_point } => Ok(Requant { dtype: d, scale: Some(scale), zero_point }),
        Quant::PerAxis { .. } => Err(n.unsupported("a per-axis output scale")),
    }
}

pub fn qlinear_matmul(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (a, b) = (cx.input(n, 0)?, cx.input(n, 3)?);
    let (ta, tb) = (cx.ty(a), cx.ty(b));
    let qa = params(cx, n, 1, 2, ta.dims(), ta.dtype, Some(0))?;
    if qa.axis().is_some() {
        return Err(n.unsupported("a per-row scale for A"));
    }
    // One scale per column of B.
    let qb = params(cx, n, 4, 5, tb.dims(), tb.dtype, Some(tb.rank().saturating_sub(1)))?;
    let a = as_quant(cx, a, qa)?;
    let b = as_quant(cx, b, qb)?;
    let r = requant(cx, n, 6, 7)?;
    Ok(vec![qmatmul(cx, n, a, b, r)?])
}

pub fn qlinear_conv(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (x, w) = (cx.input(n, 0)?, cx.input(n, 3)?);
    let (tx, tw) = (cx.ty(x), cx.ty(w));
    let qx = params(cx, n, 1, 2, tx.dims(), tx.dtype, Some(1))?;
    // One scale per output channel.
    let qw = params(cx, n, 4, 5, tw.dims(), tw.dtype, Some(0))?;
    let r = requant(cx, n, 6, 7)?;
    let bias = cx.opt_input(n, 8)?;
    conv_common(cx, n, x, w, qx, qw, r, bias)
}

#[allow(clippy::too_many_arguments)]
fn conv_common(
    cx: &mut Ctx,
    n: &NodeRef,
    x: Value,
    w: Value,
    qx: Quant,
    qw: Quant,
    r: Requant,
    bias: Option<Value>,
) -> Out {
    let rank = cx.rank(x);
    if !(3..=4).contains(&rank) {
        return Err(n.unsupported(format!("{}-d input: smelt has 1-d and 2-d convolution", rank.saturating_sub(2))));
    }
    let wd = cx.fixed_dims(n, w, "the weights")?;
    if wd.len() != rank {
        return Err(n.err(format!("weights {} do not fit a {}-d conv", cx.ty(w), rank - 2)));
    }
    let win = window(n, &cx.dims(x)[2..], Some(wd[2..].to_vec()), false)?;
    let c = Conv { stride: win.stride, pad: win.pad, dilation: win.dilation, groups: super::nn::group(n)? };
    let x = as_quant(cx, x, qx)?;
    let w = as_quant(cx, w, qw)?;
    let ins: Vec<Value> = [x, w].into_iter().chain(bias).collect();
    Ok(vec![cx.op(Op::QConv(c, r), &ins)?])
}

/// MatMulInteger and ConvInteger: i32 results of zero-point-shifted 8-bit inputs.
pub fn integer(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (a, b) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let (ta, tb) = (cx.ty(a), cx.ty(b));
    let zp =
        |cx: &Ctx, i: usize| -> Result<Vec<i32>> { if n.has_input(i) { zero_points(cx, n, i) } else { Ok(vec![0]) } };
    // A's zero point from the data (DynamicQuantizeLinear's, as ONNX Runtime's
    // `quantize_dynamic` writes): see `run_time_zero_point`.
    if n.op_type() == "MatMulInteger" && n.has_input(2) && cx.need_tensor(n, 2, "zero point").is_err() {
        let z = cx.input(n, 2)?;
        return run_time_zero_point(cx, n, a, b, z, zp(cx, 3)?);
    }
    let (za, zb) = (zp(cx, 2)?, zp(cx, 3)?);
    let _ = ta;
    if za.len() != 1 {
        return Err(n.unsupported("a per-row zero point for A"));
    }
    let qa = Quant::PerTensor { scale: 1.0, zero_point: za[0] };
    let conv = n.op_type() == "ConvInteger";
    let qb = if zb.len() == 1 {
        Quant::PerTensor { scale: 1.0, zero_point: zb[0] }
    } else if zb.is_empty() || tb.rank() == 0 {
        return Err(n.err(format!("{} zero points for B {}", zb.len(), tb)));
    } else {
        let axis = if conv { 0 } else { tb.rank().saturating_sub(1) };
        Quant::PerAxis { axis, scale: vec![1.0; zb.len()], zero_point: zb }
    };
    let r = Requant { dtype: DType::I32, scale: None, zero_point: 0 };
    if conv {
        return conv_common(cx, n, a, b, qa, qb, r, None);
    }
    let a = as_quant(cx, a, qa)?;
    let b = as_quant(cx, b, qb)?;
    Ok(vec![qmatmul(cx, n, a, b, r)?])
}

/// MatMulInteger whose A zero point `za` is a run-time scalar:
/// `Σₖ (a − za)(b − zb) = Σₖ a·(b − zb) − za·colsum(b − zb)`, the first term an
/// integer matmul with A's zero point 0 and the second a constant vector (B must
/// be a constant) times the scalar, all in i32.
fn run_time_zero_point(cx: &mut Ctx, n: &NodeRef, a: Value, b: Value, za: Value, zb: Vec<i32>) -> Out {
    let Ok(bt) = cx.need_tensor(n, 1, "B") else {
        return Err(n.unsupported("a run-time zero point for A with a non-constant B"));
    };
    if bt.rank() != 2 {
        return Err(n.unsupported(format!("a run-time zero point for A with {}-d B", bt.rank())));
    }
    if cx.ty(za).shape.numel() != Some(1) {
        return Err(n.unsupported("a per-row zero point for A"));
    }
    let (k, nn) = (bt.shape()[0], bt.shape()[1]);
    if zb.is_empty() || (zb.len() != 1 && zb.len() != nn) {
        return Err(n.err(format!("{} zero points for B {}", zb.len(), cx.ty(b))));
    }
    let bv = bt.to_i64();
    let colsum: Vec<i32> =
        (0..nn).map(|j| (0..k).map(|i| bv[i * nn + j] as i32 - zb[if zb.len() == 1 { 0 } else { j }]).sum()).collect();
    let qa = Quant::PerTensor { scale: 1.0, zero_point: 0 };
    let qb = if zb.len() == 1 {
        Quant::PerTensor { scale: 1.0, zero_point: zb[0] }
    } else {
        Quant::PerAxis { axis: 1, scale: vec![1.0; nn], zero_point: zb }
    };
    let a = as_quant(cx, a, qa)?;
    let b = as_quant(cx, b, qb)?;
    let acc = qmatmul(cx, n, a, b, Requant::i32())?;
    let za = cx.cast(za, DType::I32)?;
    let cs = cx.konst(Tensor::new(vec![nn], smelt_ir::Data::I32(colsum)).expect("1-d"));
    let corr = cx.binary(BinaryOp::Mul, za, cs)?;
    Ok(vec![cx.binary(BinaryOp::Sub, acc, corr)?])
}

pub fn dynamic_quantize(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let x = cx.cast(x, DType::F32)?;
    let f = DType::F32;
    let all = |cx: &mut Ctx, kind: ReduceKind| cx.op(Op::Reduce { kind, axes: vec![], keepdims: false }, &[x]);
    let zero = cx.scalar(0.0, f);
    let mx = all(cx, ReduceKind::Max)?;
    let mx = cx.binary(BinaryOp::Max, mx, zero)?;
    let mn = all(cx, ReduceKind::Min)?;
    let mn = cx.binary(BinaryOp::Min, mn, zero)?;
    let range = cx.binary(BinaryOp::Sub, mx, mn)?;
    let flat = cx.binary(BinaryOp::Equal, range, zero)?;
    let one = cx.scalar(1.0, f);
    let range = cx.op(Op::Where, &[flat, one, range])?;
    let q = cx.scalar(255.0, f);
    let scale = cx.binary(BinaryOp::Div, range, q)?;
    let m = cx.binary(BinaryOp::Div, mn, scale)?;
    let izp = cx.unary(UnaryOp::Neg, m)?;
    let izp = cx.unary(UnaryOp::Clip { min: 0.0, max: 255.0 }, izp)?;
    let zp = cx.unary(UnaryOp::Round, izp)?;
    let y = cx.binary(BinaryOp::Div, x, scale)?;
    let y = cx.unary(UnaryOp::Round, y)?;
    let y = cx.binary(BinaryOp::Add, y, zp)?;
    let y = cx.unary(UnaryOp::Clip { min: 0.0, max: 255.0 }, y)?;
    let y = cx.cast(y, DType::U8)?;
    let zp = cx.cast(zp, DType::U8)?;
    Ok(vec![y, scale, zp])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("QuantizeLinear", quantize),
    ("DequantizeLinear", dequantize),
    ("QLinearMatMul", qlinear_matmul),
    ("QLinearConv", qlinear_conv),
    ("MatMulInteger", integer),
    ("ConvInteger", integer),
    ("DynamicQuantizeLinear", dynamic_quantize),
];
