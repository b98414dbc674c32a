//! Lowering of `matmul` (numpy: 1-d operands promoted, batch dims broadcast),
//! ONNX `gemm` (transposes, alpha, beta, broadcast C) and `fused_matmul` (an
//! elementwise epilogue over the product) onto the GEMM schedule of `gemm.rs`.

use super::gemm::{DirectA, Extra, GemmSpec, OperandA, OperandB, PackSrc, gemm, pack};
use super::util::{Operand, broadcast_strides};
use super::Lowerer;
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::{BinaryOp, DType, Expr as IrExpr, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let int = |d: DType| matches!(d, DType::I32 | DType::I64);
    if matches!(op, Op::MatMul | Op::Gemm(_)) && ins.iter().all(|t| int(t.dtype)) && outs.iter().all(|t| int(t.dtype)) {
        return true;
    }
    matches!(op, Op::MatMul | Op::Gemm(_) | Op::FusedMatMul { .. })
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().all(|t| t.dtype == DType::F32)
}

/// Integer `gemm`, as the reference: `alpha·op(a)·op(b) + beta·c` in f64 (the
/// products summed in order), truncated to i64 (saturating, NaN → 0) and
/// saturated into the output dtype.
fn int_gemm(l: &mut Lowerer, node: &str, g: &smelt_ir::ops::Gemm, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (a, b) = (a_mat(&ins[0], g.trans_a), b_mat(&ins[1], g.trans_b));
    if a.cols != b.rows || !a.batch.is_empty() || !b.batch.is_empty() {
        return Err(super::internal(node, "gemm takes 2-d operands with equal inner dims"));
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let cst = ins.get(2).map(|c| broadcast_strides(&c.shape, &[m, n]));
    let mut kb = KernelBuilder::new(l.kernel_name(node, ""));
    let ab = kb.buffer("a", ins[0].scalar, ins[0].len(), Access::Read);
    let bb = kb.buffer("b", ins[1].scalar, ins[1].len(), Access::Read);
    let cb = ins.get(2).map(|c| kb.buffer("c", c.scalar, c.len(), Access::Read));
    let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let f64c = |x: f32| Expr::cast(Scalar::F64, Expr::f(x));
    let (alpha, beta, out_sc) = (g.alpha, g.beta, out.scalar);
    let par = if m > 1 && (m * n * k) as u64 >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    kb.for_("i", Expr::i(0), Expr::i(m as i64), par, |kb, i| {
        kb.for_n("j", n as u64, |kb, j| {
            let acc = kb.var("s", Ty { scalar: Scalar::F64, lanes: 1 });
            kb.set(acc, f64c(0.0));
            kb.for_n("p", k as u64, |kb, p| {
                let x = Expr::cast(Scalar::F64, Expr::load(ab, i.clone() * a.rs + p.clone() * a.cs));
                let z = Expr::cast(Scalar::F64, Expr::load(bb, p * b.rs + j.clone() * b.cs));
                kb.set(acc, Expr::var(acc) + x * z);
            });
            let mut v = f64c(alpha) * Expr::var(acc);
            if let (Some(cb), Some(st)) = (cb, &cst) {
                v = v + f64c(beta) * Expr::cast(Scalar::F64, Expr::load(cb, i.clone() * st[0] + j.clone() * st[1]));
            }
            kb.store(y, i.clone() * n as i64 + j, Expr::cast(out_sc, Expr::cast(Scalar::I64, v)));
        });
    });
    let mut args = vec![ins[0].buf, ins[1].buf];
    args.extend(ins.get(2).map(|c| c.buf));
    args.push(out.buf);
    l.step(node, kb.finish(), args);
    Ok(true)
}

/// Integer `matmul`, as the reference: products and sums wrap in i64, the result
/// saturates into the output dtype. A plain loop nest (rows parallel when large).
/// On the GPU (i32 only) the i64 accumulator is two i32 words (`int32::mac64`).
fn int_matmul(l: &mut Lowerer, node: &str, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (a, b) = (a_mat(&ins[0], false), b_mat(&ins[1], false));
    if a.cols != b.rows {
        return Err(super::internal(node, "matmul inner dims differ"));
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let batch = broadcast(&a.batch, &b.batch);
    let sa: Vec<i64> = broadcast_strides(&a.batch, &batch).into_iter().map(|s| s * (m * k) as i64).collect();
    let sb: Vec<i64> = broadcast_strides(&b.batch, &batch).into_iter().map(|s| s * (k * n) as i64).collect();
    let so: Vec<i64> = broadcast_strides(&batch, &batch).into_iter().map(|s| s * (m * n) as i64).collect();
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let ab = kb.buffer("a", ins[0].scalar, ins[0].len(), Access::Read);
    let bb = kb.buffer("b", ins[1].scalar, ins[1].len(), Access::Read);
    let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let work = out.len().saturating_mul(k as u64);
    let par = work >= l.target.parallel_min_elems;
    let out_sc = out.scalar;
    let gpu32 = l.target.is_gpu() && [ins[0].scalar, ins[1].scalar, out_sc] == [Scalar::I32; 3];
    // Dims of the nest: the batch dims, then rows; the first is parallel when large.
    let mut dims: Vec<usize> = batch.clone();
    dims.push(m);
    #[allow(clippy::too_many_arguments)]
    fn level(kb: &mut KernelBuilder, d: usize, dims: &[usize], st: &[[i64; 3]], offs: [Expr; 3], par: bool, f: &mut dyn FnMut(&mut KernelBuilder, [Expr; 3], Expr)) {
        let kind = if d == 0 && par { LoopKind::Parallel } else { LoopKind::Serial };
        kb.for_("d", Expr::i(0), Expr::i(dims[d] as i64), kind, |kb, i| {
            if d + 1 == dims.len() {
                f(kb, offs, i);
            } else {
                let offs = [0, 1, 2].map(|j| offs[j].clone() + i.clone() * st[d][j]);
                level(kb, d + 1, dims, st, offs, par, f);
            }
        });
    }
    let st: Vec<[i64; 3]> = (0..batch.len()).map(|d| [sa[d], sb[d], so[d]]).collect();
    let mut body = |kb: &mut KernelBuilder, offs: [Expr; 3], row: Expr| {
        let [oa, ob, oy] = offs;
        kb.for_n("c", n as u64, |kb, c| {
            if gpu32 {
                // No i64 on the GPU: the accumulator is two i32 words.
                let acc = super::int32::acc64(kb);
                kb.for_n("p", k as u64, |kb, p| {
                    let x = Expr::load(ab, oa.clone() + row.clone() * a.rs + p.clone() * a.cs);
                    let z = Expr::load(bb, ob.clone() + p * b.rs + c.clone() * b.cs);
                    super::int32::mac64(kb, acc, x, z);
                });
                kb.store(y, oy.clone() + row.clone() * n as i64 + c, super::int32::saturate64(acc));
                return;
            }
            let acc = kb.var("acc", Ty::I64);
            kb.set(acc, Expr::i(0));
            kb.for_n("p", k as u64, |kb, p| {
                let x = Expr::cast(Scalar::I64, Expr::load(ab, oa.clone() + row.clone() * a.rs + p.clone() * a.cs));
                let z = Expr::cast(Scalar::I64, Expr::load(bb, ob.clone() + p * b.rs + c.clone() * b.cs));
                kb.set(acc, Expr::var(acc) + x * z);
            });
            kb.store(y, oy.clone() + row.clone() * n as i64 + c, Expr::cast(out_sc, Expr::var(acc)));
        });
    };
    level(&mut kb, 0, &dims, &st, [Expr::i(0), Expr::i(0), Expr::i(0)], par, &mut body);
    l.step(node, kb.finish(), vec![ins[0].buf, ins[1].buf, out.buf]);
    Ok(true)
}

/// A matrix operand: its batch dims and element (row, col) strides.
struct Mat {
    batch: Vec<usize>,
    rows: usize,
    cols: usize,
    rs: i64,
    cs: i64,
}

fn a_mat(a: &Operand, trans: bool) -> Mat {
    let r = a.shape.len();
    if r == 1 {
        return Mat { batch: vec![], rows: 1, cols: a.shape[0], rs: a.shape[0] as i64, cs: 1 };
    }
    let (x, y) = (a.shape[r - 2], a.shape[r - 1]);
    let batch = a.shape[..r - 2].to_vec();
    if trans { Mat { batch, rows: y, cols: x, rs: 1, cs: y as i64 } } else { Mat { batch, rows: x, cols: y, rs: y as i64, cs: 1 } }
}

fn b_mat(b: &Operand, trans: bool) -> Mat {
    let r = b.shape.len();
    if r == 1 {
        return Mat { batch: vec![], rows: b.shape[0], cols: 1, rs: 1, cs: 1 };
    }
    a_mat(b, trans)
}

fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r).map(|i| get(a, i).max(get(b, i))).collect()
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let out = &outs[0];
    if out.scalar != Scalar::F32 {
        return match op {
            Op::MatMul => int_matmul(l, node, ins, out),
            Op::Gemm(g) => int_gemm(l, node, g, ins, out),
            _ => Ok(false),
        };
    }
    let (trans_a, trans_b) = match op {
        Op::Gemm(g) => (g.trans_a, g.trans_b),
        _ => (false, false),
    };
    let (a, b) = (a_mat(&ins[0], trans_a), b_mat(&ins[1], trans_b));
    if a.cols != b.rows {
        return Err(super::internal(node, "matmul inner dims differ"));
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let batch = broadcast(&a.batch, &b.batch);
    let t = l.target.clone();
    let (mr, nr) = (t.mr, t.nr);
    let sa = PackSrc { buf: ins[0].buf, batches: a.batch.iter().product(), bstride: (m * k) as i64, count: m, depth: k, s_lane: a.rs, s_depth: a.cs };
    let sb = PackSrc { buf: ins[1].buf, batches: b.batch.iter().product(), bstride: (k * n) as i64, count: n, depth: k, s_lane: b.cs, s_depth: b.rs };
    // A in place (no packing kernel) when it is computed, row-major, and its rows
    // fill whole panels.
    let a_const = matches!(l.prog.buffer(ins[0].buf).kind, super::BufKind::Const(_));
    let in_place = t.direct_a && !a_const && a.cs == 1 && m.is_multiple_of(mr);
    let scale = |s: Vec<i64>, by: i64| s.into_iter().map(|x| x * by).collect::<Vec<_>>();
    let direct_a = in_place.then(|| DirectA { a: ins[0].buf, batch: scale(broadcast_strides(&a.batch, &batch), (m * k) as i64), rs: a.rs });
    let pa = if in_place { ins[0].buf } else { pack(l, node, "a", &sa, mr)? };
    let pb = pack(l, node, "b", &sb, nr)?;
    let per_a = (m.div_ceil(mr) * k * mr) as i64;
    let per_b = (n.div_ceil(nr) * k * nr) as i64;
    let pa_batch = scale(broadcast_strides(&a.batch, &batch), per_a);
    let pb_batch = scale(broadcast_strides(&b.batch, &batch), per_b);
    // The extras of the epilogue, broadcast to the output shape.
    let (has_m, has_n) = match op {
        Op::Gemm(_) => (true, true),
        _ => (ins[0].shape.len() > 1, ins[1].shape.len() > 1),
    };
    let extra = |o: &Operand| -> Extra {
        let s = broadcast_strides(&o.shape, &out.shape);
        let nb = batch.len();
        let rs = if has_m { s[nb] } else { 0 };
        let cs = if has_n { *s.last().unwrap_or(&0) } else { 0 };
        Extra { buf: o.buf, off: 0, batch: s[..nb].to_vec(), rs, cs }
    };
    let x = |i: usize| IrExpr::Input(i);
    let mul = |e: IrExpr, c: f32| IrExpr::binary(BinaryOp::Mul, e, IrExpr::Const(c));
    let (extras, epilogue) = match op {
        Op::MatMul => (vec![], x(0)),
        Op::Gemm(g) => match ins.get(2) {
            Some(c) => (vec![extra(c)], IrExpr::binary(BinaryOp::Add, mul(x(0), g.alpha), mul(x(1), g.beta))),
            None if g.alpha == 1.0 => (vec![], x(0)),
            None => (vec![], mul(x(0), g.alpha)),
        },
        Op::FusedMatMul { epilogue } => (ins[2..].iter().map(extra).collect(), epilogue.clone()),
        _ => return Ok(false),
    };
    let a = match direct_a {
        Some(d) => OperandA::InPlace(d),
        None => OperandA::Packed { pa, batch: pa_batch },
    };
    let spec = GemmSpec { batch, m, n, k, a, b: OperandB::Packed { pb, batch: pb_batch }, c: out.buf, extras, epilogue };
    gemm(l, node, &spec)?;
    Ok(true)
}
