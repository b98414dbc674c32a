//! GPU lowering of the GEMM-shaped ops — `matmul`, `gemm`, `fused_matmul`,
//! `conv1d/2d`, `fused_conv1d/2d` — for the WGSL target (see `wgsl::target`).
//!
//! The CPU schedule (`gemm.rs`) packs panels for a register-tiled micro-kernel;
//! on a GPU that packing is an extra pass over memory and its parallel loop has
//! too few iterations. Here each op becomes one step
//! `C[b, i, j] = epilogue(Σ_p A(b, i, p)·B(b, p, j))` where `A` and `B` are
//! element expressions over the unpacked operands (transposes, broadcast batches
//! and the im2col of a convolution, padding included, are index arithmetic). The
//! step's kernel is the plain form — one parallel iteration per output element —
//! which every backend can run and print; its [`Tiled`] hint lets the WGSL
//! emitter produce a workgroup-tiled shader from the same expressions.

use super::gemm::batch_offset;
use super::expr::region;
use super::util::{Operand, broadcast_strides};
use super::{BufIdx, Lowerer, internal};
use crate::kernel::{Access, BufId, Expr, KernelBuilder, LoopKind, Scalar, Stmt, Ty, VarId};
use crate::Error;
use smelt_ir::{BinaryOp, Expr as IrExpr, Op};

/// A GEMM-shaped step: `C[b, i, j] = epilogue(Σ_{p<k} a · b)` for `b < batch`,
/// `i < m`, `j < n`. `a` reads variables `vb, vi, vp`; `b` reads `vb, vp, vj`;
/// the epilogue statements read `vb, vi, vj, vacc` and store the result.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiled {
    pub batch: u64,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub vb: VarId,
    pub vi: VarId,
    pub vj: VarId,
    pub vp: VarId,
    pub vacc: VarId,
    pub a: Expr,
    pub b: Expr,
    pub epilogue: Vec<Stmt>,
}

type ElemFn<'a> = dyn Fn(&[BufId], Expr, Expr, Expr) -> Expr + 'a;
type EpiFn<'a> = dyn Fn(&mut KernelBuilder, &[BufId], Expr, Expr, Expr, Expr) -> Expr + 'a;

/// Into how many parts a GEMM's depth is split (`None`: not split). A GEMM with
/// few 64×64 output tiles and a long depth leaves most of a GPU idle while each
/// workgroup walks K (ResNet's 7×7 layers at batch 1: 8 workgroups over K = 4608,
/// 1.2 ms on an H200): split-K gives each of `s` workgroups a K/s slice, summed
/// by a second step that also applies the epilogue. `s` divides K (every slice
/// whole), keeps slices ≥ 128 deep and the workgroups ≤ 512.
pub fn split_k(batch: u64, m: u64, n: u64, k: u64) -> Option<u64> {
    let tiles = batch * m.div_ceil(64) * n.div_ceil(64);
    if tiles >= 128 || k < 512 {
        return None;
    }
    (2..=32u64).rev().find(|&s| k.is_multiple_of(s) && k / s >= 128 && tiles * s <= 512)
}

