//! Interpreter: the elementwise family — unary functions, `cast`, binary ops with
//! numpy broadcasting, comparisons, logic and `where`. Floats are computed in f32
//! with the scalar reference semantics of `UnaryOp::eval` / `BinaryOp::eval`;
//! integers in i64 with `BinaryOp::eval_int`, saturated into the output dtype.

use super::Arg;
use super::shape::concat_data;
use super::util::{broadcast_map, dims, from_f32, from_i64};
use smelt_ir::{BinaryOp, DType, Data, Op, Tensor, TensorType, UnaryOp};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let arg = |i: usize| ins.get(i).map(|a| a.value).ok_or_else(|| format!("{} needs input {i}", op.name()));
    let t = match op {
        Op::Unary(u) => unary(*u, arg(0)?, o)?,
        Op::Cast { .. } => cast(arg(0)?, o),
        Op::Binary(b) => binary(*b, arg(0)?, arg(1)?, o)?,
        Op::Where => select(arg(0)?, arg(1)?, arg(2)?, o)?,
        _ => return Err(format!("{} is not an elementwise op", op.name())),
    };
    Ok(vec![t])
}

/// One unary op: floats in f32; integers (neg, abs, sign, relu, identity) in i64;
/// `not` on bools.
pub(super) fn unary(u: UnaryOp, x: &Tensor, o: &TensorType) -> Result<Tensor, String> {
    let d = x.dtype();
    if d.is_float() {
        return Ok(from_f32(o, x.to_f32().into_iter().map(|v| u.eval(v)).collect()));
    }
    if d == DType::Bool {
        let v = match (u, x.data()) {
            (UnaryOp::Not, Data::Bool(v)) => v.iter().map(|b| !b).collect(),
            (UnaryOp::Identity, Data::Bool(v)) => v.clone(),
            _ => return Err(format!("{} does not take bool input", u.name())),
        };
        return Tensor::new(dims(o), Data::Bool(v)).map_err(|e| e.to_string());
    }
    let f: fn(i64) -> i64 = match u {
        UnaryOp::Neg => i64::wrapping_neg,
        UnaryOp::Abs => i64::wrapping_abs,
        UnaryOp::Sign => i64::signum,
        UnaryOp::Relu => |v| v.max(0),
        UnaryOp::Identity => |v| v,
        _ => return Err(format!("{} does not take {d} input", u.name())),
    };
    Ok(from_i64(o, x.to_i64().into_iter().map(f).collect()))
}

/// `cast`: from a float, values go through f32 (to an integer they truncate toward
/// zero and saturate; to bool `x != 0`); from an integer or bool, through i64
/// (saturating).
pub(super) fn cast(x: &Tensor, o: &TensorType) -> Tensor {
    if x.dtype().is_float() { from_f32(o, x.to_f32()) } else { from_i64(o, x.to_i64()) }
}

/// The broadcast positions of an operand of shape `s` in the output `od`, or an
/// error when it does not broadcast there.
fn bmap(s: &[usize], od: &[usize]) -> Result<Vec<usize>, String> {
    if s.len() > od.len() || s.iter().rev().zip(od.iter().rev()).any(|(&d, &w)| d != 1 && d != w) {
        return Err(format!("operand {s:?} does not broadcast to {od:?}"));
    }
    Ok(broadcast_map(od, s))
}

/// A binary op with numpy broadcasting into the output shape.
pub(super) fn binary(b: BinaryOp, x: &Tensor, y: &Tensor, o: &TensorType) -> Result<Tensor, String> {
    if x.dtype() != y.dtype() {
        return Err(format!("{} mixes {} and {}", b.name(), x.dtype(), y.dtype()));
    }
    let od = dims(o);
    let (mx, my) = (bmap(x.shape(), &od)?, bmap(y.shape(), &od)?);
    if x.dtype().is_float() {
        let (xv, yv) = (x.to_f32(), y.to_f32());
        let v = mx.iter().zip(&my).map(|(&i, &j)| b.eval(xv[i], yv[j])).collect();
        return Ok(from_f32(o, v));
    }
    let (xv, yv) = (x.to_i64(), y.to_i64());
    let mut v = Vec::with_capacity(mx.len());
    for (&i, &j) in mx.iter().zip(&my) {
        let (p, q) = (xv[i], yv[j]);
        v.push(b.eval_int(p, q).ok_or_else(|| match b {
            BinaryOp::Div => format!("integer division by zero or out of range ({p} / {q})"),
            _ => format!("{} of {p} and {q} has no integer result", b.name()),
        })?);
    }
    Ok(from_i64(o, v))
}

