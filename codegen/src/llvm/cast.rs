//! Conversions between kernel scalars with smelt's semantics, for scalars and
//! vectors of any width: float → int truncates and saturates (NaN → 0, LLVM's
//! `fptosi.sat`/`fptoui.sat`), int → int saturates, to bool is `!= 0`, bool →
//! number is 0/1. f16/bf16 are storage scalars held as their `i16` bits: to and
//! from f32 only, rounding to nearest even like the `half` crate (f16 through
//! LLVM's `half` conversions, which are exact and round to nearest even; bf16 by
//! bit arithmetic, NaN kept quiet).

use super::emit::{Emitter, V, llvm_type, ok};
use crate::kernel::{Lit, Scalar, Ty};
use inkwell::values::InstructionOpcode as Op;
use inkwell::{FloatPredicate, IntPredicate};

impl<'ctx> Emitter<'_, 'ctx> {
    /// Converts `x` of type `from` to `to` (same lanes).
    pub(super) fn cast(&mut self, from: Ty, to: Scalar, x: V<'ctx>) -> Result<V<'ctx>, String> {
        let fs = from.scalar;
        if fs == to {
            return Ok(x);
        }
        let tt = llvm_type(self.cx, Ty { scalar: to, lanes: from.lanes });
        let cast = |e: &Self, op: Op, x: V<'ctx>, t| ok(e.b.build_cast(op, x, t, "cv"));
        let lanes = from.lanes;
        let of = |s: Scalar| llvm_type(self.cx, Ty { scalar: s, lanes });
        let half_ty = || {
            let t = self.cx.f16_type();
            if lanes == 1 { t.into() } else { inkwell::types::BasicTypeEnum::from(t.vec_type(lanes)) }
        };
        let i32k = |e: &Self, v: i64| e.konst(Ty { scalar: Scalar::I32, lanes }, Lit::Int(v, Scalar::I32));
        match (fs, to) {
            (Scalar::F16, Scalar::F32) => {
                let h = cast(self, Op::BitCast, x, half_ty())?;
                return cast(self, Op::FPExt, h, tt);
            }
            (Scalar::F32, Scalar::F16) => {
                let h = cast(self, Op::FPTrunc, x, half_ty())?;
                return cast(self, Op::BitCast, h, tt);
            }
            (Scalar::BF16, Scalar::F32) => {
                let w = cast(self, Op::ZExt, x, of(Scalar::I32))?;
                let w = self.binop(Op::Shl, w, i32k(self, 16)?)?;
                return cast(self, Op::BitCast, w, tt);
            }
            (Scalar::F32, Scalar::BF16) => {
                let bits = cast(self, Op::BitCast, x, of(Scalar::I32))?;
                let hi = self.binop(Op::LShr, bits, i32k(self, 16)?)?;
                let lsb = self.binop(Op::And, hi, i32k(self, 1)?)?;
                let bias = self.binop(Op::Add, lsb, i32k(self, 0x7fff)?)?;
                let rounded = self.binop(Op::Add, bits, bias)?;
                let rounded = self.binop(Op::LShr, rounded, i32k(self, 16)?)?;
                let quiet = self.binop(Op::Or, hi, i32k(self, 0x40)?)?;
                let nan = self.fcmp(FloatPredicate::UNO, x, x)?;
                let r = self.select(nan, quiet, rounded)?;
                return cast(self, Op::Trunc, r, tt);
            }
            (Scalar::F16 | Scalar::BF16, _) | (_, Scalar::F16 | Scalar::BF16) => {
                return Err(format!("cast {} -> {}: 16-bit floats convert to and from f32 only", fs.name(), to.name()));
            }
            _ => {}
        }
        Ok(match (fs, to) {
            (Scalar::F32, Scalar::F64) => cast(self, Op::FPExt, x, tt)?,
            (Scalar::F64, Scalar::F32) => cast(self, Op::FPTrunc, x, tt)?,
            (Scalar::F32 | Scalar::F64, Scalar::Bool) => {
                let z = self.konst(from, Lit::F32(0.0))?;
                self.fcmp(FloatPredicate::UNE, x, z)?
            }
            (Scalar::F32 | Scalar::F64, Scalar::U8) => self.intrinsic("llvm.fptoui.sat", &[tt, x.get_type()], &[x])?,
            (Scalar::F32, Scalar::I32) if lanes > 1 => {
                // LLVM 14 scalarizes a vector `fptosi.sat` on x86; the same
                // saturation from vector compares, selects and one `fptosi` of
                // the value clamped into range (NaN → 0, ≥ 2³¹ → i32::MAX).
                // (2147483520 is the largest f32 below 2³¹.)
                let f = |v: f32| self.konst(from, Lit::F32(v));
                let (lo, top, hi) = (f(-2147483648.0)?, f(2147483648.0)?, f(2147483520.0)?);
                let c = self.fcmp(FloatPredicate::OLT, x, lo)?;
                let v = self.select(c, lo, x)?;
                let c = self.fcmp(FloatPredicate::OGT, v, hi)?;
                let v = self.select(c, hi, v)?;
                let nan = self.fcmp(FloatPredicate::UNO, x, x)?;
                let v = self.select(nan, lo, v)?;
                let r = cast(self, Op::FPToSI, v, tt)?;
                let big = self.fcmp(FloatPredicate::OGE, x, top)?;
                let max = self.konst(Ty { scalar: Scalar::I32, lanes }, Lit::Int(i32::MAX as i64, Scalar::I32))?;
                let r = self.select(big, max, r)?;
                let zero = self.konst(Ty { scalar: Scalar::I32, lanes }, Lit::Int(0, Scalar::I32))?;
                self.select(nan, zero, r)?
            }
            (Scalar::F32 | Scalar::F64, _) => self.intrinsic("llvm.fptosi.sat", &[tt, x.get_type()], &[x])?,
            (Scalar::U8 | Scalar::Bool, Scalar::F32 | Scalar::F64) => cast(self, Op::UIToFP, x, tt)?,
            (_, Scalar::F32 | Scalar::F64) => cast(self, Op::SIToFP, x, tt)?,
            (_, Scalar::Bool) => {
                let z = self.konst(from, Lit::Int(0, fs))?;
                self.icmp(IntPredicate::NE, x, z)?
            }
            (_, _) => {
                // Integers through i64 (exact), clamped to the target's range.
                let wide = Ty { scalar: Scalar::I64, lanes: from.lanes };
                let w = match fs {
                    Scalar::I64 => x,
                    Scalar::U8 | Scalar::Bool => cast(self, Op::ZExt, x, llvm_type(self.cx, wide))?,
                    _ => cast(self, Op::SExt, x, llvm_type(self.cx, wide))?,
                };
                if to == Scalar::I64 {
                    return Ok(w);
                }
                let (lo, hi) = to.int_range().unwrap_or((0, 0));
                let (l, h) = (self.konst(wide, Lit::Int(lo, Scalar::I64))?, self.konst(wide, Lit::Int(hi, Scalar::I64))?);
                let c = self.icmp(IntPredicate::SLT, w, l)?;
                let w = self.select(c, l, w)?;
                let c = self.icmp(IntPredicate::SGT, w, h)?;
                let w = self.select(c, h, w)?;
                cast(self, Op::Trunc, w, tt)?
            }
        })
    }
}