/// Builds the step: inputs `ins` (program buffers, read), output `out`.
#[allow(clippy::too_many_arguments)]
fn gemm_step(
    l: &mut Lowerer,
    node: &str,
    ins: &[&Operand],
    out: &Operand,
    (batch, m, n, k): (u64, u64, u64, u64),
    a: &ElemFn,
    b: &ElemFn,
    epi: &EpiFn,
) -> Result<(), Error> {
    if let Some(s) = split_k(batch, m, n, k) {
        return split_step(l, node, ins, out, (batch, m, n, k), s, a, b, epi);
    }
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let bufs: Vec<BufId> = ins.iter().enumerate().map(|(i, o)| kb.buffer(&format!("in{i}"), Scalar::F32, o.len(), Access::Read)).collect();
    let c = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let (vb, vi, vj, vacc) = (kb.var("b", Ty::I64), kb.var("i", Ty::I64), kb.var("j", Ty::I64), kb.var("acc", Ty::F32));
    let (eb, ei, ej) = (Expr::var(vb), Expr::var(vi), Expr::var(vj));
    let mut parts = None;
    kb.for_("t", Expr::i(0), Expr::i((batch * m * n) as i64), LoopKind::Parallel, |kb, t| {
        kb.set(vb, t.clone() / Expr::i((m * n) as i64));
        kb.set(vi, t.clone() / Expr::i(n as i64) % Expr::i(m as i64));
        kb.set(vj, t.clone() % Expr::i(n as i64));
        kb.set(vacc, Expr::f(0.0));
        kb.for_("p", Expr::i(0), Expr::i(k as i64), LoopKind::Serial, |kb, p| {
            let (ea, eb2) = (a(&bufs, eb.clone(), ei.clone(), p.clone()), b(&bufs, eb.clone(), p.clone(), ej.clone()));
            kb.set(vacc, Expr::fma(ea.clone(), eb2.clone(), Expr::var(vacc)));
            if let Expr::Var(vp) = p {
                parts = Some((vp, ea, eb2));
            }
        });
        let y = epi(kb, &bufs, eb.clone(), ei.clone(), ej.clone(), Expr::var(vacc));
        kb.store(c, t, y);
    });
    let kernel = kb.finish();
    let (vp, ea, eb2) = parts.ok_or_else(|| internal(node, "gemm step without a depth loop"))?;
    let epilogue = match kernel.body.as_slice() {
        [Stmt::Loop(lp)] => lp.body[5..].to_vec(),
        _ => return Err(internal(node, "gemm step shape")),
    };
    let hint = Tiled { batch, m, n, k, vb, vi, vj, vp, vacc, a: ea, b: eb2, epilogue };
    let mut args: Vec<BufIdx> = ins.iter().map(|o| o.buf).collect();
    args.push(out.buf);
    l.step_tiled(node, kernel, args, hint);
    Ok(())
}

/// Split-K ([`split_k`]): a tiled step of `s·batch` GEMMs each over a `K/s` slice
/// into `partial[s][batch][m][n]` (the slice is the hint's batch index over
/// `batch`), then a step summing the `s` partials of each output in order and
/// applying the epilogue.
#[allow(clippy::too_many_arguments)]
fn split_step(
    l: &mut Lowerer,
    node: &str,
    ins: &[&Operand],
    out: &Operand,
    (batch, m, n, k): (u64, u64, u64, u64),
    s: u64,
    a: &ElemFn,
    b: &ElemFn,
    epi: &EpiFn,
) -> Result<(), Error> {
    let ks = k / s;
    let mn = batch * m * n;
    let partial = l.temp(&format!("{node}.split_k"), Scalar::F32, s * mn);
    let slice = |bs: Expr| (bs.clone() % Expr::i(batch as i64), bs / Expr::i(batch as i64) * ks as i64);
    let pa = |bufs: &[BufId], bs: Expr, i: Expr, p: Expr| {
        let (bb, p0) = slice(bs);
        a(bufs, bb, i, p0 + p)
    };
    let pb = |bufs: &[BufId], bs: Expr, p: Expr, j: Expr| {
        let (bb, p0) = slice(bs);
        b(bufs, bb, p0 + p, j)
    };
    let part = Operand::new(partial, smelt_ir::TensorType::f32(&[(s * mn) as usize][..])).map_err(|m| internal(node, &m))?;
    let store_acc = |_: &mut KernelBuilder, _: &[BufId], _: Expr, _: Expr, _: Expr, acc: Expr| acc;
    gemm_step(l, node, ins, &part, (s * batch, m, n, ks), &pa, &pb, &store_acc)?;
    let mut kb = KernelBuilder::new(l.kernel_name(node, "split_k_sum"));
    let bufs: Vec<BufId> = ins.iter().enumerate().map(|(i, o)| kb.buffer(&format!("in{i}"), Scalar::F32, o.len(), Access::Read)).collect();
    let pbuf = kb.buffer("partial", Scalar::F32, s * mn, Access::Read);
    let c = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let acc = kb.var("acc", Ty::F32);
    kb.for_("t", Expr::i(0), Expr::i(mn as i64), LoopKind::Parallel, |kb, t| {
        let bb = kb.let_("b", t.clone() / Expr::i((m * n) as i64));
        let i = kb.let_("i", t.clone() / Expr::i(n as i64) % Expr::i(m as i64));
        let j = kb.let_("j", t.clone() % Expr::i(n as i64));
        kb.set(acc, Expr::f(0.0));
        kb.for_n("s", s, |kb, si| {
            kb.set(acc, Expr::var(acc) + Expr::load(pbuf, si * mn as i64 + t.clone()));
        });
        let y = epi(kb, &bufs, bb, i, j, Expr::var(acc));
        kb.store(c, t, y);
    });
    let mut args: Vec<BufIdx> = ins.iter().map(|o| o.buf).collect();
    args.push(partial);
    args.push(out.buf);
    l.step(node, kb.finish(), args);
    Ok(())
}

