//! Interpreter: the quantization family — `quantize`, `dequantize`, and the integer
//! `qmatmul`/`qconv1d`/`qconv2d`/`qconv3d` that accumulate `(x − zx)(w − zw)` in i32 and either
//! return the accumulators or requantize them (in f64) to i8/u8.

use super::{Arg, util};
use smelt_ir::ops::{Conv, Requant};
use smelt_ir::{DType, Op, Quant, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let x = ins.first().ok_or("missing input")?;
    let ty = out.first().ok_or("missing output type")?;
    match op {
        Op::Quantize(q) => quantize(x, &q.quant(x.value.rank())?, ty),
        Op::Dequantize => dequantize(x, ty),
        Op::QMatMul(r) => qmatmul(r, ins, ty),
        Op::QConv(c, r) => qconv(c, r, ins, ty),
        _ => Err(format!("quant::eval does not run {}", op.name())),
    }
}

/// Scale and zero point at index `i` of the quantized axis, without panicking.
fn qparam(q: &Quant, i: usize) -> Result<(f32, i32), String> {
    match q {
        Quant::PerTensor { scale, zero_point } => Ok((*scale, *zero_point)),
        Quant::PerAxis { scale, zero_point, .. } => match (scale.get(i), zero_point.get(i)) {
            (Some(s), Some(z)) => Ok((*s, *z)),
            _ => Err(format!("quantization parameters have no entry {i} ({} scales)", scale.len())),
        },
    }
}

/// For each flat position of `shape`, its index along `q`'s axis (0 when per tensor);
/// checks that the parameters cover that axis.
fn axis_index(q: &Quant, shape: &[usize]) -> Result<Vec<usize>, String> {
    let n: usize = shape.iter().product();
    match q {
        Quant::PerTensor { .. } => Ok(vec![0; n]),
        Quant::PerAxis { axis, scale, zero_point } => {
            let d =
                *shape.get(*axis).ok_or_else(|| format!("quantization axis {axis} is out of range for {shape:?}"))?;
            if scale.len() != d || zero_point.len() != d {
                return Err(format!("{} scales for axis {axis} of size {d}", scale.len()));
            }
            let st = util::strides(shape)[*axis];
            Ok((0..n).map(|f| (f / st) % d).collect())
        }
    }
}

/// `clamp(round_half_even(x / scale) + zp)`, the division in f32.
fn quantize(x: &Arg, q: &Quant, ty: &TensorType) -> Result<Vec<Tensor>, String> {
    let idx = axis_index(q, x.value.shape())?;
    let mut v = Vec::with_capacity(idx.len());
    for (xv, i) in x.value.to_f32().into_iter().zip(idx) {
        let (s, z) = qparam(q, i)?;
        // `as i64` saturates (NaN → 0); the dtype's range clamps afterwards.
        v.push(((xv / s).round_ties_even() as i64).saturating_add(z as i64));
    }
    Ok(vec![util::from_i64(ty, v)])
}

/// `(q − zp)·scale` in f32.
fn dequantize(x: &Arg, ty: &TensorType) -> Result<Vec<Tensor>, String> {
    let q = x.ty.quant.as_ref().ok_or_else(|| format!("dequantize expects a quantized input, found {}", x.ty))?;
    let idx = axis_index(q, x.value.shape())?;
    let mut v = Vec::with_capacity(idx.len());
    for (xv, i) in x.value.to_i64().into_iter().zip(idx) {
        let (s, z) = qparam(q, i)?;
        v.push((xv - z as i64) as f32 * s);
    }
    Ok(vec![util::from_f32(ty, v)])
}

/// The quantization of an argument, which must exist.
fn quant_of<'a>(a: &'a Arg, what: &str) -> Result<&'a Quant, String> {
    a.ty.quant.as_ref().ok_or_else(|| format!("{what} is not quantized: {}", a.ty))
}

/// The optional i32 bias of length `m`.
fn bias(ins: &[Arg], m: usize) -> Result<Vec<i32>, String> {
    match ins.get(2) {
        None => Ok(vec![0; m]),
        Some(b) => {
            let v: Vec<i32> = b.value.to_i64().into_iter().map(|x| x as i32).collect();
            if v.len() != m || b.value.dtype() != DType::I32 {
                return Err(format!("expected bias i32[{m}], found {}{:?}", b.value.dtype(), b.value.shape()));
            }
            Ok(v)
        }
    }
}

/// The accumulators as output: i32 as they are, or requantized with
/// `clamp(round_half_even(acc·sa·sb[c]/scale) + zero_point)` in f64, where `c(i)` is
/// the output channel of flat position `i`.
fn finish(
    r: &Requant,
    acc: Vec<i32>,
    sa: f32,
    sb: &[f32],
    chan: impl Fn(usize) -> usize,
    ty: &TensorType,
) -> Result<Tensor, String> {
    if r.dtype == DType::I32 {
        return Ok(util::from_i64(ty, acc.into_iter().map(i64::from).collect()));
    }
    let so = r.scale.ok_or("requantizing needs the output scale")? as f64;
    let mut v = Vec::with_capacity(acc.len());
    for (i, a) in acc.into_iter().enumerate() {
        let s = *sb.get(chan(i)).ok_or("channel out of range")? as f64;
        let q = (a as f64 * sa as f64 * s / so).round_ties_even() as i64;
        v.push(q.saturating_add(r.zero_point as i64));
    }
    Ok(util::from_i64(ty, v))
}

