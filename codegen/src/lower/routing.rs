//! Lowering of `topk` (insertion into the sorted output, O(len·k) per lane: ties
//! keep the lower index first, NaN ranks above every number, as the reference's
//! stable sort) and of `sparse_matmul` with constant CSR/BSR weights (validated at
//! compile time; on a CPU with constant values repacked for `sparse_cpu.rs`'s
//! register-tiled kernels, else walked block by block, vectorized along a
//! block's columns; index arrays known only at run time go to `sparse.rs`).

use super::util::Operand;
use super::{BufKind, Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, KernelBuilder, LoopKind, Scalar, Ty, UnOp};
use crate::Error;
use smelt_ir::ops::SparseFormat;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], _outs: &[TensorType]) -> bool {
    match op {
        Op::TopK(_) => matches!(ins[0].dtype, DType::F32 | DType::I8 | DType::U8 | DType::I32 | DType::I64),
        Op::SparseMatMul(_) => ins[0].dtype == DType::F32 && ins[1].dtype == DType::F32,
        Op::MoeDispatch { .. } => ins[0].dtype == DType::F32 && ins[1].dtype == DType::I64,
        Op::MoeCombine { .. } => ins[0].dtype == DType::F32 && ins[1].dtype == DType::I64 && ins[2].dtype == DType::F32,
        _ => false,
    }
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    match op {
        Op::TopK(t) => topk(l, node, t.k, t.axis, t.largest, &ins[0], outs),
        Op::SparseMatMul(s) => sparse(l, node, s, ins, &outs[0]),
        Op::MoeDispatch { experts, capacity } => moe_route(l, node, *experts, *capacity, ins, &outs[0], true),
        Op::MoeCombine { capacity } => {
            let e = ins[0].shape.first().copied().unwrap_or(0);
            moe_route(l, node, e, *capacity, ins, &outs[0], false)
        }
        _ => Ok(false),
    }
}

