//! Lowering of the elementwise family — unary, binary with broadcasting,
//! comparisons, logic, `where`, `cast` — and of `elementwise` regions: one loop
//! nest over the output (dims coalesced, the outer loop parallel for large
//! tensors, the inner one vectorized), each element computed with the reference
//! semantics of `lower::expr`.

use super::expr::{binary_f32, binary_i64, bind, checked_i64, is_checked_int, region, unary_f32, unary_i64};
use super::util::{broadcast_strides, coalesce, nest, Operand};
use super::{int32, Check, Lowerer};
use crate::kernel::{Access, Expr, KernelBuilder, Scalar};
use crate::Error;
use smelt_ir::{BinaryOp, DType, Op, TensorType, UnaryOp};

pub fn support(op: &Op, ins: &[&TensorType]) -> bool {
    let d = |i: usize| ins.get(i).map(|t| t.dtype);
    match op {
        Op::Unary(u) => match d(0) {
            Some(DType::F32) => true,
            Some(DType::Bool) => matches!(u, UnaryOp::Not | UnaryOp::Identity),
            Some(_) => unary_i64(*u, Expr::i(0)).is_some(),
            None => false,
        },
        Op::Binary(b) => match d(0) {
            Some(DType::F32) => true,
            Some(DType::Bool) => matches!(b, BinaryOp::Equal | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor),
            Some(_) => binary_i64(*b, Expr::i(0), Expr::i(0)).is_some() || is_checked_int(*b),
            None => false,
        },
        Op::Where | Op::Cast { .. } | Op::Elementwise { .. } => true,
        _ => false,
    }
}

/// Lowers one elementwise node; `false` when the op is not of this family.
pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let out = &outs[0];
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let in_bufs: Vec<_> =
        ins.iter().enumerate().map(|(i, o)| kb.buffer(&format!("in{i}"), o.scalar, o.len(), Access::Read)).collect();
    let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
    // Integer div/pow report their run-time errors through a status buffer; the
    // loop nest stays serial so that the error reported is the first in order.
    let checked = match op {
        Op::Binary(b) if is_checked_int(*b) && ins[0].scalar.is_int() => Some((*b, l.temp(&format!("{node}.status"), Scalar::I64, 4))),
        _ => None,
    };
    let status = checked.map(|_| kb.buffer("status", Scalar::I64, 4, Access::ReadWrite));
    let mut st: Vec<Vec<i64>> = ins.iter().map(|o| broadcast_strides(&o.shape, &out.shape)).collect();
    st.push(broadcast_strides(&out.shape, &out.shape));
    let (dims, st) = coalesce(&out.shape, &st);
    let mut target = l.target.clone();
    if checked.is_some() {
        target.parallel_min_elems = u64::MAX;
    }
    let op = op.clone();
    let ins_sc: Vec<Scalar> = ins.iter().map(|o| o.scalar).collect();
    let out_sc = out.scalar;
    // The GPU has no i64: its i32 arithmetic saturates in i32 (`int32.rs`).
    // Its division of 8-bit integers goes through i32 too (`MIN / -1` cannot
    // overflow there; the cast back saturates `-128 / -1`).
    let gpu = l.target.is_gpu();
    let gpu32 = gpu && ins_sc.first() == Some(&Scalar::I32);
    let gpu_div = gpu && matches!(ins_sc.first(), Some(Scalar::I8 | Scalar::U8 | Scalar::I32));
    nest(&mut kb, &target, &dims, &st, |kb, idx| {
        let load = |kb: &mut KernelBuilder, i: usize| bind(kb, &format!("v{i}"), Expr::load(in_bufs[i], idx[i].clone()));
        let yi = idx[ins_sc.len()].clone();
        let value = match &op {
            Op::Unary(u) => {
                let x = load(kb, 0);
                match ins_sc[0] {
                    Scalar::F32 => unary_f32(kb, *u, x, 1),
                    Scalar::Bool if *u == UnaryOp::Not => Expr::un(crate::kernel::UnOp::Not, x),
                    Scalar::Bool => x,
                    _ if gpu32 && int32::unary_overflows(*u) => int32::unary(kb, *u, x),
                    s => {
                        let r = unary_i64(*u, Expr::cast(Scalar::I64, x)).unwrap_or(Expr::i(0));
                        Expr::cast(s, r)
                    }
                }
            }
            Op::Binary(b) => {
                let (x, z) = (load(kb, 0), load(kb, 1));
                match ins_sc[0] {
                    Scalar::F32 => binary_f32(kb, *b, x, z, 1),
                    Scalar::Bool => match b {
                        BinaryOp::Equal => x.eq_(z),
                        BinaryOp::And => Expr::bin(crate::kernel::BinOp::And, x, z),
                        BinaryOp::Or => Expr::bin(crate::kernel::BinOp::Or, x, z),
                        _ => Expr::bin(crate::kernel::BinOp::Xor, x, z),
                    },
                    s if gpu_div && is_checked_int(*b) => {
                        let widen = |e: Expr| if s == Scalar::I32 { e } else { Expr::cast(Scalar::I32, e) };
                        let q = match status {
                            Some(st) => int32::checked_div(kb, widen(x), widen(z), st),
                            None => Expr::int(0, Scalar::I32),
                        };
                        if s == Scalar::I32 { q } else { Expr::cast(s, q) }
                    }
                    _ if gpu32 && int32::binary_overflows(*b) => int32::binary(kb, *b, x, z),
                    s if is_checked_int(*b) => match status {
                        Some(st) => Expr::cast(s, checked_i64(kb, Expr::cast(Scalar::I64, x), Expr::cast(Scalar::I64, z), st)),
                        None => Expr::i(0),
                    },
                    s => {
                        let r = binary_i64(*b, Expr::cast(Scalar::I64, x), Expr::cast(Scalar::I64, z)).unwrap_or(Expr::i(0));
                        if out_sc == Scalar::Bool { r } else { Expr::cast(s, r) }
                    }
                }
            }
            Op::Where => {
                let (c, a, b) = (load(kb, 0), load(kb, 1), load(kb, 2));
                Expr::select(c, a, b)
            }
            Op::Cast { .. } => Expr::cast(out_sc, load(kb, 0)),
            Op::Elementwise { expr } => {
                let vals: Vec<Expr> = (0..ins_sc.len())
                    .map(|i| {
                        let v = load(kb, i);
                        if ins_sc[i] == Scalar::F32 { v } else { bind(kb, "f", Expr::cast(Scalar::F32, v)) }
                    })
                    .collect();
                let r = region(kb, expr, &vals, 1);
                if out_sc == Scalar::F32 { r } else { Expr::cast(out_sc, r) }
            }
            _ => Expr::i(0),
        };
        kb.store(y, yi, value);
    });
    let mut args: Vec<_> = ins.iter().map(|o| o.buf).collect();
    args.push(out.buf);
    match checked {
        Some((b, sbuf)) => {
            args.push(sbuf);
            let message = "integer division by zero or out of range ({0} / {1})".to_string();
            l.step_checked(node, kb.finish(), args, Check { buf: sbuf, op: b.name().to_string(), message });
        }
        None => l.step(node, kb.finish(), args),
    }
    Ok(true)
}
