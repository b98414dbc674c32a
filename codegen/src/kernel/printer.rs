//! The text form of kernels, for snapshots and `smelt compile --emit kernel`:
//!
//! ```text
//! kernel relu(%x: f32[12] in, %y: f32[12] out) {
//!   vectorized(4) for i in 0..12 {
//!     %y[i] = select(gt(%x[i], 0.0), %x[i], 0.0)
//!   }
//! }
//! ```
//!
//! Buffers print as `%name`, vector loads as `%b[i..+4]`, the first assignment of a
//! variable as `let v: ty = …`. Index arithmetic is infix; everything else is a call.

use super::{Expr, Kernel, Lit, LoopKind, Stmt};
use std::collections::HashSet;
use std::fmt::Write;

/// Prints a kernel.
pub fn print(k: &Kernel) -> String {
    let mut p = Printer { k, out: String::new(), declared: HashSet::new() };
    let params: Vec<String> =
        k.buffers.iter().map(|b| format!("%{}: {}[{}] {}", b.name, b.scalar.name(), b.len, b.access.name())).collect();
    let _ = writeln!(p.out, "kernel {}({}) {{", k.name, params.join(", "));
    p.block(&k.body, 1);
    p.out.push_str("}\n");
    p.out
}

/// Prints one expression of kernel `k`.
pub fn expr(k: &Kernel, e: &Expr) -> String {
    let mut s = String::new();
    write_expr(k, e, &mut s, 0);
    s
}

struct Printer<'a> {
    k: &'a Kernel,
    out: String,
    declared: HashSet<u32>,
}

impl Printer<'_> {
    fn block(&mut self, body: &[Stmt], depth: usize) {
        for s in body {
            self.stmt(s, depth);
        }
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn stmt(&mut self, s: &Stmt, depth: usize) {
        self.indent(depth);
        match s {
            Stmt::Loop(l) => {
                let name = &self.k.var(l.var).name;
                self.declared.insert(l.var.0);
                let step = if l.step == 1 { String::new() } else { format!(" step {}", l.step) };
                let kind = match l.kind {
                    LoopKind::Reduce(op, acc) => format!("reduce({} into {}) for", op.name(), self.k.var(acc).name),
                    k => k.to_string(),
                };
                let _ = writeln!(self.out, "{kind} {name} in {}..{}{step} {{", expr(self.k, &l.lo), expr(self.k, &l.hi));
                self.block(&l.body, depth + 1);
                self.indent(depth);
                self.out.push_str("}\n");
            }
            Stmt::Set(v, e) => {
                let d = self.k.var(*v);
                if self.declared.insert(v.0) {
                    let _ = writeln!(self.out, "let {}: {} = {}", d.name, d.ty, expr(self.k, e));
                } else {
                    let _ = writeln!(self.out, "{} = {}", d.name, expr(self.k, e));
                }
            }
            Stmt::Store { buf, index, value } => {
                let lanes = value.ty(self.k).map(|t| t.lanes).unwrap_or(1);
                let b = &self.k.buffer(*buf).name;
                let range = if lanes > 1 { format!("..+{lanes}") } else { String::new() };
                let _ = writeln!(self.out, "%{b}[{}{range}] = {}", expr(self.k, index), expr(self.k, value));
            }
            Stmt::If { cond, then, els } => {
                let _ = writeln!(self.out, "if {} {{", expr(self.k, cond));
                self.block(then, depth + 1);
                if !els.is_empty() {
                    self.indent(depth);
                    self.out.push_str("} else {\n");
                    self.block(els, depth + 1);
                }
                self.indent(depth);
                self.out.push_str("}\n");
            }
            Stmt::Comment(c) => {
                let _ = writeln!(self.out, "# {c}");
            }
            Stmt::TileGemm(t) => {
                let at = |a: &super::At| format!("%{}[{}]", self.k.buffer(a.buf).name, expr(self.k, &a.index));
                let b = match &t.koff {
                    Some(k) => format!("{} + {}", at(&t.b), at(k)),
                    None => at(&t.b),
                };
                let a = match &t.a_rs {
                    Some(rs) => format!("{} rows {}", at(&t.a), expr(self.k, rs)),
                    None => at(&t.a),
                };
                let _ = writeln!(self.out, "{} = tile_gemm {}x{}({a}, {b}, depth {})", at(&t.tile), t.mr, t.nr, expr(self.k, &t.kc));
            }
            Stmt::AmxTile(t) => {
                let at = |a: &super::At| format!("%{}[{}]", self.k.buffer(a.buf).name, expr(self.k, &a.index));
                let bias = match &t.bias {
                    Some(b) => format!(" + {}{}", if t.bias_rows { "rows " } else { "" }, at(b)),
                    None => String::new(),
                };
                let (sa, sb) = if t.signed_a { ("s8", "u8") } else { ("u8", "s8") };
                let _ = writeln!(
                    self.out,
                    "{} rows {} = amx_tile 32x32({sa} {}{}, {sb} {}, depth 64*{}){bias}",
                    at(&t.c),
                    expr(self.k, &t.ldc),
                    at(&t.a),
                    t.a_rs.as_ref().map(|rs| format!(" rows {}", expr(self.k, rs))).unwrap_or_default(),
                    at(&t.b),
                    expr(self.k, &t.kblocks)
                );
            }
        }
    }
}