fn topk(l: &mut Lowerer, node: &str, k: usize, axis: i64, largest: bool, x: &Operand, outs: &[Operand]) -> Result<bool, Error> {
    let a = normalize_axis(axis, x.shape.len()).ok_or_else(|| internal(node, "topk axis"))?;
    let (outer, n, inner): (usize, usize, usize) = (x.shape[..a].iter().product(), x.shape[a], x.shape[a + 1..].iter().product());
    if k > n || k == 0 {
        return Err(internal(node, &format!("topk k = {k} with an axis of {n}")));
    }
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let vb = kb.buffer("values", outs[0].scalar, outs[0].len(), Access::ReadWrite);
    let ib = kb.buffer("indices", Scalar::I64, outs[1].len(), Access::ReadWrite);
    let float = x.scalar == Scalar::F32;
    let key = move |e: Expr| if float { e } else { Expr::cast(Scalar::I64, e) };
    // Whether `p` ranks before `q`.
    let before = move |p: Expr, q: Expr| {
        let op = if largest { CmpOp::Gt } else { CmpOp::Lt };
        let plain = Expr::cmp(op, p.clone(), q.clone());
        if !float {
            return plain;
        }
        let nan = |e: Expr| Expr::cmp(CmpOp::Ne, e.clone(), e);
        let (pn, qn) = (nan(p), nan(q));
        let by_nan = if largest { pn.and(Expr::un(UnOp::Not, qn)) } else { Expr::un(UnOp::Not, pn).and(qn) };
        Expr::bin(BinOp::Or, by_nan, plain)
    };
    kb.for_n("o", outer as u64, |kb, o| {
        kb.for_n("i", inner as u64, |kb, i| {
            let at = |p: Expr| (o.clone() * n as i64 + p) * inner as i64 + i.clone();
            let slot = |p: Expr| (o.clone() * k as i64 + p) * inner as i64 + i.clone();
            let cnt = kb.var("cnt", Ty::I64);
            kb.set(cnt, Expr::i(0));
            kb.for_n("j", n as u64, |kb, j| {
                let v = kb.let_("v", key(Expr::load(xb, at(j.clone()))));
                let full = kb.let_("full", Expr::var(cnt).ge(Expr::i(k as i64)));
                let enters = kb.var("enters", Ty::BOOL);
                kb.set(enters, Expr::b(true));
                kb.if_(full.clone(), |kb| {
                    let lv = kb.let_("lv", key(Expr::load(vb, slot(Expr::i(k as i64 - 1)))));
                    kb.set(enters, before(v.clone(), lv));
                });
                kb.if_(Expr::var(enters), |kb| {
                    let pos = kb.var("pos", Ty::I64);
                    kb.set(pos, Expr::select(full.clone(), Expr::i(k as i64 - 1), Expr::var(cnt)));
                    let moving = kb.var("moving", Ty::BOOL);
                    kb.set(moving, Expr::b(true));
                    kb.for_n("s", k.saturating_sub(1) as u64, |kb, _| {
                        kb.if_(Expr::var(moving).and(Expr::var(pos).gt(Expr::i(0))), |kb| {
                            let prev = kb.let_("prev", key(Expr::load(vb, slot(Expr::var(pos) - Expr::i(1)))));
                            kb.if_else(
                                before(v.clone(), prev),
                                |kb| {
                                    let pv = Expr::load(vb, slot(Expr::var(pos) - Expr::i(1)));
                                    kb.store(vb, slot(Expr::var(pos)), pv);
                                    let pi = Expr::load(ib, slot(Expr::var(pos) - Expr::i(1)));
                                    kb.store(ib, slot(Expr::var(pos)), pi);
                                    kb.set(pos, Expr::var(pos) - Expr::i(1));
                                },
                                |kb| kb.set(moving, Expr::b(false)),
                            );
                        });
                    });
                    kb.store(vb, slot(Expr::var(pos)), Expr::load(xb, at(j.clone())));
                    kb.store(ib, slot(Expr::var(pos)), j.clone());
                    kb.set(cnt, Expr::bin(BinOp::Min, Expr::var(cnt) + Expr::i(1), Expr::i(k as i64)));
                });
            });
        });
    });
    l.step(node, kb.finish(), vec![x.buf, outs[0].buf, outs[1].buf]);
    Ok(true)
}

/// Constant little-endian integers of a buffer (i32 or i64).
fn const_ints(l: &Lowerer, o: &Operand) -> Option<Vec<i64>> {
    let BufKind::Const(bytes) = &l.prog.buffer(o.buf).kind else { return None };
    Some(match o.scalar {
        Scalar::I32 => bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
        Scalar::I64 => bytes.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect(),
        _ => return None,
    })
}

