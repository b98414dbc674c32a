//! Lowering of the shape ops as copies with index arithmetic (any dtype):
//! `transpose`, `expand`, `slice`, `concat` and `split` are strided copies (dims
//! coalesced, vectorized where both sides are contiguous); `pad` and `gather`
//! compute each source index. `reshape` is a view and never reaches here.
//! `gather` checks its indices at run time through a status buffer.

use super::util::{self, broadcast_strides, coalesce, nest, strides, Operand};
use super::{BufIdx, Check, Lowerer, internal};
use crate::kernel::{Access, BinOp, Expr, KernelBuilder, Scalar};
use crate::Error;
use smelt_ir::ops::PadMode;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{DType, Data, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], _outs: &[TensorType]) -> bool {
    match op {
        Op::Transpose { .. } | Op::Expand { .. } | Op::Slice(_) | Op::Concat { .. } | Op::Split { .. } | Op::Pad { .. } => true,
        Op::Gather { .. } => matches!(ins.get(1).map(|t| t.dtype), Some(DType::I32 | DType::I64)),
        _ => false,
    }
}

/// One strided copy: `dst[dst_base + Σ i·dst_st] = src[src_base + Σ i·src_st]`
/// over `dims`.
#[allow(clippy::too_many_arguments)]
fn copy(l: &mut Lowerer, node: &str, src: &Operand, dst: &Operand, dims: &[usize], src_st: Vec<i64>, src_base: i64, dst_st: Vec<i64>, dst_base: i64) {
    if dims.contains(&0) {
        return;
    }
    let name = l.kernel_name(node, "copy");
    let mut kb = KernelBuilder::new(name);
    let s = kb.buffer("src", src.scalar, src.len(), Access::Read);
    let d = kb.buffer("dst", dst.scalar, dst.len(), Access::Write);
    let (cd, st) = coalesce(dims, &[src_st, dst_st]);
    let t = l.target.clone();
    nest(&mut kb, &t, &cd, &st, |kb, idx| {
        kb.store(d, idx[1].clone() + dst_base, Expr::load(s, idx[0].clone() + src_base));
    });
    l.step(node, kb.finish(), vec![src.buf, dst.buf]);
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let x = &ins[0];
    let xst = strides(&x.shape);
    match op {
        Op::Transpose { perm } => {
            let out = &outs[0];
            let r = x.shape.len();
            let p = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            let src_st = p.iter().map(|&k| xst[k]).collect();
            copy(l, node, x, out, &out.shape, src_st, 0, strides(&out.shape), 0);
        }
        Op::Expand { .. } => {
            let out = &outs[0];
            copy(l, node, x, out, &out.shape, broadcast_strides(&x.shape, &out.shape), 0, strides(&out.shape), 0);
        }
        Op::Slice(s) => {
            let out = &outs[0];
            let d64: Vec<u64> = x.shape.iter().map(|&d| d as u64).collect();
            let r = s.resolve(&d64).map_err(|m| internal(node, &m))?;
            let mut src_st = xst.clone();
            let mut base = 0i64;
            for (ax, start, step, _) in r {
                src_st[ax] = xst[ax] * step;
                base += start * xst[ax];
            }
            copy(l, node, x, out, &out.shape, src_st, base, strides(&out.shape), 0);
        }
        Op::Concat { axis } => {
            let out = &outs[0];
            let a = normalize_axis(*axis, out.shape.len()).ok_or_else(|| internal(node, "concat axis"))?;
            let ost = strides(&out.shape);
            let mut at = 0;
            for i in ins {
                copy(l, node, i, out, &i.shape, strides(&i.shape), 0, ost.clone(), at * ost[a]);
                at += i.shape[a] as i64;
            }
        }
        Op::Split { axis, .. } => {
            let a = normalize_axis(*axis, x.shape.len()).ok_or_else(|| internal(node, "split axis"))?;
            let mut at = 0;
            for o in outs {
                copy(l, node, x, o, &o.shape, xst.clone(), at * xst[a], strides(&o.shape), 0);
                at += o.shape[a] as i64;
            }
        }
        Op::Pad { pads, mode, value } => pad(l, node, x, &outs[0], pads, *mode, *value)?,
        Op::Gather { axis } => gather(l, node, x, &ins[1], &outs[0], *axis)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn pad(l: &mut Lowerer, node: &str, x: &Operand, out: &Operand, pads: &[usize], mode: PadMode, value: f32) -> Result<(), Error> {
    let r = x.shape.len();
    if mode != PadMode::Constant && x.shape.contains(&0) {
        return Err(internal(node, &format!("{} pad of an empty axis", mode.name())));
    }
    if out.shape.contains(&0) {
        return Ok(());
    }
    let xst = strides(&x.shape);
    let ost = strides(&out.shape);
    // The fill value as the interpreter makes it: `Data::from_f32` into the dtype.
    let fill = match Data::from_f32(x.dtype, &[value]) {
        Data::F32(v) => Expr::f(v[0]),
        Data::Bool(v) => Expr::b(v[0]),
        d => Expr::int(d.to_i64()[0], x.scalar),
    };
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let s = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let d = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let xs = x.shape.clone();
    let t = l.target.clone();
    util::each_index(&mut kb, &t, &out.shape, |kb, oi| {
        let mut src = Expr::i(0);
        let mut ok = Expr::b(true);
        for k in 0..r {
            let len = xs[k] as i64;
            let j = kb.let_("at", oi[k].clone() - Expr::i(pads[k] as i64));
            let src_k = match mode {
                PadMode::Constant => {
                    ok = ok.and(j.clone().ge(Expr::i(0))).and(j.clone().lt(Expr::i(len)));
                    Expr::bin(BinOp::Min, Expr::bin(BinOp::Max, j, Expr::i(0)), Expr::i((len - 1).max(0)))
                }
                PadMode::Edge => Expr::bin(BinOp::Min, Expr::bin(BinOp::Max, j, Expr::i(0)), Expr::i(len - 1)),
                PadMode::Reflect if len == 1 => Expr::i(0),
                PadMode::Reflect => {
                    let period = 2 * (len - 1);
                    let m = kb.let_("m", (j % Expr::i(period) + Expr::i(period)) % Expr::i(period));
                    Expr::select(m.clone().lt(Expr::i(len)), m.clone(), Expr::i(period) - m)
                }
                // j ≥ −pad_begin, so adding a multiple of len above it makes j non-negative.
                PadMode::Wrap => {
                    let lift = (pads[k] as u64).div_ceil(len as u64) as i64 * len;
                    (j + Expr::i(lift)) % Expr::i(len)
                }
            };
            src = src + src_k * xst[k];
        }
        let at: Expr = oi.iter().zip(&ost).fold(Expr::i(0), |a, (i, s)| a + i.clone() * *s);
        let v = match mode {
            PadMode::Constant => Expr::select(ok, Expr::load(s, src), fill.clone()),
            _ => Expr::load(s, src),
        };
        kb.store(d, at, v);
    });
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(())
}

fn gather(l: &mut Lowerer, node: &str, x: &Operand, idx: &Operand, out: &Operand, axis: i64) -> Result<(), Error> {
    let a = normalize_axis(axis, x.shape.len()).ok_or_else(|| internal(node, "gather axis"))?;
    if out.shape.contains(&0) {
        return Ok(());
    }
    let (len, ir) = (x.shape[a] as i64, idx.shape.len());
    let xst = strides(&x.shape);
    let ist = strides(&idx.shape);
    let ost = strides(&out.shape);
    // The indices are checked first, in order (the first bad one is the one the
    // reference reports: the output walks every index for its first outer
    // position); the data then moves in parallel, a bad index read as 0.
    let status: BufIdx = l.temp(&format!("{node}.status"), Scalar::I64, 4);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "check"));
    let ib = kb.buffer("indices", idx.scalar, idx.len(), Access::Read);
    let st = kb.buffer("status", Scalar::I64, 4, Access::ReadWrite);
    kb.for_n("i", idx.len(), |kb, i| {
        let k = kb.let_("k", Expr::cast(Scalar::I64, Expr::load(ib, i)));
        let j = kb.let_("jj", Expr::select(k.clone().lt(Expr::i(0)), k.clone() + Expr::i(len), k.clone()));
        let bad = Expr::bin(BinOp::Or, j.clone().lt(Expr::i(0)), j.ge(Expr::i(len)));
        kb.if_(bad.and(Expr::load(st, Expr::i(0)).eq_(Expr::i(0))), |kb| {
            kb.store(st, Expr::i(0), Expr::i(1));
            kb.store(st, Expr::i(1), k.clone());
        });
    });
    let message = format!("gather index {{0}} is out of range for axis {a} of size {len} (shape {:?})", x.shape);
    l.step_checked(node, kb.finish(), vec![idx.buf, status], Check { buf: status, op: "gather".into(), message });
    let mut kb = KernelBuilder::new(l.kernel_name(node, ""));
    let s = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let ib = kb.buffer("indices", idx.scalar, idx.len(), Access::Read);
    let d = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let xs = x.shape.clone();
    let t = l.target.clone();
    util::each_index(&mut kb, &t, &out.shape, |kb, oi| {
        let ipos = oi[a..a + ir].iter().zip(&ist).fold(Expr::i(0), |acc, (i, s)| acc + i.clone() * *s);
        let k = kb.let_("k", Expr::cast(Scalar::I64, Expr::load(ib, ipos)));
        let j = kb.let_("jj", Expr::select(k.clone().lt(Expr::i(0)), k.clone() + Expr::i(len), k.clone()));
        let bad = Expr::bin(BinOp::Or, j.clone().lt(Expr::i(0)), j.clone().ge(Expr::i(len)));
        let j = Expr::select(bad, Expr::i(0), j);
        let mut src = j * xst[a];
        for dd in 0..a {
            src = src + oi[dd].clone() * xst[dd];
        }
        for dd in a + 1..xs.len() {
            src = src + oi[dd + ir - 1].clone() * xst[dd];
        }
        let at: Expr = oi.iter().zip(&ost).fold(Expr::i(0), |acc, (i, s)| acc + i.clone() * *s);
        kb.store(d, at, Expr::load(s, src));
    });
    l.step(node, kb.finish(), vec![x.buf, idx.buf, out.buf]);
    Ok(())
}
