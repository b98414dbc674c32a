//! ONNX math ops: unary functions and activations, binary arithmetic (with the
//! pre-opset-7 `broadcast`/`axis` form), comparisons and logic, variadic
//! Sum/Mean/Max/Min, Clip, Pow, PRelu, MatMul, Gemm, Softmax and LogSoftmax;
//! Hardmax (argmax against the axis's indices), LpNormalization and Det (the
//! Leibniz sum, up to 5×5).
//! Activations smelt lacks are written with its ops (Selu, Celu, Softsign, HardSwish,
//! Mish, ThresholdedRelu, Shrink, Tan, Sinh, Cosh, Asinh, Acosh, Atanh; Atan, Asin and Acos in
//! [`super::trig`]), and so
//! are IsNaN (`x ≠ x`) and IsInf.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::Gemm;
use smelt_ir::{BinaryOp, DType, Dim, Op, UnaryOp, Value};

type Out = Result<Vec<Value>>;

/// The smelt unary op of a parameterless ONNX one.
fn plain_unary(op: &str) -> Option<UnaryOp> {
    Some(match op {
        "Relu" => UnaryOp::Relu,
        "Sigmoid" => UnaryOp::Sigmoid,
        "Tanh" => UnaryOp::Tanh,
        "Exp" => UnaryOp::Exp,
        "Log" => UnaryOp::Log,
        "Sqrt" => UnaryOp::Sqrt,
        "Neg" => UnaryOp::Neg,
        "Abs" => UnaryOp::Abs,
        "Erf" => UnaryOp::Erf,
        "Reciprocal" => UnaryOp::Reciprocal,
        "Floor" => UnaryOp::Floor,
        "Ceil" => UnaryOp::Ceil,
        "Round" => UnaryOp::Round,
        "Sign" => UnaryOp::Sign,
        "Sin" => UnaryOp::Sin,
        "Cos" => UnaryOp::Cos,
        "Softplus" => UnaryOp::Softplus,
        "Not" => UnaryOp::Not,
        _ => return None,
    })
}

/// The ONNX unary ops this file imports.
pub const UNARY: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Erf",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Softplus",
    "Not",
    "Gelu",
    "LeakyRelu",
    "Elu",
    "HardSigmoid",
    "Selu",
    "Celu",
    "Softsign",
    "HardSwish",
    "Mish",
    "ThresholdedRelu",
    "Shrink",
    "Tan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Asin",
    "Acos",
    "Atan",
    "Swish",
    "IsNaN",
    "IsInf",
];

