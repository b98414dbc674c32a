//! The vectorizer: turns each `vectorized(w)` loop, whose body is scalar, into a
//! main loop that runs `w` iterations at a time on `w`-lane vectors and a scalar
//! remainder loop. A body it cannot widen (an i64 or byte-typed value that varies
//! with the loop, a non-contiguous varying load or store, an assignment to a
//! variable from outside the loop, a branch on a varying condition) runs serially
//! instead: vectorization changes speed, never results. An emitter whose vectors
//! of bytes and of f64 are native ([`Caps`]: LLVM) also widens byte loads and
//! stores (8-bit tensors, widened or narrowed by casts) and f64 arithmetic.

use crate::kernel::{BinOp, Expr, Kernel, Loop, LoopKind, Scalar, Stmt, Ty, VarId};
use std::collections::{HashMap, HashSet};

/// Which scalars beyond f32, i32 and bool an emitter's vectors hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// u8 and i8 (loads, stores and casts).
    pub bytes: bool,
    /// f64 arithmetic and casts.
    pub f64: bool,
}

/// Rewrites every vectorized loop of `k` (see the module doc), f32, i32 and bool
/// values only.
pub fn vectorize(k: &Kernel) -> Kernel {
    vectorize_for(k, Caps::default())
}

/// [`vectorize`] for an emitter with `caps`.
pub fn vectorize_for(k: &Kernel, caps: Caps) -> Kernel {
    let mut out = k.clone();
    let body = std::mem::take(&mut out.body);
    out.body = block(&mut out, body, &k.body, caps);
    out
}

fn block(k: &mut Kernel, body: Vec<Stmt>, whole: &[Stmt], caps: Caps) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(body.len());
    for s in body {
        match s {
            Stmt::Loop(mut l) => {
                if let LoopKind::Vectorized(w) = l.kind
                    && w > 1
                    && let Some(widened) = widen_loop(k, &l, w, whole, caps)
                {
                    out.extend(widened);
                    continue;
                }
                if matches!(l.kind, LoopKind::Vectorized(_)) {
                    l.kind = LoopKind::Serial;
                }
                l.body = block(k, l.body, whole, caps);
                out.push(Stmt::Loop(l));
            }
            Stmt::If { cond, then, els } => {
                let then = block(k, then, whole, caps);
                let els = block(k, els, whole, caps);
                out.push(Stmt::If { cond, then, els });
            }
            s => out.push(s),
        }
    }
    out
}

/// The main vector loop and the scalar tail, or `None` when the body cannot be
/// widened.
fn widen_loop(k: &mut Kernel, l: &Loop, w: u32, whole: &[Stmt], caps: Caps) -> Option<Vec<Stmt>> {
    if l.step != 1 {
        return None;
    }
    let mut local = HashSet::new();
    collect_sets(&l.body, &mut local);
    let mut varying: HashSet<VarId> = HashSet::from([l.var]);
    loop {
        let before = varying.len();
        mark_varying(&l.body, &mut varying);
        if varying.len() == before {
            break;
        }
    }
    // A varying variable must live only in this loop, and be set before it is read
    // in each iteration (no reductions across iterations).
    for &v in varying.iter().filter(|v| **v != l.var) {
        if refs(whole, v) != refs(&l.body, v) || !set_first(&l.body, v).unwrap_or(false) {
            return None;
        }
    }
    let cx = Cx { k, i: l.var, w, varying: &varying, local: &local, caps };
    if !cx.legal_block(&l.body) {
        return None;
    }
    // Vector twins of the varying variables.
    let mut map = HashMap::new();
    let mut vars: Vec<VarId> = varying.iter().copied().filter(|v| *v != l.var).collect();
    vars.sort();
    for v in vars {
        let d = k.var(v).clone();
        let nv = k.new_var(&format!("{}_v", d.name), d.ty.with_lanes(w));
        map.insert(v, nv);
    }
    let cx = Cx { k, i: l.var, w, varying: &varying, local: &local, caps };
    let wide = cx.widen_block(&l.body, &map);
    let main_body = block(k, wide, whole, caps);
    let tail_body = block(k, strip_vectorized(l.body.clone()), whole, caps);
    let mut out = vec![];
    // end = lo + (hi - lo) / w * w
    let (lo, hi) = (l.lo.clone(), l.hi.clone());
    let end = match (lo.as_int(), hi.as_int()) {
        (Some(a), Some(b)) => Expr::i(a + (b - a).max(0) / w as i64 * w as i64),
        _ => {
            let name = format!("{}_end", k.var(l.var).name);
            let v = k.new_var(&name, Ty::I64);
            let span = Expr::bin(BinOp::Max, hi.clone() - lo.clone(), Expr::i(0));
            out.push(Stmt::Set(v, lo.clone() + span / Expr::i(w as i64) * Expr::i(w as i64)));
            Expr::Var(v)
        }
    };
    if lo != end {
        out.push(Stmt::Loop(Loop { var: l.var, lo, hi: end.clone(), step: w as u64, kind: LoopKind::Serial, body: main_body }));
    }
    if end != hi {
        out.push(Stmt::Loop(Loop { var: l.var, lo: end, hi, step: 1, kind: LoopKind::Serial, body: tail_body }));
    }
    Some(out)
}

