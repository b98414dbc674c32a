//! `sparse_matmul` whose CSR/BSR index arrays are known only at run time: two
//! validation kernels walk the offsets and indices in the reference's order and
//! report the first bad one through a status buffer (`lower::Check`) — the first
//! kernel the offsets, the second the column indices, so that whichever error the
//! reference meets first is the one reported — then the product walks the
//! blocks the offsets name, vectorized along a block's columns.

use super::util::Operand;
use super::{BufIdx, Check, Lowerer, internal};
use crate::kernel::{Access, BinOp, BufId, Expr, KernelBuilder, LoopKind, Scalar, Ty, UnOp};
use crate::Error;
use smelt_ir::ops::{SparseFormat, SparseMatMul};

/// Which error a validation kernel reports (it stops silently at the other kind).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    Offsets,
    Indices,
}

pub fn dynamic(l: &mut Lowerer, node: &str, s: &SparseMatMul, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, values, indices, offsets) = (&ins[0], &ins[1], &ins[2], &ins[3]);
    let [br, bc] = if s.format == SparseFormat::Csr { [1, 1] } else { s.block };
    let k = *x.shape.last().ok_or_else(|| internal(node, "x"))?;
    let cols = s.cols;
    if br == 0 || bc == 0 || !k.is_multiple_of(br) || !cols.is_multiple_of(bc) {
        return Err(internal(node, &format!("sparse_matmul: W {k}×{cols} does not split into {br}×{bc} blocks")));
    }
    let nnz = values.shape.first().copied().unwrap_or(0);
    let (block_rows, block_cols) = (k / br, cols / bc);
    if offsets.len() as usize != block_rows + 1 {
        return Err(internal(node, &format!("sparse_matmul expects {} offsets, found {}", block_rows + 1, offsets.len())));
    }
    if indices.len() as usize != nnz {
        return Err(internal(node, &format!("sparse_matmul expects {nnz} indices (one per stored value/block), found {}", indices.len())));
    }
    for report in [Report::Offsets, Report::Indices] {
        let status = l.temp(&format!("{node}.status"), Scalar::I64, 4);
        let kernel = validate(l.kernel_name(node, "check"), indices, offsets, block_rows, block_cols, nnz, report);
        let message = match report {
            // The reference also names `offsets[r + 1]`, which the three status
            // values cannot carry: it is the offset after `offsets[{0}]`.
            Report::Offsets => format!("sparse_matmul offsets must be non-decreasing within 0..={nnz}; offsets[{{0}}] = {{1}}, the next offset = {{2}}"),
            Report::Indices => format!("sparse_matmul index {{0}} is column {{1}}, outside 0..{block_cols}"),
        };
        l.step_checked(node, kernel, vec![indices.buf, offsets.buf, status], Check { buf: status, op: "sparse_matmul".into(), message });
    }
    product(l, node, [br, bc], k, cols, ins, out);
    Ok(true)
}