pub fn unary(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let d = cx.ty(x).dtype;
    let op = n.op_type();
    if let Some(u) = plain_unary(op) {
        return Ok(vec![cx.unary(u, x)?]);
    }
    let y = match op {
        // NaN is the one value unequal to itself.
        "IsNaN" => {
            let e = cx.binary(BinaryOp::Equal, x, x)?;
            cx.unary(UnaryOp::Not, e)?
        }
        "IsInf" => {
            let (neg, pos) = (n.int("detect_negative", 1)? != 0, n.int("detect_positive", 1)? != 0);
            let mut hits = vec![];
            for (on, v) in [(pos, f64::INFINITY), (neg, f64::NEG_INFINITY)] {
                if on {
                    let inf = cx.scalar(v, d);
                    hits.push(cx.binary(BinaryOp::Equal, x, inf)?);
                }
            }
            match hits[..] {
                [a, b] => cx.binary(BinaryOp::Or, a, b)?,
                [a] => a,
                _ => {
                    // Neither sign: all false.
                    let e = cx.binary(BinaryOp::Equal, x, x)?;
                    let ne = cx.unary(UnaryOp::Not, e)?;
                    cx.binary(BinaryOp::And, e, ne)?
                }
            }
        }
        "Gelu" => match n.string("approximate")?.as_deref().unwrap_or("none") {
            "none" => cx.unary(UnaryOp::Gelu, x)?,
            "tanh" => cx.unary(UnaryOp::GeluTanh, x)?,
            a => return Err(n.err(format!("unknown approximation `{a}`"))),
        },
        "LeakyRelu" => cx.unary(UnaryOp::LeakyRelu { alpha: n.float("alpha", 0.01)? }, x)?,
        "Elu" => cx.unary(UnaryOp::Elu { alpha: n.float("alpha", 1.0)? }, x)?,
        "HardSigmoid" => {
            cx.unary(UnaryOp::HardSigmoid { alpha: n.float("alpha", 0.2)?, beta: n.float("beta", 0.5)? }, x)?
        }
        "Selu" => {
            let (alpha, gamma) = (n.float("alpha", 1.673_263_2)?, n.float("gamma", 1.050_701)?);
            let e = cx.unary(UnaryOp::Elu { alpha }, x)?;
            let g = cx.scalar(gamma as f64, d);
            cx.binary(BinaryOp::Mul, e, g)?
        }
        "Celu" => {
            // alpha·elu(x/alpha)
            let a = n.float("alpha", 1.0)?;
            let s = cx.scalar(a as f64, d);
            let q = cx.binary(BinaryOp::Div, x, s)?;
            let e = cx.unary(UnaryOp::Elu { alpha: 1.0 }, q)?;
            cx.binary(BinaryOp::Mul, e, s)?
        }
        "Softsign" => {
            let a = cx.unary(UnaryOp::Abs, x)?;
            let one = cx.scalar(1.0, d);
            let den = cx.binary(BinaryOp::Add, a, one)?;
            cx.binary(BinaryOp::Div, x, den)?
        }
        "HardSwish" => {
            let h = cx.unary(UnaryOp::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, x)?;
            cx.binary(BinaryOp::Mul, x, h)?
        }
        "Mish" => {
            let s = cx.unary(UnaryOp::Softplus, x)?;
            let t = cx.unary(UnaryOp::Tanh, s)?;
            cx.binary(BinaryOp::Mul, x, t)?
        }
        "ThresholdedRelu" => {
            let a = cx.scalar(n.float("alpha", 1.0)? as f64, d);
            let c = cx.binary(BinaryOp::Greater, x, a)?;
            let z = cx.scalar(0.0, d);
            cx.op(Op::Where, &[c, x, z])?
        }
        "Shrink" => {
            let (b, l) = (n.float("bias", 0.0)? as f64, n.float("lambd", 0.5)? as f64);
            let (lo, hi, bb, z) = (cx.scalar(-l, d), cx.scalar(l, d), cx.scalar(b, d), cx.scalar(0.0, d));
            let below = cx.binary(BinaryOp::Less, x, lo)?;
            let above = cx.binary(BinaryOp::Greater, x, hi)?;
            let plus = cx.binary(BinaryOp::Add, x, bb)?;
            let minus = cx.binary(BinaryOp::Sub, x, bb)?;
            let inner = cx.op(Op::Where, &[above, minus, z])?;
            cx.op(Op::Where, &[below, plus, inner])?
        }
        "Swish" => {
            let a = cx.scalar(n.float("alpha", 1.0)? as f64, d);
            let ax = cx.binary(BinaryOp::Mul, x, a)?;
            let s = cx.unary(UnaryOp::Sigmoid, ax)?;
            cx.binary(BinaryOp::Mul, x, s)?
        }
        "Tan" => {
            let (s, c) = (cx.unary(UnaryOp::Sin, x)?, cx.unary(UnaryOp::Cos, x)?);
            cx.binary(BinaryOp::Div, s, c)?
        }
        "Sinh" | "Cosh" => hyperbolic(cx, x, op == "Sinh")?,
        "Atan" => super::trig::atan(cx, x)?,
        "Asin" => super::trig::asin(cx, x)?,
        "Acos" => super::trig::acos(cx, x)?,
        "Asinh" => {
            // sign(x)·log1p(|x| + x²/(1 + √(1 + x²))), and ln|x| + ln 2 where x²
            // would overflow.
            let (a, one) = (cx.unary(UnaryOp::Abs, x)?, cx.scalar(1.0, d));
            let x2 = cx.binary(BinaryOp::Mul, x, x)?;
            let r = cx.binary(BinaryOp::Add, x2, one)?;
            let r = cx.unary(UnaryOp::Sqrt, r)?;
            let den = cx.binary(BinaryOp::Add, r, one)?;
            let f = cx.binary(BinaryOp::Div, x2, den)?;
            let y = cx.binary(BinaryOp::Add, a, f)?;
            let near = log1p(cx, y, d)?;
            let y = big_log(cx, a, near, d)?;
            let s = cx.unary(UnaryOp::Sign, x)?;
            cx.binary(BinaryOp::Mul, s, y)?
        }
        "Acosh" => {
            // log1p((x − 1) + √((x − 1)(x + 1))), ln x + ln 2 for large x; NaN below 1.
            let one = cx.scalar(1.0, d);
            let (m, p) = (cx.binary(BinaryOp::Sub, x, one)?, cx.binary(BinaryOp::Add, x, one)?);
            let r = cx.binary(BinaryOp::Mul, m, p)?;
            let r = cx.unary(UnaryOp::Sqrt, r)?;
            let y = cx.binary(BinaryOp::Add, m, r)?;
            let near = log1p(cx, y, d)?;
            big_log(cx, x, near, d)?
        }
        "Atanh" => {
            // ½·log1p(2x/(1 − x)).
            let (one, two, half) = (cx.scalar(1.0, d), cx.scalar(2.0, d), cx.scalar(0.5, d));
            let den = cx.binary(BinaryOp::Sub, one, x)?;
            let num = cx.binary(BinaryOp::Mul, two, x)?;
            let q = cx.binary(BinaryOp::Div, num, den)?;
            let l = log1p(cx, q, d)?;
            cx.binary(BinaryOp::Mul, half, l)?
        }
        _ => return Err(n.unsupported("no importer")),
    };
    Ok(vec![y])
}

