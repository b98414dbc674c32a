//! Interpreter: normalization — inference batch norm, layer norm (ONNX
//! LayerNormalization, population variance), max-subtracted softmax /
//! log-softmax along one axis, and local response normalization across channels
//! (ONNX LRN). Computed in f64, stored in the node's dtype.

use super::Arg;
use super::util::from_f32;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let arg = |i: usize| ins.get(i).map(|a| a.value).ok_or_else(|| format!("{} needs input {i}", op.name()));
    let x = arg(0)?;
    let v = match *op {
        Op::BatchNorm { epsilon } => batch_norm(x, [arg(1)?, arg(2)?, arg(3)?, arg(4)?], epsilon)?,
        Op::LayerNorm { axis, epsilon } => layer_norm(x, arg(1)?, ins.get(2).map(|a| a.value), axis, epsilon)?,
        Op::Softmax { axis, log } => softmax(x, axis, log)?,
        Op::Lrn { size, alpha, beta, bias } => lrn(x, size, alpha, beta, bias)?,
        _ => return Err(format!("{} is not a normalization op", op.name())),
    };
    Ok(vec![from_f32(o, v)])
}

fn up(t: &Tensor) -> Vec<f64> {
    t.to_f32().into_iter().map(f64::from).collect()
}

/// `(x − mean)/√(var+ε)·scale + bias` per channel (dim 1).
fn batch_norm(x: &Tensor, [scale, bias, mean, var]: [&Tensor; 4], eps: f32) -> Result<Vec<f32>, String> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(format!("batch_norm expects [N, C, …], found {s:?}"));
    }
    let c = s[1];
    let inner: usize = s[2..].iter().product();
    for (what, t) in [("scale", scale), ("bias", bias), ("mean", mean), ("var", var)] {
        if t.numel() != c {
            return Err(format!("batch_norm {what} {:?} does not have {c} elements", t.shape()));
        }
    }
    let (sc, bi, me, va) = (up(scale), up(bias), up(mean), up(var));
    Ok(up(x)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let ch = (i / inner.max(1)) % c;
            ((v - me[ch]) / (va[ch] + eps as f64).sqrt() * sc[ch] + bi[ch]) as f32
        })
        .collect())
}

/// `x / (bias + α/size · Σ x²)^β`, the sum over the channels `c − ⌊(size−1)/2⌋ …
/// c + ⌈(size−1)/2⌉` that exist (dim 1), at each position.
fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<Vec<f32>, String> {
    let s = x.shape();
    if s.len() < 2 || size == 0 {
        return Err(format!("lrn expects [N, C, …] and size ≥ 1, found {s:?} and {size}"));
    }
    let (c, inner) = (s[1], s[2..].iter().product::<usize>());
    let v = up(x);
    let (below, above) = ((size - 1) / 2, size / 2);
    let coef = alpha as f64 / size as f64;
    Ok((0..v.len())
        .map(|i| {
            let (ch, pos, img) = ((i / inner) % c, i % inner, i / (inner * c));
            let (lo, hi) = (ch.saturating_sub(below), (ch + above).min(c - 1));
            let sq: f64 = (lo..=hi).map(|k| v[(img * c + k) * inner + pos].powi(2)).sum();
            (v[i] / (bias as f64 + coef * sq).powf(beta as f64)) as f32
        })
        .collect())
}

/// Normalizes over dims `axis..rank`; scale and bias have those dims.
fn layer_norm(x: &Tensor, scale: &Tensor, bias: Option<&Tensor>, axis: i64, eps: f32) -> Result<Vec<f32>, String> {
    let s = x.shape();
    let a = normalize_axis(axis, s.len()).ok_or_else(|| format!("layer_norm axis {axis} is out of range for {s:?}"))?;
    let inner: usize = s[a..].iter().product();
    let sc = up(scale);
    let bi = match bias {
        Some(b) => up(b),
        None => vec![0.0; inner],
    };
    if sc.len() != inner || bi.len() != inner {
        return Err(format!("layer_norm scale/bias must have {inner} elements (dims {:?})", &s[a..]));
    }
    let xv = up(x);
    let mut out = Vec::with_capacity(xv.len());
    for row in xv.chunks(inner.max(1)) {
        let mean = row.iter().sum::<f64>() / inner as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / inner as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        out.extend(row.iter().enumerate().map(|(j, v)| ((v - mean) * rstd * sc[j] + bi[j]) as f32));
    }
    Ok(out)
}

/// Softmax (or log-softmax) along `axis`, subtracting the max first.
fn softmax(x: &Tensor, axis: i64, log: bool) -> Result<Vec<f32>, String> {
    let s = x.shape();
    let a = normalize_axis(axis, s.len()).ok_or_else(|| format!("softmax axis {axis} is out of range for {s:?}"))?;
    let (outer, len, inner): (usize, usize, usize) = (s[..a].iter().product(), s[a], s[a + 1..].iter().product());
    let xv = up(x);
    let mut out = vec![0f32; xv.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let max = (0..len).map(|k| xv[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|k| (xv[at(k)] - max).exp()).sum();
            for k in 0..len {
                let z = xv[at(k)] - max;
                out[at(k)] = if log { (z - sum.ln()) as f32 } else { (z.exp() / sum) as f32 };
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn softmax_of_zero_and_ln2() {
        // e^0 = 1, e^ln2 = 2 → [1/3, 2/3]; log: [ln(1/3), ln(2/3)].
        let x = f(&[2], &[0., std::f32::consts::LN_2]);
        close(&softmax(&x, -1, false).unwrap(), &[1. / 3., 2. / 3.]);
        close(&softmax(&x, 0, true).unwrap(), &[(1f32 / 3.).ln(), (2f32 / 3.).ln()]);
    }

    #[test]
    fn softmax_axis0_and_large_values() {
        // Along axis 0 of [[0, 1000], [0, 1000]]: each column is two equal values → 1/2 each
        // (1000 would overflow exp without the max subtraction).
        let x = f(&[2, 2], &[0., 1000., 0., 1000.]);
        close(&softmax(&x, 0, false).unwrap(), &[0.5; 4]);
    }

    #[test]
    fn layer_norm_row() {
        // Row [1, 3]: mean 2, population variance 1; eps 0 → [-1, 1]; scale [2, 1], bias [0, 10]
        // → [-2, 11].
        let x = f(&[1, 2], &[1., 3.]);
        let y = layer_norm(&x, &f(&[2], &[2., 1.]), Some(&f(&[2], &[0., 10.])), -1, 0.0).unwrap();
        close(&y, &[-2., 11.]);
    }

    #[test]
    fn batch_norm_per_channel() {
        // ε = 1. Channel 0 (scale 2, bias 0.5, mean 1, var 3): (x − 1)/√4·2 + 0.5 on [1, 5]
        // → [0.5, 4.5]. Channel 1 (scale 1, bias 0, mean 0, var 1): x/√2 on [7, 8].
        let x = f(&[1, 2, 2], &[1., 5., 7., 8.]);
        let y = batch_norm(&x, [&f(&[2], &[2., 1.]), &f(&[2], &[0.5, 0.]), &f(&[2], &[1., 0.]), &f(&[2], &[3., 1.])], 1.0).unwrap();
        close(&y, &[0.5, 4.5, 7. / 2f32.sqrt(), 8. / 2f32.sqrt()]);
    }
}
