//! ONNX neural-network ops: Conv (1-d, 2-d and 3-d: dilations, groups, auto_pad),
//! MaxPool (with its Indices output), AveragePool, LpPool (as an average pool of
//! `|x|^p`), GlobalAveragePool, GlobalMaxPool, BatchNormalization,
//! LayerNormalization (with its optional Mean and InvStdDev outputs),
//! InstanceNormalization, GroupNormalization, RMSNormalization and
//! MeanVarianceNormalization (written with reductions).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{Conv, Pool, PoolKind, ReduceKind, StorageOrder};
use smelt_ir::{BinaryOp, Dim, Op, UnaryOp, Value};

type Out = Result<Vec<Value>>;

/// Spatial attributes shared by Conv, ConvTranspose and the pools.
#[derive(Debug, Clone)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    /// Begins, then ends.
    pub pad: Vec<usize>,
    pub dilation: Vec<usize>,
}

/// Reads kernel (from `kernel` when given, else the attribute), strides, dilations
/// and pads, resolving `auto_pad` against the input's spatial dims.
pub fn window(n: &NodeRef, spatial: &[Dim], kernel: Option<Vec<usize>>, ceil: bool) -> Result<Window> {
    let r = spatial.len();
    let kernel = match kernel {
        Some(k) => k,
        None => n.usizes("kernel_shape")?.ok_or_else(|| n.err("no kernel_shape"))?,
    };
    let stride = n.usizes("strides")?.unwrap_or_else(|| vec![1; r]);
    let dilation = n.usizes("dilations")?.unwrap_or_else(|| vec![1; r]);
    if kernel.len() != r
        || stride.len() != r
        || dilation.len() != r
        || kernel.contains(&0)
        || stride.contains(&0)
        || dilation.contains(&0)
    {
        return Err(n.err(format!(
            "kernel {kernel:?}, strides {stride:?} or dilations {dilation:?} do not fit {r} spatial dims"
        )));
    }
    if kernel.iter().chain(&stride).chain(&dilation).any(|&v| v > 1 << 20) {
        return Err(n.err(format!("kernel {kernel:?}, strides {stride:?} or dilations {dilation:?} are too large")));
    }
    let auto = n.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let pad = match auto.as_str() {
        "NOTSET" | "" => {
            let p = n.usizes("pads")?.unwrap_or_else(|| vec![0; 2 * r]);
            if p.len() != 2 * r || p.iter().any(|&v| v > 1 << 20) {
                return Err(n.err(format!("pads {p:?} do not fit {r} spatial dims")));
            }
            p
        }
        "VALID" => vec![0; 2 * r],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut b = vec![0; r];
            let mut e = vec![0; r];
            for i in 0..r {
                let span = (kernel[i] - 1) * dilation[i] + 1;
                let total = match spatial[i].fixed() {
                    Some(d) => {
                        let d = d as usize;
                        let out = d.div_ceil(stride[i]);
                        ((out.max(1) - 1) * stride[i] + span).saturating_sub(d)
                    }
                    None if stride[i] == 1 => span - 1,
                    None => return Err(n.unsupported("auto_pad SAME with a stride over a symbolic dim")),
                };
                let small = total / 2;
                (b[i], e[i]) = if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
            }
            let _ = ceil;
            b.extend(e);
            b
        }
        a => return Err(n.err(format!("unknown auto_pad `{a}`"))),
    };
    Ok(Window { kernel, stride, pad, dilation })
}

/// The `group` attribute of a convolution (default 1), checked to be positive.
pub fn group(n: &NodeRef) -> Result<usize> {
    let g = n.int("group", 1)?;
    usize::try_from(g).ok().filter(|&g| g > 0).ok_or_else(|| n.err(format!("group {g} must be positive")))
}

