//! Lowering of quantization: `quantize` (`clamp(round_half_even(x/scale) + zp)`,
//! the division in f32), `dequantize` (`(q − zp)·scale`), per tensor or per axis,
//! and `qmatmul`: i8/u8 × i8/u8 accumulated in wrapping i32 — the packed GEMM of
//! i16 pairs of `qgemm.rs` on the CPU targets when the zero points keep
//! `q − zp` in i16, else (and on the GPU) a loop vectorized over the output
//! columns with constant weights widened and zero-point-shifted to i32 at compile
//! time — then optionally requantized in f64 as the reference does.

use super::qgemm;
use super::util::Operand;
use super::{BufIdx, Lowerer, internal};
use crate::kernel::{Access, BinOp, Expr, KernelBuilder, LoopKind, Scalar, UnOp};
use crate::Error;
use smelt_ir::ops::Requant;
use smelt_ir::{DType, Op, Quant, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let q8 = |t: &TensorType| matches!(t.dtype, DType::I8 | DType::U8) && t.quant.is_some();
    match op {
        Op::Quantize(_) => ins[0].dtype == DType::F32 && ins[0].quant.is_none() && outs.iter().all(q8),
        Op::Dequantize => q8(ins[0]) && outs.iter().all(|t| t.dtype == DType::F32),
        Op::QMatMul(_) => {
            q8(ins[0])
                && q8(ins[1])
                && ins[0].quant.as_ref().is_some_and(|q| q.axis().is_none())
                && ins[1].quant.as_ref().is_some_and(|q| q.axis().is_none_or(|a| a == 1))
                && ins[1].rank() == 2
                && ins.get(2).is_none_or(|b| b.dtype == DType::I32 && b.quant.is_none())
        }
        _ => false,
    }
}