fn strip_vectorized(body: Vec<Stmt>) -> Vec<Stmt> {
    body.into_iter()
        .map(|s| match s {
            Stmt::Loop(mut l) => {
                if matches!(l.kind, LoopKind::Vectorized(_)) {
                    l.kind = LoopKind::Serial;
                }
                l.body = strip_vectorized(l.body);
                Stmt::Loop(l)
            }
            s => s,
        })
        .collect()
}

/// How many statements and expressions mention `v`.
fn refs(body: &[Stmt], v: VarId) -> usize {
    let n = |e: &Expr| {
        let mut c = 0;
        e.visit(&mut |s| c += matches!(s, Expr::Var(w) if *w == v) as usize);
        c
    };
    body.iter()
        .map(|s| match s {
            Stmt::Set(w, e) => (*w == v) as usize + n(e),
            Stmt::Store { index, value, .. } => n(index) + n(value),
            Stmt::Loop(l) => (l.var == v) as usize + n(&l.lo) + n(&l.hi) + refs(&l.body, v),
            Stmt::If { cond, then, els } => n(cond) + refs(then, v) + refs(els, v),
            Stmt::Comment(_) => 0,
            Stmt::TileGemm(t) => t.exprs().into_iter().map(n).sum(),
            Stmt::AmxTile(t) => t.exprs().into_iter().map(n).sum(),
        })
        .sum()
}