/// A matrix operand: batch dims, rows, cols, element strides.
struct Mat {
    batch: Vec<usize>,
    rows: usize,
    cols: usize,
    rs: i64,
    cs: i64,
}

fn mat(o: &Operand, trans: bool, is_b: bool) -> Mat {
    let r = o.shape.len();
    if r == 1 {
        let len = o.shape[0];
        return if is_b { Mat { batch: vec![], rows: len, cols: 1, rs: 1, cs: 1 } } else { Mat { batch: vec![], rows: 1, cols: len, rs: len as i64, cs: 1 } };
    }
    let (x, y) = (o.shape[r - 2], o.shape[r - 1]);
    let batch = o.shape[..r - 2].to_vec();
    if trans { Mat { batch, rows: y, cols: x, rs: 1, cs: y as i64 } } else { Mat { batch, rows: x, cols: y, rs: y as i64, cs: 1 } }
}

fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r).map(|i| get(a, i).max(get(b, i))).collect()
}

/// `matmul`, `gemm`, `fused_matmul`.
pub fn linalg(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let out = &outs[0];
    let (ta, tb) = match op {
        Op::Gemm(g) => (g.trans_a, g.trans_b),
        _ => (false, false),
    };
    let (am, bm) = (mat(&ins[0], ta, false), mat(&ins[1], tb, true));
    if am.cols != bm.rows {
        return Err(internal(node, "matmul inner dims differ"));
    }
    let (m, k, n) = (am.rows, am.cols, bm.cols);
    let batch = broadcast(&am.batch, &bm.batch);
    let scale = |s: Vec<i64>, by: usize| s.into_iter().map(|x| x * by as i64).collect::<Vec<_>>();
    let a_bs = scale(broadcast_strides(&am.batch, &batch), m * k);
    let b_bs = scale(broadcast_strides(&bm.batch, &batch), k * n);
    let (has_m, has_n) = match op {
        Op::Gemm(_) => (true, true),
        _ => (ins[0].shape.len() > 1, ins[1].shape.len() > 1),
    };
    // Extras of the epilogue: (batch strides, row stride, col stride).
    let extra = |o: &Operand| {
        let s = broadcast_strides(&o.shape, &out.shape);
        let nb = batch.len();
        let rs = if has_m { s[nb] } else { 0 };
        let cs = if has_n { *s.last().unwrap_or(&0) } else { 0 };
        (s[..nb].to_vec(), rs, cs)
    };
    let x = |i: usize| IrExpr::Input(i);
    let mul = |e: IrExpr, c: f32| IrExpr::binary(BinaryOp::Mul, e, IrExpr::Const(c));
    let (extra_ops, epilogue): (Vec<&Operand>, IrExpr) = match op {
        Op::MatMul => (vec![], x(0)),
        Op::Gemm(g) => match ins.get(2) {
            Some(c) => (vec![c], IrExpr::binary(BinaryOp::Add, mul(x(0), g.alpha), mul(x(1), g.beta))),
            None if g.alpha == 1.0 => (vec![], x(0)),
            None => (vec![], mul(x(0), g.alpha)),
        },
        Op::FusedMatMul { epilogue } => (ins[2..].iter().collect(), epilogue.clone()),
        _ => return Ok(false),
    };
    let extras: Vec<_> = extra_ops.iter().map(|o| extra(o)).collect();
    let bsz: usize = batch.iter().product();
    let mut step_ins = vec![&ins[0], &ins[1]];
    step_ins.extend(extra_ops.iter().copied());
    let a = |bf: &[BufId], b: Expr, i: Expr, p: Expr| Expr::load(bf[0], batch_offset(&b, &batch, &a_bs) + i * am.rs + p * am.cs);
    let bfn = |bf: &[BufId], b: Expr, p: Expr, j: Expr| Expr::load(bf[1], batch_offset(&b, &batch, &b_bs) + p * bm.rs + j * bm.cs);
    let epi = |kb: &mut KernelBuilder, bf: &[BufId], b: Expr, i: Expr, j: Expr, acc: Expr| {
        let mut vals = vec![acc];
        for (e, (bs, rs, cs)) in extras.iter().enumerate() {
            vals.push(Expr::load(bf[2 + e], batch_offset(&b, &batch, bs) + i.clone() * *rs + j.clone() * *cs));
        }
        region(kb, &epilogue, &vals, 1)
    };
    gemm_step(l, node, &step_ins, out, (bsz as u64, m as u64, n as u64, k as u64), &a, &bfn, &epi)?;
    Ok(true)
}