/// Scales and zero points for each index along the axis (one entry per tensor).
pub(super) fn params(q: &Quant, n: usize) -> (Vec<f32>, Vec<i64>) {
    match q {
        Quant::PerTensor { scale, zero_point } => (vec![*scale; n.max(1)], vec![*zero_point as i64; n.max(1)]),
        Quant::PerAxis { scale, zero_point, .. } => (scale.clone(), zero_point.iter().map(|&z| z as i64).collect()),
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `(outer, d, inner)` around the quantized axis (`d = 1` per tensor).
fn around_axis(shape: &[usize], q: &Quant) -> (usize, usize, usize) {
    match q.axis() {
        Some(a) if a < shape.len() => (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product()),
        _ => (shape.iter().product(), 1, 1),
    }
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let (x, out) = (&ins[0], &outs[0]);
    match op {
        Op::Quantize(_) | Op::Dequantize if !out.is_empty() => {
            let q = match op {
                Op::Quantize(a) => a.quant(x.shape.len()).map_err(|m| internal(node, &m))?,
                _ => x.ty.quant.clone().ok_or_else(|| internal(node, "dequantize of an unquantized value"))?,
            };
            let (outer, d, inner) = around_axis(&x.shape, &q);
            let (s, z) = params(&q, d);
            if s.len() != d || z.len() != d {
                return Err(internal(node, "quantization parameters do not cover the axis"));
            }
            let sb = l.constant(&format!("{node}.scale"), Scalar::F32, f32_bytes(&s));
            let zb = l.constant(&format!("{node}.zero_point"), Scalar::I32, z.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect());
            let name = l.kernel_name(node, "");
            let mut kb = KernelBuilder::new(name);
            let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
            let sk = kb.buffer("scale", Scalar::F32, d as u64, Access::Read);
            let zk = kb.buffer("zero_point", Scalar::I32, d as u64, Access::Read);
            let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
            let quantize = matches!(op, Op::Quantize(_));
            let out_scalar = out.scalar;
            // In i32 (vectors of it on every CPU; no i64 on the GPU).
            let elem = move |v: Expr, sc: Expr, zp: Expr| {
                if quantize {
                    // Bounded before the conversion so that adding the zero point
                    // cannot wrap (the cast to the 8-bit dtype saturates); NaN
                    // converts to 0.
                    let r = Expr::un(UnOp::Round, v / sc);
                    let r = Expr::bin(BinOp::Min, Expr::bin(BinOp::Max, r, Expr::f(-1e9)), Expr::f(1e9));
                    Expr::cast(out_scalar, Expr::cast(Scalar::I32, r) + zp)
                } else {
                    Expr::cast(Scalar::F32, Expr::cast(Scalar::I32, v) - zp) * sc
                }
            };
            if l.target.is_gpu() {
                // One invocation per element (a serial nest of 65,536 or more
                // iterations stops early on lavapipe).
                super::util::each_index(&mut kb, &l.target, &[outer, d, inner], |kb, ix| {
                    let at = (ix[0].clone() * d as i64 + ix[1].clone()) * inner as i64 + ix[2].clone();
                    let r = elem(Expr::load(xb, at.clone()), Expr::load(sk, ix[1].clone()), Expr::load(zk, ix[1].clone()));
                    kb.store(y, at, r);
                });
            } else if d == 1 {
                // Per tensor: one flat loop, in parallel chunks, vectorized.
                // (The parallel loop must be the kernel's only top-level statement:
                // the parameters are read inside it, loop-invariant.)
                super::util::nest(&mut kb, &l.target, &[outer * inner], &[vec![1]], |kb, idx| {
                    let r = elem(Expr::load(xb, idx[0].clone()), Expr::load(sk, Expr::i(0)), Expr::load(zk, Expr::i(0)));
                    kb.store(y, idx[0].clone(), r);
                });
            } else {
                let total = (outer * d * inner) as u64;
                let par = if outer > 1 && total >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
                kb.for_("o", Expr::i(0), Expr::i(outer as i64), par, |kb, o| {
                    kb.for_n("c", d as u64, |kb, c| {
                        let sc = kb.let_("s", Expr::load(sk, c.clone()));
                        let zp = kb.let_("z", Expr::load(zk, c.clone()));
                        let kind = LoopKind::Vectorized(l.target.vector_width.max(1));
                        kb.for_("i", Expr::i(0), Expr::i(inner as i64), kind, |kb, i| {
                            let at = (o.clone() * d as i64 + c.clone()) * inner as i64 + i;
                            kb.store(y, at.clone(), elem(Expr::load(xb, at), sc.clone(), zp.clone()));
                        });
                    });
                });
            }
            l.step(node, kb.finish(), vec![x.buf, sb, zb, out.buf]);
            Ok(true)
        }
        Op::Quantize(_) | Op::Dequantize => Ok(true),
        Op::QMatMul(r) => qmatmul(l, node, r, ins, out),
        _ => Ok(false),
    }
}

fn qmatmul(l: &mut Lowerer, node: &str, r: &Requant, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (a, b) = (&ins[0], &ins[1]);
    let (qa, qb) = (a.ty.quant.clone().ok_or_else(|| internal(node, "a"))?, b.ty.quant.clone().ok_or_else(|| internal(node, "b"))?);
    let (k, n) = (b.shape[0], b.shape[1]);
    let rows = a.len() as usize / k.max(1);
    if out.is_empty() {
        return Ok(true);
    }
    let (sa, za) = qa.at(0);
    let (sb, zb) = params(&qb, n);
    let requant = r.dtype != DType::I32;
    if k > 0 && l.target.quant_pairs && qgemm::fits_i16(a.scalar, &[za as i64]) && qgemm::fits_i16(b.scalar, &zb) {
        // The packed GEMM of pairs (`vpmaddwd`/`pmaddwd`).
        let acc_buf = if requant { l.temp(&format!("{node}.acc"), Scalar::I32, (rows * n) as u64) } else { out.buf };
        let zbs: Vec<i64> = (0..n).map(|c| zb[c.min(zb.len() - 1)]).collect();
        // Quads (`vpdpbusd`): A (the activations) the u8 side, B (constant
        // weights) the s8 side, A's zero point moved into the bias.
        let off = if a.scalar == Scalar::I8 { 128 } else { 0 };
        let quads = qgemm::quads(l, node, b.buf, b.scalar, (n, k, true), &zbs, ins.get(2).map(|o| o.buf), za as i64 + off);
        let (aenc, benc) = match quads {
            Some(_) => (qgemm::Enc::QuadsU8 { off }, qgemm::Enc::QuadsS8),
            None => (qgemm::Enc::Pairs, qgemm::Enc::Pairs),
        };
        // AMX: 32×32 tiles (quads only).
        let amx = quads.is_some() && l.target.quant_amx;
        let ((mr, nr), (la, lb)) = match amx {
            true => ((crate::amx::TILE, crate::amx::TILE), (qgemm::Layout::AmxA, qgemm::Layout::AmxB)),
            false => (l.target.own_tile(), (qgemm::Layout::Panels, qgemm::Layout::Panels)),
        };
        let pa_src = qgemm::PairSrc { buf: a.buf, scalar: a.scalar, groups: 1, gstride: 0, count: rows, depth: k, s_lane: k as i64, s_depth: 1, zp: vec![za as i64], enc: aenc, layout: la };
        let pb_src = qgemm::PairSrc { buf: b.buf, scalar: b.scalar, groups: 1, gstride: 0, count: n, depth: k, s_lane: 1, s_depth: n as i64, zp: zbs, enc: benc, layout: lb };
        // In place only from the arena, whose buffers start on a cache line (a
        // graph input is the caller's memory: a row straddling two lines halves
        // the tile loads' speed).
        let in_arena = matches!(l.prog.buffer(a.buf).kind, super::BufKind::Temp);
        let direct = amx && in_arena && qgemm::amx_direct_a(a.scalar, aenc, rows, k);
        let pa = if direct { a.buf } else { qgemm::pack_pairs(l, node, "a", &pa_src, mr)? };
        let pb = qgemm::pack_pairs(l, node, "b", &pb_src, nr)?;
        let bias = match quads {
            Some(q) => Some(qgemm::Bias::Col(q.bias)),
            None => ins.get(2).map(|o| qgemm::Bias::Col(o.buf)),
        };
        let spec = qgemm::QGemmSpec {
            batches: 1,
            groups: 1,
            m: rows,
            n,
            k,
            pa,
            pb,
            c: acc_buf,
            bias,
            quads: quads.map(|_| true),
            narrow: quads.is_some_and(|q| q.narrow),
            amx,
            amx_direct_a: direct,
        };
        qgemm::qgemm(l, node, &spec)?;
        if requant {
            requantize(l, node, r, acc_buf, out, sa, &sb, (rows, n, 1))?;
        }
        return Ok(true);
    }
    // B as i32 with its zero point subtracted: constant when B is.
    let bz: Option<BufIdx> = match &l.prog.buffer(b.buf).kind {
        super::BufKind::Const(bytes) => {
            let v: Vec<u8> = (0..k * n)
                .flat_map(|i| {
                    let q = if b.scalar == Scalar::I8 { bytes[i] as i8 as i32 } else { bytes[i] as i32 };
                    (q - zb[(i % n).min(zb.len() - 1)] as i32).to_le_bytes()
                })
                .collect();
            Some(l.constant(&format!("{node}.b_i32"), Scalar::I32, v))
        }
        _ => None,
    };
    let zbb = l.constant(&format!("{node}.b_zero_point"), Scalar::I32, (0..n).flat_map(|c| (zb[c.min(zb.len() - 1)] as i32).to_le_bytes()).collect());
    let acc_buf = if requant { l.temp(&format!("{node}.acc"), Scalar::I32, (rows * n) as u64) } else { out.buf };
    let name = l.kernel_name(node, "acc");
    let mut kb = KernelBuilder::new(name);
    let ab = kb.buffer("a", a.scalar, a.len(), Access::Read);
    let bb = match bz {
        Some(_) => kb.buffer("b_i32", Scalar::I32, (k * n) as u64, Access::Read),
        None => kb.buffer("b", b.scalar, b.len(), Access::Read),
    };
    let zk = kb.buffer("b_zero_point", Scalar::I32, n as u64, Access::Read);
    let bias = ins.get(2).map(|o| kb.buffer("bias", Scalar::I32, o.len(), Access::Read));
    let y = kb.buffer("acc", Scalar::I32, (rows * n) as u64, Access::Write);
    let par = if (rows * n * k) as u64 >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let widened = bz.is_some();
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), par, |kb, row| {
        kb.for_("c", Expr::i(0), Expr::i(n as i64), LoopKind::Vectorized(4), |kb, c| {
            let acc = kb.var("acc", crate::kernel::Ty::I32);
            kb.set(acc, bias.map_or(Expr::int(0, Scalar::I32), |bb| Expr::load(bb, c.clone())));
            kb.for_n("p", k as u64, |kb, p| {
                let av = Expr::cast(Scalar::I32, Expr::load(ab, row.clone() * k as i64 + p.clone())) - Expr::int(za as i64, Scalar::I32);
                let bv = if widened {
                    Expr::load(bb, p * n as i64 + c.clone())
                } else {
                    Expr::cast(Scalar::I32, Expr::load(bb, p * n as i64 + c.clone())) - Expr::load(zk, c.clone())
                };
                kb.set(acc, Expr::var(acc) + av * bv);
            });
            kb.store(y, row.clone() * n as i64 + c, Expr::var(acc));
        });
    });
    let mut args = vec![a.buf, bz.unwrap_or(b.buf), zbb];
    if let Some(o) = ins.get(2) {
        args.push(o.buf);
    }
    args.push(acc_buf);
    l.step(node, kb.finish(), args);
    if requant {
        requantize(l, node, r, acc_buf, out, sa, &sb, (rows, n, 1))?;
    }
    Ok(true)
}

