//! Interpreter: the fused forms — `fused_conv1d/2d/3d` (`act(conv(x, w, b) +
//! residual)`, or an epilogue over the conv and extra inputs), `fused_matmul` (an elementwise epilogue over the matmul result and
//! broadcast extra inputs) and `elementwise` regions. Computed in f32 (the conv and
//! matmul accumulate in f64) and rounded once into the node's dtype.

use super::util::{broadcast_map, dims, from_f32};
use super::{Arg, conv, linalg};
use smelt_ir::{Expr, Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let od = dims(o);
    let v = match op {
        Op::FusedConv { conv: c, activation, epilogue } => {
            let (x, w) = match ins {
                [x, w, ..] => (x.value, w.value),
                _ => return Err(format!("{} needs x and w", op.name())),
            };
            let mut v = conv::conv(x, w, ins.get(2).map(|b| b.value), c, &od)?;
            if let Some(e) = epilogue {
                let extra: Vec<&Tensor> = ins.iter().skip(3).map(|a| a.value).collect();
                if let Some(t) = extra.iter().find(|t| t.shape() != od.as_slice()) {
                    return Err(format!("{} epilogue input {:?} does not match the output {od:?}", op.name(), t.shape()));
                }
                return Ok(vec![from_f32(o, region(e, Some(&v), &extra, &od)?)]);
            }
            if let Some(r) = ins.get(3).map(|r| r.value) {
                if r.shape() != od.as_slice() {
                    return Err(format!("{} residual {:?} does not match the output {od:?}", op.name(), r.shape()));
                }
                for (y, rv) in v.iter_mut().zip(r.to_f32()) {
                    *y += rv;
                }
            }
            v.into_iter().map(|y| activation.eval(y)).collect()
        }
        Op::FusedMatMul { epilogue } => {
            let (a, b) = match ins {
                [a, b, ..] => (a.value, b.value),
                _ => return Err("fused_matmul needs a and b".to_string()),
            };
            let (shape, mm) = if a.dtype().is_float() {
                linalg::matmul_f32(a, b)?
            } else {
                let (s, v) = linalg::matmul_i64(a, b)?;
                (s, v.into_iter().map(|x| x as f32).collect())
            };
            if shape != od {
                return Err(format!("fused_matmul gives {shape:?}, the type says {od:?}"));
            }
            let extra: Vec<&Tensor> = ins[2..].iter().map(|a| a.value).collect();
            region(epilogue, Some(&mm), &extra, &od)?
        }
        Op::Elementwise { expr } => {
            let all: Vec<&Tensor> = ins.iter().map(|a| a.value).collect();
            region(expr, None, &all, &od)?
        }
        _ => return Err(format!("{} is not a fused op", op.name())),
    };
    Ok(vec![from_f32(o, v)])
}

/// Evaluates `expr` at every position of `od`: input 0 is `first` when given (already
/// of shape `od`), followed by `rest` broadcast to `od`.
fn region(expr: &Expr, first: Option<&[f32]>, rest: &[&Tensor], od: &[usize]) -> Result<Vec<f32>, String> {
    let n: usize = od.iter().product();
    let mut cols: Vec<(Vec<f32>, Vec<usize>)> = Vec::new();
    if let Some(f) = first {
        cols.push((f.to_vec(), (0..n).collect()));
    }
    for t in rest {
        let s = t.shape();
        if s.len() > od.len() || s.iter().rev().zip(od.iter().rev()).any(|(&d, &w)| d != 1 && d != w) {
            return Err(format!("input {s:?} does not broadcast to {od:?}"));
        }
        cols.push((t.to_f32(), broadcast_map(od, s)));
    }
    if expr.arity() > cols.len() {
        return Err(format!("expression `{expr}` uses {} inputs, given {}", expr.arity(), cols.len()));
    }
    let mut vals = vec![0f32; cols.len()];
    Ok((0..n)
        .map(|i| {
            for (slot, (v, map)) in vals.iter_mut().zip(&cols) {
                *slot = v[map[i]];
            }
            expr.eval(&vals)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: Vec<(&str, Tensor)>) -> Tensor {
        let g = smelt_ir::text::parse(src).unwrap();
        let ins: BTreeMap<String, Tensor> = inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        crate::run(&g, &ins).unwrap().remove("y").unwrap()
    }

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn fused_conv_bias_residual_relu() {
        // 1×1 conv with weight 2 and bias -5 on x = [1, 2, 3, 4] → [-3, -1, 1, 3];
        // + residual [1, 0, 0, -5] → [-2, -1, 1, -2]; relu → [0, 0, 1, 0].
        let y = run(
            "graph g(x: f32[1, 1, 4], w: f32[1, 1, 1], b: f32[1], r: f32[1, 1, 4]) -> (y) {\n  y = fused_conv1d(x, w, b, r) {activation = relu}\n}",
            vec![
                ("x", f(&[1, 1, 4], &[1., 2., 3., 4.])),
                ("w", f(&[1, 1, 1], &[2.])),
                ("b", f(&[1], &[-5.])),
                ("r", f(&[1, 1, 4], &[1., 0., 0., -5.])),
            ],
        );
        assert_eq!(y.to_f32(), vec![0., 0., 1., 0.]);
    }

    #[test]
    fn fused_matmul_epilogue() {
        // [[1,2],[3,4]]·I = same; epilogue add($0, $1) with $1 = [10, 20] per row, then relu of
        // sub(…, 13): [[11-13, 22-13], [13-13, 24-13]] → relu → [[0, 9], [0, 11]].
        let y = run(
            "graph g(a: f32[2, 2], b: f32[2, 2], e: f32[2]) -> (y) {\n  y = fused_matmul(a, b, e) {epilogue = relu(sub(add($0, $1), 13))}\n}",
            vec![("a", f(&[2, 2], &[1., 2., 3., 4.])), ("b", f(&[2, 2], &[1., 0., 0., 1.])), ("e", f(&[2], &[10., 20.]))],
        );
        assert_eq!(y.to_f32(), vec![0., 9., 0., 11.]);
    }

    #[test]
    fn elementwise_where_to_bool_and_float() {
        // where(greater($0, 0), $0, mul($0, 0.1)) on [-10, 0, 5] = [-1, 0, 5]; the comparison
        // alone is a bool region: [false, false, true].
        let x = f(&[3], &[-10., 0., 5.]);
        let y = run("graph g(x: f32[3]) -> (y) { y = elementwise(x) {expr = where(greater($0, 0), $0, mul($0, 0.1))} }", vec![("x", x.clone())]);
        assert_eq!(y.to_f32(), vec![-1., 0., 5.]);
        let y = run("graph g(x: f32[3]) -> (y) { y = elementwise(x) {expr = greater($0, 0)} }", vec![("x", x)]);
        assert_eq!(y.data(), &smelt_ir::Data::Bool(vec![false, false, true]));
    }
}