fn sparse(l: &mut Lowerer, node: &str, s: &smelt_ir::ops::SparseMatMul, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, values) = (&ins[0], &ins[1]);
    let (Some(indices), Some(offsets)) = (const_ints(l, &ins[2]), const_ints(l, &ins[3])) else {
        // Index arrays known only at run time: validated by kernels.
        return super::sparse::dynamic(l, node, s, ins, out);
    };
    let [br, bc] = if s.format == SparseFormat::Csr { [1, 1] } else { s.block };
    let k = *x.shape.last().ok_or_else(|| internal(node, "x"))?;
    let cols = s.cols;
    if br == 0 || bc == 0 || !k.is_multiple_of(br) || !cols.is_multiple_of(bc) {
        return Err(internal(node, &format!("sparse_matmul: W {k}×{cols} does not split into {br}×{bc} blocks")));
    }
    let nnz = values.shape.first().copied().unwrap_or(0);
    let (block_rows, block_cols) = (k / br, cols / bc);
    if offsets.len() != block_rows + 1 || indices.len() != nnz {
        return Err(internal(node, "sparse_matmul: offsets or indices of the wrong length"));
    }
    // The stored blocks: (block row, block column, position), validated as the reference does.
    let mut list = vec![];
    for r in 0..block_rows {
        let (lo, hi) = (offsets[r], offsets[r + 1]);
        if lo < 0 || hi < lo || hi as u64 > nnz as u64 {
            return Err(internal(node, &format!("sparse_matmul offsets must be non-decreasing within 0..={nnz}; offsets[{r}] = {lo}, offsets[{}] = {hi}", r + 1)));
        }
        for (p, &c) in indices.iter().enumerate().take(hi as usize).skip(lo as usize) {
            if c < 0 || c as u64 >= block_cols as u64 {
                return Err(internal(node, &format!("sparse_matmul index {p} is column {c}, outside 0..{block_cols}")));
            }
            list.push([r as i32, c as i32, p as i32]);
        }
    }
    if !l.target.is_gpu()
        && let Some(vals) = l.const_f32(values.buf)
    {
        // Constant weights on a CPU: repacked for a register-tiled kernel.
        let mut entries = Vec::with_capacity(vals.len());
        for &[r, c, p] in &list {
            for i in 0..br {
                for j in 0..bc {
                    let v = vals[(p as usize * br + i) * bc + j];
                    entries.push(super::sparse_cpu::Entry { k: r as usize * br + i, n: c as usize * bc + j, v });
                }
            }
        }
        super::sparse_cpu::lower(l, node, &entries, k, cols, x, out);
        return Ok(true);
    }
    let nb = list.len();
    let table = l.constant(&format!("{node}.blocks"), Scalar::I32, list.iter().flatten().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into_iter().chain(std::iter::repeat_n(0, if nb == 0 { 4 } else { 0 })).collect());
    let rows = x.len() as usize / k.max(1);
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let vb = kb.buffer("values", Scalar::F32, values.len(), Access::Read);
    let tb = kb.buffer("blocks", Scalar::I32, (3 * nb).max(1) as u64, Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::ReadWrite);
    let par = if rows > 1 && (rows * nb * br * bc) as u64 >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let w = l.target.vector_width;
    kb.for_("row", Expr::i(0), Expr::i(rows as i64), par, |kb, row| {
        kb.for_("c", Expr::i(0), Expr::i(cols as i64), LoopKind::Vectorized(w), |kb, c| {
            kb.store(y, row.clone() * cols as i64 + c, Expr::f(0.0));
        });
        kb.for_n("b", nb as u64, |kb, b| {
            let ld = |kb: &mut KernelBuilder, f: i64, name: &str| kb.let_(name, Expr::cast(Scalar::I64, Expr::load(tb, b.clone() * 3 + f)));
            let (br_i, bc_i, at) = (ld(kb, 0, "brow"), ld(kb, 1, "bcol"), ld(kb, 2, "at"));
            kb.for_n("r", br as u64, |kb, r| {
                let xv = kb.let_("xv", Expr::load(xb, row.clone() * k as i64 + br_i.clone() * br as i64 + r.clone()));
                let ybase = kb.let_("yb", row.clone() * cols as i64 + bc_i.clone() * bc as i64);
                let vbase = kb.let_("vb", (at.clone() * br as i64 + r) * bc as i64);
                kb.for_("c", Expr::i(0), Expr::i(bc as i64), LoopKind::Vectorized(w), |kb, c| {
                    let cur = Expr::load(y, ybase.clone() + c.clone());
                    kb.store(y, ybase.clone() + c.clone(), Expr::fma(xv.clone(), Expr::load(vb, vbase.clone() + c), cur));
                });
            });
        });
    });
    l.step(node, kb.finish(), vec![x.buf, values.buf, table, out.buf]);
    Ok(true)
}