/// Requantizes i32 accumulators laid out `(outer, chans, inner)` into `out`:
/// `clamp(round_half_even(acc·sa·sb[c]/scale) + zero_point)` in f64, as the
/// reference, where `c` is the channel (`sb` has one scale per channel, or one).
#[allow(clippy::too_many_arguments)]
pub(super) fn requantize(l: &mut Lowerer, node: &str, r: &Requant, acc: BufIdx, out: &Operand, sa: f32, sb: &[f32], (outer, chans, inner): (usize, usize, usize)) -> Result<(), Error> {
    let so = r.scale.ok_or_else(|| internal(node, "requantizing needs the output scale"))?;
    let per_chan: Vec<f32> = (0..chans).map(|c| sb[c.min(sb.len().saturating_sub(1))]).collect();
    let sbb = l.constant(&format!("{node}.b_scale"), Scalar::F32, f32_bytes(&per_chan));
    let name = l.kernel_name(node, "requant");
    let mut kb = KernelBuilder::new(name);
    let len = (outer * chans * inner) as u64;
    let ak = kb.buffer("acc", Scalar::I32, len, Access::Read);
    let sk = kb.buffer("b_scale", Scalar::F32, chans as u64, Access::Read);
    let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let (zp, out_scalar) = (r.zero_point as i64, out.scalar);
    let f64c = |x: f32| Expr::cast(Scalar::F64, Expr::f(x));
    // round_half_even(acc·sa·sb[c]/scale) in f64, as the reference; bounded to
    // ±2^30 so that the zero point adds in i32, and through f32 (exact up to
    // 2^24; beyond, the 8-bit cast saturates either way) for a vector conversion.
    let elem = move |kb: &mut KernelBuilder, o: Expr, c: Expr, i: Expr, s: Expr| {
        let at = (o * chans as i64 + c) * inner as i64 + i;
        let v = Expr::cast(Scalar::F64, Expr::load(ak, at.clone())) * f64c(sa) * s / f64c(so);
        let v = Expr::un(UnOp::Round, v);
        let v = Expr::bin(BinOp::Min, Expr::bin(BinOp::Max, v, f64c(-1073741824.0)), f64c(1073741824.0));
        let v = Expr::cast(Scalar::I32, Expr::cast(Scalar::F32, v));
        kb.store(y, at, Expr::cast(out_scalar, v + Expr::int(zp, Scalar::I32)));
    };
    if l.target.is_gpu() {
        // One invocation per element (a serial nest of 65,536 or more iterations
        // stops early on lavapipe).
        super::util::each_index(&mut kb, &l.target, &[outer, chans, inner], |kb, ix| {
            let s = kb.let_("s", Expr::cast(Scalar::F64, Expr::load(sk, ix[1].clone())));
            elem(kb, ix[0].clone(), ix[1].clone(), ix[2].clone(), s);
        });
    } else {
        let total = (outer * chans * inner) as u64;
        let par = if outer > 1 && total >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
        kb.for_("o", Expr::i(0), Expr::i(outer as i64), par, |kb, o| {
            kb.for_n("c", chans as u64, |kb, c| {
                let s = kb.let_("s", Expr::cast(Scalar::F64, Expr::load(sk, c.clone())));
                let w = l.target.vector_width.max(1);
                kb.for_("i", Expr::i(0), Expr::i(inner as i64), LoopKind::Vectorized(w), |kb, i| elem(kb, o.clone(), c.clone(), i, s.clone()));
            });
        });
    }
    l.step(node, kb.finish(), vec![acc, sbb, out.buf]);
    Ok(())
}