/// `sinh x` or `cosh x` as `e^(x − ln 2) ∓ e^(−x − ln 2)` (no intermediate
/// overflow below the result's own); `sinh` by its Taylor series to x⁷ for
/// |x| < 0.5, where the difference would cancel (relative error < 1e-8 there).
fn hyperbolic(cx: &mut Ctx, x: Value, sinh: bool) -> Result<Value> {
    let d = cx.ty(x).dtype;
    let ln2 = cx.scalar(std::f64::consts::LN_2, d);
    let a = cx.binary(BinaryOp::Sub, x, ln2)?;
    let nx = cx.unary(UnaryOp::Neg, x)?;
    let b = cx.binary(BinaryOp::Sub, nx, ln2)?;
    let (ea, eb) = (cx.unary(UnaryOp::Exp, a)?, cx.unary(UnaryOp::Exp, b)?);
    if !sinh {
        return cx.binary(BinaryOp::Add, ea, eb);
    }
    let far = cx.binary(BinaryOp::Sub, ea, eb)?;
    // x·(1 + x²/6·(1 + x²/20·(1 + x²/42)))
    let x2 = cx.binary(BinaryOp::Mul, x, x)?;
    let one = cx.scalar(1.0, d);
    let mut t = one;
    for k in [42.0, 20.0, 6.0] {
        let c = cx.scalar(1.0 / k, d);
        let u = cx.binary(BinaryOp::Mul, x2, c)?;
        let u = cx.binary(BinaryOp::Mul, u, t)?;
        t = cx.binary(BinaryOp::Add, one, u)?;
    }
    let near = cx.binary(BinaryOp::Mul, x, t)?;
    series_below(cx, x, 0.5, near, far, d)
}

/// `ln(1 + y)` without losing small `y`: its series to y⁴ for |y| < 0.01
/// (relative error < 1e-8), else `ln(u)·y/(u − 1)` with `u = 1 + y` (the
/// rounding of `u` cancels where `u − 1` is computed exactly; a GPU compiler
/// may fold it to `y`, leaving `ln u`, still within ~6e-6 there).
fn log1p(cx: &mut Ctx, y: Value, d: DType) -> Result<Value> {
    let one = cx.scalar(1.0, d);
    let u = cx.binary(BinaryOp::Add, one, y)?;
    let m = cx.binary(BinaryOp::Sub, u, one)?;
    let l = cx.unary(UnaryOp::Log, u)?;
    let q = cx.binary(BinaryOp::Div, y, m)?;
    let far = cx.binary(BinaryOp::Mul, l, q)?;
    // y·(1 − y·(1/2 − y·(1/3 − y/4)))
    let mut t = cx.scalar(0.25, d);
    for c in [1.0 / 3.0, 0.5, 1.0] {
        let yt = cx.binary(BinaryOp::Mul, y, t)?;
        let c = cx.scalar(c, d);
        t = cx.binary(BinaryOp::Sub, c, yt)?;
    }
    let near = cx.binary(BinaryOp::Mul, y, t)?;
    series_below(cx, y, 0.01, near, far, d)
}