/// Whether, in program order, `v` is assigned (from a value not reading it) before
/// anything reads it; `None` when the block does not mention it.
fn set_first(body: &[Stmt], v: VarId) -> Option<bool> {
    for s in body {
        let r = match s {
            Stmt::Set(_, e) if e.uses_var(v) => Some(false),
            Stmt::Set(w, _) if *w == v => Some(true),
            Stmt::Set(..) | Stmt::Comment(_) => None,
            Stmt::Store { index, value, .. } => (index.uses_var(v) || value.uses_var(v)).then_some(false),
            Stmt::TileGemm(t) => t.exprs().iter().any(|e| e.uses_var(v)).then_some(false),
            Stmt::AmxTile(t) => t.exprs().iter().any(|e| e.uses_var(v)).then_some(false),
            Stmt::Loop(l) => {
                if l.lo.uses_var(v) || l.hi.uses_var(v) {
                    Some(false)
                } else {
                    set_first(&l.body, v)
                }
            }
            Stmt::If { cond, then, els } => {
                if cond.uses_var(v) {
                    Some(false)
                } else {
                    match (set_first(then, v), set_first(els, v)) {
                        (Some(false), _) | (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        (Some(true), None) | (None, Some(true)) => Some(false),
                        (None, None) => None,
                    }
                }
            }
        };
        if r.is_some() {
            return r;
        }
    }
    None
}

fn collect_sets(body: &[Stmt], out: &mut HashSet<VarId>) {
    for s in body {
        match s {
            Stmt::Set(v, _) => {
                out.insert(*v);
            }
            Stmt::Loop(l) => {
                out.insert(l.var);
                collect_sets(&l.body, out);
            }
            Stmt::If { then, els, .. } => {
                collect_sets(then, out);
                collect_sets(els, out);
            }
            _ => {}
        }
    }
}

fn uses_any(e: &Expr, vars: &HashSet<VarId>) -> bool {
    let mut found = false;
    e.visit(&mut |s| found |= matches!(s, Expr::Var(v) if vars.contains(v)));
    found
}

fn mark_varying(body: &[Stmt], varying: &mut HashSet<VarId>) {
    for s in body {
        match s {
            Stmt::Set(v, e) if uses_any(e, varying) => {
                varying.insert(*v);
            }
            Stmt::Loop(l) => mark_varying(&l.body, varying),
            Stmt::If { then, els, .. } => {
                mark_varying(then, varying);
                mark_varying(els, varying);
            }
            _ => {}
        }
    }
}

struct Cx<'a> {
    k: &'a Kernel,
    i: VarId,
    w: u32,
    varying: &'a HashSet<VarId>,
    local: &'a HashSet<VarId>,
    caps: Caps,
}