/// `conv1d/2d/3d` and `fused_conv1d/2d/3d`: per (image, group) `out = W·im2col(x)`.
pub fn conv(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let cv = match op {
        Op::Conv(c) | Op::FusedConv { conv: c, .. } => c,
        _ => return Ok(false),
    };
    // Over the product, the bias and the residual or extras (`conv::epilogue`).
    let e = super::conv::epilogue(op, ins);
    let out = &outs[0];
    let (x, w) = (&ins[0], &ins[1]);
    let g = super::conv::geometry(cv, &x.shape, &w.shape, &out.shape).ok_or_else(|| internal(node, "conv shapes"))?;
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let depth = cg * g.kd * g.kh * g.kw;
    let p = g.od * g.oh * g.ow;
    let groups = g.groups as i64;
    let a = |bf: &[BufId], b: Expr, i: Expr, d: Expr| {
        let grp = b % Expr::i(groups);
        Expr::load(bf[1], grp * (mg * depth) as i64 + i * depth as i64 + d)
    };
    let bfn = |bf: &[BufId], b: Expr, d: Expr, j: Expr| {
        let img = b.clone() / Expr::i(groups);
        let grp = b % Expr::i(groups);
        let khw = (g.kh * g.kw) as i64;
        let kvol = khw * g.kd as i64;
        let ch = d.clone() / Expr::i(kvol);
        let r = d % Expr::i(kvol);
        let (kz, r) = if g.deep { (Some(r.clone() / Expr::i(khw)), r % Expr::i(khw)) } else { (None, r) };
        let (ki, kj) = (r.clone() / Expr::i(g.kw as i64), r % Expr::i(g.kw as i64));
        let ohw = (g.oh * g.ow) as i64;
        let (oz, j) = if g.deep { (Some(j.clone() / Expr::i(ohw)), j % Expr::i(ohw)) } else { (None, j) };
        let (oy, ox) = (j.clone() / Expr::i(g.ow as i64), j % Expr::i(g.ow as i64));
        let iy = oy * g.sh as i64 + ki * g.dh as i64 - Expr::i(g.ph as i64);
        let ix = ox * g.sw as i64 + kj * g.dw as i64 - Expr::i(g.pw as i64);
        let mut inside = iy.clone().ge(Expr::i(0))
            .and(iy.clone().lt(Expr::i(g.h as i64)))
            .and(ix.clone().ge(Expr::i(0)))
            .and(ix.clone().lt(Expr::i(g.w as i64)));
        let plane = img * g.c as i64 + grp * cg as i64 + ch;
        let plane = match (oz, kz) {
            (Some(oz), Some(kz)) => {
                let iz = oz * g.sd as i64 + kz * g.dd as i64 - Expr::i(g.pd as i64);
                inside = inside.and(iz.clone().ge(Expr::i(0))).and(iz.clone().lt(Expr::i(g.d as i64)));
                plane * g.d as i64 + iz
            }
            _ => plane,
        };
        let at = plane * (g.h * g.w) as i64 + iy * g.w as i64 + ix;
        Expr::select(inside.clone(), Expr::load(bf[0], Expr::select(inside, at, Expr::i(0))), Expr::f(0.0))
    };
    let epi = |kb: &mut KernelBuilder, bf: &[BufId], b: Expr, i: Expr, j: Expr, acc: Expr| {
        let mut vals = vec![acc];
        let img = b.clone() / Expr::i(groups);
        let ch = (b % Expr::i(groups)) * mg as i64 + i;
        if ins.len() > 2 {
            vals.push(Expr::load(bf[2], ch.clone()));
        }
        if ins.len() > 3 {
            let at = kb.let_("at", img * (g.m * p) as i64 + ch * p as i64 + j);
            vals.extend(bf[3..ins.len()].iter().map(|&r| Expr::load(r, at.clone())));
        }
        region(kb, &e, &vals, 1)
    };
    let step_ins: Vec<&Operand> = ins.iter().collect();
    gemm_step(l, node, &step_ins, out, ((g.n * g.groups) as u64, mg as u64, p as u64, depth as u64), &a, &bfn, &epi)?;
    Ok(true)
}