/// `near` (a series) where `|x| < lim`, else `far`.
fn series_below(cx: &mut Ctx, x: Value, lim: f64, near: Value, far: Value, d: DType) -> Result<Value> {
    let a = cx.unary(UnaryOp::Abs, x)?;
    let lim = cx.scalar(lim, d);
    let small = cx.binary(BinaryOp::Less, a, lim)?;
    cx.op(Op::Where, &[small, near, far])
}

/// `near`, or `ln a + ln 2` where `a` > 1e18 (asinh/acosh of large arguments,
/// whose squares overflow).
fn big_log(cx: &mut Ctx, a: Value, near: Value, d: DType) -> Result<Value> {
    let lim = cx.scalar(1e18, d);
    let big = cx.binary(BinaryOp::Greater, a, lim)?;
    let la = cx.unary(UnaryOp::Log, a)?;
    let ln2 = cx.scalar(std::f64::consts::LN_2, d);
    let far = cx.binary(BinaryOp::Add, la, ln2)?;
    cx.op(Op::Where, &[big, far, near])
}

fn binary_op(op: &str) -> Option<BinaryOp> {
    Some(match op {
        "Add" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Equal" => BinaryOp::Equal,
        "Less" => BinaryOp::Less,
        "LessOrEqual" => BinaryOp::LessEqual,
        "Greater" => BinaryOp::Greater,
        "GreaterOrEqual" => BinaryOp::GreaterEqual,
        "And" => BinaryOp::And,
        "Or" => BinaryOp::Or,
        "Xor" => BinaryOp::Xor,
        _ => return None,
    })
}

/// The ONNX binary ops this file imports through [`binary`].
pub const BINARY: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Pow",
    "PRelu",
    "Mod",
];

/// The second operand of a binary op, reshaped for the pre-opset-7 broadcast with an
/// explicit `axis`.
fn legacy_rhs(cx: &mut Ctx, n: &NodeRef, a: Value, b: Value) -> Result<Value> {
    if cx.opset >= 7 || !n.bool("broadcast", false)? {
        return Ok(b);
    }
    let Some(axis) = n.int_opt("axis")? else { return Ok(b) };
    let (ra, rb) = (cx.rank(a) as i64, cx.rank(b) as i64);
    let axis = if axis < 0 { axis + ra } else { axis };
    if axis < 0 || axis > ra || ra - axis < rb {
        return Err(n.err(format!("broadcast axis {axis} does not fit ranks {ra} and {rb}")));
    }
    let trailing = ra - axis - rb;
    let mut dims = cx.dims(b);
    dims.extend(std::iter::repeat_n(Dim::Fixed(1), trailing as usize));
    cx.reshape(b, &dims)
}

pub fn binary(cx: &mut Ctx, n: &NodeRef) -> Out {
    let a = cx.input(n, 0)?;
    let b = cx.input(n, 1)?;
    let b = legacy_rhs(cx, n, a, b)?;
    let op = n.op_type();
    if let Some(bop) = binary_op(op) {
        return Ok(vec![cx.binary(bop, a, b)?]);
    }
    let (da, db) = (cx.ty(a).dtype, cx.ty(b).dtype);
    match op {
        "Pow" => {
            if da.is_float() {
                let b = cx.cast(b, da)?;
                return Ok(vec![cx.binary(BinaryOp::Pow, a, b)?]);
            }
            let (fa, fb) = (cx.cast(a, DType::F32)?, cx.cast(b, DType::F32)?);
            let p = cx.binary(BinaryOp::Pow, fa, fb)?;
            Ok(vec![cx.cast(p, da)?])
        }
        "Mod" => {
            // a − q·b with q = floor(a/b) (Python's %) or trunc(a/b) (fmod), in f32 for
            // integers (exact below 2^24).
            let fmod = n.bool("fmod", false)?;
            let (fa, fb) = (cx.cast(a, DType::F32)?, cx.cast(b, DType::F32)?);
            let q = cx.binary(BinaryOp::Div, fa, fb)?;
            let q = if fmod {
                let s = cx.unary(UnaryOp::Sign, q)?;
                let m = cx.unary(UnaryOp::Abs, q)?;
                let m = cx.unary(UnaryOp::Floor, m)?;
                cx.binary(BinaryOp::Mul, s, m)?
            } else {
                cx.unary(UnaryOp::Floor, q)?
            };
            let qb = cx.binary(BinaryOp::Mul, q, fb)?;
            let r = cx.binary(BinaryOp::Sub, fa, qb)?;
            Ok(vec![cx.cast(r, da)?])
        }
        "PRelu" => {
            let xd = cx.dims(a);
            let sd = cx.dims(b);
            // Before opset 7 a 1-d slope is per channel (dim 1).
            let b = if cx.opset < 7 && sd.len() == 1 && xd.len() > 2 && xd[1] == sd[0] {
                let mut d = sd.clone();
                d.extend(std::iter::repeat_n(Dim::Fixed(1), xd.len() - 2));
                cx.reshape(b, &d)?
            } else {
                b
            };
            let _ = db;
            Ok(vec![cx.binary(BinaryOp::Prelu, a, b)?])
        }
        _ => Err(n.unsupported("no importer")),
    }
}