/// The number of spatial dims of `x`, checked to be 1, 2 or 3.
fn spatial_rank(cx: &Ctx, n: &NodeRef, x: Value) -> Result<usize> {
    match cx.rank(x) {
        r @ 3..=5 => Ok(r - 2),
        r => Err(n.unsupported(format!(
            "{}-d input: smelt has 1-d, 2-d and 3-d convolution and pooling",
            r.saturating_sub(2)
        ))),
    }
}

pub fn conv(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let w = cx.input(n, 1)?;
    let b = cx.opt_input(n, 2)?;
    let r = spatial_rank(cx, n, x)?;
    let wd = cx.fixed_dims(n, w, "Conv weights")?;
    if wd.len() != r + 2 {
        return Err(n.err(format!("weights {} do not fit a {r}-d conv", cx.ty(w))));
    }
    let win = window(n, &cx.dims(x)[2..], Some(wd[2..].to_vec()), false)?;
    if n.usizes("kernel_shape")?.is_some_and(|k| k != wd[2..]) {
        return Err(n.err("kernel_shape does not match the weights"));
    }
    let c = Conv { stride: win.stride, pad: win.pad, dilation: win.dilation, groups: group(n)? };
    let ins: Vec<Value> = [x, w].into_iter().chain(b).collect();
    Ok(vec![cx.op(Op::Conv(c), &ins)?])
}

pub fn pool(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let kind = if n.op_type() == "MaxPool" { PoolKind::Max } else { PoolKind::Avg };
    let indices = if kind == PoolKind::Max && n.has_output(1) {
        Some(match n.int("storage_order", 0)? {
            0 => StorageOrder::RowMajor,
            1 => StorageOrder::ColMajor,
            s => return Err(n.err(format!("storage_order {s} is not 0 or 1"))),
        })
    } else {
        n.only_outputs(1, "indices")?;
        None
    };
    spatial_rank(cx, n, x)?;
    let ceil_mode = n.bool("ceil_mode", false)?;
    let win = window(n, &cx.dims(x)[2..], None, ceil_mode)?;
    // Max pooling of integers: exact in f32 for 8-bit values.
    let d = cx.ty(x).dtype;
    let xin = if kind == PoolKind::Max && matches!(d, smelt_ir::DType::U8 | smelt_ir::DType::I8) {
        cx.cast(x, smelt_ir::DType::F32)?
    } else {
        x
    };
    let p = Pool {
        kind,
        kernel: win.kernel,
        stride: win.stride,
        pad: win.pad,
        dilation: win.dilation,
        ceil_mode,
        count_include_pad: kind == PoolKind::Avg && n.bool("count_include_pad", false)?,
        indices,
    };
    let outs = cx.op_multi(Op::Pool(p), &[xin])?;
    let mut v = vec![cx.cast(outs[0], d)?];
    v.extend(outs.get(1));
    Ok(v)
}

/// LpPool: `(Σ |x|^p)^(1/p)` over each window, zeros in the padding. Written as an
/// average pool of `|x|^p` that counts the padding, times the window size (exact:
/// without ceil_mode every window position lies in the padded input).
pub fn lp_pool(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    spatial_rank(cx, n, x)?;
    if n.bool("ceil_mode", false)? {
        return Err(n.unsupported("ceil_mode"));
    }
    let p = n.int("p", 2)?;
    if !(1..=64).contains(&p) {
        return Err(n.unsupported(format!("p = {p}")));
    }
    let win = window(n, &cx.dims(x)[2..], None, false)?;
    let d = cx.ty(x).dtype;
    let a = cx.unary(UnaryOp::Abs, x)?;
    let ap = match p {
        1 => a,
        2 => cx.binary(BinaryOp::Mul, a, a)?,
        _ => {
            let e = cx.scalar(p as f64, d);
            cx.binary(BinaryOp::Pow, a, e)?
        }
    };
    let size: usize = win.kernel.iter().product();
    let pool = Pool {
        kind: PoolKind::Avg,
        kernel: win.kernel,
        stride: win.stride,
        pad: win.pad,
        dilation: win.dilation,
        ceil_mode: false,
        count_include_pad: true,
        indices: None,
    };
    let avg = cx.op(Op::Pool(pool), &[ap])?;
    let k = cx.scalar(size as f64, d);
    let sum = cx.binary(BinaryOp::Mul, avg, k)?;
    Ok(vec![match p {
        1 => sum,
        2 => cx.unary(UnaryOp::Sqrt, sum)?,
        _ => {
            let e = cx.scalar(1.0 / p as f64, d);
            cx.binary(BinaryOp::Pow, sum, e)?
        }
    }])
}