/// Per-channel scales and zero points of `q` for `n` channels.
fn params(q: &Quant, n: usize) -> Result<(Vec<f32>, Vec<i64>), String> {
    let mut s = Vec::with_capacity(n);
    let mut z = Vec::with_capacity(n);
    for c in 0..n {
        let (sc, zp) = qparam(q, c)?;
        s.push(sc);
        z.push(zp as i64);
    }
    Ok((s, z))
}

fn qmatmul(r: &Requant, ins: &[Arg], ty: &TensorType) -> Result<Vec<Tensor>, String> {
    let [a, b, ..] = ins else { return Err("qmatmul expects a and b".into()) };
    let (qa, qb) = (quant_of(a, "qmatmul a")?, quant_of(b, "qmatmul b")?);
    let [kb, n] = b.value.shape()[..] else {
        return Err(format!("qmatmul expects b [K, N], found {:?}", b.value.shape()));
    };
    let k = *a.value.shape().last().ok_or("qmatmul expects a [.., M, K]")?;
    if k != kb || qa.axis().is_some() || qb.axis().is_some_and(|ax| ax != 1) {
        return Err(format!("qmatmul: a {} and b {} do not match", a.ty, b.ty));
    }
    let (sa, za) = qparam(qa, 0)?;
    let (sb, zb) = params(qb, n)?;
    let bias = bias(ins, n)?;
    let (av, bv) = (a.value.to_i64(), b.value.to_i64());
    let rows = av.len().checked_div(k).unwrap_or(0);
    let mut acc = vec![0i32; rows * n];
    for row in 0..rows {
        for col in 0..n {
            let mut s = bias[col];
            for kk in 0..k {
                let p = (av[row * k + kk] - za as i64) * (bv[kk * n + col] - zb[col]);
                s = s.wrapping_add(p as i32);
            }
            acc[row * n + col] = s;
        }
    }
    Ok(vec![finish(r, acc, sa, &sb, |i| i % n.max(1), ty)?])
}

fn qconv(c: &Conv, r: &Requant, ins: &[Arg], ty: &TensorType) -> Result<Vec<Tensor>, String> {
    let [x, w, ..] = ins else { return Err("qconv expects x and w".into()) };
    let (qx, qw) = (quant_of(x, "qconv input")?, quant_of(w, "qconv weights")?);
    if qx.axis().is_some() || qw.axis().is_some_and(|ax| ax != 0) {
        return Err(format!("qconv: unsupported quantization of x {} or w {}", x.ty, w.ty));
    }
    let od = util::dims(ty);
    let (xs, ws) = (x.value.shape(), w.value.shape());
    let rk = c.rank();
    if xs.len() != rk + 2 || ws.len() != rk + 2 || od.len() != rk + 2 {
        return Err(format!("qconv{rk}d: unexpected shapes x {xs:?}, w {ws:?}"));
    }
    let (n, ci, m, cg, on, om) = (xs[0], xs[1], ws[0], ws[1], od[0], od[1]);
    let g = c.groups;
    if g == 0 || on != n || om != m || m % g != 0 || ci != cg * g {
        return Err(format!("qconv: x {xs:?}, w {ws:?} and groups {g} do not match"));
    }
    let taps = super::conv::taps(&xs[2..], &ws[2..], &od[2..], &c.stride, &c.pad, &c.dilation)?;
    let (sx, zx) = qparam(qx, 0)?;
    let (sw, zw) = params(qw, m)?;
    let bias = bias(ins, m)?;
    let (xv, wv) = (x.value.to_i64(), w.value.to_i64());
    let (xplane, nk): (usize, usize) = (xs[2..].iter().product(), ws[2..].iter().product());
    let plane: usize = od[2..].iter().product();
    let mg = m / g;
    let mut acc = vec![0i32; n * m * plane];
    for b in 0..n {
        for oc in 0..m {
            let grp = oc / mg;
            for o in 0..plane {
                let mut s = bias[oc];
                for cc in 0..cg {
                    let xb = (b * ci + grp * cg + cc) * xplane;
                    let wb = (oc * cg + cc) * nk;
                    // Padding (no tap) contributes x = zx, i.e. 0.
                    for (k, t) in taps[o * nk..(o + 1) * nk].iter().enumerate() {
                        if let Some(at) = t.at {
                            let p = (xv[xb + at] - zx as i64) * (wv[wb + k] - zw[oc]);
                            s = s.wrapping_add(p as i32);
                        }
                    }
                }
                acc[(b * m + oc) * plane + o] = s;
            }
        }
    }
    Ok(vec![finish(r, acc, sx, &sw, |i| (i / plane.max(1)) % m.max(1), ty)?])
}