/// Sum, Mean, Max, Min over any number of inputs.
pub fn variadic(cx: &mut Ctx, n: &NodeRef) -> Out {
    let mut ins = Vec::new();
    for i in 0..n.num_inputs() {
        if let Some(v) = cx.opt_input(n, i)? {
            ins.push(v);
        }
    }
    let first = *ins.first().ok_or_else(|| n.err("no inputs"))?;
    let op = match n.op_type() {
        "Sum" | "Mean" => BinaryOp::Add,
        "Max" => BinaryOp::Max,
        _ => BinaryOp::Min,
    };
    let mut acc = first;
    for &v in &ins[1..] {
        acc = cx.binary(op, acc, v)?;
    }
    if n.op_type() == "Mean" && ins.len() > 1 {
        let k = cx.scalar(ins.len() as f64, cx.ty(acc).dtype);
        acc = cx.binary(BinaryOp::Div, acc, k)?;
    }
    if acc == first {
        acc = cx.copy(first)?;
    }
    Ok(vec![acc])
}

pub fn clip(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let d = cx.ty(x).dtype;
    // (known bound, dynamic bound)
    let mut bound = |i: usize, attr: &str, default: f32| -> Result<(Option<f32>, Option<Value>)> {
        if cx.opset < 11 {
            return Ok((Some(n.float(attr, default)?), None));
        }
        let Some(name) = n.input_name(i) else { return Ok((Some(default), None)) };
        match cx.known(name).and_then(|k| k.tensor()) {
            Some(t) => Ok((t.to_f32().first().copied(), None)),
            None => Ok((None, Some(cx.input(n, i)?))),
        }
    };
    let (lo, lo_v) = bound(1, "min", f32::NEG_INFINITY)?;
    let (hi, hi_v) = bound(2, "max", f32::INFINITY)?;
    if d.is_float()
        && let (Some(min), Some(max)) = (lo, hi)
    {
        return Ok(vec![cx.unary(UnaryOp::Clip { min, max }, x)?]);
    }
    let mut y = x;
    for (k, v, op) in [(lo, lo_v, BinaryOp::Max), (hi, hi_v, BinaryOp::Min)] {
        let b = match (k, v) {
            (_, Some(v)) => v,
            (Some(k), None) if k.is_finite() => cx.scalar(k as f64, d),
            _ => continue,
        };
        y = cx.binary(op, y, b)?;
    }
    if y == x {
        y = cx.copy(x)?;
    }
    Ok(vec![y])
}

pub fn matmul(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (a, b) = (cx.input(n, 0)?, cx.input(n, 1)?);
    Ok(vec![cx.op(Op::MatMul, &[a, b])?])
}

pub fn gemm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (a, b) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let c = cx.opt_input(n, 2)?;
    let g = Gemm {
        trans_a: n.bool("transA", false)?,
        trans_b: n.bool("transB", false)?,
        alpha: n.float("alpha", 1.0)?,
        beta: n.float("beta", 1.0)?,
    };
    let ins: Vec<Value> = [a, b].into_iter().chain(c).collect();
    Ok(vec![cx.op(Op::Gemm(g), &ins)?])
}