pub fn global_pool(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let kind = if n.op_type() == "GlobalMaxPool" { PoolKind::Max } else { PoolKind::Avg };
    Ok(vec![cx.op(Op::GlobalPool(kind), &[x])?])
}

/// LRN: `lrn` with the same attributes (`size` is required).
pub fn lrn(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let size = n.int("size", 0)?;
    if size < 1 {
        return Err(n.err(format!("size must be a positive integer, found {size}")));
    }
    let (alpha, beta, bias) = (n.float("alpha", 1e-4)?, n.float("beta", 0.75)?, n.float("bias", 1.0)?);
    Ok(vec![cx.op(Op::Lrn { size: size as usize, alpha, beta, bias }, &[x])?])
}

pub fn batch_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    if n.bool("training_mode", false)? {
        return batch_norm_training(cx, n);
    }
    n.only_outputs(1, "running statistics (training)")?;
    if cx.opset < 9 && !n.bool("spatial", true)? {
        return Err(n.unsupported("spatial = 0"));
    }
    let mut ins = Vec::new();
    for i in 0..5 {
        ins.push(cx.input(n, i)?);
    }
    Ok(vec![cx.op(Op::BatchNorm { epsilon: n.float("epsilon", 1e-5)? }, &ins)?])
}

/// BatchNormalization in training mode (opset 14+): normalized with the
/// batch's own mean and (population) variance over every axis but the
/// channels'; the running statistics come out updated,
/// `running · momentum + batch · (1 − momentum)`.
fn batch_norm_training(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let (scale, bias, mean, var) = (cx.input(n, 1)?, cx.input(n, 2)?, cx.input(n, 3)?, cx.input(n, 4)?);
    let r = cx.rank(x);
    if r < 2 {
        return Err(n.err(format!("the input must be [N, C, …], found {}", cx.ty(x))));
    }
    let d = cx.ty(x).dtype;
    let eps = n.float("epsilon", 1e-5)?;
    let momentum = n.float("momentum", 0.9)? as f64;
    let axes: Vec<i64> = (0..r as i64).filter(|&a| a != 1).collect();
    let (_, inv, centered) = moments(cx, x, axes.clone(), eps)?;
    // [C] statistics, and [1, C, 1…] to scale and shift x.
    let batch_mean = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes: axes.clone(), keepdims: false }, &[x])?;
    let sq = cx.binary(BinaryOp::Mul, centered, centered)?;
    let batch_var = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes, keepdims: false }, &[sq])?;
    let c = cx.dims(scale);
    let mut bdims = vec![Dim::Fixed(1); r];
    bdims[1] = c.first().cloned().ok_or_else(|| n.err("scale must be [C]"))?;
    let (sc, bi) = (cx.reshape(scale, &bdims)?, cx.reshape(bias, &bdims)?);
    let y = cx.binary(BinaryOp::Mul, centered, inv)?;
    let y = cx.binary(BinaryOp::Mul, y, sc)?;
    let y = cx.binary(BinaryOp::Add, y, bi)?;
    let (m, one_m) = (cx.scalar(momentum, d), cx.scalar(1.0 - momentum, d));
    let running = |cx: &mut Ctx, old: Value, batch: Value| -> Result<Value> {
        let a = cx.binary(BinaryOp::Mul, old, m)?;
        let b = cx.binary(BinaryOp::Mul, batch, one_m)?;
        cx.binary(BinaryOp::Add, a, b)
    };
    let rm = running(cx, mean, batch_mean)?;
    let rv = running(cx, var, batch_var)?;
    Ok(vec![y, rm, rv])
}