#[cfg(test)]
mod tests {
    use smelt_ir::{Data, Tensor};
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: &[(&str, Tensor)]) -> BTreeMap<String, Tensor> {
        let g = smelt_ir::text::parse(src).expect("parses");
        let m = inputs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        crate::run(&g, &m).expect("runs")
    }

    fn i8s(shape: &[usize], v: &[i8]) -> Tensor {
        Tensor::new(shape.to_vec(), Data::I8(v.to_vec())).expect("sized")
    }

    /// x / 0.5 = [0.5, 1.5, −1]; half to even: [0, 2, −1]. With zero point 3 and u8:
    /// [3, 5, 2]; 200 / 0.5 = 400 saturates to 255.
    #[test]
    fn quantize_rounds_half_to_even() {
        let x = Tensor::f32(vec![3], vec![0.25, 0.75, -0.5]).expect("sized");
        let o = run("graph g(x: f32[3]) -> (y) { y = quantize(x) {scale = 0.5} }", &[("x", x)]);
        assert_eq!(o["y"].data(), &Data::I8(vec![0, 2, -1]));
        let x = Tensor::f32(vec![4], vec![0.25, 0.75, -0.5, 200.0]).expect("sized");
        let o =
            run("graph g(x: f32[4]) -> (y) { y = quantize(x) {dtype = u8, scale = 0.5, zero_point = 3} }", &[("x", x)]);
        assert_eq!(o["y"].data(), &Data::U8(vec![3, 5, 2, 255]));
    }

    /// Per axis 1 of a [2, 2]: column 0 scale 1, zp 0; column 1 scale 0.25, zp 1.
    /// x = [[1, 1], [−2, 0.5]] → [[1, 4 + 1], [−2, 2 + 1]] = [[1, 5], [−2, 3]];
    /// dequantize gives back x.
    #[test]
    fn per_axis_round_trip() {
        let x = Tensor::f32(vec![2, 2], vec![1.0, 1.0, -2.0, 0.5]).expect("sized");
        let src = "graph g(x: f32[2, 2]) -> (q, y) {
            q = quantize(x) {scale = [1.0, 0.25], zero_point = [0, 1], axis = 1}
            y = dequantize(q)
        }";
        let o = run(src, &[("x", x)]);
        assert_eq!(o["q"].data(), &Data::I8(vec![1, 5, -2, 3]));
        assert_eq!(o["y"].to_f32(), vec![1.0, 1.0, -2.0, 0.5]);
    }

    /// a = [[3, 5]] (za = 1 → [2, 4]), b = [[1, 2], [3, 4]] (zb = 0 per tensor).
    /// acc = [2·1 + 4·3, 2·2 + 4·4] = [14, 20]; bias [1, −1] → [15, 19].
    /// Requantized with sa = 0.5, sb = 0.25, scale 0.5: acc·0.25 = [3.75, 4.75] → [4, 5],
    /// zero point 10 → [14, 15].
    #[test]
    fn qmatmul_accumulates_and_requantizes() {
        let a = i8s(&[1, 2], &[3, 5]);
        let b = i8s(&[2, 2], &[1, 2, 3, 4]);
        let bias = Tensor::new(vec![2], Data::I32(vec![1, -1])).expect("sized");
        let ins = [("a", a), ("b", b), ("bias", bias)];
        let sig = "graph g(a: i8[1, 2] quant(scale = 0.5, zero_point = 1), b: i8[2, 2] quant(scale = 0.25), bias: i32[2]) -> (y)";
        let o = run(&format!("{sig} {{ y = qmatmul(a, b, bias) }}"), &ins);
        assert_eq!(o["y"].data(), &Data::I32(vec![15, 19]));
        let o = run(&format!("{sig} {{ y = qmatmul(a, b, bias) {{dtype = i8, scale = 0.5, zero_point = 10}} }}"), &ins);
        assert_eq!(o["y"].data(), &Data::I8(vec![14, 15]));
    }

    /// qconv1d, one channel, x = [1, 2, 3] with zx = 1 → [0, 1, 2]; w = [1, 1] (zw = 0);
    /// pad [1, 0]: padded input [pad, 0, 1, 2] where the pad counts as x − zx = 0;
    /// out = [0 + 0, 0 + 1, 1 + 2] = [0, 1, 3].
    #[test]
    fn qconv1d_pads_with_zero_point() {
        let x = i8s(&[1, 1, 3], &[1, 2, 3]);
        let w = i8s(&[1, 1, 2], &[1, 1]);
        let src =
            "graph g(x: i8[1, 1, 3] quant(scale = 1.0, zero_point = 1), w: i8[1, 1, 2] quant(scale = 1.0)) -> (y) {
            y = qconv1d(x, w) {pad = [1, 0]}
        }";
        let o = run(src, &[("x", x), ("w", w)]);
        assert_eq!(o["y"].data(), &Data::I32(vec![0, 1, 3]));
    }
}