/// Softmax and LogSoftmax; before opset 13 they work on the input flattened to 2-d
/// at `axis` (default 1).
pub fn softmax(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let log = n.op_type() == "LogSoftmax";
    let dims = cx.dims(x);
    let r = dims.len() as i64;
    if cx.opset >= 13 {
        return Ok(vec![cx.op(Op::Softmax { axis: n.int("axis", -1)?, log }, &[x])?]);
    }
    let a = n.int("axis", 1)?;
    let a = if a < 0 { a + r } else { a };
    if !(0..r.max(1)).contains(&a) {
        return Err(n.err(format!("axis {a} is out of range for rank {r}")));
    }
    if a == r - 1 {
        return Ok(vec![cx.op(Op::Softmax { axis: -1, log }, &[x])?]);
    }
    let (h, t) = dims.split_at(a as usize);
    let (Some(h), Some(t)) = (super::tensor::prod_dim(h), super::tensor::prod_dim(t)) else {
        return Err(n.unsupported("2-d softmax over symbolic dims"));
    };
    let flat = cx.reshape(x, &[h, t])?;
    let s = cx.op(Op::Softmax { axis: -1, log }, &[flat])?;
    Ok(vec![cx.reshape(s, &dims)?])
}

/// Hardmax: 1 at the first maximum along the axis, 0 elsewhere — `argmax`
/// (which takes the first) compared with the axis's indices, whose size must be
/// fixed. Before opset 13 the input is seen as 2-d, `[..axis) × [axis..)`, as for
/// Softmax.
pub fn hardmax(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let dims = cx.dims(x);
    let r = dims.len() as i64;
    let d = cx.ty(x).dtype;
    let one_hot = |cx: &mut Ctx, v: Value, axis: i64| -> Result<Value> {
        let vd = cx.dims(v);
        let a = smelt_ir::shape::normalize_axis(axis, vd.len()).ok_or_else(|| n.err(format!("axis {axis} is out of range for rank {}", vd.len())))?;
        let len = vd[a].fixed().ok_or_else(|| n.unsupported("Hardmax over a symbolic axis"))? as usize;
        let i = cx.op(Op::ArgReduce { kind: smelt_ir::ops::ArgKind::Max, axis: a as i64, keepdims: true }, &[v])?;
        // The indices 0..len along axis `a` (1 elsewhere), broadcast against i.
        let mut shape = vec![1usize; vd.len()];
        shape[a] = len;
        let idx = smelt_ir::Data::from_i64(DType::I64, &(0..len as i64).collect::<Vec<_>>());
        let iota = cx.konst(smelt_ir::Tensor::new(shape, idx).map_err(|e| n.err(format!("{e:?}")))?);
        let hit = cx.binary(BinaryOp::Equal, iota, i)?;
        cx.cast(hit, d)
    };
    if cx.opset >= 13 {
        return Ok(vec![one_hot(cx, x, n.int("axis", -1)?)?]);
    }
    let a = n.int("axis", 1)?;
    let a = if a < 0 { a + r } else { a };
    if !(0..r.max(1)).contains(&a) {
        return Err(n.err(format!("axis {a} is out of range for rank {r}")));
    }
    let (h, t) = dims.split_at(a as usize);
    let (Some(h), Some(t)) = (super::tensor::prod_dim(h), super::tensor::prod_dim(t)) else {
        return Err(n.unsupported("2-d hardmax over symbolic dims"));
    };
    let flat = cx.reshape(x, &[h, t])?;
    let y = one_hot(cx, flat, -1)?;
    Ok(vec![cx.reshape(y, &dims)?])
}