/// Mean and 1/√(var + ε) of `x` over `axes` (kept as size-1 dims), and x − mean.
pub fn moments(cx: &mut Ctx, x: Value, axes: Vec<i64>, eps: f32) -> Result<(Value, Value, Value)> {
    let d = cx.ty(x).dtype;
    let mean = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes: axes.clone(), keepdims: true }, &[x])?;
    let centered = cx.binary(BinaryOp::Sub, x, mean)?;
    let sq = cx.binary(BinaryOp::Mul, centered, centered)?;
    let var = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes, keepdims: true }, &[sq])?;
    let e = cx.scalar(eps as f64, d);
    let ve = cx.binary(BinaryOp::Add, var, e)?;
    let inv = cx.unary(UnaryOp::Rsqrt, ve)?;
    Ok((mean, inv, centered))
}

/// MeanVarianceNormalization: `(x − mean) / (σ + 1e-9)` over `axes` (default
/// N, H and W), as ONNX's function body (the variance taken about the mean).
pub fn mean_variance_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axes = n.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let d = cx.ty(x).dtype;
    let mean = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes: axes.clone(), keepdims: true }, &[x])?;
    let centered = cx.binary(BinaryOp::Sub, x, mean)?;
    let sq = cx.binary(BinaryOp::Mul, centered, centered)?;
    let var = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes, keepdims: true }, &[sq])?;
    let sd = cx.unary(UnaryOp::Sqrt, var)?;
    let e = cx.scalar(1e-9, d);
    let den = cx.binary(BinaryOp::Add, sd, e)?;
    Ok(vec![cx.binary(BinaryOp::Div, centered, den)?])
}

pub fn layer_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let scale = cx.input(n, 1)?;
    let bias = cx.opt_input(n, 2)?;
    let r = cx.rank(x) as i64;
    let axis = n.int("axis", -1)?;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return Err(n.err(format!("axis {axis} is out of range for rank {r}")));
    }
    let eps = n.float("epsilon", 1e-5)?;
    let norm = cx.dims(x)[a as usize..].to_vec();
    let fits = |cx: &Ctx, v: Option<Value>| v.is_none_or(|v| cx.dims(v) == norm);
    let direct = fits(cx, Some(scale)) && fits(cx, bias);
    let axes: Vec<i64> = (a..r).collect();
    let mut outs = Vec::new();
    let stats = if !direct || n.has_output(1) || n.has_output(2) { Some(moments(cx, x, axes, eps)?) } else { None };
    if direct {
        let ins: Vec<Value> = [x, scale].into_iter().chain(bias).collect();
        outs.push(cx.op(Op::LayerNorm { axis, epsilon: eps }, &ins)?);
    } else {
        let (_, inv, centered) = stats.expect("computed when not direct");
        let y = cx.binary(BinaryOp::Mul, centered, inv)?;
        let mut y = cx.binary(BinaryOp::Mul, y, scale)?;
        if let Some(b) = bias {
            y = cx.binary(BinaryOp::Add, y, b)?;
        }
        outs.push(y);
    }
    if let Some((mean, inv, _)) = stats {
        outs.extend([mean, inv]);
    }
    Ok(outs)
}

pub fn rms_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let scale = cx.input(n, 1)?;
    let r = cx.rank(x) as i64;
    let axis = n.int("axis", -1)?;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return Err(n.err(format!("axis {axis} is out of range for rank {r}")));
    }
    let d = cx.ty(x).dtype;
    let sq = cx.binary(BinaryOp::Mul, x, x)?;
    let ms = cx.op(Op::Reduce { kind: ReduceKind::Mean, axes: (a..r).collect(), keepdims: true }, &[sq])?;
    let e = cx.scalar(n.float("epsilon", 1e-5)? as f64, d);
    let ms = cx.binary(BinaryOp::Add, ms, e)?;
    let inv = cx.unary(UnaryOp::Rsqrt, ms)?;
    let y = cx.binary(BinaryOp::Mul, x, inv)?;
    Ok(vec![cx.binary(BinaryOp::Mul, y, scale)?])
}