/// `moe_dispatch` (copy each token's row into its experts' next free slots) and
/// `moe_combine` (sum the weighted expert outputs back per token), with the slot
/// rule of the reference: slots in token order, tokens past `capacity` dropped,
/// an expert index outside `0..experts` an error (the first, in token order).
fn moe_route(l: &mut Lowerer, node: &str, experts: usize, capacity: usize, ins: &[Operand], out: &Operand, dispatch: bool) -> Result<bool, Error> {
    let idx = &ins[1];
    let [t, k] = <[usize; 2]>::try_from(idx.shape.as_slice()).map_err(|_| internal(node, "indices must be [T, k]"))?;
    let d = *ins[0].shape.last().ok_or_else(|| internal(node, "rows"))?;
    let status = l.temp(&format!("{node}.status"), Scalar::I64, 4);
    let counts = l.temp(&format!("{node}.counts"), Scalar::I64, experts.max(1) as u64);
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer(if dispatch { "x" } else { "y" }, Scalar::F32, ins[0].len(), Access::Read);
    let ib = kb.buffer("indices", Scalar::I64, idx.len(), Access::Read);
    let wb = (!dispatch).then(|| kb.buffer("weights", Scalar::F32, ins[2].len(), Access::Read));
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::ReadWrite);
    let st = kb.buffer("status", Scalar::I64, 4, Access::ReadWrite);
    let cb = kb.buffer("counts", Scalar::I64, experts.max(1) as u64, Access::ReadWrite);
    let w = l.target.vector_width;
    kb.for_("z", Expr::i(0), Expr::i(out.len() as i64), LoopKind::Vectorized(w), |kb, z| kb.store(y, z, Expr::f(0.0)));
    kb.for_n("e", experts as u64, |kb, e| kb.store(cb, e, Expr::i(0)));
    kb.for_n("p", (t * k) as u64, |kb, p| {
        let e = kb.let_("e", Expr::load(ib, p.clone()));
        let bad = kb.let_("bad", Expr::bin(BinOp::Or, e.clone().lt(Expr::i(0)), e.clone().ge(Expr::i(experts as i64))));
        kb.if_else(
            bad,
            |kb| {
                kb.if_(Expr::load(st, Expr::i(0)).eq_(Expr::i(0)), |kb| {
                    kb.store(st, Expr::i(0), Expr::i(1));
                    kb.store(st, Expr::i(1), e.clone());
                    kb.store(st, Expr::i(2), p.clone() / Expr::i(k as i64));
                    kb.store(st, Expr::i(3), p.clone() % Expr::i(k as i64));
                });
            },
            |kb| {
                let slot = kb.let_("slot", Expr::load(cb, e.clone()));
                kb.if_(slot.clone().lt(Expr::i(capacity as i64)), |kb| {
                    kb.store(cb, e.clone(), slot.clone() + Expr::i(1));
                    let tok = kb.let_("tok", p.clone() / Expr::i(k as i64));
                    let erow = kb.let_("erow", (e.clone() * capacity as i64 + slot.clone()) * d as i64);
                    let trow = kb.let_("trow", tok * d as i64);
                    let wv = wb.map(|wb| kb.let_("wv", Expr::load(wb, p.clone())));
                    kb.for_n("j", d as u64, |kb, j| match &wv {
                        None => kb.store(y, erow.clone() + j.clone(), Expr::load(src, trow.clone() + j)),
                        Some(wv) => {
                            let cur = Expr::load(y, trow.clone() + j.clone());
                            kb.store(y, trow.clone() + j.clone(), Expr::fma(wv.clone(), Expr::load(src, erow.clone() + j), cur));
                        }
                    });
                });
            },
        );
    });
    let mut args = vec![ins[0].buf, idx.buf];
    if !dispatch {
        args.push(ins[2].buf);
    }
    args.extend([out.buf, status, counts]);
    let op = if dispatch { "moe_dispatch" } else { "moe_combine" };
    let message = format!("expert index {{0}} at [{{1}}, {{2}}] is outside 0..{experts}");
    l.step_checked(node, kb.finish(), args, super::Check { buf: status, op: op.into(), message });
    Ok(true)
}