/// LpNormalization: `x / ‖x‖ₚ` along `axis` (default −1), p = 1 or 2; where
/// the norm is 0 (x all zeros there) the result is 0, as ONNX's reference.
pub fn lp_normalization(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axis = n.int("axis", -1)?;
    let kind = match n.int("p", 2)? {
        1 => smelt_ir::ops::ReduceKind::Sum,
        2 => smelt_ir::ops::ReduceKind::L2,
        p => return Err(n.err(format!("p = {p}: LpNormalization takes p = 1 or 2"))),
    };
    let v = if kind == smelt_ir::ops::ReduceKind::Sum { cx.unary(UnaryOp::Abs, x)? } else { x };
    let norm = cx.op(Op::Reduce { kind, axes: vec![axis], keepdims: true }, &[v])?;
    let d = cx.ty(x).dtype;
    let (zero, one) = (cx.scalar(0.0, d), cx.scalar(1.0, d));
    let none = cx.binary(BinaryOp::Equal, norm, zero)?;
    let safe = cx.op(Op::Where, &[none, one, norm])?;
    Ok(vec![cx.binary(BinaryOp::Div, x, safe)?])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("Hardmax", hardmax),
    ("LpNormalization", lp_normalization),
    ("Sum", variadic),
    ("Mean", variadic),
    ("Max", variadic),
    ("Min", variadic),
    ("Clip", clip),
    ("MatMul", matmul),
    ("Gemm", gemm),
    ("Softmax", softmax),
    ("LogSoftmax", softmax),
    ("Det", det),
];

/// The largest matrix side Det takes (its Leibniz sum has n! terms).
const MAX_DET: usize = 5;

/// Det of `[..., n, n]` (n ≤ 5) by the Leibniz formula: every permutation's
/// product of entries gathered at once (one gather of the flattened matrices at
/// a constant `[n!, n]` table, a product over the last axis), signed and summed.
/// Exact in the algebra, as few ops as there are; a larger n is refused (an LU
/// factorization with pivoting is not written with smelt's ops).
pub fn det(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let dims = cx.dims(x);
    let r = dims.len();
    let side = match (r >= 2).then(|| (dims[r - 2].fixed(), dims[r - 1].fixed())) {
        Some((Some(a), Some(b))) if a == b && a >= 1 => a as usize,
        _ => return Err(n.err(format!("Det takes square matrices [..., n, n] of a fixed n, found {}", cx.ty(x)))),
    };
    if side > MAX_DET {
        return Err(n.unsupported(format!("Det of {side}×{side} matrices (the Leibniz formula is written up to {MAX_DET}×{MAX_DET})")));
    }
    if !cx.ty(x).dtype.is_float() {
        return Err(n.err(format!("Det takes floats, found {}", cx.ty(x))));
    }
    // Permutations in lexicographic order with their signs.
    let mut perms: Vec<Vec<usize>> = vec![vec![]];
    for k in 0..side {
        perms = perms
            .into_iter()
            .flat_map(|p| (0..=k).map(move |i| {
                let mut q = p.clone();
                q.insert(i, k);
                q
            }))
            .collect();
    }
    let sign = |p: &[usize]| -> f32 {
        let inversions = (0..p.len()).flat_map(|i| (i + 1..p.len()).map(move |j| (i, j))).filter(|&(i, j)| p[i] > p[j]).count();
        if inversions % 2 == 0 { 1.0 } else { -1.0 }
    };
    let table: Vec<i64> = perms.iter().flat_map(|p| p.iter().enumerate().map(|(i, &c)| (i * side + c) as i64)).collect();
    let signs: Vec<f32> = perms.iter().map(|p| sign(p)).collect();
    let count = perms.len();
    let mut flat_dims = dims[..r - 2].to_vec();
    flat_dims.push(Dim::Fixed((side * side) as u64));
    let flat = cx.reshape(x, &flat_dims)?;
    let idx = cx.konst(smelt_ir::Tensor::i64(vec![count, side], table).map_err(|e| n.err(e.to_string()))?);
    let picked = cx.op(Op::Gather { axis: -1 }, &[flat, idx])?;
    let prods = cx.op(Op::Reduce { kind: smelt_ir::ops::ReduceKind::Prod, axes: vec![-1], keepdims: false }, &[picked])?;
    let dt = cx.ty(x).dtype;
    let s = cx.konst(smelt_ir::Tensor::new(vec![count], smelt_ir::Data::from_f32(dt, &signs)).map_err(|e| n.err(e.to_string()))?);
    let signed = cx.binary(BinaryOp::Mul, prods, s)?;
    Ok(vec![cx.op(Op::Reduce { kind: smelt_ir::ops::ReduceKind::Sum, axes: vec![-1], keepdims: false }, &[signed])?])
}