fn validate(name: String, indices: &Operand, offsets: &Operand, block_rows: usize, block_cols: usize, nnz: usize, report: Report) -> crate::kernel::Kernel {
    let mut kb = KernelBuilder::new(name);
    let ib = kb.buffer("indices", indices.scalar, indices.len(), Access::Read);
    let ob = kb.buffer("offsets", offsets.scalar, offsets.len(), Access::Read);
    let st = kb.buffer("status", Scalar::I64, 4, Access::ReadWrite);
    let found = kb.var("found", Ty::BOOL);
    kb.set(found, Expr::b(false));
    let fail = |kb: &mut KernelBuilder, st: BufId, vals: [Expr; 3], mine: bool| {
        kb.set(found, Expr::b(true));
        if mine {
            kb.store(st, Expr::i(0), Expr::i(1));
            for (i, v) in vals.into_iter().enumerate() {
                kb.store(st, Expr::i(i as i64 + 1), v);
            }
        }
    };
    kb.for_n("r", block_rows as u64, |kb, r| {
        kb.if_(Expr::un(UnOp::Not, Expr::var(found)), |kb| {
            let lo = kb.let_("lo", Expr::cast(Scalar::I64, Expr::load(ob, r.clone())));
            let hi = kb.let_("hi", Expr::cast(Scalar::I64, Expr::load(ob, r.clone() + 1)));
            let or = |a: Expr, b: Expr| Expr::bin(BinOp::Or, a, b);
            let bad = or(or(lo.clone().lt(Expr::i(0)), hi.clone().lt(lo.clone())), hi.clone().gt(Expr::i(nnz as i64)));
            kb.if_else(
                bad,
                |kb| fail(kb, st, [r.clone(), lo.clone(), hi.clone()], report == Report::Offsets),
                |kb| {
                    kb.for_("p", lo.clone(), hi.clone(), LoopKind::Serial, |kb, p| {
                        kb.if_(Expr::un(UnOp::Not, Expr::var(found)), |kb| {
                            let c = kb.let_("c", Expr::cast(Scalar::I64, Expr::load(ib, p.clone())));
                            let bad = or(c.clone().lt(Expr::i(0)), c.clone().ge(Expr::i(block_cols as i64)));
                            kb.if_(bad, |kb| fail(kb, st, [p.clone(), c.clone(), Expr::i(0)], report == Report::Indices));
                        });
                    });
                },
            );
        });
    });
    kb.finish()
}

/// `y[row, :] = Σ_blocks x[row, block rows] · W block`, the blocks read from the
/// (validated) offsets and indices.
fn product(l: &mut Lowerer, node: &str, [br, bc]: [usize; 2], k: usize, cols: usize, ins: &[Operand], out: &Operand) {
    let (x, values, indices, offsets) = (&ins[0], &ins[1], &ins[2], &ins[3]);
    let block_rows = k / br;
    let rows = x.len() as usize / k.max(1);
    let mut kb = KernelBuilder::new(l.kernel_name(node, ""));
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let vb = kb.buffer("values", Scalar::F32, values.len(), Access::Read);
    let ib = kb.buffer("indices", indices.scalar, indices.len(), Access::Read);
    let ob = kb.buffer("offsets", offsets.scalar, offsets.len(), Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::ReadWrite);
    let work = (rows * values.len() as usize) as u64;
    let par = if rows > 1 && work >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let w = l.target.vector_width;
    kb.for_("row", Expr::i(0), Expr::i(rows as i64), par, |kb, row| {
        kb.for_("c", Expr::i(0), Expr::i(cols as i64), LoopKind::Vectorized(w), |kb, c| {
            kb.store(y, row.clone() * cols as i64 + c, Expr::f(0.0));
        });
        kb.for_n("b", block_rows as u64, |kb, bi| {
            let lo = kb.let_("lo", Expr::cast(Scalar::I64, Expr::load(ob, bi.clone())));
            let hi = kb.let_("hi", Expr::cast(Scalar::I64, Expr::load(ob, bi.clone() + 1)));
            kb.for_("p", lo, hi, LoopKind::Serial, |kb, p| {
                let bcol = kb.let_("bcol", Expr::cast(Scalar::I64, Expr::load(ib, p.clone())));
                let ybase = kb.let_("yb", row.clone() * cols as i64 + bcol * bc as i64);
                kb.for_n("r", br as u64, |kb, r| {
                    let xv = kb.let_("xv", Expr::load(xb, row.clone() * k as i64 + bi.clone() * br as i64 + r.clone()));
                    let vbase = kb.let_("vb", (p.clone() * br as i64 + r) * bc as i64);
                    kb.for_("c", Expr::i(0), Expr::i(bc as i64), LoopKind::Vectorized(w), |kb, c| {
                        let cur = Expr::load(y, ybase.clone() + c.clone());
                        kb.store(y, ybase.clone() + c.clone(), Expr::fma(xv.clone(), Expr::load(vb, vbase.clone() + c), cur));
                    });
                });
            });
        });
    });
    let args: Vec<BufIdx> = vec![x.buf, values.buf, indices.buf, offsets.buf, out.buf];
    l.step(node, kb.finish(), args);
}