impl Cx<'_> {
    fn varies(&self, e: &Expr) -> bool {
        uses_any(e, self.varying)
    }

    /// The coefficient of the loop variable in `e` when `e` is affine in it and
    /// depends on no other varying value.
    fn coef(&self, e: &Expr) -> Option<i64> {
        if !self.varies(e) {
            return Some(0);
        }
        match e {
            Expr::Var(v) if *v == self.i => Some(1),
            Expr::Bin(BinOp::Add, a, b) => self.coef(a)?.checked_add(self.coef(b)?),
            Expr::Bin(BinOp::Sub, a, b) => self.coef(a)?.checked_sub(self.coef(b)?),
            Expr::Bin(BinOp::Mul, a, b) => match (a.as_int(), b.as_int()) {
                (Some(c), _) => self.coef(b)?.checked_mul(c),
                (_, Some(c)) => self.coef(a)?.checked_mul(c),
                _ => None,
            },
            _ => None,
        }
    }

    fn wide_ok(&self, t: Ty) -> bool {
        self.scalar_ok(t.scalar) && t.lanes == 1
    }

    fn scalar_ok(&self, s: Scalar) -> bool {
        match s {
            Scalar::F32 | Scalar::I32 | Scalar::Bool => true,
            Scalar::U8 | Scalar::I8 => self.caps.bytes,
            Scalar::F64 => self.caps.f64,
            _ => false,
        }
    }

    /// Whether a value-position expression can be widened.
    fn legal_value(&self, e: &Expr) -> bool {
        if !self.varies(e) {
            return e.ty(self.k).is_ok_and(|t| t.lanes == 1);
        }
        let Ok(t) = e.ty(self.k) else { return false };
        if !self.wide_ok(t) {
            return false;
        }
        match e {
            Expr::Const(_) => true,
            Expr::Var(v) => *v != self.i,
            Expr::Load { buf, index, lanes } => {
                *lanes == 1 && self.coef(index) == Some(1) && {
                    let b = self.k.buffer(*buf).scalar;
                    matches!(b, Scalar::F32 | Scalar::I32) || (self.caps.bytes && matches!(b, Scalar::U8 | Scalar::I8))
                }
            }
            Expr::Un(_, a) => self.legal_value(a),
            Expr::Bin(op, a, b) => {
                !(t.scalar.is_int() && matches!(op, BinOp::Div | BinOp::Rem)) && self.legal_value(a) && self.legal_value(b)
            }
            Expr::Cmp(_, a, b) => self.legal_value(a) && self.legal_value(b),
            Expr::Fma(a, b, c) | Expr::Select(a, b, c) => self.legal_value(a) && self.legal_value(b) && self.legal_value(c),
            Expr::Cast(_, a) => self.legal_value(a),
            Expr::Call(_, args) => args.iter().all(|a| self.legal_value(a)),
            Expr::Splat(..) | Expr::Lane(..) | Expr::HReduce(..) => false,
        }
    }

    fn legal_block(&self, body: &[Stmt]) -> bool {
        body.iter().all(|s| match s {
            Stmt::Set(v, e) => self.local.contains(v) && self.legal_value(e),
            // The stored vector is the buffer's scalar: an invariant byte value
            // stored still needs the emitter's byte vectors.
            Stmt::Store { buf, index, value } => {
                self.coef(index) == Some(1)
                    && self.legal_value(value)
                    && value.ty(self.k).is_ok_and(|t| t.scalar != Scalar::Bool)
                    && (self.caps.bytes || !matches!(self.k.buffer(*buf).scalar, Scalar::U8 | Scalar::I8))
            }
            Stmt::Loop(l) => {
                l.kind != LoopKind::Parallel && !self.varies(&l.lo) && !self.varies(&l.hi) && self.legal_block(&l.body)
            }
            Stmt::If { cond, then, els } => !self.varies(cond) && self.legal_block(then) && self.legal_block(els),
            Stmt::Comment(_) => true,
            // A call per tile: nothing to widen.
            Stmt::TileGemm(_) | Stmt::AmxTile(_) => false,
        })
    }

    fn widen(&self, e: &Expr, map: &HashMap<VarId, VarId>) -> Expr {
        if !self.varies(e) {
            return Expr::splat(e.clone(), self.w);
        }
        let w = |x: &Expr| self.widen(x, map);
        match e {
            Expr::Var(v) => Expr::Var(map[v]),
            Expr::Load { buf, index, .. } => Expr::loadv(*buf, (**index).clone(), self.w),
            Expr::Un(op, a) => Expr::un(*op, w(a)),
            Expr::Bin(op, a, b) => Expr::Bin(*op, Box::new(w(a)), Box::new(w(b))),
            Expr::Cmp(op, a, b) => Expr::cmp(*op, w(a), w(b)),
            Expr::Fma(a, b, c) => Expr::fma(w(a), w(b), w(c)),
            Expr::Select(c, a, b) => Expr::select(w(c), w(a), w(b)),
            Expr::Cast(to, a) => Expr::cast(*to, w(a)),
            Expr::Call(f, args) => Expr::call(*f, args.iter().map(w).collect()),
            Expr::Const(_) | Expr::Splat(..) | Expr::Lane(..) | Expr::HReduce(..) => e.clone(),
        }
    }

    fn widen_block(&self, body: &[Stmt], map: &HashMap<VarId, VarId>) -> Vec<Stmt> {
        body.iter()
            .map(|s| match s {
                Stmt::Set(v, e) => match map.get(v) {
                    Some(nv) => Stmt::Set(*nv, self.widen(e, map)),
                    None => Stmt::Set(*v, e.clone()),
                },
                Stmt::Store { buf, index, value } => {
                    Stmt::Store { buf: *buf, index: index.clone(), value: self.widen(value, map) }
                }
                Stmt::Loop(l) => Stmt::Loop(Loop {
                    var: l.var,
                    lo: l.lo.clone(),
                    hi: l.hi.clone(),
                    step: l.step,
                    kind: if matches!(l.kind, LoopKind::Vectorized(_)) { LoopKind::Serial } else { l.kind },
                    body: self.widen_block(&l.body, map),
                }),
                Stmt::If { cond, then, els } => Stmt::If {
                    cond: cond.clone(),
                    then: self.widen_block(then, map),
                    els: self.widen_block(els, map),
                },
                Stmt::Comment(c) => Stmt::Comment(c.clone()),
                Stmt::TileGemm(t) => Stmt::TileGemm(t.clone()),
                Stmt::AmxTile(t) => Stmt::AmxTile(t.clone()),
            })
            .collect()
    }
}