/// Per-channel `[C]` → `[C, 1, …]` for an input of rank `r`.
fn per_channel(cx: &mut Ctx, v: Value, r: usize) -> Result<Value> {
    let mut d = cx.dims(v);
    d.extend(std::iter::repeat_n(Dim::Fixed(1), r.saturating_sub(2)));
    cx.reshape(v, &d)
}

pub fn instance_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let (s, b) = (cx.input(n, 1)?, cx.input(n, 2)?);
    let r = cx.rank(x);
    if r < 3 {
        return Err(n.err(format!("input {} needs spatial dims", cx.ty(x))));
    }
    let (_, inv, centered) = moments(cx, x, (2..r as i64).collect(), n.float("epsilon", 1e-5)?)?;
    let y = cx.binary(BinaryOp::Mul, centered, inv)?;
    let s = per_channel(cx, s, r)?;
    let b = per_channel(cx, b, r)?;
    let y = cx.binary(BinaryOp::Mul, y, s)?;
    Ok(vec![cx.binary(BinaryOp::Add, y, b)?])
}

pub fn group_norm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let (s, b) = (cx.input(n, 1)?, cx.input(n, 2)?);
    let g = n.int("num_groups", 0)?;
    let dims = cx.dims(x);
    let r = dims.len();
    let c = dims.get(1).and_then(Dim::fixed).ok_or_else(|| n.unsupported("a symbolic channel dim"))? as i64;
    if g <= 0 || c % g != 0 || r < 2 {
        return Err(n.err(format!("{c} channels do not split into {g} groups")));
    }
    let rest: Vec<Dim> = dims[2..].to_vec();
    let mut grouped = vec![dims[0].clone(), Dim::Fixed(g as u64), Dim::Fixed((c / g) as u64)];
    grouped.extend(rest);
    let xg = cx.reshape(x, &grouped)?;
    let (_, inv, centered) = moments(cx, xg, (2..grouped.len() as i64).collect(), n.float("epsilon", 1e-5)?)?;
    let y = cx.binary(BinaryOp::Mul, centered, inv)?;
    let y = cx.reshape(y, &dims)?;
    // Opset 18 gives scale and bias per group; 21 per channel.
    let per_group = cx.dims(s).first().and_then(Dim::fixed) == Some(g as u64) && g != c;
    let expand = |cx: &mut Ctx, v: Value| -> Result<Value> {
        if per_group {
            let v = cx.reshape(v, &[Dim::Fixed(g as u64), Dim::Fixed(1)])?;
            let shape = vec![smelt_ir::attr::DimSpec::Int(g), smelt_ir::attr::DimSpec::Int(c / g)];
            let v = cx.expand(v, &shape)?;
            let v = cx.reshape(v, &[Dim::Fixed(c as u64)])?;
            per_channel(cx, v, r)
        } else {
            per_channel(cx, v, r)
        }
    };
    let s = expand(cx, s)?;
    let b = expand(cx, b)?;
    let y = cx.binary(BinaryOp::Mul, y, s)?;
    Ok(vec![cx.binary(BinaryOp::Add, y, b)?])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("Conv", conv),
    ("MaxPool", pool),
    ("AveragePool", pool),
    ("LpPool", lp_pool),
    ("GlobalAveragePool", global_pool),
    ("GlobalMaxPool", global_pool),
    ("BatchNormalization", batch_norm),
    ("LRN", lrn),
    ("LayerNormalization", layer_norm),
    ("InstanceNormalization", instance_norm),
    ("GroupNormalization", group_norm),
    ("RMSNormalization", rms_norm),
    ("MeanVarianceNormalization", mean_variance_norm),
];
