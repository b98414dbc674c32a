//! Lowering of `lstm` and `gru` (ONNX semantics, layout 0): the input projection
//! of every time step at once is one GEMM per direction (`x·Wᵀ + Wb (+ Rb)`), then a
//! recurrence kernel walks time for each (direction, batch row) — in parallel over
//! them — with the state in scratch buffers: gate pre-activations `xw + h·Rᵀ` by
//! vector dot products, then the gate arithmetic (with LSTM peepholes when given)
//! vectorized over the hidden units.

use crate::lower::gemm::{Extra, GemmSpec, OperandA, OperandB, PackSrc, gemm, pack};
use crate::lower::util::{Operand, dot_row};
use crate::lower::{BufIdx, Lowerer, internal};

mod gpu;
use crate::kernel::{Access, BufId, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar};
use crate::Error;
use smelt_ir::ops::Direction;
use smelt_ir::{DType, Expr as IrExpr, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Lstm(_) | Op::Gru(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

pub(super) fn sig(x: Expr) -> Expr {
    Expr::call(Intrinsic::Sigmoid, vec![x])
}

pub(super) fn tanh(x: Expr) -> Expr {
    Expr::call(Intrinsic::Tanh, vec![x])
}

/// The buffers of a recurrence kernel, declared in the order of [`args`]
/// (shared by the CPU form here and the GPU's, `gpu.rs`).
pub(super) struct Bufs {
    pub xw: BufId,
    pub r: BufId,
    pub b: BufId,
    pub h0: Option<BufId>,
    pub c0: Option<BufId>,
    pub peep: Option<BufId>,
    pub y: BufId,
    pub hn: BufId,
    pub cn: Option<BufId>,
    pub st: BufId,
    pub gates: BufId,
}

impl Bufs {
    /// `r` is the recurrent weights as the kernel reads them (name, length);
    /// `lens` the lengths of `xw`, the state and the gates.
    pub(super) fn declare(kb: &mut KernelBuilder, lstm: bool, ins: &[Operand], outs: &[Operand], r: (&str, u64), lens: (u64, u64, u64)) -> Bufs {
        let (xw, state, gates) = lens;
        let read = |kb: &mut KernelBuilder, name: &str, len: u64| kb.buffer(name, Scalar::F32, len, Access::Read);
        let xw = read(kb, "xw", xw);
        let r = read(kb, r.0, r.1);
        let b = read(kb, "b", ins[3].len());
        let h0 = ins.get(4).map(|o| read(kb, "h0", o.len()));
        let c0 = ins.get(5).filter(|_| lstm).map(|o| read(kb, "c0", o.len()));
        let peep = ins.get(6).filter(|_| lstm).map(|o| read(kb, "p", o.len()));
        let y = kb.buffer("y", Scalar::F32, outs[0].len(), Access::Write);
        let hn = kb.buffer("h", Scalar::F32, outs[1].len(), Access::Write);
        let cn = outs.get(2).map(|o| kb.buffer("c", Scalar::F32, o.len(), Access::Write));
        let st = kb.buffer("state", Scalar::F32, state, Access::ReadWrite);
        let gates = kb.buffer("gates", Scalar::F32, gates, Access::ReadWrite);
        Bufs { xw, r, b, h0, c0, peep, y, hn, cn, st, gates }
    }
}

/// The program buffers of a recurrence step, in the order of [`Bufs::declare`].
pub(super) fn args(lstm: bool, ins: &[Operand], outs: &[Operand], xw: BufIdx, r: BufIdx, state: BufIdx, gates: BufIdx) -> Vec<BufIdx> {
    let mut args = vec![xw, r, ins[3].buf];
    args.extend(ins.get(4).map(|o| o.buf));
    args.extend(ins.get(5).filter(|_| lstm).map(|o| o.buf));
    args.extend(ins.get(6).filter(|_| lstm).map(|o| o.buf));
    args.extend(outs.iter().map(|o| o.buf));
    args.push(state);
    args.push(gates);
    args
}

/// A GRU's candidate pre-activation from `x·Whᵀ + Wbh` (`xh`), the reset gate's
/// pre-activation, the recurrent dot product and `Rbh`: `xh + (r⊙h)·Rhᵀ + Rbh`
/// (the dot already of `r⊙h`), or with `linear_before_reset` `xh + r⊙(h·Rhᵀ + Rbh)`.
pub(super) fn candidate(lbr: bool, xh: Expr, r_pre: Expr, dot: Expr, rbias: Expr) -> Expr {
    if lbr { xh + sig(r_pre) * (dot + rbias) } else { xh + dot + rbias }
}

/// Where one (direction, batch row) of a recurrence is: its indices, its state
/// (h at `hs`, c at `cs`) and the time step `ti`.
/// Where row `dn` (direction `di`, batch row `ni`) keeps its state — h at `hs`,
/// c at `cs` and (GRU) r⊙h at `rh`, each H long — its gates (`gbase`, `gstride`
/// apart) and its biases (`bbase`).
pub(super) struct StateAt {
    pub di: Expr,
    pub ni: Expr,
    pub hs: Expr,
    pub cs: Expr,
    pub rh: Expr,
    pub gbase: Expr,
    pub bbase: Expr,
}

impl StateAt {
    pub(super) fn new(kb: &mut KernelBuilder, dn: &Expr, n: usize, h: usize, gh: usize, gstride: usize) -> StateAt {
        let di = kb.let_("di", dn.clone() / Expr::i(n as i64));
        let ni = kb.let_("ni", dn.clone() % Expr::i(n as i64));
        let hs = kb.let_("hs", dn.clone() * (3 * h) as i64);
        let cs = kb.let_("cs", hs.clone() + h as i64);
        let rh = kb.let_("rh", hs.clone() + (2 * h) as i64);
        let gbase = kb.let_("gb", dn.clone() * gstride as i64);
        let bbase = kb.let_("bb", di.clone() * (2 * gh) as i64);
        StateAt { di, ni, hs, cs, rh, gbase, bbase }
    }
}

pub(super) struct Row {
    pub lstm: bool,
    pub h: usize,
    pub d: usize,
    pub n: usize,
    pub di: Expr,
    pub ni: Expr,
    pub hs: Expr,
    pub cs: Expr,
    pub ti: Expr,
}

/// Unit `u`'s cell update from its gate pre-activations `gate(q)`: the new c
/// (LSTM) and h stored in the state, h stored in `y`.
pub(super) fn cell(kb: &mut KernelBuilder, bufs: &Bufs, row: &Row, u: Expr, gate: &dyn Fn(usize) -> Expr) {
    let Row { lstm, h, d, n, .. } = *row;
    let (st, hs, cs, di) = (bufs.st, &row.hs, &row.cs, &row.di);
    let hy = if lstm {
        // Gate order i, o, f, c; peepholes (order i, o, f) add p⊙c to
        // i and f with the old cell, to o with the new one.
        let cold = kb.let_("cold", Expr::load(st, cs.clone() + u.clone()));
        let pe = |q: usize, c: &Expr| bufs.peep.map(|p| Expr::load(p, di.clone() * (3 * h) as i64 + (q * h) as i64 + u.clone()) * c.clone());
        let with = |g: Expr, p: Option<Expr>| p.map_or(g.clone(), |p| g + p);
        let (ig, fg) = (sig(with(gate(0), pe(0, &cold))), sig(with(gate(2), pe(2, &cold))));
        let c = kb.let_("cv", fg * cold.clone() + ig * tanh(gate(3)));
        kb.store(st, cs.clone() + u.clone(), c.clone());
        let og = sig(with(gate(1), pe(1, &c)));
        kb.let_("hy", og * tanh(c))
    } else {
        // Gate order z, r, h.
        let hv = Expr::load(st, hs.clone() + u.clone());
        let z = kb.let_("z", sig(gate(0)));
        kb.let_("hy", (Expr::f(1.0) - z.clone()) * tanh(gate(2)) + z * hv)
    };
    kb.store(st, hs.clone() + u.clone(), hy.clone());
    let yat = ((row.ti.clone() * d as i64 + di.clone()) * n as i64 + row.ni.clone()) * h as i64 + u;
    kb.store(bufs.y, yat, hy);
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let (r, lstm) = match op {
        Op::Lstm(r) => (r, true),
        Op::Gru(r) => (r, false),
        _ => return Ok(false),
    };
    let gates = if lstm { 4 } else { 3 };
    let [t, n, i] = <[usize; 3]>::try_from(ins[0].shape.as_slice()).map_err(|_| internal(node, "x must be [T, N, I]"))?;
    let (h, d) = (r.hidden, r.direction.count());
    let gh = gates * h;
    if outs.iter().any(|o| o.is_empty()) || t == 0 {
        return Err(internal(node, "recurrent op over an empty sequence or batch"));
    }
    // 1. xw[d, t·n, gh] = x·W[d]ᵀ + Wb[d] (+ Rb[d] for LSTM): one GEMM, batched over directions.
    let xw = l.temp(&format!("{node}.xw"), Scalar::F32, (d * t * n * gh) as u64);
    let (mr, nr) = (l.target.mr, l.target.nr);
    let sa = PackSrc { buf: ins[0].buf, batches: 1, bstride: 0, count: t * n, depth: i, s_lane: i as i64, s_depth: 1 };
    let sb = PackSrc { buf: ins[1].buf, batches: d, bstride: (gh * i) as i64, count: gh, depth: i, s_lane: i as i64, s_depth: 1 };
    let pa = pack(l, node, "x", &sa, mr)?;
    let pb = pack(l, node, "w", &sb, nr)?;
    let b = &ins[3];
    let mut extras = vec![Extra { buf: b.buf, off: 0, batch: vec![(2 * gh) as i64], rs: 0, cs: 1 }];
    let mut epi = IrExpr::binary(smelt_ir::BinaryOp::Add, IrExpr::Input(0), IrExpr::Input(1));
    if lstm {
        extras.push(Extra { buf: b.buf, off: gh as i64, batch: vec![(2 * gh) as i64], rs: 0, cs: 1 });
        epi = IrExpr::binary(smelt_ir::BinaryOp::Add, epi, IrExpr::Input(2));
    }
    let spec = GemmSpec {
        batch: vec![d],
        m: t * n,
        n: gh,
        k: i,
        a: OperandA::Packed { pa, batch: vec![0] },
        b: OperandB::Packed { pb, batch: vec![(gh.div_ceil(nr) * i * nr) as i64] },
        c: xw,
        extras,
        epilogue: epi,
    };
    gemm(l, node, &spec)?;
    // 2. The recurrence.
    if l.target.is_gpu() {
        let rec = gpu::Rec {
            lstm,
            t,
            n,
            h,
            d,
            reverse: r.direction == Direction::Reverse,
            linear_before_reset: r.linear_before_reset,
        };
        gpu::recurrence(l, node, &rec, ins, outs, xw)?;
        return Ok(true);
    }
    let state = l.temp(&format!("{node}.state"), Scalar::F32, (d * n * h * 3) as u64);
    // LSTM: Rᵀ packed in panels of NR gate rows (`[d][panel][j][NR]`), so h·Rᵀ is
    // a matrix-vector product vectorized over gate rows (no horizontal sums); the
    // gate scratch is padded to whole panels. Generated code: the generated tile's
    // NR (a micro-kernel's 32 columns made Cranelift's f32x4 accumulators spill).
    let nr = l.target.own_tile().1;
    let rpanels = gh.div_ceil(nr);
    let rt = if lstm {
        let sr = PackSrc { buf: ins[2].buf, batches: d, bstride: (gh * h) as i64, count: gh, depth: h, s_lane: h as i64, s_depth: 1 };
        Some(pack(l, node, "r", &sr, nr)?)
    } else {
        None
    };
    let gstride = if lstm { rpanels * nr } else { gh };
    let g = l.temp(&format!("{node}.gates"), Scalar::F32, (d * n * gstride) as u64);
    let name = l.kernel_name(node, "steps");
    let mut kb = KernelBuilder::new(name);
    let r_in = match rt {
        Some(rt) => ("rt", l.prog.buffer(rt).len),
        None => ("r", ins[2].len()),
    };
    let bufs = Bufs::declare(&mut kb, lstm, ins, outs, r_in, ((d * t * n * gh) as u64, (d * n * h * 3) as u64, (d * n * gstride) as u64));
    let Bufs { xw: xwb, r: rb, b: bb, h0, c0, hn, cn, st, gates: gb, .. } = bufs;
    let w = l.target.vector_width;
    // Matrix-vector accumulators: PB panels at a time, NR/w vectors each (enough
    // independent FMA chains to hide the latency).
    const PB: usize = 4;
    let nv = nr / w as usize;
    let accs: Vec<Vec<crate::kernel::VarId>> =
        (0..PB).map(|q| (0..nv).map(|v| kb.var(&format!("acc{q}{v}"), crate::kernel::Ty::vec(Scalar::F32, w))).collect()).collect();
    let kind = if d * n > 1 && (t * n * gh * h) as u64 >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let rev = r.direction == Direction::Reverse;
    let lbr = r.linear_before_reset;
    kb.for_("dn", Expr::i(0), Expr::i((d * n) as i64), kind, |kb, dn| {
        let StateAt { di, ni, hs, cs, rh, gbase, bbase } = StateAt::new(kb, &dn, n, h, gh, gstride);
        kb.for_("u", Expr::i(0), Expr::i(h as i64), LoopKind::Vectorized(w), |kb, u| {
            let init = |b: Option<crate::kernel::BufId>| b.map_or(Expr::f(0.0), |b| Expr::load(b, dn.clone() * h as i64 + u.clone()));
            kb.store(st, hs.clone() + u.clone(), init(h0));
            kb.store(st, cs.clone() + u.clone(), init(c0));
        });
        kb.for_n("s", t as u64, |kb, s| {
            // Direction 1 of a bidirectional op, and `reverse`, walk time backwards.
            let back = if rev { Expr::b(true) } else { di.clone().eq_(Expr::i(1)) };
            let ti = kb.let_("t", Expr::select(back, Expr::i(t as i64 - 1) - s.clone(), s));
            let xrow = kb.let_("xrow", (di.clone() * (t * n) as i64 + ti.clone() * n as i64 + ni.clone()) * gh as i64);
            if lstm {
                // gates[k] = Σ_j h[j]·Rᵀ[j, k], a block of `np` panels from `p0`.
                let block = |kb: &mut KernelBuilder, p0: Expr, np: usize| {
                    let rbase = kb.let_("rbase", (di.clone() * rpanels as i64 + p0.clone()) * (h * nr) as i64);
                    for row in &accs[..np] {
                        for &a in row {
                            kb.set(a, Expr::splat(Expr::f(0.0), w));
                        }
                    }
                    kb.for_n("j", h as u64, |kb, j| {
                        let hj = kb.let_("hj", Expr::splat(Expr::load(st, hs.clone() + j.clone()), w));
                        let rj = kb.let_("rj", rbase.clone() + j * nr as i64);
                        for (q, row) in accs[..np].iter().enumerate() {
                            for (v, &a) in row.iter().enumerate() {
                                let rv = Expr::loadv(rb, rj.clone() + (q * h * nr + v * w as usize) as i64, w);
                                kb.set(a, Expr::fma(hj.clone(), rv, Expr::var(a)));
                            }
                        }
                    });
                    for (q, row) in accs[..np].iter().enumerate() {
                        for (v, &a) in row.iter().enumerate() {
                            let at = gbase.clone() + p0.clone() * nr as i64 + (q * nr + v * w as usize) as i64;
                            kb.store(gb, at, Expr::var(a));
                        }
                    }
                };
                let main = rpanels / PB * PB;
                if main > 0 {
                    kb.for_step("pn", Expr::i(0), Expr::i(main as i64), PB as u64, LoopKind::Serial, |kb, p0| block(kb, p0, PB));
                }
                if main < rpanels {
                    kb.for_("pn", Expr::i(main as i64), Expr::i(rpanels as i64), LoopKind::Serial, |kb, p0| block(kb, p0, 1));
                }
            }
            if !lstm {
                kb.for_n("k", (2 * h) as u64, |kb, k| {
                    let rrow = kb.let_("rrow", (di.clone() * gh as i64 + k.clone()) * h as i64);
                    let dot = dot_row(kb, st, &hs, rb, &rrow, h, w);
                    let pre = Expr::load(xwb, xrow.clone() + k.clone()) + dot;
                    let pre = if lstm { pre } else { pre + Expr::load(bb, bbase.clone() + gh as i64 + k.clone()) };
                    kb.store(gb, gbase.clone() + k, pre);
                });
            }
            if !lstm {
                // The candidate gate: h·Rhᵀ (or (r⊙h)·Rhᵀ) for each unit.
                kb.for_("u", Expr::i(0), Expr::i(h as i64), LoopKind::Vectorized(w), |kb, u| {
                    let rg = sig(Expr::load(gb, gbase.clone() + h as i64 + u.clone()));
                    kb.store(st, rh.clone() + u.clone(), rg * Expr::load(st, hs.clone() + u));
                });
                kb.for_n("k", h as u64, |kb, k| {
                    let row = (2 * h) as i64;
                    let rrow = kb.let_("rrow", (di.clone() * gh as i64 + k.clone() + row) * h as i64);
                    let src = if lbr { hs.clone() } else { rh.clone() };
                    let dot = dot_row(kb, st, &src, rb, &rrow, h, w);
                    let rbias = Expr::load(bb, bbase.clone() + (gh as i64 + row) + k.clone());
                    let xh = Expr::load(xwb, xrow.clone() + row + k.clone());
                    let r_pre = Expr::load(gb, gbase.clone() + h as i64 + k.clone());
                    kb.store(gb, gbase.clone() + row + k, candidate(lbr, xh, r_pre, dot, rbias));
                });
            }
            let row = Row { lstm, h, d, n, di: di.clone(), ni: ni.clone(), hs: hs.clone(), cs: cs.clone(), ti };
            kb.for_("u", Expr::i(0), Expr::i(h as i64), LoopKind::Vectorized(w), |kb, u| {
                // LSTM gates hold h·Rᵀ only: x·Wᵀ + biases are added here.
                let gate = |q: usize| {
                    let g = Expr::load(gb, gbase.clone() + (q * h) as i64 + u.clone());
                    if lstm { g + Expr::load(xwb, xrow.clone() + (q * h) as i64 + u.clone()) } else { g }
                };
                cell(kb, &bufs, &row, u.clone(), &gate);
            });
        });
        kb.for_("u", Expr::i(0), Expr::i(h as i64), LoopKind::Vectorized(w), |kb, u| {
            kb.store(hn, dn.clone() * h as i64 + u.clone(), Expr::load(st, hs.clone() + u.clone()));
            if let Some(cn) = cn {
                kb.store(cn, dn.clone() * h as i64 + u.clone(), Expr::load(st, cs.clone() + u));
            }
        });
    });
    let args = args(lstm, ins, outs, xw, rt.unwrap_or(ins[2].buf), state, g);
    l.step(node, kb.finish(), args);
    Ok(true)
}
