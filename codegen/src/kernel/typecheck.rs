//! Type inference of kernel expressions: every operation's operand rules, in one
//! place, for the builder, the verifier and the emitters.

use super::{BinOp, Expr, Intrinsic, Kernel, Scalar, Ty, UnOp};

impl Expr {
    /// The type of the expression in kernel `k`, or a message when it is ill-typed.
    pub fn ty(&self, k: &Kernel) -> Result<Ty, String> {
        let t = self.ty_unchecked(k)?;
        // Only loads, casts and variables may hold a storage scalar's value.
        if let Expr::Un(..) | Expr::Bin(..) | Expr::Fma(..) | Expr::Select(..) | Expr::Call(..) | Expr::Splat(..) | Expr::Lane(..) | Expr::HReduce(..) = self
            && t.scalar.is_storage()
        {
            return Err(format!("{} values are stored, not computed with: cast them to f32", t.scalar.name()));
        }
        if let Expr::Cmp(_, a, _) = self
            && a.ty(k)?.scalar.is_storage()
        {
            return Err("comparisons of storage scalars: cast them to f32".into());
        }
        Ok(t)
    }

    fn ty_unchecked(&self, k: &Kernel) -> Result<Ty, String> {
        Ok(match self {
            Expr::Const(l) => l.ty(),
            Expr::Var(v) => k.vars.get(v.0 as usize).ok_or_else(|| format!("unknown variable {}", v.0))?.ty,
            Expr::Load { buf, index, lanes } => {
                let b = k.buffers.get(buf.0 as usize).ok_or_else(|| format!("unknown buffer {}", buf.0))?;
                want(index.ty(k)?, Ty::I64, "a load index")?;
                if *lanes == 0 {
                    return Err("a load of 0 lanes".into());
                }
                if b.scalar.is_storage() && *lanes > 1 {
                    return Err(format!("vector loads of {} (a storage scalar)", b.scalar.name()));
                }
                Ty::vec(b.scalar, *lanes)
            }
            Expr::Un(op, a) => {
                let t = a.ty(k)?;
                let ok = match op {
                    UnOp::Neg | UnOp::Abs => t.scalar != Scalar::Bool,
                    UnOp::Floor | UnOp::Ceil | UnOp::Round | UnOp::Trunc | UnOp::Sqrt => t.scalar.is_float(),
                    UnOp::Not => !t.scalar.is_float(),
                };
                if !ok {
                    return Err(format!("{} does not take {t}", op.name()));
                }
                t
            }
            Expr::Bin(op, a, b) => {
                let (ta, tb) = (a.ty(k)?, b.ty(k)?);
                if ta != tb {
                    return Err(format!("{} of {ta} and {tb}", op.name()));
                }
                let ok = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Min | BinOp::Max => ta.scalar != Scalar::Bool,
                    BinOp::Rem | BinOp::Shl | BinOp::Shr => ta.scalar.is_int(),
                    BinOp::And | BinOp::Or | BinOp::Xor => !ta.scalar.is_float(),
                };
                if !ok {
                    return Err(format!("{} does not take {ta}", op.name()));
                }
                ta
            }
            Expr::Fma(a, b, c) => {
                let t = a.ty(k)?;
                if !t.scalar.is_float() || b.ty(k)? != t || c.ty(k)? != t {
                    return Err("fma takes three floats of one type".into());
                }
                t
            }
            Expr::Cmp(op, a, b) => {
                let (ta, tb) = (a.ty(k)?, b.ty(k)?);
                if ta != tb {
                    return Err(format!("{} of {ta} and {tb}", op.name()));
                }
                Ty::vec(Scalar::Bool, ta.lanes)
            }
            Expr::Select(c, a, b) => {
                let (tc, ta, tb) = (c.ty(k)?, a.ty(k)?, b.ty(k)?);
                if ta != tb || tc != Ty::vec(Scalar::Bool, ta.lanes) {
                    return Err(format!("select({tc}, {ta}, {tb})"));
                }
                ta
            }
            Expr::Cast(to, a) => {
                let t = a.ty(k)?;
                // Storage scalars convert to and from f32 only.
                if (t.scalar.is_storage() || to.is_storage()) && t.scalar != *to && (t.lanes > 1 || !matches!((t.scalar, *to), (Scalar::F32, _) | (_, Scalar::F32))) {
                    return Err(format!("cast from {t} to {}: {} converts to and from f32 only", to.name(), if t.scalar.is_storage() { t.scalar.name() } else { to.name() }));
                }
                Ty::vec(*to, t.lanes)
            }
            Expr::Call(f, args) => {
                if args.len() != f.arity() {
                    return Err(format!("{} takes {} arguments, found {}", f.name(), f.arity(), args.len()));
                }
                let t = args[0].ty(k)?;
                if matches!(f, Intrinsic::DotPairsI16 | Intrinsic::DotQuadsU8I8 | Intrinsic::DotQuadsU8I8Narrow) {
                    for a in args {
                        let ta = a.ty(k)?;
                        if ta.scalar != Scalar::I32 || ta != t {
                            return Err(format!("{} takes i32 arguments of one type, found {ta}", f.name()));
                        }
                    }
                    return Ok(t);
                }
                for a in args {
                    let ta = a.ty(k)?;
                    if !ta.scalar.is_float() || ta != t {
                        return Err(format!("{} takes f32 arguments of one type, found {ta}", f.name()));
                    }
                }
                t
            }
            Expr::Splat(a, lanes) => {
                let t = a.ty(k)?;
                if t.is_vector() {
                    return Err(format!("splat of a vector {t}"));
                }
                t.with_lanes(*lanes)
            }
            Expr::Lane(a, i) => {
                let t = a.ty(k)?;
                if *i >= t.lanes {
                    return Err(format!("lane {i} of {t}"));
                }
                t.with_lanes(1)
            }
            Expr::HReduce(op, a) => {
                let t = a.ty(k)?;
                if !t.is_vector() || t.scalar == Scalar::Bool {
                    return Err(format!("{} of {t}", op.name()));
                }
                t.with_lanes(1)
            }
        })
    }

}

fn want(t: Ty, w: Ty, what: &str) -> Result<(), String> {
    if t == w { Ok(()) } else { Err(format!("{what} must be {w}, found {t}")) }
}


#[cfg(test)]
mod tests {
    use crate::kernel::{Access, Expr, KernelBuilder, Scalar};

    /// f16/bf16 values are only loaded, stored and cast to and from f32.
    #[test]
    fn storage_scalars_only_convert() {
        for s in [Scalar::F16, Scalar::BF16] {
            let mut kb = KernelBuilder::new("k");
            let h = kb.buffer("h", s, 8, Access::Read);
            let k = kb.kernel().clone();
            let x = || Expr::load(h, Expr::i(0));
            assert_eq!(x().ty(&k).map(|t| t.scalar), Ok(s));
            assert!(Expr::cast(Scalar::F32, x()).ty(&k).is_ok());
            assert!(Expr::cast(s, Expr::f(1.0)).ty(&k).is_ok());
            assert!((x() + x()).ty(&k).is_err(), "arithmetic on {}", s.name());
            assert!(x().lt(x()).ty(&k).is_err(), "comparison of {}", s.name());
            assert!(Expr::cast(Scalar::I32, x()).ty(&k).is_err(), "{} to i32 directly", s.name());
            assert!(Expr::cast(s, Expr::i(1)).ty(&k).is_err(), "i64 to {} directly", s.name());
            assert!(Expr::loadv(h, Expr::i(0), 4).ty(&k).is_err(), "vector loads of {}", s.name());
        }
    }
}