fn lit(l: &Lit, out: &mut String) {
    match l {
        Lit::F32(x) => {
            let _ = write!(out, "{x:?}");
        }
        Lit::Int(v, s) if *s == super::Scalar::I64 => {
            let _ = write!(out, "{v}");
        }
        Lit::Int(v, s) => {
            let _ = write!(out, "{v}{}", s.name());
        }
        Lit::Bool(b) => {
            let _ = write!(out, "{b}");
        }
    }
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Bin(op, ..) => match op.infix() {
            Some("+") | Some("-") => 1,
            Some(_) => 2,
            None => 3,
        },
        _ => 3,
    }
}

fn write_expr(k: &Kernel, e: &Expr, out: &mut String, parent: u8) {
    let call = |name: &str, args: &[&Expr], out: &mut String| {
        out.push_str(name);
        out.push('(');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_expr(k, a, out, 0);
        }
        out.push(')');
    };
    match e {
        Expr::Const(l) => lit(l, out),
        Expr::Var(v) => out.push_str(&k.var(*v).name),
        Expr::Load { buf, index, lanes } => {
            let _ = write!(out, "%{}[", k.buffer(*buf).name);
            write_expr(k, index, out, 0);
            if *lanes > 1 {
                let _ = write!(out, "..+{lanes}");
            }
            out.push(']');
        }
        Expr::Un(op, a) => call(op.name(), &[a], out),
        Expr::Bin(op, a, b) => match op.infix() {
            Some(sym) => {
                let p = prec(e);
                let paren = p < parent;
                if paren {
                    out.push('(');
                }
                write_expr(k, a, out, p);
                let _ = write!(out, " {sym} ");
                // The right operand binds tighter: a - (b - c), a / (b * c).
                write_expr(k, b, out, p + 1);
                if paren {
                    out.push(')');
                }
            }
            None => call(op.name(), &[a, b], out),
        },
        Expr::Fma(a, b, c) => call("fma", &[a, b, c], out),
        Expr::Cmp(op, a, b) => call(op.name(), &[a, b], out),
        Expr::Select(c, a, b) => call("select", &[c, a, b], out),
        Expr::Cast(to, a) => call(&format!("cast.{}", to.name()), &[a], out),
        Expr::Call(f, args) => call(f.name(), &args.iter().collect::<Vec<_>>(), out),
        Expr::Splat(a, n) => call(&format!("splat{n}"), &[a], out),
        Expr::Lane(a, i) => {
            call("lane", &[a], out);
            out.pop();
            let _ = write!(out, ", {i})");
        }
        Expr::HReduce(op, a) => call(op.name(), &[a], out),
    }
}