/// `where(cond, a, b)`, three-way broadcast; exact for every dtype (elements are
/// copied).
fn select(c: &Tensor, a: &Tensor, b: &Tensor, o: &TensorType) -> Result<Tensor, String> {
    let Data::Bool(cv) = c.data() else {
        return Err(format!("where expects a bool condition, found {}", c.dtype()));
    };
    let od = dims(o);
    let (mc, ma, mb) = (bmap(c.shape(), &od)?, bmap(a.shape(), &od)?, bmap(b.shape(), &od)?);
    // Positions into a's elements followed by b's.
    let both = concat_data(&[a.data(), b.data()])?;
    let pos: Vec<usize> = (0..mc.len()).map(|i| if cv[mc[i]] { ma[i] } else { a.numel() + mb[i] }).collect();
    Tensor::new(od, both.take(&pos)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: Vec<(&str, Tensor)>) -> Result<Tensor, String> {
        let g = smelt_ir::text::parse(src).map_err(|e| format!("{e:?}"))?;
        let ins: BTreeMap<String, Tensor> = inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut o = crate::run(&g, &ins).map_err(|e| e.to_string())?;
        o.remove("y").ok_or_else(|| "no y".to_string())
    }

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn broadcast_add() {
        // [[1],[2]] + [10,20,30] = [[11,21,31],[12,22,32]].
        let y = run(
            "graph g(a: f32[2, 1], b: f32[3]) -> (y) { y = add(a, b) }",
            vec![("a", f(&[2, 1], &[1., 2.])), ("b", f(&[3], &[10., 20., 30.]))],
        )
        .unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.to_f32(), vec![11., 21., 31., 12., 22., 32.]);
    }

    #[test]
    fn integer_div_truncates_and_zero_errors() {
        // -7 / 2 = -3 (toward zero), 7 / -2 = -3; 1 / 0 is an error.
        let src = "graph g(a: i32[2], b: i32[2]) -> (y) { y = div(a, b) }";
        let i = |v: Vec<i32>| Tensor::new(vec![2], Data::I32(v)).unwrap();
        let y = run(src, vec![("a", i(vec![-7, 7])), ("b", i(vec![2, -2]))]).unwrap();
        assert_eq!(y.data(), &Data::I32(vec![-3, -3]));
        let e = run(src, vec![("a", i(vec![1, 1])), ("b", i(vec![0, 1]))]).unwrap_err();
        assert!(e.contains("division by zero"), "{e}");
    }

    #[test]
    fn integer_unary_saturates() {
        // i8: neg(-128) = 128 saturates to 127; abs(-5) = 5; relu(-3) = 0; sign(-9) = -1.
        let x = Tensor::new(vec![2], Data::I8(vec![-128, -5])).unwrap();
        let o = TensorType::new(DType::I8, smelt_ir::Shape::new([2u64]));
        assert_eq!(unary(UnaryOp::Neg, &x, &o).unwrap().data(), &Data::I8(vec![127, 5]));
        assert_eq!(unary(UnaryOp::Abs, &x, &o).unwrap().data(), &Data::I8(vec![127, 5]));
        assert_eq!(unary(UnaryOp::Relu, &x, &o).unwrap().data(), &Data::I8(vec![0, 0]));
        assert_eq!(unary(UnaryOp::Sign, &x, &o).unwrap().data(), &Data::I8(vec![-1, -1]));
    }

    #[test]
    fn casts() {
        // f32 → i8: 2.9 → 2, -2.9 → -2 (truncate), 300 → 127, -1e9 → -128 (saturate).
        let x = f(&[4], &[2.9, -2.9, 300., -1e9]);
        let y = run("graph g(x: f32[4]) -> (y) { y = cast(x) {to = i8} }", vec![("x", x)]).unwrap();
        assert_eq!(y.data(), &Data::I8(vec![2, -2, 127, -128]));
        // f32 → bool: x != 0.
        let y = run("graph g(x: f32[3]) -> (y) { y = cast(x) {to = bool} }", vec![("x", f(&[3], &[0., -0.5, 2.]))]).unwrap();
        assert_eq!(y.data(), &Data::Bool(vec![false, true, true]));
        // i64 → u8 saturates: -1 → 0, 256 → 255.
        let y = run("graph g(x: i64[2]) -> (y) { y = cast(x) {to = u8} }", vec![("x", Tensor::i64(vec![2], vec![-1, 256]).unwrap())]).unwrap();
        assert_eq!(y.data(), &Data::U8(vec![0, 255]));
    }

    #[test]
    fn compare_logic_where() {
        // [1,2,3] < 2 → [t,f,f]; xor with [t,t,f] → [f,t,f]; where picks a where true.
        let src = "graph g(a: f32[3], b: f32[1], m: bool[3], p: f32[3], q: f32[1]) -> (y) {\n  c = less(a, b)\n  d = xor(c, m)\n  y = where(d, p, q)\n}";
        let y = run(
            src,
            vec![
                ("a", f(&[3], &[1., 2., 3.])),
                ("b", f(&[1], &[2.])),
                ("m", Tensor::new(vec![3], Data::Bool(vec![true, true, false])).unwrap()),
                ("p", f(&[3], &[7., 8., 9.])),
                ("q", f(&[1], &[0.])),
            ],
        )
        .unwrap();
        assert_eq!(y.to_f32(), vec![0., 8., 0.]);
    }

    #[test]
    fn unary_float_reference() {
        // relu(-1) = 0; round(2.5) = 2 (half to even); sign(-0.5) = -1.
        let o = TensorType::f32(smelt_ir::Shape::new([1u64]));
        let x = |v: f32| f(&[1], &[v]);
        assert_eq!(unary(UnaryOp::Relu, &x(-1.), &o).unwrap().to_f32(), vec![0.]);
        assert_eq!(unary(UnaryOp::Round, &x(2.5), &o).unwrap().to_f32(), vec![2.]);
        assert_eq!(unary(UnaryOp::Sign, &x(-0.5), &o).unwrap().to_f32(), vec![-1.]);
    }
}
